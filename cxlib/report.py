"""Run records: record a notebook's headline numbers, read them back as one results dict, write
JSON and text files atomically, the parameters table every notebook shows, the contact lists, and
where a failed run stopped.

Notebooks call `record_results(run_dir, section, dict)`, show `parameters_table(params)` and write
call-back lists with `write_contact_list`; the pipeline reads `read_results` and writes run.json
with `write_json`. The HTML lives elsewhere: `cxlib.export` (stage reports), `cxlib.index_page`
(index.html), `cxlib.compare` (what changed since the last run).

    report.record_results(run_dir, "feedback", {"nps": {"value": 12.3, "n": 4210}})
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from cxlib import locale

RESULTS_DIR = "results"
SKIPPED_DIR = "skipped"    # results/skipped/<stage.section>.json: sections a stage could not run (cxlib.sections)
FILE_MODE = 0o644          # reports are for readers: not the 0600 of a temp file


# --- JSON that never fails on numpy/pandas values ----------------------------------------
def to_jsonable(value):
    """A JSON-safe copy of `value`: numpy/pandas scalars -> Python, NaN/NaT/NA/inf -> None,
    Timestamps/dates -> ISO strings, DataFrames -> list of row dicts, Series -> dict, Paths -> str.

        to_jsonable({"n": np.int64(3), "x": float("nan")}) -> {"n": 3, "x": None}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(row) for row in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {str(k): to_jsonable(v) for k, v in value.to_dict().items()}
    if isinstance(value, Mapping):
        return {str(to_jsonable(k)) if not isinstance(k, str) else k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Index)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, dt.timedelta)):
        return pd.Timedelta(value).total_seconds()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, pd.Period):
        return str(value)
    try:  # any other scalar pandas knows as missing (e.g. numpy.timedelta64('NaT'))
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    return str(value)


def write_text(path: str | Path, text: str) -> Path:
    """Write text to `path` atomically (temp file in the same folder, then rename); readable by all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data) -> Path:
    """Write `data` (made JSON-safe) to `path` atomically: temp file in the same folder, then rename."""
    text = json.dumps(to_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_text(path, text)


def record_results(run_dir: str | Path, section: str, results: dict) -> Path:
    """Write a notebook's headline numbers to run_dir/results/<section>.json (atomically).

    `section` becomes the top-level key of results.json (e.g. "validation", "feedback");
    `results` is a dict (or a Series, read as a dict); values may be numpy/pandas scalars, Timestamps, NaN (-> null) or DataFrames (-> rows).
    Recording a section again replaces it. Returns the path written.
    """
    if not section or not str(section).replace("_", "").isalnum():
        raise ValueError(f"record_results: section must be a word like 'feedback', got {section!r}")
    if isinstance(results, pd.Series):
        results = results.to_dict()
    if not isinstance(results, Mapping):
        raise ValueError(f"record_results: results for '{section}' must be a dict, got {type(results).__name__}")
    return write_json(Path(run_dir) / RESULTS_DIR / f"{section}.json", results)


def read_results(run_dir: str | Path) -> dict:
    """All recorded sections of a run merged into one dict: {section: results}, sections sorted;
    the sections the stages skipped (results/skipped/*.json) as the list `skipped`, sorted by key."""
    folder = Path(run_dir) / RESULTS_DIR
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    merged = {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in files}
    skipped = sorted((folder / SKIPPED_DIR).glob("*.json")) if (folder / SKIPPED_DIR).is_dir() else []
    if skipped:
        merged["skipped"] = [json.loads(f.read_text(encoding="utf-8")) for f in skipped]
    return merged


def parameters_table(params: dict, lang: str = "en") -> pd.DataFrame:
    """The "parameters analysed" table every notebook shows: two columns, parameter and value, headed
    in `lang` ('parameter', 'value'; 'Parameter', 'Wert'); values as text, lists joined by ', ', in
    the order given.

        parameters_table({"min_answers": 100, "tolerance": 0.02}, "de")
    """
    def text(value) -> str:
        value = to_jsonable(value)
        if isinstance(value, list):
            return ", ".join(map(str, value))
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        return "" if value is None else str(value)

    return pd.DataFrame(
        {locale.text("report.parameter", lang): pd.Series(list(params), dtype="str"),
         locale.label("value", lang): pd.Series([text(v) for v in params.values()], dtype="str")}
    )


def failure_where(failure: Mapping, lang: str = "en") -> str:
    """Where a run stopped, for readers: 'section “2. Raw data gate”, cell 10 of 20' (the cell's
    position in the source notebook), without the parts the record lacks; 'before any cell ran'
    without a cell.

        failure_where({"cell": 10, "cells": 20, "section": "2. Raw data gate"}) -> 'section “2. Raw data gate”, cell 10 of 20'
    """
    def say(key: str, **values) -> str:
        return locale.text(f"report.{key}", lang, **values)

    if failure.get("cell") is None:
        return say("before_cell")
    where = (say("cell_of", cell=failure["cell"], cells=failure["cells"]) if failure.get("cells")
             else say("cell", cell=failure["cell"]))
    return f"{say('in_section', section=failure['section'])}, {where}" if failure.get("section") else where


# --- contact lists -----------------------------------------------------------------------------
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")    # a spreadsheet reads a cell starting so as a formula


def neutralise_csv_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` safe to open in a spreadsheet (OWASP CSV injection): every text cell
    that starts with = + - @, a tab or a carriage return gets a leading apostrophe; column names
    too. Numbers, dates and missing values are unchanged.

        neutralise_csv_cells(pd.DataFrame({"ref": ["=1+1", "K1"]}))["ref"].tolist() -> ["'=1+1", "K1"]
    """
    def cell(value):
        return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value

    out = frame.copy()
    for column in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[column]) or pd.api.types.is_datetime64_any_dtype(out[column])):
            out[column] = out[column].map(cell, na_action="ignore")
    return out.rename(columns=cell)


def write_contact_list(contacts: pd.DataFrame, run_dir: str | Path, *, name: str = "contact_list.csv") -> Path:
    """Write a list of customers to contact (the call-back list of `moments.contact_list_export`:
    CRM number, pseudonym, channel, topic; an occasion list; no names or contact details) as
    UTF-8 CSV to run_dir/<name>, atomically, its cells neutralised against formula injection
    (`neutralise_csv_cells`). Every contact or occasion list is written here. Reports show only
    its counts. Returns the path written."""
    return write_text(Path(run_dir) / name, neutralise_csv_cells(contacts).to_csv(index=False))
