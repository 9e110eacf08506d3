"""A local directory target, switched atomically.

Layout under the target's path::

    current -> .releases/7       (a symlink: what the web server serves)
    .releases/6/…                (kept releases, ready to roll back to)
    .releases/7/…

A release's tree is assembled in a temporary directory (hard links into the artifact store
when it is on the same file system, copies otherwise), renamed into place, and then the
``current`` symlink is replaced in one ``rename``: a crash at any point leaves the previous
release served intact.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from publishing.models import Deployment, Release, Target
from publishing.selectors import release_changes_count
from publishing.store import artifact_local_root, artifact_read
from publishing.targets.errors import TargetConfigError

RELEASES_DIR = ".releases"
CURRENT = "current"
COMPLETE_MARKER = ".sourcebook-release"


def directory_root(target: Target) -> Path:
    path = (target.config or {}).get("path")
    if not path:
        raise TargetConfigError(f"Target {target.name!r}: config has no 'path' for the directory.")
    return Path(path)


def release_tree(root: Path, number: int) -> Path:
    return root / RELEASES_DIR / str(number)


def live_tree(target: Target) -> Path:
    return directory_root(target) / CURRENT


def tree_complete(tree: Path, release: Release) -> bool:
    marker = tree / COMPLETE_MARKER
    return marker.is_file() and marker.read_text().strip() == release_marker(release)


def release_marker(release: Release) -> str:
    return f"{release.brand.slug} {release.number} {release.created_at.isoformat()}"


def directory_deploy(
    *, target: Target, release: Release, deployment: Deployment, previous: Release | None
) -> None:
    root = directory_root(target)
    (root / RELEASES_DIR).mkdir(parents=True, exist_ok=True)
    tree = release_tree(root, release.number)
    if not tree_complete(tree, release):
        if tree.exists():  # left by an interrupted deploy
            shutil.rmtree(tree)
        staging = root / RELEASES_DIR / f".staging-{release.number}-{uuid.uuid4().hex[:8]}"
        assemble(staging, release)
        (staging / COMPLETE_MARKER).write_text(release_marker(release) + "\n")
        os.rename(staging, tree)
    switch(root, tree)
    deployment.uploaded, deployment.deleted = release_changes_count(release, previous)
    deployment.save(update_fields=["uploaded", "deleted"])


def assemble(staging: Path, release: Release) -> int:
    """Hard-link (or copy) every artifact into ``staging``; return how many.

    Paths are plain strings and the store's location is looked up once: at 400,000 files,
    ``Path`` arithmetic and the storage's safe join per file were most of a deploy.
    """
    staging.mkdir(parents=True)
    base = str(staging)
    made_dirs: set[str] = {base}

    def make_dir(path: str) -> None:
        # The tree is new: one mkdir per directory, its parent's first (os.makedirs checks
        # every level of every path, 40% of a deploy at 400,000 files).
        parent = os.path.dirname(path)
        if parent not in made_dirs:
            make_dir(parent)
        os.mkdir(path)
        made_dirs.add(path)

    store_root = artifact_local_root()
    count = 0
    rows = release.artifacts.values_list("path", "sha256").iterator(chunk_size=5000)
    for path, sha256 in rows:
        destination = f"{base}/{path}"
        parent = os.path.dirname(destination)
        if parent not in made_dirs:
            make_dir(parent)
        try:
            if store_root is None:
                raise OSError("artifact store is not local")
            os.link(f"{store_root}/{sha256[:2]}/{sha256[2:4]}/{sha256}", destination)
        except OSError:
            with open(destination, "wb") as handle:
                handle.write(artifact_read(sha256))
        count += 1
    return count


def switch(root: Path, tree: Path) -> None:
    """Point ``current`` at ``tree`` in one atomic rename."""
    temporary = root / f".current-{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(tree, root), temporary)
    os.replace(temporary, root / CURRENT)


def directory_prune(target: Target, keep_numbers: set[int]) -> int:
    """Remove release trees that are neither kept nor live."""
    root = directory_root(target)
    releases = root / RELEASES_DIR
    if not releases.is_dir():
        return 0
    live = (root / CURRENT).resolve() if (root / CURRENT).exists() else None
    removed = 0
    for tree in releases.iterdir():
        if tree.name.isdigit() and int(tree.name) in keep_numbers:
            continue
        if live is not None and tree.resolve() == live:
            continue
        shutil.rmtree(tree, ignore_errors=True)
        removed += 1
    return removed
