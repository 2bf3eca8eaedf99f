"""cxlib.metrics: exact values on hand-made frames, formulas against hand computation, properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from pandas.testing import assert_frame_equal, assert_series_equal
from scipy import stats as st

from cxlib import feedback_table, metrics
from cxlib.metrics import MetricsError

Z95 = 1.959963984540054


def textbook() -> pd.Series:
    """30% promoters, 25% passives, 45% detractors."""
    return pd.Series([10.0] * 15 + [9.0] * 15 + [8.0] * 13 + [7.0] * 12 + [6.0] * 20 + [0.0] * 25, name="nps")


# --- NPS ---------------------------------------------------------------------------------
def test_nps_empty_is_nan_and_n_zero():
    empty = pd.Series([], dtype="float64", name="nps")
    assert math.isnan(metrics.nps(empty))
    est = metrics.nps_estimate(empty)
    assert est["n"] == 0 and math.isnan(est["value"]) and math.isnan(est["ci_low"])


def test_nps_one_answer_and_missing_values_ignored():
    assert metrics.nps(pd.Series([10.0, np.nan])) == 100.0
    assert metrics.nps(pd.Series([np.nan, 3.0])) == -100.0
    assert metrics.nps_estimate(pd.Series([7.0, np.nan]))["n"] == 1


def test_nps_textbook_example_is_minus_15():
    assert metrics.nps(textbook()) == pytest.approx(-15.0, abs=1e-12)
    est = metrics.nps_estimate(textbook())
    assert (est["value"], est["n"], est["promoters"], est["passives"], est["detractors"]) == \
        pytest.approx((-15.0, 100, 30.0, 25.0, 45.0))


def test_nps_out_of_range_or_fractional_raises_naming_rows():
    with pytest.raises(MetricsError, match=r"nps: 2 score\(s\).*row 1: 11.*row 2: 7.5"):
        metrics.nps(pd.Series([3.0, 11.0, 7.5], name="nps"))


def test_nps_category():
    out = metrics.nps_category(pd.Series([10.0, 9.0, 8.0, 7.0, 6.0, 0.0, np.nan], index=list("abcdefg")))
    expected = pd.Series(["promoter", "promoter", "passive", "passive", "detractor", "detractor", None],
                         index=list("abcdefg"), dtype="str", name="nps_category")
    assert_series_equal(out, expected)


def test_adjusted_wald_interval_by_hand():
    # n' = 103, p' = 30.75/103, d' = 45.75/103, var' = (p' + d' - (p' - d')^2) / n'
    p, d = 30.75 / 103, 45.75 / 103
    half = Z95 * math.sqrt((p + d - (p - d) ** 2) / 103)
    low, high = metrics.nps_interval(30, 25, 45)
    assert float(low) == pytest.approx(100 * (p - d - half), abs=1e-9)
    assert float(high) == pytest.approx(100 * (p - d + half), abs=1e-9)
    assert (float(low), float(high)) == pytest.approx((-30.967141056543, 1.840927464310), abs=1e-9)
    est = metrics.nps_estimate(textbook())
    assert (est["ci_low"], est["ci_high"]) == pytest.approx((-30.967141056543, 1.840927464310), abs=1e-9)


def test_adjusted_wald_interval_is_clipped_and_vectorised():
    low, high = metrics.nps_interval(np.array([5, 0]), np.array([0, 0]), np.array([0, 0]))
    assert high[0] == 100.0 and low[0] < 100
    assert np.isnan(low[1]) and np.isnan(high[1])


def test_nps_difference_z_on_adjusted_estimates():
    a = pd.Series([10.0] * 60 + [8.0] * 20 + [3.0] * 20)       # NPS 40, n 100
    b = pd.Series([10.0] * 30 + [8.0] * 30 + [3.0] * 40)       # NPS -10, n 100
    pa, da = 60.75 / 103, 20.75 / 103
    pb, db = 30.75 / 103, 40.75 / 103
    va, vb = (pa + da - (pa - da) ** 2) / 103, (pb + db - (pb - db) ** 2) / 103
    z = ((pa - da) - (pb - db)) / math.sqrt(va + vb)
    out = metrics.nps_difference(a, b)
    assert out["difference"] == pytest.approx(50.0)
    assert out["z"] == pytest.approx(z, abs=1e-12)
    assert out["p_value"] == pytest.approx(2 * st.norm.sf(abs(z)), abs=1e-12)
    centre = 100 * ((pa - da) - (pb - db))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(
        (centre - Z95 * 100 * math.sqrt(va + vb), centre + Z95 * 100 * math.sqrt(va + vb)), abs=1e-9)
    assert (out["n_a"], out["n_b"]) == (100, 100)


# --- CSAT, CES -----------------------------------------------------------------------------
def test_wilson_bounds_known_values():
    low, high = metrics.wilson_interval(8, 10)
    assert (float(low), float(high)) == pytest.approx((0.4901624715366, 0.9433178485456), abs=1e-12)
    low, high = metrics.wilson_interval(0, 10)
    assert float(low) == 0.0 and float(high) == pytest.approx(0.2775327998628, abs=1e-12)
    low, high = metrics.wilson_interval(0, 0)
    assert np.isnan(low) and np.isnan(high)


def test_csat_top2_box_with_wilson():
    out = metrics.csat_estimate(pd.Series([5.0, 4.0, 4.0, 2.0, 1.0, np.nan]))
    low, high = metrics.wilson_interval(3, 5)
    assert out == pytest.approx({"value": 60.0, "ci_low": 100 * float(low), "ci_high": 100 * float(high), "n": 5})
    with pytest.raises(MetricsError, match="1-5"):
        metrics.csat_estimate(pd.Series([0.0, 5.0], name="csat"))


def test_csat_top_two_points_of_each_answers_scale():
    scores = pd.Series([10.0, 9.0, 8.0, 0.0, 5.0, 4.0, 3.0, 7.0, 6.0, np.nan], name="csat")
    tops = pd.Series([10.0, 10.0, 10.0, 10.0, np.nan, np.nan, np.nan, 7.0, 7.0, 10.0])
    assert metrics.csat_top2(scores, tops).tolist() == [True, True, False, False, True, True, False, True, True, pd.NA]
    assert metrics.csat_top2(pd.Series([5.0, 4.0, 0.0]), 5).tolist() == [True, True, False]    # 0-5: top two = 4-5
    out = metrics.csat_estimate(scores, scale_max=tops)
    low, high = metrics.wilson_interval(6, 9)
    assert out == pytest.approx({"value": 600 / 9, "ci_low": 100 * float(low), "ci_high": 100 * float(high), "n": 9})
    assert metrics.kpi_estimate(scores, "csat", scale_max=tops) == out
    with pytest.raises(MetricsError, match=r"csat: 1 score\(s\).*row 0: 11"):
        metrics.csat_top2(pd.Series([11.0, 3.0], name="csat"), 10)
    with pytest.raises(MetricsError, match="csat_max"):
        metrics.csat_top2(pd.Series([1.0]), pd.Series([1.0]))


def test_csat_by_group_reads_csat_max_and_an_absent_column_means_one_to_five():
    df = pd.DataFrame({"g": ["a", "a", "a", "b", "b"], "csat": [9.0, 8.0, 10.0, 4.0, 3.0],
                       "csat_max": [10.0, 10.0, 10.0, np.nan, np.nan]})
    out = metrics.kpi_by(df, ["g"], kpi="csat", min_n=1)
    assert out["n"].tolist() == [3, 2] and out["value"].tolist() == pytest.approx([200 / 3, 50.0])
    old = metrics.kpi_by(df.loc[df["g"] == "b"].drop(columns="csat_max"), ["g"], kpi="csat", min_n=1)
    assert old["value"].tolist() == [50.0]
    with pytest.raises(MetricsError, match="not whole numbers on their scale"):
        metrics.kpi_by(df.drop(columns="csat_max"), ["g"], kpi="csat")           # 9 on the default 1-5 scale
    diff = metrics.kpi_difference(df["csat"].iloc[:3], df["csat"].iloc[3:], "csat", scale_a=10)
    assert diff["difference"] == pytest.approx(200 / 3 - 50) and (diff["n_a"], diff["n_b"]) == (3, 2)


def test_ces_mean_with_t_interval():
    out = metrics.ces_estimate(pd.Series([5.0, 4.0, 4.0, 2.0, 1.0]))
    half = st.t.ppf(0.975, 4) * math.sqrt(2.7) / math.sqrt(5)
    assert out == pytest.approx({"value": 3.2, "ci_low": 3.2 - half, "ci_high": 3.2 + half, "n": 5})
    one = metrics.ces_estimate(pd.Series([6.0]))
    assert one["value"] == 6.0 and one["n"] == 1 and math.isnan(one["ci_low"])


def test_kpi_estimate_dispatches_and_rejects_unknown():
    assert metrics.kpi_estimate(textbook(), "nps")["value"] == pytest.approx(-15.0)
    with pytest.raises(MetricsError, match="unknown kpi"):
        metrics.kpi_estimate(textbook(), "nss")


def test_proportion_difference_newcombe_and_pooled_z():
    out = metrics.proportion_difference(30, 100, 15, 100)
    assert out.loc[0, "difference"] == pytest.approx(15.0)
    assert (out.loc[0, "ci_low"], out.loc[0, "ci_high"]) == pytest.approx((3.41077035, 26.14859820), abs=1e-6)
    assert out.loc[0, "p_value"] == pytest.approx(0.011085166380602711, abs=1e-12)


# --- Poisson rates ----------------------------------------------------------------------------
def test_poisson_rate_exact_interval():
    out = metrics.poisson_rate(9, 3000)
    assert out["value"] == pytest.approx(3.0)
    assert out["ci_low"] == pytest.approx(st.chi2.ppf(0.025, 18) / 2 / 3)
    assert out["ci_high"] == pytest.approx(st.chi2.ppf(0.975, 20) / 2 / 3)
    assert metrics.poisson_rate(0, 1000)["ci_low"] == 0.0
    assert math.isnan(metrics.poisson_rate(3, 0)["value"])
    assert metrics.poisson_rate(9, 3000, per=1.0, confidence=0.9)["ci_high"] == pytest.approx(st.chi2.ppf(0.95, 20) / 2 / 3000)


def test_poisson_difference_conditional_test():
    out = metrics.poisson_difference(9, 3000, 45, 3000)
    assert out["difference"] == pytest.approx(-12.0)
    se = 1000 * math.sqrt(9 / 3000**2 + 45 / 3000**2)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((-12.0 - Z95 * se, -12.0 + Z95 * se))
    assert out["p_value"] == pytest.approx(st.binomtest(9, 54, 0.5).pvalue)
    # unequal exposure: under equal rates a's share of the events is its share of the exposure
    assert metrics.poisson_difference(10, 1000, 10, 3000)["p_value"] == pytest.approx(st.binomtest(10, 20, 0.25).pvalue)
    assert math.isnan(metrics.poisson_difference(0, 100, 0, 100)["p_value"])
    assert math.isnan(metrics.poisson_difference(1, 0, 1, 100)["difference"])


# --- Benjamini-Hochberg --------------------------------------------------------------------
def test_benjamini_hochberg_on_the_1995_example():
    # Benjamini & Hochberg (1995), 15 p-values: at q = 0.05 the four smallest are rejected.
    p = pd.Series([0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
                   0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000])
    out = metrics.benjamini_hochberg(p)
    assert out["significant"].tolist() == [True] * 4 + [False] * 11
    assert out["p_adjusted"].iloc[:5].tolist() == pytest.approx([0.0015, 0.003, 0.0095, 0.035625, 0.0603])


def test_benjamini_hochberg_small_list_nan_and_order():
    out = metrics.benjamini_hochberg(pd.Series([0.04, np.nan, 0.01, 0.03, 0.2], index=list("abcde")))
    # m = 4: sorted 0.01, 0.03, 0.04, 0.2 -> 0.04, min(0.06, 0.0533), 0.0533, 0.2
    expected = pd.DataFrame({"p_adjusted": [0.04 * 4 / 3, np.nan, 0.04, 0.04 * 4 / 3, 0.2],
                             "significant": [False, False, True, False, False]}, index=list("abcde"))
    assert_frame_equal(out, expected)
    assert metrics.benjamini_hochberg(pd.Series([], dtype=float)).empty
    with pytest.raises(MetricsError):
        metrics.benjamini_hochberg(pd.Series([1.2]))


# --- preparing the table ---------------------------------------------------------------------
def feedback_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "response_id": [f"r{i}" for i in range(8)],
        "customer_id": ["a", "a", "b", "c", "c", "d", "x", None],
        "timestamp": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-02-01", "2024-02-10",
                                     "2024-03-31 23:30", "2024-04-01", "2024-04-02", "2024-04-03"], utc=True, format="ISO8601"),
        "nps": [10.0, 9.0, 3.0, 8.0, np.nan, 10.0, 0.0, 6.0],
    })


def customers_frame() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "segment": ["private", "business", "private", "business"],
                         "region": ["north", "south", "north", "north"]})


def test_with_customers_left_join_and_errors():
    out = feedback_table.with_customers(feedback_frame(), customers_frame(), columns=["segment"])
    assert out["segment"].tolist()[:6] == ["private", "private", "business", "private", "private", "business"]
    assert out["segment"].isna().tolist()[6:] == [True, True]
    assert list(out.columns) == [*feedback_frame().columns, "segment"]
    with pytest.raises(MetricsError, match="not unique"):
        feedback_table.with_customers(feedback_frame(), pd.concat([customers_frame(), customers_frame()]))
    with pytest.raises(MetricsError, match="missing column"):
        feedback_table.with_customers(feedback_frame(), customers_frame(), columns=["tenure"])


def test_add_period_month_and_quarter():
    assert metrics.add_period(feedback_frame(), "month")["period"].tolist() == \
        ["2024-01", "2024-01", "2024-02", "2024-02", "2024-03", "2024-04", "2024-04", "2024-04"]
    assert metrics.add_period(feedback_frame(), "quarter")["period"].tolist() == ["2024Q1"] * 5 + ["2024Q2"] * 3
    with pytest.raises(MetricsError, match="period"):
        metrics.add_period(feedback_frame(), "fortnight")
    undated = feedback_frame().assign(timestamp=lambda d: d["timestamp"].where(d.index % 2 == 0))
    assert metrics.add_period(undated, "month")["period"].isna().tolist() == [False, True] * 4   # no date: no period


def test_filter_feedback_by_values_and_inclusive_dates():
    fb = feedback_table.with_customers(feedback_frame(), customers_frame())
    out = feedback_table.filter_feedback(fb, {"segment": "private", "region": ""}, start="2024-01-20", end="2024-03-31")
    assert out["response_id"].tolist() == ["r1", "r3", "r4"]
    assert feedback_table.filter_feedback(fb, {"segment": ["business"]})["response_id"].tolist() == ["r2", "r5"]
    assert len(feedback_table.filter_feedback(fb)) == 8
    with pytest.raises(MetricsError, match="channel"):
        feedback_table.filter_feedback(fb, {"channel": "phone"})


# --- grouped KPIs ------------------------------------------------------------------------------
def grouped_frame() -> pd.DataFrame:
    # group a: 60 promoters, 20 passives, 20 detractors (NPS 40); b: 30/30/40 (NPS -10); c: 5 answers
    scores = [10.0] * 60 + [8.0] * 20 + [3.0] * 20 + [10.0] * 30 + [8.0] * 30 + [3.0] * 40 + [10.0, 10.0, 7.0, 1.0, 2.0]
    groups = ["a"] * 100 + ["b"] * 100 + ["c"] * 5
    return pd.DataFrame({"segment": groups, "nps": scores})


def test_kpi_by_nps_exact_frame():
    out = metrics.kpi_by(grouped_frame(), ["segment"], kpi="nps", min_n=100)
    low, high = metrics.nps_interval([60, 30, 2], [20, 30, 1], [20, 40, 2])
    d_a = metrics.nps_difference(grouped_frame().query("segment == 'a'")["nps"], grouped_frame().query("segment != 'a'")["nps"])
    d_b = metrics.nps_difference(grouped_frame().query("segment == 'b'")["nps"], grouped_frame().query("segment != 'b'")["nps"])
    d_c = metrics.nps_difference(grouped_frame().query("segment == 'c'")["nps"], grouped_frame().query("segment != 'c'")["nps"])
    bh = metrics.benjamini_hochberg(pd.Series([d_a["p_value"], d_b["p_value"]]))
    expected = pd.DataFrame({
        "segment": pd.Series(["a", "b", "c"], dtype="str"), "n": np.array([100, 100, 5], dtype="int64"),
        "value": [40.0, -10.0, 0.0], "ci_low": low, "ci_high": high, "small": [False, False, True],
        "diff_vs_rest": [d_a["difference"], d_b["difference"], d_c["difference"]],
        "p_value": [d_a["p_value"], d_b["p_value"], np.nan],
        "p_adjusted": [bh["p_adjusted"][0], bh["p_adjusted"][1], np.nan],
        "significant": [True, True, False],
        "rank": pd.array([1, 2, pd.NA], dtype="Int64"),
    })
    assert_frame_equal(out, expected, check_exact=False, rtol=1e-12)


def test_kpi_by_small_group_never_ranked_or_significant_even_if_extreme():
    df = pd.DataFrame({"segment": ["big"] * 150 + ["tiny"] * 20, "nps": [8.0] * 150 + [0.0] * 20})
    out = metrics.kpi_by(df, ["segment"], min_n=100)
    tiny = out.set_index("segment").loc["tiny"]
    assert tiny["small"] and not tiny["significant"] and pd.isna(tiny["rank"]) and math.isnan(tiny["p_value"])


def test_kpi_by_group_of_missing_values_is_shown_and_tested_but_never_ranked():
    df = pd.DataFrame({"segment": pd.Series(["a"] * 100 + ["b"] * 100 + [None] * 100, dtype="str"),
                       "nps": [8.0] * 100 + [3.0] * 100 + [10.0] * 100})
    out = metrics.kpi_by(df, ["segment"], min_n=100)
    assert out["segment"].isna().tolist() == [False, False, True]
    assert out["rank"].tolist() == [1, 2, pd.NA] and out["small"].tolist() == [False, False, False]
    assert out["value"].tolist() == [0.0, -100.0, 100.0] and out["significant"].tolist() == [False, True, True]


def test_kpi_by_csat_and_ces_and_errors():
    df = pd.DataFrame({"g": ["x", "x", "x", "y", "y"], "csat": [5.0, 4.0, 1.0, 2.0, np.nan], "ces": [7.0, 5.0, 6.0, 1.0, 3.0]})
    csat = metrics.kpi_by(df, ["g"], kpi="csat", min_n=1)
    assert csat["n"].tolist() == [3, 1] and csat["value"].tolist() == pytest.approx([200 / 3, 0.0])
    ces = metrics.kpi_by(df, ["g"], kpi="ces", min_n=1)
    assert ces["value"].tolist() == pytest.approx([6.0, 2.0])
    half = st.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (ces.loc[0, "ci_low"], ces.loc[0, "ci_high"]) == pytest.approx((6 - half, 6 + half))
    with pytest.raises(MetricsError, match="missing column"):
        metrics.kpi_by(df, ["segment"], kpi="csat")
    assert metrics.kpi_by(df, "g", kpi="ces", min_n=1)["g"].tolist() == ["x", "y"]     # one column as text
    with pytest.raises(MetricsError, match="at least one column"):
        metrics.kpi_by(df, [], kpi="csat")


def test_kpi_by_empty_frame():
    out = metrics.kpi_by(pd.DataFrame({"segment": pd.Series([], dtype="str"), "nps": pd.Series([], dtype=float)}), ["segment"])
    assert out.empty and list(out.columns) == ["segment", "n", "value", "ci_low", "ci_high", "small", "diff_vs_rest",
                                               "p_value", "p_adjusted", "significant", "rank"]


def trend_frame() -> pd.DataFrame:
    # Jan NPS 0 (n 200), Feb NPS 0 (n 200), Mar NPS 60 (n 200), Apr n 50
    def month(day: str, promoters: int, passives: int, detractors: int) -> pd.DataFrame:
        n = promoters + passives + detractors
        return pd.DataFrame({"timestamp": pd.Timestamp(day, tz="UTC"),
                             "nps": [10.0] * promoters + [7.0] * passives + [2.0] * detractors}, index=range(n))
    return pd.concat([month("2024-01-10", 60, 80, 60), month("2024-02-10", 62, 76, 62),
                      month("2024-03-10", 140, 40, 20), month("2024-04-10", 10, 20, 20)], ignore_index=True)


def test_kpi_trend_flags_only_significant_changes():
    out = metrics.kpi_trend(trend_frame(), kpi="nps", period="month", min_n=100)
    assert out["period"].tolist() == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert out["n"].tolist() == [200, 200, 200, 50]
    assert out["value"].tolist() == pytest.approx([0.0, 0.0, 60.0, -20.0])
    assert out["change"].tolist()[1:] == pytest.approx([0.0, 60.0, -80.0])
    assert math.isnan(out.loc[0, "change"])
    assert out["significant"].tolist() == [False, False, True, False]   # April is small: never flagged
    assert out["small"].tolist() == [False, False, False, True]
    feb = metrics.nps_difference(trend_frame()["nps"].iloc[200:400], trend_frame()["nps"].iloc[:200])
    assert out.loc[1, "p_value"] == pytest.approx(feb["p_value"])


def test_kpi_trend_by_group_compares_within_group():
    df = trend_frame().assign(segment=np.where(np.arange(650) % 2 == 0, "a", "b"))
    out = metrics.kpi_trend(df, kpi="nps", by=["segment"], min_n=50)
    assert out["segment"].tolist() == ["a"] * 4 + ["b"] * 4
    assert out.groupby("segment")["change"].apply(lambda s: s.isna().sum()).tolist() == [1, 1]


def test_kpi_trend_and_word_of_mouth_leave_undated_answers_out():
    df = pd.concat([trend_frame(), pd.DataFrame({"timestamp": pd.NaT, "nps": [0.0] * 30})], ignore_index=True)
    out = metrics.kpi_trend(df, kpi="nps", min_n=100)
    assert out["period"].tolist() == ["2024-01", "2024-02", "2024-03", "2024-04"] and out["n"].sum() == 650
    assert metrics.word_of_mouth(df)["n"].tolist() == [200, 200, 200, 50]
    none = metrics.kpi_trend(df.assign(timestamp=pd.NaT), kpi="nps")
    assert none.empty and "period" in none.columns


def test_word_of_mouth_shares_with_wilson():
    out = metrics.word_of_mouth(trend_frame(), min_n=100)
    assert out["promoters"].tolist() == pytest.approx([30.0, 31.0, 70.0, 20.0])
    assert out["detractors"].tolist() == pytest.approx([30.0, 31.0, 10.0, 40.0])
    low, high = metrics.wilson_interval(60, 200)
    assert (out.loc[0, "promoters_low"], out.loc[0, "promoters_high"]) == pytest.approx((100 * low, 100 * high))
    assert out["small"].tolist() == [False, False, False, True]


def test_sample_size():
    assert metrics.sample_size(5, kpi="nps") == 1537                       # worst case p = d = 50%
    assert metrics.sample_size(5, kpi="nps", promoters=40, detractors=20) == 861
    assert metrics.sample_size(3, kpi="csat", share=80) == 683
    assert metrics.sample_size(0.1, kpi="ces", sd=1.5) == 865
    with pytest.raises(MetricsError):
        metrics.sample_size(0, kpi="nps")
    with pytest.raises(MetricsError):
        metrics.sample_size(5, kpi="nps", promoters=70, detractors=40)


def test_sample_size_gives_the_margin_it_promises():
    n = metrics.sample_size(5, kpi="nps", promoters=40, detractors=20)
    low, high = metrics.nps_interval(0.4 * n, 0.4 * n, 0.2 * n)
    assert (float(high) - float(low)) / 2 <= 5.0


# --- properties --------------------------------------------------------------------------------------
scores = hst.lists(hst.integers(min_value=0, max_value=10), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(scores)
def test_nps_is_between_minus_100_and_100(values):
    est = metrics.nps_estimate(pd.Series(values, dtype="float64"))
    assert -100 <= est["value"] <= 100
    assert -100 <= est["ci_low"] <= est["ci_high"] <= 100


@settings(max_examples=200, deadline=None)
@given(scores, hst.sampled_from([9, 10]))
def test_adding_a_promoter_never_lowers_nps(values, promoter):
    before = metrics.nps(pd.Series(values, dtype="float64"))
    after = metrics.nps(pd.Series([*values, promoter], dtype="float64"))
    assert after >= before - 1e-12


@settings(max_examples=100, deadline=None)
@given(hst.integers(0, 200), hst.integers(0, 200), hst.integers(0, 200))
def test_adjusted_interval_contains_adjusted_centre(p, pa, d):
    if p + pa + d == 0:
        return
    low, high = metrics.nps_interval(p, pa, d)
    centre = 100 * ((p + 0.75) - (d + 0.75)) / (p + pa + d + 3)
    assert float(low) <= centre <= float(high)


def test_with_contact_channel_takes_the_latest_contact_at_the_touchpoint_within_the_window():
    ts = lambda s: pd.Timestamp(s, tz="UTC")
    feedback = pd.DataFrame({
        "response_id": ["R1", "R2", "R3", "R4", "R5"],
        "customer_id": ["A", "A", "B", "B", None],
        "timestamp": [ts("2024-03-10"), ts("2024-01-05"), ts("2024-03-10"), ts("2024-03-10"), ts("2024-03-10")],
        "touchpoint": ["service_contact", "service_contact", None, "complaint", "service_contact"],
    })
    events = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "B", "A"],
        "timestamp": [ts("2024-03-01"), ts("2024-03-09"), ts("2024-03-11"), ts("2024-01-01"), ts("2024-03-10"),
                      ts("2024-03-09 12:00")],
        "touchpoint": ["service_contact", "service_contact", "service_contact", "complaint", "complaint", "invoice"],
        "channel": ["email", "phone", "chat", "letter", "email", "web"],
    })
    out = feedback_table.with_contact_channel(feedback, events, within_days=30)
    # R1: latest service contact before (phone, 03-09; the 03-11 chat is after; the invoice is another touchpoint)
    # R2: no service contact in the 30 days before; R3: relationship answer; R4: same-day complaint (exact match
    # counts; the January letter is outside the window); R5: no customer
    assert out["channel"].tolist()[:1] == ["phone"] and out["channel"].iloc[3] == "email"
    assert out["channel"].isna().tolist() == [False, True, True, False, True]
    assert out["response_id"].tolist() == feedback["response_id"].tolist()
    assert "channel" not in feedback.columns
    with pytest.raises(metrics.MetricsError, match="within_days"):
        feedback_table.with_contact_channel(feedback, events, within_days=0)


def test_with_contact_channel_on_thin_inputs_leaves_the_channel_empty():
    feedback = pd.DataFrame({"customer_id": pd.Series(["A", None], dtype="str"),
                             "timestamp": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[us, UTC]"),
                             "touchpoint": pd.Series(["complaint", None], dtype="str")})
    events = pd.DataFrame({"customer_id": pd.Series([None], dtype="str"),        # a complaint log names no customer
                           "timestamp": pd.Series([pd.Timestamp("2024-03-01", tz="UTC")], dtype="datetime64[us, UTC]"),
                           "touchpoint": ["complaint"], "channel": ["phone"]})
    assert feedback_table.with_contact_channel(feedback, events)["channel"].isna().all()
    dated = feedback.assign(timestamp=pd.Timestamp("2024-03-02", tz="UTC"))
    assert feedback_table.with_contact_channel(dated, events)["channel"].isna().all()
    assert feedback_table.with_contact_channel(dated, events.iloc[0:0])["channel"].isna().all()
