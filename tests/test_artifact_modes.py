"""Published files are world-readable whatever the worker's umask: the web server reads them
as another user (Debian's nginx workers run as www-data). Every file of the artifact store
and of a directory target's trees is 0644, every directory 0755."""

import os
import stat
from pathlib import Path

import pytest

from kb.demo_brand import demo_load
from kb.models import Entity
from kb.services.workflow import object_publish, object_unpublish
from publishing import store
from publishing.store import (
    MODES_MARKER,
    artifact_name,
    artifact_put,
    artifact_put_chunks,
    artifact_read,
)
from publishing.targets.directory import place
from tests.publish_edits import edit_price, publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict_umask():
    """umask 0o077, as a worker started by a hardened unit might have: without explicit
    modes, files come out 0600 and directories 0700."""
    saved = os.umask(0o077)
    yield
    os.umask(saved)


def wrong_modes(root: Path, *, skip: set[str] = frozenset()) -> dict[str, str]:
    """Every file not 0644 and directory not 0755 under ``root`` (itself excluded), by path."""
    wrong = {}
    for directory, directories, files in os.walk(root):
        for name in directories + files:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if relative in skip:
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                continue  # "current": a symlink's mode means nothing
            expected = 0o755 if stat.S_ISDIR(info.st_mode) else 0o644
            if stat.S_IMODE(info.st_mode) != expected:
                wrong[relative] = oct(stat.S_IMODE(info.st_mode))
    return wrong


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_published_trees_and_the_store_are_world_readable_under_umask_077(
    tmp_path, artifact_store, strict_umask
):
    demo_load()
    # The target's directory and its parents do not exist yet: the deploy makes them.
    site = tmp_path / "srv" / "sourcebook" / "site"
    # 1: a product unpublished (tree 1 without it); 2: an edit (tree 2, made whole);
    # 3: the product again (tree 1 changed into tree 3: its directories are made anew).
    absent = Entity.objects.get(slug="longjing-meijiawu")
    object_unpublish(obj=absent)
    publish(site)
    edit_price("biluochun", "31.00")
    publish(site)
    object_publish(obj=Entity.objects.get(slug="longjing-meijiawu"))
    third = publish(site)
    assert (site / "current").resolve() == (site / ".releases" / str(third.number)).resolve()
    assert (site / "current" / "products" / "longjing-meijiawu" / "index.html").is_file()

    for directory in (tmp_path / "srv", tmp_path / "srv" / "sourcebook", site):
        assert mode(directory) == 0o755, directory
    assert wrong_modes(site) == {}
    live = site / "current"
    kinds = ["index.html", "products/biluochun/index.html.md", "llms.txt", "llms-full.txt",
             "zh-Hans/index.html", "sitemap.xml", "sitemaps/sitemap-1.xml", "graph.jsonld",
             "robots.txt"]  # fmt: skip
    for path in kinds:
        assert mode(live / path) == 0o644, path
    # The store: the files the build wrote (llms-full.txt and graph.jsonld are written in
    # chunks through a temporary file) and the directories it made.
    assert wrong_modes(artifact_store) == {}
    assert (artifact_store / MODES_MARKER).is_file()


def test_a_store_made_before_the_fix_is_made_readable_by_the_next_deploy(
    tmp_path, artifact_store, strict_umask
):
    demo_load()
    site = tmp_path / "site"
    first = publish(site)
    # As the store of a server upgraded to this version: files stored 0600 (the full text
    # and the graph were, through a NamedTemporaryFile), a directory 0700, and no marker.
    hashes = dict(first.artifacts.values_list("path", "sha256"))
    for path in ("llms-full.txt", "graph.jsonld", "products/biluochun/index.html"):
        os.chmod(artifact_store / artifact_name(hashes[path]), 0o600)
    os.chmod(artifact_store / artifact_name(hashes["robots.txt"])[:5], 0o700)
    (artifact_store / MODES_MARKER).unlink()
    store._modes_checked.clear()  # a worker started after the upgrade
    assert mode(site / "current" / "products" / "biluochun" / "index.html") == 0o600  # a link

    # The next release reuses those files (content-addressed) and links them again.
    edit_price("longjing-meijiawu", "57.00")
    second = publish(site)
    assert second.number == first.number + 1
    assert wrong_modes(artifact_store) == {}
    assert wrong_modes(site) == {}
    assert mode(site / "current" / "products" / "biluochun" / "index.html") == 0o644
    assert (artifact_store / MODES_MARKER).is_file()

    # Later deploys find the marker and walk nothing.
    store._modes_checked.clear()
    os.chmod(artifact_store / artifact_name(hashes["robots.txt"]), 0o600)
    assert store.artifact_modes_fix() == 0
    assert mode(artifact_store / artifact_name(hashes["robots.txt"])) == 0o600


def test_storing_bytes_again_fixes_a_file_stored_unreadable(artifact_store, strict_umask):
    sha256, new = artifact_put(b"a page\n")
    assert new and mode(artifact_store / artifact_name(sha256)) == 0o644
    assert mode(artifact_store / artifact_name(sha256)[:5]) == 0o755
    assert mode(artifact_store / artifact_name(sha256)[:2]) == 0o755
    os.chmod(artifact_store / artifact_name(sha256), 0o600)
    assert artifact_put(b"a page\n") == (sha256, False)
    assert mode(artifact_store / artifact_name(sha256)) == 0o644

    chunked, new, size = artifact_put_chunks([b"llms-full ", b"text\n"])
    assert new and size == 15 and mode(artifact_store / artifact_name(chunked)) == 0o644
    os.chmod(artifact_store / artifact_name(chunked), 0o600)
    assert artifact_put_chunks([b"llms-full text\n"])[:2] == (chunked, False)
    assert mode(artifact_store / artifact_name(chunked)) == 0o644
    assert not [p for p in artifact_store.iterdir() if p.name.startswith(".chunks-")]


def test_a_copy_made_where_hard_links_are_impossible_is_world_readable(
    tmp_path, artifact_store, strict_umask
):
    sha256, _ = artifact_put(b"<html></html>\n")
    destination = tmp_path / "copy.html"
    place(None, sha256, str(destination))  # no local store: a copy
    assert destination.read_bytes() == artifact_read(sha256)
    assert mode(destination) == 0o644
    assert os.stat(destination).st_ino != os.stat(artifact_store / artifact_name(sha256)).st_ino
