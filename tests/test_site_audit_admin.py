"""The site audit in the admin: the list and its form, one audit's page (progress, failure,
the report), its report.json and report.html; per-brand isolation; crawled text escaped."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from kb.models import BrandMembership
from kb.services import permissions
from kb.services.entities import entity_create
from tests.test_visibility_admin import staff
from visibility.access_logs import AGENTS
from visibility.models import SiteAudit, SiteAuditPage
from visibility.site_audit.charts import findings_svg, parts_svg
from visibility.site_audit.documents import audit_json
from visibility.site_audit.report import PARTS, formula, grade

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
ORIGIN = "https://tea.example"
# The fractions of a real audit (tests/fixtures/poor_site): 56.33 points → 56, grade D.
FRACTIONS = {
    "ai_access": 0.9333, "coverage": 0.6, "jsonld": 0.3333, "validity": 1.0,
    "eligibility": 0.0, "ids": 0.0, "references": 1.0, "consistency": 0.6667, "llms_txt": 0.0,
    "markdown": 0.0, "content_signal": 0.0, "readable": 0.8, "fetchable": 0.7143,
    "sitemap": 1.0, "lastmod": 1.0,
}  # fmt: skip
BLOCKED = {"PerplexityBot", "GPTBot"}  # robots.txt: Disallow: / for these two


@pytest.fixture
def editor(brand):
    return staff("ed", brand, BrandMembership.Role.EDITOR)


@pytest.fixture
def outsider(other_brand):
    """An admin of another brand: must see nothing of ``brand``'s audits."""
    return staff("stranger", other_brand, BrandMembership.Role.ADMIN)


@pytest.fixture
def view_only(monkeypatch):
    """No role is view-only today: editors are made so (EDIT granted to reviewers and admins
    only), the way a future view-only role would be."""
    monkeypatch.setitem(
        permissions.ALLOWED_ROLES,
        permissions.EDIT,
        {BrandMembership.Role.REVIEWER, BrandMembership.Role.ADMIN},
    )


def a_report(entity_id: int, since: int | None) -> dict:
    parts = [
        {"key": p.key, "group": p.group, "weight": p.weight, "label": p.label,
         "fraction": FRACTIONS[p.key], "points": round(p.weight * FRACTIONS[p.key], 2)}
        for p in PARTS
    ]  # fmt: skip
    score = round(sum(p["points"] for p in parts))
    agents = [
        {"token": a.token, "operator": a.operator, "purpose": a.purpose, "engine": a.engine,
         "allowed": 0 if a.token in BLOCKED else 5, "pages": 5,
         "home_allowed": a.token not in BLOCKED}
        for a in AGENTS
    ]  # fmt: skip
    return {
        "origin": ORIGIN,
        "start_url": f"{ORIGIN}/",
        "score": score,
        "grade": grade(score),
        "formula": formula(),
        "parts": parts,
        "fixes": [
            {"part": "llms_txt", "group": "AI-ready files", "title": "Publish a valid /llms.txt",
             "unlocks": "Agents find the site's key pages in one file", "points": 10.0,
             "where": ["No llms.txt (HTTP 404)"]},
            {"part": "markdown", "group": "AI-ready files",
             "title": "Offer each page as Markdown", "unlocks": "Agents read the page's text",
             "points": 5.0, "where": [f"{ORIGIN}/page-{n}/" for n in range(7)]},
            {"part": "ai_access", "group": "AI crawler access",
             "title": "Allow the AI search and user agents in robots.txt",
             "unlocks": "Answer engines can read, and so cite, those pages", "points": 1.67,
             "where": ["PerplexityBot (Perplexity): 5 of 5 pages blocked", f"{ORIGIN}/: {HOSTILE}"]},
        ],
        "agents": agents,
        "robots": {"status": 200, "error": "", "ours_allowed": True},
        "llms_txt": {"url": f"{ORIGIN}/llms.txt", "present": False, "valid": False,
                     "problems": ["No llms.txt (HTTP 404)"], "title": "", "sections": 0,
                     "links": 0, "full_present": False},
        "content_signal": {"robots": [], "header": "", "content_usage": [], "present": False},
        "sitemap": {"sitemaps": [f"{ORIGIN}/sitemap.xml"], "errors": [], "entries": 8,
                    "with_lastmod": 8, "suspicion": "",
                    "problems": [{"url": f"{ORIGIN}/about/",
                                  "message": "lastmod 2031-01-01 is in the future"}]},
        "graph": {"entities": 3, "with_id": 1, "references": 2,
                  "dangling": [{"iri": f"{ORIGIN}/#shop", "pages": [f"{ORIGIN}/"]}],
                  "conflicts": [{"entity": "Organization “Acme Tea”", "identity": f"id:{ORIGIN}/#org",
                                 "properties": {"telephone": [
                                     {"value": "+1-555-0100", "pages": [f"{ORIGIN}/"]},
                                     {"value": "+1-555-0199", "pages": [f"{ORIGIN}/about/"]}]}}]},
        "crawl": {"pages": 2, "addresses": 3, "skipped": 1, "stopped_by": "", "bytes": 6267},
        "levels": {"error": 1, "recommendation": 1},
        "changes": {
            "since": since, "since_at": "2026-01-05T10:00:00+00:00", "score_before": 50,
            "score_after": score,
            "parts": [{"key": "readable", "before": 0.0, "after": 4.8}],
            "pages_added": [f"{ORIGIN}/app/"], "pages_removed": [], "pages_changed": [],
            "findings_new": [], "findings_resolved": [
                {"url": f"{ORIGIN}/", "code": "no_id", "message": "Organization has no @id"}],
            "entities_added": [], "entities_removed": [], "lastmod_moved_unchanged": [],
        },
        "import": {
            "entities": [
                {"iri": f"{ORIGIN}/#org", "label": "Organization “Acme Tea”",
                 "types": ["Organization"], "pages": [f"{ORIGIN}/", f"{ORIGIN}/about/"],
                 "matched": False, "page": f"{ORIGIN}/", "outcome": "created",
                 "entity_id": entity_id},
                {"iri": f"{ORIGIN}/#tea", "label": "Product", "types": ["Product"],
                 "pages": [f"{ORIGIN}/tea/"], "matched": False, "page": f"{ORIGIN}/tea/",
                 "outcome": "skipped", "entity_id": None},
            ],
            "faqs": {"created": ["shipping"], "updated": [], "unchanged": []},
            "conflicts": [
                {"entity": "Organization “Acme Tea”", "iri": f"{ORIGIN}/#org",
                 "property": "telephone", "kept": "+1-555-0100", "kept_from": f"{ORIGIN}/",
                 "other": HOSTILE, "other_from": f"{ORIGIN}/about/"},
            ],
            "skipped": [{"page": f"{ORIGIN}/tea/", "what": "Product",
                         "problems": ["/offers/price: not a number"]}],
            "counts": {"created": 1},
        },
    }  # fmt: skip


@pytest.fixture
def done_audit(brand, editor):
    earlier = SiteAudit.objects.create(
        brand=brand, url=f"{ORIGIN}/", state=SiteAudit.State.DONE, score=50, report={},
        finished_at=timezone.now(),
    )  # fmt: skip
    org = entity_create(
        brand=brand, types=["Organization"], data={"name": [{"@value": "Acme Tea"}]},
        iri=f"{ORIGIN}/#org",
    )  # fmt: skip
    report = a_report(org.pk, earlier.pk)
    audit = SiteAudit.objects.create(
        brand=brand, url=f"{ORIGIN}/", state=SiteAudit.State.DONE, score=report["score"],
        report=report, requested_by=editor, import_entities=True, progress_done=2,
        progress_total=2, started_at=timezone.now(), finished_at=timezone.now(),
    )  # fmt: skip
    SiteAuditPage.objects.create(
        audit=audit, url=f"{ORIGIN}/", final_url=f"{ORIGIN}/", status=200, title=HOSTILE,
        words=71, structured={"graphs": {"JSON-LD": 2, "Microdata": 1}, "entities": []},
        findings=[
            {"code": "needs_javascript", "level": "error", "message": f"Broken {HOSTILE}"},
            {"code": "profile_recommendation", "level": "recommendation", "message": "Add logo.",
             "entity": "Organization “Acme Tea”", "graph": "JSON-LD #1", "pointer": "/logo"},
        ],
    )  # fmt: skip
    SiteAuditPage.objects.create(
        audit=audit, url=f"{ORIGIN}/$5-$10/", final_url=f"{ORIGIN}/$5-$10/", status=200,
        title="Teas from $5 to $10", words=40, markdown_url=f"{ORIGIN}/$5-$10/index.md",
        structured={"graphs": {}, "entities": []},
        findings=[{"code": "no_structured_data", "level": "recommendation",
                   "message": "No structured data."}],
    )  # fmt: skip
    SiteAuditPage.objects.create(
        audit=audit, url=f"{ORIGIN}/private/", skipped="disallowed by robots.txt",
        findings=[{"code": "not_crawled", "level": "hint", "message": "disallowed by robots.txt"}],
    )  # fmt: skip
    return audit


def detail_url(audit):
    return reverse("admin:visibility_site_audit", args=[audit.pk])


def row_of(html: str, marker: str) -> str:
    """The table row that contains ``marker``."""
    rows = [row for row in re.findall(r"<tr>.*?</tr>", html, re.S) if marker in row]
    assert len(rows) == 1, (marker, len(rows))
    return rows[0]


# --- the audit's page -------------------------------------------------------------------------


def test_the_report_shows_the_score_fixes_agents_and_import(client, editor, done_audit):
    client.force_login(editor)
    response = client.get(detail_url(done_audit))
    assert response.status_code == 200
    html = response.content.decode()
    # Score and grade, large, and the formula with every part's numbers.
    assert '<span class="sa-big">56<small> / 100</small></span>' in html
    assert '<span class="sa-grade sa-grade-D" title="Grade">D</span>' in html
    assert formula() in html
    readable = row_of(html, "(readable)")
    assert '<td class="sa-num">80 %</td>' in readable and ">4.8<" in readable
    assert ">56.33<" in row_of(html, "Total (rounded: the score)")
    # The fixes, ranked, with their points and the first five places and the rest counted.
    assert html.index("+10 points") < html.index("+5 points") < html.index("+1.67 points")
    assert "<strong>Publish a valid /llms.txt</strong>" in html
    assert "<li>/page-4/</li>" in html and "/page-5/" not in html
    assert "… and 2 more" in html
    # Agents: PerplexityBot (search) blocked, GPTBot (training) the brand's choice.
    perplexity = row_of(html, "<code>PerplexityBot</code>")
    assert "0 / 5" in perplexity and "✗ blocked" in perplexity
    assert "✓ allowed" in row_of(html, "<code>OAI-SearchBot</code>")
    gptbot = row_of(html, "<code>GPTBot</code>")
    assert "blocked" in gptbot and "the brand's choice, not scored" in gptbot
    assert "✗" not in gptbot
    # Files, sitemap, graph.
    assert "✗ missing" in html and "No llms.txt (HTTP 404)" in html
    assert "lastmod 2031-01-01 is in the future" in html
    assert f"{ORIGIN}/#shop" in html and "+1-555-0199" in html
    # Pages: graphs per syntax, markdown, findings by level in a <details>.
    home = row_of(html, "Broken ")
    assert re.search(r'<td class="sa-num">2</td>\s*<td class="sa-num">1</td>', home)
    assert "1 error" in home and "1 recommendation" in home and "<details>" in home
    assert "disallowed by robots.txt" in html
    # Changes since the earlier audit, linked.
    earlier = done_audit.report["changes"]["since"]
    assert f"Changes since audit #{earlier}" in html
    assert f'href="{reverse("admin:visibility_site_audit", args=[earlier])}"' in html
    assert "Score 50 → <strong>56</strong> (+6)" in html
    # Imported as drafts: a link to the entity's admin page, the conflict, the skipped one.
    entity_id = done_audit.report["import"]["entities"][0]["entity_id"]
    assert f'href="{reverse("admin:kb_entity_change", args=[entity_id])}"' in html
    assert "created as a draft" in html and "not imported" in html
    assert "/offers/price: not a number" in html
    assert "FAQs: 1 created, 0 updated, 0 unchanged." in html
    # The documents, and no refresh on a finished audit.
    assert reverse("admin:visibility_site_audit_json", args=[done_audit.pk]) in html
    assert reverse("admin:visibility_site_audit_html", args=[done_audit.pk]) in html
    assert 'http-equiv="refresh"' not in html
    # Charts: matplotlib's SVG inline, dollar signs kept literal.
    assert len(re.findall(r'<figure class="sa-chart"><figcaption>.*?</figcaption><svg', html)) == 3
    assert "/$5-$10/" in html


def test_crawled_text_is_escaped_on_the_page_and_in_the_report(client, editor, done_audit):
    client.force_login(editor)
    for url in (detail_url(done_audit),
                reverse("admin:visibility_site_audit_html", args=[done_audit.pk])):  # fmt: skip
        html = client.get(url).content.decode()
        assert HOSTILE not in html, url
        # The page's title, a finding's message, a fix's place, an import conflict's value.
        assert html.count(HOSTILE_ESCAPED) >= 4, url
        assert f"Broken {HOSTILE_ESCAPED}" in html


def test_the_standalone_report_loads_nothing_and_runs_nothing(client, editor, done_audit):
    client.force_login(editor)
    response = client.get(reverse("admin:visibility_site_audit_html", args=[done_audit.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response["Content-Security-Policy"]
    html = response.content.decode()
    assert html.startswith("<!doctype html>") or html.lstrip().startswith("<!doctype html>")
    for needle in ("<script", "<link", " src=", "@import", "<a "):
        assert needle not in html, needle
    assert '<span class="sa-big">56<small> / 100</small></span>' in html
    assert "✗ blocked" in row_of(html, "<code>PerplexityBot</code>")


def test_report_json_is_the_audit_document(client, editor, done_audit):
    client.force_login(editor)
    response = client.get(reverse("admin:visibility_site_audit_json", args=[done_audit.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="acme-tea-site-audit-{done_audit.pk}.json"'
    )
    assert json.loads(response.content) == json.loads(json.dumps(audit_json(done_audit)))


def test_a_running_audit_shows_its_progress_and_refreshes(client, brand, editor):
    audit = SiteAudit.objects.create(
        brand=brand, url=f"{ORIGIN}/", state=SiteAudit.State.RUNNING, progress_done=7,
        progress_total=50, requested_by=editor,
    )  # fmt: skip
    client.force_login(editor)
    html = client.get(detail_url(audit)).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in html
    assert '<progress max="50" value="7">' in html
    assert "7 of about 50 pages read." in html
    assert "sa-big" not in html


def test_a_failed_audit_says_why(client, brand, editor):
    audit = SiteAudit.objects.create(
        brand=brand, url=f"{ORIGIN}/", state=SiteAudit.State.FAILED,
        error=f"ConnectionError: the host {HOSTILE} does not answer",
    )  # fmt: skip
    client.force_login(editor)
    html = client.get(detail_url(audit)).content.decode()
    assert "The audit could not finish" in html
    assert f"ConnectionError: the host {HOSTILE_ESCAPED} does not answer" in html
    assert HOSTILE not in html and 'http-equiv="refresh"' not in html


def test_a_done_audit_without_a_report_still_shows(client, brand, editor):
    audit = SiteAudit.objects.create(brand=brand, url=f"{ORIGIN}/", state=SiteAudit.State.DONE)
    client.force_login(editor)
    for name in ("visibility_site_audit", "visibility_site_audit_html"):
        response = client.get(reverse(f"admin:{name}", args=[audit.pk]))
        assert response.status_code == 200
        assert b"This audit has no report." in response.content


# --- the list and its form --------------------------------------------------------------------


def test_the_list_shows_the_brands_audits_newest_first_and_the_form(
    client, brand, other_brand, editor, done_audit
):
    running = SiteAudit.objects.create(brand=brand, url=f"{ORIGIN}/shop/",
                                       state=SiteAudit.State.RUNNING, progress_done=3,
                                       progress_total=50)  # fmt: skip
    foreign = SiteAudit.objects.create(brand=other_brand, url="https://other.example/")
    client.force_login(editor)
    response = client.get(reverse("admin:visibility_site_audits", args=[brand.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(detail_url(running)) < html.index(detail_url(done_audit))
    assert detail_url(foreign) not in html and "other.example" not in html
    assert "Running (3 of about 50 pages)" in html
    done_row = row_of(html, detail_url(done_audit))
    assert "<strong>56</strong> / 100" in done_row and ">D<" in done_row and ">ed<" in done_row
    # The form, with the brand's address and 50 pages by default.
    assert 'name="url" value="https://tea.example/"' in html
    assert 'name="max_pages" value="50"' in html
    assert 'name="import_entities"' in html


def test_who_may_only_view_sees_no_form_and_cannot_post(client, brand, editor, view_only):
    client.force_login(editor)
    url = reverse("admin:visibility_site_audits", args=[brand.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert b'name="url"' not in response.content
    assert b"Starting an audit needs the right to edit" in response.content
    response = client.post(url, {"url": f"{ORIGIN}/", "max_pages": "5"})
    assert response.status_code == 403
    assert not SiteAudit.objects.exists()


def test_an_address_that_cannot_be_audited_is_said_and_nothing_made(client, brand, editor):
    client.force_login(editor)
    response = client.post(
        reverse("admin:visibility_site_audits", args=[brand.pk]),
        {"url": "ftp://x", "max_pages": "50"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "The address &#x27;ftp://x&#x27; cannot be audited" in html
    assert "is not an http(s) URL" in html
    assert 'value="ftp://x"' in html  # the form keeps what was typed
    response = client.post(
        reverse("admin:visibility_site_audits", args=[brand.pk]),
        {"url": f"{ORIGIN}/", "max_pages": "0"},
    )
    assert b"Ensure this value is greater than or equal to 1." in response.content
    assert not SiteAudit.objects.exists()


def test_an_editor_starts_an_audit(client, brand, editor, django_capture_on_commit_callbacks):
    client.force_login(editor)
    # A reserved name (RFC 6761): it resolves nowhere, so the crawl reaches no one.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("admin:visibility_site_audits", args=[brand.pk]),
            {"url": "https://example.invalid/", "max_pages": "3", "import_entities": "on"},
        )
    audit = SiteAudit.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(audit)
    assert (audit.url, audit.max_pages, audit.import_entities, audit.requested_by) == (
        "https://example.invalid/", 3, True, editor,
    )  # fmt: skip
    assert len(callbacks) == 1  # the task, queued once the audit is committed
    audit.refresh_from_db()
    assert audit.state in (SiteAudit.State.DONE, SiteAudit.State.FAILED)
    assert client.get(detail_url(audit)).status_code == 200


# --- per-brand isolation ----------------------------------------------------------------------


def test_another_brands_member_sees_none_of_it(client, brand, outsider, done_audit):
    client.force_login(outsider)
    for name in ("visibility_site_audit", "visibility_site_audit_json",
                 "visibility_site_audit_html"):  # fmt: skip
        response = client.get(reverse(f"admin:{name}", args=[done_audit.pk]))
        assert response.status_code in (403, 404), name
        assert HOSTILE_ESCAPED.encode() not in response.content
    url = reverse("admin:visibility_site_audits", args=[brand.pk])
    assert client.get(url).status_code == 403
    count = SiteAudit.objects.count()
    assert client.post(url, {"url": f"{ORIGIN}/", "max_pages": "5"}).status_code == 403
    assert SiteAudit.objects.count() == count


def test_the_dashboard_links_the_site_audits(client, brand, editor):
    client.force_login(editor)
    response = client.get(reverse("admin:visibility_dashboard", args=[brand.pk]))
    assert reverse("admin:visibility_site_audits", args=[brand.pk]).encode() in response.content


# --- the charts -------------------------------------------------------------------------------


def test_charts_are_deterministic_and_escape_their_text(done_audit):
    parts = done_audit.report["parts"]
    assert parts_svg(parts) == parts_svg(parts)
    assert parts_svg(parts).startswith("<svg") and parts_svg([]) == ""
    pages = [{"label": f"/{HOSTILE}", "levels": {"error": 2, "hint": 1}},
             {"label": "/$5-$10/", "levels": {"recommendation": 3}}]  # fmt: skip
    svg = findings_svg(pages)
    assert svg == findings_svg(pages)
    assert HOSTILE not in svg and HOSTILE_ESCAPED in svg
    assert "/$5-$10/" in svg
    assert findings_svg([{"label": "/", "levels": {}}]) == ""


def test_audit_again_repeats_the_address_and_choices(client, brand, editor, done_audit):
    client.force_login(editor)
    html = client.get(detail_url(done_audit)).content.decode()
    form = re.search(r'<form method="post" action="([^"]+)" id="again">(.*?)</form>', html, re.S)
    assert form.group(1) == reverse("admin:visibility_site_audits", args=[brand.pk])
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(2)))
    fields.pop("csrfmiddlewaretoken")
    assert fields == {"url": f"{ORIGIN}/", "max_pages": "50", "import_entities": "on"}
    response = client.post(form.group(1), fields)
    again = SiteAudit.objects.latest("pk")
    assert response["Location"] == detail_url(again)
    assert (again.url, again.max_pages, again.import_entities) == (f"{ORIGIN}/", 50, True)
