"""The site's report: AI readiness, the entity graph across pages, the score and the fixes.

The score is a sum of parts, each a weight times a fraction between 0 and 1 (``PARTS``);
the report carries every part's fraction and points, so the formula is shown with the
numbers that went in. A fix names the part it repairs; fixes are ranked by the points they
would add.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import llms_txt

from kb.quality import INELIGIBLE, is_a
from visibility.access_logs import AGENTS
from visibility.site_audit.crawler import (
    ROBOTS_TOKEN,
    Crawl,
    Fetched,
    allowed,
    origin_of,
    robots_unreachable,
)
from visibility.site_audit.pages import (
    ERROR,
    Node,
    PageReading,
    differences,
    entity_label,
    group_by_keys,
)

# The types Google's rich results have profiles for (kb.quality checks them).
PROFILED_TYPES = ("Product", "LocalBusiness", "Article")


@dataclass(frozen=True)
class Part:
    key: str
    group: str
    weight: int
    label: str  # what the fraction measures
    fix: str  # what to do when it is not 1
    unlocks: str  # what doing it gains


PARTS: tuple[Part, ...] = (
    Part("ai_access", "AI crawler access", 25,
         "share of pages the AI search and user agents may fetch (robots.txt)",
         "Allow the AI search and user agents in robots.txt",
         "Answer engines can read, and so cite, those pages"),
    Part("coverage", "Structured data", 10, "share of pages with structured data",
         "Add schema.org structured data to the pages without it",
         "Engines know what each page is about: product, store, organization, FAQ"),
    Part("jsonld", "Structured data", 5, "share of pages with structured data in JSON-LD",
         "Publish the structured data as JSON-LD",
         "The form Google recommends and AI crawlers read most reliably"),
    Part("validity", "Structured data", 6,
         "share of entities without errors (schema.org vocabulary, Google's profiles)",
         "Fix the structured-data errors", "Entities engines can use, and rich results"),
    Part("eligibility", "Structured data", 4,
         "share of products, local businesses and articles eligible for Google's rich results",
         "Give rich results what they need (a price and currency, an image, an address…)",
         "Product, merchant-listing and local results in Google"),
    Part("ids", "Entity graph", 7, "share of organizations, people, products and places with an @id",
         "Give every entity a stable @id", "One entity across pages, not many look-alikes"),
    Part("references", "Entity graph", 4, "share of references to entities the site describes",
         "Describe what the references point to, or fix their @id",
         "Engines follow the links between the brand's entities"),
    Part("consistency", "Entity graph", 4, "share of entities described consistently",
         "Settle the conflicting descriptions", "Engines state the right value, not a guess"),
    Part("llms_txt", "AI-ready files", 10, "llms.txt present (0.4) and valid for the reference parser (1)",
         "Publish a valid /llms.txt", "Agents find the site's key pages in one file"),
    Part("markdown", "AI-ready files", 5, "share of pages with a Markdown alternate",
         "Offer each page as Markdown (<link rel=\"alternate\" type=\"text/markdown\">)",
         "Agents read the page's text without its markup"),
    Part("content_signal", "AI-ready files", 5, "Content-Signal given (robots.txt or header)",
         "Say what AI may do with the content (Content-Signal in robots.txt)",
         "Search and answer engines know they may use it"),
    Part("readable", "Readable pages", 6, "share of pages whose text shows without JavaScript",
         "Render the pages' text on the server", "AI crawlers, which run no scripts, see the text"),
    Part("fetchable", "Readable pages", 4, "share of addresses that answer with a page",
         "Fix the broken addresses (errors, redirect loops, oversized pages)",
         "Every linked page can be read"),
    Part("sitemap", "Freshness", 2, "sitemap with lastmod (1), without (0.5)",
         "Publish a sitemap with lastmod", "Crawlers find new and changed pages first"),
    Part("lastmod", "Freshness", 3, "share of sitemap lastmod dates that are honest",
         "Give each page's lastmod as its last real change",
         "Crawlers trust the dates and re-read changed pages"),
)  # fmt: skip
GRADES = ((90, "A"), (75, "B"), (60, "C"), (40, "D"), (0, "E"))


def grade(score: int) -> str:
    return next(letter for floor, letter in GRADES if score >= floor)


def formula() -> str:
    return "score = " + " + ".join(f"{part.weight} × {part.key}" for part in PARTS)


@dataclass
class SiteFacts:
    """What the report is made from."""

    crawl: Crawl
    readings: dict[str, PageReading]  # final page URL → reading
    markdown_checks: dict[str, Fetched]  # markdown URL → what it gave
    llms: Fetched | None
    llms_full: Fetched | None
    # The last audit of the site: page URL → (text hash, sitemap lastmod), to catch lastmod
    # dates that move while the page stays the same.
    previous: dict[str, tuple[str, str]] = field(default_factory=dict)


def site_report(facts: SiteFacts, *, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    crawl = facts.crawl
    pages = [r for r in facts.readings.values()]
    agents = agent_policy(crawl, [r.url for r in pages] or [crawl.start_url])
    llms = llms_check(facts.llms, facts.llms_full, crawl.origin)
    signal = content_signal(crawl)
    lastmod = lastmod_check(crawl, facts.readings, now, facts.previous)
    graph = entity_graph(facts.readings, crawl.origin)
    fractions = part_fractions(facts, agents, llms, signal, lastmod, graph)
    parts = [
        {"key": p.key, "group": p.group, "weight": p.weight, "label": p.label,
         "fraction": round(fractions[p.key], 4), "points": round(p.weight * fractions[p.key], 2)}
        for p in PARTS
    ]  # fmt: skip
    score = round(sum(part["points"] for part in parts))
    return {
        "origin": crawl.origin,
        "start_url": crawl.start_url,
        "score": score,
        "grade": grade(score),
        "formula": formula(),
        "parts": parts,
        "fixes": ranked_fixes(parts, facts, agents, llms, signal, lastmod, graph),
        "agents": agents,
        "robots": {
            "status": crawl.robots.status if crawl.robots else None,
            "error": crawl.robots.error if crawl.robots else "",
            "unreachable": robots_unreachable(crawl.robots),
            "ours_allowed": allowed(crawl, crawl.start_url, ROBOTS_TOKEN),
        },
        "llms_txt": llms,
        "content_signal": signal,
        "sitemap": lastmod,
        "graph": graph,
        "crawl": {
            "pages": len(pages),
            "addresses": len(crawl.visits),
            "skipped": sum(1 for v in crawl.visits if v.skipped and not v.fetched),
            "stopped_by": crawl.stopped_by,
            "bytes": crawl.bytes_read,
        },
        "levels": dict(Counter(f["level"] for r in pages for f in r.findings)),  # the pages read
    }


# --- AI agents --------------------------------------------------------------------------------


def agent_policy(crawl: Crawl, urls: list[str]) -> list[dict]:
    rows = []
    for agent in AGENTS:
        allowed_count = sum(1 for url in urls if allowed(crawl, url, agent.token))
        rows.append({
            "token": agent.token, "operator": agent.operator, "purpose": agent.purpose,
            "engine": agent.engine, "allowed": allowed_count, "pages": len(urls),
            "home_allowed": allowed(crawl, crawl.start_url, agent.token),
        })  # fmt: skip
    return rows


def counted_agents(agents: list[dict]) -> list[dict]:
    """The agents whose access the score counts: search and user-triggered fetchers.
    Training is the brand's choice and costs nothing."""
    return [a for a in agents if a["purpose"] in ("search", "user")]


# --- llms.txt, Content-Signal ---------------------------------------------------------------


def llms_check(llms: Fetched | None, llms_full: Fetched | None, origin: str) -> dict:
    out = {"url": f"{origin}/llms.txt", "present": False, "valid": False, "problems": [],
           "title": "", "sections": 0, "links": 0,
           "full_present": bool(llms_full and llms_full.ok)}  # fmt: skip
    if llms is None or not llms.ok:
        out["problems"].append(
            f"No llms.txt ({llms.error or f'HTTP {llms.status}'})" if llms else "No llms.txt"
        )
        return out
    out["present"] = True
    text = llms.text()
    if text.startswith("\ufeff"):
        out["problems"].append("it starts with a byte order mark")
    if "\r\n" in text:
        out["problems"].append("it has CRLF line ends")
    try:
        parsed = llms_txt.parse_llms_file(text.replace("\r\n", "\n").lstrip("\ufeff"))
    except Exception as error:  # the reference parser raises what its regexes meet
        out["problems"].append(f"the reference parser cannot read it ({type(error).__name__})")
        return out
    out["title"] = parsed.get("title") or ""
    sections = parsed.get("sections") or {}
    out["sections"] = len(sections)
    links = [link for items in sections.values() for link in items]
    out["links"] = len(links)
    if not out["title"]:
        out["problems"].append("no H1 title on its first line")
    if not parsed.get("summary"):
        out["problems"].append("no summary (a > blockquote after the title)")
    if not links:
        out["problems"].append("no links in ## sections")
    relative = [link["url"] for link in links if "://" not in (link.get("url") or "")]
    if relative:
        out["problems"].append(f"{len(relative)} relative link(s), e.g. {relative[0]}")
    out["valid"] = not out["problems"]
    return out


SIGNAL_LINE = re.compile(r"^\s*content-signal\s*:\s*(.+?)\s*$", re.I | re.M)
USAGE_LINE = re.compile(r"^\s*content-usage\s*:\s*(.+?)\s*$", re.I | re.M)


def content_signal(crawl: Crawl) -> dict:
    text = crawl.robots.text() if crawl.robots and crawl.robots.ok else ""
    signals = list(dict.fromkeys(SIGNAL_LINE.findall(text)))
    usage = list(dict.fromkeys(USAGE_LINE.findall(text)))
    header = ""
    for visit in crawl.visits:
        if visit.fetched and visit.fetched.ok:
            header = visit.fetched.headers.get("content-signal", "")
            usage = usage or [u for u in [visit.fetched.headers.get("content-usage", "")] if u]
            break
    return {"robots": signals, "header": header, "content_usage": usage,
            "present": bool(signals or header)}  # fmt: skip


# --- sitemap lastmod --------------------------------------------------------------------------


def parse_lastmod(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def lastmod_check(
    crawl: Crawl,
    readings: dict[str, PageReading],
    now: datetime,
    previous: dict[str, tuple[str, str]],
) -> dict:
    """Sitemap dates that cannot be true: not dates, in the future, older than the page's own
    dateModified, or (against the last audit) moved while the page's text stayed the same.
    One instant for nearly every page is only a suspicion (a build time, or a site published
    at once): the next audit tells."""
    entries = crawl.sitemap_entries
    dated = {url: value for url, value in entries.items() if value}
    problems: dict[str, str] = {}
    suspicion = ""
    for url, value in dated.items():
        when = parse_lastmod(value)
        if when is None:
            problems[url] = f"lastmod {value!r} is not a W3C date"
        elif when > now + timedelta(days=1):
            problems[url] = f"lastmod {value} is in the future"
    timed = [v for v in dated.values() if "T" in v]
    common, count = Counter(timed).most_common(1)[0] if timed else ("", 0)
    if count >= 5 and count > 0.8 * len(dated):
        suspicion = (
            f"lastmod is the same instant ({common}) for {count} of {len(dated)} pages: a "
            "build time, unless they really changed together. The next audit will tell."
        )
    for url, value in dated.items():
        reading = readings.get(url)
        before = previous.get(url)
        if (
            reading
            and before
            and before[0] == reading.content_hash
            and before[1]
            and (before[1] != value)
        ):
            problems.setdefault(
                url, f"lastmod moved from {before[1]} to {value} while the page stayed the same"
            )
            continue
        when = parse_lastmod(value)
        if reading is None or when is None or url in problems:
            continue
        modified = [
            parse_lastmod(v) for node in reading.nodes for v in node.values.get("dateModified", [])
        ]
        latest = max((m for m in modified if m), default=None)
        if latest and latest > when + timedelta(days=1):
            problems[url] = f"lastmod {value} is older than the page's dateModified {latest.date()}"
    return {
        "sitemaps": crawl.sitemap_urls,
        "errors": crawl.sitemap_errors,
        "entries": len(entries),
        "with_lastmod": len(dated),
        "suspicion": suspicion,
        "problems": [{"url": url, "message": message} for url, message in problems.items()],
    }


# --- the entity graph across pages ------------------------------------------------------------


def entity_graph(readings: dict[str, PageReading], origin: str) -> dict:
    defined: set[str] = set()
    nodes_by_page: list[tuple[str, Node]] = []
    for url, reading in readings.items():
        for node in reading.nodes:
            nodes_by_page.append((url, node))
            if node.iri:
                defined.add(node.iri)
    dangling: dict[str, set[str]] = {}
    refs = 0
    for url, node in nodes_by_page:
        for _prop, target in node.refs:
            if target.startswith("_:") or origin_of(target) != origin:
                continue
            refs += 1
            if target not in defined:
                dangling.setdefault(target, set()).add(url)
    groups = site_groups(nodes_by_page)
    conflicts = []
    for group in groups:
        pages_of = {}
        for url, node in group:
            pages_of.setdefault(url, node)
        if len(pages_of) < 2:
            continue
        differing = differences(list(pages_of.values()))
        if not differing:
            continue
        first = group[0][1]
        conflicts.append({
            "entity": f"{first.types[0]} “{first.name}”" if first.name else first.types[0],
            "identity": first.identity,
            "properties": {
                prop: [
                    {"value": " | ".join(values), "pages": sorted(
                        url for url, node in pages_of.items()
                        if node_has(node, prop, values))}
                    for values in sets
                ]
                for prop, sets in differing.items()
            },
        })  # fmt: skip
    identified = [n for _, n in nodes_by_page if n.top_level and n.identity]
    return {
        "entities": len({n.identity for n in identified}),
        "with_id": len({n.identity for n in identified if n.iri}),
        "references": refs,
        "dangling": [
            {"iri": iri, "pages": sorted(pages)} for iri, pages in sorted(dangling.items())
        ],
        "conflicts": conflicts,
    }


def node_has(node: Node, prop: str, values: list[str]) -> bool:
    name, _, tag = prop.partition("@")
    return node.by_language.get(name, {}).get(tag) == values


def site_groups(nodes_by_page: list[tuple[str, Node]]) -> list[list[tuple[str, Node]]]:
    """Top-level nodes that are one entity (sharing any identity key), across pages."""
    top = [(url, node) for url, node in nodes_by_page if node.top_level and node.identity]
    return group_by_keys(top, lambda pair: pair[1].keys or [pair[1].identity])


# --- the score ----------------------------------------------------------------------------------


def share(part: int, whole: int, empty: float = 0.0) -> float:
    return part / whole if whole else empty


def part_fractions(facts, agents, llms, signal, lastmod, graph) -> dict[str, float]:
    crawl = facts.crawl
    pages = list(facts.readings.values())
    with_data = [r for r in pages if r.graphs]
    entities = [(r, g, e) for r in pages for g in r.graphs for e in g.entities]
    entity_errors = {
        (r.url, g.label, f.get("entity"))
        for r in pages for g in r.graphs for f in g.problems if f["level"] == ERROR
    }  # fmt: skip
    valid_entities = sum(
        1 for r, g, e in entities
        if (r.url, g.label, entity_label(e)) not in entity_errors
        and (r.url, g.label, None) not in entity_errors
    )  # fmt: skip
    counted = counted_agents(agents)
    attempted = [v for v in crawl.visits if v.fetched is not None]
    fetched_ok = [v for v in attempted if v.fetched.ok and not v.fetched.truncated]
    # A sample of the Markdown alternates is fetched: a page whose alternate was fetched and
    # did not answer with Markdown does not count.
    markdown_ok = sum(
        1 for r in pages if r.markdown_url and (
            r.markdown_url not in facts.markdown_checks
            or markdown_works(facts.markdown_checks[r.markdown_url]))
    )  # fmt: skip
    profiled = [(r, g, e) for r, g, e in entities if any(is_a(e.types, t) for t in PROFILED_TYPES)]
    ineligible = {
        (r.url, g.label, f.get("entity"))
        for r in pages for g in r.graphs for f in g.problems if f["level"] == INELIGIBLE
    }  # fmt: skip
    eligible = sum(1 for r, g, e in profiled if (r.url, g.label, entity_label(e)) not in ineligible)
    conflicted = len(graph["conflicts"]) + len({
        f["entity"] for r in pages for f in r.findings if f["code"] == "conflict"
    })  # fmt: skip
    with_lastmod = lastmod["with_lastmod"]
    return {
        "ai_access": share(sum(a["allowed"] for a in counted), sum(a["pages"] for a in counted)),
        "coverage": share(len(with_data), len(pages)),
        "jsonld": share(sum(1 for r in with_data if any(g.syntax == "JSON-LD" for g in r.graphs)),
                        len(with_data)),
        "validity": share(valid_entities, len(entities)),
        "eligibility": share(eligible, len(profiled)),
        "ids": share(graph["with_id"], graph["entities"]),
        "references": (1 - share(len(graph["dangling"]), graph["references"]))
        if graph["entities"] else 0.0,
        "consistency": 1 - min(1.0, share(conflicted, graph["entities"])) if graph["entities"] else 0.0,
        "llms_txt": 1.0 if llms["valid"] else 0.4 if llms["present"] else 0.0,
        "markdown": share(markdown_ok, len(pages)),
        "content_signal": 1.0 if signal["present"] else 0.0,
        "readable": share(sum(1 for r in pages if not r.needs_javascript), len(pages)),
        "fetchable": share(len(fetched_ok), len(attempted)),
        "sitemap": (1.0 if with_lastmod and with_lastmod >= 0.9 * lastmod["entries"]
                    else 0.5 if lastmod["entries"] else 0.0),
        "lastmod": (1 - share(len(lastmod["problems"]), with_lastmod)) if with_lastmod else 0.0,
    }  # fmt: skip


def markdown_works(fetched: Fetched | None) -> bool:
    if fetched is None or not fetched.ok:
        return False
    return fetched.content_type in ("text/markdown", "text/plain", "text/x-markdown")


def ranked_fixes(parts, facts, agents, llms, signal, lastmod, graph) -> list[dict]:
    """What to do, most points first, with the pages or agents each fix concerns."""
    by_key = {p.key: p for p in PARTS}
    pages = list(facts.readings.values())
    where: dict[str, list[str]] = {
        "ai_access": [
            f"{a['token']} ({a['engine']}): {a['pages'] - a['allowed']} of {a['pages']} pages blocked"
            for a in counted_agents(agents) if a["allowed"] < a["pages"]
        ] + ([f"robots.txt cannot be read ({facts.crawl.robots.error or f'HTTP {facts.crawl.robots.status}'}): "
              "crawlers treat the whole site as disallowed"]
             if robots_unreachable(facts.crawl.robots) else []),
        "coverage": [r.url for r in pages if not r.graphs],
        "jsonld": [r.url for r in pages if r.graphs and not any(g.syntax == "JSON-LD" for g in r.graphs)],
        "validity": sorted({
            f"{r.url}: {f.get('entity') or f.get('graph', '')}: {f['message']}"
            for r in pages for f in r.findings if f["level"] == ERROR and f["code"].startswith(("invalid", "profile"))
        }),
        "eligibility": sorted({
            f"{r.url}: {f.get('entity', '')}: {f['message']}"
            for r in pages for f in r.findings if f["level"] == INELIGIBLE
        }),
        "ids": sorted({f"{r.url}: {f['message'].split(' has no @id')[0]}"
                       for r in pages for f in r.findings if f["code"] == "no_id"}),
        "references": [f"{d['iri']} (on {len(d['pages'])} page(s))" for d in graph["dangling"]],
        "consistency": [f"{c['entity']}: {', '.join(c['properties'])}" for c in graph["conflicts"]]
        + sorted({f"{r.url}: {f['message'].split(' is described')[0]}"
                  for r in pages for f in r.findings if f["code"] == "conflict"}),
        "llms_txt": llms["problems"],
        "markdown": [r.url for r in pages if not r.markdown_url] + [
            f"{url}: {fetched.error or f'HTTP {fetched.status} {fetched.content_type}'}"
            for url, fetched in facts.markdown_checks.items() if not markdown_works(fetched)
        ],
        "content_signal": [] if signal["present"] else ["robots.txt has no Content-Signal line"],
        "readable": [r.url for r in pages if r.needs_javascript],
        "fetchable": [f"{v.url}: {v.fetched.error or v.skipped or f'HTTP {v.fetched.status}'}"
                      for v in facts.crawl.visits
                      if v.fetched is not None and (not v.fetched.ok or v.fetched.truncated)],
        "sitemap": lastmod["errors"] or ([] if lastmod["entries"] else ["no sitemap found"]),
        "lastmod": [f"{p['url']}: {p['message']}" for p in lastmod["problems"]],
    }  # fmt: skip
    fixes = []
    for part in parts:
        gain = round(part["weight"] - part["points"], 2)
        if gain <= 0:
            continue
        meta = by_key[part["key"]]
        fixes.append({
            "part": part["key"], "group": meta.group, "title": meta.fix, "unlocks": meta.unlocks,
            "points": gain, "where": where.get(part["key"], [])[:50],
        })  # fmt: skip
    order = [p.key for p in PARTS]
    fixes.sort(key=lambda fix: (-fix["points"], order.index(fix["part"])))
    return fixes
