"""What a browser posts back from an admin change page: the form's current values and, for
each inline (an entity's facts and FAQs), its management form and its forms' values."""

from __future__ import annotations


def bound_values(form, data: dict) -> None:
    for name in form.fields:
        value = form[name].value()
        if value is None:
            continue
        data[form.add_prefix(name)] = value.pk if hasattr(value, "pk") else value


def change_form_data(response) -> dict:
    data: dict = {}
    bound_values(response.context["adminform"].form, data)
    for inline in response.context.get("inline_admin_formsets") or []:
        formset = inline.formset
        bound_values(formset.management_form, data)
        for form in formset.forms:
            bound_values(form, data)
    return data
