"""HTML pages and their Markdown twins, from one context per page.

The context holds plain, localized strings; the HTML template escapes them (Django
autoescape) and the Markdown writer escapes them with ``md()``. FAQ answers are the one
place where some HTML is kept (Google's allowed tags), through ``answer_html``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kb import statement_nodes, units, vocabulary
from publishing.render import graph as g
from publishing.render.templates import render_site_template
from publishing.render.text import (
    answer_html,
    html_to_text,
    json_for_script,
    link_target,
    md,
    md_block,
    one_line,
    web_url,
)
from publishing.render.ui import language_name, member_label, property_label, ui
from publishing.site import (
    LISTING_KINDS,
    LiveEntity,
    LiveStatement,
    Page,
    SiteContent,
    absolute_url,
    entity_path,
    language_prefix,
    listing_pages,
    listing_path,
    numbered_path,
    statements_on,
    text_of,
    twin_path,
)

HIDDEN_PROPERTIES = {"name", "description", "image", "offers", "url", "sameAs", "logo"}
PAGE_TYPES = (("Product", "ItemPage"), ("Person", "ProfilePage"))


@dataclass(slots=True)
class PageInputs:
    full: list[str]  # entities shown as full nodes in the page's graph
    stubs: list[str]  # entities referenced from those, as short nodes
    listed: list[str]  # entities the page lists (name and summary), not in its graph
    facts: list[LiveStatement] = field(default_factory=list)
    faqs: list[LiveStatement] = field(default_factory=list)

    def revision_ids(self, site: SiteContent) -> list[int]:
        ids = [site.entities[i].revision_id for i in (*self.full, *self.stubs, *self.listed)]
        return ids + [s.revision_id for s in (*self.facts, *self.faqs)]

    def content_revision_ids(self, site: SiteContent) -> list[int]:
        """The snapshots rendering reads (listed entities show only their name and summary,
        which the site content holds)."""
        return [site.entities[i].revision_id for i in self.full]


@dataclass
class StatementIndex:
    facts_about: dict[str, list[LiveStatement]]
    faqs_about: dict[str, list[LiveStatement]]

    @classmethod
    def of(cls, site: SiteContent) -> StatementIndex:
        facts: dict[str, list[LiveStatement]] = {}
        faqs: dict[str, list[LiveStatement]] = {}
        for fact in site.facts:
            if fact.about_iri:
                facts.setdefault(fact.about_iri, []).append(fact)
        for faq in site.faqs:
            if faq.about_iri:
                faqs.setdefault(faq.about_iri, []).append(faq)
        return cls(facts, faqs)


def page_inputs(site: SiteContent, page: Page, index: StatementIndex) -> PageInputs:
    org = [site.organization_iri] if site.organization_iri in site.entities else []
    listed: list[str] = []
    facts: list[LiveStatement] = []
    faqs: list[LiveStatement] = []
    about: list[str] = []
    if page.kind == "section":
        level0 = org
        listed = list(page.main)
    elif page.kind == "faq":
        level0 = org
        faqs = statements_on(site.faqs, page.page_number)
        listed = list(dict.fromkeys(f.about_iri for f in faqs if f.about_iri))
    elif page.kind == "facts":
        level0 = org
        facts = statements_on(site.facts, page.page_number)
        about = [f.about_iri for f in facts if f.about_iri]
    else:
        level0 = list(dict.fromkeys([*page.main, *org]))
        for iri in page.main:
            facts += index.facts_about.get(iri, [])
            faqs += index.faqs_about.get(iri, [])
    full = [i for i in level0 if i in site.entities]
    full += [r for i in level0 for r in site.entity_refs(i) if r not in full]
    full = list(dict.fromkeys(full))
    stubs = [r for i in full for r in site.entity_refs(i) if r not in full]
    stubs += [i for i in about if i not in full]
    listed = [i for i in listed if i not in full]
    return PageInputs(full, list(dict.fromkeys(stubs)), listed, facts, faqs)


# --- URLs and names ------------------------------------------------------------------------


def page_url(site: SiteContent, path: str) -> str:
    return absolute_url(site.brand, path)


def entity_url(site: SiteContent, entity: LiveEntity, language: str) -> str | None:
    if not entity.section:
        return None
    if entity.iri == site.organization_iri:
        return page_url(site, language_prefix(site, language))
    return page_url(site, entity_path(site, entity, language))


def page_path_in(site: SiteContent, page: Page, language: str) -> str:
    """The same page in another language."""
    return translated_path(site, page.path, page.language, language)


def translated_path(site: SiteContent, path: str, own_language: str, language: str) -> str:
    """The path of the page at ``path`` (in ``own_language``) in another language."""
    return language_prefix(site, language) + path[len(language_prefix(site, own_language)) :]


def statement_text(content: dict, field_name: str, language: str, default: str) -> str:
    """A field of a fact's or FAQ's snapshot in ``language`` (or the default)."""
    values = content.get(field_name) or {}
    return values.get(language) or values.get(default) or ""


# --- display of property values ------------------------------------------------------------


# Properties whose text values are ISO 3166-1 country codes or BCP 47 language tags: kept
# as codes in JSON-LD, shown by their CLDR names in the page's language.
COUNTRY_PROPERTIES = frozenset({
    "addressCountry", "countryOfOrigin", "countryOfAssembly", "countryOfLastProcessing",
    "areaServed", "eligibleRegion", "ineligibleRegion", "nationality", "applicableCountry",
})  # fmt: skip
LANGUAGE_PROPERTIES = frozenset({"inLanguage", "knowsLanguage", "availableLanguage"})


def code_name(prop: str, text: str, language: str) -> str:
    """A country code or language tag value by its name in ``language``; else as it is."""
    if prop in COUNTRY_PROPERTIES:
        return units.country_name(text, language) or text
    if prop in LANGUAGE_PROPERTIES:
        return units.language_display_name(text, language) or text
    return text


def display_values(site: SiteContent, value: Any, language: str, prop: str = "") -> list[dict]:
    """Values of a localized compact property as [{"text", "url"}] for both renderers."""
    items = value if isinstance(value, list) else [value]
    shown: list[dict] = []
    for item in items:
        if isinstance(item, dict) and "@list" in item:
            shown += display_values(site, item["@list"], language, prop)
        elif isinstance(item, dict) and set(item) == {"@id"}:
            target = site.entities.get(item["@id"])
            if target:
                shown.append(
                    {
                        "text": target.name(language, site.default_language),
                        "url": entity_url(site, target, language),
                    }
                )
            else:  # an IRI that is not one of the brand's entities, e.g. a unit code
                shown.append({"text": item["@id"], "url": web_url(item["@id"])})
        elif isinstance(item, dict) and "@value" in item:
            shown.append({"text": code_name(prop, str(item["@value"]), language), "url": None})
        elif isinstance(item, dict):
            shown.append({"text": nested_summary(site, item, language), "url": None})
        elif isinstance(item, str) and item.startswith(("http://", "https://")):
            member = vocabulary.local_name(item)
            if (
                member
                and not vocabulary.is_class(member)
                and item.startswith("https://schema.org/")
            ):
                english = vocabulary.label_words(member)
                shown.append({"text": member_label(language, member, english), "url": None})
            else:
                shown.append({"text": item, "url": web_url(item)})
        elif isinstance(item, str):
            shown.append({"text": code_name(prop, item, language), "url": None})
        else:
            shown.append({"text": format_scalar(item), "url": None})
    return shown


def format_scalar(value: Any) -> str:
    if value is True:
        return "✓"
    if value is False:
        return "✗"
    return str(value)


def nested_summary(site: SiteContent, node: dict, language: str) -> str:
    """A nested value in words: "Origin: Hangzhou", "100 g", "18 Longjing Road, Hangzhou"."""

    def texts(key: str) -> list[str]:
        if key not in node:
            return []
        return [v["text"] for v in display_values(site, node[key], language, key)]

    def first(key: str) -> str:
        found = texts(key)
        return found[0] if found else ""

    types = node.get("@type", [])
    types = types if isinstance(types, list) else [types]
    is_a = lambda name: any(vocabulary.is_subclass(t, name) for t in types)  # noqa: E731
    if is_a("PostalAddress"):
        parts = [first("streetAddress"), " ".join(filter(None, [first("postalCode"), first("addressLocality")])),
                 first("addressRegion"), first("addressCountry")]  # fmt: skip
        return ", ".join(p for p in parts if p)
    if is_a("QuantitativeValue"):
        # In the page's words when the unit is one CLDR knows: "100 g", "100克".
        unit = first("unitText") or units.unit_symbol(first("unitCode")) or first("unitCode")
        amount = first("value") or "–".join(p for p in (first("minValue"), first("maxValue")) if p)
        return units.value_text(amount, unit, {}, language) if amount else unit
    if is_a("MonetaryAmount"):
        return " ".join(p for p in (first("value") or first("minValue"), first("currency")) if p)
    if is_a("Country") and set(node) - {"@type"} == {"name"}:
        return units.country_name(first("name"), language) or first("name")
    if is_a("PropertyValue") and "name" in node:
        return f"{first('name')}: {', '.join(texts('value'))}"
    if is_a("OpeningHoursSpecification"):
        return f"{', '.join(texts('dayOfWeek'))} {first('opens')[:5]}–{first('closes')[:5]}"
    if is_a("GeoCoordinates"):
        return f"{first('latitude')}, {first('longitude')}"
    if is_a("ContactPoint"):
        head = first("name") or first("contactType")
        rest = ", ".join(texts("telephone") + texts("email"))
        return f"{head}: {rest}" if head else rest
    if set(node) - {"@type"} == {"name"}:
        return first("name")
    parts = []
    for key, value in node.items():
        if key.startswith("@"):
            continue
        found = [v["text"] for v in display_values(site, value, language, key)]
        if found:
            parts.append(f"{property_words(key)}: {', '.join(found)}")
    return "; ".join(parts)


def property_words(key: str) -> str:
    """A property's English label: schema.org's name in words; for another vocabulary's
    property (a full IRI, e.g. https://gs1.org/voc/netContent) its local name in words."""
    if ":" in key:
        key = re.split(r"[/#:]", key.rstrip("/#"))[-1] or key
    return vocabulary.label_words(key)


def property_rows(site: SiteContent, node: dict, language: str) -> list[dict]:
    rows = []
    for key, value in node.items():
        if key.startswith("@") or key in HIDDEN_PROPERTIES:
            continue
        if key == "additionalProperty":  # each PropertyValue is a row of its own
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and "name" in item and "value" in item:
                    name = display_values(site, item["name"], language)
                    values = display_values(site, item["value"], language)
                    if name and values:
                        rows.append({"label": name[0]["text"], "values": values})
            continue
        values = display_values(site, value, language, key)
        if values:
            english = property_words(key)
            rows.append({"label": property_label(language, key, english), "values": values})
    return rows


def offer_rows(node: dict, language: str) -> list[dict]:
    offers = node.get("offers")
    offers = offers if isinstance(offers, list) else [offers] if offers else []
    rows = []
    for offer in offers:
        if not isinstance(offer, dict):
            continue
        availability = str(offer.get("availability", ""))
        rows.append(
            {
                "price": str(offer.get("price", "")),
                "currency": str(offer.get("priceCurrency", "")),
                "availability": member_label(
                    language,
                    vocabulary.local_name(availability) or "",
                    vocabulary.label_words(vocabulary.local_name(availability) or ""),
                )
                if availability
                else "",
                "url": web_url(offer.get("url")),
            }
        )
    return rows


def fact_context(site: SiteContent, fact: LiveStatement, language: str, shown_at: str) -> dict:
    """A fact shown on the page at ``shown_at``. Its permalink is its anchor on the page of
    what it is about (an entity's page, the home page for the organization), which does not
    move when facts are added to the paginated facts pages; else on the page showing it."""
    default = site.default_language
    about = site.entities.get(fact.about_iri) if fact.about_iri else None
    content = fact.content
    return {
        "anchor": f"fact-{fact.key}",
        "url": f"{(about and entity_url(site, about, language)) or shown_at}#fact-{fact.key}",
        "statement": statement_text(content, "statement", language, default),
        "value": content.get("value") or "",
        "unit": content.get("unit") or "",
        # The value with its unit in the page's language: "42 ha", "42公顷".
        "value_text": units.value_text(
            content.get("value") or "",
            content.get("unit") or "",
            content.get("unit_labels") or {},
            language,
        ),
        "as_of": content.get("as_of") or "",
        "valid_until": content.get("valid_until") or "",
        "source_url": web_url(content.get("source_url")),
        "source_title": statement_text(content, "source_title", language, default)
        or content.get("source_url")
        or "",
        "about": about
        and {"text": about.name(language, default), "url": entity_url(site, about, language)},
    }


def faq_context(site: SiteContent, faq: LiveStatement, language: str) -> dict:
    default = site.default_language
    about = site.entities.get(faq.about_iri) if faq.about_iri else None
    content = faq.content
    answer = statement_text(content, "answer", language, default)
    return {
        "anchor": f"faq-{faq.key}",
        "question": statement_text(content, "question", language, default),
        "answer_html": answer_html(answer),
        "answer_text": html_to_text(str(answer_html(answer))),
        "about": about
        and {"text": about.name(language, default), "url": entity_url(site, about, language)},
    }


def fact_nodes(
    site: SiteContent, facts: list[LiveStatement], shown: list[dict], language: str, keep: set
) -> list[dict]:
    """The facts shown on a page as ``Claim`` nodes in its language (the shape of
    ``kb.statement_nodes``), each with ``url`` its permalink; ``about`` only when the
    entity is on the page."""
    nodes = []
    for fact, context in zip(facts, shown, strict=True):
        about = fact.about_iri if fact.about_iri in keep else None
        node = statement_nodes.fact_node(
            site.brand, fact.content, about, language, site.default_language
        )
        nodes.append(
            {"@id": node.pop("@id"), "@type": node.pop("@type"), "url": context["url"], **node}
        )
    return nodes


def question_nodes(
    site: SiteContent, faqs: list[LiveStatement], shown: list[dict], language: str, url: str
) -> list[dict]:
    """The FAQs shown on a page as ``Question`` nodes in its language, each with ``url``
    its anchor on the page and, as its answer, the HTML the page shows."""
    nodes = []
    for faq, context in zip(faqs, shown, strict=True):
        node = statement_nodes.question_node(
            site.brand,
            faq.content,
            language,
            site.default_language,
            answer=str(context["answer_html"]),
        )
        nodes.append(
            {
                "@id": node.pop("@id"),
                "@type": node.pop("@type"),
                "url": f"{url}#{context['anchor']}",
                **node,
            }
        )
    return nodes


# --- one page ------------------------------------------------------------------------------


@dataclass
class RenderedPage:
    html: bytes
    markdown: bytes
    title: str
    summary: str


def page_jsonld(html: str) -> dict:
    """The JSON-LD of a page as ``render_page`` writes it: its one script element's JSON
    (escaped by ``script_json``, which json reads back as written)."""
    if JSONLD_SCRIPT not in html:
        return {}
    return json.loads(html.split(JSONLD_SCRIPT, 1)[1].split("</script>", 1)[0])


JSONLD_SCRIPT = '<script type="application/ld+json">'


def render_page(
    site: SiteContent,
    page: Page,
    inputs: PageInputs,
    contents: dict[int, dict],
    *,
    lastmod_for: Callable[[bytes], str],
) -> RenderedPage:
    """Render a page; ``lastmod_for`` gets its Markdown (its visible content) and returns
    the date of the last real change, shown in the HTML as dateModified."""
    language, default = page.language, site.default_language
    brand = site.brand
    keep = {*inputs.full, *inputs.stubs}
    url = page_url(site, page.path)
    home_url = page_url(site, language_prefix(site, language))

    def content_of(iri: str) -> dict:
        return contents[site.entities[iri].revision_id]

    org_content = (
        content_of(site.organization_iri) if site.organization_iri in site.entities else None
    )
    org_node = (
        g.full_node(org_content, language, default, site.hidden)
        if org_content
        else g.synthesized_organization(site)
    )
    nodes: dict[str, dict] = {org_node["@id"]: org_node}
    for iri in inputs.full:
        if iri not in nodes:
            nodes[iri] = g.full_node(content_of(iri), language, default, site.hidden)
    for iri in inputs.stubs:
        entity = site.entities[iri]
        nodes.setdefault(
            iri, g.stub_node(entity, language, default, entity_url(site, entity, language))
        )

    org_name = text_of(org_content, "name", language, default) if org_content else brand.name
    context: dict[str, Any] = {"kind": page.kind, "org_name": org_name or brand.name}
    extra_nodes: list[dict] = []
    breadcrumbs = [{"text": ui(language, "home"), "url": home_url}]
    page_type = "WebPage"
    main_entity: Any = None

    if page.kind == "home":
        page_type = "AboutPage"
        main_entity = {"@id": org_node["@id"]}
        title = org_name or brand.name
        description = text_of(org_content, "description", language, default) if org_content else ""
        facts = [fact_context(site, f, language, url) for f in inputs.facts]
        extra_nodes += fact_nodes(site, inputs.facts, facts, language, keep)
        context.update(
            entity=org_node,
            rows=property_rows(site, org_node, language),
            facts=facts,
            sections=section_links(site, language),
        )
    elif page.kind == "entity":
        iri = page.main[0]
        node = nodes[iri]
        entity = site.entities[iri]
        for type_name, kind in PAGE_TYPES:
            if any(vocabulary.is_subclass(t, type_name) for t in entity.types):
                page_type = kind
        main_entity = {"@id": iri}
        title = entity.name(language, default)
        description = text_of(content_of(iri), "description", language, default)
        breadcrumbs.append(
            {
                "text": ui(language, entity.section),
                "url": page_url(site, f"{language_prefix(site, language)}{entity.section}/"),
            }
        )
        facts = [fact_context(site, f, language, url) for f in inputs.facts]
        faqs = [faq_context(site, f, language) for f in inputs.faqs]
        extra_nodes += fact_nodes(site, inputs.facts, facts, language, keep)
        if faqs:
            # The questions about the entity, as one FAQPage about it (its @id the brand
            # graph's), part of this page.
            extra_nodes.append(
                {
                    "@id": statement_nodes.faq_page_iri(brand, iri),
                    "@type": "FAQPage",
                    "about": {"@id": iri},
                    "isPartOf": {"@id": url},
                    "mainEntity": question_nodes(site, inputs.faqs, faqs, language, url),
                }
            )
        context.update(
            entity=node,
            rows=property_rows(site, node, language),
            offers=offer_rows(node, language),
            images=[
                {"src": src, "alt": image_alt(site, src, language) or title}
                for src in map(web_url, _as_list(node.get("image")))
                if src
            ],
            facts=facts,
            faqs=faqs,
        )
    elif page.kind == "section":
        page_type = "CollectionPage"
        title = ui(language, page.section)
        description = ""
        items = []
        for position, iri in enumerate(page.main, start=1):
            member = site.entities[iri]
            items.append(
                {
                    "position": position,
                    "text": member.name(language, default),
                    "url": entity_url(site, member, language),
                    "summary": member.summary(language),
                }
            )
        extra_nodes.append(
            {
                "@id": f"{url}#itemlist",
                "@type": "ItemList",
                "numberOfItems": len(items),
                "itemListElement": [
                    {
                        "@type": "ListItem",
                        "position": i["position"],
                        "url": i["url"],
                        "name": i["text"],
                    }
                    for i in items
                ],
            }
        )
        main_entity = {"@id": f"{url}#itemlist"}
        context.update(items=items)
    elif page.kind == "faq":
        page_type = "FAQPage"
        title = ui(language, "faq")
        description = ""
        faqs = [faq_context(site, f, language) for f in inputs.faqs]
        main_entity = question_nodes(site, inputs.faqs, faqs, language, url)
        context.update(faqs=faqs)
    else:  # facts
        title = ui(language, "facts")
        description = ""
        facts = [fact_context(site, f, language, url) for f in inputs.facts]
        extra_nodes += fact_nodes(site, inputs.facts, facts, language, keep)
        main_entity = [{"@id": node["@id"]} for node in extra_nodes]
        context.update(facts=facts)

    if page.kind in LISTING_KINDS:
        context.update(pagination=pagination(site, page, language))
        if page.page_number > 1:
            title += f" — {ui(language, 'page')} {page.page_number}"
    if page.kind != "home":
        breadcrumbs.append({"text": title, "url": url})
    webpage: dict[str, Any] = {
        "@id": url,
        "@type": page_type,
        "url": url,
        "name": title,
        "inLanguage": language,
        "isPartOf": {"@id": f"{brand.base_url}/#website"},
        "dateModified": "",  # filled in below, once the Markdown is known
        "breadcrumb": {
            "@type": "BreadcrumbList",
            "itemListElement": [
                {"@type": "ListItem", "position": n, "name": b["text"], "item": b["url"]}
                for n, b in enumerate(breadcrumbs, start=1)
            ],
        },
    }
    if description:
        webpage["description"] = description
    if main_entity is not None:
        webpage["mainEntity"] = main_entity
    graph_nodes = [g.website_node(site, page_url(site, "")), webpage, *nodes.values(), *extra_nodes]
    alternates = [
        {
            "hreflang": lang,
            "url": page_url(site, page_path_in(site, page, lang)),
            "name": language_name(lang),
        }
        for lang in site.languages
    ]
    context.update(
        lang=language,
        title=title,
        description=one_line(description, 300),
        canonical=url,
        alternates=alternates,
        x_default=page_url(site, page_path_in(site, page, default)),
        twin_url=page_url(site, twin_path(page.file)),
        llms_url=page_url(site, f"{language_prefix(site, language)}llms.txt"),
        jsonld="",  # set below, once dateModified is known
        nav=nav_links(site, language),
        breadcrumbs=breadcrumbs,
        ui={key: ui(language, key) for key in UI_KEYS},
    )
    markdown = page_markdown(context)
    last_modified = lastmod_for(markdown.encode("utf-8"))
    webpage["dateModified"] = last_modified
    context["jsonld"] = json_for_script(g.graph_document(graph_nodes))
    context["last_modified"] = last_modified
    html = render_site_template(f"site/{page.kind}.html", context)
    return RenderedPage(
        html.encode("utf-8"), markdown.encode("utf-8"), title, one_line(description, 200)
    )


UI_KEYS = (
    "home", "faq", "facts", "key_facts", "source", "as_of", "valid_until", "offers",
    "questions_about", "facts_about", "details", "languages", "markdown", "next", "previous",
)  # fmt: skip


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def nav_links(site: SiteContent, language: str) -> list[dict]:
    prefix = language_prefix(site, language)
    links = [{"text": ui(language, "home"), "url": page_url(site, prefix)}]
    links += [{"text": s["text"], "url": s["url"]} for s in section_links(site, language)]
    if site.faqs:
        links.append({"text": ui(language, "faq"), "url": page_url(site, f"{prefix}faq/")})
    if site.facts:
        links.append({"text": ui(language, "facts"), "url": page_url(site, f"{prefix}facts/")})
    return links


def section_links(site: SiteContent, language: str) -> list[dict]:
    prefix = language_prefix(site, language)
    return [
        {"text": ui(language, section), "url": page_url(site, f"{prefix}{section}/"), "count": n}
        for section, n in site.section_counts.items()
    ]


def pagination(site: SiteContent, page: Page, language: str) -> dict:
    """Links to the previous and next pages of a paginated listing (None where there is none)."""
    pages = listing_pages(site, page)
    first = listing_path(site, page, language)

    def link(number: int) -> str:
        return page_url(site, numbered_path(first, number))

    return {
        "previous": link(page.page_number - 1) if page.page_number > 1 else None,
        "next": link(page.page_number + 1) if page.page_number < pages else None,
    }


# --- Markdown twin -------------------------------------------------------------------------


def image_alt(site: SiteContent, src: str, language: str) -> str:
    """The alt text in ``language`` an image of the brand's media was given, or ""."""
    prefix = f"{site.brand.base_url}/media/"
    if not src.startswith(prefix):
        return ""
    return site.media_alt.get(src[len(prefix) :], {}).get(language, "")


def md_link(text: str, url: str | None) -> str:
    """A Markdown link to an http(s) URL or a site path; anything else is the text alone."""
    target = link_target(url)
    return f"[{md(text)}]({target})" if target else md(text)


def page_markdown(context: dict) -> str:
    u = context["ui"]
    lines = [f"# {md(context['title'])}", ""]
    if context.get("description"):
        lines += [md_block(context["description"]), ""]
    kind = context["kind"]
    if kind in ("home", "entity"):
        for image in context.get("images", []):
            if target := link_target(image["src"]):
                lines += [f"![{md(image['alt'])}]({target})", ""]
        if context.get("offers"):
            lines += [f"## {md(u['offers'])}", ""]
            for offer in context["offers"]:
                text = " ".join(x for x in (offer["price"], offer["currency"]) if x)
                if offer["availability"]:
                    text += f" ({offer['availability']})"
                lines.append(f"- {md_link(text, offer['url'])}")
            lines.append("")
        if context.get("rows"):
            lines += [f"## {md(u['details'])}", ""]
            for row in context["rows"]:
                values = ", ".join(md_link(v["text"], v["url"]) for v in row["values"])
                lines.append(f"- **{md(row['label'])}:** {values}")
            lines.append("")
        if kind == "home" and context.get("sections"):
            for section in context["sections"]:
                lines.append(f"- {md_link(section['text'], section['url'])} ({section['count']})")
            lines.append("")
    if context.get("facts"):
        lines += [f"## {md(u['key_facts'] if kind != 'facts' else u['facts'])}", ""]
        for fact in context["facts"]:
            lines += fact_markdown(fact, u)
        lines.append("")
    if context.get("faqs"):
        if kind != "faq":
            lines += [f"## {md(u['faq'])}", ""]
        for faq in context["faqs"]:
            lines += [f"### {md(faq['question'])}", "", md_block(faq["answer_text"]), ""]
    if kind == "section":
        for item in context["items"]:
            line = f"- {md_link(item['text'], item['url'])}"
            if item["summary"]:
                line += f": {md(item['summary'])}"
            lines.append(line)
        lines.append("")
    for key in ("previous", "next"):
        if context.get("pagination", {}).get(key):
            lines += [md_link(u[key], context["pagination"][key]), ""]
    lines += [
        f"{md(u['languages'])}: "
        + ", ".join(md_link(a["name"], a["url"]) for a in context["alternates"]),
        "",
    ]
    return "\n".join(lines).rstrip() + "\n"


def fact_markdown(fact: dict, u: dict) -> list[str]:
    line = f"- {md(fact['statement'])}"
    if fact["value"]:
        line += f" — **{md(fact['value_text'])}**"
    dates = f"{u['as_of']} {fact['as_of']}"
    if fact["valid_until"]:
        dates += f", {u['valid_until']} {fact['valid_until']}"
    line += (
        f" ({md(dates)}). {md(u['source'])}: {md_link(fact['source_title'], fact['source_url'])}"
    )
    return [line]
