"""Brand media: images uploaded once, published with every release at ``{base_url}/media/…``.

An upload is checked by Pillow (JPEG, PNG, WebP or GIF, whatever its name says), limited to
``SOURCEBOOK_MEDIA_MAX_BYTES``, and stored in the ``media`` storage (``STORAGES["media"]``)
content-addressed: ``<brand slug>/<sha256[:16]>-<safe name>.<ext>``. The same bytes uploaded
again are the same asset. Its public URL is ``{brand.base_url}/media/<path>``; a build
publishes the assets the published content links (see ``media_published``).
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.signing import BadSignature, TimestampSigner
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from kb.models import Brand
from kb.services.permissions import EDIT, require
from publishing.models import MediaAsset, media_storage

# Pillow's format → (content type, file extension).
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}
CONTENT_TYPES_BY_EXTENSION = {ext: content_type for content_type, ext in FORMATS.values()}
CONTENT_TYPES_BY_EXTENSION["jpeg"] = "image/jpeg"
ALT_MAX_CHARS = 1000
# A path under the brand's /media/: lower-case segments of letters, digits, ".", "_", "-".
PATH_RE = re.compile(r"^(?:[a-z0-9][a-z0-9._-]{0,99}/){0,5}[a-z0-9][a-z0-9._-]{0,149}$")
PREVIEW_SALT = "publishing.media.preview"
PREVIEW_MAX_AGE = 60 * 60  # seconds a preview's image links work


class MediaInvalid(ValidationError):
    """An upload that is not an image Sourcebook publishes, or alt text it cannot take."""


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    content_type: str
    extension: str
    width: int
    height: int
    size: int


def max_bytes() -> int:
    return int(getattr(settings, "SOURCEBOOK_MEDIA_MAX_BYTES", 10 * 1024 * 1024))


def file_name_of(file) -> str:
    return PurePosixPath(str(getattr(file, "name", "") or "upload").replace("\\", "/")).name


def media_read(file, *, name: str | None = None) -> bytes:
    """The bytes of an upload (a Django File, a file object or bytes), refused past the size
    limit without reading more than it."""
    name = name or file_name_of(file)
    limit = max_bytes()
    if isinstance(file, bytes | bytearray):
        data = bytes(file)
    else:
        size = getattr(file, "size", None)
        if isinstance(size, int) and size > limit:
            raise MediaInvalid(too_big(name, size, limit), code="too_big")
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read(limit + 1)
    if len(data) > limit:
        raise MediaInvalid(too_big(name, None, limit), code="too_big")
    return data


def too_big(name: str, size: int | None, limit: int) -> str:
    shown = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
    return f"{name}: the file is {shown}; images may be at most {limit:,} bytes."


def image_info(data: bytes, name: str) -> ImageInfo:
    """What Pillow makes of ``data``; MediaInvalid naming the file if it is no image we take."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise MediaInvalid(f"{name}: the file is empty.", code="empty")
    accepted = "JPEG, PNG, WebP or GIF"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
                image_format, (width, height) = image.format, image.size
                image.verify()
    except UnidentifiedImageError:
        raise MediaInvalid(
            f"{name}: not an image Sourcebook publishes (it must be {accepted}; the "
            "content decides, not the file name).",
            code="not_an_image",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaInvalid(f"{name}: the image has too many pixels.", code="too_big") from None
    except Exception as error:  # truncated or corrupt data: Pillow raises many kinds
        raise MediaInvalid(
            f"{name}: the image is damaged or incomplete ({error}).", code="damaged"
        ) from None
    if image_format not in FORMATS:
        raise MediaInvalid(f"{name}: {image_format} images are not taken ({accepted}).")
    content_type, extension = FORMATS[image_format]
    return ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        size=len(data),
    )


def alt_clean(brand: Brand, alt: dict | None) -> dict[str, str]:
    """Alt texts by language: the brand's languages only (spelled as the brand does), text
    on one line, empty ones dropped."""
    if alt is None:
        return {}
    if not isinstance(alt, dict):
        raise MediaInvalid("Alt text must be given per language, as {language: text}.")
    cleaned: dict[str, str] = {}
    for language, text in alt.items():
        canonical = brand.canonical_language(str(language))
        if canonical is None:
            raise MediaInvalid(
                f"Alt text in {language!r}: {brand.slug} publishes in "
                f"{', '.join(brand.languages)} only."
            )
        if not isinstance(text, str):
            raise MediaInvalid(f"Alt text in {canonical} must be text.")
        text = " ".join(text.split())
        if len(text) > ALT_MAX_CHARS:
            raise MediaInvalid(
                f"Alt text in {canonical} is longer than {ALT_MAX_CHARS} characters."
            )
        if text:
            cleaned[canonical] = text
    return cleaned


def safe_stem(name: str) -> str:
    stem = PurePosixPath(name).stem
    return slugify(stem)[:60].strip("-_.") or "image"


def storage_name(brand: Brand, path: str) -> str:
    return f"{brand.slug}/{path}"


def media_file_store(name: str, data: bytes) -> None:
    """Put ``data`` at exactly ``name`` in the media storage (kept if already there whole)."""
    storage = media_storage()
    if storage.exists(name):
        if storage.size(name) == len(data):
            with storage.open(name, "rb") as handle:
                if hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest():
                    return
        storage.delete(name)
    saved = storage.save(name, ContentFile(data))
    if saved != name:  # a concurrent writer stored it first
        storage.delete(saved)


def media_validate(file, *, name: str | None = None) -> tuple[bytes, ImageInfo]:
    """An upload's bytes and what they are; MediaInvalid (naming the file) if refused."""
    name = name or file_name_of(file)
    data = media_read(file, name=name)
    return data, image_info(data, name)


def media_upload(*, brand: Brand, file, alt: dict[str, str] | None = None, user) -> MediaAsset:
    """Store an uploaded image of ``brand``; return its asset (``asset.public_url``).

    ``file``: a Django ``UploadedFile``/``File`` or any file object with a name (or bytes).
    ``alt``: {language: text} in the brand's languages. Needs the ``edit`` capability
    (``user=None``: the system). The same bytes again return the same asset, its alt texts
    completed with those given. Raises MediaInvalid (a ValidationError naming the file).
    """
    require(user, brand, EDIT)
    name = file_name_of(file)
    alt = alt_clean(brand, alt)
    data, info = media_validate(file, name=name)
    existing = MediaAsset.objects.filter(brand=brand, sha256=info.sha256).order_by("pk").first()
    if existing is not None:
        return alt_merge(existing, alt)
    path = f"{info.sha256[:16]}-{safe_stem(name)}.{info.extension}"
    return asset_save(brand, path, data, info, alt, user=user, original_name=name)


def media_register(
    *, brand: Brand, path: str, file, alt: dict[str, str] | None = None, user=None
) -> MediaAsset:
    """Store an image at a path of the brand's choosing (``products/x.jpg`` is published at
    ``{base_url}/media/products/x.jpg``), e.g. the demo's, which its graph links. Replaces
    what was at that path. The path's extension must fit the image."""
    require(user, brand, EDIT)
    if not PATH_RE.match(path) or ".." in path:
        raise MediaInvalid(f"{path}: not a media path (lower-case a-z, 0-9, '.', '_', '-', '/').")
    alt = alt_clean(brand, alt)
    data, info = media_validate(file, name=path)
    extension = PurePosixPath(path).suffix.lstrip(".")
    if CONTENT_TYPES_BY_EXTENSION.get(extension) != info.content_type:
        raise MediaInvalid(f"{path}: the file is {info.content_type}, not .{extension}.")
    asset = MediaAsset.objects.filter(brand=brand, path=path).first()
    if asset is not None and asset.sha256 == info.sha256:
        return alt_merge(asset, alt, replace=True)
    return asset_save(
        brand, path, data, info, alt, user=user, original_name=file_name_of(file), asset=asset
    )


def asset_save(
    brand: Brand,
    path: str,
    data: bytes,
    info: ImageInfo,
    alt: dict[str, str],
    *,
    user,
    original_name: str,
    asset: MediaAsset | None = None,
) -> MediaAsset:
    name = storage_name(brand, path)
    media_file_store(name, data)
    fields = {
        "sha256": info.sha256,
        "original_name": original_name[:255],
        "content_type": info.content_type,
        "size": info.size,
        "width": info.width,
        "height": info.height,
        "alt": alt,
    }
    if asset is not None:
        for key, value in fields.items():
            setattr(asset, key, value)
        asset.file.name = name
        asset.save()
        return asset
    try:
        with transaction.atomic():
            asset = MediaAsset(brand=brand, path=path, created_by=user_or_none(user), **fields)
            asset.file.name = name
            asset.save()
    except IntegrityError:  # the same bytes uploaded at the same time
        asset = MediaAsset.objects.get(brand=brand, path=path)
        return alt_merge(asset, alt)
    return asset


def user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def alt_merge(asset: MediaAsset, alt: dict[str, str], *, replace: bool = False) -> MediaAsset:
    merged = dict(alt) if replace else {**asset.alt, **alt}
    if merged != asset.alt:
        asset.alt = merged
        asset.save(update_fields=["alt"])
    return asset


def media_alt_update(*, asset: MediaAsset, alt: dict[str, str], user) -> MediaAsset:
    """Set an asset's alt texts (all of them: a language left out loses its text)."""
    require(user, asset.brand, EDIT)
    return alt_merge(asset, alt_clean(asset.brand, alt), replace=True)


def media_delete(*, asset: MediaAsset, user) -> None:
    """Delete an asset and its file. Releases already made keep their copy (the artifact
    store); the next release no longer has it."""
    require(user, asset.brand, EDIT)
    name = asset.file.name
    asset.delete()
    if not MediaAsset.objects.filter(file=name).exists():
        transaction.on_commit(lambda: media_storage().delete(name))


def media_open(asset: MediaAsset):
    return media_storage().open(asset.file.name, "rb")


def media_bytes(asset: MediaAsset) -> bytes:
    with media_open(asset) as handle:
        return handle.read()


# -- publishing --


def media_artifact_type(path: str) -> str:
    """The content type of a published image, by its extension (which the upload's content
    decided)."""
    extension = PurePosixPath(path).suffix.lstrip(".").lower()
    return CONTENT_TYPES_BY_EXTENSION.get(extension, "application/octet-stream")


def media_prefix(brand: Brand) -> str:
    return f"{brand.base_url}/media/"


def media_published(brand: Brand, paths: Iterable[str]) -> list[MediaAsset]:
    """The assets a release of ``brand`` publishes: those at ``paths``, the paths under
    ``{base_url}/media/`` its published content links (publishing.site finds them).

    Not every upload: an image uploaded for a draft (a product not launched yet) stays
    private until content that shows it is published.
    """
    wanted = set(paths)
    if not wanted:
        return []
    return list(MediaAsset.objects.filter(brand=brand, path__in=wanted).order_by("path"))


# -- the admin preview --


def preview_token(asset: MediaAsset, user) -> str:
    """A link token to one asset for one user, for the preview's sandboxed frame (which
    sends no session cookie): the file view checks the user's permission again."""
    return TimestampSigner(salt=PREVIEW_SALT).sign(f"{asset.pk}.{user.pk}")


def preview_token_user(token: str, asset_pk: int):
    """The user a valid, unexpired token for ``asset_pk`` was made for, else None."""
    from django.contrib.auth import get_user_model

    try:
        value = TimestampSigner(salt=PREVIEW_SALT).unsign(token, max_age=PREVIEW_MAX_AGE)
    except BadSignature:
        return None
    asset, _, user_pk = value.partition(".")
    if asset != str(asset_pk) or not user_pk.isdigit():
        return None
    return get_user_model().objects.filter(pk=int(user_pk), is_active=True).first()
