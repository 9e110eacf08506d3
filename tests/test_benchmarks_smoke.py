"""The benchmark suite (``make bench``) runs end to end at a tiny size.

Runs ``python -m tests.benchmarks --sizes 30`` with Hugo, the Celery workers and wrk left
out by name (they are recorded as skipped, with the reason, and the test checks that), into
a temporary output directory; then checks that the results JSON has every figure the suite
measures at that size, that the table was printed, and that the Markdown and the chart were
written. Needs no Hugo, wrk, PostgreSQL or Redis; takes about 30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.benchmarks.loadgen import parse_wrk, percentile

BASE_DIR = Path(__file__).resolve().parent.parent
SIZE = "30"
SKIP = "hugo,workers,wrk"
SERVICE_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> tuple[dict, str, Path]:
    if os.environ.get("DATABASE_URL"):
        # The smoke run uses no service (it drops them from its environment): the
        # embedded-default run of the suite covers it, so CI does not pay for it twice.
        pytest.skip("the benchmark smoke run is done in the embedded-default (SQLite) run")
    out = tmp_path_factory.mktemp("bench-out")
    shm = Path("/dev/shm")
    work = (shm if shm.is_dir() else out) / f"sb-bench-smoke-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    command = [
        sys.executable,
        "-m",
        "tests.benchmarks",
        "--sizes",
        SIZE,
        "--skip",
        SKIP,
        "--out",
        str(out),
        "--work",
        str(work),
        "--api-seconds",
        "1",
    ]
    try:
        done = subprocess.run(
            command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=170
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads((out / "results.json").read_text()), done.stdout, out


def test_every_publishing_figure_is_in_the_json(suite):
    results, _, _ = suite
    measured = results["sizes"][SIZE]
    assert measured["generation"]["products"] == int(SIZE)
    assert measured["generation"]["seconds"] > 0
    assert measured["floor"]["seconds"] > 0 and measured["floor"]["files"] > 2 * int(SIZE)
    for step in ("full", "incremental", "incremental_next"):
        figures = measured[step]
        assert figures["seconds"] > 0 and figures["peak_rss_mb"] > 0
        assert figures["artifacts"] == measured["floor"]["files"] - 1  # + the release marker
        assert figures["summary"].startswith("Release ")
    assert measured["full"]["changed"] == measured["full"]["artifacts"]
    assert 1 <= measured["incremental"]["changed"] < measured["full"]["artifacts"]
    assert measured["incremental"]["changed_paths"]
    assert measured["incremental"]["edit"]["seconds"] > 0
    # The next edit is another product's, published as the next release.
    first, then = measured["incremental"], measured["incremental_next"]
    assert then["edit"]["iri"] != first["edit"]["iri"]
    assert then["release"] == first["release"] + 1
    assert 1 <= then["changed"] < measured["full"]["artifacts"]


def test_what_was_skipped_is_said(suite):
    results, stdout, _ = suite
    assert results["meta"]["skipped"] == {
        "hugo": "--skip hugo",
        "workers": "--skip workers",
        "wrk": "--skip wrk",
    }
    assert results["sizes"][SIZE]["hugo"] is None
    assert results["sizes"][SIZE]["workers"] is None
    assert "--skip hugo" in stdout and "--skip workers" in stdout


def test_the_api_figures_are_in_the_json(suite):
    results, _, _ = suite
    endpoints = results["api"]["endpoints"]
    assert {"bare view (floor)", "entity detail", "entity JSON-LD"} <= set(endpoints)
    assert any(name.endswith("(If-None-Match)") for name in endpoints)
    for name, data in endpoints.items():
        fixed = data["fixed"]
        assert fixed["requests"] > 0 and fixed["errors"] == 0, name
        assert 0 < fixed["p50_ms"] <= fixed["p99_ms"], name
        assert data["status"] == (304 if "If-None-Match" in name else 200), name
        assert "wrk" not in data


def test_goals_and_the_table(suite):
    results, stdout, out = suite
    assert len(results["goals"]) == 8
    assert all(goal["met"] in (True, False, None) and goal["measured"] for goal in results["goals"])
    assert "full publish, in-process, SQLite" in stdout
    assert "× floor" in stdout and "goal" in stdout
    assert "Total wall time" in stdout
    assert (out / "results.md").read_text().startswith("# Sourcebook benchmarks")
    assert (out / "publish.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8000/bench/floor/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.01ms    1.20ms  20.10ms   90.00%
    Req/Sec     1.20k   100.00     1.40k    70.00%
  Latency Distribution
     50%    2.50ms
     75%    3.10ms
     90%    4.00ms
     99%  850.00us
  6000 requests in 5.00s, 1.20MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   1199.50
Transfer/sec:    245.00KB
"""


def test_wrk_output_is_read():
    result = parse_wrk(WRK_OUTPUT)
    assert (result.requests, result.rps, result.p50_ms, result.p99_ms, result.errors) == (
        6000,
        1199.5,
        2.5,
        0.85,
        3,
    )


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([], 0.5)) == (
        50.0,
        99.0,
        0.0,
    )
