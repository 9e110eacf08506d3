"""Importing JSON-LD: every file validated first, then one transaction, upsert by @id."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction

from kb.importing import FileReading, ImportProblem, PlannedEntity, SourceFile, read_files
from kb.models import Brand, Entity
from kb.quality import ERROR, entity_findings
from kb.services.entities import (
    entity_create,
    entity_sync_links,
    entity_update,
    normalize_languages,
)
from kb.services.permissions import require
from kb.services.workflow import object_publish

Progress = Callable[[int], None]


class ImportRefused(Exception):
    def __init__(self, problems: list[ImportProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    skipped_files: list[FileReading] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)


def jsonld_import(
    *,
    brand: Brand,
    sources: Iterable[SourceFile],
    user=None,
    publish: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import JSON-LD files into ``brand``.

    Nothing is written unless every file is valid; with ``skip_invalid`` the valid files
    are imported and the invalid ones are returned in ``skipped_files``.
    """
    require(user, brand, "publish" if publish else "edit")
    readings = read_files(brand, sources)
    invalid = [r for r in readings if not r.valid]
    if invalid and not skip_invalid:
        raise ImportRefused([p for r in invalid for p in r.problems])
    planned = merge_by_iri(entity for r in readings if r.valid for entity in r.entities)
    if publish:
        blocked = publish_problems(brand, planned)
        if blocked:
            raise ImportRefused(blocked)
    if on_plan:
        on_plan(len(planned))
    result = ImportResult(skipped_files=invalid)
    with transaction.atomic():
        touched = apply_plan(brand, planned, user, result, progress)
        for entity in touched:
            entity_sync_links(entity=entity)
        if publish:
            for entity in touched:
                entity.refresh_from_db()
                if entity.live_revision_id != entity.latest_revision_id:
                    object_publish(obj=entity, user=user)
                    result.published.append(entity.iri)
    return result


def publish_problems(brand: Brand, planned: list[PlannedEntity]) -> list[ImportProblem]:
    """The errors that would block publishing, found before anything is written."""
    return [
        ImportProblem(
            item.file,
            f"{item.pointer}{finding.pointer}",
            f"{item.iri} cannot be published: {finding.message} ({finding.profile})",
        )
        for item in planned
        for finding in entity_findings(brand=brand, types=item.types, data=item.data)
        if finding.level == ERROR
    ]


def merge_by_iri(entities: Iterable[PlannedEntity]) -> list[PlannedEntity]:
    """Nodes with the same @id are one node, also across files (JSON-LD merging)."""
    merged: dict[str, PlannedEntity] = {}
    for entity in entities:
        into = merged.get(entity.iri)
        if into is None:
            merged[entity.iri] = entity
            continue
        into.types.extend(t for t in entity.types if t not in into.types)
        for prop, values in entity.data.items():
            target = into.data.setdefault(prop, [])
            target.extend(v for v in values if v not in target)
    return list(merged.values())


def apply_plan(
    brand: Brand,
    planned: list[PlannedEntity],
    user,
    result: ImportResult,
    progress: Progress | None,
) -> list[Entity]:
    existing = {
        e.iri: e for e in Entity.objects.filter(brand=brand, iri__in=[p.iri for p in planned])
    }
    touched: list[Entity] = []
    for item in planned:
        data = normalize_languages(brand, item.data)
        entity = existing.get(item.iri)
        if entity is None:
            entity = entity_create(
                brand=brand,
                types=item.types,
                data=data,
                iri=item.iri,
                user=user,
                message=f"Imported from {item.file}",
                validated=True,
                sync_links=False,
            )
            result.created.append(item.iri)
        elif entity.types == item.types and entity.data == data:
            result.unchanged.append(item.iri)
        else:
            entity = entity_update(
                entity=entity,
                types=item.types,
                data=data,
                expected_version=None,
                user=user,
                message=f"Imported from {item.file}",
                validated=True,
                sync_links=False,
            )
            result.updated.append(item.iri)
        touched.append(entity)
        if progress:
            progress(1)
    return touched
