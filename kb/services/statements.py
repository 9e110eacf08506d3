"""Facts and FAQs: create, update, delete through the same workflow as entities."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kb.models import FAQ, Brand, Fact, RevisionedModel, Status
from kb.search import fact_search_text, faq_search_text
from kb.services.errors import InvalidContent, WorkflowError
from kb.services.permissions import require
from kb.services.workflow import (
    ensure_current,
    lock,
    log_action,
    revision_create,
    revisions_of,
    working_copy_saved,
)
from kb.validation import Problem

FACT_FIELDS = (
    "key",
    "about",
    "statement",
    "value",
    "unit",
    "unit_labels",
    "check_cues",
    "source_url",
    "source_title",
    "as_of",
    "valid_until",
)
FAQ_FIELDS = ("key", "about", "question", "answer", "order")
MULTILINGUAL = {"statement", "source_title", "unit_labels", "question", "answer"}
REQUIRED_TEXT = {"statement", "question", "answer"}
UNIT_LABEL_MAX_CHARS = 50  # as Fact.unit
CUE_MAX_CHARS, CUES_MAX = 50, 20


def check_multilingual(brand: Brand, obj: RevisionedModel) -> list[Problem]:
    problems = []
    for field in [f.name for f in obj._meta.fields if f.name in MULTILINGUAL]:
        values = getattr(obj, field) or {}
        if not isinstance(values, dict):
            problems.append(Problem(f"/{field}", _('give one text per language, e.g. {"en": "…"}')))
            continue
        for language, text in values.items():
            if brand.canonical_language(language) is None:
                problems.append(
                    Problem(
                        f"/{field}/{language}",
                        _("%(language)s is not one of the brand's languages (%(languages)s)")
                        % {"language": repr(language), "languages": ", ".join(brand.languages)},
                    )
                )
            elif not isinstance(text, str):
                problems.append(Problem(f"/{field}/{language}", _("must be text")))
            elif field == "unit_labels" and len(text) > UNIT_LABEL_MAX_CHARS:
                problems.append(
                    Problem(
                        f"/{field}/{language}",
                        _("a unit is at most %(max)s characters, not %(length)s")
                        % {"max": UNIT_LABEL_MAX_CHARS, "length": len(text)},
                    )
                )
        if field in REQUIRED_TEXT and not str(values.get(brand.default_language, "")).strip():
            problems.append(
                Problem(f"/{field}/{brand.default_language}", _("required in the default language"))
            )
    return problems


def check_cues(cues: Any) -> list[Problem]:
    """A fact's cue words: a list of short texts."""
    if not isinstance(cues, list):
        return [Problem("/check_cues", _('give a list of words, e.g. ["employs", "员工"]'))]
    if len(cues) > CUES_MAX:
        return [Problem("/check_cues", _("at most %(max)s cue words") % {"max": CUES_MAX})]
    problems = []
    for index, cue in enumerate(cues):
        if not isinstance(cue, str) or not cue.strip():
            problems.append(Problem(f"/check_cues/{index}", _("must be a word or phrase")))
        elif len(cue) > CUE_MAX_CHARS:
            problems.append(
                Problem(
                    f"/check_cues/{index}",
                    _("a cue is at most %(max)s characters, not %(length)s")
                    % {"max": CUE_MAX_CHARS, "length": len(cue)},
                )
            )
    return problems


def full_check(brand: Brand, obj: RevisionedModel) -> None:
    problems = check_multilingual(brand, obj)
    if isinstance(obj, Fact):
        problems += check_cues(obj.check_cues)
    if getattr(obj, "about_id", None) and obj.about.brand_id != brand.pk:
        problems.append(Problem("/about", _("must be an entity of the same brand")))
    try:
        obj.full_clean(
            exclude=[
                "brand",
                "latest_revision",
                "live_revision",
                "about",
                "check_cues",
                *MULTILINGUAL,
            ]
        )
    except ValidationError as error:
        problems += [
            Problem(f"/{field}", " ".join(messages))
            for field, messages in error.message_dict.items()
        ]
    if (
        isinstance(obj, Fact)
        and obj.valid_until
        and obj.as_of
        and obj.valid_until < _date(obj.as_of)
    ):
        problems.append(Problem("/valid_until", _("must not be before as_of")))
    if obj.key and statement_key_taken(brand=brand, model=type(obj), key=obj.key, pk=obj.pk):
        problems.append(Problem("/key", key_taken_message(type(obj))))
    if problems:
        raise InvalidContent(problems)


def statement_key_taken(*, brand: Brand, model: type[Fact] | type[FAQ], key: str, pk) -> bool:
    """Whether another fact (or FAQ) of the brand has ``key``: keys are unique per brand."""
    return model.objects.filter(brand=brand, key=key).exclude(pk=pk).exists()


def key_taken_message(model: type[Fact] | type[FAQ]) -> str:
    return _("The brand already has a %(kind)s with this key.") % {"kind": model._meta.verbose_name}


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _canonical(brand: Brand, obj: RevisionedModel) -> None:
    for field in MULTILINGUAL & {f.name for f in obj._meta.fields}:
        values = getattr(obj, field)
        if isinstance(values, dict):
            setattr(
                obj,
                field,
                {
                    brand.canonical_language(k) or k: v
                    for k, v in values.items()
                    if v not in ("", None)
                },
            )


def refresh_search_text(*, obj: Fact | FAQ) -> None:
    """The admin's search text (kb.search), set wherever a fact or FAQ is saved."""
    obj.search_text = fact_search_text(obj) if isinstance(obj, Fact) else faq_search_text(obj)


@transaction.atomic
def statement_create(
    *, model: type[Fact] | type[FAQ], brand: Brand, user=None, message="", **fields
):
    require(user, brand, "edit")
    obj = model(brand=brand, **fields)
    _canonical(brand, obj)
    full_check(brand, obj)
    refresh_search_text(obj=obj)
    obj.version = 1
    obj.save()
    revision_create(obj=obj, user=user, message=message or "Created")
    log_action(obj, "create", user)
    return obj


@transaction.atomic
def statement_update(
    *, obj: Fact | FAQ, expected_version: int | None, user=None, message="", **fields
):
    obj = lock(obj)
    require(user, obj.brand, "edit")
    ensure_current(obj, expected_version)
    if obj.status == Status.ARCHIVED:
        raise WorkflowError(
            _("%(object)s is archived; restore it before editing.") % {"object": obj}
        )
    before = obj.snapshot()
    for name, value in fields.items():
        setattr(obj, name, value)
    _canonical(obj.brand, obj)
    full_check(obj.brand, obj)
    if obj.snapshot() == before:
        return obj
    refresh_search_text(obj=obj)
    obj.version += 1
    working_copy_saved(obj)
    obj.save()
    revision_create(obj=obj, user=user, message=message)
    log_action(obj, "edit", user, version=obj.version)
    return obj


@transaction.atomic
def statement_delete(*, obj: Fact | FAQ, user=None) -> None:
    obj = lock(obj)
    require(user, obj.brand, "edit")
    log_action(obj, "delete", user, key=obj.key)
    type(obj).objects.filter(pk=obj.pk).update(latest_revision=None, live_revision=None)
    revisions_of(obj).delete()
    obj.delete()


def fact_create(*, brand: Brand, user=None, **fields) -> Fact:
    return statement_create(model=Fact, brand=brand, user=user, **fields)


def faq_create(*, brand: Brand, user=None, **fields) -> FAQ:
    return statement_create(model=FAQ, brand=brand, user=user, **fields)
