"""What changed between two releases: artifacts added, removed and changed, with text diffs."""

from __future__ import annotations

import difflib

from publishing.models import Release, ReleaseArtifact
from publishing.store import artifact_read

TEXT_KINDS = {"markdown", "llms", "robots", "sitemap"}
MAX_TEXT_DIFFS = 20
MAX_DIFF_LINES = 400


def releases_compare(*, old: Release, new: Release) -> dict:
    # Only the rows the two manifests do not share can differ (see ReleaseArtifact).
    before = dict(ReleaseArtifact.objects.not_in_release(old, new).values_list("path", "sha256"))
    after = {
        p: (s, k)
        for p, s, k in ReleaseArtifact.objects.not_in_release(new, old).values_list(
            "path", "sha256", "kind"
        )
    }
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(after) & set(before) if after[p][0] != before[p])
    diffs = []
    for path in [p for p in changed if after[p][1] in TEXT_KINDS][:MAX_TEXT_DIFFS]:
        lines = list(
            difflib.unified_diff(
                artifact_read(before[path]).decode("utf-8", "replace").splitlines(),
                artifact_read(after[path][0]).decode("utf-8", "replace").splitlines(),
                fromfile=f"release {old.number}/{path}",
                tofile=f"release {new.number}/{path}",
                lineterm="",
            )
        )
        shown = lines[:MAX_DIFF_LINES]
        diffs.append(
            {
                "path": path,
                "diff": "\n".join(shown),
                "lines": [(line_kind(line), line) for line in shown],
                "lines_not_shown": len(lines) - len(shown),
            }
        )
    return {"old": old, "new": new, "added": added, "removed": removed, "changed": changed,
            "diffs": diffs, "text_diffs_not_shown": max(0, len(
                [p for p in changed if after[p][1] in TEXT_KINDS]) - MAX_TEXT_DIFFS)}  # fmt: skip


def line_kind(line: str) -> str:
    """How a unified diff's line is shown: a file header, a hunk, added, removed, context."""
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "added"
    if line.startswith("-"):
        return "removed"
    return "context"
