"""Before and after a release: rates with intervals, the difference with Newcombe's interval,
the ratio and a two-proportion z-test, checked against published and hand-computed values."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from kb.services.tokens import api_token_create
from publishing.models import Release
from tests.rates import rate
from tests.test_visibility_admin import dashboard_as_editor
from visibility.comparison import newcombe_interval, two_proportion_z_test
from visibility.models import Answer, Engine, Prompt, PromptSet, Run


def test_newcombes_interval_gives_his_published_values():
    """Newcombe (1998), Statistics in Medicine 17:873–890, table II, method 10."""
    assert [round(v, 4) for v in newcombe_interval(48, 80, 56, 70)] == [0.0524, 0.3339]
    assert [round(v, 4) for v in newcombe_interval(3, 10, 9, 10)] == [0.1705, 0.809]
    assert [round(v, 4) for v in newcombe_interval(0, 20, 0, 10)] == [-0.1611, 0.2775]


def test_the_z_test_by_hand():
    # 3 of 20 before, 12 of 20 after: pooled p = 15/40 = 0.375,
    # se = √(0.375 · 0.625 · (1/20 + 1/20)) = √0.0234375 = 0.153093,
    # z = (0.60 − 0.15) / 0.153093 = 2.939388, p = erfc(2.939388 / √2) = 0.003289.
    z, p = two_proportion_z_test(3, 20, 12, 20)
    assert (round(z, 6), round(p, 6)) == (2.939388, 0.003289)
    assert two_proportion_z_test(0, 20, 0, 20) == (0.0, 1.0)
    assert two_proportion_z_test(0, 0, 3, 20) is None


@pytest.fixture
def released(brand):
    """Release 3 went live 15 days ago; in the 14 days before it, ChatGPT mentioned the brand
    in 3 of 20 answers; in the 14 days after, in 12 of 20 (and one failed). An answer 20 days
    before it falls outside both windows."""
    deployed = timezone.now().replace(microsecond=0) - timedelta(days=15)
    Release.objects.create(brand=brand, number=3, state=Release.State.DEPLOYED,
                           deployed_at=deployed)  # fmt: skip
    engine = Engine.objects.create(
        brand=brand, name="ChatGPT", base_url="https://api.openai.example/v1", model="gpt-4o"
    )
    prompt_set = PromptSet.objects.create(brand=brand, name="Tea", language="en", repetitions=20)
    prompt = Prompt.objects.create(prompt_set=prompt_set, text="Best tea?", order=0)

    def answers(start, mentioned, total, failed=0):
        run = Run.objects.create(brand=brand, prompt_set=prompt_set, started_at=start)
        for index in range(total + failed):
            Answer.objects.create(
                run=run, engine=engine, prompt=prompt, repetition=index, language="en",
                asked_at=start + timedelta(minutes=index), ok=index < total,
                mentioned=index < mentioned, content="…",
            )  # fmt: skip

    answers(deployed - timedelta(days=3), mentioned=3, total=20)
    answers(deployed + timedelta(days=2), mentioned=12, total=20, failed=1)
    answers(deployed - timedelta(days=20), mentioned=20, total=20)
    return brand, deployed


@pytest.mark.django_db
def test_the_api_compares_the_windows_around_a_release(released):
    brand, deployed = released
    _, raw = api_token_create(brand=brand, scopes=["read"])
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    base = f"/api/v1/brands/{brand.slug}/visibility"
    body = api.get(f"{base}/releases/3/comparison/?days=14").json()
    assert (body["release"], body["days"], body["engine"]) == (3, 14, None)
    assert body["deployed_at"] == deployed.astimezone(UTC).isoformat().replace("+00:00", "Z")
    mention = next(change for change in body["all"] if change["metric"] == "mention")
    assert mention == {
        "metric": "mention",
        "before": rate(3, 20),
        "after": rate(12, 20),
        "difference": 0.45,
        "difference_ci95": [0.1503, 0.6558],
        "ratio": 4.0,
        "z": 2.9394,
        "p_value": 0.0033,
        "significant": True,
    }
    misstatement = next(change for change in body["all"] if change["metric"] == "misstatement")
    assert (misstatement["difference"], misstatement["ratio"], misstatement["p_value"],
            misstatement["significant"]) == (0.0, None, 1.0, False)  # fmt: skip
    assert list(body["engines"]) == ["ChatGPT"] and body["engines"]["ChatGPT"] == body["all"]
    # A window of 1 day holds no answer before the release: nothing to compare, no test.
    short = api.get(f"{base}/releases/3/comparison/?days=1").json()["all"][0]
    assert (short["before"]["n"], short["difference"], short["p_value"]) == (0, None, None)
    assert api.get(f"{base}/releases/4/comparison/").status_code == 404
    assert api.get(f"{base}/releases/3/comparison/?days=0").status_code == 400
    # The series marks the release.
    series = api.get(f"{base}/metrics/series/").json()
    assert series["releases"] == [
        {"number": 3, "deployed_at": deployed.astimezone(UTC).isoformat()}
    ]


@pytest.mark.django_db
def test_the_dashboard_shows_the_live_release_before_and_after(released):
    brand, deployed = released
    html = dashboard_as_editor(brand)
    section = html[html.index('id="release"') : html.index('id="citations"')]
    assert "Release 3 went live on" in section
    assert (
        '<tr><td>Mention</td><td title="of 20 answers">15.0</td><td title="of 20 answers">'
        "60.0</td><td>+45.0</td><td>+15.0 to +65.6</td><td>4.00×</td><td>0.0033</td>"
        "<td><strong>significant</strong></td></tr>"
    ) in section
    trend = html[html.index('id="trend"') : html.index('id="release"')]
    assert ">R3<" in trend  # the release marked on the charts
