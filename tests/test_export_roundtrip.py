"""A backup made with export_jsonld keeps everything: the demo brand, exported, imported
into an empty brand and exported again, is the same graph (canonical N-Quads), its facts
and FAQs, their languages and their published state included."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from kb import jsonld
from kb.demo_brand import demo_load
from kb.importing import read_path
from kb.models import FAQ, Fact, Status
from kb.services.brands import brand_create
from kb.services.imports import ImportRefused, jsonld_import
from kb.services.statements import statement_update

pytestmark = pytest.mark.django_db

SCHEMA = "http://schema.org/"


def canonical(document) -> list[str]:
    """Canonical N-Quads (pyld URDNA2015, offline loader); http/https schema.org spellings
    are the same vocabulary."""
    nquads = jsonld.to_rdf(document).replace("https://schema.org/", SCHEMA)
    return sorted(nquads.splitlines())


def export(slug, path, state="published") -> dict:
    call_command("export_jsonld", slug, "--output", str(path), "--state", state, stderr=StringIO())
    return json.loads(path.read_text(encoding="utf-8"))


def fields(obj) -> dict:
    snapshot = obj.snapshot()
    snapshot["about"] = obj.about.iri if obj.about_id else None
    return snapshot


def test_demo_brand_export_import_export_is_identical(tmp_path):
    demo = demo_load()["brand"]
    first = export(demo.slug, tmp_path / "first.jsonld")
    empty = brand_create(
        slug="restored", name=demo.name, base_url=demo.base_url, languages=demo.languages
    )
    result = jsonld_import(
        brand=empty, sources=[read_path(tmp_path / "first.jsonld")], publish=True
    )
    assert result.facts_created and result.faqs_created
    second = export(empty.slug, tmp_path / "second.jsonld")

    before, after = canonical(first), canonical(second)
    assert before == after
    claims = [q for q in before if f"<{SCHEMA}Claim>" in q]
    questions = [q for q in before if f"<{SCHEMA}Question>" in q]
    assert len(claims) == Fact.objects.filter(brand=demo).count() > 0
    assert len(questions) == FAQ.objects.filter(brand=demo).count() > 0

    # Every field of every fact and FAQ came back under the same key, published.
    for model in (Fact, FAQ):
        originals = {o.key: fields(o) for o in model.objects.filter(brand=demo)}
        restored = {o.key: fields(o) for o in model.objects.filter(brand=empty)}
        assert restored == originals
        assert not model.objects.filter(brand=empty).exclude(status=Status.PUBLISHED).exists()


def test_latest_export_carries_drafts_and_published_leaves_them_out(tmp_path):
    demo = demo_load()["brand"]
    fact = Fact.objects.filter(brand=demo).order_by("key").first()
    statement_update(
        obj=fact, expected_version=None, statement={**fact.statement, "en": "A draft statement."}
    )
    published = json.dumps(export(demo.slug, tmp_path / "p.jsonld"))
    latest = json.dumps(export(demo.slug, tmp_path / "l.jsonld", state="latest"))
    assert "A draft statement." in latest and "A draft statement." not in published

    # Imported without --publish, the brand gets drafts; with it, published objects.
    empty = brand_create(
        slug="drafts", name="Drafts", base_url=demo.base_url, languages=demo.languages
    )
    jsonld_import(brand=empty, sources=[read_path(tmp_path / "l.jsonld")])
    restored = Fact.objects.get(brand=empty, key=fact.key)
    assert restored.statement["en"] == "A draft statement."
    assert restored.live_revision_id is None


def test_reimporting_an_export_changes_nothing(tmp_path):
    demo = demo_load()["brand"]
    export(demo.slug, tmp_path / "backup.jsonld")
    result = jsonld_import(brand=demo, sources=[read_path(tmp_path / "backup.jsonld")])
    assert not result.facts_created and not result.facts_updated
    assert len(result.facts_unchanged) == Fact.objects.filter(brand=demo).count()
    assert not result.faqs_created and not result.faqs_updated


def test_a_claim_that_cannot_be_a_fact_is_refused_saying_why(tmp_path):
    demo = demo_load()["brand"]
    claim = {
        "@context": "https://schema.org",
        "@id": f"{demo.base_url}/id/fact/broken",
        "@type": "Claim",
        "text": "Unfinished.",
        "about": {"@id": f"{demo.base_url}/nowhere/#thing"},
        "citation": {"@type": "CreativeWork", "url": "https://source.example/"},
        "temporalCoverage": "last year",
    }
    path = tmp_path / "claim.jsonld"
    path.write_text(json.dumps(claim), encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        jsonld_import(brand=demo, sources=[read_path(path)])
    messages = "\n".join(p.message for p in refused.value.problems)
    assert "the fact's about must name one of the brand's entities" in messages
    assert "the fact's temporalCoverage must be a date" in messages
    assert not Fact.objects.filter(key="broken").exists()


def test_a_claim_past_the_facts_limits_is_refused_not_crashed(tmp_path):
    demo = demo_load()["brand"]
    organization = f"{demo.base_url}/#organization"
    claim = {
        "@context": "https://schema.org",
        "@id": f"{demo.base_url}/id/fact/gardens",
        "@type": "Claim",
        "text": "Grown on 42 hectares.",
        "about": {"@id": organization},
        "mainEntity": {"@type": "PropertyValue", "value": "4" * 201, "unitText": "ha"},
        "citation": {"@type": "CreativeWork", "url": "https://source.example/"},
        "temporalCoverage": "2025-01-01",
    }
    path = tmp_path / "claim.jsonld"
    path.write_text(json.dumps(claim), encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        jsonld_import(brand=demo, sources=[read_path(path)])
    messages = [p.message for p in refused.value.problems]
    assert any("the fact's value is 201 characters long; at most 200" in m for m in messages)
    assert not Fact.objects.filter(value="4" * 201).exists()
