"""Stage 04 (moments of truth) on thin data: each section runs what the data supports and says
what is missing (schema.Missing) instead of crashing. Fast checks through `moments.prepare` on
hand-made frames first, then the notebook on three shapes (orders with review stars and a
late-delivery moment, a ratings table, a complaint log), asserting results.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest
import yaml

from conftest import write_processed_frames
from cxlib import config, moments, report
from cxlib.schema import Missing

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_moments_of_truth.ipynb"
DAY0 = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(scope="module")
def taxonomy():
    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


def day(n: float) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=n)


def events(rows, *, customers: bool = True) -> pd.DataFrame:
    """rows: (customer_id, day, touchpoint, contact_reason); ids e1, e2, … in row order."""
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "touchpoint", "contact_reason"])
    return frame.assign(event_id=[f"e{i}" for i in range(1, len(frame) + 1)],
                        customer_id=frame["customer_id"] if customers else None,
                        timestamp=pd.to_datetime(frame["timestamp"].map(day), utc=True), channel="phone",
                        resolved=True)


def derived_customers(ids) -> pd.DataFrame:
    """Customers as stage 01 derives them from the other tables: ids only, no consent, no dates."""
    return pd.DataFrame({"customer_id": sorted(set(ids)), "contact_consent": False})


def frames(tables: dict) -> dict:
    """Every canonical table with its columns (absent ones missing), as the processed folder holds them."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_processed_frames(Path(tmp) / "processed", tables)
        return {name: pd.read_parquet(folder / f"{name}.parquet") for name in ("events", "feedback", "customers", "orders")}


# --- fast: the section entry points on hand-made frames ---------------------------------------------

INVOICES = [(f"C{i}", i, "service_contact", "invoice_unclear") for i in range(8)]
CSAT_ONLY = pd.DataFrame({"response_id": [f"r{i}" for i in range(16)], "customer_id": [f"C{i}" for i in range(16)],
                          "timestamp": [day(i + 5) for i in range(16)], "csat": [2.0] * 8 + [5.0] * 8})


def test_without_nps_the_impact_and_ranking_use_csat(taxonomy):
    inputs = moments.prepare(frames({"events": events(INVOICES), "feedback": CSAT_ONLY,
                                     "customers": derived_customers(f"C{i}" for i in range(16))}), taxonomy, min_exposed=1)
    assert inputs.kpis == ["csat"] and inputs.kpi == "csat" and inputs.covariates == []
    impact = moments.impacts(inputs)
    assert list(impact) == ["csat"]
    row = impact["csat"].set_index("moment").loc["invoice_unclear"]
    assert (row["n_exposed"], row["n_unexposed"], row["exposed_value"], row["unexposed_value"]) == (8, 8, 0.0, 100.0)
    ranking = moments.ranked_moments(inputs, impact)
    assert ranking["kpi"].tolist() == ["csat"] and ranking["reach"].tolist() == [0.5]     # 8 of 16 customers
    assert moments.ranking_record(ranking)["nps_impact"].isna().all()
    with pytest.raises(Missing, match="no second KPI"):
        moments.kpis_table(impact, inputs.labels, skip="csat")
    with pytest.raises(Missing, match="no customer churned in the period"):
        moments.churn_after_moments(inputs)


def test_without_events_every_event_section_says_so_and_drivers_still_run(taxonomy):
    ratings = pd.DataFrame({"response_id": [f"{r}-{a}" for r in range(6) for a in ("overall", "q1", "q2")],
                            "customer_id": [f"R{r}" for r in range(6) for _a in range(3)],
                            "touchpoint": ["overall", "q1", "q2"] * 6,
                            "csat": [9, 8, 5, 4, 3, 6, 7, 7, 2, 3, 2, 9, 8, 9, 4, 5, 5, 5], "csat_max": 10.0})
    inputs = moments.prepare(frames({"feedback": ratings, "customers": derived_customers(f"R{r}" for r in range(6))}),
                             taxonomy)
    assert inputs.start is None and inputs.handled is None and inputs.candidates.empty and inputs.kpis == []
    for section in (moments.require_moments, moments.impacts, moments.churn_after_moments, moments.handling_quality):
        with pytest.raises(Missing, match="no events"):
            section(inputs)
    with pytest.raises(Missing, match="no complaints"):
        moments.complaints_by_month(inputs.log, inputs.customers, taxonomy)
    with pytest.raises(Missing, match="no contact with a recorded wait"):
        moments.complaints_after_waits(inputs.log)
    with pytest.raises(Missing, match="no contacts of a moment"):
        moments.recent_moments(inputs.handled, moments=["invoice_unclear"], as_of=DAY0)
    weights = moments.driver_analysis(inputs.responses, min_n=6)
    assert sorted(weights["driver"]) == ["q1", "q2"] and weights["weight"].is_monotonic_decreasing


def test_feedback_without_dates_has_no_impact_but_events_without_customers_still_count(taxonomy):
    undated = CSAT_ONLY.assign(timestamp=pd.Series([pd.NaT] * 16, dtype="datetime64[us, UTC]"))
    inputs = moments.prepare(frames({"events": events(INVOICES, customers=False), "feedback": undated}), taxonomy)
    assert inputs.candidates.set_index("moment").loc["invoice_unclear", "contacts"] == 8
    with pytest.raises(Missing, match="no NPS, CSAT or CES answers of known customers with a date"):
        moments.impacts(inputs)
    with pytest.raises(Missing, match="the contacts do not name their customers"):
        moments.churn_after_moments(inputs)
    with pytest.raises(Missing, match="the contacts do not name their customers"):
        moments.recent_moments(inputs.handled, moments=["invoice_unclear"], as_of=day(30))


def test_absent_optional_columns_read_as_missing(taxonomy):
    """Older processed data lacks csat_max; a ratings feedback lacks every other optional column."""
    feedback = CSAT_ONLY.assign(csat=[4.0] * 16)                   # no csat_max column at all: top two of 1-5
    inputs = moments.prepare({"events": events(INVOICES).drop(columns=["resolved"]), "feedback": feedback,
                              "customers": derived_customers(f"C{i}" for i in range(16))}, taxonomy, min_exposed=1)
    assert "csat_max" in inputs.responses.columns and inputs.kpis == ["csat"]
    assert moments.impacts(inputs)["csat"]["exposed_value"].tolist()[0] == 100.0


# --- the notebook on three shapes -------------------------------------------------------------------

def run_notebook(tmp_path: Path, tables: dict, **parameters) -> dict:
    processed = write_processed_frames(tmp_path / "processed", tables)
    run_dir = tmp_path / "run"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                               cwd=str(ROOT / "notebooks"),
                               parameters={"processed_dir": str(processed), "run_dir": str(run_dir), **parameters})
    shown = (tmp_path / "out.ipynb").read_text(encoding="utf-8")
    for word in ("nan", "inf", "None"):
        assert f" {word} " not in shown and f" {word}%" not in shown and f"({word})" not in shown, word
    return report.read_results(run_dir)


def skipped(results: dict) -> dict[str, str]:
    return {entry["section"]: entry["reason"] for entry in results.get("skipped", [])}


def shop(n_on_time: int = 24, n_late: int = 12, n_never: int = 8) -> dict:
    """Orders with a promised day and review stars: on-time orders are reviewed after delivery
    (3 in 4 give 4-5 stars); late ones after the promised day but before the parcel comes (1 in 3
    gives 4 stars); some are never delivered (1-3 stars). No NPS, no churn, no complaints,
    customers derived."""
    rows, reviews = [], []
    groups = [("on_time", n_on_time, 3, 10, [5, 4, 5, 3]), ("late", n_late, 15, 8, [1, 2, 4]),
              ("never", n_never, None, 8, [1, 3])]
    k = 0
    for kind, n, delivered, reviewed, stars in groups:
        for i in range(n):
            c, start = f"{kind[0].upper()}{i}", (k * 1.3) % 50
            k += 1
            rows += [(c, start, "order", None), (c, start + 5, "delivery_promised", None)]
            rows += [(c, start + delivered, "delivery", None)] if delivered is not None else []
            reviews.append((f"rv-{c}", c, day(start + reviewed), float(stars[i % len(stars)])))
    feedback = pd.DataFrame(reviews, columns=["response_id", "customer_id", "timestamp", "csat"]).assign(csat_max=5.0)
    ev = events(rows)
    return {"events": ev.assign(resolved=None), "feedback": feedback, "customers": derived_customers(ev["customer_id"])}


def shop_taxonomy(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "config" / "taxonomy.yml").read_text(encoding="utf-8"))
    data["derived_moments"]["late_delivery"] = {
        "missed": {"due": "delivery_promised", "done": "delivery", "since": "order"},
        "comparable_when": {"touchpoint": "delivery_promised"}, "en": "Promised day passed without delivery"}
    path = tmp_path / "taxonomy.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_notebook_on_orders_with_review_stars_dates_the_late_delivery_at_the_promise(tmp_path):
    results = run_notebook(tmp_path, shop(), taxonomy=str(shop_taxonomy(tmp_path)), min_exposed=5, handling_min_n=5)
    impact = {r["moment"]: r for r in results["moments_impact"]["csat"]}
    late = impact["late_delivery"]
    # exposed: 12 late + 8 never delivered (the promise passed before the review); compared with the 24 on time
    assert (late["n_exposed"], late["n_unexposed"], late["like_with_like"]) == (20, 24, True)
    # CSAT (4-5 stars): 4 of 20 exposed against 18 of 24 compared
    assert late["exposed_value"] == pytest.approx(20.0) and late["unexposed_value"] == pytest.approx(75.0)
    assert late["difference"] == pytest.approx(-55.0) and late["significant"]
    assert [r["moment"] for r in results["moments_of_truth"]] == ["late_delivery"]
    assert results["moments_of_truth"][0]["kpi"] == "csat" and results["moments"]["kpis"] == ["csat"]
    assert skipped(results) == {
        "moments.churn": "no customer churned in the period",
        "moments.handling": "no contact reason the taxonomy names as a moment occurs",
        "moments.handling_churn": "no contact reason the taxonomy names as a moment occurs",
        "moments.waits": "no contact with a recorded wait",
        "moments.complaints": "no complaints in the events",
        "moments.drivers": "fewer than 5 respondents gave an overall answer and rated at least two attributes",
    }
    assert results["contact_list"]["candidates"] == 0 and results["contact_list"]["included"] == 0


def test_notebook_on_a_ratings_table_runs_only_the_drivers(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.integers(1, 11, size=(60, 3)).astype(float)
    overall = np.clip(np.round(0.6 * x[:, 0] + 0.3 * x[:, 1] + 0.1 * x[:, 2] + rng.normal(0, 0.5, 60)), 1, 10)
    ratings = pd.DataFrame([(f"{r}-{a}", f"R{r}", a, float(v)) for r in range(60)
                            for a, v in zip(("overall", "q1", "q2", "q3"), (overall[r], *x[r]))],
                           columns=["response_id", "customer_id", "touchpoint", "csat"]).assign(csat_max=10.0)
    results = run_notebook(tmp_path, {"feedback": ratings, "customers": derived_customers(f"R{r}" for r in range(60))},
                           min_exposed=30)
    drivers = results["drivers"]
    assert [d["driver"] for d in drivers] == ["q1", "q2", "q3"] and drivers[0]["outcome"] == "csat"
    assert [d["weight"] for d in drivers] == sorted((d["weight"] for d in drivers), reverse=True)
    assert drivers[0]["n"] == 60 and 0.5 < drivers[0]["r2"] <= 1
    gone = skipped(results)
    assert gone["moments.candidates"] == "no events" and gone["moments.impact"] == "no events"
    assert gone["moments.contact_list"] == "no contacts of a moment" and "moments.drivers" not in gone
    assert results["moments"]["period"] is None


def test_notebook_on_a_complaint_log_counts_complaints_per_month(tmp_path):
    rows = ([(None, d, "complaint", "complaint_billing") for d in (0, 3, 9, 31, 40)]       # day 31 = 1 February
            + [(None, d, "complaint", "complaint_billing") for d in range(60, 60 + 14)]       # a March breakout
            + [(None, d, "complaint", "complaint_service_failure") for d in (2, 35, 61)])
    results = run_notebook(tmp_path, {"events": events(rows, customers=False)}, complaint_chart="u")
    counts = {(r["category"], r["month"]): r for r in results["complaint_counts"]}
    assert [counts[("billing", m)]["complaints"] for m in ("2024-01", "2024-02", "2024-03")] == [3, 2, 14]
    assert counts[("billing", "2024-03")]["out_of_control"] and "complaints" not in results
    gone = skipped(results)
    assert gone["moments.churn"] == "the contacts do not name their customers"
    assert gone["moments.contact_list"] == "the contacts do not name their customers"
    assert gone["moments.impact"] == "no NPS, CSAT or CES answers of known customers with a date"
    assert "moments.candidates" not in gone and "moments.complaints" not in gone
