"""Escaping user text for each place it ends up: HTML, JSON in <script>, Markdown, llms.txt."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import nh3
from django.utils.safestring import SafeString, mark_safe

from kb.jsontext import json_bytes
from kb.validation import URL_JUNK, web_url_problem
from publishing.locks import fork_guard

# The tags Google keeps in FAQ answers; everything else is shown as text.
ANSWER_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "br", "ol", "ul", "li", "a", "p", "div", "b", "strong",
    "i", "em",
}  # fmt: skip
VOID_TAGS = {"br"}
SAFE_SCHEMES = {"http", "https", "mailto"}


def json_for_script(value) -> SafeString:
    """JSON that no text can break out of a <script> element (like Django's json_script)."""
    text = json_bytes(value).decode("utf-8")
    for raw, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return mark_safe(text)


class _AnswerFilter(HTMLParser):
    """Keeps allowed tags (with a safe href on links); escapes every other tag as text."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ANSWER_TAGS:
            self.out.append(html.escape(self.get_starttag_text() or f"<{tag}>"))
            return
        if tag == "a":
            href = dict(attrs).get("href") or ""
            if urlsplit(href).scheme.lower() in SAFE_SCHEMES:
                self.out.append(f'<a href="{html.escape(href, quote=True)}">')
                return
            self.out.append("<a>")
            return
        self.out.append(f"<{tag}>")

    def handle_startendtag(self, tag, attrs):
        if tag in VOID_TAGS:
            self.out.append(f"<{tag}>")
        else:
            self.out.append(html.escape(self.get_starttag_text() or f"<{tag}/>"))

    def handle_endtag(self, tag):
        if tag in ANSWER_TAGS and tag not in VOID_TAGS:
            self.out.append(f"</{tag}>")
        else:
            self.out.append(html.escape(f"</{tag}>"))

    def handle_data(self, data):
        self.out.append(html.escape(data, quote=False))

    def handle_entityref(self, name):
        self.out.append(f"&{name};")

    def handle_charref(self, name):
        self.out.append(f"&#{name};")

    def handle_comment(self, data):
        self.out.append(html.escape(f"<!--{data}-->"))

    def handle_decl(self, decl):
        self.out.append(html.escape(f"<!{decl}>"))

    def handle_pi(self, data):
        self.out.append(html.escape(f"<?{data}>"))

    def unknown_decl(self, data):
        self.out.append(html.escape(f"<![{data}]>"))


def answer_html(text: str) -> SafeString:
    """An FAQ answer as HTML: Google's allowed tags kept, everything else escaped.

    nh3 (ammonia) then re-sanitizes the result, so that whatever the filter let through
    is well-formed and carries nothing executable.
    """
    parser = _AnswerFilter()
    parser.feed(text)
    parser.close()
    if parser.rawdata:  # an unfinished tag at the end is text
        parser.out.append(html.escape(parser.rawdata))
    with fork_guard:  # see publishing.locks
        cleaned = nh3.clean(
            "".join(parser.out),
            tags=ANSWER_TAGS,
            attributes={"a": {"href"}},
            url_schemes=SAFE_SCHEMES,
            link_rel="nofollow noopener",
        )
    return mark_safe(cleaned)


def html_to_text(text: str) -> str:
    """Plain text of a bit of HTML (tags dropped, entities decoded), one line per block."""
    blocks = re.sub(r"(?i)<\s*(br|/p|/div|/li|/h[1-6])\s*/?>", "\n", text)
    with fork_guard:  # see publishing.locks
        plain = nh3.clean(blocks, tags=set())
    return html.unescape(plain).strip()


# Characters that start Markdown constructs anywhere in a line; "(" is harmless once "]"
# is escaped. Escapes are kept few: engines read the raw Markdown.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
LINE_START_SPECIAL = re.compile(
    r"^(\s*)(#{1,6}(?=\s|$)|[-+](?=\s|$)|=+\s*$|(\d{1,9})([.)])(?=\s|$))"
)
ENTITY = re.compile(r"&(?=#?\w+;)")


def md(text: str) -> str:
    """User text safe inside Markdown: no markup, links, HTML or headings it did not mean."""
    text = " ".join(str(text).split())  # one line: no block structure from user text
    text = MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = ENTITY.sub("&amp;", text)

    def escape_start(match: re.Match) -> str:
        if match.group(3):  # "1." or "1)" would start an ordered list
            return match.group(1) + match.group(3) + "\\" + match.group(4)
        return match.group(1) + "\\" + match.group(2)

    return LINE_START_SPECIAL.sub(escape_start, text)


def md_block(text: str) -> str:
    """Multi-line user text (paragraphs kept) safe inside Markdown."""
    return "\n\n".join(md(p) for p in re.split(r"\n\s*\n|\n", text) if p.strip())


def llms_title(text: str) -> str:
    """A link title for llms.txt: one line, no square brackets (the reference parser stops at
    ``]``), and escaped like all Markdown text (no HTML, autolink or emphasis survives)."""
    return md(str(text).replace("[", "(").replace("]", ")"))


def llms_note(text: str) -> str:
    """Text of llms.txt (title, summary, notes): one line of escaped Markdown."""
    return md(text)


def llms_url(url: str) -> str:
    """A URL for llms.txt and Markdown links: ``(``, ``)``, ``<``, ``>``, quotes, backslashes
    and spaces percent-encoded, so that it cannot end the link's ``(...)`` early.

    Only http(s) URLs and site-relative paths are link targets (see ``link_target``)."""
    return quote(url, safe=":/?#@!$&'*+,;=-._~%")


def web_url(value) -> str | None:
    """The value if it is an absolute http(s) URL, else None: nothing else becomes a link
    (no ``javascript:``, ``data:``, ``vbscript:``, ``file:``, no relative junk). The rule of
    ``kb.validation.web_url_problem``, which refuses such values on the way in."""
    return value if isinstance(value, str) and not web_url_problem(value) else None


def link_target(url) -> str | None:
    """A Markdown link target: an http(s) URL or a site-relative path the builder made
    (``/…``, not ``//host``), percent-encoded; None for anything else (the text stays, the
    link goes)."""
    if isinstance(url, str) and url.startswith("/") and not url.startswith("//"):
        return None if URL_JUNK.search(url) else llms_url(url)
    safe = web_url(url)
    return llms_url(safe) if safe else None


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"
