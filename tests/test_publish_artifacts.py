"""Every published artifact of the demo brand, judged by parsers we did not write.

extruct and a strict json.loads for each page's JSON-LD, pyld for term coverage and
references, the llms.txt reference parser and llms-txt-audit, an XML parser for sitemaps,
Python's robots.txt parser, and markdown-it for the Markdown twins.
"""

import json
import re
import subprocess
import sys
import urllib.robotparser
from dataclasses import dataclass
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path
from xml.etree import ElementTree

import extruct
import llms_txt
import pytest
from django.core.management import call_command
from markdown_it import MarkdownIt

from kb import jsonld, vocabulary
from kb.demo_brand import demo_load
from kb.models import FAQ, Brand, Fact
from kb.selectors import statement_nodes
from kb.services.entities import entity_create
from kb.services.statements import fact_create
from kb.services.workflow import object_publish
from publishing.models import Release, SiteSettings

pytestmark = pytest.mark.django_db

BASE = "https://www.westlakeleaf.example"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
XHTML = "{http://www.w3.org/1999/xhtml}"


@dataclass
class Site:
    root: Path
    brand: Brand
    release: Release

    def file(self, url: str) -> Path:
        assert url.startswith(BASE + "/"), url
        path = url[len(BASE) + 1 :]
        return self.root / (path + "index.html" if path.endswith("/") or not path else path)

    def pages(self) -> list[Path]:
        return sorted(self.root.rglob("*.html"))

    def url_of(self, page: Path) -> str:
        relative = page.relative_to(self.root).as_posix()
        return f"{BASE}/{relative.removesuffix('index.html')}"


def publish(out: Path) -> str:
    stdout = StringIO()
    call_command("publish", "westlake-leaf", "--out", str(out), stdout=stdout)
    return stdout.getvalue()


@pytest.fixture
def site(tmp_path) -> Site:
    demo_load()
    publish(tmp_path / "site")
    brand = Brand.objects.get(slug="westlake-leaf")
    return Site(tmp_path / "site" / "current", brand, Release.objects.get(brand=brand))


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of script elements."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._script: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def links(self, rel: str) -> list[dict]:
        return self.tags_named("link", rel=rel)

    def tags_named(self, tag: str, **attributes: str) -> list[dict]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k) == v for k, v in attributes.items())
        ]


def page_graph(html: str, url: str) -> dict:
    """The page's JSON-LD: extruct must find exactly one, equal to a strict json.loads."""
    found = extruct.extract(html, base_url=url, syntaxes=["json-ld"], uniform=False)["json-ld"]
    assert len(found) == 1, url
    scripts = [text for attrs, text in Elements(html).scripts]
    assert len(scripts) == 1, url
    strict = json.loads(scripts[0])
    assert strict == found[0]
    assert set(strict) == {"@context", "@graph"}
    return strict


# Links to web pages (a fact's permalink is its anchor on another page), not node references.
LINK_PROPERTIES = {f"http://schema.org/{name}" for name in ("url", "item", "sameAs")}


def references(value, found: set[str]) -> set[str]:
    """IRIs of node references ({"@id": …} alone) in an expanded document."""
    if isinstance(value, list):
        for item in value:
            references(item, found)
    elif isinstance(value, dict):
        if set(value) == {"@id"}:
            found.add(value["@id"])
        for key, item in value.items():
            if key != "@id" and key not in LINK_PROPERTIES:
                references(item, found)
    return found


def compact_keys(value, found: set[str]) -> set[str]:
    if isinstance(value, list):
        for item in value:
            compact_keys(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not key.startswith("@"):
                found.add(key)
            compact_keys(item, found)
    return found


def expanded_keys(value, found: set[str]) -> set[str]:
    if isinstance(value, list):
        for item in value:
            expanded_keys(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not key.startswith("@"):
                found.add(key.removeprefix("http://schema.org/"))
            expanded_keys(item, found)
    return found


def types_of(value, found: set[str]) -> set[str]:
    if isinstance(value, list):
        for item in value:
            types_of(item, found)
    elif isinstance(value, dict):
        node_type = value.get("@type")
        if node_type and "@value" not in value:
            found.update(node_type if isinstance(node_type, list) else [node_type])
        for key, item in value.items():
            if key != "@type":
                types_of(item, found)
    return found


def test_publish_reports_the_release(tmp_path):
    demo_load()
    output = publish(tmp_path / "site")
    assert output.splitlines()[0] == (
        "Release 1 of westlake-leaf: 205 artifacts (8 feed, 1 graph, 2 llms, 2 llms-full, "
        "68 markdown, 53 media, 68 page, 1 robots, 2 sitemap), 205 changed; rendered 205, "
        "reused 0; built in " + re.search(r"built in (\d+\.\d\d)s", output).group(1) + "s."
    )
    assert f"Deployed to {tmp_path / 'site'}: 205 files, 205 new or changed, 0 removed." in output
    output = publish(tmp_path / "site")
    assert "Release 2 of westlake-leaf: 205 artifacts" in output
    assert "0 changed; rendered 0, reused 205" in output
    assert f"Deployed to {tmp_path / 'site'}: 205 files, 0 new or changed, 0 removed." in output


def test_every_page_has_one_valid_graph_with_stable_ids(site):
    pages = site.pages()
    assert len(pages) == 68
    organization = f"{BASE}/#organization"
    for page in pages:
        url = site.url_of(page)
        html = page.read_text(encoding="utf-8")
        document = page_graph(html, url)
        nodes = document["@graph"]
        ids = [n["@id"] for n in nodes]
        assert len(ids) == len(set(ids)), url
        by_id = {n["@id"]: n for n in nodes}
        # Exactly one Organization: the brand's, under its stable @id.
        organizations = [n for n in nodes if n.get("@type") == "Organization"]
        assert [n["@id"] for n in organizations] == [organization], url
        assert by_id[f"{BASE}/#website"]["publisher"] == {"@id": organization}
        webpage = by_id[url]
        lang = re.search(r'<html lang="([^"]+)">', html).group(1)
        assert webpage["inLanguage"] == lang
        assert webpage["isPartOf"] == {"@id": f"{BASE}/#website"}
        # The page URL is the WebPage's @id and no other node's.
        assert [n for n in nodes if n.get("@id") == url] == [webpage]
        expanded = jsonld.expand(document)
        # pyld dropped nothing: every key is a term it understood.
        assert compact_keys(document["@graph"], set()) == expanded_keys(expanded, set()), url
        for key in compact_keys(document["@graph"], set()):
            assert vocabulary.is_property(key), (url, key)
        for type_name in types_of(document["@graph"], set()):
            assert vocabulary.is_class(type_name), (url, type_name)
        # Every reference to one of our nodes resolves within this page's graph.
        internal = {r for r in references(expanded, set()) if "#" in r and r.startswith(BASE)}
        assert internal <= set(ids), (url, internal - set(ids))


def test_product_page_graph_in_each_language(site):
    for language, prefix, name in (
        ("en", "", "Dongting Biluochun"),
        ("zh-Hans", "zh-Hans/", "洞庭碧螺春"),
    ):
        url = f"{BASE}/{prefix}products/biluochun/"
        document = page_graph(site.file(url).read_text(encoding="utf-8"), url)
        by_id = {n["@id"]: n for n in document["@graph"]}
        product = by_id[f"{BASE}/products/biluochun/#product"]
        assert product["name"] == name
        assert product["brand"] == {"@id": f"{BASE}/#organization"}
        assert sorted((o["priceCurrency"], o["price"]) for o in product["offers"]) == [
            ("EUR", "35.50"),
            ("USD", "39.00"),
        ]
        assert by_id[url]["@type"] == "ItemPage"
        assert by_id[url]["mainEntity"] == {"@id": product["@id"]}
        assert by_id[url]["inLanguage"] == language


def test_hreflang_alternates_twins_and_llms_links(site):
    for page in site.pages():
        url = site.url_of(page)
        elements = Elements(page.read_text(encoding="utf-8"))
        alternates = {
            a["hreflang"]: a["href"] for a in elements.links("alternate") if "hreflang" in a
        }
        path = url[len(BASE) + 1 :].removeprefix("zh-Hans/")
        assert alternates == {
            "en": f"{BASE}/{path}",
            "zh-Hans": f"{BASE}/zh-Hans/{path}",
            "x-default": f"{BASE}/{path}",
        }
        [twin] = [a for a in elements.links("alternate") if a.get("type") == "text/markdown"]
        assert twin["href"] == url + "index.html.md"
        assert site.file(twin["href"]).is_file()
        [described] = elements.links("describedby")
        expected = f"{BASE}/zh-Hans/llms.txt" if "/zh-Hans/" in url else f"{BASE}/llms.txt"
        assert described["href"] == expected
        assert site.file(expected).is_file()
        [canonical] = elements.links("canonical")
        assert canonical["href"] == url


def visible_faqs(html: str) -> list[tuple[str, str]]:
    sections = re.findall(
        r'<section class="faq" id="faq-[^"]+">\s*<h2>(.*?)</h2>\s*<div>(.*?)</div>', html, re.S
    )
    return [(q, a) for q, a in sections]


def test_faq_page_markup_matches_the_visible_questions_and_answers(site):
    for prefix, language in (("", "en"), ("zh-Hans/", "zh-Hans")):
        url = f"{BASE}/{prefix}faq/"
        html = site.file(url).read_text(encoding="utf-8")
        document = page_graph(html, url)
        faq_page = {n["@id"]: n for n in document["@graph"]}[url]
        assert faq_page["@type"] == "FAQPage"
        marked_up = [(q["name"], q["acceptedAnswer"]["text"]) for q in faq_page["mainEntity"]]
        import html as html_lib

        visible = [(html_lib.unescape(q), a) for q, a in visible_faqs(html)]
        assert marked_up == visible
        expected = [
            (f.question[language], f.answer[language])
            for f in FAQ.objects.filter(brand=site.brand).order_by("order", "key")
        ]
        assert [q for q, _ in marked_up] == [q for q, _ in expected]
        assert len(marked_up) == 23


def test_facts_page_shows_statement_value_date_and_source_with_anchor(site):
    html = site.file(f"{BASE}/facts/").read_text(encoding="utf-8")
    document = page_graph(html, f"{BASE}/facts/")
    claims = {n["@id"]: n for n in document["@graph"] if n.get("@type") == "Claim"}
    assert len(claims) == Fact.objects.count() == 36
    fact = Fact.objects.get(key="garden-area")
    block = re.search(r'<div class="fact" id="fact-garden-area">(.*?)</div>', html, re.S).group(1)
    assert fact.statement["en"] in block
    assert "<strong>42 ha</strong>" in block
    assert '<time datetime="2025-12-31">2025-12-31</time>' in block
    assert (
        f'<a href="{fact.source_url}" rel="nofollow noopener">Westlake Leaf Annual Report 2025</a>'
        in block
    )
    # A fact is a Claim under its own @id (the brand graph's); its url is its permalink, on
    # the page of what it is about (the home page for the organization).
    claim = claims[f"{BASE}/id/fact/garden-area"]
    assert claim == {
        "@id": f"{BASE}/id/fact/garden-area",
        "@type": "Claim",
        "url": f"{BASE}/#fact-garden-area",
        "text": fact.statement["en"],
        "about": {"@id": f"{BASE}/#organization"},
        "mainEntity": {
            "@type": "PropertyValue",
            "value": "42",
            "unitText": "ha",
            "unitCode": "HAR",
        },
        "citation": {
            "@type": "CreativeWork",
            "url": fact.source_url,
            "name": "Westlake Leaf Annual Report 2025",
        },
        "temporalCoverage": "2025-12-31",
    }
    # In Chinese the unit is CLDR's word for it; JSON-LD keeps the code.
    html = site.file(f"{BASE}/zh-Hans/facts/").read_text(encoding="utf-8")
    block = re.search(r'<div class="fact" id="fact-garden-area">(.*?)</div>', html, re.S).group(1)
    assert "<strong>42公顷</strong>" in block
    zh_claims = {
        n["@id"]: n
        for n in page_graph(html, f"{BASE}/zh-Hans/facts/")["@graph"]
        if n.get("@type") == "Claim"
    }
    assert zh_claims[f"{BASE}/id/fact/garden-area"]["url"] == f"{BASE}/zh-Hans/#fact-garden-area"
    assert zh_claims[f"{BASE}/id/fact/garden-area"]["mainEntity"]["unitCode"] == "HAR"
    assert zh_claims[f"{BASE}/id/fact/garden-area"]["text"] == fact.statement["zh-Hans"]


def test_an_entity_page_marks_up_its_facts_and_questions(site):
    """A product's facts are Claim nodes and its questions a FAQPage about it, in the page's
    language, with the @ids of the brand graph and each url the anchor the page shows."""
    iri = f"{BASE}/products/longjing-shifeng-pre-qingming/#product"
    facts = Fact.objects.filter(about__iri=iri).order_by("key")
    faqs = FAQ.objects.filter(about__iri=iri).order_by("order", "key")
    assert (facts.count(), faqs.count()) == (4, 2)
    for prefix, language in (("", "en"), ("zh-Hans/", "zh-Hans")):
        url = f"{BASE}/{prefix}products/longjing-shifeng-pre-qingming/"
        html = site.file(url).read_text(encoding="utf-8")
        graph = page_graph(html, url)["@graph"]
        claims = {n["@id"]: n for n in graph if n.get("@type") == "Claim"}
        assert sorted(claims) == [f"{BASE}/id/fact/{f.key}" for f in facts]
        for fact in facts:
            claim = claims[f"{BASE}/id/fact/{fact.key}"]
            assert claim["url"] == f"{url}#fact-{fact.key}"
            assert f'id="fact-{fact.key}"' in html
            assert claim["text"] == fact.statement[language]
            assert claim["about"] == {"@id": iri}
            assert claim["temporalCoverage"] == fact.as_of.isoformat()
            assert claim["citation"]["url"] == fact.source_url
        [faq_page] = [n for n in graph if n.get("@type") == "FAQPage"]
        assert faq_page["about"] == {"@id": iri} and faq_page["isPartOf"] == {"@id": url}
        assert [q["@id"] for q in faq_page["mainEntity"]] == [
            f"{BASE}/id/faq/{f.key}" for f in faqs
        ]
        visible = dict(
            re.findall(
                r'<div class="faq" id="(faq-[^"]+)"><h3>.*?</h3><div>(.*?)</div></div>',
                html,
                re.S,
            )
        )
        for question, faq in zip(faq_page["mainEntity"], faqs, strict=True):
            assert question["url"] == f"{url}#faq-{faq.key}"
            assert question["name"] == faq.question[language]
            assert question["acceptedAnswer"]["text"] == visible[f"faq-{faq.key}"]
    # The value of a fact with a unit of the brand's own is shown in the page's words.
    zh = site.file(f"{BASE}/zh-Hans/products/longjing-shifeng-pre-qingming/").read_text("utf-8")
    en = site.file(f"{BASE}/products/longjing-shifeng-pre-qingming/").read_text("utf-8")
    assert "<strong>36,000 buds</strong>" in en and "<strong>36,000个芽</strong>" in zh
    claim = next(
        n
        for n in page_graph(zh, f"{BASE}/zh-Hans/products/longjing-shifeng-pre-qingming/")["@graph"]
        if n["@id"] == f"{BASE}/id/fact/buds-per-500g"
    )
    assert claim["mainEntity"] == {"@type": "PropertyValue", "value": "36000", "unitText": "个芽"}


def test_faq_and_facts_pages_are_paginated_and_each_fact_links_to_where_it_is_shown(
    tmp_path, monkeypatch
):
    monkeypatch.setattr("publishing.site.STATEMENT_PAGE_SIZE", 10)
    demo_load()
    brand = Brand.objects.get(slug="westlake-leaf")
    village = entity_create(  # a Place has no page of its own
        brand=brand,
        types=["Place"],
        data={
            "name": [
                {"@value": "Meijiawu", "@language": "en"},
                {"@value": "梅家坞", "@language": "zh-Hans"},
            ]
        },
        iri=f"{BASE}/places/meijiawu/#place",
    )
    object_publish(obj=village)
    unattached = fact_create(  # about what has no page: shown only on the facts pages
        brand=brand,
        key="meijiawu-tea-exports",
        about=village,
        statement={"en": "Hangzhou exported green tea.", "zh-Hans": "杭州出口绿茶。"},
        value="12,000 t",
        source_url="https://stats.example/tea",
        source_title={"en": "Tea statistics", "zh-Hans": "茶叶统计"},
        as_of="2025-12-31",
    )
    object_publish(obj=unattached)
    publish(tmp_path / "site")
    site = Site(tmp_path / "site" / "current", brand, Release.objects.get(brand=brand))
    for prefix, language in (("", "en"), ("zh-Hans/", "zh-Hans")):
        questions: list[str] = []
        claims: dict[str, dict] = {}
        for kind, count in (("faq", 3), ("facts", 4)):
            urls = [f"{BASE}/{prefix}{kind}/"]
            urls += [f"{BASE}/{prefix}{kind}/page/{n}/" for n in range(2, count + 1)]
            assert not site.file(f"{BASE}/{prefix}{kind}/page/{count + 1}/").exists()
            for number, url in enumerate(urls, start=1):
                html = site.file(url).read_text(encoding="utf-8")
                graph = {n["@id"]: n for n in page_graph(html, url)["@graph"]}
                prev_links = [a["href"] for a in Elements(html).tags_named("a", rel="prev")]
                next_links = [a["href"] for a in Elements(html).tags_named("a", rel="next")]
                assert prev_links == ([urls[number - 2]] if number > 1 else [])
                assert next_links == ([urls[number]] if number < count else [])
                twin = (site.file(url).parent / "index.html.md").read_text(encoding="utf-8")
                twin_links = [f"({u})" for u in prev_links + next_links]
                assert [link for link in twin_links if link in twin] == twin_links
                if kind == "faq":
                    assert graph[url]["@type"] == "FAQPage"
                    page_questions = [q["name"] for q in graph[url]["mainEntity"]]
                    assert len(page_questions) == (3 if number == count else 10)
                    questions += page_questions
                else:
                    page_claims = {n["url"]: n for n in graph.values() if n.get("@type") == "Claim"}
                    assert len(page_claims) == (7 if number == count else 10)
                    claims.update(page_claims)
        expected = FAQ.objects.filter(brand=brand).order_by("order", "key")
        assert questions == [f.question[language] for f in expected]
        assert len(claims) == Fact.objects.filter(brand=brand).count() == 37
        # A fact's permalink is its anchor where it is shown with what it is about (the
        # entity's page, the home page for the organization), else on its facts page.
        for fact in Fact.objects.filter(brand=brand).select_related("about"):
            (claim_id,) = [i for i in claims if i.endswith(f"#fact-{fact.key}")]
            page, anchor = claim_id.split("#")
            if fact.about.iri == f"{BASE}/#organization":
                assert page == f"{BASE}/{prefix}"
            elif fact.about == village:
                assert page.startswith(f"{BASE}/{prefix}facts/")
            else:
                assert page.startswith(f"{BASE}/{prefix}") and page.endswith(f"/{fact.about.slug}/")
            assert f'id="{anchor}"' in site.file(page).read_text(encoding="utf-8")
    llms = (site.root / "llms.txt").read_text(encoding="utf-8")
    assert llms.count(f"{BASE}/faq/") == 1 and f"{BASE}/faq/page/2/" not in llms


def test_llms_txt_passes_the_reference_parser_and_the_strict_audit(site):
    for prefix, about, products in (("", "About", "Products"), ("zh-Hans/", "关于", "产品")):
        path = site.root / prefix / "llms.txt"
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw
        text = raw.decode("utf-8")
        assert len(text) < 50_000
        parsed = llms_txt.parse_llms_file(text)
        assert parsed.title == ("Westlake Leaf Tea" if not prefix else "西湖叶茶业")
        assert parsed.summary
        assert list(parsed.sections) == [about, "人物" if prefix else "People", products,
                                         "门店" if prefix else "Stores", "Optional"]  # fmt: skip
        assert len(parsed.sections[products]) == 24
        for links in parsed.sections.values():
            for link in links:
                assert site.file(link["url"]).is_file(), link
        audit = subprocess.run(
            [str(Path(sys.executable).parent / "llms-txt-audit"), "--strict", "--no-relative-links",
             "--require-optional", "--fail-on-warning", str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert audit.returncode == 0, audit.stdout + audit.stderr
        full = (site.root / prefix / "llms-full.txt").read_text(encoding="utf-8")
        assert full.startswith(f"# {parsed.title}\n\n> ")
        assert full.count("\n---\n") == 30  # home, FAQ, facts and 28 entity pages


def test_large_catalog_splits_llms_txt_into_parsable_parts(site, settings, tmp_path):
    settings.SOURCEBOOK_LLMS_MAX_CHARS = 3_000
    settings.SOURCEBOOK_LLMS_PART_CHARS = 1_500
    publish(tmp_path / "site")
    root = llms_txt.parse_llms_file((site.root / "llms.txt").read_text(encoding="utf-8"))
    assert len((site.root / "llms.txt").read_text(encoding="utf-8")) < 3_000
    parts = root.sections["Products"]
    assert len(parts) > 1
    linked = []
    for part in parts:
        file = site.file(part["url"])
        text = file.read_text(encoding="utf-8")
        assert len(text) <= 1_500 + 1_000  # the part's own header on top of its links
        parsed = llms_txt.parse_llms_file(text)
        assert parsed.summary
        linked += [link["url"] for link in parsed.sections["Products"]]
    assert len(linked) == len(set(linked)) == 24


def test_large_full_text_is_split_into_parts_that_hold_every_page_once(site, settings, tmp_path):
    single = (site.root / "llms-full.txt").read_text(encoding="utf-8")
    # The title and summary, then the pages (the home page's own H1 and summary are the head's).
    title, lead, body = single.split("\n\n", 2)
    head = f"{title}\n\n{lead}"
    pages = body.split("\n---\n\n")
    assert pages[0].startswith("## ") and all(p.startswith("# ") for p in pages[1:])
    assert len(pages) == 31  # home, FAQ, facts and 28 entity pages
    settings.SOURCEBOOK_LLMS_FULL_MAX_CHARS = 6_000
    publish(tmp_path / "site")
    index = llms_txt.parse_llms_file((site.root / "llms-full.txt").read_text(encoding="utf-8"))
    links = index.sections[index.info]
    count = len(links)
    assert count > 3
    seen = []
    for number, link in enumerate(links, start=1):
        assert re.fullmatch(f"{BASE}/llms-full-[0-9a-f]{{10}}\\.txt", link["url"])
        assert link["title"] == f"{index.title} ({number}/{count})"
        text = site.file(link["url"]).read_text(encoding="utf-8")
        assert text.startswith(f"{head}\n\n")
        part = text.removeprefix(f"{head}\n\n").split("\n---\n\n")
        # A part is cut before the page that would take it past the limit (a page longer
        # than the limit makes a part of its own).
        assert sum(len(p) for p in part) <= 6_000 or len(part) == 1
        seen += part
    assert seen == pages


def test_sitemaps_parse_and_list_every_page_with_alternates(site):
    index = ElementTree.parse(site.root / "sitemap.xml").getroot()
    assert index.tag == f"{SITEMAP}sitemapindex"
    locs = [e.findtext(f"{SITEMAP}loc") for e in index]
    assert locs == [f"{BASE}/sitemaps/sitemap-1.xml"]
    urlset = ElementTree.parse(site.file(locs[0])).getroot()
    urls = {u.findtext(f"{SITEMAP}loc"): u for u in urlset}
    assert set(urls) == {site.url_of(p) for p in site.pages()}
    entry = urls[f"{BASE}/zh-Hans/products/biluochun/"]
    alternates = {a.get("hreflang"): a.get("href") for a in entry.findall(f"{XHTML}link")}
    assert alternates == {
        "en": f"{BASE}/products/biluochun/",
        "zh-Hans": f"{BASE}/zh-Hans/products/biluochun/",
        "x-default": f"{BASE}/products/biluochun/",
    }


def test_sitemaps_are_split_at_the_url_limit_each_listed_with_its_newest_lastmod(
    tmp_path, monkeypatch
):
    monkeypatch.setattr("publishing.render.indexes.SITEMAP_MAX_URLS", 10)
    demo_load()
    publish(tmp_path / "site")
    root = tmp_path / "site" / "current"
    pages = {
        f"{BASE}/{p.relative_to(root).as_posix().removesuffix('index.html')}"
        for p in root.rglob("*.html")
    }
    assert len(pages) == 68
    index = ElementTree.parse(root / "sitemap.xml").getroot()
    listed = [(e.findtext(f"{SITEMAP}loc"), e.findtext(f"{SITEMAP}lastmod")) for e in index]
    assert [loc for loc, _ in listed] == [f"{BASE}/sitemaps/sitemap-{n}.xml" for n in range(1, 8)]
    seen: list[str] = []
    for loc, lastmod in listed:
        urlset = ElementTree.parse(root / loc.removeprefix(f"{BASE}/")).getroot()
        urls = [(u.findtext(f"{SITEMAP}loc"), u.findtext(f"{SITEMAP}lastmod")) for u in urlset]
        assert len(urls) == (8 if loc.endswith("-7.xml") else 10)
        assert lastmod == max(m for _, m in urls)
        seen += [url for url, _ in urls]
    assert sorted(seen) == sorted(pages)


def test_robots_txt_allows_search_agents_and_follows_the_training_policy(site, tmp_path):
    def parser():
        robots = urllib.robotparser.RobotFileParser()
        robots.parse((site.root / "robots.txt").read_text(encoding="utf-8").splitlines())
        return robots

    robots = parser()
    page = f"{BASE}/products/biluochun/"
    for agent in (
        "OAI-SearchBot",
        "ChatGPT-User",
        "Claude-SearchBot",
        "PerplexityBot",
        "Googlebot",
    ):
        assert robots.can_fetch(agent, page), agent
    for agent in ("GPTBot", "ClaudeBot", "CCBot", "Google-Extended", "Bytespider"):
        assert not robots.can_fetch(agent, page), agent
    assert robots.can_fetch("SomeOtherBot", page)
    assert robots.site_maps() == [f"{BASE}/sitemap.xml"]
    SiteSettings.objects.filter(brand=site.brand).update(allow_ai_training=True)
    publish(tmp_path / "site")
    assert parser().can_fetch("GPTBot", page)


def test_markdown_twins_are_clean_markdown(site):
    markdown = MarkdownIt("commonmark")
    twins = sorted(site.root.rglob("*.html.md"))
    assert len(twins) == 68
    for twin in twins:
        text = twin.read_text(encoding="utf-8")
        tokens = markdown.parse(text)
        assert tokens[0].type == "heading_open" and tokens[0].tag == "h1", twin
        kinds = {t.type for t in tokens} | {c.type for t in tokens for c in (t.children or [])}
        assert not kinds & {"html_block", "html_inline"}, twin
    text = (site.root / "products" / "biluochun" / "index.html.md").read_text(encoding="utf-8")
    assert text.startswith("# Dongting Biluochun\n\nTightly curled, downy spring buds")
    assert (
        "- [39.00 USD (In stock)](https://www.westlakeleaf.example/products/biluochun/?currency=usd)"
        in text
    )


def test_whole_brand_graph_file_expands_without_loss(site):
    document = json.loads((site.root / "graph.jsonld").read_text(encoding="utf-8"))
    nodes = document["@graph"]
    # The WebSite and the 29 entities, then the 36 facts (a Claim each) and the 23 FAQs (a
    # FAQPage per entity they are about): the same nodes as the brand's export.
    types = [n["@type"] for n in nodes]
    assert len(nodes) - types.count("Claim") - types.count("FAQPage") == 30
    assert types.count("Claim") == 36
    questions = [q for n in nodes if n.get("@type") == "FAQPage" for q in n["mainEntity"]]
    assert len(questions) == FAQ.objects.count() == 23
    statements = [n for n in nodes if n["@type"] in ("Claim", "FAQPage")]
    by_id = lambda found: sorted(found, key=lambda n: n["@id"])  # noqa: E731
    assert by_id(statements) == by_id(statement_nodes(brand=site.brand))
    expanded = jsonld.expand(document)
    assert compact_keys(nodes, set()) == expanded_keys(expanded, set())
    ids = {n["@id"] for n in nodes}
    assert {r for r in references(expanded, set()) if "#" in r and r.startswith(BASE)} <= ids


@pytest.mark.django_db
def test_the_site_pages_made_on_request_are_those_listed_in_order():
    """A build holds the entities' pages as runs and makes each one when asked for (see
    SitePages): by index, by slice and in order they are the same pages."""
    from publishing.site import Page, site_content_load, site_pages

    demo_load()
    site = site_content_load(brand=Brand.objects.get(slug="westlake-leaf"))
    pages = site_pages(site)
    listed = list(pages)
    assert len(pages) == len(listed) == 68
    assert [pages[i] for i in range(len(pages))] == listed
    assert pages[-1] == listed[-1] and pages[3:9] == listed[3:9]
    assert list(pages.numbered("zh-Hans")) == [
        (i, page) for i, page in enumerate(listed) if page.language == "zh-Hans"
    ]
    assert len(list(pages.numbered("zh-Hans"))) == 34
    with pytest.raises(IndexError):
        pages[len(pages)]
    # Any run of consecutive pages, as the sitemaps take them (see SitePages.between).
    for start, stop in ((0, 68), (0, 1), (5, 40), (33, 35), (67, 68), (10, 10)):
        assert list(pages.between(range(start, stop))) == listed[start:stop]
    # Where the pages about (and listing) an entity are, as a page plan finds them.
    product_iri = f"{BASE}/products/longjing-meijiawu/#product"
    assert [listed[i].path for i in pages.showing_entity(product_iri)] == [
        "products/longjing-meijiawu/",
        "zh-Hans/products/longjing-meijiawu/",
    ]
    assert [listed[i].path for i in pages.listing_entity(product_iri)] == [
        "products/",
        "zh-Hans/products/",
    ]
    assert [listed[i].path for i in pages.showing_entity(site.organization_iri)] == ["", "zh-Hans/"]
    assert {listed[i].kind for i in pages.of_kind("faq")} == {"faq"}
    assert len(pages.of_kind("facts")) == 2
    assert listed[0] == Page(kind="home", language="en", path="", main=[site.organization_iri])
    assert len({page.file for page in listed}) == len(listed)
    product = next(i for i, page in enumerate(listed) if page.path == "products/longjing-meijiawu/")
    assert pages[product] == Page(
        kind="entity",
        language="en",
        path="products/longjing-meijiawu/",
        main=[f"{BASE}/products/longjing-meijiawu/#product"],
        section="products",
    )
    # Each section's listing comes before its entities' pages, in each language.
    kinds = [(page.language, page.section, page.kind) for page in listed if page.section]
    for language, section, kind in kinds:
        first = kinds.index((language, section, "entity")) if kind == "section" else None
        if first is not None:
            assert kinds.index((language, section, "section")) < first


def test_the_previous_manifest_is_read_back_exactly_and_matched_by_fingerprint(site):
    """A build holds the previous release's manifest packed in arrays (publishing.manifest):
    every row reads back as it was stored, and a page and its twin are carried over only
    when both are there with the same fingerprint."""
    from publishing.manifest import Entry, digest_bytes, previous_manifest_read

    assert len(previous_manifest_read(None)) == 0
    manifest = previous_manifest_read(site.release)
    rows = list(
        site.release.artifacts.values_list(
            "path", "kind", "sha256", "size", "fingerprint", "changed_at"
        )
    )
    assert len(manifest) == len(rows) == site.release.summary["artifacts"]
    assert [manifest.get(row[0]) for row in rows] == [Entry(*row) for row in rows]
    assert manifest.get("no/such/page/index.html") is None
    assert manifest.paths_of("robots") == ["robots.txt"]
    assert manifest.paths_of("no-such-kind") == []

    page = manifest.get("products/biluochun/index.html")
    twin = manifest.get("products/biluochun/index.html.md")
    assert page.kind == "page" and twin.kind == "markdown"
    assert page.fingerprint == twin.fingerprint and len(page.fingerprint) == 64
    found = manifest.match([page.path, twin.path], page.fingerprint)
    assert [manifest.paths[number] for number in found] == [page.path, twin.path]
    assert manifest.digest(found[1]) == bytes.fromhex(twin.sha256)
    assert (
        manifest.sizes[found[1]] == twin.size and manifest.changed_at(found[1]) == twin.changed_at
    )
    assert manifest.changed_second(found[1]) == int(twin.changed_at.timestamp())
    assert manifest.match([page.path, twin.path], "0" * 64) is None
    assert manifest.match([page.path, "no/such/page/index.html.md"], page.fingerprint) is None

    # What a build has not had by its end is what it removed.
    assert manifest.unseen() == sorted(row[0] for row in rows)
    for row in rows:
        if row[0] != "robots.txt":
            manifest.mark_seen(row[0])
    assert manifest.unseen() == ["robots.txt"]
    # A fingerprint from before fingerprints were digests matches nothing.
    assert digest_bytes("legacy") == bytes(32) == digest_bytes("ab" * 31)
