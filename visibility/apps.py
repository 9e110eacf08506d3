from django.apps import AppConfig


class VisibilityConfig(AppConfig):
    name = "visibility"
    verbose_name = "AI visibility"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete

        from visibility.models import PromptSet
        from visibility.services import prompt_set_schedule_remove

        # Also when a brand is deleted (a cascade calls no service): no orphan beat entry.
        post_delete.connect(prompt_set_schedule_remove, sender=PromptSet, weak=False)
