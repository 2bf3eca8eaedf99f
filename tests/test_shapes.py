"""Five shapes of real exports end to end through `cx run`, without the demo (the full demo is the
session's `baseline`): survey only; process log only; orders with review stars; a ratings table
without ids or dates; a complaint log without customers. Each runs stages 01-04 from a source
mapping alone and must exit 0, name what it skipped, and get the key numbers right (05-07 on thin
data: tests/test_value_shapes.py and the ten real datasets of tests/test_real_data.py, which run
every stage).

The fixtures are hand-made, under tests/data/shapes/<shape>/ with the mapping <shape>.yml beside.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, copy_project, run_cx

SHAPES = ROOT / "tests" / "data" / "shapes"
GENERIC = "config/taxonomy_generic.yml"
STAGES = ["01_validate_clean", "02_feedback", "03_journey", "04_moments_of_truth"]   # what the shapes assert


def run_source(project: Path, source: str | Path, raw_dir: Path, *, taxonomy: str | None = None,
               notebooks: dict | None = None, only: list[str] | None = None):
    """`cx run` of a fresh project copy on `raw_dir` through the mapping `source`.

    Returns (completed process, results.json of the run or {}, processed tables dict)."""
    from cxlib.catalog import read as read_processed

    copy_project(project)
    args = ["run", "--project", str(project), "-q", "-p", f"source={source}", "-p", f"raw_dir={raw_dir}"]
    if taxonomy:
        args += ["-p", f"taxonomy={taxonomy}"]
    if notebooks:
        (project / "params" / "shape.yml").write_text(json.dumps({"notebooks": notebooks}), encoding="utf-8")
        args += ["-f", str(project / "params" / "shape.yml")]
    for name in only or []:
        args += ["--only", name]
    done = run_cx(*args, cwd=project)
    latest = project / "reports" / "latest" / "results.json"
    results = json.loads(latest.read_text(encoding="utf-8")) if latest.is_file() else {}
    processed = project / "data" / "processed"
    tables = read_processed(processed) if any(processed.glob("*.parquet")) else {}
    return done, results, tables


def skipped(results: dict) -> dict[str, str]:
    """section -> reason of every skipped section."""
    return {s["section"]: s["reason"] for s in results.get("skipped", [])}


def ran_ok(done) -> None:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def shape_run(tmp_path_factory):
    """One `cx run` per shape, on first use: shape -> (done, results, tables)."""
    runs: dict[str, tuple] = {}

    def get(shape: str, taxonomy: str | None = GENERIC, notebooks: dict | None = None):
        if shape not in runs:
            project = tmp_path_factory.mktemp(f"shape_{shape}")
            runs[shape] = run_source(project, SHAPES / f"{shape}.yml", SHAPES / shape, taxonomy=taxonomy,
                                     notebooks=notebooks, only=STAGES)
        return runs[shape]

    return get


def test_survey_only(shape_run):
    done, results, tables = shape_run("survey", taxonomy=None)
    ran_ok(done)
    assert results["tables"] == {"customers": 45, "events": 0, "feedback": 63, "orders": 0, "campaigns": 0}
    nps = results["feedback"]["nps"]
    assert (nps["n"], round(nps["value"], 1)) == (60, 30.0)         # 30 promoters, 18 passives, 12 detractors
    assert "csat" not in results["feedback"] and "ces" not in results["feedback"]
    skips = skipped(results)
    assert skips["feedback.ces"] == "no CES answers"
    assert {"journey.funnel", "journey.paths", "journey.repeat_customers"} <= set(skips)
    assert not any(key.startswith(("feedback.nps", "feedback.trend")) for key in skips)
    # customers derived from the answers: nobody consented, so nobody is on a contact list
    assert tables["customers"]["contact_consent"].eq(False).all()
    assert results.get("contact_list", {}).get("included", 0) == 0


def test_process_log_only(shape_run):
    done, results, tables = shape_run("tickets", notebooks={"03_journey": {
        "funnel_steps": ["request", "processing", "decision"], "step_pairs": [["request", "decision"]],
        "highlight_pair": ["request", "decision"], "opportunity_steps": []}})
    ran_ok(done)
    assert results["tables"] == {"customers": 30, "events": 84, "feedback": 0, "orders": 0, "campaigns": 0}
    events = tables["events"]
    assert events["touchpoint"].value_counts().to_dict() == {"request": 30, "processing": 30, "decision": 24}
    assert events["channel"].value_counts().to_dict() == {"web": 22, "letter": 22, "store": 20, "email": 20}
    assert events["stage"].value_counts().to_dict() == {"delivery": 54, "purchase": 30}
    funnel = {row["step"]: row["customers"] for row in results["journey"]["funnel"]}
    assert funnel == {"request": 30, "processing": 30, "decision": 24}
    skips = skipped(results)
    assert {"feedback.nps", "journey.repeat_customers"} <= set(skips) or "feedback" not in results
    assert "journey.funnel" not in skips


def test_orders_and_review_stars(shape_run):
    done, results, tables = shape_run("orders_reviews")
    ran_ok(done)
    assert results["tables"] == {"customers": 25, "events": 0, "feedback": 30, "orders": 40, "campaigns": 0}
    orders, feedback = tables["orders"], tables["feedback"]
    assert orders["revenue"].sum() == 2185.0 and orders["status"].value_counts().to_dict() == {
        "completed": 36, "cancelled": 4}
    assert feedback["customer_id"].notna().all()                       # found through the orders file
    csat = results["feedback"]["csat"]
    assert (csat["n"], round(csat["value"], 1)) == (30, 60.0)         # 18 of 30 reviews give 4 or 5 stars
    assert "nps" not in results["feedback"]
    repeat = results["journey"]["repeat_customer_rate"]
    assert (repeat["n"], repeat["value"]) == (24, 0.5)                # 12 of 24 buyers ordered twice
    assert "feedback.nps" in skipped(results) or "feedback.word_of_mouth" in skipped(results)


def test_ratings_table_without_ids_or_dates(shape_run):
    done, results, tables = shape_run("ratings")
    ran_ok(done)
    assert results["tables"] == {"customers": 60, "events": 0, "feedback": 240, "orders": 0, "campaigns": 0}
    feedback = tables["feedback"]
    assert feedback["timestamp"].isna().all() and feedback["csat_max"].eq(10).all()
    overall = feedback.loc[feedback["touchpoint"].eq("overall"), "csat"]
    assert (len(overall), overall.mean()) == (60, 6.55)
    top_two = overall.ge(9).mean() * 100                       # CSAT: share in the top two points of 1-10
    assert results["feedback"]["csat"]["n"] == 60              # the headline KPI reads the overall ratings only
    assert results["feedback"]["csat"]["value"] == pytest.approx(top_two, abs=0.05)
    drivers = results["drivers"]
    assert [row["driver"] for row in drivers][:1] == ["product_quality"]     # r = 0.76 with the overall rating
    assert {row["n"] for row in drivers} == {60} and sum(row["share"] for row in drivers) == pytest.approx(100)
    skips = skipped(results)
    assert "feedback.trend" in skips and "journey.funnel" in skips


def test_complaint_log_without_customers(shape_run):
    done, results, tables = shape_run("complaints")
    ran_ok(done)
    assert results["tables"] == {"customers": 0, "events": 48, "feedback": 0, "orders": 0, "campaigns": 0}
    events = tables["events"]
    assert events["customer_id"].isna().all()
    months = events["timestamp"].dt.strftime("%Y-%m").value_counts().sort_index()
    assert months.tolist() == [8] * 6                                    # a date-only 1st stays in its month
    assert events["contact_reason"].value_counts().to_dict() == {
        "complaint_delivery": 12, "complaint_billing": 12, "complaint_staff": 12, "complaint_product": 12}
    counts = pd.DataFrame(results["complaint_counts"])                  # no active base: counts, not rates
    assert counts.groupby("month")["complaints"].sum().to_dict() == {f"2024-0{m}": 8 for m in range(1, 7)}
    assert "feedback.nps" in skipped(results) or not results.get("feedback")
