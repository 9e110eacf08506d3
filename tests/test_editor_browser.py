"""The editor's day in a real browser: Debian's Chromium driven by Playwright.

An editor creates a product in two languages, meets a validation error and fixes it, and
submits it; a reviewer sees the change, publishes it and the release; the product is in the
published page's JSON-LD; a rollback takes it away again.
"""

import json
import os
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from kb.models import BrandMembership, Entity, Status
from kb.services.brands import brand_create, membership_grant
from kb.services.entities import entity_create
from kb.services.workflow import object_publish
from publishing.models import Release, Target


@pytest.fixture
def newsroom(transactional_db, tmp_path, settings):
    brand = brand_create(
        slug="acme-tea",
        name="Acme Tea",
        base_url="https://tea.example",
        languages=["en", "zh-Hans"],
    )
    organization = entity_create(
        brand=brand,
        types=["Organization"],
        iri="https://tea.example/#organization",
        data={"name": [{"@value": "Acme Tea", "@language": "en"}]},
    )
    object_publish(obj=organization)
    Target.objects.create(
        brand=brand,
        name="site",
        kind=Target.Kind.DIRECTORY,
        operator_path=str(tmp_path / "site"),
    )
    call_command("publish", "acme-tea", stdout=StringIO())  # release 1: no product yet
    settings.SOURCEBOOK_SERVE_SITE = str(tmp_path / "site" / "current")
    users = {}
    for name, role in (
        ("editor", BrandMembership.Role.EDITOR),
        ("reviewer", BrandMembership.Role.REVIEWER),
    ):
        user = get_user_model().objects.create_user(
            name, password=f"{name}-pass-123", is_staff=True
        )
        membership_grant(brand=brand, user=user, role=role)
        users[name] = user
    return brand, tmp_path / "site"


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"{username}-pass-123")
    with page.expect_navigation():
        page.click("input[type=submit]")
    # A member of one brand lands on the brand's dashboard.
    page.wait_for_url(f"{base}/admin/publishing/release/dashboard/*/")


def save(page) -> None:
    """Save and continue editing, and wait for the page that answers."""
    with page.expect_navigation():
        page.click("input[name=_continue]")
    page.wait_for_load_state()


def run_action(page, action: str) -> None:
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", action)
    with page.expect_navigation():
        page.click("button[name=index]")
    page.wait_for_load_state()


def test_editor_to_published_page_and_back(browser, newsroom, live_server):
    brand, site = newsroom
    base = live_server.url
    page = browser.new_page()

    # The editor creates a product, in two languages.
    log_in(page, base, "editor")
    page.goto(f"{base}/admin/kb/entity/add/")
    page.select_option("#id_brand", label="Acme Tea")
    page.fill("#id_types_text", "Product")
    page.fill("#id_slug", "gunpowder")
    save(page)
    page.wait_for_selector("#id_p__name__en")
    page.fill("#id_p__name__en", "Gunpowder Green Tea")
    page.fill("#id_p__name__zh-Hans", "珠茶")
    offer = '{"offers": [{"@type": ["Offer"], "price": [{"@value": "18.00"}], "priceCurrency": [{"@value": "USD"}], "availability": [{"@value": "%s"}]}]}'
    page.fill("#id_more_properties", offer % "InStok")
    save(page)
    # A wrong value is refused, named where it is, and nothing is saved.
    error = page.locator(".errorlist").first.inner_text()
    assert "'InStok' is not a member of ItemAvailability (did you mean 'InStock'?)" in error
    product = Entity.objects.get(slug="gunpowder")
    assert product.version == 1 and "name" not in product.data
    page.fill("#id_more_properties", offer % "https://schema.org/InStock")
    save(page)
    page.wait_for_selector("text=was changed successfully")
    product.refresh_from_db()
    assert product.text("name", "zh-Hans") == "珠茶"
    # The checks panel tells what Google would miss; a missing image does not block.
    checks = page.inner_text(".field-checks")
    assert (
        "not eligible — publishing goes ahead Google: Product (merchant listing) /image" in checks
    )
    assert "Not eligible for merchant listings: they need an image." in checks
    assert "blocks publishing" not in checks
    # The editor adds the image and picks the brand by typing part of its name.
    page.fill("#id_p__image", "https://tea.example/img/gunpowder.jpg")
    page.click("#id_p__brand + .select2")
    page.fill(".select2-search__field", "acme")
    page.click(".select2-results__option:has-text('Acme Tea (Organization)')")
    save(page)
    page.wait_for_selector("text=was changed successfully")
    assert "/image" not in page.inner_text(".field-checks")
    product.refresh_from_db()
    assert product.data["brand"] == [{"@id": "https://tea.example/#organization"}]

    page.goto(f"{base}/admin/kb/entity/?q=gunpowder")
    run_action(page, "submit_for_review")
    product.refresh_from_db()
    assert product.status == Status.IN_REVIEW
    # An editor cannot publish: the action is not offered.
    page.goto(f"{base}/admin/kb/entity/?q=gunpowder")
    offered = page.eval_on_selector_all("select[name=action] option", "o => o.map(e => e.value)")
    assert "submit_for_review" in offered and "publish" not in offered
    product.refresh_from_db()
    assert product.live_revision_id is None

    # The reviewer sees the change and publishes the entity: the site is updated with it.
    page.context.clear_cookies()
    log_in(page, base, "reviewer")
    page.goto(f"{base}/admin/kb/revision/{product.latest_revision_id}/change/")
    changes = page.inner_text("body")
    assert "珠茶" in changes and "InStock" in changes
    page.goto(f"{base}/admin/kb/entity/?q=gunpowder")
    run_action(page, "publish")
    assert "The site of Acme Tea is being updated" in page.inner_text(".messagelist")
    product.refresh_from_db()
    assert product.live_revision_id == product.latest_revision_id
    page.goto(f"{base}/admin/publishing/release/")
    release = Release.objects.get(brand=brand, number=2)
    assert release.state == Release.State.DEPLOYED
    cells = [
        c.strip() for c in page.locator("#result_list tbody tr").first.inner_text().split("\t")
    ]
    assert [c for c in cells if c][:4] == ["2", "Acme Tea", "Deployed", "100%"]

    # The published page has the product in its JSON-LD, in each language.
    page.goto(f"{base}/zh-Hans/products/gunpowder/")
    graph = json.loads(page.locator("script[type='application/ld+json']").inner_text())
    product_node = next(n for n in graph["@graph"] if n["@id"] == product.iri)
    assert product_node["name"] == "珠茶"
    assert product_node["offers"]["availability"] == "https://schema.org/InStock"
    assert product_node["image"] == "https://tea.example/img/gunpowder.jpg"
    assert product_node["brand"] == {"@id": "https://tea.example/#organization"}

    # Rolling back to release 1 takes the page away again.
    page.goto(f"{base}/admin/publishing/release/?o=1")
    page.check("#result_list tbody tr:has(a:text-is('1')) input.action-select")
    page.select_option("select[name=action]", "roll_back")
    with page.expect_navigation():
        page.click("button[name=index]")
    # The rollback asks first, saying that the next publish builds from what is published.
    assert "comes back then, unless you unpublish it first" in page.inner_text("body")
    with page.expect_navigation():
        page.click("input[name=confirm]")
    page.wait_for_load_state()
    assert "Release 1 of Acme Tea deployed again: " in page.inner_text("body")
    assert os.readlink(site / "current") == ".releases/1"
    response = page.goto(f"{base}/products/gunpowder/")
    assert response.status == 404


def test_an_editor_of_one_brand_sees_nothing_of_another(browser, newsroom, live_server):
    other = brand_create(
        slug="other", name="Other Brand", base_url="https://other.example", languages=["en"]
    )
    secret = entity_create(
        brand=other, types=["Product"], data={"name": [{"@value": "Secret blend"}]}
    )
    page = browser.new_page()
    log_in(page, live_server.url, "editor")
    page.goto(f"{live_server.url}/admin/kb/entity/")
    assert "Secret blend" not in page.inner_text("body")
    response = page.goto(f"{live_server.url}/admin/kb/entity/{secret.pk}/change/")
    assert response.status in (302, 404) or "doesn’t exist" in page.inner_text("body")
    assert "Secret blend" not in page.content()
