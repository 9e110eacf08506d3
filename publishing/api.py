"""Releases over the API: list and read them, publish and follow progress, roll back, webhooks."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from django.db.models import Max
from django.http import HttpResponse
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from kb.api.base import ApiView
from kb.api.problems import Conflict
from kb.api.serializers import page_of
from kb.api.views import PROBLEMS, READ_PROBLEMS, SLUG, WRITE_PROBLEMS, Pagination
from publishing.models import PublishRequest, Release, Target
from publishing.services import BuildBusy, PublishError, publish_request_create, release_rollback
from publishing.store import artifact_read
from publishing.webhooks import webhook_url_problem

WEBHOOK_EVENTS = ("release.deployed",)


class DeploymentSerializer(serializers.Serializer):
    target = serializers.CharField(source="target.name")
    kind = serializers.CharField(source="target.kind")
    state = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    uploaded = serializers.IntegerField()
    deleted = serializers.IntegerField()
    error = serializers.CharField()


class ReleaseSerializer(serializers.ModelSerializer):
    deployments = DeploymentSerializer(many=True, read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = ["number", "state", "reason", "created_at", "finished_at", "deployed_at",
                  "progress", "summary", "error", "deployments"]  # fmt: skip

    def get_progress(self, release) -> dict:
        return {"done": release.progress_done, "total": release.progress_total}


class ArtifactSerializer(serializers.Serializer):
    path = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField()
    kind = serializers.CharField()
    changed_at = serializers.DateTimeField()


class PublishRequestSerializer(serializers.ModelSerializer):
    release = serializers.IntegerField(source="release.number", allow_null=True, read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = PublishRequest
        fields = [
            "id",
            "state",
            "source",
            "reason",
            "created_at",
            "dispatched_at",
            "release",
            "progress",
        ]

    def get_progress(self, request) -> dict:
        release = request.release
        return (
            {"done": release.progress_done, "total": release.progress_total}
            if release
            else {"done": 0, "total": 0}
        )


class PublishInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    url = serializers.URLField(help_text="http(s); private and loopback addresses are refused.")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENTS), default=list(WEBHOOK_EVENTS)
    )
    enabled = serializers.BooleanField(default=True)

    def validate_url(self, url: str) -> str:
        problem = webhook_url_problem(url)
        if problem:
            raise serializers.ValidationError(problem)
        return url


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (Standard Webhooks, whsec_…): returned only when created.",
    )


ReleasePageSerializer = page_of(ReleaseSerializer, "ReleasePageSerializer")
ArtifactPageSerializer = page_of(ArtifactSerializer, "ArtifactPageSerializer")


def webhook_data(target: Target, secret: str | None = None) -> dict:
    data = {
        "id": target.pk,
        "name": target.name,
        "url": target.config.get("url", ""),
        "events": target.config.get("events", list(WEBHOOK_EVENTS)),
        "enabled": target.enabled,
    }
    if secret:
        data["secret"] = secret
    return data


def release_changed_at(release: Release) -> datetime | None:
    """When the release (its state, deployments) last changed; None while it is building,
    as its progress moves without a timestamp (the ETag still changes)."""
    if release.state == Release.State.BUILDING:
        return None
    stamps = [release.created_at, release.finished_at, release.deployed_at]
    for deployment in release.deployments.all():
        stamps += [deployment.started_at, deployment.finished_at]
    return max(s for s in stamps if s)


class ReleaseList(ApiView):
    query_params = frozenset({"page", "page_size"})

    @extend_schema(parameters=[SLUG, OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
                   responses={200: ReleasePageSerializer, **READ_PROBLEMS}, tags=["releases"],
                   operation_id="v1_brands_releases_list")  # fmt: skip
    def get(self, request, slug):
        access = self.access(slug, "read")
        query = (
            Release.objects.filter(brand=access.brand)
            .prefetch_related("deployments__target")
            .order_by("-number")
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(query, request, view=self)
        data = paginator.page_data(ReleaseSerializer(page, many=True).data)
        releases = Release.objects.filter(brand=access.brand)
        last = None
        if not releases.filter(state=Release.State.BUILDING).exists():
            stamps = releases.aggregate(
                Max("created_at"), Max("finished_at"), Max("deployed_at"),
                Max("deployments__started_at"), Max("deployments__finished_at"),
            )  # fmt: skip
            last = max((s for s in stamps.values() if s), default=None)
        return self.conditional(data, last_modified=last)


class ReleaseDetail(ApiView):
    @extend_schema(
        parameters=[SLUG], responses={200: ReleaseSerializer, **READ_PROBLEMS}, tags=["releases"]
    )
    def get(self, request, slug, number):
        access = self.access(slug, "read")
        release = (
            Release.objects.filter(brand=access.brand, number=number)
            .prefetch_related("deployments__target")
            .first()
        )
        if release is None:
            raise exceptions.NotFound("No such release.")
        return self.conditional(
            ReleaseSerializer(release).data, last_modified=release_changed_at(release)
        )


FINISHED = (Release.State.READY, Release.State.DEPLOYED)


class ReleaseArtifacts(ApiView):
    query_params = frozenset({"page", "page_size", "kind"})

    @extend_schema(parameters=[SLUG, OpenApiParameter("kind", str), OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
                   responses={200: ArtifactPageSerializer, **READ_PROBLEMS}, tags=["releases"],
                   operation_id="v1_brands_releases_artifacts_list")  # fmt: skip
    def get(self, request, slug, number):
        """The release's manifest: every artifact with its hash, size and content type."""
        access = self.access(slug, "read")
        release = Release.objects.filter(brand=access.brand, number=number).first()
        if release is None:
            raise exceptions.NotFound("No such release.")
        # A building release's manifest is being written, a failed one's discarded.
        query = release.artifacts.order_by("path")
        if release.state not in FINISHED:
            query = query.none()
        if request.query_params.get("kind"):
            query = query.filter(kind=request.query_params["kind"])
        paginator = Pagination()
        page = paginator.paginate_queryset(query, request, view=self)
        data = paginator.page_data(ArtifactSerializer(page, many=True).data)
        return self.conditional(data, last_modified=release.finished_at)


class ReleaseArtifactContent(ApiView):
    any_accept = True

    @extend_schema(
        parameters=[SLUG],
        responses={(200, "*/*"): OpenApiTypes.BINARY, **READ_PROBLEMS},
        tags=["releases"],
    )
    def get(self, request, slug, number, path):
        """One artifact's bytes, with its content type; the ETag is its SHA-256."""
        access = self.access(slug, "read")
        release = Release.objects.filter(
            brand=access.brand, number=number, state__in=FINISHED
        ).first()
        artifact = (
            release.artifacts.filter(path=path)
            .values_list("sha256", "content_type", "changed_at")
            .first()
            if release is not None
            else None
        )
        if artifact is None:
            raise exceptions.NotFound("No such artifact in this release.")
        sha256, content_type, changed = artifact
        headers = {"ETag": f'"{sha256}"', "Last-Modified": http_date(changed.timestamp())}
        if self.not_modified(headers["ETag"], changed):
            return HttpResponse(status=304, headers=headers)
        return HttpResponse(artifact_read(sha256), content_type=content_type, headers=headers)


class BrandPublish(ApiView):
    @extend_schema(parameters=[SLUG], request=PublishInputSerializer,
                   responses={202: PublishRequestSerializer, **WRITE_PROBLEMS}, tags=["releases"])  # fmt: skip
    def post(self, request, slug):
        """Request a release; follow it at the returned Location."""
        access = self.access(slug, "publish")
        payload = PublishInputSerializer(data=request.data or {})
        payload.is_valid(raise_exception=True)
        publish_request = publish_request_create(
            brand=access.brand, user=access.user,
            reason=payload.validated_data.get("reason") or "Requested through the API",
            source=PublishRequest.Source.API,
        )  # fmt: skip
        publish_request.refresh_from_db()  # in-process (no broker) it may be built already
        return Response(
            PublishRequestSerializer(publish_request).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/brands/{slug}/publish-requests/{publish_request.pk}/"},
        )


class PublishRequestDetail(ApiView):
    @extend_schema(
        parameters=[SLUG],
        responses={200: PublishRequestSerializer, **READ_PROBLEMS},
        tags=["releases"],
    )
    def get(self, request, slug, pk):
        """A publish request: pending, building (with progress), done or failed."""
        access = self.access(slug, "read")
        found = (
            PublishRequest.objects.select_related("release")
            .filter(brand=access.brand, pk=pk)
            .first()
        )
        if found is None:
            raise exceptions.NotFound("No such publish request.")
        last = None
        if found.state in (PublishRequest.State.DONE, PublishRequest.State.FAILED):
            stamps = [found.created_at, found.dispatched_at]
            if found.release is not None:
                stamps.append(release_changed_at(found.release))
            last = max(s for s in stamps if s)
        return self.conditional(PublishRequestSerializer(found).data, last_modified=last)


class ReleaseRollback(ApiView):
    @extend_schema(
        parameters=[SLUG],
        request=None,
        responses={200: ReleaseSerializer, **WRITE_PROBLEMS},
        tags=["releases"],
    )
    def post(self, request, slug, number):
        """Deploy this release again to every enabled target."""
        access = self.access(slug, "publish")
        try:
            release, _ = release_rollback(brand=access.brand, number=number, user=access.user)
        except PublishError as error:
            if not Release.objects.filter(brand=access.brand, number=number).exists():
                raise exceptions.NotFound("No such release.") from None
            raise Conflict(str(error)) from None
        except BuildBusy as busy:
            raise Conflict(str(busy)) from None
        release.refresh_from_db()
        return Response(ReleaseSerializer(release).data)


class WebhookList(ApiView):
    @extend_schema(
        parameters=[SLUG],
        responses={200: WebhookSerializer(many=True), **READ_PROBLEMS},
        tags=["webhooks"],
        operation_id="v1_brands_webhooks_list",
    )
    def get(self, request, slug):
        access = self.access(slug, "manage")
        hooks = Target.objects.filter(brand=access.brand, kind=Target.Kind.WEBHOOK).order_by("pk")
        return self.conditional([webhook_data(t) for t in hooks])

    @extend_schema(
        parameters=[SLUG],
        request=WebhookSerializer,
        responses={201: WebhookCreatedSerializer, **WRITE_PROBLEMS},
        tags=["webhooks"],
    )
    def post(self, request, slug):
        """Subscribe a URL to release events; the response holds the signing secret, once."""
        access = self.access(slug, "manage")
        payload = WebhookSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if Target.objects.filter(brand=access.brand, name=payload.validated_data["name"]).exists():
            raise exceptions.ValidationError(
                {"name": ["A target of this brand already has this name."]}
            )
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        target = Target.objects.create(
            brand=access.brand,
            name=payload.validated_data["name"],
            kind=Target.Kind.WEBHOOK,
            enabled=payload.validated_data["enabled"],
            config={
                "url": payload.validated_data["url"],
                "events": payload.validated_data["events"],
            },
            secret=secret,
        )
        return Response(webhook_data(target, secret), status=status.HTTP_201_CREATED)


class WebhookDetail(ApiView):
    def hook(self, access, pk) -> Target:
        target = Target.objects.filter(brand=access.brand, kind=Target.Kind.WEBHOOK, pk=pk).first()
        if target is None:
            raise exceptions.NotFound("No such webhook.")
        return target

    @extend_schema(
        parameters=[SLUG], responses={200: WebhookSerializer, **READ_PROBLEMS}, tags=["webhooks"]
    )
    def get(self, request, slug, pk):
        access = self.access(slug, "manage")
        return self.conditional(webhook_data(self.hook(access, pk)))

    @extend_schema(
        parameters=[SLUG],
        request=WebhookSerializer,
        responses={200: WebhookSerializer, **WRITE_PROBLEMS},
        tags=["webhooks"],
    )
    def put(self, request, slug, pk):
        access = self.access(slug, "manage")
        target = self.hook(access, pk)
        payload = WebhookSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        name = payload.validated_data["name"]
        if Target.objects.filter(brand=access.brand, name=name).exclude(pk=target.pk).exists():
            raise exceptions.ValidationError(
                {"name": ["A target of this brand already has this name."]}
            )
        target.name = name
        target.enabled = payload.validated_data["enabled"]
        target.config = {
            "url": payload.validated_data["url"],
            "events": payload.validated_data["events"],
        }
        target.save(update_fields=["name", "enabled", "config"])
        return Response(webhook_data(target))

    @extend_schema(
        parameters=[SLUG],
        responses={204: OpenApiResponse(description="Deleted."), **PROBLEMS},
        tags=["webhooks"],
    )
    def delete(self, request, slug, pk):
        access = self.access(slug, "manage")
        self.hook(access, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
