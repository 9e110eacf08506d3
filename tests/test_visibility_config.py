"""Visibility configuration as code: export, a dry-run diff, apply (idempotent, all or nothing),
from a YAML file with `visibility_config` and as JSON over the API."""

from __future__ import annotations

import json
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.test import Client

from kb.services.tokens import api_token_create
from publishing.models import Target
from visibility.models import AlertSettings, Engine, PromptSet
from visibility.services import engine_save, prompt_set_save

pytestmark = pytest.mark.django_db

DOCUMENT = """\
version: 1
brand: acme-tea
engines:
  - name: ChatGPT
    base_url: https://api.openai.com/v1
    model: gpt-4o-mini
    api_key_env: OPENAI_API_KEY
    input_price_per_million: 0.15
    output_price_per_million: 0.6
    crawler: ChatGPT
  - name: Judge
    base_url: https://api.deepseek.com
    model: deepseek-chat
    enabled: false
prompt_sets:
  - name: Buying tea
    language: en
    schedule: "30 5 * * 1"
    repetitions: 2
    sentiment_judge: Judge
    competitors:
      - {name: Twinings, domains: [twinings.co.uk]}
    prompts:
      - Which green tea brand is best?
      - 哪里买龙井？
alerts:
  emails: [team@tea.example]
  webhook: alerts
"""


@pytest.fixture(autouse=True)
def credential_env_allowed(settings):
    settings.SOURCEBOOK_CREDENTIAL_ENV = ["OPENAI_API_KEY"]


@pytest.fixture
def hook(brand):
    return Target.objects.create(brand=brand, name="alerts", kind=Target.Kind.WEBHOOK,
                                 config={"url": "https://hooks.example/x"}, secret="s")  # fmt: skip


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("visibility_config", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_apply_a_file_then_export_it_back_unchanged(brand, hook, tmp_path):
    source = tmp_path / "visibility.yaml"
    source.write_text(DOCUMENT, encoding="utf-8")
    plan, note = run("apply", str(source), "--dry-run")
    assert plan.splitlines() == [
        "+ engine 'ChatGPT': create", "+ engine 'Judge': create",
        "+ prompt_set 'Buying tea': create", "+ alerts 'alerts': create",
    ]  # fmt: skip
    assert note.strip() == "Would change 4 of 4."
    assert not Engine.objects.exists() and not PromptSet.objects.exists()

    run("apply", str(source))
    chatgpt = Engine.objects.get(name="ChatGPT")
    assert (chatgpt.model, chatgpt.api_key_env, str(chatgpt.input_price_per_million),
            chatgpt.crawler, chatgpt.enabled) == ("gpt-4o-mini", "OPENAI_API_KEY", "0.1500",
                                                  "ChatGPT", True)  # fmt: skip
    prompt_set = PromptSet.objects.get(name="Buying tea")
    assert (prompt_set.schedule, prompt_set.repetitions, prompt_set.sentiment_judge.name) == (
        "30 5 * * 1", 2, "Judge")  # fmt: skip
    assert list(prompt_set.prompts.values_list("text", flat=True)) == [
        "Which green tea brand is best?", "哪里买龙井？"]  # fmt: skip
    settings = AlertSettings.objects.get(brand=brand)
    assert (settings.email_list, settings.webhook) == (["team@tea.example"], hook)

    # Applying it again changes nothing; its export applies as nothing too.
    again, note = run("apply", str(source))
    assert set(again.splitlines()) == {
        "= engine 'ChatGPT': unchanged", "= engine 'Judge': unchanged",
        "= prompt_set 'Buying tea': unchanged", "= alerts 'alerts': unchanged",
    }  # fmt: skip
    assert note.strip() == "Nothing to change."
    exported = tmp_path / "export.yaml"
    run("export", str(exported), "--brand", "acme-tea")
    document = yaml.safe_load(exported.read_text(encoding="utf-8"))
    assert document["engines"][0] == {
        "name": "ChatGPT", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini",
        "api_key_env": "OPENAI_API_KEY", "parameters": {}, "timeout_seconds": 60,
        "max_retries": 2, "location_parameter": "", "input_price_per_million": "0.15",
        "output_price_per_million": "0.6",
        "crawler": "ChatGPT", "enabled": True,
    }  # fmt: skip
    assert run("apply", str(exported))[1].strip() == "Nothing to change."


def test_a_change_shows_as_a_diff_and_a_bad_file_changes_nothing(brand, hook, tmp_path):
    engine_save(brand=brand, name="ChatGPT", base_url="https://api.openai.com/v1", model="gpt-4o",
                api_key="sk-secret-1234")  # fmt: skip
    prompt_set_save(brand=brand, name="Buying tea", language="en",
                    prompts=["Which green tea brand is best?", "Old question?"])  # fmt: skip
    source = tmp_path / "visibility.yaml"
    source.write_text(DOCUMENT, encoding="utf-8")
    plan, _ = run("apply", str(source), "--dry-run")
    lines = plan.splitlines()
    assert lines[0] == "~ engine 'ChatGPT': update"
    assert "    model: 'gpt-4o' → 'gpt-4o-mini'" in lines
    assert "    prompts: + '哪里买龙井？'" in lines and "    prompts: - 'Old question?'" in lines
    # The stored key is kept (documents never carry keys), and never exported.
    run("apply", str(source))
    assert Engine.objects.get(name="ChatGPT").api_key_encrypted
    assert "sk-secret" not in run("export", "-", "--brand", "acme-tea")[0]

    broken = yaml.safe_load(DOCUMENT)
    broken["engines"][0]["model"] = "gpt-5"
    broken["engines"][1]["base_url"] = "not a url"
    broken["prompt_sets"][0]["sentiment_judge"] = "Nobody"
    broken["prompt_sets"][0]["colour"] = "green"
    source.write_text(yaml.safe_dump(broken), encoding="utf-8")
    with pytest.raises(CommandError) as error:
        run("apply", str(source))
    assert str(error.value).splitlines()[:2] == [
        "Nothing was changed.",
        f"{source}: /prompt_sets/0/colour: unknown field (known: name, language, schedule, "
        "repetitions, enabled, competitors, pair_group, location, sentiment_judge, prompts)",
    ]
    del broken["prompt_sets"][0]["colour"]
    source.write_text(yaml.safe_dump(broken), encoding="utf-8")
    with pytest.raises(CommandError) as error:
        run("apply", str(source))
    assert str(error.value).splitlines() == [
        "Nothing was changed.",
        f"{source}: /engines/1/base_url: Enter a valid URL. The URL must start with http:// or "
        "https://.",
        f"{source}: /prompt_sets/0/sentiment_judge: 'Nobody' is not one of the brand's engines",
    ]
    assert Engine.objects.get(name="ChatGPT").model == "gpt-4o-mini"  # not gpt-5: all or nothing
    source.write_text("engines: [\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"not YAML \(line 2, column 1\)"):
        run("apply", str(source), "--brand", "acme-tea")


def test_the_api_plans_and_applies_the_same_document(brand, hook):
    _, raw = api_token_create(brand=brand, scopes=["read", "manage"])
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    url = f"/api/v1/brands/{brand.slug}/visibility/config/"
    body = json.dumps(yaml.safe_load(DOCUMENT))
    plan = api.put(f"{url}?dry_run=true", body, content_type="application/json").json()
    assert [(c["kind"], c["action"]) for c in plan] == [
        ("engine", "create"), ("engine", "create"), ("prompt_set", "create"), ("alerts", "create")]  # fmt: skip
    assert not Engine.objects.exists()
    assert api.put(url, body, content_type="application/json").status_code == 200
    exported = api.get(url).json()
    assert [e["name"] for e in exported["engines"]] == ["ChatGPT", "Judge"]
    assert exported["prompt_sets"][0]["sentiment_judge"] == "Judge"
    wrong = api.put(url, json.dumps({"engines": [{"name": "X"}]}), content_type="application/json")
    assert wrong.status_code == 400
    assert wrong.json()["errors"] == [
        {"pointer": "/engines/0/base_url", "detail": "required, as text"},
        {"pointer": "/engines/0/model", "detail": "required, as text"},
    ]
    typed = api.put(url, json.dumps({"prompt_sets": [
        {"name": "X", "language": "en", "repetitions": "many", "enabled": 1}]}),
        content_type="application/json")  # fmt: skip
    assert typed.json()["errors"] == [
        {"pointer": "/prompt_sets/0/repetitions", "detail": "give a whole number"},
        {"pointer": "/prompt_sets/0/enabled", "detail": "give true or false"},
    ]
    _, reader = api_token_create(brand=brand, scopes=["read"])
    assert Client(headers={"Authorization": f"Bearer {reader}"}).get(url).status_code == 403


def test_an_engine_from_a_preset(brand, settings, tmp_path):
    settings.SOURCEBOOK_CREDENTIAL_ENV = ["DEEPSEEK_API_KEY"]
    source = tmp_path / "engines.yaml"
    source.write_text("engines:\n  - {name: DeepSeek, preset: deepseek, model: deepseek-flash}\n"
                      "  - {name: Other, preset: nowhere}\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(CommandError, match=r"/engines/1/preset: unknown preset \(known: openai, "):
        run("apply", str(source), "--brand", "acme-tea")
    source.write_text("engines:\n  - {name: DeepSeek, preset: deepseek, model: deepseek-flash}\n",
                      encoding="utf-8")  # fmt: skip
    run("apply", str(source), "--brand", "acme-tea")
    engine = Engine.objects.get(name="DeepSeek")
    assert (engine.base_url, engine.model, engine.api_key_env) == (
        "https://api.deepseek.com", "deepseek-flash", "DEEPSEEK_API_KEY")  # fmt: skip


def test_an_admin_adds_an_engine_from_a_preset(brand, settings):
    settings.SOURCEBOOK_CREDENTIAL_ENV = ["MOONSHOT_API_KEY"]
    from django.contrib.auth import get_user_model

    from kb.models import BrandMembership
    from kb.services.brands import membership_grant

    owner = get_user_model().objects.create_user("owner", password="pw-own-123", is_staff=True)
    membership_grant(brand=brand, user=owner, role=BrandMembership.Role.ADMIN)
    client = Client()
    client.force_login(owner)
    page = client.get("/admin/visibility/engine/add/").content.decode()
    assert '<option value="kimi">Moonshot Kimi (China)</option>' in page
    saved = client.post("/admin/visibility/engine/add/", {
        "brand": brand.pk, "name": "Kimi", "preset": "kimi", "base_url": "", "model": "",
        "api_key_env": "", "parameters": "{}", "timeout_seconds": 60, "max_retries": 2,
        "input_price_per_million": "0", "output_price_per_million": "0", "crawler": "",
        "enabled": "on",
    })  # fmt: skip
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    engine = Engine.objects.get(name="Kimi")
    assert (engine.base_url, engine.model, engine.api_key_env) == (
        "https://api.moonshot.cn/v1", "kimi-k2.6", "MOONSHOT_API_KEY")  # fmt: skip
    refused = client.post("/admin/visibility/engine/add/", {
        "brand": brand.pk, "name": "Blank", "base_url": "", "model": "", "parameters": "{}",
        "timeout_seconds": 60, "max_retries": 2, "input_price_per_million": "0",
        "output_price_per_million": "0",
    })  # fmt: skip
    assert refused.context["adminform"].form.errors == {
        "base_url": ["Required (or choose a preset)."], "model": ["Required (or choose a preset)."]}  # fmt: skip
