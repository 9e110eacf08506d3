"""Webhook deliveries against a real HTTP server on loopback, verified with ``standardwebhooks``.

Tasks run eagerly (in-process): a retry runs at once, its countdown ignored, so a delivery's
whole attempt sequence completes inside ``delay()``. The last test runs a real worker on the
Redis broker (CELERY_BROKER_URL) to check that retries go through it with their countdowns.
"""

import base64
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import standardwebhooks
from celery import signals
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Retry
from django.db import connections, transaction
from django.utils import timezone

from config.celery import app as celery_app
from publishing.models import Release, ReleaseArtifact, Target, WebhookAttempt, WebhookDelivery
from publishing.webhooks import (
    USER_AGENT,
    retry_countdown,
    webhook_deliver,
    webhook_delivery_create,
    webhook_payload,
    webhook_secret_key,
    webhook_url_problem,
)

# Deliveries are queued with transaction.on_commit: run those tests on real transactions.
committing_db = pytest.mark.django_db(transaction=True)

SECRET = "whsec_" + base64.b64encode(b"sourcebook-test-signing-key-0001").decode()


# --- A real webhook receiver ------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok":true}'
    delay: float = 0.0


class Receiver:
    """Records every request; answers with the queued replies, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.lock = threading.Lock()
        self.url = ""

    def reply(self, *replies: int | Reply) -> None:
        self.replies.extend(r if isinstance(r, Reply) else Reply(status=r) for r in replies)

    def next_reply(self, received: Received) -> Reply:
        with self.lock:
            self.requests.append(received)
            return self.replies.pop(0) if self.replies else Reply()


@pytest.fixture
def receiver():
    recv = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = recv.next_reply(Received(self.path, headers, body))
            if reply.delay:
                time.sleep(reply.delay)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # a client that timed out and went away

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    recv.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/sourcebook"
    yield recv
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def eager():
    """Run tasks in-process even if CELERY_BROKER_URL is set in the environment."""
    conf = celery_app.conf
    saved = {
        "task_always_eager": conf.task_always_eager,
        "task_eager_propagates": conf.task_eager_propagates,
    }
    conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    conf.update(saved)


@pytest.fixture
def webhook_settings(settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]  # the receivers listen on loopback
    settings.SOURCEBOOK_WEBHOOK_MAX_ATTEMPTS = 3
    settings.SOURCEBOOK_WEBHOOK_TIMEOUT = (1, 2)
    return settings


@pytest.fixture
def retries():
    """The countdowns of the retries Celery was asked for, in order."""
    countdowns: list[float] = []

    def on_postrun(sender=None, retval=None, **kwargs):  # Retry raised (worker) or returned (eager)
        if getattr(sender, "name", None) == webhook_deliver.name and isinstance(retval, Retry):
            countdowns.append(retval.when)

    signals.task_postrun.connect(on_postrun, weak=False)
    yield countdowns
    signals.task_postrun.disconnect(on_postrun)


# --- Data -------------------------------------------------------------------------------


def sha(char: str) -> str:
    return char * 64


def make_release(brand, number, artifacts, *, reason="", state=Release.State.DEPLOYED):
    release = Release.objects.create(brand=brand, number=number, state=state, reason=reason)
    # A whole manifest: the rows of earlier releases end here (see ReleaseArtifact).
    ReleaseArtifact.objects.filter(brand=brand, until=None, since__lt=number).update(until=number)
    for path, digest, size, content_type in artifacts:
        ReleaseArtifact.objects.create(
            brand=brand,
            since=number,
            path=path,
            sha256=digest,
            size=size,
            content_type=content_type,
            kind="page",
            fingerprint=digest[:16],
            changed_at=timezone.now(),
        )
    return release


@pytest.fixture
def release1(brand):
    return make_release(
        brand,
        1,
        [
            ("index.html", sha("a"), 1200, "text/html; charset=utf-8"),
            ("llms.txt", sha("b"), 300, "text/plain; charset=utf-8"),
            ("products/longjing/index.html", sha("c"), 900, "text/html; charset=utf-8"),
        ],
        reason="First publish",
    )


@pytest.fixture
def release2(brand, release1):
    return make_release(
        brand,
        2,
        [
            ("index.html", sha("a"), 1200, "text/html; charset=utf-8"),  # unchanged
            ("llms.txt", sha("d"), 320, "text/plain; charset=utf-8"),  # changed
            ("products/biluochun/index.html", sha("e"), 950, "text/html; charset=utf-8"),  # new
            ("zh-hans/index.html", sha("f"), 1300, "text/html; charset=utf-8"),  # new
        ],  # products/longjing/index.html removed
        reason="Biluochun added, 龙井 retired",
    )


@pytest.fixture
def target(brand, receiver, webhook_settings):
    return Target.objects.create(
        brand=brand,
        name="Headless site",
        kind=Target.Kind.WEBHOOK,
        config={"url": receiver.url},
        secret=SECRET,
    )


def attempts_of(delivery):
    return list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# --- Payload ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_payload_of_a_first_release_lists_every_path_as_changed(release1):
    assert webhook_payload(release=release1, previous=None) == {
        "event": "release.deployed",
        "brand": {"slug": "acme-tea", "name": "Acme Tea", "base_url": "https://tea.example"},
        "release": {
            "number": 1,
            "created_at": release1.created_at.isoformat(),
            "reason": "First publish",
            "state": "deployed",
        },
        "artifact_count": 3,
        "changed": ["index.html", "llms.txt", "products/longjing/index.html"],
        "removed": [],
        "manifest": [
            {
                "path": "index.html",
                "sha256": sha("a"),
                "size": 1200,
                "content_type": "text/html; charset=utf-8",
            },
            {
                "path": "llms.txt",
                "sha256": sha("b"),
                "size": 300,
                "content_type": "text/plain; charset=utf-8",
            },
            {
                "path": "products/longjing/index.html",
                "sha256": sha("c"),
                "size": 900,
                "content_type": "text/html; charset=utf-8",
            },
        ],
    }


@pytest.mark.django_db
def test_payload_of_a_second_release_lists_changed_and_removed_paths(release1, release2):
    payload = webhook_payload(release=Release.objects.get(pk=release2.pk), previous=release1)
    assert payload["release"] == {
        "number": 2,
        "created_at": release2.created_at.isoformat(),
        "reason": "Biluochun added, 龙井 retired",
        "state": "deployed",
    }
    assert payload["artifact_count"] == 4
    assert payload["changed"] == [
        "llms.txt",
        "products/biluochun/index.html",
        "zh-hans/index.html",
    ]
    assert payload["removed"] == ["products/longjing/index.html"]
    assert [entry["path"] for entry in payload["manifest"]] == [
        "index.html",
        "llms.txt",
        "products/biluochun/index.html",
        "zh-hans/index.html",
    ]
    assert payload["manifest"][1] == {
        "path": "llms.txt",
        "sha256": sha("d"),
        "size": 320,
        "content_type": "text/plain; charset=utf-8",
    }


# --- Signing and headers ----------------------------------------------------------------


@committing_db
def test_delivery_is_sent_after_commit_signed_per_standard_webhooks(
    target, receiver, release1, release2
):
    with transaction.atomic():
        delivery = webhook_delivery_create(target=target, release=release2, previous=release1)
        assert receiver.requests == []  # queued only once the transaction commits
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    delivery.refresh_from_db()

    # The independent judge: the Standard Webhooks reference library.
    verified = standardwebhooks.Webhook(SECRET).verify(request.body, request.headers)
    assert verified == delivery.payload
    assert verified["changed"] == [
        "llms.txt",
        "products/biluochun/index.html",
        "zh-hans/index.html",
    ]
    assert verified["removed"] == ["products/longjing/index.html"]
    tampered = request.body.replace(b'"artifact_count":4', b'"artifact_count":5')
    assert tampered != request.body
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(tampered, request.headers)
    other_secret = "whsec_" + base64.b64encode(b"another-key-another-key-00000000").decode()
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other_secret).verify(request.body, request.headers)

    # Compact UTF-8 JSON, sorted keys: exactly the bytes that were signed.
    assert request.body == json.dumps(
        delivery.payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False
    ).encode("utf-8")
    assert "龙井".encode() in request.body

    assert request.path == "/hooks/sourcebook"
    assert request.headers["webhook-id"] == str(delivery.delivery_id)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT == "Sourcebook-Webhooks/1"
    assert request.headers["x-sourcebook-event"] == "release.deployed"
    assert request.headers["x-sourcebook-event-id"] == str(delivery.event_id)
    assert request.headers["x-sourcebook-delivery-id"] == str(delivery.delivery_id)

    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert delivery.delivered_at is not None
    assert delivery.event == "release.deployed"
    assert delivery.release == release2
    [attempt] = attempts_of(delivery)
    assert (attempt.number, attempt.status_code, attempt.error, attempt.will_retry) == (
        1,
        200,
        "",
        False,
    )
    assert attempt.response_body == '{"ok":true}'


@committing_db
def test_a_secret_without_whsec_prefix_is_used_as_its_utf8_bytes(target, receiver, release1):
    target.secret = "correct horse battery staple"
    target.save()
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    request = receiver.requests[0]
    assert webhook_secret_key(target.secret) == b"correct horse battery staple"
    standardwebhooks.Webhook(b"correct horse battery staple").verify(request.body, request.headers)
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.DELIVERED


@committing_db
def test_nothing_is_queued_when_the_transaction_rolls_back(target, receiver, release1):
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_delivery_create(target=target, release=release1, previous=None)
        raise RuntimeError("the deployment failed")
    assert receiver.requests == []
    assert WebhookDelivery.objects.count() == 0


@committing_db
def test_only_webhook_targets_of_the_release_brand_get_deliveries(
    brand, other_brand, target, release1
):
    directory = Target.objects.create(
        brand=brand, name="Dir", kind=Target.Kind.DIRECTORY, operator_path="/tmp/x"
    )
    with pytest.raises(ValueError, match="not a webhook"):
        webhook_delivery_create(target=directory, release=release1, previous=None)
    foreign = Target.objects.create(
        brand=other_brand, name="Hook", kind=Target.Kind.WEBHOOK, config={"url": "https://x.test"}
    )
    with pytest.raises(ValueError, match="share a brand"):
        webhook_delivery_create(target=foreign, release=release1, previous=None)
    assert WebhookDelivery.objects.count() == 0


# --- Retry rules ------------------------------------------------------------------------


@committing_db
def test_5xx_is_retried_until_delivered(target, receiver, release1, retries):
    receiver.reply(500, 502, 200)
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    attempts = attempts_of(delivery)
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.status_code for a in attempts] == [500, 502, 200]
    assert [a.will_retry for a in attempts] == [True, True, False]
    assert [a.error for a in attempts] == ["HTTP 500.", "HTTP 502.", ""]
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert retries == [10, 20]  # exponential backoff, passed to self.retry(countdown=...)
    # Same webhook-id on every attempt; each attempt signed afresh and verifiable.
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(delivery.delivery_id)}
    for request in receiver.requests:
        standardwebhooks.Webhook(SECRET).verify(request.body, request.headers)


@committing_db
def test_4xx_fails_at_once(target, receiver, release1, retries):
    receiver.reply(Reply(404, body=b"no such hook"))
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    [attempt] = attempts_of(delivery)
    assert (attempt.status_code, attempt.error, attempt.will_retry) == (404, "HTTP 404.", False)
    assert attempt.response_body == "no such hook"
    assert delivery.state == WebhookDelivery.State.FAILED
    assert delivery.delivered_at is None
    assert len(receiver.requests) == 1
    assert retries == []


@committing_db
def test_connection_refused_is_retried_up_to_the_maximum_then_fails(
    target, receiver, release1, retries
):
    target.config = {"url": f"http://127.0.0.1:{closed_port()}/hook"}
    target.save()
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    attempts = attempts_of(delivery)
    assert [a.number for a in attempts] == [1, 2, 3]  # SOURCEBOOK_WEBHOOK_MAX_ATTEMPTS
    assert [a.status_code for a in attempts] == [None, None, None]
    assert all(a.error.startswith("ConnectionError: ") for a in attempts)
    assert all("refused" in a.error.lower() for a in attempts)
    assert [a.will_retry for a in attempts] == [True, True, False]
    assert delivery.state == WebhookDelivery.State.FAILED
    assert retries == [10, 20]


@committing_db
def test_a_read_timeout_is_retried(target, receiver, release1, webhook_settings):
    webhook_settings.SOURCEBOOK_WEBHOOK_TIMEOUT = (1, 0.3)
    webhook_settings.SOURCEBOOK_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.reply(Reply(200, delay=1.0), Reply(200, delay=1.0))
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    attempts = attempts_of(delivery)
    assert [a.status_code for a in attempts] == [None, None]
    assert all("ReadTimeout" in a.error for a in attempts)
    assert all(200 <= a.duration_ms < 1000 for a in attempts)
    assert [a.will_retry for a in attempts] == [True, False]
    assert delivery.state == WebhookDelivery.State.FAILED


@committing_db
def test_429_and_503_are_retried_honouring_retry_after(target, receiver, release1, retries):
    later = format_datetime(timezone.now() + timedelta(seconds=90), usegmt=True)
    receiver.reply(
        Reply(429, headers={"Retry-After": "30"}), Reply(503, headers={"Retry-After": later})
    )
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    assert [a.status_code for a in attempts_of(delivery)] == [429, 503, 200]
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert retries[0] == 30
    assert 85 <= retries[1] <= 91


def test_retry_countdown_doubles_and_is_capped():
    assert [retry_countdown(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 160]
    assert retry_countdown(30) == 3600
    assert retry_countdown(1, "5") == 10  # Retry-After never shortens the backoff
    assert retry_countdown(1, "120") == 120
    assert retry_countdown(1, "86400") == 3600
    assert retry_countdown(2, "soon") == 20


@committing_db
def test_a_redirect_is_not_followed(target, receiver, release1, retries):
    receiver.reply(Reply(302, headers={"Location": receiver.url + "/elsewhere"}))
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    assert [r.path for r in receiver.requests] == ["/hooks/sourcebook"]
    [attempt] = attempts_of(delivery)
    assert attempt.status_code == 302
    assert attempt.will_retry is False
    assert "not followed" in attempt.error and receiver.url + "/elsewhere" in attempt.error
    assert delivery.state == WebhookDelivery.State.FAILED
    assert retries == []


@committing_db
def test_a_long_response_body_is_truncated(target, receiver, release1):
    receiver.reply(Reply(400, body=b"x" * 50_000))
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    [attempt] = attempts_of(delivery)
    assert attempt.response_body == "x" * 2000


@committing_db
def test_a_finished_delivery_is_never_sent_again(target, receiver, release1):
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.DELIVERED
    delivered_at = delivery.delivered_at

    webhook_deliver.delay(delivery.pk)
    webhook_deliver.apply(args=[delivery.pk])
    assert len(receiver.requests) == 1
    assert len(attempts_of(delivery)) == 1
    delivery.refresh_from_db()
    assert delivery.delivered_at == delivered_at

    receiver.reply(410)
    failed = webhook_delivery_create(target=target, release=release1, previous=None)
    assert len(receiver.requests) == 2
    webhook_deliver.delay(failed.pk)
    assert len(receiver.requests) == 2
    assert len(attempts_of(failed)) == 1


@committing_db
def test_a_missing_delivery_is_ignored(target):
    assert webhook_deliver.delay(987654).get() is None


@committing_db
def test_a_target_without_secret_is_never_sent_to(target, receiver, release1):
    target.secret = ""
    target.save()
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    assert receiver.requests == []
    [attempt] = attempts_of(delivery)
    assert attempt.error == "The webhook target has no signing secret."
    assert delivery.state == WebhookDelivery.State.FAILED


# --- URL safety -------------------------------------------------------------------------


@committing_db
def test_a_loopback_url_is_refused_unless_allowed(target, receiver, release1, settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    assert receiver.requests == []
    [attempt] = attempts_of(delivery)
    assert attempt.status_code is None
    assert attempt.error.startswith(
        "Refused: The host 127.0.0.1 resolves to 127.0.0.1, a loopback address; outbound calls"
    )
    assert attempt.will_retry is False
    assert delivery.state == WebhookDelivery.State.FAILED


@committing_db
def test_a_host_that_does_not_resolve_is_a_network_error_and_retried(
    target, receiver, release1, settings, retries
):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    target.config = {"url": "https://hooks.invalid/sourcebook"}  # RFC 6761: never resolves
    target.save()
    delivery = webhook_delivery_create(target=target, release=release1, previous=None)
    delivery.refresh_from_db()
    attempts = attempts_of(delivery)
    assert all(a.error.startswith("The host hooks.invalid does not resolve") for a in attempts)
    assert [a.will_retry for a in attempts] == [True, True, False]
    assert delivery.state == WebhookDelivery.State.FAILED
    assert retries == [10, 20]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example/x", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("http:///path-only", "has no host"),
        ("http://example.com:99999/", "malformed"),
        ("http://127.0.0.1:8000/hook", "127.0.0.1, a loopback address;"),
        ("http://localhost/hook", "loopback address"),
        ("http://[::1]/hook", "::1, a loopback address;"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback address (127.0.0.1 inside)"),
        ("http://10.1.2.3/hook", "10.1.2.3, a private address"),
        ("http://192.168.0.10/hook", "private address"),
        ("http://172.16.5.4/hook", "private address"),
        ("http://[fd00::1]/hook", "private address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address"),
        ("http://[fe80::1]/hook", "link-local address"),
        ("http://224.0.0.1/hook", "multicast address"),
        ("http://0.0.0.0/hook", "unspecified address"),
        ("http://240.0.0.1/hook", "reserved address"),
        ("http://100.64.0.1/hook", "non-global address"),
        ("http://[2002:7f00:1::1]/hook", "loopback address (127.0.0.1 inside)"),  # 6to4
        ("https://hooks.invalid/x", "The host hooks.invalid does not resolve"),
    ],
)
def test_webhook_url_problem_refuses(url, problem, settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    assert problem in (webhook_url_problem(url) or "")


def test_webhook_url_problem_accepts_public_and_allowed_private_addresses(settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    assert webhook_url_problem("https://93.184.215.14/hooks") is None
    assert webhook_url_problem("http://[2606:4700:4700::1111]:8443/hooks") is None
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1:8000"]
    assert webhook_url_problem("http://127.0.0.1:8000/hook") is None
    assert "loopback" in webhook_url_problem("http://127.0.0.1:8001/hook")
    assert webhook_url_problem("ftp://hooks.example/x") is not None


# --- A real worker ----------------------------------------------------------------------


@pytest.mark.celery_worker
@committing_db
def test_a_real_worker_retries_through_the_broker_with_a_countdown(
    broker_url, target, receiver, release1, webhook_settings, retries
):
    webhook_settings.SOURCEBOOK_WEBHOOK_RETRY_BASE_SECONDS = 1
    celery_app.conf.update(task_always_eager=False)
    queue = f"test-webhooks-{uuid.uuid4().hex[:8]}"
    receiver.reply(503, 502, 200)
    delivery = WebhookDelivery.objects.create(
        target=target,
        release=release1,
        event="release.deployed",
        payload=webhook_payload(release=release1, previous=None),
    )

    def close_db(**kwargs):  # the worker thread's connection, so the test database can go
        connections.close_all()

    signals.task_postrun.connect(close_db, weak=False)
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=30
        ):
            started = time.monotonic()
            webhook_deliver.apply_async((delivery.pk,), queue=queue)
            while time.monotonic() - started < 60:
                delivery.refresh_from_db()
                if delivery.state != WebhookDelivery.State.PENDING:
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - started
    finally:
        signals.task_postrun.disconnect(close_db)
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert [a.status_code for a in attempts_of(delivery)] == [503, 502, 200]
    assert retries == [1, 2]  # raised Retry, re-sent to the broker with its countdown
    assert elapsed >= 3  # the countdowns were honoured, not skipped
