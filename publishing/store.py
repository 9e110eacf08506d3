"""The content-addressed artifact store: bytes kept once, under their SHA-256.

Backed by the ``artifacts`` entry of ``STORAGES`` (a local directory by default; any Django
storage, e.g. S3 through django-storages, works).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils import timezone

logger = logging.getLogger(__name__)

# Published files are read by the web server, which runs as another user (Debian's nginx
# workers run as www-data): every file of the store and of a directory target's trees is
# 0644 and every directory 0755, set explicitly whatever the process umask. (A hard link
# shares its inode, so a store file's mode is that of every tree file linked to it.)
FILE_MODE = 0o644
DIR_MODE = 0o755
# A file at the store's root that says every file and directory in it has those modes: a
# store made before they were set explicitly is checked once (see artifact_modes_fix).
MODES_MARKER = ".modes-0644"

# Store directories this process made or found (65,536 at most): a publish of 100,000 pages
# would otherwise ask the file system for each parent directory again.
_made_dirs: set[str] = set()
# Temporary names unique within a process (the process id makes them unique across).
_temporary_numbers = itertools.count()


def artifact_storage() -> Storage:
    return storages["artifacts"]


def artifact_name(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def artifact_put(content: bytes) -> tuple[str, bool]:
    """Store ``content``; return its SHA-256 and whether it was new.

    A stored file is trusted only if it has the right size, and a local file is written
    under a temporary name and renamed into place: a process killed mid-write never leaves
    a short file under the content's name.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    storage = artifact_storage()
    name = artifact_name(sha256)
    if isinstance(storage, FileSystemStorage):
        # Plain string paths and os calls: this runs once per file of a 400,000-file publish,
        # where pathlib and the storage's safe join were half of its cost.
        directory = f"{os.path.abspath(storage.location)}/{sha256[:2]}/{sha256[2:4]}"
        path = f"{directory}/{sha256}"
        try:
            stat = os.stat(path)
            if stat.st_size == len(content):
                mode_fix(path, stat.st_mode)  # stored before modes were set: readable now
                return sha256, False
        except FileNotFoundError:
            pass
        if directory not in _made_dirs:
            make_dirs(directory)
            _made_dirs.add(directory)
        temporary = f"{directory}/.{sha256}.{os.getpid()}.{next(_temporary_numbers)}"
        try:
            write_file(temporary, content)
        except FileNotFoundError:  # the directory was removed since (the store was cleared)
            make_dirs(directory)
            write_file(temporary, content)
        os.replace(temporary, path)
        return sha256, True
    if storage.exists(name) and storage.size(name) == len(content):
        return sha256, False
    storage_replace(storage, name, ContentFile(content))
    return sha256, True


def storage_replace(storage: Storage, name: str, content: File) -> None:
    """Save ``content`` under exactly ``name`` (a short copy there is replaced)."""
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, content)
    if saved != name:  # a concurrent writer stored the same bytes first
        storage.delete(saved)


def write_file(path: str, content: bytes) -> None:
    """Write ``path`` (created or truncated), mode 0644 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with open(fd, "wb") as handle:
        os.fchmod(fd, FILE_MODE)  # the umask may have taken bits off (0o077: 0600)
        handle.write(content)


def make_dirs(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)``, each directory it makes 0755 whatever the umask.

    One ``mkdir`` when the parent exists (the usual case), where ``os.makedirs`` first
    asks about every level of the path.
    """
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        make_dirs(parent)
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:  # made meanwhile by another process
            return
    os.chmod(path, DIR_MODE)  # the umask may have taken bits off


def mode_fix(path: str, st_mode: int, mode: int = FILE_MODE) -> bool:
    """Give ``path`` ``mode`` if ``st_mode`` (its ``stat``) says it has another; whether it
    changed. A file this process may not change (another user's) is logged and left."""
    if st_mode & 0o7777 == mode:
        return False
    try:
        os.chmod(path, mode)
    except PermissionError:
        logger.warning("%s is mode %o, not %o, and cannot be changed", path, st_mode, mode)
        return False
    return True


_modes_checked: set[str] = set()


def artifact_modes_fix() -> int:
    """Once per store: make every file in the local store 0644 and every directory 0755;
    return how many were changed.

    Stores made before the modes were set explicitly hold files written 0600 (a temporary
    file renamed into place) that later releases reuse, hard-linked into their trees: the
    first deploy after an upgrade fixes them all (about a second at 400,000 files), then
    writes :data:`MODES_MARKER`, which later deploys find (one ``stat``, once per process).
    """
    root = artifact_local_root()
    if root is None or root in _modes_checked:
        return 0
    marker = f"{root}/{MODES_MARKER}"
    if os.path.exists(marker):
        _modes_checked.add(root)
        return 0
    changed = 0
    for directory, directories, files in os.walk(root):
        for names, mode in ((directories, DIR_MODE), (files, FILE_MODE)):
            for name in names:
                path = f"{directory}/{name}"
                # (A writer's temporary file may be renamed, a pruned file removed, meanwhile.)
                with contextlib.suppress(FileNotFoundError):
                    changed += mode_fix(path, os.lstat(path).st_mode, mode)
    if os.path.isdir(root):
        write_file(marker, b"Every file here is 0644 and every directory 0755.\n")
        _modes_checked.add(root)
    if changed:
        logger.info("Artifact store %s: %d files and directories made readable", root, changed)
    return changed


def artifact_put_chunks(chunks: Iterable[bytes]) -> tuple[str, bool, int]:
    """Store content given piece by piece (a large artifact is never whole in memory);
    return its SHA-256, whether it was new, and its size. Written to a temporary file
    while hashed, then moved (local store) or saved (any other storage) under its hash."""
    storage = artifact_storage()
    local = isinstance(storage, FileSystemStorage)
    spool = Path(storage.location if local else tempfile.gettempdir())
    make_dirs(str(spool.absolute()))
    sha = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=spool, prefix=".chunks-", delete=False) as handle:
        try:
            os.fchmod(handle.fileno(), FILE_MODE)  # made 0600; renamed into the store below
            for chunk in chunks:
                sha.update(chunk)
                handle.write(chunk)
                size += len(chunk)
        except BaseException:
            os.unlink(handle.name)
            raise
    sha256 = sha.hexdigest()
    name = artifact_name(sha256)
    try:
        if local:
            path = storage.path(name)
            try:
                stat = os.stat(path)
                if stat.st_size == size:
                    mode_fix(path, stat.st_mode)  # stored before modes were set
                    return sha256, False, size
            except FileNotFoundError:
                pass
            make_dirs(os.path.dirname(path))
            os.replace(handle.name, path)
            return sha256, True, size
        if storage.exists(name) and storage.size(name) == size:
            return sha256, False, size
        with open(handle.name, "rb") as spooled:
            storage_replace(storage, name, File(spooled))
        return sha256, True, size
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)


def artifact_open(sha256: str):
    """An artifact's bytes as a binary file, read-only."""
    root = artifact_local_root()
    if root is not None:  # llms-full.txt reads many Markdown twins: skip the storage layer
        return open(f"{root}/{artifact_name(sha256)}", "rb")  # noqa: SIM115
    return artifact_storage().open(artifact_name(sha256), "rb")


def artifact_read(sha256: str) -> bytes:
    with artifact_open(sha256) as handle:
        return handle.read()


def artifact_present(sha256: str, size: int) -> bool:
    """Whether the store holds the artifact, whole."""
    storage = artifact_storage()
    name = artifact_name(sha256)
    try:
        return storage.exists(name) and storage.size(name) == size
    except OSError:  # removed meanwhile
        return False


def artifact_read_range(sha256: str, offset: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of an artifact from ``offset``, a megabyte at a time."""
    with artifact_open(sha256) as handle:
        handle.seek(offset)
        while length > 0:
            data = handle.read(min(1 << 20, length))
            if not data:
                raise OSError(f"artifact {sha256} ends before byte {offset + length}")
            length -= len(data)
            yield data


def artifact_local_root() -> str | None:
    """The store's directory when it is local (artifact files are ``ROOT/ab/cd/abcd…``)."""
    storage = artifact_storage()
    if isinstance(storage, FileSystemStorage):
        return os.path.abspath(storage.location)
    return None


def artifact_prune(keep: Iterable[str], *, grace: timedelta = timedelta(hours=1)) -> int:
    """Delete every stored artifact whose hash is not in ``keep``; return how many.

    Artifacts younger than ``grace`` stay: a build in progress may have stored them
    without having recorded its release yet.
    """
    keep = set(keep)
    cutoff = timezone.now() - grace
    storage = artifact_storage()
    removed = 0
    first_levels = storage.listdir("")[0] if storage.exists("") else []
    for first in first_levels:
        for second in storage.listdir(first)[0]:
            directory = f"{first}/{second}"
            for name in storage.listdir(directory)[1]:
                path = f"{directory}/{name}"
                if name.startswith("."):  # a temporary file of a writer
                    if storage.get_modified_time(path) < cutoff:
                        storage.delete(path)
                    continue
                if name not in keep and storage.get_modified_time(path) < cutoff:
                    storage.delete(path)
                    removed += 1
    return removed
