"""The competitor leaderboard and the sentiment judge: a scripted engine answers, a scripted
judge rates each brand named (the real ``openai`` client asks both on loopback)."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from kb.services.entities import entity_create
from kb.services.tokens import api_token_create
from kb.services.workflow import object_publish
from tests.rates import rate
from tests.test_visibility_admin import dashboard_as_editor
from visibility.leaderboard import competitor_leaderboard
from visibility.models import Answer
from visibility.scripted_engine import Reply, ScriptedEngine
from visibility.sentiment import judge_reply_read
from visibility.services import VisibilityError, engine_save, prompt_set_save

pytestmark = pytest.mark.django_db
ANSWERS = {
    "Best tea?": "Acme Tea is excellent. Twinings is fine.",
    "Cheap tea?": "Twinings, Twinings and Twinings again. Acme Tea is overpriced.",
    "Tea online?": "Try Teavana.",
}
RATINGS = {  # what the judge says of each answer
    "Best tea?": [("Acme Tea", "positive", "Acme Tea is excellent."),
                  ("Twinings", "neutral", "Twinings is fine.")],
    "Cheap tea?": [("Acme Tea", "negative", "Acme Tea is overpriced."),
                   ("Twinings", "neutral", "Twinings, Twinings and Twinings again.")],
    "Tea online?": [("Teavana", "positive", "Teavana is the best.")],  # not what it says
}  # fmt: skip


def reply(model, messages, attempt):
    text = messages[-1]["content"]
    if model == "judge-model":
        question = next(q for q, answer in ANSWERS.items() if answer in text)
        brands = [{"brand": b, "sentiment": s, "evidence": e} for b, s, e in RATINGS[question]]
        return Reply("Here you are:\n```json\n" + json.dumps({"brands": brands}) + "\n```")
    return Reply(ANSWERS[text])


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]


@pytest.fixture
def judged(brand, django_capture_on_commit_callbacks):
    organization = entity_create(
        brand=brand, types=["Organization"], iri="https://tea.example/#organization",
        data={"name": [{"@value": "Acme Tea", "@language": "en"}]},
    )  # fmt: skip
    object_publish(obj=organization)
    with ScriptedEngine(reply) as server:
        engine_save(brand=brand, name="Alpha", base_url=server.base_url, model="alpha-model")
        judge = engine_save(brand=brand, name="Judge", base_url=server.base_url,
                            model="judge-model", enabled=False)  # fmt: skip
        prompt_set_save(
            brand=brand, name="Tea", language="en", prompts=list(ANSWERS), repetitions=1,
            competitors=[{"name": "Twinings"}, {"name": "Teavana"}, {"name": "Ten Fu Tea"}],
            sentiment_judge=judge,
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
    return brand


def test_the_judge_rates_each_brand_named_with_its_evidence(judged):
    answer = Answer.objects.get(prompt__text="Cheap tea?")
    assert answer.sentiment["judge"] == "Judge" and answer.sentiment["model"] == "judge-model"
    assert answer.sentiment["brands"] == {
        "acme-tea": {"sentiment": "negative", "evidence": "Acme Tea is overpriced.",
                     "quoted": True},
        "Twinings": {"sentiment": "neutral", "evidence": "Twinings, Twinings and Twinings again.",
                     "quoted": True},
    }  # fmt: skip
    made_up = Answer.objects.get(prompt__text="Tea online?").sentiment["brands"]
    assert made_up == {"Teavana": {"sentiment": "positive", "evidence": "Teavana is the best.",
                                   "quoted": False}}  # fmt: skip
    # Only Alpha was asked the questions: the judge is not one of the run's engines.
    assert set(Answer.objects.values_list("engine__name", flat=True)) == {"Alpha"}


def test_a_judge_reply_is_read_strictly():
    names = {"acme-tea": "Acme Tea"}
    assert judge_reply_read(
        '{"brands": [{"brand": "ACME TEA", "sentiment": "Positive", "evidence": "x"},'
        ' {"brand": "Other", "sentiment": "positive"},'
        ' {"brand": "Acme Tea", "sentiment": "negative"}]}',
        "Acme Tea is x.", names,
    ) == {"acme-tea": {"sentiment": "positive", "evidence": "x", "quoted": True}}  # fmt: skip
    assert judge_reply_read('{"brands": [{"brand": "Acme Tea", "sentiment": "great"}]}', "",
                            names) == {}  # fmt: skip
    with pytest.raises(ValueError):
        judge_reply_read("I cannot rate that.", "", names)


def test_the_leaderboard_counts_mentions_first_mentions_and_sentiment(judged):
    board = competitor_leaderboard(brand=judged)
    assert (board["answers"], board["mentions"]) == (3, 7)
    rows = {row["name"]: row for row in board["brands"]}
    assert [row["name"] for row in board["brands"]] == [
        "Twinings", "Acme Tea", "Teavana", "Ten Fu Tea"]  # fmt: skip
    assert rows["Acme Tea"] | {"sentiment": None} == {
        "key": "acme-tea", "name": "Acme Tea", "is_brand": True, "answers": 3,
        "mention": rate(2, 3), "mentions": 2, "share_of_voice": rate(2, 7),
        "first_mention": rate(1, 3), "sentiment": None,
    }  # fmt: skip
    assert rows["Acme Tea"]["sentiment"] == {
        "positive": 1, "neutral": 0, "negative": 1, "rated": 2, "net": 0.0}  # fmt: skip
    assert (rows["Twinings"]["mention"], rows["Twinings"]["share_of_voice"],
            rows["Twinings"]["first_mention"]) == (rate(2, 3), rate(4, 7), rate(1, 3))  # fmt: skip
    assert rows["Teavana"]["sentiment"]["net"] == 1.0
    assert (rows["Ten Fu Tea"]["mention"], rows["Ten Fu Tea"]["sentiment"]["net"]) == (
        rate(0, 3), None)  # fmt: skip


def test_the_api_and_the_dashboard_show_the_leaderboard(judged, other_brand):
    _, raw = api_token_create(brand=judged, scopes=["read"])
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    body = api.get(f"/api/v1/brands/{judged.slug}/visibility/competitors/?engine=Alpha").json()
    assert (body["engine"], body["answers"], body["brands"][0]["name"]) == ("Alpha", 3, "Twinings")
    since = date.today().isoformat()
    assert api.get(f"/api/v1/brands/{judged.slug}/visibility/competitors/?since={since}"
                   ).json()["mentions"] == 7  # fmt: skip
    html = dashboard_as_editor(judged)
    section = html[html.index('id="competitors"') : html.index('id="release"')]
    assert "<td><strong>Acme Tea</strong></td>" in section
    assert "<td>1 / 0 / 1</td><td>0.00</td>" in section
    # The judge must be one of the brand's engines.
    foreign = engine_save(brand=other_brand, name="Elsewhere",
                          base_url="https://judge.example/v1", model="m")  # fmt: skip
    with pytest.raises(VisibilityError):
        prompt_set_save(brand=judged, name="Tea", language="en", sentiment_judge=foreign)
