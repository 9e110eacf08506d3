"""What an entity's working copy will look like once published: its page and its JSON-LD."""

from __future__ import annotations

import json

from kb.models import Entity
from publishing.render.pages import StatementIndex, page_inputs, render_page
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
    site = site_content_load(brand=entity.brand)
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
    script = html.split('<script type="application/ld+json">', 1)[1].split("</script>", 1)[0]
    return {"html": html, "graph": json.loads(script), "missing": [], "section": section}
