"""Notebook 03_journey on thin data: each shape runs, skips what it cannot show with a note, and
records the numbers it can (results.json). Processed folders are written from hand-made frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import papermill
import pytest

from cxlib import report
from conftest import write_processed_frames

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_journey.ipynb"
EVENT_SECTIONS = {"journey.stages", "journey.funnel", "journey.transitions", "journey.paths", "journey.timing"}


def utc(*values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True, format="ISO8601"))


def events(rows, customers: bool = True) -> pd.DataFrame:
    """rows: (customer_id, date, touchpoint); event ids e1, e2, … in row order."""
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint"])
    return frame.assign(event_id=[f"e{i}" for i in range(1, len(frame) + 1)],
                        customer_id=frame["customer_id"] if customers else None,
                        timestamp=utc(*frame["timestamp"]), channel="phone")


def derived_customers(ids) -> pd.DataFrame:
    """Customers as stage 01 derives them from the other tables: ids only, no consent."""
    return pd.DataFrame({"customer_id": sorted(set(ids)), "contact_consent": False})


def run(tmp_path: Path, frames: dict, **parameters) -> dict:
    processed = write_processed_frames(tmp_path / "processed", frames)
    run_dir = tmp_path / "run"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                               cwd=str(ROOT / "notebooks"),
                               parameters={"processed_dir": str(processed), "run_dir": str(run_dir), **parameters})
    return report.read_results(run_dir)


def skipped(results: dict) -> dict[str, str]:
    return {entry["section"]: entry["reason"] for entry in results.get("skipped", [])}


TICKETS = [
    ("T1", "2024-01-02", "complaint"), ("T1", "2024-01-03", "service_contact"), ("T1", "2024-01-05", "service_contact"),
    ("T2", "2024-01-04", "complaint"), ("T2", "2024-01-10", "service_contact"),
    ("T3", "2024-01-06", "complaint"),
    ("T4", "2024-01-08", "service_contact"), ("T4", "2024-01-09", "complaint"),
    ("T5", "2024-01-11", "complaint"), ("T5", "2024-01-12", "service_contact"),
    ("T6", "2024-01-15", "complaint"), ("T6", "2024-01-16", "service_contact"), ("T6", "2024-01-20", "complaint"),
]


def test_ticket_log_only_shows_journeys_and_skips_sales(tmp_path):
    """A ticket log of one month (case id as customer), customers derived, nothing else."""
    log = events(TICKETS)
    results = run(tmp_path, {"events": log, "customers": derived_customers(log["customer_id"])})
    journey, skips = results["journey"], skipped(results)
    assert set(skips) == {"journey.funnel", "journey.timing", "journey.conversion", "journey.repeat_customers",
                          "journey.opportunities", "journey.campaigns", "journey.cancellations",
                          "journey.cancellation_reasons", "journey.tenure", "journey.segments"}
    assert skips["journey.funnel"] == "no customer has an event of the funnel's first step (web_visit or tariff_page)"
    assert skips["journey.conversion"] == "no leads: no customer has a lead date"
    assert skips["journey.repeat_customers"] == "no orders"
    assert skips["journey.opportunities"].startswith("no sales opportunity (quote, consultation)")
    assert skips["journey.campaigns"] == "no campaign contacts"
    assert skips["journey.tenure"] == "no churn dates"
    assert skips["journey.segments"] == "no customer segments"
    assert journey["episodes_per_customer"] == 1.0
    assert [row["path"] for row in journey["top_paths"]] == ["service"]
    assert journey["top_paths"][0]["journeys"] == 6
    top = journey["top_transitions"][0]
    assert (top["from_step"], top["to_step"], top["transitions"], top["probability"]) == ("complaint", "service_contact", 4, 1.0)
    assert {row["stage"]: row["customers"] for row in journey["stages"]}["service"] == 6
    assert "funnel" not in journey and "conversion_rate" not in journey


def test_complaint_log_without_customer_ids_forms_no_journeys(tmp_path):
    results = run(tmp_path, {"events": events(TICKETS, customers=False)})
    skips = skipped(results)
    assert EVENT_SECTIONS <= set(skips)
    assert {skips[key] for key in EVENT_SECTIONS} == {"the 13 events carry no customer id, so they form no journeys"}
    assert skips["journey.tenure"] == "no signup dates, and no customer with an event to start from"
    assert skips["journey.findings"] == "no section of the journey report could run on this data"
    assert "journey" not in results                                      # nothing to record


def test_orders_only_gives_repeat_rate_and_time_between_orders(tmp_path):
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"], "customer_id": ["A", "A", "A", "B", "B", "C"],
        "timestamp": utc("2024-01-01", "2024-01-11", "2024-01-31", "2024-01-05", "2024-01-06", "2024-01-10"),
        "product": ["mobile", "mobile", "tv", "mobile", "tv", "tv"],
        "status": ["completed", "completed", "completed", "completed", "cancelled", "pending"],
    })
    results = run(tmp_path, {"orders": orders, "customers": derived_customers(orders["customer_id"])})
    journey, skips = results["journey"], skipped(results)
    assert {skips[key] for key in EVENT_SECTIONS} == {"no events"}
    assert "journey.repeat_customers" not in skips and "journey.order_intervals" not in skips
    assert "journey.cancellations" not in skips
    assert journey["repeat_customer_rate"]["n"] == 3                   # B's second order was cancelled
    assert journey["repeat_customer_rate"]["value"] == pytest.approx(1 / 3)
    assert journey["order_intervals"] == {"intervals": 2, "customers": 1, "days_median": 15.0, "days_p90": 19.0,
                                          "days_mean": 15.0}
    assert skips["journey.tenure"] == "no signup dates, and no customer with an event to start from"


def test_leads_that_never_convert_one_segment_no_campaigns(tmp_path):
    """40 leads who visit and ask for a quote in one month and never order; 5 older customers ordered in
    2023. Zero conversions are a result (no crash on the interval bars); one segment skips the breakdown."""
    leads = [f"L{i:02d}" for i in range(40)]
    visits = [(lead, f"2024-01-{1 + i % 10:02d}T09:00", "web_visit") for i, lead in enumerate(leads)]
    quotes = [(lead, f"2024-01-{1 + i % 10:02d}T10:00", "quote") for i, lead in enumerate(leads)]
    tail = [("L00", "2024-01-31", "web_visit")]
    log = events(visits + quotes + tail)
    old = [f"C{i}" for i in range(5)]
    customers = pd.DataFrame({
        "customer_id": leads + old, "segment": "private", "contact_consent": False,
        "lead_date": pd.concat([utc(*[f"2024-01-{1 + i % 10:02d}T09:00" for i in range(40)]), utc(*[None] * 5)],
                               ignore_index=True),
        "signup_date": pd.concat([utc(*[None] * 40), utc(*["2023-01-01"] * 5)], ignore_index=True),
    })
    orders = pd.DataFrame({"order_id": [f"o{i}" for i in range(5)], "customer_id": old,
                           "timestamp": utc(*["2023-01-02"] * 5), "product": "mobile", "status": "completed"})
    results = run(tmp_path, {"events": log, "customers": customers, "orders": orders}, lost_sale_window_days=5.0)
    journey, skips = results["journey"], skipped(results)
    assert journey["conversion_rate"]["value"] == 0.0 and journey["conversion_rate"]["n"] == 40
    assert journey["conversion_rate"]["ci_low"] == 0.0
    new = next(row for row in journey["repeat_vs_new_conversion"] if row["customer_type"] == "new")
    assert (new["opportunities"], new["converted"], new["rate"]) == (40, 0, 0.0)
    assert [row["customers"] for row in journey["funnel"]] == [40, 40, 0, 0, 0]
    assert {row["step"]: row["lost"] for row in journey["lost_sales"]} == {"consultation": 0, "quote": 40}
    assert skips["journey.segments"] == "one segment only (private)"
    assert skips["journey.campaigns"] == "no campaign contacts"
    assert skips["journey.tenure"] == "no churn dates"
    assert journey["repeat_customer_rate"]["value"] == 0.0 and journey["order_intervals"]["intervals"] == 0
    assert "journey.cancellations" not in skips                          # 0 of 5 orders cancelled is a result
