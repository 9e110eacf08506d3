"""A product's offers as form fields: price, currency, availability, condition, link and dates.

An editor changes a price in a number input and picks a currency from a list, instead of
editing JSON-LD. Each offer of the working copy gets a row of inputs, and one empty row adds
an offer. What an offer holds beyond these inputs (its seller, the regions it serves,
shipping details …) is kept as it is. Offers that do not fit (a price specification, an
aggregate offer) stay in the JSON-LD of the other properties.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry
from django import forms

from kb import vocabulary

# The inputs of an offer, in the order they are shown.
OFFER_INPUTS = (
    "price", "priceCurrency", "availability", "itemCondition", "url", "validFrom",
    "priceValidUntil",
)  # fmt: skip
# Currencies listed first: those brands selling from and to China, Europe and the US use.
COMMON_CURRENCIES = ("CNY", "USD", "EUR", "GBP", "HKD", "JPY", "SGD", "AUD", "CAD", "CHF")
DATE_INPUTS = ("validFrom", "priceValidUntil")
PRICE_ERROR = "Enter the price as a number, with a dot before the cents: e.g. 12.50."


def input_name(index: int, prop: str) -> str:
    return f"offer__{index}__{prop}"


def currency_choices() -> list[tuple[str, str]]:
    common = [c for c in COMMON_CURRENCIES if pycountry.currencies.get(alpha_3=c)]
    others = sorted(c.alpha_3 for c in pycountry.currencies if c.alpha_3 not in common)
    names = {c.alpha_3: c.name for c in pycountry.currencies}
    return [("", "—")] + [(code, f"{code} — {names[code][:24]}") for code in (*common, *others)]


def member_choices(enumeration: str) -> list[tuple[str, str]]:
    return [("", "—")] + [
        (f"https://schema.org/{member}", vocabulary.label_words(member))
        for member in vocabulary.enumeration_members(enumeration)
    ]


def editable(offers: list) -> bool:
    """Whether every offer fits the inputs: an Offer whose inputs' values are single and
    plain (a price specification or an aggregate offer stays JSON-LD)."""
    for offer in offers:
        if not isinstance(offer, dict) or set(offer.get("@type", ["Offer"])) != {"Offer"}:
            return False
        for prop in OFFER_INPUTS:
            values = offer.get(prop, [])
            if len(values) > 1:
                return False
            if values and not ({"@value"} <= set(values[0]) or set(values[0]) == {"@id"}):
                return False
    return True


def plain(offer: dict, prop: str) -> Any:
    values = offer.get(prop) or [{}]
    return values[0].get("@value", values[0].get("@id"))


def typed_initial(prop: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        if prop == "price":
            return Decimal(str(value))
        if prop in DATE_INPUTS:
            return date.fromisoformat(str(value)[:10])
    except (InvalidOperation, ValueError):
        return value  # shown as it is; saving it again says what is wrong
    return value


class OfferFields:
    """The offer inputs of an entity form: added to ``form.fields``, read back into offers."""

    def __init__(self, form: forms.Form, offers: list[dict]):
        self.form, self.offers = form, offers
        self.rows: list[list[str]] = []  # the input names of each offer, then the new one

    def add(self) -> None:
        currencies = currency_choices()
        availability = member_choices("ItemAvailability")
        condition = member_choices("OfferItemCondition")
        for index in range(len(self.offers) + 1):
            offer = self.offers[index] if index < len(self.offers) else {}
            new = index == len(self.offers)
            caption = "New offer" if new else f"Offer {index + 1}"
            fields: dict[str, forms.Field] = {
                "price": forms.DecimalField(
                    label=f"{caption}: price",
                    min_value=Decimal(0),
                    localize=False,
                    error_messages={"invalid": PRICE_ERROR},
                    widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 10}),
                ),
                "priceCurrency": forms.ChoiceField(
                    label="Currency", choices=self.with_current(currencies, offer, "priceCurrency")
                ),
                "availability": forms.ChoiceField(
                    label="Availability",
                    choices=self.with_current(availability, offer, "availability"),
                ),
                "itemCondition": forms.ChoiceField(
                    label="Condition", choices=self.with_current(condition, offer, "itemCondition")
                ),
                "url": forms.URLField(label="Link to buy", assume_scheme="https"),
                "validFrom": forms.DateField(
                    label="Valid from", widget=forms.DateInput(attrs={"type": "date"})
                ),
                "priceValidUntil": forms.DateField(
                    label="Price valid until", widget=forms.DateInput(attrs={"type": "date"})
                ),
            }
            names = []
            for prop, field in fields.items():
                field.required = False
                # Initial values of the inputs' own types: an untouched input is unchanged.
                field.initial = typed_initial(prop, plain(offer, prop) if offer else None)
                name = input_name(index, prop)
                self.form.fields[name] = field
                names.append(name)
            if not new:
                name = input_name(index, "remove")
                self.form.fields[name] = forms.BooleanField(
                    label="Remove this offer", required=False
                )
                names.append(name)
            self.rows.append(names)

    @staticmethod
    def with_current(choices: list, offer: dict, prop: str) -> list:
        """The choices, and the offer's current value if it is none of them (so that the
        editor sees it; saving it again is refused with the reason)."""
        current = plain(offer, prop) if offer else None
        if current and current not in dict(choices):
            return [*choices, (current, f"{current} (not valid)")]
        return choices

    def touched(self) -> bool:
        return any(self.changed(index) for index in range(len(self.rows)))

    def changed(self, index: int) -> bool:
        return any(name in self.form.changed_data for name in self.rows[index])

    def cleaned_offers(self) -> list[dict]:
        """The offers from the inputs: an untouched offer exactly as it was stored, a
        changed one with its other properties kept, the new one if anything was given."""
        cleaned = self.form.cleaned_data
        offers = []
        for index in range(len(self.rows)):
            original = self.offers[index] if index < len(self.offers) else None
            if original is not None and cleaned.get(input_name(index, "remove")):
                continue
            if original is not None and not self.changed(index):
                offers.append(original)
                continue
            offer: dict[str, Any] = dict(original or {"@type": ["Offer"]})
            given = False
            for prop in OFFER_INPUTS:
                value = cleaned.get(input_name(index, prop))
                if value in (None, ""):
                    offer.pop(prop, None)
                    continue
                given = True
                offer[prop] = [self.stored(prop, value)]
            if original is not None or given:
                offers.append(offer)
        return offers

    @staticmethod
    def stored(prop: str, value: Any) -> dict:
        if prop == "price":
            return {"@value": format(value, "f")}
        if prop == "url":
            return {"@id": value}
        if prop in DATE_INPUTS:
            return {"@type": "Date", "@value": value.isoformat()}
        return {"@value": value}

    def field_for(self, parts: list[str]) -> str | None:
        """The input a JSON pointer's parts below /data/offers name ("0", "price")."""
        index = int(parts[0]) if parts and parts[0].isdigit() else 0
        prop = parts[1] if parts and parts[0].isdigit() and len(parts) > 1 else (parts or [""])[0]
        name = input_name(index, prop)
        return name if name in self.form.fields else None
