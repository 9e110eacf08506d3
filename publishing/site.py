"""What a brand's published site consists of: live content, URLs, pages and their inputs.

Only small metadata per entity is held in memory (identifiers, types, names, revision ids,
references); an entity's full content is read from its live revision when a page that
shows it is rendered.
"""

from __future__ import annotations

import functools
import hashlib
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

import orjson

from kb import vocabulary
from kb.jsonld import localize
from kb.jsontext import json_bytes, json_text
from kb.models import Brand, Revision
from publishing.locks import fork_guard
from publishing.render.text import one_line
from publishing.site_state import SiteState, site_state_load

# Entities of these types get a page of their own, in this section of the site.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("Product", "products"),
    ("ProductGroup", "products"),
    ("LocalBusiness", "stores"),
    ("Person", "people"),
    ("Event", "events"),
    ("Service", "services"),
    ("HowTo", "guides"),
    ("Recipe", "recipes"),
    ("Article", "articles"),
    ("JobPosting", "jobs"),
    ("Course", "courses"),
    ("Brand", "brands"),
    ("Organization", "organizations"),
)

# A node without these properties is left out, together with every reference to it.
REQUIRED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("LocalBusiness", ("name", "address")),
    ("Event", ("name", "startDate")),
    ("JobPosting", ("title", "datePosted")),
    ("Thing", ("name",)),
)


def section_of(types: Iterable[str]) -> str | None:
    return section_of_types(tuple(types))


def missing_required(types: Iterable[str], data: dict) -> list[str]:
    return [p for p in required_of_types(tuple(types)) if not data.get(p)]


# A catalog has few distinct lists of types: asking the vocabulary once for each, not for
# each of 100,000 entities, saved a second of every publish.
@functools.lru_cache(maxsize=4096)
def section_of_types(types: tuple[str, ...]) -> str | None:
    for type_name, section in SECTIONS:
        if any(vocabulary.is_subclass(t, type_name) for t in types):
            return section
    return None


@functools.lru_cache(maxsize=4096)
def required_of_types(types: tuple[str, ...]) -> tuple[str, ...]:
    for type_name, required in REQUIRED:
        if any(vocabulary.is_subclass(t, type_name) for t in types):
            return required
    return ()


@dataclass(slots=True)
class LiveEntity:
    """What a build holds of each live entity (at 100,000 products, 100,000 of them): its
    lists are tuples, equal ones held once, and its texts by language are flat tuples
    (language, text, language, text, ...): as lists and dicts they held 55 MB more."""

    pk: int
    iri: str
    slug: str
    types: tuple[str, ...]
    revision_id: int
    published_at: datetime
    names: tuple[str | None, ...]  # see by_language
    # The IRIs it refers to that are the brand's own (published or hidden).
    refs: tuple[str, ...]
    missing: Sequence[str]
    section: str | None = None
    # Its description on one line (200 characters at most) per site language: what pages
    # and llms.txt that list the entity show, without reading its snapshot again.
    summaries: tuple[str, ...] = ()
    # The paths under the brand's media/ that it links (its images, mostly).
    media: tuple[str, ...] = ()

    def name(self, language: str, default: str) -> str:
        names = self.names
        for candidate in (language, default, None):
            for i in range(0, len(names), 2):
                if names[i] == candidate and names[i + 1]:
                    return names[i + 1]
        return names[1] if names else self.slug

    def summary(self, language: str) -> str:
        summaries = self.summaries
        for i in range(0, len(summaries), 2):
            if summaries[i] == language:
                return summaries[i + 1]
        return ""


def by_language(texts: dict) -> tuple:
    """``{language: text}`` as a LiveEntity holds it: flat (language, text, ...)."""
    return tuple(item for language, text in texts.items() for item in (language, text))


@dataclass(slots=True)
class LiveStatement:
    """A live fact or FAQ: its published snapshot, held as its JSON text.

    Parsed, the snapshots of 40,000 statements held 130 MB for the whole build; as text
    they hold a quarter of that, and a page parses those it shows.
    """

    pk: int
    key: str
    revision_id: int
    published_at: datetime
    about_iri: str | None
    order: int
    snapshot: bytes

    @property
    def content(self) -> dict:
        return orjson.loads(self.snapshot)


@dataclass(slots=True)
class Page:
    kind: str  # home, entity, section, faq, facts
    language: str
    path: str  # the directory URL path, "" for the home page, "products/x/" for an entity
    main: list[str] = field(default_factory=list)  # IRIs of the entities the page is about
    section: str | None = None
    page_number: int = 1

    @property
    def file(self) -> str:
        return f"{self.path}index.html"


def walk_refs(value, found: list[str]) -> None:
    if isinstance(value, list):
        for item in value:
            walk_refs(item, found)
    elif isinstance(value, dict):
        if "@id" in value and len(value) == 1:
            found.append(value["@id"])
            return
        for key, item in value.items():
            if not key.startswith("@"):
                walk_refs(item, found)


def names_of(data: dict) -> dict[str | None, str]:
    names: dict[str | None, str] = {}
    for value in data.get("name", []):
        if isinstance(value, dict) and isinstance(value.get("@value"), str):
            names.setdefault(value.get("@language"), value["@value"])
    return names


def text_of(content: dict, prop: str, language: str, default: str) -> str:
    """A language-tagged property of a snapshot as text in ``language`` (or the default)."""
    value = localize(content["data"].get(prop, []), language, default)
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), "")
    return value if isinstance(value, str) else ""


def summaries_of(content: dict, languages: list[str], default: str) -> dict[str, str]:
    return {
        language: one_line(text_of(content, "description", language, default), 200)
        for language in languages
    }


@dataclass
class SiteContent:
    brand: Brand
    entities: dict[str, LiveEntity]
    facts: list[LiveStatement]
    faqs: list[LiveStatement]
    organization_iri: str
    left_out: dict[str, list[str]]  # IRI → the required properties it is missing
    # The brand's own IRIs that are not published (drafts, unpublished, left out): references
    # to them are dropped. References to anything else (images, sameAs pages) are kept.
    hidden: frozenset[str] = frozenset()
    # The paths under the brand's media/ that the published content links, and the alt
    # texts by language of those uploaded with some (see publishing.media).
    media_paths: frozenset[str] = frozenset()
    media_alt: dict[str, dict[str, str]] = field(default_factory=dict)
    # What was read, to be kept with the release (see publishing.site_state).
    state: SiteState | None = field(default=None, compare=False)

    @property
    def languages(self) -> list[str]:
        return list(self.brand.languages)

    @property
    def default_language(self) -> str:
        return self.brand.default_language

    @functools.cached_property
    def section_counts(self) -> dict[str, int]:
        """How many entities each section lists (the organization is the home page)."""
        counts: dict[str, int] = {}
        for entity in self.entities.values():
            if entity.section and entity.iri != self.organization_iri:
                counts[entity.section] = counts.get(entity.section, 0) + 1
        return dict(sorted(counts.items()))

    def entity_refs(self, iri: str) -> list[str]:
        entity = self.entities.get(iri)
        return [r for r in entity.refs if r in self.entities] if entity else []


def entity_deriver(brand: Brand) -> Callable[[dict, str], list]:
    """What a build keeps of a live entity's revision: [IRI, slug, types, names (flat, see
    by_language), references, missing required properties, summaries (flat), media]."""
    linked_media = media_linker(brand)

    def derive(content: dict, raw: str) -> list:
        data = content.get("data", {})
        refs: list[str] = []
        walk_refs(data, refs)
        types = content.get("types", [])
        return [
            content["iri"],
            content["slug"],
            types,
            by_language(names_of(data)),
            list(dict.fromkeys(refs)),
            missing_required(types, data),
            by_language(summaries_of(content, brand.languages, brand.default_language)),
            linked_media(raw),
        ]

    return derive


def statement_derive(content: dict, raw: str) -> list:
    """What a build keeps of a live fact's or FAQ's revision: [key, the pk of the entity it
    is about, its order, its snapshot's JSON]."""
    return [content["key"], content.get("about"), content.get("order", 0), raw]


def site_content_load(*, brand: Brand, previous_state: dict | None = None) -> SiteContent:
    """The brand's live content; from a previous release's ``site_state`` (see
    publishing.site_state), only what changed since is read from the revisions."""
    entities: dict[str, LiveEntity] = {}
    left_out: dict[str, list[str]] = {}
    # Equal types, languages, references (every product's brand) and lists of them are held
    # once (at 100,000 products, 23 MB less for the strings alone).
    shared: dict = {}
    once = shared.setdefault
    moments: dict[str | None, datetime | None] = {None: None}
    iri_by_pk: dict[int, str] = {}
    facts: list[LiveStatement] = []
    faqs: list[LiveStatement] = []

    def moment(published: str | None) -> datetime | None:
        if published not in moments:
            moments[published] = datetime.fromisoformat(published)
        return moments[published]

    def entity_take(record: list) -> None:
        pk, revision_id, published, iri, slug, types, names, refs, missing, summaries, media = (
            record
        )
        types = tuple(once(t, t) for t in types)
        entity = LiveEntity(
            pk=pk,
            iri=iri,
            slug=slug,
            types=once(types, types),
            revision_id=revision_id,
            published_at=moment(published),
            names=tuple(once(n, n) if i % 2 == 0 else n for i, n in enumerate(names)),
            refs=tuple(refs),
            missing=tuple(missing),
            summaries=tuple(once(n, n) if i % 2 == 0 else n for i, n in enumerate(summaries)),
            media=tuple(media),
        )
        if entity.missing:
            left_out[entity.iri] = list(entity.missing)
            return
        entity.section = section_of(entity.types)
        entities[iri] = entity
        iri_by_pk[pk] = iri

    def statement_taker(bucket: list[LiveStatement]) -> Callable[[list], None]:
        def take(record: list) -> None:
            pk, revision_id, published, key, about, order, raw = record
            if about is not None and about not in iri_by_pk:
                return  # about an entity that is not published
            bucket.append(
                LiveStatement(
                    pk=pk,
                    key=key,
                    revision_id=revision_id,
                    published_at=moment(published),
                    about_iri=iri_by_pk.get(about),
                    order=order,
                    snapshot=raw.encode(),
                )
            )

        return take

    state = site_state_load(
        brand=brand,
        previous=previous_state,
        derive_entity=entity_deriver(brand),
        derive_statement=statement_derive,
        take={"entity": entity_take, "fact": statement_taker(facts), "faq": statement_taker(faqs)},
    )
    hidden = frozenset({*state.unpublished_iris.values(), *left_out})
    # References to anything but the brand's entities (images, other sites) are not needed
    # once the graph's nodes are read from the revisions (see SiteContent.entity_refs).
    for entity in entities.values():
        refs = tuple(r for r in entity.refs if r in entities or r in hidden)
        entity.refs = once(refs, refs)
    faqs.sort(key=lambda s: (s.order, s.key))
    facts.sort(key=lambda s: s.key)
    linked_media = media_linker(brand)
    media_paths = frozenset(
        path
        for linker in (
            (e.media for e in entities.values()),
            (linked_media(s.snapshot.decode()) for s in (*facts, *faqs)),
        )
        for paths in linker
        for path in paths
    )
    return SiteContent(
        brand=brand,
        entities=entities,
        facts=facts,
        faqs=faqs,
        organization_iri=organization_iri(brand, entities),
        left_out=left_out,
        hidden=hidden,
        media_paths=media_paths,
        media_alt=media_alt_texts(brand, media_paths),
        state=state,
    )


def media_linker(brand: Brand) -> Callable[[str], tuple[str, ...]]:
    """A function giving the paths under the brand's ``{base_url}/media/`` that a snapshot's
    JSON links, wherever in it they are."""
    prefix = f"{brand.base_url}/media/"
    pattern = re.compile(re.escape(prefix) + r'([^"\\\s?#]+)')

    def linked(raw: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(pattern.findall(raw))) if prefix in raw else ()

    return linked


def media_alt_texts(brand: Brand, paths: frozenset[str]) -> dict[str, dict[str, str]]:
    from publishing.models import MediaAsset

    if not paths:
        return {}
    rows = MediaAsset.objects.filter(brand=brand, path__in=paths).values_list("path", "alt")
    return {path: alt for path, alt in rows.iterator() if alt}


def organization_iri(brand: Brand, entities: dict[str, LiveEntity]) -> str:
    """The brand's own Organization: ``{base}/#organization`` or its first Organization."""
    conventional = f"{brand.base_url}/#organization"
    if conventional in entities:
        return conventional
    for entity in entities.values():
        if any(vocabulary.is_subclass(t, "Organization") for t in entity.types) and not any(
            vocabulary.is_subclass(t, "LocalBusiness") for t in entity.types
        ):
            return entity.iri
    return conventional  # synthesized from the brand's name when there is none


# --- URLs ----------------------------------------------------------------------------------


def language_prefix(site: SiteContent, language: str) -> str:
    return "" if language == site.default_language else f"{language}/"


def entity_path(site: SiteContent, entity: LiveEntity, language: str) -> str:
    return f"{language_prefix(site, language)}{entity.section}/{entity.slug}/"


def absolute_url(brand: Brand, path: str) -> str:
    return f"{brand.base_url}/{url_path(path)}"


def url_path(path: str) -> str:
    """A site path as it is in the site's URLs: percent-encoded but for ``/-._~``."""
    return quote(path, safe="/-._~")


def twin_path(page_file: str) -> str:
    return f"{page_file}.md"


SECTION_PAGE_SIZE = 500
# The FAQ and facts pages list this many questions or facts each: at 100,000 products one
# facts page of 30,000 facts was 30 MB (Googlebot reads the first 15 MB of a page).
STATEMENT_PAGE_SIZE = 500
# Pages that list entities or statements, a page of them at a time.
LISTING_KINDS = ("section", "faq", "facts")


def page_count(total: int, size: int) -> int:
    return max(1, -(-total // size))


def numbered_path(first: str, number: int) -> str:
    """The path of page ``number`` of a listing whose first page is at ``first``."""
    return first if number == 1 else f"{first}page/{number}/"


def statements_on(statements: list[LiveStatement], number: int) -> list[LiveStatement]:
    """The facts or FAQs on page ``number`` of their listing."""
    return statements[(number - 1) * STATEMENT_PAGE_SIZE : number * STATEMENT_PAGE_SIZE]


def listing_pages(site: SiteContent, page: Page) -> int:
    """How many pages the listing that ``page`` is part of has (1 for other pages)."""
    if page.kind == "section":
        return page_count(site.section_counts.get(page.section, 0), SECTION_PAGE_SIZE)
    if page.kind in ("faq", "facts"):
        statements = site.faqs if page.kind == "faq" else site.facts
        return page_count(len(statements), STATEMENT_PAGE_SIZE)
    return 1


def listing_path(site: SiteContent, page: Page, language: str) -> str:
    """The path of the first page of the listing ``page`` is part of, in ``language``."""
    name = page.section if page.kind == "section" else page.kind
    return f"{language_prefix(site, language)}{name}/"


@dataclass(slots=True)
class EntityPages:
    """The pages of a section's entities in one language, in order."""

    language: str
    section: str
    members: list[LiveEntity]
    prefix: str  # the path every page of theirs starts with, see entity_path

    def page(self, entity: LiveEntity) -> Page:
        return Page(
            "entity", self.language, f"{self.prefix}{entity.slug}/", [entity.iri], self.section
        )


class SitePages(Sequence[Page]):
    """Every HTML page of the site, per language, in order: the home page, the FAQ and facts
    pages, then each section's pages and its entities' pages.

    An entity's page is made when it is asked for, not held: at 100,000 products the
    200,000 pages held 47 MB for the whole build, and forked render workers copied those
    they read.
    """

    def __init__(self, site: SiteContent):
        self.site = site
        self.runs: list[Page | EntityPages] = []
        by_section: dict[str, list[LiveEntity]] = defaultdict(list)
        for entity in site.entities.values():
            if entity.section and entity.iri != site.organization_iri:
                by_section[entity.section].append(entity)
        sections = {
            section: sorted(members, key=lambda e: e.slug)
            for section, members in sorted(by_section.items())
        }
        add = self.runs.append
        for language in site.languages:
            prefix = language_prefix(site, language)
            add(Page(kind="home", language=language, path=prefix, main=[site.organization_iri]))
            for kind, statements in (("faq", site.faqs), ("facts", site.facts)):
                if not statements:
                    continue
                for number in range(1, page_count(len(statements), STATEMENT_PAGE_SIZE) + 1):
                    path = numbered_path(f"{prefix}{kind}/", number)
                    add(Page(kind=kind, language=language, path=path, page_number=number))
            for section, members in sections.items():
                for number in range(1, page_count(len(members), SECTION_PAGE_SIZE) + 1):
                    chunk = members[(number - 1) * SECTION_PAGE_SIZE : number * SECTION_PAGE_SIZE]
                    add(
                        Page(
                            kind="section",
                            language=language,
                            path=numbered_path(f"{prefix}{section}/", number),
                            main=[e.iri for e in chunk],
                            section=section,
                            page_number=number,
                        )
                    )
                add(EntityPages(language, section, members, f"{prefix}{section}/"))
        # Where each run starts, for finding the run of a page by its index.
        self.starts: list[int] = []
        count = 0
        for run in self.runs:
            self.starts.append(count)
            count += len(run.members) if isinstance(run, EntityPages) else 1
        self.count = count

    def __len__(self) -> int:
        return self.count

    def structure(self) -> list:
        """What decides the list of pages, their paths and what each listing lists: equal
        for two sites, their pages are the same, in the same order."""
        shapes: list = []
        for run in self.runs:
            if isinstance(run, Page):
                shapes.append([run.kind, run.language, run.path, run.main])
            else:
                shapes.append([run.language, run.prefix, [(e.slug, e.iri) for e in run.members]])
        return shapes

    @functools.cached_property
    def numbers(self) -> dict[tuple, int]:
        """The index of each listing or home page, by (kind, language, section, number), and
        where each section's entity pages start, by ("entity", language, section)."""
        found: dict[tuple, int] = {}
        for start, run in zip(self.starts, self.runs, strict=True):
            if isinstance(run, Page):
                found[(run.kind, run.language, run.section, run.page_number)] = start
            else:
                found[("entity", run.language, run.section)] = start
        return found

    @functools.cached_property
    def positions(self) -> dict[str, int]:
        """Each listed entity's place in its section, by IRI."""
        found: dict[str, int] = {}
        for run in self.runs:
            if isinstance(run, EntityPages) and run.language == self.site.default_language:
                found.update((e.iri, i) for i, e in enumerate(run.members))
        return found

    def showing_entity(self, iri: str) -> list[int]:
        """The indexes of the pages that are about entity ``iri`` (the home page for the
        organization), in every language."""
        site = self.site
        if iri == site.organization_iri:
            return [self.numbers[("home", lang, None, 1)] for lang in site.languages]
        entity = site.entities.get(iri)
        if entity is None or not entity.section:
            return []
        position = self.positions[iri]
        return [
            self.numbers[("entity", lang, entity.section)] + position for lang in site.languages
        ]

    def listing_entity(self, iri: str) -> list[int]:
        """The indexes of the section pages that list entity ``iri``, in every language."""
        entity = self.site.entities.get(iri)
        if entity is None or iri not in self.positions:
            return []
        number = self.positions[iri] // SECTION_PAGE_SIZE + 1
        return [
            self.numbers[("section", lang, entity.section, number)] for lang in self.site.languages
        ]

    def of_kind(self, kind: str) -> list[int]:
        """The indexes of every FAQ or facts page (``kind``), in every language."""
        return [i for (k, *_), i in self.numbers.items() if k == kind]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(index)
        number = bisect_right(self.starts, index) - 1
        run = self.runs[number]
        if isinstance(run, Page):
            return run
        return run.page(run.members[index - self.starts[number]])

    def __iter__(self) -> Iterator[Page]:
        for _, page in self.numbered():
            yield page

    def between(self, numbers: range) -> Iterator[Page]:
        """The pages ``numbers`` (consecutive), in order."""
        if not numbers:
            return
        number = bisect_right(self.starts, numbers.start) - 1
        index = numbers.start
        while index < numbers.stop and number < len(self.runs):
            run, start = self.runs[number], self.starts[number]
            if isinstance(run, Page):
                yield run
                index += 1
            else:
                for entity in run.members[index - start : numbers.stop - start]:
                    yield run.page(entity)
                    index += 1
            number += 1

    def numbered(self, language: str | None = None) -> Iterator[tuple[int, Page]]:
        """(index, page) of every page, or of those in ``language``."""
        for start, run in zip(self.starts, self.runs, strict=True):
            if language is not None and run.language != language:
                continue
            if isinstance(run, Page):
                yield start, run
            else:
                page = run.page
                for number, entity in enumerate(run.members, start):
                    yield number, page(entity)


def site_pages(site: SiteContent) -> SitePages:
    """Every HTML page of the site, per language (see SitePages)."""
    return SitePages(site)


def digest(*parts: object) -> str:
    """A key of ``parts``: their JSON (fast: the repr of a listing's 100,000 rows was a
    second of each publish), with anything JSON lacks by its repr."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(json_bytes(part, default=repr))
        sha.update(b"\x00")
    return sha.hexdigest()


def revisions_by_id(ids: Iterable[int]) -> dict[int, dict]:
    ids = list(set(ids))
    found: dict[int, dict] = {}
    for start in range(0, len(ids), 1000):
        rows = (
            Revision.objects.filter(pk__in=ids[start : start + 1000])
            .annotate(raw=json_text("content"))
            .values_list("pk", "raw")
        )
        with fork_guard:  # a builder may be forking render workers meanwhile
            rows = list(rows)
        found.update((pk, orjson.loads(raw)) for pk, raw in rows)
    return found
