"""Answers from the published site: what /ask (NLWeb) and the MCP server find for a question.

Only what the brand's live release publishes is answered, in the words and JSON-LD it
publishes. Candidates come from the database's own text search (``search_text``, with
pg_trgm's index on PostgreSQL; see kb.search) over published objects; each is then read back
from the release — its node in the JSON-LD of the page that shows it — and scored on that text
alone, so a working copy's unpublished words neither find nor show anything, and every URL
returned is a page of the release.

Queries are natural language in any of the brand's languages: words of two or more letters
that are not English function words, and runs of Chinese characters as overlapping pairs
(as Lucene's CJK analyser does: 西湖龙井 → 西湖, 湖龙, 龙井), since Chinese has no spaces
to split on. A result must contain at least one of them; more, and in its name, rank higher.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kb.models import FAQ, Brand, Entity, Fact
from kb.search import normalize
from kb.statement_nodes import fact_iri, faq_iri
from publishing.models import Release, ReleaseArtifact
from publishing.render.pages import page_jsonld
from publishing.selectors import release_live
from publishing.site import SECTIONS, section_of
from publishing.store import artifact_read

# What can be searched: the sections of entity pages, and the facts and FAQs.
ENTITY_KINDS = tuple(dict.fromkeys(section for _, section in SECTIONS))
ANSWER_KINDS = (*ENTITY_KINDS, "facts", "faq")

# English words that say nothing about what is asked for.
STOPWORDS = frozenset((
    "a", "an", "and", "any", "are", "as", "at", "be", "about", "by", "can", "could", "do",
    "does", "did", "for", "from", "get", "has", "have", "how", "i", "if", "in", "into",
    "is", "it", "its", "me", "my", "of", "on", "or", "our", "so", "than", "that", "the",
    "their", "them", "there", "these", "they", "this", "to", "us", "was", "we", "were",
    "what", "when", "where", "which", "who", "whom", "why", "will", "with", "would", "you",
    "your", "tell", "please", "show", "give", "find", "list", "sell", "sold", "offer",
    "much", "many",
))  # fmt: skip
# Chinese pairs that ask rather than name (什么 "what", 多少 "how many", 哪些 "which" …).
HAN_STOPWORDS = frozenset((
    "什么", "多少", "哪些", "哪个", "哪里", "哪儿", "怎么", "怎样", "如何",
    "是否", "可以", "有没", "没有", "请问", "我们", "你们", "他们", "是什",
    "么时", "时候", "一下", "介绍", "告诉",
))  # fmt: skip
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"[^\W_](?:[\w.\-]*[^\W_])?")
MAX_TERMS = 16
# Candidates read per term from the database: a rare term's objects are all read, a common
# term's (tea, 茶) fill the rest.
CANDIDATES_PER_TERM = 40
# Listing pages searched for a question without a subject (FAQ pages of 500 questions).
MAX_LISTING_PAGES = 20

# A match in the name counts this many times one elsewhere.
NAME_WEIGHT = 3


class AnswersUnavailable(Exception):
    """The brand has nothing published to answer from."""


@dataclass
class Answer:
    """One result, as NLWeb's ``/ask`` returns it (``as_result``)."""

    url: str
    name: str
    description: str
    kind: str
    score: int
    schema_object: dict
    language: str

    def as_result(self, site: str) -> dict:
        return {
            "url": self.url,
            "name": self.name,
            "site": site,
            "score": self.score,
            "description": self.description,
            "schema_object": self.schema_object,
        }


@dataclass
class AnswerSearch:
    release: Release
    language: str
    terms: list[str]
    answers: list[Answer] = field(default_factory=list)


def query_terms(query: str) -> list[str]:
    """The words of a question to look for (see the module note), normalised as kb.search
    normalises the text it searches."""
    text = normalize(query)
    terms: list[str] = []
    for run in HAN.findall(text):
        pairs = [run] if len(run) <= 2 else [run[i : i + 2] for i in range(len(run) - 1)]
        terms.extend(pair for pair in pairs if pair not in HAN_STOPWORDS)
    for word in WORD.findall(HAN.sub(" ", text)):
        if (len(word) >= 2 or word.isdigit()) and word not in STOPWORDS:
            terms.append(word)
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def query_language(brand: Brand, query: str, requested: str = "") -> str:
    """The language to answer in: the one asked for if the brand publishes it, else Chinese
    for a question written in Chinese (when the brand publishes a Chinese language), else
    the brand's default."""
    languages = list(brand.languages or ["en"])
    if requested:
        for language in languages:
            if language.lower() == requested.lower():
                return language
        prefix = requested.split("-")[0].lower()
        for language in languages:
            if language.split("-")[0].lower() == prefix:
                return language
    if HAN.search(query):
        for language in languages:
            if language.lower().startswith("zh"):
                return language
    return languages[0]


def answers_search(
    *,
    brand: Brand,
    query: str,
    language: str = "",
    kinds: Iterable[str] = ANSWER_KINDS,
    limit: int = 10,
) -> AnswerSearch:
    """The published objects that answer ``query`` best, best first (see the module note)."""
    release = release_live(brand=brand)
    if release is None:
        raise AnswersUnavailable(f"{brand.name} has not published a release yet.")
    language = query_language(brand, query, language)
    search = AnswerSearch(release=release, language=language, terms=query_terms(query))
    if not search.terms:
        return search
    kinds = set(kinds)
    reader = ReleasePages(brand=brand, release=release, language=language)
    candidates = _candidates(brand, search.terms, kinds)
    reader.prefetch(candidates)
    found: list[Answer] = []
    for spec in candidates:
        answer = reader.answer(spec, search.terms)
        if answer is not None:
            found.append(answer)
    found.sort(key=lambda a: (-a.score, len(a.name), a.name))
    search.answers = found[:limit]
    return search


def answer_entity(*, brand: Brand, iri: str, language: str = "") -> Answer | None:
    """An entity as its page in the live release publishes it, or None when no page does."""
    release = release_live(brand=brand)
    if release is None:
        raise AnswersUnavailable(f"{brand.name} has not published a release yet.")
    row = (
        Entity.objects.filter(brand=brand, iri=iri, live_revision__isnull=False)
        .values("iri", "slug", "types")
        .first()
    )
    if row is None:
        return None
    reader = ReleasePages(
        brand=brand, release=release, language=query_language(brand, "", language)
    )
    return reader.answer(_entity_spec(brand, row), [])


# --- candidates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    kind: str
    iri: str  # the node's @id on its page
    pages: tuple[str, ...]  # site paths (without language prefix) of the pages that may show it


def _candidates(brand: Brand, terms: list[str], kinds: set[str]) -> list[Candidate]:
    found: dict[str, Candidate] = {}
    if kinds & set(ENTITY_KINDS):
        rows = _matching(Entity, brand, terms).values("iri", "slug", "types")
        for row in rows:
            spec = _entity_spec(brand, row)
            if spec is not None and spec.kind in kinds:
                found.setdefault(spec.iri, spec)
    if "facts" in kinds:
        rows = _matching(Fact, brand, terms).values(
            "key", "about__iri", "about__slug", "about__types"
        )
        for row in rows:
            about = _entity_spec(
                brand, {"iri": row["about__iri"], "slug": row["about__slug"], "types": row["about__types"]}
            )  # fmt: skip
            if about is not None:
                iri = fact_iri(brand, row["key"])
                found.setdefault(iri, Candidate("facts", iri, about.pages))
    if "faq" in kinds:
        rows = _matching(FAQ, brand, terms).values(
            "key", "about__iri", "about__slug", "about__types"
        )
        for row in rows:
            about = None
            if row["about__iri"]:
                about = _entity_spec(
                    brand, {"iri": row["about__iri"], "slug": row["about__slug"], "types": row["about__types"]}
                )  # fmt: skip
            pages = about.pages if about else ("faq/",)
            iri = faq_iri(brand, row["key"])
            found.setdefault(iri, Candidate("faq", iri, pages))
    return list(found.values())


def _matching(model, brand: Brand, terms: list[str]):
    """The published objects whose search text holds any of the terms: ``CANDIDATES_PER_TERM``
    for each term, so that a rare word's few are not crowded out by a common one's many."""
    published = model.objects.filter(brand=brand, live_revision__isnull=False)
    pks: dict[int, None] = {}
    for term in terms:
        matching = published.filter(search_text__contains=term).order_by("pk")
        pks.update(dict.fromkeys(matching.values_list("pk", flat=True)[:CANDIDATES_PER_TERM]))
    return model.objects.filter(pk__in=list(pks)).order_by("pk")


def _entity_spec(brand: Brand, row: dict) -> Candidate | None:
    """Where an entity is published: the home page for the brand's own organization, else
    its section's page; None for an entity without a page (an Offer, a Place …)."""
    if row["iri"] == f"{brand.base_url}/#organization":
        return Candidate("organizations", row["iri"], ("",))
    section = section_of(row["types"] or [])
    if section is None:
        return None
    return Candidate(section, row["iri"], (f"{section}/{row['slug']}/",))


# --- reading the release -------------------------------------------------------------------


class ReleasePages:
    """The pages of one release in one language, read once each, as JSON-LD nodes by @id."""

    def __init__(self, *, brand: Brand, release: Release, language: str):
        self.brand = brand
        self.release = release
        self.language = language
        default = (brand.languages or ["en"])[0]
        self.prefix = "" if language == default else f"{language}/"
        self.nodes: dict[str, dict[str, dict]] = {}  # page path → {@id: node}
        self.hashes: dict[str, str | None] = {}  # page path → its HTML's sha256 (None: absent)

    def prefetch(self, candidates: Iterable[Candidate]) -> None:
        """Look up the pages of all the candidates at once."""
        pages = {f"{self.prefix}{page}index.html" for c in candidates for page in c.pages}
        rows = (
            ReleaseArtifact.objects.in_release(self.release)
            .filter(path__in=sorted(pages))
            .values_list("path", "sha256")
        )
        found = dict(rows)
        for path in pages:
            self.hashes[path.removesuffix("index.html")] = found.get(path)

    def answer(self, candidate: Candidate | None, terms: list[str]) -> Answer | None:
        if candidate is None:
            return None
        for page in self._pages_of(candidate):
            node = self._nodes(page).get(candidate.iri)
            if node is None:
                continue
            name, description, searched = _texts_of(node)
            score = _score(terms, name, searched) if terms else 100
            if score == 0:
                return None
            url = node.get("url") if candidate.kind in ("facts", "faq") else None
            return Answer(
                url=url or f"{self.brand.base_url}/{page}",
                name=name,
                description=description,
                kind=candidate.kind,
                score=score,
                schema_object={"@context": "https://schema.org", **node},
                language=self.language,
            )
        return None

    def _pages_of(self, candidate: Candidate) -> Iterable[str]:
        for page in candidate.pages:
            yield f"{self.prefix}{page}"
            if page == "faq/":  # the FAQ listing continues on faq/page/2/ …
                for number in range(2, MAX_LISTING_PAGES + 1):
                    path = f"{self.prefix}faq/page/{number}/"
                    if not self._published(path):
                        break
                    yield path

    def _published(self, page: str) -> str | None:
        """The sha256 of the page's HTML in this release, or None."""
        if page not in self.hashes:
            self.hashes[page] = (
                ReleaseArtifact.objects.in_release(self.release)
                .filter(path=f"{page}index.html")
                .values_list("sha256", flat=True)
                .first()
            )
        return self.hashes[page]

    def _nodes(self, page: str) -> dict[str, dict]:
        if page not in self.nodes:
            sha256 = self._published(page)
            graph = page_jsonld(artifact_read(sha256).decode("utf-8")) if sha256 else {}
            self.nodes[page] = _nodes_by_id(graph)
        return self.nodes[page]


def _nodes_by_id(graph: dict) -> dict[str, dict]:
    """Every node with an @id in a page's graph, nested ones too (an FAQPage's questions)."""
    found: dict[str, dict] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("@id"), str) and len(value) > 1:
                found.setdefault(value["@id"], value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(graph.get("@graph", graph))
    return found


def _texts_of(node: dict) -> tuple[str, str, str]:
    """A node's name, its description, and all of its text to search (normalised)."""
    types = node.get("@type")
    types = types if isinstance(types, list) else [types]
    if "Claim" in types:
        name = _text(node.get("text"))
        citation = node.get("citation") or {}
        description = name
        extra = [_text(citation.get("name")) if isinstance(citation, dict) else ""]
    elif "Question" in types:
        name = _text(node.get("name"))
        answer = node.get("acceptedAnswer") or {}
        description = _text(answer.get("text")) if isinstance(answer, dict) else ""
        extra = []
    else:
        name = _text(node.get("name"))
        description = _text(node.get("description"))
        extra = [
            _text(node.get(prop))
            for prop in ("alternateName", "sku", "mpn", "gtin", "gtin8", "gtin12", "gtin13",
                         "gtin14", "category", "jobTitle")
        ]  # fmt: skip
    searched = "\n".join(normalize(text) for text in (name, description, *extra) if text)
    return name, description, searched


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " · ".join(text for text in (_text(item) for item in value) if text)
    if isinstance(value, dict):
        return _text(value.get("@value", value.get("name", "")))
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _score(terms: list[str], name: str, searched: str) -> int:
    """0–100: how much of the question the published text holds: each term found counts
    once, ``NAME_WEIGHT`` times in the name, half inside a longer word (lake in Westlake)."""
    name = normalize(name)
    got = sum(_found(term, searched) * (NAME_WEIGHT if _found(term, name) else 1) for term in terms)
    return round(100 * got / (NAME_WEIGHT * len(terms)))


def _found(term: str, text: str) -> float:
    """1 for a term found at the start of a word (or a Chinese pair anywhere), 0.5 for one
    found only inside a word, 0 for none."""
    if term not in text:
        return 0
    if HAN.match(term) or re.search(rf"(?<![^\W_]){re.escape(term)}", text):
        return 1
    return 0.5
