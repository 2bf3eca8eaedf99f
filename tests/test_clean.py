"""Cleaning rules on hand-made staged tables: exact frames, exact log counts."""

from __future__ import annotations

import hashlib
import hmac
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal, assert_series_equal

from cxlib import clean, config, schema

KEY = b"test-key"
NOW = pd.Timestamp("2025-01-01", tz="UTC")
TAX = config.load_taxonomy(config.find_project_dir(__file__) / config.TAXONOMY_FILE)
TEXT = schema.PANDAS_DTYPES["string"]


def staged(table: str, rows: list[dict], file: str | None = None, **extra) -> pd.DataFrame:
    """A staged table: `schema.staged_columns(table)` typed canonically, lineage `_file`
    (default "<table>.csv") and `_row` 2, 3, ... ; `extra` columns appended as given."""
    names = schema.staged_columns(table)
    dtypes = {n: schema.PANDAS_DTYPES[c.dtype] for n, c in zip(names, schema.TABLES[table].columns)}
    df = pd.DataFrame(rows).reindex(columns=names)
    df = df.assign(**{n: (pd.to_datetime(df[n], utc=True) if d.startswith("datetime") else df[n]).astype(d)
                      for n, d in dtypes.items()})
    return df.assign(_file=file or f"{table}.csv", _row=np.arange(2, len(df) + 2), **extra)


def canonical(table: str, rows: list[dict]) -> pd.DataFrame:
    """The expected processed table: schema columns in order, canonical dtypes."""
    names = schema.TABLES[table].names
    df = pd.DataFrame(rows).reindex(columns=names)
    return df.assign(**{c.name: (pd.to_datetime(df[c.name], utc=True) if c.dtype == "datetime" else df[c.name])
                        .astype(schema.PANDAS_DTYPES[c.dtype]) for c in schema.TABLES[table].columns})


def pid(ref: str) -> str:
    return clean.pseudonymise(pd.Series([ref]), KEY).iloc[0]


# --- pseudonymise -----------------------------------------------------------------------------
def test_pseudonymise_empty_series():
    out = clean.pseudonymise(pd.Series([], dtype=TEXT), KEY)
    assert_series_equal(out, pd.Series([], dtype=TEXT))


def test_pseudonymise_is_prefixed_truncated_hmac_and_keeps_na_and_index():
    refs = pd.Series(["K1", None, "K1", "K2"], index=[10, 11, 12, 13], name="customer_ref")
    out = clean.pseudonymise(refs, KEY)
    digest = hmac.new(KEY, b"K1", hashlib.sha256).hexdigest()
    assert out.iloc[0] == "C" + digest[:16]
    assert out.iloc[0] == out.iloc[2] != out.iloc[3]
    assert pd.isna(out.iloc[1])
    assert list(out.index) == [10, 11, 12, 13]
    assert out.dtype == TEXT


def test_pseudonymise_is_stable_and_keyed():
    refs = pd.Series(["K1", "K2"])
    assert_series_equal(clean.pseudonymise(refs, KEY), clean.pseudonymise(refs.copy(), KEY))
    other = clean.pseudonymise(refs, b"another key")
    assert (other != clean.pseudonymise(refs, KEY)).all()


@pytest.mark.parametrize("on_duckdb_from", [0, 10 ** 9])      # hashed by DuckDB, hashed in Python
@pytest.mark.parametrize("key", [b"k", bytes(range(64)), bytes(range(65)), b"\xff" * 200])
def test_pseudonyms_are_the_standard_hmac_for_short_block_and_long_keys_and_any_text(key, on_duckdb_from, monkeypatch):
    monkeypatch.setattr(clean, "PSEUDONYMS_ON_DUCKDB", on_duckdb_from)
    refs = pd.Series(["K0000001", "", "Müller-ß", "日本-7", "k0000001", "a\x00b", "x" * 10_000, "\U0001F600 K1\t"])
    expected = ["C" + hmac.new(key, r.encode("utf-8"), hashlib.sha256).hexdigest()[:16] for r in refs]
    assert clean.pseudonymise(refs, key).tolist() == expected


@settings(deadline=None, max_examples=60)       # DuckDB computes the digests; its start-up varies with load
@given(refs=st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=30), key=st.binary(min_size=1, max_size=100))
def test_pseudonyms_of_any_texts_and_keys_are_the_standard_hmac_and_na_stays_na(refs, key):
    series = pd.Series(refs, dtype=TEXT, index=range(5, 5 + len(refs)))
    expected = [None if r is None else "C" + hmac.new(key, r.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
                for r in refs]
    for on_duckdb_from in (0, 10 ** 9):                             # hashed by DuckDB, hashed in Python
        with mock.patch.object(clean, "PSEUDONYMS_ON_DUCKDB", on_duckdb_from):
            out = clean.pseudonymise(series, key)
        assert [None if pd.isna(v) else v for v in out] == expected
        assert out.index.equals(series.index) and out.dtype == TEXT


def test_two_numbers_with_the_same_pseudonym_are_refused_not_merged(monkeypatch):
    monkeypatch.setattr(clean, "PSEUDONYM_HEX", 1)              # 16 pseudonyms for 40 numbers
    with pytest.raises(ValueError, match="same pseudonym"):
        clean.pseudonymise(pd.Series([f"K{i}" for i in range(40)]), KEY)
    assert clean.pseudonymise(pd.Series(["K1", "K1"]), KEY).nunique() == 1      # one number twice is no collision


def test_record_ids_embedding_the_customer_number_in_any_case_or_script_are_found():
    ids = pd.Series(["k0000001-cancel", "X", None, "STRASSE-1", "abc", "Kß1", "K0000002", "x-K0000003-y", ""])
    refs = pd.Series(["K0000001", "X", "A", "straße", None, "KSS1", "K0000001", "k0000003", "K1"])
    expected = [isinstance(i, str) and isinstance(r, str) and r.casefold() in i.casefold() for i, r in zip(ids, refs)]
    assert expected == [True, True, False, True, False, True, False, True, False]
    assert clean._embedded(ids.astype(TEXT), refs.astype(TEXT)).tolist() == expected


def test_pseudonymise_rejects_empty_key():
    with pytest.raises(ValueError, match="key"):
        clean.pseudonymise(pd.Series(["K1"]), b"")


# --- edge cases of clean_tables ---------------------------------------------------------------
def test_no_tables_gives_empty_result():
    out = clean.clean_tables({}, TAX, KEY, now=NOW)
    assert out.tables == {}
    assert list(out.log.columns) == clean.LOG_COLUMNS and out.log.empty
    assert list(out.reidentification.columns) == clean.REIDENTIFICATION_COLUMNS and out.reidentification.empty


def test_missing_staged_column_raises_naming_table_file_and_column():
    events = staged("events", [{"event_id": "E1"}], file="contacts.csv").drop(columns=[schema.CHANNEL])
    with pytest.raises(clean.CleanError, match=r"'events' \(from contacts.csv\) lacks column\(s\) \['channel'\]"):
        clean.clean_tables({"events": events}, TAX, KEY, now=NOW)


def test_unknown_table_raises():
    with pytest.raises(clean.CleanError, match="unknown table"):
        clean.clean_tables({"contacts": pd.DataFrame()}, TAX, KEY, now=NOW)


def test_one_clean_customer_passes_unchanged_with_every_rule_logged_at_zero():
    customers = staged("customers", [{"customer_ref": "K1", "segment": "private", "region": "Nord",
                                      "signup_date": "2024-01-10", "contact_consent": True}],
                       is_test=pd.array([False]), pii_name=["Anna"], pii_email=["a@x.de"], pii_phone=[None])
    out = clean.clean_tables({"customers": customers}, TAX, KEY, now=NOW)
    assert_frame_equal(out.tables["customers"], canonical("customers", [
        {"customer_id": pid("K1"), "segment": "private", "region": "Nord",
         "signup_date": "2024-01-10", "contact_consent": True}]))
    assert_frame_equal(out.reidentification, pd.DataFrame({
        "customer_id": [pid("K1")], "customer_ref": ["K1"], "pii_name": ["Anna"],
        "pii_email": ["a@x.de"], "pii_phone": [None]}).astype(TEXT))
    assert out.log["rule"].tolist() == [
        "exact duplicate rows dropped", "conflicting duplicate keys", "test accounts dropped",
        "unknown code set to missing",
        "implausible timestamp set to missing", "implausible timestamp set to missing",
        "implausible timestamp set to missing", "timestamp before its predecessor set to missing",
        "missing consent set to False", "rows missing a required value dropped", "customer ids pseudonymised"]
    assert out.log["rows"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert set(out.log["step"]) == {"clean"} and set(out.log["table"]) == {"customers"}


def test_without_customers_they_are_derived_one_per_customer_ref_of_the_other_tables():
    events = staged("events", [{"event_id": "E1", "customer_ref": "K9", "timestamp": "2024-03-01",
                                "channel": "phone", "touchpoint": "order"},
                               {"event_id": "E2", "customer_ref": None, "timestamp": "2024-03-02",
                                "channel": "phone", "touchpoint": "order"}], file="log.csv")
    orders = staged("orders", [{"order_id": "O1", "customer_ref": "K7", "timestamp": "2024-03-01"},
                               {"order_id": "O2", "customer_ref": "K9", "timestamp": "2024-03-03"},
                               {"order_id": "O3", "customer_ref": None, "timestamp": "2024-03-03"}])
    out = clean.clean_tables({"events": events, "orders": orders}, TAX, KEY, now=NOW)
    assert_frame_equal(out.tables["customers"], canonical("customers", [
        {"customer_id": pid("K9"), "contact_consent": False}, {"customer_id": pid("K7"), "contact_consent": False}]))
    assert_frame_equal(out.tables["events"], canonical("events", [     # an event without a customer is kept
        {"event_id": "E1", "customer_id": pid("K9"), "timestamp": "2024-03-01", "channel": "phone",
         "touchpoint": "order", "stage": "purchase"},
        {"event_id": "E2", "customer_id": None, "timestamp": "2024-03-02", "channel": "phone",
         "touchpoint": "order", "stage": "purchase"}]))
    assert out.tables["orders"]["order_id"].tolist() == ["O1", "O2"]        # an order still needs its customer
    derived = out.log.iloc[0]
    assert (derived["table"], derived["rule"], derived["rows"]) == ("customers", clean.DERIVED_RULE, 2)
    assert derived["detail"] == ("no customers table: one row per customer_ref seen in events 1, orders 1; "
                                 "contact_consent False, signup_date empty")
    assert "dropped" not in derived["rule"] and "derived" in derived["rule"]
    orphans = out.log.loc[lambda d: d["rule"] == "rows of unknown customers dropped", ["table", "rows"]]
    assert orphans.values.tolist() == [["events", 0], ["orders", 0]]
    assert out.reidentification["customer_ref"].tolist() == ["K9", "K7"]


def test_derived_customers_keep_the_lineage_of_the_row_that_named_them():
    events = staged("events", [{"event_id": "E1", "customer_ref": "K9", "timestamp": "2024-03-01",
                                "channel": "phone", "touchpoint": "order"}], file="log.csv")
    derived, log = clean._derive_customers({"events": events})
    assert derived["customers"][["customer_ref", "_file", "_row", "is_test"]].values.tolist() == [["K9", "log.csv", 2, False]]
    assert list(derived["customers"].columns) == schema.staged_columns("customers") + [
        "is_test", "pii_name", "pii_email", "pii_phone", "_file", "_row"]
    assert derived["events"] is events and len(log) == 1


def test_nothing_is_derived_without_customer_refs_or_with_a_customers_table():
    events = staged("events", [{"event_id": "E1", "customer_ref": None, "timestamp": "2024-03-01",
                                "channel": "phone", "touchpoint": "order"}])
    out = clean.clean_tables({"events": events}, TAX, KEY, now=NOW)
    assert "customers" not in out.tables and out.reidentification.empty
    customers = staged("customers", [{"customer_ref": "K1", "contact_consent": True}], is_test=pd.array([False]),
                       pii_name=[None], pii_email=[None], pii_phone=[None])
    events = events.assign(customer_ref=pd.Series(["K9"], dtype=TEXT))
    out = clean.clean_tables({"customers": customers, "events": events}, TAX, KEY, now=NOW)
    assert out.tables["customers"]["customer_id"].tolist() == [pid("K1")]
    assert out.tables["events"].empty                                     # K9 is an unknown customer
    assert clean.DERIVED_RULE not in out.log["rule"].tolist()


def test_empty_customers_table_is_derived_like_a_missing_one():
    events = staged("events", [{"event_id": "E1", "customer_ref": "K9", "timestamp": "2024-03-01",
                                "channel": "phone", "touchpoint": "order"}])
    out = clean.clean_tables({"customers": staged("customers", []), "events": events}, TAX, KEY, now=NOW)
    assert out.tables["customers"]["customer_id"].tolist() == [pid("K9")]
    assert list(out.tables["customers"].columns) == schema.TABLES["customers"].names
    assert out.tables["events"]["event_id"].tolist() == ["E1"]
    assert list(out.reidentification.columns) == clean.REIDENTIFICATION_COLUMNS


def test_csat_is_checked_against_each_answers_own_scale():
    feedback = staged("feedback", [
        {"response_id": "R1", "csat": 0.0},                                    # default 1-5: out
        {"response_id": "R2", "csat": 5.0},
        {"response_id": "R3", "csat": 0.0, "csat_max": 10.0},                  # scale [0, 10] (min from the mapping)
        {"response_id": "R4", "csat": 11.0, "csat_max": 10.0},
        {"response_id": "R5", "csat": 0.0, "csat_max": 10.0},                  # scale [1, 10]: 0 is out
        {"response_id": "R6", "csat": 6.0, "csat_max": 10.0},                  # no csat_min: 0 to csat_max
    ], csat_min=[np.nan, np.nan, 0.0, 0.0, 1.0, np.nan])
    out = clean.clean_tables({"feedback": feedback}, TAX, KEY, now=NOW)
    assert out.tables["feedback"]["csat"].tolist() == pytest.approx([np.nan, 5.0, 0.0, np.nan, np.nan, 6.0], nan_ok=True)
    assert "csat_min" not in out.tables["feedback"].columns
    assert out.tables["feedback"]["csat_max"].tolist() == pytest.approx([np.nan, np.nan, 10, 10, 10, 10], nan_ok=True)
    rule = out.log.loc[lambda d: d["detail"].str.startswith("csat outside")].iloc[0]
    assert rule["rows"] == 3
    assert rule["detail"].startswith("csat outside its scale (csat_min-csat_max; 1-5 when not given): 0.0 x2, 11.0 x1")


# --- one staged set that triggers every rule ---------------------------------------------------
@pytest.fixture(scope="module")
def bad():
    customers = staged("customers", [
        {"customer_ref": "K1", "segment": "private", "signup_date": "2024-01-10", "contact_consent": True},  # row 2
        {"customer_ref": "K1", "segment": "private", "signup_date": "2024-01-10", "contact_consent": True},  # 3 exact dup
        {"customer_ref": "K2", "segment": "alien", "signup_date": "2024-02-01", "churn_date": "2024-01-01"},  # 4
        {"customer_ref": "KT", "segment": "private", "contact_consent": True},                             # 5 test
        {"customer_ref": None, "segment": "private", "contact_consent": True},                             # 6 no ref
        {"customer_ref": "K3", "segment": "business", "signup_date": "2099-01-01", "contact_consent": False},  # 7
    ], file="crm.csv", is_test=pd.array([False, False, None, True, False, False], dtype="boolean"),
        pii_name=["Anna", "Anna", "Ben", "Test", "Nobody", "Cem"], pii_email=None, pii_phone=None)
    events = staged("events", [
        {"event_id": "E1", "customer_ref": "K1", "timestamp": "2024-03-01", "channel": "phone", "touchpoint": "order"},      # 2
        {"event_id": "E1", "customer_ref": "K1", "timestamp": "2024-03-01", "channel": "phone", "touchpoint": "order"},      # 3 dup
        {"event_id": "E2", "customer_ref": "K2", "timestamp": "2024-03-02", "channel": "fax", "touchpoint": "complaint"},    # 4 fax
        {"event_id": "E3", "customer_ref": "K2", "timestamp": "2024-03-03", "channel": "email", "touchpoint": "complaint",
         "stage": "exit", "contact_reason": "bogus", "direction": "sideways"},                                             # 5
        {"event_id": "E4", "customer_ref": "KT", "timestamp": "2024-03-04", "channel": "phone", "touchpoint": "order"},      # 6 test
        {"event_id": "E5", "customer_ref": "K9", "timestamp": "2024-03-05", "channel": "chat", "touchpoint": "web_visit"},   # 7 orphan
        {"event_id": "E6", "customer_ref": "K1", "timestamp": "1990-01-01", "channel": "web", "touchpoint": "web_visit"},    # 8 old
        {"event_id": "E7", "customer_ref": "K1", "timestamp": None, "channel": "phone", "touchpoint": "invoice"},            # 9 no ts
        {"event_id": "E8", "customer_ref": "K1", "timestamp": "2024-03-06", "channel": "app", "touchpoint": "usage",
         "direction": "inbound", "wait_seconds": 30.0, "resolved": True},                                                 # 10
        {"event_id": "E9", "customer_ref": "K1", "timestamp": "2024-03-07", "channel": "app", "touchpoint": "usage"},       # 11
    ], file="contacts.csv")
    feedback = staged("feedback", [
        {"response_id": "R1", "customer_ref": "K1", "timestamp": "2024-04-01", "survey": "relationship", "nps": 11.0},
        {"response_id": "R2", "timestamp": "2024-04-02", "survey": "transactional", "touchpoint": "nowhere",
         "csat": 0.0, "ces": 8.0, "comment": "ok"},
        {"response_id": "R3", "customer_ref": "K9", "timestamp": "2024-04-03", "nps": 9.0},
        {"response_id": "R4", "customer_ref": "KT", "timestamp": "2024-04-04", "nps": 5.0},
        {"response_id": "R5", "customer_ref": "K2", "timestamp": "2024-04-05", "survey": "weird",
         "nps": 10.0, "csat": 5.0, "ces": 7.0},
    ], file="survey.csv")
    orders = staged("orders", [
        {"order_id": "O1", "customer_ref": "K1", "timestamp": "2024-05-01", "revenue": 10.0, "status": "completed"},
        {"order_id": "O2", "customer_ref": "K9", "timestamp": "2024-05-02", "revenue": 20.0, "status": "completed"},
        {"order_id": "O3", "customer_ref": "K2", "timestamp": "2024-05-03", "revenue": 30.0, "status": "lost"},
    ], file="shop.csv")
    campaigns = staged("campaigns", [
        {"campaign_id": "A", "customer_ref": "K1", "sent_at": "2024-06-01", "responded_at": "2024-05-01"},
        {"campaign_id": "A", "customer_ref": "K2", "sent_at": "2024-06-01", "responded_at": "2024-06-03"},
        {"campaign_id": "A", "customer_ref": "KT", "sent_at": "2024-06-01"},
    ], file="mail.csv")
    tables = {"customers": customers, "events": events, "feedback": feedback, "orders": orders,
              "campaigns": campaigns}
    copies = {name: df.copy(deep=True) for name, df in tables.items()}
    return tables, copies, clean.clean_tables(tables, TAX, KEY, now=NOW)


def test_inputs_are_not_mutated(bad):
    tables, copies, _ = bad
    for name in tables:
        assert_frame_equal(tables[name], copies[name])


def test_customers_cleaned(bad):
    assert_frame_equal(bad[2].tables["customers"], canonical("customers", [
        {"customer_id": pid("K1"), "segment": "private", "signup_date": "2024-01-10", "contact_consent": True},
        {"customer_id": pid("K2"), "signup_date": "2024-02-01", "contact_consent": False},
        {"customer_id": pid("K3"), "segment": "business", "contact_consent": False},
    ]))


def test_events_cleaned(bad):
    assert_frame_equal(bad[2].tables["events"], canonical("events", [
        {"event_id": "E1", "customer_id": pid("K1"), "timestamp": "2024-03-01", "channel": "phone",
         "touchpoint": "order", "stage": "purchase"},
        {"event_id": "E3", "customer_id": pid("K2"), "timestamp": "2024-03-03", "channel": "email",
         "touchpoint": "complaint", "stage": "service"},
        {"event_id": "E8", "customer_id": pid("K1"), "timestamp": "2024-03-06", "channel": "app",
         "touchpoint": "usage", "stage": "usage", "direction": "inbound", "wait_seconds": 30.0, "resolved": True},
        {"event_id": "E9", "customer_id": pid("K1"), "timestamp": "2024-03-07", "channel": "app",
         "touchpoint": "usage", "stage": "usage"},
    ]))


def test_feedback_cleaned(bad):
    assert_frame_equal(bad[2].tables["feedback"], canonical("feedback", [
        {"response_id": "R1", "customer_id": pid("K1"), "timestamp": "2024-04-01", "survey": "relationship"},
        {"response_id": "R2", "timestamp": "2024-04-02", "survey": "transactional", "comment": "ok"},
        {"response_id": "R3", "customer_id": pid("K9"), "timestamp": "2024-04-03", "nps": 9.0},
        {"response_id": "R5", "customer_id": pid("K2"), "timestamp": "2024-04-05",
         "nps": 10.0, "csat": 5.0, "ces": 7.0},
    ]))


def test_orders_and_campaigns_cleaned(bad):
    assert_frame_equal(bad[2].tables["orders"], canonical("orders", [
        {"order_id": "O1", "customer_id": pid("K1"), "timestamp": "2024-05-01", "revenue": 10.0, "status": "completed"},
        {"order_id": "O3", "customer_id": pid("K2"), "timestamp": "2024-05-03", "revenue": 30.0},
    ]))
    assert_frame_equal(bad[2].tables["campaigns"], canonical("campaigns", [
        {"campaign_id": "A", "customer_id": pid("K1"), "sent_at": "2024-06-01"},
        {"campaign_id": "A", "customer_id": pid("K2"), "sent_at": "2024-06-01", "responded_at": "2024-06-03"},
    ]))


def test_reidentification_holds_kept_customers_only(bad):
    assert_frame_equal(bad[2].reidentification, pd.DataFrame({
        "customer_id": [pid("K1"), pid("K2"), pid("K3")], "customer_ref": ["K1", "K2", "K3"],
        "pii_name": ["Anna", "Ben", "Cem"], "pii_email": [None] * 3, "pii_phone": [None] * 3}).astype(TEXT))


def test_log_counts_every_rule(bad):
    log = bad[2].log
    assert list(log.columns) == ["table", "step", "rule", "rows", "detail"]
    got = list(zip(log["table"], log["rule"], log["rows"]))
    assert got == [
        ("customers", "exact duplicate rows dropped", 1),
        ("customers", "conflicting duplicate keys", 0),
        ("customers", "test accounts dropped", 1),
        ("customers", "unknown code set to missing", 1),              # segment 'alien'
        ("customers", "implausible timestamp set to missing", 0),      # lead_date
        ("customers", "implausible timestamp set to missing", 1),      # signup_date 2099
        ("customers", "implausible timestamp set to missing", 0),      # churn_date
        ("customers", "timestamp before its predecessor set to missing", 1),
        ("customers", "missing consent set to False", 1),              # K2
        ("customers", "rows missing a required value dropped", 1),
        ("customers", "customer ids pseudonymised", 3),
        ("events", "exact duplicate rows dropped", 1),
        ("events", "conflicting duplicate keys", 0),
        ("events", "test accounts dropped", 1),
        ("events", "unknown code: rows dropped", 1),                   # channel 'fax'
        ("events", "unknown code: rows dropped", 0),                   # touchpoint
        ("events", "unknown code set to missing", 1),                  # contact_reason 'bogus'
        ("events", "unknown code set to missing", 1),                  # direction 'sideways'
        ("events", "implausible timestamp: rows dropped", 1),
        ("events", "rows missing a required value dropped", 1),
        ("events", "stage derived from touchpoint", 5),                # E5 (orphan) still present here
        ("events", "rows of unknown customers dropped", 1),
        ("events", "customer ids pseudonymised", 4),
        ("feedback", "exact duplicate rows dropped", 0),
        ("feedback", "conflicting duplicate keys", 0),
        ("feedback", "test accounts dropped", 1),
        ("feedback", "unknown code set to missing", 1),                # survey 'weird'
        ("feedback", "unknown code set to missing", 1),                # touchpoint 'nowhere'
        ("feedback", "out-of-range score set to missing", 1),          # nps 11
        ("feedback", "out-of-range score set to missing", 1),          # csat 0
        ("feedback", "out-of-range score set to missing", 1),          # ces 8
        ("feedback", "implausible timestamp set to missing", 0),
        ("feedback", "rows missing a required value dropped", 0),
        ("feedback", "feedback of unknown customers kept", 1),
        ("feedback", "customer ids pseudonymised", 3),
        ("orders", "exact duplicate rows dropped", 0),
        ("orders", "conflicting duplicate keys", 0),
        ("orders", "test accounts dropped", 0),
        ("orders", "unknown code set to missing", 1),                  # status 'lost'
        ("orders", "implausible timestamp: rows dropped", 0),
        ("orders", "rows missing a required value dropped", 0),
        ("orders", "rows of unknown customers dropped", 1),
        ("orders", "customer ids pseudonymised", 2),
        ("campaigns", "exact duplicate rows dropped", 0),
        ("campaigns", "conflicting duplicate keys", 0),
        ("campaigns", "test accounts dropped", 1),
        ("campaigns", "implausible timestamp: rows dropped", 0),       # sent_at
        ("campaigns", "implausible timestamp set to missing", 0),      # responded_at
        ("campaigns", "timestamp before its predecessor set to missing", 1),
        ("campaigns", "rows missing a required value dropped", 0),
        ("campaigns", "rows of unknown customers dropped", 0),
        ("campaigns", "customer ids pseudonymised", 2),
    ]


def test_log_details_name_values_files_and_rows(bad):
    detail = bad[2].log.set_index(["table", "rule"])["detail"]
    assert detail[("events", "unknown code: rows dropped")].iloc[0] == \
        "channel not in 'channels': 'fax' x1 (e.g. contacts.csv row 4)"
    assert detail[("customers", "rows missing a required value dropped")] == "customer_ref: 1 (e.g. crm.csv row 6)"
    assert detail[("events", "rows missing a required value dropped")] == "timestamp: 1 (e.g. contacts.csv row 9)"
    assert detail[("feedback", "out-of-range score set to missing")].iloc[0] == \
        "nps outside 0-10: 11.0 x1 (e.g. survey.csv row 2)"
    assert detail[("events", "exact duplicate rows dropped")] == \
        "equal in every canonical column, first kept (e.g. contacts.csv row 3)"


def test_conflicting_duplicate_keys_stop_cleaning_naming_file_column_and_rows():
    events = staged("events", [
        {"event_id": "E1", "customer_ref": "K1", "timestamp": "2024-03-01", "channel": "phone", "touchpoint": "order"},
        {"event_id": "E1", "customer_ref": "K1", "timestamp": "2024-03-01", "channel": "phone", "touchpoint": "order"},
        {"event_id": "E2", "customer_ref": "K1", "timestamp": "2024-03-02", "channel": "phone", "touchpoint": "order"},
        {"event_id": "E2", "customer_ref": "K2", "timestamp": "2024-03-05", "channel": "web", "touchpoint": "order"},
    ])
    with pytest.raises(clean.CleanError) as err:
        clean.clean_tables({"events": events}, TAX, KEY, now=NOW)
    text = str(err.value)
    assert "event_id" in text and "'E2'" in text and "2 rows" in text and "'E1'" not in text
    assert "events.csv row 4" in text and "events.csv row 5" in text


def test_record_ids_built_from_the_customer_number_carry_the_pseudonym():
    events = staged("events", [
        {"event_id": "K1-cancellation", "customer_ref": "K1", "timestamp": "2024-03-01", "channel": "phone",
         "touchpoint": "order"},
        {"event_id": "T-7", "customer_ref": "K1", "timestamp": "2024-03-02", "channel": "phone", "touchpoint": "order"},
    ])
    out = clean.clean_tables({"events": events}, TAX, KEY, now=NOW)
    assert out.tables["events"]["event_id"].tolist() == [pid("K1") + "-cancellation", "T-7"]


# --- pseudonymise_staged: what the raw gate shows -----------------------------------------------
def test_pseudonymise_staged_empty():
    assert clean.pseudonymise_staged({}, KEY) == {}


def test_pseudonymise_staged_swaps_refs_drops_pii_and_keeps_lineage():
    customers = staged("customers", [{"customer_ref": "K1", "contact_consent": True},
                                     {"customer_ref": None, "contact_consent": False}],
                       is_test=[False, False], pii_name=["Anna Lange", None], pii_email=["a@x.de", None],
                       pii_phone=["0170 1234567", None])
    events = staged("events", [
        {"event_id": "K1-cancellation", "customer_ref": "K1", "timestamp": "2024-03-01", "channel": "phone",
         "touchpoint": "order"},
        {"event_id": "T-7", "customer_ref": "K2", "timestamp": "2024-03-02", "channel": "phone", "touchpoint": "order"},
    ])
    before = customers.copy()
    out = clean.pseudonymise_staged({"customers": customers, "events": events}, KEY)
    assert_frame_equal(customers, before)                                   # input not modified
    expected = (before.drop(columns=list(schema.PII_COLUMNS))
                .assign(customer_ref=pd.Series([pid("K1"), None], dtype=TEXT)))
    assert_frame_equal(out["customers"], expected)
    assert out["events"]["customer_ref"].tolist() == [pid("K1"), pid("K2")]
    assert out["events"]["event_id"].tolist() == [pid("K1") + "-cancellation", "T-7"]
    assert out["events"][["_file", "_row"]].values.tolist() == [["events.csv", 2], ["events.csv", 3]]


# --- labels: comments labelled by hand (no customer column) ---------------------------------------
def test_labels_follow_their_feedback_rows_and_never_make_customers():
    feedback = staged("feedback", [{"response_id": "K1-r", "customer_ref": "K1", "nps": 3.0},
                                   {"response_id": "R2", "nps": 9.0}])
    labels = staged("labels", [{"response_id": "K1-r", "sentiment": "negative", "themes": "invoice;refund"},
                               {"response_id": "R2", "themes": ""},
                               {"response_id": "R2", "themes": ""},                 # exact duplicate
                               {"response_id": "R3", "sentiment": "positive"}])
    out = clean.clean_tables({"feedback": feedback, "labels": labels}, TAX, KEY, now=NOW)
    assert_frame_equal(out.tables["labels"], canonical("labels", [
        {"response_id": pid("K1") + "-r", "sentiment": "negative"},                # 'refund' is no theme code
        {"response_id": "R2", "themes": ""}]))
    assert out.tables["customers"]["customer_id"].tolist() == [pid("K1")]          # derived from feedback only
    rules = out.log.query("table == 'labels' and rows > 0").set_index("rule")["rows"].to_dict()
    assert rules == {"exact duplicate rows dropped": 1, "unknown code set to missing": 1,
                     "labels of responses not in feedback dropped": 1}
    alone = clean.clean_tables({"labels": labels.iloc[:1]}, TAX, KEY, now=NOW)
    assert alone.tables["labels"]["response_id"].tolist() == ["K1-r"] and "customers" not in alone.tables
    assert alone.log.query("table == 'labels'")["detail"].iloc[-1] == "not applied: no feedback table"


def test_labels_without_a_sentiment_or_themes_are_dropped_and_the_raw_gate_sees_pseudonymised_ids():
    feedback = staged("feedback", [{"response_id": "K1-r", "customer_ref": "K1"}])
    labels = staged("labels", [{"response_id": "K1-r"}, {"response_id": "K1-r "}], file="rater.csv")
    out = clean.clean_tables({"feedback": feedback, "labels": labels}, TAX, KEY, now=NOW)
    assert out.tables["labels"].empty
    dropped = out.log.query("rule == 'labels without sentiment or themes dropped'").iloc[0]
    assert (dropped["rows"], dropped["detail"]) == (2, "sentiment and themes missing (e.g. rater.csv row 2, rater.csv row 3)")
    shown = clean.pseudonymise_staged({"feedback": feedback, "labels": labels}, KEY)
    assert shown["labels"]["response_id"].tolist() == [pid("K1") + "-r", "K1-r "]   # as its feedback row; others as given
