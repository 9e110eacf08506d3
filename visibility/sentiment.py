"""How an answer speaks of each brand it names, as a judge engine reads it.

A prompt set may name a judge (``PromptSet.sentiment_judge``): any engine of the brand, asked
through the same OpenAI-compatible client and egress policy as the engines it judges. For
each answer that names the brand or a tracked competitor, the judge gets the answer and the
names found in it, and replies with one rating per brand — positive, neutral or negative —
and the sentence that shows it. The reply is kept with its evidence on the answer
(``Answer.sentiment``); whether the evidence is really a sentence of the answer is checked
and stored (``quoted``), so a judge that makes up quotes shows.
"""

from __future__ import annotations

import json
import re

from django.db import transaction
from django.utils import timezone

from visibility.analysis import normalize
from visibility.engines import engine_ask
from visibility.models import Answer
from visibility.tracking import tracked_brand, tracked_competitors

SENTIMENTS = ("positive", "neutral", "negative")
JUDGE_INSTRUCTIONS = """You rate how an answer speaks of brands. For each brand listed, say \
whether the answer speaks of it positively, neutrally or negatively, and quote the one \
sentence of the answer that shows it, word for word.

Reply with JSON only, in this shape:
{{"brands": [{{"brand": "<a name as listed>", "sentiment": "positive|neutral|negative", \
"evidence": "<the sentence>"}}]}}

Brands: {brands}

Answer:
\"\"\"
{answer}
\"\"\""""
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def judge_prompt(answer_text: str, names: dict[str, str]) -> str:
    return JUDGE_INSTRUCTIONS.format(
        brands=json.dumps(list(names.values()), ensure_ascii=False), answer=answer_text
    )


def judge_reply_read(reply: str, answer_text: str, names: dict[str, str]) -> dict[str, dict]:
    """The judge's ratings by tracked-brand key; ratings of brands not asked about, or with a
    sentiment not in SENTIMENTS, are left out. Raises ValueError if there is no JSON."""
    match = _JSON_OBJECT.search(reply or "")
    if match is None:
        raise ValueError("the judge's reply holds no JSON object")
    data = json.loads(match.group())
    keys_by_name = {normalize(name): key for key, name in names.items()}
    ratings: dict[str, dict] = {}
    answer_normalized = normalize(answer_text)
    for item in data.get("brands", []) if isinstance(data, dict) else []:
        if not isinstance(item, dict):
            continue
        key = keys_by_name.get(normalize(str(item.get("brand", ""))))
        sentiment = str(item.get("sentiment", "")).strip().lower()
        if key is None or sentiment not in SENTIMENTS or key in ratings:
            continue
        evidence = str(item.get("evidence", "")).strip()[:500]
        ratings[key] = {
            "sentiment": sentiment,
            "evidence": evidence,
            "quoted": bool(evidence) and normalize(evidence) in answer_normalized,
        }
    return ratings


def answer_judge(*, answer_id: int) -> bool:
    """Ask the prompt set's judge about one answer; idempotent (an answer judged by the same
    judge is left alone) and safe to retry. True when a rating was stored."""
    answer = (
        Answer.objects.select_related("run__brand", "prompt__prompt_set__sentiment_judge")
        .filter(pk=answer_id, ok=True)
        .first()
    )
    judge = answer.prompt.prompt_set.sentiment_judge if answer else None
    if answer is None or judge is None:
        return False
    if answer.sentiment.get("judge") == judge.name and "brands" in answer.sentiment:
        return False
    brand = answer.run.brand
    tracked = [tracked_brand(brand), *tracked_competitors(answer.prompt.prompt_set)]
    named = {answer.run.brand.slug} if answer.mentioned else set()
    named |= set(answer.competitors or [])
    names = {t.key: t.names[0] for t in tracked if t.key in named and t.names}
    if not names:
        return False
    reply = engine_ask(judge, judge_prompt(answer.content, names))
    stamp = {"judge": judge.name, "model": judge.model, "judged_at": timezone.now().isoformat()}
    if not reply.ok:
        result = stamp | {"error": reply.error}
    else:
        try:
            result = stamp | {"brands": judge_reply_read(reply.content, answer.content, names)}
        except ValueError as error:
            result = stamp | {"error": f"Unreadable reply: {error}"}
    with transaction.atomic():
        Answer.objects.filter(pk=answer.pk).update(sentiment=result)
    return "brands" in result
