"""Server-side SVG charts of a site audit, drawn with matplotlib (no JavaScript needed).

Crawled text (page addresses) is hostile: matplotlib's SVG writer emits it as escaped text
nodes (``svg.fonttype = "none"``) and ``chart_label`` keeps ``$`` from starting mathtext.
Every chart returns an ``<svg>`` element (no XML prolog), deterministic for the same input,
or "" when there is nothing to draw.
"""

from __future__ import annotations

from visibility.charts import SIZE_INCHES, _svg_element, chart_label

# The score's parts in a few words (``visibility.site_audit.report.PARTS`` keys).
PART_NAMES = {
    "ai_access": "AI crawlers allowed",
    "coverage": "Pages with structured data",
    "jsonld": "Structured data as JSON-LD",
    "validity": "Entities without errors",
    "eligibility": "Eligible for rich results",
    "ids": "Entities with an @id",
    "references": "References that resolve",
    "consistency": "Entities described consistently",
    "llms_txt": "llms.txt",
    "markdown": "Pages offered as Markdown",
    "content_signal": "Content-Signal",
    "readable": "Text without JavaScript",
    "fetchable": "Addresses that answer",
    "sitemap": "Sitemap with lastmod",
    "lastmod": "Honest lastmod dates",
}
GROUP_COLOURS = {
    "AI crawler access": "#1565c0",
    "Structured data": "#2e7d32",
    "Entity graph": "#6a1b9a",
    "AI-ready files": "#ef6c00",
    "Readable pages": "#00838f",
    "Freshness": "#8d6e63",
}
OTHER_COLOUR = "#607d8b"
# Finding levels, most serious first, and their colours.
LEVELS = ("error", "ineligible", "recommendation", "hint")
LEVEL_NAMES = {
    "error": "Errors",
    "ineligible": "Not eligible for rich results",
    "recommendation": "Recommendations",
    "hint": "Hints",
}
LEVEL_COLOURS = {
    "error": "#c62828",
    "ineligible": "#ef6c00",
    "recommendation": "#1976d2",
    "hint": "#90a4ae",
}
FINDINGS_PAGES = 15  # pages on the findings chart: those with the most findings
ALLOWED_COLOUR, BLOCKED_COLOUR = "#2e7d32", "#c62828"


def part_name(key: str) -> str:
    return PART_NAMES.get(key, key)


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")  # here, not at import time: the web process needs no GUI backend
    return matplotlib


def _style(salt: str) -> dict:
    return {
        "svg.fonttype": "none",  # text as <text> nodes: small, selectable, escaped
        "svg.hashsalt": f"sourcebook-site-audit-{salt}",  # stable ids, distinct per chart
        "font.size": 9,
    }


def _legend(axes, handles) -> None:
    axes.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False
    )


def parts_svg(parts: list[dict]) -> str:
    """The score's parts as horizontal bars: the points earned over the part's weight (a pale
    bar), coloured by group, in the report's order (the formula's), the first at the top."""
    if not parts:
        return ""
    matplotlib = _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = list(reversed(parts))
    labels = [chart_label(part_name(str(p.get("key", "")))) for p in rows]
    colours = [GROUP_COLOURS.get(p.get("group"), OTHER_COLOUR) for p in rows]
    weights = [float(p.get("weight") or 0) for p in rows]
    points = [float(p.get("points") or 0) for p in rows]
    with matplotlib.rc_context(_style("parts")):
        figure = Figure(figsize=(SIZE_INCHES[0], 0.7 + 0.26 * len(rows)), layout="constrained")
        axes = figure.subplots()
        positions = range(len(rows))
        axes.barh(positions, weights, color=colours, alpha=0.18, height=0.7)
        axes.barh(positions, points, color=colours, height=0.7)
        for y, (earned, weight) in enumerate(zip(points, weights, strict=True)):
            axes.annotate(
                f"{earned:g} of {weight:g}",
                (weight, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        axes.set_yticks(list(positions), labels)
        axes.set_xlim(0, max(weights + [1.0]) * 1.25)
        axes.set_xlabel("Points earned (the pale bar: the most the part can give)")
        axes.grid(True, axis="x", alpha=0.3)
        groups = list(dict.fromkeys(str(p.get("group", "")) for p in parts))
        _legend(
            axes,
            [Patch(color=GROUP_COLOURS.get(g, OTHER_COLOUR), label=chart_label(g)) for g in groups],
        )
        return _svg_element(figure)


def findings_svg(pages: list[dict]) -> str:
    """Findings per page, stacked by level (``pages``: {"label", "levels": {level: count}}),
    the pages with the most findings (errors first) at the top; "" without findings."""
    counted = [p for p in pages if any(p["levels"].get(level) for level in LEVELS)]
    if not counted:
        return ""
    counted.sort(key=lambda p: tuple(-p["levels"].get(level, 0) for level in LEVELS))
    rows = list(reversed(counted[:FINDINGS_PAGES]))
    matplotlib = _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    with matplotlib.rc_context(_style("findings")):
        figure = Figure(figsize=(SIZE_INCHES[0], 0.8 + 0.26 * len(rows)), layout="constrained")
        axes = figure.subplots()
        positions = list(range(len(rows)))
        left = [0] * len(rows)
        for level in LEVELS:
            counts = [p["levels"].get(level, 0) for p in rows]
            if not any(counts):
                continue
            axes.barh(positions, counts, left=left, color=LEVEL_COLOURS[level], height=0.7)
            left = [a + b for a, b in zip(left, counts, strict=True)]
        axes.set_yticks(positions, [chart_label(p["label"]) for p in rows])
        axes.set_xlabel("Findings on the page")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, axis="x", alpha=0.3)
        shown = [lv for lv in LEVELS if any(p["levels"].get(lv) for p in rows)]
        _legend(axes, [Patch(color=LEVEL_COLOURS[lv], label=LEVEL_NAMES[lv]) for lv in shown])
        return _svg_element(figure)


def agents_svg(agents: list[dict]) -> str:
    """The AI search and user agents (the ones the score counts): pages each may fetch (green)
    and pages robots.txt keeps it from (red); "" when there are none."""
    rows = [a for a in agents if a.get("purpose") in ("search", "user") and a.get("pages")]
    if not rows:
        return ""
    rows = list(reversed(rows))
    matplotlib = _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    with matplotlib.rc_context(_style("agents")):
        figure = Figure(figsize=(SIZE_INCHES[0], 0.8 + 0.22 * len(rows)), layout="constrained")
        axes = figure.subplots()
        positions = list(range(len(rows)))
        allowed = [int(a.get("allowed") or 0) for a in rows]
        blocked = [int(a["pages"]) - n for a, n in zip(rows, allowed, strict=True)]
        axes.barh(positions, allowed, color=ALLOWED_COLOUR, height=0.7)
        axes.barh(positions, blocked, left=allowed, color=BLOCKED_COLOUR, height=0.7)
        axes.set_yticks(
            positions,
            [chart_label(f"{a.get('token', '')} ({a.get('engine', '')})") for a in rows],
        )
        axes.set_xlabel("Pages of the audit")
        axes.xaxis.get_major_locator().set_params(integer=True)
        _legend(
            axes,
            [
                Patch(color=ALLOWED_COLOUR, label="may fetch"),
                Patch(color=BLOCKED_COLOUR, label="blocked by robots.txt"),
            ],
        )
        return _svg_element(figure)
