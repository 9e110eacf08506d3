"""AI visibility over the API: runs and answers, exact metrics with Wilson intervals, series
as JSON and CSV, alerts, crawler visits, scopes, strict parameters and brand isolation.

Stored data is created directly with exact values on known days; the one run started
through the API really asks a scripted OpenAI-compatible engine on loopback.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client

from kb.services.tokens import api_token_create
from tests.rates import rate
from visibility.metrics import SCORE_FORMULA, SCORE_LEGEND, wilson_interval
from visibility.models import Alert, Answer, CrawlerHit, Engine, Prompt, PromptSet, Run
from visibility.scripted_engine import Reply, RuleScript, ScriptedEngine

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
BASE = "/api/v1/brands/acme-tea/visibility"
CSV_HEADER = (
    "engine,period_start,answers,failed,score,mention_rate,citation_rate,first_mention_rate,"
    "share_of_voice_rate,misstatement_rate,mention_ci95_low,citation_ci95_low,"
    "mention_ci95_high,citation_ci95_high,cost_usd\r\n"
)
WRONG_YEAR = {
    "fact_key": "founded",
    "stated": "2005",
    "expected": "1998",
    "excerpt": "Acme Tea was founded in 2005.",
}


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def token_client(brand, *scopes) -> Client:
    _, raw = api_token_create(brand=brand, scopes=list(scopes))
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def reader(brand):
    return token_client(brand, "read")


@pytest.fixture
def writer(brand):
    return token_client(brand, "read", "preview", "write")


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body


def at(day: int, hour: int = 6, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def make_run(prompt_set, engines, started_at, **fields) -> Run:
    run = Run.objects.create(
        brand=prompt_set.brand, prompt_set=prompt_set, started_at=started_at, **fields
    )
    run.engines.set(engines)
    return run


def make_answer(run, engine, prompt, repetition, **fields) -> Answer:
    return Answer.objects.create(
        run=run, engine=engine, prompt=prompt, repetition=repetition,
        language=run.prompt_set.language,
        asked_at=run.started_at + timedelta(minutes=1 + repetition), **fields,
    )  # fmt: skip


@pytest.fixture
def history(brand):
    """Two engines, one prompt set with two questions, and three runs.

    Monday 3 March 2025 (run A, both engines, 8 slots), Tuesday 4 March (run B, ChatGPT,
    1 slot) and Monday 10 March (run C, ChatGPT, 1 slot). On 3 March ChatGPT mentions the
    brand in 3 of 4 answers, cites it once, names it first twice, misstates a fact once, and
    names Twinings twice; Qwen fails once and mentions the brand in 1 of its 3 answers.
    """
    chatgpt = Engine.objects.create(
        brand=brand, name="ChatGPT", base_url="https://api.openai.example/v1", model="gpt-4o"
    )
    qwen = Engine.objects.create(
        brand=brand, name="Qwen", base_url="https://qwen.example/v1", model="qwen-max"
    )
    tea = PromptSet.objects.create(
        brand=brand, name="Tea buyers", language="en", repetitions=2,
        competitors=[{"name": "Twinings"}],
    )  # fmt: skip
    best = Prompt.objects.create(prompt_set=tea, text="Which tea brand is best?", order=0)
    buy = Prompt.objects.create(prompt_set=tea, text="Where can I buy Longjing?", order=1)

    run_a = make_run(
        tea, [chatgpt, qwen], at(3), finished_at=at(3, minute=10),
        state=Run.State.PARTIAL, trigger="schedule", expected=8,
    )  # fmt: skip
    first = make_answer(
        run_a, chatgpt, best, 0, content="Acme Tea is the best: https://tea.example/about",
        citations=["https://tea.example/about"], latency_ms=812, prompt_tokens=6,
        completion_tokens=9, cost=Decimal("0.000105"), mentioned=True, cited=True, position=1,
        first_mention=True,
    )  # fmt: skip
    make_answer(
        run_a, chatgpt, best, 1, content="Twinings, then Acme Tea.", mentioned=True,
        position=2, competitors=["Twinings"], cost=Decimal("0.000100"),
    )  # fmt: skip
    make_answer(
        run_a, chatgpt, buy, 0, content="Acme Tea was founded in 2005.", mentioned=True,
        position=1, first_mention=True, misstatements=[WRONG_YEAR], cost=Decimal("0.000100"),
    )  # fmt: skip
    make_answer(
        run_a, chatgpt, buy, 1, content="Twinings sells it.", competitors=["Twinings"],
        cost=Decimal("0.000100"),
    )  # fmt: skip
    make_answer(run_a, qwen, best, 0, ok=False, error="HTTP 500: kaput", latency_ms=30)
    make_answer(run_a, qwen, best, 1, content="No idea.")
    make_answer(
        run_a, qwen, buy, 0, content="Acme Tea.", mentioned=True, position=1, first_mention=True
    )
    make_answer(run_a, qwen, buy, 1, content="Somewhere.")

    run_b = make_run(
        tea, [chatgpt], at(4), finished_at=at(4, minute=2), state=Run.State.DONE, expected=1
    )
    make_answer(
        run_b, chatgpt, best, 0, content="Acme Tea.", mentioned=True, position=1,
        first_mention=True,
    )  # fmt: skip
    run_c = make_run(
        tea, [chatgpt], at(10), finished_at=at(10, minute=2), state=Run.State.DONE, expected=1
    )
    make_answer(run_c, chatgpt, best, 0, content="Twinings.", competitors=["Twinings"])
    return {
        "chatgpt": chatgpt, "qwen": qwen, "tea": tea, "best": best, "buy": buy,
        "runs": (run_a, run_b, run_c), "first": first,
    }  # fmt: skip


# --- runs and answers ------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_their_counts(history, reader):
    run_a, run_b, run_c = history["runs"]
    tea = history["tea"]
    response = reader.get(f"{BASE}/runs/")
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert [r["id"] for r in body["results"]] == [run_c.pk, run_b.pk, run_a.pk]
    assert body["results"][2] == {
        "id": run_a.pk,
        "prompt_set": {"id": tea.pk, "name": "Tea buyers", "language": "en"},
        "state": "partial",
        "trigger": "schedule",
        "expected": 8,
        "answered": 7,
        "failed": 1,
        "started_at": "2025-03-03T06:00:00Z",
        "finished_at": "2025-03-03T06:10:00Z",
        "engines": ["ChatGPT", "Qwen"],
    }
    assert reader.get(f"{BASE}/runs/{run_b.pk}/").json() == body["results"][1]

    page = reader.get(f"{BASE}/runs/?page=2&page_size=2").json()
    assert [r["id"] for r in page["results"]] == [run_a.pk]
    assert page["previous"].endswith("/visibility/runs/?page_size=2")


def test_a_read_has_an_etag_and_answers_304_while_current(history, reader):
    response = reader.get(f"{BASE}/runs/")
    etag = response["ETag"]
    again = reader.get(f"{BASE}/runs/", headers={"If-None-Match": etag})
    assert (again.status_code, again["ETag"]) == (304, etag)
    Run.objects.filter(pk=history["runs"][2].pk).update(state=Run.State.FAILED)
    assert reader.get(f"{BASE}/runs/", headers={"If-None-Match": etag}).status_code == 200


def test_answers_of_a_run_in_full(history, reader):
    run_a = history["runs"][0]
    body = reader.get(f"{BASE}/runs/{run_a.pk}/answers/").json()
    assert body["count"] == 8
    assert [(a["engine"], a["prompt"], a["repetition"]) for a in body["results"]] == [
        ("ChatGPT", "Which tea brand is best?", 0),
        ("ChatGPT", "Which tea brand is best?", 1),
        ("ChatGPT", "Where can I buy Longjing?", 0),
        ("ChatGPT", "Where can I buy Longjing?", 1),
        ("Qwen", "Which tea brand is best?", 0),
        ("Qwen", "Which tea brand is best?", 1),
        ("Qwen", "Where can I buy Longjing?", 0),
        ("Qwen", "Where can I buy Longjing?", 1),
    ]
    assert body["results"][0] == {
        "id": history["first"].pk,
        "engine": "ChatGPT",
        "prompt": "Which tea brand is best?",
        "repetition": 0,
        "language": "en",
        "asked_at": "2025-03-03T06:01:00Z",
        "ok": True,
        "error": "",
        "content": "Acme Tea is the best: https://tea.example/about",
        "citations": ["https://tea.example/about"],
        "latency_ms": 812,
        "prompt_tokens": 6,
        "completion_tokens": 9,
        "cost": "0.000105",
        "mentioned": True,
        "cited": True,
        "position": 1,
        "first_mention": True,
        "competitors": [],
        "misstatements": [],
    }
    # Stored before misstatements carried the fact's source: shown with an empty one.
    assert body["results"][2]["misstatements"] == [WRONG_YEAR | {"source_url": ""}]
    failed = body["results"][4]
    assert (failed["ok"], failed["error"], failed["position"], failed["cost"]) == (
        False,
        "HTTP 500: kaput",
        None,
        "0.000000",
    )


def test_answers_filter_by_engine_mention_and_outcome(history, reader):
    url = f"{BASE}/runs/{history['runs'][0].pk}/answers/"

    def slots(query: str) -> list[tuple[str, str, int]]:
        response = reader.get(f"{url}?{query}")
        assert response.status_code == 200, response.content
        return [(a["engine"], a["prompt"][:5], a["repetition"]) for a in response.json()["results"]]

    assert slots("engine=Qwen") == [
        ("Qwen", "Which", 0), ("Qwen", "Which", 1), ("Qwen", "Where", 0), ("Qwen", "Where", 1)
    ]  # fmt: skip
    assert slots("mentioned=true") == [
        ("ChatGPT", "Which", 0), ("ChatGPT", "Which", 1), ("ChatGPT", "Where", 0),
        ("Qwen", "Where", 0),
    ]  # fmt: skip
    assert slots("ok=false") == [("Qwen", "Which", 0)]
    assert slots("engine=ChatGPT&mentioned=false") == [("ChatGPT", "Where", 1)]
    assert slots("engine=Gemini") == []

    bad = problem(reader.get(f"{url}?mentioned=maybe"), 400)
    assert [e["parameter"] for e in bad["errors"]] == ["mentioned"]
    unknown = problem(reader.get(f"{url}?mentionned=true"), 400)
    assert unknown["errors"] == [
        {
            "parameter": "mentionned",
            "detail": "Unknown query parameter; this endpoint understands: "
            "engine, mentioned, ok, page, page_size.",
        }
    ]


def test_a_run_of_another_brand_or_none_is_404(history, reader, other_brand):
    other_set = PromptSet.objects.create(brand=other_brand, name="Other", language="en")
    theirs = make_run(other_set, [], at(5), expected=0)
    for path in (f"runs/{theirs.pk}/", f"runs/{theirs.pk}/answers/", "runs/999999/"):
        assert problem(reader.get(f"{BASE}/{path}"), 404)["detail"] == "No such run in this brand."


# --- starting runs ---------------------------------------------------------------------------


def test_posting_a_run_asks_the_engines_for_real(
    brand, writer, reader, django_capture_on_commit_callbacks, settings
):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]  # the scripted engine runs on loopback
    chatgpt = Engine.objects.create(
        brand=brand, name="ChatGPT", base_url="http://127.0.0.1:9/v1", model="gpt-4o",
        max_retries=0, timeout_seconds=5,
    )  # fmt: skip
    Engine.objects.create(
        brand=brand, name="Qwen", base_url="http://127.0.0.1:9/v1", model="qwen-max"
    )
    tea = PromptSet.objects.create(
        brand=brand, name="Tea buyers", language="en", repetitions=2,
        competitors=[{"name": "Twinings"}],
    )  # fmt: skip
    Prompt.objects.create(prompt_set=tea, text="Which tea brand is best?", order=0)
    Prompt.objects.create(prompt_set=tea, text="Where can I buy Longjing?", order=1)
    script = RuleScript([
        ("gpt-4o", "best", Reply("Try Twinings, then Acme Tea.")),
        ("gpt-4o", "Longjing", Reply("kaput", status=500)),
    ])  # fmt: skip

    with ScriptedEngine(script) as server:
        Engine.objects.filter(pk=chatgpt.pk).update(base_url=server.base_url)
        with django_capture_on_commit_callbacks(execute=True):
            response = post(writer, f"{BASE}/runs/", {"prompt_set": tea.pk, "engines": ["ChatGPT"]})
        asked = [(r.path, r.body["model"], r.body["messages"]) for r in server.requests]

    assert response.status_code == 202, response.content
    run = Run.objects.get()
    assert response["Location"] == f"{BASE}/runs/{run.pk}/"
    started = response.json()
    assert (started["id"], started["state"], started["trigger"], started["expected"]) == (
        run.pk, "running", "api", 4,
    )  # fmt: skip
    assert (started["engines"], started["answered"], started["failed"]) == (["ChatGPT"], 0, 0)
    assert sorted(asked, key=str) == sorted(
        [("/v1/chat/completions", "gpt-4o", [{"role": "user", "content": q}])
         for q in ("Which tea brand is best?", "Where can I buy Longjing?") for _ in range(2)],
        key=str,
    )  # fmt: skip

    done = reader.get(response["Location"]).json()
    assert (done["state"], done["answered"], done["failed"]) == ("partial", 2, 2)
    answers = reader.get(f"{BASE}/runs/{run.pk}/answers/").json()["results"]
    assert [
        (a["prompt"], a["repetition"], a["ok"], a["error"], a["content"], a["mentioned"],
         a["position"], a["first_mention"], a["competitors"])
        for a in answers
    ] == [
        ("Which tea brand is best?", 0, True, "", "Try Twinings, then Acme Tea.", True, 2,
         False, ["Twinings"]),
        ("Which tea brand is best?", 1, True, "", "Try Twinings, then Acme Tea.", True, 2,
         False, ["Twinings"]),
        ("Where can I buy Longjing?", 0, False, "HTTP 500: kaput", "", False, None, False, []),
        ("Where can I buy Longjing?", 1, False, "HTTP 500: kaput", "", False, None, False, []),
    ]  # fmt: skip
    assert {a["engine"] for a in answers} == {"ChatGPT"}
    assert answers[0]["prompt_tokens"] == 5
    assert answers[0]["completion_tokens"] == 5


def test_posting_a_run_needs_the_write_scope(history, reader):
    denied = problem(post(reader, f"{BASE}/runs/", {"prompt_set": history["tea"].pk}), 403)
    assert denied["detail"] == "This needs the 'write' scope; the credentials have read."
    assert Run.objects.count() == 3


def test_posting_a_run_of_an_unknown_or_foreign_prompt_set_is_404(brand, writer, other_brand):
    Engine.objects.create(brand=brand, name="ChatGPT", base_url="http://x.example/v1", model="m")
    foreign = PromptSet.objects.create(brand=other_brand, name="Theirs", language="en")
    Prompt.objects.create(prompt_set=foreign, text="Anything?")
    for prompt_set in (foreign.pk, 999999):
        missing = problem(post(writer, f"{BASE}/runs/", {"prompt_set": prompt_set}), 404)
        assert missing["detail"] == "No such prompt set in this brand."
    assert Run.objects.count() == 0


def test_posting_a_run_without_an_enabled_engine_is_409(brand, writer):
    Engine.objects.create(
        brand=brand, name="ChatGPT", base_url="http://x.example/v1", model="m", enabled=False
    )
    tea = PromptSet.objects.create(brand=brand, name="Tea buyers", language="en")
    Prompt.objects.create(prompt_set=tea, text="Which tea brand is best?")
    conflict = problem(post(writer, f"{BASE}/runs/", {"prompt_set": tea.pk}), 409)
    assert conflict["detail"] == "Acme Tea has no enabled engine to ask."
    assert conflict["type"] == "https://sourcebook.example/problems/conflict"

    empty = PromptSet.objects.create(brand=brand, name="Empty", language="en")
    no_questions = post(writer, f"{BASE}/runs/", {"prompt_set": empty.pk, "engines": ["ChatGPT"]})
    assert problem(no_questions, 409)["detail"] == "Empty [en] has no questions."
    assert Run.objects.count() == 0


def test_posting_a_run_validates_its_body(history, writer):
    tea = history["tea"].pk
    unknown = problem(
        post(writer, f"{BASE}/runs/", {"prompt_set": tea, "engines": ["Gemini"]}), 400
    )
    assert unknown["errors"] == [
        {
            "pointer": "/engines",
            "detail": "Acme Tea has no engine named Gemini (has: ChatGPT, Qwen).",
        }
    ]
    missing = problem(post(writer, f"{BASE}/runs/", {"engines": ["ChatGPT"]}), 400)
    assert missing["errors"] == [{"pointer": "/prompt_set", "detail": "This field is required."}]
    empty = problem(post(writer, f"{BASE}/runs/", {"prompt_set": tea, "engines": []}), 400)
    assert [e["pointer"] for e in empty["errors"]] == ["/engines"]
    form = writer.post(f"{BASE}/runs/", {"prompt_set": tea})
    assert problem(form, 415)["detail"].startswith("Unsupported media type")
    assert Run.objects.count() == 3


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_per_engine_are_exact_with_wilson_intervals(history, reader):
    response = reader.get(f"{BASE}/metrics/?since=2025-03-03&until=2025-03-03")
    assert response.status_code == 200
    body = response.json()
    assert (body["formula"], body["legend"]) == (SCORE_FORMULA, SCORE_LEGEND)
    assert (body["group"], body["since"], body["until"]) == ("engine", "2025-03-03", "2025-03-03")
    assert list(body["groups"]) == ["ChatGPT", "Qwen"]
    # ChatGPT on 3 March: 3 of 4 mentioned, 1 cited, 2 first, 1 misstated; share of voice
    # 3 brand mentions of 5 (Twinings twice); score 100 × (.4·.75 + .25·.25 + .15·.5 + .2·.6)
    # × (1 − .25) = 41.8125.
    assert body["groups"]["ChatGPT"] == {
        "answers": 4,
        "failed": 0,
        "score": 41.8,
        "cost_usd": 0.000405,
        "mention": {"count": 3, "n": 4, "rate": 0.75, "ci95": [0.3006, 0.9544]},
        "citation": {"count": 1, "n": 4, "rate": 0.25, "ci95": [0.0456, 0.6994]},
        "first_mention": {"count": 2, "n": 4, "rate": 0.5, "ci95": [0.15, 0.85]},
        "misstatement": {"count": 1, "n": 4, "rate": 0.25, "ci95": [0.0456, 0.6994]},
        "share_of_voice": {"count": 3, "n": 5, "rate": 0.6, "ci95": [0.2307, 0.8824]},
    }
    assert body["groups"]["ChatGPT"]["mention"] == rate(3, 4)
    assert body["groups"]["ChatGPT"]["share_of_voice"] == rate(3, 5)
    # Qwen: its failed answer is counted apart and left out of every rate.
    qwen = body["groups"]["Qwen"]
    assert (qwen["answers"], qwen["failed"], qwen["score"]) == (3, 1, 38.3)
    assert qwen["mention"] == {"count": 1, "n": 3, "rate": 0.3333, "ci95": [0.0615, 0.7923]}
    assert qwen["mention"] == rate(1, 3)
    assert qwen["share_of_voice"] == {"count": 1, "n": 1, "rate": 1.0, "ci95": [0.2065, 1.0]}
    assert body["all"]["mention"] == rate(4, 7)
    assert (body["all"]["answers"], body["all"]["failed"]) == (7, 1)


def test_metrics_by_prompt_and_language_over_every_day(history, reader):
    by_prompt = reader.get(f"{BASE}/metrics/?group=prompt").json()
    assert (by_prompt["since"], by_prompt["until"]) == (None, None)
    assert {k: v["mention"] for k, v in by_prompt["groups"].items()} == {
        "Where can I buy Longjing?": rate(2, 4),
        "Which tea brand is best?": rate(3, 5),
    }
    by_language = reader.get(f"{BASE}/metrics/?group=language&since=2025-03-04").json()
    assert list(by_language["groups"]) == ["en"]
    assert by_language["groups"]["en"]["mention"] == rate(1, 2)
    assert by_language["all"] == by_language["groups"]["en"]


def test_metrics_of_a_period_without_answers(history, reader):
    body = reader.get(f"{BASE}/metrics/?since=2024-01-01&until=2024-12-31").json()
    assert body["groups"] == {}
    assert body["all"] == {
        "answers": 0, "failed": 0, "score": 0.0, "cost_usd": 0.0,
        **{name: {"count": 0, "n": 0, "rate": 0.0, "ci95": [0.0, 0.0]}
           for name in ("mention", "citation", "first_mention", "misstatement", "share_of_voice")},
    }  # fmt: skip


def test_bad_metric_parameters_are_400_naming_the_parameter(brand, reader):
    bad = problem(reader.get(f"{BASE}/metrics/?since=3%20March"), 400)
    assert bad["detail"] == "A query parameter is not valid."
    assert bad["errors"] == [
        {
            "parameter": "since",
            "detail": "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        }
    ]
    impossible = problem(reader.get(f"{BASE}/metrics/series/?until=2025-02-30"), 400)
    assert [e["parameter"] for e in impossible["errors"]] == ["until"]
    backwards = problem(reader.get(f"{BASE}/metrics/?since=2025-03-10&until=2025-03-03"), 400)
    assert backwards["errors"] == [
        {"parameter": "until", "detail": "Give a day on or after 2025-03-10."}
    ]
    group = problem(reader.get(f"{BASE}/metrics/?group=country"), 400)
    assert group["errors"] == [{"parameter": "group", "detail": '"country" is not a valid choice.'}]
    period = problem(reader.get(f"{BASE}/metrics/series.csv?period=month"), 400)
    assert [e["parameter"] for e in period["errors"]] == ["period"]
    unknown = problem(reader.get(f"{BASE}/metrics/?by=engine"), 400)
    assert unknown["errors"] == [
        {
            "parameter": "by",
            "detail": "Unknown query parameter; this endpoint understands: group, since, until.",
        }
    ]


def row(engine: str, day: str, answers: int, **rates) -> dict:
    return {"engine": engine, "period_start": day, "answers": answers, **rates}


def test_series_per_day_and_per_week(history, reader):
    daily = reader.get(f"{BASE}/metrics/series/").json()
    assert (daily["period"], daily["formula"], daily["engine"]) == ("day", SCORE_FORMULA, None)
    assert [(r["engine"], r["period_start"], r["answers"], r["failed"], r["mention_rate"])
            for r in daily["series"]] == [
        ("ChatGPT", "2025-03-03", 4, 0, 0.75),
        ("ChatGPT", "2025-03-04", 1, 0, 1.0),
        ("ChatGPT", "2025-03-10", 1, 0, 0.0),
        ("Qwen", "2025-03-03", 3, 1, 0.3333),
    ]  # fmt: skip
    assert daily["series"][0] == {
        "engine": "ChatGPT",
        "period_start": "2025-03-03",
        "answers": 4,
        "failed": 0,
        "score": 41.8,
        "mention_rate": 0.75,
        "citation_rate": 0.25,
        "first_mention_rate": 0.5,
        "share_of_voice_rate": 0.6,
        "misstatement_rate": 0.25,
        "mention_ci95_low": 0.3006,
        "citation_ci95_low": 0.0456,
        "mention_ci95_high": 0.9544,
        "citation_ci95_high": 0.6994,
        "cost_usd": 0.000405,
    }

    weekly = reader.get(f"{BASE}/metrics/series/?period=week&engine=ChatGPT").json()
    assert (weekly["period"], weekly["engine"]) == ("week", "ChatGPT")
    # Monday 3 and Tuesday 4 March are one ISO week: 4 of 5 answers mention the brand.
    assert [(r["engine"], r["period_start"], r["answers"], r["mention_rate"],
             r["mention_ci95_low"], r["mention_ci95_high"]) for r in weekly["series"]] == [
        ("ChatGPT", "2025-03-03", 5, 0.8, 0.3755, 0.9638),
        ("ChatGPT", "2025-03-10", 1, 0.0, 0.0, 0.7935),
    ]  # fmt: skip
    assert [round(x, 4) for x in wilson_interval(4, 5)] == [0.3755, 0.9638]
    assert [round(x, 4) for x in wilson_interval(0, 1)] == [0.0, 0.7935]

    march_4 = reader.get(f"{BASE}/metrics/series/?period=week&since=2025-03-04&until=2025-03-09")
    assert [(r["engine"], r["period_start"], r["answers"]) for r in march_4.json()["series"]] == [
        ("ChatGPT", "2025-03-03", 1)
    ]


def test_series_as_csv(history, reader):
    response = reader.get(f"{BASE}/metrics/series.csv?period=week")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="acme-tea-visibility-week.csv"'
    )
    assert response.content.decode() == CSV_HEADER + (
        "ChatGPT,2025-03-03,5,0,47.5,0.8,0.2,0.6,0.6667,0.2,0.3755,0.0362,0.9638,0.6245,0.000405\r\n"
        "ChatGPT,2025-03-10,1,0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.7935,0.7935,0.0\r\n"
        "Qwen,2025-03-03,3,1,38.3,0.3333,0.0,0.3333,1.0,0.0,0.0615,0.0,0.7923,0.5615,0.0\r\n"
    )
    # Any Accept is served; the ETag answers 304 while the data is the same.
    again = reader.get(
        f"{BASE}/metrics/series.csv?period=week",
        headers={"Accept": "application/json", "If-None-Match": response["ETag"]},
    )
    assert again.status_code == 304
    empty = reader.get(f"{BASE}/metrics/series.csv?since=2024-01-01&until=2024-01-31")
    assert empty.content.decode() == CSV_HEADER


def test_csv_cells_cannot_run_as_formulas(brand, reader):
    tea = PromptSet.objects.create(brand=brand, name="Tea buyers", language="en")
    question = Prompt.objects.create(prompt_set=tea, text="Which tea brand is best?")
    names = ['=HYPERLINK("https://evil.example")', "+1+1", "-2", "@SUM(A1)", "Plain"]
    engines = [
        Engine.objects.create(brand=brand, name=name, base_url="http://x.example/v1", model="m")
        for name in names
    ]
    run = make_run(tea, engines, at(3), state=Run.State.DONE, expected=len(engines))
    for engine in engines:
        make_answer(run, engine, question, 0, content="Acme Tea.", mentioned=True)
    body = reader.get(f"{BASE}/metrics/series.csv").content.decode()
    assert [line.split(",2025-03-03,")[0] for line in body.splitlines()[1:]] == [
        "'+1+1", "'-2", "\"'=HYPERLINK(\"\"https://evil.example\"\")\"", "'@SUM(A1)", "Plain"
    ]  # fmt: skip
    assert reader.get(f"{BASE}/metrics/series/").json()["series"][1]["engine"] == "-2"


# --- alerts and crawlers ---------------------------------------------------------------------


def test_alerts_newest_first(history, reader):
    run_a, _, run_c = history["runs"]
    reasons = [
        {
            "code": "fact_misstated",
            "text": "The answer states 2005 for “founded”.",
            "fact": "founded",
        },
        {"code": "crawler_never_seen", "text": "No visit from ChatGPT's crawlers."},
    ]
    misstated = Alert.objects.create(
        brand=history["chatgpt"].brand, kind=Alert.Kind.MISSTATEMENT, engine=history["chatgpt"],
        prompt=history["buy"], run=run_a, fact_key="founded",
        summary="ChatGPT states 2005 for the fact “founded” (it is 1998).", reasons=reasons,
    )  # fmt: skip
    lost = Alert.objects.create(
        brand=history["chatgpt"].brand, kind=Alert.Kind.LOST_MENTION, engine=history["chatgpt"],
        prompt=history["best"], run=run_c, summary="ChatGPT stopped mentioning Acme Tea.",
        reasons=[],
    )  # fmt: skip
    Alert.objects.filter(pk=misstated.pk).update(created_at=at(3, minute=11))
    Alert.objects.filter(pk=lost.pk).update(created_at=at(10, minute=3))
    body = reader.get(f"{BASE}/alerts/").json()
    assert body["count"] == 2
    assert body["results"] == [
        {
            "id": lost.pk,
            "kind": "lost_mention",
            "engine": "ChatGPT",
            "prompt": "Which tea brand is best?",
            "fact": None,
            "first_seen": False,
            "summary": "ChatGPT stopped mentioning Acme Tea.",
            "details": {},
            "reasons": [],
            "run": run_c.pk,
            "created_at": "2025-03-10T06:03:00Z",
        },
        {
            "id": misstated.pk,
            "kind": "misstatement",
            "engine": "ChatGPT",
            "prompt": "Where can I buy Longjing?",
            "fact": "founded",
            "first_seen": False,
            "summary": "ChatGPT states 2005 for the fact “founded” (it is 1998).",
            "details": {},
            "reasons": reasons,
            "run": run_a.pk,
            "created_at": "2025-03-03T06:11:00Z",
        },
    ]


def test_crawlers_summarise_ai_agent_visits(brand, other_brand, reader):
    hits = [
        ("GPTBot", "training", "ChatGPT", at(3, 1), "/llms.txt", "llms_txt", 200),
        ("GPTBot", "training", "ChatGPT", at(4, 2), "/llms.txt", "llms_txt", 304),
        ("GPTBot", "training", "ChatGPT", at(5, 3), "/products/", "html", 200),
        ("PerplexityBot", "search", "Perplexity", at(6, 4), "/robots.txt", "robots", 200),
    ]
    for number, (agent, purpose, engine, time, path, artifact, status) in enumerate(hits):
        CrawlerHit.objects.create(
            brand=brand, agent=agent, purpose=purpose, engine=engine, time=time, path=path,
            artifact=artifact, status=status, fingerprint=f"hit-{number}",
        )  # fmt: skip
    CrawlerHit.objects.create(
        brand=other_brand, agent="ClaudeBot", purpose="training", engine="Claude",
        time=at(7), path="/", artifact="html", status=200, fingerprint="theirs",
    )  # fmt: skip
    response = reader.get(f"{BASE}/crawlers/")
    assert response.status_code == 200
    assert response.json() == [
        {
            "agent": "PerplexityBot",
            "purpose": "search",
            "engine": "Perplexity",
            "visits": 1,
            "first_visit": "2025-03-06T04:00:00Z",
            "last_visit": "2025-03-06T04:00:00Z",
            "pages": 1,
            "artifacts": {"robots": 1},
            "statuses": {"200": 1},
        },
        {
            "agent": "GPTBot",
            "purpose": "training",
            "engine": "ChatGPT",
            "visits": 3,
            "first_visit": "2025-03-03T01:00:00Z",
            "last_visit": "2025-03-05T03:00:00Z",
            "pages": 2,
            "artifacts": {"html": 1, "llms_txt": 2},
            "statuses": {"200": 2, "304": 1},
        },
    ]
    assert "ETag" in response


# --- isolation -------------------------------------------------------------------------------

READ_PATHS = (
    "runs/", "runs/{run}/", "runs/{run}/answers/", "metrics/", "metrics/series/",
    "metrics/series.csv", "alerts/", "crawlers/",
)  # fmt: skip


def test_another_brands_token_gets_the_404_of_a_missing_brand(history, other_brand):
    outsider = token_client(other_brand, "read", "preview", "write", "publish")
    run = history["runs"][0].pk
    for path in READ_PATHS:
        url = f"{BASE}/{path.format(run=run)}"
        assert problem(outsider.get(url), 404)["detail"] == "No brand 'acme-tea'."
    denied = problem(post(outsider, f"{BASE}/runs/", {"prompt_set": history["tea"].pk}), 404)
    assert denied["detail"] == "No brand 'acme-tea'."
    missing = token_client(other_brand, "read").get("/api/v1/brands/nope/visibility/runs/")
    assert problem(missing, 404)["detail"] == "No brand 'nope'."
    assert Run.objects.count() == 3


def test_reads_need_credentials(history):
    run = history["runs"][0].pk
    for path in READ_PATHS:
        response = Client().get(f"{BASE}/{path.format(run=run)}")
        assert problem(response, 401)["title"] == "Authentication required"
