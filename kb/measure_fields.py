"""A product's weight and size, and its country of origin, as form inputs.

Stored as schema.org nodes (a QuantitativeValue with a UN/CEFACT ``unitCode``, a Country
named by its ISO 3166-1 code), they used to be edited as JSON-LD; here a weight is a number
and a unit picked from a list, a country a name picked from a list.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# (UN/CEFACT Common Code, as people write it): the units offered per measured property.
MASS_UNITS = (("GRM", "g"), ("KGM", "kg"), ("MGM", "mg"), ("LBR", "lb"), ("ONZ", "oz"))
LENGTH_UNITS = (("CMT", "cm"), ("MMT", "mm"), ("MTR", "m"), ("INH", "in"), ("FOT", "ft"))
QUANTITY_PROPERTIES = {
    "weight": MASS_UNITS,
    "height": LENGTH_UNITS,
    "width": LENGTH_UNITS,
    "depth": LENGTH_UNITS,
}
COUNTRY_PROPERTIES = ("countryOfOrigin",)


def quantity_fits(values: list) -> bool:
    """One QuantitativeValue of a number and a unit code, and nothing else."""
    if not values:
        return True
    if len(values) != 1 or not isinstance(values[0], dict):
        return False
    node = values[0]
    if node.get("@type") != ["QuantitativeValue"] or set(node) - {"@type", "value", "unitCode"}:
        return False
    value, unit = node.get("value", []), node.get("unitCode", [])
    return (
        len(value) == 1
        and isinstance(value[0].get("@value"), int | float | str)
        and set(value[0]) == {"@value"}
        and len(unit) <= 1
        and all(set(u) == {"@value"} for u in unit)
    )


def country_fits(values: list) -> bool:
    """One Country named by an ISO 3166-1 alpha-2 code, and nothing else."""
    if not values:
        return True
    if len(values) != 1 or not isinstance(values[0], dict):
        return False
    node = values[0]
    names = node.get("name", [])
    return (
        node.get("@type") == ["Country"]
        and set(node) == {"@type", "name"}
        and len(names) == 1
        and set(names[0]) == {"@value"}
        and pycountry.countries.get(alpha_2=str(names[0]["@value"])) is not None
    )


class QuantityWidget(forms.MultiWidget):
    def __init__(self, units: tuple[tuple[str, str], ...]):
        super().__init__(
            [
                forms.TextInput(attrs={"inputmode": "decimal", "size": 8}),
                forms.Select(choices=[("", "—"), *units]),
            ]
        )

    def decompress(self, value):
        return list(value) if value else [None, None]


class QuantityField(forms.MultiValueField):
    """A number and its unit: (Decimal, code) or None."""

    def __init__(self, units: tuple[tuple[str, str], ...], **kwargs):
        self.units = units
        super().__init__(
            fields=(
                forms.CharField(required=False),
                forms.ChoiceField(choices=units, required=False),
            ),
            widget=QuantityWidget(units),
            require_all_fields=False,
            **kwargs,
        )

    def compress(self, data_list):
        if not data_list or not any(data_list):
            return None
        number, unit = (list(data_list) + [None, None])[:2]
        if not number:
            raise ValidationError(_("Give the number too, or clear the unit."), code="number")
        try:
            amount = Decimal(str(number).strip())
        except InvalidOperation:
            raise ValidationError(
                _("Enter a number, with a dot before any decimals: e.g. 50 or 2.5."),
                code="invalid",
            ) from None
        if not amount.is_finite() or amount < 0:
            raise ValidationError(_("Enter a number of zero or more."), code="invalid")
        if not unit:
            raise ValidationError(_("Pick the unit."), code="unit")
        return (amount, unit)


def quantity_field(prop: str, values: list) -> QuantityField:
    units = QUANTITY_PROPERTIES[prop]
    node = values[0] if values else {}
    initial = None
    if node:
        value = node["value"][0]["@value"]
        unit = (node.get("unitCode") or [{}])[0].get("@value")
        if unit and unit not in dict(units):
            units = (*units, (unit, f"{unit} (kept)"))
        initial = (Decimal(str(value)), unit)
    field = QuantityField(units)
    field.initial = initial
    return field


def quantity_values(cleaned: tuple[Decimal, str] | None) -> list[dict[str, Any]]:
    if cleaned is None:
        return []
    amount, unit = cleaned
    number: int | float = int(amount) if amount == amount.to_integral_value() else float(amount)
    return [
        {
            "@type": ["QuantitativeValue"],
            "unitCode": [{"@value": unit}],
            "value": [{"@value": number}],
        }
    ]


def country_choices() -> list[tuple[str, str]]:
    countries = sorted(pycountry.countries, key=lambda c: c.name)
    return [("", "—")] + [(c.alpha_2, f"{c.name} ({c.alpha_2})") for c in countries]


def country_field(values: list) -> forms.ChoiceField:
    initial = values[0]["name"][0]["@value"] if values else ""
    return forms.ChoiceField(choices=country_choices(), initial=initial)


def country_values(code: str) -> list[dict[str, Any]]:
    if not code:
        return []
    return [{"@type": ["Country"], "name": [{"@value": code}]}]
