"""Deploy a release to S3-compatible object storage (AWS S3, MinIO, R2, Ceph …).

The target's ``config``::

    bucket          required
    endpoint_url    optional: the server of an S3-compatible service (AWS when absent)
    region_name     optional, "us-east-1" by default
    location        optional key prefix, without a leading slash ("" = the whole bucket)
    access_key_env  optional: the NAME of the environment variable holding the access key
    secret_key_env  optional: the NAME of the environment variable holding the secret key

Credentials are never stored in the database: without ``access_key_env``/``secret_key_env``
boto3's default credential chain is used (environment, shared files, instance role …). The
two may only name variables the operator listed in ``SOURCEBOOK_CREDENTIAL_ENV`` (checked
when saved and again here), and the endpoint must be a public address or one the operator
allowed in ``SOURCEBOOK_EGRESS_ALLOW``: every connection goes to an address checked by
:mod:`config.egress`.

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

from config.credentials import credential_env_problem
from config.egress import egress_botocore_pin
from publishing.models import Deployment, Release, ReleaseArtifact, Target
from publishing.store import artifact_read
from publishing.targets.config import S3_KEYS, target_config_clean
from publishing.targets.errors import TargetConfigError

if TYPE_CHECKING:
    from storages.backends.s3 import S3Storage

CACHE_CONTROL = "public, max-age=300"

# Uploaded after every page, in this order: an index never points at a page not yet uploaded,
# and robots.txt (which points at the sitemap) comes last.
INDEX_KINDS = ("graph", "llms", "sitemap", "robots")

CONFIG_KEYS = S3_KEYS

# Manifest rows read per query, and keys per DeleteObjects request (the S3 maximum).
BATCH_SIZE = 1000
DELETE_BATCH_SIZE = 1000


class S3DeleteError(Exception):
    """The server refused to delete some keys (a DeleteObjects answer with per-key errors)."""


def _config_error(target: Target, key: str, problem: str) -> TargetConfigError:
    return TargetConfigError(f'S3 target "{target.name}" (brand {target.brand}): {key} {problem}')


def _credential(target: Target, name: str, key: str) -> str:
    # Checked again here (target_config_clean did): only variables the operator listed.
    problem = credential_env_problem(name)
    if problem:
        raise _config_error(target, f'config key "{key}"', problem)
    value = os.environ.get(name)
    if not value:
        raise _config_error(
            target,
            f'config key "{key}"',
            f"names the environment variable {name}, which is not set",
        )
    return value


def _egress_storage_class():
    from storages.backends.s3 import S3Storage

    class EgressS3Storage(S3Storage):
        """S3Storage whose boto3 clients connect only to checked addresses (config.egress)."""

        @property
        def connection(self):
            resource = super().connection
            egress_botocore_pin(resource.meta.client)
            return resource

        @property
        def unsigned_connection(self):
            resource = super().unsigned_connection
            egress_botocore_pin(resource.meta.client)
            return resource

    return EgressS3Storage


def s3_storage(target: Target) -> S3Storage:
    """The storage of an S3 target, built from its config only (not the project's AWS_* settings).

    The config is checked by :func:`~publishing.targets.config.target_config_clean` (as when
    it was saved), and the storage's connections go through :mod:`config.egress`.
    """
    if target.kind != Target.Kind.S3:
        raise _config_error(target, "kind", f'is "{target.kind}", not "s3"')
    config = target_config_clean(
        brand=target.brand, kind=target.kind, config=target.config, name=target.name
    )
    if "access_key_env" in config:
        access_key = _credential(target, config["access_key_env"], "access_key_env")
        secret_key = _credential(target, config["secret_key_env"], "secret_key_env")
    else:  # boto3's default credential chain
        access_key = secret_key = None

    # Imported here: boto3 takes a tenth of a second to import, which every publish paid.
    return _egress_storage_class()(
        bucket_name=config["bucket"],
        endpoint_url=config.get("endpoint_url"),
        region_name=config["region_name"],
        location=config.get("location", ""),
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
    # Only the rows the two manifests do not share can differ (see ReleaseArtifact).
    previous_sha: dict[str, str] = {}
    different: set[str] | None = None
    if previous is not None:
        rows = ReleaseArtifact.objects
        previous_sha = dict(rows.not_in_release(previous, release).values_list("path", "sha256"))
        different = set(rows.not_in_release(release, previous).values_list("path", flat=True))

    deployment.uploaded = deployment.deleted = 0
    wanted: set[str] = set()
    try:
        for path, sha256, size, content_type in _artifacts(release):
            key = _key(storage.location, path)
            wanted.add(key)
            unchanged = different is not None and (
                path not in different or previous_sha.get(path) == sha256
            )
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
