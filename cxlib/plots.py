"""One house style for every figure: palette, fonts, number formats, title, caption with n.

Use `new_figure` to start a figure and `finish` to add the caption; nothing here changes
global matplotlib state (the style is applied per figure through `rc_context`). Colours come
from `cxlib.style`, the figures of each kind from `cxlib.figures`.

    fig, ax = plots.new_figure("Invoice contacts cost 31 NPS points")
    ax.bar(...)
    plots.finish(fig, n=4210, definition="NPS = % promoters (9-10) - % detractors (0-6)")
"""

from __future__ import annotations

import textwrap
from contextlib import contextmanager

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cxlib import locale, style

PALETTE = {key: style.COLOURS[key] for key in ("primary", "secondary", "positive", "negative", "neutral", "highlight")}
SERIES = style.SERIES

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.family": style.FONT_FAMILY,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": style.COLOURS["grid"],
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


def new_figure(title: str, *, nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (8.0, 4.2), **kwargs):
    """A figure in the house style with `title` (state the finding, not the chart type), wrapped
    to the figure's width; `kwargs` go to `plt.subplots` (e.g. sharex)."""
    with house_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained", **kwargs)
        fig.suptitle(textwrap.fill(title, width=int(size[0] * 8.5)), x=0.01, ha="left",
                     fontsize=RC["axes.titlesize"], fontweight="bold")
    return fig, axes


def finish(fig: Figure, *, n: int | str, definition: str, source: str | None = None, lang: str = "en") -> Figure:
    """Add the caption every figure carries: sample size, definition and, optionally, the source."""
    n_text = locale.format_number(n, lang) if isinstance(n, (int, np.integer)) else str(n)
    parts = [locale.text("figure.caption_n", lang, n=n_text), definition]
    parts += [locale.text("figure.source", lang, source=source)] if source else []
    fig.text(0.01, -0.02, " · ".join(parts), ha="left", va="top", fontsize=8.5, color=style.COLOURS["muted"], wrap=True)
    return fig


def thousands(x: float, lang: str = "en") -> str:
    """Format a number with a thousands separator: 12345.6 -> '12,346' (en) / '12.346' (de)."""
    return locale.format_number(x, lang, decimals=0)
