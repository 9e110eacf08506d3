"""The production stack from deploy/, on loopback: gunicorn, a Celery worker, beat and nginx
(Debian's package, with deploy/nginx/sourcebook.conf) against PostgreSQL and Redis."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from kb.demo_brand import demo_load
from kb.models import Brand
from kb.services.tokens import api_token_create
from publishing.models import Target
from tests.test_celery_and_settings import database_url_for_tests

BASE_DIR = Path(settings.BASE_DIR)
REQUIRED = os.environ.get("SOURCEBOOK_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def fetch(url: str, headers: dict | None = None, data: bytes | None = None):
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def nginx_config(tmp: Path, site: Path, app_port: int, port: int) -> Path:
    """deploy/nginx/sourcebook.conf with this test's paths and ports, inside a main config."""
    site_conf = (BASE_DIR / "deploy" / "nginx" / "sourcebook.conf").read_text()
    site_conf = (
        site_conf.replace("/srv/sourcebook/site/current", str(site / "current"))
        .replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};")
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
    )
    (tmp / "sourcebook.conf").write_text(site_conf)
    main = tmp / "nginx.conf"
    main.write_text(
        f"""
user root;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/sourcebook.conf;
}}
"""
    )
    return main


@pytest.fixture
def services(broker_url):
    if connection.vendor != "postgresql":
        pytest.skip("the production stack runs on PostgreSQL (DATABASE_URL is not PostgreSQL)")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        if REQUIRED:
            pytest.fail("nginx is not installed (apt-get install nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return {"broker": broker_url, "nginx": nginx}


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_production_stack_publishes_and_nginx_serves_it(services, tmp_path, settings):
    demo_load()
    brand = Brand.objects.get(slug="westlake-leaf")
    site = tmp_path / "site"
    Target.objects.create(
        brand=brand, name="nginx root", kind=Target.Kind.DIRECTORY, operator_path=str(site)
    )
    _, token = api_token_create(brand=brand, scopes=["read", "publish"])
    artifacts = tmp_path / "artifacts"
    app_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": "production-stack-test-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # TLS would end at nginx; this test speaks plain HTTP
        "DATABASE_URL": database_url_for_tests(),
        "CELERY_BROKER_URL": services["broker"],
        "SOURCEBOOK_ARTIFACT_ROOT": str(artifacts),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    python_bin = Path(sys.executable).parent
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("web", "worker", "beat")}
    commands = {
        "web": [str(python_bin / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{app_port}",
                "--workers", "2", "--access-logfile", "-"],
        "worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
                   "-Q", "celery,publishing,webhooks", "--without-gossip", "--without-mingle",
                   "--loglevel", "INFO"],
        "beat": [sys.executable, "-m", "celery", "-A", "config", "beat",
                 "--schedule", str(tmp_path / "beat-schedule")],
    }  # fmt: skip
    processes = {
        name: subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=logs[name], stderr=subprocess.STDOUT
        )
        for name, command in commands.items()
    }
    config = nginx_config(tmp_path, site, app_port, port)
    nginx = subprocess.Popen(
        [services["nginx"], "-c", str(config), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"http://127.0.0.1:{app_port}/healthz")
        wait_for(f"{base}/healthz")
        status, _, body = fetch(f"{base}/readyz")
        assert status == 200, body
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, headers, body = fetch(
            f"{base}/api/v1/brands/westlake-leaf/publish/", auth, b'{"reason": "stack test"}'
        )
        assert status == 202, body
        follow = base + headers["Location"]
        deadline = time.monotonic() + 90
        while True:
            status, _, body = fetch(follow, auth)
            state = json.loads(body)["state"]
            if state in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert state == "done", body

        checks = {
            "/llms.txt": "text/plain; charset=utf-8",
            "/products/biluochun/": "text/html; charset=utf-8",
            "/products/biluochun/index.html.md": "text/markdown; charset=utf-8",
            "/sitemap.xml": "application/xml; charset=utf-8",
            "/graph.jsonld": "application/ld+json",
            "/zh-Hans/llms.txt": "text/plain; charset=utf-8",
        }
        for path, content_type in checks.items():
            status, headers, body = fetch(base + path)
            assert status == 200, (path, status)
            assert headers["Content-Type"] == content_type, path
            assert headers["ETag"] and headers["Last-Modified"], path
            assert headers["Cache-Control"] == "public, max-age=300", path
            file = (
                site / "current" / (path.lstrip("/") + ("index.html" if path.endswith("/") else ""))
            )
            assert body == file.read_bytes(), path
            status, _, _ = fetch(base + path, {"If-None-Match": headers["ETag"]})
            assert status == 304, path
        _, headers, _ = fetch(f"{base}/products/biluochun/")
        assert headers["Link"] == (
            '</products/biluochun/index.html.md>; rel="alternate"; type="text/markdown", '
            '</llms.txt>; rel="describedby"'
        )
        status, _, body = fetch(f"{base}/llms.txt")
        assert body.startswith(b"# Westlake Leaf Tea\n\n> ")
        status, _, _ = fetch(f"{base}/no/such/page/")
        assert status == 404
    finally:
        nginx.terminate()
        for process in processes.values():
            process.terminate()
        for process in [nginx, *processes.values()]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in logs.values():
            handle.close()
    # Structured logs: one JSON object per line, the build task among them.
    records = [
        json.loads(line)
        for line in (tmp_path / "worker.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any("publishing.build_release" in r["message"] and r["level"] == "INFO" for r in records)


def test_compose_file_validates_and_requires_its_secrets():
    compose = shutil.which("docker-compose")
    if compose is None:
        if REQUIRED:
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    file = BASE_DIR / "deploy" / "docker-compose.yml"
    env = {**os.environ, "SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "www.example.com",
           "POSTGRES_PASSWORD": "p"}  # fmt: skip
    ok = subprocess.run([compose, "-f", str(file), "config", "--services"], env=env,
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert sorted(ok.stdout.split()) == sorted(
        ["beat", "migrate", "nginx", "postgres", "redis", "web", "webhooks", "worker"]
    )
    env.pop("SECRET_KEY")
    missing = subprocess.run(
        [compose, "-f", str(file), "config"], env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "set SECRET_KEY" in missing.stderr
