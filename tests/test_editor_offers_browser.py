"""An editor changes a price and a GTIN in real Chromium, with no JSON typed: the GTIN is
checked as they type, a price that is no number is refused next to its input."""

import pytest
from django.contrib.auth import get_user_model

from kb.models import BrandMembership, Entity
from kb.services.brands import brand_create, membership_grant
from kb.services.entities import entity_create


@pytest.fixture
def shop(transactional_db):
    brand = brand_create(
        slug="acme-tea",
        name="Acme Tea",
        base_url="https://tea.example",
        languages=["en", "zh-Hans"],
    )
    product = entity_create(
        brand=brand,
        types=["Product"],
        iri="https://tea.example/products/longjing/#product",
        data={
            "name": [{"@value": "Longjing", "@language": "en"}],
            "gtin13": [{"@value": "6970123000017"}],
            "offers": [
                {
                    "@type": ["Offer"],
                    "price": [{"@value": "12.50"}],
                    "priceCurrency": [{"@value": "USD"}],
                    "seller": [{"@id": "https://tea.example/#organization"}],
                }
            ],
        },
    )
    editor = get_user_model().objects.create_user(
        "editor", password="editor-pass-123", is_staff=True
    )
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.EDITOR)
    return product


def product_page(browser, live_server, product, **context):
    """The product's admin page, signed in as the editor (``context``: the browser's)."""
    page = browser.new_page(**context)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "editor-pass-123")
    with page.expect_navigation():
        page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/kb/entity/{product.pk}/change/")
    return page


def test_an_editor_changes_a_price_and_a_gtin_without_json(browser, shop, live_server):
    page = product_page(browser, live_server, shop)

    # The GTIN is checked as it is typed.
    page.fill("#id_p__gtin13", "6970123000011")
    note = page.locator("#id_p__gtin13 + .identifier-check")
    assert note.inner_text() == "The check digit is wrong: it should be 7."
    page.fill("#id_p__gtin13", "69701230000")
    assert note.inner_text() == "A GTIN has 8, 12, 13 or 14 digits, not 11."
    page.fill("#id_p__gtin13", "6970123000024")
    assert note.inner_text() == "✓ A valid GTIN."

    # A price that is no number is refused next to its input, and nothing is saved.
    page.fill("#id_offer__0__price", "abc")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    error = page.locator(".field-offer__0__price .errorlist").inner_text()
    assert error == "Enter the price as a number, with a dot before the cents: e.g. 12.50."
    assert Entity.objects.get(pk=shop.pk).version == 1

    # The right price, in euros, saves; the offer's seller is kept.
    page.fill("#id_offer__0__price", "13.50")
    page.select_option("#id_offer__0__priceCurrency", "EUR")
    page.select_option("#id_offer__0__availability", label="In stock")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    page.wait_for_selector("text=was changed successfully")
    product = Entity.objects.get(pk=shop.pk)
    assert product.data["gtin13"] == [{"@value": "6970123000024"}]
    assert product.data["offers"] == [
        {
            "@type": ["Offer"],
            "price": [{"@value": "13.50"}],
            "priceCurrency": [{"@value": "EUR"}],
            "seller": [{"@id": "https://tea.example/#organization"}],
            "availability": [{"@value": "https://schema.org/InStock"}],
        }
    ]
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator("fieldset:has(h2:text('Offers'))").screenshot(path="/tmp/offers-1280.png")


def test_a_chinese_speaking_editor_reads_the_checks_in_chinese(browser, shop, live_server):
    """The browser asks for Chinese: the GTIN checked as it is typed, the property search and
    an error at save speak it (the scripts' messages come from the admin's catalog)."""
    page = product_page(browser, live_server, shop, locale="zh-CN")
    page.fill("#id_p__gtin13", "6970123000011")
    note = page.locator("#id_p__gtin13 + .identifier-check")
    assert note.inner_text() == "校验位错误：应为 7。"
    page.fill("#id_p__gtin13", "69701230000")
    assert note.inner_text() == "GTIN 应为 8、12、13 或 14 位数字，而不是 11 位。"
    assert page.get_attribute(".property-search-box", "aria-label") == "查找属性"
    page.fill("#id_p__gtin13", "6970123000017")
    page.fill("#id_offer__0__price", "abc")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    error = page.locator(".field-offer__0__price .errorlist").inner_text()
    assert error == "请以数字填写价格，用小数点表示角分，例如 12.50。"
    page.close()
