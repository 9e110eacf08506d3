"""Django admin for the knowledge base, scoped per brand, writing through the services."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy

from kb import vocabulary
from kb.forms import (
    CORE_PROPERTIES,
    EntityForm,
    WordListField,
    field_name,
    profile_properties,
)
from kb.models import (
    FAQ,
    AuditEntry,
    Brand,
    BrandMembership,
    Entity,
    Fact,
    Revision,
    RevisionedModel,
    Status,
)
from kb.revision_changes import previous_revision, revision_changes
from kb.selectors import property_usage
from kb.services import entities as entity_services
from kb.services import statements as statement_services
from kb.services import workflow
from kb.services.errors import InvalidContent, ReferencedError, StaleEditError, WorkflowError
from kb.services.permissions import (
    EDIT,
    PUBLISH,
    admin_page_allowed,
    admin_page_require,
    brands_for,
    model_rules,
    user_can,
    user_can_somewhere,
)
from kb.validation import web_url_problem

URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}
SERVICE_ERRORS = (InvalidContent, ReferencedError, StaleEditError, WorkflowError, PermissionDenied)


class PolicyAdminMixin:
    """Permissions from the declared policy (``kb.services.permissions.MODEL_POLICY``):
    each operation needs its capability in the object's brand, or in some brand when there
    is no object yet; admin actions likewise."""

    brand_field = "brand"

    def brand_of(self, obj):
        return getattr(obj, self.brand_field) if obj is not None else None

    def rules(self):
        return model_rules(self.model)

    def user_may(self, request, operation: str, obj=None) -> bool:
        capability = self.rules().capability(operation)
        if obj is None:
            return user_can_somewhere(request.user, capability)
        return user_can(request.user, self.brand_of(obj), capability)

    def has_module_permission(self, request):
        return self.user_may(request, "view")

    def has_view_permission(self, request, obj=None):
        return self.user_may(request, "view", obj)

    def has_add_permission(self, request, obj=None):
        return self.user_may(request, "add")

    def has_change_permission(self, request, obj=None):
        return self.user_may(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self.user_may(request, "delete", obj)


class BrandScopedAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Users see only the brands they are members of, and do there what their role may."""

    formfield_overrides = URL_FIELDS

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        brands = brands_for(request.user, self.rules().view)
        return qs.filter(**{f"{self.brand_field}__in": brands})

    def get_actions(self, request):
        actions = super().get_actions(request)
        declared = self.rules().actions
        return {
            name: action
            for name, action in actions.items()
            if name == "delete_selected"  # Django checks has_delete_permission itself
            or (name in declared and self.user_may(request, name))
        }

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A new or moved object goes only to a brand where the user may add it.
        if db_field.name == "brand":
            kwargs["queryset"] = brands_for(request.user, self.rules().add)
        elif db_field.related_model is Entity:
            kwargs["queryset"] = Entity.objects.filter(brand__in=brands_for(request.user, EDIT))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# Records nobody edits in the admin: their MODEL_POLICY rules say so (kept as a name).
ReadOnlyBrandScopedAdmin = BrandScopedAdmin


class BrandMembershipInline(admin.TabularInline):
    model = BrandMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Brand)
class BrandAdmin(PolicyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "base_url", "language_list", "entity_count", "dashboard"]
    search_fields = ["name", "slug"]
    inlines = [BrandMembershipInline]
    formfield_overrides = URL_FIELDS

    @admin.display(description="Dashboard")
    def dashboard(self, brand):
        from django.urls import reverse

        url = reverse("admin:publishing_brand_dashboard", args=[brand.pk])
        return format_html('<a href="{}">Open</a>', url)

    @admin.display(description="Languages")
    def language_list(self, brand):
        return ", ".join(brand.languages)

    @admin.display(description="Entities")
    def entity_count(self, brand):
        return brand.entity_set.count()

    def brand_of(self, obj):
        return obj

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=brands_for(request.user))


class ScheduleForm(forms.Form):
    go_live_at = forms.DateTimeField(
        label=gettext_lazy("Go live at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=gettext_lazy("Empty: live now."),
    )
    expire_at = forms.DateTimeField(
        label=gettext_lazy("Take offline at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=gettext_lazy("Empty: stays live until unpublished."),
    )

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("go_live_at") and not cleaned.get("expire_at"):
            raise ValidationError(gettext("Give a go-live time, an expiry time, or both."))
        return cleaned


class SendBackForm(forms.Form):
    comment = forms.CharField(
        label=gettext_lazy("Comment for the editor"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
        help_text=gettext_lazy(
            "What to change before submitting again; the editor sees it on the page."
        ),
    )


def revision_history_html(obj: RevisionedModel, limit: int = 10) -> str:
    """The object's newest revisions, each linking to its changes since the one before."""
    from django.urls import reverse
    from django.utils import timezone

    rows = workflow.revisions_of(obj).select_related("user")[:limit]
    items = format_html_join(
        "",
        '<li><a href="{}">#{} {}</a> by {}{}</li>',
        (
            (
                reverse("admin:kb_revision_compare", args=[r.pk]),
                r.number,
                f"{timezone.localtime(r.created_at):%Y-%m-%d %H:%M}",
                r.user or "system",
                f" — {r.message}" if r.message else "",
            )
            for r in rows
        ),
    )
    return format_html('<ul class="revision-history">{}</ul>', items) if items else "—"


class WorkflowActions:
    """Admin actions that move objects through the workflow via the services, and what the
    change page shows of the workflow: the reviewer's comment, "send back", the history."""

    actions = ["submit_for_review", "publish", "schedule", "unpublish", "archive", "send_back"]
    change_form_template = "admin/kb/workflow_change_form.html"

    class Media:
        css = {"all": ["kb/history.css"]}

    def send_back_url_name(self) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_send_back"

    def get_urls(self):
        from django.urls import path

        view = self.admin_site.admin_view(self.send_back_view)
        key = f"{self.model._meta.model_name}_id"
        return [
            path(f"<int:{key}>/send-back/", view, name=self.send_back_url_name()),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from django.urls import reverse

        obj = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if obj is not None:
            extra_context["sent_back"] = workflow.last_sent_back(obj)
            if obj.status == Status.IN_REVIEW and user_can(request.user, obj.brand, PUBLISH):
                extra_context["send_back_url"] = reverse(
                    f"admin:{self.send_back_url_name()}", args=[obj.pk]
                )
            if "history" not in self.readonly_fields:  # entities show it among their fields
                extra_context["revision_history"] = revision_history_html(obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def send_back_view(self, request, **kwargs):
        """A reviewer's "send back" from the change page: a comment, then back to draft."""
        from django.shortcuts import get_object_or_404, redirect
        from django.urls import reverse

        opts = self.model._meta
        obj = get_object_or_404(
            self.model.objects.select_related("brand"), pk=kwargs[f"{opts.model_name}_id"]
        )
        admin_page_require(request, obj.brand)
        change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        form = SendBackForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                workflow.object_reject(
                    obj=obj, user=request.user, reason=form.cleaned_data["comment"]
                )
            except SERVICE_ERRORS as error:
                self.message_user(request, f"{obj}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"Sent {obj} back to the editor.", messages.SUCCESS)
            return redirect(change_url)
        return self.send_back_page(request, [obj], form, cancel_url=change_url)

    def send_back_page(self, request, objects, form, *, cancel_url, from_changelist=False):
        from django.template.response import TemplateResponse

        context = {
            **self.admin_site.each_context(request),
            "title": "Send back to the editor",
            "objects": objects,
            "form": form,
            "opts": self.model._meta,
            "cancel_url": cancel_url,
            "from_changelist": from_changelist,
        }
        return TemplateResponse(request, "admin/kb/send_back.html", context)

    @admin.action(description=gettext_lazy("Send back to the editor (with a comment)…"))
    def send_back(self, request, queryset):
        form = SendBackForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._run(request, queryset, "Sent back", workflow.object_reject,
                      reason=form.cleaned_data["comment"])  # fmt: skip
            return None
        return self.send_back_page(
            request, list(queryset), form, cancel_url="", from_changelist=True
        )

    def _run(self, request, queryset, verb, service, **kwargs):
        done = 0
        for obj in queryset:
            try:
                service(obj=obj, user=request.user, **kwargs)
                done += 1
            except SERVICE_ERRORS as error:
                self.message_user(request, f"{obj}: {error}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} item(s).", messages.SUCCESS)

    @admin.action(description=gettext_lazy("Submit for review"))
    def submit_for_review(self, request, queryset):
        self._run(request, queryset, "Submitted", workflow.object_submit_for_review)

    @admin.action(description=gettext_lazy("Publish now and update the site"))
    def publish(self, request, queryset):
        """One publish flow: the items go live and a release of the site is queued (one for
        them all); the message links to where its progress shows."""
        from publishing.services import object_publish_and_release

        requests = []

        def publish(*, obj, user):
            requests.append(object_publish_and_release(obj=obj, user=user))

        self._run(request, queryset, "Published", publish)
        if requests:
            brand = requests[-1].brand
            self.message_user(
                request,
                format_html(
                    'The site of {} is being updated (publish request {}): <a href="{}">follow '
                    "it on the dashboard</a>.",
                    brand,
                    requests[-1].pk,
                    reverse("admin:publishing_brand_dashboard", args=[brand.pk]),
                ),
                messages.INFO,
            )

    @admin.action(description=gettext_lazy("Schedule go-live and expiry…"))
    def schedule(self, request, queryset):
        """An intermediate page asks for the times; the service schedules each object."""
        from django.conf import settings
        from django.template.response import TemplateResponse

        form = ScheduleForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._run(
                request,
                queryset,
                "Scheduled",
                workflow.object_publish,
                go_live_at=form.cleaned_data["go_live_at"],
                expire_at=form.cleaned_data["expire_at"],
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Schedule publishing",
            "objects": list(queryset),
            "form": form,
            "time_zone": settings.TIME_ZONE,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/kb/schedule.html", context)

    @admin.action(description=gettext_lazy("Unpublish"))
    def unpublish(self, request, queryset):
        self._run(request, queryset, "Unpublished", workflow.object_unpublish)

    @admin.action(description=gettext_lazy("Archive"))
    def archive(self, request, queryset):
        self._run(request, queryset, "Archived", workflow.object_unpublish, archive=True)


# How the checks panel names each level of finding (kb.quality).
FINDING_LEVEL_LABELS = {
    "error": "error — blocks publishing",
    "ineligible": "not eligible — publishing goes ahead",
}


def status_badge(obj: RevisionedModel) -> str:
    suffix = " (live, with unpublished changes)" if obj.live and obj.has_unpublished_changes else ""
    return f"{obj.get_status_display()}{suffix}"


def service_problems_to_form(form, error: InvalidContent, field_for) -> None:
    for problem in error.problems:
        target = field_for(problem.pointer)
        form.add_error(target if target in form.fields else None, str(problem))


class AdminEntityForm(EntityForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk or not self.brand:
            return
        # An image uploaded to the brand's media, added to the entity's images.
        self.fields["upload_image"] = forms.FileField(
            label=gettext("Upload an image"),
            required=False,
            help_text=gettext(
                "JPEG, PNG, WebP or GIF; it is published with the pages that show it."
            ),
            widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
        )
        for language in self.brand.languages:
            self.fields[f"upload_alt__{language}"] = forms.CharField(
                label=gettext("Its alt text [%(language)s]") % {"language": language},
                required=False,
                max_length=300,
                help_text=gettext("What the image shows, for people who cannot see it.")
                if language == self.brand.default_language
                else "",
            )

    @property
    def upload_fields(self) -> list[str]:
        return [name for name in self.fields if name.startswith("upload_")]

    def clean_upload_image(self):
        upload = self.cleaned_data.get("upload_image")
        if upload:
            from publishing.media import media_validate

            media_validate(upload)  # a ValidationError naming the file, at this input
            upload.seek(0)
        return upload

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        brand = cleaned.get("brand") or self.brand
        types = cleaned["types_text"]
        if self.instance.pk:
            try:
                workflow.ensure_current(
                    Entity.objects.get(pk=self.instance.pk), cleaned.get("version")
                )
            except StaleEditError as error:
                raise ValidationError(str(error)) from None
        data = self.entity_data() if self.instance.pk else {}
        try:
            entity_services.entity_validate(
                brand=brand, types=types, data=data, iri=self.instance.iri or None
            )
        except InvalidContent as error:
            service_problems_to_form(self, error, self.field_for_pointer)
        self.entity_types, self.entity_payload = types, data
        return cleaned

    def field_for_pointer(self, pointer: str) -> str | None:
        parts = pointer.split("/")
        offers = len(parts) >= 3 and parts[1] == "data" and parts[2] == "offers"
        if offers and self.offer_fields is not None and not self.offers_from_json:
            return self.offer_fields.field_for(parts[3:]) or "more_properties"
        if len(parts) >= 3 and parts[1] == "data":
            entry = self.property_fields.get(parts[2])
            if entry:
                return entry[1][0]
            return "more_properties"
        return None


@admin.register(Entity)
class EntityAdmin(WorkflowActions, BrandScopedAdmin):
    form = AdminEntityForm
    list_display = ["label", "primary_type", "brand", "status_display", "version", "updated_at"]
    list_filter = [("brand", admin.RelatedOnlyFieldListFilter), "primary_type", "status"]
    search_fields = ["search_text"]  # names, codes, slug, @id in every language (kb.search)
    search_help_text = "Name, description, SKU, GTIN or MPN in any language; every word must match."
    readonly_fields = [
        "iri", "status_display", "on_site", "statements", "links", "history", "checks",
        "other_properties_view",
    ]  # fmt: skip

    def get_search_results(self, request, queryset, search_term):
        """Every word of the query in the normalised search text, or the whole @id."""
        from kb.search import matching

        return matching(queryset, search_term, or_equal="iri"), False

    @admin.display(description=gettext_lazy("Status"))
    def status_display(self, obj):
        return status_badge(obj)

    @admin.display(description=gettext_lazy("Checks"))
    def checks(self, obj):
        """Google profiles and AI citability for the working copy, and preview links."""
        from django.urls import reverse

        from kb.quality import entity_findings

        findings = entity_findings(brand=obj.brand, types=obj.types, data=obj.data)
        rows = format_html_join(
            "",
            '<li class="finding finding-{}"><strong>{}</strong> {} <code>{}</code> — {}</li>',
            (
                (
                    f.level,
                    FINDING_LEVEL_LABELS.get(f.level, f.level),
                    f.profile,
                    f.pointer or "/",
                    f.message,
                )
                for f in findings
            ),
        )
        previews = format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:publishing_entity_preview", args=[obj.pk, language]), language)
                for language in obj.brand.languages
            ),
        )
        summary = (
            f"{sum(f.level == 'error' for f in findings)} errors, "
            f"{sum(f.level == 'ineligible' for f in findings)} not eligible, "
            f"{sum(f.level == 'recommendation' for f in findings)} recommendations, "
            f"{sum(f.level == 'hint' for f in findings)} hints"
        )
        return format_html(
            '<p>{}. Preview the page and its JSON-LD: {}</p><ul class="findings">{}</ul>',
            summary,
            previews,
            rows or mark_safe("<li>Nothing to report.</li>"),  # noqa: S308 (a constant)
        )

    @admin.display(description=gettext_lazy("As people read them"))
    def other_properties_view(self, obj):
        """The JSON-LD of the other properties as labelled values, beside the textarea."""
        import json

        from kb.revision_changes import ChangeReader

        text = AdminEntityForm(instance=obj).fields["more_properties"].initial or "{}"
        rows = ChangeReader(model=Entity, brand_id=obj.brand_id).compare(
            None, {"data": json.loads(text)}
        )
        if not rows:
            return "None."
        return format_html(
            '<dl class="structured-view">{}</dl>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((r.field, r.new) for r in rows)),
        )

    @admin.display(description=gettext_lazy("Facts and FAQs"))
    def statements(self, obj):
        """The entity's facts and FAQs, each a link to its page, and links that add one
        about it (the form starts with this entity and brand chosen)."""
        rows = [
            (reverse(f"admin:kb_{model._meta.model_name}_change", args=[item.pk]), label, item)
            for model, label in ((Fact, "Fact"), (FAQ, "FAQ"))
            for item in model.objects.filter(about=obj).order_by("key")
        ]
        listed = format_html_join(
            "",
            '<li><a href="{}">{}: {}</a> ({})</li>',
            ((u, k, i, i.get_status_display()) for u, k, i in rows),
        )
        adds = format_html_join(
            " · ",
            '<a href="{}?about={}&amp;brand={}">{}</a>',
            (
                (reverse(f"admin:kb_{name}_add"), obj.pk, obj.brand_id, text)
                for name, text in (
                    ("fact", "Add a fact about it"),
                    ("faq", "Add a question about it"),
                )
            ),
        )
        return format_html(
            '<ul class="statements">{}</ul><p>{}</p>',
            listed or mark_safe("<li>None yet.</li>"),  # noqa: S308 (a constant)
            adds,
        )

    @admin.display(description=gettext_lazy("On the site"))
    def on_site(self, obj):
        """Where the entity's page is, and how the site's latest release is doing."""
        from publishing.selectors import entity_page_url, publish_request_latest

        url = entity_page_url(entity=obj)
        page = (
            format_html('<a href="{}" rel="noopener">{}</a>', url, url)
            if url and obj.live
            else "Not live yet."
            if not obj.live
            else "No page of its own."
        )
        latest = publish_request_latest(brand=obj.brand)
        if latest is None:
            return page
        release = f"release {latest.release.number}" if latest.release_id else "a release"
        state = {
            "pending": f"{release} is queued",
            "building": f"{release} is being built and deployed",
            "done": f"{release} is live",
            "failed": f"{release} failed",
        }.get(latest.state, latest.state)
        return format_html(
            '{} — site: {} (<a href="{}">dashboard</a>).',
            page,
            state,
            reverse("admin:publishing_brand_dashboard", args=[obj.brand_id]),
        )

    @admin.display(description=gettext_lazy("Referenced by"))
    def links(self, obj):
        incoming = obj.incoming_links.select_related("source")
        return (
            format_html_join(", ", "{} ({})", ((link.source, link.property) for link in incoming))
            or "—"
        )

    @admin.display(description=gettext_lazy("Revisions"))
    def history(self, obj):
        return revision_history_html(obj)

    def get_urls(self):
        from django.urls import path

        view = self.admin_site.admin_view(self.references_view)
        return [path("references/", view, name="kb_entity_references"), *super().get_urls()]

    def references_view(self, request):
        """Search the brand's entities for the reference picker (select2's JSON protocol)."""
        from django.http import JsonResponse

        brand_id = request.GET.get("brand", "")
        brand = Brand.objects.filter(pk=int(brand_id)).first() if brand_id.isdigit() else None
        if brand is None or not admin_page_allowed(request, brand):
            raise PermissionDenied
        names = tuple(t for t in request.GET.get("types", "").split(",") if vocabulary.is_class(t))
        found = Entity.objects.filter(brand=brand).order_by("label", "pk")
        if names:
            found = found.filter(primary_type__in=vocabulary.subclasses_of(names))
        if request.GET.get("exclude", "").isdigit():
            found = found.exclude(pk=int(request.GET["exclude"]))
        term = request.GET.get("term", "").strip()
        if term:  # names in every language, SKU, GTIN…, as the list's search box finds them
            from kb.search import matching

            found = matching(found, term) | found.filter(iri__icontains=term)
        page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
        size = 20
        rows = list(found[(page - 1) * size : page * size + 1])
        return JsonResponse(
            {
                "results": [{"id": e.iri, "text": str(e)} for e in rows[:size]],
                "pagination": {"more": len(rows) > size},
            }
        )

    def get_fieldsets(self, request, obj=None):
        head = ["brand", "types_text", "slug"]
        if obj is None:
            return [(None, {"fields": head})]
        form = self.get_form(request, obj)(instance=obj)
        usage = property_usage(brand=obj.brand, primary_type=obj.primary_type)
        preferred = [*CORE_PROPERTIES, *profile_properties(obj.types)]

        def rank(prop: str) -> tuple:
            known = preferred.index(prop) if prop in preferred else len(preferred)
            return (-usage.get(prop, 0), known, prop)

        most_used = sorted(
            (p for p in form.property_fields if p in obj.data or usage.get(p) or p in preferred),
            key=rank,
        )
        groups: dict[str, list[str]] = {}
        for prop, (_, names) in form.property_fields.items():
            if prop not in most_used:
                declared = vocabulary.declaring_class(prop, obj.types[0]) or "Thing"
                groups.setdefault(declared, []).extend(names)
        order = list(vocabulary.lineage(obj.types[0]))
        fieldsets = [
            (None, {"fields": [*head, "iri", "status_display", "on_site", "version"]}),
            (gettext("Check before publishing"), {"fields": ["checks"]}),
            (
                gettext("Most used"),
                {
                    "fields": [n for p in most_used for n in form.property_fields[p][1]],
                    # The admin shows a fieldset's description unescaped (|safe): the
                    # brand's name and the type are user text, escaped by format_html.
                    "description": format_html(
                        gettext(
                            "The properties used most across {}'s {} entities, then those "
                            "search and answer engines look for first."
                        ),
                        obj.brand,
                        obj.primary_type,
                    ),
                },
            ),
        ]
        if form.offer_fields is not None:
            # Each offer a few lines long (kb.offer_fields.LINES); the last one adds an offer.
            fieldsets.insert(
                3,
                (
                    gettext("Offers"),
                    {
                        "fields": form.offer_fields.lines(),
                        "description": gettext(
                            "Prices as numbers (12.50), currencies as ISO 4217 codes, countries "
                            "as codes or names (US, Germany). Shipping and returns are what "
                            "Google's merchant listings ask for. An offer's seller and regions "
                            "are kept as they are."
                        ),
                    },
                ),
            )
        more = [
            name
            for cls in sorted(groups, key=lambda c: order.index(c) if c in order else 99)
            for name in groups[cls]
        ]
        if more:
            # Behind a search box (kb/static/kb/property_search.js), not 70 inputs in a row.
            fieldsets.append(
                (
                    gettext("More properties"),
                    {
                        "fields": more,
                        "classes": ["property-search"],
                        "description": format_html(
                            gettext(
                                "Every other schema.org property of {}: type part of its name."
                            ),
                            obj.primary_type,
                        ),
                    },
                )
            )
        fieldsets.append((gettext("Add an image"), {"fields": form.upload_fields}))
        fieldsets.append((gettext("Facts and FAQs"), {"fields": ["statements"]}))
        fieldsets.append(
            (
                gettext("Other properties"),
                {"fields": [("more_properties", "other_properties_view")]},
            )
        )
        fieldsets.append((gettext("History"), {"fields": ["message", "links", "history"]}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The property inputs are not model fields: let the form declare its own fields.
        kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return [
            name
            for _, opts in self.get_fieldsets(request, obj)
            for line in opts["fields"]
            for name in (line if isinstance(line, tuple) else (line,))
        ]

    def save_model(self, request, obj, form, change):
        message = form.cleaned_data.get("message", "")
        upload = form.cleaned_data.get("upload_image")
        if change and upload:
            from publishing.media import media_upload

            alt = {
                name.split("__", 1)[1]: form.cleaned_data[name]
                for name in form.upload_fields
                if name.startswith("upload_alt__") and form.cleaned_data.get(name)
            }
            asset = media_upload(brand=obj.brand, file=upload, alt=alt, user=request.user)
            image = {"@id": asset.public_url}
            images = form.entity_payload.get("image", [])
            if image not in images:
                form.entity_payload = {**form.entity_payload, "image": [*images, image]}
        try:
            if change:
                saved = entity_services.entity_update(
                    entity=obj,
                    types=form.entity_types,
                    data=form.entity_payload,
                    expected_version=form.cleaned_data.get("version"),
                    user=request.user,
                    message=message,
                )
            else:
                saved = entity_services.entity_create(
                    brand=form.cleaned_data["brand"],
                    types=form.entity_types,
                    data={},
                    slug=form.cleaned_data.get("slug") or None,
                    user=request.user,
                    message=message,
                )
        except SERVICE_ERRORS as error:
            raise ValidationError(str(error)) from error
        obj.pk, obj.id = saved.pk, saved.pk

    def get_inlines(self, request, obj):
        return [FactInline, FAQInline] if obj is not None else []

    def save_formset(self, request, form, formset, change):
        """Facts and FAQs edited on the entity's page, saved as on their own pages: each
        through the statement services (revision, audit, permission), in this request's
        transaction."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for statement_form in formset.forms:
            if not statement_form.has_changed():
                continue
            new = statement_form.instance.pk is None
            saved = statement_form_save(
                statement_form, user=request.user, brand=form.instance.brand
            )
            if new:
                formset.new_objects.append(saved)
            else:
                formset.changed_objects.append((saved, statement_form.changed_data))

    def delete_model(self, request, obj):
        entity_services.entity_delete(entity=obj, user=request.user)

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None and request.method == "POST":
            try:
                entity_services.entity_delete(entity=obj, user=request.user)
            except ReferencedError as error:
                self.message_user(request, str(error), messages.ERROR)
                from django.shortcuts import redirect

                return redirect("admin:kb_entity_change", obj.pk)
            self.message_user(request, f"Deleted {obj}.", messages.SUCCESS)
            from django.shortcuts import redirect

            return redirect("admin:kb_entity_changelist")
        return super().delete_view(request, object_id, extra_context)


class MultilingualForm(forms.ModelForm):
    """One input per brand language for each multilingual JSON field."""

    multilingual_fields: tuple[str, ...] = ()
    optional_multilingual_fields: tuple[str, ...] = ()
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    default_brand: Brand | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].initial = self.instance.version
        brand = self.instance.brand if self.instance.brand_id else self.default_brand
        self.brand = brand
        languages = brand.languages if brand else ["en"]
        order = list(self.fields)
        for name in self.multilingual_fields:
            original = self.fields.pop(name)
            values = getattr(self.instance, name) or {}
            # Each language's input where the field was in the form's order.
            at = order.index(name)
            order[at : at + 1] = [field_name(name, language) for language in languages]
            optional = name in self.optional_multilingual_fields
            for language in languages:
                if optional:  # a word or two, needed only for some values (a unit's label)
                    widget, hint = forms.TextInput(attrs={"maxlength": 50}), original.help_text
                    hint = hint if language == languages[0] else ""
                else:
                    widget = forms.Textarea(attrs={"rows": 2})
                    hint = (
                        ""
                        if values.get(language) or language == languages[0]
                        else gettext("Missing translation")
                    )
                self.fields[field_name(name, language)] = forms.CharField(
                    label=f"{original.label} [{language}]",
                    required=False,
                    widget=widget,
                    initial=values.get(language, ""),
                    help_text=hint,
                )
        self.fields = {name: self.fields[name] for name in order}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        brand = cleaned.get("brand") or self.brand
        candidate = type(self.instance)(brand=brand, pk=self.instance.pk)
        candidate._state.adding = self.instance._state.adding
        for name in self.Meta.fields:
            if name in cleaned:
                setattr(candidate, name, cleaned[name])
        for name, values in self.multilingual_values().items():
            setattr(candidate, name, values)
        try:
            if self.instance.pk:
                current = type(self.instance).objects.get(pk=self.instance.pk)
                workflow.ensure_current(current, cleaned.get("version"))
            statement_services.full_check(brand, candidate)
        except StaleEditError as error:
            raise ValidationError(str(error)) from None
        except InvalidContent as error:
            for problem in error.problems:
                name, *rest = problem.pointer.strip("/").split("/")
                target = name if name in self.fields else None
                if name in self.multilingual_fields:  # at the language's own input
                    language = rest[0] if rest and rest[0] in brand.languages else None
                    target = field_name(name, language or brand.default_language)
                self.add_error(target if target in self.fields else None, problem.message)
        return cleaned

    def multilingual_values(self) -> dict[str, dict[str, str]]:
        values: dict[str, dict[str, str]] = {}
        for name in self.multilingual_fields:
            prefix = field_name(name) + "__"
            values[name] = {
                key[len(prefix) :]: text
                for key, text in self.cleaned_data.items()
                if key.startswith(prefix) and text
            }
        return values


def statement_form_save(form: MultilingualForm, *, user, brand: Brand) -> Fact | FAQ:
    """A fact's or FAQ's form saved through the statement services (new or changed)."""
    fields = {
        name: form.cleaned_data[name]
        for name in form.Meta.fields
        if name in form.cleaned_data and name != "brand"
    }
    fields.update(form.multilingual_values())
    obj = form.instance
    try:
        if obj.pk:
            return statement_services.statement_update(
                obj=type(obj).objects.get(pk=obj.pk),
                expected_version=form.cleaned_data.get("version"),
                user=user,
                **fields,
            )
        return statement_services.statement_create(
            model=type(obj), brand=brand, user=user, **fields
        )
    except SERVICE_ERRORS as error:
        raise ValidationError(str(error)) from error


class StatementAdmin(WorkflowActions, BrandScopedAdmin):
    """Facts and FAQs: saved through the statement services."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["fields"] = None
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            form.default_brand = brands_for(request.user, "edit").first()
        return form

    def get_fields(self, request, obj=None):
        form = self.get_form(request, obj)(instance=obj)
        return [name for name in form.fields if name != "version"] + ["version"]

    def save_model(self, request, obj, form, change):
        saved = statement_form_save(form, user=request.user, brand=form.cleaned_data["brand"])
        obj.pk, obj.id = saved.pk, saved.pk

    def delete_model(self, request, obj):
        statement_services.statement_delete(obj=obj, user=request.user)

    @admin.display(description=gettext_lazy("Status"))
    def status_display(self, obj):
        return status_badge(obj)


class FactForm(MultilingualForm):
    multilingual_fields = ("statement", "unit_labels", "source_title")
    optional_multilingual_fields = ("unit_labels",)
    source_url = forms.URLField(
        max_length=2000, assume_scheme="https", label=gettext_lazy("Source URL")
    )
    check_cues = WordListField(
        required=False,
        label=gettext_lazy("Cue words"),
        help_text=gettext_lazy(
            "Words that tell an AI answer is stating this fact, in any language, separated by "
            "commas: employs, staff, 员工. Empty: taken from the statement."
        ),
    )

    class Meta:
        model = Fact
        fields = [
            "brand",
            "key",
            "about",
            "statement",
            "value",
            "unit",
            "unit_labels",
            "check_cues",
            "source_url",
            "source_title",
            "as_of",
            "valid_until",
        ]
        labels = {"unit_labels": "Unit in words"}


class FAQForm(MultilingualForm):
    multilingual_fields = ("question", "answer")

    class Meta:
        model = FAQ
        fields = ["brand", "key", "about", "question", "answer", "order"]


class StatementInline(PolicyAdminMixin, admin.StackedInline):
    """An entity's facts or FAQs, edited on its page and saved through the statement
    services (see ``EntityAdmin.save_formset``); each links to its own page, where it is
    submitted, published or archived."""

    extra = 0
    exclude = ["brand"]
    readonly_fields = ["status_display"]
    show_change_link = True
    classes = ["collapse"]

    def brand_of(self, obj):
        return obj.brand if obj is not None else None

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["fields"] = None  # the form declares its per-language inputs itself
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.default_brand = obj.brand if obj is not None else None
        return formset

    def get_fields(self, request, obj=None):
        form = self.get_formset(request, obj).form()
        shown = [name for name in form.fields if name not in ("version", "about")]
        return ["status_display", *shown, "version"]

    def has_add_permission(self, request, obj=None):
        return self.user_may(request, "add", obj)

    def has_delete_permission(self, request, obj=None):
        # Deleting a published fact is done on its own page, where it is seen whole.
        return False

    @admin.display(description=gettext_lazy("Status"))
    def status_display(self, obj):
        return status_badge(obj) if obj.pk else "New"


class FactInline(StatementInline):
    model = Fact
    form = FactForm
    verbose_name_plural = gettext_lazy("Facts about it")
    # Inputs that share a line: a fact is short, its form need not be 14 rows long.
    lines = (("key", "value", "unit"), ("as_of", "valid_until"))

    def get_fieldsets(self, request, obj=None):
        fields = self.get_fields(request, obj)
        unit_words = tuple(n for n in fields if n.startswith(field_name("unit_labels")))
        lines = [*self.lines, unit_words]  # each language's word for the unit together
        rows: list = []
        for name in fields:
            line = next((line for line in lines if name in line), None)
            if line is None:
                rows.append(name)
            elif name == next(n for n in line if n in fields):  # the line's first input
                rows.append(tuple(n for n in line if n in fields))
        return [(None, {"fields": rows})]


class FAQInline(StatementInline):
    model = FAQ
    form = FAQForm
    verbose_name_plural = gettext_lazy("Questions about it")


@admin.register(Fact)
class FactAdmin(StatementAdmin):
    form = FactForm
    list_display = ["key", "about", "value", "unit", "as_of", "source_link", "status_display"]
    list_filter = [("brand", admin.RelatedOnlyFieldListFilter), "status"]
    search_fields = ["search_text"]  # key, value, statement, source in every language
    search_help_text = "Statement, key, value or source in any language; every word must match."
    readonly_fields = ["checks"]

    def get_search_results(self, request, queryset, search_term):
        """Every word of the query in the normalised search text (kb.search)."""
        from kb.search import matching

        return matching(queryset, search_term), False

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": self.get_fields(request, obj)})]
        if obj is not None:  # the checks read the saved fact
            fieldsets.append(("Checks", {"fields": ["checks"]}))
        return fieldsets

    @admin.display(description=gettext_lazy("AI citability"))
    def checks(self, fact):
        """The saved fact's findings, as entities show theirs: advice that never blocks a save."""
        from kb.quality import fact_findings

        findings = fact_findings(brand=fact.brand, fact=fact)
        rows = format_html_join(
            "",
            '<li class="finding finding-{}"><strong>{}</strong> {} <code>{}</code> — {}</li>',
            ((f.level, f.level, f.profile, f.pointer, f.message) for f in findings),
        )
        return format_html(
            '<p>{} recommendations, {} hints (for the saved text).</p><ul class="findings">{}</ul>',
            sum(f.level == "recommendation" for f in findings),
            sum(f.level == "hint" for f in findings),
            rows or mark_safe("<li>Nothing to report.</li>"),  # noqa: S308 (a constant)
        )

    @admin.display(description=gettext_lazy("Source"))
    def source_link(self, fact):
        if web_url_problem(fact.source_url):  # only http(s) becomes a link
            return fact.source_url
        return format_html('<a href="{}" rel="noopener">{}</a>', fact.source_url, fact.source_url)


@admin.register(FAQ)
class FAQAdmin(StatementAdmin):
    form = FAQForm
    list_display = ["key", "question_text", "about", "order", "status_display"]
    list_filter = [("brand", admin.RelatedOnlyFieldListFilter), "status"]
    search_fields = ["search_text"]  # key, question, answer in every language
    search_help_text = "Question, answer or key in any language; every word must match."

    def get_search_results(self, request, queryset, search_term):
        """Every word of the query in the normalised search text (kb.search)."""
        from kb.search import matching

        return matching(queryset, search_term), False

    @admin.display(description=gettext_lazy("Question"))
    def question_text(self, faq):
        return faq.brand.localize(faq.question)


@admin.register(Revision)
class RevisionAdmin(ReadOnlyBrandScopedAdmin):
    list_display = [
        "object_repr",
        "number",
        "content_type",
        "created_at",
        "user",
        "message",
        "go_live_at",
        "expire_at",
        "changes_link",
    ]
    list_filter = [("brand", admin.RelatedOnlyFieldListFilter), "content_type"]
    search_fields = ["object_repr", "message"]
    readonly_fields = [
        "object_repr",
        "number",
        "created_at",
        "user",
        "message",
        "go_live_at",
        "expire_at",
        "diff_to_live",
        "diff_to_previous",
        "pretty_content",
    ]
    fields = readonly_fields
    actions = ["revert"]

    class Media:
        css = {"all": ["kb/history.css"]}

    @admin.display(description="Changes")
    def changes_link(self, revision):
        from django.urls import reverse

        url = reverse("admin:kb_revision_compare", args=[revision.pk])
        return format_html('<a href="{}">Compare with previous</a>', url)

    def get_urls(self):
        from django.urls import path

        view = self.admin_site.admin_view(self.compare_view)
        return [
            path("<int:revision_id>/compare/", view, name="kb_revision_compare"),
            *super().get_urls(),
        ]

    def compare_view(self, request, revision_id: int):
        """One revision against the one before it (and against what is published)."""
        from django.shortcuts import get_object_or_404
        from django.template.response import TemplateResponse
        from django.urls import NoReverseMatch, reverse

        revision = get_object_or_404(
            Revision.objects.select_related("brand", "content_type", "user"), pk=revision_id
        )
        admin_page_require(request, revision.brand)
        obj = revision.content_object
        live = getattr(obj, "live_revision", None)
        following = (
            Revision.objects.filter(
                content_type=revision.content_type,
                object_id=revision.object_id,
                number__gt=revision.number,
            )
            .order_by("number")
            .first()
        )
        previous = previous_revision(revision)
        try:
            object_url = reverse(
                f"admin:kb_{revision.content_type.model}_change", args=[revision.object_id]
            )
        except NoReverseMatch:
            object_url = ""
        context = {
            **self.admin_site.each_context(request),
            "title": f"Changes in revision #{revision.number} of {revision.object_repr}",
            "revision": revision,
            "previous": previous,
            "following": following,
            "changes": revision_changes(previous, revision),
            "live": live,
            "live_changes": revision_changes(live, revision) if live else [],
            "object_url": object_url if obj is not None else "",
        }
        return TemplateResponse(request, "admin/kb/revision_compare.html", context)

    @admin.display(description="Snapshot")
    def pretty_content(self, revision):
        return format_html(
            "<pre>{}</pre>", json.dumps(revision.content, ensure_ascii=False, indent=2)
        )

    @staticmethod
    def changes_html(old: Revision | None, new: Revision):
        from django.template.loader import render_to_string

        changes = revision_changes(old, new)
        return render_to_string("admin/kb/revision_changes.html", {"changes": changes})

    @admin.display(description="Changes against the published revision (what a reviewer approves)")
    def diff_to_live(self, revision):
        obj = revision.content_object
        live = getattr(obj, "live_revision", None)
        if live is None:
            return "Nothing of this is published yet: everything below is new."
        if live.pk == revision.pk:
            return "This is the published revision."
        return self.changes_html(live, revision)

    @admin.display(description="Changes since the previous revision")
    def diff_to_previous(self, revision):
        return self.changes_html(previous_revision(revision), revision)

    @admin.action(description="Revert the entity to this revision")
    def revert(self, request, queryset):
        for revision in queryset:
            obj = revision.content_object
            if not isinstance(obj, Entity):
                self.message_user(
                    request, f"{revision}: only entities can be reverted here.", messages.WARNING
                )
                continue
            try:
                entity_services.entity_revert(
                    entity=obj, revision=revision, expected_version=None, user=request.user
                )
            except SERVICE_ERRORS as error:
                self.message_user(request, f"{revision}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{obj} reverted to revision {revision.number}.")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyBrandScopedAdmin):
    list_display = ["timestamp", "action", "object_repr", "user", "brand"]
    list_filter = [("brand", admin.RelatedOnlyFieldListFilter), "action"]
    readonly_fields = ["timestamp", "action", "object_repr", "user", "brand", "data"]
