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
# What is done with each record as it is loaded.
Take = Callable[[Record], None]


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
    """The chunks one kind of object's records are stored in, and what changed since the
    parent. The records themselves are handed out as they are loaded, never held together
    (see ``records_load``)."""

    chunks: dict[int, str]  # chunk number → sha256 of its JSON
    read: int = 0  # how many records were read from revisions (not carried over)
    # The objects whose record is not the parent's: its record there (None: it had none),
    # and their record now (when they have one). None when there was no parent to start
    # from (every record was read).
    replaced: dict[int, Record | None] | None = None
    current: dict[int, Record] = field(default_factory=dict)


@dataclass
class SiteState:
    entities: LiveRecords
    facts: LiveRecords
    faqs: LiveRecords
    # The brand's entities that have no live revision: IRI by primary key.
    unpublished_iris: dict[int, str] = field(default_factory=dict)
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
    take: Take,
    *,
    parent: bool,
) -> LiveRecords:
    """The records of ``live`` ({pk: (revision id, last published at)}), carried over from
    the ``previous`` chunks where they still hold and read from their revisions where not,
    each given to ``take`` in primary key order, a chunk at a time. Held all at once while
    the content was made of them, at 100,000 products they left 150 MB of the build's memory
    free but unusable to it (and its forked workers copied it)."""
    loaded = LiveRecords(chunks={}, replaced={} if parent else None)
    replaced: dict[int, Record | None] = {}
    members_of: dict[int, list[int]] = {}
    for pk in sorted(live):
        members_of.setdefault(chunk_of(pk), []).append(pk)
    for number in sorted(set(previous) | set(members_of)):
        records: dict[int, Record] = {}
        changed = False
        if number in previous:
            for record in chunk_read(previous[number]):
                pk = record[0]
                now = live.get(pk)
                if now is not None and now[0] == record[1] and iso(now[1]) == record[2]:
                    records[pk] = record
                else:
                    replaced[pk] = record  # changed, unpublished or deleted
                    changed = True
        stale = [pk for pk in members_of.get(number, ()) if pk not in records]
        for pk in stale:
            replaced.setdefault(pk, None)
        for pk, revision_id, published_at, content, raw in live_rows(MODELS[kind], brand, stale):
            records[pk] = [pk, revision_id, iso(published_at), *derive(content, raw)]
        loaded.read += len(stale)
        chunk = [records[pk] for pk in sorted(records)]
        if not (changed or stale):
            loaded.chunks[number] = previous[number]
        elif chunk:
            loaded.chunks[number], _ = artifact_put(orjson.dumps(chunk))
        if parent:
            loaded.current.update((pk, records[pk]) for pk in replaced if pk in records)
        for record in chunk:
            take(record)
    if parent:
        loaded.replaced = replaced
    return loaded


def site_state_load(
    *,
    brand: Brand,
    previous: dict | None,
    derive_entity: Derive,
    derive_statement: Derive,
    take: dict[str, Take],
) -> SiteState:
    """The records of the brand's live objects, starting from a ``previous`` release's state
    (``Release.site_state``) when it has one made the same way: each given to the ``take``
    of its kind, the entities first."""
    key = state_key(brand)
    old_chunks = (previous or {}).get("chunks", {}) if (previous or {}).get("key") == key else {}
    unpublished = dict(
        Entity.objects.filter(brand=brand, live_revision__isnull=True).values_list("pk", "iri")
    )
    loaded: dict[str, LiveRecords] = {}
    for kind, model in MODELS.items():
        rows = model.objects.filter(brand=brand, live_revision__isnull=False).values_list(
            "pk", "live_revision_id", "last_published_at"
        )
        live = {
            pk: (revision_id, published_at)
            for pk, revision_id, published_at in rows.iterator(chunk_size=10000)
        }
        loaded[kind] = records_load(
            kind,
            brand,
            live,
            {number: sha256 for number, sha256 in old_chunks.get(kind, [])},
            derive_entity if kind == "entity" else derive_statement,
            take[kind],
            parent=bool(old_chunks),
        )
        del live
    return SiteState(
        entities=loaded["entity"],
        facts=loaded["fact"],
        faqs=loaded["faq"],
        unpublished_iris=unpublished,
        key=key,
    )
