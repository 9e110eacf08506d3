"""Paired prompt sets: one question in English and Chinese, compared side by side."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone

from kb.services.tokens import api_token_create
from tests.rates import rate
from tests.test_visibility_admin import dashboard_as_editor
from visibility.models import Answer, Engine, Run
from visibility.services import prompt_set_save

pytestmark = pytest.mark.django_db
GROUP = "Buying tea 买茶"


@pytest.fixture
def paired(brand):
    """English: the brand named in 3 of 4 answers to question 1, 1 of 4 to question 2.
    Chinese: 1 of 4 and 0 of 4; the Chinese set has a third question nobody answered."""
    engine = Engine.objects.create(
        brand=brand, name="ChatGPT", base_url="https://api.openai.example/v1", model="gpt-4o"
    )
    english = prompt_set_save(
        brand=brand,
        name="Buying tea",
        language="en",
        pair_group=GROUP,
        prompts=["Best green tea brand?", "Where to buy Longjing?"],
    )
    chinese = prompt_set_save(
        brand=brand,
        name="买茶",
        language="zh-Hans",
        pair_group=GROUP,
        prompts=["最好的绿茶品牌？", "哪里买龙井？", "龙井多少钱？"],
    )
    prompt_set_save(brand=brand, name="Alone", language="en", prompts=["Tea?"])
    now = timezone.now() - timedelta(hours=1)
    for prompt_set, mentioned in ((english, (3, 1)), (chinese, (1, 0))):
        run = Run.objects.create(brand=brand, prompt_set=prompt_set, started_at=now)
        for prompt, named in zip(prompt_set.prompts.order_by("order"), mentioned, strict=False):
            for repetition in range(4):
                Answer.objects.create(
                    run=run, engine=engine, prompt=prompt, repetition=repetition,
                    language=prompt_set.language, asked_at=now, mentioned=repetition < named,
                    cited=repetition == 0, content="…",
                )  # fmt: skip
    return brand
    # fmt: skip


def test_the_questions_are_compared_side_by_side(paired):
    _, raw = api_token_create(brand=paired, scopes=["read"])
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    base = f"/api/v1/brands/{paired.slug}/visibility/paired/"
    body = api.get(base + quote(GROUP) + "/").json()
    assert body["prompt_sets"] == [{"name": "Buying tea", "language": "en"},
                                   {"name": "买茶", "language": "zh-Hans"}]  # fmt: skip
    first = body["questions"][0]["cells"]
    assert [(c["prompt"], c["answers"], c["mention"], c["citation"]) for c in first] == [
        ("Best green tea brand?", 4, rate(3, 4), rate(1, 4)),
        ("最好的绿茶品牌？", 4, rate(1, 4), rate(1, 4)),
    ]
    third = body["questions"][2]["cells"]
    assert [(c["prompt"], c["answers"]) for c in third] == [(None, 0), ("龙井多少钱？", 0)]
    assert [(c["language"], c["mention"]) for c in body["all"]] == [
        ("en", rate(4, 8)), ("zh-Hans", rate(1, 8))]  # fmt: skip
    assert api.get(base + "Alone/").status_code == 404

    html = dashboard_as_editor(paired)
    section = html[html.index('id="paired"') : html.index('id="competitors"')]
    assert f"<h3>{GROUP}</h3>" in section
    assert (
        '<small>最好的绿茶品牌？</small><br><span class="vis-rate" title="1 of 4">25.0' in section
    )
