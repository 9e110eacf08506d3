"""Paired prompt sets: one question in several languages, compared side by side.

Prompt sets of one group (``PromptSet.pair_group``) ask the same questions in different
languages, in the same order: the n-th active question of each set is one question. For each
question and each set: the answers in the period and the mention, citation, first-mention
and misstatement rates with their 95 % intervals — "named in 60 % of English answers, 10 % of
Chinese ones" — and the same over all the set's questions.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from visibility.comparison import RATES
from visibility.metrics import FIELDS, answer_facts, answers_for, metrics_of
from visibility.models import PromptSet


def pair_groups(*, brand) -> list[str]:
    return list(
        PromptSet.objects.filter(brand=brand)
        .exclude(pair_group="")
        .order_by("pair_group")
        .values_list("pair_group", flat=True)
        .distinct()
    )


def _cell(prompt_set: PromptSet, prompt_text: str | None, rows: list[dict]) -> dict:
    metrics = metrics_of(answer_facts(row) for row in rows)
    return {
        "prompt_set": prompt_set.name,
        "language": prompt_set.language,
        "prompt": prompt_text,
        "answers": metrics.answers,
        **{name: getattr(metrics, name).as_dict() for name in RATES},
    }


def paired_comparison(
    *, brand, group: str, since: date | None = None, until: date | None = None
) -> dict | None:
    """The group's questions side by side (see the module note); None for no such group."""
    prompt_sets = list(
        PromptSet.objects.filter(brand=brand, pair_group=group).order_by("language", "name")
    )
    if not prompt_sets:
        return None
    questions = {
        prompt_set.pk: list(prompt_set.prompts.filter(active=True).values_list("pk", "text"))
        for prompt_set in prompt_sets
    }
    by_prompt: dict[int, list[dict]] = defaultdict(list)
    answers = answers_for(brand=brand, since=since, until=until).filter(
        prompt__prompt_set__in=prompt_sets
    )
    for row in answers.values("prompt_id", *FIELDS).iterator():
        by_prompt[row["prompt_id"]].append(row)
    positions = max(len(prompts) for prompts in questions.values())
    rows = []
    for position in range(positions):
        cells = []
        for prompt_set in prompt_sets:
            prompts = questions[prompt_set.pk]
            pk, text = prompts[position] if position < len(prompts) else (None, None)
            cells.append(_cell(prompt_set, text, by_prompt.get(pk, [])))
        rows.append({"position": position + 1, "cells": cells})
    overall = [
        _cell(prompt_set, None, [r for pk, _ in questions[prompt_set.pk] for r in by_prompt[pk]])
        for prompt_set in prompt_sets
    ]
    return {
        "group": group,
        "since": since,
        "until": until,
        "prompt_sets": [{"name": p.name, "language": p.language} for p in prompt_sets],
        "questions": rows,
        "all": overall,
    }
