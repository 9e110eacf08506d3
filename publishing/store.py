"""The content-addressed artifact store: bytes kept once, under their SHA-256.

Backed by the ``artifacts`` entry of ``STORAGES`` (a local directory by default; any Django
storage, e.g. S3 through django-storages, works).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils import timezone

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
            if os.stat(path).st_size == len(content):
                return sha256, False
        except FileNotFoundError:
            pass
        if directory not in _made_dirs:
            os.makedirs(directory, exist_ok=True)
            _made_dirs.add(directory)
        temporary = f"{directory}/.{sha256}.{os.getpid()}.{next(_temporary_numbers)}"
        try:
            write_file(temporary, content)
        except FileNotFoundError:  # the directory was removed since (the store was cleared)
            os.makedirs(directory, exist_ok=True)
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
    with open(path, "wb") as handle:
        handle.write(content)


def artifact_put_chunks(chunks: Iterable[bytes]) -> tuple[str, bool, int]:
    """Store content given piece by piece (a large artifact is never whole in memory);
    return its SHA-256, whether it was new, and its size. Written to a temporary file
    while hashed, then moved (local store) or saved (any other storage) under its hash."""
    storage = artifact_storage()
    local = isinstance(storage, FileSystemStorage)
    spool = Path(storage.location if local else tempfile.gettempdir())
    spool.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=spool, prefix=".chunks-", delete=False) as handle:
        try:
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
        if storage.exists(name) and storage.size(name) == size:
            return sha256, False, size
        if local:
            path = Path(storage.path(name))
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(handle.name, path)
            return sha256, True, size
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
