"""`cx run` end to end with `engine: pyspark` (local[2], every stage including 01) gives what it
gives with DuckDB: the same processed tables row for row and the same results.json, on a demo of
400 customers. Each notebook's kernel starts its own JVM, so the module takes minutes: it is
marked `spark_pipeline`, which `make test-spark` runs and `make test` leaves out (the per-stage
DuckDB-vs-Spark tests run there: test_spark, test_spark_ingest, test_voice_engine,
test_occasions_spark)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from conftest import SPARK_TEST_CONFIG, copy_project, run_cx
from cxlib import demo

pytestmark = [pytest.mark.spark, pytest.mark.spark_pipeline]
ENGINES = ("duckdb", "pyspark")
CUSTOMERS, SEED = 400, 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory, spark_available) -> dict[str, Path]:
    """engine -> the project folder of one successful `cx run` of the whole pipeline on it."""
    raw = tmp_path_factory.mktemp("raw")
    demo.write_exports(demo.generate(CUSTOMERS, SEED), raw)
    projects = {}
    for name in ENGINES:
        project = copy_project(tmp_path_factory.mktemp(name))
        params = project / "params" / "engine.yml"
        params.write_text(json.dumps({"engine": name, "spark": {"master": "local[2]", "config": SPARK_TEST_CONFIG}}),
                          encoding="utf-8")
        done = run_cx("run", "--project", str(project), "-q", "-p", f"raw_dir={raw}", "-f", str(params),
                      cwd=project, timeout=1800)
        assert done.returncode == 0, f"{name}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
        projects[name] = project
    return projects


def differences(left, right, path: str = "") -> list[str]:
    """Where two results.json trees differ (floats within 1e-9); [] when they are the same."""
    if isinstance(left, dict) and isinstance(right, dict):
        return ([f"{path}/{k}: only one side" for k in sorted(set(left) ^ set(right))]
                + [d for k in sorted(set(left) & set(right)) for d in differences(left[k], right[k], f"{path}/{k}")])
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return [f"{path}: {len(left)} vs {len(right)} items"]
        return [d for i, (a, b) in enumerate(zip(left, right)) for d in differences(a, b, f"{path}[{i}]")]
    if isinstance(left, float) and isinstance(right, float):
        same = math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(left) and math.isnan(right))
        return [] if same else [f"{path}: {left} vs {right}"]
    return [] if left == right else [f"{path}: {left!r} vs {right!r}"]


def test_every_stage_ran_on_its_engine(runs):
    for name, project in runs.items():
        latest = project / "reports" / "latest"
        record = json.loads((latest / "run.json").read_text(encoding="utf-8"))
        assert [nb["status"] for nb in record["notebooks"]] == ["succeeded"] * 7
        engines = {path.stem: nbformat.read(path, as_version=4).metadata.papermill.parameters.get("engine")
                   for path in latest.glob("0*.ipynb")}
        assert engines == {**{stem: name for stem in engines}, "06_summary": None}      # 06 reads results only


def test_processed_tables_are_the_same_row_for_row(runs):
    folders = {name: project / "data" / "processed" for name, project in runs.items()}
    tables = sorted(p.name for p in folders["duckdb"].glob("*.parquet"))
    assert tables == sorted(p.name for p in folders["pyspark"].glob("*.parquet"))
    assert {"customers.parquet", "events.parquet", "feedback.parquet", "orders.parquet"} <= set(tables)
    for table in tables:
        on_duckdb, on_spark = (pd.read_parquet(folders[name] / table) for name in ENGINES)
        assert len(on_duckdb) > 0
        assert_frame_equal(on_spark, on_duckdb)


def test_results_are_the_same(runs):
    results = {name: json.loads((project / "reports" / "latest" / "results.json").read_text(encoding="utf-8"))
               for name, project in runs.items()}
    on_duckdb = results["duckdb"]
    assert on_duckdb["tables"]["customers"] == CUSTOMERS and on_duckdb["tables"]["events"] > 5000
    assert on_duckdb["feedback"]["nps"]["n"] > 0 and on_duckdb["journey"]["funnel"]
    assert on_duckdb["moments_of_truth"] and on_duckdb["occasion_list"]
    assert differences(results["pyspark"], on_duckdb) == []
