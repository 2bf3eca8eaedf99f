"""Customer value on thin data: each section runs what the data supports and says what it lacks.

Unit tests on hand-made frames for the guards (schema.Missing with what is missing and what would
enable it) and the fallbacks; three runs of notebook 05_customer_value on small processed folders
(survey only; one order per customer with CSAT and anonymous complaints; orders of one day with
complaints and NPS) asserting the recorded results and the skipped sections.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_processed_frames
from cxlib import config, engine, pipeline, report, schema, value

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = config.load_taxonomy(ROOT / "config" / "taxonomy.yml")
AS_OF = "2024-06-30"
TIERS = {"high": 0.2, "medium": 0.3, "low": 0.5}


def utc(values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True)).astype("datetime64[us, UTC]")


def orders(customers: list[str], days: list[str], revenue: list[float] | None = None, status: str | None = "completed",
           category: str = "tariff") -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": pd.Series([f"o{i}" for i in range(len(customers))], dtype="str"),
        "customer_id": pd.Series(customers, dtype="str"),
        "timestamp": utc(days),
        "category": pd.Series([category] * len(customers), dtype="str"),
        "revenue": pd.Series(revenue if revenue is not None else [np.nan] * len(customers), dtype="float64"),
        "status": pd.Series([status] * len(customers), dtype="str"),
    })


def feedback(customers: list, days: list, **scores) -> pd.DataFrame:
    return pd.DataFrame({
        "response_id": pd.Series([f"r{i}" for i in range(len(customers))], dtype="str"),
        "customer_id": pd.Series(customers, dtype="str"),
        "timestamp": utc(days),
        **{k: pd.Series(v, dtype="float64") for k, v in scores.items()},
    })


def events(customers: list, days: list, reasons: list) -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": pd.Series([f"e{i}" for i in range(len(customers))], dtype="str"),
        "customer_id": pd.Series(customers, dtype="str"),
        "timestamp": utc(days),
        "channel": pd.Series(["phone"] * len(customers), dtype="str"),
        "touchpoint": pd.Series(["service_contact"] * len(customers), dtype="str"),
        "contact_reason": pd.Series(reasons, dtype="str"),
    })


def missing(func, *args, **kwargs) -> schema.Missing:
    with pytest.raises(schema.Missing) as info:
        func(*args, **kwargs)
    return info.value


# --- guards and fallbacks on hand-made frames -------------------------------------------------------------
NO_ORDERS = orders([], [], [])


def test_no_orders_every_value_section_says_what_it_needs():
    hist = value.historic_value(NO_ORDERS, as_of=AS_OF)
    res = value.customer_value(NO_ORDERS, hist, as_of=AS_OF, categories=["Zusatzprodukte"])
    tiered = value.value_tiers(res.customers, tiers=TIERS)
    gap = missing(value.historic_overview, hist, NO_ORDERS)
    assert (gap.reason, gap.enable) == ("no orders", value.ENABLE_ORDERS)
    assert missing(value.rfm_scores, hist).reason == "no customer with a purchase"
    assert missing(value.require_values, res, NO_ORDERS, hist).reason == "no orders"
    assert missing(value.require_model, res).reason == "no customer with a purchase to value"   # not "only 0 of 0 ..."
    assert missing(value.tier_summary, tiered).enable == value.ENABLE_ORDERS
    fb = feedback(["a"], ["2024-06-01"], nps=[9])
    assert missing(value.kpi_by_tier, fb, tiered).reason.startswith("no customer with a value tier")
    ev = events(["a"], ["2024-06-01"], ["complaint_billing"])
    assert missing(value.exposure_by_tier, tiered, ev, reasons={"complaint_billing": "billing"}).reason \
        .startswith("no customer with a value tier")
    assert value.analysis_day("", NO_ORDERS) is None and value.date_text(None) == "no dated rows"


def test_orders_without_revenue_are_not_valued():
    rows = orders(["a", "b"], ["2024-05-01", "2024-06-01"])
    gap = missing(value.historic_overview, value.historic_value(rows, as_of=AS_OF), rows)
    assert gap.reason == "the orders carry no revenue, so there is no value to measure" and gap.enable == "orders.revenue"
    no_column = rows.drop(columns="revenue")
    assert missing(value.require_purchases, no_column, value.historic_value(rows, as_of=AS_OF)).enable == "orders.revenue"


def test_orders_without_any_status_count_as_completed():
    rows = orders(["a", "b"], ["2024-05-01", "2024-06-01"], [10.0, 20.0], status=None)
    out = value.historic_value(rows, as_of=AS_OF)
    assert out["orders"].tolist() == [1, 1] and out["revenue"].tolist() == [10.0, 20.0]
    assert value.historic_value(rows.drop(columns="status"), as_of=AS_OF)["revenue"].sum() == 30.0
    only_cancelled = rows.assign(status="cancelled")
    gap = missing(value.historic_overview, value.historic_value(only_cancelled, as_of=AS_OF), only_cancelled)
    assert gap.reason == "no completed order with revenue above 0"


def test_orders_of_one_day_skip_rfm_but_keep_historic_value():
    rows = orders(["a", "b", "c"], ["2024-06-30 08:00", "2024-06-30 12:00", "2024-06-30 18:00"], [10.0, 30.0, 60.0])
    hist = value.historic_value(rows)
    overview = value.historic_overview(hist, rows)
    assert overview == {"customers": 3, "revenue": 100.0, "top10_share": 0.6, "top20_share": 0.6,
                        "top50_share": 0.9, "credit_only": 0}
    assert value.describe_historic(overview, "2024-06-30") == (
        "3 customers bought up to 2024-06-30, with 100 € net revenue. The top 10% brought 60%, the top 20% 60%, "
        "the top half 90%.")
    gap = missing(value.rfm_scores, hist)
    assert gap.reason == "every purchase falls on the same day, so recency cannot rank customers"


def test_one_order_per_customer_falls_back_to_revenue_and_says_so():
    rows = orders(["a", "b", "c", "d"], ["2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"], [40.0, 10.0, 30.0, 20.0])
    hist = value.historic_value(rows)
    res = value.customer_value(rows, hist, min_repeat_buyers=1)
    assert res.status == "unsupported" and value.basis_label(res) == "net revenue to date"
    assert res.message == ("Model not supported: only 0 of 4 customers bought again (the model needs at least 1 "
                           "repeat buyers): predicted CLV is not computed, historic value is used.")
    gap = missing(value.require_model, res, min_repeat_buyers=1)
    assert gap.reason.startswith("only 0 of 4 customers bought again") and gap.enable == "repeat purchases of at least 1 customers"
    assert missing(value.require_holdout, res).reason.startswith("the CLV model was not fitted")
    said = value.describe_value_model(res) + " " + value.describe_clv(res)       # as the notebook shows them
    assert said.startswith("**historic revenue (fallback).** Total net revenue to date")
    assert said.count("Model not supported") == 1 and said.count("Total net revenue") == 1
    assert value.top_customers(res, 2)["customer_id"].tolist() == ["a", "c"]
    assert list(value.top_customers(res, 2).columns) == ["customer_id", "orders", "revenue", "tenure_days",
                                                         "recency_days", "value"]
    tiered = value.value_tiers(res.customers, tiers={"high": 0.5, "low": 0.5})
    table = value.tier_summary(tiered)
    assert value.describe_tiers(table, basis="net revenue to date") == (
        "The high tier's 2 customers hold 70% of the net revenue to date (70 €, at least 30 € each); "
        "the low tier's 2 customers hold 30%.")


TIERED = value.value_tiers(pd.DataFrame({"customer_id": list("abcd"), "value": [40.0, 30.0, 20.0, 10.0]}),
                           tiers={"high": 0.5, "low": 0.5})      # a, b high; c, d low


def test_cx_by_tier_uses_csat_without_nps_and_undated_answers():
    fb = feedback(["a", "b", "c", "d", None], [None] * 5, csat=[5, 4, 2, 5, 1]).assign(nps=np.nan)
    assert value.tier_kpi(fb) == "csat"
    out = value.kpi_by_tier(fb, TIERED, as_of=AS_OF, min_n=1)
    assert out["kpi"].tolist() == ["csat", "csat"] and out["n"].tolist() == [2, 2]
    assert out["value"].tolist() == [100.0, 50.0]
    assert value.kpi_tier_record(out).keys() == {"kpi_by_tier"}
    assert value.kpi_tier_title(out) == "CSAT 100% in the high tier, 50% in the low tier (95% intervals)"
    assert value.describe_kpi_by_tier(out, min_n=1) == (
        "CSAT of the high tier: 100.0% (95% interval 34.2% to 100.0%, n = 2), +50.0 percentage points against the "
        "other tiers (adjusted p = 0.248: no significant difference).")
    value.require_tier_comparison(out)                  # two tiers answered: a comparison
    one = value.kpi_by_tier(fb.loc[fb["customer_id"].isin(["a", "b"])], TIERED, as_of=AS_OF, min_n=1)
    assert missing(value.require_tier_comparison, one).reason == ("only the high tier has CSAT answers, so the tiers "
                                                                  "cannot be compared")
    few = value.kpi_by_tier(fb, TIERED, as_of=AS_OF, min_n=5)
    assert value.describe_kpi_by_tier(few, min_n=5) == ("The high tier has 2 CSAT answers, fewer than 5: not compared "
                                                        "with the other tiers.")


def test_cx_by_tier_without_usable_feedback():
    assert missing(value.kpi_by_tier, feedback([], []), TIERED).reason == "no feedback"
    anonymous = feedback([None, None], ["2024-06-01", "2024-06-02"], nps=[9, 3])
    assert missing(value.kpi_by_tier, anonymous, TIERED).enable == "feedback.customer_id"
    unscored = feedback(["a"], ["2024-06-01"], nps=[np.nan])
    assert missing(value.kpi_by_tier, unscored, TIERED).reason == "no NPS, CSAT or CES answer from a known customer"


def test_exposure_and_at_risk_on_events_without_customers_or_reasons():
    anonymous = events([None, None], ["2024-06-01", "2024-06-02"], ["complaint_billing", "complaint_hotline"])
    reasons = TAXONOMY.complaint_category_of_reason
    gap = missing(value.exposure_by_tier, TIERED, anonymous, reasons=reasons, as_of=AS_OF)
    assert gap.reason == "the events do not name customers, so contacts cannot be linked to value"
    assert gap.enable == "events.customer_id"
    no_reason = events(["a"], ["2024-06-01"], [None])
    assert missing(value.exposure_by_tier, TIERED, no_reason, reasons=reasons).enable == "events.contact_reason"
    assert missing(value.exposure_by_tier, TIERED, events([], [], []), reasons=reasons).reason == "no events"
    assert missing(value.exposure_by_tier, TIERED, no_reason, reasons={}).reason == "the taxonomy names no contact reasons"
    negative = value.negative_moment_reasons(TAXONOMY)
    gap = missing(value.at_risk, TIERED, anonymous, feedback([], []), high_tiers=["high"], negative_reasons=negative)
    assert gap.reason == "neither negative-moment contacts nor dated NPS answers of known customers"


def test_at_risk_with_answers_only_and_contacts_only():
    negative = value.negative_moment_reasons(TAXONOMY)
    fb = feedback(["a", "b", "c"], ["2024-06-01", "2024-06-02", "2024-06-03"], nps=[3, 9, 0])
    no_events = events([], [], [])
    risk = value.at_risk(TIERED, no_events, fb, high_tiers=["high"], negative_reasons=negative, as_of=AS_OF)
    assert risk["customer_id"].tolist() == ["a"] and risk["trigger"].tolist() == ["detractor"]
    info = value.risk_summary(risk, TIERED, high_tiers=["high"])
    assert info == {"customers": 2, "at_risk": 1, "share": 0.5, "value": 40.0, "value_share": 40 / 70,
                    "triggers": {"moment": 0, "detractor": 1, "moment+detractor": 0}}
    assert value.risk_title(info) == "1 of 2 high-value customers (50%) are at risk"
    ev = engine.table(events(["b", "b", "d"], ["2024-06-10", "2024-06-11", "2024-06-12"],
                             ["complaint_billing", "invoice_unclear", "complaint_billing"]))
    risk = value.at_risk(TIERED, ev, feedback([], []), high_tiers=["high"], negative_reasons=negative, as_of=AS_OF)
    assert risk["customer_id"].tolist() == ["b"] and risk["negative_contacts"].tolist() == [2]
    assert value.at_risk_table(risk)["last_negative_contact"].tolist() == ["2024-06-11"]
    none = value.risk_summary(risk.iloc[0:0], TIERED, high_tiers=["high"])
    assert value.describe_at_risk(none, basis="net revenue to date") == \
        "None of the 2 high-value customers is at risk in the window."


def test_exposure_table_labels_and_tier_columns():
    ev = events(["a", "c", "d"], ["2024-06-10", "2024-06-11", "2024-06-12"],
                ["complaint_billing", "complaint_hotline", "complaint_billing"])
    out = value.exposure_by_tier(TIERED, ev, reasons=TAXONOMY.complaint_category_of_reason, as_of=AS_OF, window_days=30)
    table = value.exposure_table(out, TAXONOMY, "complaint_categories", any_label="any complaint")
    assert list(table.columns) == ["high", "low"]
    assert table.loc["any complaint"].tolist() == [50.0, 100.0]
    assert table.loc[TAXONOMY.label("complaint_categories", "billing")].tolist() == [50.0, 50.0]
    assert value.describe_exposure(out, what="complaint", window_days=30, as_of=AS_OF) == (
        "Share of each tier's customers with a complaint contact in the 30 days up to 2024-06-30: "
        "high 50.0% (1 of 2), low 100.0% (2 of 2).")


def test_rfm_names_lapsed_segments_from_constants():
    segments = pd.DataFrame({"segment": ["Champions", "At risk"], "rfm_segment": ["champions", "at_risk"],
                             "customers": [3, 1], "customer_share": [0.75, 0.25], "revenue": [90.0, 10.0],
                             "revenue_share": [0.9, 0.1]})
    assert "at_risk" in value.LAPSED_SEGMENTS
    assert value.describe_rfm(segments) == (
        "4 customers in 2 segments. *Champions* is the largest by revenue: 3 customers (75%) with 90% of net revenue "
        "to date. The segments that bought often but not lately (*At risk*) hold 1 customers and 10% of revenue.")


# --- the notebook on thin shapes -------------------------------------------------------------------------
def run_notebook(tmp_path: Path, frames: dict, *params: str) -> dict:
    """Run 05_customer_value on a processed folder written from `frames`; the run's results."""
    folder = write_processed_frames(tmp_path / "processed", frames)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "-k", "python3", str(ROOT / "notebooks" / "05_customer_value.ipynb"),
         str(tmp_path / "out.ipynb"), "-p", "processed_dir", str(folder), "-p", "run_dir", str(run_dir),
         "-p", "taxonomy", str(ROOT / "config" / "taxonomy.yml"), *params],
        cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=600,
        env={**os.environ, **pipeline.KERNEL_ENV},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return report.read_results(run_dir)


def notebook_markdown(tmp_path: Path) -> list[str]:
    """The Markdown outputs of the executed notebook, in order."""
    executed = json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8"))
    return ["".join(o["data"]["text/markdown"]) for c in executed["cells"] for o in c.get("outputs", [])
            if "text/markdown" in o.get("data", {})]


def skipped(results: dict) -> dict[str, str]:
    return {s["section"]: s["reason"] for s in results.get("skipped", [])}


def test_notebook_survey_only_skips_every_value_section(tmp_path):
    fb = feedback(["a", "b", "c"], ["2024-05-01", "2024-06-01", "2024-06-02"], nps=[9, 3, 10])
    results = run_notebook(tmp_path, {"feedback": fb})
    assert "value" not in results                   # nothing to value, nothing recorded
    gaps = skipped(results)
    assert set(gaps) == {"value.historic", "value.rfm", "value.per_customer", "value.clv_model", "value.tiers",
                         "value.kpi_by_tier", "value.complaints_by_tier", "value.moments_by_tier", "value.at_risk"}
    assert set(gaps.values()) == {"no orders"}      # one reason, so the report lists it once at the top
    executed = json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8"))
    shown = ["".join(o.get("data", {}).get("text/markdown", "")) for c in executed["cells"] for o in c.get("outputs", [])]
    assert any(t.startswith("**Not shown for this data:**") and "No orders" in t and "9 sections" in t for t in shown)
    assert sum("(as above)" in t for t in shown) == 8 and sum("(needs the orders table" in t for t in shown) == 2


def test_notebook_one_order_per_customer_csat_and_anonymous_complaints(tmp_path):
    ids = [f"c{i:02d}" for i in range(10)]
    frames = {
        "orders": orders(ids, [f"2024-06-{i + 1:02d}" for i in range(10)], [float(10 * (i + 1)) for i in range(10)]),
        "feedback": feedback(ids, [None] * 10, csat=[5, 5, 4, 2, 1, 5, 4, 4, 3, 5]),
        "events": events([None] * 3, ["2024-06-05", "2024-06-06", "2024-06-07"], ["complaint_billing"] * 3),
    }
    results = run_notebook(tmp_path, frames, "-p", "min_tier_answers", "1", "-p", "lang", "de")
    got = results["value"]
    assert got["status"] == "unsupported" and got["clv"]["basis"] == "historic_revenue"
    assert got["message"].startswith("Model not supported: only 0 of 10 customers bought again")
    assert got["message"].endswith("None of the CLV categories (Zusatzprodukte) occurs in the orders, so the model "
                                   "covers all orders.")
    assert got["historic"]["customers"] == 10 and got["historic"]["revenue"] == 550.0
    assert [r["customers"] for r in got["tiers"]] == [2, 3, 5]
    assert [r["kpi"] for r in got["kpi_by_tier"]] == ["csat"] * 3 and "nps_by_tier" not in got
    assert [r["n"] for r in got["kpi_by_tier"]] == [2, 3, 5]
    gaps = skipped(results)
    assert set(gaps) == {"value.clv_model", "value.complaints_by_tier", "value.moments_by_tier", "value.at_risk"}
    assert gaps["value.complaints_by_tier"] == "the events do not name customers, so contacts cannot be linked to value"
    assert gaps["value.at_risk"] == "neither negative-moment contacts nor dated NPS answers of known customers"
    shown = notebook_markdown(tmp_path)                # lang de: the report's sentences in German
    assert any(t.startswith("10 Kunden haben bis 10.06.2024 gekauft") for t in shown)
    assert any(t.startswith("**bisheriger Umsatz (Ersatz).** Nettoumsatz bis heute insgesamt") and
               "Modell nicht gestützt: nur 0 von 10 Kunden haben erneut gekauft" in t for t in shown)
    assert shown[-1].startswith("Die besten 20\xa0% der Kunden brachten")          # the findings cell


def test_notebook_orders_of_one_day_with_complaints_and_nps(tmp_path):
    ids = [f"c{i:02d}" for i in range(10)]
    frames = {
        "orders": orders(ids, ["2024-06-30 10:00"] * 10, [float(10 * (i + 1)) for i in range(10)]),
        "feedback": feedback(ids[:4], ["2024-06-20"] * 4, nps=[0, 10, 9, 5]),
        "events": events(["c09", "c08", "c01"], ["2024-06-05", "2024-06-06", "2024-06-07"],
                         ["complaint_billing", "invoice_unclear", "complaint_hotline"]),
    }
    results = run_notebook(tmp_path, frames, "-p", "min_tier_answers", "1")
    got = results["value"]
    assert got["as_of"] == "2024-06-30" and got["historic"]["customers"] == 10
    assert set(skipped(results)) == {"value.rfm", "value.clv_model", "value.kpi_by_tier"}
    assert skipped(results)["value.rfm"] == "every purchase falls on the same day, so recency cannot rank customers"
    assert skipped(results)["value.kpi_by_tier"] == "only the low tier has NPS answers, so the tiers cannot be compared"
    assert [r["exposed"] for r in got["complaint_exposure"]] == [1, 0, 1]         # c09 high, c01 low
    assert got["at_risk"] == 2 and got["at_risk_triggers"] == {"moment": 2, "detractor": 0, "moment+detractor": 0}
    assert [r["n"] for r in got["nps_by_tier"]] == [0, 0, 4]


def test_holdout_reason_keeps_the_fitted_model():
    refit = value.ModelUnsupported("only 9 of 80 customers bought again (the model needs at least 50 repeat buyers): "
                                   "predicted CLV is not computed, historic value is used")
    assert value.holdout_reason(refit) == ("Holdout check not possible: only 9 of 80 customers bought again (the model "
                                           "needs at least 50 repeat buyers) in the data before the holdout months.")
    degenerate = value.ModelUnsupported("the model fit is degenerate (BG/NBD a = 5.4e-11): the repeat purchases are too "
                                        "few or too uniform to estimate it; historic value is used")
    assert "historic value is used" not in value.holdout_reason(degenerate)
    assert value.holdout_reason(degenerate).endswith("to estimate it in the data before the holdout months.")



def test_map_fit_parameters_shown_without_empty_interval_columns():
    params = pd.DataFrame({"model": ["BG/NBD", "BG/NBD"], "parameter": ["r", "alpha"], "estimate": [0.54012, 36.7681],
                           "ci_low": [np.nan, np.nan], "ci_high": [np.nan, np.nan]})
    res = value.CustomerValue(customers=pd.DataFrame({"customer_id": ["a"]}), status="fitted", model="BG/NBD",
                              message="", params=params)
    shown = value.require_model(res)
    assert list(shown.columns) == ["model", "parameter", "estimate"] and shown["estimate"].tolist() == [0.54, 36.768]
    with_interval = value.require_model(dataclasses.replace(res, params=params.assign(ci_low=[0.4, 30.0], ci_high=[0.7, 40.0])))
    assert list(with_interval.columns) == ["model", "parameter", "estimate", "ci_low", "ci_high"]


def test_notebook_is_a_short_story_with_findings_last_and_the_method_tagged():
    """At most 80 lines of code, no definitions in the notebook, the parameters renamed to say what they are,
    the findings cell last (the report moves it to the top) and the definitions and parameters tagged method."""
    cells = json.loads((ROOT / "notebooks" / "05_customer_value.ipynb").read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    lines = [line.strip() for c in code for line in "".join(c["source"]).splitlines()]
    assert len([line for line in lines if line and not line.startswith("#")]) <= 80
    assert not any(line.startswith(("def ", "class ", "ax.", "plt.")) for line in lines)
    parameters = "".join(next(c for c in code if "parameters" in c["metadata"].get("tags", []))["source"])
    assert "at_risk_days: int = 90" in parameters and "min_tier_answers: int = 30" in parameters
    assert "window_days" not in parameters and "min_n:" not in parameters
    assert code[-1]["metadata"]["tags"] == ["findings"] and "describe_findings" in "".join(code[-1]["source"])
    method = ["".join(c["source"]) for c in code if "method" in c["metadata"].get("tags", [])]
    assert len(method) == 2 and "value.method(lang)" in method[0] and "parameters_table" in method[1]
