"""The floor: the least work that produces the same files, to judge publishing against.

Method. After the full publish of N products, the release's output directory is listed
(every file's relative path and size: pages, Markdown twins, sections, llms.txt and its
parts, sitemaps, the graph). Then, timed, on tmpfs (``/dev/shm``) like the publish:

1. for each product and language, its page's JSON-LD is built as a Python dict — the same
   graph the product's page carries (WebSite, ItemPage with its breadcrumb, Organization,
   Product with offers) — from an in-memory record of the product, and serialized with
   ``orjson.dumps``: 2·N serializations;
2. every file of the listing is written at the same relative path with exactly the same
   size: a product's HTML page and its Markdown twin get that product's serialized bytes,
   repeated and cut to the size; every other file (sections, llms, sitemaps, graph…) gets
   the last serialized bytes the same way. Directories are created as needed.

So the floor makes as many files, directories and bytes as the publish, and serializes the
JSON-LD of every product page, with no database, templates, hashing or bookkeeping. The
product records are made before the clock starts (they stand for data already in memory).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from tests.benchmarks import catalog

PRODUCT_PAGE = re.compile(
    r"^(?:(?P<lang>[A-Za-z-]+)/)?products/tea-(?P<n>\d+)/index\.html(?:\.md)?$"
)
LANGUAGE_UI = {
    "en": {"home": "Home", "products": "Products"},
    "zh-Hans": {"home": "首页", "products": "产品"},
}


@dataclass(frozen=True)
class SiteFile:
    path: str  # relative to the release's root
    size: int


@dataclass
class FloorResult:
    seconds: float
    files: int
    bytes: int
    directories: int
    serializations: int


def site_listing(root: Path) -> list[SiteFile]:
    """Every file under ``root`` (a symlink to the release is followed), sorted by path."""
    found: list[SiteFile] = []
    pending = [(str(root.resolve()), "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, f"{prefix}{entry.name}/"))
                else:
                    found.append(SiteFile(prefix + entry.name, entry.stat().st_size))
    return sorted(found, key=lambda f: f.path)


def page_url(language: str, path: str) -> str:
    prefix = "" if language == catalog.LANGUAGES[0] else f"{language}/"
    return f"{catalog.BASE_URL}/{prefix}{path}"


def product_page_jsonld(item: catalog.Product, language: str) -> dict:
    """The graph of a product's page, as the product's page carries it."""
    url = page_url(language, f"products/{item.slug}/")
    ui = LANGUAGE_UI[language]
    org_name = catalog.NAME if language == "en" else "长椅茶"
    return {
        "@context": "https://schema.org",
        "@graph": [
            {
                "@id": f"{catalog.BASE_URL}/#website",
                "@type": "WebSite",
                "name": catalog.NAME,
                "url": f"{catalog.BASE_URL}/",
                "inLanguage": catalog.LANGUAGES,
                "publisher": {"@id": catalog.ORG_IRI},
            },
            {
                "@id": url,
                "@type": "ItemPage",
                "url": url,
                "name": item.name(language),
                "inLanguage": language,
                "isPartOf": {"@id": f"{catalog.BASE_URL}/#website"},
                "dateModified": "2026-01-01T00:00:00+00:00",
                "breadcrumb": {
                    "@type": "BreadcrumbList",
                    "itemListElement": [
                        {
                            "@type": "ListItem",
                            "position": 1,
                            "name": ui["home"],
                            "item": page_url(language, ""),
                        },
                        {
                            "@type": "ListItem",
                            "position": 2,
                            "name": ui["products"],
                            "item": page_url(language, "products/"),
                        },
                        {
                            "@type": "ListItem",
                            "position": 3,
                            "name": item.name(language),
                            "item": url,
                        },
                    ],
                },
                "description": item.description(language),
                "mainEntity": {"@id": item.iri},
            },
            {
                "@id": catalog.ORG_IRI,
                "@type": "Organization",
                "name": org_name,
                "url": f"{catalog.BASE_URL}/",
            },
            {
                "@id": item.iri,
                "@type": "Product",
                "brand": {"@id": catalog.ORG_IRI},
                "description": item.description(language),
                "gtin13": item.gtin13,
                "image": item.image,
                "name": item.name(language),
                "offers": [
                    {
                        "@type": "Offer",
                        "availability": catalog.IN_STOCK,
                        "price": price,
                        "priceCurrency": currency,
                    }
                    for price, currency in item.offers()
                ],
                "sku": item.sku,
            },
        ],
    }


def sized(content: bytes, size: int) -> bytes:
    """``content`` repeated and cut to exactly ``size`` bytes."""
    if size <= 0:
        return b""
    repeats = -(-size // max(len(content), 1))
    return (content * repeats)[:size]


def product_key(path: str) -> tuple[int, str] | None:
    """(product number, language) of a product page or its twin, else None."""
    match = PRODUCT_PAGE.match(path)
    if match is None:
        return None
    return int(match["n"]), match["lang"] or catalog.LANGUAGES[0]


def floor_write(listing: list[SiteFile], records: dict[int, catalog.Product], out: Path) -> int:
    """Serialize and write; returns the number of serializations (the timed part).

    A page and its twin are adjacent in the sorted listing, so one serialization serves both.
    """
    serializations = 0
    made: set[Path] = set()
    last_key: tuple[int, str] | None = None
    content = b"{}"
    for entry in listing:
        key = product_key(entry.path)
        if key is not None and key != last_key and key[0] in records:
            content = orjson.dumps(product_page_jsonld(records[key[0]], key[1]))
            serializations += 1
            last_key = key
        destination = out / entry.path
        if destination.parent not in made:
            destination.parent.mkdir(parents=True, exist_ok=True)
            made.add(destination.parent)
        with open(destination, "wb") as handle:
            handle.write(sized(content, entry.size))
    return serializations


def floor_measure(site_root: Path, out: Path) -> FloorResult:
    """List ``site_root``, then time writing its files' sizes under ``out`` (see module doc)."""
    listing = site_listing(site_root)
    numbers = {key[0] for f in listing if (key := product_key(f.path))}
    records = {n: catalog.product(n) for n in numbers}
    started = time.perf_counter()
    serializations = floor_write(listing, records, out)
    seconds = time.perf_counter() - started
    return FloorResult(
        seconds=seconds,
        files=len(listing),
        bytes=sum(f.size for f in listing),
        directories=len({str(Path(f.path).parent) for f in listing}),
        serializations=serializations,
    )
