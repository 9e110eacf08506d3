"""Releases: incremental builds, atomic directory deploys, rollback, retention, scheduling."""

import json
import os
import threading
import time
from datetime import UTC, timedelta
from io import StringIO
from pathlib import Path

import llms_txt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from kb.demo_brand import demo_load
from kb.models import Brand, Entity, Fact, Revision
from kb.services.entities import entity_update
from kb.services.statements import statement_update
from kb.services.workflow import object_publish, object_unpublish
from publishing.build import Builder
from publishing.models import PublishRequest, Release, SiteSettings, Target
from publishing.plan import plan_artifacts
from publishing.site_state import state_artifacts
from publishing.store import artifact_name, artifact_storage
from publishing.tasks import publish_scheduled_and_release
from tests.publish_edits import edit_price, publish, tree_hashes
from tests.test_webhooks import receiver, webhook_settings  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

BASE = "https://www.westlakeleaf.example"


def manifest(release: Release) -> dict[str, str]:
    return dict(release.artifacts.values_list("path", "sha256"))


def test_an_edit_rewrites_only_the_artifacts_it_affects(tmp_path):
    demo_load()
    first = publish(tmp_path / "site")
    untouched = (tmp_path / "site" / "current" / "products" / "biluochun" / "index.html").stat()
    time.sleep(1.1)  # lastmod has a resolution of one second
    product = edit_price("longjing-meijiawu", "56.00")
    second = publish(tmp_path / "site")
    changed = {p for p, h in manifest(second).items() if manifest(first).get(p) != h}
    assert changed == {
        "products/longjing-meijiawu/index.html",
        "products/longjing-meijiawu/index.html.md",
        "zh-Hans/products/longjing-meijiawu/index.html",
        "zh-Hans/products/longjing-meijiawu/index.html.md",
        "llms-full.txt",
        "zh-Hans/llms-full.txt",
        "graph.jsonld",
        "sitemap.xml",
        "sitemaps/sitemap-1.xml",
        # The price is its US offer's: the US feeds in both languages, not the EU's.
        "feeds/google/us-en.tsv",
        "feeds/google/us-zh-hans.tsv",
        "feeds/openai/us-en.jsonl.gz",
        "feeds/openai/us-zh-hans.jsonl.gz",
    }
    assert second.summary["changed"] == len(changed)
    # Re-rendered: the product's 4 files; the pages listing or naming it (products, FAQ and
    # facts pages, 12 files), which come out identical; the 5 site-wide files that show
    # what changed; and the 8 feed files (every market's, in both languages: a language's
    # feeds are made together). llms.txt, which lists the pages' names and summaries, is
    # carried over.
    assert second.summary["rendered"] == 29
    assert second.summary["reused"] == 205 - 29
    assert set(second.summary["changed_paths"]) == changed
    # Unchanged files are the same inode: hard links into the store, never rewritten.
    again = (tmp_path / "site" / "current" / "products" / "biluochun" / "index.html").stat()
    assert again.st_ino == untouched.st_ino
    md = (
        tmp_path / "site" / "current" / "products" / "longjing-meijiawu" / "index.html.md"
    ).read_text()
    assert "- [56.00 USD (In stock)](" in md
    # lastmod of the edited page is its publication; other pages keep theirs.
    sitemap = (tmp_path / "site" / "current" / "sitemaps" / "sitemap-1.xml").read_text()
    stamp = product.last_published_at.astimezone(UTC).replace(microsecond=0).isoformat()
    edited = sitemap.split(f"<loc>{BASE}/products/longjing-meijiawu/</loc>")[1].split("</url>")[0]
    assert f"<lastmod>{stamp}</lastmod>" in edited
    other = sitemap.split(f"<loc>{BASE}/products/biluochun/</loc>")[1].split("</url>")[0]
    assert f"<lastmod>{stamp}</lastmod>" not in other


def calls_of(monkeypatch, method: str) -> list[str]:
    """The paths a Builder method is called to make (it still makes them)."""
    made: list[str] = []
    original = getattr(Builder, method)

    def recorded(self, *args):
        made.append(next(a for a in args if isinstance(a, str) and "." in a))
        return original(self, *args)

    monkeypatch.setattr(Builder, method, recorded)
    return made


def test_an_edit_remakes_only_the_sitemap_files_whose_lastmods_changed(tmp_path, monkeypatch):
    monkeypatch.setattr("publishing.render.indexes.SITEMAP_MAX_URLS", 10)
    demo_load()
    first = publish(tmp_path / "site")
    assert len([p for p in manifest(first) if p.startswith("sitemaps/")]) == 7
    time.sleep(1.1)  # lastmod has a resolution of one second
    edit_price("longjing-meijiawu", "56.00")
    made = calls_of(monkeypatch, "build_sitemap")
    second = publish(tmp_path / "site")
    changed = {p for p, h in manifest(second).items() if manifest(first).get(p) != h}
    remade = {p for p in changed if p.startswith("sitemaps/")}
    # The product's two pages, in one or two of the seven files.
    assert 1 <= len(remade) <= 2
    assert sorted(made) == sorted(remade)
    assert "sitemap.xml" in changed  # it names each file's newest lastmod


def test_an_edit_makes_one_part_of_the_graph_again_and_copies_the_others(tmp_path, monkeypatch):
    from publishing.render import indexes

    monkeypatch.setattr(indexes, "GRAPH_PART_SPACING", 2)
    demo_load()
    first = publish(tmp_path / "site")
    assert len(first.graph_parts) > 4
    made: list[list[str]] = []  # the parts made again, by what they show
    make = indexes.brand_graph_nodes, indexes.brand_graph_facts, indexes.brand_graph_faq_pages

    def recorded(site, contents):
        made.append([content["iri"] for content in contents])
        return make[0](site, contents)

    def recorded_facts(site, keys):
        made.append([f"fact:{key}" for key in keys])
        return make[1](site, keys)

    def recorded_faq_pages(site, abouts):
        made.append([f"faqs:{about}" for about in abouts])
        return make[2](site, abouts)

    monkeypatch.setattr(indexes, "brand_graph_nodes", recorded)
    monkeypatch.setattr(indexes, "brand_graph_facts", recorded_facts)
    monkeypatch.setattr(indexes, "brand_graph_faq_pages", recorded_faq_pages)
    product = edit_price("longjing-meijiawu", "58.00")
    second = publish(tmp_path / "site")
    assert len(made) == 1 and product.iri in made[0]
    keys = [[key for key, _, _ in release.graph_parts] for release in (first, second)]
    assert len(keys[0]) == len(keys[1])
    assert sum(a != b for a, b in zip(*keys, strict=True)) == 1
    graph = (tmp_path / "site" / "current" / "graph.jsonld").read_bytes()
    assert '"58.00"' in json.dumps(json.loads(graph))
    for _, offset, length in second.graph_parts:
        assert graph[offset : offset + 8] == b',{"@id":'
        assert graph[offset + length : offset + length + 8] in (b',{"@id":', b"]}\n")
    # A fact edited: the one part holding it is made again.
    made.clear()
    fact = Fact.objects.get(key="garden-area")
    fact = statement_update(
        obj=fact, expected_version=fact.version, statement={**fact.statement, "en": "42 ha."}
    )
    object_publish(obj=fact)
    second = publish(tmp_path / "site")
    assert len(made) == 1 and "fact:garden-area" in made[0]
    graph = json.loads((tmp_path / "site" / "current" / "graph.jsonld").read_bytes())
    claim = next(n for n in graph["@graph"] if n["@id"] == f"{BASE}/id/fact/garden-area")
    assert {"@language": "en", "@value": "42 ha."} in claim["text"]
    # A previous graph the store no longer holds is not copied from: every part is made.
    artifact_storage().delete(artifact_name(manifest(second)["graph.jsonld"]))
    made.clear()
    edit_price("longjing-meijiawu", "58.50")
    third = publish(tmp_path / "site")
    assert len(made) == len(third.graph_parts) == len(second.graph_parts)
    rebuilt = (tmp_path / "site" / "current" / "graph.jsonld").read_bytes()
    assert '"58.50"' in json.dumps(json.loads(rebuilt))
    # Byte for byte the graph a build from nothing makes.
    Release.objects.all().delete()
    publish(tmp_path / "fresh")
    assert (tmp_path / "fresh" / "current" / "graph.jsonld").read_bytes() == rebuilt


def test_renaming_a_product_updates_the_pages_that_list_it(tmp_path):
    demo_load()
    first = publish(tmp_path / "site")
    product = Entity.objects.get(slug="biluochun")
    data = dict(product.data)
    data["name"] = [{"@value": "Biluochun Spring Snail", "@language": "en"}, data["name"][1]]
    object_publish(obj=entity_update(entity=product, data=data, expected_version=product.version))
    second = publish(tmp_path / "site")
    changed = {p for p, h in manifest(second).items() if manifest(first).get(p) != h}
    assert {"products/index.html", "products/index.html.md", "llms.txt"} <= changed
    assert "zh-Hans/llms.txt" not in changed  # the Chinese name did not change
    assert "products/anji-bai-cha/index.html" not in changed


def test_a_longer_description_rewrites_only_its_own_llms_parts(tmp_path, settings, monkeypatch):
    """Parts of llms.txt and llms-full.txt are cut by content and named after their first
    item: one product's description growing rewrites the parts holding it (and may add one
    part after them), never the other parts."""
    settings.SOURCEBOOK_LLMS_MAX_CHARS = 3_000
    settings.SOURCEBOOK_LLMS_PART_CHARS = 1_500
    # Parts of the demo's pages cut by content (not at the limit, which moves with an edit).
    settings.SOURCEBOOK_LLMS_FULL_MAX_CHARS = 24_000
    demo_load()
    first = publish(tmp_path / "site")
    before = manifest(first)
    root = llms_txt.parse_llms_file((tmp_path / "site" / "current" / "llms.txt").read_text())
    parts = [link["url"].removeprefix(f"{BASE}/") for link in root.sections["Products"]]
    full_parts = {p for p in before if p.startswith("llms-full-")}
    assert len(parts) > 2 and len(full_parts) > 2
    # The first product of the first part: with parts cut by size, every later part moved.
    first_part = (tmp_path / "site" / "current" / parts[0]).read_text(encoding="utf-8")
    slug = first_part.split(f"({BASE}/products/", 1)[1].split("/", 1)[0]
    product = Entity.objects.get(slug=slug)
    data = dict(product.data)
    data["description"] = [
        {"@value": "A much longer description of this tea. " * 12, "@language": "en"},
        *(d for d in data["description"] if d.get("@language") != "en"),
    ]
    object_publish(obj=entity_update(entity=product, data=data, expected_version=product.version))
    made = calls_of(monkeypatch, "build_llms_full")
    second = publish(tmp_path / "site")
    after = manifest(second)
    assert set(before) <= set(after)
    changed = {p for p in before if after[p] != before[p]}
    added = set(after) - set(before)
    # Parts are planned from the manifest's sizes: only the parts that change are made.
    assert sorted(made) == sorted(p for p in changed | added if p.startswith("llms-full-"))
    assert {p for p in changed if p.startswith("llms/")} == {parts[0]}
    assert len({p for p in changed if p.startswith("llms-full-")}) == 1
    assert len(added) <= 2  # a part grown past its limit is cut in two
    # The English feeds state the description too (both markets, both formats).
    feeds = {p for p in changed if p.startswith("feeds/")}
    assert feeds == {f"feeds/{kind}/{market}-en.{extension}" for market in ("us", "eu")
                     for kind, extension in (("openai", "jsonl.gz"), ("google", "tsv"))}  # fmt: skip
    assert len(changed - feeds) <= 12


def test_a_failed_deploy_leaves_the_live_release_intact(tmp_path):
    demo_load()
    first = publish(tmp_path / "site")
    live = tmp_path / "site" / "current"
    before = tree_hashes(live)
    assert before == {p: h for p, h in manifest(first).items()}
    edit_price("longjing-meijiawu", "57.00")
    # Something in the way of release 2's tree: its deploy fails part-way.
    (tmp_path / "site" / ".releases" / "2").write_text("in the way")
    with pytest.raises(CommandError, match="deploy to directory .* failed"):
        publish(tmp_path / "site")
    assert Release.objects.get(number=2).state == Release.State.READY
    assert os.readlink(live) == ".releases/1"
    assert tree_hashes(live) == before
    (tmp_path / "site" / ".releases" / "2").unlink()
    third = publish(tmp_path / "site")
    assert os.readlink(live) == f".releases/{third.number}"
    assert tree_hashes(live) == manifest(third)


def test_a_deploy_makes_the_tree_before_the_live_one_into_the_new_release(tmp_path):
    """A directory target keeps two trees; a deploy takes the one not live and changes only
    the files that differ (here a product unpublished: its pages go, and their folders)."""
    demo_load()
    publish(tmp_path / "site")
    releases = tmp_path / "site" / ".releases"
    folder = (releases / "1" / "products" / "biluochun").stat().st_ino
    edit_price("longjing-meijiawu", "59.00")
    second = publish(tmp_path / "site")
    assert sorted(p.name for p in releases.iterdir()) == ["1", "2"]
    assert (releases / "2" / "products" / "biluochun").stat().st_ino != folder  # made anew
    object_unpublish(obj=Entity.objects.get(slug="anji-bai-cha"))
    third = publish(tmp_path / "site")
    assert sorted(p.name for p in releases.iterdir()) == ["2", "3"]
    assert os.readlink(tmp_path / "site" / "current") == ".releases/3"
    # Release 1's tree, changed: its folders are the same ones.
    assert (releases / "3" / "products" / "biluochun").stat().st_ino == folder
    assert tree_hashes(releases / "3") == manifest(third)
    assert not (releases / "3" / "products" / "anji-bai-cha").exists()
    assert not (releases / "3" / "zh-Hans" / "products" / "anji-bai-cha").exists()
    assert "products/longjing-meijiawu/index.html" in manifest(third)
    assert tree_hashes(releases / "2") == manifest(second)  # rolled back to at once
    # Rolling back to a release without a tree makes one the same way.
    call_command("rollback", "westlake-leaf", "1", stdout=StringIO())
    assert sorted(p.name for p in releases.iterdir()) == ["1", "3"]
    assert tree_hashes(tmp_path / "site" / "current") == manifest(Release.objects.get(number=1))


def test_rollback_redeploys_an_earlier_release(tmp_path):
    demo_load()
    first = publish(tmp_path / "site")
    edit_price("longjing-meijiawu", "58.00")
    second = publish(tmp_path / "site")
    live = tmp_path / "site" / "current"
    assert tree_hashes(live) == manifest(second)
    out = StringIO()
    call_command("rollback", "westlake-leaf", "1", stdout=out)
    assert out.getvalue().splitlines()[-1] == "Rolled back westlake-leaf to release 1."
    assert tree_hashes(live) == manifest(first)
    with pytest.raises(CommandError, match=r"has no release 9 \(releases: 1, 2\)"):
        call_command("rollback", "westlake-leaf", "9")


def test_retention_prunes_old_releases_and_unreferenced_artifacts(tmp_path, settings):
    demo_load()
    brand = Brand.objects.get(slug="westlake-leaf")
    SiteSettings.objects.update_or_create(
        brand=brand, defaults={"keep_releases": 2, "keep_deployed_days": 0}
    )
    settings.SOURCEBOOK_ARTIFACT_GRACE_SECONDS = 0
    publish(tmp_path / "site")
    for price in ("60.00", "61.00", "62.00"):
        edit_price("longjing-meijiawu", price)
        last = publish(tmp_path / "site")
    assert sorted(Release.objects.filter(brand=brand).values_list("number", flat=True)) == [3, 4]
    assert sorted(p.name for p in (tmp_path / "site" / ".releases").iterdir()) == ["3", "4"]
    storage = artifact_storage()
    kept = set(manifest(last).values()) | set(manifest(Release.objects.get(number=3)).values())
    # And the chunks of live content the kept releases read (see publishing.site_state), and
    # of their page plans (see publishing.plan).
    kept |= {
        c
        for r in (last, Release.objects.get(number=3))
        for c in (*state_artifacts(r.site_state), *plan_artifacts(r.build_plan))
    }
    stored = {name for first in storage.listdir("")[0] for second in storage.listdir(first)[0]
              for name in storage.listdir(f"{first}/{second}")[1]}  # fmt: skip
    assert stored == kept
    assert storage.exists(artifact_name(next(iter(kept))))


def test_scheduled_go_live_requests_a_release(tmp_path, django_capture_on_commit_callbacks):
    demo_load()
    publish(tmp_path / "site")
    product = Entity.objects.get(slug="biluochun")
    data = dict(product.data)
    data["sku"] = [{"@value": "WLL-006-B"}]
    product = entity_update(entity=product, data=data, expected_version=product.version)
    object_publish(obj=product, go_live_at=timezone.now() + timedelta(minutes=5))
    assert publish_scheduled_and_release()["published"] == 0
    Revision.objects.filter(pk=product.latest_revision_id).update(
        go_live_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        counts = publish_scheduled_and_release()
    assert counts["published"] == 1
    request = PublishRequest.objects.get(source=PublishRequest.Source.SCHEDULED)
    assert request.state == PublishRequest.State.DONE  # built in-process: no broker here
    assert (
        "WLL-006-B"
        in (tmp_path / "site" / "current" / "products" / "biluochun" / "index.html.md").read_text()
    )


def test_publishing_from_the_admin_with_progress_and_rollback(
    client, tmp_path, django_capture_on_commit_callbacks
):
    demo_load()
    publish(tmp_path / "site")
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="demo"))
    page = client.get("/admin/publishing/release/")
    assert page.status_code == 200
    assert "Publish Westlake Leaf Tea now" in page.content.decode()
    assert '<progress max="100" value="100"' in page.content.decode()
    url = f"/admin/publishing/release/publish/{Brand.objects.get().pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"reason": "from the admin"}, follow=True)
    request = PublishRequest.objects.latest("pk")
    assert (
        f"Publishing Westlake Leaf Tea: request {request.pk} recorded." in response.content.decode()
    )
    second = Release.objects.get(number=2)
    assert second.state == Release.State.DEPLOYED and second.reason == "from the admin"
    response = client.post(
        "/admin/publishing/release/",
        # The action asks first (tests/test_readable_history.py); "confirm" answers yes.
        {"action": "roll_back", "_selected_action": [Release.objects.get(number=1).pk],
         "confirm": "yes"},
        follow=True,
    )  # fmt: skip
    assert "Release 1 of Westlake Leaf Tea deployed again: " in response.content.decode()
    assert os.readlink(tmp_path / "site" / "current") == ".releases/1"


def test_incomplete_and_unpublished_nodes_are_left_out_with_every_reference(brand, tmp_path):
    from kb.services.entities import entity_create

    def make(types, iri, data, live=True):
        entity = entity_create(brand=brand, types=types, iri=iri, data=data)
        if live and types == ["Store"]:
            # Published before the publish checks existed (they refuse it now): the build
            # must still leave it out.
            Entity.objects.filter(pk=entity.pk).update(
                live_revision=entity.latest_revision, status="published"
            )
        elif live:
            object_publish(obj=entity)
        return entity

    base = "https://tea.example"
    make(["Store"], f"{base}/stores/a/#store", {"name": [{"@value": "No address"}]})
    make(
        ["Organization"],
        f"{base}/#organization",
        {"name": [{"@value": "Acme"}], "subOrganization": [{"@id": f"{base}/stores/a/#store"}]},
    )
    make(
        ["Product"], f"{base}/products/draft/#product", {"name": [{"@value": "Draft"}]}, live=False
    )
    make(
        ["Product"],
        f"{base}/products/tea/#product",
        {
            "name": [{"@value": "Tea"}],
            "image": [{"@id": f"{base}/img/tea.jpg"}],
            "offers": [
                {
                    "@type": ["Offer"],
                    "price": [{"@value": 5}],
                    "priceCurrency": [{"@value": "EUR"}],
                }
            ],
            "brand": [{"@id": f"{base}/#organization"}],
            "isRelatedTo": [{"@id": f"{base}/products/draft/#product"}],
        },
    )
    out, err = StringIO(), StringIO()
    call_command("publish", "acme-tea", "--out", str(tmp_path / "site"), stdout=out, stderr=err)
    assert err.getvalue().strip() == (
        f"Left out {base}/stores/a/#store: it has no address, so it and every reference to it "
        "are not published."
    )
    live = tmp_path / "site" / "current"
    assert not (live / "stores").exists()
    html = (live / "products" / "tea" / "index.html").read_text(encoding="utf-8")
    graph = json.loads(html.split('<script type="application/ld+json">')[1].split("</script>")[0])
    product = next(n for n in graph["@graph"] if n["@id"] == f"{base}/products/tea/#product")
    assert set(product) == {"@id", "@type", "name", "image", "offers", "brand"}
    organization = next(n for n in graph["@graph"] if n["@id"] == f"{base}/#organization")
    assert set(organization) == {"@id", "@type", "name"}
    whole = (live / "graph.jsonld").read_text(encoding="utf-8")
    assert "stores/a" not in whole and "products/draft" not in whole
    assert "No address" not in (live / "llms.txt").read_text(encoding="utf-8")


def test_webhook_subscribers_hear_of_deployed_releases_with_what_changed(  # noqa: F811
    tmp_path,
    receiver,  # noqa: F811
    webhook_settings,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    import standardwebhooks

    demo_load()
    brand = Brand.objects.get(slug="westlake-leaf")
    secret = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtMTIzNDU2Nzg5MA=="
    Target.objects.create(
        brand=brand, name="site", kind=Target.Kind.DIRECTORY, operator_path=str(tmp_path / "d")
    )
    Target.objects.create(
        brand=brand,
        name="next.js",
        kind=Target.Kind.WEBHOOK,
        config={"url": receiver.url},
        secret=secret,
    )
    with django_capture_on_commit_callbacks(execute=True):
        call_command("publish", "westlake-leaf", stdout=StringIO())
    time.sleep(1.1)  # lastmod has a resolution of one second
    edit_price("longjing-meijiawu", "59.00")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("publish", "westlake-leaf", stdout=StringIO())
    assert len(receiver.requests) == 2
    first, second = (json.loads(r.body) for r in receiver.requests)
    assert first["release"]["number"] == 1 and first["release"]["state"] == "deployed"
    assert len(first["changed"]) == first["artifact_count"] == 205
    assert set(second["changed"]) >= {"products/longjing-meijiawu/index.html", "graph.jsonld"}
    assert len(second["changed"]) == 13 and second["removed"] == []  # 4 of them feeds
    verified = standardwebhooks.Webhook(secret).verify(
        receiver.requests[1].body, receiver.requests[1].headers
    )
    assert verified["release"]["number"] == 2


def test_beat_schedules_are_stored_for_the_admin():
    from django_celery_beat.models import PeriodicTask

    tasks = {t.name: t for t in PeriodicTask.objects.select_related("interval")}
    assert tasks["publish-scheduled"].task == "publishing.publish_scheduled"
    assert tasks["redispatch-pending-publish-requests"].task == "publishing.redispatch_pending"
    assert {(t.interval.every, t.interval.period) for t in tasks.values()} == {(60, "seconds")}


def test_a_short_file_left_by_a_killed_writer_is_rewritten():
    import hashlib as _hashlib

    from publishing.store import artifact_put, artifact_read

    content = b"<html>the real page</html>"
    sha = _hashlib.sha256(content).hexdigest()
    path = Path(artifact_storage().path(artifact_name(sha)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # what a SIGKILL between open() and write() leaves
    assert artifact_put(content) == (sha, True)
    assert artifact_read(sha) == content
    assert artifact_put(content) == (sha, False)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_pending_and_stuck_requests_are_dispatched_again(brand, settings):
    from datetime import timedelta as _td

    from publishing.models import BuildLease
    from publishing.services import publish_requests_redispatch

    old = timezone.now() - _td(minutes=1)
    pending = PublishRequest.objects.create(brand=brand, reason="broker was down")
    PublishRequest.objects.filter(pk=pending.pk).update(created_at=old)
    assert publish_requests_redispatch() == 1  # built in-process here: no broker
    pending.refresh_from_db()
    assert pending.state == PublishRequest.State.DONE
    # A request left 'building' by a builder whose lease expired is taken up again.
    stuck = PublishRequest.objects.create(brand=brand, state=PublishRequest.State.BUILDING)
    BuildLease.objects.filter(brand=brand).update(expires_at=old, holder="dead")
    Release.objects.create(brand=brand, number=99, state=Release.State.BUILDING)
    PublishRequest.objects.filter(pk=stuck.pk).update(release=Release.objects.get(number=99))
    assert publish_requests_redispatch() == 1
    stuck.refresh_from_db()
    assert stuck.state == PublishRequest.State.DONE
    assert Release.objects.get(number=99).state == Release.State.FAILED


def test_admin_previews_the_working_copy_with_checks(client):
    from django.contrib.auth import get_user_model

    demo_load()
    product = Entity.objects.get(slug="biluochun")
    data = dict(product.data)
    data["name"] = [{"@value": "Biluochun (draft name)", "@language": "en"}, data["name"][1]]
    entity_update(entity=product, data=data, expected_version=product.version)
    client.force_login(get_user_model().objects.get(username="demo"))
    change = client.get(f"/admin/kb/entity/{product.pk}/change/").content.decode()
    assert "0 errors, 0 not eligible, 2 recommendations, 0 hints" in change
    assert "Add shipping details to the offers." in change
    page = client.get(f"/admin/publishing/release/preview/{product.pk}/en/")
    assert page.status_code == 200
    assert "Biluochun (draft name)" in page.content.decode()
    html = client.get(f"/admin/publishing/release/preview/{product.pk}/zh-Hans/page/")
    assert html["Content-Security-Policy"].startswith("sandbox")
    graph = json.loads(
        html.content.decode().split('<script type="application/ld+json">')[1].split("</script>")[0]
    )
    node = next(n for n in graph["@graph"] if n["@id"] == product.iri)
    assert node["name"] == "洞庭碧螺春"  # the Chinese page keeps the Chinese name
    # What is live did not change.
    assert (
        Entity.objects.get(pk=product.pk).live_revision.content["data"]["name"][0]["@value"]
        == "Dongting Biluochun"
    )


def test_reviewer_sees_changes_against_live_and_compares_releases(client, tmp_path):
    from django.contrib.auth import get_user_model

    demo_load()
    first = publish(tmp_path / "site")
    time.sleep(1.1)
    product = edit_price("longjing-meijiawu", "57.00")
    second = publish(tmp_path / "site")
    data = dict(product.data)
    data["sku"] = [{"@value": "WLL-002-B"}]
    draft = entity_update(entity=product, data=data, expected_version=product.version)
    client.force_login(get_user_model().objects.get(username="demo"))
    review = client.get(f"/admin/kb/revision/{draft.latest_revision_id}/change/").content.decode()
    assert (
        '<th scope="row">SKU</th><td><del class="change-old">WLL-002</del></td>'
        '<td class="change-arrow">→</td><td><ins class="change-new">WLL-002-B</ins></td>'
    ) in review
    response = client.post(
        "/admin/publishing/release/",
        {"action": "compare", "_selected_action": [first.pk, second.pk]},
    )
    text = response.content.decode()
    assert "0 added, 0 removed, 13 changed (of 205 artifacts in release 2)." in text
    assert "-- [54.00 USD (In stock)](" in text and "+- [57.00 USD (In stock)](" in text


def test_brand_dashboard_shows_content_checks_releases_and_targets(client, tmp_path):
    from django.contrib.auth import get_user_model

    demo_load()
    publish(tmp_path / "site")
    brand = Brand.objects.get(slug="westlake-leaf")
    client.force_login(get_user_model().objects.get(username="demo"))
    assert (
        f"/admin/publishing/release/dashboard/{brand.pk}/"
        in client.get("/admin/kb/brand/").content.decode()
    )
    page = client.get(f"/admin/publishing/release/dashboard/{brand.pk}/").content.decode()
    assert "<tr><td>Product</td><td>24</td></tr>" in page
    assert "36 facts, 23 FAQs." in page
    assert (
        "<strong>0</strong> errors (they block publishing) · <strong>0</strong> not eligible "
        "for a rich result · <strong>48</strong> recommendations"
    ) in page
    assert "Release 1: Deployed" in page and "205 artifacts, 205 changed" in page
    assert f"directory {tmp_path / 'site'} (directory): release 1 done" in page


@pytest.mark.django_db(transaction=True)
def test_a_large_build_renders_in_forked_workers_exactly_as_one_process_does(
    tmp_path, settings, monkeypatch
):
    """Forked render workers (used above PARALLEL_MIN_PAGES pages) make the same files as
    rendering in the builder's own process, and an incremental build after them too."""
    from django.db import connection

    from publishing import build

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("an in-memory SQLite test database cannot be opened by forked workers")
    demo_load()
    monkeypatch.setattr(build, "PARALLEL_MIN_PAGES", 1)
    settings.SOURCEBOOK_BUILD_PROCESSES = 2
    forked = publish(tmp_path / "forked")
    assert forked.state == Release.State.DEPLOYED
    assert forked.summary["processes"] == 2
    forked_files = tree_hashes(tmp_path / "forked" / "current")
    assert len(forked_files) == forked.summary["artifacts"] == 205

    Release.objects.all().delete()
    settings.SOURCEBOOK_BUILD_PROCESSES = 1
    alone = publish(tmp_path / "alone")
    assert alone.summary["processes"] == 1
    assert tree_hashes(tmp_path / "alone" / "current") == forked_files

    settings.SOURCEBOOK_BUILD_PROCESSES = 2
    time.sleep(1.1)  # lastmod has a resolution of one second
    edit_price("longjing-meijiawu", "57.00")
    again = publish(tmp_path / "forked")
    assert again.summary["processes"] == 2
    assert again.summary["rendered"] == 29  # as in test_an_edit_rewrites_only_the_artifacts_…
    assert len(set(again.summary["changed_paths"])) == again.summary["changed"] == 13
    assert manifest(again) == tree_hashes(tmp_path / "forked" / "current")


@pytest.mark.django_db(transaction=True)
def test_a_page_failing_in_a_forked_worker_fails_the_release_and_nothing_else(
    tmp_path, settings, monkeypatch
):
    """An error while rendering in a worker process reaches the builder: the release fails
    with the error, the workers are gone, the live site stays, and the next build works."""
    import multiprocessing

    from publishing import build

    demo_load()
    monkeypatch.setattr(build, "PARALLEL_MIN_PAGES", 1)
    settings.SOURCEBOOK_BUILD_PROCESSES = 2
    first = publish(tmp_path / "site")
    live = tmp_path / "site" / "current"
    before = tree_hashes(live)
    render_page = build.render_page
    parent = os.getpid()

    def failing(site, page, *args, **kwargs):
        if page.path == "products/longjing-meijiawu/" and os.getpid() != parent:
            raise ValueError(f"cannot render {page.path}")
        return render_page(site, page, *args, **kwargs)

    monkeypatch.setattr(build, "render_page", failing)  # inherited by the forked workers
    # A page per task and a manifest row per write: pages rendered before the failing one
    # have had their rows written, which the failure must take back.
    monkeypatch.setattr(build, "RENDER_BATCH", 1)
    monkeypatch.setattr(build.ManifestWriter, "BATCH", 1)
    edit_price("longjing-meijiawu", "58.00")
    with pytest.raises(CommandError, match="failed: ValueError: cannot render products/longjing"):
        publish(tmp_path / "site")
    failed = Release.objects.get(number=first.number + 1)
    assert failed.state == Release.State.FAILED
    assert not failed.artifacts.exists()
    assert multiprocessing.active_children() == []
    assert os.readlink(live) == f".releases/{first.number}"
    assert tree_hashes(live) == before

    monkeypatch.setattr(build, "render_page", render_page)
    again = publish(tmp_path / "site")
    assert again.state == Release.State.DEPLOYED
    assert again.summary["processes"] == 2
    assert tree_hashes(live) == manifest(again)


def test_a_fork_waits_while_a_thread_of_the_builder_uses_the_database():
    """A render worker forked while another thread was inside SQLite inherited SQLite's lock
    and hung on its first query: every fork waits until ``fork_guard`` is free."""
    from publishing.locks import fork_guard

    forked = threading.Event()

    def fork():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        forked.set()

    with fork_guard:
        thread = threading.Thread(target=fork)
        thread.start()
        assert not forked.wait(0.5)
    thread.join(10)
    assert forked.is_set()


def test_a_thread_sanitizing_html_holds_off_forks():
    """nh3 releases the GIL and parses under a Rust mutex of its own: a fork made meanwhile
    would inherit the mutex held. Sanitizing takes ``fork_guard``, as forks do."""
    from publishing.locks import fork_guard
    from publishing.render.text import answer_html, html_to_text

    for sanitize in (answer_html, html_to_text):
        done = threading.Event()

        def run(sanitize=sanitize, done=done):
            sanitize("<p>Brewed <b>hot</b></p>")
            done.set()

        thread = threading.Thread(target=run)
        with fork_guard:
            thread.start()
            assert not done.wait(0.3), f"{sanitize.__name__} ran while a fork could happen"
        thread.join(10)
        assert done.is_set()


def forks_that_hang(*, busy, child, forks: int) -> int:
    """Forks ``forks`` times while a thread runs ``busy`` over and over; each child runs
    ``child`` (true when it worked). Returns how many children hung (stops at the first)."""
    stop = threading.Event()

    def busy_on():
        while not stop.is_set():
            busy()

    thread = threading.Thread(target=busy_on)
    thread.start()
    try:
        for _ in range(forks):
            pid = os.fork()
            if pid == 0:
                os._exit(0 if child() else 1)
            deadline = time.monotonic() + 10
            while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.002)
            if done[0] == 0:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return 1
            assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        stop.set()
        thread.join(10)
    return 0


def test_a_render_worker_forked_while_a_thread_renders_pages_renders_too():
    """A render worker forked by the pool's thread while the builder's thread was looking a
    template up inherited the lock of Jinja's template cache held, and hung on its first
    page: the site's templates are cached in a plain dict, without a lock."""
    from publishing.render.templates import render_site_template, site_templates

    assert type(site_templates().cache) is dict
    context = {"ui": {}, "rows": [], "facts": []}
    render_site_template("site/_rows.html", context)

    def render():
        return render_site_template("site/_rows.html", context) is not None

    assert forks_that_hang(busy=render, child=render, forks=40) == 0


def test_a_render_worker_forked_while_a_thread_formats_a_value_formats_too():
    """Babel loads a locale's data under a lock the first time a process formats a value in
    that language: a render worker forked by the pool's thread while the builder's thread was
    loading it inherited the lock held and hung on its first value (at 100,000 products).
    Forks take the lock first."""
    from babel import localedata

    from kb.units import value_text
    from publishing.locks import LIBRARY_LOCKS

    assert localedata._cache_lock in LIBRARY_LOCKS

    def load():  # as a process formatting its first values in a language does
        localedata._cache.clear()
        localedata.load("zh_Hans_CN")

    def format_value():
        localedata._cache.clear()
        return value_text("42", "ha", {}, "zh-CN") == "42公顷"

    assert forks_that_hang(busy=load, child=format_value, forks=100) == 0


def test_the_builder_hands_its_free_heap_back_before_it_forks():
    """glibc keeps what a process freed resident until asked: the builder asks before it
    forks its render workers (one pair of full publishes at 100,000 products: peak 503 MB
    with, 521 MB without)."""
    import platform

    import psutil

    from publishing.heap import _malloc_trim, heap_trim

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert _malloc_trim() is not None
    # Freed blocks between kept ones: holes in the heap that glibc does not trim itself.
    blocks = [bytearray(b"x" * 65536) for _ in range(1000)]
    kept = blocks[1::2]
    del blocks
    resident = psutil.Process().memory_info().rss
    assert heap_trim() is True
    assert resident - psutil.Process().memory_info().rss > 24 * 2**20  # of 32 MB freed
    del kept
