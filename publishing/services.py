"""Publishing actions: request, build, deploy, roll back, prune. Admin, API, CLI and tasks call these.

A publish request is recorded before anything is queued, so a broker outage delays it but
never loses it. Builds of one brand never overlap: a lease (renewed while building, taken
over once expired) admits one builder, which also takes every request that arrived in the
meantime into its next release.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from itertools import chain

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from kb.models import Brand
from kb.services.permissions import require
from kb.services.workflow import object_publish
from publishing.build import (
    Builder,
    BuildInterrupted,
    release_artifacts_discard,
    release_artifacts_save,
)
from publishing.locks import fork_guard
from publishing.models import (
    BuildLease,
    Deployment,
    PublishRequest,
    Release,
    ReleaseArtifact,
    SiteSettings,
    Target,
    WebhookDelivery,
)
from publishing.plan import plan_artifacts
from publishing.selectors import release_latest_built
from publishing.site_state import state_artifacts
from publishing.store import artifact_prune
from publishing.targets.directory import directory_deploy, directory_prune
from publishing.targets.s3 import s3_deploy

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class BuildBusy(Exception):
    """Another build of the brand holds the lease."""

    def __init__(self, brand: Brand, retry_after: float):
        self.retry_after = retry_after
        super().__init__(
            f"A release of {brand.slug!r} is being built; requests made meanwhile go into "
            "the next release."
        )


class PublishError(Exception):
    pass


def lease_seconds() -> int:
    return int(getattr(settings, "SOURCEBOOK_BUILD_LEASE_SECONDS", 120))


# --- requests ------------------------------------------------------------------------------


def publish_request_create(
    *,
    brand: Brand,
    user=None,
    reason: str = "",
    source: str = PublishRequest.Source.MANUAL,
    target: Target | None = None,
    dispatch: bool = True,
) -> PublishRequest:
    """Record a request to publish; it is queued once the transaction commits."""
    require(user, brand, "publish")
    if target is not None and target.brand_id != brand.pk:
        raise PublishError(f"Target {target.name!r} does not belong to brand {brand.slug!r}.")
    request = PublishRequest.objects.create(
        brand=brand,
        requested_by=user if user is not None and user.is_authenticated else None,
        reason=reason[:500],
        source=source,
        target=target,
    )
    if dispatch:
        transaction.on_commit(lambda: publish_request_dispatch(request_id=request.pk))
    return request


def publish_request_dispatch(*, request_id: int) -> bool:
    """Queue the build task; if the broker is down the request stays pending (beat retries)."""
    from publishing.tasks import build_release

    try:
        build_release.apply_async(args=[request_id])
    except Exception as error:  # kombu raises OperationalError, redis ConnectionError…
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise
        logger.warning(
            "Publish request %s stays pending: broker unreachable (%s)", request_id, error
        )
        PublishRequest.objects.filter(pk=request_id, state=PublishRequest.State.PENDING).update(
            dispatch_error=str(error)[:500]
        )
        return False
    PublishRequest.objects.filter(pk=request_id).update(
        dispatched_at=timezone.now(), dispatch_error=""
    )
    return True


def publish_requests_redispatch(
    *,
    stale_after: timedelta = timedelta(minutes=10),
    min_age: timedelta = timedelta(seconds=5),
) -> int:
    """Beat: queue again what the broker never got, and what a dead builder left behind."""
    now = timezone.now()
    pending = PublishRequest.objects.filter(state=PublishRequest.State.PENDING).filter(
        Q(dispatched_at__isnull=True, created_at__lte=now - min_age)
        | Q(dispatched_at__lt=now - stale_after)
    )
    expired_leases = BuildLease.objects.filter(Q(expires_at__lt=now) | Q(expires_at__isnull=True))
    stuck = PublishRequest.objects.filter(
        state=PublishRequest.State.BUILDING, brand_id__in=expired_leases.values("brand_id")
    )
    sent = 0
    seen_brands: set[int] = set()
    candidates = (
        pending.order_by()
        .values_list("pk", "brand_id")
        .union(stuck.order_by().values_list("pk", "brand_id"))
    )
    for request_id, brand_id in sorted(candidates):
        if brand_id in seen_brands:
            continue  # one build takes every request of the brand
        seen_brands.add(brand_id)
        sent += int(publish_request_dispatch(request_id=request_id))
    return sent


# --- the build lease -----------------------------------------------------------------------


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_acquire(brand: Brand, holder: str) -> float:
    """0 when acquired, else the seconds until the current lease expires."""
    BuildLease.objects.get_or_create(brand=brand)
    now = timezone.now()
    taken = (
        BuildLease.objects.filter(brand=brand)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__lt=now) | Q(holder=holder))
        .update(holder=holder, expires_at=now + timedelta(seconds=lease_seconds()))
    )
    if taken:
        return 0
    lease = BuildLease.objects.get(brand=brand)
    return max(1.0, (lease.expires_at - now).total_seconds()) if lease.expires_at else 1.0


def lease_renew(brand: Brand, holder: str) -> None:
    BuildLease.objects.filter(brand=brand, holder=holder).update(
        expires_at=timezone.now() + timedelta(seconds=lease_seconds())
    )


def lease_held(brand: Brand, holder: str) -> bool:
    return BuildLease.objects.filter(
        brand=brand, holder=holder, expires_at__gt=timezone.now()
    ).exists()


class LeaseHeartbeat:
    """Renews the lease from a thread while a build saves and deploys (which can be long,
    e.g. a large S3 upload), so that no second builder takes over a live build."""

    def __init__(self, brand: Brand, holder: str):
        self.brand, self.holder = brand, holder
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name="lease-heartbeat")

    def run(self) -> None:
        try:
            while not self.stopped.wait(max(1.0, lease_seconds() / 3)):
                with fork_guard:  # see publishing.locks
                    lease_renew(self.brand, self.holder)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(10)


def lease_release(brand: Brand, holder: str) -> None:
    BuildLease.objects.filter(brand=brand, holder=holder).update(holder="", expires_at=None)


# --- building ------------------------------------------------------------------------------


def brand_build(*, brand: Brand, progress: Progress | None = None) -> list[Release]:
    """Build and deploy releases until no request of the brand is pending.

    Raises BuildBusy if another builder holds the brand's lease (it will take the pending
    requests into its next release).
    """
    holder = new_holder()
    wait = lease_acquire(brand, holder)
    if wait:
        raise BuildBusy(brand, wait)
    releases: list[Release] = []
    try:
        with LeaseHeartbeat(brand, holder):
            recover_interrupted(brand)
            while True:
                claimed = requests_claim(brand)
                if claimed is None:
                    break
                release, requests = claimed
                releases.append(
                    release_build(
                        release=release, requests=requests, holder=holder, progress=progress
                    )
                )
            if releases:
                releases_prune(brand=brand)
    finally:
        lease_release(brand, holder)
    return releases


def recover_interrupted(brand: Brand) -> None:
    """A builder that died mid-build left a release 'building': fail it, requeue its requests."""
    stale = Release.objects.filter(brand=brand, state=Release.State.BUILDING)
    for release in stale:
        # Failed first: a stalled builder still writing rows then writes no more (see
        # release_still_building), and its rows are discarded.
        release.state = Release.State.FAILED
        release.error = "Interrupted: the worker building this release stopped."
        release.finished_at = timezone.now()
        release.save(update_fields=["state", "error", "finished_at"])
        release_artifacts_discard(release)
        PublishRequest.objects.filter(release=release, state=PublishRequest.State.BUILDING).update(
            state=PublishRequest.State.PENDING, release=None
        )


@transaction.atomic
def requests_claim(brand: Brand) -> tuple[Release, list[PublishRequest]] | None:
    requests = list(
        PublishRequest.objects.select_for_update()
        .filter(brand=brand, state=PublishRequest.State.PENDING)
        .order_by("created_at", "pk")
    )
    if not requests:
        return None
    number = (Release.objects.filter(brand=brand).aggregate(n=Max("number"))["n"] or 0) + 1
    reasons = list(dict.fromkeys(r.reason for r in requests if r.reason))
    release = Release.objects.create(
        brand=brand,
        number=number,
        reason="; ".join(reasons)[:500],
        created_by=next((r.requested_by for r in requests if r.requested_by_id), None),
    )
    PublishRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        state=PublishRequest.State.BUILDING, release=release
    )
    return release, requests


def release_build(
    *, release: Release, requests: list[PublishRequest], holder: str, progress: Progress | None
) -> Release:
    brand = release.brand
    previous = release_latest_built(brand=brand, exclude=release)
    started = time.monotonic()
    last_saved = [0.0]

    def report(done: int, total: int) -> None:
        if progress:
            progress(done, total)
        now = time.monotonic()
        if now - last_saved[0] >= 1.0 or done == total:
            last_saved[0] = now
            Release.objects.filter(pk=release.pk).update(progress_done=done, progress_total=total)
            lease_renew(brand, holder)

    try:
        result = Builder(release, previous, report).build()
        with transaction.atomic():
            release_artifacts_save(release, result)
            release.state = Release.State.READY
            release.finished_at = timezone.now()
            release.progress_done = release.progress_total = result.artifacts
            release.graph_parts = result.graph_parts
            release.feeds = result.feeds
            release.site_state = result.site_state
            release.build_plan = result.build_plan
            release.summary = {
                "artifacts": result.artifacts,
                "counts": dict(sorted(result.counts.items())),
                "rendered": result.rendered,
                "reused": result.reused,
                "stored": result.stored,
                "revisions_read": result.revisions_read,
                "pages_fingerprinted": result.pages_fingerprinted,
                "processes": result.processes,
                "changed": result.changed,
                "changed_paths": result.changed_paths,
                "removed": result.removed[:1000],
                "removed_count": len(result.removed),
                "left_out": dict(list(result.left_out.items())[:1000]),
                "previous": previous.number if previous else None,
                "seconds": round(time.monotonic() - started, 3),
            }
            release.save()
    except BuildInterrupted:
        # Another builder failed this release and took its requests over.
        logger.warning("Building %s was interrupted by another builder", release)
        release_artifacts_discard(release)
        release.refresh_from_db()
        return release
    except Exception as error:
        logger.exception("Building %s failed", release)
        release_artifacts_discard(release)
        release.state = Release.State.FAILED
        release.error = f"{type(error).__name__}: {error}"
        release.finished_at = timezone.now()
        release.save(update_fields=["state", "error", "finished_at"])
        PublishRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
            state=PublishRequest.State.FAILED
        )
        return release
    targets = targets_for(brand, requests)
    if not lease_held(brand, holder):
        # Another builder took over (this one stalled past its lease): it deploys, not us.
        release.error = "The build lease was lost before deploying; a newer build deploys."
        release.save(update_fields=["error"])
        return release
    deployments = release_deploy(release=release, targets=targets)
    failed = [d for d in deployments if d.state == Deployment.State.FAILED]
    if failed:
        release.error = "; ".join(f"deploy to {d.target.name} failed: {d.error}" for d in failed)
        release.save(update_fields=["error"])
    PublishRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
        state=PublishRequest.State.FAILED if failed else PublishRequest.State.DONE
    )
    return release


def targets_for(brand: Brand, requests: list[PublishRequest]) -> list[Target]:
    chosen = {r.target_id for r in requests if r.target_id}
    everything = any(r.target_id is None for r in requests)
    query = Target.objects.filter(brand=brand)
    query = (
        query.filter(Q(enabled=True) | Q(pk__in=chosen))
        if everything
        else query.filter(pk__in=chosen)
    )
    return list(query.order_by("pk"))


# --- deploying -----------------------------------------------------------------------------


def webhook_deploy(*, target: Target, release: Release, deployment: Deployment, previous) -> None:
    from publishing.webhooks import webhook_delivery_create

    webhook_delivery_create(target=target, release=release, previous=previous)


DEPLOYERS = {
    Target.Kind.DIRECTORY: directory_deploy,
    Target.Kind.S3: s3_deploy,
    Target.Kind.WEBHOOK: webhook_deploy,
}


def last_deployed(target: Target) -> Release | None:
    deployment = (
        Deployment.objects.filter(target=target, state=Deployment.State.DONE)
        .select_related("release")
        .order_by("-finished_at", "-pk")
        .first()
    )
    return deployment.release if deployment else None


def deployed_state_known(target: Target) -> Release | None:
    """What the target holds for sure: the last good deployment, unless one failed since
    (it may have left the target half-changed, so nothing can be assumed)."""
    last = Deployment.objects.filter(target=target).order_by("-pk").first()
    if last is None or last.state != Deployment.State.DONE:
        return None
    return last.release


def release_deploy(*, release: Release, targets: list[Target]) -> list[Deployment]:
    """Deploy to file targets (directory, S3) first; only when all of them hold the
    release are webhook subscribers told, so they never hear of a release not served."""
    files = [t for t in targets if t.kind != Target.Kind.WEBHOOK]
    hooks = [t for t in targets if t.kind == Target.Kind.WEBHOOK]
    deployments = [deploy_one(release, target) for target in files]
    if any(d.state == Deployment.State.FAILED for d in deployments):
        return deployments
    if targets:
        release.state = Release.State.DEPLOYED
        release.deployed_at = timezone.now()
        release.save(update_fields=["state", "deployed_at"])
    deployments += [deploy_one(release, target) for target in hooks]
    return deployments


def deploy_one(release: Release, target: Target) -> Deployment:
    previous = (
        last_delivered(target)
        if target.kind == Target.Kind.WEBHOOK
        else deployed_state_known(target)
    )
    deployment = Deployment.objects.create(target=target, release=release)
    try:
        DEPLOYERS[target.kind](
            target=target, release=release, deployment=deployment, previous=previous
        )
        deployment.state = Deployment.State.DONE
    except Exception as error:
        logger.exception("Deploying %s to %s failed", release, target)
        deployment.state = Deployment.State.FAILED
        deployment.error = f"{type(error).__name__}: {error}"[:2000]
    deployment.finished_at = timezone.now()
    deployment.save(update_fields=["state", "error", "finished_at"])
    return deployment


def last_delivered(target: Target) -> Release | None:
    """The last release a webhook subscriber confirmed receiving (its changes are relative)."""
    delivery = (
        WebhookDelivery.objects.filter(target=target, state=WebhookDelivery.State.DELIVERED)
        .exclude(release=None)
        .select_related("release")
        .order_by("-delivered_at", "-pk")
        .first()
    )
    return delivery.release if delivery else None


def release_rollback(*, brand: Brand, number: int, user=None) -> tuple[Release, list[Deployment]]:
    """Deploy an earlier release again to every enabled target."""
    require(user, brand, "publish")
    release = Release.objects.filter(brand=brand, number=number).first()
    if release is None:
        known = list(Release.objects.filter(brand=brand).values_list("number", flat=True)[:20])
        raise PublishError(
            f"Brand {brand.slug!r} has no release {number}"
            + (f" (releases: {', '.join(map(str, sorted(known)))})." if known else " (none yet).")
        )
    if release.state not in (Release.State.READY, Release.State.DEPLOYED):
        raise PublishError(
            f"Release {number} is {release.get_state_display().lower()}: it cannot be deployed."
        )
    targets = list(Target.objects.filter(brand=brand, enabled=True).order_by("pk"))
    if not targets:
        raise PublishError(f"Brand {brand.slug!r} has no enabled target to deploy to.")
    holder = new_holder()
    wait = lease_acquire(brand, holder)
    if wait:
        raise BuildBusy(brand, wait)
    try:
        deployments = release_deploy(release=release, targets=targets)
    finally:
        lease_release(brand, holder)
    return release, deployments


# --- retention -----------------------------------------------------------------------------


def releases_prune(*, brand: Brand) -> dict[str, int]:
    """Drop releases outside the brand's policy (and the manifest rows no release kept has),
    then artifacts no manifest row references."""
    policy, _ = SiteSettings.objects.get_or_create(brand=brand)
    releases = Release.objects.filter(brand=brand)
    keep = set(
        releases.order_by("-number").values_list("pk", flat=True)[: max(policy.keep_releases, 1)]
    )
    since = timezone.now() - timedelta(days=policy.keep_deployed_days)
    keep |= set(releases.filter(deployments__finished_at__gte=since).values_list("pk", flat=True))
    keep |= set(releases.filter(state=Release.State.BUILDING).values_list("pk", flat=True))
    targets = list(Target.objects.filter(brand=brand))
    for target in targets:
        live = last_deployed(target)
        if live:
            keep.add(live.pk)
    doomed = releases.exclude(pk__in=keep)
    removed = doomed.count()
    if removed:
        doomed.delete()
    kept_numbers = set(releases.values_list("number", flat=True))
    for target in targets:
        if target.kind == Target.Kind.DIRECTORY:
            directory_prune(target, kept_numbers)
    dropped = 0
    if removed:
        # The manifest rows no kept release has went with the releases (see
        # publishing.models.release_rows_forget).
        referenced = ReleaseArtifact.objects.values_list("sha256", flat=True).distinct()
        kept = Release.objects.values_list("site_state", "build_plan")
        grace = timedelta(seconds=int(getattr(settings, "SOURCEBOOK_ARTIFACT_GRACE_SECONDS", 3600)))
        dropped = artifact_prune(
            chain(
                referenced.iterator(chunk_size=10000),
                (
                    sha256
                    for state, plan in kept.iterator()
                    for sha256 in chain(state_artifacts(state), plan_artifacts(plan))
                ),
            ),
            grace=grace,
        )
    return {"releases": removed, "artifacts": dropped}


# --- the admin's publish flow ----------------------------------------------------------------


def object_publish_and_release(*, obj, user=None) -> PublishRequest:
    """Publish an entity's, fact's or FAQ's latest revision and have the site rebuilt: what
    "Publish" means to an editor. The request is shared: a build takes every request of the
    brand still waiting, so approving ten items while one waits queues no more releases."""
    with transaction.atomic():
        object_publish(obj=obj, user=user)
        waiting = (
            PublishRequest.objects.filter(brand=obj.brand, state=PublishRequest.State.PENDING)
            .order_by("pk")
            .first()
        )
        if waiting is not None:
            return waiting
        return publish_request_create(brand=obj.brand, user=user, reason=f"Published {obj}")
