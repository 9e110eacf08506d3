"""Reads: the brand's graph and what is live."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

import orjson
from django.contrib.contenttypes.models import ContentType

from kb.jsonld import WORKFLOW_GO_LIVE, WORKFLOW_STATUS, compact_node, graph_document
from kb.jsontext import json_text
from kb.models import FAQ, Brand, Entity, Fact, Revision, Status
from kb.statement_nodes import fact_node, faq_page_node

STATES = ("published", "latest")


def entity_nodes(
    *, brand: Brand, state: str = "published", workflow: bool = False
) -> Iterator[dict]:
    """Compact JSON-LD nodes of the brand's entities, in a stable order (by @id); with
    ``workflow`` (working copies only) each carries its workflow state."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    if state == "latest":
        go_live = workflow_annotations(Entity, brand) if workflow else {}
        rows = (
            Entity.objects.filter(brand=brand)
            .order_by("iri")
            .values_list("pk", "iri", "types", "data", "status")
            .iterator(chunk_size=2000)
        )
        for pk, iri, types, data, status in rows:
            node = compact_node(types, data, iri=iri)
            yield {**node, **workflow_annotation(status, go_live.get(pk))} if workflow else node
        return
    live = (
        Revision.objects.filter(
            pk__in=Entity.objects.filter(brand=brand, live_revision__isnull=False).values(
                "live_revision_id"
            )
        )
        .order_by("content__iri")
        .values_list("content", flat=True)
        .iterator(chunk_size=2000)
    )
    for content in live:
        yield compact_node(content["types"], content["data"], iri=content["iri"])


def workflow_annotations(model, brand: Brand) -> dict[int, datetime]:
    """The go-live time of each of the brand's scheduled objects of ``model``, by pk."""
    return dict(
        Revision.objects.filter(
            brand=brand,
            content_type=ContentType.objects.get_for_model(model),
            go_live_at__isnull=False,
        ).values_list("object_id", "go_live_at")
    )


def workflow_annotation(status: str, go_live_at: datetime | None) -> dict:
    """An object's workflow state in an export of working copies (``kb.jsonld.WORKFLOW_*``;
    read back by imports)."""
    annotation = {WORKFLOW_STATUS: status}
    if status == Status.SCHEDULED and go_live_at is not None:
        annotation[WORKFLOW_GO_LIVE] = go_live_at.isoformat()
    return annotation


def brand_graph(*, brand: Brand, state: str = "published", workflow: bool = False) -> dict:
    return graph_document(list(brand_nodes(brand=brand, state=state, workflow=workflow)))


def brand_nodes(
    *, brand: Brand, state: str = "published", workflow: bool = False
) -> Iterator[dict]:
    """Everything the brand knows as compact nodes: its entities, then its facts and FAQs;
    with ``workflow`` (working copies only: ``state`` latest), each with its workflow state."""
    if workflow and state != "latest":
        raise ValueError("the workflow state goes with the working copies (state latest)")
    yield from entity_nodes(brand=brand, state=state, workflow=workflow)
    yield from statement_nodes(brand=brand, state=state, workflow=workflow)


def _statement_contents(model, brand: Brand, state: str) -> list[dict]:
    """Snapshots of the brand's facts or FAQs (``about`` as an entity's pk): the live
    revision's when ``state`` is published, else the latest. Archived ones are left out."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    objects = model.objects.filter(brand=brand).exclude(status=Status.ARCHIVED)
    if state == "latest":
        return [obj.snapshot() for obj in objects]
    return list(
        Revision.objects.filter(
            pk__in=objects.filter(live_revision__isnull=False).values("live_revision_id")
        ).values_list("content", flat=True)
    )


def statement_nodes(
    *, brand: Brand, state: str = "published", workflow: bool = False
) -> Iterator[dict]:
    """The brand's facts (one ``Claim`` each, by key) and FAQs (one ``FAQPage`` per entity
    they are about), in a stable order."""
    facts = _statement_contents(Fact, brand, state)
    faqs = _statement_contents(FAQ, brand, state)
    about_ids = {c.get("about") for c in (*facts, *faqs) if c.get("about")}
    iris = dict(Entity.objects.filter(brand=brand, pk__in=about_ids).values_list("pk", "iri"))
    states = {
        model: _statement_workflow(model, brand) if workflow and state == "latest" else {}
        for model in (Fact, FAQ)
    }
    for content in sorted(facts, key=lambda c: c["key"]):
        node = fact_node(brand, content, iris.get(content.get("about")))
        yield {**node, **states[Fact].get(content["key"], {})}
    pages: dict[str | None, list[dict]] = {}
    for content in faqs:
        pages.setdefault(iris.get(content.get("about")), []).append(content)
    for page in sorted(
        (faq_page_node(brand, contents, about) for about, contents in pages.items()),
        key=lambda n: n["@id"],
    ):
        for question in page["mainEntity"]:
            question.update(states[FAQ].get(question["@id"].rsplit("/", 1)[1], {}))
        yield page


def _statement_workflow(model, brand: Brand) -> dict[str, dict]:
    """The workflow annotation of each of the brand's facts or FAQs, by key."""
    go_live = workflow_annotations(model, brand)
    return {
        key: workflow_annotation(status, go_live.get(pk))
        for pk, key, status in model.objects.filter(brand=brand).values_list("pk", "key", "status")
    }


def property_usage(*, brand: Brand, primary_type: str, sample: int = 500) -> dict[str, int]:
    """How many of the brand's recently edited entities of a type use each property.

    The editor's form shows the most used properties first; a sample keeps this cheap for
    large catalogs.
    """
    counts: dict[str, int] = {}
    rows = (
        Entity.objects.filter(brand=brand, primary_type=primary_type)
        .order_by("-updated_at")
        .values_list("data", flat=True)[:sample]
    )
    for data in rows:
        for prop in data:
            counts[prop] = counts.get(prop, 0) + 1
    return counts


class PublishedEntityRow(NamedTuple):
    """What the API shows of a published entity in a list: its row and its live revision."""

    uuid: uuid.UUID
    primary_type: str
    status: str
    version: int
    updated_at: datetime
    last_published_at: datetime | None
    content: dict  # the live revision's snapshot


def entity_published_rows(*, brand: Brand, ids: Iterable[int]) -> dict[int, PublishedEntityRow]:
    """The brand's published entities among ``ids``, by id, each with its live revision.

    Read as plain rows, the revision's JSON parsed by orjson: model instances and Django's
    json.loads were more than half of a page of the API's entity list. (orjson reads an
    integer past 64 bits as a float: validation keeps integers within I-JSON's range.)"""
    rows = (
        Entity.objects.filter(brand=brand, pk__in=list(ids), live_revision__isnull=False)
        .annotate(raw=json_text("live_revision__content"))
        .values_list(
            "pk",
            "uuid",
            "primary_type",
            "status",
            "version",
            "updated_at",
            "last_published_at",
            "raw",
        )
    )
    return {pk: PublishedEntityRow(*values, orjson.loads(raw)) for pk, *values, raw in rows}
