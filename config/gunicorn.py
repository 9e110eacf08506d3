"""gunicorn's settings: ``gunicorn config.wsgi -c python:config.gunicorn [--bind … --workers …]``.

Options given on the command line still apply (and win over the values below).

``LOG_FORMAT=json`` (read from the environment each time the logger is set up, so on a HUP
reload too) turns every line gunicorn writes into one JSON object with the same fields as
Django's records (``settings.LOGGING``): its start-up and error lines ("Starting gunicorn",
"Listening at", "Booting worker", worker timeouts and tracebacks), the access log (with the
method, path, query, status, bytes, duration, remote address and user agent as keys of their
own), Python's warnings, an uncaught exception in the master and any other line a worker
prints. Plain text otherwise, as gunicorn prints it.

The formatters are swapped on gunicorn's own handlers (``logger_class`` below) rather than
replaced by a ``logconfig_dict``: the log files and levels the command line chooses
(``--access-logfile``, ``--error-logfile``, ``--log-level``) keep their meaning.
"""

from __future__ import annotations

import io
import logging
import os
import sys

from gunicorn import glogging

# The fields of settings.LOGGING's "json" formatter (the master does not load Django).
JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d"
JSON_RENAME = {"asctime": "time", "levelname": "level", "name": "logger"}


def json_logs() -> bool:
    return os.environ.get("LOG_FORMAT") == "json"


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(JSON_FORMAT, rename_fields=JSON_RENAME)


def log_uncaught(exc_type, exc, tb) -> None:
    """sys.excepthook under LOG_FORMAT=json: the traceback as one record."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("gunicorn.error").critical(
        "Uncaught exception: %r", exc, exc_info=(exc_type, exc, tb)
    )


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class JsonLines(io.TextIOBase):
    """A worker's sys.stdout/sys.stderr under LOG_FORMAT=json: lines that are JSON objects
    already (log records) pass through; any other line (a print(), gunicorn's echo of the
    error that stopped a worker from booting) is written as a record of its own."""

    def __init__(self, stream, name: str):
        self.stream = stream
        self.name = name
        self.pending = ""
        self.formatter = json_formatter()

    @property
    def encoding(self):
        return getattr(self.stream, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self.write_line(line)
        return len(text)

    def write_line(self, line: str) -> None:
        if not line.strip():
            return
        if not (line.startswith("{") and line.endswith("}")):
            level = logging.ERROR if self.name == "stderr" else logging.INFO
            record = logging.LogRecord(self.name, level, __file__, 0, line, None, None)
            line = self.formatter.format(record)
        self.stream.write(line + "\n")

    def flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            self.write_line(line)
        self.stream.flush()


def post_fork(server, worker) -> None:
    """gunicorn's hook, in each new worker before it loads the application."""
    if json_logs():
        sys.stdout = JsonLines(sys.stdout, "stdout")
        sys.stderr = JsonLines(sys.stderr, "stderr")


class Logger(glogging.Logger):
    """gunicorn's logger; under LOG_FORMAT=json its handlers format records as JSON."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if not json_logs():
            return
        formatter = json_formatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
        # The master never loads Django: give its root logger the same JSON handler, so
        # Python's warnings (py.warnings) and other libraries' records are JSON there too.
        # A worker replaces it with settings.LOGGING's when it loads the application.
        root = logging.getLogger()
        if not any(getattr(handler, "_sourcebook_json", False) for handler in root.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(formatter)
            handler._sourcebook_json = True
            root.addHandler(handler)
        logging.captureWarnings(True)
        sys.excepthook = log_uncaught

    def access(self, resp, req, environ, request_time) -> None:
        if not json_logs():
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            headers = dict(atoms)  # "{name}i" request headers, lower-cased
            fields = {
                "method": atoms["m"],
                "path": atoms["U"],
                "query": atoms["q"] or "",
                "protocol": atoms["H"],
                "status": _as_int(atoms["s"]),
                "bytes": _as_int(atoms["B"]),
                "duration_ms": round(atoms["D"] / 1000, 3),
                "remote_addr": atoms["h"],
                "forwarded_for": headers.get("{x-forwarded-for}i"),
                "user_agent": headers.get("{user-agent}i"),
                "referer": headers.get("{referer}i"),
                "request_id": headers.get("{x-request-id}i"),
            }
            fields = {key: value for key, value in fields.items() if value is not None}
            self.access_log.info(
                "%s %s %s", atoms["m"], environ.get("RAW_URI") or atoms["U"], atoms["s"],
                extra=fields,
            )  # fmt: skip
        except Exception:
            self.exception("Access log record failed")


# gunicorn settings (lower-case names); the command line overrides them.
logger_class = "config.gunicorn.Logger"
# The access log on stdout, the error log on stderr (gunicorn's default), as the container
# and systemd units collect them; --access-logfile/--error-logfile choose files instead.
accesslog = "-"
