"""One function per kind of figure, drawn with seaborn in the house style (`cxlib.plots`, colours
from `cxlib.style`). Each takes a tidy frame, the names of its columns and the texts — the title
states the finding (the caller words it), axis labels carry units, n and the definition go into
the caption — and returns the matplotlib Figure. Rows are drawn in the order of the frame.

Intervals come from given `low`/`high` columns: an end that is missing or on the wrong side of
its value draws no whisker on that side (never a negative one). An empty frame raises
`schema.Missing`; a named column the frame lacks is a ValueError.

    fig = figures.interval_plot(impact, label="label", value="adjusted", low="adjusted_low",
                                high="adjusted_high", title="Unclear invoices cost 24 NPS points",
                                xlabel="NPS of exposed minus other answers (points)", n=2494,
                                definition="OLS with 95% intervals")
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from cxlib import locale, plots, schema, style

C = style.COLOURS
TONES = ("worse", "better", "not_significant", "small")
TONE_COLOURS = {"worse": C["negative"], "better": C["positive"], "not_significant": C["secondary"], "small": C["neutral"]}
# seaborn draws the median of (low, value, high) and the ('pi', 100) interval of the three: the given interval.
_ESTIMATOR, _ERRORBAR = "median", ("pi", 100)
_WRAP = 34           # characters per line of a category label
_MAX_TICKS = 12      # period labels on a time axis


def _house(draw):
    """Run a drawing function inside the house style, so that every artist gets its settings."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs) -> Figure:
        with plots.house_style():
            return draw(*args, **kwargs)
    return drawn


def _rows(table: pd.DataFrame, *columns: str | None) -> pd.DataFrame:
    """`table` with a fresh index; ValueError for a named column it lacks, Missing when empty."""
    absent = [c for c in columns if c is not None and c not in table.columns]
    if absent:
        raise ValueError(f"figure: column(s) {absent} not in the table; columns present: {list(table.columns)}")
    if table.empty:
        raise schema.Missing("no rows to draw in the figure")
    return table.reset_index(drop=True)


def _unique(labels: pd.Series, what: str) -> None:
    duplicated = labels[labels.duplicated()].tolist()
    if duplicated:
        raise ValueError(f"figure: each {what} must be drawn once, repeated: {duplicated}")


def _wrap(labels: pd.Series, width: int = _WRAP) -> pd.Series:
    return labels.astype(str).map(lambda s: textwrap.fill(s, width))


def _long(rows: pd.DataFrame, value: str, low: str | None, high: str | None) -> pd.DataFrame:
    """Three rows per row — low end, value, high end — so that seaborn's median estimator draws
    the value and its ('pi', 100) error bar the interval; a missing end or one on the wrong side
    of the value is replaced by the value (no whisker)."""
    v = rows[value].astype(float)
    lo = rows[low].astype(float).where(lambda s: s <= v, v) if low else v
    hi = rows[high].astype(float).where(lambda s: s >= v, v) if high else v
    return pd.concat([rows.assign(**{value: lo}), rows, rows.assign(**{value: hi})], ignore_index=True)


def _numbers(axis, lang: str) -> None:
    """Tick labels of a value axis in the report language (12,500 / 12.500; 0.5 / 0,5)."""
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: locale.format_number(v, lang)))


def _legend(fig: Figure, ax, extra: Sequence = ()) -> None:
    """One legend at the right of the axes for the labelled artists of `ax` (and `extra` handles);
    the title is wrapped so that it ends before the legend."""
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    handles, labels = ax.get_legend_handles_labels()
    pairs = dict(zip(labels, handles)) | {h.get_label(): h for h in extra}
    pairs = {k: h for k, h in pairs.items() if k and not k.startswith("_")}
    if pairs:
        fig.legend(list(pairs.values()), list(pairs), loc="outside right upper", fontsize=8.5)
        title = fig.get_suptitle()
        if title:        # the legend takes the right of the figure: the title wraps before it
            fig.suptitle(textwrap.fill(title.replace("\n", " "), width=int(fig.get_figwidth() * 8.5 * 0.62)),
                         x=0.01, ha="left", fontsize=plots.RC["axes.titlesize"], fontweight="bold")


def _finish(fig: Figure, n, definition: str, lang: str) -> Figure:
    return plots.finish(fig, n=n, definition=definition, lang=lang)


def _periods(values: pd.Series, lang: str) -> tuple[np.ndarray, list, list[str]]:
    """(positions of the values, the distinct values in order, their labels for readers)."""
    distinct = list(pd.unique(values))
    positions = values.map({v: i for i, v in enumerate(distinct)}).to_numpy(dtype=float)
    return positions, distinct, [locale.format_period(v, lang) for v in distinct]


def _time_ticks(ax, labels: list[str]) -> None:
    step = max(1, math.ceil(len(labels) / _MAX_TICKS))
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=45 if len(labels) > 6 else 0,
                  ha="right" if len(labels) > 6 else "center")


def _tones(rows: pd.DataFrame, value: str, *, reference: float, worse: str, significant, small) -> pd.Series:
    """worse / better (significant, on the bad / good side of `reference`), not_significant, small."""
    bad = rows[value] < reference if worse == "lower" else rows[value] > reference
    sig = rows[significant].fillna(False).astype(bool) if significant else pd.Series(False, index=rows.index)
    few = rows[small].fillna(False).astype(bool) if small else pd.Series(False, index=rows.index)
    return pd.Series(np.where(few, "small", np.where(sig & bad, "worse", np.where(sig, "better", "not_significant"))),
                     index=rows.index)


# --- intervals ---------------------------------------------------------------------------------
@_house
def interval_plot(table: pd.DataFrame, *, label: str, value: str, low: str, high: str, title: str, xlabel: str,
                  n, definition: str, reference: float | None = 0.0, worse: str = "lower",
                  significant: str | None = "significant", small: str | None = "small", log: bool = False,
                  lang: str = "en") -> Figure:
    """Forest plot: per row a point at `value` with its interval `low`–`high`, labelled by `label`;
    red = significantly on the `worse` side ('lower'/'higher') of `reference`, green = significantly
    better, light blue = not significant, grey = too few answers (`small`); one colour without
    `significant` and `small`; a line at `reference` (0 for differences, 1 for ratios on a `log` axis)."""
    if worse not in ("lower", "higher"):
        raise ValueError(f"worse must be 'lower' or 'higher', got {worse!r}")
    rows = _rows(table, label, value, low, high, significant, small)
    _unique(rows[label], label)
    names = {t: locale.value_label("tone", t, lang) for t in TONES}
    tone = _tones(rows, value, reference=reference if reference is not None else 0.0, worse=worse,
                  significant=significant, small=small)
    rows = rows.assign(_label=_wrap(rows[label]), _tone=tone.map(names))
    toned = significant is not None or small is not None
    present = [names[t] for t in TONES if (tone == t).any()]
    fig, ax = plots.new_figure(title, size=(8.0, 0.4 * len(rows) + 2.0))
    sns.pointplot(_long(rows, value, low, high), x=value, y="_label", hue="_tone" if toned else None,
                  order=rows["_label"].tolist(), hue_order=present if toned else None,
                  palette={names[t]: TONE_COLOURS[t] for t in TONES} if toned else None,
                  color=None if toned else C["primary"], estimator=_ESTIMATOR, errorbar=_ERRORBAR, linestyle="none",
                  markers="o", dodge=False, capsize=0.25, err_kws={"linewidth": 1.3}, ax=ax)
    if reference is not None:
        ax.axvline(reference, color=C["reference"], linewidth=0.8, zorder=1)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        lo, hi = ax.get_xlim()
        ax.xaxis.set_major_locator(FixedLocator([t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32) if lo <= t <= hi]))
    _numbers(ax.xaxis, lang)
    ax.set(xlabel=xlabel, ylabel="")
    _legend(fig, ax)
    return _finish(fig, n, definition, lang)


# --- bars --------------------------------------------------------------------------------------
@_house
def bars(table: pd.DataFrame, *, category: str, value: str, title: str, value_label: str, n, definition: str,
         low: str | None = None, high: str | None = None, group: str | None = None, orient: str = "h",
         category_label: str = "", tone: str | None = None, colours: Mapping | None = None,
         reference: float | None = None, reference_label: str | None = None, bar_labels: str | None = None,
         marks: str | None = None, marks_label: str | None = None, bar_name: str | None = None,
         lang: str = "en") -> Figure:
    """Bars of `value` per `category` (orient 'h': categories down the side, 'v': along the bottom),
    with intervals when `low`/`high` are given; side by side per `group` (legend; `colours` by
    group), or coloured per row by `tone` (`colours`: {tone value: colour}; explain it in the
    definition); a dashed `reference` line (e.g. all answers), `bar_labels` texts at the bar ends,
    `marks` a second value per bar drawn as a tick (e.g. the 90th percentile); `bar_name` names
    the bars in the legend (e.g. 'median')."""
    if orient not in ("h", "v"):
        raise ValueError(f"orient must be 'h' or 'v', got {orient!r}")
    if group and (bar_labels or marks):
        raise ValueError("bar_labels and marks are drawn on ungrouped bars only")
    rows = _rows(table, category, value, low, high, group, tone, bar_labels, marks)
    _unique(rows[category].astype(str) + "\x00" + (rows[group].astype(str) if group else ""), f"{category} (per group)")
    rows = rows.assign(_category=_wrap(rows[category], _WRAP if orient == "h" else 16))
    order = list(pd.unique(rows["_category"]))
    hue = group or tone
    levels = list(pd.unique(rows[hue])) if hue else None
    palette = ({lv: (colours or {}).get(lv, style.SERIES[i % len(style.SERIES)]) for i, lv in enumerate(levels)}
               if hue else None)
    groups = len(levels) if group else 1
    size = (8.0, 0.32 * len(order) * groups + 2.0) if orient == "h" else (8.0, 4.4)
    fig, ax = plots.new_figure(title, size=size)
    xy = {"x": value, "y": "_category"} if orient == "h" else {"x": "_category", "y": value}
    sns.barplot(_long(rows, value, low, high), **xy, hue=hue, order=order, hue_order=levels, palette=palette,
                color=None if hue else C["primary"], estimator=_ESTIMATOR,
                errorbar=_ERRORBAR if (low or high) else None, dodge=bool(group), capsize=0.2 if (low or high) else 0,
                err_kws={"color": C["reference"], "linewidth": 1.1}, legend=bool(group), orient=orient, saturation=1,
                width=0.7, ax=ax)
    line = ax.axvline if orient == "h" else ax.axhline
    if reference is not None:
        line(reference, color=C["negative"], linestyle="--", linewidth=1, label=reference_label or "_reference")
    positions = rows["_category"].map({c: i for i, c in enumerate(order)}).to_numpy(dtype=float)
    if marks:
        mark_xy = {"x": rows[marks].to_numpy(), "y": positions} if orient == "h" else {"x": positions, "y": rows[marks].to_numpy()}
        sns.scatterplot(**mark_xy, marker="|" if orient == "h" else "_", s=320, linewidth=2, color=C["ink"],
                        label=marks_label or "_marks", zorder=3, ax=ax)
    if bar_labels:
        for pos, val, text_ in zip(positions, rows[value], rows[bar_labels]):
            at, offset = ((val, pos), (4, 0)) if orient == "h" else ((pos, val), (0, 3))
            ax.annotate(str(text_), at, xytext=offset, textcoords="offset points", fontsize=8.5,
                        va="center" if orient == "h" else "bottom", ha="left" if orient == "h" else "center")
        ends = rows[value].abs().max()
        (ax.set_xlim if orient == "h" else ax.set_ylim)(min(0, rows[value].min() * 1.25), max(0, ends * 1.25))
    _numbers(ax.xaxis if orient == "h" else ax.yaxis, lang)
    ax.set(xlabel=value_label if orient == "h" else category_label, ylabel=category_label if orient == "h" else value_label)
    if orient == "v" and len(order) > 4 and max(map(len, order)) > 10:
        ax.tick_params(axis="x", rotation=30)
    _legend(fig, ax, [Patch(color=C["primary"], label=bar_name)] if bar_name and not hue else [])
    return _finish(fig, n, definition, lang)


def ranked_bars(table: pd.DataFrame, *, category: str, value: str, ascending: bool = False, top: int | None = None,
                **kwargs) -> Figure:
    """`bars` sorted by `value`, largest first (`ascending` for smallest first), at most `top` rows."""
    rows = _rows(table, category, value).sort_values(value, ascending=ascending, kind="stable")
    return bars(rows.head(top) if top else rows, category=category, value=value, **kwargs)


@_house
def stacked_shares(table: pd.DataFrame, *, category: str, part: str, value: str, title: str, value_label: str, n,
                   definition: str, colours: Mapping | None = None, lang: str = "en") -> Figure:
    """One horizontal bar per `category` split into its `part`s by `value` (% of the category,
    adding to 100), e.g. the sentiment of comments per NPS group; categories top to bottom and
    parts left to right in the order of the table."""
    rows = _rows(table, category, part, value)
    _unique(rows[category].astype(str) + "\x00" + rows[part].astype(str), f"{part} per {category}")
    rows = rows.assign(_category=_wrap(rows[category]))
    parts = list(pd.unique(rows[part]))
    palette = {p: (colours or {}).get(p, style.SERIES[i % len(style.SERIES)]) for i, p in enumerate(parts)}
    fig, ax = plots.new_figure(title, size=(8.0, 0.45 * rows["_category"].nunique() + 2.0))
    # seaborn stacks the last hue level first (at zero): reversed, the parts read left to right.
    sns.histplot(rows, y="_category", hue=part, weights=value, multiple="stack", discrete=True, shrink=0.7,
                 hue_order=parts[::-1], palette=palette, edgecolor="white", linewidth=0.5, alpha=1, legend=False, ax=ax)
    ax.set_xlim(0, max(100.0, float(rows.groupby("_category")[value].sum().max())))
    _numbers(ax.xaxis, lang)
    ax.set(xlabel=value_label, ylabel="")
    _legend(fig, ax, [Patch(color=palette[p], label=str(p)) for p in parts])
    return _finish(fig, n, definition, lang)


@_house
def dumbbell(table: pd.DataFrame, *, label: str, left: str, right: str, left_label: str, right_label: str, title: str,
             xlabel: str, n, definition: str, highlight: str | None = None, highlight_label: str | None = None,
             colours: tuple[str, str] = (C["positive"], C["negative"]), lang: str = "en") -> Figure:
    """Two values per row joined by a line (e.g. the share of promoters and of detractors
    mentioning a theme); rows where the `highlight` column is true get a ring at the `right` value."""
    rows = _rows(table, label, left, right, highlight)
    _unique(rows[label], label)
    rows = rows.assign(_y=np.arange(len(rows), dtype=float))
    fig, ax = plots.new_figure(title, size=(8.0, 0.4 * len(rows) + 2.0))
    ax.hlines(rows["_y"], rows[left], rows[right], color=C["neutral"], linewidth=1.5, zorder=1)
    points = pd.concat([rows.assign(_x=rows[left], _side=left_label), rows.assign(_x=rows[right], _side=right_label)])
    sns.scatterplot(points, x="_x", y="_y", hue="_side", hue_order=[left_label, right_label],
                    palette=dict(zip((left_label, right_label), colours)), s=60, zorder=3, ax=ax)
    if highlight:
        ringed = rows.loc[rows[highlight].fillna(False).astype(bool)]
        ax.scatter(ringed[right], ringed["_y"], s=170, facecolors="none", edgecolors=C["highlight"], linewidths=2,
                   zorder=4, label=highlight_label or "_highlight")
    ax.set_yticks(rows["_y"], _wrap(rows[label]))
    ax.set_ylim(len(rows) - 0.5, -0.5)
    _numbers(ax.xaxis, lang)
    ax.set(xlabel=xlabel, ylabel="")
    _legend(fig, ax)
    return _finish(fig, n, definition, lang)


# --- time and curves ---------------------------------------------------------------------------
@_house
def trend(table: pd.DataFrame, *, x: str, value: str, title: str, xlabel: str, ylabel: str, n, definition: str,
          low: str | None = None, high: str | None = None, series: str | None = None, colours: Mapping | None = None,
          significant: str | None = None, small: str | None = None, min_n: int | None = None,
          reference: float | None = None, reference_label: str | None = None, lang: str = "en") -> Figure:
    """`value` per period `x` as a line with its interval band (`low`/`high`), one line per
    `series` (`colours` by series); rings on `significant` changes, grey points where `small`.
    Periods like '2024-01' are labelled for readers ('Jan 2024')."""
    if small and min_n is None:
        raise ValueError("trend: `small` points need `min_n` for their legend")
    rows = _rows(table, x, value, low, high, series, significant, small)
    positions, _distinct, labels = _periods(rows[x], lang)
    rows = rows.assign(_x=positions)
    keys = list(pd.unique(rows[series])) if series else [None]
    palette = {k: (colours or {}).get(k, style.SERIES[i % len(style.SERIES)]) for i, k in enumerate(keys)}
    fig, ax = plots.new_figure(title)
    band = locale.text("figure.interval", lang)
    for key in keys:
        part = rows if key is None else rows.loc[rows[series] == key]
        if low and high:
            ax.fill_between(part["_x"], part[low].astype(float), part[high].astype(float), color=palette[key],
                            alpha=0.18, linewidth=0)
    sns.lineplot(rows, x="_x", y=value, hue=series, hue_order=keys if series else None,
                 palette=palette if series else None, color=None if series else C["primary"], marker="o",
                 errorbar=None, sort=False, estimator=None, ax=ax)
    if significant:
        marked = rows.loc[rows[significant].fillna(False).astype(bool)]
        ax.scatter(marked["_x"], marked[value], s=130, facecolors="none", edgecolors=C["highlight"], linewidths=2,
                   zorder=4, label=locale.text("figure.significant_change", lang))
    if small:
        few = rows.loc[rows[small].fillna(False).astype(bool)]
        ax.scatter(few["_x"], few[value], color=C["neutral"], zorder=5, s=30,
                   label=locale.text("figure.small", lang, min_n=locale.format_number(min_n, lang)))
    if reference is not None:
        ax.axhline(reference, color=C["reference"], linewidth=0.8, linestyle="--", label=reference_label or "_reference")
    _time_ticks(ax, labels)
    _numbers(ax.yaxis, lang)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    band_colour = C["neutral"] if series else palette[None]
    _legend(fig, ax, [Patch(color=band_colour, alpha=0.25, label=band)] if low and high else [])
    return _finish(fig, n, definition, lang)


@_house
def curve(table: pd.DataFrame, *, x: str, y: str, title: str, xlabel: str, ylabel: str, n, definition: str,
          step: bool = False, diagonal: bool = False, ylim: tuple[float, float] | None = None,
          lang: str = "en") -> Figure:
    """A numeric curve: `y` over `x` (e.g. a concentration curve with the `diagonal` of equal
    shares, or a survival curve as a `step` line)."""
    rows = _rows(table, x, y).sort_values(x, kind="stable")
    fig, ax = plots.new_figure(title)
    sns.lineplot(rows, x=x, y=y, color=C["primary"], drawstyle="steps-post" if step else "default",
                 errorbar=None, estimator=None, sort=False, ax=ax)
    if diagonal:
        ax.axline((0, 0), slope=1, color=C["neutral"], linestyle="--", label=locale.text("figure.equal_shares", lang))
    if ylim:
        ax.set_ylim(*ylim)
    _numbers(ax.xaxis, lang)
    _numbers(ax.yaxis, lang)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    _legend(fig, ax)
    return _finish(fig, n, definition, lang)


@_house
def histogram(table: pd.DataFrame, *, value: str, title: str, xlabel: str, ylabel: str, n, definition: str,
              bins: int = 40, clip_quantile: float | None = 0.99, lang: str = "en") -> Figure:
    """The distribution of `value` with its median and 90th percentile marked; values above the
    `clip_quantile` drawn at it (say so in `xlabel`)."""
    rows = _rows(table, value)
    values = rows[value].astype(float).dropna()
    if values.empty:
        raise schema.Missing(f"no {value} values to draw")
    shown = values.clip(upper=values.quantile(clip_quantile)) if clip_quantile else values
    fig, ax = plots.new_figure(title)
    sns.histplot(x=shown, bins=bins, color=C["primary"], edgecolor="white", linewidth=0.3, ax=ax)
    for quantile, colour, style_, key in ((0.5, C["highlight"], "--", "median"), (0.9, C["negative"], ":", "p90")):
        ax.axvline(values.quantile(quantile), color=colour, linestyle=style_, linewidth=1.5,
                   label=locale.text(f"figure.{key}", lang))
    _numbers(ax.xaxis, lang)
    _numbers(ax.yaxis, lang)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    _legend(fig, ax)
    return _finish(fig, n, definition, lang)


# --- matrices, control charts, quadrants -------------------------------------------------------
@_house
def heatmap(table: pd.DataFrame, *, row: str, column: str, value: str, title: str, xlabel: str, ylabel: str, n,
            definition: str, colorbar_label: str, decimals: int = 0, vmin: float | None = None,
            vmax: float | None = None, hide_below: float | None = None, row_n: Mapping | None = None,
            lang: str = "en") -> Figure:
    """An annotated matrix of `value` by `row` × `column` (tidy rows, in the order they first
    appear); cells below `hide_below` keep their colour without a number, absent cells stay blank;
    `row_n` {row: n} adds '(n = …)' to the row labels."""
    rows = _rows(table, row, column, value)
    _unique(rows[row].astype(str) + "\x00" + rows[column].astype(str), f"{row} × {column} cell")
    matrix = (rows.pivot(index=row, columns=column, values=value)
              .reindex(index=pd.unique(rows[row]), columns=pd.unique(rows[column])).astype(float))
    hidden = matrix.isna() | (matrix < hide_below if hide_below is not None else False)
    annot = matrix.map(lambda v: locale.format_number(v, lang, decimals=decimals)).where(~hidden, "")
    fig, ax = plots.new_figure(title, size=(max(6.5, 0.75 * matrix.shape[1] + 4.0), max(4.2, 0.5 * matrix.shape[0] + 2.6)))
    sns.heatmap(matrix, annot=annot.to_numpy(), fmt="", cmap=style.SEQUENTIAL, vmin=vmin, vmax=vmax,
                linewidths=0.5, linecolor="white", annot_kws={"fontsize": 8}, cbar_kws={"label": colorbar_label}, ax=ax)
    ylabels = [f"{r} ({locale.text('figure.caption_n', lang, n=locale.format_number(row_n[r], lang))})"
               if row_n and r in row_n else str(r) for r in matrix.index]
    ax.set_yticks(np.arange(len(ylabels)) + 0.5, ylabels, rotation=0)
    ax.set_xticks(np.arange(matrix.shape[1]) + 0.5, [str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.grid(False)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    return _finish(fig, n, definition, lang)


@_house
def control_chart(table: pd.DataFrame, *, panel: str, x: str, value: str, center: str, ucl: str, lcl: str,
                  title: str, ylabel: str, xlabel: str, n, definition: str, signal: str = "out_of_control",
                  lang: str = "en") -> Figure:
    """One panel per `panel` value (u-chart or c-chart): `value` per period `x` with its centre
    line and control limits (dashed steps, as wide as each period's base allows), points where
    `signal` is true in red."""
    rows = _rows(table, panel, x, value, center, ucl, lcl, signal)
    _unique(rows[panel].astype(str) + "\x00" + rows[x].astype(str), f"{x} per {panel}")
    positions, _distinct, labels = _periods(rows[x], lang)
    rows = rows.assign(_x=positions)
    panels = list(pd.unique(rows[panel]))
    fig, axes = plots.new_figure(title, nrows=len(panels), size=(8.0, 1.6 * len(panels) + 1.6), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, panels):
        part = rows.loc[rows[panel] == key].sort_values("_x", kind="stable")
        ax.step(part["_x"], part[center], where="mid", color=C["neutral"], linewidth=0.9,
                label=locale.text("figure.centre", lang))
        for limit, name in ((ucl, locale.text("figure.limits", lang)), (lcl, "_lcl")):
            ax.step(part["_x"], part[limit], where="mid", color=C["neutral"], linestyle="--", linewidth=0.9, label=name)
        sns.lineplot(part, x="_x", y=value, color=C["primary"], marker="o", markersize=4, errorbar=None,
                     estimator=None, sort=False, ax=ax)
        out = part.loc[part[signal].fillna(False).astype(bool)]
        sns.scatterplot(out, x="_x", y=value, color=C["negative"], s=45, zorder=4,
                        label=locale.text("figure.out_of_control", lang) if len(out) else None, ax=ax)
        ax.set_title(str(key), fontsize=9, loc="left")
        ax.set(xlabel="", ylabel=ylabel)
        ax.yaxis.label.set_fontsize(8)
        _numbers(ax.yaxis, lang)
    _time_ticks(axes[-1], labels)
    axes[-1].set_xlabel(xlabel)
    handles = {h.get_label(): h for ax in axes for h in ax.get_legend_handles_labels()[0]}
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    _legend(fig, axes[0], list(handles.values()))
    return _finish(fig, n, definition, lang)


@_house
def importance_performance(table: pd.DataFrame, *, label: str, performance: str, importance: str, title: str,
                           xlabel: str, ylabel: str, n, definition: str, size: str | None = None,
                           tone: str | None = None, colours: Mapping | None = None, named: str | None = None,
                           quadrants: str | tuple[float, float] | None = "median",
                           xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
                           lang: str = "en") -> Figure:
    """Importance (up) against performance (right) per row, bubbles sized by `size` (e.g. reach)
    and coloured by `tone` (`colours`: {tone value: colour}, in the legend); the rows where
    `named` is true (all without it) carry their label. Dashed lines split the quadrants at the
    medians (or at the (x, y) given); the corners name them: fix first (important, performing
    poorly), keep up the good work, low priority, possible overkill."""
    rows = _rows(table, label, performance, importance, size, tone, named)
    levels = list(pd.unique(rows[tone])) if tone else None
    palette = ({lv: (colours or {}).get(lv, style.SERIES[i % len(style.SERIES)]) for i, lv in enumerate(levels)}
               if tone else None)
    fig, ax = plots.new_figure(title, size=(8.0, 5.6))
    sns.scatterplot(rows, x=performance, y=importance, size=size, sizes=(60, 1000) if size else None,
                    hue=tone, hue_order=levels, palette=palette, color=None if tone else C["primary"],
                    s=None if size else 120, alpha=0.7, edgecolor=C["reference"], legend=False, ax=ax)
    shown = rows if named is None else rows.loc[rows[named].fillna(False).astype(bool)]
    for _i, r in shown.iterrows():
        ax.annotate(textwrap.fill(str(r[label]), 26), (r[performance], r[importance]), xytext=(6, 3),
                    textcoords="offset points", fontsize=8, va="top")
    ax.margins(0.12)
    if xlim:
        ax.set_xlim(*xlim)
    if ylim:
        ax.set_ylim(*ylim)
    if quadrants is not None:
        qx, qy = ((rows[performance].median(), rows[importance].median()) if quadrants == "median" else quadrants)
        ax.axvline(qx, color=C["neutral"], linestyle="--", linewidth=0.8)
        ax.axhline(qy, color=C["neutral"], linestyle="--", linewidth=0.8)
        for key, (cx, cy, ha, va) in {"fix_first": (0.01, 0.99, "left", "top"), "keep_up": (0.99, 0.99, "right", "top"),
                                      "low_priority": (0.01, 0.01, "left", "bottom"),
                                      "overkill": (0.99, 0.01, "right", "bottom")}.items():
            ax.text(cx, cy, locale.text(f"figure.quadrants.{key}", lang), transform=ax.transAxes, ha=ha, va=va,
                    fontsize=8.5, style="italic", color=C["muted"])
    _numbers(ax.xaxis, lang)
    _numbers(ax.yaxis, lang)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    _legend(fig, ax, [Line2D([], [], marker="o", linestyle="none", markersize=8, color=palette[lv], label=str(lv))
                      for lv in levels or []])
    return _finish(fig, n, definition, lang)
