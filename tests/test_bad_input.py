"""The bad-input catalogue: what a hostile-but-realistic user tries, and what each attempt must
give. docs/reliability.md lists every case with the promise it tests.

Each end-to-end case runs `cx` on a copy of one small demo project (300 customers; stage 01 has
run once, so data/processed and reports/latest exist) and asserts the exit code, what the
message names, that nothing in data/processed, reports/latest or a folder outside the project
changed, and that no personal value of the CRM export (customer number, name, e-mail, phone)
appears in the message or in any file the run wrote. Usage errors (exit 2) are found before
anything runs, so they cost no kernel. Of the failures (exit 1) one case of each kind runs end to
end: files outside the mapping, a later stage, the mapping, cleaning; the other bad-data cases call
the mapping and the gate directly (tests/test_bad_input_data.py). Parameter checks, folder rules
and CSV neutralisation are also tested directly on small inputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from conftest import DEMO_SEED, copy_project, run_cx
from cxlib import folders, parameters, report

CUSTOMERS = 300
STAGE_01 = ("--only", "01_validate_clean")
SURVEY = "umfrage_antworten.csv"
CRM_NUMBER = re.compile(r"\bK\d{7}\b", re.I)


# --- one small project per module --------------------------------------------------------------
@pytest.fixture(scope="module")
def stage01_project(tmp_path_factory) -> Path:
    """A demo project (300 customers) after one successful `cx run --only 01_validate_clean`."""
    project = copy_project(tmp_path_factory.mktemp("bad_input") / "project")
    done = run_cx("demo", "--customers", str(CUSTOMERS), "--seed", str(DEMO_SEED), "--out",
                  str(project / "data" / "raw"), cwd=project)
    assert done.returncode == 0, done.stderr
    done = run_cx("run", *STAGE_01, "--project", str(project), cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return project


@pytest.fixture(scope="module")
def pii(stage01_project) -> dict[str, set[str]]:
    """Personal values of the CRM export: customer numbers, full names, e-mail addresses, phones."""
    crm = pd.read_csv(stage01_project / "data" / "raw" / "crm_kunden.csv", sep=";", encoding="latin-1", dtype=str)
    return {"crm_number": set(crm["Kundennummer"].dropna()),
            "name": set((crm["Vorname"] + " " + crm["Nachname"]).dropna()),
            "email": set(crm["E-Mail"].dropna()),
            "phone": set(crm["Telefon"].dropna())}


@pytest.fixture
def project(stage01_project, tmp_path) -> Path:
    """A fresh copy of the stage-01 project for one attack."""
    target = tmp_path / "project"
    shutil.copytree(stage01_project, target, symlinks=True)
    return target


def tree(folder: Path) -> dict[str, tuple]:
    """Every file under `folder`: {relative path: (sha256, mtime_ns)}."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


def state(project: Path, outside: Path) -> dict:
    """What a refused or failed run must leave as it was."""
    latest = project / "reports" / "latest"
    return {"processed": tree(project / "data" / "processed"), "outside": tree(outside),
            "latest": os.readlink(latest) if latest.is_symlink() else None}


def leaks(texts: dict[str, str], pii: dict[str, set[str]]) -> dict[str, list[str]]:
    """Personal values found in `texts` ({where: text}): {where: [kind]}."""
    found = {}
    for where, text in texts.items():
        kinds = [kind for kind, values in pii.items() if any(value in text for value in values)]
        if CRM_NUMBER.search(text):
            kinds.append("crm_number pattern")
        if kinds:
            found[where] = kinds
    return found


# --- the catalogue -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """An attack: `prepare(project, outside)` changes the copy and returns the `cx run` arguments;
    `record(run_dir)` checks the failed run's folder further."""

    prepare: Callable[[Path, Path], list[str]]
    exit_code: int
    message: list[str] = field(default_factory=list)       # regular expressions stderr must match
    record: Callable[[Path], None] | None = None


def args(*items: str) -> Callable[[Path, Path], list[str]]:
    return lambda project, outside: list(items)


def foreign_folder(project: Path, outside: Path) -> list[str]:
    (outside / "sub").mkdir(parents=True)
    (outside / "thesis.docx").write_bytes(b"years of work")
    (outside / "sub" / "notes.txt").write_text("x", encoding="utf-8")
    return [*STAGE_01, "-p", f"processed_dir={outside}"]


def rewrite_csv(path: Path, change, *, encoding="utf-8", delimiter=","):
    """Rewrite a CSV export through pandas (all text): `change(frame) -> frame`."""
    frame = pd.read_csv(path, sep=delimiter, dtype="str", keep_default_na=False, encoding=encoding)
    change(frame).to_csv(path, sep=delimiter, index=False, encoding=encoding)


def every_10th(frame: pd.DataFrame, column: str, value: str) -> pd.DataFrame:
    """Set `column` to `value` in every 10th row (10% of rows: above the 2% tolerance)."""
    return frame.assign(**{column: frame[column].where(frame.index % 10 != 3, value)})


def survey(change) -> Callable[[Path, Path], list[str]]:
    def prepare(project, outside):
        change(project / "data" / "raw" / SURVEY)
        return list(STAGE_01)
    return prepare


def later_stage_fails(project, outside):
    (project / "params" / "typo.yml").write_text("notebooks:\n  02_feedback:\n    filters: {no_such_column: x}\n",
                                                 encoding="utf-8")
    return [*STAGE_01, "--only", "02_feedback", "-f", "params/typo.yml"]


def no_file_of_etc_hashed(run_dir: Path) -> None:
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["inputs"]["files"] == [] and record["inputs"]["raw_dir"] == "/etc"
    assert record["inputs"]["fingerprint"] == folders.fingerprint([])
    assert "sha256" not in (run_dir / "index.html").read_text(encoding="utf-8").split('id="data"')[1].split("</section>")[0]


ROW = r"section “[^”]+”, cell \d+ of \d+"          # where a failing run stopped
CASES = {
    # folders: a run writes only where cx may (exit 2, nothing run)
    "processed_dir_foreign_folder": Case(foreign_folder, 2, [r"processed_dir .*/outside", r"\.cx-insights",
                                                             "sub, thesis.docx", "Nothing was run"]),
    "processed_dir_project_config": Case(args(*STAGE_01, "-p", "processed_dir=config"), 2,
                                         [r"processed_dir .*/config", "pipeline.yml"]),
    "processed_dir_raw_folder": Case(args(*STAGE_01, "-p", "processed_dir=data/raw"), 2,
                                     [r"processed_dir .*/data/raw", "crm_kunden.csv"]),
    # parameters: type and range from the notebooks' parameters cells (exit 2, nothing run); the
    # rules themselves: test_check_parameters_refuses
    "create_key_quoted_false": Case(args(*STAGE_01, "-p", '01_validate_clean.create_key="false"'), 2,
                                    ["01_validate_clean parameter create_key: must be true or false", "got 'false'"]),
    "tolerance_not_a_number": Case(args(*STAGE_01, "-p", "tolerance=two%"), 2,
                                   ["01_validate_clean parameter tolerance", "got 'two%'"]),
    "min_exposed_zero_for_one_notebook": Case(args("-p", "04_moments_of_truth.min_exposed=0"), 2,
                                              ["04_moments_of_truth parameter min_exposed: must be a whole number >= 1, got 0"]),
    "trend_period_week": Case(args("-p", "trend_period=week"), 2,
                              ["02_feedback parameter trend_period: must be one of month, quarter, got 'week'"]),
    "lang_fr_for_the_run": Case(args("-p", "lang=fr"), 2, ["lang: must be one of en, de, got 'fr'"]),
    "audience_unknown_for_summary": Case(args("-p", "06_summary.audience=board"), 2,
                                         ["06_summary parameter audience: must be one of management, service"]),
    "as_of_not_a_day": Case(args("-p", "as_of=yesterday"), 2, [r"parameter as_of: must be a day YYYY-MM-DD"]),
    "as_of_impossible_date": Case(args("-p", "as_of=2025-02-30"), 2, ["-p 'as_of=2025-02-30'", "day is out of range"]),
    "retention_negative": Case(args("-p", "retention_days=-1"), 2, ["retention_days: must be a whole number of days >= 0"]),
    "unknown_parameter": Case(args(*STAGE_01, "-p", "tolerence=0.1"), 2, ["unknown parameter tolerence", "tolerance"]),
    # only the files the mapping names are read or hashed (exit 1: the mapping's files are not there)
    "raw_dir_etc": Case(args(*STAGE_01, "-p", "raw_dir=/etc"), 1, ["crm_kunden.csv", "/etc", ROW], no_file_of_etc_hashed),
    # a later stage fails: the tables stage 01 staged never reach data/processed (exit 1)
    "later_stage_fails": Case(later_stage_fails, 1, ["FAILED 02_feedback, " + ROW, "no_such_column"]),
    # bad data stops stage 01 with file, column and rows (exit 1): one case stopped by the mapping, one
    # by cleaning; the other data cases (missing, empty or mis-encoded file, missing column, scores
    # out of range, unknown codes) run the mapping and the gate directly in tests/test_bad_input_data.py
    "unparseable_dates": Case(survey(lambda p: rewrite_csv(p, lambda f: every_10th(f, "Eingang", "kein Datum"))), 1,
                              [SURVEY, "Eingang", r"(?i)rows? \d+", "kein Datum"]),
    "duplicate_keys": Case(survey(lambda p: rewrite_csv(p, lambda f: f.assign(**{"Antwort-ID": f["Antwort-ID"].where(
        f.index % 10 != 3, f["Antwort-ID"].shift(1))}))), 1, [SURVEY, "response_id", r"(?i)unique|duplicate"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, project, tmp_path, pii):
    case = CASES[name]
    outside = tmp_path / "outside"
    cx_args = case.prepare(project, outside)
    before = state(project, outside)
    runs_before = set((project / "reports").iterdir())
    log_before = (project / "reports" / "cx.log").read_text(encoding="utf-8")

    done = run_cx("run", *cx_args, "--project", str(project), cwd=project)

    assert done.returncode == case.exit_code, done.stdout + done.stderr
    message = done.stderr.strip().splitlines()
    for pattern in case.message:
        assert any(re.search(pattern, line) for line in message), f"{pattern!r} not in:\n{done.stderr}"
    assert state(project, outside) == before, "data/processed, reports/latest or the outside folder changed"
    new = sorted(set((project / "reports").iterdir()) - runs_before)
    if case.exit_code == 2:                                      # refused before anything ran
        assert new == [] and "[1/" not in done.stdout
        assert (project / "reports" / "cx.log").read_text(encoding="utf-8") == log_before
    else:
        assert len(new) == 1, new
        record = json.loads((new[0] / "run.json").read_text(encoding="utf-8"))
        assert record["status"] == "failed" and record["processed"]["updated"] is False
        assert re.fullmatch(r"\d+", str(record["failure"]["cell"])) and record["failure"]["section"]
        if case.record:
            case.record(new[0])
    assert not list((project / "data").glob(".processed*")), "a staging folder was left behind"
    written = {p.relative_to(project).as_posix(): p.read_text(encoding="utf-8", errors="replace")
               for folder in new for p in folder.rglob("*") if p.is_file()}
    written["reports/cx.log"] = (project / "reports" / "cx.log").read_text(encoding="utf-8")
    assert leaks({"stdout": done.stdout, "stderr": done.stderr, **written}, pii) == {}


def test_new_processed_folder_outside_the_project_is_created_and_marked(project, tmp_path):
    target = tmp_path / "elsewhere" / "processed"
    before = tree(project / "data" / "processed")
    done = run_cx("run", *STAGE_01, "-p", f"processed_dir={target}", "--project", str(project), cwd=project)
    assert done.returncode == 0, done.stderr
    assert folders.is_marked(target) and (target / "customers.parquet").is_file()
    assert tree(project / "data" / "processed") == before               # the project's tables untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["processed"]     # no staging left
    again = run_cx("run", *STAGE_01, "-p", f"processed_dir={target}", "--project", str(project), cwd=project)
    assert again.returncode == 0, again.stderr                           # cx's own folder: accepted again


def test_another_source_mapping_is_a_different_dataset(project):
    shutil.copy(project / "config/sources/demo.yml", project / "config/sources/other.yml")
    done = run_cx("run", *STAGE_01, "-p", "source=config/sources/other.yml", "--project", str(project), cwd=project)
    assert done.returncode == 0, done.stderr
    run_dir = (project / "reports" / "latest").resolve()
    comparison = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["comparison"]
    assert comparison["different_dataset"] == {"previous": "config/sources/demo.yml",
                                               "current": "config/sources/other.yml"}
    assert comparison["numbers"] == [] and comparison["numbers_compared"] == 0
    assert "a different dataset, so no numbers are compared" in (run_dir / "index.html").read_text(encoding="utf-8")


# --- parameter checks, directly -----------------------------------------------------------------
TYPES = {"01_validate_clean": {"create_key": "bool", "tolerance": "float", "source": "str"},
         "02_feedback": {"min_answers": "int", "lang": "str", "group_by": "list", "filters": "dict", "start": "str"},
         "06_summary": {"audience": "str", "confidence": "float", "untyped": None}}


@pytest.mark.parametrize("notebook, key, value, message", [
    ("01_validate_clean", "create_key", "nein", "01_validate_clean parameter create_key: must be true or false (a YAML boolean, unquoted), got 'nein'"),
    ("01_validate_clean", "create_key", "false", "create_key: must be true or false (a YAML boolean, unquoted), got 'false'"),
    ("01_validate_clean", "create_key", 0, "create_key: must be true or false"),
    ("01_validate_clean", "tolerance", 1, "tolerance: must be a share of rows in [0, 1), e.g. 0.02, got 1"),
    ("01_validate_clean", "tolerance", -0.01, "tolerance: must be a share of rows in [0, 1)"),
    ("01_validate_clean", "tolerance", True, "tolerance: must be a share of rows in [0, 1)"),
    ("01_validate_clean", "tolerance", float("nan"), "tolerance: must be a share"),
    ("01_validate_clean", "source", 5, "01_validate_clean parameter source: must be text, got 5"),
    ("02_feedback", "min_answers", "abc", "02_feedback parameter min_answers: must be a whole number >= 1, got 'abc'"),
    ("02_feedback", "min_answers", 0, "min_answers: must be a whole number >= 1, got 0"),
    ("02_feedback", "min_answers", 2.5, "min_answers: must be a whole number >= 1, got 2.5"),
    ("02_feedback", "lang", "fr", "02_feedback parameter lang: must be one of en, de, got 'fr'"),
    ("02_feedback", "group_by", "segment", "group_by: must be a list, e.g. [a, b], got 'segment'"),
    ("02_feedback", "filters", ["x"], "filters: must be a mapping, e.g. {key: value}, got ['x']"),
    ("02_feedback", "start", "31.01.2026", 'start: must be a day YYYY-MM-DD or "" (empty: from the data), got \'31.01.2026\''),
    ("06_summary", "audience", "board", "06_summary parameter audience: must be one of management, sales"),
    ("06_summary", "confidence", 1.0, "confidence: must be a level between 0 and 1 (exclusive)"),
])
def test_check_parameters_refuses(notebook, key, value, message):
    with pytest.raises(parameters.UsageError, match=re.escape(message)):
        parameters.check_parameters({notebook: {key: value}}, TYPES, audiences=["management", "sales"])


def test_check_parameters_accepts_and_normalises():
    given = {"01_validate_clean": {"create_key": False, "tolerance": 0, "source": "/p/s.yml"},
             "02_feedback": {"min_answers": 1, "lang": "de", "group_by": [], "filters": {}, "start": dt.date(2026, 1, 31)},
             "06_summary": {"audience": "sales", "confidence": 0.9, "untyped": "anything"}}
    checked = parameters.check_parameters(given, TYPES, audiences=["management", "sales"])
    assert checked["02_feedback"]["start"] == "2026-01-31"               # an unquoted date is text for a str
    assert checked == {**given, "02_feedback": {**given["02_feedback"], "start": "2026-01-31"}}
    assert given["02_feedback"]["start"] == dt.date(2026, 1, 31)          # input unchanged


def test_rules_are_one_table_by_name_and_family():
    assert parameters.rule_for("tolerance") is parameters.RULES["tolerance"]
    assert parameters.rule_for("handling_min_n").text == parameters.rule_for("min_repeat_buyers").text == "a whole number >= 1"
    assert parameters.rule_for("window_days").text == "a number of days >= 0"
    assert parameters.rule_for("retention_days").text.startswith("a whole number of days >= 0")
    assert parameters.rule_for("factor") is None


def test_parameter_specs_read_the_annotations_of_the_parameters_cells():
    root = Path(__file__).resolve().parents[1]
    specs = parameters.parameter_specs({"01_validate_clean": root / "notebooks" / "01_validate_clean.ipynb"})
    found = specs["01_validate_clean"]
    assert found["create_key"]["type"] == "bool" and found["tolerance"]["type"] == "float"
    assert found["source"]["type"] == "str" and found["tolerance"]["default"] == "0.02"


# --- folders, directly ---------------------------------------------------------------------------
def test_check_processed_dir(tmp_path):
    default = tmp_path / "data" / "processed"
    default.mkdir(parents=True)
    (default / "customers.parquet").write_bytes(b"x")
    (default / ".gitkeep").write_bytes(b"")
    (default / "restricted").mkdir()
    (default / "restricted" / "reidentification.parquet").write_bytes(b"x")
    assert folders.check_processed_dir(default, default=default) == default      # the project's own folder
    assert folders.check_processed_dir(tmp_path / "new", default=default) == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert folders.check_processed_dir(tmp_path / "empty", default=default) == tmp_path / "empty"
    other = tmp_path / "other"                                                    # Parquet files, but not cx's
    other.mkdir()
    (other / "orders.parquet").write_bytes(b"x")
    with pytest.raises(parameters.UsageError, match="cx did not create this folder"):
        folders.check_processed_dir(other, default=default)
    folders.mark(other, "processed")
    assert folders.check_processed_dir(other, default=default) == other
    (default / "README.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(parameters.UsageError, match="holds README.txt"):
        folders.check_processed_dir(default, default=default)
    with pytest.raises(parameters.UsageError, match="is a file"):
        folders.check_processed_dir(default / "README.txt", default=default)


def test_stage_and_promote_keep_what_cx_did_not_write(tmp_path):
    target = tmp_path / "processed"
    folders.mark(target, "processed")
    (target / "old_table.parquet").write_bytes(b"old")
    (target / "notes.txt").write_text("the analyst's", encoding="utf-8")
    staging = folders.stage(target)
    before = folders.snapshot(staging)
    assert staging == tmp_path / ".processed.staging"
    assert (staging / "notes.txt").stat().st_ino == (target / "notes.txt").stat().st_ino     # linked, not copied
    assert folders.promote(staging, target, before) is False and not staging.exists()        # nothing written

    staging = folders.stage(target)
    before = folders.snapshot(staging)
    shutil.rmtree(staging)                                # what catalog.write does: a new folder
    staging.mkdir()
    (staging / "customers.parquet").write_bytes(b"new")
    assert folders.promote(staging, target, before) is True
    assert sorted(p.name for p in target.iterdir()) == [folders.MARKER, "customers.parquet", "notes.txt"]
    assert (target / "notes.txt").read_text(encoding="utf-8") == "the analyst's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]


def test_stage_refuses_a_staging_folder_cx_did_not_make(tmp_path):
    (tmp_path / ".processed.staging").mkdir()
    with pytest.raises(parameters.UsageError, match="cx did not create it"):
        folders.stage(tmp_path / "processed")


# --- contact lists: no formula injection --------------------------------------------------------
def test_neutralise_csv_cells_per_owasp():
    frame = pd.DataFrame({"customer_ref": ["=HYPERLINK(\"http://x\")", "+49 170", "-1+2", "@SUM(A1)", "\tK1", "\rK2",
                                           "K0000001", None],
                          "latest_nps": [-3, 0, 1, 2, 3, 4, 5, 6]})
    out = report.neutralise_csv_cells(frame)
    assert out["customer_ref"].tolist()[:7] == ["'=HYPERLINK(\"http://x\")", "'+49 170", "'-1+2", "'@SUM(A1)", "'\tK1",
                                                "'\rK2", "K0000001"]
    assert pd.isna(out["customer_ref"].iloc[7]) and out["latest_nps"].tolist() == frame["latest_nps"].tolist()
    assert report.neutralise_csv_cells(pd.DataFrame({"=cmd": ["x"]})).columns.tolist() == ["'=cmd"]
    assert frame["customer_ref"].iloc[0].startswith("=")                   # input unchanged


def test_write_contact_list_neutralises_every_cell(tmp_path):
    contacts = pd.DataFrame({"customer_ref": ["=1+1", "K0000002"], "channel": ["phone", "@mail"], "value": [-5.0, 10.0]})
    path = report.write_contact_list(contacts, tmp_path, name="occasion_list.csv")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "customer_ref,channel,value", "'=1+1,phone,-5.0", "K0000002,'@mail,10.0"]


def test_every_notebook_default_passes_its_own_checks():
    """The rule table fits every parameter the notebooks declare: each literal default has its
    annotated type and lies in its range (a new parameter that a rule would refuse fails here)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    paths = {p.stem: p for p in sorted((root / "notebooks").glob("0*.ipynb"))}
    specs = parameters.parameter_specs(paths)
    checked = 0
    for name, found in specs.items():
        for key, spec in found.items():
            try:
                default = ast.literal_eval(spec["default"])
            except (ValueError, SyntaxError):
                continue
            parameters.check_value(key, default, spec["type"], where=f"{name} default ")
            checked += 1
    assert checked > 50 and set(specs) >= {"01_validate_clean", "06_summary"}


def test_family_rules_apply_to_numbers_only():
    assert parameters.check_value("name_days", "../config/name_days_de.csv", "str") == "../config/name_days_de.csv"
    with pytest.raises(parameters.UsageError, match="window_days: must be a number of days >= 0, got -1"):
        parameters.check_value("window_days", -1, None)                 # not annotated: a number is checked
