"""Target.operator_path: the operator's directory of a directory target.

Directory targets that ``publish --out DIR`` made (named ``directory DIR``) keep deploying
where they did: their ``config["path"]`` moves to ``operator_path``, which no brand user can
edit. Any other directory target's path was typed by a brand user: it stays in ``config``,
where the deploy refuses it with a message, until an operator moves it or the brand picks a
folder under SOURCEBOOK_SITE_ROOT.
"""

from django.db import migrations, models


def path_to_operator_path(apps, schema_editor):
    Target = apps.get_model("publishing", "Target")
    for target in Target.objects.filter(kind="directory"):
        config = dict(target.config or {}) if isinstance(target.config, dict) else {}
        path = config.pop("path", None)
        if isinstance(path, str) and path and target.name == f"directory {path}"[:100]:
            target.operator_path = path
            target.config = config
            target.save(update_fields=["operator_path", "config"])


def operator_path_to_path(apps, schema_editor):
    Target = apps.get_model("publishing", "Target")
    for target in Target.objects.filter(kind="directory").exclude(operator_path=""):
        target.config = {**(target.config or {}), "path": target.operator_path}
        target.save(update_fields=["config"])


class Migration(migrations.Migration):
    dependencies = [("publishing", "0004_release_graph_parts")]

    operations = [
        migrations.AddField(
            model_name="target",
            name="operator_path",
            field=models.CharField(blank=True, default="", editable=False, max_length=1000),
        ),
        migrations.RunPython(path_to_operator_path, operator_path_to_path),
    ]
