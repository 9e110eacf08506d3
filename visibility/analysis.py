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
* Facts are checked sentence by sentence, and only in sentences with one of the fact's cues.
  A sentence that states the correct value confirms the fact, whatever else it says; a
  sentence that states only other values of the fact's kind misstates it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

YEAR, DATE, NUMBER, PLACE = "year", "date", "number", "place"
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
    kind: str  # YEAR, DATE, NUMBER or PLACE; facts of other kinds are not checked
    value: str  # "1998", "2026-03-01", "86", "Hangzhou"
    cues: tuple[str, ...]  # words that signal the topic, in all languages
    unit: str = ""  # for numbers, e.g. "employees", "员工"
    alternatives: tuple[str, ...] = ()  # for places: other names of the correct value


@dataclass(frozen=True)
class Misstatement:
    fact_key: str
    stated: str  # the value the answer gives (dates as ISO)
    expected: str  # the value it should have given (for years, the year)
    excerpt: str  # the answer's sentence, as written, at most EXCERPT_LIMIT characters


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


def _phrase_spans(normalized_text: str, phrases: Iterable[str]) -> list[Span]:
    spans: set[Span] = set()
    for phrase in phrases:
        pattern = _phrase_regex(phrase)
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


def find_citations(text: str, citations: Iterable[str], domains: Iterable[str]) -> list[str]:
    """The distinct URLs (or bare domains) on one of ``domains`` or their subdomains: first from
    the engine's ``citations`` list, then those written in ``text``, in order of appearance."""
    owned = [domain for domain in map(_owned_domain, domains) if domain]
    cited: list[str] = []
    seen: set[str] = set()
    for url in [*(c.strip() for c in citations if c and c.strip()), *_urls_in_text(text)]:
        key = _same_page_key(url)
        if key not in seen and _is_on_domains(_host_of(url), owned):
            seen.add(key)
            cited.append(url)
    return cited


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
_PERCENT = re.compile(r"\s*%")

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
    span: Span  # in the normalized sentence


def _years(normalized: str) -> list[_Value]:
    return [_Value(m.group(1), m.group(1), m.span()) for m in _YEAR.finditer(normalized)]


def _date_from(match: re.Match[str]) -> date | None:
    parts = match.groupdict()
    month = _MONTHS[parts["month"]] if parts.get("month") else int(parts["m"])
    try:
        return date(int(parts["y"]), month, int(parts["d"]))
    except ValueError:
        return None


def _dates(normalized: str) -> list[_Value]:
    found: dict[Span, _Value] = {}
    for pattern in _DATES:
        for match in pattern.finditer(normalized):
            stated = _date_from(match)
            if stated is not None:
                found[match.span()] = _Value(stated.isoformat(), stated.isoformat(), match.span())
    return sorted(found.values(), key=lambda value: value.span)


def _iso_date(value: str) -> str:
    dates = _dates(normalize(value))
    return dates[0].key if dates else value


def _decimal_key(number: str) -> str:
    try:
        return format(Decimal(number.replace(",", "")).normalize(), "f")
    except InvalidOperation:
        return number


def _is_year_like(number: str) -> bool:
    return number.isdigit() and 1000 <= int(number) <= 2099


def _overlaps_any(span: Span, others: Iterable[Span]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)


def _numbers(normalized: str, fact: FactClaim, cue_spans: list[Span]) -> list[_Value]:
    """Numbers that count for the fact: followed by its unit ("86 employees", "86名员工"), or,
    except for what reads as a year, next to a cue ("employs 120 people"); without a unit,
    every number in the sentence but years and percentages."""
    date_spans = [value.span for value in _dates(normalized)]
    unit_spans = _phrase_spans(normalized, [fact.unit]) if fact.unit else []
    values: list[_Value] = []
    for match in _NUMBER.finditer(normalized):
        number, span = match.group(), match.span()
        if _overlaps_any(span, date_spans) or _PERCENT.match(normalized, span[1]):
            continue
        if _is_followed_by(span, unit_spans, normalized):
            counts = True
        elif _is_year_like(number):
            counts = False  # "since 2005", "2005年": a year, not a count
        else:
            counts = not fact.unit or _is_next_to(span, cue_spans, normalized)
        if counts:
            values.append(_Value(_decimal_key(number), number, span))
    return values


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


def _places(sentence: str, normalized: str, fact: FactClaim) -> list[_Value]:
    # Naming the right place anywhere in the sentence confirms the fact.
    if _contains_phrase(normalized, _correct_places(fact)):
        expected = normalize(fact.value)
        return [_Value(expected, fact.value, (0, 0))]
    return _stated_places(sentence, fact)


ValueReader = Callable[[str, str, FactClaim, list[Span]], list[_Value]]
_VALUE_READERS: dict[str, ValueReader] = {
    YEAR: lambda sentence, normalized, fact, cues: _years(normalized),
    DATE: lambda sentence, normalized, fact, cues: _dates(normalized),
    NUMBER: lambda sentence, normalized, fact, cues: _numbers(normalized, fact, cues),
    PLACE: lambda sentence, normalized, fact, cues: _places(sentence, normalized, fact),
}


def _expected(fact: FactClaim) -> tuple[str, str]:
    """The fact's value as (comparable key, shown)."""
    if fact.kind == YEAR:
        year = re.search(r"\d{4}", normalize(fact.value))  # a date's year, when given a date
        return (year.group(), year.group()) if year else (fact.value, fact.value)
    if fact.kind == DATE:
        iso = _iso_date(fact.value)
        return iso, iso
    if fact.kind == NUMBER:
        return _decimal_key(normalize(fact.value)), fact.value
    return normalize(fact.value), fact.value


def _check_sentence(sentence: str, fact: FactClaim) -> Misstatement | bool | None:
    """True if the sentence confirms the fact, a Misstatement if it contradicts it, None if it
    says nothing about it."""
    normalized = normalize(sentence)
    cue_spans = _phrase_spans(normalized, fact.cues)
    if not cue_spans:
        return None
    values = _VALUE_READERS[fact.kind](sentence, normalized, fact, cue_spans)
    if not values:
        return None
    expected_key, expected_shown = _expected(fact)
    if any(value.key == expected_key for value in values):
        return True
    # Of several wrong values, the one closest to the cue is the one stated for this fact.
    stated = min(values, key=lambda value: _distance(value.span, cue_spans))
    return Misstatement(fact.key, stated.shown, expected_shown, _excerpt(sentence))


def check_facts(text: str, facts: Iterable[FactClaim]) -> FactCheck:
    """Which facts the answer states correctly, and which it misstates (once per sentence)."""
    sentences = _sentences(text)
    misstated: list[Misstatement] = []
    confirmed: list[str] = []
    for fact in facts:
        if fact.kind not in _VALUE_READERS:
            continue
        for sentence in sentences:
            outcome = _check_sentence(sentence, fact)
            if outcome is True and fact.key not in confirmed:
                confirmed.append(fact.key)
            elif isinstance(outcome, Misstatement) and outcome not in misstated:
                misstated.append(outcome)
    return FactCheck(misstated=misstated, confirmed=confirmed)


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
    fact_check = check_facts(text, facts)
    return Analysis(
        mentioned=position is not None,
        mention_count=sum(1 for mention in mentions if mention.brand_index == 0),
        cited=bool(cited_urls),
        cited_urls=cited_urls,
        position=position,
        first_mention=position == 1,
        competitors_mentioned=[tracked[index].key for index in ranked if index != 0],
        misstatements=fact_check.misstated,
        confirmed_facts=fact_check.confirmed,
    )
