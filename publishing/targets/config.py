"""A target's ``config`` as brand users may set it, checked the same way when saved and deployed.

* directory: ``{"folder": "<name>"}``: one path segment (letters, digits, ``-``, ``_``, ``.``;
  not ``.`` or ``..`` or a leading dot), empty for the brand's own folder. It is deployed to
  ``SOURCEBOOK_SITE_ROOT/<brand slug>/<folder>``, so no brand reaches another's. An
  operator's directory (``publish --out DIR``) is kept in ``Target.operator_path``, which no
  form or API exposes.
* s3: ``bucket``, ``endpoint_url``, ``region_name``, ``location``, ``access_key_env``,
  ``secret_key_env``. The endpoint must reach a public address (or one the operator allowed
  in ``SOURCEBOOK_EGRESS_ALLOW``); the key variables must be listed by the operator in
  ``SOURCEBOOK_CREDENTIAL_ENV``.
* webhook: ``url`` (a public http(s) address) and ``events``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from config.credentials import credential_env_problem
from config.egress import egress_url_problem
from publishing.targets.errors import TargetConfigError

FOLDER_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
DIRECTORY_KEYS = frozenset({"folder"})
S3_KEYS = frozenset(
    {"bucket", "endpoint_url", "region_name", "location", "access_key_env", "secret_key_env"}
)
WEBHOOK_KEYS = frozenset({"url", "events"})
DEFAULT_REGION = "us-east-1"


def folder_problem(folder: Any) -> str | None:
    """Why ``folder`` is not one safe path segment, or None ("" is the brand's own folder)."""
    if not isinstance(folder, str):
        return "must be a string"
    if folder == "":
        return None
    if folder in (".", "..") or not FOLDER_RE.fullmatch(folder):
        return (
            f'is not a folder name: "{folder}" (one name of letters, digits, "-", "_" and ".", '
            "not starting with a dot; no slashes, no absolute paths, no ..)"
        )
    return None


def target_config_clean(
    *, brand, kind: str, config: Any, name: str = "", check_addresses: bool = True
) -> dict:
    """The cleaned ``config`` of a target of ``brand`` and ``kind``; TargetConfigError if bad.

    Used by the admin's target form and again before every deploy. ``check_addresses``
    resolves URLs and refuses non-public addresses (a host that does not resolve now is
    accepted: it is checked again at every connection).
    """
    label = f'{kind} target "{name}" (brand {brand})' if name else f"{kind} target of {brand}"

    def error(key: str, problem: str) -> TargetConfigError:
        return TargetConfigError(f"{label[0].upper()}{label[1:]}: {key} {problem}")

    if not isinstance(config, dict):
        raise error("config", "must be a JSON object")
    known = {"directory": DIRECTORY_KEYS, "s3": S3_KEYS, "webhook": WEBHOOK_KEYS}.get(kind)
    if known is None:
        raise error("kind", f'"{kind}" is not known')
    if kind == "directory" and "path" in config:
        raise error(
            'config key "path"',
            "is not accepted: a directory target deploys to its brand's folder under the "
            'site root; give {"folder": "<name>"} (an operator deploys elsewhere with '
            "`manage.py publish SLUG --out DIR`)",
        )
    unknown = sorted(set(config) - known)
    if unknown:
        # A misspelt "location" would otherwise make the whole bucket the target's prefix.
        raise error(
            f'config key "{unknown[0]}"', f"is not known (known keys: {', '.join(sorted(known))})"
        )

    if kind == "directory":
        folder = config.get("folder") or ""
        problem = folder_problem(folder)
        if problem:
            raise error('config key "folder"', problem)
        return {"folder": folder} if folder else {}

    if kind == "webhook":
        cleaned: dict[str, Any] = dict(config)
        url = config.get("url")
        if not isinstance(url, str) or not url:
            raise error('config key "url"', "is missing")
        problem = egress_url_problem(url, unresolved_ok=True) if check_addresses else None
        if problem:
            raise error('config key "url"', f"is refused: {problem}")
        return cleaned

    def optional_str(key: str) -> str | None:
        value = config.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise error(f'config key "{key}"', "must be a string")
        return value.strip() or None

    bucket = optional_str("bucket")
    if bucket is None:
        raise error('config key "bucket"', "is missing")
    if "/" in bucket or any(char.isspace() for char in bucket):
        raise error('config key "bucket"', f'is not a bucket name: "{bucket}"')

    endpoint_url = optional_str("endpoint_url")
    if endpoint_url is not None:
        parsed = urlparse(endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise error('config key "endpoint_url"', f'is not an http(s) URL: "{endpoint_url}"')
        problem = egress_url_problem(endpoint_url, unresolved_ok=True) if check_addresses else None
        if problem:
            raise error('config key "endpoint_url"', f"is refused: {problem}")

    location = optional_str("location") or ""
    if location.startswith("/"):
        raise error('config key "location"', "must not start with a slash")
    location = location.rstrip("/")
    if location and any(part in ("", ".", "..") for part in location.split("/")):
        raise error('config key "location"', f'is not a clean prefix: "{location}"')

    access_key_env = optional_str("access_key_env")
    secret_key_env = optional_str("secret_key_env")
    if (access_key_env is None) != (secret_key_env is None):
        missing = "secret_key_env" if secret_key_env is None else "access_key_env"
        raise error(
            f'config key "{missing}"',
            "is missing (give both access_key_env and secret_key_env, or neither)",
        )
    for key, value in (("access_key_env", access_key_env), ("secret_key_env", secret_key_env)):
        if value is not None:
            problem = credential_env_problem(value)
            if problem:
                raise error(f'config key "{key}"', problem)

    cleaned = {"bucket": bucket, "region_name": optional_str("region_name") or DEFAULT_REGION}
    if endpoint_url is not None:
        cleaned["endpoint_url"] = endpoint_url
    if location:
        cleaned["location"] = location
    if access_key_env is not None:
        cleaned["access_key_env"] = access_key_env
        cleaned["secret_key_env"] = secret_key_env
    return cleaned
