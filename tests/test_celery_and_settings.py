"""Real Celery worker on Redis; settings from the environment; loud broker failures."""

import os
import secrets
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from kb.models import Revision, Status
from kb.services.entities import entity_create
from kb.services.workflow import object_publish
from kb.tasks import publish_scheduled

BASE_DIR = settings.BASE_DIR


def database_url_for_tests() -> str:
    """The test database (not the development one) as a URL for a child process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def run_manage(*args, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_consumes_from_redis_and_publishes(broker_url, brand):
    product = entity_create(
        brand=brand,
        types=["Product"],
        data={
            "name": [{"@value": "Longjing", "@language": "en"}],
            "image": [{"@id": "https://tea.example/img/longjing.jpg"}],
            "offers": [
                {
                    "@type": ["Offer"],
                    "price": [{"@value": "12.50"}],
                    "priceCurrency": [{"@value": "USD"}],
                }
            ],
        },  # fmt: skip
        iri="https://tea.example/products/longjing/#product",
    )
    object_publish(obj=product, go_live_at=timezone.now() + timedelta(hours=1))
    Revision.objects.filter(pk=product.latest_revision_id).update(
        go_live_at=timezone.now() - timedelta(minutes=1)
    )
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "DATABASE_URL": database_url_for_tests(),
            "CELERY_BROKER_URL": broker_url,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        result = publish_scheduled.apply_async(queue=queue)
        assert result.get(timeout=90) == {"published": 1, "expired": 0, "brands": [brand.pk]}
        # Safe to retry: a second run finds nothing left to do.
        again = publish_scheduled.apply_async(queue=queue)
        assert again.get(timeout=60) == {"published": 0, "expired": 0, "brands": []}
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    assert "kb.tasks.publish_scheduled" in output
    product.refresh_from_db()
    assert product.status == Status.PUBLISHED
    assert product.live_revision_id == product.latest_revision_id


def test_unreachable_broker_is_a_loud_error():
    env = {"CELERY_BROKER_URL": "redis://127.0.0.1:9/0"}
    checked = run_manage("check", "--deploy", "--tag", "broker", env=env)
    assert checked.returncode == 1
    assert (
        "(sourcebook.E001) CELERY_BROKER_URL is set but the broker cannot be reached"
        in checked.stderr
    )
    queued = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from kb.tasks import publish_scheduled; publish_scheduled.delay()",
        ],
        cwd=BASE_DIR,
        env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert queued.returncode == 1
    assert "Connection refused" in queued.stderr


def test_embedded_default_runs_tasks_in_process():
    if settings.CELERY_BROKER_URL:
        pytest.skip("a broker is configured: tasks go to workers, not in-process")
    assert settings.CELERY_TASK_ALWAYS_EAGER is True


def test_check_deploy_is_clean_in_production_settings():
    env = {
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "sourcebook.example",
    }
    result = run_manage("check", "--deploy", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_production_without_secret_key_refuses_to_start():
    result = run_manage("check", env={"DJANGO_DEBUG": "0", "SECRET_KEY": ""})
    assert result.returncode == 1
    assert "SECRET_KEY must be set when DJANGO_DEBUG is off." in result.stderr
