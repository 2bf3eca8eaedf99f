"""The cleaning log as notes that add up, so the logs of the parts of a table (the customer
buckets `cxlib.ingest` cleans one at a time) combine into the log of the whole table.

A note keeps what a rule did apart until the log is written: the rows it touched, the first of
them by file and row, and the values it found with their counts. `frame` formats the notes of one
part, or combines several parts first (rows and value counts summed, the first rows and the
commonest values taken over all parts, as if the table had been cleaned whole).

    notes = [cleaning_log.note("events", "unknown code: rows dropped", bad_rows,
                               "channel not in 'channels'", values=bad_rows["channel"])]
    cleaning_log.frame(notes)                  # -> table, step, rule, rows, detail
    cleaning_log.frame(*notes_per_bucket)      # the same log for the whole table
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from cxlib import privacy, schema

STEP = "clean"
LOG_COLUMNS = ["table", "step", "rule", "rows", "detail"]
N_WHERE = 3                 # example rows named in a detail
N_VALUES = 5                # commonest values named in a detail
ORDER = schema.STAGED_ORDER


def note(table: str, rule: str, rows, text: str, *, values: pd.Series | None = None,
         counts: Mapping[str, int] | None = None, kind: str = "values") -> dict:
    """One rule's note. `rows`: the affected rows (a frame: counted, its first rows named by
    `_file` and `_row`) or a count. `values`: the values found (index within `rows`), counted.
    `counts`: label -> count for kind "columns" (missing values per column) or "tables"
    (customers derived per table). kind "plain": `text` is the whole detail."""
    frame = rows if isinstance(rows, pd.DataFrame) else None
    n = len(frame) if frame is not None else int(rows)
    found: dict = {}
    if values is not None and len(values):
        order = _order(frame).reindex(values.index) if frame is not None else pd.Series(range(len(values)),
                                                                                       index=values.index)
        grouped = (pd.DataFrame({"value": values.to_numpy(dtype=object), "first": order.to_numpy()})
                   .groupby("value", sort=False, dropna=True)["first"].agg(["size", "min"]))
        found = {v: [int(c), int(f)] for v, c, f in zip(grouped.index, grouped["size"], grouped["min"])}
    if counts is not None:
        found = {label: [int(c), i] for i, (label, c) in enumerate(counts.items())}
    return {"table": table, "step": STEP, "rule": rule, "rows": int(n), "text": text, "kind": kind,
            "where": _where(frame) if frame is not None else [], "counts": found}


def combine(parts: Iterable[list[dict]]) -> list[dict]:
    """The notes of several parts as the notes of the whole: one note per (table, rule, text) in
    the order the parts list them (a note only some parts have goes after the note it follows
    there, or before the one it precedes), rows and counts summed, the first rows over all parts."""
    merged: dict[tuple, dict] = {}
    order: list[tuple] = []
    for notes in parts:
        keys = [(item["table"], item["step"], item["rule"], item["text"]) for item in notes]
        previous = None
        for number, (key, item) in enumerate(zip(keys, notes)):
            if key not in merged:
                merged[key] = {**item, "where": list(item["where"]),
                               "counts": {k: list(v) for k, v in item["counts"].items()}}
                following = next((k for k in keys[number + 1:] if k in merged and k in order), None)
                at = (order.index(previous) + 1 if previous is not None
                      else order.index(following) if following is not None else len(order))
                order.insert(at, key)
            else:
                into = merged[key]
                into["rows"] += item["rows"]
                into["where"] = sorted(into["where"] + item["where"])[:N_WHERE]
                for value, (count, first) in item["counts"].items():
                    old = into["counts"].get(value)
                    into["counts"][value] = [count, first] if old is None else [old[0] + count, min(old[1], first)]
            previous = key
    return [merged[k] for k in order]


def frame(*parts: list[dict]) -> pd.DataFrame:
    """The log (`LOG_COLUMNS`, one row per note) of one part's notes or of several parts combined."""
    notes = combine(parts) if len(parts) != 1 else parts[0]
    rows = [{"table": n["table"], "step": n["step"], "rule": n["rule"], "rows": n["rows"], "detail": detail(n)}
            for n in notes]
    return pd.DataFrame(rows, columns=LOG_COLUMNS).astype({"rows": "int64"})


def detail(item: dict) -> str:
    """A note's detail: its text, the commonest values (": 'fax' x2, 'Taube' x1") or counts, and
    the first rows it touched ("(e.g. contacts.csv row 3, contacts.csv row 7, …)")."""
    counts = item["counts"]
    if item["kind"] == "tables":
        seen = ", ".join(f"{t} {c:,}" for t, (c, _) in sorted(counts.items(), key=lambda kv: kv[1][1]))
        return f"no customers table: one row per customer_ref seen in {seen}; contact_consent False, signup_date empty"
    if item["kind"] == "columns":
        text = ", ".join(f"{c}: {n}" for c, (n, _) in sorted(counts.items(), key=lambda kv: kv[1][1]) if n) \
            or "none missing"
    elif item["kind"] == "values" and counts:
        top = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[:N_VALUES]
        text = item["text"] + ": " + ", ".join(f"{privacy.shown_value(v)} x{c}" for v, (c, _) in top)
    else:
        text = item["text"]
    if not item["where"]:
        return text
    more = ", …" if item["rows"] > N_WHERE else ""
    return f"{text} (e.g. {', '.join(label for _, label in item['where'])}{more})"


def _order(rows: pd.DataFrame) -> pd.Series:
    """Each row's place in the staged table: `_order` when the rows carry it, else their position."""
    if ORDER in rows.columns:
        return rows[ORDER].astype("int64")
    return pd.Series(range(len(rows)), index=rows.index, dtype="int64")


def _where(rows: pd.DataFrame) -> list[tuple[int, str]]:
    """(place, 'file row N') of the first N_WHERE rows, when the rows carry their lineage."""
    if rows.empty or schema.SOURCE_FILE not in rows.columns or schema.SOURCE_ROW not in rows.columns:
        return []
    head = rows.head(N_WHERE)
    labels = (head[schema.SOURCE_FILE].astype("str") + " row " + head[schema.SOURCE_ROW].astype("str")).tolist()
    return list(zip(_order(rows).head(N_WHERE).tolist(), labels))
