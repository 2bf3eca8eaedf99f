"""cxlib.journey_figures: each figure of the journey report on a small hand-made table — the bars,
cells or steps drawn, the title that states the finding and the caption with n."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cxlib import config, journey_figures, schema  # noqa: E402
from tests.figure_checks import caption, close_figures, title  # noqa: E402,F401
from tests.conftest import ROOT  # noqa: E402


@pytest.fixture(scope="module")
def taxonomy():
    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


def widths(ax) -> list[float]:
    return [round(p.get_width(), 6) for p in ax.patches if p.get_width() > 0]


def test_funnel_figure_labels_counts_and_conversion(taxonomy):
    funnel = pd.DataFrame({"step": ["web_visit|tariff_page", "order"], "customers": [2659, 403], "conversion": [1.0, 0.1516]})
    fig = journey_figures.funnel_figure(funnel, taxonomy)
    ax = fig.axes[0]
    assert widths(ax) == [2659, 403]
    assert [t.get_text() for t in ax.texts] == ["2,659 (100%)", "403 (15%)"]
    assert "15.2% of those who start reach order" in title(fig)
    assert caption(fig).startswith("n = 2,659")


def test_stages_figure_in_percent(taxonomy):
    stages = pd.DataFrame({"stage": ["awareness", "purchase"], "stage_label": ["Awareness", "Purchase"],
                           "customers": [30, 15], "share": [1.0, 0.5]})
    fig = journey_figures.stages_figure(stages, pd.DataFrame({"customers": [30]}))
    assert widths(fig.axes[0]) == [100.0, 50.0]
    assert title(fig) == "50% of people in the log reach the purchase stage"
    assert caption(fig).startswith("n = 30")


def test_stage_flow_figure_cells_and_leaving_counts(taxonomy):
    flow = pd.DataFrame({"from_step": ["awareness", "awareness", "purchase"], "to_step": ["purchase", "awareness", "purchase"],
                         "transitions": [3, 1, 2], "probability": [0.75, 0.25, 1.0]})
    fig = journey_figures.stage_flow_figure(flow, taxonomy)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["25", "75", "", "100"]      # 0% from purchase to awareness: blank
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Awareness (n = 4)", "Purchase (n = 2)"]
    assert title(fig) == "Most stage changes go awareness → purchase"
    assert caption(fig).startswith("n = 6")
    with pytest.raises(schema.Missing):                                     # no transition between stages
        journey_figures.stage_flow_figure(flow.assign(from_step="web_visit"), taxonomy)


def test_timing_figure_highlights_the_named_pair(taxonomy):
    timing = pd.DataFrame({"from_step": ["order", "activation"], "to_step": ["activation", "first_invoice"],
                           "pairs": [10, 0], "days_median": [2.5, None], "days_p90": [11.0, None], "share_over": [0.2, None]})
    fig = journey_figures.timing_figure(timing, ["order", "activation"], taxonomy, slow_days=14)
    ax = fig.axes[0]
    assert widths(ax) == [2.5]                                               # a pair that never occurs is left out
    assert ax.collections[0].get_offsets().tolist() == [[11.0, 0.0]]         # the 90th percentile tick
    assert title(fig) == "20% of order → activation take longer than 14 days"
    assert caption(fig).startswith("n = 10")


def test_opportunities_figure_with_intervals_and_nobody_new():
    rates = pd.DataFrame({"customer_type": ["new", "repeat"], "opportunities": [0, 20], "converted": [0, 10],
                          "rate": [None, 0.5], "ci_low": [None, 0.3], "ci_high": [None, 0.7]})
    fig = journey_figures.opportunities_figure(rates, steps=["quote"], window_days=30)
    ax = fig.axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches] == [0.0, 50.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["new customers", "repeat customers"]
    assert title(fig) == "Repeat customers convert 50% of opportunities"
    assert "within 30 days" in caption(fig) and caption(fig).startswith("n = 20")


def test_tenure_figure_steps_from_everyone_active():
    life = pd.DataFrame({"tenure_from_days": [0, 180], "tenure_to_days": [180, 360], "at_risk": [10, 8],
                         "churned": [2, 0], "rate": [0.2, 0.0], "survival": [0.8, 0.8]})
    life.attrs["customers"] = 10
    fig = journey_figures.tenure_figure(life, band_days=180)
    x, y = fig.axes[0].lines[0].get_data()
    assert list(y) == [100.0, 80.0, 80.0] and x[0] == 0
    assert title(fig) == "20% of customers churn within 12 months"
    assert caption(fig) == "n = 10 · life table in bands of 180 days"


def test_figures_speak_german(taxonomy):
    funnel = pd.DataFrame({"step": ["web_visit|tariff_page", "order"], "customers": [2659, 403], "conversion": [1.0, 0.1516]})
    fig = journey_figures.funnel_figure(funnel, taxonomy, lang="de")
    assert [t.get_text() for t in fig.axes[0].texts] == ["2.659 (100\u00a0%)", "403 (15\u00a0%)"]
    assert "15,2\u00a0% derer, die beginnen, erreichen Bestellung" in title(fig)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["Webseitenbesuch oder Tarifseite", "Bestellung"]
    assert caption(fig).startswith("n = 2.659 · Kunden, die die Schritte der Reihe nach erreichen")
    rates = pd.DataFrame({"customer_type": ["new", "repeat"], "opportunities": [10, 20], "converted": [1, 10],
                          "rate": [0.1, 0.5], "ci_low": [0.02, 0.3], "ci_high": [0.4, 0.7]})
    fig = journey_figures.opportunities_figure(rates, taxonomy, steps=["quote"], window_days=30, lang="de")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["Neukunden", "Bestandskunden"]
    assert title(fig).replace("\n", " ") == "Bestandskunden machen 50\u00a0% ihrer Verkaufschancen zur Bestellung, Neukunden 10\u00a0%"
    assert "Verkaufschancen (Angebot) mit einer Bestellung binnen 30 Tagen" in caption(fig)
    life = pd.DataFrame({"tenure_from_days": [0, 180], "tenure_to_days": [180, 360], "at_risk": [10, 8],
                         "churned": [2, 0], "rate": [0.2, 0.0], "survival": [0.8, 0.8]})
    life.attrs["customers"] = 10
    fig = journey_figures.tenure_figure(life, band_days=180, lang="de")
    assert title(fig) == "20\u00a0% der Kunden kündigen binnen 12 Monaten"
    assert fig.axes[0].get_xlabel() == "Kundendauer (Monate)"
