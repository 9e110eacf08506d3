"""Before and after a release: did the brand's AI visibility change when it published?

The answers of two windows of equal length around the moment a release went live (its
``deployed_at``) are compared, rate by rate (mention, citation, first mention, misstatement),
overall and per engine. For each rate:

* both proportions with their 95 % Wilson intervals (``visibility.metrics``);
* the difference (after − before) with its 95 % interval by Newcombe's hybrid score method
  (method 10 of Newcombe 1998), built from the two Wilson intervals, so it stays sound at
  0 %, 100 % and with few answers::

      low  = d − √((p₂ − l₂)² + (u₁ − p₁)²)
      high = d + √((u₂ − p₂)² + (p₁ − l₁)²)

* the ratio after / before ("cited 2.5× as often"), when the rate before is not 0;
* the two-sided two-proportion z-test with the pooled proportion::

      z = (p₂ − p₁) / √(p̂ (1 − p̂) (1/n₁ + 1/n₂)),  p̂ = (x₁ + x₂) / (n₁ + n₂),
      p-value = erfc(|z| / √2)

A change is called significant when p < 0.05. Engines ask different questions at different
times, so this measures association with the release, not proof that the release caused it:
the comparison says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from visibility.metrics import FIELDS, Rate, answer_facts, metrics_of, wilson_interval
from visibility.models import Answer

RATES = ("mention", "citation", "first_mention", "misstatement")
SIGNIFICANCE = 0.05
CAVEAT = (
    "Compares the answers of two windows around the release: a change measured here came "
    "with the release, it is not proof the release caused it."
)


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    """(z, two-sided p-value) for p₂ − p₁ with the pooled proportion; None without answers
    on one side. Equal proportions of 0 or 1 on both sides give (0, 1)."""
    if not n1 or not n2:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance == 0:
        return (0.0, 1.0)
    z = (x2 / n2 - x1 / n1) / math.sqrt(variance)
    return (z, math.erfc(abs(z) / math.sqrt(2)))


def newcombe_interval(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """95 % interval of p₂ − p₁ by Newcombe's hybrid score method (see the module note)."""
    if not n1 or not n2:
        return (0.0, 0.0)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1)
    l2, u2 = wilson_interval(x2, n2)
    d = p2 - p1
    return (
        max(-1.0, d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)),
        min(1.0, d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)),
    )


@dataclass(frozen=True)
class RateChange:
    metric: str
    before: Rate
    after: Rate

    def as_dict(self) -> dict:
        x1, n1, x2, n2 = self.before.count, self.before.n, self.after.count, self.after.n
        test = two_proportion_z_test(x1, n1, x2, n2)
        low, high = newcombe_interval(x1, n1, x2, n2)
        ratio = self.after.value / self.before.value if self.before.value and n2 else None
        return {
            "metric": self.metric,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "difference": round(self.after.value - self.before.value, 4) if n1 and n2 else None,
            "difference_ci95": [round(low, 4), round(high, 4)] if n1 and n2 else None,
            "ratio": round(ratio, 4) if ratio is not None else None,
            "z": round(test[0], 4) if test else None,
            "p_value": round(test[1], 4) if test else None,
            "significant": bool(test and test[1] < SIGNIFICANCE),
        }


def rate_changes(before: list, after: list) -> list[RateChange]:
    """Each rate's change between two lists of ``AnswerFacts``."""
    metrics_before, metrics_after = metrics_of(before), metrics_of(after)
    return [
        RateChange(name, getattr(metrics_before, name), getattr(metrics_after, name))
        for name in RATES
    ]


def _window(brand, start: datetime, end: datetime, engine: str | None) -> list[dict]:
    answers = Answer.objects.filter(run__brand=brand, asked_at__gte=start, asked_at__lt=end)
    if engine:
        answers = answers.filter(engine__name=engine)
    return list(answers.values(*FIELDS))


def release_comparison(*, brand, release, days: int = 14, engine: str | None = None) -> dict:
    """The brand's rates ``days`` before and after ``release`` went live, overall and per
    engine (see the module note)."""
    moment = release.deployed_at
    before = _window(brand, moment - timedelta(days=days), moment, engine)
    after = _window(brand, moment, moment + timedelta(days=days), engine)
    engines = sorted({row["engine__name"] for row in before + after})

    def changes(rows_before, rows_after) -> list[dict]:
        facts_before = [answer_facts(row) for row in rows_before]
        facts_after = [answer_facts(row) for row in rows_after]
        return [change.as_dict() for change in rate_changes(facts_before, facts_after)]

    return {
        "release": release.number,
        "deployed_at": moment,
        "days": days,
        "before": {"start": moment - timedelta(days=days), "end": moment},
        "after": {"start": moment, "end": moment + timedelta(days=days)},
        "caveat": CAVEAT,
        "all": changes(before, after),
        "engines": {
            name: changes(
                [r for r in before if r["engine__name"] == name],
                [r for r in after if r["engine__name"] == name],
            )
            for name in engines
        },
    }


def releases_deployed(*, brand, since=None, until=None) -> list[tuple[int, datetime]]:
    """(number, deployed_at) of the brand's releases that went live in a period of days."""
    from publishing.models import Release

    releases = Release.objects.filter(brand=brand, deployed_at__isnull=False)
    if since:
        releases = releases.filter(deployed_at__date__gte=since)
    if until:
        releases = releases.filter(deployed_at__date__lte=until)
    return list(releases.order_by("deployed_at").values_list("number", "deployed_at"))
