"""cxlib.report: JSON-safe records, parameters table, notebook -> HTML without code, index.html."""

from __future__ import annotations

import json
import re

import nbformat
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import report

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


def test_format_number():
    assert [report.format_number(v) for v in (None, 12345.6, 12.345, 0.0213, 3.0, 1200, True, "x")] == [
        "–", "12,346", "12.3", "0.0213", "3", "1,200", "yes", "x",
    ]


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
    out = report.export_html(executed_notebook, tmp_path / "tiny.html", title="Tiny report")
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
    report.export_html(executed_notebook, tmp_path / "tiny.html")
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
    html = report.index_html(run_record(), results, data_docs=["data_docs/processed/index.html", "data_docs/raw/index.html"])
    assert "20261122T143012Z" in html
    assert 'class="badge succeeded"' in html and 'class="badge warned"' in html
    assert 'href="01_validate_clean.html"' in html and "Validation and cleaning" in html
    assert 'href="data_docs/processed/index.html">processed</a>' in html and 'href="data_docs/raw/index.html">raw</a>' in html
    assert "abababababababab" in html                       # fingerprint shown (first 16 chars)
    assert "crm_kunden.csv" in html and "118" in html
    assert ">12.3<" in html and "8.1 to 16.6" in html and "n = 4,210" in html
    assert "business" in html and "0.251" in html
    assert "… and 5 more rows in results.json" in html        # long lists are cut at 15 rows
    assert "/srv/cx/config/sources/demo.yml" in html and "0.02" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html


def test_index_html_failed_run_names_notebook_and_cell():
    failure = {"notebook": "01_validate_clean", "cell": 7, "ename": "ValidationFailed",
               "evalue": "feedback.nps: 12% out of range (rows 3, 9)"}
    html = report.index_html(run_record("failed", failure), {})
    assert "FAILED 01_validate_clean, cell 7: ValidationFailed: feedback.nps: 12% out of range (rows 3, 9)" in html
    assert 'class="badge failed"' in html
    assert "not run" in html                                  # no validation section recorded


def test_write_index_links_data_docs(tmp_path):
    for stage in ("raw", "processed"):
        docs = tmp_path / "data_docs" / stage / "index.html"
        docs.parent.mkdir(parents=True)
        docs.write_text("<html></html>", encoding="utf-8")
    path = report.write_index(tmp_path, run_record(), {"validation": {"status": "passed", "failed": []}})
    assert path == tmp_path / "index.html"
    html = path.read_text(encoding="utf-8")
    assert 'href="data_docs/processed/index.html">processed</a> · <a href="data_docs/raw/index.html">raw</a>' in html


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
    before = report.row_counts({"customers": pd.DataFrame({"a": range(100)}), "events": pd.DataFrame({"a": range(50)})})
    assert before.to_dict() == {"customers": 100, "events": 50}
    after = pd.Series({"customers": 97, "events": 45}, dtype="int64")
    expected = pd.DataFrame({
        "table": pd.Series(["customers", "events"], dtype="str"),
        "rows_read": pd.Series([100, 50], dtype="int64"),
        "rows_written": pd.Series([97, 45], dtype="int64"),
        "dropped": pd.Series([3, 5], dtype="int64"),
        "dropped_pct": [3.0, 10.0],
    })
    assert_frame_equal(report.rows_table(before, after), expected)


def test_row_counts_empty():
    assert report.row_counts({}).empty


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
    assert_frame_equal(report.cleaning_changes(LOG), expected, check_dtype=False)


def test_cleaning_note_and_title():
    before = pd.Series({"customers": 100, "events": 50, "feedback": 50})
    assert report.cleaning_title(LOG, before) == (
        "Cleaning dropped 4.0% of rows; most affected: feedback: out-of-range score set to missing"
    )
    note = report.cleaning_note(LOG, before)
    assert note.startswith("Cleaning **dropped 8 of 200 rows (4.0%)** and **changed 12 values**.")
    assert "- events: unknown code: rows dropped: 5 rows (dropped)" in note
    assert "- feedback: feedback of unknown customers kept: 1 row (kept)" in note


def test_cleaning_note_when_nothing_changed():
    quiet = LOG.assign(rows=0)
    assert report.cleaning_title(quiet, pd.Series({"customers": 10})) == "Cleaning found nothing to drop or change"
    assert report.cleaning_note(quiet, pd.Series({"customers": 10})).startswith("Cleaning found no")


def test_inputs_note():
    inputs = pd.DataFrame({"file": ["crm.csv", "orders.csv", "orders.csv"], "table": ["customers", "orders", "events"],
                           "rows": [120, 40, 40], "bytes": [1_500_000, 500_000, 500_000], "sha256": ["a", "b", "b"]})
    log = pd.DataFrame({"table": ["customers", "events", "customers"], "step": ["read", "melt", "values"],
                        "rule": ["rows read", "events from milestones", "values mapped"], "rows": [120, 0, 7],
                        "detail": ["", "", ""]})
    assert report.inputs_note(inputs, log) == (
        "**2 files** (2.0 MB) were read into **3 tables**; source rows per table: customers 120, orders 40, "
        "events 40. The mapping applied 3 rules, 2 of them to at least one row; the largest: values mapped "
        "(customers, 7 rows)."
    )
    assert report.inputs_note(inputs.iloc[:0], log).startswith("No input files")


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
    failed = report.gate_note(Gate("raw", "failed", ["passed", "failed"]))
    assert failed.startswith("The **raw** gate ran **2 checks** on 1 table: 1 passed, 0 warned, 1 failed. Status: **failed**.")
    assert "- failed: `feedback.nps` expect_column_values_to_be_between — 12 rows" in failed
    assert "nothing is written to the processed tables" in failed
    assert "The run continues" in report.gate_note(Gate("raw", "warned", ["warned"]))
    assert report.gate_note(Gate("processed", "passed", ["passed"])).endswith("Every check held for every row.")


def test_gate_table_orders_failed_first():
    gate = Gate("raw", "failed", ["passed", "warned", "failed"])
    styled = report.gate_table(gate.results.assign(column=["a", "b", "c"]))
    assert styled.data["outcome"].tolist() == ["failed", "warned", "passed"]
    html = styled.to_html()
    assert "#fde0e0" in html and "4.00%" in html


def test_tables_and_data_docs_notes(tmp_path):
    rows = pd.DataFrame({"table": ["customers"], "rows_read": [10], "rows_written": [9], "dropped": [1], "dropped_pct": [10.0]})
    assert report.tables_note(rows, "/p/data/processed").startswith(
        "Both gates passed, so **1 table with 9 rows** was written as Parquet to `/p/data/processed`")
    pages = [tmp_path / "data_docs" / "raw" / "index.html", None]
    assert report.data_docs_note(pages, tmp_path).startswith(
        "Great Expectations Data Docs with every expectation and its result: [raw gate](data_docs/raw/index.html).")
    assert report.data_docs_note([None], tmp_path) == "No Data Docs were written for this run."
