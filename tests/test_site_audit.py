"""The GEO site audit, crawling real sites on loopback: a deliberately poor one (every problem
must show in the report, its products import as drafts an editor can complete) and the demo
brand's own published site served by the development server (which must score at the top)."""

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from config.egress import egress_allowing
from kb.models import Entity, Revision, Status
from kb.quality import ERROR, INELIGIBLE, entity_findings
from kb.services.brands import membership_grant
from kb.services.entities import entity_update
from kb.services.workflow import object_publish
from tests.conftest import FIXTURES
from tests.site_server import huge_page, redirect, site_served
from visibility.models import SiteAudit
from visibility.site_audit.crawler import USER_AGENT, CrawlLimits, Fetched, site_crawl
from visibility.site_audit.pages import page_read
from visibility.site_audit.services import SiteAuditError, site_audit_create

pytestmark = pytest.mark.django_db

POOR_SITE = FIXTURES / "poor_site"
HUGE = 3_000_000


def poor_routes() -> dict:
    return {
        "/loop/": redirect("/loop/b/"),
        "/loop/b/": redirect("/loop/"),
        "/huge/": huge_page(HUGE),
    }


@pytest.fixture
def poor_site():
    with (
        site_served(POOR_SITE, poor_routes()) as site,
        egress_allowing(site.origin.removeprefix("http://")),
    ):
        yield site


def audit(slug: str, url: str, *args: str) -> tuple[dict, str]:
    out = StringIO()
    call_command("audit_site", slug, url, *args, stdout=out, stderr=StringIO())
    audit = SiteAudit.objects.latest("pk")
    from visibility.site_audit.documents import audit_json

    return audit_json(audit), out.getvalue()


def page(document: dict, url: str) -> dict:
    return next(p for p in document["pages"] if p["url"] == url)


def codes(page_row: dict) -> list[str]:
    return [finding["code"] for finding in page_row["findings"]]


def part(report: dict, key: str) -> dict:
    return next(p for p in report["parts"] if p["key"] == key)


def test_poor_site_every_problem_is_reported(brand, poor_site, tmp_path):
    origin = poor_site.origin
    document, printed = audit(brand.slug, f"{origin}/", "--json", str(tmp_path / "audit.json"))
    report = document["report"]
    assert json.loads((tmp_path / "audit.json").read_text()) == document

    # Polite: every request named us, robots.txt and the sitemap came first, and the path
    # robots.txt disallows for us was never asked for.
    assert {agent for _, agent in poor_site.requests} == {USER_AGENT}
    assert poor_site.paths()[:2] == ["/robots.txt", "/sitemap.xml"]
    assert not [p for p in poor_site.paths() if p.startswith("/private/")]
    private = page(document, f"{origin}/private/secret/")
    assert private["status"] is None
    assert private["skipped"] == "disallowed by robots.txt for Sourcebook-Audit"

    # A blocked AI crawler: PerplexityBot (search, counted) and GPTBot (training, the brand's
    # choice, not counted) may read no page; OpenAI's search agent may read all nine.
    agents = {a["token"]: a for a in report["agents"]}
    assert (agents["PerplexityBot"]["allowed"], agents["PerplexityBot"]["pages"]) == (0, 9)
    assert (agents["GPTBot"]["allowed"], agents["OAI-SearchBot"]["allowed"]) == (0, 9)
    assert part(report, "ai_access")["fraction"] == round(14 / 15, 4)

    # No llms.txt, no Content-Signal, no Markdown alternates.
    assert report["llms_txt"]["present"] is False
    assert report["llms_txt"]["problems"] == ["No llms.txt (HTTP 404)"]
    assert report["content_signal"]["present"] is False
    assert part(report, "markdown")["fraction"] == 0

    # Microdata only on the product pages, RDFa only on the team page.
    green = page(document, f"{origin}/products/green-tea/")
    assert green["structured"]["graphs"] == {"Microdata": 1}
    assert "no_jsonld" in codes(green)
    team = page(document, f"{origin}/team/")
    assert team["structured"]["entities"] == [{
        "identity": "name:Person:lin mei", "types": ["Person"], "name": "Lin Mei",
        "syntax": "RDFa", "graph": 1, "id": "",
    }]  # fmt: skip
    assert part(report, "jsonld")["fraction"] == 0.5

    # The store refers to an organization @id that no page describes.
    assert report["graph"]["dangling"] == [
        {"iri": f"{origin}/#organization", "pages": [f"{origin}/stores/fuzhou/"]}
    ]
    assert part(report, "references")["fraction"] == 0

    # Two Organization graphs on the home page that disagree.
    home = page(document, f"{origin}/")
    assert home["structured"]["graphs"] == {"JSON-LD": 2}
    conflict = next(f for f in home["findings"] if f["code"] == "conflict")
    assert conflict["conflicts"] == {
        "foundingDate@en": [["2001"], ["2003"]],
        "name@en": [["Poor Tea Co."], ["Poor Tea Company"]],
        "telephone@en": [["+1-555-0100"], ["+1-555-0199"]],
    }
    assert codes(home).count("no_id") == 2

    # The page that needs JavaScript to show its text.
    app = page(document, f"{origin}/app/")
    assert (app["needs_javascript"], app["words"]) == (True, 0)
    assert "needs_javascript" in codes(app)

    # The redirect loop, named hop by hop.
    loop = page(document, f"{origin}/loop/")
    assert loop["skipped"] == f"redirect loop: {origin}/loop/ → {origin}/loop/b/ → {origin}/loop/"
    assert "fetch_error" in codes(loop)

    # The huge page: only the first 2,000,000 bytes were read.
    huge = page(document, f"{origin}/huge/")
    assert (huge["status"], huge["bytes"]) == (200, 2_000_000)
    assert "too_large" in codes(huge)

    # Eligibility: the green tea's offer has no currency, the white tea no image.
    messages = [f["message"] for f in green["findings"] if f["level"] == INELIGIBLE]
    assert messages == [
        "Not eligible for merchant listings: the offer needs a currency (ISO 4217, e.g. USD)."
    ]
    assert part(report, "eligibility")["fraction"] == round(1 / 3, 4)  # the store is eligible

    # The sitemap gives one instant for every page: a suspicion, not yet a proof.
    assert report["sitemap"]["entries"] == 11
    assert report["sitemap"]["suspicion"].startswith(
        "lastmod is the same instant (2026-12-01T10:00:00+00:00) for 11 of 11 pages"
    )

    # The score is the sum of its parts, and the fixes are ranked by what they add.
    assert report["score"] == round(sum(p["points"] for p in report["parts"]))
    assert (report["score"], report["grade"]) == (58, "D")
    ranked = [(fix["part"], fix["points"]) for fix in report["fixes"]]
    assert ranked[:3] == [("llms_txt", 10.0), ("ids", 5.6), ("markdown", 5.0)]
    assert [points for _, points in ranked] == sorted((p for _, p in ranked), reverse=True)
    assert "Score 58/100 (grade D)" in printed
    assert "1. +10.0 Publish a valid /llms.txt" in printed


def test_poor_site_products_import_as_drafts_an_editor_completes(brand, poor_site):
    origin = poor_site.origin
    document, printed = audit(brand.slug, f"{origin}/", "--import")
    imported = document["report"]["import"]
    outcomes = {e["label"]: (e["outcome"], e["pages"]) for e in imported["entities"]}
    assert outcomes == {
        "Product “Spring Green Tea”": ("created", [f"{origin}/products/green-tea/"]),
        "Product “Silver Needle White Tea”": ("created", [f"{origin}/products/white-tea/"]),
        "Organization “Poor Tea Co.”": ("created", [f"{origin}/"]),
        "Store “Poor Tea Co. Fuzhou”": ("created", [f"{origin}/stores/fuzhou/"]),
        "Person “Lin Mei”": ("created", [f"{origin}/team/"]),
    }
    assert imported["faqs"]["created"] == ["how-should-i-store-green-tea", "do-you-ship-to-europe"]
    store = Entity.objects.get(brand=brand, iri=f"{origin}/stores/fuzhou/#store")
    assert store.data["telephone"] == [{"@value": "+86-591-5550-100"}]
    # The two organizations are one (the same url): the first description is kept, and what
    # the second says otherwise is left for the editor to decide.
    assert [(c["property"], c["kept"], c["other"]) for c in imported["conflicts"]] == [
        ("foundingDate", "2001", "2003"),
        ("name", "Poor Tea Co.", "Poor Tea Company"),
        ("telephone", "+1-555-0100", "+1-555-0199"),
    ]
    assert "3 conflict(s) to decide" in printed

    green = Entity.objects.get(brand=brand, label="Spring Green Tea")
    white = Entity.objects.get(brand=brand, label="Silver Needle White Tea")
    for entity, url in ((green, "products/green-tea/"), (white, "products/white-tea/")):
        assert entity.status == Status.DRAFT and entity.live_revision_id is None
        revision = Revision.objects.get(pk=entity.latest_revision_id)
        assert revision.message == f"Imported from {origin}/{url}"
    assert green.data["sku"] == [{"@value": "PT-GREEN-100"}]
    assert green.data["gtin13"] == [{"@value": "4006381333931"}]

    def blocking(entity):
        return sorted(
            (f.level, f.pointer)
            for f in entity_findings(brand=brand, types=entity.types, data=entity.data)
            if f.level in (ERROR, INELIGIBLE)
        )

    assert blocking(green) == [(INELIGIBLE, "/offers/priceCurrency")]
    assert blocking(white) == [(INELIGIBLE, "/image")]

    # The editor adds what is missing; the drafts pass, and a publisher puts them live.
    editor = get_user_model().objects.create_user("editor", password="x")
    membership_grant(brand=brand, user=editor, role="editor")
    offer = dict(green.data["offers"][0])
    offer["priceCurrency"] = [{"@value": "USD"}]
    green = entity_update(
        entity=green, data={**green.data, "offers": [offer]}, expected_version=green.version,
        user=editor,
    )  # fmt: skip
    white = entity_update(
        entity=white,
        data={**white.data, "image": [{"@id": "https://cdn.tea.example/white-tea.jpg"}]},
        expected_version=white.version,
        user=editor,
    )
    assert blocking(green) == blocking(white) == []
    publisher = get_user_model().objects.create_user("publisher", password="x")
    membership_grant(brand=brand, user=publisher, role="reviewer")
    for entity in (green, white):
        object_publish(obj=entity, user=publisher)
        entity.refresh_from_db()
        assert entity.status == Status.PUBLISHED

    # Importing again changes nothing the editor did (the crawled values are the same as
    # before, so the entities are matched by SKU and GTIN and left alone where unchanged).
    count = Entity.objects.filter(brand=brand).count()
    document, _ = audit(brand.slug, f"{origin}/", "--import")
    assert Entity.objects.filter(brand=brand).count() == count
    again = {e["label"]: e["matched"] for e in document["report"]["import"]["entities"]}
    assert again["Product “Spring Green Tea”"] is True


def test_a_second_audit_shows_what_changed(brand, tmp_path):
    site_dir = tmp_path / "site"
    shutil.copytree(POOR_SITE, site_dir)
    with (
        site_served(site_dir, poor_routes()) as site,
        egress_allowing(site.origin.removeprefix("http://")),
    ):
        first, _ = audit(brand.slug, f"{site.origin}/")
        assert first["report"]["changes"] is None
        # The owner adds llms.txt and rewrites the about page; the sitemap moves the green
        # tea's date although its page did not change.
        (site_dir / "llms.txt").write_text(
            f"# Poor Tea Co.\n\n> Green and white tea from Fujian.\n\nFamily-run since 2001.\n\n"
            f"## Teas\n\n- [Green tea]({site.origin}/products/green-tea/): spring green tea\n",
            encoding="utf-8",
        )
        about = site_dir / "about" / "index.html"
        about.write_text(about.read_text().replace("family business", "family company"))
        sitemap = site_dir / "sitemap.xml"
        sitemap.write_text(
            sitemap.read_text().replace(
                "green-tea/</loc><lastmod>2026-12-01T10:00:00",
                "green-tea/</loc><lastmod>2026-12-03T08:00:00",
            )
        )
        second, printed = audit(brand.slug, f"{site.origin}/")
    changes = second["report"]["changes"]
    assert changes["since"] == first["audit"]["id"]
    assert (changes["score_before"], changes["score_after"]) == (58, 68)
    assert changes["pages_changed"] == [f"{site.origin}/about/"]
    assert changes["lastmod_moved_unchanged"] == [{
        "url": f"{site.origin}/products/green-tea/",
        "before": "2026-12-01T10:00:00+00:00", "after": "2026-12-03T08:00:00+00:00",
    }]  # fmt: skip
    assert {"key": "llms_txt", "before": 0.0, "after": 10.0} in changes["parts"]
    resolved = [(f["url"], f["code"]) for f in changes["findings_resolved"]]
    assert resolved == []  # llms.txt is a site finding, not a page's
    assert second["report"]["llms_txt"]["valid"] is True
    assert second["report"]["sitemap"]["problems"] == [{
        "url": f"{site.origin}/products/green-tea/",
        "message": "lastmod moved from 2026-12-01T10:00:00+00:00 to 2026-12-03T08:00:00+00:00 "
        "while the page stayed the same",
    }]  # fmt: skip
    assert f"Since audit {first['audit']['id']}: score 58 → 68" in printed


def test_the_crawl_is_bounded(brand, poor_site, tmp_path):
    html_file = tmp_path / "report.html"
    document, printed = audit(
        brand.slug, f"{poor_site.origin}/", "--max-pages", "2", "--html", str(html_file)
    )
    # The standalone report, as the admin serves it: the score, and no scripts.
    html = html_file.read_text(encoding="utf-8")
    assert f"Wrote {html_file}" in printed
    assert "<script" not in html
    assert f">{document['report']['score']}<" in html
    crawl = document["report"]["crawl"]
    assert crawl["pages"] == 2
    assert crawl["stopped_by"] == "the page limit (2) was reached"
    assert "(the page limit (2) was reached)" in printed
    not_crawled = [p["url"] for p in document["pages"] if p["skipped"].startswith("not crawled")]
    assert len(not_crawled) == 8


def test_every_request_goes_through_the_egress_check(brand):
    refused = "The host 127.0.0.1 resolves to 127.0.0.1, a loopback address"
    with site_served(POOR_SITE, poor_routes()) as site:
        # Refused before anything is recorded…
        with pytest.raises(CommandError, match=refused):
            audit(brand.slug, f"{site.origin}/")
        assert not SiteAudit.objects.exists()
        # …and by every request of the crawler itself.
        crawl = site_crawl(f"{site.origin}/", limits=CrawlLimits(), links_of=lambda f: [])
        assert site.requests == []
    # robots.txt could not be fetched: like any unreachable robots.txt (RFC 9309), it keeps
    # the crawl out of the whole site.
    assert crawl.robots.error.startswith(f"not fetched: {refused}")
    [home] = crawl.visits
    assert (home.fetched, home.skipped) == (None, "disallowed by robots.txt for Sourcebook-Audit")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://tea.example/", "The address 'ftp://tea.example/' cannot be audited"),
        ("http://169.254.169.254/latest/", "a link-local address"),
    ],
)
def test_addresses_that_cannot_be_audited(brand, url, message):
    with pytest.raises(CommandError, match=message):
        call_command("audit_site", brand.slug, url, stdout=StringIO(), stderr=StringIO())
    assert not SiteAudit.objects.exists()


def test_starting_an_audit_needs_edit_rights(brand, other_brand):
    outsider = get_user_model().objects.create_user("outsider", password="x")
    membership_grant(brand=other_brand, user=outsider, role="admin")
    with pytest.raises(PermissionDenied):
        site_audit_create(brand=brand, url="https://tea.example/", user=outsider, queue=False)
    with pytest.raises(SiteAuditError, match="between 1 and 1000"):
        site_audit_create(brand=brand, url="https://tea.example/", max_pages=0, queue=False)


def test_the_task_runs_the_audit_queued_on_commit(
    brand, poor_site, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = site_audit_create(brand=brand, url=f"{poor_site.origin}/", max_pages=3)
    created.refresh_from_db()
    assert created.state == SiteAudit.State.DONE
    assert (created.progress_done, created.pages.exclude(status=None).count()) == (3, 3)
    assert created.score == created.report["score"]


@pytest.fixture
def demo_site(live_server, settings, tmp_path):
    """The demo brand published with the live server's address as its base URL, served at /
    by the development server (publishing.views.published_site, nginx's stand-in)."""
    from kb.demo_brand import demo_load
    from kb.models import Brand

    demo_load()
    Brand.objects.filter(slug="westlake-leaf").update(base_url=live_server.url)
    call_command("publish", "westlake-leaf", "--out", str(tmp_path / "site"), stdout=StringIO())
    settings.SOURCEBOOK_SERVE_SITE = str(tmp_path / "site" / "current")
    with egress_allowing(live_server.url.removeprefix("http://")):
        yield live_server.url


def test_the_demo_site_scores_at_the_top(demo_site):
    document, printed = audit("westlake-leaf", f"{demo_site}/", "--max-pages", "200")
    report = document["report"]
    assert report["crawl"]["pages"] == 68
    assert (report["score"], report["grade"], report["fixes"]) == (100, "A", [])
    assert {p["key"]: p["fraction"] for p in report["parts"]} == {
        p["key"]: 1.0 for p in report["parts"]
    }
    assert report["llms_txt"]["valid"] and report["llms_txt"]["full_present"]
    assert report["content_signal"]["robots"] == ["search=yes, ai-input=yes, ai-train=no"]
    # Training crawlers are kept out, as the demo brand chose; every search agent may read all.
    blocked = sorted(a["token"] for a in report["agents"] if a["allowed"] == 0)
    training = sorted(a["token"] for a in report["agents"] if a["purpose"] == "training")
    assert blocked == training
    assert report["graph"]["dangling"] == report["graph"]["conflicts"] == []
    assert not [
        (p["url"], f["message"])
        for p in document["pages"]
        for f in p["findings"]
        if f["level"] in (ERROR, INELIGIBLE)
    ]
    assert "Score 100/100 (grade A)" in printed
    assert (
        Path(document["pages"][0]["markdown_url"].removeprefix(demo_site)).name == "index.html.md"
    )


def test_invalid_structured_data_is_named_by_graph_and_pointer(brand):
    html = """<!doctype html><html lang="en"><head><title>Broken</title>
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "TeaStore",
 "name": "Shop"}</script>
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Product",
 "name": "Tea", "offers": {"@type": "Offer", "price": "12,50", "priceCurrency": "USD"}}</script>
<script type="application/ld+json">{"@context": "https://schema.org", "@type": </script>
</head><body><p>Enough words here to count as a page that shows its text without any script
running at all, which is what crawlers see and what this test needs to be true.</p></body></html>"""
    fetched = Fetched(
        url="https://shop.example/", final_url="https://shop.example/", status=200,
        headers={"content-type": "text/html; charset=utf-8"}, body=html.encode(),
    )  # fmt: skip
    reading = page_read(fetched, brand=brand)
    errors = [
        (f["code"], f.get("graph"), f.get("pointer"), f["message"])
        for f in reading.findings
        if f["level"] == ERROR
    ]
    # The broken third block does not hide the first two.
    assert errors == [
        ("jsonld_unparsable", None, None,
         "JSON-LD block 3 is not JSON (Expecting value: line 1 column 45 (char 44)): engines "
         "skip it whole."),
        ("invalid", "JSON-LD #1", "/@type", "unknown schema.org type 'TeaStore' (did you mean 'Store'?)"),
        ("profile_error", "JSON-LD #2", "/offers/price",
         "The price '12,50' is not a number: write it with a dot before the cents, e.g. 12.50."),
    ]  # fmt: skip
    assert (reading.title, reading.language, reading.needs_javascript) == ("Broken", "en", False)
    # Imported, the product comes in (its price is for the editor to fix), the node of no
    # schema.org type is listed as left out.
    from visibility.site_audit.importing import site_import

    imported = site_import(brand=brand, readings=[reading], user=None)
    assert [(e["label"], e["outcome"]) for e in imported["entities"]] == [
        ("Product “Tea”", "created")
    ]
    assert imported["skipped"] == [{
        "page": "https://shop.example/", "what": "TeaStore",
        "problems": ["/@type: not a schema.org type: TeaStore"],
    }]  # fmt: skip


def server_error(handler, origin) -> None:
    handler.send_error(503)


def test_a_robots_txt_that_cannot_be_read_keeps_every_crawler_out(brand):
    with (
        site_served(POOR_SITE, {"/robots.txt": server_error}) as site,
        egress_allowing(site.origin.removeprefix("http://")),
    ):
        document, printed = audit(brand.slug, f"{site.origin}/")
        assert site.paths() == ["/robots.txt"]
    report = document["report"]
    assert report["robots"] == {
        "status": 503,
        "error": "",
        "unreachable": True,
        "ours_allowed": False,
    }
    assert {a["allowed"] for a in report["agents"]} == {0}
    assert (
        page(document, f"{site.origin}/")["skipped"]
        == "disallowed by robots.txt for Sourcebook-Audit"
    )
    fix = next(f for f in report["fixes"] if f["part"] == "ai_access")
    assert fix["where"][-1] == (
        "robots.txt cannot be read (HTTP 503): crawlers treat the whole site as disallowed"
    )


def test_a_page_that_asks_not_to_be_indexed_is_named(brand):
    html = (
        b"<!doctype html><html lang='en'><head><title>Hidden</title>"
        b"<meta name='robots' content='noindex, follow'></head><body><p>text</p></body></html>"
    )
    fetched = Fetched(url="https://shop.example/x/", final_url="https://shop.example/x/",
                      status=200, headers={"content-type": "text/html"}, body=html)  # fmt: skip
    assert "noindex" in [f["code"] for f in page_read(fetched, brand=brand).findings]


def test_an_audit_runs_once_however_often_its_task_is_delivered(brand, poor_site):
    from datetime import timedelta

    from django.utils import timezone

    from visibility.site_audit.services import site_audit_run

    audit = site_audit_create(brand=brand, url=f"{poor_site.origin}/", max_pages=2, queue=False)
    SiteAudit.objects.filter(pk=audit.pk).update(
        state=SiteAudit.State.RUNNING, started_at=timezone.now()
    )
    assert site_audit_run(audit_id=audit.pk).state == SiteAudit.State.RUNNING  # another has it
    assert poor_site.requests == []
    # A worker that died an hour ago: started over.
    SiteAudit.objects.filter(pk=audit.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert site_audit_run(audit_id=audit.pk).state == SiteAudit.State.DONE
    asked = len(poor_site.requests)
    assert site_audit_run(audit_id=audit.pk).state == SiteAudit.State.DONE  # done: left alone
    assert len(poor_site.requests) == asked


def test_pages_that_read_oddly_are_still_read(brand):
    """An XML declaration with its encoding, a link that is no address, and a short page
    whose only script is JSON-LD (not a page that needs JavaScript)."""
    html = (
        '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
        'lang="de"><head><title>Grüner Tee</title><script type="application/ld+json">'
        '{"@context": "https://schema.org", "@type": "Organization", "name": "Tee"}</script>'
        '</head><body><p>Kurz.</p><a href="http://[::1">kaputt</a><a href="/ok/">ok</a>'
        "</body></html>"
    ).encode()
    fetched = Fetched(url="https://tee.example/", final_url="https://tee.example/", status=200,
                      headers={"content-type": "application/xhtml+xml"}, body=html)  # fmt: skip
    reading = page_read(fetched, brand=brand)
    assert (reading.title, reading.language, reading.links) == (
        "Grüner Tee", "de", ["https://tee.example/ok/"]
    )  # fmt: skip
    assert reading.needs_javascript is False
    assert [g.syntax for g in reading.graphs] == ["JSON-LD"]
