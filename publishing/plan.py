"""The page plan kept with a release, so that the next build fingerprints again only the pages
that show an object that changed.

A build fingerprints every page (what it shows: its kind, path, the revisions of the
entities, facts and FAQs on it, …) to find those to render again; the sitemaps and llms files
then need each page's Markdown twin (sha256, size, when it last changed). At 100,000
products that was reading the parent's whole manifest and working out what each of 200,000
pages shows: seconds of a one-edit publish. So a release keeps, in page order, each page's
fingerprint and its twin's sha256, size and last change, in content-addressed chunks of
``SPAN`` pages in the artifact store (``Release.build_plan``).

The next build uses its parent's plan when the plan's key is its own: the same site-wide
inputs (``site_key``), media alt texts and *structure* (the same pages with the same paths,
listing the same entities, facts and FAQs in the same order). Then a page's fingerprint can
only differ from its parent's if the page shows an object whose record changed (see
publishing.site_state): ``pages_affected`` finds those pages from the changed objects and
the entities' references, and only they are fingerprinted again (and rendered, if their
fingerprint changed). Any other change (a page added, moved or removed, the organization or
what it refers to, an entity deleted outright) makes a whole plan, as before.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass

from publishing.site import SiteContent, SitePages, digest
from publishing.store import artifact_put, artifact_read

PLAN_VERSION = "1"
SPAN = 8192  # pages a chunk: at 100,000 products, 25 chunks of 640 kB
# Above this share of the pages affected, the whole plan is made (and the whole manifest read).
AFFECTED_MAX = 0.2


@dataclass
class PagePlan:
    """Per page, in page order: its fingerprint (32 bytes), its twin's sha256 (32 bytes),
    size and last change (whole seconds since the epoch)."""

    fingerprints: bytearray
    twin_sha256: bytearray
    twin_size: array
    twin_changed: array


def plan_key(site: SiteContent, pages: SitePages, site_key: str) -> str:
    return digest(
        PLAN_VERSION,
        site_key,
        pages.structure(),
        [s.pk for s in site.facts],
        [s.pk for s in site.faqs],
        sorted((path, sorted(alt.items())) for path, alt in site.media_alt.items()),
    )


def little_endian(values: array) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def from_little_endian(data: bytes) -> array:
    values = array("q")
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def plan_save(*, key: str, plan: PagePlan) -> dict:
    """Store the plan's chunks; what a release keeps of it (``Release.build_plan``)."""
    count = len(plan.twin_size)
    chunks = []
    for start in range(0, count, SPAN):
        stop = min(count, start + SPAN)
        data = b"".join(
            (
                plan.fingerprints[32 * start : 32 * stop],
                plan.twin_sha256[32 * start : 32 * stop],
                little_endian(plan.twin_size[start:stop]),
                little_endian(plan.twin_changed[start:stop]),
            )
        )
        chunks.append(artifact_put(data)[0])
    return {"key": key, "pages": count, "chunks": chunks}


def plan_load(saved: dict | None, *, key: str, pages: int) -> PagePlan | None:
    """The parent's plan, if it was made for this key and number of pages."""
    if not saved or saved.get("key") != key or saved.get("pages") != pages:
        return None
    plan = PagePlan(bytearray(), bytearray(), array("q"), array("q"))
    for number, sha256 in enumerate(saved["chunks"]):
        count = min(SPAN, pages - number * SPAN)
        try:
            data = artifact_read(sha256)
        except OSError:  # removed by hand: made again
            return None
        if len(data) != 80 * count:
            return None
        plan.fingerprints += data[: 32 * count]
        plan.twin_sha256 += data[32 * count : 64 * count]
        plan.twin_size += from_little_endian(data[64 * count : 72 * count])
        plan.twin_changed += from_little_endian(data[72 * count :])
    if len(plan.twin_size) != pages:
        return None
    return plan


def plan_artifacts(saved: dict) -> list[str]:
    """The sha256 of the chunks a saved plan lists (kept by the artifact store's pruning)."""
    return list((saved or {}).get("chunks", []))


def pages_affected(site: SiteContent, pages: SitePages) -> list[int] | None:
    """The indexes of the pages that may show something else than in the parent release
    whose plan has this site's key, sorted; None when that cannot be told from the changed
    objects (or is most pages), and every page is to be fingerprinted."""
    state = site.state
    if state is None or not state.from_parent:
        return None
    # Primary key → IRI of the entities that are there now (published, or not).
    iris = {**state.unpublished_iris, **{e.pk: e.iri for e in site.entities.values()}}
    changed: set[str] = set()
    for pk, old in state.entities.replaced.items():
        now = state.entities.current.get(pk)
        for record in (old, now):
            if record is not None:
                changed.add(record[3])
        if pk in state.unpublished_iris:
            changed.add(state.unpublished_iris[pk])
    if any(iri not in site.entities and iri not in site.hidden for iri in changed):
        return None  # deleted outright: what referred to it is not known now
    # A page shows its entities, what they refer to and what those refer to (see
    # render.pages.page_inputs): the entities within two references of a changed one.
    near = set(changed)
    for _ in range(2):
        near |= {e.iri for e in site.entities.values() if not near.isdisjoint(e.refs)}
    if site.organization_iri in near:
        return None  # every page shows the organization and what it refers to
    affected: set[int] = set()
    for iri in near:
        affected.update(pages.showing_entity(iri))
    for iri in changed:
        affected.update(pages.listing_entity(iri))
    for kind, records, statements in (
        ("facts", state.facts.replaced, site.facts),
        ("faq", state.faqs.replaced, site.faqs),
    ):
        abouts = {s.about_iri for s in statements}
        if records or not changed.isdisjoint(abouts):
            affected.update(pages.of_kind(kind))  # they list these, or show what they are about
        now = {s.pk: s.about_iri for s in statements if s.pk in records}
        for pk, old in records.items():
            for about in (iris.get(old[4]) if old else None, now.get(pk)):
                if about is not None:
                    affected.update(pages.showing_entity(about))
    if len(affected) > AFFECTED_MAX * len(pages):
        return None
    return sorted(affected)
