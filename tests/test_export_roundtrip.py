"""A backup made with export_jsonld keeps everything: the demo brand, exported, imported
into an empty brand and exported again, is the same graph (canonical N-Quads), its facts
and FAQs, their languages and their published state included."""

import json
from collections import Counter
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


def export(slug, path, state="published", *options) -> dict:
    call_command(
        "export_jsonld", slug, "--output", str(path), "--state", state, *options, stderr=StringIO()
    )
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


def test_an_export_of_working_copies_keeps_their_workflow_state(tmp_path):
    """export_jsonld --state latest --with-workflow writes each object's workflow state; an
    import without
    --publish puts every object back in it: drafts, in review, scheduled (with the time),
    published, unpublished, archived — entities, facts and FAQs alike."""
    from datetime import timedelta

    from django.utils import timezone

    from kb.jsonld import WORKFLOW_GO_LIVE, WORKFLOW_STATUS
    from kb.models import Entity
    from kb.services.entities import entity_update
    from kb.services.workflow import object_publish, object_submit_for_review, object_unpublish

    demo = demo_load()["brand"]
    products = list(Entity.objects.filter(brand=demo, primary_type="Product").order_by("iri"))
    go_live = (timezone.now() + timedelta(days=3)).replace(microsecond=0)

    def edited(entity):
        data = {**entity.data, "sku": [{"@value": f"NEW-{entity.pk}"}]}
        return entity_update(entity=entity, data=data, expected_version=entity.version)

    object_submit_for_review(obj=edited(products[0]))
    object_publish(obj=edited(products[1]), go_live_at=go_live)
    object_unpublish(obj=products[2])
    object_unpublish(obj=products[3], archive=True)
    fact = Fact.objects.get(brand=demo, key="garden-area")
    fact = statement_update(obj=fact, expected_version=fact.version, value="43")
    object_submit_for_review(obj=fact)
    faq = FAQ.objects.filter(brand=demo).order_by("key").first()
    object_unpublish(obj=faq)

    def states(brand) -> dict:
        found = {e.iri: e.status for e in Entity.objects.filter(brand=brand)}
        found |= {f"fact:{f.key}": f.status for f in Fact.objects.filter(brand=brand)}
        found |= {f"faq:{f.key}": f.status for f in FAQ.objects.filter(brand=brand)}
        return found

    first = export(demo.slug, tmp_path / "first.jsonld", "latest", "--with-workflow")
    nodes = {n["@id"]: n for n in first["@graph"]}
    assert nodes[products[0].iri][WORKFLOW_STATUS] == "in_review"
    assert nodes[products[1].iri][WORKFLOW_STATUS] == "scheduled"
    assert nodes[products[1].iri][WORKFLOW_GO_LIVE] == go_live.isoformat()
    assert nodes[f"{demo.base_url}/id/fact/garden-area"][WORKFLOW_STATUS] == "in_review"

    empty = brand_create(
        slug="restored", name=demo.name, base_url=demo.base_url, languages=demo.languages
    )
    jsonld_import(brand=empty, sources=[read_path(tmp_path / "first.jsonld")])
    second = export(empty.slug, tmp_path / "second.jsonld", "latest", "--with-workflow")
    assert canonical(first) == canonical(second)
    assert states(empty) == states(demo)
    assert Counter(states(demo).values()) == {
        Status.PUBLISHED: len(states(demo)) - 6,
        Status.IN_REVIEW: 2,
        Status.SCHEDULED: 1,
        Status.UNPUBLISHED: 2,
        Status.ARCHIVED: 1,
    }
    restored = Entity.objects.get(brand=empty, iri=products[1].iri)
    assert restored.latest_revision.go_live_at == go_live
    # One file holds the working copies only: the live revisions of objects with changes
    # pending (in review, scheduled) are in the published export. Imported first with
    # --publish, then the latest, the two restore both, and every state.
    both = brand_create(
        slug="restored-both", name=demo.name, base_url=demo.base_url, languages=demo.languages
    )
    live = export(demo.slug, tmp_path / "live.jsonld")
    jsonld_import(brand=both, sources=[read_path(tmp_path / "live.jsonld")], publish=True)
    jsonld_import(brand=both, sources=[read_path(tmp_path / "first.jsonld")])
    assert states(both) == states(demo)
    assert canonical(export(both.slug, tmp_path / "both-live.jsonld")) == canonical(live)
    both_latest = export(both.slug, tmp_path / "both.jsonld", "latest", "--with-workflow")
    assert canonical(both_latest) == canonical(first)


def test_a_workflow_state_that_is_none_is_refused_with_its_pointer(tmp_path):
    from django.core.management.base import CommandError

    from kb.jsonld import WORKFLOW_GO_LIVE, WORKFLOW_STATUS

    brand = brand_create(slug="acme", name="Acme", base_url="https://tea.example", languages=["en"])
    path = tmp_path / "states.jsonld"
    path.write_text(
        json.dumps(
            {
                "@context": "https://schema.org",
                "@graph": [
                    {"@id": "https://tea.example/#a", "@type": "Product", "name": "A",
                     WORKFLOW_STATUS: "live"},
                    {"@id": "https://tea.example/#b", "@type": "Product", "name": "B",
                     WORKFLOW_STATUS: "scheduled", WORKFLOW_GO_LIVE: "next week"},
                ],
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(ImportRefused) as refused:
        jsonld_import(brand=brand, sources=[read_path(path)])
    assert [str(p) for p in refused.value.problems] == [
        f"{path}: /@graph/0/{WORKFLOW_STATUS.replace('/', '~1')}: a workflow status is one of "
        "draft, in_review, scheduled, published, unpublished, archived, not 'live'",
        f"{path}: /@graph/1/{WORKFLOW_GO_LIVE.replace('/', '~1')}: a go-live time is an ISO 8601 "
        "date-time, not 'next week'",
    ]
    with pytest.raises(CommandError, match="--with-workflow goes with --state latest"):
        export(brand.slug, tmp_path / "x.jsonld", "published", "--with-workflow")
