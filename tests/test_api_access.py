"""Who may call what: every endpoint of /api/v1/ × every kind of credential.

Credentials: none, an unknown and a revoked token, a token of another brand (all scopes),
one token per scope, read+preview, and signed-in users acting through their brand role
(editor, reviewer, a member of another brand only). Each cell runs inside a savepoint that
is rolled back, so every cell starts from the same content; denied cells must change
nothing and answer with an RFC 9457 problem.
"""

import json
from dataclasses import dataclass, field
from datetime import date
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from kb.models import FAQ, ApiToken, AuditEntry, Entity, Fact, ImportJob, Revision
from kb.services.brands import membership_grant
from kb.services.entities import entity_create
from kb.services.statements import statement_create
from kb.services.tokens import api_token_create, api_token_revoke, token_hash
from kb.services.workflow import object_publish
from publishing.models import Deployment, PublishRequest, Release, Target
from publishing.services import brand_build, publish_request_create
from visibility.models import Engine, Prompt, PromptSet, Run

pytestmark = pytest.mark.django_db

ALL_SCOPES = ("read", "preview", "write", "publish", "manage")
PROBLEM = "application/problem+json"
PUBLIC_HOOK_URL = "https://93.184.215.14/sourcebook-hook"  # a public literal: no DNS needed


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """Throttle counts live in the cache; SQLite reuses user ids across tests."""
    cache.clear()
    yield
    cache.clear()


def text(value: str, language: str = "en") -> list[dict]:
    return [{"@value": value, "@language": language}]


def content(brand, tmp_path, prefix: str, releases: int = 1) -> dict:
    """A published organization, a spare entity, a fact, an FAQ, releases, a webhook."""
    base = brand.base_url
    org = entity_create(
        brand=brand, types=["Organization"], data={"name": text(f"{prefix} Tea")},
        iri=f"{base}/#organization",
    )  # fmt: skip
    object_publish(obj=org)
    spare = entity_create(
        brand=brand, types=["Organization"], data={"name": text(f"{prefix} Spare")},
        iri=f"{base}/#spare",
    )  # fmt: skip
    object_publish(obj=spare)
    fact = statement_create(
        model=Fact, brand=brand, key="founded", about=org,
        statement={"en": f"{prefix} was founded in 1998."},
        source_url=f"{base}/about", as_of=date(2025, 1, 1),
    )  # fmt: skip
    object_publish(obj=fact)
    faq = statement_create(
        model=FAQ, brand=brand, key="what", question={"en": "What do you sell?"},
        answer={"en": "Green tea."},
    )  # fmt: skip
    object_publish(obj=faq)
    Target.objects.create(
        brand=brand, name="site", kind=Target.Kind.DIRECTORY,
        operator_path=str(tmp_path / f"site-{brand.slug}"),
    )  # fmt: skip
    hook = Target.objects.create(
        brand=brand, name="hook", kind=Target.Kind.WEBHOOK, enabled=False,
        config={"url": PUBLIC_HOOK_URL, "events": ["release.deployed"]}, secret="whsec_c2VjcmV0",
    )  # fmt: skip
    for number in range(1, releases + 1):
        request = publish_request_create(brand=brand, reason=f"release {number}", dispatch=False)
        [release] = brand_build(brand=brand)
        assert (release.number, release.state) == (number, Release.State.DEPLOYED)
    Engine.objects.create(brand=brand, name="Engine", base_url="http://127.0.0.1:9/v1", model="m")
    prompt_set = PromptSet.objects.create(
        brand=brand, name="Buyers", language="en", pair_group="buyers"
    )
    Prompt.objects.create(prompt_set=prompt_set, text="Which tea?")
    run = Run.objects.create(
        brand=brand, prompt_set=prompt_set, started_at=release.created_at, expected=3
    )
    job = ImportJob.objects.create(brand=brand, state=ImportJob.State.SUCCEEDED)  # imports/<id>/
    return {
        "job": job.pk,
        "run": run.pk,
        "prompt_set": prompt_set.pk,
        "slug": brand.slug,
        "entity": org.uuid,
        "spare": spare.uuid,
        "fact": fact.pk,
        "faq": faq.pk,
        "release": release.number,
        "group": "buyers",
        "artifact": "llms.txt",
        "request": request.pk,
        "hook": hook.pk,
    }


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    needs: frozenset[str]
    ok: int
    body: object = None
    content_type: str = "application/json"
    if_match: str | None = None
    objects: tuple[str, ...] = ()  # the brand's objects in the path (for the cross-brand test)


def call(name, method, path, needs, ok, **kwargs) -> Call:
    needs = frozenset(needs.split("+")) if needs else frozenset()
    return Call(name, method, "/api/v1/brands/{slug}/" + path, needs, ok, **kwargs)


ENTITY_NODE = {"@type": "Organization", "name": "Renamed Spare"}
FACT = {
    "key": "area",
    "about": "<entity>",
    "statement": {"en": "The gardens cover 40 hectares."},
    "source_url": "https://tea.example/gardens",
    "as_of": "2025-01-01",
}
FAQ_BODY = {"key": "ship", "question": {"en": "Do you ship?"}, "answer": {"en": "Yes."}}
IMPORT = {
    "@context": "https://schema.org",
    "@id": "https://tea.example/#imported",
    "@type": "Organization",
    "name": "Imported Tea",
}
HOOK = {"name": "cms", "url": PUBLIC_HOOK_URL, "events": ["release.deployed"]}

CALLS = [
    call("brand", "GET", "", "read", 200),
    call("entities", "GET", "entities/", "read", 200),
    call("entities latest", "GET", "entities/?state=latest", "read+preview", 200),
    call("entity create", "POST", "entities/", "write", 201, body={"@type": "Organization", "name": "New"}),
    call("entity", "GET", "entities/{entity}/", "read", 200, objects=("entity",)),
    call("entity latest", "GET", "entities/{entity}/?state=latest", "read+preview", 200, objects=("entity",)),
    call("entity .jsonld", "GET", "entities/{entity}.jsonld", "read", 200, objects=("entity",)),
    call("entity update", "PUT", "entities/{spare}/", "write", 200, body=ENTITY_NODE, if_match="1", objects=("spare",)),
    call("entity patch", "PATCH", "entities/{spare}/", "write", 200, body={"name": "Patched Spare"}, content_type="application/merge-patch+json", if_match="1", objects=("spare",)),
    call("entity delete", "DELETE", "entities/{spare}/", "write", 204, if_match="1", objects=("spare",)),
    call("entity publish", "POST", "entities/{spare}/publish/", "publish", 200, if_match="1", objects=("spare",)),
    call("facts", "GET", "facts/", "read", 200),
    call("fact create", "POST", "facts/", "write", 201, body=FACT),
    call("fact", "GET", "facts/{fact}/", "read", 200, objects=("fact",)),
    call("fact update", "PUT", "facts/{fact}/", "write", 200, body=FACT, if_match="1", objects=("fact",)),
    call("fact delete", "DELETE", "facts/{fact}/", "write", 204, if_match="1", objects=("fact",)),
    call("faqs", "GET", "faqs/", "read", 200),
    call("faq create", "POST", "faqs/", "write", 201, body=FAQ_BODY),
    call("faq", "GET", "faqs/{faq}/", "read", 200, objects=("faq",)),
    call("faq update", "PUT", "faqs/{faq}/", "write", 200, body=FAQ_BODY, if_match="1", objects=("faq",)),
    call("faq delete", "DELETE", "faqs/{faq}/", "write", 204, if_match="1", objects=("faq",)),
    call("import", "POST", "import/", "write", 200, body=IMPORT, content_type="application/ld+json"),
    call("import+publish", "POST", "import/?publish=true", "write+publish", 200, body=IMPORT, content_type="application/ld+json"),
    call("import status", "GET", "imports/{job}/", "write", 200, objects=("job",)),
    call("export .jsonld", "GET", "export.jsonld", "read", 200),
    call("export .jsonl", "GET", "export.jsonl", "read", 200),
    call("export latest", "GET", "export.jsonl?state=latest", "read+preview", 200),
    call("releases", "GET", "releases/", "read", 200),
    call("release", "GET", "releases/{release}/", "read", 200, objects=("release",)),
    call("manifest", "GET", "releases/{release}/artifacts/", "read", 200, objects=("release",)),
    call("artifact", "GET", "releases/{release}/artifacts/{artifact}", "read", 200, objects=("release",)),
    call("rollback", "POST", "releases/{release}/rollback/", "publish", 200, objects=("release",)),
    call("publish", "POST", "publish/", "publish", 202, body={"reason": "matrix"}),
    call("publish request", "GET", "publish-requests/{request}/", "read", 200, objects=("request",)),
    call("webhooks", "GET", "webhooks/", "manage", 200),
    call("webhook create", "POST", "webhooks/", "manage", 201, body=HOOK),
    call("webhook", "GET", "webhooks/{hook}/", "manage", 200, objects=("hook",)),
    call("webhook update", "PUT", "webhooks/{hook}/", "manage", 200, body=HOOK, objects=("hook",)),
    call("webhook delete", "DELETE", "webhooks/{hook}/", "manage", 204, objects=("hook",)),
    call("visibility runs", "GET", "visibility/runs/", "read", 200),
    call("visibility run start", "POST", "visibility/runs/", "write", 202, body={"prompt_set": "<prompt_set>"}),
    call("visibility run", "GET", "visibility/runs/{run}/", "read", 200, objects=("run",)),
    call("visibility answers", "GET", "visibility/runs/{run}/answers/", "read", 200, objects=("run",)),
    call("visibility metrics", "GET", "visibility/metrics/", "read", 200),
    call("visibility series", "GET", "visibility/metrics/series/", "read", 200),
    call("visibility series .csv", "GET", "visibility/metrics/series.csv", "read", 200),
    call("visibility alerts", "GET", "visibility/alerts/", "read", 200),
    call("visibility citations", "GET", "visibility/citations/", "read", 200),
    call("visibility competitors", "GET", "visibility/competitors/", "read", 200),
    call("visibility paired", "GET", "visibility/paired/{group}/", "read", 200),
    call("visibility config", "GET", "visibility/config/", "manage", 200),
    call("visibility config apply", "PUT", "visibility/config/", "manage", 200, body={"engines": [{"name": "Matrix", "base_url": "https://api.deepseek.com", "model": "deepseek-chat"}]}),
    call("visibility release comparison", "GET", "visibility/releases/{release}/comparison/", "read", 200, objects=("release",)),
    call("visibility crawlers", "GET", "visibility/crawlers/", "read", 200),
]  # fmt: skip


PLACEHOLDERS = {
    "{slug}": "<slug:slug>",
    "{entity}": "<uuid:entity_id>",
    "{spare}": "<uuid:entity_id>",
    "{fact}": "<int:pk>",
    "{faq}": "<int:pk>",
    "{hook}": "<int:pk>",
    "{request}": "<int:pk>",
    "{release}": "<int:number>",
    "{run}": "<int:pk>",
    "{job}": "<int:pk>",
    "{artifact}": "<path:path>",
    "{group}": "<str:group>",
}


def test_the_matrix_covers_every_operation():
    """Every method of every brand route in config/api_urls.py is a row of CALLS (the brand
    list, the only route outside a brand, has its own test below)."""
    from config.api_urls import urlpatterns

    operations = set()
    for pattern in urlpatterns:
        route = str(pattern.pattern)
        if route.startswith("v1/brands/<"):
            view = pattern.callback.view_class
            methods = {m.upper() for m in view.http_method_names if hasattr(view, m)}
            operations |= {(route, m) for m in methods - {"OPTIONS", "HEAD"}}
    covered = set()
    for c in CALLS:
        route = c.path.removeprefix("/api/").split("?")[0]
        for placeholder, converter in PLACEHOLDERS.items():
            route = route.replace(placeholder, converter)
        covered.add((route, c.method))
    assert operations == covered
    assert len(operations) == 50


def test_the_matrix_agrees_with_the_declared_policy():
    """Each row's scope is the one kb.services.permissions.API_POLICY declares (a row may
    need one more: preview for drafts, publish for an import that publishes)."""
    from django.urls import resolve

    from kb.services.permissions import API_POLICY

    uuid = "00000000-0000-4000-8000-000000000000"
    values = {"slug": "acme-tea", "entity": uuid, "spare": uuid, "artifact": "llms.txt",
              "group": "buyers",
              **dict.fromkeys(("fact", "faq", "hook", "request", "release", "run", "job"), 1)}  # fmt: skip
    declared = {}
    for c in CALLS:
        match = resolve(c.path.format(**values).split("?")[0])
        declared[(match.url_name, c.method)] = API_POLICY[match.url_name][c.method]
        assert declared[(match.url_name, c.method)] in c.needs, c.name
        assert c.needs - {declared[(match.url_name, c.method)]} <= {"preview", "publish"}, c.name
    assert set(declared) == {
        (name, method)
        for name, methods in API_POLICY.items()
        if name != "api-brands"
        for method in methods
    }


@dataclass
class Credential:
    name: str
    kind: str  # "none", "token", "session"
    own_brand: bool = True  # False: the credential belongs to the other brand
    scopes: frozenset[str] = field(default_factory=frozenset)
    header: str | None = None
    user: object = None


CREDENTIALS = [
    "no credentials",
    "unknown token",
    "revoked token",
    "other brand's token",
    "read",
    "preview",
    "write",
    "publish",
    "manage",
    "read+preview",
    "session editor",
    "session reviewer",
    "session admin",
    "session outsider",
]


def credential(name, brand, other_brand, django_user_model) -> Credential:
    if name == "no credentials":
        return Credential(name, "none")
    if name == "unknown token":
        return Credential(name, "none", header="Bearer sb_00000000_thisisnotatokenofanybrandatall")
    if name == "revoked token":
        token, raw = api_token_create(brand=brand, scopes=list(ALL_SCOPES))
        api_token_revoke(token=token)
        return Credential(name, "none", header=f"Bearer {raw}")
    if name == "other brand's token":
        _, raw = api_token_create(brand=other_brand, scopes=list(ALL_SCOPES))
        return Credential(name, "token", False, frozenset(ALL_SCOPES), f"Bearer {raw}")
    if name.startswith("session"):
        role = name.split()[1]
        user = django_user_model.objects.create_user(f"{role}-user")
        scopes = {
            "editor": {"read", "preview", "write"},
            "reviewer": {"read", "preview", "write", "publish"},
            "admin": set(ALL_SCOPES),
        }
        if role == "outsider":
            membership_grant(brand=other_brand, user=user, role="admin")
            return Credential(name, "session", False, frozenset(ALL_SCOPES), user=user)
        membership_grant(brand=brand, user=user, role=role)
        return Credential(name, "session", True, frozenset(scopes[role]), user=user)
    scopes = name.split("+")
    _, raw = api_token_create(brand=brand, scopes=scopes)
    return Credential(name, "token", True, frozenset(scopes), f"Bearer {raw}")


def client_for(cred: Credential) -> Client:
    client = Client(headers={"Authorization": cred.header} if cred.header else {})
    if cred.user is not None:
        client.force_login(cred.user)
    return client


def send(client: Client, c: Call, values: dict):
    headers = {"If-Match": c.if_match} if c.if_match else {}
    body = json.dumps(c.body) if c.body else ""
    for key, value in values.items():
        body = body.replace(f"<{key}>", str(value))
    return client.generic(
        c.method, c.path.format(**values), body, content_type=c.content_type, headers=headers
    )


def expected_status(c: Call, cred: Credential) -> int:
    if cred.kind == "none":
        return 401
    if not cred.own_brand:
        return 404
    return c.ok if c.needs <= cred.scopes else 403


def denial(c: Call, cred: Credential) -> str:
    """The 403 detail: the endpoint's own scope is checked first, then preview."""
    for scope in ("read", "write", "manage", "publish"):  # the declared scope comes first
        if scope in c.needs and scope not in cred.scopes:
            return f"This needs the {scope!r} scope; the credentials have {', '.join(sorted(cred.scopes))}."
    return "state=latest needs the 'preview' scope."


def fingerprint() -> tuple:
    """Everything a request could change."""
    return (
        list(Entity.objects.order_by("pk").values_list("pk", "version", "live_revision_id")),
        list(Fact.objects.order_by("pk").values_list("pk", "version", "live_revision_id")),
        list(FAQ.objects.order_by("pk").values_list("pk", "version", "live_revision_id")),
        list(Target.objects.order_by("pk").values_list("pk", "name", "enabled", "config")),
        Revision.objects.count(),
        AuditEntry.objects.count(),
        PublishRequest.objects.count(),
        Release.objects.count(),
        Deployment.objects.count(),
        Run.objects.count(),
        list(Engine.objects.order_by("pk").values_list("pk", "name", "model")),
    )


def assert_problem(response, status: int):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://sourcebook.example/problems/")
    assert (
        problem["title"]
        == {401: "Authentication required", 403: "Forbidden", 404: "Not found"}[status]
    )
    return problem


@pytest.mark.parametrize("c", CALLS, ids=[c.name for c in CALLS])
def test_access_matrix(c, brand, other_brand, django_user_model, tmp_path):
    values = content(brand, tmp_path, "Acme")
    creds = [credential(n, brand, other_brand, django_user_model) for n in CREDENTIALS]
    allowed = []
    for cred in creds:
        with transaction.atomic():
            before = fingerprint()
            response = send(client_for(cred), c, values)
            status = expected_status(c, cred)
            assert response.status_code == status, (cred.name, response.content)
            if status >= 400:
                problem = assert_problem(response, status)
                assert fingerprint() == before, f"{cred.name} changed something"
                if status == 401:
                    assert response["WWW-Authenticate"] == 'Bearer realm="sourcebook"'
                    assert problem["detail"] == (
                        "The token is unknown or revoked."
                        if cred.header
                        else "Authentication credentials were not provided."
                    )
                if status == 404:
                    assert problem["detail"] == f"No brand {brand.slug!r}."
                if status == 403:
                    assert problem["detail"] == denial(c, cred)
            else:
                allowed.append(cred.name)
                if c.method == "GET":
                    assert response["ETag"]
                else:
                    assert fingerprint() != before, f"{cred.name}: {c.name} changed nothing"
            transaction.set_rollback(True)
    # Every endpoint is open to some credential, and to exactly those with its scopes.
    expected_allowed = [
        cred.name
        for cred in creds
        if cred.own_brand and cred.kind != "none" and c.needs <= cred.scopes
    ]
    assert allowed == expected_allowed
    assert allowed


def test_brand_list_per_credential(brand, other_brand, django_user_model):
    """The list shows the credential's own brand, only with the read scope; nothing else."""
    seen = {}
    for name in CREDENTIALS:
        cred = credential(name, brand, other_brand, django_user_model)
        response = client_for(cred).get("/api/v1/brands/")
        seen[name] = (
            [b["slug"] for b in response.json()]
            if response.status_code == 200
            else response.status_code
        )
    assert seen == {
        "no credentials": 401,
        "unknown token": 401,
        "revoked token": 401,
        "other brand's token": ["other"],
        "read": ["acme-tea"],
        "preview": [],
        "write": [],
        "publish": [],
        "manage": [],
        "read+preview": ["acme-tea"],
        "session editor": ["acme-tea"],
        "session reviewer": ["acme-tea"],
        "session admin": ["acme-tea"],
        "session outsider": ["other"],
    }


def test_superuser_session_reaches_every_brand(brand, other_brand, django_user_model):
    admin = django_user_model.objects.create_superuser(
        "root", email="root@example.com", password=None
    )
    client = Client()
    client.force_login(admin)
    assert [b["slug"] for b in client.get("/api/v1/brands/").json()] == ["acme-tea", "other"]
    assert client.get("/api/v1/brands/other/").json()["slug"] == "other"


OBJECT_CALLS = [c for c in CALLS if c.objects]


@pytest.mark.parametrize("c", OBJECT_CALLS, ids=[c.name for c in OBJECT_CALLS])
def test_objects_of_another_brand_are_not_found(c, brand, other_brand, tmp_path):
    """Brand A's token, brand A's URL, brand B's object: the same 404 as for no object."""
    ours = content(brand, tmp_path, "Acme")
    theirs = content(other_brand, tmp_path, "Other", releases=2)  # ours has release 1 only
    _, raw = api_token_create(brand=brand, scopes=list(ALL_SCOPES))
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    missing = {"entity": "00000000-0000-4000-8000-000000000000", "release": 999, "request": 999999,
               "fact": 999999, "faq": 999999, "hook": 999999, "run": 999999, "job": 999999}  # fmt: skip
    missing["spare"] = missing["entity"]
    before = fingerprint()
    foreign = send(client, c, {**ours, **{k: theirs[k] for k in c.objects}})
    absent = send(client, c, {**ours, **{k: missing[k] for k in c.objects}})
    assert_problem(foreign, 404)
    assert_problem(absent, 404)
    assert foreign.json()["detail"] == absent.json()["detail"]
    assert fingerprint() == before


def test_no_existence_leak_between_brands(brand, other_brand):
    """Another brand's token cannot tell an existing brand from one that does not exist."""
    _, raw = api_token_create(brand=other_brand, scopes=list(ALL_SCOPES))
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    existing = client.get("/api/v1/brands/acme-tea/entities/")
    missing = client.get("/api/v1/brands/no-such-brand/entities/")
    assert_problem(existing, 404)
    assert_problem(missing, 404)
    assert existing.json()["detail"] == "No brand 'acme-tea'."
    assert missing.json()["detail"] == "No brand 'no-such-brand'."
    assert {k: v for k, v in existing.json().items() if k not in ("detail", "instance")} == {
        k: v for k, v in missing.json().items() if k not in ("detail", "instance")
    }


def test_create_api_token_command_prints_the_token_once_and_stores_its_hash(brand):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_token",
        "acme-tea",
        "--scope",
        "read",
        "--scope",
        "write",
        stdout=out,
        stderr=err,
    )
    raw = out.getvalue().strip()
    token = ApiToken.objects.get(brand=brand)
    assert raw.startswith(f"sb_{token.prefix}_")
    assert token.scopes == ["read", "write"]
    assert token.token_hash == token_hash(raw)
    assert raw not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert err.getvalue() == (
        f"Token {token.prefix} for acme-tea with scopes read, write. "
        "It is shown only now: store it safely.\n"
    )
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    assert client.get("/api/v1/brands/acme-tea/").status_code == 200
    assert client.post("/api/v1/brands/acme-tea/publish/").status_code == 403
    # The same token with its last character changed is unknown.
    forged = raw[:-1] + ("y" if raw.endswith("x") else "x")
    response = Client(headers={"Authorization": f"Bearer {forged}"}).get("/api/v1/brands/acme-tea/")
    assert_problem(response, 401)
    assert response.json()["detail"] == "The token is unknown or revoked."


def test_session_writes_need_the_csrf_token_and_token_writes_do_not(brand, django_user_model):
    user = django_user_model.objects.create_user("editor")
    membership_grant(brand=brand, user=user, role="editor")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    node = json.dumps({"@type": "Organization", "name": "New"})
    path = "/api/v1/brands/acme-tea/entities/"
    refused = browser.post(path, node, content_type="application/json")
    assert assert_problem(refused, 403)["detail"] == "CSRF Failed: CSRF cookie not set."
    assert not Entity.objects.exists()
    assert browser.get(path).status_code == 200  # reads need no token
    browser.get("/admin/login/")  # sets the CSRF cookie, as any page with a form does
    csrf = browser.cookies["csrftoken"].value
    accepted = browser.post(
        path, node, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert accepted.status_code == 201
    assert AuditEntry.objects.get(action="create").user == user

    _, raw = api_token_create(brand=brand, scopes=["write"])
    api = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {raw}"})
    assert (
        api.post(path, node.replace("New", "Newer"), content_type="application/json").status_code
        == 201
    )
