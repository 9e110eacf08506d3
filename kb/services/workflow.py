"""Revisions and the publishing workflow, shared by entities, facts and FAQs.

draft → in review → published → unpublished / archived, with scheduled go-live and
expiry stored on the revision and polled by ``publish_scheduled``.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from kb.models import FAQ, AuditEntry, Entity, Fact, Revision, RevisionedModel, Status
from kb.quality import ERROR, entity_findings
from kb.services.errors import PublishBlocked, StaleEditError, WorkflowError
from kb.services.permissions import require

REVISIONED_MODELS: tuple[type[RevisionedModel], ...] = (Entity, Fact, FAQ)


def lock(obj: RevisionedModel) -> RevisionedModel:
    """Re-read the row under a lock (SELECT … FOR UPDATE)."""
    return type(obj).objects.select_for_update().select_related("brand").get(pk=obj.pk)


def ensure_current(obj: RevisionedModel, expected_version: int | None) -> None:
    if expected_version is None or obj.version == expected_version:
        return
    latest = obj.latest_revision
    if latest and latest.user:
        message = _(
            "%(object)s was changed by %(user)s at %(time)s after you opened it (you edited "
            "version %(expected)s, it is now version %(version)s). Your changes were not saved: "
            "reload to see the current content, then make your edit again."
        )
    elif latest:
        message = _(
            "%(object)s was changed at %(time)s after you opened it (you edited version "
            "%(expected)s, it is now version %(version)s). Your changes were not saved: reload "
            "to see the current content, then make your edit again."
        )
    else:
        message = _(
            "%(object)s was changed after you opened it (you edited version %(expected)s, it is "
            "now version %(version)s). Your changes were not saved: reload to see the current "
            "content, then make your edit again."
        )
    raise StaleEditError(
        message
        % {
            "object": obj,
            "user": latest.user if latest else "",
            "time": f"{timezone.localtime(latest.created_at):%Y-%m-%d %H:%M:%S}" if latest else "",
            "expected": expected_version,
            "version": obj.version,
        }
    )


def log_action(obj: RevisionedModel, action: str, user=None, **data) -> AuditEntry:
    return AuditEntry.objects.create(
        brand_id=obj.brand_id,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=obj.pk,
        object_repr=str(obj)[:500],
        action=action,
        user=user,
        data=data,
    )


def revision_create(*, obj: RevisionedModel, user=None, message: str = "") -> Revision:
    """Snapshot the working copy (already saved) as its newest revision."""
    content_type = ContentType.objects.get_for_model(obj)
    last = Revision.objects.filter(content_type=content_type, object_id=obj.pk).aggregate(
        n=Max("number")
    )["n"]
    revision = Revision.objects.create(
        brand_id=obj.brand_id,
        content_type=content_type,
        object_id=obj.pk,
        number=(last or 0) + 1,
        content=obj.snapshot(),
        object_repr=str(obj)[:500],
        user=user,
        message=message[:500],
    )
    obj.latest_revision = revision
    type(obj).objects.filter(pk=obj.pk).update(latest_revision=revision)
    return revision


def working_copy_saved(obj: RevisionedModel) -> None:
    """After an edit: a published object now has a pending draft."""
    if obj.status in (Status.PUBLISHED, Status.UNPUBLISHED, Status.SCHEDULED):
        obj.status = Status.DRAFT


def revisions_of(obj: RevisionedModel):
    return Revision.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=obj.pk
    ).order_by("-number")


@transaction.atomic
def object_submit_for_review(*, obj: RevisionedModel, user=None, expected_version=None):
    obj = lock(obj)
    require(user, obj.brand, "edit")
    ensure_current(obj, expected_version)
    if obj.status == Status.ARCHIVED:
        raise WorkflowError(
            _("%(object)s is archived; restore it before submitting it for review.")
            % {"object": obj}
        )
    if not obj.has_unpublished_changes:
        raise WorkflowError(
            _("%(object)s has no changes to review: its live version is the latest.")
            % {"object": obj}
        )
    obj.status = Status.IN_REVIEW
    obj.save(update_fields=["status", "updated_at"])
    Revision.objects.filter(pk=obj.latest_revision_id).update(
        submitted_for_review_at=timezone.now()
    )
    log_action(obj, "submit_for_review", user, revision=obj.latest_revision.number)
    return obj


@transaction.atomic
def object_reject(*, obj: RevisionedModel, user=None, reason: str = ""):
    obj = lock(obj)
    require(user, obj.brand, "publish")
    if obj.status != Status.IN_REVIEW:
        raise WorkflowError(_("%(object)s is not in review.") % {"object": obj})
    obj.status = Status.DRAFT
    obj.save(update_fields=["status", "updated_at"])
    log_action(obj, "reject", user, reason=reason)
    return obj


@transaction.atomic
def object_publish(
    *,
    obj: RevisionedModel,
    user=None,
    revision: Revision | None = None,
    go_live_at: datetime | None = None,
    expire_at: datetime | None = None,
):
    """Make a revision (default: the latest) live now, or schedule it for ``go_live_at``."""
    obj = lock(obj)
    require(user, obj.brand, "publish")
    if obj.status == Status.ARCHIVED:
        raise WorkflowError(
            _("%(object)s is archived; restore it before publishing.") % {"object": obj}
        )
    revision = revision or obj.latest_revision
    if revision is None:
        raise WorkflowError(_("%(object)s has no revision to publish.") % {"object": obj})
    if revision.object_id != obj.pk or revision.content_type != ContentType.objects.get_for_model(
        obj
    ):
        raise WorkflowError(
            _("revision %(revision)s does not belong to %(object)s.")
            % {"revision": revision.pk, "object": obj}
        )
    ensure_publishable(obj, revision)
    now = timezone.now()
    if expire_at and expire_at <= (go_live_at or now):
        raise WorkflowError(_("The expiry must be after the go-live time."))
    # Only one scheduled revision per object: a new decision replaces the old one.
    revisions_of(obj).filter(go_live_at__isnull=False).exclude(pk=revision.pk).update(
        go_live_at=None
    )
    revision.approved_by = user
    revision.expire_at = expire_at
    if go_live_at and go_live_at > now:
        revision.go_live_at = go_live_at
        revision.save(update_fields=["approved_by", "expire_at", "go_live_at"])
        obj.status = Status.SCHEDULED
        obj.save(update_fields=["status", "updated_at"])
        log_action(
            obj, "schedule", user, revision=revision.number, go_live_at=go_live_at.isoformat()
        )
        return obj
    revision.go_live_at = None
    revision.save(update_fields=["approved_by", "expire_at", "go_live_at"])
    obj.live_revision = revision
    obj.first_published_at = obj.first_published_at or now
    obj.last_published_at = now
    obj.status = Status.PUBLISHED if revision.pk == obj.latest_revision_id else Status.DRAFT
    obj.save(
        update_fields=[
            "live_revision",
            "first_published_at",
            "last_published_at",
            "status",
            "updated_at",
        ]
    )
    after_live_change(obj)
    log_action(obj, "publish", user, revision=revision.number)
    return obj


def ensure_publishable(obj: RevisionedModel, revision: Revision) -> None:
    """The checks every publish runs: errors block it, recommendations and hints do not."""
    if not isinstance(obj, Entity):
        return
    content = revision.content
    errors = [
        finding
        for finding in entity_findings(
            brand=obj.brand, types=content.get("types") or [], data=content.get("data") or {}
        )
        if finding.level == ERROR
    ]
    if errors:
        raise PublishBlocked(obj, errors)


@transaction.atomic
def object_unpublish(*, obj: RevisionedModel, user=None, archive: bool = False, reason: str = ""):
    obj = lock(obj)
    require(user, obj.brand, "publish")
    obj.live_revision = None
    obj.status = Status.ARCHIVED if archive else Status.UNPUBLISHED
    obj.save(update_fields=["live_revision", "status", "updated_at"])
    revisions_of(obj).filter(go_live_at__isnull=False).update(go_live_at=None)
    after_live_change(obj)
    log_action(obj, "archive" if archive else "unpublish", user, reason=reason)
    return obj


@transaction.atomic
def object_restore(*, obj: RevisionedModel, user=None):
    """Bring an archived object back as a draft."""
    obj = lock(obj)
    require(user, obj.brand, "edit")
    if obj.status != Status.ARCHIVED:
        raise WorkflowError(_("%(object)s is not archived.") % {"object": obj})
    obj.status = Status.DRAFT
    obj.save(update_fields=["status", "updated_at"])
    log_action(obj, "restore", user)
    return obj


def after_live_change(obj: RevisionedModel) -> None:
    if isinstance(obj, Entity):
        from kb.services.entities import entity_sync_links

        entity_sync_links(entity=obj)


def publish_scheduled(*, now: datetime | None = None) -> dict:
    """Publish revisions whose go-live time has come; take expired ones offline.

    Idempotent: a revision is published once (its go_live_at is cleared), an expired
    object is unpublished once (its live pointer is cleared).
    """
    now = now or timezone.now()
    published = expired = 0
    brands: set[int] = set()
    for revision_id in Revision.objects.filter(go_live_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            revision = Revision.objects.select_for_update().filter(pk=revision_id).first()
            if revision is None or revision.go_live_at is None or revision.go_live_at > now:
                continue
            obj = revision.content_object
            if obj is None:
                revision.go_live_at = None
                revision.save(update_fields=["go_live_at"])
                continue
            try:
                object_publish(obj=obj, revision=revision, expire_at=revision.expire_at)
            except PublishBlocked as blocked:
                # The content no longer passes (e.g. the brand gained a rule): tell the
                # editors once and stop retrying every minute.
                revision.go_live_at = None
                revision.save(update_fields=["go_live_at"])
                type(obj).objects.filter(pk=obj.pk, status=Status.SCHEDULED).update(
                    status=Status.DRAFT
                )
                log_action(obj, "publish_blocked", None, revision=revision.number,
                           errors=[f.as_dict() for f in blocked.findings])  # fmt: skip
                continue
            published += 1
            brands.add(obj.brand_id)
    for model in REVISIONED_MODELS:
        due = model.objects.filter(live_revision__expire_at__lte=now)
        for obj in due:
            object_unpublish(obj=obj, reason="expired")
            expired += 1
            brands.add(obj.brand_id)
    return {"published": published, "expired": expired, "brands": sorted(brands)}


def last_sent_back(obj: RevisionedModel) -> AuditEntry | None:
    """The reviewer's send-back (its comment in ``data["reason"]``) while it still stands:
    a later submit for review or publish ends it."""
    latest = (
        AuditEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(obj),
            object_id=obj.pk,
            action__in=("reject", "submit_for_review", "publish", "schedule"),
        )
        .select_related("user")
        .order_by("-timestamp", "-pk")
        .first()
    )
    return latest if latest is not None and latest.action == "reject" else None
