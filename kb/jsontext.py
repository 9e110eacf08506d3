"""JSON, fast: compact JSON as UTF-8 bytes (what the API's ETags, page keys and the JSON in
pages' script elements are made of), and JSON columns read as text for orjson to parse."""

from __future__ import annotations

import json
from collections.abc import Callable

import orjson
from django.db.models import TextField
from django.db.models.functions import Cast


def json_bytes(value, *, sort_keys: bool = False, default: Callable | None = None) -> bytes:
    """``value`` as ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` writes it (non-
    string keys as strings), with orjson; with the standard library for what orjson refuses
    (integers past 64 bits, nesting past 254 levels)."""
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(value, default=default, option=option)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys, default=default
        ).encode()


def json_text(field: str) -> Cast:
    """A JSON column as its text, for orjson to parse: Django's json.loads was a tenth of a
    publish (every revision is read twice, for the site map and for rendering) and a fifth
    of a page of the API's entity list."""
    return Cast(field, output_field=TextField())
