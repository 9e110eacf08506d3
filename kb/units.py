"""Values with units, country and language codes, in the words of each language.

A fact's unit is text the editor types ("t", "ha", "years", "buds"). Units CLDR knows are
recognised by their usual spellings: JSON-LD carries their UN/CEFACT Common Code
(``unitCode``, as schema.org asks) and pages show them as CLDR writes them in the page's
language (Babel): "42 ha" and "42公顷". Any other unit is a word the editor gives per
language (``Fact.unit_labels``); without one a page falls back to the unit as typed.

Country (ISO 3166-1 alpha-2) and language (BCP 47) codes stay codes in JSON-LD and are shown
by their CLDR names: "CN" is "China" and "中国".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from babel.units import format_unit


@dataclass(frozen=True)
class KnownUnit:
    cldr: str  # CLDR unit id, e.g. "mass-tonne"
    code: str  # UN/CEFACT Common Code, e.g. "TNE"
    symbols: tuple[str, ...]  # spellings shown short ("42 ha")
    words: tuple[str, ...]  # spellings shown long ("42 hectares"), compared in lower case


KNOWN_UNITS = (
    KnownUnit("mass-tonne", "TNE", ("t",), ("tonne", "tonnes", "metric ton", "metric tons")),
    KnownUnit("mass-kilogram", "KGM", ("kg",), ("kilogram", "kilograms", "kilo", "kilos")),
    KnownUnit("mass-gram", "GRM", ("g",), ("gram", "grams")),
    KnownUnit("volume-liter", "LTR", ("l", "L"), ("liter", "liters", "litre", "litres")),
    KnownUnit("volume-milliliter", "MLT", ("ml", "mL"), ("milliliter", "milliliters", "millilitre", "millilitres")),
    KnownUnit("area-hectare", "HAR", ("ha",), ("hectare", "hectares")),
    KnownUnit("area-square-meter", "MTK", ("m²", "m2", "sqm"), ("square meter", "square meters", "square metre", "square metres")),
    KnownUnit("area-square-kilometer", "KMK", ("km²", "km2"), ("square kilometer", "square kilometers", "square kilometre", "square kilometres")),
    KnownUnit("length-kilometer", "KMT", ("km",), ("kilometer", "kilometers", "kilometre", "kilometres")),
    KnownUnit("length-meter", "MTR", ("m",), ("meter", "meters", "metre", "metres")),
    KnownUnit("length-centimeter", "CMT", ("cm",), ("centimeter", "centimeters", "centimetre", "centimetres")),
    KnownUnit("length-millimeter", "MMT", ("mm",), ("millimeter", "millimeters", "millimetre", "millimetres")),
    KnownUnit("duration-year", "ANN", ("yr", "yrs"), ("year", "years")),
    KnownUnit("duration-month", "MON", (), ("month", "months")),
    KnownUnit("duration-week", "WEE", (), ("week", "weeks")),
    KnownUnit("duration-day", "DAY", (), ("day", "days")),
    KnownUnit("duration-hour", "HUR", ("h", "hr", "hrs"), ("hour", "hours")),
    KnownUnit("duration-minute", "MIN", ("min",), ("minute", "minutes")),
    KnownUnit("concentr-percent", "P1", ("%",), ("percent", "per cent")),
    KnownUnit("temperature-celsius", "CEL", ("°C", "℃"), ("degrees celsius",)),
)  # fmt: skip

# Written as symbols in every language ("5%", not "5 percent" or "5摄氏度").
ALWAYS_SHORT = frozenset({"concentr-percent", "temperature-celsius"})
# Languages whose numbers and unit words are written without a space between them.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "ko"})


@functools.cache
def _spellings() -> dict[str, tuple[KnownUnit, bool]]:
    found: dict[str, tuple[KnownUnit, bool]] = {}
    for unit in KNOWN_UNITS:
        for symbol in unit.symbols:
            found[symbol] = (unit, True)
        for word in unit.words:
            found[word] = (unit, False)
    return found


def known_unit(text: str) -> tuple[KnownUnit, bool] | None:
    """The unit a fact's unit text names, and whether it was written as a symbol."""
    text = " ".join(text.split())
    return _spellings().get(text) or _spellings().get(text.lower())


def unit_code(text: str) -> str | None:
    """The UN/CEFACT Common Code of a known unit ("ha" → "HAR"), else None."""
    found = known_unit(text) if text else None
    return found[0].code if found else None


@functools.cache
def locale_for(language: str) -> Locale:
    try:
        return Locale.parse(language, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def plain_number(value: str) -> Decimal | None:
    """``value`` as a number when it is one as typed ("42", "-3.5"), else None ("12,000",
    "3–5" and "about 40" are shown as typed)."""
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def value_text(value: str, unit: str, labels: dict[str, str], language: str) -> str:
    """A fact's value with its unit, as ``language`` writes it: "42 ha" / "42公顷",
    "36,000 buds" / "36,000个芽" (the label the editor gave for the language)."""
    value, unit = (value or "").strip(), (unit or "").strip()
    if not unit:
        return value  # a year, a code, a name: shown as typed
    locale = locale_for(language)
    number = plain_number(value)
    label = (labels or {}).get(language, "").strip()
    found = known_unit(unit)
    if found and not label and number is not None:
        known, as_symbol = found
        short = known.cldr in ALWAYS_SHORT or (as_symbol and not unspaced(language))
        return format_unit(number, known.cldr, length="short" if short else "long", locale=locale)
    shown = format_decimal(number, locale=locale) if number is not None else value
    if not value:
        return label or unit
    word = label or unit
    return f"{shown}{word}" if unspaced(language) and not word.isascii() else f"{shown} {word}"


def unspaced(language: str) -> bool:
    return language.split("-")[0].lower() in UNSPACED_LANGUAGES


def country_name(code: str, language: str) -> str | None:
    """The CLDR name of an ISO 3166-1 alpha-2 country code in ``language``, else None."""
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return None
    return locale_for(language).territories.get(code.upper())


def language_display_name(tag: str, language: str) -> str | None:
    """The CLDR name of a BCP 47 language tag in ``language`` ("zh-Hans" → "简体中文")."""
    if not tag or len(tag) > 35:
        return None
    try:
        named = Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    return named.get_display_name(locale_for(language))


def unit_symbol(code: str) -> str:
    """The unit a UN/CEFACT Common Code stands for, as a fact's unit text ("HAR" → "ha")."""
    for unit in KNOWN_UNITS:
        if unit.code == code:
            return (unit.symbols or unit.words)[0]
    return ""
