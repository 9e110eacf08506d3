"""Visibility metrics from stored answers: rates with Wilson intervals, share of voice, score.

The visibility score (0–100), shown next to every score in the product and documented in
the README::

    score = 100 × (0.40·M + 0.25·C + 0.15·F + 0.20·S) × (1 − X)

M mention rate, C citation rate, F first-mention rate (the brand named before any tracked
competitor), S share of voice (the brand's mentions among all tracked brands' mentions),
X misstatement rate (answers stating a wrong value for one of the brand's facts). Failed
answers (errors, timeouts) are left out of every rate and counted separately.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from visibility.models import Answer

SCORE_FORMULA = "score = 100 × (0.40·M + 0.25·C + 0.15·F + 0.20·S) × (1 − X)"
SCORE_LEGEND = (
    "M mention rate, C citation rate, F first-mention rate, S share of voice, X misstatement rate"
)
WEIGHTS = {"mention": 0.40, "citation": 0.25, "first_mention": 0.15, "share_of_voice": 0.20}
Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95 %) for a proportion: sound at 0, 1 and small n."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - margin), min(1.0, centre + margin))


@dataclass
class Rate:
    count: int
    n: int

    @property
    def value(self) -> float:
        return self.count / self.n if self.n else 0.0

    def as_dict(self) -> dict:
        low, high = wilson_interval(self.count, self.n)
        return {"count": self.count, "n": self.n, "rate": round(self.value, 4),
                "ci95": [round(low, 4), round(high, 4)]}  # fmt: skip


@dataclass
class Metrics:
    answers: int
    failed: int
    mention: Rate
    citation: Rate
    first_mention: Rate
    misstatement: Rate
    share_of_voice: Rate  # brand mentions / mentions of every tracked brand
    cost: float

    @property
    def score(self) -> float:
        weighted = sum(getattr(self, name).value * weight for name, weight in WEIGHTS.items())
        return round(100 * weighted * (1 - self.misstatement.value), 1)

    def as_dict(self) -> dict:
        out = {"answers": self.answers, "failed": self.failed, "score": self.score,
               "cost_usd": round(self.cost, 6)}  # fmt: skip
        for name in ("mention", "citation", "first_mention", "misstatement", "share_of_voice"):
            out[name] = getattr(self, name).as_dict()
        return out


@dataclass(frozen=True)
class AnswerFacts:
    """The few columns metrics need, so large periods are read lean."""

    ok: bool
    mentioned: bool
    cited: bool
    first_mention: bool
    misstated: bool
    competitors: int
    cost: float


def metrics_of(rows: Iterable[AnswerFacts]) -> Metrics:
    rows = list(rows)
    ok = [r for r in rows if r.ok]
    n = len(ok)
    brand_mentions = sum(r.mentioned for r in ok)
    all_mentions = brand_mentions + sum(r.competitors for r in ok)
    return Metrics(
        answers=n,
        failed=len(rows) - n,
        mention=Rate(brand_mentions, n),
        citation=Rate(sum(r.cited for r in ok), n),
        first_mention=Rate(sum(r.first_mention for r in ok), n),
        misstatement=Rate(sum(r.misstated for r in ok), n),
        share_of_voice=Rate(brand_mentions, all_mentions),
        cost=sum(r.cost for r in rows),
    )


FIELDS = ("ok", "mentioned", "cited", "first_mention", "misstatements", "competitors", "cost",
          "engine__name", "prompt__text", "language", "asked_at")  # fmt: skip


def answer_facts(row: dict) -> AnswerFacts:
    return AnswerFacts(
        ok=row["ok"],
        mentioned=row["mentioned"],
        cited=row["cited"],
        first_mention=row["first_mention"],
        misstated=bool(row["misstatements"]),
        competitors=len(row["competitors"] or []),
        cost=float(row["cost"]),
    )


GROUPS = {"engine": "engine__name", "prompt": "prompt__text", "language": "language"}


def answers_for(*, brand, since: date | None = None, until: date | None = None, engine=None):
    answers = Answer.objects.filter(run__brand=brand)
    if since:
        answers = answers.filter(asked_at__date__gte=since)
    if until:
        answers = answers.filter(asked_at__date__lte=until)
    if engine:
        answers = answers.filter(engine__name=engine)
    return answers


def metrics_by(*, brand, group: str | None = None, **filters) -> dict[str, Metrics]:
    """Metrics overall ("all") or per engine, prompt or language."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, not {group!r}")
    buckets: dict[str, list[AnswerFacts]] = defaultdict(list)
    for row in answers_for(brand=brand, **filters).values(*FIELDS).iterator():
        buckets[row[GROUPS[group]] if group else "all"].append(answer_facts(row))
    if group is None:
        return {"all": metrics_of(buckets["all"])}  # zeros when there is nothing yet
    return {key: metrics_of(rows) for key, rows in sorted(buckets.items())}


def period_start(day: date, period: str) -> date:
    return day - timedelta(days=day.weekday()) if period == "week" else day


def metrics_series(*, brand, period: str = "day", **filters) -> dict[str, dict[date, Metrics]]:
    """Per engine, metrics per day or per ISO week (weeks start on Monday)."""
    if period not in ("day", "week"):
        raise ValueError(f"period must be day or week, not {period!r}")
    buckets: dict[str, dict[date, list[AnswerFacts]]] = defaultdict(lambda: defaultdict(list))
    for row in answers_for(brand=brand, **filters).values(*FIELDS).iterator():
        start = period_start(row["asked_at"].date(), period)
        buckets[row["engine__name"]][start].append(answer_facts(row))
    return {
        engine: {start: metrics_of(rows) for start, rows in sorted(days.items())}
        for engine, days in sorted(buckets.items())
    }


def metrics_rows(series: dict[str, dict[date, Metrics]]) -> list[dict]:
    """Flat rows for CSV and the API: one per engine and period."""
    rows = []
    for engine, periods in series.items():
        for start, metrics in periods.items():
            m = metrics.as_dict()
            rows.append({
                "engine": engine, "period_start": start.isoformat(), "answers": m["answers"],
                "failed": m["failed"], "score": m["score"],
                **{f"{name}_rate": m[name]["rate"] for name in
                   ("mention", "citation", "first_mention", "share_of_voice", "misstatement")},
                **{f"{name}_ci95_low": m[name]["ci95"][0] for name in ("mention", "citation")},
                **{f"{name}_ci95_high": m[name]["ci95"][1] for name in ("mention", "citation")},
                "cost_usd": m["cost_usd"],
            })  # fmt: skip
    return rows
