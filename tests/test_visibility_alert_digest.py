"""Alerts when first seen, grouped per engine and cause, delivered as one digest per run.

Two scripted engines answer three questions on loopback; the real ``openai`` client asks.
"""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from kb.models import Fact
from kb.services.entities import entity_create
from kb.services.statements import statement_create
from kb.services.workflow import object_publish
from publishing.models import Target, WebhookDelivery
from tests.test_visibility_runs import Receiver
from visibility.alerts import alert_groups, alerts_email_send
from visibility.models import Alert, AlertSettings, Run
from visibility.scripted_engine import Reply, RuleScript, ScriptedEngine
from visibility.services import engine_save, prompt_set_save

pytestmark = pytest.mark.django_db
QUESTIONS = ["Which green tea brand is best?", "Where to buy Longjing?", "Who grows Longjing?"]
SCRIPT = RuleScript([
    # Alpha never names the brand for two questions and gets the year wrong in the third.
    ("alpha-model", "best", Reply("Try Twinings.")),
    ("alpha-model", "buy", Reply("Try Twinings or Teavana.")),
    ("alpha-model", "grows", Reply("Acme Tea grows it; Acme Tea was founded in 2005.")),
    # Beta names it everywhere, with the same wrong year, and once another one.
    ("beta-model", "best", Reply("Acme Tea, founded in 2005, is best.")),
    ("beta-model", "buy", Reply("Buy from Acme Tea (founded in 2005).")),
    ("beta-model", "grows", Reply("Acme Tea, founded in 2007, grows it.")),
])  # fmt: skip


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]


@pytest.fixture
def acme(brand):
    organization = entity_create(
        brand=brand, types=["Organization"], iri="https://tea.example/#organization",
        data={"name": [{"@value": "Acme Tea", "@language": "en"}]},
    )  # fmt: skip
    object_publish(obj=organization)
    fact = statement_create(
        model=Fact, brand=brand, key="founded", about=organization,
        statement={"en": "Acme Tea was founded in 1998."}, value="1998",
        source_url="https://tea.example/about/", source_title={"en": "About"},
        as_of=date(2026, 1, 1),
    )  # fmt: skip
    object_publish(obj=fact)
    return brand


def test_first_answers_alert_grouped_per_engine_and_cause_in_one_digest(
    acme, django_capture_on_commit_callbacks
):
    receiver = Receiver()
    hook = Target.objects.create(brand=acme, name="alerts", kind=Target.Kind.WEBHOOK,
                                 config={"url": receiver.url}, secret="s3cret")  # fmt: skip
    AlertSettings.objects.create(brand=acme, emails="team@tea.example", webhook=hook)
    prompt_set_save(brand=acme, name="Buying", language="en", prompts=QUESTIONS, repetitions=1)
    try:
        with ScriptedEngine(SCRIPT) as server:
            engine_save(brand=acme, name="Alpha", base_url=server.base_url, model="alpha-model")
            engine_save(brand=acme, name="Beta", base_url=server.base_url, model="beta-model")
            for _ in range(2):  # the second run sees the same: nothing new
                with django_capture_on_commit_callbacks(execute=True):
                    call_command("visibility_run", "acme-tea", stdout=StringIO(),
                                 stderr=StringIO())  # fmt: skip
    finally:
        receiver.close()

    first_run, second_run = Run.objects.order_by("started_at")
    alerts = Alert.objects.filter(run=first_run)
    assert sorted((a.engine.name, a.kind, a.fact_key, a.prompt.text, a.first_seen)
                  for a in alerts) == [
        ("Alpha", "misstatement", "founded", "Who grows Longjing?", True),
        ("Alpha", "not_mentioned", "", "Where to buy Longjing?", True),
        ("Alpha", "not_mentioned", "", "Which green tea brand is best?", True),
        ("Beta", "misstatement", "founded", "Where to buy Longjing?", True),
        ("Beta", "misstatement", "founded", "Which green tea brand is best?", True),
        ("Beta", "misstatement", "founded", "Who grows Longjing?", True),
    ]  # fmt: skip
    assert not Alert.objects.filter(run=second_run).exists()
    not_mentioned = alerts.get(kind="not_mentioned", prompt__text=QUESTIONS[0])
    assert not_mentioned.summary == (
        "Alpha does not mention Acme Tea when asked “Which green tea brand is best?” "
        "(0 of 1 answers; its first answers to this question)."
    )
    assert not_mentioned.details == {"answers": 1, "mentioned": 0}

    titles = sorted(group.title for group in alert_groups(alerts))
    assert titles == [
        "Alpha does not mention Acme Tea (2 questions, first answers)",
        "Alpha misstates “founded”: 2005 instead of 1998 (1 question, first answers)",
        "Beta misstates “founded”: 2005, 2007 instead of 1998 (3 questions, first answers)",
    ]
    # One email for the run, every group in it, each alert marked as emailed.
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["team@tea.example"]
    assert email.subject.startswith("[Acme Tea] ") and email.subject.endswith(" and 2 more")
    assert email.body.startswith("6 alerts from the run of “Buying” started ")
    assert sorted(line for line in email.body.splitlines() if line in titles) == titles
    assert not alerts.filter(emailed_at__isnull=True).exists()
    assert alerts_email_send(run_id=first_run.pk) is False  # sent once, whatever retries
    # One webhook event for the run, grouped the same way.
    deliveries = WebhookDelivery.objects.filter(event="visibility.alerts")
    assert [d.state for d in deliveries] == ["delivered"]
    (body,) = receiver.bodies
    assert (body["type"], body["brand"], body["run"], body["prompt_set"]) == (
        "visibility.alerts", "acme-tea", first_run.pk, "Buying",
    )  # fmt: skip
    assert sorted((g["engine"], g["kind"], g["fact"], g["first_seen"], len(g["alerts"]))
                  for g in body["groups"]) == [
        ("Alpha", "misstatement", "founded", True, 1),
        ("Alpha", "not_mentioned", None, True, 2),
        ("Beta", "misstatement", "founded", True, 3),
    ]  # fmt: skip
    beta = next(g for g in body["groups"] if g["engine"] == "Beta")
    assert {a["details"]["stated"] for a in beta["alerts"]} == {"2005", "2007"}
    assert {a["details"]["source_url"] for a in beta["alerts"]} == {"https://tea.example/about/"}
