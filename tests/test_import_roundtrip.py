"""Import → export keeps every type, property and value, judged by pyld's canonical RDF."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kb import jsonld
from kb.models import FAQ, Entity, EntityLink, Fact, Revision, Status
from kb.selectors import brand_graph
from kb.services.imports import jsonld_import
from tests.conftest import jsonld_source

pytestmark = pytest.mark.django_db

BASE = "https://tea.example"
ORG = f"{BASE}/#organization"

# Everything the importer promises to understand, in one document: @graph, nested nodes
# with and without their own @id, references, @language-tagged values, a language map,
# typed literals, numbers, booleans, enumeration members, URL coercion and an @list.
RICH_DOCUMENT = {
    "@context": [
        "https://schema.org",
        {"nameByLanguage": {"@id": "schema:name", "@container": "@language"}},
    ],
    "@graph": [
        {
            "@id": ORG,
            "@type": "Organization",
            "name": [
                {"@value": "Acme Tea", "@language": "en"},
                {"@value": "阿克米茶业", "@language": "zh-Hans"},
            ],
            "foundingDate": "1998-04-05",
            "url": "https://tea.example/",
            "sameAs": ["https://social.example/acme", "https://video.example/acme"],
            "founder": {
                "@id": f"{BASE}/people/chen/#person",
                "@type": "Person",
                "name": "Chen Mingyu",
                "worksFor": {"@id": ORG},
            },
            "address": {
                "@type": "PostalAddress",
                "streetAddress": {"@value": "龙井路18号", "@language": "zh-Hans"},
                "addressCountry": "CN",
            },
            "numberOfEmployees": {"@type": "QuantitativeValue", "value": 86},
        },
        {
            "@id": f"{BASE}/products/longjing/#product",
            "@type": "Product",
            "nameByLanguage": {"en": "Longjing", "zh-Hans": "龙井"},
            "description": {"@value": "Pan-fried green tea & more <b>", "@language": "en"},
            "gtin13": "6970123000017",
            "image": "https://tea.example/img/longjing.jpg",
            "brand": {"@id": ORG},
            "isFamilyFriendly": True,
            "weight": {"@type": "QuantitativeValue", "value": 50.5, "unitCode": "GRM"},
            "offers": [
                {
                    "@type": "Offer",
                    "price": "68.00",
                    "priceCurrency": "USD",
                    "availability": "https://schema.org/InStock",
                },
                {
                    "@type": "Offer",
                    "price": 62,
                    "priceCurrency": "EUR",
                    "availability": "https://schema.org/PreOrder",
                },
            ],
        },
        {
            "@id": f"{BASE}/guides/brew/#howto",
            "@type": "HowTo",
            "name": "Brew Longjing",
            "step": {
                "@list": [
                    {"@type": "HowToStep", "text": "Warm the glass."},
                    {"@type": "HowToStep", "text": "Add 3 g of leaves."},
                ]
            },
        },
    ],
}


def canonical(document) -> list[str]:
    """Canonical N-Quads; http/https schema.org spellings are the same vocabulary."""
    nquads = jsonld.to_rdf(document).replace("https://schema.org/", "http://schema.org/")
    return sorted(nquads.splitlines())


def import_document(brand, document, name="input.jsonld", **options):
    return jsonld_import(brand=brand, sources=[jsonld_source(document, name)], **options)


def test_import_then_export_keeps_every_triple(brand):
    result = import_document(brand, RICH_DOCUMENT)
    assert sorted(result.created) == sorted(
        [ORG, f"{BASE}/people/chen/#person", f"{BASE}/products/longjing/#product"]
        + [f"{BASE}/guides/brew/#howto"]
    )
    exported = brand_graph(brand=brand, state="latest")
    assert canonical(exported) == canonical(RICH_DOCUMENT)
    # The comparison is not vacuous: the graph has every statement of the input, and a
    # text that could be mistaken for a relative IRI stays text.
    assert len(canonical(exported)) == 51
    assert any(
        line.endswith('<http://schema.org/unitCode> "GRM" .') for line in canonical(exported)
    )


def test_export_is_not_fooled_by_a_lost_value(brand):
    import_document(brand, RICH_DOCUMENT)
    exported = brand_graph(brand=brand, state="latest")
    product = next(n for n in exported["@graph"] if n["@id"].endswith("#product"))
    product["offers"][1]["priceCurrency"] = "GBP"
    assert canonical(exported) != canonical(RICH_DOCUMENT)


def test_multilingual_values_land_in_brand_languages(brand):
    document = {
        "@context": "https://schema.org",
        "@id": f"{BASE}/products/x/#product",
        "@type": "Product",
        # Tags are matched to the brand's languages whatever their case.
        "name": [
            {"@value": "Tea", "@language": "EN"},
            {"@value": "茶", "@language": "zh-hans"},
        ],
    }
    import_document(brand, document)
    entity = Entity.objects.get(iri=f"{BASE}/products/x/#product")
    assert entity.data["name"] == [
        {"@value": "Tea", "@language": "en"},
        {"@value": "茶", "@language": "zh-Hans"},
    ]


def test_language_map_is_stored_as_tagged_values(brand):
    import_document(brand, RICH_DOCUMENT)
    product = Entity.objects.get(iri=f"{BASE}/products/longjing/#product")
    assert sorted(product.data["name"], key=lambda v: v["@language"]) == [
        {"@value": "Longjing", "@language": "en"},
        {"@value": "龙井", "@language": "zh-Hans"},
    ]


def test_nested_nodes_with_an_id_become_linked_entities(brand):
    import_document(brand, RICH_DOCUMENT)
    organization = Entity.objects.get(iri=ORG)
    founder = Entity.objects.get(iri=f"{BASE}/people/chen/#person")
    assert founder.types == ["Person"]
    assert organization.data["founder"] == [{"@id": founder.iri}]
    # Anonymous nested values stay inside their parent.
    assert organization.data["address"][0]["@type"] == ["PostalAddress"]
    assert not Entity.objects.filter(primary_type="PostalAddress").exists()
    product = Entity.objects.get(iri=f"{BASE}/products/longjing/#product")
    assert len(product.data["offers"]) == 2
    links = set(EntityLink.objects.values_list("source__iri", "property", "target__iri"))
    assert links == {
        (ORG, "founder", founder.iri),
        (founder.iri, "worksFor", ORG),
        (product.iri, "brand", ORG),
    }


def test_http_and_https_contexts_import_the_same_data(brand, other_brand):
    import_document(brand, RICH_DOCUMENT)
    http_document = json.loads(json.dumps(RICH_DOCUMENT))
    http_document["@context"][0] = "http://schema.org"
    http_document["@context"][1]["nameByLanguage"]["@id"] = "http://schema.org/name"
    result = import_document(brand, http_document)
    assert result.created == [] and result.updated == []
    assert len(result.unchanged) == 4


def test_nodes_without_id_get_a_stable_iri_and_round_trip(brand):
    document = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": "Jasmine Pearls",
        "offers": {"@type": "Offer", "price": "30.00", "priceCurrency": "USD"},
    }
    result = import_document(brand, document)
    assert result.created == [f"{BASE}/id/product-jasmine-pearls"]
    again = import_document(brand, document)
    assert again.unchanged == [f"{BASE}/id/product-jasmine-pearls"]
    exported = brand_graph(brand=brand, state="latest")
    # The generated identifier aside, the graph is the input's.
    for node in exported["@graph"]:
        del node["@id"]
    assert canonical(exported) == canonical(document)


def test_reimport_changes_nothing_and_makes_no_revision(brand):
    import_document(brand, RICH_DOCUMENT)
    revisions = Revision.objects.count()
    versions = dict(Entity.objects.values_list("iri", "version"))
    result = import_document(brand, RICH_DOCUMENT)
    assert result.created == [] and result.updated == []
    assert len(result.unchanged) == 4
    assert Revision.objects.count() == revisions
    assert dict(Entity.objects.values_list("iri", "version")) == versions


def test_a_changed_node_gets_exactly_one_new_revision(brand):
    import_document(brand, RICH_DOCUMENT)
    changed = json.loads(json.dumps(RICH_DOCUMENT))
    changed["@graph"][1]["offers"][0]["price"] = "72.00"
    revisions = Revision.objects.count()
    result = import_document(brand, changed)
    assert result.updated == [f"{BASE}/products/longjing/#product"]
    assert len(result.unchanged) == 3
    assert Revision.objects.count() == revisions + 1
    product = Entity.objects.get(iri=f"{BASE}/products/longjing/#product")
    assert product.version == 2
    assert product.latest_revision.content["data"]["offers"][0]["price"] == [{"@value": "72.00"}]
    assert canonical(brand_graph(brand=brand, state="latest")) == canonical(changed)


def test_node_split_across_files_is_merged_by_id(brand):
    first = {"@context": "https://schema.org", "@id": ORG, "@type": "Organization", "name": "A"}
    second = {
        "@context": "https://schema.org",
        "@id": ORG,
        "@type": "Organization",
        "email": "a@tea.example",
    }
    jsonld_import(brand=brand, sources=[jsonld_source(first, "a"), jsonld_source(second, "b")])
    organization = Entity.objects.get(iri=ORG)
    assert organization.data == {"name": [{"@value": "A"}], "email": [{"@value": "a@tea.example"}]}


def test_cli_import_publish_and_export(brand, tmp_path):
    source = tmp_path / "graph.jsonld"
    source.write_text(json.dumps(RICH_DOCUMENT), encoding="utf-8")
    out = StringIO()
    call_command("import_jsonld", "acme-tea", str(source), stdout=out)
    assert out.getvalue().strip() == (
        "Imported 4 entities into 'acme-tea': 4 created, 0 updated, 0 unchanged."
    )
    assert set(Entity.objects.values_list("status", flat=True)) == {Status.DRAFT}
    assert brand_graph(brand=brand, state="published")["@graph"] == []

    out = StringIO()
    call_command("import_jsonld", "acme-tea", str(source), "--publish", stdout=out)
    assert out.getvalue().strip() == (
        "Imported 4 entities into 'acme-tea': 0 created, 0 updated, 4 unchanged, 4 published."
    )
    assert set(Entity.objects.values_list("status", flat=True)) == {Status.PUBLISHED}

    target = tmp_path / "export.jsonld"
    call_command("export_jsonld", "acme-tea", "--output", str(target), "--state", "published")
    exported = json.loads(target.read_text(encoding="utf-8"))
    assert exported["@context"] == "https://schema.org"
    assert canonical(exported) == canonical(RICH_DOCUMENT)


def test_cli_skip_invalid_imports_the_valid_files_and_lists_the_others(brand, tmp_path):
    good = tmp_path / "good.jsonld"
    good.write_text(
        json.dumps({"@context": "https://schema.org", "@type": "Product", "name": "Tea"}),
        encoding="utf-8",
    )
    bad = tmp_path / "bad.jsonld"
    bad.write_text(
        json.dumps({"@context": "https://schema.org", "@type": "Prodcut", "name": "X"}),
        encoding="utf-8",
    )
    with pytest.raises(CommandError):
        call_command("import_jsonld", "acme-tea", str(good), str(bad))
    assert not Entity.objects.exists()

    out, err = StringIO(), StringIO()
    call_command(
        "import_jsonld", "acme-tea", str(good), str(bad), "--skip-invalid", stdout=out, stderr=err
    )
    assert Entity.objects.get().iri == f"{BASE}/id/product-tea"
    assert err.getvalue().splitlines() == [
        f"Skipped {BASE}/id/prodcut-x ({bad}):",
        f"  {bad}: /@type: unknown schema.org type 'Prodcut' (did you mean 'Product'?)",
    ]
    assert "skipped 1 invalid node(s)" in out.getvalue()


def test_skip_invalid_skips_the_invalid_nodes_of_a_file_and_imports_the_rest(brand, tmp_path):
    """Per node: the product with a misspelt availability and the fact without a source are left out
    with their problems; the organization, the other product and the FAQ come in, and a
    reference to the skipped product is kept (it may come in a later import)."""
    document = {
        "@context": "https://schema.org",
        "@graph": [
            {"@id": f"{BASE}/#org", "@type": "Organization", "name": "Acme Tea",
             "makesOffer": {"@type": "Offer", "itemOffered": {"@id": f"{BASE}/#bad"}}},
            {"@id": f"{BASE}/#good", "@type": "Product", "name": "Good tea"},
            {"@id": f"{BASE}/#bad", "@type": "Product", "name": "Bad tea",
             "offers": {"@type": "Offer", "price": "9.50", "availability": "InStok"}},
            {"@id": f"{BASE}/id/fact/founded", "@type": "Claim", "text": "Founded in 1998.",
             "about": {"@id": f"{BASE}/#org"}, "temporalCoverage": "2025-01-01"},
            {"@type": "FAQPage", "mainEntity": {"@type": "Question", "name": "Hot?",
             "acceptedAnswer": {"@type": "Answer", "text": "80 °C."}}},
        ],
    }  # fmt: skip
    path = tmp_path / "mixed.jsonld"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CommandError):
        call_command("import_jsonld", "acme-tea", str(path))
    assert not Entity.objects.exists()
    out, err = StringIO(), StringIO()
    call_command("import_jsonld", "acme-tea", str(path), "--skip-invalid", stdout=out, stderr=err)
    assert sorted(Entity.objects.values_list("iri", flat=True)) == [f"{BASE}/#good", f"{BASE}/#org"]
    assert FAQ.objects.count() == 1 and not Fact.objects.exists()
    org = Entity.objects.get(iri=f"{BASE}/#org")
    assert org.data["makesOffer"][0]["itemOffered"] == [{"@id": f"{BASE}/#bad"}]
    lines = err.getvalue().splitlines()
    assert lines[0] == f"Skipped {BASE}/#bad ({path}: /@graph/2):"
    assert lines[1].startswith(f"  {path}: /@graph/2/offers/availability: ")
    assert lines[2] == f"Skipped fact 'founded' ({path}: /@graph/3):"
    assert lines[3] == f"  {path}: /@graph/3: the fact needs a citation with a url (its source)"
    assert len(lines) == 4
    assert (
        out.getvalue()
        .strip()
        .endswith(
            "Imported 2 entities into 'acme-tea': 2 created, 0 updated, 0 unchanged; 1 FAQs: "
            "1 created, 0 updated, 0 unchanged; skipped 2 invalid node(s)."
        )
    )


def test_skip_invalid_skips_a_file_that_is_no_json_ld(brand, tmp_path):
    good = tmp_path / "good.jsonld"
    good.write_text(json.dumps({"@context": "https://schema.org", "@type": "Product", "name": "T"}))
    broken = tmp_path / "broken.jsonld"
    broken.write_text('{"@context": "https://schema.org", "name": ')
    out, err = StringIO(), StringIO()
    call_command(
        "import_jsonld",
        "acme-tea",
        str(good),
        str(broken),
        "--skip-invalid",
        stdout=out,
        stderr=err,
    )
    assert Entity.objects.count() == 1
    assert err.getvalue().splitlines()[0] == f"Skipped {broken}:"
    assert "skipped 1 invalid file(s)" in out.getvalue()


def test_export_latest_shows_drafts_published_shows_the_live_revision(brand):
    import_document(brand, RICH_DOCUMENT, publish=True)
    changed = json.loads(json.dumps(RICH_DOCUMENT))
    changed["@graph"][0]["foundingDate"] = "1999-01-01"
    import_document(brand, changed)
    assert canonical(brand_graph(brand=brand, state="published")) == canonical(RICH_DOCUMENT)
    assert canonical(brand_graph(brand=brand, state="latest")) == canonical(changed)


def test_brands_are_isolated(brand, other_brand):
    # An @id under neither brand's base URL (one under the other brand's is refused: see
    # tests/test_api_bad_input.py).
    shared = "https://shared.example/#organization"
    document = {
        "@context": "https://schema.org",
        "@id": shared,
        "@type": "Organization",
        "name": "A",
    }
    import_document(brand, document)
    assert brand_graph(brand=other_brand, state="latest")["@graph"] == []
    # The same @id in another brand is another entity, and changing one leaves the other.
    assert import_document(other_brand, {**document, "name": "B"}).created == [shared]
    assert import_document(brand, document).unchanged == [shared]
    names = dict(Entity.objects.filter(iri=shared).values_list("brand__slug", "data__name"))
    assert names == {"acme-tea": [{"@value": "A"}], "other": [{"@value": "B"}]}
