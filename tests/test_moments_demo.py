"""Moments of truth on the demo company: every planted effect is recovered.

- an unclear invoice costs about 30 NPS points; slow provisioning (order -> activation over 14
  days) costs NPS and raises churn (hazard x2 planted); long hotline waits lead to hotline
  complaints and lower CES; an unresolved service-failure complaint triples churn for 90 days;
  a proactive outage notice is a magic moment; the ranking puts the planted moments first;
- the billing-complaint spike month is the only billing month out of control, and a control
  company generated without the spike has no billing month out of control;
- notebook 04_moments_of_truth runs on the processed demo tables, records `moments_of_truth`,
  `complaints` and `contact_list` at the top level of results.json and writes the contact list
  CSV, with no CRM number, name or contact detail in the notebook's output.

The demo (20,000 customers, seed 7: the default company, big enough for the effects to stand
out of the noise) is built in memory with the demo source mapping and the cleaning rules, as
01_validate_clean does; the work over all events runs through the engine like journey's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxlib import catalog, clean, config, demo, engine, feedback_table, moments, report, sources

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS, SEED = 20_000, 7
KEY = b"moments-demo-test-key"


def build(tmp: Path, tax) -> dict:
    """Demo exports -> staged -> cleaned tables, plus the ground truth."""
    company = demo.generate(CUSTOMERS, SEED)
    demo.write_exports(company, tmp / "raw")
    staged = sources.map_sources(ROOT / "config" / "sources" / "demo.yml", tmp / "raw", tax)
    cleaned = clean.clean_tables(staged.tables, tax, KEY)
    return {**cleaned.tables, "reidentification": cleaned.reidentification, "truth": company.ground_truth}


@pytest.fixture(scope="module")
def tax():
    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


@pytest.fixture(scope="module")
def world(tmp_path_factory, tax) -> dict:
    tables = build(tmp_path_factory.mktemp("moments_demo"), tax)
    processed = tmp_path_factory.mktemp("moments_processed") / "processed"
    catalog.write({k: tables[k] for k in ("customers", "events", "feedback", "orders", "campaigns")}, processed,
                            restricted={"reidentification": tables["reidentification"]})
    con = engine.connect("duckdb")
    on_disk = engine.read_tables(con, processed, ["events", "feedback", "customers"])
    events = moments.with_derived_moments(on_disk["events"], tax)
    candidates = moments.candidate_moments(events, tax)
    codes = candidates["moment"].tolist()
    handled = moments.handled_contacts(events, codes)
    first, last = moments.observation_period(on_disk["events"])
    responses = feedback_table.with_customers(tables["feedback"], tables["customers"], columns=["segment"])
    exposures = moments.response_exposures(handled, on_disk["feedback"], window_days=60)
    impact = {kpi: moments.kpi_impact(responses, exposures, moments=codes, kpi=kpi, min_n=50).set_index("moment")
              for kpi in ("nps", "ces")}
    churn = moments.churn_impact(handled, on_disk["customers"], start=first, end=last, churn_window_days=90, moments=codes)
    return {**tables, "processed": processed, "con": con, "on_disk": on_disk, "events": events, "handled": handled,
            "candidates": candidates, "codes": codes, "period": (first, last), "impact": impact,
            "churn": churn.set_index("moment"),
            "ranking": moments.rank_moments(candidates, impact["nps"].reset_index(), churn),
            "effects": tables["truth"]["effects"]}


def test_unclear_invoice_costs_about_thirty_nps_points(world):
    truth = world["effects"]["invoice_unclear_nps"]["realised"]
    row = world["impact"]["nps"].loc["invoice_unclear"]
    assert row["significant"] and row["adjusted_high"] < 0
    assert row["adjusted"] == pytest.approx(truth["nps_diff"], abs=8)
    assert row["difference"] == pytest.approx(truth["nps_diff"], abs=8)
    assert row["n_exposed"] == pytest.approx(truth["n_exposed"], rel=0.15)


def test_slow_provisioning_costs_nps_and_raises_churn(world):
    truth = world["effects"]["provisioning_delay"]["realised"]
    planted = world["truth"]["planted"]["provisioning"]
    row = world["impact"]["nps"].loc["slow_provisioning"]
    assert row["significant"] and row["adjusted_high"] < 0
    assert row["adjusted"] == pytest.approx(truth["nps_diff"], abs=15)
    churn = world["churn"].loc["slow_provisioning"]
    assert churn["customers_exposed"] == pytest.approx(truth["long_share_of_broadband_orders"] * truth["broadband_orders"], rel=0.1)
    assert 1.2 < churn["churn_lift"] < 2 * planted["churn_hazard_ratio"]


def test_long_hotline_waits_lead_to_hotline_complaints_and_lower_ces(world):
    truth = world["effects"]["hotline_wait"]["realised"]
    waits = moments.complaints_after_waits(world["on_disk"]["events"], followup_days=11).set_index("wait_band")
    long = waits.loc[["5–15 min", "≥ 15 min"]]
    short = waits.loc[["< 1 min", "1–5 min"]]
    long_rate = long["followed"].sum() / long["contacts"].sum()
    short_rate = short["followed"].sum() / short["contacts"].sum()
    assert long_rate == pytest.approx(truth["complaint_rate_long_wait"], abs=0.03)
    assert short_rate == pytest.approx(truth["complaint_rate_short_wait"], abs=0.01)
    assert long["ci_low"].min() > 5 * short["ci_high"].max()
    ces = world["impact"]["ces"].loc["long_hotline_wait"]
    assert ces["significant"] and ces["adjusted"] == pytest.approx(truth["ces_diff"], abs=0.4)
    assert world["impact"]["ces"].loc["complaint_hotline", "adjusted_high"] < 0


def test_unresolved_service_failure_complaints_triple_churn(world):
    planted = world["truth"]["planted"]["unresolved_service_failure"]
    first, last = world["period"]
    out = moments.handling_churn(world["handled"], world["on_disk"]["customers"], start=first, end=last,
                                 churn_window_days=planted["window_days"], moments=["complaint_service_failure"],
                                 dimensions=["resolution"]).set_index("level")
    unresolved, resolved = out.loc["unresolved"], out.loc["resolved"]
    assert unresolved["churn_lift"] == pytest.approx(planted["churn_hazard_ratio"], rel=0.3)
    assert unresolved["lift_low"] > 2 and unresolved["significant"]
    assert resolved["churn_lift"] < unresolved["lift_low"]


def test_proactive_outage_notification_is_a_magic_moment(world):
    truth = world["effects"]["outage_notification"]["realised"]
    row = world["impact"]["nps"].loc["outage_notification"]
    assert row["significant"] and row["adjusted_low"] > 0
    assert row["adjusted"] == pytest.approx(truth["nps_diff_vs_all_not_notified"], abs=10)
    ranking = world["ranking"].set_index("moment")
    assert ranking.loc["outage_notification", "magic"] and ranking["magic"].sum() == 1


def test_ranking_puts_the_planted_moments_first(world):
    ranking = world["ranking"]
    assert ranking["moment"].tolist()[:2] == ["invoice_unclear", "slow_provisioning"]
    assert ranking["rank"].tolist()[:2] == [1, 2]
    # nothing else has NPS at stake: the other moments are indistinguishable from chance after BH
    at_stake = set(ranking.loc[ranking["priority"] > 0, "moment"])
    assert at_stake == {"invoice_unclear", "slow_provisioning"}
    assert ranking.loc[ranking["moment"] == "outage_notification", "priority"].iloc[0] < 0


def test_billing_spike_month_is_the_only_billing_month_out_of_control(world, tax):
    truth = world["effects"]["billing_complaint_spike"]
    first, last = world["period"]
    rates = moments.complaint_rates(world["on_disk"]["events"], world["on_disk"]["customers"], tax, start=first, end=last)
    billing = rates.loc[rates["category"] == "billing"]
    assert len(billing) == 24
    assert billing.loc[billing["out_of_control"], "month"].tolist() == [truth["planted"]["spike_month"]]
    assert truth["realised"]["outlier_months"] == [truth["planted"]["spike_month"]]
    spike = billing.set_index("month").loc[truth["planted"]["spike_month"]]
    assert spike["rate_per_1000"] == pytest.approx(truth["realised"]["spike_month_rate"], rel=0.1)
    assert spike["center_per_1000"] == pytest.approx(truth["realised"]["other_months_mean_rate"], rel=0.1)
    # the same numbers from pandas input (in memory) and from Parquet through the engine
    in_memory = moments.complaint_rates(world["events"].pipe(engine.to_pandas), world["customers"], tax, start=first, end=last)
    pd.testing.assert_frame_equal(rates, in_memory)
    # Laney's u'-chart (the notebook's default): billing is near-Poisson, so the same single month is
    # flagged; the outage-driven service-failure category, overdispersed, gets wider limits and fewer flags
    laney = moments.complaint_rates(world["on_disk"]["events"], world["on_disk"]["customers"], tax, start=first,
                                    end=last, chart="laney")
    lb = laney.loc[laney["category"] == "billing"]
    assert lb.loc[lb["out_of_control"], "month"].tolist() == [truth["planted"]["spike_month"]]
    failure = laney.loc[laney["category"] == "service_failure"]
    assert failure["dispersion"].iloc[0] > 1.5
    assert failure["out_of_control"].sum() < rates.loc[rates["category"] == "service_failure", "out_of_control"].sum()
    assert not (failure["signal"] == "below").any()
    with pytest.raises(moments.MomentsError, match="complaint chart must be one of"):
        moments.complaint_rates(world["on_disk"]["events"], world["on_disk"]["customers"], tax, chart="p")


def test_control_company_without_the_spike_has_no_billing_month_out_of_control(tmp_path, tax):
    with pytest.MonkeyPatch.context() as mp:   # the demo has no switch for the spike: plant none
        mp.setitem(demo.PLANTED["billing_complaints"], "spike_multiplier", 1.0)
        tables = build(tmp_path, tax)
    assert tables["truth"]["effects"]["billing_complaint_spike"]["realised"]["outlier_months"] == []
    for chart in moments.COMPLAINT_CHARTS:
        rates = moments.complaint_rates(tables["events"], tables["customers"], tax, chart=chart)
        billing = rates.loc[rates["category"] == "billing"]
        assert len(billing) == 24 and not billing["out_of_control"].any(), chart


def test_notebook_04_runs_on_the_demo_and_records_top_level_results(world, tmp_path):
    run_dir = tmp_path / "run"
    out_nb = tmp_path / "out.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "-k", "python3", str(ROOT / "notebooks" / "04_moments_of_truth.ipynb"),
         str(out_nb), "-p", "processed_dir", str(world["processed"]), "-p", "run_dir", str(run_dir),
         "-p", "taxonomy", str(ROOT / "config" / "taxonomy.yml")],
        cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = report.read_results(run_dir)
    assert {"moments_of_truth", "complaints", "contact_list", "moments"} <= set(results)
    rows = results["moments_of_truth"]
    assert {"moment", "reach", "nps_impact", "ci_low", "ci_high", "churn_lift", "priority"} <= set(rows[0])
    ranked = [r["priority"] for r in rows if r["priority"] is not None]
    assert ranked == sorted(ranked, reverse=True) and rows[0]["moment"] == "invoice_unclear"
    complaints = results["complaints"]
    assert {"category", "month", "rate_per_1000", "out_of_control"} <= set(complaints[0])
    assert [r["month"] for r in complaints if r["category"] == "billing" and r["out_of_control"]] == ["2025-03"]
    counts = results["contact_list"]
    assert {"included", "excluded_no_consent", "excluded_other"} <= set(counts)
    assert counts["included"] > 0 and counts["excluded_no_consent"] > 0
    # the CSV carries the CRM numbers; the notebook (and so its HTML) and results.json carry none
    csv = pd.read_csv(run_dir / "contact_list.csv", dtype=str)
    assert len(csv) == counts["included"] and csv["customer_ref"].str.fullmatch(r"K\d{7}").all()
    reid = world["reidentification"]
    shown = out_nb.read_text(encoding="utf-8") + json.dumps(results)
    listed = reid.loc[reid["customer_id"].isin(csv["customer_id"])]
    for column in ("customer_ref", "pii_name", "pii_email", "pii_phone"):
        leaked = [v for v in listed[column].dropna() if str(v) in shown]
        assert not leaked, (column, leaked[:3])
