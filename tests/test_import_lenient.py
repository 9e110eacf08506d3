"""What real sites publish and schema.org allows is imported, and exports back as the same
RDF (judged with pyld's canonical N-Quads, as in tests/test_import_roundtrip.py)."""

import json
from io import StringIO
from pathlib import Path

import pyld.jsonld
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kb import jsonld
from kb.importing import brand_language
from kb.models import Entity
from kb.selectors import brand_graph
from kb.services.brands import brand_create
from kb.services.imports import ImportRefused
from tests.test_import_roundtrip import canonical, import_document

pytestmark = pytest.mark.django_db

BASE = "https://tea.example"
ORG = f"{BASE}/#organization"
PRODUCT = f"{BASE}/products/longjing/#product"


def round_trips(brand, document, expected=None) -> dict:
    """Import ``document``; the export must be ``expected`` (default: the document) as RDF."""
    import_document(brand, document)
    exported = brand_graph(brand=brand, state="latest")
    assert canonical(exported) == canonical(expected or document)
    return exported


# a. "type" and "id": keyword aliases the schema.org context defines (JSON-LD 1.1).
def test_type_and_id_aliases(brand):
    document = {
        "@context": "https://schema.org",
        "type": "Product",
        "id": PRODUCT,
        "name": "Longjing",
        "offers": {"type": "Offer", "price": "68.00", "priceCurrency": "USD"},
    }
    round_trips(brand, document)
    product = Entity.objects.get(iri=PRODUCT)
    assert product.types == ["Product"]
    assert product.data["offers"][0]["@type"] == ["Offer"]


# b. Regional tags land in the brand's language (which replaces the document's tag).
@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("en-CA", "en"),
        ("EN-gb", "en"),
        ("en-x-legacy", "en"),
        ("zh-Hans-CN", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh-TW", None),  # Traditional script: not Simplified, and the brand has no zh-Hant
        ("zh", None),
        ("fr-CA", None),
    ],
)
def test_brand_language_lookup(tag, language):
    assert brand_language(["en", "zh-Hans"], tag) == language


def test_brand_language_lookup_maps_traditional_regions_to_zh_hant():
    assert brand_language(["en", "zh-Hant"], "zh-HK") == "zh-Hant"
    assert brand_language(["en", "zh-Hant"], "zh-Hant-TW") == "zh-Hant"


def test_regional_language_tags_map_to_the_brand_languages(brand):
    document = {
        "@context": "https://schema.org",
        "@id": PRODUCT,
        "@type": "Product",
        "name": [
            {"@value": "Longjing", "@language": "en-CA"},
            {"@value": "龙井", "@language": "zh-CN"},
        ],
        "description": {"@value": "明前龙井", "@language": "zh-Hans-CN"},
    }
    expected = json.loads(json.dumps(document))
    expected["name"][0]["@language"] = "en"
    expected["name"][1]["@language"] = "zh-Hans"
    expected["description"]["@language"] = "zh-Hans"
    round_trips(brand, document, expected)
    assert Entity.objects.get().data["name"] == [
        {"@value": "Longjing", "@language": "en"},
        {"@value": "龙井", "@language": "zh-Hans"},
    ]


def test_a_tag_under_none_of_the_brand_languages_is_still_refused(brand, tmp_path):
    bad = tmp_path / "bad.jsonld"
    bad.write_text(
        json.dumps(
            {
                "@context": "https://schema.org",
                "@type": "Product",
                "name": {"@value": "龍井", "@language": "zh-TW"},
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(bad))
    assert str(refused.value).splitlines()[1] == (
        # (pyld lower-cases language tags as it expands)
        f"{bad}: /name: language 'zh-tw' is not one of the brand's languages (en, zh-Hans)"
    )


# c. Year-only and year-month dates (ISO 8601 reduced precision).
def test_year_and_year_month_dates(brand):
    document = {
        "@context": "https://schema.org",
        "@id": ORG,
        "@type": "Organization",
        "name": "Acme Tea",
        "foundingDate": "1998",
        "dissolutionDate": "2019-05",
    }
    round_trips(brand, document)


@pytest.mark.parametrize("text", ["2019-13", "19", "2019-5", "spring 2019"])
def test_dates_that_are_not_iso_8601_are_still_refused(brand, tmp_path, text):
    bad = tmp_path / "bad.jsonld"
    bad.write_text(
        json.dumps(
            {"@context": "https://schema.org", "@type": "Organization", "foundingDate": text}
        ),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(bad))
    assert f"'foundingDate' expects Date, got the text {text!r}" in str(refused.value)


# d. Text where a Thing is expected: kept as text.
def test_text_where_a_thing_is_expected(brand):
    document = {
        "@context": "https://schema.org",
        "@graph": [
            {
                "@id": f"{BASE}/journal/harvest/#article",
                "@type": "Article",
                "headline": "The spring harvest",
                "author": "Jane Doe",
                "datePublished": "2019-05-02",
            },
            {"@id": PRODUCT, "@type": "Product", "name": "Longjing", "brand": "Acme"},
        ],
    }
    round_trips(brand, document)
    product = Entity.objects.get(iri=PRODUCT)
    assert product.data["brand"] == [{"@value": "Acme"}]


def test_text_that_is_not_an_enumeration_member_is_still_refused(brand, tmp_path):
    bad = tmp_path / "bad.jsonld"
    document = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": "Tea",
        "offers": {"@type": "Offer", "availability": "in stock"},
    }
    bad.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(bad))
    assert "'in stock' is not a member of ItemAvailability" in str(refused.value)


# e. The Role pattern: a Role in place of the expected value, holding the same property.
ROLE_DOCUMENT = {
    "@context": "https://schema.org",
    "@id": ORG,
    "@type": "Organization",
    "name": "Acme Tea",
    "member": [
        {
            "@type": "OrganizationRole",
            "member": {"@type": "Person", "name": "Chen Mingyu"},
            "roleName": "CEO",
            "startDate": "2010",
        },
        {"@type": "Person", "name": "Li Hua"},
    ],
    "alumni": {
        "@type": "OrganizationRole",
        "alumni": {"@type": "Person", "name": "Wang Fang"},
        "startDate": "2001-09",
        "endDate": "2009",
    },
}


def test_role_pattern(brand):
    round_trips(brand, ROLE_DOCUMENT)
    role = Entity.objects.get(iri=ORG).data["member"][0]
    assert role["@type"] == ["OrganizationRole"]
    assert role["roleName"] == [{"@value": "CEO"}]


def test_a_role_holding_another_property_is_refused(brand, tmp_path):
    bad = tmp_path / "bad.jsonld"
    document = {
        "@context": "https://schema.org",
        "@type": "Organization",
        "member": {"@type": "OrganizationRole", "founder": {"@type": "Person", "name": "X"}},
    }
    bad.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(bad))
    assert str(refused.value).splitlines()[1] == (
        f"{bad}: /member/founder: property 'founder' does not apply to OrganizationRole; "
        "it applies to Organization"
    )


# f. Distance: a text ("20 cm"), or a Distance-typed value.
def test_distance_values(brand):
    document = {
        "@context": "https://schema.org",
        "@id": PRODUCT,
        "@type": "Product",
        "name": "Tea caddy",
        "height": "20 cm",
        "depth": {"@value": "3 in", "@type": "Distance"},
        "width": {"@type": "QuantitativeValue", "value": 9, "unitCode": "CMT"},
    }
    round_trips(brand, document)


# g. Properties of other vocabularies (GS1, UN/CEFACT), prefixed or as full IRIs.
FOREIGN_DOCUMENT = {
    "@context": [
        "https://schema.org",
        {
            "gs1": "https://gs1.org/voc/",
            "unece": "https://service.unece.org/trade/uncefact/vocabulary/uncefact#",
        },
    ],
    "@id": PRODUCT,
    "@type": "Product",
    "name": "Longjing",
    "gtin13": "6970123000017",
    "gs1:netContent": {
        "@type": "gs1:QuantitativeValue",
        "gs1:value": 50,
        "gs1:unitCode": "GRM",
    },
    "gs1:brandOwner": {"@id": ORG},
    "unece:countryOfOrigin": "CN",
    "https://vocab.example/tea#grade": {"@value": "A", "@language": "en"},
}


def test_properties_of_other_vocabularies(brand):
    round_trips(brand, FOREIGN_DOCUMENT)
    product = Entity.objects.get(iri=PRODUCT)
    assert product.data["https://gs1.org/voc/netContent"][0]["@type"] == [
        "https://gs1.org/voc/QuantitativeValue"
    ]


def test_a_foreign_reference_that_is_a_script_is_refused(brand, tmp_path):
    bad = tmp_path / "bad.jsonld"
    document = {
        "@context": ["https://schema.org", {"gs1": "https://gs1.org/voc/"}],
        "@type": "Product",
        "name": "Tea",
        "gs1:image": {"@id": "javascript:alert(1)"},
    }
    bad.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(bad))
    assert str(refused.value).splitlines()[1] == (
        f"{bad}: /gs1:image: 'javascript:alert(1)' is not an http(s) URL"
    )


# What a product needs to be published (Google's product snippet and merchant listing).
SELLABLE = {
    "image": "https://tea.example/img/tea.jpg",
    "offers": {"@type": "Offer", "price": "30.00", "priceCurrency": "USD"},
}


def test_lenient_documents_publish(brand, tmp_path):
    """Everything above also goes through --publish and a site build."""
    documents = [ROLE_DOCUMENT, {**FOREIGN_DOCUMENT, **SELLABLE}]
    extra = {
        "@context": "https://schema.org",
        "@graph": [
            {
                "@id": f"{BASE}/journal/harvest/#article",
                "@type": "Article",
                "headline": "The spring harvest",
                "name": "The spring harvest",
                "author": "Jane Doe",
                "datePublished": "2019",
            },
            {
                "@id": f"{BASE}/products/caddy/#product",
                "@type": "Product",
                "name": [
                    {"@value": "Tea caddy", "@language": "en-CA"},
                    {"@value": "茶叶罐", "@language": "zh-CN"},
                ],
                "brand": "Acme",
                "height": "20 cm",
                **SELLABLE,
            },
        ],
    }
    paths = []
    for index, document in enumerate([*documents, extra]):
        path = tmp_path / f"{index}.jsonld"
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        paths.append(str(path))
    call_command("import_jsonld", "acme-tea", *paths, "--publish", stdout=StringIO())
    call_command("publish", "acme-tea", "--out", str(tmp_path / "site"), stdout=StringIO())
    root = tmp_path / "site" / "current"
    pages = "\n".join(p.read_text(encoding="utf-8") for p in root.rglob("index.html"))
    for text in ("Jane Doe", "Acme", "20 cm", "Chen Mingyu", "茶叶罐"):
        assert text in pages, text


# g'. schema.org's annotations of potential actions: "query-input" (SearchAction).
def test_action_input_annotations(brand):
    document = {
        "@context": "https://schema.org",
        "@id": f"{BASE}/#website",
        "@type": "WebSite",
        "url": f"{BASE}/",
        "potentialAction": {
            "@type": "SearchAction",
            "target": {"@type": "EntryPoint", "urlTemplate": f"{BASE}/search?q={{q}}"},
            "query-input": "required name=q",
        },
    }
    round_trips(brand, document)


# f'. A bare number where a Distance is expected (image sizes in pixels, as CMSs write them).
def test_bare_number_for_a_distance(brand):
    document = {
        "@context": "https://schema.org",
        "@id": ORG,
        "@type": "Organization",
        "name": "Acme Tea",
        "logo": {"@type": "ImageObject", "url": f"{BASE}/logo.png", "width": 512, "height": 512},
    }
    round_trips(brand, document)


# --- 3. A corpus of what sites publish ----------------------------------------------------
#
# tests/fixtures/import_corpus/ holds documents in the patterns of Google's structured-data
# documentation, of schema.org's own examples, of CMS and shop output (Yoast, Rank Math,
# WooCommerce, Shopify, BigCommerce, Magento, Squarespace, Wix, Drupal, Ghost, WP Recipe
# Maker, Eventbrite, Next.js sites) and of RDF libraries (expanded, flattened), named by
# origin.
# Each is imported into a brand of its own and exported; it "round-trips whole" when the
# export is the same graph as the document, compared as canonical N-Quads (pyld's URDNA2015
# with the project's offline loader; the identifiers the importer gives nodes without one
# are left out, as they are blank nodes in the input). The document is read as the importer
# reads it, at the brand's site: its relative IRIs ("#return_policy", "//cdn…/logo.png")
# resolve against the brand's base URL, so statements about them are compared too rather
# than dropped. The share is printed (``pytest -s``) with the cause of every miss, and held
# at 95 % or more, never less.

CORPUS = Path(__file__).parent / "fixtures" / "import_corpus"
SHARE = 95  # per cent of the corpus that must round-trip whole
# The documents that do not round-trip, and why; any other miss fails the test.
KNOWN_MISSES = {
    # A FAQPage becomes the brand's FAQs (tests/test_import_faqpage.py), which export with
    # language-tagged texts, a position and an @id per Question.
    "google-faqpage.jsonld": "differs",
    # Tags under a brand language become that language (en-GB → en): see brand_language.
    "person-regional-language.jsonld": "differs",
    # Shop themes write unset social links as "": refused, naming each pointer.
    "shopify-organization.jsonld": "refused",
    # Gmail's email markup uses properties schema.org does not have (reservationNumber,
    # numSeats, modifyReservationUrl) or has on Ticket: refused as unknown, naming each.
    "gmail-event-reservation.jsonld": "refused",
}


def canonical_at(document, base: str) -> set[str]:
    """Canonical N-Quads of ``document`` read at ``base``. schema.org's https spelling is
    made http before canonicalizing (after, blank nodes could be labelled apart)."""
    nquads = pyld.jsonld.to_rdf(
        document,
        {"format": "application/n-quads", "base": base, "documentLoader": jsonld.document_loader},
    ).replace("<https://schema.org/", "<http://schema.org/")
    canonical = pyld.jsonld.normalize(
        nquads,
        {
            "algorithm": "URDNA2015",
            "inputFormat": "application/n-quads",
            "format": "application/n-quads",
        },
    )
    return set(canonical.splitlines())


def outcome(index: int, path: Path) -> str:
    brand = brand_create(
        slug=f"corpus-{index}", name=path.stem, base_url=BASE, languages=["en", "zh-Hans"]
    )
    document = json.loads(path.read_text(encoding="utf-8"))
    try:
        import_document(brand, document, name=path.name)
    except ImportRefused as refused:
        return "refused: " + "; ".join(f"{p.pointer}: {p.message}" for p in refused.problems)
    exported = brand_graph(brand=brand, state="latest")
    for node in exported["@graph"]:
        if node["@id"].startswith(f"{BASE}/id/"):
            del node["@id"]  # generated: a blank node in the input
    expected = canonical_at(document, f"{BASE}/")
    if not expected:
        return "empty: the document states nothing, so proves nothing"
    got = canonical_at(exported, f"{BASE}/")
    if expected == got:
        return "whole"
    lost, added = sorted(expected - got), sorted(got - expected)
    return (
        f"differs: {len(lost)} quads lost, {len(added)} added"
        + "".join(f"\n      - {quad}" for quad in lost[:3])
        + "".join(f"\n      + {quad}" for quad in added[:3])
    )


def test_share_of_the_corpus_that_round_trips_whole():
    paths = sorted(CORPUS.glob("*.jsonld"))
    assert len(paths) >= 45
    outcomes = {path.name: outcome(index, path) for index, path in enumerate(paths)}
    whole = sum(1 for result in outcomes.values() if result == "whole")
    share = 100 * whole / len(paths)
    print(f"\nimport corpus: {whole}/{len(paths)} round-trip whole ({share:.1f} %)")
    for name, result in outcomes.items():
        if result != "whole":
            print(f"  {name}: {result}")
    misses = {name: result for name, result in outcomes.items() if result != "whole"}
    unexpected = {
        name: result
        for name, result in misses.items()
        if not result.startswith(KNOWN_MISSES.get(name, "whole"))
    }
    assert not unexpected, unexpected
    assert whole * 100 >= SHARE * len(paths), misses
    assert whole >= 80, misses  # the count at the time of writing: raise it, never lower it


def test_a_property_iri_too_long_to_keep_is_refused_with_its_length(brand, tmp_path):
    from kb.models import EntityLink
    from kb.validation import MAX_PROPERTY_LENGTH

    assert EntityLink._meta.get_field("property").max_length == MAX_PROPERTY_LENGTH
    long_iri = "https://vocab.example/" + "x" * 100
    bad = tmp_path / "long.jsonld"
    bad.write_text(
        json.dumps({"@context": "https://schema.org", "@id": PRODUCT, "@type": "Product",
                    "name": "Longjing", long_iri: "1"}),
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(bad))
    assert str(refused.value).splitlines()[1] == (
        f"{bad}: /{long_iri.replace('/', '~1')}: the property IRI is {len(long_iri)} "
        "characters long; "
        "at most 100 are kept"
    )
