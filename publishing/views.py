"""Serving a published directory in development (`make demo`); production uses nginx."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponseNotModified, HttpResponseRedirect
from django.utils.http import http_date
from django.views.static import was_modified_since

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".jsonld": "application/ld+json",
    ".xml": "application/xml",
    # The brand's images, published under media/ (publishing.media).
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


def published_site(request, path: str = ""):
    """The directory named by SOURCEBOOK_SERVE_SITE (a target's ``current``), at /."""
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
    if not candidate.is_file():
        raise Http404("Not published.")
    stat = candidate.stat()
    if not was_modified_since(request.META.get("HTTP_IF_MODIFIED_SINCE"), stat.st_mtime):
        return HttpResponseNotModified()
    response = FileResponse(
        candidate.open("rb"),
        content_type=CONTENT_TYPES.get(candidate.suffix, "application/octet-stream"),
    )
    response["Last-Modified"] = http_date(stat.st_mtime)
    if candidate.name == "index.html":
        twin = f"/{path}index.html.md" if path.endswith("/") or not path else f"/{path}.md"
        response["Link"] = (
            f'<{twin}>; rel="alternate"; type="text/markdown", </llms.txt>; rel="describedby"'
        )
    return response


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
