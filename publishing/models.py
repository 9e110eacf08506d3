"""Releases, the artifacts in them, where they go, and every request and delivery.

A release is immutable once ready: its manifest lists every artifact (path, content hash,
size, content type) and the revisions that went in. A manifest is stored as a delta over the
previous release's: a row is shared by the consecutive releases that have the same artifact
(see ReleaseArtifact). Artifact bytes live in a content-addressed store, so an unchanged
artifact is never written or uploaded twice.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver

from kb.models import Brand
from publishing.ai_use import SECTION_CHOICES


class SiteSettings(models.Model):
    """A brand's publishing policy: AI crawlers, retention."""

    brand = models.OneToOneField(Brand, on_delete=models.CASCADE, related_name="site_settings")
    allow_ai_training = models.BooleanField(
        "Allow AI training",
        default=False,
        help_text="Let AI training crawlers (GPTBot, ClaudeBot, CCBot, Google-Extended …) in. "
        "Search and answer agents are always allowed: blocking them means not being cited.",
    )
    allow_ai_input = models.BooleanField(
        "Allow AI input",
        default=True,
        help_text="Let answer engines use the content as input to their answers (grounding, "
        "retrieval): the Content-Signal ai-input preference in robots.txt. A preference, not "
        "a lock: answer agents still fetch pages for their users.",
    )
    answer_endpoint = models.BooleanField(
        "Answer endpoint",
        default=False,
        help_text="Answer questions about the published site at /ask (NLWeb) and /mcp (Model "
        "Context Protocol) with its pages' schema.org objects and URLs; rate-limited, every "
        "request logged with the crawler visits.",
    )
    answer_engine = models.ForeignKey(
        "visibility.Engine",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The engine that writes /ask's summaries (mode=summarize) from the results; "
        "without one, /ask lists results only.",
    )
    keep_releases = models.PositiveIntegerField(
        default=20, help_text="Always keep this many of the newest releases."
    )
    keep_deployed_days = models.PositiveIntegerField(
        default=30, help_text="Also keep every release deployed within this many days."
    )

    class Meta:
        verbose_name = "site settings"
        verbose_name_plural = "site settings"

    def __str__(self) -> str:
        return f"Site settings of {self.brand}"

    def clean(self) -> None:
        if self.answer_engine_id and self.answer_engine.brand_id != self.brand_id:
            raise ValidationError({"answer_engine": "Choose one of this brand's engines."})


class SectionAiUse(models.Model):
    """A section of the site whose AI-use preferences differ from the site's (robots.txt's
    Content-Usage rules for its path in every language, and the crawlers' access to it)."""

    class Choice(models.TextChoices):
        SITE = "", "As the site"
        YES = "yes", "Yes"
        NO = "no", "No"

    site_settings = models.ForeignKey(
        SiteSettings, on_delete=models.CASCADE, related_name="section_ai_uses"
    )
    section = models.CharField(max_length=32, choices=SECTION_CHOICES)
    search = models.CharField(
        max_length=3,
        choices=Choice.choices,
        blank=True,
        default="",
        help_text="Search engines and answer agents may index and cite it.",
    )
    ai_train = models.CharField(
        "AI training",
        max_length=3,
        choices=Choice.choices,
        blank=True,
        default="",
        help_text="AI training crawlers may collect it to train models.",
    )

    class Meta:
        ordering = ["site_settings", "section"]
        verbose_name = "section AI-use preference"
        constraints = [
            models.UniqueConstraint(
                fields=["site_settings", "section"], name="unique_section_ai_use"
            )
        ]

    def __str__(self) -> str:
        return f"/{self.section}/"


class Target(models.Model):
    """Where a brand's releases are deployed."""

    class Kind(models.TextChoices):
        DIRECTORY = "directory", "Local directory"
        S3 = "s3", "S3-compatible object storage"
        WEBHOOK = "webhook", "Webhook"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="targets")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    # directory: {"folder"}; s3: {"bucket", "endpoint_url", "region_name", "location",
    # "access_key_env", "secret_key_env"}; webhook: {"url", "events"}
    # (publishing.targets.config.target_config_clean checks it).
    config = models.JSONField(default=dict, blank=True)
    # A directory the operator chose (``publish --out DIR``): deployed to as is, instead of
    # SOURCEBOOK_SITE_ROOT/<brand>/<folder>. No form or API exposes it.
    operator_path = models.CharField(max_length=1000, blank=True, default="", editable=False)
    secret = models.CharField(
        max_length=200, blank=True, help_text="Webhook signing secret (HMAC-SHA256)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["brand", "name"]
        constraints = [models.UniqueConstraint(fields=["brand", "name"], name="unique_target_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class PublishRequest(models.Model):
    """A request to publish, recorded before it is queued so none is ever lost."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        BUILDING = "building", "Building"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        MANUAL = "manual", "Manual"
        API = "api", "API"
        SCHEDULED = "scheduled", "Scheduled"
        CLI = "cli", "Command line"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="publish_requests")
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING, db_index=True
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    reason = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Deploy only to this target (``publish --out DIR``); all enabled targets when empty.
    target = models.ForeignKey(
        Target, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_error = models.CharField(max_length=500, blank=True)
    release = models.ForeignKey(
        "Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Publish request {self.pk} for {self.brand} ({self.state})"


class BuildLease(models.Model):
    """At most one build per brand: a lease renewed while building, taken over once expired."""

    brand = models.OneToOneField(Brand, on_delete=models.CASCADE, related_name="+")
    holder = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Build lease of {self.brand} held by {self.holder or 'nobody'}"


class Release(models.Model):
    class State(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        DEPLOYED = "deployed", "Deployed"
        FAILED = "failed", "Failed"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="releases")
    number = models.PositiveIntegerField()
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.BUILDING, db_index=True
    )
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Progress while building, for the admin and ``publish --wait``.
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # {"revisions": [ids that went in], "counts": {kind: n}, "rendered": n, "changed": n, …}
    summary = models.JSONField(default=dict, blank=True)
    # [[key, offset, length], …]: the parts graph.jsonld was made of, where they are in it,
    # so that the next build copies those it would make the same (see Builder.build_graph).
    graph_parts = models.JSONField(default=list, blank=True, editable=False)
    # [{"language", "key", "files": [{"path", "market", "rows"}], "refused": n,
    # "refusals": [{"item", "name", "market", "reason"}, … the first 200]}, …]: the product
    # feeds, per language (see publishing.render.feeds); carried over with their files.
    feeds = models.JSONField(default=list, blank=True, editable=False)
    # {"key": …, "chunks": {kind: [[number, sha256], …]}}: what the build read of the live
    # content, for the next build to read only what changed (see publishing.site_state).
    site_state = models.JSONField(default=dict, blank=True, editable=False)
    # {"key": …, "pages": …, "chunks": [sha256, …]}: each page's fingerprint and twin, for the
    # next build to fingerprint only the pages that show what changed (see publishing.plan).
    build_plan = models.JSONField(default=dict, blank=True, editable=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["brand", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "number"], name="unique_release_number")
        ]

    def __str__(self) -> str:
        return f"{self.brand.slug} release {self.number} ({self.state})"

    @property
    def artifacts(self) -> ReleaseArtifactQuerySet:
        """This release's manifest (see ReleaseArtifact)."""
        return ReleaseArtifact.objects.in_release(self)


class ReleaseArtifactQuerySet(models.QuerySet):
    def in_release(self, release: Release) -> ReleaseArtifactQuerySet:
        """Release ``release``'s manifest: its brand's rows whose interval holds its number.

        A failed release has none (its rows were discarded). A building one's is partial:
        its own rows so far and its parent's not yet replaced (never served).
        """
        if release.state == Release.State.FAILED:
            return self.none()
        return self.filter(brand_id=release.brand_id).visible_at(release.number)

    def visible_at(self, number: int) -> ReleaseArtifactQuerySet:
        """The rows whose interval of release numbers holds ``number`` (filter by brand too)."""
        return self.filter(
            models.Q(until__isnull=True) | models.Q(until__gt=number), since__lte=number
        )

    def not_in_release(self, release: Release, other: Release) -> ReleaseArtifactQuerySet:
        """The rows of ``release``'s manifest that ``other``'s does not share: a superset of
        what differs between them (a path's row is either shared, or in both of these)."""
        rows = self.in_release(release)
        if other.brand_id != release.brand_id or other.state == Release.State.FAILED:
            return rows
        if other.number < release.number:
            return rows.filter(since__gt=other.number)
        if other.number > release.number:
            return rows.filter(until__lte=other.number)
        return rows.none()


class ReleaseArtifact(models.Model):
    """One entry of a brand's manifests, the same in a range of its releases.

    A row is in the manifest of each release of its brand numbered from ``since`` (the
    release that made it) up to, not including, ``until`` (the release that replaced or
    removed it; none while it is current): a build writes rows only for what it rendered,
    and closes the rows they replace. Read a release's manifest with ``release.artifacts``
    (``ReleaseArtifact.objects.in_release(release)``).
    """

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+")
    since = models.PositiveIntegerField()
    until = models.PositiveIntegerField(null=True, blank=True)
    path = models.CharField(max_length=1000)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100)
    kind = models.CharField(max_length=32)
    # What the artifact was rendered from: equal fingerprints mean equal content.
    fingerprint = models.CharField(max_length=64)
    # The last real change of this artifact's content (its sitemap lastmod).
    changed_at = models.DateTimeField()

    objects = ReleaseArtifactQuerySet.as_manager()

    class Meta:
        ordering = ["brand", "path"]
        constraints = [
            # Also the index that reads a release's manifest in path order and finds the
            # rows a build replaces.
            models.UniqueConstraint(
                fields=["brand", "path", "since"], name="unique_artifact_path_since"
            )
        ]
        indexes = [
            # The rows a release made (what changed since an earlier one; a failed build's,
            # discarded) and those it closed (what an earlier one had that it has not;
            # retention). Only closed rows are in the second: a build from nothing writes
            # no entry of it.
            models.Index(fields=["brand", "since"], name="publishing_artifact_since"),
            models.Index(
                fields=["brand", "until"],
                name="publishing_artifact_until",
                condition=models.Q(until__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.path


def manifest_rows_prune(rows: models.QuerySet) -> int:
    """Delete those of ``rows`` (of one brand) in no release's manifest: no release of
    theirs with rows (ready, deployed, or building: it reads its parent's) numbered in
    [since, until)."""
    with_rows = Release.objects.filter(
        brand_id=models.OuterRef("brand_id"),
        state__in=[Release.State.READY, Release.State.DEPLOYED, Release.State.BUILDING],
        number__gte=models.OuterRef("since"),
    )
    closed = rows.filter(until__isnull=False).exclude(
        models.Exists(with_rows.filter(number__lt=models.OuterRef("until")))
    )
    current = rows.filter(until__isnull=True).exclude(models.Exists(with_rows))
    return closed.delete()[0] + current.delete()[0]


@receiver(post_delete, sender=Release)
def release_rows_forget(sender, instance: Release, **kwargs) -> None:
    """A release deleted (by retention, or by hand): the rows only it had go.

    Those are among the rows it had that a later release closed (a current row is in the
    newest release's manifest too). If it was the newest release with a manifest, the rows
    it replaced are current again instead, so that the current rows are always the newest
    ready release's manifest (what the next build is made from), and its number can be
    given again.
    """
    if instance.state == Release.State.FAILED:
        return  # it has no rows, and closed none
    number = instance.number
    rows = ReleaseArtifact.objects.filter(brand_id=instance.brand_id)
    later = Release.objects.filter(
        brand_id=instance.brand_id,
        number__gt=number,
        state__in=[Release.State.READY, Release.State.DEPLOYED],
    )
    if later.exists():
        manifest_rows_prune(rows.filter(since__lte=number, until__gt=number))
    else:
        rows.filter(since=number).delete()
        rows.filter(until=number).update(until=None)
        manifest_rows_prune(rows)


class Deployment(models.Model):
    """A release deployed (or being deployed) to one target."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="deployments")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="deployments")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    uploaded = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.release} → {self.target} ({self.state})"


class WebhookDelivery(models.Model):
    """One event sent to one webhook target; retried on network errors and 5xx only."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="deliveries")
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.target} ({self.state})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    will_retry = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"


def media_storage():
    """The brands' uploaded images (``STORAGES["media"]``; see publishing.media)."""
    from django.core.files.storage import storages

    return storages["media"]


class MediaAsset(models.Model):
    """An image of a brand, published at ``{base_url}/media/<path>`` (see publishing.media).

    Stored in the ``media`` storage as ``<brand slug>/<path>``; uploads get a content-addressed
    path (``<sha256[:16]>-<name>.<ext>``), so the same bytes are one asset.
    """

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="media_assets")
    # Where it is published, under {base_url}/media/.
    path = models.CharField(max_length=400)
    file = models.FileField(storage=media_storage, max_length=500, editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    original_name = models.CharField(max_length=255, blank=True, editable=False)
    content_type = models.CharField(max_length=50, editable=False)
    size = models.PositiveBigIntegerField(editable=False)
    width = models.PositiveIntegerField(editable=False)
    height = models.PositiveIntegerField(editable=False)
    # {language: text}, in the brand's languages.
    alt = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["brand", "path"]
        constraints = [models.UniqueConstraint(fields=["brand", "path"], name="unique_media_path")]
        indexes = [models.Index(fields=["brand", "sha256"], name="publishing_media_sha256")]

    def __str__(self) -> str:
        return self.path

    @property
    def public_url(self) -> str:
        return f"{self.brand.base_url}/media/{self.path}"
