"""Reading schema.org JSON-LD files into planned entities, with errors that say where.

Reading never writes: ``read_files`` parses, expands (pyld, offline) and validates every
file; ``kb.services.imports.jsonld_import`` then applies the plan in one transaction.

To report JSON pointers into the input after pyld has expanded it, every node object of
the input is tagged with its pointer under an absolute IRI (``SOURCE_POINTER_IRI``) that
expansion carries through untouched; the tag is removed again before anything is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.utils.text import slugify
from pyld.jsonld import JsonLdError

from kb import jsonld, units, vocabulary
from kb.jsontext import JsonInputError, loads_checked
from kb.models import Brand, Entity, Fact
from kb.validation import (
    KEYS_KEY,
    POINTER_KEY,
    Problem,
    join_pointer,
    validate_node,
    web_url_problem,
)

SOURCE_POINTER_IRI = "urn:sourcebook:source-pointer"


@dataclass(frozen=True)
class ImportProblem:
    file: str
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.pointer or '/'}: {self.message}"


@dataclass
class PlannedEntity:
    iri: str
    types: list[str]
    data: dict[str, list]
    file: str
    pointer: str
    iri_generated: bool = False
    workflow: Workflow | None = None


@dataclass(frozen=True)
class Workflow:
    """An object's workflow state as an export of working copies gives it
    (``kb.jsonld.WORKFLOW_STATUS``), restored by the import."""

    status: str  # one of WORKFLOW_STATES
    go_live_at: datetime | None = None  # when scheduled


WORKFLOW_IRIS = (jsonld.WORKFLOW_STATUS, jsonld.WORKFLOW_GO_LIVE)
WORKFLOW_STATES = ("draft", "in_review", "scheduled", "published", "unpublished", "archived")


@dataclass
class PlannedFAQ:
    """A Question of a FAQPage, to become an FAQ of the brand (``kb.models.FAQ``)."""

    key: str
    question: dict[str, str]  # language → text
    answer: dict[str, str]
    order: int
    file: str
    pointer: str
    about_iri: str | None = None
    workflow: Workflow | None = None


@dataclass
class PlannedFact:
    """A ``Claim`` as Sourcebook exports facts (@id ``{base_url}/id/fact/{key}``), to become
    a fact of the brand (``kb.models.Fact``); the shape is ``kb.statement_nodes.fact_node``'s."""

    key: str
    statement: dict[str, str]
    value: str
    unit: str
    unit_labels: dict[str, str]  # language → the unit's word in it
    check_cues: list[str]  # ``keywords``: the words that tell answers state the fact
    source_url: str
    source_title: dict[str, str]
    as_of: str
    valid_until: str | None
    about_iri: str | None
    file: str
    pointer: str
    workflow: Workflow | None = None


@dataclass
class FileReading:
    name: str
    entities: list[PlannedEntity] = field(default_factory=list)
    faqs: list[PlannedFAQ] = field(default_factory=list)
    facts: list[PlannedFact] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


class FileProblem(Exception):
    def __init__(self, pointer: str, message: str):
        super().__init__(message)
        self.pointer = pointer
        self.message = message


@dataclass(frozen=True)
class SourceFile:
    name: str
    raw: bytes | None  # None when the file is over the size limit and was not read
    size: int


def read_files(brand: Brand, files: Iterable[SourceFile]) -> list[FileReading]:
    """Parse and validate every file; problems are collected, nothing is written."""
    readings = [read_document(brand, source) for source in files]
    planned = {e.iri: e for reading in readings for e in reading.entities}
    existing = dict(Entity.objects.filter(brand=brand).values_list("iri", "types"))

    def lookup_types(iri: str) -> list[str] | None:
        if iri in planned:
            return planned[iri].types
        return existing.get(iri)

    for reading in readings:
        for entity in reading.entities:
            problems = validate_node(
                entity.types,
                entity.data,
                pointer=entity.pointer,
                lookup_types=lookup_types,
                languages=brand.languages,
            )
            reading.problems.extend(
                ImportProblem(reading.name, p.pointer, p.message) for p in problems
            )
        for entity in reading.entities:
            strip_source_markers(entity.data)
    merge_faqs(readings)
    for reading in readings:
        for faq in reading.faqs:
            if faq.about_iri and lookup_types(faq.about_iri) is None:
                faq.about_iri = None  # ``about`` is kept only when it names one of our entities
            for field_name in ("question", "answer"):
                if not getattr(faq, field_name).get(brand.default_language, "").strip():
                    reading.problems.append(
                        ImportProblem(
                            reading.name,
                            faq.pointer,
                            f"the FAQ's {field_name} has no text in the brand's default "
                            f"language ({brand.default_language})",
                        )
                    )
    for reading in readings:
        for fact in reading.facts:
            reading.problems.extend(
                ImportProblem(reading.name, fact.pointer, message)
                for message in fact_problems(brand, fact, lookup_types)
            )
    refuse_foreign_ids(brand, readings)
    return readings


def fact_problems(brand: Brand, fact: PlannedFact, lookup_types) -> list[str]:
    problems = []
    if not fact.about_iri or lookup_types(fact.about_iri) is None:
        problems.append("the fact's about must name one of the brand's entities")
    if not fact.statement.get(brand.default_language, "").strip():
        problems.append(
            "the fact's text has no statement in the brand's default language "
            f"({brand.default_language})"
        )
    if not fact.source_url:
        problems.append("the fact needs a citation with a url (its source)")
    elif web_url_problem(fact.source_url):
        problems.append(f"the fact's citation url: {web_url_problem(fact.source_url)}")
    for name, value in (
        ("value", fact.value),
        ("unit", fact.unit),
        ("source_url", fact.source_url),
    ):
        limit = Fact._meta.get_field(name).max_length
        if value and len(value) > limit:
            problems.append(f"the fact's {name} is {len(value)} characters long; at most {limit}")
    for name, value in (("temporalCoverage", fact.as_of), ("expires", fact.valid_until)):
        if value is None and name == "expires":
            continue
        try:
            date.fromisoformat(value or "")
        except ValueError:
            problems.append(f"the fact's {name} must be a date (YYYY-MM-DD), not {value!r}")
    return problems


def merge_faqs(readings: list[FileReading]) -> None:
    """The same Question (same key) in several files, e.g. one file per language, is one FAQ:
    its texts are merged into the first file's."""
    first: dict[str, PlannedFAQ] = {}
    for reading in readings:
        kept = []
        for faq in reading.faqs:
            into = first.get(faq.key)
            if into is None:
                first[faq.key] = faq
                kept.append(faq)
                continue
            into.question = {**faq.question, **into.question}
            into.answer = {**faq.answer, **into.answer}
            into.about_iri = into.about_iri or faq.about_iri
        reading.faqs = kept


# Chinese region subtags that imply a script (BCP 47 leaves it to the reader): the one place
# where a regional tag is mapped by a table rather than by dropping subtags.
SCRIPT_BY_REGION = {
    "zh-cn": "zh-Hans", "zh-sg": "zh-Hans", "zh-my": "zh-Hans",
    "zh-tw": "zh-Hant", "zh-hk": "zh-Hant", "zh-mo": "zh-Hant",
}  # fmt: skip


def brand_language(languages: list[str], tag: str) -> str | None:
    """The brand's language a BCP 47 tag falls under, or None.

    Case-insensitive exact match first; then the table above (zh-CN → zh-Hans, zh-TW →
    zh-Hant); then the longest prefix of whole subtags (RFC 4647 lookup): en-CA → en,
    zh-Hans-CN → zh-Hans. The brand's tag replaces the document's.
    """
    if not isinstance(tag, str) or not tag:
        return None
    by_lower = {language.lower(): language for language in languages}
    lower = tag.lower()
    if lower in by_lower:
        return by_lower[lower]
    scripted = SCRIPT_BY_REGION.get(lower)
    if scripted and scripted.lower() in by_lower:
        return by_lower[scripted.lower()]
    subtags = lower.split("-")
    while len(subtags) > 1:
        subtags.pop()
        if subtags[-1] and len(subtags[-1]) == 1:  # never end on a singleton (x-, u-)
            continue
        candidate = "-".join(subtags)
        if candidate in by_lower:
            return by_lower[candidate]
        scripted = SCRIPT_BY_REGION.get(candidate)
        if scripted and scripted.lower() in by_lower:
            return by_lower[scripted.lower()]
    return None


def _normalized_url(url: str) -> str:
    """Scheme and host are case-insensitive: ``HTTPS://Other.Example/x`` is other.example's."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, parts.fragment)
    )


def base_url_match(iri: str, base_url: str) -> int:
    """How specifically ``iri`` falls under ``base_url`` (the base's length), or -1."""
    base = _normalized_url(base_url).rstrip("/")
    iri = _normalized_url(iri)
    if base and (iri == base or iri.startswith((base + "/", base + "#", base + "?"))):
        return len(base)
    return -1


def refuse_foreign_ids(brand: Brand, readings: list[FileReading]) -> None:
    """An @id under another brand's base URL would claim that brand's identity (its pages,
    its knowledge graph): refused, unless the brand's own base URL is the closer match."""
    others = list(Brand.objects.exclude(pk=brand.pk).values_list("slug", "base_url"))
    if not others:
        return
    for reading in readings:
        for entity in reading.entities:
            own = base_url_match(entity.iri, brand.base_url)
            for slug, base_url in others:
                if base_url_match(entity.iri, base_url) > own:
                    reading.problems.append(
                        ImportProblem(
                            reading.name,
                            join_pointer(entity.pointer, "@id"),
                            f"the @id {entity.iri} is under the base URL of another brand "
                            f"({slug}: {base_url}); this brand's entities must not take "
                            f"other brands' identifiers (its base URL is {brand.base_url})",
                        )
                    )
                    break


def read_path(path: str | Path) -> SourceFile:
    path = Path(path)
    size = path.stat().st_size
    # A file over the limit is refused by its size alone, without reading it.
    raw = path.read_bytes() if size <= settings.SOURCEBOOK_IMPORT_MAX_BYTES else None
    return SourceFile(name=str(path), raw=raw, size=size)


def source_from_bytes(name: str, raw: bytes) -> SourceFile:
    return SourceFile(name=name, raw=raw, size=len(raw))


def read_document(brand: Brand, source: SourceFile) -> FileReading:
    reading = FileReading(name=source.name)
    try:
        document = parse_json(source)  # depth checked as it is read
        check_context(document)
        reading.problems.extend(
            ImportProblem(source.name, pointer, message)
            for pointer, message in empty_url_problems(document, context_aliases(document))
        )
        keys_by_pointer = tag_nodes(document, keyword_aliases(document))
        try:
            expanded = jsonld.expand(document, base=f"{brand.base_url}/")
        except JsonLdError as error:
            raise FileProblem("", f"invalid JSON-LD: {describe_jsonld_error(error)}") from None
        except RecursionError:
            raise FileProblem("", "the document is nested too deeply to process") from None
        planner = _Planner(
            brand,
            keys_by_pointer,
            reading,
            language_maps=container_terms(document, "@language"),
            aliases=context_aliases(document),
        )
        reading.entities = planner.plan(expanded)
        reading.faqs = list(planner.faqs.values())
        reading.facts = list(planner.facts.values())
    except FileProblem as problem:
        reading.problems.append(ImportProblem(source.name, problem.pointer, problem.message))
    return reading


def parse_json(source: SourceFile) -> Any:
    limit = settings.SOURCEBOOK_IMPORT_MAX_BYTES
    if source.raw is None or source.size > limit:
        raise FileProblem(
            "",
            f"the file is {source.size:,} bytes, over the import limit of {limit:,} bytes "
            "(SOURCEBOOK_IMPORT_MAX_BYTES)",
        )
    if not source.raw.strip(b" \t\r\n\xef\xbb\xbf"):
        raise FileProblem("", "the file is empty")
    # Nesting, numbers, surrogates and NUL characters are checked as the JSON is read (by
    # orjson, which never recurses in Python): see kb.jsontext.loads_checked.
    try:
        # Numbers that are not finite are read, for validation to refuse naming the property.
        document = loads_checked(
            source.raw, max_depth=settings.SOURCEBOOK_IMPORT_MAX_DEPTH, finite=False
        )
    except JsonInputError as error:
        raise FileProblem(error.pointer, error.message) from None
    if not isinstance(document, dict | list):
        raise FileProblem("", "expected a JSON-LD object or array at the top level")
    return document


def check_context(document: Any) -> None:
    """Without a @context JSON-LD silently drops every property: refuse, and say so (unless
    the node is in expanded form, every property and type an absolute IRI, as RDF libraries
    such as rdflib write JSON-LD: it needs no context)."""
    nodes = document if isinstance(document, list) else [document]
    for index, node in enumerate(nodes):
        if isinstance(node, dict) and "@context" not in node and not is_expanded(node):
            raise FileProblem(
                join_pointer("", index) if isinstance(document, list) else "",
                'no @context, so no term would be understood; add "@context": "https://schema.org"',
            )


def is_expanded(value: Any) -> bool:
    """Whether no key or @type in ``value`` is a term (all keywords or absolute IRIs)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict) and "@value" not in item:
            for key, entry in item.items():
                if key == "@context" or (not key.startswith("@") and ":" not in key):
                    return False
                if key == "@type":
                    types = entry if isinstance(entry, list) else [entry]
                    if any(not isinstance(t, str) or ":" not in t for t in types):
                        return False
                else:
                    stack.append(entry)
    return True


def check_depth(document: Any, max_depth: int) -> None:
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    while stack:
        value, pointer, depth = stack.pop()
        if depth > max_depth:
            raise FileProblem(
                pointer,
                f"nested deeper than {max_depth} levels (SOURCEBOOK_IMPORT_MAX_DEPTH)",
            )
        if isinstance(value, dict):
            stack.extend((v, join_pointer(pointer, k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, join_pointer(pointer, i), depth + 1) for i, v in enumerate(value))


def contexts_in(document: Any) -> Iterator[Any]:
    """Every ``@context`` entry in the document: inline objects and context URLs."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key != "@context":
                    stack.append(item)
                    continue
                yield from item if isinstance(item, list) else [item]


def empty_url_problems(document: Any, aliases: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(pointer, message) for each empty string given to a property the schema.org context
    reads as a URL (``"sameAs": ["https://…", ""]``, as shop themes write unset links).

    JSON-LD would resolve "" against the base, making it a link to the brand's own site:
    refused rather than stored as that. (Without the schema.org context "" stays text,
    which validation refuses as not a URL.)"""
    if not any(
        isinstance(c, str) and c in jsonld.SCHEMA_CONTEXT_URLS for c in contexts_in(document)
    ):
        return
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, pointer = stack.pop()
        if isinstance(value, list):
            stack.extend((item, join_pointer(pointer, i)) for i, item in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        for key, item in value.items():
            if key == "@context" or (key.startswith("@") and key not in ("@graph", "@list")):
                continue
            item_pointer = join_pointer(pointer, key)
            name = aliases.get(key) or jsonld.shorten_iri(
                key.replace("schema:", jsonld.SCHEMA_VOCAB, 1)
            )
            if jsonld.property_coercion(name) == "@id":
                items = item if isinstance(item, list) else [item]
                for index, text in enumerate(items):
                    if isinstance(text, str) and not text.strip():
                        yield (
                            join_pointer(item_pointer, index)
                            if isinstance(item, list)
                            else item_pointer,
                            f"{name!r} expects a URL, got an empty string (leave it out)",
                        )
            stack.append((item, item_pointer))


def inline_term_definitions(document: Any) -> Iterator[tuple[str, Any]]:
    """(term, definition) for every term that an inline ``@context`` in the document defines."""
    for context in contexts_in(document):
        if isinstance(context, dict):
            yield from context.items()


def container_terms(document: Any, container: str | None = None) -> set[str]:
    """Terms declared with a container (language maps, index maps…), or one kind of it."""
    return {
        term
        for term, definition in inline_term_definitions(document)
        if isinstance(definition, dict)
        and "@container" in definition
        and container in (None, definition["@container"])
    }


def keyword_aliases(document: Any) -> set[str]:
    """Terms that stand for JSON-LD keywords: ``id`` and ``type`` wherever the schema.org
    context is used (it defines them, as JSON-LD 1.1 keyword aliases), and any an inline
    context defines (``"url": "@id"``)."""
    aliases = {
        term
        for term, definition in inline_term_definitions(document)
        if isinstance(definition, str) and definition.startswith("@")
    }
    if any(isinstance(c, str) and c in jsonld.SCHEMA_CONTEXT_URLS for c in contexts_in(document)):
        aliases.update(
            term
            for term, definition in jsonld.schema_context()["@context"].items()
            if isinstance(definition, str) and definition.startswith("@")
        )
    return aliases


def context_aliases(document: Any) -> dict[str, str]:
    """Terms that inline contexts define for schema.org properties, e.g. ``"nameMap"`` → name."""
    aliases: dict[str, str] = {}
    for term, definition in inline_term_definitions(document):
        iri = definition.get("@id") if isinstance(definition, dict) else definition
        if isinstance(iri, str):
            aliases[term] = jsonld.shorten_iri(iri.replace("schema:", jsonld.SCHEMA_VOCAB, 1))
    return aliases


def tag_nodes(document: Any, keywords: set[str] = frozenset()) -> dict[str, list[str]]:
    """Tag each node object with its JSON pointer; return each node's own keys (keywords
    and their aliases, ``type`` and ``id``, left out)."""
    skip = container_terms(document)
    keys_by_pointer: dict[str, list[str]] = {}
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, pointer = stack.pop()
        if isinstance(value, list):
            stack.extend((item, join_pointer(pointer, i)) for i, item in enumerate(value))
            continue
        if not isinstance(value, dict) or "@value" in value:
            continue
        for list_key in ("@list", "@set"):
            if list_key in value:
                stack.append((value[list_key], join_pointer(pointer, list_key)))
        if "@list" in value or "@set" in value:
            continue
        graph_only = "@graph" in value and not set(value) - {"@context", "@graph"}
        if not graph_only:
            keys_by_pointer[pointer] = [
                k for k in value if not k.startswith("@") and k not in keywords
            ]
            value[SOURCE_POINTER_IRI] = pointer
        for key, item in list(value.items()):
            if key in ("@context", "@id", "@type", SOURCE_POINTER_IRI) or key in skip:
                continue
            if key in keywords and not isinstance(item, dict | list):
                continue
            stack.append((item, join_pointer(pointer, key)))
    return keys_by_pointer


def describe_jsonld_error(error: JsonLdError) -> str:
    cause: BaseException | None = error
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, jsonld.RemoteContextRefused):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    message = str(error.args[0] if error.args else error).split("\n")[0]
    code = getattr(error, "code", None)
    return f"{message} ({code})" if code and code not in message else message


class _Planner:
    def __init__(
        self,
        brand: Brand,
        keys_by_pointer: dict[str, list[str]],
        reading: FileReading,
        *,
        language_maps: set[str],
        aliases: dict[str, str],
    ):
        self.brand = brand
        self.aliases = aliases
        self.language_maps = language_maps
        self.keys_by_pointer = keys_by_pointer
        self.reading = reading
        self.entities: dict[str, PlannedEntity] = {}
        self.faqs: dict[str, PlannedFAQ] = {}
        self.facts: dict[str, PlannedFact] = {}
        self.blank_iris: dict[str, str] = {}
        # Top-level blank nodes that stand where their one reference is (see plan()).
        self.embedded: dict[str, dict] = {}
        # Untyped nodes with an @id kept in place (see convert_value): (the stored node, its
        # IRI, its types and data), merged into the entity if the file describes one.
        self.untyped_inline: list[tuple[dict, str, list[str], dict]] = []

    def problem(self, pointer: str, message: str) -> None:
        self.reading.problems.append(ImportProblem(self.reading.name, pointer, message))

    def plan(self, expanded: list[dict]) -> list[PlannedEntity]:
        top_level = [node for node in expanded if isinstance(node, dict)]
        self.embedded = embeddable_blank_nodes(top_level)
        # Blank or missing top-level ids get a stable IRI first, so references resolve.
        for node in top_level:
            node_id = node.get("@id")
            if node_id in self.embedded:
                continue
            if node_id is None or node_id.startswith("_:"):
                iri = self.generated_iri(node)
                if node_id:
                    self.blank_iris[node_id] = iri
                node["@id"] = iri
                node["__generated__"] = True
        by_id = {node["@id"]: node for node in top_level}
        consumed: set[str] = set()
        for node in top_level:
            if is_faq_page(node):
                consumed.add(node["@id"])
                consumed.update(self.plan_faq_page(node, by_id))
            elif (key := self.own_key(node["@id"], "fact")) and is_claim(node):
                consumed.add(node["@id"])
                self.plan_fact(key, node)
        for node in top_level:
            if node["@id"] not in consumed and node["@id"] not in self.embedded:
                self.add_entity(node)
        for inline, iri, types, data in self.untyped_inline:
            if iri in self.entities:
                self.merge_into(self.entities[iri], types, data)
                inline.clear()
                inline["@id"] = iri
        return list(self.entities.values())

    # --- FAQPage → FAQs ------------------------------------------------------------------

    def plan_faq_page(self, page: dict, by_id: dict[str, dict]) -> set[str]:
        """Each Question of the page's ``mainEntity`` becomes an FAQ; the page itself is not
        an entity. Returns the @ids of top-level Question and Answer nodes it used."""
        used: set[str] = set()
        page_pointer = source_pointer(page)
        about = None
        for prop in ("about", "mainEntityOfPage"):
            for value in schema_values(page, prop):
                if isinstance(value, dict) and value.get("@id") and "@value" not in value:
                    about = about or self.blank_iris.get(value["@id"], value["@id"])
                    described = set(value) - {"@id", SOURCE_POINTER_IRI}
                    if described and not value["@id"].startswith("_:"):
                        self.add_entity(value)  # described inline: an entity of its own
        questions = schema_values(page, "mainEntity")
        if not questions:
            self.problem(page_pointer, "a FAQPage needs mainEntity Questions to import as FAQs")
        for index, value in enumerate(questions):
            question = self.resolve(value, by_id, used)
            pointer = source_pointer(question) or join_pointer(page_pointer, "mainEntity", index)
            if "Question" not in [jsonld.shorten_iri(t) for t in question.get("@type", [])]:
                self.problem(pointer, "each mainEntity of a FAQPage must be a Question")
                continue
            asked = self.texts(question, "name", pointer) or self.texts(question, "text", pointer)
            answers = [
                self.resolve(v, by_id, used) for v in schema_values(question, "acceptedAnswer")
            ]
            if not asked:
                self.problem(pointer, "the Question has no name or text")
                continue
            replied: dict[str, str] = {}
            for answer in answers:  # one Answer with every language, or one per language
                texts = self.texts(answer, "text", source_pointer(answer) or pointer)
                replied.update({k: v for k, v in texts.items() if k not in replied})
            if not replied:
                if not any(schema_values(a, "text") for a in answers):  # else: said why
                    self.problem(pointer, "the Question has no acceptedAnswer with a text")
                continue
            key = self.faq_key(question, asked)
            workflow = self.workflow(question, pointer)
            order = index + 1
            for position in schema_values(question, "position"):
                number = position.get("@value") if isinstance(position, dict) else None
                if isinstance(number, int) and not isinstance(number, bool) and number >= 0:
                    order = number  # as Sourcebook exports an FAQ's order
            if key in self.faqs:
                planned = self.faqs[key]
                planned.question = {**asked, **planned.question}
                planned.answer = {**replied, **planned.answer}
                continue
            self.faqs[key] = PlannedFAQ(
                key=key,
                question=asked,
                answer=replied,
                order=order,
                file=self.reading.name,
                pointer=pointer,
                about_iri=about,
                workflow=workflow,
            )
        return used

    def resolve(self, value: dict, by_id: dict[str, dict], used: set[str]) -> dict:
        """A node value itself, or the top-level node a bare reference names."""
        node_id = value.get("@id")
        if node_id and not set(value) - {"@id", SOURCE_POINTER_IRI}:
            node_id = self.blank_iris.get(node_id, node_id)
            if node_id in by_id:
                used.add(node_id)
                return by_id[node_id]
        return value

    def texts(self, node: dict, prop: str, pointer: str) -> dict[str, str]:
        """Language → text of a property (untagged text is in the brand's default language)."""
        texts: dict[str, str] = {}
        for value in schema_values(node, prop):
            text = value.get("@value") if isinstance(value, dict) else None
            if not isinstance(text, str) or not text.strip():
                continue
            tag = value.get("@language")
            language = self.language(tag) if tag else self.brand.default_language
            if language is None:
                self.problem(
                    join_pointer(pointer, prop),
                    f"language {tag!r} is not one of the brand's languages "
                    f"({', '.join(self.brand.languages)})",
                )
                continue
            texts.setdefault(language, text.strip())
        return texts

    def faq_key(self, question: dict, asked: dict[str, str]) -> str:
        """Stable: from the Question's @id when it has one, else from its question text.
        An @id as Sourcebook exports FAQs, ``{base_url}/id/faq/{key}``, carries the key."""
        node_id = question.get("@id", "")
        if own := self.own_key(node_id, "faq"):
            return own
        if node_id and not node_id.startswith("_:"):
            parts = urlsplit(node_id)
            tail = parts.fragment or parts.path.rstrip("/").rsplit("/", 1)[-1]
            digest = hashlib.sha256(node_id.encode()).hexdigest()[:8]
            return "-".join(x for x in (slugify(tail)[:80], digest) if x)
        text = asked.get(self.brand.default_language) or next(iter(asked.values()))
        slug = slugify(text)[:90].strip("-")
        return slug or "q-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def own_key(self, node_id: str, kind: str) -> str | None:
        """The key in an @id ``{base_url}/id/{kind}/{key}`` of this brand, else None."""
        prefix = f"{self.brand.base_url}/id/{kind}/"
        if not node_id.startswith(prefix):
            return None
        key = node_id[len(prefix) :]
        return key if key and len(key) <= 100 and slugify(key) == key else None

    def plan_fact(self, key: str, node: dict) -> None:
        """A ``Claim`` as ``kb.statement_nodes.fact_node`` exports a fact."""
        pointer = source_pointer(node)
        workflow = self.workflow(node, pointer)
        about = next(
            (
                self.blank_iris.get(v["@id"], v["@id"])
                for v in schema_values(node, "about")
                if isinstance(v, dict) and v.get("@id")
            ),
            None,
        )
        measured = next(iter(schema_values(node, "mainEntity")), {})
        cited = next(iter(schema_values(node, "citation")), {})
        source_url = next(
            (
                v.get("@id") or v.get("@value")
                for v in schema_values(cited, "url")
                if isinstance(v, dict)
            ),
            "",
        )
        self.facts[key] = PlannedFact(
            key=key,
            statement=self.texts(node, "text", pointer),
            value=self.plain(measured, "value"),
            unit=self.plain(measured, "unitText")
            or units.unit_symbol(self.plain(measured, "unitCode")),
            unit_labels=self.tagged_texts(measured, "unitText", pointer),
            check_cues=self.plain_all(node, "keywords"),
            source_url=source_url or "",
            source_title=self.texts(cited, "name", pointer) if cited else {},
            as_of=self.plain(node, "temporalCoverage"),
            valid_until=self.plain(node, "expires") or None,
            about_iri=about,
            file=self.reading.name,
            pointer=pointer,
            workflow=workflow,
        )

    @staticmethod
    def plain(node: dict, prop: str) -> str:
        """The first value of ``prop`` that is not language-tagged."""
        for value in schema_values(node, prop):
            if isinstance(value, dict) and "@value" in value and "@language" not in value:
                return str(value["@value"])
        return ""

    @staticmethod
    def plain_all(node: dict, prop: str) -> list[str]:
        """Every value of ``prop`` that is not language-tagged, in order."""
        return [
            str(value["@value"])
            for value in schema_values(node, prop)
            if isinstance(value, dict) and "@value" in value and "@language" not in value
        ]

    def tagged_texts(self, node: dict, prop: str, pointer: str) -> dict[str, str]:
        """Language → text of the language-tagged values of ``prop`` only."""
        values = [v for v in schema_values(node, prop) if isinstance(v, dict) and "@language" in v]
        return self.texts({vocabulary.SCHEMA_PREFIXES[0] + prop: values}, prop, pointer)

    def language(self, tag: str) -> str | None:
        return brand_language(self.brand.languages, tag)

    def generated_iri(self, node: dict) -> str:
        types = [jsonld.shorten_iri(t) for t in node.get("@type", [])] or ["Thing"]
        names = node.get(jsonld.SCHEMA_VOCAB + "name") or node.get("https://schema.org/name") or []
        name = next((v.get("@value") for v in names if isinstance(v.get("@value"), str)), "")
        if name:
            stem = slugify(f"{types[0]}-{name}") or types[0].lower()
        else:
            digest = hashlib.sha256(
                json.dumps(strip_keys(node, {SOURCE_POINTER_IRI}), sort_keys=True).encode()
            ).hexdigest()[:12]
            stem = f"{types[0].lower()}-{digest}"
        iri = f"{self.brand.base_url}/id/{stem}"
        candidate, n = iri, 2
        while candidate in self.entities or candidate in self.blank_iris.values():
            candidate, n = f"{iri}-{n}", n + 1
        return candidate

    def workflow(self, node: dict, pointer: str) -> Workflow | None:
        """The workflow state a node carries (no content: ``convert_node`` leaves it out)."""
        statuses = node.get(jsonld.WORKFLOW_STATUS, [])
        go_live = node.get(jsonld.WORKFLOW_GO_LIVE, [])
        if not statuses:
            return None
        status = statuses[0].get("@value") if isinstance(statuses[0], dict) else None
        if status not in WORKFLOW_STATES:
            self.problem(
                join_pointer(pointer, jsonld.WORKFLOW_STATUS),
                f"a workflow status is one of {', '.join(WORKFLOW_STATES)}, not {status!r}",
            )
            return None
        when = go_live[0].get("@value") if go_live and isinstance(go_live[0], dict) else None
        try:
            go_live_at = datetime.fromisoformat(when) if when else None
        except (TypeError, ValueError):
            self.problem(
                join_pointer(pointer, jsonld.WORKFLOW_GO_LIVE),
                f"a go-live time is an ISO 8601 date-time, not {when!r}",
            )
            return None
        if status == "scheduled" and (go_live_at is None or go_live_at.tzinfo is None):
            self.problem(
                join_pointer(pointer, jsonld.WORKFLOW_GO_LIVE),
                "a scheduled object needs its go-live time, with its time zone",
            )
            return None
        return Workflow(status, go_live_at if status == "scheduled" else None)

    def add_entity(self, node: dict) -> None:
        pointer = source_pointer(node)
        workflow = self.workflow(node, pointer)
        types, data = self.convert_node(node, pointer)
        iri = node["@id"]
        if not types and not data:
            return  # a bare reference at the top level describes nothing
        planned = self.entities.get(iri)
        if planned is None:
            self.entities[iri] = PlannedEntity(
                iri=iri,
                types=types,
                data=data,
                file=self.reading.name,
                pointer=pointer,
                iri_generated=bool(node.get("__generated__")),
                workflow=workflow,
            )
            return
        planned.workflow = planned.workflow or workflow
        self.merge_into(planned, types, data)

    @staticmethod
    def merge_into(planned: PlannedEntity, types: list[str], data: dict) -> None:
        """JSON-LD merges node definitions that share an @id."""
        planned.types.extend(t for t in types if t not in planned.types)
        for prop, values in data.items():
            if prop in (POINTER_KEY, KEYS_KEY):
                continue
            target = planned.data.setdefault(prop, [])
            target.extend(v for v in values if v not in target)
            planned.data[KEYS_KEY].setdefault(prop, data[KEYS_KEY].get(prop, prop))

    def convert_node(self, node: dict, pointer: str) -> tuple[list[str], dict]:
        types = [jsonld.shorten_iri(t) for t in node.get("@type", [])]
        # schema.org's types first: the first is the entity's primary type (the order of
        # types means nothing in RDF).
        types.sort(key=lambda name: ":" in name)
        data: dict[str, Any] = {}
        original_keys = self.keys_by_pointer.get(pointer, [])
        key_map: dict[str, str] = {}
        workflow_keys: set[str] = set()
        for key, values in node.items():
            if key in ("@id", "@type", SOURCE_POINTER_IRI, "__generated__"):
                continue
            if key in WORKFLOW_IRIS:  # read by ``workflow``
                workflow_keys.add(find_original_key(key, key, original_keys, self.aliases) or key)
                continue
            if key.startswith("@"):
                self.problem(join_pointer(pointer, key), f"{key} is not supported here")
                continue
            name = jsonld.shorten_iri(key)
            original = find_original_key(name, key, original_keys, self.aliases)
            key_map[name] = original or name
            prop_pointer = join_pointer(pointer, original or name)
            converted = []
            for i, value in enumerate(values):
                item = self.convert_value(
                    value, join_pointer(prop_pointer, i) if len(values) > 1 else prop_pointer
                )
                if item is not None and original in self.language_maps and "@language" in value:
                    # Values from a language map are found in the input under their language.
                    item[POINTER_KEY] = join_pointer(prop_pointer, value["@language"])
                converted.append(item)
            data[name] = [v for v in converted if v is not None]
        used = set(key_map.values()) | workflow_keys
        for key in original_keys:
            if key not in used and not key.startswith("@"):
                self.problem(
                    join_pointer(pointer, key),
                    f"the term {key!r} is not defined by the @context, so JSON-LD would drop it",
                )
        data[POINTER_KEY] = pointer
        data[KEYS_KEY] = key_map
        return types, data

    def convert_value(self, value: dict, pointer: str) -> dict | None:
        if "@value" in value:
            converted = dict(value)
            if "@type" in converted:
                converted["@type"] = jsonld.shorten_iri(converted["@type"])
            if "@language" in converted:
                # The brand's language the tag falls under (en-CA → en): see brand_language.
                converted["@language"] = (
                    self.language(converted["@language"]) or converted["@language"]
                )
            return converted
        if "@list" in value:
            return {
                "@list": [
                    self.convert_value(item, join_pointer(pointer, i))
                    for i, item in enumerate(value["@list"])
                ]
            }
        node_id = value.get("@id")
        has_content = any(k for k in value if k not in ("@id", SOURCE_POINTER_IRI))
        if node_id is not None and not has_content:
            if node_id.startswith("_:"):
                if node_id in self.embedded:
                    node = self.embedded[node_id]
                    types, data = self.convert_node(node, source_pointer(node) or pointer)
                    return {"@type": types, **data} if types else data
                if node_id in self.blank_iris:
                    return {"@id": self.blank_iris[node_id]}
                self.problem(pointer, f"reference to blank node {node_id}, which is not described")
                return None
            return {"@id": node_id}
        if node_id is not None and not node_id.startswith("_:") and not value.get("@type"):
            # An untyped node with an @id ("item": {"@id": url, "name": "Home"}, as WooCommerce
            # writes breadcrumbs) says too little to be an entity (an entity has a type): it is
            # kept in place, the same RDF, unless the file describes that @id (then merged).
            types, data = self.convert_node(value, source_pointer(value) or pointer)
            inline = {"@id": node_id, **data}
            self.untyped_inline.append((inline, node_id, types, data))
            return inline
        if node_id is not None and not node_id.startswith("_:"):
            # A nested node with its own @id is an entity of its own, linked by reference.
            self.add_entity(value)
            return {"@id": node_id}
        types, data = self.convert_node(value, source_pointer(value) or pointer)
        return {"@type": types, **data} if types else data


def embeddable_blank_nodes(top_level: list[dict]) -> dict[str, dict]:
    """Top-level blank nodes that are referenced exactly once, from a node that is itself
    kept: in flattened JSON-LD (as RDF libraries write it, ``"weight": {"@id": "_:b0"}``
    with ``_:b0`` beside) they are nested values, and are imported as such rather than as
    entities of their own. A blank node referenced from nowhere, several times or only
    within a cycle of blank nodes stays an entity (with a generated IRI)."""
    counts: dict[str, int] = {}
    for node in top_level:
        for blank_id in blank_references(node):
            counts[blank_id] = counts.get(blank_id, 0) + 1
    candidates = {
        node["@id"]: node
        for node in top_level
        if str(node.get("@id", "")).startswith("_:") and counts.get(node["@id"]) == 1
    }
    reached: dict[str, dict] = {}
    stack = [node for node in top_level if node.get("@id") not in candidates]
    while stack:
        for blank_id in blank_references(stack.pop()):
            if blank_id in candidates and blank_id not in reached:
                reached[blank_id] = candidates[blank_id]
                stack.append(candidates[blank_id])
    return reached


def blank_references(node: dict) -> Iterator[str]:
    """The blank node ids that ``node`` (expanded) refers to, nested values included."""
    stack: list[Any] = [v for k, v in node.items() if not k.startswith("@") or k == "@list"]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            node_id = value.get("@id")
            if isinstance(node_id, str) and not set(value) - {"@id", SOURCE_POINTER_IRI}:
                if node_id.startswith("_:"):
                    yield node_id
                continue
            stack.extend(v for k, v in value.items() if not k.startswith("@") or k == "@list")


def schema_values(node: dict, prop: str) -> list:
    """The expanded values of a schema.org property (either spelling of the vocabulary)."""
    return [value for prefix in vocabulary.SCHEMA_PREFIXES for value in node.get(prefix + prop, [])]


def is_claim(node: dict) -> bool:
    return "Claim" in [jsonld.shorten_iri(t) for t in node.get("@type", [])]


def is_faq_page(node: dict) -> bool:
    return "FAQPage" in [jsonld.shorten_iri(t) for t in node.get("@type", [])]


def source_pointer(node: dict) -> str:
    tag = node.get(SOURCE_POINTER_IRI)
    if tag:
        return tag[0].get("@value", "")
    return ""


def find_original_key(
    name: str, iri: str, original_keys: list[str], aliases: dict[str, str]
) -> str | None:
    for key in original_keys:
        if key in (name, iri):
            return key
    for key in original_keys:
        # A compact IRI whose prefix the @context defines: "gs1:netContent", "schema:gtin"
        # (first, as "gs1:gtin" and "schema:gtin" may sit side by side).
        prefix, colon, suffix = key.partition(":")
        if colon and prefix in aliases and aliases[prefix] + suffix == iri:
            return key
    for key in original_keys:
        if key.endswith(":" + name) or aliases.get(key) == name:
            return key
    return None


def strip_keys(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: strip_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [strip_keys(v, keys) for v in value]
    return value


def strip_source_markers(data: dict) -> None:
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            value.pop(POINTER_KEY, None)
            value.pop(KEYS_KEY, None)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def problems_as_text(problems: Iterable[Problem | ImportProblem]) -> str:
    return "\n".join(str(p) for p in problems)
