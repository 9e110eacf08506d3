"""System checks: a configured broker that cannot be reached is an error, never a fallback."""

from django.conf import settings
from django.core.checks import Error, register


@register("broker", deploy=True)
def broker_reachable(app_configs=None, **kwargs):
    url = settings.CELERY_BROKER_URL
    if not url:
        return []
    from config.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as error:  # any transport error means the same: no broker
        return [
            Error(
                f"CELERY_BROKER_URL is set but the broker cannot be reached: {error}",
                hint="Start Redis, fix CELERY_BROKER_URL, or unset it to run tasks in-process.",
                id="sourcebook.E001",
            )
        ]
    return []
