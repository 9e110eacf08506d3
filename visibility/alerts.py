"""Alerts: one record per change, with the reasons we can find, delivered by email and webhook.

A change is judged per (engine, prompt) against the previous run of the same prompt set:
an engine that mentioned the brand there and does not now has *stopped mentioning* it; a
(fact, stated value) that was not there before is a *new misstatement*. The next run that
still lacks the mention compares with a run that lacked it too, so it raises nothing.
"""

from __future__ import annotations

import functools
import logging
import urllib.robotparser
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from kb.models import FAQ, AuditEntry, Brand, Entity, Fact
from publishing.models import Release, Target
from publishing.selectors import release_live
from publishing.store import artifact_read
from visibility.access_logs import AGENTS
from visibility.analysis import normalize
from visibility.models import Alert, AlertSettings, Answer, CrawlerHit, Engine, Prompt, Run
from visibility.tracking import brand_names

logger = logging.getLogger(__name__)
RECENT = timedelta(days=30)
ALERT_EVENT = "visibility.alert"


def previous_run(run: Run) -> Run | None:
    return (
        Run.objects.filter(prompt_set=run.prompt_set, started_at__lt=run.started_at)
        .exclude(state=Run.State.RUNNING)
        .order_by("-started_at")
        .first()
    )


def alerts_detect(*, run: Run) -> list[Alert]:
    """Record the run's changes against the previous run; idempotent (unique per change)."""
    before = previous_run(run)
    if before is None:
        return []
    now_by_slot, before_by_slot = _answers_by_slot(run), _answers_by_slot(before)
    created: list[Alert] = []
    for (engine_id, prompt_id), answers in now_by_slot.items():
        earlier = before_by_slot.get((engine_id, prompt_id))
        if not earlier:
            continue
        engine, prompt = answers[0].engine, answers[0].prompt
        if any(a.mentioned for a in earlier) and not any(a.mentioned for a in answers):
            created += _record(
                run, engine, prompt, Alert.Kind.LOST_MENTION, "",
                f"{engine} stopped mentioning {run.brand} for “{prompt}” "
                f"(0 of {len(answers)} answers; {sum(a.mentioned for a in earlier)} of "
                f"{len(earlier)} in the previous run).",
                answers, earlier,
            )  # fmt: skip
        known = {(m["fact_key"], m["stated"]) for a in earlier for m in a.misstatements}
        new: dict[str, dict] = {}
        for answer in answers:
            for m in answer.misstatements:
                if (m["fact_key"], m["stated"]) not in known:
                    new.setdefault(m["fact_key"], m)
        for fact_key, m in new.items():
            created += _record(
                run, engine, prompt, Alert.Kind.MISSTATEMENT, fact_key,
                f"{engine} states {m['stated']} for the fact “{fact_key}” (it is "
                f"{m['expected']}) when asked “{prompt}”.",
                answers, earlier,
            )  # fmt: skip
    for alert in created:
        transaction.on_commit(functools.partial(alert_deliver, alert_id=alert.pk))
    return created


def _answers_by_slot(run: Run) -> dict[tuple[int, int], list[Answer]]:
    slots: dict[tuple[int, int], list[Answer]] = defaultdict(list)
    for answer in Answer.objects.filter(run=run, ok=True).select_related("engine", "prompt"):
        slots[(answer.engine_id, answer.prompt_id)].append(answer)
    return slots


def _record(run, engine, prompt, kind, fact_key, summary, answers, earlier) -> list[Alert]:
    alert, created = Alert.objects.get_or_create(
        run=run,
        engine=engine,
        prompt=prompt,
        kind=kind,
        fact_key=fact_key,
        defaults={
            "brand": run.brand,
            "summary": summary,
            "reasons": alert_reasons(
                brand=run.brand, engine=engine, prompt=prompt, answers=answers, earlier=earlier
            ),
        },
    )
    return [alert] if created else []


# --- reasons ----------------------------------------------------------------------------------


def alert_reasons(
    *, brand: Brand, engine: Engine, prompt: Prompt, answers: list[Answer], earlier: list[Answer]
) -> list[dict]:
    """Why it may have happened, each as {"code", "text"} in plain words."""
    reasons = _fact_reasons(answers, earlier)
    topic = topic_entities(brand, prompt.text, earlier)
    reasons += _change_reasons(brand, topic)
    release = release_live(brand=brand)
    reasons += _robots_reasons(brand, engine, release)
    reasons += _llms_txt_reasons(brand, topic, release)
    reasons += _crawler_reasons(brand, engine)
    return reasons


def _fact_reasons(answers: list[Answer], earlier: list[Answer]) -> list[dict]:
    reasons = []
    seen = set()
    for answer in answers:
        for m in answer.misstatements:
            if (m["fact_key"], m["stated"]) in seen:
                continue
            seen.add((m["fact_key"], m["stated"]))
            reasons.append({
                "code": "fact_misstated",
                "text": f"The answer states {m['stated']} for “{m['fact_key']}”; the fact says "
                f"{m['expected']}: “{m['excerpt']}”",
                "fact": m["fact_key"],
            })  # fmt: skip
    confirmed_before = {k for a in earlier for k in a.analysis.get("confirmed_facts", [])}
    confirmed_now = {k for a in answers for k in a.analysis.get("confirmed_facts", [])}
    for key in sorted(confirmed_before - confirmed_now):
        reasons.append({
            "code": "fact_missing",
            "text": f"The fact “{key}” was stated correctly before and is missing now.",
            "fact": key,
        })  # fmt: skip
    return reasons


def topic_entities(brand: Brand, question: str, earlier: list[Answer]) -> list[Entity]:
    """The brand's entities the question or the earlier answers name."""
    haystack = normalize(" ".join([question, *(a.content for a in earlier if a.mentioned)]))
    own_names = {normalize(n) for n in brand_names(brand)}
    found = []
    for entity in Entity.objects.filter(brand=brand).only("pk", "label", "data", "primary_type"):
        names = {
            normalize(v["@value"])
            for v in entity.data.get("name", [])
            if isinstance(v, dict) and isinstance(v.get("@value"), str)
        }
        if names & own_names:
            continue  # the brand itself: every answer names it, so it says nothing of the topic
        if any(len(n) > 2 and n in haystack for n in names):
            found.append(entity)
    return found


def _change_reasons(brand: Brand, topic: list[Entity]) -> list[dict]:
    if not topic:
        return []
    # The topic's entities and the facts and FAQs about them, asked of the database
    # directly: a brand's audit log of 30 days can be far larger than the topic.
    about_topic = Q(
        content_type=ContentType.objects.get_for_model(Entity),
        object_id__in=[e.pk for e in topic],
    )
    for model in (Fact, FAQ):
        about_topic |= Q(
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=model.objects.filter(about__in=topic).values("pk"),
        )
    entries = (
        AuditEntry.objects.filter(
            about_topic,
            brand=brand,
            timestamp__gte=timezone.now() - RECENT,
            action__in=["publish", "unpublish", "archive"],
        )
        .select_related("user")
        .order_by("-timestamp")[:10]
    )
    reasons = []
    for entry in entries:
        verb = {"publish": "changed and published", "unpublish": "unpublished"}.get(
            entry.action, "archived"
        )
        reasons.append({
            "code": "page_changed" if entry.action == "publish" else "page_unpublished",
            "text": f"{entry.object_repr} was {verb} on {entry.timestamp:%Y-%m-%d}"
            + (f" by {entry.user}" if entry.user else "") + ".",
        })  # fmt: skip
    return reasons


def release_text(release: Release | None, path: str) -> str | None:
    if release is None:
        return None
    artifact = release.artifacts.filter(path=path).first()
    return artifact_read(artifact.sha256).decode("utf-8") if artifact else None


def engine_agents(engine: Engine):
    """The crawlers (and robots.txt-only tokens) that feed this engine."""
    return [a for a in AGENTS if engine.crawler and a.engine == engine.crawler]


def _robots_reasons(brand: Brand, engine: Engine, release: Release | None) -> list[dict]:
    robots = release_text(release, "robots.txt")
    if robots is None:
        return []
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(robots.splitlines())
    blocked = [
        a for a in engine_agents(engine) if not parser.can_fetch(a.token, f"{brand.base_url}/")
    ]
    return [
        {
            "code": "robots_blocks",
            "text": f"robots.txt of release {release.number} blocks {a.token} ({a.purpose} "
            f"crawler of {a.operator}).",
        }
        for a in blocked
    ]


def _llms_txt_reasons(brand: Brand, topic: list[Entity], release: Release | None) -> list[dict]:
    text = release_text(release, "llms.txt")
    if text is None or not topic:
        return []
    reasons = []
    normalized = normalize(text)
    for entity in topic:
        linked = normalize(entity.label) in normalized
        reasons.append({
            "code": "llms_txt_links" if linked else "llms_txt_missing",
            "text": f"llms.txt {'links' if linked else 'does not link'} {entity.label}.",
        })  # fmt: skip
    return reasons


def _crawler_reasons(brand: Brand, engine: Engine) -> list[dict]:
    if not engine.crawler:
        return []
    hits = CrawlerHit.objects.filter(brand=brand, engine=engine.crawler)
    last = hits.aggregate(last=Max("time"))["last"]
    if last is None:
        return [{
            "code": "crawler_never_seen",
            "text": f"No visit from {engine.crawler}'s crawlers in the imported access logs.",
        }]  # fmt: skip
    latest = hits.order_by("-time").first()
    return [{
        "code": "crawler_last_visit",
        "text": f"{engine.crawler}'s crawlers last fetched the site on {last:%Y-%m-%d %H:%M} UTC "
        f"({latest.agent}, {latest.path}, HTTP {latest.status}).",
    }]  # fmt: skip


# --- delivery ---------------------------------------------------------------------------------


def alert_payload(alert: Alert) -> dict:
    return {
        "type": ALERT_EVENT,
        "brand": alert.brand.slug,
        "kind": alert.kind,
        "engine": alert.engine.name,
        "prompt": alert.prompt.text,
        "fact": alert.fact_key or None,
        "summary": alert.summary,
        "reasons": alert.reasons,
        "run": alert.run_id,
        "created_at": alert.created_at.isoformat(),
    }


def alert_deliver(*, alert_id: int) -> None:
    """Queue the email and the webhook of an alert (after the commit that recorded it)."""
    from publishing.webhooks import webhook_event_create
    from visibility.tasks import alert_email

    alert = Alert.objects.select_related("brand").filter(pk=alert_id).first()
    policy = AlertSettings.objects.filter(brand_id=alert.brand_id).first() if alert else None
    if policy is None:
        return
    if policy.email_list:
        try:
            alert_email.delay(alert.pk)
        except Exception:
            logger.exception("Could not queue the email of alert %s.", alert.pk)
    if policy.webhook_id and policy.webhook.kind == Target.Kind.WEBHOOK:
        with transaction.atomic():
            webhook_event_create(
                target=policy.webhook, event=ALERT_EVENT, payload=alert_payload(alert)
            )


def alert_email_send(*, alert_id: int) -> bool:
    """Send an alert's email once (``emailed_at`` marks it sent)."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .select_related("brand", "engine", "prompt")
            .filter(pk=alert_id, emailed_at__isnull=True)
            .first()
        )
        policy = AlertSettings.objects.filter(brand_id=alert.brand_id).first() if alert else None
        if alert is None or policy is None or not policy.email_list:
            return False
        lines = [alert.summary, "", "Possible reasons:"]
        lines += [f"- {r['text']}" for r in alert.reasons] or ["- none found"]
        send_mail(
            subject=f"[{alert.brand}] {alert.get_kind_display()}: {alert.engine}",
            message="\n".join(lines),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=policy.email_list,
        )
        alert.emailed_at = timezone.now()
        alert.save(update_fields=["emailed_at"])
    return True
