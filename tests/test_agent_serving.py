"""What agents get from the published site: a page's Markdown twin when they ask for
``text/markdown``, with a token estimate, and the brand's AI-use preferences in robots.txt
(Python's robots.txt parser reads the access rules) and in the Content-Usage header.

nginx (Debian's, with deploy/nginx/sourcebook.conf and sourcebook.js in njs, its workers as
www-data) and the development server (publishing.views.published_site) get the same
requests and must answer alike, byte for byte.
"""

import os
import pwd
import shutil
import subprocess
import urllib.error
import urllib.request
import urllib.robotparser
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from kb.demo_brand import demo_load
from kb.models import Brand
from kb.services.brands import membership_grant
from publishing.ai_use import AiUsePolicy, SectionUse, content_usage_for, content_usage_rules
from publishing.models import SectionAiUse, SiteSettings
from publishing.views import markdown_tokens
from tests.test_production_stack import (
    NGINX_USER,
    REQUIRED,
    free_port,
    nginx_config,
    serving_root,
    wait_for,
    worker_uids,
)

pytestmark = pytest.mark.django_db

BASE = "https://www.westlakeleaf.example"
CHROME = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"

# Accept headers, and whether the page's Markdown twin answers them.
NEGOTIATION = [
    (None, False),
    ("*/*", False),
    (CHROME, False),
    ("text/markdown", True),
    ("text/markdown, text/html;q=0.9", True),
    ("text/html, text/markdown", False),  # alike: the page's own HTML first
    ("text/markdown, text/html", True),  # alike: the client's order
    ("text/markdown;q=0.5, text/html;q=0.4", True),
    ("text/markdown;q=0, */*", False),  # q=0: not acceptable
    ("text/*", False),
    ("application/json, text/markdown;q=0.1", True),
    ("text/html;q=0.2, text/plain, text/markdown;q=0.3", True),
    ("text/markdown;q=1.5, text/html;q=0.9", True),  # a quality out of range counts as 1
    ("text/markdown;charset=utf-8;q=0.8, text/html;q=0.8", True),  # more specific first
    ('text/markdown; charset="utf-8"', True),
    ("text/markdown;charset=latin1, text/html;q=0.5", False),  # a charset we do not serve
    ("text/markdown;charset=latin1, text/*;q=0.9, text/html;q=0.5", True),  # by text/*
    ("text/markdown;q=0.4, text/*;q=0.9, text/html;q=0.3", True),  # the most specific decides
    ("TEXT/Markdown", True),
    ("text/markdown;q=, text/html;q=0.9", True),  # an empty quality counts as 1
    ("text", False),
]


def publish(out: Path) -> None:
    call_command("publish", "westlake-leaf", "--out", str(out), stdout=StringIO())


def demo_with_preferences() -> Brand:
    """The demo brand keeping AI training out of the site but inviting it to its facts, and
    keeping its people's pages out of search."""
    demo_load()
    brand = Brand.objects.get(slug="westlake-leaf")
    site_settings, _ = SiteSettings.objects.update_or_create(
        brand=brand, defaults={"allow_ai_training": False, "allow_ai_input": True}
    )
    SectionAiUse.objects.create(site_settings=site_settings, section="facts", ai_train="yes")
    SectionAiUse.objects.create(site_settings=site_settings, section="people", search="no")
    return brand


def test_markdown_tokens_estimate_a_quarter_per_ascii_character_and_one_per_other():
    assert markdown_tokens(b"") == 0
    assert markdown_tokens(b"abcd") == 1
    assert markdown_tokens(b"abcde") == 2
    assert markdown_tokens("碧螺春".encode()) == 3
    assert markdown_tokens("# 碧螺春 tea\n".encode()) == 3 + 2  # "# ", " tea\n": 7 ASCII


def test_content_usage_rules_are_read_from_the_star_group_longest_path_first():
    robots = "\n".join(
        [
            "User-agent: GPTBot",
            "Content-Usage: train-ai=y",  # another group's: not the header's
            "Disallow: /",
            "",
            "User-agent: Bingbot",
            "User-agent: *",
            "Content-Usage: train-ai=n, search=y  # the site",
            "Content-Usage: /people/ train-ai=n, search=n",
            "Content-Usage: /people/staff/ train-ai=y, search=n",
            "Allow: /",
        ]
    )
    rules = content_usage_rules(robots)
    assert rules == [
        ("", "train-ai=n, search=y"),
        ("/people/", "train-ai=n, search=n"),
        ("/people/staff/", "train-ai=y, search=n"),
    ]
    assert content_usage_for(rules, "/") == "train-ai=n, search=y"
    assert content_usage_for(rules, "/people") == "train-ai=n, search=y"
    assert content_usage_for(rules, "/people/lin/") == "train-ai=n, search=n"
    assert content_usage_for(rules, "/people/staff/a/") == "train-ai=y, search=n"
    assert content_usage_for([], "/") == ""


def test_robots_txt_states_the_preferences_in_every_group_and_access_follows_them(tmp_path):
    brand = demo_with_preferences()
    publish(tmp_path / "site")
    robots_text = (tmp_path / "site" / "current" / "robots.txt").read_text(encoding="utf-8")
    preferences = [
        "Content-Signal: search=yes, ai-input=yes, ai-train=no",
        "Content-Usage: train-ai=n, search=y",
        "Content-Usage: /facts/ train-ai=y, search=y",
        "Content-Usage: /zh-Hans/facts/ train-ai=y, search=y",
        "Content-Usage: /people/ train-ai=n, search=n",
        "Content-Usage: /zh-Hans/people/ train-ai=n, search=n",
    ]
    groups = robots_text.split("\n\n")
    star = next(g for g in groups if g.startswith("User-agent: *"))
    assert star.splitlines() == ["User-agent: *", *preferences, "Allow: /"]
    training = next(g for g in groups if "User-agent: GPTBot" in g).splitlines()
    assert training[-len(preferences) - 3 :] == [
        *preferences,
        "Allow: /facts/",
        "Allow: /zh-Hans/facts/",
        "Disallow: /",
    ]
    searching = next(g for g in groups if "User-agent: OAI-SearchBot" in g).splitlines()
    assert searching[-len(preferences) - 3 :] == [
        *preferences,
        "Disallow: /people/",
        "Disallow: /zh-Hans/people/",
        "Allow: /",
    ]

    robots = urllib.robotparser.RobotFileParser()
    robots.parse(robots_text.splitlines())
    person = a_person(tmp_path / "site" / "current")
    for agent in ("GPTBot", "ClaudeBot", "CCBot", "Google-Extended"):
        assert not robots.can_fetch(agent, f"{BASE}/products/biluochun/"), agent
        assert robots.can_fetch(agent, f"{BASE}/facts/"), agent
        assert robots.can_fetch(agent, f"{BASE}/zh-Hans/facts/"), agent
        assert not robots.can_fetch(agent, f"{BASE}/people/{person}/"), agent
    for agent in ("OAI-SearchBot", "PerplexityBot", "Claude-SearchBot", "Googlebot"):
        assert robots.can_fetch(agent, f"{BASE}/products/biluochun/"), agent
        assert not robots.can_fetch(agent, f"{BASE}/people/{person}/"), agent
        assert not robots.can_fetch(agent, f"{BASE}/zh-Hans/people/{person}/"), agent
    assert robots.can_fetch("SomeOtherBot", f"{BASE}/people/{person}/")

    # A change of policy alone is published: the next release's robots.txt follows it.
    SiteSettings.objects.filter(brand=brand).update(allow_ai_training=True, allow_ai_input=False)
    SectionAiUse.objects.filter(section="facts").update(ai_train="no")
    publish(tmp_path / "site")
    robots_text = (tmp_path / "site" / "current" / "robots.txt").read_text(encoding="utf-8")
    assert "Content-Signal: search=yes, ai-input=no, ai-train=yes\n" in robots_text
    assert "Content-Usage: /facts/ train-ai=n, search=y\n" in robots_text
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(robots_text.splitlines())
    assert robots.can_fetch("GPTBot", f"{BASE}/products/biluochun/")
    assert not robots.can_fetch("GPTBot", f"{BASE}/facts/")


def test_policy_lines_for_sections_only_where_a_section_differs():
    policy = AiUsePolicy(
        ai_train=True,
        ai_input=False,
        sections=(SectionUse("faq"), SectionUse("stores", search=False)),
    )
    assert policy.signal() == "search=yes, ai-input=no, ai-train=yes"
    assert policy.usage() == "train-ai=y, search=y"
    assert [(path, policy.usage(use)) for path, use in policy.section_paths(["", "zh-Hans/"])] == [
        ("/stores/", "train-ai=y, search=n"),
        ("/zh-Hans/stores/", "train-ai=y, search=n"),
    ]


def a_person(live: Path) -> str:
    """The slug of a person's page."""
    return next(path.name for path in sorted((live / "people").iterdir()) if path.is_dir())


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        if REQUIRED:
            pytest.fail("nginx is not installed (apt-get install nginx libnginx-mod-http-js)")
        pytest.skip("nginx is not installed (apt-get install nginx libnginx-mod-http-js)")
    return nginx


def dev_server_fetch(client: Client, path: str, accept: str | None):
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = client.get(path, **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, dict(response.headers), body


def test_nginx_and_the_development_server_serve_agents_alike(tmp_path, settings):
    nginx = nginx_binary()
    demo_with_preferences()
    srv = serving_root()
    site = srv / "site"
    publish(site)
    live = site / "current"
    settings.SOURCEBOOK_SERVE_SITE = str(live)
    client = Client()
    port = free_port()
    (srv / "nginx").mkdir()
    config = nginx_config(tmp_path, srv / "nginx", site, free_port(), port)
    server = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    person = a_person(live)
    try:
        wait_for(f"{base}/robots.txt")
        expected = pwd.getpwnam(NGINX_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        assert set(worker_uids(server.pid)) == {expected}

        pages = ["/", "/products/biluochun/", "/zh-Hans/products/biluochun/",
                 f"/people/{person}/", "/zh-Hans/facts/"]  # fmt: skip
        for path in pages:
            html = live / path.lstrip("/") / "index.html"
            twin = html.with_name("index.html.md")
            for accept, markdown in NEGOTIATION:
                file = twin if markdown else html
                answers = {
                    "nginx": fetch(base + path, {"Accept": accept} if accept else {}),
                    "dev": dev_server_fetch(client, path, accept),
                }
                for server_name, (status, headers, body) in answers.items():
                    where = (server_name, path, accept)
                    assert status == 200, where
                    assert body == file.read_bytes(), where
                    media_type = "text/markdown" if markdown else "text/html"
                    assert headers["Content-Type"] == f"{media_type}; charset=utf-8", where
                    assert "Accept" in vary(headers), where
                    if markdown:
                        tokens = markdown_tokens(twin.read_bytes())
                        assert headers["x-markdown-tokens"] == str(tokens), where
                    else:
                        assert "x-markdown-tokens" not in headers, where
                        assert headers["Link"] == (
                            f'<{path}index.html.md>; rel="alternate"; type="text/markdown", '
                            '</llms.txt>; rel="describedby"'
                        ), where

        # The twin at its own URL: the same bytes and estimate, and no Vary: Accept.
        for path in ("/products/biluochun/index.html.md", "/zh-Hans/index.html.md"):
            file = live / path.lstrip("/")
            for answer in (fetch(base + path), dev_server_fetch(client, path, None)):
                status, headers, body = answer
                assert (status, body) == (200, file.read_bytes()), path
                assert headers["x-markdown-tokens"] == str(markdown_tokens(body)), path
                assert "Accept" not in vary(headers), path

        # The Content-Usage header: the site's, or the section's, as robots.txt states them.
        usage = {
            "/": "train-ai=n, search=y",
            "/robots.txt": "train-ai=n, search=y",
            "/llms.txt": "train-ai=n, search=y",
            "/products/biluochun/": "train-ai=n, search=y",
            "/products/biluochun/index.html.md": "train-ai=n, search=y",
            "/facts/": "train-ai=y, search=y",
            "/zh-Hans/facts/": "train-ai=y, search=y",
            f"/people/{person}/": "train-ai=n, search=n",
            f"/zh-Hans/people/{person}/index.html.md": "train-ai=n, search=n",
        }
        for path, value in usage.items():
            _, headers, _ = fetch(base + path)
            assert headers["Content-Usage"] == value, ("nginx", path)
            _, headers, _ = dev_server_fetch(client, path, None)
            assert headers["Content-Usage"] == value, ("dev", path)
        # Negotiated too, on the twin served at the page's URL.
        _, headers, _ = fetch(f"{base}/people/{person}/", {"Accept": "text/markdown"})
        assert headers["Content-Usage"] == "train-ai=n, search=n"
        status, _, _ = fetch(f"{base}/no/such/page/", {"Accept": "text/markdown"})
        assert status == 404

        # The product feeds at their stable URLs, typed, as published (a gzip file is not
        # compressed again on the way).
        feeds = {
            "/feeds/openai/us-en.jsonl.gz": "application/gzip",
            "/feeds/google/eu-zh-hans.tsv": "text/tab-separated-values; charset=utf-8",
        }
        for path, content_type in feeds.items():
            file = live / path.lstrip("/")
            asked = {"Accept-Encoding": "gzip"}
            for status, headers, body in (fetch(base + path), dev_server_fetch(client, path, None)):
                assert (status, headers["Content-Type"], body) == (
                    200,
                    content_type,
                    file.read_bytes(),
                )
            _, headers, body = fetch(base + path, asked)
            if path.endswith(".gz"):
                assert "Content-Encoding" not in headers and body == file.read_bytes()
            assert headers["Cache-Control"] == "public, max-age=3600"
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(srv, ignore_errors=True)


def fetch(url: str, headers: dict | None = None):
    """Status, headers (those sent several times, as Vary is, joined) and body."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        response = urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        joined = {name: ", ".join(response.headers.get_all(name)) for name in response.headers}
        return response.status, joined, response.read()


def vary(headers: dict) -> list[str]:
    """Every name the Vary headers list."""
    return [name.strip() for name in headers.get("Vary", "").split(",") if name.strip()]


def settings_form(site_settings: SiteSettings, **changes) -> dict:
    """The site settings' change form as the admin shows it, with ``changes``."""
    data = {
        "brand": site_settings.brand_id,
        "allow_ai_input": "on",
        "keep_releases": site_settings.keep_releases,
        "keep_deployed_days": site_settings.keep_deployed_days,
        "section_ai_uses-TOTAL_FORMS": "1",
        "section_ai_uses-INITIAL_FORMS": "0",
        "section_ai_uses-0-section": "people",
        "section_ai_uses-0-search": "no",
        "section_ai_uses-0-ai_train": "",
    }
    data.update(changes)
    return data


def test_a_brand_admin_sets_section_preferences_in_the_admin_and_an_editor_cannot(
    tmp_path, django_user_model
):
    demo_load()
    brand = Brand.objects.get(slug="westlake-leaf")
    site_settings, _ = SiteSettings.objects.get_or_create(brand=brand)
    url = f"/admin/publishing/sitesettings/{site_settings.pk}/change/"
    users = {}
    for role in ("editor", "admin"):
        users[role] = django_user_model.objects.create_user(f"{role}-user", is_staff=True)
        membership_grant(brand=brand, user=users[role], role=role)

    editor = Client()
    editor.force_login(users["editor"])
    page = editor.get(url)
    assert page.status_code == 200
    assert 'name="section_ai_uses-0-section"' not in page.content.decode()  # read only
    assert editor.post(url, settings_form(site_settings)).status_code == 403
    assert not SectionAiUse.objects.exists()

    admin_client = Client()
    admin_client.force_login(users["admin"])
    page = admin_client.get(url).content.decode()
    assert "Sections with their own AI-use preferences" in page
    assert 'name="section_ai_uses-__prefix__-section"' in page
    # A section named twice is refused, with the reason, and nothing is saved.
    twice = settings_form(
        site_settings,
        **{
            "section_ai_uses-TOTAL_FORMS": "2",
            "section_ai_uses-1-section": "people",
            "section_ai_uses-1-ai_train": "yes",
        },
    )
    refused = admin_client.post(url, twice)
    assert refused.status_code == 200
    assert "Please correct the duplicate data for section" in refused.content.decode()
    assert not SectionAiUse.objects.exists()

    saved = admin_client.post(url, settings_form(site_settings))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert list(SectionAiUse.objects.values_list("section", "search", "ai_train")) == [
        ("people", "no", "")
    ]
    publish(tmp_path / "site")
    robots = (tmp_path / "site" / "current" / "robots.txt").read_text(encoding="utf-8")
    assert "Content-Usage: /people/ train-ai=n, search=n\n" in robots
    assert "Disallow: /zh-Hans/people/\n" in robots
