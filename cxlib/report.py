"""Run records and HTML: record a notebook's headline numbers, export notebooks to HTML
without code, write index.html, run.json and results.json.

Notebooks call `record_results(run_dir, section, dict)` and show `parameters_table(params)`;
the pipeline calls the rest.

    report.record_results(run_dir, "feedback", {"nps": {"value": 12.3, "n": 4210}})
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS_DIR = "results"
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
    """All recorded sections of a run merged into one dict: {section: results}, sections sorted."""
    folder = Path(run_dir) / RESULTS_DIR
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in files}


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


# --- notebook -> HTML without code ---------------------------------------------------------
TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE = "cx_html"
_QUIET = logging.getLogger("cxlib.report.nbconvert")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def _reader_copy(nb):
    """A copy of notebook `nb` for readers: stderr streams dropped, error tracebacks reduced to
    'Name: message' (the message names file, column and rows)."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = [o for o in cell.get("outputs", [])
                   if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        for out in outputs:
            if out.get("output_type") == "error":
                out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        cell["outputs"] = outputs
    return nb


def export_html(
    ipynb_path: str | Path, html_path: str | Path, *, title: str | None = None, log: logging.Logger | None = None,
) -> Path:
    """Export an executed notebook to a self-contained HTML file without code: inputs and
    prompts hidden, stderr dropped, figures inline (base64), no external references.
    nbconvert's notes (e.g. missing alt text) go to `log` (default: discarded).
    Written atomically; returns `html_path`."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = _reader_copy(nbformat.read(str(ipynb_path), as_version=4))
    exporter = HTMLExporter(
        template_name=TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        log=log or _QUIET,
    )
    name = title or Path(ipynb_path).stem
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name}})
    return write_text(html_path, body)


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
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .88rem; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .7rem; text-align: left; vertical-align: top; }
th { background: var(--bg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: .85rem; word-break: break-all; }
a { color: var(--blue); }
footer { margin-top: 3rem; color: var(--muted); font-size: .8rem; }
details { margin: .3rem 0 .6rem; }
details > summary { cursor: pointer; font-weight: bold; color: var(--blue); margin-bottom: .3rem; }
details details { margin-left: 1rem; }
"""

_SKIP_SECTIONS = ("validation", "inputs", "tables")
_MAX_ROWS = 15
_OPEN_ROWS = 10            # short top-level tables are shown open, the rest folded (<details>)


def _esc(value) -> str:
    import html

    return html.escape("" if value is None else str(value))


def format_number(value) -> str:
    """Numbers for readers: 12345.6 -> '12,346'; 12.345 -> '12.3'; 0.0213 -> '0.0213'; None -> '–'."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _cell(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{_esc(format_number(value))}</td>'
    if _is_scalar(value):
        return f"<td>{_esc(format_number(value))}</td>"
    return f"<td><code>{_esc(json.dumps(value, ensure_ascii=False)[:200])}</code></td>"


def _rows_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows[:_MAX_ROWS])
    more = f'<p class="muted">… and {len(rows) - _MAX_ROWS:,} more rows in results.json</p>' if len(rows) > _MAX_ROWS else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _tile(label: str, value: dict) -> str:
    interval = ""
    if value.get("ci_low") is not None and value.get("ci_high") is not None:
        interval = f"95% interval {format_number(value['ci_low'])} to {format_number(value['ci_high'])}"
    n = f"n = {format_number(value['n'])}" if value.get("n") is not None else ""
    detail = " · ".join(p for p in (interval, n) if p)
    return (f'<div class="tile"><div class="label">{_esc(label)}</div>'
            f'<div class="value">{_esc(format_number(value.get("value")))}</div>'
            f'<div class="detail">{_esc(detail)}</div></div>')


def render_section(data, depth: int = 0) -> str:
    """Generic HTML for one results section: {value, ci_low, ci_high, n} dicts as tiles,
    scalars as a key/value table, lists of rows as tables (first 15), nested entries folded
    (<details>; short top-level tables open)."""
    if _is_scalar(data):
        return f"<p>{_esc(format_number(data))}</p>"
    if isinstance(data, list):
        if data and all(isinstance(r, dict) for r in data):
            return _rows_table(data)
        return f"<p>{_esc(', '.join(format_number(v) if _is_scalar(v) else json.dumps(v) for v in data)) or '(none)'}</p>"
    tiles = {k: v for k, v in data.items() if isinstance(v, dict) and "value" in v and all(_is_scalar(x) for x in v.values())}
    scalars = {k: v for k, v in data.items() if k not in tiles and _is_scalar(v)}
    nested = {k: v for k, v in data.items() if k not in tiles and k not in scalars}
    parts = []
    if tiles:
        parts.append('<div class="tiles">' + "".join(_tile(k, v) for k, v in tiles.items()) + "</div>")
    if scalars:
        rows = "".join(f"<tr><th>{_esc(k)}</th>{_cell(v)}</tr>" for k, v in scalars.items())
        parts.append(f"<table><tbody>{rows}</tbody></table>")
    for key, value in nested.items():
        inner = render_section(value, depth + 1) if depth < 3 else f"<code>{_esc(json.dumps(value)[:300])}</code>"
        short = isinstance(value, list) and len(value) <= _OPEN_ROWS
        opened = " open" if depth == 0 and short else ""
        parts.append(f"<details{opened}><summary>{_esc(key)}</summary>{inner}</details>")
    return "".join(parts)


def find_data_docs(run_dir: str | Path) -> list[Path]:
    """The Data Docs index pages written under run_dir/data_docs (one per gate), sorted."""
    folder = Path(run_dir) / "data_docs"
    return sorted(folder.rglob("index.html"), key=lambda p: (len(p.parts), str(p))) if folder.is_dir() else []


def index_html(record: dict, results: dict, *, data_docs: list[str] | None = None) -> str:
    """The run's overview page (self-contained HTML): status, data fingerprint, validation,
    links to each stage report and Data Docs, headline numbers of results.json, parameters."""
    status = record.get("status", "unknown")
    inputs = record.get("inputs") or {}
    validation = results.get("validation") or {}
    parts = [
        f"<h1>CX insights — run {_esc(record.get('run_id'))}</h1>",
        f'<p class="meta">Run <span class="badge {_esc(status)}">{_esc(status)}</span> · '
        f"started {_esc(record.get('started'))} · ended {_esc(record.get('ended'))} (UTC) · "
        f"project <code>{_esc(record.get('project_dir'))}</code></p>",
    ]
    failure = record.get("failure")
    if failure:
        where = f"cell {failure['cell']}" if failure.get("cell") is not None else "before any cell ran"
        parts.append(f'<div class="box">FAILED {_esc(failure.get("notebook"))}, {_esc(where)}: '
                     f'{_esc(failure.get("ename"))}: {_esc(failure.get("evalue"))}</div>')

    parts.append("<h2>Stage reports</h2><table><thead><tr><th>notebook</th><th>status</th>"
                 "<th>duration</th><th>report</th></tr></thead><tbody>")
    for nb in record.get("notebooks", []):
        link = f'<a href="{_esc(nb["html"])}">{_esc(nb.get("title") or nb["name"])}</a>' if nb.get("html") else _esc(nb.get("title") or nb["name"])
        duration = f"{nb['duration_s']:.1f} s" if nb.get("duration_s") is not None else "–"
        parts.append(f"<tr><td>{_esc(nb['name'])}</td><td><span class=\"badge {_esc(nb.get('status'))}\">"
                     f"{_esc(nb.get('status'))}</span></td><td class=\"num\">{_esc(duration)}</td><td>{link}</td></tr>")
    parts.append("</tbody></table>")

    v_status = validation.get("status", "not run")
    parts.append(f'<h2>Validation <span class="badge {_esc(v_status)}">{_esc(v_status)}</span></h2>')
    counts = {k: validation[k] for k in ("checked", "warnings") if k in validation}
    failed = validation.get("failed") or []
    summary = ", ".join(f"{k}: {format_number(len(v) if isinstance(v, list) else v)}" for k, v in counts.items())
    parts.append(f"<p>{_esc(summary)}{'; ' if summary else ''}critical failures: {len(failed)}</p>")
    if failed:
        parts.append(render_section(failed if isinstance(failed, list) else [failed]))
    if data_docs:
        links = " · ".join(f'<a href="{_esc(link)}">{_esc(Path(link).parent.name or link)}</a>' for link in data_docs)
        parts.append(f"<p>Great Expectations Data Docs: {links} "
                     '<span class="muted">(their styles load from the internet; the stage report shows the same results offline)</span></p>')

    parts.append("<h2>Data</h2>")
    fp = inputs.get("fingerprint", "")
    parts.append(f'<p>Data fingerprint <code title="{_esc(fp)}">{_esc(fp[:16])}</code> '
                 f'<span class="muted">(SHA-256 over the input files; the same fingerprint means the same data)</span></p>')
    files = inputs.get("files") or []
    if files:
        parts.append(_rows_table([{"file": f.get("file"), "bytes": f.get("bytes"), "rows": f.get("rows"),
                                   "sha256": (f.get("sha256") or "")[:16]} for f in files]))
    tables = inputs.get("tables") or {}
    if tables:
        parts.append("<h3>Rows per processed table</h3>" + render_section(tables, 1))

    for section, data in results.items():
        if section in _SKIP_SECTIONS:
            continue
        parts.append(f"<h2>{_esc(section.replace('_', ' ').capitalize())}</h2>{render_section(data)}")

    parts.append("<h2>Parameters</h2>")
    for name, params in (record.get("parameters") or {}).items():
        rows = "".join(f"<tr><th>{_esc(k)}</th><td><code>{_esc(v)}</code></td></tr>"
                       for k, v in parameters_table(params).itertuples(index=False))
        parts.append(f"<h3>{_esc(name)}</h3><table><tbody>{rows}</tbody></table>")

    versions = ", ".join(f"{k} {v}" for k, v in (record.get("packages") or {}).items() if v)
    parts.append(f"<footer>Python {_esc(record.get('python'))} · {_esc(versions)} · "
                 "run.json and results.json in this folder hold these numbers for machines.</footer>")
    title = f"CX insights — run {record.get('run_id')}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n")


def write_index(run_dir: str | Path, record: dict, results: dict) -> Path:
    """Write run_dir/index.html from the run record and results (atomically)."""
    run_dir = Path(run_dir)
    links = [page.relative_to(run_dir).as_posix() for page in find_data_docs(run_dir)]
    return write_text(run_dir / "index.html", index_html(to_jsonable(record), to_jsonable(results), data_docs=links))


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
        .format({"unexpected_percent": "{:.2f}%", "unexpected_count": "{:,}"}, na_rep="–")
        .apply(lambda row: [f"background-color: {_OUTCOME_COLOURS.get(row['outcome'], 'transparent')}"] * len(row),
               axis=1)
    )


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
    kind ("dropped" for rules that drop rows, "kept" for rows only counted, else "changed").
    Pseudonymisation and stage derivation (applied to every row) are left out."""
    kinds = {True: "dropped", False: "changed"}
    return (
        log
        .loc[lambda d: (d["rows"] > 0) & ~d["rule"].isin(_BOOKKEEPING_RULES)]
        .groupby(["table", "rule"], sort=False, as_index=False)["rows"].sum()
        .assign(label=lambda d: d["table"] + ": " + d["rule"],
                kind=lambda d: d["rule"].str.contains("dropped").map(kinds)
                .where(~d["rule"].str.contains("kept"), "kept"))
        .sort_values("rows", ascending=False, kind="stable")
        .loc[:, ["label", "table", "rule", "rows", "kind"]]
        .reset_index(drop=True)
    )


def _cleaning_totals(log: pd.DataFrame, rows_before: pd.Series) -> tuple[int, int, int]:
    changes = cleaning_changes(log)
    dropped = int(changes.loc[lambda d: d["kind"] == "dropped", "rows"].sum())
    changed = int(changes.loc[lambda d: d["kind"] == "changed", "rows"].sum())
    return dropped, changed, int(rows_before.sum())


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
    dropped, dropped_pct (percent of rows read)."""
    return (
        pd.DataFrame({"rows_read": before, "rows_written": after})
        .fillna(0).astype("int64")
        .rename_axis("table").reset_index()
        .assign(table=lambda d: d["table"].astype("str"),
                dropped=lambda d: d["rows_read"] - d["rows_written"],
                dropped_pct=lambda d: (100 * d["dropped"] / d["rows_read"].where(d["rows_read"] > 0)).round(2))
    )


def tables_note(rows: pd.DataFrame, processed_dir: str | Path) -> str:
    """Markdown: what was written to the processed folder (from `rows_table`)."""
    kept = int(rows["rows_written"].sum())
    return (
        f"Both gates passed, so **{_plural(len(rows), 'table')} with {kept:,} rows** "
        f"{'was' if len(rows) == 1 else 'were'} written as "
        f"Parquet to `{processed_dir}` (replacing the previous version in one step). The analysis "
        "notebooks read them from there."
    )


def data_docs_note(pages: list, run_dir: str | Path) -> str:
    """Markdown with links to the Data Docs pages (relative to run_dir, where the report lives)."""
    links = [
        f"[{Path(p).parent.name} gate]({Path(os.path.relpath(p, run_dir)).as_posix()})"
        for p in pages if p is not None
    ]
    if not links:
        return "No Data Docs were written for this run."
    return (
        "Great Expectations Data Docs with every expectation and its result: " + " · ".join(links)
        + ". They load their styles from the internet; the tables above show the same results offline."
    )


def write_contact_list(contacts: pd.DataFrame, run_dir: str | Path, *, name: str = "contact_list.csv") -> Path:
    """Write the service team's call-back list (`moments.contact_list_export`: CRM number,
    pseudonym, channel, topic; no names or contact details) as UTF-8 CSV to run_dir/<name>,
    atomically. Reports show only its counts. Returns the path written."""
    return write_text(Path(run_dir) / name, contacts.to_csv(index=False))
