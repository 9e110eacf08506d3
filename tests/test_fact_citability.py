"""Facts that lean on another fact ("Of that, …", "其中…") are flagged for the editor."""

from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.utils.html import escape

from kb.demo_brand import demo_load
from kb.models import BrandMembership, Fact
from kb.quality import Finding, leaning_findings, leaning_words, statement_findings
from kb.services.brands import membership_grant
from kb.services.entities import entity_create
from kb.services.statements import fact_create


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Of that, 3.1 tonnes were exported.", ["Of that"]),
        ("This figure doubled since 2019.", ["This figure"]),
        ("These gardens are certified organic.", ["These gardens"]),
        ("The above figures are audited.", ["The above figures"]),
        ("The same year, the Hamburg tea room opened.", ["The same year"]),
        ("It also ships to Canada.", ["It"]),
        ("It's grown in Anji.", ["It"]),
        ("This is the largest garden in Hangzhou.", ["This"]),  # a pronoun: no noun quoted
        ("This tea is grown in Anji.", ["This tea"]),  # which tea? "about" is not quoted
        ("In the same year, the tea room opened.", ["In the same year"]),
        ("Since then, output has doubled.", ["Since then"]),
        ("Later that year, the shop opened.", ["Later that year"]),
        ("Its gardens cover 42 hectares.", ["Its gardens"]),
        ("“These gardens” hold a certificate.", ["These gardens"]),  # after a quote mark
        ("The latter was certified in 2020.", ["The latter"]),
        ("Instead, the tea ships in tins.", ["Instead"]),
        ("Also, every lot is tested.", ["Also"]),
        ("The gardens named above are certified.", ["named above"]),
        ("The aforementioned gardens are organic.", ["The aforementioned gardens"]),
        ("It says the above.", ["It", "the above"]),
    ],
)
def test_english_statements_that_lean(text, words):
    assert leaning_words(text=text, language="en") == words


@pytest.mark.parametrize(
    "text",
    [
        "Westlake Leaf was founded in Hangzhou in 1998.",
        "The company farms 42 hectares; it also ships to 31 countries.",  # "it" further in
        "Westlake Leaf produced 9.6 tonnes, of which 3.1 were Longjing.",  # within itself
        "The above-ground parts of the bush are picked.",
        "The former factory in Meijiawu houses the tea room.",  # "former" describes
        "Instead of bags, the tea ships in tins.",  # a preposition, not a connective
        "In addition to Longjing, the company sells white tea.",
        "Besides Longjing, the company sells white tea.",
        "So-called dragon pearls are rolled by hand.",
        "IT services are run from Hamburg.",  # an acronym, not "it"
        "Thistle honey and Italian cups are sold in the shop.",  # whole words only
        "It takes about 36,000 buds to make 500 g of tea.",  # a dummy "it"
        "It is said that the emperor named the tea.",
        "It is customary to pick before Qingming.",
        "We ship to 31 countries.",  # the brand's own voice
        "100% of our Shi Feng Longjing is fried by hand.",
    ],
)
def test_english_statements_that_stand_alone(text):
    assert leaning_words(text=text, language="en") == []


@pytest.mark.parametrize(
    ("text", "language", "words"),
    [
        ("其中3.1吨出口。", "zh-Hans", ["其中"]),
        ("上述茶园持有欧盟有机证书。", "zh-Hans", ["上述"]),
        ("该数字自2019年翻了一番。", "zh-Hans", ["该"]),
        ("这些茶园获得认证。", "zh-Hans", ["这些"]),
        ("此外，公司还出口到加拿大。", "zh-Hans", ["此外"]),
        ("同年，汉堡茶室开业。", "zh-Hans", ["同年"]),
        ("以上茶园均获认证。", "zh-Hans", ["以上"]),
        ("它也出口到加拿大。", "zh-Hans", ["它"]),
        ("「其中」3.1吨出口。", "zh-Hans", ["其中"]),  # after a quote mark
        ("公司在上述保护区内拥有茶园。", "zh-Hans", ["上述"]),  # anywhere
        ("其中3.1噸出口。", "zh-Hant", ["其中"]),
        ("這些茶園獲得認證。", "zh-Hant", ["這些"]),
        ("該數字自2019年翻了一番。", "zh-Hant", ["該"]),
        ("此外，公司還出口到加拿大。", "zh-Hant", ["此外"]),
        ("隨後，漢堡茶室開業。", "zh-Hant", ["隨後"]),
        ("上述茶園持有歐盟有機證書。", "zh", ["上述"]),
    ],
)
def test_chinese_statements_that_lean(text, language, words):
    assert leaning_words(text=text, language=language) == words


@pytest.mark.parametrize(
    "text",
    [
        "西湖叶于1998年在杭州创立。",
        "冰岛茶青采自树龄200年以上的古茶树。",  # 以上 further in: "more than"
        "以上海为基地，公司出口茶叶。",  # 以上海: "with Shanghai"
        "2025产季茶园共产成品茶9.6吨，其中西湖龙井3.1吨。",  # 其中 within itself
        "其实龙井是绿茶。",  # "in fact"
        "也门是新市场之一。",  # Yemen
        "也许是杭州最古老的茶园。",  # "perhaps"
        "同仁堂是公司的客户。",  # a name, not 同年
        "不同年份的茶价格不同。",
        "我们的狮峰龙井100%采用铁锅手工炒制。",  # the brand's own voice
    ],
)
def test_chinese_statements_that_stand_alone(text):
    assert leaning_words(text=text, language="zh-Hans") == []


def test_other_languages_are_not_checked():
    assert leaning_words(text="Davon wurden 3,1 Tonnen exportiert.", language="de") == []
    assert leaning_words(text="Of that, 3.1 tonnes.", language="de") == []


def test_a_leaning_statement_is_one_recommendation_per_language_quoting_the_words():
    statement = {
        "en": "Of that, 3.1 tonnes were exported.",
        "zh-Hans": "公司在上述保护区内拥有茶园。",
        "de": "Davon wurden 3,1 Tonnen exportiert.",
    }
    assert leaning_findings(statement=statement) == [
        Finding(
            "recommendation",
            "/statement/en",
            'The statement starts with "Of that", which leans on another fact: say in the '
            "statement itself what it refers to, so the fact can be quoted alone.",
            "AI citability",
        ),
        Finding(
            "recommendation",
            "/statement/zh-Hans",
            'The statement says "上述", which leans on another fact: say in the statement '
            "itself what it refers to, so the fact can be quoted alone.",
            "AI citability",
        ),
    ]
    assert leaning_findings(statement={"en": "It says the above."})[0].message == (
        'The statement starts with "It" and says "the above", which lean on other facts: say '
        "in the statement itself what they refer to, so the fact can be quoted alone."
    )
    assert leaning_findings(statement={"en": "Westlake Leaf was founded in 1998."}) == []


# --- in the knowledge base and the admin -------------------------------------------------------


@pytest.fixture
def organization(brand):
    return entity_create(
        brand=brand,
        types=["Organization"],
        data={"name": [{"@value": "Acme Tea", "@language": "en"}]},
        iri="https://tea.example/#organization",
    )


@pytest.fixture
def leaning_fact(brand, organization):
    return fact_create(
        brand=brand,
        key="longjing-output",
        about=organization,
        statement={"en": "Of that, 3.1 tonnes were Longjing.", "zh-Hans": "其中龙井3.1吨。"},
        value="3.1",
        unit="t",
        source_url="https://tea.example/report",
        source_title={"en": "Annual report"},
        as_of=date(2025, 12, 31),
    )


@pytest.fixture
def editor(brand):
    user = get_user_model().objects.create_user("ed", password="pw-ed-123", is_staff=True)
    membership_grant(brand=brand, user=user, role=BrandMembership.Role.EDITOR)
    return user


@pytest.mark.django_db
def test_statement_findings_report_a_fact_that_leans(brand, leaning_fact):
    leaning = [
        (obj.key, finding.pointer)
        for obj, finding in statement_findings(brand=brand)
        if "leans on another fact" in finding.message
    ]
    assert leaning == [
        ("longjing-output", "/statement/en"),
        ("longjing-output", "/statement/zh-Hans"),
    ]


@pytest.mark.django_db
def test_fact_admin_shows_the_findings_and_still_saves(client, brand, editor, leaning_fact):
    client.force_login(editor)
    url = f"/admin/kb/fact/{leaning_fact.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "2 recommendations, 0 hints (for the saved text)." in html
    assert (
        escape(
            'The statement starts with "Of that", which leans on another fact: say in the '
            "statement itself what it refers to, so the fact can be quoted alone."
        )
        in html
    )
    assert escape('The statement starts with "其中"') in html
    assert "<code>/statement/zh-Hans</code>" in html
    # Advice only: a statement that still leans saves, and the page then shows the new text's.
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data |= {"about": leaning_fact.about_id, "p__statement__en": "These gardens grew 3.1 t."}
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    leaning_fact.refresh_from_db()
    assert leaning_fact.statement["en"] == "These gardens grew 3.1 t."
    assert escape('The statement starts with "These gardens"') in client.get(url).content.decode()


@pytest.mark.django_db
def test_fact_admin_says_when_there_is_nothing_to_report(client, brand, editor, organization):
    fact = fact_create(
        brand=brand,
        key="founded",
        about=organization,
        statement={"en": "Acme Tea was founded in 1998.", "zh-Hans": "Acme茶于1998年创立。"},
        value="1998",
        source_url="https://tea.example/about",
        source_title={"en": "About"},
        as_of=date(2025, 12, 31),
    )
    client.force_login(editor)
    html = client.get(f"/admin/kb/fact/{fact.pk}/change/").content.decode()
    assert "0 recommendations, 0 hints (for the saved text)." in html
    assert "<li>Nothing to report.</li>" in html
    assert Fact.objects.get(pk=fact.pk).version == 1


@pytest.mark.django_db
def test_the_demo_brand_has_no_fact_that_leans():
    brand = demo_load()["brand"]
    assert Fact.objects.filter(brand=brand).count() == 36
    assert [
        (obj.key, finding.pointer, finding.message)
        for obj, finding in statement_findings(brand=brand)
        if finding.level == "recommendation"
    ] == []
