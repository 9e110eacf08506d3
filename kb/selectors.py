"""Reads: the brand's graph and what is live."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

import orjson

from kb.jsonld import compact_node, graph_document
from kb.jsontext import json_text
from kb.models import FAQ, Brand, Entity, Fact, Revision, Status

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


def fact_iri(brand: Brand, key: str) -> str:
    return f"{brand.base_url}/id/fact/{key}"


def faq_iri(brand: Brand, key: str) -> str:
    return f"{brand.base_url}/id/faq/{key}"


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


def _texts(by_language: dict) -> list[dict]:
    return [
        {"@language": language, "@value": text}
        for language, text in sorted(by_language.items())
        if isinstance(text, str) and text
    ]


def fact_node(brand: Brand, content: dict, about_iri: str | None) -> dict:
    """A fact as a schema.org ``Claim`` (the shape is documented in README, "The content
    model"): ``text`` the statement per language, ``about`` the entity, ``mainEntity`` a
    ``PropertyValue`` with the ``value`` and its ``unitText``, ``citation`` the source (a
    ``CreativeWork`` with ``url`` and ``name``), ``temporalCoverage`` the as-of date and
    ``expires`` the valid-until date."""
    node: dict = {"@id": fact_iri(brand, content["key"]), "@type": "Claim"}
    node["text"] = _texts(content.get("statement") or {})
    if about_iri:
        node["about"] = {"@id": about_iri}
    if content.get("value"):
        value: dict = {"@type": "PropertyValue", "value": content["value"]}
        if content.get("unit"):
            value["unitText"] = content["unit"]
        node["mainEntity"] = value
    citation: dict = {"@type": "CreativeWork", "url": content["source_url"]}
    if title := _texts(content.get("source_title") or {}):
        citation["name"] = title
    node["citation"] = citation
    node["temporalCoverage"] = content["as_of"]
    if content.get("valid_until"):
        node["expires"] = content["valid_until"]
    return node


def faq_page_node(brand: Brand, contents: list[dict], about_iri: str | None) -> dict:
    """The FAQs about one entity (or about none) as a ``FAQPage`` whose ``mainEntity`` are
    ``Question``s: @id ``{base_url}/id/faq/{key}``, ``position`` the FAQ's order."""
    suffix = hashlib.sha256(about_iri.encode()).hexdigest()[:12] if about_iri else "brand"
    page: dict = {"@id": f"{brand.base_url}/id/faq-page/{suffix}", "@type": "FAQPage"}
    if about_iri:
        page["about"] = {"@id": about_iri}
    page["mainEntity"] = [
        {
            "@id": faq_iri(brand, content["key"]),
            "@type": "Question",
            "name": _texts(content.get("question") or {}),
            "position": content.get("order") or 0,
            "acceptedAnswer": {"@type": "Answer", "text": _texts(content.get("answer") or {})},
        }
        for content in sorted(contents, key=lambda c: (c.get("order") or 0, c["key"]))
    ]
    return page


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
