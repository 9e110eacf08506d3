"""Writes of AI visibility: engines, prompt sets and their schedules, runs and their answers.

Admin, API, CLI and tasks all call these. Runs are resumable: an answer is one row per
(run, engine, prompt, repetition), so a retried or restarted task asks only what is missing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal

import pycountry
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.egress import EgressRefused
from kb.models import Brand
from kb.services.permissions import require
from visibility.analysis import analyse
from visibility.engines import EngineReply, engine_ask, engine_client
from visibility.models import Answer, Engine, Prompt, PromptSet, Run
from visibility.secrets import SecretUnavailable, secret_encrypt
from visibility.tracking import fact_claims, tracked_brand, tracked_competitors

logger = logging.getLogger(__name__)
RUN_TASK = "visibility.run_prompt_set"
Progress = Callable[[int], None]
# Request fields Sourcebook sets itself; the rest (temperature, max_tokens, …) are passed on.
RESERVED_PARAMETERS = frozenset({"model", "messages", "stream", "n"})


KEEP = object()  # prompt_set_save: leave the stored value as it is


class VisibilityError(Exception):
    """A request the product cannot carry out, said in plain words."""


# --- engines --------------------------------------------------------------------------------


def engine_save(
    *,
    brand: Brand,
    name: str,
    base_url: str,
    model: str,
    api_key: str | None = None,
    api_key_env: str = "",
    user=None,
    **fields,
) -> Engine:
    """Create or update an engine by name. ``api_key`` None keeps the stored key."""
    require(user, brand, "admin")
    parameters = fields.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise VisibilityError(
                'Engine parameters must be a JSON object, e.g. {"temperature": 0.7}.'
            )
        reserved = sorted(set(parameters) & RESERVED_PARAMETERS)
        if reserved:
            raise VisibilityError(
                f"Engine parameters may not set {', '.join(reserved)}: Sourcebook sets those."
            )
    engine = Engine.objects.filter(brand=brand, name=name).first() or Engine(brand=brand, name=name)
    engine.base_url, engine.model, engine.api_key_env = base_url, model, api_key_env
    for field, value in fields.items():
        setattr(engine, field, value)
    if api_key is not None:
        engine.api_key_encrypted = secret_encrypt(api_key)
    engine.full_clean()
    engine.save()
    return engine


# --- prompt sets and their beat schedule ------------------------------------------------------


def crontab_parts(line: str) -> dict[str, str]:
    parts = line.split()
    if len(parts) != 5:
        raise VisibilityError(
            f"The schedule {line!r} is not a crontab line: give 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 6 * * *'."
        )
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def competitors_check(competitors) -> None:
    """``[{"name": …, "aliases": [...], "domains": [...]}]``, said in plain words when not."""
    if not isinstance(competitors, list):
        raise VisibilityError('Competitors must be a list: [{"name": "…", "aliases": ["…"]}].')
    for index, item in enumerate(competitors, 1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise VisibilityError(f"Competitor {index} needs a name.")
        for key in ("aliases", "domains"):
            value = item.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise VisibilityError(f"Competitor {index} ({item['name']}): {key} must be a "
                                      "list of texts.")  # fmt: skip


def location_code(country: str) -> str:
    """An ISO 3166-1 alpha-2 country code, upper case ("" for none); VisibilityError if it is
    not one."""
    code = country.strip().upper()
    if code and pycountry.countries.get(alpha_2=code) is None:
        raise VisibilityError(f"{country!r} is not a country code (ISO 3166-1, e.g. US, DE, CN).")
    return code


def schedule_name(prompt_set: PromptSet) -> str:
    return f"visibility: {prompt_set.brand.slug} / {prompt_set.name} (#{prompt_set.pk})"


@transaction.atomic
def prompt_set_save(
    *,
    brand: Brand,
    name: str,
    language: str,
    prompts: Iterable[str] | None = None,
    competitors: list[dict] | None = None,
    repetitions: int | None = None,
    schedule: str | None = None,
    enabled: bool | None = None,
    pair_group: str | None = None,
    location: str | None = None,
    sentiment_judge: Engine | None | object = KEEP,
    user=None,
) -> PromptSet:
    """Create or update a prompt set and its django-celery-beat schedule.

    On an update, what is not given (None; KEEP for the sentiment judge, which None takes
    away) keeps its stored value.
    """
    require(user, brand, "edit")
    if language not in brand.languages:
        raise VisibilityError(
            f"{language!r} is not one of {brand}'s languages ({', '.join(brand.languages)})."
        )
    if schedule is not None:
        crontab_parts(schedule)
    if competitors is not None:
        competitors_check(competitors)
    if repetitions is not None and not 1 <= repetitions <= 20:
        raise VisibilityError(f"Repetitions must be between 1 and 20, not {repetitions}.")
    if isinstance(sentiment_judge, Engine) and sentiment_judge.brand_id != brand.pk:
        raise VisibilityError(f"The sentiment judge {sentiment_judge} is not an engine of {brand}.")
    given = {
        "language": language,
        "competitors": competitors,
        "repetitions": repetitions,
        "schedule": schedule,
        "enabled": enabled,
        "pair_group": pair_group.strip() if pair_group is not None else None,
        "location": location_code(location) if location is not None else None,
    }
    prompt_set = PromptSet.objects.filter(brand=brand, name=name).first() or PromptSet(
        brand=brand, name=name
    )
    for field, value in given.items():
        if value is not None:
            setattr(prompt_set, field, value)
    if sentiment_judge is not KEEP:
        prompt_set.sentiment_judge = sentiment_judge
    prompt_set.save()
    if prompts is not None:
        texts = [t.strip() for t in prompts if t.strip()]
        prompt_set.prompts.exclude(text__in=texts).update(active=False)
        for order, text in enumerate(texts):
            Prompt.objects.update_or_create(
                prompt_set=prompt_set, text=text, defaults={"order": order, "active": True}
            )
    prompt_set_schedule_sync(prompt_set=prompt_set)
    return prompt_set


def prompt_set_schedule_sync(*, prompt_set: PromptSet) -> PeriodicTask:
    """The beat entry that runs this prompt set: stored as data, visible in the admin."""
    crontab, _ = CrontabSchedule.objects.get_or_create(
        **crontab_parts(prompt_set.schedule), timezone="UTC"
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=schedule_name(prompt_set),
        defaults={
            "task": RUN_TASK,
            "crontab": crontab,
            "interval": None,
            "args": f"[{prompt_set.pk}]",
            "enabled": prompt_set.enabled,
            "description": f"Ask {prompt_set}'s questions to every enabled engine of "
            f"{prompt_set.brand}.",
        },
    )
    return task


def prompt_set_schedule_remove(sender, instance: PromptSet, **kwargs) -> None:
    PeriodicTask.objects.filter(task=RUN_TASK, args=f"[{instance.pk}]").delete()


# --- runs -------------------------------------------------------------------------------------


def run_start(
    *,
    prompt_set: PromptSet,
    engines: Iterable[Engine] | None = None,
    trigger: str = "manual",
    user=None,
    queue: bool = True,
) -> Run:
    """Record a run and (with ``queue``) queue one task per engine once it is committed."""
    require(user, prompt_set.brand, "edit")
    chosen = list(engines if engines is not None else prompt_set.brand.engines.filter(enabled=True))
    foreign = [e.name for e in chosen if e.brand_id != prompt_set.brand_id]
    if foreign:
        raise VisibilityError(f"{', '.join(foreign)} belong(s) to another brand.")
    if not chosen:
        raise VisibilityError(f"{prompt_set.brand} has no enabled engine to ask.")
    prompts = prompt_set.prompts.filter(active=True).count()
    if not prompts:
        raise VisibilityError(f"{prompt_set} has no questions.")
    with transaction.atomic():
        run = Run.objects.create(
            brand=prompt_set.brand,
            prompt_set=prompt_set,
            trigger=trigger,
            requested_by=user,
            expected=prompts * len(chosen) * prompt_set.repetitions,
            location=prompt_set.location,
            language=prompt_set.language,
            started_at=timezone.now(),
        )
        run.engines.set(chosen)
        if queue:
            from visibility.tasks import run_engine

            for engine in chosen:
                transaction.on_commit(
                    functools.partial(run_engine.delay, run.pk, engine.pk), robust=True
                )
    return run


def run_engine_execute(*, run_id: int, engine_id: int, progress: Progress | None = None) -> int:
    """Ask every missing (prompt, repetition) of one engine in a run; return how many were new.

    Safe to repeat: slots already answered are skipped, and a slot answered concurrently
    is left to whoever wrote it first.
    """
    run = Run.objects.select_related("brand", "prompt_set").get(pk=run_id)
    engine = Engine.objects.get(pk=engine_id, brand=run.brand)
    brand, prompt_set = run.brand, run.prompt_set
    tracked, competitors, facts = (
        tracked_brand(brand),
        tracked_competitors(prompt_set),
        fact_claims(brand),
    )
    from visibility.tasks import judge_answer

    done = set(Answer.objects.filter(run=run, engine=engine).values_list("prompt_id", "repetition"))
    asked = 0
    try:
        client = engine_client(engine)  # one connection pool for the whole run
    except (SecretUnavailable, EgressRefused):
        client = None  # engine_ask reports it on every answer
    for prompt in prompt_set.prompts.filter(active=True):
        for repetition in range(prompt_set.repetitions):
            if (prompt.pk, repetition) in done:
                continue
            reply = engine_ask(engine, prompt.text, client=client, country=run.location)
            answer = answer_from_reply(run, engine, prompt, repetition, reply)
            if reply.ok:
                result = analyse(reply.content, reply.citations, tracked, competitors, facts)
                answer_apply_analysis(answer, result.as_dict())
            try:
                with transaction.atomic():
                    answer.save()
                    if prompt_set.sentiment_judge_id and (answer.mentioned or answer.competitors):
                        transaction.on_commit(
                            functools.partial(judge_answer.delay, answer.pk), robust=True
                        )
            except IntegrityError:
                continue  # another worker answered this slot
            asked += 1
            if progress:
                progress(1)
    run_finish_if_complete(run_id=run.pk)
    return asked


def answer_from_reply(
    run: Run, engine: Engine, prompt: Prompt, repetition: int, reply: EngineReply
) -> Answer:
    return Answer(
        run=run,
        engine=engine,
        prompt=prompt,
        repetition=repetition,
        language=run.prompt_set.language,
        asked_at=timezone.now(),
        ok=reply.ok,
        error=reply.error,
        content=reply.content,
        citations=reply.citations,
        response=reply.response,
        latency_ms=reply.latency_ms,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cost=reply.cost or Decimal(0),
    )


def answer_apply_analysis(answer: Answer, analysis: dict) -> None:
    answer.analysis = analysis
    answer.mentioned = analysis["mentioned"]
    answer.cited = analysis["cited"]
    answer.position = analysis["position"]
    answer.first_mention = analysis["first_mention"]
    answer.competitors = analysis["competitors_mentioned"]
    answer.misstatements = analysis["misstatements"]


def answers_reanalyse(*, brand: Brand, answers=None) -> int:
    """Analyse stored answers again (after the brand's names, competitors or facts changed)."""
    tracked, facts = tracked_brand(brand), fact_claims(brand)
    count = 0
    queryset = answers if answers is not None else Answer.objects.filter(run__brand=brand, ok=True)
    for answer in queryset.select_related("run__prompt_set").iterator():
        competitors = tracked_competitors(answer.run.prompt_set)
        result = analyse(answer.content, answer.citations, tracked, competitors, facts)
        answer_apply_analysis(answer, result.as_dict())
        answer.save()
        count += 1
    return count


def runs_resume_stalled(*, quiet_for: timedelta = timedelta(minutes=30)) -> int:
    """Queue again the engines of runs with no new answer for a while (broker down, worker lost).

    Safe: an engine's task asks only the slots still missing.
    """
    from visibility.tasks import run_engine

    cutoff = timezone.now() - quiet_for
    queued = 0
    for run in Run.objects.filter(state=Run.State.RUNNING, started_at__lt=cutoff):
        last = run.answers.aggregate(last=Max("asked_at"))["last"]
        if last is not None and last >= cutoff:
            continue
        answered = dict(
            run.answers.values_list("engine_id")
            .annotate(n=Count("pk"))
            .values_list("engine_id", "n")
        )
        per_engine = run.expected // max(run.engines.count(), 1)
        for engine_id in run.engines.values_list("pk", flat=True):
            if answered.get(engine_id, 0) < per_engine:
                run_engine.delay(run.pk, engine_id)
                queued += 1
        run_finish_if_complete(run_id=run.pk)
    return queued


def run_finish_if_complete(*, run_id: int) -> Run:
    """Close the run once every slot has an answer (or an error); then look for alerts."""
    from visibility.alerts import alerts_detect

    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.state != Run.State.RUNNING:
            return run
        answers = Answer.objects.filter(run=run)
        if answers.count() < run.expected:
            return run
        failed = answers.filter(ok=False).count()
        run.state = (
            Run.State.FAILED
            if failed == run.expected
            else Run.State.PARTIAL
            if failed
            else Run.State.DONE
        )
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "finished_at"])
        alerts_detect(run=run)
    return run


def engines_named(*, brand: Brand, names: Iterable[str]) -> list[Engine]:
    """The brand's engines by name (disabled ones too: naming one is asking for it)."""
    names = list(dict.fromkeys(names))
    found = {e.name: e for e in brand.engines.filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        known = ", ".join(brand.engines.values_list("name", flat=True)) or "none"
        raise VisibilityError(f"{brand} has no engine named {', '.join(missing)} (has: {known}).")
    return [found[n] for n in names]


def visibility_run(
    *,
    brand: Brand,
    engine_names: Iterable[str] | None = None,
    trigger: str = "cli",
    user=None,
    progress: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> list[Run]:
    """Run every enabled prompt set of the brand now, in this process (the CLI)."""
    engines = (
        engines_named(brand=brand, names=engine_names)
        if engine_names
        else list(brand.engines.filter(enabled=True))
    )
    prompt_sets = list(brand.prompt_sets.filter(enabled=True))
    if not prompt_sets:
        raise VisibilityError(f"{brand} has no enabled prompt set.")
    runs = [
        run_start(prompt_set=ps, engines=engines, trigger=trigger, user=user, queue=False)
        for ps in prompt_sets
    ]
    if on_plan:
        on_plan(sum(run.expected for run in runs))
    for run in runs:
        for engine in engines:
            run_engine_execute(run_id=run.pk, engine_id=engine.pk, progress=progress)
    return [Run.objects.get(pk=run.pk) for run in runs]
