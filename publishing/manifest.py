"""A release's manifest entries as a build reads and makes them."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connections

from publishing.models import Release


@dataclass(slots=True)
class Entry:
    path: str
    kind: str
    sha256: str
    size: int
    fingerprint: str
    changed_at: datetime


class PreviousManifest:
    """The previous release's manifest, by path, for a build to carry over what still fits.

    Held compactly, its digests as bytes in arrays rather than an Entry per artifact: at
    100,000 products a dict of 402,000 entries and the set of those not yet seen took
    160 MB of an incremental publish. ``get`` makes an Entry when one is asked for; the
    build's hot path (a page and its twin carried over) compares by index (``match``).
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}  # path → position in the arrays below
        self.paths: list[str] = []
        self.kinds: list[str] = []  # the distinct kinds; kind_of holds a position in it
        self.kind_of = bytearray()
        self.sha256 = bytearray()  # 32 bytes each
        self.fingerprints = bytearray()  # 32 bytes each
        self.sizes = array("q")
        self.moments: list[datetime] = []  # the distinct changed_at; moment_of, positions
        self.moment_seconds = array("q")  # each of them in whole seconds since the epoch
        self.moment_of = array("l")
        self.seen = bytearray()  # 1 once this build has the path (carried over or made)

    def __len__(self) -> int:
        return len(self.paths)

    def add(
        self, path: str, kind: int, sha256: str, size: int, fingerprint: str, moment: int
    ) -> None:
        self.index[path] = len(self.paths)
        self.paths.append(path)
        self.kind_of.append(kind)
        self.sha256 += digest_bytes(sha256)
        self.fingerprints += digest_bytes(fingerprint)
        self.sizes.append(size)
        self.moment_of.append(moment)
        self.seen.append(0)

    def entry(self, number: int) -> Entry:
        return Entry(
            self.paths[number],
            self.kinds[self.kind_of[number]],
            self.sha256[32 * number : 32 * number + 32].hex(),
            self.sizes[number],
            self.fingerprints[32 * number : 32 * number + 32].hex(),
            self.moments[self.moment_of[number]],
        )

    def get(self, path: str) -> Entry | None:
        number = self.index.get(path)
        return None if number is None else self.entry(number)

    def match(self, paths: list[str], fingerprint: str) -> list[int] | None:
        """The positions of ``paths`` if each one is here with ``fingerprint``, else None."""
        wanted = bytes.fromhex(fingerprint)
        found = []
        for path in paths:
            number = self.index.get(path)
            if number is None or self.fingerprints[32 * number : 32 * number + 32] != wanted:
                return None
            found.append(number)
        return found

    def kind(self, number: int) -> str:
        return self.kinds[self.kind_of[number]]

    def changed_at(self, number: int) -> datetime:
        return self.moments[self.moment_of[number]]

    def changed_second(self, number: int) -> int:
        """``changed_at`` in whole seconds since the epoch."""
        return self.moment_seconds[self.moment_of[number]]

    def digest(self, number: int) -> bytes:
        """Its sha256, as 32 bytes."""
        return bytes(self.sha256[32 * number : 32 * number + 32])

    def mark_seen(self, path: str) -> None:
        number = self.index.get(path)
        if number is not None:
            self.seen[number] = 1

    def paths_of(self, kind: str) -> list[str]:
        if kind not in self.kinds:
            return []
        code = self.kinds.index(kind)
        return [path for path, k in zip(self.paths, self.kind_of, strict=True) if k == code]

    def unseen(self) -> list[str]:
        """The paths this build has not had (at the end of a build, those removed)."""
        return sorted(path for path, seen in zip(self.paths, self.seen, strict=True) if not seen)


def whole_seconds(moment: datetime) -> int:
    return int(moment.replace(microsecond=0).timestamp())


def digest_bytes(text: str) -> bytes:
    """A SHA-256 hex digest as its 32 bytes; anything else (a fingerprint a release made
    before there were any) as 32 zero bytes, which no digest matches."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    return value if len(value) == 32 else bytes(32)


# The kinds of a page and its Markdown twin: the rows a build may read only some of.
PAGE_KINDS = ("page", "markdown")
PATHS_PER_QUERY = 500


def previous_manifest_read(
    release: Release | None, *, pages: Iterable[str] | None = None
) -> PreviousManifest:
    """The release's manifest; with ``pages``, only the rows of those pages' and twins'
    paths and of every artifact that is not a page or twin (see publishing.plan)."""
    manifest = PreviousManifest()
    if release is None:
        return manifest
    fields = ("path", "kind", "sha256", "size", "fingerprint", "changed_at")
    if pages is None:
        querysets = [release.artifacts.values_list(*fields)]
    else:
        paths = sorted(pages)
        querysets = [release.artifacts.exclude(kind__in=PAGE_KINDS).values_list(*fields)] + [
            release.artifacts.filter(path__in=paths[start : start + PATHS_PER_QUERY]).values_list(
                *fields
            )
            for start in range(0, len(paths), PATHS_PER_QUERY)
        ]
    for queryset in querysets:
        manifest_rows_add(manifest, queryset)
    return manifest


def manifest_rows_add(manifest: PreviousManifest, queryset) -> None:
    # Read with a plain cursor: Django's per-row conversions were most of reading 400,000
    # rows, and a release's rows share few distinct times, each converted once here.
    compiler = queryset.query.get_compiler(queryset.db)
    sql, params = compiler.as_sql()
    converters, expression = compiler.get_converters(
        [column for column, _, _ in compiler.select]
    ).get(5, ((), None))
    db = connections[queryset.db]
    moments = {value: number for number, value in enumerate(manifest.moments)}

    def moment(raw) -> int:
        value = raw
        for convert in converters:
            value = convert(value, expression, db)
        number = moments.get(value)
        if number is None:
            number = moments[value] = len(manifest.moments)
            manifest.moments.append(value)
            manifest.moment_seconds.append(whole_seconds(value))
        return number

    kinds = {kind: number for number, kind in enumerate(manifest.kinds)}

    def kind_code(kind: str) -> int:
        if kind not in kinds:
            kinds[kind] = len(manifest.kinds)
            manifest.kinds.append(kind)
        return kinds[kind]

    raw_moments: dict = {}
    add = manifest.add
    with db.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(5000):
            for path, kind, sha, size, fingerprint, changed in rows:
                if changed not in raw_moments:
                    raw_moments[changed] = moment(changed)
                add(path, kind_code(kind), sha, size, fingerprint, raw_moments[changed])
