"""Cleaning: staged tables -> canonical processed tables, a cleaning log and the restricted
re-identification table.

Rules, in the order applied to each table (each logged with the rows it affected, 0 included):

1. exact duplicate rows (equal in every canonical column; lineage ignored) dropped, first kept;
2. test accounts (customers.is_test) dropped, with every row of other tables that belongs to them;
3. unknown codes (not in the taxonomy): in a required code column (events.channel,
   events.touchpoint) the row is dropped, elsewhere the value is set to missing (a list of
   codes, labels.themes, as a whole when one of its codes is unknown);
4. scores outside `schema.SCORE_RANGES` set to missing, per score; csat outside its own
   scale (`schema.csat_scale`: the mapping's scale, else 1-5), per row;
5. timestamps outside [min_date, now + 1 day]: row dropped if the column is required, else
   set to missing;
6. churn_date before signup_date, responded_at before sent_at: the later one set to missing;
7. missing contact_consent set to False ("missing = no consent");
8. rows missing a required value dropped;
9. events.stage derived from the touchpoint via the taxonomy;
10. events, orders and campaigns of customers not in customers dropped; feedback of unknown
    customers is kept and counted. Without a customers table (absent or empty) one is derived
    first: one customer per customer_ref of the other tables, contact_consent False, logged as
    rows derived (`DERIVED_RULE`); events without a customer_ref are kept;
11. customer_ref replaced by the keyed pseudonym customer_id (see `pseudonymise`).

Labels (comments labelled by hand; no customer column) after rule 8: labels with neither a
sentiment nor themes dropped, labels of responses not in the cleaned feedback dropped (counted,
response ids masked), and each kept label's response_id spelled as its feedback row's is in
processed data.

Duplicate keys whose rows differ (after rule 1) cannot be resolved safely: `clean_tables` raises
CleanError naming the file, key column and example rows, and nothing is written.

    cleaned = clean.clean_tables(staged, taxonomy, config.load_pseudonym_key())
    cleaned.tables["events"]; cleaned.log; cleaned.reidentification
    clean.pseudonymise_staged(staged, key)     # staged tables as the raw gate may show them
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxlib import cleaning_log, engine, privacy, reshape, schema
from cxlib.cleaning_log import LOG_COLUMNS, STEP, note

REIDENTIFICATION_COLUMNS = [schema.CUSTOMER_ID, schema.CUSTOMER_REF, *schema.PII_COLUMNS]
PSEUDONYM_PREFIX = "C"
PSEUDONYM_HEX = 16          # 64 bits: ~3e-8 chance of any collision among 1 million customers
PSEUDONYMS_ON_DUCKDB = 20_000   # distinct numbers from which DuckDB hashes them (a third of Python's
                                # time per number, but about 20 ms to start)
N_WHERE = cleaning_log.N_WHERE
TEXT = schema.PANDAS_DTYPES["string"]
_ORDERED = ((schema.CHURN_DATE, schema.SIGNUP_DATE), (schema.RESPONDED_AT, schema.SENT_AT))


class CleanError(ValueError):
    """A staged table cannot be cleaned (for instance a staged column is missing)."""


@dataclass(frozen=True)
class Cleaned:
    """tables: canonical processed tables (schema columns in order, canonical dtypes; plus
    `_order` when the staged rows carried it); reidentification: customer_id, customer_ref,
    pii_name, pii_email, pii_phone (customers only); log: table, step, rule, rows, detail (one row
    per rule and table); notes: the log as `cleaning_log` notes, which combine over parts;
    responses: staged response_id -> processed response_id of the cleaned feedback (None
    without feedback), for the labels of a part without feedback."""

    tables: dict[str, pd.DataFrame]
    reidentification: pd.DataFrame
    log: pd.DataFrame
    notes: list[dict] = field(default_factory=list)
    responses: pd.Series | None = None


def pseudonymise(refs: pd.Series, key: bytes) -> pd.Series:
    """Keyed pseudonyms of customer numbers: "C" + the first 16 hex digits of
    HMAC-SHA256(key, ref). Stable for the same key, unlinkable without it; NA stays NA.
    64 bits make a collision improbable (about 3e-8 for a million customers); one is detected
    and raised rather than silently merging two customers.

        pseudonymise(pd.Series(["K1", None]), b"secret") -> ["C…16 hex…", <NA>]
    """
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise ValueError("pseudonymise: key must be non-empty bytes (see config.load_pseudonym_key)")
    codes, numbers = pd.factorize(refs.astype(TEXT))          # each number once; NA -> code -1
    pads = _padded_keys(bytes(key))
    ids = (_pseudonyms_on_duckdb(pa.array(numbers, type=pa.large_string()), pads)
           if len(numbers) >= PSEUDONYMS_ON_DUCKDB else pa.array(_pseudonyms_here(numbers, pads), type=pa.large_string()))
    if pc.count_distinct(ids).as_py() < len(ids):
        raise ValueError("pseudonymise: two customer numbers got the same pseudonym; lengthen PSEUDONYM_HEX")
    return pd.Series(pd.array(ids, dtype=TEXT).take(codes, allow_fill=True), index=refs.index)


def _padded_keys(key: bytes) -> dict[str, bytes]:
    """HMAC-SHA256's inner and outer padded keys (RFC 2104, as `hmac.new` makes them)."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    return {"inner": bytes(b ^ 0x36 for b in padded), "outer": bytes(b ^ 0x5C for b in padded)}


def _pseudonyms_here(numbers, pads: dict[str, bytes]) -> list[str]:
    """Texts -> PSEUDONYM_PREFIX + the first PSEUDONYM_HEX hex digits of HMAC-SHA256, in Python
    (the padded keys hashed once, not once per text)."""
    inner, outer = hashlib.sha256(pads["inner"]), hashlib.sha256(pads["outer"])

    def pseudonym(text: str) -> str:
        first = inner.copy()
        first.update(text.encode("utf-8"))
        second = outer.copy()
        second.update(first.digest())
        return PSEUDONYM_PREFIX + second.hexdigest()[:PSEUDONYM_HEX]

    return [pseudonym(text) for text in numbers]


def _pseudonyms_on_duckdb(numbers: pa.Array, pads: dict[str, bytes]) -> pa.ChunkedArray:
    """`_pseudonyms_here` on DuckDB: SHA-256 of the outer padded key and the SHA-256 of the
    inner padded key and the text's UTF-8 bytes, one expression over all texts."""
    query = (f"select '{PSEUDONYM_PREFIX}' || left(sha256($outer || unhex(sha256($inner || encode(n)))), "
             f"{PSEUDONYM_HEX}) as p from numbers")
    with engine.no_progress_bar(duckdb.connect(config={"threads": 1})) as con:
        con.register("numbers", pa.table({"n": numbers}))
        return con.sql(query, params=pads).to_arrow_table()["p"]


def pseudonymise_staged(staged: Mapping[str, pd.DataFrame], key: bytes) -> dict[str, pd.DataFrame]:
    """Staged tables as the raw validation gate may show them in a report: customer_ref holds
    the keyed pseudonym (the same value customer_id gets in processed data), CRM numbers embedded
    in record ids are replaced likewise (a label's response_id as its feedback row's), and the
    PII columns (pii_name, pii_email, pii_phone) are dropped. Everything else, lineage (_file,
    _row) included, is kept, so a reported example row is still found by file and row number.
    Inputs are not modified.

        validate.run_gate(clean.pseudonymise_staged(staged, key), tax, stage="raw")
    """
    out = {}
    for name, df in staged.items():              # a handful of tables; the work per table is vectorised
        personal = [c for c in schema.PII_COLUMNS if c in df.columns]
        if schema.CUSTOMER_REF not in df.columns:
            out[name] = df.drop(columns=personal)
            continue
        refs = df[schema.CUSTOMER_REF]
        pseudonyms = pseudonymise(refs, key)
        table = schema.TABLES.get(name)
        record_ids = [c for c in (table.key if table else ()) if c != schema.CUSTOMER_ID and c in df.columns]
        out[name] = df.drop(columns=personal).assign(
            **{c: _without_refs(df[c], refs, pseudonyms) for c in record_ids}, **{schema.CUSTOMER_REF: pseudonyms})
    if "labels" in out and "feedback" in out and schema.RESPONSE_ID in staged["feedback"].columns:
        ids = pd.Series(out["feedback"][schema.RESPONSE_ID].to_numpy(),
                        index=staged["feedback"][schema.RESPONSE_ID].to_numpy())
        ids = ids.loc[ids.index.notna() & ~ids.index.duplicated()]
        labelled = out["labels"][schema.RESPONSE_ID]
        out["labels"] = out["labels"].assign(**{schema.RESPONSE_ID: labelled.map(ids).fillna(labelled).astype(TEXT)})
    return out


def clean_tables(
    staged: Mapping[str, pd.DataFrame],
    taxonomy,
    key: bytes,
    *,
    min_date: str | pd.Timestamp = schema.MIN_DATE,
    now: pd.Timestamp | None = None,
    derive_customers: bool | None = None,
    customers_known: bool | None = None,
    responses: pd.Series | None = None,
) -> Cleaned:
    """Clean the staged tables present in `staged` (see the module docstring for the rules).

    Input: staged tables (`schema.staged_columns` + `_file`, `_row`; customers also `is_test`,
    `pii_*`; optionally `_order`, kept). Output: Cleaned with canonical tables, re-identification
    table and log. Inputs are not modified.

    A part of the tables (one customer bucket, every row of its customers) is cleaned as the
    whole would be when the whole decides what a part cannot see: `derive_customers` says
    whether customers are derived (the whole staged customers table is empty; None: this part's
    is), `customers_known` whether the whole cleaned customers table has rows, derived ones
    included (True: rows of customers not in this part's customers are unknown, even when the
    part has none; False: nothing is unknown; None: decided from this part), and `responses`
    maps the staged response ids of the whole feedback to the processed ones, for labels cleaned
    without their feedback.
    """
    unknown = sorted(set(staged) - set(schema.TABLES))
    if unknown:
        raise CleanError(f"clean_tables: unknown table(s) {unknown}; canonical tables are {list(schema.TABLES)}")
    for name, df in staged.items():
        _require_columns(name, df)
    staged, derived = _derive_customers(staged) if derive_customers is not False else (dict(staged), [])
    lo = _utc(min_date)
    hi = (_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")) + pd.Timedelta(days=1)
    customers = staged.get("customers")
    test_refs = (
        customers.loc[_is_test(customers), schema.CUSTOMER_REF].dropna().unique()
        if customers is not None else []
    )

    cleaned: dict[str, pd.DataFrame] = {}
    logs: list[dict] = list(derived)
    reid = _reidentification(pd.DataFrame(columns=[schema.CUSTOMER_REF]), key)
    known_refs = None
    if customers_known is True and "customers" not in staged:
        known_refs = pd.Series([], dtype=TEXT)     # the whole has customers, this part none
    for name in (t for t in schema.TABLES if t in staged):     # customers first: they define known refs
        df, rows = _apply(staged[name], _steps(name, taxonomy, test_refs, known_refs, lo, hi, key=key,
                                               responses=responses))
        logs += rows
        if name == "customers":
            reid = _reidentification(df, key)
            whole = len(df) > 0 if customers_known is None else customers_known
            known_refs = df[schema.CUSTOMER_REF].unique() if whole else None   # empty links nothing
        cleaned[name] = _canonical(name, df, key)
        if name == "feedback":        # staged response id -> processed one (a CRM number in it pseudonymised)
            responses = pd.Series(cleaned[name][schema.RESPONSE_ID].to_numpy(), index=df[schema.RESPONSE_ID].to_numpy())
        if schema.TABLES[name].customer_column is not None:
            logs.append(note(name, "customer ids pseudonymised", df[schema.CUSTOMER_REF].notna().sum(),
                             "customer_ref -> customer_id (keyed HMAC-SHA256); lineage columns dropped", kind="plain"))
    return Cleaned(tables=cleaned, reidentification=reid, log=cleaning_log.frame(logs), notes=logs,
                   responses=responses if "feedback" in staged else None)


# --- the rules -------------------------------------------------------------------------------
Step = Callable[[pd.DataFrame], tuple[pd.DataFrame, list[dict]]]


def _steps(name: str, taxonomy, test_refs, known_refs, lo, hi, *, key: bytes = b"",
           responses: pd.Series | None = None) -> list[Step]:
    table = schema.TABLES[name]
    steps: list[Step] = [
        lambda df: _drop_exact_duplicates(df, name),
        lambda df: _refuse_conflicting_keys(df, name, key),
    ]
    if table.customer_column is not None:
        steps.append(lambda df: _drop_test_accounts(df, name, test_refs))
    steps.append(lambda df: _unknown_codes(df, name, taxonomy))
    if any(c in schema.SCORE_RANGES for c in table.names):
        steps.append(lambda df: _scores_out_of_range(df, name))
    steps.append(lambda df: _implausible_timestamps(df, name, lo, hi))
    if any(a in table.names and b in table.names for a, b in _ORDERED):
        steps.append(lambda df: _order_violations(df, name))
    if schema.CONTACT_CONSENT in table.names:
        steps.append(lambda df: _missing_consent(df, name))
    steps.append(lambda df: _missing_required(df, name))
    if name == "events":
        steps.append(lambda df: _derive_stage(df, name, taxonomy))
    if name == "labels":
        steps += [lambda df: _empty_labels(df, name), lambda df: _unknown_responses(df, name, responses)]
    if table.customer_column is not None and name != "customers":
        steps.append(lambda df: _unknown_customers(df, name, known_refs))
    return steps


def _apply(df: pd.DataFrame, steps: list[Step]) -> tuple[pd.DataFrame, list[dict]]:
    logs: list[dict] = []
    for step in steps:
        df, rows = step(df)
        logs += rows
    return df, logs


def _drop_exact_duplicates(df: pd.DataFrame, name: str):
    dup = df.duplicated(subset=schema.staged_columns(name), keep="first")
    return df.loc[~dup], [note(name, "exact duplicate rows dropped", df.loc[dup], "equal in every canonical column, first kept")]


def refuse_conflicting_keys(rows: pd.DataFrame, name: str, key: bytes) -> None:
    """Rules 1 and the duplicate-key check on `rows` of staged table `name` (in table order): raise
    the CleanError `clean_tables` raises when rows share a key but differ elsewhere. For checking
    the rows of repeated keys found across the parts of a table."""
    _refuse_conflicting_keys(_drop_exact_duplicates(rows, name)[0], name, key)


def _refuse_conflicting_keys(df: pd.DataFrame, name: str, key: bytes):
    """Rows sharing a key but differing elsewhere: which one is true is unknowable -> CleanError.
    The message names file, key column, rows and the columns in which the first pair differs;
    customer numbers appear as their keyed pseudonyms (customer_id), never as CRM numbers."""
    staged_key = [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[name].key]
    clash = df[staged_key].notna().all(axis=1) & df.duplicated(subset=staged_key, keep=False)
    if clash.any():
        rows = df.loc[clash].sort_values(staged_key, kind="stable")
        first = rows.loc[rows[staged_key].eq(rows[staged_key].iloc[0]).all(axis=1)]
        differ = [c for c in schema.staged_columns(name) if c not in staged_key and first[c].nunique(dropna=False) > 1]
        shown = rows.head(2 * N_WHERE)
        refs = shown[schema.CUSTOMER_REF] if schema.CUSTOMER_REF in shown.columns else None
        if refs is not None:
            pseudonyms = pseudonymise(refs, key) if key else pd.Series(privacy.MASKED, index=refs.index, dtype=TEXT)
            shown = shown.assign(**{c: _without_refs(shown[c], refs, pseudonyms) for c in staged_key
                                    if c != schema.CUSTOMER_REF}, **{schema.CUSTOMER_ID: pseudonyms})
        columns = [schema.CUSTOMER_ID if c == schema.CUSTOMER_REF else c for c in staged_key]
        files = ", ".join(map(str, rows.get(schema.SOURCE_FILE, pd.Series(["?"])).dropna().unique()[:3]))
        raise CleanError(
            f"{files}: duplicate key in table '{name}', column(s) {staged_key}: {int(clash.sum())} rows share "
            f"a key with another row that differs in other columns (the first pair in: {', '.join(differ)}), "
            f"so neither can be trusted; e.g. {privacy.example_rows(shown, columns, n=2 * N_WHERE)} "
            f"(customer numbers replaced by their pseudonyms). Fix the export or the mapping of the "
            f"key column.")
    return df, [note(name, "conflicting duplicate keys", 0, f"key {staged_key} unique after exact duplicates", kind="plain")]


def _drop_test_accounts(df: pd.DataFrame, name: str, test_refs):
    test = _is_test(df) if name == "customers" else reshape.text_isin(df[schema.CUSTOMER_REF], test_refs)
    detail = "customers.is_test" if name == "customers" else "rows of test accounts"
    return df.loc[~test], [note(name, "test accounts dropped", df.loc[test], detail)]


def _unknown_codes(df: pd.DataFrame, name: str, taxonomy):
    table = schema.TABLES[name]
    logs = []
    for col in table.columns:
        codes = _code_set(taxonomy, col.codes) if col.codes else None
        if codes is None or (name == "events" and col.name == schema.STAGE):   # events.stage is derived
            continue
        if col.separator:             # a list of codes: unknown when one of them is
            parts = df[col.name].dropna().str.split(col.separator, regex=False).explode()
            odd = parts.loc[parts.ne("") & ~parts.isin(codes)]
            unknown = pd.Series(df.index.isin(odd.index), index=df.index)
            values = odd
        else:
            unknown = df[col.name].notna() & ~df[col.name].isin(codes)
            values = df.loc[unknown, col.name]
        rule = "unknown code: rows dropped" if col.required else "unknown code set to missing"
        logs.append(note(name, rule, df.loc[unknown], f"{col.name} not in '{col.codes}'", values=values))
        df = df.loc[~unknown] if col.required else df.assign(**{col.name: df[col.name].mask(unknown)})
    return df, logs


def _scores_out_of_range(df: pd.DataFrame, name: str):
    """nps outside 0-10 and ces outside 1-7 set to missing; csat outside its own scale per row
    (`schema.csat_scale`: csat_min/csat_max from the mapping's scale, else 1-5)."""
    logs = []
    for col, (low, high) in schema.SCORE_RANGES.items():
        if col not in df.columns:
            continue
        if col == schema.CSAT:
            low, high = schema.csat_scale(df)
            scale = "its scale (csat_min-csat_max; 1-5 when not given)"
        else:
            scale = f"{low}-{high}"
        bad = df[col].notna() & ~df[col].between(low, high)
        logs.append(note(name, "out-of-range score set to missing", df.loc[bad], f"{col} outside {scale}",
                         values=df.loc[bad, col]))
        df = df.assign(**{col: df[col].mask(bad)})
    return df, logs


def _implausible_timestamps(df: pd.DataFrame, name: str, lo: pd.Timestamp, hi: pd.Timestamp):
    logs = []
    for col in (c for c in schema.TABLES[name].columns if c.dtype == "datetime"):
        bad = df[col.name].notna() & ~df[col.name].between(lo, hi)
        rule = "implausible timestamp: rows dropped" if col.required else "implausible timestamp set to missing"
        logs.append(note(name, rule, df.loc[bad], f"{col.name} outside {lo:%Y-%m-%d}..{hi:%Y-%m-%d}"))
        df = df.loc[~bad] if col.required else df.assign(**{col.name: df[col.name].mask(bad)})
    return df, logs


def _order_violations(df: pd.DataFrame, name: str):
    logs = []
    for later, earlier in _ORDERED:
        if later not in df.columns or earlier not in df.columns:
            continue
        bad = (df[later] < df[earlier]).fillna(False).astype(bool)
        logs.append(note(name, "timestamp before its predecessor set to missing", df.loc[bad], f"{later} before {earlier}"))
        df = df.assign(**{later: df[later].mask(bad)})
    return df, logs


def _missing_consent(df: pd.DataFrame, name: str):
    missing = df[schema.CONTACT_CONSENT].isna()
    return (
        df.assign(**{schema.CONTACT_CONSENT: df[schema.CONTACT_CONSENT].astype("boolean").fillna(False)}),
        [note(name, "missing consent set to False", missing.sum(), "missing = no consent", kind="plain")],
    )


def _missing_required(df: pd.DataFrame, name: str):
    required = [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[name].required]
    nulls = df[required].isna()
    bad = nulls.any(axis=1)
    return df.loc[~bad], [note(name, "rows missing a required value dropped", df.loc[bad], "",
                               counts=nulls.sum().to_dict(), kind="columns")]


def _derive_stage(df: pd.DataFrame, name: str, taxonomy):
    stage = df[schema.TOUCHPOINT].map(taxonomy.stage_of_touchpoint).astype(TEXT)
    changed = stage.fillna("") != df[schema.STAGE].astype(TEXT).fillna("")
    return df.assign(**{schema.STAGE: stage}), [
        note(name, "stage derived from touchpoint", changed.sum(), "rows whose stage was set or changed", kind="plain")]


def _unknown_customers(df: pd.DataFrame, name: str, known_refs):
    rule = "feedback of unknown customers kept" if name == "feedback" else "rows of unknown customers dropped"
    if known_refs is None:
        return df, [note(name, rule, 0, "not applied: no customers table (or an empty one)", kind="plain")]
    ref = df[schema.CUSTOMER_REF]
    unknown = ref.notna() & ~reshape.text_isin(ref, known_refs)
    logs = [note(name, rule, df.loc[unknown], "customer_ref not in customers")]
    return (df if name == "feedback" else df.loc[~unknown]), logs    # feedback: someone not (yet) in the CRM


def _empty_labels(df: pd.DataFrame, name: str):
    """Labels with neither a sentiment nor themes (both missing, e.g. after unknown codes) say nothing."""
    empty = df[schema.SENTIMENT].isna() & df[schema.THEMES].isna()
    return df.loc[~empty], [note(name, "labels without sentiment or themes dropped", df.loc[empty],
                                 "sentiment and themes missing")]


def _unknown_responses(df: pd.DataFrame, name: str, responses: pd.Series | None):
    """Labels of responses not in the cleaned feedback are dropped (their ids are not shown: they
    may hold customer numbers); kept labels take the processed spelling of their response id.
    `responses`: staged response id -> processed response id of the cleaned feedback."""
    rule = "labels of responses not in feedback dropped"
    if responses is None:
        return df, [note(name, rule, 0, "not applied: no feedback table", kind="plain")]
    ids = df[schema.RESPONSE_ID]
    unknown = ~reshape.text_isin(ids, responses.index)
    kept = df.loc[~unknown]
    return (kept.assign(**{schema.RESPONSE_ID: kept[schema.RESPONSE_ID].map(responses).astype(TEXT)}),
            [note(name, rule, df.loc[unknown], "response_id not in feedback")])


# --- customers derived from the other tables ------------------------------------------------
DERIVED_RULE = "rows derived: one customer per customer_ref of the other tables"
DERIVED_RANK = 2 ** 52      # `_order` of a derived customer: rank of the table first seen in x this + `_order` there


def _derive_customers(staged: Mapping[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], list[dict]]:
    """No customers table (absent or empty) but customer_refs in other tables: a staged customers
    table with one row per ref, in order of first appearance (events, feedback, orders,
    campaigns), contact_consent False, everything else empty, lineage of the row it was first
    seen in. Returns the tables (unchanged when nothing is derived) and the log entry."""
    customers = staged.get("customers")
    others = [t for t in schema.TABLES if t != "customers" and t in staged and len(staged[t])
              and schema.TABLES[t].customer_column is not None]
    if (customers is not None and len(customers)) or not others:
        return dict(staged), []
    lineage = [schema.SOURCE_FILE, schema.SOURCE_ROW]
    ordered = all(schema.STAGED_ORDER in staged[t].columns for t in others)
    carried = [schema.CUSTOMER_REF, *lineage, *([schema.STAGED_ORDER] if ordered else [])]
    seen = (pd.concat([staged[t].reindex(columns=carried).assign(_table=t) for t in others], ignore_index=True)
            .dropna(subset=[schema.CUSTOMER_REF])
            .drop_duplicates(schema.CUSTOMER_REF)
            .reset_index(drop=True))
    if seen.empty:
        return dict(staged), []
    dtypes = {n: schema.PANDAS_DTYPES[c.dtype] for n, c in
              zip(schema.staged_columns("customers"), schema.TABLES["customers"].columns)}
    derived = (pd.DataFrame(index=seen.index, columns=list(dtypes))
               .assign(**{schema.CUSTOMER_REF: seen[schema.CUSTOMER_REF], schema.CONTACT_CONSENT: False})
               .astype(dtypes)
               .assign(**{schema.IS_TEST: False},
                       **{c: pd.Series(pd.NA, index=seen.index, dtype=TEXT) for c in schema.PII_COLUMNS},
                       **{schema.SOURCE_FILE: seen[schema.SOURCE_FILE].astype(TEXT),
                          schema.SOURCE_ROW: seen[schema.SOURCE_ROW].fillna(0).astype("int64")}))
    if ordered:     # first seen in events before feedback, ...: the table's rank, then the row's place
        rank = seen["_table"].map({t: i for i, t in enumerate(schema.TABLES)}).astype("int64")
        derived = derived.assign(**{schema.STAGED_ORDER: rank * DERIVED_RANK + seen[schema.STAGED_ORDER].astype("int64")})
    per_table = seen["_table"].value_counts().reindex(others).dropna().astype(int)
    return {**staged, "customers": derived}, [note("customers", DERIVED_RULE, len(derived), "",
                                                   counts=per_table.to_dict(), kind="tables")]


# --- output ----------------------------------------------------------------------------------
def _canonical(name: str, df: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Swap customer_ref for the pseudonym, keep the schema columns in order, cast dtypes."""
    table = schema.TABLES[name]
    columns = table.names + ([schema.STAGED_ORDER] if schema.STAGED_ORDER in df.columns else [])
    if table.customer_column is None:
        return (df.loc[:, columns].astype({c.name: schema.PANDAS_DTYPES[c.dtype] for c in table.columns})
                .reset_index(drop=True))
    pseudonyms = pseudonymise(df[schema.CUSTOMER_REF], key)
    record_ids = [c for c in table.key if c != schema.CUSTOMER_ID]
    return (
        df.assign(**{schema.CUSTOMER_ID: pseudonyms})
        .assign(**{c: _without_refs(df[c], df[schema.CUSTOMER_REF], pseudonyms) for c in record_ids})
        .loc[:, columns]
        .astype({c.name: schema.PANDAS_DTYPES[c.dtype] for c in table.columns})
        .reset_index(drop=True)
    )


def _without_refs(ids: pd.Series, refs: pd.Series, pseudonyms: pd.Series) -> pd.Series:
    """Record ids built from the customer number (e.g. '<customer number>-cancellation' from a
    melted CRM row) get the pseudonym in its place, so no CRM number survives in processed data."""
    text = ids.astype(TEXT)
    hits = pd.Series(_embedded(text, refs.astype(TEXT)), index=ids.index)
    if not hits.any():
        return ids
    replaced = [re.sub(re.escape(r), p, i, flags=re.IGNORECASE)
                for i, r, p in zip(text[hits], refs[hits], pseudonyms[hits])]
    return text.mask(hits, pd.Series(replaced, index=text.index[hits], dtype=TEXT))


def _embedded(ids: pd.Series, refs: pd.Series) -> np.ndarray:
    """Per row: the customer number occurs in the record id, in any case (`str.casefold`; refs
    are normalised, ids not). Vectorised on DuckDB where both are ASCII (lower case is case
    folding there), row by row otherwise."""
    present = (ids.notna() & refs.notna()).to_numpy(dtype=bool)
    if not present.any():
        return present
    pair = pa.table({"i": pa.array(ids.astype(TEXT).array), "r": pa.array(refs.astype(TEXT).array)})
    with engine.no_progress_bar(duckdb.connect(config={"threads": 1})) as con:
        con.register("pair", pair)
        found = present & con.sql("select coalesce(contains(lower(i), lower(r)), false) as f from pair").fetchnumpy()["f"]
    ascii_ = (ids.fillna("").str.isascii() & refs.fillna("").str.isascii()).to_numpy(dtype=bool)
    other = present & ~ascii_
    if other.any():
        found[other] = [r.casefold() in i.casefold() for i, r in zip(ids[other], refs[other])]
    return found


def _reidentification(customers: pd.DataFrame, key: bytes) -> pd.DataFrame:
    order = [schema.STAGED_ORDER] if schema.STAGED_ORDER in customers.columns else []
    return (
        customers.reindex(columns=[schema.CUSTOMER_REF, *schema.PII_COLUMNS, *order])
        .assign(**{schema.CUSTOMER_ID: lambda d: pseudonymise(d[schema.CUSTOMER_REF], key)})
        .loc[:, REIDENTIFICATION_COLUMNS + order]
        .astype({c: TEXT for c in REIDENTIFICATION_COLUMNS})
        .reset_index(drop=True)
    )


# --- helpers ---------------------------------------------------------------------------------
def _require_columns(name: str, df: pd.DataFrame) -> None:
    missing = [c for c in schema.staged_columns(name) if c not in df.columns]
    if missing:
        files = ", ".join(map(str, df[schema.SOURCE_FILE].dropna().unique()[:3])) if schema.SOURCE_FILE in df.columns else "?"
        raise CleanError(f"clean_tables: staged table '{name}' (from {files}) lacks column(s) {missing}")


def _is_test(customers: pd.DataFrame) -> pd.Series:
    if schema.IS_TEST not in customers.columns:
        return pd.Series(False, index=customers.index)
    return customers[schema.IS_TEST].astype("boolean").fillna(False).astype(bool)


def _code_set(taxonomy, section: str) -> tuple[str, ...] | None:
    """Allowed codes of a Column.codes section; None when the taxonomy has no such section."""
    if section in schema.CODE_SETS:
        return tuple(schema.CODE_SETS[section])
    return tuple(taxonomy.codes(section)) if section in taxonomy.data else None


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
