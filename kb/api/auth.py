"""Bearer tokens scoped to one brand; session users act through their brand roles."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from kb.models import ApiToken, Brand
from kb.services.permissions import ALL_SCOPES, brand_role, scopes_for_role, user_can
from kb.services.tokens import api_token_authenticate


class TokenUser(AnonymousUser):
    """Who a token request acts as: nobody, for the brand of the token."""

    def __init__(self, token: ApiToken):
        super().__init__()
        self.token = token

    @property
    def is_authenticated(self):
        return True

    def __str__(self):
        return f"API token {self.token.prefix}"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword != self.keyword:
            return None
        token = api_token_authenticate(raw.strip())
        if token is None:
            raise exceptions.AuthenticationFailed("The token is unknown or revoked.")
        return TokenUser(token), token

    def authenticate_header(self, request):
        return 'Bearer realm="sourcebook"'


@dataclass(frozen=True)
class Access:
    """What the request may do in one brand."""

    brand: Brand
    scopes: frozenset[str]
    user: object | None  # the Django user for session requests (for audit), None for tokens


def access_for(request, brand: Brand) -> Access | None:
    """None when the brand does not exist for this caller (no existence leak)."""
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is not None:
        if token.brand_id != brand.pk:
            return None
        return Access(brand, frozenset(token.scopes), None)
    user = request.user
    if not user or not user.is_authenticated:
        return None
    if user.is_superuser:
        return Access(brand, ALL_SCOPES, user)
    role = brand_role(user, brand)
    if role is None or not user_can(user, brand, "view"):
        return None
    return Access(brand, scopes_for_role(role), user)


def brands_visible(request):
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is not None:
        if "read" not in token.scopes:
            return Brand.objects.none()
        return Brand.objects.filter(pk=token.brand_id)
    from kb.services.permissions import brands_for

    return brands_for(request.user)


class IsAuthenticated(permissions.BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "kb.api.auth.BearerTokenAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A brand API token: `python manage.py create_api_token SLUG --scope read`.",
        }
