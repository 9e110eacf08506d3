"""An import counts the facts and FAQs it created, updated, left unchanged and published, as
it counts entities, under the same names everywhere: ImportResult, the import_jsonld output,
the API's import response and an import job's counts."""

import copy
import json
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from kb.importing import source_from_bytes
from kb.models import FAQ, Fact, ImportJob
from kb.services.imports import ImportResult, count_nodes, import_job_create, jsonld_import
from kb.services.tokens import api_token_create

pytestmark = pytest.mark.django_db

BASE = "https://tea.example"
ORG = f"{BASE}/#organization"
API = "/api/v1/brands/acme-tea"
JSONLD = "application/ld+json"


def claim(key: str, text: str) -> dict:
    return {
        "@id": f"{BASE}/id/fact/{key}",
        "@type": "Claim",
        "text": [{"@value": text, "@language": "en"}],
        "about": {"@id": ORG},
        "mainEntity": {"@type": "PropertyValue", "value": "1998"},
        "citation": {"@type": "CreativeWork", "url": "https://source.example/report"},
        "temporalCoverage": "2025-12-31",
    }


def question(key: str, answer: str) -> dict:
    return {
        "@type": "Question",
        "@id": f"{BASE}/faq/#{key}",
        "name": [{"@value": f"Question {key}?", "@language": "en"}],
        "acceptedAnswer": {"@type": "Answer", "text": [{"@value": answer, "@language": "en"}]},
    }


FIRST = {
    "@context": "https://schema.org",
    "@graph": [
        {"@id": ORG, "@type": "Organization", "name": "Acme Tea", "url": f"{BASE}/"},
        claim("founded", "Acme Tea was founded in 1998."),
        claim("gardens", "Acme Tea farms 42 hectares."),
        {
            "@type": "FAQPage",
            "about": {"@id": ORG},
            "mainEntity": [
                question("shipping", "To 40 countries."),
                question("storage", "Airtight and dark."),
                question("returns", "Within 30 days."),
            ],
        },
    ],
}


def second() -> dict:
    """FIRST again with one fact and one FAQ changed, a new fact, the entity as it was."""
    document = copy.deepcopy(FIRST)
    graph = document["@graph"]
    graph[2] = claim("gardens", "Acme Tea farms 44 hectares.")
    graph.append(claim("employees", "Acme Tea employs 86 people."))
    graph[3]["mainEntity"][0] = question("shipping", "To 41 countries.")
    return document


def raw(document: dict) -> bytes:
    return json.dumps(document).encode()


FIRST_COUNTS = {
    "created": 1, "updated": 0, "unchanged": 0, "published": 0,
    "facts_created": 2, "facts_updated": 0, "facts_unchanged": 0, "facts_published": 0,
    "faqs_created": 3, "faqs_updated": 0, "faqs_unchanged": 0, "faqs_published": 0,
}  # fmt: skip
SECOND_COUNTS = {
    "created": 0, "updated": 0, "unchanged": 1, "published": 0,
    "facts_created": 1, "facts_updated": 1, "facts_unchanged": 1, "facts_published": 0,
    "faqs_created": 0, "faqs_updated": 1, "faqs_unchanged": 2, "faqs_published": 0,
}  # fmt: skip


def test_import_result_counts_entities_facts_and_faqs(brand):
    first = jsonld_import(brand=brand, sources=[source_from_bytes("first", raw(FIRST))])
    assert first.counts == FIRST_COUNTS
    again = jsonld_import(brand=brand, sources=[source_from_bytes("second", raw(second()))])
    assert again.counts == SECOND_COUNTS
    assert (again.facts_created, again.facts_updated) == (["employees"], ["gardens"])
    assert again.facts_unchanged == ["founded"]
    assert list(ImportResult().counts) == list(ImportResult.COUNTED)
    assert (Fact.objects.count(), FAQ.objects.count()) == (3, 3)


def test_import_jsonld_prints_the_counts_of_facts_and_faqs(brand, tmp_path):
    first, again = tmp_path / "first.jsonld", tmp_path / "second.jsonld"
    first.write_bytes(raw(FIRST))
    again.write_bytes(raw(second()))
    out = StringIO()
    call_command("import_jsonld", "acme-tea", str(first), stdout=out)
    assert out.getvalue() == (
        "Imported 1 entities into 'acme-tea': 1 created, 0 updated, 0 unchanged; "
        "2 facts: 2 created, 0 updated, 0 unchanged; "
        "3 FAQs: 3 created, 0 updated, 0 unchanged.\n"
    )
    out = StringIO()
    call_command("import_jsonld", "acme-tea", str(again), "--publish", stdout=out)
    assert out.getvalue() == (
        "Imported 1 entities into 'acme-tea': 0 created, 0 updated, 1 unchanged, 1 published; "
        "3 facts: 1 created, 1 updated, 1 unchanged, 3 published; "
        "3 FAQs: 0 created, 1 updated, 2 unchanged, 3 published.\n"
    )


def test_an_entity_only_import_prints_no_fact_or_faq_counts(brand, tmp_path):
    path = tmp_path / "org.jsonld"
    path.write_bytes(raw({"@context": "https://schema.org", **FIRST["@graph"][0]}))
    out = StringIO()
    call_command("import_jsonld", "acme-tea", str(path), stdout=out)
    assert out.getvalue() == (
        "Imported 1 entities into 'acme-tea': 1 created, 0 updated, 0 unchanged.\n"
    )


@pytest.fixture
def writer(brand):
    cache.clear()  # throttle counts live in the cache; SQLite reuses ids across tests
    _, token = api_token_create(brand=brand, scopes=["read", "write", "publish"])
    yield Client(headers={"Authorization": f"Bearer {token}"})
    cache.clear()


def post_import(client: Client, document: dict, query: str = ""):
    return client.generic("POST", f"{API}/import/{query}", raw(document), content_type=JSONLD)


def test_the_api_import_response_lists_facts_and_faqs(writer):
    first = post_import(writer, FIRST)
    assert first.status_code == 200, first.content
    faq_keys = list(FAQ.objects.order_by("pk").values_list("key", flat=True))
    assert [key.rsplit("-", 1)[0] for key in faq_keys] == ["shipping", "storage", "returns"]
    assert first.json() == {
        "created": [ORG], "updated": [], "unchanged": [], "published": [],
        "facts_created": ["founded", "gardens"], "facts_updated": [], "facts_unchanged": [],
        "facts_published": [],
        "faqs_created": faq_keys, "faqs_updated": [], "faqs_unchanged": [], "faqs_published": [],
    }  # fmt: skip
    again = post_import(writer, second(), "?publish=true")
    assert again.status_code == 200, again.content
    body = again.json()
    assert {name: len(keys) for name, keys in body.items()} == {
        **SECOND_COUNTS, "published": 1, "facts_published": 3, "faqs_published": 3,
    }  # fmt: skip
    assert (body["facts_created"], body["facts_updated"]) == (["employees"], ["gardens"])
    assert (body["faqs_updated"], body["faqs_unchanged"]) == (faq_keys[:1], faq_keys[1:])


def test_the_openapi_schema_describes_the_fact_and_faq_lists(writer):
    schema = writer.get("/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200, schema.content[:300]
    described = schema.json()
    properties = described["components"]["schemas"]["ImportResult"]["properties"]
    assert list(properties) == list(ImportResult.COUNTED)
    assert properties["facts_created"] == {"type": "array", "items": {"type": "string"}}


def test_an_import_job_counts_facts_and_faqs_after_the_task_runs(
    brand, writer, settings, django_capture_on_commit_callbacks
):
    settings.SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES = 3  # FIRST has 13 nodes: a job
    with django_capture_on_commit_callbacks(execute=True) as queued:
        accepted = post_import(writer, FIRST)
    assert accepted.status_code == 202, accepted.content
    assert len(queued) == 1  # the task ran in-process (tests run tasks eagerly)
    followed = writer.get(accepted["Location"]).json()
    assert (followed["state"], followed["counts"]) == ("succeeded", FIRST_COUNTS)
    # The service and the task directly, as a worker runs them.
    from kb.tasks import import_run

    with django_capture_on_commit_callbacks(execute=False):
        job = import_job_create(
            brand=brand, raw=raw(second()), nodes=count_nodes(second()), publish=True
        )
    assert import_run(job.pk) == "succeeded"
    job.refresh_from_db()
    assert job.counts == {
        **SECOND_COUNTS, "published": 1, "facts_published": 3, "faqs_published": 3,
    }  # fmt: skip
    assert ImportJob.objects.count() == 2
