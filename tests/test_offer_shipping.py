"""Shipping and returns of an offer as admin inputs: an editor fills them in the change form
and they are stored as the one shippingDetails and hasMerchantReturnPolicy node Google's
merchant listings read; wrong values are refused at their input; an untouched offer stays
exactly as stored, and one whose shipping does not fit the inputs stays JSON-LD."""

import copy
import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from kb.jsonld import compact_node
from kb.models import BrandMembership, Entity, Revision
from kb.offer_fields import SHIPPING_INPUTS, editable, input_name
from kb.quality import entity_findings
from kb.services.brands import membership_grant
from kb.services.entities import entity_create, entity_update, entity_validate
from tests.admin_forms import change_form_data as form_data

pytestmark = pytest.mark.django_db

SELLER = "https://tea.example/#organization"
SHIPPING_FINDING = "Add shipping details to the offers."
RETURNS_FINDING = "Add a merchant return policy."

# An offer with shipping and returns as an import of Google's example stores it (numbers as
# numbers, merchantReturnDays typed as a Date by schema.org's context).
IMPORTED_SHIPPING = {
    "@type": ["OfferShippingDetails"],
    "deliveryTime": [
        {
            "@type": ["ShippingDeliveryTime"],
            "handlingTime": [
                {
                    "@type": ["QuantitativeValue"],
                    "maxValue": [{"@value": 1}],
                    "minValue": [{"@value": 0}],
                    "unitCode": [{"@value": "DAY"}],
                }
            ],
            "transitTime": [
                {
                    "@type": ["QuantitativeValue"],
                    "maxValue": [{"@value": 5}],
                    "minValue": [{"@value": 1}],
                    "unitCode": [{"@value": "DAY"}],
                }
            ],
        }
    ],
    "shippingDestination": [{"@type": ["DefinedRegion"], "addressCountry": [{"@value": "CH"}]}],
    "shippingRate": [
        {"@type": ["MonetaryAmount"], "currency": [{"@value": "CHF"}], "value": [{"@value": 3.49}]}
    ],
}
IMPORTED_RETURNS = {
    "@type": ["MerchantReturnPolicy"],
    "applicableCountry": [{"@value": "CH"}],
    "merchantReturnDays": [{"@type": "Date", "@value": 60}],
    "returnFees": [{"@value": "https://schema.org/FreeReturn"}],
    "returnMethod": [{"@value": "https://schema.org/ReturnByMail"}],
    "returnPolicyCategory": [{"@value": "https://schema.org/MerchantReturnFiniteReturnWindow"}],
}
IMPORTED_OFFER = {
    "@type": ["Offer"],
    "availability": [{"@value": "https://schema.org/InStock"}],
    "hasMerchantReturnPolicy": [IMPORTED_RETURNS],
    "itemCondition": [{"@value": "https://schema.org/NewCondition"}],
    "price": [{"@value": 39.99}],
    "priceCurrency": [{"@value": "CHF"}],
    "priceValidUntil": [{"@type": "Date", "@value": "2027-11-20"}],
    "shippingDetails": [IMPORTED_SHIPPING],
    "url": [{"@id": "https://tea.example/trinket_offer"}],
}


def text(value, language="en"):
    return [{"@value": value, "@language": language}]


@pytest.fixture
def editor(brand):
    user = get_user_model().objects.create_user("ed", password="pw-ed-123", is_staff=True)
    membership_grant(brand=brand, user=user, role=BrandMembership.Role.EDITOR)
    return user


def make_product(brand, offers, **kwargs):
    return entity_create(
        brand=brand,
        types=["Product"],
        data={
            "name": text("Longjing"),
            "image": [{"@id": "https://tea.example/img/longjing.jpg"}],
            "offers": offers,
        },
        iri="https://tea.example/products/longjing/#product",
        **kwargs,
    )


@pytest.fixture
def product(brand):
    return make_product(
        brand,
        [
            {
                "@type": ["Offer"],
                "price": [{"@value": "12.50"}],
                "priceCurrency": [{"@value": "USD"}],
                "seller": [{"@id": SELLER}],
            }
        ],
    )


@pytest.fixture
def imported(brand):
    return make_product(brand, [copy.deepcopy(IMPORTED_OFFER)])


def change_url(entity):
    return f"/admin/kb/entity/{entity.pk}/change/"


def findings(entity):
    return [
        f.message for f in entity_findings(brand=entity.brand, types=entity.types, data=entity.data)
    ]


def revisions(entity):
    return Revision.objects.filter(object_id=entity.pk, content_type__model="entity").count()


def post(client, entity, **changes):
    url = change_url(entity)
    return client.post(url, {**form_data(client.get(url)), **changes})


def errors_of(response):
    assert response.status_code == 200, "expected the form back with errors"
    return response.context["adminform"].form.errors


FILLED = {
    "offer__0__shippingRate": "4.95",
    "offer__0__shippingCountries": "us, Canada, GBR",
    "offer__0__handlingMin": "0",
    "offer__0__handlingMax": "1",
    "offer__0__transitMin": "2",
    "offer__0__transitMax": "5",
    "offer__0__returnPolicyCategory": "https://schema.org/MerchantReturnFiniteReturnWindow",
    "offer__0__merchantReturnDays": "30",
    "offer__0__returnMethod": "https://schema.org/ReturnByMail",
    "offer__0__returnFees": "https://schema.org/FreeReturn",
    "offer__0__returnCountries": "US, CA",
}
FILLED_PROPS = {name.split("__")[2] for name in FILLED}


def days(low, high):
    return [
        {
            "@type": ["QuantitativeValue"],
            "minValue": [{"@value": low}],
            "maxValue": [{"@value": high}],
            "unitCode": [{"@value": "DAY"}],
        }
    ]


def test_an_editor_fills_in_shipping_and_returns(client, brand, editor, product):
    assert SHIPPING_FINDING in findings(product) and RETURNS_FINDING in findings(product)
    client.force_login(editor)
    saved = post(client, product, **FILLED)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.version == 2 and revisions(product) == 2
    assert product.data["offers"] == [
        {
            # The offer's own values and its seller are kept as they were.
            "@type": ["Offer"],
            "price": [{"@value": "12.50"}],
            "priceCurrency": [{"@value": "USD"}],
            "seller": [{"@id": SELLER}],
            "shippingDetails": [
                {
                    "@type": ["OfferShippingDetails"],
                    "shippingRate": [
                        {
                            "@type": ["MonetaryAmount"],
                            "value": [{"@value": "4.95"}],
                            "currency": [{"@value": "USD"}],
                        }
                    ],
                    "shippingDestination": [
                        {
                            "@type": ["DefinedRegion"],
                            "addressCountry": [
                                {"@value": "US"},
                                {"@value": "CA"},
                                {"@value": "GB"},
                            ],
                        }
                    ],  # fmt: skip
                    "deliveryTime": [
                        {
                            "@type": ["ShippingDeliveryTime"],
                            "handlingTime": days(0, 1),
                            "transitTime": days(2, 5),
                        }
                    ],
                }
            ],
            "hasMerchantReturnPolicy": [
                {
                    "@type": ["MerchantReturnPolicy"],
                    "returnPolicyCategory": [
                        {"@value": "https://schema.org/MerchantReturnFiniteReturnWindow"}
                    ],
                    "merchantReturnDays": [{"@type": "Date", "@value": 30}],
                    "returnMethod": [{"@value": "https://schema.org/ReturnByMail"}],
                    "returnFees": [{"@value": "https://schema.org/FreeReturn"}],
                    "applicableCountry": [{"@value": "US"}, {"@value": "CA"}],
                }
            ],
        }
    ]
    # schema.org's validation takes it, and the merchant listing findings are gone.
    entity_validate(brand=brand, types=product.types, data=product.data, iri=product.iri)
    assert SHIPPING_FINDING not in findings(product)
    assert RETURNS_FINDING not in findings(product)
    # Published as Google's examples write it.
    published = compact_node(product.types, product.data)["offers"]
    assert published["hasMerchantReturnPolicy"]["merchantReturnDays"] == 30
    assert published["hasMerchantReturnPolicy"]["returnFees"] == "https://schema.org/FreeReturn"
    assert published["shippingDetails"]["shippingRate"] == {
        "@type": "MonetaryAmount", "value": "4.95", "currency": "USD"
    }  # fmt: skip
    # The form shows what was saved; saving it unchanged makes no new revision.
    form = client.get(change_url(product)).context["adminform"].form
    assert form["offer__0__shippingCountries"].value() == "US, CA, GB"
    assert form["offer__0__merchantReturnDays"].value() == 30
    again = post(client, product)
    assert again.status_code == 302
    product.refresh_from_db()
    assert product.version == 2 and revisions(product) == 2
    # Emptying every shipping input takes the shipping details away, and only them.
    emptied = post(client, product, **{input_name(0, prop): "" for prop in SHIPPING_INPUTS})
    assert emptied.status_code == 302
    product.refresh_from_db()
    assert "shippingDetails" not in product.data["offers"][0]
    assert product.data["offers"][0]["hasMerchantReturnPolicy"][0]["applicableCountry"] == [
        {"@value": "US"}, {"@value": "CA"}
    ]  # fmt: skip


def test_a_new_offer_gets_shipping_and_returns(client, brand, editor, product):
    client.force_login(editor)
    saved = post(
        client,
        product,
        **{
            "offer__1__price": "98",
            "offer__1__priceCurrency": "CNY",
            "offer__1__shippingRate": "0",
            "offer__1__shippingCountries": "CN",
            "offer__1__returnPolicyCategory": "https://schema.org/MerchantReturnNotPermitted",
        },
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    product.refresh_from_db()
    new = product.data["offers"][1]
    assert new["shippingDetails"] == [
        {
            "@type": ["OfferShippingDetails"],
            "shippingRate": [
                {
                    "@type": ["MonetaryAmount"],
                    "value": [{"@value": "0"}],
                    "currency": [{"@value": "CNY"}],
                }
            ],
            "shippingDestination": [
                {"@type": ["DefinedRegion"], "addressCountry": [{"@value": "CN"}]}
            ],
        }
    ]
    assert new["hasMerchantReturnPolicy"] == [
        {
            "@type": ["MerchantReturnPolicy"],
            "returnPolicyCategory": [{"@value": "https://schema.org/MerchantReturnNotPermitted"}],
        }
    ]
    entity_validate(brand=brand, types=product.types, data=product.data, iri=product.iri)


def test_stored_shipping_and_returns_show_in_the_inputs_and_stay_as_stored(
    client, brand, editor, imported
):
    client.force_login(editor)
    imported.refresh_from_db()  # as the database keeps it (PostgreSQL orders the keys)
    before = json.dumps(imported.data)
    stored_order = list(imported.data["offers"][0])
    page = client.get(change_url(imported))
    form = page.context["adminform"].form
    shown = {name: form[name].value() for name in form.fields if name.startswith("offer__0__")}
    assert {k: v for k, v in shown.items() if k.split("__")[2] in FILLED_PROPS} == {
        "offer__0__shippingRate": Decimal("3.49"),
        "offer__0__shippingCountries": "CH",
        "offer__0__handlingMin": 0,
        "offer__0__handlingMax": 1,
        "offer__0__transitMin": 1,
        "offer__0__transitMax": 5,
        "offer__0__returnPolicyCategory": "https://schema.org/MerchantReturnFiniteReturnWindow",
        "offer__0__merchantReturnDays": 60,
        "offer__0__returnMethod": "https://schema.org/ReturnByMail",
        "offer__0__returnFees": "https://schema.org/FreeReturn",
        "offer__0__returnCountries": "CH",
    }
    assert "offers" not in (form["more_properties"].value() or "")
    # The new inputs come after the offer's own, in its row of the Offers fieldset.
    fieldsets = {name: opts["fields"] for name, opts in page.context["adminform"].fieldsets}
    offers = [name for line in fieldsets["Offers"] for name in line]
    row = [name for name in offers if name.startswith("offer__0__")]
    assert row.index("offer__0__priceValidUntil") < row.index("offer__0__shippingRate")
    assert row[-6:] == [
        "offer__0__returnPolicyCategory", "offer__0__merchantReturnDays",
        "offer__0__returnMethod", "offer__0__returnFees", "offer__0__returnCountries",
        "offer__0__remove",
    ]  # fmt: skip
    html = page.content.decode()
    for label in ("Shipping cost", "Ships to (countries)", "Handling time, min days",
                  "Return within (days)", "Returns accepted in"):  # fmt: skip
        assert f"{label}:</label>" in html
    assert 'name="offer__1__shippingRate"' in html  # the new offer's row has them too
    # Saving the unchanged form: no new revision, the data byte for byte as it was.
    unchanged = post(client, imported)
    assert unchanged.status_code == 302
    imported.refresh_from_db()
    assert (imported.version, revisions(imported)) == (1, 1)
    assert json.dumps(imported.data) == before
    # A changed transit time rewrites the shipping details only: the return policy and the
    # offer's own values keep their stored form (the price stays the number 39.99).
    changed = post(client, imported, offer__0__transitMax="7")
    assert changed.status_code == 302, changed.context["adminform"].form.errors
    imported.refresh_from_db()
    offer = imported.data["offers"][0]
    assert {k: v for k, v in offer.items() if k != "shippingDetails"} == {
        k: v for k, v in IMPORTED_OFFER.items() if k != "shippingDetails"
    }
    assert list(offer) == stored_order
    assert offer["shippingDetails"] == [
        {
            "@type": ["OfferShippingDetails"],
            "shippingRate": [
                {
                    "@type": ["MonetaryAmount"],
                    "value": [{"@value": "3.49"}],
                    "currency": [{"@value": "CHF"}],
                }
            ],
            "shippingDestination": [
                {"@type": ["DefinedRegion"], "addressCountry": [{"@value": "CH"}]}
            ],
            "deliveryTime": [
                {
                    "@type": ["ShippingDeliveryTime"],
                    "handlingTime": days(0, 1),
                    "transitTime": days(1, 7),
                }
            ],
        }
    ]
    entity_validate(brand=brand, types=imported.types, data=imported.data, iri=imported.iri)
    # Another currency: the shipping cost is in it too.
    post(client, imported, offer__0__priceCurrency="EUR")
    imported.refresh_from_db()
    rate = imported.data["offers"][0]["shippingDetails"][0]["shippingRate"][0]
    assert rate["currency"] == [{"@value": "EUR"}]
    assert imported.data["offers"][0]["hasMerchantReturnPolicy"] == [IMPORTED_RETURNS]
    # A changed return input rewrites the return policy only.
    shipping = imported.data["offers"][0]["shippingDetails"]
    post(client, imported, offer__0__returnFees="https://schema.org/ReturnShippingFees")
    imported.refresh_from_db()
    assert imported.data["offers"][0]["shippingDetails"] == shipping
    assert imported.data["offers"][0]["hasMerchantReturnPolicy"] == [
        {
            "@type": ["MerchantReturnPolicy"],
            "returnPolicyCategory": [
                {"@value": "https://schema.org/MerchantReturnFiniteReturnWindow"}
            ],
            "merchantReturnDays": [{"@type": "Date", "@value": 60}],
            "returnMethod": [{"@value": "https://schema.org/ReturnByMail"}],
            "returnFees": [{"@value": "https://schema.org/ReturnShippingFees"}],
            "applicableCountry": [{"@value": "CH"}],
        }
    ]
    assert imported.version == 4 and revisions(imported) == 4


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"offer__0__priceCurrency": "", "offer__0__shippingRate": "4.95"},
            {
                "offer__0__shippingRate": [
                    "Choose the offer's currency: the shipping cost is in it."
                ]
            },
        ),
        (
            {
                "offer__0__returnPolicyCategory": (
                    "https://schema.org/MerchantReturnFiniteReturnWindow"
                )
            },
            {
                "offer__0__merchantReturnDays": [
                    "Give the number of days within which a return is accepted."
                ]
            },
        ),
        (
            {"offer__0__handlingMin": "3", "offer__0__handlingMax": "1"},
            {"offer__0__handlingMax": ["Less than the minimum (3 days)."]},
        ),
        (
            {"offer__0__transitMin": "5", "offer__0__transitMax": "2"},
            {"offer__0__transitMax": ["Less than the minimum (5 days)."]},
        ),
        (
            {"offer__0__shippingCountries": "US, XX, UK"},
            {
                "offer__0__shippingCountries": [
                    "Not a country code: XX, UK. Give ISO 3166-1 codes, separated by commas: "
                    "e.g. US, GB, DE."
                ]
            },
        ),
        (
            {"offer__0__returnCountries": "Narnia"},
            {
                "offer__0__returnCountries": [
                    "Not a country code: Narnia. Give ISO 3166-1 codes, separated by commas: "
                    "e.g. US, GB, DE."
                ]
            },
        ),
        (
            {"offer__0__returnMethod": "https://schema.org/ReturnByMail"},
            {
                "offer__0__returnPolicyCategory": [
                    "Choose whether returns are accepted (and for how long)."
                ]
            },
        ),
        (
            {"offer__0__handlingMin": "-1"},
            {"offer__0__handlingMin": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            {"offer__0__shippingRate": "4,95"},
            {
                "offer__0__shippingRate": [
                    "Enter the cost as a number, with a dot before the cents: 4.95."
                ]
            },
        ),
    ],
)
def test_wrong_shipping_and_returns_are_refused_at_their_input(
    client, editor, product, changes, errors
):
    client.force_login(editor)
    response = post(client, product, **changes)
    assert errors_of(response) == errors
    page = response.content.decode()
    name = next(iter(errors))
    # Shown at the input: its box on a line of several, its row on a line of its own.
    assert f"fieldBox field-{name} errors" in page or f"form-row errors field-{name}" in page
    product.refresh_from_db()
    assert product.version == 1


def test_a_validation_problem_inside_the_return_policy_is_shown_at_its_input(
    client, brand, editor, imported
):
    """A stored value that is not valid (kept by an import) is shown as it is; when its
    node is written again, schema.org's validation refuses it at the input."""
    offer = copy.deepcopy(IMPORTED_OFFER)
    offer["hasMerchantReturnPolicy"][0]["returnFees"] = [{"@value": "https://schema.org/Gratis"}]
    imported = entity_update(
        entity=imported,
        data={**imported.data, "offers": [offer, copy.deepcopy(IMPORTED_OFFER)]},
        expected_version=imported.version,
        validated=True,
    )
    client.force_login(editor)
    form = client.get(change_url(imported)).context["adminform"].form
    assert form["offer__0__returnFees"].value() == "https://schema.org/Gratis"
    response = post(client, imported, offer__0__merchantReturnDays="14")
    errors = errors_of(response)
    assert list(errors) == ["offer__0__returnFees"]
    assert errors["offer__0__returnFees"][0].startswith(
        "/data/offers/0/hasMerchantReturnPolicy/returnFees: 'https://schema.org/Gratis' is "
        "not a member of ReturnFeesEnumeration"
    )


@pytest.mark.parametrize(
    ("pointer", "field"),
    [
        ("/data/offers/shippingDetails/shippingRate/value", "offer__0__shippingRate"),
        ("/data/offers/0/shippingDetails/shippingRate", "offer__0__shippingRate"),
        (
            "/data/offers/1/shippingDetails/shippingDestination/addressCountry/2",
            "offer__1__shippingCountries",
        ),
        (
            "/data/offers/1/shippingDetails/deliveryTime/handlingTime/minValue",
            "offer__1__handlingMin",
        ),
        (
            "/data/offers/1/shippingDetails/deliveryTime/handlingTime/maxValue",
            "offer__1__handlingMax",
        ),
        (
            "/data/offers/0/shippingDetails/deliveryTime/transitTime/maxValue",
            "offer__0__transitMax",
        ),
        ("/data/offers/0/shippingDetails/deliveryTime/transitTime", "offer__0__transitMin"),
        ("/data/offers/0/shippingDetails/deliveryTime", "offer__0__handlingMin"),
        ("/data/offers/0/shippingDetails", "offer__0__shippingRate"),
        (
            "/data/offers/0/hasMerchantReturnPolicy/returnPolicyCategory",
            "offer__0__returnPolicyCategory",
        ),
        (
            "/data/offers/1/hasMerchantReturnPolicy/merchantReturnDays",
            "offer__1__merchantReturnDays",
        ),
        ("/data/offers/0/hasMerchantReturnPolicy/returnMethod", "offer__0__returnMethod"),
        ("/data/offers/0/hasMerchantReturnPolicy/returnFees", "offer__0__returnFees"),
        (
            "/data/offers/1/hasMerchantReturnPolicy/applicableCountry/0",
            "offer__1__returnCountries",
        ),
        ("/data/offers/0/hasMerchantReturnPolicy", "offer__0__returnPolicyCategory"),
        ("/data/offers/0/price", "offer__0__price"),
        ("/data/offers/0/seller", "more_properties"),
        ("/data/offers/7/shippingDetails/shippingRate", "more_properties"),
    ],
)
def test_a_problem_below_an_offer_names_its_input(brand, imported, pointer, field):
    from kb.admin import AdminEntityForm

    imported = entity_update(
        entity=imported,
        data={**imported.data, "offers": [copy.deepcopy(IMPORTED_OFFER)] * 2},
        expected_version=imported.version,
    )
    form = AdminEntityForm(instance=imported)
    assert form.field_for_pointer(pointer) == field


NOT_FITTING = {
    "two shipping details": lambda o: o["shippingDetails"].append(copy.deepcopy(IMPORTED_SHIPPING)),
    "a rate range": lambda o: o["shippingDetails"][0]["shippingRate"][0].update(
        maxValue=[{"@value": 9.99}]
    ),
    "a rate in another currency": lambda o: o["shippingDetails"][0]["shippingRate"][0].update(
        currency=[{"@value": "EUR"}]
    ),
    "a property the inputs do not show": lambda o: o["shippingDetails"][0].update(
        doesNotShip=[{"@value": False}]
    ),
    "a named region": lambda o: o["shippingDetails"][0]["shippingDestination"][0].update(
        addressRegion=[{"@value": "ZH"}]
    ),
    "hours, not days": lambda o: o["shippingDetails"][0]["deliveryTime"][0]["handlingTime"][
        0
    ].update(unitCode=[{"@value": "HUR"}]),
    "a business-days delivery time": lambda o: o["shippingDetails"][0]["deliveryTime"][0].update(
        cutoffTime=[{"@value": "14:00:00"}]
    ),
    "half a day": lambda o: o["shippingDetails"][0]["deliveryTime"][0]["transitTime"][0].update(
        minValue=[{"@value": 0.5}]
    ),
    "a return date, not days": lambda o: o["hasMerchantReturnPolicy"][0].update(
        merchantReturnDays=[{"@type": "Date", "@value": "2027-01-31"}]
    ),
    "a return policy by reference": lambda o: o.update(
        hasMerchantReturnPolicy=[{"@id": "https://tea.example/#returns"}]
    ),
    "a return policy with a link": lambda o: o["hasMerchantReturnPolicy"][0].update(
        merchantReturnLink=[{"@id": "https://tea.example/returns"}]
    ),
    "two return policies": lambda o: o["hasMerchantReturnPolicy"].append(
        copy.deepcopy(IMPORTED_RETURNS)
    ),
    "a country given as a node": lambda o: o["hasMerchantReturnPolicy"][0].update(
        applicableCountry=[{"@type": ["Country"], "name": [{"@value": "Switzerland"}]}]
    ),
}


@pytest.mark.parametrize("case", list(NOT_FITTING))
def test_shipping_or_returns_that_do_not_fit_keep_the_offers_as_json_ld(
    client, brand, editor, imported, case
):
    offer = copy.deepcopy(IMPORTED_OFFER)
    NOT_FITTING[case](offer)
    assert not editable([offer]) and editable([IMPORTED_OFFER])
    imported = entity_update(
        entity=imported,
        data={**imported.data, "offers": [offer]},
        expected_version=imported.version,
        validated=True,
    )
    client.force_login(editor)
    form = client.get(change_url(imported)).context["adminform"].form
    assert "offer__0__price" not in form.fields
    assert json.loads(form["more_properties"].value())["offers"] == [offer]
    # Saving the form (another property changed) keeps every offer value.
    saved = post(client, imported, **{"p__description__en": "Pan-fired."})
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    imported.refresh_from_db()
    assert imported.data["offers"] == [offer]


def test_inputs_that_were_not_filled_add_nothing(client, editor, product):
    client.force_login(editor)
    before = copy.deepcopy(product.data)
    saved = post(client, product, **{"p__description__en": "Pan-fired."})
    assert saved.status_code == 302
    product.refresh_from_db()
    assert product.data["offers"] == before["offers"]
    assert len(product.data["offers"]) == 1
    assert Entity.objects.get(pk=product.pk).version == 2


def test_members_written_otherwise_are_shown_as_the_member_and_kept_as_written(
    client, brand, editor, imported
):
    """http://schema.org/…, a bare member name or a reference: the input shows the member;
    the offer is stored as it was until a return input changes."""
    offer = copy.deepcopy(IMPORTED_OFFER)
    policy = offer["hasMerchantReturnPolicy"][0]
    policy["returnMethod"] = [{"@value": "http://schema.org/ReturnInStore"}]
    policy["returnFees"] = [{"@value": "FreeReturn"}]
    policy["returnPolicyCategory"] = [{"@id": "https://schema.org/MerchantReturnUnlimitedWindow"}]
    del policy["merchantReturnDays"]
    imported = entity_update(
        entity=imported,
        data={**imported.data, "offers": [offer]},
        expected_version=imported.version,
        validated=True,
    )
    entity_validate(brand=brand, types=imported.types, data=imported.data, iri=imported.iri)
    client.force_login(editor)
    form = client.get(change_url(imported)).context["adminform"].form
    assert form["offer__0__returnMethod"].value() == "https://schema.org/ReturnInStore"
    assert form["offer__0__returnFees"].value() == "https://schema.org/FreeReturn"
    assert form["offer__0__returnPolicyCategory"].value() == (
        "https://schema.org/MerchantReturnUnlimitedWindow"
    )
    assert post(client, imported).status_code == 302
    imported.refresh_from_db()
    assert imported.version == 2 and imported.data["offers"] == [offer]
    assert post(client, imported, offer__0__returnCountries="CH, LI").status_code == 302
    imported.refresh_from_db()
    assert imported.data["offers"][0]["hasMerchantReturnPolicy"] == [
        {
            "@type": ["MerchantReturnPolicy"],
            "returnPolicyCategory": [
                {"@value": "https://schema.org/MerchantReturnUnlimitedWindow"}
            ],
            "returnMethod": [{"@value": "https://schema.org/ReturnInStore"}],
            "returnFees": [{"@value": "https://schema.org/FreeReturn"}],
            "applicableCountry": [{"@value": "CH"}, {"@value": "LI"}],
        }
    ]
