"""Reads: the brand's graph and what is live."""

from __future__ import annotations

from collections.abc import Iterator

from kb.jsonld import compact_node, graph_document
from kb.models import Brand, Entity, Revision

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
    return graph_document(list(entity_nodes(brand=brand, state=state)))


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
