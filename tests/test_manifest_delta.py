"""Manifests stored as deltas: a release writes rows only for what it rendered, and each
release's manifest, read through ``release.artifacts``, is the one a full build (every
artifact rendered anew) makes of the same content, through rollback, retention and
failed builds."""

import time
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from kb.demo_brand import demo_load
from kb.models import FAQ, Brand, Entity
from kb.services.entities import entity_create, entity_delete, entity_update
from kb.services.statements import statement_update
from kb.services.workflow import object_publish, object_unpublish
from publishing import build
from publishing.build import Builder
from publishing.models import Release, ReleaseArtifact, SiteSettings
from publishing.services import releases_prune
from tests.publish_edits import (
    SLUG,
    add_faq,
    add_product,
    edit_description,
    edit_fact,
    edit_price,
    live_objects,
    publish,
    rename,
    tree_hashes,
)

pytestmark = pytest.mark.django_db


FIELDS = ("path", "sha256", "size", "kind", "content_type")
SCRATCH = 1_000_000  # the number of a release built from nothing and taken back


def manifest(release: Release) -> set[tuple]:
    rows = set(release.artifacts.values_list(*FIELDS))
    assert len({row[0] for row in rows}) == len(rows), "one row per path"
    return rows


def full_build(brand: Brand, parent: Release | None = None) -> set[tuple]:
    """The manifest of a build of the brand's content now that renders every artifact again
    (nothing carried over), built as a release of its own, read, and rolled back.

    ``parent`` (the release the real build was made on) only tells it when each artifact
    last changed: pages and sitemaps show that date (lastmod), which a build from nothing
    cannot know. Its paths are also those of a build from nothing."""
    with transaction.atomic(), mock.patch.object(Builder, "reuse_all", lambda *args: None):
        scratch = Release.objects.create(brand=brand, number=SCRATCH)
        builder = Builder(scratch, parent, None)
        builder.previous_state = None  # every live revision is read again too
        builder.previous_plan = None  # and every page fingerprinted
        result = builder.build()
        assert result.revisions_read == live_objects(brand)
        assert result.reused == 0 and result.rendered == result.artifacts
        rows = set(ReleaseArtifact.objects.filter(brand=brand, since=SCRATCH).values_list(*FIELDS))
        transaction.set_rollback(True)
    if parent is not None:
        assert {row[0] for row in rows} == {row[0] for row in full_build(brand)}
    return rows


def parent_of(release: Release) -> Release | None:
    number = release.summary.get("previous")
    return None if number is None else Release.objects.get(brand=release.brand, number=number)


def written_by(release: Release) -> int:
    return ReleaseArtifact.objects.filter(brand=release.brand, since=release.number).count()


def history_make(site, *, checked: bool) -> dict:
    """Release 1 built from nothing, then 2-5 incremental: a price edited, a product
    added, one unpublished, one renamed (its pages move). Returns the releases and their
    manifests, by number; ``checked``: each manifest is compared, as the release is made,
    with a full build of its content (several seconds a release, so done by one test, which
    proves the manifests the others start from)."""
    demo_load()
    brand = Brand.objects.get(slug=SLUG)
    steps = [
        lambda: None,
        # lastmod has a resolution of one second: the edit in a second of its own, so that
        # the sitemaps that show it change (and the count of rows written is the same).
        lambda: time.sleep(1.1) or edit_price("longjing-meijiawu", "58.00"),
        lambda: add_product(brand),
        lambda: object_unpublish(obj=Entity.objects.get(slug="anji-bai-cha")),
        lambda: rename("biluochun", "biluochun-spring"),
    ]
    releases, expected = {}, {}
    for step in steps:
        step()
        release = publish(site)
        assert release.state == Release.State.DEPLOYED
        expected[release.number] = manifest(release)
        if checked:
            assert expected[release.number] == full_build(brand, parent_of(release))
        releases[release.number] = release
    assert list(releases) == [1, 2, 3, 4, 5]
    return {"brand": brand, "site": site, "releases": releases, "expected": expected}


@pytest.fixture
def history(tmp_path):
    return history_make(tmp_path / "site", checked=False)


def test_each_release_reads_back_as_a_full_build_of_its_content(tmp_path):
    history = history_make(tmp_path / "site", checked=True)
    releases, expected = history["releases"], history["expected"]
    # Every earlier release still reads the same after the later ones closed its rows.
    for number, release in releases.items():
        assert manifest(release) == expected[number], f"release {number}"
    paths = {n: {row[0] for row in expected[n]} for n in expected}
    # The edits did what they say: a product added, one removed, one moved.
    assert "products/keemun-mao-feng/index.html" in paths[3] - paths[2]
    assert "products/anji-bai-cha/index.html" in paths[3] - paths[4]
    assert "products/biluochun-spring/index.html" in paths[5] - paths[4]
    assert "products/biluochun/index.html" in paths[4] - paths[5]
    # The manager's accessor is the property's.
    assert ReleaseArtifact.objects.in_release(releases[2]).count() == len(expected[2])


def test_an_incremental_publish_writes_only_what_it_rendered(history):
    releases = history["releases"]
    first, second = releases[1], releases[2]
    assert written_by(first) == len(manifest(first)) > 150
    # One price edited: the product's pages, the listings and indexes that show it, and the
    # feeds (a language's are made together).
    assert written_by(second) == second.summary["rendered"] == 29
    assert written_by(second) < len(manifest(second)) / 5
    # The rows release 2 replaced end at release 2; nothing else of release 1's was touched.
    closed = ReleaseArtifact.objects.filter(brand=history["brand"], until=2)
    assert closed.count() == 29
    assert set(closed.values_list("path", flat=True)) == set(
        ReleaseArtifact.objects.filter(brand=history["brand"], since=2).values_list(
            "path", flat=True
        )
    )
    total = ReleaseArtifact.objects.filter(brand=history["brand"]).count()
    assert total == sum(written_by(r) for r in releases.values())


def test_rollback_deploys_exactly_the_earlier_release(history):
    site, releases = history["site"], history["releases"]
    live = site / "current"
    assert tree_hashes(live) == {row[0]: row[1] for row in manifest(releases[5])}
    for number in (2, 4, 1):
        call_command("rollback", SLUG, str(number), stdout=StringIO())
        want = {path: sha256 for path, sha256, *_ in history["expected"][number]}
        assert tree_hashes(live) == want, f"rolled back to {number}"
    # The next build's parent is the newest release, not the one rolled back to.
    edit_price("longjing-meijiawu", "59.00")
    sixth = publish(site)
    assert sixth.summary["previous"] == 5
    assert manifest(sixth) == full_build(history["brand"], parent_of(sixth))
    assert tree_hashes(live) == {row[0]: row[1] for row in manifest(sixth)}


def test_retention_keeps_the_kept_manifests_and_drops_rows_no_kept_release_has(history, settings):
    brand, expected = history["brand"], history["expected"]
    settings.SOURCEBOOK_ARTIFACT_GRACE_SECONDS = 0
    # Release 2 live again, then the policy keeps the two newest and the live one.
    call_command("rollback", SLUG, "2", stdout=StringIO())
    SiteSettings.objects.update_or_create(
        brand=brand, defaults={"keep_releases": 2, "keep_deployed_days": 0}
    )
    rows = list(ReleaseArtifact.objects.filter(brand=brand).values_list("pk", "since", "until"))
    kept = {2, 4, 5}

    def visible(since, until):
        return any(since <= n and (until is None or n < until) for n in kept)

    doomed = {pk for pk, since, until in rows if not visible(since, until)}
    assert len(doomed) > 0

    assert releases_prune(brand=brand)["releases"] == 2
    assert set(Release.objects.filter(brand=brand).values_list("number", flat=True)) == kept
    left = set(ReleaseArtifact.objects.filter(brand=brand).values_list("pk", flat=True))
    assert left == {pk for pk, *_ in rows} - doomed
    assert len(left) == len(rows) - len(doomed)
    for number in kept:
        assert manifest(Release.objects.get(brand=brand, number=number)) == expected[number]
    # The store keeps exactly the bytes the kept rows name, and the chunks of live content
    # the kept releases read (see publishing.site_state) and of their page plans.
    from publishing.plan import plan_artifacts
    from publishing.site_state import state_artifacts
    from publishing.store import artifact_storage

    storage = artifact_storage()
    stored = {
        name
        for first in storage.listdir("")[0]
        for second in storage.listdir(first)[0]
        for name in storage.listdir(f"{first}/{second}")[1]
    }
    chunks = {
        sha256
        for release in Release.objects.filter(brand=brand)
        for sha256 in (*state_artifacts(release.site_state), *plan_artifacts(release.build_plan))
    }
    assert chunks
    assert stored == set(ReleaseArtifact.objects.values_list("sha256", flat=True)) | chunks
    # Building on after retention still makes a whole manifest.
    edit_price("longjing-meijiawu", "60.00")
    sixth = publish(history["site"])
    assert manifest(sixth) == full_build(brand, parent_of(sixth))
    # That build's retention kept release 5 and itself (6 is live now).
    assert set(Release.objects.filter(brand=brand).values_list("number", flat=True)) == {5, 6}
    assert manifest(Release.objects.get(brand=brand, number=5)) == expected[5]


def test_deleting_the_newest_release_makes_its_parent_current_again(history):
    brand, releases, expected = history["brand"], history["releases"], history["expected"]
    releases[5].delete()
    assert not ReleaseArtifact.objects.filter(brand=brand, since=5).exists()
    assert not ReleaseArtifact.objects.filter(brand=brand, until=5).exists()
    for number in (1, 2, 3, 4):
        assert manifest(releases[number]) == expected[number]
    again = publish(history["site"])  # numbered 5 again, built on release 4
    assert again.number == 5 and again.summary["previous"] == 4
    assert manifest(again) == full_build(brand, parent_of(again)) == expected[5]


def test_a_failed_build_leaves_the_manifests_alone_and_no_rows(history, monkeypatch):
    brand, releases, expected = history["brand"], history["releases"], history["expected"]
    before = set(ReleaseArtifact.objects.filter(brand=brand).values_list("pk", "since", "until"))
    render_page = build.render_page

    def failing(site, page, *args, **kwargs):
        if page.path == "products/longjing-meijiawu/":
            raise ValueError(f"cannot render {page.path}")
        return render_page(site, page, *args, **kwargs)

    monkeypatch.setattr(build, "render_page", failing)
    # A row written at a time: rows of pages rendered before the failing one are written,
    # and must be taken back.
    monkeypatch.setattr(build.ManifestWriter, "BATCH", 1)
    edit_price("longjing-meijiawu", "61.00")
    with pytest.raises(CommandError, match="cannot render products/longjing-meijiawu"):
        publish(history["site"])
    failed = Release.objects.get(brand=brand, number=6)
    assert failed.state == Release.State.FAILED
    assert written_by(failed) == 0
    assert not failed.artifacts.exists()
    after = set(ReleaseArtifact.objects.filter(brand=brand).values_list("pk", "since", "until"))
    assert after == before
    for number, release in releases.items():
        assert manifest(release) == expected[number]

    monkeypatch.setattr(build, "render_page", render_page)
    seventh = publish(history["site"])
    assert seventh.number == 7 and seventh.summary["previous"] == 5
    assert manifest(seventh) == full_build(brand, parent_of(seventh))
    assert not ReleaseArtifact.objects.filter(brand=brand, since=6).exists()


@pytest.mark.parametrize("stalled", ["while writing rows", "before saving"])
def test_a_release_failed_by_another_builder_writes_and_closes_nothing(
    history, monkeypatch, stalled
):
    """A builder that stalled past its lease, whose release another builder failed
    meanwhile, neither writes more rows nor completes the manifest when it resumes."""
    from publishing import services

    brand = history["brand"]
    before = set(ReleaseArtifact.objects.filter(brand=brand).values_list("pk", "since", "until"))
    stalls = []

    def take_over(release: Release) -> None:
        # Another builder takes the lease over, fails the release and puts its requests back.
        if not stalls:
            stalls.append(release.number)
            services.recover_interrupted(release.brand)

    if stalled == "before saving":
        real_build = Builder.build

        def build_then_stall(self):
            result = real_build(self)
            take_over(self.release)
            return result

        monkeypatch.setattr(Builder, "build", build_then_stall)
    else:
        real_flush = build.ManifestWriter.flush
        flushes = []

        def flush_after_stall(self):
            flushes.append(len(self.rows))
            if len(flushes) == 3:
                take_over(self.release)
            real_flush(self)

        monkeypatch.setattr(build.ManifestWriter, "BATCH", 1)
        monkeypatch.setattr(build.ManifestWriter, "flush", flush_after_stall)
    edit_price("longjing-meijiawu", "63.00")
    services.publish_request_create(brand=brand, dispatch=False)
    interrupted, again = services.brand_build(brand=brand)
    assert interrupted.state == Release.State.FAILED and stalls == [6]
    assert written_by(interrupted) == 0
    # Release 6 wrote and closed nothing (release 7 closed what it replaced).
    rows = ReleaseArtifact.objects.filter(brand=brand, since__lt=7)
    assert {
        (pk, since, None if until == 7 else until)
        for pk, since, until in rows.values_list("pk", "since", "until")
    } == before
    for number, old in history["releases"].items():
        assert manifest(old) == history["expected"][number]
    # The requests were built into the next release, on release 5.
    assert again.number == 7 and again.summary["previous"] == 5
    assert manifest(again) == full_build(brand, parent_of(again))


def add_tea_master(brand: Brand) -> None:
    """A person whom a store (not the organization) refers to, as its employee."""
    person = entity_create(
        brand=brand,
        types=["Person"],
        slug="wang-tea-master",
        data={"name": [{"@value": "Wang, tea master", "@language": "en"}]},
    )
    object_publish(obj=person)
    store = Entity.objects.get(slug="hangzhou-longjing-road")
    data = {**store.data, "employee": [{"@id": person.iri}]}
    object_publish(obj=entity_update(entity=store, data=data, expected_version=store.version))


def edit_faq_answer(key: str) -> None:
    faq = FAQ.objects.get(key=key)
    answer = {**faq.answer, "en": "Three minutes, at 80 °C."}
    faq = statement_update(obj=faq, expected_version=faq.version, answer=answer)
    object_publish(obj=faq)


def allow_training(brand: Brand) -> None:
    SiteSettings.objects.update_or_create(brand=brand, defaults={"allow_ai_training": True})


# Each edit and how many pages the next build fingerprints: the pages showing what changed
# (both languages) when the parent's page plan holds, every page when the edit changes which
# pages there are or the organization's part of every page (see publishing.plan).
ALL = "every page"
PLANNED_EDITS = [
    # The product's pages, the products page that lists it, and the facts and FAQ pages,
    # which show what their facts and questions are about.
    ("description", lambda b: edit_description("longjing-meijiawu", "Edited."), 8),
    # The page of what the fact is about and the facts pages.
    ("fact", edit_fact, 4),
    ("new FAQ", add_faq, ALL),
    # The page of what it is about and the FAQ pages.
    ("FAQ answer", lambda b: edit_faq_answer("steep-time"), 4),
    ("new person a store refers to", add_tea_master, ALL),
    # The person's pages, the people page listing them, and the store's pages.
    ("that person", lambda b: edit_description("wang-tea-master", "Forty years."), 6),
    (
        "a founder (the organization refers to them)",
        lambda b: edit_description("chen-mingyu", "x"),
        ALL,
    ),
    ("AI training allowed", allow_training, 0),
    (
        "a product deleted",
        lambda b: entity_delete(entity=Entity.objects.get(slug="bai-mu-dan")),
        ALL,
    ),
    ("nothing", lambda b: None, 0),
]


def test_each_kind_of_edit_builds_what_a_full_build_does_fingerprinting_only_what_shows_it(
    tmp_path,
):
    demo_load()
    brand = Brand.objects.get(slug=SLUG)
    site = tmp_path / "site"
    parent = publish(site)
    for name, edit, fingerprinted in PLANNED_EDITS:
        edit(brand)
        release = publish(site)
        assert release.state == Release.State.DEPLOYED, name
        pages = release.summary["counts"]["page"]
        expected = pages if fingerprinted == ALL else fingerprinted
        assert release.summary["pages_fingerprinted"] == expected, name
        # Byte for byte (each path's sha256) what rendering every artifact again makes.
        assert manifest(release) == full_build(brand, parent), name
        assert tree_hashes(site / "current") == {row[0]: row[1] for row in manifest(release)}
        assert release.build_plan["pages"] == pages
        parent = release
