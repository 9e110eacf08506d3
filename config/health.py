"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


@never_cache
def healthz(request):
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: the database and the broker answer.

    It is public (load balancers ask it through nginx), so it says only whether each check
    passed: no error text (it can name internal hosts) and nothing of any brand; the reasons
    go to the log, the brands' state to ``manage.py publishing_status``."""
    checks = {"database": database_check(), "broker": broker_check()}
    ready = all(checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {k: {"ok": v} for k, v in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)


def database_check() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any driver error means "not ready"
        logger.exception("readyz: the database does not answer")
        return False
    return True


def broker_check() -> bool:
    if not settings.CELERY_BROKER_URL:
        return True  # no broker: tasks run in-process
    from config.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception:  # kombu raises OperationalError and friends
        logger.exception("readyz: the broker does not answer")
        return False
    return True


# --- The probe container orchestrators run: `python -m config.health [URL]` ----------------
# docker-compose's web healthcheck (and anything else without curl) runs it in the web
# container. It asks readyz on gunicorn's own port, so it needs no published port, and it
# passes Django's production checks the way real traffic does, without relaxing them:
# Host is the first ALLOWED_HOSTS entry (no 400 from the host check) and
# X-Forwarded-Proto is https, as nginx sends it (no redirect from SECURE_SSL_REDIRECT). Exit
# status 0 only for a 200; redirects are not followed.

DEFAULT_PROBE_URL = "http://127.0.0.1:8000/readyz"


def probe_host(allowed_hosts: str) -> str:
    """A host name Django's host check accepts, from an ALLOWED_HOSTS value."""
    for entry in allowed_hosts.split(","):
        entry = entry.strip().lstrip(".")  # ".example.com" allows example.com itself
        if entry and entry != "*":
            return entry
    return "localhost"


def probe(url: str = DEFAULT_PROBE_URL, timeout: float = 10.0) -> tuple[int, str]:
    """The status and a short body of GET ``url``, sent as production traffic is."""
    import http.client
    import os
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(
            "GET",
            parts.path or "/",
            headers={
                "Host": probe_host(os.environ.get("ALLOWED_HOSTS", "")),
                "X-Forwarded-Proto": "https",
            },
        )
        response = conn.getresponse()
        return response.status, response.read(500).decode("utf-8", "replace")
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else DEFAULT_PROBE_URL
    try:
        status, body = probe(url)
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"{url}: HTTP {status} {body}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
