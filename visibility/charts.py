"""Server-side SVG charts of visibility metrics, drawn with matplotlib (no JavaScript needed).

Engine names are user text: matplotlib's SVG writer emits them as escaped text nodes
(``svg.fonttype = "none"``), and dollar signs are escaped so a name is never read as mathtext.
"""

from __future__ import annotations

import io
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


def trend_svg(series: dict[str, dict[date, Metrics]], metric: str = "score") -> str:
    """One line per engine over the periods of ``metrics_series``; "" when there is no data.

    Returns an ``<svg>`` element (no XML prolog), deterministic for the same input.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if not any(series.values()):
        return ""
    import matplotlib

    matplotlib.use("Agg")  # here, not at import time: the web process needs no GUI backend
    from matplotlib import dates as mdates
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
        axes.set_ylabel(title)
        axes.grid(True, alpha=0.3)
        locator = mdates.AutoDateLocator(maxticks=8)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
