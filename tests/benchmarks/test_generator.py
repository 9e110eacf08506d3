"""The benchmark's bulk generator leaves the same rows as the real services.

Two brands with the same base URL get the same 20 products: one through the services (the
JSON-LD import with publish, then ``fact_create``/``faq_create`` + ``object_publish``), one
through ``tests.benchmarks.generate``. Every row of every kind is compared after replacing
database ids with natural keys (IRIs, fact and FAQ keys) and leaving out what is random or
a clock reading (UUIDs, timestamps); the stored entity data is compared as JSON text, so
even the order of keys (which decides the order of properties on pages) must match.
"""

from __future__ import annotations

import json

import pytest
from stdnum import ean

from kb.importing import source_from_bytes
from kb.models import FAQ, AuditEntry, Entity, EntityLink, Fact, Revision
from kb.services.imports import jsonld_import
from kb.services.statements import fact_create, faq_create
from kb.services.workflow import object_publish
from tests.benchmarks import catalog
from tests.benchmarks.generate import brand_and_organization, generate

SIZE = 20


def services_create(brand, size: int) -> None:
    """The synthetic brand's content through the services, as an editor's tools would."""
    nodes = [catalog.product_node(item) for item in catalog.products(size)]
    raw = json.dumps(catalog.jsonld_document(nodes)).encode()
    jsonld_import(brand=brand, sources=[source_from_bytes(catalog.IMPORT_FILE, raw)], publish=True)
    about = {e.iri: e for e in Entity.objects.filter(brand=brand)}
    for spec in catalog.facts(size):
        fields = {k: v for k, v in vars(spec).items() if k != "about"}
        fact = fact_create(brand=brand, about=about[catalog.product(spec.about).iri], **fields)
        object_publish(obj=fact)
    for spec in catalog.faqs(size):
        fields = {k: v for k, v in vars(spec).items() if k != "about"}
        faq = faq_create(brand=brand, about=about[catalog.product(spec.about).iri], **fields)
        object_publish(obj=faq)


def natural_keys(brand) -> dict[tuple[str, int], str]:
    keys = {
        ("entity", pk): iri
        for pk, iri in Entity.objects.filter(brand=brand).values_list("pk", "iri")
    }
    keys |= {
        ("fact", pk): key for pk, key in Fact.objects.filter(brand=brand).values_list("pk", "key")
    }
    keys |= {
        ("faq", pk): key for pk, key in FAQ.objects.filter(brand=brand).values_list("pk", "key")
    }
    return keys


def revision_rows(brand) -> list[tuple]:
    keys = natural_keys(brand)
    rows = []
    for revision in Revision.objects.filter(brand=brand).select_related("content_type"):
        model = revision.content_type.model
        content = dict(revision.content)
        if "about" in content:
            content["about"] = keys[("entity", content["about"])]
        rows.append(
            (
                model,
                keys[(model, revision.object_id)],
                revision.number,
                json.dumps(content, ensure_ascii=False),
                revision.object_repr,
                revision.message,
                revision.user_id,
                revision.approved_by_id,
                revision.go_live_at,
                revision.expire_at,
                revision.submitted_for_review_at,
            )
        )
    return sorted(rows)


def workflow(obj) -> tuple:
    """The workflow state ``object_publish`` leaves: published, revision 1 live and latest."""
    return (
        obj.status,
        obj.version,
        obj.latest_revision_id == obj.live_revision_id,
        obj.live_revision.number,
        obj.first_published_at is not None,
        obj.last_published_at is not None,
    )


def entity_rows(brand) -> list[tuple]:
    return sorted(
        (
            e.iri,
            e.slug,
            e.types,
            e.primary_type,
            e.label,
            json.dumps(e.data, ensure_ascii=False),
            e.search_text,
            *workflow(e),
        )
        for e in Entity.objects.filter(brand=brand).select_related("live_revision")
    )


def statement_rows(brand) -> list[tuple]:
    facts = [
        (
            "fact",
            f.key,
            f.about.iri,
            f.statement,
            f.value,
            f.unit,
            f.source_url,
            f.source_title,
            f.as_of,
            f.valid_until,
            f.search_text,
            *workflow(f),
        )
        for f in Fact.objects.filter(brand=brand).select_related("about", "live_revision")
    ]
    faqs = [
        ("faq", f.key, f.about.iri, f.question, f.answer, f.order, f.search_text, *workflow(f))
        for f in FAQ.objects.filter(brand=brand).select_related("about", "live_revision")
    ]
    return sorted(map(repr, facts + faqs))


def link_rows(brand) -> list[tuple]:
    return sorted(
        EntityLink.objects.filter(brand=brand).values_list("source__iri", "target__iri", "property")
    )


def audit_rows(brand) -> list[tuple]:
    keys = natural_keys(brand)
    return sorted(
        (
            e.content_type.model,
            keys[(e.content_type.model, e.object_id)],
            e.object_repr,
            e.action,
            json.dumps(e.data),
            e.user_id,
        )
        for e in AuditEntry.objects.filter(brand=brand).select_related("content_type")
    )


@pytest.fixture
def two_brands(db):
    by_services = brand_and_organization(slug="bench-services")
    services_create(by_services, SIZE)
    bulk = brand_and_organization(slug="bench-bulk")
    counts = generate(bulk, SIZE)
    return by_services, bulk, counts


@pytest.mark.parametrize(
    "rows",
    [entity_rows, revision_rows, statement_rows, link_rows, audit_rows],
    ids=["entities", "revisions", "facts-and-faqs", "entity-links", "audit-entries"],
)
def test_bulk_rows_equal_the_services_rows(two_brands, rows):
    by_services, bulk, _ = two_brands
    expected = rows(by_services)
    assert expected, "the services made no rows of this kind"
    assert rows(bulk) == expected


def test_the_catalog_has_the_stated_shape(two_brands):
    _, bulk, counts = two_brands
    assert counts == {"products": SIZE, "facts": 3 * SIZE // 10, "faqs": SIZE // 10}
    product = Entity.objects.get(brand=bulk, iri=catalog.product(7).iri)
    assert product.text("name", "zh-Hans") == "茶 7"
    assert {o["priceCurrency"][0]["@value"] for o in product.data["offers"]} == {"USD", "EUR"}
    assert product.data["brand"] == [{"@id": catalog.ORG_IRI}]


@pytest.mark.parametrize("number", [1, 9, 10, 12345, 999_999_999])
def test_gtin13_check_digits_are_valid(number):
    code = catalog.gtin13(number)
    assert len(code) == 13 and ean.is_valid(code)
