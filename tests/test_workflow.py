"""Revisions, the publishing workflow, stale saves, deletion of referenced entities."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.utils import timezone

from kb.models import AuditEntry, BrandMembership, Entity, Revision, Status
from kb.revision_changes import revision_changes
from kb.selectors import brand_graph
from kb.services.brands import membership_grant
from kb.services.entities import entity_create, entity_delete, entity_revert, entity_update
from kb.services.errors import (
    InvalidContent,
    PublishBlocked,
    ReferencedError,
    StaleEditError,
    WorkflowError,
)
from kb.services.statements import fact_create, faq_create
from kb.services.workflow import (
    object_publish,
    object_submit_for_review,
    object_unpublish,
    publish_scheduled,
    revisions_of,
)

pytestmark = pytest.mark.django_db


def text(value, language="en"):
    return [{"@value": value, "@language": language}]


@pytest.fixture
def organization(brand):
    return entity_create(
        brand=brand,
        types=["Organization"],
        data={"name": text("Acme Tea") + text("阿克米茶", "zh-Hans")},
        iri="https://tea.example/#organization",
    )


@pytest.fixture
def product(brand, organization):
    return entity_create(
        brand=brand,
        types=["Product"],
        data={
            "name": text("Longjing"),
            "image": [{"@id": "https://tea.example/img/longjing.jpg"}],
            "brand": [{"@id": organization.iri}],
            "offers": [
                {
                    "@type": ["Offer"],
                    "price": [{"@value": 12.5}],
                    "priceCurrency": [{"@value": "USD"}],
                }
            ],
        },
        iri="https://tea.example/products/longjing/#product",
    )


def users(brand):
    User = get_user_model()
    editor = User.objects.create_user("editor", password="x", is_staff=True)
    reviewer = User.objects.create_user("reviewer", password="x", is_staff=True)
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.EDITOR)
    membership_grant(brand=brand, user=reviewer, role=BrandMembership.Role.REVIEWER)
    return editor, reviewer


def test_edit_creates_revision_with_full_snapshot_and_diff(product):
    assert product.version == 1
    first = product.latest_revision
    assert first.number == 1
    updated = entity_update(
        entity=product,
        data={**product.data, "name": text("West Lake Longjing")},
        expected_version=1,
        message="Longer name",
    )
    assert updated.version == 2
    assert updated.label == "West Lake Longjing"
    second = updated.latest_revision
    assert second.number == 2
    assert second.message == "Longer name"
    assert second.content["data"]["name"] == text("West Lake Longjing")
    assert second.content["iri"] == "https://tea.example/products/longjing/#product"
    assert [c.as_row() for c in revision_changes(first, second)] == [
        ("Name (English / en)", "changed", "Longjing", "West Lake Longjing")
    ]


def test_renaming_keeps_the_iri_and_slug(product):
    updated = entity_update(
        entity=product, data={**product.data, "name": text("Dragon Well")}, expected_version=1
    )
    assert updated.iri == "https://tea.example/products/longjing/#product"
    assert updated.slug == "longjing"


def test_stale_save_is_rejected_and_nothing_is_overwritten(product):
    entity_update(
        entity=product, data={**product.data, "sku": [{"@value": "A1"}]}, expected_version=1
    )
    with pytest.raises(StaleEditError) as error:
        entity_update(
            entity=product, data={**product.data, "sku": [{"@value": "B2"}]}, expected_version=1
        )
    assert "after you opened it (you edited version 1, it is now version 2)" in str(error.value)
    assert "Your changes were not saved" in str(error.value)
    product.refresh_from_db()
    assert product.data["sku"] == [{"@value": "A1"}]
    assert revisions_of(product).count() == 2


def test_invalid_data_is_refused_with_pointer(product):
    with pytest.raises(InvalidContent) as error:
        entity_update(
            entity=product,
            data={
                **product.data,
                "offers": [{"@type": ["Offer"], "availability": [{"@value": "Soon"}]}],
            },
            expected_version=1,
        )
    assert error.value.messages == [
        "/data/offers/availability: 'Soon' is not a member of ItemAvailability; use one of "
        "BackOrder, Discontinued, InStock, InStoreOnly, LimitedAvailability, MadeToOrder, "
        "OnlineOnly, OutOfStock…"
    ]
    product.refresh_from_db()
    assert product.version == 1


def test_published_content_is_the_revision_not_the_working_copy(brand, product):
    object_publish(obj=product)
    product.refresh_from_db()
    assert product.status == Status.PUBLISHED
    assert product.live_revision_id == product.latest_revision_id
    entity_update(
        entity=product, data={**product.data, "name": text("Draft name")}, expected_version=1
    )
    product.refresh_from_db()
    assert product.status == Status.DRAFT
    assert product.live and product.has_unpublished_changes
    published = {n["@id"]: n for n in brand_graph(brand=brand, state="published")["@graph"]}
    latest = {n["@id"]: n for n in brand_graph(brand=brand, state="latest")["@graph"]}
    assert published[product.iri]["name"] == {"@value": "Longjing", "@language": "en"}
    assert latest[product.iri]["name"] == {"@value": "Draft name", "@language": "en"}
    assert "https://tea.example/#organization" not in published  # never published


def test_review_then_publish_with_permissions(brand, product):
    editor, reviewer = users(brand)
    object_submit_for_review(obj=product, user=editor)
    product.refresh_from_db()
    assert product.status == Status.IN_REVIEW
    assert product.latest_revision.submitted_for_review_at is not None
    with pytest.raises(
        PermissionDenied, match="editor may not publish content of brand 'acme-tea'"
    ):
        object_publish(obj=product, user=editor)
    object_publish(obj=product, user=reviewer)
    product.refresh_from_db()
    assert product.status == Status.PUBLISHED
    assert product.live_revision.approved_by == reviewer
    actions = list(AuditEntry.objects.filter(object_id=product.pk).values_list("action", flat=True))
    assert actions == ["publish", "submit_for_review", "create"]


def test_other_brand_editor_cannot_touch(brand, other_brand, product):
    User = get_user_model()
    outsider = User.objects.create_user("outsider", password="x", is_staff=True)
    membership_grant(brand=other_brand, user=outsider, role=BrandMembership.Role.ADMIN)
    with pytest.raises(PermissionDenied):
        entity_update(entity=product, data={}, expected_version=1, user=outsider)
    with pytest.raises(PermissionDenied):
        entity_create(brand=brand, types=["Thing"], data={}, user=outsider)


def test_scheduled_go_live_and_expiry_are_polled(brand, product):
    now = timezone.now()
    object_publish(
        obj=product, go_live_at=now + timedelta(hours=1), expire_at=now + timedelta(hours=2)
    )
    product.refresh_from_db()
    assert product.status == Status.SCHEDULED
    assert not product.live
    assert publish_scheduled(now=now) == {"published": 0, "expired": 0, "brands": []}
    assert publish_scheduled(now=now + timedelta(hours=1, minutes=1)) == {
        "published": 1,
        "expired": 0,
        "brands": [brand.pk],
    }
    product.refresh_from_db()
    assert product.live and product.status == Status.PUBLISHED
    # Idempotent: polling again publishes nothing new.
    assert publish_scheduled(now=now + timedelta(hours=1, minutes=2)) == {
        "published": 0,
        "expired": 0,
        "brands": [],
    }
    assert publish_scheduled(now=now + timedelta(hours=2, minutes=1)) == {
        "published": 0,
        "expired": 1,
        "brands": [brand.pk],
    }
    product.refresh_from_db()
    assert not product.live and product.status == Status.UNPUBLISHED


def test_errors_block_publishing_now_and_at_the_scheduled_time(brand, product):
    no_currency = json_copy(product.data)
    no_currency["offers"][0]["priceCurrency"] = [{"@value": "XYZ"}]
    # A save refuses the wrong value; an import keeps what it reads, and a publish refuses it.
    with pytest.raises(InvalidContent):
        entity_update(entity=product, data=no_currency, expected_version=product.version)
    broken = entity_update(
        entity=product, data=no_currency, expected_version=product.version, validated=True
    )
    with pytest.raises(PublishBlocked) as blocked:
        object_publish(obj=broken)
    assert [(f.pointer, f.message) for f in blocked.value.findings] == [
        ("/offers/priceCurrency", "'XYZ' is not an ISO 4217 currency code.")
    ]
    broken.refresh_from_db()
    assert broken.live_revision_id is None
    # Recommendations and hints do not block: this product has no description or SKU.
    fixed = entity_update(entity=broken, data=product.data, expected_version=broken.version)
    now = timezone.now()
    object_publish(obj=fixed, go_live_at=now + timedelta(hours=1))
    # Content that stopped passing by go-live time (the brand's rules changed) is held back
    # once, with a record of why, instead of failing every minute.
    Revision.objects.filter(pk=fixed.latest_revision_id).update(
        content={**fixed.latest_revision.content, "data": no_currency}
    )
    assert publish_scheduled(now=now + timedelta(hours=2))["published"] == 0
    fixed.refresh_from_db()
    assert (fixed.status, fixed.live_revision_id) == (Status.DRAFT, None)
    assert fixed.latest_revision.go_live_at is None
    entry = AuditEntry.objects.filter(action="publish_blocked").get()
    assert entry.data["errors"][0]["pointer"] == "/offers/priceCurrency"
    assert publish_scheduled(now=now + timedelta(hours=3))["published"] == 0
    assert AuditEntry.objects.filter(action="publish_blocked").count() == 1


def json_copy(value):
    import json

    return json.loads(json.dumps(value))


def test_publish_scheduled_command(brand, product):
    object_publish(obj=product, go_live_at=timezone.now() + timedelta(seconds=1))
    Revision.objects.filter(pk=product.latest_revision_id).update(
        go_live_at=timezone.now() - timedelta(seconds=1)
    )
    from io import StringIO

    out = StringIO()
    call_command("publish_scheduled", stdout=out)
    assert out.getvalue().strip() == "Published 1, expired 0."


def test_archive_blocks_edits_and_publishing(product):
    object_unpublish(obj=product, archive=True)
    product.refresh_from_db()
    assert product.status == Status.ARCHIVED
    with pytest.raises(WorkflowError, match="archived; restore it before editing"):
        entity_update(entity=product, data={}, expected_version=product.version)
    with pytest.raises(WorkflowError, match="archived; restore it before publishing"):
        object_publish(obj=product)


def test_deleting_a_referenced_entity_is_refused_naming_referrers(brand, organization, product):
    fact_create(
        brand=brand,
        key="founded",
        about=organization,
        statement={"en": "Founded in 1998."},
        value="1998",
        source_url="https://tea.example/about",
        source_title={"en": "About us"},
        as_of="2025-01-01",
    )
    with pytest.raises(ReferencedError) as error:
        entity_delete(entity=organization)
    assert str(error.value) == (
        "Acme Tea (Organization) cannot be deleted because it is referenced by: "
        "Longjing (Product) (property brand); fact 'founded'. Remove those references first."
    )
    assert Entity.objects.filter(pk=organization.pk).exists()
    entity_delete(entity=product)
    assert not Entity.objects.filter(pk=product.pk).exists()
    assert not Revision.objects.filter(object_id=product.pk, content_type__model="entity").exists()


def test_revert_makes_a_new_revision(product):
    first = product.latest_revision
    updated = entity_update(entity=product, data={"name": text("Changed")}, expected_version=1)
    reverted = entity_revert(entity=updated, revision=first, expected_version=2)
    assert reverted.version == 3
    assert reverted.data == first.content["data"]
    assert reverted.latest_revision.message == "Reverted to revision 1"


def test_links_follow_the_working_copy_and_the_live_revision(organization, product):
    assert list(organization.incoming_links.values_list("property", flat=True)) == ["brand"]
    object_publish(obj=product)
    data = {k: v for k, v in product.data.items() if k != "brand"}
    entity_update(entity=product, data=data, expected_version=1)
    # Still live with the brand reference: the link stays until the draft goes live.
    assert organization.incoming_links.count() == 1
    object_publish(obj=product)
    assert organization.incoming_links.count() == 0


def test_faq_and_fact_validation_names_fields(brand, organization):
    with pytest.raises(InvalidContent) as error:
        faq_create(brand=brand, key="q1", question={"fr": "Quoi?"}, answer={"en": ""}, order=1)
    assert error.value.messages == [
        "/question/fr: 'fr' is not one of the brand's languages (en, zh-Hans)",
        "/question/en: required in the default language",
        "/answer/en: required in the default language",
    ]
    with pytest.raises(InvalidContent) as error:
        fact_create(
            brand=brand,
            key="bad-fact",
            about=organization,
            statement={"en": "Something."},
            source_url="not a url",
            source_title={"en": "x"},
            as_of="2025-01-02",
            valid_until="2025-01-01",
        )
    assert error.value.messages == [
        "/source_url: Enter a valid URL.",
        "/valid_until: must not be before as_of",
    ]
