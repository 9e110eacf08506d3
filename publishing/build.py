"""Building a release: plan every artifact, render only what changed, store content-addressed.

Each artifact has a fingerprint of everything it is rendered from (the revisions it shows,
the site-wide settings, the renderer's version). An artifact whose fingerprint equals the
one in the previous release is carried over without rendering; one that is rendered but
comes out byte-identical is not stored again.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import multiprocessing
import os
import signal
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from publishing.ai_use import AiUsePolicy, ai_use_policy
from publishing.heap import heap_trim
from publishing.locks import fork_guard
from publishing.manifest import Entry, PreviousManifest, previous_manifest_read, whole_seconds
from publishing.media import media_artifact_type, media_bytes, media_published
from publishing.models import MediaAsset, Release, ReleaseArtifact
from publishing.plan import PagePlan, pages_affected, plan_key, plan_load, plan_save
from publishing.render import feeds, indexes
from publishing.render import graph as g
from publishing.render.pages import (
    PageInputs,
    StatementIndex,
    entity_url,
    page_inputs,
    page_url,
    render_page,
    translated_path,
)
from publishing.render.text import link_target, one_line
from publishing.render.ui import ui
from publishing.site import (
    LISTING_KINDS,
    LiveEntity,
    Page,
    SiteContent,
    SitePages,
    absolute_url,
    digest,
    language_prefix,
    listing_pages,
    revisions_by_id,
    site_content_load,
    site_pages,
    text_of,
    twin_path,
    url_path,
)
from publishing.store import (
    artifact_present,
    artifact_put,
    artifact_put_chunks,
    artifact_read,
    artifact_read_range,
)

RENDERER_VERSION = "1"
CONTENT_TYPES = {
    "page": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "llms": "text/plain; charset=utf-8",
    "llms-full": "text/plain; charset=utf-8",
    "sitemap": "application/xml",
    "robots": "text/plain; charset=utf-8",
    "graph": "application/ld+json",
    # "media": the brand's images, typed by their extension (see publishing.media)
}
RENDER_BATCH = 200
# Products read at once for a language's feeds.
FEED_BATCH = 1000
# Listing pages (500 entities or statements each) per task; they are rendered in the
# builder's process (see Builder.build).
LISTING_BATCH = 10
# Below this many pages to render, forking workers costs more than it saves.
PARALLEL_MIN_PAGES = 400
# A render worker is replaced (forked afresh) after this many tasks: the pages of its
# parent's memory it wrote to (reference counts, its own objects put in free space) stop
# being its private copies, and memory it took for large pages goes back to the system.
# At 100,000 products a worker's copies grew by 5 MB a task: at 20 tasks the two workers'
# held 200 MB more at the peak of a publish than at 5.
TASKS_PER_WORKER = 5

Progress = Callable[[int, int], None]


# A release's summary lists this many of the paths that changed.
CHANGED_PATHS_LISTED = 1000


@dataclass
class BuildResult:
    counts: Counter[str] = field(default_factory=Counter)  # artifacts by kind
    previous_release_id: int | None = None
    processes: int = 1  # the most processes that rendered at once
    rendered: int = 0
    reused: int = 0
    changed: int = 0
    changed_paths: list[str] = field(default_factory=list)  # the first CHANGED_PATHS_LISTED
    removed: list[str] = field(default_factory=list)
    stored: int = 0
    left_out: dict[str, list[str]] = field(default_factory=dict)
    graph_parts: list[list] = field(default_factory=list)  # see Release.graph_parts
    feeds: list[dict] = field(default_factory=list)  # see Release.feeds
    site_state: dict = field(default_factory=dict)  # see Release.site_state
    build_plan: dict = field(default_factory=dict)  # see Release.build_plan
    pages_fingerprinted: int = 0  # the others were carried over by the parent's plan
    revisions_read: int = 0  # live revisions read (the others' records were carried over)

    @property
    def artifacts(self) -> int:
        return sum(self.counts.values())


class LlmsRow(NamedTuple):
    """What the llms files need of a page."""

    kind: str
    section: str | None
    page_number: int
    name: str  # entity pages: the entity's name and summary
    summary: str
    twin_path: str  # its Markdown twin
    twin_sha256: str
    twin_size: int


Task = tuple[str, tuple, int]  # a Builder method's name, its arguments, its progress weight
Made = list[tuple[Entry, bool]]  # artifacts stored, and whether their bytes were new
Done = tuple[Made, dict]  # what a task stored, and what else it tells the builder

# The builder a forked worker inherits from its parent (set only while a pool runs).
_forked_builder: Builder | None = None


def _forked_init() -> None:
    # A worker inherits its parent's signal handlers (a Celery worker's among them): it is
    # stopped by its pool, and Ctrl-C is for the parent to handle.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_forked(task: Task) -> Done:
    assert _forked_builder is not None
    name, args, _ = task
    return _forked_builder.run_task(name, args)


def build_processes() -> int:
    return max(1, settings.SOURCEBOOK_BUILD_PROCESSES or os.cpu_count() or 1)


def can_fork() -> bool:
    """Forking is safe only outside a transaction (the children cannot see it), with a
    database other processes can open (not SQLite in memory), and where the platform forks;
    a daemonic process (some task pools) may not have children."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
        and not any(c.in_atomic_block for c in connections.all(initialized_only=True))
        and not (connection.vendor == "sqlite" and connection.is_in_memory_db())
    )


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
        package / "ai_use.py",  # robots.txt's preference lines
    ]
    for path in sources:
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


@functools.lru_cache(maxsize=4096)  # a build's pages share a few times
def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


@functools.lru_cache(maxsize=4096)
def iso_seconds(seconds: int) -> str:
    return iso(datetime.fromtimestamp(seconds, UTC))


def localized_link(site: SiteContent, entity: LiveEntity, language: str, url: str) -> str:
    """A link to the entity's page (with a query or fragment, as an offer's URL has) made a
    link to its page in ``language``: shopping surfaces want the feed's language on the
    landing page. Any other URL is kept."""
    default_url = entity_url(site, entity, site.default_language)
    if language == site.default_language or not default_url or not url.startswith(default_url):
        return url
    return entity_url(site, entity, language) + url[len(default_url) :]


class Builder:
    def __init__(self, release: Release, previous: Release | None, progress: Progress | None):
        self.release = release
        self.brand = release.brand
        self.previous_release = previous
        # Read when the build knows which of its rows it needs (see build).
        self.previous = PreviousManifest()
        self.previous_graph_parts: list[list] = previous.graph_parts if previous else []
        self.previous_feeds: list[dict] = previous.feeds if previous else []
        self.previous_state: dict | None = previous.site_state if previous else None
        self.previous_plan: dict | None = previous.build_plan if previous else None
        self.plan_key = ""
        self.manifest = ManifestWriter(release)
        self.progress = progress
        self.now = timezone.now()
        self.result = BuildResult(previous_release_id=previous.pk if previous else None)
        self.done = 0
        self.total = 0
        self.site: SiteContent | None = None
        self.index: StatementIndex | None = None
        self.pages: SitePages | None = None
        # The pages to render, by their index in ``pages`` (listings first), and each one's
        # fingerprint (32 bytes). Arrays, not a tuple and a string per page: at 100,000
        # products they are 8 MB, not 35.
        self.work = array("l")
        self.work_fingerprints = bytearray()
        # Every page's fingerprint, by the page's index (kept with the release, see
        # publishing.plan).
        self.page_fingerprints = bytearray()
        # The parent's plan's twins' last changes, when the build started from it.
        self.planned_twin_changed: array | None = None
        # What the sitemaps and llms files need of each page's Markdown twin, by the page's
        # index: its sha256 (32 bytes), size, and when it last changed (POSIX seconds). Held
        # as an Entry per twin they were 90 MB at 100,000 products.
        self.twin_sha256 = bytearray()
        self.twin_size = array("q")
        self.twin_changed = array("q")
        self.parallel = False
        # Where store() puts what it made while a task runs, and what else it tells (see
        # run_task).
        self.sink: Made | None = None
        self.notes: dict = {}
        self.llms_heads: dict[str, tuple[str, str]] = {}  # by language, see llms_head

    # -- bookkeeping --

    def tick(self, n: int = 1) -> None:
        self.done += n
        if self.progress:
            with fork_guard:  # the progress is saved to the release
                self.progress(self.done, self.total)

    def reuse(self, path: str, fingerprint: str) -> bool:
        return bool(self.reuse_all([path], fingerprint))

    def store(self, path: str, kind: str, content: bytes, fingerprint: str) -> None:
        self.stored(path, kind, fingerprint, *artifact_put(content), len(content))

    def store_chunks(self, path: str, kind: str, chunks: Iterable[bytes], fingerprint: str):
        """Store a large artifact written piece by piece, never whole in memory."""
        self.stored(path, kind, fingerprint, *artifact_put_chunks(chunks))

    def stored(
        self, path: str, kind: str, fingerprint: str, sha256: str, new: bool, size: int
    ) -> None:
        old = self.previous.get(path)
        unchanged = old is not None and old.sha256 == sha256
        changed_at = old.changed_at if unchanged else self.now
        entry = Entry(path, kind, sha256, size, fingerprint, changed_at)
        assert self.sink is not None, "store() runs inside a task"
        self.sink.append((entry, new))

    def record(self, entry: Entry, new: bool) -> None:
        """An artifact rendered in this build (``new``: its bytes were not in the store)."""
        old = self.previous.get(entry.path)
        self.manifest.add(entry)
        self.seen(entry)
        self.result.rendered += 1
        self.result.stored += int(new)
        if old is None or old.sha256 != entry.sha256:
            self.result.changed += 1
            if len(self.result.changed_paths) < CHANGED_PATHS_LISTED:
                self.result.changed_paths.append(entry.path)

    def seen(self, entry: Entry) -> None:
        """An artifact rendered in this release."""
        self.result.counts[entry.kind] += 1
        self.previous.mark_seen(entry.path)

    def twin_set(self, number: int, sha256: bytes, size: int, changed_at: int) -> None:
        """Page ``number``'s Markdown twin (``changed_at`` in whole seconds since the epoch)."""
        self.twin_sha256[32 * number : 32 * number + 32] = sha256
        self.twin_size[number] = size
        self.twin_changed[number] = changed_at

    def twin_sha256_of(self, number: int) -> str:
        return self.twin_sha256[32 * number : 32 * number + 32].hex()

    # -- the build --

    def build(self) -> BuildResult:
        site = site_content_load(brand=self.brand, previous_state=self.previous_state)
        self.result.left_out = site.left_out
        self.result.site_state = site.state.saved()
        self.result.revisions_read = site.state.read
        policy = ai_use_policy(brand=self.brand)
        index = StatementIndex.of(site)
        pages = site_pages(site)
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
        # Two files a page; the graph, robots.txt, each sitemap file and their index; per
        # language, llms.txt (with its parts, if any) and the full text's parts, which are
        # added when they are planned.
        sitemaps = len(indexes.sitemap_groups(range(len(pages))))
        self.total = 2 * len(pages) + 3 + sitemaps + len(site.languages)
        self.site = site
        self.index = index
        self.pages = pages
        self.plan_key = plan_key(site, pages, site_key)
        plan = plan_load(self.previous_plan, key=self.plan_key, pages=len(pages))
        affected = pages_affected(site, pages) if plan is not None else None
        numbers: Iterable[int]
        if plan is None or affected is None:
            self.previous = previous_manifest_read(self.previous_release)
            numbers = range(len(pages))
            self.twin_sha256 = bytearray(32 * len(pages))
            self.twin_size = array("q", [0]) * len(pages)
            self.twin_changed = array("q", [-1]) * len(pages)
            self.page_fingerprints = bytearray(32 * len(pages))
        else:
            # The other pages show what they showed in the parent: carried over as planned.
            files = [f for number in affected for f in self.page_files(pages[number])]
            self.previous = previous_manifest_read(self.previous_release, pages=files)
            numbers = affected
            self.twin_sha256 = plan.twin_sha256
            self.twin_size = plan.twin_size
            self.twin_changed = plan.twin_changed
            self.planned_twin_changed = array("q", plan.twin_changed)
            self.page_fingerprints = plan.fingerprints
            carried = len(pages) - len(affected)
            self.result.reused += 2 * carried
            self.result.counts["page"] += carried
            self.result.counts["markdown"] += carried
            self.tick(2 * carried)
        self.result.pages_fingerprinted = len(numbers)
        # The listing pages first: they are rendered here (see below).
        listings, others = array("l"), array("l")
        listing_fingerprints, other_fingerprints = bytearray(), bytearray()
        previous = self.previous
        for number in numbers:
            page = pages[number]
            # What a page shows is worked out again when it is rendered, not held for each of
            # hundreds of thousands of pages.
            inputs = page_inputs(site, page, index)
            fingerprint = digest(
                site_key,
                page.kind,
                page.path,
                page.language,
                sorted(inputs.revision_ids(site)),
                self.size_shown(site, page),
                self.alt_shown(site, inputs),
            )
            self.page_fingerprints[32 * number : 32 * number + 32] = bytes.fromhex(fingerprint)
            twin = twin_path(page.file)
            if carried_over := self.reuse_all([page.file, twin], fingerprint):
                old = carried_over[1]
                self.twin_set(
                    number, previous.digest(old), previous.sizes[old], previous.changed_second(old)
                )
                self.tick(2)
                continue
            listing = page.kind in LISTING_KINDS
            (listings if listing else others).append(number)
            (listing_fingerprints if listing else other_fingerprints).extend(
                bytes.fromhex(fingerprint)
            )
        listing_pages = len(listings)
        self.work = work = listings + others
        self.work_fingerprints = listing_fingerprints + other_fingerprints
        del listings, others, listing_fingerprints, other_fingerprints
        self.parallel = (
            build_processes() > 1
            and max(len(work), len(pages)) >= PARALLEL_MIN_PAGES
            and can_fork()
        )
        base_key = digest(
            renderer_digest(), self.brand.name, self.brand.base_url, self.brand.languages
        )
        # Section, FAQ and facts pages name and link the entities they list: workers rendering
        # them read every entity of the site, and so copied them from their parent (at
        # 100,000 products, 250-300 MB at once in each worker). They are rendered in this
        # process while the workers render the entities' own pages.
        listing_renders: list[Task] = [
            ("render_range", (start, min(start + LISTING_BATCH, listing_pages)), 0)
            for start in range(0, listing_pages, LISTING_BATCH)
        ]
        renders: list[Task] = [
            ("render_range", (start, start + RENDER_BATCH), 0)
            for start in range(listing_pages, len(work), RENDER_BATCH)
        ]
        # The graph needs no rendered page: it is built here while the workers render pages
        # (it reads every entity too), or, when few pages changed, in a worker while this
        # process makes the other site-wide files (which need the rendered pages). Those run
        # here, not in workers: a forked worker copies what it touches of its parent's
        # memory, and the pages it allocates for its own objects are its parent's free space
        # too (at 100,000 products two such workers held 300-400 MB each, for no gain).
        graph = self.graph_tasks(base_key)
        if len(work) >= PARALLEL_MIN_PAGES:
            listing_renders, graph = graph + listing_renders, []
        self.run_tasks(renders, here=listing_renders, workers=build_processes())
        # The feeds are made here too: a forked worker reading every product copies the pages
        # of this process's memory it touches (100 MB more at the peak at 100,000 products).
        here = chain(self.index_tasks(site, policy, base_key), self.feed_tasks(base_key))
        self.run_tasks(graph, here=here)
        # The brand's images the published content links, copied here: no rendering.
        self.run_tasks([], here=self.media_tasks())
        self.result.removed = self.previous.unseen()
        self.result.build_plan = plan_save(
            key=self.plan_key,
            plan=PagePlan(
                self.page_fingerprints, self.twin_sha256, self.twin_size, self.twin_changed
            ),
        )
        self.manifest.flush()
        return self.result

    @staticmethod
    def page_files(page: Page) -> tuple[str, str]:
        return page.file, twin_path(page.file)

    # -- running tasks here or in forked workers --

    def run_tasks(
        self, tasks: list[Task], here: Iterable[Task] | None = None, workers: int | None = None
    ) -> None:
        """Run each task, in forked worker processes when the build is large and this
        process may fork, else here, and the tasks ``here`` in this process meanwhile;
        record what they made: first the tasks here, then the others, in order. ``workers``
        (default: one per core, less this process when it has tasks) is how many to fork."""
        if not self.parallel or not tasks or (len(tasks) < 2 and not here):
            for name, args, weight in chain(here or (), tasks):
                self.record_made(self.run_task(name, args), weight)
            return
        global _forked_builder
        _forked_builder = self
        # Children must open their own database connections, never share the parent's.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        # This process is one of them when it has tasks of its own.
        wanted = workers if workers is not None else build_processes() - bool(here)
        processes = max(1, min(wanted, len(tasks)))
        self.result.processes = max(
            self.result.processes, min(build_processes(), processes + bool(here))
        )
        # Objects the children inherit are left out of their garbage collections: a collection
        # touches every object, which copied the builder's whole heap into each child.
        gc.freeze()
        heap_trim()
        pool = context.Pool(processes, initializer=_forked_init, maxtasksperchild=TASKS_PER_WORKER)
        try:
            forked = pool.imap(_run_forked, tasks)
            # No more tasks: each worker exits when none is left for it, not when this
            # process is done with its own. A forked worker that idles on keeps a copy of
            # every page of this process's memory that this process writes meanwhile (at
            # 100,000 products, the graph's worker grew by 170 MB while this process made the
            # llms files).
            pool.close()
            # Tasks here take the database lock only while they read (revisions_by_id): held
            # for a whole task, it kept the pool from replacing its workers meanwhile.
            for name, args, weight in here or ():
                self.record_made(self.run_task(name, args), weight)
            for (_, _, weight), made in zip(tasks, forked, strict=True):
                self.record_made(made, weight)
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
            gc.unfreeze()
            _forked_builder = None

    def run_task(self, name: str, args: tuple) -> Done:
        self.sink = []
        self.notes = {}
        try:
            getattr(self, name)(*args)
            return self.sink, self.notes
        finally:
            self.sink = None

    def record_made(self, done: Done, weight: int) -> None:
        made, notes = done
        twins = iter(notes.get("twins", ()))
        for entry, new in made:
            self.record(entry, new)
            if entry.kind == "markdown":
                sha256 = bytes.fromhex(entry.sha256)
                self.twin_set(next(twins), sha256, entry.size, whole_seconds(entry.changed_at))
        if "graph_parts" in notes:
            self.result.graph_parts = notes["graph_parts"]
        if "feeds" in notes:
            self.result.feeds = notes["feeds"]
        self.tick(weight or len(made))

    def render_range(self, start: int, stop: int) -> None:
        """Render ``work[start:stop]`` and store the bytes of each page and its twin."""
        assert self.sink is not None
        site = self.site
        batch = []
        for k in range(start, min(stop, len(self.work))):
            page = self.pages[self.work[k]]
            fingerprint = self.work_fingerprints[32 * k : 32 * k + 32].hex()
            batch.append((self.work[k], page, page_inputs(site, page, self.index), fingerprint))
        # The pages whose twins this task stores, in order (see record_made).
        self.notes["twins"] = [number for number, *_ in batch]
        wanted = {i for _, _, inputs, _ in batch for i in inputs.content_revision_ids(site)}
        if site.organization_iri in site.entities:
            wanted.add(site.entities[site.organization_iri].revision_id)
        contents = revisions_by_id(wanted)
        for _, page, inputs, fingerprint in batch:
            twin = twin_path(page.file)
            changed_at: list[datetime] = []

            def lastmod_for(markdown: bytes, twin=twin, inputs=inputs, changed_at=changed_at):
                # A page's lastmod: when its visible content (its Markdown twin) last changed.
                old = self.previous.get(twin)
                if old is not None and old.sha256 == hashlib.sha256(markdown).hexdigest():
                    changed_at.append(old.changed_at)
                else:
                    changed_at.append(self.content_time(site, inputs))
                return iso(changed_at[0])

            rendered = render_page(site, page, inputs, contents, lastmod_for=lastmod_for)
            for path, kind, content in (
                (twin, "markdown", rendered.markdown),
                (page.file, "page", rendered.html),
            ):
                sha256, new = artifact_put(content)
                entry = Entry(path, kind, sha256, len(content), fingerprint, changed_at[0])
                self.sink.append((entry, new))

    def content_time(self, site: SiteContent, inputs: PageInputs) -> datetime:
        """When the content shown changed: the latest publication among the page's inputs."""
        times = [site.entities[i].published_at for i in (*inputs.full, *inputs.listed)]
        times += [s.published_at for s in (*inputs.facts, *inputs.faqs)]
        times = [t for t in times if t]
        return (max(times) if times else self.brand.updated_at).replace(microsecond=0)

    def alt_shown(self, site: SiteContent, inputs: PageInputs) -> list:
        """The alt texts of the uploaded images a page's entities link (kept with the
        media, not in the entities' revisions)."""
        if not site.media_alt:
            return []
        return sorted(
            (path, sorted(site.media_alt[path].items()))
            for iri in inputs.full
            for path in site.entities[iri].media
            if path in site.media_alt
        )

    def size_shown(self, site: SiteContent, page: Page) -> int | dict:
        """What a page shows of the size of the site: the home page its sections' sizes, a
        page of a listing how many pages the listing has (its links to them)."""
        if page.kind == "home":
            return site.section_counts
        return listing_pages(site, page)

    # -- site-wide artifacts --

    def graph_tasks(self, base_key: str) -> list[Task]:
        """The brand graph, made in parts (see ``indexes.graph_parts``): each part's key is
        the revisions it shows, and a part the previous graph has is copied from it."""
        site = self.site
        entities = sorted(site.entities.values(), key=lambda e: e.iri)
        graph_key = digest(base_key, "graph", site.organization_iri, sorted(site.hidden))
        plan: list[tuple[str, str, list]] = [
            (digest(graph_key, ids), "entities", ids)
            for start, stop in indexes.graph_parts([e.iri for e in entities])
            if (ids := [e.revision_id for e in entities[start:stop]])
        ]
        # Then the facts (a Claim each, by key) and the FAQs (a FAQPage per entity they are
        # about), in parts made the same way: a part's key is the revisions it shows.
        for start, stop in indexes.graph_parts([s.key for s in site.facts]):
            shown = site.facts[start:stop]
            plan.append(
                (
                    digest(graph_key, "facts", [(s.revision_id, s.about_iri) for s in shown]),
                    "facts",
                    [s.key for s in shown],
                )
            )
        faq_pages = indexes.faq_pages(site)
        for start, stop in indexes.graph_parts([about or "" for about in faq_pages]):
            abouts = list(faq_pages)[start:stop]
            shown = [(about, [s.revision_id for s in faq_pages[about]]) for about in abouts]
            plan.append((digest(graph_key, "faqs", shown), "faqs", abouts))
        key = digest(graph_key, site.organization_iri in site.entities, [p[0] for p in plan])
        if self.reuse("graph.jsonld", key):
            self.result.graph_parts = self.previous_graph_parts
            self.tick()
            return []
        return [("build_graph", (key, plan), 1)]

    def build_graph(self, key: str, plan: list[tuple[str, str, list]]) -> None:
        """graph.jsonld from the parts planned as (key, kind, what it shows): a part the
        previous graph has (by key) is copied from it, the others are made again: entities
        from their revision ids, facts by key, FAQ pages by the IRI they are about."""
        site = self.site
        old = self.previous.get("graph.jsonld")
        # Parts are copied only from a previous graph the store still holds whole (one
        # removed by hand is made again, never copied short).
        old_parts = (
            {part: (offset, length) for part, offset, length in self.previous_graph_parts}
            if old and artifact_present(old.sha256, old.size)
            else {}
        )
        parts: list[list] = []

        def chunks() -> Iterator[bytes]:
            head = indexes.brand_graph_head(site).encode("utf-8")
            yield head
            offset = len(head)
            for part, kind, shown in plan:
                if part in old_parts:
                    length = old_parts[part][1]
                    yield from artifact_read_range(old.sha256, old_parts[part][0], length)
                else:
                    if kind == "entities":
                        found = revisions_by_id(shown)
                        nodes = indexes.brand_graph_nodes(site, [found[i] for i in shown])
                    elif kind == "facts":
                        nodes = indexes.brand_graph_facts(site, shown)
                    else:
                        nodes = indexes.brand_graph_faq_pages(site, shown)
                    data = nodes.encode("utf-8")
                    length = len(data)
                    yield data
                parts.append([part, offset, length])
                offset += length
            yield indexes.BRAND_GRAPH_END.encode("utf-8")

        self.store_chunks("graph.jsonld", "graph", chunks(), key)
        self.notes["graph_parts"] = parts

    def index_tasks(self, site: SiteContent, policy: AiUsePolicy, base_key: str) -> Iterator[Task]:
        """robots.txt, the sitemaps and each language's llms files: the tasks that make what
        changed of them, planned one file at a time as they run, so that what a file needs of
        every page (at 100,000 products, 200,000 rows) is held only while it is made."""
        assert -1 not in self.twin_changed, "every page's twin is recorded"
        robots_key = digest(base_key, "robots", policy.key())
        if not self.reuse("robots.txt", robots_key):
            text = indexes.robots_txt(site, policy=policy)
            yield ("build_robots", (robots_key, text), 1)
        else:
            self.tick()

        # One task per sitemap file whose URLs or lastmods changed; the index, which names
        # each file's newest lastmod, after them.
        files: list[tuple[str, str]] = []
        planned = self.planned_twin_changed
        for number, group in enumerate(indexes.sitemap_groups(range(len(self.pages))), 1):
            path = indexes.sitemap_path(number)
            if group and planned is not None:
                # The parent's plan holds: the same pages, and if no twin of the group changed
                # since, the same file (made from this base key, which the plan's key names).
                start, stop = group[0], group[-1] + 1
                old = self.previous.get(path)
                if (
                    old is not None
                    and self.twin_changed[start:stop] == planned[start:stop]
                    and self.reuse(path, old.fingerprint)
                ):
                    files.append((path, iso_seconds(max(self.twin_changed[start:stop]))))
                    self.tick()
                    continue
            located = [
                (page.language, page.path, self.twin_lastmod(i))
                for i, page in zip(group, self.pages.between(group), strict=True)
            ]
            key = digest(base_key, "sitemap", path, located)
            files.append((path, max((lastmod for _, _, lastmod in located), default="")))
            if self.reuse(path, key):
                self.tick()
            else:
                yield ("build_sitemap", (path, key, located), 1)
            del located
        index_key = digest(base_key, "sitemap-index", files)
        if not self.reuse("sitemap.xml", index_key):
            yield ("build_sitemap_index", (index_key, files), 1)
        else:
            self.tick()

        for language in site.languages:
            yield from self.llms_tasks(language, base_key, self.llms_rows(language))

    def twin_lastmod(self, number: int) -> str:
        """Page ``number``'s lastmod: when its twin (what it shows) last changed."""
        return iso_seconds(self.twin_changed[number])

    def llms_rows(self, language: str) -> list[LlmsRow]:
        site = self.site
        rows: list[LlmsRow] = []
        for number, page in self.pages.numbered(language):
            name = summary = ""
            if page.kind == "entity":
                entity = site.entities[page.main[0]]
                name = entity.name(language, site.default_language)
                summary = entity.summary(language)
            rows.append(
                LlmsRow(
                    page.kind,
                    page.section,
                    page.page_number,
                    name,
                    summary,
                    twin_path(page.file),
                    self.twin_sha256_of(number),
                    self.twin_size[number],
                )
            )
        return rows

    def feed_tasks(self, base_key: str) -> list[Task]:
        """The product feeds of every language (see publishing.render.feeds), made in parts
        of the products sorted by IRI (``indexes.graph_parts``): a part's key is the
        revisions it shows, and a part the previous release's feeds have is copied from
        them. Carried over whole, with what they said of their rows, when no part changed."""
        site = self.site
        products = sorted(
            (entity.iri, entity.revision_id)
            for entity in site.entities.values()
            if feeds.is_product(entity.types)
        )
        if not products:
            return []
        org = site.entities.get(site.organization_iri)
        feeds_key = digest(base_key, "feeds", org and org.revision_id, sorted(site.hidden))
        plan = [
            (digest(feeds_key, products[start:stop]), [rev for _, rev in products[start:stop]])
            for start, stop in indexes.graph_parts([iri for iri, _ in products])
        ]
        del products
        key = digest(feeds_key, site.languages, [part for part, _ in plan])
        self.total += 1
        previous = self.previous_feeds
        if [report["language"] for report in previous] == site.languages and all(
            report.get("key") == key for report in previous
        ):
            # A language whose every offer was refused has no file, only its report.
            paths = [f["path"] for report in previous for f in report["files"]]
            if not paths or self.reuse_all(paths, key):
                self.result.feeds = previous
                self.tick()
                return []
        return [("build_feeds", (key, plan), 1)]

    def build_feeds(self, key: str, plan: list[tuple[str, list[int]]]) -> None:
        """Every language's feeds from the parts planned as (key, revision ids): each
        product read once, its page node made in each language."""
        site = self.site
        default = site.default_language
        products = {
            entity.revision_id: entity
            for entity in site.entities.values()
            if feeds.is_product(entity.types)
        }
        org = site.entities.get(site.organization_iri)
        org_content = revisions_by_id([org.revision_id])[org.revision_id] if org else None
        store_country = feeds.store_country_of(org_content)
        previous = {report["language"]: report for report in self.previous_feeds}

        @functools.cache
        def present(path: str) -> bool:
            old = self.previous.get(path)
            return old is not None and artifact_present(old.sha256, old.size)

        def read_old(path: str, offset: int, length: int) -> Iterator[bytes]:
            return artifact_read_range(self.previous.get(path).sha256, offset, length)

        def name_of(language: str, value) -> str:
            value = value[0] if isinstance(value, list) and value else value
            if isinstance(value, dict) and set(value) == {"@id"}:
                entity = site.entities.get(value["@id"])
                return entity.name(language, default) if entity else ""
            if isinstance(value, dict):
                return feeds.text(value.get("name"))
            return feeds.text(value)

        with ExitStack() as stack:
            files = {
                language: stack.enter_context(
                    feeds.FeedFiles(language, previous.get(language), present)
                )
                for language in site.languages
            }
            for part, revision_ids in plan:
                if all(f.can_reuse(part) for f in files.values()):
                    for f in files.values():
                        f.reuse(part)
                    continue
                for f in files.values():
                    f.begin(part)
                contents = revisions_by_id(revision_ids)
                for revision_id in revision_ids:
                    entity = products[revision_id]
                    for language, f in files.items():
                        node = g.full_node(contents[revision_id], language, default, site.hidden)
                        f.add(
                            *feeds.product_rows(
                                node,
                                name_of=functools.partial(name_of, language),
                                store_country=store_country,
                                link_of=functools.partial(localized_link, site, entity, language),
                            )
                        )
                for f in files.values():
                    f.end()
            reports = []
            for f in files.values():
                for path, _, chunks in f.assembled(read_old):
                    self.store_chunks(path, "feed", chunks, key)
                reports.append(f.report(key))
        self.notes["feeds"] = reports

    def media_tasks(self) -> list[Task]:
        """The brand's images that the published content links, at ``media/<path>``: an
        image whose bytes the previous release has is carried over."""
        assets = media_published(self.brand, self.site.media_paths)
        self.total += len(assets)
        tasks: list[Task] = []
        for asset in assets:
            path = f"media/{asset.path}"
            key = digest("media", asset.sha256, asset.content_type)
            if self.reuse(path, key):
                self.tick()
            else:
                tasks.append(("build_media", (path, key, asset.pk), 1))
        return tasks

    def build_media(self, path: str, key: str, asset_pk: int) -> None:
        asset = MediaAsset.objects.select_related("brand").get(pk=asset_pk)
        self.store(path, "media", media_bytes(asset), key)

    def build_robots(self, key: str, text: str) -> None:
        self.store("robots.txt", "robots", text.encode("utf-8"), key)

    def build_sitemap(self, path: str, key: str, located: list[tuple[str, str, str]]) -> None:
        """A sitemap file of the pages given as (language, path, lastmod)."""
        site = self.site
        default = site.default_language
        entries = (
            indexes.SitemapEntry(
                url=page_url(site, page_path),
                lastmod=lastmod,
                alternates=[
                    (lang, page_url(site, translated_path(site, page_path, language, lang)))
                    for lang in site.languages
                ]
                + [
                    (
                        "x-default",
                        page_url(site, translated_path(site, page_path, language, default)),
                    )
                ],
            )
            for language, page_path, lastmod in located
        )
        self.store_chunks(path, "sitemap", indexes.url_set(entries), key)

    def build_sitemap_index(self, key: str, files: list[tuple[str, str]]) -> None:
        self.store("sitemap.xml", "sitemap", indexes.sitemap_index(self.site, files), key)

    def reuse_all(self, paths: list[str], fingerprint: str) -> list[int] | None:
        """Carry over a group of files made together, if there is one and all still fit:
        their positions in the previous manifest, else None."""
        found = self.previous.match(paths, fingerprint) if paths else None
        if found is None:
            return None
        previous = self.previous
        for number in found:
            self.result.reused += 1
            self.result.counts[previous.kind(number)] += 1
            previous.seen[number] = 1
        return found

    def previous_paths(self, kind: str) -> list[str]:
        return self.previous.paths_of(kind)

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

    def llms_tasks(self, language: str, base_key: str, rows: list[LlmsRow]) -> Iterator[Task]:
        """The tasks that make what changed of one language's llms.txt and full text.

        llms.txt lists the pages by name and summary: it is made again when one of those or
        the pages listed change, not for an edit of what a page shows. The full text is cut in
        parts planned from the twins' sizes (see ``indexes.llms_full_parts``): only the parts
        whose twins changed are made again, reading only their twins.
        """
        site = self.site
        org = site.entities.get(site.organization_iri)
        head_key = digest(
            base_key,
            language,
            org.revision_id if org else None,
            [
                indexes.limit(name, default)
                for name, default in (
                    ("SOURCEBOOK_LLMS_MAX_CHARS", indexes.LLMS_MAX_CHARS),
                    ("SOURCEBOOK_LLMS_PART_CHARS", indexes.LLMS_PART_CHARS),
                    ("SOURCEBOOK_LLMS_FULL_MAX_CHARS", indexes.LLMS_FULL_MAX_CHARS),
                )
            ],
        )
        listed = [row[:6] for row in rows]
        key = digest(head_key, "llms", len(site.faqs), len(site.facts), listed)
        paths = self.previous_paths_in("llms", language, site)
        if paths and self.reuse_all(paths, key):
            self.tick()
        else:
            yield ("build_llms", (language, key, listed), 1)
        del listed

        full_text = [row for row in rows if row.kind != "section"]
        average = sum(row.twin_size for row in full_text) / max(len(full_text), 1)
        ranges = indexes.llms_full_parts([(r.twin_path, r.twin_size) for r in full_text], average)
        self.total += len(ranges) + (len(ranges) > 1)
        parts: list[str] = []
        for start, stop in ranges:
            members = [(row.twin_path, row.twin_sha256) for row in full_text[start:stop]]
            first = members[0][0] if len(ranges) > 1 else None
            path = indexes.llms_full_path(site, language, first)
            parts.append(path)
            key = digest(head_key, "llms-full", path, members)
            if self.reuse(path, key):
                self.tick()
            else:
                yield ("build_llms_full", (language, path, key, members), 1)
        if len(ranges) > 1:
            key = digest(head_key, "llms-full-index", parts)
            if self.reuse(indexes.llms_full_path(site, language), key):
                self.tick()
            else:
                yield ("build_llms_full_index", (language, key, parts), 1)

    def llms_head(self, language: str) -> tuple[str, str]:
        """The title and summary of one language's llms files: the organization's (read
        once per language, not by each of its files)."""
        if language not in self.llms_heads:
            self.llms_heads[language] = self.llms_head_read(language)
        return self.llms_heads[language]

    def llms_head_read(self, language: str) -> tuple[str, str]:
        site = self.site
        default = site.default_language
        org = site.entities.get(site.organization_iri)
        content = revisions_by_id([org.revision_id]).get(org.revision_id) if org else None
        title = (text_of(content, "name", language, default) if content else "") or (
            self.brand.name
        )
        summary = (
            one_line(text_of(content, "description", language, default), 300) if content else ""
        ) or title
        return title, summary

    def build_llms(self, language: str, key: str, rows: list[tuple]) -> None:
        """One language's llms.txt (and its parts): its pages' (kind, section, page number,
        name, summary, twin path), see ``llms_rows``."""
        site = self.site
        title, summary = self.llms_head(language)
        about = indexes.LlmsSection(ui(language, "about"), [])
        by_section: dict[str, list[indexes.LlmsLink]] = {}
        # Every twin's URL is the site's root and its path, percent-encoded (see
        # absolute_url), which a link target leaves as it is: the root is checked once.
        root = link_target(page_url(site, ""))
        for kind, section, page_number, name, note, path in rows:
            twin = page_url(site, path)
            if kind == "home":
                about.links.insert(0, indexes.LlmsLink(title, twin, summary))
            elif kind == "faq" and page_number == 1:
                about.links.append(
                    indexes.LlmsLink(ui(language, "faq"), twin, f"{len(site.faqs)} Q&A")
                )
            elif kind == "facts" and page_number == 1:
                about.links.append(
                    indexes.LlmsLink(
                        ui(language, "facts"),
                        twin,
                        f"{len(site.facts)} facts with sources and dates",
                    )
                )
            elif kind == "entity":
                target = root and root + url_path(path)
                by_section.setdefault(section, []).append(
                    indexes.LlmsLink(name, twin, note, target)
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
        for path, text in indexes.llms_files(site, language, title, summary, sections, optional):
            self.store(path, "llms", text.encode("utf-8"), key)

    def build_llms_full(
        self, language: str, path: str, key: str, members: list[tuple[str, str]]
    ) -> None:
        """The full text, or one part of it, of the twins given as (path, sha256)."""
        title, summary = self.llms_head(language)
        twins = (artifact_read(sha256) for _, sha256 in members)
        self.store_chunks(path, "llms-full", indexes.llms_full_text(title, summary, twins), key)

    def build_llms_full_index(self, language: str, key: str, parts: list[str]) -> None:
        title, summary = self.llms_head(language)
        text = indexes.llms_full_index(self.site, language, title, summary, parts)
        path = indexes.llms_full_path(self.site, language)
        self.store(path, "llms-full", text.encode("utf-8"), key)


MANIFEST_COLUMNS = (
    "brand",
    "since",
    "path",
    "sha256",
    "size",
    "content_type",
    "kind",
    "fingerprint",
    "changed_at",
)


class BuildInterrupted(Exception):
    """The release is no longer building: another builder failed it (this one had stalled
    past its lease). Its rows must not be written, nor the manifest completed."""


def release_still_building(release: Release) -> None:
    """Inside a transaction: lock the release and check it is still building, so that no
    row of a release failed meanwhile outlives it (its rows would be in later manifests)."""
    building = (
        Release.objects.select_for_update()
        .filter(pk=release.pk, state=Release.State.BUILDING)
        .exists()
    )
    if not building:
        raise BuildInterrupted(f"{release} is no longer building.")


def manifest_sql() -> tuple[str, str, list[str]]:
    """The manifest's table and column list, quoted, and the column names."""
    meta = ReleaseArtifact._meta
    quote = connection.ops.quote_name
    names = [quote(meta.get_field(name).column) for name in MANIFEST_COLUMNS]
    return quote(meta.db_table), ", ".join(names), names


class ManifestWriter:
    """The manifest rows of what a build rendered (``since`` the release's number), written
    as the build makes them, a batch at a time, rather than held. What the build carried over
    is not written: the previous release's rows stay in the new release's manifest until
    ``release_artifacts_save`` closes those replaced or removed (see ReleaseArtifact). Rows
    go in with plain ``executemany``: ``bulk_create`` compiled SQL per field and row. Until
    the release is ready its manifest is partial, which the API does not serve; a failed
    build's rows are deleted (``release_artifacts_discard``)."""

    BATCH = 5000

    def __init__(self, release: Release):
        self.release = release
        self.rows: list[tuple] = []
        self.changed_at = ReleaseArtifact._meta.get_field("changed_at")

    def add(self, entry: Entry) -> None:
        self.rows.append(
            (
                self.release.brand_id,
                self.release.number,
                entry.path,
                entry.sha256,
                entry.size,
                media_artifact_type(entry.path)
                if entry.kind == "media"
                else feeds.feed_content_type(entry.path)
                if entry.kind == "feed"
                else CONTENT_TYPES[entry.kind],
                entry.kind,
                entry.fingerprint,
                self.changed_at.get_db_prep_value(entry.changed_at, connection),
            )
        )
        if len(self.rows) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        table, columns, _ = manifest_sql()
        values = ", ".join(["%s"] * len(MANIFEST_COLUMNS))
        with fork_guard, transaction.atomic(), connection.cursor() as cursor:
            release_still_building(self.release)
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({values})", self.rows)
        self.rows = []


def release_artifacts_save(release: Release, result: BuildResult) -> None:
    """Complete the release's manifest (inside the transaction that makes it ready): close
    the rows of the previous release that this one's replace or drop. Nothing is copied:
    what was carried over stays in the previous release's rows."""
    release_still_building(release)
    number = release.number
    rows = ReleaseArtifact.objects.filter(brand_id=release.brand_id)
    replaced = rows.filter(until__isnull=True, since__lt=number)
    if result.previous_release_id is None:
        # Built from nothing: no earlier row is in this manifest.
        replaced.update(until=number)
        return
    replaced.filter(path__in=rows.filter(since=number).values("path")).update(until=number)
    for start in range(0, len(result.removed), 500):
        replaced.filter(path__in=result.removed[start : start + 500]).update(until=number)


def release_artifacts_discard(release: Release) -> None:
    """A failed build's rows (it closed none: that happens only when it is ready)."""
    ReleaseArtifact.objects.filter(brand_id=release.brand_id, since=release.number).delete()
