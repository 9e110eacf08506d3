"""Values in each language's words: units (CLDR via Babel, UN/CEFACT codes in JSON-LD),
country and language names; codes stay codes in JSON-LD."""

import re

import pytest

from kb import units
from kb.demo_brand import demo_load
from kb.models import Brand
from tests.test_publish_artifacts import BASE, page_graph, publish


@pytest.mark.parametrize(
    ("value", "unit", "labels", "language", "shown"),
    [
        ("42", "ha", {}, "en", "42 ha"),
        ("42", "ha", {}, "zh-Hans", "42公顷"),
        ("42", "hectares", {}, "en", "42 hectares"),
        ("9.6", "t", {}, "zh-Hans", "9.6公吨"),
        ("12", "years", {}, "en", "12 years"),
        ("12", "years", {}, "zh-Hans", "12年"),
        ("3", "days", {}, "zh-Hant", "3 天"),
        ("85", "°C", {}, "zh-Hans", "85°C"),
        ("35", "%", {}, "en", "35%"),
        ("36000", "buds", {"zh-Hans": "个芽"}, "zh-Hans", "36,000个芽"),
        ("36000", "buds", {"zh-Hans": "个芽"}, "en", "36,000 buds"),
        ("36000", "buds", {}, "zh-Hans", "36,000 buds"),  # no label: the unit as typed
        ("12,000", "t", {}, "en", "12,000 t"),  # not a plain number: as typed
        ("1998", "", {}, "en", "1998"),  # no unit: a year stays a year
        ("", "grade", {"zh-Hans": "级"}, "zh-Hans", "级"),
    ],
)
def test_value_text(value, unit, labels, language, shown):
    assert units.value_text(value, unit, labels, language) == shown


def test_unit_codes_for_json_ld():
    assert [units.unit_code(u) for u in ("ha", "t", "Tonnes", "%", "°C", "ml", "buds", "")] == [
        "HAR", "TNE", "TNE", "P1", "CEL", "MLT", None, None,
    ]  # fmt: skip
    assert units.unit_symbol("HAR") == "ha" and units.unit_symbol("XYZ") == ""


def test_country_and_language_names():
    assert units.country_name("CN", "en") == "China"
    assert units.country_name("cn", "zh-Hans") == "中国"
    assert units.country_name("DE", "zh-Hans") == "德国"
    assert units.country_name("China", "en") is None  # already a name
    assert units.language_display_name("zh-Hans", "en") == "Chinese (Simplified)"
    assert units.language_display_name("en", "zh-Hans") == "英语"
    assert units.language_display_name("not a tag", "en") is None


@pytest.mark.django_db
def test_pages_show_names_in_their_language_and_json_ld_keeps_codes(tmp_path):
    demo_load()
    publish(tmp_path / "site")
    root = tmp_path / "site" / "current"
    brand = Brand.objects.get(slug="westlake-leaf")
    assert brand.languages == ["en", "zh-Hans"]
    for prefix, country, label in (
        ("", "China", "Country of origin"),
        ("zh-Hans/", "中国", "原产国"),
    ):
        url = f"{BASE}/{prefix}products/longjing-meijiawu/"
        html = (root / prefix / "products" / "longjing-meijiawu" / "index.html").read_text("utf-8")
        assert re.search(rf"<dt>{label}</dt><dd>{country}</dd>", html), prefix
        product = next(n for n in page_graph(html, url)["@graph"] if n.get("@type") == "Product")
        assert product["countryOfOrigin"] == {"@type": "Country", "name": "CN"}
        twin = (root / prefix / "products" / "longjing-meijiawu" / "index.html.md").read_text(
            "utf-8"
        )
        assert country in twin
    store = (root / "zh-Hans" / "stores" / "hamburg-speicherstadt" / "index.html").read_text(
        "utf-8"
    )
    assert "德国" in store and ", DE<" not in store


@pytest.mark.django_db
def test_an_editor_gives_a_unit_its_word_in_each_language(client, brand):
    from datetime import date

    from django.contrib.auth import get_user_model

    from kb.models import BrandMembership, Fact
    from kb.services.brands import membership_grant
    from kb.services.entities import entity_create
    from kb.services.statements import fact_create

    editor = get_user_model().objects.create_user("ed", password="pw-ed-123", is_staff=True)
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.EDITOR)
    product = entity_create(
        brand=brand,
        types=["Product"],
        data={"name": [{"@value": "Shi Feng Longjing", "@language": "en"}]},
        iri="https://tea.example/#longjing",
    )
    fact = fact_create(
        brand=brand,
        key="buds",
        about=product,
        statement={"en": "About 36,000 buds go into 500 g of Shi Feng Longjing."},
        value="36000",
        unit="buds",
        source_url="https://tea.example/report",
        as_of=date(2026, 4, 5),
    )
    client.force_login(editor)
    url = f"/admin/kb/fact/{fact.pk}/change/"
    page = client.get(url)
    form = page.context["adminform"].form
    assert "p__unit_labels__zh-Hans" in form.fields
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data |= {"about": product.pk, "p__unit_labels__zh-Hans": "个芽"}
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    fact.refresh_from_db()
    assert fact.unit_labels == {"zh-Hans": "个芽"}
    assert fact.latest_revision.content["unit_labels"] == {"zh-Hans": "个芽"}
    # A label longer than a unit is refused at its field.
    data["p__unit_labels__zh-Hans"] = "芽" * 51
    refused = client.post(url, data | {"version": fact.version})
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert errors == {"p__unit_labels__zh-Hans": ["a unit is at most 50 characters, not 51"]}
    assert Fact.objects.get(pk=fact.pk).unit_labels == {"zh-Hans": "个芽"}
