"""The brand's answer endpoint: NLWeb's /ask and MCP's /mcp over the published release.

The demo brand is published to a directory; each answer's URL must be a page of that
release, and its schema_object the very node that page's JSON-LD holds (read by extruct).
/ask is asked through Django's test client and the development server's URL; /mcp is served
by ``manage.py serve_mcp`` in a process of its own and called by the official MCP SDK's client.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from io import StringIO
from pathlib import Path

import extruct
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from mcp import Client as McpClient

from kb.demo_brand import demo_load
from kb.models import Brand, Entity
from kb.services.entities import entity_update
from publishing.answers import query_terms
from publishing.models import SiteSettings
from tests.test_agent_serving import nginx_binary
from tests.test_celery_and_settings import database_url_for_tests
from tests.test_production_stack import (
    NGINX_USER,
    free_port,
    nginx_config,
    serving_root,
    wait_for,
    worker_uids,
)
from visibility.models import CrawlerHit, Engine
from visibility.scripted_engine import DemoScript, ScriptedEngine

BASE = "https://www.westlakeleaf.example"
GAIWAN = f"{BASE}/products/celadon-gaiwan-set/"


@pytest.fixture
def site(db, tmp_path, settings) -> Path:
    """The demo brand, its answer endpoint on, published: the live tree's directory."""
    settings.SOURCEBOOK_ASK_RATE = "1000/minute"
    cache.clear()
    demo_load()
    publish(tmp_path / "site")
    return tmp_path / "site" / "current"


def publish(out: Path) -> None:
    call_command("publish", "westlake-leaf", "--out", str(out), stdout=StringIO())


def ask(client: Client | None = None, **params) -> dict:
    params = {"site": "westlake-leaf", "streaming": "false", **params}
    response = (client or Client()).get("/ask", params)
    assert response.status_code == 200, response.content
    return response.json()


def published_node(site: Path, url: str, iri: str) -> dict:
    """The node ``iri`` of the page at ``url`` in the published release (extruct's reading)."""
    assert url.startswith(f"{BASE}/"), url
    page = site / url[len(BASE) + 1 :].split("#", 1)[0] / "index.html"
    assert page.is_file(), f"{url} is not a page of the release"
    data = extruct.extract(page.read_text(encoding="utf-8"), syntaxes=["json-ld"])["json-ld"]
    nodes = {}

    def walk(value):
        if isinstance(value, dict):
            if "@id" in value and len(value) > 1:
                nodes.setdefault(value["@id"], value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(data)
    return nodes[iri]


def assert_published(site: Path, results: list[dict]) -> None:
    for result in results:
        node = dict(result["schema_object"])
        assert node.pop("@context") == "https://schema.org"
        assert published_node(site, result["url"], node["@id"]) == node
        assert result["site"] == "westlake-leaf"
        assert 0 < result["score"] <= 100


def test_query_terms_keep_what_names_things_in_english_and_chinese():
    assert query_terms("Which Longjing teas do you sell?") == ["longjing", "teas"]
    assert query_terms("ＷＬＬ－００１ in stock?") == ["wll-001", "stock"]
    # Chinese: overlapping pairs, without the ones that only ask (多少).
    assert query_terms("西湖龙井多少钱") == ["西湖", "湖龙", "龙井", "井多", "少钱"]
    assert query_terms("龙井 tea") == ["龙井", "tea"]
    assert query_terms("what is it?") == []


def test_ask_lists_published_pages_in_both_languages(site):
    english = ask(query="What is a gaiwan?")
    assert english["language"] == "en" and english["mode"] == "list"
    assert [r["url"] for r in english["results"][:3]] == [
        f"{GAIWAN}#faq-gaiwan",
        GAIWAN,
        f"{GAIWAN}#fact-celadon-firing",
    ]
    assert english["results"][0]["name"] == "What is a gaiwan?"
    assert english["results"][0]["score"] == 100
    assert english["results"][1]["schema_object"]["@type"] == "Product"
    assert_published(site, english["results"])

    chinese = ask(query="西湖龙井是什么？")
    assert chinese["language"] == "zh-Hans"
    assert chinese["results"][0]["url"] == f"{BASE}/zh-Hans/faq/#faq-what-is-longjing"
    assert chinese["results"][0]["name"] == "什么是西湖龙井？"
    assert all(r["url"].startswith(f"{BASE}/zh-Hans/") for r in chinese["results"])
    assert_published(site, chinese["results"])

    # lang= chooses the language (a prefix names the brand's own tag); the question's words
    # are looked for in the text published in that language.
    asked = ask(query="青瓷盖碗", lang="zh", limit="1")
    assert asked["language"] == "zh-Hans"
    assert [r["url"] for r in asked["results"]] == [f"{BASE}/zh-Hans/products/celadon-gaiwan-set/"]
    assert asked["results"][0]["name"] == "龙泉青瓷盖碗套装"
    assert ask(query="青瓷盖碗", lang="en")["results"] == []


def test_ask_answers_from_the_release_not_the_working_copy(site, tmp_path):
    entity = Entity.objects.get(iri=f"{GAIWAN}#product")
    data = json.loads(json.dumps(entity.data))
    data["name"] = [
        {**value, "@value": "Moonglaze Gaiwan Set"} if value.get("@language") == "en" else value
        for value in data["name"]
    ]
    entity_update(entity=entity, data=data, expected_version=entity.version)
    # A draft's words find nothing, and nothing shows them.
    assert ask(query="moonglaze")["results"] == []
    shown = ask(query="celadon gaiwan set")["results"]
    assert "Moonglaze" not in json.dumps(shown)
    assert shown[0]["name"] == "Longquan Celadon Gaiwan Set"

    # Published and released: found, as the new release shows it.
    from kb.services.workflow import object_publish

    object_publish(obj=Entity.objects.get(pk=entity.pk))
    assert ask(query="moonglaze")["results"] == []  # live, but not yet in a release
    publish(tmp_path / "site")
    found = ask(query="moonglaze")["results"]
    assert [r["url"] for r in found] == [GAIWAN]
    assert found[0]["name"] == "Moonglaze Gaiwan Set"
    assert_published(site, found)


def test_ask_streams_nlweb_messages_and_summarizes_with_the_brand_engine(site, settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]
    brand = Brand.objects.get(slug="westlake-leaf")
    with ScriptedEngine(DemoScript(day=3)) as server:
        engine = Engine.objects.create(brand=brand, name="Answers", base_url=server.base_url,
                                       model="demo-model", timeout_seconds=10)  # fmt: skip
        SiteSettings.objects.filter(brand=brand).update(answer_engine=engine)
        response = Client().get(
            "/ask", {"site": "westlake-leaf", "query": "如何冲泡龙井", "mode": "summarize"}
        )
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream; charset=utf-8"
        body = b"".join(response.streaming_content).decode()
        prompt = server.requests[0].body["messages"][-1]["content"]
    assert body.endswith("\n\n")
    events = [json.loads(line.removeprefix("data: ")) for line in body.strip().split("\n\n")]
    kinds = [event["message_type"] for event in events]
    assert kinds == ["begin-nlweb-response", "result_batch", "summary", "end-nlweb-response"]
    assert len({event["query_id"] for event in events}) == 1
    results = events[1]["results"]
    first = f"{BASE}/zh-Hans/products/longjing-meijiawu/#faq-brew-longjing"
    assert results[0]["url"] == first
    assert_published(site, results)
    # The engine was given the results (and nothing else of the site) and cited them.
    assert "Question: 如何冲泡龙井" in prompt and f"[1] 如何冲泡龙井？\n{first}\n" in prompt
    assert events[2]["message"].splitlines()[0] == "品牌网站上的答案："
    assert f"({first})" in events[2]["message"]

    # Without an engine, summarize still lists, and says why there is no summary.
    SiteSettings.objects.filter(brand=brand).update(answer_engine=None)
    plain = ask(query="gaiwan", mode="summarize")
    assert plain["results"] and "summary" not in plain
    assert plain["error"] == "Westlake Leaf Tea has no answer engine: results are listed only."


def test_ask_refuses_bad_parameters_by_name(site):
    client = Client()
    for params, parameter in [
        ({}, "query"),
        ({"query": "x" * 1001}, "query"),
        ({"query": "tea", "mode": "generate"}, "mode"),
        ({"query": "tea", "streaming": "maybe"}, "streaming"),
        ({"query": "tea", "limit": "0"}, "limit"),
        ({"query": "tea", "prev": "[1"}, "prev"),
    ]:
        response = client.get("/ask", {"site": "westlake-leaf", **params})
        assert response.status_code == 400, params
        assert response.json()["errors"][0]["parameter"] == parameter, params
    # POST with a JSON body, as NLWeb clients send it, from another site's page in a browser:
    # the preflight is answered (and neither counted nor logged), the answer readable.
    CrawlerHit.objects.all().delete()
    preflight = client.options(
        "/ask?site=westlake-leaf", HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )  # fmt: skip
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert preflight["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert preflight["Access-Control-Allow-Headers"] == "Content-Type"
    assert not CrawlerHit.objects.exists()
    posted = client.post("/ask", {"site": "westlake-leaf", "query": "gaiwan", "streaming": False},
                         content_type="application/json", HTTP_ORIGIN="https://shop.example")  # fmt: skip
    assert posted.status_code == 200
    assert posted["Access-Control-Allow-Origin"] == "*"
    assert posted.json()["results"][0]["url"] == f"{GAIWAN}#faq-gaiwan"
    assert CrawlerHit.objects.count() == 1


def test_ask_is_per_brand_off_by_default_rate_limited_and_logged(site, settings):
    brand = Brand.objects.get(slug="westlake-leaf")
    # The brand's own host finds it without site=.
    settings.ALLOWED_HOSTS = ["www.westlakeleaf.example", "testserver"]
    by_host = Client(HTTP_HOST="www.westlakeleaf.example").get(
        "/ask", {"query": "gaiwan", "streaming": "0"}
    )
    assert by_host.json()["site"] == "westlake-leaf"

    SiteSettings.objects.filter(brand=brand).update(answer_endpoint=False)
    closed = Client().get("/ask", {"site": "westlake-leaf", "query": "gaiwan"})
    assert closed.status_code == 404
    assert closed.json()["detail"] == "The site 'westlake-leaf' does not answer questions here."
    SiteSettings.objects.filter(brand=brand).update(answer_endpoint=True)

    CrawlerHit.objects.all().delete()
    cache.clear()  # the allowance counted so far
    settings.SOURCEBOOK_ASK_RATE = "2/minute"
    agent = Client(
        HTTP_USER_AGENT="Mozilla/5.0 (compatible; ChatGPT-User/1.0; +https://openai.com/bot)"
    )
    statuses = [agent.get("/ask", {"site": "westlake-leaf", "query": "longjing", "streaming": "0"})
                for _ in range(3)]  # fmt: skip
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert int(statuses[2]["Retry-After"]) > 0
    hits = list(CrawlerHit.objects.filter(brand=brand).order_by("pk"))
    assert [(h.agent, h.purpose, h.engine, h.artifact, h.status) for h in hits] == [
        ("ChatGPT-User", "user", "ChatGPT", "ask", 200),
        ("ChatGPT-User", "user", "ChatGPT", "ask", 200),
        ("ChatGPT-User", "user", "ChatGPT", "ask", 429),
    ]
    assert hits[0].path == "/ask?query=longjing"
    assert hits[0].bytes == len(statuses[0].content)


# --- MCP -----------------------------------------------------------------------------------


@pytest.fixture
def mcp_url(transactional_db, tmp_path, settings):
    """``manage.py serve_mcp`` on a free port, over the test database and artifact store."""
    settings.SOURCEBOOK_ASK_RATE = "1000/minute"
    demo_load()
    srv = serving_root()  # where nginx's workers (www-data) may read the site too
    publish(srv / "site")
    port = free_port()
    artifacts = settings.STORAGES["artifacts"]["OPTIONS"]["location"]
    log = (tmp_path / "mcp.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve_mcp", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": database_url_for_tests(),
             "SOURCEBOOK_ARTIFACT_ROOT": str(artifacts), "SOURCEBOOK_ASK_RATE": "1000/minute"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/mcp")
        yield f"http://127.0.0.1:{port}/mcp", srv / "site" / "current", port
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
        shutil.rmtree(srv, ignore_errors=True)


def test_the_mcp_sdk_client_lists_the_tools_and_calls_each_against_the_demo(mcp_url):
    url, site, _ = mcp_url

    async def session():
        async with McpClient(url) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            calls = {
                "ask": {"query": "西湖龙井是什么？"},
                "search_products": {"query": "longjing", "limit": 3},
                "search_stores": {"query": "Hamburg"},
                "search_facts": {"query": "tonnes"},
                "search_faqs": {"query": "gaiwan"},
                "get_entity": {"id": f"{GAIWAN}#product", "lang": "zh-Hans"},
            }
            results = {name: await client.call_tool(name, args) for name, args in calls.items()}
            refused = await client.call_tool("search_faqs", {"query": "tea", "site": "nope"})
            return tools, results, refused

    tools, results, refused = asyncio.run(session())
    assert sorted(tools) == ["ask", "get_entity", "search_facts", "search_faqs", "search_products",
                             "search_stores"]  # fmt: skip
    assert tools["search_products"].input_schema["required"] == ["query"]
    assert all(not result.is_error for result in results.values()), results
    data = {name: result.structured_content for name, result in results.items()}

    assert data["ask"]["language"] == "zh-Hans"
    assert data["ask"]["results"][0]["url"] == f"{BASE}/zh-Hans/faq/#faq-what-is-longjing"
    products = data["search_products"]["results"]
    assert len(products) == 3 and all(r["schema_object"]["@type"] == "Product" for r in products)
    assert all("/products/longjing-" in r["url"] for r in products)
    stores = data["search_stores"]["results"]
    assert stores[0]["url"] == f"{BASE}/stores/hamburg-speicherstadt/"
    assert {r["schema_object"]["@type"] for r in stores} <= {"Store", "LocalBusiness"}
    facts = data["search_facts"]["results"]
    assert facts[0]["url"] == f"{BASE}/#fact-annual-output"
    assert facts[0]["schema_object"]["mainEntity"]["value"] == "9.6"
    faqs = data["search_faqs"]["results"]
    assert faqs[0]["url"] == f"{GAIWAN}#faq-gaiwan"
    entity = data["get_entity"]
    assert entity["url"] == f"{BASE}/zh-Hans/products/celadon-gaiwan-set/"
    assert entity["name"] == "龙泉青瓷盖碗套装"
    for name in ("ask", "search_products", "search_stores", "search_facts", "search_faqs"):
        assert_published(site, data[name]["results"])
    assert_published(site, [entity])

    assert refused.is_error
    assert "The site 'nope' does not answer questions here." in refused.content[0].text
    # Every call is a visit (the refused one had no brand to log it to).
    hits = CrawlerHit.objects.filter(artifact="mcp").order_by("pk")
    assert [h.path.split("?")[1].split("%3A")[0] for h in hits] == [
        "query=ask", "query=search_products", "query=search_stores", "query=search_facts",
        "query=search_faqs", "query=get_entity",
    ]  # fmt: skip
    assert {h.status for h in hits} == {200}


def test_nginx_passes_ask_and_mcp_on_to_the_application(mcp_url, live_server, settings, tmp_path):
    """deploy/nginx/sourcebook.conf (Debian's nginx, workers as www-data): /ask to the
    application, streamed as it comes; /mcp to serve_mcp."""
    nginx = nginx_binary()
    settings.ALLOWED_HOSTS = ["*"]
    _, site, mcp_port = mcp_url
    app_port = int(live_server.url.rsplit(":", 1)[1])
    srv = site.parent.parent
    (srv / "nginx").mkdir()
    port = free_port()
    config = nginx_config(tmp_path, srv / "nginx", site.parent, app_port, port, mcp_port)
    server = subprocess.Popen([nginx, "-c", str(config), "-p", str(tmp_path), "-g", "daemon off;"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/robots.txt")
        expected = pwd.getpwnam(NGINX_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        assert set(worker_uids(server.pid)) == {expected}
        query = urllib.parse.urlencode({"site": "westlake-leaf", "query": "什么是盖碗"})
        with urllib.request.urlopen(f"{base}/ask?{query}", timeout=30) as response:
            assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
            events = [json.loads(line.removeprefix(b"data: ")) for line in response
                      if line.startswith(b"data: ")]  # fmt: skip
        assert [e["message_type"] for e in events] == [
            "begin-nlweb-response", "result_batch", "end-nlweb-response"
        ]  # fmt: skip
        results = events[1]["results"]
        assert results[0]["url"] == f"{BASE}/zh-Hans/products/celadon-gaiwan-set/#faq-gaiwan"
        assert_published(site, results)

        async def call():
            async with McpClient(f"{base}/mcp") as client:
                return await client.call_tool("search_stores", {"query": "Hamburg"})

        stores = asyncio.run(call())
        assert not stores.is_error, stores
        found = stores.structured_content["results"]
        assert found[0]["url"] == f"{BASE}/stores/hamburg-speicherstadt/"
        assert_published(site, found)
    finally:
        server.terminate()
        server.wait(timeout=15)
