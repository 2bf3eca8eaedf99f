"""What stage 01 (validation and cleaning) tells its reader, in English or German: the files read,
the two gates, what cleaning dropped and changed, the tables written, and the findings that open
the report. Each function takes the frames the stage already has and returns Markdown text, a
table to show or a figure; the words come from the locale files (`ingest.*`).

    describe_gate(raw_gate, "de")     -> 'Die Prüfstufe **Rohdaten** führte **155 Prüfungen** …'
    rows_table(rows_read, row_counts(processed))
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cxlib import locale, style

_OUTCOME_ORDER = {"failed": 0, "warned": 1, "passed": 2}
_BOOKKEEPING_RULES = ("customer ids pseudonymised", "stage derived from touchpoint")
_LISTED = 8                # failed and warned checks listed in a gate note


def _t(lang: str) -> dict:
    return locale.texts(locale.check_lang(lang))["ingest"]


def _count(n: int, word: str, lang: str) -> str:
    """'1 file', '2 files' (de '2 Dateien'), the number formatted for `lang`."""
    forms = _t(lang)[word]
    return (forms["one"] if n == 1 else forms["many"]).format(n=locale.format_number(int(n), lang))


# --- inputs -------------------------------------------------------------------------------------
def row_counts(tables: Mapping[str, pd.DataFrame]) -> pd.Series:
    """Rows per table: Series table -> rows (int64), in the order given."""
    return pd.Series({name: len(df) for name, df in tables.items()}, dtype="int64", name="rows")


def inputs_record(inputs: pd.DataFrame, rows: pd.Series) -> dict:
    """The `inputs` section of results.json: files read (file, table, rows, bytes, sha256) and
    rows per staged table (`rows`: table -> rows)."""
    return {"files": inputs, "rows": rows.rename("rows").astype("int64")}


def describe_inputs(inputs: pd.DataFrame, log: pd.DataFrame, lang: str = "en") -> str:
    """Markdown: how many files and rows were read into which tables, and what the mapping did.
    `inputs`: file, table, rows, bytes; `log`: table, step, rule, rows, detail."""
    t = _t(lang)
    if inputs.empty:
        return t["no_inputs"]
    number = locale.format_number
    per_table = inputs.groupby("table", sort=False)["rows"].sum()
    applied = log.loc[lambda d: d["rows"] > 0]
    top = applied.loc[lambda d: d["step"] != "read"].sort_values("rows", ascending=False).head(3)
    rules = "; ".join(t["inputs_rule"].format(rule=r.rule, table=r.table, rows=_count(r.rows, "row", lang))
                      for r in top.itertuples(index=False))
    n_files = inputs["file"].nunique()
    text = t["inputs"].format(
        files=_count(n_files, "file", lang), size=number(inputs.drop_duplicates("file")["bytes"].sum() / 1e6, lang, decimals=1),
        verb=t["was"] if n_files == 1 else t["were"], tables=_count(len(per_table), "table", lang),
        per_table=", ".join(f"{name} {number(int(n), lang)}" for name, n in per_table.items()),
        rules=_count(len(log), "rule", lang), applied=number(len(applied), lang))
    return text + (t["inputs_largest"].format(rules=rules) if rules else ".")


def inputs_table(inputs: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """The files read, for readers: file, table, rows, bytes, fingerprint (first 16 characters)."""
    shown = inputs.assign(sha256=lambda d: d["sha256"].astype("str").str[:16]) if "sha256" in inputs.columns else inputs
    return locale.display_table(shown, lang, labels=_t(lang)["inputs_columns"], kinds={"bytes": "count"})


def log_table(log: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """The mapping's or cleaning's log, for readers: table, step (in words), rule, rows, detail."""
    return locale.display_table(log, lang, labels=_t(lang)["log_columns"], codes={"step": _t(lang)["steps"]})


# --- gates --------------------------------------------------------------------------------------
def _expectation(name, lang: str) -> str:
    return _t(lang)["expectations"].get(name) or str(name).removeprefix("expect_").replace("_", " ")


def describe_gate(gate, lang: str = "en") -> str:
    """Markdown interpreting a gate result (`stage`, `status`, `results` with table, column,
    expectation, outcome, unexpected_count): counts by outcome, the failed and warned checks
    (first 8), and what happens next."""
    t = _t(lang)
    results = gate.results
    counts = results["outcome"].value_counts()
    number = locale.format_number
    head = t["gate_head"].format(
        stage=t["stages"].get(gate.stage, gate.stage), checks=_count(len(results), "check", lang),
        tables=_count(results["table"].nunique(), "table", lang), passed=number(int(counts.get("passed", 0)), lang),
        warned=number(int(counts.get("warned", 0)), lang), failed=number(int(counts.get("failed", 0)), lang),
        status=t["outcomes"].get(gate.status, gate.status))
    bad = (results.loc[lambda d: d["outcome"].isin(["failed", "warned"])]
           .assign(_o=lambda d: d["outcome"].map(_OUTCOME_ORDER)).sort_values("_o", kind="stable"))
    listed = "".join(
        "\n- " + t["gate_item"].format(
            outcome=t["outcomes"].get(r.outcome, r.outcome), table=r.table, column=r.column,
            expectation=_expectation(r.expectation, lang),
            rows=t["not_met"] if pd.isna(r.unexpected_count) else _count(int(r.unexpected_count), "row", lang))
        for r in bad.head(_LISTED).itertuples(index=False))
    more = "\n- " + t["gate_more"].format(n=number(len(bad) - _LISTED, lang)) if len(bad) > _LISTED else ""
    tail = t["gate_" + gate.status] if gate.status in ("failed", "warned") else t["gate_passed"]
    return head + listed + more + "\n\n" + tail


def gate_table(results: pd.DataFrame, lang: str = "en"):
    """The gate's results for readers: failed first, then warned, then passed; columns table,
    column, check (in words), severity, outcome, rows not meeting it, share, examples (three,
    escaped and cut); failed rows shaded red, warned orange. Returns a pandas Styler (every row)."""
    t = _t(lang)
    names = t["gate_columns"]
    table = (
        results
        .assign(_order=lambda d: d["outcome"].map(_OUTCOME_ORDER))
        .sort_values(["_order", "table", "column"], kind="stable", na_position="first")
        .loc[:, list(names)]
        .reset_index(drop=True)
    )
    tints = table["outcome"].map({"failed": style.COLOURS["negative_tint"], "warned": style.COLOURS["highlight_tint"]})
    shown = (table
             .assign(expectation=lambda d: d["expectation"].map(lambda e: _expectation(e, lang)),
                     severity=lambda d: d["severity"].map(lambda s: t["severities"].get(s, s)),
                     outcome=lambda d: d["outcome"].map(lambda o: t["outcomes"].get(o, o)))
             .rename(columns=names))
    return (
        shown.style
        .hide(axis="index")
        .format({names["unexpected_percent"]: lambda v: locale.format_percent(v, lang, decimals=2, share=False),
                 names["unexpected_count"]: lambda v: locale.format_number(v, lang),
                 names["examples"]: lambda v: examples_html(v, lang=lang)}, na_rep=locale.text("numbers.missing", lang))
        .apply(lambda row: [f"background-color: {tints[row.name] if isinstance(tints[row.name], str) else 'transparent'}"]
               * len(row), axis=1)
        .set_properties(subset=[names["examples"]], **{"max-width": "30em", "overflow-wrap": "anywhere", "font-size": "0.85em"})
    )


def examples_html(examples, *, shown: int = 3, width: int = 90, lang: str = "en") -> str:
    """The first `shown` of the '; '-separated examples, one per line, each cut at `width`
    characters, HTML-escaped (the full list is in the validation results and Data Docs)."""
    missing = locale.text("numbers.missing", lang)
    if examples is None or (isinstance(examples, float) and pd.isna(examples)) or str(examples) == "":
        return missing
    parts = str(examples).split("; ")
    lines = [html.escape(p if len(p) <= width else p[: width - 1] + "…") for p in parts[:shown]]
    more = "<br>" + _t(lang)["more_examples"].format(n=locale.format_number(len(parts) - shown, lang)) \
        if len(parts) > shown else ""
    return "<br>".join(lines) + more


# --- cleaning -----------------------------------------------------------------------------------
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


def _dropped_share(changes: pd.DataFrame, rows_before: pd.Series) -> tuple[int, int, int, float]:
    dropped = int(changes.loc[lambda d: d["kind"] == "dropped", "rows"].sum())
    changed = int(changes.loc[lambda d: d["kind"] == "changed", "rows"].sum())
    total = int(rows_before.sum())
    return dropped, changed, total, (dropped / total if total else 0.0)


def cleaning_title(log: pd.DataFrame, rows_before: pd.Series, lang: str = "en") -> str:
    """Figure title stating the finding: 'Cleaning dropped 1.2% of rows; most affected: feedback: …'."""
    changes = cleaning_changes(log)
    if changes.empty:
        return _t(lang)["nothing_cleaned_title"]
    share = _dropped_share(changes, rows_before)[3]
    return _t(lang)["cleaning_title"].format(share=locale.format_percent(share, lang), label=changes["label"].iloc[0])


def cleaning_figure(log: pd.DataFrame, rows_before: pd.Series, lang: str = "en"):
    """Bar chart of the rows each cleaning rule dropped, changed, derived or only counted (from
    `cleaning_changes`), titled with the finding; raises schema.Missing when cleaning changed nothing."""
    from cxlib import figures, schema

    changes = cleaning_changes(log)
    if changes.empty:
        raise schema.Missing("cleaning dropped, changed or derived no row")
    colours = {"dropped": style.COLOURS["negative"], "changed": style.COLOURS["primary"],
               "derived": style.COLOURS["secondary"], "kept": style.COLOURS["neutral"]}
    t = _t(lang)
    return figures.bars(changes, category="label", value="rows", tone="kind", colours=colours,
                        title=cleaning_title(log, rows_before, lang), value_label=t["cleaning_axis"],
                        n=int(rows_before.sum()), definition=t["cleaning_definition"], lang=lang)


def describe_cleaning(log: pd.DataFrame, rows_before: pd.Series, lang: str = "en") -> str:
    """Markdown: rows dropped and values changed by cleaning, by rule."""
    t = _t(lang)
    changes = cleaning_changes(log)
    if changes.empty:
        return t["nothing_cleaned"]
    dropped, changed, total, share = _dropped_share(changes, rows_before)
    number = locale.format_number
    reasons = "".join("\n- " + t["cleaning_reason"].format(label=r.label, rows=_count(r.rows, "row", lang),
                                                          kind=t["kinds"].get(r.kind, r.kind))
                      for r in changes.itertuples(index=False))
    return t["cleaning"].format(dropped=number(dropped, lang), total=number(total, lang),
                                share=locale.format_percent(share, lang), changed=number(changed, lang), reasons=reasons)


# --- tables written -----------------------------------------------------------------------------
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


def rows_display(rows: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """`rows_table` for readers: headers in words, counts grouped, the dropped share in percent."""
    return locale.display_table(rows, lang, labels=_t(lang)["rows_columns"], kinds={"dropped_pct": "percent"})


def describe_tables(rows: pd.DataFrame, processed_dir: str | Path, lang: str = "en") -> str:
    """Markdown: what was written to the processed folder (from `rows_table`). A staging folder of
    `cx run` (`.<name>.staging`, see cxlib.folders) is named as such, with the folder it replaces."""
    t = _t(lang)
    written = t["written_tables"].format(tables=_count(len(rows), "table", lang),
                                         rows=locale.format_number(int(rows["rows_written"].sum()), lang),
                                         verb=t["was"] if len(rows) == 1 else t["were"])
    staged = re.fullmatch(r"\.(.+)\.staging", Path(processed_dir).name)
    if staged:
        return t["staged"].format(written=written, final=Path(processed_dir).with_name(staged[1]))
    return t["written"].format(written=written, folder=processed_dir)


def describe_findings(inputs: pd.DataFrame, gates, log: pd.DataFrame, rows: pd.DataFrame, lang: str = "en") -> str:
    """Markdown opening the stage report: files and rows read, the status of each gate, the share
    of rows cleaning dropped, and whether the processed tables were written (both gates not failed).
    `gates`: the gate results in order (raw, processed)."""
    t = _t(lang)
    statuses = {gate.stage: t["outcomes"].get(gate.status, gate.status) for gate in gates}
    missing = locale.text("numbers.missing", lang)
    share = _dropped_share(cleaning_changes(log), rows.set_index("table")["rows_read"])[3]
    ok = all(gate.status != "failed" for gate in gates)
    outcome = (t["outcome_written"].format(rows_written=locale.format_number(int(rows["rows_written"].sum()), lang))
               if ok else t["outcome_stopped"])
    return t["findings"].format(
        files=_count(inputs["file"].nunique(), "file", lang), rows_read=locale.format_number(int(rows["rows_read"].sum()), lang),
        raw_status=statuses.get("raw", missing), processed_status=statuses.get("processed", missing),
        share=locale.format_percent(share, lang), outcome=outcome)
