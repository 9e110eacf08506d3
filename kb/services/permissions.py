"""Per-brand permissions. ``user=None`` is the system (CLI, scheduled tasks)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from kb.models import Brand, BrandMembership

Role = BrandMembership.Role

ALLOWED_ROLES = {
    "view": {Role.EDITOR, Role.REVIEWER, Role.ADMIN},
    "edit": {Role.EDITOR, Role.REVIEWER, Role.ADMIN},
    "publish": {Role.REVIEWER, Role.ADMIN},
    "admin": {Role.ADMIN},
}

ACTION_WORDS = {
    "view": "see",
    "edit": "edit content of",
    "publish": "publish content of",
    "admin": "administer",
}


def brand_role(user, brand: Brand) -> str | None:
    if user is None or not user.is_authenticated:
        return None
    membership = BrandMembership.objects.filter(user=user, brand=brand).only("role").first()
    return membership.role if membership else None


def user_can(user, brand: Brand, action: str) -> bool:
    if user is None:
        return True
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    return brand_role(user, brand) in ALLOWED_ROLES[action]


def require(user, brand: Brand, action: str) -> None:
    if not user_can(user, brand, action):
        raise PermissionDenied(f"{user} may not {ACTION_WORDS[action]} brand {brand.slug!r}.")


def brands_for(user, action: str = "view"):
    if user is None or not user.is_authenticated or not user.is_active:
        return Brand.objects.none()
    if user.is_superuser:
        return Brand.objects.all()
    return Brand.objects.filter(
        memberships__user=user, memberships__role__in=ALLOWED_ROLES[action]
    ).distinct()
