"""Which AI agents fetched the site, when, and what: read from the web server's access logs.

Accepts nginx/Apache combined-format lines and JSON lines, classifies each request's User-Agent
against a table of known AI agents (see shared/reference/ai-crawlers.md and the robots.txt
tokens in publishing/render/indexes.py), and summarizes per agent: visits, first and last
visit, and which artifacts (llms.txt, Markdown, sitemaps, robots.txt, JSON-LD, pages) it read.

Known limitation: classification is by User-Agent only. Anyone can send "GPTBot" in a header;
real verification needs the operators' published IP ranges or reverse DNS, which this module
deliberately does not do (it never touches the network). Treat the figures as "requests that
claim to be" each agent.

Standard library only, no Django: the module runs on a log file wherever it is.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

Purpose = Literal["search", "user", "training"]


# --- the agents ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    token: str  # as it appears in the User-Agent header and in robots.txt
    operator: str
    purpose: Purpose  # search/index, user-triggered fetch, or model training
    engine: str  # the product it feeds, to answer "when did that engine last fetch the site"
    # False for robots.txt-only tokens (Google-Extended, Applebot-Extended): they control how
    # content fetched by another crawler is used and never appear in a User-Agent.
    fetches: bool = True
    # True for general web-search crawlers whose index also feeds the operator's AI answers.
    general_search: bool = False


AGENTS: tuple[Agent, ...] = (
    # Search / index: must be allowed for the brand to be cited.
    Agent("OAI-SearchBot", "OpenAI", "search", "ChatGPT"),
    Agent("Claude-SearchBot", "Anthropic", "search", "Claude"),
    Agent("PerplexityBot", "Perplexity", "search", "Perplexity"),
    Agent("DuckAssistBot", "DuckDuckGo", "search", "DuckAssist"),
    Agent("Amazonbot", "Amazon", "search", "Alexa"),
    Agent("Applebot", "Apple", "search", "Siri and Spotlight", general_search=True),
    # Per the reference, Googlebot and Bingbot feed AI Overviews and Copilot: not AI-only
    # crawlers, but the only way those engines read the site.
    Agent("Googlebot", "Google", "search", "Google AI Overviews", general_search=True),
    Agent("Bingbot", "Microsoft", "search", "Microsoft Copilot", general_search=True),
    # Not in the shared reference; You.com documents YouBot as its search crawler.
    Agent("YouBot", "You.com", "search", "You.com"),
    # User-triggered: fetched because someone asked the assistant about the page.
    Agent("ChatGPT-User", "OpenAI", "user", "ChatGPT"),
    Agent("Claude-User", "Anthropic", "user", "Claude"),
    Agent("Perplexity-User", "Perplexity", "user", "Perplexity"),
    Agent("Meta-ExternalFetcher", "Meta", "user", "Meta AI"),
    Agent("MistralAI-User", "Mistral AI", "user", "Le Chat"),
    # Not in the shared reference; seen on fetches made for Cohere's chat users.
    Agent("cohere-ai", "Cohere", "user", "Cohere"),
    # Training.
    Agent("GPTBot", "OpenAI", "training", "ChatGPT"),
    Agent("ClaudeBot", "Anthropic", "training", "Claude"),
    Agent("anthropic-ai", "Anthropic", "training", "Claude"),  # legacy
    Agent("Claude-Web", "Anthropic", "training", "Claude"),  # legacy
    Agent("CCBot", "Common Crawl", "training", "Common Crawl"),
    Agent("Bytespider", "ByteDance", "training", "Doubao"),
    Agent("meta-externalagent", "Meta", "training", "Meta AI"),
    Agent("cohere-training-data-crawler", "Cohere", "training", "Cohere"),
    Agent("Google-Extended", "Google", "training", "Gemini", fetches=False),
    Agent("Applebot-Extended", "Apple", "training", "Apple Intelligence", fetches=False),
)

_FETCHING_AGENTS = {agent.token.lower(): agent for agent in AGENTS if agent.fetches}
# A token counts only as a whole word, where "-" belongs to the word: "Googlebot-Image" is not
# Googlebot and "Perplexity-User" is not PerplexityBot.
_AGENT_TOKEN = re.compile(
    r"(?<![\w-])("
    + "|".join(re.escape(token) for token in sorted(_FETCHING_AGENTS, key=len, reverse=True))
    + r")(?![\w-])",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)  # logs repeat the same few User-Agent strings
def classify(user_agent: str) -> Agent | None:
    """The AI agent a User-Agent claims to be, or None. By header only: see the module note."""
    # The leftmost token wins: the product token comes first, before any URL naming a sibling.
    match = _AGENT_TOKEN.search(user_agent)
    return _FETCHING_AGENTS[match.group(1).lower()] if match else None


# --- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRecord:
    time: datetime  # timezone-aware
    ip: str
    method: str  # "" when the request line was not HTTP (scanners, TLS on a plain port)
    path: str  # path and query string as requested (an absolute-URL target is cut to them)
    status: int
    bytes: int
    user_agent: str
    referer: str


@dataclass
class ParseResult:
    records: list[LogRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "access.log:17: <reason>"


class _Unparseable(ValueError):
    """Why a line is not a log record; parse_lines turns it into a located error message."""


NOT_A_LOG_LINE = "not a combined-log or JSON line"

# %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i", then any extra fields.
_QUOTED = r'"((?:[^"\\]|\\.)*)"'  # Apache escapes quotes as \", nginx as \x22
_COMBINED = re.compile(
    r"(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "
    rf"{_QUOTED} (?P<status>\d{{3}}) (?P<bytes>\d+|-) {_QUOTED} {_QUOTED}(?:\s.*)?"
)
_LOG_TIME = re.compile(
    r"(?P<day>\d{2})/(?P<month>[A-Za-z]{3})/(?P<year>\d{4}):"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<sign>[+-])(?P<hh>\d{2})(?P<mm>\d{2})"
)
# Not strptime's %b: that follows the process locale, the log format does not.
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_ESCAPE = re.compile(r'\\(x[0-7][0-9A-Fa-f]|["\\])')  # \x22, \", \\

# JSON keys in the order they are tried; the first present and non-empty one wins.
_TIME_KEYS = ("time", "timestamp", "@timestamp", "time_local", "time_iso8601", "ts")
_IP_KEYS = ("remote_addr", "ip", "client", "client_ip", "remote_ip")
_METHOD_KEYS = ("method", "request_method")
_PATH_KEYS = ("request_uri", "path", "uri", "url")
_STATUS_KEYS = ("status", "status_code")
_BYTES_KEYS = ("body_bytes_sent", "bytes", "bytes_sent", "size")
_USER_AGENT_KEYS = ("http_user_agent", "user_agent", "ua", "user-agent")
_REFERER_KEYS = ("http_referer", "referer", "referrer")


def parse_line(line: str) -> LogRecord | None:
    """One combined-log or JSON line as a record, or None when it is neither."""
    try:
        return _parse(line)
    except _Unparseable:
        return None


def parse_lines(lines: Iterable[str], source: str) -> ParseResult:
    """Every line of a log; unparseable ones become "source:line: reason". Blank lines are
    skipped silently."""
    result = ParseResult()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            result.records.append(_parse(line))
        except _Unparseable as error:
            result.errors.append(f"{source}:{number}: {error}")
    return result


def _parse(line: str) -> LogRecord:
    text = line.strip().lstrip("\ufeff")
    if text.startswith("{"):
        return _parse_json(text)
    return _parse_combined(text)


def _parse_combined(text: str) -> LogRecord:
    match = _COMBINED.fullmatch(text)
    if not match:
        raise _Unparseable(NOT_A_LOG_LINE)
    request, referer, user_agent = (_unescape(match.group(index)) for index in (3, 6, 7))
    method, path = _split_request(request)
    return LogRecord(
        time=_log_time(match["time"]),
        ip=match["ip"],
        method=method,
        path=path,
        status=int(match["status"]),
        bytes=_byte_count(match["bytes"]),
        user_agent=_dash_is_empty(user_agent),
        referer=_dash_is_empty(referer),
    )


def _parse_json(text: str) -> LogRecord:
    try:
        entry = json.loads(text)
    except ValueError:
        raise _Unparseable(NOT_A_LOG_LINE) from None
    if not isinstance(entry, dict):
        raise _Unparseable(NOT_A_LOG_LINE)
    time_value = _first(entry, _TIME_KEYS)
    if time_value is None:
        raise _Unparseable("JSON line without a time")
    status = _json_status(_first(entry, _STATUS_KEYS))
    method, path = _json_request(entry)
    return LogRecord(
        time=_json_time(time_value),
        ip=str(_first(entry, _IP_KEYS) or ""),
        method=method,
        path=path,
        status=status,
        bytes=_byte_count(_first(entry, _BYTES_KEYS)),
        user_agent=_dash_is_empty(str(_first(entry, _USER_AGENT_KEYS) or "")),
        referer=_dash_is_empty(str(_first(entry, _REFERER_KEYS) or "")),
    )


def _first(entry: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = entry.get(key)
        if value not in (None, ""):
            return value
    return None


def _json_request(entry: dict[str, Any]) -> tuple[str, str]:
    target = _first(entry, _PATH_KEYS)
    if isinstance(target, str):
        return str(_first(entry, _METHOD_KEYS) or ""), _path_of(target)
    request = entry.get("request")
    if isinstance(request, str) and request:
        return _split_request(request)
    raise _Unparseable("JSON line without a request path")


def _json_status(value: Any) -> int:
    if isinstance(value, bool):  # bool is an int subclass; true is not a status
        value = None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 100 <= value <= 599:
        raise _Unparseable("JSON line without a status")
    return value


def _json_time(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds or seconds
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str):
        raise _Unparseable(f"unreadable time {value!r}")
    if _LOG_TIME.fullmatch(value):
        return _log_time(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Unparseable(f"unreadable time {value!r}") from None
    if moment.tzinfo is None:
        # Guessing a zone would shift every "last visit" silently; the log must say.
        raise _Unparseable(f"time {value!r} has no timezone offset")
    return moment


def _log_time(value: str) -> datetime:
    """A time as written by Apache's %t and nginx's $time_local: 10/Nov/2026:13:55:36 +0800."""
    match = _LOG_TIME.fullmatch(value)
    month = _MONTHS.get(match["month"].lower()) if match else None
    if not match or month is None:
        raise _Unparseable(f"unreadable time {value!r}")
    offset = timedelta(hours=int(match["hh"]), minutes=int(match["mm"]))
    zone = timezone(-offset if match["sign"] == "-" else offset)
    try:
        return datetime(
            int(match["year"]),
            month,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=zone,
        )
    except ValueError:
        raise _Unparseable(f"unreadable time {value!r}") from None


def _split_request(request: str) -> tuple[str, str]:
    """'GET /x HTTP/1.1' -> ('GET', '/x'); anything else (TLS bytes, '-') -> ('', '')."""
    parts = request.split(" ")
    if (len(parts) == 3 and parts[2].startswith("HTTP/")) or len(parts) == 2:
        return parts[0], _path_of(parts[1])
    return "", ""


def _path_of(target: str) -> str:
    """The path and query of a request target, also when it is an absolute URL."""
    if not target.lower().startswith(("http://", "https://")):
        return target
    parts = urlsplit(target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _byte_count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0  # "-" (Apache's zero) or absent


def _unescape(value: str) -> str:
    r"""Undo the log's escaping of quotes and control characters (\" and \x22); escaped
    non-ASCII bytes are left as written rather than guessed at."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(_unescaped_character, value)


def _unescaped_character(match: re.Match[str]) -> str:
    escaped = match[1]
    return chr(int(escaped[1:], 16)) if escaped.startswith("x") else escaped


def _dash_is_empty(value: str) -> str:
    return "" if value == "-" else value


# --- what was fetched ----------------------------------------------------------------------

_EXTENSION = re.compile(r"\.[A-Za-z0-9]+$")


def artifact_kind(path: str) -> str:
    """Which published artifact a request path is: llms.txt, llms-full.txt, markdown, sitemap,
    robots.txt, jsonld, page, ask or mcp (the answer endpoint), or other (images, CSS,
    scripts...)."""
    path = path.split("?", 1)[0].split("#", 1)[0].lower()
    name = path.rsplit("/", 1)[-1]
    if name in ("llms.txt", "llms-full.txt"):  # the proposal allows them below the root too
        return name
    if path == "/robots.txt":  # only meaningful at the root
        return "robots.txt"
    if path in ("/ask", "/mcp"):  # the answer endpoint (publishing.ask, publishing.mcp_server)
        return path[1:]
    if name.endswith(".md"):  # before .html: /products/x/index.html.md is Markdown
        return "markdown"
    if path.startswith("/sitemaps/") or (
        name.startswith("sitemap") and name.endswith((".xml", ".xml.gz"))
    ):
        return "sitemap"
    if name.endswith(".jsonld"):
        return "jsonld"
    if path.endswith("/") or name.endswith((".html", ".htm")):
        return "page"
    if path.startswith("/") and not _EXTENSION.search(name):
        return "page"  # extensionless routes such as /products/longjing are pages too
    return "other"


# --- summaries -----------------------------------------------------------------------------


@dataclass
class AgentSummary:
    agent: str  # the token
    operator: str
    purpose: Purpose
    engine: str
    visits: int  # requests, whatever their status
    first_visit: datetime
    last_visit: datetime
    last_success: datetime | None  # last 2xx or 304: when it last had current content
    pages: int  # distinct paths fetched, any artifact kind, query string ignored
    artifacts: dict[str, int]  # artifact kind -> requests
    statuses: dict[int, int]  # status -> requests


@dataclass(frozen=True)
class TrafficCounts:
    total: int
    ai: int  # requests from agents in AGENTS (general search crawlers included)


def summarize(records: Iterable[LogRecord]) -> list[AgentSummary]:
    """One summary per AI agent seen, most recently seen first; other traffic is left out."""
    by_agent: dict[Agent, list[LogRecord]] = defaultdict(list)
    for record in records:
        agent = classify(record.user_agent)
        if agent is not None:
            by_agent[agent].append(record)
    summaries = [_agent_summary(agent, visits) for agent, visits in by_agent.items()]
    summaries.sort(key=lambda summary: summary.agent)  # a stable order for equal times
    summaries.sort(key=lambda summary: summary.last_visit, reverse=True)
    return summaries


def count_traffic(records: Iterable[LogRecord]) -> TrafficCounts:
    """All requests, and how many of them came from AI agents."""
    total = ai = 0
    for record in records:
        total += 1
        ai += classify(record.user_agent) is not None
    return TrafficCounts(total=total, ai=ai)


def _agent_summary(agent: Agent, visits: list[LogRecord]) -> AgentSummary:
    times = [record.time for record in visits]
    successes = [record.time for record in visits if _is_success(record.status)]
    return AgentSummary(
        agent=agent.token,
        operator=agent.operator,
        purpose=agent.purpose,
        engine=agent.engine,
        visits=len(visits),
        first_visit=min(times),
        last_visit=max(times),
        last_success=max(successes, default=None),
        pages=len({record.path.split("?", 1)[0] for record in visits}),
        artifacts=dict(Counter(artifact_kind(record.path) for record in visits)),
        statuses=dict(Counter(record.status for record in visits)),
    )


def _is_success(status: int) -> bool:
    return 200 <= status < 300 or status == 304  # 304: the copy it already has is current
