"""Answers with their evidence, for a spreadsheet (CSV) or another tool (JSON lines): what
was asked, of which engine and model, when, what came back word for word, what it cited,
and what the analysis found in it."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date
from typing import IO

from kb.models import Brand
from visibility.models import Answer

ANSWER_COLUMNS = [
    "asked_at", "run", "engine", "model", "demo_engine", "prompt_set", "prompt", "language",
    "repetition", "ok", "error", "mentioned", "cited", "first_mention", "position",
    "competitors", "misstatements", "citations", "latency_ms", "cost_usd", "answer",
]  # fmt: skip
# A spreadsheet runs a cell starting with one of these as a formula.
CSV_UNSAFE = ("=", "+", "-", "@", "\t", "\r")


def answer_export_rows(
    *, brand: Brand, since: date | None = None, until: date | None = None
) -> Iterator[dict]:
    """The brand's answers, oldest first, ``since``/``until`` (dates, inclusive) when given."""
    answers = Answer.objects.filter(run__brand=brand).select_related(
        "engine", "prompt", "prompt__prompt_set"
    )
    if since:
        answers = answers.filter(asked_at__date__gte=since)
    if until:
        answers = answers.filter(asked_at__date__lte=until)
    for answer in answers.order_by("asked_at", "pk").iterator(chunk_size=500):
        yield {
            "asked_at": answer.asked_at.isoformat(),
            "run": answer.run_id,
            "engine": answer.engine.name,
            "model": answer.engine.model,
            "demo_engine": answer.engine.is_demo,
            "prompt_set": answer.prompt.prompt_set.name,
            "prompt": answer.prompt.text,
            "language": answer.language,
            "repetition": answer.repetition + 1,
            "ok": answer.ok,
            "error": answer.error,
            "mentioned": answer.mentioned,
            "cited": answer.cited,
            "first_mention": answer.first_mention,
            "position": answer.position,
            "competitors": answer.competitors,
            "misstatements": answer.misstatements,
            "citations": answer.citations,
            "latency_ms": answer.latency_ms,
            "cost_usd": str(answer.cost),
            "answer": answer.content,
        }


def csv_cell(value) -> object:
    """A cell as a spreadsheet should show it: lists and objects as JSON, and text starting
    with = + - @ (a formula to a spreadsheet) after a '."""
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(CSV_UNSAFE):
        return "'" + value
    return value


def rows_write_csv(rows: Iterator[dict], out: IO[str], columns: list[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(row[column]) for column in columns])
        count += 1
    return count


def rows_write_jsonl(rows: Iterator[dict], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
