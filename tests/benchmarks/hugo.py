"""The peer: Hugo rendering the same catalog.

A Hugo site is generated (not timed): multilingual (en at the root, zh-hans under
``/zh-hans/``), one content file per product and language whose JSON front matter holds the
same texts and values (name, description, image, SKU, GTIN-13, both offers); a layout that
writes each product's HTML page with its JSON-LD graph (WebSite, ItemPage, Organization,
Product with offers) built with Hugo's ``dict``/``slice`` and serialized with ``jsonify``
into ``<script type="application/ld+json">``, and a Markdown twin (``index.html.md``) through
a custom output format. The home page and the two section pages are trivial; taxonomies,
RSS, sitemaps and 404 are disabled (Sourcebook's sitemaps and llms.txt have no Hugo
counterpart here, so Hugo does less than the publish).

Then ``hugo --source SRC --destination DST`` is timed (wall clock, Hugo uses every core) with
its peak RSS sampled; the files and bytes it wrote are counted.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.benchmarks import catalog
from tests.benchmarks.common import child_env, fresh_dir, log, run

HUGO = shutil.which("hugo") or "/usr/bin/hugo"
HUGO_LANGUAGES = {"en": "en", "zh-Hans": "zh-hans"}

CONFIG = """baseURL = "{base}/"
title = "{name}"
defaultContentLanguage = "en"
defaultContentLanguageInSubdir = false
disableKinds = ["taxonomy", "term", "RSS", "sitemap", "robotsTXT", "404"]
enableRobotsTXT = false

[mediaTypes."text/markdown"]
suffixes = ["md"]

[outputFormats.twin]
mediaType = "text/markdown"
baseName = "index.html"
isPlainText = true
notAlternative = true

[outputs]
home = ["HTML"]
section = ["HTML"]
page = ["HTML", "twin"]

[languages.en]
languageName = "English"
contentDir = "content/en"
weight = 1

[languages.zh-hans]
languageName = "简体中文"
contentDir = "content/zh-hans"
weight = 2
"""

SINGLE_HTML = """<!doctype html>
<html lang="{{ .Site.Language.Lang }}">
<head>
<meta charset="utf-8">
<title>{{ .Title }} — {{ .Site.Title }}</title>
<meta name="description" content="{{ .Description }}">
<link rel="canonical" href="{{ .Permalink }}">
{{ range .AllTranslations }}<link rel="alternate" hreflang="{{ .Language.Lang }}" href="{{ .Permalink }}">
{{ end }}{{- $org := "ORG_IRI" -}}
{{- $offers := slice -}}
{{- range .Params.offers -}}
{{- $offers = $offers | append (dict "@type" "Offer" "availability" "https://schema.org/InStock" "price" .price "priceCurrency" .currency) -}}
{{- end -}}
{{- $home := .Site.Home.Permalink -}}
{{- $crumbs := slice (dict "@type" "ListItem" "position" 1 "name" .Site.Title "item" $home) (dict "@type" "ListItem" "position" 2 "name" "Products" "item" (printf "%sproducts/" $home)) (dict "@type" "ListItem" "position" 3 "name" .Title "item" .Permalink) -}}
{{- $website := dict "@id" "BASE/#website" "@type" "WebSite" "name" .Site.Title "url" "BASE/" "publisher" (dict "@id" $org) -}}
{{- $page := dict "@id" .Permalink "@type" "ItemPage" "url" .Permalink "name" .Title "inLanguage" .Site.Language.Lang "isPartOf" (dict "@id" "BASE/#website") "dateModified" "2026-01-01T00:00:00+00:00" "breadcrumb" (dict "@type" "BreadcrumbList" "itemListElement" $crumbs) "description" .Description "mainEntity" (dict "@id" .Params.iri) -}}
{{- $organization := dict "@id" $org "@type" "Organization" "name" .Site.Title "url" "BASE/" -}}
{{- $product := dict "@id" .Params.iri "@type" "Product" "brand" (dict "@id" $org) "description" .Description "gtin13" .Params.gtin13 "image" .Params.image "name" .Title "offers" $offers "sku" .Params.sku -}}
<script type="application/ld+json">{{ dict "@context" "https://schema.org" "@graph" (slice $website $page $organization $product) | jsonify | safeJS }}</script>
</head>
<body>
<header><a href="{{ $home }}">{{ .Site.Title }}</a></header>
<main>
<h1>{{ .Title }}</h1>
<img src="{{ .Params.image }}" alt="{{ .Title }}" loading="lazy">
<p>{{ .Description }}</p>
<table class="offers">{{ range .Params.offers }}<tr><td><strong>{{ .price }} {{ .currency }}</strong></td><td>In stock</td></tr>{{ end }}</table>
<dl><dt>SKU</dt><dd>{{ .Params.sku }}</dd><dt>GTIN-13</dt><dd>{{ .Params.gtin13 }}</dd></dl>
</main>
<footer>{{ range .AllTranslations }}<a href="{{ .Permalink }}" hreflang="{{ .Language.Lang }}">{{ .Language.LanguageName }}</a> {{ end }}</footer>
</body>
</html>
"""

SINGLE_TWIN = """# {{ .Title }}

{{ .Description }}

![{{ .Title }}]({{ .Params.image }})

## Offers

{{ range .Params.offers }}- {{ .price }} {{ .currency }} (In stock)
{{ end }}
## Details

- **SKU:** {{ .Params.sku }}
- **GTIN-13:** {{ .Params.gtin13 }}

Languages: {{ range .AllTranslations }}[{{ .Language.LanguageName }}]({{ .Permalink }}) {{ end }}
"""

LIST_HTML = """<!doctype html>
<html lang="{{ .Site.Language.Lang }}"><head><meta charset="utf-8"><title>{{ .Title }}</title></head>
<body><h1>{{ .Title }}</h1><p>{{ len .Pages }} pages</p></body></html>
"""


def front_matter(item: catalog.Product, language: str) -> dict:
    return {
        "title": item.name(language),
        "slug": item.slug,
        "description": item.description(language),
        "iri": item.iri,
        "image": item.image,
        "sku": item.sku,
        "gtin13": item.gtin13,
        "offers": [{"price": p, "currency": c} for p, c in item.offers()],
    }


def layouts() -> dict[str, str]:
    html = SINGLE_HTML.replace("ORG_IRI", catalog.ORG_IRI).replace("BASE", catalog.BASE_URL)
    return {
        "layouts/_default/single.html": html,
        "layouts/_default/single.twin.md": SINGLE_TWIN,
        "layouts/_default/list.html": LIST_HTML,
        "layouts/index.html": LIST_HTML,
    }


def hugo_site_write(source: Path, size: int) -> int:
    """Write the Hugo sources of N products; returns the number of content files."""
    fresh_dir(source)
    (source / "config.toml").write_text(CONFIG.format(base=catalog.BASE_URL, name=catalog.NAME))
    for relative, text in layouts().items():
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    count = 0
    for language, directory in HUGO_LANGUAGES.items():
        products = source / "content" / directory / "products"
        products.mkdir(parents=True)
        (products / "_index.md").write_text(json.dumps({"title": "Products"}) + "\n")
        for item in catalog.products(size):
            text = json.dumps(front_matter(item, language), ensure_ascii=False) + "\n"
            (products / f"{item.slug}.md").write_text(text, encoding="utf-8")
            count += 1
    return count


def tree_size(root: Path) -> tuple[int, int]:
    files = total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            files += 1
            total += (Path(directory) / name).stat().st_size
    return files, total


def hugo_measure(root: Path, size: int) -> dict:
    """Generate the Hugo site (untimed), build it (timed, peak RSS), count its output."""
    source, destination = root / "hugo-src", root / "hugo-public"
    log("hugo", size, "writing the Hugo sources (not timed)")
    content_files = hugo_site_write(source, size)
    shutil.rmtree(destination, ignore_errors=True)
    log("hugo", size, f"hugo --destination (content files: {content_files:,})")
    try:
        result = run(
            [
                HUGO,
                "--source",
                str(source),
                "--destination",
                str(destination),
                "--quiet",
                "--noTimes",
            ],
            child_env(),
        )
        files, total = tree_size(destination)
    finally:
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(destination, ignore_errors=True)
    log(
        "hugo",
        size,
        f"{result.seconds:.2f}s wall, peak RSS {result.peak_mb:.0f} MB, {files:,} files",
    )
    return {
        "seconds": round(result.seconds, 3),
        "peak_rss_mb": round(result.peak_mb, 1),
        "peak_pss_mb": round(result.peak_pss_mb, 1),
        "content_files": content_files,
        "files": files,
        "bytes": total,
    }


def hugo_available() -> str | None:
    """None when Hugo can run, else why not."""
    return None if shutil.which("hugo") or Path(HUGO).exists() else "hugo is not installed"
