from django.core.management.base import CommandError

from kb.models import Brand


def get_brand(slug: str) -> Brand:
    try:
        return Brand.objects.get(slug=slug)
    except Brand.DoesNotExist:
        known = ", ".join(Brand.objects.values_list("slug", flat=True)) or "none yet"
        raise CommandError(f"No brand {slug!r} (brands: {known}).") from None
