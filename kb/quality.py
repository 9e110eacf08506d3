"""What an answer engine or Google would find wrong or missing: profile and citability checks.

Schema.org validity is ``kb.validation``'s job (a violation there is refused on save). This
module looks at valid content the way Google's structured-data profiles and AI answer
engines do, and reports:

* ``error``: a value that is wrong (a price that is not a number, a currency that is not
  ISO 4217, a GTIN whose check digit is wrong, a product without a name): refused when an
  editor or the API saves it, and a publish refuses an entity that still has one (imports
  keep what they read);
* ``ineligible``: what a rich result needs is missing (Google's merchant listing wants an
  image, a price): the entity is "not eligible for …" that result, and publishing goes
  ahead (an answer engine still reads a product without an image);
* ``recommendation``: recommended properties are missing (publishing goes ahead);
* ``hint``: what makes content more citable (sources, dates, translations, sameAs links).

Currencies come from ``pycountry`` (ISO 4217); GTIN check digits from ``python-stdnum``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pycountry
from django.utils.translation import gettext as _
from stdnum import ean

from kb import vocabulary
from kb.citability import leaning_messages, leaning_words  # noqa: F401  (re-exported)
from kb.models import FAQ, Brand, Entity, Fact

ERROR, INELIGIBLE, RECOMMENDATION, HINT = "error", "ineligible", "recommendation", "hint"
LEVELS = (ERROR, INELIGIBLE, RECOMMENDATION, HINT)
GTIN_PROPERTIES = ("gtin", "gtin8", "gtin12", "gtin13", "gtin14")


@dataclass(frozen=True)
class Finding:
    level: str  # error, recommendation, hint
    pointer: str  # JSON pointer into the entity's data ("" for the whole entity)
    message: str
    profile: str  # e.g. "Google: Product (merchant listing)", "AI citability"

    def as_dict(self) -> dict:
        return {"level": self.level, "pointer": self.pointer, "message": self.message,
                "profile": self.profile}  # fmt: skip


def is_a(types, name: str) -> bool:
    return any(vocabulary.is_subclass(t, name) for t in types)


def values(data: dict, prop: str) -> list:
    found = data.get(prop) or []
    return found if isinstance(found, list) else [found]


def literal(value) -> str | None:
    if isinstance(value, dict) and "@value" in value:
        return str(value["@value"])
    if isinstance(value, dict) and set(value) == {"@id"}:
        return value["@id"]
    return None


def languages_of(data: dict, prop: str) -> set[str]:
    return {
        v.get("@language") for v in values(data, prop) if isinstance(v, dict) and v.get("@language")
    }


def entity_findings(*, brand: Brand, types: list[str], data: dict) -> list[Finding]:
    findings: list[Finding] = []
    if is_a(types, "Product"):
        findings += product_findings(brand, data)
    if is_a(types, "LocalBusiness"):
        findings += local_business_findings(data)
    elif is_a(types, "Organization"):
        findings += organization_findings(data)
    if is_a(types, "Article"):
        findings += article_findings(data)
    findings += translation_findings(brand, data)
    return findings


def invalid_values(*, brand: Brand, types: list[str], data: dict) -> list[Finding]:
    """The errors about values that are there and wrong (not about what is missing): what a
    save by an editor or through the API refuses, at the value's field."""
    return [
        finding
        for finding in entity_findings(brand=brand, types=types, data=data)
        if finding.level == ERROR and value_at(data, finding.pointer)
    ]


def value_at(data: dict, pointer: str) -> list:
    """The stored values a finding's pointer names ("/offers/1/price"; "/offers/price" when
    there is one offer), or [] when there are none."""
    found: list = [data]
    for part in [p for p in pointer.split("/") if p]:
        if part.isdigit():
            index = int(part)
            found = [node[index] for node in found if isinstance(node, list) and index < len(node)]
            continue
        found = [
            value
            for node in found
            for item in (node if isinstance(node, list) else [node])
            if isinstance(item, dict)
            for value in [item.get(part)]
            if value
        ]
    return found


def product_findings(brand: Brand, data: dict) -> list[Finding]:
    snippet, merchant = _("Google: Product snippet"), _("Google: Product (merchant listing)")
    citability = _("AI citability")
    out: list[Finding] = []
    if not values(data, "name"):
        out.append(Finding(ERROR, "/name", _("A product needs a name."), snippet))
    offers = [o for o in values(data, "offers") if isinstance(o, dict)]
    if not offers and not values(data, "review") and not values(data, "aggregateRating"):
        out.append(Finding(INELIGIBLE, "/offers", _("Not eligible for product snippets: give "
                           "offers, a review or an aggregate rating."), snippet))  # fmt: skip
    if not values(data, "image"):
        out.append(Finding(INELIGIBLE, "/image", _("Not eligible for merchant listings: they "
                           "need an image."), merchant))  # fmt: skip
    for index, offer in enumerate(offers):
        pointer = f"/offers/{index}" if len(offers) > 1 else "/offers"
        out += offer_findings(offer, pointer, merchant)
    for prop in GTIN_PROPERTIES:
        for value in values(data, prop):
            code = literal(value) or ""
            digits = code.replace(" ", "").replace("-", "")
            if not ean.is_valid(digits.zfill(14) if digits.isdigit() else digits):
                out.append(Finding(ERROR, f"/{prop}", _("%(code)s is not a valid GTIN: the check "
                                   "digit (or the length) is wrong.") % {"code": repr(code)},
                                   merchant))  # fmt: skip
    if not any(values(data, p) for p in (*GTIN_PROPERTIES, "mpn", "sku")):
        out.append(Finding(RECOMMENDATION, "", _("Add a GTIN, MPN or SKU so engines can match "
                           "the product."), merchant))  # fmt: skip
    for prop, message in (("brand", _("Add the brand.")), ("description", _("Add a description."))):
        if not values(data, prop):
            level = HINT if prop == "description" else RECOMMENDATION
            profile = citability if prop == "description" else merchant
            out.append(Finding(level, f"/{prop}", message, profile))
    has_shipping = any(values(o, "shippingDetails") for o in offers)
    has_returns = any(values(o, "hasMerchantReturnPolicy") for o in offers) or values(
        data, "hasMerchantReturnPolicy"
    )
    if offers and not has_shipping:
        out.append(
            Finding(RECOMMENDATION, "/offers", _("Add shipping details to the offers."), merchant)
        )
    if offers and not has_returns:
        out.append(Finding(RECOMMENDATION, "/offers", _("Add a merchant return policy."), merchant))
    return out


def offer_findings(offer: dict, pointer: str, profile: str) -> list[Finding]:
    out: list[Finding] = []
    prices = [literal(v) for v in values(offer, "price")]
    if not prices:
        out.append(Finding(INELIGIBLE, f"{pointer}/price", _("Not eligible for merchant "
                           "listings: the offer needs a price."), profile))  # fmt: skip
    for price in prices:
        amount = price_amount(price)
        if amount is None:
            out.append(Finding(ERROR, f"{pointer}/price", _("The price %(price)s is not a "
                               "number: write it with a dot before the cents, e.g. 12.50.")
                               % {"price": repr(price)}, profile))  # fmt: skip
        elif amount <= 0:
            out.append(Finding(INELIGIBLE, f"{pointer}/price", _("Not eligible for merchant "
                               "listings: the price is %(price)s; it must be above 0.")
                               % {"price": price}, profile))  # fmt: skip
    currencies = [literal(v) for v in values(offer, "priceCurrency")]
    if not currencies:
        out.append(Finding(INELIGIBLE, f"{pointer}/priceCurrency", _("Not eligible for "
                           "merchant listings: the offer needs a currency (ISO 4217, e.g. USD)."),
                           profile))  # fmt: skip
    for currency in currencies:
        if not currency or pycountry.currencies.get(alpha_3=currency) is None:
            out.append(Finding(ERROR, f"{pointer}/priceCurrency",
                               _("%(currency)s is not an ISO 4217 currency code.")
                               % {"currency": repr(currency)}, profile))  # fmt: skip
    availability = [literal(v) for v in values(offer, "availability")]
    if not availability:
        out.append(Finding(RECOMMENDATION, f"{pointer}/availability",
                           _("Add availability (e.g. https://schema.org/InStock)."), profile))  # fmt: skip
    for value in availability:
        if not (value or "").startswith(("https://schema.org/", "http://schema.org/")):
            out.append(Finding(ERROR, f"{pointer}/availability", _("%(value)s: give availability "
                               "as a schema.org URL, e.g. https://schema.org/InStock.")
                               % {"value": repr(value)}, profile))  # fmt: skip
    return out


def price_amount(price) -> Decimal | None:
    """A price as a number, or None when it is not one ("abc", "12,50", "NaN")."""
    text = str(price).strip()
    if "," in text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def add_property(prop: str) -> str:
    """The message recommending a property, in words ("Add opening hours specification.")."""
    return _("Add %(property)s.") % {"property": vocabulary.label_words(prop).lower()}


def organization_findings(data: dict) -> list[Finding]:
    profile = _("Google: Organization")
    recommended = ("name", "url", "logo", "description", "address", "contactPoint", "email",
                   "telephone", "foundingDate", "legalName")  # fmt: skip
    out = [
        Finding(RECOMMENDATION, f"/{prop}", add_property(prop), profile)
        for prop in recommended
        if not values(data, prop)
    ]
    if not values(data, "sameAs"):
        out.append(Finding(HINT, "/sameAs", _("Link the brand's profiles elsewhere (sameAs): "
                           "engines use them to tell it apart from namesakes."),
                           _("AI citability")))  # fmt: skip
    return out


def local_business_findings(data: dict) -> list[Finding]:
    profile = _("Google: LocalBusiness")
    out = []
    if not values(data, "name"):
        out.append(Finding(ERROR, "/name", _("A local business needs a name."), profile))
    if not values(data, "address"):
        out.append(Finding(INELIGIBLE, "/address", _("Not eligible for local business results: "
                           "add an address."), profile))  # fmt: skip
    out += [
        Finding(RECOMMENDATION, f"/{prop}", add_property(prop), profile)
        for prop in ("geo", "openingHoursSpecification", "telephone", "url", "priceRange")
        if not values(data, prop)
    ]
    return out


def article_findings(data: dict) -> list[Finding]:
    profile = _("Google: Article")
    return [
        Finding(RECOMMENDATION, f"/{prop}", add_property(prop), profile)
        for prop in ("headline", "image", "datePublished", "dateModified", "author")
        if not values(data, prop)
    ]


def translation_findings(brand: Brand, data: dict) -> list[Finding]:
    out = []
    for prop in ("name", "description"):
        present = languages_of(data, prop)
        if not present:
            continue
        for language in brand.languages:
            if language not in present:
                out.append(Finding(HINT, f"/{prop}", _("No %(property)s in %(language)s: pages in "
                                   "that language fall back to the default.")
                                   % {"property": prop, "language": language},
                                   _("AI citability")))  # fmt: skip
    return out


def statement_findings(*, brand: Brand) -> list[tuple[object, Finding]]:
    """Citability of facts and FAQs: sources, dates, translations, facts that lean on others."""
    out: list[tuple[object, Finding]] = []
    for fact in Fact.objects.filter(brand=brand):
        out += [(fact, finding) for finding in fact_findings(brand=brand, fact=fact)]
    for faq in FAQ.objects.filter(brand=brand):
        for language in brand.languages:
            if not (faq.answer or {}).get(language):
                out.append((faq, Finding(HINT, f"/answer/{language}",
                                         _("No answer in %(language)s.") % {"language": language},
                                         _("AI citability"))))  # fmt: skip
    return out


def fact_findings(*, brand: Brand, fact: Fact) -> list[Finding]:
    """What makes one fact harder to quote: no source, a missing translation, a statement
    that leans on another fact."""
    out: list[Finding] = []
    if not fact.source_url:
        out.append(Finding(HINT, "/source_url", _("A fact without a source is rarely quoted."),
                           _("AI citability")))  # fmt: skip
    for language in brand.languages:
        if not (fact.statement or {}).get(language):
            out.append(Finding(HINT, f"/statement/{language}",
                               _("No statement in %(language)s.") % {"language": language},
                               _("AI citability")))  # fmt: skip
    out += leaning_findings(statement=fact.statement or {})
    return out


def leaning_findings(*, statement: dict[str, str]) -> list[Finding]:
    """A recommendation for each language whose statement leans on another fact
    (``kb.citability``)."""
    return [
        Finding(RECOMMENDATION, f"/statement/{language}", message, _("AI citability"))
        for language, message in leaning_messages(statement=statement).items()
    ]


def brand_summary(*, brand: Brand) -> dict[str, int]:
    """Counts of findings by level over the brand's working copies (for the dashboard)."""
    counts = dict.fromkeys(LEVELS, 0)
    for entity in Entity.objects.filter(brand=brand).only("types", "data"):
        for finding in entity_findings(brand=brand, types=entity.types, data=entity.data):
            counts[finding.level] += 1
    for _statement, finding in statement_findings(brand=brand):
        counts[finding.level] += 1
    return counts
