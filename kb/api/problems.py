"""Errors as RFC 9457 problem details: one format for every error of the API."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
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


TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
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


def problem_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
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
