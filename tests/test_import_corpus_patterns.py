"""Patterns of the import corpus (tests/fixtures/import_corpus/) that the importer learnt,
each on its own: kept when schema.org allows it, refused naming the pointer when not."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kb.models import Entity
from kb.selectors import brand_graph
from tests.test_import_lenient import BASE, ORG, PRODUCT, round_trips
from tests.test_import_roundtrip import canonical, import_document

pytestmark = pytest.mark.django_db


def refusal(tmp_path, document) -> str:
    """The first problem the import command reports for ``document``."""
    bad = tmp_path / "bad.jsonld"
    bad.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(bad))
    return str(refused.value).splitlines()[1].removeprefix(f"{bad}: ")


# An untyped node with an @id (WooCommerce's breadcrumb items): kept where it is.
BREADCRUMB = {
    "@context": "https://schema.org/",
    "@type": "BreadcrumbList",
    "@id": f"{BASE}/products/longjing/#breadcrumb",
    "itemListElement": [
        {"@type": "ListItem", "position": 1, "item": {"name": "Home", "@id": f"{BASE}/"}},
        {"@type": "ListItem", "position": 2, "item": {"name": "Longjing", "@id": PRODUCT}},
    ],
}


def test_an_untyped_node_with_an_id_is_kept_in_place(brand):
    round_trips(brand, BREADCRUMB)
    assert list(Entity.objects.values_list("iri", flat=True)) == [BREADCRUMB["@id"]]
    item = Entity.objects.get().data["itemListElement"][0]["item"][0]
    assert item == {"@id": f"{BASE}/", "name": [{"@value": "Home"}]}


def test_an_untyped_node_with_an_id_the_file_describes_is_merged_into_it(brand):
    document = {
        "@context": "https://schema.org/",
        "@graph": [BREADCRUMB, {"@id": PRODUCT, "@type": "Product", "sku": "LJ-50"}],
    }
    round_trips(brand, document)
    product = Entity.objects.get(iri=PRODUCT)
    assert product.data["name"] == [{"@value": "Longjing"}]
    items = Entity.objects.get(iri=BREADCRUMB["@id"]).data["itemListElement"]
    assert items[1]["item"] == [{"@id": PRODUCT}]


def test_an_untyped_node_with_an_id_at_the_top_level_is_still_refused(brand, tmp_path):
    document = {"@context": "https://schema.org", "@id": ORG, "name": "Acme Tea"}
    assert refusal(tmp_path, document) == "/: the node has no @type"


# Relative IRIs ("@id": "/#organization", as site generators write them) are the brand's.
def test_relative_iris_resolve_against_the_brand_site(brand):
    document = {
        "@context": "https://schema.org",
        "@id": "/#organization",
        "@type": "Organization",
        "name": "Acme Tea",
        "url": "/",
        "logo": "/images/logo.svg",
    }
    expected = {
        **document,
        "@id": f"{BASE}/#organization",
        "url": f"{BASE}/",
        "logo": f"{BASE}/images/logo.svg",
    }
    round_trips(brand, document, expected)


# An empty string where a URL is expected (shop themes' unset social links): refused, as
# JSON-LD would make it a link to the brand's own site.
@pytest.mark.parametrize("value", [["https://social.example/acme", ""], " "])
def test_an_empty_url_is_refused_naming_it(brand, tmp_path, value):
    document = {"@context": "http://schema.org", "@type": "Organization", "sameAs": value}
    pointer = "/sameAs/1" if isinstance(value, list) else "/sameAs"
    assert refusal(tmp_path, document) == (
        f"{pointer}: 'sameAs' expects a URL, got an empty string (leave it out)"
    )


def test_an_empty_url_without_the_schema_org_context_is_refused_once(brand, tmp_path):
    document = {
        "@context": {"@vocab": "https://schema.org/"},
        "@type": "Organization",
        "sameAs": "",
    }
    assert refusal(tmp_path, document) == "/sameAs: '' is not an http(s) URL"


# A date-time where a Date is expected (Google's estimated-salary example: lastReviewed).
def test_a_date_time_where_a_date_is_expected(brand):
    document = {
        "@context": "https://schema.org",
        "@id": f"{BASE}/careers/#webpage",
        "@type": "WebPage",
        "lastReviewed": "2024-07-23T14:20:00-05:00",
    }
    round_trips(brand, document)


def test_a_date_time_that_is_not_iso_8601_is_still_refused(brand, tmp_path):
    document = {
        "@context": "https://schema.org",
        "@type": "WebPage",
        "lastReviewed": "2024-07-23T25:00",
    }
    assert refusal(tmp_path, document) == (
        "/lastReviewed: 'lastReviewed' expects Date, got the text '2024-07-23T25:00'"
    )


# Values of other vocabularies that schema.org lists for an enumeration (GoodRelations).
def test_values_schema_org_lists_for_an_enumeration(brand):
    document = {
        "@context": "https://schema.org",
        "@id": f"{BASE}/offers/rental#offer",
        "@type": "Offer",
        "businessFunction": "http://purl.org/goodrelations/v1#LeaseOut",
        "availableDeliveryMethod": "http://purl.org/goodrelations/v1#DeliveryModeOwnFleet",
    }
    round_trips(brand, document)


def test_a_value_schema_org_does_not_list_is_still_refused(brand, tmp_path):
    document = {
        "@context": "https://schema.org",
        "@type": "Offer",
        "businessFunction": "http://purl.org/goodrelations/v1#Steal",
    }
    assert refusal(tmp_path, document).startswith(
        "/businessFunction: 'http://purl.org/goodrelations/v1#Steal' is not a member of "
        "BusinessFunction"
    )


# A type of another vocabulary beside a schema.org type (GS1 Digital Link pages).
GS1_CONTEXT = {"schema": "https://schema.org/", "gs1": "https://gs1.org/voc/"}


def test_a_type_of_another_vocabulary_beside_a_schema_org_type(brand):
    document = {
        "@context": GS1_CONTEXT,
        "@id": PRODUCT,
        "@type": ["gs1:Product", "schema:Product"],
        "gs1:gtin": "06970123000017",
        "schema:gtin": "06970123000017",
        "schema:name": "Longjing",
    }
    round_trips(brand, document)
    product = Entity.objects.get()
    # schema.org's type first: it is the primary type.
    assert product.types == ["Product", "https://gs1.org/voc/Product"]
    assert product.data["gtin"] == [{"@value": "06970123000017"}]


def test_a_type_of_another_vocabulary_alone_is_refused(brand, tmp_path):
    document = {"@context": GS1_CONTEXT, "@type": "gs1:Product", "gs1:gtin": "06970123000017"}
    assert refusal(tmp_path, document) == (
        "/@type: https://gs1.org/voc/Product is not a schema.org type; a type of another "
        "vocabulary is kept only beside a schema.org type"
    )


# Expanded and flattened JSON-LD (as RDF libraries write it): every key an absolute IRI.
EXPANDED = [
    {
        "@id": PRODUCT,
        "@type": ["http://schema.org/Product"],
        "http://schema.org/name": [{"@value": "Longjing", "@language": "en"}],
        "http://schema.org/weight": [{"@id": "_:weight"}],
        "http://schema.org/brand": [{"@id": "_:brand"}],
    },
    {
        "@id": f"{BASE}/products/caddy/#product",
        "@type": ["http://schema.org/Product"],
        "http://schema.org/brand": [{"@id": "_:brand"}],
    },
    {
        "@id": "_:weight",
        "@type": ["http://schema.org/QuantitativeValue"],
        "http://schema.org/value": [{"@value": 50}],
        "http://schema.org/unitCode": [{"@value": "GRM"}],
    },
    {
        "@id": "_:brand",
        "@type": ["http://schema.org/Brand"],
        "http://schema.org/name": [{"@value": "Acme"}],
    },
]


def test_expanded_json_ld_needs_no_context(brand):
    import_document(brand, EXPANDED)
    exported = brand_graph(brand=brand, state="latest")
    # The brand node, referenced twice, is an entity with a generated IRI (a blank node in
    # the input); the weight, referenced once, is the product's nested value again.
    brand_iri = f"{BASE}/id/brand-acme"
    expected = json.loads(json.dumps(EXPANDED).replace("_:brand", brand_iri))
    assert canonical(exported) == canonical(expected)
    product = Entity.objects.get(iri=PRODUCT)
    assert product.data["weight"][0]["@type"] == ["QuantitativeValue"]
    assert product.data["brand"] == [{"@id": brand_iri}]
    assert Entity.objects.count() == 3


def test_blank_nodes_referring_only_to_each_other_stay_entities(brand):
    cycle = [
        {"@id": "_:a", "@type": ["http://schema.org/Person"], "http://schema.org/knows": [{"@id": "_:b"}]},
        {"@id": "_:b", "@type": ["http://schema.org/Person"], "http://schema.org/knows": [{"@id": "_:a"}]},
    ]  # fmt: skip
    import_document(brand, cycle)
    assert Entity.objects.count() == 2


def test_a_term_without_a_context_is_still_refused(brand, tmp_path):
    document = [{**EXPANDED[0], "name": "Longjing"}]
    assert refusal(tmp_path, document) == (
        '/0: no @context, so no term would be understood; add "@context": "https://schema.org"'
    )
