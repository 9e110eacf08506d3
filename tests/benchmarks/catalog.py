"""The deterministic synthetic brand every benchmark step uses (pure Python, no Django).

N products, each with a name and a description in English and Simplified Chinese, an image
URL, a SKU, a valid GTIN-13, a brand reference to the organization and two offers (USD and
EUR); a fact about 3 of every 10 products and an FAQ about 1 of every 10. Product ``n`` is
the same in every run and every size, so sizes differ only in how many there are.

Three shapes of the same product are derived here: the JSON-LD node an import reads
(``product_node``), the stored form the import keeps in ``Entity.data``
(``stored_data``; checked against the real import by ``test_generator.py``) and the
plain record the floor and the Hugo site are made from (``Product`` itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SLUG = "bench"
NAME = "Bench Tea"
BASE_URL = "https://bench.example"
LANGUAGES = ["en", "zh-Hans"]
ORG_IRI = f"{BASE_URL}/#organization"
IMPORT_FILE = "bench.jsonld"
FACT_REMAINDERS = (1, 4, 7)  # products n with n % 10 in these have a fact: 3 per 10
FAQ_REMAINDER = 5  # products n with n % 10 == 5 have an FAQ: 1 per 10
IN_STOCK = "https://schema.org/InStock"


def gtin13(number: int) -> str:
    """A valid GTIN-13 (EAN-13): prefix 200 (restricted circulation), 9 digits, check digit."""
    body = f"200{number:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


@dataclass(frozen=True)
class Product:
    number: int
    slug: str
    iri: str
    name_en: str
    name_zh: str
    description_en: str
    description_zh: str
    image: str
    sku: str
    gtin13: str
    usd: str
    eur: str

    @property
    def label(self) -> str:
        return self.name_en

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_zh

    def description(self, language: str) -> str:
        return self.description_en if language == "en" else self.description_zh

    def offers(self) -> list[tuple[str, str]]:
        return [(self.usd, "USD"), (self.eur, "EUR")]


def product(number: int) -> Product:
    slug = f"tea-{number}"
    cents = number % 100
    return Product(
        number=number,
        slug=slug,
        iri=f"{BASE_URL}/products/{slug}/#product",
        name_en=f"Tea {number}",
        name_zh=f"茶 {number}",
        description_en=f"Tea number {number}: a loose-leaf green tea made for the benchmark.",
        description_zh=f"第 {number} 号茶：为基准测试制作的散装绿茶。",
        image=f"{BASE_URL}/images/{slug}.jpg",
        sku=f"SKU-{number:06d}",
        gtin13=gtin13(number),
        usd=f"{8 + number % 40}.{cents:02d}",
        eur=f"{7 + number % 40}.{cents:02d}",
    )


def products(count: int) -> Iterator[Product]:
    """Products 1..count."""
    for number in range(1, count + 1):
        yield product(number)


def organization_node() -> dict:
    """The brand's Organization as JSON-LD (created through the import service)."""
    return {
        "@id": ORG_IRI,
        "@type": "Organization",
        "name": [
            {"@value": NAME, "@language": "en"},
            {"@value": "长椅茶", "@language": "zh-Hans"},
        ],
        "description": [
            {"@value": "A synthetic tea brand for benchmarks.", "@language": "en"},
            {"@value": "用于基准测试的合成茶叶品牌。", "@language": "zh-Hans"},
        ],
        "url": f"{BASE_URL}/",
    }


def product_node(item: Product) -> dict:
    """The product as a JSON-LD node, as a brand would import it."""
    return {
        "@id": item.iri,
        "@type": "Product",
        "name": [
            {"@value": item.name_en, "@language": "en"},
            {"@value": item.name_zh, "@language": "zh-Hans"},
        ],
        "description": [
            {"@value": item.description_en, "@language": "en"},
            {"@value": item.description_zh, "@language": "zh-Hans"},
        ],
        "image": item.image,
        "sku": item.sku,
        "gtin13": item.gtin13,
        "brand": {"@id": ORG_IRI},
        "offers": [
            {"@type": "Offer", "price": price, "priceCurrency": currency, "availability": IN_STOCK}
            for price, currency in item.offers()
        ],
    }


def jsonld_document(nodes: list[dict]) -> dict:
    return {"@context": "https://schema.org", "@graph": nodes}


def _texts(en: str, zh: str) -> list[dict]:
    return [{"@language": "en", "@value": en}, {"@language": "zh-Hans", "@value": zh}]


def stored_data(item: Product) -> dict:
    """``Entity.data`` as the import stores ``product_node(item)``: expanded values, schema.org
    names, keys in pyld's (sorted) order; ``availability`` stays a value (not @id-typed)."""
    return {
        "brand": [{"@id": ORG_IRI}],
        "description": _texts(item.description_en, item.description_zh),
        "gtin13": [{"@value": item.gtin13}],
        "image": [{"@id": item.image}],
        "name": _texts(item.name_en, item.name_zh),
        "offers": [
            {
                "@type": ["Offer"],
                "availability": [{"@value": IN_STOCK}],
                "price": [{"@value": price}],
                "priceCurrency": [{"@value": currency}],
            }
            for price, currency in item.offers()
        ],
        "sku": [{"@value": item.sku}],
    }


@dataclass(frozen=True)
class FactSpec:
    about: int  # the product number
    key: str
    statement: dict[str, str]
    value: str
    unit: str
    source_url: str
    source_title: dict[str, str]
    as_of: str


@dataclass(frozen=True)
class FaqSpec:
    about: int
    key: str
    question: dict[str, str]
    answer: dict[str, str]
    order: int


def fact(number: int) -> FactSpec:
    altitude = 300 + (number * 37) % 1200
    return FactSpec(
        about=number,
        key=f"tea-{number}-altitude",
        statement={
            "en": f"Tea {number} grows at {altitude} metres above sea level.",
            "zh-Hans": f"茶 {number} 生长在海拔 {altitude} 米处。",
        },
        value=str(altitude),
        unit="m",
        source_url=f"{BASE_URL}/sources/gardens/{number}",
        source_title={"en": "Garden survey", "zh-Hans": "茶园调查"},
        as_of="2025-04-01",
    )


def faq(number: int) -> FaqSpec:
    degrees = 75 + number % 15
    return FaqSpec(
        about=number,
        key=f"tea-{number}-brewing",
        question={"en": f"How do I brew Tea {number}?", "zh-Hans": f"如何冲泡茶 {number}？"},
        answer={
            "en": f"Use water at {degrees} °C and steep for three minutes.",
            "zh-Hans": f"用 {degrees} °C 的水冲泡三分钟。",
        },
        order=number,
    )


def facts(count: int) -> Iterator[FactSpec]:
    """Facts about products 1..count: 3 per 10 products."""
    for number in range(1, count + 1):
        if number % 10 in FACT_REMAINDERS:
            yield fact(number)


def faqs(count: int) -> Iterator[FaqSpec]:
    """FAQs about products 1..count: 1 per 10 products."""
    for number in range(1, count + 1):
        if number % 10 == FAQ_REMAINDER:
            yield faq(number)
