"""The brand knowledge base: brands, entities, facts, FAQs and their revisions.

Every editable object keeps its working copy in its own row and a pointer to the revision
that is live (published). Publishing moves the pointer; it never reads the row being edited.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.functional import cached_property

LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def validate_languages(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("List at least one language, the default first (e.g. en, zh-Hans).")
    seen: set[str] = set()
    for tag in value:
        if not isinstance(tag, str) or not LANGUAGE_TAG.match(tag):
            raise ValidationError(f"{tag!r} is not a BCP 47 language tag such as en or zh-Hans.")
        if tag.lower() in seen:
            raise ValidationError(f"Language {tag} is listed twice.")
        seen.add(tag.lower())


def require_web_url(obj: models.Model, field: str) -> None:
    """Published URLs are http(s) only (URLField alone lets ftp through; see
    ``kb.validation.web_url_problem`` for entity data)."""
    from django.core.validators import URLValidator

    from kb.validation import web_url_problem

    value = getattr(obj, field)
    try:
        URLValidator()(value)
    except ValidationError:
        return  # not a URL at all: the field's own validator says so
    problem = web_url_problem(value)
    if problem:
        raise ValidationError({field: problem})


class Brand(models.Model):
    """The tenant: everything else belongs to exactly one brand."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    base_url = models.URLField(
        max_length=500, help_text="The site the brand publishes to, e.g. https://www.example.com"
    )
    languages = models.JSONField(
        default=list,
        validators=[validate_languages],
        help_text="Language tags; the first is the default, used when a translation is missing.",
    )
    logo = models.ImageField(upload_to="brands/logos/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.base_url = self.base_url.rstrip("/")
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        require_web_url(self, "base_url")

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def canonical_language(self, tag: str) -> str | None:
        """The brand's spelling of a language tag (tags are case-insensitive), or None."""
        for language in self.languages:
            if language.lower() == tag.lower():
                return language
        return None

    def localize(self, values: dict[str, str] | None, language: str | None = None) -> str:
        """The text in ``language``, falling back to the default language."""
        if not values:
            return ""
        language = language or self.default_language
        return values.get(language) or values.get(self.default_language) or ""


class BrandMembership(models.Model):
    """Who may work on a brand, and how far."""

    class Role(models.TextChoices):
        EDITOR = "editor", "Editor"
        REVIEWER = "reviewer", "Reviewer / publisher"
        ADMIN = "admin", "Brand admin"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="brand_memberships"
    )
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "brand"], name="unique_brand_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.brand} ({self.get_role_display()})"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    SCHEDULED = "scheduled", "Scheduled"
    PUBLISHED = "published", "Published"
    UNPUBLISHED = "unpublished", "Unpublished"
    ARCHIVED = "archived", "Archived"


class Revision(models.Model):
    """A full snapshot of one object's working copy, made on every save."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="revisions")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    content_object = GenericForeignKey("content_type", "object_id")
    number = models.PositiveIntegerField()
    content = models.JSONField()
    object_repr = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=500, blank=True)
    submitted_for_review_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    go_live_at = models.DateTimeField(
        null=True, blank=True, help_text="Approved to go live at this time (polled)."
    )
    expire_at = models.DateTimeField(
        null=True, blank=True, help_text="Taken offline at this time once live (polled)."
    )

    class Meta:
        ordering = ["content_type", "object_id", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "number"], name="unique_revision_number"
            )
        ]
        indexes = [
            models.Index(fields=["content_type", "object_id"]),
            models.Index(fields=["go_live_at"]),
            models.Index(fields=["expire_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.object_repr} — revision {self.number}"


class RevisionedModel(models.Model):
    """Working copy + revisions + a live pointer (the pattern of Wagtail's draft state)."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    version = models.PositiveIntegerField(
        default=0, help_text="Bumped on every save; a save based on an older version is refused."
    )
    latest_revision = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    live_revision = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_published_at = models.DateTimeField(null=True, blank=True)
    last_published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Fields copied into each revision snapshot and restored from it.
    snapshot_fields: tuple[str, ...] = ()

    class Meta:
        abstract = True

    @property
    def live(self) -> bool:
        return self.live_revision_id is not None

    @property
    def has_unpublished_changes(self) -> bool:
        return self.latest_revision_id != self.live_revision_id

    def snapshot(self) -> dict:
        return {field: _snapshot_value(self, field) for field in self.snapshot_fields}

    def apply_snapshot(self, content: dict) -> None:
        for field in self.snapshot_fields:
            if field in content:
                _restore_value(self, field, content[field])


def _snapshot_value(obj: models.Model, field_name: str):
    field = obj._meta.get_field(field_name)
    if field.is_relation:
        return getattr(obj, field.attname)
    value = getattr(obj, field_name)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _restore_value(obj: models.Model, field_name: str, value) -> None:
    field = obj._meta.get_field(field_name)
    if field.is_relation:
        setattr(obj, field.attname, value)
    else:
        setattr(obj, field_name, field.to_python(value))


class Entity(RevisionedModel):
    """A schema.org node: Organization, Product, Store, Person, Event, …"""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    iri = models.CharField(
        "@id",
        max_length=1000,
        help_text="Stable identifier; it does not change when the entity is renamed.",
    )
    slug = models.SlugField(max_length=200, allow_unicode=False)
    types = models.JSONField(default=list, help_text='schema.org types, e.g. ["Product"].')
    primary_type = models.CharField(max_length=100, db_index=True)
    label = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, help_text="schema.org properties of the working copy.")
    # Normalised text the admin's search matches (kb.search), set by the services.
    search_text = models.TextField(blank=True, default="", editable=False)

    snapshot_fields = ("iri", "slug", "types", "data")

    class Meta:
        verbose_name_plural = "entities"
        ordering = ["primary_type", "label"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "iri"], name="unique_entity_iri"),
            models.UniqueConstraint(fields=["brand", "slug"], name="unique_entity_slug"),
        ]
        indexes = [
            # The API's list order, so a page is read from the index instead of sorting
            # the brand's whole catalog; and the list's Last-Modified.
            models.Index(fields=["brand", "primary_type", "slug"], name="kb_entity_list_order"),
            models.Index(fields=["brand", "updated_at"], name="kb_entity_brand_updated"),
            models.Index(fields=["brand", "live_revision"], name="kb_entity_brand_live"),
        ]

    def __str__(self) -> str:
        return f"{self.label or self.slug} ({self.primary_type})"

    def text(self, prop: str, language: str | None = None) -> str:
        """A human-readable value in ``language``, falling back to the default language."""
        return localized_text(self.data.get(prop, []), self.brand, language)

    @cached_property
    def default_name(self) -> str:
        return self.text("name")


def localized_text(values: list[dict], brand: Brand, language: str | None = None) -> str:
    by_language: dict[str | None, str] = {}
    for value in values:
        if isinstance(value, dict) and "@value" in value and isinstance(value["@value"], str):
            by_language.setdefault(value.get("@language"), value["@value"])
    language = language or brand.default_language
    for candidate in (language, brand.default_language, None):
        if candidate in by_language:
            return by_language[candidate]
    return next(iter(by_language.values()), "")


class EntityLink(models.Model):
    """A reference from one entity to another (Product.brand → Organization).

    Derived from the working copy and the live revision; PROTECT refuses deleting a target.
    """

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="outgoing_links")
    target = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="incoming_links")
    property = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "target", "property"], name="unique_entity_link"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} —{self.property}→ {self.target}"


class Fact(RevisionedModel):
    """A citable statement about an entity, with its provenance."""

    key = models.SlugField(max_length=100, help_text="Stable anchor, e.g. founding-year.")
    about = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="facts")
    statement = models.JSONField(default=dict, help_text="The statement per language.")
    value = models.CharField(max_length=200, blank=True, help_text="e.g. 1998, 42.5")
    unit = models.CharField(
        max_length=50,
        blank=True,
        help_text="e.g. t, %, ha, years (shown in each language's words), or a word of your own",
    )
    unit_labels = models.JSONField(
        default=dict,
        blank=True,
        help_text="A unit of your own in each language (e.g. buds / 芽); units such as t, ha, "
        "%, years need none.",
    )
    # Words that tell an AI answer speaks of this fact (visibility.tracking); empty: taken
    # from the statement.
    check_cues = models.JSONField(
        "cue words",
        default=list,
        blank=True,
        help_text="Words that tell an AI answer is stating this fact, in any language, e.g. "
        "employs, staff, 员工. Empty: taken from the statement.",
    )
    source_url = models.URLField(max_length=2000)
    source_title = models.JSONField(default=dict, help_text="The source's title per language.")
    as_of = models.DateField(help_text="The date the statement is true as of.")
    valid_until = models.DateField(null=True, blank=True)
    # Normalised text the admin's search matches (kb.search), set by the services.
    search_text = models.TextField(blank=True, default="", editable=False)

    snapshot_fields = (
        "key",
        "about",
        "statement",
        "value",
        "unit",
        "unit_labels",
        "check_cues",
        "source_url",
        "source_title",
        "as_of",
        "valid_until",
    )

    class Meta:
        ordering = ["about_id", "key"]
        constraints = [models.UniqueConstraint(fields=["brand", "key"], name="unique_fact_key")]

    def __str__(self) -> str:
        return self.brand.localize(self.statement)[:80] or self.key

    def clean(self):
        super().clean()
        require_web_url(self, "source_url")


class FAQ(RevisionedModel):
    """A question and its answer, optionally about one entity."""

    key = models.SlugField(max_length=100)
    about = models.ForeignKey(
        Entity, null=True, blank=True, on_delete=models.PROTECT, related_name="faqs"
    )
    question = models.JSONField(default=dict)
    answer = models.JSONField(default=dict)
    order = models.PositiveIntegerField(default=0)
    # Normalised text the admin's search matches (kb.search), set by the services.
    search_text = models.TextField(blank=True, default="", editable=False)

    snapshot_fields = ("key", "about", "question", "answer", "order")

    class Meta:
        verbose_name = "FAQ"
        verbose_name_plural = "FAQs"
        ordering = ["order", "key"]
        constraints = [models.UniqueConstraint(fields=["brand", "key"], name="unique_faq_key")]

    def __str__(self) -> str:
        return self.brand.localize(self.question)[:80] or self.key


class AuditEntry(models.Model):
    """Audit trail: who did what to which object, in which brand."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="audit_entries")
    content_type = models.ForeignKey(
        ContentType, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_id = models.PositiveBigIntegerField(null=True)
    object_repr = models.CharField(max_length=500)
    action = models.CharField(max_length=50)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-timestamp"]
        verbose_name_plural = "audit entries"
        # Lists' Last-Modified asks when the brand last deleted something of a kind.
        indexes = [
            models.Index(
                fields=["brand", "content_type", "action", "timestamp"], name="kb_audit_lookup"
            )
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"


class ApiToken(models.Model):
    """A brand's API token. Only a hash is stored; the token is shown once, when created."""

    class Scope(models.TextChoices):
        READ = "read", "Read published content"
        PREVIEW = "preview", "Read drafts too"
        WRITE = "write", "Create, change and delete content"
        PUBLISH = "publish", "Publish and roll back"
        MANAGE = "manage", "Manage webhooks and settings"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, help_text="Shown to tell tokens apart.")
    token_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["brand", "-created_at"]

    def __str__(self) -> str:
        return f"{self.brand.slug} token {self.prefix}… ({', '.join(self.scopes)})"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


# --- API imports run as tasks (kb.tasks.import_run) -----------------------------------------


class ImportJob(models.Model):
    """An import through the API too large to run inside the request: the document is kept
    here until a worker imports it (all or nothing), then the outcome is what the status URL
    (``/api/v1/brands/<slug>/imports/<id>/``) shows."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="import_jobs")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    publish = models.BooleanField(default=False)
    # The uploaded bytes (in the database, which web and workers share); emptied once done.
    document = models.BinaryField(default=b"", editable=False)
    size = models.PositiveBigIntegerField(default=0)
    nodes = models.PositiveIntegerField(default=0, help_text="Node objects in the document.")
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token = models.ForeignKey(
        "ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.brand.slug} import {self.pk} ({self.state})"


# --- end of API imports ---------------------------------------------------------------------
