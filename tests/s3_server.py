"""A real S3-compatible server on loopback for tests: moto in server mode, over HTTP.

Not moto's in-process mocks: boto3 talks HTTP to a server on 127.0.0.1, as it would to MinIO.

    from tests.s3_server import s3_bucket, s3_server  # noqa: F401
"""

from __future__ import annotations

import functools
import itertools
import os
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

# Dummy credentials: moto accepts any. Tests put these env var NAMES in Target.config.
# Processes the tests start (workers) need these settings in their environment.
EGRESS_ENV = {"SOURCEBOOK_EGRESS_ALLOW": "127.0.0.1",
              "SOURCEBOOK_CREDENTIAL_ENV": "SB_TEST_S3_KEY,SB_TEST_S3_SECRET"}  # fmt: skip
ACCESS_KEY_ENV = "SB_TEST_S3_KEY"
SECRET_KEY_ENV = "SB_TEST_S3_SECRET"
ACCESS_KEY = "sb-test-access-key"
SECRET_KEY = "sb-test-secret-key"
REGION = "us-east-1"

_bucket_numbers = itertools.count(1)


@functools.cache
def s3_client(endpoint_url: str):
    """A plain boto3 client of the test server, independent of the code under test.

    Shared (boto3 clients are thread-safe): creating one takes ~0.1 s.
    """
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture(scope="session")
def s3_server():
    """Start moto's S3 server on a free loopback port; yield its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch, settings):
    """A fresh, empty bucket (unique name); the credentials' env vars set for the test.

    The operator settings a loopback server needs are set too: its address allowed for
    outbound calls, the key variables allowed for credentials.
    """
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]
    settings.SOURCEBOOK_CREDENTIAL_ENV = [ACCESS_KEY_ENV, SECRET_KEY_ENV]
    monkeypatch.setenv(ACCESS_KEY_ENV, ACCESS_KEY)
    monkeypatch.setenv(SECRET_KEY_ENV, SECRET_KEY)
    # Never reach for real credentials or an instance metadata service.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    name = f"sb-test-{next(_bucket_numbers)}-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server).create_bucket(Bucket=name)
    return name
