"""The demo brand shipped with the project: a Hangzhou tea exporter going overseas."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from kb.importing import read_path
from kb.models import FAQ, Brand, BrandMembership, Entity, Fact
from kb.services.brands import brand_create, membership_grant
from kb.services.imports import ImportResult, jsonld_import
from kb.services.statements import statement_create, statement_update
from kb.services.workflow import object_publish

DEMO_DIR = Path(__file__).parent / "demo" / "westlake-leaf"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "sourcebook-demo"


def load_json(name: str):
    return json.loads((DEMO_DIR / name).read_text(encoding="utf-8"))


@transaction.atomic
def demo_load(*, progress=None, on_plan=None) -> dict:
    """Create or refresh the demo brand, publish it, and create the demo login."""
    spec = load_json("brand.json")
    brand = Brand.objects.filter(slug=spec["slug"]).first() or brand_create(**spec)
    result: ImportResult = jsonld_import(
        brand=brand,
        sources=[read_path(DEMO_DIR / "graph.jsonld")],
        publish=True,
        progress=progress,
        on_plan=on_plan,
    )
    entities = dict(Entity.objects.filter(brand=brand).values_list("iri", "pk"))
    facts = [
        upsert_statement(
            Fact,
            brand,
            item["key"],
            about_id=entities[item["about"]],
            statement=item["statement"],
            value=item.get("value") or "",
            unit=item.get("unit") or "",
            unit_labels=item.get("unit_labels") or {},
            check_cues=item.get("check_cues") or [],
            source_url=item["source"]["url"],
            source_title=item["source"]["title"],
            as_of=date.fromisoformat(item["as_of"]),
            valid_until=date.fromisoformat(item["valid_until"])
            if item.get("valid_until")
            else None,
        )
        for item in load_json("facts.json")
    ]
    faqs = [
        upsert_statement(
            FAQ,
            brand,
            item["key"],
            about_id=entities[item["about"]] if item.get("about") else None,
            question=item["question"],
            answer=item["answer"],
            order=item["order"],
        )
        for item in load_json("faqs.json")
    ]
    user = demo_user(brand)
    media = demo_media_load(brand)
    demo_site_settings(brand)
    return {
        "brand": brand,
        "import": result,
        "facts": len(facts),
        "faqs": len(faqs),
        "media": len(media),
        "user": user,
    }


def demo_site_settings(brand: Brand) -> None:
    """The demo answers questions at /ask and /mcp (publishing.answers)."""
    from publishing.models import SiteSettings

    SiteSettings.objects.update_or_create(brand=brand, defaults={"answer_endpoint": True})


def demo_media_load(brand: Brand) -> list:
    """The demo's images (media/<path>, alt texts in media/alt.json), registered at the very
    paths its graph links ({base_url}/media/<path>)."""
    from publishing.media import media_register

    alt = json.loads((DEMO_DIR / "media" / "alt.json").read_text(encoding="utf-8"))
    assets = []
    for path, texts in sorted(alt.items()):
        with (DEMO_DIR / "media" / path).open("rb") as handle:
            assets.append(media_register(brand=brand, path=path, file=handle, alt=texts))
    return assets


def upsert_statement(model, brand: Brand, key: str, **fields):
    obj = model.objects.filter(brand=brand, key=key).first()
    if obj is None:
        obj = statement_create(model=model, brand=brand, key=key, message="Demo content", **fields)
    else:
        obj = statement_update(obj=obj, expected_version=None, message="Demo content", **fields)
    if obj.live_revision_id != obj.latest_revision_id:
        object_publish(obj=obj)
    return obj


def demo_user(brand: Brand):
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=DEMO_USERNAME, defaults={"is_staff": True, "email": "demo@example.com"}
    )
    if created or not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
        user.is_staff = True
        user.save()
    membership_grant(brand=brand, user=user, role=BrandMembership.Role.ADMIN)
    return user
