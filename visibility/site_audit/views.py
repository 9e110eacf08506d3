"""The site audit in the admin: a brand's audits (and the form that starts one), one audit's
report, and its documents (``report.json``, ``report.html``).

``report_context`` turns an audit into what both the admin page and the standalone HTML
report show (``documents.audit_html``). Everything crawled (titles, addresses, messages) is
hostile text: the templates auto-escape it, and only matplotlib's SVG is marked safe.
"""

from __future__ import annotations

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.dateparse import parse_datetime
from django.utils.safestring import mark_safe

from kb.models import Brand
from kb.services.permissions import EDIT, admin_page_require, user_can
from visibility.models import SiteAudit
from visibility.site_audit.charts import (
    LEVEL_NAMES,
    LEVELS,
    agents_svg,
    findings_svg,
    part_name,
    parts_svg,
)
from visibility.site_audit.documents import audit_html, audit_json
from visibility.site_audit.report import grade as grade_of
from visibility.site_audit.services import MAX_PAGES_LIMIT, SiteAuditError, site_audit_create

AUDITS_LISTED = 100
WHERE_SHOWN = 5  # a fix's first pages or agents; the rest as "… and N more"
DEFAULT_MAX_PAGES = 50
PURPOSES = {
    "search": "AI search",
    "user": "Fetches for a user",
    "training": "Model training",
}
SYNTAXES = ("JSON-LD", "Microdata", "RDFa")
OUTCOMES = {
    "created": "created as a draft",
    "updated": "updated (draft)",
    "unchanged": "unchanged",
    "skipped": "not imported",
}
# Finding counts in words: (one, several).
LEVEL_WORDS = {
    "error": ("error", "errors"),
    "ineligible": ("not eligible for rich results", "not eligible for rich results"),
    "recommendation": ("recommendation", "recommendations"),
    "hint": ("hint", "hints"),
}
# The report's own CSP: no scripts, nothing fetched, only its inline style and SVG.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


# --- what an audit shows ----------------------------------------------------------------------


def level_counts(findings: list) -> dict[str, int]:
    counts = dict.fromkeys(LEVELS, 0)
    for finding in findings or []:
        level = finding.get("level") if isinstance(finding, dict) else None
        if level in counts:
            counts[level] += 1
    return counts


def counted(level: str, count: int) -> str:
    one, several = LEVEL_WORDS.get(level, (level, level))
    return f"{count} {one if count == 1 else several}"


def short_url(url: str, origin: str) -> str:
    """An address of the audited site by its path ("/products/"), others in full."""
    if origin and isinstance(url, str) and url.startswith(origin + "/"):
        return url[len(origin) :]
    return url


def shortened(text: str, origin: str) -> str:
    """A fix's "where" line: the site's own addresses at its start by their path."""
    return short_url(text, origin) if isinstance(text, str) else str(text)


def web_link(url: str) -> str:
    """The address when it can be a link (http or https), else "": crawled text is hostile."""
    return url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else ""


def percent(fraction) -> str:
    try:
        return f"{100 * float(fraction):.0f}"
    except (TypeError, ValueError):
        return "—"


def number(value) -> str:
    """Points as written in the report, without a trailing .0 (6.0 → 6, 3.33 → 3.33)."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return "—"


def part_rows(parts: list[dict]) -> list[dict]:
    return [
        {
            "key": part.get("key", ""),
            "name": part_name(part.get("key", "")),
            "group": part.get("group", ""),
            "label": part.get("label", ""),
            "weight": number(part.get("weight")),
            "fraction": percent(part.get("fraction")),
            "points": number(part.get("points")),
            "full": (part.get("points") or 0) >= (part.get("weight") or 0),
        }
        for part in parts
    ]


def fix_rows(fixes: list[dict], origin: str) -> list[dict]:
    rows = []
    for fix in fixes:
        where = [shortened(w, origin) for w in fix.get("where") or []]
        rows.append({
            "part": fix.get("part", ""),
            "name": part_name(fix.get("part", "")),
            "group": fix.get("group", ""),
            "title": fix.get("title", ""),
            "unlocks": fix.get("unlocks", ""),
            "points": number(fix.get("points")),
            "where": where[:WHERE_SHOWN],
            "more": max(0, len(where) - WHERE_SHOWN),
        })  # fmt: skip
    return rows


def agent_rows(agents: list[dict]) -> list[dict]:
    rows = []
    for agent in agents:
        allowed, pages = agent.get("allowed") or 0, agent.get("pages") or 0
        if pages and allowed >= pages:
            status = "allowed"
        elif allowed == 0:
            status = "blocked"
        else:
            status = "partly"
        rows.append(agent | {
            "purpose_name": PURPOSES.get(agent.get("purpose"), agent.get("purpose", "")),
            "counted": agent.get("purpose") in ("search", "user"),
            "status": status,
        })  # fmt: skip
    # The agents the score counts first, in the report's order within each.
    return sorted(rows, key=lambda row: not row["counted"])


def conflict_rows(conflicts: list[dict], origin: str) -> list[dict]:
    return [
        {
            "entity": conflict.get("entity", ""),
            "identity": conflict.get("identity", ""),
            "properties": [
                {
                    "property": prop,
                    "values": [
                        {"value": v.get("value", ""),
                         "pages": [short_url(p, origin) for p in v.get("pages", [])]}
                        for v in values
                    ],
                }
                for prop, values in (conflict.get("properties") or {}).items()
            ],
        }
        for conflict in conflicts
    ]  # fmt: skip


def page_rows(audit: SiteAudit, origin: str) -> list[dict]:
    rows = []
    for page in audit.pages.all():
        graphs = (page.structured or {}).get("graphs") or {}
        counts = level_counts(page.findings)
        rows.append({
            "url": page.url,
            "path": short_url(page.url, origin),
            "link": web_link(page.url),
            "final_url": page.final_url if page.final_url and page.final_url != page.url else "",
            "status": page.status,
            "skipped": page.skipped,
            "read": bool(page.status and not page.skipped),
            "title": page.title,
            "language": page.language,
            "words": page.words,
            "graphs": [graphs.get(syntax, 0) for syntax in SYNTAXES],
            "entities": len((page.structured or {}).get("entities") or []),
            "markdown": bool(page.markdown_url),
            "markdown_url": page.markdown_url,
            "needs_javascript": page.needs_javascript,
            "levels": counts,
            "level_summary": [(level, counted(level, n)) for level, n in counts.items() if n],
            "findings": [
                f | {"level_name": LEVEL_NAMES.get(f.get("level"), f.get("level", ""))}
                for f in page.findings or [] if isinstance(f, dict)
            ],
        })  # fmt: skip
    return rows


def entity_admin_url(entity_id) -> str:
    if not entity_id:
        return ""
    try:
        return reverse("admin:kb_entity_change", args=[entity_id])
    except NoReverseMatch:
        return ""


def import_section(data: dict, origin: str) -> dict:
    faqs = data.get("faqs") or {}
    return {
        "entities": [
            entity | {
                "outcome_name": OUTCOMES.get(entity.get("outcome"), entity.get("outcome", "")),
                "admin_url": entity_admin_url(entity.get("entity_id")),
                "page_paths": [short_url(p, origin) for p in entity.get("pages") or []],
            }
            for entity in data.get("entities") or []
        ],
        # Lists of the FAQs' keys (kb.services.imports.ImportResult).
        "faqs": {name: len(faqs.get(name) or []) for name in ("created", "updated", "unchanged")},
        "conflicts": [
            conflict | {"kept_path": short_url(conflict.get("kept_from", ""), origin),
                        "other_path": short_url(conflict.get("other_from", ""), origin)}
            for conflict in data.get("conflicts") or []
        ],
        "skipped": [
            skipped | {"path": short_url(skipped.get("page", ""), origin)}
            for skipped in data.get("skipped") or []
        ],
    }  # fmt: skip


def changes_section(changes: dict, origin: str) -> dict:
    before, after = changes.get("score_before"), changes.get("score_after")
    delta = after - before if isinstance(before, int) and isinstance(after, int) else None
    return changes | {
        "delta": f"{delta:+d}" if delta is not None else "",
        "since_when": parse_datetime(changes.get("since_at") or ""),
        "parts": [
            part | {"name": part_name(part.get("key", "")), "before": number(part.get("before")),
                    "after": number(part.get("after"))}
            for part in changes.get("parts") or []
        ],
        "pages_added": [short_url(u, origin) for u in changes.get("pages_added") or []],
        "pages_removed": [short_url(u, origin) for u in changes.get("pages_removed") or []],
        "pages_changed": [short_url(u, origin) for u in changes.get("pages_changed") or []],
        "findings_new": [
            f | {"path": short_url(f.get("url", ""), origin)} for f in changes.get("findings_new") or []
        ],
        "findings_resolved": [
            f | {"path": short_url(f.get("url", ""), origin)}
            for f in changes.get("findings_resolved") or []
        ],
        "lastmod_moved_unchanged": [
            m | {"path": short_url(m.get("url", ""), origin)}
            for m in changes.get("lastmod_moved_unchanged") or []
        ],
        "nothing": not any(
            changes.get(key)
            for key in ("parts", "pages_added", "pages_removed", "pages_changed", "findings_new",
                        "findings_resolved", "entities_added", "entities_removed",
                        "lastmod_moved_unchanged")
        ),
    }  # fmt: skip


def report_context(audit: SiteAudit) -> dict:
    """What the admin's audit page and the standalone report show of ``audit``."""
    report = audit.report if isinstance(audit.report, dict) else {}
    origin = report.get("origin") or audit.origin
    done = audit.state == SiteAudit.State.DONE
    score = report.get("score", audit.score)
    pages = page_rows(audit, origin) if done else []
    levels = dict.fromkeys(LEVELS, 0)
    for page in pages:
        for level, count in page["levels"].items():
            levels[level] += count
    total = max(audit.progress_total, audit.progress_done)
    crawl = report.get("crawl") or {}
    sitemap = report.get("sitemap") or {}
    graph = report.get("graph") or {}
    agents = agent_rows(report.get("agents") or [])
    # mark_safe only for matplotlib's SVG: its writer escapes the text it draws.
    charts = {
        "parts_svg": mark_safe(parts_svg(report.get("parts") or [])),  # noqa: S308
        "findings_svg": mark_safe(  # noqa: S308
            findings_svg([{"label": p["path"], "levels": p["levels"]} for p in pages])
        ),
        "agents_svg": mark_safe(agents_svg(report.get("agents") or [])),  # noqa: S308
    }
    return {
        "audit": audit,
        "brand": audit.brand,
        "origin": origin,
        "start_url": report.get("start_url") or audit.url,
        "done": done,
        "running": audit.state in (SiteAudit.State.QUEUED, SiteAudit.State.RUNNING),
        "queued": audit.state == SiteAudit.State.QUEUED,
        "failed": audit.state == SiteAudit.State.FAILED,
        "progress": {"done": audit.progress_done, "total": total},
        "requested_by": audit.requested_by,
        "has_report": done and bool(report.get("parts")),
        "score": score,
        "grade": report.get("grade") or (grade_of(score) if isinstance(score, int) else ""),
        "formula": report.get("formula", ""),
        "parts": part_rows(report.get("parts") or []),
        "points_total": number(sum(float(p.get("points") or 0) for p in report.get("parts") or [])),
        "fixes": fix_rows(report.get("fixes") or [], origin),
        "agents": agents,
        "agents_counted": [a for a in agents if a["counted"]],
        "agents_training": [a for a in agents if not a["counted"]],
        "robots": report.get("robots") or {},
        "llms_txt": report.get("llms_txt") or {},
        "content_signal": report.get("content_signal") or {},
        "sitemap": sitemap | {
            "problems": [
                p | {"path": short_url(p.get("url", ""), origin)}
                for p in sitemap.get("problems") or []
            ],
        },
        "graph": graph | {
            "dangling": [
                d | {"page_paths": [short_url(u, origin) for u in d.get("pages") or []]}
                for d in graph.get("dangling") or []
            ],
            "conflicts": conflict_rows(graph.get("conflicts") or [], origin),
        },
        "crawl": crawl,
        "pages": pages,
        "levels": [(level, counted(level, levels[level])) for level in LEVELS],
        "syntaxes": SYNTAXES,
        "changes": changes_section(report["changes"], origin) if report.get("changes") else None,
        "imported": import_section(report["import"], origin) if report.get("import") else None,
        **charts,
    }  # fmt: skip


# --- the admin's pages --------------------------------------------------------------------------


class SiteAuditForm(forms.Form):
    # Checked by the service (site_audit_create), which says in words what is wrong.
    url = forms.CharField(label="Address to start from", max_length=2000,
                          help_text="Usually the home page, e.g. https://www.example.com/")  # fmt: skip
    max_pages = forms.IntegerField(
        label="Pages to read at most", min_value=1, max_value=MAX_PAGES_LIMIT,
        initial=DEFAULT_MAX_PAGES,
        help_text=f"Between 1 and {MAX_PAGES_LIMIT}. More pages take longer.",
    )  # fmt: skip
    import_entities = forms.BooleanField(
        label="Import what is found as drafts", required=False,
        help_text="Products, the organization, stores, people and FAQs found on the site become "
        "drafts of this brand, for an editor to check before anything is published.",
    )  # fmt: skip


def audit_for_view(request, audit_id: int) -> SiteAudit:
    audit = get_object_or_404(
        SiteAudit.objects.select_related("brand", "requested_by"), pk=audit_id
    )
    admin_page_require(request, audit.brand)
    return audit


def admin_context(request, title: str) -> dict:
    return {
        **admin.site.each_context(request),
        "title": title,
        "app_name": apps.get_app_config("visibility").verbose_name,
    }


def site_audits_view(request, brand_id: int):
    """A brand's site audits, newest first, and (for those who may edit it) a new one."""
    brand = get_object_or_404(Brand, pk=brand_id)
    admin_page_require(request, brand)
    may_start = user_can(request.user, brand, EDIT)
    form = None
    if request.method == "POST":
        if not may_start:
            raise PermissionDenied("Starting a site audit needs the right to edit the brand.")
        form = SiteAuditForm(request.POST)
        if form.is_valid():
            try:
                audit = site_audit_create(
                    brand=brand,
                    url=form.cleaned_data["url"],
                    user=request.user,
                    max_pages=form.cleaned_data["max_pages"],
                    import_entities=form.cleaned_data["import_entities"],
                )
            except SiteAuditError as error:
                form.add_error("url", str(error))
            else:
                messages.success(request, f"The audit of {audit.url} has started.")
                return redirect("admin:visibility_site_audit", audit.pk)
    elif may_start:
        form = SiteAuditForm(
            initial={"url": brand.base_url.rstrip("/") + "/", "max_pages": DEFAULT_MAX_PAGES}
        )
    audits = [
        {
            "audit": audit,
            "grade": (audit.report or {}).get("grade")
            or (grade_of(audit.score) if audit.score is not None else ""),
            "pages": ((audit.report or {}).get("crawl") or {}).get("pages", audit.progress_done),
            "url": reverse("admin:visibility_site_audit", args=[audit.pk]),
        }
        for audit in SiteAudit.objects.filter(brand=brand)
        .select_related("requested_by")
        .order_by("-created_at", "-pk")[:AUDITS_LISTED]
    ]
    context = admin_context(request, f"{brand} — site audits") | {
        "brand": brand,
        "audits": audits,
        "listed": AUDITS_LISTED,
        "form": form,
        "may_start": may_start,
        "dashboard_url": reverse("admin:visibility_dashboard", args=[brand.pk]),
    }
    return TemplateResponse(request, "admin/visibility/site_audit_list.html", context)


def site_audit_view(request, audit_id: int):
    """One audit: its progress while it runs, then its score, fixes and findings."""
    audit = audit_for_view(request, audit_id)
    context = admin_context(request, f"Site audit #{audit.pk} of {audit.url}") | report_context(
        audit
    )
    changes = context["changes"]
    context |= {
        "list_url": reverse("admin:visibility_site_audits", args=[audit.brand_id]),
        "json_url": reverse("admin:visibility_site_audit_json", args=[audit.pk]),
        "html_url": reverse("admin:visibility_site_audit_html", args=[audit.pk]),
        "since_url": previous_audit_url(audit, changes.get("since")) if changes else "",
        "admin_links": True,
        # "Audit again" posts the same address and choices to the list's form.
        "may_start": user_can(request.user, audit.brand, EDIT),
    }
    return TemplateResponse(request, "admin/visibility/site_audit_detail.html", context)


def previous_audit_url(audit: SiteAudit, since) -> str:
    if not isinstance(since, int):
        return ""
    if not SiteAudit.objects.filter(pk=since, brand_id=audit.brand_id).exists():
        return ""
    return reverse("admin:visibility_site_audit", args=[since])


def document_name(audit: SiteAudit, extension: str) -> str:
    return f"{audit.brand.slug}-site-audit-{audit.pk}.{extension}"


def site_audit_json_view(request, audit_id: int):
    """The whole audit as JSON (``documents.audit_json``), to download."""
    audit = audit_for_view(request, audit_id)
    response = JsonResponse(
        audit_json(audit), json_dumps_params={"ensure_ascii": False, "indent": 2}
    )
    response["Content-Disposition"] = f'attachment; filename="{document_name(audit, "json")}"'
    return response


def site_audit_html_view(request, audit_id: int):
    """The standalone report: one HTML page, no scripts, nothing it loads from elsewhere."""
    audit = audit_for_view(request, audit_id)
    response = HttpResponse(audit_html(audit), content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{document_name(audit, "html")}"'
    response["Content-Security-Policy"] = REPORT_CSP
    return response
