"""The validation gate run part by part (`validate.Gate`) and combined (`Gate.combine`): the
combined result is the one `run_gate` gives on the whole tables, for every per-row count.

The demo cases split the session's demo (3,000 customers) into customer buckets as the
bounded-memory ingest does; the hand-built cases pin the tolerance decided on the totals, the
examples filled across parts, the checks across tables added afterwards and the context made once.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import clean, config, schema, sources, validate

NOW = pd.Timestamp.now(tz="UTC").floor("D")
TAX = config.load_taxonomy(config.find_project_dir(__file__) / config.TAXONOMY_FILE)
KEY = b"gate-parts-test-key"
COMPARED = ["table", "expectation", "column", "severity", "success", "outcome",
            "unexpected_count", "checked", "unexpected_percent"]


def buckets(tables: dict[str, pd.DataFrame], k: int, ref: str) -> list[dict[str, pd.DataFrame]]:
    """The tables split into k parts by a hash of column `ref`: all rows of one customer in one
    part, rows without one (or tables without the column) in part 0; empty frames left out."""
    parts: list[dict[str, pd.DataFrame]] = [{} for _ in range(k)]
    for name, df in tables.items():
        if ref not in df.columns:
            parts[0][name] = df
            continue
        hashed = pd.util.hash_pandas_object(df[ref], index=False).to_numpy() % k
        part = np.where(df[ref].isna().to_numpy(), 0, hashed)
        for i in range(k):
            if (part == i).any():
                parts[i][name] = df.loc[part == i]
    return parts


def whole_and_combined(tables: dict, stage: str, k: int, ref: str) -> tuple:
    parts = buckets(tables, k, ref)
    with validate.Gate(TAX, stage, now=NOW) as gate:
        results = [gate.run(part, references=False) for part in parts]
        combined = gate.combine(results)
    return validate.run_gate(tables, TAX, stage, now=NOW), combined, results


def assert_same_counts(combined: validate.GateResult, whole: validate.GateResult) -> None:
    assert_frame_equal(combined.results[COMPARED], whole.results[COMPARED], check_exact=False, rtol=0, atol=1e-9)
    assert (combined.status, combined.failed, combined.skipped, combined.warnings) == (
        whole.status, whole.failed, whole.skipped, whole.warnings)


# --- the demo in customer buckets -----------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_staged(demo_project) -> dict[str, pd.DataFrame]:
    """The demo's staged tables, pseudonymised as stage 01 shows them to the raw gate."""
    staged = sources.map_sources(demo_project / "config" / "sources" / "demo.yml", demo_project / "data" / "raw", TAX)
    return clean.pseudonymise_staged(staged.tables, KEY)


@pytest.mark.parametrize("k", [7])
def test_raw_gate_over_customer_buckets_equals_the_whole(demo_staged, k):
    whole, combined, parts = whole_and_combined(demo_staged, "raw", k, schema.CUSTOMER_REF)
    assert len(parts) == k and len(whole.results) > 60
    assert_same_counts(combined, whole)
    counted = whole.results.loc[lambda d: d["unexpected_count"].fillna(0) > 0]
    assert len(counted) >= 3                                     # the demo's dirty rows: not a trivial sum
    for check in counted.itertuples():                           # examples: up to 5 of the parts' own
        mine = combined.results.loc[check.Index, "examples"].split("; ")
        assert len(mine) == min(check.unexpected_count, validate.N_EXAMPLES)
        assert set(mine) <= {e for p in parts for ex in p.example_lists for e in ex}


@pytest.mark.parametrize("k", [7])
def test_processed_gate_over_customer_buckets_equals_the_whole(demo_world, k):
    whole, combined, _ = whole_and_combined(demo_world["tables"], "processed", k, schema.CUSTOMER_ID)
    assert len(whole.results) > 60 and whole.status == "passed"
    assert_same_counts(combined, whole)


# --- hand-built parts ---------------------------------------------------------------------------
def staged(table: str, rows: list[dict], first_row: int = 2) -> pd.DataFrame:
    """A staged table (canonical dtypes, lineage `<table>.csv`, rows first_row, first_row + 1, ...)."""
    names = schema.staged_columns(table)
    dtypes = {n: schema.PANDAS_DTYPES[c.dtype] for n, c in zip(names, schema.TABLES[table].columns)}
    df = pd.DataFrame(rows).reindex(columns=names)
    df = df.assign(**{n: (pd.to_datetime(df[n], utc=True) if d.startswith("datetime") else df[n]).astype(d)
                      for n, d in dtypes.items()})
    return df.assign(_file=f"{table}.csv", _row=np.arange(first_row, len(df) + first_row))


def answers(start: int, n: int, bad: int = 0, missing: int = 0, bad_survey: int = 0) -> list[dict]:
    """n feedback rows R<start>...: the first `bad` with nps 11, the next `missing` without nps,
    the last `bad_survey` of an unknown survey."""
    nps = [11.0] * bad + [None] * missing + [8.0] * (n - bad - missing)
    survey = ["relationship"] * (n - bad_survey) + ["pulse"] * bad_survey
    return [{"response_id": f"R{start + i}", "customer_ref": f"K{start + i}", "timestamp": "2024-04-01",
             "survey": s, "nps": v} for i, (v, s) in enumerate(zip(nps, survey))]


def concat(parts: list[dict]) -> dict[str, pd.DataFrame]:
    names = [t for t in schema.TABLES if any(t in p for p in parts)]
    return {t: pd.concat([p[t] for p in parts if t in p], ignore_index=True) for t in names}


def contacts(start: int, n: int, fax: int = 0) -> pd.DataFrame:
    rows = [{"event_id": f"E{start + i}", "customer_ref": "K1", "timestamp": "2024-03-01",
             "channel": "fax" if i < fax else "phone", "touchpoint": "order"} for i in range(n)]
    return staged("events", rows, first_row=start + 2)


@pytest.fixture(scope="module")
def within_tolerance():
    """1.5% bad nps overall (15 of 1,000 non-missing), all in part A (4%); 6 unknown surveys
    (2 in A, 4 in C); events in A and B only."""
    parts = [
        {"feedback": staged("feedback", answers(0, 385, bad=15, missing=10, bad_survey=2)),
         "events": contacts(0, 50, fax=1)},
        {"feedback": staged("feedback", answers(385, 310, missing=10), first_row=387), "events": contacts(50, 50)},
        {"feedback": staged("feedback", answers(695, 325, bad_survey=4), first_row=697)},
    ]
    with validate.Gate(TAX, "raw", tolerance=0.02, now=NOW) as gate:
        results = [gate.run(p, references=False) for p in parts]
        return parts, results, gate.combine(results), validate.run_gate(concat(parts), TAX, "raw", now=NOW)


def nps_row(gate: validate.GateResult) -> pd.Series:
    r = gate.results
    return r.loc[(r["table"] == "feedback") & (r["column"] == "nps")
                 & (r["expectation"] == "expect_column_values_to_be_between")].iloc[0]


def test_tolerance_is_decided_on_the_totals(within_tolerance):
    _, results, combined, whole = within_tolerance
    part_a = nps_row(results[0])
    assert (part_a["success"], part_a["outcome"], part_a["unexpected_count"], part_a["checked"]) == (
        False, "failed", 15, 375)                                   # 4% in part A alone
    nps = nps_row(combined)
    assert (nps["success"], nps["outcome"], nps["unexpected_count"], nps["checked"]) == (True, "warned", 15, 1000)
    assert nps["unexpected_percent"] == pytest.approx(1.5)
    assert combined.status == "warned" and combined.failed == []
    assert_same_counts(combined, whole)
    combined.raise_if_failed()


def test_examples_come_from_the_first_parts_with_unexpected_rows(within_tolerance):
    _, _, combined, _ = within_tolerance
    r = combined.results.set_index(["table", "column", "expectation"])["examples"]
    assert r[("feedback", "survey", "expect_column_values_to_be_in_set")] == (
        "survey='pulse' (feedback.csv row 385); survey='pulse' (feedback.csv row 386); "
        "survey='pulse' (feedback.csv row 1018); survey='pulse' (feedback.csv row 1019); "
        "survey='pulse' (feedback.csv row 1020)")
    assert r[("events", "channel", "expect_column_values_to_be_in_set")] == "channel='fax' (events.csv row 2)"


def test_a_table_some_parts_lack_is_combined_over_the_others(within_tolerance):
    _, results, combined, whole = within_tolerance
    assert "events" not in set(results[2].results["table"]) and results[2].skipped == ["customers", "events",
                                                                                         "orders", "campaigns"]
    channel = combined.results.loc[lambda d: (d["column"] == "channel")
                                   & (d["expectation"] == "expect_column_values_to_be_in_set")].iloc[0]
    assert (channel["unexpected_count"], channel["checked"], channel["outcome"]) == (1, 100, "warned")
    assert combined.skipped == whole.skipped == ["customers", "orders", "campaigns"]
    assert list(combined.results["table"].unique()) == ["events", "feedback"]      # schema order, as run_gate


def test_above_tolerance_overall_fails_with_the_total_count():
    parts = [{"feedback": staged("feedback", answers(200 * i, 200, bad=5), first_row=2 + 200 * i)} for i in range(4)]
    with validate.Gate(TAX, "raw", tolerance=0.02, now=NOW) as gate:
        combined = gate.combine([gate.run(p, references=False) for p in parts])
    nps = nps_row(combined)
    assert (nps["success"], nps["outcome"], nps["unexpected_count"], nps["checked"]) == (False, "failed", 20, 800)
    assert combined.failed == ["feedback.nps: expect_column_values_to_be_between"]
    with pytest.raises(validate.ValidationFailed, match=r"feedback\.nps: expect_column_values_to_be_between .*: "
                                                        r"20 of 800 non-missing values \(2\.5%\)"):
        combined.raise_if_failed()
    assert_same_counts(combined, validate.run_gate(concat(parts), TAX, "raw", now=NOW))


def test_mostly_is_decided_as_great_expectations_does():
    from great_expectations.expectations.expectation import _mostly_success as gx_mostly

    mostly = 1 - 0.02
    assert validate._mostly_success(1000, 20, mostly) and not validate._mostly_success(1000, 21, mostly)
    assert validate._mostly_success(50, 1, mostly) and not validate._mostly_success(49, 1, mostly)
    assert validate._mostly_success(0, 0, 1.0) and not validate._mostly_success(5, 1, 1.0)
    grid = [(n, u, m) for n in range(1, 400, 3) for u in range(0, n + 1, max(1, n // 40))
            for m in (1 - 0.02, 1 - 0.05, 1 - 0.1, 1 - 0.03, 1.0)]
    assert [validate._mostly_success(n, u, m) for n, u, m in grid] == [gx_mostly(n, u, m) for n, u, m in grid]


def test_table_level_checks_pass_when_every_part_passes():
    good = {"feedback": staged("feedback", answers(0, 3))}
    wrong = {"feedback": staged("feedback", answers(3, 3)).astype({"nps": "object"}).drop(columns=["survey"])}
    with validate.Gate(TAX, "raw", now=NOW) as gate:
        combined = gate.combine([gate.run(good), gate.run(wrong)])
    r = combined.results.set_index(["expectation", combined.results["column"].fillna("")])
    columns = r.loc[("expect_table_columns_to_match_set", "")]
    assert (columns["success"], columns["examples"], pd.isna(columns["unexpected_count"])) == (
        False, "missing: survey", True)
    dtype = r.loc[("expect_column_type_to_be", "nps")]
    assert (dtype["outcome"], dtype["examples"]) == ("failed", "dtype is object")
    survey = r.loc[("expect_column_values_to_be_in_set", "survey")]        # ran in the first part only
    assert (survey["unexpected_count"], survey["checked"]) == (0, 3)


# --- what a part cannot see: keys across parts, references across tables ------------------------
def test_keys_duplicated_across_parts_are_not_seen_by_the_parts():
    parts = [{"feedback": staged("feedback", answers(0, 3))}, {"feedback": staged("feedback", answers(2, 3))}]
    with validate.Gate(TAX, "raw", now=NOW) as gate:
        combined = gate.combine([gate.run(p) for p in parts])
    key = combined.results.loc[lambda d: d["expectation"] == "expect_column_values_to_be_unique"].iloc[0]
    whole = validate.run_gate(concat(parts), TAX, "raw", now=NOW)
    whole_key = whole.results.loc[lambda d: d["expectation"] == "expect_column_values_to_be_unique"].iloc[0]
    assert (key["unexpected_count"], whole_key["unexpected_count"]) == (0, 2)       # R2 in both parts


def test_references_run_once_on_the_whole_tables_and_are_added():
    labels = staged("labels", [{"response_id": r, "sentiment": "neutral"} for r in ("R1", "R4", "R9")])
    parts = [{"feedback": staged("feedback", answers(0, 3)), "labels": labels},
             {"feedback": staged("feedback", answers(3, 3))}]
    with validate.Gate(TAX, "raw", now=NOW) as gate:
        results = [gate.run(p, references=False) for p in parts]
        combined = gate.combine(results)
        with pytest.raises(ValueError, match="reference_results"):
            gate.combine([gate.run(parts[0])])                                  # a part with the check across tables
    whole = concat(parts)
    added = validate.with_results(combined, validate.reference_results(whole, "raw"))
    reference = added.results.iloc[-1]
    assert (reference["table"], reference["unexpected_count"], reference["checked"], reference["outcome"]) == (
        "labels", 1, 3, "warned")                                               # R4 sits in the other part
    assert added.status == "warned" and added.warnings[-1] == "labels.response_id: expect_column_values_to_be_in_set"
    assert_same_counts(added, validate.run_gate(whole, TAX, "raw", now=NOW))
    assert validate.with_results(added, []).results.equals(added.results)


def test_parts_of_another_gate_are_refused_and_the_module_combine_is_the_gates():
    parts = [{"feedback": staged("feedback", answers(0, 3, bad=1))}]
    with validate.Gate(TAX, "raw", now=NOW) as gate:
        results = [gate.run(p) for p in parts]
        combined = gate.combine(results)
    again = validate.combine(results, TAX, "raw", 0.02, now=NOW)
    assert_frame_equal(again.results, combined.results)
    with pytest.raises(ValueError, match="other checks"):
        validate.combine(results, TAX, "raw", 0.05, now=NOW)
    with pytest.raises(ValueError, match="stage"):
        validate.combine(results, TAX, "processed", now=NOW)
    empty = validate.combine([], TAX, "raw", now=NOW)
    assert (empty.status, len(empty.results), empty.skipped) == (
        "passed", 0, ["customers", "events", "feedback", "orders", "campaigns"])


# --- the context is made once -------------------------------------------------------------------
def test_a_gate_makes_one_context_and_one_definition_per_table(monkeypatch):
    import great_expectations as gx

    contexts = []
    real = gx.get_context

    def counting(*args, **kwargs):
        contexts.append(real(*args, **kwargs))
        return contexts[-1]

    monkeypatch.setattr(gx, "get_context", counting)
    parts = [{"feedback": staged("feedback", answers(10 * i, 10)), "events": contacts(10 * i, 5)} for i in range(5)]
    with validate.Gate(TAX, "raw", now=NOW) as gate:
        results = [gate.run(p) for p in parts]
        assert len(contexts) == 1
        with warnings.catch_warnings():                         # GX deprecations when reading its stores
            warnings.simplefilter("ignore", DeprecationWarning)
            assert sorted(d.name for d in contexts[0].validation_definitions.all()) == ["raw.events", "raw.feedback"]
            assert len(contexts[0].suites.all()) == 2
    assert [int(r.results["checked"].max()) for r in results] == [10] * 5
    validate.run_gate(parts[0], TAX, "raw", now=NOW)
    assert len(contexts) == 2                                                   # run_gate: a gate of one part


def test_a_gate_keeps_no_frame_of_a_table_between_runs():
    import gc

    def alive(n: int) -> int:
        gc.collect()
        return sum(type(o) is pd.DataFrame and len(o) == n and schema.COMMENT in o.columns for o in gc.get_objects())

    with validate.Gate(TAX, "raw", now=NOW) as gate:
        gate.run({"feedback": staged("feedback", answers(0, 37))})
        gate.run({"events": contacts(0, 5)})
        assert alive(37) == 0               # the feedback part is gone while the gate runs other tables
