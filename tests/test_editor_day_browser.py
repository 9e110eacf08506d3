"""An editor's real day on the demo brand, in Chromium, with no JSON typed anywhere.

The editor changes a price and the Chinese description through form fields, meets an error
next to the price for "abc", uploads an image with its alt text and submits; the reviewer
sends it back with a comment; the editor reads it, fixes the description and submits again;
the reviewer publishes, and the live page shows the new price.
"""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from PIL import Image

from kb.demo_brand import demo_load
from kb.models import BrandMembership, Entity, Status
from kb.services.brands import membership_grant
from publishing.models import MediaAsset, Target

SLUG = "longjing-shifeng-pre-qingming"


@pytest.fixture
def demo_site(transactional_db, tmp_path, settings):
    brand = demo_load()["brand"]
    Target.objects.create(
        brand=brand, name="site", kind=Target.Kind.DIRECTORY, operator_path=str(tmp_path / "site")
    )
    call_command("publish", brand.slug, stdout=StringIO())
    settings.SOURCEBOOK_SERVE_SITE = str(tmp_path / "site" / "current")
    for name, role in (
        ("editor", BrandMembership.Role.EDITOR),
        ("reviewer", BrandMembership.Role.REVIEWER),
    ):
        user = get_user_model().objects.create_user(
            name, password=f"{name}-pass-123", is_staff=True
        )
        membership_grant(brand=brand, user=user, role=role)
    image = tmp_path / "gaiwan.png"
    Image.new("RGB", (64, 48), (90, 140, 100)).save(image, "PNG")
    return brand, image


def log_in(page, base: str, name: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", f"{name}-pass-123")
    with page.expect_navigation():
        page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/publishing/release/dashboard/*/")  # their brand's home


def save(page) -> None:
    with page.expect_navigation():
        page.click("input[name=_continue]")


def run_action(page, base: str, action: str) -> None:
    page.goto(f"{base}/admin/kb/entity/?q=WLL-001")
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", action)
    with page.expect_navigation():
        page.click("button[name=index]")


def test_an_editors_day(browser, demo_site, live_server):
    brand, image = demo_site
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    product = Entity.objects.get(brand=brand, slug=SLUG)
    usd = next(i for i, o in enumerate(product.data["offers"]) if "USD" in json.dumps(o))

    # The editor finds the product by its SKU and opens it.
    log_in(page, base, "editor")
    page.goto(f"{base}/admin/kb/entity/?q=WLL-001")
    with page.expect_navigation():
        page.click("#result_list tbody a")
    change_url = page.url
    # A price that is no number is refused next to its input; nothing is saved.
    page.fill(f"#id_offer__{usd}__price", "abc")
    save(page)
    error = page.locator(f".field-offer__{usd}__price .errorlist").inner_text()
    assert error == "Enter the price as a number, with a dot before the cents: e.g. 12.50."
    assert Entity.objects.get(pk=product.pk).version == product.version
    # The right price, the Chinese description and an image with its alt text.
    page.fill(f"#id_offer__{usd}__price", "72.00")
    page.fill("#id_p__description__zh-Hans", "清明前采摘于狮峰山，手工炒制。")
    page.set_input_files("#id_upload_image", str(image))
    page.fill("#id_upload_alt__en", "A celadon gaiwan of Shi Feng Longjing")
    page.fill("#id_upload_alt__zh-Hans", "一盏狮峰龙井")
    save(page)
    page.wait_for_selector("text=was changed successfully")
    asset = MediaAsset.objects.get(brand=brand, original_name="gaiwan.png")
    product.refresh_from_db()
    assert product.data["offers"][usd]["price"] == [{"@value": "72.00"}]
    assert {"@id": asset.public_url} in product.data["image"]
    run_action(page, base, "submit_for_review")
    assert Entity.objects.get(pk=product.pk).status == Status.IN_REVIEW

    # The reviewer sends it back with a comment.
    log_in(page, base, "reviewer")
    page.goto(change_url)
    with page.expect_navigation():
        page.click("text=Send back to the editor…")
    page.fill("textarea[name=comment]", "Say 'hand-fried' in the Chinese description too.")
    with page.expect_navigation():
        page.click("input[name=apply]")
    assert Entity.objects.get(pk=product.pk).status == Status.DRAFT

    # The editor reads the comment, fixes the description and submits again.
    log_in(page, base, "editor")
    page.goto(change_url)
    note = page.locator(".sent-back-note").inner_text()
    assert note.startswith("Sent back by reviewer on ")
    assert note.endswith(": Say 'hand-fried' in the Chinese description too.")
    page.fill("#id_p__description__zh-Hans", "清明前采摘于狮峰山，铁锅手工炒制。")
    save(page)
    page.wait_for_selector("text=was changed successfully")
    run_action(page, base, "submit_for_review")

    # The reviewer publishes: the product goes live and the site is updated with it.
    log_in(page, base, "reviewer")
    run_action(page, base, "publish")
    assert "The site of Westlake Leaf Tea is being updated" in page.inner_text(".messagelist")
    product.refresh_from_db()
    assert product.live and not product.has_unpublished_changes
    page.goto(f"{base}/products/{SLUG}/")
    graph = json.loads(page.locator("script[type='application/ld+json']").inner_text())
    node = next(n for n in graph["@graph"] if n["@id"] == product.iri)
    assert {"@type": "Offer", "price": "72.00"}.items() <= {
        k: v for k, v in node["offers"][usd].items() if k in ("@type", "price")
    }.items()
    assert asset.public_url in node["image"]
    assert "72.00" in page.inner_text("body")
    page.goto(f"{base}/zh-Hans/products/{SLUG}/")
    assert "铁锅手工炒制" in page.inner_text("body")
    # The image is published with the page.
    response = page.request.get(f"{base}/media/{asset.public_url.split('/media/', 1)[1]}")
    assert response.status == 200 and response.headers["content-type"] == "image/png"
