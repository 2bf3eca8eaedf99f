"""Stage 02's joins on the engine give what the pandas joins they replace gave.

`feedback_table.with_contact_channel` (the channel of a transactional answer's latest contact at its
touchpoint within the window before it) and `with_customers` run on the engine, so the event log and
the customers never come into pandas. The pandas versions they replace are kept here as the reference
(`pandas_contact_channel`, `pandas_with_customers`) and compared on a hand-made case with the edge
cases (ties on the timestamp, contacts exactly at the window's edges, several contacts, answers
without customer, touchpoint or date, events without customer or channel), on random cases, on
Parquet read through the catalog as the notebook reads it, and on Spark.

One difference is by design: several contacts at the same latest moment with different channels.
pandas took the later row of the file, which no engine sees; the engine takes the last channel code
in alphabetical order. The references below get such ties in that order, and the engine's answer does
not depend on the row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from pandas.testing import assert_frame_equal

from conftest import write_processed_frames
from cxlib import catalog, engine, feedback_table, voice
from cxlib.metrics import MetricsError

DAY = pd.Timedelta(days=1)
US = pd.Timedelta(microseconds=1)
T0 = pd.Timestamp("2024-03-10 12:00", tz="UTC")
CHANNELS = ["chat", "email", "letter", "phone", "web"]


# --- the pandas reference (the code before the engine) -------------------------------------------
def pandas_contact_channel(feedback: pd.DataFrame, events: pd.DataFrame, *, within_days: float = 30) -> pd.DataFrame:
    keys = ["customer_id", "touchpoint"]
    answers = (feedback[["customer_id", "timestamp", "touchpoint"]]
               .assign(_pos=np.arange(len(feedback)), _t=lambda d: pd.to_datetime(d["timestamp"], utc=True))
               .dropna(subset=["customer_id", "touchpoint", "_t"]))
    contacts = (events.loc[events["touchpoint"].isin(answers["touchpoint"].unique()), [*keys, "timestamp", "channel"]]
                .assign(_t=lambda d: pd.to_datetime(d["timestamp"], utc=True))
                .dropna(subset=["customer_id", "_t"])
                .drop(columns="timestamp"))
    matched = pd.merge_asof(answers.sort_values("_t", kind="stable"), contacts.sort_values("_t", kind="stable"),
                            on="_t", by=keys, direction="backward",
                            tolerance=pd.Timedelta(days=within_days), allow_exact_matches=True)
    channel = matched.set_index("_pos")["channel"].reindex(np.arange(len(feedback))).astype("str")
    return feedback.assign(channel=channel.to_numpy())


def pandas_with_customers(feedback: pd.DataFrame, customers: pd.DataFrame, *, columns=None) -> pd.DataFrame:
    wanted = [c for c in (columns if columns is not None else customers.columns)
              if c != "customer_id" and c not in feedback.columns]
    return feedback.merge(customers[["customer_id", *wanted]], on="customer_id", how="left", validate="many_to_one")


def in_tie_order(events: pd.DataFrame) -> pd.DataFrame:
    """`events` with ties on (customer, touchpoint, time) ordered by channel, missing first: the
    order in which the pandas reference picks what the engine picks."""
    return events.sort_values("channel", kind="stable", na_position="first").reset_index(drop=True)


# --- the hand-made case --------------------------------------------------------------------------
def hand_feedback() -> pd.DataFrame:
    ts = lambda *days: pd.Series([T0 + d * DAY if d is not None else pd.NaT for d in days],  # noqa: E731
                                 dtype="datetime64[us, UTC]")
    return pd.DataFrame({
        "response_id": [f"R{i}" for i in range(12)],
        "customer_id": pd.Series(["A", "A", "B", "B", "C", None, "D", "A", "E", "E", "F", "A"], dtype="str"),
        "timestamp": ts(0, -60, 0, 0, 0, 0, 0, None, 0, 0, 0, 0),
        "touchpoint": pd.Series(["service_contact", "service_contact", "complaint", "order", "service_contact",
                                 "service_contact", "complaint", "service_contact", "complaint", "order", "complaint",
                                 None], dtype="str"),
        "nps": [9.0, 3.0, 7.0, 10.0, 0.0, 5.0, 8.0, 6.0, 2.0, 9.0, 4.0, 10.0],
    }).set_axis(pd.RangeIndex(100, 112))       # not 0..n-1: the index must survive


def hand_events() -> pd.DataFrame:
    rows = [
        ("A", -9, "service_contact", "email"),       # R0: older contact
        ("A", -1, "service_contact", "phone"),       # R0: the latest before -> phone
        ("A", 0.5, "service_contact", "chat"),       # after R0
        ("A", -0.5, "invoice", "web"),               # another touchpoint
        ("A", -95, "service_contact", "letter"),     # R1 (-60): 35 days before -> outside the window
        ("B", 0, "complaint", "phone"),              # R2: at the answer's moment -> counts; tie with the next two
        ("B", 0, "complaint", "email"),
        ("B", 0, "complaint", "phone"),
        ("B", -30, "order", "web"),                  # R3: exactly 30 days before -> counts
        ("C", -30 * DAY - US, "service_contact", "web"),   # R4: a microsecond beyond the window -> none
        ("C", US, "service_contact", "phone"),       # R4: a microsecond after -> none
        (None, -1, "service_contact", "phone"),      # an event without customer never matches
        ("D", -2, "complaint", "letter"),            # R6: tie of two channels at the latest moment
        ("D", -2, "complaint", "chat"),
        ("D", -3, "complaint", "web"),
        ("E", -1, "complaint", None),                # R8: latest contact without channel -> NA
        ("E", -4, "complaint", "phone"),
        ("E", -5, "order", "shop"),                  # R9: shop
        ("F", -2, "complaint", None),                # R10: tie of a missing and a known channel -> the known one
        ("F", -2, "complaint", "email"),
    ]
    return pd.DataFrame({
        "event_id": [f"e{i}" for i in range(len(rows))],
        "customer_id": pd.Series([r[0] for r in rows], dtype="str"),
        "timestamp": pd.Series([T0 + (r[1] if isinstance(r[1], pd.Timedelta) else r[1] * DAY) for r in rows],
                               dtype="datetime64[us, UTC]"),
        "touchpoint": pd.Series([r[2] for r in rows], dtype="str"),
        "channel": pd.Series([r[3] for r in rows], dtype="str"),
    })


EXPECTED = ["phone", None, "phone", "web", None, None, "letter", None, None, "shop", "email", None]


def channels(frame: pd.DataFrame) -> list:
    return [None if pd.isna(v) else v for v in frame["channel"]]


def test_hand_made_case_gives_the_channels_it_should():
    out = feedback_table.with_contact_channel(hand_feedback(), hand_events(), within_days=30)
    assert channels(out) == EXPECTED
    assert_frame_equal(out.drop(columns="channel"), hand_feedback())         # rows, order and index unchanged
    assert out["channel"].dtype == "str"


def test_hand_made_case_equals_the_pandas_reference():
    events = in_tie_order(hand_events())
    expected = pandas_contact_channel(hand_feedback(), events, within_days=30)
    assert channels(expected) == EXPECTED
    assert_frame_equal(feedback_table.with_contact_channel(hand_feedback(), events, within_days=30), expected)


def test_a_tie_does_not_depend_on_the_row_order():
    # the one difference by design: pandas took the later row of the file (chat for R6), the engine the last code
    assert channels(pandas_contact_channel(hand_feedback(), hand_events()))[6] == "chat" and EXPECTED[6] == "letter"
    shuffled = hand_events().sample(frac=1, random_state=7).reset_index(drop=True)
    assert channels(feedback_table.with_contact_channel(hand_feedback(), shuffled)) == EXPECTED
    reversed_ = hand_events().iloc[::-1]
    assert channels(feedback_table.with_contact_channel(hand_feedback(), reversed_)) == EXPECTED


def test_a_window_of_a_fraction_of_a_day():
    out = feedback_table.with_contact_channel(hand_feedback(), hand_events(), within_days=1.5)
    # R0: phone one day before; R6: the letter/chat tie is two days before -> none; R9: the shop order 5 days before -> none
    assert channels(out) == ["phone", None, "phone", None, None, None, None, None, None, None, None, None]
    assert_frame_equal(out, pandas_contact_channel(hand_feedback(), in_tie_order(hand_events()), within_days=1.5))


def test_engine_tables_read_from_parquet_as_the_notebook_reads_them(tmp_path):
    folder = write_processed_frames(tmp_path / "processed", {"events": hand_events(), "customers": hand_customers()})
    lazy = catalog.tables(folder, voice.ENGINE_TABLES, engine="duckdb")
    out = feedback_table.with_contact_channel(hand_feedback(), lazy["events"], within_days=30)
    assert_frame_equal(out, pandas_contact_channel(hand_feedback(), in_tie_order(hand_events())))
    customers = catalog.read(folder, "customers")["customers"]
    for columns in (None, ["segment"]):
        joined = feedback_table.with_customers(hand_feedback(), lazy["customers"], columns=columns)
        assert_frame_equal(joined, pandas_with_customers(hand_feedback(), customers, columns=columns))
    assert joined["segment"].tolist()[:4] == ["private", "private", "business", "business"]


def test_empty_events_give_no_channel_and_an_absent_events_table_stops_as_before(tmp_path):
    empty = write_processed_frames(tmp_path / "empty", {"customers": hand_customers()})
    lazy = catalog.tables(empty, ["events"])
    assert feedback_table.with_contact_channel(hand_feedback(), lazy["events"])["channel"].isna().all()
    (empty / "events.parquet").unlink()
    with pytest.raises(catalog.CatalogError, match=r"events\.parquet: processed table 'events' not found"):
        catalog.tables(empty, voice.ENGINE_TABLES)
    with pytest.raises(catalog.CatalogError, match=r"events\.parquet: processed table 'events' not found"):
        catalog.read(empty, "events")                    # the message the notebook gave before


def test_no_answer_to_attribute_does_not_ask_the_engine():
    undated = hand_feedback().assign(timestamp=pd.NaT)
    assert feedback_table.with_contact_channel(undated, hand_events())["channel"].isna().all()
    assert len(feedback_table.with_contact_channel(hand_feedback().iloc[0:0], hand_events())) == 0


def test_missing_columns_and_a_bad_window_raise():
    with pytest.raises(MetricsError, match=r"events: missing column\(s\) \['channel'\]"):
        feedback_table.with_contact_channel(hand_feedback(), hand_events().drop(columns="channel"))
    with pytest.raises(MetricsError, match=r"events: missing column\(s\) \['channel'\]"):
        feedback_table.with_contact_channel(hand_feedback(), engine.table(hand_events().drop(columns="channel")))
    with pytest.raises(MetricsError, match="within_days must be positive"):
        feedback_table.with_contact_channel(hand_feedback(), hand_events(), within_days=0)


@settings(max_examples=40, deadline=None)
@given(hst.lists(hst.tuples(hst.sampled_from("AB"), hst.integers(-40, 5), hst.sampled_from(["complaint", "order"]),
                            hst.sampled_from([*CHANNELS, None])), max_size=25),
       hst.lists(hst.tuples(hst.sampled_from(["A", "B", None]), hst.integers(-5, 5),
                            hst.sampled_from(["complaint", "order", None])), min_size=1, max_size=8),
       hst.sampled_from([1, 2.5, 30]))
def test_random_cases_equal_the_pandas_reference(event_rows, answer_rows, within_days):
    events = pd.DataFrame({
        "customer_id": pd.Series([r[0] for r in event_rows], dtype="str"),
        "timestamp": pd.Series([T0 + r[1] * DAY for r in event_rows], dtype="datetime64[us, UTC]"),
        "touchpoint": pd.Series([r[2] for r in event_rows], dtype="str"),
        "channel": pd.Series([r[3] for r in event_rows], dtype="str"),
    })
    feedback = pd.DataFrame({
        "customer_id": pd.Series([r[0] for r in answer_rows], dtype="str"),
        "timestamp": pd.Series([T0 + r[1] * DAY for r in answer_rows], dtype="datetime64[us, UTC]"),
        "touchpoint": pd.Series([r[2] for r in answer_rows], dtype="str"),
    })
    out = feedback_table.with_contact_channel(feedback, events, within_days=within_days)
    assert_frame_equal(out, pandas_contact_channel(feedback, in_tie_order(events), within_days=within_days))


# --- customers -------------------------------------------------------------------------------------
def hand_customers() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": pd.Series(["A", "B", "C", "D", "Z"], dtype="str"),
        "segment": pd.Series(["private", "business", None, "private", "business"], dtype="str"),
        "region": pd.Series(["north", "south", "north", "east", "west"], dtype="str"),
        "signup_date": pd.Series(pd.to_datetime(["2023-01-01", None, "2023-05-02", "2022-12-31", "2024-01-01"], utc=True),
                                 dtype="datetime64[us, UTC]"),
        "lifetime_value": [120.5, 80.0, np.nan, 10.0, 5.0],
        "contact_consent": pd.array([True, False, None, True, False], dtype="boolean"),     # canonical dtypes
    })


@pytest.mark.parametrize("columns", [None, ["segment"], ["region", "signup_date"], []])
def test_with_customers_equals_the_pandas_merge(columns):
    out = feedback_table.with_customers(hand_feedback(), hand_customers(), columns=columns)
    expected = pandas_with_customers(hand_feedback(), hand_customers(), columns=columns)
    assert_frame_equal(out, expected)
    assert list(out.index) == list(range(12))                   # as a merge: a fresh index


def test_with_customers_reports_duplicate_ids_and_missing_columns():
    twice = pd.concat([hand_customers(), hand_customers().iloc[[3, 1]]])
    with pytest.raises(MetricsError, match=r"customers\.customer_id: ids not unique, first: \['B', 'D'\]"):
        feedback_table.with_customers(hand_feedback(), twice)
    with pytest.raises(MetricsError, match=r"customers: missing column\(s\) \['tenure'\]"):
        feedback_table.with_customers(hand_feedback(), hand_customers(), columns=["tenure"])
    with pytest.raises(MetricsError, match=r"feedback: missing column\(s\) \['customer_id'\]"):
        feedback_table.with_customers(hand_feedback().drop(columns="customer_id"), hand_customers())


# --- Spark -------------------------------------------------------------------------------------------
@pytest.fixture
def spark_session(spark_local):
    """A local[2] Spark connection (conftest's, one per worker)."""
    return spark_local


@pytest.mark.spark
def test_the_same_channels_and_customers_on_spark(spark_session, tmp_path):
    folder = write_processed_frames(tmp_path / "processed", {"events": hand_events(), "customers": hand_customers()})
    lazy = catalog.tables(folder, voice.ENGINE_TABLES, con=spark_session)
    out = feedback_table.with_contact_channel(hand_feedback(), lazy["events"], within_days=30)
    assert_frame_equal(out, pandas_contact_channel(hand_feedback(), in_tie_order(hand_events())))
    customers = catalog.read(folder, "customers")["customers"]
    joined = feedback_table.with_customers(hand_feedback(), lazy["customers"])
    assert_frame_equal(joined, pandas_with_customers(hand_feedback(), customers))
