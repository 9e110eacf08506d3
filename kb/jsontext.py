"""JSON, fast: compact JSON as UTF-8 bytes (what the API's ETags, page keys and the JSON in
pages' script elements are made of), and JSON columns read as text for orjson to parse."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

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


# --- reading untrusted JSON (API bodies, imports) -------------------------------------------

# Past ±2**63 orjson reads an integer as a float (rounded): such documents are read again by the
# standard library, which keeps integers exact (validation then says what to do with them).
_INEXACT = float(2**63)


class JsonInputError(ValueError):
    """JSON that is refused: ``pointer`` (RFC 6901) says where, or "" with a line and column."""

    def __init__(self, pointer: str, message: str):
        super().__init__(message)
        self.pointer = pointer
        self.message = message


def loads_checked(raw: bytes | str, *, max_depth: int, finite: bool = True) -> Any:
    """Parse untrusted JSON text, refusing what cannot be stored or would crash a reader:
    malformed JSON, nesting deeper than ``max_depth``, numbers that are not finite (``1e400``,
    ``NaN``), lone surrogates (``"\\ud800"``) and NUL characters in strings or keys. Every
    refusal names where, by JSON pointer when the document could be read at all.

    orjson reads first (it refuses nesting past 1,024 levels and surrogates itself, and never
    recurses in Python); only what it refuses is read again by the standard library to find
    the pointer of the bad value. With ``finite=False`` numbers that are not finite are read
    (as ``inf``/``nan``) for the caller's validation to refuse in its own words.
    """
    if isinstance(raw, bytes) and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte order mark, which orjson refuses: harmless
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        # Raises, with a pointer when it can find one; or the document, read by the standard
        # library, when all orjson refused was a number that is not finite (finite=False).
        return _locate(raw, error, max_depth, finite)
    if _walk(document, max_depth, exact=True, finite=finite):
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        document = json.loads(text)
        _walk(document, max_depth, exact=False, finite=finite)
    return document


def _walk(document: Any, max_depth: int, *, exact: bool, finite: bool) -> bool:
    """Raise JsonInputError at the first problem; True when orjson may have rounded an
    integer (``exact``: orjson's reading, whose strings need no Unicode check)."""
    from kb.validation import join_pointer

    inexact = False
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    while stack:
        value, pointer, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, pointer, unicode=not exact)
        elif isinstance(value, float):
            if finite and not math.isfinite(value):
                raise JsonInputError(
                    pointer,
                    "the number is out of range: JSON numbers must be finite "
                    "(no NaN or Infinity, nothing beyond ±1.8e308)",
                )
            if exact and abs(value) >= _INEXACT and value.is_integer():
                inexact = True
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise JsonInputError(
                    pointer, f"nested deeper than {max_depth} levels (SOURCEBOOK_IMPORT_MAX_DEPTH)"
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key, pointer, unicode=not exact, what=f"the key {_shown(key)}")
                    stack.append((item, join_pointer(pointer, key), depth + 1))
            else:
                stack.extend((v, join_pointer(pointer, i), depth + 1) for i, v in enumerate(value))
    return inexact


def _shown(key: str) -> str:
    """A key as it can be shown in an error (no NUL, no lone surrogate)."""
    return repr(key.encode("utf-8", "backslashreplace").decode("utf-8"))[:80]


def _check_text(text: str, pointer: str, *, unicode: bool, what: str = "the text") -> None:
    if "\x00" in text:
        raise JsonInputError(
            pointer, f"{what} contains a NUL character (\\u0000), which cannot be stored"
        )
    if unicode:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise JsonInputError(
                pointer,
                f"{what} contains a lone surrogate (\\u{ord(text[error.start]):04x}), "
                "which is not Unicode text",
            ) from None


def _locate(raw: bytes | str, error: orjson.JSONDecodeError, max_depth: int, finite: bool) -> Any:
    """Explain what orjson refused: read again by the standard library to point at it."""
    message = error.msg
    if message == "depth limit exceeded":
        raise JsonInputError(
            "",
            f"nested far deeper than {max_depth} levels (SOURCEBOOK_IMPORT_MAX_DEPTH); "
            "the JSON cannot even be parsed",
        )
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        document = json.loads(text, parse_constant=float)
    except UnicodeDecodeError as decode_error:
        raise JsonInputError("", f"not UTF-8 text (byte {decode_error.start})") from None
    except json.JSONDecodeError as json_error:
        raise JsonInputError(
            "",
            f"malformed JSON at line {json_error.lineno}, column {json_error.colno}: "
            f"{json_error.msg}",
        ) from None
    except (ValueError, RecursionError):
        document = None  # e.g. an integer of more than 4,300 digits: orjson's words below
    if document is not None:
        _walk(document, max_depth, exact=False, finite=finite)
        if not finite:
            return document
    if "infinity" in message:
        message = (
            "a number is out of range: JSON numbers must be finite "
            "(nothing beyond ±1.8e308, no integer of thousands of digits)"
        )
    raise JsonInputError(
        "", f"malformed JSON at line {error.lineno}, column {error.colno}: {message}"
    )
