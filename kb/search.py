"""Search text: what the admin's search box matches, kept in one column per object.

The text an editor looks for is spread over JSON in every language (names, SKUs, GTINs,
statements …), which a database can neither index nor compare case-insensitively beyond
ASCII. So the services store a normalised copy of it in ``search_text`` on every create and
update (``entity_search_text`` / ``statement_search_text``), and a query is normalised the
same way and matched as substrings (``matching``): no word segmentation, so 龙井 finds
狮峰龙井, and every word of the query must match. On PostgreSQL a pg_trgm GIN index on the
column (migration 0006) serves these ``LIKE '%…%'`` queries at catalog size.

These are pure functions of plain data (no models): migrations call them too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

# The entity properties an editor searches by: what it is called and how it is identified.
ENTITY_SEARCH_PROPERTIES = (
    "name",
    "alternateName",
    "description",
    "sku",
    "gtin",
    "gtin8",
    "gtin12",
    "gtin13",
    "gtin14",
    "mpn",
    "identifier",
)
FACT_SEARCH_FIELDS = ("key", "value", "statement", "source_title", "source_url")
FAQ_SEARCH_FIELDS = ("key", "question", "answer")

# Values are kept on lines of their own so a quoted phrase never spans two values.
VALUE_SEPARATOR = "\n"
WHITESPACE = re.compile(r"\s+")
# A query that may be an @id pasted whole (scheme:rest, no spaces).
IRI_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def normalize(text: str) -> str:
    """NFKC (full-width ＷＬＬ－００１ is WLL-001), casefolded, whitespace runs as one space."""
    return WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def normalized_text(values: Iterable[str]) -> str:
    """The normalised values, each once, in order."""
    unique = dict.fromkeys(normalize(value) for value in values)
    return VALUE_SEPARATOR.join(value for value in unique if value)


def entity_search_text(*, data: dict, slug: str, iri: str, base_url: str) -> str:
    """An entity's search text: its names, descriptions and codes in every language, its
    slug, and its @id (without the brand's own site, which every @id of the brand shares)."""
    values = [slug, iri.removeprefix(base_url) if base_url else iri]
    for prop in ENTITY_SEARCH_PROPERTIES:
        values.extend(_texts(data.get(prop, [])))
    return normalized_text(values)


def statement_search_text(*, fields: dict[str, Any]) -> str:
    """A fact's or FAQ's search text from its fields (``FACT_SEARCH_FIELDS`` or
    ``FAQ_SEARCH_FIELDS``): plain text as it is, multilingual ones in every language."""
    values: list[str] = []
    for value in fields.values():
        if isinstance(value, dict):
            values.extend(text for text in value.values() if isinstance(text, str))
        elif isinstance(value, str):
            values.append(value)
    return normalized_text(values)


def fact_search_text(fact) -> str:
    return statement_search_text(fields={name: getattr(fact, name) for name in FACT_SEARCH_FIELDS})


def faq_search_text(faq) -> str:
    return statement_search_text(fields={name: getattr(faq, name) for name in FAQ_SEARCH_FIELDS})


def _texts(values: Any) -> Iterator[str]:
    """The text of stored property values: ``@value``s, ``@list`` items, and the ``value``
    (or ``name``) of a nested node such as an identifier's PropertyValue; never ``@id``s."""
    for value in values if isinstance(values, list) else [values]:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            yield str(value)
        elif isinstance(value, dict):
            if "@value" in value:
                yield from _texts(value["@value"])
            elif "@list" in value:
                yield from _texts(value["@list"])
            elif "@id" not in value or len(value) > 1:
                yield from _texts(value.get("value", []))
                yield from _texts(value.get("name", []))


def search_terms(query: str) -> list[str]:
    """The query's words, normalised; a quoted "two words" is one term (as in Django's admin)."""
    terms = []
    for bit in smart_split(query):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        term = normalize(bit)
        if term:
            terms.append(term)
    return terms


def matching(queryset: QuerySet, query: str, *, or_equal: str | None = None) -> QuerySet:
    """The objects whose search text contains every term of the query, or, when the query
    looks like an IRI, whose field ``or_equal`` (the @id, pasted whole) equals it.

    ``contains`` rather than ``icontains``: both sides are casefolded already, and a plain
    ``LIKE`` is what PostgreSQL's trigram index serves (``UPPER(…) LIKE`` would not be).
    """
    terms = search_terms(query)
    if not terms:
        return queryset
    condition = Q()
    for term in terms:
        condition &= Q(search_text__contains=term)
    if or_equal and IRI_LIKE.match(query.strip()):
        # Only then: an OR on another column can keep PostgreSQL from the trigram index.
        condition |= Q(**{or_equal: query.strip()})
    return queryset.filter(condition)
