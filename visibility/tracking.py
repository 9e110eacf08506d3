"""What to look for in answers: the brand's names and domains, competitors, checkable facts."""

from __future__ import annotations

from urllib.parse import urlsplit

from kb.models import Brand, Entity, Fact
from visibility.analysis import FactClaim, TrackedBrand
from visibility.fact_cues import fact_claims_of
from visibility.models import PromptSet


def brand_organization(brand: Brand) -> Entity | None:
    return (
        Entity.objects.filter(brand=brand, iri=f"{brand.base_url}/#organization").first()
        or Entity.objects.filter(brand=brand, primary_type="Organization").first()
    )


def entity_names(entity: Entity) -> list[str]:
    """An entity's names and aliases, in every language."""
    return [
        value["@value"]
        for prop in ("name", "alternateName", "legalName")
        for value in entity.data.get(prop, [])
        if isinstance(value, dict) and isinstance(value.get("@value"), str)
    ]


def brand_names(brand: Brand) -> tuple[str, ...]:
    """The brand's name and its organization's names and aliases, in every language."""
    organization = brand_organization(brand)
    names = [brand.name, *(entity_names(organization) if organization is not None else [])]
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))


def brand_domains(brand: Brand) -> tuple[str, ...]:
    host = urlsplit(brand.base_url).hostname or ""
    return (host.removeprefix("www."),) if host else ()


def tracked_brand(brand: Brand) -> TrackedBrand:
    return TrackedBrand(key=brand.slug, names=brand_names(brand), domains=brand_domains(brand))


def tracked_competitors(prompt_set: PromptSet) -> list[TrackedBrand]:
    out = []
    for competitor in prompt_set.competitors or []:
        if not isinstance(competitor, dict):
            continue  # stored before validation existed: skip rather than fail the run
        names = (competitor.get("name", ""), *competitor.get("aliases", []))
        out.append(
            TrackedBrand(
                key=competitor.get("name", ""),
                names=tuple(n for n in names if n),
                domains=tuple(competitor.get("domains", [])),
            )
        )
    return out


def fact_claims(brand: Brand) -> list[FactClaim]:
    """The brand's published facts whose values answers can be checked against."""
    published = list(
        Fact.objects.filter(brand=brand, live_revision__isnull=False)
        .order_by("key")
        .values_list("live_revision__content", flat=True)
    )
    about_ids = {content.get("about") for content in published}
    subjects = {
        entity.pk: tuple(dict.fromkeys(entity_names(entity)))
        for entity in Entity.objects.filter(brand=brand, pk__in=about_ids)
    }
    organization = brand_organization(brand)
    return fact_claims_of(
        published,
        brand_names=brand_names(brand),
        subjects=subjects,
        organization_id=organization.pk if organization is not None else None,
        languages=tuple(brand.languages),
    )
