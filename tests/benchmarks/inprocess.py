"""Publishing in-process on SQLite: data generation, the full publish, the incremental one.

Each N gets its own var directory on tmpfs (``/dev/shm/sb-bench/nN/var``): the SQLite
database and the content-addressed artifact store live there (``SOURCEBOOK_VAR_DIR``), no
broker is configured, so ``manage.py publish`` builds in its own process. Every step is a
child process, timed by wall clock from start to exit (so Python's and Django's start-up,
about a second, is included) with its peak RSS sampled (see ``common``).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.benchmarks import catalog
from tests.benchmarks.common import BASE_DIR, PYTHON, RunResult, log, manage, run, sqlite_env

SUMMARY = re.compile(
    r"Release (?P<release>\d+) of (?P<slug>\S+): (?P<artifacts>\d+) artifacts \((?P<counts>[^)]*)\), "
    r"(?P<changed>\d+) changed; rendered (?P<rendered>\d+), reused (?P<reused>\d+); "
    r"built in (?P<built>[\d.]+)s(?: by (?P<processes>\d+) processes)?\."
)


# The code a build depends on. Other people may change it while the suite runs; a release
# built by other code has other fingerprints, so the next publish re-renders everything.
CODE_DIRECTORIES = ("publishing", "kb", "templates", "config")
CODE_SUFFIXES = {".py", ".html", ".txt", ".md", ".json", ".jinja", ".j2"}
INCREMENTAL_ATTEMPTS = 3


def code_fingerprint() -> str:
    """A hash of the product's code and templates, to tell whether they changed meanwhile."""
    sha = hashlib.sha256()
    for top in CODE_DIRECTORIES:
        for path in sorted((BASE_DIR / top).rglob("*")):
            if path.suffix in CODE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                sha.update(str(path.relative_to(BASE_DIR)).encode())
                sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


class SummaryMissing(RuntimeError):
    pass


@dataclass
class PublishFigures:
    """One publish: wall time and peak memory (RSS and PSS sums, see ``common``) of the
    process tree that built, and its summary line."""

    seconds: float
    peak_rss_mb: float
    peak_pss_mb: float
    release: int
    artifacts: int
    changed: int
    rendered: int
    reused: int
    built_seconds: float
    processes: int
    summary: str
    changed_paths: list[str] = field(default_factory=list)
    code_changed_during: bool = False  # the product's code changed while it ran

    def as_dict(self) -> dict:
        return asdict(self)


def summary_of(stdout: str) -> re.Match:
    """The CLI's ``Release … built in …s.`` line, parsed; a clear error when it is missing."""
    for line in stdout.splitlines():
        match = SUMMARY.search(line)
        if match:
            return match
    raise SummaryMissing(f"No summary line in the publish output:\n{stdout[-2000:]}")


def figures(
    result: RunResult, peak_rss: int | None = None, peak_pss: int | None = None
) -> PublishFigures:
    match = summary_of(result.stdout)
    return PublishFigures(
        seconds=round(result.seconds, 3),
        peak_rss_mb=round((peak_rss if peak_rss is not None else result.peak_rss) / 2**20, 1),
        peak_pss_mb=round((peak_pss if peak_pss is not None else result.peak_pss) / 2**20, 1),
        release=int(match["release"]),
        artifacts=int(match["artifacts"]),
        changed=int(match["changed"]),
        rendered=int(match["rendered"]),
        reused=int(match["reused"]),
        built_seconds=float(match["built"]),
        processes=int(match["processes"] or 1),
        summary=match.group(0),
    )


@dataclass
class Workspace:
    """The tmpfs directories of one N."""

    root: Path

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def database(self) -> Path:
        return self.var / "sourcebook.sqlite3"

    def env(self) -> dict[str, str]:
        return sqlite_env(self.var)


def generate(env: dict[str, str], size: int, step: str = "generate") -> dict:
    """Run the bulk generator (tqdm on stderr); returns its counts and timings."""
    result = run(
        [PYTHON, "-m", "tests.benchmarks.generate", "--size", str(size)], env, echo_stderr=True
    )
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    counts["wall_seconds"] = round(result.seconds, 3)
    log(
        step,
        size,
        f"{counts['products']:,} products, {counts['facts']:,} facts, "
        f"{counts['faqs']:,} FAQs in {result.seconds:.1f}s",
    )
    return counts


def publish(workspace: Workspace, size: int, step: str) -> PublishFigures:
    """``manage.py publish bench --out SITE``, in-process (no broker)."""
    log(step, size, "manage.py publish bench (in-process, SQLite on tmpfs)")
    code_before = code_fingerprint()
    result = run(manage("publish", catalog.SLUG, "--out", str(workspace.site)), workspace.env())
    found = figures(result)
    found.changed_paths = last_changed_paths(workspace.database)
    found.code_changed_during = code_fingerprint() != code_before
    log(
        step,
        size,
        f"{found.seconds:.2f}s wall, peak PSS {found.peak_pss_mb:.0f} MB "
        f"(RSS {found.peak_rss_mb:.0f} MB) — "
        f"{found.summary}" + (" [the code changed meanwhile]" if found.code_changed_during else ""),
    )
    return found


def last_changed_paths(database: Path) -> list[str]:
    """The changed paths the newest release recorded (read-only, straight from SQLite)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT summary FROM publishing_release ORDER BY number DESC LIMIT 1"
        ).fetchone()
    summary = json.loads(row[0]) if row and row[0] else {}
    return list(summary.get("changed_paths", []))


def edit_one(workspace: Workspace, size: int, number: int) -> dict:
    """Edit one product through the services."""
    result = run([PYTHON, "-m", "tests.benchmarks.edit", "--number", str(number)], workspace.env())
    edit = json.loads(result.stdout.strip().splitlines()[-1])
    edit["wall_seconds"] = round(result.seconds, 3)
    log(
        "edit",
        size,
        f"product {number} edited and published in {edit['seconds']:.3f}s "
        f"({result.seconds:.2f}s with start-up)",
    )
    return edit


def incremental(workspace: Workspace, size: int, code_at_last_build: str, number: int) -> dict:
    """Edit product ``number``, then publish again: time, peak RSS and how many artifacts
    changed.

    An incremental publish is only one if the previous release was built by the same code:
    when the product's code changed since (people edit it while the suite runs), the site
    is first published once more, untimed, and the edit and timed publish are repeated if
    the code changes during them (at most ``INCREMENTAL_ATTEMPTS`` times; the last result
    is kept, with ``code_changed_during`` saying whether it is clean).
    """
    rebased = 0
    for _ in range(INCREMENTAL_ATTEMPTS):
        if code_fingerprint() != code_at_last_build:
            log(
                "incremental publish",
                size,
                "the code changed since the last build: publishing once more first (not timed)",
            )
            publish(workspace, size, "re-publish on the current code")
            code_at_last_build = code_fingerprint()
            rebased += 1
        edit = edit_one(workspace, size, number)
        found = publish(workspace, size, "incremental publish")
        if not found.code_changed_during:
            break
    return {**found.as_dict(), "edit": edit, "rebased": rebased}
