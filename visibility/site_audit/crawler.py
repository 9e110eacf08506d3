"""A polite crawler for the site audit: robots.txt first, sitemaps next, then links.

Politeness and bounds: robots.txt is honoured for our own user agent (``Sourcebook-Audit``,
its Crawl-delay too, read by Protego, the parser Scrapy uses, which follows RFC 9309);
pages listed in the sitemaps come before links found on pages; the crawl stops at a number of
pages, a link depth, a time and a number of bytes, reads at most ``max_page_bytes`` of a
page, follows redirects one at a time (a loop is named, not followed) and never leaves the
start address's origin. Two requests at most are in flight. Every request goes through
``config.egress.egress_session``: the address is checked after it is resolved.
"""

from __future__ import annotations

import contextvars
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
from protego import Protego

from config.egress import EgressRefused, egress_session

USER_AGENT = "Sourcebook-Audit/1.0 (GEO site audit; robots.txt honoured)"
ROBOTS_TOKEN = "Sourcebook-Audit"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
# Addresses that are never pages: media and downloads are not read.
NOT_PAGES = (
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg", ".ico", ".pdf", ".zip",
    ".mp4", ".mp3", ".woff", ".woff2", ".css", ".js", ".json", ".jsonld", ".xml", ".txt",
    ".md", ".csv",
)  # fmt: skip
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class CrawlLimits:
    max_pages: int = 50
    max_depth: int = 3
    max_seconds: float = 300.0
    max_page_bytes: int = 2_000_000
    max_total_bytes: int = 50_000_000
    max_redirects: int = 5
    max_sitemaps: int = 10
    timeout: float = 10.0
    concurrency: int = 2


@dataclass
class Fetched:
    """What one address gave, after its redirects."""

    url: str
    final_url: str = ""
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    truncated: bool = False
    error: str = ""
    redirects: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and self.status is not None and 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def is_html(self) -> bool:
        return self.content_type in HTML_TYPES

    def text(self) -> str:
        return self.body.decode(charset_of(self.headers.get("content-type", "")), "replace")


@dataclass
class Visit:
    """An address the crawl queued, and what became of it."""

    url: str
    depth: int
    in_sitemap: bool = False
    sitemap_lastmod: str = ""
    fetched: Fetched | None = None
    skipped: str = ""  # why it was not fetched


@dataclass
class Crawl:
    origin: str
    start_url: str
    robots: Fetched | None = None
    robots_parser: Protego | None = None
    sitemap_urls: list[str] = field(default_factory=list)
    sitemap_errors: list[str] = field(default_factory=list)
    sitemap_entries: dict[str, str] = field(default_factory=dict)  # url → lastmod ("" if none)
    visits: list[Visit] = field(default_factory=list)
    extra: dict[str, Fetched] = field(default_factory=dict)  # llms.txt, Markdown twins…
    stopped_by: str = ""  # the limit that ended the crawl, if one did
    bytes_read: int = 0
    started: float = field(default_factory=time.monotonic)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def normalized(url: str) -> str:
    """The address without its fragment, scheme and host in lower case, "/" for no path."""
    url = urldefrag(url.strip())[0]
    parts = urlsplit(url)
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}{query}"


def charset_of(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
            try:
                "".encode(charset)
            except LookupError:
                return "utf-8"
            return charset
    return "utf-8"


class Fetcher:
    """Fetches one address at a time per thread, redirects followed by hand (each hop is a
    request of its own through the egress check), bodies read up to a limit."""

    def __init__(self, limits: CrawlLimits):
        self.limits = limits
        self.session = egress_session()
        self.session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self.session.close()

    def fetch(
        self, url: str, *, max_bytes: int | None = None, origin: str | None = None
    ) -> Fetched:
        max_bytes = self.limits.max_page_bytes if max_bytes is None else max_bytes
        result = Fetched(url=url)
        seen = [normalized(url)]
        current = url
        for _ in range(self.limits.max_redirects + 1):
            try:
                response = self.session.get(
                    current, allow_redirects=False, stream=True, timeout=self.limits.timeout
                )
            except EgressRefused as error:
                result.error = f"not fetched: {error}"
                return result
            except requests.RequestException as error:
                result.error = f"could not be fetched: {type(error).__name__}"
                return result
            with response:
                result.status = response.status_code
                result.headers = {k.lower(): v for k, v in response.headers.items()}
                result.final_url = current
                location = response.headers.get("Location")
                if response.is_redirect and location:
                    target = urljoin(current, location)
                    result.redirects.append(target)
                    if normalized(target) in seen:
                        chain = " → ".join([*seen, normalized(target)])
                        result.error = f"redirect loop: {chain}"
                        return result
                    if origin and origin_of(target) != origin:
                        result.error = f"redirects off the site, to {target}"
                        return result
                    seen.append(normalized(target))
                    current = target
                    continue
                body = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        result.truncated = True
                        del body[max_bytes:]
                        break
                result.body = bytes(body)
                return result
        result.error = f"more than {self.limits.max_redirects} redirects"
        return result


def parse_sitemap(body: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    """(url, lastmod) entries of a urlset, and the sitemaps a sitemap index lists."""
    root = ET.fromstring(body)
    urls, sitemaps = [], []
    for element in root:
        loc = (element.findtext(f"{SITEMAP_NS}loc") or "").strip()
        lastmod = (element.findtext(f"{SITEMAP_NS}lastmod") or "").strip()
        if not loc:
            continue
        if element.tag == f"{SITEMAP_NS}url":
            urls.append((loc, lastmod))
        elif element.tag == f"{SITEMAP_NS}sitemap":
            sitemaps.append(loc)
    return urls, sitemaps


Progress = Callable[[int, int], None]


def site_crawl(
    url: str,
    *,
    limits: CrawlLimits,
    links_of: Callable[[Fetched], list[str]],
    progress: Progress | None = None,
    then: Callable[[Crawl, Fetcher], None] | None = None,
) -> Crawl:
    """Crawl the site ``url`` is on, starting there. ``links_of`` reads a fetched HTML page's
    links (the page reader's job, not the crawler's); ``then`` fetches what the pages pointed
    to (llms.txt, Markdown twins) with the same fetcher."""
    crawl = Crawl(origin=origin_of(url), start_url=normalized(url))
    fetcher = Fetcher(limits)
    try:
        robots_read(crawl, fetcher)
        sitemaps_read(crawl, fetcher, limits)
        pages_crawl(crawl, fetcher, limits, links_of, progress)
        if then:
            then(crawl, fetcher)
    finally:
        fetcher.close()
    return crawl


def robots_read(crawl: Crawl, fetcher: Fetcher) -> None:
    crawl.robots = fetcher.fetch(
        f"{crawl.origin}/robots.txt", max_bytes=500_000, origin=crawl.origin
    )
    crawl.bytes_read += len(crawl.robots.body)
    # RFC 9309: no robots.txt (4xx) allows everything; one that cannot be read (5xx, a
    # network error) disallows everything, for us as for every crawler (the report says so).
    if crawl.robots.ok:
        text = crawl.robots.text()
    elif robots_unreachable(crawl.robots):
        text = "User-agent: *\nDisallow: /\n"
    else:
        text = ""
    crawl.robots_parser = Protego.parse(text)


def robots_unreachable(robots: Fetched | None) -> bool:
    return robots is not None and (
        bool(robots.error) or robots.status is None or robots.status >= 500
    )


def allowed(crawl: Crawl, url: str, agent: str = ROBOTS_TOKEN) -> bool:
    return crawl.robots_parser is None or crawl.robots_parser.can_fetch(url, agent)


def sitemaps_read(crawl: Crawl, fetcher: Fetcher, limits: CrawlLimits) -> None:
    if robots_unreachable(crawl.robots):
        return
    listed = list(crawl.robots_parser.sitemaps) if crawl.robots_parser else []
    queue = [normalized(s) for s in listed] or [f"{crawl.origin}/sitemap.xml"]
    read: list[str] = []
    while queue and len(read) < limits.max_sitemaps:
        sitemap_url = queue.pop(0)
        if sitemap_url in read:
            continue
        read.append(sitemap_url)
        fetched = fetcher.fetch(sitemap_url, max_bytes=10_000_000, origin=crawl.origin)
        crawl.bytes_read += len(fetched.body)
        if not fetched.ok:
            if listed or fetched.status not in (404, 410):
                crawl.sitemap_errors.append(
                    f"{sitemap_url}: {fetched.error or f'HTTP {fetched.status}'}"
                )
            continue
        try:
            urls, more = parse_sitemap(fetched.body)
        except ET.ParseError as error:
            crawl.sitemap_errors.append(f"{sitemap_url}: not XML ({error})")
            continue
        crawl.sitemap_urls.append(sitemap_url)
        queue.extend(normalized(s) for s in more)
        for loc, lastmod in urls:
            crawl.sitemap_entries.setdefault(normalized(loc), lastmod)


def is_page_address(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return not path.endswith(NOT_PAGES)


def pages_crawl(
    crawl: Crawl,
    fetcher: Fetcher,
    limits: CrawlLimits,
    links_of: Callable[[Fetched], list[str]],
    progress: Progress | None,
) -> None:
    queued: set[str] = set()
    pending: list[Visit] = []

    def enqueue(url: str, depth: int) -> None:
        url = normalized(url)
        if url in queued or origin_of(url) != crawl.origin or not is_page_address(url):
            return
        queued.add(url)
        lastmod = crawl.sitemap_entries.get(url)
        visit = Visit(url, depth, in_sitemap=lastmod is not None, sitemap_lastmod=lastmod or "")
        crawl.visits.append(visit)
        if not allowed(crawl, url):
            visit.skipped = "disallowed by robots.txt for Sourcebook-Audit"
            return
        pending.append(visit)

    enqueue(crawl.start_url, 0)
    for url in crawl.sitemap_entries:
        enqueue(url, 1)
    delay = 0.0
    if crawl.robots_parser is not None:
        delay = min(float(crawl.robots_parser.crawl_delay(ROBOTS_TOKEN) or 0), 10.0)
    fetched_count = 0
    with ThreadPoolExecutor(max_workers=limits.concurrency) as pool:
        running: dict = {}
        while pending or running:
            stop = stop_reason(crawl, limits, fetched_count + len(running))
            while pending and not stop and len(running) < limits.concurrency:
                visit = pending.pop(0)
                # In the caller's context: the egress allowances (a ContextVar) hold there too.
                context = contextvars.copy_context()
                future = pool.submit(context.run, fetcher.fetch, visit.url, origin=crawl.origin)
                running[future] = visit
                stop = stop_reason(crawl, limits, fetched_count + len(running))
                if delay:
                    time.sleep(delay)
            if not running:
                crawl.stopped_by = stop
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                visit = running.pop(future)
                visit.fetched = future.result()
                fetched_count += 1
                crawl.bytes_read += len(visit.fetched.body)
                if visit.fetched.truncated:
                    visit.skipped = (
                        f"larger than {limits.max_page_bytes:,} bytes: only the start was read"
                    )
                if visit.fetched.ok and visit.fetched.is_html and visit.depth < limits.max_depth:
                    for link in links_of(visit.fetched):
                        enqueue(link, visit.depth + 1)
                if progress:
                    progress(fetched_count, min(limits.max_pages, fetched_count + len(pending)))
    for visit in pending:
        visit.skipped = f"not crawled: {crawl.stopped_by}"


def stop_reason(crawl: Crawl, limits: CrawlLimits, pages: int) -> str:
    if pages >= limits.max_pages:
        return f"the page limit ({limits.max_pages}) was reached"
    if time.monotonic() - crawl.started > limits.max_seconds:
        return f"the time limit ({limits.max_seconds:.0f} s) was reached"
    if crawl.bytes_read > limits.max_total_bytes:
        return f"the byte limit ({limits.max_total_bytes:,}) was reached"
    return ""


def extra_fetch(crawl: Crawl, fetcher: Fetcher, url: str, *, max_bytes: int = 1_000_000) -> Fetched:
    if not allowed(crawl, url):
        fetched = Fetched(url=url, error="disallowed by robots.txt for Sourcebook-Audit")
        crawl.extra[url] = fetched
        return fetched
    fetched = fetcher.fetch(url, max_bytes=max_bytes, origin=crawl.origin)
    crawl.bytes_read += len(fetched.body)
    crawl.extra[url] = fetched
    return fetched
