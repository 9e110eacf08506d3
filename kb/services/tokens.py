"""API tokens: created with scopes, shown once, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.utils import timezone

from kb.models import ApiToken, Brand
from kb.services.permissions import require

TOKEN_PREFIX = "sb"
SCOPES = tuple(ApiToken.Scope.values)


class TokenError(ValueError):
    pass


def token_hash(raw: str) -> str:
    # Tokens are 256-bit random strings: a fast hash is enough (nothing to brute-force).
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(
    *, brand: Brand, scopes: list[str], name: str = "", user=None
) -> tuple[ApiToken, str]:
    """Create a token; returns it and the raw token, which is never stored or shown again."""
    require(user, brand, "admin")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise TokenError(
            f"Unknown scope {', '.join(map(repr, unknown))}; use {', '.join(SCOPES)}."
            if unknown
            else f"Give at least one scope: {', '.join(SCOPES)}."
        )
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        brand=brand,
        name=name[:100],
        prefix=prefix,
        token_hash=token_hash(raw),
        scopes=sorted(set(scopes), key=SCOPES.index),
        created_by=user,
    )
    return token, raw


def api_token_authenticate(raw: str) -> ApiToken | None:
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != TOKEN_PREFIX:
        return None
    try:
        token = ApiToken.objects.select_related("brand").get(prefix=parts[1])
    except ApiToken.DoesNotExist:
        return None
    if token.revoked_at is not None:
        return None
    if not hmac.compare_digest(token.token_hash, token_hash(raw)):
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def api_token_revoke(*, token: ApiToken, user=None) -> None:
    require(user, token.brand, "admin")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
