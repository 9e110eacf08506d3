"""Manifests as deltas: a manifest row per artifact per range of releases, not per release.

Each brand's ready and deployed releases are read in number order; a path's consecutive
identical rows become one row, visible from the first of those releases (``since``) to the
release that changed or dropped it (``until``; none while current). Rows of failed or
building releases are dropped (a failed release has no manifest; a building one is failed
by the next build).
"""

import django.db.models.deletion
from django.db import migrations, models

FINISHED = ("ready", "deployed")
SAME = ("sha256", "size", "content_type", "kind", "fingerprint", "changed_at")
BATCH = 2000


def manifests_to_intervals(apps, schema_editor):
    Release = apps.get_model("publishing", "Release")
    ReleaseArtifact = apps.get_model("publishing", "ReleaseArtifact")
    db = schema_editor.connection.alias
    rows = ReleaseArtifact.objects.using(db)
    rows.exclude(release__state__in=FINISHED).delete()
    brands = Release.objects.using(db).values_list("brand_id", flat=True).distinct()
    for brand_id in sorted(set(brands)):
        releases = (
            Release.objects.using(db)
            .filter(brand_id=brand_id, state__in=FINISHED)
            .order_by("number")
            .values_list("pk", "number")
        )
        # path → (the row that holds its current interval, what it is)
        current: dict[str, tuple[int, tuple]] = {}
        kept: dict[int, list] = {}  # row id → [since, until]
        for release_id, number in releases:
            redundant: list[int] = []
            seen: set[str] = set()
            values = rows.filter(release_id=release_id).order_by().values_list("pk", "path", *SAME)
            for pk, path, *same in values.iterator(chunk_size=BATCH):
                seen.add(path)
                same = tuple(same)
                held = current.get(path)
                if held is not None and held[1] == same:
                    redundant.append(pk)
                    continue
                if held is not None:
                    kept[held[0]][1] = number  # changed here
                current[path] = (pk, same)
                kept[pk] = [number, None]
            for path in [p for p in current if p not in seen]:  # dropped here
                kept[current.pop(path)[0]][1] = number
            for start in range(0, len(redundant), BATCH):
                rows.filter(pk__in=redundant[start : start + BATCH]).delete()
        by_interval: dict[tuple, list[int]] = {}
        for pk, interval in kept.items():
            by_interval.setdefault(tuple(interval), []).append(pk)
        for (since, until), pks in by_interval.items():
            for start in range(0, len(pks), BATCH):
                rows.filter(pk__in=pks[start : start + BATCH]).update(
                    brand_id=brand_id, since=since, until=until
                )
    if schema_editor.connection.vendor == "postgresql":
        # The rows' new brand references are checked now, not at commit: PostgreSQL alters
        # no table with such checks pending.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0001_initial"),
        ("publishing", "0006_media_assets"),
    ]

    operations = [
        migrations.AddField(
            model_name="releaseartifact",
            name="brand",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="kb.brand",
            ),
        ),
        migrations.AddField(
            model_name="releaseartifact",
            name="since",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="releaseartifact",
            name="until",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(manifests_to_intervals, elidable=False),
        migrations.RemoveConstraint(
            model_name="releaseartifact",
            name="unique_release_path",
        ),
        migrations.AlterModelOptions(
            name="releaseartifact",
            options={"ordering": ["brand", "path"]},
        ),
        migrations.RemoveField(
            model_name="releaseartifact",
            name="release",
        ),
        migrations.AlterField(
            model_name="releaseartifact",
            name="brand",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="kb.brand"
            ),
        ),
        migrations.AlterField(
            model_name="releaseartifact",
            name="since",
            field=models.PositiveIntegerField(),
        ),
        migrations.AddConstraint(
            model_name="releaseartifact",
            constraint=models.UniqueConstraint(
                fields=("brand", "path", "since"), name="unique_artifact_path_since"
            ),
        ),
        migrations.AddIndex(
            model_name="releaseartifact",
            index=models.Index(fields=["brand", "since"], name="publishing_artifact_since"),
        ),
        migrations.AddIndex(
            model_name="releaseartifact",
            index=models.Index(
                condition=models.Q(("until__isnull", False)),
                fields=["brand", "until"],
                name="publishing_artifact_until",
            ),
        ),
    ]
