"""The content-addressed artifact store: bytes kept once, under their SHA-256.

Backed by the ``artifacts`` entry of ``STORAGES`` (a local directory by default; any Django
storage, e.g. S3 through django-storages, works).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils import timezone

# Store directories this process made or found (65,536 at most): a publish of 100,000 pages
# would otherwise ask the file system for each parent directory again.
_made_dirs: set[Path] = set()


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
        path = Path(storage.path(name))
        try:
            if path.stat().st_size == len(content):
                return sha256, False
        except FileNotFoundError:
            pass
        if path.parent not in _made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            _made_dirs.add(path.parent)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        try:
            temporary.write_bytes(content)
        except FileNotFoundError:  # the directory was removed since (the store was cleared)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(content)
        os.replace(temporary, path)
        return sha256, True
    if storage.exists(name) and storage.size(name) == len(content):
        return sha256, False
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, ContentFile(content))
    if saved != name:  # a concurrent writer stored the same bytes first
        storage.delete(saved)
    return sha256, True


def artifact_read(sha256: str) -> bytes:
    with artifact_storage().open(artifact_name(sha256), "rb") as handle:
        return handle.read()


def artifact_local_path(sha256: str) -> Path | None:
    """The artifact's file when the store is a local directory (for hard links), else None."""
    storage = artifact_storage()
    if isinstance(storage, FileSystemStorage):
        return Path(storage.path(artifact_name(sha256)))
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
