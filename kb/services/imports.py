"""Importing JSON-LD: every file validated first, then one transaction, upsert by @id."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kb.importing import (
    FileReading,
    ImportProblem,
    PlannedEntity,
    PlannedFact,
    PlannedFAQ,
    SourceFile,
    Workflow,
    read_files,
)
from kb.models import FAQ, Brand, Entity, Fact, ImportJob, Status
from kb.quality import ERROR, entity_findings
from kb.services.entities import (
    entity_create,
    entity_sync_links,
    entity_update,
    normalize_languages,
)
from kb.services.permissions import require
from kb.services.statements import fact_create, faq_create, statement_update
from kb.services.workflow import (
    object_publish,
    object_submit_for_review,
    object_unpublish,
)

Progress = Callable[[int], None]


class ImportRefused(Exception):
    def __init__(self, problems: list[ImportProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Skipped:
    """What an import with ``skip_invalid`` left out: one node (an entity, a fact, an FAQ)
    or, when a problem is no node's, the whole file; and why."""

    file: str
    pointer: str  # the node's JSON pointer in the file ("" for the whole file)
    label: str  # the entity's @id, "fact 'key'", "FAQ 'key'", or "the file"
    problems: list[ImportProblem]


def invalid_nodes_dropped(reading: FileReading) -> list[Skipped]:
    """Take the nodes with problems out of ``reading`` (each problem belongs to the node
    whose JSON pointer is the longest prefix of the problem's); a problem that belongs to
    no node (a file that is no JSON, has no @context …) takes the whole file."""
    items = [
        *((e, e.iri) for e in reading.entities),
        *((f, f"fact {f.key!r}") for f in reading.facts),
        *((q, f"FAQ {q.key!r}") for q in reading.faqs),
    ]
    owned: dict[int, list[ImportProblem]] = {}
    for problem in reading.problems:
        owners = [
            (len(item.pointer), index)
            for index, (item, _) in enumerate(items)
            if problem.pointer == item.pointer or problem.pointer.startswith(item.pointer + "/")
        ]
        if not owners:
            skipped = Skipped(reading.name, "", "the file", list(reading.problems))
            reading.entities, reading.facts, reading.faqs = [], [], []
            reading.problems = []
            return [skipped]
        owned.setdefault(max(owners)[1], []).append(problem)
    dropped = {id(items[index][0]) for index in owned}
    reading.entities = [e for e in reading.entities if id(e) not in dropped]
    reading.facts = [f for f in reading.facts if id(f) not in dropped]
    reading.faqs = [q for q in reading.faqs if id(q) not in dropped]
    reading.problems = []
    return [
        Skipped(reading.name, items[index][0].pointer, items[index][1], problems)
        for index, problems in sorted(owned.items())
    ]


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # with skip_invalid
    # FAQs (from FAQPage nodes), by key.
    faqs_created: list[str] = field(default_factory=list)
    faqs_updated: list[str] = field(default_factory=list)
    faqs_unchanged: list[str] = field(default_factory=list)
    faqs_published: list[str] = field(default_factory=list)
    # Facts (from Claim nodes as Sourcebook exports them), by key.
    facts_created: list[str] = field(default_factory=list)
    facts_updated: list[str] = field(default_factory=list)
    facts_unchanged: list[str] = field(default_factory=list)
    facts_published: list[str] = field(default_factory=list)

    # The lists counted by ``counts``: entities by @id, then facts and FAQs by key.
    COUNTED = (
        "created", "updated", "unchanged", "published",
        "facts_created", "facts_updated", "facts_unchanged", "facts_published",
        "faqs_created", "faqs_updated", "faqs_unchanged", "faqs_published",
    )  # fmt: skip

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)

    @property
    def counts(self) -> dict[str, int]:
        """How many of each, under the names of the lists (what an import job records)."""
        return {name: len(getattr(self, name)) for name in self.COUNTED}


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

    Nothing is written unless every file is valid; with ``skip_invalid`` the valid nodes
    are imported and the invalid ones (or files, when a problem is no node's) are returned
    in ``skipped``. References to a skipped node are kept: it may come in a later import.

    Objects are imported as drafts; ``publish`` publishes them all. Without it, an object
    that carries its workflow state (as ``export_jsonld --state latest`` writes it) is put
    back in that state: published, scheduled, in review or unpublished.
    """
    require(user, brand, "publish" if publish else "edit")
    readings = read_files(brand, sources)
    invalid = [r for r in readings if not r.valid]
    if invalid and not skip_invalid:
        raise ImportRefused([p for r in invalid for p in r.problems])
    skipped = [s for r in invalid for s in invalid_nodes_dropped(r)]
    planned = merge_by_iri(entity for r in readings for entity in r.entities)
    faqs = [faq for r in readings for faq in r.faqs]
    facts = [fact for r in readings for fact in r.facts]
    restored = [] if publish else [i for i in (*planned, *faqs, *facts) if i.workflow]
    if any(item.workflow.status in GOING_LIVE for item in restored):
        require(user, brand, "publish")
    going_live = (
        planned
        if publish
        else [p for p in restored if p in planned and p.workflow.status in GOING_LIVE]
    )
    blocked = publish_problems(brand, going_live)
    if blocked:
        raise ImportRefused(blocked)
    archived = archived_statement_problems(brand, FAQ, faqs) + archived_statement_problems(
        brand, Fact, facts
    )
    if archived:
        raise ImportRefused(archived)
    if on_plan:
        on_plan(len(planned))
    result = ImportResult(skipped=skipped)
    with transaction.atomic():
        touched = apply_plan(brand, planned, user, result, progress)
        for entity in touched:
            entity_sync_links(entity=entity)
        touched_faqs = apply_faqs(brand, faqs, user, result)
        touched_facts = apply_facts(brand, facts, user, result)
        if publish:
            for entity in touched:
                entity.refresh_from_db()
                if entity.live_revision_id != entity.latest_revision_id:
                    object_publish(obj=entity, user=user)
                    result.published.append(entity.iri)
            for faq in touched_faqs:
                faq.refresh_from_db()
                if faq.live_revision_id != faq.latest_revision_id:
                    object_publish(obj=faq, user=user)
                    result.faqs_published.append(faq.key)
            for fact in touched_facts:
                fact.refresh_from_db()
                if fact.live_revision_id != fact.latest_revision_id:
                    object_publish(obj=fact, user=user)
                    result.facts_published.append(fact.key)
        else:
            for items, objects, name, key in (
                (planned, touched, "published", "iri"),
                (faqs, touched_faqs, "faqs_published", "key"),
                (facts, touched_facts, "facts_published", "key"),
            ):
                for item, obj in zip(items, objects, strict=True):
                    if item.workflow and workflow_restore(
                        obj=obj, workflow=item.workflow, user=user
                    ):
                        getattr(result, name).append(getattr(obj, key))
    return result


# Workflow states that put (or will put) an object live: restoring them needs "publish".
GOING_LIVE = ("published", "scheduled", "unpublished", "archived")


def workflow_restore(*, obj, workflow: Workflow, user) -> bool:
    """Put an imported object in the workflow state its export gave it; whether that
    published it."""
    obj.refresh_from_db()
    if workflow.status == "published" and obj.live_revision_id != obj.latest_revision_id:
        object_publish(obj=obj, user=user)
        return True
    if workflow.status == "scheduled" and obj.status != Status.SCHEDULED:
        object_publish(obj=obj, user=user, go_live_at=workflow.go_live_at)
        return workflow.go_live_at <= timezone.now()  # a time past publishes now
    in_review = obj.status == Status.IN_REVIEW
    if workflow.status == "in_review" and not in_review and obj.has_unpublished_changes:
        object_submit_for_review(obj=obj, user=user)
    if workflow.status == "unpublished" and obj.status != Status.UNPUBLISHED:
        object_unpublish(obj=obj, user=user)
    if workflow.status == "archived" and obj.status != Status.ARCHIVED:
        object_unpublish(obj=obj, user=user, archive=True)
    return False


def archived_statement_problems(
    brand: Brand, model: type[Fact] | type[FAQ], planned: list[PlannedFact] | list[PlannedFAQ]
) -> list[ImportProblem]:
    """Facts or FAQs that the import would change although they are archived."""
    archived = set(
        model.objects.filter(
            brand=brand, key__in=[p.key for p in planned], status=Status.ARCHIVED
        ).values_list("key", flat=True)
    )
    name = "FAQ" if model is FAQ else "fact"
    return [
        ImportProblem(
            item.file,
            item.pointer,
            f"the {name} {item.key!r} is archived; restore it before importing it again",
        )
        for item in planned
        if item.key in archived
    ]


def statement_upsert(existing, create, *, user, message: str, fields: dict):
    """A fact or FAQ imported by key: made with ``create`` when new, else updated (a new
    revision only when something changed). Returns it and "created", "updated" or
    "unchanged"."""
    if existing is None:
        return create(user=user, message=message, **fields), "created"
    version = existing.version
    updated = statement_update(
        obj=existing, expected_version=None, user=user, message=message, **fields
    )
    return updated, "updated" if updated.version != version else "unchanged"


def apply_facts(brand: Brand, facts: list[PlannedFact], user, result: ImportResult) -> list[Fact]:
    """Upsert by key, like FAQs: the same fact imported again changes nothing."""
    existing = {f.key: f for f in Fact.objects.filter(brand=brand, key__in=[f.key for f in facts])}
    abouts = dict(
        Entity.objects.filter(brand=brand, iri__in=[f.about_iri for f in facts]).values_list(
            "iri", "pk"
        )
    )
    touched: list[Fact] = []
    for item in facts:
        fields = {
            "about_id": abouts[item.about_iri],
            "statement": item.statement,
            "value": item.value,
            "unit": item.unit,
            "unit_labels": item.unit_labels,
            "check_cues": item.check_cues,
            "source_url": item.source_url,
            "source_title": item.source_title,
            "as_of": date.fromisoformat(item.as_of),
            "valid_until": date.fromisoformat(item.valid_until) if item.valid_until else None,
        }
        fact, outcome = statement_upsert(
            existing.get(item.key),
            partial(fact_create, brand=brand, key=item.key),
            user=user, message=imported_from(item.file), fields=fields,
        )  # fmt: skip
        getattr(result, f"facts_{outcome}").append(item.key)
        touched.append(fact)
    return touched


def apply_faqs(brand: Brand, faqs: list[PlannedFAQ], user, result: ImportResult) -> list[FAQ]:
    """Upsert by key: the same Question imported again changes nothing; a changed
    question or answer makes one new revision."""
    existing = {f.key: f for f in FAQ.objects.filter(brand=brand, key__in=[f.key for f in faqs])}
    abouts = dict(
        Entity.objects.filter(
            brand=brand, iri__in=[f.about_iri for f in faqs if f.about_iri]
        ).values_list("iri", "pk")
    )
    touched: list[FAQ] = []
    for item in faqs:
        fields = {
            "question": item.question,
            "answer": item.answer,
            "about_id": abouts.get(item.about_iri) if item.about_iri else None,
        }
        faq, outcome = statement_upsert(
            existing.get(item.key),
            partial(faq_create, brand=brand, key=item.key, order=item.order),
            user=user, message=imported_from(item.file), fields=fields,
        )  # fmt: skip
        getattr(result, f"faqs_{outcome}").append(item.key)
        touched.append(faq)
    return touched


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
                message=imported_from(item.file),
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
                message=imported_from(item.file),
                validated=True,
                sync_links=False,
            )
            result.updated.append(item.iri)
        touched.append(entity)
        if progress:
            progress(1)
    return touched


# --- imports run as tasks (large imports through the API) -----------------------------------


def count_nodes(document) -> int:
    """Node objects in a parsed JSON-LD document: objects outside @context that are not
    values (``@value``), lists or a bare ``@graph`` wrapper; what an import's cost grows with."""
    count = 0
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            if not value.keys() & {"@value", "@list", "@set"} and value.keys() - {
                "@context",
                "@graph",
            }:
                count += 1
            stack.extend(v for k, v in value.items() if k != "@context")
    return count


def import_job_create(
    *, brand: Brand, raw: bytes, nodes: int, publish: bool = False, user=None, token=None
) -> ImportJob:
    """Record the document and queue its import once the record is committed."""
    require(user, brand, "publish" if publish else "edit")
    job = ImportJob.objects.create(
        brand=brand, publish=publish, document=raw, size=len(raw), nodes=nodes,
        created_by=user if user is not None and user.is_authenticated else None, token=token,
    )  # fmt: skip
    transaction.on_commit(lambda: import_job_dispatch(job_id=job.pk))
    return job


def import_job_dispatch(*, job_id: int) -> None:
    from kb.tasks import import_run

    import_run.delay(job_id)


def import_job_run(*, job_id: int) -> str:
    """Import a queued job's document: all or nothing. Safe to run twice: a job is claimed
    once (a second delivery finds it taken or done), unless a worker died holding it for
    longer than a task may run."""
    stale = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    claimed = ImportJob.objects.filter(
        Q(state=ImportJob.State.QUEUED) | Q(state=ImportJob.State.RUNNING, started_at__lt=stale),
        pk=job_id,
    ).update(state=ImportJob.State.RUNNING, started_at=timezone.now())
    job = ImportJob.objects.select_related("brand", "created_by").filter(pk=job_id).first()
    if job is None or not claimed:
        return job.state if job else "missing"
    source = SourceFile(name="request", raw=bytes(job.document), size=job.size)
    try:
        result = jsonld_import(
            brand=job.brand, sources=[source], user=job.created_by, publish=job.publish
        )
    except ImportRefused as refused:
        job.state = ImportJob.State.FAILED
        job.errors = [{"pointer": p.pointer or "/", "detail": p.message} for p in refused.problems]
    except PermissionDenied as denied:  # the user lost their role since
        job.state = ImportJob.State.FAILED
        job.errors = [{"pointer": "/", "detail": str(denied)}]
    except Exception:
        # Nothing was written (the import is one transaction); say so, and let the worker log it.
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportJob.State.FAILED, finished_at=timezone.now(), document=b"",
            errors=[{"pointer": "/", "detail": "The import failed unexpectedly; nothing was imported."}],
        )  # fmt: skip
        raise
    else:
        job.state = ImportJob.State.SUCCEEDED
        job.counts = result.counts
    job.document = b""
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "errors", "counts", "document", "finished_at"])
    return job.state


def imported_from(file: str) -> str:
    """A revision's note on where its content came from: the file's name, not where it was
    on the server that read it (revisions are brand data, shown in the admin and the API).
    A web page (a site audit's import) is named by its address."""
    if file.startswith(("http://", "https://")):
        return f"Imported from {file}"[:500]
    return f"Imported from {PurePath(file).name or file}"
