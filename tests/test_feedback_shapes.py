"""Notebook 02_feedback on thin data: each shape runs to the end, records the KPIs it has and lists
the sections it cannot show under `skipped` (with what would enable them).

Shapes: a ratings table (CSAT on 1-10, no NPS, no dates, no customers, no comments); an NPS survey
of one segment in one month with French comments (mapped language) and no events; no feedback at
all (a complaint log). The processed folders are built from hand-made canonical frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

from conftest import write_processed_frames
from cxlib import metrics, report

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_feedback.ipynb"
TEXT_SECTIONS = {"feedback.languages", "feedback.sentiment", "feedback.sentiment_by_nps", "feedback.themes", "feedback.quotes",
                 "feedback.uncovered_terms", "feedback.text_quality_labels"}


def run_notebook(tmp_path: Path, frames: dict) -> dict:
    processed = write_processed_frames(tmp_path / "processed", frames)
    run_dir = tmp_path / "run"
    os.environ.setdefault("MPLBACKEND", "Agg")
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "02_out.ipynb"), kernel_name="python3",
                               cwd=str(ROOT / "notebooks"), progress_bar=False,
                               parameters={"processed_dir": str(processed), "run_dir": str(run_dir),
                                           "raw_dir": str(tmp_path / "raw"),
                                           "taxonomy": str(ROOT / "config" / "taxonomy.yml")})
    return report.read_results(run_dir)


def skipped(results: dict) -> dict[str, dict]:
    return {row["section"]: row for row in results.get("skipped", [])}


def test_ratings_table_without_nps_dates_customers_or_comments(tmp_path):
    # 40 answers on 1-10: 12 x 10 and 8 x 9 are the top two points -> CSAT 50%
    csat = [10.0] * 12 + [9.0] * 8 + [7.0] * 10 + [3.0] * 10
    feedback = pd.DataFrame({"response_id": [f"r{i}" for i in range(40)], "csat": csat, "csat_max": 10.0})
    results = run_notebook(tmp_path, {"feedback": feedback})
    fb, skips = results["feedback"], skipped(results)
    low, high = metrics.wilson_interval(20, 40)
    assert fb["csat"] == pytest.approx({"value": 50.0, "ci_low": 100 * float(low), "ci_high": 100 * float(high), "n": 40})
    assert "nps" not in fb and "ces" not in fb and fb["kpis"] == ["csat"]
    assert skips["feedback.nps"]["reason"] == "no NPS answers"
    assert skips["feedback.ces"]["reason"] == "no CES answers"
    assert skips["feedback.by_group"]["reason"] == "no segment is recorded for the answers"
    assert skips["feedback.trend"] == {"section": "feedback.trend", "reason": "the answers have no dates",
                                       "enable": "feedback.timestamp"}
    assert skips["feedback.word_of_mouth"]["reason"].startswith("no NPS answers")
    assert skips["feedback.languages"]["reason"] == "no comments in the selection"
    assert TEXT_SECTIONS <= set(skips) and "feedback.kpis" not in skips
    assert fb["sample_size"]["kpi"] == "csat" and fb["sample_size"]["needed"] == 385


def test_nps_survey_of_one_segment_in_one_month_with_french_comments(tmp_path):
    scores = [10.0] * 10 + [8.0] * 5 + [2.0] * 15           # NPS (10 - 15) / 30 = -16.7
    n = len(scores)
    feedback = pd.DataFrame({
        "response_id": [f"r{i}" for i in range(n)], "customer_id": [f"c{i % 3}" for i in range(n)],
        "timestamp": pd.date_range("2024-03-01", periods=n, freq="D", tz="UTC"), "nps": scores,
        "comment": pd.Series(["Très bon service, merci"] * 4 + [None] * (n - 4), dtype="str"),
        "language": "fr",
    })
    customers = pd.DataFrame({"customer_id": ["c0", "c1", "c2"], "segment": "private", "contact_consent": False})
    results = run_notebook(tmp_path, {"feedback": feedback, "customers": customers})
    fb, skips = results["feedback"], skipped(results)
    assert fb["nps"]["value"] == pytest.approx(-50 / 3) and fb["nps"]["n"] == 30
    assert fb["kpis"] == ["nps"] and "csat" not in fb
    assert skips["feedback.by_group"]["reason"] == "all answers come from one segment (private)"
    assert skips["feedback.trend"]["reason"] == "all dated answers fall in one month (2024-03)"
    assert skips["feedback.word_of_mouth"]["reason"] == "all dated answers fall in one month (2024-03)"
    assert fb["comments"] == {"total": 4, "other": 4}        # French: counted, not scored
    for key in ("feedback.sentiment", "feedback.sentiment_by_nps", "feedback.themes", "feedback.uncovered_terms"):
        assert skips[key]["reason"] == "no German or English comments"      # one reason: listed once at the top
    assert {"feedback.themes", "feedback.quotes", "feedback.text_quality_labels"} <= set(skips)
    assert "feedback.languages" not in skips and "feedback.sample_size" not in skips


def test_no_feedback_at_all(tmp_path):
    events = pd.DataFrame({"event_id": ["e1", "e2"], "timestamp": pd.to_datetime(["2024-01-02", "2024-02-03"], utc=True),
                           "channel": "phone", "touchpoint": "complaint", "customer_id": np.nan})
    results = run_notebook(tmp_path, {"events": events})
    fb, skips = results["feedback"], skipped(results)
    assert fb["kpis"] == [] and not {"nps", "csat", "ces", "by_segment"} & set(fb)
    assert {"feedback.nps", "feedback.csat", "feedback.ces", "feedback.kpis", "feedback.by_group", "feedback.trend",
            "feedback.word_of_mouth", "feedback.sample_size"} | TEXT_SECTIONS <= set(skips)
    assert skips["feedback.kpis"]["reason"] == "no NPS, CSAT or CES answers"
