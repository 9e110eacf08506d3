"""Visibility runs through a real Celery worker on Redis and PostgreSQL.

The worker process asks the scripted engine (a real HTTP server in this test process) over
loopback. A worker killed in the middle of a run loses nothing: beat's resume re-queues the
engine and only the questions still unanswered are asked again.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from kb.services.entities import entity_create
from kb.services.workflow import object_publish
from tests.test_publish_workers import (  # noqa: F401  (fixtures)
    Worker,
    artifact_root,
    child_env,
    services,
    wait_until,
)
from visibility.models import Answer, Run
from visibility.scripted_engine import Reply, RuleScript, ScriptedEngine
from visibility.services import engine_save, prompt_set_save, run_start, runs_resume_stalled

QUEUES = "celery,visibility"
QUESTIONS = [f"Which tea brand is best for occasion {n}?" for n in range(6)]


@pytest.fixture
def asked(brand):
    organization = entity_create(
        brand=brand,
        types=["Organization"],
        iri="https://tea.example/#organization",
        data={"name": [{"@value": "Acme Tea", "@language": "en"}]},
    )
    object_publish(obj=organization)
    return prompt_set_save(
        brand=brand, name="Occasions", language="en", prompts=QUESTIONS, repetitions=2
    )


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_engines_and_a_killed_one_is_resumed(
    request, asked, brand, tmp_path, settings
):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]  # the scripted engine; workers: child_env
    # The fixtures imported from the publishing worker tests: Redis + PostgreSQL, one store.
    broker, store = request.getfixturevalue("services"), request.getfixturevalue("artifact_root")
    env = child_env(broker, store)
    slow = RuleScript([], default=Reply("Acme Tea, of course.", delay=0.4))
    with ScriptedEngine(slow) as server:
        engine_save(brand=brand, name="Alpha", base_url=server.base_url, model="m", max_retries=0)
        first = Worker(env, tmp_path / "worker-1.log", queues=QUEUES)
        try:
            first.wait_ready()
            run = run_start(prompt_set=asked)  # queued on commit
            wait_until(lambda: Answer.objects.filter(run=run).count() >= 3, 60,
                       "three answers", first)  # fmt: skip
            first.kill()  # mid-run: 12 slots, a few answered
        finally:
            first.stop()
        answered = Answer.objects.filter(run=run).count()
        assert 3 <= answered < 12
        assert Run.objects.get(pk=run.pk).state == Run.State.RUNNING
        second = Worker(env, tmp_path / "worker-2.log", queues=QUEUES)
        try:
            second.wait_ready()
            Run.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=1))
            Answer.objects.filter(run=run).update(asked_at=timezone.now() - timedelta(hours=1))
            assert runs_resume_stalled() == 1
            wait_until(
                lambda: Run.objects.get(pk=run.pk).state == Run.State.DONE, 60, "the run", second
            )
        finally:
            second.stop()
    answers = Answer.objects.filter(run=run)
    assert answers.count() == 12 and answers.filter(mentioned=True).count() == 12
    # Each slot asked once, plus at most the one in flight when the first worker died.
    assert 12 <= len(server.requests) <= 13


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_site_audit_queued_on_commit(request, brand, tmp_path, settings):
    from kb.models import Entity
    from tests.conftest import FIXTURES
    from tests.site_server import site_served
    from visibility.models import SiteAudit
    from visibility.site_audit.services import site_audit_create

    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]  # the fixture site; workers: child_env
    broker, store = request.getfixturevalue("services"), request.getfixturevalue("artifact_root")
    with site_served(FIXTURES / "poor_site") as site:
        worker = Worker(child_env(broker, store), tmp_path / "worker.log", queues=QUEUES)
        try:
            worker.wait_ready()
            audit = site_audit_create(
                brand=brand, url=f"{site.origin}/products/green-tea/", max_pages=3,
                import_entities=True,
            )  # fmt: skip
            wait_until(
                lambda: SiteAudit.objects.get(pk=audit.pk).state == SiteAudit.State.DONE,
                60, "the audit", worker,
            )  # fmt: skip
        finally:
            worker.stop()
    audit.refresh_from_db()
    assert (audit.progress_done, audit.pages.exclude(status=None).count()) == (3, 3)
    assert audit.score == audit.report["score"]
    assert Entity.objects.filter(brand=brand, label="Spring Green Tea").exists()
