"""cxlib.pipeline and `cx run`: parameter merging, path resolution, run folders; end to end on
the demo project; and every kind of bad input stopping the run with a clear message and
nothing under data/processed or reports/latest changed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cxlib import pipeline

DECLARED = {
    "01_validate_clean": ["source", "taxonomy", "raw_dir", "processed_dir", "run_dir", "tolerance"],
    "02_feedback": ["processed_dir", "run_dir", "min_n", "segments"],
}
INJECTED = {"raw_dir": "/p/data/raw", "processed_dir": "/p/data/processed", "run_dir": "/p/reports/R"}


# --- parse_overrides ---------------------------------------------------------------------------
def test_parse_overrides_empty():
    assert pipeline.parse_overrides([]) == ({}, {})


def test_parse_overrides_yaml_scalars_and_notebook_keys():
    common, per_nb = pipeline.parse_overrides(
        ["min_n=50", "tolerance=0.05", "flag=true", "name=Nord", "blank=", "when=2026-01-31",
         "02_feedback.min_n=30", "expr=a=b"]
    )
    assert common == {"min_n": 50, "tolerance": 0.05, "flag": True, "name": "Nord", "blank": "",
                      "when": pd.Timestamp("2026-01-31").date(), "expr": "a=b"}
    assert per_nb == {"02_feedback": {"min_n": 30}}


@pytest.mark.parametrize("item", ["min_n", "=5", "x=[1, 2]", "x={a: 1}", "x=[unclosed"])
def test_parse_overrides_rejects(item):
    with pytest.raises(pipeline.UsageError, match="-p"):
        pipeline.parse_overrides([item])


# --- merge_parameters ----------------------------------------------------------------------------
def test_merge_only_injected():
    merged = pipeline.merge_parameters(["01_validate_clean"], DECLARED, injected=INJECTED)
    assert merged == {"01_validate_clean": INJECTED}


def test_merge_precedence_exact():
    merged = pipeline.merge_parameters(
        ["01_validate_clean", "02_feedback"],
        DECLARED,
        pipeline={"source": "config/sources/demo.yml", "min_n": 100, "tolerance": 0.01},
        file={"min_n": 80, "tolerance": 0.02, "notebooks": {"02_feedback": {"min_n": 60, "segments": ["private"]}}},
        overrides=["tolerance=0.03", "02_feedback.segments=business", "raw_dir=/elsewhere"],
        injected=INJECTED,
    )
    assert merged == {
        "01_validate_clean": {"raw_dir": "/elsewhere", "processed_dir": "/p/data/processed", "run_dir": "/p/reports/R",
                              "source": "config/sources/demo.yml", "tolerance": 0.03},
        "02_feedback": {"processed_dir": "/p/data/processed", "run_dir": "/p/reports/R", "min_n": 60,
                        "segments": "business"},
    }


def test_merge_cli_global_beats_file_per_notebook():
    merged = pipeline.merge_parameters(
        ["02_feedback"], DECLARED, file={"notebooks": {"02_feedback": {"min_n": 60}}}, overrides=["min_n=10"],
    )
    assert merged == {"02_feedback": {"min_n": 10}}


def test_merge_unknown_cli_key_lists_valid_keys():
    with pytest.raises(pipeline.UsageError) as err:
        pipeline.merge_parameters(["01_validate_clean"], DECLARED, overrides=["min_nn=5"])
    assert "unknown parameter min_nn" in str(err.value)
    assert "processed_dir, raw_dir, run_dir, source, taxonomy, tolerance" in str(err.value)


def test_merge_cli_key_of_a_notebook_outside_the_run_is_an_error():
    with pytest.raises(pipeline.UsageError, match="unknown parameter min_n"):
        pipeline.merge_parameters(["01_validate_clean"], DECLARED, overrides=["min_n=5"])


def test_merge_file_key_of_another_pipeline_notebook_is_accepted_for_only_runs():
    merged = pipeline.merge_parameters(["01_validate_clean"], DECLARED, file={"min_n": 5, "tolerance": 0.1})
    assert merged == {"01_validate_clean": {"tolerance": 0.1}}


@pytest.mark.parametrize("kwargs, message", [
    ({"file": {"min_nn": 5}}, "parameter file: unknown parameter min_nn"),
    ({"pipeline": {"colour": "red"}}, "pipeline.yml parameters: unknown parameter colour"),
    ({"file": {"notebooks": {"09_nope": {"x": 1}}}}, "unknown notebook '09_nope'"),
    ({"file": {"notebooks": {"02_feedback": {"tolerance": 1}}}}, "for 02_feedback: unknown parameter tolerance"),
    ({"overrides": ["09_nope.x=1"]}, "unknown notebook '09_nope'"),
    ({"overrides": ["02_feedback.min_n=1"]}, "not part of this run"),
    ({"overrides": ["run_dir=/tmp/x"]}, "run_dir is set by the pipeline"),
    ({"file": {"notebooks": "x"}}, "'notebooks' must map"),
])
def test_merge_errors(kwargs, message):
    with pytest.raises(pipeline.UsageError, match=re.escape(message)):
        pipeline.merge_parameters(["01_validate_clean"], DECLARED, **kwargs)


# --- resolve_paths, effective_parameters -------------------------------------------------------
def test_resolve_paths(tmp_path):
    params = {"source": "config/sources/demo.yml", "taxonomy": "/abs/taxonomy.yml", "raw_dir": "data/raw",
              "other": "params/extra.yaml", "label": "data/raw", "min_n": 100, "empty": ""}
    assert pipeline.resolve_paths(params, tmp_path) == {
        "source": str(tmp_path / "config/sources/demo.yml"),
        "taxonomy": "/abs/taxonomy.yml",
        "raw_dir": str(tmp_path / "data/raw"),
        "other": str(tmp_path / "params/extra.yaml"),
        "label": "data/raw",
        "min_n": 100,
        "empty": "",
    }


def test_resolve_paths_empty(tmp_path):
    assert pipeline.resolve_paths({}, tmp_path) == {}


def test_effective_parameters():
    defaults = {"tolerance": "0.02", "source": '"../config/sources/demo.yml"', "when": "date.today()"}
    assert pipeline.effective_parameters(defaults, {"source": "/p/s.yml"}) == {
        "tolerance": 0.02, "source": "/p/s.yml", "when": "date.today()",
    }


# --- run folders, inputs, latest ------------------------------------------------------------------
def test_new_run_dir_is_unique(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 11, 22, 14, 30, 12, tzinfo=dt.UTC)
    first = pipeline.new_run_dir(tmp_path, now)
    second = pipeline.new_run_dir(tmp_path, now)
    assert [first.name, second.name] == ["20261122T143012Z", "20261122T143012Z-2"]


def test_input_files_skip_truth_and_hidden(tmp_path):
    (tmp_path / "_truth").mkdir()
    (tmp_path / "_truth" / "effects.json").write_text("{}")
    (tmp_path / ".gitkeep").write_text("")
    (tmp_path / "b.csv").write_bytes(b"x;y\n1;2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.csv").write_bytes(b"")
    files = pipeline.input_files(tmp_path)
    assert files == [
        {"file": "b.csv", "bytes": 8, "sha256": hashlib.sha256(b"x;y\n1;2\n").hexdigest()},
        {"file": "sub/a.csv", "bytes": 0, "sha256": hashlib.sha256(b"").hexdigest()},
    ]
    assert pipeline.input_files(tmp_path / "missing") == []
    assert pipeline.fingerprint(files) == pipeline.fingerprint(files[::-1])
    assert pipeline.fingerprint(files) != pipeline.fingerprint(files[:1])


def test_point_latest_swaps_relative_symlink(tmp_path):
    one, two = pipeline.new_run_dir(tmp_path), tmp_path / "later"
    two.mkdir()
    pipeline.point_latest(tmp_path, one)
    pipeline.point_latest(tmp_path, two)
    assert os.readlink(tmp_path / "latest") == "later"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([one.name, "later", "latest"])


def test_point_latest_refuses_real_folder(tmp_path):
    (tmp_path / "latest").mkdir()
    with pytest.raises(pipeline.UsageError, match="not a symlink"):
        pipeline.point_latest(tmp_path, tmp_path)


# --- load_pipeline / select_notebooks ---------------------------------------------------------
def write_pipeline(project: Path, text: str, notebooks=("01_a",)) -> Path:
    (project / "config").mkdir(parents=True, exist_ok=True)
    (project / "config" / "pipeline.yml").write_text(text, encoding="utf-8")
    (project / "notebooks").mkdir(exist_ok=True)
    for name in notebooks:
        nbformat.write(nbformat.v4.new_notebook(), project / "notebooks" / f"{name}.ipynb")
    return project


def test_load_pipeline_and_select(tmp_path):
    write_pipeline(tmp_path, "notebooks:\n  - name: 01_a\n    title: A\n  - name: 02_b\n", ("01_a", "02_b"))
    _, notebooks = pipeline.load_pipeline(tmp_path)
    assert [(nb.name, nb.title) for nb in notebooks] == [("01_a", "A"), ("02_b", "02_b")]
    assert [nb.name for nb in pipeline.select_notebooks(notebooks, ["02_b"])] == ["02_b"]
    assert [nb.name for nb in pipeline.select_notebooks(notebooks, None)] == ["01_a", "02_b"]
    with pytest.raises(pipeline.UsageError, match="unknown notebook 03_c; the pipeline has: 01_a, 02_b"):
        pipeline.select_notebooks(notebooks, ["03_c"])


@pytest.mark.parametrize("text, message", [
    ("notebooks: []\n", "non-empty list"),
    ("notebooks:\n  - name: 09_missing\n", "does not exist"),
    ("notebooks:\n  - title: no name\n", "without a name"),
    ("notebooks:\n  - name: 01_a\n  - name: 01_a\n", "listed twice"),
    ("notebooks:\n  - name: 01_a\nparameters: [1]\n", "'parameters' must be a mapping"),
])
def test_load_pipeline_errors(tmp_path, text, message):
    write_pipeline(tmp_path, text)
    with pytest.raises(pipeline.UsageError, match=re.escape(message)):
        pipeline.load_pipeline(tmp_path)


# --- cx run: usage errors (nothing runs) ------------------------------------------------------
def test_cx_run_unknown_parameter_exits_2_before_running(demo_project, cx):
    before = sorted(p.name for p in (demo_project / "reports").iterdir())
    done = cx("run", "-p", "tolerence=0.1", "--project", str(demo_project))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unknown parameter tolerence" in done.stderr
    assert "tolerance" in done.stderr                      # the valid keys are listed
    assert "[1/" not in done.stdout                        # no notebook started
    assert sorted(p.name for p in (demo_project / "reports").iterdir()) == before


def test_cx_run_unknown_notebook_and_missing_file_exit_2(demo_project, cx):
    done = cx("run", "--only", "99_nothing", "--project", str(demo_project))
    assert done.returncode == 2 and "unknown notebook 99_nothing" in done.stderr
    done = cx("run", "-f", str(demo_project / "params" / "nope.yml"), "--project", str(demo_project))
    assert done.returncode == 2 and "nope.yml: file not found" in done.stderr


def test_cx_help_documents_exit_codes(cx):
    done = cx("run", "--help")
    assert done.returncode == 0
    assert "Exit codes: 0 ok, 1 run failed" in " ".join(done.stdout.split())
