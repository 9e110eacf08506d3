"""What /ask and /mcp share: which brand a request is for, the summary an engine writes from
the results, and the record of each request with the crawler visits."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from kb.models import Brand
from kb.revision_changes import language_label
from publishing.answers import Answer
from publishing.models import SiteSettings
from visibility.access_logs import classify
from visibility.engines import EngineReply, engine_ask
from visibility.models import CrawlerHit

# How much of each result the summarizing engine is given.
SUMMARY_SOURCES = 5
SUMMARY_SOURCE_CHARS = 600


class AnswerRateThrottle(SimpleRateThrottle):
    """Per client and brand: ``SOURCEBOOK_ASK_RATE`` requests (60/minute by default), with
    Retry-After on 429. /ask and /mcp share the allowance."""

    scope = "ask"

    def get_rate(self) -> str:
        return settings.SOURCEBOOK_ASK_RATE

    def get_cache_key(self, request, view):
        brand = getattr(request, "answer_brand", None)
        ident = f"{brand.pk if brand else '-'}:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


def answer_rate_wait(*, brand: Brand, meta: dict) -> float | None:
    """For /mcp, which is not a DRF view: None when the client may ask now (and counts the
    request), else the seconds to wait. ``meta``: REMOTE_ADDR and HTTP_X_FORWARDED_FOR."""
    throttle = AnswerRateThrottle()
    request = HttpRequest()
    request.META.update(meta)
    request.answer_brand = brand
    if throttle.allow_request(request, None):
        return None
    return throttle.wait() or 1.0


class AnswerEndpointClosed(Exception):
    """No brand answers here: unknown, or its answer endpoint is off."""


def answer_brand_resolve(*, site: str, host: str) -> Brand:
    """The brand a request is for: named by ``site`` (its slug), else the brand whose site is
    at the request's host, else the only brand answering here; only one whose answer
    endpoint is on."""
    brands = list(Brand.objects.filter(site_settings__answer_endpoint=True))
    if site and site != "all":
        brand = next((b for b in brands if b.slug == site), None)
    else:
        at_host = [b for b in brands if _host_of(b) == host.lower()]
        brand = (at_host or brands)[0] if len(at_host or brands) == 1 else None
    if brand is None:
        raise AnswerEndpointClosed(
            "No site answers questions here: name one with site=<brand slug> whose answer "
            "endpoint is on."
            if not site
            else f"The site {site!r} does not answer questions here."
        )
    return brand


def _host_of(brand: Brand) -> str:
    return urlsplit(brand.base_url).netloc.lower()


def answer_summary(
    *, brand: Brand, query: str, prev: list[str], answers: list[Answer], language: str
) -> EngineReply:
    """An answer written by the brand's answer engine from the results only, citing their
    URLs; a failed reply (with its reason) when the brand has no answer engine."""
    site = SiteSettings.objects.filter(brand=brand).select_related("answer_engine").first()
    engine = site.answer_engine if site else None
    if engine is None or engine.brand_id != brand.pk:
        return EngineReply(
            ok=False, error=f"{brand.name} has no answer engine: results are listed only."
        )
    if not answers:
        return EngineReply(ok=False, error="Nothing published answers this question.")
    return engine_ask(engine, summary_prompt(brand=brand, query=query, prev=prev,
                                             answers=answers, language=language))  # fmt: skip


def summary_prompt(
    *, brand: Brand, query: str, prev: list[str], answers: list[Answer], language: str
) -> str:
    sources = "\n\n".join(
        f"[{number}] {answer.name}\n{answer.url}\n{answer.description[:SUMMARY_SOURCE_CHARS]}"
        for number, answer in enumerate(answers[:SUMMARY_SOURCES], 1)
    )
    earlier = "".join(f"Earlier question: {text}\n" for text in prev)
    return (
        f"Answer a customer's question about {brand.name} in {language_label(language)}, "
        "using only the sources below, which are pages of its website. Cite the URL of each "
        "source you use. If the sources do not answer the question, say so.\n\n"
        f"{earlier}Question: {query}\n\nSources:\n\n{sources}"
    )


def answer_visit_record(
    *, brand: Brand, endpoint: str, user_agent: str, query: str, status: int, size: int
) -> CrawlerHit:
    """One request to /ask or /mcp, kept with the crawler visits: the agent it claims to be
    (or its User-Agent's product), the question, the status and the bytes sent."""
    agent = classify(user_agent)
    path = f"/{endpoint}" + (f"?{urlencode({'query': query[:400]})}" if query else "")
    return CrawlerHit.objects.create(
        brand=brand,
        time=timezone.now(),
        agent=agent.token if agent else (user_agent.split("/", 1)[0].strip()[:64] or "unknown"),
        purpose=agent.purpose if agent else "user",
        engine=agent.engine if agent else "",
        path=path,
        artifact=endpoint,
        status=status,
        bytes=size,
        fingerprint=uuid.uuid4().hex,  # each request is one visit
    )
