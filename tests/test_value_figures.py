"""cxlib.value_figures: each figure of the customer-value report on a small hand-made table — the
bars, curve or histogram drawn, the title that states the finding and the caption with n."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cxlib import value, value_figures  # noqa: E402
from tests.figure_checks import caption, close_figures, title  # noqa: E402,F401
from tests.test_value import AS_OF, ORDERS  # noqa: E402


def heights(ax, horizontal: bool = False) -> list[float]:
    return [round(p.get_width() if horizontal else p.get_height(), 6) for p in ax.patches
            if (p.get_width() if horizontal else p.get_height()) > 0]


def test_historic_figure_curve_and_title():
    hist = value.historic_value(ORDERS, as_of=AS_OF)               # A 160, B 200, F 80 net revenue
    overview = value.historic_overview(hist, ORDERS)
    fig = value_figures.historic_figure(hist, overview, end=pd.Timestamp(AS_OF))
    x, y = fig.axes[0].lines[0].get_data()
    assert x[-1] == pytest.approx(100) and y[-1] == pytest.approx(100)
    assert title(fig) == f"The top 20% of customers brought {overview['top20_share']:.0%} of net revenue to date"
    assert caption(fig).startswith("n = 3 · customers with a purchase up to 2024-03-31")


def test_rfm_figure_groups_customers_and_revenue():
    segments = pd.DataFrame({"segment": ["Champions", "At risk"], "customers": [3, 1], "customer_share": [0.75, 0.25],
                             "revenue_share": [0.9, 0.1]})
    fig = value_figures.rfm_figure(segments, bins=5)
    assert sorted(heights(fig.axes[0], horizontal=True)) == [10.0, 25.0, 75.0, 90.0]
    assert title(fig) == "Champions (75% of customers) hold 90% of revenue to date"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["customers", "net revenue"]
    assert caption(fig).startswith("n = 4")


def test_value_figure_on_the_fallback():
    hist = value.historic_value(ORDERS, as_of=AS_OF)
    clv = value.customer_value(ORDERS, hist, as_of=AS_OF)            # too few repeat buyers: revenue to date
    fig = value_figures.value_figure(clv, horizon_months=12, annual_discount_rate=0.1)
    assert title(fig) == "Median customer worth 160 €, top 10% over 192 €"
    assert caption(fig).startswith("n = 3")
    assert sum(p.get_height() for p in fig.axes[0].patches) == 3


def test_holdout_figure_predicted_and_actual_per_decile():
    check = pd.DataFrame({"decile": ["1", "2", "all"], "customers": [5, 5, 10], "predicted_mean": [0.1, 0.5, 0.3],
                          "actual_mean": [0.2, 0.4, 0.3], "predicted": [0.5, 2.5, 3.0], "actual": [1.0, 2.0, 3.0]})
    fig = value_figures.holdout_figure(check, holdout_months=6, end=pd.Timestamp(AS_OF))
    ax = fig.axes[0]
    assert sorted(heights(ax)) == [0.1, 0.2, 0.4, 0.5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]      # the total row is not a decile
    assert title(fig) == "Holdout: 3 repeat purchases predicted, 3 happened"
    assert caption(fig).startswith("n = 10 · model fitted on the data up to 6 months before 2024-03-31")


def test_tiers_figure_and_definition():
    tier_table = pd.DataFrame({"value_tier": ["high", "low"], "customers": [1, 3], "value_total": [300.0, 100.0],
                               "value_share": [0.75, 0.25]})
    fig = value_figures.tiers_figure(tier_table, basis="revenue to date", tiers={"high": 0.25, "low": 0.75})
    assert sorted(heights(fig.axes[0])) == [25.0, 25.0, 75.0, 75.0]
    assert caption(fig) == "n = 4 · tiers by rank of revenue to date: high 25%, low 75%"


def test_kpi_tier_figure_greys_small_tiers():
    by_tier = pd.DataFrame({"kpi": "nps", "value_tier": ["high", "low"], "value": [-10.0, 20.0],
                            "ci_low": [-30.0, 5.0], "ci_high": [10.0, 35.0], "n": [12, 80], "small": [True, False]})
    fig = value_figures.kpi_tier_figure(by_tier, end=pd.Timestamp(AS_OF), min_n=30)
    ax = fig.axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches] == [-10.0, 20.0]
    assert [p.get_facecolor()[:3] for p in ax.patches][0] != [p.get_facecolor()[:3] for p in ax.patches][1]
    assert title(fig) == "NPS -10 in the high tier, +20 in the low tier (95% intervals)"
    assert "fewer than 30 answers" in caption(fig) and caption(fig).startswith("n = 92")


def test_complaints_tier_figure():
    exposure = pd.DataFrame({"value_tier": ["high", "high", "low"], "group": ["any", "billing", "any"],
                             "customers": [4, 4, 6], "exposed": [1, 1, 0], "share": [0.25, 0.25, 0.0]})
    fig = value_figures.complaints_tier_figure(exposure, window_days=365, end=pd.Timestamp(AS_OF))
    assert [round(p.get_height(), 6) for p in fig.axes[0].patches] == [25.0, 0.0]
    assert title(fig) == "Complaints reached 25.0% of the high tier in 365 days"
    assert caption(fig).startswith("n = 10")


def test_risk_figure_names_the_triggers_in_words():
    info = {"customers": 10, "at_risk": 3, "share": 0.3, "value": 500.0, "value_share": 0.5,
            "triggers": {"moment": 2, "detractor": 0, "moment+detractor": 1}}
    fig = value_figures.risk_figure(info, high_tiers=["high"], window_days=90, end=pd.Timestamp(AS_OF))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["negative contact", "detractor answer", "both"]
    assert [round(p.get_width(), 6) for p in ax.patches] == [2.0, 0.0, 1.0]
    assert title(fig) == "3 of 10 high-value customers (30%) are at risk"
    assert not np.isnan(ax.get_xlim()).any()


def test_exposure_display_shows_percent_and_heading():
    from tests.test_value import TAXONOMY
    exposure = pd.DataFrame({"value_tier": ["high", "high", "low", "low"], "group": ["any", "billing", "any", "billing"],
                             "customers": [4, 4, 6, 6], "exposed": [1, 1, 0, 0], "share": [0.25, 0.25, 0.0, 0.0]})
    table = value.exposure_display(exposure, TAXONOMY, "complaint_categories", any_label="any complaint",
                                   heading="complaint category")
    assert list(table.columns) == ["complaint category", "high", "low"]
    assert table.iloc[0].tolist() == ["any complaint", "25.0%", "0.0%"]


def test_figures_speak_german_under_lang_de():
    info = {"customers": 10, "at_risk": 3, "share": 0.3, "value": 500.0, "value_share": 0.5,
            "triggers": {"moment": 2, "detractor": 0, "moment+detractor": 1}}
    fig = value_figures.risk_figure(info, high_tiers=["high"], window_days=90, end=pd.Timestamp(AS_OF), lang="de")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["negativer Kontakt", "Kritiker-Antwort", "beides"]
    assert title(fig).replace("\xa0", " ") == "3 von 10 wertvollen Kunden (30 %) sind gefährdet"
    assert "innerhalb von 90 Tagen bis 31.03.2024" in caption(fig)
    by_tier = pd.DataFrame({"kpi": "csat", "value_tier": ["high", "low"], "value": [80.0, 62.5],
                            "ci_low": [70.0, 50.0], "ci_high": [90.0, 75.0], "n": [40, 80], "small": [False, False]})
    fig = value_figures.kpi_tier_figure(by_tier, end=pd.Timestamp(AS_OF), min_n=30, lang="de")
    assert title(fig).replace("\xa0", " ") == "CSAT 80 % in der Stufe high, 62 % in der Stufe low (95-%-Intervalle)"
    assert fig.axes[0].get_ylabel() == "CSAT (%)" and "Wilson" in caption(fig)


def test_kpi_figure_needs_two_tiers_with_answers():
    from cxlib import schema
    one = pd.DataFrame({"kpi": "nps", "value_tier": ["high", "low"], "value": [10.0, np.nan], "ci_low": [0.0, np.nan],
                        "ci_high": [20.0, np.nan], "n": [50, 0], "small": [False, True]})
    with pytest.raises(schema.Missing, match="only the high tier has NPS answers"):
        value_figures.kpi_tier_figure(one, end=pd.Timestamp(AS_OF), min_n=30)
