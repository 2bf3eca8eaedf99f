"""Customer value on the demo company.

- the valuable customers at risk found on the processed demo tables are exactly those computed
  independently from the demo's truth (true orders with their amounts, true contacts, true
  NPS answers): top 20% by revenue to date AND, within 90 days, a complaint or classic
  moment-of-truth contact or a latest NPS answer of 0-6;
- historic value per customer equals the truth's revenue of completed orders;
- the demo's add-on purchases follow BG/NBD + Gamma-Gamma: the model fitted to them recovers the
  planted spend parameters and passes the holdout check;
- notebook 05_customer_value runs on the demo (in the session's demo run, `baseline` in
  conftest.py) and on orders simulated from the model, and records its results.

The processed demo tables are built in memory from the session's demo exports (`demo_project`
in conftest.py) with the demo source mapping and the cleaning rules, as 01_validate_clean does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from conftest import DEMO_CUSTOMERS, DEMO_SEED
from test_value import TRUTH, simulate_orders
from cxlib import catalog, demo, pipeline, report, value

ROOT = Path(__file__).resolve().parents[1]
WINDOW_DAYS = 90
HIGH_SHARE = 0.2
TIERS = {"high": HIGH_SHARE, "medium": 0.3, "low": 0.5}


@pytest.fixture(scope="module")
def processed(demo_world) -> dict:
    tax = demo_world["taxonomy"]
    ref_of = demo_world["reidentification"].set_index("customer_id")["customer_ref"]
    tables = demo_world["tables"]
    end = value.analysis_day("", tables["orders"], tables["events"], tables["feedback"])
    return {**tables, "taxonomy": tax, "ref_of": ref_of, "end": end}


@pytest.fixture(scope="module")
def truth() -> dict:
    """The demo's truth tables (same customers and seed as the session's exports) in UTC."""
    company = demo.generate(DEMO_CUSTOMERS, DEMO_SEED)
    amounts = (company.files["bestellungen.csv"].drop_duplicates("Bestellnummer")
               .set_index("Bestellnummer")["Betrag"].str.replace(".", "", regex=False)
               .str.replace(",", ".", regex=False).astype("float64"))
    survey = company.files["umfrage_antworten.csv"].drop_duplicates("Antwort-ID").set_index("Antwort-ID")
    score = pd.to_numeric(survey["Weiterempfehlung"], errors="coerce")
    answered = survey.index[survey["Kundennummer"].notna() & score.between(0, 10)]

    def utc(frame: pd.DataFrame) -> pd.DataFrame:
        local = pd.to_datetime(frame["timestamp"])
        return frame.assign(timestamp=local.dt.tz_localize("Europe/Berlin").dt.tz_convert("UTC"))

    t = company.truth
    return {
        "orders": utc(t["orders"]).assign(revenue=lambda d: d["order_id"].map(amounts)),
        "contacts": utc(t["contacts"]),
        "feedback": utc(t["feedback"]).loc[lambda d: d["response_id"].isin(answered)],
    }


def truth_at_risk(truth: dict, negative: list[str], end: pd.Timestamp) -> set[str]:
    """High value (top 20% by revenue of completed orders, ties to the better tier) and, in the
    90 days up to `end`, a negative contact or a latest NPS answer of 0-6. Plain pandas."""
    revenue = truth["orders"].loc[lambda d: d["status"] == "completed"].groupby("customer_ref")["revenue"].sum()
    better = revenue.rank(method="min", ascending=False) - 1
    high = set(revenue.index[better < HIGH_SHARE * len(revenue)])
    start = end - pd.Timedelta(days=WINDOW_DAYS)

    def recent(frame: pd.DataFrame) -> pd.DataFrame:
        day = frame["timestamp"].dt.floor("D")
        return frame.loc[(day > start) & (day <= end)]

    contacts = recent(truth["contacts"])
    moment = set(contacts.loc[contacts["contact_reason"].isin(negative), "customer_ref"])
    latest = recent(truth["feedback"]).sort_values("timestamp").groupby("customer_ref")["nps"].last()
    detractor = set(latest.index[latest <= 6])
    return high & (moment | detractor)


def test_historic_value_equals_truth_revenue(processed, truth):
    hist = value.historic_value(processed["orders"], as_of=processed["end"])
    got = hist.assign(ref=lambda d: d["customer_id"].map(processed["ref_of"])).set_index("ref")
    expected = truth["orders"].loc[lambda d: d["status"] == "completed"].groupby("customer_ref").agg(
        revenue=("revenue", "sum"), orders=("order_id", "size"))
    assert len(got) == len(expected) > 400
    assert got.loc[expected.index, "revenue"].to_numpy() == pytest.approx(expected["revenue"].to_numpy())
    assert (got.loc[expected.index, "orders"].to_numpy() == expected["orders"].to_numpy()).all()


def test_valuable_customers_at_risk_match_the_truth(processed, truth):
    negative = value.negative_moment_reasons(processed["taxonomy"])
    hist = value.historic_value(processed["orders"], as_of=processed["end"])
    tiered = value.value_tiers(hist.loc[hist["orders"] > 0].assign(value=lambda d: d["revenue"]), tiers=TIERS)
    risk = value.at_risk(tiered, processed["events"], processed["feedback"], high_tiers=["high"],
                         negative_reasons=negative, as_of=processed["end"], window_days=WINDOW_DAYS)
    found = set(risk["customer_id"].map(processed["ref_of"]))
    expected = truth_at_risk(truth, negative, processed["end"])
    assert len(expected) >= 20
    assert found == expected
    assert set(risk["trigger"]) <= {"moment", "detractor", "moment+detractor"}


def test_demo_addon_purchases_fit_the_clv_model(processed, demo_project):
    """The demo's add-on purchases (category Zusatzprodukte) are drawn from BG/NBD + Gamma-Gamma
    (ground truth planted.repeat_purchases): the model fits them, the spend parameters come back
    close, the holdout check is close. A MAP fit on one or two purchases per customer trades the
    purchase rate against the dropout (orders simulated straight from the model show the same
    shift), so the BG/NBD means are checked within a factor of two only."""
    truth = json.loads((demo_project / "data" / "raw" / "_truth" / "ground_truth.json").read_text(encoding="utf-8"))
    planted = truth["planted"]["repeat_purchases"]
    addons = processed["orders"].loc[lambda d: d["category"] == "Zusatzprodukte"]
    summary = value.clv_summary(addons, as_of=processed["end"])
    assert summary["frequency"].max() >= 3 and (summary["frequency"] >= 2).sum() >= 200
    est = value.fit_clv(summary).params.set_index("parameter")["estimate"]
    for name, planted_value in planted["gamma_gamma"].items():
        assert est[name] == pytest.approx(planted_value, rel=0.25), name
    bg = planted["bg_nbd"]
    assert 0.5 < (est["r"] / est["alpha"]) / (bg["r"] / bg["alpha"]) < 2
    assert 0.5 < (est["a"] / (est["a"] + est["b"])) / (bg["a"] / (bg["a"] + bg["b"])) < 2
    overall = value.holdout_check(addons, holdout_months=6, as_of=processed["end"]).iloc[-1]
    assert overall["actual"] > 100 and abs(overall["error_pct"]) < 30


def figures_drawn(executed: Path) -> int:
    """The number of figures an executed notebook shows."""
    notebook = nbformat.read(executed, as_version=4)
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.outputs)


def run_notebook(tables: dict, tmp_path: Path, *params: str) -> tuple[dict, int]:
    """Run 05_customer_value on `tables`; its recorded `value` results and the number of figures drawn."""
    folder = tmp_path / "processed"
    catalog.write({k: tables[k] for k in ("customers", "events", "orders", "campaigns", "feedback")}, folder)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "-k", "python3", str(ROOT / "notebooks" / "05_customer_value.ipynb"),
         str(tmp_path / "out.ipynb"), "-p", "processed_dir", str(folder), "-p", "run_dir", str(run_dir),
         "-p", "taxonomy", str(ROOT / "config" / "taxonomy.yml"), *params],
        cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=600,
        env={**os.environ, **pipeline.KERNEL_ENV},        # figures inline, as `cx run` draws them
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return report.read_results(run_dir)["value"], figures_drawn(tmp_path / "out.ipynb")


def test_notebook_05_runs_on_demo_data_and_records_results(baseline):
    done, run_dir = baseline
    assert done.returncode == 0, done.stdout + done.stderr
    results, figures = report.read_results(run_dir)["value"], figures_drawn(run_dir / "05_customer_value.ipynb")
    # the notebook's default clv_categories: the model covers the add-on purchases (on all orders,
    # contract amounts of 24 monthly fees beside add-ons of ~60 EUR put the Gamma-Gamma q at about 1)
    assert results["status"] == "fitted" and results["clv"]["basis"] == "revenue_plus_predicted_clv"
    assert figures == 8                                              # with the holdout figure
    assert results["clv"]["total"] == pytest.approx(results["historic"]["revenue"] + results["clv"]["predicted"])
    assert abs(results["holdout"]["error_pct"]) < 30
    assert {"mean", "median", "p90", "total"} <= set(results["clv"])
    assert [row["value_tier"] for row in results["tiers"]] == ["high", "medium", "low"]
    assert sum(row["customers"] for row in results["tiers"]) == results["clv"]["customers"]
    assert results["at_risk"] == int(np.round(results["at_risk"])) and results["at_risk"] > 0


def test_notebook_05_fits_the_model_on_orders_simulated_from_it(processed, tmp_path):
    """The fitted branch (parameters, CLV, holdout check) on orders drawn from BG/NBD + Gamma-Gamma
    for the demo's customers, with the demo's contacts and answers."""
    ids = processed["orders"]["customer_id"].drop_duplicates().sort_values().head(600).reset_index(drop=True)
    sim = simulate_orders(len(ids), TRUTH, days=730, seed=4)
    sim = sim.assign(customer_id=sim["customer_id"].map(dict(zip([f"c{i:05d}" for i in range(len(ids))], ids))),
                     timestamp=sim["timestamp"] + (processed["end"] - sim["timestamp"].max().floor("D")))
    orders = sim.reindex(columns=processed["orders"].columns).astype(processed["orders"].dtypes.to_dict())
    results, figures = run_notebook({**processed, "orders": orders}, tmp_path, "-y", "clv_categories: []")
    assert results["status"] == "fitted" and results["model"].startswith("BG/NBD + Gamma-Gamma (pymc-marketing")
    assert results["clv"]["basis"] == "predicted_clv" and results["clv"]["customers"] == 600
    assert 0 < results["clv"]["median"] < results["clv"]["mean"] < results["clv"]["p90"]
    assert results["holdout"]["customers"] > 0 and abs(results["holdout"]["error_pct"]) < 35
    assert sum(row["customers"] for row in results["tiers"]) == 600
    assert figures == 8                      # the holdout figure too
