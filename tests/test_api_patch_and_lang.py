"""PATCH (JSON Merge Patch, per language), one-language reads (?lang), Content-Language and
ETags per representation."""

import json

import pytest
from django.core.cache import cache
from django.test import Client

from kb.models import AuditEntry, Entity, Revision
from kb.services.entities import entity_create
from kb.services.tokens import api_token_create
from kb.services.workflow import object_publish

pytestmark = pytest.mark.django_db

BASE = "/api/v1/brands/acme-tea"
JSONLD = "application/ld+json"
MERGE = "application/merge-patch+json"


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def text(**by_language) -> list[dict]:
    return [{"@value": v, "@language": k.replace("_", "-")} for k, v in by_language.items()]


@pytest.fixture
def writer(brand):
    _, raw = api_token_create(brand=brand, scopes=["read", "preview", "write", "publish"])
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def product(brand):
    entity = entity_create(
        brand=brand,
        types=["Product"],
        iri=f"{brand.base_url}/#biluochun",
        data={
            "name": text(en="Biluochun", zh_Hans="碧螺春"),
            "description": text(en="A green tea."),
            "sku": [{"@value": "BLC-1"}],
            "image": [{"@id": "https://tea.example/biluochun.jpg"}],
            "offers": [
                {
                    "@type": ["Offer"],
                    "price": [{"@value": "12.00"}],
                    "priceCurrency": [{"@value": "EUR"}],
                }
            ],
        },
    )
    object_publish(obj=entity)
    entity.refresh_from_db()
    return entity


def patch(client, path, body, content_type=MERGE, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.generic("PATCH", path, data, content_type=content_type, headers=headers)


def stored(entity) -> dict:
    entity.refresh_from_db()
    return entity.data


# --- PATCH -----------------------------------------------------------------------------------


def test_patch_changes_one_property_and_keeps_the_rest(product, writer):
    path = f"{BASE}/entities/{product.uuid}/"
    etag = writer.get(path + "?state=latest")["ETag"]
    revisions = Revision.objects.filter(object_id=product.pk, brand=product.brand).count()
    edits = AuditEntry.objects.filter(object_id=product.pk, action="edit")
    assert not edits.exists()
    response = patch(writer, path, {"sku": "BLC-2"}, **{"If-Match": etag})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["version"], body["state"]) == (2, "latest")
    data = stored(product)
    assert data["sku"] == [{"@value": "BLC-2"}]
    assert data["name"] == text(en="Biluochun", zh_Hans="碧螺春")
    assert data["offers"][0]["price"] == [{"@value": "12.00"}]
    assert body["data"] == data
    after = Revision.objects.filter(object_id=product.pk, brand=product.brand).count()
    assert after == revisions + 1
    assert [e.data.get("version") for e in edits] == [2]
    assert (
        Revision.objects.filter(object_id=product.pk, brand=product.brand).latest("pk").message
        == "Changed through the API (patch)"
    )
    # The answer's ETag is the one a GET of the same representation gives.
    assert writer.get(path + "?state=latest")["ETag"] == response["ETag"]


def test_a_plain_string_sets_one_language_and_keeps_the_others(product, writer):
    path = f"{BASE}/entities/{product.uuid}/"
    # Without a language: the brand's default language (en).
    assert patch(writer, path, {"name": "Pi Lo Chun"}, **{"If-Match": "1"}).status_code == 200
    assert stored(product)["name"] == text(en="Pi Lo Chun", zh_Hans="碧螺春")
    # ?lang: that language.
    changed = patch(writer, path + "?lang=zh-Hans", {"name": "洞庭碧螺春"}, **{"If-Match": "2"})
    assert changed.status_code == 200
    assert stored(product)["name"] == text(en="Pi Lo Chun", zh_Hans="洞庭碧螺春")
    # The answer is in that language too.
    assert changed["Content-Language"] == "zh-Hans, en"  # the description fell back
    assert changed.json()["data"]["name"] == "洞庭碧螺春"
    # Content-Language of the request: that language (a translation that was missing).
    headers = {"If-Match": "3", "Content-Language": "zh-hans"}
    assert patch(writer, path, {"description": "一种绿茶。"}, **headers).status_code == 200
    assert stored(product)["description"] == text(en="A green tea.", zh_Hans="一种绿茶。")
    # A language the brand does not have is a 400, and nothing changes.
    refused = patch(writer, path, {"name": "x"}, **{"If-Match": "4", "Content-Language": "fr"})
    assert refused.status_code == 400
    assert patch(writer, path + "?lang=fr", {"name": "x"}, **{"If-Match": "4"}).status_code == 400
    # The full form replaces every language.
    full = {"name": [{"@value": "Only English", "@language": "en"}]}
    assert patch(writer, path, full, **{"If-Match": "4"}).status_code == 200
    assert stored(product)["name"] == text(en="Only English")


def test_null_removes_and_objects_merge_into_nested_nodes(product, writer):
    path = f"{BASE}/entities/{product.uuid}/"
    body = {"description": None, "offers": {"price": "10.00"}}
    response = patch(writer, path, body, content_type="application/json", **{"If-Match": "1"})
    assert response.status_code == 200, response.content
    data = stored(product)
    assert "description" not in data
    assert data["offers"][0]["price"] == [{"@value": "10.00"}]
    assert data["offers"][0]["priceCurrency"] == [{"@value": "EUR"}]
    assert data["name"] == text(en="Biluochun", zh_Hans="碧螺春")


def test_patch_needs_if_match_and_is_validated_like_put(product, writer):
    path = f"{BASE}/entities/{product.uuid}/"
    assert patch(writer, path, {"sku": "X"}).status_code == 428
    assert patch(writer, path, {"sku": "X"}, **{"If-Match": "7"}).status_code == 412
    wrong = patch(writer, path, {"color": {"@id": "nope"}, "nonsense": 1}, **{"If-Match": "1"})
    assert wrong.status_code == 400, wrong.content.decode()  # as PUT answers
    assert wrong["Content-Type"] == "application/problem+json"
    assert all(e["pointer"].startswith("/") for e in wrong.json()["errors"])
    moved = patch(writer, path, {"@id": "https://tea.example/#other"}, **{"If-Match": "1"})
    assert moved.status_code == 400
    assert moved.json()["errors"][0]["pointer"] == "/@id"
    not_an_object = patch(writer, path, ["sku"], **{"If-Match": "1"})
    assert not_an_object.status_code in (400, 422)
    assert Entity.objects.get(pk=product.pk).version == 1
    # A merge patch is not a PUT body.
    put = writer.generic("PUT", path, json.dumps({"sku": "X"}), content_type=MERGE,
                         headers={"If-Match": "1"})  # fmt: skip
    assert put.status_code == 415


def test_a_patch_that_changes_nothing_makes_no_revision(product, writer):
    path = f"{BASE}/entities/{product.uuid}/"
    response = patch(writer, path, {"sku": "BLC-1"}, **{"If-Match": "1"})
    assert (response.status_code, response.json()["version"]) == (200, 1)


# --- one-language reads -----------------------------------------------------------------------


def test_lang_gives_plain_values_in_that_language(product, writer):
    path = f"{BASE}/entities/{product.uuid}/"
    body = writer.get(path + "?lang=zh-Hans")
    assert body["Content-Language"] == "zh-Hans, en"  # the description fell back to en
    assert body["Sourcebook-Language-Fallbacks"] == "/data/description"
    data = body.json()["data"]
    assert data["name"] == "碧螺春"
    assert data["description"] == "A green tea."
    assert data["sku"] == "BLC-1"
    assert data["offers"] == {"@type": "Offer", "price": "12.00", "priceCurrency": "EUR"}
    english = writer.get(path + "?lang=en")
    assert english["Content-Language"] == "en"
    assert not english.has_header("Sourcebook-Language-Fallbacks")
    assert english.json()["data"]["name"] == "Biluochun"

    node = writer.get(f"{BASE}/entities/{product.uuid}.jsonld?lang=zh-Hans")
    assert node["Content-Language"] == "zh-Hans, en"
    assert node["Sourcebook-Language-Fallbacks"] == "/description"
    assert node.json()["name"] == "碧螺春"

    listed = writer.get(f"{BASE}/entities/?lang=zh-Hans")
    assert listed["Content-Language"] == "zh-Hans, en"
    assert listed.json()["results"][0]["data"]["name"] == "碧螺春"


def test_without_lang_the_body_holds_every_language_and_says_so(product, writer):
    for path in (
        f"{BASE}/entities/{product.uuid}/",
        f"{BASE}/entities/{product.uuid}.jsonld",
        f"{BASE}/entities/",
    ):
        response = writer.get(path, headers={"Accept-Language": "zh-Hans"})
        assert response["Content-Language"] == "en, zh-Hans", path
    body = writer.get(f"{BASE}/entities/{product.uuid}/").json()
    assert body["data"]["name"] == text(en="Biluochun", zh_Hans="碧螺春")


def test_one_etag_per_representation(product, writer):
    path = f"{BASE}/entities/{product.uuid}/"
    variants = {
        "json": writer.get(path),
        "json zh": writer.get(path + "?lang=zh-Hans"),
        "jsonld": writer.get(path, headers={"Accept": JSONLD}),
        "jsonld zh": writer.get(path + "?lang=zh-Hans", headers={"Accept": JSONLD}),
    }
    etags = {name: r["ETag"] for name, r in variants.items()}
    assert len(set(etags.values())) == 4
    # Each answers 304 to its own ETag only.
    assert writer.get(path, headers={"If-None-Match": etags["json"]}).status_code == 304
    assert writer.get(path, headers={"If-None-Match": etags["jsonld"]}).status_code == 200
    again = writer.get(path, headers={"Accept": JSONLD, "If-None-Match": etags["jsonld"]})
    assert again.status_code == 304
    # Any of them is good for If-Match (they carry the version).
    changed = patch(writer, path, {"sku": "X-1"}, **{"If-Match": etags["jsonld zh"]})
    assert changed.status_code == 200


def test_an_empty_patch_changes_no_demo_entity(db):
    """The patch applies to the entity as compacted JSON-LD: reading that back must give the
    stored data again, or a patch of one property would change others."""
    from kb.demo_brand import demo_load

    brand = demo_load()["brand"]
    _, raw = api_token_create(brand=brand, scopes=["read", "write"])
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    changed = []
    for entity in Entity.objects.filter(brand=brand):
        path = f"/api/v1/brands/{brand.slug}/entities/{entity.uuid}/"
        response = patch(client, path, {}, **{"If-Match": str(entity.version)})
        assert response.status_code == 200, (entity.iri, response.content)
        if response.json()["version"] != entity.version:
            changed.append(entity.iri)
    assert changed == []


@pytest.fixture
def fact_and_faq(brand, product):
    from kb.services.statements import fact_create, faq_create

    fact = fact_create(
        brand=brand,
        key="buds",
        about=product,
        statement={"en": "About 36,000 buds go into 500 g.", "zh-Hans": "500克约需36,000个芽。"},
        value="36000",
        unit="buds",
        unit_labels={"en": "buds", "zh-Hans": "个芽"},
        source_url="https://tea.example/report",
        source_title={"en": "Annual report"},
        as_of="2025-12-31",
    )
    faq = faq_create(
        brand=brand,
        key="brew",
        about=product,
        question={"en": "How hot?", "zh-Hans": "水温多少？"},
        answer={"en": "80 °C."},
    )
    for obj in (fact, faq):
        object_publish(obj=obj)
    return fact, faq


def test_facts_and_faqs_read_in_one_language(fact_and_faq, writer):
    fact, faq = fact_and_faq
    # Without ?lang: every language, and Content-Language says which.
    response = writer.get(f"{BASE}/facts/{fact.pk}/")
    assert response.json()["statement"] == fact.statement
    assert response["Content-Language"] == "en, zh-Hans"
    # With ?lang: plain strings; what fell back to the default language is named.
    response = writer.get(f"{BASE}/facts/{fact.pk}/?lang=zh-Hans")
    body = response.json()
    assert body["statement"] == "500克约需36,000个芽。"
    assert body["unit_labels"] == "个芽" and body["unit"] == "buds"
    assert body["source_title"] == "Annual report"
    assert response["Content-Language"] == "zh-Hans, en"
    assert response["Sourcebook-Language-Fallbacks"] == "/source_title"
    # Lists too, with each value's pointer into the page.
    response = writer.get(f"{BASE}/faqs/?lang=zh-Hans")
    [item] = response.json()["results"]
    assert (item["question"], item["answer"]) == ("水温多少？", "80 °C.")
    assert response["Sourcebook-Language-Fallbacks"] == "/results/0/answer"
    response = writer.get(f"{BASE}/faqs/?lang=en")
    assert response["Content-Language"] == "en"
    assert "Sourcebook-Language-Fallbacks" not in response
    # One ETag per representation.
    etags = {
        writer.get(f"{BASE}/faqs/{faq.pk}/{q}")["ETag"] for q in ("", "?lang=en", "?lang=zh-Hans")
    }
    assert len(etags) == 3
    assert writer.get(f"{BASE}/faqs/?lang=fr").status_code == 400
