"""A site audit as a document: JSON (the whole report and every page) and HTML (for people)."""

from __future__ import annotations

from datetime import UTC

from django.template.loader import render_to_string

from visibility.models import SiteAudit

DOCUMENT_VERSION = 1


def when(value) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def audit_json(audit: SiteAudit) -> dict:
    return {
        "version": DOCUMENT_VERSION,
        "audit": {
            "id": audit.pk,
            "brand": audit.brand.slug,
            "url": audit.url,
            "state": audit.state,
            "max_pages": audit.max_pages,
            "import": audit.import_entities,
            "score": audit.score,
            "created_at": when(audit.created_at),
            "finished_at": when(audit.finished_at),
            "error": audit.error,
        },
        "report": audit.report,
        "pages": [
            {
                "url": page.url,
                "final_url": page.final_url,
                "status": page.status,
                "depth": page.depth,
                "in_sitemap": page.in_sitemap,
                "sitemap_lastmod": page.sitemap_lastmod,
                "content_type": page.content_type,
                "bytes": page.bytes,
                "skipped": page.skipped,
                "title": page.title,
                "language": page.language,
                "headings": page.headings,
                "words": page.words,
                "needs_javascript": page.needs_javascript,
                "markdown_url": page.markdown_url,
                "structured": page.structured,
                "findings": page.findings,
            }
            for page in audit.pages.all()
        ],
    }


def audit_html(audit: SiteAudit) -> str:
    from visibility.site_audit.views import report_context

    return render_to_string("visibility/site_audit_report.html", report_context(audit))
