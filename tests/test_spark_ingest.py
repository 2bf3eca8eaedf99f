"""Stage 01 runs on PySpark too: the ingest in customer buckets (split, repeated keys, ordered
writing on the engine) gives the same processed tables, logs and gate counts with
`engine="pyspark"` (local[2]) as with DuckDB, and notebook 01 itself runs with engine=pyspark
and writes what DuckDB writes.
Marked like tests/test_spark.py: skipped without pyspark or Java unless CX_REQUIRE_SPARK=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from conftest import SPARK_TEST_CONFIG
from cxlib import engine

from test_ingest import GATE_COLUMNS, KEY, NOW, TAX, events_csv, in_buckets, project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spark_session(spark_local):
    """The local Spark session ingest's workspace then uses (conftest's)."""
    return spark_local


def on_both(tmp_path: Path, mapping: Path, raw: Path, tax, bucket_rows: int, keep=()) -> tuple[dict, dict]:
    duck = in_buckets(mapping, raw, tax, tmp_path / "duckdb" / "processed", bucket_rows, keep)
    spark = in_buckets(mapping, raw, tax, tmp_path / "spark" / "processed", bucket_rows, keep, engine="pyspark")
    assert duck["buckets"] == spark["buckets"]
    for name, frame in duck["tables"].items():
        assert_frame_equal(spark["tables"][name], frame, obj=name)
    assert_frame_equal(spark["reidentification"], duck["reidentification"])
    assert_frame_equal(spark["log"], duck["log"])
    for gate in ("raw_gate", "processed_gate"):
        assert_frame_equal(spark[gate].results[GATE_COLUMNS], duck[gate].results[GATE_COLUMNS], obj=gate)
    return duck, spark


@pytest.mark.spark
def test_stage_01_in_buckets_on_spark_is_stage_01_on_duckdb(spark_session, tmp_path):
    customers = "kunde,ok,test\n" + "\n".join(f"K{i},{'ja' if i % 2 else 'nein'},{'ja' if i == 3 else 'nein'}"
                                             for i in range(10)) + "\n"
    from test_ingest import CUSTOMERS, EVENTS
    mapping, raw = project(tmp_path, EVENTS.format(more=CUSTOMERS), events=events_csv(90, 14), customers=customers)
    duck, spark = on_both(tmp_path, mapping, raw, TAX, bucket_rows=30)
    assert spark["buckets"] == 3 and len(spark["tables"]["events"]) > 0


@pytest.mark.spark
def test_notebook_01_runs_with_engine_pyspark(spark_session, tmp_path):
    """The notebook on a local[2] Spark session (its own kernel) writes the tables DuckDB writes."""
    mapping, raw = project(tmp_path, __import__("test_ingest").EVENTS.format(more=""), events=events_csv(50, 9))
    (tmp_path / "taxonomy.yml").write_text(
        "stages: {purchase: {en: Purchase}, service: {en: Service}}\n"
        "channels: {phone: {en: Phone}, web: {en: Web}}\n"
        "touchpoints: {order: {stage: purchase}, complaint: {stage: service}}\n"
        "contact_reasons: {}\nthemes: {}\nsurveys: {relationship: {en: Relationship}}\n", encoding="utf-8")
    out = tmp_path / "pyspark"
    out.mkdir()
    cmd = [sys.executable, "-m", "papermill", "-k", "python3", "--cwd", str(ROOT / "notebooks"),
           str(ROOT / "notebooks" / "01_validate_clean.ipynb"), str(out / "01.ipynb"),
           "-p", "source", str(mapping), "-p", "taxonomy", str(tmp_path / "taxonomy.yml"),
           "-p", "raw_dir", str(raw), "-p", "processed_dir", str(out / "processed"),
           "-p", "run_dir", str(out / "run"), "-p", "engine", "pyspark", "-p", "bucket_rows", "1000",
           "-y", json.dumps({"spark": {"master": "local[2]", "config": SPARK_TEST_CONFIG}})]
    done = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", "CX_PSEUDONYM_KEY": KEY.decode()})
    assert done.returncode == 0, done.stderr[-3000:]
    duck = in_buckets(mapping, raw, TAX, tmp_path / "duckdb" / "processed", 10**9)
    for table in ("customers", "events"):
        assert_frame_equal(pd.read_parquet(out / "processed" / f"{table}.parquet"), duck["tables"][table], obj=table)
    assert len(duck["tables"]["events"]) == 50
