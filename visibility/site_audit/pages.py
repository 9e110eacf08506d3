"""What one page shows an answer engine: its text and headings, and its structured data.

The structured data is read by extruct (JSON-LD, Microdata and RDFa, each block or item a
graph of its own), expanded by pyld offline (``kb.jsonld``), validated as the import would
validate it (``kb.importing.read_document`` and ``kb.validation``) and looked at the way
Google's profiles look at it (``kb.quality``).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import extruct
import lxml.html
from extruct.jsonld import JsonLdExtractor
from pyld.jsonld import JsonLdError

from kb import jsonld, vocabulary
from kb.importing import PlannedEntity, read_document, source_from_bytes, strip_source_markers
from kb.models import Brand
from kb.quality import ERROR, entity_findings
from kb.validation import validate_node
from visibility.site_audit.crawler import Fetched, normalized

# Entities that should carry an @id so that other pages and graphs can refer to them.
IDENTIFIED_TYPES = ("Organization", "Person", "Product", "Place", "WebSite", "Brand")
# Organizations that a site has one of: two without @id on one site are the same one.
SINGLETON_TYPES = ("Organization", "Corporation", "OnlineStore", "OnlineBusiness")
# Properties whose values are addresses of documents, not references to entities.
ADDRESS_PROPERTIES = {
    "url", "sameAs", "image", "logo", "mainEntityOfPage", "thumbnailUrl", "contentUrl",
    "embedUrl", "availability", "itemCondition", "additionalType", "license", "citation",
    "isBasedOn", "acceptedPaymentMethod", "codeRepository", "discussionUrl",
}  # fmt: skip
RUNNABLE_SCRIPTS = ("", "text/javascript", "application/javascript", "module")
JS_WORDS = re.compile(r"enable javascript|requires javascript|javascript (is )?required", re.I)
# Below this many words of text without scripts, a page that loads scripts shows nothing
# to a crawler that does not run them (most AI crawlers do not).
JS_ONLY_WORDS = 30
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


@dataclass
class Node:
    """A typed node of a graph, as compared across graphs and pages."""

    keys: list[str]  # identities, strongest first: id:, url:, gtin:, sku:
    identity: str  # keys[0], or by type and name, or the site's one organization
    iri: str  # its @id ("" for none or a blank node)
    types: list[str]
    name: str
    values: dict[str, list[str]]  # property → its literal values, sorted
    by_language: dict[str, dict[str, list[str]]]  # property → language → values
    refs: list[tuple[str, str]]  # (property, @id) references to other entities
    graph: int  # the graph's index on the page
    syntax: str
    top_level: bool


@dataclass
class Graph:
    syntax: str
    index: int
    document: Any  # what the page gave (JSON-LD), or extruct's JSON-LD for the others
    nodes: list[Node] = field(default_factory=list)
    entities: list[PlannedEntity] = field(default_factory=list)  # as the import reads them
    problems: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.syntax} #{self.index + 1}"


@dataclass
class PageReading:
    url: str
    title: str = ""
    language: str = ""
    headings: list[list[str]] = field(default_factory=list)  # [["h1", "text"], …]
    links: list[str] = field(default_factory=list)
    markdown_url: str = ""
    describedby_llms: bool = False
    words: int = 0
    needs_javascript: bool = False
    content_hash: str = ""
    graphs: list[Graph] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)

    @property
    def nodes(self) -> list[Node]:
        return [node for graph in self.graphs for node in graph.nodes]

    def finding(self, code: str, level: str, message: str, **extra) -> None:
        self.findings.append({"code": code, "level": level, "message": message, **extra})


def finding(code: str, level: str, message: str, **extra) -> dict:
    return {"code": code, "level": level, "message": message, **extra}


# --- the page -------------------------------------------------------------------------------


def page_read(fetched: Fetched, *, brand: Brand) -> PageReading:
    url = fetched.final_url or fetched.url
    html = fetched.text()
    reading = PageReading(url=url)
    try:
        tree = lxml.html.document_fromstring(html or "<html></html>")
    except ValueError:  # an XML declaration with an encoding: lxml reads it from the bytes
        try:
            tree = lxml.html.document_fromstring(fetched.body)
        except (lxml.etree.ParserError, ValueError):
            tree = None
    except lxml.etree.ParserError:
        tree = None
    if tree is None:
        reading.finding("not_html", ERROR, "The page could not be read as HTML.")
        return reading
    reading.title = " ".join((tree.findtext(".//title") or "").split())[:500]
    reading.language = (
        tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang") or ""
    ).strip()
    for element in tree.iter("h1", "h2", "h3"):
        text = " ".join(element.text_content().split())
        if text:
            reading.headings.append([element.tag, text[:300]])
    base = url
    for element in tree.iter("base"):
        if element.get("href"):
            base = urljoin(url, element.get("href"))
            break
    for element in tree.iter("a"):
        href = (element.get("href") or "").strip()
        if href and not href.startswith(("mailto:", "tel:", "javascript:", "#")):
            try:
                reading.links.append(normalized(urljoin(base, href)))
            except ValueError:  # "http://[::1" and the like: not an address
                continue
    for element in tree.iter("link"):
        rel = (element.get("rel") or "").lower().split()
        kind = (element.get("type") or "").lower()
        href = (element.get("href") or "").strip()
        if "alternate" in rel and kind.startswith("text/markdown") and href:
            reading.markdown_url = reading.markdown_url or urljoin(base, href)
        if "describedby" in rel and href.rstrip("/").endswith("llms.txt"):
            reading.describedby_llms = True
    link_header = fetched.headers.get("link", "")
    if not reading.markdown_url and "text/markdown" in link_header:
        match = re.search(r"<([^>]+)>[^,]*type=\"?text/markdown", link_header)
        if match:
            reading.markdown_url = urljoin(url, match.group(1))
    directives = [
        element.get("content") or ""
        for element in tree.iter("meta")
        if (element.get("name") or "").lower() == "robots"
    ] + [fetched.headers.get("x-robots-tag", "")]
    if any(re.search(r"\b(noindex|none)\b", d, re.I) for d in directives):
        reading.finding(
            "noindex",
            "recommendation",
            "The page asks not to be indexed (noindex): search and answer engines leave it "
            "out. Keep it only where that is meant.",
        )
    text = visible_text(tree)
    reading.words = word_count(text)
    reading.content_hash = hashlib.sha256(text.encode()).hexdigest()
    scripts = sum(  # scripts that run (not JSON-LD or other data blocks)
        1
        for element in tree.iter("script")
        if (element.get("type") or "text/javascript").strip().lower() in RUNNABLE_SCRIPTS
    )
    if reading.words < JS_ONLY_WORDS and (scripts or JS_WORDS.search(html)):
        reading.needs_javascript = True
        reading.finding(
            "needs_javascript",
            ERROR,
            f"The page shows {reading.words} words without JavaScript: AI crawlers, which do "
            "not run scripts, see an empty page. Render its text on the server.",
        )
    structured_read(reading, html, tree, brand=brand)
    return reading


def visible_text(tree) -> str:
    tree = lxml.html.document_fromstring(lxml.html.tostring(tree))  # a copy to strip
    for element in list(tree.iter("script", "style", "noscript", "template", "head")):
        element.drop_tree()
    return " ".join(tree.text_content().split())


def word_count(text: str) -> int:
    """Words, where a Chinese or Japanese character counts as half a word (a rough match
    for the words of a translation)."""
    cjk = len(CJK.findall(text))
    return len(CJK.sub(" ", text).split()) + cjk // 2


# --- structured data ------------------------------------------------------------------------


def structured_read(reading: PageReading, html: str, tree, *, brand: Brand) -> None:
    """Each JSON-LD block, Microdata item and the page's RDFa is a graph of its own. JSON-LD
    is read block by block (extruct's reader, which forgives comments), so one broken block
    does not hide the others."""
    scripts = [
        element
        for element in tree.iter("script")
        if (element.get("type") or "").strip().lower() == "application/ld+json"
    ]
    for number, script in enumerate(scripts, 1):
        try:
            items = JsonLdExtractor().extract_items(script, base_url=reading.url)
        except ValueError as error:
            reading.finding(
                "jsonld_unparsable",
                ERROR,
                f"JSON-LD block {number} is not JSON ({error}): engines skip it whole.",
            )
            continue
        if items:
            graph_add(reading, "JSON-LD", items[0] if len(items) == 1 else items, brand=brand)
    try:
        data = extruct.extract(
            html, base_url=reading.url, syntaxes=["microdata", "rdfa"], uniform=True
        )
    except Exception as error:  # extruct raises whatever its parsers raise
        reading.finding(
            "structured_unreadable", ERROR, f"The Microdata or RDFa could not be read: {error}"
        )
        data = {}
    for item in data.get("microdata", []):
        graph_add(reading, "Microdata", item, brand=brand)
    rdfa = [node for node in data.get("rdfa", []) if schema_typed(node)]
    if rdfa:
        graph_add(reading, "RDFa", {"@graph": rdfa}, brand=brand)
    page_graph_findings(reading)


def graph_add(reading: PageReading, syntax: str, document, *, brand: Brand) -> None:
    index = sum(graph.syntax == syntax for graph in reading.graphs)
    graph = Graph(syntax=syntax, index=index, document=document)
    reading.graphs.append(graph)
    graph_read(graph, reading, brand=brand)


def schema_typed(node: dict) -> bool:
    types = node.get("@type") or []
    return any(vocabulary.local_name(t) for t in (types if isinstance(types, list) else [types]))


def audit_brand(brand: Brand, language: str) -> Brand:
    """A brand that is never saved, for reading a page as the import would: the page's own
    address as the base, its language first."""
    languages = [language] if language else []
    languages += [lang for lang in brand.languages if lang not in languages]
    return Brand(slug=brand.slug, name=brand.name, base_url=brand.base_url, languages=languages)


def graph_read(graph: Graph, reading: PageReading, *, brand: Brand) -> None:
    try:
        expanded = jsonld.expand(graph.document, base=reading.url)
    except JsonLdError as error:
        graph.problems.append(
            finding(
                "jsonld_invalid",
                ERROR,
                f"{graph.label} is not valid JSON-LD: {error.type}",
                graph=graph.label,
            )  # fmt: skip
        )
        return
    graph.nodes = list(graph_nodes(expanded, graph, reading.language))
    reader = audit_brand(brand, reading.language)
    raw = json.dumps(graph.document).encode()
    file_reading = read_document(reader, source_from_bytes(f"{reading.url} ({graph.label})", raw))
    graph.entities = file_reading.entities
    planned = {e.iri: e.types for e in file_reading.entities}
    # An untyped node with an @id is a reference with a label (a name, an address), described
    # where it is defined: not an entity of this graph (the import leaves it out too).
    file_reading.entities = [e for e in file_reading.entities if e.types]
    graph.entities = file_reading.entities
    for entity in file_reading.entities:
        problems = validate_node(
            entity.types,
            entity.data,
            pointer=entity.pointer,
            # References to what the page does not describe are the site's to resolve
            # (``report.entity_graph`` finds those that no page describes).
            lookup_types=planned.get,
            languages=reader.languages,
        )
        for problem in problems:
            graph.problems.append(
                finding(
                    "invalid",
                    ERROR,
                    problem.message,
                    pointer=problem.pointer,
                    graph=graph.label,
                    entity=entity_label(entity),
                )  # fmt: skip
            )
        strip_source_markers(entity.data)
        for found in entity_findings(brand=reader, types=entity.types, data=entity.data):
            if not found.profile.startswith("Google"):
                continue
            graph.problems.append(
                finding(
                    f"profile_{found.level}",
                    found.level,
                    found.message,
                    pointer=found.pointer,
                    graph=graph.label,
                    profile=found.profile,
                    entity=entity_label(entity),
                )  # fmt: skip
            )
    for problem in file_reading.problems:
        graph.problems.append(
            finding("invalid", ERROR, problem.message, pointer=problem.pointer, graph=graph.label)
        )


def entity_label(entity: PlannedEntity) -> str:
    names = entity.data.get("name") or []
    name = next((v.get("@value") for v in names if isinstance(v, dict) and v.get("@value")), "")
    kind = entity.types[0] if entity.types else "Thing"
    return f"{kind} “{name}”" if name else kind


def short(iri: str) -> str:
    return jsonld.shorten_iri(iri.replace("https://schema.org/", jsonld.SCHEMA_VOCAB))


def graph_nodes(expanded: list, graph: Graph, language: str = ""):
    """Every typed node of an expanded graph, top level first. A value without a language of
    its own is in the page's ``language``: pages in two languages do not disagree."""
    language = language.lower()
    stack = [(node, True) for node in reversed(expanded) if isinstance(node, dict)]
    while stack:
        node, top = stack.pop()
        if "@graph" in node:
            stack.extend((n, True) for n in reversed(node["@graph"]) if isinstance(n, dict))
            continue
        types = [short(t) for t in node.get("@type", [])]
        values: dict[str, list[str]] = {}
        by_language: dict[str, dict[str, list[str]]] = {}
        refs: list[tuple[str, str]] = []
        for prop, entries in node.items():
            if prop.startswith("@"):
                continue
            name = short(prop)
            for entry in entries if isinstance(entries, list) else [entries]:
                if not isinstance(entry, dict):
                    continue
                if "@value" in entry:
                    text = str(entry["@value"]).strip()
                    tag = str(entry.get("@language") or language).lower()
                elif "@list" in entry:
                    continue
                elif entry.get("@type") or len(entry) > 1:
                    stack.append((entry, False))
                    continue
                elif entry.get("@id") and name in ADDRESS_PROPERTIES:
                    text, tag = entry["@id"], language
                elif entry.get("@id"):
                    refs.append((name, entry["@id"]))
                    continue
                else:
                    continue
                values.setdefault(name, []).append(text)
                by_language.setdefault(name, {}).setdefault(tag, []).append(text)
        if not types:
            continue
        iri = node.get("@id", "")
        iri = "" if iri.startswith("_:") else iri
        keys = identity_keys(iri, values, types)
        label_name = next(iter(values.get("name", [])), "")
        identity = keys[0] if keys else fallback_identity(types, label_name, top)
        yield Node(
            keys=keys, identity=identity, iri=iri, types=types, name=label_name,
            values={k: sorted(set(v)) for k, v in values.items()},
            by_language={k: {tag: sorted(set(v)) for tag, v in tags.items()}
                         for k, tags in by_language.items()},
            refs=refs, graph=graph.index, syntax=graph.syntax, top_level=top,
        )  # fmt: skip


FAMILIES = ("Product", "Organization", "Person", "Place", "Event", "WebSite", "WebPage")


def family(types: list[str]) -> str:
    """The kind of thing a node is, for telling apart nodes that share an address (a
    WebSite and its Organization both have the home page as their url)."""
    for kind in FAMILIES:
        if any(vocabulary.is_class(t) and vocabulary.is_subclass(t, kind) for t in types):
            return kind
    return types[0] if types else "Thing"


def identity_keys(iri: str, values: dict[str, list[str]], types: list[str]) -> list[str]:
    keys = [f"id:{iri}"] if iri else []
    for prop in ("gtin", "gtin8", "gtin12", "gtin13", "gtin14"):
        for value in values.get(prop, []):
            digits = re.sub(r"\D", "", value)
            if digits:
                keys.append(f"gtin:{digits.zfill(14)}")
    keys += [f"sku:{value.strip().lower()}" for value in values.get("sku", []) if value.strip()]
    kind = family(types)
    keys += [f"url:{kind}:{normalized(v)}" for v in values.get("url", []) if "://" in v]
    return list(dict.fromkeys(keys))


def group_by_keys(items: list, keys_of: Callable[[object], list[str]]) -> list[list]:
    """``items`` in groups of those that share any key (transitively), in first-seen order;
    an item without keys is a group of its own."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    own = [[f"item:{index}", *keys_of(item)] for index, item in enumerate(items)]
    for keys in own:
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    groups: dict[str, list] = {}
    for item, keys in zip(items, own, strict=True):
        groups.setdefault(root(keys[0]), []).append(item)
    return list(groups.values())


def fallback_identity(types: list[str], name: str, top: bool) -> str:
    if top and any(t in SINGLETON_TYPES for t in types):
        return "the site's organization"
    if name:
        return f"name:{types[0]}:{unicodedata.normalize('NFKC', name).casefold()}"
    return ""


def is_identified_type(types: list[str]) -> bool:
    return any(
        vocabulary.is_class(t) and any(vocabulary.is_subclass(t, of) for of in IDENTIFIED_TYPES)
        for t in types
    )


def differences(nodes: list[Node]) -> dict[str, list[list[str]]]:
    """The properties two or more of ``nodes`` give different values for in one language:
    property (with the language, if any: "name@en") → the distinct value sets."""
    out: dict[str, list[list[str]]] = {}
    props = {prop for node in nodes for prop in node.by_language}
    for prop in sorted(props):
        tags = sorted({tag for node in nodes for tag in node.by_language.get(prop, {})})
        for tag in tags:
            seen = [n.by_language[prop][tag] for n in nodes if tag in n.by_language.get(prop, {})]
            distinct = [list(v) for v in dict.fromkeys(tuple(v) for v in seen)]
            if len(distinct) > 1:
                out[f"{prop}@{tag}" if tag else prop] = distinct
    return out


def page_graph_findings(reading: PageReading) -> None:
    """Per page: no structured data, only Microdata/RDFa, entities without @id, and the same
    entity described by several graphs — the same (a duplicate) or differently (a conflict)."""
    for graph in reading.graphs:
        reading.findings.extend(graph.problems)
    if not reading.graphs:
        reading.finding(
            "no_structured_data",
            "recommendation",
            "No structured data: engines have only the text to tell what the page is about.",
        )
        return
    if not any(graph.syntax == "JSON-LD" for graph in reading.graphs):
        used = sorted({graph.syntax for graph in reading.graphs})
        reading.finding(
            "no_jsonld",
            "recommendation",
            f"Structured data only as {' and '.join(used)}: Google recommends JSON-LD, and "
            "it is the form AI crawlers read most reliably. Publish the same data as JSON-LD.",
        )
    for node in reading.nodes:
        if node.top_level and not node.iri and is_identified_type(node.types):
            reading.finding(
                "no_id",
                "recommendation",
                f"{node.types[0]} “{node.name or '(no name)'}” ({node.syntax}) has no @id: other "
                "pages and graphs cannot refer to it, and engines cannot tell it is one entity.",
                entity=node.identity,
            )
    by_identity: dict[str, list[Node]] = {}
    for node in reading.nodes:
        if node.identity and node.top_level:
            by_identity.setdefault(node.identity, []).append(node)
    for identity, nodes in by_identity.items():
        graphs = sorted({(n.syntax, n.graph) for n in nodes})
        if len(graphs) < 2:
            continue
        labels = [f"{syntax} #{index + 1}" for syntax, index in graphs]
        differing = differences(nodes)
        what = f"{nodes[0].types[0]} “{nodes[0].name}”" if nodes[0].name else nodes[0].types[0]
        if differing:
            detail = "; ".join(
                f"{prop}: {' vs '.join(' | '.join(v) or '(none)' for v in sets)}"
                for prop, sets in differing.items()
            )
            reading.finding(
                "conflict",
                ERROR,
                f"{what} is described by {len(graphs)} graphs ({', '.join(labels)}) that "
                f"disagree — {detail}. Engines cannot tell which is right: keep one.",
                entity=identity,
                conflicts=differing,
            )
        else:
            reading.finding(
                "duplicate",
                "hint",
                f"{what} is described twice, alike ({', '.join(labels)}): one graph is enough.",
                entity=identity,
            )
