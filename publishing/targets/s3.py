"""Deploy a release to S3-compatible object storage (AWS S3, MinIO, R2, Ceph …).

The target's ``config``::

    bucket          required
    endpoint_url    optional: the server of an S3-compatible service (AWS when absent)
    region_name     optional, "us-east-1" by default
    location        optional key prefix, without a leading slash ("" = the whole bucket)
    access_key_env  optional: the NAME of the environment variable holding the access key
    secret_key_env  optional: the NAME of the environment variable holding the secret key

Credentials are never stored in the database: without ``access_key_env``/``secret_key_env``
boto3's default credential chain is used (environment, shared files, instance role …).

A deploy is incremental and idempotent: it lists the keys under the prefix, uploads only the
artifacts that are missing or that changed since ``previous`` (the release last deployed to the
target), pages before index files (llms.txt, sitemaps, robots.txt, the graph) so an index
never points at a page not yet there, and then deletes every key under the prefix that is not
in the release — including what a deploy that crashed halfway left behind.

The prefix is owned by the target: anything under it that is not in the release is deleted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from publishing.models import Deployment, Release, Target
from publishing.store import artifact_read
from publishing.targets.errors import TargetConfigError

if TYPE_CHECKING:
    from storages.backends.s3 import S3Storage

CACHE_CONTROL = "public, max-age=300"
DEFAULT_REGION = "us-east-1"

# Uploaded after every page, in this order: an index never points at a page not yet uploaded,
# and robots.txt (which points at the sitemap) comes last.
INDEX_KINDS = ("graph", "llms", "sitemap", "robots")

CONFIG_KEYS = frozenset(
    {"bucket", "endpoint_url", "region_name", "location", "access_key_env", "secret_key_env"}
)

# Manifest rows read per query, and keys per DeleteObjects request (the S3 maximum).
BATCH_SIZE = 1000
DELETE_BATCH_SIZE = 1000


class S3DeleteError(Exception):
    """The server refused to delete some keys (a DeleteObjects answer with per-key errors)."""


def _config_error(target: Target, key: str, problem: str) -> TargetConfigError:
    return TargetConfigError(f'S3 target "{target.name}" (brand {target.brand}): {key} {problem}')


def _optional_str(target: Target, config: dict, key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _config_error(target, f'config key "{key}"', "must be a string")
    return value.strip() or None


def _credential(target: Target, name: str, key: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise _config_error(
            target,
            f'config key "{key}"',
            f"names the environment variable {name}, which is not set",
        )
    return value


def s3_storage(target: Target) -> S3Storage:
    """The storage of an S3 target, built from its config only (not the project's AWS_* settings)."""
    if target.kind != Target.Kind.S3:
        raise _config_error(target, "kind", f'is "{target.kind}", not "s3"')
    config = target.config
    if not isinstance(config, dict):
        raise _config_error(target, "config", "must be a JSON object")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        # A misspelt "location" would otherwise make the whole bucket the target's prefix.
        raise _config_error(
            target,
            f'config key "{unknown[0]}"',
            f"is not known (known keys: {', '.join(sorted(CONFIG_KEYS))})",
        )

    bucket = _optional_str(target, config, "bucket")
    if bucket is None:
        raise _config_error(target, 'config key "bucket"', "is missing")
    if "/" in bucket or any(char.isspace() for char in bucket):
        raise _config_error(target, 'config key "bucket"', f'is not a bucket name: "{bucket}"')

    endpoint_url = _optional_str(target, config, "endpoint_url")
    if endpoint_url is not None:
        parsed = urlparse(endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise _config_error(
                target, 'config key "endpoint_url"', f'is not an http(s) URL: "{endpoint_url}"'
            )

    region_name = _optional_str(target, config, "region_name") or DEFAULT_REGION

    location = _optional_str(target, config, "location") or ""
    if location.startswith("/"):
        raise _config_error(target, 'config key "location"', "must not start with a slash")
    location = location.rstrip("/")
    if location and any(part in ("", ".", "..") for part in location.split("/")):
        raise _config_error(target, 'config key "location"', f'is not a clean prefix: "{location}"')

    access_key_env = _optional_str(target, config, "access_key_env")
    secret_key_env = _optional_str(target, config, "secret_key_env")
    if (access_key_env is None) != (secret_key_env is None):
        missing = "secret_key_env" if secret_key_env is None else "access_key_env"
        raise _config_error(
            target,
            f'config key "{missing}"',
            "is missing (give both access_key_env and secret_key_env, or neither)",
        )
    if access_key_env is not None and secret_key_env is not None:
        access_key = _credential(target, access_key_env, "access_key_env")
        secret_key = _credential(target, secret_key_env, "secret_key_env")
    else:  # boto3's default credential chain
        access_key = secret_key = None

    # Imported here: boto3 takes a tenth of a second to import, which every publish paid.
    from storages.backends.s3 import S3Storage

    return S3Storage(
        bucket_name=bucket,
        endpoint_url=endpoint_url,
        region_name=region_name,
        location=location,
        access_key=access_key,
        secret_key=secret_key,
        # Explicit, so that the project's own AWS_* settings never leak into a target.
        security_token=None,
        session_profile=None,
        object_parameters={},
        gzip=False,
        file_overwrite=True,
        querystring_auth=False,
        default_acl=None,
    )


def _key(location: str, path: str) -> str:
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"Artifact path {path!r} is not a clean relative path")
    return f"{location}/{path}" if location else path


def _artifacts(release: Release) -> Iterator[tuple[str, str, int, str]]:
    """(path, sha256, size, content_type) of the release: pages, then the index files.

    Read in batches by path (keyset), so no cursor stays open during the uploads.
    """
    groups = [release.artifacts.exclude(kind__in=INDEX_KINDS)]
    groups += [release.artifacts.filter(kind=kind) for kind in INDEX_KINDS]
    for group in groups:
        last_path = None
        while True:
            rows = group if last_path is None else group.filter(path__gt=last_path)
            batch = list(
                rows.order_by("path").values_list("path", "sha256", "size", "content_type")[
                    :BATCH_SIZE
                ]
            )
            yield from batch
            if len(batch) < BATCH_SIZE:
                break
            last_path = batch[-1][0]


def _listing(storage: S3Storage) -> dict[str, int]:
    """Every key under the storage's prefix, with its size (ListObjectsV2, paginated)."""
    prefix = f"{storage.location}/" if storage.location else ""
    paginator = storage.connection.meta.client.get_paginator("list_objects_v2")
    keys: dict[str, int] = {}
    for page in paginator.paginate(Bucket=storage.bucket_name, Prefix=prefix):
        for entry in page.get("Contents", ()):
            keys[entry["Key"]] = entry["Size"]
    return keys


def _delete(storage: S3Storage, keys: list[str]) -> Iterator[int]:
    """Delete ``keys`` in batches (DeleteObjects); yield how many each batch deleted."""
    for start in range(0, len(keys), DELETE_BATCH_SIZE):
        batch = keys[start : start + DELETE_BATCH_SIZE]
        answer = storage.bucket.delete_objects(
            Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
        errors = answer.get("Errors", [])
        yield len(batch) - len(errors)
        if errors:
            shown = "; ".join(
                f"{error.get('Key')}: {error.get('Code')} {error.get('Message', '')}".strip()
                for error in errors[:5]
            )
            raise S3DeleteError(
                f"Could not delete {len(errors)} of {len(batch)} keys from bucket "
                f"{storage.bucket_name}: {shown}"
            )


def s3_deploy(
    *, target: Target, release: Release, deployment: Deployment, previous: Release | None
) -> None:
    """Make the target's prefix hold exactly ``release``; count uploads and deletions.

    ``previous`` is the release last deployed successfully to this target (None for the first
    deploy, or to re-upload everything). Errors of boto3 propagate; the deployment's state is
    the caller's to set.
    """
    if release.brand_id != target.brand_id:
        raise ValueError(f"{release} is not a release of the brand of target {target}")
    storage = s3_storage(target)
    existing = _listing(storage)
    previous_sha = dict(previous.artifacts.values_list("path", "sha256")) if previous else {}

    deployment.uploaded = deployment.deleted = 0
    wanted: set[str] = set()
    try:
        for path, sha256, size, content_type in _artifacts(release):
            key = _key(storage.location, path)
            wanted.add(key)
            unchanged = previous_sha.get(path) == sha256
            # A size that differs from the manifest means someone (or a crashed deploy of
            # another release) changed the object: upload it again whatever ``previous`` says.
            if unchanged and existing.get(key) == size:
                continue
            storage.bucket.Object(key).put(
                Body=artifact_read(sha256),
                ContentType=content_type,
                CacheControl=CACHE_CONTROL,
                Metadata={"sha256": sha256},
            )
            deployment.uploaded += 1

        stale = sorted(key for key in existing if key not in wanted)
        for deleted in _delete(storage, stale):
            deployment.deleted += deleted
    finally:
        deployment.save(update_fields=["uploaded", "deleted"])
