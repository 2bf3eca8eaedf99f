"""cxlib.pipeline and `cx run`: parameter merging, path resolution, run folders, the run's
input files; end to end on the demo project. The bad-input catalogue is tests/test_bad_input.py."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from cxlib import folders, pipeline, pipeline_config, schedule

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
    assert "audience, lang, processed_dir, raw_dir, retention_days, run_dir, source, taxonomy, tolerance" in str(err.value)


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


def test_merge_rejects_a_user_set_previous_run_dir():
    declared = {**DECLARED, "06_summary": ["run_dir", "previous_run_dir"]}
    for kwargs in ({"file": {"previous_run_dir": "reports/x"}}, {"overrides": ["06_summary.previous_run_dir=x"]}):
        with pytest.raises(pipeline.UsageError, match="previous_run_dir is set by the pipeline"):
            pipeline.merge_parameters(["01_validate_clean", "06_summary"], declared, **kwargs)


def test_merge_run_keys_need_no_declaring_notebook():
    merged = pipeline.merge_parameters(
        ["01_validate_clean", "02_feedback"], {**DECLARED, "02_feedback": [*DECLARED["02_feedback"], "lang"]},
        pipeline={"lang": "en", "audience": "management"}, file={"retention_days": 30}, overrides=["lang=de"],
    )
    assert merged == {"01_validate_clean": {}, "02_feedback": {"lang": "de"}}


def test_merge_run_key_for_one_notebook_must_be_declared():
    with pytest.raises(pipeline.UsageError, match="for 01_validate_clean: unknown parameter lang"):
        pipeline.merge_parameters(["01_validate_clean"], DECLARED, overrides=["01_validate_clean.lang=de"])


# --- run_parameters, bind_run ---------------------------------------------------------------------
def test_run_parameters_defaults():
    assert pipeline.run_parameters() == {"lang": "en", "audience": "management", "retention_days": 0}


def test_run_parameters_layers():
    assert pipeline.run_parameters(
        pipeline={"lang": "de", "audience": "sales", "source": "x.yml"},
        file={"audience": "service", "retention_days": 90, "notebooks": {"06_summary": {"lang": "en"}}},
        overrides=["retention_days=30", "02_feedback.lang=en"],
    ) == {"lang": "de", "audience": "service", "retention_days": 30}
    assert pipeline.run_parameters(file={"retention_days": None})["retention_days"] == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"overrides": ["lang=fr"]}, "lang: must be one of en, de, got 'fr'"),
    ({"overrides": ["audience=board"]}, "audience: must be one of management, service, marketing, sales"),
    ({"overrides": ["audience=sales"], "audiences": ["management"]}, "audience: must be one of management "),
    ({"overrides": ["retention_days=-1"]}, "retention_days: must be a whole number of days >= 0"),
    ({"overrides": ["retention_days=1.5"]}, "retention_days: must be a whole number"),
    ({"overrides": ["retention_days=true"]}, "retention_days: must be a whole number"),
    ({"file": {"retention_days": "ninety"}}, "retention_days: must be a whole number"),
])
def test_run_parameters_errors(kwargs, message):
    with pytest.raises(pipeline.UsageError, match=re.escape(message)):
        pipeline.run_parameters(**kwargs)


def test_bind_run_sets_runner_values_only_where_declared():
    params = {"01_validate_clean": {"run_dir": ".", "tolerance": 0.02},
              "06_summary": {"run_dir": ".", "previous_run_dir": "", "lang": "de"},
              "02_feedback": {"min_n": 100}}
    assert pipeline_config.bind_run(params, "/r/20261122T060000Z", "/r/20261022T060000Z") == {
        "01_validate_clean": {"run_dir": "/r/20261122T060000Z", "tolerance": 0.02},
        "06_summary": {"run_dir": "/r/20261122T060000Z", "previous_run_dir": "/r/20261022T060000Z", "lang": "de"},
        "02_feedback": {"min_n": 100},
    }
    assert pipeline_config.bind_run(params, "/r/1", None)["06_summary"]["previous_run_dir"] == ""
    assert params["06_summary"]["previous_run_dir"] == ""            # input unchanged


def test_previous_run_follows_latest(tmp_path):
    assert schedule.previous_run(tmp_path) is None
    run = tmp_path / "20261122T060000Z"
    run.mkdir()
    schedule.point_latest(tmp_path, run)
    assert schedule.previous_run(tmp_path) is None                  # no run.json: not a finished run
    (run / "run.json").write_text("{}", encoding="utf-8")
    assert schedule.previous_run(tmp_path) == run.resolve()


# --- resolve_paths, effective_parameters -------------------------------------------------------
def test_resolve_paths(tmp_path):
    params = {"source": "config/sources/demo.yml", "taxonomy": "/abs/taxonomy.yml", "raw_dir": "data/raw",
              "other": "params/extra.yaml", "label": "data/raw", "min_n": 100, "empty": ""}
    assert pipeline_config.resolve_paths(params, tmp_path) == {
        "source": str(tmp_path / "config/sources/demo.yml"),
        "taxonomy": "/abs/taxonomy.yml",
        "raw_dir": str(tmp_path / "data/raw"),
        "other": str(tmp_path / "params/extra.yaml"),
        "label": "data/raw",
        "min_n": 100,
        "empty": "",
    }


def test_resolve_paths_empty(tmp_path):
    assert pipeline_config.resolve_paths({}, tmp_path) == {}


def test_effective_parameters():
    defaults = {"tolerance": "0.02", "source": '"../config/sources/demo.yml"', "when": "date.today()"}
    assert pipeline_config.effective_parameters(defaults, {"source": "/p/s.yml"}) == {
        "tolerance": 0.02, "source": "/p/s.yml", "when": "date.today()",
    }


# --- run folders, inputs, latest ------------------------------------------------------------------
def test_new_run_dir_is_unique(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 11, 22, 14, 30, 12, tzinfo=dt.UTC)
    first = schedule.new_run_dir(tmp_path, now)
    second = schedule.new_run_dir(tmp_path, now)
    assert [first.name, second.name] == ["20261122T143012Z", "20261122T143012Z-2"]


MAPPING = """\
tables:
  feedback:
    - file: survey/answers_*.csv
      columns: {response_id: id, timestamp: date, nps: score}
      join:
        file: crm.csv
        on: {id: id}
        columns: {customer_ref: customer}
"""


def test_input_files_are_the_files_the_mapping_names(tmp_path):
    raw = tmp_path / "raw"
    (raw / "survey").mkdir(parents=True)
    (raw / "_truth").mkdir()
    for name, data in {"survey/answers_1.csv": b"x;y\n1;2\n", "survey/answers_2.csv": b"", "crm.csv": b"id\n1\n",
                       "survey/notes.txt": b"other", "secret.key": b"k", "_truth/effects.json": b"{}"}.items():
        (raw / name).write_bytes(data)
    (tmp_path / "map.yml").write_text(MAPPING, encoding="utf-8")
    paths = folders.mapped_files(tmp_path / "map.yml", raw)
    assert paths == [raw / "crm.csv", raw / "survey/answers_1.csv", raw / "survey/answers_2.csv"]
    files = folders.input_files(paths, raw)
    assert files == [
        {"file": "crm.csv", "bytes": 5, "sha256": hashlib.sha256(b"id\n1\n").hexdigest()},
        {"file": "survey/answers_1.csv", "bytes": 8, "sha256": hashlib.sha256(b"x;y\n1;2\n").hexdigest()},
        {"file": "survey/answers_2.csv", "bytes": 0, "sha256": hashlib.sha256(b"").hexdigest()},
    ]
    assert folders.mapped_files(tmp_path / "map.yml", tmp_path / "missing") == []
    assert folders.mapped_files(tmp_path / "nope.yml", raw) == []          # stage 01 says why
    assert pipeline.fingerprint(files) == pipeline.fingerprint(files[::-1])
    assert pipeline.fingerprint(files) != pipeline.fingerprint(files[:1])


def test_point_latest_swaps_relative_symlink(tmp_path):
    one, two = schedule.new_run_dir(tmp_path), tmp_path / "later"
    two.mkdir()
    schedule.point_latest(tmp_path, one)
    schedule.point_latest(tmp_path, two)
    assert os.readlink(tmp_path / "latest") == "later"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([one.name, "later", "latest"])


def test_point_latest_refuses_real_folder(tmp_path):
    (tmp_path / "latest").mkdir()
    with pytest.raises(pipeline.UsageError, match="not a symlink"):
        schedule.point_latest(tmp_path, tmp_path)


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
    _, notebooks = pipeline_config.load_pipeline(tmp_path)
    assert [(nb.name, nb.title) for nb in notebooks] == [("01_a", "A"), ("02_b", "02_b")]
    assert [nb.name for nb in pipeline_config.select_notebooks(notebooks, ["02_b"])] == ["02_b"]
    assert [nb.name for nb in pipeline_config.select_notebooks(notebooks, None)] == ["01_a", "02_b"]
    with pytest.raises(pipeline.UsageError, match="unknown notebook 03_c; the pipeline has: 01_a, 02_b"):
        pipeline_config.select_notebooks(notebooks, ["03_c"])


def test_load_pipeline_titles_and_audiences(tmp_path):
    write_pipeline(tmp_path, "notebooks:\n  - name: 01_a\n    title: A\n    title_de: A auf Deutsch\n  - name: 02_b\n"
                             "audiences:\n  service: [02_b]\n", ("01_a", "02_b"))
    pipe, notebooks = pipeline_config.load_pipeline(tmp_path)
    assert [nb.title_in("de") for nb in notebooks] == ["A auf Deutsch", "02_b"]
    assert [nb.title_in("en") for nb in notebooks] == ["A", "02_b"]
    assert pipeline_config.audience_views(pipe, notebooks) == {"service": ["02_b"]}
    assert pipeline_config.audience_views({}, notebooks) == {name: ["01_a", "02_b"] for name in pipeline.AUDIENCES}


@pytest.mark.parametrize("text, message", [
    ("notebooks: []\n", "non-empty list"),
    ("notebooks:\n  - name: 09_missing\n", "does not exist"),
    ("notebooks:\n  - title: no name\n", "without a name"),
    ("notebooks:\n  - name: 01_a\n  - name: 01_a\n", "listed twice"),
    ("notebooks:\n  - name: 01_a\nparameters: [1]\n", "'parameters' must be a mapping"),
    ("notebooks:\n  - name: 01_a\naudiences: [1]\n", "'audiences' must be a mapping"),
    ("notebooks:\n  - name: 01_a\naudiences:\n  sales: 01_a\n", "'sales' must be a list of notebook names"),
    ("notebooks:\n  - name: 01_a\naudiences:\n  sales: [01_a, 09_x]\n", "'sales' names unknown notebook 09_x"),
])
def test_load_pipeline_errors(tmp_path, text, message):
    write_pipeline(tmp_path, text)
    with pytest.raises(pipeline.UsageError, match=re.escape(message)):
        pipeline_config.load_pipeline(tmp_path)


def test_example_parameter_file_fits_the_pipeline():
    root = Path(__file__).resolve().parents[1]
    _, notebooks = pipeline_config.load_pipeline(root)
    declared = pipeline_config.declared_parameters(notebooks)
    params = yaml.safe_load((root / "params" / "monthly.yml").read_text(encoding="utf-8"))
    merged = pipeline.merge_parameters([nb.name for nb in notebooks], declared, file=params)
    assert merged["01_validate_clean"]["tolerance"] == 0.02
    assert merged["01_validate_clean"]["source"] == "config/sources/demo.yml"
    assert pipeline.run_parameters(file=params)["retention_days"] == params["retention_days"] > 0


def test_pipeline_audiences_cover_the_four_views():
    root = Path(__file__).resolve().parents[1]
    pipe, notebooks = pipeline_config.load_pipeline(root)
    views = pipeline_config.audience_views(pipe, notebooks)
    assert set(views) == set(pipeline.AUDIENCES)
    assert all(view[0] == "06_summary" for view in views.values())
    plan = pipeline.plan_run(root, overrides=["audience=service", "lang=de"])
    assert plan.view == views["service"]
    assert plan.run_parameters == {"lang": "de", "audience": "service", "retention_days": 0}
    assert plan.parameters["06_summary"]["audience"] == "service" and plan.parameters["06_summary"]["lang"] == "de"
    assert plan.parameters["06_summary"]["previous_run_dir"] == ""


def test_plan_run_checks_without_writing(tmp_path):
    root = Path(__file__).resolve().parents[1]
    plan = pipeline.plan_run(root, only=["01_validate_clean"], overrides=["raw_dir=elsewhere/raw", "tolerance=0.05"])
    assert [nb.name for nb in plan.notebooks] == ["01_validate_clean"]
    assert plan.raw_dir == root / "elsewhere" / "raw"
    assert plan.parameters["01_validate_clean"]["tolerance"] == 0.05
    assert plan.parameters["01_validate_clean"]["processed_dir"] == str(root / "data" / "processed")
    with pytest.raises(pipeline.UsageError, match="unknown parameter tolerence"):
        pipeline.plan_run(root, only=["01_validate_clean"], overrides=["tolerence=0.05"])


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
    text = " ".join(done.stdout.split())
    assert "Exit codes: 0 ok; 1 run failed" in text and "2 usage or configuration error" in text
    assert "3 another cx run of this project is in progress" in text


# --- end to end on the demo project ------------------------------------------------------------
CODE_MARKERS = ("hl-ipython3", "jp-CodeMirrorEditor", "jp-InputPrompt\">In", "In&nbsp;[")
CRM_NUMBER = re.compile(r"\bK\d{7}\b")


def visible_html(path: Path) -> str:
    """HTML without <style>/<script> (the JupyterLab CSS mentions 'warn' and 'highlight')."""
    return re.sub(r"<(style|script)\b.*?</\1>", "", path.read_text(encoding="utf-8"), flags=re.S | re.I)


def snapshot(project: Path) -> dict:
    """What must not change when a run fails: every file under data/processed (sha256, mtime)
    and where reports/latest points."""
    processed = project / "data" / "processed"
    files = {p.relative_to(processed).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
             for p in sorted(processed.rglob("*")) if p.is_file()}
    latest = project / "reports" / "latest"
    return {"processed": files, "latest": os.readlink(latest) if latest.is_symlink() else None}


def test_run_succeeds_and_points_latest(baseline, demo_project):
    done, run_dir = baseline
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_dir is not None and run_dir.parent == (demo_project / "reports").resolve()
    assert re.fullmatch(r"\d{8}T\d{6}Z(-\d+)?", run_dir.name)
    assert not Path(os.readlink(demo_project / "reports" / "latest")).is_absolute()
    assert re.search(r"\[1/\d+\] 01_validate_clean … ok \(\d+\.\d s\)", done.stdout)
    assert done.stdout.strip().endswith(str(demo_project / "reports" / "latest" / "index.html"))
    assert "Kernel is running over TCP" not in done.stdout + done.stderr   # kernel noise goes to run.log


def test_results_json(baseline):
    _, run_dir = baseline
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert results["validation"]["status"] in ("passed", "warned")
    assert results["validation"]["failed"] == []
    assert results["validation"]["checked"] > 0
    assert results["tables"]["customers"] > 0 and results["tables"]["events"] > 0


def test_run_json(baseline, demo_project):
    _, run_dir = baseline
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["run_id"] == run_dir.name and record["status"] == "succeeded"
    assert record["started"] <= record["ended"]
    assert record["project_dir"] == str(demo_project.resolve())
    assert record["params_file"] == "params/monthly.yml"
    files = {f["file"]: f for f in record["inputs"]["files"]}
    assert "crm_kunden.csv" in files and not any(name.startswith("_truth") for name in files)
    crm = files["crm_kunden.csv"]
    assert crm["sha256"] == hashlib.sha256((demo_project / "data/raw/crm_kunden.csv").read_bytes()).hexdigest()
    assert crm["bytes"] == (demo_project / "data/raw/crm_kunden.csv").stat().st_size and crm["rows"] > 0
    assert re.fullmatch(r"[0-9a-f]{64}", record["inputs"]["fingerprint"])
    assert record["inputs"]["tables"]["customers"] > 0 and record["inputs"]["source"] == "config/sources/demo.yml"
    assert record["processed"] == {"dir": str(demo_project.resolve() / "data/processed"), "updated": True}
    assert record["packages"]["pandas"] and record["packages"]["great-expectations"] and record["python"]
    nb = record["notebooks"][0]
    assert nb["name"] == "01_validate_clean" and nb["status"] == "succeeded" and nb["duration_s"] > 0
    assert (run_dir / nb["html"]).is_file() and (run_dir / nb["ipynb"]).is_file()
    assert all(n["status"] == "succeeded" for n in record["notebooks"])
    params = record["parameters"]["01_validate_clean"]
    assert params["run_dir"] == str(run_dir) and params["source"] == str(demo_project.resolve() / "config/sources/demo.yml")
    assert params["tolerance"] == 0.02
    assert record["validation"]["status"] in ("passed", "warned")
    assert (run_dir / "run.log").stat().st_size > 0
    assert record["run_parameters"] == {"lang": "en", "audience": "management", "retention_days": 90}
    assert record["view"]["audience"] == "management" and record["view"]["reports"][0] == "06_summary"
    previous = (record["previous_run"] or {}).get("dir", "")
    assert record["parameters"]["06_summary"]["previous_run_dir"] == previous      # the contract with 06
    assert record["comparison"]["previous_run"] == (record["previous_run"] or {}).get("run_id")
    assert record["retention"]["retention_days"] == 90
    assert "Kernel is running over TCP" not in (run_dir / "run.log").read_text(encoding="utf-8")   # IPC, no port
    line = (demo_project / "reports" / "cx.log").read_text(encoding="utf-8")
    assert f" {run_dir.name} succeeded exit=0 " in line


def test_processed_tables_are_pseudonymised(baseline, demo_project):
    processed = demo_project / "data" / "processed"
    for name in ("customers", "events", "feedback", "orders", "campaigns"):
        frame = pd.read_parquet(processed / f"{name}.parquet")
        assert len(frame) > 0, name
        ids = frame["customer_id"].dropna()
        assert ids.str.fullmatch(r"C[0-9a-f]{16}").all(), name
        for column in frame.columns:
            if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
                assert not frame[column].astype("str").str.contains(CRM_NUMBER).any(), (name, column)
    reid = pd.read_parquet(processed / "restricted" / "reidentification.parquet")
    assert set(reid.columns) >= {"customer_id", "customer_ref"}


def test_html_reports_have_no_code_tracebacks_or_warnings(baseline):
    _, run_dir = baseline
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    for nb in record["notebooks"]:
        path = run_dir / nb["html"]
        raw, body = path.read_text(encoding="utf-8"), visible_html(path)
        assert not any(marker in body for marker in CODE_MARKERS), nb["name"]
        assert body.count("jp-CodeCell") == body.count("jp-mod-noInput"), nb["name"]
        assert "Traceback" not in raw, nb["name"]
        assert not re.search(r"Warning\b|warnings\.warn|site-packages", body), nb["name"]
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", raw), nb["name"]
        assert "<script src" not in raw, nb["name"]
    first = (run_dir / "01_validate_clean.html").read_text(encoding="utf-8")
    assert re.search(r'<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/=]{100,}', first)


def test_index_html(baseline):
    _, run_dir = baseline
    html = (run_dir / "index.html").read_text(encoding="utf-8")
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert 'href="01_validate_clean.html"' in html
    assert record["inputs"]["fingerprint"][:16] in html
    assert "data_docs" not in html and "Data Docs" not in html
    assert "badge succeeded" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html) and "<script" not in html
