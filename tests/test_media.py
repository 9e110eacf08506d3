"""Brand media: uploads checked by their content, stored once, published with the content
that shows them, and shown in the admin's preview (a real browser)."""

from __future__ import annotations

import hashlib
import io
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from PIL import Image

from kb.demo_brand import DEMO_DIR, demo_load
from kb.models import BrandMembership
from kb.services.brands import brand_create, membership_grant
from kb.services.entities import entity_create, entity_update
from kb.services.permissions import ADMIN_VIEW_POLICY, MODEL_POLICY, model_rules
from kb.services.workflow import object_publish
from publishing.media import (
    MediaInvalid,
    media_alt_update,
    media_bytes,
    media_register,
    media_upload,
    preview_token,
)
from publishing.models import MediaAsset, Release, Target
from publishing.preview import preview_csp

DEMO_BASE = "https://www.westlakeleaf.example"


@pytest.fixture(autouse=True)
def media_store(settings, tmp_path_factory):
    location = tmp_path_factory.mktemp("media")
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


def image_bytes(fmt: str = "JPEG", size=(40, 30), color=(90, 140, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def text(value: str, language: str = "en") -> list[dict]:
    return [{"@value": value, "@language": language}]


# -- the upload service --


@pytest.mark.django_db
def test_an_upload_is_stored_content_addressed_with_its_size_and_alt_texts(brand, media_store):
    data = image_bytes("PNG", (40, 30))
    asset = media_upload(
        brand=brand,
        file=upload("Dragon Well (2025).PNG", data),
        alt={"en": "  Dried  leaves ", "zh-hans": "干茶叶"},
        user=None,
    )
    sha = hashlib.sha256(data).hexdigest()
    assert asset.path == f"{sha[:16]}-dragon-well-2025.png"
    assert asset.file.name == f"acme-tea/{asset.path}"
    assert (media_store / "acme-tea" / asset.path).read_bytes() == data
    assert asset.public_url == f"https://tea.example/media/{asset.path}"
    assert (asset.content_type, asset.width, asset.height, asset.size) == (
        "image/png",
        40,
        30,
        len(data),
    )
    assert asset.alt == {"en": "Dried leaves", "zh-Hans": "干茶叶"}  # the brand's spelling
    assert asset.original_name == "Dragon Well (2025).PNG"


@pytest.mark.django_db
def test_the_content_decides_not_the_name(brand):
    with pytest.raises(MediaInvalid) as refused:
        media_upload(brand=brand, file=upload("tea.jpg", b"just some text\n" * 10), user=None)
    assert "tea.jpg" in str(refused.value)
    assert "JPEG, PNG, WebP or GIF" in str(refused.value)
    # A real image under a wrong name is taken, and named by what it is.
    asset = media_upload(brand=brand, file=upload("photo.txt", image_bytes("WEBP")), user=None)
    assert asset.path.endswith("-photo.webp") and asset.content_type == "image/webp"
    # Damaged data is refused, named too.
    with pytest.raises(MediaInvalid, match="cut.png"):
        media_upload(brand=brand, file=upload("cut.png", image_bytes("PNG")[:60]), user=None)
    # Pillow reads more formats than Sourcebook publishes.
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "BMP")
    with pytest.raises(MediaInvalid, match="old.bmp"):
        media_upload(brand=brand, file=upload("old.bmp", buffer.getvalue()), user=None)
    assert MediaAsset.objects.count() == 1


@pytest.mark.django_db
def test_a_file_over_the_limit_is_refused_with_its_name(brand, settings):
    data = image_bytes("PNG", (200, 200), (1, 2, 3))
    settings.SOURCEBOOK_MEDIA_MAX_BYTES = len(data) - 1
    with pytest.raises(MediaInvalid) as refused:
        media_upload(brand=brand, file=upload("big.png", data), user=None)
    assert "big.png" in str(refused.value)
    assert f"at most {len(data) - 1:,} bytes" in str(refused.value)
    # Also when the file object does not tell its size.
    with pytest.raises(MediaInvalid, match="big.png"):
        media_upload(brand=brand, file=named(io.BytesIO(data), "big.png"), user=None)
    settings.SOURCEBOOK_MEDIA_MAX_BYTES = len(data)
    assert media_upload(brand=brand, file=upload("big.png", data), user=None).size == len(data)


def named(handle, name: str):
    handle.name = name
    return handle


@pytest.mark.django_db
def test_alt_texts_only_in_the_brands_languages(brand):
    with pytest.raises(MediaInvalid, match="'fr'"):
        media_upload(brand=brand, file=upload("a.jpg", image_bytes()), alt={"fr": "Thé"}, user=None)


@pytest.mark.django_db
def test_the_same_bytes_are_the_same_asset(brand, media_store):
    data = image_bytes()
    first = media_upload(brand=brand, file=upload("a.jpg", data), alt={"en": "Tea"}, user=None)
    again = media_upload(
        brand=brand, file=upload("other-name.jpg", data), alt={"zh-Hans": "茶"}, user=None
    )
    assert again.pk == first.pk and again.path == first.path
    assert again.alt == {"en": "Tea", "zh-Hans": "茶"}
    assert MediaAsset.objects.count() == 1
    assert [p.name for p in (media_store / "acme-tea").iterdir()] == [first.path]


@pytest.mark.django_db
def test_brands_are_kept_apart(brand, other_brand, django_user_model):
    data = image_bytes()
    mine = media_upload(brand=brand, file=upload("a.jpg", data), user=None)
    theirs = media_upload(brand=other_brand, file=upload("a.jpg", data), user=None)
    assert mine.pk != theirs.pk
    assert mine.file.name.startswith("acme-tea/") and theirs.file.name.startswith("other/")
    assert theirs.public_url == f"https://other.example/media/{theirs.path}"
    # An editor of one brand may not upload to the other, nor see its images.
    editor = django_user_model.objects.create_user("ed", password="ed-pass-123", is_staff=True)
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.EDITOR)
    with pytest.raises(PermissionDenied):
        media_upload(brand=other_brand, file=upload("b.jpg", image_bytes(color=(1, 1, 1))),
                     user=editor)  # fmt: skip
    client = Client()
    client.force_login(editor)
    listing = client.get(reverse("admin:publishing_mediaasset_changelist"))
    assert listing.status_code == 200
    assert mine.path.encode() in listing.content and theirs.file.url.encode() not in listing.content
    own_file = reverse("admin:publishing_mediaasset_file", args=[mine.pk])
    assert client.get(own_file).status_code == 200
    assert (
        client.get(reverse("admin:publishing_mediaasset_file", args=[theirs.pk])).status_code == 403
    )
    # A preview link's token is for one asset and one user.
    token = preview_token(mine, editor)
    anonymous = Client()
    assert anonymous.get(own_file).status_code == 403
    response = anonymous.get(own_file, {"t": token})
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == data
    other_file = reverse("admin:publishing_mediaasset_file", args=[theirs.pk])
    assert anonymous.get(other_file, {"t": token}).status_code == 403
    assert anonymous.get(own_file, {"t": token + "x"}).status_code == 403
    BrandMembership.objects.filter(user=editor).delete()
    assert anonymous.get(own_file, {"t": token}).status_code == 403


@pytest.mark.django_db
def test_viewers_without_edit_may_not_upload(brand, django_user_model):
    viewer = django_user_model.objects.create_user("outsider", is_staff=True)
    with pytest.raises(PermissionDenied):
        media_upload(brand=brand, file=upload("a.jpg", image_bytes()), user=viewer)


def test_the_policy_declares_media():
    rules = model_rules(MediaAsset)
    assert MODEL_POLICY["publishing.mediaasset"] is rules
    assert (rules.view, rules.add, rules.change, rules.delete) == ("view", "edit", "edit", "edit")
    assert ADMIN_VIEW_POLICY["publishing_mediaasset_file"] == "view"


# -- the admin --


@pytest.mark.django_db
def test_the_admin_uploads_with_alt_texts_and_shows_a_thumbnail(
    brand, django_user_model, media_store, django_capture_on_commit_callbacks
):
    editor = django_user_model.objects.create_user("ed", is_staff=True)
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.EDITOR)
    client = Client()
    client.force_login(editor)
    add = reverse("admin:publishing_mediaasset_add")
    page = client.get(add)
    assert b'name="alt_en"' in page.content and b'name="alt_zh-Hans"' in page.content
    refused = client.post(
        add, {"brand": brand.pk, "upload": upload("notes.jpg", b"hello"), "alt_en": "x"}
    )
    assert refused.status_code == 200 and "notes.jpg" in refused.content.decode()
    assert not MediaAsset.objects.exists()
    done = client.post(
        add,
        {"brand": brand.pk, "upload": upload("leaf.jpg", image_bytes()), "alt_en": "A leaf",
         "alt_zh-Hans": "一片叶子"},
    )  # fmt: skip
    assert done.status_code == 302, done.content.decode()[:2000]
    asset = MediaAsset.objects.get()
    assert asset.alt == {"en": "A leaf", "zh-Hans": "一片叶子"} and asset.created_by == editor
    listing = client.get(reverse("admin:publishing_mediaasset_changelist")).content.decode()
    thumbnail = reverse("admin:publishing_mediaasset_file", args=[asset.pk])
    assert f'<img src="{thumbnail}" alt="A leaf"' in listing
    # The alt texts are edited on the asset's page.
    change = reverse("admin:publishing_mediaasset_change", args=[asset.pk])
    assert "一片叶子" in client.get(change).content.decode()
    response = client.post(change, {"alt_en": "A fresh leaf", "alt_zh-Hans": ""})
    assert response.status_code == 302
    asset.refresh_from_db()
    assert asset.alt == {"en": "A fresh leaf"}
    # Deleted, its file goes too.
    stored = media_store / asset.file.name
    assert stored.exists()
    delete = reverse("admin:publishing_mediaasset_delete", args=[asset.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not MediaAsset.objects.exists() and not stored.exists()


# -- publishing --


def publish(slug: str, out: Path) -> Release:
    call_command("publish", slug, "--out", str(out), stdout=StringIO())
    return Release.objects.filter(brand__slug=slug).order_by("-number").first()


@pytest.mark.django_db
def test_the_published_demo_site_has_every_image_it_links(tmp_path):
    summary = demo_load()
    graph = (DEMO_DIR / "graph.jsonld").read_text(encoding="utf-8")
    linked = sorted(set(re.findall(re.escape(DEMO_BASE) + r"/media/([^\"]+)", graph)))
    assert len(linked) > 50 and summary["media"] == len(linked)
    release = publish("westlake-leaf", tmp_path / "site")
    site = tmp_path / "site" / "current"
    for path in linked:
        shipped = DEMO_DIR / "media" / path
        assert shipped.stat().st_size < 30 * 1024, path
        assert (site / "media" / path).read_bytes() == shipped.read_bytes(), path
    types = dict(release.artifacts.filter(kind="media").values_list("path", "content_type"))
    assert types["media/brand/logo-512.png"] == "image/png"
    assert types["media/products/biluochun-1.jpg"] == "image/jpeg"
    assert len(types) == len(linked)
    # Every image is described in both languages.
    alt = json.loads((DEMO_DIR / "media" / "alt.json").read_text(encoding="utf-8"))
    assert sorted(alt) == linked
    for asset in MediaAsset.objects.filter(brand=summary["brand"]):
        assert set(asset.alt) == {"en", "zh-Hans"} and all(asset.alt.values()), asset.path
    # The pages link them where the site serves them.
    page = (site / "products" / "biluochun" / "index.html").read_text(encoding="utf-8")
    assert f'src="{DEMO_BASE}/media/products/biluochun-1.jpg"' in page
    # Loading the demo again changes nothing; a publish carries the images over.
    assert demo_load()["media"] == len(linked)
    assert MediaAsset.objects.count() == len(linked)
    again = publish("westlake-leaf", tmp_path / "site")
    assert again.summary["changed"] == 0 or not any(
        p.startswith("media/") for p in again.summary.get("changed_paths", [])
    )


@pytest.mark.django_db
def test_only_images_that_published_content_links_are_published(brand, tmp_path):
    organization = entity_create(
        brand=brand, types=["Organization"], iri="https://tea.example/#organization",
        data={"name": text("Acme Tea")},
    )  # fmt: skip
    object_publish(obj=organization)
    shown = media_upload(brand=brand, file=upload("shown.jpg", image_bytes()), user=None)
    draft = media_upload(
        brand=brand, file=upload("draft.png", image_bytes("PNG", color=(9, 9, 9))), user=None
    )
    product = entity_create(
        brand=brand, types=["Product"], slug="leaf",
        data={"name": text("Leaf"), "image": [{"@id": shown.public_url}]},
    )  # fmt: skip
    object_publish(obj=product)
    # A draft links the other image: not published yet.
    entity_create(
        brand=brand, types=["Product"], slug="secret",
        data={"name": text("Secret"), "image": [{"@id": draft.public_url}]},
    )  # fmt: skip
    first = publish("acme-tea", tmp_path / "site")
    media = dict(first.artifacts.filter(kind="media").values_list("path", "content_type"))
    assert media == {f"media/{shown.path}": "image/jpeg"}
    site = tmp_path / "site" / "current"
    assert (site / "media" / shown.path).read_bytes() == media_bytes(shown)
    assert not (site / "media" / draft.path).exists()
    # Once published content shows it, it is published; no longer shown, it goes.
    product = entity_update(
        entity=product, data={"name": text("Leaf"), "image": [{"@id": draft.public_url}]},
        expected_version=product.version,
    )  # fmt: skip
    object_publish(obj=product)
    second = publish("acme-tea", tmp_path / "site")
    assert set(second.artifacts.filter(kind="media").values_list("path", flat=True)) == {
        f"media/{draft.path}"
    }
    assert f"media/{shown.path}" in second.summary.get("removed", [f"media/{shown.path}"])
    assert not (site / "media" / shown.path).exists()
    assert (site / "media" / draft.path).read_bytes() == media_bytes(draft)


@pytest.mark.django_db
def test_pages_describe_images_with_their_alt_text_in_each_language(brand, tmp_path):
    organization = entity_create(
        brand=brand, types=["Organization"], iri="https://tea.example/#organization",
        data={"name": text("Acme Tea")},
    )  # fmt: skip
    object_publish(obj=organization)
    asset = media_upload(
        brand=brand,
        file=upload("cup.jpg", image_bytes()),
        alt={"en": "A cup of <green> tea", "zh-Hans": "一杯绿茶"},
        user=None,
    )
    product = entity_create(
        brand=brand, types=["Product"], slug="leaf",
        data={"name": [*text("Leaf"), *text("叶", "zh-Hans")],
              "image": [{"@id": asset.public_url}]},
    )  # fmt: skip
    object_publish(obj=product)
    publish("acme-tea", tmp_path / "site")
    site = tmp_path / "site" / "current"
    src = f'src="{asset.public_url}"'

    def shown(path: str) -> str:
        return (site / path).read_text(encoding="utf-8")

    assert f'<img {src} alt="A cup of &lt;green&gt; tea" loading="lazy">' in shown(
        "products/leaf/index.html"
    )
    assert f'<img {src} alt="一杯绿茶" loading="lazy">' in shown("zh-Hans/products/leaf/index.html")
    assert f"![A cup of \\<green\\> tea]({asset.public_url})" in shown(
        "products/leaf/index.html.md"
    )
    # An alt text changed at the media re-renders the pages that show the image, only them.
    media_alt_update(asset=asset, alt={"en": "A cup of tea"}, user=None)
    again = publish("acme-tea", tmp_path / "site")
    assert sorted(p for p in again.summary["changed_paths"] if "leaf" in p or p == "index.html") == [
        "products/leaf/index.html", "products/leaf/index.html.md",
        "zh-Hans/products/leaf/index.html", "zh-Hans/products/leaf/index.html.md",
    ]  # fmt: skip
    assert f'<img {src} alt="A cup of tea" loading="lazy">' in shown("products/leaf/index.html")
    # No alt text in a language: the page's title in it.
    assert f'<img {src} alt="叶" loading="lazy">' in shown("zh-Hans/products/leaf/index.html")


@pytest.mark.django_db
def test_register_puts_an_image_at_the_path_the_content_links(brand):
    asset = media_register(
        brand=brand, path="products/leaf-1.jpg", file=ContentFile(image_bytes(), name="x")
    )
    assert asset.public_url == "https://tea.example/media/products/leaf-1.jpg"
    with pytest.raises(MediaInvalid, match="not .jpg"):
        media_register(brand=brand, path="products/leaf-2.jpg", file=image_bytes("PNG"))
    with pytest.raises(MediaInvalid, match="not a media path"):
        media_register(brand=brand, path="../escape.jpg", file=image_bytes())
    replaced = media_register(
        brand=brand, path="products/leaf-1.jpg", file=image_bytes(color=(200, 10, 10))
    )
    assert replaced.pk == asset.pk and replaced.sha256 != asset.sha256


# -- the preview --


@pytest.mark.django_db
def test_the_preview_policy_allows_this_server_and_the_brands_media(brand):
    policy = preview_csp(brand)
    assert policy.startswith("sandbox; default-src 'none';")
    assert "img-src 'self' https://tea.example/media/ " in policy
    # Nothing but images: no script, frame, form or connection.
    assert "script-src" not in policy and "connect-src" not in policy
    # A base URL that would end the directive is left out.
    brand.base_url = "https://tea.example/x;script-src"
    assert "x;script-src" not in preview_csp(brand)


@pytest.fixture
def previewed(transactional_db, django_user_model):
    brand = brand_create(
        slug="acme-tea", name="Acme Tea", base_url="https://tea.example", languages=["en"]
    )
    organization = entity_create(
        brand=brand, types=["Organization"], iri="https://tea.example/#organization",
        data={"name": text("Acme Tea")},
    )  # fmt: skip
    object_publish(obj=organization)
    asset = media_upload(
        brand=brand, file=upload("leaf.png", image_bytes("PNG", (120, 80))), alt={"en": "Leaf"},
        user=None,
    )  # fmt: skip
    product = entity_create(
        brand=brand, types=["Product"], slug="leaf",
        data={"name": text("Leaf Tea"), "image": [{"@id": asset.public_url}],
              "description": text("A green tea.")},
    )  # fmt: skip
    Target.objects.create(brand=brand, name="unused", kind=Target.Kind.WEBHOOK, enabled=False)
    editor = get_user_model().objects.create_user("editor", password="editor-pass-123",
                                                  is_staff=True)  # fmt: skip
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.EDITOR)
    return brand, product, asset


def test_the_preview_shows_the_uploaded_image_in_chromium(browser, previewed, live_server):
    brand, product, asset = previewed
    base = live_server.url
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    refused: list[str] = []
    page.on("response", lambda r: r.status >= 400 and refused.append(f"{r.status} {r.url}"))
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "editor-pass-123")
    with page.expect_navigation():
        page.click("input[type=submit]")
    page.goto(f"{base}/admin/publishing/release/preview/{product.pk}/en/")
    frame = page.frame_locator("iframe[title='Page preview']")
    image = frame.locator("img").first
    image.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    src = image.get_attribute("src")
    assert src.startswith(f"/admin/publishing/mediaasset/{asset.pk}/file/?t="), src
    width = image.evaluate("img => img.complete ? img.naturalWidth : -1")
    for _ in range(50):
        if width > 0:
            break
        page.wait_for_timeout(100)
        width = image.evaluate("img => img.complete ? img.naturalWidth : -1")
    assert width == 120
    violations = [m for m in console if "Content Security Policy" in m]
    assert violations == []
    assert [r for r in refused if not r.endswith("/favicon.ico")] == []
