"""cxlib.moments: exact values on hand-made frames (exposures, impact and intervals, churn on
customer time, u-chart, relative weights, consent-gated contact list), a property test that no
customer without consent reaches the contact list, and the engine path shared with journey."""

from __future__ import annotations

import math
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from pandas.testing import assert_frame_equal
from scipy import stats as st

from cxlib import config, engine, journey, metrics, moments, report
from cxlib.schema import Missing

ROOT = Path(__file__).resolve().parents[1]
START, END = "2024-01-01", "2024-12-31"


def ts(*text) -> pd.Series:
    return pd.Series(pd.to_datetime(list(text), utc=True, format="ISO8601"), dtype="datetime64[us, UTC]")


@pytest.fixture(scope="module")
def taxonomy():
    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


def make_events(rows) -> pd.DataFrame:
    """rows: (event_id, customer_id, timestamp, touchpoint, contact_reason, channel, resolved, wait_seconds)."""
    frame = pd.DataFrame(rows, columns=["event_id", "customer_id", "timestamp", "touchpoint", "contact_reason", "channel",
                                        "resolved", "wait_seconds"])
    return frame.assign(
        event_id=frame["event_id"].astype("str"), customer_id=frame["customer_id"].astype("str"),
        timestamp=ts(*frame["timestamp"]), contact_reason=frame["contact_reason"].astype("str"),
        channel=frame["channel"].astype("str"), touchpoint=frame["touchpoint"].astype("str"),
        resolved=frame["resolved"].astype("boolean"), wait_seconds=frame["wait_seconds"].astype("float64"),
        direction=pd.Series(["inbound"] * len(frame), dtype="str"))


def make_customers(rows) -> pd.DataFrame:
    """rows: (customer_id, segment, signup, churn, lead, consent, channels)."""
    frame = pd.DataFrame(rows, columns=["customer_id", "segment", "signup_date", "churn_date", "lead_date",
                                        "contact_consent", "consent_channels"])
    return frame.assign(
        customer_id=frame["customer_id"].astype("str"), segment=frame["segment"].astype("str"),
        signup_date=ts(*frame["signup_date"]), churn_date=ts(*frame["churn_date"]), lead_date=ts(*frame["lead_date"]),
        contact_consent=frame["contact_consent"].astype("boolean"), consent_channels=frame["consent_channels"].astype("str"))


def run(expr) -> pd.DataFrame:
    return engine.to_pandas(expr)


# --- edge cases first -----------------------------------------------------------------------------

def test_missing_columns_raise_naming_them(taxonomy):
    events = make_events([("e1", "A", "2024-01-01", "service_contact", "invoice_unclear", "phone", True, 10.0)])
    with pytest.raises(moments.MomentsError, match=r"events: missing column\(s\) \['resolved'\]"):
        moments.handled_contacts(events.drop(columns=["resolved"]), ["invoice_unclear"])
    responses = pd.DataFrame({"response_id": ["r1"], "customer_id": ["A"], "segment": ["private"]})
    exposures = pd.DataFrame({"response_id": ["r1"], "moment": ["invoice_unclear"]})
    with pytest.raises(moments.MomentsError, match=r"responses: missing column\(s\) \['nps'\]"):
        moments.kpi_impact(responses, exposures, moments=["invoice_unclear"])
    with pytest.raises(moments.MomentsError, match="driver data"):
        moments.relative_weights(pd.DataFrame({"y": [1.0]}), "y", ["x"])


def test_bad_parameters_raise():
    with pytest.raises(moments.MomentsError, match="increasing"):
        moments.wait_band_labels([300, 60])
    with pytest.raises(moments.MomentsError, match="no moments"):
        moments.handled_contacts(make_events([]), [])
    with pytest.raises(moments.MomentsError, match="derived_moments.x"):
        moments.with_derived_moments(make_events([]), rules={"x": {"between": ["order"], "min_days": 3}})
    with pytest.raises(moments.MomentsError, match="churn_window_days"):
        moments.churn_cells(make_events([]).assign(moment="m"), make_customers([]), start=START, end=END, churn_window_days=0)


def test_wait_band_labels():
    assert moments.wait_band_labels() == ["< 1 min", "1–5 min", "5–15 min", "≥ 15 min"]
    assert moments.wait_band_labels([90]) == ["< 1.5 min", "≥ 1.5 min"]


def test_candidates_on_an_empty_log_are_none_unless_absent_moments_are_kept(taxonomy):
    assert moments.candidate_moments(make_events([]), taxonomy).empty
    out = moments.candidate_moments(make_events([]), taxonomy, keep_absent=True)
    assert out["moment"].tolist()[:4] == taxonomy.data["moments_of_truth"]
    assert out["moment"].tolist()[-2:] == ["slow_provisioning", "long_hotline_wait"]
    assert (out["contacts"] == 0).all() and out["flagged"].all() and out["resolved_rate"].isna().all()


def test_kpi_impact_without_exposure_is_empty_not_an_error():
    responses = pd.DataFrame({"response_id": ["r1", "r2"], "customer_id": ["A", "B"], "nps": [9.0, 3.0],
                              "segment": ["private", "private"]})
    out = moments.kpi_impact(responses, pd.DataFrame({"response_id": [], "moment": []}), moments=["m"], min_n=1)
    row = out.iloc[0]
    assert (row["n_exposed"], row["n_unexposed"]) == (0, 2)
    assert math.isnan(row["difference"]) and math.isnan(row["adjusted"]) and row["small"] and not row["significant"]


# --- derived moments, candidates, handling --------------------------------------------------------

LOG = [
    # A: order -> activation 15 days: slow; B: 10 days: not slow; C: two orders, the later one 5 days before
    ("a1", "A", "2024-01-01 10:00", "order", None, "web", None, None),
    ("a2", "A", "2024-01-16 10:00", "activation", None, "system", None, None),
    ("b1", "B", "2024-01-01 10:00", "order", None, "web", None, None),
    ("b2", "B", "2024-01-11 10:00", "activation", None, "system", None, None),
    ("c1", "C", "2024-01-01 10:00", "order", None, "web", None, None),
    ("c2", "C", "2024-01-20 10:00", "order", None, "web", None, None),
    ("c3", "C", "2024-01-25 10:00", "activation", None, "system", None, None),
    # contacts: waits 400 s (long) and 300 s (not over 300)
    ("a3", "A", "2024-02-01 09:00", "service_contact", "invoice_unclear", "phone", True, 400.0),
    ("a4", "A", "2024-02-05 09:00", "service_contact", "invoice_unclear", "email", False, None),
    ("b3", "B", "2024-02-01 09:00", "service_contact", "invoice_unclear", "phone", True, 300.0),
    ("b4", "B", "2024-03-01 09:00", "complaint", "complaint_billing", "letter", None, None),
]


def test_with_derived_moments(taxonomy):
    out = run(moments.with_derived_moments(make_events(LOG), taxonomy))
    derived = out.loc[out["event_id"].str.contains("#")].sort_values("event_id").reset_index(drop=True)
    assert derived["event_id"].tolist() == ["a2#slow_provisioning", "a3#long_hotline_wait"]
    assert derived["contact_reason"].tolist() == ["slow_provisioning", "long_hotline_wait"]
    assert derived["timestamp"].tolist() == ts("2024-01-16 10:00", "2024-02-01 09:00").tolist()
    assert len(out) == len(LOG) + 2


def test_derived_moments_ignore_outbound_waits_and_short_gaps():
    events = make_events([
        ("o1", "A", "2024-01-01", "service_contact", "general_inquiry", "phone", True, 900.0),
        ("o2", "B", "2024-01-01", "order", None, "web", None, None),
        ("o3", "B", "2024-01-15", "activation", None, "system", None, None),     # exactly 14 days: not over
    ]).assign(direction=pd.Series(["outbound", "inbound", "inbound"], dtype="str"))
    rules = {"slow": {"between": ["order", "activation"], "min_days": 14}, "wait": {"wait_over_seconds": 300}}
    out = run(moments.with_derived_moments(events, rules=rules))
    assert len(out) == 3 and not out["event_id"].str.contains("#").any()
    assert run(moments.with_derived_moments(events, rules={})).equals(run(engine.table(events)))



def test_derived_wait_moment_skips_the_excepted_reasons(taxonomy):
    events = make_events([
        ("w1", "A", "2024-01-01", "service_contact", "cancellation_request", "phone", True, 900.0),
        ("w2", "A", "2024-01-02", "service_contact", "invoice_unclear", "phone", True, 900.0),
        ("w3", "B", "2024-01-03", "service_contact", None, "phone", True, 900.0),   # no reason: still a long wait
    ])
    rules = {"wait": {"wait_over_seconds": 300, "except_reasons": ["cancellation_request"]}}
    out = run(moments.with_derived_moments(events, rules=rules))
    assert sorted(out.loc[out["event_id"].str.contains("#"), "event_id"]) == ["w2#wait", "w3#wait"]
    # the taxonomy's long hotline wait leaves out waits on cancellation calls (the decision to leave came first)
    assert taxonomy.data["derived_moments"]["long_hotline_wait"]["except_reasons"] == ["cancellation_request"]
    derived = run(moments.with_derived_moments(events, taxonomy))
    assert sorted(derived.loc[derived["event_id"].str.contains("#"), "event_id"]) == ["w2#long_hotline_wait", "w3#long_hotline_wait"]

def test_candidate_moments_counts(taxonomy):
    events = moments.with_derived_moments(make_events(LOG), taxonomy)
    out = moments.candidate_moments(events, taxonomy).set_index("moment")
    assert out.loc["invoice_unclear", ["contacts", "customers"]].tolist() == [3, 2]
    assert out.loc["invoice_unclear", "resolved_rate"] == pytest.approx(2 / 3)
    assert out.loc["complaint_billing", "complaint"] == "billing"
    assert out.loc["slow_provisioning", ["contacts", "customers"]].tolist() == [1, 1]
    assert out.loc["invoice_unclear", "label"] == "Unclear invoice item"
    # the taxonomy's order, moments the log never shows left out (the other classic moments)
    assert out.index.tolist() == ["invoice_unclear", "complaint_billing", "slow_provisioning", "long_hotline_wait"]


def test_candidate_moments_add_other_reasons_seen(taxonomy):
    events = make_events([
        ("x1", "A", "2024-01-01", "service_contact", "tariff_change", "phone", True, None),
        ("x2", "B", "2024-01-02", "service_contact", "tariff_change", "phone", True, None),
        ("x3", "B", "2024-01-03", "service_contact", "address_change", "phone", None, None),
    ])
    out = moments.candidate_moments(events, taxonomy)
    others = out.loc[~out["flagged"]]
    assert others["moment"].tolist() == ["tariff_change", "address_change"]
    assert others["contacts"].tolist() == [2, 1]
    assert others["label"].tolist() == ["Tariff change", "Address / data change"]


def test_handled_contacts_levels():
    events = make_events([
        ("e1", "A", "2024-01-01", "service_contact", "invoice_unclear", "phone", True, 30.0),
        ("e2", "A", "2024-01-05", "service_contact", "invoice_unclear", "phone", True, 59.0),   # repeat within 7 days of e1
        ("e3", "A", "2024-02-01", "service_contact", "invoice_unclear", "email", False, None),
        ("e4", "B", "2024-01-01", "service_contact", "invoice_unclear", "phone", None, 900.0),
        ("e5", "B", "2024-01-02", "service_contact", "tariff_change", "phone", True, 60.0),    # another reason
    ])
    out = run(moments.handled_contacts(events, ["invoice_unclear"])).sort_values("event_id").reset_index(drop=True)
    assert out["event_id"].tolist() == ["e1", "e2", "e3", "e4"]
    assert out["resolution"].tolist() == ["resolved", "resolved", "unresolved", "unknown"]
    assert out["first_contact_resolution"].tolist() == ["no", "yes", "no", "unknown"]
    assert out["wait_band"].tolist() == ["< 1 min", "< 1 min", "not recorded", "≥ 15 min"]
    assert out["moment"].tolist() == ["invoice_unclear"] * 4


# --- exposures and KPI impact ---------------------------------------------------------------------

def test_response_exposures_window_bounds_and_latest_contact():
    events = make_events([
        ("e1", "A", "2024-01-01 12:00", "service_contact", "invoice_unclear", "phone", True, 30.0),
        ("e2", "A", "2024-01-20 12:00", "service_contact", "invoice_unclear", "email", False, None),
        ("e3", "A", "2024-03-05 12:00", "service_contact", "invoice_unclear", "phone", True, 30.0),  # after the response
        ("e4", "B", "2023-12-01 12:00", "service_contact", "invoice_unclear", "phone", True, 30.0),  # 31 days before
    ])
    feedback = pd.DataFrame({"response_id": ["r1", "r2", "r3"], "customer_id": ["A", "B", None],
                             "timestamp": ts("2024-01-31 12:00", "2024-01-01 12:00", "2024-01-02")})
    handled = moments.handled_contacts(events, ["invoice_unclear"])
    out = moments.response_exposures(handled, feedback, window_days=30)
    expected = pd.DataFrame({
        "response_id": ["r1"], "moment": ["invoice_unclear"], "contacts": [2],
        "last_contact": ts("2024-01-20 12:00"), "resolution": ["unresolved"], "first_contact_resolution": ["no"],
        "wait_band": ["not recorded"], "channel": ["email"]}).astype({"response_id": "str", "moment": "str",
                                                                      "resolution": "str", "first_contact_resolution": "str",
                                                                      "wait_band": "str", "channel": "str"})
    assert_frame_equal(out, expected, check_dtype=False)
    # exactly window_days before still counts
    inclusive = moments.response_exposures(handled, feedback.assign(timestamp=ts("2024-01-31 12:00", "2023-12-31 12:00", "2024-01-02")),
                                           window_days=30)
    assert inclusive["response_id"].tolist() == ["r1", "r2"]


EXPOSED_SCORES = [0.0, 3.0, 8.0, 10.0]            # 1 promoter, 1 passive, 2 detractors: NPS -25
UNEXPOSED_SCORES = [9.0, 10.0, 10.0, 7.0, 6.0, 9.0]  # 4 promoters, 1 passive, 1 detractor: NPS +50


def impact_data():
    ids = [f"r{i}" for i in range(10)]
    responses = pd.DataFrame({
        "response_id": ids, "customer_id": [f"C{i}" for i in range(10)],
        "nps": EXPOSED_SCORES + UNEXPOSED_SCORES,
        "segment": ["business", "private", "private", "business", "private", "business", "private", "private", "business", "private"],
    })
    exposures = pd.DataFrame({"response_id": ids[:4], "moment": ["invoice_unclear"] * 4})
    return responses, exposures


def test_kpi_impact_raw_difference_and_interval_exact():
    responses, exposures = impact_data()
    out = moments.kpi_impact(responses, exposures, moments=["invoice_unclear"], kpi="nps", covariates=[], min_n=1)
    row = out.iloc[0]
    assert (row["n_exposed"], row["n_unexposed"]) == (4, 6)
    assert row["exposed_value"] == -25.0 and row["unexposed_value"] == 50.0 and row["difference"] == -75.0
    # adjusted Wald by hand: exposed n'=7, p'=1.75/7, d'=2.75/7; unexposed n'=9, p'=4.75/9, d'=1.75/9
    pe, de_, pu, du = 1.75 / 7, 2.75 / 7, 4.75 / 9, 1.75 / 9
    var = (pe + de_ - (pe - de_) ** 2) / 7 + (pu + du - (pu - du) ** 2) / 9
    centre, half = 100 * ((pe - de_) - (pu - du)), 1.959963984540054 * 100 * math.sqrt(var)
    assert row["ci_low"] == pytest.approx(centre - half, abs=1e-9)
    assert row["ci_high"] == pytest.approx(centre + half, abs=1e-9)
    assert row["ci_low"] == pytest.approx(-125.2352, abs=1e-4) and row["ci_high"] == pytest.approx(29.9971, abs=1e-4)
    # no covariates: OLS on +100/0/-100 equals the plain difference of means, with the t interval of a two-sample test
    assert row["adjusted"] == pytest.approx(-75.0)
    y = np.array([-100, -100, 0, 100, 100, 100, 100, 0, -100, 100], dtype=float)
    ex, un = y[:4], y[4:]
    sp2 = (((ex - ex.mean()) ** 2).sum() + ((un - un.mean()) ** 2).sum()) / 8
    se = math.sqrt(sp2 * (1 / 4 + 1 / 6))
    t = st.t.ppf(0.975, 8)
    assert row["adjusted_low"] == pytest.approx(-75 - t * se) and row["adjusted_high"] == pytest.approx(-75 + t * se)
    assert row["adjusted_p"] == pytest.approx(2 * st.t.sf(75 / se, 8))
    assert row["exposed_share"] == pytest.approx(0.4)


def test_kpi_impact_adjusted_for_segment_matches_least_squares():
    responses, exposures = impact_data()
    out = moments.kpi_impact(responses, exposures, moments=["invoice_unclear", "complaint_billing"], kpi="nps",
                             covariates=["segment"], min_n=1)
    y = moments.kpi_outcome(responses["nps"]).to_numpy()
    x = np.column_stack([np.ones(10), (responses["segment"] == "private").to_numpy(float), np.r_[np.ones(4), np.zeros(6)]])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    cov = resid @ resid / (10 - 3) * np.linalg.inv(x.T @ x)
    se = math.sqrt(cov[2, 2])
    row = out.iloc[0]
    assert row["adjusted"] == pytest.approx(beta[2])
    assert row["adjusted_low"] == pytest.approx(beta[2] - st.t.ppf(0.975, 7) * se)
    assert row["adjusted_p"] == pytest.approx(2 * st.t.sf(abs(beta[2]) / se, 7))
    # the moment nobody met: NaN and never significant; q-value of the single tested moment = its p-value
    assert out.iloc[1]["n_exposed"] == 0 and math.isnan(out.iloc[1]["adjusted"])
    assert row["q_value"] == pytest.approx(row["adjusted_p"])


def test_kpi_impact_csat_and_small_groups():
    responses, exposures = impact_data()
    responses = responses.assign(csat=[1.0, 2.0, 4.0, 5.0, 5.0, 4.0, 4.0, 3.0, 5.0, 4.0])
    out = moments.kpi_impact(responses, exposures, moments=["invoice_unclear"], kpi="csat", covariates=[], min_n=5)
    row = out.iloc[0]
    assert row["exposed_value"] == 50.0 and row["unexposed_value"] == pytest.approx(500 / 6)
    assert row["difference"] == pytest.approx(50 - 500 / 6)
    assert row["small"] and math.isnan(row["q_value"]) and not row["significant"]
    assert row["adjusted"] == pytest.approx(50 - 500 / 6)


def test_kpi_outcome_coding():
    assert moments.kpi_outcome(pd.Series([0, 6, 7, 8, 9, 10, None])).tolist()[:6] == [-100, -100, 0, 0, 100, 100]
    assert moments.kpi_outcome(pd.Series([1, 3, 4, 5]), "csat").tolist() == [0, 0, 100, 100]
    with pytest.raises(moments.MomentsError, match="unknown kpi"):
        moments.kpi_outcome(pd.Series([1]), "nope")


def test_handling_impact_by_resolution():
    responses, _ = impact_data()
    exposures = pd.DataFrame({"response_id": ["r0", "r1", "r2", "r3"], "moment": ["invoice_unclear"] * 4,
                              "resolution": ["unresolved", "unresolved", "resolved", "resolved"],
                              "first_contact_resolution": ["no", "no", "yes", "no"],
                              "wait_band": ["≥ 15 min", "< 1 min", "< 1 min", "not recorded"],
                              "channel": ["phone"] * 4})
    out = moments.handling_impact(responses, exposures, kpi="nps", min_n=1)
    res = out.loc[out["dimension"] == "resolution"].set_index("level")
    assert res.index.tolist() == ["resolved", "unresolved"]
    assert res.loc["unresolved", "value"] == -100.0 and res.loc["resolved", "value"] == 50.0
    assert res.loc["unresolved", "difference"] == -150.0          # against the six unexposed (+50)
    waits = out.loc[out["dimension"] == "wait_band", "level"].tolist()
    assert waits == ["< 1 min", "≥ 15 min", "not recorded"]


# --- churn on customer time ---------------------------------------------------------------------

CUSTOMERS = [
    # A churns 2024-03-01 (60 active days); B signs up 2024-02-01; C is a lead only; D has no dates; E churned before
    ("A", "private", "2023-01-01", "2024-03-01", None, True, "E-Mail, Telefon"),
    ("B", "business", "2024-02-01", None, None, True, "SMS"),
    ("C", "private", None, None, "2024-01-05", True, "email"),
    ("D", "private", None, None, None, False, None),
    ("E", "private", "2022-01-01", "2023-06-01", None, None, "email"),
]
CONTACTS = [
    ("a1", "A", "2024-02-10", "service_contact", "m", "phone", False, None),   # 20 exposed days, churn inside
    ("b1", "B", "2024-03-01", "service_contact", "m", "phone", True, None),    # merged with b2: 49 days
    ("b2", "B", "2024-03-20", "service_contact", "m", "phone", True, None),
    ("b3", "B", "2024-12-20", "service_contact", "m", "phone", True, None),    # clipped at the end: 11 days
    ("b4", "B", "2023-12-20", "service_contact", "m", "phone", True, None),    # before the period
    ("d1", "D", "2024-05-01", "service_contact", "other", "phone", True, None),
]


def contacts_table():
    return make_events(CONTACTS).rename(columns={"contact_reason": "moment"})


def test_churn_cells_exact_customer_days():
    out = moments.churn_cells(contacts_table(), make_customers(CUSTOMERS), start=START, end=END, churn_window_days=30,
                              moments=["m"])
    expected = pd.DataFrame({
        "moment": ["m", "m"], "segment": ["business", "private"], "customers": [1, 2], "customers_exposed": [1, 1],
        "days_exposed": [60.0, 20.0], "churned_exposed": [0, 1], "days_unexposed": [274.0, 405.0], "churned_unexposed": [0, 0],
    }).astype({"moment": "str", "segment": "str"})
    assert_frame_equal(out.sort_values("segment").reset_index(drop=True), expected)


def test_churn_table_rates_lift_and_interval_exact():
    cells = pd.DataFrame({"moment": ["m"], "customers": [100], "customers_exposed": [40], "days_exposed": [1000.0],
                          "churned_exposed": [6], "days_unexposed": [9000.0], "churned_unexposed": [9]})
    row = moments.churn_table(cells, churn_window_days=90, covariates=[], min_n=1).iloc[0]
    assert row["reach"] == 0.4
    assert row["churn_lift"] == pytest.approx((6 / 1000) / (9 / 9000))          # 6.0
    bt = st.binomtest(6, 15, 0.1)
    p_low, p_high = bt.proportion_ci(0.95, method="exact")
    assert row["lift_low"] == pytest.approx(p_low / (1 - p_low) * 9)
    assert row["lift_high"] == pytest.approx(p_high / (1 - p_high) * 9)
    assert row["p_value"] == pytest.approx(bt.pvalue)
    assert row["churn_exposed"] == pytest.approx(100 * (1 - math.exp(-0.006 * 90)))
    assert row["churn_unexposed"] == pytest.approx(100 * (1 - math.exp(-0.001 * 90)))
    se = math.sqrt((90 * math.exp(-0.54)) ** 2 * 6 / 1000**2 + (90 * math.exp(-0.09)) ** 2 * 9 / 9000**2)
    assert row["difference_low"] == pytest.approx(row["churn_difference"] - 100 * 1.959963984540054 * se)
    # one cell without covariates: the Poisson model's rate ratio is the crude one
    assert row["adjusted_lift"] == pytest.approx(6.0)


def test_rate_ratio_edge_cases():
    out = moments.rate_ratio([0, 3, 2], [100.0, 0.0, 100.0], [5, 1, 0], [100.0, 50.0, 100.0])
    assert out.loc[0, "ratio"] == 0.0 and out.loc[0, "ratio_low"] == 0.0
    assert out.loc[1].isna().all()                          # no exposed time
    assert math.isnan(out.loc[2, "ratio"]) and math.isnan(out.loc[2, "ratio_high"])


def test_churn_impact_and_handling_churn():
    customers = make_customers(CUSTOMERS)
    handled = moments.handled_contacts(make_events(CONTACTS), ["m"])
    out = moments.churn_impact(handled, customers, start=START, end=END, churn_window_days=30, moments=["m"], min_n=1)
    row = out.iloc[0]
    assert (row["customers"], row["customers_exposed"], row["churned_exposed"]) == (3, 2, 1)
    assert row["days_exposed"] == 80.0 and row["days_unexposed"] == 679.0 and row["reach"] == pytest.approx(2 / 3)
    by = moments.handling_churn(handled, customers, start=START, end=END, churn_window_days=30, moments=["m"],
                                dimensions=["resolution"], min_n=1)
    assert by["level"].tolist() == ["resolved", "unresolved"]
    assert by["days_exposed"].tolist() == [60.0, 20.0] and by["churned_exposed"].tolist() == [0, 1]


def test_complaints_after_waits():
    events = make_events([
        ("w1", "A", "2024-01-01", "service_contact", "invoice_unclear", "phone", True, 400.0),
        ("w2", "A", "2024-01-05", "complaint", "complaint_hotline", "email", True, None),       # 4 days after w1
        ("w3", "B", "2024-01-01", "service_contact", "invoice_unclear", "phone", True, 30.0),
        ("w4", "B", "2024-02-01", "complaint", "complaint_hotline", "phone", True, 50.0),       # 31 days: too late
        ("w5", "C", "2024-01-01", "service_contact", "tariff_change", "phone", True, 350.0),
    ])
    out = moments.complaints_after_waits(events, followup_days=14)
    assert out["wait_band"].tolist() == ["< 1 min", "1–5 min", "5–15 min", "≥ 15 min"]
    assert out["contacts"].tolist() == [1, 0, 2, 0] and out["followed"].tolist() == [0, 0, 1, 0]
    assert out.loc[2, "rate"] == 0.5
    low, high = metrics.wilson_interval(1, 2)
    assert (out.loc[2, "ci_low"], out.loc[2, "ci_high"]) == pytest.approx((low, high))


# --- u-chart and complaint rates ----------------------------------------------------------------

def test_u_chart_limits_exact():
    frame = pd.DataFrame({"category": ["x"] * 3, "complaints": [2, 4, 6], "units": [1.0, 2.0, 3.0]})
    out = moments.u_chart(frame)
    assert out["center"].tolist() == [2.0, 2.0, 2.0]
    assert out["ucl"].tolist() == pytest.approx([2 + 3 * math.sqrt(2 / n) for n in (1, 2, 3)])
    assert out["lcl"].tolist() == [0.0, 0.0, 0.0] and not out["out_of_control"].any()


def test_u_chart_revises_the_centre_without_the_outlier():
    frame = pd.DataFrame({"category": ["x"] * 5, "complaints": [1, 1, 1, 1, 10], "units": [1.0] * 5})
    plain = moments.u_chart(frame, revise=False)
    assert plain["center"].iloc[0] == pytest.approx(2.8)
    assert plain["out_of_control"].tolist() == [False] * 4 + [True]
    revised = moments.u_chart(frame)
    assert revised["center"].iloc[0] == 1.0 and revised["ucl"].iloc[0] == 4.0
    assert revised["out_of_control"].tolist() == [False] * 4 + [True] and revised["signal"].iloc[4] == "above"


def test_u_chart_below_the_lower_limit_and_groups_apart():
    frame = pd.DataFrame({"category": ["x"] * 5 + ["y"] * 2, "complaints": [100, 100, 100, 100, 40, 0, 0],
                          "units": [1.0] * 5 + [2.0, 0.0]})
    out = moments.u_chart(frame)
    x = out.loc[out["category"] == "x"]
    assert x["center"].iloc[0] == 100.0 and x["lcl"].iloc[0] == pytest.approx(70.0)
    assert x["signal"].tolist() == [""] * 4 + ["below"]
    y = out.loc[out["category"] == "y"]
    assert y["center"].iloc[0] == 0.0 and math.isnan(y["rate"].iloc[1]) and not y["out_of_control"].any()


def test_laney_u_chart_widens_the_limits_by_the_moving_range_of_z():
    # one group, units 1: centre 6, se sqrt(6); z = -+2/sqrt(6) alternating, moving range 4/sqrt(6)
    frame = pd.DataFrame({"category": ["x"] * 4, "complaints": [4, 8, 4, 8], "units": [1.0] * 4})
    out = moments.u_chart(frame, overdispersion=True)
    sigma_z = (4 / math.sqrt(6)) / 1.128
    assert out["dispersion"].tolist() == pytest.approx([sigma_z] * 4)
    assert out["ucl"].tolist() == pytest.approx([6 + 3 * sigma_z * math.sqrt(6)] * 4)
    assert out["lcl"].tolist() == [0.0] * 4
    assert "dispersion" not in moments.u_chart(frame).columns
    # Poisson-like or flat data: never narrower than the plain u-chart
    flat = moments.u_chart(frame.assign(complaints=6), overdispersion=True)
    assert flat["dispersion"].tolist() == [1.0] * 4
    assert flat["ucl"].tolist() == pytest.approx(moments.u_chart(frame.assign(complaints=6))["ucl"].tolist())


def test_laney_u_chart_stops_flagging_ordinary_months_of_an_overdispersed_process():
    # large denominators, swings of +-40% month to month: the plain chart flags most months
    counts = [100, 200, 120, 250, 90, 220, 110, 240]
    frame = pd.DataFrame({"category": ["x"] * 8 + ["y"] * 8,
                          "complaints": counts + [50, 52, 49, 51, 150, 50, 48, 51], "units": [1.0] * 16})
    plain, laney = moments.u_chart(frame), moments.u_chart(frame, overdispersion=True)
    x_plain, x_laney = plain.loc[plain["category"] == "x"], laney.loc[laney["category"] == "x"]
    assert x_plain["out_of_control"].sum() >= 4 and not x_laney["out_of_control"].any()
    # the groups are apart: y's single spike is still flagged, and only it
    y = laney.loc[laney["category"] == "y"]
    assert y["out_of_control"].tolist() == [False] * 4 + [True] + [False] * 3 and y["signal"].iloc[4] == "above"


def test_describe_complaints_names_the_months():
    rates = pd.DataFrame({"category_label": ["Billing"] * 3 + ["Hotline"] * 6, "month": [f"2024-0{i}" for i in range(1, 4)]
                          + [f"2024-0{i}" for i in range(1, 7)],
                          "rate_per_1000": [4.0, 12.0, 4.0, 9.0, 1.0, 9.0, 1.0, 9.0, 1.0], "center_per_1000": [4.0] * 3 + [5.0] * 6,
                          "out_of_control": [False, True, False] + [True] * 6,
                          "signal": ["", "above", ""] + ["above", "below"] * 3})
    text = moments.describe_complaints(rates)
    assert "**Billing** in Feb 2024 (12.0 per 1,000 against a centre of 4.0, above the limits)" in text
    assert "**Hotline** is not a stable process: 6 of 6 months" in text
    assert moments.describe_complaints(rates.assign(out_of_control=False)).startswith("All complaint rates stay within")
    german = moments.describe_complaints(rates, lang="de")
    assert german.startswith("Außer Kontrolle: **Billing** im Feb. 2024 (12,0 je 1.000 gegenüber einer Mittellinie von 4,0, "
                             "über den Grenzen)") or "12,0 je 1.000 gegenüber einer Mittellinie von 4,0, über den Grenzen" in german
    assert "**Hotline** ist kein stabiler Prozess: 6 von 6 Monaten" in german


def test_complaint_rates_per_category_and_month(taxonomy):
    customers = make_customers([
        ("A", "private", "2023-01-01", "2024-02-10", None, True, None),   # active Jan and Feb
        ("B", "private", "2024-02-01", None, None, True, None),           # from Feb
        ("C", "private", "2023-05-01", None, None, True, None),
        ("L", "private", None, None, "2024-01-01", True, None),           # lead: never active
    ])
    events = make_events([
        ("c1", "A", "2024-01-15", "complaint", "complaint_billing", "phone", True, None),
        ("c2", "C", "2024-02-15", "complaint", "complaint_billing", "phone", True, None),
        ("c3", "C", "2024-02-16", "complaint", "complaint_hotline", "phone", True, None),
        ("c4", "B", "2024-03-15", "service_contact", "invoice_unclear", "phone", True, None),
    ])
    out = moments.complaint_rates(events, customers, taxonomy)
    assert out["category"].unique().tolist() == list(taxonomy.data["complaint_categories"])
    billing = out.loc[out["category"] == "billing"].reset_index(drop=True)
    assert billing["month"].tolist() == ["2024-01", "2024-02", "2024-03"]
    assert billing["active"].tolist() == [2, 3, 2]
    assert billing["complaints"].tolist() == [1, 1, 0]
    assert billing["rate_per_1000"].tolist() == pytest.approx([500.0, 1000 / 3, 0.0])
    assert billing["center_per_1000"].iloc[0] == pytest.approx(2000 / 7)
    assert out.loc[out["category"] == "hotline", "complaints"].tolist() == [0, 1, 0]


# --- drivers ------------------------------------------------------------------------------------

def test_relative_weights_orthogonal_drivers_are_squared_correlations():
    data = pd.DataFrame({"x1": [1.0, -1.0, 1.0, -1.0], "x2": [1.0, 1.0, -1.0, -1.0]})
    data = data.assign(y=2 * data["x1"] + data["x2"])
    out = moments.relative_weights(data, "y", ["x1", "x2"])
    assert out["weight"].tolist() == pytest.approx([0.8, 0.2])
    assert out["share"].tolist() == pytest.approx([80.0, 20.0])
    assert out["r2"].iloc[0] == pytest.approx(1.0) and out["n"].iloc[0] == 4
    assert out["mean"].tolist() == [0.0, 0.0]


def test_relative_weights_sum_to_the_r_squared_of_ols():
    rng = np.random.default_rng(3)
    x1 = rng.normal(size=200)
    x2 = 0.6 * x1 + rng.normal(size=200)
    x3 = rng.normal(size=200)
    data = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "y": x1 + 0.5 * x2 + rng.normal(size=200)})
    out = moments.relative_weights(data, "y", ["x1", "x2", "x3"])
    x = np.column_stack([np.ones(200), x1, x2, x3])
    beta, *_ = np.linalg.lstsq(x, data["y"], rcond=None)
    r2 = 1 - ((data["y"] - x @ beta) ** 2).sum() / ((data["y"] - data["y"].mean()) ** 2).sum()
    assert out["weight"].sum() == pytest.approx(r2) and out["r2"].iloc[0] == pytest.approx(r2)
    assert out.sort_values("weight", ascending=False)["driver"].tolist()[0] == "x1"
    with pytest.raises(moments.MomentsError, match="do not vary"):
        moments.relative_weights(data.assign(x3=1.0), "y", ["x1", "x3"])


def test_touchpoint_ratings_complete_cases():
    feedback = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "B", "C", "C", "C"],
        "touchpoint": [None, "complaint", "activation", None, "complaint", None, "complaint", "activation"],
        "nps": [3.0, None, None, 9.0, None, 7.0, None, None],
        "csat": [None, 2.0, 4.0, None, 5.0, None, 3.0, 5.0],
    })
    out = moments.touchpoint_ratings(feedback, min_n=2)
    assert out["customer_id"].tolist() == ["A", "C"]
    assert out.columns.tolist() == ["customer_id", "nps", "activation", "complaint"]
    assert out["complaint"].tolist() == [2.0, 3.0]
    one = moments.touchpoint_ratings(feedback, min_n=3)          # a single touchpoint is no driver analysis
    assert one.columns.tolist() == ["customer_id", "nps", "complaint"] and one.empty


def test_touchpoint_ratings_drop_the_rarest_touchpoint_until_enough_overlap():
    feedback = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "B", "B", "C", "C", "D", "D"],
        "touchpoint": [None, "complaint", "order", None, "complaint", "activation", None, "complaint", None, "order"],
        "nps": [3.0, None, None, 9.0, None, None, 7.0, None, 8.0, None],
        "csat": [None, 2.0, 4.0, None, 5.0, 1.0, None, 3.0, None, 4.0],
    })
    out = moments.touchpoint_ratings(feedback, min_n=1)          # 3 touchpoints: nobody rated all; order has 2 raters
    assert out.columns.tolist() == ["customer_id", "nps", "complaint", "order"]
    assert out["customer_id"].tolist() == ["A"]


# --- ranking ------------------------------------------------------------------------------------

def test_rank_moments_priority_and_magic():
    candidates = pd.DataFrame({"moment": ["a", "b", "c", "d", "e"], "label": ["A", "B", "C", "D", "E"],
                               "classic": [True, True, False, False, False]})
    nps = pd.DataFrame({"moment": ["a", "b", "c", "d", "e"], "kpi": "nps", "n_exposed": [200, 150, 300, 10, 400],
                        "exposed_share": [0.05, 0.2, 0.1, 0.01, 0.02], "difference": [-30.0, -5.0, 12.0, -50.0, -20.0],
                        "ci_low": [-40.0, -10.0, 5.0, -90.0, -30.0], "ci_high": [-20.0, 0.0, 19.0, -10.0, -10.0],
                        "adjusted": [-28.0, -4.0, 10.0, -45.0, -20.0], "adjusted_low": [-38.0, -9.0, 3.0, -85.0, -30.0],
                        "adjusted_high": [-18.0, 1.0, 17.0, -5.0, -10.0], "small": [False, False, False, True, False],
                        "significant": [True, False, True, False, True]})
    churn = pd.DataFrame({"moment": ["a", "b", "c", "d", "e"], "reach": [0.1, 0.3, 0.2, 0.02, 0.05],
                          "churn_lift": [2.0, 1.1, 0.9, 3.0, 1.0], "lift_low": [1.5, 0.9, 0.7, 1.0, 0.8],
                          "lift_high": [2.6, 1.3, 1.1, 9.0, 1.2], "churn_difference": [3.0, 0.2, -0.3, 5.0, 0.0],
                          "significant": [True, False, False, False, False]})
    out = moments.rank_moments(candidates, nps, churn)
    # a: 1.4 points at stake; e: 0.4; b is not significant (0.8 points as estimated, priority 0); c gains; d is small
    assert out["moment"].tolist() == ["a", "e", "b", "c", "d"]
    assert out["points_at_stake"].tolist()[:4] == pytest.approx([1.4, 0.4, 0.8, -1.0])
    assert out["priority"].tolist()[:4] == pytest.approx([1.4, 0.4, 0.0, -1.0]) and math.isnan(out["priority"].iloc[4])
    assert out["rank"].tolist()[:4] == [1, 2, 3, 4] and out["rank"].isna().tolist() == [False] * 4 + [True]
    assert out["magic"].tolist() == [False, False, False, True, False]
    assert out.loc[0, ["impact", "ci_low", "ci_high", "impact_raw"]].tolist() == [-28.0, -38.0, -18.0, -30.0]
    assert (out["kpi"] == "nps").all()
    record = moments.ranking_record(out)
    assert record.loc[0, ["nps_impact", "nps_impact_raw", "rank"]].tolist() == [-28.0, -30.0, 1]
    assert out.loc[0, "churn_significant"] and out.loc[0, "reach"] == 0.1
    text = moments.describe_ranking(out)
    assert "**A**" in text and "**E**" in text and "**B**" not in text and "**C** (+10 points)" in text



def test_describe_ranking_names_churn_moments_without_nps_at_stake():
    ranking = pd.DataFrame({
        "moment": ["a", "b", "c", "x"], "label": ["A", "B", "C", "X"], "kpi": "nps", "impact": [-20.0, -1.0, 2.0, 3.0],
        "priority": [1.0, 0.0, 0.0, 0.0], "churn_lift": [3.0, 2.5, 0.5, 90.0], "churn_significant": [True, True, True, True],
        "magic": [False, False, False, False]})
    text = moments.describe_ranking(ranking, churn_exclude=["x"])
    # a has NPS at stake (named first), c's churn falls, x is part of leaving: only b in the churn sentence
    assert text.endswith(" Without NPS at stake, churn still rises significantly after **B** (×2.5): "
                         "a churn risk the NPS does not show.")
    assert "**X**" not in text and "**C**" not in text
    assert "Without NPS at stake" not in moments.describe_ranking(ranking.assign(churn_significant=False))


def test_interval_text():
    out = moments.interval_text(pd.Series([-28.446, 1.0, np.nan, 2.0], index=[5, 6, 7, 8]),
                                [-33.683, 0.5, 1.0, np.nan], [-23.21, 1.5, 2.0, np.nan])
    assert out.index.tolist() == [5, 6, 7, 8]
    assert out.tolist() == ["\u221228.4 (\u221233.7 to \u221223.2)", "+1.0 (+0.5 to +1.5)", "–", "+2.0"]
    assert moments.interval_text([2.345], [2.0], [3.0], decimals=2, sign=False).tolist() == ["2.35 (2.00 to 3.00)"]
    assert moments.interval_text([], [], []).tolist() == []


def test_ranking_table_marks_moments_that_are_part_of_leaving():
    ranking = pd.DataFrame({"rank": [1.0, np.nan], "moment": ["invoice_unclear", "cancellation_request"],
                            "label": ["Unclear invoice", "Cancellation"], "classic": [True, False], "reach": [0.25, 0.15],
                            "kpi": "nps", "impact": [-28.4, 5.3], "ci_low": [-33.7, -3.1], "ci_high": [-23.2, 13.7],
                            "impact_raw": [-28.71, 5.4], "churn_lift": [1.7, 592.0], "churn_lift_low": [1.2, 545.2],
                            "churn_lift_high": [2.4, 643.2], "churn_significant": [True, True],
                            "points_at_stake": [1.754, -0.12], "priority": [1.754, 0.0], "magic": [False, False],
                            "small": [False, False]})
    out = moments.ranking_table(ranking, churn_exclude=["cancellation_request"])
    assert out["churn ratio (95% interval)"].tolist() == ["1.70 (1.20 to 2.40) *", "part of leaving"]
    assert out["NPS: adjusted difference (95% interval)"].iloc[0] == "\u221228.4 (\u221233.7 to \u221223.2)"
    assert out["reach (share of customers)"].tolist() == ["25.0%", "15.0%"]
    assert out["NPS points at stake"].tolist() == ["1.75", "-0.12"] and out["rank"].tolist() == ["1", "–"]
    assert out["classic"].tolist() == ["yes", "no"] and out["NPS: unadjusted"].tolist() == ["-28.7", "+5.4"]
    assert moments.ranking_table(ranking)["churn ratio (95% interval)"].iloc[1] == "592.00 (545.20 to 643.20) *"
    assert moments.ranking_table(ranking, lang="de")["Rang"].tolist() == ["1", "–"]


def test_handling_table_one_row_per_moment_levels_in_order():
    handling = pd.DataFrame({
        "moment": ["m1", "m1", "m1", "m2", "m2", "m1"],
        "dimension": ["resolution", "resolution", "resolution", "resolution", "resolution", "channel"],
        "level": ["unknown", "unresolved", "resolved", "resolved", "unresolved", "phone"],
        "n": [5, 40, 1200, 80, 12, 7], "value": [10.0, -20.4, 3.6, -1.0, np.nan, 0.0],
        "small": [True, False, False, False, True, True]})
    out = moments.handling_table(handling, "resolution", labels={"m1": "Invoice"})
    expected = pd.DataFrame({
        "moment": pd.Series(["Invoice", "m2"], dtype="str"),
        "resolved": pd.Series(["+4 (n = 1,200)", "\u22121 (n = 80)"], dtype="str"),
        "unresolved": pd.Series(["\u221220 (n = 40)", "– (n = 12)*"], dtype="str"),
        "unknown": pd.Series(["+10 (n = 5)*", ""], dtype="str"),
    })
    assert_frame_equal(out, expected)
    assert moments.handling_table(handling, "wait_band").columns.tolist() == ["moment"]
    assert_frame_equal(moments.handling_table(handling, "resolution", labels=pd.Series({"m1": "Invoice"})), expected)
    with pytest.raises(moments.MomentsError, match=r"handling impact: missing column\(s\) \['small'\]"):
        moments.handling_table(handling.drop(columns=["small"]), "resolution")

# --- contact list and consent --------------------------------------------------------------------

def test_parse_and_consented_channels(taxonomy):
    customers = make_customers(CUSTOMERS)
    out = moments.consented_channels(customers, taxonomy)
    assert out[["customer_id", "channel"]].values.tolist() == [["A", "email"], ["A", "phone"], ["B", "sms"], ["C", "email"]]
    log = pd.DataFrame({
        "customer_id": ["A", "A", "B", "B", "C", "D"],
        "timestamp": ts("2024-01-01", "2024-02-01", "2024-03-01", "2024-03-01", "2024-01-01", "2024-01-01"),
        "channel": ["email", "email", "sms", "sms", None, None],
        "consent": [False, True, True, False, False, True],
    })
    # A: opt-out then opt-in (latest wins) -> email stays; B: opt-in and opt-out at the same time -> opt-out wins;
    # C: opt-out for every channel; D: an opt-in without a channel opts in to nothing
    out = moments.consented_channels(customers, taxonomy, consent_log=log)
    assert out.values.tolist() == [["A", "email", "consent log"], ["A", "phone", "crm"]]


CL_CUSTOMERS = [
    ("A", "private", "2023-01-01", None, None, True, "E-Mail, Telefon"),
    ("B", "private", "2023-01-01", None, None, False, "email"),          # consent flag false: no consent
    ("C", "private", "2023-01-01", "2024-03-01", None, True, "email"),   # churned before as_of
    ("D", "private", "2023-01-01", None, None, True, "Brief"),
    ("E", "private", "2023-01-01", None, None, True, "SMS"),
]


def cl_inputs():
    recent = pd.DataFrame({
        "event_id": ["a1", "a2", "b1", "c1", "d1", "e1", "x1"],
        "customer_id": ["A", "A", "B", "C", "D", "E", "X"],
        "timestamp": ts("2024-03-10", "2024-03-12", "2024-03-10", "2024-02-20", "2024-03-05", "2024-03-06", "2024-03-07"),
        "moment": ["invoice_unclear", "complaint_hotline", "invoice_unclear", "invoice_unclear", "complaint_billing",
                   "invoice_unclear", "invoice_unclear"],
        "channel": ["phone", "email", "phone", "phone", "phone", "phone", "phone"],
        "resolved": pd.array([False, True, False, False, True, True, False], dtype="boolean"),
    })
    feedback = pd.DataFrame({"customer_id": ["D", "E", "E"], "timestamp": ts("2024-03-06", "2024-02-01", "2024-03-07"),
                             "nps": [2.0, 3.0, 9.0]})
    value = pd.DataFrame({"customer_id": ["A", "B", "D"], "value": [100.0, 500.0, 900.0]})
    return recent, feedback, value


def test_contact_list_exact(taxonomy):
    recent, feedback, value = cl_inputs()
    out = moments.contact_list(recent, make_customers(CL_CUSTOMERS), feedback, taxonomy, as_of="2024-03-15",
                               recent_days=30, value=value)
    # E: resolved and latest answer a promoter -> not a candidate
    assert out["customer_id"].tolist() == ["D", "A", "B", "X", "C"]
    assert out["status"].tolist() == ["included", "included", "excluded_no_consent", "excluded_other", "excluded_other"]
    assert out["exclusion_reason"].tolist()[2:] == ["no explicit consent for a direct channel", "unknown customer", "churned"]
    d, a = out.iloc[0], out.iloc[1]
    assert (d["channel"], d["moment"], d["detractor"], d["latest_nps"], d["value"]) == ("letter", "complaint_billing", True, 2.0, 900.0)
    # A: the unresolved invoice contact is shown (not the later resolved one) and its phone channel is consented
    assert (a["moment"], a["channel"], a["consent_basis"], bool(a["resolved"])) == ("invoice_unclear", "phone", "crm", False)
    assert a["topic"] == taxonomy.data["callback_topics"]["invoice_unclear"]["en"]
    assert pd.isna(out.loc[2, "channel"])
    counts = moments.contact_list_counts(out)
    assert counts == {"included": 2, "excluded_no_consent": 1, "excluded_other": 2, "candidates": 5,
                      "exclusion_reasons": {"no explicit consent for a direct channel": 1, "unknown customer": 1, "churned": 1}}
    text = moments.describe_contact_list(counts, recent_days=30, consent_log=False)
    assert "**2**" in text and "1 were left out for lack of consent" in text


def test_rows_for_customers_edge_cases():
    customers = make_customers(CL_CUSTOMERS)
    empty = moments.rows_for_customers(customers, cl_inputs()[0].iloc[0:0])
    assert empty.empty and list(empty.columns) == list(customers.columns)
    with pytest.raises(moments.MomentsError, match=r"contacts: missing column\(s\) \['customer_id'\]"):
        moments.rows_for_customers(customers, pd.DataFrame({"id": ["A"]}))


def test_contact_list_needs_only_the_customers_of_the_recent_moments(taxonomy):
    """The notebook reads only those customers (and their orders) from the engine: the same list."""
    recent, feedback, value = cl_inputs()
    customers = make_customers([*CL_CUSTOMERS, ("F", "private", "2023-01-01", None, None, True, "email")])
    subset = moments.rows_for_customers(customers, recent)
    assert subset["customer_id"].tolist() == ["A", "B", "C", "D", "E"]             # X is unknown, F had no moment
    args = dict(as_of="2024-03-15", recent_days=30, value=value)
    assert_frame_equal(moments.contact_list(recent, subset, feedback, taxonomy, **args),
                       moments.contact_list(recent, customers, feedback, taxonomy, **args))


def test_survey_responses_join_the_covariates_on_the_engine():
    feedback = pd.DataFrame({"response_id": ["r2", "r1", "r3"], "customer_id": ["A", None, "Z"], "nps": [9.0, 3.0, 5.0]})
    out = moments.survey_responses(feedback, make_customers(CL_CUSTOMERS))
    expected = pd.DataFrame({"response_id": ["r1", "r2", "r3"], "customer_id": [None, "A", "Z"], "nps": [3.0, 9.0, 5.0],
                             "segment": [None, "private", None]}).astype({"response_id": "str", "customer_id": "str",
                                                                          "segment": "str"})
    assert_frame_equal(out.loc[:, ["response_id", "customer_id", "nps", "segment"]], expected)
    assert "csat_max" in out.columns and out["csat_max"].isna().all()     # an absent canonical column reads as missing
    with pytest.raises(moments.MomentsError, match=r"customers: missing column\(s\) \['region'\]"):
        moments.survey_responses(feedback, make_customers(CL_CUSTOMERS), covariates=["region"])


def test_contact_list_export_adds_only_the_crm_number(taxonomy, tmp_path):
    recent, feedback, value = cl_inputs()
    cl = moments.contact_list(recent, make_customers(CL_CUSTOMERS), feedback, taxonomy, as_of="2024-03-15",
                              recent_days=30, value=value)
    reid = pd.DataFrame({"customer_id": ["A", "B", "D"], "customer_ref": ["K1", "K2", "K4"],
                         "pii_name": ["Anna", "Bert", "Dora"], "pii_email": ["a@x.de", "b@x.de", "d@x.de"],
                         "pii_phone": ["0170", "0171", "0172"]})
    out = moments.contact_list_export(cl, reid)
    assert out.columns.tolist() == ["customer_ref", "customer_id", "channel", "moment_label", "topic", "moment_at",
                                    "resolved", "latest_nps", "value"]
    assert out["customer_ref"].tolist() == ["K4", "K1"]
    path = report.write_contact_list(out, tmp_path)
    assert path == tmp_path / "contact_list.csv"
    text = path.read_text(encoding="utf-8")
    assert "K4" in text and "Dora" not in text and "d@x.de" not in text and "0172" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["contact_list.csv"]
    with pytest.raises(moments.MomentsError, match="no customer_ref for 1"):
        moments.contact_list_export(cl, reid.loc[reid["customer_id"] != "A"])


# property: whatever the data, nobody without explicit, unwithdrawn consent for the chosen channel is included
CHANNEL_SPELLINGS = ["E-Mail", "email", "Telefon", "phone", "SMS", "Brief", "Chat", "Fax", "", "web"]
IDS = [f"C{i}" for i in range(6)]
DAYS = pd.date_range("2024-01-01", periods=40, freq="D", tz="UTC")


@hs.composite
def consent_world(draw):
    n = draw(hs.integers(1, 6))
    ids = IDS[:n]
    flags = draw(hs.lists(hs.sampled_from([True, True, False, None]), min_size=n, max_size=n))
    lists = draw(hs.lists(hs.lists(hs.sampled_from(CHANNEL_SPELLINGS), max_size=3).map(", ".join) | hs.none(),
                          min_size=n, max_size=n))
    churn = draw(hs.lists(hs.sampled_from([None, "2024-01-15", "2024-03-01"]), min_size=n, max_size=n))
    customers = make_customers([(c, "private", "2023-01-01", ch, None, f, lst)
                                for c, f, lst, ch in zip(ids, flags, lists, churn)])
    pool = ids + ["Z"]
    k = draw(hs.integers(0, 12))
    recent = pd.DataFrame({
        "event_id": [f"e{i}" for i in range(k)],
        "customer_id": draw(hs.lists(hs.sampled_from(pool), min_size=k, max_size=k)),
        "timestamp": DAYS[draw(hs.lists(hs.integers(0, 39), min_size=k, max_size=k))],
        "moment": draw(hs.lists(hs.sampled_from(["invoice_unclear", "complaint_billing"]), min_size=k, max_size=k)),
        "channel": draw(hs.lists(hs.sampled_from(["phone", "email", "letter", "chat"]), min_size=k, max_size=k)),
        "resolved": pd.array(draw(hs.lists(hs.sampled_from([True, False, None]), min_size=k, max_size=k)), dtype="boolean"),
    })
    m = draw(hs.integers(0, 8))
    feedback = pd.DataFrame({"customer_id": draw(hs.lists(hs.sampled_from(pool), min_size=m, max_size=m)),
                             "timestamp": DAYS[draw(hs.lists(hs.integers(0, 39), min_size=m, max_size=m))],
                             "nps": draw(hs.lists(hs.integers(0, 10), min_size=m, max_size=m))}).astype({"nps": "float64"})
    j = draw(hs.integers(0, 10))
    log = pd.DataFrame({"customer_id": draw(hs.lists(hs.sampled_from(pool), min_size=j, max_size=j)),
                        "timestamp": DAYS[draw(hs.lists(hs.integers(0, 5), min_size=j, max_size=j))],
                        "channel": draw(hs.lists(hs.sampled_from(["email", "phone", "sms", "letter", None, "Telefon"]),
                                                 min_size=j, max_size=j)),
                        "consent": draw(hs.lists(hs.booleans(), min_size=j, max_size=j))})
    return customers, recent, feedback, log


def oracle_consent(customers, log, taxonomy, customer, channel) -> bool:
    """Independent statement of the rule: the latest log entry for the channel (or for every channel,
    opt-outs only) decides, an opt-out wins a tie; without one the CRM opt-in for that channel."""
    aliases = taxonomy.aliases("channels")
    entries = []
    for row in log.itertuples():
        if row.customer_id != customer:
            continue
        ch = None if row.channel is None or pd.isna(row.channel) else aliases.get(config.fold(row.channel))
        if ch == channel or (ch is None and not row.consent):
            entries.append((row.timestamp, 0 if row.consent else 1, row.consent))
    if entries:
        return max(entries)[2]
    crm = customers.loc[customers["customer_id"] == customer].iloc[0]
    if crm["contact_consent"] is pd.NA or not bool(crm["contact_consent"]):
        return False
    listed = [] if pd.isna(crm["consent_channels"]) else str(crm["consent_channels"]).split(",")
    return channel in {aliases.get(config.fold(s.strip())) for s in listed}


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=consent_world(), use_log=hs.booleans())
def test_property_nobody_without_consent_is_on_the_contact_list(taxonomy, world, use_log):
    customers, recent, feedback, log = world
    log = log if use_log else log.iloc[0:0]
    out = moments.contact_list(recent, customers, feedback, taxonomy, as_of="2024-02-09", recent_days=40,
                               consent_log=log if use_log else None)
    included = out.loc[out["status"] == "included"]
    for row in included.itertuples():
        assert row.channel in moments.DIRECT_CHANNELS
        assert oracle_consent(customers, log, taxonomy, row.customer_id, row.channel), (row.customer_id, row.channel)
    no_consent = out.loc[out["status"] == "excluded_no_consent", "customer_id"]
    for customer in no_consent:
        assert not any(oracle_consent(customers, log, taxonomy, customer, ch) for ch in moments.DIRECT_CHANNELS)
    counts = moments.contact_list_counts(out)
    assert counts["included"] + counts["excluded_no_consent"] + counts["excluded_other"] == counts["candidates"]
    assert out["customer_id"].is_unique


# --- the engine: the same Ibis path as journey -------------------------------------------------------

def test_work_over_events_runs_on_the_journey_engine(taxonomy, tmp_path):
    events = make_events(LOG + [row for row in CONTACTS])
    path = tmp_path / "events.parquet"
    events.to_parquet(path, index=False)
    con = engine.connect("duckdb", threads=1)
    on_disk = engine.read_table(con, path)
    derived = moments.with_derived_moments(on_disk, taxonomy)
    handled = moments.handled_contacts(derived, ["invoice_unclear", "slow_provisioning", "m"])
    assert isinstance(handled, ibis.expr.types.Table) and ibis.get_backend(handled) is con
    assert journey.engine is moments.candidates.engine           # one engine module for both stages
    in_memory = moments.handled_contacts(moments.with_derived_moments(events, taxonomy),
                                         ["invoice_unclear", "slow_provisioning", "m"])
    from_disk, from_memory = run(handled), run(in_memory)
    order = list(from_disk.columns)                               # a total order: rows can share an event_id
    assert_frame_equal(from_disk.sort_values(order).reset_index(drop=True),
                       from_memory.sort_values(order).reset_index(drop=True))
    customers_path = tmp_path / "customers.parquet"
    make_customers(CUSTOMERS).to_parquet(customers_path, index=False)
    cells_disk = moments.churn_cells(handled, engine.read_table(con, customers_path), start=START, end=END,
                                     churn_window_days=30, moments=["m"])
    cells_mem = moments.churn_cells(in_memory, make_customers(CUSTOMERS), start=START, end=END, churn_window_days=30,
                                    moments=["m"])
    assert_frame_equal(cells_disk, cells_mem)
    rates = moments.complaint_rates(derived, engine.read_table(con, customers_path), taxonomy, start=START, end="2024-03-31")
    assert rates["complaints"].sum() == 1


# --- moments dated when experienced, like with like, words that warn --------------------------------

DELIVERY = [
    # A: delivered before the promised day; B: delivered 3 days late; C: never delivered; D: promise after the log ends;
    # E: the first order on time, the second never delivered (its earlier delivery belongs to the first order)
    ("a1", "A", "2024-01-01", "order", None, "web", None, None),
    ("a2", "A", "2024-01-05", "delivery_promised", None, "system", None, None),
    ("a3", "A", "2024-01-04", "delivery", None, "system", None, None),
    ("b1", "B", "2024-01-01", "order", None, "web", None, None),
    ("b2", "B", "2024-01-05", "delivery_promised", None, "system", None, None),
    ("b3", "B", "2024-01-08", "delivery", None, "system", None, None),
    ("c1", "C", "2024-01-01", "order", None, "web", None, None),
    ("c2", "C", "2024-01-05", "delivery_promised", None, "system", None, None),
    ("d1", "D", "2024-01-20", "order", None, "web", None, None),
    ("d2", "D", "2024-03-01", "delivery_promised", None, "system", None, None),
    ("e1", "E", "2024-01-01", "order", None, "web", None, None),
    ("e2", "E", "2024-01-03", "delivery_promised", None, "system", None, None),
    ("e3", "E", "2024-01-02", "delivery", None, "system", None, None),
    ("e4", "E", "2024-01-10", "order", None, "web", None, None),
    ("e5", "E", "2024-01-12", "delivery_promised", None, "system", None, None),
    ("z1", "Z", "2024-02-01", "service_contact", "invoice_unclear", "phone", True, None),   # the log ends here
]
LATE = {"missed": {"due": "delivery_promised", "done": "delivery", "since": "order"}}


def derived_rows(events, rules) -> pd.DataFrame:
    out = run(moments.with_derived_moments(events, rules=rules))
    return (out.loc[out["event_id"].str.contains("#"), ["event_id", "timestamp", "contact_reason"]]
            .sort_values("event_id").reset_index(drop=True))


def test_missed_promise_is_dated_at_the_promised_day_and_only_once_it_passed():
    out = derived_rows(make_events(DELIVERY), {"late_delivery": LATE})
    assert out["event_id"].tolist() == ["b2#late_delivery", "c2#late_delivery", "e5#late_delivery"]
    assert out["timestamp"].tolist() == ts("2024-01-05", "2024-01-05", "2024-01-12").tolist()
    assert (out["contact_reason"] == "late_delivery").all()
    graced = derived_rows(make_events(DELIVERY), {"late_delivery": {**LATE, "grace_days": 3}})
    # B's parcel came within 3 days of the promise; C's promise + 3 days is still in the log
    assert graced["event_id"].tolist() == ["c2#late_delivery", "e5#late_delivery"]
    assert graced["timestamp"].tolist() == ts("2024-01-08", "2024-01-15").tolist()
    with pytest.raises(moments.MomentsError, match="needs 'due' and 'done'"):
        moments.with_derived_moments(make_events(DELIVERY), rules={"x": {"missed": {"due": "delivery_promised"}}})


def test_missed_without_since_pairs_each_promise_with_the_previous_one():
    events = make_events([r for r in DELIVERY if r[3] != "order"])
    out = derived_rows(events, {"late": {"missed": {"due": "delivery_promised", "done": "delivery"}}})
    # A: delivery on 01-04 lies before its first promise: on time; E: the 01-02 delivery precedes the first promise
    assert out["event_id"].tolist() == ["b2#late", "c2#late", "e5#late"]


def test_between_moments_can_be_dated_at_the_start_or_the_deadline():
    events = make_events(LOG)
    rule = {"between": ["order", "activation"], "min_days": 14}
    dates = {dated: derived_rows(events, {"slow": {**rule, "dated_at": dated}})["timestamp"].tolist()
             for dated in ("then", "first", "deadline")}
    assert dates["then"] == ts("2024-01-16 10:00").tolist()
    assert dates["first"] == ts("2024-01-01 10:00").tolist()
    assert dates["deadline"] == ts("2024-01-15 10:00").tolist()
    with pytest.raises(moments.MomentsError, match="dated_at must be one of"):
        moments.with_derived_moments(events, rules={"slow": {**rule, "dated_at": "never"}})


def test_comparable_responses_and_like_with_like_impact():
    events = make_events([
        ("p1", "A", "2024-03-01", "delivery_promised", None, "system", None, None),
        ("p2", "B", "2024-01-01", "delivery_promised", None, "system", None, None),   # 70 days before B's answer
        ("p3", "C", "2024-03-05", "delivery_promised", None, "system", None, None),
        ("p4", "D", "2024-03-02", "delivery_promised", None, "system", None, None),
    ])
    feedback = pd.DataFrame({"response_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
                             "customer_id": ["A", "B", "C", "D", "E", "F"],
                             "timestamp": ts(*["2024-03-11"] * 6),
                             "nps": [2.0, 10.0, 9.0, 3.0, 10.0, 10.0], "segment": "private"})
    comparable = moments.comparable_responses(events, feedback, {"late": {"touchpoint": ["delivery_promised"]}},
                                              window_days=60)
    assert comparable.set_index("response_id")["comparable"].to_dict() == {
        "r1": True, "r2": False, "r3": True, "r4": True, "r5": False, "r6": False}
    exposures = pd.DataFrame({"response_id": ["r1", "r4"], "moment": ["late", "late"]})
    out = moments.kpi_impact(feedback, exposures, moments=["late", "other"], covariates=[], min_n=1,
                             comparable=comparable).set_index("moment")
    # late: exposed r1, r4 (detractors: -100) against the comparable r3 only (promoter: +100); other: no rule
    assert out.loc["late", ["n_exposed", "n_unexposed", "exposed_value", "unexposed_value", "difference"]].tolist() == [
        2, 1, -100.0, 100.0, -200.0]
    assert out.loc["late", "like_with_like"] and not out.loc["other", "like_with_like"]
    assert out.loc["other", ["n_exposed", "n_unexposed"]].tolist() == [0, 6]
    assert moments.comparable_responses(events, feedback, {}).empty


def test_comparable_when_is_read_from_the_taxonomy_rules():
    tax = config.Taxonomy({"derived_moments": {
        "late": {**LATE, "comparable_when": {"touchpoint": "delivery_promised"}}, "slow": {"wait_over_seconds": 300}}})
    assert moments.comparable_rules(tax) == {"late": {"touchpoint": ["delivery_promised"]}}
    with pytest.raises(moments.MomentsError, match="comparable_when"):
        moments.comparable_rules(config.Taxonomy({"derived_moments": {"late": {**LATE, "comparable_when": {"status": "x"}}}}))


def impact_row(moment, difference, adjusted, *, significant=True, small=False, low=None, high=None) -> dict:
    low = difference - 5 if low is None else low
    high = difference + 5 if high is None else high
    return {"moment": moment, "kpi": "nps", "n_exposed": 200, "n_unexposed": 800, "exposed_share": 0.2,
            "exposed_value": 10 + difference, "unexposed_value": 10.0, "difference": difference, "ci_low": low,
            "ci_high": high, "p_value": 0.01, "adjusted": adjusted, "adjusted_low": adjusted - 5,
            "adjusted_high": adjusted + 5, "adjusted_p": 0.01, "small": small, "q_value": 0.02,
            "significant": significant, "like_with_like": moment == "late"}


def test_describe_impact_warns_when_raw_and_adjusted_differ():
    labels = {"late": "Late delivery", "inv": "Invoice", "noise": "Noise"}
    agree = pd.DataFrame([impact_row("inv", -30.0, -28.0), impact_row("noise", 0.3, 0.5, significant=False, low=-4, high=4)])
    text = moments.describe_impact(agree, labels, window_days=60, covariates=["segment"], min_n=50)
    assert text.startswith("Customers who met **Invoice** in the 60 days before answering give an NPS of −20 against +10 "
                           "for everyone else: raw −30.0 points (95% −35.0 to −25.0), adjusted −28.0 (−33.0 to −23.0).")
    assert "Raw and adjusted estimates agree" in text and "estimates differ" not in text
    assert "1 of 2 moments with at least 50 exposed answers differ significantly" in text
    german = moments.describe_impact(agree, labels, window_days=60, covariates=["segment"], min_n=50, lang="de")
    assert german.startswith("Kunden, die **Invoice** in den 60 Tagen vor ihrer Antwort erlebten, geben einen NPS von −20 "
                             "gegenüber +10 bei allen anderen: roh −30,0 Punkte (95 % −35,0 bis −25,0), bereinigt −28,0 "
                             "(−33,0 bis −23,0).")
    assert "Mischung nach Segment" in german and "1 von 2 Momenten" in german
    flipped = pd.DataFrame([impact_row("late", 8.0, -6.0), impact_row("inv", -30.0, -18.0),
                            impact_row("noise", 0.3, 0.5, significant=False, low=-4, high=4)])
    text = moments.describe_impact(flipped, labels, window_days=60, covariates=["segment"], min_n=50)
    assert ("**Raw and adjusted estimates differ** for Late delivery (raw +8.0, adjusted −6.0: opposite signs) and "
            "Invoice (raw −30.0, adjusted −18.0: by more than a third)") in text
    assert "Noise" not in text.split("differ**")[1].split(":")[0] and "agree" not in text
    assert "**Late delivery** is compared like with like" in text
    alone = moments.describe_impact(agree, labels, window_days=60, covariates=[], min_n=50)
    assert "No covariate varies among the answers" in alone and "agree" not in alone
    few = moments.describe_impact(pd.DataFrame([impact_row("inv", -30.0, -28.0, small=True)]), labels, window_days=60,
                                  covariates=["segment"], min_n=50)
    assert few.startswith("No moment has at least 50 exposed NPS answers") and "nan" not in few


def test_kpi_impact_csat_is_top_box_on_each_answers_scale():
    responses = pd.DataFrame({"response_id": ["r1", "r2", "r3", "r4"], "customer_id": ["A", "B", "C", "D"],
                              "csat": [9.0, 4.0, 8.0, 4.0], "csat_max": [10.0, np.nan, 10.0, 5.0]})
    # 9 of 10 and 4 of 5 (no scale: 5) are in the top two points; 8 of 10 is not
    assert moments.kpi_scores(responses, "csat").tolist() == [5.0, 5.0, 1.0, 5.0]
    exposures = pd.DataFrame({"response_id": ["r1", "r2"], "moment": ["m", "m"]})
    row = moments.kpi_impact(responses, exposures, moments=["m"], kpi="csat", covariates=[], min_n=1).iloc[0]
    assert (row["exposed_value"], row["unexposed_value"], row["difference"]) == (100.0, 50.0, 50.0)


# --- complaints without an active base, drivers on a ratings table ----------------------------------

def complaint_log(months: dict[str, int]) -> pd.DataFrame:
    rows = [(f"k{m}-{i}", None, f"{m}-01", "complaint", "complaint_billing", "web", None, None)
            for m, n in months.items() for i in range(n)]
    return make_events(rows)


def test_complaints_without_signup_dates_are_counted_per_month_on_a_c_chart(taxonomy):
    events = complaint_log({"2024-01": 2, "2024-02": 0, "2024-03": 12})
    customers = make_customers([("A", "private", None, None, None, False, None)])
    out = moments.complaints_by_month(events, customers, taxonomy)
    billing = out.loc[out["category"] == "billing"].set_index("month")
    assert billing.index.tolist() == ["2024-01", "2024-02", "2024-03"] and (out["basis"] == "count").all()
    assert billing["complaints"].tolist() == [2, 0, 12]
    # 12 breaks the first limits (centre 4.67, ucl 11.15); without it centre 1, limits 0 to 1 + 3 sqrt(1)
    assert billing["center"].tolist() == pytest.approx([1.0] * 3) and billing["ucl"].tolist() == pytest.approx([4.0] * 3)
    assert billing["out_of_control"].tolist() == [False, False, True]
    key, rows = moments.complaint_record(out)
    assert key == "complaint_counts" and "rate_per_1000" not in rows.columns
    text = moments.describe_complaints(out)
    assert text.startswith("Counts per month, not rates: the data has no active customer base")
    assert "**Billing** in Mar 2024 (12 complaints against a centre of 1.0, above the limits)" in text
    based = moments.complaints_by_month(events, make_customers([("A", "private", "2023-01-01", None, None, True, None)]),
                                        taxonomy)
    assert (based["basis"] == "per_1000").all() and moments.complaint_record(based)[0] == "complaints"
    with pytest.raises(Missing, match="no complaints in the events"):
        moments.complaints_by_month(make_events(LOG[:2]), customers, taxonomy)


def test_a_first_of_month_complaint_counts_in_its_own_month(taxonomy):
    events = complaint_log({"2024-01": 1, "2024-02": 1})
    out = moments.complaint_counts(events, taxonomy)
    billing = out.loc[out["category"] == "billing"]
    assert billing["month"].tolist() == ["2024-01", "2024-02"] and billing["complaints"].tolist() == [1, 1]


def ratings_table(n_per_cell: int = 1) -> pd.DataFrame:
    """Respondents rating two orthogonal attributes (q2, q3; +/-1 around 5) and overall = 5 + 2 q2 + q3."""
    rows = []
    for i, (x1, x2) in enumerate([(1, 1), (-1, 1), (1, -1), (-1, -1)] * n_per_cell):
        rid = f"R{i}"
        rows += [(f"{rid}-overall", rid, "overall", 5.0 + 2 * x1 + x2), (f"{rid}-q2", rid, "q2", 5.0 + x1),
                 (f"{rid}-q3", rid, "q3", 5.0 + x2)]
    frame = pd.DataFrame(rows, columns=["response_id", "customer_id", "touchpoint", "csat"])
    return frame.assign(timestamp=pd.NaT, nps=np.nan, csat_max=10.0, survey=None)


def test_driver_analysis_on_a_ratings_table_without_dates_or_events():
    feedback = ratings_table(2)
    assert moments.driver_outcome(feedback) == "csat"
    out = moments.driver_analysis(feedback, min_n=8)
    assert out["driver"].tolist() == ["q2", "q3"] and (out["outcome"] == "csat").all()
    assert out["share"].tolist() == pytest.approx([80.0, 20.0]) and out["n"].iloc[0] == 8
    assert out["mean"].tolist() == [5.0, 5.0] and moments.rating_scale(feedback) == 10.0
    table = moments.drivers_table(out, {"q2": "Price", "q3": "Service"})
    assert table["attribute"].tolist() == ["Price", "Service"] and table["share of explained variance"].tolist() == ["80.0%", "20.0%"]
    text = moments.describe_drivers(out, {"q2": "Price"}, scale=10)
    assert text.startswith("**Price** carries 80% of the explained variance of the overall rating (R² = 1.00, 8 respondents)")
    with pytest.raises(Missing, match="fewer than 9 respondents"):
        moments.driver_analysis(feedback, min_n=9)
    with pytest.raises(Missing, match="no overall answer"):
        moments.driver_analysis(feedback.loc[feedback["touchpoint"] != "overall"], min_n=1)
    with pytest.raises(Missing, match="do not vary"):
        moments.driver_analysis(feedback.assign(csat=lambda d: d["csat"].where(d["touchpoint"] != "q3", 5.0)), min_n=1)
    # the relationship survey marks the overall answer as well
    relationship = feedback.assign(survey=np.where(feedback["touchpoint"] == "overall", "relationship", None),
                                   touchpoint=feedback["touchpoint"].replace({"overall": "general"}))
    assert moments.driver_analysis(relationship, min_n=8)["driver"].tolist() == ["q2", "q3"]
