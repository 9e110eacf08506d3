"""Hostile text in every editable field, proven harmless wherever it ends up.

One brand in two languages gets a string of attacks in every text field it has (its own
name; names, descriptions and the like of an organization, a product, a store and a person
in both languages; offer names, a store's address, a person's job title; a fact's statement,
value, unit and source title; an FAQ's question and answer). Every URL field is first given
``javascript:alert(1)``, which must be refused, then a legal URL. The brand is published once
for the module, then judged by parsers and a browser we did not write:

- every HTML page, parsed by html5lib: no element or attribute from the text, no ``on*``
  attribute, no ``javascript:`` href or src, one JSON-LD script;
- the JSON-LD of every page, parsed strictly: the attacks come back exactly, as data;
- every Markdown twin and llms file, parsed by markdown-it with HTML on: no HTML token, no
  link or image to anything but http(s) or a site path, no heading made by the text;
- headless Chromium loads every published page and every admin page a superuser opens on
  this data: no dialog opens, and the admin (served with its Content-Security-Policy)
  reports no violation of it.

(tests/test_publish_hostile_text.py proves the finer points of each escaping: FAQ answers
keep Google's tags, JSON in a script cannot close it, sitemaps and robots.txt stay valid.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from io import StringIO
from pathlib import Path

import html5lib
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from markdown_it import MarkdownIt

from kb.models import FAQ, Brand, Entity, Fact
from kb.services.brands import brand_create
from kb.services.entities import entity_create
from kb.services.errors import InvalidContent
from kb.services.statements import statement_create
from kb.services.workflow import object_publish
from publishing.models import Release

BASE = "https://hostile.example"
ATTACKS = (
    "<img src=x onerror=alert(1)>",
    '"><script>alert(2)</script>',
    "</script><script>alert(3)</script>",
    "javascript:alert(4)",
    "[x](javascript:alert(5))",
    '<a href="javascript:alert(6)">x</a>',
    "]]>",
    "{{7*7}}",
    "\u2028",
    "<!--",
    "<https://autolink.example/>",
)
# Every attack in one string, with a Markdown heading on a line of its own after it.
HOSTILE = " ".join(ATTACKS) + "\n# injected heading"
# A brand's name has at most 200 characters: most of the attacks.
BRAND_NAME = " ".join(a for a in ATTACKS if "alert(3)" not in a and "alert(4)" not in a) + (
    "\n# injected heading"
)
SHORT = "<b>1</b>]]>"  # for the fields of 50 characters (a fact's unit)
BAD_URL = "javascript:alert(1)"
SCRIPT_URLS = (BAD_URL, "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "data:text/html,x")
LANGUAGES = ["en", "zh-Hans"]
WEB = ("http://", "https://")


def ml(text: str = HOSTILE) -> list[dict]:
    """A text value in each of the brand's languages."""
    return [{"@value": f"{text}", "@language": language} for language in LANGUAGES]


def per_language(text: str = HOSTILE) -> dict[str, str]:
    return {language: text for language in LANGUAGES}


@dataclass(repr=False)
class Hostile:
    root: Path  # the published site
    brand: Brand
    ids: dict[str, int]  # entity, fact and FAQ primary keys by name
    release: Release
    artifacts: Path


def refused_then(create, url_field: str, legal: str, **kwargs):
    """``create`` with each script URL in ``url_field`` (refused, naming why), then legal."""
    for bad in SCRIPT_URLS:
        with pytest.raises((InvalidContent, ValidationError)) as refused:
            create(**{**kwargs, **{url_field: bad}})
        assert "http(s) URL" in str(refused.value) or "valid URL" in str(refused.value)
    return create(**{**kwargs, **{url_field: legal}})


def entity_with_urls(brand, types, iri, data, urls: dict[str, list]):
    """Create an entity; each URL property (a path into nested values, as a tuple) is first
    given a script URL, which must be refused with the validator's message."""
    for path, legal in urls.items():
        for bad in SCRIPT_URLS:
            trial = json.loads(json.dumps(data))
            set_path(trial, path, bad)
            with pytest.raises(InvalidContent) as refused:
                entity_create(brand=brand, types=types, iri=iri, data=trial)
            messages = [problem.message for problem in refused.value.problems]
            assert f"{bad!r} is not an http(s) URL" in messages, messages
        set_path(data, path, legal)
    return entity_create(brand=brand, types=types, iri=iri, data=data)


def set_path(data: dict, path: tuple, url: str) -> None:
    """``("offers", "url")``: the url of the (first) offer, as a reference."""
    node = data
    for key in path[:-1]:
        node = node[key][0]
    node[path[-1]] = [{"@id": url}]


def create_hostile_brand() -> tuple[Brand, dict[str, int]]:
    with pytest.raises(ValidationError):
        brand_create(slug="hostile", name=HOSTILE, base_url=BAD_URL, languages=LANGUAGES)
    with pytest.raises(ValidationError):
        brand_create(slug="hostile", name=HOSTILE, base_url="ftp://x.example", languages=["en"])
    brand = brand_create(slug="hostile", name=BRAND_NAME, base_url=BASE, languages=LANGUAGES)
    text = {
        "name": ml(),
        "description": ml(),
        "alternateName": ml(),
        "disambiguatingDescription": ml(),
    }
    organization = entity_with_urls(
        brand,
        ["Organization"],
        f"{BASE}/#organization",
        {
            **text,
            "slogan": ml(),
            "address": [
                {
                    "@type": ["PostalAddress"],
                    "streetAddress": ml(),
                    "addressLocality": ml(),
                    "postalCode": [{"@value": "310000"}],
                }
            ],
        },
        {
            ("url",): f"{BASE}/",
            ("logo",): f"{BASE}/logo.png",
            ("sameAs",): "https://social.example/hostile",
        },
    )
    product = entity_with_urls(
        brand,
        ["Product"],
        f"{BASE}/products/tea/#product",
        {
            **text,
            "sku": [{"@value": HOSTILE}],
            "brand": [{"@id": organization.iri}],
            "additionalProperty": [
                {"@type": ["PropertyValue"], "name": ml(), "value": [{"@value": HOSTILE}]}
            ],
            "offers": [
                {
                    "@type": ["Offer"],
                    "name": ml(),
                    "price": [{"@value": "9.50"}],
                    "priceCurrency": [{"@value": "USD"}],
                    "availability": [{"@id": "https://schema.org/InStock"}],
                }
            ],
        },
        {
            ("image",): f"{BASE}/img/tea.jpg",
            ("url",): f"{BASE}/products/tea/",
            ("offers", "url"): f"{BASE}/shop/tea",
        },
    )
    store = entity_with_urls(
        brand,
        ["Store"],
        f"{BASE}/stores/one/#store",
        {
            **text,
            "telephone": [{"@value": HOSTILE}],
            "address": [
                {
                    "@type": ["PostalAddress"],
                    "streetAddress": ml(),
                    "addressLocality": ml(),
                    "addressRegion": ml(),
                    "addressCountry": [{"@value": "CN"}],
                }
            ],
        },
        {("hasMap",): "https://maps.example/one", ("image",): f"{BASE}/img/store.jpg"},
    )
    person = entity_with_urls(
        brand,
        ["Person"],
        f"{BASE}/people/someone/#person",
        {**text, "jobTitle": ml(), "worksFor": [{"@id": organization.iri}]},
        {("sameAs",): "https://social.example/someone"},
    )

    def fact(**fields):
        return statement_create(model=Fact, brand=brand, **fields)

    statement = refused_then(
        fact,
        "source_url",
        "https://source.example/report_(2026)",
        key="hostile",
        about=product,
        statement=per_language(),
        value=HOSTILE[:200],
        unit=SHORT,
        source_title=per_language(),
        as_of=date(2026, 1, 1),
    )
    faq = statement_create(
        model=FAQ,
        brand=brand,
        key="hostile",
        about=product,
        question=per_language(),
        answer=per_language(HOSTILE + ' <p onclick="alert(7)">p</p>'),
        order=1,
    )
    for obj in (organization, product, store, person, statement, faq):
        object_publish(obj=obj)
    ids = {
        "organization": organization.pk,
        "product": product.pk,
        "store": store.pk,
        "person": person.pk,
        "fact": statement.pk,
        "faq": faq.pk,
    }
    return brand, ids


@pytest.fixture(scope="module")
def hostile(django_db_setup, django_db_blocker, tmp_path_factory):
    """The brand, created and published once for the module (the test database is emptied
    again afterwards, as a transactional test would)."""
    artifacts = tmp_path_factory.mktemp("hostile-artifacts")
    out = tmp_path_factory.mktemp("hostile-site")
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(artifacts)},
        },
    }
    from config.celery import app

    eager = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    try:
        with override_settings(STORAGES=storages), django_db_blocker.unblock():
            brand, ids = create_hostile_brand()
            call_command("publish", "hostile", "--out", str(out), stdout=StringIO())
            release = Release.objects.get(brand=brand)
        yield Hostile(out / "current", brand, ids, release, artifacts)
    finally:
        app.conf.update(task_always_eager=eager[0], task_eager_propagates=eager[1])
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def artifact_store(settings, hostile):
    """This module's tests read the module's release: its artifacts stay where they are."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(hostile.artifacts)},
        },
    }
    return hostile.artifacts


# --- the published HTML ---------------------------------------------------------------------

XHTML = "{http://www.w3.org/1999/xhtml}"


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_every_page_is_published_in_both_languages(hostile):
    pages = [p.relative_to(hostile.root).as_posix() for p in html_pages(hostile.root)]
    for kind in ("products/", "stores/", "people/", "faq/", "facts/"):
        assert any(p.startswith(kind) for p in pages), (kind, pages)
        assert any(p.startswith(f"zh-Hans/{kind}") for p in pages), (kind, pages)


def test_html_holds_nothing_from_the_text(hostile):
    legal_images = {f"{BASE}/img/tea.jpg", f"{BASE}/img/store.jpg"}
    for page in html_pages(hostile.root):
        tree = html5lib.parse(page.read_bytes(), treebuilder="etree", namespaceHTMLElements=True)
        scripts = []
        for element in tree.iter():
            if not isinstance(element.tag, str):  # a comment: none are published
                raise AssertionError((page, "comment", element.text))
            tag = element.tag.removeprefix(XHTML)
            assert tag not in {"iframe", "object", "embed", "svg", "math", "form", "base"}, (
                page,
                tag,
            )
            if tag == "script":
                scripts.append(element)
            if tag == "img":
                assert element.get("src") in legal_images, (page, element.attrib)
            for name, value in element.attrib.items():
                assert not name.lower().startswith("on"), (page, tag, name)
                if name in ("href", "src", "action", "formaction"):
                    assert value.startswith(WEB), (page, tag, name, value)
                    assert "javascript:" not in value.lower(), (page, value)
        assert [s.attrib for s in scripts] == [{"type": "application/ld+json"}], page
        graph = strict_json(scripts[0].text)
        assert graph["@context"] == "https://schema.org"


def strict_json(text: str):
    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    return json.loads(text, parse_constant=no_constants, object_pairs_hook=no_duplicates)


def page_graph(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    script = text.split('<script type="application/ld+json">', 1)[1].split("</script>", 1)[0]
    assert not {"<", ">", "\u2028"} & set(script)  # escaped inside the script element
    return strict_json(script)["@graph"]


def values(node, key):
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found += v if isinstance(v, list) else [v]
            found += values(v, key)
    elif isinstance(node, list):
        for item in node:
            found += values(item, key)
    return found


def test_json_ld_carries_the_attacks_exactly_as_data(hostile):
    home = page_graph(hostile.root / "index.html")
    website = next(n for n in home if n.get("@type") == "WebSite")
    assert website["name"] == BRAND_NAME  # the brand's own name
    organization = next(n for n in home if n["@id"] == f"{BASE}/#organization")
    assert organization["name"] == HOSTILE and organization["slogan"] == HOSTILE
    assert organization["address"]["streetAddress"] == HOSTILE
    assert organization["logo"] == f"{BASE}/logo.png"
    assert organization["sameAs"] == "https://social.example/hostile"
    products = sorted((hostile.root / "products").rglob("index.html"))
    product_page = next(p for p in products if p.parent.name != "products")
    product = next(n for n in page_graph(product_page) if n.get("@type") == "Product")
    assert product["name"] == HOSTILE and product["sku"] == HOSTILE
    assert product["offers"]["name"] == HOSTILE
    assert product["offers"]["url"] == f"{BASE}/shop/tea"
    assert product["additionalProperty"]["value"] == HOSTILE
    zh = sorted((hostile.root / "zh-Hans" / "people").rglob("index.html"))
    person = next(
        n
        for p in zh
        if p.parent.name != "people"
        for n in page_graph(p)
        if n.get("@type") == "Person"
    )
    assert person["jobTitle"] == HOSTILE and person["name"] == HOSTILE
    claims = [
        n for n in page_graph(hostile.root / "facts" / "index.html") if n.get("@type") == "Claim"
    ]
    assert claims[0]["text"] == HOSTILE and claims[0]["citation"]["name"] == HOSTILE
    faq = next(
        n for n in page_graph(hostile.root / "faq" / "index.html") if n.get("@type") == "FAQPage"
    )
    assert faq["mainEntity"][0]["name"] == HOSTILE
    whole = strict_json((hostile.root / "graph.jsonld").read_text(encoding="utf-8"))
    assert HOSTILE in values(whole, "@value") + values(whole, "name")
    # No URL anywhere in the JSON-LD is a script.
    for site_page in html_pages(hostile.root):
        for node in page_graph(site_page):
            for key in ("url", "sameAs", "logo", "image", "item", "contentUrl", "hasMap"):
                for url in values(node, key):
                    if isinstance(url, str):
                        assert url.startswith(WEB), (site_page, key, url)


# --- Markdown twins and llms files ----------------------------------------------------------


def markdown_files(site: Path) -> list[Path]:
    files = sorted(site.rglob("*.html.md")) + sorted(site.rglob("llms*.txt"))
    assert {"llms.txt", "llms-full.txt"} <= {f.name for f in files}
    assert (site / "zh-Hans" / "llms.txt").exists() and (
        site / "zh-Hans" / "llms-full.txt"
    ).exists()
    return files


def test_markdown_and_llms_files_hold_no_markup_and_no_unsafe_link(hostile):
    parser = MarkdownIt("commonmark", {"html": True})
    for path in markdown_files(hostile.root):
        text = path.read_text(encoding="utf-8")
        tokens = parser.parse(text)
        every = [*tokens, *(c for t in tokens for c in (t.children or []))]
        assert not {t.type for t in every} & {"html_block", "html_inline"}, path
        for token in every:
            if token.type == "link_open":
                href = token.attrs["href"]
                assert href.startswith(WEB) or (href.startswith("/") and href[1:2] != "/"), (
                    path,
                    href,
                )
                assert token.markup != "autolink", (path, href)
            if token.type == "image":
                assert token.attrs["src"].startswith(WEB), (path, token.attrs)
        # The text's "# injected heading" stays inside the line it came in: no heading of
        # its own.
        assert "\n# injected heading" not in text, path
        for i, token in enumerate(tokens):
            if token.type == "heading_open":
                assert not tokens[i + 1].content.startswith("injected heading"), path
        # Rendered as HTML, the attacks are text (escaped), never elements or attributes.
        rendered = parser.render(text)
        for element in html5lib.parse(rendered, treebuilder="etree").iter():
            tag = str(element.tag).removeprefix(XHTML)
            assert tag not in {"script", "iframe", "svg", "object"}, (path, tag)
            assert not any(name.startswith("on") for name in element.attrib), (path, tag)
            if tag == "img":
                assert element.get("src", "").startswith(WEB), (path, element.attrib)
        assert "&lt;img src=x onerror=alert(1)&gt;" in rendered, path


# --- in a browser: published pages and the admin --------------------------------------------

WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Watcher:
    """Counts the dialogs and CSP violations of every page a browser context opens."""

    def __init__(self, context, local: str):
        self.dialogs: list[str] = []
        self.violations: list[str] = []
        context.add_init_script(WATCH_CSP)
        # Nothing leaves the machine: only the live server and published files load.
        context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith((local, "file://", "data:"))
                else route.abort()
            ),
        )
        self.page = context.new_page()
        self.page.on("dialog", self.dialog)
        self.page.on("console", self.console)

    def dialog(self, dialog) -> None:
        self.dialogs.append(f"{self.page.url}: {dialog.message}")
        dialog.dismiss()

    def console(self, message) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.violations.append(f"{self.page.url}: {message.text}")

    def visit(self, url: str):
        response = self.page.goto(url)
        self.page.wait_for_load_state("load")
        self.violations += [f"{url}: {v}" for v in self.page.evaluate("window.__csp || []")]
        # No element the text would have made, whatever the browser did with it.
        injected = self.page.evaluate(
            """() => [...document.querySelectorAll('*')].filter((e) =>
                 [...e.attributes].some((a) => a.name.startsWith('on')
                   || /^\\s*javascript:/i.test(a.value))
                 || (e.tagName === 'IMG' && e.getAttribute('src') === 'x')
                 || (e.tagName === 'SCRIPT' && e.type !== 'application/ld+json'
                     && /alert/.test(e.textContent))
               ).map((e) => e.outerHTML.slice(0, 120))"""
        )
        assert injected == [], (url, injected)
        return response


def admin_pages(hostile: Hostile) -> list[str]:
    ids, brand = hostile.ids, hostile.brand
    pages = [
        reverse("admin:index"),
        reverse("admin:kb_brand_changelist"),
        reverse("admin:kb_brand_change", args=[brand.pk]),
        reverse("admin:kb_entity_changelist"),
        reverse("admin:kb_fact_changelist"),
        reverse("admin:kb_fact_change", args=[ids["fact"]]),
        reverse("admin:kb_faq_changelist"),
        reverse("admin:kb_faq_change", args=[ids["faq"]]),
        reverse("admin:kb_revision_changelist"),
        reverse("admin:kb_auditentry_changelist"),
        reverse("admin:publishing_release_changelist"),
        reverse("admin:publishing_release_change", args=[hostile.release.pk]),
        reverse("admin:publishing_brand_dashboard", args=[brand.pk]),
        reverse("admin:publishing_entity_preview", args=[ids["product"], "en"]),
        reverse("admin:visibility_dashboard_index"),
        reverse("admin:visibility_dashboard", args=[brand.pk]),
    ]
    for name in ("organization", "product", "store", "person"):
        pages.append(reverse("admin:kb_entity_change", args=[ids[name]]))
    entity = Entity.objects.get(pk=ids["product"])
    pages.append(reverse("admin:kb_revision_change", args=[entity.latest_revision_id]))
    return pages


def test_no_script_runs_in_the_published_pages_or_the_admin(
    browser, hostile, live_server, settings
):
    get_user_model().objects.create_superuser("root", password="root-pass-123")
    base = live_server.url
    context = browser.new_context()
    watch = Watcher(context, base)

    # The published site as a browser reads it, with no policy to help: nothing runs.
    for page in html_pages(hostile.root):
        watch.visit(page.as_uri())
    assert watch.dialogs == []

    # The admin: every page served with the policy, and nothing violates it.
    watch.visit(f"{base}/admin/login/")
    watch.page.fill("#id_username", "root")
    watch.page.fill("#id_password", "root-pass-123")
    with watch.page.expect_navigation():
        watch.page.click("input[type=submit]")
    opened = []
    for path in admin_pages(hostile):
        response = watch.visit(base + path)
        assert response.status == 200, (path, response.status)
        policy = response.headers.get("content-security-policy", "")
        assert (
            "script-src 'self'" in policy
            and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        ), (path, policy)
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        opened.append(path)
        if "/kb/entity/" in path and path.endswith("/change/"):
            # The brand's name is in the "Most used" description: shown as text.
            assert BRAND_NAME.split("\n")[0] in watch.page.inner_text("#content")
    assert len(opened) == len(admin_pages(hostile))
    assert watch.dialogs == [], watch.dialogs
    assert watch.violations == [], watch.violations

    # The API docs keep the same policy and still work (Swagger UI's setup is a file).
    response = watch.visit(f"{base}/api/docs/")
    assert "script-src 'self';" in response.headers["content-security-policy"] + ";"
    watch.page.wait_for_selector(".swagger-ui .info", timeout=15000)
    assert watch.violations == [], watch.violations
    context.close()
