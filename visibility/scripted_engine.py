"""A real OpenAI-compatible chat-completions server on loopback, with scripted answers.

Used by the test suite (drive the real ``openai`` client against it) and by the product's
"local demo engine" (``python -m visibility.scripted_engine --port 8765 --demo``).

    with ScriptedEngine(RuleScript([("*", "best tea", Reply("Try Longjing."))])) as engine:
        client = openai.OpenAI(base_url=engine.base_url, api_key="sk-test")
        client.chat.completions.create(model="gpt-4o", messages=[...])
        engine.requests[0].body["model"]  # what the client sent

Standard library only, so the demo engine runs without extra dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import functools
import hashlib
import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

Message = dict[str, Any]

CHAT_PATHS: Final = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS: Final = frozenset({"/v1/models", "/models"})
# Headers that carry credentials: never stored in `requests`.
SECRET_HEADERS: Final = frozenset({"authorization", "api-key", "x-api-key"})

# Ideographs, kana, hangul and CJK/full-width punctuation: each counts as one token.
_CJK = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)

_ERROR_TYPES: Final = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


# --- replies and scripts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the engine answers. A non-200 status sends an OpenAI-style error with `content` as
    its message; `raw_body` sends those bytes verbatim (e.g. malformed JSON)."""

    content: str = ""
    citations: Sequence[str] = ()
    status: int = 200
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None


# A script answers (model, messages, attempt); a mapping is keyed by question or (model, question).
ScriptFn = Callable[[str, list[Message], int], Reply | str]
Script = ScriptFn | Mapping[Any, Any]


def _as_reply(value: Reply | str) -> Reply:
    return value if isinstance(value, Reply) else Reply(str(value))


def _pick(value: Reply | str | Sequence[Reply | str], attempt: int) -> Reply:
    """A single reply, or a list indexed by attempt whose last entry repeats."""
    if isinstance(value, Reply | str):
        return _as_reply(value)
    if not value:
        raise ValueError("an empty list of replies")
    return _as_reply(value[min(attempt, len(value) - 1)])


def message_text(message: Message) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("text")
        )
    return ""


def last_user_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def count_tokens(text: str) -> int:
    """Approximate and deterministic: one per CJK character plus whitespace-split words."""
    return len(_CJK.findall(text)) + len(_CJK.sub(" ", text).split())


@dataclass(frozen=True)
class Rule:
    model: str  # fnmatch pattern, "*" for any
    question: str  # case-insensitive substring of the last user message, "*" for any
    reply: Reply | str | Sequence[Reply | str]  # a list is indexed by attempt

    def matches(self, model: str, question: str) -> bool:
        model_ok = self.model == "*" or fnmatch.fnmatchcase(model, self.model)
        return model_ok and (
            self.question == "*" or self.question.casefold() in question.casefold()
        )


class RuleScript:
    """First matching rule wins; `default` answers everything else."""

    def __init__(
        self,
        rules: Iterable[Rule | tuple[str, str, Any]],
        default: Reply | str = Reply("I have no scripted answer for that."),
    ) -> None:
        self.rules = [rule if isinstance(rule, Rule) else Rule(*rule) for rule in rules]
        self.default = _as_reply(default)

    @property
    def models(self) -> list[str]:
        """Model names the rules spell out (patterns with wildcards cannot be listed)."""
        names = (rule.model for rule in self.rules if not any(c in rule.model for c in "*?["))
        return list(dict.fromkeys(names))

    def __call__(self, model: str, messages: list[Message], attempt: int) -> Reply:
        question = last_user_text(messages)
        for rule in self.rules:
            if rule.matches(model, question):
                return _pick(rule.reply, attempt)
        return self.default


class _MappingScript:
    """A mapping keyed by the exact last user message, or by (model, message)."""

    def __init__(self, mapping: Mapping[Any, Any]) -> None:
        self.mapping = mapping

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(key[0] for key in self.mapping if isinstance(key, tuple)))

    def __call__(self, model: str, messages: list[Message], attempt: int) -> Reply:
        question = last_user_text(messages)
        for key in ((model, question), question):
            if key in self.mapping:
                return _pick(self.mapping[key], attempt)
        # An unscripted question is a mistake in the test: make it loud, and not retried.
        return Reply(f"no scripted reply for model={model!r} question={question!r}", status=404)


# --- recorded requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names, credentials removed
    bearer: bool  # whether "Authorization: Bearer <token>" was sent
    bearer_tail: str | None  # the token's last 4 characters, enough to tell keys apart
    body: Any  # parsed JSON, or None when absent or not JSON


def _bearer(authorization: str | None) -> tuple[bool, str | None]:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False, None
    return True, token[-4:]


# --- response bodies --------------------------------------------------------------------------


def _title_from_url(url: str) -> str:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        return parts.hostname or url
    return re.sub(r"[-_]+", " ", segments[-1]).strip().capitalize()


def completion_body(model: str, messages: Sequence[Message], reply: Reply, number: int) -> dict:
    prompt = sum(count_tokens(message_text(m)) for m in messages if isinstance(m, dict))
    completion = count_tokens(reply.content)
    body: dict[str, Any] = {
        "id": f"chatcmpl-scripted-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    if reply.citations:
        # Perplexity's shape: bare URLs in `citations`, details in `search_results`.
        body["citations"] = list(reply.citations)
        body["search_results"] = [{"url": u, "title": _title_from_url(u)} for u in reply.citations]
    return body


def error_body(status: int, message: str) -> dict:
    kind, code = _ERROR_TYPES.get(status, ("server_error", "server_error"))
    return {"error": {"message": message or f"scripted error {status}", "type": kind, "code": code}}


def models_body(models: Iterable[str]) -> dict:
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in models]
    return {"object": "list", "data": data}


# --- the server -------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never wait for a handler still sleeping through a delay
    engine: ScriptedEngine

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected here, not an error.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles at shutdown

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.engine.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        body = self._read_json() if method == "POST" else None
        engine = self.server.engine
        engine._record(method, path, dict(self.headers.items()), body)
        if method == "GET" and path in MODELS_PATHS:
            self._send_json(200, models_body(engine.models))
        elif method == "POST" and path in CHAT_PATHS:
            self._chat(body)
        else:
            self._send_json(404, error_body(404, f"no route for {method} {path}"))

    def _chat(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send_json(400, error_body(400, "expected a JSON body with `messages`"))
            return
        if body.get("stream"):
            self._send_json(400, error_body(400, "streaming is not supported by ScriptedEngine"))
            return
        model, messages = str(body.get("model", "")), body["messages"]
        reply, number = self.server.engine._answer(model, messages)
        if reply.delay and self.server.engine._stopping.wait(reply.delay):
            return  # stopping: drop the connection rather than hold up shutdown
        headers = dict(reply.headers)
        if reply.raw_body is not None:
            self._send(reply.status, reply.raw_body, headers)
        elif reply.status != 200:
            self._send_json(reply.status, error_body(reply.status, reply.content), headers)
        else:
            self._send_json(200, completion_body(model, messages, reply, number), headers)

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode(), headers or {})

    def _send(self, status: int, data: bytes, headers: Mapping[str, str]) -> None:
        try:
            self.send_response(status)
            names = {name.lower() for name in headers}
            if "content-type" not in names:
                self.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to answer


class ScriptedEngine:
    """An OpenAI chat-completions server on loopback. `requests` records what clients sent."""

    def __init__(
        self,
        script: Script,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] | None = None,
        verbose: bool = False,
    ) -> None:
        self.script: ScriptFn = script if callable(script) else _MappingScript(script)
        self.host, self.port, self.verbose = host, port, verbose
        self.models = list(models or getattr(self.script, "models", None) or ["scripted"])
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._numbers = itertools.count(1)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("ScriptedEngine is not started")
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> ScriptedEngine:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.engine = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"scripted-engine-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping through a delay
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> ScriptedEngine:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, method: str, path: str, headers: dict[str, str], body: Any) -> None:
        lowered = {name.lower(): value for name, value in headers.items()}
        bearer, tail = _bearer(lowered.get("authorization"))
        kept = {name: value for name, value in lowered.items() if name not in SECRET_HEADERS}
        with self._lock:
            self.requests.append(RecordedRequest(method, path, kept, bearer, tail, body))

    def _answer(self, model: str, messages: list[Message]) -> tuple[Reply, int]:
        """The scripted reply, with `attempt` counted per (model, last user message)."""
        key = (model, last_user_text(messages))
        with self._lock:
            attempt = self._attempts[key]
            self._attempts[key] += 1
            number = next(self._numbers)
        return _as_reply(self.script(model, messages, attempt)), number


# --- the demo engine --------------------------------------------------------------------------

DEMO_BRAND: Final = "Westlake Leaf Tea"
DEMO_BRAND_ZH: Final = "西湖叶茶"
DEMO_SITE: Final = "https://www.westlakeleaf.example"
DEMO_MODELS: Final = ("demo-chat", "demo-search", "sonar-demo")
DEMO_FACTS_FILE: Final = (
    Path(__file__).resolve().parent.parent / "kb" / "demo" / "westlake-leaf" / "facts.json"
)
DEMO_CITATIONS: Final = (
    f"{DEMO_SITE}/about/annual-report-2025/",
    f"{DEMO_SITE}/products/longjing-shifeng-pre-qingming/",
    f"{DEMO_SITE}/products/longjing-meijiawu/",
    f"{DEMO_SITE}/products/west-lake-tasting-set/",
    f"{DEMO_SITE}/stores/hangzhou-longjing-road/",
)
# What else search engines cite about Chinese tea: reference works, forums, a competitor.
DEMO_OTHER_CITATIONS: Final = (
    "https://en.wikipedia.org/wiki/Longjing_tea",
    "https://www.reddit.com/r/tea/comments/longjing_brands/",
    "https://www.twinings.co.uk/tea/green-tea",
    "https://zh.wikipedia.org/wiki/西湖龙井",
    "https://www.teaforum.org/viewtopic.php?t=longjing",
)

# (en, zh) one-line descriptions; the name itself is what mention tracking looks for.
_COMPETITORS: Final = (
    ("Teavana: widely available flavoured blends.", "Teavana：风味拼配茶，购买方便。"),
    (
        "Twinings: a long-established British brand with a broad green tea range.",
        "Twinings（川宁）：历史悠久的英国品牌，绿茶品种齐全。",
    ),
    (
        "Yunnan Sourcing: a large online catalogue of pu-erh and other Yunnan teas.",
        "Yunnan Sourcing：普洱及其他云南茶的大型网店。",
    ),
    (
        "天福茗茶 (Ten Fu Tea): a Chinese chain with many tea shops.",
        "天福茗茶：门店众多的中国连锁茶企。",
    ),
)
_BRAND_LINE: Final = (
    f"{DEMO_BRAND}: a Hangzhou grower known for hand-fried West Lake Longjing.",
    f"{DEMO_BRAND_ZH}：杭州茶园，以手工炒制的西湖龙井闻名。",
)

# Fact key -> (en template, zh template, misstated value). Correct values come from the demo
# knowledge base, so the demo's "correct" answers agree with what the product publishes.
_FACT_TEMPLATES: Final = {
    "founded": (
        f"{DEMO_BRAND} was founded in Hangzhou in {{}}.",
        f"{DEMO_BRAND_ZH}于{{}}年在杭州创立。",
        "2005",
    ),
    "garden-area": (
        f"{DEMO_BRAND} farms {{}} hectares of its own tea gardens.",
        f"{DEMO_BRAND_ZH}拥有{{}}公顷自有茶园。",
        "24",
    ),
    "employees": (
        f"{DEMO_BRAND} employs {{}} people.",
        f"{DEMO_BRAND_ZH}共有{{}}名员工。",
        "120",
    ),
    "export-countries": (
        f"{DEMO_BRAND} ships to customers in {{}} countries.",
        f"{DEMO_BRAND_ZH}的产品销往{{}}个国家。",
        "13",
    ),
}


@functools.cache
def demo_facts() -> dict[str, str]:
    """The demo brand's real values for the facts the demo states, from the knowledge base."""
    facts = json.loads(DEMO_FACTS_FILE.read_text(encoding="utf-8"))
    return {f["key"]: str(f["value"]) for f in facts if f["key"] in _FACT_TEMPLATES}


def demo_mention_probability(day: int) -> float:
    """Rising over days, so the demo's charts show a trend."""
    return min(0.35 + 0.02 * day, 0.8)


def _uniforms(model: str, question: str, day: int) -> list[float]:
    """Eight stable pseudo-random numbers in [0, 1) for these inputs."""
    digest = hashlib.sha256(f"{model}\x1f{question}\x1f{day}".encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 32, 4)]


def _demo_citations(model: str, u: float, v: float) -> tuple[str, ...]:
    """Only search-style models cite; demo-search always does."""
    searching = "sonar" in model or "search" in model
    if model != "demo-search" and not (searching and u < 0.6):
        return ()
    first = int(v * len(DEMO_CITATIONS))
    other = DEMO_OTHER_CITATIONS[int(u * 1000) % len(DEMO_OTHER_CITATIONS)]
    return (DEMO_CITATIONS[first], other)


def _demo_fact(zh: bool, u: float, v: float) -> str:
    """One statement about the demo brand; about one in six is wrong."""
    key = list(_FACT_TEMPLATES)[int(u * len(_FACT_TEMPLATES))]
    en, zh_template, wrong = _FACT_TEMPLATES[key]
    value = wrong if v < 1 / 6 else demo_facts()[key]
    return (zh_template if zh else en).format(value)


def demo_reply(model: str, question: str, day: int) -> Reply:
    """A deterministic answer about Chinese tea brands, in Chinese if the question is."""
    u = _uniforms(model, question, day)
    zh = bool(_CJK.search(question))
    lang = 1 if zh else 0
    start, count = int(u[1] * len(_COMPETITORS)), 2 + (u[2] < 0.5)
    lines = [_COMPETITORS[(start + i) % len(_COMPETITORS)][lang] for i in range(count)]
    mentioned = u[0] < demo_mention_probability(day)
    if mentioned:
        lines.insert(int(u[3] * (len(lines) + 1)), _BRAND_LINE[lang])
    intro = "值得考虑的中国茶品牌有：" if zh else "A few tea brands worth considering:"
    listing = "\n".join(f"{n}. {line}" for n, line in enumerate(lines, 1))
    parts = [intro, listing]
    if mentioned:
        parts.append(_demo_fact(zh, u[4], u[5]))
    return Reply("\n".join(parts), citations=_demo_citations(model, u[6], u[7]))


class DemoScript:
    """Serves `demo_reply`; `day` fixed, or (None) counted in days since this script began."""

    models = list(DEMO_MODELS)

    def __init__(self, day: int | None = None) -> None:
        self.day, self.started = day, date.today()

    def current_day(self) -> int:
        return self.day if self.day is not None else (date.today() - self.started).days

    def __call__(self, model: str, messages: list[Message], attempt: int) -> Reply:
        question = last_user_text(messages)
        return demo_summary(question) or demo_reply(model, question, self.current_day())


# A request to summarize search results, as publishing.answer_endpoint.summary_prompt writes
# it: "Question: …", then "Sources:" and "[n] name", URL and description lines.
_SUMMARY_QUESTION = re.compile(r"^Question: (.*)$", re.M)
_SUMMARY_SOURCE = re.compile(r"^\[\d+\] (.*)\n(\S+)\n(.*)$", re.M)


def demo_summary(prompt: str) -> Reply | None:
    """The demo engine's summary of /ask's results: their first three descriptions, each
    citing its page (extractive, so it states only what the site does)."""
    question = _SUMMARY_QUESTION.search(prompt)
    if question is None or "\nSources:\n" not in prompt:
        return None
    sources = _SUMMARY_SOURCE.findall(prompt.split("\nSources:\n", 1)[1])[:3]
    zh = bool(_CJK.search(question.group(1)))
    if not sources:
        return Reply("网站上没有相关内容。" if zh else "The website does not answer that.")
    intro = "品牌网站上的答案：" if zh else "From the brand's website:"
    lines = [f"- {description or name} ({url})" for name, url, description in sources]
    return Reply("\n".join([intro, *lines]), citations=[url for _, url, _ in sources])


# The product's demo engine: ScriptedEngine(DEMO_ANSWERS).
DEMO_ANSWERS: Final = DemoScript()


def _echo(model: str, messages: list[Message], attempt: int) -> Reply:
    return Reply(f"Echo from {model}: {last_user_text(messages)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve scripted OpenAI chat completions.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--demo", action="store_true", help="answer with the demo tea brands")
    parser.add_argument("--day", type=int, default=None, help="fix the demo day (default: 0+)")
    parser.add_argument("--verbose", action="store_true", help="log each request")
    args = parser.parse_args(argv)
    script: Script = DemoScript(args.day) if args.demo else _echo
    with ScriptedEngine(script, host=args.host, port=args.port, verbose=args.verbose) as engine:
        print(engine.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop it
            threading.Event().wait()


if __name__ == "__main__":
    main()
