"""Bad input is a 400 (or 413) problem+json, never a 500: hostile bodies, headers and query
parameters; @ids under another brand's base URL; weak secret keys in production; large
imports through the API run as a task."""

import json
import os
import secrets
import subprocess
import sys
import time
import uuid

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client

from kb.checks import secret_keys_strong
from kb.models import Entity, Fact, ImportJob, Revision
from kb.services.entities import entity_create
from kb.services.tokens import api_token_create
from tests.test_celery_and_settings import database_url_for_tests, run_manage

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
JSONLD = "application/ld+json"
BASE = "/api/v1/brands/acme-tea"


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def writer(brand):
    _, raw = api_token_create(brand=brand, scopes=["read", "preview", "write", "publish"])
    return Client(headers={"Authorization": f"Bearer {raw}"})


def post(client, path, raw: bytes, content_type="application/json", **headers):
    return client.generic("POST", path, raw, content_type=content_type, headers=headers)


def problem(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body


def node(**data) -> bytes:
    return json.dumps({"@type": "Organization", "name": "Acme", **data}).encode()


# --- hostile JSON bodies ----------------------------------------------------------------


def test_a_body_of_100k_open_brackets(writer):
    body = problem(post(writer, f"{BASE}/entities/", b"[" * 100_000))
    assert body["errors"] == [
        {
            "pointer": "/",
            "detail": "nested far deeper than 64 levels (SOURCEBOOK_IMPORT_MAX_DEPTH); "
            "the JSON cannot even be parsed",
        }
    ]
    assert body["detail"].startswith("The body is not acceptable JSON: nested far deeper")
    # Everywhere a body is read: facts, the import, views that name DRF's own JSONParser.
    for path in ("facts/", "visibility/runs/", "import/"):
        assert (
            "nested far deeper"
            in problem(post(writer, f"{BASE}/{path}", b"[" * 100_000))["errors"][0]["detail"]
        )


def test_5000_nested_objects(writer):
    raw = b'{"a":' * 5000 + b"1" + b"}" * 5000
    body = problem(post(writer, f"{BASE}/entities/", raw))
    assert body["errors"][0]["detail"].startswith("nested far deeper than 64 levels")
    # Deeper than the limit but readable: the pointer says where.
    raw = b'{"@type": "Organization", "name": "A", "x": ' + b'{"a":' * 70 + b"1" + b"}" * 71
    body = problem(post(writer, f"{BASE}/entities/", raw))
    assert body["errors"] == [
        {
            "pointer": "/x" + "/a" * 63,
            "detail": "nested deeper than 64 levels (SOURCEBOOK_IMPORT_MAX_DEPTH)",
        }
    ]


def test_a_number_of_1e400(writer, brand):
    raw = b'{"@type": "Organization", "name": "Acme", "numberOfEmployees": 1e400}'
    body = problem(post(writer, f"{BASE}/entities/", raw))
    assert body["errors"] == [
        {
            "pointer": "/numberOfEmployees",
            "detail": "the number is out of range: JSON numbers must be finite "
            "(no NaN or Infinity, nothing beyond ±1.8e308)",
        }
    ]
    # NaN, which Python's json reads, and an integer of 5,000 digits, which it cannot.
    nan = problem(post(writer, f"{BASE}/entities/", raw.replace(b"1e400", b"NaN")))
    assert nan["errors"][0]["pointer"] == "/numberOfEmployees"
    huge = problem(post(writer, f"{BASE}/entities/", raw.replace(b"1e400", b"9" * 5000)))
    assert huge["errors"][0]["detail"].startswith("malformed JSON at line 1, column ")
    assert "out of range" in huge["errors"][0]["detail"]
    # Through the import the number reaches validation, which names the property.
    doc = b'{"@context": "https://schema.org", "@type": "Organization", "name": "A", '
    imported = problem(
        post(writer, f"{BASE}/import/", doc + b'"numberOfEmployees": 1e400}', JSONLD)
    )
    assert imported["errors"] == [
        {"pointer": "/numberOfEmployees", "detail": "'numberOfEmployees' expects a finite number, got inf"}
    ]  # fmt: skip
    assert not Entity.objects.exists()


def test_a_lone_surrogate_in_a_string(writer):
    raw = b'{"@type": "Organization", "name": "Acme \\ud800 Tea"}'
    body = problem(post(writer, f"{BASE}/entities/", raw))
    assert body["errors"] == [
        {
            "pointer": "/name",
            "detail": "the text contains a lone surrogate (\\ud800), which is not Unicode text",
        }
    ]
    # In a key too (shown escaped: the answer itself must be valid UTF-8).
    key = problem(post(writer, f"{BASE}/entities/", b'{"@type": "Thing", "a\\udfffb": 1}'))
    assert key["errors"][0]["pointer"] == "/"
    assert key["errors"][0]["detail"].startswith("the key 'a\\\\udfffb' contains a lone surrogate")
    # As raw bytes (CESU-8), it is not UTF-8 at all.
    raw_bytes = problem(post(writer, f"{BASE}/entities/", b'{"name": "\xed\xa0\x80"}'))
    assert raw_bytes["errors"][0]["detail"] == "not UTF-8 text (byte 10)"


def test_nul_characters_are_refused_naming_the_pointer(writer, brand):
    raw = b'{"@type": "Organization", "name": "Acme\\u0000Tea"}'
    body = problem(post(writer, f"{BASE}/entities/", raw))
    assert body["errors"] == [
        {
            "pointer": "/name",
            "detail": "the text contains a NUL character (\\u0000), which cannot be stored",
        }
    ]
    org = entity_create(
        brand=brand, types=["Organization"], data={"name": [{"@value": "A"}]},
        iri="https://tea.example/#org",
    )  # fmt: skip
    fact = {"key": "k", "about": str(org.uuid), "statement": {"en": "x\u0000y"}}
    body = problem(post(writer, f"{BASE}/facts/", json.dumps(fact).encode()))
    assert body["errors"][0]["pointer"] == "/statement/en"
    assert not Fact.objects.exists()
    imported = problem(
        post(writer, f"{BASE}/import/", b'{"@context": "https://schema.org", "@type": '
             b'"Organization", "name": ["ok", "\\u0000"]}', JSONLD)
    )  # fmt: skip
    assert imported["errors"] == [
        {
            "pointer": "/name/1",
            "detail": "the text contains a NUL character (\\u0000), which cannot be stored",
        }
    ]
    query = problem(writer.get(f"{BASE}/entities/?q=a%00b"))
    assert query["errors"] == [{"parameter": "q", "detail": "Contains a NUL character."}]
    assert Entity.objects.count() == 1


def test_an_updated_since_that_is_no_date(writer):
    for value in ("9999-99-99T00:00:00Z", "0001-01-01T00:00:00%2B14:00"):
        body = problem(writer.get(f"{BASE}/entities/?state=latest&updated_since={value}"))
        assert body["errors"] == [
            {
                "parameter": "updated_since",
                "detail": "Give an ISO 8601 date-time with a time zone.",
            }
        ]


def test_page_numbers_of_thousands_of_digits(writer):
    body = problem(writer.get(f"{BASE}/entities/?page={'9' * 5000}"))
    assert body["errors"][0]["parameter"] == "page"
    assert problem(writer.get(f"{BASE}/entities/?page_size=%C2%B2"))["errors"][0]["parameter"] == (
        "page_size"
    )


def test_an_if_match_of_5000_digits(writer, brand):
    org = entity_create(
        brand=brand, types=["Organization"], data={"name": [{"@value": "A"}]},
        iri="https://tea.example/#org",
    )  # fmt: skip
    response = writer.generic(
        "PUT", f"{BASE}/entities/{org.uuid}/", node(), content_type="application/json",
        headers={"If-Match": "9" * 5000},
    )  # fmt: skip
    body = problem(response)
    assert body["detail"] == (
        "The If-Match header holds a version number of 5,000 digits; a version has at most "
        "18. Send the ETag you read."
    )
    org.refresh_from_db()
    assert org.version == 1


# --- sizes ----------------------------------------------------------------------------------


def test_an_over_size_body_is_a_413_problem(writer, settings):
    big = node(description="x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10))
    body = problem(post(writer, f"{BASE}/entities/", big), 413)
    assert body["detail"] == (
        f"The body is {len(big):,} bytes, over this endpoint's limit of "
        f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    )
    # Forms and multipart bodies (which Django reads whole, with its HTML error page past its
    # limit) are not read at all by the API.
    form = writer.post(f"{BASE}/entities/", {"name": "x" * 3_000_000})
    assert problem(form, 415)["detail"].startswith("Unsupported media type")
    urlencoded = post(writer, f"{BASE}/entities/", b"a=1&" * 800_000,
                      "application/x-www-form-urlencoded")  # fmt: skip
    problem(urlencoded, 415)
    assert not Entity.objects.exists()


def test_django_body_errors_become_problems(rf):
    """What Django raises while reading a body (its size limit, too many fields, a client
    gone mid-body) is a problem, wherever in the API it happens."""
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
    from django.http import UnreadablePostError

    from kb.api.problems import problem_handler

    context = {"request": rf.post("/api/v1/brands/")}
    too_big = problem_handler(RequestDataTooBig("big"), context)
    assert (too_big.status_code, too_big.content_type) == (413, PROBLEM)
    fields = problem_handler(TooManyFieldsSent("fields"), context)
    assert (fields.status_code, fields.data["detail"]) == (
        400,
        "The request cannot be read: fields",
    )
    gone = problem_handler(UnreadablePostError("gone"), context)
    assert (gone.status_code, gone.content_type) == (400, PROBLEM)


# --- @ids under another brand's base URL ----------------------------------------------------


def test_cli_import_refuses_ids_under_another_brands_base_url(brand, other_brand, tmp_path):
    path = tmp_path / "claim.jsonld"
    path.write_text(
        json.dumps(
            {
                "@context": "https://schema.org",
                "@graph": [
                    {"@id": "https://tea.example/#org", "@type": "Organization", "name": "Ours"},
                    {
                        "@id": "HTTPS://Other.Example/products/1",
                        "@type": "Product",
                        "name": "Theirs",
                    },
                ],
            }
        )  # fmt: skip
    )
    with pytest.raises(CommandError) as refused:
        call_command("import_jsonld", "acme-tea", str(path))
    assert str(refused.value).splitlines() == [
        "Nothing was imported: 1 problem found.",
        f"{path}: /@graph/1/@id: the @id HTTPS://Other.Example/products/1 is under the base URL "
        "of another brand (other: https://other.example); this brand's entities must not take "
        "other brands' identifiers (its base URL is https://tea.example)",
    ]
    assert not Entity.objects.exists()
    # A look-alike host is not under it; the brand's own base URL is fine.
    path.write_text(
        json.dumps(
            {
                "@context": "https://schema.org",
                "@graph": [
                    {"@id": "https://tea.example/#org", "@type": "Organization", "name": "Ours"},
                    {"@id": "https://other.example.org/p", "@type": "Product", "name": "Elsewhere"},
                ],
            }
        )  # fmt: skip
    )
    call_command("import_jsonld", "acme-tea", str(path))
    assert Entity.objects.filter(brand=brand).count() == 2


def test_api_writes_refuse_ids_under_another_brands_base_url(writer, brand, other_brand):
    claim = {"@id": "https://other.example/#organization", "@type": "Organization", "name": "X"}
    detail = (
        "the @id https://other.example/#organization is under the base URL of another brand "
        "(other: https://other.example); this brand's entities must not take other brands' "
        "identifiers (its base URL is https://tea.example)"
    )
    created = problem(post(writer, f"{BASE}/entities/", json.dumps(claim).encode()))
    assert created["errors"] == [{"pointer": "/@id", "detail": detail}]
    document = {"@context": "https://schema.org", "@graph": [claim]}
    imported = problem(post(writer, f"{BASE}/import/", json.dumps(document).encode(), JSONLD))
    assert imported["errors"] == [{"pointer": "/@graph/0/@id", "detail": detail}]
    assert imported["detail"] == "Nothing was imported."
    assert not Entity.objects.exists()


# --- weak secret keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["short", "x" * 60, "django-insecure-" + secrets.token_urlsafe(50)],
    ids=["short", "one character", "django-insecure"],
)  # fmt: skip
def test_production_refuses_to_start_with_a_weak_secret_key(key):
    result = run_manage("check", env={"DJANGO_DEBUG": "0", "SECRET_KEY": key, "ALLOWED_HOSTS": "x"})
    assert result.returncode != 0
    assert "SECRET_KEY is too weak for DJANGO_DEBUG=0" in result.stderr
    assert key not in result.stderr


def test_production_starts_with_a_strong_secret_key():
    env = {"DJANGO_DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "x"}
    result = run_manage("check", env=env)
    assert result.returncode == 0, result.stderr
    # Debug on (development, CI): any key, as before.
    assert run_manage("check", env={"DJANGO_DEBUG": "1", "SECRET_KEY": "short"}).returncode == 0


def test_weak_keys_are_system_check_errors_with_debug_off(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    settings.SECRET_KEY_FALLBACKS = ["old"]
    [error] = secret_keys_strong()
    assert (error.id, error.level >= 40) == ("sourcebook.E002", True)
    assert error.msg.startswith("Your SECRET_KEY_FALLBACKS[0] has less than 50 characters")
    settings.DEBUG = True
    assert secret_keys_strong() == []


# --- large imports run as a task ------------------------------------------------------------


def products(count: int, bad: int | None = None) -> bytes:
    graph = [
        {"@id": f"https://tea.example/p/{n}", "@type": "Product", "name": f"Tea {n}"}
        for n in range(count)
    ]
    if bad is not None:
        graph[bad]["colour"] = "green"
    return json.dumps({"@context": "https://schema.org", "@graph": graph}).encode()


def test_a_large_import_answers_202_and_runs_as_a_task(
    writer, brand, settings, django_capture_on_commit_callbacks
):
    settings.SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES = 10
    small = post(writer, f"{BASE}/import/", products(10), JSONLD)
    assert small.status_code == 200 and len(small.json()["created"]) == 10
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = post(writer, f"{BASE}/import/", products(40), JSONLD)
    assert response.status_code == 202, response.content
    job = ImportJob.objects.get()
    assert response["Location"] == f"{BASE}/imports/{job.pk}/"
    assert response.json()["state"] == "queued" and response.json()["nodes"] == 40
    assert len(queued) == 1
    status = writer.get(response["Location"])
    assert status.status_code == 200
    followed = status.json()
    assert (followed["state"], followed["counts"], followed["errors"]) == (
        "succeeded",
        {"created": 30, "updated": 0, "unchanged": 10, "published": 0,
         **{f"{kind}_{outcome}": 0 for kind in ("facts", "faqs")
            for outcome in ("created", "updated", "unchanged", "published")}},
        [],
    )  # fmt: skip
    assert Entity.objects.filter(brand=brand).count() == 40
    job.refresh_from_db()
    assert bytes(job.document) == b""  # not kept once imported
    # Running the task again (a redelivery) changes nothing.
    from kb.tasks import import_run

    assert import_run(job.pk) == "succeeded"
    assert Entity.objects.count() == 40


def test_a_large_import_that_is_not_valid_imports_nothing(
    writer, brand, settings, django_capture_on_commit_callbacks
):
    settings.SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES = 10
    revisions = Revision.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(writer, f"{BASE}/import/", products(40, bad=33), JSONLD)
    assert response.status_code == 202
    followed = writer.get(response["Location"]).json()
    assert followed["state"] == "failed"
    assert followed["errors"] == [
        {
            "pointer": "/@graph/33/colour",
            "detail": "unknown schema.org property 'colour' (did you mean 'color'?)",
        }
    ]
    assert not Entity.objects.exists() and Revision.objects.count() == revisions
    # Malformed or hostile documents are refused in the request, before anything is queued.
    refused = problem(post(writer, f"{BASE}/import/", products(40)[:-2], JSONLD))
    assert refused["errors"][0]["detail"].startswith("malformed JSON at line 1")
    assert ImportJob.objects.count() == 1
    # Another brand's token does not see the job.
    _, raw = api_token_create(brand=brand, scopes=["read"])
    reader = Client(headers={"Authorization": f"Bearer {raw}"})
    assert problem(reader.get(response["Location"]), 403)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_large_import_runs_on_a_real_worker(broker_url, brand, settings, monkeypatch):
    from kb.services import imports
    from kb.tasks import import_run

    settings.SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES = 10
    queue = f"test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(
        imports, "import_job_dispatch", lambda job_id: import_run.apply_async([job_id], queue=queue)
    )
    _, raw = api_token_create(brand=brand, scopes=["write"])
    writer = Client(headers={"Authorization": f"Bearer {raw}"})
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        env={**os.environ, "DATABASE_URL": database_url_for_tests(), "CELERY_BROKER_URL": broker_url},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        response = post(writer, f"{BASE}/import/", products(40), JSONLD)
        assert response.status_code == 202, response.content
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            followed = writer.get(response["Location"]).json()
            if followed["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    assert followed["state"] == "succeeded", output[-3000:]
    assert followed["counts"]["created"] == 40
    assert "kb.tasks.import_run" in output
