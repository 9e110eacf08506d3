"""/ask: the brand's answer endpoint, as NLWeb defines it (github.com/nlweb-ai/NLWeb).

``GET`` or ``POST /ask`` with ``query`` (required), ``site`` (the brand's slug; by default the
brand whose site the request's host is), ``prev`` (earlier questions, comma-separated or a
JSON list), ``decontextualized_query`` (the question with its context, used instead of
``query`` when given), ``mode`` (``list``, the default, or ``summarize``), ``streaming``
(default on: Server-Sent Events; ``0``/``false``: one JSON object), ``query_id`` and, beyond
NLWeb, ``lang`` (one of the brand's languages; by default the question's script decides).

Results are the published site's own (publishing.answers): ``url``, ``name``, ``site``,
``score``, ``description`` and ``schema_object``. A stream sends ``begin-nlweb-response``,
``result_batch``, ``summary`` (mode=summarize) and ``end-nlweb-response`` messages, one JSON
object per ``data:`` line.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

from django.http import HttpResponse, StreamingHttpResponse
from rest_framework import exceptions
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from kb.api.base import JsonParser
from kb.api.problems import ParameterError
from kb.models import Brand
from publishing.answer_endpoint import (
    AnswerEndpointClosed,
    AnswerRateThrottle,
    answer_brand_resolve,
    answer_summary,
    answer_visit_record,
)
from publishing.answers import AnswersUnavailable, answers_search

MODES = ("list", "summarize")
MAX_QUERY_CHARS = 1000
MAX_RESULTS = 50


class AskView(APIView):
    """NLWeb's /ask over the brand's published release."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnswerRateThrottle]
    parser_classes = [JsonParser, FormParser]
    max_body_bytes = 64 * 1024
    # Not part of the REST API's OpenAPI description: NLWeb's protocol defines it.
    schema = None

    def initial(self, request, *args, **kwargs):
        # The brand first: the rate limit is per brand, and every answer is logged to it.
        request.answer_brand = None
        if request.method == "OPTIONS":
            return  # a browser's preflight (see options): nothing asked, counted or logged
        try:
            request.answer_brand = answer_brand_resolve(
                site=_param(request, "site"), host=request.get_host()
            )
        except AnswerEndpointClosed as closed:
            raise exceptions.NotFound(str(closed)) from None
        super().initial(request, *args, **kwargs)

    def options(self, request, *args, **kwargs):
        return HttpResponse(status=204)

    def get(self, request):
        return self.answer(request)

    def post(self, request):
        return self.answer(request)

    def answer(self, request):
        brand: Brand = request.answer_brand
        query = (_param(request, "decontextualized_query") or _param(request, "query")).strip()
        if not query:
            raise ParameterError({"query": ["Ask a question: query is required."]})
        if len(query) > MAX_QUERY_CHARS:
            raise ParameterError({"query": [f"At most {MAX_QUERY_CHARS} characters."]})
        mode = _param(request, "mode") or "list"
        if mode not in MODES:
            raise ParameterError({"mode": [f"One of {', '.join(MODES)}; got {mode!r}."]})
        streaming = _flag(_param(request, "streaming"), default=True)
        limit = _limit(_param(request, "limit"))
        query_id = _param(request, "query_id")[:100] or uuid.uuid4().hex
        prev = _prev(request)
        try:
            search = answers_search(
                brand=brand, query=query, language=_param(request, "lang"), limit=limit
            )
        except AnswersUnavailable as unavailable:
            raise exceptions.NotFound(str(unavailable)) from None
        results = [answer.as_result(brand.slug) for answer in search.answers]
        head = {"query_id": query_id, "query": query, "site": brand.slug,
                "language": search.language, "mode": mode}  # fmt: skip

        def summary() -> dict:
            reply = answer_summary(
                brand=brand, query=query, prev=prev, answers=search.answers,
                language=search.language,
            )  # fmt: skip
            if reply.ok:
                return {"message_type": "summary", "message": reply.content}
            return {"message_type": "error", "message": reply.error}

        if not streaming:
            body = {**head, "results": results}
            if mode == "summarize":
                said = summary()
                body["summary" if said["message_type"] == "summary" else "error"] = said["message"]
            return Response(body)

        def events() -> Iterator[bytes]:
            yield _event({"message_type": "begin-nlweb-response", **head})
            yield _event({"message_type": "result_batch", "query_id": query_id, "results": results})
            if mode == "summarize":
                yield _event({**summary(), "query_id": query_id})
            yield _event({"message_type": "end-nlweb-response", "query_id": query_id})

        response = StreamingHttpResponse(events(), content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx passes each event on as it comes
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Public answers about public pages, without credentials: any site's pages may ask
        # from the browser (a headless site, a chat widget), as NLWeb's own UI does.
        response["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = "86400"
        brand = getattr(request, "answer_brand", None)
        if brand is None:
            return response

        def record(size: int) -> None:
            answer_visit_record(
                brand=brand, endpoint="ask", user_agent=request.META.get("HTTP_USER_AGENT", ""),
                query=_param(request, "query"), status=response.status_code, size=size,
            )  # fmt: skip

        if response.streaming:
            response.streaming_content = _counted(response.streaming_content, record)
        else:
            record(len(response.render().content))
        return response


def _counted(chunks: Iterator[bytes], done) -> Iterator[bytes]:
    """The stream as it is, then ``done(bytes sent)``."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        yield chunk
    done(size)


def _event(message: dict) -> bytes:
    return f"data: {json.dumps(message, ensure_ascii=False)}\n\n".encode()


def _param(request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None and request.method == "POST":
        data = request.data
        value = data.get(name) if hasattr(data, "get") else None
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False) if name == "prev" else ""
    return str(value)


def _flag(value: str, *, default: bool) -> bool:
    if value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("0", "false", "no", "off"):
        return False
    if lowered in ("1", "true", "yes", "on"):
        return True
    raise ParameterError({"streaming": [f"true or false; got {value!r}."]})


def _limit(value: str) -> int:
    if value == "":
        return 10
    if not value.isdigit() or not 1 <= int(value) <= MAX_RESULTS:
        raise ParameterError({"limit": [f"A whole number from 1 to {MAX_RESULTS}."]})
    return int(value)


def _prev(request) -> list[str]:
    """Earlier questions: a JSON list, or comma-separated as NLWeb sends them."""
    raw = _param(request, "prev").strip()
    if not raw:
        return []
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except ValueError:
            raise ParameterError(
                {"prev": ["A JSON list of strings, or comma-separated."]}
            ) from None
        if not isinstance(items, list):
            raise ParameterError({"prev": ["A JSON list of strings, or comma-separated."]})
        return [str(item)[:MAX_QUERY_CHARS] for item in items if str(item).strip()][-5:]
    return [item.strip()[:MAX_QUERY_CHARS] for item in raw.split(",") if item.strip()][-5:]
