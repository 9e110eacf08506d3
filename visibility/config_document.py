"""AI visibility configuration as code: a brand's engines, prompt sets (questions, competitors,
schedule, sentiment judge) and alert settings as one document — YAML in files
(``manage.py visibility_config``), JSON over the API — exported, compared and applied.

Applying is idempotent (applying an export changes nothing) and atomic (all or nothing),
through the same services as the admin; a dry run returns the same plan without writing.
Engines and prompt sets the document does not name are left as they are. API keys never
appear in a document: an engine names the environment variable holding its key
(``api_key_env``) or keeps the key stored encrypted (set in the admin or the API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from kb.models import Brand
from kb.validation import Problem
from publishing.models import Target
from visibility.models import AlertSettings, Engine, PromptSet
from visibility.presets import PRESETS_BY_KEY
from visibility.services import (
    VisibilityError,
    engine_save,
    prompt_set_save,
)

VERSION = 1
ENGINE_DEFAULTS: dict[str, Any] = {
    "api_key_env": "", "parameters": {}, "timeout_seconds": 60, "max_retries": 2,
    "location_parameter": "",
    "input_price_per_million": "0", "output_price_per_million": "0", "crawler": "",
    "enabled": True,
}  # fmt: skip
ENGINE_REQUIRED = ("name", "base_url", "model")
PROMPT_SET_DEFAULTS: dict[str, Any] = {
    "schedule": "0 6 * * *", "repetitions": 3, "enabled": True, "competitors": [],
    "pair_group": "", "location": "", "sentiment_judge": None, "prompts": [],
}  # fmt: skip
PROMPT_SET_REQUIRED = ("name", "language")
ALERT_DEFAULTS: dict[str, Any] = {"emails": [], "webhook": None}
PRICES = ("input_price_per_million", "output_price_per_million")


class ConfigError(Exception):
    """A document that cannot be applied, with each problem at its JSON pointer."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass
class Change:
    kind: str  # "engine", "prompt_set" or "alerts"
    name: str
    action: str  # "create", "update" or "unchanged"
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name → (before, after)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "fields": {
                name: {"before": old, "after": new} for name, (old, new) in self.fields.items()
            },
        }


# --- export ----------------------------------------------------------------------------------


def _price(value: Decimal) -> str:
    return format(value.normalize(), "f")


def engine_document(engine: Engine) -> dict:
    return {
        "name": engine.name,
        "base_url": engine.base_url,
        "model": engine.model,
        "api_key_env": engine.api_key_env,
        "parameters": engine.parameters or {},
        "timeout_seconds": engine.timeout_seconds,
        "max_retries": engine.max_retries,
        "location_parameter": engine.location_parameter,
        "input_price_per_million": _price(engine.input_price_per_million),
        "output_price_per_million": _price(engine.output_price_per_million),
        "crawler": engine.crawler,
        "enabled": engine.enabled,
    }


def prompt_set_document(prompt_set: PromptSet) -> dict:
    return {
        "name": prompt_set.name,
        "language": prompt_set.language,
        "schedule": prompt_set.schedule,
        "repetitions": prompt_set.repetitions,
        "enabled": prompt_set.enabled,
        "competitors": prompt_set.competitors or [],
        "pair_group": prompt_set.pair_group,
        "location": prompt_set.location,
        "sentiment_judge": prompt_set.sentiment_judge.name if prompt_set.sentiment_judge else None,
        "prompts": list(prompt_set.prompts.filter(active=True).values_list("text", flat=True)),
    }


def alerts_document(brand: Brand) -> dict:
    settings = AlertSettings.objects.filter(brand=brand).select_related("webhook").first()
    if settings is None:
        return dict(ALERT_DEFAULTS)
    return {
        "emails": settings.email_list,
        "webhook": settings.webhook.name if settings.webhook else None,
    }


def config_export(*, brand: Brand) -> dict:
    """The brand's visibility configuration as a document (demo engines left out)."""
    return {
        "version": VERSION,
        "brand": brand.slug,
        "engines": [
            engine_document(e) for e in brand.engines.filter(is_demo=False).order_by("name")
        ],
        "prompt_sets": [
            prompt_set_document(p)
            for p in brand.prompt_sets.select_related("sentiment_judge").order_by("name")
        ],
        "alerts": alerts_document(brand),
    }


# --- reading a document ----------------------------------------------------------------------


def _items(document: dict, key: str, problems: list[Problem]) -> list[dict]:
    items = document.get(key, [])
    if not isinstance(items, list):
        problems.append(Problem(f"/{key}", "give a list"))
        return []
    return items


# What each field holds; numbers that are not whole are refused where a count is wanted.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "api_key_env": (str,), "parameters": (dict,), "timeout_seconds": (int,),
    "max_retries": (int,), "input_price_per_million": (int, float, str),
    "output_price_per_million": (int, float, str), "crawler": (str,), "enabled": (bool,),
    "schedule": (str,), "repetitions": (int,), "competitors": (list,), "pair_group": (str,),
    "location": (str,), "location_parameter": (str,),
    "sentiment_judge": (str, type(None)), "prompts": (list,), "emails": (list,),
    "webhook": (str, type(None)),
}  # fmt: skip
TYPE_WORDS = {str: "text", dict: "a mapping", int: "a whole number", float: "a number",
              bool: "true or false", list: "a list", type(None): "null"}  # fmt: skip


def _filled(item: Any, pointer: str, defaults: dict, required: tuple, problems) -> dict | None:
    """The item with its defaults, or None (and the problems) if it cannot be read."""
    if not isinstance(item, dict):
        problems.append(Problem(pointer, "give a mapping of fields"))
        return None
    unknown = sorted(set(item) - set(defaults) - set(required))
    for name in unknown:
        known = ", ".join([*required, *defaults])
        problems.append(Problem(f"{pointer}/{name}", f"unknown field (known: {known})"))
    for name in required:
        if not isinstance(item.get(name), str) or not item[name].strip():
            problems.append(Problem(f"{pointer}/{name}", "required, as text"))
    wrong = [
        name
        for name, value in item.items()
        if name in FIELD_TYPES
        and (
            not isinstance(value, FIELD_TYPES[name])
            or (isinstance(value, bool) and bool not in FIELD_TYPES[name])
        )
    ]
    for name in wrong:
        words = " or ".join(TYPE_WORDS[t] for t in FIELD_TYPES[name])
        problems.append(Problem(f"{pointer}/{name}", f"give {words}"))
    return None if unknown or wrong else {**defaults, **item}


def config_read(document: Any, *, brand: Brand) -> tuple[list[dict], list[dict], dict | None]:
    """The document's engines, prompt sets and alert settings, with defaults filled in.
    Raises ConfigError naming every problem found by its JSON pointer."""
    problems: list[Problem] = []
    if not isinstance(document, dict):
        raise ConfigError([Problem("", "give a mapping with engines, prompt_sets and alerts")])
    if document.get("version", VERSION) != VERSION:
        problems.append(Problem("/version", f"this Sourcebook reads version {VERSION}"))
    if document.get("brand") not in (None, brand.slug):
        problems.append(
            Problem("/brand", f"the document is for {document['brand']!r}, not {brand.slug!r}")
        )
    for name in sorted(set(document) - {"version", "brand", "engines", "prompt_sets", "alerts"}):
        problems.append(
            Problem(f"/{name}", "unknown section (known: engines, prompt_sets, alerts)")
        )
    engines = []
    for index, item in enumerate(_items(document, "engines", problems)):
        pointer = f"/engines/{index}"
        if isinstance(item, dict) and "preset" in item:
            preset = PRESETS_BY_KEY.get(item["preset"])
            if preset is None:
                known = ", ".join(PRESETS_BY_KEY)
                problems.append(Problem(f"{pointer}/preset", f"unknown preset (known: {known})"))
                continue
            item = preset.engine_fields() | {k: v for k, v in item.items() if k != "preset"}
        engine = _filled(item, pointer, ENGINE_DEFAULTS, ENGINE_REQUIRED, problems)
        if engine is None:
            continue
        for price in PRICES:
            try:
                engine[price] = _price(Decimal(str(engine[price])))
            except InvalidOperation:
                problems.append(Problem(f"{pointer}/{price}", "give a number, e.g. 0.15"))
        engines.append(engine)
    prompt_sets = []
    for index, item in enumerate(_items(document, "prompt_sets", problems)):
        pointer = f"/prompt_sets/{index}"
        prompt_set = _filled(item, pointer, PROMPT_SET_DEFAULTS, PROMPT_SET_REQUIRED, problems)
        if prompt_set is None:
            continue
        prompts = prompt_set["prompts"]
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            problems.append(Problem(f"{pointer}/prompts", "give a list of questions"))
        prompt_sets.append(prompt_set)
    alerts = None
    if "alerts" in document:
        alerts = _filled(document["alerts"], "/alerts", ALERT_DEFAULTS, (), problems)
        emails = (alerts or {}).get("emails")
        if alerts is not None and not (
            isinstance(emails, list) and all(isinstance(e, str) for e in emails)
        ):
            problems.append(Problem("/alerts/emails", "give a list of addresses"))
    for key, pointer in (("engines", "/engines"), ("prompt_sets", "/prompt_sets")):
        names = [item.get("name") for item in (engines if key == "engines" else prompt_sets)]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(Problem(pointer, f"{name!r} is named twice"))
    if problems:
        raise ConfigError(problems)
    return engines, prompt_sets, alerts


# --- plan and apply --------------------------------------------------------------------------


def _diff(kind: str, name: str, before: dict | None, after: dict) -> Change:
    if before is None:
        return Change(kind, name, "create", {k: (None, v) for k, v in after.items() if k != "name"})
    changed = {
        key: (before.get(key), value)
        for key, value in after.items()
        if key != "name" and _comparable(before.get(key)) != _comparable(value)
    }
    return Change(kind, name, "update" if changed else "unchanged", changed)


def _comparable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, str):
        try:
            return Decimal(value).normalize() if value.strip() else value
        except InvalidOperation:
            return value
    return value


def config_plan(*, brand: Brand, document: Any) -> list[Change]:
    """What applying the document would change, without changing anything."""
    engines, prompt_sets, alerts = config_read(document, brand=brand)
    stored_engines = {e.name: engine_document(e) for e in brand.engines.all()}
    stored_sets = {
        p.name: prompt_set_document(p) for p in brand.prompt_sets.select_related("sentiment_judge")
    }
    changes = [_diff("engine", e["name"], stored_engines.get(e["name"]), e) for e in engines]
    changes += [_diff("prompt_set", p["name"], stored_sets.get(p["name"]), p) for p in prompt_sets]
    if alerts is not None:
        has_settings = AlertSettings.objects.filter(brand=brand).exists()
        change = _diff("alerts", "alerts", alerts_document(brand) if has_settings else None, alerts)
        changes.append(change)
    return changes


@transaction.atomic
def config_apply(*, brand: Brand, document: Any, user=None, dry_run: bool = False) -> list[Change]:
    """Apply the document (see the module note); the plan of what changed is returned."""
    changes = config_plan(brand=brand, document=document)
    if dry_run or all(change.action == "unchanged" for change in changes):
        return changes
    engines, prompt_sets, alerts = config_read(document, brand=brand)
    problems: list[Problem] = []
    for index, engine in enumerate(engines):
        fields = {k: v for k, v in engine.items() if k not in ENGINE_REQUIRED}
        try:
            engine_save(brand=brand, name=engine["name"], base_url=engine["base_url"],
                        model=engine["model"], user=user, **fields)  # fmt: skip
        except ValidationError as error:
            problems += [
                Problem(f"/engines/{index}/{name}", " ".join(messages))
                for name, messages in error.message_dict.items()
            ]
        except VisibilityError as error:
            problems.append(Problem(f"/engines/{index}", str(error)))
    judges = {e.name: e for e in brand.engines.all()}
    for index, prompt_set in enumerate(prompt_sets):
        judge_name = prompt_set["sentiment_judge"]
        if judge_name and judge_name not in judges:
            problems.append(Problem(f"/prompt_sets/{index}/sentiment_judge",
                                    f"{judge_name!r} is not one of the brand's engines"))  # fmt: skip
            continue
        try:
            prompt_set_save(
                brand=brand, name=prompt_set["name"], language=prompt_set["language"],
                prompts=prompt_set["prompts"], competitors=prompt_set["competitors"],
                repetitions=prompt_set["repetitions"], schedule=prompt_set["schedule"],
                enabled=prompt_set["enabled"], pair_group=prompt_set["pair_group"],
                location=prompt_set["location"],
                sentiment_judge=judges[judge_name] if judge_name else None, user=user,
            )  # fmt: skip
        except VisibilityError as error:
            problems.append(Problem(f"/prompt_sets/{index}", str(error)))
    if alerts is not None:
        problems += _alerts_apply(brand, alerts)
    if problems:
        transaction.set_rollback(True)
        raise ConfigError(problems)
    return changes


def _alerts_apply(brand: Brand, alerts: dict) -> list[Problem]:
    webhook = None
    if alerts["webhook"]:
        webhook = Target.objects.filter(
            brand=brand, name=alerts["webhook"], kind=Target.Kind.WEBHOOK
        ).first()
        if webhook is None:
            return [
                Problem(
                    "/alerts/webhook", f"{alerts['webhook']!r} is not a webhook target of the brand"
                )
            ]
    AlertSettings.objects.update_or_create(
        brand=brand, defaults={"emails": "\n".join(alerts["emails"]), "webhook": webhook}
    )
    return []


def changes_text(changes: list[Change]) -> str:
    """The plan as a diff people read: + created, ~ updated (field: before → after), = same."""
    marks = {"create": "+", "update": "~", "unchanged": "="}
    lines = []
    for change in changes:
        lines.append(f"{marks[change.action]} {change.kind} {change.name!r}: {change.action}")
        if change.action == "update":
            for name, (old, new) in change.fields.items():
                if isinstance(old, list) and isinstance(new, list) and name == "prompts":
                    lines += [f"    prompts: + {q!r}" for q in new if q not in old]
                    lines += [f"    prompts: - {q!r}" for q in old if q not in new]
                else:
                    lines.append(f"    {name}: {old!r} → {new!r}")
    return "\n".join(lines)
