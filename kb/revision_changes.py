"""What changed between two revisions, in words people read.

Each change is a row: a field's label (with the language of the text, when it has one), the
old value and the new. Nested schema.org nodes become label paths ("Offers › Price"),
language-tagged values are compared per language, references show the entity's name:
no JSON pointer, ``@value`` or ``@language`` ever reaches the reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from babel import Locale, UnknownLocaleError
from django.utils.text import capfirst

from kb import vocabulary
from kb.models import Entity

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
SEPARATOR = " › "
# Snapshot fields whose label is not their model field's name in words.
FIELD_LABELS = {
    "iri": "IRI",
    "types": "Types",
    "unit_labels": "Unit in words",
    "source_url": "Source URL",
    "as_of": "As of",
}
# Snapshot fields of facts and FAQs holding one text per language ({"en": "…"}).
LANGUAGE_MAP_FIELDS = {"statement", "unit_labels", "source_title", "question", "answer"}


@dataclass(frozen=True)
class Change:
    label: str  # "Offers › Price"
    language: str  # "中文 / zh-Hans", or "" for values of no language
    kind: str  # ADDED, REMOVED or CHANGED
    old: str
    new: str

    @property
    def field(self) -> str:
        """The label with the language, as the row shows it."""
        return f"{self.label} ({self.language})" if self.language else self.label

    def as_row(self) -> tuple[str, str, str, str]:
        return (self.field, self.kind, self.old, self.new)


@cache
def language_label(tag: str) -> str:
    """``zh-Hans`` → ``中文 / zh-Hans``: the language's own name, then the tag it is stored as."""
    try:
        name = Locale.parse(tag, sep="-").language_name
    except (UnknownLocaleError, ValueError, TypeError):
        name = None
    return f"{name} / {tag}" if name else tag


def property_label(name: str) -> str:
    prop = vocabulary.get_property(name)
    return prop.label if prop else vocabulary.label_words(name)


class ChangeReader:
    """Compares two snapshots of one object (an entity, a fact or an FAQ)."""

    def __init__(self, *, model, brand_id: int | None):
        self.model = model
        self.brand_id = brand_id
        self.changes: list[Change] = []

    # --- snapshots ----------------------------------------------------------------------------

    def compare(self, old: dict | None, new: dict | None) -> list[Change]:
        old, new = old or {}, new or {}
        # In the model's order of fields: PostgreSQL's jsonb keeps no order of keys.
        order = {name: n for n, name in enumerate(getattr(self.model, "snapshot_fields", ()))}
        fields = sorted({*new, *old}, key=lambda f: (order.get(f, len(order)), f))
        for field in fields:
            before, after = old.get(field), new.get(field)
            if before == after:
                continue
            if field == "data":
                self.node(before or {}, after or {}, [])
            elif field in LANGUAGE_MAP_FIELDS:
                self.language_map(self.field_label(field), before or {}, after or {})
            elif field == "types":
                self.values(self.field_label(field), "", before or [], after or [])
            else:
                words = self.field_value
                self.values(self.field_label(field), "", words(field, before), words(field, after))
        return self.changes

    def field_label(self, field: str) -> str:
        if field in FIELD_LABELS:
            return FIELD_LABELS[field]
        try:
            return capfirst(str(self.model._meta.get_field(field).verbose_name))
        except Exception:  # a field the model no longer has: its name in words
            return vocabulary.label_words(field)

    def field_value(self, field: str, value) -> list[str]:
        if value is None or value == "":
            return []
        if field == "about":
            return [self.entity_name(pk=value)]
        return [str(value)]

    def language_map(self, label: str, old: dict, new: dict) -> None:
        for language in sorted({*new, *old}):
            before, after = old.get(language) or "", new.get(language) or ""
            self.values(label, language_label(language), [before] * bool(before),
                        [after] * bool(after))  # fmt: skip

    # --- schema.org nodes ---------------------------------------------------------------------

    def node(self, old: dict, new: dict, path: list[str]) -> None:
        # By label, as people look them up (and jsonb keeps no order of keys).
        props = sorted({*new, *old}, key=lambda p: (p != "@type", property_label(p).casefold()))
        for prop in props:
            if prop.startswith("@") and prop != "@type":
                continue
            before, after = old.get(prop), new.get(prop)
            if before == after:
                continue
            label = property_label(prop) if prop != "@type" else "Type"
            self.property_values([*path, label], as_list(before), as_list(after))

    def property_values(self, path: list[str], old: list, new: list) -> None:
        old_nodes, new_nodes = [v for v in old if is_node(v)], [v for v in new if is_node(v)]
        for index in range(max(len(old_nodes), len(new_nodes))):
            where = path if max(len(old_nodes), len(new_nodes)) == 1 else [
                *path[:-1], f"{path[-1]} ({index + 1} of {max(len(old_nodes), len(new_nodes))})"
            ]  # fmt: skip
            before = old_nodes[index] if index < len(old_nodes) else {}
            after = new_nodes[index] if index < len(new_nodes) else {}
            self.node(before, after, where)
        label = SEPARATOR.join(path)
        by_language: dict[str, tuple[list[str], list[str]]] = {}
        for side, values in ((0, old), (1, new)):
            for value in values:
                if is_node(value):
                    continue
                language = value.get("@language", "") if isinstance(value, dict) else ""
                by_language.setdefault(language, ([], []))[side].append(self.words(value))
        for language, (before, after) in by_language.items():
            self.values(label, language_label(language) if language else "", before, after)

    def words(self, value) -> str:
        """One value as people read it: text, a number, a date, an entity's name, a member."""
        if not isinstance(value, dict):
            return str(value)
        if "@id" in value:
            return self.entity_name(iri=value["@id"])
        text = str(value.get("@value", ""))
        member = vocabulary.local_name(text)
        return vocabulary.label_words(member) if member else text

    def entity_name(self, *, pk=None, iri=None) -> str:
        found = Entity.objects.filter(brand_id=self.brand_id)
        found = found.filter(pk=pk) if pk is not None else found.filter(iri=iri)
        label = found.values_list("label", flat=True).first()
        return label or (iri if iri is not None else f"entity {pk} (deleted)")

    # --- rows ---------------------------------------------------------------------------------

    def values(self, label: str, language: str, old: list[str], new: list[str]) -> None:
        if old == new:
            return
        removed = [v for v in old if v not in new]
        added = [v for v in new if v not in old]
        if old and new and (len(removed) == len(added) == 1 or not (removed or added)):
            # One value replaced by another, or the same values in a new order.
            before, after = (removed[0], added[0]) if removed else (", ".join(old), ", ".join(new))
            self.changes.append(Change(label, language, CHANGED, before, after))
            return
        for value in removed:
            self.changes.append(Change(label, language, REMOVED, value, ""))
        for value in added:
            self.changes.append(Change(label, language, ADDED, "", value))


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def is_node(value) -> bool:
    """A nested schema.org node (an offer, an address), not a value or a reference."""
    return isinstance(value, dict) and "@value" not in value and set(value) != {"@id"}


def revision_changes(old, new) -> list[Change]:
    """The changes from revision ``old`` (None: nothing before it) to revision ``new``."""
    reader = ChangeReader(model=new.content_type.model_class(), brand_id=new.brand_id)
    return reader.compare(old.content if old is not None else None, new.content)


def previous_revision(revision):
    return (
        type(revision)
        .objects.filter(
            content_type=revision.content_type,
            object_id=revision.object_id,
            number__lt=revision.number,
        )
        .order_by("-number")
        .first()
    )
