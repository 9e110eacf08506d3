"""JSON-LD for pages: one @graph per page, stable @ids, every reference resolved.

Compact JSON is emitted directly from the stored form (pyld compaction is far too slow
for a catalog); the tests verify the output with pyld and extruct.
"""

from __future__ import annotations

from typing import Any

from kb.jsonld import compact_node, localize, localize_node  # noqa: F401  (used by renderers)
from publishing.site import LiveEntity, SiteContent


def full_node(content: dict, language: str, default: str, hidden: frozenset[str]) -> dict:
    """A published entity as a compact node in ``language``; references to ``hidden`` dropped."""
    data = pruned_data(content["data"], hidden)
    node = compact_node(content["types"], data, iri=content["iri"])
    return localize_node(node, language, default)


def pruned_data(data: dict[str, list], hidden: frozenset[str]) -> dict[str, list]:
    return {
        prop: pruned
        for prop, values in data.items()
        if (pruned := [v for v in (prune_refs(v, hidden) for v in values) if v is not None])
    }


def prune_refs(value: Any, hidden: frozenset[str]) -> Any:
    """Drop references to the brand's nodes that are not published (or left out)."""
    if isinstance(value, dict):
        if "@id" in value and len(value) == 1:
            return None if value["@id"] in hidden else value
        if "@list" in value:
            return {"@list": [v for v in (prune_refs(i, hidden) for i in value["@list"]) if v]}
        if "@value" in value:
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key.startswith("@"):
                out[key] = item
                continue
            kept = [v for v in (prune_refs(i, hidden) for i in item) if v is not None]
            if kept:
                out[key] = kept
        return out
    return value


def stub_node(entity: LiveEntity, language: str, default: str, url: str | None) -> dict:
    """A reference to an entity described on its own page: its @id, name and address, but no
    @type. Google checks every typed node against its profile: a Product or LocalBusiness
    stub (no offers, no address) would show as an invalid item on the page that names it."""
    node: dict[str, Any] = {"@id": entity.iri, "name": entity.name(language, default)}
    if url:
        node["url"] = url
    return node


def website_node(site: SiteContent, home_url: str) -> dict:
    return {
        "@id": f"{site.brand.base_url}/#website",
        "@type": "WebSite",
        "name": site.brand.name,
        "url": home_url,
        "inLanguage": site.languages,
        "publisher": {"@id": site.organization_iri},
    }


def synthesized_organization(site: SiteContent) -> dict:
    return {
        "@id": site.organization_iri,
        "@type": "Organization",
        "name": site.brand.name,
        "url": f"{site.brand.base_url}/",
    }


def graph_document(nodes: list[dict]) -> dict:
    return {"@context": "https://schema.org", "@graph": nodes}
