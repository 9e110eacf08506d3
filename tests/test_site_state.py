"""The live content a build reads, carried from the parent release (publishing.site_state):
after any kind of edit, the site content made from the parent's state and the objects that
changed equals the one read afresh from every live revision; exactly the changed objects are
read again and only the chunks holding them are stored again."""

import time

import orjson
import pytest

from kb.demo_brand import demo_load
from kb.models import Brand, Entity
from kb.services.entities import entity_delete
from kb.services.workflow import object_publish
from publishing import site_state
from publishing.site import site_content_load
from publishing.site_state import state_artifacts
from publishing.store import artifact_read
from tests.publish_edits import (
    SLUG,
    add_faq,
    add_product,
    edit_description,
    edit_fact,
    live_objects,
    publish,
    rename,
    unpublish,
)

pytestmark = pytest.mark.django_db


# Each edit, what it makes the next build read again (objects), and how many chunks of
# each kind it stores again (the demo's objects all fall in the first chunk of their kind).
EDITS = [
    ("description", lambda b: edit_description("longjing-meijiawu", "Edited."), 1),
    ("new product", add_product, 1),
    ("rename", lambda b: rename("biluochun", "biluochun-spring"), 1),
    ("fact", edit_fact, 1),
    ("new FAQ", add_faq, 1),
    ("unpublish", lambda b: unpublish("anji-bai-cha"), 0),
    (
        "republish the same revision",
        lambda b: object_publish(obj=Entity.objects.get(slug="anji-bai-cha")),
        1,
    ),
]


def test_a_build_reads_only_what_changed_and_equals_a_fresh_read(tmp_path):
    demo_load()
    brand = Brand.objects.get(slug=SLUG)
    site = tmp_path / "site"
    first = publish(site)
    assert first.summary["revisions_read"] == live_objects(brand) > 20
    parent = first
    for name, edit, read in EDITS:
        time.sleep(0.002)  # a publication at a new moment
        edit(brand)
        release = publish(site)
        assert release.summary["previous"] == parent.number, name
        assert release.summary["revisions_read"] == read, name
        # The chunks stored again: only the kind the edit touched, one chunk.
        before, after = parent.site_state["chunks"], release.site_state["chunks"]
        changed = {kind for kind in after if after[kind] != before.get(kind)}
        assert len(changed) == 1, (name, changed)
        # The content is the same as read from every live revision, parent or not.
        fresh = site_content_load(brand=brand)
        assert fresh.state.read == live_objects(brand)
        carried = site_content_load(brand=brand, previous_state=parent.site_state)
        assert carried == fresh, name
        assert carried.state.saved() == release.site_state == fresh.state.saved(), name
        parent = release


def test_records_are_chunked_by_primary_key_and_stored_as_json(settings, tmp_path, monkeypatch):
    demo_load()
    brand = Brand.objects.get(slug=SLUG)
    monkeypatch.setattr(site_state, "CHUNK_SPAN", 4)
    first = publish(tmp_path / "site")
    chunks = first.site_state["chunks"]["entity"]
    entities = list(Entity.objects.filter(brand=brand, live_revision__isnull=False).order_by("pk"))
    assert [number for number, _ in chunks] == sorted({e.pk // 4 for e in entities})
    number, sha256 = chunks[0]
    records = orjson.loads(artifact_read(sha256))
    assert [r[0] for r in records] == [e.pk for e in entities if e.pk // 4 == number]
    entity = entities[0]
    assert records[0][:5] == [
        entity.pk,
        entity.live_revision_id,
        entity.last_published_at.isoformat(),
        entity.iri,
        entity.slug,
    ]
    # An edit of one entity stores its chunk again, and no other.
    time.sleep(0.002)
    edit_description(entities[-1].slug, "Edited.")
    second = publish(tmp_path / "site")
    after = dict(map(tuple, second.site_state["chunks"]["entity"]))
    before = dict(map(tuple, chunks))
    assert {n for n in after if after[n] != before.get(n)} == {entities[-1].pk // 4}
    assert set(state_artifacts(second.site_state)) >= {after[n] for n in after}


def test_a_deleted_entity_and_a_brand_language_change(tmp_path):
    demo_load()
    brand = Brand.objects.get(slug=SLUG)
    site = tmp_path / "site"
    added = add_product(brand)
    parent = publish(site)
    entity_delete(entity=added)
    release = publish(site)
    # A deleted entity is read from nowhere: its record goes, and its chunk is stored again.
    assert release.summary["revisions_read"] == 0
    assert release.site_state["chunks"]["entity"] != parent.site_state["chunks"]["entity"]
    carried = site_content_load(brand=brand, previous_state=parent.site_state)
    assert added.iri not in carried.entities and added.iri not in carried.hidden
    assert carried == site_content_load(brand=brand)
    # Summaries are per site language: another list of languages reads everything again.
    brand.languages = ["en"]
    brand.save(update_fields=["languages"])
    again = publish(site)
    assert again.site_state["key"] != release.site_state["key"]
    assert again.summary["revisions_read"] == live_objects(brand)


def test_a_preview_starts_from_the_latest_release(tmp_path, monkeypatch):
    from publishing.preview import entity_preview

    demo_load()
    product = Entity.objects.get(slug="longjing-meijiawu")
    read: list[int] = []
    real = site_state.live_rows

    def counted(model, brand, pks):
        pks = list(pks)
        read.extend(pks)
        return real(model, brand, pks)

    monkeypatch.setattr(site_state, "live_rows", counted)
    entity_preview(entity=product, language="en")
    assert len(read) == live_objects(product.brand)  # no release yet: every revision
    publish(tmp_path / "site")
    read.clear()
    preview = entity_preview(entity=product, language="en")
    assert read == [] and preview["html"]
