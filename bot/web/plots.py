"""The operator view's plots, drawn with matplotlib as SVG (off the event loop: drawing takes a while)."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections import defaultdict

from linernotes.bot.storage import HOUR
from linernotes.bot.web.stats import Figures

TOP_KEYS = 6  # keys drawn over time (the rest are in the table)
BARS = 20  # keys or tag values drawn as bars
MIN_HOURS = 24  # the requests plot shows at least the last day


def _figure(height: float = 3.2):
    """A new figure and its axes: matplotlib's object interface, no pyplot (its global state is not for
    threads)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, height))
    return fig, fig.add_subplot()


def _svg(fig) -> str:
    """The figure as base64 SVG, for a data URI."""
    import matplotlib

    buffer = io.BytesIO()
    fig.tight_layout()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: smaller files
        fig.savefig(buffer, format="svg")
    return base64.b64encode(buffer.getvalue()).decode()


def requests_plot(figures: Figures, now_hour: int) -> str | None:
    """Requests per hour for the most asked keys (Discord and web together), over the last day at least."""
    from matplotlib.ticker import MaxNLocator

    top = [k for k, _, _ in figures.key_totals()[:TOP_KEYS]]
    if not top:
        return None
    series: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for hour, _, key, n in figures.requests:
        if key in top:
            series[key][now_hour - hour] += n
    span = max(MIN_HOURS, *(ago for per in series.values() for ago in per))
    fig, ax = _figure()
    ago = list(range(span, -1, -1))
    for key in top:
        ax.plot([-a for a in ago], [series[key].get(a, 0) for a in ago], marker=".", label=key)
    ax.set_xlabel("hours ago (0: this hour)")
    ax.set_ylabel("requests per hour")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    return _svg(fig)


def bars_plot(labels: list[str], values: list[float], xlabel: str, integer: bool = False) -> str | None:
    """Horizontal bars, first label on top."""
    if not labels:
        return None
    labels, values = labels[:BARS][::-1], values[:BARS][::-1]
    fig, ax = _figure(max(2.0, 0.28 * len(labels) + 0.8))
    ax.barh(labels, values, color="#4752c4")
    ax.set_xlabel(xlabel)
    if integer:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize="small")
    return _svg(fig)


def draw(figures: Figures) -> dict[str, str | None]:
    """Every plot of the operator view (base64 SVG; None when there is nothing to draw)."""
    depth = sorted(figures.depth.items(), key=lambda kv: (-kv[1], kv[0]))
    rated = [a for a in figures.approval if a[3] + a[4]]
    rated.sort(key=lambda a: (-(a[3] + a[4]), a[:3]))
    return {
        "requests": requests_plot(figures, int(time.time() // HOUR)),
        "depth": bars_plot(
            [k for k, _ in depth], [n for _, n in depth], "generations never shown", integer=True
        ),
        "approval": bars_plot(
            [f"{k} {t}={v} (n={u + d})" for k, t, v, u, d in rated],
            [100 * u / (u + d) for _, _, _, u, d in rated],
            "approval, % of votes",
        ),
    }


async def draw_async(figures: Figures) -> dict[str, str | None]:
    """``draw`` on a worker thread."""
    return await asyncio.to_thread(draw, figures)
