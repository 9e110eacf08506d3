"""Checks entity data against the schema.org vocabulary.

Works on the stored form (see ``kb.jsonld``). Every problem names where it is: a JSON
pointer into the input when the data came from a file (nodes carry their source pointer
under ``POINTER_KEY``), or into the entity's data otherwise.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from kb import vocabulary

POINTER_KEY = "__pointer__"  # where a node came from in the input (import only)
KEYS_KEY = "__keys__"  # property name → the key the input used for it (import only)

# ISO 8601 dates of reduced precision, a year or a year and month ("2019", "2019-05"):
# schema.org's own Date examples use them.
REDUCED_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2]))?$")
# Properties of other vocabularies are kept (not validated) when named by an absolute IRI.
# The longest property name kept (kb.models.EntityLink.property: links name their property).
MAX_PROPERTY_LENGTH = 100
FOREIGN_PROPERTY = re.compile(r"^(https?://[^/\s]+/\S*|urn:[a-z0-9][a-z0-9-]*:\S+)$", re.I)
# A Role (OrganizationRole, PerformanceRole, …) may stand in place of a property's expected
# value, holding that same property: member → OrganizationRole → member.
ROLE = "Role"
NUMERIC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# The integers every JSON reader keeps exactly (I-JSON, RFC 7493; JavaScript's
# Number.MAX_SAFE_INTEGER): past them a reader, a browser or orjson, which the publisher and
# the API read stored JSON with, may round them.
MAX_EXACT_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class Problem:
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


def escape_pointer_token(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(base: str, *tokens: str | int) -> str:
    return base + "".join("/" + escape_pointer_token(t) for t in tokens)


def suggest(name: str, candidates) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return " " + _("(did you mean %(name)s?)") % {"name": repr(matches[0])} if matches else ""


# A function telling the types of an entity by IRI, or None when the IRI is not an entity.
TypeLookup = Callable[[str], "list[str] | None"]


def validate_node(
    types: list[str],
    data: dict,
    *,
    pointer: str,
    lookup_types: TypeLookup,
    languages: list[str],
    allowed_types: tuple[str, ...] = (),
) -> list[Problem]:
    """All problems of one node (entity or nested) and the nodes inside it."""
    return list(_node_problems(types, data, pointer, lookup_types, languages, allowed_types))


def _node_problems(
    types, data, pointer, lookup_types, languages, allowed_types, role_of=None
) -> Iterator[Problem]:
    pointer = data.get(POINTER_KEY, pointer)
    keys = data.get(KEYS_KEY, {})
    known_types: list[str] = [t for t in types if vocabulary.is_class(t)]
    for index, type_name in enumerate(types):
        if vocabulary.is_class(type_name):
            continue
        if known_types and FOREIGN_PROPERTY.match(type_name):
            continue  # a type of another vocabulary beside a schema.org one (gs1:Product)
        if FOREIGN_PROPERTY.match(type_name):
            yield Problem(
                join_pointer(pointer, "@type", *([index] if len(types) > 1 else [])),
                _(
                    "%(type)s is not a schema.org type; a type of another vocabulary is kept "
                    "only beside a schema.org type"
                )
                % {"type": type_name},
            )
        else:
            yield Problem(
                join_pointer(pointer, "@type", *([index] if len(types) > 1 else [])),
                _("unknown schema.org type %(type)s") % {"type": repr(type_name)}
                + suggest(type_name, vocabulary.all_classes()),
            )
    if not types and not allowed_types:
        yield Problem(pointer, _("the node has no @type"))
    if (
        allowed_types
        and known_types
        and not any(
            vocabulary.is_subclass(t, allowed) for t in known_types for allowed in allowed_types
        )
    ):
        yield Problem(
            pointer,
            _("expected %(expected)s here, got %(got)s")
            % {"expected": _or(allowed_types), "got": _or(known_types)},
        )
    context_types = tuple(known_types) or allowed_types
    for prop, values in data.items():
        if prop.startswith("@") or prop in (POINTER_KEY, KEYS_KEY):
            continue
        prop_pointer = join_pointer(pointer, keys.get(prop, prop))
        meta = vocabulary.get_property(prop)
        if meta is None and (FOREIGN_PROPERTY.match(prop) or _action_annotation(prop)):
            if len(prop) > MAX_PROPERTY_LENGTH:
                yield Problem(
                    prop_pointer,
                    _("the property IRI is %(length)s characters long; at most %(max)s are kept")
                    % {"length": len(prop), "max": MAX_PROPERTY_LENGTH},
                )
                continue
            yield from _foreign_problems(values, prop_pointer)
            continue
        if meta is None and ":" in prop:
            yield Problem(
                prop_pointer,
                _(
                    "%(property)s is not a schema.org property, nor an absolute http(s) or urn: "
                    "IRI (is the prefix %(prefix)s defined in the @context?)"
                )
                % {"property": prop, "prefix": repr(prop.split(":", 1)[0])},
            )
            continue
        if meta is None:
            yield Problem(
                prop_pointer,
                _("unknown schema.org property %(property)s") % {"property": repr(prop)}
                + suggest(
                    prop,
                    vocabulary.properties_for(context_types)
                    if context_types
                    else vocabulary.all_properties(),
                ),
            )
            continue
        if (
            context_types
            and prop != role_of
            and not vocabulary.property_applies(prop, context_types)
        ):
            yield Problem(
                prop_pointer,
                _("property %(property)s does not apply to %(types)s; it applies to %(domains)s")
                % {
                    "property": repr(prop),
                    "types": _or(context_types),
                    "domains": _or(meta.domains),
                },
            )
            continue
        if not isinstance(values, list):
            yield Problem(prop_pointer, _("values must be a list"))
            continue
        for index, value in enumerate(values):
            value_pointer = join_pointer(prop_pointer, index) if len(values) > 1 else prop_pointer
            if isinstance(value, dict) and POINTER_KEY in value:
                value_pointer = value[POINTER_KEY]
            yield from _value_problems(meta, value, value_pointer, lookup_types, languages)


def _value_problems(meta, value, pointer, lookup_types, languages) -> Iterator[Problem]:
    if not isinstance(value, dict):
        yield Problem(pointer, _("malformed value %(value)s") % {"value": repr(value)})
        return
    if "@list" in value:
        for index, item in enumerate(value["@list"]):
            yield from _value_problems(
                meta, item, join_pointer(pointer, index), lookup_types, languages
            )
        return
    if "@value" in value:
        problem = literal_problem(meta, value, languages)
        if problem:
            yield Problem(pointer, problem)
        return
    if "@id" in value and not any(k for k in value if not k.startswith("@") or k == "@type"):
        problem = reference_problem(meta, value["@id"], lookup_types)
        if problem:
            yield Problem(pointer, problem)
        return
    # A nested anonymous node.
    nested_types = value.get("@type", [])
    class_ranges = meta.class_ranges
    if class_ranges and any(
        vocabulary.is_class(t) and vocabulary.is_subclass(t, ROLE) for t in nested_types
    ):
        yield from _node_problems(
            nested_types, value, pointer, lookup_types, languages, (ROLE,), role_of=meta.name
        )
        return
    if not class_ranges:
        yield Problem(
            pointer,
            _("%(property)s expects %(expected)s, got a nested %(nested)s")
            % {
                "property": repr(meta.name),
                "expected": _or(meta.ranges),
                "nested": _or(nested_types) if nested_types else _("node"),
            },
        )
        return
    yield from _node_problems(
        nested_types, value, pointer, lookup_types, languages, allowed_types=class_ranges
    )


def _action_annotation(prop: str) -> bool:
    """``query-input``, ``name-output``: schema.org's annotations of a potential Action's
    property (schema.org/docs/actions.html), text or a PropertyValueSpecification."""
    base, dash, kind = prop.rpartition("-")
    return bool(dash) and kind in ("input", "output") and vocabulary.is_property(base)


def _foreign_problems(values, pointer: str) -> Iterator[Problem]:
    """A property of another vocabulary (GS1, UN/CEFACT…) is kept as given; only what no
    property may hold is refused: a reference that is a script or holds junk."""
    if not isinstance(values, list):
        yield Problem(pointer, _("values must be a list"))
        return
    for index, value in enumerate(values):
        iri = value.get("@id") if isinstance(value, dict) else None
        if isinstance(iri, str) and (
            URL_JUNK.search(iri) or iri.split(":", 1)[0].lower() in SCRIPT_SCHEMES
        ):
            yield Problem(
                join_pointer(pointer, index) if len(values) > 1 else pointer,
                _("%(url)s is not an http(s) URL") % {"url": repr(iri)},
            )


# What a URL may not hold: whitespace and control characters (browsers strip or stop at
# them, so "java\tscript:" is javascript:), and backslashes (read as "/" by browsers).
URL_JUNK = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\]")
WEB_SCHEMES = ("http", "https")
SCRIPT_SCHEMES = {"javascript", "vbscript", "data", "file"}


def web_url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL (None when it is): every value of a
    URL-typed property is one, nothing else (``javascript:``, ``data:``, ``vbscript:``,
    ``file:``, relative junk) is published as a link or an image."""
    if isinstance(url, str) and not URL_JUNK.search(url):
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts and parts.scheme.lower() in WEB_SCHEMES and parts.hostname:
            return None
    return _("%(url)s is not an http(s) URL") % {"url": repr(url)}


def expects_url_string(meta: vocabulary.Property) -> bool:
    """A string value of this property is a URL: URL is in its range and Text is not (for
    ``image`` or ``logo``, ImageObject or URL, a string is the image's URL)."""
    return vocabulary.URL in meta.ranges and vocabulary.TEXT not in meta.ranges


def literal_problem(meta: vocabulary.Property, value: dict, languages: list[str]) -> str | None:
    raw = value["@value"]
    expects = _or(meta.ranges)
    if isinstance(raw, str) and expects_url_string(meta):
        return web_url_problem(raw)
    language = value.get("@language")
    if language is not None and language not in languages:
        return _("language %(language)s is not one of the brand's languages (%(languages)s)") % {
            "language": repr(language),
            "languages": ", ".join(languages),
        }
    datatypes = {
        ancestor for r in meta.datatype_ranges for ancestor in vocabulary.datatype_lineage(r)
    }
    if isinstance(raw, bool):
        return (
            None
            if vocabulary.BOOLEAN in datatypes
            else _("%(property)s expects %(expected)s, got %(value)s")
            % {"property": repr(meta.name), "expected": expects, "value": repr(raw)}
        )
    if isinstance(raw, float) and not math.isfinite(raw):
        return _("%(property)s expects a finite number, got %(value)s") % {
            "property": repr(meta.name),
            "value": repr(raw),
        }
    if isinstance(raw, int) and abs(raw) > MAX_EXACT_INTEGER:
        return _(
            "%(property)s: %(value)s is past the integers JSON readers keep exactly "
            '(±%(max)s); give it as text: "%(value)s"'
        ) % {"property": repr(meta.name), "value": raw, "max": f"{MAX_EXACT_INTEGER:,}"}
    if isinstance(raw, int | float) and "Distance" in datatypes and raw >= 0:
        # A bare number where a Distance is expected ("width": 512 on an ImageObject, as
        # CMSs write image sizes in pixels): kept as the number.
        return None
    if isinstance(raw, int | float):
        if vocabulary.NUMBER in datatypes or vocabulary.TEXT in datatypes:
            if (
                datatypes & {vocabulary.INTEGER}
                and not datatypes & {vocabulary.TEXT, "Float"}
                and vocabulary.NUMBER not in meta.ranges
                and isinstance(raw, float)
                and not raw.is_integer()
            ):
                return _("%(property)s expects an Integer, got %(value)s") % {
                    "property": repr(meta.name),
                    "value": repr(raw),
                }
            return None
        return _("%(property)s expects %(expected)s, got the number %(value)s") % {
            "property": repr(meta.name),
            "expected": expects,
            "value": repr(raw),
        }
    if not isinstance(raw, str):
        return _("%(property)s expects %(expected)s, got %(value)s") % {
            "property": repr(meta.name),
            "expected": expects,
            "value": repr(raw),
        }
    if vocabulary.TEXT in datatypes or "Quantity" in datatypes:
        return None
    if vocabulary.NUMBER in datatypes and NUMERIC.match(raw.strip()):
        return None
    if vocabulary.DATETIME in datatypes and _parses(datetime.fromisoformat, raw):
        return None
    if vocabulary.DATE in datatypes and _parses(date.fromisoformat, raw):
        return None
    if vocabulary.DATE in datatypes and "T" in raw and _parses(datetime.fromisoformat, raw):
        # An ISO 8601 date-time where a Date is expected ("lastReviewed" in Google's own
        # examples): it names the date, with more precision; kept as given.
        return None
    if datatypes & {vocabulary.DATE, vocabulary.DATETIME} and REDUCED_DATE.match(raw):
        return None
    if vocabulary.TIME in datatypes and _parses(time.fromisoformat, raw):
        return None
    if vocabulary.BOOLEAN in datatypes and raw in {"True", "False", "true", "false"}:
        return None
    member = vocabulary.local_name(raw) or raw
    for enumeration in meta.enumeration_ranges:
        if vocabulary.is_enumeration_member(member, enumeration):
            return None
        if raw in vocabulary.listed_values(enumeration):
            return None  # a value schema.org lists for it (GoodRelations' "#Sell")
    if any(not vocabulary.is_enumeration(r) for r in meta.class_ranges):
        # Text where a Thing is expected ("author": "Jane Doe"): schema.org's data model
        # allows it ("expected types are not strict"); it is kept as text.
        return None
    if meta.enumeration_ranges:
        members = vocabulary.enumeration_members(meta.enumeration_ranges[0])
        listed = ", ".join(members[:8]) + ("…" if len(members) > 8 else "")
        return (
            _("%(value)s is not a member of %(enumeration)s")
            % {"value": repr(raw), "enumeration": _or(meta.enumeration_ranges)}
            + suggest(member, members)
            + _("; use one of %(members)s") % {"members": listed}
        )
    return _("%(property)s expects %(expected)s, got the text %(value)s") % {
        "property": repr(meta.name),
        "expected": expects,
        "value": repr(raw),
    }


def reference_problem(meta: vocabulary.Property, iri: str, lookup_types: TypeLookup) -> str | None:
    datatypes = {
        ancestor for r in meta.datatype_ranges for ancestor in vocabulary.datatype_lineage(r)
    }
    member = vocabulary.local_name(iri)
    if member and any(vocabulary.is_enumeration_member(member, e) for e in meta.enumeration_ranges):
        return None
    target_types = lookup_types(iri)
    if target_types is None and (
        expects_url_string(meta)
        or URL_JUNK.search(iri)
        or iri.split(":", 1)[0].lower() in SCRIPT_SCHEMES
    ):
        # Not one of the brand's entities: a link to somewhere else, which must be http(s)
        # (and no IRI, whatever the property, is a script or holds junk).
        problem = web_url_problem(iri)
        if problem:
            return problem
    if target_types and meta.class_ranges:  # (an entity with no type is refused for that)
        if any(vocabulary.is_subclass(t, r) for t in target_types for r in meta.class_ranges):
            return None
        if vocabulary.URL not in datatypes:
            return _("%(property)s expects %(expected)s, but %(iri)s is a %(types)s") % {
                "property": repr(meta.name),
                "expected": _or(meta.class_ranges),
                "iri": iri,
                "types": _or(target_types),
            }
    if meta.class_ranges or vocabulary.URL in datatypes:
        return None
    return _("%(property)s expects %(expected)s, got a reference to %(iri)s") % {
        "property": repr(meta.name),
        "expected": _or(meta.ranges),
        "iri": iri,
    }


def _parses(parser, raw: str) -> bool:
    try:
        parser(raw.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _or(names) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return _("%(names)s or %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}
