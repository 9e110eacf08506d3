"""Access-log reading: which AI agents fetched what, and when (visibility.access_logs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from visibility.access_logs import (
    AGENTS,
    AgentSummary,
    LogRecord,
    ParseResult,
    TrafficCounts,
    artifact_kind,
    classify,
    count_traffic,
    parse_line,
    parse_lines,
    summarize,
)

DATA = Path(__file__).parent / "data"

GPTBOT_UA = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot"
)
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
SAFARI_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1"
)


def utc(day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def read_sample(name: str) -> ParseResult:
    return parse_lines((DATA / name).read_text(encoding="utf-8").splitlines(), name)


# Worked out by hand from the fixture, in UTC (+0800 lines moved back eight hours).
# Most recently seen first: GPTBot's last visit is the 02:00 +0000 line, not the later-written
# 09:00 +0800 one (01:00 UTC).
EXPECTED_SUMMARY = [
    AgentSummary(
        agent="GPTBot",
        operator="OpenAI",
        purpose="training",
        engine="ChatGPT",
        visits=5,
        first_visit=utc(10, 3, 12, 45),
        last_visit=utc(14, 2, 0, 0),
        last_success=utc(14, 2, 0, 0),
        pages=5,
        artifacts={"robots.txt": 1, "llms.txt": 1, "llms-full.txt": 1, "sitemap": 1, "markdown": 1},
        statuses={200: 4, 304: 1},
    ),
    AgentSummary(
        agent="CCBot",
        operator="Common Crawl",
        purpose="training",
        engine="Common Crawl",
        visits=2,
        first_visit=utc(13, 4, 44, 44),
        last_visit=utc(13, 4, 44, 50),
        last_success=utc(13, 4, 44, 50),
        pages=2,
        artifacts={"robots.txt": 1, "page": 1},
        statuses={200: 2},
    ),
    AgentSummary(
        agent="Bytespider",
        operator="ByteDance",
        purpose="training",
        engine="Doubao",
        visits=2,
        first_visit=utc(13, 1, 2, 3),
        last_visit=utc(13, 1, 2, 9),
        last_success=None,
        pages=2,
        artifacts={"page": 1, "llms-full.txt": 1},
        statuses={403: 2},
    ),
    AgentSummary(
        agent="ChatGPT-User",
        operator="OpenAI",
        purpose="user",
        engine="ChatGPT",
        visits=3,
        first_visit=utc(12, 6, 22, 10),
        last_visit=utc(12, 6, 25, 43),
        last_success=utc(12, 6, 25, 41),
        pages=2,
        artifacts={"page": 2, "markdown": 1},
        statuses={200: 2, 500: 1},
    ),
    AgentSummary(
        agent="Perplexity-User",
        operator="Perplexity",
        purpose="user",
        engine="Perplexity",
        visits=2,
        first_visit=utc(12, 2, 5, 33),
        last_visit=utc(12, 2, 5, 35),
        last_success=utc(12, 2, 5, 35),
        pages=2,
        artifacts={"page": 1, "llms.txt": 1},
        statuses={200: 2},
    ),
    AgentSummary(
        agent="PerplexityBot",
        operator="Perplexity",
        purpose="search",
        engine="Perplexity",
        visits=3,
        first_visit=utc(11, 2, 40, 0),
        last_visit=utc(11, 2, 40, 6),
        last_success=utc(11, 2, 40, 6),
        pages=3,
        artifacts={"sitemap": 1, "page": 1, "jsonld": 1},
        statuses={200: 3},
    ),
    AgentSummary(
        agent="ClaudeBot",
        operator="Anthropic",
        purpose="training",
        engine="Claude",
        visits=4,
        first_visit=utc(11, 0, 15, 22),
        last_visit=utc(11, 0, 16, 30),
        last_success=utc(11, 0, 16, 1),
        pages=4,
        artifacts={"robots.txt": 1, "llms.txt": 1, "markdown": 2},
        statuses={200: 3, 404: 1},
    ),
    AgentSummary(
        agent="Googlebot",
        operator="Google",
        purpose="search",
        engine="Google AI Overviews",
        visits=1,
        first_visit=utc(10, 6, 44, 3),
        last_visit=utc(10, 6, 44, 3),
        last_success=utc(10, 6, 44, 3),
        pages=1,
        artifacts={"page": 1},
        statuses={304: 1},
    ),
    AgentSummary(
        agent="OAI-SearchBot",
        operator="OpenAI",
        purpose="search",
        engine="ChatGPT",
        visits=3,
        first_visit=utc(10, 5, 1, 9),
        last_visit=utc(10, 5, 2, 40),
        last_success=utc(10, 5, 2, 40),
        pages=3,
        artifacts={"sitemap": 2, "page": 1},
        statuses={200: 3},
    ),
]


# --- the sample logs -----------------------------------------------------------------------


def test_combined_sample_summary_per_agent():
    assert summarize(read_sample("access-sample.log").records) == EXPECTED_SUMMARY


def test_combined_sample_malformed_lines_are_reported_with_line_numbers():
    result = read_sample("access-sample.log")
    assert result.errors == [
        "access-sample.log:10: not a combined-log or JSON line",
        "access-sample.log:26: not a combined-log or JSON line",
    ]
    assert len(result.records) == 28


def test_json_lines_sample_reports_its_malformed_lines():
    result = read_sample("access-sample.jsonl")
    assert result.errors == [
        "access-sample.jsonl:10: not a combined-log or JSON line",
        "access-sample.jsonl:26: JSON line without a status",
    ]


def test_json_lines_sample_describes_the_same_requests_as_the_combined_one():
    combined = read_sample("access-sample.log").records
    json_lines = read_sample("access-sample.jsonl").records
    assert json_lines == combined  # same times (as instants), paths, statuses, sizes, agents
    assert summarize(json_lines) == EXPECTED_SUMMARY


def test_traffic_counts_separate_ai_agents_from_other_visitors():
    records = read_sample("access-sample.log").records
    # 28 requests, three of them from people's browsers (Chrome twice, Safari once).
    assert count_traffic(records) == TrafficCounts(total=28, ai=25)


def test_summary_leaves_out_browsers():
    browser = LogRecord(utc(10, 1, 0, 0), "203.0.113.7", "GET", "/", 200, 10, CHROME_UA, "")
    assert summarize([browser]) == []


def test_summary_counts_a_path_once_whatever_its_query_string():
    fetches = [
        LogRecord(utc(10, 1, 0, 0), "20.171.207.11", "GET", path, 200, 10, GPTBOT_UA, "")
        for path in ("/products/longjing/", "/products/longjing/?from=chat", "/llms.txt")
    ]
    [summary] = summarize(fetches)
    assert (summary.visits, summary.pages, summary.artifacts) == (
        3,
        2,
        {"page": 2, "llms.txt": 1},
    )


# --- classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "token", "purpose", "engine"),
    [
        (GPTBOT_UA, "GPTBot", "training", "ChatGPT"),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; "
            "+https://openai.com/searchbot",
            "OAI-SearchBot",
            "search",
            "ChatGPT",
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
            "+https://openai.com/bot",
            "ChatGPT-User",
            "user",
            "ChatGPT",
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
            "+claudebot@anthropic.com)",
            "ClaudeBot",
            "training",
            "Claude",
        ),
        ("Claude-User/1.0 (+Claude-User@anthropic.com)", "Claude-User", "user", "Claude"),
        (
            "Claude-SearchBot/1.0 (+https://www.anthropic.com)",
            "Claude-SearchBot",
            "search",
            "Claude",
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; "
            "+https://perplexity.ai/perplexitybot)",
            "PerplexityBot",
            "search",
            "Perplexity",
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; "
            "+https://perplexity.ai/perplexity-user)",
            "Perplexity-User",
            "user",
            "Perplexity",
        ),
        (
            "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
            "Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
            "Bytespider",
            "training",
            "Doubao",
        ),
        ("CCBot/2.0 (https://commoncrawl.org/faq/)", "CCBot", "training", "Common Crawl"),
        (
            "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
            "meta-externalagent",
            "training",
            "Meta AI",
        ),
        (
            "Meta-ExternalFetcher/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
            "Meta-ExternalFetcher",
            "user",
            "Meta AI",
        ),
        (
            "Mozilla/5.0 (compatible; MistralAI-User/1.0; +https://docs.mistral.ai/robots)",
            "MistralAI-User",
            "user",
            "Le Chat",
        ),
        (
            "DuckAssistBot/1.2; (+http://duckduckgo.com/duckassistbot.html)",
            "DuckAssistBot",
            "search",
            "DuckAssist",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/119.0.6045.214 Safari/537.36 (compatible; Amazonbot/0.1; "
            "+https://developer.amazon.com/support/amazonbot)",
            "Amazonbot",
            "search",
            "Alexa",
        ),
        # Googlebot: a general search crawler, but the reference lists it with the search
        # agents because its index feeds AI Overviews, so it is tracked as one.
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
            "+http://www.google.com/bot.html) Chrome/131.0.6778.204 Safari/537.36",
            "Googlebot",
            "search",
            "Google AI Overviews",
        ),
    ],
)
def test_classify_names_the_agent_its_purpose_and_engine(user_agent, token, purpose, engine):
    agent = classify(user_agent)
    assert agent is not None
    assert (agent.token, agent.purpose, agent.engine) == (token, purpose, engine)


def test_classify_is_case_insensitive():
    agent = classify("mozilla/5.0 (compatible; gptbot/1.2)")
    assert agent is not None and agent.token == "GPTBot"


def test_googlebot_is_marked_as_a_general_search_crawler_not_an_ai_only_one():
    googlebot = classify("Googlebot/2.1 (+http://www.google.com/bot.html)")
    gptbot = classify(GPTBOT_UA)
    assert googlebot is not None and gptbot is not None
    assert (googlebot.general_search, gptbot.general_search) == (True, False)


@pytest.mark.parametrize(
    "user_agent",
    [
        CHROME_UA,
        SAFARI_UA,
        "Mozilla/5.0 (X11; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0",
        "",
        # Tokens count only as whole words.
        "Googlebot-Image/1.0",
        "Mozilla/5.0 (compatible; NotGPTBot/1.0)",
        "Mozilla/5.0 (compatible; ClaudeBotanist/2.0)",
        # robots.txt-only tokens never fetch anything themselves.
        "Mozilla/5.0 (compatible; Google-Extended)",
        "Applebot-Extended/1.0",
    ],
)
def test_classify_ignores_browsers_lookalikes_and_robots_only_tokens(user_agent):
    assert classify(user_agent) is None


def test_the_leftmost_token_wins_over_a_sibling_named_in_a_url():
    agent = classify("PerplexityBot/1.0 (see also https://perplexity.ai/perplexity-user)")
    assert agent is not None and agent.token == "PerplexityBot"


def test_agents_cover_the_robots_txt_tokens_with_the_same_purposes():
    # The product's own robots.txt groups (search and user-triggered agents share one group).
    from publishing.render.indexes import SEARCH_AGENTS, TRAINING_AGENTS

    purposes = {agent.token.lower(): agent.purpose for agent in AGENTS}
    assert {token: purposes.get(token.lower()) for token in TRAINING_AGENTS} == {
        token: "training" for token in TRAINING_AGENTS
    }
    assert {
        token: purposes.get(token.lower()) in ("search", "user") for token in SEARCH_AGENTS
    } == {token: True for token in SEARCH_AGENTS}


def test_robots_only_tokens_are_listed_but_do_not_fetch():
    robots_only = sorted(agent.token for agent in AGENTS if not agent.fetches)
    assert robots_only == ["Applebot-Extended", "Google-Extended"]


# --- artifacts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/llms.txt", "llms.txt"),
        ("/llms.txt?v=2", "llms.txt"),
        ("/llms-full.txt", "llms-full.txt"),
        ("/products/longjing/index.html.md", "markdown"),
        ("/index.md", "markdown"),
        ("/sitemap.xml", "sitemap"),
        ("/sitemap-products.xml", "sitemap"),
        ("/sitemaps/sitemap-1.xml", "sitemap"),
        ("/robots.txt", "robots.txt"),
        ("/products/longjing/index.jsonld", "jsonld"),
        ("/", "page"),
        ("/products/longjing/", "page"),
        ("/products/longjing/?utm_source=chatgpt.com", "page"),
        ("/products/longjing/index.html", "page"),
        ("/products/longjing", "page"),
        ("/static/img/longjing.jpg", "other"),
        ("/static/site.css", "other"),
        ("/static/app.js?v=3", "other"),
        ("/favicon.ico", "other"),
        ("/docs/robots.txt", "other"),
        ("", "other"),
    ],
)
def test_artifact_kind(path, kind):
    assert artifact_kind(path) == kind


# --- single lines --------------------------------------------------------------------------


def test_combined_line_keeps_its_timezone_and_reads_every_field():
    line = (
        '203.0.113.7 - - [10/Nov/2026:09:30:11 +0800] "GET /?q=1 HTTP/2.0" 200 15320 '
        f'"https://www.google.com/" "{CHROME_UA}" 0.004 0.003'
    )
    eight_hours_east = timezone(timedelta(hours=8))
    assert parse_line(line) == LogRecord(
        time=datetime(2026, 11, 10, 9, 30, 11, tzinfo=eight_hours_east),
        ip="203.0.113.7",
        method="GET",
        path="/?q=1",
        status=200,
        bytes=15320,
        user_agent=CHROME_UA,
        referer="https://www.google.com/",
    )
    assert parse_line(line).time.utcoffset() == timedelta(hours=8)


def test_combined_line_unescapes_quotes_and_reads_dash_bytes_and_absolute_targets():
    line = (
        '198.51.100.9 - - [10/Nov/2026:01:00:00 -0500] "GET http://tea.example/llms.txt HTTP/1.1"'
        ' 304 - "-" "odd \\"quoted\\" \\x22agent\\x22"'
    )
    record = parse_line(line)
    assert record is not None
    assert (record.time, record.path, record.bytes, record.referer, record.user_agent) == (
        utc(10, 6, 0, 0),
        "/llms.txt",
        0,
        "",
        'odd "quoted" "agent"',
    )


def test_combined_line_with_a_non_http_request_is_kept_without_method_or_path():
    line = '192.0.2.1 - - [10/Nov/2026:01:00:00 +0000] "\\x16\\x03\\x01" 400 157 "-" "-"'
    record = parse_line(line)
    assert record is not None
    assert (record.method, record.path, record.status, record.user_agent) == ("", "", 400, "")


def test_json_line_with_a_request_string_and_epoch_milliseconds():
    record = parse_line(
        '{"ts": 1794280382500, "request": "HEAD /robots.txt HTTP/1.1", "status": 200, '
        '"ua": "CCBot/2.0"}'
    )
    assert record == LogRecord(
        time=datetime(2026, 11, 10, 3, 13, 2, 500000, tzinfo=UTC),
        ip="",
        method="HEAD",
        path="/robots.txt",
        status=200,
        bytes=0,
        user_agent="CCBot/2.0",
        referer="",
    )


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            '{"time": "2026-11-10T03:12:45", "path": "/", "status": 200}',
            "log:1: time '2026-11-10T03:12:45' has no timezone offset",
        ),
        ('{"path": "/", "status": 200}', "log:1: JSON line without a time"),
        (
            '{"time": "2026-11-10T03:12:45Z", "status": 200}',
            "log:1: JSON line without a request path",
        ),
        (
            '{"time": "2026-11-10T03:12:45Z", "path": "/", "status": true}',
            "log:1: JSON line without a status",
        ),
        ('{"time": "yesterday", "path": "/", "status": 200}', "log:1: unreadable time 'yesterday'"),
        ('["not", "an", "object"]', "log:1: not a combined-log or JSON line"),
        (
            '192.0.2.1 - - [31/Nov/2026:01:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            "log:1: unreadable time '31/Nov/2026:01:00:00 +0000'",
        ),
    ],
)
def test_unparseable_lines_say_why(line, error):
    assert parse_line(line) is None
    assert parse_lines([line], "log").errors == [error]


def test_blank_lines_are_skipped_but_still_counted_for_line_numbers():
    good = '192.0.2.1 - - [10/Nov/2026:01:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
    result = parse_lines([good + "\n", "\n", "   \n", "garbage\n"], "access.log")
    assert (len(result.records), result.errors) == (
        1,
        ["access.log:4: not a combined-log or JSON line"],
    )
