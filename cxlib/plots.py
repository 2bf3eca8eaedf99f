"""One house style for every figure: palette, fonts, number formats, title, caption with n.

Use `new_figure` to start a figure and `finish` to add the caption; nothing here changes
global matplotlib state (the style is applied per figure through `rc_context`).

    fig, ax = plots.new_figure("Invoice contacts cost 31 NPS points")
    ax.bar(...)
    plots.finish(fig, n=4210, definition="NPS = % promoters (9-10) - % detractors (0-6)")
"""

from __future__ import annotations

from contextlib import contextmanager

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

PALETTE = {
    "primary": "#1f4e79",     # dark blue: the main series
    "secondary": "#6c9bc9",   # light blue: comparison series
    "positive": "#2e7d32",    # green: good / promoters / magic moments
    "negative": "#c62828",    # red: bad / detractors / out of control
    "neutral": "#9e9e9e",     # grey: passives, small samples (n < min_n)
    "highlight": "#ef6c00",   # orange: the finding the title talks about
}
SERIES = ["#1f4e79", "#ef6c00", "#2e7d32", "#6c9bc9", "#c62828", "#8e24aa", "#9e9e9e", "#00838f"]

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e0e0e0",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "axes.prop_cycle": matplotlib.cycler(color=SERIES),
    "legend.frameon": False,
}


@contextmanager
def house_style():
    """Context in which figures are drawn in the house style (no global change).

    A backend loaded inside the context (Jupyter's inline backend, on the first figure) turns
    interactive mode on; that is kept, else every later figure of the notebook would not show.
    """
    with plt.rc_context(RC):
        yield
        interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)


def new_figure(title: str, *, nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (8.0, 4.2)):
    """A figure in the house style with `title` (state the finding, not the chart type)."""
    with house_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained")
        fig.suptitle(title, x=0.01, ha="left", fontsize=RC["axes.titlesize"], fontweight="bold")
    return fig, axes


def finish(fig: Figure, *, n: int | str, definition: str, source: str | None = None) -> Figure:
    """Add the caption every figure carries: sample size, definition and, optionally, the source."""
    n_text = f"{n:,}" if isinstance(n, int) else str(n)
    parts = [f"n = {n_text}", definition] + ([f"Source: {source}"] if source else [])
    fig.text(0.01, -0.02, " · ".join(parts), ha="left", va="top", fontsize=8.5, color="#555555", wrap=True)
    return fig


def thousands(x: float, lang: str = "en") -> str:
    """Format a number with a thousands separator: 12345.6 -> '12,346' (en) / '12.346' (de)."""
    text = f"{x:,.0f}"
    return text.replace(",", ".") if lang == "de" else text
