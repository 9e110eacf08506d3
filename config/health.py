"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def healthz(request):
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: the database and the broker answer; the last release of each brand."""
    from publishing.selectors import brands_publishing_state

    checks: dict[str, dict] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as error:  # any driver error means "not ready"
        checks["database"] = {"ok": False, "error": str(error)[:200]}
    if settings.CELERY_BROKER_URL:
        checks["broker"] = broker_check()
    else:
        checks["broker"] = {"ok": True, "detail": "no broker: tasks run in-process"}
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    if checks["database"]["ok"]:
        body["brands"] = brands_publishing_state()
    return JsonResponse(body, status=200 if ready else 503)


def broker_check() -> dict:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True}
    except Exception as error:  # kombu raises OperationalError and friends
        return {"ok": False, "error": str(error)[:200]}
