"""The demo brand's visibility set-up: two local scripted engines, prompt sets, and history.

The engines are clearly labelled demo engines: ``make demo`` serves them from
``python -m visibility.scripted_engine --demo`` on loopback. The history (one run a day for
``DEMO_DAYS`` days) is produced by really asking an in-process scripted server through the
``openai`` client, then dated back, so the charts show a trend from the first minute.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from config.egress import egress_allowing, url_endpoint
from kb.models import Brand
from publishing.models import SiteSettings
from visibility.crawlers import access_log_import
from visibility.models import Alert, AlertSettings, Answer, Engine, Run
from visibility.scripted_engine import DemoScript, ScriptedEngine
from visibility.services import engine_save, prompt_set_save, run_engine_execute, run_start

DEMO_FILE = (
    Path(__file__).resolve().parent.parent / "kb" / "demo" / "westlake-leaf" / "visibility.json"
)
DEMO_ACCESS_LOG = DEMO_FILE.with_name("access.log")
DEMO_DAYS = 14
DEMO_ENGINE_URL = "http://127.0.0.1:8765/v1"


def demo_engine_url() -> str:
    return os.environ.get("SOURCEBOOK_DEMO_ENGINE_URL", DEMO_ENGINE_URL)


def demo_egress_entry(url: str) -> str:
    """The allow-list entry (host:port, that port only) of a demo engine URL.

    Only operator code uses it (``loaddemo``, for the engine URL it was given and for the
    scripted servers it starts itself): brand data never widens the allow-list. Asking the
    demo engines later needs ``SOURCEBOOK_EGRESS_ALLOW=127.0.0.1:8765`` (``make demo`` sets it).
    """
    endpoint = url_endpoint(url)
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{endpoint.port}"


def visibility_demo_load(
    *, brand: Brand, days: int = DEMO_DAYS, progress: Callable[[int], None] | None = None
) -> dict:
    spec = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    with egress_allowing(demo_egress_entry(demo_engine_url())):
        engines = _demo_engines(brand, spec)
    prompt_sets = [
        prompt_set_save(brand=brand, **{k: v for k, v in item.items()})
        for item in spec["prompt_sets"]
    ]
    access_log_import(
        brand=brand, sources=[(DEMO_ACCESS_LOG.name, DEMO_ACCESS_LOG.read_text().splitlines())]
    )  # idempotent: a second load adds nothing
    if days and not Run.objects.filter(brand=brand, trigger="demo").exists():
        demo_history(brand=brand, engines=engines, prompt_sets=prompt_sets, days=days,
                     progress=progress)  # fmt: skip
    # The demo's /ask summaries are written by its first engine (demo_summary).
    SiteSettings.objects.update_or_create(brand=brand, defaults={"answer_engine": engines[0]})
    # After the history, so its alerts are not mailed.
    AlertSettings.objects.update_or_create(
        brand=brand, defaults={"emails": "\n".join(spec["alerts"]["emails"])}
    )
    days_kept = Run.objects.filter(brand=brand, trigger="demo").dates("started_at", "day").count()
    return {"engines": len(engines), "prompt_sets": len(prompt_sets), "days": days_kept}


def _demo_engines(brand: Brand, spec: dict) -> list[Engine]:
    return [
        engine_save(
            brand=brand,
            name=item["name"],
            base_url=demo_engine_url(),
            model=item["model"],
            crawler=item["crawler"],
            is_demo=True,
            timeout_seconds=10,
            max_retries=1,
            input_price_per_million=Decimal(item["input_price_per_million"]),
            output_price_per_million=Decimal(item["output_price_per_million"]),
        )
        for item in spec["engines"]
    ]


def demo_history(*, brand, engines, prompt_sets, days, progress=None) -> None:
    """One run a day, asked for real of a scripted server for that day, then dated back."""
    today = timezone.now().replace(hour=6, minute=0, second=0, microsecond=0)
    for day in range(days):
        when = today - timedelta(days=days - day)
        with (
            ScriptedEngine(DemoScript(day=day)) as server,
            egress_allowing(demo_egress_entry(server.base_url)),
        ):
            Engine.objects.filter(pk__in=[e.pk for e in engines]).update(base_url=server.base_url)
            for prompt_set in prompt_sets:
                run = run_start(prompt_set=prompt_set, engines=engines, trigger="demo", queue=False)
                with transaction.atomic():
                    for engine in engines:
                        run_engine_execute(run_id=run.pk, engine_id=engine.pk, progress=progress)
                    Run.objects.filter(pk=run.pk).update(
                        started_at=when, finished_at=when + timedelta(minutes=2)
                    )
                    Answer.objects.filter(run=run).update(asked_at=when + timedelta(minutes=1))
                    Alert.objects.filter(run=run).update(created_at=when + timedelta(minutes=2))
    Engine.objects.filter(pk__in=[e.pk for e in engines]).update(base_url=demo_engine_url())
