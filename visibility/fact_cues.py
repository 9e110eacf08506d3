"""Which of a brand's facts AI answers can be checked against, and how to recognise them.

Every published fact with a value is checked: a year, a date or a period, a number or a range
of numbers with or without a unit, a percentage. Each becomes a ``FactClaim`` that says how an
answer states it:

* **Subject**: the names of what the fact is about (a product, a store, a person); for the
  brand's own facts, the brand's names, and answers need not name it ("it employs 86 people").
* **Cues**: the words the editor gave (``Fact.check_cues``); without them, words of the
  fact's key's topic ("founded", "成立") and, as topic words only, the statement's own
  distinctive words (English word stems, Chinese character pairs), less the subject, the
  value, the unit and words most of the brand's statements share ("tea" for a tea brand).
* **Unit**: every spelling of a known unit in the brand's languages (CLDR, through Babel,
  with Chinese everyday forms such as 吨), the units it converts from (kg for t), or a unit
  of the brand's own in each language, and the word the statement puts after the value
  ("Seven certified tea-frying masters" → "masters").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal

import snowballstemmer
from babel.units import format_unit

from kb.units import KNOWN_UNITS, KnownUnit, known_unit, locale_for
from publishing.answers import STOPWORDS
from visibility.analysis import DATE, NUMBER, PERCENT, YEAR, FactClaim, normalize
from visibility.numerals import numerals_as_digits

# Topics recognised by the fact's key, and the words that introduce them in answers.
TOPIC_CUES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("founded", "founding", "established"),
     ("founded", "established", "since", "started", "成立", "创立", "创办", "创建", "始于")),
    (("employees", "staff", "headcount"),
     ("employs", "employees", "employ", "staff", "workers", "员工", "雇员", "职工")),
    (("garden-area", "hectares", "area"), ("tea gardens", "茶园")),
    (("countries",), ("countries", "国家")),
    (("opened", "opening"), ("opened", "opening", "开业", "开幕")),
)  # fmt: skip

# Sizes in a base unit of each quantity, for answers that state a value in another unit.
UNIT_SIZES: dict[str, Decimal] = {
    "mass-tonne": Decimal(1_000_000), "mass-kilogram": Decimal(1000), "mass-gram": Decimal(1),
    "volume-liter": Decimal(1000), "volume-milliliter": Decimal(1),
    "area-hectare": Decimal(10_000), "area-square-meter": Decimal(1),
    "area-square-kilometer": Decimal(1_000_000),
    "length-kilometer": Decimal(1000), "length-meter": Decimal(1),
    "length-centimeter": Decimal("0.01"), "length-millimeter": Decimal("0.001"),
    "duration-week": Decimal(10_080), "duration-day": Decimal(1440),
    "duration-hour": Decimal(60), "duration-minute": Decimal(1),
}  # fmt: skip
# What Chinese text writes where CLDR's Chinese name is formal (公吨, 千克).
CHINESE_SPELLINGS = {
    "mass-tonne": ("吨",),
    "mass-kilogram": ("公斤",),
    "area-square-meter": ("平米", "平方米"),
    "length-kilometer": ("公里",),
    "duration-day": ("日",),
}
PERCENT_UNITS = frozenset({"%", "percent", "per cent", "％"})
# A word most of the brand's statements share tells no fact apart.
COMMON_WORD_SHARE, COMMON_WORD_MIN = 0.25, 3
HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
ACRONYM = re.compile(r"(?<![A-Za-z])[A-Z]{2,5}(?![A-Za-z])")
LATIN_WORD = re.compile(r"[a-z][a-z']*[a-z]")
# Words after a value that end its noun phrase ("buds go into", "three times across").
PHRASE_ENDS = frozenset((
    "across", "over", "under", "per", "after", "before", "during", "through", "within",
    "between", "among", "around", "go", "goes", "went", "work", "works", "make", "makes",
    "each", "every", "than", "more", "less", "all", "most", "been", "come", "comes", "made",
    "only", "also", "some", "one",
))  # fmt: skip
# Characters that make a Chinese pair a grammar word, not a topic (的, 在, 于, 为 …).
HAN_FUNCTION_CHARS = frozenset("的了在和与及于为是有共以将被从对等个名位项次约年月日其该此这那")
HAN_CLASSIFIERS = "个名位项次片颗场件家座"
MIN_STEM = 3
HEAD_WORDS = 3  # words after the value read for its head noun ("certified tea-frying masters")
ISO_DAY = r"\d{4}-\d{2}-\d{2}"
PERIOD = re.compile(rf"{ISO_DAY}(?:/{ISO_DAY})?")
YEAR_VALUE = re.compile(r"1\d{3}|20\d{2}")
NUMBER_VALUE = re.compile(r"\d+(?:\.\d+)?(?:\s*(?:-|\u2013|\u2014|~|to|至|到)\s*\d+(?:\.\d+)?)?")


def fact_kind(value: str, unit: str) -> str | None:
    """What kind of value a fact has, or None when it has none that answers can state."""
    value, unit = value.strip(), unit.strip()
    if not value:
        return None
    if unit.lower() in PERCENT_UNITS:
        return PERCENT if NUMBER_VALUE.fullmatch(value) else None
    if PERIOD.fullmatch(value):
        return DATE
    if not unit and YEAR_VALUE.fullmatch(value):
        return YEAR
    if NUMBER_VALUE.fullmatch(numerals_as_digits(normalize(value))):
        return NUMBER
    return None


def unit_spellings(unit: str, labels: dict[str, str], languages: Sequence[str]) -> tuple[str, ...]:
    """Every way the brand's languages write the fact's unit after a number."""
    found = known_unit(unit) if unit else None
    spellings = [unit, *(label for label in (labels or {}).values() if label)]
    if found is not None:
        known = found[0]
        spellings += [*known.symbols, *known.words, *_cldr_spellings(known, languages)]
    else:
        spellings += _plural_forms(unit)
    return tuple(dict.fromkeys(s.strip() for s in spellings if s and s.strip()))


def _cldr_spellings(known: KnownUnit, languages: Sequence[str]) -> list[str]:
    spellings: list[str] = []
    for language in {*languages, "en", "zh"}:
        locale = locale_for(language)
        for length in ("long", "short", "narrow"):
            for count in (1, 2):
                text = format_unit(count, known.cldr, length=length, locale=locale)
                spellings.append(re.sub(r"[\d\s\u00a0\u202f.,]+", " ", text).strip())
        if language.split("-")[0] == "zh":
            spellings += CHINESE_SPELLINGS.get(known.cldr, ())
    return spellings


def _plural_forms(word: str) -> list[str]:
    word = word.strip()
    if not word.isascii() or not word.isalpha() or word.lower() == "people":
        return []
    if word.endswith("ies"):
        return [f"{word[:-3]}y"]
    if word.endswith("s"):
        return [word[:-1]]
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return [f"{word[:-1]}ies"]
    return [f"{word}es" if word.endswith(("s", "x", "ch", "sh")) else f"{word}s"]


def scaled_units(unit: str) -> tuple[tuple[str, str], ...]:
    """Spellings of units of the same quantity, each with how many of ``unit`` one of it is."""
    found = known_unit(unit) if unit else None
    if found is None or found[0].cldr not in UNIT_SIZES:
        return ()
    own, quantity = found[0], found[0].cldr.split("-")[0]
    scaled: list[tuple[str, str]] = []
    for other in KNOWN_UNITS:
        if other is own or other.cldr.split("-")[0] != quantity or other.cldr not in UNIT_SIZES:
            continue
        factor = format((UNIT_SIZES[other.cldr] / UNIT_SIZES[own.cldr]).normalize(), "f")
        spellings = [*other.symbols, *other.words, *_cldr_spellings(other, ("zh",))]
        scaled += [(spelling, factor) for spelling in dict.fromkeys(spellings) if spelling]
    return tuple(scaled)


def topic_cues(key: str) -> tuple[str, ...]:
    return tuple(cue for keys, cues in TOPIC_CUES if any(k in key for k in keys) for cue in cues)


def _without(text: str, phrases: Iterable[str]) -> str:
    """``text`` less whole-word occurrences of ``phrases`` (a unit "t" is not every t)."""
    for phrase in sorted({normalize(p) for p in phrases if p}, key=len, reverse=True):
        if phrase:
            before = r"(?<![A-Za-z0-9])" if phrase[0].isascii() else ""
            after = r"(?![A-Za-z0-9])" if phrase[-1].isascii() else ""
            text = re.sub(f"{before}{re.escape(phrase)}{after}", " ", text, flags=re.IGNORECASE)
    return text


def statement_words(statement: str, removed: Iterable[str]) -> set[str]:
    """A statement's topic words: English stems and Chinese character pairs."""
    # Acronyms are topics however short: EU, US, UK.
    words: set[str] = {a.casefold() for a in ACRONYM.findall(_without(statement, removed))}
    text = _without(numerals_as_digits(normalize(statement)), removed)
    text = re.sub(r"\d[\d.,]*", " ", text)
    stemmer = snowballstemmer.stemmer("english")  # one per call: a stemmer keeps state
    for run in HAN_RUN.findall(text):
        pairs = [run[i : i + 2] for i in range(len(run) - 1)]
        words.update(p for p in pairs if not HAN_FUNCTION_CHARS.intersection(p))
    for word in LATIN_WORD.findall(HAN_RUN.sub(" ", text)):
        if word not in STOPWORDS and word not in PHRASE_ENDS and len(word) >= MIN_STEM:
            stem = stemmer.stemWord(word.replace("'s", ""))
            if len(stem) >= MIN_STEM:
                words.add(stem)
    return words


def head_words(statement: str, value: str, units: Sequence[str] = ()) -> list[str]:
    """The word a statement puts after its value, when it is not the unit: "Seven certified
    tea-frying masters" → masters, "七位持证炒茶师" → 茶师 (the last two characters of the
    Chinese run, where its noun stands)."""
    text = numerals_as_digits(normalize(statement)).replace(",", "")
    if _without(text, units) != text:
        return []  # the statement writes the unit: answers will too
    number = normalize(value).split("-")[0].split("/")[0]
    heads: list[str] = []
    for match in re.finditer(rf"(?<![\d.]){re.escape(number)}(?![\d])", text):
        after = text[match.end() :]
        run = HAN_RUN.match(after.lstrip())
        if run:
            noun = run.group().lstrip(HAN_CLASSIFIERS)
            for index, char in enumerate(noun):
                if char in HAN_FUNCTION_CHARS:
                    noun = noun[:index]
                    break
            if len(noun) >= 2:
                heads.append(noun[-2:])
            continue
        words = []
        for token in after.split()[:HEAD_WORDS]:
            word = token.strip(".,;:!?()\"'").split("-")[-1]
            if word in STOPWORDS or word in PHRASE_ENDS or not LATIN_WORD.fullmatch(word):
                break
            words.append(word)
            if token[-1] in ".,;:!?)":
                break
        if words:
            heads.append(words[-1])
    return heads


def fact_claims_of(
    contents: Sequence[dict],
    *,
    brand_names: Sequence[str],
    subjects: dict[int, tuple[str, ...]],
    organization_id: int | None,
    languages: Sequence[str],
) -> list[FactClaim]:
    """Claims for the facts (their published revisions' content) that have a value."""
    checkable = [
        (content, kind)
        for content in contents
        if (kind := fact_kind(str(content.get("value") or ""), str(content.get("unit") or "")))
    ]
    topic_words = {
        str(content.get("key")): _topic_words(content, brand_names, subjects, languages)
        for content, _ in checkable
    }
    counts: dict[str, int] = {}
    for words in topic_words.values():
        for word in words:
            counts[word] = counts.get(word, 0) + 1
    common = max(COMMON_WORD_MIN, COMMON_WORD_SHARE * len(topic_words))
    return [
        _claim(
            content,
            kind,
            brand_names=brand_names,
            subjects=subjects,
            organization_id=organization_id,
            languages=languages,
            topic_words=tuple(
                sorted(w for w in topic_words[content["key"]] if counts[w] <= common)
            ),
        )
        for content, kind in checkable
    ]


def _subject_names(content, brand_names, subjects) -> tuple[str, ...]:
    return subjects.get(content.get("about"), ()) or tuple(brand_names)


def _topic_words(content, brand_names, subjects, languages) -> set[str]:
    value, unit = str(content.get("value") or ""), str(content.get("unit") or "")
    removed = [
        *brand_names,
        *_subject_names(content, brand_names, subjects),
        *unit_spellings(unit, content.get("unit_labels") or {}, languages),
    ]
    statements = (content.get("statement") or {}).values()
    words: set[str] = set()
    for statement in statements:
        if isinstance(statement, str):
            words |= statement_words(statement, [*removed, value])
    return words


def _claim(content, kind, *, brand_names, subjects, organization_id, languages, topic_words):
    key, value = str(content["key"]), str(content.get("value") or "").strip()
    unit = str(content.get("unit") or "").strip()
    about_brand = content.get("about") == organization_id or content.get("about") not in subjects
    editor_cues = tuple(c.strip() for c in content.get("check_cues") or [] if c.strip())
    units: tuple[str, ...] = ()
    if kind == NUMBER and unit:
        units = unit_spellings(unit, content.get("unit_labels") or {}, languages)
    if kind == NUMBER and not known_unit(unit):
        statements = [s for s in (content.get("statement") or {}).values() if isinstance(s, str)]
        heads = [head for s in statements for head in head_words(s, value, units)]
        units += tuple(head for head in heads if head not in units)
    return FactClaim(
        key=key,
        kind=kind,
        value=value,
        cues=editor_cues or topic_cues(key),
        unit=unit if kind == NUMBER else "",
        cue_stems=() if editor_cues else topic_words,
        subjects=tuple(brand_names) if about_brand else _subject_names(content, (), subjects),
        about_brand=about_brand,
        units=tuple(dict.fromkeys(units)),
        unit_required=kind == NUMBER and known_unit(unit) is not None,
        scaled_units=scaled_units(unit) if kind == NUMBER else (),
        source_url=str(content.get("source_url") or ""),
    )
