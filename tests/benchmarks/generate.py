"""Bulk generation of the synthetic brand: rows equal to what the services would create.

Creating 100,000 products through ``entity_create`` + ``object_publish`` would take far
longer than the publish it prepares (each one validates, locks, counts revisions and logs
in queries of its own), so the brand and its Organization are made through the services
and everything else is inserted in bulk (``executemany``, see ``RowInserter``) as the rows
those services leave behind, for each product:

* an ``Entity`` (iri, slug, label, primary_type, types, stored ``data``, ``search_text``
  as ``kb.search`` makes it, version 1, status published, latest and live revision = its
  revision 1, first/last published now);
* its ``Revision`` 1 (the ``snapshot()``, ``object_repr`` = ``str(entity)``, the import's
  message);
* an ``EntityLink`` (product —brand→ organization);
* two ``AuditEntry`` rows (create, publish {"revision": 1});

and the same (minus links) for each fact and FAQ. ``test_generator.py`` checks that these
rows equal the services' rows for a few products. Run as a program against the database the
environment names (``DATABASE_URL`` or ``SOURCEBOOK_VAR_DIR``)::

    python -m tests.benchmarks.generate --size 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from itertools import islice
from typing import Any

CHUNK = 2000

Progress = Callable[[int], None]


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def brand_and_organization(slug: str | None = None):
    """The brand and its Organization, through the real services (import + publish)."""
    from kb.importing import source_from_bytes
    from kb.services.brands import brand_create
    from kb.services.imports import jsonld_import
    from tests.benchmarks import catalog

    brand = brand_create(
        slug=slug or catalog.SLUG,
        name=catalog.NAME,
        base_url=catalog.BASE_URL,
        languages=catalog.LANGUAGES,
    )
    document = catalog.jsonld_document([catalog.organization_node()])
    source = source_from_bytes("organization.jsonld", json.dumps(document).encode())
    jsonld_import(brand=brand, sources=[source], publish=True)
    return brand


class RowInserter:
    """``INSERT … VALUES`` with ``executemany`` and ids chosen up front (max id + 1 on).

    Rows are dicts of column (attname) → Python value, converted per field as the ORM would
    (JSON, dates and times, UUIDs) but without building model instances or compiling SQL
    per batch: several times faster than ``bulk_create`` for hundreds of thousands of rows.
    Chosen ids let rows point at each other before they exist (foreign keys are deferred to
    the commit); ``sequences_reset`` moves PostgreSQL's sequences past them.
    """

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.next_id: dict[type, int] = {}

    def ids(self, model, count: int) -> range:
        from django.db.models import Max

        if model not in self.next_id:
            self.next_id[model] = (model.objects.aggregate(n=Max("pk"))["n"] or 0) + 1
        start = self.next_id[model]
        self.next_id[model] = start + count
        return range(start, start + count)

    def converter(self, field) -> Callable[[Any], Any]:
        from django.db import models

        ops = self.connection.ops
        if isinstance(field, models.JSONField):
            return lambda value: ops.adapt_json_value(value, field.encoder)
        if isinstance(field, models.DateTimeField):
            return ops.adapt_datetimefield_value
        if isinstance(field, models.DateField):
            return ops.adapt_datefield_value
        if isinstance(field, models.UUIDField):
            return lambda value: field.get_db_prep_value(value, self.connection)
        return lambda value: value

    def insert(self, model, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        fields = model._meta.concrete_fields
        columns = ", ".join(self.connection.ops.quote_name(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ({marks})"
        plan = [(f.attname, self.converter(f), f.get_default()) for f in fields]
        values = [
            tuple(convert(row[name]) if name in row else default for name, convert, default in plan)
            for row in rows
        ]
        with self.connection.cursor() as cursor:
            for start in range(0, len(values), CHUNK):
                cursor.executemany(sql, values[start : start + CHUNK])

    def sequences_reset(self) -> None:
        from django.core.management.color import no_style

        statements = self.connection.ops.sequence_reset_sql(no_style(), list(self.next_id))
        with self.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)


def snapshot_of(model, row: dict[str, Any]) -> dict[str, Any]:
    """``RevisionedModel.snapshot()`` of an object given as a row dict."""
    content = {}
    for name in model.snapshot_fields:
        field = model._meta.get_field(name)
        value = row[field.attname]
        content[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return content


class RowWriter:
    """The rows the services leave for new, published products, facts and FAQs."""

    def __init__(self, brand) -> None:
        from django.contrib.contenttypes.models import ContentType
        from django.utils import timezone

        from kb.models import FAQ, Entity, Fact
        from tests.benchmarks import catalog

        self.brand = brand
        self.now = timezone.now()
        self.types = {m: ContentType.objects.get_for_model(m).pk for m in (Entity, Fact, FAQ)}
        self.org_pk = Entity.objects.get(brand=brand, iri=catalog.ORG_IRI).pk
        self.entity_pk: dict[int, int] = {}
        self.inserter = RowInserter()

    def workflow(self, pk: int, revision_pk: int) -> dict[str, Any]:
        """The columns ``entity_create``/``statement_create`` + ``object_publish`` leave."""
        return {
            "id": pk,
            "brand_id": self.brand.pk,
            "status": "published",
            "version": 1,
            "latest_revision_id": revision_pk,
            "live_revision_id": revision_pk,
            "first_published_at": self.now,
            "last_published_at": self.now,
            "created_at": self.now,
            "updated_at": self.now,
        }

    def objects(self, model, rows: list[dict], reprs: list[str], message: str) -> None:
        """Insert the objects (ids and revision ids chosen here), their revisions, audit."""
        from kb.models import Revision

        pks = self.inserter.ids(model, len(rows))
        revision_pks = self.inserter.ids(Revision, len(rows))
        for row, pk, revision_pk in zip(rows, pks, revision_pks, strict=True):
            row.update(self.workflow(pk, revision_pk))
        self.inserter.insert(model, rows)
        revisions = [
            {
                "id": revision_pk,
                "brand_id": self.brand.pk,
                "content_type_id": self.types[model],
                "object_id": row["id"],
                "number": 1,
                "content": snapshot_of(model, row),
                "object_repr": text[:500],
                "created_at": self.now,
                "message": message,
            }
            for row, text, revision_pk in zip(rows, reprs, revision_pks, strict=True)
        ]
        self.inserter.insert(Revision, revisions)
        self.audit(model, rows, reprs)

    def audit(self, model, rows: list[dict], reprs: list[str]) -> None:
        """The create and publish entries the services log."""
        from kb.models import AuditEntry

        entries = []
        for row, text in zip(rows, reprs, strict=True):
            common = {
                "brand_id": self.brand.pk,
                "content_type_id": self.types[model],
                "object_id": row["id"],
                "object_repr": text[:500],
                "timestamp": self.now,
            }
            entries.append({**common, "action": "create", "data": {}})
            entries.append({**common, "action": "publish", "data": {"revision": 1}})
        pks = self.inserter.ids(AuditEntry, len(entries))
        for entry, pk in zip(entries, pks, strict=True):
            entry["id"] = pk
        self.inserter.insert(AuditEntry, entries)

    def products(self, items: list) -> None:
        from kb.models import Entity, EntityLink
        from kb.search import entity_search_text
        from tests.benchmarks import catalog

        rows = [
            {
                "uuid": uuid.uuid5(uuid.NAMESPACE_URL, item.iri),
                "iri": item.iri,
                "slug": item.slug,
                "types": ["Product"],
                "primary_type": "Product",
                "label": item.label,
                "data": catalog.stored_data(item),
            }
            for item in items
        ]
        for row in rows:  # as entity_create's refresh_denormalized
            row["search_text"] = entity_search_text(
                data=row["data"], slug=row["slug"], iri=row["iri"], base_url=self.brand.base_url
            )
        reprs = [f"{row['label'] or row['slug']} ({row['primary_type']})" for row in rows]
        self.objects(Entity, rows, reprs, f"Imported from {catalog.IMPORT_FILE}")
        links = [
            {"brand_id": self.brand.pk, "source_id": row["id"], "target_id": self.org_pk,
             "property": "brand"}
            for row in rows
        ]  # fmt: skip
        for link, pk in zip(links, self.inserter.ids(EntityLink, len(links)), strict=True):
            link["id"] = pk
        self.inserter.insert(EntityLink, links)
        self.entity_pk.update(
            {item.number: row["id"] for item, row in zip(items, rows, strict=True)}
        )

    def facts(self, specs: list) -> None:
        from kb.models import Fact
        from kb.search import FACT_SEARCH_FIELDS, statement_search_text

        rows = [
            {
                "key": s.key,
                "about_id": self.entity_pk[s.about],
                "statement": s.statement,
                "value": s.value,
                "unit": s.unit,
                "unit_labels": {},
                "check_cues": [],
                "source_url": s.source_url,
                "source_title": s.source_title,
                "as_of": date.fromisoformat(s.as_of),
                "valid_until": None,
            }
            for s in specs
        ]
        for row in rows:  # as statement_create's refresh_search_text
            fields = {name: row[name] for name in FACT_SEARCH_FIELDS}
            row["search_text"] = statement_search_text(fields=fields)
        reprs = [self.brand.localize(r["statement"])[:80] or r["key"] for r in rows]
        self.objects(Fact, rows, reprs, "Created")

    def faqs(self, specs: list) -> None:
        from kb.models import FAQ
        from kb.search import FAQ_SEARCH_FIELDS, statement_search_text

        rows = [
            {
                "key": s.key,
                "about_id": self.entity_pk[s.about],
                "question": s.question,
                "answer": s.answer,
                "order": s.order,
            }
            for s in specs
        ]
        for row in rows:  # as statement_create's refresh_search_text
            fields = {name: row[name] for name in FAQ_SEARCH_FIELDS}
            row["search_text"] = statement_search_text(fields=fields)
        reprs = [self.brand.localize(r["question"])[:80] or r["key"] for r in rows]
        self.objects(FAQ, rows, reprs, "Created")


def generate(brand, size: int, progress: Progress | None = None) -> dict[str, int]:
    """Bulk-insert ``size`` products with their facts and FAQs into ``brand`` (one transaction)."""
    from django.db import transaction

    from tests.benchmarks import catalog

    writer = RowWriter(brand)
    counts = {"products": 0, "facts": 0, "faqs": 0}
    with transaction.atomic():
        for chunk in _chunks(catalog.products(size), CHUNK):
            writer.products(chunk)
            counts["products"] += len(chunk)
            if progress:
                progress(len(chunk))
        for chunk in _chunks(catalog.facts(size), CHUNK):
            writer.facts(chunk)
            counts["facts"] += len(chunk)
        for chunk in _chunks(catalog.faqs(size), CHUNK):
            writer.faqs(chunk)
            counts["faqs"] += len(chunk)
        writer.inserter.sequences_reset()
    return counts


def main(argv: list[str] | None = None) -> int:
    """Migrate the database, create the brand and its organization, bulk-insert the rest;
    print one JSON line with the counts and the seconds taken by the bulk insert."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args(argv)
    _django_setup()
    from django.core.management import call_command
    from tqdm import tqdm

    call_command("migrate", verbosity=0, interactive=False)
    started = time.perf_counter()
    brand = brand_and_organization()
    with tqdm(total=args.size, unit="product", desc=f"Generating N={args.size}") as bar:
        counts = generate(brand, args.size, bar.update)
    counts["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
