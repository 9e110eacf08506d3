"""The Celery application. Workers: ``celery -A config worker``; beat: ``celery -A config beat``.

Workers and beat log through Django's LOGGING (``setup_logging`` below), so
``LOG_FORMAT=json`` gives one JSON object per line there too. Under it, what Celery would
print outside logging becomes records as well: the worker's banner (with its ``[tasks]``
list), beat's banner, the worker's "Warm shutdown" line and an uncaught exception.
``LOG_FORMAT`` is read when each of these happens, from the environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from celery import Celery, signals
from celery.apps import beat as beat_app
from celery.apps import worker as worker_app
from kombu.utils.objects import cached_property

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# The fields of settings.LOGGING's "json" formatter, for records written before it is set up.
JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d"
JSON_RENAME = {"asctime": "time", "levelname": "level", "name": "logger"}

logger = logging.getLogger("celery.apps.worker")
beat_logger = logging.getLogger("celery.beat")


def json_logs() -> bool:
    return os.environ.get("LOG_FORMAT") == "json"


class Worker(worker_app.Worker):
    """``celery worker``: under LOG_FORMAT=json its banner is one record, not printed art."""

    def emit_banner(self) -> None:
        if not json_logs():
            super().emit_banner()
            return
        app = self.app
        pool = self.pool_cls if isinstance(self.pool_cls, str) else self.pool_cls.__module__
        logger.info(
            "%s v%s starting",
            self.hostname,
            worker_app.VERSION_BANNER,
            extra={
                "hostname": self.hostname,
                "app": app.main,
                "transport": app.connection().as_uri(),
                "results": app.backend.as_uri(),
                "concurrency": self.concurrency,
                "pool": pool.split(".")[-1],
                "task_events": bool(self.task_events),
                "queues": sorted(app.amqp.queues.consume_from or app.amqp.queues),
                "tasks": sorted(name for name in app.tasks if not name.startswith("celery.")),
            },
        )

    def install_platform_tweaks(self, worker) -> None:
        super().install_platform_tweaks(worker)
        if json_logs():
            # Celery prints "worker: Warm shutdown (MainProcess)" on SIGTERM from its signal
            # handler; say it as a record instead (shutdown_record below).
            worker_app.install_worker_term_handler(worker, verbose=False)


class Beat(beat_app.Beat):
    """``celery beat``: under LOG_FORMAT=json its banner is a record (beat_init below)."""

    def run(self) -> None:
        if json_logs():
            self.quiet = True
        super().run()


class SourcebookCelery(Celery):
    @cached_property
    def Worker(self):  # noqa: N802 - Celery's name
        return self.subclass_with_self("config.celery:Worker")

    @cached_property
    def Beat(self):  # noqa: N802 - Celery's name
        return self.subclass_with_self("config.celery:Beat")


app = SourcebookCelery("sourcebook")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(loglevel=None, **kwargs) -> None:
    """Celery adds no handlers of its own: Django's LOGGING (settings.py) is the one
    configuration. ``--loglevel`` still sets the root logger's level, as before."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@signals.beat_init.connect
def beat_banner_record(sender=None, **kwargs) -> None:
    if not json_logs() or sender is None:
        return
    scheduler = sender.get_scheduler(lazy=True)
    beat_logger.info(
        "celery beat v%s is starting.",
        beat_app.VERSION_BANNER,
        extra={
            "transport": sender.app.connection().as_uri(),
            "scheduler": f"{type(scheduler).__module__}.{type(scheduler).__qualname__}",
            "schedule": sender.schedule_filename,
            "max_interval": scheduler.max_interval,
        },
    )


@signals.worker_shutting_down.connect
def shutdown_record(sig=None, how=None, **kwargs) -> None:
    """Sent from the worker's signal handler: written with one os.write, as Celery does
    there, since a logging handler's stream may be in the middle of a write."""
    if not json_logs():
        return
    record = logging.LogRecord(
        "celery.apps.worker", logging.INFO, __file__, 0,
        "worker: %s shutdown (MainProcess)", (how,), None,
    )  # fmt: skip
    record.signal = sig
    line = _format(record)
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.write(sys.__stderr__.fileno(), (line + "\n").encode())


def _format(record: logging.LogRecord) -> str:
    """The record as the root handler formats it, or as settings.LOGGING's JSON formatter
    would (the same fields) when logging is not configured (yet)."""
    for handler in logging.getLogger().handlers:
        if handler.formatter is not None:
            return handler.formatter.format(record)
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(JSON_FORMAT, rename_fields=JSON_RENAME).format(record)


def log_uncaught(exc_type, exc, tb) -> None:
    """sys.excepthook under LOG_FORMAT=json: the traceback as one record, on stderr, even
    when the settings themselves failed to load (so logging is not configured)."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    record = logging.LogRecord(
        "celery", logging.CRITICAL, __file__, 0, "Uncaught exception: %r", (exc,),
        (exc_type, exc, tb),
    )  # fmt: skip
    try:
        sys.stderr.write(_format(record) + "\n")
        sys.stderr.flush()
    except Exception:
        sys.__excepthook__(exc_type, exc, tb)


if json_logs():
    # From here on, not only once logging is set up: a settings error is uncaught too.
    sys.excepthook = log_uncaught
