"""The shipped demo brand: realistic, bilingual, valid, and loadable twice."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from kb import jsonld
from kb.demo_brand import DEMO_DIR
from kb.models import FAQ, Entity, Fact, Revision, Status
from kb.selectors import brand_graph

pytestmark = pytest.mark.django_db


def canonical(document) -> list[str]:
    nquads = jsonld.to_rdf(document).replace("https://schema.org/", "http://schema.org/")
    return sorted(nquads.splitlines())


def test_loaddemo_loads_a_realistic_bilingual_brand():
    out = StringIO()
    call_command("loaddemo", "--visibility-days", "0", stdout=out)
    assert "Login: demo / sourcebook-demo" in out.getvalue()
    products = Entity.objects.filter(primary_type="Product")
    assert products.count() >= 20
    for product in products:
        currencies = sorted(offer["priceCurrency"][0]["@value"] for offer in product.data["offers"])
        assert currencies == ["EUR", "USD"], product.iri
        languages = {v["@language"] for v in product.data["name"]}
        assert languages == {"en", "zh-Hans"}, product.iri
        assert product.status == Status.PUBLISHED
    assert Entity.objects.filter(primary_type="Store").count() == 2
    organization = Entity.objects.get(iri="https://www.westlakeleaf.example/#organization")
    assert organization.data["founder"][0]["@id"].startswith("https://www.westlakeleaf.example/")
    assert len(organization.data["contactPoint"]) >= 2
    assert len(organization.data["sameAs"]) >= 3
    assert Fact.objects.count() >= 30
    assert not Fact.objects.filter(source_url="").exists()
    assert FAQ.objects.count() >= 20
    for faq in FAQ.objects.all():
        assert set(faq.question) == {"en", "zh-Hans"} and set(faq.answer) == {"en", "zh-Hans"}
    assert not Fact.objects.exclude(status=Status.PUBLISHED).exists()
    # Revisions say which file their content came from, not where it was on this server.
    notes = set(Revision.objects.values_list("message", flat=True))
    assert notes == {"Imported from graph.jsonld", "Demo content"}, notes


def test_loaddemo_twice_changes_nothing():
    call_command("loaddemo", "--visibility-days", "0", stdout=StringIO())
    counts = (Entity.objects.count(), Fact.objects.count(), FAQ.objects.count())
    versions = sorted(Entity.objects.values_list("version", flat=True))
    out = StringIO()
    call_command("loaddemo", "--visibility-days", "0", stdout=out)
    assert "(0 new, 0 updated)" in out.getvalue()
    assert (Entity.objects.count(), Fact.objects.count(), FAQ.objects.count()) == counts
    assert sorted(Entity.objects.values_list("version", flat=True)) == versions


def test_demo_graph_survives_import_and_export_unchanged():
    call_command("loaddemo", "--visibility-days", "0", stdout=StringIO())
    source = json.loads((DEMO_DIR / "graph.jsonld").read_text(encoding="utf-8"))
    brand = Entity.objects.first().brand
    exported = brand_graph(brand=brand, state="published")
    # The export also holds the brand's facts (Claim) and FAQs (FAQPage): the entities are
    # exactly the demo graph's.
    entities = [n for n in exported["@graph"] if n["@type"] not in ("Claim", "FAQPage")]
    assert len(entities) < len(exported["@graph"])
    assert canonical({**exported, "@graph": entities}) == canonical(source)


def test_demo_ships_ai_visibility_with_a_labelled_local_engine_and_history():
    from visibility.models import Engine, PromptSet, Run

    out = StringIO()
    call_command("loaddemo", stdout=out)
    assert "2 demo engines, 2 prompt sets, 14 days of visibility history" in out.getvalue()
    engines = Engine.objects.order_by("name")
    assert [(e.name, e.is_demo, e.base_url) for e in engines] == [
        ("Demo Chat (local, scripted)", True, "http://127.0.0.1:8765/v1"),
        ("Demo Search (local, scripted)", True, "http://127.0.0.1:8765/v1"),
    ]
    assert sorted(PromptSet.objects.values_list("language", flat=True)) == ["en", "zh-Hans"]
    assert Run.objects.filter(trigger="demo", state="done").count() == 28
    # The scripted answers are deterministic, so is the demo's report.
    report = StringIO()
    call_command("visibility_report", "westlake-leaf", stdout=report)
    rows = report.getvalue().splitlines()
    assert rows[4].split()[4:6] == ["24.1", "224"]  # Demo Chat (local, scripted): score, answers
    assert rows[5].split()[4:6] == ["48.8", "224"]  # Demo Search
    assert rows[7].split()[:3] == ["All", "36.6", "448"]
