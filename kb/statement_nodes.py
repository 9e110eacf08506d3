"""Facts and FAQs as schema.org JSON-LD: one shape for exports, the brand graph and pages.

A fact is a ``Claim`` (@id ``{base_url}/id/fact/{key}``): ``text`` the statement,
``about`` the entity, ``mainEntity`` a ``PropertyValue`` with the ``value``, its ``unitText``
(the unit as typed, and its label per language) and, for units CLDR knows, its UN/CEFACT
``unitCode``; ``citation`` the source (a ``CreativeWork`` with ``url`` and ``name``),
``temporalCoverage`` the as-of date and ``expires`` the valid-until date.

FAQs are ``Question``s (@id ``{base_url}/id/faq/{key}``) with an ``acceptedAnswer``; those
about one entity (or about none) are the ``mainEntity`` of one ``FAQPage``.

Without ``language`` texts are language-tagged, every language there is (exports, the brand
graph); with it they are plain text in that language, else the default one (pages).
"""

from __future__ import annotations

import hashlib
from typing import Any

from kb import units
from kb.models import Brand


def fact_iri(brand: Brand, key: str) -> str:
    return f"{brand.base_url}/id/fact/{key}"


def faq_iri(brand: Brand, key: str) -> str:
    return f"{brand.base_url}/id/faq/{key}"


def faq_page_iri(brand: Brand, about_iri: str | None) -> str:
    suffix = hashlib.sha256(about_iri.encode()).hexdigest()[:12] if about_iri else "brand"
    return f"{brand.base_url}/id/faq-page/{suffix}"


def texts(by_language: dict, language: str | None = None, default: str | None = None) -> Any:
    """Language-tagged values of every language; with ``language``, its plain text (else
    the default language's, else the first there is), or None."""
    present = {
        tag: text for tag, text in sorted((by_language or {}).items()) if isinstance(text, str)
    }
    present = {tag: text for tag, text in present.items() if text}
    if language is None:
        return [{"@language": tag, "@value": text} for tag, text in present.items()]
    for candidate in (language, default):
        if candidate in present:
            return present[candidate]
    return next(iter(present.values()), None)


def fact_node(
    brand: Brand,
    content: dict,
    about_iri: str | None,
    language: str | None = None,
    default: str | None = None,
) -> dict:
    """A fact (its revision's ``content``) as a ``Claim``."""
    node: dict = {"@id": fact_iri(brand, content["key"]), "@type": "Claim"}
    node["text"] = texts(content.get("statement"), language, default)
    if about_iri:
        node["about"] = {"@id": about_iri}
    if content.get("value"):
        value: dict = {"@type": "PropertyValue", "value": content["value"]}
        unit, labels = content.get("unit") or "", content.get("unit_labels") or {}
        if unit:
            if language is None:
                value["unitText"] = [unit, *texts(labels)] if labels else unit
            else:
                value["unitText"] = labels.get(language) or unit
            if code := units.unit_code(unit):
                value["unitCode"] = code
        node["mainEntity"] = value
    citation: dict = {"@type": "CreativeWork", "url": content["source_url"]}
    if title := texts(content.get("source_title"), language, default):
        citation["name"] = title
    node["citation"] = citation
    node["temporalCoverage"] = content["as_of"]
    if content.get("valid_until"):
        node["expires"] = content["valid_until"]
    if language is None and content.get("check_cues"):
        # The knowledge base's own form (export) keeps the editor's cue words; pages do not.
        node["keywords"] = list(content["check_cues"])
    return {key: value for key, value in node.items() if value is not None}


def question_node(
    brand: Brand,
    content: dict,
    language: str | None = None,
    default: str | None = None,
    answer: str | None = None,
) -> dict:
    """An FAQ (its revision's ``content``) as a ``Question``; ``answer``, when given, is
    the answer's text as the page shows it (the HTML Google accepts)."""
    return {
        "@id": faq_iri(brand, content["key"]),
        "@type": "Question",
        "name": texts(content.get("question"), language, default),
        "position": content.get("order") or 0,
        "acceptedAnswer": {
            "@type": "Answer",
            "text": answer
            if answer is not None
            else texts(content.get("answer"), language, default),
        },
    }


def faq_page_node(brand: Brand, contents: list[dict], about_iri: str | None) -> dict:
    """The FAQs about one entity (or about none) as a ``FAQPage`` of ``Question``s, in the
    FAQs' order (``position``)."""
    page: dict = {"@id": faq_page_iri(brand, about_iri), "@type": "FAQPage"}
    if about_iri:
        page["about"] = {"@id": about_iri}
    page["mainEntity"] = [
        question_node(brand, content)
        for content in sorted(contents, key=lambda c: (c.get("order") or 0, c["key"]))
    ]
    return page
