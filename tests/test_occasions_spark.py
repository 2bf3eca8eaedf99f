"""The occasion stage's engine work runs unchanged on PySpark: local days, occasion dates, the
labelled and counted campaign sends, value tiers and the disversion rate give the same results on
DuckDB and on PySpark in local mode, on the seeded company of tests/test_occasions_engine.py
written to Parquet and read by both engines. Marked `spark` (skipped without pyspark and Java,
a failure under CX_REQUIRE_SPARK=1)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import disversion, engine, occasions, relevance
from cxlib import occasions_days as days
from cxlib.config import load_taxonomy
from tests.test_occasions_engine import company

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("customers", "orders", "campaigns", "events")


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy(ROOT / "config" / "taxonomy.yml")


@pytest.fixture(scope="module")
def spark_con(spark_local):
    return spark_local


@pytest.fixture(scope="module")
def both(spark_con, tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("occasions_spark")
    for name, frame in company().items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    cons = {"duckdb": engine.connect("duckdb", threads=1), "pyspark": spark_con}
    return {name: {t: engine.read_table(con, folder / f"{t}.parquet") for t in TABLES} for name, con in cons.items()}


def same(both: dict, case) -> pd.DataFrame:
    on_duckdb, on_spark = case(both["duckdb"]), case(both["pyspark"])
    assert_frame_equal(on_spark, on_duckdb, check_exact=False, rtol=1e-12, atol=1e-12)
    return on_duckdb


def _local_days(t):
    e = t["events"]
    out = days.with_local_days(e.select("event_id", "timestamp"), "Europe/Berlin", day="timestamp")
    return engine.to_pandas(out.select("event_id", "day")).sort_values("event_id").reset_index(drop=True)


@pytest.mark.spark
def test_local_days_and_occasion_dates_on_spark(both, tax):
    same(both, _local_days)
    types = occasions.occasion_types(tax)
    dates = same(both, lambda t: occasions.occasion_dates(types, t["customers"], start="2025-01-01", end="2025-12-31",
                                                          events=t["events"]))
    assert set(dates["occasion"]) >= {"contract_anniversary", "renewal_window", "first_invoice", "complaint_resolved"}


@pytest.mark.spark
def test_labelled_sends_due_occasions_and_value_tiers_on_spark(both, tax):
    prepared = {name: relevance.prepare(t, None, tax, fatigue_days=200, interest_days=30) for name, t in both.items()}
    assert_frame_equal(prepared["pyspark"].sends, prepared["duckdb"].sends)
    assert_frame_equal(prepared["pyspark"].due, prepared["duckdb"].due)
    assert int(prepared["pyspark"].sends["sends"].sum()) == 360
    tiers = same(both, lambda t: occasions.value_tiers(t["customers"], t["orders"], as_of="2025-12-30"))
    assert tiers["value_tier"].value_counts().to_dict() == {"low": 120, "medium": 70, "high": 50}


@pytest.mark.spark
def test_disversion_on_spark(both):
    monthly = same(both, lambda t: disversion.disversion_by_month(t["customers"], t["orders"]))
    assert monthly["regular"].tolist()[:3] == [72, 71, 63]
    by_campaign = same(both, lambda t: disversion.campaign_disversion(t["campaigns"], t["customers"], t["orders"],
                                                                    follow_days=120, min_n=10))
    assert by_campaign["recipients"].tolist() == [86, 70, 66, 222]
