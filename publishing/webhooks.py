"""Webhook deliveries to headless sites: payload, signing, sending, retrying.

One :class:`~publishing.models.WebhookDelivery` is recorded per event and target, and one
:class:`~publishing.models.WebhookAttempt` per try, so every request (and every refusal to
send one) is visible afterwards.

Signing follows Standard Webhooks (https://www.standardwebhooks.com/): each request carries

* ``webhook-id``: the delivery's ``delivery_id``, the same on every retry (the receiver's
  idempotency key);
* ``webhook-timestamp``: the attempt's time in unix seconds (new on every retry, so the
  receiver's 5-minute tolerance holds for late retries too);
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">``.

The HMAC key is the target's ``secret``. A secret that starts with ``whsec_`` is read as the
spec says: the rest is the base64 of the key bytes (generate one with
``"whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()``); receivers can then verify
with any Standard Webhooks library, e.g. ``standardwebhooks.Webhook(secret).verify(body,
headers)``. Any other secret is used as its UTF-8 bytes; receivers must then pass those bytes
as the key (``Webhook(secret.encode())``), because the libraries base64-decode a string
secret. Prefer ``whsec_`` secrets. A target without a secret is never sent to.

The body is the payload serialised once per attempt as compact UTF-8 JSON with sorted keys
(the same bytes on every retry and on every database backend); exactly those bytes are
signed and sent.

Retry rules (as in Saleor's webhook transport): a 2xx response means delivered; network
errors (refused, reset, timeouts, DNS), 5xx and 429 are retried with exponential backoff
(``SOURCEBOOK_WEBHOOK_RETRY_BASE_SECONDS``, default 10, doubling per attempt, at most
``RETRY_MAX_SECONDS``; a ``Retry-After`` header on any retried response lengthens the wait
up to that cap) until ``SOURCEBOOK_WEBHOOK_MAX_ATTEMPTS`` attempts (default 6) were made;
3xx (redirects are never followed) and other 4xx fail at once. Retries go through Celery's
``self.retry(countdown=...)``; see :func:`webhook_deliver` for eager mode.

Target URLs must be http(s) and must not resolve to private, loopback, link-local,
multicast, reserved or otherwise non-global addresses, unless the operator allowed the host
in ``SOURCEBOOK_EGRESS_ALLOW``. Requests go through :mod:`config.egress`: the host is
resolved once per connection and the socket goes to the address that was checked, so a DNS
answer that changes in between (rebinding) cannot reach a refused address.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import hmac
import json
import logging
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from celery import shared_task
from celery.exceptions import MaxRetriesExceededError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.egress import (
    EgressRefused,
    EgressUnresolved,
    egress_session,
    egress_url_problem,
    url_endpoint,
)
from publishing.models import Release, ReleaseArtifact, Target, WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

EVENT_RELEASE_DEPLOYED = "release.deployed"
USER_AGENT = "Sourcebook-Webhooks/1"

# Defaults for settings read at call time (``getattr(settings, ...)``).
DEFAULT_TIMEOUT = (3.0, 10.0)  # SOURCEBOOK_WEBHOOK_TIMEOUT: (connect, read) seconds or one number
DEFAULT_MAX_ATTEMPTS = 6  # SOURCEBOOK_WEBHOOK_MAX_ATTEMPTS: total attempts, the first included

# SOURCEBOOK_WEBHOOK_RETRY_BASE_SECONDS: countdown after the first failed attempt, then doubled.
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 60 * 60  # cap on any countdown, Retry-After included

RESPONSE_BODY_MAX_CHARS = 2000  # kept in WebhookAttempt.response_body
RESPONSE_READ_MAX_BYTES = 4 * RESPONSE_BODY_MAX_CHARS  # never read more of a response
ERROR_MAX_CHARS = 500  # WebhookAttempt.error's max_length

SECRET_PREFIX = "whsec_"


# --- Payload ----------------------------------------------------------------------------


def webhook_payload(*, release: Release, previous: Release | None) -> dict[str, Any]:
    """The ``release.deployed`` payload: the release, its manifest and what changed.

    ``changed`` lists paths that are new or whose sha256 differs from ``previous``;
    ``removed`` lists paths of ``previous`` that are not in ``release``. Without a previous
    release every path is changed and nothing is removed. All lists are sorted by path.
    """
    brand = release.brand
    # Only the rows the two manifests do not share can differ (see ReleaseArtifact): a path
    # in either of these is in the other too, unless it was added or removed.
    previous_hashes: dict[str, str] = {}
    different: set[str] | None = None
    if previous is not None:
        previous_hashes = dict(
            ReleaseArtifact.objects.not_in_release(previous, release).values_list("path", "sha256")
        )
        different = set(
            ReleaseArtifact.objects.not_in_release(release, previous).values_list("path", flat=True)
        )
    manifest: list[dict[str, Any]] = []
    changed: list[str] = []
    artifacts = release.artifacts.order_by("path").values("path", "sha256", "size", "content_type")
    for artifact in artifacts.iterator():
        manifest.append(
            {
                "path": artifact["path"],
                "sha256": artifact["sha256"],
                "size": artifact["size"],
                "content_type": artifact["content_type"],
            }
        )
        path = artifact["path"]
        if (different is None or path in different) and previous_hashes.get(path) != artifact[
            "sha256"
        ]:
            changed.append(path)
    removed = sorted(path for path in previous_hashes if path not in (different or ()))
    return {
        "event": EVENT_RELEASE_DEPLOYED,
        "brand": {"slug": brand.slug, "name": brand.name, "base_url": brand.base_url},
        "release": {
            "number": release.number,
            "created_at": release.created_at.isoformat(),
            "reason": release.reason,
            "state": release.state,
        },
        "artifact_count": len(manifest),
        "changed": changed,
        "removed": removed,
        "manifest": manifest,
    }


def webhook_delivery_create(
    *,
    target: Target,
    release: Release,
    previous: Release | None,
    event_id: uuid.UUID | None = None,
) -> WebhookDelivery:
    """Record a pending ``release.deployed`` delivery and queue it once the transaction commits.

    Pass the same ``event_id`` for the deliveries of one event to several targets; a new one
    is generated otherwise. If queueing fails after the commit (broker down), the error is
    logged and the delivery stays pending.
    """
    if target.kind != Target.Kind.WEBHOOK:
        raise ValueError(f"Target {target.pk} is a {target.kind} target, not a webhook.")
    if release.brand_id != target.brand_id or (
        previous is not None and previous.brand_id != target.brand_id
    ):
        raise ValueError("The release, the previous release and the target must share a brand.")
    extra = {"event_id": event_id} if event_id is not None else {}
    delivery = WebhookDelivery.objects.create(
        target=target,
        release=release,
        event=EVENT_RELEASE_DEPLOYED,
        payload=webhook_payload(release=release, previous=previous),
        state=WebhookDelivery.State.PENDING,
        **extra,
    )
    transaction.on_commit(functools.partial(_queue_delivery, delivery.pk))
    return delivery


def webhook_event_create(*, target: Target, event: str, payload: dict[str, Any]) -> WebhookDelivery:
    """Record a pending delivery of any event (e.g. ``visibility.alerts``) and queue it on commit.

    It is sent, signed and retried exactly like ``release.deployed``.
    """
    if target.kind != Target.Kind.WEBHOOK:
        raise ValueError(f"Target {target.pk} is a {target.kind} target, not a webhook.")
    delivery = WebhookDelivery.objects.create(
        target=target, event=event, payload=payload, state=WebhookDelivery.State.PENDING
    )
    transaction.on_commit(functools.partial(_queue_delivery, delivery.pk))
    return delivery


def _queue_delivery(delivery_pk: int) -> None:
    """Queue a committed delivery; a failure is logged, not raised at the committing caller."""
    try:
        webhook_deliver.delay(delivery_pk)
    except Exception:
        logger.exception("Could not queue webhook delivery %s; it stays pending.", delivery_pk)


# --- URL safety -------------------------------------------------------------------------

# Kept for callers: both are the egress module's exceptions.
WebhookURLRefused = EgressRefused
WebhookHostUnresolved = EgressUnresolved


def webhook_url_problem(url: str) -> str | None:
    """Why webhooks may not be sent to ``url``, or None if they may.

    Only http and https URLs with a host are accepted; the host is resolved and refused if
    any of its addresses is private, loopback, link-local, multicast, reserved, unspecified
    or otherwise not globally routable (IPv4 embedded in IPv6 included), unless the operator
    allowed it in ``SOURCEBOOK_EGRESS_ALLOW`` (see :mod:`config.egress`). A host that does
    not resolve is a problem too. Every attempt connects only to an address checked then.
    """
    return egress_url_problem(url)


# --- Signing ----------------------------------------------------------------------------


def webhook_secret_key(secret: str) -> bytes:
    """The HMAC key for a target secret: ``whsec_<base64>`` decoded, anything else as UTF-8.

    Raises ValueError for an empty secret or a ``whsec_`` secret that is not base64.
    """
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :].strip()
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("The webhook secret starts with whsec_ but is not base64.") from None
    else:
        key = secret.encode()
    if not key:
        raise ValueError("The webhook target has no signing secret.")
    return key


def webhook_sign(*, key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON with sorted keys."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def webhook_headers(
    *, delivery: WebhookDelivery, key: bytes, body: bytes, timestamp: int
) -> dict[str, str]:
    msg_id = str(delivery.delivery_id)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_sign(key=key, msg_id=msg_id, timestamp=timestamp, body=body),
        "X-Sourcebook-Event": delivery.event,
        "X-Sourcebook-Event-Id": str(delivery.event_id),
        "X-Sourcebook-Delivery-Id": msg_id,
    }


# --- Sending ----------------------------------------------------------------------------


def _timeout() -> float | tuple[float, float]:
    value = getattr(settings, "SOURCEBOOK_WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT)
    if isinstance(value, list | tuple):
        connect, read = value
        return (float(connect), float(read))
    return float(value)


def _max_attempts() -> int:
    return max(1, int(getattr(settings, "SOURCEBOOK_WEBHOOK_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)))


def _retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retry_countdown(attempt_number: int, retry_after: str | None = None) -> int:
    """Seconds to wait after failed attempt ``attempt_number`` (1-based): 10, 20, 40 … capped.

    A Retry-After header lengthens (never shortens) the wait, up to the same cap.
    """
    base = getattr(settings, "SOURCEBOOK_WEBHOOK_RETRY_BASE_SECONDS", RETRY_BASE_SECONDS)
    countdown = base * 2 ** max(0, attempt_number - 1)
    requested = _retry_after_seconds(retry_after)
    if requested is not None:
        countdown = max(countdown, math.ceil(requested))
    return int(min(countdown, RETRY_MAX_SECONDS))


def _error_text(text: str) -> str:
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def _read_body(response: requests.Response) -> tuple[str, str]:
    """At most RESPONSE_READ_MAX_BYTES of the body as text, and an error text if reading failed."""
    data = b""
    error = ""
    try:
        for chunk in response.iter_content(chunk_size=RESPONSE_READ_MAX_BYTES):
            data += chunk
            if len(data) >= RESPONSE_READ_MAX_BYTES:
                break
    except requests.RequestException as exc:
        error = f"Could not read the response body: {type(exc).__name__}: {exc}"
    finally:
        response.close()
    text = data[:RESPONSE_READ_MAX_BYTES].decode(response.encoding or "utf-8", errors="replace")
    return text[:RESPONSE_BODY_MAX_CHARS], error


def _unresolved_in(error: BaseException | None) -> EgressUnresolved | None:
    """The EgressUnresolved under a requests ConnectionError, if the host did not resolve."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, EgressUnresolved):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def _finish(delivery: WebhookDelivery, state: str) -> None:
    """Move a pending delivery to its final state (never a delivered or failed one)."""
    fields: dict[str, Any] = {"state": state}
    if state == WebhookDelivery.State.DELIVERED:
        fields["delivered_at"] = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk, state=WebhookDelivery.State.PENDING).update(
        **fields
    )


def _refusal(delivery: WebhookDelivery) -> tuple[str, bool] | None:
    """Why nothing may be sent for this delivery now, and whether that is worth retrying."""
    target = delivery.target
    if target.kind != Target.Kind.WEBHOOK:
        return f"The target is a {target.kind} target, not a webhook.", False
    if not target.enabled:
        return "The target is disabled.", False
    url = (target.config or {}).get("url")
    if not isinstance(url, str) or not url:
        return "The target has no URL (config.url).", False
    try:
        url_endpoint(url)  # the address is checked when connecting, once, in webhook_deliver
    except EgressRefused as error:
        return f"Refused: {error}", False
    try:
        webhook_secret_key(target.secret)
    except ValueError as error:
        return str(error), False
    return None


@shared_task(
    bind=True,
    name="publishing.webhook_deliver",
    acks_late=True,
    max_retries=DEFAULT_MAX_ATTEMPTS - 1,
)
def webhook_deliver(self, delivery_id: int) -> Any:
    """Make one attempt at a delivery; schedule the next one with ``self.retry`` if worth it.

    Safe to run twice: a delivered or failed delivery is left alone. The attempt number comes
    from the attempts already recorded, so a redelivered message (``acks_late``) continues
    the count. Returns the delivery's state after the last attempt (None if it is gone).
    """
    delivery = WebhookDelivery.objects.select_related("target").filter(pk=delivery_id).first()
    if delivery is None:
        logger.warning("Webhook delivery %s does not exist; nothing to send.", delivery_id)
        return None
    if delivery.state != WebhookDelivery.State.PENDING:
        return delivery.state

    max_attempts = _max_attempts()
    attempt = WebhookAttempt.objects.create(delivery=delivery, number=delivery.attempts.count() + 1)
    started = time.monotonic()
    retryable = False
    retry_after: str | None = None
    delivered = False

    refusal = _refusal(delivery)
    if refusal is not None:
        attempt.error, retryable = refusal
    else:
        key = webhook_secret_key(delivery.target.secret)
        body = webhook_body(delivery.payload)
        headers = webhook_headers(delivery=delivery, key=key, body=body, timestamp=int(time.time()))
        try:
            with egress_session() as session:
                response = session.post(
                    delivery.target.config["url"],
                    data=body,
                    headers=headers,
                    timeout=_timeout(),
                    allow_redirects=False,
                    stream=True,
                )
                attempt.status_code = response.status_code
                attempt.response_body, read_error = _read_body(response)
        except EgressRefused as exc:
            attempt.error = f"Refused: {exc}"
        except requests.ConnectionError as exc:
            unresolved = _unresolved_in(exc)
            attempt.error = str(unresolved) if unresolved else f"{type(exc).__name__}: {exc}"
            retryable = True
        except requests.Timeout as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
            retryable = True
        except requests.RequestException as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            if 200 <= status < 300:
                delivered = True
            elif 300 <= status < 400:
                location = response.headers.get("Location", "")
                attempt.error = f"HTTP {status}: redirects are not followed (Location: {location})."
            elif status == 429 or status >= 500:
                retryable = True
                retry_after = response.headers.get("Retry-After")
                attempt.error = f"HTTP {status}."
            else:
                attempt.error = f"HTTP {status}."
            if read_error and not attempt.error:
                attempt.error = read_error

    attempt.duration_ms = round((time.monotonic() - started) * 1000)
    attempt.error = _error_text(attempt.error)
    attempt.will_retry = retryable and attempt.number < max_attempts
    attempt.save(
        update_fields=["duration_ms", "status_code", "response_body", "error", "will_retry"]
    )

    if delivered:
        _finish(delivery, WebhookDelivery.State.DELIVERED)
        return WebhookDelivery.State.DELIVERED
    if attempt.will_retry:
        countdown = retry_countdown(attempt.number, retry_after)
        logger.info(
            "Webhook delivery %s attempt %s failed (%s); retrying in %ss.",
            delivery.pk,
            attempt.number,
            attempt.error,
            countdown,
        )
        try:
            if self.request.is_eager:
                # Eager mode (no broker): Task.apply() runs a *returned* Retry at once, in
                # this process, ignoring the countdown; a raised one would escape from
                # delay() because settings turn task_eager_propagates on. The attempt
                # count still ends the chain.
                return self.retry(countdown=countdown, max_retries=max_attempts - 1, throw=False)
            # A worker: the retry is sent to the broker with its countdown; Retry is raised.
            raise self.retry(countdown=countdown, max_retries=max_attempts - 1)
        except MaxRetriesExceededError:
            # Celery's own count ran out before ours (e.g. attempts were deleted).
            attempt.will_retry = False
            attempt.save(update_fields=["will_retry"])
    logger.warning(
        "Webhook delivery %s failed after attempt %s: %s",
        delivery.pk,
        attempt.number,
        attempt.error,
    )
    _finish(delivery, WebhookDelivery.State.FAILED)
    return WebhookDelivery.State.FAILED
