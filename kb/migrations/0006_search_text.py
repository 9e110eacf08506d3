"""The admin's search text on entities, facts and FAQs (kb.search), filled for existing rows,
and on PostgreSQL a trigram index per table so substring search stays fast at catalog size."""

from django.db import migrations, models

from kb.search import entity_search_text, fact_search_text, faq_search_text

BATCH = 2000
TRIGRAM_INDEXES = {"entity": "kb_entity_search_trgm", "fact": "kb_fact_search_trgm",
                   "faq": "kb_faq_search_trgm"}  # fmt: skip


def search_text_fill(apps, schema_editor):
    Entity = apps.get_model("kb", "Entity")
    entities = Entity.objects.select_related("brand").only("slug", "iri", "data", "brand__base_url")
    _fill(Entity, entities, _entity_text)
    Fact = apps.get_model("kb", "Fact")
    _fill(Fact, Fact.objects.all(), fact_search_text)
    FAQ = apps.get_model("kb", "FAQ")
    _fill(FAQ, FAQ.objects.all(), faq_search_text)


def _entity_text(entity):
    return entity_search_text(
        data=entity.data, slug=entity.slug, iri=entity.iri, base_url=entity.brand.base_url
    )


def _fill(model, queryset, text_of):
    batch = []
    for obj in queryset.order_by("pk").iterator(chunk_size=BATCH):
        obj.search_text = text_of(obj)
        batch.append(obj)
        if len(batch) == BATCH:
            model.objects.bulk_update(batch, ["search_text"])
            batch = []
    model.objects.bulk_update(batch, ["search_text"])


def trigram_indexes_create(apps, schema_editor):
    # pg_trgm serves LIKE '%…%' from a GIN index; SQLite has no such index and scans.
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for model_name, index in TRIGRAM_INDEXES.items():
        table = apps.get_model("kb", model_name)._meta.db_table
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(index)} "
            f"ON {schema_editor.quote_name(table)} USING gin (search_text gin_trgm_ops)"
        )


def trigram_indexes_drop(apps, schema_editor):
    # The extension stays: other database objects may use it, and it is harmless.
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in TRIGRAM_INDEXES.values():
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index)}")


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0005_fact_unit_labels"),
    ]

    operations = [
        migrations.AddField(
            model_name="entity",
            name="search_text",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.AddField(
            model_name="fact",
            name="search_text",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.AddField(
            model_name="faq",
            name="search_text",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(search_text_fill, migrations.RunPython.noop),
        migrations.RunPython(trigram_indexes_create, trigram_indexes_drop),
    ]
