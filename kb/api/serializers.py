"""Representations of the API. Reads are plain dicts built by selectors; writes are validated here."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

from kb.models import FAQ, Brand, Entity, Fact
from kb.services.statements import key_taken_message, statement_key_taken

MULTILINGUAL_HELP = (
    'One text per brand language, e.g. {"en": "…", "zh-Hans": "…"}; read with ?lang=, the '
    "text of that language (else the default language's) as a plain string."
)


class LanguageTexts(serializers.DictField):
    """Text per brand language: ``{"en": "…", "zh-Hans": "…"}`` written and read; read
    with ``?lang=`` it is that language's text, a plain string (null when there is none)."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(**kwargs.pop("child_kwargs", {})), **kwargs)


class LanguageTextsSchema(OpenApiSerializerFieldExtension):
    target_class = LanguageTexts

    def map_serializer_field(self, auto_schema, direction):
        texts = {"type": "object", "additionalProperties": build_basic_type(OpenApiTypes.STR)}
        if direction == "request":
            return texts
        return {"oneOf": [texts, {"type": "string"}], "nullable": True}


class BrandSerializer(serializers.ModelSerializer):
    default_language = serializers.CharField(read_only=True)

    class Meta:
        model = Brand
        fields = ["slug", "name", "base_url", "languages", "default_language", "updated_at"]


class EntitySerializer(serializers.Serializer):
    """An entity as delivered: its published content (or, with the preview scope and
    ``state=latest``, its working copy)."""

    id = serializers.UUIDField(help_text="Stable id of the entity in the API.")
    iri = serializers.CharField(help_text="The entity's @id: stable, also when it is renamed.")
    slug = serializers.CharField()
    types = serializers.ListField(child=serializers.CharField(), help_text="schema.org types.")
    primary_type = serializers.CharField()
    name = serializers.CharField(
        help_text="The name in the negotiated language (lang, else Accept-Language)."
    )
    description = serializers.CharField(help_text="The description in the negotiated language.")
    language = serializers.CharField(
        help_text="The negotiated language of name and description (lang, else "
        "Accept-Language, else the brand's default)."
    )
    status = serializers.CharField()
    version = serializers.IntegerField(help_text="Working-copy version; send it back in If-Match.")
    state = serializers.ChoiceField(choices=["published", "latest"])
    updated_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)
    data = serializers.DictField(
        help_text="schema.org properties. Without lang, in Sourcebook's stored form, every "
        'language: each property a list of {"@value", "@language"?}, {"@id"} or nested nodes. '
        "With lang, compacted JSON-LD values in that language (plain strings; a text missing "
        "in it falls back to the default language, listed in Sourcebook-Language-Fallbacks)."
    )


class PageSerializer(serializers.Serializer):
    """One page of a list: ``count`` in all, links to the ``next`` and ``previous`` pages."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


def page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """The serializer (for the schema) of a page of ``item``s."""
    return type(name, (PageSerializer,), {"results": item(many=True)})


EntityPageSerializer = page_of(EntitySerializer, "EntityPageSerializer")


class JsonLdNodeSerializer(serializers.Serializer):
    """A schema.org JSON-LD node (``@context`` optional: schema.org is assumed)."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Send one JSON-LD node (a JSON object).")
        return data

    def to_representation(self, instance):
        return instance


class StatementBase(serializers.ModelSerializer):
    id = serializers.IntegerField(read_only=True)
    about = serializers.SlugRelatedField(
        slug_field="uuid",
        queryset=Entity.objects.none(),
        allow_null=True,
        required=False,
        help_text="The id of the entity it is about.",
    )
    status = serializers.CharField(read_only=True)
    version = serializers.IntegerField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def __init__(self, *args, brand: Brand | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.brand = brand
        if brand is not None:
            self.fields["about"].queryset = Entity.objects.filter(brand=brand)

    def validate_key(self, key: str) -> str:
        # Keys are unique per brand; the model's constraint names the brand, which is not a
        # field here, so DRF adds no validator for it (and the database would answer 500).
        model = self.Meta.model
        pk = self.instance.pk if self.instance is not None else None
        if self.brand is not None and statement_key_taken(
            brand=self.brand, model=model, key=key, pk=pk
        ):
            raise serializers.ValidationError(key_taken_message(model))
        return key


class FactSerializer(StatementBase):
    about = serializers.SlugRelatedField(
        slug_field="uuid",
        queryset=Entity.objects.none(),
        help_text="The id of the entity it is about (every fact is about one).",
    )
    statement = LanguageTexts(help_text=MULTILINGUAL_HELP)
    source_title = LanguageTexts(required=False, help_text=MULTILINGUAL_HELP)
    unit_labels = LanguageTexts(
        child_kwargs={"max_length": 50},
        required=False,
        help_text="A unit of the brand's own in each language, e.g. "
        '{"en": "buds", "zh-Hans": "芽"}. Units such as t, ha, %, years need none: pages show '
        "them in each language's words (CLDR) and JSON-LD carries their UN/CEFACT unitCode.",
    )

    check_cues = serializers.ListField(
        child=serializers.CharField(max_length=50),
        max_length=20,
        required=False,
        help_text="Words that tell an AI answer is stating this fact, in any language, e.g. "
        '["employs", "staff", "员工"]. Empty: taken from the statement (AI visibility checks '
        "answers against the fact's value).",
    )

    class Meta:
        model = Fact
        fields = ["id", "key", "about", "statement", "value", "unit", "unit_labels",
                  "check_cues", "source_url", "source_title", "as_of", "valid_until", "status", "version",
                  "updated_at"]  # fmt: skip


class FAQSerializer(StatementBase):
    question = LanguageTexts(help_text=MULTILINGUAL_HELP)
    answer = LanguageTexts(help_text=MULTILINGUAL_HELP)

    class Meta:
        model = FAQ
        fields = ["id", "key", "about", "question", "answer", "order", "status", "version",
                  "updated_at"]  # fmt: skip


FactPageSerializer = page_of(FactSerializer, "FactPageSerializer")
FAQPageSerializer = page_of(FAQSerializer, "FAQPageSerializer")


class ImportResultSerializer(serializers.Serializer):
    """What an import did: entities by @id, facts (``Claim`` nodes) and FAQs (``FAQPage``
    nodes) by key."""

    created = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.ListField(child=serializers.CharField())
    published = serializers.ListField(child=serializers.CharField())
    facts_created = serializers.ListField(child=serializers.CharField())
    facts_updated = serializers.ListField(child=serializers.CharField())
    facts_unchanged = serializers.ListField(child=serializers.CharField())
    facts_published = serializers.ListField(child=serializers.CharField())
    faqs_created = serializers.ListField(child=serializers.CharField())
    faqs_updated = serializers.ListField(child=serializers.CharField())
    faqs_unchanged = serializers.ListField(child=serializers.CharField())
    faqs_published = serializers.ListField(child=serializers.CharField())


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(required=False)
    errors = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        required=False,
        help_text='Each {"pointer": JSON pointer into the request, "detail": what is wrong}.',
    )
