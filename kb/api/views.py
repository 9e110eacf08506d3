"""Delivery and management of a brand's content: brands, entities, facts, FAQs, import, export."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.db.models import Max, Q
from django.http import StreamingHttpResponse
from django.urls import Resolver404, resolve
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from kb import jsonld, vocabulary
from kb.api.auth import brands_visible
from kb.api.base import (
    ApiView,
    JsonLdParser,
    JsonLdRenderer,
    JsonParser,
    MergePatchParser,
    read_body,
)
from kb.api.problems import (
    BadRequest,
    Conflict,
    ParameterError,
    PreconditionFailed,
    UnprocessableContent,
)
from kb.api.serializers import (
    BrandSerializer,
    EntityPageSerializer,
    EntitySerializer,
    FactPageSerializer,
    FactSerializer,
    FAQPageSerializer,
    FAQSerializer,
    ImportResultSerializer,
    ProblemSerializer,
)
from kb.importing import read_files, source_from_bytes
from kb.jsontext import JsonInputError, loads_checked
from kb.models import FAQ, ApiToken, AuditEntry, Brand, Entity, Fact, ImportJob, localized_text
from kb.selectors import PublishedEntityRow, brand_nodes, entity_published_rows
from kb.services import entities as entity_services
from kb.services import statements as statement_services
from kb.services.errors import (
    InvalidContent,
    PublishBlocked,
    ReferencedError,
    StaleEditError,
    WorkflowError,
)
from kb.services.imports import ImportRefused, count_nodes, import_job_create, jsonld_import
from kb.services.workflow import object_publish

JSONLD = "application/ld+json"
MERGE_PATCH = "application/merge-patch+json"
PROBLEM_JSON = "application/problem+json"
PROBLEMS = {
    (code, PROBLEM_JSON): OpenApiResponse(ProblemSerializer, description=text)
    for code, text in (
        (400, "Invalid request: unknown parameters or invalid content (with JSON pointers)."),
        (401, "No or an unknown token."),
        (403, "The token lacks the scope."),
        (404, "No such brand or object for these credentials."),
        (429, "Too many requests: see Retry-After."),
    )
}
READ_PROBLEMS = {
    304: OpenApiResponse(
        description="Not modified: the copy named by If-None-Match or If-Modified-Since is current."
    ),
    **PROBLEMS,
}
WRITE_PROBLEMS = {
    **PROBLEMS,
    (409, PROBLEM_JSON): OpenApiResponse(
        ProblemSerializer, description="Referenced by other entities."
    ),
    (412, PROBLEM_JSON): OpenApiResponse(
        ProblemSerializer, description="Stale If-Match: nothing was changed."
    ),
    (415, PROBLEM_JSON): OpenApiResponse(
        ProblemSerializer, description="The body is not in a media type the endpoint reads."
    ),
    (428, PROBLEM_JSON): OpenApiResponse(ProblemSerializer, description="If-Match is required."),
}
# One schema.org JSON-LD node (@context optional: schema.org is assumed).
JSONLD_NODE = {"application/json": OpenApiTypes.OBJECT, JSONLD: OpenApiTypes.OBJECT}
SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The brand's slug.")
LANG = OpenApiParameter(
    "lang", str, description="Language (a brand language): the body in that language only "
    "(plain values, falling back to the default language per value; Content-Language names "
    "the languages served). Without it the body holds every language; Accept-Language picks "
    "the name and description fields.",
)  # fmt: skip
STATE = OpenApiParameter(
    "state", str, enum=["published", "latest"], description="latest needs the preview scope."
)
IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=True,
    description="The ETag you read (or the version number).",
)  # fmt: skip
SERVICE_ERRORS = (InvalidContent, ReferencedError, StaleEditError, WorkflowError)


def negotiate_language(request, brand: Brand) -> str:
    requested = request.query_params.get("lang")
    if requested:
        language = brand.canonical_language(requested)
        if language is None:
            raise ParameterError(
                {"lang": [f"Not a language of this brand ({', '.join(brand.languages)})."]}
            )
        return language
    for tag in accepted_languages(request.headers.get("Accept-Language", "")):
        exact = brand.canonical_language(tag)
        if exact:
            return exact
        for language in brand.languages:
            if language.lower().split("-")[0] == tag.lower().split("-")[0]:
                return language
    return brand.default_language


def accepted_languages(header: str) -> list[str]:
    """The tags of an Accept-Language header, most wanted first (q=0 and * left out)."""
    ranked = []
    for index, part in enumerate(header.split(",")):
        tag, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def service_error(error: Exception) -> exceptions.APIException:
    if isinstance(error, InvalidContent):
        return UnprocessableContent(
            [{"pointer": p.pointer, "detail": p.message} for p in error.problems]
        )
    if isinstance(error, StaleEditError):
        return PreconditionFailed(str(error))
    if isinstance(error, PublishBlocked):
        return Conflict(
            str(error), [{"pointer": f.pointer or "/", "detail": f.message} for f in error.findings]
        )
    if isinstance(error, ReferencedError | WorkflowError):
        return Conflict(str(error))
    return exceptions.APIException(str(error))


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        """Like DRF's, but a page or page size that is not a positive number is a 400."""
        problems = {}
        for name in (self.page_query_param, self.page_size_query_param):
            raw = request.query_params.get(name)
            # ASCII digits only, and few (int() of thousands of digits fails; "²" is a digit).
            if raw is not None and not (re.fullmatch(r"[0-9]{1,9}", raw) and int(raw) > 0):
                problems[name] = [f"Give a positive whole number, not {raw!r}."]
        if problems:
            raise ParameterError(problems)
        return super().paginate_queryset(queryset, request, view)

    def page_data(self, results: list) -> dict:
        return {
            "count": self.page.paginator.count,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "results": results,
        }


class NoEndpoint(ApiView):
    """Any other path under /api/ (e.g. an entity id that is no UUID): a 404 problem
    instead of Django's HTML page (or, for a POST without the trailing slash, a 500)."""

    schema = None

    def initial(self, request, *args, **kwargs):
        APIView.initial(self, request, *args, **kwargs)  # no query parameter check
        detail = "No such API endpoint."
        if not request.path.endswith("/"):
            try:
                match = resolve(request.path + "/")
            except Resolver404:
                match = None
            if match is not None and match.url_name != "api-no-endpoint":
                detail += f" Did you mean {request.path}/ (with the trailing slash)?"
        raise exceptions.NotFound(detail)


# --- brands --------------------------------------------------------------------------------


class BrandList(ApiView):
    @extend_schema(
        responses={200: BrandSerializer(many=True), **READ_PROBLEMS},
        tags=["delivery"],
        operation_id="v1_brands_list",
    )
    def get(self, request):
        """The brands these credentials can read."""
        brands = list(brands_visible(request).order_by("slug"))
        last = max((b.updated_at for b in brands), default=None)
        return self.conditional(BrandSerializer(brands, many=True).data, last_modified=last)


class BrandDetail(ApiView):
    @extend_schema(
        parameters=[SLUG], responses={200: BrandSerializer, **READ_PROBLEMS}, tags=["delivery"]
    )
    def get(self, request, slug):
        access = self.access(slug, "read")
        return self.conditional(
            BrandSerializer(access.brand).data, last_modified=access.brand.updated_at
        )


# --- entities ------------------------------------------------------------------------------


def changed_at(brand: Brand, model) -> datetime | None:
    """When the brand's objects of ``model`` last changed, deletions included: a list's
    Last-Modified (and the export's ETag) must move when a row leaves it."""
    edited = model.objects.filter(brand=brand).aggregate(m=Max("updated_at"))["m"]
    deleted = AuditEntry.objects.filter(
        brand=brand, content_type=ContentType.objects.get_for_model(model), action="delete"
    ).aggregate(m=Max("timestamp"))["m"]
    return max((m for m in (edited, deleted) if m), default=None)


def entity_state(view: ApiView, access) -> str:
    state = view.request.query_params.get("state", "published")
    if state not in ("published", "latest"):
        raise ParameterError({"state": ["Use published or latest."]})
    if state == "latest" and "preview" not in access.scopes:
        raise exceptions.PermissionDenied("state=latest needs the 'preview' scope.")
    return state


def entity_representation(
    entity: Entity, state: str, language: str, fallbacks: dict[str, str] | None = None
) -> dict:
    """``fallbacks``: given (a dict) for a one-language body (``?lang``), which collects the
    JSON pointer of each value that fell back to another language, and that language."""
    if state == "published":
        content = entity.live_revision.content
        data, types, iri, slug = content["data"], content["types"], content["iri"], content["slug"]
    else:
        data, types, iri, slug = entity.data, entity.types, entity.iri, entity.slug
    return representation(
        brand=entity.brand, entity_id=entity.uuid, iri=iri, slug=slug, types=types,
        primary_type=entity.primary_type, data=data, status=entity.status,
        version=entity.version, updated_at=entity.updated_at,
        published_at=entity.last_published_at, state=state, language=language,
        fallbacks=fallbacks,
    )  # fmt: skip


def published_representation(
    row: PublishedEntityRow, brand: Brand, language: str, fallbacks: dict[str, str] | None = None
) -> dict:
    """An entity of a list as published, from its row (see ``entity_published_rows``)."""
    content = row.content
    return representation(
        brand=brand, entity_id=row.uuid, iri=content["iri"], slug=content["slug"],
        types=content["types"], primary_type=row.primary_type, data=content["data"],
        status=row.status, version=row.version, updated_at=row.updated_at,
        published_at=row.last_published_at, state="published", language=language,
        fallbacks=fallbacks,
    )  # fmt: skip


def representation(
    *, brand: Brand, entity_id: uuid.UUID, iri: str, slug: str, types: list[str], primary_type: str,
    data: dict, status: str, version: int, updated_at: datetime, published_at: datetime | None,
    state: str, language: str, fallbacks: dict[str, str] | None = None,
) -> dict:  # fmt: skip
    """What the API shows of an entity (EntitySerializer documents it): ``data`` in the
    stored form (every language), or, when ``fallbacks`` is a dict (``?lang``), compacted
    to plain values in ``language``."""
    name = localized_text(data.get("name", []), brand, language)
    description = localized_text(data.get("description", []), brand, language)
    if fallbacks is not None:
        data = one_language(
            jsonld.compact_node([], data), language, brand.default_language, "/data", fallbacks
        )
    return {
        "id": str(entity_id),
        "iri": iri,
        "slug": slug,
        "types": types,
        "primary_type": types[0] if types else primary_type,
        "name": name,
        "description": description,
        "language": language,
        "status": status,
        "version": version,
        "state": state,
        "updated_at": updated_at.isoformat(),
        "published_at": published_at.isoformat() if published_at else None,
        "data": data,
    }


def entity_jsonld(
    entity: Entity, state: str, language: str | None, fallbacks: dict[str, str] | None = None
) -> dict:
    content = entity.live_revision.content if state == "published" else entity.snapshot()
    node = jsonld.compact_node(content["types"], content["data"], iri=content["iri"])
    if language:
        node = one_language(
            node,
            language,
            entity.brand.default_language,
            "",
            {} if fallbacks is None else fallbacks,
        )
    return {"@context": "https://schema.org", **node}


def one_language(node: dict, language: str, default: str, pointer: str, fallbacks: dict) -> dict:
    """A compacted node's language-tagged texts as plain strings in ``language`` (else the
    default language, else the first there is), like ``jsonld.localize_node``; the JSON
    pointer of every value served in another language than ``language`` goes to
    ``fallbacks``, with the language served."""
    return {
        key: value if key.startswith("@") else _localize(value, language, default, f"{pointer}/{key}", fallbacks)
        for key, value in node.items()
    }  # fmt: skip


def _localize(value, language: str, default: str, pointer: str, fallbacks: dict):
    if isinstance(value, list):
        tagged = [v for v in value if isinstance(v, dict) and "@language" in v and "@value" in v]
        if tagged and len(tagged) == len(value):
            by_language = {v["@language"]: v["@value"] for v in tagged}
            for candidate in (language, default):
                if candidate in by_language:
                    if candidate != language:
                        fallbacks[pointer] = candidate
                    return by_language[candidate]
            fallbacks[pointer] = tagged[0]["@language"]
            return tagged[0]["@value"]
        if len(value) == 1:
            return _localize(value[0], language, default, pointer, fallbacks)
        return [
            _localize(v, language, default, f"{pointer}/{i}", fallbacks)
            for i, v in enumerate(value)
        ]
    if isinstance(value, dict):
        if "@language" in value and "@value" in value:
            if value["@language"] != language:
                fallbacks[pointer] = value["@language"]
            return value["@value"]
        return one_language(value, language, default, pointer, fallbacks)
    return value


def languages_in(value, found: dict | None = None) -> dict:
    """The language tags of a body's values, in the order met (a dict used as an ordered set)."""
    found = {} if found is None else found
    if isinstance(value, list):
        for item in value:
            languages_in(item, found)
    elif isinstance(value, dict):
        tag = value.get("@language")
        if isinstance(tag, str) and "@value" in value:
            found[tag] = None
        for key, item in value.items():
            if key != "@language":
                languages_in(item, found)
    return found


def explicit_language(request, brand: Brand) -> str | None:
    """The language of ``?lang`` (canonical), None without it."""
    return negotiate_language(request, brand) if request.query_params.get("lang") else None


def content_language(response, languages) -> None:
    """Content-Language (RFC 9110 §8.5): the languages of the representation's audience:
    the one asked for (and those some values fell back to), or, for a body holding
    every language, each language in it; none when it holds no language-tagged text."""
    languages = list(dict.fromkeys(languages))
    if languages:
        response["Content-Language"] = ", ".join(languages)


def served_languages(language: str, fallbacks: dict[str, str]) -> list[str]:
    """The language asked for, then those of the values that fell back (the default
    language; else, when a text has neither, the language it has)."""
    return [language, *fallbacks.values()]


class EntityList(ApiView):
    query_params = frozenset(
        {"type", "lang", "q", "updated_since", "page", "page_size", "state", "slug"}
    )
    parser_classes = [JsonParser, JsonLdParser]

    @extend_schema(
        parameters=[
            SLUG,
            LANG,
            STATE,
            OpenApiParameter(
                "type",
                str,
                description="A schema.org type; subtypes match too (type=LocalBusiness finds Stores).",
            ),
            OpenApiParameter("q", str, description="Text search in names and identifiers."),
            OpenApiParameter("slug", str, description="The entity with this slug."),
            OpenApiParameter(
                "updated_since", OpenApiTypes.DATETIME, description="Changed (or published) since."
            ),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="Default 50, at most 200."),
        ],  # fmt: skip
        responses={200: EntityPageSerializer, **READ_PROBLEMS},
        tags=["delivery"],
        operation_id="v1_brands_entities_list",
    )
    def get(self, request, slug):
        """The brand's entities, filtered and paginated."""
        access = self.access(slug, "read")
        state = entity_state(self, access)
        language = negotiate_language(request, access.brand)
        query = Entity.objects.filter(brand=access.brand)
        if state == "published":
            query = query.filter(live_revision__isnull=False)
        params = request.query_params
        if "type" in params:
            wanted = params["type"]
            if not vocabulary.is_class(wanted):
                raise ParameterError({"type": [f"{wanted!r} is not a schema.org type."]})
            subtypes = [c for c in vocabulary.all_classes() if vocabulary.is_subclass(c, wanted)]
            query = query.filter(primary_type__in=subtypes)
        if params.get("q"):
            text = params["q"]
            query = query.filter(
                Q(label__icontains=text) | Q(slug__icontains=text) | Q(iri__icontains=text)
            )
        if params.get("slug"):
            query = query.filter(slug=params["slug"])
        if "updated_since" in params:
            try:  # parse_datetime raises on well-formed nonsense (9999-99-99T00:00:00Z)
                since = parse_datetime(params["updated_since"])
                if since is not None and since.tzinfo is not None:
                    # In UTC: year 1 at +14:00 is before the first UTC date (an error here),
                    # and PostgreSQL refuses offsets past ±15:59 that Python accepts (-18:36).
                    since = since.astimezone(UTC)
            except (ValueError, OverflowError):
                since = None
            if since is None or since.tzinfo is None:
                raise ParameterError(
                    {"updated_since": ["Give an ISO 8601 date-time with a time zone."]}
                )
            field = "last_published_at" if state == "published" else "updated_at"
            query = query.filter(**{f"{field}__gte": since})
        query = query.order_by("primary_type", "slug")
        paginator = Pagination()
        # The page's ids first, then its rows: sorting only narrow rows keeps a page of a
        # 100,000-product catalog as cheap as one of a hundred.
        ids = paginator.paginate_queryset(query.values_list("pk", flat=True), request, view=self)
        # The page's rows without what their representations do not show: a published entity
        # is its live revision (not the working copy), and every row's brand is the one
        # already read (each row's copy of it was parsed again). An entity withdrawn or
        # deleted since its id was read is left out, not an error.
        brand = access.brand
        # With ?lang, each entity's data in that language (see EntityDetail.get).
        fallbacks = {} if explicit_language(request, brand) else None
        if state == "published":
            found = entity_published_rows(brand=brand, ids=ids)
            results = [
                published_representation(found[pk], brand, language, fallbacks)
                for pk in ids
                if pk in found
            ]
        else:
            found = Entity.objects.filter(brand=brand).in_bulk(ids)
            for entity in found.values():
                entity.brand = brand
            results = [
                entity_representation(found[pk], state, language, fallbacks)
                for pk in ids
                if pk in found
            ]
        last = changed_at(brand, Entity)
        data = paginator.page_data(results)
        response = self.conditional(data, last_modified=last)
        if fallbacks is None:
            content_language(response, languages_in([r["data"] for r in results]))
        else:
            content_language(response, served_languages(language, fallbacks))
        response["Vary"] = "Accept-Language, Authorization"
        return response

    @extend_schema(
        parameters=[SLUG],
        request=JSONLD_NODE,
        responses={201: EntitySerializer, **WRITE_PROBLEMS},
        tags=["management"],
    )
    def post(self, request, slug):
        """Create an entity from a schema.org JSON-LD node (checked like an import)."""
        access = self.access(slug, "write")
        planned = plan_single_node(access.brand, request.data)
        try:
            entity = entity_services.entity_create(
                brand=access.brand,
                types=planned.types,
                data=planned.data,
                iri=None if planned.iri_generated else planned.iri,
                user=access.user,
                message="Created through the API",
            )
        except SERVICE_ERRORS as error:
            raise service_error(error) from None
        except DjangoPermissionDenied as error:
            raise exceptions.PermissionDenied(str(error)) from None
        entity = Entity.objects.select_related("brand", "live_revision").get(pk=entity.pk)
        response = entity_response(self, entity, "latest")
        response.status_code = status.HTTP_201_CREATED
        response["Location"] = f"/api/v1/brands/{slug}/entities/{entity.uuid}/"
        return response


def entity_response(view: ApiView, entity: Entity, state: str, *, as_jsonld: bool = False,
                    last_modified: datetime | None = None):  # fmt: skip
    """An entity's representation (JSON, or JSON-LD), with its ETag (one per media type and
    language: each is a hash of the body), Content-Language and, with ``?lang``, the values
    that fell back to the default language (``Sourcebook-Language-Fallbacks``)."""
    request, brand = view.request, entity.brand
    language = negotiate_language(request, brand)
    explicit = explicit_language(request, brand)
    fallbacks = {} if explicit else None
    if as_jsonld:
        data = entity_jsonld(entity, state, explicit, fallbacks)
        languages = languages_in(data)
    else:
        data = entity_representation(entity, state, language, fallbacks)
        languages = languages_in(data["data"])
    response = view.conditional(
        data, last_modified=last_modified, version=entity.version,
        content_type=JSONLD if as_jsonld else None,
    )  # fmt: skip
    language_headers(response, explicit, fallbacks, languages)
    return response


def language_headers(response, explicit: str | None, fallbacks: dict | None, languages) -> None:
    """Content-Language: with ``?lang`` (``explicit``) the languages served, and the values
    that fell back in Sourcebook-Language-Fallbacks; else every language the body holds."""
    if explicit:
        content_language(response, served_languages(explicit, fallbacks))
        if fallbacks:
            response["Sourcebook-Language-Fallbacks"] = ", ".join(fallbacks)
    else:
        content_language(response, languages)


def plan_single_node(brand: Brand, body) -> object:
    """Read one JSON-LD node like an import does, with problems as JSON pointers."""
    if not isinstance(body, dict):
        raise UnprocessableContent(
            [{"pointer": "/", "detail": "Send one JSON-LD node (a JSON object)."}]
        )
    document = body if "@context" in body else {"@context": "https://schema.org", **body}
    reading = read_files(brand, [source_from_bytes("request", json.dumps(document).encode())])[0]
    if reading.problems:
        raise UnprocessableContent(
            [{"pointer": p.pointer or "/", "detail": p.message} for p in reading.problems]
        )
    if len(reading.entities) != 1:
        raise UnprocessableContent(
            [{"pointer": "/", "detail": "Send exactly one node; nested nodes with their own @id "
              "are entities of their own: create them first, or use the import endpoint."}]
        )  # fmt: skip
    return reading.entities[0]


class EntityDetail(ApiView):
    query_params = frozenset({"lang", "state"})
    renderer_classes = [JSONRenderer, JsonLdRenderer]
    parser_classes = [JsonParser, JsonLdParser, MergePatchParser]

    def entity(self, access, entity_id) -> Entity:
        # get() on the unique uuid, not first() (an ORDER BY to build), and the brand that
        # access read already, not joined again: the delivery API's most frequent read.
        try:
            entity = Entity.objects.select_related("live_revision").get(
                brand=access.brand, uuid=entity_id
            )
        except Entity.DoesNotExist:
            raise exceptions.NotFound("No such entity in this brand.") from None
        entity.brand = access.brand
        return entity

    @extend_schema(
        parameters=[SLUG, LANG, STATE],
        responses={
            (200, "application/json"): EntitySerializer,
            (200, JSONLD): OpenApiTypes.OBJECT,
            **READ_PROBLEMS,
        },
        tags=["delivery"],
        description="With `Accept: application/ld+json` (or the `.jsonld` suffix) the entity "
        "comes as a schema.org JSON-LD node, in the requested language if `lang` is given.",
    )
    def get(self, request, slug, entity_id, as_jsonld: bool = False):
        access = self.access(slug, "read")
        state = entity_state(self, access)
        entity = self.entity(access, entity_id)
        if state == "published" and entity.live_revision is None:
            raise exceptions.NotFound("No such entity in this brand.")
        # Also for the published state: the representation holds the working copy's version.
        response = entity_response(
            self, entity, state, last_modified=entity.updated_at,
            as_jsonld=as_jsonld or JSONLD in request.headers.get("Accept", ""),
        )  # fmt: skip
        response["Vary"] = "Accept, Accept-Language, Authorization"
        return response

    @extend_schema(
        parameters=[SLUG, IF_MATCH],
        request=JSONLD_NODE,
        responses={200: EntitySerializer, **WRITE_PROBLEMS},
        tags=["management"],
    )
    def put(self, request, slug, entity_id):
        """Replace the entity's working copy with this JSON-LD node (its @id must not change):
        what the node leaves out is removed (every translation of it too). To change some
        properties and keep the rest, PATCH."""
        access = self.access(slug, "write")
        if request.content_type.split(";")[0].strip() == MERGE_PATCH:
            raise exceptions.UnsupportedMediaType(MERGE_PATCH, "Send a merge patch with PATCH.")
        with transaction.atomic():
            entity = self.entity(access, entity_id)
            version = self.expected_version(entity.version)
            body = request.data if isinstance(request.data, dict) else None
            entity = self.replace(access, entity, version, body, "Changed through the API")
        entity = Entity.objects.select_related("brand", "live_revision").get(pk=entity.pk)
        return entity_response(self, entity, "latest")

    def replace(self, access, entity: Entity, version: int, body, message: str) -> Entity:
        """Validate the JSON-LD node ``body`` like an import and save it as the working copy
        (one revision, audited): what PUT and PATCH share."""
        if body is not None and "@id" not in body:
            body = {**body, "@id": entity.iri}
        planned = plan_single_node(access.brand, body)
        if planned.iri != entity.iri:
            raise UnprocessableContent(
                [
                    {
                        "pointer": "/@id",
                        "detail": f"The @id of this entity is {entity.iri}; it cannot change.",
                    }
                ]
            )
        try:
            return entity_services.entity_update(
                entity=entity, types=planned.types, data=planned.data,
                expected_version=version, user=access.user, message=message,
            )  # fmt: skip
        except SERVICE_ERRORS as error:
            raise service_error(error) from None

    @extend_schema(
        parameters=[
            SLUG, IF_MATCH,
            OpenApiParameter(
                "lang", str, description="The language of the patch's plain strings for "
                "language-tagged texts (else Content-Language, else the brand's default); "
                "also the language of the answer.",
            ),
            OpenApiParameter(
                "Content-Language", str, OpenApiParameter.HEADER,
                description="The language of the patch's plain strings when `lang` is not given.",
            ),
        ],
        request={MERGE_PATCH: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={200: EntitySerializer, **WRITE_PROBLEMS},
        tags=["management"],
        description="A JSON Merge Patch (RFC 7396) of the entity's working copy as a JSON-LD "
        "node (what `GET …/entities/{id}.jsonld?state=latest` shows): members set properties, "
        "`null` removes one, objects merge into nested nodes, what the patch does not name is "
        "kept. A plain string (or a list of them) for a language-tagged text sets that text "
        "in one language only, keeping the other translations: the `lang` language, else the "
        "request's `Content-Language`, else the brand's default language. The result is "
        "validated and saved as PUT does (one revision; 422 with JSON pointers).",
    )  # fmt: skip
    def patch(self, request, slug, entity_id):
        """Change some properties of the entity's working copy (JSON Merge Patch)."""
        access = self.access(slug, "write")
        language = patch_language(request, access.brand)
        if not isinstance(request.data, dict):
            raise UnprocessableContent(
                [{"pointer": "/", "detail": "Send a JSON Merge Patch: one JSON object."}]
            )
        with transaction.atomic():
            entity = self.entity(access, entity_id)
            version = self.expected_version(entity.version)
            current = jsonld.compact_node(entity.types, entity.data, iri=entity.iri)
            patch = {k: v for k, v in request.data.items() if k != "@context"}
            body = merge_patch(current, patch, language)
            entity = self.replace(access, entity, version, body, "Changed through the API (patch)")
        entity = Entity.objects.select_related("brand", "live_revision").get(pk=entity.pk)
        return entity_response(self, entity, "latest")

    @extend_schema(
        parameters=[SLUG, IF_MATCH], responses={204: None, **WRITE_PROBLEMS}, tags=["management"]
    )
    def delete(self, request, slug, entity_id):
        """Delete the entity; refused (409) while other entities reference it."""
        access = self.access(slug, "write")
        entity = self.entity(access, entity_id)
        self.expected_version(entity.version)
        try:
            entity_services.entity_delete(entity=entity, user=access.user)
        except SERVICE_ERRORS as error:
            raise service_error(error) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def patch_language(request, brand: Brand) -> str:
    """The language of a patch's plain strings: ``?lang``, else Content-Language, else the
    brand's default language."""
    if request.query_params.get("lang"):
        return negotiate_language(request, brand)
    header = request.headers.get("Content-Language", "").strip()
    if header:
        language = brand.canonical_language(header)
        if language is None:
            raise BadRequest(
                f"Content-Language {header!r} is not a language of this brand "
                f"({', '.join(brand.languages)}); send one."
            )
        return language
    return brand.default_language


def merge_patch(target, patch, language: str):
    """RFC 7396 applied to a compacted JSON-LD node, with one addition: a plain string (or a
    list of plain strings) for a property whose values are language-tagged texts (or, when
    it has none, a property schema.org reads as human text) replaces that property's values
    in ``language`` only, keeping the other languages."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif key.startswith("@"):
            result[key] = value
        elif is_plain_text(value) and is_language_tagged(key, result.get(key)):
            result[key] = set_language(result.get(key), value, language)
        elif isinstance(value, dict) and not ({"@value", "@id"} & set(value)):
            current = result.get(key)
            result[key] = merge_patch(current if isinstance(current, dict) else {}, value, language)
        else:
            result[key] = value
    return result


def is_plain_text(value) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def is_language_tagged(prop: str, current) -> bool:
    values = current if isinstance(current, list) else [] if current is None else [current]
    if any(isinstance(v, dict) and "@language" in v for v in values):
        return True
    if values:
        return False  # untagged values (an identifier, a URL…): a string replaces them
    found = vocabulary.get_property(prop)
    return found is not None and found.is_human_text


def set_language(current, value, language: str) -> list:
    values = current if isinstance(current, list) else [] if current is None else [current]
    new = [
        {"@value": v, "@language": language} for v in ([value] if isinstance(value, str) else value)
    ]
    kept, placed = [], False
    for item in values:
        if isinstance(item, dict) and item.get("@language") == language:
            if not placed:
                kept.extend(new)
                placed = True
            continue
        kept.append(item)
    return kept if placed else kept + new


class EntityJsonLd(EntityDetail):
    """The ``.jsonld`` twin of an entity's URL: read only, always JSON-LD."""

    http_method_names = ["get", "head", "options"]

    @extend_schema(
        parameters=[SLUG, LANG, STATE],
        responses={(200, JSONLD): OpenApiTypes.OBJECT, **READ_PROBLEMS},
        tags=["delivery"],
        operation_id="v1_brands_entities_jsonld_retrieve",
        description="The entity as a schema.org JSON-LD node, in the requested language if "
        "`lang` is given.",
    )
    def get(self, request, slug, entity_id):
        return super().get(request, slug, entity_id, as_jsonld=True)


class EntityPublish(ApiView):
    @extend_schema(
        parameters=[SLUG, IF_MATCH],
        request=None,
        responses={200: EntitySerializer, **WRITE_PROBLEMS},
        tags=["management"],
    )
    def post(self, request, slug, entity_id):
        """Publish the entity's working copy (publish scope)."""
        access = self.access(slug, "publish")
        entity = Entity.objects.filter(brand=access.brand, uuid=entity_id).first()
        if entity is None:
            raise exceptions.NotFound("No such entity in this brand.")
        self.expected_version(entity.version)
        try:
            object_publish(obj=entity, user=access.user)
        except SERVICE_ERRORS as error:
            raise service_error(error) from None
        entity = Entity.objects.select_related("brand", "live_revision").get(pk=entity.pk)
        return self.conditional(
            entity_representation(entity, "published", negotiate_language(request, access.brand)),
            version=entity.version,
        )


# --- facts and FAQs ------------------------------------------------------------------------


# The texts of a fact or FAQ given per language ({"en": "…", "zh-Hans": "…"}).
STATEMENT_TEXTS = ("statement", "source_title", "unit_labels", "question", "answer")


def statement_in_language(
    data: dict, brand: Brand, language: str, pointer: str, fallbacks: dict[str, str]
) -> dict:
    """A fact's or FAQ's texts as plain strings in ``language``, else the default
    language's (the pointer of each that fell back goes to ``fallbacks``), else null. A
    unit's label does not fall back: ``unit`` is the unit in every language."""
    for field in STATEMENT_TEXTS:
        by_language = data.get(field)
        if not isinstance(by_language, dict):
            continue
        if language in by_language or field == "unit_labels":
            data[field] = by_language.get(language)
            continue
        served = next(
            (tag for tag in (brand.default_language, *sorted(by_language)) if tag in by_language),
            None,
        )
        data[field] = by_language.get(served) if served else None
        if served:
            fallbacks[f"{pointer}/{field}"] = served
    return data


def statement_languages(items: list[dict]) -> list[str]:
    """The languages of the texts of these facts or FAQs, each once."""
    return list(
        dict.fromkeys(
            tag
            for item in items
            for field in STATEMENT_TEXTS
            if isinstance(item.get(field), dict)
            for tag in item[field]
        )
    )


def statement_response(
    view: ApiView, brand: Brand, items: list[dict], pointers: list[str], data, **kwargs
):
    """``data`` (holding ``items`` at ``pointers``), in the ``?lang`` language when asked
    for, with Content-Language and, with ``?lang``, Sourcebook-Language-Fallbacks."""
    explicit = explicit_language(view.request, brand)
    fallbacks: dict[str, str] = {}
    languages = statement_languages(items)
    if explicit:
        for item, pointer in zip(items, pointers, strict=True):
            statement_in_language(item, brand, explicit, pointer, fallbacks)
    response = view.conditional(data, **kwargs)
    language_headers(response, explicit, fallbacks, languages)
    return response


class StatementList(ApiView):
    model: type[Fact] | type[FAQ]
    serializer_class: type
    query_params = frozenset({"page", "page_size", "state", "about", "lang"})

    def queryset(self, access, state):
        query = self.model.objects.filter(brand=access.brand).select_related(
            "about", "live_revision"
        )
        if state == "published":
            query = query.filter(live_revision__isnull=False)
        return query

    def represent(self, obj, state) -> dict:
        data = self.serializer_class(obj).data
        if state == "published":
            content = obj.live_revision.content
            for field in self.model.snapshot_fields:
                if field != "about" and field in content:
                    data[field] = content[field]
        data["about"] = str(obj.about.uuid) if obj.about_id else None
        return data

    def get(self, request, slug):
        access = self.access(slug, "read")
        state = entity_state(self, access)
        query = self.queryset(access, state).order_by("pk")
        if request.query_params.get("about"):
            try:
                about = uuid.UUID(request.query_params["about"])
            except ValueError:
                raise ParameterError({"about": ["Give the id (a UUID) of an entity."]}) from None
            query = query.filter(about__uuid=about)
        paginator = Pagination()
        page = paginator.paginate_queryset(query, request, view=self)
        results = [self.represent(o, state) for o in page]
        return statement_response(
            self,
            access.brand,
            results,
            [f"/results/{number}" for number in range(len(results))],
            paginator.page_data(results),
            last_modified=changed_at(access.brand, self.model),
        )

    def post(self, request, slug):
        access = self.access(slug, "write")
        serializer = self.serializer_class(data=request.data, brand=access.brand)
        serializer.is_valid(raise_exception=True)
        try:
            obj = statement_services.statement_create(
                model=self.model, brand=access.brand, user=access.user,
                message="Created through the API", **serializer.validated_data,
            )  # fmt: skip
        except SERVICE_ERRORS as error:
            raise service_error(error) from None
        obj = self.model.objects.select_related("about", "live_revision").get(pk=obj.pk)
        response = self.conditional(self.represent(obj, "latest"), version=obj.version)
        response.status_code = status.HTTP_201_CREATED
        return response


class StatementDetail(ApiView):
    model: type[Fact] | type[FAQ]
    serializer_class: type
    query_params = frozenset({"state", "lang"})
    represent = StatementList.represent

    def obj(self, access, pk):
        obj = (
            self.model.objects.select_related("about", "live_revision")
            .filter(brand=access.brand, pk=pk)
            .first()
        )
        if obj is None:
            raise exceptions.NotFound(f"No such {self.model._meta.verbose_name} in this brand.")
        return obj

    def get(self, request, slug, pk):
        access = self.access(slug, "read")
        state = entity_state(self, access)
        obj = self.obj(access, pk)
        if state == "published" and obj.live_revision is None:
            raise exceptions.NotFound(f"No such {self.model._meta.verbose_name} in this brand.")
        data = self.represent(obj, state)
        return statement_response(
            self,
            access.brand,
            [data],
            [""],
            data,
            last_modified=obj.updated_at,
            version=obj.version,
        )

    def put(self, request, slug, pk):
        access = self.access(slug, "write")
        obj = self.obj(access, pk)
        version = self.expected_version(obj.version)
        serializer = self.serializer_class(obj, data=request.data, brand=access.brand)
        serializer.is_valid(raise_exception=True)
        try:
            obj = statement_services.statement_update(
                obj=obj, expected_version=version, user=access.user,
                message="Changed through the API", **serializer.validated_data,
            )  # fmt: skip
        except SERVICE_ERRORS as error:
            raise service_error(error) from None
        obj = self.obj(access, pk)
        return self.conditional(self.represent(obj, "latest"), version=obj.version)

    def delete(self, request, slug, pk):
        access = self.access(slug, "write")
        obj = self.obj(access, pk)
        self.expected_version(obj.version)
        try:
            statement_services.statement_delete(obj=obj, user=access.user)
        except SERVICE_ERRORS as error:
            raise service_error(error) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def own_copy(method):
    """A view method of its own, so that each model's views carry their own schema
    (``extend_schema`` annotates the function it decorates)."""

    def copy(self, *args, **kwargs):
        return method(self, *args, **kwargs)

    copy.__doc__ = method.__doc__
    return copy


def statement_views(model, serializer, page_serializer, tag_name: str):
    list_schema = extend_schema(
        parameters=[SLUG, LANG, STATE, OpenApiParameter("about", OpenApiTypes.UUID, description="Entity id."),
                    OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: page_serializer, **READ_PROBLEMS}, tags=["delivery"],
        operation_id=f"v1_brands_{tag_name}_list",
    )  # fmt: skip
    create_schema = extend_schema(
        parameters=[SLUG],
        request=serializer,
        responses={201: serializer, **WRITE_PROBLEMS},
        tags=["management"],
    )
    detail_schema = extend_schema(
        parameters=[SLUG, LANG, STATE],
        responses={200: serializer, **READ_PROBLEMS},
        tags=["delivery"],
    )
    put_schema = extend_schema(
        parameters=[SLUG, IF_MATCH],
        request=serializer,
        responses={200: serializer, **WRITE_PROBLEMS},
        tags=["management"],
    )
    delete_schema = extend_schema(
        parameters=[SLUG, IF_MATCH], responses={204: None, **WRITE_PROBLEMS}, tags=["management"]
    )

    list_view = type(f"{model.__name__}List", (StatementList,), {
        "model": model, "serializer_class": serializer,
        "get": list_schema(own_copy(StatementList.get)),
        "post": create_schema(own_copy(StatementList.post)),
    })  # fmt: skip
    detail_view = type(f"{model.__name__}Detail", (StatementDetail,), {
        "model": model, "serializer_class": serializer,
        "get": detail_schema(own_copy(StatementDetail.get)),
        "put": put_schema(own_copy(StatementDetail.put)),
        "delete": delete_schema(own_copy(StatementDetail.delete)),
    })  # fmt: skip
    return list_view, detail_view


FactList, FactDetail = statement_views(Fact, FactSerializer, FactPageSerializer, "facts")
FAQList, FAQDetail = statement_views(FAQ, FAQSerializer, FAQPageSerializer, "faqs")


# --- import and export ---------------------------------------------------------------------


class ImportJobSerializer(serializers.Serializer):
    """An import run as a task: follow it at its status URL until it is done."""

    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=ImportJob.State.choices)
    publish = serializers.BooleanField()
    size = serializers.IntegerField(help_text="Bytes of the uploaded document.")
    nodes = serializers.IntegerField(help_text="Node objects in the document.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Once succeeded: how many entities were created, updated, unchanged, "
        "published, and facts and FAQs likewise (facts_created, …, faqs_published).",
    )
    errors = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        help_text='Once failed: each {"pointer": JSON pointer into the document, "detail": '
        "what is wrong}. Nothing was imported.",
    )


def import_refused(pointer: str, message: str) -> UnprocessableContent:
    return UnprocessableContent(
        [{"pointer": pointer or "/", "detail": message}], title="Nothing was imported."
    )


class BrandImport(ApiView):
    query_params = frozenset({"publish"})
    parser_classes = []  # the body is read here (see post), not by DRF's parsers

    @extend_schema(
        parameters=[SLUG, OpenApiParameter("publish", bool, description="Publish what was imported (publish scope).")],
        request={JSONLD: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={
            200: ImportResultSerializer,
            202: OpenApiResponse(
                ImportJobSerializer,
                description="More nodes than SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES (default "
                "500): the import runs as a task; follow it at the Location (the status URL).",
            ),
            **WRITE_PROBLEMS,
        },
        tags=["management"],
        description="Up to SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES node objects (default 500) "
        "are imported in the request (200, with what was created, updated, unchanged, "
        "published: entities by @id, facts and FAQs by key). A larger document is checked (size, JSON, nesting) and then imported by "
        "a worker: 202 Accepted with a Location to follow (`GET .../imports/{id}/`), which "
        "shows the counts, or the errors with JSON pointers. Either way nothing is written "
        "unless the whole document is valid. Bodies are limited by SOURCEBOOK_IMPORT_MAX_BYTES "
        "(64 MB), not Django's 2.5 MB.",
    )  # fmt: skip
    def post(self, request, slug):
        """Import a JSON-LD document with the CLI's semantics: all or nothing, upsert by @id."""
        publish = request.query_params.get("publish", "false").lower() in ("1", "true", "yes")
        access = self.access(slug, "publish" if publish else "write")
        # The stream, not request.body: Django caps a body read whole at
        # DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB); imports are limited by
        # SOURCEBOOK_IMPORT_MAX_BYTES, as on the command line, and refused by their
        # Content-Length alone when over it.
        limit = settings.SOURCEBOOK_IMPORT_MAX_BYTES
        size = int(request.META.get("CONTENT_LENGTH") or 0)
        if size > limit:
            raise import_refused(
                "",
                f"the file is {size:,} bytes, over the import limit of {limit:,} bytes "
                "(SOURCEBOOK_IMPORT_MAX_BYTES)",
            )
        raw = read_body(request, limit)
        # Read once here (malformed JSON, nesting, NUL… are a 400 before anything is queued)
        # to count the nodes: what an import's time grows with.
        nodes = 0
        if raw.strip():
            try:
                document = loads_checked(
                    raw, max_depth=settings.SOURCEBOOK_IMPORT_MAX_DEPTH, finite=False
                )
            except JsonInputError as error:
                raise import_refused(error.pointer, error.message) from None
            nodes = count_nodes(document)
            del document
        if nodes > getattr(settings, "SOURCEBOOK_API_IMPORT_INLINE_MAX_NODES", 500):
            token = request.auth if isinstance(request.auth, ApiToken) else None
            with transaction.atomic():
                job = import_job_create(
                    brand=access.brand, raw=raw, nodes=nodes, publish=publish,
                    user=access.user, token=token,
                )  # fmt: skip
            job.refresh_from_db()
            return Response(
                ImportJobSerializer(job).data,
                status=status.HTTP_202_ACCEPTED,
                headers={"Location": f"/api/v1/brands/{slug}/imports/{job.pk}/"},
            )
        try:
            result = jsonld_import(
                brand=access.brand,
                sources=[source_from_bytes("request", raw)],
                user=access.user,
                publish=publish,
            )
        except ImportRefused as refused:
            raise UnprocessableContent(
                [{"pointer": p.pointer or "/", "detail": p.message} for p in refused.problems],
                title="Nothing was imported.",
            ) from None
        return Response(ImportResultSerializer(result).data)


class ImportJobDetail(ApiView):
    @extend_schema(
        parameters=[SLUG],
        responses={200: ImportJobSerializer, **READ_PROBLEMS},
        tags=["management"],
        description="An import run as a task (see the import endpoint's 202): queued, running, "
        "succeeded (with counts) or failed (with errors, JSON pointers into the document; "
        "nothing was imported).",
    )
    def get(self, request, slug, pk):
        access = self.access(slug, "write")
        job = ImportJob.objects.filter(brand=access.brand, pk=pk).first()
        if job is None:
            raise exceptions.NotFound("No such import in this brand.")
        return self.conditional(ImportJobSerializer(job).data, version=None)


class BrandExport(ApiView):
    query_params = frozenset({"state"})
    any_accept = True

    @extend_schema(
        parameters=[SLUG, STATE],
        responses={(200, JSONLD): OpenApiTypes.OBJECT, (200, "application/jsonl"): OpenApiTypes.STR, **READ_PROBLEMS},
        tags=["delivery"],
        description="The whole brand graph for sync jobs: `.jsonld` (one document with @graph) "
        "or `.jsonl` (one node per line), streamed: entities, then facts (`Claim`) and FAQs "
        "(`FAQPage`).",
    )  # fmt: skip
    def get(self, request, slug, shape: str = "jsonld"):
        access = self.access(slug, "read")
        state = entity_state(self, access)
        nodes = brand_nodes(brand=access.brand, state=state)
        last = max(
            (m for model in (Entity, Fact, FAQ) if (m := changed_at(access.brand, model))),
            default=None,
        )

        def graph():
            yield '{"@context":"https://schema.org","@graph":['
            for index, node in enumerate(nodes):
                yield ("," if index else "") + json.dumps(node, ensure_ascii=False)
            yield "]}\n"

        def lines():
            for node in nodes:
                yield (
                    json.dumps({"@context": "https://schema.org", **node}, ensure_ascii=False)
                    + "\n"
                )

        response = StreamingHttpResponse(
            graph() if shape == "jsonld" else lines(),
            content_type=JSONLD if shape == "jsonld" else "application/jsonl",
        )
        if last:
            from django.utils.http import http_date

            response["Last-Modified"] = http_date(last.timestamp())
        response["ETag"] = f'"{access.brand.pk}-{state}-{shape}-{_stamp(last)}"'
        if self.not_modified(response["ETag"], last):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": response["ETag"]})
        return response


def _stamp(moment: datetime | None) -> str:
    return str(int(moment.timestamp() * 1000)) if moment else "0"
