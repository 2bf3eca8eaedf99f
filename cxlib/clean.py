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
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from cxlib import privacy, schema

STEP = "clean"
LOG_COLUMNS = ["table", "step", "rule", "rows", "detail"]
REIDENTIFICATION_COLUMNS = [schema.CUSTOMER_ID, schema.CUSTOMER_REF, *schema.PII_COLUMNS]
PSEUDONYM_PREFIX = "C"
PSEUDONYM_HEX = 16          # 64 bits: ~3e-8 chance of any collision among 1 million customers
N_WHERE = 3                 # example rows named in a log detail
TEXT = schema.PANDAS_DTYPES["string"]
_ORDERED = ((schema.CHURN_DATE, schema.SIGNUP_DATE), (schema.RESPONDED_AT, schema.SENT_AT))


class CleanError(ValueError):
    """A staged table cannot be cleaned (for instance a staged column is missing)."""


@dataclass(frozen=True)
class Cleaned:
    """tables: canonical processed tables (schema columns in order, canonical dtypes);
    reidentification: customer_id, customer_ref, pii_name, pii_email, pii_phone (customers only);
    log: table, step, rule, rows, detail (one row per rule and table)."""

    tables: dict[str, pd.DataFrame]
    reidentification: pd.DataFrame
    log: pd.DataFrame


def pseudonymise(refs: pd.Series, key: bytes) -> pd.Series:
    """Keyed pseudonyms of customer numbers: "C" + the first 16 hex digits of
    HMAC-SHA256(key, ref). Stable for the same key, unlinkable without it; NA stays NA.
    64 bits make a collision improbable (about 3e-8 for a million customers); one is detected
    and raised rather than silently merging two customers.

        pseudonymise(pd.Series(["K1", None]), b"secret") -> ["C…16 hex…", <NA>]
    """
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise ValueError("pseudonymise: key must be non-empty bytes (see config.load_pseudonym_key)")
    text = refs.astype(TEXT)
    ids = {
        ref: PSEUDONYM_PREFIX + hmac.new(bytes(key), ref.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
        for ref in text.dropna().unique()
    }
    if len(set(ids.values())) < len(ids):
        raise ValueError("pseudonymise: two customer numbers got the same pseudonym; lengthen PSEUDONYM_HEX")
    return text.map(ids, na_action="ignore").astype(TEXT)


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
) -> Cleaned:
    """Clean the staged tables present in `staged` (see the module docstring for the rules).

    Input: staged tables (`schema.staged_columns` + `_file`, `_row`; customers also `is_test`,
    `pii_*`). Output: Cleaned with canonical tables, re-identification table and log.
    Inputs are not modified.
    """
    unknown = sorted(set(staged) - set(schema.TABLES))
    if unknown:
        raise CleanError(f"clean_tables: unknown table(s) {unknown}; canonical tables are {list(schema.TABLES)}")
    for name, df in staged.items():
        _require_columns(name, df)
    staged, derived = _derive_customers(staged)
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
    known_refs = responses = None
    for name in (t for t in schema.TABLES if t in staged):     # customers first: they define known refs
        df, rows = _apply(staged[name], _steps(name, taxonomy, test_refs, known_refs, lo, hi, key=key,
                                               responses=responses))
        logs += rows
        if name == "customers":
            reid = _reidentification(df, key)
            known_refs = df[schema.CUSTOMER_REF].unique() if len(df) else None   # empty links nothing
        cleaned[name] = _canonical(name, df, key)
        if name == "feedback":        # staged response id -> processed one (a CRM number in it pseudonymised)
            responses = pd.Series(cleaned[name][schema.RESPONSE_ID].to_numpy(), index=df[schema.RESPONSE_ID].to_numpy())
        if schema.TABLES[name].customer_column is not None:
            logs.append(_log(name, "customer ids pseudonymised", df[schema.CUSTOMER_REF].notna().sum(),
                             "customer_ref -> customer_id (keyed HMAC-SHA256); lineage columns dropped"))
    return Cleaned(
        tables=cleaned,
        reidentification=reid,
        log=pd.DataFrame(logs, columns=LOG_COLUMNS).astype({"rows": "int64"}),
    )


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
    return df.loc[~dup], [_log(name, "exact duplicate rows dropped", dup.sum(),
                               _with_where("equal in every canonical column, first kept", df.loc[dup]))]


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
    return df, [_log(name, "conflicting duplicate keys", 0, f"key {staged_key} unique after exact duplicates")]


def _drop_test_accounts(df: pd.DataFrame, name: str, test_refs):
    test = _is_test(df) if name == "customers" else df[schema.CUSTOMER_REF].isin(test_refs)
    detail = "customers.is_test" if name == "customers" else "rows of test accounts"
    return df.loc[~test], [_log(name, "test accounts dropped", test.sum(), _with_where(detail, df.loc[test]))]


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
            values = _value_counts(odd)
        else:
            unknown = df[col.name].notna() & ~df[col.name].isin(codes)
            values = _value_counts(df.loc[unknown, col.name])
        if col.required:
            logs.append(_log(name, "unknown code: rows dropped", unknown.sum(),
                             _with_where(f"{col.name} not in '{col.codes}'{values}", df.loc[unknown])))
            df = df.loc[~unknown]
        else:
            logs.append(_log(name, "unknown code set to missing", unknown.sum(),
                             _with_where(f"{col.name} not in '{col.codes}'{values}", df.loc[unknown])))
            df = df.assign(**{col.name: df[col.name].mask(unknown)})
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
        logs.append(_log(name, "out-of-range score set to missing", bad.sum(),
                         _with_where(f"{col} outside {scale}{_value_counts(df.loc[bad, col])}", df.loc[bad])))
        df = df.assign(**{col: df[col].mask(bad)})
    return df, logs


def _implausible_timestamps(df: pd.DataFrame, name: str, lo: pd.Timestamp, hi: pd.Timestamp):
    logs = []
    for col in (c for c in schema.TABLES[name].columns if c.dtype == "datetime"):
        bad = df[col.name].notna() & ~df[col.name].between(lo, hi)
        detail = _with_where(f"{col.name} outside {lo:%Y-%m-%d}..{hi:%Y-%m-%d}", df.loc[bad])
        if col.required:
            logs.append(_log(name, "implausible timestamp: rows dropped", bad.sum(), detail))
            df = df.loc[~bad]
        else:
            logs.append(_log(name, "implausible timestamp set to missing", bad.sum(), detail))
            df = df.assign(**{col.name: df[col.name].mask(bad)})
    return df, logs


def _order_violations(df: pd.DataFrame, name: str):
    logs = []
    for later, earlier in _ORDERED:
        if later not in df.columns or earlier not in df.columns:
            continue
        bad = (df[later] < df[earlier]).fillna(False).astype(bool)
        logs.append(_log(name, "timestamp before its predecessor set to missing", bad.sum(),
                         _with_where(f"{later} before {earlier}", df.loc[bad])))
        df = df.assign(**{later: df[later].mask(bad)})
    return df, logs


def _missing_consent(df: pd.DataFrame, name: str):
    missing = df[schema.CONTACT_CONSENT].isna()
    return (
        df.assign(**{schema.CONTACT_CONSENT: df[schema.CONTACT_CONSENT].astype("boolean").fillna(False)}),
        [_log(name, "missing consent set to False", missing.sum(), "missing = no consent")],
    )


def _missing_required(df: pd.DataFrame, name: str):
    required = [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[name].required]
    nulls = df[required].isna()
    counts = nulls.sum().loc[lambda s: s > 0]
    detail = ", ".join(f"{c}: {n}" for c, n in counts.items()) or "none missing"
    bad = nulls.any(axis=1)
    return df.loc[~bad], [_log(name, "rows missing a required value dropped", bad.sum(),
                               _with_where(detail, df.loc[bad]))]


def _derive_stage(df: pd.DataFrame, name: str, taxonomy):
    stage = df[schema.TOUCHPOINT].map(taxonomy.stage_of_touchpoint).astype(TEXT)
    changed = stage.fillna("") != df[schema.STAGE].astype(TEXT).fillna("")
    return df.assign(**{schema.STAGE: stage}), [
        _log(name, "stage derived from touchpoint", changed.sum(), "rows whose stage was set or changed")]


def _unknown_customers(df: pd.DataFrame, name: str, known_refs):
    rule = "feedback of unknown customers kept" if name == "feedback" else "rows of unknown customers dropped"
    if known_refs is None:
        return df, [_log(name, rule, 0, "not applied: no customers table (or an empty one)")]
    ref = df[schema.CUSTOMER_REF]
    unknown = ref.notna() & ~ref.isin(known_refs)
    if name == "feedback":        # a response may come from someone not (yet) in the CRM
        return df, [_log(name, rule, unknown.sum(),
                         _with_where("customer_ref not in customers", df.loc[unknown]))]
    return df.loc[~unknown], [_log(name, rule, unknown.sum(),
                                   _with_where("customer_ref not in customers", df.loc[unknown]))]


def _empty_labels(df: pd.DataFrame, name: str):
    """Labels with neither a sentiment nor themes (both missing, e.g. after unknown codes) say nothing."""
    empty = df[schema.SENTIMENT].isna() & df[schema.THEMES].isna()
    return df.loc[~empty], [_log(name, "labels without sentiment or themes dropped", empty.sum(),
                                 _with_where("sentiment and themes missing", df.loc[empty]))]


def _unknown_responses(df: pd.DataFrame, name: str, responses: pd.Series | None):
    """Labels of responses not in the cleaned feedback are dropped (their ids are not shown: they
    may hold customer numbers); kept labels take the processed spelling of their response id.
    `responses`: staged response id -> processed response id of the cleaned feedback."""
    rule = "labels of responses not in feedback dropped"
    if responses is None:
        return df, [_log(name, rule, 0, "not applied: no feedback table")]
    ids = df[schema.RESPONSE_ID]
    unknown = ~ids.isin(responses.index)
    kept = df.loc[~unknown]
    return (kept.assign(**{schema.RESPONSE_ID: kept[schema.RESPONSE_ID].map(responses).astype(TEXT)}),
            [_log(name, rule, unknown.sum(), _with_where("response_id not in feedback", df.loc[unknown]))])


# --- customers derived from the other tables ------------------------------------------------
DERIVED_RULE = "rows derived: one customer per customer_ref of the other tables"


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
    seen = (pd.concat([staged[t].reindex(columns=[schema.CUSTOMER_REF, *lineage]).assign(_table=t) for t in others],
                      ignore_index=True)
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
    per_table = seen["_table"].value_counts().reindex(others).dropna().astype(int)
    detail = (f"no customers table: one row per customer_ref seen in {', '.join(f'{t} {n:,}' for t, n in per_table.items())}; "
              "contact_consent False, signup_date empty")
    return {**staged, "customers": derived}, [_log("customers", DERIVED_RULE, len(derived), detail)]


# --- output ----------------------------------------------------------------------------------
def _canonical(name: str, df: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Swap customer_ref for the pseudonym, keep the schema columns in order, cast dtypes."""
    table = schema.TABLES[name]
    if table.customer_column is None:
        return (df.loc[:, table.names].astype({c.name: schema.PANDAS_DTYPES[c.dtype] for c in table.columns})
                .reset_index(drop=True))
    pseudonyms = pseudonymise(df[schema.CUSTOMER_REF], key)
    record_ids = [c for c in table.key if c != schema.CUSTOMER_ID]
    return (
        df.assign(**{schema.CUSTOMER_ID: pseudonyms})
        .assign(**{c: _without_refs(df[c], df[schema.CUSTOMER_REF], pseudonyms) for c in record_ids})
        .loc[:, table.names]
        .astype({c.name: schema.PANDAS_DTYPES[c.dtype] for c in table.columns})
        .reset_index(drop=True)
    )


def _without_refs(ids: pd.Series, refs: pd.Series, pseudonyms: pd.Series) -> pd.Series:
    """Record ids built from the customer number (e.g. '<customer number>-cancellation' from a
    melted CRM row) get the pseudonym in its place, so no CRM number survives in processed data."""
    text = ids.astype(TEXT)
    embedded = [isinstance(i, str) and isinstance(r, str) and r.casefold() in i.casefold()
                for i, r in zip(text, refs.astype(TEXT))]             # any case: refs are normalised, ids not
    if not any(embedded):
        return ids
    hits = pd.Series(embedded, index=ids.index)
    replaced = [re.sub(re.escape(r), p, i, flags=re.IGNORECASE)
                for i, r, p in zip(text[hits], refs[hits], pseudonyms[hits])]
    return text.mask(hits, pd.Series(replaced, index=text.index[hits], dtype=TEXT))


def _reidentification(customers: pd.DataFrame, key: bytes) -> pd.DataFrame:
    return (
        customers.reindex(columns=[schema.CUSTOMER_REF, *schema.PII_COLUMNS])
        .assign(**{schema.CUSTOMER_ID: lambda d: pseudonymise(d[schema.CUSTOMER_REF], key)})
        .loc[:, REIDENTIFICATION_COLUMNS]
        .astype(TEXT)
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


def _value_counts(values: pd.Series) -> str:
    """": 'fax' x2, 'Taube' x1" for the five commonest values, "" when none."""
    counts = values.value_counts().head(5)
    return ": " + ", ".join(f"{privacy.shown_value(v)} x{n}" for v, n in counts.items()) if len(counts) else ""


def _with_where(detail: str, rows: pd.DataFrame) -> str:
    """Append the first affected rows' file and row number (lineage), when known."""
    if rows.empty or schema.SOURCE_FILE not in rows.columns or schema.SOURCE_ROW not in rows.columns:
        return detail
    head = rows.head(N_WHERE)
    where = (head[schema.SOURCE_FILE].astype("str") + " row " + head[schema.SOURCE_ROW].astype("str")).tolist()
    more = ", …" if len(rows) > N_WHERE else ""
    return f"{detail} (e.g. {', '.join(where)}{more})"


def _log(table: str, rule: str, rows, detail: str) -> dict:
    return {"table": table, "step": STEP, "rule": rule, "rows": int(rows), "detail": detail}


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
