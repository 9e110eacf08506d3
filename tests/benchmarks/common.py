"""What every benchmark step shares: progress lines, paths, child environments, and running
a child process while sampling its peak memory.

Peak memory is measured by polling: every ``SAMPLE_SECONDS`` (50 ms) the resident set sizes
of the child and its descendants (psutil; the list of descendants refreshed every second)
are summed and the largest sum is kept; every ``PSS_EVERY`` samples (1 s, and five times in
the first second) their proportional set sizes (PSS, from /proc/PID/smaps_rollup, which
costs the kernel ~13 ms a GB to compute) are summed too. The PSS sum is the memory the tree really occupies: a page a forked child
shares with its parent counts once (half to each), where the RSS sum counts it twice. A
spike shorter than the interval can be missed, so both are lower bounds; for a Python process
building a site, memory grows and shrinks over seconds, not milliseconds.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SHM_ROOT = Path("/dev/shm/sb-bench")
SAMPLE_SECONDS = 0.05
PSS_EVERY = 20
MB = 1024 * 1024
# Settings every child runs with: debug off, as in production (no query log, no debug
# cursor), with what debug-off settings demand for a plain-HTTP loopback server.
PRODUCTION_LIKE = {
    "DJANGO_DEBUG": "0",
    "SECRET_KEY": "benchmark-only-secret-key-not-for-production-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "LOG_LEVEL": "WARNING",
}
# Variables of the caller's environment that would point a child at other services.
FOREIGN = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "SOURCEBOOK_ARTIFACT_ROOT",
    "SOURCEBOOK_VAR_DIR",
    "DJANGO_SETTINGS_MODULE",
    "MEDIA_ROOT",
    "STATIC_ROOT",
)

_started = time.monotonic()


def log(step: str, size: int | None, message: str) -> None:
    """One progress line: wall clock, time since the suite started, step, N, message."""
    elapsed = time.monotonic() - _started
    where = f"{step} N={size:,}" if size is not None else step
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp} +{elapsed:7.1f}s] {where}: {message}", file=sys.stderr, flush=True)


def suite_seconds() -> float:
    return time.monotonic() - _started


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (whatever was there is removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def child_env(**extra: str) -> dict[str, str]:
    """The caller's environment without its database/broker settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update(PRODUCTION_LIKE)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BASE_DIR), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def sqlite_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The embedded default: SQLite and the artifact store under ``var_dir``, tasks in-process."""
    return child_env(SOURCEBOOK_VAR_DIR=str(var_dir), **extra)


@dataclass
class RunResult:
    """What a child process did: its exit code, output, wall time and peak RSS (bytes)."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int
    peak_pss: int = 0

    @property
    def peak_mb(self) -> float:
        return self.peak_rss / MB

    @property
    def peak_pss_mb(self) -> float:
        return self.peak_pss / MB


def memory_of(members: list[psutil.Process], measure: Callable[[psutil.Process], int]) -> int:
    """``measure`` summed over these processes, in bytes (those gone count 0)."""
    total = 0
    for member in members:
        try:
            total += measure(member)
        except psutil.Error:
            continue
    return total


def rss_of(members: list[psutil.Process]) -> int:
    """Resident memory of these processes."""
    return memory_of(members, lambda member: member.memory_info().rss)


def pss_of(members: list[psutil.Process]) -> int:
    """Proportional set size of these processes (shared pages split between them)."""
    return memory_of(members, lambda member: member.memory_full_info().pss)


def pss_due(sample: int) -> bool:
    """Whether to measure PSS at this sample: after 50, 100, 200, 400 and 800 ms (so that a
    run shorter than a second is measured too), then every ``PSS_EVERY`` samples."""
    return sample in (1, 2, 4, 8, 16) or sample % PSS_EVERY == 1


def tree_of(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


class PeakSampler:
    """Samples the RSS of a process and its descendants in a thread; keeps the largest sum.

    The list of descendants (a scan of /proc) is refreshed every ``TREE_EVERY`` samples,
    so that sampling itself costs little CPU next to the process measured.
    """

    TREE_EVERY = 20

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.peak_pss = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"rss-{pid}")

    def _run(self) -> None:
        members: list[psutil.Process] = []
        for sample in itertools.count():
            if self.stopped.is_set():
                return
            if sample % self.TREE_EVERY == 0:
                members = tree_of(self.process)
            self.peak = max(self.peak, rss_of(members))
            if pss_due(sample):
                self.peak_pss = max(self.peak_pss, pss_of(members))
            self.stopped.wait(SAMPLE_SECONDS)

    def start(self) -> PeakSampler:
        self.thread.start()
        return self

    def stop(self) -> int:
        self.stopped.set()
        self.thread.join(5)
        return self.peak


class ChildFailed(RuntimeError):
    def __init__(self, command: list[str], result: RunResult) -> None:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-25:])
        super().__init__(f"{' '.join(command)} exited {result.returncode}:\n{tail}")
        self.result = result


def run(
    command: list[str],
    env: Mapping[str, str],
    *,
    check: bool = True,
    timeout: float = 3600,
    echo_stderr: bool = False,
) -> RunResult:
    """Run ``command`` in the project directory, timed, with its peak RSS sampled.

    ``echo_stderr`` passes the child's stderr through (e.g. tqdm bars) instead of capturing it.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=None if echo_stderr else subprocess.PIPE,
        text=True,
    )
    sampler = PeakSampler(process.pid).start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    finally:
        peak = sampler.stop()
    result = RunResult(
        process.returncode,
        stdout or "",
        stderr or "",
        time.perf_counter() - started,
        peak,
        sampler.peak_pss,
    )
    if check and result.returncode != 0:
        raise ChildFailed(command, result)
    return result


def manage(*args: str) -> list[str]:
    return [PYTHON, "manage.py", *args]


def stop_process(process: subprocess.Popen | None, timeout: float = 15) -> None:
    """Terminate (then kill) a child we started, and reap it; a no-op once it has exited."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
