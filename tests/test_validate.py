"""The validation gate: checks built from the schema, severity semantics, messages, revenue bounds.

Great Expectations runs cost time: each module fixture below is one gate run, asserted on by
several tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import clean, config, schema, validate

NOW = pd.Timestamp("2025-01-01", tz="UTC")
TAX = config.load_taxonomy(config.find_project_dir(__file__) / config.TAXONOMY_FILE)


def frame(table: str, rows: list[dict], stage: str = "raw", file: str | None = None) -> pd.DataFrame:
    """A staged (raw: customer_ref, `_file`, `_row` 2, 3, ...) or processed table, canonical dtypes."""
    names = schema.staged_columns(table) if stage == "raw" else schema.TABLES[table].names
    dtypes = {n: schema.PANDAS_DTYPES[c.dtype] for n, c in zip(names, schema.TABLES[table].columns)}
    df = pd.DataFrame(rows).reindex(columns=names)
    df = df.assign(**{n: (pd.to_datetime(df[n], utc=True) if d.startswith("datetime") else df[n]).astype(d)
                      for n, d in dtypes.items()})
    return df.assign(_file=file or f"{table}.csv", _row=np.arange(2, len(df) + 2)) if stage == "raw" else df


def events(n: int, ref: str = "customer_ref", **changes) -> list[dict]:
    """n valid event rows E1..En; `changes` maps a row position to a dict of overrides."""
    rows = [{"event_id": f"E{i + 1}", ref: "K1", "timestamp": "2024-03-01", "channel": "phone",
             "touchpoint": "order"} for i in range(n)]
    return [{**row, **changes.get(f"r{i}", {})} for i, row in enumerate(rows)]


def feedback(n: int, ref: str = "customer_ref", bad: dict[int, float] | None = None) -> list[dict]:
    return [{"response_id": f"R{i + 1}", ref: "K1", "timestamp": "2024-04-01", "survey": "relationship",
             "nps": (bad or {}).get(i, 8.0)} for i in range(n)]


def row_of(gate: validate.GateResult, table: str, expectation: str, column: str | None) -> pd.Series:
    r = gate.results
    hit = r.loc[(r["table"] == table) & (r["expectation"] == expectation)
                & (r["column"].isna() if column is None else r["column"] == column)]
    assert len(hit) == 1, hit
    return hit.iloc[0]


# --- building checks (no Great Expectations run) ------------------------------------------
def test_unknown_stage_and_bad_tolerance_raise():
    with pytest.raises(ValueError, match="stage"):
        validate.build_expectations(TAX, "staged")
    with pytest.raises(ValueError, match="tolerance"):
        validate.build_expectations(TAX, "raw", tolerance=1.0)


def test_raw_checks_are_tolerant_and_use_staged_names():
    checks = {(c.table, c.expectation, c.column): c for c in validate.build_expectations(TAX, "raw", 0.05, now=NOW)}
    channel = checks[("events", "expect_column_values_to_be_in_set", "channel")]
    assert channel.severity == "critical" and channel.kwargs["mostly"] == pytest.approx(0.95)
    assert channel.kwargs["value_set"] == TAX.codes("channels")
    key = checks[("events", "expect_column_values_to_be_unique", "event_id")]
    assert key.severity == "warning" and key.kwargs["mostly"] == pytest.approx(0.95)
    consent = checks[("customers", "expect_column_values_to_not_be_null", "contact_consent")]
    assert consent.severity == "warning" and "mostly" not in consent.kwargs
    assert ("events", "expect_column_values_to_not_be_null", "customer_ref") not in checks   # a complaint log may lack customers
    assert ("orders", "expect_column_values_to_not_be_null", "customer_ref") in checks
    assert checks[("campaigns", "expect_compound_columns_to_be_unique", "campaign_id, customer_ref")]
    nps = checks[("feedback", "expect_column_values_to_be_between", "nps")]
    assert (nps.kwargs["min_value"], nps.kwargs["max_value"]) == (0, 10)
    ts = checks[("events", "expect_column_values_to_be_between", "timestamp")]
    assert ts.kwargs["min_value"] == pd.Timestamp("2000-01-01", tz="UTC")
    assert ts.kwargs["max_value"] == pd.Timestamp("2025-01-02", tz="UTC")
    assert ("customers", "expect_column_type_to_be", "segment") not in checks      # raw text: any dtype
    assert ("events", "expect_column_values_to_be_in_set", "stage") not in checks    # derived by cleaning
    assert checks[("customers", "expect_column_type_to_be", "signup_date")].kwargs["type_"] == "datetime64[us, UTC]"


def test_processed_checks_are_all_critical_and_exact():
    checks = validate.build_expectations(TAX, "processed", now=NOW)
    assert {c.severity for c in checks} == {"critical"}
    assert not any("mostly" in c.kwargs for c in checks)
    columns = [c for c in checks if c.expectation == "expect_table_columns_to_match_ordered_list"]
    assert [(c.table, c.kwargs["column_list"]) for c in columns] == [(t, s.names) for t, s in schema.TABLES.items()]
    assert ("orders", "expect_column_values_to_be_in_set", "status") in {(c.table, c.expectation, c.column) for c in checks}
    assert all(c.kwargs.get("column") != schema.CUSTOMER_REF for c in checks)


def test_code_lists_match_a_pattern_of_the_taxonomy_codes():
    pattern = validate.code_list_pattern(["invoice", "price", "a.b"])
    assert [bool(re.fullmatch(pattern, v)) for v in ["", "invoice", "price;invoice", "a.b"]] == [True] * 4
    assert [bool(re.fullmatch(pattern, v)) for v in ["invoice;", ";price", "invoice;refund", "aXb", "invoice price"]] == [False] * 5
    checks = {(c.table, c.expectation, c.column): c for c in validate.build_expectations(TAX, "raw", 0.05, now=NOW)}
    themes = checks[("labels", "expect_column_values_to_match_regex", "themes")]
    assert themes.kwargs["regex"] == validate.code_list_pattern(TAX.codes("themes")) and themes.kwargs["mostly"] == pytest.approx(0.95)
    assert checks[("labels", "expect_column_values_to_be_in_set", "sentiment")].kwargs["value_set"] == list(schema.SENTIMENTS)
    assert ("labels", "expect_column_values_to_not_be_null", "response_id") in checks


def test_labels_of_responses_not_in_feedback_warn_raw_and_fail_processed():
    feedback_ids = frame("feedback", feedback(3))
    labels = frame("labels", [{"response_id": r, "sentiment": "neutral"} for r in ("R1", "R9", None, "K0000001-2")],
                   file="labels.xlsx")
    raw = validate.reference_results({"labels": labels, "feedback": feedback_ids}, "raw")
    assert [(r["severity"], r["outcome"], r["unexpected_count"], r["checked"]) for r in raw] == [("warning", "warned", 2, 3)]
    assert raw[0]["examples"] == "response_id=[masked] (labels.xlsx row 3); response_id=[masked] (labels.xlsx row 5)"
    assert raw[0]["unexpected_percent"] == pytest.approx(200 / 3)
    processed = validate.reference_results({"labels": labels, "feedback": feedback_ids}, "processed")
    assert [(r["severity"], r["outcome"]) for r in processed] == [("critical", "failed")]
    assert validate.reference_results({"labels": labels}, "raw") == []          # no feedback: not checked


def test_unknown_table_raises_before_running():
    with pytest.raises(ValueError, match="unknown table"):
        validate.run_gate({"contacts": pd.DataFrame()}, TAX, "raw")


def test_import_is_cheap_without_great_expectations():
    code = "import sys, cxlib.validate; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- run A: clean processed tables pass ---------------------------------------------------------
@pytest.fixture(scope="module")
def clean_run():
    tables = {
        "customers": frame("customers", [{"customer_id": "C1", "segment": "private", "signup_date": "2024-01-01",
                                          "churn_date": "2024-06-01", "contact_consent": True}], "processed"),
        "events": frame("events", events(3, ref="customer_id"), "processed").assign(stage="purchase"),
        "feedback": frame("feedback", feedback(2, ref="customer_id"), "processed"),
        "orders": frame("orders", [], "processed"),
        "campaigns": frame("campaigns", [{"campaign_id": "A", "customer_id": "C1", "sent_at": "2024-06-01",
                                          "responded_at": "2024-06-02"}], "processed"),
        "labels": frame("labels", [{"response_id": "R1", "sentiment": "negative", "themes": "invoice;hotline_waiting"},
                                   {"response_id": "R2", "themes": ""}], "processed"),
    }
    return validate.run_gate(tables, TAX, "processed", now=NOW)


def test_clean_tables_pass(clean_run):
    gate = clean_run
    assert gate.failed == [], gate.results.loc[lambda d: ~d["success"]].to_dict("records")
    assert gate.status == "passed" and gate.skipped == [] and gate.warnings == []
    assert list(gate.results.columns) == validate.RESULT_COLUMNS
    assert gate.results["success"].all() and (gate.results["outcome"] == "passed").all()
    assert set(gate.results["table"]) == set(schema.TABLES)
    gate.raise_if_failed()                                   # does not raise


# --- run B: a few bad rows warn ------------------------------------------------------------------
@pytest.fixture(scope="module")
def few_bad():
    tables = {
        "events": frame("events", events(100, r5={"channel": "fax"}), file="contacts.csv"),
        "feedback": frame("feedback", feedback(100, bad={7: 11.0}), file="survey.csv"),
        "orders": frame("orders", []),
    }
    copies = {name: df.copy(deep=True) for name, df in tables.items()}
    return tables, copies, validate.run_gate(tables, TAX, "raw", now=NOW)


def test_few_bad_rows_warn_and_run_continues(few_bad):
    _, _, gate = few_bad
    assert gate.status == "warned" and gate.failed == []
    assert gate.skipped == ["customers", "campaigns"]
    assert gate.warnings == ["events.channel: expect_column_values_to_be_in_set",
                             "feedback.nps: expect_column_values_to_be_between"]
    gate.raise_if_failed()


def test_warned_rows_carry_counts_and_examples(few_bad):
    _, _, gate = few_bad
    channel = row_of(gate, "events", "expect_column_values_to_be_in_set", "channel")
    assert (channel["success"], channel["outcome"], channel["unexpected_count"], channel["checked"]) == (
        True, "warned", 1, 100)
    assert channel["unexpected_percent"] == pytest.approx(1.0)
    assert channel["examples"] == "channel='fax' (contacts.csv row 7)"
    nps = row_of(gate, "feedback", "expect_column_values_to_be_between", "nps")
    assert (nps["outcome"], nps["unexpected_count"], nps["examples"]) == ("warned", 1, "nps=11.0 (survey.csv row 9)")


def test_empty_table_passes(few_bad):
    _, _, gate = few_bad
    orders = gate.results.loc[lambda d: d["table"] == "orders"]
    assert len(orders) > 0 and (orders["outcome"] == "passed").all()


def test_gate_does_not_mutate_inputs(few_bad):
    tables, copies, _ = few_bad
    for name in tables:
        assert_frame_equal(tables[name], copies[name])


# --- run C: bad as a whole fails -------------------------------------------------------------------
@pytest.fixture(scope="module")
def very_bad():
    customers = frame("customers", [
        {"customer_ref": f"K{i}", "segment": "alien" if i < 3 else "private", "contact_consent": True}
        for i in range(10)], file="crm.csv")
    tables = {
        "customers": customers,
        "feedback": frame("feedback", feedback(10, bad={1: 11.0}), file="survey.csv"),
        "orders": frame("orders", [{"order_id": "O1", "customer_ref": "K1", "timestamp": "2024-05-01"}],
                        file="shop.csv").drop(columns=[schema.TIMESTAMP]),
        "campaigns": frame("campaigns", [{"campaign_id": "A", "customer_ref": f"K{i}"} for i in range(3)],
                           file="mail.csv"),
    }
    return validate.run_gate(tables, TAX, "raw", now=NOW)


def test_above_tolerance_fails(very_bad):
    assert very_bad.status == "failed"
    assert very_bad.failed == [
        "customers.segment: expect_column_values_to_be_in_set",
        "feedback.nps: expect_column_values_to_be_between",
        "orders: expect_table_columns_to_match_set",
        "campaigns.sent_at: expect_column_values_to_not_be_null",
    ]
    segment = row_of(very_bad, "customers", "expect_column_values_to_be_in_set", "segment")
    assert (segment["severity"], segment["success"], segment["unexpected_count"]) == ("critical", False, 3)
    assert segment["unexpected_percent"] == pytest.approx(30.0)
    assert row_of(very_bad, "orders", "expect_table_columns_to_match_set", None)["examples"] == "missing: timestamp"
    orders = very_bad.results.loc[lambda d: d["table"] == "orders"]
    assert schema.TIMESTAMP not in orders["column"].tolist()          # checks on a missing column are not run
    assert very_bad.skipped == ["events"]


def test_failure_message_names_table_column_file_and_rows(very_bad):
    with pytest.raises(validate.ValidationFailed) as info:
        very_bad.raise_if_failed()
    message = str(info.value)
    assert message.startswith("validation gate (raw) failed: 4 critical expectation(s) not met")
    assert ("- customers.segment: expect_column_values_to_be_in_set (codes of 'segments' in at least 98% of "
            "non-missing values): 3 of 10 non-missing values (30.0%); e.g. segment='alien' (crm.csv row 2); "
            "segment='alien' (crm.csv row 3); segment='alien' (crm.csv row 4)") in message
    assert "feedback.nps" in message and "nps=11.0 (survey.csv row 3)" in message
    assert ("campaigns.sent_at: expect_column_values_to_not_be_null (required value present in at least 98% of "
            "rows): 3 of 3 rows (100.0%); e.g. sent_at=missing (mail.csv row 2)") in message
    assert "orders: expect_table_columns_to_match_set" in message and "missing: timestamp" in message
    assert isinstance(info.value, ValueError)


def test_summary_over_gates(few_bad, very_bad):
    out = validate.summary([few_bad[2], very_bad])
    assert out["status"] == "failed"
    assert out["failed"] == [f"raw: {f}" for f in very_bad.failed]
    assert out["warnings"][:2] == ["raw: events.channel: expect_column_values_to_be_in_set",
                                   "raw: feedback.nps: expect_column_values_to_be_between"]
    assert out["checked"] == len(few_bad[2].results) + len(very_bad.results)
    assert validate.summary([few_bad[2]])["status"] == "warned"
    assert validate.summary([])["status"] == "passed"


# --- run D: processed duplicates and dtypes are critical -------------------------------------------
@pytest.fixture(scope="module")
def processed_bad():
    ev = frame("events", events(3, ref="customer_id", r2={"event_id": "E1"}), "processed").assign(stage="purchase")
    fb = frame("feedback", feedback(2, ref="customer_id"), "processed").astype({"timestamp": "datetime64[ns, UTC]"})
    return validate.run_gate({"events": ev, "feedback": fb}, TAX, "processed", now=NOW)


def test_processed_duplicate_keys_and_wrong_dtype_fail(processed_bad):
    assert processed_bad.status == "failed"
    assert processed_bad.failed == ["events.event_id: expect_column_values_to_be_unique",
                                    "feedback.timestamp: expect_column_type_to_be"]
    key = row_of(processed_bad, "events", "expect_column_values_to_be_unique", "event_id")
    assert (key["unexpected_count"], key["examples"]) == (2, "event_id='E1'; event_id='E1'")
    dtype = row_of(processed_bad, "feedback", "expect_column_type_to_be", "timestamp")
    assert dtype["examples"] == "dtype is datetime64[ns, UTC]"
    with pytest.raises(validate.ValidationFailed, match=r"event_id='E1'"):
        processed_bad.raise_if_failed()


# --- run E: what cleaning leaves passes the processed gate (conflicting keys stop cleaning itself) ---
@pytest.fixture(scope="module")
def cleaned_run():
    staged = {
        "customers": frame("customers", [{"customer_ref": "K1", "contact_consent": None, "segment": "alien"}])
        .assign(is_test=False, pii_name="Anna", pii_email=None, pii_phone=None),
        "events": frame("events", events(4, r1={"channel": "fax"}, r2={"timestamp": "1990-01-01"},
                                         r3={"timestamp": "2024-03-02"}), file="contacts.csv"),
        "feedback": frame("feedback", feedback(3, bad={0: 11.0}) + [{"response_id": "R9", "timestamp": "2024-04-01",
                                                                      "csat": 0.0, "ces": 4.0}]),
        "campaigns": frame("campaigns", [{"campaign_id": "A", "customer_ref": "K1", "sent_at": "2024-06-01",
                                          "responded_at": "2024-05-01"}]),
    }
    cleaned = clean.clean_tables(staged, TAX, b"key", now=NOW)
    return validate.run_gate(cleaned.tables, TAX, "processed", now=NOW)


def test_cleaned_tables_pass_the_processed_gate(cleaned_run):
    assert cleaned_run.failed == []
    assert cleaned_run.status != "failed"
    assert cleaned_run.skipped == ["orders"]


# --- run F: no telemetry, no network, no files (no Data Docs) ----------------------------------------
def test_gate_runs_offline_with_analytics_off_and_writes_nothing(tmp_path, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access during the gate: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "True")
    monkeypatch.chdir(tmp_path)
    gate = validate.run_gate({"feedback": frame("feedback", feedback(2))}, TAX, "raw", now=NOW)
    assert gate.status == "passed"
    assert os.environ["GX_ANALYTICS_ENABLED"] == "False"
    assert list(tmp_path.iterdir()) == []
    assert not hasattr(gate, "data_docs_index")
    with pytest.raises(TypeError):
        validate.run_gate({}, TAX, "raw", data_docs_dir=tmp_path)


def test_gate_does_not_hash_the_frames_and_leaves_gx_as_it_was(monkeypatch):
    from great_expectations.execution_engine import pandas_execution_engine as engine

    hashed = []
    monkeypatch.setattr(engine, "hash_pandas_dataframe", lambda df: hashed.append(len(df)) or "x")
    threshold = engine.HASH_THRESHOLD
    gate = validate.run_gate({"events": frame("events", events(100, r5={"channel": "fax"}))}, TAX, "raw", now=NOW)
    assert gate.warnings == ["events.channel: expect_column_values_to_be_in_set"]
    assert hashed == [] and engine.HASH_THRESHOLD == threshold > 0


# --- run G: revenue finite and plausible; refunds pass -----------------------------------------------
def test_revenue_bounds_default_taxonomy_override_and_bad_config():
    assert validate.revenue_bounds(config.Taxonomy({})) == validate.REVENUE_BOUNDS == (-100_000.0, 1_000_000.0)
    assert validate.revenue_bounds(config.Taxonomy({"revenue_bounds": [-500, 5000]})) == (-500.0, 5000.0)
    for bad in ([5000, -500], [0], ["a", 1], [float("-inf"), 1], "1000"):
        with pytest.raises(ValueError, match="revenue_bounds"):
            validate.revenue_bounds(config.Taxonomy({"revenue_bounds": bad}))
    checks = {(c.table, c.expectation, c.column): c for c in validate.build_expectations(TAX, "raw", 0.05, now=NOW)}
    revenue = checks[("orders", "expect_column_values_to_be_between", "revenue")]
    assert revenue.severity == "critical" and "mostly" not in revenue.kwargs          # no tolerance: sums break
    assert (revenue.kwargs["min_value"], revenue.kwargs["max_value"]) == validate.revenue_bounds(TAX)


@pytest.fixture(scope="module")
def revenue_run():
    rows = [{"order_id": f"O{i}", "customer_ref": "K1", "timestamp": "2024-05-01", "revenue": value}
            for i, value in enumerate([49.99, -50.0, float("inf"), 1e12, None, -2_000_000.0, float("-inf")])]
    return validate.run_gate({"orders": frame("orders", rows, file="shop.csv")}, TAX, "raw", now=NOW)


def test_infinite_and_absurd_revenue_fails_the_raw_gate_refunds_pass(revenue_run):
    assert revenue_run.failed == ["orders.revenue: expect_column_values_to_be_between"]
    row = row_of(revenue_run, "orders", "expect_column_values_to_be_between", "revenue")
    assert (row["unexpected_count"], row["checked"]) == (4, 6)                     # the missing value is not counted
    assert row["examples"] == ("revenue=inf (shop.csv row 4); revenue=1000000000000.0 (shop.csv row 5); "
                               "revenue=-2000000.0 (shop.csv row 7); revenue=-inf (shop.csv row 8)")
    with pytest.raises(validate.ValidationFailed, match=r"revenue finite and within -10,000 to 1,000,000 "
                                                        r"\(revenue_bounds\) in all non-missing values\): "
                                                        r"4 of 6 non-missing values \(66\.7%\)"):
        revenue_run.raise_if_failed()
