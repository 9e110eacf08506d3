"""The admin: per-brand isolation, vocabulary-driven forms, saves through the services."""

import pytest
from django.contrib.auth import get_user_model

from kb.models import BrandMembership, Entity, Fact
from kb.services.brands import membership_grant
from kb.services.entities import entity_create, entity_update
from kb.services.workflow import revisions_of

pytestmark = pytest.mark.django_db


def text(value, language="en"):
    return [{"@value": value, "@language": language}]


@pytest.fixture
def editor(brand):
    user = get_user_model().objects.create_user("ed", password="pw-ed-123", is_staff=True)
    membership_grant(brand=brand, user=user, role=BrandMembership.Role.EDITOR)
    return user


@pytest.fixture
def organization(brand):
    return entity_create(
        brand=brand,
        types=["Organization"],
        data={"name": text("Acme Tea")},
        iri="https://tea.example/#organization",
    )


@pytest.fixture
def product(brand, organization):
    return entity_create(
        brand=brand,
        types=["Product"],
        data={
            "name": text("Longjing") + text("龙井", "zh-Hans"),
            "sku": [{"@value": "LJ-100"}],
            "brand": [{"@id": organization.iri}],
            "offers": [
                {
                    "@type": ["Offer"],
                    "price": [{"@value": "12.50"}],
                    "priceCurrency": [{"@value": "USD"}],
                }
            ],
        },
        iri="https://tea.example/products/longjing/#product",
    )


@pytest.fixture
def foreign_product(other_brand):
    return entity_create(
        brand=other_brand,
        types=["Product"],
        data={"name": text("Secret product of another brand")},
        iri="https://other.example/p/1",
    )


def form_data(response):
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None:
            continue
        data[name] = value.pk if hasattr(value, "pk") else value
    return data


def test_editor_sees_only_their_brand(client, editor, product, foreign_product):
    client.force_login(editor)
    listing = client.get("/admin/kb/entity/")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "Longjing" in body
    assert "Secret product of another brand" not in body
    other = client.get(f"/admin/kb/entity/{foreign_product.pk}/change/")
    assert (
        other.status_code == 302
    )  # Django admin: "doesn't exist" for objects outside the queryset
    assert "Secret product" not in client.get(other.url).content.decode()
    brands = client.get("/admin/kb/brand/").content.decode()
    assert "Acme Tea" in brands and "Other Brand" not in brands


def test_change_form_is_generated_from_the_vocabulary(client, editor, product):
    client.force_login(editor)
    page = client.get(f"/admin/kb/entity/{product.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert form.fields["p__name__en"].label == "Name [en]"
    assert form["p__name__zh-Hans"].value() == "龙井"
    assert form.fields["p__sku"].help_text.startswith(
        "The Stock Keeping Unit (SKU), i.e. a merchant-specific identifier"
    )
    assert form.fields["p__sku"].help_text.endswith("(Product)")
    assert form.fields["p__description__zh-Hans"].help_text == "Missing translation"
    # References pick among the brand's entities of a fitting type.
    assert list(form.fields["p__brand"].queryset.values_list("iri", flat=True)) == [
        "https://tea.example/#organization"
    ]
    # Nested offers stay editable as JSON-LD.
    assert '"priceCurrency"' in form["more_properties"].value()
    assert "Product properties" in page.content.decode()


def test_saving_in_the_admin_makes_a_revision(client, editor, product):
    client.force_login(editor)
    page = client.get(f"/admin/kb/entity/{product.pk}/change/")
    data = form_data(page)
    data["p__description__en"] = "A pan-fired green tea from Hangzhou."
    data["message"] = "Added a description"
    response = client.post(f"/admin/kb/entity/{product.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.version == 2
    assert product.data["description"] == text("A pan-fired green tea from Hangzhou.")
    # Untouched values keep their exact stored form.
    assert product.data["offers"][0]["price"] == [{"@value": "12.50"}]
    assert product.data["sku"] == [{"@value": "LJ-100"}]
    revision = revisions_of(product).first()
    assert (revision.number, revision.user, revision.message) == (2, editor, "Added a description")


def test_stale_admin_save_is_rejected(client, editor, product):
    client.force_login(editor)
    page = client.get(f"/admin/kb/entity/{product.pk}/change/")
    data = form_data(page)
    entity_update(
        entity=product, data={**product.data, "sku": [{"@value": "LJ-200"}]}, expected_version=1
    )
    data["p__sku"] = "LJ-300"
    response = client.post(f"/admin/kb/entity/{product.pk}/change/", data)
    assert response.status_code == 200
    assert (
        "after you opened it (you edited version 1, it is now version 2)"
        in response.content.decode()
    )
    product.refresh_from_db()
    assert product.data["sku"] == [{"@value": "LJ-200"}]


def test_invalid_value_is_shown_on_its_field(client, editor, product):
    client.force_login(editor)
    data = form_data(client.get(f"/admin/kb/entity/{product.pk}/change/"))
    data["more_properties"] = (
        '{"offers": [{"@type": ["Offer"], "price": [{"@value": "x"}], "priceValidUntil": [{"@value": "soon"}]}]}'
    )
    response = client.post(f"/admin/kb/entity/{product.pk}/change/", data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["more_properties"] == [
        "/data/offers/priceValidUntil: 'priceValidUntil' expects Date, got the text 'soon'"
    ]


def test_deleting_a_referenced_entity_in_the_admin_is_refused(
    client, editor, organization, product
):
    client.force_login(editor)
    response = client.post(
        f"/admin/kb/entity/{organization.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert "cannot be deleted because it is referenced by: Longjing (Product) (property brand)" in (
        response.content.decode()
    )
    assert Entity.objects.filter(pk=organization.pk).exists()


def test_publish_action_requires_the_reviewer_role(client, brand, editor, product):
    client.force_login(editor)
    response = client.post(
        "/admin/kb/entity/",
        {"action": "publish", "_selected_action": [product.pk]},
        follow=True,
    )
    assert "ed may not publish content of brand &#x27;acme-tea&#x27;." in response.content.decode()
    product.refresh_from_db()
    assert not product.live
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.REVIEWER)
    client.post("/admin/kb/entity/", {"action": "publish", "_selected_action": [product.pk]})
    product.refresh_from_db()
    assert product.live


def test_fact_admin_has_one_input_per_language(client, editor, organization, brand):
    client.force_login(editor)
    page = client.get("/admin/kb/fact/add/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert {"p__statement__en", "p__statement__zh-Hans"} <= set(form.fields)
    response = client.post(
        "/admin/kb/fact/add/",
        {
            "brand": brand.pk,
            "key": "founded",
            "about": organization.pk,
            "p__statement__en": "Founded in 1998 in Hangzhou.",
            "p__statement__zh-Hans": "1998年创立于杭州。",
            "value": "1998",
            "unit": "",
            "source_url": "https://tea.example/about",
            "p__source_title__en": "About us",
            "as_of": "2025-06-30",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    fact = Fact.objects.get(key="founded")
    assert fact.statement == {"en": "Founded in 1998 in Hangzhou.", "zh-Hans": "1998年创立于杭州。"}
    assert fact.latest_revision.user == editor


def test_login_page_and_anonymous_admin_requests_do_not_fail(client, brand):
    assert client.get("/admin/login/").status_code == 200
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.get("/admin/publishing/release/").status_code == 302
