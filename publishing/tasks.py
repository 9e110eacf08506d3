"""Celery tasks of publishing. Each takes ids, re-reads what it needs, and is safe to retry."""

from __future__ import annotations

from celery import shared_task

from kb.models import Brand
from kb.services.workflow import publish_scheduled
from publishing.models import PublishRequest
from publishing.services import (
    BuildBusy,
    brand_build,
    publish_request_create,
    publish_requests_redispatch,
)
from publishing.webhooks import webhook_deliver  # noqa: F401  (registers the task)


@shared_task(
    bind=True, name="publishing.build_release", acks_late=True, max_retries=120, ignore_result=True
)
def build_release(self, request_id: int) -> list[int] | str:
    """Build (and deploy) the brand's pending requests; coalesces with a running build."""
    request = PublishRequest.objects.select_related("brand").filter(pk=request_id).first()
    if request is None or request.state in (PublishRequest.State.DONE, PublishRequest.State.FAILED):
        return "nothing to do"
    try:
        releases = brand_build(brand=request.brand)
    except BuildBusy as busy:
        if self.request.is_eager:
            return "busy: the running build takes this request"
        raise self.retry(countdown=min(busy.retry_after, 30)) from None
    return [release.number for release in releases]


@shared_task(name="publishing.redispatch_pending", acks_late=True)
def redispatch_pending() -> int:
    """Beat: requests the broker never got, or a dead builder left, are queued again."""
    return publish_requests_redispatch()


@shared_task(name="publishing.publish_scheduled", acks_late=True)
def publish_scheduled_and_release() -> dict:
    """Beat, every minute: scheduled go-live and expiry, then a release of each brand touched."""
    counts = publish_scheduled()
    for brand in Brand.objects.filter(pk__in=counts["brands"]):
        publish_request_create(
            brand=brand,
            reason="Scheduled go-live or expiry",
            source=PublishRequest.Source.SCHEDULED,
        )
    return counts
