"""Run records and HTML: record a notebook's headline numbers, export notebooks to HTML
without code, write index.html, run.json and results.json, compare a run with the previous one.

Notebooks call `record_results(run_dir, section, dict)` and show `parameters_table(params)`;
the pipeline calls the rest. One house style for every HTML file (`house_css`), numbers for
readers in English or German (`format_number(value, lang)`, `format_percent`), and
`compare_runs` for "what changed since the last run". `cx run` loads this module as an IPython
extension in each kernel so that figures carry their title and caption as alt text.

    report.record_results(run_dir, "feedback", {"nps": {"value": 12.3, "n": 4210}})
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

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


def write_json(path: str | Path, data) -> Path:
    """Write `data` (made JSON-safe) to `path` atomically: temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
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


def parameters_table(params: dict) -> pd.DataFrame:
    """The "parameters analysed" table every notebook shows: columns `parameter`, `value`
    (value as text; lists joined by ', '), in the order given.

        parameters_table({"min_n": 100, "tolerance": 0.02})
    """
    def text(value) -> str:
        value = to_jsonable(value)
        if isinstance(value, list):
            return ", ".join(map(str, value))
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        return "" if value is None else str(value)

    return pd.DataFrame(
        {"parameter": pd.Series(list(params), dtype="str"),
         "value": pd.Series([text(v) for v in params.values()], dtype="str")}
    )


# --- numbers and words for readers -----------------------------------------------------------
LANGS = ("en", "de")
NBSP = "\u00a0"

LABELS = {
    "en": {
        "yes": "yes", "no": "no",
        "title": "CX insights — run {run_id}",
        "contents": "Contents",
        "back": "← Run overview",
        "glance": "At a glance",
        "run": "Run", "started": "started", "ended": "ended", "utc": "UTC", "project": "project",
        "view": "View for {audience} · language: English",
        "stages_ok": "{ok} of {total} stages succeeded",
        "previous_run": "previous run",
        "none": "none",
        "reports": "Reports for {audience}",
        "other_reports": "Other reports",
        "notebook": "notebook", "status": "status", "duration": "duration", "report": "report",
        "not_run": "not run",
        "failed_at": "FAILED {notebook}, {where}: {error}",
        "cell": "cell {cell}", "cell_of": "cell {cell} of {cells}", "in_section": "section “{section}”",
        "before_cell": "before any cell ran",
        "stopped": "This stage stopped here",
        "changes": "What changed since the last run",
        "no_previous": "There is no earlier successful run to compare with.",
        "compared_with": "Compared with the previous successful run {run} (the run reports/latest pointed at before this one).",
        "same_data": "Same input data as the previous run (same fingerprint).",
        "data_changed": "The input data changed: {changed} file(s) changed, {added} added, {removed} removed, {unchanged} unchanged.",
        "file": "file", "change": "change", "added": "added", "removed": "removed", "changed": "changed",
        "no_param_changes": "No parameter changed.",
        "param_changes": "Parameters changed",
        "scope": "scope", "parameter": "parameter", "previous": "previous", "current": "this run",
        "run_scope": "(whole run)",
        "notebooks_added": "Stages run now but not in the previous run: {names}.",
        "notebooks_removed": "Stages of the previous run not run now: {names}.",
        "numbers_changed": "Numbers changed",
        "numbers_summary": "{changed} of {compared} recorded numbers changed{extra}.",
        "numbers_extra": "; {added} new and {removed} no longer recorded",
        "no_number_changes": "No recorded number changed ({compared} compared).",
        "number": "number",
        "more_changes": "all {n} changed numbers",
        "more_in_json": "… and {n} more in run.json (comparison.numbers)",
        "validation": "Validation",
        "checked": "checks", "warnings": "warnings", "critical": "critical failures",
        "not_shown": "Not shown for this data",
        "not_shown_intro": "These parts of the stage reports need data this run did not have:",
        "needs": "needs",
        "other_dataset": "It read a different source mapping ({previous} then, {current} now): a different dataset, so no numbers are compared.",
        "data": "Data",
        "fingerprint": "Data fingerprint",
        "fingerprint_note": "(SHA-256 over the input files: the same fingerprint means the same data)",
        "rows_per_table": "Rows per processed table",
        "results": "Headline numbers",
        "parameters": "Parameters",
        "footer": "run.json and results.json in this folder hold these numbers for machines.",
        "interval": "95% interval {low} to {high}",
        "vs_previous": "{change} vs previous run",
        "more_rows": "… and {n} more rows in results.json",
        "bytes": "bytes", "rows": "rows", "sha256": "sha256",
        "figure": "Figure",
        "figure_in": "Figure in section “{section}”",
    },
    "de": {
        "yes": "ja", "no": "nein",
        "title": "CX Insights — Lauf {run_id}",
        "contents": "Inhalt",
        "back": "← Überblick über den Lauf",
        "glance": "Auf einen Blick",
        "run": "Lauf", "started": "Beginn", "ended": "Ende", "utc": "UTC", "project": "Projekt",
        "view": "Sicht für {audience} · Sprache: Deutsch",
        "stages_ok": "{ok} von {total} Stufen erfolgreich",
        "previous_run": "vorheriger Lauf",
        "none": "keiner",
        "reports": "Berichte für {audience}",
        "other_reports": "Weitere Berichte",
        "notebook": "Notebook", "status": "Status", "duration": "Dauer", "report": "Bericht",
        "not_run": "nicht gelaufen",
        "failed_at": "FEHLGESCHLAGEN {notebook}, {where}: {error}",
        "cell": "Zelle {cell}", "cell_of": "Zelle {cell} von {cells}", "in_section": "Abschnitt „{section}“",
        "before_cell": "bevor eine Zelle lief",
        "stopped": "Diese Stufe hat hier angehalten",
        "changes": "Was sich seit dem letzten Lauf geändert hat",
        "no_previous": "Es gibt keinen früheren erfolgreichen Lauf zum Vergleich.",
        "compared_with": "Verglichen mit dem vorherigen erfolgreichen Lauf {run} (auf den reports/latest vor diesem Lauf zeigte).",
        "same_data": "Dieselben Eingangsdaten wie im vorherigen Lauf (gleicher Fingerabdruck).",
        "data_changed": "Die Eingangsdaten haben sich geändert: {changed} Datei(en) geändert, {added} neu, {removed} entfernt, {unchanged} unverändert.",
        "file": "Datei", "change": "Änderung", "added": "neu", "removed": "entfernt", "changed": "geändert",
        "no_param_changes": "Kein Parameter wurde geändert.",
        "param_changes": "Geänderte Parameter",
        "scope": "Geltung", "parameter": "Parameter", "previous": "vorher", "current": "dieser Lauf",
        "run_scope": "(ganzer Lauf)",
        "notebooks_added": "Stufen, die jetzt, aber nicht im vorherigen Lauf liefen: {names}.",
        "notebooks_removed": "Stufen des vorherigen Laufs, die jetzt nicht liefen: {names}.",
        "numbers_changed": "Geänderte Zahlen",
        "numbers_summary": "{changed} von {compared} erfassten Zahlen haben sich geändert{extra}.",
        "numbers_extra": "; {added} neu und {removed} nicht mehr erfasst",
        "no_number_changes": "Keine erfasste Zahl hat sich geändert ({compared} verglichen).",
        "number": "Zahl",
        "more_changes": "alle {n} geänderten Zahlen",
        "more_in_json": "… und {n} weitere in run.json (comparison.numbers)",
        "validation": "Validierung",
        "checked": "Prüfungen", "warnings": "Warnungen", "critical": "kritische Fehler",
        "not_shown": "Für diese Daten nicht gezeigt",
        "not_shown_intro": "Diese Teile der Stufenberichte brauchen Daten, die dieser Lauf nicht hatte:",
        "needs": "benötigt",
        "other_dataset": "Er las eine andere Quellzuordnung (damals {previous}, jetzt {current}): ein anderer Datenbestand, daher werden keine Zahlen verglichen.",
        "data": "Daten",
        "fingerprint": "Fingerabdruck der Daten",
        "fingerprint_note": "(SHA-256 über die Eingangsdateien: gleicher Fingerabdruck, gleiche Daten)",
        "rows_per_table": "Zeilen je verarbeiteter Tabelle",
        "results": "Kennzahlen",
        "parameters": "Parameter",
        "footer": "run.json und results.json in diesem Ordner enthalten diese Zahlen für Maschinen.",
        "interval": "95-%-Intervall {low} bis {high}",
        "vs_previous": "{change} gegenüber dem vorherigen Lauf",
        "more_rows": "… und {n} weitere Zeilen in results.json",
        "bytes": "Bytes", "rows": "Zeilen", "sha256": "SHA-256",
        "figure": "Abbildung",
        "figure_in": "Abbildung im Abschnitt „{section}“",
    },
}
STATUS_WORDS = {
    "de": {"succeeded": "erfolgreich", "failed": "fehlgeschlagen", "skipped": "übersprungen", "pending": "ausstehend",
           "running": "läuft", "passed": "bestanden", "warned": "mit Warnungen", "not run": "nicht gelaufen",
           "unknown": "unbekannt"},
}
AUDIENCE_NAMES = {
    "en": {"management": "management", "service": "customer service", "marketing": "marketing", "sales": "sales"},
    "de": {"management": "die Geschäftsleitung", "service": "den Kundenservice", "marketing": "das Marketing",
           "sales": "den Vertrieb"},
}
SECTION_NAMES = {
    "de": {"feedback": "Kundenfeedback", "journey": "Customer Journey", "moments": "Momente der Wahrheit: Details",
           "moments_of_truth": "Momente der Wahrheit", "complaints": "Beschwerden", "value": "Kundenwert",
           "contact_list": "Rückrufliste", "summary": "Zusammenfassung", "tables": "Tabellen"},
}
# Headline tiles of the index: results.json path, label (en, de), how to show the value.
# unit: "points" (NPS), "percent" (value already in %), "share" (0-1, shown in %), "score" (two
# decimals: 5.00 to 5.07, not 5 to 5.07), "count".
HEADLINES = (
    ("feedback.nps", ("NPS", "NPS"), "points"),
    ("feedback.csat", ("CSAT (satisfied)", "CSAT (zufrieden)"), "percent"),
    ("feedback.ces", ("CES (ease, 1-7)", "CES (Aufwand, 1-7)"), "score"),
    ("journey.conversion_rate", ("Conversion rate", "Konversionsrate"), "share"),
    ("journey.repeat_customer_rate", ("Repeat-customer rate", "Wiederkaufrate"), "share"),
    ("journey.campaign_response_rate", ("Campaign response rate", "Kampagnen-Rücklaufquote"), "share"),
    ("contact_list.included", ("Call-back list (customers)", "Rückrufliste (Kunden)"), "count"),
)


def check_lang(lang: str) -> str:
    """`lang` if it is a report language ('en', 'de'), else ValueError."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def _separators(text: str, lang: str) -> str:
    """Python's en formatting ('12,345.6') in the separators of `lang` ('12.345,6' for de)."""
    return text.translate(str.maketrans(",.", ".,")) if lang == "de" else text


def format_number(value, lang: str = "en", *, decimals: int | None = None) -> str:
    """A number for readers in the report language: thousands grouped, 3 significant digits below
    1,000 unless `decimals` is given; None/NaN -> '–'; booleans -> yes/no (ja/nein).

        format_number(12345.6) -> '12,346'; format_number(12.345) -> '12.3'
        format_number(1234.5, "de", decimals=1) -> '1.234,5'
    """
    check_lang(lang)
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return LABELS[lang]["yes" if value else "no"]
    if isinstance(value, (int, np.integer)):
        return _separators(f"{int(value):,}", lang)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return "–"
        if decimals is not None:
            return _separators(f"{value:,.{decimals}f}", lang)
        if value == int(value) and abs(value) < 1e15:
            return _separators(f"{int(value):,}", lang)
        return _separators(f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}", lang)
    return str(value)


def format_percent(value, lang: str = "en", *, decimals: int = 1, share: bool = True) -> str:
    """A share (0-1; or a percentage with share=False) as percent: '12.3%' (en), '12,3 %' (de).

        format_percent(0.1234, "de") -> '12,3 %'
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    number = format_number(float(value) * (100 if share else 1), lang, decimals=decimals)
    return number + (f"{NBSP}%" if lang == "de" else "%")


def _signed(text: str, value) -> str:
    return f"+{text}" if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else text


def _word(status, lang: str) -> str:
    return STATUS_WORDS.get(lang, {}).get(status, status)


def audience_name(audience: str, lang: str = "en") -> str:
    """The reader-facing name of an audience view: audience_name('service', 'de') -> 'den Kundenservice'."""
    return AUDIENCE_NAMES[check_lang(lang)].get(audience, audience)


def failure_where(failure: Mapping, lang: str = "en") -> str:
    """Where a run stopped, for readers: 'section “2. Raw data gate”, cell 10 of 20' (the cell's
    position in the source notebook), without the parts the record lacks; 'before any cell ran'
    without a cell.

        failure_where({"cell": 10, "cells": 20, "section": "2. Raw data gate"}) -> 'section “2. Raw data gate”, cell 10 of 20'
    """
    labels = LABELS[check_lang(lang)]
    if failure.get("cell") is None:
        return labels["before_cell"]
    where = (labels["cell_of"].format(cell=failure["cell"], cells=failure["cells"]) if failure.get("cells")
             else labels["cell"].format(cell=failure["cell"]))
    return f"{labels['in_section'].format(section=failure['section'])}, {where}" if failure.get("section") else where


# --- comparison with the previous run ----------------------------------------------------------
IGNORED_PARAMETERS = frozenset({"run_dir", "previous_run_dir"})   # differ in every run by design
_COMPARED_SECTIONS_SKIP = frozenset({"inputs", "comparison"})    # inputs are compared file by file
_KEY_TEXT_MAX = 80


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _row_names(rows: list) -> list[str] | None:
    """Names for the rows of a results table: the fewest leading text fields (codes before labels)
    that tell every row apart, e.g. 'category=billing, month=2025-01'; None when none do."""
    if not rows or not all(isinstance(row, Mapping) for row in rows):
        return None
    fields = [key for key in rows[0]
              if all(isinstance(row.get(key), str) and len(row[key]) <= _KEY_TEXT_MAX for row in rows)]
    for size in range(1, len(fields) + 1):
        names = [", ".join(f"{key}={row[key]}" for key in fields[:size]) for row in rows]
        if len(set(names)) == len(names):
            return names
    return None


def numeric_leaves(data, path: str = "") -> dict[str, float]:
    """Every number in a results dict, by path: {'feedback.nps.value': 12.3, 'complaints[category=billing,
    month=2025-01].rate_per_1000': 4.1}. Rows of a list are named by their leading text fields (so a
    re-ranked table still matches row by row), by position where those do not tell rows apart."""
    leaves: dict[str, float] = {}
    if _is_number(data):
        leaves[path] = data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            leaves.update(numeric_leaves(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(data, list):
        names = _row_names(data) or [str(position) for position in range(len(data))]
        for name, value in zip(names, data, strict=True):
            leaves.update(numeric_leaves(value, f"{path}[{name}]"))
    return leaves


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _flat_parameters(record: Mapping | None) -> dict[tuple[str, str], object]:
    record = record or {}
    flat = {("", key): value for key, value in (record.get("run_parameters") or {}).items()}
    for notebook, params in (record.get("parameters") or {}).items():
        flat.update({(notebook, key): value for key, value in (params or {}).items() if key not in IGNORED_PARAMETERS})
    return flat


def compare_runs(previous_record: Mapping | None, previous_results: Mapping | None,
                 record: Mapping, results: Mapping) -> dict:
    """What changed since the previous run: input files (by sha256), parameters and every number
    recorded in results.json. Pure: takes the two run.json and results.json dicts. Runs of
    different source mappings (run.json `inputs.source`) hold different datasets: then only
    `different_dataset` {previous, current} is filled and nothing is compared.

    Returns {previous_run, different_dataset, fingerprint_changed, inputs: {added, removed, changed, unchanged},
    notebooks: {added, removed}, parameters: [{notebook, parameter, previous, current}] (notebook ''
    for run-wide keys; run_dir/previous_run_dir left out), numbers: [{path, previous, current,
    change}] (numbers in both runs that differ, shallow paths first), numbers_compared,
    numbers_added, numbers_removed}. Without a previous run: previous_run None, everything empty.

        compare_runs(None, None, record, results)["previous_run"] -> None
    """
    record = to_jsonable(record or {})
    results = to_jsonable(results or {})
    nothing = {"previous_run": None, "different_dataset": None, "fingerprint_changed": None,
               "inputs": {"added": [], "removed": [], "changed": [], "unchanged": 0},
               "notebooks": {"added": [], "removed": []}, "parameters": [], "numbers": [],
               "numbers_compared": 0, "numbers_added": 0, "numbers_removed": 0}
    if not previous_record:
        return nothing
    previous_record = to_jsonable(previous_record)
    sources = [(rec.get("inputs") or {}).get("source") for rec in (previous_record, record)]
    if all(sources) and sources[0] != sources[1]:
        return {**nothing, "previous_run": previous_record.get("run_id"),
                "different_dataset": {"previous": sources[0], "current": sources[1]}}
    previous_results = to_jsonable(previous_results or {})

    def files(rec):
        return {f["file"]: f for f in ((rec.get("inputs") or {}).get("files") or []) if isinstance(f, dict) and "file" in f}

    old_files, new_files = files(previous_record), files(record)
    changed = [
        {"file": name, "previous_sha256": old_files[name].get("sha256"), "sha256": new_files[name].get("sha256"),
         "previous_bytes": old_files[name].get("bytes"), "bytes": new_files[name].get("bytes")}
        for name in new_files if name in old_files and old_files[name].get("sha256") != new_files[name].get("sha256")
    ]
    old_fp = (previous_record.get("inputs") or {}).get("fingerprint")
    new_fp = (record.get("inputs") or {}).get("fingerprint")

    old_nbs = [nb.get("name") for nb in previous_record.get("notebooks") or []]
    new_nbs = [nb.get("name") for nb in record.get("notebooks") or []]
    old_params, new_params = _flat_parameters(previous_record), _flat_parameters(record)
    both_run = set(old_nbs) & set(new_nbs) | {""}
    parameters = [
        {"notebook": nb, "parameter": key, "previous": old_params.get((nb, key)), "current": new_params.get((nb, key))}
        for nb, key in dict.fromkeys([*new_params, *old_params])
        if nb in both_run and ((nb, key) not in old_params or (nb, key) not in new_params
                               or old_params[(nb, key)] != new_params[(nb, key)])
    ]

    def leaves(res):
        return numeric_leaves({k: v for k, v in res.items() if k not in _COMPARED_SECTIONS_SKIP})

    old_leaves, new_leaves = leaves(previous_results), leaves(results)
    common = [path for path in new_leaves if path in old_leaves]
    numbers = sorted(
        ({"path": path, "previous": old_leaves[path], "current": new_leaves[path],
          "change": new_leaves[path] - old_leaves[path]}
         for path in common if not _same(old_leaves[path], new_leaves[path])),
        key=lambda row: (row["path"].count("["), row["path"].count(".")),
    )
    return {
        "previous_run": previous_record.get("run_id"),
        "different_dataset": None,
        "fingerprint_changed": None if old_fp is None or new_fp is None else old_fp != new_fp,
        "inputs": {"added": [n for n in new_files if n not in old_files],
                   "removed": [n for n in old_files if n not in new_files],
                   "changed": changed,
                   "unchanged": sum(1 for n in new_files if n in old_files) - len(changed)},
        "notebooks": {"added": [n for n in new_nbs if n not in old_nbs],
                      "removed": [n for n in old_nbs if n not in new_nbs]},
        "parameters": parameters,
        "numbers": numbers,
        "numbers_compared": len(common),
        "numbers_added": sum(1 for p in new_leaves if p not in old_leaves),
        "numbers_removed": sum(1 for p in old_leaves if p not in new_leaves),
    }


# --- house style: one stylesheet for the index and every stage report ---------------------------
_CSS = """
:root { --ink:#1d2733; --muted:#5b6670; --line:#dde3e9; --bg:#f6f8fa; --blue:#1f4e79;
        --ok:#2e7d32; --warn:#ef6c00; --bad:#c62828; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0; background: #fff; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; color: var(--blue); }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
p.meta, .muted { color: var(--muted); font-size: .9rem; }
.badge { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; font-weight: bold;
         font-size: .85rem; color: #fff; background: var(--muted); vertical-align: middle; }
.badge.succeeded, .badge.passed { background: var(--ok); }
.badge.warned { background: var(--warn); }
.badge.failed { background: var(--bad); }
.box { border: 1px solid var(--line); border-left: 4px solid var(--bad); background: #fff5f5;
       padding: .75rem 1rem; margin: 1rem 0; white-space: pre-wrap; font-family: monospace; font-size: .9rem; }
.tiles { display: flex; flex-wrap: wrap; gap: .75rem; margin: .5rem 0 1rem; }
.tile { border: 1px solid var(--line); border-radius: .4rem; padding: .6rem .9rem; min-width: 11rem; background: var(--bg); }
.tile .label { color: var(--muted); font-size: .8rem; }
.tile .value { font-size: 1.35rem; font-weight: bold; color: var(--blue); }
.tile .detail { color: var(--muted); font-size: .8rem; }
.tile .delta { font-size: .8rem; font-weight: bold; color: var(--ink); }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .88rem; display: block; max-width: 100%;
        overflow-x: auto; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .7rem; text-align: left; vertical-align: top; }
th { background: var(--bg); }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-size: .85rem; word-break: break-all; }
a { color: var(--blue); }
footer { margin-top: 3rem; color: var(--muted); font-size: .8rem; }
details { margin: .3rem 0 .6rem; }
details > summary { cursor: pointer; font-weight: bold; color: var(--blue); margin-bottom: .3rem; }
details details { margin-left: 1rem; }
nav.toc { background: var(--bg); border: 1px solid var(--line); border-radius: .4rem; padding: .6rem 1.2rem;
          margin: 1rem 0 1.5rem; font-size: .9rem; }
nav.toc .toc-title { font-weight: bold; color: var(--muted); margin: 0 0 .3rem; }
nav.toc ol { margin: 0; padding-left: 1.2rem; columns: 2; column-gap: 2rem; }
nav.toc li { margin: .1rem 0; break-inside: avoid; }
ol.reports { padding-left: 1.4rem; }
ol.reports li { margin: .35rem 0; }
.back { font-size: .85rem; margin: 0 0 1rem; }
@media print { nav.toc, .back { display: none; } details { display: block; } }
"""

# Overrides for the JupyterLab look of the stage reports (nbconvert lab template): same fonts,
# colours, tables and width as the index.
_STAGE_CSS = """
body.jp-Notebook { --jp-content-font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif;
                   --jp-ui-font-family: var(--jp-content-font-family); padding: 0; }
.jp-Notebook main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
.jp-Notebook .jp-Cell { padding: 0; }
.jp-Notebook .jp-MarkdownOutput { padding-left: 0; }
.jp-Notebook .jp-RenderedHTMLCommon { font-family: var(--jp-content-font-family); color: var(--ink);
                                      font-size: .95rem; line-height: 1.5; padding-right: 0; }
.jp-Notebook .jp-RenderedHTMLCommon h1 { font-size: 1.6rem; color: var(--blue); margin: 0 0 .5rem; }
.jp-Notebook .jp-RenderedHTMLCommon h2 { font-size: 1.2rem; color: var(--ink); margin: 2rem 0 .6rem;
                                         padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
.jp-Notebook .jp-RenderedHTMLCommon h3 { font-size: 1.02rem; margin: 1.2rem 0 .4rem; }
.jp-Notebook .jp-RenderedHTMLCommon table { border-collapse: collapse; border: none; margin: .4rem 0 1rem;
                                            font-size: .85rem; table-layout: auto; }
.jp-Notebook .jp-RenderedHTMLCommon th, .jp-Notebook .jp-RenderedHTMLCommon td,
.jp-Notebook .jp-RenderedHTMLCommon tr { border: none; text-align: left; vertical-align: top; }
.jp-Notebook .jp-RenderedHTMLCommon th, .jp-Notebook .jp-RenderedHTMLCommon td {
    border-bottom: 1px solid var(--line); padding: .3rem .65rem; max-width: 28rem; }
.jp-Notebook .jp-RenderedHTMLCommon table thead tr th { background: var(--bg); border-bottom: 2px solid var(--line);
                                                        text-align: left; }
.jp-Notebook .jp-RenderedHTMLCommon table thead tr th.num { text-align: right; }
.jp-Notebook .jp-RenderedHTMLCommon tbody tr:nth-child(odd) { background: #fff; }
.jp-Notebook .jp-RenderedHTMLCommon tbody tr:nth-child(even) { background: #fbfcfd; }
.jp-Notebook .jp-RenderedHTMLCommon tbody tr:hover { background: #eef3f8; }
.jp-Notebook .jp-RenderedHTMLCommon td.num, .jp-Notebook .jp-RenderedHTMLCommon th.num {
    text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.jp-Notebook .jp-OutputArea-output { overflow-x: auto; }
.jp-Notebook .jp-RenderedImage img { max-width: 100%; height: auto; }
.jp-Notebook .jp-OutputArea-output pre { white-space: pre-wrap; }
.jp-Notebook nav.toc ul { list-style: none; padding-left: 0; columns: 2; column-gap: 2rem; margin: 0; }
.jp-Notebook nav.toc li { margin: .1rem 0; break-inside: avoid; }
.cx-stopped { border: 1px solid var(--line); border-left: 4px solid var(--bad); background: #fff5f5;
              padding: .75rem 1rem; margin: 1rem 0; font-family: monospace; font-size: .9rem; white-space: pre-wrap; }
"""


def house_css(*, stage: bool = False) -> str:
    """The stylesheet of every HTML file: index.html, and (stage=True) with overrides for the
    nbconvert lab template of the stage reports."""
    return _CSS + (_STAGE_CSS if stage else "")


# --- notebook -> HTML without code ---------------------------------------------------------
TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE = "cx_html"
NBCONVERT_NO_ALT = "No description has been provided for this image"
_QUIET = logging.getLogger("cxlib.report.nbconvert")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
_NUMBER = re.compile(r"(?P<sign>[+\-−]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?P<pct>\s?%)?")
_MISSING_TEXT = frozenset({"nan", "NaN", "<NA>", "NaT", "None"})


def figure_alt_text(fig) -> str:
    """Alt text of a matplotlib figure: its title (suptitle, else the axes titles) and its caption
    (the other figure texts, e.g. plots.finish's 'n = … · definition'), on one line."""
    def clean(text: str) -> str:
        return " ".join(str(text).split())

    title = clean(fig.get_suptitle()) if hasattr(fig, "get_suptitle") else ""
    if not title:
        title = "; ".join(t for ax in fig.axes for loc in ("left", "center", "right") if (t := clean(ax.get_title(loc))))
    caption = " ".join(t for t in (clean(text.get_text()) for text in fig.texts) if t and t != title)
    if not title and not caption:
        labels = [clean(label) for ax in fig.axes for label in (ax.get_ylabel(), ax.get_xlabel()) if clean(label)]
        return "Figure" + (f": {', '.join(labels)}" if labels else "")
    return ". ".join(part for part in (title, caption) if part)


def load_ipython_extension(ipython) -> None:
    """IPython extension (`%load_ext cxlib.report`; `cx run` loads it in every kernel): matplotlib
    figures carry their title and caption as alt text in the output metadata, which the HTML
    export writes into <img alt=…>."""
    def alt_metadata(fig):
        return {}, {"image/png": {"alt": figure_alt_text(fig)}}

    ipython.display_formatter.mimebundle_formatter.for_type_by_name("matplotlib.figure", "Figure", alt_metadata)


def _last_heading(source: str) -> str | None:
    """The text of the last Markdown heading in `source`, without '#', numbering or emphasis."""
    found = re.findall(r"^\s{0,3}#{1,4}\s+(.+?)\s*#*\s*$", source or "", flags=re.M)
    return re.sub(r"[*_`]", "", found[-1]).strip() if found else None


def section_above(cells, index: int) -> str | None:
    """The last Markdown heading in the cells before `cells[index]` (a notebook's cells), or None."""
    found = (_last_heading(cell.get("source", "")) for cell in reversed(list(cells)[:index])
             if cell.get("cell_type") == "markdown")
    return next((heading for heading in found if heading), None)


def _reader_copy(nb, lang: str = "en"):
    """A copy of notebook `nb` for readers: stderr streams dropped, an error output replaced by a
    notice 'This stage stopped here: Name: message' (no traceback; the message names file, column
    and rows), images without alt text given 'Figure in section “…”' (the last heading above)."""
    import copy
    import html

    import nbformat

    nb = copy.deepcopy(nb)
    labels = LABELS[check_lang(lang)]
    section = None
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            section = _last_heading(cell.get("source", "")) or section
            continue
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream" and out.get("name") == "stderr":
                continue
            if kind == "error" or "traceback" in out:
                text = f"{labels['stopped']}: {out.get('ename', 'Error')}: {out.get('evalue', '')}"
                out = nbformat.v4.new_output(
                    "display_data", metadata={},
                    data={"text/html": f'<div class="cx-stopped">{html.escape(text, quote=False)}</div>',
                          "text/plain": text})
            fallback = labels["figure_in"].format(section=section) if section else labels["figure"]
            for mime in (m for m in _IMAGE_TYPES if m in out.get("data", {})):
                meta = out.setdefault("metadata", {})
                per_mime = meta.setdefault(mime, {})
                per_mime["alt"] = per_mime.get("alt") or meta.get("alt") or fallback
            outputs.append(out)
        cell["outputs"] = outputs
    return nb


def format_table_cell(text: str, lang: str = "en", *, group: bool = True) -> tuple[str, bool]:
    """A table cell's text in the house format: (text, is_number). Numbers get thousands grouped
    (unless group=False, e.g. in a column of years) and the decimal mark of `lang`; missing values
    ('NaN', '<NA>') become '–'; True/False become yes/no (ja/nein); anything else is unchanged.

        format_table_cell("1234.5", "de") -> ('1.234,5', True); format_table_cell("12.3%", "de") -> ('12,3 %', True)
    """
    stripped = text.strip()
    if stripped in _MISSING_TEXT:
        return "–", False
    if stripped in ("True", "False"):
        return LABELS[check_lang(lang)]["yes" if stripped == "True" else "no"], False
    match = _NUMBER.fullmatch(stripped)
    if not match:
        return text, False
    digits = match["int"].replace(",", "")
    if len(digits) > 1 and digits.startswith("0"):        # a code like 007, not a number
        return text, False
    grouped = f"{int(digits):,}" if ("," in match["int"] or group) else digits
    sign = "-" if match["sign"] in ("-", "−") else match["sign"]
    frac = f".{match['frac']}" if match["frac"] is not None else ""
    number = _separators(grouped + frac, lang)
    if match["pct"]:
        number += f"{NBSP}%" if lang == "de" else "%"
    return sign + number, True


_YEAR_HEADER = re.compile(r"(?i)\b(year|jahr)")


def _in_year_column(cell) -> bool:
    """Whether a <td> sits in a column whose header names a year ('year', 'Jahr', 'signup_year')."""
    table, row = cell.find_parent("table"), cell.find_parent("tr")
    head = table.thead.find_all("tr")[-1] if table is not None and table.thead and table.thead.find_all("tr") else None
    if head is None or row is None:
        return False
    position = row.find_all(["th", "td"], recursive=False).index(cell)
    headers = head.find_all(["th", "td"], recursive=False)
    return position < len(headers) and bool(_YEAR_HEADER.search(headers[position].get_text(" ", strip=True).replace("_", " ")))


def _align_number_headers(table) -> None:
    """Mark the header of a column whose body cells are all numbers (or '–') as class 'num'."""
    head_rows = table.thead.find_all("tr") if table.thead else []
    body_rows = table.tbody.find_all("tr") if table.tbody else []
    if not head_rows or not body_rows:
        return
    headers = head_rows[-1].find_all(["th", "td"], recursive=False)
    rows = [row.find_all(["th", "td"], recursive=False) for row in body_rows]
    if any(cell.get("colspan") not in (None, "1") for cell in headers) or any(len(r) != len(headers) for r in rows):
        return
    for position, header in enumerate(headers):
        column = [row[position] for row in rows]
        numbers = ["num" in cell.get("class", []) for cell in column]
        if any(numbers) and all(n or cell.get_text(strip=True) in ("–", "") for n, cell in zip(numbers, column, strict=True)):
            header["class"] = [*header.get("class", []), "num"]


def _drop_integer_index(table) -> None:
    """Remove pandas' default row numbers (an unnamed index of integers) from a rendered table:
    every body row starts with one <th> holding an integer and every header row with an empty <th>."""
    head_rows = table.thead.find_all("tr") if table.thead else []
    body_rows = table.tbody.find_all("tr") if table.tbody else []
    if not head_rows or not body_rows:
        return
    firsts = [row.find(["th", "td"]) for row in body_rows]
    heads = [row.find(["th", "td"]) for row in head_rows]
    numbered = all(cell is not None and cell.name == "th" and not cell.get("rowspan")
                   and re.fullmatch(r"\d+", cell.get_text(strip=True)) for cell in firsts)
    unnamed = all(cell is not None and cell.name == "th" and not cell.get_text(strip=True)
                  and cell.get("colspan") in (None, "1") for cell in heads)
    if numbered and unnamed:
        for cell in (*firsts, *heads):
            cell.decompose()


def _slug(text: str, taken: set) -> str:
    base = re.sub(r"[^\w-]+", "-", text, flags=re.U).strip("-") or "section"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def _polish(html_text: str, lang: str, *, back_link: str | None, log: logging.Logger) -> str:
    """The house touches on an exported stage report: <html lang>, a link back to the index, a
    table of contents of the h2 sections, numbers in tables in the format of `lang`, alt text on
    every image, and no reference to anything outside the file."""
    from bs4 import BeautifulSoup

    labels = LABELS[lang]
    soup = BeautifulSoup(html_text, features="html.parser")
    if soup.html is not None:
        soup.html["lang"] = lang
    # nothing may load from outside the file (the template loads nothing; this is the safety net)
    for tag in soup.find_all(["script", "link", "iframe", "img", "source", "embed", "object"]):
        ref = tag.get("src") or tag.get("href") or tag.get("data")
        if ref and re.match(r"(?i)(https?:)?//", ref):
            log.warning("removed external reference %s from the report", ref)
            tag.decompose()
    for table in soup.find_all("table"):
        _drop_integer_index(table)
    # numbers in tables (years left ungrouped)
    for cell in soup.find_all("td"):
        if cell.string is not None:
            text, is_number = format_table_cell(str(cell.string), lang, group=not _in_year_column(cell))
            if text != str(cell.string):
                cell.string.replace_with(text)
            if is_number:
                cell["class"] = [*cell.get("class", []), "num"]
    for table in soup.find_all("table"):
        _align_number_headers(table)
    # alt text on every image: the figure's own (metadata) or the section it sits in
    section = None
    for element in soup.find_all(["h1", "h2", "h3", "img"]):
        if element.name != "img":
            section = element.get_text(" ", strip=True).rstrip("¶").strip() or section
        elif not element.get("alt") or element["alt"] == NBCONVERT_NO_ALT:
            element["alt"] = labels["figure_in"].format(section=section) if section else labels["figure"]
    # table of contents of the h2 sections, after the title
    main = soup.find("main") or soup.body
    headings = main.find_all("h2") if main is not None else []
    taken = {tag["id"] for tag in soup.find_all(id=True)}
    if len(headings) >= 2:
        items = []
        for heading in headings:
            if not heading.get("id"):
                heading["id"] = _slug(heading.get_text(" ", strip=True), taken)
            text = heading.get_text(" ", strip=True).rstrip("¶").strip()
            items.append(f'<li><a href="#{html_escape(heading["id"])}">{html_escape(text)}</a></li>')
        nav = BeautifulSoup(f'<nav class="toc" aria-label="{html_escape(labels["contents"])}"><p class="toc-title">'
                            f'{html_escape(labels["contents"])}</p><ul>{"".join(items)}</ul></nav>', "html.parser")
        title = main.find("h1")
        anchor = title.find_parent(class_="jp-Cell") if title is not None else None
        if anchor is not None:
            anchor.insert_after(nav)
        elif title is not None:
            title.insert_after(nav)
        else:
            main.insert(0, nav)
    if back_link and main is not None:
        back = BeautifulSoup(f'<p class="back"><a href="{html_escape(back_link)}">{html_escape(labels["back"])}</a></p>',
                             "html.parser")
        main.insert(0, back)
    return str(soup)


def html_escape(value) -> str:
    """HTML-escaped text of `value` ('' for None)."""
    import html

    return html.escape("" if value is None else str(value))


def export_html(
    ipynb_path: str | Path, html_path: str | Path, *, title: str | None = None, lang: str = "en",
    back_link: str | None = None, log: logging.Logger | None = None,
) -> Path:
    """Export an executed notebook to a self-contained HTML file for readers: no code, no prompts,
    no stderr, no tracebacks (an error becomes one line 'stopped here: Name: message'), figures
    inline with alt text, the house stylesheet, a table of contents, numbers in tables in the
    format of `lang` ('en' 1,234.5 · 'de' 1.234,5), an optional link back to the index, and no
    reference to anything outside the file. nbconvert's notes go to `log` (default: discarded).
    Written atomically; returns `html_path`."""
    import nbformat
    from nbconvert import HTMLExporter

    check_lang(lang)
    log = log or _QUIET
    nb = _reader_copy(nbformat.read(str(ipynb_path), as_version=4), lang)
    exporter = HTMLExporter(
        template_name=TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        log=log,
    )
    name = title or Path(ipynb_path).stem
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": name}, "language_code": lang, "cx_css": house_css(stage=True)})
    return write_text(html_path, _polish(body, lang, back_link=back_link, log=log))


def write_text(path: str | Path, text: str) -> Path:
    """Write text to `path` atomically (temp file in the same folder, then rename)."""
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


# --- index.html ----------------------------------------------------------------------------
_SKIP_SECTIONS = ("validation", "inputs", "tables", "comparison", "skipped")
_MAX_ROWS = 15
_OPEN_ROWS = 10            # short top-level tables are shown open, the rest folded (<details>)
_MAX_CHANGES = 15          # changed numbers listed open on the index; the rest folded
_MAX_CHANGES_ALL = 200     # changed numbers listed at all (all of them are in run.json)


def _esc(value) -> str:
    return html_escape(value)


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _cell(value, lang: str = "en") -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{_esc(format_number(value, lang))}</td>'
    if _is_scalar(value):
        return f"<td>{_esc(format_number(value, lang))}</td>"
    return f"<td><code>{_esc(json.dumps(value, ensure_ascii=False)[:200])}</code></td>"


# Columns of results.json tables that hold shares (0-1) and are shown in percent when every value
# is one; the interval columns of a table whose rate is a share follow it.
_SHARE_COLUMNS = frozenset({"conversion", "step_conversion", "rate", "coverage", "share_over", "share", "reach",
                            "value_share", "customer_share", "revenue_share"})
_SHARE_RATES = frozenset({"conversion", "rate"})


def _share_columns(rows: list[dict], columns: list[str]) -> set[str]:
    """Columns of `rows` to show in percent: a known share column whose values all lie in 0-1
    (a column named 'share' in percent stays as it is), plus ci_low / ci_high next to such a rate."""
    def fraction(column):
        values = [row.get(column) for row in rows]
        numbers = [v for v in values if _is_number(v)]
        return bool(numbers) and all(0 <= v <= 1 for v in numbers) and all(v is None or _is_number(v) for v in values)

    shares = {c for c in columns if c in _SHARE_COLUMNS and fraction(c)}
    if shares & _SHARE_RATES:
        shares |= {c for c in ("ci_low", "ci_high") if c in columns and fraction(c)}
    return shares


def _share_cell(value, lang: str) -> str:
    return f'<td class="num">{_esc(format_percent(value, lang) if value is not None else "–")}</td>'


def _rows_table(rows: list[dict], lang: str = "en", *, limit: int = _MAX_ROWS) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    shares = _share_columns(rows, columns)
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_share_cell(row.get(c), lang) if c in shares else _cell(row.get(c), lang)
                                    for c in columns) + "</tr>" for row in rows[:limit])
    more = (f'<p class="muted">{_esc(LABELS[lang]["more_rows"].format(n=format_number(len(rows) - limit, lang)))}</p>'
            if len(rows) > limit else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _tile(label: str, value: dict, lang: str = "en", *, unit: str = "", key: str = "", delta: str = "") -> str:
    def show(number):
        if unit == "share":
            return format_percent(number, lang)
        if unit == "percent":
            return format_percent(number, lang, share=False)
        if unit == "score":
            return format_number(number, lang, decimals=2)
        return format_number(number, lang)

    labels = LABELS[lang]
    interval = ""
    if value.get("ci_low") is not None and value.get("ci_high") is not None:
        interval = labels["interval"].format(low=show(value["ci_low"]), high=show(value["ci_high"]))
    n = f"n = {format_number(value['n'], lang)}" if value.get("n") is not None else ""
    detail = " · ".join(p for p in (interval, n) if p)
    raw = value.get("value")
    data = f' data-key="{_esc(key)}" data-value="{_esc(json.dumps(raw))}"' if key else ""
    return (f'<div class="tile"{data}><div class="label">{_esc(label)}</div>'
            f'<div class="value">{_esc(show(raw))}</div>'
            f'<div class="detail">{_esc(detail)}</div>'
            + (f'<div class="delta">{_esc(delta)}</div>' if delta else "") + "</div>")


def render_section(data, depth: int = 0, lang: str = "en", *, path: str = "") -> str:
    """Generic HTML for one results section: {value, ci_low, ci_high, n} dicts as tiles,
    scalars as a key/value table, lists of rows as tables (first 15), nested entries folded
    (<details>; short top-level tables open). Numbers in the format of `lang`; `path` is the
    section's key in results.json ('journey'): a tile that is also a headline (HEADLINES) takes
    its label and unit there (a share as 11.4%, not 0.114), and so do tables of shares."""
    if _is_scalar(data):
        return f"<p>{_esc(format_number(data, lang))}</p>"
    if isinstance(data, list):
        if data and all(isinstance(r, dict) for r in data):
            return _rows_table(data, lang)
        return (f"<p>{_esc(', '.join(format_number(v, lang) if _is_scalar(v) else json.dumps(v) for v in data))}</p>"
                if data else "<p>–</p>")
    tiles = {k: v for k, v in data.items() if isinstance(v, dict) and "value" in v and all(_is_scalar(x) for x in v.values())}
    scalars = {k: v for k, v in data.items() if k not in tiles and _is_scalar(v)}
    nested = {k: v for k, v in data.items() if k not in tiles and k not in scalars}
    parts = []
    if tiles:
        headlines = {key: (names[LANGS.index(lang)], unit) for key, names, unit in HEADLINES}
        shown = [headlines.get(f"{path}.{k}" if path else k, (k, "")) for k in tiles]
        parts.append('<div class="tiles">' + "".join(_tile(label, v, lang, unit=unit)
                                                     for (label, unit), v in zip(shown, tiles.values())) + "</div>")
    if scalars:
        rows = "".join(f"<tr><th>{_esc(k)}</th>{_cell(v, lang)}</tr>" for k, v in scalars.items())
        parts.append(f"<table><tbody>{rows}</tbody></table>")
    for key, value in nested.items():
        inner = (render_section(value, depth + 1, lang, path=f"{path}.{key}" if path else str(key)) if depth < 3
                 else f"<code>{_esc(json.dumps(value)[:300])}</code>")
        short = isinstance(value, list) and len(value) <= _OPEN_ROWS
        opened = " open" if depth == 0 and short else ""
        parts.append(f"<details{opened}><summary>{_esc(key)}</summary>{inner}</details>")
    return "".join(parts)


def _lookup(data, path: str):
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _headline_tiles(results: dict, comparison: dict, lang: str) -> str:
    changes = {row["path"]: row for row in comparison.get("numbers") or []}
    tiles = []
    for path, names, unit in HEADLINES:
        value = _lookup(results, path)
        if _is_number(value):
            value = {"value": value}
        if not isinstance(value, Mapping) or not _is_number(value.get("value")):
            continue
        label = names[LANGS.index(lang)]
        delta = ""
        change = changes.get(f"{path}.value") or changes.get(path)
        if change is not None:
            amount = change["change"]
            shown = (format_number(amount * 100, lang, decimals=1) if unit == "share"
                     else format_number(amount, lang, decimals=1) if unit in ("points", "percent", "score")
                     else format_number(amount, lang))
            suffix = {"share": " pp", "percent": " pp"}.get(unit, "")
            delta = "Δ " + LABELS[lang]["vs_previous"].format(change=_signed(shown, amount) + suffix)
        tiles.append(_tile(label, value, lang, unit=unit, key=path, delta=delta))
    return '<div class="tiles">' + "".join(tiles) + "</div>" if tiles else ""


def _report_item(nb: dict, lang: str) -> str:
    labels = LABELS[lang]
    name = nb.get("title") or nb["name"]
    link = f'<a href="{_esc(nb["html"])}">{_esc(name)}</a>' if nb.get("html") else _esc(name)
    duration = f"{format_number(nb['duration_s'], lang, decimals=1)} s" if nb.get("duration_s") is not None else "–"
    status = nb.get("status") or "unknown"
    return (f'<li>{link} <span class="badge {_esc(status)}">{_esc(_word(status, lang))}</span> '
            f'<span class="muted">{_esc(nb["name"])} · {_esc(labels["duration"])} {_esc(duration)}</span></li>')


def _comparison_html(comparison: dict, lang: str) -> str:
    labels = LABELS[lang]
    if not comparison or not comparison.get("previous_run"):
        return f"<p>{_esc(labels['no_previous'])}</p>"
    previous = comparison["previous_run"]
    link = f'<a href="../{_esc(previous)}/index.html"><code>{_esc(previous)}</code></a>'
    parts = [f"<p>{labels['compared_with'].format(run=link)}</p>"]
    other = comparison.get("different_dataset")
    if other:
        parts.append(f"<p>{_esc(labels['other_dataset'].format(previous=other.get('previous'), current=other.get('current')))}</p>")
        return "".join(parts)
    inputs = comparison.get("inputs") or {}
    if comparison.get("fingerprint_changed") is False:
        parts.append(f"<p>{_esc(labels['same_data'])}</p>")
    else:
        parts.append("<p>" + _esc(labels["data_changed"].format(
            changed=len(inputs.get("changed") or []), added=len(inputs.get("added") or []),
            removed=len(inputs.get("removed") or []), unchanged=inputs.get("unchanged", 0))) + "</p>")
        def state(size, sha):
            return f"{format_number(size, lang)} {labels['bytes']} · {(sha or '')[:12]}"

        rows = ([{labels["file"]: f["file"], labels["change"]: labels["changed"],
                  labels["previous"]: state(f.get("previous_bytes"), f.get("previous_sha256")),
                  labels["current"]: state(f.get("bytes"), f.get("sha256"))} for f in inputs.get("changed") or []]
                + [{labels["file"]: name, labels["change"]: labels[kind]}
                   for kind in ("added", "removed") for name in inputs.get(kind) or []])
        if rows:
            parts.append(_rows_table(rows, lang, limit=_MAX_CHANGES_ALL))
    notebooks = comparison.get("notebooks") or {}
    for key in ("added", "removed"):
        if notebooks.get(key):
            parts.append(f"<p>{_esc(labels['notebooks_' + key].format(names=', '.join(notebooks[key])))}</p>")
    params = comparison.get("parameters") or []
    if params:
        parts.append(f"<h3>{_esc(labels['param_changes'])}</h3>")
        rows = [{labels["scope"]: p["notebook"] or labels["run_scope"], labels["parameter"]: p["parameter"],
                 labels["previous"]: _param_text(p["previous"]), labels["current"]: _param_text(p["current"])}
                for p in params]
        parts.append(_rows_table(rows, lang, limit=_MAX_CHANGES_ALL))
    else:
        parts.append(f"<p>{_esc(labels['no_param_changes'])}</p>")
    numbers = comparison.get("numbers") or []
    compared = format_number(comparison.get("numbers_compared", 0), lang)
    parts.append(f"<h3>{_esc(labels['numbers_changed'])}</h3>")
    if not numbers:
        parts.append(f"<p>{_esc(labels['no_number_changes'].format(compared=compared))}</p>")
        return "".join(parts)
    added, removed = comparison.get("numbers_added", 0), comparison.get("numbers_removed", 0)
    extra = (labels["numbers_extra"].format(added=format_number(added, lang), removed=format_number(removed, lang))
             if added or removed else "")
    summary = labels["numbers_summary"].format(changed=format_number(len(numbers), lang), compared=compared, extra=extra)
    parts.append(f"<p>{_esc(summary)}</p>")

    def table(rows):
        return _rows_table([{labels["number"]: r["path"], labels["previous"]: r["previous"], labels["current"]: r["current"],
                             labels["change"]: _signed(format_number(r["change"], lang), r["change"])} for r in rows],
                           lang, limit=len(rows))

    parts.append(table(numbers[:_MAX_CHANGES]))
    if len(numbers) > _MAX_CHANGES:
        shown = numbers[:_MAX_CHANGES_ALL]
        rest = format_number(len(numbers) - len(shown), lang)
        more = f'<p class="muted">{_esc(labels["more_in_json"].format(n=rest))}</p>' if len(numbers) > len(shown) else ""
        title = labels["more_changes"].format(n=format_number(len(numbers), lang))
        parts.append(f"<details><summary>{_esc(title)}</summary>{table(shown)}{more}</details>")
    return "".join(parts)


_ACRONYMS = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "clv": "CLV", "rfm": "RFM", "fcr": "FCR", "kpi": "KPI",
             "kpis": "KPIs"}


def _section_label(key: str, lang: str, titles: Mapping[str, str] | None = None) -> str:
    """'feedback.nps_trend' -> 'Voice of the customer: NPS trend': the title of the stage whose
    notebook name holds the key's first part (`titles`: {notebook name: title in `lang`}), else
    its section name; then the rest of the key in words."""
    stage, _, rest = str(key).partition(".")
    name = next((title for nb, title in (titles or {}).items() if stage in nb.split("_", 1)[-1]), None)
    name = name or SECTION_NAMES.get(lang, {}).get(stage) or stage.replace("_", " ").capitalize()
    words = [_ACRONYMS.get(word, word) for word in rest.replace(".", " ").replace("_", " ").split()]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return f"{name}: {' '.join(words)}" if words else name


def _skipped_html(skipped, lang: str, titles: Mapping[str, str] | None = None) -> str:
    """The sections the stages skipped (results.json `skipped`: [{section, reason, enable}]) as a
    short list: what is not shown, why, and the canonical column or table that would enable it."""
    rows = [row for row in skipped or [] if isinstance(row, Mapping) and row.get("section")]
    if not rows:
        return ""
    labels = LABELS[lang]
    items = "".join(
        f"<li><strong>{_esc(_section_label(row['section'], lang, titles))}</strong>: {_esc(row.get('reason') or '')}"
        + (f" ({_esc(labels['needs'])} <code>{_esc(row['enable'])}</code>)" if row.get("enable") else "") + "</li>"
        for row in rows)
    return f"<p>{_esc(labels['not_shown_intro'])}</p><ul>{items}</ul>"


def _param_text(value) -> str:
    if value is None:
        return "–"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def index_html(record: dict, results: dict) -> str:
    """The run's overview page (self-contained HTML) in the run's language and audience view
    (record['run_parameters'] lang / audience, record['view'] the stage reports in reading order):
    status at a glance with the headline tiles, the stage reports of the view then the others,
    the sections the stages skipped ("Not shown for this data", results['skipped']), what changed
    since the previous run (record['comparison'], see `compare_runs`), validation, data
    fingerprint and files, all headline numbers of results.json, parameters."""
    run_params = record.get("run_parameters") or {}
    lang = check_lang(run_params.get("lang") or "en")
    labels = LABELS[lang]
    audience = run_params.get("audience") or "management"
    status = record.get("status", "unknown")
    inputs = record.get("inputs") or {}
    validation = results.get("validation") or {}
    comparison = record.get("comparison") or {}
    notebooks = record.get("notebooks") or []
    sections: list[tuple[str, str, str]] = []     # (id, title, html)

    # at a glance
    ok = sum(1 for nb in notebooks if nb.get("status") == "succeeded")
    v_status = validation.get("status", "not run")
    fp = inputs.get("fingerprint", "")
    glance = [
        f'<p>{_esc(labels["run"])} <span class="badge {_esc(status)}">{_esc(_word(status, lang))}</span> · '
        f'{_esc(labels["stages_ok"].format(ok=ok, total=len(notebooks)))} · {_esc(labels["validation"])} '
        f'<span class="badge {_esc(v_status)}">{_esc(_word(v_status, lang))}</span> · {_esc(labels["fingerprint"])} '
        f'<code title="{_esc(fp)}">{_esc(fp[:16])}</code> · {_esc(labels["previous_run"])}: '
        f'<code>{_esc(comparison.get("previous_run") or labels["none"])}</code></p>',
    ]
    failure = record.get("failure")
    if failure:
        where = failure_where(failure, lang)
        glance.append('<div class="box">' + _esc(labels["failed_at"].format(
            notebook=failure.get("notebook"), where=where, error=f"{failure.get('ename')}: {failure.get('evalue')}")) + "</div>")
    glance.append(_headline_tiles(results, comparison, lang))
    sections.append(("glance", labels["glance"], "".join(glance)))

    # stage reports: the audience's view first, in its order; the rest under "other reports"
    view = (record.get("view") or {}).get("reports")
    by_name = {nb["name"]: nb for nb in notebooks}
    chosen = [by_name[name] for name in (view if view is not None else list(by_name)) if name in by_name]
    others = [nb for nb in notebooks if nb not in chosen]
    reports = f'<ol class="reports">{"".join(_report_item(nb, lang) for nb in chosen)}</ol>' if chosen else "<p>–</p>"
    if others:
        reports += f"<h3>{_esc(labels['other_reports'])}</h3><ol class=\"reports\">{''.join(_report_item(nb, lang) for nb in others)}</ol>"
    sections.append(("reports", labels["reports"].format(audience=audience_name(audience, lang)), reports))

    skipped = _skipped_html(results.get("skipped"), lang, {nb["name"]: nb.get("title") or nb["name"] for nb in notebooks})
    if skipped:
        sections.append(("not-shown", labels["not_shown"], skipped))
    sections.append(("changes", labels["changes"], _comparison_html(comparison, lang)))

    # validation
    counts = {labels[k]: (len(validation[k]) if isinstance(validation[k], list) else validation[k])
              for k in ("checked", "warnings") if k in validation}
    failed = validation.get("failed") or []
    counts[labels["critical"]] = len(failed)
    part = [f'<p><span class="badge {_esc(v_status)}">{_esc(_word(v_status, lang))}</span> '
            + _esc(", ".join(f"{k}: {format_number(v, lang)}" for k, v in counts.items())) + "</p>"]
    if failed:
        part.append(render_section(failed if isinstance(failed, list) else [failed], lang=lang))
    sections.append(("validation", labels["validation"], "".join(part)))

    # data
    part = [f'<p>{_esc(labels["fingerprint"])} <code title="{_esc(fp)}">{_esc(fp[:16])}</code> '
            f'<span class="muted">{_esc(labels["fingerprint_note"])}</span></p>']
    files = inputs.get("files") or []
    if files:
        part.append(_rows_table([{labels["file"]: f.get("file"), labels["bytes"]: f.get("bytes"), labels["rows"]: f.get("rows"),
                                  labels["sha256"]: (f.get("sha256") or "")[:16]} for f in files], lang, limit=len(files)))
    tables = inputs.get("tables") or {}
    if tables:
        part.append(f"<h3>{_esc(labels['rows_per_table'])}</h3>" + render_section(tables, 1, lang))
    sections.append(("data", labels["data"], "".join(part)))

    # all headline numbers, one section per results.json key
    for section, data in results.items():
        if section in _SKIP_SECTIONS:
            continue
        name = SECTION_NAMES.get(lang, {}).get(section) or section.replace("_", " ").capitalize()
        sections.append((f"results-{section}", name, render_section(data, lang=lang, path=section)))

    part = []
    for name, params in (record.get("parameters") or {}).items():
        rows = "".join(f"<tr><th>{_esc(k)}</th><td><code>{_esc(v)}</code></td></tr>"
                       for k, v in parameters_table(params).itertuples(index=False))
        part.append(f"<h3>{_esc(name)}</h3><table><tbody>{rows}</tbody></table>")
    if run_params:
        rows = "".join(f"<tr><th>{_esc(k)}</th><td><code>{_esc(v)}</code></td></tr>"
                       for k, v in parameters_table(run_params).itertuples(index=False))
        part.insert(0, f"<h3>{_esc(labels['run_scope'])}</h3><table><tbody>{rows}</tbody></table>")
    sections.append(("parameters", labels["parameters"], "".join(part)))

    title = labels["title"].format(run_id=record.get("run_id"))
    toc = "".join(f'<li><a href="#{_esc(sid)}">{_esc(name)}</a></li>' for sid, name, _ in sections)
    head = (f"<h1>{_esc(title)}</h1>"
            f'<p class="meta">{_esc(labels["started"])} {_esc(record.get("started"))} · {_esc(labels["ended"])} '
            f'{_esc(record.get("ended"))} ({_esc(labels["utc"])}) · {_esc(labels["view"].format(audience=audience_name(audience, lang)))}'
            f' · {_esc(labels["project"])} <code>{_esc(record.get("project_dir"))}</code></p>'
            f'<nav class="toc" aria-label="{_esc(labels["contents"])}"><p class="toc-title">{_esc(labels["contents"])}</p>'
            f"<ol>{toc}</ol></nav>")
    body = "".join(f'<section id="{_esc(sid)}"><h2>{_esc(name)}</h2>{content}</section>' for sid, name, content in sections)
    versions = ", ".join(f"{k} {v}" for k, v in (record.get("packages") or {}).items() if v)
    footer = (f"<footer>Python {_esc(record.get('python'))} · {_esc(versions)} · {_esc(labels['footer'])}</footer>")
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{house_css()}</style></head>"
            f"<body><main>{head}{body}{footer}</main></body></html>\n")


def write_index(run_dir: str | Path, record: dict, results: dict) -> Path:
    """Write run_dir/index.html from the run record and results (atomically)."""
    return write_text(Path(run_dir) / "index.html", index_html(to_jsonable(record), to_jsonable(results)))


# --- tables and interpretive text for the validation notebook ------------------------------
# Built from the numbers so that notebooks stay thin: each returns Markdown text or a table.
_OUTCOME_ORDER = {"failed": 0, "warned": 1, "passed": 2}
_OUTCOME_COLOURS = {"failed": "#fde0e0", "warned": "#fff0d9"}
_BOOKKEEPING_RULES = ("customer ids pseudonymised", "stage derived from touchpoint")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def row_counts(tables: Mapping[str, pd.DataFrame]) -> pd.Series:
    """Rows per table: Series table -> rows (int64), in the order given."""
    return pd.Series({name: len(df) for name, df in tables.items()}, dtype="int64", name="rows")


def inputs_record(inputs: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> dict:
    """The `inputs` section of results.json: files read (file, table, rows, bytes, sha256) and
    rows per staged table."""
    return {"files": inputs, "rows": row_counts(tables)}


def inputs_note(inputs: pd.DataFrame, log: pd.DataFrame) -> str:
    """Markdown: how many files and rows were read into which tables, and what the mapping did.
    `inputs`: file, table, rows, bytes; `log`: table, step, rule, rows, detail."""
    if inputs.empty:
        return "No input files were read: the source mapping names no files."
    per_table = inputs.groupby("table", sort=False)["rows"].sum()
    tables = ", ".join(f"{t} {n:,}" for t, n in per_table.items())
    size = inputs.drop_duplicates("file")["bytes"].sum() / 1e6
    applied = log.loc[lambda d: d["rows"] > 0]
    top = applied.loc[lambda d: d["step"] != "read"].sort_values("rows", ascending=False).head(3)
    rules = "; ".join(f"{r.rule} ({r.table}, {r.rows:,} rows)" for r in top.itertuples(index=False))
    n_files = inputs["file"].nunique()
    text = (
        f"**{_plural(n_files, 'file')}** ({size:,.1f} MB) {'was' if n_files == 1 else 'were'} read into "
        f"**{_plural(len(per_table), 'table')}**; source rows per table: {tables}. "
        f"The mapping applied {_plural(len(log), 'rule')}, {len(applied):,} of them to at least one row"
    )
    return text + (f"; the largest: {rules}." if rules else ".")


def gate_table(results: pd.DataFrame):
    """The gate's results for readers: failed first, then warned, then passed; columns
    table, column, expectation, severity, outcome, unexpected_count, unexpected_percent,
    examples; failed rows shaded red, warned orange. Returns a pandas Styler (shows every row)."""
    table = (
        results
        .assign(_order=lambda d: d["outcome"].map(_OUTCOME_ORDER))
        .sort_values(["_order", "table", "column"], kind="stable", na_position="first")
        .loc[:, ["table", "column", "expectation", "severity", "outcome", "unexpected_count",
                 "unexpected_percent", "examples"]]
        .reset_index(drop=True)
    )
    return (
        table.style
        .hide(axis="index")
        .format({"unexpected_percent": "{:.2f}%", "unexpected_count": "{:,}", "examples": _examples_html},
                na_rep="–")
        .apply(lambda row: [f"background-color: {_OUTCOME_COLOURS.get(row['outcome'], 'transparent')}"] * len(row),
               axis=1)
        .set_properties(subset=["examples"], **{"max-width": "30em", "overflow-wrap": "anywhere", "font-size": "0.85em"})
    )


def _examples_html(examples, *, shown: int = 3, width: int = 90) -> str:
    """The first `shown` of the '; '-separated examples, one per line, each cut at `width`
    characters, HTML-escaped (the full list is in the validation results and Data Docs)."""
    if examples is None or (isinstance(examples, float) and pd.isna(examples)) or str(examples) == "":
        return "–"
    parts = str(examples).split("; ")
    lines = [html.escape(p if len(p) <= width else p[: width - 1] + "…") for p in parts[:shown]]
    more = f"<br>… {len(parts) - shown:,} more" if len(parts) > shown else ""
    return "<br>".join(lines) + more


def gate_note(gate) -> str:
    """Markdown interpreting a gate result (`stage`, `status`, `results` with `outcome`)."""
    counts = gate.results["outcome"].value_counts()
    n = len(gate.results)
    tables = gate.results["table"].nunique()
    head = (
        f"The **{gate.stage}** gate ran **{_plural(n, 'check')}** on {_plural(tables, 'table')}: "
        f"{counts.get('passed', 0):,} passed, {counts.get('warned', 0):,} warned, "
        f"{counts.get('failed', 0):,} failed. Status: **{gate.status}**."
    )
    bad = gate.results.loc[lambda d: d["outcome"].isin(["failed", "warned"])]
    listed = "".join(
        f"\n- {r.outcome}: `{r.table}.{r.column}` {r.expectation} — "
        f"{'not met' if pd.isna(r.unexpected_count) else _plural(int(r.unexpected_count), 'row')}"
        for r in bad.assign(_o=lambda d: d["outcome"].map(_OUTCOME_ORDER)).sort_values("_o", kind="stable")
        .head(8).itertuples(index=False)
    )
    more = f"\n- … and {len(bad) - 8:,} more in the table below" if len(bad) > 8 else ""
    if gate.status == "failed":
        tail = ("\n\nA critical check failed, so the run stops here: nothing is written to the processed "
                "tables and the previous report stays the latest. Fix the export or the source mapping "
                "and run again.")
    elif gate.status == "warned":
        tail = ("\n\nThe run continues: the rows behind the warnings are within the tolerance and are "
                "dropped or blanked by cleaning, which logs them.")
    else:
        tail = "\n\nEvery check held for every row."
    return head + listed + more + tail


def cleaning_changes(log: pd.DataFrame) -> pd.DataFrame:
    """Cleaning rules that affected rows, largest first, one row per table and rule (rows of a
    rule applied to several columns summed): columns label ("table: rule"), table, rule, rows,
    kind ("dropped" for rules that drop rows, "derived" for rows made from other tables, "kept" for
    rows only counted, else "changed"). Pseudonymisation and stage derivation (applied to every
    row) are left out."""
    kinds = {True: "dropped", False: "changed"}
    return (
        log
        .loc[lambda d: (d["rows"] > 0) & ~d["rule"].isin(_BOOKKEEPING_RULES)]
        .groupby(["table", "rule"], sort=False, as_index=False)["rows"].sum()
        .assign(label=lambda d: d["table"] + ": " + d["rule"],
                kind=lambda d: d["rule"].str.contains("dropped").map(kinds)
                .where(~d["rule"].str.contains("kept"), "kept")
                .where(~d["rule"].str.startswith("rows derived"), "derived"))
        .sort_values("rows", ascending=False, kind="stable")
        .loc[:, ["label", "table", "rule", "rows", "kind"]]
        .reset_index(drop=True)
    )


def _cleaning_totals(log: pd.DataFrame, rows_before: pd.Series) -> tuple[int, int, int]:
    changes = cleaning_changes(log)
    dropped = int(changes.loc[lambda d: d["kind"] == "dropped", "rows"].sum())
    changed = int(changes.loc[lambda d: d["kind"] == "changed", "rows"].sum())
    return dropped, changed, int(rows_before.sum())


def cleaning_figure(log: pd.DataFrame, rows_before: pd.Series):
    """Bar chart of the rows each cleaning rule dropped, changed, derived or only counted (from
    `cleaning_changes`), titled with the finding; raises schema.Missing when cleaning changed nothing."""
    from cxlib import figures, schema, style

    changes = cleaning_changes(log)
    if changes.empty:
        raise schema.Missing("cleaning dropped, changed or derived no row")
    colours = {"dropped": style.COLOURS["negative"], "changed": style.COLOURS["primary"],
               "derived": style.COLOURS["secondary"], "kept": style.COLOURS["neutral"]}
    return figures.bars(changes, category="label", value="rows", tone="kind", colours=colours,
                        title=cleaning_title(log, rows_before), value_label="rows affected (count)",
                        n=int(rows_before.sum()), definition=(
                            "rows read, all tables; bars: rows each cleaning rule dropped (red), changed (dark blue), "
                            "derived from other tables (light blue) or only counted (grey)"))


def cleaning_title(log: pd.DataFrame, rows_before: pd.Series) -> str:
    """Figure title stating the finding: 'Cleaning dropped 1.2% of rows; most: feedback: …'."""
    changes = cleaning_changes(log)
    if changes.empty:
        return "Cleaning found nothing to drop or change"
    dropped, _, total = _cleaning_totals(log, rows_before)
    share = dropped / total if total else 0.0
    return f"Cleaning dropped {share:.1%} of rows; most affected: {changes['label'].iloc[0]}"


def cleaning_note(log: pd.DataFrame, rows_before: pd.Series) -> str:
    """Markdown: rows dropped and values changed by cleaning, by reason."""
    changes = cleaning_changes(log)
    if changes.empty:
        return "Cleaning found no duplicates, test accounts, unknown codes or out-of-range values."
    dropped, changed, total = _cleaning_totals(log, rows_before)
    share = dropped / total if total else 0.0
    reasons = "".join(f"\n- {r.label}: {_plural(r.rows, 'row')} ({r.kind})" for r in changes.itertuples(index=False))
    return (
        f"Cleaning **dropped {dropped:,} of {total:,} rows ({share:.1%})** and **changed {changed:,} values**. "
        f"By rule:{reasons}\n\nCustomer numbers were replaced by keyed pseudonyms; names and contact "
        "details went only into the restricted re-identification table."
    )


def rows_table(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """Rows per table before and after cleaning: columns table, rows_read, rows_written,
    dropped, derived (rows made from other tables, e.g. customers from their ids), dropped_pct
    (percent of rows read)."""
    return (
        pd.DataFrame({"rows_read": before, "rows_written": after})
        .fillna(0).astype("int64")
        .rename_axis("table").reset_index()
        .assign(table=lambda d: d["table"].astype("str"),
                dropped=lambda d: (d["rows_read"] - d["rows_written"]).clip(lower=0),
                derived=lambda d: (d["rows_written"] - d["rows_read"]).clip(lower=0),
                dropped_pct=lambda d: (100 * d["dropped"] / d["rows_read"].where(d["rows_read"] > 0)).round(2))
    )


def tables_note(rows: pd.DataFrame, processed_dir: str | Path) -> str:
    """Markdown: what was written to the processed folder (from `rows_table`). A staging folder of
    `cx run` (`.<name>.staging`, see cxlib.folders) is named as such, with the folder it replaces."""
    kept = int(rows["rows_written"].sum())
    written = f"**{_plural(len(rows), 'table')} with {kept:,} rows** {'was' if len(rows) == 1 else 'were'}"
    staged = re.fullmatch(r"\.(.+)\.staging", Path(processed_dir).name)
    if staged:
        final = Path(processed_dir).with_name(staged[1])
        return (f"Both gates passed, so {written} written as Parquet to this run's staging folder; the later "
                f"stages read them there, and they replace `{final}` in one step only when every stage of the "
                "run has succeeded.")
    return (
        f"Both gates passed, so {written} written as "
        f"Parquet to `{processed_dir}` (replacing the previous version in one step). The analysis "
        "notebooks read them from there."
    )


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
