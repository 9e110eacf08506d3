"""The visibility admin: per-brand isolation, the dashboard's exact numbers, the SVG trend
chart, the CSV export, API keys that never come back, prompt sets saved through the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from kb.models import BrandMembership
from kb.services.brands import membership_grant
from visibility.metrics import SCORE_FORMULA, SCORE_LEGEND
from visibility.models import (
    Alert,
    AlertSettings,
    Answer,
    CrawlerHit,
    Engine,
    Prompt,
    PromptSet,
    Run,
)
from visibility.secrets import secret_decrypt
from visibility.services import engine_save, prompt_set_save, schedule_name

pytestmark = pytest.mark.django_db

HOSTILE_ENGINE = "Leaf <b>&</b> Bot"  # escaped everywhere, in HTML and in the SVG
HOSTILE_ESCAPED = "Leaf &lt;b&gt;&amp;&lt;/b&gt; Bot"
FORMULA_ENGINE = "=2+3 Engine"  # a spreadsheet formula if the CSV did not guard it
PLAIN_KEY = "sk-live-PLAIN-KEY-0123456789"
CHANGELISTS = ("engine", "promptset", "run", "answer", "alert", "alertsettings", "crawlerhit")


def staff(username, brand, role):
    user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=True)
    membership_grant(brand=brand, user=user, role=role)
    return user


def dashboard_as_editor(brand) -> str:
    """The brand's visibility dashboard, as an editor of the brand sees it."""
    from django.test import Client

    client = Client()
    client.force_login(staff("ed", brand, BrandMembership.Role.EDITOR))
    return client.get(f"/admin/visibility/dashboard/{brand.pk}/").content.decode()


@pytest.fixture
def editor(brand):
    return staff("ed", brand, BrandMembership.Role.EDITOR)


@pytest.fixture
def brand_admin(brand):
    return staff("boss", brand, BrandMembership.Role.ADMIN)


@pytest.fixture
def outsider(other_brand):
    """An editor of another brand: must see nothing of ``brand``."""
    return staff("stranger", other_brand, BrandMembership.Role.EDITOR)


@pytest.fixture
def days():
    """Tuesday and Thursday of last week and this week's Monday: 3 days, 2 ISO weeks."""
    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday() + 7)
    return monday + timedelta(days=1), monday + timedelta(days=3), monday + timedelta(days=7)


def at(day, hour=10):
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def history(brand, days):
    """A known data set: 8 answers of the hostile engine over 3 days, 1 of the formula engine.

    Hostile engine, the last 30 days (7 answers ok, 1 failed):
      M = 5/7, C = 3/7, F = 4/7, S = 5 / (5 + 5 competitor mentions) = 1/2, X = 1/7
      score = 100 × (0.40·5/7 + 0.25·3/7 + 0.15·4/7 + 0.20·1/2) × (1 − 1/7)
            = 100 × (3.35/7 + 0.1) × 6/7 = 49.59… → 49.6
    Formula engine (1 answer): M = 1, C = 0, F = 1, S = 1, X = 0 → 100 × 0.75 = 75.0
    """
    hostile = engine_save(brand=brand, name=HOSTILE_ENGINE, base_url="https://a.example/v1",
                          model="m1")  # fmt: skip
    formula = engine_save(brand=brand, name=FORMULA_ENGINE, base_url="https://b.example/v1",
                          model="m2")  # fmt: skip
    prompt_set = prompt_set_save(
        brand=brand,
        name="Buying tea",
        language="en",
        prompts=["Which tea brand is best?", "Where can I buy Longjing?"],
        competitors=[{"name": "Teavana"}, {"name": "Twinings"}],
        repetitions=2,
    )
    first, second = prompt_set.prompts.order_by("order")
    wrong = [{"fact_key": "founded", "stated": "2005", "expected": "1998",
              "excerpt": "Acme Tea was founded in 2005."}]  # fmt: skip
    # (day, engine, prompt, repetition, ok, mentioned, cited, first, competitors, misstatements)
    slots = [
        (0, hostile, first, 0, True, True, True, True, ["Teavana"], []),
        (0, hostile, first, 1, True, True, False, False, ["Teavana"], wrong),
        (0, hostile, second, 0, True, False, False, False, ["Twinings"], []),
        (0, hostile, second, 1, False, False, False, False, [], []),
        (0, formula, first, 0, True, True, False, True, [], []),
        (1, hostile, first, 0, True, True, True, True, [], []),
        (1, hostile, second, 0, True, True, False, True, [], []),
        (2, hostile, first, 0, True, False, False, False, ["Teavana", "Twinings"], []),
        (2, hostile, second, 0, True, True, True, True, [], []),
    ]  # fmt: skip
    runs = {}
    for index, day in enumerate(days):
        runs[index] = Run.objects.create(brand=brand, prompt_set=prompt_set, state=Run.State.DONE,
                                         expected=4, started_at=at(day, 6))  # fmt: skip
    for day, engine, prompt, repetition, ok, mentioned, cited, first_, competitors, wrong_ in slots:
        Answer.objects.create(
            run=runs[day], engine=engine, prompt=prompt, repetition=repetition, language="en",
            asked_at=at(days[day]), ok=ok, error="" if ok else "HTTP 500: kaput",
            content="Acme Tea was founded in 2005." if wrong_ else "Some answer.",
            mentioned=mentioned, cited=cited, first_mention=first_, competitors=competitors,
            misstatements=wrong_, cost=Decimal("0.002") if ok else Decimal(0),
        )  # fmt: skip
    Alert.objects.create(
        brand=brand, kind=Alert.Kind.MISSTATEMENT, engine=hostile, prompt=first, run=runs[0],
        fact_key="founded", summary=f"{HOSTILE_ENGINE} states 2005 for founded",
        reasons=[{"code": "fact_misstated", "text": "The answer states 2005; the fact says 1998."},
                 {"code": "crawler_never_seen", "text": "No visit from ChatGPT's crawlers."}],
    )  # fmt: skip
    for number, (agent, path, status) in enumerate([
        ("GPTBot", "/llms.txt", 200), ("GPTBot", "/products/longjing/index.html.md", 200),
        ("GPTBot", "/about/index.html.md", 404),
    ]):  # fmt: skip
        CrawlerHit.objects.create(
            brand=brand, time=at(days[2], 8 + number), agent=agent, purpose="training",
            engine="ChatGPT", path=path, artifact="llms.txt" if path == "/llms.txt" else "markdown",
            status=status, fingerprint=f"hit-{number}",
        )  # fmt: skip
    AlertSettings.objects.create(brand=brand, emails="team@tea.example")
    return {"hostile": hostile, "formula": formula, "prompt_set": prompt_set, "runs": runs}


def dashboard_url(brand, period=None):
    url = reverse("admin:visibility_dashboard", args=[brand.pk])
    return f"{url}?period={period}" if period else url


def csv_url(brand, period="day"):
    return reverse("admin:visibility_dashboard_csv", args=[brand.pk]) + f"?period={period}"


# --- the dashboard ----------------------------------------------------------------------------


def test_dashboard_shows_exact_scores_next_to_the_formula(client, brand, editor, history):
    client.force_login(editor)
    response = client.get(dashboard_url(brand))
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("admin:visibility_dashboard", args=[brand.pk]) == (
        f"/admin/visibility/dashboard/{brand.pk}/"
    )
    score_section = html[html.index('id="score"') : html.index('id="metrics"')]
    assert f'<td>{HOSTILE_ESCAPED}</td><td><strong class="vis-score">49.6</strong>' in score_section
    assert f'<td>{FORMULA_ENGINE}</td><td><strong class="vis-score">75.0</strong>' in score_section
    assert f'<code class="score-formula">{SCORE_FORMULA}</code>' in score_section
    assert SCORE_LEGEND in score_section
    # The metrics row: mention 5/7, citation 3/7, first 4/7, share 5/10, misstatement 1/7.
    assert (
        f"<tr><td>{HOSTILE_ESCAPED}</td><td>49.6</td>"
        '<td class="vis-rate" title="5 of 7">71.4 <span class="vis-ci">[35.9–91.8]</span></td>'
        '<td class="vis-rate" title="3 of 7">42.9 <span class="vis-ci">[15.8–75.0]</span></td>'
        '<td class="vis-rate" title="4 of 7">57.1 <span class="vis-ci">[25.0–84.2]</span></td>'
        '<td class="vis-rate" title="5 of 10">50.0 <span class="vis-ci">[23.7–76.3]</span></td>'
        '<td class="vis-rate" title="1 of 7">14.3 <span class="vis-ci">[2.6–51.3]</span></td>'
        "<td>7</td><td>1</td><td>0.0140</td></tr>"
    ) in html
    assert "<b>&" not in html  # the engine name is text everywhere


def test_dashboard_trend_chart_is_inline_svg_with_the_name_escaped(client, brand, editor, history):
    client.force_login(editor)
    html = client.get(dashboard_url(brand)).content.decode()
    charts = html[html.index('id="trend"') : html.index('id="alerts"')]
    assert charts.count("<svg ") == 2  # score and mention rate
    assert "<?xml" not in charts and "<!DOCTYPE" not in charts
    svg = charts[charts.index("<svg ") : charts.index("</svg>")]
    assert f">{HOSTILE_ESCAPED}</text>" in svg  # a text node, escaped by matplotlib
    assert f">{FORMULA_ENGINE}</text>" in svg
    assert "<b>" not in charts
    weekly = client.get(dashboard_url(brand, "week")).content.decode()
    assert weekly[weekly.index('id="trend"') : weekly.index('id="alerts"')].count("<svg ") == 2
    assert '<span class="current">Per week, Monday to Sunday (last 12 weeks)</span>' in weekly


def test_trend_svg_is_deterministic_and_reads_dollars_literally(brand, history):
    from visibility.charts import trend_svg
    from visibility.metrics import metrics_series

    series = metrics_series(brand=brand, period="day")
    assert trend_svg(series) == trend_svg(series)
    assert trend_svg({}) == ""
    renamed = {"Price $5 $ engine": next(iter(series.values()))}
    assert ">Price $5 $ engine</text>" in trend_svg(renamed, "mention")
    with pytest.raises(ValueError, match="metric must be one of score, mention"):
        trend_svg(series, "cost")


def test_dashboard_lists_alert_reasons_and_crawlers(client, brand, editor, history):
    client.force_login(editor)
    html = client.get(dashboard_url(brand)).content.decode()
    alerts = html[html.index('id="alerts"') : html.index('id="crawlers"')]
    assert f"{HOSTILE_ESCAPED} states 2005 for founded" in alerts
    assert "<li>The answer states 2005; the fact says 1998.</li>" in alerts
    assert "<li>No visit from ChatGPT&#x27;s crawlers.</li>" in alerts
    crawlers = html[html.index('id="crawlers"') :]
    last = f"{history['runs'][2].started_at:%Y-%m-%d} 10:00"  # the third hit, at 8 + 2 h
    assert (
        f"<tr><td>GPTBot</td><td>training</td><td>ChatGPT</td><td>3</td><td>{last}</td>"
        "<td>3</td><td>llms.txt 1 · markdown 2</td><td>200 ×2 · 404 ×1</td></tr>"
    ) in crawlers
    assert f'href="{csv_url(brand)}"' in html


# --- CSV --------------------------------------------------------------------------------------

HEADER = (
    "engine,period_start,answers,failed,score,mention_rate,citation_rate,first_mention_rate,"
    "share_of_voice_rate,misstatement_rate,mention_ci95_low,citation_ci95_low,"
    "mention_ci95_high,citation_ci95_high,cost_usd"
)


def test_csv_per_day_has_the_exact_rows_and_no_formulas(client, brand, editor, history, days):
    client.force_login(editor)
    response = client.get(csv_url(brand, "day"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="acme-tea-visibility-day.csv"'
    d1, d2, d3 = (day.isoformat() for day in days)
    assert response.content.decode().split("\r\n") == [
        HEADER,
        # The formula engine's name starts with "=": prefixed with a quote, shown as text.
        f"'=2+3 Engine,{d1},1,0,75.0,1.0,0.0,1.0,1.0,0.0,0.2065,0.0,1.0,0.7935,0.002",
        # Day 1: M 2/3, C 1/3, F 1/3, S 2/5, X 1/3 → 100 × 0.48 × 2/3 = 32.0
        f"Leaf <b>&</b> Bot,{d1},3,1,32.0,0.6667,0.3333,0.3333,0.4,0.3333,"
        "0.2077,0.0615,0.9385,0.7923,0.006",
        # Day 2: M 1, C 1/2, F 1, S 1, X 0 → 100 × 0.875 = 87.5
        f"Leaf <b>&</b> Bot,{d2},2,0,87.5,1.0,0.5,1.0,1.0,0.0,0.3424,0.0945,1.0,0.9055,0.004",
        # Day 3: M 1/2, C 1/2, F 1/2, S 1/3, X 0 → 100 × 0.4667 = 46.7
        f"Leaf <b>&</b> Bot,{d3},2,0,46.7,0.5,0.5,0.5,0.3333,0.0,0.0945,0.0945,0.9055,0.9055,0.004",
        "",
    ]


def test_csv_per_week_groups_monday_starting_weeks(client, brand, editor, history, days):
    client.force_login(editor)
    response = client.get(csv_url(brand, "week"))
    assert response["Content-Disposition"] == 'attachment; filename="acme-tea-visibility-week.csv"'
    tuesday, thursday, next_monday = days
    monday = tuesday - timedelta(days=1)
    assert monday.weekday() == 0 and next_monday.weekday() == 0
    rows = response.content.decode().split("\r\n")
    assert [row.split(",")[:5] for row in rows[1:-1]] == [
        ["'=2+3 Engine", monday.isoformat(), "1", "0", "75.0"],
        # Tuesday and Thursday in one week: M 4/5, C 2/5, F 3/5, S 4/7, X 1/5
        # → 100 × (0.32 + 0.10 + 0.09 + 0.20·4/7) × 0.8 = 49.94… → 49.9
        ["Leaf <b>&</b> Bot", monday.isoformat(), "5", "1", "49.9"],
        ["Leaf <b>&</b> Bot", next_monday.isoformat(), "2", "0", "46.7"],
    ]


def test_csv_of_a_brand_without_answers_is_just_the_header(client, brand, editor):
    client.force_login(editor)
    assert client.get(csv_url(brand)).content.decode() == HEADER + "\r\n"
    assert client.get(csv_url(brand, "month")).status_code == 400


# --- isolation --------------------------------------------------------------------------------


def test_another_brands_editor_sees_nothing(client, brand, outsider, history):
    client.force_login(outsider)
    assert client.get(dashboard_url(brand)).status_code == 403
    assert client.get(csv_url(brand)).status_code == 403
    assert client.get(reverse("admin:visibility_dashboard", args=[99999])).status_code == 404
    for model in CHANGELISTS:
        response = client.get(reverse(f"admin:visibility_{model}_changelist"))
        assert response.status_code == 200, model
        assert response.context["cl"].result_count == 0, model
        html = response.content.decode()
        assert "Leaf &lt;b&gt;" not in html and "Acme Tea" not in html, model
        assert "GPTBot" not in html and "Buying tea" not in html, model  # not even in filters
        assert dashboard_url(brand) not in html, model
    answer = Answer.objects.first()
    response = client.get(reverse("admin:visibility_answer_change", args=[answer.pk]))
    assert response.status_code == 302  # "does not exist", as for any row of another brand


def test_members_and_superusers_see_their_rows_and_dashboard_links(client, brand, other_brand,
                                                                   editor, history):  # fmt: skip
    client.force_login(editor)
    counts = {"engine": 2, "promptset": 1, "run": 3, "answer": 9, "alert": 1, "alertsettings": 1,
              "crawlerhit": 3}  # fmt: skip
    for model, count in counts.items():
        response = client.get(reverse(f"admin:visibility_{model}_changelist"))
        assert response.context["cl"].result_count == count, model
    for model in ("run", "alert"):
        html = client.get(reverse(f"admin:visibility_{model}_changelist")).content.decode()
        assert f'<li><a href="{dashboard_url(brand)}">Dashboard: Acme Tea</a></li>' in html
        assert dashboard_url(other_brand) not in html
    superuser = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client.force_login(superuser)
    html = client.get(reverse("admin:visibility_run_changelist")).content.decode()
    assert "Dashboard: Acme Tea" in html and "Dashboard: Other Brand" in html
    assert client.get(dashboard_url(other_brand)).status_code == 200


def test_dashboard_index_goes_to_the_only_brand(client, brand, editor):
    client.force_login(editor)
    response = client.get(reverse("admin:visibility_dashboard_index"))
    assert response.status_code == 302 and response["Location"] == dashboard_url(brand)
    app_index = client.get(reverse("admin:app_list", args=["visibility"])).content.decode()
    assert reverse("admin:visibility_dashboard_index") in app_index


# --- runs and answers -------------------------------------------------------------------------


def test_run_list_shows_progress(client, brand, editor, history):
    client.force_login(editor)
    html = client.get(reverse("admin:visibility_run_changelist")).content.decode()
    assert '<progress max="4" value="5"></progress>' not in html  # capped at expected
    assert '<progress max="4" value="4"></progress> 4 / 4, 1 failed' in html  # day 1: 5 answers
    assert '<progress max="4" value="2"></progress> 2 / 4' in html


def test_answer_detail_escapes_text_links_citations_and_marks_misstatements(
    client, brand, editor, history
):
    hostile, run = history["hostile"], history["runs"][0]
    excerpt = "Acme Tea <script>alert(1)</script> was founded in 2005."
    answer = Answer.objects.create(
        run=run, engine=hostile, prompt=Prompt.objects.first(), repetition=5, language="en",
        asked_at=run.started_at, content=f"Intro. {excerpt} Great tea.",
        citations=["https://tea.example/about/", "javascript:alert(1)"],
        analysis={"cited_urls": ["https://tea.example/about/"]}, mentioned=True,
        misstatements=[{"fact_key": "founded", "stated": "2005", "expected": "1998",
                        "excerpt": excerpt}],
    )  # fmt: skip
    client.force_login(editor)
    html = client.get(reverse("admin:visibility_answer_change", args=[answer.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert (
        'Intro. <mark title="founded: expected 1998">Acme Tea &lt;script&gt;alert(1)&lt;/script&gt;'
        " was founded in 2005.</mark> Great tea."
    ) in html
    assert (
        '<li><a href="https://tea.example/about/" rel="noopener noreferrer">'
        "https://tea.example/about/</a> (the brand&#x27;s)</li>"
    ) in html
    assert "<li><code>javascript:alert(1)</code></li>" in html
    assert 'href="javascript:' not in html
    assert (
        "<li><mark>2005</mark> for <code>founded</code>, expected <strong>1998</strong>: "
        "“Acme Tea &lt;script&gt;alert(1)&lt;/script&gt; was founded in 2005.”</li>"
    ) in html


def test_answer_filters_offer_only_the_users_engines(client, brand, other_brand, editor, history):
    engine_save(brand=other_brand, name="Secret engine", base_url="https://c.example/v1",
                model="m3")  # fmt: skip
    client.force_login(editor)
    html = client.get(reverse("admin:visibility_answer_changelist")).content.decode()
    assert HOSTILE_ESCAPED in html and "Secret engine" not in html
    filtered = client.get(
        reverse("admin:visibility_answer_changelist")
        + f"?engine__id__exact={history['formula'].pk}"
    )
    assert filtered.context["cl"].result_count == 1


def test_alert_detail_lists_its_reasons(client, brand, editor, history):
    alert = Alert.objects.get()
    client.force_login(editor)
    html = client.get(reverse("admin:visibility_alert_change", args=[alert.pk])).content.decode()
    assert (
        "<ul><li>The answer states 2005; the fact says 1998. <small>(fact_misstated)</small></li>"
        "<li>No visit from ChatGPT&#x27;s crawlers. <small>(crawler_never_seen)</small></li></ul>"
    ) in html
    changelist = client.get(reverse("admin:visibility_alert_changelist")).content.decode()
    assert f"{HOSTILE_ESCAPED} states 2005 for founded" in changelist


def test_alert_settings_take_only_the_brands_webhooks(client, brand, other_brand, brand_admin):
    from publishing.models import Target

    foreign = Target.objects.create(brand=other_brand, name="Their hook", kind="webhook")
    client.force_login(brand_admin)
    add = reverse("admin:visibility_alertsettings_add")
    assert "Their hook" not in client.get(add).content.decode()
    response = client.post(add, {"brand": brand.pk, "emails": "ok@tea.example\nnot-an-address",
                                 "webhook": foreign.pk})  # fmt: skip
    html = response.content.decode()
    assert "Not an email address: not-an-address." in html
    assert "Select a valid choice." in html
    assert not AlertSettings.objects.exists()


# --- engines: write-only API keys -------------------------------------------------------------

ENGINE_FORM = {
    "name": "ChatGPT", "base_url": "https://api.openai.com/v1", "model": "gpt-4o",
    "api_key_env": "", "parameters": '{"temperature": 0.7}', "timeout_seconds": "60",
    "max_retries": "2", "input_price_per_million": "2.5", "output_price_per_million": "10",
    "crawler": "ChatGPT", "enabled": "on",
}  # fmt: skip


def test_api_key_is_stored_encrypted_and_never_shown(client, brand, brand_admin, settings):
    settings.SOURCEBOOK_CREDENTIAL_ENV = ["OPENAI_API_KEY"]  # the operator's allow-list
    client.force_login(brand_admin)
    add = reverse("admin:visibility_engine_add")
    assert 'name="api_key"' in client.get(add).content.decode()
    response = client.post(add, {**ENGINE_FORM, "brand": brand.pk, "api_key": PLAIN_KEY})
    assert response.status_code == 302, response.content.decode()
    engine = Engine.objects.get(brand=brand, name="ChatGPT")
    assert engine.api_key_encrypted and engine.api_key_encrypted != PLAIN_KEY
    assert PLAIN_KEY not in engine.api_key_encrypted
    assert secret_decrypt(engine.api_key_encrypted) == PLAIN_KEY
    assert engine.parameters == {"temperature": 0.7}
    change = reverse("admin:visibility_engine_change", args=[engine.pk])
    html = client.get(change).content.decode()
    assert PLAIN_KEY not in html and engine.api_key_encrypted not in html
    assert "stored (encrypted)" in html
    # Saved again with the key left empty: the stored key stays.
    response = client.post(change, {**ENGINE_FORM, "api_key": "", "max_retries": "3"})
    assert response.status_code == 302, response.content.decode()
    engine.refresh_from_db()
    assert engine.max_retries == 3 and secret_decrypt(engine.api_key_encrypted) == PLAIN_KEY
    # A form with an error shows it again without the typed key.
    html = client.post(change, {**ENGINE_FORM, "api_key": "sk-new-TYPED", "parameters": "[1]"})
    assert "sk-new-TYPED" not in html.content.decode()
    assert "Give a JSON object" in html.content.decode()
    client.post(change, {**ENGINE_FORM, "api_key_env": "OPENAI_API_KEY"})
    changelist = client.get(reverse("admin:visibility_engine_changelist")).content.decode()
    assert "from $OPENAI_API_KEY" in changelist and PLAIN_KEY not in changelist
    client.post(change, {**ENGINE_FORM, "api_key_remove": "on"})
    engine.refresh_from_db()
    assert engine.api_key_encrypted == ""


def test_editors_only_view_engines(client, brand, editor, history):
    client.force_login(editor)
    assert client.get(reverse("admin:visibility_engine_add")).status_code == 403
    change = reverse("admin:visibility_engine_change", args=[history["formula"].pk])
    assert client.post(change, {**ENGINE_FORM, "api_key": PLAIN_KEY}).status_code == 403
    html = client.get(change).content.decode()
    assert 'name="api_key"' not in html and "none" in html


# --- prompt sets ------------------------------------------------------------------------------


def prompt_set_form(brand, **fields):
    data = {
        "brand": brand.pk, "name": "Gifts", "language": "en", "competitors": "[]",
        "repetitions": "2", "schedule": "0 7 * * 1", "enabled": "on",
        "prompts-TOTAL_FORMS": "3", "prompts-INITIAL_FORMS": "0",
        "prompts-MIN_NUM_FORMS": "0", "prompts-MAX_NUM_FORMS": "1000",
        "prompts-0-text": "Which tea makes a good gift?", "prompts-0-order": "1",
        "prompts-1-text": "Best tea for a birthday?", "prompts-1-order": "0",
        "prompts-2-text": "", "prompts-2-order": "",
    }  # fmt: skip
    return {**data, **fields}


def test_prompt_set_saves_through_the_service_with_its_schedule(client, brand, editor):
    client.force_login(editor)
    competitors = '[{"name": "Teavana", "aliases": ["提瓦纳"], "domains": ["teavana.com"]}]'
    response = client.post(
        reverse("admin:visibility_promptset_add"),
        prompt_set_form(brand, competitors=competitors),
    )
    assert response.status_code == 302, response.content.decode()
    prompt_set = PromptSet.objects.get(brand=brand, name="Gifts")
    assert list(prompt_set.prompts.values_list("text", flat=True)) == [
        "Best tea for a birthday?",
        "Which tea makes a good gift?",
    ]
    assert prompt_set.competitors == [
        {"name": "Teavana", "aliases": ["提瓦纳"], "domains": ["teavana.com"]}
    ]
    task = PeriodicTask.objects.get(name=schedule_name(prompt_set))
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "7", "1")
    assert task.args == f"[{prompt_set.pk}]"


def test_prompt_set_form_says_what_is_wrong(client, brand, editor):
    client.force_login(editor)
    add = reverse("admin:visibility_promptset_add")
    html = client.post(add, prompt_set_form(brand, competitors='[{"name": "Teavana",}]'))
    assert (
        "This is not valid JSON: Expecting property name enclosed in double quotes at line 1, "
        "column 21."
    ) in html.content.decode()
    # The input comes back, to be fixed.
    assert "[{&quot;name&quot;: &quot;Teavana&quot;,}]</textarea>" in html.content.decode()
    html = client.post(add, prompt_set_form(brand, competitors='["Teavana"]')).content.decode()
    assert "Competitor 1 is not an object with a name." in html
    html = client.post(add, prompt_set_form(brand, schedule="daily", language="fr")).content
    assert "is not a crontab line" in html.decode()
    assert "Give one of Acme Tea&#x27;s languages: en, zh-Hans." in html.decode()
    assert not PromptSet.objects.exists()


def test_run_now_reports_errors_in_plain_words(client, brand, editor):
    prompt_set = prompt_set_save(brand=brand, name="Buying tea", language="en",
                                 prompts=["Which tea brand is best?"])  # fmt: skip
    client.force_login(editor)
    response = client.post(
        reverse("admin:visibility_promptset_changelist"),
        {"action": "run_now", "_selected_action": [prompt_set.pk]},
    )
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Buying tea [en] was not run: Acme Tea has no enabled engine to ask."
    ]
    assert not Run.objects.exists()


def test_run_now_starts_a_run(client, brand, editor, history):
    client.force_login(editor)
    response = client.post(
        reverse("admin:visibility_promptset_changelist"),
        {"action": "run_now", "_selected_action": [history["prompt_set"].pk]},
    )
    run = Run.objects.filter(trigger="manual", requested_by=editor).get()
    assert run.expected == 2 * 2 * 2  # questions × engines × repetitions
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Started run {run.pk} of Buying tea [en]: 8 answers to collect."
    ]
