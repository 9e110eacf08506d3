"""What to look for in answers: the brand's names and domains, competitors, checkable facts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from kb.models import Brand, Entity, Fact
from visibility.analysis import DATE, NUMBER, YEAR, FactClaim, TrackedBrand
from visibility.models import PromptSet

# Facts are checked when their topic is known: the words that introduce it, in English and
# Chinese, and the kind of value. Matched on the fact's key (e.g. "founded", "employees").
FACT_TOPICS: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = (
    (("founded", "founding", "established"), YEAR,
     ("founded", "established", "since", "started", "成立", "创立", "创办", "创建", "始于")),
    (("employees", "staff", "headcount"), NUMBER,
     ("employs", "employees", "employ", "staff", "people", "workers", "员工", "雇员", "职工")),
    (("garden-area", "hectares", "area"), NUMBER,
     ("hectares", "hectare", "ha", "tea gardens", "公顷", "茶园")),
    (("countries",), NUMBER, ("countries", "国家")),
    (("opened", "opening"), DATE, ("opened", "opening", "开业", "开幕")),
)  # fmt: skip
UNIT_WORDS = {"people": "", "ha": "hectares", "countries": "countries"}


def brand_names(brand: Brand) -> tuple[str, ...]:
    """The brand's name and its organization's names and aliases, in every language."""
    names = [brand.name]
    organization = (
        Entity.objects.filter(brand=brand, iri=f"{brand.base_url}/#organization").first()
        or Entity.objects.filter(brand=brand, primary_type="Organization").first()
    )
    if organization is not None:
        for prop in ("name", "alternateName", "legalName"):
            names += [
                v["@value"]
                for v in organization.data.get(prop, [])
                if isinstance(v, dict) and isinstance(v.get("@value"), str)
            ]
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


def fact_claim(fact_key: str, value: str, unit: str) -> FactClaim | None:
    for keys, kind, cues in FACT_TOPICS:
        if not any(k in fact_key for k in keys):
            continue
        if kind == YEAR and not re.fullmatch(r"1\d{3}|20\d{2}", value):
            continue
        if kind == DATE and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            continue
        if kind == NUMBER and not re.fullmatch(r"\d+(\.\d+)?", value):
            continue
        return FactClaim(
            key=fact_key, kind=kind, value=value, cues=cues, unit=UNIT_WORDS.get(unit, unit)
        )
    return None


def fact_claims(brand: Brand) -> list[FactClaim]:
    """The brand's published facts whose values answers can be checked against."""
    claims = []
    for key, content in (
        Fact.objects.filter(brand=brand, live_revision__isnull=False)
        .order_by("key")
        .values_list("key", "live_revision__content")
    ):
        claim = fact_claim(key, str(content.get("value") or ""), str(content.get("unit") or ""))
        if claim is not None:
            claims.append(claim)
    return claims
