"""The full publish on PostgreSQL through two Celery workers on Redis.

For each N: the database ``sb_bench`` is dropped and created again on the local PostgreSQL,
the same synthetic brand is generated into it, Redis database 9 is emptied, and two
workers start (``celery -A config worker -Q celery,publishing --pool=solo -n w1@%h`` and
``w2``; the artifact store on tmpfs). Then ``manage.py publish bench --out DIR --wait`` is
timed from start to exit: it records the request, queues it, and follows it by polling the
database every 0.5 s (so the wall time is up to 0.5 s late). The worker that built is the
one that used the CPU (psutil CPU-time deltas); its peak RSS is sampled from the moment the
request is made (see ``common``). Workers are stopped in ``finally`` blocks.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.benchmarks import catalog
from tests.benchmarks.common import (
    BASE_DIR,
    PYTHON,
    PeakSampler,
    child_env,
    fresh_dir,
    log,
    manage,
    run,
    stop_process,
)
from tests.benchmarks.inprocess import code_fingerprint, figures, generate

PG_SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASE = "sb_bench"
REDIS_URL = "redis://127.0.0.1:6379/9"
READY_TIMEOUT = 60


def database_url() -> str:
    return f"{PG_SERVER}/{DATABASE}"


def database_recreate() -> None:
    """Drop and create ``sb_bench`` (connections to it are ended first)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [DATABASE],
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        connection.execute(f'CREATE DATABASE "{DATABASE}"')


def database_drop() -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [DATABASE],
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')


def redis_flush() -> None:
    """Empty Redis database 9 (the benchmark's own), so no old task is delivered."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def services_env(root: Path) -> dict[str, str]:
    return child_env(
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
        SOURCEBOOK_VAR_DIR=str(root / "var"),
        SOURCEBOOK_ARTIFACT_ROOT=str(root / "artifacts"),
    )


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def cpu_seconds(self) -> float:
        try:
            times = psutil.Process(self.process.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    def ready(self) -> bool:
        return " ready." in self.log_path.read_text(errors="replace")


def worker_start(name: str, env: dict[str, str], log_path: Path) -> Worker:
    with log_path.open("w") as handle:
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "celery,publishing",
                "--pool=solo",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=BASE_DIR,
            env={**env, "LOG_LEVEL": "INFO"},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return Worker(name, process, log_path)


def wait_ready(workers: list[Worker]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited:\n{worker.log_path.read_text()}")
        if all(w.ready() for w in workers):
            return
        time.sleep(0.2)
    raise RuntimeError(f"workers not ready after {READY_TIMEOUT}s")


def publish_through_workers(root: Path, size: int, env: dict[str, str]) -> dict:
    """Start two workers, publish with --wait, measure; workers stopped whatever happens."""
    workers: list[Worker] = []
    code_before = code_fingerprint()
    try:
        logs = root.parent / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        workers = [worker_start(name, env, logs / f"{name}-n{size}.log") for name in ("w1", "w2")]
        wait_ready(workers)
        cpu_before = {w.name: w.cpu_seconds for w in workers}
        samplers = {w.name: PeakSampler(w.process.pid).start() for w in workers}
        log("workers publish", size, "manage.py publish bench --wait (2 workers, PostgreSQL)")
        result = run(manage("publish", catalog.SLUG, "--out", str(root / "site"), "--wait"), env)
        peaks = {name: sampler.stop() for name, sampler in samplers.items()}
        peaks_pss = {name: sampler.peak_pss for name, sampler in samplers.items()}
        cpu = {w.name: round(w.cpu_seconds - cpu_before[w.name], 2) for w in workers}
    finally:
        for worker in workers:
            stop_process(worker.process)
    builder = max(cpu, key=cpu.get)
    found = figures(result, peak_rss=peaks[builder], peak_pss=peaks_pss[builder])
    found.code_changed_during = code_fingerprint() != code_before
    log(
        "workers publish",
        size,
        f"{found.seconds:.2f}s wall, built by {builder} "
        f"(peak PSS {found.peak_pss_mb:.0f} MB, RSS {found.peak_rss_mb:.0f} MB, CPU {cpu}) — "
        f"{found.summary}",
    )
    return {
        **found.as_dict(),
        "builder": builder,
        "worker_cpu_seconds": cpu,
        "worker_peak_rss_mb": {n: round(p / 2**20, 1) for n, p in peaks.items()},
        "worker_peak_pss_mb": {n: round(p / 2**20, 1) for n, p in peaks_pss.items()},
        "cli_peak_rss_mb": round(result.peak_mb, 1),
    }


def workers_measure(root: Path, size: int) -> dict:
    """Generate N into PostgreSQL and publish through the workers; clean up afterwards."""
    fresh_dir(root)
    database_recreate()
    redis_flush()
    env = services_env(root)
    try:
        generation = generate(env, size, step="generate (PostgreSQL)")
        measured = publish_through_workers(root, size, env)
    finally:
        redis_flush()
        database_drop()
        shutil.rmtree(root, ignore_errors=True)
    return {**measured, "generation": generation}


def workers_available() -> str | None:
    """None when PostgreSQL and Redis answer, else why not."""
    try:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3):
            pass
    except Exception as error:  # any driver or network error: say what it was
        return f"PostgreSQL at {PG_SERVER} is not reachable ({error})"
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as error:
        return f"Redis at {REDIS_URL} is not reachable ({error})"
    return None
