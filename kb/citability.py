"""Facts that lean on another fact: statements an answer engine cannot quote alone.

"Of that, 3.1 tonnes were exported." or "其中3.1吨出口。" says nothing once the fact before it
is gone. The rules are in the comment below; ``kb.quality`` reports what they find.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

# --- statements that lean on another fact ----------------------------------------------------
#
# An answer engine quotes one fact, alone: "Of that, 3.1 tonnes were exported." or
# "其中3.1吨出口。" says nothing once the fact before it is gone. The rules prefer precision to
# reach, so that a finding is worth the editor's time:
#
# * Pronouns, demonstratives and connectives count only at the start of a statement (after
#   quotes or brackets). Further in they mostly point back inside the same statement ("9.6
#   tonnes, of which 3.1 were Longjing", "the tea that won", "…，其中…"), and a statement of
#   several sentences may refer back to its own first sentence.
# * A demonstrative at the start is flagged also when a noun follows it ("This figure",
#   "These gardens", "This tea is…"): the fact's subject ("about") does not travel with a
#   quote, so "This tea is grown in Anji" quoted alone does not say which tea. The noun is
#   quoted in the message when the next word looks like one (not a verb such as "is").
# * Words that lean only in one use are flagged only in that use: "The former"/"The latter"
#   before a verb or a comma ("The latter was…", not "The former factory…"); connectives not
#   used as prepositions ("Instead," but not "Instead of bags", "In addition to"); "It" not as
#   a dummy subject ("It takes 36,000 buds to…", "It is said that…", "It is customary to…").
# * A few words are flagged anywhere because they only ever point at other text:
#   "aforementioned", "the above" (not "above-ground"), "mentioned above", "上述", "前述",
#   "如上所述".
# * Not flagged: the brand's own voice ("We", "Our", "我们", "本公司": it is the brand's
#   wherever the fact is published), dates relative to today ("last year", "去年": another
#   problem), "also" further in, and languages other than English and Chinese.
# * English matches whole words, in any case except all capitals ("IT" is an acronym).
#   Chinese has no spaces, so only words that cannot begin an unrelated word are listed:
#   "同年" but not "同" (同仁堂), "也" but not "也门" (Yemen) or "也许" (perhaps), "其" but not
#   "其实" ("in fact"), "以上" only at the start (elsewhere it means "more than": 200年以上)
#   and not in "以上海…" ("with Shanghai…").

LEADING_MARKS = re.compile(r"[\s\"'“”‘’「」『』()（）\[\]【】《》〈〉—–\-…·]*")
WORD_END = r"(?![\w-])"  # "So" is not "So-called", "the above" not "the above-ground"


def _alternatives(phrases: tuple[str, ...]) -> str:
    """A regex alternation of phrases, longest first, any whitespace between their words."""
    ordered = sorted(phrases, key=len, reverse=True)
    return "|".join(r"\s+".join(re.escape(word) for word in p.split()) for p in ordered)


EN_PREPOSITIONS = (
    "of", "in", "at", "for", "from", "since", "after", "before", "by", "until", "among",
    "like", "unlike", "besides", "apart from", "except for", "including", "with", "without",
    "beyond", "during", "despite", "compared with", "compared to", "according to", "because of",
)  # fmt: skip
# Words that point outside the statement and may be followed by a noun ("This figure").
EN_DETERMINERS = (
    "this", "that", "these", "those", "its", "their", "his", "her", "such", "another",
    "the same", "the above", "the remaining", "the previous", "the preceding",
    "the aforementioned",
)  # fmt: skip
EN_PRONOUNS = (
    "it", "they", "them", "he", "she", "which", "then", "the rest", "the remainder", "the others",
)  # fmt: skip
# Pronouns only before a verb or punctuation: "The former factory…" is a description.
EN_PRONOUNS_BEFORE_VERB = ("the former", "the latter")
EN_CONNECTIVES = (
    "also", "additionally", "in addition", "furthermore", "moreover", "however", "therefore",
    "thus", "hence", "consequently", "as a result", "likewise", "similarly", "meanwhile",
    "afterwards", "afterward", "thereafter", "subsequently", "later", "later that year",
    "nevertheless", "nonetheless", "in contrast", "by contrast", "on the other hand", "instead",
    "otherwise", "accordingly", "in turn", "and", "but", "so", "yet", "as such", "as well",
)  # fmt: skip
# Verbs (and the like) that follow a determiner used as a pronoun: "This is…", "This doubled".
EN_VERBS = (
    "is", "was", "are", "were", "has", "have", "had", "will", "would", "can", "could", "may",
    "might", "must", "shall", "should", "also", "does", "did", "do", "means", "meant", "shows",
    "makes", "made", "gives", "includes", "comes", "came", "led", "leads", "rose", "fell",
    "grew", "became", "remains", "only", "alone", "all", "both",
)  # fmt: skip
EN_VERB = rf"(?:{_alternatives(EN_VERBS)}|\w{{2,}}ed){WORD_END}"  # "doubled", not "red"
# "It" as a dummy subject stands alone: "It takes 36,000 buds to…", "It is said that…".
EN_DUMMY_IT = re.compile(
    r"it\s+(?:takes|took|costs|cost)\b"
    r"|it\s+(?:is|was|has\s+been)\s+(?:\S+\s+){1,3}?that\b"
    r"|it\s+(?:is|was)\s+(?:(?:not|very|quite|more|most)\s+)?(?:possible|impossible|important|"
    r"easy|hard|difficult|common|customary|traditional|usual|normal|rare|necessary|best|safe)"
    r"\s+to\b",
    re.IGNORECASE,
)
EN_START = re.compile(
    rf"(?:(?:{_alternatives(EN_PREPOSITIONS)})\s+)?"
    rf"(?:(?:{_alternatives(EN_DETERMINERS)}){WORD_END}"
    rf"(?:\s+(?!{EN_VERB})[^\W\d_][\w'’]*(?<![’']))?"
    rf"|(?:{_alternatives(EN_PRONOUNS)})"
    rf"|(?:{_alternatives(EN_PRONOUNS_BEFORE_VERB)})(?=\s*[,;:.]|\s+{EN_VERB}))"
    rf"{WORD_END}"
    rf"|(?:{_alternatives(EN_CONNECTIVES)}){WORD_END}(?!\s+(?:of|to|as){WORD_END})",
    re.IGNORECASE,
)
EN_ANYWHERE_WORDS = (
    "aforementioned", "aforesaid", "above-mentioned", "abovementioned", "the above",
    "mentioned above", "mentioned earlier", "listed above", "named above", "described above",
    "stated above", "noted above", "shown above", "cited above", "see above", "as above",
)  # fmt: skip
EN_ANYWHERE = re.compile(rf"\b(?:{_alternatives(EN_ANYWHERE_WORDS)}){WORD_END}", re.IGNORECASE)

# Simplified and Traditional forms side by side.
ZH_START_WORDS = (
    # of which, the rest, the others (a bare 其 is added below, except in 其实 "in fact")
    "其中", "其余", "其餘", "其他", "其它", "其次", "其后", "其後",
    # this, these, the said, that, those
    "这些", "這些", "这个", "這個", "这种", "這種", "这里", "這裡", "這裏", "这", "這", "该", "該",
    "此外", "此前", "此后", "此後", "此时", "此時", "此次", "此", "那些", "那个", "那個", "那种",
    "那種", "那里", "那裡", "那时", "那時", "那年", "那么", "那麼",
    # the above, the former, the latter (以上 is added below)
    "上述", "前述", "如上所述", "前者", "后者", "後者",
    # it, they, he, she
    "它们", "它們", "它", "他们", "他們", "他", "她们", "她們", "她",
    # also, besides, moreover, but, so, therefore (a bare 也 is added below)
    "另外", "另一", "另有", "另", "并且", "並且", "而且", "而", "还有", "還有", "但是", "但",
    "不过", "不過", "然而", "因此", "所以", "因而", "于是", "於是", "与此同时", "與此同時",
    "除此之外", "对此", "對此", "为此", "為此", "由此", "据此", "據此", "如此",
    # the same year, at the same time, that year, the next year, afterwards
    "同年", "同月", "同日", "同期", "同时", "同時", "同样", "同樣", "同一", "同批", "同款",
    "当年", "當年", "当时", "當時", "次年", "翌年", "随后", "隨後", "之后", "之後", "然后",
    "然後", "后来", "後來",
)  # fmt: skip
ZH_START = re.compile(f"{_alternatives(ZH_START_WORDS)}|其(?![实實])|也(?![门門许許])|以上(?!海)")
ZH_ANYWHERE = re.compile(_alternatives(("上述", "前述", "如上所述")))


def _leaning_spans(text: str, language: str) -> list[tuple[int, int]]:
    """Where ``text`` leans on another statement, as (start, end) offsets, in order."""
    family = language.split("-")[0].lower()
    if family == "en":
        start_pattern, anywhere = EN_START, EN_ANYWHERE
    elif family == "zh":
        start_pattern, anywhere = ZH_START, ZH_ANYWHERE
    else:
        return []
    spans: list[tuple[int, int]] = []
    lead = LEADING_MARKS.match(text).end()
    found = start_pattern.match(text, lead)
    if found:
        first_word = found.group().split()[0]
        acronym = len(first_word) > 1 and first_word.isascii() and first_word.isupper()
        if not acronym and not (family == "en" and EN_DUMMY_IT.match(text, lead)):
            spans.append(found.span())
    for match in anywhere.finditer(text):
        if not any(s < match.end() and match.start() < e for s, e in spans):
            spans.append(match.span())
    return sorted(spans)


def leaning_words(*, text: str, language: str) -> list[str]:
    """The words with which a statement leans on another one ("Of that", "These gardens",
    "the above", "其中", "上述"), in order; none for a statement that stands alone. English
    and Chinese (Simplified and Traditional); other languages are not checked. The rules are
    in the comment above."""
    return [" ".join(text[s:e].split()) for s, e in _leaning_spans(text, language)]


def leaning_messages(*, statement: dict[str, str]) -> dict[str, str]:
    """Language → what to tell the editor, for each language whose statement leans on
    another fact."""
    out: dict[str, str] = {}
    for language, text in statement.items():
        spans = _leaning_spans(text, language) if isinstance(text, str) else []
        if not spans:
            continue
        quoted = [f'"{" ".join(text[s:e].split())}"' for s, e in spans]
        if spans[0][0] == LEADING_MARKS.match(text).end():
            if len(quoted) > 1:
                message = _(
                    "The statement starts with %(first)s and says %(others)s, which lean on "
                    "other facts: say in the statement itself what they refer to, so the fact "
                    "can be quoted alone."
                )
            else:
                message = _(
                    "The statement starts with %(first)s, which leans on another fact: say in "
                    "the statement itself what it refers to, so the fact can be quoted alone."
                )
            out[language] = message % {"first": quoted[0], "others": _and(quoted[1:])}
            continue
        if len(quoted) > 1:
            message = _(
                "The statement says %(words)s, which lean on other facts: say in the statement "
                "itself what they refer to, so the fact can be quoted alone."
            )
        else:
            message = _(
                "The statement says %(words)s, which leans on another fact: say in the "
                "statement itself what it refers to, so the fact can be quoted alone."
            )
        out[language] = message % {"words": _and(quoted)}
    return out


def _and(items: list[str]) -> str:
    """'"a" and "b" and "c"', in the active language."""
    joined = items[0] if items else ""
    for item in items[1:]:
        joined = _("%(words)s and %(word)s") % {"words": joined, "word": item}
    return joined
