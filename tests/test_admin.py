"""The admin: per-brand isolation, vocabulary-driven forms, saves through the services."""

import pytest
from django.contrib.auth import get_user_model

from kb.models import BrandMembership, Entity, Fact, Revision
from kb.services.brands import membership_grant
from kb.services.entities import entity_create, entity_update
from kb.services.workflow import revisions_of
from tests.admin_forms import change_form_data as form_data

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
            "image": [{"@id": "https://tea.example/img/longjing.jpg"}],
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


def test_schedule_action_sets_go_live_and_expiry(client, brand, editor, product):
    from datetime import UTC, datetime

    from kb.models import Status

    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.REVIEWER)
    client.force_login(editor)
    chosen = {"action": "schedule", "_selected_action": [product.pk]}
    asked = client.post("/admin/kb/entity/", chosen)
    assert asked.status_code == 200
    assert "Schedule the latest revision of 1 item to go live" in asked.content.decode()
    empty = client.post("/admin/kb/entity/", {**chosen, "apply": "1"})
    assert "Give a go-live time, an expiry time, or both." in empty.content.decode()
    done = client.post(
        "/admin/kb/entity/",
        {**chosen, "apply": "1", "go_live_at": "2031-05-01T09:30", "expire_at": "2031-06-01T00:00"},
        follow=True,
    )
    assert "Scheduled 1 item(s)." in done.content.decode()
    product.refresh_from_db()
    assert product.status == Status.SCHEDULED and product.live_revision_id is None
    revision = product.latest_revision
    assert revision.go_live_at == datetime(2031, 5, 1, 9, 30, tzinfo=UTC)
    assert revision.expire_at == datetime(2031, 6, 1, tzinfo=UTC)
    backwards = client.post(
        "/admin/kb/entity/",
        {**chosen, "apply": "1", "go_live_at": "2031-05-01T09:30", "expire_at": "2031-04-01T00:00"},
        follow=True,
    )
    assert "The expiry must be after the go-live time." in backwards.content.decode()


def test_publishing_is_blocked_by_errors_and_says_which(client, brand, editor, product):
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.REVIEWER)
    product = entity_update(  # as an import stores it: a save by an editor refuses it
        entity=product,
        data={**product.data, "gtin13": [{"@value": "6970123000011"}]},
        expected_version=product.version,
        validated=True,
    )
    client.force_login(editor)
    page = client.get(f"/admin/kb/entity/{product.pk}/change/").content.decode()
    assert "1 errors, " in page and "blocks publishing" in page
    response = client.post(
        "/admin/kb/entity/", {"action": "publish", "_selected_action": [product.pk]}, follow=True
    )
    assert (
        "Longjing (Product) was not published: fix these errors first — /gtin13: "
        "&#x27;6970123000011&#x27; is not a valid GTIN: the check digit (or the length) is wrong."
    ) in response.content.decode()
    product.refresh_from_db()
    assert product.live_revision_id is None


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
    assert form.fields["p__sku"].label == "SKU"
    assert form.fields["p__description__zh-Hans"].help_text == ""  # nothing to translate yet
    entity_update(
        entity=product,
        data={**product.data, "description": text("Pan-fired.")},
        expected_version=product.version,
    )
    form = client.get(f"/admin/kb/entity/{product.pk}/change/").context["adminform"].form
    assert form.fields["p__description__zh-Hans"].help_text == "Missing translation"
    # A reference is a search-as-you-type picker that shows only the chosen entity.
    picker = form["p__brand"]
    assert picker.value() == "https://tea.example/#organization"
    assert str(picker).count("<option") == 2  # the empty choice and the chosen one
    assert 'class="admin-autocomplete"' in str(picker)
    assert "/admin/kb/entity/references/?brand=" in str(picker)
    # Offers are inputs of their own (a row per offer and one to add an offer), no longer
    # JSON-LD among the other properties.
    assert form["offer__0__priceCurrency"].value() == "USD"
    assert "offer__1__price" in form.fields and "offer__2__price" not in form.fields
    assert "offers" not in (form["more_properties"].value() or "")
    # The properties in use come first; the rest of the type's properties are folded away.
    fieldsets = {name: opts["fields"] for name, opts in page.context["adminform"].fieldsets}
    assert fieldsets["Most used"][:5] == [
        "p__name__en", "p__name__zh-Hans", "p__image", "p__brand", "p__sku"
    ]  # fmt: skip
    assert "p__gtin13" in fieldsets["Most used"]  # what Google matches products by
    # The other properties sit behind a search box, with short help texts.
    assert "p__asin" in fieldsets["More properties"]
    assert form.fields["p__asin"].help_text.count(". ") == 0
    html = page.content.decode()
    assert 'class="module aligned property-search"' in html and "kb/property_search.js" in html


def test_reference_picker_searches_the_brands_entities_of_fitting_types(
    client, brand, editor, product, foreign_product
):
    for index in range(25):
        entity_create(
            brand=brand,
            types=["Organization" if index % 2 else "Person"],
            data={"name": text(f"Maker {index:02d}")},
            iri=f"https://tea.example/makers/{index}",
        )
    client.force_login(editor)
    url = f"/admin/kb/entity/references/?brand={brand.pk}&types=Organization,Brand"

    def search(query):
        return client.get(f"{url}&{query}").json()

    first = search("term=maker")
    assert [r["text"] for r in first["results"]][:3] == [
        "Maker 01 (Organization)", "Maker 03 (Organization)", "Maker 05 (Organization)"
    ]  # fmt: skip
    assert len(first["results"]) == 12 and first["pagination"] == {"more": False}
    assert search("term=tea.example/%23org")["results"] == [
        {"id": "https://tea.example/#organization", "text": "Acme Tea (Organization)"}
    ]
    everything = search("types=")  # no type filter: every entity, 20 a page
    all_types = client.get(f"/admin/kb/entity/references/?brand={brand.pk}").json()
    assert len(all_types["results"]) == 20 and all_types["pagination"] == {"more": True}
    assert everything["pagination"] == {"more": True}
    # Another brand's entities are out of reach.
    other = client.get(f"/admin/kb/entity/references/?brand={foreign_product.brand_id}")
    assert other.status_code == 403
    # Saving a picked entity stores the reference; an entity of another type is refused.
    page = client.get(f"/admin/kb/entity/{product.pk}/change/")
    data = form_data(page)
    data["p__brand"] = "https://tea.example/makers/3"
    assert client.post(f"/admin/kb/entity/{product.pk}/change/", data).status_code == 302
    product.refresh_from_db()
    assert product.data["brand"] == [{"@id": "https://tea.example/makers/3"}]
    data = form_data(client.get(f"/admin/kb/entity/{product.pk}/change/"))
    data["p__brand"] = "https://tea.example/makers/2"  # a Person
    refused = client.post(f"/admin/kb/entity/{product.pk}/change/", data)
    assert refused.context["adminform"].form.errors["p__brand"] == [
        "https://tea.example/makers/2 is not an entity of this brand that fits here."
    ]


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
    listing = client.get("/admin/kb/entity/").content.decode()
    assert 'value="submit_for_review"' in listing
    assert 'value="publish"' not in listing  # not offered to an editor
    response = client.post(
        "/admin/kb/entity/",
        {"action": "publish", "_selected_action": [product.pk]},
        follow=True,
    )
    assert "No action selected." in response.content.decode()
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


def test_an_editor_changes_a_price_in_its_input_and_a_wrong_one_is_refused_there(
    client, editor, product
):
    """Offers are inputs: a price that is not a number is refused at its input, in plain
    words, and nothing is saved; a right one saves with the offer's other values kept."""
    client.force_login(editor)
    url = f"/admin/kb/entity/{product.pk}/change/"
    data = form_data(client.get(url))
    refused = client.post(url, {**data, "offer__0__price": "abc"})
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert errors == {
        "offer__0__price": ["Enter the price as a number, with a dot before the cents: e.g. 12.50."]
    }
    assert 'class="errorlist' in refused.content.decode()
    product.refresh_from_db()
    assert product.version == 1
    # A currency that is not ISO 4217 cannot be chosen.
    wrong = client.post(url, {**data, "offer__0__priceCurrency": "EURO"})
    assert list(wrong.context["adminform"].form.errors) == ["offer__0__priceCurrency"]
    # A new price, a new currency and a second offer.
    saved = client.post(
        url,
        {
            **data,
            "offer__0__price": "13.00",
            "offer__0__priceCurrency": "EUR",
            "offer__1__price": "98",
            "offer__1__priceCurrency": "CNY",
            "offer__1__availability": "https://schema.org/InStock",
            "offer__1__priceValidUntil": "2027-06-30",
        },
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.data["offers"] == [
        {"@type": ["Offer"], "price": [{"@value": "13.00"}], "priceCurrency": [{"@value": "EUR"}]},
        {
            "@type": ["Offer"],
            "price": [{"@value": "98"}],
            "priceCurrency": [{"@value": "CNY"}],
            "availability": [{"@value": "https://schema.org/InStock"}],
            "priceValidUntil": [{"@type": "Date", "@value": "2027-06-30"}],
        },
    ]
    # Saving the form again unchanged makes no new revision, and keeps the stored order.
    before = (product.version, list(product.data))
    again = client.post(url, form_data(client.get(url)))
    assert again.status_code == 302
    product.refresh_from_db()
    assert (product.version, list(product.data)) == before
    revisions = Revision.objects.filter(object_id=product.pk, content_type__model="entity")
    assert revisions.count() == product.version
    # Removing an offer.
    data = form_data(client.get(url))
    client.post(url, {**data, "offer__1__remove": "on"})
    product.refresh_from_db()
    assert [o["priceCurrency"] for o in product.data["offers"]] == [[{"@value": "EUR"}]]


def test_an_entity_page_lists_its_facts_and_faqs_and_adds_one_about_it(
    client, brand, editor, product
):
    from datetime import date

    from kb.services.statements import fact_create

    fact = fact_create(
        brand=brand,
        key="harvest",
        about=product,
        statement={"en": "Longjing is picked in April."},
        source_url="https://tea.example/report",
        as_of=date(2026, 4, 1),
    )
    client.force_login(editor)
    page = client.get(f"/admin/kb/entity/{product.pk}/change/").content.decode()
    assert (
        f'<a href="/admin/kb/fact/{fact.pk}/change/">Fact: Longjing is picked in April.</a>' in page
    )
    add = f"/admin/kb/fact/add/?about={product.pk}&amp;brand={brand.pk}"
    assert f'<a href="{add}">Add a fact about it</a>' in page
    form = client.get(add.replace("&amp;", "&")).context["adminform"].form
    assert form["about"].value() == str(product.pk) and form["brand"].value() == str(brand.pk)


def test_an_editor_uploads_an_image_with_its_alt_text(client, brand, editor, product, tmp_path):
    from io import BytesIO

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from publishing.models import MediaAsset

    buffer = BytesIO()
    Image.new("RGB", (40, 30), (120, 160, 90)).save(buffer, "PNG")
    client.force_login(editor)
    url = f"/admin/kb/entity/{product.pk}/change/"
    data = form_data(client.get(url))
    # Not an image: refused at the input, naming the file.
    fake = SimpleUploadedFile("leaf.png", b"not an image", content_type="image/png")
    refused = client.post(url, {**data, "upload_image": fake})
    assert list(refused.context["adminform"].form.errors) == ["upload_image"]
    assert "leaf.png" in refused.context["adminform"].form.errors["upload_image"][0]
    image = SimpleUploadedFile("leaf.png", buffer.getvalue(), content_type="image/png")
    saved = client.post(
        url,
        {
            **data,
            "upload_image": image,
            "upload_alt__en": "A tea leaf",
            "upload_alt__zh-Hans": "茶叶",
        },
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    asset = MediaAsset.objects.get(brand=brand)
    assert asset.alt == {"en": "A tea leaf", "zh-Hans": "茶叶"}
    product.refresh_from_db()
    assert product.data["image"] == [
        {"@id": "https://tea.example/img/longjing.jpg"},
        {"@id": asset.public_url},
    ]
    assert asset.public_url.startswith("https://tea.example/media/")


def test_other_properties_are_shown_as_people_read_them_beside_their_json(client, editor, product):
    data = {
        **product.data,
        "additionalProperty": [
            {
                "@type": ["PropertyValue"],
                "propertyID": [{"@value": "harvest"}],
                "value": [{"@value": 2026}],
            }
        ],
    }
    entity_update(entity=product, data=data, expected_version=product.version)
    client.force_login(editor)
    page = client.get(f"/admin/kb/entity/{product.pk}/change/").content.decode()
    assert "&quot;additionalProperty&quot;" in page  # the JSON-LD, to edit
    assert (
        '<dl class="structured-view"><dt>Additional property › Type</dt><dd>PropertyValue</dd>'
        "<dt>Additional property › Property id</dt><dd>harvest</dd>"
        "<dt>Additional property › Value</dt><dd>2026</dd></dl>"
    ) in page


def test_facts_and_faqs_are_edited_on_their_entitys_page(client, brand, editor, product):
    from datetime import date

    from kb.models import FAQ, AuditEntry
    from kb.services.statements import fact_create

    fact = fact_create(
        brand=brand,
        key="harvest",
        about=product,
        statement={"en": "Longjing is picked in April."},
        source_url="https://tea.example/report",
        as_of=date(2026, 4, 1),
    )
    client.force_login(editor)
    url = f"/admin/kb/entity/{product.pk}/change/"
    page = client.get(url)
    facts, faqs = page.context["inline_admin_formsets"]
    assert [f.instance for f in facts.formset.forms] == [fact] and not faqs.formset.forms
    data = form_data(page)
    # Saving the page unchanged makes no revision of the entity or of its fact.
    assert client.post(url, data).status_code == 302
    fact.refresh_from_db()
    product.refresh_from_db()
    assert (fact.version, product.version) == (1, 1)
    # The fact's Chinese statement, typed on the entity's page, and a question added there.
    prefix, faq_prefix = facts.formset.prefix, faqs.formset.prefix
    data |= {
        f"{prefix}-0-p__statement__zh-Hans": "龙井四月采摘。",
        f"{faq_prefix}-TOTAL_FORMS": "1",
        f"{faq_prefix}-0-key": "brewing",
        f"{faq_prefix}-0-p__question__en": "How hot should the water be?",
        f"{faq_prefix}-0-p__answer__en": "About 80 °C.",
        f"{faq_prefix}-0-order": "0",
        f"{faq_prefix}-0-version": "0",
    }
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.context["inline_admin_formsets"][1].formset.errors
    fact.refresh_from_db()
    assert fact.statement == {"en": "Longjing is picked in April.", "zh-Hans": "龙井四月采摘。"}
    assert fact.version == 2 and revisions_of(fact).count() == 2
    faq = FAQ.objects.get(brand=brand, key="brewing")
    assert (faq.about, faq.question, faq.version) == (
        product, {"en": "How hot should the water be?"}, 1
    )  # fmt: skip
    assert set(AuditEntry.objects.filter(user=editor).values_list("action", flat=True)) == {
        "create", "edit"
    }  # fmt: skip
    product.refresh_from_db()
    assert product.version == 1  # the entity itself did not change
    # A mistake shows at its input on the entity's page, and nothing is saved.
    data = form_data(client.get(url))
    data |= {f"{prefix}-0-p__statement__en": ""}
    refused = client.post(url, data)
    assert refused.status_code == 200
    errors = refused.context["inline_admin_formsets"][0].formset.forms[0].errors
    assert errors == {"p__statement__en": ["required in the default language"]}
    fact.refresh_from_db()
    assert fact.version == 2
    # A new question whose key the brand has already: refused at the key, not a server error.
    data = form_data(client.get(url))
    data |= {
        f"{faq_prefix}-TOTAL_FORMS": "2",
        f"{faq_prefix}-1-key": "brewing",
        f"{faq_prefix}-1-p__question__en": "Again?",
        f"{faq_prefix}-1-p__answer__en": "Again.",
        f"{faq_prefix}-1-order": "0",
        f"{faq_prefix}-1-version": "0",
    }
    refused = client.post(url, data)
    assert refused.status_code == 200
    errors = refused.context["inline_admin_formsets"][1].formset.forms[1].errors
    assert errors == {"key": ["The brand already has a FAQ with this key."]}
    assert FAQ.objects.filter(brand=brand).count() == 1


def test_weight_and_country_of_origin_are_inputs(client, brand, editor, product):
    entity_update(
        entity=product,
        data={
            **product.data,
            "weight": [
                {
                    "@type": ["QuantitativeValue"],
                    "unitCode": [{"@value": "GRM"}],
                    "value": [{"@value": 50}],
                }
            ],
            "countryOfOrigin": [{"@type": ["Country"], "name": [{"@value": "CN"}]}],
        },
        expected_version=product.version,
    )
    client.force_login(editor)
    url = f"/admin/kb/entity/{product.pk}/change/"
    page = client.get(url)
    form = page.context["adminform"].form
    assert "weight" not in form["more_properties"].value()
    assert form["p__countryOfOrigin"].value() == "CN"
    html = page.content.decode()
    assert '<input type="text" name="p__weight_0" value="50"' in html
    assert '<option value="GRM" selected>g</option>' in html
    # Unchanged: no new revision.
    data = form_data(page)
    data.pop("p__weight")
    data |= {"p__weight_0": "50", "p__weight_1": "GRM"}
    assert client.post(url, data).status_code == 302
    product.refresh_from_db()
    assert product.version == 2
    # A new weight and country, typed and picked.
    saved = client.post(url, data | {"p__weight_0": "2.5", "p__weight_1": "LBR",
                                     "p__countryOfOrigin": "JP"})  # fmt: skip
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.data["weight"] == [
        {"@type": ["QuantitativeValue"], "unitCode": [{"@value": "LBR"}],
         "value": [{"@value": 2.5}]}
    ]  # fmt: skip
    assert product.data["countryOfOrigin"] == [{"@type": ["Country"], "name": [{"@value": "JP"}]}]
    # A weight that is no number, or without its unit, is refused at the input.
    for weight, unit, message in (
        ("abc", "GRM", "Enter a number, with a dot before any decimals: e.g. 50 or 2.5."),
        ("50", "", "Pick the unit."),
    ):
        refused = client.post(url, data | {"p__weight_0": weight, "p__weight_1": unit})
        assert refused.context["adminform"].form.errors == {"p__weight": [message]}
    # Cleared, it is gone.
    data = form_data(client.get(url))
    data.pop("p__weight")
    cleared = client.post(
        url, data | {"p__weight_0": "", "p__weight_1": "", "p__countryOfOrigin": ""}
    )
    assert cleared.status_code == 302, cleared.context["adminform"].form.errors
    product.refresh_from_db()
    assert "weight" not in product.data and "countryOfOrigin" not in product.data
