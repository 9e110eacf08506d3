"""Google structured-data profiles and AI-citability findings on entities."""

import pytest

from kb.quality import ERROR, HINT, INELIGIBLE, RECOMMENDATION, entity_findings, invalid_values

pytestmark = pytest.mark.django_db


def v(value, language=None):
    return {"@value": value, **({"@language": language} if language else {})}


def offer(price="38.00", currency="USD", availability="https://schema.org/InStock"):
    node = {"@type": ["Offer"]}
    if price is not None:
        node["price"] = [v(price)]
    if currency is not None:
        node["priceCurrency"] = [v(currency)]
    if availability is not None:
        node["availability"] = [v(availability)]
    return node


def findings(brand, types, data, level=None):
    found = entity_findings(brand=brand, types=types, data=data)
    return [(f.level, f.pointer, f.message) for f in found if level is None or f.level == level]


def test_a_complete_product_has_no_errors(brand):
    data = {
        "name": [v("Longjing", "en"), v("龙井", "zh-Hans")],
        "description": [v("Green tea", "en"), v("绿茶", "zh-Hans")],
        "image": [{"@id": "https://tea.example/a.jpg"}],
        "gtin13": [v("6970123000017")],
        "brand": [{"@id": "https://tea.example/#organization"}],
        "offers": [offer(), offer("35.00", "EUR")],
    }
    assert findings(brand, ["Product"], data, ERROR) == []
    assert findings(brand, ["Product"], data, HINT) == []


def test_merchant_listing_errors_name_the_offer_and_the_reason(brand):
    """Wrong values are errors (they block); what a rich result needs and is missing makes
    the product "not eligible" for it (it does not block)."""
    data = {
        "name": [v("Longjing", "en")],
        "gtin13": [v("6970123000018")],
        "offers": [offer("0"), offer("12,50", "EURO", "InStock"), offer(None, None)],
    }
    assert findings(brand, ["Product"], data, ERROR) == [
        ("error", "/offers/1/price", "The price '12,50' is not a number: write it with a dot before the cents, e.g. 12.50."),
        ("error", "/offers/1/priceCurrency", "'EURO' is not an ISO 4217 currency code."),
        ("error", "/offers/1/availability", "'InStock': give availability as a schema.org URL, e.g. https://schema.org/InStock."),
        ("error", "/gtin13", "'6970123000018' is not a valid GTIN: the check digit (or the length) is wrong."),
    ]  # fmt: skip
    assert findings(brand, ["Product"], data, INELIGIBLE) == [
        ("ineligible", "/image", "Not eligible for merchant listings: they need an image."),
        ("ineligible", "/offers/0/price", "Not eligible for merchant listings: the price is 0; it must be above 0."),
        ("ineligible", "/offers/2/price", "Not eligible for merchant listings: the offer needs a price."),
        ("ineligible", "/offers/2/priceCurrency", "Not eligible for merchant listings: the offer needs a currency (ISO 4217, e.g. USD)."),
    ]  # fmt: skip
    # What a save refuses: the wrong values that are there, not what is missing.
    assert [f.pointer for f in invalid_values(brand=brand, types=["Product"], data=data)] == [
        "/offers/1/price", "/offers/1/priceCurrency", "/offers/1/availability", "/gtin13",
    ]  # fmt: skip
    assert invalid_values(brand=brand, types=["Product"], data={"offers": [offer(None)]}) == []


def test_local_business_requires_an_address_and_hints_at_missing_translations(brand):
    data = {"name": [v("Tea room", "en")]}
    assert findings(brand, ["Store"], data, INELIGIBLE) == [
        ("ineligible", "/address", "Not eligible for local business results: add an address.")
    ]
    assert findings(brand, ["Store"], data, ERROR) == []
    assert (
        HINT,
        "/name",
        "No name in zh-Hans: pages in that language fall back to the default.",
    ) in findings(brand, ["Store"], data)


def test_organization_recommendations_and_same_as_hint(brand):
    data = {
        "name": [v("Acme", "en"), v("阿克米", "zh-Hans")],
        "url": [{"@id": "https://tea.example/"}],
    }
    found = findings(brand, ["Organization"], data)
    assert (RECOMMENDATION, "/logo", "Add logo.") in found
    assert (HINT, "/sameAs", "Link the brand's profiles elsewhere (sameAs): engines use them "
            "to tell it apart from namesakes.") in found  # fmt: skip
    assert not [f for f in found if f[0] == ERROR]
