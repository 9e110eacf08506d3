"""AI-crawler visits: access logs in, one row per AI-agent request, summaries out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Count, Max, Min

from kb.models import Brand
from kb.services.permissions import require
from visibility.access_logs import LogRecord, artifact_kind, classify, parse_lines
from visibility.models import CrawlerHit


class AccessLogRefused(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        shown = "\n".join(errors[:10]) + (
            f"\n… and {len(errors) - 10} more" if len(errors) > 10 else ""
        )
        super().__init__(
            f"Nothing was imported: {len(errors)} line(s) could not be read.\n{shown}\n"
            "Fix the file, or import the readable lines with --skip-bad-lines."
        )


@dataclass
class AccessLogImport:
    requests: int = 0
    ai_requests: int = 0
    created: int = 0
    already_imported: int = 0
    skipped_lines: list[str] = field(default_factory=list)


def hit_fingerprint(record: LogRecord) -> str:
    """The same request imported twice (overlapping log files) is stored once."""
    key = "\x1f".join(
        [record.time.astimezone(UTC).isoformat(), record.ip, record.method, record.path, str(record.status),
         str(record.bytes), record.user_agent]
    )  # fmt: skip
    return hashlib.sha256(key.encode()).hexdigest()


def access_log_import(
    *,
    brand: Brand,
    sources: Iterable[tuple[str, Iterable[str]]],
    skip_bad_lines: bool = False,
    user=None,
    progress: Callable[[int], None] | None = None,
) -> AccessLogImport:
    """Import AI-agent requests from access logs (combined format or JSON lines), atomically."""
    require(user, brand, "edit")
    result = AccessLogImport()
    hits: dict[str, CrawlerHit] = {}
    errors: list[str] = []
    for name, lines in sources:
        parsed = parse_lines(lines, name)
        errors += parsed.errors
        for record in parsed.records:
            result.requests += 1
            agent = classify(record.user_agent)
            if agent is None:
                continue
            if artifact_kind(record.path) in ("ask", "mcp"):
                continue  # the application records these itself (publishing.answer_endpoint)
            result.ai_requests += 1
            fingerprint = hit_fingerprint(record)
            hits[fingerprint] = CrawlerHit(
                brand=brand,
                time=record.time,
                agent=agent.token,
                purpose=agent.purpose,
                engine=agent.engine,
                path=record.path,
                artifact=artifact_kind(record.path),
                status=record.status,
                bytes=record.bytes,
                fingerprint=fingerprint,
            )
        if progress:
            progress(1)
    if errors and not skip_bad_lines:
        raise AccessLogRefused(errors)
    result.skipped_lines = errors
    with transaction.atomic():
        existing = set(
            CrawlerHit.objects.filter(brand=brand, fingerprint__in=list(hits)).values_list(
                "fingerprint", flat=True
            )
        )
        new = [hit for fingerprint, hit in hits.items() if fingerprint not in existing]
        CrawlerHit.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    result.created = len(new)
    result.already_imported = result.ai_requests - len(new)
    return result


@dataclass
class CrawlerSummary:
    agent: str
    purpose: str
    engine: str
    visits: int
    first_visit: datetime
    last_visit: datetime
    pages: int
    artifacts: dict[str, int]
    statuses: dict[int, int]


def crawler_summary(*, brand: Brand) -> list[CrawlerSummary]:
    """Per AI agent: visits, last visit, pages, artifacts fetched and status codes."""
    hits = CrawlerHit.objects.filter(brand=brand)
    rows = (
        hits.values("agent", "purpose", "engine")
        .annotate(
            visits=Count("pk"),
            first=Min("time"),
            last=Max("time"),
            pages=Count("path", distinct=True),
        )
        .order_by("-last")
    )
    artifacts: dict[str, dict[str, int]] = {}
    for row in hits.values("agent", "artifact").annotate(n=Count("pk")):
        artifacts.setdefault(row["agent"], {})[row["artifact"]] = row["n"]
    statuses: dict[str, dict[int, int]] = {}
    for row in hits.values("agent", "status").annotate(n=Count("pk")):
        statuses.setdefault(row["agent"], {})[row["status"]] = row["n"]
    return [
        CrawlerSummary(
            agent=row["agent"],
            purpose=row["purpose"],
            engine=row["engine"],
            visits=row["visits"],
            first_visit=row["first"],
            last_visit=row["last"],
            pages=row["pages"],
            artifacts=dict(sorted(artifacts.get(row["agent"], {}).items())),
            statuses=dict(sorted(statuses.get(row["agent"], {}).items())),
        )
        for row in rows
    ]
