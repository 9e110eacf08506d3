"""Product feeds for AI shopping surfaces: the OpenAI product feed (``jsonl.gz``) and a Google
Merchant Center feed (TSV), one of each per market and language.

A row is made from the very node the product's page publishes as JSON-LD in that language
(``publishing.render.graph.full_node``): its price, currency and availability cannot differ
from the page's. A market is what an offer's ``eligibleRegion`` names: a two-letter country
(ISO 3166-1) or ``EU`` (its member states); an offer naming neither, or missing what the
feeds require, is refused with the reason, listed with the release (see
shared/reference/agents-and-feeds.md for the field lists).
"""

from __future__ import annotations

import functools
import gzip
import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry
from babel.numbers import get_currency_precision
from stdnum import ean

from kb import vocabulary
from publishing.render.text import web_url

# The European Union's member states (2026), for offers whose eligibleRegion is "EU".
EU_COUNTRIES = (
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
)  # fmt: skip

# schema.org's ItemAvailability members as both feeds name them.
AVAILABILITY = {
    "InStock": "in_stock",
    "InStoreOnly": "in_stock",
    "OnlineOnly": "in_stock",
    "LimitedAvailability": "in_stock",
    "OutOfStock": "out_of_stock",
    "SoldOut": "out_of_stock",
    "Discontinued": "out_of_stock",
    "PreOrder": "preorder",
    "PreSale": "preorder",
    "BackOrder": "backorder",
}
CONDITION = {"NewCondition": "new", "UsedCondition": "used", "RefurbishedCondition": "refurbished"}
GTIN_PROPERTIES = ("gtin13", "gtin12", "gtin14", "gtin8", "gtin")

# Google Merchant Center's columns, in the order the TSV has them.
GOOGLE_COLUMNS = ("id", "title", "description", "link", "image_link", "availability",
                  "availability_date", "price", "brand", "gtin", "mpn", "identifier_exists",
                  "item_group_id", "condition", "product_type")  # fmt: skip

# Refused offers listed with a release per language (the count covers them all), and per
# part of the feeds (a part's are listed again when it is copied into a later release).
REFUSALS_KEPT = 200
REFUSALS_PER_PART = 20


@dataclass
class FeedRow:
    """One item of one market, in one language: what both feeds say of it."""

    id: str
    title: str
    description: str
    link: str
    image_link: str
    availability: str
    availability_date: str  # when a pre-order or back-order ships (ISO 8601)
    price: str  # "39.00 USD"
    brand: str
    seller: str
    gtin: str
    mpn: str
    item_group_id: str
    condition: str
    product_type: str
    target_countries: list[str]
    store_country: str

    def openai(self) -> dict:
        row = {
            "item_id": self.id,
            "title": self.title,
            "description": self.description,
            "url": self.link,
            "brand": self.brand,
            "seller_name": self.seller,
            "image_url": self.image_link,
            "availability": self.availability,
            "price": self.price,
            "target_countries": self.target_countries,
            "store_country": self.store_country,
            "is_eligible_search": True,
            # Checkout inside ChatGPT needs an integration the brand has not made.
            "is_eligible_checkout": False,
        }
        optional = {
            "availability_date": self.availability_date,
            "gtin": self.gtin,
            "mpn": self.mpn,
            "item_group_id": self.item_group_id,
            "condition": self.condition,
            "product_category": self.product_type,
        }
        row.update((name, value) for name, value in optional.items() if value)
        return row

    def google(self) -> list[str]:
        values = {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "link": self.link,
            "image_link": self.image_link,
            "availability": self.availability,
            "availability_date": self.availability_date,
            "price": self.price,
            "brand": self.brand,
            "gtin": self.gtin,
            "mpn": self.mpn,
            "identifier_exists": "" if self.gtin or self.mpn else "no",
            "item_group_id": self.item_group_id,
            "condition": self.condition,
            "product_type": self.product_type,
        }
        return [tsv_field(values[column]) for column in GOOGLE_COLUMNS]


@dataclass
class Refusal:
    item: str  # the product's IRI
    name: str
    market: str
    reason: str

    def as_dict(self) -> dict:
        return {"item": self.item, "name": self.name, "market": self.market,
                "reason": self.reason}  # fmt: skip


@functools.lru_cache(maxsize=4096)
def is_product(types: tuple[str, ...]) -> bool:
    return any(vocabulary.is_subclass(t, "Product") for t in types)


def store_country_of(organization: dict | None) -> str:
    """The two-letter country of the organization's (first) address, from its revision's
    content; "" when it names none."""
    if not organization:
        return ""
    addresses = organization["data"].get("address") or []
    address = addresses[0] if addresses and isinstance(addresses[0], dict) else {}
    country = (address.get("addressCountry") or [""])[0]
    if isinstance(country, dict):
        country = country.get("@value") or (country.get("name") or [{}])[0].get("@value", "")
    code = str(country).strip().upper()
    return code if len(code) == 2 and pycountry.countries.get(alpha_2=code) else ""


def feed_path(kind: str, market: str, language: str) -> str:
    extension = "jsonl.gz" if kind == "openai" else "tsv"
    return f"feeds/{kind}/{market.lower()}-{language.lower()}.{extension}"


def product_rows(
    node: dict,
    *,
    name_of,
    store_country: str,
    link_of=lambda url: url,
) -> tuple[list[tuple[str, FeedRow]], list[Refusal]]:
    """The rows (market, row) of a product's page node, and the offers refused.

    ``name_of(value)`` names a referenced brand or seller (a node or a reference);
    ``link_of(url)`` is the page in the feed's language for an offer's URL."""
    iri = str(node.get("@id", ""))
    title = text(node.get("name"))
    refusals: list[Refusal] = []
    offers = as_list(node.get("offers"))

    def refuse(market: str, reason: str) -> None:
        refusals.append(Refusal(iri, title, market, reason))

    common_problem = None
    description = text(node.get("description"))
    image = next((url for url in map(web_url, as_list(node.get("image"))) if url), None)
    gtin, gtin_problem = gtin_of(node)
    if not title:
        common_problem = "it has no name"
    elif not description:
        common_problem = "it has no description"
    elif image is None:
        common_problem = "it has no image (an http(s) URL)"
    elif gtin_problem:
        common_problem = gtin_problem
    elif not store_country:
        common_problem = "the organization's address names no country (addressCountry)"
    if not offers:
        return [], [Refusal(iri, title, "", "it has no offer")]
    sku = text(node.get("sku")) or iri.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    rows: list[tuple[str, FeedRow]] = []
    seen_markets: dict[str, int] = {}
    for offer in offers:
        if not isinstance(offer, dict):
            continue
        market, countries, market_problem = market_of(offer)
        if market_problem:
            refuse(market, market_problem)
            continue
        if common_problem:
            refuse(market, common_problem)
            continue
        price, price_problem = price_of(offer)
        if price_problem:
            refuse(market, price_problem)
            continue
        availability_iri = str(offer.get("availability") or "")
        availability = AVAILABILITY.get(vocabulary.local_name(availability_iri) or "")
        if availability is None:
            refuse(market, f"its offer's availability {availability_iri or '(none)'} is not one "
                   "the feeds know (InStock, OutOfStock, PreOrder, BackOrder …)")  # fmt: skip
            continue
        availability_date = text(offer.get("availabilityStarts"))
        if availability in ("preorder", "backorder") and not availability_date:
            refuse(market, "a pre-order or back-order needs the date it ships "
                   "(its offer's availabilityStarts)")  # fmt: skip
            continue
        link = web_url(offer.get("url")) or web_url(node.get("url"))
        if link is not None:
            link = link_of(link)
        if link is None:
            refuse(market, "neither its offer nor the product has a URL")
            continue
        seen_markets[market] = seen_markets.get(market, 0) + 1
        number = seen_markets[market]
        condition_iri = str(offer.get("itemCondition") or "")
        rows.append(
            (
                market,
                FeedRow(
                    id=sku if number == 1 else f"{sku}-{number}",
                    title=title[:150],
                    description=description[:5000],
                    link=link,
                    image_link=image or "",
                    availability=availability,
                    availability_date=availability_date if availability != "in_stock" else "",
                    price=price,
                    brand=name_of(node.get("brand")) or name_of(node.get("manufacturer")),
                    seller=name_of(offer.get("seller")),
                    gtin=gtin,
                    mpn=text(node.get("mpn")),
                    item_group_id=text(node.get("inProductGroupWithID")),
                    condition=CONDITION.get(vocabulary.local_name(condition_iri) or "", ""),
                    product_type=text(node.get("category")),
                    target_countries=countries,
                    store_country=store_country,
                ),
            )
        )
    return rows, refusals


def market_of(offer: dict) -> tuple[str, list[str], str | None]:
    """The market an offer is for, its countries, or why it has none."""
    regions = as_list(offer.get("eligibleRegion")) or as_list(offer.get("areaServed"))
    names = [text(r.get("name")) if isinstance(r, dict) else text(r) for r in regions]
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        return "", [], "its offer names no country it is sold in (eligibleRegion)"
    if len(names) > 1:
        return "", [], f"its offer names several regions ({', '.join(names)}): give each its own"
    code = names[0].upper()
    if code == "EU":
        return "EU", list(EU_COUNTRIES), None
    if len(code) == 2 and pycountry.countries.get(alpha_2=code) is not None:
        return code, [code], None
    return "", [], f"its offer's eligibleRegion {names[0]!r} is not a two-letter country code or EU"


def price_of(offer: dict) -> tuple[str, str | None]:
    """``"39.00 USD"``: the price with its currency's decimals, or why there is none."""
    currency = text(offer.get("priceCurrency")).upper()
    raw = text(offer.get("price"))
    if not raw:
        return "", "its offer has no price"
    if not currency or pycountry.currencies.get(alpha_3=currency) is None:
        return "", f"its offer's currency {currency or '(none)'} is not an ISO 4217 code"
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return "", f"its offer's price {raw!r} is not a number"
    if not amount.is_finite() or amount < 0:
        return "", f"its offer's price {raw!r} is not a number"
    places = get_currency_precision(currency)
    stated = amount.quantize(Decimal(1).scaleb(-places))
    if stated != amount:
        # Rounded, it would differ from the page's price: the surfaces refuse such items.
        return "", f"its offer's price {raw} has more decimals than {currency} has ({places})"
    return f"{stated} {currency}", None


def gtin_of(node: dict) -> tuple[str, str | None]:
    for prop in GTIN_PROPERTIES:
        value = text(node.get(prop))
        if value:
            digits = value.replace(" ", "").replace("-", "")
            if not digits.isdigit() or not ean.is_valid(digits.zfill(14)):
                return "", f"its {prop} {value} fails its check digit"
            return digits, None
    return "", None


def tsv_field(value: str) -> str:
    """A value on one line without tabs (the TSV has no quoting)."""
    return " ".join(str(value).replace("\t", " ").split())


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def text(value) -> str:
    """A compact node's value as text (the first of a list; a value object's @value)."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("@value", "")
    return str(value) if isinstance(value, (str, int, float)) else ""


# --- writing a language's feeds ------------------------------------------------------------


class FeedFiles:
    """A language's feeds, made in parts (the products of a part, see
    ``Builder.feed_tasks``): a part whose products did not change is copied from the previous
    release's files, the others are written row by row to spools (past a few MB, on disk).
    Each part of a ``jsonl.gz`` file is a gzip member of its own (RFC 1952: members
    concatenate into one stream); the TSV's parts are its lines after the header."""

    def __init__(self, language: str, previous: dict | None, present):
        self.language = language
        # The previous release's parts in this language, by key (see ``report``), and
        # ``present(path)``: whether the previous release's file is whole in the store.
        self.previous = {part[0]: part for part in (previous or {}).get("parts", [])}
        self.present = present
        self.spools: dict[tuple[str, str], Any] = {}  # by (kind, market)
        self.writers: dict[tuple[str, str], Any] = {}  # the current part's
        self.parts: list[dict] = []

    def __enter__(self) -> FeedFiles:
        return self

    def __exit__(self, *exc) -> None:
        for spool in self.spools.values():
            spool.close()

    def can_reuse(self, key: str) -> bool:
        part = self.previous.get(key)
        return part is not None and all(
            self.present(feed_path(*name.split("/"), self.language)) for name in part[4]
        )

    def reuse(self, key: str) -> None:
        _, rows, refused, refusals, at = self.previous[key]
        self.parts.append({"key": key, "rows": Counter(rows), "refused": refused,
                           "refusals": refusals, "old": at, "new": {}, "at": {}})  # fmt: skip

    def begin(self, key: str) -> None:
        self.parts.append({"key": key, "rows": Counter(), "refused": 0, "refusals": [],
                           "old": {}, "new": {}, "at": {}})  # fmt: skip

    def add(self, rows: Iterable[tuple[str, FeedRow]], refusals: Iterable[Refusal]) -> None:
        part = self.parts[-1]
        for market, row in rows:
            part["rows"][market] += 1
            self.writer("openai", market).write(
                (json.dumps(row.openai(), ensure_ascii=False) + "\n").encode("utf-8")
            )
            self.writer("google", market).write(("\t".join(row.google()) + "\n").encode("utf-8"))
        for refusal in refusals:
            part["refused"] += 1
            if len(part["refusals"]) < REFUSALS_PER_PART:
                part["refusals"].append(refusal.as_dict())

    def writer(self, kind: str, market: str):
        if (kind, market) not in self.writers:
            if (kind, market) not in self.spools:
                # Closed by __exit__.
                self.spools[(kind, market)] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
                    max_size=SPOOL_BYTES
                )
            spool = self.spools[(kind, market)]
            spool.seek(0, 2)
            self.parts[-1]["new"][f"{kind}/{market}"] = spool.tell()
            self.writers[(kind, market)] = (
                # mtime=0: the same rows make the same bytes (and the same artifact).
                gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=6, mtime=0)
                if kind == "openai"
                else spool
            )
        return self.writers[(kind, market)]

    def end(self) -> None:
        """The current part is made: its gzip members closed, its ranges in the spools."""
        new = self.parts[-1]["new"]
        for (kind, market), writer in self.writers.items():
            spool = self.spools[(kind, market)]
            if writer is not spool:
                writer.close()  # the member's trailer; the spool stays open
            spool.seek(0, 2)
            start = new[f"{kind}/{market}"]
            new[f"{kind}/{market}"] = (start, spool.tell() - start)
        self.writers = {}

    def assembled(self, read_old) -> Iterator[tuple[str, str, Iterator[bytes]]]:
        """Each file as (path, market, its bytes in chunks), part after part;
        ``read_old(path, offset, length)`` reads a range of the previous release's file."""
        names = sorted({name for part in self.parts for name in (*part["old"], *part["new"])})
        for name in names:
            kind, market = name.split("/")
            path = feed_path(kind, market, self.language)
            yield path, market, self.chunks(name, path, read_old)

    def chunks(self, name: str, path: str, read_old) -> Iterator[bytes]:
        kind, market = name.split("/")
        offset = 0
        if kind == "google":
            head = ("\t".join(GOOGLE_COLUMNS) + "\n").encode("utf-8")
            yield head
            offset = len(head)
        for part in self.parts:
            if name in part["new"]:
                start, length = part["new"][name]
                spool = self.spools[(kind, market)]
                spool.seek(start)
                left = length
                while left:
                    data = spool.read(min(left, 1 << 20))
                    left -= len(data)
                    yield data
            elif name in part["old"]:
                old_offset, length = part["old"][name]
                yield from read_old(path, old_offset, length)
            else:
                continue
            part["at"][name] = [offset, length]
            offset += length

    def report(self, key: str) -> dict:
        """What the release keeps of this language's feeds (see Release.feeds): its files
        and their rows, the offers refused (up to REFUSALS_KEPT listed, a few from each
        part), and each part with where it lies in each file, for the next build."""
        rows: Counter[str] = Counter()
        for part in self.parts:
            rows.update(part["rows"])
        names = sorted({name for part in self.parts for name in part["at"]})
        refusals = [r for part in self.parts for r in part["refusals"]]
        return {
            "language": self.language,
            "key": key,
            "files": [
                {
                    "path": feed_path(*name.split("/"), self.language),
                    "market": name.split("/")[1],
                    "rows": rows[name.split("/")[1]],
                }
                for name in names
            ],  # fmt: skip
            "refused": sum(part["refused"] for part in self.parts),
            "refusals": refusals[:REFUSALS_KEPT],
            "parts": [
                [part["key"], dict(part["rows"]), part["refused"], part["refusals"], part["at"]]
                for part in self.parts
            ],
        }


SPOOL_BYTES = 8 << 20


def feed_content_type(path: str) -> str:
    return "application/gzip" if path.endswith(".gz") else FEED_TSV_TYPE


FEED_TSV_TYPE = "text/tab-separated-values; charset=utf-8"
