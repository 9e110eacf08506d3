"""Every way an import can be refused: the file, the JSON pointer and the reason — and nothing written."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from kb.models import AuditEntry, Entity, Revision

pytestmark = pytest.mark.django_db

CONTEXT = "https://schema.org"
GOOD = {"@context": CONTEXT, "@id": "https://tea.example/#organization", "@type": "Organization"}


def as_bytes(document) -> bytes:
    return document if isinstance(document, bytes) else json.dumps(document).encode("utf-8")


def nested(levels: int) -> dict:
    node = {"@type": "Thing", "name": "innermost"}
    for _ in range(levels):
        node = {"@type": "Thing", "subjectOf": node}
    return {"@context": CONTEXT, **node}


CASES = {
    "malformed JSON": (
        b'{"@context": "https://schema.org", "@type": "Product",}',
        "/",
        "malformed JSON at line 1, column 55: Expecting property name enclosed in double quotes",
    ),
    "not UTF-8": (
        '{"@context": "https://schema.org", "@type": "Product", "name": "Caf\xe9"}'.encode(
            "latin-1"
        ),
        "/",
        "not UTF-8 text (byte 67)",
    ),
    "empty file": (b" \n", "/", "the file is empty"),
    "scalar at the top": (b"42", "/", "expected a JSON-LD object or array at the top level"),
    "no @context": (
        {"@type": "Product", "name": "Tea"},
        "/",
        'no @context, so no term would be understood; add "@context": "https://schema.org"',
    ),
    "no @type": ({"@context": CONTEXT, "name": "Tea"}, "/", "the node has no @type"),
    "unknown type": (
        {"@context": CONTEXT, "@type": "Prodcut", "name": "Tea"},
        "/@type",
        "unknown schema.org type 'Prodcut' (did you mean 'Product'?)",
    ),
    "unknown property": (
        {"@context": CONTEXT, "@graph": [{"@type": "Product", "name": "Tea", "colour": "green"}]},
        "/@graph/0/colour",
        "unknown schema.org property 'colour' (did you mean 'color'?)",
    ),
    "property not for this type": (
        {"@context": CONTEXT, "@type": "Product", "name": "Tea", "founder": "Chen"},
        "/founder",
        "property 'founder' does not apply to Product; it applies to Organization",
    ),
    "text where a date is expected": (
        {"@context": CONTEXT, "@type": "Organization", "foundingDate": "last spring"},
        "/foundingDate",
        "'foundingDate' expects Date, got the text 'last spring'",
    ),
    "number where a node is expected": (
        {"@context": CONTEXT, "@type": "Organization", "numberOfEmployees": 86},
        "/numberOfEmployees",
        "'numberOfEmployees' expects QuantitativeValue, got the number 86",
    ),
    "integer past what JSON readers keep exactly": (
        {
            "@context": CONTEXT,
            "@type": "Product",
            "name": "Tea",
            "offers": {"@type": "Offer", "price": 123456789012345678901234567890},
        },
        "/offers/price",
        "'price': 123456789012345678901234567890 is past the integers JSON readers keep "
        'exactly (±9,007,199,254,740,991); give it as text: "123456789012345678901234567890"',
    ),
    "number that is not finite": (
        {
            "@context": CONTEXT,
            "@type": "Product",
            "name": "Tea",
            "offers": {"@type": "Offer", "price": float("nan")},
        },
        "/offers/price",
        "'price' expects a finite number, got nan",
    ),
    "boolean where text is expected": (
        {"@context": CONTEXT, "@type": "Product", "name": True},
        "/name",
        "'name' expects Text, got True",
    ),
    "not an enumeration member": (
        {
            "@context": CONTEXT,
            "@type": "Product",
            "name": "Tea",
            "offers": [
                {"@type": "Offer", "price": "3.00", "priceCurrency": "USD"},
                {"@type": "Offer", "availability": "https://schema.org/InStok"},
            ],
        },
        "/offers/1/availability",
        "'https://schema.org/InStok' is not a member of ItemAvailability (did you mean "
        "'InStock'?); use one of BackOrder, Discontinued, InStock, InStoreOnly, "
        "LimitedAvailability, MadeToOrder, OnlineOnly, OutOfStock…",
    ),
    "reference to the wrong type": (
        {
            "@context": CONTEXT,
            "@graph": [
                {"@id": "https://tea.example/p/chen", "@type": "Person", "name": "Chen"},
                {"@type": "Product", "name": "Tea", "brand": {"@id": "https://tea.example/p/chen"}},
            ],
        },
        "/@graph/1/brand",
        "'brand' expects Brand or Organization, but https://tea.example/p/chen is a Person",
    ),
    "language the brand does not have": (
        {"@context": CONTEXT, "@type": "Product", "name": {"@value": "Thé", "@language": "fr"}},
        "/name",
        "language 'fr' is not one of the brand's languages (en, zh-Hans)",
    ),
    "language map with a foreign language": (
        {
            "@context": [CONTEXT, {"names": {"@id": "schema:name", "@container": "@language"}}],
            "@type": "Product",
            "names": {"en": "Tea", "de": "Tee"},
        },
        "/names/de",
        "language 'de' is not one of the brand's languages (en, zh-Hans)",
    ),
    "remote context": (
        {"@context": "https://contexts.example/tea.jsonld", "@type": "Product", "name": "Tea"},
        "/",
        "invalid JSON-LD: remote context 'https://contexts.example/tea.jsonld' is not "
        'available offline; only the schema.org context is (use "@context": "https://schema.org")',
    ),
    # Another vocabulary's property is kept when it is an absolute IRI (see
    # tests/test_import_lenient.py); a compact IRI whose prefix the @context lacks is not.
    "term outside schema.org": (
        {"@context": CONTEXT, "@type": "Product", "gs1:netContent": "1 kg"},
        "/gs1:netContent",
        "gs1:netContent is not a schema.org property, nor an absolute http(s) or urn: IRI "
        "(is the prefix 'gs1' defined in the @context?)",
    ),
    "nested deeper than the limit": (
        nested(70),
        "/" + "/".join(["subjectOf"] * 64),
        "nested deeper than 64 levels (SOURCEBOOK_IMPORT_MAX_DEPTH)",
    ),
}


def assert_nothing_written():
    assert Entity.objects.count() == 0
    assert Revision.objects.count() == 0
    assert AuditEntry.objects.filter(action__in=["create", "update"]).count() == 0


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_file_is_refused_naming_file_pointer_and_reason(case, brand, tmp_path):
    document, pointer, reason = CASES[case]
    good = tmp_path / "good.jsonld"
    good.write_bytes(as_bytes(GOOD))
    bad = tmp_path / "bad.jsonld"
    bad.write_bytes(as_bytes(document))
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(good), str(bad))
    assert str(refused.value).splitlines() == [
        "Nothing was imported: 1 problem found.",
        f"{bad}: {pointer}: {reason}",
    ]
    assert_nothing_written()


def test_every_problem_of_every_file_is_listed(brand, tmp_path):
    first = tmp_path / "first.jsonld"
    first.write_bytes(as_bytes({"@context": CONTEXT, "@type": "Prodcut", "colour": "red"}))
    second = tmp_path / "second.jsonld"
    second.write_bytes(b"[1,")
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(first), str(second))
    lines = str(refused.value).splitlines()
    assert lines[0] == "Nothing was imported: 3 problems found."
    assert lines[1:] == [
        f"{first}: /@type: unknown schema.org type 'Prodcut' (did you mean 'Product'?)",
        f"{first}: /colour: unknown schema.org property 'colour' (did you mean 'color'?)",
        f"{second}: /: malformed JSON at line 1, column 4: Expecting value",
    ]
    assert_nothing_written()


def test_ten_thousand_levels_of_nesting_are_refused_without_crashing(brand, tmp_path):
    deep = tmp_path / "deep.jsonld"
    deep.write_bytes(
        b'{"@context": "https://schema.org", "@type": "Thing", "name": '
        + b"[" * 10_000
        + b'"x"'
        + b"]" * 10_000
        + b"}"
    )
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(deep))
    assert str(refused.value).splitlines() == [
        "Nothing was imported: 1 problem found.",
        f"{deep}: /: nested far deeper than 64 levels (SOURCEBOOK_IMPORT_MAX_DEPTH); "
        "the JSON cannot even be parsed",
    ]
    assert_nothing_written()


@override_settings(SOURCEBOOK_IMPORT_MAX_BYTES=1_000)
def test_file_over_the_size_limit_is_refused_unread(brand, tmp_path):
    big = tmp_path / "big.jsonld"
    big.write_bytes(as_bytes({**GOOD, "description": "x" * 2_000}))
    size = big.stat().st_size
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(big))
    assert str(refused.value).splitlines()[1] == (
        f"{big}: /: the file is {size:,} bytes, over the import limit of 1,000 bytes "
        "(SOURCEBOOK_IMPORT_MAX_BYTES)"
    )
    assert_nothing_written()


def test_missing_file_is_named(brand, tmp_path):
    good = tmp_path / "good.jsonld"
    good.write_bytes(as_bytes(GOOD))
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(good), str(tmp_path / "nope.jsonld"))
    assert str(refused.value) == f"{tmp_path / 'nope.jsonld'}: no such file; nothing was imported."
    assert_nothing_written()


def test_unknown_brand_is_refused(db, tmp_path):
    good = tmp_path / "good.jsonld"
    good.write_bytes(as_bytes(GOOD))
    with pytest.raises(CommandError, match="No brand 'nobody'"):
        call_command("import_jsonld", "nobody", str(good))
    assert_nothing_written()


def test_a_refused_reimport_leaves_the_existing_content_alone(brand, tmp_path):
    good = tmp_path / "good.jsonld"
    good.write_bytes(as_bytes({**GOOD, "name": "Acme"}))
    call_command("import_jsonld", "acme-tea", str(good))
    before = list(Entity.objects.values_list("iri", "version", "data"))
    revisions = Revision.objects.count()
    good.write_bytes(as_bytes({**GOOD, "name": "Changed"}))
    bad = tmp_path / "bad.jsonld"
    bad.write_bytes(as_bytes({"@context": CONTEXT, "@type": "Prodcut"}))
    with pytest.raises(CommandError):
        call_command("import_jsonld", "acme-tea", str(good), str(bad))
    assert list(Entity.objects.values_list("iri", "version", "data")) == before
    assert Revision.objects.count() == revisions
