"""Asking an engine: the official ``openai`` client against any OpenAI-compatible endpoint.

The client retries timeouts, connection errors, 429 (honouring Retry-After) and 5xx itself,
``max_retries`` times; anything still failing is returned as a failed ``EngineReply`` so one
engine never stops the others.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal

from config.credentials import credential_env_problem
from config.egress import (
    EgressRefused,
    EgressUnresolved,
    egress_httpx_client,
    egress_url_check,
    refusal_in,
)
from visibility.models import Engine
from visibility.secrets import SecretUnavailable, secret_decrypt

SYSTEM_PROMPT = None  # ask as a customer would: no system prompt that could steer the answer


@dataclass
class EngineReply:
    ok: bool
    content: str = ""
    citations: list[str] = field(default_factory=list)
    response: dict = field(default_factory=dict)
    error: str = ""
    latency_ms: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)


def engine_api_key(engine: Engine) -> str:
    if engine.api_key_env:
        # Checked again at use: an engine saved before the allow-list could name SECRET_KEY.
        problem = credential_env_problem(engine.api_key_env)
        if problem:
            raise SecretUnavailable(f"The API key of {engine}: api_key_env {problem}.")
        value = os.environ.get(engine.api_key_env)
        if not value:
            raise SecretUnavailable(
                f"The environment variable {engine.api_key_env} (API key of {engine}) is not set."
            )
        return value
    if engine.api_key_encrypted:
        return secret_decrypt(engine.api_key_encrypted)
    return "not-needed"  # local servers (Ollama, vLLM, the demo engine) take any key


def engine_client(engine: Engine):
    """An ``openai`` client of the engine whose connections go through :mod:`config.egress`.

    Every connection resolves the base URL's host once and connects to that checked address
    (public, or allowed by the operator in ``SOURCEBOOK_EGRESS_ALLOW``); redirects are not
    followed.
    """
    import openai  # imported when an engine is asked: it takes a second to import

    # Fail fast, without the client's retries; every connection is checked again. A host
    # that does not resolve is a network error: the client retries and reports it.
    with contextlib.suppress(EgressUnresolved):
        egress_url_check(engine.base_url)
    timeout = float(engine.timeout_seconds)
    return openai.OpenAI(
        base_url=engine.base_url,
        api_key=engine_api_key(engine),
        timeout=timeout,
        max_retries=engine.max_retries,
        http_client=egress_httpx_client(timeout=timeout),
    )


def citations_of(completion) -> list[str]:
    """Perplexity-style ``citations`` (URLs) or ``search_results`` ([{url}]), if any."""
    extra = completion.model_extra or {}
    urls = [u for u in extra.get("citations") or [] if isinstance(u, str)]
    for result in extra.get("search_results") or []:
        if isinstance(result, dict) and isinstance(result.get("url"), str):
            urls.append(result["url"])
    return list(dict.fromkeys(urls))


def location_parameters(engine: Engine, country: str) -> dict:
    """The request parameters that ask ``engine`` as from ``country`` (ISO 3166-1 alpha-2),
    in the shape its provider documents; {} when it takes none or no country is given."""
    if not country:
        return {}
    if engine.location_parameter == Engine.LocationParameter.OPENAI:
        location = {"type": "approximate", "approximate": {"country": country}}
    elif engine.location_parameter == Engine.LocationParameter.PERPLEXITY:
        location = {"country": country}
    else:
        return {}
    options = dict((engine.parameters or {}).get("web_search_options") or {})
    return {"web_search_options": options | {"user_location": location}}


def engine_ask(engine: Engine, question: str, *, client=None, country: str = "") -> EngineReply:
    """Ask one question as a customer would (from ``country``, where the engine takes one)."""
    import openai

    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        client = client or engine_client(engine)
        completion = client.chat.completions.create(
            model=engine.model,
            messages=[{"role": "user", "content": question}],
            **((engine.parameters or {}) | location_parameters(engine, country)),
        )
    except (SecretUnavailable, EgressRefused) as error:
        return EngineReply(ok=False, error=str(error))
    except openai.APITimeoutError:
        return EngineReply(
            ok=False, error=f"No answer within {engine.timeout_seconds} s.", latency_ms=elapsed()
        )
    except openai.APIStatusError as error:
        return EngineReply(
            ok=False,
            error=f"HTTP {error.status_code}: {error_message(error)}",
            latency_ms=elapsed(),
        )
    except openai.APIConnectionError as error:
        refused = refusal_in(error)
        if refused is not None:
            return EngineReply(ok=False, error=f"Refused: {refused}", latency_ms=elapsed())
        return EngineReply(ok=False, error=f"Could not connect: {error}", latency_ms=elapsed())
    except (ValueError, openai.APIResponseValidationError) as error:
        # The openai client raises json's ValueError for a body that is not JSON.
        return EngineReply(
            ok=False, error=f"Malformed response: {str(error)[:200]}", latency_ms=elapsed()
        )
    latency = elapsed()
    choices = completion.choices or []
    content = (choices[0].message.content or "") if choices else ""
    if not choices:
        return EngineReply(ok=False, error="Malformed response: no choices.", latency_ms=latency)
    usage = completion.usage
    prompt_tokens = usage.prompt_tokens if usage else 0
    completion_tokens = usage.completion_tokens if usage else 0
    cost = (
        Decimal(prompt_tokens) * engine.input_price_per_million
        + Decimal(completion_tokens) * engine.output_price_per_million
    ) / Decimal(1_000_000)
    return EngineReply(
        ok=True,
        content=content,
        citations=citations_of(completion),
        response=completion.model_dump(mode="json"),
        latency_ms=latency,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost.quantize(Decimal("0.000001")),
    )


def error_message(error) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(error.message)[:300]
