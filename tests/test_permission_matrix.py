"""Who may open what in the admin: every registered model's pages and actions and every page
of the admin's own, × every role (editor, reviewer, brand admin, superuser, a member of
another brand only) × an object of the user's own brand and one of another brand.

The rows come from the admin site's registry and URL configuration, and the expected
answers from the declared policy (kb.services.permissions), so a new admin page with no
policy fails here. The issue's rules are also written out (``BRAND_ADMIN_ONLY``), so the
policy itself cannot drift from them unnoticed.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from kb.models import FAQ, AuditEntry, Fact, Revision
from kb.services.brands import brand_create, membership_grant
from kb.services.entities import entity_create
from kb.services.permissions import (
    ADMIN_VIEW_POLICY,
    MODEL_POLICY,
    NOBODY,
    ROLE_CAPABILITIES,
    SUPERUSER,
    model_rules,
)
from kb.services.statements import statement_create
from publishing.media import media_upload
from publishing.models import (
    PublishRequest,
    Release,
    SiteSettings,
    Target,
    WebhookDelivery,
)
from visibility.models import (
    Alert,
    AlertSettings,
    Answer,
    CrawlerHit,
    Engine,
    Prompt,
    PromptSet,
    Run,
    SiteAudit,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_store(settings, tmp_path_factory):
    """The brands' images of these tests in a directory of their own."""
    location = tmp_path_factory.mktemp("media")
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


def png_bytes(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buffer, "PNG")
    return buffer.getvalue()


ROLES = ("editor", "reviewer", "admin", "superuser", "outsider")
OPERATIONS = ("view", "add", "change", "delete")
# What the issue asks for in words: editors and reviewers neither see nor change these.
BRAND_ADMIN_ONLY = {
    "publishing.target": {"view", "add", "change", "delete"},
    "publishing.webhookdelivery": {"view"},
    "publishing.sitesettings": {"add", "change", "delete"},
    "visibility.engine": {"add", "change", "delete"},
    "visibility.alertsettings": {"add", "change", "delete"},
}
# And for the admin's own pages: publishing needs the publish capability, the rest show.
ADMIN_PAGES = {
    "publishing_release_publish": "publish",
    # Sending an item back to its editor is the reviewer's (object_reject needs publish).
    "kb_entity_send_back": "publish",
    "kb_fact_send_back": "publish",
    "kb_faq_send_back": "publish",
}
# Admin URL names that are not pages of a model: the site's own (login, index …).
SITE_URL_NAMES = {"index", "login", "logout", "password_change", "password_change_done",
                  "autocomplete", "jsi18n", "view_on_site", "app_list", None}  # fmt: skip
MODEL_URL_SUFFIXES = ("_changelist", "_add", "_change", "_delete", "_history")


def text(value: str) -> list[dict]:
    return [{"@value": value, "@language": "en"}]


def brand_objects(brand, prefix: str) -> dict[str, object]:
    """One object of each brand-scoped model the admin shows."""
    org = entity_create(
        brand=brand, types=["Organization"], data={"name": text(f"{prefix} Tea")},
        iri=f"{brand.base_url}/#organization",
    )  # fmt: skip
    fact = statement_create(
        model=Fact, brand=brand, key="founded", about=org,
        statement={"en": f"{prefix} was founded in 1998."},
        source_url=f"{brand.base_url}/about", as_of=datetime.date(2025, 1, 1),
    )  # fmt: skip
    faq = statement_create(
        model=FAQ, brand=brand, key="what", question={"en": "What do you sell?"},
        answer={"en": "Green tea."},
    )  # fmt: skip
    now = timezone.now()
    release = Release.objects.create(brand=brand, number=1, state=Release.State.READY)
    hook = Target.objects.create(
        brand=brand, name="hook", kind=Target.Kind.WEBHOOK, enabled=False,
        config={"url": "https://93.184.215.14/hook", "events": ["release.deployed"]},
        secret=f"whsec_{prefix}SecretValue",
    )  # fmt: skip
    engine = Engine.objects.create(
        brand=brand, name="Engine", base_url="https://engine.example/v1", model="m"
    )
    prompt_set = PromptSet.objects.create(brand=brand, name="Buyers", language="en")
    prompt = Prompt.objects.create(prompt_set=prompt_set, text="Which tea?")
    run = Run.objects.create(brand=brand, prompt_set=prompt_set, started_at=now, expected=1)
    return {
        "kb.brand": brand,
        "kb.entity": org,
        "kb.fact": fact,
        "kb.faq": faq,
        "kb.revision": Revision.objects.filter(brand=brand).first(),
        "kb.auditentry": AuditEntry.objects.filter(brand=brand).first(),
        "publishing.release": release,
        "publishing.target": hook,
        "publishing.sitesettings": SiteSettings.objects.get_or_create(brand=brand)[0],
        "publishing.mediaasset": media_upload(
            brand=brand,
            file=ContentFile(png_bytes((len(prefix), 9, 9)), name="a.png"),
            alt={"en": f"{prefix} image"},
            user=None,
        ),  # fmt: skip
        "publishing.publishrequest": PublishRequest.objects.create(brand=brand, reason="r"),
        "publishing.webhookdelivery": WebhookDelivery.objects.create(
            target=hook, release=release, event="release.deployed", payload={}
        ),
        "visibility.engine": engine,
        "visibility.promptset": prompt_set,
        "visibility.run": run,
        "visibility.answer": Answer.objects.create(
            run=run, engine=engine, prompt=prompt, repetition=0, language="en", asked_at=now
        ),
        "visibility.alert": Alert.objects.create(
            brand=brand,
            kind=Alert.Kind.LOST_MENTION,
            engine=engine,
            prompt=prompt,
            run=run,
            summary="Lost.",
        ),  # fmt: skip
        "visibility.alertsettings": AlertSettings.objects.get_or_create(brand=brand)[0],
        "visibility.crawlerhit": CrawlerHit.objects.create(
            brand=brand,
            time=now,
            agent="GPTBot",
            purpose="training",
            path="/",
            artifact="page",
            status=200,
            fingerprint=f"{prefix}-hit",
        ),  # fmt: skip
        # The site audit's pages (not a model the admin registers).
        "visibility.siteaudit": SiteAudit.objects.create(
            brand=brand, url=f"{brand.base_url}/", state=SiteAudit.State.DONE
        ),
    }


def operator_objects() -> dict[str, object]:
    interval = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    return {
        "auth.group": Group.objects.create(name="operators"),
        "django_celery_beat.intervalschedule": interval,
        "django_celery_beat.crontabschedule": CrontabSchedule.objects.create(minute="5"),
        "django_celery_beat.solarschedule": SolarSchedule.objects.create(
            event="sunrise", latitude=30.25, longitude=120.16
        ),
        "django_celery_beat.clockedschedule": ClockedSchedule.objects.create(
            clocked_time=timezone.now()
        ),
        "django_celery_beat.periodictask": PeriodicTask.objects.create(
            name="a task", task="publishing.publish_scheduled", interval=interval
        ),
    }


@pytest.fixture
def world(django_user_model):
    own = brand_create(
        slug="acme-tea", name="Acme Tea", base_url="https://tea.example", languages=["en"]
    )
    other = brand_create(
        slug="other", name="Other Brand", base_url="https://other.example", languages=["en"]
    )
    users = {}
    for role in ("editor", "reviewer", "admin"):
        users[role] = django_user_model.objects.create_user(role, is_staff=True)
        membership_grant(brand=own, user=users[role], role=role)
    users["outsider"] = django_user_model.objects.create_user("outsider", is_staff=True)
    membership_grant(brand=other, user=users["outsider"], role="admin")
    users["superuser"] = django_user_model.objects.create_superuser("root", password=None)
    objects = {"own": brand_objects(own, "Acme"), "other": brand_objects(other, "Other")}
    shared = {**operator_objects(), "auth.user": users["editor"]}
    objects["own"].update(shared)
    return {"own": own, "other": other, "users": users, "objects": objects}


def expected(role: str, capability: str, where: str) -> bool:
    """The policy's answer for a role, independently of the code under test."""
    if capability == NOBODY:  # read-only records stay read-only for superusers too
        return False
    if role == "superuser":
        return True
    if capability == SUPERUSER:
        return False
    if role == "outsider":  # brand admin of "other" only
        return where == "other"
    return where == "own" and capability in ROLE_CAPABILITIES[role]


def admin_url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def test_every_registered_model_and_action_is_declared():
    undeclared = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if label not in MODEL_POLICY:
            undeclared.append(label)
            continue
        actions = {a if isinstance(a, str) else a.__name__ for a in model_admin.actions or ()}
        if label.startswith(("kb.", "publishing.", "visibility.")):
            missing = actions - set(MODEL_POLICY[label].actions)
            undeclared += [f"{label} action {name}" for name in sorted(missing)]
    assert undeclared == []
    # And the rules the issue states are what the policy says.
    for label, operations in BRAND_ADMIN_ONLY.items():
        for operation in operations:
            assert model_rules(_model(label)).capability(operation) == "admin", (label, operation)


def _model(label: str):
    return next(m for m in admin.site._registry if m._meta.label_lower == label)


def _admin_url_names(patterns) -> set[str | None]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            names |= _admin_url_names(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            names.add(pattern.name)
    return names


def test_every_admin_page_is_a_model_page_or_declared():
    model_pages = {
        f"{m._meta.app_label}_{m._meta.model_name}{suffix}"
        for m in admin.site._registry
        for suffix in MODEL_URL_SUFFIXES
    }
    names = _admin_url_names(admin.site.get_urls())
    for name, capability in ADMIN_VIEW_POLICY.items():
        assert capability == ADMIN_PAGES.get(name, "view"), name
    undeclared = names - model_pages - SITE_URL_NAMES - set(ADMIN_VIEW_POLICY)
    # Django's own page for setting a user's password belongs to the user admin.
    assert undeclared - {"auth_user_password_change"} == set()
    assert set(ADMIN_VIEW_POLICY) <= names


MODEL_LABELS = sorted(MODEL_POLICY)


@pytest.mark.parametrize("label", MODEL_LABELS)
def test_model_pages_per_role_and_brand(label, world):
    """Changelist, add, change (GET and POST), delete and history of the model, for every
    role, with the user's own brand's object and another brand's."""
    if not any(m._meta.label_lower == label for m in admin.site._registry):
        # Shown only as an inline of another model's page, which the policy also governs.
        inlines = {
            i.model._meta.label_lower for a in admin.site._registry.values() for i in a.inlines
        }
        assert label in inlines
        return
    model = _model(label)
    rules = model_rules(model)
    info = f"{model._meta.app_label}_{model._meta.model_name}"
    wheres = ["own", "other"] if label in world["objects"]["other"] else ["own"]
    mismatches = []
    for role in ROLES:
        client = Client()
        client.force_login(world["users"][role])

        def check(what, response, allowed, *, role=role):
            if allowed:
                ok = response.status_code == 200
            else:
                # Refused outright, or (another brand's object) "does not exist" at the index.
                ok = response.status_code == 403 or (
                    response.status_code == 302 and response["Location"] == admin_url("index")
                )
            if not ok:
                mismatches.append(f"{role}: {what} -> {response.status_code}, allowed={allowed}")

        for where in wheres:
            obj = world["objects"][where][label]
            brandless = label.startswith(("auth.", "django_celery_beat."))
            scope = "own" if brandless else where
            can = {op: expected(role, rules.capability(op), scope) for op in OPERATIONS}
            somewhere = {
                op: any(expected(role, rules.capability(op), w) for w in ("own", "other"))
                for op in OPERATIONS
            }
            if brandless:
                somewhere = can
            check(f"{where} changelist", client.get(admin_url(f"{info}_changelist")),
                  somewhere["view"] or somewhere["change"])  # fmt: skip
            check("add page", client.get(admin_url(f"{info}_add")), somewhere["add"])
            change_url = admin_url(f"{info}_change", obj.pk)
            check(f"{where} change page", client.get(change_url), can["view"] or can["change"])
            check(f"{where} history", client.get(admin_url(f"{info}_history", obj.pk)),
                  can["view"] or can["change"])  # fmt: skip
            check(f"{where} delete page", client.get(admin_url(f"{info}_delete", obj.pk)),
                  can["delete"])  # fmt: skip
            # Refused writes change nothing.
            before = model.objects.filter(pk=obj.pk).values().first()
            if not can["change"]:
                check(f"{where} change POST", client.post(change_url, {}), False)
            if not can["delete"]:
                response = client.post(admin_url(f"{info}_delete", obj.pk), {"post": "yes"})
                check(f"{where} delete POST", response, False)
            if not (can["change"] and can["delete"]):
                assert model.objects.filter(pk=obj.pk).values().first() == before
            # Another brand's objects never show in the user's changelist.
            foreign = where == ("own" if role == "outsider" else "other")
            if foreign and role != "superuser" and not brandless:
                listing = client.get(admin_url(f"{info}_changelist"))
                if change_url.encode() in listing.content:
                    mismatches.append(f"{role}: the changelist links another brand's object")

        # Actions (of our own admin pages): exactly those the role may run somewhere.
        if not label.startswith(("kb.", "publishing.", "visibility.")):
            continue
        request = RequestFactory().get("/")
        request.user = world["users"][role]
        model_admin = admin.site._registry[model]
        shown = set(model_admin.get_actions(request)) - {"delete_selected"}
        declared = set(rules.actions)
        allowed_actions = {
            name
            for name in declared
            if any(expected(role, rules.actions[name], w) for w in ("own", "other"))
        }
        if shown != allowed_actions:
            mismatches.append(
                f"{role}: actions {sorted(shown)}, expected {sorted(allowed_actions)}"
            )
    assert mismatches == [], "\n".join(mismatches)


def custom_page_args(name: str, pattern_keys: list[str], objects: dict) -> list:
    values = {
        "brand_id": objects["kb.brand"].pk,
        "entity_id": objects["kb.entity"].pk,
        "language": "en",
        "fact_id": objects["kb.fact"].pk,
        "faq_id": objects["kb.faq"].pk,
        "revision_id": objects["kb.revision"].pk,
        "asset_id": objects["publishing.mediaasset"].pk,
        "audit_id": objects["visibility.siteaudit"].pk,
    }
    return [values[key] for key in pattern_keys]


def _pattern_keys(name: str) -> list[str]:
    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found = walk(pattern.url_patterns)
                if found is not None:
                    return found
            elif pattern.name == name:
                return list(pattern.pattern.converters)
        return None

    return walk(admin.site.get_urls())


# Pages that take their brand from the query string.
QUERY_BRAND = {"kb_entity_references": "brand"}
# Answers of an allowed request other than 200: a redirect after the POST, or to the only
# dashboard the user has.
ALLOWED_STATUS = {"publishing_release_publish": 302, "visibility_dashboard_index": (200, 302)}


@pytest.mark.parametrize("name", sorted(ADMIN_VIEW_POLICY))
def test_admin_own_pages_per_role_and_brand(name, world):
    capability = ADMIN_VIEW_POLICY[name]
    keys = _pattern_keys(name)
    branded = bool(keys) or name in QUERY_BRAND
    mismatches = []
    for role in ROLES:
        client = Client()
        client.force_login(world["users"][role])
        for where in ("own", "other") if branded else ("own",):
            objects = world["objects"][where]
            url = admin_url(name, *custom_page_args(name, keys, objects))
            if name in QUERY_BRAND:
                url += f"?{QUERY_BRAND[name]}={objects['kb.brand'].pk}"
            if name == "publishing_release_publish":
                response = client.post(url, {"reason": "matrix"})
            else:
                response = client.get(url)
            allowed_status = ALLOWED_STATUS.get(name, 200)
            # A page of no brand (the index of dashboards) lists the user's own brands.
            allowed = expected(role, capability, where) if branded else True
            if allowed:
                ok = response.status_code in (
                    allowed_status if isinstance(allowed_status, tuple) else (allowed_status,)
                )
            else:
                ok = response.status_code in (403, 404)
            if not ok:
                mismatches.append(f"{role} {where}: {response.status_code}, allowed={allowed}")
    assert mismatches == [], "\n".join(mismatches)


def test_secrets_are_never_shown_in_the_admin(world):
    """The webhook signing secret and engine keys are write-only, even to brand admins."""
    hook = world["objects"]["own"]["publishing.target"]
    for role in ("admin", "superuser"):
        client = Client()
        client.force_login(world["users"][role])
        for url in (
            admin_url("publishing_target_change", hook.pk),
            admin_url("publishing_target_changelist"),
        ):
            response = client.get(url)
            assert response.status_code == 200
            assert hook.secret.encode() not in response.content, (role, url)
