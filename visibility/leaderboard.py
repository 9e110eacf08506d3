"""The brand among its competitors in AI answers: who is named, how often, first, and how well.

Per tracked brand (the brand itself and each competitor of the prompt sets), over the answers
that came back in a period:

* **mention rate**: answers naming it / answers (95 % Wilson interval);
* **share of voice** by mentions: its mentions / the mentions of every tracked brand — an
  answer that names a competitor five times and the brand once counts 5 to 1 (answers stored
  before mentions were counted count one mention per brand named);
* **first-mention rate**: answers naming it before any other tracked brand / answers;
* **sentiment**: the judge's ratings of the answers naming it (``visibility.sentiment``):
  positive, neutral and negative counts and the net score (positive − negative) / rated.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from visibility.metrics import Rate, answers_for
from visibility.models import PromptSet
from visibility.sentiment import SENTIMENTS
from visibility.tracking import tracked_competitors


def _order(row: dict, own: str) -> list[str]:
    """The tracked brands an answer names, in order of first mention."""
    competitors = list(row["competitors"] or [])
    if row["position"]:
        competitors.insert(row["position"] - 1, own)
    return competitors


def competitor_leaderboard(
    *, brand, since: date | None = None, until: date | None = None, engine: str | None = None
) -> dict:
    own = brand.slug
    names: dict[str, str] = {own: brand.name}
    answers = 0
    named: Counter = Counter()
    first: Counter = Counter()
    mentions: Counter = Counter()
    sentiment: dict[str, Counter] = defaultdict(Counter)
    prompt_set_ids: set[int] = set()
    rows = (
        answers_for(brand=brand, since=since, until=until, engine=engine)
        .filter(ok=True)
        .values("competitors", "position", "analysis", "sentiment", "run__prompt_set_id")
    )
    for row in rows.iterator():
        answers += 1
        prompt_set_ids.add(row["run__prompt_set_id"])
        order = _order(row, own)
        named.update(order)
        if order:
            first[order[0]] += 1
        counts = (row["analysis"] or {}).get("mention_counts")
        mentions.update(counts if counts is not None else dict.fromkeys(order, 1))
        for key, rating in ((row["sentiment"] or {}).get("brands") or {}).items():
            if rating.get("sentiment") in SENTIMENTS:
                sentiment[key][rating["sentiment"]] += 1
    # Competitors no answer named are on the board too, at zero.
    for prompt_set in PromptSet.objects.filter(pk__in=prompt_set_ids):
        for competitor in tracked_competitors(prompt_set):
            names.setdefault(competitor.key, competitor.key)
    for key in named:
        names.setdefault(key, key)
    total_mentions = sum(mentions.values())

    def row_of(key: str) -> dict:
        ratings = sentiment.get(key, Counter())
        rated = sum(ratings.values())
        return {
            "key": key,
            "name": names[key],
            "is_brand": key == own,
            "answers": answers,
            "mention": Rate(named[key], answers).as_dict(),
            "mentions": mentions[key],
            "share_of_voice": Rate(mentions[key], total_mentions).as_dict(),
            "first_mention": Rate(first[key], answers).as_dict(),
            "sentiment": {
                **{label: ratings[label] for label in SENTIMENTS},
                "rated": rated,
                "net": round((ratings["positive"] - ratings["negative"]) / rated, 4)
                if rated
                else None,
            },
        }

    ranked = sorted(names, key=lambda key: (-mentions[key], -named[key], names[key]))
    return {"answers": answers, "mentions": total_mentions, "brands": [row_of(k) for k in ranked]}
