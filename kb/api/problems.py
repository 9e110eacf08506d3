"""Errors as RFC 9457 problem details: one format for every error of the API."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, UnreadablePostError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_TYPE = "https://sourcebook.example/problems/"


class ParameterError(exceptions.ValidationError):
    """A bad query parameter: reported with "parameter" (RFC 9457 style) instead of a pointer."""


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource changed since you read it."
    default_code = "precondition-failed"


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = "Send If-Match with the ETag (or version number) you read."
    default_code = "precondition-required"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"

    def __init__(self, detail=None, errors: list[dict] | None = None):
        self.errors = errors
        super().__init__(detail)


class UnprocessableContent(exceptions.APIException):
    """Content that is not valid: ``detail`` is a list of {pointer, detail}."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, errors: list[dict], title: str = "The content is not valid."):
        self.errors = errors
        super().__init__(title)


class BadRequest(exceptions.APIException):
    """A request the API cannot read (a header, a body): 400 with an optional list of
    {pointer, detail} (JSON pointers into the body)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request cannot be read."
    default_code = "bad-request"

    def __init__(self, detail=None, errors: list[dict] | None = None):
        self.errors = errors
        super().__init__(detail)


class MalformedBody(BadRequest):
    """A body that is not acceptable JSON: malformed, too deep, numbers out of range, lone
    surrogates, NUL characters (see kb.jsontext.loads_checked)."""

    default_detail = "The body is not acceptable JSON."
    default_code = "malformed-body"

    def __init__(self, pointer: str, message: str):
        super().__init__(
            f"The body is not acceptable JSON: {message} (at {pointer or '/'}).",
            [{"pointer": pointer or "/", "detail": message}],
        )


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is larger than this endpoint accepts."
    default_code = "payload-too-large"


TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    428: "Precondition required",
    429: "Too many requests",
}


def flatten(detail, pointer: str = "") -> list[dict]:
    """DRF validation detail → [{"pointer": "/field/0", "detail": "…"}]."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            child = pointer if key == "non_field_errors" else f"{pointer}/{key}"
            out += flatten(value, child)
        return out
    if isinstance(detail, list):
        if all(isinstance(d, str) for d in detail):
            return [{"pointer": pointer or "/", "detail": str(d)} for d in detail]
        out = []
        for index, value in enumerate(detail):
            out += flatten(value, f"{pointer}/{index}")
        return out
    return [{"pointer": pointer or "/", "detail": str(detail)}]


def too_large_detail(request) -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except ValueError:
        size = 0
    if size and limit:
        return (
            f"The body is {size:,} bytes, over this endpoint's limit of {limit:,} bytes "
            "(DATA_UPLOAD_MAX_MEMORY_SIZE)."
        )
    return "The body is larger than this endpoint accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)."


def problem_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        # Django's own limit on a body read whole (DRF reads JSON bodies so): a problem, not
        # Django's HTML error page.
        exc = PayloadTooLarge(too_large_detail(context.get("request")))
    elif isinstance(exc, SuspiciousOperation):  # too many form fields or files, bad headers…
        exc = BadRequest(f"The request cannot be read: {exc}")
    elif isinstance(exc, UnreadablePostError):  # the client went away mid-body
        exc = BadRequest("The body could not be read to its end.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = response.status_code
    body = {
        "type": PROBLEM_TYPE + (getattr(exc, "default_code", None) or "error").replace("_", "-"),
        "title": TITLES.get(code, "Error"),
        "status": code,
    }
    if isinstance(exc, UnprocessableContent):
        body["detail"] = str(exc.detail)
        body["errors"] = exc.errors
    elif isinstance(exc, ParameterError):
        body["detail"] = "A query parameter is not valid."
        body["errors"] = [
            {"parameter": name, "detail": " ".join(map(str, messages))}
            for name, messages in exc.detail.items()
        ]
    elif isinstance(exc, exceptions.ValidationError):
        body["detail"] = "The request is not valid."
        body["errors"] = flatten(exc.detail)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        body["detail"] = str(detail)
        if getattr(exc, "errors", None):
            body["errors"] = exc.errors
    request = context.get("request")
    if request is not None:
        body["instance"] = request.get_full_path()
    problem = Response(body, status=code, headers=dict(response.items()))
    problem.content_type = "application/problem+json"
    return problem
