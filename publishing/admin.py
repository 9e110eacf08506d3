"""Publishing in the admin: releases with live progress, targets, requests, policies."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from kb.admin import BrandScopedAdmin, ReadOnlyBrandScopedAdmin
from kb.models import FAQ, Brand, Entity, Fact, Revision, Status
from kb.quality import brand_summary, entity_findings
from kb.services.permissions import admin_page_require, brands_for, user_can
from publishing.compare import releases_compare
from publishing.forms import TargetForm
from publishing.models import (
    Deployment,
    PublishRequest,
    Release,
    SiteSettings,
    Target,
    WebhookAttempt,
    WebhookDelivery,
)
from publishing.preview import entity_preview
from publishing.selectors import brands_publishing_state
from publishing.services import BuildBusy, PublishError, publish_request_create, release_rollback


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
                    "created_by", "created_at", "deployed_at")  # fmt: skip
    list_display_links = ("number",)
    list_filter = (("brand", admin.RelatedOnlyFieldListFilter), "state")
    readonly_fields = ("brand", "number", "state", "progress", "reason", "created_by",
                       "created_at", "finished_at", "deployed_at", "summary", "error")  # fmt: skip
    exclude = ("progress_done", "progress_total", "rollback_of")
    inlines = [DeploymentInline]
    actions = ["roll_back", "compare"]
    change_list_template = "admin/publishing/release/change_list.html"

    @admin.display(description="progress")
    def progress(self, obj):
        return progress_bar(obj)

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
        _, _, preview = self.preview_entity(request, entity_id, language)
        response = HttpResponse(preview["html"] or "", content_type="text/html; charset=utf-8")
        # Shown in an iframe of the admin: no scripts, no forms, no navigation of the admin.
        # Images load from the web as on the published page (only http(s) URLs are ever
        # published as images).
        response["Content-Security-Policy"] = (
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:"
        )
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

    @admin.action(description="Roll back to the selected release (deploy it again)")
    def roll_back(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(
                request, "Select exactly one release to roll back to.", messages.ERROR
            )
            return
        release = queryset.get()
        try:
            release_rollback(brand=release.brand, number=release.number, user=request.user)
        except (PublishError, BuildBusy, PermissionDenied) as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"Release {release.number} of {release.brand} deployed again.")


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


@admin.register(SiteSettings)
class SiteSettingsAdmin(BrandScopedAdmin):
    list_display = ("brand", "allow_ai_training", "keep_releases", "keep_deployed_days")


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
