"""What a build read of a brand's live content, kept with its release so that the next build
reads again only the objects whose live revision changed.

A build needs, of each live entity, what its live revision says of it (IRI, slug, types,
names, references, summaries, linked media, missing required properties) and, of each live
fact and FAQ, its snapshot. Reading and parsing every live revision for that was a quarter
of a one-edit publish at 100,000 products. So each object's *record* is kept: grouped by
primary key (``CHUNK_SPAN`` keys a chunk), each chunk is stored content-addressed in the
artifact store as JSON, and the release lists its chunks (``Release.site_state``).

The next build asks the database one narrow question per model: each object's primary key,
live revision and last publication (and each entity's IRI, for the references to hidden
ones). A record whose revision and publication are unchanged is taken from the parent's
chunks; the others are read from their revisions. A chunk is stored again only when one of
its records changed, was added or went: a one-edit publish stores one.

The records depend on the brand's languages and base URL and on the code deriving them:
``state_key`` names those, and a parent whose key differs is not used.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from kb.jsontext import json_text
from kb.models import FAQ, Brand, Entity, Fact
from publishing.store import artifact_put, artifact_read

STATE_VERSION = "1"
# Primary keys per chunk: at 100,000 products, 49 chunks of entities of ~1.5 MB each.
CHUNK_SPAN = 2048
MODELS = {"entity": Entity, "fact": Fact, "faq": FAQ}
READ_BATCH = 500

# A record: [pk, revision id, last published at (ISO 8601 or None), …what the kind needs]
# (see site.entity_record and site.statement_record).
Record = list
# What the kind needs of a record, from the live revision's snapshot and its JSON text.
Derive = Callable[[dict, str], list]


@functools.cache
def code_digest() -> str:
    """A change to the code that derives records makes them again."""
    sha = hashlib.sha256(STATE_VERSION.encode())
    package = Path(__file__).parent
    for name in ("site.py", "site_state.py"):
        sha.update((package / name).read_bytes())
    return sha.hexdigest()


def state_key(brand: Brand) -> str:
    parts = [code_digest(), brand.base_url, list(brand.languages), brand.default_language]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


@dataclass
class LiveRecords:
    """The records of one kind of object, by primary key, and the chunks they are stored in."""

    records: dict[int, Record]
    chunks: dict[int, str]  # chunk number → sha256 of its JSON
    read: int = 0  # how many records were read from revisions (not carried over)
    # The objects whose record is not the parent's: its record there (None: it had none).
    # None when there was no parent to start from (every record was read).
    replaced: dict[int, Record | None] | None = None


@dataclass
class SiteState:
    entities: LiveRecords
    facts: LiveRecords
    faqs: LiveRecords
    # Every entity of the brand, published or not: IRI by primary key.
    entity_iris: dict[int, str] = field(default_factory=dict)
    key: str = ""

    @property
    def from_parent(self) -> bool:
        """Whether it started from a parent's records (else every record was read)."""
        return self.entities.replaced is not None

    def saved(self) -> dict:
        """What a release keeps (``Release.site_state``)."""
        return {
            "key": self.key,
            "chunks": {
                kind: sorted([number, sha256] for number, sha256 in records.chunks.items())
                for kind, records in self.by_kind().items()
            },
        }

    def records_drop(self) -> None:
        """Let the records go (what is saved is the chunks)."""
        for records in self.by_kind().values():
            records.records = {}

    def by_kind(self) -> dict[str, LiveRecords]:
        return {"entity": self.entities, "fact": self.facts, "faq": self.faqs}

    @property
    def read(self) -> int:
        return sum(r.read for r in self.by_kind().values())


def state_artifacts(saved: dict) -> Iterator[str]:
    """The sha256 of every chunk a saved state lists (kept by the artifact store's pruning)."""
    for chunks in (saved or {}).get("chunks", {}).values():
        for _, sha256 in chunks:
            yield sha256


def chunk_of(pk: int) -> int:
    return pk // CHUNK_SPAN


def live_rows(model, brand: Brand, pks: Iterable[int]) -> Iterator[tuple]:
    """(pk, live revision id, last published at, snapshot, its JSON) of the objects ``pks``."""
    pks = sorted(pks)
    for start in range(0, len(pks), READ_BATCH):
        rows = (
            model.objects.filter(pk__in=pks[start : start + READ_BATCH])
            .order_by("pk")
            .annotate(raw=json_text("live_revision__content"))
            .values_list("pk", "live_revision_id", "last_published_at", "raw")
        )
        for pk, revision_id, published_at, raw in rows:
            yield pk, revision_id, published_at, orjson.loads(raw), raw


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def chunk_read(sha256: str) -> list[Record]:
    return orjson.loads(artifact_read(sha256))


def records_load(
    kind: str,
    brand: Brand,
    live: dict[int, tuple[int, datetime | None]],
    previous: dict[int, str],
    derive: Derive,
    *,
    parent: bool,
) -> LiveRecords:
    """The records of ``live`` ({pk: (revision id, last published at)}): carried over from
    the ``previous`` chunks where they still hold, read from their revisions where not."""
    records: dict[int, Record] = {}
    replaced: dict[int, Record | None] = {}
    changed_chunks: set[int] = set()
    for number, sha256 in previous.items():
        for record in chunk_read(sha256):
            pk = record[0]
            now = live.get(pk)
            if now is not None and now[0] == record[1] and iso(now[1]) == record[2]:
                records[pk] = record
            else:
                replaced[pk] = record
                changed_chunks.add(number)  # changed, unpublished or deleted
    stale = [pk for pk in live if pk not in records]
    for pk in stale:
        replaced.setdefault(pk, None)
    for pk, revision_id, published_at, content, raw in live_rows(MODELS[kind], brand, stale):
        records[pk] = [pk, revision_id, iso(published_at), *derive(content, raw)]
        changed_chunks.add(chunk_of(pk))
    chunks = {n: s for n, s in previous.items() if n not in changed_chunks}
    members: dict[int, list[Record]] = {}
    for pk in sorted(records):
        if chunk_of(pk) in changed_chunks:
            members.setdefault(chunk_of(pk), []).append(records[pk])
    for number, chunk in members.items():
        chunks[number], _ = artifact_put(orjson.dumps(chunk))
    return LiveRecords(
        records=dict(sorted(records.items())),
        chunks=chunks,
        read=len(stale),
        replaced=replaced if parent else None,
    )


def site_state_load(
    *,
    brand: Brand,
    previous: dict | None,
    derive_entity: Derive,
    derive_statement: Derive,
) -> SiteState:
    """The records of the brand's live objects, starting from a ``previous`` release's state
    (``Release.site_state``) when it has one made the same way."""
    key = state_key(brand)
    old_chunks = (previous or {}).get("chunks", {}) if (previous or {}).get("key") == key else {}
    entity_iris: dict[int, str] = {}
    live: dict[str, dict[int, tuple[int, datetime | None]]] = {k: {} for k in MODELS}
    rows = Entity.objects.filter(brand=brand).values_list(
        "pk", "iri", "live_revision_id", "last_published_at"
    )
    for pk, iri, revision_id, published_at in rows.iterator(chunk_size=10000):
        entity_iris[pk] = iri
        if revision_id is not None:
            live["entity"][pk] = (revision_id, published_at)
    for kind in ("fact", "faq"):
        rows = (
            MODELS[kind]
            .objects.filter(brand=brand, live_revision__isnull=False)
            .values_list("pk", "live_revision_id", "last_published_at")
        )
        for pk, revision_id, published_at in rows.iterator(chunk_size=10000):
            live[kind][pk] = (revision_id, published_at)
    loaded = {
        kind: records_load(
            kind,
            brand,
            live[kind],
            {number: sha256 for number, sha256 in old_chunks.get(kind, [])},
            derive_entity if kind == "entity" else derive_statement,
            parent=bool(old_chunks),
        )
        for kind in MODELS
    }
    return SiteState(
        entities=loaded["entity"],
        facts=loaded["fact"],
        faqs=loaded["faq"],
        entity_iris=entity_iris,
        key=key,
    )
