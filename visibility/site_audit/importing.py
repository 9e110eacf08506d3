"""The entities an audit found, into the brand as drafts (``kb.services.imports``).

Products (with their offers), organizations and stores, people and FAQ pages are taken from
every page's graphs (JSON-LD, Microdata, RDFa alike, in expanded form). What several pages
or graphs describe is one entity when they share an @id, a GTIN, a SKU or a URL, or when an
entity of the brand already has one of those: the crawl's first description wins, and the
values other pages disagree on are listed as conflicts for the editor to settle. Each entity
is imported from the first page that described it, so its revision says "Imported from
<that page>"; the audit keeps every page each entity was seen on.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from kb import jsonld, vocabulary
from kb.importing import SourceFile, source_from_bytes
from kb.models import Brand, Entity
from kb.services.imports import ImportResult, jsonld_import
from visibility.site_audit.crawler import normalized
from visibility.site_audit.pages import PageReading, group_by_keys, identity_keys, short

IMPORTED_TYPES = ("Product", "Organization", "Person", "FAQPage")
KEY_PROPERTIES = ("gtin", "gtin8", "gtin12", "gtin13", "gtin14", "sku", "url")


@dataclass
class Found:
    """One description of an entity: an expanded top-level node and the page it is on."""

    page: str
    node: dict
    keys: list[str]
    types: list[str]


@dataclass
class ImportPlan:
    files: list[SourceFile] = field(default_factory=list)
    entities: list[dict] = field(default_factory=list)  # {iri, label, pages, matched}
    conflicts: list[dict] = field(default_factory=list)
    unknown: list[dict] = field(default_factory=list)  # nodes of no schema.org type


def short_types(node: dict) -> list[str]:
    return [short(t) for t in node.get("@type", [])]


def imported_kind(types: list[str]) -> bool:
    return any(
        vocabulary.is_class(t) and any(vocabulary.is_subclass(t, kind) for kind in IMPORTED_TYPES)
        for t in types
    )


def https_schema(value):
    """RDFa (and some JSON-LD) writes https://schema.org/ IRIs; the store uses http://."""
    if isinstance(value, list):
        return [https_schema(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, entry in value.items():
            key = key.replace("https://schema.org/", jsonld.SCHEMA_VOCAB)
            if key == "@type" and isinstance(entry, list):
                entry = [t.replace("https://schema.org/", jsonld.SCHEMA_VOCAB) for t in entry]
            elif key == "@type" and isinstance(entry, str):
                entry = entry.replace("https://schema.org/", jsonld.SCHEMA_VOCAB)
            out[key] = https_schema(entry)
        return out
    return value


def relabel_blank(value, prefix: str):
    """Blank node labels are a graph's own: made unique before graphs are put together."""
    if isinstance(value, list):
        return [relabel_blank(v, prefix) for v in value]
    if isinstance(value, dict):
        return {
            key: (f"_:{prefix}{entry[2:]}" if key == "@id" and isinstance(entry, str)
                  and entry.startswith("_:") else relabel_blank(entry, prefix))
            for key, entry in value.items()
        }  # fmt: skip
    return value


def node_values(node: dict, prop: str) -> list[str]:
    out = []
    for entry in node.get(jsonld.SCHEMA_VOCAB + prop, []):
        if isinstance(entry, dict):
            value = entry.get("@value", entry.get("@id"))
            if isinstance(value, str | int | float):
                out.append(str(value))
    return out


def found_nodes(readings: list[PageReading], unknown: list[dict]) -> list[Found]:
    """The top-level nodes of imported kinds; nodes of no schema.org type go to ``unknown``."""
    found = []
    for page_index, reading in enumerate(readings):
        for graph in reading.graphs:
            try:
                expanded = jsonld.expand(graph.document, base=reading.url)
            except Exception:  # already reported as the graph's problem
                continue
            expanded = relabel_blank(
                https_schema(expanded), f"p{page_index}g{graph.syntax[0]}{graph.index}"
            )
            for node in expanded:
                if not isinstance(node, dict):
                    continue
                types = short_types(node)
                if types and not any(vocabulary.is_class(t) for t in types):
                    unknown.append({"page": reading.url, "what": " ".join(types),
                                    "problems": [f"/@type: not a schema.org type: {', '.join(types)}"]})  # fmt: skip
                if not imported_kind(types):
                    continue
                iri = node.get("@id", "")
                iri = "" if iri.startswith("_:") else iri
                values = {prop: node_values(node, prop) for prop in KEY_PROPERTIES}
                found.append(Found(reading.url, node, identity_keys(iri, values, types), types))
    return found


def existing_keys(brand: Brand) -> dict[str, str]:
    """Identity key → the IRI of the brand's entity that has it."""
    out: dict[str, str] = {}
    rows = Entity.objects.filter(brand=brand).values_list("iri", "types", "data")
    for iri, types, data in rows:
        values = {}
        for prop in KEY_PROPERTIES:
            values[prop] = [
                str(v.get("@value", v.get("@id", ""))) for v in data.get(prop, [])
                if isinstance(v, dict)
            ]  # fmt: skip
        for key in identity_keys(iri, values, types):
            out.setdefault(key, iri)
    return out


def value_text(values: list) -> str:
    return json.dumps(strip_blank(values), sort_keys=True, ensure_ascii=False)


def strip_blank(value):
    if isinstance(value, list):
        return [strip_blank(v) for v in value]
    if isinstance(value, dict):
        return {
            k: strip_blank(v) for k, v in value.items()
            if not (k == "@id" and isinstance(v, str) and v.startswith("_:"))
        }  # fmt: skip
    return value


def shown(values: list) -> str:
    parts = []
    for value in values:
        if isinstance(value, dict) and "@value" in value:
            parts.append(str(value["@value"]))
        elif isinstance(value, dict) and set(value) == {"@id"}:
            parts.append(value["@id"])
        else:
            parts.append(json.dumps(strip_blank(value), ensure_ascii=False)[:200])
    return " | ".join(parts)


def import_plan(*, brand: Brand, readings: list[PageReading]) -> ImportPlan:
    plan = ImportPlan()
    found = found_nodes(readings, plan.unknown)
    known = existing_keys(brand)
    groups = group_by_keys(found, lambda item: item.keys)
    by_page: dict[str, list[dict]] = {}
    for items in groups:
        keys = list(dict.fromkeys(key for item in items for key in item.keys))
        matched = next((known[key] for key in keys if key in known), "")
        own_iri = next((key[3:] for key in keys if key.startswith("id:")), "")
        iri = matched or own_iri
        merged = copy.deepcopy(items[0].node)
        label = item_label(items[0])
        for other in items[1:]:
            for prop, values in other.node.items():
                if prop.startswith("@"):
                    continue
                if prop not in merged:
                    merged[prop] = copy.deepcopy(values)
                elif value_text(merged[prop]) != value_text(values):
                    plan.conflicts.append({
                        "entity": label, "iri": iri, "property": jsonld.shorten_iri(prop),
                        "kept": shown(merged[prop]), "kept_from": items[0].page,
                        "other": shown(values), "other_from": other.page,
                    })  # fmt: skip
        for other in items[1:]:
            for kind in other.node.get("@type", []):
                if kind not in merged.get("@type", []):
                    merged.setdefault("@type", []).append(kind)
        if iri:
            merged["@id"] = iri
        by_page.setdefault(items[0].page, []).append(merged)
        plan.entities.append({
            "iri": iri, "label": label, "types": items[0].types,
            "pages": list(dict.fromkeys(item.page for item in items)),
            "matched": bool(matched), "page": items[0].page,
        })  # fmt: skip
    for page, nodes in by_page.items():
        plan.files.append(source_from_bytes(normalized(page), json.dumps(nodes).encode()))
    return plan


def item_label(item: Found) -> str:
    names = node_values(item.node, "name")
    kind = item.types[0] if item.types else "Thing"
    return f"{kind} “{names[0]}”" if names else kind


def site_import(*, brand: Brand, readings: list[PageReading], user) -> dict:
    """Import what the pages describe as drafts; what was done, for the audit's report."""
    plan = import_plan(brand=brand, readings=readings)
    if not plan.files:
        return {"entities": [], "faqs": {"created": [], "updated": [], "unchanged": []},
                "conflicts": [], "skipped": plan.unknown, "counts": {}}  # fmt: skip
    result: ImportResult = jsonld_import(
        brand=brand, sources=plan.files, user=user, publish=False, skip_invalid=True
    )
    outcome = {iri: "created" for iri in result.created}
    outcome |= {iri: "updated" for iri in result.updated}
    outcome |= {iri: "unchanged" for iri in result.unchanged}
    ids = dict(Entity.objects.filter(brand=brand, iri__in=list(outcome)).values_list("iri", "pk"))
    entities = []
    # Entities without an @id got one from the import (from their type and name): matched
    # back by the page they were imported from.
    for planned in plan.entities:
        if not planned["iri"]:
            continue
        planned["outcome"] = outcome.get(planned["iri"], "skipped")
        planned["entity_id"] = ids.get(planned["iri"])
        entities.append(planned)
    generated = [iri for iri in outcome if iri not in {e["iri"] for e in plan.entities}]
    for iri in generated:
        entity = Entity.objects.filter(brand=brand, iri=iri).first()
        source = next(
            (
                p
                for p in plan.entities
                if not p["iri"] and entity and p["label"].endswith(f"“{entity.label}”")
            ),
            None,
        )
        entities.append({
            "iri": iri, "label": source["label"] if source else iri,
            "types": entity.types if entity else [], "pages": source["pages"] if source else [],
            "page": source["page"] if source else "", "matched": False,
            "outcome": outcome[iri], "entity_id": entity.pk if entity else None,
        })  # fmt: skip
    return {
        "entities": entities,
        "faqs": {"created": result.faqs_created, "updated": result.faqs_updated,
                 "unchanged": result.faqs_unchanged},
        "conflicts": plan.conflicts,
        "skipped": [
            {"page": s.file, "what": s.label,
             "problems": [f"{p.pointer or '/'}: {p.message}" for p in s.problems]}
            for s in result.skipped
        ] + plan.unknown,
        "counts": result.counts,
    }  # fmt: skip
