"""The API floor: a bare Django view returning a constant JSON body, in front of the
project's URLs (used only by ``tests.benchmarks.settings``).

The body is serialized once; each request goes through the project's full middleware stack
(sessions, locale, CSRF, auth, messages…) and URL resolution, but no database query,
authentication or serializer: the least a request to this Django project can cost.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

FLOOR_BODY = json.dumps(
    {
        "id": "00000000-0000-5000-8000-000000000000",
        "type": "Product",
        "name": "Constant",
        "data": {"sku": [{"@value": "SKU-000000"}], "gtin13": [{"@value": "2000000000008"}]},
    }
).encode()


def floor_view(request: HttpRequest) -> HttpResponse:
    """The constant JSON body."""
    return HttpResponse(FLOOR_BODY, content_type="application/json")


urlpatterns = [
    path("bench/floor/", floor_view, name="bench-floor"),
    path("", include("config.urls")),
]
