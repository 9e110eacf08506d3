"""Every fact with a value is checked against AI answers: numbers with units (converted),
percentages, ranges, dates and periods, in English and Chinese (numerals, 万, full-width
digits), each matched to its fact by subject and cue words.

The claims are built from the demo brand's own published facts, as a run builds them; the
answers are what engines write.
"""

from __future__ import annotations

import json
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from kb.demo_brand import DEMO_DIR
from kb.models import Fact
from kb.services.entities import entity_create
from kb.services.errors import InvalidContent
from kb.services.statements import statement_create, statement_update
from kb.services.workflow import object_publish
from visibility.analysis import Misstatement, check_facts
from visibility.fact_cues import fact_claims_of, fact_kind, head_words, unit_spellings
from visibility.models import Answer
from visibility.numerals import numerals_as_digits
from visibility.scripted_engine import Reply, RuleScript, ScriptedEngine
from visibility.services import engine_save, prompt_set_save
from visibility.tracking import fact_claims

ORGANIZATION = "https://www.westlakeleaf.example/#organization"
SUBJECTS = {
    "https://www.westlakeleaf.example/products/longjing-shifeng-pre-qingming/#product": (
        "Shi Feng Longjing", "狮峰龙井"),
    "https://www.westlakeleaf.example/products/longjing-meijiawu/#product": (
        "Meijiawu Longjing", "梅家坞龙井"),
    "https://www.westlakeleaf.example/products/anji-bai-cha/#product": ("Anji Bai Cha", "安吉白茶"),
    "https://www.westlakeleaf.example/stores/hamburg-speicherstadt/#store": (
        "Hamburg tea room", "汉堡茶室"),
    "https://www.westlakeleaf.example/people/chen-mingyu/#person": ("Chen Mingyu", "陈明宇"),
}  # fmt: skip
BRAND_NAMES = ("Westlake Leaf", "西湖叶")
COMPETITORS = ("Lu Yu Tea", "Ten Fu Tea", "天福茗茶")


def slug_name(iri):
    """A name for the subjects the tests do not name: "…/products/jiuqu-hongmei/#product" →
    "Jiuqu Hongmei"."""
    return (iri.split("/#")[0].rsplit("/", 1)[-1].replace("-", " ").title(),)


def demo_claims():
    facts = json.loads((DEMO_DIR / "facts.json").read_text(encoding="utf-8"))
    iris = list(dict.fromkeys([ORGANIZATION, *(fact["about"] for fact in facts)]))
    ids = {iri: index for index, iri in enumerate(iris)}
    contents = [
        fact | {"about": ids[fact["about"]], "source_url": fact["source"]["url"]} for fact in facts
    ]
    return fact_claims_of(
        contents,
        brand_names=BRAND_NAMES,
        subjects={ids[iri]: SUBJECTS.get(iri) or slug_name(iri) for iri in iris[1:]},
        organization_id=0,
        languages=("en", "zh-Hans"),
    )


CLAIMS = demo_claims()
SOURCES = {claim.key: claim.source_url for claim in CLAIMS}


def check(text):
    result = check_facts(text, CLAIMS, COMPETITORS)
    return [(m.fact_key, m.stated, m.expected) for m in result.misstated], result.confirmed


def test_numbers_in_words_become_digits():
    assert numerals_as_digits("公司作坊有七位持证炒茶师") == "公司作坊有7位持证炒茶师"
    assert numerals_as_digits("约三万六千个芽，年产1.2万吨，出口占百分之三十八") == (
        "约36000个芽，年产12000吨，出口占38%"
    )
    assert numerals_as_digits("两到三个工作日") == "2到3个工作日"
    assert numerals_as_digits("forty-two hectares, 2.5 million visitors") == (
        "42 hectares, 2500000 visitors"
    )


def test_every_fact_with_a_value_is_checked():
    kinds = {claim.key: claim.kind for claim in CLAIMS}
    # 36 demo facts: all but two without a value (usda-organic, gi-protected) and the
    # certificate number (eu-organic) are checked.
    assert len(kinds) == 33
    assert {k: kinds[k] for k in ("founded", "export-share", "pre-qingming-picking",
                                  "shipping-days-eu", "annual-output")} == {
        "founded": "year", "export-share": "percent", "pre-qingming-picking": "date",
        "shipping-days-eu": "number", "annual-output": "number",
    }  # fmt: skip
    assert "eu-organic" not in kinds and fact_kind("CN-BIO-140", "") is None
    assert fact_kind("2026-03-18/2026-04-04", "") == "date"
    assert fact_kind("2-3", "business days") == "number"


def test_units_are_spelled_in_each_language_and_heads_come_from_the_statement():
    assert unit_spellings("t", {}, ("en", "zh-Hans")) == (
        "t", "tonne", "tonnes", "metric ton", "metric tons", "公吨", "吨",
    )  # fmt: skip
    assert unit_spellings("countries", {"zh-Hans": "个国家"}, ("en",)) == (
        "countries", "个国家", "country",
    )  # fmt: skip
    assert head_words("Seven certified tea-frying masters work in the workshop.", "7") == [
        "masters"
    ]
    assert head_words("公司作坊有七位持证炒茶师。", "7") == ["茶师"]
    assert head_words("Westlake Leaf employs 86 people.", "86", ("people",)) == []


@pytest.mark.parametrize(
    ("answer", "misstated", "confirmed"),
    [
        # Chinese numerals, 万 and full-width digits
        ("西湖叶共有一百二十名员工。", [("employees", "120", "86")], []),
        ("西湖叶年产成品茶1.2万吨。", [("annual-output", "12000", "9.6")], []),
        ("西湖叶拥有４２公顷自有茶园。", [], ["garden-area"]),
        ("西湖叶的产品销往三十一个国家。", [], ["export-countries"]),
        # English number words and a custom unit taken from the statement
        ("Westlake Leaf has twelve tea-frying masters.", [("tea-masters", "12", "7")], []),
        ("Westlake Leaf has seven tea masters.", [], ["tea-masters"]),
        # Percentages, in figures and in words
        ("Exports make up 45% of Westlake Leaf's revenue.", [("export-share", "45%", "38%")], []),
        ("西湖叶出口占营收的百分之四十五。", [("export-share", "45%", "38%")], []),
        ("Meijiawu Longjing has 2.9 percent caffeine.", [], ["longjing-caffeine"]),
        # Units converted; a hedged answer rounds
        ("Westlake Leaf produced 9,600 kg of finished tea.", [], ["annual-output"]),
        ("Westlake Leaf produced 12,000 kg of finished tea.",
         [("annual-output", "12,000 kg", "9.6")], []),
        ("Westlake Leaf produces about 10 tonnes of finished tea a year.", [], ["annual-output"]),
        ("Westlake Leaf produces 10 tonnes of finished tea a year.",
         [("annual-output", "10", "9.6")], []),
        # Ranges: a range stated, a value inside the fact's range
        ("Orders within the EU arrive in 4–5 business days.",
         [("shipping-days-eu", "4–5", "2-3")], []),
        ("欧盟境内订单两到三个工作日送达。", [], ["shipping-days-eu"]),
        ("Orders within the EU arrive in 3 business days.", [], ["shipping-days-eu"]),
        ("Orders to the United States arrive in 10 business days.",
         [("shipping-days-us", "10", "6")], []),
        # Dates and periods, with and without the year
        ("Shi Feng Longjing was picked between 1 March and 4 April 2026.",
         [("pre-qingming-picking", "2026-03-01/2026-04-04", "2026-03-18/2026-04-04")], []),
        ("狮峰龙井于3月18日至4月4日采摘。", [], ["pre-qingming-picking"]),
        ("汉堡茶室于二〇二一年五月十二日开业。", [], ["hamburg-opened"]),
        ("The Hamburg tea room opened on 12 May 2022.",
         [("hamburg-opened", "2022-05-12", "2021-05-12")], []),
        # Two facts of one kind in a sentence: each value goes to the fact it is about
        ("Westlake Leaf produced 9.6 tonnes of tea in 2025, including 4 tonnes of West Lake "
         "Longjing.", [("longjing-output", "4", "3.1")], ["annual-output"]),
        # The subject decides: a competitor's founding year, another product's caffeine
        ("Lu Yu Tea was founded in 1921.", [], []),
        ("Anji Bai Cha has 3.5% caffeine.", [], []),
        ("Chen Mingyu has hand-fried Longjing since 1990.",
         [("founder-experience", "1990", "1984")], []),
    ],
)  # fmt: skip
def test_answers_are_checked_against_any_fact(answer, misstated, confirmed):
    assert check(answer) == (misstated, confirmed)


def test_a_misstatement_carries_the_sentence_and_the_facts_source():
    text = "Meijiawu Longjing is a classic. It has 3.5% caffeine by dry weight."
    assert check_facts(text, CLAIMS, COMPETITORS).misstated == [
        Misstatement(
            fact_key="longjing-caffeine",
            stated="3.5%",
            expected="2.9%",
            excerpt="It has 3.5% caffeine by dry weight.",
            source_url=SOURCES["longjing-caffeine"],
        )
    ]
    assert SOURCES["longjing-caffeine"].startswith("https://")


# --- The fact's cue words, as the editor sets them, and a run that uses them ---------------


def text(value, language="en"):
    return [{"@value": value, "@language": language}]


@pytest.fixture
def tea_brand(brand):
    organization = entity_create(
        brand=brand, types=["Organization"], iri="https://tea.example/#organization",
        data={"name": text("Acme Tea") + text("阿克米茶", "zh-Hans")},
    )  # fmt: skip
    product = entity_create(
        brand=brand, types=["Product"], iri="https://tea.example/products/longjing/#product",
        data={"name": text("Longjing") + text("龙井", "zh-Hans"),
              "image": [{"@id": "https://tea.example/img/longjing.jpg"}]},
    )  # fmt: skip
    for obj in (organization, product):
        object_publish(obj=obj)
    facts = {}
    for key, about, value, unit, words in (
        ("shops", organization, "12", "shops", {"en": "Acme Tea runs 12 shops."}),
        ("caffeine", product, "2.9", "%", {"en": "Longjing has 2.9% caffeine.",
                                            "zh-Hans": "龙井咖啡因含量为2.9%。"}),
    ):  # fmt: skip
        facts[key] = statement_create(
            model=Fact, brand=brand, key=key, about=about, statement=words, value=value,
            unit=unit, source_url=f"https://tea.example/facts/{key}/",
            source_title={"en": "Facts"}, as_of=date(2026, 1, 1),
        )  # fmt: skip
        object_publish(obj=facts[key])
    return brand, facts


def test_the_editor_sets_cue_words_and_bad_ones_are_refused(tea_brand):
    brand, facts = tea_brand
    shops = {claim.key: claim for claim in fact_claims(brand)}["shops"]
    assert (shops.cues, shops.cue_stems, shops.subjects) == ((), ("run",), ("Acme Tea", "阿克米茶"))
    fact = statement_update(
        obj=facts["shops"], expected_version=None, check_cues=["stores", "门店"]
    )
    object_publish(obj=fact)
    shops = {claim.key: claim for claim in fact_claims(brand)}["shops"]
    assert (shops.cues, shops.cue_stems) == (("stores", "门店"), ())
    with pytest.raises(InvalidContent) as error:
        statement_update(obj=fact, expected_version=None, check_cues=["ok", "x" * 51, 3])
    assert [(p.pointer, p.message) for p in error.value.problems] == [
        ("/check_cues/1", "a cue is at most 50 characters, not 51"),
        ("/check_cues/2", "must be a word or phrase"),
    ]
    assert Fact.objects.get(pk=fact.pk).check_cues == ["stores", "门店"]


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1"]


def test_a_run_finds_a_misstatement_in_chinese_numerals_with_its_source(tea_brand):
    brand, _ = tea_brand
    prompt_set_save(brand=brand, name="买茶", language="zh-Hans", prompts=["龙井咖啡因高吗？"],
                    competitors=[{"name": "Ten Fu Tea"}], repetitions=1)  # fmt: skip
    script = RuleScript(
        [("gpt-test", "咖啡因", Reply("阿克米茶的龙井咖啡因含量约为百分之三点五。"))]
    )
    with ScriptedEngine(script) as server:
        engine_save(brand=brand, name="Alpha", base_url=server.base_url, model="gpt-test")
        call_command("visibility_run", "acme-tea", stdout=StringIO(), stderr=StringIO())
    answer = Answer.objects.get()
    assert answer.misstatements == [
        {
            "fact_key": "caffeine",
            "stated": "3.5%",
            "expected": "2.9%",
            "excerpt": "阿克米茶的龙井咖啡因含量约为百分之三点五。",
            "source_url": "https://tea.example/facts/caffeine/",
        }
    ]


def test_an_editor_types_cue_words_on_one_line_in_the_admin(tea_brand, client):
    from django.contrib.auth import get_user_model

    from kb.models import BrandMembership
    from kb.services.brands import membership_grant

    brand, facts = tea_brand
    editor = get_user_model().objects.create_user("ed", password="pw-ed-123", is_staff=True)
    membership_grant(brand=brand, user=editor, role=BrandMembership.Role.EDITOR)
    client.force_login(editor)
    url = f"/admin/kb/fact/{facts['shops'].pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    saved = client.post(url, data | {"check_cues": "stores, 门店、shops"})
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    fact = Fact.objects.get(pk=facts["shops"].pk)
    assert fact.check_cues == ["stores", "门店", "shops"]
    assert fact.latest_revision.content["check_cues"] == ["stores", "门店", "shops"]
    page = client.get(url).content.decode()
    assert 'value="stores, 门店, shops"' in page
    refused = client.post(url, data | {"check_cues": "ok, " + "x" * 51, "version": fact.version})
    assert refused.status_code == 200
    assert "a cue is at most 50 characters, not 51" in refused.content.decode()
    assert Fact.objects.get(pk=fact.pk).check_cues == ["stores", "门店", "shops"]
