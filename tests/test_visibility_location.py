"""Per-run location: a prompt set's country reaches the engines that search by location, in the
shape each provider documents (the scripted engine records the request bodies)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from visibility.models import Engine, Run
from visibility.scripted_engine import Reply, ScriptedEngine
from visibility.services import VisibilityError, engine_save, prompt_set_save

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]


def test_the_prompt_sets_country_is_sent_as_each_engine_takes_it(brand):
    prompt_set_save(brand=brand, name="Germany", language="en", location="de",
                    prompts=["Best green tea?"], repetitions=1)  # fmt: skip
    with ScriptedEngine(lambda model, messages, attempt: Reply("Try Acme Tea.")) as server:
        engine_save(brand=brand, name="Sonar", base_url=server.base_url, model="sonar",
                    location_parameter=Engine.LocationParameter.PERPLEXITY)  # fmt: skip
        engine_save(brand=brand, name="Search", base_url=server.base_url, model="gpt-search",
                    location_parameter=Engine.LocationParameter.OPENAI,
                    parameters={"web_search_options": {"search_context_size": "low"}})  # fmt: skip
        engine_save(brand=brand, name="Chat", base_url=server.base_url, model="chat")
        call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
    bodies = {r.body["model"]: r.body for r in server.requests}
    assert bodies["sonar"]["web_search_options"] == {"user_location": {"country": "DE"}}
    assert bodies["gpt-search"]["web_search_options"] == {
        "search_context_size": "low",
        "user_location": {"type": "approximate", "approximate": {"country": "DE"}},
    }
    assert "web_search_options" not in bodies["chat"]
    run = Run.objects.get()
    assert (run.location, run.language) == ("DE", "en")
    with pytest.raises(VisibilityError, match="'XX' is not a country code"):
        prompt_set_save(brand=brand, name="Germany", language="en", location="XX")
