"""cxlib.value: exact historic value and RFM on hand-made orders, the CLV model's recovery of
known parameters from data simulated from it, fallback, holdout check, tiers and CX by tier."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import config, engine, value
from cxlib.schema import TABLES

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = config.load_taxonomy(ROOT / "config" / "taxonomy.yml")
UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def orders_frame(rows: list[tuple]) -> pd.DataFrame:
    """(customer, timestamp, revenue, status) -> canonical orders."""
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "revenue", "status"])
    return pd.DataFrame({
        "order_id": [f"o{i}" for i in range(len(frame))],
        "customer_id": frame["customer_id"].astype("str"),
        "timestamp": pd.to_datetime(frame["timestamp"], utc=True),
        "product": "mobile", "category": "tariff",
        "revenue": frame["revenue"].astype("float64"),
        "status": frame["status"].astype("str"),
    })[TABLES["orders"].names]


# A: three purchases (two on one day), a credit, a cancelled order
# B: one purchase on the as_of day; C: only a zero-revenue row; G: only a credit
# D: only a pending order; E: only after as_of; F: two purchases
ORDERS = orders_frame([
    ("A", "2024-01-01 09:00", 100.0, "completed"),
    ("A", "2024-02-01 10:00", 50.0, "completed"),
    ("A", "2024-02-01 18:00", 30.0, "completed"),
    ("A", "2024-03-01 12:00", -20.0, "completed"),
    ("A", "2024-03-15 12:00", 999.0, "cancelled"),
    ("B", "2024-03-31 10:00", 200.0, "completed"),
    ("C", "2024-01-10 08:00", 0.0, "completed"),
    ("G", "2024-02-10 08:00", -15.0, "completed"),
    ("D", "2024-02-20 08:00", 80.0, "pending"),
    ("E", "2024-04-02 08:00", 70.0, "completed"),
    ("F", "2024-01-05 08:00", 40.0, "completed"),
    ("F", "2024-03-05 08:00", np.nan, "completed"),
    ("F", "2024-03-05 09:00", 40.0, "completed"),
])
AS_OF = "2024-03-31"
NAT = pd.NaT


# --- historic value -----------------------------------------------------------------------
def test_historic_value_empty_orders_gives_empty_table():
    out = value.historic_value(ORDERS.iloc[0:0], as_of=AS_OF)
    assert list(out.columns) == ["customer_id", "orders", "revenue", "first_order", "last_order",
                                 "tenure_days", "recency_days"]
    assert len(out) == 0


def test_historic_value_missing_column_raises():
    with pytest.raises(value.ValueInputError, match=r"orders: missing column\(s\) \['revenue'\]"):
        value.historic_value(ORDERS.drop(columns="revenue"), as_of=AS_OF)


def test_historic_value_without_as_of_and_orders_is_empty():
    out = value.historic_value(ORDERS.iloc[0:0])
    assert len(out) == 0 and "recency_days" in out.columns
    assert len(value.clv_summary(ORDERS.iloc[0:0])) == 0


def test_historic_value_one_row():
    out = value.historic_value(orders_frame([("B", "2024-03-31 10:00", 200.0, "completed")]))
    expected = pd.DataFrame({
        "customer_id": pd.Series(["B"], dtype="str"), "orders": [1], "revenue": [200.0],
        "first_order": [ts("2024-03-31 10:00")], "last_order": [ts("2024-03-31 10:00")],
        "tenure_days": [0.0], "recency_days": [0.0],
    })
    assert_frame_equal(out, expected, check_dtype=False)


def test_historic_value_exact_with_credits_zero_rows_and_single_orders():
    out = value.historic_value(ORDERS, as_of=AS_OF)
    expected = pd.DataFrame({
        "customer_id": pd.Series(["A", "B", "C", "F", "G"], dtype="str"),
        # purchases = completed with revenue > 0; credits and zero rows are not purchases
        "orders": [3, 1, 0, 2, 0],
        # net revenue: credits are subtracted, missing revenue counts 0, cancelled ignored
        "revenue": [160.0, 200.0, 0.0, 80.0, -15.0],
        "first_order": [ts("2024-01-01 09:00"), ts("2024-03-31 10:00"), NAT, ts("2024-01-05 08:00"), NAT],
        "last_order": [ts("2024-02-01 18:00"), ts("2024-03-31 10:00"), NAT, ts("2024-03-05 09:00"), NAT],
        "tenure_days": [90.0, 0.0, np.nan, 86.0, np.nan],
        "recency_days": [59.0, 0.0, np.nan, 26.0, np.nan],
    }).astype({"first_order": "datetime64[us, UTC]", "last_order": "datetime64[us, UTC]"})
    assert_frame_equal(out, expected, check_dtype=False)


def test_historic_value_as_of_defaults_to_latest_order_day():
    out = value.historic_value(ORDERS)      # latest order: E on 2024-04-02
    assert out.set_index("customer_id").loc["E", "orders"] == 1
    assert out.set_index("customer_id").loc["A", "recency_days"] == 61.0


def test_analysis_day_is_as_of_or_the_latest_day_of_any_table():
    events = pd.DataFrame({"timestamp": [ts("2024-05-01 23:30")]})
    assert value.analysis_day("", ORDERS, events) == ts("2024-05-01")
    assert value.analysis_day("2024-03-31", ORDERS, events) == ts("2024-03-31")
    assert value.analysis_day(None, ORDERS) == ts("2024-04-02")
    assert value.analysis_day("", ORDERS.iloc[0:0]) is None                # no timestamps at all
    assert value.analysis_day("", ORDERS.iloc[0:0], engine.table(EVENTS)) == ts("2024-04-05")   # Ibis table


def test_historic_value_does_not_mutate_input():
    before = ORDERS.copy()
    value.historic_value(ORDERS, as_of=AS_OF)
    assert_frame_equal(ORDERS, before)


def test_concentration_curve_and_points():
    values = pd.DataFrame({"revenue": [1.0, 2.0, 3.0, 4.0, 10.0]})
    expected = pd.DataFrame({"customer_share": [0.2, 0.4, 0.6, 0.8, 1.0],
                             "value_share": [0.5, 0.7, 0.85, 0.95, 1.0]})
    assert_frame_equal(value.concentration(values), expected)
    top = value.concentration(values, points=[0.2, 0.5, 1.0])
    assert top["customers"].tolist() == [1, 3, 5]          # top 50% of 5 = 3 customers (rounded up)
    assert top["value_share"].tolist() == [0.5, 0.85, 1.0]
    assert len(value.concentration(values.iloc[0:0])) == 0


def test_historic_value_on_processed_dtypes_with_missing_status():
    processed = ORDERS.astype({"customer_id": "string", "status": "string", "order_id": "string"})
    processed.loc[processed.index[-1], "status"] = pd.NA          # F's second 40 has no status
    out = value.historic_value(processed, as_of=AS_OF).set_index("customer_id")
    assert out.loc["F", "orders"] == 1 and out.loc["F", "revenue"] == 40.0
    assert out.loc["A", "revenue"] == 160.0


# --- RFM --------------------------------------------------------------------------------
def test_rfm_scores_exact():
    out = value.rfm_scores(value.historic_value(ORDERS, as_of=AS_OF))
    expected = pd.DataFrame({
        "customer_id": pd.Series(["A", "B", "F"], dtype="str"),
        "recency_days": [59.0, 0.0, 26.0], "orders": [3, 1, 2], "revenue": [160.0, 200.0, 80.0],
        # score = floor(5 * (min rank - 1) / 3) + 1
        "r_score": [1, 4, 2], "f_score": [4, 1, 2], "m_score": [2, 4, 1],
        "rfm": pd.Series(["142", "414", "221"], dtype="str"),
    })
    assert_frame_equal(out, expected, check_dtype=False)


def test_rfm_scores_ties_share_the_lowest_score_of_their_span():
    hist = pd.DataFrame({"customer_id": list("abcde"), "recency_days": [5.0, 5.0, 5.0, 5.0, 1.0],
                         "orders": [1, 1, 1, 1, 5], "revenue": [1.0, 2.0, 3.0, 4.0, 5.0]})
    out = value.rfm_scores(hist)
    assert out["f_score"].tolist() == [1, 1, 1, 1, 5]
    assert out["r_score"].tolist() == [1, 1, 1, 1, 5]
    assert out["m_score"].tolist() == [1, 2, 3, 4, 5]
    assert value.rfm_scores(hist.assign(orders=2))["f_score"].tolist() == [1] * 5


def test_rfm_scores_other_bins_and_bad_bins():
    hist = pd.DataFrame({"customer_id": list("abcdef"), "recency_days": [6.0, 5, 4, 3, 2, 1],
                         "orders": [1, 2, 3, 4, 5, 6], "revenue": [1.0, 2, 3, 4, 5, 6]})
    assert value.rfm_scores(hist, bins=3)["f_score"].tolist() == [1, 1, 2, 2, 3, 3]
    with pytest.raises(value.ValueInputError, match="bins"):
        value.rfm_scores(hist, bins=1)


def test_rfm_segments_from_taxonomy_rules():
    rules = TAXONOMY.section("rfm_segments")
    scores = value.rfm_scores(value.historic_value(ORDERS, as_of=AS_OF))
    out = value.rfm_segments(scores, rules=rules)
    assert out["rfm_segment"].tolist() == ["at_risk", "promising", "hibernating"]
    grid = pd.DataFrame([(r, f) for r in range(1, 6) for f in range(1, 6)], columns=["r_score", "f_score"])
    assert value.rfm_segments(grid, rules=rules)["rfm_segment"].str.len().gt(0).all()  # the grid is covered
    three = value.rfm_segments(pd.DataFrame({"r_score": [3, 1], "f_score": [3, 1]}), rules=rules, bins=3)
    assert three["rfm_segment"].tolist() == ["champions", "hibernating"]   # 3 -> 5, 1 -> 2 on 1..5


def test_rfm_segments_rules_with_a_gap_raise():
    with pytest.raises(value.ValueInputError, match="cover no segment"):
        value.rfm_segments(pd.DataFrame({"r_score": [5], "f_score": [1]}), rules={"x": {"r": [1, 4], "f": [1, 5]}})


def test_segment_summary():
    rules = TAXONOMY.section("rfm_segments")
    seg = value.rfm_segments(value.rfm_scores(value.historic_value(ORDERS, as_of=AS_OF)), rules=rules)
    out = value.segment_summary(seg)
    assert out["rfm_segment"].tolist() == ["promising", "at_risk", "hibernating"]
    assert out["revenue"].tolist() == [200.0, 160.0, 80.0]
    assert out["customer_share"].sum() == pytest.approx(1.0)


# --- BTYD summary -------------------------------------------------------------------------
def test_clv_summary_exact_counts_purchase_days():
    out = value.clv_summary(ORDERS, as_of=AS_OF)
    expected = pd.DataFrame({
        "customer_id": pd.Series(["A", "B", "F"], dtype="str"),
        "frequency": [1, 0, 1],            # A: 2 purchase days (two orders on 1 Feb = one day)
        "recency": [31.0, 0.0, 60.0],
        "T": [90.0, 0.0, 86.0],
        "monetary_value": [80.0, 0.0, 40.0],
    })
    assert_frame_equal(out, expected, check_dtype=False)


# --- model: simulation and recovery ---------------------------------------------------------
TRUTH = {"r": 0.6, "alpha": 20.0, "a": 1.0, "b": 3.0, "p": 5.0, "q": 6.0, "v": 40.0}


def simulate_summary(n: int, truth: dict, seed: int) -> pd.DataFrame:
    """Customers drawn from BG/NBD (purchases) and Gamma-Gamma (spend), vectorised."""
    rng = np.random.default_rng(seed)
    T = rng.integers(180, 731, n).astype("float64")
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    drop = rng.beta(truth["a"], truth["b"], n)
    nu = rng.gamma(truth["q"], 1 / truth["v"], n)
    times = (rng.exponential(1.0, (n, 150)) / lam[:, None]).cumsum(axis=1)
    x = np.minimum((times <= T[:, None]).sum(axis=1), rng.geometric(drop))   # dropout after a repeat
    tx = np.where(x > 0, times[np.arange(n), np.maximum(x - 1, 0)], 0.0)
    z = np.where(x > 0, rng.gamma(truth["p"] * np.maximum(x, 1), 1 / nu) / np.maximum(x, 1), 0.0)
    return pd.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)], "frequency": x, "recency": tx,
                         "T": T, "monetary_value": z})


def simulate_orders(n: int, truth: dict, *, days: int, seed: int) -> pd.DataFrame:
    """Transactions of `n` customers drawn from BG/NBD + Gamma-Gamma over `days` days from
    2023-01-01; first purchases in the first half. Vectorised."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    drop = rng.beta(truth["a"], truth["b"], n)
    nu = rng.gamma(truth["q"], 1 / truth["v"], n)
    first = rng.integers(0, days // 2, n)
    times = (rng.exponential(1.0, (n, 100)) / lam[:, None]).cumsum(axis=1)
    alive = np.arange(1, 101)[None, :] <= rng.geometric(drop)[:, None]
    cust, k = np.nonzero((times <= (days - first)[:, None]) & alive)
    idx = np.concatenate([np.arange(n), cust])
    offset = np.concatenate([first.astype("float64"), first[cust] + times[cust, k]])
    return pd.DataFrame({
        "order_id": [f"o{i}" for i in range(len(idx))],
        "customer_id": pd.Series([f"c{i:05d}" for i in idx], dtype="str"),
        "timestamp": pd.Timestamp("2023-01-01", tz=UTC) + pd.to_timedelta(offset, unit="D"),
        "product": "mobile", "category": "tariff",
        "revenue": rng.gamma(truth["p"], 1 / nu[idx]),
        "status": "completed",
    })


@pytest.fixture(scope="module")
def simulated_fit():
    summary = simulate_summary(2000, TRUTH, seed=0)
    return summary, value.fit_clv(summary, method="map")


def test_model_recovers_known_parameters(simulated_fit):
    _, fit = simulated_fit
    est = dict(zip(fit.params["parameter"], fit.params["estimate"]))
    for name in ("r", "alpha", "a", "b"):
        assert est[name] == pytest.approx(TRUTH[name], rel=0.25), name
    for name in ("p", "q", "v"):
        assert est[name] == pytest.approx(TRUTH[name], rel=0.35), name
    # the quantities CLV depends on are identified more tightly
    assert est["r"] / est["alpha"] == pytest.approx(TRUTH["r"] / TRUTH["alpha"], rel=0.10)
    assert est["a"] / (est["a"] + est["b"]) == pytest.approx(0.25, rel=0.15)
    assert est["p"] * est["v"] / (est["q"] - 1) == pytest.approx(TRUTH["p"] * TRUTH["v"] / (TRUTH["q"] - 1), rel=0.05)
    assert fit.params[["ci_low", "ci_high"]].isna().all().all()       # MAP: no intervals
    assert fit.name.startswith("BG/NBD + Gamma-Gamma (pymc-marketing") and fit.name.endswith("MAP)")
    assert fit.repeat_buyers == int((simulated_fit[0]["frequency"] > 0).sum())


def test_predict_clv_is_purchases_times_spend_without_discount(simulated_fit):
    summary, fit = simulated_fit
    part = summary.iloc[:50]
    plain = value.predict_clv(fit, part, horizon_months=6, annual_discount_rate=0.0)
    assert_frame_equal(
        plain[["customer_id", "expected_purchases"]],
        value.expected_purchases(fit, part, days=6 * value.DAYS_PER_MONTH),
    )
    assert np.allclose(plain["clv"], plain["expected_purchases"] * plain["expected_spend"])
    assert plain["p_alive"].between(0, 1).all() and plain["clv_low"].isna().all()
    discounted = value.predict_clv(fit, part, horizon_months=6, annual_discount_rate=0.5)
    assert (discounted["clv"] < plain["clv"]).all() and (discounted["clv"] > 0.8 * plain["clv"]).all()
    # a single-order customer's spend is the population mean; its CLV is still positive
    one = part.loc[part["frequency"] == 0].iloc[:1]
    pred = value.predict_clv(fit, one, horizon_months=6)
    est = dict(zip(fit.params["parameter"], fit.params["estimate"]))
    assert pred["expected_spend"].iloc[0] == pytest.approx(est["p"] * est["v"] / (est["q"] - 1))
    assert pred["clv"].iloc[0] > 0


def test_predict_clv_rejects_bad_parameters(simulated_fit):
    summary, fit = simulated_fit
    with pytest.raises(value.ValueInputError, match="horizon_months"):
        value.predict_clv(fit, summary.iloc[:5], horizon_months=0)
    with pytest.raises(value.ValueInputError, match="annual_discount_rate"):
        value.predict_clv(fit, summary.iloc[:5], annual_discount_rate=-1.0)
    with pytest.raises(value.ValueInputError, match="method"):
        value.fit_clv(summary, method="nuts")


def test_mcmc_gives_intervals():
    summary = simulate_summary(400, TRUTH, seed=1)
    fit = value.fit_clv(summary, method="mcmc", draws=100, tune=200, chains=2, seed=1, min_repeat_buyers=10)
    assert (fit.params["ci_low"] < fit.params["estimate"]).all()
    assert (fit.params["estimate"] < fit.params["ci_high"]).all()
    pred = value.predict_clv(fit, summary.iloc[:20], horizon_months=3)
    assert (pred["clv_low"] <= pred["clv"]).all() and (pred["clv"] <= pred["clv_high"]).all()
    total = value.draws_total(value.clv_draws(fit, summary.iloc[:20], horizon_months=3, annual_discount_rate=0.1))
    assert total["total_low"] < total["total"] < total["total_high"]
    assert total["total"] == pytest.approx(pred["clv"].sum())


# --- fallback ---------------------------------------------------------------------------
def test_too_few_repeat_buyers_is_model_unsupported():
    summary = value.clv_summary(ORDERS, as_of=AS_OF)
    with pytest.raises(value.ModelUnsupported, match=r"only 2 of 3 customers bought again .*at least 50"):
        value.fit_clv(summary, min_repeat_buyers=50)


def test_nobody_buying_a_third_time_is_model_unsupported():
    # 60 of 300 customers bought on exactly two days, nobody more often (as in the demo): the
    # BG/NBD dropout after a repeat purchase would be fitted as certain
    n = 300
    T = np.linspace(100.0, 700.0, n)
    frequency = np.r_[np.ones(60), np.zeros(n - 60)].astype("int64")
    summary = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(n)], "frequency": frequency,
                            "recency": np.where(frequency > 0, 0.4 * T, 0.0), "T": T,
                            "monetary_value": np.where(frequency > 0, 100.0 + np.arange(n) % 7, 0.0)})
    with pytest.raises(value.ModelUnsupported, match=r"no customer bought on more than two days \(60 of 300"):
        value.fit_clv(summary, min_repeat_buyers=50)


def test_check_params_rejects_degenerate_and_undefined_fits():
    params = pd.DataFrame({"model": ["BG/NBD"] * 4 + ["Gamma-Gamma"] * 3,
                           "parameter": ["r", "alpha", "a", "b", "p", "q", "v"],
                           "estimate": [0.5, 10.0, 0.8, 2.5, 5.0, 6.0, 40.0]})
    value.check_params(params)                                           # fine: no error
    with pytest.raises(value.ModelUnsupported, match=r"degenerate \(BG/NBD b = 1e-07\)"):
        value.check_params(params.assign(estimate=[0.5, 10.0, 0.8, 1e-7, 5.0, 6.0, 40.0]))
    with pytest.raises(value.ModelUnsupported, match="non-finite"):
        value.check_params(params.assign(estimate=[0.5, np.nan, 0.8, 2.5, 5.0, 6.0, 40.0]))
    with pytest.raises(value.ModelUnsupported, match=r"q = 0.90 <= 1"):
        value.check_params(params.assign(estimate=[0.5, 10.0, 0.8, 2.5, 5.0, 0.9, 40.0]))


def test_customer_value_on_no_orders_is_an_empty_fallback():
    empty = ORDERS.iloc[0:0]
    res = value.customer_value(empty, value.historic_value(empty, as_of=AS_OF), as_of=AS_OF)
    assert res.status == "unsupported" and len(res.customers) == 0
    assert res.message.startswith("Model not supported: only 0 of 0 customers bought again")
    assert value.clv_distribution(res)["total"] == 0.0


def test_customer_value_falls_back_to_historic_revenue():
    hist = value.historic_value(ORDERS, as_of=AS_OF)
    res = value.customer_value(ORDERS, hist, as_of=AS_OF)
    assert res.status == "unsupported"
    assert res.message.startswith("Model not supported: only 2 of 3 customers bought again")
    assert res.customers["customer_id"].tolist() == ["A", "B", "F"]        # customers with a purchase
    assert res.customers["value"].tolist() == [160.0, 200.0, 80.0]
    assert (res.customers["value_basis"] == "historic_revenue").all()
    assert res.customers["clv"].isna().all() and res.holdout is None
    summary = value.clv_distribution(res)
    assert summary == {"basis": "historic_revenue", "model": "historic revenue (fallback)", "status": "unsupported",
                       "customers": 3, "mean": pytest.approx(440 / 3), "median": 160.0,
                       "p90": pytest.approx(192.0), "total": 440.0, "total_low": summary["total_low"],
                       "total_high": summary["total_high"], "predicted": summary["predicted"]}
    assert math.isnan(summary["total_low"]) and math.isnan(summary["predicted"])
    assert value.describe_clv(res) == ("Total net revenue to date (the fallback value): 440 € over 3 customers. "
                                       + res.message)
    assert value.describe_holdout(res) == "No holdout check: " + res.message


# --- holdout check and the whole chain on simulated transactions ----------------------------
@pytest.fixture(scope="module")
def simulated_value():
    orders = simulate_orders(1500, TRUTH, days=730, seed=2)
    hist = value.historic_value(orders)
    return orders, hist, value.customer_value(orders, hist, horizon_months=12, holdout_months=6)


def test_holdout_check_predicts_repeat_purchases(simulated_value):
    orders, _, res = simulated_value
    table = res.holdout
    assert table["decile"].tolist() == [str(i) for i in range(1, 11)] + ["all"]
    overall = table.set_index("decile").loc["all"]
    assert overall["customers"] == 1500 == table["customers"].iloc[:10].sum()
    # actual = repeat purchase days in the last 6 months, counted directly
    end = orders["timestamp"].max().floor("D")
    cal_end = end - pd.DateOffset(months=6)
    days = orders["timestamp"].dt.floor("D")
    assert overall["actual"] == orders.assign(d=days).loc[days > cal_end].drop_duplicates(["customer_id", "d"]).shape[0]
    assert abs(overall["error_pct"]) < 20
    # the top decile buys far more than the bottom half, as predicted
    top, low = table.iloc[9], table.iloc[:5]
    assert top["actual_mean"] > 5 * low["actual"].sum() / low["customers"].sum()


def test_customer_value_fitted(simulated_value):
    _, hist, res = simulated_value
    assert res.status == "fitted" and res.holdout_message == ""
    assert (res.customers["value"] == res.customers["clv"]).all()
    assert (res.customers["value_basis"] == "predicted_clv").all()
    assert res.customers["customer_id"].tolist() == hist["customer_id"].tolist()
    assert res.total["total"] == pytest.approx(res.customers["clv"].sum())
    assert set(res.params["parameter"]) == {"r", "alpha", "a", "b", "p", "q", "v"}
    dist = value.clv_distribution(res)
    assert dist["median"] < dist["mean"] < dist["p90"]
    assert value.describe_clv(res) == (f"Total predicted CLV: {dist['total']:,.0f} € over 1,500 customers (a MAP fit "
                                       "gives point estimates only; clv_method 'mcmc' gives intervals).")
    row = res.holdout.iloc[-1]
    assert value.describe_holdout(res).endswith(f"predicted {row['predicted']:,.0f} repeat purchases in the "
                                                f"{row['holdout_days']:.0f} held-out days; {row['actual']:,.0f} "
                                                f"happened ({row['error_pct']:+.0f}%).")


def test_customer_value_on_repeat_purchase_categories_adds_predicted_clv_to_revenue(simulated_value):
    """Contracts (category 'contract') beside repeat purchases ('tariff' in the simulation): the
    model sees the repeat purchases only, so its CLV equals the fit on them alone; value = net
    revenue to date (all orders) + that CLV; customers with contracts only get CLV 0."""
    orders, _, alone = simulated_value
    first = orders.sort_values("timestamp").drop_duplicates("customer_id").iloc[:300]
    contracts = first.assign(order_id=lambda d: "k" + d["order_id"], category="contract", revenue=1000.0)
    only = first.iloc[:20].assign(order_id=lambda d: "x" + d["order_id"], customer_id=lambda d: "z" + d["customer_id"],
                                  category="contract", revenue=500.0)
    both = pd.concat([orders, contracts, only], ignore_index=True)
    hist = value.historic_value(both)
    res = value.customer_value(both, hist, horizon_months=12, holdout_months=0, categories=["tariff"])
    assert res.status == "fitted" and "of tariff purchases" in res.message
    out = res.customers.set_index("customer_id")
    ref = alone.customers.set_index("customer_id")
    assert out.loc[ref.index, "clv"].to_numpy() == pytest.approx(ref["clv"].to_numpy(), rel=1e-6)
    assert out["value"].to_numpy() == pytest.approx((out["revenue"] + out["clv"].fillna(0)).to_numpy())
    assert out.loc[only["customer_id"], "clv"].isna().all()
    assert (out.loc[only["customer_id"], "value"] == 500.0).all()
    assert (out["value_basis"] == "revenue_plus_predicted_clv").all()
    dist = value.clv_distribution(res)
    assert dist["total"] == pytest.approx(hist["revenue"].sum() + ref["clv"].sum())
    assert dist["predicted"] == pytest.approx(ref["clv"].sum())
    assert value.describe_clv(res).startswith(f"Total value: {dist['total']:,.0f} € over 1,520 customers: net revenue")


def test_clv_categories_absent_from_the_orders_model_all_orders_and_say_so():
    hist = value.historic_value(ORDERS, as_of=AS_OF)
    res = value.customer_value(ORDERS, hist, as_of=AS_OF, categories=["Zubehör"])
    assert res.status == "unsupported" and res.message.startswith("Model not supported: only 2 of 3 customers")
    assert res.message.endswith("None of the CLV categories (Zubehör) occurs in the orders, so the model covers "
                                "all orders.")
    assert res.customers["value"].tolist() == [160.0, 200.0, 80.0]


# --- tiers ------------------------------------------------------------------------------
TIERS = {"high": 0.2, "medium": 0.4, "low": 0.4}


def test_value_tiers_by_share_ties_to_the_better_tier():
    values = pd.DataFrame({"customer_id": list("abcde"), "value": [10.0, 9.0, 9.0, 5.0, 1.0]})
    out = value.value_tiers(values, tiers=TIERS)
    assert out["value_tier"].astype(str).tolist() == ["high", "medium", "medium", "low", "low"]
    assert list(out["value_tier"].cat.categories) == ["high", "medium", "low"]
    tied = value.value_tiers(values.assign(value=[10.0, 10.0, 5.0, 1.0, 0.0]), tiers=TIERS)
    assert tied["value_tier"].astype(str).tolist() == ["high", "high", "medium", "low", "low"]
    assert len(value.value_tiers(values.iloc[0:0], tiers=TIERS)) == 0
    with pytest.raises(value.ValueInputError, match="sum to 1"):
        value.value_tiers(values, tiers={"high": 0.5, "low": 0.4})


def test_tier_summary():
    values = pd.DataFrame({"customer_id": list("abcde"), "value": [10.0, 9.0, 9.0, 5.0, 1.0],
                           "revenue": [1.0, 2.0, 3.0, 4.0, 5.0]})
    out = value.tier_summary(value.value_tiers(values, tiers=TIERS))
    expected = pd.DataFrame({"value_tier": pd.Series(["high", "medium", "low"], dtype="str"),
                             "customers": [1, 2, 2], "value_total": [10.0, 18.0, 6.0],
                             "value_mean": [10.0, 9.0, 3.0], "value_min": [10.0, 9.0, 1.0],
                             "value_max": [10.0, 9.0, 5.0], "revenue": [1.0, 5.0, 9.0],
                             "value_share": [10 / 34, 18 / 34, 6 / 34]})
    assert_frame_equal(out, expected, check_dtype=False)


# --- CX by value ------------------------------------------------------------------------
TIERED = value.value_tiers(
    pd.DataFrame({"customer_id": list("abcdef"), "value": [100.0, 90.0, 80.0, 10.0, 5.0, 1.0]}),
    tiers={"high": 0.5, "low": 0.5},
)   # a, b, c high; d, e, f low


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "contact_reason"])
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True),
                        customer_id=frame["customer_id"].astype("str"))


def feedback_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "nps"])
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True),
                        customer_id=frame["customer_id"].astype("str"), nps=frame["nps"].astype("float64"))


EVENTS = events_frame([
    ("a", "2024-03-20", "complaint_billing"),
    ("a", "2024-03-21", "invoice_unclear"),
    ("a", "2024-03-25", "complaint_billing"),
    ("b", "2024-03-10", "general_inquiry"),
    ("c", "2023-10-01", "complaint_hotline"),        # outside a 90-day window
    ("d", "2024-03-30", "complaint_hotline"),
    ("x", "2024-03-30", "complaint_hotline"),        # not a tiered customer
    ("e", "2024-04-05", "complaint_billing"),        # after as_of
])
FEEDBACK = feedback_frame([
    ("b", "2024-02-01", 3), ("c", "2024-01-15", 2), ("c", "2024-03-01", 9),
    ("d", "2024-03-01", 0), ("e", "2024-03-01", 10), ("f", "2024-03-02", np.nan),
])


def test_exposure_by_tier_complaints():
    out = value.exposure_by_tier(TIERED, EVENTS, reasons=TAXONOMY.complaint_category_of_reason,
                                 as_of=AS_OF, window_days=90)
    got = out.set_index(["value_tier", "group"])
    assert out["group"].unique().tolist()[:1] == ["any"]
    assert got.loc[("high", "any")].tolist() == [3, 1, pytest.approx(1 / 3)]       # only a (c is too old)
    assert got.loc[("high", "billing"), "exposed"] == 1
    assert got.loc[("high", "hotline"), "exposed"] == 0
    assert got.loc[("low", "any")].tolist() == [3, 1, pytest.approx(1 / 3)]        # d (e is after as_of)
    everything = value.exposure_by_tier(TIERED, EVENTS, reasons=TAXONOMY.complaint_category_of_reason, as_of=AS_OF)
    assert everything.set_index(["value_tier", "group"]).loc[("high", "hotline"), "exposed"] == 1


def test_exposure_by_tier_moments():
    reasons = {r: r for r in TAXONOMY.moment_reasons}
    out = value.exposure_by_tier(TIERED, EVENTS, reasons=reasons, as_of=AS_OF, window_days=90)
    got = out.set_index(["value_tier", "group"])["exposed"]
    assert got[("high", "any")] == 1 and got[("high", "invoice_unclear")] == 1
    assert got[("low", "complaint_hotline")] == 1
    assert len(out) == 2 * (1 + len(reasons))


def test_negative_moment_reasons_are_complaints_and_classic_moments():
    reasons = value.negative_moment_reasons(TAXONOMY)
    assert reasons[:4] == TAXONOMY.data["moments_of_truth"]
    assert set(TAXONOMY.complaint_category_of_reason) <= set(reasons)
    assert "outage_notification" not in reasons and len(reasons) == len(set(reasons))


def test_at_risk():
    negative = list(TAXONOMY.complaint_category_of_reason)
    out = value.at_risk(TIERED, EVENTS, FEEDBACK, high_tiers=["high"], negative_reasons=negative,
                        as_of=AS_OF, window_days=90)
    # a: two complaints; b: detractor; c: detractor earlier but latest answer 9, complaint too old
    assert out["customer_id"].tolist() == ["a", "b"]
    assert out["trigger"].tolist() == ["moment", "detractor"]
    assert out["negative_contacts"].tolist() == [2, 0]
    assert out["last_negative_contact"].iloc[0] == ts("2024-03-25")
    assert out["latest_nps"].iloc[1] == 3.0 and out["detractor"].tolist() == [False, True]
    wide = value.at_risk(TIERED, EVENTS, FEEDBACK, high_tiers=["high", "low"], negative_reasons=negative,
                         as_of=AS_OF, window_days=90)
    assert wide["customer_id"].tolist() == ["a", "b", "d"] and wide["trigger"].iloc[2] == "moment+detractor"
    with pytest.raises(value.ValueInputError, match="not tiers"):
        value.at_risk(TIERED, EVENTS, FEEDBACK, high_tiers=["top"], negative_reasons=negative, as_of=AS_OF)


def test_nps_by_tier():
    out = value.nps_by_tier(FEEDBACK, TIERED, as_of=AS_OF, min_n=2)
    got = out.set_index("value_tier")
    assert out["value_tier"].tolist() == ["high", "low"]
    assert got["n"].tolist() == [3, 2]                      # f did not answer
    assert got.loc["high", "value"] == pytest.approx(100 * (1 - 2) / 3)
    assert got.loc["low", "value"] == pytest.approx(0.0)
    recent = value.nps_by_tier(FEEDBACK, TIERED, as_of=AS_OF, window_days=45, min_n=2)
    assert recent["n"].tolist() == [1, 2] and recent["small"].tolist() == [True, False]
    none = value.nps_by_tier(FEEDBACK.iloc[0:0], TIERED, as_of=AS_OF)
    assert none["n"].tolist() == [0, 0]


# --- on the engine: DuckDB over a Parquet file gives the numbers of plain pandas --------------
def reference_exposure(tiered: pd.DataFrame, events: pd.DataFrame, reasons: list[str], end: str, days: int) -> dict:
    """Plain pandas: per tier, customers with a contact of `reasons` on days in (end - days, end]."""
    day = events["timestamp"].dt.floor("D")
    hit = events.loc[events["contact_reason"].isin(reasons) & (day > ts(end) - pd.Timedelta(days=days))
                     & (day <= ts(end)), "customer_id"]
    tiers = tiered.assign(exposed=tiered["customer_id"].isin(set(hit)))
    return tiers.groupby("value_tier", observed=False)["exposed"].agg(["size", "sum"]).astype(int).T.to_dict("list")


def reference_at_risk(tiered: pd.DataFrame, events: pd.DataFrame, feedback: pd.DataFrame, negative: list[str],
                      end: str, days: int) -> list[str]:
    """Plain pandas: high-tier customers with a negative contact or a latest NPS answer <= 6 in the window."""
    def recent(frame):
        day = frame["timestamp"].dt.floor("D")
        return frame.loc[(day > ts(end) - pd.Timedelta(days=days)) & (day <= ts(end))]
    moment = set(recent(events).loc[lambda d: d["contact_reason"].isin(negative), "customer_id"])
    latest = recent(feedback).dropna(subset=["nps"]).sort_values("timestamp").groupby("customer_id")["nps"].last()
    high = tiered.loc[tiered["value_tier"] == "high"].sort_values("value", ascending=False)
    return [c for c in high["customer_id"] if c in moment or latest.get(c, 99) <= 6]


@pytest.fixture(scope="module")
def duckdb_events(tmp_path_factory):
    """EVENTS written as Parquet and read back as a lazy DuckDB table, as the notebook reads them."""
    path = tmp_path_factory.mktemp("engine") / "events.parquet"
    EVENTS.assign(timestamp=EVENTS["timestamp"].astype("datetime64[us, UTC]")).to_parquet(path)
    return engine.read_table(engine.connect("duckdb"), path)


def test_exposure_on_duckdb_equals_pandas(duckdb_events):
    reasons = TAXONOMY.complaint_category_of_reason
    on_engine = value.exposure_by_tier(TIERED, duckdb_events, reasons=reasons, as_of=AS_OF, window_days=90)
    in_memory = value.exposure_by_tier(TIERED, EVENTS, reasons=reasons, as_of=AS_OF, window_days=90)
    assert_frame_equal(on_engine, in_memory)
    expected = reference_exposure(TIERED, EVENTS, list(reasons), AS_OF, 90)      # {tier: [customers, exposed]}
    got = value.any_exposure(on_engine).set_index("value_tier")[["customers", "exposed"]].T.to_dict("list")
    assert got == expected == {"high": [3, 1], "low": [3, 1]}


def test_at_risk_on_duckdb_equals_pandas(duckdb_events):
    negative = value.negative_moment_reasons(TAXONOMY)
    for tiers in (["high"], ["high", "low"]):
        on_engine = value.at_risk(TIERED, duckdb_events, FEEDBACK, high_tiers=tiers, negative_reasons=negative,
                                  as_of=AS_OF, window_days=90)
        in_memory = value.at_risk(TIERED, EVENTS, FEEDBACK, high_tiers=tiers, negative_reasons=negative,
                                  as_of=AS_OF, window_days=90)
        assert_frame_equal(on_engine, in_memory)
    high = value.at_risk(TIERED, duckdb_events, FEEDBACK, high_tiers=["high"], negative_reasons=negative,
                         as_of=AS_OF, window_days=90)
    assert high["customer_id"].tolist() == reference_at_risk(TIERED, EVENTS, FEEDBACK, negative, AS_OF, 90) == ["a", "b"]
    assert high["negative_contacts"].tolist() == [3, 0]        # a: two complaints and an unclear invoice


def test_analysis_day_reads_the_latest_day_on_the_engine(duckdb_events):
    assert value.analysis_day("", duckdb_events) == ts("2024-04-05")
    assert value.analysis_day("", ORDERS.iloc[0:0], duckdb_events) == ts("2024-04-05")


# --- the report's words in English and German ---------------------------------------------
def plain(text: str) -> str:
    """German texts with their non-breaking spaces (before %) as plain spaces, to compare with literals."""
    return text.replace("\xa0", " ")


def test_sentences_in_german_use_german_numbers_and_words():
    overview = {"customers": 11480, "revenue": 9548553.2, "top10_share": 0.62, "top20_share": 0.77,
                "top50_share": 0.95, "credit_only": 3}
    assert plain(value.describe_historic(overview, "2025-12-31", lang="de")) == (
        "11.480 Kunden haben bis 31.12.2025 gekauft, mit 9.548.553 € Nettoumsatz. Die besten 10 % brachten 62 %, "
        "die besten 20 % 77 %, die bessere Hälfte 95 %. 3 Kunden haben nur Gutschriften oder Zeilen ohne Betrag.")
    exposure = value.exposure_by_tier(TIERED, EVENTS, reasons=TAXONOMY.complaint_category_of_reason, as_of=AS_OF,
                                      window_days=90)
    assert plain(value.describe_exposure(exposure, what="complaint", window_days=90, as_of=AS_OF, lang="de")) == (
        "Anteil der Kunden je Stufe mit einem Kontakt (Beschwerde) in den 90 Tagen bis 31.03.2024: "
        "high 33,3 % (1 von 3), low 33,3 % (1 von 3).")
    table = value.exposure_display(exposure, TAXONOMY, "complaint_categories", lang="de")
    assert table.columns[0] == "Beschwerdekategorie" and table.iloc[0].tolist()[0] == "jede Beschwerde"
    info = {"customers": 10, "at_risk": 3, "share": 0.3, "value": 1234.5, "value_share": 0.5,
            "triggers": {"moment": 2, "detractor": 0, "moment+detractor": 1}}
    assert plain(value.risk_title(info, lang="de")) == "3 von 10 wertvollen Kunden (30 %) sind gefährdet"
    assert plain(value.describe_at_risk(info, basis="Nettoumsatz bis heute", lang="de")).startswith(
        "3 von 10 wertvollen Kunden (30 %) sind gefährdet. Sie halten 1.234 € (Nettoumsatz bis heute), 50 % des Werts")


def test_fallback_reason_in_german_from_its_code():
    rows = orders_frame([("a", "2024-03-01", 40.0, "completed"), ("b", "2024-04-01", 10.0, "completed")])
    res = value.customer_value(rows, value.historic_value(rows), min_repeat_buyers=1, categories=["Zubehör"])
    assert value.model_message(res, "en") == res.message
    assert value.model_message(res, "de") == (
        "Modell nicht gestützt: nur 0 von 2 Kunden haben erneut gekauft (das Modell braucht mindestens 1 "
        "Wiederholungskäufer); es gilt der bisherige Umsatz. Keine der CLV-Kategorien (Zubehör) kommt in den "
        "Bestellungen vor; das Modell umfasst alle Bestellungen.")
    assert value.describe_value_model(res, lang="de") == "**bisheriger Umsatz (Ersatz).**"
    assert value.basis_label(res, "de") == "Nettoumsatz bis heute"
    shown = value.top_customers_display(res, 2, lang="de")
    assert list(shown.columns)[:3] == ["Kunde (Pseudonym)", "Käufe", "Nettoumsatz (€)"]


def test_findings_from_the_recorded_results():
    results = {
        "historic": {"customers": 10, "revenue": 12345.0, "top10_share": 0.3, "top20_share": 0.5, "top50_share": 0.8},
        "clv": {"basis": "historic_revenue"},
        "tiers": pd.DataFrame({"value_tier": ["high", "low"], "customers": [2, 8], "value_total": [600.0, 400.0],
                               "value_share": [0.6, 0.4]}),
        "kpi_by_tier": pd.DataFrame({"kpi": "nps", "value_tier": ["high", "low"], "n": [40, 50],
                                     "value": [12.5, -3.0], "small": [False, False]}),
        "complaint_exposure": pd.DataFrame({"value_tier": ["high", "low"], "customers": [2, 8], "exposed": [1, 2],
                                            "share": [0.5, 0.25]}),
        "at_risk": 1, "at_risk_value": 350.0, "at_risk_customers": 2,
    }
    assert value.describe_findings(results, exposure_days=365, at_risk_days=90) == (
        "The top 20% of customers brought 50% of the 12,345 € net revenue to date. The high tier (20% of customers) "
        "holds 60% of the value (net revenue to date). NPS: +12.5 in the high tier, -3.0 in the low tier. 50.0% of "
        "the high tier's customers had a complaint contact in the last 365 days (the low tier: 25.0%). 1 of 2 "
        "high-value customers are at risk (a negative contact or detractor answer in the last 90 days); they hold "
        "350 € of net revenue to date.")
    german = plain(value.describe_findings(results, exposure_days=365, at_risk_days=90, lang="de"))
    assert german.startswith("Die besten 20 % der Kunden brachten 50 % der 12.345 € Nettoumsatz bis heute.")
    assert "NPS: +12,5 in der Stufe high, -3,0 in der Stufe low." in german
    small = {**results, "kpi_by_tier": results["kpi_by_tier"].assign(small=[True, False])}
    assert "NPS" not in value.describe_findings(small, exposure_days=365, at_risk_days=90)    # one comparable tier
    assert value.describe_findings({}, exposure_days=365, at_risk_days=90).startswith("No finding on customer value")


def test_parameter_labels_say_what_each_parameter_is():
    assert value.parameter_labels("de", at_risk_days=90, min_tier_answers=30, clv_categories=[]) == {
        "Zeitfenster Gefährdung (Tage)": 90, "mindestens Antworten je Stufe": 30, "CLV-Bestellkategorien": "alle Bestellungen"}
    assert list(value.parameter_labels("en", at_risk_days=90)) == ["at-risk window (days)"]
