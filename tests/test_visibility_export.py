"""``manage.py visibility_export``: every answer with its evidence, as CSV (read back by
Python's csv module) and as JSON lines, whole or not at all."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.test_visibility_api import at, make_answer, make_run
from visibility.exports import ANSWER_COLUMNS
from visibility.models import Engine, Prompt, PromptSet, Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def answers(brand, other_brand):
    tea = PromptSet.objects.create(brand=brand, name="Tea buyers", language="zh-Hans")
    question = Prompt.objects.create(prompt_set=tea, text="哪个龙井品牌最好？")
    engine = Engine.objects.create(brand=brand, name="Qwen", base_url="http://x.example/v1",
                                   model="qwen-plus")  # fmt: skip
    first = make_run(tea, [engine], at(3), state=Run.State.DONE, expected=2)
    make_answer(first, engine, question, 0, content="=西湖叶 is best.\nSee westlakeleaf.example.",
                citations=["https://www.westlakeleaf.example/"], mentioned=True, cited=True,
                first_mention=True, position=1, competitors=["Teavana"],
                misstatements=[{"fact_key": "founded", "stated": "2005", "expected": "1998"}],
                latency_ms=840, cost=Decimal("0.000420"))  # fmt: skip
    make_answer(first, engine, question, 1, ok=False, error="HTTP 429: slow down")
    second = make_run(tea, [engine], at(5), state=Run.State.DONE, expected=1)
    make_answer(second, engine, question, 0, content="Try Twinings.", competitors=["Twinings"])
    # Another brand's answer: never in this brand's export.
    theirs = PromptSet.objects.create(brand=other_brand, name="Theirs", language="en")
    their_engine = Engine.objects.create(brand=other_brand, name="GPT",
                                         base_url="http://y.example/v1", model="m")  # fmt: skip
    make_answer(make_run(theirs, [their_engine], at(4)), their_engine,
                Prompt.objects.create(prompt_set=theirs, text="Best tea?"), 0, content="Other.")  # fmt: skip
    return brand


def export(*args) -> str:
    out = StringIO()
    call_command("visibility_export", "acme-tea", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_csv_has_every_answer_with_its_evidence_oldest_first(answers):
    rows = list(csv.DictReader(io.StringIO(export())))
    assert list(rows[0]) == ANSWER_COLUMNS
    assert [(r["asked_at"], r["repetition"], r["ok"]) for r in rows] == [
        ("2025-03-03T06:01:00+00:00", "1", "True"),
        ("2025-03-03T06:02:00+00:00", "2", "False"),
        ("2025-03-05T06:01:00+00:00", "1", "True"),
    ]
    first = rows[0]
    assert (first["engine"], first["model"], first["prompt_set"], first["prompt"],
            first["language"]) == ("Qwen", "qwen-plus", "Tea buyers", "哪个龙井品牌最好？", "zh-Hans")  # fmt: skip
    # Text a spreadsheet would run as a formula starts with ', the rest is word for word.
    assert first["answer"] == "'=西湖叶 is best.\nSee westlakeleaf.example."
    assert json.loads(first["citations"]) == ["https://www.westlakeleaf.example/"]
    assert json.loads(first["misstatements"]) == [
        {"fact_key": "founded", "stated": "2005", "expected": "1998"}
    ]
    assert (first["mentioned"], first["cited"], first["position"], first["cost_usd"],
            first["latency_ms"]) == ("True", "True", "1", "0.000420", "840")  # fmt: skip
    assert rows[1]["error"] == "HTTP 429: slow down"


def test_jsonl_keeps_types_and_the_period_is_inclusive(answers, tmp_path):
    out = tmp_path / "answers.jsonl"
    call_command("visibility_export", "acme-tea", "--format", "jsonl", "--since", "2025-03-05",
                 "--until", "2025-03-05", "--out", str(out), stderr=StringIO())  # fmt: skip
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["answer"], r["competitors"], r["mentioned"], r["position"]) for r in lines] == [
        ("Try Twinings.", ["Twinings"], False, None)
    ]
    assert list(lines[0]) == ANSWER_COLUMNS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl"]  # no partial file


def test_bad_arguments_are_refused_by_name_and_nothing_is_written(answers, tmp_path):
    with pytest.raises(CommandError, match=r"--since 2025-03-06 is after --until 2025-03-01"):
        export("--since", "2025-03-06", "--until", "2025-03-01")
    with pytest.raises(CommandError, match="argument --since: 'March' is not a date"):
        export("--since", "March")
    with pytest.raises(CommandError, match="is not a directory"):
        export("--out", str(tmp_path / "missing" / "a.csv"))
    with pytest.raises(CommandError, match="No brand 'nope'"):
        call_command("visibility_export", "nope")
    assert list(tmp_path.iterdir()) == []
