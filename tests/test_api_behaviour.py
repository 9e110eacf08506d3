"""What the API delivers and how it manages content: representations, languages, JSON-LD,
conditional requests, concurrency, strict parameters, pagination, export, import, publishing,
rollback, webhooks, throttling and query counts."""

import json
import os
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.settings import api_settings

from kb.api.base import TokenRateThrottle
from kb.models import FAQ, AuditEntry, Entity, Fact, Revision
from kb.services.brands import brand_create, membership_grant
from kb.services.entities import entity_create, entity_update
from kb.services.statements import statement_create
from kb.services.tokens import api_token_create
from kb.services.workflow import object_publish
from publishing.models import Deployment, PublishRequest, Release, ReleaseArtifact, Target
from publishing.services import brand_build, publish_request_create
from publishing.store import artifact_read

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
JSONLD = "application/ld+json"
BASE = "/api/v1/brands/acme-tea"


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def text(en: str, zh: str | None = None) -> list[dict]:
    values = [{"@value": en, "@language": "en"}]
    if zh:
        values.append({"@value": zh, "@language": "zh-Hans"})
    return values


def organization(brand, slug="organization", en="Acme Tea", zh="极致茶", publish=True, **data):
    entity = entity_create(
        brand=brand,
        types=["Organization"],
        data={"name": text(en, zh), **data},
        iri=f"{brand.base_url}/#{slug}",
    )
    if publish:
        object_publish(obj=entity)
    entity.refresh_from_db()
    return entity


def token_client(brand, *scopes) -> Client:
    _, raw = api_token_create(brand=brand, scopes=list(scopes or ["read"]))
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def reader(brand):
    return token_client(brand, "read")


@pytest.fixture
def previewer(brand):
    return token_client(brand, "read", "preview")


@pytest.fixture
def writer(brand):
    return token_client(brand, "read", "preview", "write")


@pytest.fixture
def publisher(brand):
    # With manage too: the webhook tests below use it.
    return token_client(brand, "read", "preview", "write", "publish", "manage")


def send(client, method, path, body=None, content_type="application/json", **headers):
    data = json.dumps(body) if body is not None and not isinstance(body, bytes) else body or ""
    return client.generic(method, path, data, content_type=content_type, headers=headers)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body


def published_names(response) -> list[str]:
    return [e["name"] for e in response.json()["results"]]


# --- delivery: content and states ----------------------------------------------------------


def test_entity_representation_is_the_published_revision(brand, reader, previewer):
    org = organization(brand)
    entity_update(
        entity=org, data={"name": text("Acme Tea Draft", "极致茶草稿")}, expected_version=1
    )
    org.refresh_from_db()

    body = reader.get(f"{BASE}/entities/{org.uuid}/").json()
    assert body == {
        "id": str(org.uuid),
        "iri": "https://tea.example/#organization",
        "slug": org.slug,
        "types": ["Organization"],
        "primary_type": "Organization",
        "name": "Acme Tea",
        "description": "",
        "language": "en",
        "status": "draft",
        "version": 2,
        "state": "published",
        "updated_at": org.updated_at.isoformat(),
        "published_at": org.last_published_at.isoformat(),
        "data": {"name": text("Acme Tea", "极致茶")},
    }
    latest = previewer.get(f"{BASE}/entities/{org.uuid}/?state=latest").json()
    assert (latest["state"], latest["name"], latest["data"]) == (
        "latest",
        "Acme Tea Draft",
        {"name": text("Acme Tea Draft", "极致茶草稿")},
    )


@pytest.mark.parametrize("language", ["en", "zh-Hans"])
def test_a_list_shows_each_entity_as_its_detail_does(language, brand, previewer):
    """A page of the list reads its rows its own way (plain rows, orjson): each one must equal
    the entity's own representation, published and latest, in each language."""
    edited = organization(brand, "edited", en="Edited Tea", zh="改过的茶", description=text("Old."))
    entity_update(
        entity=edited,
        data={"name": text("Edited Tea Draft"), "description": text("New.", "新的。")},
        expected_version=1,
    )
    organization(brand, "plain", en="Plain Tea")
    organization(brand, "draft", en="Draft Tea", publish=False)

    for state, expected in (("published", 2), ("latest", 3)):
        listed = previewer.get(f"{BASE}/entities/?state={state}&lang={language}").json()
        assert listed["count"] == expected
        for row in listed["results"]:
            detail = previewer.get(f"{BASE}/entities/{row['id']}/?state={state}&lang={language}")
            assert row == detail.json()
        names = {row["slug"]: row["name"] for row in listed["results"]}
        wanted = (
            "Edited Tea Draft"
            if state == "latest"
            else {"en": "Edited Tea"}.get(language, "改过的茶")
        )
        assert names[edited.slug] == wanted


def test_drafts_are_delivered_only_with_the_preview_scope(brand, reader, previewer):
    published = organization(brand, "published", en="Published Org")
    draft = organization(brand, "draft", en="Draft Org", publish=False)

    assert published_names(reader.get(f"{BASE}/entities/")) == ["Published Org"]
    assert sorted(published_names(previewer.get(f"{BASE}/entities/?state=latest"))) == [
        "Draft Org",
        "Published Org",
    ]
    missing = problem(reader.get(f"{BASE}/entities/{draft.uuid}/"), 404)
    assert missing["detail"] == "No such entity in this brand."
    assert previewer.get(f"{BASE}/entities/{draft.uuid}/?state=latest").json()["name"] == (
        "Draft Org"
    )
    denied = problem(reader.get(f"{BASE}/entities/?state=latest"), 403)
    assert denied["detail"] == "state=latest needs the 'preview' scope."
    assert reader.get(f"{BASE}/entities/{published.uuid}/").status_code == 200

    fact = statement_create(
        model=Fact, brand=brand, key="founded", about=published,
        statement={"en": "Founded in 1998."}, source_url="https://tea.example/about",
        as_of=date(2025, 1, 1),
    )  # fmt: skip
    assert reader.get(f"{BASE}/facts/").json()["count"] == 0
    problem(reader.get(f"{BASE}/facts/{fact.pk}/"), 404)
    object_publish(obj=fact)
    facts = reader.get(f"{BASE}/facts/").json()
    assert facts["count"] == 1
    assert facts["results"][0] | {"updated_at": None} == {
        "id": fact.pk,
        "key": "founded",
        "about": str(published.uuid),
        "statement": {"en": "Founded in 1998."},
        "value": "",
        "unit": "",
        "unit_labels": {},
        "check_cues": [],
        "source_url": "https://tea.example/about",
        "source_title": {},
        "as_of": "2025-01-01",
        "valid_until": None,
        "status": "published",
        "version": 1,
        "updated_at": None,
    }


def test_facts_and_faqs_filter_by_entity(brand, reader):
    org = organization(brand)
    other = organization(brand, "other", en="Other")
    for key, about in (("a", org), ("b", other), ("c", None)):
        faq = statement_create(
            model=FAQ, brand=brand, key=key, about=about,
            question={"en": f"Question {key}?"}, answer={"en": "Answer."},
        )  # fmt: skip
        object_publish(obj=faq)
    faqs = reader.get(f"{BASE}/faqs/?about={org.uuid}").json()
    assert [(f["key"], f["about"]) for f in faqs["results"]] == [("a", str(org.uuid))]
    assert reader.get(f"{BASE}/faqs/").json()["count"] == 3
    bad = problem(reader.get(f"{BASE}/faqs/?about=not-a-uuid"), 400)
    assert bad["errors"] == [{"parameter": "about", "detail": "Give the id (a UUID) of an entity."}]


# --- languages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "accept_language", "language", "name"),
    [
        ("", "", "en", "Acme Tea"),
        ("?lang=zh-Hans", "", "zh-Hans", "极致茶"),
        ("?lang=ZH-hans", "", "zh-Hans", "极致茶"),
        ("", "zh-Hans", "zh-Hans", "极致茶"),
        ("", "zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans", "极致茶"),
        ("", "fr-FR, fr;q=0.9", "en", "Acme Tea"),
        ("", "fr, zh;q=0.5", "zh-Hans", "极致茶"),
        ("?lang=en", "zh-Hans", "en", "Acme Tea"),
        ("", "en;q=0.1, zh-Hans;q=0.9", "zh-Hans", "极致茶"),
        ("", "zh-Hans;q=0, fr", "en", "Acme Tea"),
        ("", "*", "en", "Acme Tea"),
    ],
)
def test_language_from_lang_or_accept_language(
    brand, reader, query, accept_language, language, name
):
    org = organization(brand)
    headers = {"Accept-Language": accept_language} if accept_language else {}
    for path in (f"{BASE}/entities/{org.uuid}/{query}", f"{BASE}/entities/{query}"):
        response = reader.get(path, headers=headers)
        assert response.status_code == 200
        # With ?lang the body is in that language; without it, the body holds every language
        # (Accept-Language only picks the "name" and "description" fields), and says so.
        assert response["Content-Language"] == (language if query else "en, zh-Hans")
        accept = "" if "results" in response.json() else "Accept, "
        assert response["Vary"] == f"{accept}Accept-Language, Authorization"
        body = response.json()
        entity = body["results"][0] if "results" in body else body
        assert (entity["language"], entity["name"]) == (language, name)


def test_missing_translations_fall_back_to_the_default_language(brand, reader):
    org = organization(brand, en="English Only", zh=None)
    body = reader.get(f"{BASE}/entities/{org.uuid}/?lang=zh-Hans").json()
    assert (body["language"], body["name"]) == ("zh-Hans", "English Only")
    node = reader.get(f"{BASE}/entities/{org.uuid}.jsonld?lang=zh-Hans").json()
    assert node["name"] == "English Only"


def test_a_language_the_brand_does_not_have_is_a_400(brand, reader):
    org = organization(brand)
    body = problem(reader.get(f"{BASE}/entities/{org.uuid}/?lang=fr"), 400)
    assert body["errors"] == [
        {"parameter": "lang", "detail": "Not a language of this brand (en, zh-Hans)."}
    ]


# --- JSON-LD ---------------------------------------------------------------------------------


def test_entity_as_json_ld_by_accept_header_or_suffix(brand, reader):
    org = organization(brand, foundingDate=[{"@value": "1998-04-05", "@type": "Date"}])
    by_accept = reader.get(f"{BASE}/entities/{org.uuid}/", headers={"Accept": JSONLD})
    by_suffix = reader.get(f"{BASE}/entities/{org.uuid}.jsonld")
    for response in (by_accept, by_suffix):
        assert response.status_code == 200
        assert response["Content-Type"] == JSONLD
        assert response.json() == {
            "@context": "https://schema.org",
            "@id": "https://tea.example/#organization",
            "@type": "Organization",
            "name": [
                {"@value": "Acme Tea", "@language": "en"},
                {"@value": "极致茶", "@language": "zh-Hans"},
            ],
            "foundingDate": "1998-04-05",
        }
    assert by_accept["ETag"] == by_suffix["ETag"]
    plain = reader.get(f"{BASE}/entities/{org.uuid}/")
    assert plain["Content-Type"] == "application/json"
    assert plain["ETag"] != by_accept["ETag"]
    localized = reader.get(f"{BASE}/entities/{org.uuid}.jsonld?lang=zh-Hans").json()
    assert localized["name"] == "极致茶"
    # The JSON-LD twin of the URL is read only.
    assert send(reader, "PUT", f"{BASE}/entities/{org.uuid}.jsonld", {}).status_code == 405


# --- ETag, Last-Modified and 304 ----------------------------------------------------------


@pytest.fixture
def site(brand, tmp_path):
    """Published content, a directory target, a webhook, and release 1 built from a request."""
    org = organization(brand)
    fact = statement_create(
        model=Fact, brand=brand, key="founded", about=org, statement={"en": "Founded in 1998."},
        source_url="https://tea.example/about", as_of=date(2025, 1, 1),
    )  # fmt: skip
    object_publish(obj=fact)
    faq = statement_create(
        model=FAQ, brand=brand, key="ship", question={"en": "Do you ship?"}, answer={"en": "Yes."}
    )
    object_publish(obj=faq)
    Target.objects.create(
        brand=brand,
        name="site",
        kind=Target.Kind.DIRECTORY,
        operator_path=str(tmp_path / "site"),
    )
    hook = Target.objects.create(
        brand=brand, name="hook", kind=Target.Kind.WEBHOOK, enabled=False,
        config={"url": "https://93.184.215.14/hook", "events": ["release.deployed"]},
        secret="whsec_c2VjcmV0",
    )  # fmt: skip
    request = publish_request_create(brand=brand, reason="first", dispatch=False)
    brand_build(brand=brand)
    return {"entity": org.uuid, "fact": fact.pk, "faq": faq.pk, "hook": hook.pk,
            "request": request.pk, "org": org}  # fmt: skip


GETS = {
    "brands": "/api/v1/brands/",
    "brand": f"{BASE}/",
    "entities": f"{BASE}/entities/",
    "entity": f"{BASE}/entities/{{entity}}/",
    "entity json-ld": f"{BASE}/entities/{{entity}}.jsonld",
    "facts": f"{BASE}/facts/",
    "fact": f"{BASE}/facts/{{fact}}/",
    "faqs": f"{BASE}/faqs/",
    "faq": f"{BASE}/faqs/{{faq}}/",
    "export json-ld": f"{BASE}/export.jsonld",
    "export json lines": f"{BASE}/export.jsonl",
    "releases": f"{BASE}/releases/",
    "release": f"{BASE}/releases/1/",
    "manifest": f"{BASE}/releases/1/artifacts/",
    "artifact": f"{BASE}/releases/1/artifacts/llms.txt",
    "publish request": f"{BASE}/publish-requests/{{request}}/",
    "webhooks": f"{BASE}/webhooks/",
    "webhook": f"{BASE}/webhooks/{{hook}}/",
}
# Webhook targets keep no change time (publishing.models.Target has no updated_at): their
# representations have an ETag only.
WITHOUT_LAST_MODIFIED = {"webhooks", "webhook"}


@pytest.mark.parametrize("name", GETS)
def test_every_get_has_validators_and_answers_304(name, brand, site, publisher):
    path = GETS[name].format(**site)
    first = publisher.get(path)
    assert first.status_code == 200, first.content
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2

    again = publisher.get(path, headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", etag)
    weak = publisher.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    assert publisher.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200

    if name in WITHOUT_LAST_MODIFIED:
        assert "Last-Modified" not in first
        return
    modified = first["Last-Modified"]
    assert publisher.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    earlier = format_datetime(
        datetime.strptime(modified, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
        - timedelta(seconds=1),
        usegmt=True,
    )
    assert publisher.get(path, headers={"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    assert (
        publisher.get(
            path, headers={"If-None-Match": '"something-else"', "If-Modified-Since": modified}
        ).status_code
        == 200
    )


def test_a_change_changes_the_etag(brand, site, writer):
    path = f"{BASE}/entities/{site['entity']}/?state=latest"
    first = writer.get(path)
    assert first["ETag"].startswith('"1.')
    update = send(writer, "PUT", f"{BASE}/entities/{site['entity']}/",
                  {"@type": "Organization", "name": "Acme Tea Ltd"}, **{"If-Match": first["ETag"]})  # fmt: skip
    assert update.status_code == 200
    assert update["ETag"].startswith('"2.')
    second = writer.get(path, headers={"If-None-Match": first["ETag"]})
    assert second.status_code == 200
    assert second.json()["name"] == "Acme Tea Ltd"
    assert second["ETag"] == update["ETag"]


def backdate(*models, to=datetime(2024, 1, 1, tzinfo=UTC)):
    for model in models:
        model.objects.update(updated_at=to)
    AuditEntry.objects.update(timestamp=to)


@pytest.mark.parametrize("kind", ["entities", "facts", "faqs"])
def test_list_last_modified_moves_when_a_row_is_deleted(kind, brand, site, writer):
    """Deleting a row that is not the newest still changes the list (and the export)."""
    org = site["org"]
    extra = {
        "entities": lambda: organization(brand, "spare", en="Spare"),
        "facts": lambda: statement_create(
            model=Fact,
            brand=brand,
            key="spare",
            about=org,
            statement={"en": "Spare."},
            source_url="https://tea.example/",
            as_of=date(2025, 1, 1),
        ),
        "faqs": lambda: statement_create(
            model=FAQ, brand=brand, key="spare", question={"en": "Spare?"}, answer={"en": "Yes."}
        ),
    }[kind]()
    object_publish(obj=extra)
    backdate(Entity, Fact, FAQ)
    listing = writer.get(f"{BASE}/{kind}/")
    export = writer.get(f"{BASE}/export.jsonl")
    assert listing["Last-Modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    path = f"{BASE}/{kind}/{extra.uuid if kind == 'entities' else extra.pk}/"
    assert send(writer, "DELETE", path, **{"If-Match": "1"}).status_code == 204

    after = writer.get(f"{BASE}/{kind}/", headers={"If-Modified-Since": listing["Last-Modified"]})
    assert after.status_code == 200
    assert after.json()["count"] == 1
    assert after["Last-Modified"] != listing["Last-Modified"]
    if kind == "entities":
        again = writer.get(f"{BASE}/export.jsonl", headers={"If-None-Match": export["ETag"]})
        assert again.status_code == 200
        nodes = [json.loads(line) for line in again.getvalue().splitlines()]
        # The export also carries the brand's facts (Claim) and FAQs (FAQPage).
        assert len([n for n in nodes if n["@type"] not in ("Claim", "FAQPage")]) == 1


def test_published_entity_is_not_modified_only_while_nothing_changed(brand, site, reader):
    """The published representation carries the working copy's version: a draft edit is a
    change for If-Modified-Since too."""
    org = site["org"]
    Entity.objects.filter(pk=org.pk).update(updated_at=datetime(2024, 1, 1, tzinfo=UTC))
    first = reader.get(f"{BASE}/entities/{org.uuid}/")
    assert first["Last-Modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    entity_update(entity=org, data={"name": text("Draft name")}, expected_version=1)
    again = reader.get(
        f"{BASE}/entities/{org.uuid}/", headers={"If-Modified-Since": first["Last-Modified"]}
    )
    assert again.status_code == 200
    assert (again.json()["version"], again.json()["name"]) == (2, "Acme Tea")


# --- If-Match: 428 without it, 412 when stale, and nothing overwritten ---------------------


def statement_of(brand, kind):
    org = organization(brand)
    if kind == "entities":
        return org, f"{BASE}/entities/{org.uuid}/", {"@type": "Organization", "name": "Changed"}
    if kind == "facts":
        obj = statement_create(
            model=Fact, brand=brand, key="founded", about=org, statement={"en": "Founded in 1998."},
            source_url="https://tea.example/about", as_of=date(2025, 1, 1),
        )  # fmt: skip
        body = {"key": "founded", "about": str(org.uuid), "statement": {"en": "Changed."},
                "source_url": "https://tea.example/about", "as_of": "2025-01-01"}  # fmt: skip
        return obj, f"{BASE}/facts/{obj.pk}/", body
    obj = statement_create(
        model=FAQ, brand=brand, key="ship", question={"en": "Do you ship?"}, answer={"en": "Yes."}
    )
    return obj, f"{BASE}/faqs/{obj.pk}/", {"key": "ship", "question": {"en": "Changed?"},
                                           "answer": {"en": "Yes."}}  # fmt: skip


def stored(obj) -> tuple:
    obj.refresh_from_db()
    revisions = Revision.objects.filter(object_id=obj.pk, brand=obj.brand).count()
    return obj.version, obj.snapshot(), revisions


@pytest.mark.parametrize("kind", ["entities", "facts", "faqs"])
def test_writes_need_the_current_version_in_if_match(kind, brand, writer):
    obj, path, body = statement_of(brand, kind)
    read = writer.get(path + "?state=latest")
    etag = read["ETag"]
    assert etag.startswith('"1.')
    before = stored(obj)

    required = problem(send(writer, "PUT", path, body), 428)
    assert required == {
        "type": "https://sourcebook.example/problems/precondition-required",
        "title": "Precondition required",
        "status": 428,
        "detail": "Send If-Match with the ETag (or version number) you read.",
        "instance": path,
    }
    assert stored(obj) == before
    problem(send(writer, "DELETE", path), 428)
    assert stored(obj) == before

    malformed = problem(send(writer, "PUT", path, body, **{"If-Match": "yesterday"}), 412)
    assert malformed["detail"] == "If-Match must be the ETag you read (or the version number)."

    # Someone else saves version 2 ...
    changed = send(writer, "PUT", path, body, **{"If-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["version"] == 2
    after_first = stored(obj)
    # ... so a change based on version 1 is refused, and nothing is overwritten.
    other_body = json.loads(json.dumps(body).replace("Changed", "Overwritten"))
    for stale in (etag, "1", 'W/"1"'):
        refused = problem(send(writer, "PUT", path, other_body, **{"If-Match": stale}), 412)
        assert refused["title"] == "Precondition failed"
        assert refused["detail"] == (
            "The resource is at version 2, you sent changes based on version 1: nothing was "
            "changed. Read it again and redo your change."
        )
        assert stored(obj) == after_first
    problem(send(writer, "DELETE", path, **{"If-Match": etag}), 412)
    assert stored(obj) == after_first

    # If-None-Match does not turn a write into a 304: the change was made, the answer says so.
    again = json.loads(json.dumps(body).replace("Changed", "Changed again"))
    done = send(writer, "PUT", path, again, **{"If-Match": changed["ETag"], "If-None-Match": "*"})
    assert (done.status_code, done.json()["version"]) == (200, 3)
    # The current ETag (or just its version number) works.
    assert send(writer, "PUT", path, other_body, **{"If-Match": done["ETag"]}).status_code == 200
    assert send(writer, "DELETE", path, **{"If-Match": "4"}).status_code == 204
    assert not type(obj).objects.filter(pk=obj.pk).exists()


def test_publishing_an_entity_needs_if_match_too(brand, publisher):
    org = organization(brand, publish=False)
    path = f"{BASE}/entities/{org.uuid}/publish/"
    problem(send(publisher, "POST", path), 428)
    problem(send(publisher, "POST", path, **{"If-Match": "2"}), 412)
    assert Entity.objects.get(pk=org.pk).live_revision_id is None
    published = send(publisher, "POST", path, **{"If-Match": "1"})
    assert published.status_code == 200
    assert (published.json()["state"], published.json()["status"]) == ("published", "published")


def test_publishing_content_with_errors_is_a_409_naming_each(brand, publisher):
    """Wrong values block a publish (an import keeps what it reads, so they can be there);
    what a rich result needs and is missing does not: that product is published."""
    product = entity_create(
        brand=brand,
        types=["Product"],
        iri=f"{brand.base_url}/products/x/#product",
        data={
            "name": text("Tea"),
            "offers": [
                {"@type": ["Offer"], "price": [{"@value": "abc"}],
                 "priceCurrency": [{"@value": "XYZ"}]}
            ],
        },
        validated=True,  # as an import stores it
    )  # fmt: skip
    path = f"{BASE}/entities/{product.uuid}/publish/"
    blocked = problem(send(publisher, "POST", path, **{"If-Match": "1"}), 409)
    assert blocked["errors"] == [
        {"pointer": "/offers/price", "detail": "The price 'abc' is not a number: write it with "
         "a dot before the cents, e.g. 12.50."},
        {"pointer": "/offers/priceCurrency", "detail": "'XYZ' is not an ISO 4217 currency code."},
    ]  # fmt: skip
    assert blocked["detail"].startswith("Tea (Product) was not published: fix these errors first")
    assert Entity.objects.get(pk=product.pk).live_revision_id is None
    not_eligible = entity_create(
        brand=brand,
        types=["Product"],
        iri=f"{brand.base_url}/products/y/#product",
        data={"name": text("Tea"), "offers": [{"@type": ["Offer"], "price": [{"@value": 0}]}]},
    )
    path = f"{BASE}/entities/{not_eligible.uuid}/publish/"
    assert send(publisher, "POST", path, **{"If-Match": "1"}).status_code == 200


def test_deleting_a_referenced_entity_is_a_409(brand, writer):
    org = organization(brand)
    statement_create(
        model=Fact, brand=brand, key="founded", about=org, statement={"en": "Founded in 1998."},
        source_url="https://tea.example/about", as_of=date(2025, 1, 1),
    )  # fmt: skip
    conflict = problem(
        send(writer, "DELETE", f"{BASE}/entities/{org.uuid}/", **{"If-Match": "1"}), 409
    )
    assert conflict["detail"] == (
        "Acme Tea (Organization) cannot be deleted because it is referenced by: fact 'founded'. "
        "Remove those references first."
    )
    assert Entity.objects.filter(pk=org.pk).exists()


# --- strict query parameters and the problem format ---------------------------------------


@pytest.mark.parametrize(
    ("path", "understood"),
    [
        ("/api/v1/brands/", "none"),
        (f"{BASE}/", "none"),
        (f"{BASE}/entities/", "lang, page, page_size, q, slug, state, type, updated_since"),
        (f"{BASE}/facts/", "about, lang, page, page_size, state"),
        (f"{BASE}/faqs/", "about, lang, page, page_size, state"),
        (f"{BASE}/export.jsonld", "state"),
        (f"{BASE}/releases/", "page, page_size"),
        (f"{BASE}/webhooks/", "none"),
    ],
)
def test_unknown_query_parameters_are_a_400(path, understood, brand, publisher):
    response = publisher.get(path + "?langauge=zh&state=published")
    body = problem(response, 400)
    unknown = ["langauge"] + (["state"] if "state" not in understood.split(", ") else [])
    assert body == {
        "type": "https://sourcebook.example/problems/invalid",
        "title": "Bad request",
        "status": 400,
        "detail": "A query parameter is not valid.",
        "errors": [
            {
                "parameter": name,
                "detail": f"Unknown query parameter; this endpoint understands: {understood}.",
            }
            for name in unknown
        ],
        "instance": path + "?langauge=zh&state=published",
    }


@pytest.mark.parametrize(
    ("query", "parameter", "detail"),
    [
        ("state=draft", "state", "Use published or latest."),
        ("type=Prodcut", "type", "'Prodcut' is not a schema.org type."),
        ("updated_since=2025-01-01T00:00:00", "updated_since",
         "Give an ISO 8601 date-time with a time zone."),
        ("updated_since=yesterday", "updated_since", "Give an ISO 8601 date-time with a time zone."),
    ],
)  # fmt: skip
def test_invalid_parameter_values_are_a_400(query, parameter, detail, brand, reader):
    body = problem(reader.get(f"{BASE}/entities/?{query}"), 400)
    assert body["errors"] == [{"parameter": parameter, "detail": detail}]


def test_unknown_paths_are_problems_too(brand, writer):
    body = problem(writer.get(f"{BASE}/entities/not-a-uuid/"), 404)
    assert body["detail"] == "No such API endpoint."
    body = problem(send(writer, "POST", f"{BASE}/entities", {"@type": "Organization"}), 404)
    assert body["detail"] == (
        f"No such API endpoint. Did you mean {BASE}/entities/ (with the trailing slash)?"
    )
    problem(Client().get("/api/v1/nothing/"), 401)


def test_validation_errors_name_the_field(brand, writer):
    org = organization(brand)
    response = send(writer, "POST", f"{BASE}/facts/", {"key": "bad key", "about": str(org.uuid),
                    "statement": {"en": "x"}, "source_url": "not a url"})  # fmt: skip
    body = problem(response, 400)
    assert body["detail"] == "The request is not valid."
    assert body["errors"] == [
        {
            "pointer": "/key",
            "detail": 'Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.',
        },
        {"pointer": "/source_url", "detail": "Enter a valid URL."},
        {"pointer": "/as_of", "detail": "This field is required."},
    ]
    # Every fact is about an entity.
    response = send(writer, "POST", f"{BASE}/facts/", {"key": "k", "statement": {"en": "x"},
                    "source_url": "https://tea.example/", "as_of": "2025-01-01"})  # fmt: skip
    assert problem(response, 400)["errors"] == [
        {"pointer": "/about", "detail": "This field is required."}
    ]
    # Keys are unique per brand.
    statement_create(
        model=FAQ, brand=brand, key="ship", question={"en": "Ship?"}, answer={"en": "Yes."}
    )
    response = send(writer, "POST", f"{BASE}/faqs/", {"key": "ship", "question": {"en": "Again?"},
                    "answer": {"en": "Yes."}})  # fmt: skip
    assert problem(response, 400)["errors"] == [
        {"pointer": "/key", "detail": "The brand already has a FAQ with this key."}
    ]
    assert FAQ.objects.count() == 1
    # Content rules of the service come back as pointers too.
    response = send(writer, "POST", f"{BASE}/faqs/", {"key": "k", "question": {"fr": "Quoi?"},
                    "answer": {"en": "That."}})  # fmt: skip
    assert problem(response, 400)["errors"] == [
        {
            "pointer": "/question/fr",
            "detail": "'fr' is not one of the brand's languages (en, zh-Hans)",
        },
        {"pointer": "/question/en", "detail": "required in the default language"},
    ]
    response = send(
        writer, "POST", f"{BASE}/entities/", {"@type": "Organization", "colour": "green"}
    )
    body = problem(response, 400)
    assert body["errors"] == [
        {"pointer": "/colour", "detail": "unknown schema.org property 'colour'"}
    ]
    assert Entity.objects.count() == 1


# --- pagination and filters ----------------------------------------------------------------


def many_entities(brand, count: int) -> None:
    """Working copies only (state=latest), inserted in bulk."""
    Entity.objects.bulk_create(
        Entity(
            brand=brand,
            iri=f"{brand.base_url}/#e-{n:03}",
            slug=f"e-{n:03}",
            types=["Thing"],
            primary_type="Thing",
            label=f"Entity {n:03}",
            data={"name": text(f"Entity {n:03}")},
            version=1,
        )  # fmt: skip
        for n in range(count)
    )


def test_pagination_has_a_default_and_a_capped_page_size(brand, previewer):
    many_entities(brand, 205)
    url = f"{BASE}/entities/?state=latest"
    first = previewer.get(url).json()
    assert (first["count"], len(first["results"])) == (205, 50)
    assert first["results"][0]["slug"] == "e-000"
    assert first["next"] == f"http://testserver{BASE}/entities/?page=2&state=latest"
    assert first["previous"] is None

    capped = previewer.get(url + "&page_size=500").json()
    assert len(capped["results"]) == 200
    assert capped["next"] == f"http://testserver{BASE}/entities/?page=2&page_size=500&state=latest"
    last = previewer.get(url + "&page_size=200&page=2").json()
    assert [e["slug"] for e in last["results"]] == ["e-200", "e-201", "e-202", "e-203", "e-204"]
    assert last["next"] is None
    assert last["previous"] == f"http://testserver{BASE}/entities/?page_size=200&state=latest"
    assert problem(previewer.get(url + "&page=9"), 404)["detail"] == "Invalid page."


def test_updated_since_filters_by_change_or_publication(brand, previewer):
    old, new, draft = (organization(brand, s, en=s.title()) for s in ("old", "new", "draft"))
    Entity.objects.filter(pk=old.pk).update(
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
        last_published_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    Entity.objects.filter(pk=new.pk).update(
        updated_at=datetime(2025, 3, 1, tzinfo=UTC),
        last_published_at=datetime(2025, 2, 1, tzinfo=UTC),
    )
    Entity.objects.filter(pk=draft.pk).update(
        updated_at=datetime(2025, 3, 1, tzinfo=UTC),
        last_published_at=datetime(2024, 1, 1, tzinfo=UTC),
    )

    def names(query):
        return sorted(published_names(previewer.get(f"{BASE}/entities/?{query}")))

    assert names("updated_since=2025-02-01T00:00:00Z") == ["New"]
    assert names("updated_since=2025-02-01T00:00:00Z&state=latest") == ["Draft", "New"]
    assert names("updated_since=2025-03-01T00:00:01%2B00:00&state=latest") == []
    assert names("updated_since=2024-12-31T23:00:00-02:00") == ["New"]
    # An offset Python accepts and PostgreSQL does not (past ±15:59): compared in UTC
    # (2025-02-01T18:35 UTC), not a server error (schemathesis found it).
    assert names("updated_since=2025-01-31T23:59:00-18:36&state=latest") == ["Draft", "New"]
    assert names("updated_since=2025-02-01T00:00:00-18:36") == []


def test_filters_by_type_text_and_slug(brand, reader):
    organization(brand, "acme", en="Acme Tea")
    store = entity_create(
        brand=brand,
        types=["Store"],
        data={
            "name": text("Hangzhou Shop"),
            "address": [{"@type": ["PostalAddress"], "addressLocality": text("Hangzhou")}],
        },
        iri=f"{brand.base_url}/#shop",
    )
    object_publish(obj=store)

    def names(query):
        return published_names(reader.get(f"{BASE}/entities/?{query}"))

    assert names("type=LocalBusiness") == ["Hangzhou Shop"]
    assert names("type=Organization") == ["Acme Tea", "Hangzhou Shop"]  # a Store is one
    assert names("type=Person") == []
    assert names("q=hangzhou") == ["Hangzhou Shop"]
    assert names("q=%23acme") == ["Acme Tea"]  # the @id
    assert names(f"slug={store.slug}") == ["Hangzhou Shop"]


# --- export --------------------------------------------------------------------------------


def test_export_as_one_json_ld_document_or_json_lines(brand, reader, previewer):
    organization(brand, "b-org", en="B Org")
    organization(brand, "a-org", en="A Org")
    organization(brand, "c-draft", en="C Draft", publish=False)

    document = reader.get(f"{BASE}/export.jsonld")
    assert document.status_code == 200
    assert document["Content-Type"] == JSONLD
    graph = json.loads(document.getvalue())
    assert graph["@context"] == "https://schema.org"
    assert [n["@id"] for n in graph["@graph"]] == [
        "https://tea.example/#a-org",
        "https://tea.example/#b-org",
    ]
    assert graph["@graph"][0] == {
        "@id": "https://tea.example/#a-org",
        "@type": "Organization",
        "name": [
            {"@value": "A Org", "@language": "en"},
            {"@value": "极致茶", "@language": "zh-Hans"},
        ],
    }

    lines = reader.get(f"{BASE}/export.jsonl")
    assert lines["Content-Type"] == "application/jsonl"
    body = lines.getvalue().decode()
    assert body.endswith("\n")
    nodes = [json.loads(line) for line in body.splitlines()]
    assert nodes == [{"@context": "https://schema.org", **node} for node in graph["@graph"]]

    latest = previewer.get(f"{BASE}/export.jsonl?state=latest").getvalue().decode().splitlines()
    assert [json.loads(line)["@id"] for line in latest] == [
        "https://tea.example/#a-org",
        "https://tea.example/#b-org",
        "https://tea.example/#c-draft",
    ]
    # Clients may ask for the media type they expect.
    assert reader.get(f"{BASE}/export.jsonld", headers={"Accept": JSONLD}).status_code == 200
    assert (
        reader.get(f"{BASE}/export.jsonl", headers={"Accept": "application/jsonl"}).status_code
        == 200
    )


@pytest.fixture
def demo_reader(db):
    from kb.demo_brand import demo_load

    return token_client(demo_load()["brand"], "read")


def test_the_demo_brand_delivered_whole(demo_reader):
    """The realistic brand: 29 entities, 36 facts, 23 FAQs, all published, in two languages."""
    base = "/api/v1/brands/westlake-leaf"
    lines = demo_reader.get(f"{base}/export.jsonl").getvalue().decode().splitlines()
    nodes = [json.loads(line) for line in lines]
    # Entities by @id, then the facts (one Claim each) and FAQs (FAQPages of Questions).
    entities = [n for n in nodes if n["@type"] not in ("Claim", "FAQPage")]
    assert nodes[: len(entities)] == entities
    assert len(entities) == 29
    ids = [n["@id"] for n in entities]
    assert ids == sorted(ids)
    assert len([n for n in nodes if n["@type"] == "Claim"]) == 36
    pages = [n for n in nodes if n["@type"] == "FAQPage"]
    assert sum(len(page["mainEntity"]) for page in pages) == 23
    assert demo_reader.get(f"{base}/entities/?page_size=200").json()["count"] == 29
    assert demo_reader.get(f"{base}/facts/").json()["count"] == 36
    assert demo_reader.get(f"{base}/faqs/").json()["count"] == 23
    organizations = f"{base}/entities/?type=Organization&q=organization"
    english = demo_reader.get(organizations).json()["results"]
    chinese = demo_reader.get(organizations, headers={"Accept-Language": "zh-CN"}).json()
    assert [e["name"] for e in english] == ["Westlake Leaf Tea"]
    assert [e["name"] for e in chinese["results"]] == ["西湖叶茶业"]


# --- import ----------------------------------------------------------------------------------

IMPORT = {
    "@context": "https://schema.org",
    "@graph": [
        {"@id": "https://tea.example/#organization", "@type": "Organization",
         "name": [{"@value": "Acme Tea", "@language": "en"}]},
        {"@id": "https://tea.example/products/longjing/#product", "@type": "Product",
         "name": "Longjing", "brand": {"@id": "https://tea.example/#organization"},
         "image": "https://tea.example/img/longjing.jpg",
         "offers": {"@type": "Offer", "price": "12.00", "priceCurrency": "USD"}},
    ],
}  # fmt: skip


def import_(client, document, query=""):
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return client.post(f"{BASE}/import/{query}", raw, content_type=JSONLD)


# The import response lists facts and FAQs too (tests/test_import_counts.py); none here.
NO_FACTS_OR_FAQS = {
    f"{kind}_{outcome}": []
    for kind in ("facts", "faqs")
    for outcome in ("created", "updated", "unchanged", "published")
}


def test_import_creates_updates_and_reports(brand, writer, publisher, reader):
    created = import_(writer, IMPORT)
    assert created.status_code == 200
    assert created.json() == {
        "created": [
            "https://tea.example/#organization",
            "https://tea.example/products/longjing/#product",
        ],
        "updated": [],
        "unchanged": [],
        "published": [],
        **NO_FACTS_OR_FAQS,
    }
    assert reader.get(f"{BASE}/entities/").json()["count"] == 0  # imported as drafts

    changed = json.loads(json.dumps(IMPORT).replace('"Longjing"', '"Longjing Tea"'))
    published = import_(publisher, changed, "?publish=true")
    assert published.json() == {
        "created": [],
        "updated": ["https://tea.example/products/longjing/#product"],
        "unchanged": ["https://tea.example/#organization"],
        "published": [
            "https://tea.example/#organization",
            "https://tea.example/products/longjing/#product",
        ],
        **NO_FACTS_OR_FAQS,
    }
    assert published_names(reader.get(f"{BASE}/entities/")) == ["Acme Tea", "Longjing Tea"]
    denied = problem(import_(writer, changed, "?publish=yes"), 403)
    assert denied["detail"].startswith("This needs the 'publish' scope")


def test_import_with_publish_refuses_content_that_fails_the_publish_checks(
    brand, publisher, reader
):
    broken = json.loads(json.dumps(IMPORT))
    del broken["@graph"][1]["image"]
    broken["@graph"][1]["offers"]["priceCurrency"] = "XYZ"
    refused = problem(import_(publisher, broken, "?publish=true"), 400)
    product = "https://tea.example/products/longjing/#product"
    assert refused["detail"] == "Nothing was imported."
    assert refused["errors"] == [
        {
            "pointer": "/@graph/1/offers/priceCurrency",
            "detail": f"{product} cannot be published: 'XYZ' is not an ISO 4217 currency code. "
            "(Google: Product (merchant listing))",
        },
    ]
    assert Entity.objects.filter(brand=brand).count() == 0
    drafts = import_(publisher, broken)  # as drafts, the same content is welcome
    assert drafts.status_code == 200 and len(drafts.json()["created"]) == 2


def test_import_is_all_or_nothing_with_pointers(brand, writer):
    organization(brand, en="Before")
    before = (Entity.objects.count(), Revision.objects.count(), AuditEntry.objects.count())
    bad = json.loads(json.dumps(IMPORT))
    bad["@graph"][0]["name"] = [{"@value": "Renamed", "@language": "en"}]  # valid on its own
    bad["@graph"][1]["colour"] = "green"
    bad["@graph"].append({"@type": "Prodcut", "name": "Oops"})
    response = import_(writer, bad)
    body = problem(response, 400)
    assert body == {
        "type": "https://sourcebook.example/problems/invalid",
        "title": "Bad request",
        "status": 400,
        "detail": "Nothing was imported.",
        "errors": [
            {
                "pointer": "/@graph/1/colour",
                "detail": "unknown schema.org property 'colour' (did you mean 'color'?)",
            },
            {
                "pointer": "/@graph/2/@type",
                "detail": "unknown schema.org type 'Prodcut' (did you mean 'Product'?)",
            },
        ],
        "instance": f"{BASE}/import/",
    }
    assert (Entity.objects.count(), Revision.objects.count(), AuditEntry.objects.count()) == before
    assert Entity.objects.get().label == "Before"

    not_json = problem(import_(writer, b'{"@context": "https://schema.org",'), 400)
    assert not_json["errors"][0]["pointer"] == "/"
    assert not_json["errors"][0]["detail"].startswith("malformed JSON at line 1")


def test_import_size_is_limited_like_the_cli(brand, writer, settings):
    """Larger than Django's 2.5 MB body limit is fine; the limit is the importer's."""
    document = {"@context": "https://schema.org", "@id": "https://tea.example/#big",
                "@type": "Organization", "name": "Big", "description": "tea " * 800_000}  # fmt: skip
    raw = json.dumps(document).encode()
    assert len(raw) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert import_(writer, raw).json()["created"] == ["https://tea.example/#big"]

    settings.SOURCEBOOK_IMPORT_MAX_BYTES = 1000
    over = json.dumps({**document, "description": "x" * 1000}).encode()
    assert len(over) == 1128
    assert problem(import_(writer, over), 400)["errors"] == [
        {"pointer": "/", "detail": "the file is 1,128 bytes, over the import limit of 1,000 bytes "
         "(SOURCEBOOK_IMPORT_MAX_BYTES)"}
    ]  # fmt: skip


# --- publishing: request, follow, release, artifacts, rollback -----------------------------


def test_publish_then_follow_the_request_to_the_release_and_its_artifacts(
    brand, publisher, tmp_path, django_capture_on_commit_callbacks
):
    organization(brand)
    Target.objects.create(
        brand=brand,
        name="site",
        kind=Target.Kind.DIRECTORY,
        operator_path=str(tmp_path / "site"),
    )
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = send(publisher, "POST", f"{BASE}/publish/", {"reason": "Spring catalogue"})
    assert response.status_code == 202
    accepted = response.json()
    request = PublishRequest.objects.get()
    assert response["Location"] == f"{BASE}/publish-requests/{request.pk}/"
    assert accepted | {"created_at": None} == {
        "id": request.pk, "state": "pending", "source": "api", "reason": "Spring catalogue",
        "created_at": None, "dispatched_at": None, "release": None,
        "progress": {"done": 0, "total": 0},
    }  # fmt: skip
    assert len(queued) == 1  # built once the request is committed (here: in-process)

    followed = publisher.get(response["Location"]).json()
    release = Release.objects.get(brand=brand)
    total = release.summary["artifacts"]
    assert (followed["state"], followed["release"], followed["progress"]) == (
        "done", 1, {"done": total, "total": total},
    )  # fmt: skip
    detail = publisher.get(f"{BASE}/releases/1/").json()
    assert (detail["number"], detail["state"], detail["reason"]) == (
        1,
        "deployed",
        "Spring catalogue",
    )
    assert [(d["target"], d["kind"], d["state"]) for d in detail["deployments"]] == [
        ("site", "directory", "done")
    ]
    assert publisher.get(f"{BASE}/releases/").json()["results"][0]["number"] == 1

    manifest = publisher.get(f"{BASE}/releases/1/artifacts/?page_size=200").json()
    assert manifest["count"] == total == release.artifacts.count()
    entries = {a["path"]: a for a in manifest["results"]}
    llms = release.artifacts.get(path="llms.txt")
    assert entries["llms.txt"] | {"changed_at": None} == {
        "path": "llms.txt", "sha256": llms.sha256, "size": llms.size,
        "content_type": llms.content_type, "kind": "llms", "changed_at": None,
    }  # fmt: skip
    pages = publisher.get(f"{BASE}/releases/1/artifacts/?kind=page&page_size=200").json()
    assert {a["kind"] for a in pages["results"]} == {"page"}
    assert pages["count"] == release.summary["counts"]["page"]

    for path in ("llms.txt", "zh-Hans/llms.txt"):
        artifact = release.artifacts.get(path=path)
        content = publisher.get(
            f"{BASE}/releases/1/artifacts/{path}", headers={"Accept": "text/markdown"}
        )
        assert content.status_code == 200
        assert content.content == artifact_read(artifact.sha256)
        assert content["Content-Type"] == artifact.content_type
        assert content["ETag"] == f'"{artifact.sha256}"'
    assert b"# Acme Tea" in publisher.get(f"{BASE}/releases/1/artifacts/llms.txt").content
    missing = problem(publisher.get(f"{BASE}/releases/1/artifacts/nothing.txt"), 404)
    assert missing["detail"] == "No such artifact in this release."

    # A release still building has the rows written so far: not served as its manifest.
    building = Release.objects.create(brand=brand, number=2)
    ReleaseArtifact.objects.create(
        brand=brand, since=building.number, path="llms.txt", sha256=llms.sha256, size=llms.size,
        content_type=llms.content_type, kind="llms", fingerprint="x", changed_at=llms.changed_at,
    )  # fmt: skip
    assert building.state == Release.State.BUILDING
    assert publisher.get(f"{BASE}/releases/2/artifacts/").json()["count"] == 0
    problem(publisher.get(f"{BASE}/releases/2/artifacts/llms.txt"), 404)


def test_rollback_deploys_an_earlier_release_again(brand, publisher, tmp_path):
    org = organization(brand)
    site_dir = tmp_path / "site"
    Target.objects.create(
        brand=brand, name="site", kind=Target.Kind.DIRECTORY, operator_path=str(site_dir)
    )
    for reason in ("first", "second"):
        publish_request_create(brand=brand, reason=reason, dispatch=False)
        brand_build(brand=brand)
        entity_update(
            entity=org, data={"name": text(f"Acme after {reason}")}, expected_version=None
        )
        object_publish(obj=org)
    assert os.readlink(site_dir / "current").endswith("2")

    long_ago = datetime(2024, 1, 1, tzinfo=UTC)
    Release.objects.update(created_at=long_ago, finished_at=long_ago, deployed_at=long_ago)
    Deployment.objects.update(started_at=long_ago, finished_at=long_ago)
    before = publisher.get(f"{BASE}/releases/1/")
    listing = publisher.get(f"{BASE}/releases/")
    assert before["Last-Modified"] == listing["Last-Modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"

    response = send(publisher, "POST", f"{BASE}/releases/1/rollback/")
    assert response.status_code == 200
    body = response.json()
    assert (body["number"], body["state"], body["reason"]) == (1, "deployed", "first")
    assert [d["state"] for d in body["deployments"]] == ["done", "done"]
    assert os.readlink(site_dir / "current").endswith("1")
    assert "Acme Tea" in (site_dir / "current" / "llms.txt").read_text()
    # Deployed again: a change for conditional requests on the release and the list.
    since = {"If-Modified-Since": before["Last-Modified"]}
    assert publisher.get(f"{BASE}/releases/1/", headers=since).status_code == 200
    assert publisher.get(f"{BASE}/releases/", headers=since).status_code == 200

    assert problem(send(publisher, "POST", f"{BASE}/releases/7/rollback/"), 404)["detail"] == (
        "No such release."
    )
    Target.objects.update(enabled=False)
    conflict = problem(send(publisher, "POST", f"{BASE}/releases/1/rollback/"), 409)
    assert conflict["detail"] == "Brand 'acme-tea' has no enabled target to deploy to."


# --- webhooks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("ftp://93.184.215.14/hook", "The URL must start with http:// or https://."),
        ("http://127.0.0.1:8000/hook", "The host 127.0.0.1 resolves to 127.0.0.1, a loopback address"),
        ("http://[::1]/hook", "The host ::1 resolves to ::1, a loopback address"),
        ("http://10.0.0.7/hook", "The host 10.0.0.7 resolves to 10.0.0.7, a private address"),
        ("http://192.168.1.20/hook", "The host 192.168.1.20 resolves to 192.168.1.20, a private address"),
        ("http://169.254.169.254/latest/meta-data", "The host 169.254.169.254 resolves to 169.254.169.254, a link-local address"),
        ("http://[::ffff:127.0.0.1]/hook", "The host ::ffff:127.0.0.1 resolves to ::ffff:7f00:1, a loopback address (127.0.0.1 inside)"),
    ],
)  # fmt: skip
def test_webhook_urls_must_be_public_http(url, detail, brand, publisher, settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    body = problem(send(publisher, "POST", f"{BASE}/webhooks/", {"name": "cms", "url": url}), 400)
    suffix = "" if url.startswith("ftp") else (
        "; outbound calls go only to public addresses (an operator can allow a host with "
        "SOURCEBOOK_EGRESS_ALLOW)."
    )  # fmt: skip
    assert body["errors"] == [{"pointer": "/url", "detail": detail + suffix}]
    assert not Target.objects.exists()


def test_private_webhook_urls_when_the_setting_allows_them(brand, publisher, settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]
    response = send(
        publisher,
        "POST",
        f"{BASE}/webhooks/",
        {"name": "local", "url": "http://127.0.0.1:8000/hook"},
    )
    assert response.status_code == 201
    assert problem(
        send(
            publisher, "POST", f"{BASE}/webhooks/", {"name": "ftp", "url": "ftp://127.0.0.1/hook"}
        ),
        400,
    )["errors"] == [{"pointer": "/url", "detail": "The URL must start with http:// or https://."}]


def test_manage_webhook_subscriptions(brand, publisher, settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    url = "https://93.184.215.14/hook"
    created = send(publisher, "POST", f"{BASE}/webhooks/", {"name": "cms", "url": url})
    assert created.status_code == 201
    hook = created.json()
    target = Target.objects.get()
    assert hook == {"id": target.pk, "name": "cms", "url": url, "events": ["release.deployed"],
                    "enabled": True, "secret": target.secret}  # fmt: skip
    assert target.secret.startswith("whsec_") and len(target.secret) == 50
    assert target.kind == Target.Kind.WEBHOOK

    listed = publisher.get(f"{BASE}/webhooks/").json()
    assert listed == [{k: v for k, v in hook.items() if k != "secret"}]  # the secret once only
    duplicate = send(publisher, "POST", f"{BASE}/webhooks/", {"name": "cms", "url": url})
    assert problem(duplicate, 400)["errors"] == [
        {"pointer": "/name", "detail": "A target of this brand already has this name."}
    ]
    path = f"{BASE}/webhooks/{target.pk}/"
    updated = send(publisher, "PUT", path, {"name": "cms", "url": url + "/v2", "enabled": False})
    assert updated.json() == {"id": target.pk, "name": "cms", "url": url + "/v2",
                              "events": ["release.deployed"], "enabled": False}  # fmt: skip
    Target.objects.create(brand=brand, name="crm", kind=Target.Kind.WEBHOOK, config={"url": url})
    taken = send(publisher, "PUT", path, {"name": "crm", "url": url})
    assert problem(taken, 400)["errors"] == [
        {"pointer": "/name", "detail": "A target of this brand already has this name."}
    ]
    Target.objects.filter(name="crm").delete()
    refused = send(publisher, "PUT", path, {"name": "cms", "url": "http://10.0.0.1/"})
    assert problem(refused, 400)["errors"][0]["pointer"] == "/url"
    assert Target.objects.get().config["url"] == url + "/v2"
    assert send(publisher, "DELETE", path).status_code == 204
    assert not Target.objects.exists()
    # Only webhook targets are managed here.
    directory = Target.objects.create(
        brand=brand, name="site", kind=Target.Kind.DIRECTORY, config={}
    )
    problem(publisher.get(f"{BASE}/webhooks/{directory.pk}/"), 404)


# --- throttling ----------------------------------------------------------------------------


def test_throttling_per_token_with_retry_after(brand, settings, monkeypatch, django_user_model):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "3/minute"},
    }
    # DRF reads the rates into the throttle class once: point it at the lowered setting.
    assert api_settings.DEFAULT_THROTTLE_RATES == {"api": "3/minute"}
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", api_settings.DEFAULT_THROTTLE_RATES)
    first, second = token_client(brand, "read"), token_client(brand, "read")
    assert [first.get(f"{BASE}/").status_code for _ in range(3)] == [200, 200, 200]

    throttled = first.get(f"{BASE}/")
    body = problem(throttled, 429)
    retry_after = int(throttled["Retry-After"])
    assert 58 <= retry_after <= 60
    assert body == {
        "type": "https://sourcebook.example/problems/throttled",
        "title": "Too many requests",
        "status": 429,
        "detail": f"Request was throttled. Expected available in {retry_after} seconds.",
        "instance": f"{BASE}/",
    }
    # Writes count too, and nothing is done.
    refused = send(first, "POST", f"{BASE}/entities/", {"@type": "Organization", "name": "X"})
    assert refused.status_code == 429
    assert not Entity.objects.exists()
    # The count is per token (and per signed-in user), not per address.
    assert second.get(f"{BASE}/").status_code == 200
    user = django_user_model.objects.create_user("editor")
    membership_grant(brand=brand, user=user, role="editor")
    session = Client()
    session.force_login(user)
    assert [session.get(f"{BASE}/").status_code for _ in range(4)] == [200, 200, 200, 429]


# --- query counts: list endpoints do not grow with their rows ------------------------------


def add_rows(kind, brand, start, count, org, release):
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(start, start + count):
        if kind == "entities":
            organization(brand, f"org-{n}", en=f"Org {n}")
        elif kind in ("facts", "faqs"):
            model = Fact if kind == "facts" else FAQ
            fields = (
                {"about": org, "statement": {"en": f"Fact {n}."}, "source_url": "https://tea.example/",
                 "as_of": date(2025, 1, 1)}
                if kind == "facts"
                else {"about": org if n % 2 else None, "question": {"en": f"Q{n}?"}, "answer": {"en": "A."}}
            )  # fmt: skip
            object_publish(obj=statement_create(model=model, brand=brand, key=f"k-{n}", **fields))
        elif kind == "releases":
            made = Release.objects.create(
                brand=brand,
                number=n + 2,
                state=Release.State.DEPLOYED,
                finished_at=now,
                deployed_at=now,
            )
            target = Target.objects.get_or_create(brand=brand, name="site", kind="directory")[0]
            Deployment.objects.create(target=target, release=made, state="done", finished_at=now)
        elif kind == "manifest":
            ReleaseArtifact.objects.create(
                brand=brand, since=release.number, path=f"pages/{n}.html", sha256=f"{n:064}", size=n,
                content_type="text/html", kind="page", fingerprint="f", changed_at=now,
            )  # fmt: skip
        elif kind == "webhooks":
            Target.objects.create(
                brand=brand,
                name=f"hook-{n}",
                kind="webhook",
                config={"url": "https://93.184.215.14/"},
            )
        elif kind == "brands":
            brand_create(
                slug=f"brand-{n}",
                name=f"Brand {n}",
                base_url=f"https://b{n}.example",
                languages=["en"],
            )


LISTS = {
    "entities": f"{BASE}/entities/",
    "facts": f"{BASE}/facts/",
    "faqs": f"{BASE}/faqs/",
    "releases": f"{BASE}/releases/",
    "manifest": f"{BASE}/releases/1/artifacts/",
    "webhooks": f"{BASE}/webhooks/",
    "brands": "/api/v1/brands/",
}


@pytest.mark.parametrize("kind", LISTS)
def test_list_queries_do_not_grow_with_rows(
    kind, brand, django_user_model, django_assert_max_num_queries
):
    org = organization(brand, "about")
    release = Release.objects.create(brand=brand, number=1, state=Release.State.READY)
    if kind == "brands":
        admin = django_user_model.objects.create_superuser(
            "root", email="root@example.com", password=None
        )
        client = Client()
        client.force_login(admin)
    else:
        client = token_client(brand, "read", "publish", "manage")
    client.get(LISTS[kind])  # the token's first use records it: not part of the count
    add_rows(kind, brand, 0, 3, org, release)
    with CaptureQueriesContext(connection) as few:
        response = client.get(LISTS[kind])
    assert response.status_code == 200
    add_rows(kind, brand, 3, 27, org, release)
    with django_assert_max_num_queries(len(few)):
        response = client.get(LISTS[kind])
    body = response.json()
    rows = body if isinstance(body, list) else body["results"]
    assert len(rows) == {"entities": 31, "brands": 31, "releases": 31}.get(kind, 30)
    assert len(few) <= 8, [q["sql"] for q in few.captured_queries]


@pytest.mark.parametrize("accept", ["application/json", JSONLD])
def test_an_entity_read_with_a_token_takes_two_queries(accept, brand, reader):
    """The delivery API's most frequent read: the token with its brand, then the entity with
    its live revision; a 304 costs the same and nothing more."""
    org = organization(brand, "about")
    path = f"{BASE}/entities/{org.uuid}/"
    reader.get(path)  # the token's first use records it: not part of the count
    with CaptureQueriesContext(connection) as queries:
        first = reader.get(path, headers={"Accept": accept})
    assert first.status_code == 200
    tables = [q["sql"].split(" FROM ", 1)[1].split()[0] for q in queries.captured_queries]
    assert tables == ['"kb_apitoken"', '"kb_entity"'], queries.captured_queries
    with CaptureQueriesContext(connection) as again:
        second = reader.get(path, headers={"Accept": accept, "If-None-Match": first["ETag"]})
    assert (second.status_code, len(again)) == (304, 2)
    # Another brand's slug with this token is not found, and takes no brand query either.
    with CaptureQueriesContext(connection) as elsewhere:
        other = reader.get(f"/api/v1/brands/no-such-brand/entities/{org.uuid}/")
    assert (other.status_code, len(elsewhere)) == (404, 1)


# --- management of entities ------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", JSONLD])
def test_create_an_entity_from_a_json_ld_node(content_type, brand, writer):
    node = {
        "@context": "https://schema.org",
        "@id": "https://tea.example/#shop",
        "@type": "Store",
        "name": {"@value": "West Lake Shop", "@language": "en"},
    }
    response = send(writer, "POST", f"{BASE}/entities/", node, content_type=content_type)
    assert response.status_code == 201, response.content
    entity = Entity.objects.get(iri="https://tea.example/#shop")
    assert response["Location"] == f"{BASE}/entities/{entity.uuid}/"
    assert response["ETag"].startswith('"1.')
    body = response.json()
    assert (body["id"], body["name"], body["types"], body["state"], body["status"]) == (
        str(entity.uuid), "West Lake Shop", ["Store"], "latest", "draft",
    )  # fmt: skip
    assert entity.data["name"] == [{"@value": "West Lake Shop", "@language": "en"}]
    # The @id of an entity cannot change.
    moved = send(writer, "PUT", f"{BASE}/entities/{entity.uuid}/", {**node, "@id": "https://tea.example/#moved"},
                 content_type=content_type, **{"If-Match": "1"})  # fmt: skip
    assert problem(moved, 400)["errors"] == [
        {
            "pointer": "/@id",
            "detail": "The @id of this entity is https://tea.example/#shop; it cannot change.",
        }
    ]
    assert (
        send(writer, "POST", f"{BASE}/entities/", node, content_type="text/plain").status_code
        == 415
    )


def test_page_and_page_size_must_be_positive_numbers(db):
    from rest_framework.test import APIClient

    from kb.services.brands import brand_create
    from kb.services.tokens import api_token_create

    brand = brand_create(
        slug="pages", name="Pages", base_url="https://pages.example", languages=["en"]
    )
    _, raw = api_token_create(brand=brand, scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.get("/api/v1/brands/pages/entities/?page=abc&page_size=0")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"parameter": "page", "detail": "Give a positive whole number, not 'abc'."},
        {"parameter": "page_size", "detail": "Give a positive whole number, not '0'."},
    ]
    assert client.get("/api/v1/brands/pages/entities/?page=1&page_size=500").json()["count"] == 0
