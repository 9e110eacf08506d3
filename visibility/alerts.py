"""Alerts: one record per change, with the reasons we can find, delivered as one digest per run.

A change is judged per (engine, question) against that engine's last answers to the same
question: an engine that mentioned the brand there and does not now has *stopped mentioning*
it; a (fact, stated value) that was not there before is a *new misstatement*. An engine's
first answers to a question are judged on their own (``first_seen``): not mentioning the
brand at all, or misstating a fact, alerts as well, so that an engine added this week is
not silently wrong until it changes. The next run that still lacks the mention compares with
answers that lacked it too, so it raises nothing.

A run's new alerts go out together, grouped per engine and cause ("Alpha misstates
“founded” for 3 questions"): one email and one ``visibility.alerts`` webhook event.
"""

from __future__ import annotations

import functools
import logging
import urllib.robotparser
from collections import defaultdict
from dataclasses import dataclass
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
ALERTS_EVENT = "visibility.alerts"
REASONS_PER_GROUP = 8


def alerts_detect(*, run: Run) -> list[Alert]:
    """Record the run's changes and first-seen problems; idempotent (unique per change).
    The new ones are delivered as one digest once the transaction commits."""
    created: list[Alert] = []
    for (engine_id, prompt_id), answers in _answers_by_slot(run).items():
        earlier = _earlier_answers(run, engine_id, prompt_id)
        created += _mention_alerts(run, answers, earlier)
        created += _misstatement_alerts(run, answers, earlier)
    if created:
        transaction.on_commit(
            functools.partial(alerts_deliver, run_id=run.pk, alert_ids=[a.pk for a in created])
        )
    return created


def _answers_by_slot(run: Run) -> dict[tuple[int, int], list[Answer]]:
    slots: dict[tuple[int, int], list[Answer]] = defaultdict(list)
    for answer in Answer.objects.filter(run=run, ok=True).select_related("engine", "prompt"):
        slots[(answer.engine_id, answer.prompt_id)].append(answer)
    return slots


def _earlier_answers(run: Run, engine_id: int, prompt_id: int) -> list[Answer]:
    """The engine's answers to the question in the last earlier run that has any (a run in
    which the engine failed is skipped, so its recovery is not taken for a change)."""
    earlier = Answer.objects.filter(
        run__prompt_set=run.prompt_set,
        run__started_at__lt=run.started_at,
        engine_id=engine_id,
        prompt_id=prompt_id,
        ok=True,
    ).exclude(run__state=Run.State.RUNNING)
    last_run = earlier.order_by("-run__started_at").values_list("run_id", flat=True).first()
    return list(earlier.filter(run_id=last_run)) if last_run else []


def _mention_alerts(run: Run, answers: list[Answer], earlier: list[Answer]) -> list[Alert]:
    engine, prompt = answers[0].engine, answers[0].prompt
    if any(a.mentioned for a in answers):
        return []
    counts = {"answers": len(answers), "mentioned": 0}
    if not earlier:
        return _record(
            run, engine, prompt, Alert.Kind.NOT_MENTIONED, "",
            f"{engine} does not mention {run.brand} when asked “{prompt}” (0 of "
            f"{len(answers)} answers; its first answers to this question).",
            answers, earlier, first_seen=True, details=counts,
        )  # fmt: skip
    mentioned_before = sum(a.mentioned for a in earlier)
    if not mentioned_before:
        return []
    return _record(
        run, engine, prompt, Alert.Kind.LOST_MENTION, "",
        f"{engine} stopped mentioning {run.brand} for “{prompt}” (0 of {len(answers)} answers; "
        f"{mentioned_before} of {len(earlier)} in the previous run).",
        answers, earlier,
        details=counts | {"answers_before": len(earlier), "mentioned_before": mentioned_before},
    )  # fmt: skip


def _misstatement_alerts(run: Run, answers: list[Answer], earlier: list[Answer]) -> list[Alert]:
    engine, prompt = answers[0].engine, answers[0].prompt
    known = {(m["fact_key"], m["stated"]) for a in earlier for m in a.misstatements}
    new: dict[str, dict] = {}
    for answer in answers:
        for m in answer.misstatements:
            if (m["fact_key"], m["stated"]) not in known:
                new.setdefault(m["fact_key"], m)
    created: list[Alert] = []
    for fact_key, m in new.items():
        first = " (its first answers to this question)" if not earlier else ""
        created += _record(
            run, engine, prompt, Alert.Kind.MISSTATEMENT, fact_key,
            f"{engine} states {m['stated']} for the fact “{fact_key}” (it is "
            f"{m['expected']}) when asked “{prompt}”{first}.",
            answers, earlier, first_seen=not earlier,
            details={key: m.get(key, "") for key in ("stated", "expected", "excerpt",
                                                     "source_url")},
        )  # fmt: skip
    return created


def _record(
    run, engine, prompt, kind, fact_key, summary, answers, earlier, *, first_seen=False, details
) -> list[Alert]:
    alert, created = Alert.objects.get_or_create(
        run=run,
        engine=engine,
        prompt=prompt,
        kind=kind,
        fact_key=fact_key,
        defaults={
            "brand": run.brand,
            "summary": summary,
            "first_seen": first_seen,
            "details": details,
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


# --- delivery: one digest per run ----------------------------------------------------------


@dataclass(frozen=True)
class AlertGroup:
    """A run's alerts of one engine and one cause (a kind, and for misstatements the fact)."""

    engine: Engine
    kind: str
    fact_key: str
    alerts: tuple[Alert, ...]

    @property
    def first_seen(self) -> bool:
        return all(alert.first_seen for alert in self.alerts)

    @property
    def title(self) -> str:
        brand, count = self.alerts[0].brand, len(self.alerts)
        questions = f"{count} question{'s' if count != 1 else ''}"
        first = ", first answers" if self.first_seen else ""
        if self.kind == Alert.Kind.MISSTATEMENT:
            stated = ", ".join(dict.fromkeys(a.details.get("stated", "?") for a in self.alerts))
            expected = self.alerts[0].details.get("expected", "?")
            return (
                f"{self.engine} misstates “{self.fact_key}”: {stated} instead of {expected} "
                f"({questions}{first})"
            )
        if self.kind == Alert.Kind.LOST_MENTION:
            return f"{self.engine} stopped mentioning {brand} ({questions})"
        return f"{self.engine} does not mention {brand} ({questions}{first})"

    @property
    def reasons(self) -> list[dict]:
        unique = {reason["text"]: reason for alert in self.alerts for reason in alert.reasons}
        return list(unique.values())[:REASONS_PER_GROUP]


def alert_groups(alerts) -> list[AlertGroup]:
    """Alerts grouped per engine and cause, in the order their first alert was recorded."""
    grouped: dict[tuple, list[Alert]] = defaultdict(list)
    for alert in sorted(alerts, key=lambda a: (a.created_at, a.pk)):
        grouped[(alert.engine_id, alert.kind, alert.fact_key)].append(alert)
    return [
        AlertGroup(engine=items[0].engine, kind=kind, fact_key=fact_key, alerts=tuple(items))
        for (_, kind, fact_key), items in grouped.items()
    ]


def alert_payload(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "engine": alert.engine.name,
        "prompt": alert.prompt.text,
        "fact": alert.fact_key or None,
        "first_seen": alert.first_seen,
        "summary": alert.summary,
        "details": alert.details,
        "reasons": alert.reasons,
        "created_at": alert.created_at.isoformat(),
    }


def digest_payload(run: Run, alerts) -> dict:
    return {
        "type": ALERTS_EVENT,
        "brand": run.brand.slug,
        "run": run.pk,
        "prompt_set": run.prompt_set.name,
        "groups": [
            {
                "engine": group.engine.name,
                "kind": group.kind,
                "fact": group.fact_key or None,
                "first_seen": group.first_seen,
                "title": group.title,
                "alerts": [alert_payload(alert) for alert in group.alerts],
            }
            for group in alert_groups(alerts)
        ],
    }


def _digest_alerts(alert_ids) -> list[Alert]:
    return list(
        Alert.objects.filter(pk__in=alert_ids).select_related(
            "brand", "engine", "prompt", "run__prompt_set"
        )
    )


def alerts_deliver(*, run_id: int, alert_ids: list[int]) -> None:
    """Queue a run's digest (after the commit that recorded its alerts): the email, and the
    webhook event with the alerts given."""
    from publishing.webhooks import webhook_event_create
    from visibility.tasks import alerts_email

    alerts = _digest_alerts(alert_ids)
    run = alerts[0].run if alerts else None
    policy = AlertSettings.objects.filter(brand_id=run.brand_id).first() if run else None
    if policy is None:
        return
    if policy.email_list:
        try:
            alerts_email.delay(run_id)
        except Exception:
            logger.exception("Could not queue the alert email of run %s.", run_id)
    if policy.webhook_id and policy.webhook.kind == Target.Kind.WEBHOOK:
        with transaction.atomic():
            webhook_event_create(
                target=policy.webhook, event=ALERTS_EVENT, payload=digest_payload(run, alerts)
            )


def digest_text(run: Run, groups: list[AlertGroup]) -> str:
    count = sum(len(group.alerts) for group in groups)
    lines = [
        f"{count} alert{'s' if count != 1 else ''} from the run of “{run.prompt_set.name}” "
        f"started {run.started_at:%Y-%m-%d %H:%M} UTC.",
    ]
    for group in groups:
        lines += ["", group.title]
        lines += [f"  - {alert.summary}" for alert in group.alerts]
        lines.append("  Possible reasons:")
        lines += [f"  - {reason['text']}" for reason in group.reasons] or ["  - none found"]
    return "\n".join(lines)


def alerts_email_send(*, run_id: int) -> bool:
    """Send the digest of a run's alerts not yet emailed, once (``emailed_at`` marks them)."""
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update()
            .filter(run_id=run_id, emailed_at__isnull=True)
            .select_related("brand", "engine", "prompt", "run__prompt_set")
            .order_by("created_at", "pk")
        )
        policy = (
            AlertSettings.objects.filter(brand_id=alerts[0].brand_id).first() if alerts else None
        )
        if not alerts or policy is None or not policy.email_list:
            return False
        run, groups = alerts[0].run, alert_groups(alerts)
        send_mail(
            subject=f"[{run.brand}] {groups[0].title}"
            + (f" and {len(groups) - 1} more" if len(groups) > 1 else ""),
            message=digest_text(run, groups),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=policy.email_list,
        )
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(emailed_at=timezone.now())
    return True
