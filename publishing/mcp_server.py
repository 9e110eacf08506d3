"""/mcp: the brand's answer endpoint for agents, over the Model Context Protocol.

The official Python SDK (``mcp``) serves it over streamable HTTP, stateless, with JSON
responses: ``python manage.py serve_mcp`` (uvicorn on 127.0.0.1:8001, behind nginx's
``location = /mcp``; deploy/). Tools: ``ask`` (NLWeb's, as /ask without streaming),
``search_products``, ``search_stores``, ``search_facts``, ``search_faqs`` and
``get_entity``; each answers from the brand's live release only (publishing.answers), for
the brand named by ``site`` or, by default, the one whose site is at the request's host.
Every call counts against the client's /ask allowance and is logged with the crawler visits.

Brand data is public and read-only here, so the SDK's DNS-rebinding protection (a check of
Host against a fixed list, meant for servers on a developer's machine) is off: the host
only chooses which brand answers.
"""

from __future__ import annotations

import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from kb.models import Brand
from publishing.answer_endpoint import (
    AnswerEndpointClosed,
    answer_brand_resolve,
    answer_rate_wait,
    answer_summary,
    answer_visit_record,
)
from publishing.answers import AnswersUnavailable, answer_entity, answers_search

MCP_PATH = "/mcp"
MAX_RESULTS = 50

INSTRUCTIONS = (
    "Answers questions about one brand from its published website: its products and "
    "offers, stores, facts (each with its source) and FAQs, as schema.org JSON-LD with the "
    "URL of the page to cite. Search in English or Chinese; pass lang to choose the "
    "language of the results."
)


def mcp_server() -> MCPServer:
    server = MCPServer(name="sourcebook", title="Brand knowledge", instructions=INSTRUCTIONS)

    @server.tool(
        description="NLWeb's ask: the published pages that answer a question, best first, "
        "each with url, name, score, description and schema_object (schema.org JSON-LD); "
        "mode=summarize adds an answer written from them by the brand's answer engine."
    )
    async def ask(
        query: str, ctx: Context, site: str = "", prev: list[str] | None = None,
        mode: str = "list", lang: str = "", limit: int = 10,
    ) -> dict[str, Any]:  # fmt: skip
        if mode not in ("list", "summarize"):
            raise ToolError(f"mode is list or summarize; got {mode!r}.")
        return await _call(ctx, "ask", site, query, lambda brand: _ask(
            brand, query=query, prev=prev or [], mode=mode, lang=lang, limit=limit
        ))  # fmt: skip

    def searcher(name: str, kinds: tuple[str, ...], what: str):
        async def search(
            query: str, ctx: Context, site: str = "", lang: str = "", limit: int = 10
        ) -> dict[str, Any]:
            return await _call(ctx, name, site, query, lambda brand: _search(
                brand, query=query, lang=lang, limit=limit, kinds=kinds
            ))  # fmt: skip

        search.__name__ = name
        server.tool(
            name=name,
            description=f"Search the brand's published {what}: each result's url (the page "
            "to cite), name, score (0–100), description and schema_object (its schema.org "
            "JSON-LD as published).",
        )(search)

    searcher("search_products", ("products",), "products, with their offers (price, "
             "currency, availability, region)")  # fmt: skip
    searcher("search_stores", ("stores",), "stores (address, opening hours, contact)")
    searcher("search_facts", ("facts",), "facts (each a Claim with its value and its "
             "cited source)")  # fmt: skip
    searcher("search_faqs", ("faq",), "frequently asked questions and their answers")

    @server.tool(
        description="One entity (product, store, person, organization …) as its page "
        "publishes it: its schema.org JSON-LD and the page's URL. id: the entity's @id, as "
        "search results give it in schema_object."
    )
    async def get_entity(id: str, ctx: Context, site: str = "", lang: str = "") -> dict[str, Any]:
        return await _call(ctx, "get_entity", site, id, lambda brand: _entity(brand, id, lang))

    return server


def mcp_app():
    """The ASGI application (Starlette) serving ``mcp_server()`` at /mcp."""
    return mcp_server().streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


async def _call(ctx: Context, tool: str, site: str, query: str, work) -> dict[str, Any]:
    headers = {key.lower(): value for key, value in (ctx.headers or {}).items()}
    request = getattr(ctx.request_context, "request", None)
    client = getattr(request, "client", None)
    meta = {"REMOTE_ADDR": client.host if client else "",
            "HTTP_X_FORWARDED_FOR": headers.get("x-forwarded-for", "")}  # fmt: skip
    return await sync_to_async(_answer)(
        tool=tool, site=site, host=headers.get("host", ""), query=query, meta=meta,
        user_agent=headers.get("user-agent", ""), work=work,
    )  # fmt: skip


def _answer(*, tool, site, host, query, meta, user_agent, work) -> dict[str, Any]:
    """In a thread, as a request is: the brand, the rate limit, the work, the log."""
    close_old_connections()
    try:
        try:
            brand = answer_brand_resolve(site=site, host=host)
        except AnswerEndpointClosed as closed:
            raise ToolError(str(closed)) from None
        status, outcome = _outcome(brand, meta, work)
        answer_visit_record(
            brand=brand, endpoint="mcp", user_agent=user_agent,
            query=f"{tool}: {query}", status=status, size=0,
        )  # fmt: skip
        if isinstance(outcome, ToolError):
            raise outcome
        return outcome
    finally:
        close_old_connections()


def _outcome(brand: Brand, meta: dict, work) -> tuple[int, dict[str, Any] | ToolError]:
    """The status to log (as /ask's would be), and the result or the error to report."""
    wait = answer_rate_wait(brand=brand, meta=meta)
    if wait is not None:
        return 429, ToolError(f"Too many requests: try again in {round(wait)} s.")
    try:
        return 200, work(brand)
    except AnswersUnavailable as unavailable:
        return 404, ToolError(str(unavailable))
    except ToolError as refused:
        return 400, refused


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_RESULTS:
        raise ToolError(f"limit is a number from 1 to {MAX_RESULTS}.")
    return limit


def _search(brand: Brand, *, query: str, lang: str, limit: int, kinds) -> dict[str, Any]:
    search = answers_search(brand=brand, query=query, language=lang, kinds=kinds,
                            limit=_limit(limit))  # fmt: skip
    return {
        "site": brand.slug,
        "language": search.language,
        "results": [answer.as_result(brand.slug) for answer in search.answers],
    }


def _ask(brand: Brand, *, query: str, prev: list[str], mode: str, lang: str, limit: int):
    search = answers_search(brand=brand, query=query, language=lang, limit=_limit(limit))
    body: dict[str, Any] = {
        "query_id": uuid.uuid4().hex,
        "site": brand.slug,
        "language": search.language,
        "results": [answer.as_result(brand.slug) for answer in search.answers],
    }
    if mode == "summarize":
        reply = answer_summary(brand=brand, query=query, prev=prev, answers=search.answers,
                               language=search.language)  # fmt: skip
        body["summary" if reply.ok else "error"] = reply.content if reply.ok else reply.error
    return body


def _entity(brand: Brand, iri: str, lang: str) -> dict[str, Any]:
    answer = answer_entity(brand=brand, iri=iri.strip(), language=lang)
    if answer is None:
        raise ToolError(f"No published page shows {iri!r}: pass an @id from a search result.")
    return {"site": brand.slug, "language": answer.language, **answer.as_result(brand.slug)}
