"""The published site's HTML templates: Jinja2, autoescaping every value.

Pages are rendered by the hundred thousand; Jinja2 compiles templates to Python code and
renders them several times faster than Django's engine. Values marked safe by the renderer
(the JSON-LD, sanitized FAQ answers) carry ``__html__`` and are not escaped again.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2
from django.conf import settings


class SiteEnvironment(jinja2.Environment):
    def getattr(self, obj, attribute):
        # The renderer hands the templates dicts: ``row.name`` looks the key up first. Jinja
        # tries the attribute first, and a failed attribute lookup on every dict value was
        # the largest cost of rendering a page of its own (6%). (A key named like a dict
        # method, say "items", is the key's value here.)
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


@functools.cache
def site_templates() -> jinja2.Environment:
    return SiteEnvironment(
        loader=jinja2.FileSystemLoader(Path(settings.BASE_DIR) / "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # a missing value renders empty, as before
        keep_trailing_newline=True,
        auto_reload=False,
        # A plain dict for compiled templates (the site has a handful), not Jinja's LRU cache:
        # that one takes a lock on every lookup, and a render worker forked (by the pool's
        # thread, to replace one) while the builder's thread held it hung on its first page.
        cache_size=-1,
    )


def render_site_template(name: str, context: dict) -> str:
    return site_templates().get_template(name).render(context)
