"""Server-side SVG charts of visibility metrics, drawn with matplotlib (no JavaScript needed).

Engine names are user text: matplotlib's SVG writer emits them as escaped text nodes
(``svg.fonttype = "none"``), and dollar signs are escaped so a name is never read as mathtext.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, timedelta

from visibility.metrics import Metrics

METRICS = {
    "score": ("Visibility score", lambda m: m.score),
    "mention": ("Mention rate (%)", lambda m: round(100 * m.mention.value, 1)),
}
SIZE_INCHES = (8.0, 3.2)


def chart_label(text: str) -> str:
    """Literal text for matplotlib: an even number of ``$`` would otherwise start mathtext."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _dates_on_x(axes) -> None:
    from matplotlib import dates as mdates

    locator = mdates.AutoDateLocator(maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _svg_element(figure) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), deterministic (no date)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def trend_svg(
    series: dict[str, dict[date, Metrics]],
    metric: str = "score",
    releases: Sequence[tuple[int, date]] = (),
) -> str:
    """One line per engine over the periods of ``metrics_series``, the brand's ``releases``
    (number, day it went live) as dashed lines; "" when there is no data.

    Returns an ``<svg>`` element (no XML prolog), deterministic for the same input.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if not any(series.values()):
        return ""
    import matplotlib

    matplotlib.use("Agg")  # here, not at import time: the web process needs no GUI backend
    from matplotlib.figure import Figure

    title, value_of = METRICS[metric]
    style = {
        "svg.fonttype": "none",  # text as <text> nodes: small, selectable, escaped
        "svg.hashsalt": f"sourcebook-{metric}",  # stable ids, distinct per chart on one page
        "font.size": 9,
    }
    with matplotlib.rc_context(style):
        # Figure, not pyplot: no global figure registry shared between requests.
        figure = Figure(figsize=SIZE_INCHES, layout="constrained")
        axes = figure.subplots()
        for engine, periods in series.items():
            if not periods:
                continue
            days = list(periods)
            axes.plot(
                days,
                [value_of(m) for m in periods.values()],
                marker="o",
                markersize=3,
                label=chart_label(engine),
            )
        starts = sorted({start for periods in series.values() for start in periods})
        if len(starts) == 1:  # one period: give the date axis a range to put ticks on
            axes.set_xlim(starts[0] - timedelta(days=1), starts[0] + timedelta(days=1))
        axes.set_ylim(0, 100)
        first, last = starts[0] - timedelta(days=1), starts[-1] + timedelta(days=7)
        for number, day in releases:
            if first <= day <= last:
                axes.axvline(day, color="#555", linestyle="--", linewidth=0.8)
                axes.annotate(f"R{number}", (day, 98), fontsize=7, ha="left", va="top",
                              xytext=(2, 0), textcoords="offset points")  # fmt: skip
        axes.set_ylabel(title)
        axes.grid(True, alpha=0.3)
        _dates_on_x(axes)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        return _svg_element(figure)


OWNER_COLOURS = {"brand": "#2e7d32", "competitor": "#c62828", "third_party": "#78909c"}
OWNER_LABELS = {
    "brand": "the brand's",
    "competitor": "a competitor's",
    "third_party": "third party",
}


def citation_sites_svg(sites: list[dict]) -> str:
    """Horizontal bars: the sites AI answers cite most, coloured by whose they are
    (``CitationReport.as_dict()["sites"]``); "" when nothing is cited."""
    if not sites:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    style = {"svg.fonttype": "none", "svg.hashsalt": "sourcebook-citations", "font.size": 9}
    rows = list(reversed(sites))  # the most cited at the top
    with matplotlib.rc_context(style):
        figure = Figure(figsize=(SIZE_INCHES[0], 0.6 + 0.28 * len(rows)), layout="constrained")
        axes = figure.subplots()
        axes.barh(
            [chart_label(row["site"]) for row in rows],
            [row["answers"] for row in rows],
            color=[OWNER_COLOURS[row["owner"]] for row in rows],
        )
        axes.set_xlabel("Answers citing the site")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, axis="x", alpha=0.3)
        owners = [owner for owner in OWNER_COLOURS if any(r["owner"] == owner for r in rows)]
        axes.legend(
            handles=[Patch(color=OWNER_COLOURS[o], label=OWNER_LABELS[o]) for o in owners],
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            fontsize=8,
            frameon=False,
        )
        return _svg_element(figure)


TREND_SITES = 6  # lines on the citation trend: the brand's site and the most cited others


def citation_trend_svg(sites: list[dict]) -> str:
    """Answers citing each site per ISO week: the brand's own site and the most cited others
    (``CitationReport.as_dict()["sites"]``, their ``weeks``); "" with fewer than two weeks."""
    weeks = sorted({date.fromisoformat(w) for row in sites for w in row["weeks"]})
    if len(weeks) < 2:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    brand = [row for row in sites if row["owner"] == "brand"][:1]
    others = [row for row in sites if row["owner"] != "brand"][: TREND_SITES - len(brand)]
    style = {"svg.fonttype": "none", "svg.hashsalt": "sourcebook-citation-trend",
             "font.size": 9}  # fmt: skip
    with matplotlib.rc_context(style):
        figure = Figure(figsize=SIZE_INCHES, layout="constrained")
        axes = figure.subplots()
        for row in [*brand, *others]:
            axes.plot(
                weeks,
                [row["weeks"].get(week.isoformat(), 0) for week in weeks],
                marker="o",
                markersize=3,
                linewidth=2.2 if row["owner"] == "brand" else 1.2,
                color=OWNER_COLOURS["brand"] if row["owner"] == "brand" else None,
                label=chart_label(row["site"]),
            )
        axes.set_ylabel("Answers citing it")
        axes.set_ylim(bottom=0)
        axes.yaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, alpha=0.3)
        _dates_on_x(axes)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        return _svg_element(figure)
