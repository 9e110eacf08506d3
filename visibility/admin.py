"""AI visibility in the admin, scoped per brand, writing through the services.

Engines, prompt sets (with their questions and a "Run now" action), runs, answers, alerts,
alert settings and AI-crawler visits; plus a dashboard per brand at
``/admin/visibility/dashboard/<brand_id>/`` (scores next to their formula, metrics with 95 %
intervals, a server-side SVG trend chart, alerts, crawlers) and its CSV export.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import date, timedelta
from urllib.parse import urlsplit

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Count, Q
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe

from kb.admin import BrandScopedAdmin, ReadOnlyBrandScopedAdmin
from kb.models import Brand
from kb.services.permissions import (
    ADMIN,
    EDIT,
    admin_page_require,
    brands_for,
    model_rules,
    user_can,
    user_can_somewhere,
)
from publishing.selectors import release_live
from visibility.charts import citation_sites_svg, citation_trend_svg, trend_svg
from visibility.citations import citation_report
from visibility.comparison import CAVEAT, release_comparison, releases_deployed
from visibility.crawlers import crawler_summary
from visibility.leaderboard import competitor_leaderboard
from visibility.metrics import (
    SCORE_FORMULA,
    SCORE_LEGEND,
    Metrics,
    Rate,
    metrics_by,
    metrics_of,
    metrics_rows,
    metrics_series,
    period_start,
    wilson_interval,
)
from visibility.models import (
    Alert,
    AlertSettings,
    Answer,
    CrawlerHit,
    Engine,
    Prompt,
    PromptSet,
    Run,
)
from visibility.pairs import pair_groups, paired_comparison
from visibility.presets import PRESETS, PRESETS_BY_KEY
from visibility.services import (
    VisibilityError,
    crontab_parts,
    engine_save,
    location_code,
    prompt_set_save,
    run_start,
)

PERIODS = ("day", "week")
SCORE_DAYS = 30
TREND_WEEKS = 12
CITED_SITES_SHOWN = 10
COMPARISON_DAYS = 14
RATE_TITLES = {"mention": "Mention", "citation": "Citation", "first_mention": "First mention",
               "misstatement": "Misstatement"}  # fmt: skip
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ONLY_THEIR_OWN = admin.RelatedOnlyFieldListFilter  # filter choices from the user's rows only


def dashboard_links(user) -> list[tuple[Brand, str]]:
    return [
        (brand, reverse("admin:visibility_dashboard", args=[brand.pk]))
        for brand in brands_for(user)
    ]


class DashboardLinksMixin:
    """Changelists that link the dashboard of each of the user's brands."""

    change_list_template = "admin/visibility/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "dashboards": dashboard_links(request.user)}
        return super().changelist_view(request, extra_context)


# --- engines ----------------------------------------------------------------------------------

ENGINE_SETTINGS = ("parameters", "timeout_seconds", "max_retries", "location_parameter",
                   "input_price_per_million", "output_price_per_million", "crawler", "is_demo",
                   "enabled")  # fmt: skip


def api_key_status(engine: Engine) -> str:
    # The environment variable wins when both are set (see visibility.engines.engine_api_key).
    if engine.api_key_env:
        return f"from ${engine.api_key_env}"
    if engine.api_key_encrypted:
        return "stored (encrypted)"
    return "none"


def https_by_default(field, **kwargs):
    # The admin sets this for its own fields; this form's class-level fields need it too.
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class EngineForm(forms.ModelForm):
    api_key = forms.CharField(
        label="API key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the stored key.",
    )
    api_key_remove = forms.BooleanField(label="Remove the stored API key", required=False)
    preset = forms.ChoiceField(
        label="Start from a preset",
        required=False,
        choices=[("", "—"), *((p.key, p.label) for p in PRESETS)],
        help_text="Fills the base URL, model, API key variable and crawler you leave empty, "
        "as the provider documents them.",
    )

    class Meta:
        model = Engine
        fields = ["brand", "name", "base_url", "model", "api_key", "api_key_remove",
                  "api_key_env", *ENGINE_SETTINGS]  # fmt: skip
        formfield_callback = https_by_default
        labels = {"base_url": "Base URL", "api_key_env": "API key environment variable"}

    def clean_parameters(self):
        parameters = self.cleaned_data.get("parameters")
        if parameters in (None, ""):
            return {}
        if not isinstance(parameters, dict):
            raise ValidationError('Give a JSON object, e.g. {"temperature": 0.7}.')
        return parameters

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("base_url", "model"):  # a preset may give them (see clean)
            if name in self.fields:
                self.fields[name].required = False

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("api_key") and cleaned.get("api_key_remove"):
            raise ValidationError("Either enter a new API key or remove the stored one, not both.")
        preset = PRESETS_BY_KEY.get(cleaned.get("preset") or "")
        for name, value in (preset.engine_fields() if preset else {}).items():
            if name in self.fields and not cleaned.get(name):
                cleaned[name] = value
        for name in ("base_url", "model"):
            if name in self.fields and not cleaned.get(name) and name not in self.errors:
                self.add_error(name, "Required (or choose a preset).")
        return cleaned


@admin.register(Engine)
class EngineAdmin(BrandScopedAdmin):
    """Engines hold API keys: only brand admins change them (as ``engine_save`` requires)."""

    form = EngineForm
    list_display = ("name", "brand", "model", "base_url", "crawler", "demo_badge", "key",
                    "enabled")  # fmt: skip
    list_filter = (("brand", ONLY_THEIR_OWN), "enabled", "is_demo")
    search_fields = ("name", "model", "base_url")

    @admin.display(description="demo")
    def demo_badge(self, engine):
        if not engine.is_demo:
            return ""
        return format_html(
            '<span title="{}" style="background:#ffc;border:1px solid #cc9;border-radius:3px;'
            'padding:0 4px">demo</span>',
            "A local demo engine with scripted answers, not a real one.",
        )

    @admin.display(description="API key status")
    def key(self, engine):
        return api_key_status(engine)

    def get_fieldsets(self, request, obj=None):
        key_fields = ["key", "api_key", "api_key_remove", "api_key_env"]
        if obj is None:  # nothing stored yet
            key_fields = ["api_key", "api_key_env"]
        endpoint = ["base_url", "model", "parameters", "timeout_seconds", "max_retries",
                    "location_parameter"]  # fmt: skip
        return [
            (None, {"fields": ["brand", "name", "is_demo", "enabled"]}),
            ("Endpoint", {"fields": endpoint if obj else ["preset", *endpoint]}),
            ("API key", {"fields": key_fields}),
            (
                "Costs and crawlers",
                {"fields": ["input_price_per_million", "output_price_per_million", "crawler"]},
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        # engine_save finds the engine by brand and name: renaming would create a second one.
        return ("brand", "name", "key") if obj else ()

    def save_model(self, request, obj, form, change):
        typed_key = form.cleaned_data.get("api_key") or None  # None keeps the stored key
        saved = engine_save(
            brand=obj.brand,
            name=obj.name,
            base_url=obj.base_url,
            model=obj.model,
            api_key="" if form.cleaned_data.get("api_key_remove") else typed_key,
            api_key_env=obj.api_key_env,
            user=request.user,
            **{field: getattr(obj, field) for field in ENGINE_SETTINGS},
        )
        obj.pk = saved.pk
        obj.api_key_encrypted = saved.api_key_encrypted


# --- prompt sets ------------------------------------------------------------------------------

COMPETITORS_EXAMPLE = '[{"name": "Teavana", "aliases": ["提瓦纳"], "domains": ["teavana.com"]}]'


class CompetitorsField(forms.JSONField):
    """Competitors as indented JSON, with errors that say where the JSON breaks."""

    widget = forms.Textarea(attrs={"rows": 6, "cols": 80, "style": "font-family:monospace"})

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                json.loads(value)
            except json.JSONDecodeError as error:
                raise ValidationError(
                    f"This is not valid JSON: {error.msg} at line {error.lineno}, column "
                    f"{error.colno}. Write a list like {COMPETITORS_EXAMPLE}.",
                    code="invalid",
                ) from None
        return super().to_python(value)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value if value is not None else [], ensure_ascii=False, indent=2)


def competitors_problems(competitors) -> list[str]:
    """What is wrong with the shape of the competitors list (the analysis expects it exactly)."""
    if not isinstance(competitors, list):
        return [f"Give a list of competitors, like {COMPETITORS_EXAMPLE}."]
    problems = []
    for number, item in enumerate(competitors, start=1):
        if not isinstance(item, dict):
            problems.append(f"Competitor {number} is not an object with a name.")
            continue
        if not isinstance(item.get("name"), str) or not item["name"].strip():
            problems.append(f"Competitor {number} has no name.")
        for key in ("aliases", "domains"):
            values = item.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                problems.append(f"Competitor {number}: {key} must be a list of texts.")
        unknown = sorted(set(item) - {"name", "aliases", "domains"})
        if unknown:
            problems.append(f"Competitor {number}: unknown key(s) {', '.join(unknown)}.")
    return problems


class PromptSetForm(forms.ModelForm):
    competitors = CompetitorsField(
        required=False,
        help_text=f"Brands to track, as JSON: {COMPETITORS_EXAMPLE}. Empty: none.",
    )

    class Meta:
        model = PromptSet
        fields = ["brand", "name", "language", "location", "competitors", "repetitions",
                  "schedule", "enabled", "pair_group", "sentiment_judge"]  # fmt: skip

    def clean_location(self):
        try:
            return location_code(self.cleaned_data.get("location") or "")
        except VisibilityError as error:
            raise ValidationError(str(error)) from None

    def clean_competitors(self):
        competitors = self.cleaned_data.get("competitors")
        if competitors in (None, ""):
            return []
        problems = competitors_problems(competitors)
        if problems:
            raise ValidationError(problems)
        return competitors

    def clean_schedule(self):
        schedule = " ".join(self.cleaned_data.get("schedule", "").split())
        try:
            crontab_parts(schedule)
        except VisibilityError as error:
            raise ValidationError(str(error)) from None
        return schedule

    def clean(self):
        cleaned = super().clean()
        brand = cleaned.get("brand") or (self.instance.brand if self.instance.pk else None)
        language = cleaned.get("language")
        if brand and language and language not in brand.languages:
            self.add_error(
                "language", f"Give one of {brand}'s languages: {', '.join(brand.languages)}."
            )
        judge = cleaned.get("sentiment_judge")
        if brand and judge and judge.brand_id != brand.pk:
            self.add_error("sentiment_judge", f"Give one of {brand}'s engines.")
        return cleaned


class PromptForm(forms.ModelForm):
    order = forms.IntegerField(required=False, min_value=0, help_text="Empty: after the others.")

    class Meta:
        model = Prompt
        fields = ("text", "order")
        widgets = {"text": forms.Textarea(attrs={"rows": 2, "cols": 80})}


class PromptInline(admin.TabularInline):
    """Questions of a prompt set; saved with it by ``prompt_set_save``."""

    model = Prompt
    form = PromptForm
    extra = 3
    verbose_name = "question"
    verbose_name_plural = "questions (a removed or reworded question is retired; its answers stay)"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(active=True)

    # The declared policy of questions, in the brand of the prompt set (``obj``).
    def user_may(self, request, operation: str, obj=None) -> bool:
        capability = model_rules(self.model).capability(operation)
        if obj is None:
            return user_can_somewhere(request.user, capability)
        return user_can(request.user, obj.brand, capability)

    def has_view_permission(self, request, obj=None):
        return self.user_may(request, "view", obj)

    def has_change_permission(self, request, obj=None):
        return self.user_may(request, "change", obj)

    def has_add_permission(self, request, obj=None):
        return self.user_may(request, "add", obj)

    def has_delete_permission(self, request, obj=None):
        return self.user_may(request, "delete", obj)


def prompt_texts(formsets) -> list[str]:
    """The questions by their order; those without one after the others, as listed."""
    ordered = []
    for formset in formsets:
        for position, form in enumerate(formset.forms):
            data = getattr(form, "cleaned_data", None) or {}
            text = (data.get("text") or "").strip()
            if text and not data.get("DELETE"):
                order = data.get("order")
                ordered.append(((math.inf if order is None else order, position), text))
    return [text for _, text in sorted(ordered, key=lambda item: item[0])]


@admin.register(PromptSet)
class PromptSetAdmin(BrandScopedAdmin):
    form = PromptSetForm
    inlines = [PromptInline]
    list_display = ("name", "brand", "language", "question_count", "repetitions", "schedule",
                    "enabled", "last_run")  # fmt: skip
    list_filter = (("brand", ONLY_THEIR_OWN), "language", "enabled")
    search_fields = ("name",)
    fields = ("brand", "name", "language", "location", "competitors", "repetitions", "schedule",
              "enabled", "pair_group", "sentiment_judge")  # fmt: skip
    actions = ["run_now"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(questions=Count("prompts"))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "sentiment_judge":  # the engines of the user's own brands only
            kwargs["queryset"] = Engine.objects.filter(brand__in=brands_for(request.user, EDIT))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="questions", ordering="questions")
    def question_count(self, prompt_set):
        return prompt_set.questions

    @admin.display(description="last run")
    def last_run(self, prompt_set):
        run = prompt_set.runs.order_by("-started_at").first()
        return f"{run.started_at:%Y-%m-%d %H:%M} — {run.get_state_display()}" if run else "never"

    def get_readonly_fields(self, request, obj=None):
        # prompt_set_save finds the set by brand and name: renaming would create a second one.
        return ("brand", "name") if obj else ()

    def save_model(self, request, obj, form, change):
        """Nothing yet: the set is saved with its questions in ``save_related``."""

    def save_related(self, request, form, formsets, change):
        prompt_set, data = form.instance, form.cleaned_data
        saved = prompt_set_save(
            brand=prompt_set.brand,
            name=prompt_set.name,
            language=data["language"],
            prompts=prompt_texts(formsets),
            competitors=data["competitors"],
            repetitions=data["repetitions"],
            schedule=data["schedule"],
            enabled=data["enabled"],
            pair_group=data.get("pair_group", ""),
            location=data.get("location", ""),
            sentiment_judge=data.get("sentiment_judge"),
            user=request.user,
        )
        prompt_set.pk = saved.pk
        for formset in formsets:  # the service wrote the questions, not the formsets
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description="Run now", permissions=["change"])
    def run_now(self, request, queryset):
        for prompt_set in queryset.select_related("brand"):
            try:
                run = run_start(prompt_set=prompt_set, user=request.user)
            except (VisibilityError, PermissionDenied) as error:
                self.message_user(request, f"{prompt_set} was not run: {error}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Started run {run.pk} of {prompt_set}: {run.expected} answers to collect.",
                    messages.SUCCESS,
                )


# --- runs and answers -------------------------------------------------------------------------


def run_progress(run: Run) -> str:
    answered = min(run.answered, run.expected) if run.expected else run.answered
    failed = f", {run.failed} failed" if run.failed else ""
    return format_html(
        '<progress max="{}" value="{}"></progress> {} / {}{}',
        run.expected or 1,
        answered,
        answered,
        run.expected,
        failed,
    )


@admin.register(Run)
class RunAdmin(DashboardLinksMixin, ReadOnlyBrandScopedAdmin):
    list_display = ("number", "prompt_set", "brand", "state", "trigger", "progress",
                    "started_at", "finished_at", "requested_by")  # fmt: skip
    list_filter = (("brand", ONLY_THEIR_OWN), "state", "trigger")
    date_hierarchy = "started_at"
    fields = ("brand", "prompt_set", "state", "trigger", "requested_by", "progress",
              "engine_names", "started_at", "finished_at", "answers_link")  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("brand", "prompt_set", "requested_by")
            .annotate(
                answered=Count("answers"), failed=Count("answers", filter=Q(answers__ok=False))
            )
        )

    def changelist_view(self, request, extra_context=None):
        # Refresh while a run is collecting answers, like the release list while building.
        running = self.get_queryset(request).filter(state=Run.State.RUNNING).exists()
        return super().changelist_view(request, {**(extra_context or {}), "refresh": running})

    @admin.display(description="run", ordering="pk")
    def number(self, run):
        return f"#{run.pk}"

    @admin.display(description="answered / expected")
    def progress(self, run):
        return run_progress(run)

    @admin.display(description="engines")
    def engine_names(self, run):
        return ", ".join(engine.name for engine in run.engines.all()) or "—"

    @admin.display(description="answers")
    def answers_link(self, run):
        url = reverse("admin:visibility_answer_changelist") + f"?run__id__exact={run.pk}"
        return format_html('<a href="{}">{} answers</a>', url, run.answered)


def citation_links(answer: Answer) -> str:
    """Citations as links (http and https only: the URLs come from the engine)."""
    brand_urls = set(answer.analysis.get("cited_urls", []))
    items = []
    for url in answer.citations or []:
        url = str(url)
        suffix = " (the brand's)" if url in brand_urls else ""
        if urlsplit(url).scheme in ("http", "https"):
            items.append(
                format_html(
                    '<li><a href="{}" rel="noopener noreferrer">{}</a>{}</li>', url, url, suffix
                )
            )
        else:
            items.append(format_html("<li><code>{}</code>{}</li>", url, suffix))
    if not items:
        return "—"
    return format_html("<ul>{}</ul>", format_html_join("", "{}", ((item,) for item in items)))


def source_link(url: str) -> str:
    if not url.startswith(("https://", "http://")):
        return ""
    return format_html(' (<a href="{}" rel="noopener noreferrer">source</a>)', url)


def misstatement_list(answer: Answer) -> str:
    if not answer.misstatements:
        return "—"
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            '<li><mark>{}</mark> for <code>{}</code>, expected <strong>{}</strong>: “{}”{}</li>',
            (
                (m.get("stated", ""), m.get("fact_key", ""), m.get("expected", ""),
                 m.get("excerpt", ""), source_link(m.get("source_url", "")))
                for m in answer.misstatements
            ),
        ),
    )  # fmt: skip


def content_with_misstatements(answer: Answer) -> str:
    """The answer text, escaped, its misstated sentences marked with the fact and the value."""
    content = answer.content or ""
    spans = []
    for m in answer.misstatements or []:
        excerpt = str(m.get("excerpt", "")).removesuffix("…")
        start = content.find(excerpt) if excerpt else -1
        if start >= 0:
            title = f"{m.get('fact_key', '')}: expected {m.get('expected', '')}"
            spans.append((start, start + len(excerpt), title))
    pieces, cursor = [], 0
    for start, end, title in sorted(spans):
        if start < cursor:
            continue  # a sentence already marked for another fact
        pieces.append(escape(content[cursor:start]))
        pieces.append(format_html('<mark title="{}">{}</mark>', title, content[start:end]))
        cursor = end
    pieces.append(escape(content[cursor:]))
    return format_html(
        '<div style="white-space:pre-wrap;max-width:60rem">{}</div>',
        format_html_join("", "{}", ((piece,) for piece in pieces)),
    )


@admin.register(Answer)
class AnswerAdmin(DashboardLinksMixin, ReadOnlyBrandScopedAdmin):
    brand_field = "run__brand"
    list_display = ("asked_at", "engine", "question", "repetition", "ok", "mentioned", "cited",
                    "first_mention", "position", "misstatement_count", "cost")  # fmt: skip
    list_filter = (("engine", ONLY_THEIR_OWN), "mentioned", "cited", "ok",
                   ("run__brand", ONLY_THEIR_OWN))  # fmt: skip
    search_fields = ("content", "prompt__text")
    date_hierarchy = "asked_at"
    fieldsets = [
        (None, {"fields": ["run", "engine", "prompt", "repetition", "language", "asked_at"]}),
        ("Answer", {"fields": ["ok", "error", "answer_text", "citation_list"]}),
        (
            "About the brand",
            {
                "fields": [
                    "mentioned",
                    "cited",
                    "first_mention",
                    "position",
                    "competitors",
                    "misstatement_details",
                ]
            },
        ),
        ("Cost", {"fields": ["latency_ms", "prompt_tokens", "completion_tokens", "cost"]}),
        ("Raw", {"fields": ["analysis", "response"], "classes": ["collapse"]}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def brand_of(self, obj):
        return obj.run.brand if obj is not None else None

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("engine", "prompt", "run__brand")

    @admin.display(description="question")
    def question(self, answer):
        return answer.prompt.text[:80]

    @admin.display(description="misstatements")
    def misstatement_count(self, answer):
        return len(answer.misstatements or [])

    @admin.display(description="answer")
    def answer_text(self, answer):
        return content_with_misstatements(answer)

    @admin.display(description="citations")
    def citation_list(self, answer):
        return citation_links(answer)

    @admin.display(description="misstatements")
    def misstatement_details(self, answer):
        return misstatement_list(answer)


# --- alerts -----------------------------------------------------------------------------------


@admin.register(Alert)
class AlertAdmin(DashboardLinksMixin, ReadOnlyBrandScopedAdmin):
    # The summary names the question: a column of its own left the summary no room.
    list_display = ("created_at", "kind", "engine", "summary", "first_seen", "emailed_at")
    list_filter = ("kind", "first_seen", ("engine", ONLY_THEIR_OWN), ("brand", ONLY_THEIR_OWN))
    search_fields = ("summary",)
    date_hierarchy = "created_at"
    fields = ("brand", "kind", "engine", "prompt", "run", "fact_key", "first_seen", "summary",
              "reason_list", "created_at", "emailed_at")  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("engine", "prompt", "brand")

    @admin.display(description="question")
    def question(self, alert):
        return alert.prompt.text[:80]

    @admin.display(description="possible reasons")
    def reason_list(self, alert):
        if not alert.reasons:
            return "None found."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} <small>({})</small></li>",
                ((r.get("text", ""), r.get("code", "")) for r in alert.reasons),
            ),
        )


class AlertSettingsForm(forms.ModelForm):
    class Meta:
        model = AlertSettings
        fields = ["brand", "emails", "webhook"]

    def clean_emails(self):
        lines = [line.strip() for line in self.cleaned_data["emails"].splitlines() if line.strip()]
        wrong = []
        for line in lines:
            try:
                validate_email(line)
            except ValidationError:
                wrong.append(line)
        if wrong:
            raise ValidationError(f"Not an email address: {', '.join(wrong)}.")
        return "\n".join(lines)

    def clean(self):
        cleaned = super().clean()
        brand = cleaned.get("brand") or (self.instance.brand if self.instance.brand_id else None)
        webhook = cleaned.get("webhook")
        if brand and webhook and webhook.brand_id != brand.pk:
            self.add_error("webhook", f"Choose a webhook target of {brand}.")
        return cleaned


@admin.register(AlertSettings)
class AlertSettingsAdmin(BrandScopedAdmin):
    form = AlertSettingsForm
    list_display = ("brand", "email_count", "webhook")

    @admin.display(description="emails")
    def email_count(self, settings):
        return len(settings.email_list)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "webhook":
            from publishing.models import Target

            kwargs["queryset"] = Target.objects.filter(
                kind="webhook", brand__in=brands_for(request.user, ADMIN)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --- crawler visits ---------------------------------------------------------------------------


@admin.register(CrawlerHit)
class CrawlerHitAdmin(ReadOnlyBrandScopedAdmin):
    list_display = ("time", "agent", "purpose", "engine", "path", "artifact", "status", "bytes")
    list_filter = ("agent", "purpose", "artifact", "status", ("brand", ONLY_THEIR_OWN))
    search_fields = ("path",)
    date_hierarchy = "time"
    exclude = ("fingerprint",)


# --- the dashboard and its CSV ----------------------------------------------------------------


def brand_for_view(request, brand_id: int) -> Brand:
    brand = get_object_or_404(Brand, pk=brand_id)
    admin_page_require(request, brand)
    return brand


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def rate_cell(rate: Rate) -> dict:
    # From the counts, not from as_dict's 4-digit values: rounding twice shifts the last digit.
    low, high = wilson_interval(rate.count, rate.n)
    return {"rate": percent(rate.value), "low": percent(low), "high": percent(high),
            "count": rate.count, "n": rate.n}  # fmt: skip


RATE_COLUMNS = ("mention", "citation", "first_mention", "share_of_voice", "misstatement")


def metrics_table(by_engine: dict[str, Metrics]) -> list[dict]:
    """Rows for the dashboard: rates in % with their 95 % intervals, in RATE_COLUMNS order."""
    return [
        {
            "engine": engine, "score": metrics.score, "answers": metrics.answers,
            "failed": metrics.failed, "cost": f"{metrics.cost:.4f}",
            "rates": [rate_cell(getattr(metrics, name)) for name in RATE_COLUMNS],
        }
        for engine, metrics in by_engine.items()
    ]  # fmt: skip


def counts_text(counts: dict, joiner: str = " ") -> str:
    """{"llms.txt": 3, "markdown": 5} → "llms.txt 3 · markdown 5"."""
    return " · ".join(f"{key}{joiner}{n}" for key, n in counts.items())


def trend_window_start(today: date, period: str) -> date:
    if period == "week":
        return period_start(today, "week") - timedelta(weeks=TREND_WEEKS - 1)
    return today - timedelta(days=SCORE_DAYS - 1)


def paired_rows(comparison: dict) -> dict:
    """A group of paired prompt sets for the dashboard: mention and citation in % per cell."""

    def cell(data: dict) -> dict:
        return data | {"rates": [rate_cell(Rate(data[name]["count"], data[name]["n"]))
                                 for name in ("mention", "citation")]}  # fmt: skip

    return comparison | {
        "questions": [
            {"position": row["position"], "cells": [cell(c) for c in row["cells"]]}
            for row in comparison["questions"]
        ],
        "all": [cell(c) for c in comparison["all"]],
    }


def leaderboard_rows(board: dict) -> list[dict]:
    """The leaderboard for the dashboard: its rates in % with their intervals."""
    return [
        row | {"rates": [rate_cell(Rate(row[name]["count"], row[name]["n"]))
                         for name in ("mention", "share_of_voice", "first_mention")]}
        for row in board["brands"]
    ]  # fmt: skip


def signed_points(value: float) -> str:
    return f"{100 * value:+.1f}"


def comparison_rows(comparison: dict) -> dict:
    """The release comparison for the dashboard: each rate before and after, in %."""
    rows = []
    for change in comparison["all"]:
        before, after = change["before"], change["after"]
        low_high = change["difference_ci95"]
        rows.append({
            "metric": RATE_TITLES[change["metric"]],
            "before": f"{100 * before['rate']:.1f}" if before["n"] else "—",
            "before_n": before["n"],
            "after": f"{100 * after['rate']:.1f}" if after["n"] else "—",
            "after_n": after["n"],
            "difference": signed_points(change["difference"])
            if change["difference"] is not None else "—",
            "interval": f"{signed_points(low_high[0])} to {signed_points(low_high[1])}"
            if low_high else "—",
            "ratio": f"{change['ratio']:.2f}×" if change["ratio"] is not None else "—",
            "p_value": f"{change['p_value']:.4f}" if change["p_value"] is not None else "—",
            "significant": change["significant"],
        })  # fmt: skip
    answers = {side: comparison["all"][0][side]["n"] for side in ("before", "after")}
    return {"release": comparison["release"], "deployed_at": comparison["deployed_at"],
            "days": comparison["days"], "rows": rows, "answers": answers}  # fmt: skip


def dashboard_view(request, brand_id: int):
    """A brand's AI visibility: scores, metrics, trends, alerts and crawler visits."""
    brand = brand_for_view(request, brand_id)
    period = request.GET.get("period") if request.GET.get("period") in PERIODS else "day"
    today = timezone.localdate()
    since = today - timedelta(days=SCORE_DAYS - 1)
    by_engine = metrics_by(brand=brand, group="engine", since=since)
    overall = metrics_by(brand=brand, since=since).get("all")
    series = metrics_series(brand=brand, period=period, since=trend_window_start(today, period))
    crawlers = [
        {
            "summary": summary,
            "artifacts": counts_text(summary.artifacts),
            "statuses": counts_text(summary.statuses, " ×"),
        }
        for summary in crawler_summary(brand=brand)
    ]
    alerts = Alert.objects.filter(brand=brand).select_related("engine", "prompt")[:10]
    citations = citation_report(brand=brand, since=since).as_dict(top=CITED_SITES_SHOWN)
    # The trend reads 12 weeks, the tables the dashboard's 30 days.
    trend_weeks = citation_report(brand=brand, since=trend_window_start(today, "week"))
    releases = [
        (number, timezone.localdate(deployed_at))
        for number, deployed_at in releases_deployed(
            brand=brand, since=trend_window_start(today, period)
        )
    ]
    charts = [
        # mark_safe only for matplotlib's SVG: its writer escapes engine names (text nodes).
        (title, mark_safe(trend_svg(series, metric, releases)))  # noqa: S308
        for metric, title in (("score", "Visibility score"), ("mention", "Mention rate (%)"))
    ]
    live = release_live(brand=brand)
    comparison = (
        release_comparison(brand=brand, release=live, days=COMPARISON_DAYS) if live else None
    )
    context = {
        **admin.site.each_context(request),
        "title": f"{brand} — AI visibility",
        "app_name": apps.get_app_config("visibility").verbose_name,
        "brand": brand,
        "since": since,
        "days": SCORE_DAYS,
        "weeks": TREND_WEEKS,
        "formula": SCORE_FORMULA,
        "legend": SCORE_LEGEND,
        "rows": metrics_table(by_engine),
        "overall": metrics_table({"All engines": overall})[0] if overall else None,
        "idle_engines": brand.engines.exclude(name__in=list(by_engine)).order_by("name"),
        "period": period,
        "periods": [(p, f"?period={p}") for p in PERIODS],
        "charts": charts if any(svg for _, svg in charts) else [],
        "alerts": alerts,
        "citations": citations,
        "pairs": [
            paired_rows(paired_comparison(brand=brand, group=group, since=since))
            for group in pair_groups(brand=brand)
        ],
        "leaderboard": leaderboard_rows(competitor_leaderboard(brand=brand, since=since)),
        "comparison": comparison_rows(comparison) if comparison else None,
        "comparison_caveat": CAVEAT,
        # mark_safe as above: matplotlib escapes the site names it writes.
        "citations_svg": mark_safe(citation_sites_svg(citations["sites"])),  # noqa: S308
        "citation_trend_svg": mark_safe(  # noqa: S308
            citation_trend_svg(trend_weeks.as_dict(top=CITED_SITES_SHOWN)["sites"])
        ),
        "crawlers": crawlers,
        "csv_url": reverse("admin:visibility_dashboard_csv", args=[brand.pk]) + f"?period={period}",
        "runs_url": reverse("admin:visibility_run_changelist") + f"?brand__id__exact={brand.pk}",
        "alerts_url": reverse("admin:visibility_alert_changelist")
        + f"?brand__id__exact={brand.pk}",
    }
    return TemplateResponse(request, "admin/visibility/dashboard.html", context)


def dashboard_index_view(request):
    """The dashboards the user may open; straight to it when there is only one."""
    links = dashboard_links(request.user)
    if len(links) == 1:
        return HttpResponseRedirect(links[0][1])
    context = {
        **admin.site.each_context(request),
        "title": "AI visibility dashboards",
        "app_name": apps.get_app_config("visibility").verbose_name,
        "dashboards": links,
    }
    return TemplateResponse(request, "admin/visibility/dashboard_index.html", context)


def csv_safe(value):
    """Spreadsheets run cells that start with = + - @ as formulas: engine names are user text."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_columns() -> list[str]:
    # The columns of metrics_rows, from one empty row, so the header never drifts from it.
    return list(metrics_rows({"": {date.min: metrics_of([])}})[0])


def metrics_csv_view(request, brand_id: int):
    """Metrics per engine and day or ISO week (Monday-starting), over all recorded answers."""
    brand = brand_for_view(request, brand_id)
    period = request.GET.get("period", "day")
    if period not in PERIODS:
        return HttpResponseBadRequest("period must be day or week.", content_type="text/plain")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{brand.slug}-visibility-{period}.csv"'
    writer = csv.DictWriter(response, fieldnames=csv_columns(), lineterminator="\r\n")
    writer.writeheader()
    for row in metrics_rows(metrics_series(brand=brand, period=period)):
        writer.writerow({key: csv_safe(value) for key, value in row.items()})
    return response


def dashboard_urls() -> list:
    # Imported here: the site audit's views import the crawler and the report, not needed
    # before the URLs are.
    from visibility.site_audit import views as site_audit

    site = admin.site
    return [
        path(
            "visibility/dashboard/",
            site.admin_view(dashboard_index_view),
            name="visibility_dashboard_index",
        ),
        path(
            "visibility/dashboard/<int:brand_id>/",
            site.admin_view(dashboard_view),
            name="visibility_dashboard",
        ),
        path(
            "visibility/dashboard/<int:brand_id>/metrics.csv",
            site.admin_view(metrics_csv_view),
            name="visibility_dashboard_csv",
        ),
        path(
            "visibility/site-audits/<int:brand_id>/",
            site.admin_view(site_audit.site_audits_view),
            name="visibility_site_audits",
        ),
        path(
            "visibility/site-audits/audit/<int:audit_id>/",
            site.admin_view(site_audit.site_audit_view),
            name="visibility_site_audit",
        ),
        path(
            "visibility/site-audits/audit/<int:audit_id>/report.json",
            site.admin_view(site_audit.site_audit_json_view),
            name="visibility_site_audit_json",
        ),
        path(
            "visibility/site-audits/audit/<int:audit_id>/report.html",
            site.admin_view(site_audit.site_audit_html_view),
            name="visibility_site_audit_html",
        ),
    ]


# The dashboard belongs to the app, not to one model, so its URLs go in front of the site's
# own (a ModelAdmin's would live under /admin/visibility/<model>/).
_site_get_urls = admin.site.get_urls
admin.site.get_urls = lambda: [*dashboard_urls(), *_site_get_urls()]
