"""Celery tasks. Each takes ids, re-reads what it needs and is safe to run twice."""

from celery import shared_task

from kb.services.workflow import publish_scheduled as publish_scheduled_service


@shared_task(name="kb.tasks.publish_scheduled", acks_late=True)
def publish_scheduled() -> dict[str, int]:
    """Polled by beat every minute: go-live and expiry stored on revisions."""
    return publish_scheduled_service()


@shared_task(name="kb.tasks.import_run", acks_late=True)
def import_run(job_id: int) -> str:
    """A large API import (kb.models.ImportJob): all or nothing, claimed once."""
    from kb.services.imports import import_job_run

    return import_job_run(job_id=job_id)
