"""cxlib.summary (tiles, record), summary_findings (sentences), summary_html (first screen, sections,
closing notes) and summary_figures: KPI tiles from the stages' recorded results, the comparison with
the previous run, findings in English and German, audience views and what is not shown when stages
or sections are missing. Exact numbers on small hand-made results dicts (the feedback trend computed by
metrics.kpi_trend on hand-made answers, as stage 02 records it)."""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scipy import stats as st

from cxlib import locale, metrics, schema, style, summary, summary_figures, summary_findings, summary_html
from cxlib.summary import SummaryError

AS_OF = "2025-12-31"


# --- hand-made data -------------------------------------------------------------------------------
def utc(*days: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days), utc=True, format="ISO8601")).astype("datetime64[us, UTC]")


def feedback() -> pd.DataFrame:
    """2025Q4: 100 answers, NPS +10 (40 / 30 / 30), CSAT 60% (60 fives, 40 twos), CES mean 5 (6 and 4).
    2025Q3: 100 answers, NPS +6 (38 / 30 / 32), CSAT 46%, CES mean 4 (5 and 3). One answer after as_of."""
    cur = pd.DataFrame({"timestamp": utc(*["2025-11-15"] * 100),
                        "nps": [10.0] * 40 + [7.0] * 30 + [0.0] * 30,
                        "csat": [5.0] * 60 + [2.0] * 40,
                        "ces": [6.0] * 50 + [4.0] * 50})
    prev = pd.DataFrame({"timestamp": utc(*["2025-08-15"] * 100),
                         "nps": [10.0] * 38 + [7.0] * 30 + [0.0] * 32,
                         "csat": [5.0] * 46 + [2.0] * 54,
                         "ces": [5.0] * 50 + [3.0] * 50})
    late = pd.DataFrame({"timestamp": utc("2026-01-02"), "nps": [0.0], "csat": [1.0], "ces": [1.0]})
    return pd.concat([cur, prev, late], ignore_index=True)


def complaint_rows() -> list[dict]:
    """Months 2025-07 to 2026-01, two categories, 1,000 active customers a month.
    2025Q3: 45 complaints in 3,000 customer-months; 2025Q4: 9; 2026-01 lies after as_of."""
    months = ["2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01"]
    billing = [10, 10, 10, 2, 2, 2, 50]
    hotline = [5, 5, 5, 1, 1, 1, 50]
    return ([{"category": "billing", "month": m, "complaints": k, "active": 1000} for m, k in zip(months, billing)]
            + [{"category": "hotline", "month": m, "complaints": k, "active": 1000} for m, k in zip(months, hotline)])


def moment_rows() -> list[dict]:
    return [
        {"moment": "invoice_unclear", "label": "Unclear invoice item", "reach": 0.25, "nps_impact": -32.1,
         "ci_low": -37.4, "ci_high": -26.9, "churn_lift": 0.98, "priority": 1.99, "rank": 1, "magic": False,
         "significant": True, "small": False, "n_exposed": 900},
        {"moment": "long_hotline_wait", "label": "Long hotline wait", "reach": 0.2, "nps_impact": -6.8,
         "ci_low": -11.9, "ci_high": -1.7, "churn_lift": 4.09, "priority": 0.46, "rank": 2, "magic": False,
         "significant": True, "small": False, "n_exposed": 980},
        {"moment": "outage_notification", "label": "Proactive outage notification", "reach": 0.24, "nps_impact": 8.5,
         "ci_low": 3.0, "ci_high": 14.0, "churn_lift": 1.0, "priority": 0.0, "rank": 3, "magic": True,
         "significant": True, "small": False, "n_exposed": 590},
        {"moment": "tariff_change", "label": "Tariff change", "reach": 0.2, "nps_impact": -1.2,
         "ci_low": -5.0, "ci_high": 2.6, "churn_lift": 0.96, "priority": 0.0, "rank": 4, "magic": False,
         "significant": False, "small": False, "n_exposed": 600},
    ]


def complaints_results() -> list[dict]:
    base = {"complaints": 10, "active": 1000, "center_per_1000": 4.0, "ucl_per_1000": 6.0, "lcl_per_1000": 2.0}
    return [
        {**base, "category": "billing", "month": "2025-03", "rate_per_1000": 12.7, "out_of_control": True},
        {**base, "category": "billing", "month": "2025-04", "rate_per_1000": 4.1, "out_of_control": False},
        {**base, "category": "hotline", "month": "2025-08", "rate_per_1000": 9.5, "out_of_control": True},
        {**base, "category": "hotline", "month": "2025-11", "rate_per_1000": 1.0, "out_of_control": True},
    ]


def results() -> dict:
    return {
        "moments_of_truth": moment_rows(),
        "moments": {"window_days": 60, "covariates": ["segment"]},
        "complaints": complaints_results(),
        "contact_list": {"included": 30, "excluded_no_consent": 37, "excluded_other": 1, "candidates": 68,
                         "recent_days": 30, "file": "contact_list.csv", "consent_basis": "explicit opt-in"},
        "journey": {"conversion_rate": {"value": 0.115, "ci_low": 0.108, "ci_high": 0.121, "n": 8610},
                    "repeat_customer_rate": {"value": 0.097, "ci_low": 0.089, "ci_high": 0.106, "n": 4333},
                    "campaign_response_rate": {"value": 0.047, "ci_low": 0.045, "ci_high": 0.049, "n": 46472},
                    "funnel": [{"step": "web_visit|tariff_page", "customers": 1000, "conversion": 1.0, "step_conversion": 1.0},
                               {"step": "quote|cart", "customers": 500, "conversion": 0.5, "step_conversion": 0.5},
                               {"step": "order", "customers": 100, "conversion": 0.1, "step_conversion": 0.2},
                               {"step": "activation", "customers": 90, "conversion": 0.09, "step_conversion": 0.9}]},
        "value": {"status": "unsupported", "model": "historic revenue (fallback)", "message": "Model not supported.",
                  "at_risk": 125, "at_risk_value": 612924.36, "historic": {"top20_share": 0.6433},
                  "clv": {"customers": 4325, "median": 959.76, "p90": 2879.52, "total": 7659103.32}},
    }


def trend_rows(kpi: str) -> list[dict]:
    """The feedback stage's trend of `kpi` per quarter up to AS_OF, as it records it."""
    return metrics.kpi_trend(feedback().iloc[:200], kpi=kpi, period="quarter", min_n=50).assign(kpi=kpi) \
        .to_dict(orient="records")


def tile_results() -> dict:
    """What stages 02-04 recorded: feedback KPIs and trend, monthly complaints, the journey's rates."""
    return {"feedback": {"nps": {"value": 8.0, "ci_low": -3.0, "ci_high": 19.0, "n": 200},
                         "trend": trend_rows("nps") + trend_rows("csat") + trend_rows("ces")},
            "complaints": complaint_rows(), "journey": results()["journey"]}


def tiles(**kwargs) -> pd.DataFrame:
    args = {"as_of": AS_OF, "period": "quarter", "min_n": 50, **kwargs}
    return summary.kpi_tiles(tile_results(), **args)


# --- texts and formats ----------------------------------------------------------------------------
def test_kpi_text_through_the_locale_formats():
    assert summary.kpi_text(7.125, "nps") == "+7.1"
    assert summary.kpi_text(69.736, "csat") == "69.7%"
    assert summary.kpi_text(69.736, "csat", "de") == "69,7\u00a0%"
    assert summary.kpi_text(3.6, "csat", "de", change=True) == "+3,6"
    assert summary.kpi_text(5.0249, "ces") == "5.02"
    assert summary.kpi_text(12.5799, "complaint_rate", "de") == "12,6"
    assert summary.kpi_text(math.nan, "conversion_rate") == "–"


def test_tiles_name_their_period_for_readers():
    row = {"period": "2025Q1", "period_kind": "quarter"}
    assert summary.tile_period(row) == "latest quarter, Q1 2025"
    assert summary.tile_period({"period": "2025-12", "period_kind": "month"}, "de") == "letzter Monat, Dez. 2025"
    assert summary.tile_period({"period": "", "period_kind": "whole"}) == "all time"
    whole = {"period": "", "period_kind": "whole", "first_day": "2024-01-01", "last_day": "2025-12-31"}
    assert summary.tile_period(whole, "de") == "gesamter Zeitraum, Jan. 2024 – Dez. 2025"


def test_texts_live_in_the_locale_files_in_both_languages():
    assert summary.texts("de") is locale.texts("de")["summary"]
    assert summary.texts("en")["label"]["conversion_rate"] == "Lead conversion"
    with pytest.raises(SummaryError, match="lang must be one of"):
        summary.texts("fr")


# --- audiences ----------------------------------------------------------------------------------------
def test_audience_sections_and_tiles_are_data():
    assert summary.audience_sections("management") == ["tiles", "moments", "complaints", "contact_list", "journey",
                                                        "value"]
    assert summary.audience_sections("service")[:3] == ["moments", "complaints", "contact_list"]
    assert summary.audience_sections("marketing")[:2] == ["occasions", "journey"]
    assert summary.audience_sections("sales")[:3] == ["value", "occasions", "journey"]
    assert summary.audience_tiles("management") == list(summary.KPI_TILES)
    assert summary.audience_tiles("sales") == ["conversion_rate", "repeat_customer_rate", "nps"]
    assert all(set(a["sections"]) <= {"tiles", *summary.TOPICS} and set(a["tiles"]) <= set(summary.KPI_TILES)
               for a in summary.AUDIENCES.values())


@pytest.mark.parametrize("func", [summary.audience_sections, summary.audience_tiles])
def test_unknown_audience_raises(func):
    with pytest.raises(SummaryError, match="audience must be one of.*'finance'"):
        func("finance")


# --- periods ----------------------------------------------------------------------------------------
def test_periods_quarter_complete_and_month_partial():
    assert summary.periods(AS_OF, "quarter") == {
        "period": "quarter", "as_of": "2025-12-31",
        "current": {"label": "2025Q4", "start": "2025-10-01", "end": "2025-12-31", "complete": True},
        "previous": {"label": "2025Q3", "start": "2025-07-01", "end": "2025-09-30", "complete": True},
    }
    span = summary.periods("2025-03-10", "month")
    assert span["current"] == {"label": "2025-03", "start": "2025-03-01", "end": "2025-03-10", "complete": False}
    assert span["previous"]["label"] == "2025-02" and span["previous"]["end"] == "2025-02-28"
    assert summary.periods("2025-06-30", "year")["previous"]["label"] == "2024"


def test_unknown_period_raises():
    with pytest.raises(SummaryError, match="period must be one of.*'week'"):
        summary.periods(AS_OF, "week")


def test_as_of_day_from_the_recorded_results():
    assert summary.as_of_day("2025-06-30 17:00") == pd.Timestamp("2025-06-30", tz="UTC")
    assert summary.as_of_day("", {"value": {"as_of": "2025-03-04"}, "moments": {"period": {"to": "2025-03-05T22:00:00+00:00"}}}) \
        == pd.Timestamp("2025-03-05", tz="UTC")
    assert summary.as_of_day("", {"feedback": {"trend": trend_rows("nps")}}) == pd.Timestamp("2025-12-31", tz="UTC")
    assert summary.as_of_day("", {"complaints": complaint_rows()}) == pd.Timestamp("2026-01-31", tz="UTC")
    assert summary.as_of_day("", {"feedback": {"period": {"from": "2021-10-01", "to": "2021-10-19"}}}) \
        == pd.Timestamp("2021-10-19", tz="UTC")                       # a survey of one month: its last answer
    counts = [{"category": "x", "month": "2024-02", "complaints": 1, "out_of_control": False, "center": 1.0, "ucl": 4.0}]
    assert summary.as_of_day("", {"complaint_counts": counts, "feedback": {"period": {"from": None, "to": None}}}) \
        == pd.Timestamp("2024-02-29", tz="UTC")
    assert summary.as_of_day("", {}) is None
    assert summary.periods(None, "quarter")["current"]["label"] == ""


# --- complaint counts per period ------------------------------------------------------------------------
def test_complaint_counts_per_quarter_and_month():
    expected = pd.DataFrame({"period": pd.Series(["2025Q3", "2025Q4"], dtype="str"),
                             "complaints": pd.Series([45, 9], dtype="int64"),
                             "exposure": pd.Series([3000.0, 3000.0])})
    assert_frame_equal(summary.complaint_counts(complaint_rows(), as_of=AS_OF), expected)
    monthly = summary.complaint_counts(complaint_rows(), as_of=AS_OF, period="month")
    assert monthly["period"].tolist() == ["2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12"]
    assert monthly["complaints"].tolist() == [15, 15, 15, 3, 3, 3]
    assert summary.complaint_counts(None, as_of=AS_OF).empty
    # counts without an active customer base (stage 04's c-chart): no rate per 1,000
    assert summary.complaint_counts([{"month": "2025-01", "complaints": 1}], as_of=AS_OF).empty
    assert summary.complaint_counts([{"month": "2025-01", "complaints": 1, "active": None}], as_of=AS_OF).empty


# --- KPI tiles ---------------------------------------------------------------------------------
def test_tiles_values_intervals_and_changes():
    out = tiles().set_index("kpi")
    assert out.index.tolist() == list(summary.KPI_TILES)
    assert (out.loc[["nps", "csat", "ces", "complaint_rate"], "period"] == "2025Q4").all()
    assert (out.loc[["nps", "csat", "ces", "complaint_rate"], "previous_period"] == "2025Q3").all()
    nps = out.loc["nps"]
    low, high = metrics.nps_interval(40, 30, 30)
    assert (nps["value"], nps["n"], nps["previous_value"], nps["previous_n"]) == pytest.approx((10.0, 100, 6.0, 100))
    assert (nps["ci_low"], nps["ci_high"]) == pytest.approx((float(low), float(high)))
    diff = metrics.nps_difference(feedback()["nps"][:100], feedback()["nps"][100:200])
    assert nps["change_previous_period"] == pytest.approx(4.0) and nps["source"] == "feedback.trend"
    assert (nps["change_low"], nps["change_high"], nps["p_value"]) == pytest.approx(
        (diff["ci_low"], diff["ci_high"], diff["p_value"]))
    csat = out.loc["csat"]
    assert (csat["value"], csat["previous_value"], csat["change_previous_period"]) == pytest.approx((60.0, 46.0, 14.0))
    assert out.loc["ces", "value"] == 5.0 and out.loc["ces", "change_previous_period"] == pytest.approx(1.0)
    rate = out.loc["complaint_rate"]
    assert (rate["value"], rate["n"], rate["previous_value"], rate["change_previous_period"]) == pytest.approx(
        (3.0, 3000, 15.0, -12.0))
    exact = metrics.poisson_rate(9, 3000)
    assert (rate["ci_low"], rate["ci_high"]) == pytest.approx((exact["ci_low"], exact["ci_high"]))
    assert rate["p_value"] == pytest.approx(st.binomtest(9, 54, 0.5).pvalue) and rate["source"] == "complaints"


def test_conversion_and_repeat_tiles_are_the_rates_stage_03_recorded():
    out = tiles().set_index("kpi")
    journey = tile_results()["journey"]
    for kpi in ("conversion_rate", "repeat_customer_rate"):
        recorded = journey[kpi]
        tile = out.loc[kpi]
        assert (tile["value"], tile["ci_low"], tile["ci_high"]) == pytest.approx(
            (100 * recorded["value"], 100 * recorded["ci_low"], 100 * recorded["ci_high"]))     # in %, nothing recomputed
        assert tile["n"] == recorded["n"]
        assert (tile["period"], tile["period_kind"], tile["previous_period"], tile["source"]) == ("", "whole", "", "journey")
        assert math.isnan(tile["previous_value"]) and not tile["tested"]
    # the stage's own period, when recorded, is the tile's 'all time'
    dated = {"journey": {**journey, "period": {"from": "2024-01-01", "to": "2025-12-31T23:00:00+00:00"}}}
    tile = summary.kpi_tiles(dated, kpis=["conversion_rate"]).iloc[0]
    assert (tile["first_day"], tile["last_day"]) == ("2024-01-01", "2025-12-31")
    assert summary.tile_period(tile.to_dict()) == "all time, Jan 2024 – Dec 2025"


def test_tiles_keep_the_feedback_stages_verdict_and_test_complaints_themselves():
    out = tiles().set_index("kpi")
    assert not out.loc[["conversion_rate", "repeat_customer_rate"], "tested"].any()
    assert not out.loc[["conversion_rate", "repeat_customer_rate"], "significant_previous_period"].any()
    tested = out.loc[out["tested"]]
    assert tested.index.tolist() == ["nps", "csat", "ces", "complaint_rate"]
    # CSAT 60% vs 46%: p = 0.047, the one change of its trend: significant as stage 02 tested it
    assert tested.loc["csat", "p_adjusted"] == pytest.approx(0.04731, abs=1e-5)
    assert tested.loc["csat", "significant_previous_period"] and tested.loc["ces", "significant_previous_period"]
    assert not tested.loc["nps", "significant_previous_period"]
    # the complaint rate is the one tile the summary tests itself: BH over one test leaves p as it is
    assert tested.loc["complaint_rate", "p_adjusted"] == pytest.approx(tested.loc["complaint_rate", "p_value"])
    assert tested.loc["complaint_rate", "significant_previous_period"]


def test_tiles_large_min_n_tests_nothing():
    out = tiles(min_n=10000)
    assert not out["tested"].any() and not out["significant_previous_period"].any()
    assert out["small"].all()


def test_tiles_exist_only_for_recorded_results():
    assert summary.kpi_tiles({}, as_of=AS_OF).empty
    assert list(summary.kpi_tiles({}, as_of=AS_OF).columns) == summary.TILE_COLUMNS
    only_nps = summary.kpi_tiles({"feedback": {"nps": {"value": 20.0, "ci_low": 5.0, "ci_high": 35.0, "n": 150}}},
                                 as_of=None).set_index("kpi")
    assert only_nps.index.tolist() == ["nps"]
    assert (only_nps.loc["nps", "period_kind"], only_nps.loc["nps", "source"]) == ("whole", "feedback")
    # complaints recorded, but none up to as_of; complaints without an active base; no analysis day
    later = {"complaints": complaint_rows()[6:7]}
    assert summary.kpi_tiles(later, as_of=AS_OF).empty
    assert summary.kpi_tiles({"complaints": [{"month": "2025-12", "complaints": 4}]}, as_of=AS_OF).empty
    assert summary.kpi_tiles({"complaints": complaint_rows()}, as_of=None).empty
    # a trend row without a value (no answers in it) is no period; a dict of trends per KPI is read too
    trend = {"csat": [{"period": "2025Q4", "n": 0, "value": None}, *trend_rows("csat")]}
    assert summary.kpi_tiles({"feedback": {"trend": trend}}, as_of=AS_OF)["kpi"].tolist() == ["csat"]


def test_tiles_bad_input_raises():
    with pytest.raises(SummaryError, match="unknown KPI tile"):
        tiles(kpis=["nps", "churn"])
    with pytest.raises(SummaryError, match="none named"):
        tiles(kpis=[])
    with pytest.raises(SummaryError, match="period must be one of"):
        tiles(period="decade")


# --- previous run ------------------------------------------------------------------------------------
def test_no_previous_run_and_input_unchanged():
    before = tiles()
    out = summary.with_previous_run(before, None)
    assert (out["previous_run"] == "").all() and out["change_previous_run"].isna().all()
    assert list(before.columns) == summary.TILE_COLUMNS


def test_change_against_previous_run():
    previous = {"summary": {"tiles": {"nps": {"value": 12.5, "period": "2025Q3"},
                                      "csat": {"value": 58.0, "period": "2025-12"},
                                      "ces": {"value": None, "period": "2025Q3"}}}}
    out = summary.with_previous_run(tiles(), previous, run_id="20251101T060000Z").set_index("kpi")
    assert (out["previous_run"] == "20251101T060000Z").all()
    assert out.loc["nps", "change_previous_run"] == pytest.approx(-2.5)
    assert out.loc["nps", "previous_run_period"] == "2025Q3"
    # a month's value is not compared with a quarter's
    assert out.loc["csat", "previous_run_value"] == 58.0 and math.isnan(out.loc["csat", "change_previous_run"])
    assert math.isnan(out.loc["ces", "change_previous_run"]) and math.isnan(out.loc["complaint_rate", "previous_run_value"])
    # whole-period tiles compare with the previous run's whole-period tile
    whole = {"summary": {"tiles": {"conversion_rate": {"value": 10.0, "period": "", "period_kind": "whole"}}}}
    conv = summary.with_previous_run(tiles(), whole, run_id="R0").set_index("kpi").loc["conversion_rate"]
    assert conv["change_previous_run"] == pytest.approx(1.5)
    with pytest.raises(schema.Missing, match="columns kpi and value"):
        summary.with_previous_run(pd.DataFrame({"kpi": ["nps"]}), previous)


def test_previous_run_without_summary():
    out = summary.with_previous_run(tiles(), {"feedback": {"nps": {"value": 3.0}}}, run_id="R1")
    assert (out["previous_run"] == "R1").all() and out["previous_run_value"].isna().all()


def test_tiles_record():
    out = summary.with_previous_run(tiles(kpis=["nps"]), {"summary": {"tiles": {"nps": {"value": 12.5, "period": "2025Q3"}}}},
                                    run_id="R1")
    record = summary.tiles_record(out)
    assert list(record) == ["nps"]
    nps = record["nps"]
    assert {"value", "n", "ci_low", "ci_high", "change_previous_period", "significant_previous_period",
            "change_previous_run"} <= set(nps)
    assert (nps["value"], nps["n"], nps["change_previous_run"], nps["previous_run"]) == (10.0, 100, -2.5, "R1")


def test_stage_results_and_run_name():
    assert summary.stage_results({"summary": {"tiles": {}}, "journey": {"x": 1}}) == {"journey": {"x": 1}}
    assert summary.run_name("/reports/20261101T060000Z") == "20261101T060000Z" and summary.run_name("") == ""


# --- tiles as HTML -------------------------------------------------------------------------------------
def test_tiles_html_english():
    page = summary_html.tiles_html(summary.with_previous_run(tiles(), None), min_n=50)
    assert re.findall(r'data-kpi="(\w+)"', page) == list(summary.KPI_TILES)
    assert 'data-kpi="nps" data-value="10"' in page
    assert "+10.0" in page and "n = 100 answers" in page and "60.0%" in page
    assert "▲ +4.0 points vs Q3 2025: not significant (adj. p = 0.737)" in page
    assert "▼ -12.0 per 1,000 vs Q3 2025: significant (adj. p &lt; 0.001)" in page
    assert "p = &lt;" not in page and "p = <" not in page           # 'adj. p < 0.001', never 'p = < 0.001'
    assert ">Lead conversion<" in page and page.count(">all time<") == 2 and page.count(">latest quarter, Q4 2025<") == 4
    assert "previous run" not in page                               # no previous run: said once, in the closing notes
    assert f'color:{style.COLOURS["positive"]};font-weight:bold">▼ -12.0 per 1,000' in page     # fewer complaints: good
    assert not re.search(r"https?:|<script|<link|url\(", page)


def test_tiles_html_german_and_selected_kpis():
    previous = {"summary": {"tiles": {"nps": {"value": 12.5, "period": "2025Q3"}}}}
    page = summary_html.tiles_html(summary.with_previous_run(tiles(), previous, run_id="R1"), lang="de",
                                   kpis=["complaint_rate", "nps"], min_n=50)
    assert re.findall(r'data-kpi="(\w+)"', page) == ["complaint_rate", "nps"]
    assert "Beschwerdequote" in page and ">3,0<" in page and "n = 3.000 Kundenmonate" in page
    assert "letztes Quartal, Q4 2025" in page
    assert "ggü. letztem Lauf: -2,5 Punkte (damals +12,5 für Q3 2025)" in page
    assert "der vorherige Lauf hat keinen Wert für diese Kennzahl" in page


def test_tiles_html_with_the_stages_verdict_and_small_tiles():
    rows = [{**r, "p_adjusted": None} for r in trend_rows("csat")]
    out = summary.kpi_tiles({"feedback": {"trend": rows}}, as_of=AS_OF, min_n=50)
    assert "vs Q3 2025: significant (as tested by stage 02)" in summary_html.tiles_html(out)
    small = summary_html.tiles_html(tiles(min_n=10000), min_n=10000)
    assert small.count("fewer than 10,000 answers: indicative only") == 3 and "border:1px dashed" in small
    assert small.count("not tested: fewer than 10,000") == 4


# --- findings ----------------------------------------------------------------------------------------
def test_findings_management_english():
    out = summary.with_previous_run(tiles(), None)
    found = summary_findings.findings(out, results(), lang="en", audience="management", min_n=50)
    assert len(found) == 5
    low, high = (locale.format_number(out[c].iloc[0], decimals=1, sign=True) for c in ("ci_low", "ci_high"))
    assert found[0] == (f"NPS in Q4 2025 is +10.0 (95% interval {low} to {high}, n = 100 answers); against Q3 2025: "
                        "a change by +4.0 points, within sampling noise.")
    assert found[1] == ("Also significant against the period before: Satisfaction (CSAT) +14.0 pp against Q3 2025 (now "
                        "60.0%); Ease (CES) +1.00 against Q3 2025 (now 5.00 on 1-7); Complaint rate -12.0 per 1,000 "
                        "against Q3 2025 (now 3.0 per 1,000 customers a month).")
    assert "«Unclear invoice item»" in found[2] and "32.1 points lower" in found[2] and "1.99" not in found[2]
    assert "2.0 points of the overall NPS are at stake; next: «Long hotline wait»" in found[2]
    assert "Magic moment, a significant gain: «Proactive outage notification» (+8.5)." in found[2]
    assert found[3].startswith("3 category-months lie outside their control limits (2 above, 1 below).")
    assert ("Above the limits, latest first: hotline in Aug 2025 (9.5 per 1,000 against a centre of 4.0); "
            "billing in Mar 2025 (12.7 per 1,000 against a centre of 4.0).") in found[3]
    assert found[3].endswith("In Q4 2025: hotline Nov 2025 (below).")
    assert found[4].startswith("30 customers with an unresolved negative moment")


def test_findings_german_with_previous_run_and_labels():
    previous = {"summary": {"tiles": {"nps": {"value": 12.5, "period": "2025Q3"}}}}
    out = summary.with_previous_run(tiles(), previous, run_id="R1")
    labels = {"moments": {"invoice_unclear": "Rechnungsposition unklar"}, "complaint_categories": {"hotline": "Hotline / Wartezeit"}}
    found = summary_findings.findings(out, results(), lang="de", audience="management", labels=labels, min_n=50)
    assert found[0].startswith("NPS liegt im Zeitraum Q4 2025 bei +10,0 (95%-Intervall -6,3 bis +25,7, n = 100 Antworten)")
    assert found[0].endswith("gegenüber Q3 2025: eine Veränderung um +4,0 Punkte, im Rahmen des Zufalls. "
                             "Seit dem letzten Lauf: -2,5 Punkte.")
    assert "Zufriedenheit (CSAT) +14,0 Pp. gegenüber Q3 2025 (jetzt 60,0\u00a0%)" in found[1]
    assert "«Rechnungsposition unklar»" in found[2] and "um 32,1 Punkte niedrigeren NPS" in found[2]
    assert "Darüber, neueste zuerst: Hotline / Wartezeit im Aug. 2025 (9,5 je 1.000" in found[3]
    assert found[3].endswith("Im Zeitraum Q4 2025: Hotline / Wartezeit Nov. 2025 (darunter).")
    assert found[4].startswith("30 Kunden mit einem ungelösten negativen Moment")


def test_findings_follow_the_audience_order():
    out = summary.with_previous_run(tiles(), None)
    service = summary_findings.findings(out, results(), audience="service", min_n=50)
    assert service[0].startswith("The moment of truth") and service[3].startswith("Complaint rate in Q4 2025 is 3.0")
    assert service[3].endswith("against Q3 2025: a significant fall by 12.0 per 1,000.")          # no 'fall by -12.0'
    german = summary_findings.findings(out, results(), audience="service", lang="de", min_n=50)
    assert "gegenüber Q3 2025: ein signifikanter Rückgang um 12,0 je 1.000." in german[3]
    sales = summary_findings.findings(out, results(), audience="sales", min_n=50)
    assert sales[0] == ("125 high-value customers are at risk, holding 612,924 € of net revenue to date; "
                        "the top 20% of customers brought 64% of net revenue to date.")
    assert sales[1] == ("11.5% of 8,610 leads became customers (95% interval 10.8% to 12.1%) and 9.7% of 4,333 buyers "
                        "ordered more than once; the funnel loses most from «quote / cart» to «order», where 20% go on.")
    assert sales[2] == ("Lead conversion (all time) is 11.5% (95% interval 10.8% to 12.1%, n = 8,610 leads); no "
                        "comparison between periods (the stage recorded the whole period only).")
    assert sales[3] == ("NPS did not change significantly against the period before: the difference is within sampling "
                        "noise or the periods have too few cases.")
    marketing = summary_findings.findings(out, results(), audience="marketing", min_n=50)
    assert len(marketing) == 3 and marketing[0].startswith("11.5% of 8,610 leads")


def test_findings_with_stages_missing():
    out = summary.with_previous_run(tiles(), None)
    found = summary_findings.findings(out, {}, audience="management", min_n=50)
    assert len(found) == 2 and found[0].startswith("NPS in Q4 2025")
    assert summary_findings.findings(out, {}, audience="sales", min_n=50)[0].startswith("Lead conversion (all time) is")
    assert summary_findings.findings(summary.kpi_tiles({}, as_of=None), {}, audience="management") == []


def test_complaint_finding_names_at_most_three_breakouts_latest_first():
    rows = [{"category": "billing", "month": f"2025-0{m}", "rate_per_1000": 10.0 + m, "out_of_control": True,
             "center_per_1000": 4.0, "ucl_per_1000": 6.0} for m in range(1, 6)]
    text = summary_findings.complaints_finding(rows)
    assert text.startswith("5 category-months lie outside their control limits (5 above, 0 below). Above the limits, "
                           "latest first: billing in May 2025 (15.0 per 1,000 against a centre of 4.0); billing in Apr 2025")
    assert text.endswith("billing in Mar 2025 (13.0 per 1,000 against a centre of 4.0) and 2 more.")
    assert summary_findings.complaints_finding(rows, max_listed=1).endswith(
        "(15.0 per 1,000 against a centre of 4.0) and 4 more.")
    with pytest.raises(schema.Missing, match="complaints: columns"):
        summary_findings.complaints_finding([{"category": "billing", "month": "2025-01"}])


def test_moment_and_complaint_findings_edge_cases():
    quiet = [{**r, "priority": 0.0, "magic": False} for r in moment_rows()]
    assert summary_findings.moments_finding(quiet) == ("No moment of truth has a significant negative impact on NPS "
                                                       "with enough exposed answers. No moment raises NPS significantly.")
    assert summary_findings.moments_finding([]) is None
    calm = [{**r, "out_of_control": False} for r in complaints_results()]
    assert summary_findings.complaints_finding(calm) == ("All complaint rates stay within their control limits: no month "
                                                         "stands out.")
    assert summary_findings.complaints_finding(None) is None
    assert summary_findings.contact_list_finding({}) is None and summary_findings.value_finding(None) is None
    assert summary_findings.journey_finding({"conversion_rate": {"value": 0.1, "n": 10, "ci_low": 0.02, "ci_high": 0.4}}) \
        == "10.0% of 10 leads became customers (95% interval 2.0% to 40.0%)."
    assert summary_findings.journey_finding({"repeat_customer_rate": {"value": 0.25, "n": 8}}) == \
        "25.0% of 8 buyers ordered more than once."
    assert summary_findings.journey_finding({"funnel": []}) is None
    only_repeat = {"repeat_customer_rate": {"value": 0.0, "n": 100, "ci_low": 0.0, "ci_high": 0.037}}
    assert summary_findings.journey_finding(only_repeat, stated=["repeat_customer_rate"]) is None    # the tile said it
    one_tile = summary.kpi_tiles({"journey": only_repeat}, as_of=None)
    assert len(summary_findings.findings(one_tile, {"journey": only_repeat}, audience="management")) == 1


def test_value_finding_names_what_the_value_is():
    base = {"at_risk": 12, "at_risk_value": 34567.0, "historic": {"top20_share": 0.7}}
    fallback = summary_findings.value_finding({**base, "status": "unsupported", "clv": {"basis": "historic_revenue"}})
    assert fallback == ("12 high-value customers are at risk, holding 34,567 € of net revenue to date; the top 20% of "
                        "customers brought 70% of net revenue to date.")
    plus = {**base, "status": "fitted", "clv": {"basis": "revenue_plus_predicted_clv"}}
    assert "holding 34,567 € of net revenue to date plus predicted CLV;" in summary_findings.value_finding(plus)
    assert "34.567 € Nettoumsatz bisher plus vorhergesagtem CLV" in summary_findings.value_finding(plus, lang="de")
    clv = {**base, "status": "fitted", "clv": {"basis": "predicted_clv"}}
    assert "holding 34,567 € of predicted CLV;" in summary_findings.value_finding(clv)
    # the at-risk section skipped (e.g. no contacts and no NPS): the value itself
    valued = {"status": "unsupported", "clv": {"basis": "historic_revenue", "customers": 10, "total": 550.0}}
    assert summary_findings.value_finding(valued) == "10 customers hold 550 € of net revenue to date in total."
    assert summary_findings.value_finding({"as_of": "2025-12-31"}) is None


def test_two_magic_moments_and_labels_in_the_report_language():
    rows = [{**r, "magic": True, "priority": -0.5} if r["moment"] == "tariff_change" else r for r in moment_rows()]
    labels = {"moments": {"outage_notification": "Proaktive Störungsinfo", "tariff_change": "Tarifwechsel"}}
    text = summary_findings.moments_finding(rows, lang="de", labels=labels)
    assert text.endswith(" Magische Momente, jeweils ein signifikanter Gewinn: «Proaktive Störungsinfo» (+8,5), "
                         "«Tarifwechsel» (-1,2).")


def test_movers_finding_when_nothing_moves():
    out = tiles(kpis=["nps", "csat", "conversion_rate"], min_n=10000)
    assert summary_findings.movers_finding(out, ["nps", "csat", "conversion_rate"]) == (
        "NPS and Satisfaction (CSAT) did not change significantly against the period before: the differences are "
        "within sampling noise or the periods have too few cases.")
    assert summary_findings.movers_finding(out, ["nps", "csat"], lang="de").startswith(
        "NPS und Zufriedenheit (CSAT) haben sich gegenüber dem Zeitraum davor nicht signifikant verändert")
    assert summary_findings.movers_finding(out, ["conversion_rate"]) is None         # no period comparison to move in
    assert summary_findings.movers_finding(out, []) is None


# --- the first screen, the sections and the figure ------------------------------------------------------
def sections(audience="management", res=None, lang="en"):
    out = summary.with_previous_run(tiles(), None)
    res = results() if res is None else res
    return summary_html.build_sections(audience, tiles=out, results=res, lang=lang, period="quarter")


def test_first_screen_is_the_findings_then_the_tiles():
    out = summary.with_previous_run(tiles(), None)
    found = summary_findings.findings(out, results(), audience="service", min_n=50)
    page = summary_html.findings_html(found, out, lang="en", audience="service", min_n=50)
    assert page.index("<ol") < page.index('role="list"') and page.count("<li>") == 5
    assert re.findall(r'data-kpi="(\w+)"', page) == ["complaint_rate", "nps", "csat", "ces"]
    empty = summary_html.findings_html([], summary.kpi_tiles({}, as_of=None))
    assert "No findings" in empty and "data-kpi" not in empty


def test_sections_in_audience_order_with_figure():
    parts = sections("service")
    assert [p["name"] for p in parts] == ["moments", "complaints", "contact_list"]
    assert [p["title"] for p in parts][:2] == ["Moments of truth", "Complaint months out of control"]
    moments = parts[0]["html"]
    assert moments.count("<img ") == 1 and 'src="data:image/png;base64,' in moments
    assert ('alt="Chart of the NPS impact of 3 moments with 95% intervals: Unclear invoice item -32.1; '
            'Long hotline wait -6.8; Proactive outage notification +8.5.') in moments
    # the table ranks the moments of truth; the magic moment is listed without a rank
    assert re.search(r">–</td><td[^>]*>Proactive outage notification</td><td[^>]*>magic moment</td>", moments)
    assert ">25.0%<" in moments and ">4.09×<" in moments and ">-37.4 to -26.9<" in moments
    for part in parts:
        assert not re.search(r"https?:|<script|<link", part["html"])


def test_moments_figure_draws_the_significant_moments():
    chart = summary_figures.moments_chart(moment_rows(), labels={"moments": {"invoice_unclear": "Rechnung unklar"}})
    assert chart["name"].tolist() == ["Rechnung unklar", "Long hotline wait", "Proactive outage notification"]
    assert chart["magic"].tolist() == [False, False, True] and chart["n_exposed"].sum() == 2470
    fig = summary_figures.moments_figure(moment_rows(), lang="de", window_days=60, covariates=["segment"])
    try:
        assert fig.get_suptitle().replace("\n", " ") == "«Unclear invoice item» kostet am meisten: NPS -32 Punkte"
        assert "2.470 betroffene Antworten" in fig.texts[-1].get_text()
        assert "in den 60 Tagen davor" in fig.texts[-1].get_text()
    finally:
        plt.close(fig)
    with pytest.raises(schema.Missing):
        summary_figures.moments_chart([{**r, "priority": 0.0, "magic": False} for r in moment_rows()])


def test_sections_without_results_are_left_out_and_listed():
    assert sections("management", res={}) == []
    note = summary_html.skipped_note({"skipped": [{"section": "value.rfm", "reason": "no orders", "enable": "orders.revenue"},
                                                  {"section": "feedback.nps_trend", "reason": "no NPS answers.", "enable": ""}]})
    assert note.splitlines()[0] == "- Moments of truth: the moments-of-truth stage (04) recorded no results in this run."
    assert note.splitlines()[-2:] == ["- Customer value · RFM: no orders (needs orders.revenue).",
                                      "- Voice of the customer · NPS trend: no NPS answers."]
    same = [{"section": f"journey.{k}", "reason": "no events", "enable": "events"} for k in ("stages", "stage_flow")]
    grouped = summary_html.skipped_note({"skipped": [*same, {"section": "journey.conversion", "reason": "no leads"}]})
    assert grouped.splitlines()[-2:] == ["- Customer journeys · stages, stage flow: no events (needs events).",
                                         "- Customer journeys · conversion: no leads."]
    later = summary_html.skipped_note({"skipped": [{"section": "new_stage.part", "reason": "no data"}]})
    assert later.splitlines()[-1] == "- New stage · part: no data."
    assert summary_html.skipped_note(results()) == "" and summary_html.skipped_part(results()) == ""
    german = summary_html.skipped_part({"skipped": [{"section": "value.rfm", "reason": "no orders", "enable": "orders"}]},
                                       lang="de")
    assert german.startswith("## Für diese Daten nicht gezeigt\n\n- Momente der Wahrheit: die Stufe")
    assert german.endswith("- Kundenwert · RFM: no orders (benötigt orders).")


def test_sections_german():
    parts = {p["name"]: p for p in sections("management", lang="de")}
    assert parts["moments"]["title"] == "Momente der Wahrheit"
    assert "Auf der Rückrufliste" in parts["contact_list"]["html"]
    assert "Konversion (Leads → Kunden)" in parts["journey"]["html"] and ">11,5\u00a0%<" in parts["journey"]["html"]
    assert ">10,8\u00a0% bis 12,1\u00a0%<" in parts["journey"]["html"] and ">8.610<" in parts["journey"]["html"]
    assert ">612.924<" in parts["value"]["html"]
    assert "darüber" in parts["complaints"]["html"] and ">Aug. 2025<" in parts["complaints"]["html"]


def test_closing_notes_say_how_the_tiles_were_measured():
    out = summary.with_previous_run(tiles(), None)
    data = pd.DataFrame({"table": ["feedback", "customers"], "rows": [1670, 20000]})
    note = summary_html.method_note(out, results(), as_of="2025-11-15", data=data, lang="de", min_n=50, period="quarter")
    assert note.startswith("### Was analysiert wurde\n\nSicht **Geschäftsleitung** auf Deutsch; Analysetag 15.11.2025.")
    assert "Beschwerdequote: der letzte Zeitraum (Quartal)" in note and "weniger als 50 Fällen" in note
    assert "Lead-Konversion = Leads, die Kunden wurden" in note and "journey.conversion_rate" in note
    text = summary_html.tiles_text(out.iloc[:1], lang="en")
    assert "Definitions:\n\n- NPS = % promoters (9-10)" in text and "Lead conversion =" not in text


def test_missing_sections_and_analysis_note():
    assert summary.missing_sections({}, "sales") == ["value", "occasions", "journey"]
    assert summary.missing_sections(results(), "management") == []
    data = pd.DataFrame({"table": ["feedback", "customers"], "rows": [1670, 20000]})
    note = summary_html.analysis_note("2025-11-15", data, audience="service", missing=["value"])
    assert note == ("**Customer service** view in English; analysis day 15 Nov 2025. Data analysed: feedback answers "
                    "1,670 rows, customers 20,000 rows. There is no previous run to compare with. Not recorded in this "
                    "run: Customer value at risk (see *Not shown for this data*).")
    german = summary_html.analysis_note("2025-11-15", data, lang="de", previous_run="R1")
    assert "Sicht **Geschäftsleitung** auf Deutsch" in german and "vorherigen Lauf `R1`" in german
    assert "Feedback-Antworten 1.670 Zeilen, Kunden 20.000 Zeilen" in german
    assert summary_html.analysis_note("", data.iloc[:0]).startswith("**Management** view in English; analysis day –. "
                                                                    "Data analysed: –.")
    assert summary_html.data_table(data, "de").to_dict(orient="list") == {
        "Tabelle": ["Feedback-Antworten", "Kunden"], "Zeilen": ["1.670", "20.000"]}
    assert set(summary.texts("de")["parameter_columns"]) == set(summary.texts("en")["parameter_columns"]) \
        == {"parameter", "value"}


def test_data_period_and_record():
    data = summary.data_period({"tables": {"feedback": 201, "customers": 7}, "feedback": {}})
    expected = pd.DataFrame({"table": pd.Series(["feedback", "customers"], dtype="str"),
                             "rows": pd.Series([201, 7], dtype="int64")})
    assert_frame_equal(data, expected)
    assert summary.data_period({}).empty
    out = summary.with_previous_run(tiles(), None)
    record = summary.summary_record(out, ["a", "b", "c"], span=summary.periods(AS_OF), audience="sales", lang="de",
                                    sections=summary.audience_sections("sales"), data=data,
                                    parameters={"min_period_answers": 50})
    assert record["tiles"]["nps"]["value"] == 10.0 and record["findings"] == ["a", "b", "c"]
    assert record["tiles"]["conversion_rate"]["period_kind"] == "whole"
    assert record["tiles"]["conversion_rate"]["value"] == pytest.approx(100 * results()["journey"]["conversion_rate"]["value"])
    assert record["current_period"]["label"] == "2025Q4" and record["previous_run"] is None
    assert record["sections"] == ["value", "occasions", "journey", "tiles"]
    assert record["parameters"] == {"min_period_answers": 50}
    assert summary_html.recorded_note(out, ["a"]).startswith("### Recorded for machines\n\nThe tiles (NPS, ")


def test_unknown_language_raises():
    with pytest.raises(SummaryError, match="lang must be one of"):
        summary_html.tiles_html(tiles(), lang="fr")


def test_taxonomy_labels_in_both_languages():
    from cxlib import config

    tax = config.load_taxonomy(config.find_project_dir(__file__) / "config" / "taxonomy.yml")
    de = summary.taxonomy_labels(tax, "de")
    assert de["moments"]["invoice_unclear"] == "Rechnungsposition unklar"
    assert de["moments"]["slow_provisioning"].startswith("Lange Bereitstellung")
    assert de["complaint_categories"]["billing"] == "Rechnung" and de["touchpoints"]["order"] == "Bestellung"
    assert summary.taxonomy_labels(tax, "en")["moments"]["invoice_unclear"] == "Unclear invoice item"
    np.testing.assert_equal(len(de["complaint_categories"]), 5)


def test_complaint_counts_without_an_active_base():
    counts = [{"category": "billing", "month": "2024-01", "complaints": 2, "out_of_control": False, "center": 3.0,
               "ucl": 8.2, "lcl": 0.0},
              {"category": "billing", "month": "2024-02", "complaints": 11, "out_of_control": True, "center": 3.0,
               "ucl": 8.2, "lcl": 0.0}]
    chart, basis = summary.complaint_chart({"complaint_counts": counts})
    assert basis == "count" and chart[1]["rate_per_1000"] == 11 and chart[1]["ucl_per_1000"] == 8.2
    assert summary.complaint_chart({}) == ([], "rate")
    text = summary_findings.complaints_finding(chart, basis="count")
    assert "billing in Feb 2024 (11 complaints against a centre of 3.0)" in text and "per 1,000" not in text
    quiet = summary_findings.complaints_finding(chart[:1], basis="count")
    assert quiet == "All monthly complaint counts stay within their control limits: no month stands out."
    res = {"complaint_counts": counts}
    assert "complaints" not in summary.missing_sections(res, "service")      # counts are enough for the section
    empty = summary.kpi_tiles({}, as_of=None)
    parts = {p["name"]: p for p in summary_html.build_sections("service", tiles=empty, results=res)}
    html_table = parts["complaints"]["html"]
    assert "Rate per 1,000" not in html_table and ">11<" in html_table and ">8.2<" in html_table
    assert "no active customer base" in parts["complaints"]["text"]


RELEVANCE = {"adjusted": {"ratio": 2.134, "ci_low": 1.74, "ci_high": 2.6, "p_value": 0.0001}}
OCCASION_LIST = {"candidates": 412, "customers_included": 97, "included": 120, "horizon_days": 30}


def test_occasions_finding_names_the_adjusted_lift_and_the_list():
    text = summary_findings.occasions_finding(RELEVANCE, OCCASION_LIST)
    assert text == ("Sends timed on an occasion (anniversary, renewal window, first invoice, …) were answered 2.1× as often "
                    "as other sends, compared within the same campaign and segment (95% interval 1.7 to 2.6; significantly "
                    "more often). 412 occasions fall in the next 30 days; 97 customers with one may be contacted.")
    german = summary_findings.occasions_finding({"adjusted": {"ratio": 0.9, "ci_low": 0.7, "ci_high": 1.2}}, None, lang="de")
    assert "0,9-mal so oft" in german and "kein signifikanter Unterschied" in german and "Anlässe an" not in german
    assert summary_findings.occasions_finding({"adjusted": {"ratio": None, "ci_low": None, "ci_high": None}}) is None
    assert summary_findings.occasions_finding(None) is None


def test_occasions_section_is_missing_only_without_campaign_relevance():
    assert "occasions" in summary.missing_sections({}, "marketing")
    assert "occasions" not in summary.missing_sections({"campaign_relevance": RELEVANCE}, "marketing")
    parts = summary_html.build_sections("marketing", tiles=summary.kpi_tiles({}, as_of=None),
                                        results={"campaign_relevance": RELEVANCE})
    assert [p["name"] for p in parts] == ["occasions"] and parts[0]["text"].startswith("Sends timed on an occasion")
