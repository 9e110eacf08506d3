"""Issue 22: the admin's search box finds entities, facts and FAQs by any language's text.

The demo brand (狮峰龙井, SKU WLL-001 …) searched by an editor, the role with the fewest
rights, through the changelists' ?q= box; a rival brand with look-alike content is never
found. Plus: the search text follows entity_update, imports and statement_update, and the
migration fills it exactly as the services do.
"""

from __future__ import annotations

import importlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse

from kb.demo_brand import demo_load
from kb.importing import source_from_bytes
from kb.models import FAQ, Brand, BrandMembership, Entity, Fact
from kb.search import normalize, search_terms
from kb.services.brands import brand_create, membership_grant
from kb.services.entities import entity_create, entity_update
from kb.services.imports import jsonld_import
from kb.services.statements import statement_create, statement_update

pytestmark = pytest.mark.django_db

SHIFENG_GTIN = "6970123000017"


def text(en: str, zh: str | None = None) -> list[dict]:
    values = [{"@value": en, "@language": "en"}]
    return values + ([{"@value": zh, "@language": "zh-Hans"}] if zh else [])


@pytest.fixture
def demo() -> Brand:
    demo_load()
    return Brand.objects.get(slug="westlake-leaf")


@pytest.fixture
def rival(demo) -> Brand:
    """Another brand with the same words and codes: none of it may show up for the editor."""
    brand = brand_create(
        slug="rival-tea",
        name="Rival Tea",
        base_url="https://rival.example",
        languages=["en", "zh-Hans"],
    )
    product = entity_create(
        brand=brand,
        types=["Product"],
        data={
            "name": text("Rival Shi Feng Longjing, Hangzhou", "狮峰龙井（仿）"),
            "description": text("Jasmine Pearls", "茉莉龙珠 梅家坞 盖碗"),
            "sku": [{"@value": "WLL-001"}],
            "gtin13": [{"@value": SHIFENG_GTIN}],
        },
        iri="https://rival.example/products/shifeng/#product",
    )
    statement_create(
        model=Fact,
        brand=brand,
        key="rival-meijiawu",
        about=product,
        statement={"en": "Meijiawu tea.", "zh-Hans": "梅家坞的茶。"},
        source_url="https://rival.example/report",
        source_title={"en": "Report"},
        as_of="2025-01-01",
    )
    statement_create(
        model=FAQ,
        brand=brand,
        key="rival-gaiwan",
        about=product,
        question={"en": "Gaiwan?", "zh-Hans": "盖碗?"},
        answer={"en": "A lidded bowl.", "zh-Hans": "盖碗。"},
    )
    return brand


@pytest.fixture
def editor(demo, rival):
    user = get_user_model().objects.create_user("ed", password="pw-ed-123", is_staff=True)
    membership_grant(brand=demo, user=user, role=BrandMembership.Role.EDITOR)
    return user


def search(client, model: str, query: str) -> list[str]:
    """The changelist's whole result (every page) for ``?q=``, as slugs or keys, in order."""
    response = client.get(reverse(f"admin:kb_{model}_changelist"), {"q": query})
    assert response.status_code == 200
    changelist = response.context["cl"]
    found = [obj.slug if model == "entity" else obj.key for obj in changelist.queryset]
    assert len(found) == len(set(found)), "duplicates in the results"
    assert changelist.result_count == len(found)
    return found


ENTITY_SEARCHES = {
    # Substrings of any language's name or description: no word segmentation needed.
    "龙井": [  # in the changelist's order: type, then English name
        "organization",  # Organization: 种植并手工炒制西湖龙井
        "chen-mingyu",  # Person: 狮峰村第三代龙井茶农
        "longjing-everyday-tin",
        "longjing-yuqian",
        "longjing-meijiawu",
        "longjing-shifeng-pre-qingming",
        "west-lake-tasting-set",  # 三罐50克装:狮峰龙井、…
        "hangzhou-longjing-road",  # Store: 西湖叶茶馆（龙井路店）
    ],
    "狮峰": ["chen-mingyu", "longjing-shifeng-pre-qingming", "west-lake-tasting-set"],
    # The SKU in any case and in full-width characters (NFKC), and the GTIN.
    "WLL-001": ["longjing-shifeng-pre-qingming"],
    "wll-001": ["longjing-shifeng-pre-qingming"],
    "ＷＬＬ－００１": ["longjing-shifeng-pre-qingming"],
    SHIFENG_GTIN: ["longjing-shifeng-pre-qingming"],
    # An English word, any case.
    "JASMINE": ["jasmine-dragon-pearls", "jasmine-silver-needle"],
    # Two words, one per language: both must match (AND), each anywhere in the text.
    "hangzhou 龙井": ["organization", "hangzhou-longjing-road"],
    "jasmine 龙珠": ["jasmine-dragon-pearls"],
    # A quoted phrase is one term.
    '"shi feng"': ["longjing-shifeng-pre-qingming", "west-lake-tasting-set"],
    # The @id pasted whole.
    "https://www.westlakeleaf.example/products/biluochun/#product": ["biluochun"],
    # Nothing of the brand is a match for the rival's own words.
    "rival": [],
}


@pytest.mark.parametrize("query", ENTITY_SEARCHES, ids=range(len(ENTITY_SEARCHES)))
def test_an_editor_finds_entities_by_any_language_and_code(client, editor, query):
    client.force_login(editor)
    assert search(client, "entity", query) == ENTITY_SEARCHES[query]


FACT_SEARCHES = {
    "梅家坞": ["frying-time", "longjing-caffeine"],  # Chinese statements only
    "汉堡 品鉴": ["hamburg-tastings"],  # and in two words
    "MEIJIAWU": ["frying-time", "longjing-caffeine"],
    "wll-2026-0412": ["pesticide-test"],  # in the source's title
}


@pytest.mark.parametrize("query", FACT_SEARCHES, ids=range(len(FACT_SEARCHES)))
def test_an_editor_finds_facts_by_their_statement_in_any_language(client, editor, query):
    client.force_login(editor)
    assert sorted(search(client, "fact", query)) == sorted(FACT_SEARCHES[query])


FAQ_SEARCHES = {
    "盖碗": ["brew-longjing", "gaiwan"],
    "gaiwan": ["brew-longjing", "gaiwan"],
    "caffeine 咖啡": ["caffeine", "caffeine-free"],
    "organic": ["organic"],  # the key and the question
}


@pytest.mark.parametrize("query", FAQ_SEARCHES, ids=range(len(FAQ_SEARCHES)))
def test_an_editor_finds_faqs_by_question_and_answer(client, editor, query):
    client.force_login(editor)
    assert sorted(search(client, "faq", query)) == sorted(FAQ_SEARCHES[query])


def test_a_superuser_finds_the_same_words_in_every_brand(client, demo, rival):
    admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client.force_login(admin)
    assert sorted(search(client, "entity", "WLL-001")) == [
        "longjing-shifeng-pre-qingming",
        "shifeng",
    ]
    assert sorted(search(client, "fact", "梅家坞")) == [
        "frying-time",
        "longjing-caffeine",
        "rival-meijiawu",
    ]
    assert sorted(search(client, "faq", "盖碗")) == ["brew-longjing", "gaiwan", "rival-gaiwan"]


def test_an_empty_query_lists_everything_the_editor_may_see(client, editor, demo):
    client.force_login(editor)
    assert len(search(client, "entity", "  ")) == Entity.objects.filter(brand=demo).count()


def test_entity_update_changes_what_is_found(client, editor, demo):
    client.force_login(editor)
    product = Entity.objects.get(brand=demo, slug="longjing-everyday-tin")
    data = {
        **product.data,
        "name": text("Office Longjing", "办公室龙井"),
        "mpn": [{"@value": "MPN-77"}],
    }
    entity_update(entity=product, data=data, expected_version=product.version, user=editor)
    assert search(client, "entity", "日常龙井") == []
    assert search(client, "entity", "办公室") == ["longjing-everyday-tin"]
    assert search(client, "entity", "mpn-77") == ["longjing-everyday-tin"]


def test_an_import_sets_the_search_text(client, editor, demo):
    client.force_login(editor)
    node = {
        "@context": "https://schema.org",
        "@type": "Product",
        "@id": "https://www.westlakeleaf.example/products/imported/#product",
        "name": [{"@value": "Imported Oolong", "@language": "en"}],
        "alternateName": "高山乌龙",
        "mpn": "ＯＯ－９",
        "identifier": {"@type": "PropertyValue", "propertyID": "lot", "value": "LOT-2026-7"},
    }
    source = source_from_bytes("new.jsonld", json.dumps(node).encode())
    jsonld_import(brand=demo, sources=[source])
    for query in ("高山", "oo-9", "lot-2026-7", "imported oolong"):
        assert search(client, "entity", query) == ["imported"], query

    node["name"] = [{"@value": "Renamed Oolong", "@language": "en"}]
    source = source_from_bytes("again.jsonld", json.dumps(node).encode())
    jsonld_import(brand=demo, sources=[source])
    assert search(client, "entity", '"imported oolong"') == []  # (the slug stays "imported")
    assert search(client, "entity", '"renamed oolong"') == ["imported"]


def test_statement_update_changes_what_is_found(client, editor, demo):
    client.force_login(editor)
    faq = FAQ.objects.get(brand=demo, key="payment")
    statement_update(
        obj=faq,
        expected_version=faq.version,
        user=editor,
        answer={**faq.answer, "zh-Hans": "支持银联。"},
    )
    assert search(client, "faq", "银联") == ["payment"]
    assert search(client, "faq", "支付宝") == []  # the old Chinese answer


def test_the_migration_fills_the_column_as_the_services_do(demo, rival):
    from django.apps import apps

    migration = importlib.import_module("kb.migrations.0006_search_text")
    expected = {
        model: dict(model.objects.values_list("pk", "search_text")) for model in (Entity, Fact, FAQ)
    }
    assert all(all(texts.values()) for texts in expected.values())
    for model in expected:
        model.objects.update(search_text="")
    migration.search_text_fill(apps, None)
    for model, texts in expected.items():
        assert dict(model.objects.values_list("pk", "search_text")) == texts


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm is PostgreSQL's")
def test_postgresql_has_trigram_indexes_for_the_search():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE %s",
            ["kb_%_search_trgm"],
        )
        indexes = dict(cursor.fetchall())
    assert set(indexes) == {"kb_entity_search_trgm", "kb_fact_search_trgm", "kb_faq_search_trgm"}
    assert all("gin_trgm_ops" in definition for definition in indexes.values())


def test_normalisation():
    assert normalize("  ＷＬＬ－００１\u3000Straße ") == "wll-001 strasse"
    assert search_terms('shi  "Feng Longjing" ＬＯＮＧ') == ["shi", "feng longjing", "long"]
