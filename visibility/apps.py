from django.apps import AppConfig


class VisibilityConfig(AppConfig):
    name = "visibility"
    verbose_name = "AI visibility"
    default_auto_field = "django.db.models.BigAutoField"
