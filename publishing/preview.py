"""What an entity's working copy will look like once published: its page and its JSON-LD."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import escape

from kb.models import Brand, Entity
from publishing.media import media_prefix, preview_token
from publishing.models import MediaAsset
from publishing.render.pages import StatementIndex, page_inputs, page_jsonld, render_page
from publishing.selectors import release_latest_built
from publishing.site import (
    LiveEntity,
    Page,
    by_language,
    entity_path,
    missing_required,
    names_of,
    revisions_by_id,
    section_of,
    site_content_load,
    summaries_of,
    walk_refs,
)

PREVIEW_REVISION = -1  # stands for the working copy among the live revisions


def entity_preview(*, entity: Entity, language: str) -> dict:
    """The page and graph the working copy would publish, next to what is live.

    Returns {"html", "graph", "missing", "section"}; "html" is None when the entity would
    not get a page (its type has none, or it lacks what it needs).
    """
    # From the latest release's state: only what changed since is read again.
    latest = release_latest_built(brand=entity.brand)
    site = site_content_load(
        brand=entity.brand, previous_state=latest.site_state if latest else None
    )
    snapshot = entity.snapshot()
    refs: list[str] = []
    walk_refs(snapshot["data"], refs)
    preview = LiveEntity(
        pk=entity.pk,
        iri=snapshot["iri"],
        slug=snapshot["slug"],
        types=tuple(snapshot["types"]),
        revision_id=PREVIEW_REVISION,
        published_at=entity.updated_at,
        names=by_language(names_of(snapshot["data"])),
        refs=tuple(dict.fromkeys(refs)),
        missing=missing_required(snapshot["types"], snapshot["data"]),
        section=section_of(snapshot["types"]),
        summaries=by_language(
            summaries_of(snapshot, entity.brand.languages, entity.brand.default_language)
        ),
    )
    if preview.missing:
        return {"html": None, "graph": None, "missing": preview.missing, "section": None}
    site.entities[preview.iri] = preview
    if preview.section is None or preview.iri == site.organization_iri:
        kind, path, section = (
            "home",
            "" if language == site.default_language else f"{language}/",
            None,
        )
    else:
        kind, path, section = "entity", entity_path(site, preview, language), preview.section
    page = Page(kind=kind, language=language, path=path, main=[preview.iri], section=section)
    inputs = page_inputs(site, page, StatementIndex.of(site))
    wanted = {site.entities[i].revision_id for i in (*inputs.full, *inputs.listed)}
    if site.organization_iri in site.entities:
        wanted.add(site.entities[site.organization_iri].revision_id)
    contents = revisions_by_id(wanted - {PREVIEW_REVISION})
    contents[PREVIEW_REVISION] = snapshot
    rendered = render_page(
        site, page, inputs, contents, lastmod_for=lambda markdown: entity.updated_at.isoformat()
    )
    html = rendered.html.decode("utf-8")
    return {"html": html, "graph": page_jsonld(html), "missing": [], "section": section}


# -- images in the preview --

# A CSP source for the brand's media: a plain http(s) URL, nothing that would end the
# directive or the policy.
CSP_SOURCE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%!$&+=@:/-]*)?$")


def preview_csp(brand: Brand) -> str:
    """The preview page's policy: shown in a sandboxed frame of the admin (no scripts, no
    forms, no navigation). Images: this server's (the brand's uploaded images, linked here
    by ``preview_media_links``), the brand's own media URL, and, as on the published page,
    any other http(s) image the content links (a CDN's; only http(s) URLs are published as
    images)."""
    media = media_prefix(brand)
    sources = ["'self'"]
    if CSP_SOURCE.match(media):
        sources.append(media)
    sources += ["https:", "http:", "data:"]
    return f"sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src {' '.join(sources)}"


def preview_media_links(html: str, *, brand: Brand, user) -> str:
    """The page with each image of the brand's media (``{base_url}/media/<path>``) that is
    uploaded here linked to this server's copy: the published site may not serve it yet.

    The frame is sandboxed, so its requests carry no session cookie: each link has a token
    for the user (valid for an hour), and the file view checks the user's permission again.
    """
    prefix = escape(media_prefix(brand))
    pattern = re.compile(r'(\ssrc=")' + re.escape(prefix) + r'([^"<>\s]+)(")')
    paths = {unescape(match.group(2)) for match in pattern.finditer(html)}
    if not paths or user is None or not user.is_authenticated:
        return html
    assets = {a.path: a for a in MediaAsset.objects.filter(brand=brand, path__in=paths)}

    def local(match: re.Match) -> str:
        asset = assets.get(unescape(match.group(2)))
        if asset is None:
            return match.group(0)
        url = reverse("admin:publishing_mediaasset_file", args=[asset.pk])
        url += "?" + urlencode({"t": preview_token(asset, user)})
        return f"{match.group(1)}{escape(url)}{match.group(3)}"

    return pattern.sub(local, html)
