"""Citation sources: every URL answers cite, by site and owner, per engine, question and week;
who is cited instead of the brand, and which of its pages are. Exact counts from stored
answers; the API and the admin dashboard show the same report."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from kb.models import BrandMembership
from kb.services.brands import membership_grant
from kb.services.tokens import api_token_create
from tests.rates import rate
from visibility.citations import BRAND, COMPETITOR, THIRD_PARTY, citation_report, site_of
from visibility.metrics import period_start
from visibility.models import Answer, Engine, Prompt, PromptSet, Run

pytestmark = pytest.mark.django_db


# Two Mondays, the later one last week: the dashboard shows the last 30 days.
FIRST_MONDAY = period_start(datetime.now(UTC).date() - timedelta(days=14), "week")


def at(day: int) -> datetime:
    """Day 3 is the first Monday, day 10 the next (as in March 2025, where it was written)."""
    return datetime.combine(FIRST_MONDAY + timedelta(days=day - 3), time(6), tzinfo=UTC)


@pytest.fixture
def cited(brand):
    """Two engines, two questions; Twinings' site is given in the prompt set.

    Day 3 (a Monday): ChatGPT cites the brand's about page and Wikipedia; then
    Twinings' shop and a BBC page (not the brand); Perplexity cites the BBC twice (two
    pages) and reddit. Day 10: ChatGPT cites the brand's about page (written in the text,
    with a trailing slash) and its Longjing page; Perplexity cites nothing; one answer
    failed.
    """
    chatgpt = Engine.objects.create(
        brand=brand, name="ChatGPT", base_url="https://api.openai.example/v1", model="gpt-4o"
    )
    perplexity = Engine.objects.create(
        brand=brand, name="Perplexity", base_url="https://pplx.example", model="sonar"
    )
    prompt_set = PromptSet.objects.create(
        brand=brand,
        name="Tea",
        language="en",
        repetitions=1,
        competitors=[{"name": "Twinings", "domains": ["twinings.co.uk"]}],
    )
    best = Prompt.objects.create(prompt_set=prompt_set, text="Best tea brand?", order=0)
    buy = Prompt.objects.create(prompt_set=prompt_set, text="Where to buy Longjing?", order=1)
    runs = {}
    for day in (3, 10):
        runs[day] = Run.objects.create(brand=brand, prompt_set=prompt_set, started_at=at(day))
        runs[day].engines.set([chatgpt, perplexity])

    def answer(day, engine, prompt, content="", citations=(), **fields):
        Answer.objects.create(
            run=runs[day],
            engine=engine,
            prompt=prompt,
            repetition=0,
            language="en",
            asked_at=at(day) + timedelta(minutes=1),
            content=content,
            citations=list(citations),
            **fields,
        )

    answer(
        3,
        chatgpt,
        best,
        "Acme Tea.",
        ["https://tea.example/about", "https://en.wikipedia.org/wiki/Longjing_tea"],
    )
    answer(
        3,
        chatgpt,
        buy,
        "See https://www.bbc.co.uk/food/tea.",
        ["https://shop.twinings.co.uk/longjing"],
    )
    answer(
        3,
        perplexity,
        best,
        "",
        [
            "https://www.bbc.co.uk/food/tea",
            "https://www.bbc.com/travel/tea",
            "https://old.reddit.com/r/tea/",
        ],
    )
    answer(
        10,
        chatgpt,
        best,
        "Acme Tea (tea.example/about/) and https://www.tea.example/products/longjing/#offer.",
    )
    answer(10, perplexity, buy, "Ask a tea shop.")
    answer(10, perplexity, best, ok=False, error="HTTP 500")
    return brand
    # fmt: skip


def test_sites_are_registrable_domains():
    assert site_of("https://shop.bbc.co.uk/x") == "bbc.co.uk"
    assert site_of("old.reddit.com/r/tea") == "reddit.com"
    assert site_of("https://alice.github.io/tea") == "alice.github.io"  # a private suffix
    assert site_of("https://www.tea.example/about") == "tea.example"  # unknown TLD: two labels
    assert site_of("http://127.0.0.1:8000/") == "127.0.0.1"
    assert site_of("mailto:x@tea.example") == ""


def test_the_report_counts_every_cited_site_by_owner_engine_question_and_week(cited):
    report = citation_report(brand=cited).as_dict()
    assert (report["answers"], report["answers_citing"]) == (5, 4)
    assert report["brand_cited"] == rate(2, 5)
    rows = {row["site"]: row for row in report["sites"]}
    assert [(r["site"], r["owner"], r["competitor"], r["answers"], r["urls"], r["instead_of_us"])
            for r in report["sites"]] == [
        ("bbc.co.uk", THIRD_PARTY, None, 2, 2, 2),
        ("tea.example", BRAND, None, 2, 3, 0),
        ("bbc.com", THIRD_PARTY, None, 1, 1, 1),
        ("reddit.com", THIRD_PARTY, None, 1, 1, 1),
        ("twinings.co.uk", COMPETITOR, "Twinings", 1, 1, 1),
        ("wikipedia.org", THIRD_PARTY, None, 1, 1, 0),
    ]  # fmt: skip
    assert rows["bbc.co.uk"]["share_of_citing_answers"] == rate(2, 4)
    assert rows["bbc.co.uk"]["engines"] == {"ChatGPT": 1, "Perplexity": 1}
    assert rows["bbc.co.uk"]["prompts"] == {"Where to buy Longjing?": 1, "Best tea brand?": 1}
    assert rows["tea.example"]["weeks"] == {at(3).date().isoformat(): 1,
                                            at(10).date().isoformat(): 1}  # fmt: skip
    # Cited instead of us: answers that cite others and not the brand.
    assert [(r["site"], r["instead_of_us"]) for r in report["instead_of_us"]] == [
        ("bbc.co.uk", 2), ("bbc.com", 1), ("reddit.com", 1), ("twinings.co.uk", 1),
    ]  # fmt: skip
    assert report["our_pages"] == [
        {"url": "tea.example/about", "answers": 2, "engines": {"ChatGPT": 2}},
        {"url": "tea.example/products/longjing", "answers": 1, "engines": {"ChatGPT": 1}},
    ]
    assert report["engines"] == [
        {"engine": "ChatGPT", "answers": 3, "answers_citing": 3, "brand_cited": rate(2, 3),
         "competitor_cited": rate(1, 3)},
        {"engine": "Perplexity", "answers": 2, "answers_citing": 1, "brand_cited": rate(0, 2),
         "competitor_cited": rate(0, 2)},
    ]  # fmt: skip
    # A period and an engine narrow it.
    later = citation_report(brand=cited, since=at(10).date(), engine="ChatGPT").as_dict()
    assert [(r["site"], r["answers"]) for r in later["sites"]] == [("tea.example", 1)]


def test_the_api_and_the_dashboard_show_the_report(cited, other_brand):
    _, raw = api_token_create(brand=cited, scopes=["read"])
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    base = f"/api/v1/brands/{cited.slug}/visibility/citations/"
    until = at(9).date().isoformat()
    body = api.get(f"{base}?top=2&until={until}").json()
    assert (body["since"], body["until"], body["engine"]) == (None, until, None)
    assert [(r["site"], r["answers"]) for r in body["sites"]] == [("bbc.co.uk", 2),
                                                                 ("bbc.com", 1)]  # fmt: skip
    assert body["brand_cited"] == rate(1, 3)
    bad = api.get(f"{base}?top=0")
    assert bad.status_code == 400
    assert bad.json()["errors"] == [
        {"parameter": "top", "detail": "Ensure this value is greater than or equal to 1."}
    ]
    # Another brand's token sees nothing of it.
    _, other = api_token_create(brand=other_brand, scopes=["read"])
    assert Client(headers={"Authorization": f"Bearer {other}"}).get(base).status_code == 404

    viewer = get_user_model().objects.create_user("editor", password="pw-edit-123",
                                                   is_staff=True)  # fmt: skip
    membership_grant(brand=cited, user=viewer, role=BrandMembership.Role.EDITOR)
    admin = Client()
    admin.force_login(viewer)
    page = admin.get(f"/admin/visibility/dashboard/{cited.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    section = html[html.index('id="citations"') : html.index('id="alerts"')]
    assert "Cited instead of us" in section and section.count("<svg") == 2
    assert "Citations per week, last 12 weeks" in section
    assert "<td>tea.example/about</td><td>2</td>" in section
    assert "<td>twinings.co.uk</td><td>Twinings</td><td>1</td>" in section


def test_a_scripted_engines_citations_are_reported_by_site(brand, settings):
    from io import StringIO

    from django.core.management import call_command

    from visibility.scripted_engine import Reply, ScriptedEngine
    from visibility.services import engine_save, prompt_set_save

    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]
    prompt_set_save(brand=brand, name="Tea", language="en", prompts=["Best tea?"], repetitions=1,
                    competitors=[{"name": "Twinings", "domains": ["twinings.co.uk"]}])  # fmt: skip
    reply = Reply(
        "Acme Tea (tea.example/about) is good.",
        citations=["https://www.twinings.co.uk/x", "https://en.wikipedia.org/wiki/Tea"],
    )
    with ScriptedEngine(lambda model, messages, attempt: reply) as server:
        engine_save(brand=brand, name="Sonar", base_url=server.base_url, model="sonar")
        call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
    report = citation_report(brand=brand).as_dict()
    assert [(r["site"], r["owner"], r["competitor"]) for r in report["sites"]] == [
        ("tea.example", BRAND, None),
        ("twinings.co.uk", COMPETITOR, "Twinings"),
        ("wikipedia.org", THIRD_PARTY, None),
    ]
    assert report["our_pages"] == [{"url": "tea.example/about", "answers": 1,
                                    "engines": {"Sonar": 1}}]  # fmt: skip
