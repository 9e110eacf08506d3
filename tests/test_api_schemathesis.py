import logging
import time

import pytest
import schemathesis
import hypothesis.errors
import schemathesis.core.failures
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from kb.demo_brand import demo_load
from kb.models import FAQ, Entity, Fact
from kb.services.tokens import api_token_create
from publishing.models import Release, PublishRequest

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, response_headers_conformance]


@pytest.mark.django_db(transaction=True)
def test_schemathesis(tmp_path, caplog):
    caplog.set_level(logging.CRITICAL, logger="django.request")
    t = time.monotonic()
    demo = demo_load()
    brand = demo["brand"]
    call_command("publish", "westlake-leaf", "--out", str(tmp_path / "site"))
    _, raw = api_token_create(brand=brand, scopes=["read", "preview", "write", "publish"])
    release = Release.objects.get(brand=brand)
    known = {
        "entity_id": [str(u) for u in Entity.objects.filter(brand=brand).values_list("uuid", flat=True)[:5]],
        "number": [release.number],
        "path": list(release.artifacts.values_list("path", flat=True)[:5]),
    }
    ids = {
        "facts": list(Fact.objects.filter(brand=brand).values_list("pk", flat=True)[:3]),
        "faqs": list(FAQ.objects.filter(brand=brand).values_list("pk", flat=True)[:3]),
        "publish-requests": list(PublishRequest.objects.filter(brand=brand).values_list("pk", flat=True)),
    }
    from publishing.models import Target
    hook = Target.objects.create(brand=brand, name="hook", kind="webhook", config={"url": "https://hooks.example/x"}, secret="whsec_AAAA", enabled=False)
    ids["webhooks"] = [hook.pk]
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures = []
    import os
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    for result in schema.get_all_operations():
        operation = result.ok()
        names = [p.name for p in operation.path_parameters]
        fixed_options = {"slug": ["westlake-leaf"]}
        for name in names:
            if name in known:
                fixed_options[name] = known[name]
            if name == "id":
                kind = operation.path.split("/")[-3]
                fixed_options[name] = ids.get(kind) or [1]
        for mode in modes:
            def strat(fixed, mode=mode, operation=operation):
                return operation.as_strategy(mode, path_parameters=fixed, headers={"Authorization": f"Bearer {raw}"})
            combos = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in fixed_options.items()})
            strategy = st.one_of(combos.flatmap(strat), strat({"slug": "westlake-leaf"}))

            @given(case=strategy)
            @settings(max_examples=int(os.environ.get("N", 15)), deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def run(case):
                case.call_and_validate(checks=CHECKS)

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                pass
            except (Exception, schemathesis.core.failures.FailureGroup) as error:
                failures.append(f"{mode} {operation.label}: {error}")
    print("total", time.monotonic() - t)
    assert not failures, "\n\n".join(failures)
