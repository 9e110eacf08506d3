import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

from kb.importing import source_from_bytes
from kb.services.brands import brand_create

FIXTURES = Path(__file__).parent / "fixtures"


def broker_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def broker_url():
    """The Redis broker, or a skip that says why; CI (SOURCEBOOK_REQUIRE_SERVICES=1) fails."""
    url = settings.CELERY_BROKER_URL
    required = os.environ.get("SOURCEBOOK_REQUIRE_SERVICES") == "1"
    if not url:
        if required:
            pytest.fail("CELERY_BROKER_URL is not set but SOURCEBOOK_REQUIRE_SERVICES=1")
        pytest.skip("CELERY_BROKER_URL is not set: no Redis broker, so no real worker to test")
    if not broker_reachable(url):
        pytest.fail(f"CELERY_BROKER_URL={url} is set but nothing answers there")
    return url


@pytest.fixture(autouse=True)
def tasks_in_process(request, settings):
    """Tasks run in-process, as in the embedded default, except in tests that start a real
    worker (marked celery_worker): those talk to the broker."""
    if request.node.get_closest_marker("celery_worker"):
        yield
        return
    from config.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(task_always_eager=saved[0], task_eager_propagates=saved[1])


@pytest.fixture(autouse=True)
def artifact_store(settings, tmp_path_factory):
    """Every test gets its own content-addressed artifact store."""
    location = tmp_path_factory.mktemp("artifacts")
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


@pytest.fixture
def brand(db):
    return brand_create(
        slug="acme-tea",
        name="Acme Tea",
        base_url="https://tea.example",
        languages=["en", "zh-Hans"],
    )


@pytest.fixture
def other_brand(db):
    return brand_create(
        slug="other", name="Other Brand", base_url="https://other.example", languages=["en"]
    )


def jsonld_source(document, name="input.jsonld"):
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return source_from_bytes(name, raw)


@pytest.fixture(scope="session")
def live_server_sessions_ended(django_db_setup, django_db_blocker):
    """End the database sessions the live server's threads left open, once every test is
    done: the server lives for the whole test session, and on PostgreSQL a session left open
    keeps pytest-django from dropping the test database at the end. Not sooner: the main
    thread's own connections (Playwright runs its event loop there) are among them."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def browser(live_server_sessions_ended):
    """Debian's Chromium driven by Playwright (nothing downloaded); a skip that says why
    without it, a failure in CI (SOURCEBOOK_REQUIRE_SERVICES=1)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed")
    if not CHROMIUM.exists():
        if os.environ.get("SOURCEBOOK_REQUIRE_SERVICES") == "1":
            pytest.fail("Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are ordinary synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield instance
        instance.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
