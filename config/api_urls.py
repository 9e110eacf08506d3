"""/api/v1/: the REST API; /api/schema/ and /api/docs/: its OpenAPI description."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from kb.api import views as kb
from publishing import api as publishing
from visibility import api as visibility

brand = "brands/<slug:slug>"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's setup script as a file, not inline: the docs keep the
    # app's strict Content-Security-Policy (script-src 'self').
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/brands/", kb.BrandList.as_view(), name="api-brands"),
    path(f"v1/{brand}/", kb.BrandDetail.as_view(), name="api-brand"),
    path(f"v1/{brand}/entities/", kb.EntityList.as_view(), name="api-entities"),
    path(f"v1/{brand}/entities/<uuid:entity_id>/", kb.EntityDetail.as_view(), name="api-entity"),
    path(
        f"v1/{brand}/entities/<uuid:entity_id>.jsonld",
        kb.EntityJsonLd.as_view(),
        name="api-entity-jsonld",
    ),
    path(
        f"v1/{brand}/entities/<uuid:entity_id>/publish/",
        kb.EntityPublish.as_view(),
        name="api-entity-publish",
    ),
    path(f"v1/{brand}/facts/", kb.FactList.as_view(), name="api-facts"),
    path(f"v1/{brand}/facts/<int:pk>/", kb.FactDetail.as_view(), name="api-fact"),
    path(f"v1/{brand}/faqs/", kb.FAQList.as_view(), name="api-faqs"),
    path(f"v1/{brand}/faqs/<int:pk>/", kb.FAQDetail.as_view(), name="api-faq"),
    path(f"v1/{brand}/import/", kb.BrandImport.as_view(), name="api-import"),
    path(f"v1/{brand}/imports/<int:pk>/", kb.ImportJobDetail.as_view(), name="api-import-job"),
    path(
        f"v1/{brand}/export.jsonld",
        kb.BrandExport.as_view(),
        {"shape": "jsonld"},
        name="api-export-jsonld",
    ),
    path(
        f"v1/{brand}/export.jsonl",
        kb.BrandExport.as_view(),
        {"shape": "jsonl"},
        name="api-export-jsonl",
    ),
    path(f"v1/{brand}/releases/", publishing.ReleaseList.as_view(), name="api-releases"),
    path(
        f"v1/{brand}/releases/<int:number>/", publishing.ReleaseDetail.as_view(), name="api-release"
    ),
    path(
        f"v1/{brand}/releases/<int:number>/artifacts/",
        publishing.ReleaseArtifacts.as_view(),
        name="api-release-artifacts",
    ),
    path(
        f"v1/{brand}/releases/<int:number>/artifacts/<path:path>",
        publishing.ReleaseArtifactContent.as_view(),
        name="api-release-artifact",
    ),
    path(
        f"v1/{brand}/releases/<int:number>/rollback/",
        publishing.ReleaseRollback.as_view(),
        name="api-release-rollback",
    ),
    path(f"v1/{brand}/publish/", publishing.BrandPublish.as_view(), name="api-publish"),
    path(
        f"v1/{brand}/publish-requests/<int:pk>/",
        publishing.PublishRequestDetail.as_view(),
        name="api-publish-request",
    ),
    path(f"v1/{brand}/webhooks/", publishing.WebhookList.as_view(), name="api-webhooks"),
    path(f"v1/{brand}/webhooks/<int:pk>/", publishing.WebhookDetail.as_view(), name="api-webhook"),
    path(f"v1/{brand}/visibility/runs/", visibility.RunList.as_view(), name="api-visibility-runs"),
    path(
        f"v1/{brand}/visibility/runs/<int:pk>/",
        visibility.RunDetail.as_view(),
        name="api-visibility-run",
    ),
    path(
        f"v1/{brand}/visibility/runs/<int:pk>/answers/",
        visibility.RunAnswers.as_view(),
        name="api-visibility-run-answers",
    ),
    path(
        f"v1/{brand}/visibility/metrics/",
        visibility.MetricsReport.as_view(),
        name="api-visibility-metrics",
    ),
    path(
        f"v1/{brand}/visibility/metrics/series/",
        visibility.MetricsSeries.as_view(),
        name="api-visibility-series",
    ),
    path(
        f"v1/{brand}/visibility/metrics/series.csv",
        visibility.MetricsSeriesCsv.as_view(),
        name="api-visibility-series-csv",
    ),
    path(
        f"v1/{brand}/visibility/releases/<int:number>/comparison/",
        visibility.ReleaseComparison.as_view(),
        name="api-visibility-release-comparison",
    ),
    path(
        f"v1/{brand}/visibility/paired/<str:group>/",
        visibility.PairedPromptSets.as_view(),
        name="api-visibility-paired",
    ),
    path(
        f"v1/{brand}/visibility/config/",
        visibility.ConfigDocument.as_view(),
        name="api-visibility-config",
    ),
    path(
        f"v1/{brand}/visibility/competitors/",
        visibility.CompetitorLeaderboard.as_view(),
        name="api-visibility-competitors",
    ),
    path(
        f"v1/{brand}/visibility/citations/",
        visibility.CitationSources.as_view(),
        name="api-visibility-citations",
    ),
    path(
        f"v1/{brand}/visibility/alerts/",
        visibility.AlertList.as_view(),
        name="api-visibility-alerts",
    ),
    path(
        f"v1/{brand}/visibility/crawlers/",
        visibility.CrawlerList.as_view(),
        name="api-visibility-crawlers",
    ),
    re_path(r"", kb.NoEndpoint.as_view(), name="api-no-endpoint"),
]
