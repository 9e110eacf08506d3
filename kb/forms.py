"""The entity form: inputs generated from the schema.org vocabulary for the entity's type.

Human text gets one input per brand language; URLs one per line; numbers, dates, booleans,
enumeration members and references to other entities get typed inputs. Whatever does not
fit a simple input (nested nodes, several values) stays editable as JSON-LD.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.admin.widgets import AutocompleteMixin, get_select2_language
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy

from kb import vocabulary
from kb.measure_fields import (
    COUNTRY_PROPERTIES,
    QUANTITY_PROPERTIES,
    country_field,
    country_fits,
    country_values,
    quantity_field,
    quantity_fits,
    quantity_values,
)
from kb.models import Brand, Entity
from kb.offer_fields import OfferFields
from kb.offer_fields import editable as offer_inputs_fit

# The Thing properties people fill in first, shown for every type.
CORE_PROPERTIES = ("name", "alternateName", "description", "url", "image", "sameAs", "identifier")
# What Google's profiles and answer engines look for first, by type (and its subtypes).
PROFILE_PROPERTIES = {
    "Product": ("brand", "sku", "gtin13", "mpn", "category", "color", "material"),
    "Organization": ("logo", "foundingDate", "founder", "telephone", "email", "address"),
    "LocalBusiness": ("address", "telephone", "openingHours", "priceRange", "geo"),
    "Person": ("jobTitle", "worksFor", "affiliation", "knowsAbout"),
    "Article": ("headline", "author", "datePublished", "dateModified", "publisher"),
}
LONG_TEXT = {"description", "disambiguatingDescription", "text", "abstract"}
GTIN_INPUTS = {"gtin", "gtin8", "gtin12", "gtin13", "gtin14"}
MORE_FIELD = "more_properties"


SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z\[])")


def first_sentence(text: str, limit: int = 200) -> str:
    """A help text's first sentence (schema.org's run to paragraphs), at most ``limit``."""
    sentence = SENTENCE_END.split(text, maxsplit=1)[0].strip()
    sentence = sentence if sentence.endswith(".") else f"{sentence}."
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def profile_properties(types: list[str]) -> list[str]:
    found: dict[str, None] = {}
    for type_name in types:
        for cls in reversed(vocabulary.lineage(type_name)):
            found.update(dict.fromkeys(PROFILE_PROPERTIES.get(cls, ())))
    return list(found)


def field_name(prop: str, language: str | None = None) -> str:
    return f"p__{prop}" + (f"__{language}" if language else "")


def featured_properties(types: list[str], data: dict) -> list[str]:
    """Core properties, then the type's own, then any other property already set."""
    ordered: dict[str, None] = {}
    applicable = vocabulary.properties_for(tuple(types))
    for prop in CORE_PROPERTIES:
        if prop in applicable:
            ordered[prop] = None
    for type_name in types:
        meta = vocabulary.registry.CLASS_METADATA.get(type_name)
        for prop in sorted(meta.properties if meta else ()):
            ordered[prop] = None
    for prop in data:
        if prop in applicable:
            ordered[prop] = None
    return list(ordered)


def input_kind(prop: vocabulary.Property, values: list) -> str | None:
    if prop.name in QUANTITY_PROPERTIES:
        return "quantity"  # a number and a unit (kb.measure_fields)
    if prop.name in COUNTRY_PROPERTIES:
        return "country"
    ranges = set(prop.ranges)
    untagged = bool(values) and all("@language" not in v for v in values)
    if prop.is_human_text and not untagged:
        return "text"
    if vocabulary.TEXT in ranges and len(ranges) == 1:
        return "plain"
    if vocabulary.URL in ranges:
        return "urls"
    if prop.enumeration_ranges and not prop.datatype_ranges:
        return "enum"
    if ranges & {vocabulary.NUMBER, vocabulary.INTEGER, "Float"}:
        return "number"
    if vocabulary.DATE in ranges and vocabulary.DATETIME not in ranges:
        return "date"
    if vocabulary.DATETIME in ranges:
        return "datetime"
    if ranges == {vocabulary.BOOLEAN}:
        return "boolean"
    if prop.class_ranges and not prop.datatype_ranges:
        return "reference"
    return None


def fits_simple_input(kind: str, values: list) -> bool:
    if kind == "quantity":
        return quantity_fits(values)
    if kind == "country":
        return country_fits(values)
    if not values:
        return True
    if kind == "text":
        return all(
            set(v) <= {"@value", "@language"} and isinstance(v.get("@value"), str) for v in values
        )
    if kind == "urls":
        return all(set(v) == {"@id"} or set(v) == {"@value"} for v in values)
    if len(values) > 1:
        return False
    value = values[0]
    if kind == "reference":
        return set(value) == {"@id"}
    return "@value" in value and set(value) <= {"@value", "@type"}


class EntityReferenceWidget(forms.Select):
    """A search-as-you-type picker: Django admin's bundled select2, fed by our own view.

    Only the chosen entity is rendered as an option, so the page stays small however large
    the catalog; the view searches the brand's entities of the property's types.
    """

    def __init__(self, *, url: str, selected: Entity | None):
        super().__init__()
        self.url, self.selected = url, selected
        self.i18n_name = get_select2_language()

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs)
        attrs.update(
            {
                "class": "admin-autocomplete",
                "data-ajax--url": self.url,
                "data-ajax--cache": "true",
                "data-ajax--delay": 250,
                "data-ajax--type": "GET",
                "data-theme": "admin-autocomplete",
                "data-allow-clear": "true",
                "data-placeholder": "Type to search…",
                "style": "width: 30em",
            }
        )
        return attrs

    def optgroups(self, name, value, attrs=None):
        options = [self.create_option(name, "", "", False, 0)]
        if self.selected is not None:
            options.append(self.create_option(name, self.selected.iri, str(self.selected), True, 1))
        return [(None, options, 0)]

    @property
    def media(self):
        return AutocompleteMixin.media.fget(self)


class WordListField(forms.CharField):
    """A list of words or phrases, typed on one line: "employs, staff, 员工"."""

    separators = re.compile(r"[,，、;；\n]")

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(word) for word in value)
        return value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        return [word.strip() for word in self.separators.split(text) if word.strip()]

    def has_changed(self, initial, data):
        return self.to_python(self.prepare_value(initial) or "") != self.to_python(data or "")


class EntityReferenceField(forms.CharField):
    """An IRI of one of the brand's entities whose type fits the property's range."""

    def __init__(self, *, brand: Brand, types: frozenset[str], exclude: int | None, **kwargs):
        super().__init__(**kwargs)
        self.brand, self.types, self.exclude = brand, types, exclude

    def clean(self, value):
        iri = super().clean(value)
        if not iri:
            return None
        candidates = Entity.objects.filter(brand=self.brand, primary_type__in=self.types)
        entity = candidates.exclude(pk=self.exclude).filter(iri=iri).first()
        if entity is None:
            raise ValidationError(f"{iri} is not an entity of this brand that fits here.")
        return entity


class EntityForm(forms.ModelForm):
    types_text = forms.CharField(
        label=gettext_lazy("schema.org type"),
        help_text=gettext_lazy(
            "e.g. Product, Organization, Store. Several types: separate with commas."
        ),
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    message = forms.CharField(
        required=False,
        label=gettext_lazy("Change note"),
        help_text=gettext_lazy("Why you changed it (kept in the history)."),
    )

    class Meta:
        model = Entity
        fields = ["brand", "slug"]

    class Media:
        # The messages of our scripts in the admin's language (config/urls.py), then them.
        js = ["/admin/i18n/js/kb/", "kb/identifiers.js", "kb/property_search.js"]

    def __init__(self, *args, brand: Brand | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        instance: Entity = self.instance
        self.brand = brand or (instance.brand if instance.pk else None)
        self.property_fields: dict[str, tuple[str, list[str]]] = {}
        self.offer_fields: OfferFields | None = None
        self.offers_from_json = False
        types = list(instance.types) if instance.pk else []
        self.fields["types_text"].initial = ", ".join(types)
        self.fields["version"].initial = instance.version
        self.fields["brand"].label = gettext("Belongs to")  # not schema.org's "brand" property
        self.fields["slug"].required = False
        self.fields["slug"].help_text = gettext(
            "Used in page URLs; left empty, it is made from the name."
        )
        if not instance.pk or not self.brand:
            return
        data = instance.data
        leftover = {k: v for k, v in data.items()}
        if "offers" in vocabulary.properties_for(tuple(types)) and offer_inputs_fit(
            data.get("offers", [])
        ):
            self.offer_fields = OfferFields(self, list(data.get("offers", [])))
            self.offer_fields.add()
            leftover.pop("offers", None)
        for prop_name in featured_properties(types, data):
            if prop_name == "offers" and self.offer_fields is not None:
                continue
            prop = vocabulary.get_property(prop_name)
            values = data.get(prop_name, [])
            kind = input_kind(prop, values) if prop else None
            if kind is None or not fits_simple_input(kind, values):
                continue
            leftover.pop(prop_name, None)
            self.add_property_fields(prop, kind, values, types)
        self.fields[MORE_FIELD] = forms.CharField(
            required=False,
            label=gettext("Other properties (JSON-LD)"),
            widget=forms.Textarea(
                attrs={"rows": 12, "class": "vLargeTextField", "spellcheck": "false"}
            ),
            help_text=gettext(
                "Nested values such as offers or addresses, and properties with several "
                'values, as stored JSON-LD: {"property": [values]}.'
            ),
            initial=json.dumps(leftover, ensure_ascii=False, indent=2) if leftover else "",
        )

    def add_property_fields(self, prop, kind: str, values: list, types: list[str]) -> None:
        label = prop.label
        declared = vocabulary.declaring_class(prop.name, types[0]) if types else None
        help_text = first_sentence(prop.help_text) + (f" ({declared})" if declared else "")
        names: list[str] = []
        if kind == "text":
            by_language = {v.get("@language"): v["@value"] for v in values}
            for language in self.brand.languages:
                name = field_name(prop.name, language)
                widget = forms.Textarea(attrs={"rows": 3}) if prop.name in LONG_TEXT else None
                initial = by_language.get(language)
                if initial is None and language == self.brand.default_language:
                    initial = by_language.get(None)
                self.fields[name] = forms.CharField(
                    label=f"{label} [{language}]",
                    required=False,
                    widget=widget,
                    help_text=help_text
                    if language == self.brand.default_language
                    else (gettext("Missing translation") if not initial and by_language else ""),
                    initial=initial,
                )
                names.append(name)
        else:
            name = field_name(prop.name)
            field = self.typed_field(prop, kind, values)
            field.label, field.help_text, field.required = label, help_text, False
            self.fields[name] = field
            names.append(name)
        self.property_fields[prop.name] = (kind, names)

    def typed_field(self, prop, kind: str, values: list) -> forms.Field:
        if kind == "quantity":
            return quantity_field(prop.name, values)
        if kind == "country":
            return country_field(values)
        value = values[0] if values else {}
        raw = value.get("@value")
        if kind == "urls":
            lines = [v.get("@id") or v.get("@value") for v in values]
            return forms.CharField(
                widget=forms.Textarea(attrs={"rows": 2}), initial="\n".join(lines)
            )
        if kind == "enum":
            members = vocabulary.enumeration_members(prop.enumeration_ranges[0])
            choices = [("", "—")] + [
                (f"https://schema.org/{m}", vocabulary.label_words(m)) for m in members
            ]
            current = vocabulary.local_name(raw or "") or raw
            initial = f"https://schema.org/{current}" if current else ""
            if raw and initial not in dict(choices):
                choices.append((raw, raw))
                initial = raw
            return forms.ChoiceField(choices=choices, initial=initial)
        if kind == "plain" and prop.name in GTIN_INPUTS:
            # Checked as the editor types (kb/static/kb/identifiers.js) and at save.
            attrs = {"data-check": "gtin", "inputmode": "numeric", "autocomplete": "off"}
            return forms.CharField(initial=raw, widget=forms.TextInput(attrs=attrs))
        if kind == "plain":
            return forms.CharField(initial=raw)
        if kind == "number":
            return forms.CharField(
                initial=raw, widget=forms.TextInput(attrs={"inputmode": "decimal"})
            )
        if kind == "date":
            return forms.CharField(initial=raw, widget=forms.DateInput(attrs={"type": "date"}))
        if kind == "datetime":
            return forms.CharField(initial=raw, help_text="ISO 8601, e.g. 2027-04-05T09:00+08:00")
        if kind == "boolean":
            return forms.NullBooleanField(initial=raw)
        types = vocabulary.subclasses_of(tuple(prop.class_ranges))
        selected = Entity.objects.filter(brand=self.brand, iri=value.get("@id")).first()
        query = urlencode(
            {"brand": self.brand.pk, "types": ",".join(prop.class_ranges),
             "exclude": self.instance.pk}
        )  # fmt: skip
        return EntityReferenceField(
            brand=self.brand,
            types=types,
            exclude=self.instance.pk,
            initial=selected.iri if selected else None,
            widget=EntityReferenceWidget(
                url=f"{reverse('admin:kb_entity_references')}?{query}", selected=selected
            ),
        )

    def clean_types_text(self) -> list[str]:
        types = [t.strip() for t in self.cleaned_data["types_text"].split(",") if t.strip()]
        unknown = [t for t in types if not vocabulary.is_class(t)]
        if unknown:
            raise ValidationError(f"Not schema.org types: {', '.join(unknown)}.")
        if not types:
            raise ValidationError("Give at least one schema.org type.")
        return types

    def clean_more_properties(self) -> dict:
        text = self.cleaned_data.get(MORE_FIELD) or ""
        if not text.strip():
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValidationError(
                f"Not valid JSON: line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
        if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
            raise ValidationError('Expected {"property": [values], …}.')
        return value

    def entity_data(self) -> dict[str, list]:
        """The stored-form data from the inputs, its properties in their stored order (so
        that a save changes only what was changed)."""
        data = self.data_from_inputs()
        stored = [prop for prop in self.instance.data if prop in data]
        return {prop: data[prop] for prop in [*stored, *(p for p in data if p not in stored)]}

    def data_from_inputs(self) -> dict[str, list]:
        data: dict[str, list] = dict(self.cleaned_data.get(MORE_FIELD) or {})
        # Offers typed as JSON-LD among the other properties count when no offer input was
        # touched (problems with them are then shown there).
        self.offers_from_json = "offers" in data and not (
            self.offer_fields is not None and self.offer_fields.touched()
        )
        if self.offer_fields is not None and not self.offers_from_json:
            offers = self.offer_fields.cleaned_offers()
            if offers:
                data["offers"] = offers
            else:
                data.pop("offers", None)
        for prop_name, (kind, names) in self.property_fields.items():
            if not set(names) & set(self.changed_data):
                # Untouched inputs keep the stored values exactly (no re-typing of "12.50").
                if self.instance.data.get(prop_name):
                    data[prop_name] = self.instance.data[prop_name]
                continue
            values = self.values_for(prop_name, kind, names)
            if values:
                data[prop_name] = values
            else:
                data.pop(prop_name, None)
        return data

    def values_for(self, prop_name: str, kind: str, names: list[str]) -> list[dict[str, Any]]:
        cleaned = self.cleaned_data
        if kind == "text":
            return [
                {"@value": cleaned[name], "@language": name.rsplit("__", 1)[1]}
                for name in names
                if cleaned.get(name)
            ]
        raw = cleaned.get(names[0])
        if raw in (None, ""):
            return []
        if kind == "urls":
            return [{"@id": line.strip()} for line in raw.splitlines() if line.strip()]
        if kind == "reference":
            return [{"@id": raw.iri}]
        if kind == "quantity":
            return quantity_values(raw)
        if kind == "country":
            return country_values(raw)
        if kind == "number":
            try:
                number = float(raw)
            except ValueError:
                return [{"@value": raw}]
            return [{"@value": int(number) if number.is_integer() and "." not in raw else number}]
        if kind == "date":
            return [{"@value": str(raw), "@type": "Date"}]
        return [{"@value": raw}]
