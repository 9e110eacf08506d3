"""A local directory target, switched atomically.

The target's directory is ``SOURCEBOOK_SITE_ROOT/<brand slug>/<folder>`` (see
:func:`directory_root`), or the operator's ``publish --out DIR``. Layout under it::

    current -> .releases/7       (a symlink: what the web server serves)
    .releases/6/…                (the release deployed before: rolled back to at once)
    .releases/7/…

A release's tree is made in a temporary directory and renamed into place, and then the
``current`` symlink is replaced in one ``rename``: a crash at any point leaves the previous
release served intact. Files are hard links into the artifact store when it is on the same
file system, copies otherwise.

A target keeps two trees: the live one and the one before it. The next deploy takes that
one and changes it into the new release's: it removes, adds and replaces only the files
that differ between the two releases' manifests (a few for one edit, where making a tree
of 400,000 files took seconds). Rolling back to a release without a tree makes its tree
the same way.

Every file of a tree is 0644 and every directory 0755, whatever the worker's umask: the web
server reads them as another user (Debian's nginx workers run as www-data). A hard link has
its store file's mode, which the store sets (:func:`publishing.store.artifact_modes_fix`
fixes a store made before that once, on the first deploy after the upgrade).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db.models import Exists, OuterRef

from publishing.models import Deployment, Release, ReleaseArtifact, Target
from publishing.selectors import release_changes_count
from publishing.store import (
    DIR_MODE,
    artifact_local_root,
    artifact_modes_fix,
    artifact_read,
    make_dirs,
    write_file,
)
from publishing.targets.config import target_config_clean
from publishing.targets.errors import TargetConfigError

logger = logging.getLogger(__name__)

RELEASES_DIR = ".releases"
CURRENT = "current"
COMPLETE_MARKER = ".sourcebook-release"


def directory_root(target: Target) -> Path:
    """Where the target's trees live.

    An operator's directory (``Target.operator_path``, set by ``publish --out DIR``) as is;
    else ``SOURCEBOOK_SITE_ROOT/<brand slug>/<folder>`` from the brand's ``{"folder"}``
    config, which must stay inside the brand's folder once symlinks are resolved.
    """
    if target.operator_path:
        return Path(target.operator_path)
    config = target_config_clean(
        brand=target.brand, kind=target.kind, config=target.config or {}, name=target.name
    )
    site_root = Path(settings.SOURCEBOOK_SITE_ROOT)
    brand_dir = site_root / target.brand.slug
    root = brand_dir / config["folder"] if config.get("folder") else brand_dir
    resolved_site = site_root.resolve()
    resolved_brand = brand_dir.resolve()
    resolved = root.resolve()
    if resolved_brand.parent != resolved_site or not resolved.is_relative_to(resolved_brand):
        raise TargetConfigError(
            f"Directory target {target.name!r} (brand {target.brand}): {root} leads to "
            f"{resolved} (a symlink), outside the brand's folder {brand_dir}; refused."
        )
    return root


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
    make_dirs(str(root / RELEASES_DIR))
    artifact_modes_fix()  # once per store: files stored 0600 before modes were set
    tree = release_tree(root, release.number)
    if not tree_complete(tree, release):
        if tree.exists():  # left by an interrupted deploy
            shutil.rmtree(tree)
        staging = root / RELEASES_DIR / f".staging-{release.number}-{uuid.uuid4().hex[:8]}"
        spare = spare_tree(root, release)
        if spare is None:
            assemble(staging, release)
        else:
            os.rename(spare[0], staging)
            (staging / COMPLETE_MARKER).unlink()
            tree_update(staging, spare[1], release)
        write_file(str(staging / COMPLETE_MARKER), (release_marker(release) + "\n").encode())
        os.rename(staging, tree)
    switch(root, tree)
    deployment.uploaded, deployment.deleted = release_changes_count(release, previous)
    deployment.save(update_fields=["uploaded", "deleted"])


def spare_tree(root: Path, release: Release) -> tuple[Path, Release] | None:
    """The newest complete tree that is not live, and its release: made into ``release``'s."""
    live = live_path(root)
    trees = sorted(
        ((int(p.name), p) for p in (root / RELEASES_DIR).iterdir() if p.name.isdigit()),
        reverse=True,
    )
    for number, tree in trees:
        if number == release.number or (live is not None and tree.resolve() == live):
            continue
        owner = Release.objects.filter(brand=release.brand, number=number).first()
        if owner is not None and tree_complete(tree, owner):
            return tree, owner
    return None


def live_path(root: Path) -> Path | None:
    return (root / CURRENT).resolve() if (root / CURRENT).exists() else None


def tree_update(staging: Path, old: Release, new: Release) -> None:
    """Change ``staging``, ``old``'s tree, into ``new``'s: remove the files ``new`` does not
    have, then add the new ones and replace the changed ones."""
    base = str(staging)
    # Only the rows the two manifests do not share can differ (see ReleaseArtifact).
    kept = ReleaseArtifact.objects.in_release(new).filter(path=OuterRef("path"))
    gone = (
        ReleaseArtifact.objects.not_in_release(old, new)
        .exclude(Exists(kept))
        .values_list("path", flat=True)
    )
    for path in gone.iterator(chunk_size=5000):
        destination = f"{base}/{path}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(destination)
        parent = os.path.dirname(destination)
        while parent != base:  # directories left empty go too
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)
    same = ReleaseArtifact.objects.in_release(old).filter(
        path=OuterRef("path"), sha256=OuterRef("sha256")
    )
    changed = (
        ReleaseArtifact.objects.not_in_release(new, old)
        .exclude(Exists(same))
        .values_list("path", "sha256")
    )
    store_root = artifact_local_root()
    for path, sha256 in changed.iterator(chunk_size=5000):
        destination = f"{base}/{path}"
        make_dirs(os.path.dirname(destination))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(destination)
        place(store_root, sha256, destination)


def assemble(staging: Path, release: Release) -> int:
    """Hard-link (or copy) every artifact into ``staging``; return how many.

    Paths are plain strings and the store's location is looked up once: at 400,000 files,
    ``Path`` arithmetic and the storage's safe join per file were most of a deploy.
    """
    base = str(staging)
    os.mkdir(base, DIR_MODE)
    os.chmod(base, DIR_MODE)  # the umask may have taken bits off
    made_dirs: set[str] = {base}

    def make_dir(path: str) -> None:
        # The tree is new: one mkdir per directory, its parent's first (os.makedirs checks
        # every level of every path, 40% of a deploy at 400,000 files).
        parent = os.path.dirname(path)
        if parent not in made_dirs:
            make_dir(parent)
        os.mkdir(path, DIR_MODE)
        os.chmod(path, DIR_MODE)  # the umask may have taken bits off
        made_dirs.add(path)

    store_root = artifact_local_root()
    count = 0
    rows = release.artifacts.values_list("path", "sha256").iterator(chunk_size=5000)
    for path, sha256 in rows:
        destination = f"{base}/{path}"
        parent = os.path.dirname(destination)
        if parent not in made_dirs:
            make_dir(parent)
        place(store_root, sha256, destination)
        count += 1
    return count


def place(store_root: str | None, sha256: str, destination: str) -> None:
    """Put an artifact at ``destination``: a hard link into the store, else a copy."""
    try:
        if store_root is None:
            raise OSError("artifact store is not local")
        os.link(f"{store_root}/{sha256[:2]}/{sha256[2:4]}/{sha256}", destination)
    except OSError:
        write_file(destination, artifact_read(sha256))


def switch(root: Path, tree: Path) -> None:
    """Point ``current`` at ``tree`` in one atomic rename."""
    temporary = root / f".current-{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(tree, root), temporary)
    os.replace(temporary, root / CURRENT)


def directory_prune(target: Target, keep_numbers: set[int]) -> int:
    """Remove the release trees but the live one and the newest other one of a release still
    kept (the next deploy changes it into its own, or a rollback switches to it)."""
    try:
        root = directory_root(target)
    except TargetConfigError as error:  # nothing of ours to prune there
        logger.warning("Not pruning %s: %s", target, error)
        return 0
    releases = root / RELEASES_DIR
    if not releases.is_dir():
        return 0
    live = live_path(root)
    spare_kept = False
    removed = 0
    trees = sorted(releases.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)
    for tree in reversed(trees):
        if live is not None and tree.resolve() == live:
            continue
        if not spare_kept and tree.name.isdigit() and int(tree.name) in keep_numbers:
            spare_kept = True
            continue
        shutil.rmtree(tree, ignore_errors=True)
        removed += 1
    return removed
