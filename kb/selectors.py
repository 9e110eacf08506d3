"""Reads: the brand's graph and what is live."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

import orjson

from kb.jsonld import compact_node, graph_document
from kb.jsontext import json_text
from kb.models import FAQ, Brand, Entity, Fact, Revision, Status
from kb.statement_nodes import fact_node, faq_page_node

STATES = ("published", "latest")


def entity_nodes(*, brand: Brand, state: str = "published") -> Iterator[dict]:
    """Compact JSON-LD nodes of the brand's entities, in a stable order (by @id)."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    if state == "latest":
        rows = (
            Entity.objects.filter(brand=brand)
            .order_by("iri")
            .values_list("iri", "types", "data")
            .iterator(chunk_size=2000)
        )
        for iri, types, data in rows:
            yield compact_node(types, data, iri=iri)
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


def brand_graph(*, brand: Brand, state: str = "published") -> dict:
    return graph_document(list(brand_nodes(brand=brand, state=state)))


def brand_nodes(*, brand: Brand, state: str = "published") -> Iterator[dict]:
    """Everything the brand knows as compact nodes: its entities, then its facts and FAQs."""
    yield from entity_nodes(brand=brand, state=state)
    yield from statement_nodes(brand=brand, state=state)


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


def statement_nodes(*, brand: Brand, state: str = "published") -> Iterator[dict]:
    """The brand's facts (one ``Claim`` each, by key) and FAQs (one ``FAQPage`` per entity
    they are about), in a stable order."""
    facts = _statement_contents(Fact, brand, state)
    faqs = _statement_contents(FAQ, brand, state)
    about_ids = {c.get("about") for c in (*facts, *faqs) if c.get("about")}
    iris = dict(Entity.objects.filter(brand=brand, pk__in=about_ids).values_list("pk", "iri"))
    for content in sorted(facts, key=lambda c: c["key"]):
        yield fact_node(brand, content, iris.get(content.get("about")))
    pages: dict[str | None, list[dict]] = {}
    for content in faqs:
        pages.setdefault(iris.get(content.get("about")), []).append(content)
    yield from sorted(
        (faq_page_node(brand, contents, about) for about, contents in pages.items()),
        key=lambda n: n["@id"],
    )


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
