"""Keep pytest-xdist workers out of each other's state (loaded with ``-p tests.parallel``).

``make test`` runs the suite in several worker processes. pytest-django already gives each
worker its own test database; this gives each its own var directory (SQLite database, secret
key, media, published sites) and its own Redis database, so a Celery worker started by one
test process never takes a task queued by another. It runs at import, before Django reads its
settings, and changes the environment, which the child processes tests start inherit.
"""

import os
import re

_PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _isolate(worker: str) -> None:
    number = int(worker.removeprefix("gw")) + 1
    var_dir = os.environ.get("SOURCEBOOK_VAR_DIR") or os.path.join(_PROJECT, "var")
    os.environ["SOURCEBOOK_VAR_DIR"] = os.path.join(var_dir, f"xdist-{worker}")
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        url = os.environ.get(name, "")
        match = re.fullmatch(r"(redis://[^/]+)(?:/(\d+))?", url)
        if match:
            # Databases base+1, base+2, …: the unsplit run keeps the base one to itself.
            os.environ[name] = f"{match[1]}/{int(match[2] or 0) + number}"


if os.environ.get("PYTEST_XDIST_WORKER"):
    _isolate(os.environ["PYTEST_XDIST_WORKER"])
