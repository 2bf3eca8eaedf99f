"""The validation gate: Great Expectations suites derived from `schema.TABLES` and the taxonomy.

Two stages (see docs/architecture.md):

- ``raw`` checks the staged tables (``customer_ref``, lineage ``_file``/``_row``) and is
  tolerant: a check on values (codes, scores, required values, plausible timestamps) carries
  ``mostly = 1 - tolerance``. A few bad rows make it *warn* (the run continues and cleaning
  drops or blanks them); more than the tolerance, a required column all empty, a missing
  column or a wrong dtype (datetime, number and boolean columns) makes it *fail*.
- ``processed`` checks the cleaned canonical tables and is strict: every check is critical and
  must hold for 100 % of the rows (for instance duplicate keys that cleaning does not resolve).

Outcome of one check: ``failed`` = a critical check did not succeed; ``warned`` = a warning
check did not succeed, or any check succeeded with some unexpected rows; else ``passed``.
The gate's status is the worst outcome.

One check spans two tables and is computed with pandas beside the suites (a suite sees one
table): every label's ``response_id`` names a feedback row (``REFERENCES``). Raw, a label of
another response is a warning (cleaning drops it); processed, it fails. Its examples show file
and row only, the ids masked (they may hold customer numbers). The theme codes of
``labels.themes`` (a list, ``;``-separated) are checked as a pattern of the taxonomy's codes.

Revenue must be finite and within the bounds of the taxonomy's ``revenue_bounds`` (default
``REVENUE_BOUNDS``) in every row, raw and processed: one absurd value (``Infinity``, ``1e12``)
would dominate every total, so it stops the run rather than being tolerated. Refunds (negative
revenue within the bounds) pass.

Counts in messages state their base: "302 of 15,100 non-missing values (2.0%)" for checks on
values, "3 of 10 rows" for required values. Example values go through `privacy.example_rows`
(personal columns masked, other values scrubbed and shortened).

    gate = validate.run_gate(staged, taxonomy, stage="raw")
    gate.raise_if_failed()          # ValidationFailed names table, column, file and rows

Tables too large for one frame run in parts (e.g. customer buckets) through one `Gate`, which
builds the Great Expectations suites once, and `Gate.combine` adds the parts' counts up to the
result of the whole (see its docstring for what a part cannot see: keys duplicated across parts,
references across tables):

    with validate.Gate(taxonomy, "raw", now=now) as gate:
        whole = gate.combine([gate.run(bucket, references=False) for bucket in buckets])
    whole = validate.with_results(whole, validate.reference_results(whole_labels_and_ids, "raw"))

Great Expectations runs in `gx_suites` and is imported lazily (it costs seconds): ``import
cxlib.validate`` is cheap. The gate writes no files (Great Expectations' Data Docs are not
built: the project's own validation report in notebook 01 shows every check with its examples).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from cxlib import gx_suites, privacy, reshape, schema

STAGES = ("raw", "processed")
CRITICAL = "critical"
WARNING = "warning"
OUTCOMES = ("passed", "warned", "failed")          # in order of severity
RESULT_COLUMNS = [
    "table", "expectation", "column", "severity", "success", "outcome",
    "unexpected_count", "checked", "unexpected_percent", "examples", "description",
]
N_EXAMPLES = 5
REVENUE_BOUNDS = (-100_000.0, 1_000_000.0)     # default plausible revenue per order (taxonomy: revenue_bounds)
LINEAGE = (schema.SOURCE_FILE, schema.SOURCE_ROW)


class ValidationFailed(ValueError):
    """A critical expectation of the validation gate failed; the message names table, column,
    file and example rows."""


@dataclass(frozen=True)
class Check:
    """One expectation of the gate. `kwargs` are the Great Expectations keyword arguments
    (including the column); `column` names the column(s) checked for reports ("a, b" for a
    pair or compound key, None for a table-level check)."""

    table: str
    expectation: str          # Great Expectations snake_case name: expect_column_values_to_be_in_set
    column: str | None
    kwargs: Mapping = field(hash=False)
    severity: str             # "critical" | "warning"
    description: str

    @property
    def columns(self) -> list[str]:
        """The data columns the check reads (empty for table-level checks)."""
        kw = self.kwargs
        if "column" in kw:
            return [kw["column"], *re.findall(r"`([^`]+)`", kw.get("row_condition", ""))]
        if "column_list" in kw and self.expectation != "expect_table_columns_to_match_ordered_list":
            return list(kw["column_list"])
        if "column_A" in kw:
            return [kw["column_A"], kw["column_B"]]
        return []


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate run.

    results: one row per check run, columns `RESULT_COLUMNS`; status: passed | warned | failed;
    failed: "table.column: expectation" of each failed critical check; skipped: canonical tables
    absent from the input (an absent optional table, `labels`, is not listed). In `results`,
    `checked` is the base of `unexpected_percent`: the non-missing values a value check looked at
    (all rows for a required-value check). `checks` and `example_lists` hold, per results row,
    its Check (None for a check across tables) and its examples one by one (for `Gate.combine`).
    """

    stage: str
    results: pd.DataFrame
    status: str
    failed: list[str]
    skipped: list[str]
    checks: tuple = field(default=(), repr=False, compare=False)
    example_lists: tuple = field(default=(), repr=False, compare=False)

    @property
    def warnings(self) -> list[str]:
        """"table.column: expectation" of each check whose outcome is warned."""
        return _labels(self.results.loc[lambda d: d["outcome"] == "warned"])

    def raise_if_failed(self) -> None:
        """Raise ValidationFailed listing every failed critical check with table, column,
        counts and example values with file and row."""
        if self.status != "failed":
            return
        bad = self.results.loc[lambda d: d["outcome"] == "failed"]
        lines = [
            f"- {label} ({row.description}): {_count_text(row)}; e.g. {row.examples}"
            for label, row in zip(_labels(bad), bad.itertuples(index=False))
        ]
        raise ValidationFailed(
            f"validation gate ({self.stage}) failed: {len(bad)} critical expectation(s) not met\n"
            + "\n".join(lines)
        )


# --- building the checks -------------------------------------------------------------------
def build_expectations(
    taxonomy,
    stage: str,
    tolerance: float = 0.02,
    *,
    min_date: str | pd.Timestamp = schema.MIN_DATE,
    now: pd.Timestamp | None = None,
) -> list[Check]:
    """The checks of every canonical table for `stage` ("raw" staged tables, "processed"
    canonical tables), derived from `schema.TABLES` and the taxonomy's code lists.

    Per table: columns present (raw: at least the staged columns; processed: exactly the
    canonical columns in order), dtypes, required values not null, keys unique, codes in the
    taxonomy, scores in `schema.SCORE_RANGES`, timestamps between `min_date` and now + 1 day,
    churn_date >= signup_date and responded_at >= sent_at, revenue finite and within
    `revenue_bounds(taxonomy)` (every row, both stages), lists of codes (labels.themes) matching
    `code_list_pattern`. Raw value checks carry mostly = 1 - tolerance (of the non-missing
    values; required values: of the rows); raw key uniqueness and missing consent are warnings
    only. Checks across tables are not here: see `reference_results`.

        build_expectations(tax, "raw")[0].expectation -> "expect_table_columns_to_match_set"
    """
    _check_stage(stage)
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    lo = _utc(min_date)
    hi = (_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")) + pd.Timedelta(days=1)
    return [
        check
        for table in schema.TABLES.values()
        for check in _table_checks(table, taxonomy, stage, tolerance, lo, hi)
    ]


def _table_checks(table: schema.Table, taxonomy, stage: str, tolerance: float,
                  lo: pd.Timestamp, hi: pd.Timestamp) -> list[Check]:
    raw = stage == "raw"
    names = schema.staged_columns(table.name) if raw else table.names
    staged = dict(zip(table.names, names))            # canonical name -> name in this stage
    share = f"at least {1 - tolerance:.0%} of non-missing values" if raw else "all non-missing values"
    share_rows = f"at least {1 - tolerance:.0%} of rows" if raw else "all rows"
    tolerant = {"mostly": 1 - tolerance} if raw and tolerance > 0 else {}
    t = table.name

    def check(expectation, column, kwargs, description, severity=CRITICAL):
        return Check(t, expectation, column, dict(kwargs), severity, description)

    checks = [
        check("expect_table_columns_to_match_set", None,
              {"column_set": names, "exact_match": False},
              "all canonical columns present (extra columns allowed)")
        if raw else
        check("expect_table_columns_to_match_ordered_list", None, {"column_list": names},
              "exactly the canonical columns, in schema order"),
    ]
    for col in table.columns:
        name = staged[col.name]
        if raw and col.dtype == "string":
            continue                                   # staged text columns: any string dtype
        dtype = schema.PANDAS_DTYPES[col.dtype]
        checks.append(check("expect_column_type_to_be", name, {"column": name, "type_": dtype},
                            f"dtype {dtype}"))
    for name in (staged[c] for c in table.required):
        if name == schema.CONTACT_CONSENT and raw:
            checks.append(check("expect_column_values_to_not_be_null", name, {"column": name},
                                "consent recorded (missing consent is cleaned to False)", WARNING))
        else:
            checks.append(check("expect_column_values_to_not_be_null", name,
                                {"column": name, **tolerant}, f"required value present in {share_rows}"))
    key = [staged[c] for c in table.key]
    key_kwargs = {"column": key[0]} if len(key) == 1 else {"column_list": key}
    checks.append(check(
        "expect_column_values_to_be_unique" if len(key) == 1 else "expect_compound_columns_to_be_unique",
        ", ".join(key),
        {**key_kwargs, **tolerant},
        "key unique (exact duplicate rows are dropped by cleaning)" if raw else "key unique",
        WARNING if raw else CRITICAL,
    ))
    for col in table.columns:
        codes = _code_set(taxonomy, col.codes) if col.codes else None
        if codes is None or (raw and (t, col.name) == ("events", schema.STAGE)):
            continue                                   # staged events.stage is ignored: cleaning derives it
        name = staged[col.name]
        if col.separator:
            checks.append(check("expect_column_values_to_match_regex", name,
                                {"column": name, "regex": code_list_pattern(codes, col.separator), **tolerant},
                                f"lists of '{col.codes}' codes ('{col.separator}'-separated) in {share}"))
            continue
        checks.append(check("expect_column_values_to_be_in_set", name,
                            {"column": name, "value_set": list(codes), **tolerant},
                            f"codes of '{col.codes}' in {share}"))
    for col in table.columns:
        if col.name == schema.CSAT:
            checks += [check(e, c, {**kw, **tolerant}, f"{d} in {share}") for e, c, kw, d in _csat_checks()]
        elif col.name in schema.SCORE_RANGES:
            low, high = schema.SCORE_RANGES[col.name]
            checks.append(check("expect_column_values_to_be_between", col.name,
                                {"column": col.name, "min_value": low, "max_value": high, **tolerant},
                                f"score within {low}-{high} in {share}"))
    for col in table.columns:
        if col.dtype == "datetime":
            checks.append(check("expect_column_values_to_be_between", col.name,
                                {"column": col.name, "min_value": lo, "max_value": hi, **tolerant},
                                f"timestamp between {lo:%Y-%m-%d} and {hi:%Y-%m-%d} in {share}"))
    if schema.REVENUE in table.names:
        low, high = revenue_bounds(taxonomy)
        checks.append(check("expect_column_values_to_be_between", schema.REVENUE,
                            {"column": schema.REVENUE, "min_value": low, "max_value": high},
                            f"revenue finite and within {low:,.0f} to {high:,.0f} (revenue_bounds) "
                            f"in all non-missing values"))
    for later, earlier in _ORDERED:
        if later in table.names and earlier in table.names:
            checks.append(check("expect_column_pair_values_a_to_be_greater_than_b",
                                f"{later}, {earlier}",
                                {"column_A": later, "column_B": earlier, "or_equal": True,
                                 "ignore_row_if": "either_value_is_missing", **tolerant},
                                f"{later} not before {earlier} in {share}"))
    return checks


_ORDERED = ((schema.CHURN_DATE, schema.SIGNUP_DATE), (schema.RESPONDED_AT, schema.SENT_AT))
# (table, column, referenced table, referenced column): checked across tables by `reference_results`
REFERENCES = (("labels", schema.RESPONSE_ID, "feedback", schema.RESPONSE_ID),)


def code_list_pattern(codes: Iterable[str], separator: str = schema.LIST_SEPARATOR) -> str:
    """Regular expression of a list of codes joined by `separator` ('' = the empty list).

        re.fullmatch(code_list_pattern(["a", "b"]), "b;a") -> match; "a;x", "a;" -> None
    """
    one = "(?:" + "|".join(re.escape(c) for c in codes) + ")"
    return f"^(?:{one}(?:{re.escape(separator)}{one})*)?$"


def _csat_checks() -> list[tuple[str, str, dict, str]]:
    """CSAT within each answer's own scale (`schema.csat_scale`): 1-5 where csat_max is missing,
    at most csat_max, at least csat_min (staged only) and never below 0."""
    csat, top, bottom = schema.CSAT, schema.CSAT_MAX, schema.CSAT_MIN
    low, high = schema.SCORE_RANGES[csat]
    pair = {"or_equal": True, "ignore_row_if": "either_value_is_missing"}
    return [
        ("expect_column_values_to_be_between", csat,
         {"column": csat, "min_value": low, "max_value": high, "row_condition": f"`{top}`.isnull()",
          "condition_parser": "pandas"}, f"score within {low}-{high} where {top} is missing"),
        ("expect_column_pair_values_a_to_be_greater_than_b", f"{top}, {csat}",
         {"column_A": top, "column_B": csat, **pair}, f"{csat} at most {top}"),
        ("expect_column_pair_values_a_to_be_greater_than_b", f"{csat}, {bottom}",
         {"column_A": csat, "column_B": bottom, **pair}, f"{csat} at least {bottom} (the bottom of the mapped scale)"),
        ("expect_column_values_to_be_between", csat, {"column": csat, "min_value": 0}, f"{csat} not below 0"),
    ]


def revenue_bounds(taxonomy) -> tuple[float, float]:
    """(low, high) of plausible revenue per order: the taxonomy's `revenue_bounds: [low, high]`,
    else `REVENUE_BOUNDS`. Negative values within the bounds are refunds and pass.

        revenue_bounds(tax) -> (-100000.0, 1000000.0)
    """
    bounds = (getattr(taxonomy, "data", None) or {}).get("revenue_bounds", REVENUE_BOUNDS)
    ok = (isinstance(bounds, (list, tuple)) and len(bounds) == 2
          and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
          and all(abs(float(b)) < float("inf") for b in bounds) and float(bounds[0]) < float(bounds[1]))
    if not ok:
        raise ValueError(f"taxonomy revenue_bounds must be [low, high], two finite numbers with low < high, "
                         f"got {bounds!r}")
    return float(bounds[0]), float(bounds[1])


def _code_set(taxonomy, section: str) -> tuple[str, ...] | None:
    """Allowed codes of a Column.codes section; None when the taxonomy has no such section."""
    if section in schema.CODE_SETS:
        return tuple(schema.CODE_SETS[section])
    return tuple(taxonomy.codes(section)) if section in taxonomy.data else None


# --- running the gate ------------------------------------------------------------------------
class Gate:
    """A reusable validation gate: run it on many parts of the tables (e.g. customer buckets),
    then `combine` the parts into the result of the whole. The checks are built once (with
    `now` fixed for every part); the Great Expectations context is made on the first run, and
    each table's suite and validation definition the first time the table is seen, then re-run
    with every new frame; no frame is kept between runs. Leaving the `with` block (or `close`)
    releases the context.

        with validate.Gate(tax, "raw", tolerance=0.02, now=now) as gate:
            parts = [gate.run(bucket, references=False) for bucket in buckets]
            whole = gate.combine(parts)
    """

    def __init__(self, taxonomy, stage: str, tolerance: float = 0.02, *,
                 min_date: str | pd.Timestamp = schema.MIN_DATE, now: pd.Timestamp | None = None):
        self.stage = stage
        self.now = _utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
        self.checks = build_expectations(taxonomy, stage, tolerance, min_date=min_date, now=self.now)
        self._runner: gx_suites.SuiteRunner | None = None

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the Great Expectations context and the frames it holds; a later `run` makes
        a new one."""
        if self._runner is not None:
            self._runner.close()
        self._runner = None

    def run(self, tables: Mapping[str, pd.DataFrame], *, references: bool = True) -> GateResult:
        """Validate the tables present in `tables` (canonical names; absent ones are skipped),
        the same as `run_gate`. references=False leaves out the checks across tables
        (`reference_results`), for a part whose references may sit in another part."""
        unknown = sorted(set(tables) - set(schema.TABLES))
        if unknown:
            raise ValueError(f"validation gate: unknown table(s) {unknown}; canonical tables are {list(schema.TABLES)}")
        if self._runner is None:
            self._runner = gx_suites.SuiteRunner(self.stage, N_EXAMPLES)
        present = [t for t in schema.TABLES if t in tables]
        frames = {t: tables[t].reset_index(drop=True) for t in present}
        checks, rows = [], []
        for t in present:
            runnable = [c for c in self.checks if c.table == t and set(c.columns) <= set(frames[t].columns)]
            checks += runnable
            rows += [_result_row(c, facts) for c, facts in zip(runnable, self._runner.run(t, frames[t], runnable))]
        references_rows = reference_results(frames, self.stage) if references else []
        return _gate_result(self.stage, rows + references_rows, _skipped(tables), checks)

    def combine(self, parts: Sequence[GateResult]) -> GateResult:
        """The GateResult of the whole tables from the results of their parts (`run` on each
        part, references=False), for every check that counts rows:

        - per check (matched by identity: table, expectation, column, kwargs; a check that ran
          in some parts only is combined over those), `unexpected_count` and `checked` are
          summed, `unexpected_percent` recomputed, and success decided on the totals by Great
          Expectations' own rule: the share of expected values among the counted ones
          >= mostly (vacuously true when nothing was counted); without `mostly` (1.0) no
          unexpected value at all. Rows and order are those `run` gives on the whole tables.
        - table-level checks (columns, dtypes) and checks GX could not run pass when every part
          passes; their examples are those of the first part that failed.
        - examples: those of the first part with unexpected rows, filled up to N_EXAMPLES from
          the next parts.
        - status, failed and skipped as `run` derives them.

        Uniqueness checks (one key column or a compound key) count the duplicates within each
        part: a key duplicated ACROSS parts is not seen (split the rows so that equal keys share
        a part, or check keys across parts separately). The checks across tables are not
        combined: run `reference_results` once on the whole tables and add its rows with
        `with_results`. Raises ValueError for a part with such rows or from other checks.
        """
        parts, known = list(parts), set(self.checks)
        for part in parts:
            if part.stage != self.stage or len(part.checks) != len(part.results) or None in part.checks:
                raise ValueError(f"combine: a part must come from Gate.run(..., references=False) of stage "
                                 f"{self.stage!r}; add reference_results of the whole tables with with_results")
            if not set(part.checks) <= known:
                raise ValueError("combine: a part was run with other checks (stage, tolerance, min_date or now differ)")
        found = [{c: (row, ex) for c, row, ex in zip(p.checks, p.results.to_dict("records"), p.example_lists)}
                 for p in parts]
        combined = [(c, _combined_row(c, [f[c] for f in found if c in f]))
                    for c in self.checks if any(c in f for f in found)]
        skipped = [t for t in schema.TABLES if all(t in p.skipped for p in parts) and not schema.TABLES[t].optional]
        return _gate_result(self.stage, [row for _, row in combined], skipped, [c for c, _ in combined])


def run_gate(
    tables: Mapping[str, pd.DataFrame],
    taxonomy,
    stage: str,
    tolerance: float = 0.02,
    *,
    min_date: str | pd.Timestamp = schema.MIN_DATE,
    now: pd.Timestamp | None = None,
) -> GateResult:
    """Validate the tables present in `tables` (canonical names; absent ones are skipped) with
    Great Expectations and return a GateResult: a `Gate` run on one part. Checks on columns a
    table lacks are not run (its columns check fails instead). Nothing is written.

        run_gate({"feedback": staged_feedback}, tax, "raw").status -> "warned"
    """
    with Gate(taxonomy, stage, tolerance, min_date=min_date, now=now) as gate:
        return gate.run(tables)


def combine(parts: Sequence[GateResult], taxonomy, stage: str, tolerance: float = 0.02, *,
            min_date: str | pd.Timestamp = schema.MIN_DATE, now: pd.Timestamp) -> GateResult:
    """`Gate.combine` of a gate with these parameters (`now` as the parts were run with)."""
    return Gate(taxonomy, stage, tolerance, min_date=min_date, now=now).combine(parts)


def with_results(gate_result: GateResult, rows: Iterable[Mapping]) -> GateResult:
    """`gate_result` with result rows (dicts of `RESULT_COLUMNS`) appended and status and failed
    recomputed, e.g. the checks across tables run once on the whole tables:

        with_results(whole, reference_results({"labels": labels, "feedback": ids}, "raw"))
    """
    old, rows = gate_result.results.to_dict("records"), [dict(r) for r in rows]
    lists = (gate_result.example_lists if len(gate_result.example_lists) == len(old)
             else [_split(r["examples"]) for r in old])
    checks = gate_result.checks if len(gate_result.checks) == len(old) else [None] * len(old)
    return _gate_result(gate_result.stage, [*old, *rows], gate_result.skipped, list(checks),
                        [*lists, *[_split(r["examples"]) for r in rows]])


def reference_results(tables: Mapping[str, pd.DataFrame], stage: str) -> list[dict]:
    """Result rows (`RESULT_COLUMNS`) of the checks across tables (`REFERENCES`): the non-missing
    values of a column that the referenced column does not hold. Raw: a warning (cleaning drops
    such rows); processed: critical. Examples name file and row, the values masked. A check whose
    tables or columns are absent is not run.

        reference_results({"labels": labels, "feedback": feedback}, "raw")[0]["outcome"] -> "warned"
    """
    rows = []
    for table, column, target, target_column in REFERENCES:
        if not (table in tables and target in tables and column in tables[table].columns
                and target_column in tables[target].columns):
            continue
        values = tables[table][column]
        unknown = values.notna() & ~reshape.text_isin(values, tables[target][target_column].dropna())
        checked, count = int(values.notna().sum()), int(unknown.sum())
        severity = WARNING if stage == "raw" else CRITICAL
        rows.append({
            "table": table, "expectation": "expect_column_values_to_be_in_set", "column": column,
            "severity": severity, "success": count == 0,
            "outcome": "passed" if count == 0 else "warned" if severity == WARNING else "failed",
            "unexpected_count": count, "checked": checked,
            "unexpected_percent": 100.0 * count / checked if checked else 0.0,
            "examples": privacy.example_rows(tables[table].loc[unknown], [column], personal={column}, n=N_EXAMPLES),
            "description": f"value of {target}.{target_column} in all non-missing values"
                           + (" (cleaning drops the others)" if stage == "raw" else ""),
        })
    return rows


def summary(gate_results: Iterable[GateResult]) -> dict:
    """The `validation` section of results.json over several gate runs:
    {"status", "failed", "warnings", "checked", "skipped"}; entries are "stage: table.column: expectation"."""
    gates = list(gate_results)
    return {
        "status": _worst(pd.Series([g.status for g in gates], dtype="str")),
        "failed": [f"{g.stage}: {label}" for g in gates for label in g.failed],
        "warnings": [f"{g.stage}: {label}" for g in gates for label in g.warnings],
        "checked": int(sum(len(g.results) for g in gates)),
        "skipped": [f"{g.stage}: {t}" for g in gates for t in g.skipped],
    }

def _result_row(check: Check, facts: dict) -> dict:
    """The result row of one check from the facts `gx_suites.SuiteRunner.run` returns (examples
    as a tuple)."""
    keep = ("success", "unexpected_count", "checked", "unexpected_percent", "examples")
    return {"table": check.table, "expectation": check.expectation, "column": check.column,
            "severity": check.severity, **{k: facts[k] for k in keep},
            "outcome": _outcome(facts["success"], facts["unexpected_count"], check.severity),
            "description": check.description}


def _combined_row(check: Check, hits: list[tuple[dict, tuple]]) -> dict:
    """One check's row over parts: `hits` are (result row, examples) of the parts that ran it."""
    not_counted = [row for row, _ in hits if pd.isna(row["unexpected_count"])]
    if len(not_counted) == len(hits) or any(not row["success"] for row in not_counted):
        failing = [examples for row, examples in hits if not row["success"]]       # table-level or GX error
        success, count, checked, percent = not failing, None, None, None
        examples = failing[0] if failing else hits[0][1]
    else:
        counted = [row for row, _ in hits if not pd.isna(row["unexpected_count"])]
        count = sum(int(row["unexpected_count"]) for row in counted)
        checked = sum(int(row["checked"]) for row in counted)
        percent = count / checked * 100 if checked else None
        success = _mostly_success(checked, count, check.kwargs.get("mostly", 1.0))
        examples = tuple(itertools.islice((e for _, part in hits for e in part), N_EXAMPLES))
    return _result_row(check, {"success": success, "unexpected_count": count, "checked": checked,
                               "unexpected_percent": percent, "examples": examples})


def _mostly_success(checked: int, unexpected: int, mostly: float) -> bool:
    """Great Expectations' verdict (expectations.expectation._mostly_success): the share of
    expected among the counted values >= mostly; vacuously true when nothing was counted."""
    return checked == 0 or (float(checked) - float(unexpected)) / float(checked) >= mostly


def _outcome(success: bool, count, severity: str) -> str:
    return ("failed" if not success and severity == CRITICAL
            else "warned" if not success or (0 if pd.isna(count) else count) > 0
            else "passed")


def _gate_result(stage: str, rows: list[dict], skipped: list[str], checks: list,
                 example_lists: list | None = None) -> GateResult:
    """A GateResult from result rows whose examples are tuples (joined here by '; ') or strings
    (`reference_results`); `checks` gives each row its Check (None past its end)."""
    lists = example_lists if example_lists is not None else [_split(r["examples"]) for r in rows]
    results = _results_frame([{**r, "examples": "; ".join(ex)} for r, ex in zip(rows, lists)])
    return GateResult(
        stage=stage,
        results=results,
        status=_worst(results["outcome"]),
        failed=_labels(results.loc[lambda d: d["outcome"] == "failed"]),
        skipped=skipped,
        checks=tuple([*checks, *[None] * (len(rows) - len(checks))]),
        example_lists=tuple(tuple(ex) for ex in lists),
    )


def _split(examples) -> tuple[str, ...]:
    """Examples as a tuple: a tuple stays, a string is one entry ('' none)."""
    return tuple(examples) if not isinstance(examples, str) else (examples,) if examples else ()


def _skipped(tables: Mapping) -> list[str]:
    return [t for t in schema.TABLES if t not in tables and not schema.TABLES[t].optional]


def _results_frame(rows: list[dict]) -> pd.DataFrame:
    return (
        pd.DataFrame(rows, columns=RESULT_COLUMNS)
        .astype({"success": "bool", "unexpected_count": "Int64", "checked": "Int64", "unexpected_percent": "float64"})
    )


def _labels(results: pd.DataFrame) -> list[str]:
    col = results["column"].astype("object").where(results["column"].notna(), None)
    return [f"{t}.{c}: {e}" if c else f"{t}: {e}"
            for t, c, e in zip(results["table"], col, results["expectation"])]


def _count_text(row) -> str:
    """'302 of 15,100 non-missing values (2.0%)': the unexpected count with its base."""
    if pd.isna(row.unexpected_count):
        return "not met"
    base = ("rows" if row.expectation == "expect_column_values_to_not_be_null"
            else "rows with both values" if row.expectation.startswith("expect_column_pair")
            else "non-missing values")
    checked = f" of {row.checked:,} {base}" if not pd.isna(row.checked) else f" {base}"
    return f"{row.unexpected_count:,}{checked} ({row.unexpected_percent:.1f}%)"


def _worst(outcomes: pd.Series) -> str:
    present = set(outcomes)
    return next((o for o in reversed(OUTCOMES) if o in present), "passed")


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
