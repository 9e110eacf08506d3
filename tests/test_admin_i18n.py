"""Our messages reach the editor in the editor's language: the kb catalog (Chinese,
Simplified) is complete and compiled, the browser's language or the admin's language switcher
picks it, and an invalid value is refused in that language at its field."""

import gettext
import html
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from django.contrib.auth import get_user_model

from kb.models import BrandMembership
from kb.services.brands import membership_grant
from kb.services.entities import entity_create
from tests.admin_forms import change_form_data

LOCALE = Path(__file__).resolve().parent.parent / "kb" / "locale" / "zh_Hans" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[sdirf%]")
CHINESE = "zh-CN,zh;q=0.9"
WRONG_GTIN = "6970123000011"  # the check digit is wrong (…13 would be right)


@pytest.fixture
def editor(brand):
    """A brand member with the fewest rights: an editor."""
    user = get_user_model().objects.create_user("ed", password="pw-ed-123", is_staff=True)
    membership_grant(brand=brand, user=user, role=BrandMembership.Role.EDITOR)
    return user


@pytest.fixture
def organization(brand):
    return entity_create(
        brand=brand,
        types=["Organization"],
        data={"name": [{"@value": "Acme Tea", "@language": "en"}]},
        iri="https://tea.example/#organization",
    )


@pytest.fixture
def product(brand, organization):
    """A product with an offer that has neither shipping details nor a return policy."""
    return entity_create(
        brand=brand,
        types=["Product"],
        data={
            "name": [{"@value": "Longjing", "@language": "en"}],
            "sku": [{"@value": "LJ-100"}],
            "image": [{"@id": "https://tea.example/img/longjing.jpg"}],
            "brand": [{"@id": organization.iri}],
            "offers": [
                {
                    "@type": ["Offer"],
                    "price": [{"@value": "12.50"}],
                    "priceCurrency": [{"@value": "USD"}],
                }
            ],
        },
        iri="https://tea.example/products/longjing/#product",
    )


def placeholders(text: str) -> list[str]:
    return sorted(name or "<positional>" for name in PLACEHOLDER.findall(text) if name != "%")


def catalog(domain: str = "django"):
    with (LOCALE / f"{domain}.po").open("rb") as po:
        return read_po(po)


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_compiled_catalog_matches_the_po_file(domain):
    """The .mo is committed (msgfmt is not needed to run the project): it must be the .po
    compiled, every message translated, none fuzzy, placeholders kept (the scripts' messages,
    djangojs, as the Python ones)."""
    messages = [m for m in catalog(domain) if m.id]
    assert messages
    with (LOCALE / f"{domain}.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for message in messages:
        assert isinstance(message.id, str), message.id  # no plural forms are used
        assert not message.fuzzy, message.id
        assert message.string, f"not translated: {message.id!r}"
        assert compiled.gettext(message.id) == message.string, message.id
        assert placeholders(message.id) == placeholders(message.string), message.id
        assert "<positional>" not in placeholders(message.id), f"name it: {message.id!r}"
    compiled_ids = {key for key in compiled._catalog if key}
    assert compiled_ids == {m.id for m in messages}


def test_every_wrapped_message_of_the_kb_app_is_in_the_catalog():
    """A string wrapped with gettext in kb but missing from the .po reaches the editor in
    English: `make messages`, then translate it."""
    keywords = {name: None for name in ("_", "gettext", "gettext_lazy", "gettext_noop")}
    kb = LOCALE.parents[2]
    wrapped = {
        (message if isinstance(message, str) else message[0]): f"{path.relative_to(kb)}:{line}"
        for path in kb.rglob("*.py")
        if "migrations" not in path.parts
        for line, message, _comments, _context in extract_from_file(
            "python", path, keywords=keywords
        )
    }
    known = {m.id for m in catalog() if m.id}
    missing = {message: where for message, where in wrapped.items() if message not in known}
    assert not missing, f"run `make messages` and translate: {missing}"
    scripts = {
        message: f"{path.relative_to(kb)}:{line}"
        for path in (kb / "static").rglob("*.js")
        for line, message, _comments, _context in extract_from_file(
            "javascript", path, keywords={"gettext": None}
        )
    }
    assert len(scripts) == 6
    known = {m.id for m in catalog("djangojs") if m.id}
    missing = {message: where for message, where in scripts.items() if message not in known}
    assert not missing, f"run `make messages` and translate: {missing}"


def field_errors(response, field: str) -> list[str]:
    """The messages the admin shows in a field's error list, as the editor reads them."""
    page = response.content.decode()
    found = re.search(rf'<ul class="errorlist[^"]*" id="id_{field}_error">(.*?)</ul>', page, re.S)
    assert found, f"no error list at {field}"
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        (
            "en-US,en;q=0.9",
            f"/data/gtin13: '{WRONG_GTIN}' is not a valid GTIN: the check digit (or the length) "
            "is wrong.",
        ),
        (CHINESE, f"/data/gtin13: '{WRONG_GTIN}' 不是有效的 GTIN：校验位（或长度）有误。"),
    ],
)
def test_an_invalid_value_is_refused_at_its_field_in_the_editors_language(
    client, editor, product, accept_language, expected
):
    client.force_login(editor)
    url = f"/admin/kb/entity/{product.pk}/change/"
    data = change_form_data(client.get(url))
    response = client.post(
        url, {**data, "p__gtin13": WRONG_GTIN}, HTTP_ACCEPT_LANGUAGE=accept_language
    )
    assert response.status_code == 200
    assert field_errors(response, "p__gtin13") == [expected]
    product.refresh_from_db()
    assert product.version == 1 and "gtin13" not in product.data


@pytest.mark.django_db
def test_a_schema_org_value_error_is_translated(client, editor, product):
    client.force_login(editor)
    url = f"/admin/kb/entity/{product.pk}/change/"
    data = change_form_data(client.get(url))
    data["more_properties"] = '{"releaseDate": [{"@value": "soon"}]}'
    english = client.post(url, data)
    assert field_errors(english, "p__releaseDate") == [
        "/data/releaseDate: 'releaseDate' expects Date, got the text 'soon'"
    ]
    chinese = client.post(url, data, HTTP_ACCEPT_LANGUAGE=CHINESE)
    assert field_errors(chinese, "p__releaseDate") == [
        "/data/releaseDate: 'releaseDate' 应为 Date，实际填写的是文本 'soon'"
    ]


@pytest.mark.django_db
def test_a_fact_without_its_default_language_statement_is_refused_in_chinese(
    client, brand, editor, organization
):
    client.force_login(editor)
    response = client.post(
        "/admin/kb/fact/add/",
        {
            "brand": brand.pk,
            "key": "founded",
            "about": organization.pk,
            "p__statement__en": "",
            "p__statement__zh-Hans": "1998年创立于杭州。",
            "value": "1998",
            "unit": "",
            "source_url": "https://tea.example/about",
            "as_of": "2025-06-30",
        },
        HTTP_ACCEPT_LANGUAGE=CHINESE,
    )
    assert response.status_code == 200
    assert field_errors(response, "p__statement__en") == ["默认语言必须填写"]


@pytest.mark.django_db
def test_the_language_switcher_makes_the_admin_chinese(client, editor, product):
    client.force_login(editor)
    url = f"/admin/kb/entity/{product.pk}/change/"
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'action="/admin/i18n/setlang/"' in english
    assert re.search(r'<option value="zh-hans" lang="zh-hans"[^>]*>简体中文</option>', english)
    assert "Log out" in english and "Add shipping details to the offers." in english
    switched = client.post(
        "/admin/i18n/setlang/", {"language": "zh-hans", "next": url}, follow=True
    )
    assert switched.redirect_chain == [(url, 302)]
    page = switched.content.decode()
    assert '<html lang="zh-hans"' in page
    assert "注销" in page and "修改密码" in page  # Django's own admin strings
    assert "请为报价添加配送信息。" in page  # ours: the findings beside the form
    assert "Google：商品（商家信息）" in page
    assert re.search(
        r'<option value="zh-hans" lang="zh-hans"[^>]* selected>简体中文</option>', page
    )
    # The choice is kept (the language cookie) over the browser's Accept-Language.
    again = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "注销" in again
    client.post("/admin/i18n/setlang/", {"language": "en", "next": url})
    assert "Log out" in client.get(url).content.decode()
