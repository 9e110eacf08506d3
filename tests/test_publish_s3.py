"""The S3 target against a real S3-compatible server (moto in server mode, over HTTP).

Judged with an independent boto3 client (and plain HTTP), never through the code under test.
"""

from __future__ import annotations

import copy
import hashlib
import urllib.request
from collections import Counter

import pytest
from django.utils import timezone

from publishing.models import Deployment, Release, ReleaseArtifact, Target
from publishing.store import artifact_put
from publishing.targets import s3
from publishing.targets.errors import TargetConfigError
from publishing.targets.s3 import s3_deploy, s3_storage
from tests import s3_server as moto_s3
from tests.s3_server import s3_bucket, s3_server  # noqa: F401

pytestmark = pytest.mark.django_db

HTML = "text/html; charset=utf-8"
MARKDOWN = "text/markdown; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSONLD = "application/ld+json"
XML = "application/xml"

# path: (bytes, content type, kind)
FIRST = {
    "products/green/index.html": (b"<h1>Green tea</h1>", HTML, "page"),
    "products/green/index.md": (b"# Green tea\n", MARKDOWN, "markdown"),
    "products/black/index.html": (b"<h1>Black tea</h1>", HTML, "page"),
    "zh-Hans/products/green/index.html": ("<h1>绿茶</h1>".encode(), HTML, "page"),
    "llms.txt": (b"# Acme Tea\n- [Green](products/green/index.md)\n", TEXT, "llms"),
    "zh-Hans/llms.txt": ("# Acme 茶\n".encode(), TEXT, "llms"),
    "sitemap.xml": (b"<urlset>1</urlset>", XML, "sitemap"),
    "robots.txt": (b"User-agent: *\nSitemap: /sitemap.xml\n", TEXT, "robots"),
    "graph.jsonld": (b'{"@graph": []}', JSONLD, "graph"),
}


@pytest.fixture(autouse=True)
def artifact_store(settings, tmp_path):
    """A per-test artifact store, so tests never share var/artifacts."""
    storages = copy.deepcopy(settings.STORAGES)
    storages["artifacts"]["OPTIONS"] = {
        **storages["artifacts"].get("OPTIONS", {}),
        "location": str(tmp_path / "artifacts"),
    }
    settings.STORAGES = storages
    return tmp_path / "artifacts"


@pytest.fixture
def endpoint(s3_server):  # noqa: F811
    return s3_server


@pytest.fixture
def bucket(s3_bucket):  # noqa: F811
    return s3_bucket


@pytest.fixture
def client(endpoint):
    return moto_s3.s3_client(endpoint)


@pytest.fixture
def target(brand, endpoint, bucket):
    return Target.objects.create(
        brand=brand,
        name="cdn",
        kind=Target.Kind.S3,
        config={
            "bucket": bucket,
            "endpoint_url": endpoint,
            "location": "site",
            "access_key_env": moto_s3.ACCESS_KEY_ENV,
            "secret_key_env": moto_s3.SECRET_KEY_ENV,
        },
    )


def make_release(brand, number, files):
    release = Release.objects.create(brand=brand, number=number, state=Release.State.READY)
    # A whole manifest: the rows of earlier releases end here (see ReleaseArtifact).
    ReleaseArtifact.objects.filter(brand=brand, until=None, since__lt=number).update(until=number)
    for path, (content, content_type, kind) in files.items():
        sha256, _new = artifact_put(content)
        ReleaseArtifact.objects.create(
            brand=brand,
            since=number,
            path=path,
            sha256=sha256,
            size=len(content),
            content_type=content_type,
            kind=kind,
            fingerprint=sha256,
            changed_at=timezone.now(),
        )
    return release


def deploy(target, release, previous):
    deployment = Deployment.objects.create(target=target, release=release)
    s3_deploy(target=target, release=release, deployment=deployment, previous=previous)
    deployment.refresh_from_db()  # the counts must have been saved
    return deployment


def keys(client, bucket):
    paginator = client.get_paginator("list_objects_v2")
    return {
        entry["Key"]
        for page in paginator.paginate(Bucket=bucket)
        for entry in page.get("Contents", ())
    }


def versions_per_key(client, bucket):
    """How many times each key was written (the bucket has versioning on)."""
    answer = client.list_object_versions(Bucket=bucket)
    return Counter(version["Key"] for version in answer.get("Versions", ()))


def sha(content):
    return hashlib.sha256(content).hexdigest()


def test_first_deploy_uploads_every_artifact_with_exact_headers(brand, target, client, bucket):
    release = make_release(brand, 1, FIRST)

    deployment = deploy(target, release, previous=None)

    assert (deployment.uploaded, deployment.deleted) == (9, 0)
    assert deployment.state == Deployment.State.RUNNING  # the caller sets the state
    assert keys(client, bucket) == {f"site/{path}" for path in FIRST}
    for path, (content, content_type, _kind) in FIRST.items():
        obj = client.get_object(Bucket=bucket, Key=f"site/{path}")
        assert obj["Body"].read() == content, path
        assert obj["ContentType"] == content_type, path
        assert obj["CacheControl"] == "public, max-age=300", path
        assert obj["Metadata"] == {"sha256": sha(content)}, path
    # And over plain HTTP (a presigned URL: the objects are private).
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "site/zh-Hans/products/green/index.html"}
    )
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == "<h1>绿茶</h1>".encode()
        assert response.headers["Content-Type"] == HTML
        assert response.headers["Cache-Control"] == "public, max-age=300"
        assert response.headers["x-amz-meta-sha256"] == sha("<h1>绿茶</h1>".encode())


def test_second_deploy_uploads_only_what_changed(brand, target, client, bucket):
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = make_release(brand, 1, FIRST)
    assert deploy(target, first, previous=None).uploaded == 9

    second_files = dict(FIRST)
    second_files["products/green/index.html"] = (b"<h1>Green tea, new</h1>", HTML, "page")
    del second_files["products/black/index.html"]
    second_files["products/oolong/index.html"] = (b"<h1>Oolong</h1>", HTML, "page")
    second_files["llms.txt"] = (b"# Acme Tea\n- [Oolong](products/oolong/)\n", TEXT, "llms")
    second = make_release(brand, 2, second_files)

    deployment = deploy(target, second, previous=first)

    assert (deployment.uploaded, deployment.deleted) == (3, 1)
    assert keys(client, bucket) == {f"site/{path}" for path in second_files}
    # Server-side proof of exactly which keys were written, and how often.
    written = versions_per_key(client, bucket)
    assert written == {f"site/{path}": 1 for path in FIRST} | {
        "site/products/green/index.html": 2,
        "site/llms.txt": 2,
        "site/products/oolong/index.html": 1,
    }
    changed = client.get_object(Bucket=bucket, Key="site/products/green/index.html")
    assert changed["Body"].read() == b"<h1>Green tea, new</h1>"
    assert changed["Metadata"] == {"sha256": sha(b"<h1>Green tea, new</h1>")}

    # The same release again: nothing to do, nothing written.
    again = deploy(target, second, previous=second)
    assert (again.uploaded, again.deleted) == (0, 0)
    assert versions_per_key(client, bucket) == written


def test_stray_keys_under_the_prefix_are_deleted_and_others_kept(brand, target, client, bucket):
    # What a deploy that crashed halfway left, and what belongs to someone else.
    client.put_object(Bucket=bucket, Key="site/products/gone/index.html", Body=b"half")
    client.put_object(Bucket=bucket, Key="site/deep/er/stray.txt", Body=b"half")
    client.put_object(Bucket=bucket, Key="other/keep.txt", Body=b"mine")
    client.put_object(Bucket=bucket, Key="site-preview/index.html", Body=b"preview")
    client.put_object(Bucket=bucket, Key="site", Body=b"a key equal to the prefix")
    release = make_release(brand, 1, FIRST)

    deployment = deploy(target, release, previous=None)

    assert (deployment.uploaded, deployment.deleted) == (9, 2)
    assert keys(client, bucket) == {f"site/{path}" for path in FIRST} | {
        "other/keep.txt",
        "site-preview/index.html",
        "site",
    }
    assert client.get_object(Bucket=bucket, Key="other/keep.txt")["Body"].read() == b"mine"


def test_redeploy_repairs_missing_and_altered_objects(brand, target, client, bucket):
    release = make_release(brand, 1, FIRST)
    deploy(target, release, previous=None)
    client.delete_object(Bucket=bucket, Key="site/llms.txt")
    client.put_object(Bucket=bucket, Key="site/robots.txt", Body=b"tampered, longer bytes")

    deployment = deploy(target, release, previous=release)

    assert (deployment.uploaded, deployment.deleted) == (2, 0)
    for path in ("llms.txt", "robots.txt"):
        obj = client.get_object(Bucket=bucket, Key=f"site/{path}")
        assert obj["Body"].read() == FIRST[path][0]
        assert obj["ContentType"] == TEXT
        assert obj["Metadata"] == {"sha256": sha(FIRST[path][0])}


def test_pages_are_uploaded_before_index_files_and_deletions_come_last(
    brand, target, client, bucket, monkeypatch
):
    client.put_object(Bucket=bucket, Key="site/stray.html", Body=b"old")
    calls = []

    def record(operation):
        def handler(params, **kwargs):
            if operation == "DeleteObjects":
                calls.append(("delete", *(o["Key"] for o in params["Delete"]["Objects"])))
            else:
                calls.append((operation, params.get("Key", params.get("Prefix"))))

        return handler

    real_s3_storage = s3.s3_storage

    def recording_storage(target):
        storage = real_s3_storage(target)
        events = storage.connection.meta.client.meta.events
        events.register("before-parameter-build.s3.PutObject", record("put"))
        events.register("before-parameter-build.s3.ListObjectsV2", record("list"))
        events.register("before-parameter-build.s3.DeleteObjects", record("DeleteObjects"))
        return storage

    monkeypatch.setattr(s3, "s3_storage", recording_storage)
    release = make_release(brand, 1, FIRST)

    deploy(target, release, previous=None)

    assert calls == [
        ("list", "site/"),
        ("put", "site/products/black/index.html"),
        ("put", "site/products/green/index.html"),
        ("put", "site/products/green/index.md"),
        ("put", "site/zh-Hans/products/green/index.html"),
        ("put", "site/graph.jsonld"),
        ("put", "site/llms.txt"),
        ("put", "site/zh-Hans/llms.txt"),
        ("put", "site/sitemap.xml"),
        ("put", "site/robots.txt"),
        ("delete", "site/stray.html"),
    ]


def test_without_location_the_whole_bucket_is_the_target(brand, target, client, bucket):
    target.config = {k: v for k, v in target.config.items() if k != "location"}
    target.save()
    client.put_object(Bucket=bucket, Key="old/page.html", Body=b"old")
    files = {path: FIRST[path] for path in ("products/green/index.html", "llms.txt")}

    deployment = deploy(target, make_release(brand, 1, files), previous=None)

    assert (deployment.uploaded, deployment.deleted) == (2, 1)
    assert keys(client, bucket) == {"products/green/index.html", "llms.txt"}


def test_storage_is_built_from_the_target_config_only(brand, target, endpoint):
    target.config["region_name"] = "eu-west-3"
    target.config["location"] = "site/"

    storage = s3_storage(target)

    assert storage.bucket_name == target.config["bucket"]
    assert storage.endpoint_url == endpoint
    assert storage.region_name == "eu-west-3"
    assert storage.location == "site"
    assert (storage.access_key, storage.secret_key) == (moto_s3.ACCESS_KEY, moto_s3.SECRET_KEY)
    assert (storage.file_overwrite, storage.querystring_auth, storage.default_acl) == (
        True,
        False,
        None,
    )


def test_without_key_names_the_default_credential_chain_is_used(brand, target, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-default-chain")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-default-chain-secret")
    del target.config["access_key_env"], target.config["secret_key_env"]
    target.save()

    storage = s3_storage(target)

    assert (storage.access_key, storage.secret_key) == (None, None)
    assert storage.region_name == "us-east-1"
    # What boto3 will sign with (no public accessor for a client's credentials).
    credentials = storage.connection.meta.client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == (
        "from-the-default-chain",
        "from-the-default-chain-secret",
    )


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        ({"bucket": None}, "bucket", "is missing"),
        ({"bucket": "  "}, "bucket", "is missing"),
        ({"bucket": "a/b"}, "bucket", "is not a bucket name"),
        ({"location": "/site"}, "location", "must not start with a slash"),
        ({"location": "site/../x"}, "location", "is not a clean prefix"),
        ({"endpoint_url": "localhost:9000"}, "endpoint_url", "is not an http(s) URL"),
        ({"region_name": 3}, "region_name", "must be a string"),
        ({"secret_key_env": None}, "secret_key_env", "is missing"),
        ({"access_key_env": "SB_TEST_S3_UNSET"}, "access_key_env", "SB_TEST_S3_UNSET"),
        ({"locaton": "site"}, "locaton", "is not known"),
    ],
)
def test_bad_config_raises_a_clear_error(
    brand, target, client, bucket, monkeypatch, change, key, problem
):
    monkeypatch.delenv("SB_TEST_S3_UNSET", raising=False)
    for name, value in change.items():
        if value is None:
            del target.config[name]
        else:
            target.config[name] = value
    target.save()
    release = make_release(brand, 1, FIRST)
    deployment = Deployment.objects.create(target=target, release=release)

    with pytest.raises(TargetConfigError) as error:
        s3_deploy(target=target, release=release, deployment=deployment, previous=None)

    message = str(error.value)
    assert '"cdn"' in message
    assert f'"{key}"' in message
    assert problem in message
    assert keys(client, bucket) == set()
