"""The delivery API under load, next to a bare Django view (the API floor).

gunicorn serves the project (``gunicorn config.wsgi -w 2``, sync workers, debug off) with
``tests.benchmarks.settings`` (the floor's URL added, the rate limit off), on the SQLite
database of one published size on tmpfs. A read token comes from ``manage.py
create_api_token bench --scope read``. Measured on loopback, each for ``seconds``:

* endpoints: the bare view (``/bench/floor/``), an entity's detail, the list's page 2, and
  the entity as JSON-LD (``Accept: application/ld+json``); the three API ones also with
  ``If-None-Match`` set to the ETag of a first response (answered 304);
* with ``wrk`` at maximum load (one thread, 4 connections): requests per second, p50, p99;
* with ``loadgen.fixed_rate`` at 100 requests per second: p50, p99 (see its doc).
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks import catalog
from tests.benchmarks.common import BASE_DIR, PYTHON, log, manage, run, sqlite_env, stop_process
from tests.benchmarks.loadgen import fixed_rate, wrk

FIXED_RATE = 100.0
WARM_UP_SECONDS = 0.5
LIST_PAGE_SIZE = 50  # the API's default page size
JSONLD = "application/ld+json"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    accept: str = "application/json"
    authenticated: bool = True


def endpoints(entity_id: uuid.UUID, size: int) -> list[Endpoint]:
    """The measured endpoints; the list's page 2 needs more than one page (50 entities)."""
    base = f"/api/v1/brands/{catalog.SLUG}/entities/"
    page = 2 if size + 1 > LIST_PAGE_SIZE else 1
    return [
        Endpoint("bare view (floor)", "/bench/floor/", authenticated=False),
        Endpoint("entity detail", f"{base}{entity_id}/"),
        Endpoint(f"entity list, page {page}", f"{base}?page={page}"),
        Endpoint("entity JSON-LD", f"{base}{entity_id}/", accept=JSONLD),
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api_env(var_dir: Path) -> dict[str, str]:
    return sqlite_env(var_dir, DJANGO_SETTINGS_MODULE="tests.benchmarks.settings")


def gunicorn_start(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as handle:
        return subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "config.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def fetch(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_serving(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log_path.read_text()}")
        try:
            if fetch(f"{base_url}/bench/floor/", {})[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


def headers_for(endpoint: Endpoint, token: str) -> dict[str, str]:
    headers = {"Accept": endpoint.accept}
    if endpoint.authenticated:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def measure_endpoint(url: str, headers: dict[str, str], seconds: float, use_wrk: bool) -> dict:
    """A first request (status, size, ETag), a warm-up (not recorded: the first requests of a
    worker import and cache what the endpoint needs), then wrk (if used) and the fixed rate."""
    status, response_headers, body = fetch(url, headers)
    if status not in (200, 304):
        raise RuntimeError(f"GET {url} answered {status}: {body[:500]!r}")
    found: dict = {"status": status, "bytes": len(body), "etag": response_headers.get("ETag")}
    fixed_rate(url, headers, rate=FIXED_RATE, seconds=WARM_UP_SECONDS)  # both workers warm
    if use_wrk:
        found["wrk"] = wrk(url, headers, seconds=seconds).as_dict()
    found["fixed"] = fixed_rate(url, headers, rate=FIXED_RATE, seconds=seconds).as_dict()
    return found


def api_measure(var_dir: Path, size: int, seconds: float, use_wrk: bool) -> dict:
    """Serve the published N with gunicorn and measure every endpoint (see module doc)."""
    env = api_env(var_dir)
    token = run(manage("create_api_token", catalog.SLUG, "--scope", "read"), env).stdout.strip()
    entity_id = uuid.uuid5(uuid.NAMESPACE_URL, catalog.product(1).iri)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = var_dir.parent / "gunicorn.log"
    process = gunicorn_start(env, port, log_path)
    results: dict[str, dict] = {}
    try:
        wait_serving(base_url, process, log_path)
        for endpoint in endpoints(entity_id, size):
            headers = headers_for(endpoint, token)
            url = base_url + endpoint.path
            log("api", size, f"{endpoint.name}: {endpoint.path}")
            results[endpoint.name] = measure_endpoint(url, headers, seconds, use_wrk)
            etag = results[endpoint.name]["etag"]
            if endpoint.authenticated and etag:
                log("api", size, f"{endpoint.name} with If-None-Match")
                results[f"{endpoint.name} (If-None-Match)"] = measure_endpoint(
                    url, {**headers, "If-None-Match": etag}, seconds, use_wrk
                )
    finally:
        stop_process(process)
    return {
        "size": size,
        "seconds_per_run": seconds,
        "fixed_rps": FIXED_RATE,
        "wrk": use_wrk,
        "endpoints": results,
    }
