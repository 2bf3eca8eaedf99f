"""One mapping entry: its files -> staged rows of its table, batch by batch.

`entry_batches(entry, files, taxonomy, mapping, note, batch_rows)` opens the entry's files
(checking every file's columns first), stacks their rows file by file into batches of at most
`batch_rows` source rows and maps each batch: `where`, `join`, `melt`, the canonical columns
(`columns.column_values`), customer numbers, `test_accounts`, `pii`, the CSAT scale and the
lineage `_file`, `_row`. It yields the staged frames (the columns of `out_columns(table)`,
typed as `staged_dtypes(table)`). Unparseable values are decided over the whole entry once its
last batch is mapped (`BadValues.decide`).

Two steps need more than one batch: a `join` reads its lookup file once per entry (the columns
it uses, chunk by chunk, into Parquet parts on disk, where DuckDB finds the repeated keys and each
batch's matches: `sources.lookup`; a nested join, several keys or chunks whose columns differ keep
the file in pandas) and an entry with `aggregate` collects its mapped rows, aggregates them at the
end of the entry and yields the result in slices of `batch_rows`.
`where` and `test_accounts` are evaluated row by row within a batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from cxlib import privacy, reshape, schema
from cxlib.config import Taxonomy
from cxlib.prefetch import prefetched
from cxlib.sources.columns import Context, canon_flags, column_values, examples_of, normalise_ids
from cxlib.sources.mapping import (
    CANON, CUSTOMER_EXTRAS, FEEDBACK_EXTRAS, JOINED, LINEAGE, MELT_COL, MELT_POS, MELT_TS, PII_KEYS, SHOWN, WORK_FILE,
    WORK_POS, WORK_ROW, literal, template_fields,
)
from cxlib.sources.lookup import LookupRows, is_text, positions, repeated
from cxlib.sources.read import Files, SourceFile, sheet_note


def entry_batches(entry: dict, files: Files, taxonomy: Taxonomy, mapping: str, note,
                  batch_rows: int) -> Iterator[pd.DataFrame]:
    """The staged rows of `entry` (a checked entry of `load_mapping`) in batches (see the module
    docstring); empty batches are not yielded. `note(step, rule, rows, detail, subject=...)`
    records the log; `note.describe` completes a note's detail at the end."""
    table, options = entry["table"], entry["options"]
    opened = [files.open(p, options, table, entry["label"])
              for p in files.resolve(entry["file"], entry["label"], entry["expect_files"])]
    ctx = Context(mapping, table, entry["label"], options, files.personal, tuple(f.name for f in opened))
    for source in opened:
        _check_columns(source, entry, ctx)
        note("read", "rows read", 0, source.name + sheet_note(source.name, options), subject=source.name)
    columns = list(dict.fromkeys(c for f in opened for c in f.columns))
    lookups: dict[str, tuple] = {}
    collected = []
    for src in _stacked(opened, columns, batch_rows, options, note):
        out = _map_batch(src, columns, entry, files, lookups, ctx, taxonomy, note)
        if entry["aggregate"]:
            collected.append(out)
        elif len(out):
            yield out
    ctx.bad.decide(ctx, note)
    if entry["aggregate"]:
        whole = pd.concat(collected, ignore_index=True) if collected else empty_table(table)
        combined = _aggregate(whole, entry["aggregate"], note).astype(staged_dtypes(table)).reset_index(drop=True)
        del collected, whole
        for start in range(0, len(combined), batch_rows):
            yield combined.iloc[start:start + batch_rows].reset_index(drop=True)


def _stacked(opened: list[SourceFile], columns: list[str], batch_rows: int, options: dict,
             note) -> Iterator[pd.DataFrame]:
    """The rows of the entry's files, file by file, in frames of `batch_rows` rows (a frame may
    end one file and begin the next; a source column of another file is blank there)."""
    pending: list[pd.DataFrame] = []
    count = 0
    for source in opened:
        detail = source.name + sheet_note(source.name, options)
        for chunk in prefetched(source.chunks()):
            note("read", "rows read", len(chunk), detail, subject=source.name)
            while len(chunk):
                taken, chunk = chunk.iloc[:batch_rows - count], chunk.iloc[batch_rows - count:]
                pending.append(taken)
                count += len(taken)
                if count == batch_rows:
                    yield _frame(pending, columns)
                    pending, count = [], 0
    if pending:
        yield _frame(pending, columns)


def _frame(pieces: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frame = pd.concat(pieces, ignore_index=True)
    return frame.assign(**{c: pd.Series(np.nan, index=frame.index, dtype="str") for c in columns
                           if c not in frame.columns})


def _map_batch(src: pd.DataFrame, columns: list[str], entry: dict, files: Files, lookups: dict,
               ctx: Context, taxonomy: Taxonomy, note) -> pd.DataFrame:
    """One batch of the entry's source rows -> staged rows."""
    table = ctx.table
    if entry["where"]:
        keep = _query(src, columns, entry["where"], ctx, "where")
        note("where", "rows left out by where", int((~keep).sum()), entry["where"])
        src = src.loc[keep].reset_index(drop=True)
    specs = dict(entry["columns"])
    if any("row_number" in spec for spec in specs.values()) and len(ctx.files) > 1:
        ctx.fail(f"`row_number` repeats across the {len(ctx.files)} files matched ({', '.join(ctx.files)}); "
                 f"use a template naming the file too, e.g. '{{_file}}-{{_row}}'", file=ctx.files[1])
    for number, join in enumerate(entry["join"] or [], start=1):
        src, join_specs = _join(src, join, files, lookups, ctx, note, str(number), ", ".join(ctx.files))
        specs |= join_specs
    overrides: dict[str, pd.Series] = {}
    if entry["melt"]:
        src, overrides = _melt(src, entry["melt"], set(specs), ctx, note)
        specs[schema.TIMESTAMP] = {"from": MELT_TS, SHOWN: ", ".join(entry["melt"]["timestamps"]),
                                   **({"dates": entry["melt"]["dates"]} if "dates" in entry["melt"] else {})}

    values = {}
    for column in schema.TABLES[table].columns:
        name = schema.CUSTOMER_REF if column.name == schema.CUSTOMER_ID else column.name
        values[name] = column_values(src, name, column, specs.get(name), overrides.get(name), ctx, taxonomy, note)
    if schema.CUSTOMER_REF in values:
        values[schema.CUSTOMER_REF] = normalise_ids(values[schema.CUSTOMER_REF], src, ctx, note)
    out = pd.DataFrame(values, index=src.index)
    if table == "customers":
        out = out.assign(**_customer_extras(src, columns, entry, ctx, note))
    if table == "feedback":
        out = out.assign(**_scale_columns(specs.get(schema.CSAT), out))
    out = out.assign(**{schema.SOURCE_FILE: src[WORK_FILE].astype("str"),
                        schema.SOURCE_ROW: src[WORK_ROW].astype("int64")})
    return out[out_columns(table)].astype(staged_dtypes(table))


# --- staged tables --------------------------------------------------------------------------------
def out_columns(table: str) -> list[str]:
    """The columns of a staged table: canonical (customer_ref for customer_id), extras, lineage."""
    extras = {"customers": CUSTOMER_EXTRAS, "feedback": FEEDBACK_EXTRAS}.get(table, [])
    return schema.staged_columns(table) + extras + LINEAGE


def staged_dtypes(table: str) -> dict[str, str]:
    """Column -> pandas dtype of a staged table."""
    canon = {schema.CUSTOMER_REF if c.name == schema.CUSTOMER_ID else c.name: schema.PANDAS_DTYPES[c.dtype]
             for c in schema.TABLES[table].columns}
    extras = {schema.IS_TEST: "bool", **{c: "str" for c in schema.PII_COLUMNS}} if table == "customers" else {}
    extras |= {schema.CSAT_MIN: "float64"} if table == "feedback" else {}
    return canon | extras | {schema.SOURCE_FILE: "str", schema.SOURCE_ROW: "int64"}


def empty_table(table: str) -> pd.DataFrame:
    """A staged table with every column and zero rows."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in staged_dtypes(table).items()})[out_columns(table)]


def personal_columns(mapping: dict) -> frozenset[str]:
    """Source columns whose values identify a person: the `pii` columns, those mapped (also in
    joins, also inside templates) onto a personal canonical column (`privacy.PERSONAL_COLUMNS`:
    customer_ref, comment, text), and join keys matched to one of them. Messages mask their values."""
    personal: set[str] = set()
    entries = [e for es in mapping["tables"].values() for e in es]
    joins, todo = [], [j for e in entries for j in (e["join"] or [])]
    while todo:
        joins.append(todo.pop())
        todo.extend(joins[-1].get("join") or [])
    for specs in [e["columns"] for e in entries] + [j["specs"] for j in joins]:
        for column, spec in specs.items():
            if column in privacy.PERSONAL_COLUMNS:
                personal |= {spec["from"]} if "from" in spec else set()
                personal |= set(template_fields(spec["template"], lambda p: None)) if "template" in spec else set()
    personal |= {c for e in entries for names in (e["pii"] or {}).values() for c in names}
    personal |= {c for j in joins for pair in j["on"].items() if set(pair) & personal for c in pair}
    return frozenset(personal)


# --- the steps of an entry ------------------------------------------------------------------------
def _scale_columns(spec: dict | None, out: pd.DataFrame) -> dict[str, pd.Series]:
    """csat_max (staged) and csat_min (staged only) from the csat `scale`; without one, csat_max
    stays as mapped (missing means 1-5) and csat_min is missing."""
    if not spec or "scale" not in spec:
        return {schema.CSAT_MIN: pd.Series(np.nan, index=out.index, dtype="float64")}
    low, high = spec["scale"]
    return {schema.CSAT_MIN: pd.Series(float(low), index=out.index), schema.CSAT_MAX: pd.Series(float(high), index=out.index)}


def _aggregate(out: pd.DataFrame, aggregate: dict, note) -> pd.DataFrame:
    """One staged row per key of `aggregate.by`; lineage (_file, _row) of the group's first row,
    is_test when any row is a test account."""
    combined = reshape.aggregate(out, aggregate["by"], aggregate["columns"],
                                 overrides={schema.SOURCE_ROW: "first", schema.SOURCE_FILE: "first", schema.IS_TEST: "max"})
    how = ", ".join(f"{c}: {f}" for c, f in aggregate["columns"].items()) or "first value of every column"
    note("aggregate", "rows combined into one row per key", len(out) - len(combined),
         f"{len(out):,} rows -> {len(combined):,} by {', '.join(aggregate['by'])} ({how}; other columns: first non-blank)")
    return combined


def _query_names(expression: str, columns: list[str]) -> set[str]:
    """Source columns an expression refers to (backticked names and bare identifiers)."""
    tokens = set(re.findall(r"`([^`]+)`", expression)) | set(re.findall(r"\w+", expression))
    return tokens & set(columns)


def _named_columns(entry: dict) -> set[str]:
    """Source columns an entry names explicitly (from, template, pii, melt, join keys)."""
    used = set()
    for spec in entry["columns"].values():
        if "from" in spec:
            used.add(spec["from"])
        if "multiply" in spec:
            used.add(spec["multiply"])
        if "template" in spec:
            used |= set(template_fields(spec["template"], lambda p: None)) - {reshape.ROW_FIELD, reshape.FILE_FIELD}
    for names in (entry["pii"] or {}).values():
        used |= set(names)
    if entry["melt"]:
        used |= {entry["melt"]["id"], *entry["melt"]["timestamps"]}
    for join in entry["join"] or []:
        used |= set(join["on"])
    return used


def _check_columns(source: SourceFile, entry: dict, ctx: Context) -> None:
    """Mapped columns must exist in the file; unmapped ones must be ignored."""
    columns = list(source.columns)
    named = _named_columns(entry)
    missing = sorted(named - set(columns))
    if missing:
        # no mapped column at all in the first row: it may be data (no header row, wrong sep), never quoted
        blind = not named & set(columns)
        present = f"the first row has {len(columns)} field(s), not shown" if blind else f"columns present: {columns}"
        seps = [repr(ch) for ch in (";", "\t", "|", ",") if len(columns) == 1 and ch in columns[0]]
        hint = (f"; the first row was read as one column containing {', '.join(seps)}: is `sep` right?" if seps
                else "; if the file has no header row, set `header: false` with `names: [...]`" if blind else "")
        ctx.fail(f"{source.name}: mapped column(s) {missing} not in the file; {present}{hint}",
                 file=source.name, column=missing[0], rows=[1])
    if entry["ignore"] == "*":
        return
    queried = _query_names(" ".join(filter(None, [entry["where"], entry["test_accounts"]])), columns)
    unmapped = [c for c in columns if c not in named | queried | set(entry["ignore"])]
    if unmapped:
        ctx.fail(f"{source.name}: column(s) {unmapped} are neither mapped nor listed under `ignore` "
                 f"(add them to `ignore` if they are not needed, or use ignore: \"*\")",
                 file=source.name, column=unmapped[0], rows=[1])


def _query(src: pd.DataFrame, columns: list[str], expression: str, ctx: Context, key: str) -> pd.Series:
    """Evaluate a pandas query on the source columns -> boolean mask (missing counts as False)."""
    try:
        result = src[columns].eval(expression, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression; re-raised with context
        ctx.fail(f"`{key}: {expression}` cannot be evaluated on the source columns ({type(exc).__name__}: {exc}); "
                 f"source values are text, e.g. Status == 'storniert'", file=", ".join(ctx.files), column=None)
    if not isinstance(result, pd.Series) or not (pd.api.types.is_bool_dtype(result) or result.isna().all()):
        ctx.fail(f"`{key}: {expression}` does not give true/false per row", file=", ".join(ctx.files))
    return result.astype("boolean").fillna(False).astype(bool)


def _join(src: pd.DataFrame, join: dict, files: Files, lookups: dict, ctx: Context, note, tag: str = "1",
          joined_from: str = "") -> tuple[pd.DataFrame, dict]:
    """Left-join the rows of `src` to a lookup file on `join.on`; returns the frame and the
    join's column specs pointing at the joined columns. The lookup is read whole on the first
    batch and kept in `lookups` for the entry's other batches. A nested `join` is applied to the
    lookup file first (review -> order -> customer); `tag` ("1", "1.1", ...) keeps each hop's
    columns apart; `joined_from` names the files of `src` in messages."""
    prefix = f"{JOINED}{tag}:"
    if tag not in lookups:
        lookups[tag] = _lookup(list(src.columns), join, files, lookups, ctx, note, tag, joined_from)
    right, specs, name = lookups[tag]
    left_keys, right_keys = list(join["on"]), list(join["on"].values())
    merged, matched = _left_join(src, right, left_keys, [prefix + c for c in right_keys])
    detail = f"{name} on {', '.join(f'{a} = {b}' for a, b in join['on'].items())}"
    if join["unmatched"] == "drop":
        note("join", "rows dropped: no match in the joined file", int((~matched).sum()), detail, subject=tag)
        merged = merged.loc[matched]
    else:
        note("join", "rows kept without a match in the joined file (joined columns blank)", int((~matched).sum()),
             detail, subject=tag)
    return merged.reset_index(drop=True), specs


def _left_join(src: pd.DataFrame, right: pd.DataFrame, left_keys: list[str],
               right_keys: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """`src` with the columns of `right` (unique, non-blank keys `right_keys`) of the row whose
    keys equal `left_keys` (blank without a match), and which rows matched; like a left merge.
    A single key of one type is looked up: a text key by a hash join on DuckDB (`_positions`),
    another in the index of `right` kept with it; a merge would hash the whole lookup file again
    in pandas for every batch."""
    src = src.reset_index(drop=True)
    if isinstance(right, LookupRows):
        if len(left_keys) == 1 and is_text(src[left_keys[0]]):
            return _stored_join(src, right, left_keys[0], right_keys[0])
        right = _right_frame(pd.concat(right.frames(), ignore_index=True), right.renamed, right_keys)
    if len(left_keys) == 1 and len(right) and src[left_keys[0]].dtype == right[right_keys[0]].dtype:
        keys, found = src[left_keys[0]], right[right_keys[0]]
        position = positions(keys, found) if is_text(found) else right.index.get_indexer(keys)
        matched = pd.Series(position >= 0)
        found = right.take(np.where(matched, position, 0)).set_axis(src.index)
        found = found if matched.all() else found.mask(~matched, axis=0)
        return pd.concat([src, found], axis=1), matched
    merged = src.merge(right.reset_index(drop=True), how="left", left_on=left_keys, right_on=right_keys,
                       indicator="\0merge")
    return merged.drop(columns="\0merge"), merged["\0merge"].eq("both")


def _stored_join(src: pd.DataFrame, rows: LookupRows, left_key: str, right_key: str) -> tuple[pd.DataFrame, pd.Series]:
    """`_left_join` on a lookup kept on disk: the matches of the batch's text key from DuckDB,
    taken and blanked as from the lookup frame."""
    stored = {shown: column for column, shown in rows.renamed.items()}
    fetched, at = rows.matches(src[left_key], stored[right_key], list(rows.renamed))
    hit = np.zeros(len(src), dtype=bool)
    hit[at] = True
    matched = pd.Series(hit)
    base = (fetched if len(fetched) else rows.first[list(rows.renamed)]).rename(columns=rows.renamed)
    found = base.take(np.where(hit, np.cumsum(hit) - 1, 0)).set_axis(src.index)
    found = found if matched.all() else found.mask(~matched, axis=0)
    return pd.concat([src, found], axis=1), matched


def _right_frame(other: pd.DataFrame, renamed: dict, right_keys: list[str]) -> pd.DataFrame:
    """The lookup rows with a key (`right_keys`, renamed) and the carried columns renamed apart,
    indexed by a single key."""
    right = other[[c for c in renamed if c in other.columns]].rename(columns=renamed)
    right = right.loc[right[right_keys].notna().all(axis=1)]
    return right.set_axis(pd.Index(right[right_keys[0]]) if len(right_keys) == 1 else pd.RangeIndex(len(right)))


def _refuse_repeated(bad: pd.DataFrame, right_keys: list[str], name: str, ctx: Context) -> None:
    """Stop on a lookup key that rows `bad` share (file, column and rows in the message)."""
    if len(bad):
        keys = bad[right_keys].astype("str").agg(" | ".join, axis=1)
        shown = examples_of(bad, keys, " | ".join(right_keys), personal=bool(set(right_keys) & ctx.personal))
        ctx.fail(f"join file {name}: key {right_keys} is not unique ({len(bad)} rows share a key); "
                 f"first rows: {shown}",
                 file=str(bad[WORK_FILE].iloc[0]), column=right_keys[0], rows=bad[WORK_ROW].tolist())


def _lookup(columns: list[str], join: dict, files: Files, lookups: dict, ctx: Context, note, tag: str,
            joined_from: str) -> tuple[pd.DataFrame, dict, str]:
    """The lookup side of a join, read whole and checked: (rows with their key and carried
    columns renamed apart, the join's column specs, the lookup's file names)."""
    where = f"{ctx.label} join" + ("" if tag == "1" else f" {tag}")
    prefix = f"{JOINED}{tag}:"
    opened = [files.open(p, join["options"], ctx.table, where) for p in files.resolve(join["file"], where)]
    left_keys, right_keys = list(join["on"]), list(join["on"].values())
    needed = list(dict.fromkeys(right_keys + [s["from"] for s in join["specs"].values() if "from" in s]))
    chunks = (chunk for f in opened for chunk in f.chunks())
    if join["join"] or len(right_keys) != 1:          # nested joins need every column; several keys: pandas
        other = pd.concat(list(chunks), ignore_index=True)
    else:                                              # the columns a join uses, on disk when they can be
        other = LookupRows.collect(chunks, [WORK_FILE, WORK_ROW, *_renamed(needed, prefix)])
    name = ", ".join(f.name for f in opened)
    absent = [c for c in left_keys if c not in columns]
    if absent:
        ctx.fail(f"join {tag} on {name}: key column(s) {absent} not in the file joined from; columns present: "
                 f"{sorted(c for c in columns if not c.startswith(chr(0)))}", file=joined_from, column=absent[0])
    present = set().union(*(f.columns for f in opened))
    missing = [c for c in needed if c not in present]
    if missing:
        ctx.fail(f"join file {name}: column(s) {missing} not in the file; columns present: {sorted(present)}",
                 file=name, column=missing[0], rows=[1])
    inner_specs: dict[str, dict] = {}
    if isinstance(other, LookupRows):
        _refuse_repeated(other.repeated(right_keys[0]), right_keys, name, ctx)
        other.renamed = {c: shown for c, shown in _renamed(needed, prefix).items() if c in other.columns}
        right = other if other.count(right_keys[0]) else _right_frame(
            pd.concat(other.frames(), ignore_index=True), other.renamed, [prefix + k for k in right_keys])
    else:
        for number, inner in enumerate(join["join"], start=1):
            other, specs = _join(other, inner, files, lookups, ctx, note, f"{tag}.{number}", name)
            inner_specs |= specs
        other = other.loc[other[right_keys].notna().all(axis=1)]
        _refuse_repeated(other.loc[repeated(other, right_keys)], right_keys, name, ctx)
        carried = needed + [s["from"] for s in inner_specs.values() if "from" in s]
        right = _right_frame(other, _renamed(carried, prefix), [prefix + k for k in right_keys])
    specs = {col: ({**spec, "from": prefix + spec["from"], SHOWN: spec.get(SHOWN, spec["from"])} if "from" in spec else spec)
             for col, spec in (join["specs"] | inner_specs).items()}
    return right, specs, name


def _renamed(carried: list[str], prefix: str) -> dict[str, str]:
    """Lookup column -> its name in the joined frame, for the carried columns and their flags."""
    return {c: prefix + c for c in carried} | {CANON + c: CANON + prefix + c for c in carried}


def _melt(src: pd.DataFrame, melt: dict, mapped: set[str], ctx: Context, note) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """One wide row -> one row per non-blank timestamp column; returns the long frame and the
    per-row constants of each timestamp column (canonical column -> text series). An unmapped
    single key column (event_id) becomes '<id>-<touchpoint>' (or '<id>-<timestamp column>')."""
    stamps = melt["timestamps"]
    ordered = src.assign(**{WORK_POS: np.arange(len(src))})
    pieces = [
        ordered.loc[ordered[column].notna()].pipe(lambda picked: picked.assign(**{   # (values of an empty pick
            MELT_TS: picked[column], MELT_COL: column, MELT_POS: number,          # would become its rows)
            CANON + MELT_TS: canon_flags(picked, column)}))
        for number, column in enumerate(stamps)
    ]
    long = pd.concat(pieces).sort_values([WORK_POS, MELT_POS], kind="stable").reset_index(drop=True)
    note("melt", "rows made from wide timestamp columns", len(long), ", ".join(stamps))
    targets = sorted({t for consts in stamps.values() for t in consts})
    overrides = {t: long[MELT_COL].map({c: literal(consts[t]) for c, consts in stamps.items() if t in consts})
                 for t in targets}
    key = schema.TABLES[ctx.table].key
    if len(key) == 1 and key[0] not in mapped and key[0] not in overrides:
        label = long[MELT_COL].map({c: str(consts.get(schema.TOUCHPOINT, c)) for c, consts in stamps.items()})
        overrides[key[0]] = long[melt["id"]] + "-" + label
    return long, overrides


def _customer_extras(src: pd.DataFrame, columns: list[str], entry: dict, ctx: Context, note) -> dict:
    """is_test from `test_accounts`; pii_name / pii_email / pii_phone from `pii`."""
    extras = {schema.IS_TEST: pd.Series(False, index=src.index)}
    if entry["test_accounts"]:
        flagged = _query(src, columns, entry["test_accounts"], ctx, "test_accounts")
        note("test_accounts", "rows flagged as test accounts", int(flagged.sum()), entry["test_accounts"])
        extras[schema.IS_TEST] = flagged
    for key, target in PII_KEYS.items():
        names = (entry["pii"] or {}).get(key)
        if not names:
            extras[target] = pd.Series(np.nan, index=src.index, dtype="str")
            continue
        joined = src[names[0]].fillna("")
        for name in names[1:]:
            joined = joined.str.cat(src[name].fillna(""), sep=" ")
        joined = joined.str.replace(r"\s+", " ", regex=True).str.strip()
        extras[target] = joined.mask(joined.eq(""))
    return extras

