"""Edits of the demo brand, as an editor makes them through the services, and publishing
them as the command line does: shared by the tests of incremental builds."""

import hashlib
from io import StringIO
from pathlib import Path

from django.core.management import call_command

from kb.models import FAQ, Brand, Entity, Fact
from kb.services.entities import entity_create, entity_update
from kb.services.statements import faq_create, statement_update
from kb.services.workflow import object_publish, object_unpublish
from publishing.models import Release

SLUG = "westlake-leaf"


def publish(out: Path) -> Release:
    call_command("publish", SLUG, "--out", str(out), stdout=StringIO())
    return Release.objects.filter(brand__slug=SLUG).order_by("-number").first()


def edit_price(slug: str, price: str) -> Entity:
    product = Entity.objects.get(slug=slug)
    data = dict(product.data)
    offers = [dict(o) for o in data["offers"]]
    offers[0]["price"] = [{"@value": price}]
    data["offers"] = offers
    product = entity_update(entity=product, data=data, expected_version=product.version)
    object_publish(obj=product)
    product.refresh_from_db()
    return product


def add_product(brand: Brand) -> Entity:
    product = entity_create(
        brand=brand,
        types=["Product"],
        slug="keemun-mao-feng",
        data={"name": [{"@value": "Keemun Mao Feng", "@language": "en"}]},
    )
    object_publish(obj=product)
    return product


def rename(slug: str, new_slug: str) -> None:
    """A new slug, published: the entity's pages move."""
    product = Entity.objects.get(slug=slug)
    product.slug = new_slug
    product.save(update_fields=["slug"])
    data = dict(product.data)
    data["name"] = [{"@value": "Renamed tea", "@language": "en"}, *data["name"][1:]]
    object_publish(obj=entity_update(entity=product, data=data, expected_version=product.version))


def edit_description(slug: str, text: str) -> Entity:
    entity = Entity.objects.get(slug=slug)
    data = dict(entity.data)
    others = [v for v in data.get("description", []) if v.get("@language") != "en"]
    data["description"] = [{"@value": text, "@language": "en"}, *others]
    entity = entity_update(entity=entity, data=data, expected_version=entity.version)
    object_publish(obj=entity)
    return entity


def edit_fact(brand: Brand) -> Fact:
    fact = Fact.objects.filter(brand=brand, live_revision__isnull=False).order_by("pk").first()
    fact = statement_update(
        obj=fact, expected_version=fact.version, value="1999", statement=fact.statement
    )
    object_publish(obj=fact)
    return fact


def add_faq(brand: Brand) -> FAQ:
    faq = faq_create(
        brand=brand,
        key="steep-time",
        about=Entity.objects.get(slug="longjing-meijiawu"),
        question={"en": "How long to steep?", "zh-Hans": "泡多久？"},
        answer={"en": "Two minutes.", "zh-Hans": "两分钟。"},
    )
    object_publish(obj=faq)
    return faq


def unpublish(slug: str) -> Entity:
    entity = Entity.objects.get(slug=slug)
    object_unpublish(obj=entity)
    return entity


def live_objects(brand: Brand) -> int:
    return sum(
        model.objects.filter(brand=brand, live_revision__isnull=False).count()
        for model in (Entity, Fact, FAQ)
    )


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.name != ".sourcebook-release"
    }
