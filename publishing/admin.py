"""Publishing in the admin: releases with live progress, targets, requests, policies."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from kb.admin import BrandScopedAdmin, PolicyAdminMixin, ReadOnlyBrandScopedAdmin
from kb.models import FAQ, Brand, Entity, Fact, Revision, Status
from kb.quality import brand_summary, entity_findings
from kb.services.permissions import (
    ADMIN,
    ADMIN_VIEW_POLICY,
    EDIT,
    admin_page_allowed,
    admin_page_require,
    brands_for,
    user_can,
)
from publishing.compare import releases_compare
from publishing.forms import TargetForm
from publishing.media import (
    ALT_MAX_CHARS,
    MediaInvalid,
    alt_clean,
    media_alt_update,
    media_delete,
    media_open,
    media_upload,
    media_validate,
    preview_token_user,
)
from publishing.models import (
    Deployment,
    MediaAsset,
    PublishRequest,
    Release,
    SectionAiUse,
    SiteSettings,
    Target,
    WebhookAttempt,
    WebhookDelivery,
)
from publishing.preview import entity_preview, preview_csp, preview_media_links
from publishing.selectors import brands_publishing_state
from publishing.services import (
    BuildBusy,
    PublishError,
    last_deployed,
    publish_request_create,
    release_rollback,
)
from publishing.site import absolute_url
from visibility.models import Engine


def progress_bar(release: Release) -> str:
    total = release.progress_total or 0
    done = min(release.progress_done or 0, total) if total else 0
    percent = int(100 * done / total) if total else (100 if release.state != "building" else 0)
    return format_html(
        '<progress max="100" value="{}" title="{} / {}"></progress> {}%',
        percent,
        done,
        total,
        percent,
    )


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 0
    can_delete = False
    fields = ("target", "state", "started_at", "finished_at", "uploaded", "deleted", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Release)
class ReleaseAdmin(ReadOnlyBrandScopedAdmin):
    list_display = ("number", "brand", "state", "progress", "artifacts", "changed", "reason",
                    "created_by", "created_at", "deployed_at", "live")  # fmt: skip
    list_display_links = ("number",)
    list_filter = (("brand", admin.RelatedOnlyFieldListFilter), "state")
    readonly_fields = ("brand", "number", "state", "progress", "reason", "created_by",
                       "created_at", "finished_at", "deployed_at", "live", "summary",
                       "product_feeds", "error")  # fmt: skip
    exclude = ("progress_done", "progress_total", "rollback_of")
    inlines = [DeploymentInline]
    actions = ["roll_back", "compare"]
    change_list_template = "admin/publishing/release/change_list.html"

    class Media:
        css = {"all": ["kb/history.css"]}

    @admin.display(description="live")
    def live(self, obj):
        """A badge on the release each target serves now (its last good deployment)."""
        targets = live_targets(obj)
        if not targets:
            return ""
        return format_html('<span class="live-badge">Live</span> on {}', ", ".join(targets))

    @admin.display(description="progress")
    def progress(self, obj):
        return progress_bar(obj)

    @admin.display(description="product feeds")
    def product_feeds(self, obj):
        """Each feed file with its market and rows, and the offers the feeds refused, with
        the reason (see publishing.render.feeds)."""
        if not obj.feeds:
            return "—"
        files = format_html_join(
            "",
            '<tr><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>',
            (
                (report["language"], absolute_url(obj.brand, f["path"]), f["path"], f["market"],
                 f["rows"])
                for report in obj.feeds
                for f in report["files"]
            ),
        )  # fmt: skip
        table = format_html(
            '<table class="feeds"><thead><tr><th>Language</th><th>File</th><th>Market</th>'
            "<th>Rows</th></tr></thead><tbody>{}</tbody></table>",
            files,
        )
        refused = [
            (report["language"], r["name"] or r["item"], r["market"] or "—", r["reason"])
            for report in obj.feeds
            for r in report["refusals"]
        ]
        total = sum(report["refused"] for report in obj.feeds)
        if not total:
            return format_html("{}<p>No offer refused.</p>", table)
        listed = format_html_join(
            "",
            "<li>{} ({}, market {}): {}</li>",
            ((n, lang, m, why) for lang, n, m, why in refused),
        )
        more = f" (the first {len(refused)} listed)" if len(refused) < total else ""
        return format_html(
            "{}<p>{} offers refused in all languages{}:</p><ul>{}</ul>", table, total, more, listed
        )

    @admin.display(description="artifacts")
    def artifacts(self, obj):
        return obj.summary.get("artifacts", "—")

    @admin.display(description="changed")
    def changed(self, obj):
        return obj.summary.get("changed", "—")

    def get_urls(self):
        return [
            path(
                "publish/<int:brand_id>/",
                self.admin_site.admin_view(self.publish_view),
                name="publishing_release_publish",
            ),
            path(
                "dashboard/<int:brand_id>/",
                self.admin_site.admin_view(self.dashboard_view),
                name="publishing_brand_dashboard",
            ),
            path(
                "preview/<int:entity_id>/<str:language>/",
                self.admin_site.admin_view(self.preview_view),
                name="publishing_entity_preview",
            ),
            path(
                "preview/<int:entity_id>/<str:language>/page/",
                self.admin_site.admin_view(self.preview_page_view),
                name="publishing_entity_preview_page",
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request, brand_id: int):
        """A brand at a glance: content by type and state, checks, releases, targets."""
        brand = get_object_or_404(Brand, pk=brand_id)
        admin_page_require(request, brand)
        counts = (
            Entity.objects.filter(brand=brand)
            .values("primary_type", "status")
            .annotate(n=Count("pk"))
            .order_by("primary_type", "status")
        )
        by_type: dict[str, dict[str, int]] = {}
        for row in counts:
            by_type.setdefault(row["primary_type"], {})[row["status"]] = row["n"]
        states = [s for s in Status.values if any(s in c for c in by_type.values())]
        scheduled = (
            Revision.objects.filter(brand=brand, go_live_at__gt=timezone.now())
            .order_by("go_live_at")
            .first()
        )
        state = next(s for s in brands_publishing_state() if s["brand"] == brand.slug)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{brand} — dashboard",
            "brand": brand,
            "states": states,
            "rows": [(t, [c.get(s, 0) for s in states]) for t, c in sorted(by_type.items())],
            "facts": Fact.objects.filter(brand=brand).count(),
            "faqs": FAQ.objects.filter(brand=brand).count(),
            "quality": brand_summary(brand=brand),
            "releases": Release.objects.filter(brand=brand).order_by("-number")[:5],
            "next_go_live": scheduled,
            "targets": state["targets"],
            "pending": state["pending_requests"],
            "can_publish": user_can(request.user, brand, "publish"),
            "publish_url": reverse("admin:publishing_release_publish", args=[brand.pk]),
        }
        return TemplateResponse(request, "admin/publishing/dashboard.html", context)

    def preview_entity(self, request, entity_id: int, language: str):
        entity = get_object_or_404(Entity.objects.select_related("brand"), pk=entity_id)
        admin_page_require(request, entity.brand)
        language = entity.brand.canonical_language(language) or entity.brand.default_language
        return entity, language, entity_preview(entity=entity, language=language)

    def preview_view(self, request, entity_id: int, language: str):
        """The working copy's JSON-LD next to its rendered page, before it is published."""
        entity, language, preview = self.preview_entity(request, entity_id, language)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview of {entity}",
            "entity": entity,
            "language": language,
            "languages": entity.brand.languages,
            "graph": json.dumps(preview["graph"], ensure_ascii=False, indent=2)
            if preview["graph"]
            else "",
            "missing": preview["missing"],
            "findings": entity_findings(brand=entity.brand, types=entity.types, data=entity.data),
            "page_url": reverse("admin:publishing_entity_preview_page", args=[entity.pk, language]),
        }
        return TemplateResponse(request, "admin/publishing/preview.html", context)

    def preview_page_view(self, request, entity_id: int, language: str):
        entity, _, preview = self.preview_entity(request, entity_id, language)
        html = preview_media_links(preview["html"] or "", brand=entity.brand, user=request.user)
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        # Shown in an iframe of the admin: no scripts, no forms, no navigation of the admin;
        # images from this server (the brand's uploads) and the brand's media URL only.
        response["Content-Security-Policy"] = preview_csp(entity.brand)
        response["X-Frame-Options"] = "SAMEORIGIN"
        return response

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["publishable_brands"] = [
            (brand, reverse("admin:publishing_release_publish", args=[brand.pk]))
            for brand in brands_for(request.user, "publish")
        ]
        extra_context["building"] = self.get_queryset(request).filter(state="building").exists()
        return super().changelist_view(request, extra_context)

    def publish_view(self, request, brand_id: int):
        brand = get_object_or_404(Brand, pk=brand_id)
        admin_page_require(request, brand)
        if request.method != "POST":
            raise PermissionDenied
        publish_request = publish_request_create(
            brand=brand,
            user=request.user,
            reason=request.POST.get("reason", "")[:500] or "Published from the admin",
            source=PublishRequest.Source.MANUAL,
        )
        publish_request.refresh_from_db()
        if publish_request.state == PublishRequest.State.PENDING and publish_request.dispatch_error:
            self.message_user(
                request,
                f"Publish request {publish_request.pk} is recorded but the task queue cannot be "
                "reached; it will start as soon as the queue is back.",
                messages.WARNING,
            )
        else:
            self.message_user(
                request, f"Publishing {brand}: request {publish_request.pk} recorded."
            )
        return HttpResponseRedirect(reverse("admin:publishing_release_changelist"))

    @admin.action(description="Compare the two selected releases")
    def compare(self, request, queryset):
        releases = list(queryset.order_by("number"))
        if len(releases) != 2 or releases[0].brand_id != releases[1].brand_id:
            self.message_user(
                request, "Select two releases of one brand to compare.", messages.ERROR
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Release {releases[0].number} → release {releases[1].number}",
            **releases_compare(old=releases[0], new=releases[1]),
        }
        return TemplateResponse(request, "admin/publishing/compare.html", context)

    @admin.action(description="Roll back to the selected release (deploy it again)…")
    def roll_back(self, request, queryset):
        """A confirmation page says what a rollback does and does not do; then it runs."""
        if queryset.count() != 1:
            self.message_user(
                request, "Select exactly one release to roll back to.", messages.ERROR
            )
            return None
        release = queryset.select_related("brand").get()
        if "confirm" not in request.POST:
            targets = Target.objects.filter(brand=release.brand, enabled=True).order_by("pk")
            live_now = sorted(
                {r.number for r in map(last_deployed, targets) if r is not None} - {release.number}
            )
            context = {
                **self.admin_site.each_context(request),
                "title": f"Roll back {release.brand} to release {release.number}?",
                "release": release,
                "targets": [t.name for t in targets],
                "live_now": live_now,
                "consequences": rollback_consequences(release),
                "opts": self.model._meta,
            }
            return TemplateResponse(
                request, "admin/publishing/release/rollback_confirm.html", context
            )
        try:
            _, deployments = release_rollback(
                brand=release.brand, number=release.number, user=request.user
            )
        except (PublishError, BuildBusy, PermissionDenied) as error:
            self.message_user(request, str(error), messages.ERROR)
            return None
        failed = [d.target.name for d in deployments if d.state == Deployment.State.FAILED]
        if failed:
            self.message_user(
                request,
                f"Release {release.number} of {release.brand} could not be deployed to "
                f"{', '.join(failed)}: see the release's deployments.",
                messages.ERROR,
            )
            return None
        self.message_user(
            request,
            f"Release {release.number} of {release.brand} deployed again: "
            + rollback_consequences(release),
        )
        return None


def live_targets(release: Release) -> list[str]:
    """The names of the brand's targets whose last good deployment is this release."""
    targets = Target.objects.filter(brand_id=release.brand_id).order_by("pk")
    return [t.name for t in targets if (live := last_deployed(t)) and live.pk == release.pk]


def rollback_consequences(release: Release) -> str:
    """What a rollback does, as release_rollback and the next build really behave: it only
    deploys the old release's files again; published revisions stay as they are, and every
    build is made from them."""
    return (
        f"the site serves release {release.number}'s older content now. Nothing in the "
        "knowledge base changes: entities, facts and FAQs keep their published revisions. "
        "The next publish (of the brand, from the admin, the API, the command line or a "
        "scheduled go-live; or of any one item, which updates the site too) builds a new "
        "release from everything that is published, so content published after release "
        f"{release.number} comes back then, unless you unpublish it first."
    )


@admin.register(Target)
class TargetAdmin(BrandScopedAdmin):
    form = TargetForm
    list_display = ("name", "brand", "kind", "enabled", "last_deployment")
    list_filter = (("brand", admin.RelatedOnlyFieldListFilter), "kind", "enabled")

    @admin.display(description="last deployment")
    def last_deployment(self, obj):
        deployment = obj.deployments.order_by("-pk").first()
        if deployment is None:
            return "—"
        return f"release {deployment.release.number}: {deployment.get_state_display()}"


class SectionAiUseInline(PolicyAdminMixin, admin.TabularInline):
    """Sections whose AI-use preferences differ from the site's."""

    model = SectionAiUse
    extra = 0
    verbose_name_plural = "Sections with their own AI-use preferences"

    def brand_of(self, obj):
        return obj.brand if obj is not None else None

    def has_add_permission(self, request, obj=None):
        return self.user_may(request, "add", obj)


@admin.register(SiteSettings)
class SiteSettingsAdmin(BrandScopedAdmin):
    list_display = ("brand", "allow_ai_training", "allow_ai_input", "answer_endpoint",
                    "keep_releases", "keep_deployed_days")  # fmt: skip
    fieldsets = [
        (None, {"fields": ["brand"]}),
        (
            "AI crawlers and AI use",
            {
                "fields": ["allow_ai_training", "allow_ai_input"],
                "description": "Published with each release in robots.txt (Content-Signal "
                "and Content-Usage lines in every crawler group, and the crawlers' Allow and "
                "Disallow lines to match) and sent by the web server as the Content-Usage "
                "header of every file.",
            },
        ),
        (
            "Answer endpoint",
            {
                "fields": ["answer_endpoint", "answer_engine"],
                "description": "NLWeb's /ask and MCP's /mcp on the site (nginx passes them "
                "to the application): agents search the published pages and get their "
                "schema.org objects and URLs to cite. Only what the live release publishes "
                "is answered.",
            },
        ),
        ("Releases kept", {"fields": ["keep_releases", "keep_deployed_days"]}),
    ]
    inlines = [SectionAiUseInline]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "answer_engine":
            # Another brand's engine is refused on save too (SiteSettings.clean).
            kwargs["queryset"] = Engine.objects.filter(
                brand__in=brands_for(request.user, ADMIN)
            ).order_by("brand__name", "name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(PublishRequest)
class PublishRequestAdmin(BrandScopedAdmin):
    list_display = ("pk", "brand", "state", "source", "reason", "requested_by", "created_at",
                    "dispatched_at", "release")  # fmt: skip
    list_filter = (("brand", admin.RelatedOnlyFieldListFilter), "state", "source")
    readonly_fields = [f.name for f in PublishRequest._meta.fields]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "started_at", "duration_ms", "status_code", "error", "will_retry")
    exclude = ("response_body",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(BrandScopedAdmin):
    brand_field = "target__brand"
    list_display = ("event", "target", "release", "state", "created_at", "delivered_at")
    list_filter = ("state", "event")
    readonly_fields = ("event", "event_id", "delivery_id", "target", "release", "state",
                       "created_at", "delivered_at", "payload")  # fmt: skip
    inlines = [WebhookAttemptInline]

    def brand_of(self, obj):
        return obj.target.brand if obj is not None else None


# -- brand media --------------------------------------------------------------------------


class MediaAssetForm(forms.ModelForm):
    """Upload an image with its alt text per language (the ``alt_<language>`` fields are
    added per user, see MediaAssetAdmin.get_form); the service stores it."""

    alt_languages: tuple[str, ...] = ()

    class Meta:
        model = MediaAsset
        fields = ["brand"]

    def alt_given(self) -> dict[str, str]:
        return {
            language: text
            for language in self.alt_languages
            if (text := (self.cleaned_data.get(f"alt_{language}") or "").strip())
        }

    def clean(self):
        cleaned = super().clean()
        brand = cleaned.get("brand") or (self.instance.brand if self.instance.pk else None)
        if brand is not None:
            try:
                alt_clean(brand, self.alt_given())
            except MediaInvalid as error:
                self.add_error(None, error)
        upload = cleaned.get("upload")
        if upload is not None:
            try:
                media_validate(upload)
            except MediaInvalid as error:
                self.add_error("upload", error)
        return cleaned


def media_form(languages: list[str], *, adding: bool) -> type[MediaAssetForm]:
    fields: dict = {"alt_languages": tuple(languages)}
    if adding:
        fields["upload"] = forms.FileField(
            label="Image",
            help_text="JPEG, PNG, WebP or GIF. Published at the brand's /media/ with the "
            "next release of content that shows it.",
        )
    for language in languages:
        fields[f"alt_{language}"] = forms.CharField(
            label=f"Alt text ({language})",
            required=False,
            max_length=ALT_MAX_CHARS,
            help_text="What the image shows, for readers who cannot see it.",
        )
    return type("MediaAssetUploadForm", (MediaAssetForm,), fields)


@admin.register(MediaAsset)
class MediaAssetAdmin(BrandScopedAdmin):
    list_display = ("thumbnail", "path", "brand", "dimensions", "size", "alt_languages",
                    "created_at")  # fmt: skip
    list_display_links = ("thumbnail", "path")
    list_filter = (("brand", admin.RelatedOnlyFieldListFilter), "content_type")
    search_fields = ("path", "original_name")
    change_readonly = ("brand", "preview", "public_url", "path", "content_type", "dimensions",
                       "size", "original_name", "sha256", "created_by", "created_at")  # fmt: skip

    def languages_for(self, request, obj) -> list[str]:
        if obj is not None:
            return list(obj.brand.languages)
        languages: list[str] = []
        for brand in brands_for(request.user, EDIT).order_by("pk"):
            languages += [lang for lang in brand.languages if lang not in languages]
        return languages

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = media_form(self.languages_for(request, obj), adding=obj is None)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        alt = [f"alt_{lang}" for lang in self.languages_for(request, obj)]
        if obj is None:
            return ["brand", "upload", *alt]
        return [*self.change_readonly[:2], *alt, *self.change_readonly[2:]]

    def get_readonly_fields(self, request, obj=None):
        return self.change_readonly if obj is not None else ()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            form = context["adminform"].form
            for language, text in obj.alt.items():
                if f"alt_{language}" in form.fields:
                    form.initial.setdefault(f"alt_{language}", text)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_form(self, request, form, change):
        """The service stores the upload (or the alt texts) and returns the asset."""
        if change:
            return media_alt_update(asset=form.instance, alt=form.alt_given(), user=request.user)
        return media_upload(
            brand=form.cleaned_data["brand"],
            file=form.cleaned_data["upload"],
            alt=form.alt_given(),
            user=request.user,
        )

    def save_model(self, request, obj, form, change):
        pass  # saved by the service (save_form)

    def save_related(self, request, form, formsets, change):
        pass  # nothing related

    def delete_model(self, request, obj):
        media_delete(asset=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for asset in queryset.select_related("brand"):
            media_delete(asset=asset, user=request.user)

    def get_urls(self):
        return [
            path(
                "<int:asset_id>/file/",
                self.file_view,  # not admin_view: the preview's sandboxed frame has no session
                name="publishing_mediaasset_file",
            ),
            *super().get_urls(),
        ]

    def file_view(self, request, asset_id: int):
        """The asset's bytes, to a user who may see its brand: by the session, or by a
        preview link's token (see publishing.media.preview_token)."""
        asset = get_object_or_404(MediaAsset.objects.select_related("brand"), pk=asset_id)
        token = request.GET.get("t")
        if token:
            user = preview_token_user(token, asset.pk)
            allowed = (
                user is not None
                and user.is_staff
                and user_can(user, asset.brand, ADMIN_VIEW_POLICY["publishing_mediaasset_file"])
            )
        else:
            user = request.user
            allowed = (
                user.is_authenticated
                and user.is_active
                and user.is_staff
                and admin_page_allowed(request, asset.brand)
            )
        if not allowed:
            raise PermissionDenied
        response = FileResponse(media_open(asset), content_type=asset.content_type)
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    def file_url(self, obj) -> str:
        return reverse("admin:publishing_mediaasset_file", args=[obj.pk])

    @admin.display(description="image")
    def thumbnail(self, obj):
        return format_html(
            '<img src="{}" alt="{}" style="max-width:96px;max-height:64px" loading="lazy">',
            self.file_url(obj),
            obj.alt.get(obj.brand.default_language, ""),
        )

    @admin.display(description="preview")
    def preview(self, obj):
        return format_html(
            '<img src="{}" alt="{}" style="max-width:480px;max-height:320px">',
            self.file_url(obj),
            obj.alt.get(obj.brand.default_language, ""),
        )

    @admin.display(description="public URL")
    def public_url(self, obj):
        return obj.public_url

    @admin.display(description="size (px)")
    def dimensions(self, obj):
        return f"{obj.width} × {obj.height}"

    @admin.display(description="alt text in")
    def alt_languages(self, obj):
        return ", ".join(sorted(obj.alt)) or "—"
