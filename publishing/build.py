"""Building a release: plan every artifact, render only what changed, store content-addressed.

Each artifact has a fingerprint of everything it is rendered from (the revisions it shows,
the site-wide settings, the renderer's version). An artifact whose fingerprint equals the
one in the previous release is carried over without rendering; one that is rendered but
comes out byte-identical is not stored again.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from publishing.models import Release, ReleaseArtifact, SiteSettings
from publishing.render import indexes
from publishing.render.pages import (
    PageInputs,
    StatementIndex,
    page_inputs,
    page_path_in,
    page_url,
    render_page,
    text_of,
)
from publishing.render.text import one_line
from publishing.render.ui import ui
from publishing.site import (
    Page,
    SiteContent,
    absolute_url,
    digest,
    language_prefix,
    revisions_by_id,
    site_content_load,
    site_pages,
    twin_path,
)
from publishing.store import artifact_put, artifact_read

RENDERER_VERSION = "1"
CONTENT_TYPES = {
    "page": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "llms": "text/plain; charset=utf-8",
    "llms-full": "text/plain; charset=utf-8",
    "sitemap": "application/xml",
    "robots": "text/plain; charset=utf-8",
    "graph": "application/ld+json",
}
RENDER_BATCH = 200

Progress = Callable[[int, int], None]


@dataclass
class Entry:
    path: str
    kind: str
    sha256: str
    size: int
    fingerprint: str
    changed_at: datetime


@dataclass
class BuildResult:
    entries: dict[str, Entry] = field(default_factory=dict)
    rendered: int = 0
    reused: int = 0
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stored: int = 0
    left_out: dict[str, list[str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.entries.values():
            counts[entry.kind] = counts.get(entry.kind, 0) + 1
        return dict(sorted(counts.items()))


@functools.cache
def renderer_digest() -> str:
    """A change to the templates or the rendering code re-renders everything."""
    sha = hashlib.sha256(RENDERER_VERSION.encode())
    package = Path(__file__).parent
    sources = [
        *sorted((Path(settings.BASE_DIR) / "templates" / "site").rglob("*.html")),
        *sorted((package / "render").glob("*.py")),
        package / "site.py",
        package / "build.py",
    ]
    for path in sources:
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def previous_entries(release: Release | None) -> dict[str, Entry]:
    if release is None:
        return {}
    return {
        path: Entry(path, kind, sha, size, fingerprint, changed_at)
        for path, kind, sha, size, fingerprint, changed_at in release.artifacts.values_list(
            "path", "kind", "sha256", "size", "fingerprint", "changed_at"
        ).iterator(chunk_size=5000)
    }


class Builder:
    def __init__(self, release: Release, previous: Release | None, progress: Progress | None):
        self.release = release
        self.brand = release.brand
        self.previous = previous_entries(previous)
        self.progress = progress
        self.now = timezone.now()
        self.result = BuildResult()
        self.done = 0
        self.total = 0
        self._descriptions: dict[str, dict[str, str]] | None = None

    # -- bookkeeping --

    def tick(self, n: int = 1) -> None:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)

    def reuse(self, path: str, fingerprint: str) -> bool:
        old = self.previous.get(path)
        if old is None or old.fingerprint != fingerprint:
            return False
        self.result.entries[path] = old
        self.result.reused += 1
        return True

    def store(
        self,
        path: str,
        kind: str,
        content: bytes,
        fingerprint: str,
        changed_at: datetime | None = None,
    ) -> None:
        sha256, new = artifact_put(content)
        old = self.previous.get(path)
        unchanged = old is not None and old.sha256 == sha256
        if changed_at is None:
            changed_at = old.changed_at if unchanged else self.now
        self.result.entries[path] = Entry(path, kind, sha256, len(content), fingerprint, changed_at)
        self.result.rendered += 1
        self.result.stored += int(new)
        if not unchanged:
            self.result.changed.append(path)

    # -- the build --

    def build(self) -> BuildResult:
        site = site_content_load(brand=self.brand)
        self.result.left_out = site.left_out
        site_settings, _ = SiteSettings.objects.get_or_create(brand=self.brand)
        index = StatementIndex.of(site)
        pages = list(site_pages(site))
        sections = list(site.section_counts)
        site_key = digest(
            renderer_digest(),
            self.brand.name,
            self.brand.base_url,
            self.brand.languages,
            site.organization_iri,
            site.entities.get(site.organization_iri)
            and site.entities[site.organization_iri].revision_id,
            sections,
            bool(site.faqs),
            bool(site.facts),
        )
        self.total = 2 * len(pages) + 4 * len(site.languages) + 4
        planned = [(page, page_inputs(site, page, index)) for page in pages]
        batch: list[tuple[Page, PageInputs, str]] = []
        for page, inputs in planned:
            fingerprint = digest(
                site_key,
                page.kind,
                page.path,
                page.language,
                sorted(inputs.revision_ids(site)),
                self.section_size(site, page),
            )
            if self.reuse_all([page.file, twin_path(page.file)], fingerprint):
                self.tick(2)
                continue
            batch.append((page, inputs, fingerprint))
            if len(batch) >= RENDER_BATCH:
                self.render_batch(site, batch)
                batch = []
        self.render_batch(site, batch)
        # A page's lastmod: when its visible content (its Markdown twin) last changed.
        lastmods = {
            page.path: iso(self.result.entries[twin_path(page.file)].changed_at)
            for page, _ in planned
        }
        self.build_indexes(site, site_settings, planned, lastmods)
        previous_paths = set(self.previous)
        self.result.removed = sorted(previous_paths - set(self.result.entries))
        return self.result

    def section_size(self, site: SiteContent, page: Page) -> int | dict:
        if page.kind == "home":
            return site.section_counts
        if page.kind == "section":
            return site.section_counts.get(page.section, 0)
        return 0

    def content_time(self, site: SiteContent, inputs: PageInputs) -> datetime:
        """When the content shown changed: the latest publication among the page's inputs."""
        times = [site.entities[i].published_at for i in (*inputs.full, *inputs.listed)]
        times += [s.published_at for s in (*inputs.facts, *inputs.faqs)]
        times = [t for t in times if t]
        return (max(times) if times else self.brand.updated_at).replace(microsecond=0)

    def render_batch(self, site: SiteContent, batch) -> None:
        if not batch:
            return
        wanted = {i for _, inputs, _ in batch for i in inputs.content_revision_ids(site)}
        if site.organization_iri in site.entities:
            wanted.add(site.entities[site.organization_iri].revision_id)
        contents = revisions_by_id(wanted)
        for page, inputs, fingerprint in batch:
            twin = twin_path(page.file)
            changed_at: list[datetime] = []

            def lastmod_for(
                markdown: bytes, twin=twin, inputs=inputs, changed_at=changed_at
            ) -> str:
                old = self.previous.get(twin)
                if old is not None and old.sha256 == hashlib.sha256(markdown).hexdigest():
                    changed_at.append(old.changed_at)
                else:
                    changed_at.append(self.content_time(site, inputs))
                return iso(changed_at[0])

            rendered = render_page(site, page, inputs, contents, lastmod_for=lastmod_for)
            self.store(twin, "markdown", rendered.markdown, fingerprint, changed_at=changed_at[0])
            self.store(page.file, "page", rendered.html, fingerprint, changed_at=changed_at[0])
            self.tick(2)

    # -- site-wide artifacts --

    def build_indexes(self, site, site_settings, planned, lastmods) -> None:
        all_revisions = sorted(
            [e.revision_id for e in site.entities.values()]
            + [s.revision_id for s in (*site.facts, *site.faqs)]
        )
        base_key = digest(
            RENDERER_VERSION, self.brand.name, self.brand.base_url, self.brand.languages
        )
        graph_key = digest(base_key, "graph", all_revisions)
        if not self.reuse("graph.jsonld", graph_key):
            content = "".join(indexes.brand_graph_chunks(site, revisions_by_id)).encode("utf-8")
            self.store("graph.jsonld", "graph", content, graph_key)
        self.tick()

        robots_key = digest(base_key, "robots", site_settings.allow_ai_training)
        if not self.reuse("robots.txt", robots_key):
            text = indexes.robots_txt(site, allow_training=site_settings.allow_ai_training)
            self.store("robots.txt", "robots", text.encode("utf-8"), robots_key)
        self.tick()

        sitemap_key = digest(base_key, "sitemap", sorted(lastmods.items()))
        if not self.reuse_all(self.previous_paths("sitemap"), sitemap_key):
            entries = []
            for page, _ in planned:
                entries.append(
                    indexes.SitemapEntry(
                        url=page_url(site, page.path),
                        lastmod=lastmods[page.path],
                        alternates=[
                            (lang, page_url(site, page_path_in(site, page, lang)))
                            for lang in site.languages
                        ]
                        + [
                            (
                                "x-default",
                                page_url(site, page_path_in(site, page, site.default_language)),
                            )
                        ],
                    )
                )
            for path, content in indexes.sitemap_files(site, entries).items():
                self.store(path, "sitemap", content, sitemap_key)
        self.tick()

        text_key = digest(
            base_key,
            "llms",
            all_revisions,
            sorted(lastmods),
            [
                indexes.limit(name, default)
                for name, default in (
                    ("SOURCEBOOK_LLMS_MAX_CHARS", indexes.LLMS_MAX_CHARS),
                    ("SOURCEBOOK_LLMS_PART_CHARS", indexes.LLMS_PART_CHARS),
                    ("SOURCEBOOK_LLMS_FULL_MAX_CHARS", indexes.LLMS_FULL_MAX_CHARS),
                )
            ],
        )
        for language in site.languages:
            self.build_llms(site, language, planned, text_key)
        self.tick()

    def reuse_all(self, paths: list[str], fingerprint: str) -> bool:
        """Carry over a group of files made together, if there is one and all still fit."""
        if not paths or any(
            p not in self.previous or self.previous[p].fingerprint != fingerprint for p in paths
        ):
            return False
        for path in paths:
            self.reuse(path, fingerprint)
        return True

    def previous_paths(self, kind: str) -> list[str]:
        return [path for path, entry in self.previous.items() if entry.kind == kind]

    def previous_paths_in(self, kind: str, language: str, site: SiteContent) -> list[str]:
        prefix = language_prefix(site, language)
        others = tuple(
            language_prefix(site, other) for other in site.languages if other != language
        )
        others = tuple(p for p in others if p)
        return [
            path
            for path in self.previous_paths(kind)
            if (path.startswith(prefix) if prefix else not path.startswith(others or ("\0",)))
        ]

    def build_llms(self, site: SiteContent, language: str, planned, text_key: str) -> None:
        key = digest(text_key, language)
        llms_paths = self.previous_paths_in("llms", language, site)
        full_paths = self.previous_paths_in("llms-full", language, site)
        if llms_paths and full_paths and self.reuse_all(llms_paths + full_paths, key):
            self.tick(4)
            return
        default = site.default_language
        org = site.entities.get(site.organization_iri)
        pages = [(page, inputs) for page, inputs in planned if page.language == language]
        contents = revisions_by_id([org.revision_id]) if org else {}
        org_content = contents.get(org.revision_id) if org else None
        title = (
            text_of(org_content, "name", language, default) if org_content else ""
        ) or self.brand.name
        summary = (
            one_line(text_of(org_content, "description", language, default), 300)
            if org_content
            else ""
        ) or title
        about = indexes.LlmsSection(ui(language, "about"), [])
        by_section: dict[str, list[indexes.LlmsLink]] = {}
        entity_pages = [p for p, _ in pages if p.kind == "entity"]
        descriptions = self.descriptions(site, [p.main[0] for p in entity_pages])[language]
        for page, _ in pages:
            twin = page_url(site, twin_path(page.file))
            if page.kind == "home":
                about.links.insert(0, indexes.LlmsLink(title, twin, summary))
            elif page.kind == "faq":
                about.links.append(
                    indexes.LlmsLink(ui(language, "faq"), twin, f"{len(site.faqs)} Q&A")
                )
            elif page.kind == "facts":
                about.links.append(
                    indexes.LlmsLink(
                        ui(language, "facts"),
                        twin,
                        f"{len(site.facts)} facts with sources and dates",
                    )
                )
            elif page.kind == "entity":
                entity = site.entities[page.main[0]]
                by_section.setdefault(page.section, []).append(
                    indexes.LlmsLink(
                        entity.name(language, default), twin, descriptions.get(entity.iri, "")
                    )
                )
        sections = [about] + [
            indexes.LlmsSection(ui(language, section), links)
            for section, links in sorted(by_section.items())
        ]
        prefix = language_prefix(site, language)
        optional = [
            indexes.LlmsLink(
                ui(language, "full_text"),
                absolute_url(self.brand, f"{prefix}llms-full.txt"),
                ui(language, "full_text_note"),
            ),
            indexes.LlmsLink(
                ui(language, "graph"),
                absolute_url(self.brand, "graph.jsonld"),
                ui(language, "graph_note"),
            ),
            indexes.LlmsLink(
                ui(language, "sitemap"),
                absolute_url(self.brand, "sitemap.xml"),
                ui(language, "sitemap_note"),
            ),
        ]
        for path, text in indexes.llms_files(
            site, language, title, summary, sections, optional
        ).items():
            self.store(path, "llms", text.encode("utf-8"), key)
        self.tick(2)
        twins = (
            artifact_read(self.result.entries[twin_path(page.file)].sha256)
            for page, _ in pages
            if page.kind != "section"
        )
        for path, text in indexes.llms_full_files(site, language, title, summary, twins).items():
            self.store(path, "llms-full", text.encode("utf-8"), key)
        self.tick(2)

    def descriptions(self, site: SiteContent, iris: Iterable[str]) -> dict[str, dict[str, str]]:
        """Each entity's one-line description per language, read once for all languages."""
        if self._descriptions is not None:
            return self._descriptions
        found: dict[str, dict[str, str]] = {language: {} for language in site.languages}
        iris = list(dict.fromkeys(iris))
        for start in range(0, len(iris), 1000):
            chunk = iris[start : start + 1000]
            contents = revisions_by_id(site.entities[i].revision_id for i in chunk)
            for iri in chunk:
                content = contents[site.entities[iri].revision_id]
                for language in site.languages:
                    found[language][iri] = one_line(
                        text_of(content, "description", language, site.default_language), 200
                    )
        self._descriptions = found
        return found


def release_artifacts_save(release: Release, result: BuildResult) -> None:
    rows = (
        ReleaseArtifact(
            release=release,
            path=entry.path,
            sha256=entry.sha256,
            size=entry.size,
            content_type=CONTENT_TYPES[entry.kind],
            kind=entry.kind,
            fingerprint=entry.fingerprint,
            changed_at=entry.changed_at,
        )
        for entry in result.entries.values()
    )
    batch: list[ReleaseArtifact] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 2000:
            ReleaseArtifact.objects.bulk_create(batch)
            batch = []
    if batch:
        ReleaseArtifact.objects.bulk_create(batch)
