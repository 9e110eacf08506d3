"""Hostile text in every field: nothing executable or structural reaches any artifact."""

import json
from datetime import date
from io import StringIO
from pathlib import Path
from xml.etree import ElementTree

import llms_txt
import pytest
from django.core.management import call_command
from markdown_it import MarkdownIt

from kb.models import FAQ, Fact
from kb.services.brands import brand_create
from kb.services.entities import entity_create
from kb.services.statements import statement_create
from kb.services.workflow import object_publish
from tests.test_publish_artifacts import Elements, page_graph

pytestmark = pytest.mark.django_db

BASE = "https://evil.example"
HOSTILE = (
    '</script><script>alert(1)</script><img src=x onerror=alert(2)> "quoted" '
    "\\back\\slash\\ \u202eRTL\u202c zero\u200bwidth ]) [x](javascript:alert(3)) "
    "# heading\n- list item\n<!-- comment --> &amp; &lt;b&gt;"
)
ANSWER = HOSTILE + '<a href="javascript:alert(4)">click</a> <b>bold</b> <p onclick="x()">p</p>'


def ml(text: str) -> list[dict]:
    return [{"@value": text, "@language": "en"}]


@pytest.fixture
def hostile_site(tmp_path) -> Path:
    brand = brand_create(slug="evil", name=HOSTILE, base_url=BASE, languages=["en"])
    organization = entity_create(
        brand=brand,
        types=["Organization"],
        iri=f"{BASE}/#organization",
        data={"name": ml(HOSTILE), "description": ml(HOSTILE)},
    )
    product = entity_create(
        brand=brand,
        types=["Product"],
        iri=f"{BASE}/products/x/#product",
        data={
            "name": ml(HOSTILE),
            "description": ml(HOSTILE),
            "brand": [{"@id": organization.iri}],
            "sku": [{"@value": HOSTILE}],
            "image": [{"@id": f"{BASE}/img/x.jpg"}],
            "offers": [
                {
                    "@type": ["Offer"],
                    "price": [{"@value": "9.50"}],
                    "priceCurrency": [{"@value": "USD"}],
                }
            ],
        },
    )
    fact = statement_create(
        model=Fact,
        brand=brand,
        key="hostile",
        about=product,
        statement={"en": HOSTILE},
        value="<b>1</b>",
        unit="</script>",
        source_url="https://source.example/report_(2026)",
        source_title={"en": HOSTILE},
        as_of=date(2026, 1, 1),
    )
    faq = statement_create(
        model=FAQ, brand=brand, key="hostile", about=product,
        question={"en": HOSTILE}, answer={"en": ANSWER}, order=1,
    )  # fmt: skip
    for obj in (organization, product, fact, faq):
        object_publish(obj=obj)
    call_command("publish", "evil", "--out", str(tmp_path / "site"), stdout=StringIO())
    return tmp_path / "site" / "current"


def test_html_pages_hold_nothing_executable(hostile_site):
    pages = sorted(hostile_site.rglob("*.html"))
    assert len(pages) == 5  # home, product, products, FAQ, facts
    for page in pages:
        html = page.read_text(encoding="utf-8")
        elements = Elements(html)
        assert [attrs for attrs, _ in elements.scripts] == [{"type": "application/ld+json"}]
        for tag, attrs in elements.tags:
            assert tag not in {"iframe", "object", "embed", "svg", "form"}, (page, tag)
            if tag == "img":  # the product's own image, nothing made from its text
                assert attrs["src"] == f"{BASE}/img/x.jpg", attrs
            for name, value in attrs.items():
                assert not name.startswith("on"), (page, tag, name)
                if name in ("href", "src"):
                    assert value.strip().lower().startswith(("https://", "http://", "mailto:")), (
                        value
                    )
        relative = page.relative_to(hostile_site).as_posix().removesuffix("index.html")
        page_graph(html, f"{BASE}/{relative}")  # one script, strict JSON, equal to extruct's


def test_json_ld_keeps_the_text_exactly(hostile_site):
    html = (hostile_site / "products" / "x" / "index.html").read_text(encoding="utf-8")
    graph = page_graph(html, f"{BASE}/products/x/")["@graph"]
    product = next(n for n in graph if n["@id"] == f"{BASE}/products/x/#product")
    assert product["name"] == HOSTILE and product["sku"] == HOSTILE
    assert (
        "</script" not in html.split('<script type="application/ld+json">')[1].split("</script>")[0]
    )
    whole = json.loads((hostile_site / "graph.jsonld").read_text(encoding="utf-8"))
    assert any(n.get("sku") == HOSTILE for n in whole["@graph"])


def test_faq_answer_keeps_only_googles_tags(hostile_site):
    html = (hostile_site / "faq" / "index.html").read_text(encoding="utf-8")
    faq_page = next(
        n for n in page_graph(html, f"{BASE}/faq/")["@graph"] if n.get("@type") == "FAQPage"
    )
    answer = faq_page["mainEntity"][0]["acceptedAnswer"]["text"]
    assert "<b>bold</b>" in answer and "<p>p</p>" in answer
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer
    assert "&lt;img src=x onerror=alert(2)&gt;" in answer
    assert "javascript:" not in answer.replace("](javascript:alert(3))", "")
    assert "<a rel=" in answer and "onclick" not in answer


def test_markdown_twins_and_llms_txt_keep_their_structure(hostile_site):
    markdown = MarkdownIt("commonmark")
    for twin in hostile_site.rglob("*.html.md"):
        tokens = markdown.parse(twin.read_text(encoding="utf-8"))
        inline = [c for t in tokens for c in (t.children or [])]
        assert not {t.type for t in tokens + inline} & {"html_block", "html_inline"}, twin
        assert [t.tag for t in tokens if t.type == "heading_open" and t.tag == "h1"] == ["h1"]
        for token in inline:
            if token.type == "link_open":
                assert token.attrs["href"].startswith("https://"), (twin, token.attrs)
    text = (hostile_site / "llms.txt").read_text(encoding="utf-8")
    parsed = llms_txt.parse_llms_file(text)
    assert list(parsed.sections) == ["About", "Products", "Optional"]
    assert [link["url"] for link in parsed.sections["Products"]] == [
        f"{BASE}/products/x/index.html.md"
    ]
    assert len(text.splitlines()[0]) > 2 and text.count("\n# ") == 0


def test_sitemap_and_robots_stay_well_formed(hostile_site):
    ElementTree.parse(hostile_site / "sitemap.xml")
    ElementTree.parse(hostile_site / "sitemaps" / "sitemap-1.xml")
    robots = (hostile_site / "robots.txt").read_text(encoding="utf-8")
    assert all(
        line.startswith(
            (
                "#",
                "User-agent:",
                "Allow:",
                "Disallow:",
                "Content-Signal:",
                "Content-Usage:",
                "Sitemap:",
            )
        )
        or not line
        for line in robots.splitlines()
    )


@pytest.mark.parametrize(
    "value",
    [
        {"name": "</script><script>alert(1)</script>", "x": "a & b < c > d \u2028\u2029"},
        {"gtin": 10**30, "name": "<!--"},  # an integer beyond 64 bits, which orjson refuses
    ],
)
def test_json_in_a_script_element_cannot_close_it_and_parses_back(value):
    from publishing.render.text import json_for_script

    text = str(json_for_script(value))
    assert not any(c in text for c in "<>&\u2028\u2029")
    assert json.loads(text) == value


@pytest.mark.parametrize(
    "base", ["https://evil.example", "https://茶.example/zh", "javascript:alert(1)"]
)
@pytest.mark.parametrize(
    "path",
    ["", "products/x/index.html.md", "products/龙井 (新)/index.html.md", "a)b]c<d>'\"%20/"],
)
def test_an_llms_link_made_from_the_sites_root_is_the_one_checked_whole(base, path):
    """llms.txt links each page's twin with the site root's link target and the page's
    encoded path (Builder.build_llms): the line is the one checking the whole URL makes."""
    from publishing.build import url_path
    from publishing.render.indexes import LlmsLink
    from publishing.render.text import link_target

    url = f"{base}/{url_path(path)}"
    root = link_target(f"{base}/")
    target = root and root + url_path(path)
    assert LlmsLink("T", url, "n", target).line() == LlmsLink("T", url, "n").line()
