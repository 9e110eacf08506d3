"""Serving a published directory in development (`make demo`); production uses nginx."""

from __future__ import annotations

import math
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponseNotModified, HttpResponseRedirect
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date
from django.views.static import was_modified_since

from publishing.ai_use import content_usage_for, content_usage_rules

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".jsonld": "application/ld+json",
    ".xml": "application/xml",
    ".tsv": "text/tab-separated-values; charset=utf-8",  # product feeds (publishing.render.feeds)
    ".gz": "application/gzip",
    # The brand's images, published under media/ (publishing.media).
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


def published_site(request, path: str = ""):
    """The directory named by SOURCEBOOK_SERVE_SITE (a target's ``current``), at /, served as
    deploy/nginx/sourcebook.conf serves it: a page's Markdown twin to clients that prefer
    ``text/markdown``, and the brand's Content-Usage preference on every file."""
    root_setting = getattr(settings, "SOURCEBOOK_SERVE_SITE", "")
    if not root_setting:
        if path == "":
            return HttpResponseRedirect("/admin/")
        raise Http404("No published site is served here.")
    root = Path(root_setting).resolve()
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root):
        raise Http404("Outside the published site.")
    if candidate.is_dir():
        if path and not path.endswith("/"):
            return HttpResponseRedirect(f"/{path}/")
        candidate = candidate / "index.html"
    page = candidate.name == "index.html" or candidate.suffix == ".html"
    negotiated = page and request.get_preferred_type(PAGE_TYPES) == PAGE_TYPES[1]
    if negotiated:
        candidate = candidate.with_name(candidate.name + ".md")
    if not candidate.is_file():
        raise Http404("Not published.")
    stat = candidate.stat()
    if not was_modified_since(request.META.get("HTTP_IF_MODIFIED_SINCE"), stat.st_mtime):
        response = HttpResponseNotModified()
    else:
        response = FileResponse(
            candidate.open("rb"),
            content_type=CONTENT_TYPES.get(candidate.suffix, "application/octet-stream"),
        )
        response["Last-Modified"] = http_date(stat.st_mtime)
    if page:
        patch_vary_headers(response, ["Accept"])
    if candidate.suffix == ".md":
        response["x-markdown-tokens"] = str(markdown_tokens(candidate.read_bytes()))
    elif candidate.name == "index.html":
        twin = f"/{path}index.html.md" if path.endswith("/") or not path else f"/{path}.md"
        response["Link"] = (
            f'<{twin}>; rel="alternate"; type="text/markdown", </llms.txt>; rel="describedby"'
        )
    usage = content_usage_of(root, "/" + path)
    if usage:
        response["Content-Usage"] = usage
    return response


# The representations of a page, the first preferred when a client likes both alike (with
# their charset: a range naming another, text/markdown;charset=latin1, matches neither).
PAGE_TYPES = ["text/html; charset=utf-8", "text/markdown; charset=utf-8"]


def markdown_tokens(data: bytes) -> int:
    """An estimate of the tokens in a Markdown body (the ``x-markdown-tokens`` header, as
    deploy/nginx/sourcebook.js makes it): a token per four ASCII characters, one per other
    character (a Chinese character is about one)."""
    text = data.decode("utf-8", "replace")
    ascii_count = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_count / 4) + len(text) - ascii_count


def content_usage_of(root: Path, path: str) -> str:
    """The Content-Usage value robots.txt of the served release states for ``path``."""
    try:
        robots = (root / "robots.txt").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    return content_usage_for(content_usage_rules(robots), path)


def admin_landing(request):
    """The admin's home: a member of one brand lands on that brand's dashboard (content,
    checks, releases, and a link to its AI visibility); anyone else on the admin index."""
    from django.contrib import admin
    from django.shortcuts import redirect
    from django.urls import reverse

    from kb.services.permissions import brands_for

    if request.user.is_active and request.user.is_staff and "all" not in request.GET:
        brands = list(brands_for(request.user)[:2])
        if len(brands) == 1:
            return redirect(reverse("admin:publishing_brand_dashboard", args=[brands[0].pk]))
    return admin.site.index(request)
