"""What every API view shares: strict query parameters, brand access, ETags, If-Match."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from django.conf import settings
from django.utils.http import http_date, parse_http_date_safe, quote_etag
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from kb.api.auth import Access, BearerTokenAuthentication, IsAuthenticated, access_for
from kb.api.problems import (
    BadRequest,
    MalformedBody,
    ParameterError,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
)
from kb.jsontext import JsonInputError, json_bytes, loads_checked
from kb.models import ApiToken, Brand
from kb.services.permissions import api_scope

COMMON_PARAMS = {"format"}
MAX_VERSION_DIGITS = 18  # versions are 64-bit integers; int() of thousands of digits fails
SAFE = ("GET", "HEAD", "OPTIONS")


class JsonLdRenderer(JSONRenderer):
    """JSON for clients that ask for JSON-LD (``Accept: application/ld+json``)."""

    media_type = "application/ld+json"
    format = "jsonld"


# Django's limit on a body read whole (2.5 MB by default); also the API's, but for imports.
DEFAULT_MAX_BODY_BYTES = 2_621_440


def max_body_bytes(view) -> int:
    """What a view reads at most: its ``max_body_bytes`` (the import endpoint's is
    SOURCEBOOK_IMPORT_MAX_BYTES), else DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = getattr(view, "max_body_bytes", None)
    if callable(limit):
        limit = limit()
    return limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE or DEFAULT_MAX_BODY_BYTES


def check_declared_size(request, limit: int) -> int:
    """The body's Content-Length: a 413 problem when over ``limit``, before reading."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("Content-Length is not a number.") from None
    if declared > limit:
        raise PayloadTooLarge(
            f"The body is {declared:,} bytes, over this endpoint's limit of {limit:,} bytes."
        )
    return declared


def read_body(request, limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes: a 413 problem past it, refused by its
    Content-Length before anything is read when it declares one."""
    if check_declared_size(request, limit) <= 0:
        return b""
    stream = request.stream if hasattr(request, "stream") else request
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise PayloadTooLarge(f"The body is over this endpoint's limit of {limit:,} bytes.")
    return raw


class JsonParser(JSONParser):
    """JSON bodies read safely (kb.jsontext.loads_checked): the view's size limit before
    reading, then nesting, numbers, surrogates and NUL characters, each refused with a 400
    problem naming the JSON pointer instead of a 500 (or storing what cannot be stored)."""

    def parse(self, stream, media_type=None, parser_context=None):
        context = parser_context or {}
        limit = max_body_bytes(context.get("view"))
        request = context.get("request")
        if request is not None:
            check_declared_size(request, limit)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The body is over this endpoint's limit of {limit:,} bytes.")
        try:
            return loads_checked(raw, max_depth=settings.SOURCEBOOK_IMPORT_MAX_DEPTH)
        except JsonInputError as error:
            raise MalformedBody(error.pointer, error.message) from None


class JsonLdParser(JsonParser):
    """Request bodies sent as ``Content-Type: application/ld+json``."""

    media_type = "application/ld+json"


class MergePatchParser(JsonParser):
    """JSON Merge Patch bodies (RFC 7396): ``Content-Type: application/merge-patch+json``."""

    media_type = "application/merge-patch+json"


class TokenRateThrottle(SimpleRateThrottle):
    """Per token (or per signed-in user) request rate, with Retry-After on 429."""

    scope = "api"

    def get_cache_key(self, request, view):
        if request.auth is not None and hasattr(request.auth, "prefix"):
            ident = f"token:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiView(APIView):
    """Base of the API's views.

    ``query_params`` names the parameters a GET understands; anything else is a 400, so a
    typo (``?langauge=zh``) is never silently ignored.
    """

    authentication_classes = [BearerTokenAuthentication, *APIView.authentication_classes]
    permission_classes = [IsAuthenticated]
    throttle_classes = [TokenRateThrottle]
    query_params: frozenset[str] = frozenset()
    # JSON only (no form or multipart bodies), read with limits: see JsonParser.
    parser_classes = [JsonParser, JsonLdParser]
    # Views that answer with a media type of their own (exports, artifact bytes) serve any
    # Accept instead of refusing it with 406.
    any_accept = False

    def get_parsers(self):
        # A view that names DRF's JSONParser gets the safe one (DRF's lets a deeply nested
        # body crash with RecursionError, and keeps NaN, 1e400 and lone surrogates).
        return [JsonParser() if cls is JSONParser else cls() for cls in self.parser_classes]

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=force or self.any_accept)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        nul = sorted(
            name for name, values in request.query_params.lists()
            if "\x00" in name or any("\x00" in v for v in values)
        )  # fmt: skip
        if nul:
            raise ParameterError(
                {name.replace("\x00", "\\u0000"): ["Contains a NUL character."] for name in nul}
            )
        unknown = sorted(set(request.query_params) - self.query_params - COMMON_PARAMS)
        if unknown:
            raise ParameterError(
                {
                    name: [
                        f"Unknown query parameter; this endpoint understands: "
                        f"{', '.join(sorted(self.query_params)) or 'none'}."
                    ]
                    for name in unknown
                }
            )

    # -- brands and scopes --

    def access(self, slug: str, scope: str) -> Access:
        """The caller's access to the brand, which must grant the scope the endpoint is
        declared with in ``API_POLICY`` (and ``scope``, which a view asks for on top: a
        publishing import needs ``publish``)."""
        brand = self.brand_named(slug)
        access = access_for(self.request, brand) if brand else None
        if access is None:
            raise exceptions.NotFound(f"No brand {slug!r}.")
        method = "GET" if self.request.method == "HEAD" else self.request.method
        declared = api_scope(self.request.resolver_match.url_name, method)
        for needed in dict.fromkeys((declared, scope)):
            if needed not in access.scopes:
                raise exceptions.PermissionDenied(
                    f"This needs the {needed!r} scope; the credentials have "
                    f"{', '.join(sorted(access.scopes)) or 'none'}."
                )
        return access

    def brand_named(self, slug: str) -> Brand | None:
        token = self.request.auth
        if isinstance(token, ApiToken):
            # A token reaches its own brand only, which authenticating it read already: one
            # query fewer on every token request.
            return token.brand if token.brand.slug == slug else None
        # get(), not first(): no ORDER BY to build for a unique column.
        try:
            return Brand.objects.get(slug=slug)
        except Brand.DoesNotExist:
            return None

    # -- conditional requests --

    def conditional(self, data, *, last_modified: datetime | None = None, version: int | None = None,
                    content_type: str | None = None) -> Response:  # fmt: skip
        """A 200 with ETag/Last-Modified, or a 304 when the client's copy is current."""
        # Fast JSON (kb.jsontext): a page of a list is 60 KB, serialized again to answer.
        body = json_bytes(data, sort_keys=True, default=str)
        digest = hashlib.sha256(body + (content_type or "").encode()).hexdigest()[:20]
        etag = quote_etag(f"{version}.{digest}" if version is not None else digest)
        headers = {"ETag": etag}
        if last_modified is not None:
            headers["Last-Modified"] = http_date(last_modified.timestamp())
        # Only reads answer 304: a write that was done must say so.
        if self.request.method in SAFE and self.not_modified(etag, last_modified):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        response = Response(data, headers=headers, content_type=content_type)
        return response

    def not_modified(self, etag: str, last_modified: datetime | None) -> bool:
        if_none_match = self.request.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
            return "*" in tags or etag in tags
        since = self.request.headers.get("If-Modified-Since")
        if since and last_modified is not None:
            parsed = parse_http_date_safe(since)
            return parsed is not None and int(last_modified.timestamp()) <= parsed
        return False

    def expected_version(self, current: int) -> int:
        """The version the client based its write on, from If-Match; 428 without one."""
        header = self.request.headers.get("If-Match")
        if not header:
            raise PreconditionRequired()
        match = re.match(r'^\s*(?:W/)?"?(\d+)(?:\.[0-9a-f]+)?"?\s*$', header)
        if not match:
            raise PreconditionFailed("If-Match must be the ETag you read (or the version number).")
        if len(match.group(1)) > MAX_VERSION_DIGITS:
            raise BadRequest(
                f"The If-Match header holds a version number of {len(match.group(1)):,} digits; "
                f"a version has at most {MAX_VERSION_DIGITS}. Send the ETag you read."
            )
        version = int(match.group(1))
        if version != current:
            raise PreconditionFailed(
                f"The resource is at version {current}, you sent changes based on version "
                f"{version}: nothing was changed. Read it again and redo your change."
            )
        return version
