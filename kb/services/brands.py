"""Creating brands and giving people roles in them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from kb.models import Brand, BrandMembership


@transaction.atomic
def brand_create(*, slug: str, name: str, base_url: str, languages: list[str]) -> Brand:
    brand = Brand(slug=slug, name=name, base_url=base_url.rstrip("/"), languages=list(languages))
    try:
        brand.full_clean()
    except ValidationError as error:
        raise ValidationError(
            "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
        ) from None
    brand.save()
    return brand


@transaction.atomic
def membership_grant(*, brand: Brand, user, role: str) -> BrandMembership:
    membership, _ = BrandMembership.objects.update_or_create(
        brand=brand, user=user, defaults={"role": role}
    )
    return membership
