"""API keys at rest: Fernet-encrypted with keys from the environment, never stored in plain text.

``SOURCEBOOK_ENCRYPTION_KEYS`` holds one or more Fernet keys, newest first, separated by commas
(``MultiFernet``: old keys still decrypt while new values use the first). Without it, a key is
derived from ``SECRET_KEY``, which production also takes from the environment.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnavailable(Exception):
    """The key cannot be read: not decryptable with the current keys, or its variable unset."""


def _fernet() -> MultiFernet:
    configured = [k.strip() for k in os.environ.get("SOURCEBOOK_ENCRYPTION_KEYS", "").split(",")]
    keys = [Fernet(k) for k in configured if k]
    if not keys:
        digest = hashlib.sha256(b"sourcebook-secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = [Fernet(base64.urlsafe_b64encode(digest))]
    return MultiFernet(keys)


def secret_encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode("ascii") if value else ""


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise SecretUnavailable(
            "The stored API key cannot be decrypted with the current SOURCEBOOK_ENCRYPTION_KEYS: "
            "enter it again."
        ) from None
