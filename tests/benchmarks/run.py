"""Sourcebook's benchmark suite: publishing, memory, a peer (Hugo) and the API, against floors.

    .venv/bin/python -m tests.benchmarks [--sizes 1000,10000,100000] [--skip hugo,api,workers]
                                         [--out docs/benchmarks]

For each N (a deterministic synthetic brand, ``catalog.py``): bulk data generation
(``generate.py``), the full publish in-process on SQLite (``inprocess.py``), the floor
(``floor.py``), an incremental publish after one edit, Hugo on the same catalog
(``hugo.py``), and the full publish through two Celery workers on PostgreSQL
(``workers.py``). Then the API under load on one size (``api.py``). Everything runs on
tmpfs under ``--work`` (default ``/dev/shm/sb-bench``), which is removed at the end.

Prints progress (step, N, timestamps) on stderr and one table on stdout; writes
``results.json``, ``results.md`` and ``publish.png`` into ``--out``. Nothing is skipped
unless asked: a missing tool or service is an error that names the ``--skip`` to use.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: tests/benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psutil

from tests.benchmarks import report
from tests.benchmarks.api import api_measure
from tests.benchmarks.common import BASE_DIR, SHM_ROOT, fresh_dir, log, suite_seconds
from tests.benchmarks.floor import floor_measure
from tests.benchmarks.hugo import hugo_available, hugo_measure
from tests.benchmarks.inprocess import (
    Workspace,
    code_fingerprint,
    generate,
    incremental,
    publish,
)
from tests.benchmarks.loadgen import wrk_available
from tests.benchmarks.workers import workers_available, workers_measure

DEFAULT_SIZES = "1000,10000,100000"
SKIPPABLE = ("hugo", "api", "workers", "wrk")
API_SIZE = 10_000


class NotAvailable(SystemExit):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="Comma-separated N values.")
    parser.add_argument("--skip", default="", help=f"Comma-separated: {', '.join(SKIPPABLE)}.")
    parser.add_argument("--out", default=str(BASE_DIR / "docs" / "benchmarks"), type=Path)
    parser.add_argument("--work", default=str(SHM_ROOT), type=Path, help="tmpfs work dir.")
    parser.add_argument("--api-seconds", default=10.0, type=float, help="Per API load run.")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(n.replace("_", "")) for n in args.sizes.split(",") if n.strip()})
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(SKIPPABLE)
    if unknown or not args.sizes or min(args.sizes) < 10:
        parser.error(
            f"--skip takes {', '.join(SKIPPABLE)}; --sizes needs numbers ≥ 10 "
            f"(unknown skip: {', '.join(sorted(unknown)) or 'none'})"
        )
    return args


def skipped_reasons(skip: set[str]) -> dict[str, str]:
    """Why each step is skipped; a step neither asked to skip nor runnable is an error."""
    reasons = {name: f"--skip {name}" for name in sorted(skip)}
    if "api" in skip:
        reasons.setdefault("wrk", "--skip api")
    checks = {"hugo": hugo_available, "workers": workers_available, "wrk": wrk_available}
    for name, check in checks.items():
        if name in reasons:
            continue
        problem = check()
        if problem:
            raise NotAvailable(f"{problem}: fix it, or pass --skip {name}")
    return reasons


def measure_size(size: int, args: argparse.Namespace, skipped: dict[str, str]) -> dict:
    """Every per-N step; the tmpfs files are removed except the database the API reads."""
    workspace = Workspace(fresh_dir(args.work / f"n{size}"))
    measured: dict = {"generation": generate(workspace.env(), size)}
    code = code_fingerprint()
    measured["full"] = publish(workspace, size, "full publish").as_dict()
    log("floor", size, "orjson + the same files, on tmpfs")
    floor = floor_measure(workspace.site / "current", workspace.root / "floor")
    shutil.rmtree(workspace.root / "floor", ignore_errors=True)
    measured["floor"] = {**vars(floor), "seconds": round(floor.seconds, 3)}
    log("floor", size, f"{floor.seconds:.2f}s for {floor.files:,} files")
    # The first edit after the full publish, in the middle of the catalog, and the next one:
    # the first deploy makes a second tree of the site, the next changes the tree before the
    # live one into its own (see publishing/targets/directory.py), as every later one does.
    measured["incremental"] = incremental(workspace, size, code, max(1, size // 2))
    measured["incremental_next"] = incremental(workspace, size, code, max(1, size // 2) + 1)
    for path in (workspace.site, workspace.var / "artifacts"):
        shutil.rmtree(path, ignore_errors=True)
    measured["hugo"] = None if "hugo" in skipped else hugo_measure(workspace.root, size)
    measured["workers"] = (
        None if "workers" in skipped else workers_measure(args.work / f"pg-n{size}", size)
    )
    return measured


def api_size(sizes: list[int]) -> int:
    """The size the API is measured on: 10k, else the smallest ≥ 10k, else the smallest."""
    return min((n for n in sizes if n >= API_SIZE), default=min(sizes))


def new_results(args: argparse.Namespace, skipped: dict[str, str], argv: list[str]) -> dict:
    return {
        "meta": {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": shlex.join(["python", "-m", "tests.benchmarks", *argv]),
            "sizes": args.sizes,
            "skipped": skipped,
            "machine": {
                "cpus": os.cpu_count(),
                "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                "python": sys.version.split()[0],
            },
        },
        "sizes": {},
        "api": None,
    }


def run_suite(args: argparse.Namespace, argv: list[str]) -> dict:
    skipped = skipped_reasons(args.skip)
    results = new_results(args, skipped, argv)
    args.out.mkdir(parents=True, exist_ok=True)
    fresh_dir(args.work)
    try:
        for size in args.sizes:
            results["sizes"][str(size)] = measure_size(size, args, skipped)
            report.json_write(results, args.out / "results.json")  # partial results kept
        if "api" not in skipped:
            size = api_size(args.sizes)
            log("api", size, "gunicorn -w 2, wrk and a fixed 100 rps")
            results["api"] = api_measure(
                args.work / f"n{size}" / "var", size, args.api_seconds, "wrk" not in skipped
            )
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    return results


def finish(results: dict, out: Path) -> str:
    """Judge the goals, write JSON, Markdown and the chart; return the table."""
    meta = results["meta"]
    meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["total_seconds"] = round(suite_seconds(), 1)
    goals = report.goals_evaluate(results)
    results["goals"] = [g.as_dict() for g in goals]
    rows = report.table_rows(results, goals)
    results["table"] = [dict(zip(report.HEADER, row, strict=True)) for row in rows]
    report.json_write(results, out / "results.json")
    (out / "results.md").write_text(report.markdown(results, rows))
    report.chart_write(results, out / "publish.png")
    return report.text_table(rows)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    log("suite", None, f"sizes {args.sizes}, skip {sorted(args.skip) or 'nothing'}, out {args.out}")
    results = run_suite(args, argv)
    table = finish(results, args.out)
    print(table, flush=True)
    total = results["meta"]["total_seconds"]
    print(
        f"\nTotal wall time: {total:.0f} s ({total / 60:.1f} min). "
        f"Results: {args.out / 'results.json'}, results.md, publish.png",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
