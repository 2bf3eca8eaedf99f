"""Journey analysis on the demo company: the planted effects are recovered.

- repeat (existing) customers convert quotes and consultations far more often than new leads,
  close to the ground truth (65% against 12% planted);
- slow provisioning shows in the order → activation times of broadband, not of mobile;
- the transition counts of the engine equal a plain pandas computation on the demo's events;
- notebook 03_journey runs on the processed demo tables and records its results.

The processed demo tables are built in memory from the session's demo exports (`demo_project`
in conftest.py) with the demo source mapping and the cleaning rules, as 01_validate_clean does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import catalog, journey, pipeline, report

ROOT = Path(__file__).resolve().parents[1]
OPPORTUNITIES = ["quote", "consultation"]
OPTIONS = ["Zusatzkarte", "Datenpaket 10 GB", "TV-Option", "Sicherheitspaket", "Festnetz-Flat"]   # add-ons, not contracts


@pytest.fixture(scope="module")
def demo(demo_world) -> dict:
    return {**demo_world["tables"], **{key: demo_world[key] for key in ("taxonomy", "truth", "project")}}


@pytest.fixture(scope="module")
def events(demo):
    return journey.with_stages(demo["events"], demo["taxonomy"])


def test_repeat_customers_convert_far_more_often_than_new_ones(demo, events):
    truth = demo["truth"]["effects"]["repeat_customer_conversion"]["realised"]
    as_of = demo["events"]["timestamp"].max()
    out = journey.repeat_vs_new_conversion(events, demo["orders"], customers=demo["customers"], steps=OPPORTUNITIES,
                                           window_days=30, as_of=as_of, exclude_statuses=()).set_index("customer_type")
    repeat, new = out.loc["repeat"], out.loc["new"]
    assert repeat["opportunities"] == pytest.approx(truth["n_existing"], rel=0.05)
    assert new["opportunities"] == pytest.approx(truth["n_new_leads"], rel=0.05)
    assert repeat["rate"] == pytest.approx(truth["conversion_existing_customers"], abs=0.03)
    assert new["rate"] == pytest.approx(truth["conversion_new_leads"], abs=0.02)
    assert repeat["ci_low"] > 3 * new["ci_high"]


def test_slow_provisioning_shows_in_order_to_activation_times(demo, events):
    planted = demo["truth"]["planted"]["provisioning"]
    realised = demo["truth"]["effects"]["provisioning_delay"]["realised"]
    threshold = planted["threshold_days"]
    orders = demo["orders"]
    contracts = orders[~orders["product"].isin(OPTIONS)]
    # the order milestones are melted from one order row: event ids are "<order id>-<touchpoint>"
    order_of_event = demo["events"]["event_id"].str.rsplit("-", n=1).str[0]
    timing = {
        category: journey.time_between_steps(
            demo["events"][order_of_event.isin(contracts.loc[contracts["category"] == category, "order_id"])],
            [("order", "activation")], over_days=threshold).iloc[0]
        for category in ("Breitband", "Mobilfunk")
    }
    broadband, mobile = timing["Breitband"], timing["Mobilfunk"]
    assert broadband["pairs"] > 100
    assert broadband["days_p90"] > threshold > broadband["days_median"]
    assert mobile["days_p90"] < threshold
    assert broadband["share_over"] == pytest.approx(realised["long_share_of_broadband_orders"], abs=0.02)
    assert mobile["share_over"] == 0
    # the same contrast through the notebook's focus filter (customers who bought the category)
    tables = {"customers": demo["customers"], "events": events, "orders": orders}
    focused = {category: journey.time_between_steps(journey.apply_focus(tables, f"product:{category}")["events"],
                                                    [("order", "activation")], over_days=threshold).iloc[0]
               for category in ("Breitband", "Mobilfunk")}
    assert focused["Breitband"]["share_over"] > 3 * focused["Mobilfunk"]["share_over"]


def test_transitions_equal_a_pandas_computation_on_the_demo(demo):
    ev = demo["events"]
    ordered = ev.sort_values(["customer_id", "timestamp", "event_id"], kind="stable")
    nxt = ordered.groupby("customer_id")["touchpoint"].shift(-1)
    expected = (pd.DataFrame({"from_step": ordered["touchpoint"], "to_step": nxt}).dropna()
                .value_counts().rename("transitions").reset_index()
                .astype({"from_step": "str", "to_step": "str", "transitions": "int64"})
                .sort_values(["from_step", "to_step"], ignore_index=True))
    got = (journey.transitions(ev).drop(columns="probability")
           .sort_values(["from_step", "to_step"], ignore_index=True))
    assert_frame_equal(got, expected)


def test_funnel_and_rates_on_the_demo(demo, events):
    steps = ["web_visit|tariff_page", "quote|consultation", "order", "activation"]
    funnel = journey.funnel(events, steps)
    assert funnel["customers"].is_monotonic_decreasing
    assert (funnel["customers"] > 0).all()
    truth = demo["truth"]["effects"]["repeat_customer_conversion"]["realised"]
    conversion = journey.conversion_rate(demo["customers"], demo["orders"], since=demo["truth"]["period"]["start"])
    assert conversion["rate"].iloc[0] == pytest.approx(truth["lead_conversion_rate"], abs=0.03)
    repeat = journey.repeat_customer_rate(demo["orders"])
    assert 0 < repeat["rate"].iloc[0] < 1


def test_notebook_03_runs_on_demo_data_and_records_results(demo, tmp_path):
    processed = tmp_path / "processed"
    catalog.write({k: demo[k] for k in ("customers", "events", "orders", "campaigns", "feedback")}, processed)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "-k", "python3", str(ROOT / "notebooks" / "03_journey.ipynb"),
         str(tmp_path / "out.ipynb"), "-p", "processed_dir", str(processed), "-p", "run_dir", str(run_dir),
         "-p", "taxonomy", str(ROOT / "config" / "taxonomy.yml")],
        cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=600,
        env={**os.environ, **pipeline.KERNEL_ENV},      # figures inline, as in `cx run` (conftest sets Agg)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    executed = json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8"))
    code = [cell for cell in executed["cells"] if cell["cell_type"] == "code"]
    figures = sum("".join(cell["source"]).count("journey_figures.") for cell in code)
    outputs = [out for cell in code for out in cell.get("outputs", [])]
    assert figures >= 6
    assert sum("image/png" in out.get("data", {}) for out in outputs) == figures   # every figure shows, not only the first
    assert [out for out in outputs if out["output_type"] in ("stream", "error")] == []   # no warnings or prints
    assert [out for out in outputs if set(out.get("data", {})) == {"text/plain"}] == []   # no stray reprs
    merged = report.read_results(run_dir)
    assert [entry for entry in merged.get("skipped", []) if entry["section"].startswith("journey.")] == []  # the demo has it all
    results = merged["journey"]
    assert [row["step"] for row in results["funnel"]][2] == "order"
    assert {"step", "customers", "conversion"} <= set(results["funnel"][0])
    assert 0 < results["conversion_rate"]["value"] < 1
    assert 0 < results["repeat_customer_rate"]["value"] < 1
    assert {row["to_step"] for row in results["time_between_steps"]} >= {"activation"}
    assert results["order_intervals"]["intervals"] > 0 and results["order_intervals"]["days_median"] > 0
    assert 0 < results["campaign_response_rate"]["value"] < 1
