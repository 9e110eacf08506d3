"""The scripted OpenAI-compatible engine, driven through the real `openai` client over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from visibility.scripted_engine import (
    DEMO_FACTS_FILE,
    DEMO_OTHER_CITATIONS,
    Reply,
    RuleScript,
    ScriptedEngine,
    count_tokens,
    demo_facts,
    demo_reply,
)

API_KEY = "sk-test-1234"
ROOT = Path(__file__).resolve().parent.parent
CITED = ["https://www.westlakeleaf.example/about/annual-report-2025/", "https://tea.example/"]

SCRIPT = RuleScript(
    [
        ("gpt-4o", "best tea", Reply("Try West Lake Longjing from Hangzhou.")),
        ("sonar*", "*", Reply("Westlake Leaf Tea grows Longjing.", citations=CITED)),
        ("*", "中文", Reply("西湖叶茶 sells Longjing 龙井。")),
        ("*", "busy", [Reply("slow down", status=429, headers={"Retry-After": "1"}), Reply("ok")]),
        ("*", "boom", Reply("kaput", status=500)),
        ("*", "garbled", Reply(raw_body=b"{not json")),
        ("*", "slow", Reply("too late", delay=30)),
    ],
    default=Reply("No idea."),
)


@pytest.fixture
def engine() -> Iterator[ScriptedEngine]:
    with ScriptedEngine(SCRIPT) as running:
        yield running


def client(engine: ScriptedEngine, **options: object) -> openai.OpenAI:
    options = {"max_retries": 0, "timeout": 5.0, **options}
    return openai.OpenAI(base_url=engine.base_url, api_key=API_KEY, **options)  # type: ignore[arg-type]


def ask(engine: ScriptedEngine, question: str, model: str = "gpt-4o", **options: object):
    return client(engine, **options).chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}]
    )


def answer(engine: ScriptedEngine, question: str, model: str = "gpt-4o") -> str | None:
    return ask(engine, question, model=model).choices[0].message.content


def test_normal_answer_has_exact_content_and_usage(engine):
    completion = ask(engine, "What is the best tea for a beginner?")

    assert engine.base_url == f"http://127.0.0.1:{engine.port}/v1"
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Try West Lake Longjing from Hangzhou."
    assert completion.choices[0].finish_reason == "stop"
    # Prompt: 8 words; answer: 6 words.
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (8, 6, 14)
    assert completion.model_extra == {}  # no citations field unless scripted
    (request,) = engine.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.body["model"] == "gpt-4o"
    assert request.body["messages"] == [
        {"role": "user", "content": "What is the best tea for a beginner?"}
    ]


def test_citations_are_exposed_as_extra_fields(engine):
    completion = ask(engine, "Who grows Longjing?", model="sonar-pro")

    assert completion.model_extra["citations"] == CITED
    assert completion.citations == CITED  # pydantic extra="allow": also an attribute
    assert completion.model_extra["search_results"] == [
        {"url": CITED[0], "title": "Annual report 2025"},
        {"url": CITED[1], "title": "tea.example"},
    ]


def test_chinese_tokens_count_one_per_character(engine):
    completion = ask(engine, "请用中文推荐")

    assert completion.choices[0].message.content == "西湖叶茶 sells Longjing 龙井。"
    # Prompt: 6 CJK characters; answer: 西湖叶茶 + 龙井。 (7) + "sells Longjing" (2).
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 9)
    assert count_tokens("Ｈｉ，西湖 tea") == 6  # full-width forms count per character too


def test_rate_limit_then_success_honours_retry_after(engine):
    started = time.monotonic()
    completion = ask(engine, "are you busy?", max_retries=1)

    assert completion.choices[0].message.content == "ok"
    assert time.monotonic() - started >= 0.9  # waited the scripted Retry-After: 1
    first, second = engine.requests
    assert first.body == second.body
    assert (
        first.headers["x-stainless-retry-count"],
        second.headers["x-stainless-retry-count"],
    ) == (
        "0",
        "1",
    )


def test_rate_limit_without_retries_raises_rate_limit_error(engine):
    with pytest.raises(openai.RateLimitError) as caught:
        ask(engine, "busy?")
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body == {
        "message": "slow down",
        "type": "rate_limit_error",
        "code": "rate_limit_exceeded",
    }


def test_server_error_raises_internal_server_error(engine):
    with pytest.raises(openai.InternalServerError) as caught:
        ask(engine, "boom")
    assert caught.value.status_code == 500
    assert caught.value.body == {"message": "kaput", "type": "server_error", "code": "server_error"}
    assert len(engine.requests) == 1


def test_malformed_body_raises_json_decode_error(engine):
    # The client parses any application/json body with response.json(): the decoder's own
    # error escapes, not an openai exception.
    with pytest.raises(json.JSONDecodeError):
        ask(engine, "garbled")


def test_slow_answer_times_out_and_server_still_stops_quickly():
    running = ScriptedEngine(SCRIPT).start()
    try:
        with pytest.raises(openai.APITimeoutError):
            ask(running, "slow", timeout=0.5)
    finally:
        started = time.monotonic()
        running.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(RuntimeError):
        running.base_url  # noqa: B018 - stopped engines have no address


def test_authorization_is_recorded_without_the_secret(engine):
    ask(engine, "anything")

    (request,) = engine.requests
    assert request.bearer is True
    assert request.bearer_tail == "1234"
    assert "authorization" not in request.headers
    assert API_KEY not in repr(engine.requests)
    assert answer(engine, "anything else") == "No idea."  # the default reply


def test_mapping_script_attempts_models_and_path_without_v1():
    script = {
        "hello": Reply("hi"),
        ("gpt-4o-mini", "flaky"): [Reply("down", status=503), "up"],
    }
    with ScriptedEngine(script) as running:
        assert [m.id for m in client(running).models.list()] == ["gpt-4o-mini"]
        bare = openai.OpenAI(base_url=running.base_url.removesuffix("/v1"), api_key=API_KEY)
        reply = bare.chat.completions.create(
            model="x", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content == "hi"
        assert running.requests[-1].path == "/chat/completions"
        with pytest.raises(openai.InternalServerError):
            ask(running, "flaky", model="gpt-4o-mini")
        assert answer(running, "flaky", "gpt-4o-mini") == "up"  # attempt 1
        with pytest.raises(openai.NotFoundError):  # unscripted: loud and not retried
            ask(running, "flaky", model="other-model")


# --- the demo answers -------------------------------------------------------------------------

QUESTIONS = [f"Which Chinese tea brand should I buy? (question {i})" for i in range(200)]


def mentions(day: int, model: str = "demo-chat") -> int:
    return sum("Westlake Leaf Tea" in demo_reply(model, q, day).content for q in QUESTIONS)


def test_demo_reply_is_deterministic():
    assert demo_reply("demo-chat", "best green tea?", 3) == demo_reply(
        "demo-chat", "best green tea?", 3
    )
    assert demo_reply("demo-chat", QUESTIONS[0], 0) != demo_reply("demo-chat", QUESTIONS[0], 1)


def test_demo_mention_rate_rises_over_days():
    assert (mentions(0), mentions(20)) == (60, 147)  # p = 0.35 and 0.75


def test_demo_answers_in_chinese_for_chinese_questions():
    replies = [demo_reply("demo-chat", f"推荐哪个中国茶品牌？（问题{i}）", 10) for i in range(50)]

    assert all("值得考虑的中国茶品牌有" in r.content for r in replies)
    assert any("西湖叶茶" in r.content for r in replies)
    assert not any("Westlake Leaf Tea" in r.content for r in replies)
    assert any("天福茗茶" in r.content for r in replies)


def test_demo_citations_only_from_search_models():
    def cited(model: str) -> int:
        return sum(bool(demo_reply(model, q, 5).citations) for q in QUESTIONS)

    assert cited("demo-chat") == 0
    assert cited("demo-search") == 200
    assert 0 < cited("sonar-demo") < 200
    replies = [demo_reply("demo-search", q, 5).citations for q in QUESTIONS]
    # The brand's page first, then another site (the citation-sources report has both).
    assert all(c[0].startswith("https://www.westlakeleaf.example/") for c in replies)
    assert {c[1] for c in replies} == set(DEMO_OTHER_CITATIONS)


def test_demo_facts_come_from_the_knowledge_base_with_occasional_misstatements():
    kb = {f["key"]: f["value"] for f in json.loads(DEMO_FACTS_FILE.read_text(encoding="utf-8"))}
    assert demo_facts() == {
        k: kb[k] for k in ("founded", "garden-area", "employees", "export-countries")
    }
    texts = [demo_reply("demo-chat", q, 20).content for q in QUESTIONS]
    founded = [t for t in texts if "was founded in Hangzhou in" in t]
    assert sum("in 1998." in t for t in founded) == 23
    assert sum("in 2005." in t for t in founded) == 5  # the scripted misstatement


def test_main_serves_the_demo_over_http():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "visibility.scripted_engine",
            "--port",
            "0",
            "--demo",
            "--day",
            "20",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        demo = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, timeout=5)
        completion = demo.chat.completions.create(
            model="demo-search", messages=[{"role": "user", "content": QUESTIONS[0]}]
        )
        expected = demo_reply("demo-search", QUESTIONS[0], 20)
        assert completion.choices[0].message.content == expected.content
        assert completion.model_extra["citations"] == list(expected.citations)
        assert [m.id for m in demo.models.list()] == ["demo-chat", "demo-search", "sonar-demo"]
    finally:
        process.terminate()
        process.wait(timeout=5)
