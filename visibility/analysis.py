"""Reading one AI answer engine's answer (ChatGPT, Qwen, Perplexity, DeepSeek...) for a brand.

Pure functions over plain dataclasses, no Django: given the answer text, the engine's list of
cited URLs, the brand, its competitors and the brand's facts, say whether the brand is
mentioned and cited, where it ranks among the tracked brands, and which of its facts the
answer states correctly or gets wrong.

Everything works on English and Chinese answers alike. Text is compared in ``normalize``'s
form (NFKC, casefolded, accents stripped, whitespace collapsed), which every function applies
to its own input, so callers never need offsets into the original text.

Matching rules, in short:

* Latin-script names and cues match whole words ("Leaf" is not in "Leafy"); names in CJK
  scripts match as substrings, because Chinese and Japanese have no spaces between words.
* When names of different tracked brands overlap ("西湖" inside "西湖龙井茶业"), the longest
  match wins (``analyse``).
* Facts are checked sentence by sentence, and only in sentences with one of the fact's cues
  that name the fact's subject (in the sentence or the one before) or, for facts about the
  brand itself, name no other tracked brand instead. Numbers in words are read as digits
  first ("seven", "三万六千", "1.2万", "百分之三十八": ``visibility.numerals``).
* A sentence that states the correct value confirms the fact, whatever else it says: the
  same number (or one inside the fact's range, or the fact's value rounded as an answer
  hedged with "about"/"约" rounds it), the same date or one inside the fact's period. A value
  that confirms none of the facts the sentence is about misstates the one whose cues it
  matches best (most cues, the subject named, then the nearest cue); when two facts match
  equally, the value is left unattributed rather than guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

from visibility.numerals import numerals_as_digits

YEAR, DATE, NUMBER, PERCENT, PLACE = "year", "date", "number", "percent", "place"
EXCERPT_LIMIT = 200


@dataclass(frozen=True)
class TrackedBrand:
    """The brand itself or a competitor."""

    key: str  # stable id, e.g. "westlake-leaf" or "competitor:teavana"
    names: tuple[str, ...]  # names and aliases in every language
    domains: tuple[str, ...] = ()  # subdomains (www., shop.) count too


@dataclass(frozen=True)
class FactClaim:
    """One of the brand's facts that has a value."""

    key: str  # e.g. "founded"
    kind: str  # YEAR, DATE, NUMBER, PERCENT or PLACE; facts of other kinds are not checked
    # "1998", "2026-03-01", a period "2026-03-18/2026-04-04", "86", a range "2-3", "Hangzhou"
    value: str
    cues: tuple[str, ...]  # words or phrases that signal the topic, in all languages
    unit: str = ""  # for numbers, e.g. "employees", "员工"
    alternatives: tuple[str, ...] = ()  # for places: other names of the correct value
    # English word stems that signal the topic too, in any inflection ("employ": employs,
    # employees); the defaults taken from the fact's statement.
    cue_stems: tuple[str, ...] = ()
    # Names of what the fact is about (a product, a store, a person). Required in the
    # sentence or the one before unless ``about_brand`` (the brand's own facts, where
    # answers write "it" or "the company").
    subjects: tuple[str, ...] = ()
    about_brand: bool = True
    units: tuple[str, ...] = ()  # more spellings of the unit ("hectares", "公顷")
    # A measure ("9.6 t"): a number counts only with its unit or one of ``scaled_units``,
    # (spelling, how many of the fact's unit one of it is): ("kg", "0.001") for tonnes.
    unit_required: bool = False
    scaled_units: tuple[tuple[str, str], ...] = ()
    source_url: str = ""  # where the fact is sourced, reported with a misstatement


@dataclass(frozen=True)
class Misstatement:
    fact_key: str
    stated: str  # the value the answer gives (dates as ISO)
    expected: str  # the value it should have given (for years, the year)
    excerpt: str  # the answer's sentence, as written, at most EXCERPT_LIMIT characters
    source_url: str = ""  # the fact's source, for whoever corrects the engine


@dataclass(frozen=True)
class FactCheck:
    misstated: list[Misstatement]
    confirmed: list[str]  # keys of facts the answer states correctly, in the facts' order


@dataclass(frozen=True)
class Analysis:
    mentioned: bool
    mention_count: int
    cited: bool
    cited_urls: list[str]
    position: int | None  # 1-based rank by first mention among the tracked brands mentioned
    first_mention: bool
    competitors_mentioned: list[str]  # competitor keys, in order of first mention
    mention_counts: dict[str, int]  # per tracked brand's key, its mentions (share of voice)
    misstatements: list[Misstatement]
    confirmed_facts: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


# --- Text normalisation ----------------------------------------------------------------------

_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul jamo
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x3130, 0x318F),  # Hangul compatibility jamo
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3134F),  # CJK extensions B-G
)
_CJK_CLASS = "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_RANGES)
# A letter or digit of a script that separates words with spaces: what a word boundary means.
_SPACED_WORD_CHAR = f"[^\\W{_CJK_CLASS}]"

# Invisible characters would split a name in two; typographic apostrophes would not match "'".
_CHARACTER_FIXES = str.maketrans(
    {"\u200b": None, "\u200c": None, "\u200d": None, "\u2060": None, "\ufeff": None,
     "\u00ad": None, "\u2018": "'", "\u2019": "'", "\u02bc": "'"}
)  # fmt: skip
_WHITESPACE = re.compile(r"\s+")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def _has_cjk(text: str) -> bool:
    return any(_is_cjk(char) for char in text)


def _accents_are_decorative(base: str) -> bool:
    # Only Latin, Greek and Cyrillic marks are accents; elsewhere (kana dakuten, Indic vowel
    # signs, viramas) the mark is part of the letter and must stay.
    code = ord(base)
    return code < 0x0530 or 0x1E00 <= code <= 0x1FFF


def _strip_accents(text: str) -> str:
    kept: list[str] = []
    strip_marks = False
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char):
            if not strip_marks:
                kept.append(char)
            continue
        strip_marks = _accents_are_decorative(char)
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def _fold(text: str, *, casefold: bool) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_CHARACTER_FIXES)
    if casefold:
        text = text.casefold()
    return _WHITESPACE.sub(" ", _strip_accents(text)).strip()


def normalize(text: str) -> str:
    """NFKC (full-width ＡＢＣ１２３ → ABC123), casefold, strip accents (é → e; CJK untouched),
    collapse whitespace."""
    return _fold(text, casefold=True)


# --- Phrases: names, cues and units ----------------------------------------------------------

_PHRASE_GAP = r"[\s\-\u2010]+"  # "Westlake-Leaf" and "Westlake  Leaf" are "Westlake Leaf"
Span = tuple[int, int]


@lru_cache(maxsize=4096)
def _phrase_regex(phrase: str) -> re.Pattern[str] | None:
    """A phrase as a regex over normalized text, word-bounded on its Latin-script edges."""
    words = [word for word in re.split(_PHRASE_GAP, normalize(phrase)) if word]
    if not words:
        return None
    body = _PHRASE_GAP.join(map(re.escape, words))
    # A CJK edge needs no boundary: Chinese runs words together.
    if not _is_cjk(words[0][0]):
        body = f"(?<!{_SPACED_WORD_CHAR}){body}"
    if not _is_cjk(words[-1][-1]):
        body = f"{body}(?!{_SPACED_WORD_CHAR})"
    return re.compile(body)


def _phrase_spans(
    normalized_text: str,
    phrases: Iterable[str],
    regex: Callable[[str], re.Pattern[str] | None] = _phrase_regex,
) -> list[Span]:
    spans: set[Span] = set()
    for phrase in phrases:
        pattern = regex(phrase)
        if pattern is not None:
            spans.update(match.span() for match in pattern.finditer(normalized_text))
    return sorted(spans)


def _contains_phrase(normalized_text: str, phrases: Iterable[str]) -> bool:
    return bool(_phrase_spans(normalized_text, phrases))


# --- Mentions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    brand_index: int  # index into the tracked brands; the brand itself is 0


def _mentions_of(normalized_text: str, brand: TrackedBrand, brand_index: int) -> list[_Mention]:
    spans = _phrase_spans(normalized_text, brand.names)
    return [_Mention(start, end, brand_index) for start, end in spans]


def _longest_first(mentions: Iterable[_Mention]) -> list[_Mention]:
    """Drop mentions overlapped by a longer one ("Westlake Leaf" inside "Westlake Leaf Tea",
    "西湖" inside a competitor's "西湖龙井茶业"); equal lengths go to the earlier brand."""
    chosen: list[_Mention] = []
    for mention in sorted(mentions, key=lambda m: (m.start - m.end, m.start, m.brand_index)):
        if all(mention.end <= kept.start or mention.start >= kept.end for kept in chosen):
            chosen.append(mention)
    return sorted(chosen, key=lambda m: m.start)


def find_mentions(text: str, brand: TrackedBrand) -> list[int]:
    """Start offsets, in ``normalize(text)``, of each mention of one of the brand's names.

    Overlaps among the brand's own names count once; overlaps with other brands' names are
    resolved by ``analyse``, which sees all of them."""
    return [m.start for m in _longest_first(_mentions_of(normalize(text), brand, 0))]


# --- Citations -------------------------------------------------------------------------------

# Web addresses and bare domains written in the answer. ASCII-only edges, because in Chinese
# an address runs straight into the surrounding words ("见westlakeleaf.example/tea。").
_URL_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9@._/-])"  # not the tail of an e-mail address, a longer host or a path
    r"(?:https?://)?"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?::\d{1,5})?"
    r"(?:[/?#][A-Za-z0-9\-._~:/?#@!$&*+,;=%]*)?",
)
_URL_TRAILING_PUNCTUATION = ".,;:!?*"
_OTHER_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:(?!\d)")  # mailto:, tel:, but not :8080


def _split_url(url: str) -> SplitResult | None:
    url = url.strip()
    if "://" not in url and not url.startswith("//"):
        if _OTHER_SCHEME.match(url):
            return None
        url = "//" + url  # a bare domain: urlsplit only finds the host after "//"
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("", "http", "https"):
        return None
    return parts


def _canonical_host(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")  # 例子.example and its punycode are one host
    except UnicodeError:
        return host


def _host_of(url: str) -> str:
    parts = _split_url(url)
    return _canonical_host(parts.hostname) if parts and parts.hostname else ""


def _owned_domain(domain: str) -> str:
    # A brand listing "www.x" or "https://x/" owns x and every subdomain of x.
    host = _host_of(domain)
    return host.removeprefix("www.")


def _is_on_domains(host: str, domains: Sequence[str]) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def _same_page_key(url: str) -> str:
    # The same page with or without scheme, fragment or trailing slash is cited once.
    parts = _split_url(url)
    if parts is None:
        return url
    query = f"?{parts.query}" if parts.query else ""
    return f"{_host_of(url)}{parts.path.rstrip('/')}{query}"


def _urls_in_text(text: str) -> list[str]:
    found = _URL_IN_TEXT.finditer(unicodedata.normalize("NFKC", text))
    return [match.group().rstrip(_URL_TRAILING_PUNCTUATION) for match in found]


def all_citations(text: str, citations: Iterable[str]) -> list[str]:
    """Every distinct URL (or bare domain) an answer cites: first from the engine's
    ``citations`` list, then those written in ``text``, in order of appearance; the same page
    with or without scheme, fragment or trailing slash once."""
    cited: list[str] = []
    seen: set[str] = set()
    for url in [*(c.strip() for c in citations if c and c.strip()), *_urls_in_text(text)]:
        key = _same_page_key(url)
        if key not in seen and _host_of(url):
            seen.add(key)
            cited.append(url)
    return cited


def host_of(url: str) -> str:
    """The URL's host, lower case and in ASCII (punycode); "" when it has none."""
    return _host_of(url)


def is_on_domains(url: str, domains: Iterable[str]) -> bool:
    """Whether the URL's host is one of ``domains`` or a subdomain of one ("www." ignored)."""
    owned = [domain for domain in map(_owned_domain, domains) if domain]
    return _is_on_domains(_host_of(url), owned)


def find_citations(text: str, citations: Iterable[str], domains: Iterable[str]) -> list[str]:
    """The distinct URLs (or bare domains) on one of ``domains`` or their subdomains: first from
    the engine's ``citations`` list, then those written in ``text``, in order of appearance."""
    domains = list(domains)
    return [url for url in all_citations(text, citations) if is_on_domains(url, domains)]


# --- Facts: sentences and values -------------------------------------------------------------

# A Latin sentence ends at . ! ? before a space and a word that could start a sentence, so "Mar. 1"
# and "Acme Inc. is" stay whole; Chinese ones end at 。！？ with no space needed.
_SENTENCE_BREAK = re.compile(r"(?<=[。！？])|(?<=[.!?])\s+(?![a-z0-9])")
_LIST_MARKER = re.compile(r"\s*(?:\d{1,3}[.)]|[-*+•])\s+")  # "2. " does not end a sentence
# Between a number and its unit or cue: no other number and no clause break.
_CLAUSE_BREAK = re.compile(r"[,;，；。.!?！？\d]")
_MAX_GAP_WORDS = 3  # "employs roughly 120", "86 full-time employees"
_MAX_GAP_CJK = 4  # "员工总数为120", "120名员工"

_YEAR = re.compile(r"(?<![0-9.])(1\d{3}|20\d{2})(?![0-9]|[.,][0-9]|'?s(?![a-z]))")  # not 1990s
_NUMBER = re.compile(r"(?<![0-9a-z.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![0-9]|[.,][0-9])")

_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11,
    "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATES = (
    re.compile(r"(?<![0-9])(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?![0-9])"),
    re.compile(
        rf"(?<![a-z])(?P<month>{_MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+"
        rf"(?P<y>\d{{4}})(?![0-9])"
    ),
    re.compile(
        rf"(?<![0-9])(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month>{_MONTH})\.?,?\s+"
        rf"(?P<y>\d{{4}})(?![0-9])"
    ),
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"),
)

_LATIN_PLACE = r"([A-Z][A-Za-z'\-]*(?:\s+[A-Z][A-Za-z'\-]*){0,3})"
_CJK_PLACE = rf"([{_CJK_CLASS}]+)"
_CJK_PLACE_AFTER_CUE = "位于|坐落于|设于|设在|在|于"  # 总部在上海, 成立于杭州
_CJK_PLACE_ON_ITS_OWN = "位于|坐落于|地处"
_CJK_PLACE_END = re.compile(r"[的是和与及并而也都有]")  # 位于上海的茶企 → 上海
_MAX_CJK_PLACE = 8


def _sentences(text: str) -> list[str]:
    sentences: list[str] = []
    for line in text.splitlines():
        marker = _LIST_MARKER.match(line)
        body_start = marker.end() if marker else 0
        parts = _SENTENCE_BREAK.split(line[body_start:])
        parts[0] = line[:body_start] + parts[0]
        sentences.extend(part.strip() for part in parts if part.strip())
    return sentences


def _excerpt(sentence: str) -> str:
    if len(sentence) <= EXCERPT_LIMIT:
        return sentence
    return sentence[: EXCERPT_LIMIT - 1].rstrip() + "…"


def _is_short_gap(gap: str) -> bool:
    """True when the text between a number and a unit or cue still reads as one phrase."""
    if _CLAUSE_BREAK.search(gap):
        return False
    words = [token for token in gap.split() if any(c.isalpha() and not _is_cjk(c) for c in token)]
    return len(words) <= _MAX_GAP_WORDS and sum(map(_is_cjk, gap)) <= _MAX_GAP_CJK


def _is_next_to(span: Span, others: Iterable[Span], text: str) -> bool:
    start, end = span
    for other_start, other_end in others:
        if other_end <= start and _is_short_gap(text[other_end:start]):
            return True
        if other_start >= end and _is_short_gap(text[end:other_start]):
            return True
    return False


def _is_followed_by(span: Span, others: Iterable[Span], text: str) -> bool:
    return any(start >= span[1] and _is_short_gap(text[span[1] : start]) for start, _ in others)


def _distance(span: Span, others: Iterable[Span]) -> int:
    start, end = span
    gaps = [max(other_start - end, start - other_end, 0) for other_start, other_end in others]
    return min(gaps, default=0)


@dataclass(frozen=True)
class _Value:
    """A value of a fact's kind stated in a sentence."""

    key: str  # comparable form: year, ISO date, plain decimal, normalized place
    shown: str  # as reported in a Misstatement
    span: Span  # in the sentence's reading
    # Numbers and dates (as day ordinals): the lowest and highest value, equal unless a range.
    bounds: tuple[Decimal, Decimal] | None = None


@dataclass(frozen=True)
class _Reading:
    """One sentence as the fact check reads it."""

    sentence: str  # as written
    text: str  # normalized, numbers in words written as digits
    context: str  # ``text`` and the sentence before it, where a subject may be named
    hedged: bool  # "about", "约": the answer rounds


_HEDGES = (
    "about", "around", "approximately", "roughly", "nearly", "almost", "some", "close to",
    "约", "大约", "大概", "近", "将近", "左右", "上下",
)  # fmt: skip
_NUMBER_TEXT = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUMBER_EDGE_BEFORE, _NUMBER_EDGE_AFTER = r"(?<![0-9a-z.])", r"(?![0-9]|[.,][0-9])"
_RANGE_JOIN = r"\s*(?:-|\u2010|\u2013|\u2014|~|\u301c|to|至|到)\s*"
# "2-3", "2–3", "2 to 3", "2至3", "between 2 and 3": one stated value, a range.
_RANGE = re.compile(
    rf"{_NUMBER_EDGE_BEFORE}(?:between\s+(?P<a>{_NUMBER_TEXT})\s+and\s+(?P<b>{_NUMBER_TEXT})"
    rf"|(?P<c>{_NUMBER_TEXT}){_RANGE_JOIN}(?P<d>{_NUMBER_TEXT})){_NUMBER_EDGE_AFTER}"
)
_PERCENT_SIGN = re.compile(r"\s*(?:%|percent(?![a-z])|per\s+cent(?![a-z]))")
_DATE_RANGE_JOIN = re.compile(r"\s*(?:-|\u2013|\u2014|~|to|until|till|and|through|至|到)\s*")
# Days without a year ("18 March", "3月18日"), read for a fact with a date, in its year.
_DAYS_IN_YEAR = (
    re.compile(
        rf"(?<![0-9])(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month>{_MONTH})(?![a-z])"
    ),
    re.compile(rf"(?<![a-z])(?P<month>{_MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?![0-9])"),
    re.compile(r"(?<![0-9])(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"),
)


def _reading(sentence: str, previous: str) -> _Reading:
    text = numerals_as_digits(normalize(sentence))
    return _Reading(
        sentence=sentence,
        text=text,
        context=f"{previous} {text}",
        hedged=_contains_phrase(text, _HEDGES),
    )


def _years(text: str) -> list[_Value]:
    return [_Value(m.group(1), m.group(1), m.span()) for m in _YEAR.finditer(text)]


def _date_from(match: re.Match[str], year: int | None = None) -> date | None:
    parts = match.groupdict()
    month = _MONTHS[parts["month"]] if parts.get("month") else int(parts["m"])
    try:
        return date(int(parts["y"]) if parts.get("y") else year or 0, month, int(parts["d"]))
    except ValueError:
        return None


def _date_value(first: date, last: date, span: Span) -> _Value:
    shown = first.isoformat() if first == last else f"{first.isoformat()}/{last.isoformat()}"
    return _Value(shown, shown, span, (Decimal(first.toordinal()), Decimal(last.toordinal())))


def _dates(text: str, year: int | None = None) -> list[_Value]:
    """Dates stated in the text; with ``year``, days without one too ("18 March")."""
    found: dict[Span, date] = {}
    patterns = [*_DATES, *(_DAYS_IN_YEAR if year else ())]
    for pattern in patterns:
        for match in pattern.finditer(text):
            if _overlaps_any(match.span(), found):
                continue  # "18 March 2026" is not also "18 March"
            stated = _date_from(match, year)
            if stated is not None:
                found[match.span()] = stated
    return [_date_value(day, day, span) for span, day in sorted(found.items())]


def _date_ranges(text: str, year: int | None) -> list[_Value]:
    """Dates, two joined by "to", "–", "and" (after "between") or "至" read as one period."""
    values = _dates(text, year)
    joined: list[_Value] = []
    for value in values:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and previous.bounds is not None
            and previous.bounds[0] == previous.bounds[1]
            and _DATE_RANGE_JOIN.fullmatch(text[previous.span[1] : value.span[0]])
        ):
            first, last = (date.fromordinal(int(b)) for b in (previous.bounds[0], value.bounds[1]))
            joined[-1] = _date_value(first, last, (previous.span[0], value.span[1]))
        else:
            joined.append(value)
    return joined


def _iso_dates(value: str) -> list[date]:
    days = []
    for part in value.split("/"):
        found = _dates(normalize(part))
        if found and found[0].bounds:
            days.append(date.fromordinal(int(found[0].bounds[0])))
    return days


def _decimal(number: str) -> Decimal | None:
    try:
        return Decimal(number.replace(",", ""))
    except InvalidOperation:
        return None


def _decimal_key(number: str) -> str:
    parsed = _decimal(number)
    return format(parsed.normalize(), "f") if parsed is not None else number


def _is_year_like(number: Decimal) -> bool:
    return number == number.to_integral_value() and 1000 <= number <= 2099


def _overlaps_any(span: Span, others: Iterable[Span]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)


def _stated_numbers(text: str) -> list[tuple[Decimal, Decimal, Span]]:
    """Numbers and ranges of numbers, as (lowest, highest, span)."""
    found: list[tuple[Decimal, Decimal, Span]] = []
    for match in _RANGE.finditer(text):
        low, high = (match.group("a") or match.group("c")), (match.group("b") or match.group("d"))
        low_number, high_number = _decimal(low), _decimal(high)
        if low_number is not None and high_number is not None and low_number < high_number:
            found.append((low_number, high_number, match.span()))
    spans = [span for _, _, span in found]
    for match in _NUMBER.finditer(text):
        number = _decimal(match.group())
        if number is not None and not _overlaps_any(match.span(), spans):
            found.append((number, number, match.span()))
    return sorted(found, key=lambda item: item[2])


@lru_cache(maxsize=4096)
def _unit_regex(unit: str) -> re.Pattern[str] | None:
    """A unit after a number: like a phrase, but it may touch the number ("350ml", "9.6t")."""
    pattern = _phrase_regex(unit)
    if pattern is None:
        return None
    return re.compile(pattern.pattern.removeprefix(f"(?<!{_SPACED_WORD_CHAR})"))


def _unit_spans(text: str, units: Iterable[str]) -> list[Span]:
    return _phrase_spans(text, units, _unit_regex)


def _unit_after(span: Span, unit_spans: Iterable[Span], text: str) -> Span | None:
    for unit_span in unit_spans:
        if unit_span[0] >= span[1] and _is_short_gap(text[span[1] : unit_span[0]]):
            return unit_span
    return None


def _units_of(fact: FactClaim) -> tuple[str, ...]:
    return tuple(unit for unit in (fact.unit, *fact.units) if unit)


def _numbers(reading: _Reading, fact: FactClaim, cue_spans: list[Span]) -> list[_Value]:
    """Numbers that count for the fact: followed by its unit ("86 employees", "86名员工") or a
    unit it converts from ("9,600 kg" for tonnes); for a fact without a measured unit, also a
    number next to a cue ("employs 120"), unless it reads as a year; for a fact without a
    unit, every number in the sentence but years and percentages."""
    text = reading.text
    # Days with or without a year ("3月18日") are not counts; 2000 reads 29 February too.
    date_spans = [value.span for value in _dates(text, year=2000)]
    unit_spans = _unit_spans(text, _units_of(fact))
    scaled = [
        (_unit_spans(text, [spelling]), Decimal(factor)) for spelling, factor in fact.scaled_units
    ]
    values: list[_Value] = []
    for low, high, span in _stated_numbers(text):
        if _overlaps_any(span, date_spans) or _PERCENT_SIGN.match(text, span[1]):
            continue
        factor, shown_end = None, span[1]
        if (unit_span := _unit_after(span, unit_spans, text)) is not None:
            if _is_year_like(low) and text[unit_span[0] : unit_span[1]] == "年":
                continue  # "1998年" is the year 1998, not 1998 years
            factor = Decimal(1)
        else:
            for spans, scale in scaled:
                if (unit_span := _unit_after(span, spans, text)) is not None:
                    factor, shown_end = scale, unit_span[1]
                    break
        if factor is None:
            if fact.unit_required or (_is_year_like(low) and _is_year_like(high)):
                continue  # "since 2005", "2005年": a year, not a count
            if fact.unit and not _is_next_to(span, cue_spans, text):
                continue
            factor = Decimal(1)
        bounds = (low * factor, high * factor)
        key = "-".join(dict.fromkeys(format(b.normalize(), "f") for b in bounds))
        values.append(_Value(key, text[span[0] : shown_end], span, bounds))
    return values


def _percentages(reading: _Reading, fact: FactClaim, cue_spans: list[Span]) -> list[_Value]:
    """Numbers followed by %, "percent" or "per cent" ("百分之三十八" reads as "38%")."""
    values = []
    for low, high, span in _stated_numbers(reading.text):
        if _PERCENT_SIGN.match(reading.text, span[1]):
            key = "-".join(dict.fromkeys(format(b.normalize(), "f") for b in (low, high)))
            values.append(_Value(key, f"{reading.text[span[0] : span[1]]}%", span, (low, high)))
    return values


def _fact_dates(reading: _Reading, fact: FactClaim, cue_spans: list[Span]) -> list[_Value]:
    days = _iso_dates(fact.value)
    return _date_ranges(reading.text, days[0].year if days else None)


def _correct_places(fact: FactClaim) -> tuple[str, ...]:
    return (fact.value, *fact.alternatives)


@lru_cache(maxsize=1024)
def _place_pattern(cues: tuple[str, ...]) -> re.Pattern[str]:
    """Stated places, "<cue> in <Capitalised Place>" or "<cue>位于/在/于<地名>": read
    conservatively so that an unrelated "in" is not taken for one. Each shape has one group."""
    latin_cues = [p.pattern for c in cues if not _has_cjk(c) and (p := _phrase_regex(c))]
    cjk_cues = [re.escape(normalize(c)) for c in cues if _has_cjk(c) and normalize(c)]
    shapes = [rf"(?:{_CJK_PLACE_ON_ITS_OWN})\s*{_CJK_PLACE}"]
    if cjk_cues:
        shapes.append(rf"(?:{'|'.join(cjk_cues)})\s*(?:{_CJK_PLACE_AFTER_CUE})\s*{_CJK_PLACE}")
    if latin_cues:
        # Case-insensitive cue, then up to two lower-case words ("based mainly in").
        cue = f"(?i:{'|'.join(latin_cues)})"
        shapes.append(rf"{cue}(?:\s+[a-z]+){{0,2}}?\s+in\s+{_LATIN_PLACE}")
    return re.compile("|".join(shapes))


def _stated_places(sentence: str, fact: FactClaim) -> list[_Value]:
    # Capitalisation tells a place from "founded in 1998" or "based in the south", so this
    # reads the sentence folded but not casefolded.
    folded = _fold(sentence, casefold=False)
    values: list[_Value] = []
    for match in _place_pattern(fact.cues).finditer(folded):
        place = next(group for group in match.groups() if group)
        if _has_cjk(place):
            place = _CJK_PLACE_END.split(place)[0][:_MAX_CJK_PLACE]
        else:
            place = place.removesuffix("'s")
            if place.split()[0].casefold() in _MONTHS:  # "founded in March 1998"
                continue
        if place:
            values.append(_Value(normalize(place), place, match.span()))
    return values


def _places(reading: _Reading, fact: FactClaim, cue_spans: list[Span]) -> list[_Value]:
    # Naming the right place anywhere in the sentence confirms the fact.
    if _contains_phrase(normalize(reading.sentence), _correct_places(fact)):
        expected = normalize(fact.value)
        return [_Value(expected, fact.value, (0, 0))]
    return _stated_places(reading.sentence, fact)


ValueReader = Callable[[_Reading, FactClaim, list[Span]], list[_Value]]
_VALUE_READERS: dict[str, ValueReader] = {
    YEAR: lambda reading, fact, cues: _years(reading.text),
    DATE: _fact_dates,
    NUMBER: _numbers,
    PERCENT: _percentages,
    PLACE: _places,
}


@lru_cache(maxsize=4096)
def _expected(fact: FactClaim) -> _Value:
    """The fact's value, as a stated value that agrees with it would be read."""
    if fact.kind == YEAR:
        year = re.search(r"\d{4}", normalize(fact.value))  # a date's year, when given a date
        shown = year.group() if year else fact.value
        return _Value(shown, shown, (0, 0))
    if fact.kind == DATE:
        days = _iso_dates(fact.value)
        if days:
            return _date_value(days[0], days[-1], (0, 0))
        return _Value(fact.value, fact.value, (0, 0))
    if fact.kind in (NUMBER, PERCENT):
        numbers = _stated_numbers(numerals_as_digits(normalize(fact.value)))
        suffix = "%" if fact.kind == PERCENT else ""
        if numbers:
            low, high, _ = numbers[0]
            key = "-".join(dict.fromkeys(format(b.normalize(), "f") for b in (low, high)))
            return _Value(key, f"{fact.value}{suffix}", (0, 0), (low, high))
        return _Value(_decimal_key(fact.value), f"{fact.value}{suffix}", (0, 0))
    return _Value(normalize(fact.value), fact.value, (0, 0))


def _rounds_to(exact: Decimal, stated: Decimal) -> bool:
    """Whether ``stated`` is ``exact`` rounded to the places ``stated`` is written with
    (9.6 is "about 10", 86 "nearly 90", 36,000 "about 36,000")."""
    exponent = stated.normalize().as_tuple().exponent
    if not isinstance(exponent, int):
        return False
    return exact.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP) == stated


def _agrees(value: _Value, expected: _Value, fact: FactClaim, hedged: bool) -> bool:
    if value.bounds is None or expected.bounds is None:
        return value.key == expected.key
    (low, high), (expected_low, expected_high) = value.bounds, expected.bounds
    if (low, high) == (expected_low, expected_high):
        return True
    if low == high and expected_low <= low <= expected_high:
        return True  # a day inside the fact's period, a number inside its range
    if expected_low == expected_high and low < high and low <= expected_low <= high:
        return True  # "80-100 years" for 80
    numeric = fact.kind in (NUMBER, PERCENT)
    single = low == high and expected_low == expected_high
    return hedged and numeric and single and _rounds_to(expected_low, low)


# --- Facts: which fact a sentence is about ---------------------------------------------------

_SUBJECT_WEIGHT = 2  # naming the fact's subject counts as much as two of its cues


@lru_cache(maxsize=1024)
def _stem_regex(stems: tuple[str, ...]) -> re.Pattern[str] | None:
    words = [re.escape(normalize(stem)) for stem in stems if normalize(stem)]
    if not words:
        return None
    return re.compile(rf"(?<!{_SPACED_WORD_CHAR})(?:{'|'.join(words)})[a-z]*")


def _cue_hits(text: str, fact: FactClaim) -> tuple[list[Span], int]:
    """Where the fact's cues stand in the text (its phrases, for "next to a cue"), and how
    many different cues and word stems it names."""
    phrase_spans: list[Span] = []
    named = 0
    for cue in fact.cues:
        spans = _phrase_spans(text, [cue])
        phrase_spans += spans
        named += bool(spans)
    pattern = _stem_regex(fact.cue_stems)
    if pattern is not None:
        named += len({match.group()[:8] for match in pattern.finditer(text)})
    return sorted(phrase_spans), named


@dataclass(frozen=True)
class _Match:
    """A fact a sentence is about, the values it states of the fact's kind, and how well."""

    fact: FactClaim
    score: int
    cue_spans: list[Span]
    values: list[_Value]
    agreed: bool  # one of the values agrees with the fact


def _match(reading: _Reading, fact: FactClaim, other_names: Sequence[str]) -> _Match | None:
    cue_spans, cues_named = _cue_hits(reading.text, fact)
    if not cues_named:
        return None
    subject_named = _contains_phrase(reading.context, fact.subjects)
    if not subject_named and (not fact.about_brand or _contains_phrase(reading.text, other_names)):
        return None  # about something else: another product, a competitor
    values = _VALUE_READERS[fact.kind](reading, fact, cue_spans)
    if not values:
        return None
    expected = _expected(fact)
    return _Match(
        fact=fact,
        score=cues_named + _SUBJECT_WEIGHT * subject_named,
        cue_spans=cue_spans,
        values=values,
        agreed=any(_agrees(value, expected, fact, reading.hedged) for value in values),
    )


def _family(fact: FactClaim) -> tuple:
    """Facts whose values read alike compete for a sentence's values."""
    return fact.kind, frozenset(normalize(unit) for unit in _units_of(fact))


def _misstatements(reading: _Reading, matches: list[_Match]) -> list[Misstatement]:
    """Each value that agrees with none of the facts goes to the fact it is most likely about:
    most cues and the subject named, then the nearest cue. Ties are left alone."""
    by_family: dict[tuple, list[_Match]] = {}
    for match in matches:
        by_family.setdefault(_family(match.fact), []).append(match)
    found: dict[str, tuple[int, Misstatement]] = {}
    for family in by_family.values():
        agreeing = {
            value.key
            for match in family
            for value in match.values
            if _agrees(value, _expected(match.fact), match.fact, reading.hedged)
        }
        open_facts = [match for match in family if not match.agreed]
        for value in {v.key: v for match in open_facts for v in match.values}.values():
            if value.key in agreeing:
                continue
            claimants = [
                match for match in open_facts if value.key in {v.key for v in match.values}
            ]
            ranked = sorted(
                ((match.score, -_distance(value.span, match.cue_spans)), index)
                for index, match in enumerate(claimants)
            )
            if len(ranked) > 1 and ranked[-1][0] == ranked[-2][0]:
                continue  # as likely about one fact as another
            owner = claimants[ranked[-1][1]].fact
            distance = _distance(value.span, claimants[ranked[-1][1]].cue_spans)
            if owner.key in found and found[owner.key][0] <= distance:
                continue  # of several wrong values, the one nearest a cue is the one stated
            expected = _expected(owner)
            found[owner.key] = (
                distance,
                Misstatement(
                    owner.key,
                    value.shown,
                    expected.shown,
                    _excerpt(reading.sentence),
                    owner.source_url,
                ),
            )
    order = [match.fact.key for match in matches]
    return [found[key][1] for key in order if key in found]


def check_facts(
    text: str, facts: Iterable[FactClaim], other_names: Sequence[str] = ()
) -> FactCheck:
    """Which facts the answer states correctly, and which it misstates (once per sentence).
    ``other_names``: names of other brands, whose sentences are not about the brand."""
    facts = [fact for fact in facts if fact.kind in _VALUE_READERS]
    misstated: list[Misstatement] = []
    confirmed: set[str] = set()
    previous = ""
    for sentence in _sentences(text):
        reading = _reading(sentence, previous)
        previous = reading.text
        matches = [m for fact in facts if (m := _match(reading, fact, other_names)) is not None]
        confirmed.update(match.fact.key for match in matches if match.agreed)
        misstated += [m for m in _misstatements(reading, matches) if m not in misstated]
    return FactCheck(
        misstated=misstated, confirmed=[fact.key for fact in facts if fact.key in confirmed]
    )


def find_misstatements(text: str, facts: Iterable[FactClaim]) -> list[Misstatement]:
    return check_facts(text, facts).misstated


# --- The whole answer ------------------------------------------------------------------------


def analyse(
    text: str,
    citations: Iterable[str],
    brand: TrackedBrand,
    competitors: Sequence[TrackedBrand],
    facts: Iterable[FactClaim],
) -> Analysis:
    normalized = normalize(text)
    tracked = [brand, *competitors]
    mentions = _longest_first(
        mention
        for index, tracked_brand in enumerate(tracked)
        for mention in _mentions_of(normalized, tracked_brand, index)
    )
    first_mention_at: dict[int, int] = {}
    for mention in mentions:
        first_mention_at.setdefault(mention.brand_index, mention.start)
    ranked = sorted(first_mention_at, key=first_mention_at.__getitem__)
    position = ranked.index(0) + 1 if 0 in first_mention_at else None
    cited_urls = find_citations(text, citations, brand.domains)
    other_names = [name for competitor in competitors for name in competitor.names]
    fact_check = check_facts(text, facts, other_names)
    return Analysis(
        mentioned=position is not None,
        mention_count=sum(1 for mention in mentions if mention.brand_index == 0),
        cited=bool(cited_urls),
        cited_urls=cited_urls,
        position=position,
        first_mention=position == 1,
        competitors_mentioned=[tracked[index].key for index in ranked if index != 0],
        mention_counts={
            tracked[index].key: sum(1 for m in mentions if m.brand_index == index)
            for index in ranked
        },
        misstatements=fact_check.misstated,
        confirmed_facts=fact_check.confirmed,
    )
