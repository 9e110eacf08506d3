"""Creating, changing and deleting entities."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from kb import validation
from kb.models import Brand, Entity, EntityLink, Revision, Status, localized_text
from kb.quality import invalid_values
from kb.search import entity_search_text
from kb.services.errors import InvalidContent, ReferencedError, WorkflowError
from kb.services.permissions import require
from kb.services.workflow import (
    ensure_current,
    lock,
    log_action,
    revision_create,
    revisions_of,
    working_copy_saved,
)


def entity_validate(*, brand: Brand, types: list[str], data: dict, iri: str | None = None) -> None:
    """Raise InvalidContent naming every problem, with JSON pointers into ``data``."""
    known = dict(Entity.objects.filter(brand=brand).values_list("iri", "types"))
    if iri:
        known[iri] = types
    problems = validation.validate_node(
        types,
        data,
        pointer="/data",
        lookup_types=known.get,
        languages=brand.languages,
    )
    if not isinstance(types, list) or not types:
        problems.insert(0, validation.Problem("/types", _("give at least one schema.org type")))
    elif not problems:
        # Values schema.org allows but that are wrong all the same (a price "abc", a GTIN
        # whose check digit is wrong): refused here, where the editor can still fix them.
        problems = [
            validation.Problem(f"/data{finding.pointer}", finding.message)
            for finding in invalid_values(brand=brand, types=types, data=data)
        ]
    if problems:
        raise InvalidContent(problems)


def entity_iri_for(*, brand: Brand, slug: str) -> str:
    return f"{brand.base_url}/id/{slug}"


def unique_slug(*, brand: Brand, base: str, exclude_pk: int | None = None) -> str:
    base = (slugify(base) or "entity")[:180]
    slug, n = base, 2
    taken = Entity.objects.filter(brand=brand)
    if exclude_pk:
        taken = taken.exclude(pk=exclude_pk)
    while taken.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def slug_from_iri(brand: Brand, iri: str, types: list[str], data: dict) -> str:
    """``…/products/longjing/#product`` → ``longjing``; otherwise the name or the type."""
    if iri.startswith(brand.base_url):
        rest = iri[len(brand.base_url) :]
        path, _, fragment = rest.partition("#")
        segments = [s for s in path.split("/") if s and s != "id"]
        if segments:
            return segments[-1]
        if fragment:
            return fragment
    name = localized_text(data.get("name", []), brand)
    return name or (types[0] if types else "entity")


@transaction.atomic
def entity_create(
    *,
    brand: Brand,
    types: list[str],
    data: dict,
    iri: str | None = None,
    slug: str | None = None,
    user=None,
    message: str = "",
    validated: bool = False,
    sync_links: bool = True,
) -> Entity:
    """Create an entity; ``validated`` when the caller (the importer) already checked it."""
    require(user, brand, "edit")
    data = normalize_languages(brand, data)
    slug = unique_slug(brand=brand, base=slug or slug_from_iri(brand, iri or "", types, data))
    iri = iri or entity_iri_for(brand=brand, slug=f"{slug}-{uuid.uuid4().hex[:8]}")
    if Entity.objects.filter(brand=brand, iri=iri).exists():
        raise InvalidContent(
            [validation.Problem("/iri", _("an entity with @id %(iri)s exists") % {"iri": iri})]
        )
    if not validated:
        entity_validate(brand=brand, types=types, data=data, iri=iri)
    entity = Entity(brand=brand, iri=iri, slug=slug, types=list(types), data=data)
    refresh_denormalized(entity)
    entity.version = 1
    entity.save()
    revision_create(obj=entity, user=user, message=message or "Created")
    if sync_links:
        entity_sync_links(entity=entity)
    log_action(entity, "create", user)
    return entity


@transaction.atomic
def entity_update(
    *,
    entity: Entity,
    data: dict,
    expected_version: int | None,
    types: list[str] | None = None,
    user=None,
    message: str = "",
    validated: bool = False,
    sync_links: bool = True,
) -> Entity:
    """Replace the working copy; refuse a save based on an older version."""
    entity = lock(entity)
    require(user, entity.brand, "edit")
    ensure_current(entity, expected_version)
    if entity.status == Status.ARCHIVED:
        raise WorkflowError(
            _("%(object)s is archived; restore it before editing.") % {"object": entity}
        )
    types = list(types) if types is not None else entity.types
    data = normalize_languages(entity.brand, data)
    if types == entity.types and data == entity.data:
        return entity
    if not validated:
        entity_validate(brand=entity.brand, types=types, data=data, iri=entity.iri)
    entity.types = types
    entity.data = data
    refresh_denormalized(entity)
    entity.version += 1
    working_copy_saved(entity)
    entity.save()
    revision_create(obj=entity, user=user, message=message)
    if sync_links:
        entity_sync_links(entity=entity)
    log_action(entity, "edit", user, version=entity.version)
    return entity


@transaction.atomic
def entity_revert(*, entity: Entity, revision: Revision, expected_version: int | None, user=None):
    """Make an earlier revision's content the working copy again (as a new revision)."""
    content = revision.content
    return entity_update(
        entity=entity,
        types=content["types"],
        data=content["data"],
        expected_version=expected_version,
        user=user,
        message=f"Reverted to revision {revision.number}",
    )


@transaction.atomic
def entity_delete(*, entity: Entity, user=None) -> None:
    entity = lock(entity)
    require(user, entity.brand, "edit")
    referrers = entity_referrers(entity)
    if referrers:
        raise ReferencedError(
            _(
                "%(object)s cannot be deleted because it is referenced by: %(referrers)s. "
                "Remove those references first."
            )
            % {"object": entity, "referrers": "; ".join(referrers)}
        )
    log_action(entity, "delete", user, iri=entity.iri)
    revisions = revisions_of(entity)
    type(entity).objects.filter(pk=entity.pk).update(latest_revision=None, live_revision=None)
    revisions.delete()
    entity.delete()


def entity_referrers(entity: Entity) -> list[str]:
    referrers = [
        _("%(object)s (property %(property)s)") % {"object": link.source, "property": link.property}
        for link in entity.incoming_links.select_related("source").exclude(source=entity)
    ]
    referrers += [_("fact %(key)s") % {"key": repr(fact.key)} for fact in entity.facts.all()]
    referrers += [_("FAQ %(key)s") % {"key": repr(faq.key)} for faq in entity.faqs.all()]
    return referrers


def entity_sync_links(*, entity: Entity) -> None:
    """Rebuild the entity's outgoing links from its working copy and its live revision."""
    pairs: set[tuple[str, str]] = set(references(entity.data))
    if entity.live_revision_id:
        live = Revision.objects.filter(pk=entity.live_revision_id).values_list("content", flat=True)
        for content in live:
            pairs |= set(references(content.get("data", {})))
    targets = dict(
        Entity.objects.filter(brand_id=entity.brand_id, iri__in={iri for _, iri in pairs})
        .exclude(pk=entity.pk)
        .values_list("iri", "pk")
    )
    wanted = {(prop, targets[iri]) for prop, iri in pairs if iri in targets}
    existing = {(link.property, link.target_id): link.pk for link in entity.outgoing_links.all()}
    stale = [pk for key, pk in existing.items() if key not in wanted]
    if stale:
        EntityLink.objects.filter(pk__in=stale).delete()
    EntityLink.objects.bulk_create(
        [
            EntityLink(brand_id=entity.brand_id, source=entity, target_id=target, property=prop)
            for prop, target in wanted - set(existing)
        ]
    )


def references(data: dict, prop: str | None = None) -> Iterator[tuple[str, str]]:
    """(property, IRI) for every reference in entity data, nested nodes included."""
    for key, values in data.items():
        if key.startswith("@") or not isinstance(values, list):
            continue
        for value in values:
            yield from _value_references(prop or key, value)


def _value_references(prop: str, value: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(value, dict):
        return
    if "@list" in value:
        for item in value["@list"]:
            yield from _value_references(prop, item)
    elif "@id" in value and len(value) == 1:
        yield prop, value["@id"]
    elif "@value" not in value:
        yield from references(value)


def normalize_languages(brand: Brand, data: dict) -> dict:
    """Spell language tags as the brand does (tags are case-insensitive)."""

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            out = {k: walk(v) for k, v in value.items()}
            if isinstance(out.get("@language"), str):
                out["@language"] = brand.canonical_language(out["@language"]) or out["@language"]
            return out
        return value

    return walk(data)


def refresh_denormalized(entity: Entity) -> None:
    entity.primary_type = entity.types[0] if entity.types else ""
    entity.label = (localized_text(entity.data.get("name", []), entity.brand) or entity.slug)[:500]
    entity.__dict__.pop("default_name", None)
    # Every create and update passes here (admin, API, imports), so search stays current.
    entity.search_text = entity_search_text(
        data=entity.data, slug=entity.slug, iri=entity.iri, base_url=entity.brand.base_url
    )
