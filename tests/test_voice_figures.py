"""cxlib.voice_figures: each figure of the voice-of-the-customer report on a small hand-made table — the
points or bars drawn, the labels, the title that states the finding (English and German) and the
caption with n."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cxlib import style, voice_figures  # noqa: E402
from tests.figure_checks import caption, close_figures  # noqa: E402,F401
from tests.figure_checks import title as wrapped_title  # noqa: E402


def title(fig) -> str:
    """The title on one line (the house style wraps long titles)."""
    return wrapped_title(fig).replace("\n", " ")


def cut_table() -> pd.DataFrame:
    return pd.DataFrame({"segment": ["business", "private", "tiny"], "n": [300, 500, 20], "value": [-5.0, 12.0, 40.0],
                         "ci_low": [-12.0, 7.0, 0.0], "ci_high": [2.0, 17.0, 70.0], "diff_vs_rest": [-15.0, 15.0, 30.0],
                         "significant": [True, True, False], "small": [False, False, True],
                         "rank": pd.array([2, 1, pd.NA], dtype="Int64")})


def test_groups_figure_bars_tones_reference_and_caption():
    fig = voice_figures.groups_figure({"nps": cut_table()}, ["segment"], overall={"nps": {"value": 6.0}}, min_n=100)
    ax = fig.axes[0]
    assert sorted(round(p.get_width(), 6) for p in ax.patches if p.get_width() != 0) == [-5.0, 12.0, 40.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["tiny", "private", "business"]     # highest first
    assert any(list(line.get_xdata()) == [6.0, 6.0] for line in ax.lines)                      # all answers
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["all answers"]
    colours = {round(p.get_width(), 6): matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches if p.get_width()}
    assert colours == {40.0: style.COLOURS["neutral"], 12.0: style.COLOURS["highlight"], -5.0: style.COLOURS["highlight"]}
    assert "grey = fewer than 100 answers" in caption(fig)
    assert title(fig) == ("NPS by segment: 2 of 2 groups differ significantly from the rest, from -5.0 (business) "
                          "to +12.0 (private)")
    assert caption(fig).startswith("n = 820 · NPS = % promoters")
    de = voice_figures.groups_figure({"nps": cut_table()}, ["segment"], min_n=100, lang="de")
    assert title(de).startswith("NPS nach segment: 2 von 2 Gruppen") and caption(de).startswith("n = 820 · NPS = % Promotoren")


def trend_table() -> pd.DataFrame:
    return pd.DataFrame({"period": ["2024-01", "2024-02", "2024-03"], "n": [200, 150, 40], "value": [10.0, 25.0, 20.0],
                         "ci_low": [4.0, 18.0, 5.0], "ci_high": [16.0, 32.0, 35.0], "significant": [False, True, False],
                         "small": [False, False, True]})


def test_trend_figure_points_rings_and_period_labels():
    fig = voice_figures.trend_figure({"csat": trend_table()}, period="month", min_n=100)
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [10.0, 25.0, 20.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Jan 2024", "Feb 2024", "Mar 2024"]
    assert title(fig) == "CSAT per month: 1 significant change(s) between consecutive months"
    assert caption(fig).startswith("n = 390 · CSAT = % of answers")
    de = voice_figures.trend_figure({"csat": trend_table().assign(significant=False)}, period="quarter", min_n=100, lang="de")
    assert title(de) == "CSAT je Quartal bewegt sich im Rauschen der Stichprobe: keine signifikante Veränderung"
    assert de.axes[0].get_xlabel() == "Quartal"


def test_word_of_mouth_figure_two_series_and_title():
    wom = pd.DataFrame({"period": ["2024-01", "2024-02"], "n": [100, 120], "promoters": [30.0, 40.0],
                        "promoters_low": [21.0, 31.0], "promoters_high": [39.0, 49.0], "detractors": [20.0, 10.0],
                        "detractors_low": [12.0, 5.0], "detractors_high": [28.0, 15.0], "small": [False, False]})
    fig = voice_figures.word_of_mouth_figure(wom, min_n=50)
    ys = sorted(tuple(line.get_ydata()) for line in fig.axes[0].lines if len(line.get_ydata()) == 2)
    assert ys == [(20.0, 10.0), (30.0, 40.0)]
    assert title(fig) == "Promoters 30% → 40%, detractors 20% → 10% (Jan 2024 to Feb 2024)"
    assert caption(fig).startswith("n = 220 · promoters = 9–10")
    assert title(voice_figures.word_of_mouth_figure(wom, min_n=50, lang="de")).startswith("Promotoren 30\u00a0% → 40\u00a0%")


def test_sentiment_figure_stacks_to_100_per_group():
    shares = pd.DataFrame({"negative": [80.0, 10.0], "neutral": [15.0, 20.0], "positive": [5.0, 70.0], "n": [40, 60]},
                          index=pd.Index(["detractor", "promoter"], name="group"))
    learned = {"languages": pd.DataFrame({"language": ["de"], "method": ["learned"]})}
    fig = voice_figures.sentiment_figure(shares, learned)
    widths = sorted(round(p.get_width(), 6) for p in fig.axes[0].patches if p.get_width() > 0)
    assert widths == [5.0, 10.0, 15.0, 20.0, 70.0, 80.0]
    assert title(fig) == "80% of detractors' comments are negative, 70% of promoters' positive"
    assert caption(fig).startswith("n = 100 ·") and "learned from the scored comments: German" in caption(fig)
    de = voice_figures.sentiment_figure(shares, learned, lang="de")
    assert [t.get_text() for t in de.axes[0].get_yticklabels()] == ["Kritiker", "Promotoren"]


def test_themes_figure_dumbbell_rings_and_caption():
    gap = pd.DataFrame({"label": ["Invoice", "Hotline", "Price"], "mentions": [50, 20, 0],
                        "detractor_share": [40.0, 12.0, 0.0], "promoter_share": [5.0, 10.0, 0.0],
                        "significant": [True, False, False], "detractors": 100, "promoters": 200})
    fig = voice_figures.themes_figure(gap)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Invoice", "Hotline"]       # no mention: not drawn
    ringed = [c.get_offsets().tolist() for c in ax.collections if len(c.get_facecolors()) == 0 or
              np.allclose(np.asarray(c.get_facecolors())[:, 3], 0)]
    assert [[40.0, 0.0]] in ringed
    assert title(fig) == "Detractors mention Invoice in 40% of their comments, promoters in 5%"
    assert caption(fig).startswith("n = 100 detractors, 200 promoters with a German or English comment")
    assert title(voice_figures.themes_figure(gap, lang="de")) == \
        "Kritiker nennen Invoice in 40\u00a0% ihrer Kommentare, Promotoren in 5\u00a0%"
