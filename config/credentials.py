"""Credentials that brand data names by environment variable (S3 targets, engines).

A brand user types the NAME of a variable; the process reads its value and sends it out.
Only names the operator lists are accepted, so brand data can never send ``SECRET_KEY``,
``DATABASE_URL`` or any other variable of the process anywhere.
"""

from __future__ import annotations

from django.conf import settings

CREDENTIAL_SETTING = "SOURCEBOOK_CREDENTIAL_ENV"


def credential_env_allowed() -> list[str]:
    raw = getattr(settings, CREDENTIAL_SETTING, None) or []
    if isinstance(raw, str):
        raw = raw.split(",")
    return [name.strip() for name in raw if name and name.strip()]


def credential_env_problem(name: str) -> str | None:
    """Why brand data may not name the environment variable ``name``, or None.

    Only the variables the operator lists in ``SOURCEBOOK_CREDENTIAL_ENV`` may be named:
    anything else (``SECRET_KEY``, ``DATABASE_URL`` …) would be sent out as a credential.
    The text follows the field's name: ``api_key_env names SECRET_KEY, which …``.
    """
    allowed = credential_env_allowed()
    if name in allowed:
        return None
    listed = ", ".join(allowed) if allowed else "none yet"
    return (
        f"names {name}, which is not an environment variable the operator allowed for "
        f"credentials in {CREDENTIAL_SETTING} (allowed: {listed})"
    )
