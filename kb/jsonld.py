"""JSON-LD processing with pyld, offline, plus our compact serializer.

pyld fetches remote contexts by default; every call here goes through ``document_loader``,
which serves the schema.org context from the vocabulary package and refuses anything else.

Stored form ("entity data"): a dict of schema.org property local names to lists of
values; a value is ``{"@value": ..., "@language"?: ..., "@type"?: ...}``, a reference
``{"@id": iri}``, an ``{"@list": [...]}`` or an anonymous nested node
``{"@type": [...], "<property>": [...]}``. It is expanded JSON-LD with schema.org IRIs
shortened, so nothing of the input is lost and export is a direct, cheap compaction.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pyld import jsonld
from schema_org import registry

from kb import vocabulary

SCHEMA_VOCAB = "http://schema.org/"
# Sourcebook's own terms, for what schema.org has no word for: an object's workflow state in
# exports of working copies (``export_jsonld --state latest``), read back by imports.
WORKFLOW_STATUS = "https://sourcebook.dev/ns/workflow#status"
WORKFLOW_GO_LIVE = "https://sourcebook.dev/ns/workflow#goLiveAt"
CONTEXT_URL = "https://schema.org"
# Every spelling of the schema.org context people write; all served locally.
SCHEMA_CONTEXT_URLS = frozenset(
    {
        "http://schema.org",
        "http://schema.org/",
        "https://schema.org",
        "https://schema.org/",
        "http://schema.org/docs/jsonldcontext.jsonld",
        "https://schema.org/docs/jsonldcontext.jsonld",
        "http://schema.org/docs/jsonldcontext.json",
        "https://schema.org/docs/jsonldcontext.json",
    }
)


class RemoteContextRefused(Exception):
    pass


@cache
def schema_context() -> dict[str, Any]:
    """The schema.org context, built from the vocabulary like the official one.

    As in the official context: the vocabulary is ``http://schema.org/``, properties that
    accept a URL (and not Text) are ``@id``-typed, and date properties are typed
    ``schema:Date``.
    """
    context: dict[str, Any] = {
        "@vocab": SCHEMA_VOCAB,
        "schema": SCHEMA_VOCAB,
        "id": "@id",
        "type": "@type",
    }
    for name in registry.CLASS_METADATA:
        context[name] = {"@id": f"schema:{name}"}
    for name, meta in registry.PROPERTY_BY_SCHEMA.items():
        coercion = coerced_type(meta.ranges)
        term: dict[str, str] = {"@id": f"schema:{name}"}
        if coercion:
            term["@type"] = coercion
        context[name] = term
    return {"@context": context}


def coerced_type(ranges: tuple[str, ...]) -> str | None:
    # Where Text is also expected ("unitCode": "GRM", "category": "Tea") a string stays text:
    # @id-typing would turn it into a relative IRI.
    if vocabulary.URL in ranges and vocabulary.TEXT not in ranges:
        return "@id"
    if vocabulary.DATE in ranges:
        return "schema:Date"
    return None


@cache
def property_coercion(prop: str) -> str | None:
    meta = registry.PROPERTY_BY_SCHEMA.get(prop)
    if meta is None:
        return None
    coercion = coerced_type(meta.ranges)
    return "Date" if coercion == "schema:Date" else coercion


def document_loader(url: str, options: dict | None = None) -> dict[str, Any]:
    if url.rstrip("/") in {u.rstrip("/") for u in SCHEMA_CONTEXT_URLS}:
        return {
            "contextUrl": None,
            "documentUrl": url,
            "document": copy.deepcopy(schema_context()),
        }
    raise RemoteContextRefused(
        f"remote context {url!r} is not available offline; only the schema.org context is "
        '(use "@context": "https://schema.org")'
    )


def expand(document: Any, base: str | None = None) -> list[dict[str, Any]]:
    """Expand offline; relative IRIs resolve against ``base`` (the brand's site)."""
    return jsonld.expand(document, {"documentLoader": document_loader, "base": base})


def to_rdf(document: Any) -> str:
    """Canonical N-Quads (URDNA2015): for comparing two documents as graphs."""
    return jsonld.normalize(
        document,
        {
            "algorithm": "URDNA2015",
            "format": "application/n-quads",
            "documentLoader": document_loader,
        },
    )


# --- expanded JSON-LD → stored form -------------------------------------------------------


def shorten_iri(iri: str) -> str:
    return vocabulary.local_name(iri) or iri


def full_iri(name: str) -> str:
    if ":" in name:
        return name
    return SCHEMA_VOCAB + name


# --- stored form → compact JSON-LD (context https://schema.org) ----------------------------


def compact_node(types: list[str], data: dict[str, list], iri: str | None = None) -> dict:
    node: dict[str, Any] = {}
    if iri:
        node["@id"] = iri
    if types:
        node["@type"] = types[0] if len(types) == 1 else list(types)
    for prop, values in data.items():
        compacted = [compact_value(prop, value) for value in values]
        node[prop] = compacted[0] if len(compacted) == 1 else compacted
    return node


def compact_value(prop: str, value: dict[str, Any]) -> Any:
    coercion = property_coercion(prop)
    if "@list" in value:
        return {"@list": [compact_value(prop, item) for item in value["@list"]]}
    if "@value" in value:
        extra = set(value) - {"@value"}
        if not extra and coercion is None:
            return value["@value"]
        if extra == {"@type"} and coercion is not None and value["@type"] == coercion:
            return value["@value"]
        return dict(value)
    if "@id" in value and len(value) == 1:
        return value["@id"] if coercion == "@id" else {"@id": value["@id"]}
    types = value.get("@type", [])
    data = {k: v for k, v in value.items() if not k.startswith("@")}
    node = compact_node(types, data, iri=value.get("@id"))
    return node


def graph_document(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@context": CONTEXT_URL, "@graph": nodes}


# --- one language out of multilingual values ----------------------------------------------


def localize(value: Any, language: str, default: str) -> Any:
    """Pick the page's language among language-tagged values (falling back to the default)."""
    if isinstance(value, list):
        tagged = [v for v in value if isinstance(v, dict) and "@language" in v and "@value" in v]
        if tagged and len(tagged) == len(value):
            by_language = {v["@language"]: v["@value"] for v in tagged}
            for candidate in (language, default):
                if candidate in by_language:
                    return by_language[candidate]
            return tagged[0]["@value"]
        items = [localize(v, language, default) for v in value]
        return items[0] if len(items) == 1 else items
    if isinstance(value, dict):
        if "@language" in value and "@value" in value:
            return value["@value"]
        return {k: localize(v, language, default) for k, v in value.items()}
    return value


def localize_node(node: dict, language: str, default: str) -> dict:
    localized: dict[str, Any] = {}
    for key, value in node.items():
        localized[key] = value if key.startswith("@") else localize(value, language, default)
    return localized
