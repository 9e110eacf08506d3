"""AI visibility end to end: the real ``openai`` client asks a scripted engine on loopback.

Exact detections in English and Chinese, exact metrics with Wilson intervals, engine
failures that never stop the other engines, one alert per change with its reasons, the
beat schedule, encrypted API keys, access-log import and the terminal report.
"""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from config.celery import app as celery_app
from kb.models import Fact
from kb.services.entities import entity_create
from kb.services.statements import statement_create
from kb.services.workflow import object_publish
from publishing.models import Target, WebhookDelivery
from visibility.access_logs import parse_lines, summarize
from visibility.crawlers import crawler_summary
from visibility.metrics import metrics_by
from visibility.models import Alert, AlertSettings, Answer, CrawlerHit, Engine, Run
from visibility.scripted_engine import Reply, RuleScript, ScriptedEngine
from visibility.services import (
    VisibilityError,
    engine_save,
    prompt_set_save,
    run_start,
    runs_resume_stalled,
)
from visibility.tasks import run_prompt_set

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"

EN_QUESTION = "Which is the best Chinese tea brand?"
ZH_QUESTION = "哪个中国茶叶品牌最好？"
EN_WRONG = (
    "Top picks: Twinings, then Acme Tea (see https://tea.example/products/longjing/). "
    "Acme Tea was founded in 2005."
)
EN_RIGHT = "Try Twinings or ACME TEA: https://shop.tea.example/ . Acme Tea was founded in 1998."
ZH_ANSWER = "推荐阿克米茶，成立于1998年；另外还有天福茗茶。"


def text(value, language="en"):
    return [{"@value": value, "@language": language}]


@pytest.fixture
def acme(brand):
    """Acme Tea with its names in two languages, a product, and two checkable facts."""
    organization = entity_create(
        brand=brand,
        types=["Organization"],
        iri="https://tea.example/#organization",
        data={"name": text("Acme Tea") + text("阿克米茶", "zh-Hans")},
    )
    product = entity_create(
        brand=brand,
        types=["Product"],
        iri="https://tea.example/products/longjing/#product",
        data={
            "name": text("Longjing") + text("龙井", "zh-Hans"),
            "image": [{"@id": "https://tea.example/img/longjing.jpg"}],
            "offers": [{"@type": ["Offer"], "price": [{"@value": "12.50"}],
                        "priceCurrency": [{"@value": "USD"}]}],
        },
    )  # fmt: skip
    for obj in (organization, product):
        object_publish(obj=obj)
    for key, value, unit, words in (
        ("founded", "1998", "", "Founded in 1998."),
        ("employees", "86", "people", "Acme Tea employs 86 people."),
    ):
        fact = statement_create(
            model=Fact, brand=brand, key=key, about=organization, statement={"en": words},
            value=value, unit=unit, source_url="https://tea.example/about/",
            source_title={"en": "About"}, as_of=date(2026, 1, 1),
        )  # fmt: skip
        object_publish(obj=fact)
    return brand


def prompt_sets(brand, repetitions=2):
    competitors = [{"name": "Twinings"}, {"name": "Ten Fu Tea", "aliases": ["天福茗茶"]}]
    return [
        prompt_set_save(brand=brand, name="Buying tea", language="en", prompts=[EN_QUESTION],
                        competitors=competitors, repetitions=repetitions),
        prompt_set_save(brand=brand, name="买茶", language="zh-Hans", prompts=[ZH_QUESTION],
                        competitors=competitors, repetitions=repetitions),
    ]  # fmt: skip


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """The scripted engines and webhook receivers of these tests listen on loopback, which
    outbound calls reach only when the operator allows it (config.egress)."""
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]
    settings.SOURCEBOOK_CREDENTIAL_ENV = ["BETA_ENGINE_KEY", "GAMMA_ENGINE_KEY"]


def engine(brand, server, name="Alpha", model="gpt-test", **fields):
    return engine_save(brand=brand, name=name, base_url=server.base_url, model=model, **fields)


SCRIPT = RuleScript([
    ("gpt-test", "best Chinese tea", [Reply(EN_WRONG), Reply(EN_RIGHT)]),
    ("gpt-test", "茶叶品牌", Reply(ZH_ANSWER, citations=["https://www.tea.example/about/"])),
])  # fmt: skip


def test_answers_are_analysed_exactly_in_both_languages(acme):
    prompt_sets(acme)
    with ScriptedEngine(SCRIPT) as server:
        engine(acme, server, api_key="sk-live-secret-9876")
        out = StringIO()
        call_command("visibility_run", "acme-tea", stdout=out, stderr=StringIO())
    assert [r.bearer_tail for r in server.requests] == ["9876"] * 4
    lines = out.getvalue().splitlines()
    # The wrong founding year in the engine's first answers alerts at once (first seen).
    assert lines[0].endswith("Buying tea [en]: 2 answers, 0 failed, 1 alert(s) — Done.")
    assert lines[1].endswith("买茶 [zh-Hans]: 2 answers, 0 failed, 0 alert(s) — Done.")
    found = {
        (a.language, a.repetition): (a.mentioned, a.cited, a.position, a.first_mention,
                                     a.competitors, [(m["fact_key"], m["stated"]) for m in
                                                     a.misstatements],
                                     a.analysis["confirmed_facts"], a.analysis["cited_urls"])
        for a in Answer.objects.all()
    }  # fmt: skip
    assert found == {
        ("en", 0): (True, True, 2, False, ["Twinings"], [("founded", "2005")], [],
                    ["https://tea.example/products/longjing/"]),
        ("en", 1): (True, True, 2, False, ["Twinings"], [], ["founded"],
                    ["https://shop.tea.example/"]),
        ("zh-Hans", 0): (True, True, 1, True, ["Ten Fu Tea"], [], ["founded"],
                         ["https://www.tea.example/about/"]),
        ("zh-Hans", 1): (True, True, 1, True, ["Ten Fu Tea"], [], ["founded"],
                         ["https://www.tea.example/about/"]),
    }  # fmt: skip
    answer = Answer.objects.get(language="en", repetition=0)
    assert answer.analysis["misstatements"][0]["excerpt"] == "Acme Tea was founded in 2005."
    assert (answer.prompt_tokens, answer.completion_tokens) == (7, 14)
    # Score = 100 × (0.40·M + 0.25·C + 0.15·F + 0.20·S) × (1 − X):
    # en: M=1, C=1, F=0, S=2/4, X=1/2 → 100 × 0.75 × 0.5 = 37.5
    # zh: M=1, C=1, F=1, S=2/4, X=0 → 100 × 0.90 = 90.0
    by_language = {k: m.as_dict() for k, m in metrics_by(brand=acme, group="language").items()}
    assert by_language["en"]["score"] == 37.5 and by_language["zh-Hans"]["score"] == 90.0
    assert by_language["en"]["misstatement"] == {
        "count": 1, "n": 2, "rate": 0.5, "ci95": [0.0945, 0.9055]
    }  # fmt: skip
    overall = metrics_by(brand=acme)["all"].as_dict()
    assert overall["mention"] == {"count": 4, "n": 4, "rate": 1.0, "ci95": [0.5101, 1.0]}
    assert overall["first_mention"] == {"count": 2, "n": 4, "rate": 0.5, "ci95": [0.15, 0.85]}
    assert overall["share_of_voice"] == {
        "count": 4, "n": 8, "rate": 0.5, "ci95": [0.2152, 0.7848]
    }  # fmt: skip
    # 100 × (0.40 + 0.25 + 0.075 + 0.10) × 0.75 = 61.875
    assert overall["score"] == 61.9

    report = StringIO()
    call_command("visibility_report", "acme-tea", "--by", "language", stdout=report)
    rows = report.getvalue().splitlines()
    assert rows[0] == "AI visibility of Acme Tea, last 30 days, by language:"
    assert [r.split()[:3] for r in rows[4:6]] == [["en", "37.5", "2"], ["zh-Hans", "90.0", "2"]]
    assert rows[7].split()[:3] == ["All", "61.9", "4"]
    assert "score = 100 × (0.40·M + 0.25·C + 0.15·F + 0.20·S) × (1 − X)" in rows


def test_a_failing_engine_never_stops_the_others_and_retries_are_bounded(acme):
    prompt_set_save(brand=acme, name="Buying tea", language="en", prompts=[EN_QUESTION],
                    repetitions=1)  # fmt: skip
    script = RuleScript([
        ("down", "*", Reply("upstream exploded", status=500)),
        ("limited", "*", [Reply("slow down", status=429, headers={"Retry-After": "0"}),
                          Reply("Acme Tea, after a pause.")]),
        ("slow", "*", Reply("too late", delay=3)),
        ("broken", "*", Reply(raw_body=b"{not json")),
        ("good", "*", Reply("Acme Tea is a fine choice.")),
    ])  # fmt: skip
    with ScriptedEngine(script) as server:
        for name in ("down", "limited", "slow", "broken", "good"):
            engine(acme, server, name=name.title(), model=name, max_retries=1, timeout_seconds=1)
        Engine.objects.filter(name="Slow").update(max_retries=0)
        call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
        requests = [r.body["model"] for r in server.requests]
    outcome = {a.engine.name: (a.ok, a.error, a.mentioned) for a in Answer.objects.all()}
    assert outcome == {
        "Down": (False, "HTTP 500: upstream exploded", False),
        "Limited": (True, "", True),
        "Slow": (False, "No answer within 1 s.", False),
        "Broken": (False, outcome["Broken"][1], False),
        "Good": (True, "", True),
    }
    assert outcome["Broken"][1].startswith("Malformed response: ")
    # max_retries=1: one retry on 5xx and 429, none on a malformed body; Slow has none.
    assert sorted(requests) == ["broken", "down", "down", "good", "limited", "limited", "slow"]
    run = Run.objects.get()
    assert (run.state, run.expected) == (Run.State.PARTIAL, 5)
    # Failed answers are counted apart, never as "not mentioned".
    metrics = metrics_by(brand=acme)["all"].as_dict()
    assert (metrics["answers"], metrics["failed"], metrics["mention"]["rate"]) == (2, 3, 1.0)


class Receiver:
    """A webhook endpoint on loopback that records what it is sent."""

    def __init__(self):
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_one_alert_per_change_with_its_reasons_by_email_and_webhook(
    acme, settings, tmp_path, django_capture_on_commit_callbacks
):
    call_command("publish", "acme-tea", "--out", str(tmp_path / "site"), stdout=StringIO())
    call_command("import_access_log", "acme-tea", str(DATA / "access-sample.log"),
                 "--skip-bad-lines", stdout=StringIO(), stderr=StringIO())  # fmt: skip
    receiver = Receiver()
    hook = Target.objects.create(brand=acme, name="alerts", kind=Target.Kind.WEBHOOK,
                                 config={"url": receiver.url}, secret="s3cret")  # fmt: skip
    AlertSettings.objects.create(brand=acme, emails="a@tea.example\nb@tea.example", webhook=hook)
    question = "Where can I buy Longjing tea?"
    prompt_set_save(brand=acme, name="Longjing", language="en", prompts=[question], repetitions=1)
    answers = iter(
        [
            "Acme Tea sells Longjing; Acme Tea was founded in 1998.",  # 1: mentioned
            "Try Twinings.",  # 2: no longer mentioned → alert
            "Try Twinings again.",  # 3: still not mentioned → no new alert
            "Acme Tea, founded in 2005, sells it.",  # 4: a new misstatement → alert
            "Acme Tea, founded in 2005.",  # 5: the same misstatement → nothing new
        ]
    )
    try:
        with ScriptedEngine(lambda model, messages, attempt: Reply(next(answers))) as server:
            engine(acme, server, crawler="ChatGPT")
            for _ in range(5):
                with django_capture_on_commit_callbacks(execute=True):
                    call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
    finally:
        receiver.close()
    alerts = list(Alert.objects.order_by("created_at"))
    assert [(a.kind, a.fact_key, a.run.pk) for a in alerts] == [
        ("lost_mention", "", Run.objects.order_by("started_at")[1].pk),
        ("misstatement", "founded", Run.objects.order_by("started_at")[3].pk),
    ]
    lost, wrong = alerts
    assert lost.summary == (
        "Alpha stopped mentioning Acme Tea for “Where can I buy Longjing tea?” (0 of 1 answers; "
        "1 of 1 in the previous run)."
    )
    reasons = {r["code"]: r["text"] for r in lost.reasons}
    assert list(reasons) == ["fact_missing", "page_changed", "robots_blocks", "llms_txt_links",
                             "crawler_last_visit"]  # fmt: skip
    assert reasons["fact_missing"] == (
        "The fact “founded” was stated correctly before and is missing now."
    )
    assert reasons["page_changed"].startswith("Longjing (Product) was changed and published on ")
    assert reasons["robots_blocks"] == (
        "robots.txt of release 1 blocks GPTBot (training crawler of OpenAI)."
    )
    assert reasons["llms_txt_links"] == "llms.txt links Longjing."
    last_chatgpt = CrawlerHit.objects.filter(engine="ChatGPT").order_by("-time").first()
    assert reasons["crawler_last_visit"] == (
        f"ChatGPT's crawlers last fetched the site on {last_chatgpt.time:%Y-%m-%d %H:%M} UTC "
        f"({last_chatgpt.agent}, {last_chatgpt.path}, HTTP {last_chatgpt.status})."
    )
    assert wrong.summary == (
        "Alpha states 2005 for the fact “founded” (it is 1998) when asked "
        "“Where can I buy Longjing tea?”."
    )
    assert wrong.reasons[0] == {
        "code": "fact_misstated",
        "text": "The answer states 2005 for “founded”; the fact says 1998: "
        "“Acme Tea, founded in 2005, sells it.”",
        "fact": "founded",
    }
    assert wrong.details == {"stated": "2005", "expected": "1998",
                             "excerpt": "Acme Tea, founded in 2005, sells it.",
                             "source_url": "https://tea.example/about/"}  # fmt: skip
    assert not lost.first_seen and not wrong.first_seen
    # One digest per run with new alerts, by email and webhook.
    assert [m.subject for m in mail.outbox] == [
        "[Acme Tea] Alpha stopped mentioning Acme Tea (1 question)",
        "[Acme Tea] Alpha misstates “founded”: 2005 instead of 1998 (1 question)",
    ]
    assert mail.outbox[0].to == ["a@tea.example", "b@tea.example"]
    assert "  - robots.txt of release 1 blocks GPTBot" in mail.outbox[0].body
    assert mail.outbox[1].body.splitlines()[2:4] == [
        "Alpha misstates “founded”: 2005 instead of 1998 (1 question)",
        f"  - {wrong.summary}",
    ]
    deliveries = WebhookDelivery.objects.filter(event="visibility.alerts").order_by("created_at")
    assert [d.state for d in deliveries] == ["delivered", "delivered"]
    assert [
        (b["type"], [(g["kind"], g["fact"], len(g["alerts"])) for g in b["groups"]])
        for b in receiver.bodies
    ] == [
        ("visibility.alerts", [("lost_mention", None, 1)]),
        ("visibility.alerts", [("misstatement", "founded", 1)]),
    ]


def test_each_prompt_set_runs_on_its_beat_schedule(acme, django_capture_on_commit_callbacks):
    prompt_set = prompt_set_save(brand=acme, name="Weekly", language="en",
                                 prompts=[EN_QUESTION], repetitions=1, schedule="30 5 * * 1")  # fmt: skip
    task = PeriodicTask.objects.get(task="visibility.run_prompt_set")
    assert (task.args, task.enabled, str(task.crontab.minute), str(task.crontab.hour),
            str(task.crontab.day_of_week)) == (f"[{prompt_set.pk}]", True, "30", "5", "1")  # fmt: skip
    prompt_set = prompt_set_save(brand=acme, name="Weekly", language="en", schedule="0 7 * * *")
    task = PeriodicTask.objects.get(task="visibility.run_prompt_set")  # updated, not doubled
    assert (str(task.crontab.minute), str(task.crontab.hour)) == ("0", "7")
    # Celery beat's database scheduler reads it as a crontab entry for this task.
    entry = ModelEntry(task, app=celery_app)
    assert (entry.task, entry.args, entry.schedule.hour, entry.schedule.minute) == (
        "visibility.run_prompt_set",
        [prompt_set.pk],
        {7},
        {0},
    )
    with pytest.raises(VisibilityError, match="not a crontab line: give 5 fields"):
        prompt_set_save(brand=acme, name="Weekly", language="en", schedule="daily")
    with pytest.raises(VisibilityError, match="'fr' is not one of Acme Tea's languages"):
        prompt_set_save(brand=acme, name="French", language="fr")
    # What beat triggers: a run over every enabled engine, its answers analysed.
    with ScriptedEngine(RuleScript([], default=Reply("Acme Tea."))) as server:
        engine(acme, server)
        with django_capture_on_commit_callbacks(execute=True):
            run_prompt_set.delay(prompt_set.pk)
    run = Run.objects.get()
    assert (run.trigger, run.state, run.answers.filter(mentioned=True).count()) == (
        "schedule",
        Run.State.DONE,
        1,
    )


def test_api_keys_are_stored_encrypted_or_read_from_the_environment(acme, monkeypatch):
    prompt_set_save(brand=acme, name="Buying tea", language="en", prompts=[EN_QUESTION],
                    repetitions=1)  # fmt: skip
    with ScriptedEngine(RuleScript([], default=Reply("Acme Tea."))) as server:
        stored = engine(acme, server, api_key="sk-live-secret-4321")
        from_env = engine(acme, server, name="Beta", api_key_env="BETA_ENGINE_KEY")
        unset = engine(acme, server, name="Gamma", api_key_env="GAMMA_ENGINE_KEY")
        monkeypatch.setenv("BETA_ENGINE_KEY", "sk-from-env-5555")
        call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
    assert "sk-live-secret-4321" not in stored.api_key_encrypted
    assert stored.api_key_encrypted.startswith("gAAAAA")  # a Fernet token
    assert sorted(r.bearer_tail for r in server.requests) == ["4321", "5555"]
    assert Answer.objects.get(engine=unset).error == (
        "The environment variable GAMMA_ENGINE_KEY (API key of Gamma) is not set."
    )
    assert Answer.objects.get(engine=from_env).ok


def test_access_logs_import_atomically_and_summarize_per_agent(acme):
    log = DATA / "access-sample.log"
    with pytest.raises(CommandError) as refused:
        call_command("import_access_log", "acme-tea", str(log), stdout=StringIO())
    assert "Nothing was imported: 2 line(s) could not be read." in str(refused.value)
    assert "access-sample.log:10: " in str(refused.value)
    assert CrawlerHit.objects.count() == 0
    out = StringIO()
    call_command("import_access_log", "acme-tea", str(log), "--skip-bad-lines", stdout=out,
                 stderr=StringIO())  # fmt: skip
    parsed = parse_lines(log.read_text(encoding="utf-8").splitlines(), log.name)
    expected = [s for s in summarize(parsed.records)]
    ai = sum(s.visits for s in expected)
    assert out.getvalue().strip() == (
        f"Read 28 requests: {ai} by AI agents, {ai} new, 0 already imported; "
        "skipped 2 unreadable line(s)."
    )
    ours = crawler_summary(brand=acme)
    assert [(s.agent, s.visits, s.last_visit, s.artifacts, s.statuses) for s in ours] == [
        (s.agent, s.visits, s.last_visit, dict(sorted(s.artifacts.items())),
         dict(sorted(s.statuses.items())))
        for s in expected
    ]  # fmt: skip
    again = StringIO()
    call_command("import_access_log", "acme-tea", str(DATA / "access-sample.jsonl"),
                 "--skip-bad-lines", stdout=again, stderr=StringIO())  # fmt: skip
    assert f"{ai} by AI agents, 0 new, {ai} already imported" in again.getvalue()


def test_a_run_whose_tasks_were_lost_is_resumed_without_asking_twice(acme):
    prompt_set = prompt_set_save(brand=acme, name="Buying tea", language="en",
                                 prompts=[EN_QUESTION, ZH_QUESTION], repetitions=2)  # fmt: skip
    with ScriptedEngine(RuleScript([], default=Reply("Acme Tea."))) as server:
        alpha = engine(acme, server)
        run = run_start(prompt_set=prompt_set, queue=False)  # as if the broker lost the tasks
        Answer.objects.create(run=run, engine=alpha, prompt=prompt_set.prompts.first(),
                              repetition=0, language="en", asked_at=timezone.now(),
                              content="Acme Tea.", mentioned=True)  # fmt: skip
        assert runs_resume_stalled() == 0  # too recent to call stalled
        an_hour_ago = timezone.now() - timedelta(hours=1)
        Run.objects.filter(pk=run.pk).update(started_at=an_hour_ago)
        Answer.objects.update(asked_at=an_hour_ago)
        assert runs_resume_stalled() == 1
    run.refresh_from_db()
    assert (run.state, run.answers.count(), len(server.requests)) == (Run.State.DONE, 4, 3)


def test_removing_a_question_keeps_its_answers(acme):
    prompt_set = prompt_set_save(brand=acme, name="Buying tea", language="en",
                                 prompts=[EN_QUESTION, "Old question?"], repetitions=1)  # fmt: skip
    with ScriptedEngine(RuleScript([], default=Reply("Acme Tea."))) as server:
        engine(acme, server)
        call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
        prompt_set_save(brand=acme, name="Buying tea", language="en", prompts=[EN_QUESTION])
        call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
    assert Answer.objects.filter(prompt__text="Old question?").count() == 1
    assert [r.expected for r in Run.objects.order_by("started_at")] == [2, 1]
    assert prompt_set.prompts.get(text="Old question?").active is False


def test_competitors_are_checked_and_a_deleted_prompt_set_leaves_no_schedule(acme):
    with pytest.raises(VisibilityError, match="Competitor 2 needs a name."):
        prompt_set_save(brand=acme, name="X", language="en", competitors=[{"name": "A"}, "B"])
    prompt_set = prompt_set_save(brand=acme, name="X", language="en", prompts=[EN_QUESTION])
    assert PeriodicTask.objects.filter(task="visibility.run_prompt_set").count() == 1
    prompt_set.delete()
    assert PeriodicTask.objects.filter(task="visibility.run_prompt_set").count() == 0
