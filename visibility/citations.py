"""Which sites AI answers cite, and whose they are.

Every URL an answer cites — the engine's own citations and the addresses written in its text
(``visibility.analysis.all_citations``) — is grouped by its site: the registrable domain
(``shop.bbc.co.uk`` → ``bbc.co.uk``, by the Public Suffix List that ``tldextract`` ships;
nothing is fetched). Each site is the brand's own (its domains), a competitor's (the domains
given for it in the prompt set), or a third party's. Per site: the answers citing it, per
engine and question, and per ISO week for trends. Two views answer what marketers ask:
*cited instead of us* (sites cited by answers that cite none of the brand's pages) and *our
pages cited* (which of the brand's pages engines cite, and how often).
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

import tldextract

from visibility.analysis import all_citations, host_of, is_on_domains
from visibility.metrics import Rate, answers_for, period_start
from visibility.models import PromptSet
from visibility.tracking import brand_domains, tracked_competitors

BRAND, COMPETITOR, THIRD_PARTY = "brand", "competitor", "third_party"
TOP = 20  # sites and pages listed


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # The list bundled with the package, never a download; private suffixes (github.io,
    # blogspot.com) count, so two blogs on one host are two sites.
    return tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
    )


def site_of(url: str) -> str:
    """The registrable domain of a URL's host; the host itself for an address or a name the
    Public Suffix List does not know (``.example``: the last two labels)."""
    host = host_of(url)
    if not host:
        return ""
    site = _extractor()(host).top_domain_under_public_suffix
    if site:
        return site
    labels = host.split(".")
    if host.replace(".", "").isdigit() or len(labels) < 2:
        return host
    return ".".join(labels[-2:])


@dataclass
class SiteRow:
    site: str
    owner: str  # BRAND, COMPETITOR or THIRD_PARTY
    competitor: str = ""  # the competitor's name, for its sites
    answers: int = 0  # answers citing the site
    urls: int = 0  # distinct URLs cited on it
    instead_of_us: int = 0  # answers citing it and none of the brand's pages
    engines: Counter = field(default_factory=Counter)
    prompts: Counter = field(default_factory=Counter)
    weeks: Counter = field(default_factory=Counter)  # ISO week (Monday) → answers

    def as_dict(self, answers_citing: int) -> dict:
        share = Rate(self.answers, answers_citing).as_dict()
        return {
            "site": self.site,
            "owner": self.owner,
            "competitor": self.competitor or None,
            "answers": self.answers,
            "share_of_citing_answers": share,
            "urls": self.urls,
            "instead_of_us": self.instead_of_us,
            "engines": dict(self.engines.most_common()),
            "prompts": dict(self.prompts.most_common(5)),
            "weeks": {start.isoformat(): n for start, n in sorted(self.weeks.items())},
        }


@dataclass
class CitationReport:
    answers: int = 0  # answers that came back
    answers_citing: int = 0  # of those, citing at least one URL
    brand_cited: int = 0  # of those, citing one of the brand's pages
    sites: dict[str, SiteRow] = field(default_factory=dict)
    pages: Counter = field(default_factory=Counter)  # the brand's pages → answers citing them
    page_engines: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    per_engine: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def as_dict(self, top: int = TOP) -> dict:
        ranked = sorted(self.sites.values(), key=lambda row: (-row.answers, row.site))
        instead = sorted(
            (row for row in ranked if row.owner != BRAND and row.instead_of_us),
            key=lambda row: (-row.instead_of_us, row.site),
        )
        return {
            "answers": self.answers,
            "answers_citing": self.answers_citing,
            "brand_cited": Rate(self.brand_cited, self.answers).as_dict(),
            "sites": [row.as_dict(self.answers_citing) for row in ranked[:top]],
            "instead_of_us": [row.as_dict(self.answers_citing) for row in instead[:top]],
            "our_pages": [
                {"url": url, "answers": n, "engines": dict(self.page_engines[url].most_common())}
                for url, n in sorted(self.pages.items(), key=lambda item: (-item[1], item[0]))[:top]
            ],
            "engines": [
                {
                    "engine": engine,
                    "answers": counts["answers"],
                    "answers_citing": counts["citing"],
                    "brand_cited": Rate(counts["brand"], counts["answers"]).as_dict(),
                    "competitor_cited": Rate(counts["competitor"], counts["answers"]).as_dict(),
                }
                for engine, counts in sorted(self.per_engine.items())
            ],
        }


def _page_key(url: str) -> str:
    """A brand page as one row however it was written: host and path, no scheme or slash."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    return f"{host_of(url).removeprefix('www.')}{parts.path.rstrip('/') or '/'}"


def citation_report(
    *, brand, since: date | None = None, until: date | None = None, engine: str | None = None
) -> CitationReport:
    """The sites the brand's answers cite in a period (see the module note)."""
    own = brand_domains(brand)
    competitors_of: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
    report = CitationReport()
    answers = (
        answers_for(brand=brand, since=since, until=until, engine=engine)
        .filter(ok=True)
        .values("content", "citations", "asked_at", "engine__name", "prompt__text",
                "prompt__prompt_set_id")
    )  # fmt: skip
    for answer in answers.iterator():
        set_id = answer["prompt__prompt_set_id"]
        if set_id not in competitors_of:
            competitors_of[set_id] = [
                (c.key, c.domains)
                for c in tracked_competitors(PromptSet.objects.get(pk=set_id))
                if c.domains
            ]
        _count(report, answer, own, competitors_of[set_id])
    return report


def _count(report: CitationReport, answer: dict, own, competitors) -> None:
    engine_name, week = answer["engine__name"], period_start(answer["asked_at"].date(), "week")
    urls = all_citations(answer["content"], answer["citations"] or [])
    report.answers += 1
    report.per_engine[engine_name]["answers"] += 1
    if not urls:
        return
    report.answers_citing += 1
    report.per_engine[engine_name]["citing"] += 1
    by_site: dict[str, list[str]] = defaultdict(list)
    owners: dict[str, tuple[str, str]] = {}
    for url in urls:
        site = site_of(url)
        by_site[site].append(url)
        if is_on_domains(url, own):
            owners[site] = (BRAND, "")
        elif site not in owners:
            name = next((n for n, domains in competitors if is_on_domains(url, domains)), "")
            owners[site] = (COMPETITOR, name) if name else (THIRD_PARTY, "")
    cites_brand = any(owner == BRAND for owner, _ in owners.values())
    report.brand_cited += cites_brand
    report.per_engine[engine_name]["brand"] += cites_brand
    report.per_engine[engine_name]["competitor"] += any(
        owner == COMPETITOR for owner, _ in owners.values()
    )
    for site, site_urls in by_site.items():
        owner, competitor = owners[site]
        row = report.sites.setdefault(site, SiteRow(site, owner, competitor))
        row.answers += 1
        row.urls += len(site_urls)
        row.instead_of_us += not cites_brand
        row.engines[engine_name] += 1
        row.prompts[answer["prompt__text"]] += 1
        row.weeks[week] += 1
        if owner == BRAND:
            for page in dict.fromkeys(map(_page_key, site_urls)):
                report.pages[page] += 1
                report.page_engines[page][engine_name] += 1
