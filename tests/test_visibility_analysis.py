"""Reading AI answers for a brand: mentions, citations, rank and facts (no database)."""

from __future__ import annotations

import json

from visibility.analysis import (
    Analysis,
    FactCheck,
    FactClaim,
    Misstatement,
    TrackedBrand,
    analyse,
    check_facts,
    find_citations,
    find_mentions,
    find_misstatements,
    normalize,
)

WESTLAKE = TrackedBrand(
    key="westlake-leaf",
    names=("Westlake Leaf Tea", "Westlake Leaf", "西湖叶茶"),
    domains=("westlakeleaf.example",),
)
TEAVANA = TrackedBrand(
    key="competitor:teavana", names=("Teavana", "茶瓦纳"), domains=("teavana.example",)
)
TWININGS = TrackedBrand(key="competitor:twinings", names=("Twinings", "川宁"))

FOUNDED = FactClaim(
    key="founded",
    kind="year",
    value="1998",
    cues=("founded", "established", "since", "成立", "创立", "创建"),
)
LAUNCHED = FactClaim(
    key="launched", kind="date", value="2026-03-01", cues=("launched", "launch", "上市", "发布")
)
EMPLOYEES = FactClaim(
    key="employees",
    kind="number",
    value="86",
    cues=("employees", "employs", "staff", "员工"),
    unit="employees",
)
HEADQUARTERS = FactClaim(
    key="headquarters",
    kind="place",
    value="Hangzhou",
    cues=("headquartered", "based", "headquarters", "总部"),
    alternatives=("杭州",),
)
FACTS = [FOUNDED, LAUNCHED, EMPLOYEES, HEADQUARTERS]


def misstated(text: str, *facts: FactClaim) -> list[tuple[str, str, str]]:
    return [(m.fact_key, m.stated, m.expected) for m in find_misstatements(text, list(facts))]


def confirmed(text: str, *facts: FactClaim) -> list[str]:
    return check_facts(text, list(facts)).confirmed


# --- normalize -------------------------------------------------------------------------------


def test_normalize_folds_full_width_text_and_ideographic_spaces():
    assert normalize("ＷＥＳＴＬＡＫＥ　ＬＥＡＦ　１２３") == "westlake leaf 123"


def test_normalize_strips_accents():
    assert normalize("Café Lumière") == "cafe lumiere"
    assert normalize("CAFÉ  LUMIÈRE") == "cafe lumiere"
    assert normalize("Zürich İstanbul Straße") == "zurich istanbul strasse"


def test_normalize_keeps_cjk_and_kana_intact():
    assert normalize("西湖叶茶 １９９８年 がぎ 서울") == "西湖叶茶 1998年 がぎ 서울"


def test_normalize_collapses_whitespace_and_folds_apostrophes():
    assert normalize("  Westlake \n\t Leaf\u2019s\u200b  tea  ") == "westlake leaf's tea"


# --- find_mentions ---------------------------------------------------------------------------


def test_mentions_in_english_count_the_longest_own_name_once():
    text = "Westlake Leaf Tea is good. Try Westlake Leaf's green tea."
    assert normalize(text) == text.lower()
    assert find_mentions(text, WESTLAKE) == [0, 31]


def test_mentions_do_not_match_inside_longer_words():
    leaf = TrackedBrand(key="leaf", names=("Leaf",))
    acme = TrackedBrand(key="acme", names=("Acme",))
    assert find_mentions("Leafy greens and leaflets", leaf) == []
    assert find_mentions("Acmeville has an Acme store, and Acme's tea.", acme) == [17, 33]
    assert find_mentions("The Acme3 and 3Acme models", acme) == []


def test_mentions_of_full_width_and_upper_case_names():
    assert find_mentions("推荐ＷＥＳＴＬＡＫＥ　ＬＥＡＦ。", WESTLAKE) == [2]
    assert find_mentions("WESTLAKE LEAF TEA and westlake leaf", WESTLAKE) == [0, 22]


def test_mentions_ignore_accents_both_ways():
    cafe = TrackedBrand(key="cafe", names=("Café Lumière",))
    assert find_mentions("Visit cafe lumiere or CAFÉ LUMIÈRE.", cafe) == [6, 22]
    plain = TrackedBrand(key="plain", names=("Cafe Lumiere",))
    assert find_mentions("Café Lumière", plain) == [0]


def test_mentions_allow_any_whitespace_or_hyphen_inside_names():
    text = "Westlake-Leaf, Westlake   Leaf and Westlake\nLeaf"
    assert find_mentions(text, WESTLAKE) == [0, 15, 33]
    assert find_mentions("WestlakeLeaf", WESTLAKE) == []


def test_mentions_in_chinese_match_as_substrings():
    text = "我推荐西湖叶茶。西湖叶茶的龙井很好，Westlake Leaf的价格也合理。"
    assert find_mentions(text, WESTLAKE) == [3, 8, 18]


def test_no_mentions():
    assert find_mentions("Teavana and Twinings are popular.", WESTLAKE) == []
    assert find_mentions("", WESTLAKE) == []


# --- find_citations --------------------------------------------------------------------------


def test_citations_from_the_engines_list_include_subdomains_only_of_the_brands_domain():
    citations = [
        "https://www.westlakeleaf.example/",
        "https://other.example/westlakeleaf.example",
        "https://shop.westlakeleaf.example/teas/longjing?lang=en",
        "https://notwestlakeleaf.example/",
        "https://westlakeleaf.example.evil.test/",
        "mailto:press@westlakeleaf.example",
        "not a url",
        "",
    ]
    assert find_citations("No links here.", citations, WESTLAKE.domains) == [
        "https://www.westlakeleaf.example/",
        "https://shop.westlakeleaf.example/teas/longjing?lang=en",
    ]


def test_citations_written_in_the_text():
    text = (
        "See westlakeleaf.example/tea, or https://www.westlakeleaf.example/about. "
        "Not notwestlakeleaf.example, nor press@westlakeleaf.example. 详见shop.westlakeleaf.example/茶。"
    )
    assert find_citations(text, [], WESTLAKE.domains) == [
        "westlakeleaf.example/tea",
        "https://www.westlakeleaf.example/about",
        "shop.westlakeleaf.example/",
    ]


def test_citations_from_the_list_come_first_and_each_page_once():
    text = "Sources: https://westlakeleaf.example/tea/ and WestlakeLeaf.example."
    citations = ["https://teavana.example/", "http://westlakeleaf.example/tea#harvest"]
    assert find_citations(text, citations, WESTLAKE.domains) == [
        "http://westlakeleaf.example/tea#harvest",
        "WestlakeLeaf.example",
    ]


def test_citations_of_full_width_addresses_and_domains_given_as_urls():
    text = "官网：ｗｅｓｔｌａｋｅｌｅａｆ．ｅｘａｍｐｌｅ"
    assert find_citations(text, [], ["https://www.westlakeleaf.example/"]) == [
        "westlakeleaf.example"
    ]


def test_no_citations():
    assert (
        find_citations(
            "See https://teavana.example/.", ["https://teavana.example/"], WESTLAKE.domains
        )
        == []
    )
    assert find_citations("See https://westlakeleaf.example/.", [], ()) == []


# --- facts: years ----------------------------------------------------------------------------


def test_wrong_founding_year_in_english_is_flagged():
    text = "Westlake Leaf is a tea brand. It was founded in 2005 in Hangzhou."
    assert find_misstatements(text, [FOUNDED]) == [
        Misstatement(
            fact_key="founded",
            stated="2005",
            expected="1998",
            excerpt="It was founded in 2005 in Hangzhou.",
        )
    ]


def test_wrong_founding_year_in_chinese_is_flagged():
    text = "西湖叶茶是一家茶企。西湖叶茶成立于2005年，总部在杭州。"
    assert find_misstatements(text, [FOUNDED]) == [
        Misstatement("founded", "2005", "1998", "西湖叶茶成立于2005年，总部在杭州。")
    ]
    # NFKC turns "，" into ",": a year right after a Chinese comma is still a year.
    assert misstated("总部在杭州，２００５年成立。", FOUNDED) == [("founded", "2005", "1998")]


def test_correct_founding_year_is_confirmed():
    text = "Westlake Leaf was founded in 1998. 西湖叶茶创立于１９９８年。"
    assert check_facts(text, [FOUNDED]) == FactCheck(misstated=[], confirmed=["founded"])


def test_a_sentence_stating_the_correct_year_is_correct_whatever_else_it_says():
    text = "Founded in 1998, the company opened its 2005 flagship store."
    assert check_facts(text, [FOUNDED]) == FactCheck(misstated=[], confirmed=["founded"])


def test_cue_without_a_value_and_years_in_unrelated_sentences_are_not_flagged():
    text = (
        "Westlake Leaf was founded by a family of growers. "
        "Its 2005 harvest won a prize. Since then it has grown."
    )
    assert check_facts(text, [FOUNDED]) == FactCheck(misstated=[], confirmed=[])


def test_decades_are_not_years():
    assert misstated("It was founded in the 1990s.", FOUNDED) == []


def test_year_fact_given_as_a_date_compares_the_year():
    fact = FactClaim(key="founded", kind="year", value="1998-05-01", cues=("founded",))
    assert confirmed("Founded in 1998.", fact) == ["founded"]
    assert misstated("Founded in 1999.", fact) == [("founded", "1999", "1998")]


def test_the_wrong_year_closest_to_the_cue_is_the_one_reported():
    text = "With 1500 staff today, the company was founded in 2005."
    assert misstated(text, FOUNDED) == [("founded", "2005", "1998")]


# --- facts: dates ----------------------------------------------------------------------------


def test_wrong_launch_date_is_flagged_as_an_iso_date():
    text = "The spring collection launched on March 15th, 2026! 新品于2026年3月5日发布。"
    assert misstated(text, LAUNCHED) == [
        ("launched", "2026-03-15", "2026-03-01"),
        ("launched", "2026-03-05", "2026-03-01"),
    ]


def test_correct_launch_date_in_every_format_is_confirmed():
    for text in (
        "It launched on 1 March 2026.",
        "It launched on the 1st of March, 2026.",
        "It launched on Mar. 1, 2026.",
        "Launch date: 2026-03-01.",
        "新品于２０２６年３月１日上市。",
    ):
        assert check_facts(text, [LAUNCHED]) == FactCheck(misstated=[], confirmed=["launched"])


def test_a_year_alone_does_not_check_a_date():
    assert check_facts("It launched in 2025.", [LAUNCHED]) == FactCheck([], [])


def test_impossible_dates_are_ignored():
    assert check_facts("It launched on 2026-02-30.", [LAUNCHED]) == FactCheck([], [])


# --- facts: numbers --------------------------------------------------------------------------


def test_wrong_head_count_is_flagged():
    text = "Westlake Leaf employs 120 people and runs 3 shops. 公司现有员工120人。"
    assert misstated(text, EMPLOYEES) == [
        ("employees", "120", "86"),
        ("employees", "120", "86"),
    ]
    assert [m.excerpt for m in find_misstatements(text, [EMPLOYEES])] == [
        "Westlake Leaf employs 120 people and runs 3 shops.",
        "公司现有员工120人。",
    ]


def test_numbers_followed_by_the_unit_count_even_with_thousands_separators():
    assert misstated("It has 1,200 full-time employees.", EMPLOYEES) == [
        ("employees", "1,200", "86")
    ]
    assert misstated("It has 2000 employees.", EMPLOYEES) == [("employees", "2000", "86")]


def test_correct_head_count_is_confirmed_despite_other_numbers():
    text = "It has 86 employees working 120 hectares. 公司拥有86名员工。"
    assert check_facts(text, [EMPLOYEES]) == FactCheck(misstated=[], confirmed=["employees"])


def test_numbers_that_are_not_the_head_count_are_not_flagged():
    text = (
        "Westlake Leaf employs local growers. It sells 120 teas. "
        "Its staff has grown since 2005. 90% of employees are tea farmers."
    )
    assert check_facts(text, [EMPLOYEES]) == FactCheck(misstated=[], confirmed=[])


def test_number_without_a_unit_counts_any_number_in_a_cue_sentence():
    shops = FactClaim(key="shops", kind="number", value="12", cues=("shops", "门店"))
    assert misstated("Today it runs 15 shops across China.", shops) == [("shops", "15", "12")]
    assert confirmed("It has 12.0 shops.", shops) == ["shops"]
    assert confirmed("全国共有12家门店。", shops) == ["shops"]


# --- facts: places ---------------------------------------------------------------------------


def test_wrong_headquarters_is_flagged_in_english_and_chinese():
    text = "Westlake Leaf is headquartered in New York City. 西湖叶茶总部位于上海的徐汇区。"
    assert misstated(text, HEADQUARTERS) == [
        ("headquarters", "New York City", "Hangzhou"),
        ("headquarters", "上海", "Hangzhou"),
    ]


def test_correct_headquarters_is_confirmed_by_any_of_its_names():
    for text in (
        "The company is based in Hangzhou, China.",
        "A Hangzhou-based brand, its headquarters overlook West Lake.",
        "西湖叶茶的总部在杭州市西湖区。",
    ):
        assert check_facts(text, [HEADQUARTERS]) == FactCheck([], ["headquarters"])


def test_places_are_read_conservatively():
    text = (
        "Its headquarters were renovated in 2020. It is based in the south of China. "
        "Its shops are in Shanghai. Its headquarters opened in March."
    )
    assert check_facts(text, [HEADQUARTERS]) == FactCheck([], [])


# --- facts: general --------------------------------------------------------------------------


def test_excerpts_are_the_original_sentence_trimmed_to_200_characters():
    text = "ＷＥＳＴＬＡＫＥ Leaf was founded in 2005 " + "and it grows tea " * 20 + "."
    [misstatement] = find_misstatements(text, [FOUNDED])
    assert misstatement.excerpt == (text[:199].rstrip() + "…")
    assert len(misstatement.excerpt) == 200
    assert misstatement.excerpt.startswith("ＷＥＳＴＬＡＫＥ Leaf was founded in 2005 and")


def test_a_misstatement_repeated_in_two_sentences_is_reported_for_each():
    text = "Founded in 2005.\nFounded in 2005, it grew.\nFounded in 2005."
    assert [m.excerpt for m in find_misstatements(text, [FOUNDED])] == [
        "Founded in 2005.",
        "Founded in 2005, it grew.",
    ]


def test_facts_of_unknown_kinds_are_not_checked():
    motto = FactClaim(key="motto", kind="text", value="Leaf first", cues=("motto",))
    assert check_facts("Its motto is 1998.", [motto, FOUNDED]) == FactCheck([], [])


# --- analyse ---------------------------------------------------------------------------------

ENGLISH_ANSWER = """Here are some good tea brands:

1. **Teavana** - widely available.
2. **Westlake Leaf Tea** - a Hangzhou-based brand founded in 2005, Westlake Leaf employs 86
   people, known for Longjing (see https://www.westlakeleaf.example/longjing).
3. **Twinings** - a classic; Teavana and Twinings both sell online.

Westlake Leaf's spring range launched on 1 March 2026."""


def test_analyse_an_english_answer():
    result = analyse(
        ENGLISH_ANSWER,
        ["https://teavana.example/", "https://westlakeleaf.example/about"],
        WESTLAKE,
        [TWININGS, TEAVANA],
        FACTS,
    )
    assert result == Analysis(
        mentioned=True,
        mention_count=3,
        cited=True,
        cited_urls=[
            "https://westlakeleaf.example/about",
            "https://www.westlakeleaf.example/longjing",
        ],
        position=2,
        first_mention=False,
        competitors_mentioned=["competitor:teavana", "competitor:twinings"],
        mention_counts={"westlake-leaf": 3, "competitor:teavana": 2, "competitor:twinings": 2},
        misstatements=[
            Misstatement(
                fact_key="founded",
                stated="2005",
                expected="1998",
                excerpt=(
                    "2. **Westlake Leaf Tea** - a Hangzhou-based brand founded in 2005, "
                    "Westlake Leaf employs 86"
                ),
            )
        ],
        confirmed_facts=["launched", "employees", "headquarters"],
    )


def test_analyse_as_dict_is_json_serializable():
    result = analyse("Westlake Leaf was founded in 2005.", [], WESTLAKE, [], [FOUNDED])
    data = result.as_dict()
    assert json.loads(json.dumps(data)) == {
        "mentioned": True,
        "mention_count": 1,
        "cited": False,
        "cited_urls": [],
        "position": 1,
        "first_mention": True,
        "competitors_mentioned": [],
        "mention_counts": {"westlake-leaf": 1},
        "misstatements": [
            {
                "fact_key": "founded",
                "stated": "2005",
                "expected": "1998",
                "excerpt": "Westlake Leaf was founded in 2005.",
                "source_url": "",
            }
        ],
        "confirmed_facts": [],
    }


def test_analyse_a_chinese_answer_resolves_overlapping_names_longest_first():
    westlake = TrackedBrand(key="westlake", names=("西湖",), domains=("westlake.example",))
    longjing = TrackedBrand(key="competitor:longjing", names=("西湖龙井茶业",))
    founded = FactClaim(key="founded", kind="year", value="1998", cues=("成立",))
    text = "推荐西湖龙井茶业和茶瓦纳。西湖成立于1998年，官网westlake.example。西湖龙井茶业也不错。"
    assert find_mentions(text, westlake) == [2, 13, 43]
    result = analyse(text, [], westlake, [TEAVANA, longjing], [founded])
    assert result == Analysis(
        mentioned=True,
        mention_count=1,
        cited=True,
        cited_urls=["westlake.example"],
        position=3,
        first_mention=False,
        competitors_mentioned=["competitor:longjing", "competitor:teavana"],
        mention_counts={"westlake": 1, "competitor:longjing": 2, "competitor:teavana": 1},
        misstatements=[],
        confirmed_facts=["founded"],
    )


def test_analyse_the_brand_first_in_a_full_width_answer():
    text = "ＷＥＳＴＬＡＫＥ　ＬＥＡＦ最好，其次是川宁。西湖叶茶总部位于上海。"
    result = analyse(text, [], WESTLAKE, [TEAVANA, TWININGS], [HEADQUARTERS])
    assert (result.position, result.first_mention, result.mention_count) == (1, True, 2)
    assert result.competitors_mentioned == ["competitor:twinings"]
    assert result.misstatements == [
        Misstatement("headquarters", "上海", "Hangzhou", "西湖叶茶总部位于上海。")
    ]


def test_analyse_an_answer_without_the_brand():
    result = analyse(
        "Teavana is founded in 2005.", ["https://teavana.example/"], WESTLAKE, [TEAVANA], []
    )
    assert result == Analysis(
        mentioned=False,
        mention_count=0,
        cited=False,
        cited_urls=[],
        position=None,
        first_mention=False,
        competitors_mentioned=["competitor:teavana"],
        mention_counts={"competitor:teavana": 1},
        misstatements=[],
        confirmed_facts=[],
    )
