"""The permission policy: who may do what, in which brand. ``user=None`` is the system (CLI,
scheduled tasks).

Roles grant capabilities in one brand (``ROLE_CAPABILITIES``). Everything a user can reach
is declared here once and asked through this module:

- ``MODEL_POLICY``: for every model the admin shows, the capability each of view, add,
  change and delete needs, and the capability of each admin action;
- ``ADMIN_VIEW_POLICY``: the admin's own pages (dashboards, previews, publish);
- ``API_POLICY``: every API endpoint and method, as the token scope it needs; session users
  get the scopes of their role (``ROLE_SCOPES``).

``tests/test_permission_matrix.py`` builds its matrix from the admin registry and the URL
configuration, so a page or an endpoint missing here fails the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from kb.models import Brand, BrandMembership

Role = BrandMembership.Role

# Capabilities in one brand, each including the ones before it.
VIEW, EDIT, PUBLISH, ADMIN = "view", "edit", "publish", "admin"
# Not capabilities of a role: only superusers (the operator), or nobody at all.
SUPERUSER, NOBODY = "superuser", "nobody"

ROLE_CAPABILITIES = {
    Role.EDITOR: frozenset({VIEW, EDIT}),
    Role.REVIEWER: frozenset({VIEW, EDIT, PUBLISH}),
    Role.ADMIN: frozenset({VIEW, EDIT, PUBLISH, ADMIN}),
}
ALLOWED_ROLES = {
    capability: {role for role, granted in ROLE_CAPABILITIES.items() if capability in granted}
    for capability in (VIEW, EDIT, PUBLISH, ADMIN)
}

# API token scopes and the capability each stands for.
SCOPE_CAPABILITY = {
    "read": VIEW,
    "preview": VIEW,
    "write": EDIT,
    "publish": PUBLISH,
    "manage": ADMIN,
}
ROLE_SCOPES = {
    role: frozenset(scope for scope, cap in SCOPE_CAPABILITY.items() if cap in granted)
    for role, granted in ROLE_CAPABILITIES.items()
}
ALL_SCOPES = frozenset(SCOPE_CAPABILITY)


@dataclass(frozen=True)
class ModelRules:
    """The capability each admin operation on a model needs, in the object's brand."""

    view: str
    add: str
    change: str
    delete: str
    actions: dict[str, str] = field(default_factory=dict)

    def capability(self, operation: str) -> str:
        return self.actions[operation] if operation in self.actions else getattr(self, operation)


def content(**actions: str) -> ModelRules:
    """Content editors write; publishing moves it live."""
    return ModelRules(view=VIEW, add=EDIT, change=EDIT, delete=EDIT, actions=actions)


def records(view: str = VIEW, **actions: str) -> ModelRules:
    """Records nobody edits in the admin, acted on through actions that call the services."""
    return ModelRules(view=view, add=NOBODY, change=NOBODY, delete=NOBODY, actions=actions)


def settings_of_brand(view: str = VIEW) -> ModelRules:
    """What reaches servers, secrets or the brand's policies: brand admins only."""
    return ModelRules(view=view, add=ADMIN, change=ADMIN, delete=ADMIN)


OPERATOR_ONLY = ModelRules(view=SUPERUSER, add=SUPERUSER, change=SUPERUSER, delete=SUPERUSER)
WORKFLOW = {
    "submit_for_review": EDIT,
    "publish": PUBLISH,
    "schedule": PUBLISH,
    "unpublish": PUBLISH,
    "archive": PUBLISH,
    "send_back": PUBLISH,  # object_reject: sending back is the reviewer's
}

MODEL_POLICY: dict[str, ModelRules] = {
    "kb.brand": ModelRules(view=VIEW, add=SUPERUSER, change=ADMIN, delete=SUPERUSER),
    # Members are managed by the operator: granting a role means choosing among all users.
    "kb.brandmembership": OPERATOR_ONLY,
    "kb.entity": content(**WORKFLOW),
    "kb.fact": content(**WORKFLOW),
    "kb.faq": content(**WORKFLOW),
    "kb.revision": records(revert=EDIT),
    "kb.auditentry": records(),
    "publishing.release": records(roll_back=PUBLISH, compare=VIEW),
    "publishing.publishrequest": records(),
    # Targets name servers and hold webhook signing secrets.
    "publishing.target": settings_of_brand(view=ADMIN),
    "publishing.webhookdelivery": records(view=ADMIN),
    "publishing.sitesettings": settings_of_brand(),
    "publishing.sectionaiuse": settings_of_brand(),
    # Images are content: editors upload them; they go live with the content that shows them.
    "publishing.mediaasset": content(),
    "visibility.engine": settings_of_brand(),
    "visibility.alertsettings": settings_of_brand(),
    "visibility.promptset": content(run_now=EDIT),
    "visibility.prompt": content(),
    "visibility.run": records(),
    "visibility.answer": records(),
    "visibility.alert": records(),
    "visibility.crawlerhit": records(),
    # The server's own: users and the beat schedules every brand shares.
    "auth.user": OPERATOR_ONLY,
    "auth.group": OPERATOR_ONLY,
    "django_celery_beat.periodictask": OPERATOR_ONLY,
    "django_celery_beat.clockedschedule": OPERATOR_ONLY,
    "django_celery_beat.crontabschedule": OPERATOR_ONLY,
    "django_celery_beat.solarschedule": OPERATOR_ONLY,
    "django_celery_beat.intervalschedule": OPERATOR_ONLY,
}

# The admin's own pages (URL names), and what they need in the brand they show.
ADMIN_VIEW_POLICY: dict[str, str] = {
    "kb_entity_references": VIEW,
    "kb_entity_send_back": PUBLISH,
    "kb_fact_send_back": PUBLISH,
    "kb_faq_send_back": PUBLISH,
    "kb_revision_compare": VIEW,
    "publishing_brand_dashboard": VIEW,
    "publishing_entity_preview": VIEW,
    "publishing_entity_preview_page": VIEW,
    # An uploaded image's bytes (the admin's thumbnails, the preview's images).
    "publishing_mediaasset_file": VIEW,
    "publishing_release_publish": PUBLISH,
    "visibility_dashboard_index": VIEW,
    "visibility_dashboard": VIEW,
    "visibility_dashboard_csv": VIEW,
    # Site audits: seeing them; starting one (a POST to the list) needs EDIT, checked there.
    "visibility_site_audits": VIEW,
    "visibility_site_audit": VIEW,
    "visibility_site_audit_json": VIEW,
    "visibility_site_audit_html": VIEW,
}

# Every API endpoint (URL name) and method, and the token scope it needs.
API_POLICY: dict[str, dict[str, str]] = {
    "api-brands": {"GET": "read"},
    "api-brand": {"GET": "read"},
    "api-entities": {"GET": "read", "POST": "write"},
    "api-entity": {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "write"},
    "api-entity-jsonld": {"GET": "read"},
    "api-entity-publish": {"POST": "publish"},
    "api-facts": {"GET": "read", "POST": "write"},
    "api-fact": {"GET": "read", "PUT": "write", "DELETE": "write"},
    "api-faqs": {"GET": "read", "POST": "write"},
    "api-faq": {"GET": "read", "PUT": "write", "DELETE": "write"},
    "api-import": {"POST": "write"},
    "api-import-job": {"GET": "write"},  # the status of an import run as a task
    "api-export-jsonld": {"GET": "read"},
    "api-export-jsonl": {"GET": "read"},
    "api-releases": {"GET": "read"},
    "api-release": {"GET": "read"},
    "api-release-artifacts": {"GET": "read"},
    "api-release-artifact": {"GET": "read"},
    "api-release-rollback": {"POST": "publish"},
    "api-publish": {"POST": "publish"},
    "api-publish-request": {"GET": "read"},
    "api-webhooks": {"GET": "manage", "POST": "manage"},
    "api-webhook": {"GET": "manage", "PUT": "manage", "DELETE": "manage"},
    "api-visibility-runs": {"GET": "read", "POST": "write"},
    "api-visibility-run": {"GET": "read"},
    "api-visibility-run-answers": {"GET": "read"},
    "api-visibility-metrics": {"GET": "read"},
    "api-visibility-series": {"GET": "read"},
    "api-visibility-series-csv": {"GET": "read"},
    "api-visibility-alerts": {"GET": "read"},
    "api-visibility-citations": {"GET": "read"},
    "api-visibility-competitors": {"GET": "read"},
    "api-visibility-paired": {"GET": "read"},
    "api-visibility-config": {"GET": "manage", "PUT": "manage"},
    "api-visibility-release-comparison": {"GET": "read"},
    "api-visibility-crawlers": {"GET": "read"},
}


def model_rules(model) -> ModelRules:
    """The declared rules of a model (class or instance); an undeclared model is an error."""
    label = model._meta.label_lower
    try:
        return MODEL_POLICY[label]
    except KeyError:
        raise LookupError(
            f"The model {label} has no entry in kb.services.permissions.MODEL_POLICY: "
            "declare who may view, add, change and delete it."
        ) from None


def brand_role(user, brand: Brand) -> str | None:
    if user is None or not user.is_authenticated:
        return None
    membership = BrandMembership.objects.filter(user=user, brand=brand).only("role").first()
    return membership.role if membership else None


def _without_a_brand(user, capability: str) -> bool | None:
    """The answer no brand changes (the system, inactive users, superusers), or None."""
    if user is None:
        return True
    if not user.is_active or capability == NOBODY:
        return False
    if user.is_superuser:
        return True
    if capability == SUPERUSER:
        return False
    return None


def user_can(user, brand: Brand | None, capability: str) -> bool:
    """Whether ``user`` has ``capability`` in ``brand`` (``None``: the system, always)."""
    decided = _without_a_brand(user, capability)
    if decided is not None:
        return decided
    return brand is not None and brand_role(user, brand) in ALLOWED_ROLES[capability]


def user_can_somewhere(user, capability: str) -> bool:
    """Whether ``user`` has ``capability`` in at least one brand."""
    decided = _without_a_brand(user, capability)
    if decided is not None:
        return decided
    return brands_for(user, capability).exists()


def require(user, brand: Brand, capability: str) -> None:
    if not user_can(user, brand, capability):
        raise PermissionDenied(refusal(capability) % {"user": user, "brand": repr(brand.slug)})


def refusal(capability: str) -> str:
    """What a user without ``capability`` is told, in the active language (a whole sentence
    per capability, for translators)."""
    return {
        VIEW: _("%(user)s may not see brand %(brand)s."),
        EDIT: _("%(user)s may not edit content of brand %(brand)s."),
        PUBLISH: _("%(user)s may not publish content of brand %(brand)s."),
        ADMIN: _("%(user)s may not administer brand %(brand)s."),
        SUPERUSER: _("%(user)s may not administer the server for brand %(brand)s."),
        NOBODY: _("%(user)s may not change records of brand %(brand)s."),
    }[capability]


def admin_page_allowed(request, brand: Brand | None) -> bool:
    """Whether the request's user may open this admin page (its URL name, declared in
    ``ADMIN_VIEW_POLICY``) for ``brand``; an undeclared page is an error."""
    name = request.resolver_match.url_name
    try:
        capability = ADMIN_VIEW_POLICY[name]
    except KeyError:
        raise LookupError(
            f"The admin page {name} has no entry in kb.services.permissions.ADMIN_VIEW_POLICY."
        ) from None
    return user_can(request.user, brand, capability)


def admin_page_require(request, brand: Brand | None) -> None:
    if not admin_page_allowed(request, brand):
        raise PermissionDenied(
            _("%(user)s may not open this page of brand %(brand)s.")
            % {"user": request.user, "brand": brand}
        )


def brands_for(user, capability: str = VIEW):
    if user is None or not user.is_authenticated or not user.is_active or capability == NOBODY:
        return Brand.objects.none()
    if user.is_superuser:
        return Brand.objects.all()
    if capability == SUPERUSER:
        return Brand.objects.none()
    return Brand.objects.filter(
        memberships__user=user, memberships__role__in=ALLOWED_ROLES[capability]
    ).distinct()


def scopes_for_role(role: str | None) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


def api_scope(url_name: str, method: str) -> str:
    """The scope an API endpoint's method needs; an undeclared one is an error."""
    try:
        return API_POLICY[url_name][method]
    except KeyError:
        raise LookupError(
            f"{method} {url_name} has no entry in kb.services.permissions.API_POLICY."
        ) from None
