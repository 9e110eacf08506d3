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
from kb.models import Brand, Entity
from kb.services.workflow import object_unpublish
from publishing import build
from publishing.build import Builder
from publishing.models import Release, ReleaseArtifact, SiteSettings
from publishing.services import releases_prune
from tests.publish_edits import (
    SLUG,
    add_product,
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


@pytest.fixture
def history(tmp_path):
    """Release 1 built from nothing, then 2-5 incremental: a price edited, a product
    added, one unpublished, one renamed (its pages move). Each release's manifest is
    checked against a full build of its content as it is made; returns the releases and
    those full manifests, by number."""
    demo_load()
    brand = Brand.objects.get(slug=SLUG)
    site = tmp_path / "site"
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
        expected[release.number] = full_build(brand, parent_of(release))
        assert manifest(release) == expected[release.number]
        releases[release.number] = release
    assert list(releases) == [1, 2, 3, 4, 5]
    return {"brand": brand, "site": site, "releases": releases, "expected": expected}


def test_each_release_reads_back_as_a_full_build_of_its_content(history):
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
    # One price edited: the product's pages, the listings and indexes that show it.
    assert written_by(second) == second.summary["rendered"] == 21
    assert written_by(second) < len(manifest(second)) / 5
    # The rows release 2 replaced end at release 2; nothing else of release 1's was touched.
    closed = ReleaseArtifact.objects.filter(brand=history["brand"], until=2)
    assert closed.count() == 21
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
    # the kept releases read (see publishing.site_state).
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
        for sha256 in state_artifacts(release.site_state)
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
