"""Occasions and campaign relevance on the demo company: the planted effects are recovered.

- the demo's name days and occasion lead times are those of config/name_days_de.csv and the
  taxonomy's `occasions`, so the truth and the analysis derive the same occasions;
- Kundenbrief sends timed on an occasion are answered about three times as often (planted 3.0):
  the analysis gives the realised rates and ratio, and 3.0 lies within its interval; over all sends
  (the 16 older campaigns ignore occasions) the ratio equals the realised, smaller one;
- contact fatigue: response falls with every earlier send in 90 days (planted x0.75 a send);
- disversion: counting contract and option orders, the rate of regular customers rises through
  2025 as Kundenbrief responders book options; Kundenbrief recipients become regular more often
  than comparable non-recipients;
- notebook 07_occasions runs on the processed demo tables, records `occasions`,
  `campaign_relevance` and `disversion`, skips birthdays with a note, and writes the occasion list
  without names or contact details.

The demo (3,000 customers, seed 11: `demo_project` in conftest.py) is mapped and cleaned in
memory as 01_validate_clean does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxlib import catalog, demo, disversion, occasions, pipeline, relevance, report
from cxlib.config import fold

ROOT = Path(__file__).resolve().parents[1]
CALENDAR = ROOT / "config" / "name_days_de.csv"


@pytest.fixture(scope="module")
def world(demo_world) -> dict:
    tax, truth = demo_world["taxonomy"], demo_world["truth"]
    tables = {k: demo_world["tables"][k] for k in ("customers", "orders", "events", "campaigns")}
    inputs = relevance.prepare(tables, demo_world["reidentification"], tax, name_days=str(CALENDAR))
    return {"tables": demo_world["tables"], "reid": demo_world["reidentification"], "inputs": inputs,
            "effects": truth["effects"], "planted": truth["planted"]["occasion_program"], "tax": tax}


def kundenbrief(sends):
    """The Kundenbrief campaigns of the send counts (a DataFrame) or of the campaign sends (an engine table)."""
    if isinstance(sends, pd.DataFrame):
        return sends.loc[sends["campaign_id"].str.endswith("Kundenbrief")]
    return sends.filter(sends["campaign_id"].endswith("Kundenbrief"))


def test_demo_name_days_are_the_calendar_s():
    cal = occasions.read_name_days(CALENDAR).set_index("name")
    for name, mmdd in demo.NAME_DAYS.items():
        key = fold(name) if fold(name) in cal.index else fold(name).split("-")[0]
        assert f"{cal.loc[key, 'month']:02d}-{cal.loc[key, 'day']:02d}" == mmdd, name
    named = {fold(n) for n in demo.FIRST_M + demo.FIRST_F if n in demo.NAME_DAYS}
    assert {fold(n) for n in demo.FIRST_M + demo.FIRST_F} - named == {
        fold(n) for n in demo.FIRST_M + demo.FIRST_F if n not in demo.NAME_DAYS}
    unnamed = [n for n in demo.FIRST_M + demo.FIRST_F if n not in demo.NAME_DAYS]
    assert not [n for n in unnamed if fold(n) in cal.index or fold(n).split("-")[0] in cal.index]


def test_demo_occasions_are_the_taxonomy_s(world):
    types = world["inputs"].types.set_index("occasion")
    for code, cfg in demo.PLANTED["occasion_program"]["occasions"].items():
        for key, value in cfg.items():
            assert types.loc[code, key] == value, (code, key)


def test_occasion_timed_sends_respond_three_times_as_often(world):
    truth = world["effects"]["occasion_timed_response"]["realised"]
    sends = world["inputs"].sends
    program = relevance.occasion_response(kundenbrief(sends), adjust_for=["segment"])
    mine, theirs = program, truth["kundenbrief"]
    assert mine["occasion_timed"]["sends"] == pytest.approx(theirs["n_occasion_timed"], rel=0.02)
    assert mine["occasion_timed"]["rate"] == pytest.approx(theirs["rate_occasion_timed"], abs=0.005)
    assert mine["other"]["rate"] == pytest.approx(theirs["rate_other"], abs=0.002)
    assert mine["ratio"]["ratio"] == pytest.approx(theirs["ratio"], rel=0.05)
    planted = world["planted"]["occasion_response_ratio"]
    # tolerance from the interval: the planted ratio lies inside the 95% interval of the adjusted estimate
    assert program["adjusted"]["ci_low"] < planted < program["adjusted"]["ci_high"]
    assert program["adjusted"]["ci_low"] > 1.5 and program["adjusted"]["p_value"] < 1e-6
    everything = relevance.occasion_response(sends)
    assert everything["ratio"]["ratio"] == pytest.approx(truth["all_sends"]["ratio"], rel=0.05)
    assert 1 < everything["adjusted"]["ci_low"] and everything["adjusted"]["ratio"] < planted


def test_contact_fatigue_lowers_response(world):
    truth = world["effects"]["contact_fatigue"]["realised"]["kundenbrief_by_prior_sends"]
    program = kundenbrief(world["inputs"].sends)
    bands = relevance.fatigue(program).set_index("band")
    for band, row in truth.items():
        assert bands.loc[band, "rate"] == pytest.approx(row["rate"], abs=0.006), band
    slope = relevance.fatigue_slope(world["inputs"].sends)
    assert slope["ci_high"] < 1                                       # negative slope over all sends
    assert relevance.fatigue_slope(program)["rate_ratio_per_contact"] == pytest.approx(
        world["planted"]["fatigue_ratio_per_send"], abs=0.1)


def test_disversion_rises_with_the_options_responders_book(world):
    truth = world["effects"]["disversion"]["realised"]
    inputs = world["inputs"]
    contracts = inputs.orders.filter((inputs.orders["category"] != "Zusatzprodukte").fill_null(True))
    monthly = disversion.disversion_by_month(inputs.customers, contracts).set_index("month")
    for month, row in truth["monthly"].items():
        assert monthly.loc[month, "customers"] == pytest.approx(row["customers"], abs=3), month
        assert monthly.loc[month, "rate"] == pytest.approx(row["rate"], abs=0.002), month
    trend = disversion.disversion_trend(monthly.reset_index().loc[lambda d: d["month"].isin(list(truth["monthly"]))])
    assert trend["difference"] == pytest.approx(truth["change_points"], abs=0.3) and trend["difference"] > 0
    by_campaign = disversion.campaign_disversion(kundenbrief(inputs.campaigns), inputs.customers, contracts, follow_days=180)
    pooled = by_campaign.iloc[-1]
    assert pooled["campaign_id"] == "all campaigns" and pooled["difference"] > 0 and pooled["ci_low"] > 0


def test_notebook_07_runs_on_the_demo_and_keeps_names_out(world, tmp_path):
    processed = tmp_path / "processed"
    catalog.write({k: world["tables"][k] for k in ("customers", "events", "feedback", "orders", "campaigns")},
                            processed, restricted={"reidentification": world["reid"]})
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "-k", "python3", str(ROOT / "notebooks" / "07_occasions.ipynb"),
         str(tmp_path / "out.ipynb"), "-p", "processed_dir", str(processed), "-p", "run_dir", str(run_dir),
         "-p", "taxonomy", str(ROOT / "config" / "taxonomy.yml"), "-p", "name_days", str(CALENDAR)],
        cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=600, env={**os.environ, **pipeline.KERNEL_ENV})
    assert done.returncode == 0, done.stderr[-3000:]
    executed = json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8"))
    outputs = [out for cell in executed["cells"] if cell["cell_type"] == "code" for out in cell.get("outputs", [])]
    assert [out for out in outputs if out["output_type"] in ("stream", "error")] == []
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 4
    results = report.read_results(run_dir)
    assert [s["section"] for s in results["skipped"]] == ["occasions.birthday"]
    assert {"occasions", "occasion_list", "campaign_relevance", "campaign_fatigue", "campaign_interest", "disversion",
            "disversion_by_campaign"} <= set(results)
    assert results["occasions"]["horizon_days"] == 30 and sum(r["customers"] for r in results["occasions"]["counts"]) > 0
    assert results["campaign_relevance"]["adjusted"]["ratio"] > 1.5
    listed = pd.read_csv(run_dir / "occasion_list.csv", dtype=str)
    assert list(listed.columns) == ["customer_ref", "customer_id", "channel", "occasion", "owner", "date", "contact_from"]
    assert len(listed) == results["occasion_list"]["included"] > 0
    shown = json.dumps(outputs, ensure_ascii=False) + (run_dir / "occasion_list.csv").read_text(encoding="utf-8")
    names = world["reid"]["pii_name"].dropna().sample(200, random_state=1)
    assert not [n for n in names if n in shown]
    assert not [r for r in listed["customer_ref"].head(20) if r in json.dumps(outputs)]    # CRM numbers only in the CSV
