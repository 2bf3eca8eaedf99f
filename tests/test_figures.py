"""cxlib.figures: each kind of figure on a small hand-made frame — the marks drawn (points, bars,
cells), tick labels, title, caption with n — plus the thin cases (one row, empty frame, intervals
on the wrong side of their value)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from cxlib import figures, plots, schema, style  # noqa: E402

C = style.COLOURS
TEXT = {"n": 120, "definition": "hand-made rows"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def caption(fig) -> str:
    return fig.texts[-1].get_text()


def ticks(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels()]


def points(ax) -> list[tuple[float, float]]:
    """(x, y) of the drawn markers of `ax` (pointplot / lineplot lines with a marker)."""
    return [(x, y) for line in ax.lines if line.get_marker() not in (None, "None", "")
            for x, y in zip(line.get_xdata(), line.get_ydata()) if np.isfinite(x) and np.isfinite(y)]


def whiskers(ax) -> list[tuple[float, float]]:
    """(low, high) of each error bar of a horizontal pointplot/barplot (lines without markers,
    three segments each: cap, bar, cap)."""
    spans = []
    for line in ax.lines:
        x = np.asarray(line.get_xdata(), dtype=float)
        if line.get_marker() in (None, "None", "") and len(x) == 8 and np.isfinite(x[3:5]).all():
            spans.append((x[3:5].min(), x[3:5].max()))
    return spans


def bars_drawn(ax) -> list:
    return [p for p in ax.patches if p.get_width() != 0 and p.get_height() != 0]


# --- interval plot -------------------------------------------------------------------------------
@pytest.fixture
def impact() -> pd.DataFrame:
    return pd.DataFrame({"label": ["Unclear invoice", "Hotline", "Onboarding", "Rare"],
                         "value": [-24.0, -3.0, 9.0, 5.0], "low": [-37.0, -9.0, 2.0, np.nan], "high": [-10.0, 3.0, 16.0, np.nan],
                         "significant": [True, False, True, False], "small": [False, False, False, True]})


def test_interval_plot(impact):
    fig = figures.interval_plot(impact, label="label", value="value", low="low", high="high",
                                title="Unclear invoices cost 24 points", xlabel="NPS difference (points)", **TEXT)
    ax = fig.axes[0]
    assert fig.get_suptitle() == "Unclear invoices cost 24 points"
    assert ticks(ax.yaxis) == ["Unclear invoice", "Hotline", "Onboarding", "Rare"]
    assert sorted(points(ax)) == [(-24.0, 0), (-3.0, 1), (5.0, 3), (9.0, 2)]
    assert sorted(whiskers(ax)) == [(-37.0, -10.0), (-9.0, 3.0), (2.0, 16.0), (5.0, 5.0)]
    assert ax.get_xlabel() == "NPS difference (points)"
    assert caption(fig) == "n = 120 · hand-made rows"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["significantly worse", "significantly better", "not significant", "too few answers"]
    colour = {line.get_xdata()[0] if np.isfinite(line.get_xdata()[0]) else None: to_hex(line.get_color())
              for line in ax.lines if line.get_marker() == "o" and len(line.get_xdata())}
    assert colour[-24.0] == C["negative"]


def test_interval_plot_never_draws_a_whisker_past_its_value():
    rows = pd.DataFrame({"label": ["a"], "value": [5.0], "low": [7.0], "high": [9.0], "significant": [False],
                         "small": [False]})
    fig = figures.interval_plot(rows, label="label", value="value", low="low", high="high", title="t", xlabel="x",
                                n=1, definition="d")
    assert (points(fig.axes[0]), whiskers(fig.axes[0])) == ([(5.0, 0)], [(5.0, 9.0)])
    assert caption(fig).startswith("n = 1 ·")


def test_interval_plot_log_ratio_and_language():
    rows = pd.DataFrame({"label": ["a", "b"], "lift": [2.4, 0.7], "lo": [1.5, 0.3], "hi": [3.8, 1.6],
                         "significant": [True, False], "small": False})
    fig = figures.interval_plot(rows, label="label", value="lift", low="lo", high="hi", reference=1, worse="higher",
                                log=True, title="t", xlabel="ratio", n=2494, definition="d", lang="de")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ticks(ax.xaxis) == ["0,5", "1", "2", "4"]
    assert caption(fig) == "n = 2.494 · d"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["signifikant schlechter", "nicht signifikant"]


def test_figures_refuse_empty_frames_and_unknown_columns(impact):
    with pytest.raises(schema.Missing, match="no rows to draw"):
        figures.interval_plot(impact.iloc[0:0], label="label", value="value", low="low", high="high", title="t",
                              xlabel="x", **TEXT)
    with pytest.raises(ValueError, match=r"\['ci_low'\] not in the table"):
        figures.interval_plot(impact, label="label", value="value", low="ci_low", high="high", title="t", xlabel="x",
                              **TEXT)
    with pytest.raises(ValueError, match="drawn once"):
        figures.interval_plot(pd.concat([impact, impact]), label="label", value="value", low="low", high="high",
                              title="t", xlabel="x", **TEXT)


# --- bars ----------------------------------------------------------------------------------------
@pytest.fixture
def segments() -> pd.DataFrame:
    return pd.DataFrame({"segment": ["business", "private", "premium"], "value": [-2.9, 8.1, 15.2],
                         "low": [-11.2, 8.5, 9.0], "high": [5.4, 12.2, 21.4], "status": ["significant", "ranked", "small"]})


def test_bars_with_intervals_tone_and_reference(segments):
    fig = figures.bars(segments, category="segment", value="value", low="low", high="high", tone="status",
                       colours={"significant": C["highlight"], "small": C["neutral"]}, reference=6.9,
                       reference_label="all answers", title="Premium recommends most", value_label="NPS (points)", **TEXT)
    ax = fig.axes[0]
    assert ticks(ax.yaxis) == ["business", "private", "premium"]
    drawn = {round(p.get_y() + p.get_height() / 2): (p.get_width(), to_hex(p.get_facecolor())) for p in bars_drawn(ax)}
    assert drawn == {0: (-2.9, C["highlight"]), 1: (8.1, style.SERIES[1]), 2: (15.2, C["neutral"])}
    assert sorted(whiskers(ax)) == [(-11.2, 5.4), (8.1, 12.2), (9.0, 21.4)]      # private: low above the value
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["all answers"]
    assert ax.get_xlabel() == "NPS (points)" and caption(fig) == "n = 120 · hand-made rows"


def test_bars_vertical_grouped(segments):
    rows = pd.DataFrame({"tier": ["high", "mid", "low"] * 2, "what": ["customers"] * 3 + ["value"] * 3,
                         "share": [10.0, 30.0, 60.0, 70.0, 20.0, 10.0]})
    fig = figures.bars(rows, category="tier", value="share", group="what", orient="v", title="t",
                       value_label="share (%)", category_label="value tier", **TEXT)
    ax = fig.axes[0]
    assert ticks(ax.xaxis) == ["high", "mid", "low"]
    assert sorted(round(p.get_height(), 1) for p in bars_drawn(ax)) == [10.0, 10.0, 20.0, 30.0, 60.0, 70.0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["customers", "value"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("value tier", "share (%)")


def test_bars_labels_marks_and_one_row():
    rows = pd.DataFrame({"step": ["visit", "order"], "customers": [2659, 403], "text": ["2,659 (100%)", "403 (15%)"],
                         "p90": [10.0, 30.0]})
    fig = figures.bars(rows, category="step", value="customers", bar_labels="text", title="t", value_label="customers",
                       n=2659, definition="d")
    assert [t.get_text() for t in fig.axes[0].texts] == ["2,659 (100%)", "403 (15%)"]
    assert ticks(fig.axes[0].xaxis)[1] == "500"
    fig = figures.bars(rows.iloc[[1]], category="step", value="customers", marks="p90", marks_label="90th percentile",
                       bar_name="median", title="t", value_label="days", n=403, definition="d")
    ax = fig.axes[0]
    assert [p.get_width() for p in bars_drawn(ax)] == [403]
    assert ax.collections[0].get_offsets().tolist() == [[30.0, 0.0]]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["90th percentile", "median"]


def test_ranked_bars_sorts_and_cuts():
    rows = pd.DataFrame({"stage": ["a", "b", "c", "d"], "share": [20.0, 88.0, 45.0, 60.0]})
    fig = figures.ranked_bars(rows, category="stage", value="share", top=3, title="88% reach b",
                              value_label="customers (%)", **TEXT)
    assert ticks(fig.axes[0].yaxis) == ["b", "d", "c"]
    assert len(bars_drawn(fig.axes[0])) == 3
    with pytest.raises(schema.Missing):
        figures.ranked_bars(rows.iloc[0:0], category="stage", value="share", title="t", value_label="v", **TEXT)


def test_stacked_shares():
    rows = pd.DataFrame({"group": ["detractor"] * 3 + ["promoter"] * 3, "sentiment": ["negative", "neutral", "positive"] * 2,
                         "share": [62.0, 28.0, 10.0, 8.0, 30.0, 62.0]})
    fig = figures.stacked_shares(rows, category="group", part="sentiment", value="share", title="t",
                                 value_label="share of comments (%)",
                                 colours={"negative": C["negative"], "neutral": C["neutral"], "positive": C["positive"]}, **TEXT)
    ax = fig.axes[0]
    assert ticks(ax.yaxis) == ["detractor", "promoter"]
    first = sorted((round(p.get_x(), 1), round(p.get_width(), 1), to_hex(p.get_facecolor())) for p in bars_drawn(ax)
                   if abs(p.get_y() + p.get_height() / 2) < 0.01)
    assert first == [(0.0, 62.0, C["negative"]), (62.0, 28.0, C["neutral"]), (90.0, 10.0, C["positive"])]
    assert len(bars_drawn(ax)) == 6
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["negative", "neutral", "positive"]


def test_dumbbell():
    rows = pd.DataFrame({"theme": ["Invoice", "Price"], "prom": [3.2, 10.0], "det": [36.6, 12.0], "sig": [True, False]})
    fig = figures.dumbbell(rows, label="theme", left="prom", right="det", left_label="promoters", right_label="detractors",
                           highlight="sig", highlight_label="significant difference", title="t", xlabel="comments (%)", **TEXT)
    ax = fig.axes[0]
    assert ticks(ax.yaxis) == ["Invoice", "Price"]
    offsets = sorted(tuple(o) for c in ax.collections if isinstance(c, PathCollection) for o in c.get_offsets().tolist())
    assert offsets == [(3.2, 0.0), (10.0, 1.0), (12.0, 1.0), (36.6, 0.0), (36.6, 0.0)]     # the ring on Invoice
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["promoters", "detractors", "significant difference"]


# --- time and curves -----------------------------------------------------------------------------
def test_trend_with_band_significant_and_small():
    rows = pd.DataFrame({"period": ["2024-01", "2024-02", "2024-03"], "value": [5.0, 12.0, 8.0],
                         "ci_low": [-3.0, 4.0, 0.0], "ci_high": [13.0, 20.0, 16.0],
                         "significant": [False, True, False], "small": [True, False, False]})
    fig = figures.trend(rows, x="period", value="value", low="ci_low", high="ci_high", significant="significant",
                        small="small", min_n=100, title="NPS rose in February", xlabel="month", ylabel="NPS (points)",
                        lang="de", **TEXT)
    ax = fig.axes[0]
    assert points(ax) == [(0.0, 5.0), (1.0, 12.0), (2.0, 8.0)]
    assert ticks(ax.xaxis) == ["Jan. 2024", "Feb. 2024", "März 2024"]
    rings, few = (c.get_offsets().tolist() for c in ax.collections[1:3])
    assert (rings, few) == ([[1.0, 12.0]], [[0.0, 5.0]])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["signifikante Veränderung", "weniger als 100 Antworten",
                                                                  "95-%-Intervall"]
    assert caption(fig) == "n = 120 · hand-made rows"


def test_trend_series_and_one_period():
    rows = pd.DataFrame({"period": ["2024Q1", "2024Q1"], "share": [30.0, 28.0], "series": ["promoters", "detractors"]})
    fig = figures.trend(rows, x="period", value="share", series="series", title="t", xlabel="quarter",
                        ylabel="share (%)", colours={"promoters": C["positive"], "detractors": C["negative"]}, **TEXT)
    ax = fig.axes[0]
    assert sorted(points(ax)) == [(0.0, 28.0), (0.0, 30.0)]
    assert ticks(ax.xaxis) == ["Q1 2024"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["promoters", "detractors"]


def test_curve_step_and_diagonal():
    rows = pd.DataFrame({"months": [6, 0, 12], "active": [90.0, 100.0, 80.0]})
    fig = figures.curve(rows, x="months", y="active", step=True, ylim=(0, 100), title="t", xlabel="tenure (months)",
                        ylabel="still active (%)", **TEXT)
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == [0, 6, 12] and line.get_drawstyle() == "steps-post"
    fig = figures.curve(rows, x="months", y="active", diagonal=True, title="t", xlabel="x", ylabel="y", **TEXT)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["equal shares"]


def test_histogram_marks_median_and_p90():
    rows = pd.DataFrame({"value": [float(v) for v in range(1, 101)]})
    fig = figures.histogram(rows, value="value", bins=10, clip_quantile=None, title="t", xlabel="value (€)",
                            ylabel="customers", **TEXT)
    ax = fig.axes[0]
    assert len(bars_drawn(ax)) == 10 and sum(p.get_height() for p in bars_drawn(ax)) == 100
    assert [round(line.get_xdata()[0], 1) for line in ax.lines] == [50.5, 90.1]
    with pytest.raises(schema.Missing):
        figures.histogram(pd.DataFrame({"value": [np.nan]}), value="value", title="t", xlabel="x", ylabel="y", **TEXT)


# --- matrices, control charts, quadrants ---------------------------------------------------------
def test_heatmap_annotations_and_row_n():
    rows = pd.DataFrame({"from": ["A", "A", "B", "B"], "to": ["A", "B", "A", "B"], "pct": [90.4, 9.6, 0.2, 99.8]})
    fig = figures.heatmap(rows, row="from", column="to", value="pct", hide_below=0.5, row_n={"A": 1200, "B": 30},
                          vmin=0, vmax=100, colorbar_label="%", title="t", xlabel="next stage", ylabel="stage", **TEXT)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["90", "10", "", "100"]
    assert ticks(ax.yaxis) == ["A (n = 1,200)", "B (n = 30)"]
    assert ticks(ax.xaxis) == ["A", "B"]
    assert len(fig.axes) == 2                      # the matrix and its colour bar


def test_control_chart_panels_limits_and_signals():
    rows = pd.DataFrame({"cat": ["Billing"] * 3 + ["Hotline"] * 3, "month": ["2025-01", "2025-02", "2025-03"] * 2,
                         "rate": [4.0, 11.7, 3.9, 2.0, 2.5, 2.2], "center": 4.0, "ucl": 7.0, "lcl": 1.0,
                         "out": [False, True, False, False, False, False]})
    fig = figures.control_chart(rows, panel="cat", x="month", value="rate", center="center", ucl="ucl", lcl="lcl",
                                signal="out", title="Billing broke out in Feb", ylabel="per 1,000", xlabel="month",
                                n=1662, definition="u-chart")
    first, second = fig.axes
    assert (first.get_title(loc="left"), second.get_title(loc="left")) == ("Billing", "Hotline")
    assert points(first) == [(0.0, 4.0), (1.0, 11.7), (2.0, 3.9)]
    assert first.collections[-1].get_offsets().tolist() == [[1.0, 11.7]]
    assert ticks(second.xaxis) == ["Jan 2025", "Feb 2025", "Mar 2025"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["centre line", "control limits", "out of control"]
    assert caption(fig) == "n = 1,662 · u-chart"


def test_importance_performance_quadrants_and_names():
    rows = pd.DataFrame({"label": ["Invoice", "Hotline", "Onboarding"], "perf": [49.0, 55.0, 80.0],
                         "imp": [24.0, 8.5, -9.0], "reach": [0.26, 0.05, 0.3], "named": [True, False, True],
                         "tone": ["loss", "loss", "magic"]})
    fig = figures.importance_performance(rows, label="label", performance="perf", importance="imp", size="reach",
                                         tone="tone", colours={"loss": C["negative"], "magic": C["positive"]},
                                         named="named", title="Fix first: Invoice", xlabel="CSAT (%)",
                                         ylabel="NPS points lost", lang="de", **TEXT)
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets().tolist() == [[49.0, 24.0], [55.0, 8.5], [80.0, -9.0]]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["Invoice", "Onboarding", "zuerst verbessern", "Stärke halten", "geringe Priorität",
                     "möglicher Überaufwand"]
    assert [line.get_xdata()[0] for line in ax.lines[:1]] == [55.0]        # the median of performance
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["loss", "magic"]


def test_finish_formats_n_in_the_report_language():
    fig, _ax = plots.new_figure("A title")
    plots.finish(fig, n=4210, definition="d", source="CRM", lang="de")
    assert caption(fig) == "n = 4.210 · d · Quelle: CRM"


def test_interval_plot_without_significance_is_one_colour():
    rows = pd.DataFrame({"label": ["a", "b"], "value": [1.0, -1.0], "low": [0.0, -2.0], "high": [2.0, 0.0]})
    fig = figures.interval_plot(rows, label="label", value="value", low="low", high="high", significant=None,
                                small=None, title="t", xlabel="x", **TEXT)
    ax = fig.axes[0]
    assert sorted(points(ax)) == [(-1.0, 1), (1.0, 0)]
    assert {to_hex(line.get_color()) for line in ax.lines if line.get_marker() == "o"} == {C["primary"]}
    assert fig.legends == []
