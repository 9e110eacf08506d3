"""The periodic tasks of publishing, stored for django-celery-beat (visible in the admin)."""

from django.db import migrations

SCHEDULES = {
    "publish-scheduled": (
        "publishing.publish_scheduled",
        "Every minute: publish what is scheduled, take expired content offline, and request "
        "a release of every brand touched.",
    ),
    "redispatch-pending-publish-requests": (
        "publishing.redispatch_pending",
        "Every minute: send publish requests the broker never got (or a dead builder left) "
        "to the workers again.",
    ),
}


def create(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = interval_model.objects.get_or_create(every=60, period="seconds")
    for name, (task, description) in SCHEDULES.items():
        task_model.objects.update_or_create(
            name=name,
            defaults={"task": task, "interval": every_minute, "description": description},
        )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("publishing", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
