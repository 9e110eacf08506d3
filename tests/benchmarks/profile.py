"""Where the time of a publish goes: py-spy on ``manage.py publish`` at one size.

    .venv/bin/python -m tests.benchmarks.profile [--size 10000] [--incremental] [--out DIR]

Generates the synthetic brand (SQLite on tmpfs, as the suite does), then runs the
in-process full publish twice under ``py-spy record --subprocesses`` (a sampling profiler
outside the process, 250 samples a second, so the publish runs at nearly full speed; the
builder's forked render workers are sampled too): once writing the
collapsed stacks (``publish-N.collapsed.txt``, readable by speedscope, inferno or
flamegraph.pl), once an interactive flame graph (``publish-N.svg``). From the stacks it
writes ``profile-N.md``: the top functions by cumulative time (the share of samples in
which the function is on the stack) and by own time (the share in which it is on top).

With ``--incremental`` it profiles the publish after one product's edit instead: the site
is published once in full (not profiled), then product 1 is edited and the publish
recorded as the flame graph, then product 2 (the next edit, which the incremental goal is
judged on) and its publish recorded for the tables; it writes
``profile-incremental-N.md`` and ``publish-incremental-N.svg``.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks import catalog
from tests.benchmarks.common import BASE_DIR, PYTHON, SHM_ROOT, fresh_dir, log, manage, run
from tests.benchmarks.inprocess import Workspace, edit_one, generate, summary_of

PY_SPY = str(Path(PYTHON).with_name("py-spy"))
RATE = "250"
TOP = 15
MAIN_THREAD = "<module> (manage.py"
# The interpreter's and Django's command entry points: on every stack, left out of tables.
ENTRY_POINTS = (
    "(manage.py)",
    "(django/core/management/__init__.py)",
    "(django/core/management/base.py)",
    "(publishing/management/commands/publish.py)",
    # The render workers' stacks run through the fork of their pool.
    "(multiprocessing/pool.py)",
    "(multiprocessing/process.py)",
    "(multiprocessing/popen_fork.py)",
    "(multiprocessing/context.py)",
)


def function_of(frame: str) -> str:
    """``render_page (publishing/render/pages.py:331)`` → ``render_page (publishing/render/pages.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for prefix in (str(BASE_DIR) + "/", "/work/main/"):
        path = path.removeprefix(prefix)
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    return f"{name} ({path})" if path else name


def tally(collapsed: Path) -> tuple[Counter, Counter, int]:
    """Cumulative and own sample counts per function, and the number of samples, of the
    main threads of the builder and its render workers (the lease heartbeat and tqdm's
    monitor threads only wait). py-spy names each stack's process in leading frames."""
    cumulative: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames or not frames[0].startswith(MAIN_THREAD) or not count.isdigit():
            continue
        frames = [function_of(f) for f in frames]
        total += int(count)
        own[frames[-1]] += int(count)
        for function in set(frames):
            cumulative[function] += int(count)
    return cumulative, own, total


def top_table(counts: Counter, total: int, title: str) -> str:
    rows = [(f, n) for f, n in counts.most_common() if not f.endswith(ENTRY_POINTS)][:TOP]
    lines = [f"| # | {title} | share | seconds |", "|---|---|---|---|"]
    for rank, (function, n) in enumerate(rows, start=1):
        lines.append(f"| {rank} | `{function}` | {n / total:.1%} | {n / int(RATE):.1f} |")
    return "\n".join(lines)


RELEASE_TABLES = (
    "publishing_releaseartifact",
    "publishing_deployment",
    "publishing_publishrequest",
    "publishing_release",
)


def releases_forget(database: Path) -> None:
    """Delete every release (and what refers to it), so the next publish is a full one."""
    with sqlite3.connect(database) as connection:
        for table in RELEASE_TABLES:
            connection.execute(f"DELETE FROM {table}")


def profile_publish(workspace: Workspace, size: int, output: Path, kind: str) -> str:
    """One ``py-spy record`` of a fresh full publish; returns the CLI's summary line."""
    for path in (workspace.site, workspace.var / "artifacts"):
        shutil.rmtree(path, ignore_errors=True)
    releases_forget(workspace.database)
    return profile_run(workspace, size, output, kind)


def profile_run(workspace: Workspace, size: int, output: Path, kind: str) -> str:
    """One ``py-spy record`` of ``manage.py publish`` as the site stands."""
    log("profile", size, f"py-spy record --format {kind} -- manage.py publish")
    command = [PY_SPY, "record", "--subprocesses", "--rate", RATE, "--format", kind,
               "--output", str(output),
               "--", *manage("publish", catalog.SLUG, "--out", str(workspace.site))]  # fmt: skip
    result = run(command, workspace.env())
    return summary_of(result.stdout).group(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="Profile the publish after one product's edit, not a full one.",
    )
    parser.add_argument("--out", type=Path, default=BASE_DIR / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"incremental-{args.size}" if args.incremental else str(args.size)
    collapsed = args.out / f"publish-{name}.collapsed.txt"
    flame = args.out / f"publish-{name}.svg"
    workspace = Workspace(fresh_dir(SHM_ROOT.with_name("sb-profile")))
    try:
        generate(workspace.env(), args.size)
        if args.incremental:
            log("publish", args.size, "manage.py publish bench (full, not profiled)")
            run(manage("publish", catalog.SLUG, "--out", str(workspace.site)), workspace.env())
            edit_one(workspace, args.size, 1)
            profile_run(workspace, args.size, flame, "flamegraph")
            edit_one(workspace, args.size, 2)
            summary = profile_run(workspace, args.size, collapsed, "raw")
            what = (
                "the publish after one product's edit (the second such edit after a full publish)"
            )
        else:
            summary = profile_publish(workspace, args.size, collapsed, "raw")
            profile_publish(workspace, args.size, flame, "flamegraph")
            what = "a full publish"
    finally:
        shutil.rmtree(workspace.root, ignore_errors=True)
    cumulative, own, total = tally(collapsed)
    text = (
        f"# Profile of {what} at N={args.size:,}\n\n"
        f"`py-spy record --subprocesses --rate {RATE}` on `manage.py publish bench --out …` "
        "(in-process, "
        f"SQLite on tmpfs, debug off); {total:,} samples of the main threads of the builder "
        f"and its forked render workers, so shares are of CPU time, not wall time. "
        f"{summary}\n\n"
        f"Flame graph: `{flame.name}`; stacks: `{collapsed.name}`. Frames on every "
        "stack (the interpreter's and the management command's entry points) are left out of "
        "the tables; shares are of all the samples, start-up included.\n\n"
        f"## Top {TOP} by cumulative time\n\n{top_table(cumulative, total, 'function')}\n\n"
        f"## Top {TOP} by own time\n\n{top_table(own, total, 'function')}\n"
    )
    (args.out / f"profile-{name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
