"""The report layer: run records (cxlib.report), the run comparison (cxlib.compare), notebook -> HTML
without code with the findings first (cxlib.export), index.html (cxlib.index_page) and the notes of
stage 01 (cxlib.ingest_describe)."""

from __future__ import annotations

import json
import re

import nbformat
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import compare, export, index_page, ingest_describe, locale, report

PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def visible_text(html: str) -> str:
    """The HTML without <style>/<script> blocks (the CSS of the lab template mentions 'warn')."""
    return re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S | re.I)


# --- record_results / to_jsonable ----------------------------------------------------------
def test_to_jsonable_empty_and_plain():
    assert report.to_jsonable({}) == {}
    assert report.to_jsonable({"a": [1, "x", None, True]}) == {"a": [1, "x", None, True]}


def test_to_jsonable_numpy_pandas_values():
    value = {
        "int": np.int64(3),
        "float": np.float32(0.5),
        "bool": np.bool_(True),
        "nan": float("nan"),
        "np_nan": np.float64("nan"),
        "inf": float("inf"),
        "na": pd.NA,
        "nat": pd.NaT,
        "ts": pd.Timestamp("2026-11-22 14:30:12", tz="UTC"),
        "naive": pd.Timestamp("2026-01-02"),
        "delta": pd.Timedelta(minutes=2),
        "array": np.array([1, 2]),
        "tuple": (1, 2),
        7: "int key",
    }
    assert report.to_jsonable(value) == {
        "int": 3, "float": 0.5, "bool": True, "nan": None, "np_nan": None, "inf": None,
        "na": None, "nat": None, "ts": "2026-11-22T14:30:12+00:00", "naive": "2026-01-02T00:00:00",
        "delta": 120.0, "array": [1, 2], "tuple": [1, 2], "7": "int key",
    }


def test_to_jsonable_frames_become_rows():
    frame = pd.DataFrame({"step": ["lead", "order"], "customers": [10, 4], "conversion": [np.nan, 0.4]})
    assert report.to_jsonable(frame) == [
        {"step": "lead", "customers": 10, "conversion": None},
        {"step": "order", "customers": 4, "conversion": 0.4},
    ]
    assert report.to_jsonable(pd.Series({"a": np.int64(1), "b": pd.NA})) == {"a": 1, "b": None}


def test_record_results_writes_section_file(tmp_path):
    path = report.record_results(tmp_path, "feedback", {"nps": {"value": np.float64(12.5), "n": np.int64(400)}})
    assert path == tmp_path / "results" / "feedback.json"
    assert json.loads(path.read_text(encoding="utf-8")) == {"nps": {"value": 12.5, "n": 400}}
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["feedback.json"]  # no temp file left


def test_record_results_replaces_and_merges(tmp_path):
    report.record_results(tmp_path, "validation", {"status": "failed", "failed": ["x"]})
    report.record_results(tmp_path, "validation", {"status": "passed", "failed": []})
    report.record_results(tmp_path, "journey", {"conversion_rate": 0.25})
    assert report.read_results(tmp_path) == {
        "journey": {"conversion_rate": 0.25},
        "validation": {"status": "passed", "failed": []},
    }


def test_read_results_of_empty_run(tmp_path):
    assert report.read_results(tmp_path) == {}


def test_record_results_output_is_strict_json(tmp_path):
    path = report.record_results(tmp_path, "x", {"v": float("nan"), "w": np.inf})
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"v": None, "w": None}


@pytest.mark.parametrize("section", ["", "../evil", "a b", "x.json"])
def test_record_results_rejects_bad_section(tmp_path, section):
    with pytest.raises(ValueError, match="section"):
        report.record_results(tmp_path, section, {})


def test_record_results_rejects_non_dict(tmp_path):
    with pytest.raises(ValueError, match="must be a dict"):
        report.record_results(tmp_path, "x", [1, 2])


# --- parameters_table ----------------------------------------------------------------------
def test_parameters_table_empty():
    assert_frame_equal(
        report.parameters_table({}),
        pd.DataFrame({"parameter": pd.Series([], dtype="str"), "value": pd.Series([], dtype="str")}),
    )


def test_parameters_table_values_as_text():
    table = report.parameters_table({"min_n": 100, "segments": ["private", "business"], "since": None,
                                     "tolerance": np.float64(0.02), "flag": True})
    expected = pd.DataFrame({
        "parameter": pd.Series(["min_n", "segments", "since", "tolerance", "flag"], dtype="str"),
        "value": pd.Series(["100", "private, business", "", "0.02", "True"], dtype="str"),
    })
    assert_frame_equal(table, expected)
    assert list(report.parameters_table({"min_answers": 100}, "de").columns) == ["Parameter", "Wert"]


# --- notebook -> HTML ------------------------------------------------------------------------
@pytest.fixture
def executed_notebook(tmp_path):
    """A tiny hand-made 'executed' notebook: markdown, code with stdout, stderr, a figure, an error."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny report\n\nNPS rose to **12**."),
        nbformat.v4.new_code_cell(
            "secret_code_marker = 1\nprint('visible output')",
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text="visible output\n"),
                nbformat.v4.new_output("stream", name="stderr", text="UserWarning: something deprecated\n"),
            ],
            execution_count=1,
        ),
        nbformat.v4.new_code_cell(
            "fig",
            outputs=[nbformat.v4.new_output("display_data", data={"image/png": PNG_1PX, "text/plain": "<Figure>"})],
            execution_count=2,
        ),
        nbformat.v4.new_code_cell(
            "raise ValueError('x')",
            outputs=[nbformat.v4.new_output(
                "error", ename="SourceError", evalue="crm.csv: column 'Kundennummer' not found (rows 2, 5)",
                traceback=["\x1b[0;31mTraceback (most recent call last)\x1b[0m", "  File secret_code_marker"],
            )],
            execution_count=3,
        ),
    ]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def test_export_html_has_no_code_no_stderr_no_external_refs(executed_notebook, tmp_path):
    out = export.export_html(executed_notebook, tmp_path / "tiny.html", title="Tiny report")
    html = out.read_text(encoding="utf-8")
    body = visible_text(html)
    assert "visible output" in body
    assert "NPS rose to" in body
    assert "secret_code_marker" not in html          # no code input, not even in a traceback
    assert "hl-ipython3" not in body and "jp-CodeMirrorEditor" not in body
    assert "In&nbsp;[" not in body and "Out[" not in body
    assert "UserWarning" not in html and "deprecated" not in html
    assert "Traceback" not in html
    assert "SourceError: crm.csv: column 'Kundennummer' not found (rows 2, 5)" in body
    assert f"data:image/png;base64,{PNG_1PX}" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script src" not in html and "mathjax" not in html.lower().replace("mathjax_", "")
    assert "<title>Tiny report</title>" in html
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_html_leaves_notebook_unchanged(executed_notebook, tmp_path):
    before = executed_notebook.read_bytes()
    export.export_html(executed_notebook, tmp_path / "tiny.html")
    assert executed_notebook.read_bytes() == before


# --- index.html ------------------------------------------------------------------------------
def run_record(status="succeeded", failure=None):
    return {
        "run_id": "20261122T143012Z",
        "status": status,
        "started": "2026-11-22T14:30:12Z",
        "ended": "2026-11-22T14:30:40Z",
        "project_dir": "/srv/cx",
        "parameters": {"01_validate_clean": {"source": "/srv/cx/config/sources/demo.yml", "tolerance": 0.02}},
        "inputs": {"fingerprint": "ab" * 32,
                   "files": [{"file": "crm_kunden.csv", "bytes": 2048, "sha256": "cd" * 32, "rows": 120}],
                   "tables": {"customers": 118}},
        "python": "3.11.9",
        "packages": {"pandas": "3.1.0", "papermill": "2.7.0"},
        "notebooks": [{"name": "01_validate_clean", "title": "Validation and cleaning", "status": status,
                       "duration_s": 12.34, "html": "01_validate_clean.html", "ipynb": "01_validate_clean.ipynb"}],
        "failure": failure,
    }


def test_index_html_content():
    results = {
        "validation": {"status": "warned", "failed": [], "warnings": 2, "checked": 57},
        "feedback": {"nps": {"value": 12.345, "ci_low": 8.1, "ci_high": 16.6, "n": 4210},
                     "by_segment": [{"segment": "private", "nps": 10.5}, {"segment": "business", "nps": 18.0}]},
        "journey": {"conversion_rate": 0.2513, "funnel": [{"step": f"s{i}", "customers": 100 - i} for i in range(20)]},
    }
    html = index_page.index_html(run_record(), results)
    assert "20261122T143012Z" in html
    assert 'class="badge succeeded"' in html and 'class="badge warned"' in html
    assert 'href="01_validate_clean.html"' in html and "Validation and cleaning" in html
    assert "Data Docs" not in html and "data_docs" not in html
    assert "abababababababab" in html                       # fingerprint shown (first 16 chars)
    assert "crm_kunden.csv" in html and "118" in html
    assert ">+12.3<" in html and "+8.1 to +16.6" in html and "n = 4,210" in html
    assert "business" in html and "0.251" in html
    assert "… and 5 more rows in results.json" in html        # long lists are cut at 15 rows
    assert "/srv/cx/config/sources/demo.yml" in html and "0.02" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html


def test_index_html_failed_run_names_notebook_section_and_cell_position():
    failure = {"notebook": "01_validate_clean", "cell": 7, "cells": 23, "section": "2. Raw data gate",
               "execution_count": 5, "ename": "ValidationFailed", "evalue": "feedback.nps: 12% out of range (rows 3, 9)"}
    html = index_page.index_html(run_record("failed", failure), {})
    assert ("FAILED 01_validate_clean, section “2. Raw data gate”, cell 7 of 23: ValidationFailed: feedback.nps: "
            "12% out of range (rows 3, 9)") in html
    assert 'class="badge failed"' in html
    assert "not run" in html                                  # no validation section recorded
    html_de = index_page.index_html({**run_record("failed", failure), "run_parameters": {"lang": "de"}}, {})
    assert "FEHLGESCHLAGEN 01_validate_clean, Abschnitt „2. Raw data gate“, Zelle 7 von 23: ValidationFailed" in html_de


def test_failure_where_uses_what_the_record_holds():
    assert report.failure_where({"cell": 7, "cells": 23, "section": "2. Raw data gate"}) == \
        "section “2. Raw data gate”, cell 7 of 23"
    assert report.failure_where({"cell": 7, "cells": 23, "section": None}) == "cell 7 of 23"
    assert report.failure_where({"cell": 7}) == "cell 7"                       # a record of an older run
    assert report.failure_where({"cell": None, "section": "x"}) == "before any cell ran"
    assert report.failure_where({"cell": 2, "cells": 4, "section": "Werte"}, "de") == "Abschnitt „Werte“, Zelle 2 von 4"


def test_section_above_is_the_last_heading_before_the_cell():
    cells = [nbformat.v4.new_markdown_cell("# 01 · Title\n\n## 1. Inputs"), nbformat.v4.new_code_cell("x = 1"),
             nbformat.v4.new_markdown_cell("Just text, no heading."), nbformat.v4.new_code_cell("y = 2"),
             nbformat.v4.new_markdown_cell("## 2. **Gate**"), nbformat.v4.new_code_cell("z = 3")]
    assert [export.section_above(cells, i) for i in (0, 1, 3, 5)] == [None, "1. Inputs", "1. Inputs", "2. Gate"]


def test_index_html_lists_skipped_sections_in_the_report_language():
    skipped = [{"section": "feedback.nps_trend", "reason": "no NPS answers", "enable": "feedback.nps"},
               {"section": "moments.churn", "reason": "nobody churned", "enable": None}]
    record = full_record()
    html = index_page.index_html(record, {"skipped": skipped})
    assert '<section id="not-shown"><h2>Not shown for this data</h2>' in html
    assert ("<li><strong>02_Feedback: NPS trend</strong>: no NPS answers (needs <code>feedback.nps</code>)</li>"
            "<li><strong>Moments of truth: details · Churn</strong>: nobody churned</li>") in html      # the stage's title, else a name
    assert "feedback.nps_trend" not in html                 # no machine keys, and not repeated as headline numbers
    html_de = index_page.index_html({**record, "run_parameters": {"lang": "de"}}, {"skipped": skipped})
    assert "<h2>Für diese Daten nicht gezeigt</h2>" in html_de
    assert "<strong>Momente der Wahrheit: Details · Churn</strong>: nobody churned" in html_de
    assert "<strong>02_Feedback: NPS trend</strong>: no NPS answers (benötigt <code>feedback.nps</code>)" in html_de
    assert "not-shown" not in index_page.index_html(run_record(), {"skipped": []})


def test_write_index_writes_no_data_docs_links(tmp_path):
    (tmp_path / "data_docs" / "raw").mkdir(parents=True)
    (tmp_path / "data_docs" / "raw" / "index.html").write_text("<html></html>", encoding="utf-8")
    path = index_page.write_index(tmp_path, run_record(), {"validation": {"status": "passed", "failed": []}})
    assert path == tmp_path / "index.html"
    assert "data_docs" not in path.read_text(encoding="utf-8")


# --- tables and text for the validation notebook ---------------------------------------------
LOG = pd.DataFrame({
    "table": ["customers", "customers", "feedback", "feedback", "events", "events", "feedback", "feedback"],
    "step": ["clean"] * 8,
    "rule": ["exact duplicate rows dropped", "customer ids pseudonymised", "out-of-range score set to missing",
             "test accounts dropped", "stage derived from touchpoint", "unknown code: rows dropped",
             "out-of-range score set to missing", "feedback of unknown customers kept"],
    "rows": [3, 97, 10, 0, 50, 5, 2, 1],
    "detail": ["", "", "nps outside 0-10", "", "", "", "csat outside 1-5", ""],
})


def test_row_counts_and_rows_table():
    before = ingest_describe.row_counts({"customers": pd.DataFrame({"a": range(100)}), "events": pd.DataFrame({"a": range(50)})})
    assert before.to_dict() == {"customers": 100, "events": 50}
    after = pd.Series({"customers": 97, "events": 45}, dtype="int64")
    expected = pd.DataFrame({
        "table": pd.Series(["customers", "events"], dtype="str"),
        "rows_read": pd.Series([100, 50], dtype="int64"),
        "rows_written": pd.Series([97, 45], dtype="int64"),
        "dropped": pd.Series([3, 5], dtype="int64"),
        "derived": pd.Series([0, 0], dtype="int64"),
        "dropped_pct": [3.0, 10.0],
    })
    assert_frame_equal(ingest_describe.rows_table(before, after), expected)


def test_rows_table_counts_derived_customers_apart_from_dropped_rows():
    rows = ingest_describe.rows_table(pd.Series({"customers": 0, "events": 10}), pd.Series({"customers": 4, "events": 9}))
    assert rows[["table", "dropped", "derived"]].to_dict("records") == [
        {"table": "customers", "dropped": 0, "derived": 4}, {"table": "events", "dropped": 1, "derived": 0}]


def test_cleaning_changes_name_derived_rows():
    log = pd.DataFrame({"table": ["customers"], "step": ["clean"], "rows": [4], "detail": [""],
                        "rule": ["rows derived: one customer per customer_ref of the other tables"]})
    assert ingest_describe.cleaning_changes(log)["kind"].tolist() == ["derived"]


def test_row_counts_empty():
    assert ingest_describe.row_counts({}).empty


def test_cleaning_changes_leaves_out_bookkeeping_and_zero_rows():
    expected = pd.DataFrame({
        "label": ["feedback: out-of-range score set to missing", "events: unknown code: rows dropped",
                  "customers: exact duplicate rows dropped", "feedback: feedback of unknown customers kept"],
        "table": ["feedback", "events", "customers", "feedback"],
        "rule": ["out-of-range score set to missing", "unknown code: rows dropped", "exact duplicate rows dropped",
                 "feedback of unknown customers kept"],
        "rows": [12, 5, 3, 1],
        "kind": ["changed", "dropped", "dropped", "kept"],
    })
    assert_frame_equal(ingest_describe.cleaning_changes(LOG), expected, check_dtype=False)


def test_cleaning_note_and_title():
    before = pd.Series({"customers": 100, "events": 50, "feedback": 50})
    assert ingest_describe.cleaning_title(LOG, before) == (
        "Cleaning dropped 4.0% of rows; most affected: feedback: out-of-range score set to missing"
    )
    note = ingest_describe.describe_cleaning(LOG, before)
    assert note.startswith("Cleaning **dropped 8 of 200 rows (4.0%)** and **changed 12 values**.")
    assert "- events: unknown code: rows dropped: 5 rows (dropped)" in note
    assert "- feedback: feedback of unknown customers kept: 1 row (kept)" in note


def test_cleaning_note_when_nothing_changed():
    quiet = LOG.assign(rows=0)
    assert ingest_describe.cleaning_title(quiet, pd.Series({"customers": 10})) == "Cleaning found nothing to drop or change"
    assert ingest_describe.describe_cleaning(quiet, pd.Series({"customers": 10})).startswith("Cleaning found no")


def test_inputs_note():
    inputs = pd.DataFrame({"file": ["crm.csv", "orders.csv", "orders.csv"], "table": ["customers", "orders", "events"],
                           "rows": [120, 40, 40], "bytes": [1_500_000, 500_000, 500_000], "sha256": ["a", "b", "b"]})
    log = pd.DataFrame({"table": ["customers", "events", "customers"], "step": ["read", "melt", "values"],
                        "rule": ["rows read", "events from milestones", "values mapped"], "rows": [120, 0, 7],
                        "detail": ["", "", ""]})
    assert ingest_describe.describe_inputs(inputs, log) == (
        "**2 files** (2.0 MB) were read into **3 tables**; source rows per table: customers 120, orders 40, "
        "events 40. The mapping applied 3 rules, 2 of them to at least one row; the largest: values mapped "
        "(customers, 7 rows)."
    )
    assert ingest_describe.describe_inputs(inputs.iloc[:0], log).startswith("No input files")


class Gate:
    def __init__(self, stage, status, outcomes):
        self.stage, self.status = stage, status
        self.results = pd.DataFrame({
            "table": ["feedback"] * len(outcomes), "column": ["nps"] * len(outcomes),
            "expectation": ["expect_column_values_to_be_between"] * len(outcomes),
            "severity": ["critical"] * len(outcomes), "outcome": outcomes,
            "unexpected_count": pd.array([12] * len(outcomes), dtype="Int64"),
            "unexpected_percent": [4.0] * len(outcomes), "examples": ["15 (umfrage.csv row 4)"] * len(outcomes),
        })


def test_gate_note_by_status():
    failed = ingest_describe.describe_gate(Gate("raw", "failed", ["passed", "failed"]))
    assert failed.startswith("The **raw data** gate ran **2 checks** on 1 table: 1 passed, 0 warned, 1 failed. Status: **failed**.")
    assert "- failed: `feedback.nps` values within their range — 12 rows" in failed
    assert "nothing is written to the processed tables" in failed
    assert "The run continues" in ingest_describe.describe_gate(Gate("raw", "warned", ["warned"]))
    assert ingest_describe.describe_gate(Gate("processed", "passed", ["passed"])).endswith("Every check held for every row.")


def test_gate_table_orders_failed_first():
    gate = Gate("raw", "failed", ["passed", "warned", "failed"])
    styled = ingest_describe.gate_table(gate.results.assign(column=["a", "b", "c"]))
    assert styled.data["outcome"].tolist() == ["failed", "warned", "passed"]
    html = styled.to_html()
    assert "#fde0e0" in html and "4.00%" in html


def test_gate_table_shows_three_examples_escaped_and_cut():
    gate = Gate("raw", "warned", ["warned"])
    examples = "; ".join([f"nps=<{i}> (umfrage.csv row {i})" for i in range(5)] + ["x" * 200])
    html = ingest_describe.gate_table(gate.results.assign(column=["nps"], examples=[examples])).to_html()
    assert "nps=&lt;0&gt; (umfrage.csv row 0)<br>nps=&lt;1&gt; (umfrage.csv row 1)<br>nps=&lt;2&gt;" in html
    assert "row 3" not in html and "… 3 more" in html and "<0>" not in html
    assert ingest_describe.examples_html("y" * 200).endswith("y…") and len(ingest_describe.examples_html("y" * 200)) == 90
    assert ingest_describe.examples_html(None) == ingest_describe.examples_html("") == "–"


def test_tables_note_names_the_folder_or_the_staging_of_a_run():
    rows = pd.DataFrame({"table": ["customers"], "rows_read": [10], "rows_written": [9], "dropped": [1], "dropped_pct": [10.0]})
    assert ingest_describe.describe_tables(rows, "/p/data/processed").startswith(
        "Both gates passed, so **1 table with 9 rows** was written as Parquet to `/p/data/processed`")
    assert ingest_describe.describe_tables(rows, "/p/data/.processed.staging") == (
        "Both gates passed, so **1 table with 9 rows** was written as Parquet to this run's staging folder; the "
        "later stages read them there, and they replace `/p/data/processed` in one step only when every stage of "
        "the run has succeeded.")


# --- numbers for readers in English and German ------------------------------------------------------
@pytest.mark.parametrize("text, lang, expected", [
    ("12345.5", "de", ("12.345,5", True)),
    ("12345.5", "en", ("12,345.5", True)),
    ("1234.5", "de", ("1.234,5", True)),
    ("5068", "en", ("5,068", True)),
    ("-0.25", "de", ("-0,25", True)),
    ("1,234,567", "de", ("1.234.567", True)),    # already grouped (Styler "{:,}")
    ("12.00%", "de", ("12,00\u00a0%", True)),
    ("12.3%", "en", ("12.3%", True)),
    ("NaN", "de", ("–", False)),
    ("<NA>", "en", ("–", False)),
    ("True", "de", ("ja", False)),
    ("False", "en", ("no", False)),
    ("007", "de", ("007", False)),               # a code, not a number
    ("2025-01", "de", ("2025-01", False)),
    ("3.11.9", "de", ("3.11.9", False)),
    ("1.2e-05", "de", ("1.2e-05", False)),
    ("billing", "de", ("billing", False)),
])
def test_format_table_cell(text, lang, expected):
    assert export.format_table_cell(text, lang) == expected


def test_format_table_cell_years_ungrouped():
    assert export.format_table_cell("2025", "de", group=False) == ("2025", True)
    assert export.format_table_cell("12345.5", "de", group=False) == ("12345,5", True)


# --- compare_runs ---------------------------------------------------------------------------------
def record_with(files, params, notebooks=("01_validate_clean",), run_id="R1", lang="en"):
    return {"run_id": run_id,
            "inputs": {"fingerprint": "".join(f"{k}{v}" for k, v in sorted(files.items())),
                       "files": [{"file": name, "sha256": sha, "bytes": len(sha)} for name, sha in files.items()]},
            "run_parameters": {"lang": lang, "audience": "management", "retention_days": 0},
            "parameters": params,
            "notebooks": [{"name": name} for name in notebooks]}


def test_compare_runs_without_previous_run():
    comparison = compare.compare_runs(None, None, record_with({"a.csv": "1"}, {}), {"feedback": {"n": 3}})
    assert comparison == {"previous_run": None, "different_dataset": None, "fingerprint_changed": None,
                          "inputs": {"added": [], "removed": [], "changed": [], "unchanged": 0},
                          "notebooks": {"added": [], "removed": []}, "parameters": [], "numbers": [],
                          "numbers_compared": 0, "numbers_added": 0, "numbers_removed": 0}


def test_compare_runs_same_run_has_no_changes():
    record = record_with({"a.csv": "1"}, {"01_validate_clean": {"run_dir": "/r/R1", "tolerance": 0.02}})
    results = {"feedback": {"nps": {"value": 12.5, "n": 400}}}
    comparison = compare.compare_runs(record, results, {**record, "run_id": "R2"}, results)
    assert comparison["previous_run"] == "R1" and comparison["fingerprint_changed"] is False
    assert comparison["inputs"] == {"added": [], "removed": [], "changed": [], "unchanged": 1}
    assert comparison["parameters"] == [] and comparison["numbers"] == [] and comparison["numbers_compared"] == 2


def test_compare_runs_of_another_source_mapping_compares_nothing():
    previous = {**record_with({"a.csv": "1"}, {}), "inputs": {"source": "config/sources/demo.yml", "files": []}}
    current = {**record_with({"b.csv": "2"}, {}, run_id="R2"), "inputs": {"source": "config/sources/survey.yml", "files": []}}
    results = {"feedback": {"nps": {"value": 12.5, "n": 400}}}
    comparison = compare.compare_runs(previous, results, current, {"feedback": {"nps": {"value": 40.0, "n": 90}}})
    assert comparison["previous_run"] == "R1"
    assert comparison["different_dataset"] == {"previous": "config/sources/demo.yml", "current": "config/sources/survey.yml"}
    assert comparison["numbers"] == [] and comparison["numbers_compared"] == 0 and comparison["parameters"] == []
    assert comparison["inputs"] == {"added": [], "removed": [], "changed": [], "unchanged": 0}
    html = index_page.index_html(full_record(comparison=comparison), RESULTS)
    assert ("It read a different source mapping (config/sources/demo.yml then, config/sources/survey.yml now): a "
            "different dataset, so no numbers are compared.") in html
    assert "Numbers changed" not in html and "Parameters changed" not in html
    same = {**current, "inputs": {**current["inputs"], "source": "config/sources/demo.yml"}}
    assert compare.compare_runs(previous, results, same, results)["different_dataset"] is None
    legacy = {**previous, "inputs": {"files": []}}                     # a record from before sources were recorded
    assert compare.compare_runs(legacy, results, current, results)["numbers_compared"] == 2


def test_compare_runs_inputs_parameters_numbers():
    previous = record_with({"a.csv": "1", "b.csv": "2", "gone.csv": "3"},
                           {"01_validate_clean": {"run_dir": "/r/R1", "tolerance": 0.02, "source": "s.yml"},
                            "06_summary": {"previous_run_dir": "", "min_n": 100}},
                           notebooks=("01_validate_clean", "06_summary"))
    current = record_with({"a.csv": "1", "b.csv": "22", "new.csv": "4"},
                          {"01_validate_clean": {"run_dir": "/r/R2", "tolerance": 0.05, "source": "s.yml", "create_key": False},
                           "02_feedback": {"min_n": 50}},
                          notebooks=("01_validate_clean", "02_feedback"), run_id="R2", lang="de")
    previous_results = {
        "validation": {"status": "passed", "checked": 150},
        "feedback": {"nps": {"value": 10.0, "ci_low": 5.0, "n": 400}, "flag": True,
                     "by_segment": [{"segment": "private", "nps": 8.0}, {"segment": "business", "nps": 20.0}]},
        "moments_of_truth": [{"moment": "invoice", "label": "Invoice", "priority": 1.0},
                             {"moment": "hotline", "label": "Hotline", "priority": 0.5}],
        "inputs": {"files": [{"file": "a.csv", "rows": 10}]},
        "old_section": {"x": 1},
    }
    current_results = {
        "validation": {"status": "warned", "checked": 150},
        "feedback": {"nps": {"value": 12.5, "ci_low": 5.0 + 1e-13, "n": 410}, "flag": False,
                     "by_segment": [{"segment": "business", "nps": 21.0}, {"segment": "private", "nps": 8.0}]},
        "moments_of_truth": [{"moment": "hotline", "label": "Hotline (DE)", "priority": 2.0},
                             {"moment": "invoice", "label": "Rechnung", "priority": 1.0}],
        "inputs": {"files": [{"file": "a.csv", "rows": 99}]},
        "new_section": {"y": 2, "z": 3},
    }
    comparison = compare.compare_runs(previous, previous_results, current, current_results)
    assert comparison["previous_run"] == "R1" and comparison["fingerprint_changed"] is True
    assert comparison["inputs"] == {
        "added": ["new.csv"], "removed": ["gone.csv"],
        "changed": [{"file": "b.csv", "previous_sha256": "2", "sha256": "22", "previous_bytes": 1, "bytes": 2}],
        "unchanged": 1,
    }
    assert comparison["notebooks"] == {"added": ["02_feedback"], "removed": ["06_summary"]}
    assert comparison["parameters"] == [
        {"notebook": "", "parameter": "lang", "previous": "en", "current": "de"},
        {"notebook": "01_validate_clean", "parameter": "tolerance", "previous": 0.02, "current": 0.05},
        {"notebook": "01_validate_clean", "parameter": "create_key", "previous": None, "current": False},
    ]
    # rows matched by their code (re-ordered, relabelled), not by position; tiny float noise and
    # booleans ignored; inputs compared file by file, not as numbers; shallow paths first
    assert comparison["numbers"] == [
        {"path": "feedback.nps.value", "previous": 10.0, "current": 12.5, "change": 2.5},
        {"path": "feedback.nps.n", "previous": 400, "current": 410, "change": 10},
        {"path": "moments_of_truth[moment=hotline].priority", "previous": 0.5, "current": 2.0, "change": 1.5},
        {"path": "feedback.by_segment[segment=business].nps", "previous": 20.0, "current": 21.0, "change": 1.0},
    ]
    assert comparison["numbers_compared"] == 8
    assert comparison["numbers_added"] == 2 and comparison["numbers_removed"] == 1


def test_numeric_leaves_name_rows_by_code_then_position():
    assert compare.numeric_leaves({"c": [{"cat": "a", "month": "1", "r": 1}, {"cat": "a", "month": "2", "r": 2}]}) == {
        "c[cat=a, month=1].r": 1, "c[cat=a, month=2].r": 2}
    assert compare.numeric_leaves({"t": [{"x": 1}, {"x": 2}], "s": [1, 2.5, "x", None]}) == {
        "t[0].x": 1, "t[1].x": 2, "s[0]": 1, "s[1]": 2.5}
    assert compare.numeric_leaves({}) == {}


# --- index.html: views, language, comparison ------------------------------------------------------
def full_record(lang="en", audience="management", view=None, comparison=None):
    record = run_record()
    record["notebooks"] = [
        {"name": name, "title": name.title(), "status": "succeeded", "duration_s": 1.0, "html": f"{name}.html"}
        for name in ("01_validate_clean", "02_feedback", "06_summary")]
    record["run_parameters"] = {"lang": lang, "audience": audience, "retention_days": 0}
    record["view"] = {"audience": audience, "reports": view or ["06_summary", "02_feedback"]}
    record["comparison"] = comparison
    return record


RESULTS = {"validation": {"status": "passed", "failed": [], "checked": 57},
           "feedback": {"nps": {"value": 12.345, "ci_low": 8.1, "ci_high": 16.6, "n": 4210},
                        "csat": {"value": 65.678, "ci_low": 63.4, "ci_high": 67.9, "n": 1754}},
           "journey": {"conversion_rate": {"value": 0.10399, "ci_low": 0.0884, "ci_high": 0.1219, "n": 1279}},
           "contact_list": {"included": 1234}}


def test_index_html_audience_view_orders_reports():
    html = index_page.index_html(full_record(view=["06_summary", "02_feedback"]), RESULTS)
    assert html.index('href="06_summary.html"') < html.index('href="02_feedback.html"') < html.index("Other reports")
    assert html.index("Other reports") < html.index('href="01_validate_clean.html"')
    assert "Reports for management" in html
    html = index_page.index_html(full_record(audience="service", view=["02_feedback"]), RESULTS)
    assert "Reports for customer service" in html
    assert html.index('href="02_feedback.html"') < html.index("Other reports") < html.index('href="06_summary.html"')


def test_index_html_headline_tiles_carry_the_numbers():
    html = index_page.index_html(full_record(), RESULTS)
    assert '<div class="tile" data-key="feedback.nps" data-value="12.345"><div class="label">NPS</div><div class="value">+12.3</div>' in html
    assert 'data-key="feedback.csat" data-value="65.678"><div class="label">CSAT (satisfied)</div><div class="value">65.7%</div>' in html
    assert 'data-key="journey.conversion_rate" data-value="0.10399"><div class="label">Conversion rate</div><div class="value">10.4%</div>' in html
    assert "95% interval 8.8% to 12.2%" in html
    assert 'data-key="contact_list.included" data-value="1234"><div class="label">Call-back list (customers)</div><div class="value">1,234</div>' in html


def test_results_sections_show_shares_in_percent_like_the_headline_tiles():
    journey = {"conversion_rate": {"value": 0.114, "ci_low": 0.108, "ci_high": 0.121, "n": 8621},
               "funnel": [{"step": "visit", "customers": 100, "conversion": 1.0, "ci_low": 1.0, "ci_high": 1.0},
                          {"step": "order", "customers": 14, "conversion": 0.142, "ci_low": 0.137, "ci_high": 0.147}],
               "themes": [{"theme": "price", "share": 17.9}, {"theme": "hotline", "share": 2.87}]}
    html = index_page.render_section(journey, lang="en", path="journey")
    assert '<div class="label">Conversion rate</div><div class="value">11.4%</div>' in html
    assert "95% interval 10.8% to 12.1% · n = 8,621" in html and "0.114" not in html
    assert '<td class="num">14.2%</td><td class="num">13.7%</td><td class="num">14.7%</td>' in html
    assert '<td class="num">17.9%</td>' in html and "17.9%%" not in html     # a share already in percent: no × 100
    german = index_page.render_section(journey, lang="de", path="journey")
    assert '<div class="label">Konversionsrate</div><div class="value">11,4\u00a0%</div>' in german
    assert '<td class="num">14,2\u00a0%</td>' in german
    # without a headline the key in words is the label and the number is shown as it is
    assert '<div class="label">conversion rate</div><div class="value">0.114</div>' in index_page.render_section(
        {"conversion_rate": journey["conversion_rate"]}, path="other")
    # the CES tile with two decimals (5.00, not 5)
    ces = index_page.render_section({"ces": {"value": 5.04, "ci_low": 5.0019, "ci_high": 5.07, "n": 5489}}, path="feedback")
    assert "<div class=\"value\">5.04</div>" in ces and "95% interval 5.00 to 5.07" in ces


def test_index_html_german():
    comparison = {"previous_run": "20261022T060000Z", "fingerprint_changed": True,
                  "inputs": {"added": [], "removed": [], "unchanged": 3,
                             "changed": [{"file": "crm.csv", "previous_sha256": "aa" * 32, "sha256": "bb" * 32,
                                          "previous_bytes": 12000, "bytes": 12345}]},
                  "notebooks": {"added": [], "removed": []},
                  "parameters": [{"notebook": "", "parameter": "lang", "previous": "en", "current": "de"}],
                  "numbers": [{"path": "feedback.nps.value", "previous": 10.0, "current": 12.345, "change": 2.345}],
                  "numbers_compared": 40, "numbers_added": 0, "numbers_removed": 0}
    html = index_page.index_html(full_record("de", comparison=comparison), RESULTS)
    assert html.startswith('<!DOCTYPE html>\n<html lang="de">')
    for text in ("CX Insights — Lauf 20261122T143012Z", "Auf einen Blick", "Berichte für die Geschäftsleitung",
                 "Weitere Berichte", "Was sich seit dem letzten Lauf geändert hat", "Inhalt",
                 "1 Datei(en) geändert, 0 neu, 0 entfernt, 3 unverändert", "Geänderte Parameter", "(ganzer Lauf)",
                 "1 von 40 erfassten Zahlen haben sich geändert.", "Sicht für die Geschäftsleitung · Sprache: Deutsch"):
        assert text in html, text
    assert '<div class="value">+12,3</div>' in html and "95-%-Intervall +8,1 bis +16,6" in html and "n = 4.210" in html
    assert '<div class="value">65,7\u00a0%</div>' in html and '<div class="value">10,4\u00a0%</div>' in html
    assert "Δ +2,3 gegenüber dem vorherigen Lauf" in html
    assert ('<td>Kundenfeedback · NPS</td><td class="num">10,0</td><td class="num">12,3</td><td class="num">+2,3</td>'
            in html)                                             # the path in words, NPS to 1 decimal
    assert '<a href="../20261022T060000Z/index.html">' in html
    assert "12.000 Bytes" in html and "12.345 Bytes" in html
    assert 'class="badge succeeded">erfolgreich<' in html


def test_index_html_first_run_says_so():
    html = index_page.index_html(full_record(comparison=compare.compare_runs(None, None, {}, {})), RESULTS)
    assert "There is no earlier successful run to compare with." in html


def test_index_html_long_comparison_is_folded():
    numbers = [{"path": f"s.x[{i}]", "previous": i, "current": i + 1, "change": 1} for i in range(300)]
    comparison = {"previous_run": "R0", "fingerprint_changed": False, "inputs": {}, "notebooks": {},
                  "parameters": [], "numbers": numbers, "numbers_compared": 300}
    html = index_page.index_html(full_record(comparison=comparison), RESULTS)
    assert "Same input data as the previous run" in html and "No parameter changed." in html
    assert "<summary>all 300 changed numbers</summary>" in html
    assert "… and 100 more in run.json (comparison.numbers)" in html


# --- stage reports: house style, language, alt text ---------------------------------------------------
def styled_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Stage\n\nIntro."),
        nbformat.v4.new_markdown_cell("## 1. Numbers"),
        nbformat.v4.new_code_cell("t", execution_count=1, outputs=[nbformat.v4.new_output("display_data", data={
            "text/html": ('<table class="dataframe"><thead><tr><th></th><th>segment</th><th>n</th><th>value</th>'
                          "<th>small</th><th>signup_year</th></tr></thead><tbody><tr><th>0</th><td>business</td>"
                          "<td>12345</td><td>0.25</td><td>False</td><td>2024</td></tr><tr><th>1</th><td>private</td>"
                          "<td>87</td><td>NaN</td><td>True</td><td>2025</td></tr></tbody></table>"),
            "text/plain": "table"})]),
        nbformat.v4.new_markdown_cell("## 2. Figures"),
        nbformat.v4.new_code_cell("fig", execution_count=2, outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": PNG_1PX, "text/plain": "<Figure>"},
                                   metadata={"image/png": {"alt": "NPS fell 3 points. n = 400 · NPS definition"}}),
            nbformat.v4.new_output("display_data", data={"image/png": PNG_1PX, "text/plain": "<Figure>"}),
            nbformat.v4.new_output("display_data", data={
                "text/html": '<script src="https://cdn.example.com/x.js"></script><p>kept</p>', "text/plain": ""}),
        ]),
    ]
    path = tmp_path / "stage.ipynb"
    nbformat.write(nb, path)
    return path


def test_export_html_german_house_style(tmp_path):
    html = export.export_html(styled_notebook(tmp_path), tmp_path / "stage.html", title="Stufe", lang="de",
                              back_link="index.html").read_text(encoding="utf-8")
    assert '<html lang="de">' in html and "<title>Stufe</title>" in html
    assert '<p class="back"><a href="index.html">← Überblick über den Lauf</a></p>' in html
    assert re.search(r'<nav aria-label="Inhalt" class="toc"><p class="toc-title">Inhalt</p><ul><li><a href="#1\.-Numbers">'
                     r"1\. Numbers</a></li><li><a href=\"#2\.-Figures\">2\. Figures</a></li></ul></nav>", html)
    body = visible_text(html)
    # numbers in the format of the language, default row numbers gone, booleans and NaN readable
    assert ('<tr><td>business</td><td class="num">12.345</td><td class="num">0,25</td><td>nein</td>'
            '<td class="num">2024</td></tr><tr><td>private</td><td class="num">87</td><td>–</td><td>ja</td>'
            '<td class="num">2025</td></tr>') in body
    assert "<th></th>" not in body
    assert '<th>segment</th><th class="num">n</th><th class="num">value</th><th>small</th><th class="num">signup_year</th>' in body
    # alt text: the figure's own, else the section it sits in
    assert 'alt="NPS fell 3 points. n = 400 · NPS definition"' in html
    assert 'alt="Abbildung im Abschnitt „2. Figures“"' in html
    assert export.NBCONVERT_NO_ALT not in html
    # nothing from outside the file; the house stylesheet is in
    assert "cdn.example.com" not in html and "<p>kept</p>" in html
    assert "nav.toc" in html and ".jp-Notebook .jp-RenderedHTMLCommon td.num" in html


def test_export_html_english_keeps_decimal_point(tmp_path):
    html = export.export_html(styled_notebook(tmp_path), tmp_path / "stage.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html and ">Contents</p>" in html and '<p class="back">' not in html
    assert '<td class="num">12,345</td><td class="num">0.25</td><td>no</td>' in html
    assert 'alt="Figure in section “2. Figures”"' in html


def test_export_html_error_is_one_line_without_traceback_in_german(executed_notebook, tmp_path):
    html = export.export_html(executed_notebook, tmp_path / "tiny.html", lang="de").read_text(encoding="utf-8")
    assert ("Diese Stufe hat hier angehalten: SourceError: crm.csv: column 'Kundennummer' not found (rows 2, 5)"
            in visible_text(html))
    assert "Traceback" not in html and "secret_code_marker" not in html


def test_figure_alt_text_from_title_and_caption():
    from cxlib import plots

    fig, ax = plots.new_figure("Invoice contacts cost 31 NPS points")
    ax.bar(["a", "b"], [1, 2])
    plots.finish(fig, n=4210, definition="NPS = % promoters - % detractors")
    assert export.figure_alt_text(fig) == "Invoice contacts cost 31 NPS points. n = 4,210 · NPS = % promoters - % detractors"
    import matplotlib.pyplot as plt

    plt.close(fig)
    bare, ax = plt.subplots()
    ax.set_title("Left title", loc="left")
    assert export.figure_alt_text(bare) == "Left title"
    ax.set_title("", loc="left")
    ax.set_ylabel("customers")
    assert export.figure_alt_text(bare) == "Figure: customers"
    plt.close(bare)


def test_ipython_extension_puts_alt_text_into_figure_metadata():
    import types

    import matplotlib.pyplot as plt
    from IPython.core.formatters import DisplayFormatter

    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    export.load_ipython_extension(shell)
    fig, _ = plt.subplots()
    fig.suptitle("Churn doubles after a failed repair")
    _, metadata = shell.display_formatter.format(fig)
    plt.close(fig)
    assert metadata["image/png"] == {"alt": "Churn doubles after a failed repair"}


# --- on a real demo run (the session's baseline run) ----------------------------------------------------
def report_files(run_dir):
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return [run_dir / "index.html", *(run_dir / nb["html"] for nb in record["notebooks"] if nb.get("html"))]


def external_references(html: str) -> list[str]:
    """Everything in an HTML file that would load from outside it."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    found = [tag.get("src") or tag.get("href") for tag in soup.find_all(["script", "link", "img", "iframe", "source",
                                                                         "video", "audio", "embed", "object"])
             if re.match(r"(?i)\s*(https?:)?//", tag.get("src") or tag.get("href") or tag.get("data") or "")]
    found += [f"<script src={tag['src']}>" for tag in soup.find_all("script", src=True)]
    found += re.findall(r"@import\s+(?:url\()?\s*['\"]?(?:https?:)?//[^)'\";]+", html, flags=re.I)
    found += re.findall(r"url\(\s*['\"]?(?:https?:)?//[^)'\"]+", html, flags=re.I)
    return found


def test_every_html_is_self_contained_without_code(baseline):
    from bs4 import BeautifulSoup

    done, run_dir = baseline
    assert done.returncode == 0, done.stdout + done.stderr
    for path in report_files(run_dir):
        html = path.read_text(encoding="utf-8")
        soup = BeautifulSoup(html, "html.parser")
        assert external_references(html) == [], path.name
        # code cells keep only their outputs (markdown cells sit in a jp-InputArea of their own)
        assert not soup.select(".jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-Cell-inputWrapper, .input_area, "
                               ".jp-InputPrompt, .jp-OutputPrompt, .prompt, .jp-CodeMirrorEditor, div.highlight"), path.name
        assert len(soup.select(".jp-CodeCell")) == len(soup.select(".jp-CodeCell.jp-mod-noInput")), path.name
        text = soup.get_text(" ")
        assert "In [" not in text and "In\u00a0[" not in text and "Out[" not in text, path.name
        assert "Traceback" not in html and not soup.select('[data-mime-type="application/vnd.jupyter.stderr"]'), path.name
        images = soup.find_all("img")
        assert all(img["src"].startswith("data:image/") for img in images), path.name
        assert all(img.get("alt", "").strip() and img["alt"] != export.NBCONVERT_NO_ALT for img in images), path.name
        assert soup.html["lang"] == "en" and soup.find("nav", class_="toc") is not None, path.name


def test_stage_figures_have_their_title_as_alt_text(baseline):
    from bs4 import BeautifulSoup

    _, run_dir = baseline
    soup = BeautifulSoup((run_dir / "01_validate_clean.html").read_text(encoding="utf-8"), "html.parser")
    alts = [img["alt"] for img in soup.find_all("img")]
    assert alts and all(alt.startswith("Cleaning ") and " n = " in alt for alt in alts), alts


def test_every_figure_cell_shows_its_figure_in_the_stage_report(baseline):
    """Each executed cell that finishes a house-style figure (`plots.finish(`, or a figure function
    `…_figure(` of a stage's figure module) carries an image or says why there is none (a markdown
    output starting "No ", or the note of a skipped section), and the reader's HTML has as many
    images as the executed notebook (a backend mix-up once dropped every figure after a
    notebook's first)."""
    from bs4 import BeautifulSoup

    _, run_dir = baseline
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    checked = 0
    for nb in record["notebooks"]:
        cells = nbformat.read(run_dir / nb["ipynb"], as_version=4).cells
        figure_cells = [c for c in cells if c.cell_type == "code" and re.search(r"plots\.finish\(|\w_figure\(", c.source)]
        images = [o for c in cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
        drawn = [c for c in figure_cells if any("image/png" in o.get("data", {}) for o in c.outputs)]
        blank = [c.source.splitlines()[0] for c in figure_cells if c not in drawn
                 and not any(o.get("data", {}).get("text/markdown", "").startswith(("No ", "*Not shown", "*Nicht gezeigt"))
                             for o in c.outputs)]
        assert blank == [], (nb["name"], blank)
        html_images = BeautifulSoup((run_dir / nb["html"]).read_text(encoding="utf-8"), "html.parser").find_all("img")
        assert len(html_images) >= len(images) >= len(drawn), nb["name"]      # 06 also embeds its own
        checked += len(drawn)
    assert checked >= 20


def test_notebooks_emit_no_warnings_or_errors(baseline):
    """A warning in a report is a bug: no stage may write to stderr or raise (checked on the
    executed notebooks, before the reader copy strips anything)."""
    _, run_dir = baseline
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    emitted = [
        (nb["name"], index, (out.get("text") or out.get("ename", ""))[:200])
        for nb in record["notebooks"]
        for index, cell in enumerate(nbformat.read(run_dir / nb["ipynb"], as_version=4).cells)
        for out in cell.get("outputs", [])
        if (out.get("output_type") == "stream" and out.get("name") == "stderr") or out.get("output_type") == "error"
    ]
    assert emitted == []


def test_index_numbers_match_results_json(baseline):
    from bs4 import BeautifulSoup

    _, run_dir = baseline
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    soup = BeautifulSoup((run_dir / "index.html").read_text(encoding="utf-8"), "html.parser")
    tiles = {tile["data-key"]: tile for tile in soup.select(".tile[data-key]")}
    assert {"feedback.nps", "feedback.csat", "feedback.ces", "journey.conversion_rate",
            "journey.repeat_customer_rate", "contact_list.included"} <= set(tiles)
    units = {path: unit for path, unit, _ in index_page.HEADLINES}
    for key, tile in tiles.items():
        section, name = key.split(".")
        entry = results[section][name]
        value = entry["value"] if isinstance(entry, dict) else entry
        assert json.loads(tile["data-value"]) == value, key
        shown = locale.format_value(value, units[key], sign=units[key] == "points")   # NPS signed, as the summary
        assert tile.select_one(".value").get_text() == shown, key
        if isinstance(entry, dict) and entry.get("n") is not None:
            assert f"n = {locale.format_number(entry['n'])}" in tile.select_one(".detail").get_text(), key
    fingerprint = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["inputs"]["fingerprint"]
    assert soup.select_one("#glance code")["title"] == fingerprint
    assert soup.select_one("#validation .badge")["class"] == ["badge", results["validation"]["status"]]
    assert soup.select_one('a[href="06_summary.html"]') is not None


def test_summary_report_numbers_match_results_json(baseline):
    """06_summary.html shows the tiles and findings that results.json records under `summary`:
    each tile's value, interval and n as recorded, called significant exactly when it is."""
    from bs4 import BeautifulSoup

    from cxlib import summary

    _, run_dir = baseline
    recorded = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["summary"]
    soup = BeautifulSoup((run_dir / "06_summary.html").read_text(encoding="utf-8"), "html.parser")
    shown = {tile["data-kpi"]: tile for tile in soup.select("[data-kpi]")}
    assert recorded["audience"] == "management" and set(shown) == set(summary.KPI_TILES) == set(recorded["tiles"])
    for kpi, tile in recorded["tiles"].items():
        text = " ".join(shown[kpi].get_text(" ").split())
        assert float(shown[kpi]["data-value"]) == pytest.approx(tile["value"], rel=1e-5), kpi
        assert summary.kpi_text(tile["value"], kpi) in text, (kpi, text)
        assert f"{summary.kpi_text(tile['ci_low'], kpi)} to {summary.kpi_text(tile['ci_high'], kpi)}" in text, kpi
        assert f"n = {locale.format_number(tile['n'], decimals=0)}" in text, kpi
        called = re.search(r"(?<!not )significant \(adj\. p", text) is not None
        assert called == (tile["tested"] and tile["significant_previous_period"]), (kpi, text)
    page = " ".join(soup.get_text(" ").split())
    assert 3 <= len(recorded["findings"]) <= 5
    for finding in recorded["findings"]:
        assert " ".join(re.sub(r"[*`]", "", finding).split()) in page, finding
    assert recorded["parameters"]["current period"] in page and recorded["data_period"]


# --- two demo runs with different seeds, the second in German ------------------------------------------
@pytest.fixture(scope="module")
def second_seed_run(baseline, demo_project, tmp_path_factory, cx):
    """A copy of the demo project after the baseline run, with demo exports of another seed,
    run with 01_validate_clean + 02_feedback only and lang=de: (baseline run dir in the copy,
    completed process, new run dir)."""
    import shutil

    from conftest import DEMO_CUSTOMERS

    done, run_dir = baseline
    assert done.returncode == 0, done.stdout + done.stderr
    project = tmp_path_factory.mktemp("second_seed") / "project"
    shutil.copytree(demo_project, project, symlinks=True)
    made = cx("demo", "--customers", str(DEMO_CUSTOMERS), "--seed", "12", "--out", str(project / "data" / "raw"), "-q")
    assert made.returncode == 0, made.stderr
    second = cx("run", "--only", "01_validate_clean", "--only", "02_feedback", "-p", "lang=de",
                "--project", str(project), cwd=project)
    latest = project / "reports" / "latest"
    return project / "reports" / run_dir.name, second, latest.resolve()


def test_comparison_of_two_seeds(second_seed_run):
    first_dir, done, second_dir = second_seed_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert second_dir != first_dir.resolve()
    first_results = json.loads((first_dir / "results.json").read_text(encoding="utf-8"))
    second_results = json.loads((second_dir / "results.json").read_text(encoding="utf-8"))
    record = json.loads((second_dir / "run.json").read_text(encoding="utf-8"))
    comparison = record["comparison"]
    assert comparison["previous_run"] == first_dir.name
    assert comparison["fingerprint_changed"] is True
    changed = {f["file"] for f in comparison["inputs"]["changed"]}
    assert {"crm_kunden.csv", "umfrage_antworten.csv", "bestellungen.csv"} <= changed
    assert comparison["inputs"]["added"] == [] and comparison["inputs"]["removed"] == []
    first_record = json.loads((first_dir / "run.json").read_text(encoding="utf-8"))
    assert set(comparison["notebooks"]["removed"]) == {nb["name"] for nb in first_record["notebooks"]} - {
        "01_validate_clean", "02_feedback"} >= {"03_journey", "04_moments_of_truth", "05_customer_value", "06_summary"}
    params = {(p["notebook"], p["parameter"]): (p["previous"], p["current"]) for p in comparison["parameters"]}
    assert params[("", "lang")] == ("en", "de") and params[("02_feedback", "lang")] == ("en", "de")
    assert params[("", "retention_days")] == (90, 0)                 # the baseline ran with params/monthly.yml
    numbers = {row["path"]: row for row in comparison["numbers"]}
    nps = numbers["feedback.nps.value"]
    assert nps["previous"] == first_results["feedback"]["nps"]["value"]
    assert nps["current"] == second_results["feedback"]["nps"]["value"]
    assert nps["change"] == pytest.approx(nps["current"] - nps["previous"])
    assert numbers["tables.events"]["previous"] == first_results["tables"]["events"]
    assert numbers["tables.events"]["current"] == second_results["tables"]["events"]
    assert comparison["numbers_compared"] > 100


def test_german_index_and_stage_report(second_seed_run):
    from bs4 import BeautifulSoup

    first_dir, _, second_dir = second_seed_run
    results = json.loads((second_dir / "results.json").read_text(encoding="utf-8"))
    record = json.loads((second_dir / "run.json").read_text(encoding="utf-8"))
    index = BeautifulSoup((second_dir / "index.html").read_text(encoding="utf-8"), "html.parser")
    assert index.html["lang"] == "de"
    text = index.get_text(" ")
    for label in ("Auf einen Blick", "Berichte für die Geschäftsleitung", "Was sich seit dem letzten Lauf geändert hat",
                  "Geänderte Parameter", "Geänderte Zahlen", "Fingerabdruck der Daten"):
        assert label in text, label
    nps = results["feedback"]["nps"]
    tile = index.select_one('.tile[data-key="feedback.nps"]')
    assert tile.select_one(".value").get_text() == locale.format_value(nps["value"], "points", "de", sign=True)
    assert f"n = {locale.format_number(nps['n'], 'de')}" in tile.get_text()
    assert "," in locale.format_value(nps["value"], "points", "de")
    change = next(r for r in record["comparison"]["numbers"] if r["path"] == "feedback.nps.value")
    assert f"Δ {'+' if change['change'] > 0 else ''}{locale.format_number(change['change'], 'de', decimals=1)}" in tile.get_text()
    assert index.select_one(f'a[href="../{first_dir.name}/index.html"]') is not None
    assert index.select_one('a[href="02_feedback.html"]').get_text() == "Stimme der Kunden"

    stage = BeautifulSoup((second_dir / "02_feedback.html").read_text(encoding="utf-8"), "html.parser")
    assert stage.html["lang"] == "de" and stage.title.get_text() == "Stimme der Kunden"
    assert stage.select_one("nav.toc .toc-title").get_text() == "Inhalt"
    numbers = [td.get_text() for td in stage.select("td.num")]
    assert numbers and any(re.fullmatch(r"-?\d+,\d+", n) for n in numbers)
    german = re.compile(r"[+-]?\d{1,3}(\.\d{3})*(,\d+)?(\u00a0%)?|[+-]?\d+(,\d+)?")   # 1.234,5 · 12,3 % · 2025
    assert [n for n in numbers if not german.fullmatch(n)] == []
    assert external_references(str(stage)) == []


def test_cleaning_figure_draws_one_bar_per_rule_and_says_when_nothing_changed():
    from cxlib import schema

    fig = ingest_describe.cleaning_figure(LOG, pd.Series({"customers": 100, "events": 50, "feedback": 50}))
    ax = fig.axes[0]
    assert len(ax.patches) == 4                                   # the four rules with rows (bookkeeping left out)
    assert fig._suptitle.get_text().startswith("Cleaning dropped")
    with pytest.raises(schema.Missing, match="no row"):
        ingest_describe.cleaning_figure(LOG.assign(rows=0), pd.Series({"customers": 100}))


# --- findings first, method last ---------------------------------------------------------------------
def tagged_notebook(tmp_path, *, lang=None, findings_output=True):
    """A hand-made executed notebook: title and purpose, a section, a method cell (the parameters
    table) near the top, a second section, a method markdown cell, and the findings cell at the end."""
    def out(text):
        return [nbformat.v4.new_output("display_data", data={"text/markdown": text, "text/plain": text})]

    def cell(source, text, tags=()):
        made = nbformat.v4.new_code_cell(source, execution_count=1, outputs=out(text) if text else [])
        made.metadata["tags"] = list(tags)
        return made

    nb = nbformat.v4.new_notebook()
    method_md = nbformat.v4.new_markdown_cell("**Definitions.** NPS = % promoters - % detractors.")
    method_md.metadata["tags"] = ["method"]
    parameters = nbformat.v4.new_code_cell('lang: str = "en"', execution_count=1)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Stage title\n\nPurpose of the stage."),
        parameters,
        cell("report.parameters_table(p)", "PARAMETERS TABLE", ["method"]),
        nbformat.v4.new_markdown_cell("## 1. First section"),
        cell("x", "FIRST SECTION NUMBERS"),
        nbformat.v4.new_markdown_cell("## 2. Second section"),
        cell("y", "SECOND SECTION NUMBERS"),
        method_md,
        cell("describe_findings()", "FINDING SENTENCES" if findings_output else "", ["findings"]),
    ]
    if lang:
        injected = nbformat.v4.new_code_cell(f'lang = "{lang}"', execution_count=1)
        injected.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(2, injected)
    path = tmp_path / "tagged.ipynb"
    nbformat.write(nb, path)
    return path


def order(html: str, *texts: str) -> list[int]:
    return [html.index(text) for text in texts]


def test_export_puts_findings_after_the_purpose_and_method_last(tmp_path):
    html = export.export_html(tagged_notebook(tmp_path), tmp_path / "tagged.html").read_text(encoding="utf-8")
    positions = order(html, "Purpose of the stage", '<h2 id="cx-findings">Key findings</h2>', "FINDING SENTENCES",
                      'class="toc"', "1. First section", "FIRST SECTION NUMBERS", "SECOND SECTION NUMBERS",
                      '<h2 id="cx-method">How this was measured</h2>', "PARAMETERS TABLE", "Definitions.")
    assert positions == sorted(positions)
    assert html.count("FINDING SENTENCES") == html.count("PARAMETERS TABLE") == 1
    toc = re.search(r'<nav[^>]*class="toc".*?</nav>', html, flags=re.S).group(0)
    assert toc.index("Key findings") < toc.index("First section") < toc.index("How this was measured")


def test_export_headings_follow_the_language_of_the_notebook(tmp_path):
    html = export.export_html(tagged_notebook(tmp_path, lang="de"), tmp_path / "tagged.html").read_text(encoding="utf-8")
    assert '<html lang="de">' in html
    assert '<h2 id="cx-findings">Die wichtigsten Ergebnisse</h2>' in html
    assert '<h2 id="cx-method">So wurde gemessen</h2>' in html
    nb = nbformat.read(tagged_notebook(tmp_path, lang="de"), as_version=4)
    assert export.notebook_lang(nb) == "de"
    nb.metadata["papermill"] = {"parameters": {"lang": "en"}}
    assert export.notebook_lang(nb) == "en"


def test_export_without_tags_keeps_the_order(tmp_path, executed_notebook):
    nb = nbformat.read(executed_notebook, as_version=4)
    ordered = export.reader_order(nb)
    assert [c.source for c in ordered.cells if c.source != '<div id="cx-toc"></div>'] == [c.source for c in nb.cells]
    html = export.export_html(executed_notebook, tmp_path / "tiny.html").read_text(encoding="utf-8")
    assert 'id="cx-findings"' not in html and 'id="cx-method"' not in html


def test_export_leaves_findings_that_did_not_run_in_place(tmp_path):
    """A stage that stopped before its findings: no empty "Key findings" part at the top."""
    nb = nbformat.read(tagged_notebook(tmp_path, findings_output=False), as_version=4)
    ordered = export.reader_order(nb)
    assert [c.source for c in ordered.cells].index("describe_findings()") > \
        [c.source for c in ordered.cells].index("y")
    assert not any("cx-findings" in c.source for c in ordered.cells)
    assert any("cx-method" in c.source for c in ordered.cells)


def test_index_tiles_name_their_period_and_the_last_period_of_the_summary():
    results = {**RESULTS,
               "feedback": {**RESULTS["feedback"], "period": {"from": "2024-01-01", "to": "2025-12-31"}},
               "summary": {"tiles": {"nps": {"period": "2025-12", "period_kind": "month", "value": 9.96, "n": 552}}}}
    html = index_page.index_html(full_record(), results)
    nps = re.search(r'<div class="tile" data-key="feedback.nps".*?</div></div>', html).group(0)
    assert '<div class="period">all time, 1 Jan 2024 to 31 Dec 2025</div>' in nps
    assert '<div class="latest">Dec 2025 (last month): +10.0 · n = 552</div>' in nps
    assert '<div class="period">all time</div>' in html                  # the conversion rate
    german = index_page.index_html(full_record("de"), results)
    assert "gesamter Zeitraum, 01.01.2024 bis 31.12.2025" in german and "(letzter Monat): +10,0" in german


def test_index_appendix_in_words_and_in_german():
    results = {**RESULTS, "complaints": [{"category": "billing", "month": "2025-01", "rate_per_1000": 4.123,
                                          "out_of_control": True}],
               "campaign_fatigue": {"fatigue_days": 90, "p_value": 0.85812, "ci_low": 0.9123}}
    html = index_page.index_html(full_record(), results)
    appendix = html[html.index('id="appendix"'):html.index('id="parameters"')]
    assert "<summary>Complaints</summary>" in appendix and "<summary>Campaign fatigue</summary>" in appendix
    assert "<th>complaints per 1,000 active customers</th>" in appendix and '<td class="num">4.1</td>' in appendix
    assert "<td>Jan 2025</td>" in appendix and "<td>yes</td>" in appendix
    assert "<th>fatigue days</th>" in appendix and '<td class="num">0.858</td>' in appendix
    assert "rate_per_1000" not in appendix and "fatigue_days" not in appendix and "4.123" not in appendix
    german = index_page.index_html(full_record("de"), results)
    appendix = german[german.index('id="appendix"'):german.index('id="parameters"')]
    assert "Anhang: alle erfassten Zahlen" in appendix and "<summary>Beschwerden</summary>" in appendix
    assert "<td>Jan. 2025</td>" in appendix or "<td>Jan 2025</td>" in appendix
    assert '<td class="num">4,1</td>' in appendix and "<td>ja</td>" in appendix


def test_ingest_notes_in_german():
    before = pd.Series({"customers": 100, "events": 50, "feedback": 50})
    assert ingest_describe.cleaning_title(LOG, before, "de").startswith("Die Bereinigung entfernte ")
    note = ingest_describe.describe_cleaning(LOG, before, "de")
    assert note.startswith("Die Bereinigung **entfernte ") and "(entfernt)" in note
    gate = ingest_describe.describe_gate(Gate("raw", "warned", ["warned"]), "de")
    assert gate.startswith("Die Prüfstufe **Rohdaten** führte **1 Prüfung** an 1 Tabelle aus")
    assert "Der Lauf geht weiter" in gate
    rows = ingest_describe.rows_table(pd.Series({"customers": 10}), pd.Series({"customers": 9}))
    assert list(ingest_describe.rows_display(rows, "de").columns) == [
        "Tabelle", "gelesene Zeilen", "geschriebene Zeilen", "entfernt", "abgeleitet", "entfernt (%)"]
    assert ingest_describe.rows_display(rows, "de")["entfernt (%)"].tolist() == ["10,0\u00a0%"]


def test_export_keeps_tables_cxlib_formatted_for_german_readers(tmp_path):
    """'20.261' from locale.display_table(lang='de') is twenty thousand: the export must not read it as 20.261."""
    shown = locale.display_table(pd.DataFrame({"table": ["customers", "events"], "rows": [20261, 261]}), "de")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Stufe"),
                nbformat.v4.new_code_cell("t", execution_count=1, outputs=[nbformat.v4.new_output(
                    "execute_result", execution_count=1, data={"text/html": shown.to_html(), "text/plain": "t"})])]
    nbformat.write(nb, tmp_path / "de.ipynb")
    html = export.export_html(tmp_path / "de.ipynb", tmp_path / "de.html", lang="de").read_text(encoding="utf-8")
    assert '<td class="num">20.261</td>' in html and '<td class="num">261</td>' in html and "20,261" not in html
