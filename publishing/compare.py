"""What changed between two releases: artifacts added, removed and changed, with text diffs."""

from __future__ import annotations

import difflib

from publishing.models import Release
from publishing.store import artifact_read

TEXT_KINDS = {"markdown", "llms", "robots", "sitemap"}
MAX_TEXT_DIFFS = 20
MAX_DIFF_LINES = 200


def releases_compare(*, old: Release, new: Release) -> dict:
    before = dict(old.artifacts.values_list("path", "sha256"))
    after = {p: (s, k) for p, s, k in new.artifacts.values_list("path", "sha256", "kind")}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(after) & set(before) if after[p][0] != before[p])
    diffs = []
    for path in [p for p in changed if after[p][1] in TEXT_KINDS][:MAX_TEXT_DIFFS]:
        lines = difflib.unified_diff(
            artifact_read(before[path]).decode("utf-8", "replace").splitlines(),
            artifact_read(after[path][0]).decode("utf-8", "replace").splitlines(),
            fromfile=f"release {old.number}/{path}",
            tofile=f"release {new.number}/{path}",
            lineterm="",
        )
        diffs.append({"path": path, "diff": "\n".join(list(lines)[:MAX_DIFF_LINES])})
    return {"old": old, "new": new, "added": added, "removed": removed, "changed": changed,
            "diffs": diffs}  # fmt: skip
