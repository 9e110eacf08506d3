"""One publish flow in the admin: publishing items queues one release of the site, the
entity's page says where it is live and how the release is doing, and a brand member's
admin home is the brand's dashboard, one click from its AI visibility."""

import pytest
from django.contrib.auth import get_user_model

from kb.models import BrandMembership, Entity
from kb.services.brands import membership_grant
from kb.services.entities import entity_create
from publishing.models import PublishRequest

pytestmark = pytest.mark.django_db


def text(value, language="en"):
    return [{"@value": value, "@language": language}]


@pytest.fixture
def reviewer(brand):
    user = get_user_model().objects.create_user("rev", password="pw-rev-123", is_staff=True)
    membership_grant(brand=brand, user=user, role=BrandMembership.Role.REVIEWER)
    return user


@pytest.fixture
def products(brand):
    return [
        entity_create(
            brand=brand,
            types=["Product"],
            iri=f"https://tea.example/products/{slug}/#product",
            slug=slug,
            data={"name": text(name)},
        )
        for slug, name in (("longjing", "Longjing"), ("biluochun", "Biluochun"))
    ]


def test_publishing_items_queues_one_release_and_says_where_to_follow_it(
    client, brand, reviewer, products, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the request waits: no worker in this test
    settings.CELERY_BROKER_URL = "memory://"
    client.force_login(reviewer)
    response = client.post(
        "/admin/kb/entity/",
        {"action": "publish", "_selected_action": [p.pk for p in products]},
        follow=True,
    )
    page = response.content.decode()
    assert "Published 2 item(s)." in page
    [request] = PublishRequest.objects.filter(brand=brand)
    assert request.state == PublishRequest.State.PENDING
    assert (
        f"The site of Acme Tea is being updated (publish request {request.pk}): "
        f'<a href="/admin/publishing/release/dashboard/{brand.pk}/">follow it on the dashboard</a>.'
    ) in page
    assert all(Entity.objects.get(pk=p.pk).live for p in products)
    # Publishing another item while that request waits adds no request: one build takes all.
    third = entity_create(brand=brand, types=["Product"], slug="keemun", data={"name": text("K")})
    client.post("/admin/kb/entity/", {"action": "publish", "_selected_action": [third.pk]})
    assert PublishRequest.objects.filter(brand=brand).count() == 1
    # The entity's page says where it is on the site and how the release is doing.
    change = client.get(f"/admin/kb/entity/{products[0].pk}/change/").content.decode()
    assert (
        '<a href="https://tea.example/products/longjing/" rel="noopener">'
        "https://tea.example/products/longjing/</a> — site: a release is queued"
    ) in change


def test_a_brand_member_lands_on_the_brand_dashboard(client, brand, reviewer):
    client.force_login(reviewer)
    landing = client.get("/admin/")
    assert landing.status_code == 302
    assert landing.url == f"/admin/publishing/release/dashboard/{brand.pk}/"
    dashboard = client.get(landing.url).content.decode()
    assert f'<a href="/admin/visibility/dashboard/{brand.pk}/">AI visibility of Acme Tea →</a>' in (
        dashboard
    )
    # The admin's own index is still there.
    assert client.get("/admin/?all=1").status_code == 200


def test_a_member_of_several_brands_lands_on_the_index(client, brand, other_brand, reviewer):
    membership_grant(brand=other_brand, user=reviewer, role=BrandMembership.Role.EDITOR)
    client.force_login(reviewer)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/", follow=False).templates[0].name == "admin/index.html"
