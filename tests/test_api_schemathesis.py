"""Schemathesis against /api/schema/: every operation, with a valid token of the demo brand,
bounded examples, no server error and every response as the schema documents it.

The schema is loaded from the WSGI application inside the test (not at import), and every
request goes through that application in-process, inside the test's transaction: the demo
brand and its release are created by the test and rolled back after it. Path parameters are
drawn from the brand's real objects half of the time (so detail endpoints answer 200, not
only 404) and generated the other half.
"""

import logging

import hypothesis.errors
import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from kb.api.base import TokenRateThrottle
from kb.demo_brand import demo_load
from kb.models import FAQ, Entity, Fact, ImportJob
from kb.services.tokens import api_token_create
from publishing.models import PublishRequest, Release, Target

# What "the API keeps its schema" means here: no 5xx, and status code, content type,
# headers and body of every response as documented. (Schemathesis' other default checks
# judge business rules the schema cannot express, e.g. that ?lang= must be one of the
# brand's languages or that If-Match must hold the current version: those are 400/412 by
# design and tested in test_api_behaviour.py.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 25, schemathesis.GenerationMode.NEGATIVE: 10}
SLUG = "westlake-leaf"
JSONLD_MEDIA = "application/ld+json"


def known_values(brand, tmp_path) -> dict[str, dict[str, list]]:
    """Real values for the path parameters, per path segment before them."""
    call_command("publish", SLUG, "--out", str(tmp_path / "site"), "--reason", "schemathesis")
    release = Release.objects.get(brand=brand)
    hook = Target.objects.create(
        brand=brand, name="cms", kind=Target.Kind.WEBHOOK, enabled=False,
        config={"url": "https://93.184.215.14/hook", "events": ["release.deployed"]},
        secret="whsec_c2VjcmV0",
    )  # fmt: skip
    from visibility.demo import visibility_demo_load
    from visibility.models import Run

    visibility_demo_load(brand=brand, days=2)
    runs = list(Run.objects.filter(brand=brand).values_list("pk", flat=True)[:4])
    entities = [str(u) for u in Entity.objects.filter(brand=brand).values_list("uuid", flat=True)]
    return {
        "entity_id": {"entities": entities[:6]},
        "id": {
            "facts": list(Fact.objects.filter(brand=brand).values_list("pk", flat=True)[:4]),
            "faqs": list(FAQ.objects.filter(brand=brand).values_list("pk", flat=True)[:4]),
            "publish-requests": list(
                PublishRequest.objects.filter(brand=brand).values_list("pk", flat=True)
            ),
            "webhooks": [hook.pk],
            "runs": runs,
            "imports": [ImportJob.objects.create(brand=brand, state=ImportJob.State.SUCCEEDED).pk],
        },
        "number": {"releases": [release.number]},
        "group": {"paired": ["Buying Chinese green tea"]},
        "path": {"artifacts": ["llms.txt", "zh-Hans/llms.txt", "robots.txt", "sitemap.xml"]},
    }


def strategy_for(operation, mode, token: str, known: dict):
    headers = {"Authorization": f"Bearer {token}"}
    segments = operation.path.strip("/").split("/")
    choices = {"slug": [SLUG]}
    for parameter in operation.path_parameters:
        name = parameter.name
        if name in known:
            where = next(i for i, s in enumerate(segments) if f"{{{name}}}" in s)
            choices[name] = known[name][segments[where - 1]]  # e.g. "facts" for {id}
    real = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in choices.items()})
    with_real = real.flatmap(
        lambda fixed: operation.as_strategy(mode, path_parameters=fixed, headers=headers)
    )
    generated = operation.as_strategy(mode, path_parameters={"slug": SLUG}, headers=headers)
    return st.one_of(with_real, generated)


def run_operation(operation, mode, token, known, statuses: set) -> str | None:
    """Schemathesis on one operation; the failure report, or None."""

    @given(case=strategy_for(operation, mode, token, known))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        statuses.add(case.call_and_validate(checks=CHECKS).status_code)

    try:
        check()
    except hypothesis.errors.Unsatisfiable:
        # Negative mode: the operation has nothing that can be made invalid.
        assert mode is schemathesis.GenerationMode.NEGATIVE
    except (FailureGroup, Exception) as failure:
        return f"{mode.value} {operation.label}:\n{failure}"
    return None


@pytest.mark.django_db
def test_the_api_keeps_its_schema(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.CRITICAL, logger="django.request")  # 4xx are expected
    # Over a thousand requests with one token: throttling (tested on its own) must not turn
    # the rest of the run into 429s.
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"api": "100000/minute"})
    demo = demo_load()
    brand = demo["brand"]
    known = known_values(brand, tmp_path)
    _, token = api_token_create(
        brand=brand, scopes=["read", "preview", "write", "publish", "manage"]
    )

    # As Django's test client does: the in-process requests run inside the test's
    # transaction, which closing "old" connections at each request would break.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
        operations = [result.ok() for result in schema.get_all_operations()]
        statuses = {(op.label, mode): set() for op in operations for mode in EXAMPLES}
        reports = [
            run_operation(op, mode, token, known, statuses[op.label, mode])
            for op in operations
            for mode in EXAMPLES
        ]
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)

    assert len(operations) == 51
    failures = [report for report in reports if report]
    assert not failures, "\n\n".join(failures)
    # The runs reached the endpoints: every read answered 200 to some generated request.
    reads = {label for label, mode in statuses if label.startswith("GET")}
    positive = schemathesis.GenerationMode.POSITIVE
    assert {label for label in reads if 200 not in statuses[label, positive]} == set()


@pytest.mark.django_db
def test_successful_writes_keep_the_schema(tmp_path, caplog):
    """Generated writes are mostly refused (a random If-Match is stale, a random node is no
    schema.org node): these valid ones check the 2xx answers of every write operation."""
    caplog.set_level(logging.CRITICAL, logger="django.request")
    brand = demo_load()["brand"]
    known_values(brand, tmp_path)  # release 1, deployed to a directory target
    _, token = api_token_create(
        brand=brand, scopes=["read", "preview", "write", "publish", "manage"]
    )
    org = str(Entity.objects.get(brand=brand, iri__endswith="/#organization").uuid)

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

        def call(method, path, status, if_match=None, **kwargs):
            headers = {"Authorization": f"Bearer {token}"}
            if if_match:
                headers["If-Match"] = if_match
            operation = schema[f"/api/v1/brands/{{slug}}/{path}"][method]
            parameters = {"slug": SLUG, **kwargs.pop("path_parameters", {})}
            if "body" in kwargs:
                kwargs.setdefault("media_type", "application/json")
            case = operation.Case(path_parameters=parameters, headers=headers, **kwargs)
            response = case.call_and_validate(checks=CHECKS)
            assert response.status_code == status, response.text
            return response.json() if response.content else None

        node = {"@type": "Organization", "name": "Schemathesis Tea"}
        created = call("POST", "entities/", 201, body=node)
        entity = {"entity_id": created["id"]}
        renamed = {"@type": "Organization", "name": "Schemathesis Tea Ltd"}
        call("PUT", "entities/{entity_id}/", 200, "1", body=renamed, path_parameters=entity)
        patch = {"description": "A patched description."}
        call("PATCH", "entities/{entity_id}/", 200, "2", body=patch, path_parameters=entity,
             media_type="application/merge-patch+json")  # fmt: skip
        call("POST", "entities/{entity_id}/publish/", 200, "3", path_parameters=entity)
        call("GET", "entities/{entity_id}.jsonld", 200, path_parameters=entity)
        call("DELETE", "entities/{entity_id}/", 204, "3", path_parameters=entity)

        fact = {"key": "st-fact", "about": org, "statement": {"en": "A fact."},
                "source_url": "https://www.westlakeleaf.example/", "as_of": "2025-01-01"}  # fmt: skip
        faq = {"key": "st-faq", "question": {"en": "Why?"}, "answer": {"en": "Because."}}
        for kind, body in (("facts", fact), ("faqs", faq)):
            made = {"id": call("POST", f"{kind}/", 201, body=body)["id"]}
            changed = {**body, "key": f"{body['key']}-2"}
            call("PUT", f"{kind}/{{id}}/", 200, "1", body=changed, path_parameters=made)
            call("DELETE", f"{kind}/{{id}}/", 204, "2", path_parameters=made)

        document = {"@context": "https://schema.org", "@type": "Organization", "name": "Imported"}
        imported = call("POST", "import/", 200, body=document, media_type=JSONLD_MEDIA)
        assert imported["created"] == ["https://www.westlakeleaf.example/id/organization-imported"]
        call(
            "POST", "import/", 200, body=document, media_type=JSONLD_MEDIA, query={"publish": True}
        )
        request = call("POST", "publish/", 202, body={"reason": "schemathesis"})
        call("GET", "publish-requests/{id}/", 200, path_parameters={"id": request["id"]})
        call("POST", "releases/{number}/rollback/", 200, path_parameters={"number": 1})

        from visibility.models import PromptSet

        prompt_set = PromptSet.objects.filter(brand=brand).first().pk
        started = call("POST", "visibility/runs/", 202, body={"prompt_set": prompt_set})
        call("GET", "visibility/runs/{id}/", 200, path_parameters={"id": started["id"]})
        call("GET", "visibility/runs/{id}/answers/", 200, path_parameters={"id": started["id"]})

        hook = {"name": "cms-2", "url": "https://93.184.215.14/cms", "events": ["release.deployed"]}
        made = {"id": call("POST", "webhooks/", 201, body=hook)["id"]}
        call("PUT", "webhooks/{id}/", 200, body={**hook, "enabled": False}, path_parameters=made)
        call("DELETE", "webhooks/{id}/", 204, path_parameters=made)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
