"""Issue 22, readable history: revision changes as labelled rows, links from each change
page to each revision's changes, the live release marked, what a rollback says, and a
reviewer sending an item back to its editor with a comment."""

from __future__ import annotations

import html
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from kb.demo_brand import demo_load
from kb.models import AuditEntry, Brand, Entity, Fact, Status
from kb.revision_changes import ADDED, CHANGED, REMOVED, previous_revision, revision_changes
from kb.services.brands import membership_grant
from kb.services.entities import entity_update
from kb.services.statements import statement_update
from kb.services.workflow import object_submit_for_review, revisions_of
from publishing.models import Release

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(django_user_model):
    demo_load()
    brand = Brand.objects.get(slug="westlake-leaf")
    users = {}
    for role in ("editor", "reviewer"):
        users[role] = django_user_model.objects.create_user(role, is_staff=True)
        membership_grant(brand=brand, user=users[role], role=role)
    return {"brand": brand, "users": users}


def client_of(client, user):
    client.force_login(user)
    return client


def edit_product(user=None) -> Entity:
    """The first offer's price and the Chinese description of one product."""
    product = Entity.objects.get(slug="longjing-meijiawu")
    data = dict(product.data)
    offers = [dict(offer) for offer in data["offers"]]
    offers[0]["price"] = [{"@value": "57.00"}]
    data["offers"] = offers
    data["description"] = [
        {**d, "@value": "梅家坞核心产区的经典龙井，小批量手工炒制。"}
        if d["@language"] == "zh-Hans"
        else d
        for d in data["description"]
    ]
    return entity_update(entity=product, data=data, expected_version=product.version, user=user)


def rows(revision) -> list[tuple[str, str, str, str]]:
    return [change.as_row() for change in revision_changes(previous_revision(revision), revision)]


def test_an_offer_price_and_a_chinese_description_as_labelled_rows(demo):
    product = edit_product()
    assert rows(product.latest_revision) == [
        (
            "Description (中文 / zh-Hans)",
            CHANGED,
            "产自西湖龙井核心产区梅家坞，小批量手工炒制的经典龙井。",
            "梅家坞核心产区的经典龙井，小批量手工炒制。",
        ),
        ("Offers (1 of 2) › Price", CHANGED, "54.00", "57.00"),
    ]


def test_values_added_and_removed_and_fact_texts_per_language(demo):
    product = Entity.objects.get(slug="longjing-meijiawu")
    data = dict(product.data)
    data["sku"] = []  # removed
    data["color"] = [{"@value": "Jade green", "@language": "en"}]  # added
    data["offers"] = [{**data["offers"][0], "availability": [
        {"@value": "https://schema.org/OutOfStock"}]}]  # fmt: skip
    product = entity_update(entity=product, data=data, expected_version=product.version)
    # Properties by label (PostgreSQL's jsonb keeps no order of keys).
    assert rows(product.latest_revision) == [
        ("Color (English / en)", ADDED, "", "Jade green"),
        ("Offers (1 of 2) › Availability", CHANGED, "In stock", "Out of stock"),
        # The second offer went: each of its values shows as removed.
        ("Offers (2 of 2) › Type", REMOVED, "Offer", ""),
        ("Offers (2 of 2) › Availability", REMOVED, "In stock", ""),
        ("Offers (2 of 2) › Eligible region › Type", REMOVED, "Place", ""),
        ("Offers (2 of 2) › Eligible region › Name", REMOVED, "EU", ""),
        ("Offers (2 of 2) › Item condition", REMOVED, "New condition", ""),
        ("Offers (2 of 2) › Price", REMOVED, "49.00", ""),
        ("Offers (2 of 2) › Price currency", REMOVED, "EUR", ""),
        ("Offers (2 of 2) › Price valid until", REMOVED, "2027-06-30", ""),
        ("Offers (2 of 2) › Seller", REMOVED, "Westlake Leaf Tea", ""),  # a reference: its name
        ("Offers (2 of 2) › URL", REMOVED,
         "https://www.westlakeleaf.example/products/longjing-meijiawu/?currency=eur", ""),
        ("SKU", REMOVED, "WLL-002", ""),
    ]  # fmt: skip
    fact = Fact.objects.get(key="annual-output")
    fact = statement_update(
        obj=fact, expected_version=fact.version, value="9.7",
        statement={**fact.statement, "zh-Hans": "2025产季西湖叶茶园共产成品茶9.7吨。"},
    )  # fmt: skip
    assert rows(fact.latest_revision) == [
        (
            "Statement (中文 / zh-Hans)",
            CHANGED,
            "2025产季西湖叶茶园共产成品茶9.6吨。",
            "2025产季西湖叶茶园共产成品茶9.7吨。",
        ),  # fmt: skip
        ("Value", CHANGED, "9.6", "9.7"),
    ]


def test_the_revision_page_and_its_compare_view_show_rows_not_pointers(demo, client):
    product = edit_product()
    client_of(client, demo["users"]["reviewer"])
    revision = product.latest_revision
    for url in (
        reverse("admin:kb_revision_change", args=[revision.pk]),
        reverse("admin:kb_revision_compare", args=[revision.pk]),
    ):
        page = html.unescape(client.get(url).content.decode())
        assert (
            '<tr class="change-changed"><th scope="row">Offers (1 of 2) › Price</th>'
            '<td><del class="change-old">54.00</del></td><td class="change-arrow">→</td>'
            '<td><ins class="change-new">57.00</ins></td></tr>'
        ) in page
        assert 'Description <span class="change-language">(中文 / zh-Hans)</span>' in page
        assert "/data/offers/0/price" not in page
        assert "kb/history.css" in page
    compare = client.get(reverse("admin:kb_revision_compare", args=[revision.pk]))
    assert f"Changes since revision #{revision.number - 1}" in compare.content.decode()


def test_each_revision_on_the_change_page_links_to_its_changes(demo, client):
    product = edit_product()
    fact = Fact.objects.get(key="annual-output")
    client_of(client, demo["users"]["editor"])
    for obj, url in (
        (product, reverse("admin:kb_entity_change", args=[product.pk])),
        (fact, reverse("admin:kb_fact_change", args=[fact.pk])),
    ):
        page = client.get(url).content.decode()
        revisions = list(revisions_of(obj))
        assert revisions
        for revision in revisions[:10]:
            link = reverse("admin:kb_revision_compare", args=[revision.pk])
            assert f'<a href="{link}">#{revision.number} ' in page, (obj, revision.number)
        assert "kb/history.css" in page


def publish(out) -> Release:
    call_command("publish", "westlake-leaf", "--out", str(out), stdout=StringIO())
    return Release.objects.filter(brand__slug="westlake-leaf").order_by("-number").first()


def live_cell(page: str, release: Release) -> bool:
    row = page.split(f">{release.number}</a>")[1].split("</tr>")[0]
    return '<span class="live-badge">Live</span> on ' in row


def test_the_live_release_is_marked_and_a_rollback_says_what_it_does(demo, client, tmp_path):
    first = publish(tmp_path / "site")
    product = edit_product()
    from kb.services.workflow import object_publish

    object_publish(obj=product)
    second = publish(tmp_path / "site")
    client_of(client, demo["users"]["reviewer"])
    listing = client.get(reverse("admin:publishing_release_changelist")).content.decode()
    assert live_cell(listing, second) and not live_cell(listing, first)
    # The two releases compared: removed lines red, added green, each on its own line.
    url = reverse("admin:publishing_release_changelist")
    compared = client.post(url, {"action": "compare", "_selected_action": [first.pk, second.pk]})
    text = compared.content.decode()
    assert '<span class="diff-removed">-- [54.00 USD (In stock)](' in text
    assert '<span class="diff-added">+- [57.00 USD (In stock)](' in text
    assert '<pre class="release-diff">' in text and "kb/history.css" in text

    # The action first asks, saying what the rollback does and what the next publish does.
    asked = client.post(url, {"action": "roll_back", "_selected_action": [first.pk]})
    assert asked.status_code == 200
    text = html.unescape(asked.content.decode())
    consequences = (
        "the site serves release 1's older content now. Nothing in the knowledge base "
        "changes: entities, facts and FAQs keep their published revisions. The next publish "
        "(of the brand, from the admin, the API, the command line or a scheduled go-live; or "
        "of any one item, which updates the site too) builds a new release from everything "
        "that is published, so content published after release 1 comes back then, unless you "
        "unpublish it first."
    )
    assert "in place of release 2 that is live now" in text
    assert consequences in text
    assert Release.objects.get(pk=first.pk).deployments.count() == 1  # nothing deployed yet

    done = client.post(
        url, {"action": "roll_back", "_selected_action": [first.pk], "confirm": "yes"}, follow=True
    )
    text = html.unescape(done.content.decode())
    assert f"Release 1 of {demo['brand']} deployed again: {consequences}" in text
    assert live_cell(text, first) and not live_cell(text, second)
    # What the message says: the published revision is still the new price …
    product.refresh_from_db()
    assert product.live_revision_id == product.latest_revision_id
    # … so the next publish brings it back.
    third = publish(tmp_path / "site")
    page = tmp_path / "site" / "current" / "products" / "longjing-meijiawu" / "index.html"
    assert "57.00" in page.read_text(encoding="utf-8") and third.number == 3


def test_a_reviewer_sends_an_item_back_and_the_editor_sees_the_comment(demo, client):
    editor, reviewer = demo["users"]["editor"], demo["users"]["reviewer"]
    product = object_submit_for_review(obj=edit_product(user=editor), user=editor)
    change_url = reverse("admin:kb_entity_change", args=[product.pk])
    send_back_url = reverse("admin:kb_entity_send_back", args=[product.pk])

    client_of(client, reviewer)
    assert send_back_url in client.get(change_url).content.decode()
    assert client.get(send_back_url).status_code == 200
    comment = "The EU offer still says 50.00: change both prices."
    response = client.post(send_back_url, {"comment": comment})
    assert response.status_code == 302 and response["Location"] == change_url
    product.refresh_from_db()
    assert product.status == Status.DRAFT
    entry = AuditEntry.objects.filter(action="reject", object_id=product.pk).get()
    assert entry.user == reviewer and entry.data == {"reason": comment}

    client.logout()
    client_of(client, editor)
    page = html.unescape(client.get(change_url).content.decode())
    when = timezone.localtime(entry.timestamp).strftime("%Y-%m-%d %H:%M")
    assert f"Sent back by reviewer on {when}: {comment}" in page
    assert send_back_url not in page  # not in review, and not the editor's to do anyway

    # Submitted again, the comment is done with.
    object_submit_for_review(obj=product, user=editor)
    assert "Sent back by" not in client.get(change_url).content.decode()


def test_the_send_back_action_of_the_list_for_reviewers(demo, client):
    editor = demo["users"]["editor"]
    product = object_submit_for_review(obj=edit_product(user=editor), user=editor)
    client_of(client, demo["users"]["reviewer"])
    url = reverse("admin:kb_entity_changelist")
    asked = client.post(url, {"action": "send_back", "_selected_action": [product.pk]})
    assert asked.status_code == 200 and "Comment for the editor" in asked.content.decode()
    done = client.post(
        url,
        {"action": "send_back", "_selected_action": [product.pk], "apply": "1",
         "comment": "Check the prices."},
        follow=True,
    )  # fmt: skip
    assert "Sent back 1 item(s)." in done.content.decode()
    product.refresh_from_db()
    assert product.status == Status.DRAFT


def test_an_editor_cannot_send_back(demo, client):
    editor = demo["users"]["editor"]
    product = object_submit_for_review(obj=edit_product(user=editor), user=editor)
    client_of(client, editor)
    send_back_url = reverse("admin:kb_entity_send_back", args=[product.pk])
    assert client.get(send_back_url).status_code == 403
    assert client.post(send_back_url, {"comment": "no"}).status_code == 403
    url = reverse("admin:kb_entity_changelist")
    client.post(
        url,
        {"action": "send_back", "_selected_action": [product.pk], "apply": "1", "comment": "no"},
    )
    product.refresh_from_db()
    assert product.status == Status.IN_REVIEW
    assert not AuditEntry.objects.filter(action="reject").exists()
