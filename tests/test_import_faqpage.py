"""A FAQPage of Questions (the way sites mark FAQs up) imports as the brand's FAQs, in every
language it has, and reaches the published FAQ pages and their JSON-LD."""

import json
from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kb.models import FAQ, Entity, Revision, Status

pytestmark = pytest.mark.django_db

BASE = "https://tea.example"
ORG = f"{BASE}/#organization"

FAQ_PAGE = {
    "@context": [
        "https://schema.org",
        {"nameByLanguage": {"@id": "schema:name", "@container": "@language"}},
    ],
    "@graph": [
        {"@id": ORG, "@type": "Organization", "name": "Acme Tea", "url": f"{BASE}/"},
        {
            "@type": "FAQPage",
            "about": {"@id": ORG},
            "mainEntity": [
                {
                    "@type": "Question",
                    "@id": f"{BASE}/faq/#shipping",
                    "name": [
                        {"@value": "Do you ship abroad?", "@language": "en"},
                        {"@value": "你们发货到海外吗？", "@language": "zh-Hans"},
                    ],
                    "acceptedAnswer": {
                        "@type": "Answer",
                        "text": [
                            {"@value": "Yes, to <b>40</b> countries.", "@language": "en"},
                            {"@value": "是的，发往40个国家。", "@language": "zh-Hans"},
                        ],
                    },
                },
                {
                    # No @id: keyed by its question text; a language map and a regional tag.
                    "@type": "Question",
                    "nameByLanguage": {
                        "en-GB": "How should I store tea?",
                        "zh-CN": "茶叶怎么保存？",
                    },
                    "acceptedAnswer": {
                        "@type": "Answer",
                        "text": [
                            {"@value": "Airtight, cool and dark.", "@language": "en"},
                            {"@value": "密封、阴凉、避光。", "@language": "zh-Hans"},
                        ],
                    },
                },
            ],
        },
    ],
}

QUESTIONS = {
    "en": [
        ("Do you ship abroad?", "Yes, to 40 countries."),
        ("How should I store tea?", "Airtight, cool and dark."),
    ],
    "zh-Hans": [
        ("你们发货到海外吗？", "是的，发往40个国家。"),
        ("茶叶怎么保存？", "密封、阴凉、避光。"),
    ],
}


class Scripts(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.jsonld: list[str] = []
        self._in = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self._in = tag == "script" and dict(attrs).get("type") == "application/ld+json"
        if self._in:
            self.jsonld.append("")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.jsonld[-1] += data


def import_file(path, *args) -> str:
    out = StringIO()
    call_command("import_jsonld", "acme-tea", str(path), *args, stdout=out)
    return out.getvalue()


def without_tags(html: str) -> str:
    class Text(HTMLParser):
        parts: list[str] = []

        def handle_data(self, data):
            self.parts.append(data)

    parser = Text()
    parser.parts = []
    parser.feed(html)
    return "".join(parser.parts)


def test_faqpage_imports_as_faqs_publishes_and_reimports_unchanged(brand, tmp_path):
    source = tmp_path / "faq.jsonld"
    source.write_text(json.dumps(FAQ_PAGE, ensure_ascii=False), encoding="utf-8")
    printed = import_file(source, "--publish")
    assert printed.endswith("; 2 FAQs: 2 created, 0 updated, 0 unchanged, 2 published.\n"), printed

    # The FAQPage is not an entity (nameless or otherwise); its Questions are FAQs.
    assert list(Entity.objects.values_list("iri", flat=True)) == [ORG]
    faqs = list(FAQ.objects.order_by("order"))
    assert [f.question for f in faqs] == [
        {lang: QUESTIONS[lang][i][0] for lang in QUESTIONS} for i in range(2)
    ]
    assert faqs[0].answer == {
        "en": "Yes, to <b>40</b> countries.",
        "zh-Hans": "是的，发往40个国家。",
    }
    assert faqs[0].key.startswith("shipping-")
    assert faqs[1].key == "how-should-i-store-tea"
    assert {f.about.iri for f in faqs} == {ORG}
    assert {f.status for f in faqs} == {Status.PUBLISHED}

    call_command("publish", "acme-tea", "--out", str(tmp_path / "site"), stdout=StringIO())
    root = tmp_path / "site" / "current"
    for language, prefix in (("en", ""), ("zh-Hans", "zh-Hans/")):
        html = (root / prefix / "faq" / "index.html").read_text(encoding="utf-8")
        text = without_tags(html)
        for question, answer in QUESTIONS[language]:
            assert question in text and answer in text, language
        (script,) = Scripts(html).jsonld
        graph = json.loads(script)["@graph"]
        (page,) = [n for n in graph if n.get("@type") == "FAQPage"]
        entities = page["mainEntity"]
        assert [q["@type"] for q in entities] == ["Question", "Question"]
        assert [(q["name"], without_tags(q["acceptedAnswer"]["text"])) for q in entities] == (
            QUESTIONS[language]
        )
        assert {q["acceptedAnswer"]["@type"] for q in entities} == {"Answer"}

    # Importing the same file again creates no revision.
    revisions = Revision.objects.count()
    versions = list(FAQ.objects.values_list("key", "version"))
    import_file(source, "--publish")
    assert Revision.objects.count() == revisions
    assert list(FAQ.objects.values_list("key", "version")) == versions


def test_a_changed_answer_makes_one_new_revision(brand, tmp_path):
    source = tmp_path / "faq.jsonld"
    source.write_text(json.dumps(FAQ_PAGE), encoding="utf-8")
    import_file(source)
    changed = json.loads(json.dumps(FAQ_PAGE))
    changed["@graph"][1]["mainEntity"][0]["acceptedAnswer"]["text"][0]["@value"] = "Yes."
    source.write_text(json.dumps(changed), encoding="utf-8")
    revisions = Revision.objects.count()
    import_file(source)
    assert Revision.objects.count() == revisions + 1
    faq = FAQ.objects.get(key__startswith="shipping-")
    assert faq.version == 2 and faq.answer["en"] == "Yes."
    assert FAQ.objects.count() == 2


def test_yoast_style_graph_with_referenced_questions_and_document_language(brand, tmp_path):
    # Yoast and similar CMSs: the page is ["WebPage", "FAQPage"], its mainEntity references
    # Question nodes of the @graph; the document's @language tags every text.
    document = {
        "@context": ["https://schema.org", {"@language": "zh-Hans"}],
        "@graph": [
            {
                "@type": ["WebPage", "FAQPage"],
                "@id": f"{BASE}/zh/faq/",
                "mainEntity": [{"@id": f"{BASE}/zh/faq/#q1"}],
            },
            {
                "@type": "Question",
                "@id": f"{BASE}/zh/faq/#q1",
                "name": "有实体店吗？",
                "acceptedAnswer": {"@type": "Answer", "text": "有，在杭州。"},
            },
        ],
    }
    english = json.loads(json.dumps(document))
    english["@context"][1]["@language"] = "en"
    english["@graph"][1]["name"] = "Do you have a shop?"
    english["@graph"][1]["acceptedAnswer"]["text"] = "Yes, in Hangzhou."
    (tmp_path / "zh.jsonld").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "en.jsonld").write_text(json.dumps(english), encoding="utf-8")
    out = StringIO()
    call_command(
        "import_jsonld", "acme-tea", str(tmp_path / "zh.jsonld"), str(tmp_path / "en.jsonld"),
        stdout=out,
    )  # fmt: skip
    assert not Entity.objects.exists()
    faq = FAQ.objects.get()
    assert faq.question == {"en": "Do you have a shop?", "zh-Hans": "有实体店吗？"}
    assert faq.answer == {"en": "Yes, in Hangzhou.", "zh-Hans": "有，在杭州。"}
    assert faq.about is None


def test_a_question_without_default_language_text_is_refused(brand, tmp_path):
    document = {
        "@context": "https://schema.org",
        "@type": "FAQPage",
        "mainEntity": {
            "@type": "Question",
            "name": {"@value": "有实体店吗？", "@language": "zh-Hans"},
            "acceptedAnswer": {"@type": "Answer", "text": {"@value": "有。", "@language": "zh-CN"}},
        },
    }
    source = tmp_path / "faq.jsonld"
    source.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        import_file(source)
    assert str(refused.value).splitlines()[1:] == [
        f"{source}: /mainEntity: the FAQ's question has no text in the brand's default "
        "language (en)",
        f"{source}: /mainEntity: the FAQ's answer has no text in the brand's default language (en)",
    ]
    assert not FAQ.objects.exists()


def test_about_names_an_existing_entity_and_answers_may_come_one_per_language(brand, tmp_path):
    organization = {"@context": "https://schema.org", "@id": ORG, "@type": "Organization"}
    (tmp_path / "org.jsonld").write_text(json.dumps({**organization, "name": "Acme"}))
    import_file(tmp_path / "org.jsonld")
    document = {
        "@context": "https://schema.org",
        "@type": "FAQPage",
        "mainEntityOfPage": {"@id": ORG},
        "mainEntity": {
            "@type": "Question",
            "name": "Is it organic?",
            "acceptedAnswer": [
                {"@type": "Answer", "text": {"@value": "Yes.", "@language": "en"}},
                {"@type": "Answer", "text": {"@value": "是的。", "@language": "zh-Hans"}},
            ],
        },
    }
    (tmp_path / "faq.jsonld").write_text(json.dumps(document))
    import_file(tmp_path / "faq.jsonld")
    faq = FAQ.objects.get()
    assert faq.about.iri == ORG
    assert faq.answer == {"en": "Yes.", "zh-Hans": "是的。"}
    assert Entity.objects.get().version == 1


def test_a_faqpage_without_questions_is_refused(brand, tmp_path):
    document = {"@context": "https://schema.org", "@type": "FAQPage", "name": "FAQ"}
    source = tmp_path / "faq.jsonld"
    source.write_text(json.dumps(document))
    with pytest.raises(CommandError) as refused:
        import_file(source)
    assert str(refused.value).splitlines()[1] == (
        f"{source}: /: a FAQPage needs mainEntity Questions to import as FAQs"
    )
    assert not Entity.objects.exists()


def test_an_answer_in_a_language_the_brand_lacks_is_refused_naming_it(brand, tmp_path):
    document = {
        "@context": "https://schema.org",
        "@type": "FAQPage",
        "mainEntity": {
            "@type": "Question",
            "name": "Is it organic?",
            "acceptedAnswer": {"@type": "Answer", "text": {"@value": "Oui.", "@language": "fr"}},
        },
    }
    source = tmp_path / "faq.jsonld"
    source.write_text(json.dumps(document))
    with pytest.raises(CommandError) as refused:
        import_file(source)
    assert str(refused.value).splitlines()[1:] == [
        f"{source}: /mainEntity/acceptedAnswer/text: language 'fr' is not one of the brand's "
        "languages (en, zh-Hans)"
    ]
    assert not FAQ.objects.exists()
