"""Publishing in the admin: releases with live progress, targets, requests, policies."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from kb.admin import BrandScopedAdmin
from kb.models import Brand
from kb.services.permissions import brands_for, user_can
from publishing.models import (
    Deployment,
    PublishRequest,
    Release,
    SiteSettings,
    Target,
    WebhookAttempt,
    WebhookDelivery,
)
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
class ReleaseAdmin(BrandScopedAdmin):
    list_display = ("__str__", "brand", "state", "progress", "artifacts", "changed", "reason",
                    "created_by", "created_at", "deployed_at")  # fmt: skip
    list_filter = ("brand", "state")
    readonly_fields = ("brand", "number", "state", "progress", "reason", "created_by",
                       "created_at", "finished_at", "deployed_at", "summary", "error")  # fmt: skip
    exclude = ("progress_done", "progress_total", "rollback_of")
    inlines = [DeploymentInline]
    actions = ["roll_back"]
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "publish/<int:brand_id>/",
                self.admin_site.admin_view(self.publish_view),
                name="publishing_release_publish",
            ),
            *super().get_urls(),
        ]

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
        if request.method != "POST" or not user_can(request.user, brand, "publish"):
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
    list_display = ("name", "brand", "kind", "enabled", "last_deployment")
    list_filter = ("brand", "kind", "enabled")

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
    list_filter = ("brand", "state", "source")
    readonly_fields = [f.name for f in PublishRequest._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
