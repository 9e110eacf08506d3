"""Celery tasks of AI visibility. Each takes ids, re-reads what it needs, and is safe to retry."""

from __future__ import annotations

from celery import shared_task

from visibility.models import PromptSet, Run


@shared_task(name="visibility.run_prompt_set", acks_late=True, ignore_result=True)
def run_prompt_set(prompt_set_id: int) -> int | None:
    """Beat: start a run of a prompt set over the brand's enabled engines."""
    from visibility.services import VisibilityError, run_start

    prompt_set = PromptSet.objects.select_related("brand").filter(pk=prompt_set_id).first()
    if prompt_set is None or not prompt_set.enabled:
        return None
    try:
        return run_start(prompt_set=prompt_set, trigger="schedule").pk
    except VisibilityError:
        return None


@shared_task(
    bind=True,
    name="visibility.run_engine",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(ConnectionError,),
    max_retries=3,
)
def run_engine(self, run_id: int, engine_id: int) -> int:
    """Ask one engine everything a run still lacks from it (resumes after a crash)."""
    from visibility.services import run_engine_execute

    if not Run.objects.filter(pk=run_id, state=Run.State.RUNNING).exists():
        return 0
    return run_engine_execute(run_id=run_id, engine_id=engine_id)


@shared_task(name="visibility.resume_stalled_runs", acks_late=True, ignore_result=True)
def resume_stalled_runs() -> int:
    """Beat, every 10 minutes: runs whose tasks were lost are picked up again."""
    from visibility.services import runs_resume_stalled

    return runs_resume_stalled()


@shared_task(
    name="visibility.alerts_email",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError,),  # the mail server is down or refused: try again later
    retry_backoff=60,
    max_retries=5,
)
def alerts_email(run_id: int) -> bool:
    """The digest of a run's alerts not yet emailed."""
    from visibility.alerts import alerts_email_send

    return alerts_email_send(run_id=run_id)


@shared_task(
    name="visibility.alert_email",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=60,
    max_retries=5,
)
def alert_email(alert_id: int) -> bool:
    """Queued by releases before digests: sends the digest of the alert's run."""
    from visibility.alerts import alerts_email_send
    from visibility.models import Alert

    run_id = Alert.objects.filter(pk=alert_id).values_list("run_id", flat=True).first()
    return alerts_email_send(run_id=run_id) if run_id else False


@shared_task(name="visibility.judge_answer", acks_late=True, ignore_result=True)
def judge_answer(answer_id: int) -> bool:
    """Ask the prompt set's sentiment judge how the answer speaks of each brand it names."""
    from visibility.sentiment import answer_judge

    return answer_judge(answer_id=answer_id)


@shared_task(name="visibility.site_audit_run", acks_late=True, ignore_result=True)
def site_audit_run_task(audit_id: int) -> str | None:
    """Crawl and report one site audit (a finished audit is left alone)."""
    from visibility.models import SiteAudit
    from visibility.site_audit.services import site_audit_run

    if not SiteAudit.objects.filter(pk=audit_id).exists():
        return None
    return site_audit_run(audit_id=audit_id).state
