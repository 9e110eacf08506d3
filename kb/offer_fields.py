"""A product's offers as form fields: price, currency, availability, condition, link and dates,
then shipping (cost, countries, handling and transit days) and the return policy.

An editor changes a price in a number input and picks a currency from a list, instead of
editing JSON-LD. Each offer of the working copy gets a row of inputs, and one empty row adds
an offer. What an offer holds beyond these inputs (its seller, the regions it serves …) is
kept as it is. Offers that do not fit (a price specification, an aggregate offer, shipping
details or a return policy richer than the inputs: several of them, a rate range, other
properties) stay in the JSON-LD of the other properties, all of them.

Shipping is one ``shippingDetails`` node and the return policy one ``hasMerchantReturnPolicy``
node, as Google's merchant listings read them; an input that changes rewrites its node only.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import pycountry
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from kb import vocabulary

# The inputs of an offer, in the order they are shown.
OFFER_INPUTS = (
    "price", "priceCurrency", "availability", "itemCondition", "url", "validFrom",
    "priceValidUntil",
)  # fmt: skip
# Currencies listed first: those brands selling from and to China, Europe and the US use.
COMMON_CURRENCIES = ("CNY", "USD", "EUR", "GBP", "HKD", "JPY", "SGD", "AUD", "CAD", "CHF")
DATE_INPUTS = ("validFrom", "priceValidUntil")
PRICE_ERROR = _("Enter the price as a number, with a dot before the cents: e.g. 12.50.")
# The shipping inputs (one OfferShippingDetails node) and the return policy inputs (one
# MerchantReturnPolicy node), shown after the offer's own.
SHIPPING_INPUTS = (
    "shippingRate", "shippingCountries", "handlingMin", "handlingMax", "transitMin", "transitMax",
)  # fmt: skip
RETURN_INPUTS = (
    "returnPolicyCategory", "merchantReturnDays", "returnMethod", "returnFees", "returnCountries",
)  # fmt: skip
# Delivery times: the ShippingDeliveryTime property, and the inputs of its min and max days.
PERIODS = {
    "handlingTime": ("handlingMin", "handlingMax"),
    "transitTime": ("transitMin", "transitMax"),
}
# How an offer's inputs are laid out, a line each: what it costs, whether it is there, where
# and until when, then its shipping and its returns.
LINES = (
    ("price", "priceCurrency"), ("availability", "itemCondition"), ("url",),
    ("validFrom", "priceValidUntil"), ("shippingRate", "shippingCountries"),
    ("handlingMin", "handlingMax"), ("transitMin", "transitMax"),
    ("returnPolicyCategory", "merchantReturnDays"), ("returnMethod", "returnFees"),
    ("returnCountries",), ("remove",),
)  # fmt: skip
FINITE_WINDOW = "https://schema.org/MerchantReturnFiniteReturnWindow"
# Plainer words than schema.org's member names; members not listed here use those.
MEMBER_LABELS = {
    "MerchantReturnFiniteReturnWindow": _("Within a number of days"),
    "MerchantReturnUnlimitedWindow": _("Any time"),
    "MerchantReturnNotPermitted": _("Not accepted"),
    "MerchantReturnUnspecified": _("Not said"),
    "ReturnByMail": _("By mail"),
    "ReturnInStore": _("In store"),
    "ReturnAtKiosk": _("At a kiosk"),
    "KeepProduct": _("Customer keeps the product"),
    "FreeReturn": _("Free"),
    "ReturnShippingFees": _("Customer pays return shipping"),
    "ReturnFeesCustomerResponsibility": _("Customer pays the return"),
    "RestockingFees": _("Restocking fee"),
    "OriginalShippingFees": _("Original shipping fee kept"),
}


def input_name(index: int, prop: str) -> str:
    return f"offer__{index}__{prop}"


def currency_choices() -> list[tuple[str, str]]:
    common = [c for c in COMMON_CURRENCIES if pycountry.currencies.get(alpha_3=c)]
    others = sorted(c.alpha_3 for c in pycountry.currencies if c.alpha_3 not in common)
    names = {c.alpha_3: c.name for c in pycountry.currencies}
    return [("", "—")] + [(code, f"{code} — {names[code][:24]}") for code in (*common, *others)]


def member_choices(enumeration: str, labels: dict | None = None) -> list[tuple[str, str]]:
    labels = labels or {}
    return [("", "—")] + [
        (f"https://schema.org/{member}", labels.get(member) or vocabulary.label_words(member))
        for member in vocabulary.enumeration_members(enumeration)
    ]


def editable(offers: list) -> bool:
    """Whether every offer fits the inputs: an Offer whose inputs' values are single and
    plain (a price specification or an aggregate offer stays JSON-LD), with at most one
    shipping details node and one return policy of the inputs' simple shape."""
    for offer in offers:
        if not isinstance(offer, dict) or set(offer.get("@type", ["Offer"])) != {"Offer"}:
            return False
        for prop in OFFER_INPUTS:
            values = offer.get(prop, [])
            if len(values) > 1:
                return False
            if values and not ({"@value"} <= set(values[0]) or set(values[0]) == {"@id"}):
                return False
        if shipping_values(offer) is None or return_values(offer) is None:
            return False
    return True


class Unfit(Exception):
    """A node holds more than the inputs show (it stays JSON-LD)."""


def only(node: dict, prop: str) -> dict | None:
    """The single value of ``prop`` (None when there is none); several are Unfit."""
    if prop not in node:
        return None
    values = node[prop]
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], dict):
        raise Unfit
    return values[0]


def nested(node: dict, prop: str, type_name: str, props: tuple[str, ...]) -> dict | None:
    """The single nested ``type_name`` node of ``prop`` holding only ``props``."""
    value = only(node, prop)
    if value is None:
        return None
    if value.get("@type") != [type_name] or not set(value) <= {"@type", *props}:
        raise Unfit
    if len(value) == 1:
        raise Unfit  # an empty node: nothing an input shows, and kept as it is
    return value


def text_of(value: dict | None) -> str | None:
    if value is None:
        return None
    if set(value) in ({"@value"}, {"@id"}):
        text = value.get("@value", value.get("@id"))
        if isinstance(text, str):
            return text
    raise Unfit


def days_of(value: dict | None, date_typed: bool = False) -> int | None:
    """A whole number of days (``{"@value": 3}``; merchantReturnDays is stored typed as a
    Date, as schema.org's context has it: ``{"@type": "Date", "@value": 30}``)."""
    if value is None:
        return None
    raw = value.get("@value")
    keys = set(value) - ({"@type"} if date_typed and value.get("@type") == "Date" else set())
    if keys != {"@value"} or isinstance(raw, bool):
        raise Unfit
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or raw < 0:
        raise Unfit
    return raw


def codes_of(node: dict, prop: str) -> list[str] | None:
    """Country codes, each a plain text value."""
    if prop not in node:
        return None
    values = node[prop]
    if not isinstance(values, list) or not values:
        raise Unfit
    codes = []
    for value in values:
        if not isinstance(value, dict) or set(value) != {"@value"}:
            raise Unfit
        codes.append(text_of(value))
    return codes


def shipping_values(offer: dict) -> dict[str, Any] | None:
    """The shipping inputs' values of an offer ({} without shipping details), or None when
    its shipping details do not fit them."""
    try:
        details = nested(
            offer,
            "shippingDetails",
            "OfferShippingDetails",
            ("shippingRate", "shippingDestination", "deliveryTime"),
        )
        if details is None:
            return {}
        found: dict[str, Any] = {}
        rate = nested(details, "shippingRate", "MonetaryAmount", ("value", "currency"))
        if rate is not None:
            amount, currency = only(rate, "value"), text_of(only(rate, "currency"))
            if (
                amount is None
                or set(amount) != {"@value"}
                or currency != plain(offer, "priceCurrency")
            ):
                raise Unfit  # the rate is in the offer's currency, and saved so
            raw = amount["@value"]
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise Unfit
            try:
                number = Decimal(str(raw))
            except InvalidOperation:
                raise Unfit from None
            if not number.is_finite() or number < 0:
                raise Unfit
            found["shippingRate"] = number
        region = nested(details, "shippingDestination", "DefinedRegion", ("addressCountry",))
        if region is not None:
            found["shippingCountries"] = codes_of(region, "addressCountry")
        delivery = nested(details, "deliveryTime", "ShippingDeliveryTime", tuple(PERIODS))
        for prop, (low, high) in PERIODS.items():
            period = delivery and nested(
                delivery, prop, "QuantitativeValue", ("minValue", "maxValue", "unitCode")
            )
            if not period:
                continue
            if text_of(only(period, "unitCode")) != "DAY" or set(period) == {"@type", "unitCode"}:
                raise Unfit
            found[low] = days_of(only(period, "minValue"))
            found[high] = days_of(only(period, "maxValue"))
        return found
    except Unfit:
        return None


def return_values(offer: dict) -> dict[str, Any] | None:
    """The return policy inputs' values of an offer ({} without a policy), or None when its
    return policy does not fit them."""
    try:
        policy = nested(
            offer,
            "hasMerchantReturnPolicy",
            "MerchantReturnPolicy",
            ("returnPolicyCategory", "merchantReturnDays", "returnMethod", "returnFees",
             "applicableCountry"),
        )  # fmt: skip
        if policy is None:
            return {}
        return {
            "returnPolicyCategory": text_of(only(policy, "returnPolicyCategory")),
            "merchantReturnDays": days_of(only(policy, "merchantReturnDays"), date_typed=True),
            "returnMethod": text_of(only(policy, "returnMethod")),
            "returnFees": text_of(only(policy, "returnFees")),
            "returnCountries": codes_of(policy, "applicableCountry"),
        }
    except Unfit:
        return None


class CountriesField(forms.CharField):
    """Countries as ISO 3166-1 alpha-2 codes, typed with commas ("US, CA, GB"); a country's
    English name or alpha-3 code is read as its alpha-2 code. Cleaned: a list of codes."""

    def clean(self, value):
        text = super().clean(value)
        codes: list[str] = []
        unknown: list[str] = []
        for token in (t.strip() for t in (text or "").replace(";", ",").split(",")):
            if not token:
                continue
            country = pycountry.countries.get(alpha_2=token.upper())
            if country is None:
                try:
                    country = pycountry.countries.lookup(token)
                except LookupError:
                    unknown.append(token)
                    continue
            if country.alpha_2 not in codes:
                codes.append(country.alpha_2)
        if unknown:
            raise ValidationError(
                gettext(
                    "Not a country code: %(codes)s. Give ISO 3166-1 codes, separated by "
                    "commas: e.g. US, GB, DE."
                )
                % {"codes": ", ".join(unknown)}
            )
        return codes or None


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
            caption = (
                gettext("New offer") if new else gettext("Offer %(number)s") % {"number": index + 1}
            )
            fields: dict[str, forms.Field] = {
                "price": forms.DecimalField(
                    label=gettext("%(offer)s: price") % {"offer": caption},
                    min_value=Decimal(0),
                    localize=False,
                    error_messages={"invalid": PRICE_ERROR},
                    widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 10}),
                ),
                "priceCurrency": forms.ChoiceField(
                    label=_("Currency"),
                    choices=self.with_current(currencies, offer, "priceCurrency"),
                ),
                "availability": forms.ChoiceField(
                    label=_("Availability"),
                    choices=self.with_current(availability, offer, "availability"),
                ),
                "itemCondition": forms.ChoiceField(
                    label=_("Condition"),
                    choices=self.with_current(condition, offer, "itemCondition"),
                ),
                "url": forms.URLField(label=_("Link to buy"), assume_scheme="https"),
                "validFrom": forms.DateField(
                    label=_("Valid from"), widget=forms.DateInput(attrs={"type": "date"})
                ),
                "priceValidUntil": forms.DateField(
                    label=_("Price valid until"), widget=forms.DateInput(attrs={"type": "date"})
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
            # Shipping and returns (editable() made sure their nodes fit the inputs).
            current = {**(shipping_values(offer) or {}), **(return_values(offer) or {})}
            for prop, field in self.shipping_and_return_fields(current).items():
                field.required = False
                value = current.get(prop)
                field.initial = ", ".join(value) if isinstance(value, list) else value
                name = input_name(index, prop)
                self.form.fields[name] = field
                names.append(name)
            # Checks between inputs, at the input they are about (Django calls a form's
            # clean_<name> after cleaning that input, in the inputs' order).
            for prop in (
                "shippingRate", "handlingMax", "transitMax", "merchantReturnDays", "returnCountries",
            ):  # fmt: skip
                check = partial(getattr(self, f"check_{prop}"), index)
                setattr(self.form, f"clean_{input_name(index, prop)}", check)
            if not new:
                name = input_name(index, "remove")
                self.form.fields[name] = forms.BooleanField(
                    label=_("Remove this offer"), required=False
                )
                names.append(name)
            self.rows.append(names)

    @staticmethod
    def shipping_and_return_fields(current: dict[str, Any]) -> dict[str, forms.Field]:
        def days(label) -> forms.IntegerField:
            return forms.IntegerField(
                label=label, min_value=0, widget=forms.NumberInput(attrs={"class": "vIntegerField"})
            )

        def member(label, enumeration: str, prop: str) -> forms.ChoiceField:
            choices = member_choices(enumeration, MEMBER_LABELS)
            value = current.get(prop)
            known = vocabulary.local_name(value or "") or value
            if value and f"https://schema.org/{known}" in dict(choices):
                current[prop] = f"https://schema.org/{known}"  # http://, or a bare name
            elif value:
                choices = [*choices, (value, f"{value} (not valid)")]
            return forms.ChoiceField(label=label, choices=choices)

        countries_help = _("ISO codes, separated by commas: e.g. US, GB, DE.")
        return {
            "shippingRate": forms.DecimalField(
                label=_("Shipping cost"),
                min_value=Decimal(0),
                localize=False,
                error_messages={
                    "invalid": _("Enter the cost as a number, with a dot before the cents: 4.95.")
                },
                widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 8}),
                help_text=_("In the offer's currency; 0 for free shipping."),
            ),
            "shippingCountries": CountriesField(
                label=_("Ships to (countries)"), help_text=countries_help
            ),
            "handlingMin": days(_("Handling time, min days")),
            "handlingMax": days(_("Handling time, max days")),
            "transitMin": days(_("Transit time, min days")),
            "transitMax": days(_("Transit time, max days")),
            "returnPolicyCategory": member(
                _("Returns"), "MerchantReturnEnumeration", "returnPolicyCategory"
            ),
            "merchantReturnDays": days(_("Return within (days)")),
            "returnMethod": member(_("Return method"), "ReturnMethodEnumeration", "returnMethod"),
            "returnFees": member(_("Return fees"), "ReturnFeesEnumeration", "returnFees"),
            "returnCountries": CountriesField(
                label=_("Returns accepted in"), help_text=countries_help
            ),
        }

    def lines(self) -> list[tuple[str, ...]]:
        """The input names of every offer, a line of them at a time (see LINES)."""
        return [
            line
            for index, names in enumerate(self.rows)
            for props in LINES
            if (line := tuple(n for p in props if (n := input_name(index, p)) in names))
        ]

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

    def any_changed(self, index: int, props) -> bool:
        return any(input_name(index, prop) in self.form.changed_data for prop in props)

    def shipping_changed(self, index: int) -> bool:
        """Whether the offer's shipping details are written anew: a shipping input changed,
        or the currency its cost is in."""
        rate = self.form.fields[input_name(index, "shippingRate")].initial
        return self.any_changed(index, SHIPPING_INPUTS) or (
            rate is not None and self.any_changed(index, ["priceCurrency"])
        )

    def returns_changed(self, index: int) -> bool:
        return self.any_changed(index, RETURN_INPUTS)

    def value(self, index: int, prop: str) -> Any:
        return self.form.cleaned_data.get(input_name(index, prop))

    # --- checks between inputs (each a form's clean_<input name>) ---------------------------

    def check_shippingRate(self, index: int) -> Any:
        rate, currency = self.value(index, "shippingRate"), input_name(index, "priceCurrency")
        if (
            rate is not None
            and self.shipping_changed(index)
            and not self.form.cleaned_data.get(currency)
            and currency not in self.form.errors
        ):
            raise ValidationError(
                gettext("Choose the offer's currency: the shipping cost is in it.")
            )
        return rate

    def check_days(self, index: int, low: str, high: str) -> Any:
        least, most = self.value(index, low), self.value(index, high)
        if least is not None and most is not None and least > most and self.shipping_changed(index):
            raise ValidationError(
                gettext("Less than the minimum (%(least)s days).") % {"least": least}
            )
        return most

    def check_handlingMax(self, index: int) -> Any:
        return self.check_days(index, "handlingMin", "handlingMax")

    def check_transitMax(self, index: int) -> Any:
        return self.check_days(index, "transitMin", "transitMax")

    def check_merchantReturnDays(self, index: int) -> Any:
        days = self.value(index, "merchantReturnDays")
        category = self.value(index, "returnPolicyCategory")
        if days is None and category == FINITE_WINDOW and self.returns_changed(index):
            raise ValidationError(
                gettext("Give the number of days within which a return is accepted.")
            )
        return days

    def check_returnCountries(self, index: int) -> Any:
        """The last return input: a policy needs its category, whatever else it says."""
        countries = self.value(index, "returnCountries")
        category = input_name(index, "returnPolicyCategory")
        others = [p for p in RETURN_INPUTS[1:-1] if self.value(index, p) not in (None, "")]
        if (
            self.returns_changed(index)
            and not self.value(index, "returnPolicyCategory")
            and (others or countries)
            and category not in self.form.errors
        ):
            self.form.add_error(
                category, gettext("Choose whether returns are accepted (and for how long).")
            )
        return countries

    # --- the offers back -------------------------------------------------------------------

    def cleaned_offers(self) -> list[dict]:
        """The offers from the inputs: an untouched offer exactly as it was stored, a
        changed one with its other properties (and its inputs left as they were) kept, the
        new one if anything was given."""
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
                name = input_name(index, prop)
                if original is not None and name not in self.form.changed_data:
                    continue  # kept exactly as stored
                value = cleaned.get(name)
                if value in (None, ""):
                    offer.pop(prop, None)
                    continue
                given = True
                offer[prop] = [self.stored(prop, value)]
            for prop, rewrite, build in (
                ("shippingDetails", self.shipping_changed, self.shipping_node),
                ("hasMerchantReturnPolicy", self.returns_changed, self.return_node),
            ):
                if original is not None and not rewrite(index):
                    continue
                node = build(index)
                if node is None:
                    offer.pop(prop, None)
                    continue
                given = True
                offer[prop] = [node]
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

    def shipping_node(self, index: int) -> dict | None:
        """One OfferShippingDetails node from the shipping inputs (None when all are empty)."""
        node: dict[str, Any] = {"@type": ["OfferShippingDetails"]}
        rate = self.value(index, "shippingRate")
        if rate is not None:
            node["shippingRate"] = [
                {
                    "@type": ["MonetaryAmount"],
                    "value": [{"@value": format(rate, "f")}],
                    "currency": [{"@value": self.value(index, "priceCurrency")}],
                }
            ]
        countries = self.value(index, "shippingCountries")
        if countries:
            node["shippingDestination"] = [
                {"@type": ["DefinedRegion"], "addressCountry": [{"@value": c} for c in countries]}
            ]
        delivery: dict[str, Any] = {"@type": ["ShippingDeliveryTime"]}
        for prop, (low, high) in PERIODS.items():
            least, most = self.value(index, low), self.value(index, high)
            if least is None and most is None:
                continue
            period: dict[str, Any] = {"@type": ["QuantitativeValue"]}
            if least is not None:
                period["minValue"] = [{"@value": least}]
            if most is not None:
                period["maxValue"] = [{"@value": most}]
            period["unitCode"] = [{"@value": "DAY"}]
            delivery[prop] = [period]
        if len(delivery) > 1:
            node["deliveryTime"] = [delivery]
        return node if len(node) > 1 else None

    def return_node(self, index: int) -> dict | None:
        """One MerchantReturnPolicy node from the return inputs (None when all are empty)."""
        node: dict[str, Any] = {"@type": ["MerchantReturnPolicy"]}
        for prop in ("returnPolicyCategory", "merchantReturnDays", "returnMethod", "returnFees"):
            value = self.value(index, prop)
            if value in (None, ""):
                continue
            # merchantReturnDays is stored as imports store it: schema.org's context types
            # the property as a Date, so that it is published as a plain number.
            typed = {"@type": "Date"} if prop == "merchantReturnDays" else {}
            node[prop] = [{**typed, "@value": value}]
        countries = self.value(index, "returnCountries")
        if countries:
            node["applicableCountry"] = [{"@value": c} for c in countries]
        return node if len(node) > 1 else None

    # Shipping and return properties below an offer, and the input that shows them.
    SHIPPING_PARTS = {
        "shippingRate": "shippingRate",
        "shippingDestination": "shippingCountries",
        "deliveryTime": "handlingMin",
    }
    RETURN_PARTS = {
        "returnPolicyCategory": "returnPolicyCategory",
        "merchantReturnDays": "merchantReturnDays",
        "returnMethod": "returnMethod",
        "returnFees": "returnFees",
        "applicableCountry": "returnCountries",
    }

    def field_for(self, parts: list[str]) -> str | None:
        """The input a JSON pointer's parts below /data/offers name ("0", "price"; "0",
        "shippingDetails", "deliveryTime", "transitTime", "maxValue")."""
        index = int(parts[0]) if parts and parts[0].isdigit() else 0
        rest = parts[1:] if parts and parts[0].isdigit() else parts
        prop = rest[0] if rest else ""
        inner = [part for part in rest[1:] if not part.isdigit()]  # no list positions
        if prop == "shippingDetails":
            prop = self.SHIPPING_PARTS.get(inner[0] if inner else "", "shippingRate")
            if inner[:1] == ["deliveryTime"] and len(inner) > 1 and inner[1] in PERIODS:
                low, high = PERIODS[inner[1]]
                prop = high if inner[2:3] == ["maxValue"] else low
        elif prop == "hasMerchantReturnPolicy":
            prop = self.RETURN_PARTS.get(inner[0] if inner else "", "returnPolicyCategory")
        name = input_name(index, prop)
        return name if name in self.form.fields else None
