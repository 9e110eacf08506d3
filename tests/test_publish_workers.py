"""Publishing through real Celery workers: real Redis, real PostgreSQL, a real S3 server.

Every worker, Redis server and command runs as its own process, exactly as in production:
the test only makes requests, waits on the database, and judges the result from outside
(the files under the target directory, the bucket through plain boto3, the worker's log).
Workers are killed in ``finally`` blocks, whatever happens.

Run with the services (CI sets SOURCEBOOK_REQUIRE_SERVICES=1, which turns skips into failures):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 SOURCEBOOK_REQUIRE_SERVICES=1 \
    .venv/bin/python -m pytest -q tests/test_publish_workers.py
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from kb.demo_brand import demo_load
from kb.importing import source_from_bytes
from kb.models import Entity
from kb.services.entities import entity_update
from kb.services.imports import jsonld_import
from kb.services.workflow import object_publish
from publishing.models import Deployment, PublishRequest, Release, Target
from publishing.services import publish_request_create
from publishing.store import artifact_read
from publishing.targets.directory import COMPLETE_MARKER
from tests import s3_server as moto_s3
from tests.s3_server import s3_bucket, s3_server  # noqa: F401
from tests.test_celery_and_settings import database_url_for_tests

BASE_DIR = Path(django_settings.BASE_DIR)
SLUG = "westlake-leaf"
QUEUES = "celery,publishing,webhooks"
CHANGED_PRODUCT = "https://www.westlakeleaf.example/products/longjing-yuqian/#product"
CHANGED_PAGE = "products/longjing-yuqian/index.html"
BULK_PRODUCTS = 1000
INTERRUPTED = "Interrupted: the worker building this release stopped."


def required() -> bool:
    return os.environ.get("SOURCEBOOK_REQUIRE_SERVICES") == "1"


@pytest.fixture
def services(broker_url):
    """Redis (the ``broker_url`` fixture: skip, or fail in CI) and PostgreSQL, or a skip."""
    if connection.vendor != "postgresql":
        reason = (
            f"DATABASE_URL is not PostgreSQL (the database is {connection.vendor}): "
            "workers in other processes are tested against PostgreSQL only"
        )
        if required():
            pytest.fail(f"{reason}, but SOURCEBOOK_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return broker_url


@pytest.fixture
def redis_server_binary(services):
    binary = shutil.which("redis-server")
    if binary is None:
        if required():
            pytest.fail("redis-server is not on PATH, but SOURCEBOOK_REQUIRE_SERVICES=1")
        pytest.skip("redis-server is not on PATH: no private Redis to stop and start")
    return binary


@pytest.fixture
def artifact_root(settings, tmp_path):
    """One artifact store for the test and its workers (SOURCEBOOK_ARTIFACT_ROOT for those)."""
    root = tmp_path / "artifacts"
    storages = copy.deepcopy(settings.STORAGES)
    storages["artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(root)},
    }
    settings.STORAGES = storages
    return root


# --- processes -----------------------------------------------------------------------------


def child_env(broker: str, artifact_root: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "SOURCEBOOK_ARTIFACT_ROOT": str(artifact_root),
        **moto_s3.EGRESS_ENV,  # loopback servers (moto, scripted engines) allowed
        **extra,
    }


def stop(process: subprocess.Popen | None) -> None:
    """Terminate (then kill) a child process and reap it; a no-op once it has exited."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


class Worker:
    """``celery -A config worker`` (solo pool: one process, so SIGKILL leaves no children)."""

    def __init__(self, env: dict[str, str], log: Path, queues: str = QUEUES):
        self.log = log
        self.handle = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "-Q",
                queues,
                "-n",
                f"publish-test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(lambda: " ready." in self.output(), timeout, "the worker to be ready", self)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        try:
            stop(self.process)
        finally:
            self.handle.close()


def wait_until(predicate, timeout: float, what: str, worker: Worker | None = None, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(
                f"the worker exited ({worker.process.returncode}) while waiting for {what}:\n"
                + worker.tail()
            )
        time.sleep(every)
    pytest.fail(
        f"timed out after {timeout:.0f}s waiting for {what}"
        + (f"; worker log:\n{worker.tail()}" if worker else "")
    )


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` on a loopback port, which a test may stop and start again."""

    def __init__(self, binary: str, directory: Path):
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture
def private_redis(redis_server_binary, tmp_path):
    server = RedisServer(redis_server_binary, tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- judging from outside ------------------------------------------------------------------


def manifest(release: Release) -> dict[str, str]:
    return dict(release.artifacts.values_list("path", "sha256"))


def tree_hashes(tree: Path) -> dict[str, str]:
    """Every file under ``tree`` (but the completeness marker) with the SHA-256 of its bytes."""
    return {
        path.relative_to(tree).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in tree.rglob("*")
        if path.is_file() and path.name != COMPLETE_MARKER
    }


def assert_serves(site: Path, files: dict[str, str], artifact_root: Path) -> None:
    """``DIR/current`` holds exactly ``files`` (path -> SHA-256), judged by hashing the bytes."""
    served = tree_hashes(site / "current")
    if served == files:
        return
    wrong = sorted(path for path in files.keys() & served.keys() if served[path] != files[path])
    details = []
    for path in wrong[:10]:
        stored = artifact_root / files[path][:2] / files[path][2:4] / files[path]
        content = stored.read_bytes() if stored.is_file() else None
        details.append(
            f"{path}: manifest {files[path][:12]}…, served {served[path][:12]}…; the store's "
            + (
                f"file has {len(content)} bytes hashing to "
                f"{hashlib.sha256(content).hexdigest()[:12]}…"
                if content is not None
                else "file is missing"
            )
        )
    pytest.fail(
        f"{site / 'current'} does not hold the release: "
        f"{len(files.keys() - served.keys())} missing, {len(served.keys() - files.keys())} "
        f"extra, {len(wrong)} with other bytes\n" + "\n".join(details)
    )


def served_release(site: Path) -> str:
    """The release directory ``DIR/current`` points at, as ``.releases/<n>``."""
    return os.readlink(site / "current")


def request_states(*requests: PublishRequest) -> list[str]:
    return list(
        PublishRequest.objects.filter(pk__in=[r.pk for r in requests])
        .order_by("pk")
        .values_list("state", flat=True)
    )


def all_finished(*requests: PublishRequest) -> bool:
    states = request_states(*requests)
    assert len(states) == len(requests), "a publish request disappeared"
    return all(state in ("done", "failed") for state in states)


def bucket_objects(endpoint: str, bucket: str) -> dict[str, int]:
    client = moto_s3.s3_client(endpoint)
    return {
        entry["Key"]: entry["Size"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for entry in page.get("Contents", ())
    }


def queued_line(out: str) -> int:
    match = re.fullmatch(r"Publish request (\d+) queued for the workers\.\n", out)
    assert match, out
    return int(match.group(1))


# --- 1. end to end -------------------------------------------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_builds_and_deploys_to_a_directory_and_s3(
    services,
    artifact_root,
    tmp_path,
    s3_server,  # noqa: F811
    s3_bucket,  # noqa: F811
):
    brand = demo_load()["brand"]
    site = tmp_path / "site"
    Target.objects.create(
        brand=brand, name="site", kind=Target.Kind.DIRECTORY, operator_path=str(site)
    )
    Target.objects.create(
        brand=brand,
        name="cdn",
        kind=Target.Kind.S3,
        config={
            "bucket": s3_bucket,
            "endpoint_url": s3_server,
            "location": "site",
            "access_key_env": moto_s3.ACCESS_KEY_ENV,
            "secret_key_env": moto_s3.SECRET_KEY_ENV,
        },
    )
    env = child_env(services, artifact_root)  # with the S3 credentials' variables
    worker = Worker(env, tmp_path / "worker.log")
    try:
        request = publish_request_create(brand=brand, reason="End to end")  # sent on commit
        assert PublishRequest.objects.get(pk=request.pk).dispatched_at is not None
        wait_until(lambda: all_finished(request), 90, "the publish request", worker)

        request.refresh_from_db()
        assert request.state == PublishRequest.State.DONE
        release = request.release
        assert (release.number, release.state, release.error) == (1, Release.State.DEPLOYED, "")
        assert release.reason == "End to end"
        assert sorted(release.deployments.values_list("target__name", "state", "uploaded")) == [
            ("cdn", "done", len(manifest(release))),
            ("site", "done", len(manifest(release))),
        ]
        files = manifest(release)
        assert release.summary["artifacts"] == len(files) > 100
        assert {"llms.txt", "sitemap.xml", "robots.txt", CHANGED_PAGE} <= set(files)

        # The directory: current -> .releases/1, holding exactly the manifest.
        assert served_release(site) == ".releases/1"
        llms = (site / "current" / "llms.txt").read_bytes()
        assert llms == artifact_read(files["llms.txt"])
        assert llms.startswith(b"# Westlake Leaf Tea\n")
        assert_serves(site, files, artifact_root)

        # The bucket, read with plain boto3: exactly the manifest's keys, with their sizes.
        sizes = dict(release.artifacts.values_list("path", "size"))
        assert bucket_objects(s3_server, s3_bucket) == {f"site/{p}": n for p, n in sizes.items()}
        body = moto_s3.s3_client(s3_server).get_object(Bucket=s3_bucket, Key="site/llms.txt")
        assert body["Body"].read() == llms

        # `publish --out DIR --wait` from the command line, through the same worker.
        out_dir = tmp_path / "cli-site"
        cli = manage("publish", SLUG, "--out", str(out_dir), "--wait", env=env)
        assert cli.returncode == 0, cli.stderr + worker.tail()
        second = Release.objects.get(brand=brand, number=2)
        assert second.state == Release.State.DEPLOYED
        cli_request = PublishRequest.objects.get(release=second)
        assert (cli_request.state, cli_request.source) == ("done", "cli")
        assert cli_request.target.operator_path == str(out_dir.resolve())
        assert cli_request.target.config == {}
        summary = second.summary
        assert summary["artifacts"] == len(manifest(second)) == len(files)
        assert manifest(second) == files  # nothing changed in between
        assert (summary["rendered"], summary["reused"], summary["changed"]) == (0, len(files), 0)
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(summary["counts"].items()))
        assert cli.stdout == (
            f"Release 2 of {SLUG}: {len(files)} artifacts ({counts}), 0 changed; "
            f"rendered 0, reused {len(files)}; "
            f"built in {summary['seconds']:.2f}s.\n"
            f"Deployed to {out_dir.resolve()}: {len(files)} files, {len(files)} new or changed, "
            "0 removed.\n"
            f"Serve {out_dir.resolve() / 'current'}\n"
        )
        assert_serves(out_dir, files, artifact_root)
        # Only the CLI's directory got release 2: the brand's own targets still hold 1.
        assert served_release(site) == ".releases/1"
        assert list(second.deployments.values_list("target_id", flat=True)) == [
            cli_request.target_id
        ]
    finally:
        worker.stop()
    log = worker.output()
    assert re.search(r"Task publishing\.build_release\[[0-9a-f-]+\] received", log), log
    assert re.search(
        r"Task publishing\.build_release\[[0-9a-f-]+\] succeeded in [0-9.]+s: \[1\]", log
    ), log
    assert re.search(
        r"Task publishing\.build_release\[[0-9a-f-]+\] succeeded in [0-9.]+s: \[2\]", log
    ), log


# --- 2. a worker killed mid-build ---------------------------------------------------------


def bulk_products(count: int) -> bytes:
    """A JSON-LD document of ``count`` bilingual products."""
    graph = [
        {
            "@id": f"https://www.westlakeleaf.example/products/bulk-{number:04d}/#product",
            "@type": "Product",
            "name": [
                {"@value": f"Bulk tea {number}", "@language": "en"},
                {"@value": f"散装茶 {number}", "@language": "zh-Hans"},
            ],
            "description": [{"@value": f"Loose-leaf tea number {number}.", "@language": "en"}],
            "image": f"https://www.westlakeleaf.example/media/bulk-{number:04d}.jpg",
            "offers": {"@type": "Offer", "price": "9.50", "priceCurrency": "EUR"},
        }
        for number in range(count)
    ]
    return json.dumps({"@context": "https://schema.org", "@graph": graph}).encode()


def publish_queued(env: dict[str, str]) -> PublishRequest:
    """``manage.py publish westlake-leaf`` (to the brand's targets), queued for the workers."""
    cli = manage("publish", SLUG, env=env)
    assert cli.returncode == 0, cli.stderr
    return PublishRequest.objects.get(pk=queued_line(cli.stdout))


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_build_leaves_the_site_intact_and_the_next_build_recovers(
    services, private_redis, artifact_root, tmp_path
):
    """SIGKILL while building: the previous release stays served; once the dead builder's
    lease expires, the next build fails the interrupted release and takes its requests.

    A private Redis, so the killed worker's unacknowledged message dies with it instead of
    being redelivered, hours later, to some other test's worker on the shared broker.
    """
    brand = demo_load()["brand"]
    site = tmp_path / "site"
    Target.objects.create(
        brand=brand, name="site", kind=Target.Kind.DIRECTORY, operator_path=str(site)
    )
    env = child_env(private_redis.url, artifact_root, SOURCEBOOK_BUILD_LEASE_SECONDS="3")
    first_worker = Worker(env, tmp_path / "worker-1.log")
    second_worker = None
    try:
        # Release 1: the demo brand, served from DIR/current.
        first_request = publish_queued(env)
        wait_until(lambda: all_finished(first_request), 90, "release 1", first_worker)
        first_request.refresh_from_db()
        first = first_request.release
        assert (first_request.state, first.number, first.state) == ("done", 1, "deployed")
        first_files = manifest(first)
        assert_serves(site, first_files, artifact_root)
        old_page = (site / "current" / CHANGED_PAGE).read_text()

        # Release 2 takes seconds: the builder is incremental, so what makes it slow is a
        # thousand products that release 1 does not have (and one changed product).
        jsonld_import(
            brand=brand,
            sources=[source_from_bytes("bulk.jsonld", bulk_products(BULK_PRODUCTS))],
            publish=True,
        )
        product = Entity.objects.get(brand=brand, iri=CHANGED_PRODUCT)
        names = [
            {"@value": "Yuqian Longjing, new harvest", "@language": "en"}
            if name["@language"] == "en"
            else name
            for name in product.data["name"]
        ]
        product = entity_update(
            entity=product, data={**product.data, "name": names}, expected_version=product.version
        )
        object_publish(obj=product)
        assert "Yuqian Longjing, new harvest" not in old_page

        second_request = publish_queued(env)

        def part_built():
            row = (
                Release.objects.filter(brand=brand, number=2)
                .values_list("state", "progress_done", "progress_total")
                .first()
            )
            if row is not None and row[0] != Release.State.BUILDING:
                pytest.fail(f"release 2 ended ({row}) before the worker could be killed")
            return row is not None and 0 < row[1] < row[2]

        wait_until(part_built, 90, "release 2 to be part-built", first_worker, every=0.02)
        first_worker.kill()
        assert first_worker.process.returncode == -signal.SIGKILL

        # The live site is release 1, byte for byte; release 2 left nothing in the target.
        assert served_release(site) == ".releases/1"
        assert_serves(site, first_files, artifact_root)
        assert (site / "current" / CHANGED_PAGE).read_text() == old_page
        assert sorted(os.listdir(site / ".releases")) == ["1"]
        interrupted = Release.objects.get(brand=brand, number=2)
        assert interrupted.state == Release.State.BUILDING
        assert 0 < interrupted.progress_done < interrupted.progress_total
        second_request.refresh_from_db()
        assert (second_request.state, second_request.release_id) == ("building", interrupted.pk)

        # A new worker and a new request: once the dead builder's lease (3 s) has expired,
        # the build fails release 2, requeues its request and builds both into release 3.
        second_worker = Worker(env, tmp_path / "worker-2.log")
        third_request = publish_queued(env)
        wait_until(
            lambda: all_finished(second_request, third_request),
            120,
            "the interrupted and the new request",
            second_worker,
        )
    finally:
        first_worker.kill()
        first_worker.stop()
        if second_worker is not None:
            second_worker.stop()

    interrupted.refresh_from_db()
    assert (interrupted.state, interrupted.error) == (Release.State.FAILED, INTERRUPTED)
    assert interrupted.finished_at is not None
    assert not interrupted.deployments.exists()
    third = Release.objects.get(brand=brand, number=3)
    assert third.state == Release.State.DEPLOYED
    assert third.summary["previous"] == 1
    for request in (second_request, third_request):
        request.refresh_from_db()
        assert (request.state, request.release_id) == ("done", third.pk)
    assert [(r.number, r.state) for r in Release.objects.filter(brand=brand)] == [
        (3, "deployed"),
        (2, "failed"),
        (1, "deployed"),
    ]
    third_files = manifest(third)
    assert f"products/bulk-{BULK_PRODUCTS - 1:04d}/index.html" in third_files
    assert len(third_files) > len(first_files) + 2 * BULK_PRODUCTS
    assert served_release(site) == ".releases/3"
    assert_serves(site, third_files, artifact_root)
    assert "Yuqian Longjing, new harvest" in (site / "current" / CHANGED_PAGE).read_text()
    assert list(Deployment.objects.filter(release=third).values_list("target__name", "state")) == [
        ("site", "done")
    ]
    assert re.search(
        r"Task publishing\.build_release\[[0-9a-f-]+\] succeeded in [0-9.]+s: \[3\]",
        second_worker.output(),
    ), second_worker.output()


# --- 3. the broker down while publishes are requested --------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_publishes_requested_while_redis_is_down_are_built_once_it_is_back(
    services, private_redis, artifact_root, tmp_path
):
    brand = demo_load()["brand"]
    site = tmp_path / "site"
    env = child_env(private_redis.url, artifact_root)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        private_redis.stop()

        outputs = []
        for _ in range(2):
            cli = manage("publish", SLUG, "--out", str(site), env=env)
            assert cli.returncode == 0, cli.stderr
            outputs.append(cli.stdout)
        requests = list(PublishRequest.objects.filter(brand=brand).order_by("pk"))
        assert len(requests) == 2
        assert outputs == [
            f"The broker is unreachable: publish request {r.pk} is recorded and pending; "
            "it is sent to the workers as soon as the broker is back.\n"
            for r in requests
        ]
        for request in requests:
            assert (request.state, request.source, request.release_id) == ("pending", "cli", None)
            assert request.dispatched_at is None
            assert request.dispatch_error.strip() != ""  # why it was not sent
        assert not Release.objects.filter(brand=brand).exists()

        private_redis.start()  # the same port, empty
        dispatched = manage("dispatch_publish_requests", env=env)
        assert dispatched.returncode == 0, dispatched.stderr
        # One build takes every pending request of the brand: one is sent.
        assert dispatched.stdout == "Dispatched 1 publish request(s).\n"

        wait_until(lambda: all_finished(*requests), 90, "both publish requests", worker)
    finally:
        worker.stop()
    # The worker lived through the outage: it lost the broker, reconnected by itself, built.
    log = worker.output()
    assert "consumer: Connection to broker lost." in log, log
    assert log.count(f"Connected to redis://:**@127.0.0.1:{private_redis.port}/0") == 2, log
    assert re.search(
        r"Task publishing\.build_release\[[0-9a-f-]+\] succeeded in [0-9.]+s: \[1\]", log
    ), log
    releases = list(Release.objects.filter(brand=brand))
    for request in requests:
        request.refresh_from_db()
        assert request.state == PublishRequest.State.DONE
        assert request.release.state == Release.State.DEPLOYED
    assert [(r.number, r.state) for r in releases] == [(1, "deployed")]
    assert {r.release_id for r in requests} == {releases[0].pk}
    assert served_release(site) == ".releases/1"
    assert_serves(site, manifest(releases[0]), artifact_root)
    assert (site / "current" / "llms.txt").read_bytes().startswith(b"# Westlake Leaf Tea\n")
