"""LOG_FORMAT=json: every line web (gunicorn), a worker and beat write is one JSON object.

Each program runs as its own process with the command line production uses; the test reads
everything it wrote to stdout and stderr, start-up to shutdown (SIGTERM), and parses it.
gunicorn needs nothing else; the worker and beat need Redis and PostgreSQL (skipped without,
failed with SOURCEBOOK_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import suppress
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.test_celery_and_settings import database_url_for_tests

BASE_DIR = Path(settings.BASE_DIR)
BIN = Path(sys.executable).parent
REQUIRED_KEYS = {"time", "level", "logger", "message"}


def required() -> bool:
    return os.environ.get("SOURCEBOOK_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Program:
    """A child process whose stdout and stderr go to files of their own."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], directory: Path):
        self.name = name
        self.stdout_path = directory / f"{name}.stdout"
        self.stderr_path = directory / f"{name}.stderr"
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=out, stderr=err)

    def lines(self) -> list[tuple[str, str]]:
        """(stream, line) for every non-empty line written so far."""
        return [
            (stream, line)
            for stream, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path))
            for line in path.read_text(errors="replace").splitlines()
            if line.strip()
        ]

    def text(self) -> str:
        return "\n".join(f"[{stream}] {line}" for stream, line in self.lines())

    def stop(self) -> int | None:
        """SIGTERM (so the shutdown lines are written too), then SIGKILL after 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def wait_for(self, predicate, what: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        state = "exited" if self.process.poll() is not None else "timed out"
        pytest.fail(f"{self.name} {state} waiting for {what}; its output:\n{self.text()}")


def records(program: Program) -> list[dict]:
    """Every line as a JSON object with time, level, logger and message, or a failure."""
    parsed = []
    for stream, line in program.lines():
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"{program.name} wrote a line that is not JSON on {stream}: {line!r}")
        assert isinstance(record, dict), f"{program.name}: not a JSON object: {line!r}"
        missing = REQUIRED_KEYS - record.keys()
        assert not missing, f"{program.name}: {line!r} lacks {sorted(missing)}"
        parsed.append(record)
    return parsed


def matches(expected, actual) -> bool:
    if isinstance(expected, re.Pattern):
        return isinstance(actual, str) and expected.search(actual) is not None
    return actual == expected


def has_record(program: Program, **expected) -> bool:
    """A record whose fields equal ``expected`` (a compiled pattern: searched in the field)."""
    for _, line in program.lines():
        with suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and all(
                matches(value, record.get(key)) for key, value in expected.items()
            ):
                return True
    return False


def get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def start_gunicorn(tmp_path: Path, env: dict[str, str]) -> tuple[Program, str]:
    port = free_port()
    argv = [
        str(BIN / "gunicorn"), "config.wsgi", "-c", "python:config.gunicorn",
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", "-",
        "--control-socket", str(tmp_path / "gunicorn.ctl"),
    ]  # fmt: skip
    web = Program("web", argv, env, tmp_path)
    base = f"http://127.0.0.1:{port}"

    def answers(_):
        with suppress(OSError):
            return get(f"{base}/healthz") == 200
        return False

    web.wait_for(answers, "/healthz to answer")
    return web, base


def web_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        # /healthz and a 404 never open the database: a file nobody creates.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "LOG_LEVEL": "INFO",
    }
    env.pop("LOG_FORMAT", None)
    env.update(extra)
    return env


def test_gunicorn_writes_json_lines(tmp_path):
    web, base = start_gunicorn(tmp_path, web_env(tmp_path, LOG_FORMAT="json"))
    try:
        assert get(f"{base}/healthz", **{"User-Agent": "json-logs-test"}) == 200
        # A 404 is also a warning logged by Django (django.request "Not Found: …").
        assert get(f"{base}/no-such-page?x=1", **{"User-Agent": "json-logs-test"}) == 404
        web.wait_for(
            lambda w: has_record(w, logger="gunicorn.access", status=404), "the 404's access record"
        )
    finally:
        returncode = web.stop()
    assert returncode == 0, web.text()
    parsed = records(web)
    assert has_record(web, logger="gunicorn.error", message=re.compile(r"^Starting gunicorn"))
    assert has_record(web, logger="gunicorn.error", message=re.compile(r"^Listening at: "))
    assert has_record(web, logger="gunicorn.error", message=re.compile(r"^Booting worker"))
    assert has_record(web, message=re.compile(r"^Shutting down: Master"))
    assert has_record(web, logger="django.request", level="WARNING", status_code=404)
    [access] = [
        r for r in parsed if r["logger"] == "gunicorn.access" and r.get("status") == 404
    ]  # fmt: skip
    assert access["method"] == "GET"
    assert access["path"] == "/no-such-page"
    assert access["query"] == "x=1"
    assert access["user_agent"] == "json-logs-test"
    assert access["remote_addr"] == "127.0.0.1"
    assert isinstance(access["bytes"], int)
    assert isinstance(access["duration_ms"], float | int)
    assert has_record(web, logger="gunicorn.access", path="/healthz", status=200)
    # The access log on stdout, gunicorn's error log and Django's records on stderr.
    assert all(
        stream == "stdout"
        for stream, line in web.lines()
        if json.loads(line)["logger"] == "gunicorn.access"
    )


def test_plain_text_stays_the_default(tmp_path):
    web, base = start_gunicorn(tmp_path, web_env(tmp_path))
    try:
        assert get(f"{base}/no-such-page") == 404
        web.wait_for(lambda w: "/no-such-page" in w.stdout_path.read_text(), "the access line")
    finally:
        web.stop()
    first = web.stderr_path.read_text().splitlines()[0]  # gunicorn's error log
    with pytest.raises(ValueError):
        json.loads(first)
    assert "Starting gunicorn" in first
    access = web.stdout_path.read_text()
    assert '"GET /no-such-page HTTP/1.1" 404' in access
    assert not access.lstrip().startswith("{")


def test_a_start_up_error_is_json_too(tmp_path):
    """Settings that refuse to load: gunicorn's worker fails to boot and celery stops with
    a traceback; each says so in JSON records, the traceback in one of them."""
    env = web_env(tmp_path, LOG_FORMAT="json", DJANGO_DEBUG="0", SECRET_KEY="")
    argv = [
        str(BIN / "gunicorn"), "config.wsgi", "-c", "python:config.gunicorn",
        "--bind", f"127.0.0.1:{free_port()}", "--workers", "1",
        "--control-socket", str(tmp_path / "gunicorn.ctl"),
    ]  # fmt: skip
    web = Program("web", argv, env, tmp_path)
    celery = Program(
        "celery",
        [str(BIN / "celery"), "-A", "config", "worker", "--loglevel", "INFO"],
        {**env, "CELERY_BROKER_URL": "redis://127.0.0.1:9/0"},
        tmp_path,
    )
    try:
        assert web.process.wait(timeout=30) != 0
        assert celery.process.wait(timeout=30) != 0
    finally:
        web.stop()
        celery.stop()
    for program in (web, celery):
        tracebacks = [
            r for r in records(program) if "SECRET_KEY must be set" in r.get("exc_info", "")
        ]
        assert tracebacks, program.text()
    assert has_record(web, message="Reason: Worker failed to boot.")


# --- the worker and beat -------------------------------------------------------------------


@pytest.fixture
def services(broker_url):
    """Redis (the ``broker_url`` fixture: skip, or fail in CI) and PostgreSQL, or a skip."""
    if connection.vendor != "postgresql":
        reason = (
            f"DATABASE_URL is not PostgreSQL (the database is {connection.vendor}): "
            "workers and beat in other processes are tested against PostgreSQL only"
        )
        if required():
            pytest.fail(f"{reason}, but SOURCEBOOK_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return broker_url


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_write_json_lines(services, tmp_path):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from config.celery import app

    queue = f"json-logs-{uuid.uuid4().hex[:8]}"
    # Due a second after beat starts, sent once, to this test's worker only.
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name=f"json-logs test {queue}",
        task="kb.tasks.publish_scheduled",
        interval=every_second,
        queue=queue,
        one_off=True,
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "CELERY_BROKER_URL": services,
        "CELERY_RESULT_BACKEND": services,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    celery = str(BIN / "celery")
    worker = Program(
        "worker",
        [celery, "-A", "config", "worker", "-Q", queue, "-c", "1", "--loglevel", "INFO"],
        env,
        tmp_path,
    )
    beat = None
    try:
        worker.wait_for(
            lambda w: has_record(w, message=re.compile(r"@\S+ ready\.$")), "the worker's ready"
        )
        result = app.send_task("kb.tasks.publish_scheduled", queue=queue)
        assert result.get(timeout=30) == {"published": 0, "expired": 0, "brands": []}
        beat = Program(
            "beat",
            [celery, "-A", "config", "beat", "--loglevel", "INFO",
             "--schedule", str(tmp_path / "celerybeat-schedule")],
            env,
            tmp_path,
        )  # fmt: skip
        beat.wait_for(
            lambda b: has_record(b, logger="celery.beat", message=re.compile("Sending due task")),
            "beat to send the due task",
        )
        # The task beat sent, run by the worker: two "succeeded" records in all.
        worker.wait_for(
            lambda w: len(
                [r for r in records(w) if re.search(r"\] succeeded in ", r["message"])]
            ) >= 2,
            "the worker to run beat's task",
        )  # fmt: skip
    finally:
        beat_code = beat.stop() if beat else None
        worker_code = worker.stop()
        with suppress(Exception), app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    assert worker_code == 0, worker.text()
    assert beat_code == 0, beat.text()

    records(worker)  # every line
    assert has_record(
        worker, logger="celery.apps.worker", message=re.compile(r" starting$"), queues=[queue]
    )
    [banner] = [r for r in records(worker) if r["message"].endswith(" starting")]
    assert "kb.tasks.publish_scheduled" in banner["tasks"]
    assert has_record(
        worker, message=re.compile(r"^Task kb\.tasks\.publish_scheduled\[.*\] received")
    )
    assert has_record(worker, message=re.compile(r"^worker: Warm shutdown"))

    records(beat)  # every line
    assert has_record(beat, message=re.compile(r"^celery beat v.+ is starting\.$"))
    assert has_record(beat, logger="celery.beat", message="beat: Starting...")
