"""Site audits: start one (queued on commit), run it (the task's body), compare with the last.

One service layer: the ``audit_site`` command, the admin's form and the task all call
``site_audit_create`` and ``site_audit_run``.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.egress import egress_url_problem
from kb.models import Brand
from kb.services.permissions import require
from kb.validation import web_url_problem
from visibility.models import SiteAudit, SiteAuditPage
from visibility.site_audit.crawler import (
    Crawl,
    CrawlLimits,
    Fetched,
    Fetcher,
    extra_fetch,
    normalized,
    site_crawl,
)
from visibility.site_audit.importing import site_import
from visibility.site_audit.pages import PageReading, page_read
from visibility.site_audit.report import SiteFacts, site_report

MAX_PAGES_LIMIT = 1000
MARKDOWN_CHECKS = 5  # Markdown alternates fetched to see that they answer
# Beyond its time limit, a running audit whose worker died may be started over after this.
STALE_AFTER_SECONDS = 600

Progress = Callable[[int, int], None]


class SiteAuditError(Exception):
    """The audit cannot start: the address or the numbers given."""


def site_audit_create(
    *,
    brand: Brand,
    url: str,
    user=None,
    max_pages: int = 50,
    import_entities: bool = False,
    queue: bool = True,
) -> SiteAudit:
    """Record an audit of the site at ``url`` and (with ``queue``) run it as a task once the
    record is committed. Starting one (it makes requests on the brand's behalf, and may
    import) needs the right to edit the brand's content."""
    require(user, brand, "edit")
    url = url.strip()
    problem = web_url_problem(url) or egress_url_problem(url, unresolved_ok=True)
    if problem:
        raise SiteAuditError(f"The address {url!r} cannot be audited: {problem}")
    if not 1 <= max_pages <= MAX_PAGES_LIMIT:
        raise SiteAuditError(
            f"The number of pages to read must be between 1 and {MAX_PAGES_LIMIT}, not {max_pages}."
        )
    with transaction.atomic():
        audit = SiteAudit.objects.create(
            brand=brand,
            url=normalized(url),
            max_pages=max_pages,
            import_entities=import_entities,
            requested_by=user,
            progress_total=max_pages,
        )
        if queue:
            from visibility.tasks import site_audit_run_task

            transaction.on_commit(
                functools.partial(site_audit_run_task.delay, audit.pk), robust=True
            )
    return audit


def site_audit_run(
    *,
    audit_id: int,
    progress: Progress | None = None,
    limits: CrawlLimits | None = None,
) -> SiteAudit:
    """Crawl, read, score, import (when asked) and store. Safe to run again: an audit that is
    done is left alone; one that stopped half-way is started over (its pages replaced)."""
    limits = limits or CrawlLimits(max_pages=SiteAudit.objects.get(pk=audit_id).max_pages)
    now = timezone.now()
    # Claimed in one UPDATE: a task delivered twice runs once; one whose worker died (it has
    # been running longer than a crawl may take) is started over.
    stale = now - timedelta(seconds=limits.max_seconds + STALE_AFTER_SECONDS)
    claimed = (
        SiteAudit.objects.filter(pk=audit_id)
        .filter(
            Q(state__in=[SiteAudit.State.QUEUED, SiteAudit.State.FAILED])
            | Q(state=SiteAudit.State.RUNNING, started_at__lt=stale)
        )
        .update(state=SiteAudit.State.RUNNING, started_at=now, error="", progress_done=0)
    )
    audit = SiteAudit.objects.select_related("brand", "requested_by").get(pk=audit_id)
    if not claimed:
        return audit
    readings: dict[str, PageReading] = {}
    checks: dict[str, Fetched] = {}
    extras: dict[str, Fetched | None] = {"llms": None, "llms_full": None}

    def links_of(fetched: Fetched) -> list[str]:
        reading = page_read(fetched, brand=audit.brand)
        readings[normalized(fetched.url)] = reading
        return reading.links

    def then(crawl: Crawl, fetcher: Fetcher) -> None:
        extras["llms"] = extra_fetch(crawl, fetcher, f"{crawl.origin}/llms.txt")
        extras["llms_full"] = extra_fetch(crawl, fetcher, f"{crawl.origin}/llms-full.txt",
                                          max_bytes=65_536)  # fmt: skip
        wanted = list(dict.fromkeys(r.markdown_url for r in readings.values() if r.markdown_url))
        for url in wanted[:MARKDOWN_CHECKS]:
            checks[url] = extra_fetch(crawl, fetcher, url, max_bytes=200_000)

    def on_page(done: int, total: int) -> None:
        SiteAudit.objects.filter(pk=audit.pk).update(progress_done=done, progress_total=total)
        if progress:
            progress(done, total)

    try:
        crawl = site_crawl(audit.url, limits=limits, links_of=links_of, progress=on_page, then=then)
        # Pages at the depth limit were fetched but not read for links: read them now.
        for visit in crawl.visits:
            key = normalized(visit.url)
            if visit.fetched and visit.fetched.ok and visit.fetched.is_html and key not in readings:
                readings[key] = page_read(visit.fetched, brand=audit.brand)
        previous = previous_audit(audit)
        facts = SiteFacts(
            crawl=crawl, readings=readings, markdown_checks=checks, llms=extras["llms"],
            llms_full=extras["llms_full"],
            previous={
                url: (content_hash, lastmod)
                for url, content_hash, lastmod in (previous.pages if previous else SiteAuditPage.objects.none())
                .values_list("url", "content_hash", "sitemap_lastmod")
            },
        )  # fmt: skip
        report = site_report(facts)
        with transaction.atomic():
            audit.pages.all().delete()
            rows = page_rows(audit, crawl, readings)
            SiteAuditPage.objects.bulk_create(rows)
            # Counted from the rows: they add what the crawl met (errors, loops, sizes).
            report["levels"] = dict(Counter(f["level"] for row in rows for f in row.findings))
            report["changes"] = changes_since(previous, audit, report) if previous else None
            if audit.import_entities:
                report["import"] = site_import(
                    brand=audit.brand,
                    readings=[readings[k] for k in readings],
                    user=audit.requested_by,
                )
            audit.report = report
            audit.score = report["score"]
            audit.state = SiteAudit.State.DONE
            audit.finished_at = timezone.now()
            audit.progress_done = len(readings)
            audit.progress_total = len(readings)
            audit.save()
    except Exception as error:
        SiteAudit.objects.filter(pk=audit.pk).update(
            state=SiteAudit.State.FAILED, error=f"{type(error).__name__}: {error}",
            finished_at=timezone.now(),
        )  # fmt: skip
        raise
    return audit


def page_rows(
    audit: SiteAudit, crawl: Crawl, readings: dict[str, PageReading]
) -> list[SiteAuditPage]:
    rows = []
    for visit in crawl.visits:
        fetched = visit.fetched
        reading = readings.get(normalized(visit.url))
        findings = list(reading.findings) if reading else []
        skipped = visit.skipped
        if fetched and fetched.error:
            skipped = fetched.error
            findings.append({"code": "fetch_error", "level": "error", "message": fetched.error})
        elif fetched and not fetched.ok:
            skipped = f"HTTP {fetched.status}"
            findings.append({"code": "http_error", "level": "error",
                             "message": f"The address answers HTTP {fetched.status}."})  # fmt: skip
        elif fetched and fetched.truncated:
            findings.append({"code": "too_large", "level": "error", "message": (
                f"The page is larger than {len(fetched.body):,} bytes: crawlers read only its "
                "start. Split it or trim its markup.")})  # fmt: skip
        elif visit.skipped and not fetched:
            findings.append({"code": "not_crawled", "level": "hint", "message": visit.skipped})
        rows.append(SiteAuditPage(
            audit=audit, url=visit.url[:2000],
            final_url=(fetched.final_url if fetched else "")[:2000],
            depth=visit.depth, in_sitemap=visit.in_sitemap,
            sitemap_lastmod=visit.sitemap_lastmod[:40],
            status=fetched.status if fetched else None,
            content_type=(fetched.content_type if fetched else "")[:200],
            bytes=len(fetched.body) if fetched else 0, skipped=skipped[:300],
            title=reading.title if reading else "", language=(reading.language if reading else "")[:35],
            headings=reading.headings[:50] if reading else [],
            words=reading.words if reading else 0,
            needs_javascript=bool(reading and reading.needs_javascript),
            markdown_url=(reading.markdown_url if reading else "")[:2000],
            content_hash=reading.content_hash if reading else "",
            last_modified=(fetched.headers.get("last-modified", "") if fetched else "")[:64],
            structured=structured_summary(reading) if reading else {},
            findings=findings,
        ))  # fmt: skip
    return rows


def structured_summary(reading: PageReading) -> dict:
    graphs: dict[str, int] = {}
    for graph in reading.graphs:
        graphs[graph.syntax] = graphs.get(graph.syntax, 0) + 1
    return {
        "graphs": graphs,
        "entities": [
            {"identity": n.identity, "types": n.types, "name": n.name, "syntax": n.syntax,
             "graph": n.graph + 1, "id": n.iri}
            for n in reading.nodes if n.top_level
        ],
    }  # fmt: skip


def previous_audit(audit: SiteAudit) -> SiteAudit | None:
    return (
        SiteAudit.objects.filter(brand=audit.brand, state=SiteAudit.State.DONE, pk__lt=audit.pk)
        .filter(url__startswith=audit.origin)
        .order_by("-pk")
        .first()
    )


def finding_keys(pages) -> set[tuple[str, str, str]]:
    return {(page.url, f["code"], f["message"]) for page in pages for f in page.findings}


def changes_since(previous: SiteAudit, audit: SiteAudit, report: dict) -> dict:
    """What changed since ``previous``: the score and its parts, pages, findings, entities,
    and sitemap dates that moved while the page stayed the same."""
    before_pages = {p.url: p for p in previous.pages.all()}
    after_pages = {p.url: p for p in audit.pages.all()}
    before_findings, after_findings = (
        finding_keys(before_pages.values()),
        finding_keys(after_pages.values()),
    )
    before_parts = {p["key"]: p["points"] for p in previous.report.get("parts", [])}
    entities_before = {
        e["identity"] for p in before_pages.values() for e in p.structured.get("entities", [])
    }
    entities_after = {
        e["identity"] for p in after_pages.values() for e in p.structured.get("entities", [])
    }
    moved = []
    changed = []
    for url, page in after_pages.items():
        old = before_pages.get(url)
        if old is None or not page.content_hash or not old.content_hash:
            continue
        if old.content_hash != page.content_hash:
            changed.append(url)
        elif (
            old.sitemap_lastmod
            and page.sitemap_lastmod
            and old.sitemap_lastmod != page.sitemap_lastmod
        ):
            moved.append({"url": url, "before": old.sitemap_lastmod, "after": page.sitemap_lastmod})
    return {
        "since": previous.pk,
        "since_at": previous.finished_at.astimezone(UTC).isoformat() if previous.finished_at else "",
        "score_before": previous.score,
        "score_after": report["score"],
        "parts": [
            {"key": p["key"], "before": before_parts.get(p["key"]), "after": p["points"]}
            for p in report["parts"] if before_parts.get(p["key"]) != p["points"]
        ],
        "pages_added": sorted(set(after_pages) - set(before_pages)),
        "pages_removed": sorted(set(before_pages) - set(after_pages)),
        "pages_changed": sorted(changed),
        "findings_new": [
            {"url": u, "code": c, "message": m} for u, c, m in sorted(after_findings - before_findings)
        ],
        "findings_resolved": [
            {"url": u, "code": c, "message": m} for u, c, m in sorted(before_findings - after_findings)
        ],
        "entities_added": sorted(entities_after - entities_before - {""}),
        "entities_removed": sorted(entities_before - entities_after - {""}),
        "lastmod_moved_unchanged": moved,
    }  # fmt: skip
