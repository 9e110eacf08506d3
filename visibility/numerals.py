"""Numbers written in words, as digits, so that the fact check compares one form.

AI answers write numbers as people do: "seven tea masters", "forty-two hectares",
"三万六千个芽", "1.2万吨", "百分之三十八", "2.5 million visitors". ``numerals_as_digits`` rewrites
them as plain digits ("7 tea masters", "36000个芽", "12000吨", "38%", "2500000 visitors").
Chinese numerals are read by cn2an and English ones by text2num; scale words after digits
(万, 亿, thousand, million, billion) are multiplied out here, which neither library does.
"""

from __future__ import annotations

import re
import warnings
from decimal import Decimal, InvalidOperation

import cn2an
from text_to_num import alpha2digit

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN_LETTER = re.compile(r"[a-z]", re.IGNORECASE)
# cn2an reads 两 ("two") only before a measure word: "两到三天" is "2到3天".
_TWO_BEFORE_RANGE = re.compile(r"两(?=\s*[到至~\-\u2013\u2014])")
_SCALES = {
    "千": 1000, "万": 10_000, "亿": 100_000_000,
    "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000,
}  # fmt: skip
# "1.2万", "3 亿", "2.5 million": digits (with thousands separators) and a scale word.
_SCALED = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(千|万|亿|thousand|million|billion)(?![a-z])",
    re.IGNORECASE,
)


def _multiplied(match: re.Match[str]) -> str:
    try:
        number = Decimal(match.group(1).replace(",", "") + (match.group(2) or ""))
    except InvalidOperation:
        return match.group()
    value = number * _SCALES[match.group(3).lower()]
    return format(value.normalize(), "f")


def numerals_as_digits(text: str) -> str:
    """``text`` with its numbers in words written as digits (see the module note).

    Expects text already NFKC-normalised, so full-width digits are ASCII."""
    if _HAN.search(text):
        text = _TWO_BEFORE_RANGE.sub("2", text)
        with warnings.catch_warnings():
            # cn2an warns about each run it cannot read ("万" alone) and leaves it as it is.
            warnings.simplefilter("ignore", UserWarning)
            text = cn2an.transform(text, "cn2an")
    text = _SCALED.sub(_multiplied, text)
    if _LATIN_LETTER.search(text):
        # threshold=0: small numbers too ("two to three days"); a stray "one" only counts
        # where it stands next to a fact's unit or cue.
        text = alpha2digit(text, "en", threshold=0)
    return text
