"""System checks: a configured broker that cannot be reached is an error, never a fallback;
a weak secret key with debug off is an error, not a warning."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.checks.security.base import SECRET_KEY_WARNING_MSG, _check_secret_key


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


@register(Tags.security)
def secret_keys_strong(app_configs=None, **kwargs):
    """Django's security.W009/W025 (short, low-entropy or ``django-insecure-`` keys) as errors
    whenever debug is off, on every command, not only ``check --deploy``. config/settings.py
    refuses a weak SECRET_KEY as it loads; this covers other settings modules and the
    fallbacks used for key rotation."""
    if settings.DEBUG:
        return []
    keys = [("SECRET_KEY", getattr(settings, "SECRET_KEY", ""))]
    keys += [
        (f"SECRET_KEY_FALLBACKS[{index}]", key)
        for index, key in enumerate(getattr(settings, "SECRET_KEY_FALLBACKS", []))
    ]
    return [
        Error(
            SECRET_KEY_WARNING_MSG % name,
            hint='Generate one: python -c "import secrets; print(secrets.token_urlsafe(50))"',
            id="sourcebook.E002",
        )
        for name, key in keys
        if not _check_secret_key(str(key))
    ]
