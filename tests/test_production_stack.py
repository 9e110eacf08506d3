"""The production stack from deploy/, on loopback: gunicorn, a Celery worker, beat and nginx
(Debian's package, with deploy/nginx/sourcebook.conf) against PostgreSQL and Redis.

nginx runs as Debian runs it: the master as root, `user www-data;` in the main config, so
its workers read the published site as www-data. The application's processes run with umask
0o077: the published files are readable by www-data only because Sourcebook writes them
0644 (directories 0755), not because of a lenient umask.

deploy/docker-compose.yml (validated with an .env made from the example, refused without
its secrets) is tested in tests/test_deploy_files.py."""

import gzip
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
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


SITE_CONF = BASE_DIR / "deploy" / "nginx" / "sourcebook.conf"
NGINX_USER = "www-data"  # Debian's /etc/nginx/nginx.conf: `user www-data;`
# deploy/nginx/sourcebook.js runs in njs (Debian: libnginx-mod-http-js, which Debian's main
# configuration loads from modules-enabled; this test's main configuration loads it itself).
NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
NJS_SCRIPT = SITE_CONF.parent / "sourcebook.js"


def nginx_config(
    tmp: Path, run: Path, site: Path, app_port: int, port: int, mcp_port: int = 8001
) -> Path:
    """deploy/nginx/sourcebook.conf with this test's paths and ports, inside a main config
    like Debian's /etc/nginx/nginx.conf (``user www-data;`` when the test runs as root).
    Logs and the pid file, which the master opens as root, go to ``tmp``; the temporary
    files the workers write, to ``run``, which they can enter (as /var/lib/nginx)."""
    site_conf = SITE_CONF.read_text()
    assert "root /srv/sourcebook/site/<brand-slug>/current;" in site_conf
    assert NJS_MODULE.exists(), f"{NJS_MODULE} is missing: apt-get install libnginx-mod-http-js"
    site_conf = (
        site_conf.replace("/srv/sourcebook/site/<brand-slug>/current", str(site / "current"))
        .replace(f"/etc/sourcebook/nginx/{NJS_SCRIPT.name}", str(NJS_SCRIPT))
        .replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};")
        .replace("server 127.0.0.1:8001;", f"server 127.0.0.1:{mcp_port};")
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
    )
    (tmp / "sourcebook.conf").write_text(site_conf)
    user = f"user {NGINX_USER};" if os.geteuid() == 0 else "# not root: workers run as we do"
    main = tmp / "nginx.conf"
    main.write_text(
        f"""
load_module {NJS_MODULE};
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {tmp}/sourcebook.conf;
}}
"""
    )
    return main


def serving_root() -> Path:
    """A test-owned directory standing for /srv/sourcebook: 0755, in a directory everyone
    may enter (the system's temporary directory, 1777), where pytest's own temporary
    directories are 0700 (and CI's --basetemp lies in a ``mktemp -d`` directory, 0700 too).
    Only this directory is made enterable by the test: what the deploy makes in it, and
    every file it publishes, gets its mode from Sourcebook."""
    root = Path(tempfile.mkdtemp(prefix="sourcebook-srv-"))
    root.chmod(0o755)
    for parent in root.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            shutil.rmtree(root)
            pytest.fail(f"{parent} cannot be entered by other users: set TMPDIR elsewhere")
    return root


def worker_uids(master: int) -> list[int]:
    """The real and effective user ids of the nginx master's children (its workers)."""
    uids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["PPid"]) == master:
            real, effective = fields["Uid"].split()[:2]
            uids += [int(real), int(effective)]
    return uids


def gzip_min_length() -> int:
    return int(re.search(r"^\s*gzip_min_length (\d+);", SITE_CONF.read_text(), re.M)[1])


CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
    "jsonld": "application/ld+json",
}


def check_served(base: str, path: str, file: Path) -> None:
    """``path`` served from ``file``: 200 with its exact type and bytes; gzipped when asked
    for and big enough (gzip_min_length), never when not asked for; 304 on revalidation by
    ETag (strong, and the weak one of the gzipped response) and by Last-Modified."""
    content = file.read_bytes()
    content_type = CONTENT_TYPES[file.name.rsplit(".", 1)[1]]
    status, plain, body = fetch(base + path)  # urllib asks for Accept-Encoding: identity
    assert status == 200, (path, status)
    assert plain["Content-Type"] == content_type, path
    assert "Content-Encoding" not in plain, path
    assert body == content, path
    assert plain["ETag"].startswith('"') and plain["Last-Modified"], path
    assert plain["Cache-Control"] == "public, max-age=300", path

    status, zipped, body = fetch(base + path, {"Accept-Encoding": "gzip"})
    assert status == 200, (path, status)
    assert zipped["Content-Type"] == content_type, path
    assert zipped["Cache-Control"] == "public, max-age=300", path
    assert zipped["Last-Modified"] == plain["Last-Modified"], path
    if len(content) >= gzip_min_length():
        assert zipped.get("Content-Encoding") == "gzip", path
        assert "Accept-Encoding" in zipped.get("Vary", ""), path
        assert gzip.decompress(body) == content, path
        assert zipped["ETag"] == "W/" + plain["ETag"], path  # nginx makes it weak
    else:
        assert "Content-Encoding" not in zipped and body == content, path

    for headers in (
        {"If-None-Match": plain["ETag"]},
        {"If-None-Match": zipped["ETag"], "Accept-Encoding": "gzip"},
        {"If-Modified-Since": plain["Last-Modified"]},
        {"If-Modified-Since": plain["Last-Modified"], "Accept-Encoding": "gzip"},
    ):
        status, _, body = fetch(base + path, headers)
        assert (status, body) == (304, b""), (path, headers, status)


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
    srv = serving_root()  # as /srv/sourcebook; the deploy makes site/ in it
    site = srv / "site"
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
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=logs[name],
            stderr=subprocess.STDOUT,
            umask=0o077,  # the published files' modes must not come from the umask
        )
        for name, command in commands.items()
    }
    (srv / "nginx").mkdir()
    config = nginx_config(tmp_path, srv / "nginx", site, app_port, port)
    nginx = subprocess.Popen(
        [services["nginx"], "-c", str(config), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"http://127.0.0.1:{app_port}/healthz")
        wait_for(f"{base}/healthz")
        # The workers run as www-data (as root, nginx would read any file, whatever its mode).
        expected = pwd.getpwnam(NGINX_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        uids = worker_uids(nginx.pid)
        assert uids and set(uids) == {expected}, uids
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

        live = site / "current"
        # The full text in parts when the brand's is long (its index, llms-full.txt, else).
        full_parts = sorted(p.name for p in live.glob("llms-full-*.txt"))
        full_text = "/" + (full_parts[0] if full_parts else "llms-full.txt")
        sitemap_files = sorted(p.name for p in (live / "sitemaps").glob("*.xml"))
        assert sitemap_files, "no file under /sitemaps/"
        paths = ["/", "/products/biluochun/", "/products/biluochun/index.html.md", "/llms.txt",
                 full_text, "/sitemap.xml", f"/sitemaps/{sitemap_files[0]}", "/graph.jsonld",
                 "/robots.txt", "/zh-Hans/", "/zh-Hans/products/biluochun/",
                 "/zh-Hans/llms.txt"]  # fmt: skip
        for path in paths:
            relative = path.lstrip("/") + ("index.html" if path.endswith("/") else "")
            check_served(base, path, live / relative)
        assert "碧螺春".encode() in (live / "zh-Hans/products/biluochun/index.html").read_bytes()
        _, headers, _ = fetch(f"{base}/products/biluochun/")
        assert headers["Link"] == (
            '</products/biluochun/index.html.md>; rel="alternate"; type="text/markdown", '
            '</llms.txt>; rel="describedby"'
        )
        status, _, body = fetch(f"{base}/llms.txt")
        assert body.startswith(b"# Westlake Leaf Tea\n\n> ")
        status, _, _ = fetch(f"{base}/no/such/page/")
        assert status == 404
        # The admin's scripts read their messages in the editor's language through nginx.
        status, headers, body = fetch(f"{base}/admin/i18n/js/kb/", {"Accept-Language": "zh-CN"})
        assert status == 200 and headers["Content-Type"].startswith("text/javascript"), body
        assert "查找属性".encode("unicode_escape") in body  # in its JSON
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
        shutil.rmtree(srv, ignore_errors=True)
    # Structured logs: one JSON object per line, the build task among them.
    records = [
        json.loads(line)
        for line in (tmp_path / "worker.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any("publishing.build_release" in r["message"] and r["level"] == "INFO" for r in records)
