"""Load generators for the API benchmark: a fixed-rate one (Python) and ``wrk`` (max load).

Debian has neither ``wrk2`` nor ``vegeta`` (only ``wrk``, ``hey`` and ``siege``, which
cannot hold an open-loop rate), so the fixed rate comes from ``fixed_rate`` below.

How ``fixed_rate`` works: request *i* is due at ``t0 + i / rate``. A pool of threads, each
with its own ``http.client`` connection, takes the next due request, sleeps until its due
time and sends it. The latency recorded is from the **due time** to the end of reading the
response, so a request that starts late (all threads busy, or the generator itself
stalled) is charged for the wait — the schedule does not slip with the server
(no "coordinated omission"), as long as fewer than ``threads`` requests are outstanding.

Precision, honestly: Python's ``time.sleep`` wakes 50–200 µs late, and building, sending
and parsing a request with ``http.client`` costs the generator about 100–300 µs of CPU
under the GIL; both are inside every recorded latency. The generator also runs on the same
two cores as the server. So figures below ~0.5 ms are not resolved, and p99 over a 10 s
run (1,000 requests) is the 10th-worst request. Good enough to compare two endpoints
measured the same way in the same run (the goal is a ratio), not for absolute sub-ms claims.
"""

from __future__ import annotations

import http.client
import itertools
import math
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

WRK = shutil.which("wrk") or "/usr/bin/wrk"


@dataclass
class LoadResult:
    """Latencies in milliseconds; rps is requests completed per second of the run."""

    tool: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[str, int]
    target_rps: float | None = None
    unsent: int = 0  # fixed rate: requests never started because the server fell behind

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass
class _Shared:
    """What the generator threads share; list.append is atomic under the GIL."""

    total: int
    rate: float
    start: float
    deadline: float  # no request is started after this (a saturated server)
    latencies: list[float]
    statuses: list[int]


def _worker(url: str, headers: dict[str, str], counter, shared: _Shared) -> None:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        while (index := next(counter)) < shared.total and time.perf_counter() < shared.deadline:
            due = shared.start + index / shared.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                status = 0
            shared.latencies.append(time.perf_counter() - due)
            shared.statuses.append(status)
    finally:
        connection.close()


def fixed_rate(
    url: str, headers: dict[str, str], *, rate: float, seconds: float, threads: int = 8
) -> LoadResult:
    """Send ``rate`` requests per second for ``seconds`` (open loop); see the module doc.

    A server slower than the rate falls behind: requests then start late (and are charged
    for it); none is started after twice the run's length, and those never sent are
    counted in ``unsent``.
    """
    start = time.perf_counter() + 0.05
    shared = _Shared(int(rate * seconds), rate, start, start + 2 * seconds + 1, [], [])
    counter = itertools.count()
    pool = [
        threading.Thread(target=_worker, args=(url, headers, counter, shared), daemon=True)
        for _ in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(seconds + 30)
    elapsed = time.perf_counter() - shared.start
    latencies = sorted(x * 1000 for x in shared.latencies)
    statuses = Counter(shared.statuses)
    return LoadResult(
        tool="fixed-rate (Python)",
        requests=len(latencies),
        rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(latencies, 0.50), 3),
        p99_ms=round(percentile(latencies, 0.99), 3),
        errors=sum(n for s, n in statuses.items() if not 200 <= s < 400),
        statuses={str(s): n for s, n in sorted(statuses.items())},
        target_rps=rate,
        unsent=shared.total - len(latencies),
    )


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * UNITS[match[2]]


def parse_wrk(output: str) -> LoadResult:
    """Requests/sec, the 50 % and 99 % latencies, and errors from ``wrk --latency``."""
    found = {m[1]: _ms(m[2]) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", output, re.M)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rps is None or total is None or set(found) != {"50", "99"}:
        raise ValueError(f"cannot read wrk's output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(bad[1]) if bad else 0
    errors += sum(int(sockets[i]) for i in (1, 3, 4)) if sockets else 0
    return LoadResult(
        tool="wrk",
        requests=int(total[1]),
        rps=float(rps[1]),
        p50_ms=round(found["50"], 3),
        p99_ms=round(found["99"], 3),
        errors=errors,
        statuses={},
    )


def wrk(url: str, headers: dict[str, str], *, seconds: float, connections: int = 4) -> LoadResult:
    """``wrk`` at maximum load (one thread, ``connections`` connections)."""
    command = [WRK, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    return parse_wrk(done.stdout)


def wrk_available() -> str | None:
    return None if shutil.which("wrk") else "wrk is not installed (Debian package wrk)"
