"""AI visibility over the API: runs and their answers, metrics and their series (JSON, CSV),
citation sources, alerts and AI-crawler visits of one brand. Reads need the read scope;
starting a run, write."""

from __future__ import annotations

import hashlib
import io

from django.db.models import Count, Q
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from kb.api.base import ApiView
from kb.api.problems import Conflict, ParameterError, UnprocessableContent
from kb.api.serializers import ProblemSerializer
from kb.api.views import PROBLEM_JSON, PROBLEMS, READ_PROBLEMS, SLUG, Pagination
from publishing.models import Release
from visibility.api_serializers import (
    AlertPageSerializer,
    AlertSerializer,
    AnswerPageSerializer,
    AnswerQuerySerializer,
    AnswerSerializer,
    CitationQuerySerializer,
    CitationReportSerializer,
    ComparisonQuerySerializer,
    ConfigChangeSerializer,
    CrawlerSerializer,
    LeaderboardQuerySerializer,
    LeaderboardSerializer,
    MetricsQuerySerializer,
    MetricsReportSerializer,
    PairedComparisonSerializer,
    PeriodQuerySerializer,
    ReleaseComparisonSerializer,
    RunPageSerializer,
    RunSerializer,
    RunStartSerializer,
    SeriesQuerySerializer,
    SeriesRowSerializer,
    SeriesSerializer,
)
from visibility.citations import citation_report
from visibility.comparison import release_comparison, releases_deployed
from visibility.config_document import ConfigError, config_apply, config_export
from visibility.crawlers import crawler_summary
from visibility.exports import rows_write_csv
from visibility.leaderboard import competitor_leaderboard
from visibility.metrics import (
    SCORE_FORMULA,
    SCORE_LEGEND,
    metrics_by,
    metrics_of,
    metrics_rows,
    metrics_series,
)
from visibility.models import Alert, Answer, PromptSet, Run
from visibility.pairs import paired_comparison
from visibility.services import VisibilityError, engines_named, run_start

TAGS = ["visibility"]
PAGE_PARAMS = [OpenApiParameter("page", int), OpenApiParameter("page_size", int)]
PAGE_QUERY = frozenset({"page", "page_size"})
RUN_PROBLEMS = {
    **PROBLEMS,
    (409, PROBLEM_JSON): OpenApiResponse(
        ProblemSerializer,
        description="The run cannot start (no enabled engine, no questions): says why.",
    ),
    (415, PROBLEM_JSON): OpenApiResponse(ProblemSerializer, description="Send JSON."),
}
CSV_COLUMNS = list(SeriesRowSerializer().fields)


def parameters(view: ApiView, serializer_class) -> dict:
    """The query parameters, validated by ``serializer_class``; a 400 naming each bad one."""
    query = serializer_class(data=view.request.query_params.dict())
    if not query.is_valid():
        raise ParameterError(query.errors)
    return query.validated_data


def runs_with_counts(brand):
    return (
        Run.objects.filter(brand=brand)
        .select_related("prompt_set")
        .prefetch_related("engines")
        .annotate(
            answered=Count("answers", filter=Q(answers__ok=True)),
            failed=Count("answers", filter=Q(answers__ok=False)),
        )
    )


def brand_run(brand, pk) -> Run:
    run = runs_with_counts(brand).filter(pk=pk).first()
    if run is None:
        raise exceptions.NotFound("No such run in this brand.")
    return run


# --- runs and answers ------------------------------------------------------------------------


class RunList(ApiView):
    query_params = PAGE_QUERY
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[SLUG, *PAGE_PARAMS],
        responses={200: RunPageSerializer, **READ_PROBLEMS},
        tags=TAGS,
        operation_id="v1_brands_visibility_runs_list",
    )
    def get(self, request, slug):
        """The brand's runs, newest first, with how many answers came back and failed."""
        access = self.access(slug, "read")
        paginator = Pagination()
        page = paginator.paginate_queryset(
            runs_with_counts(access.brand).order_by("-started_at", "-pk"), request, view=self
        )
        return self.conditional(paginator.page_data(RunSerializer(page, many=True).data))

    @extend_schema(
        parameters=[SLUG],
        request=RunStartSerializer,
        responses={202: RunSerializer, **RUN_PROBLEMS},
        tags=TAGS,
    )
    def post(self, request, slug):
        """Start a run of a prompt set (write scope); follow it at the returned Location."""
        access = self.access(slug, "write")
        payload = RunStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        prompt_set = PromptSet.objects.filter(
            brand=access.brand, pk=payload.validated_data["prompt_set"]
        ).first()
        if prompt_set is None:
            raise exceptions.NotFound("No such prompt set in this brand.")
        engines = None
        if "engines" in payload.validated_data:
            try:
                engines = engines_named(brand=access.brand, names=payload.validated_data["engines"])
            except VisibilityError as error:
                raise serializers.ValidationError({"engines": [str(error)]}) from None
        try:
            run = run_start(prompt_set=prompt_set, engines=engines, trigger="api", user=access.user)
        except VisibilityError as error:
            raise Conflict(str(error)) from None
        return Response(
            RunSerializer(brand_run(access.brand, run.pk)).data,  # in-process it may be done
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": reverse("api-visibility-run", args=[slug, run.pk])},
        )


class RunDetail(ApiView):
    @extend_schema(parameters=[SLUG], responses={200: RunSerializer, **READ_PROBLEMS}, tags=TAGS)
    def get(self, request, slug, pk):
        """One run: running, done, partial (some answers failed) or failed."""
        access = self.access(slug, "read")
        return self.conditional(RunSerializer(brand_run(access.brand, pk)).data)


class RunAnswers(ApiView):
    query_params = PAGE_QUERY | frozenset(AnswerQuerySerializer().fields)

    @extend_schema(
        parameters=[SLUG, AnswerQuerySerializer, *PAGE_PARAMS],
        responses={200: AnswerPageSerializer, **READ_PROBLEMS},
        tags=TAGS,
        operation_id="v1_brands_visibility_runs_answers_list",
    )
    def get(self, request, slug, pk):
        """The run's answers, raw and analysed, by engine, question and repetition."""
        access = self.access(slug, "read")
        run = brand_run(access.brand, pk)
        filters = parameters(self, AnswerQuerySerializer)
        answers = Answer.objects.filter(run=run).select_related("engine", "prompt")
        if "engine" in filters:
            answers = answers.filter(engine__name=filters["engine"])
        for name in ("mentioned", "ok"):
            if name in filters:
                answers = answers.filter(**{name: filters[name]})
        answers = answers.order_by("engine__name", "prompt__order", "prompt_id", "repetition")
        paginator = Pagination()
        page = paginator.paginate_queryset(answers, request, view=self)
        return self.conditional(paginator.page_data(AnswerSerializer(page, many=True).data))


# --- metrics ---------------------------------------------------------------------------------


class MetricsReport(ApiView):
    query_params = frozenset(MetricsQuerySerializer().fields)

    @extend_schema(
        parameters=[SLUG, MetricsQuerySerializer],
        responses={200: MetricsReportSerializer, **READ_PROBLEMS},
        tags=TAGS,
    )
    def get(self, request, slug):
        """Visibility metrics per engine, prompt or language, and overall, with the score's
        formula and 95 % Wilson intervals."""
        access = self.access(slug, "read")
        query = parameters(self, MetricsQuerySerializer)
        period = {"since": query.get("since"), "until": query.get("until")}
        groups = metrics_by(brand=access.brand, group=query["group"], **period)
        overall = metrics_by(brand=access.brand, **period).get("all") or metrics_of([])
        report = {
            "formula": SCORE_FORMULA,
            "legend": SCORE_LEGEND,
            "group": query["group"],
            **period,
            "groups": {key: metrics.as_dict() for key, metrics in groups.items()},
            "all": overall.as_dict(),
        }
        return self.conditional(MetricsReportSerializer(report).data)


def series_rows(brand, query: dict) -> list[dict]:
    series = metrics_series(
        brand=brand, period=query["period"], engine=query.get("engine"),
        since=query.get("since"), until=query.get("until"),
    )  # fmt: skip
    return SeriesRowSerializer(metrics_rows(series), many=True).data


class MetricsSeries(ApiView):
    query_params = frozenset(SeriesQuerySerializer().fields)

    @extend_schema(
        parameters=[SLUG, SeriesQuerySerializer],
        responses={200: SeriesSerializer, **READ_PROBLEMS},
        tags=TAGS,
    )
    def get(self, request, slug):
        """Metrics per engine and day (or ISO week), oldest first: the data of a trend chart."""
        access = self.access(slug, "read")
        query = parameters(self, SeriesQuerySerializer)
        data = {
            "period": query["period"],
            "formula": SCORE_FORMULA,
            "legend": SCORE_LEGEND,
            "engine": query.get("engine"),
            "since": query.get("since"),
            "until": query.get("until"),
            "series": series_rows(access.brand, query),
            "releases": [
                {"number": number, "deployed_at": deployed_at.isoformat()}
                for number, deployed_at in releases_deployed(
                    brand=access.brand, since=query.get("since"), until=query.get("until")
                )
            ],
        }
        return self.conditional(SeriesSerializer(data).data)


def csv_text(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    rows_write_csv(iter(rows), out, columns)
    return out.getvalue()


class MetricsSeriesCsv(ApiView):
    query_params = frozenset(SeriesQuerySerializer().fields)
    any_accept = True

    @extend_schema(
        parameters=[SLUG, SeriesQuerySerializer],
        responses={(200, "text/csv"): OpenApiTypes.STR, **READ_PROBLEMS},
        tags=TAGS,
        operation_id="v1_brands_visibility_metrics_series_csv_retrieve",
        description="The series as CSV (a download), one line per engine and period, columns "
        "as in the JSON series. Text cells starting with = + - @ are prefixed with '.",
    )
    def get(self, request, slug):
        access = self.access(slug, "read")
        query = parameters(self, SeriesQuerySerializer)
        body = csv_text(series_rows(access.brand, query), CSV_COLUMNS)
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
        if self.not_modified(etag, None):
            return HttpResponse(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        filename = f"{access.brand.slug}-visibility-{query['period']}.csv"
        return HttpResponse(
            body,
            content_type="text/csv; charset=utf-8",
            headers={"ETag": etag, "Content-Disposition": f'attachment; filename="{filename}"'},
        )


# --- alerts and crawlers ---------------------------------------------------------------------


class AlertList(ApiView):
    query_params = PAGE_QUERY

    @extend_schema(
        parameters=[SLUG, *PAGE_PARAMS],
        responses={200: AlertPageSerializer, **READ_PROBLEMS},
        tags=TAGS,
        operation_id="v1_brands_visibility_alerts_list",
    )
    def get(self, request, slug):
        """Lost mentions and new misstatements, newest first, each with its likely reasons."""
        access = self.access(slug, "read")
        alerts = (
            Alert.objects.filter(brand=access.brand)
            .select_related("engine", "prompt")
            .order_by("-created_at", "-pk")
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(alerts, request, view=self)
        return self.conditional(paginator.page_data(AlertSerializer(page, many=True).data))


class CrawlerList(ApiView):
    @extend_schema(
        parameters=[SLUG],
        responses={200: CrawlerSerializer(many=True), **READ_PROBLEMS},
        tags=TAGS,
        operation_id="v1_brands_visibility_crawlers_list",
    )
    def get(self, request, slug):
        """AI agents seen in the imported access logs, most recently seen first."""
        access = self.access(slug, "read")
        rows = crawler_summary(brand=access.brand)
        return self.conditional(CrawlerSerializer(rows, many=True).data)


class CitationSources(ApiView):
    query_params = frozenset(CitationQuerySerializer().fields)

    @extend_schema(
        parameters=[SLUG, CitationQuerySerializer],
        responses={200: CitationReportSerializer, **READ_PROBLEMS},
        tags=TAGS,
    )
    def get(self, request, slug):
        """The sites AI answers cite, grouped by registrable domain and owner (the brand's, a
        competitor's, a third party's), with the sites cited instead of the brand, the brand's
        pages cited, and per engine the share of answers citing the brand."""
        access = self.access(slug, "read")
        query = parameters(self, CitationQuerySerializer)
        filters = {key: query.get(key) for key in ("since", "until", "engine")}
        report = citation_report(brand=access.brand, **filters).as_dict(top=query["top"])
        return self.conditional(CitationReportSerializer(filters | report).data)


class ReleaseComparison(ApiView):
    query_params = frozenset(ComparisonQuerySerializer().fields)

    @extend_schema(
        parameters=[SLUG, OpenApiParameter("number", int, OpenApiParameter.PATH),
                    ComparisonQuerySerializer],
        responses={200: ReleaseComparisonSerializer, **READ_PROBLEMS},
        tags=TAGS,
    )  # fmt: skip
    def get(self, request, slug, number):
        """The brand's rates in two windows before and after a release went live: each with
        its 95 % interval, the difference with its interval, the ratio and a two-proportion
        z-test."""
        access = self.access(slug, "read")
        query = parameters(self, ComparisonQuerySerializer)
        release = Release.objects.filter(
            brand=access.brand, number=number, deployed_at__isnull=False
        ).first()
        if release is None:
            raise exceptions.NotFound("No release of this number went live.")
        report = release_comparison(
            brand=access.brand, release=release, days=query["days"], engine=query.get("engine")
        )
        data = ReleaseComparisonSerializer(report | {"engine": query.get("engine")}).data
        return self.conditional(data)


class CompetitorLeaderboard(ApiView):
    query_params = frozenset(LeaderboardQuerySerializer().fields)

    @extend_schema(
        parameters=[SLUG, LeaderboardQuerySerializer],
        responses={200: LeaderboardSerializer, **READ_PROBLEMS},
        tags=TAGS,
    )
    def get(self, request, slug):
        """The brand and its competitors in the answers of a period: mention rate, share of
        voice by mentions, first-mention rate (95 % intervals) and the judge's sentiment."""
        access = self.access(slug, "read")
        query = parameters(self, LeaderboardQuerySerializer)
        filters = {key: query.get(key) for key in ("since", "until", "engine")}
        board = competitor_leaderboard(brand=access.brand, **filters)
        return self.conditional(LeaderboardSerializer(filters | board).data)


class ConfigDocument(ApiView):
    query_params = frozenset({"dry_run"})
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[SLUG],
        responses={200: OpenApiTypes.OBJECT, **READ_PROBLEMS},
        tags=TAGS,
        operation_id="v1_brands_visibility_config_retrieve",
    )
    def get(self, request, slug):
        """The brand's visibility configuration (engines, prompt sets, alerts) as one
        document, as ``manage.py visibility_config export`` writes it (manage scope)."""
        access = self.access(slug, "manage")
        return self.conditional(config_export(brand=access.brand))

    @extend_schema(
        parameters=[SLUG, OpenApiParameter("dry_run", bool, description="Only plan.")],
        request=OpenApiTypes.OBJECT,
        responses={200: ConfigChangeSerializer(many=True), **PROBLEMS},
        tags=TAGS,
        operation_id="v1_brands_visibility_config_update",
    )
    def put(self, request, slug):
        """Apply a configuration document: idempotent and all or nothing; what it names is
        created or updated, the rest kept. With ``?dry_run=true`` only the plan (manage
        scope). Each problem is given at its JSON pointer."""
        access = self.access(slug, "manage")
        dry_run = request.query_params.get("dry_run", "false").lower() in ("1", "true", "yes")
        try:
            changes = config_apply(
                brand=access.brand, document=request.data, user=access.user, dry_run=dry_run
            )
        except ConfigError as error:
            raise UnprocessableContent(
                [{"pointer": p.pointer, "detail": p.message} for p in error.problems],
                "The configuration cannot be applied; nothing was changed.",
            ) from None
        return Response([change.as_dict() for change in changes])


class PairedPromptSets(ApiView):
    query_params = frozenset(PeriodQuerySerializer().fields)

    @extend_schema(
        parameters=[SLUG, OpenApiParameter("group", str, OpenApiParameter.PATH),
                    PeriodQuerySerializer],
        responses={200: PairedComparisonSerializer, **READ_PROBLEMS},
        tags=TAGS,
    )  # fmt: skip
    def get(self, request, slug, group):
        """A group of paired prompt sets (one question in several languages) side by side:
        per question and language, the answers and their rates with 95 % intervals."""
        access = self.access(slug, "read")
        query = parameters(self, PeriodQuerySerializer)
        comparison = paired_comparison(
            brand=access.brand, group=group, since=query.get("since"), until=query.get("until")
        )
        if comparison is None:
            raise exceptions.NotFound("No prompt sets of the brand are paired in this group.")
        return self.conditional(PairedComparisonSerializer(comparison).data)
