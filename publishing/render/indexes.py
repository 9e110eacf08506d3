"""Site-wide artifacts: llms.txt, llms-full.txt, sitemaps, robots.txt and the brand graph."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape as xml_escape

from django.conf import settings

from kb import statement_nodes
from publishing.ai_use import AiUsePolicy
from publishing.render import graph as g
from publishing.render.text import link_target, llms_note, llms_title, one_line
from publishing.render.ui import language_name, ui
from publishing.site import LiveStatement, SiteContent, absolute_url, language_prefix

# The root llms.txt stays under SOURCEBOOK_LLMS_MAX_CHARS (large catalogs get part files of
# SOURCEBOOK_LLMS_PART_CHARS); llms-full.txt is split beyond SOURCEBOOK_LLMS_FULL_MAX_CHARS.
LLMS_MAX_CHARS = 50_000
LLMS_PART_CHARS = 45_000
LLMS_FULL_MAX_CHARS = 2_000_000


def limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


# URLs per sitemap file (the protocol allows 50,000): a page whose content changes rewrites its
# file, each URL with its alternates in every language; at 50,000 that was 0.7 s of a one-edit
# publish at 100,000 products.
SITEMAP_MAX_URLS = 10_000

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
XHTML_NS = "http://www.w3.org/1999/xhtml"
ET.register_namespace("", SITEMAP_NS)
ET.register_namespace("xhtml", XHTML_NS)

# robots.txt tokens by purpose (see shared/reference/ai-crawlers.md).
SEARCH_AGENTS = (
    "OAI-SearchBot", "ChatGPT-User", "Claude-SearchBot", "Claude-User", "PerplexityBot",
    "Perplexity-User", "Applebot", "Amazonbot", "DuckAssistBot", "MistralAI-User",
    "Meta-ExternalFetcher", "Googlebot", "Bingbot",
)  # fmt: skip
TRAINING_AGENTS = (
    "GPTBot", "ClaudeBot", "anthropic-ai", "Claude-Web", "CCBot", "Google-Extended",
    "Applebot-Extended", "Bytespider", "meta-externalagent", "cohere-training-data-crawler",
)  # fmt: skip


@dataclass
class LlmsLink:
    title: str
    url: str
    note: str
    # Its link target (see ``link_target``) when the builder made it: at 100,000 products,
    # checking and encoding each page's URL again was 0.6 s of each language's llms.txt.
    target: str | None = field(default=None, repr=False, compare=False)
    # Its line, made once: a large llms.txt asks for each link's line three times (its whole
    # size, the parts' sizes, the parts), which was 3.7 s of a publish at 100,000 products.
    _line: str | None = field(default=None, init=False, repr=False, compare=False)

    def line(self) -> str:
        if self._line is None:
            target = self.target if self.target is not None else link_target(self.url)
            title = llms_title(self.title)
            text = f"- [{title}]({target})" if target else f"- {title}"
            note = llms_note(self.note)
            self._line = f"{text}: {note}" if note else text
        return self._line


@dataclass
class LlmsSection:
    name: str
    links: list[LlmsLink]


def llms_lines(title: str, summary: str, info: str, sections: list[LlmsSection]) -> Iterator[str]:
    """The lines of an llms.txt file exactly as the proposal (and its reference parser)
    wants it."""
    yield from (f"# {llms_note(title)}", "", f"> {llms_note(summary)}", "", llms_note(info), "")
    for section in sections:
        if not section.links:
            continue
        yield from (f"## {llms_note(section.name)}", "")
        yield from (link.line() for link in section.links)
        yield ""


def llms_document(title: str, summary: str, info: str, sections: list[LlmsSection]) -> str:
    return "\n".join(llms_lines(title, summary, info, sections))


def llms_document_size(title: str, summary: str, info: str, sections: list[LlmsSection]) -> int:
    """The characters of ``llms_document``, counted without making it (at 100,000 products
    it is 26 MB a language, of which only the parts are kept)."""
    return sum(len(line) + 1 for line in llms_lines(title, summary, info, sections)) - 1


def llms_files(
    site: SiteContent,
    language: str,
    title: str,
    summary: str,
    sections: list[LlmsSection],
    optional: list[LlmsLink],
) -> Iterator[tuple[str, str]]:
    """The llms.txt of one language, with per-section part files when it would be too big:
    (path, text) of each, made one at a time."""
    prefix = language_prefix(site, language)
    others = [language_name(lang) for lang in site.languages if lang != language]
    info = ui(language, "llms_info").format(site=title, languages=", ".join(others) or "—")
    root_sections = [*sections, LlmsSection("Optional", optional)]
    size = llms_document_size(title, summary, info, root_sections)
    if size < limit("SOURCEBOOK_LLMS_MAX_CHARS", LLMS_MAX_CHARS):
        yield f"{prefix}llms.txt", llms_document(title, summary, info, root_sections)
        return
    # Too big: every section's links go to part files that the root links to.
    index_sections = []
    for section in sections:
        parts = list(
            split_links(section.links, limit("SOURCEBOOK_LLMS_PART_CHARS", LLMS_PART_CHARS))
        )
        part_links = []
        for number, links in enumerate(parts, start=1):
            # Named after their first link and titled without their number, parts stay the
            # same files when a part is added or removed before them.
            path = f"{prefix}llms/{slug(section.name)}-{part_id(links[0].url)}.txt"
            span = f"{links[0].title} … {links[-1].title}"
            yield (
                path,
                llms_document(
                    f"{title} — {section.name}: {span}",
                    summary,
                    info,
                    [LlmsSection(section.name, links)],
                ),
            )
            part_links.append(
                LlmsLink(
                    f"{section.name} ({number}/{len(parts)})", absolute_url(site.brand, path), span
                )
            )
        index_sections.append(LlmsSection(section.name, part_links))
    yield (
        f"{prefix}llms.txt",
        llms_document(title, summary, info, [*index_sections, LlmsSection("Optional", optional)]),
    )


def part_id(key: str) -> str:
    """A short stable name for the part that starts with the item ``key``."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=5).hexdigest()


def slug(name: str) -> str:
    cleaned = "".join(c.lower() if c.isalnum() and c.isascii() else "-" for c in name)
    return "-".join(filter(None, cleaned.split("-"))) or "section"


def spacing_for(limit: int, average: float) -> int:
    """How many items apart content-defined boundaries fall, on average: parts of about
    three quarters of ``limit`` for items of the ``average`` size (a part that would pass
    the limit is cut there; the next content-defined boundary puts later parts back in
    place). A power of two, so that the average drifting across a threshold keeps every
    other boundary where it was."""
    target = max(1.0, 0.75 * limit / max(average, 1.0))
    return 1 << round(math.log2(target))


def boundary(key: str, spacing: int) -> bool:
    """Whether a part ends after the item with this key (about one in ``spacing`` does).

    Parts cut where their size runs out would move every later boundary whenever an item
    grows or shrinks, rewriting every later part for one edit; cut after items whose key
    hashes to a multiple of ``spacing`` (content-defined chunking), an edit rewrites only
    its own part, and an insertion only the part it lands in.
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % spacing == 0


def split_links(links: list[LlmsLink], limit: int) -> Iterator[list[LlmsLink]]:
    """Links in parts of at most ``limit`` characters, cut by content where they can be."""
    lengths = [len(link.line()) + 1 for link in links]
    spacing = spacing_for(limit, sum(lengths) / max(len(lengths), 1))
    chunk: list[LlmsLink] = []
    size = 0
    for link, length in zip(links, lengths, strict=True):
        if chunk and size + length > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(link)
        size += length
        if boundary(link.url, spacing):
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def llms_full_parts(items: list[tuple[str, int]], average: float) -> list[tuple[int, int]]:
    """How the full text of pages given as (key, size in bytes), in order, is cut in parts:
    their ranges (start, stop). Cut by content (see ``boundary``) and before the page that
    would take a part past the limit; sizes are bytes, never fewer than the characters the
    limit counts, and known from the manifest, so the parts are planned without reading the
    pages, and a part whose pages did not change is not made again."""
    most = limit("SOURCEBOOK_LLMS_FULL_MAX_CHARS", LLMS_FULL_MAX_CHARS)
    spacing = spacing_for(most, average)
    ranges: list[tuple[int, int]] = []
    start, size, cut = 0, 0, False
    for number, (key, length) in enumerate(items):
        if number > start and (cut or size + length > most):
            ranges.append((start, number))
            start, size = number, 0
        size += length
        cut = boundary(key, spacing)
    ranges.append((start, len(items)))
    return ranges


def llms_full_path(site: SiteContent, language: str, first: str | None = None) -> str:
    """``llms-full.txt``, or the part that starts with the page ``first``: parts are named
    after their first page and carry no number, so that one added or removed before them
    leaves them unchanged."""
    prefix = language_prefix(site, language)
    return f"{prefix}llms-full-{part_id(first)}.txt" if first else f"{prefix}llms-full.txt"


def llms_full_text(title: str, summary: str, twins: Iterable[bytes]) -> Iterator[bytes]:
    """The full text (or one part of it) of the pages' Markdown twins, in chunks.

    The home page's twin, first in the full text, opens with the same H1 and summary as the
    full text's own head: those are not said twice."""
    heading, lead = f"# {llms_note(title)}".encode(), llms_note(summary).encode()
    yield heading + b"\n\n> " + lead + b"\n\n"
    for number, twin in enumerate(twins):
        if number:
            yield b"\n---\n\n"
        else:
            twin = without_head(twin, heading, lead)
        yield twin


def without_head(twin: bytes, heading: bytes, lead: bytes) -> bytes:
    """``twin`` without its first line if that is ``heading``, and then without the paragraph
    after it if that is ``lead`` (as one line)."""
    first, _, rest = twin.partition(b"\n")
    if first.rstrip() != heading:
        return twin
    rest = rest.lstrip(b"\n")
    paragraph, separator, after = rest.partition(b"\n\n")
    if b" ".join(paragraph.split()) == b" ".join(lead.split()):
        rest = after if separator else b""
    return rest


def llms_full_index(
    site: SiteContent, language: str, title: str, summary: str, parts: list[str]
) -> str:
    """``llms-full.txt`` of a full text cut in parts: the list of the parts (by path)."""
    count = len(parts)
    links = [
        LlmsLink(f"{title} ({number}/{count})", absolute_url(site.brand, path), "")
        for number, path in enumerate(parts, start=1)
    ]
    name = ui(language, "full_text")
    return llms_document(title, summary, name, [LlmsSection(name, links)])


# --- sitemaps ------------------------------------------------------------------------------


@dataclass
class SitemapEntry:
    url: str
    lastmod: str
    alternates: list[tuple[str, str]]  # (hreflang, url), x-default included


def sitemap_path(number: int) -> str:
    return f"sitemaps/sitemap-{number}.xml"


def sitemap_groups(entries: list) -> list[list]:
    """``entries`` in the sitemap files' groups (``SITEMAP_MAX_URLS`` each); one, empty, for
    none."""
    size = SITEMAP_MAX_URLS
    return [entries[start : start + size] for start in range(0, len(entries), size)] or [[]]


def sitemap_index(site: SiteContent, files: list[tuple[str, str]]) -> bytes:
    """``sitemap.xml``: the index of the sitemap files given as (path, newest lastmod)."""
    index = ET.Element(f"{{{SITEMAP_NS}}}sitemapindex")
    for path, newest in files:
        item = ET.SubElement(index, f"{{{SITEMAP_NS}}}sitemap")
        ET.SubElement(item, f"{{{SITEMAP_NS}}}loc").text = absolute_url(site.brand, path)
        if newest:
            ET.SubElement(item, f"{{{SITEMAP_NS}}}lastmod").text = newest
    return xml_bytes(index)


def url_set(entries: Iterable[SitemapEntry]) -> Iterator[bytes]:
    """One sitemap file, in chunks of bytes.

    The URLs are written as text, a thousand at a time, not as ElementTree elements (at
    100,000 products a tree of a million elements took more memory than the rest of the
    publish) nor as one string per file; the output is what ``xml_bytes`` makes of the same
    tree, byte for byte.
    """
    pending = iter(entries)
    entry = next(pending, None)
    if entry is None:
        yield f'{XML_DECLARATION}<urlset xmlns="{SITEMAP_NS}" />\n'.encode()
        return
    yield f'{XML_DECLARATION}<urlset xmlns="{SITEMAP_NS}" xmlns:xhtml="{XHTML_NS}">\n'.encode()
    chunk: list[str] = []
    while entry is not None:
        links = "".join(
            f'    <xhtml:link rel="alternate" hreflang="{xml_attribute(hreflang)}" '
            f'href="{xml_attribute(href)}" />\n'
            for hreflang, href in entry.alternates
        )
        chunk.append(
            f"  <url>\n    <loc>{xml_text(entry.url)}</loc>\n"
            f"    <lastmod>{xml_text(entry.lastmod)}</lastmod>\n{links}  </url>\n"
        )
        if len(chunk) >= 1000:
            yield "".join(chunk).encode("utf-8")
            chunk = []
        entry = next(pending, None)
    chunk.append("</urlset>\n")
    yield "".join(chunk).encode("utf-8")


XML_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"


# What ElementTree escapes in attribute values beyond & < > (text escapes only those three).
ATTRIBUTE_ENTITIES = {'"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"}


def xml_text(value: str) -> str:
    return xml_escape(value)


def xml_attribute(value: str) -> str:
    return xml_escape(value, ATTRIBUTE_ENTITIES)


def xml_bytes(element: ET.Element) -> bytes:
    ET.indent(element)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True) + b"\n"


# --- robots.txt ----------------------------------------------------------------------------


def robots_txt(site: SiteContent, *, policy: AiUsePolicy) -> str:
    """Every group carries the AI-use preferences (a crawler reads only its own group), and
    its Allow/Disallow lines follow them: training crawlers are kept out of what may not be
    trained on, search agents out of what may not be indexed. More specific lines come first
    (Python's parser takes the first match; RFC 9309 the longest, which agrees)."""
    brand = site.brand
    prefixes = [language_prefix(site, language) for language in site.languages]
    sections = policy.section_paths(prefixes)
    lines = [
        f"# robots.txt of {one_line(brand.name, 100)}, published by Sourcebook.",
        "# Search and answer agents may crawl everything: blocking them means not being cited.",
        "# AI training crawlers are "
        + ("allowed by the brand." if policy.ai_train else "not allowed by the brand."),
        "# Content-Signal (contentsignals.org): search = building a search index and showing",
        "# links and excerpts; ai-input = using the content as input to AI answers (grounding);",
        "# ai-train = training or fine-tuning AI models. Content-Usage: the IETF aipref",
        "# vocabulary (train-ai, search), for the whole site and for sections with their own.",
        "",
    ]
    preferences = [f"Content-Signal: {policy.signal()}", f"Content-Usage: {policy.usage()}"]
    preferences += [f"Content-Usage: {path} {policy.usage(use)}" for path, use in sections]

    def group(agents: Iterable[str], access: list[str]) -> list[str]:
        return [*(f"User-agent: {agent}" for agent in agents), *preferences, *access, ""]

    search_access = [f"Disallow: {path}" for path, use in sections if use.search is False]
    lines += group(SEARCH_AGENTS, [*search_access, "Allow: /"])
    if policy.ai_train:
        training_access = [f"Disallow: {p}" for p, use in sections if use.ai_train is False]
        training_access.append("Allow: /")
    else:
        training_access = [f"Allow: {p}" for p, use in sections if use.ai_train is True]
        training_access.append("Disallow: /")
    lines += group(TRAINING_AGENTS, training_access)
    lines += group(["*"], ["Allow: /"])
    lines += [f"Sitemap: {absolute_url(brand, 'sitemap.xml')}", ""]
    return "\n".join(lines)


# --- the whole-brand graph -----------------------------------------------------------------


# Entities per part of the brand graph, on average (see ``graph_parts``).
GRAPH_PART_SPACING = 1024


def graph_parts(iris: list[str]) -> list[tuple[int, int]]:
    """The ranges (start, stop) of the parts the graph's entities, in order, are made in.

    A part ends after an entity whose IRI hashes to a boundary (see ``boundary``), or at four
    times the average: an edit changes one part, and an entity added or removed one part,
    whose bytes are all that a build makes again (the others are copied from the previous
    graph).
    """
    ranges: list[tuple[int, int]] = []
    start = 0
    for number, iri in enumerate(iris, start=1):
        if boundary(iri, GRAPH_PART_SPACING) or number - start >= 4 * GRAPH_PART_SPACING:
            ranges.append((start, number))
            start = number
    if start < len(iris):
        ranges.append((start, len(iris)))
    return ranges


def brand_graph_head(site: SiteContent) -> str:
    """The brand graph's opening: its context, the website and, when the brand has none
    published, the organization."""
    head = '{"@context":"https://schema.org","@graph":['
    head += json.dumps(g.website_node(site, absolute_url(site.brand, "")), ensure_ascii=False)
    if site.organization_iri not in site.entities:
        head += "," + json.dumps(g.synthesized_organization(site), ensure_ascii=False)
    return head


BRAND_GRAPH_END = "]}\n"


def brand_graph_nodes(site: SiteContent, contents: list[dict]) -> str:
    """The nodes of these live revisions, each after a comma, as they follow the head."""
    return "".join(
        ","
        + json.dumps(
            g.compact_node(
                content["types"], g.pruned_data(content["data"], site.hidden), iri=content["iri"]
            ),
            ensure_ascii=False,
        )
        for content in contents
    )


def brand_graph_facts(site: SiteContent, keys: list[str]) -> str:
    """The facts of these keys as ``Claim`` nodes, each after a comma."""
    by_key = {fact.key: fact for fact in site.facts}
    return "".join(
        ","
        + json.dumps(
            statement_nodes.fact_node(site.brand, fact.content, fact.about_iri),
            ensure_ascii=False,
        )
        for fact in (by_key[key] for key in keys)
    )


def faq_pages(site: SiteContent) -> dict[str | None, list[LiveStatement]]:
    """The brand's FAQs by the IRI of the entity they are about (None: about the brand), in
    that order; each is one FAQPage of the graph."""
    pages: dict[str | None, list[LiveStatement]] = {}
    for faq in site.faqs:
        pages.setdefault(faq.about_iri, []).append(faq)
    return {about: pages[about] for about in sorted(pages, key=lambda about: about or "")}


def brand_graph_faq_pages(site: SiteContent, abouts: list[str | None]) -> str:
    """The FAQPages of the FAQs about these IRIs, each after a comma."""
    pages = faq_pages(site)
    return "".join(
        ","
        + json.dumps(
            statement_nodes.faq_page_node(site.brand, [faq.content for faq in pages[about]], about),
            ensure_ascii=False,
        )
        for about in abouts
    )
