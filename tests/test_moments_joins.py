"""Stage 04's per-customer orderings are joins and aggregates, not windows.

DuckDB's window operator keeps its input in memory (it ran out of 1 GB at 5M customers in
`moments.prepare`); joins and aggregates spill to disk. Each test compares the join form with a
reference written in pandas the way the definition reads (next contact, latest contact, merged
spells, previous due day) on random contacts with ties in time; the churn cells computed in
parts of whole customers must equal one pass; and a test fails if a window comes back into any
query of the stage's preparation or churn cells.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import engine, moments
from cxlib.moments import churn

DAY = 86_400
REASONS = ["invoice_unclear", "complaint_hotline"]


def seconds(times: pd.Series) -> pd.Series:
    """Whole seconds since the epoch, truncated (as the engine's)."""
    return (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def random_contacts(seed: int, n: int = 160) -> pd.DataFrame:
    """Contacts of 6 customers and 2 reasons over 90 days; a fifth of them share their second
    with another (some a millisecond apart), resolved True / False / missing."""
    rng = np.random.default_rng(seed)
    base = pd.Timestamp("2024-01-01", tz="UTC")
    at = base + pd.to_timedelta(rng.integers(0, 90 * 24, n) * 3600, unit="s")
    ties = rng.random(n) < 0.2
    at = pd.DatetimeIndex(np.where(ties, np.roll(at, 1), at)).tz_convert("UTC")
    at = at + pd.to_timedelta(np.where(rng.random(n) < 0.1, 1, 0), unit="ms")
    resolved = pd.array(rng.choice([True, False, None], n, p=[0.6, 0.25, 0.15]), dtype="boolean")
    return pd.DataFrame({
        "event_id": pd.Series([f"e{i:03d}" for i in rng.permutation(n)], dtype="str"),
        "customer_id": pd.Series(rng.choice(list("ABCDEF"), n), dtype="str"),
        "timestamp": at, "touchpoint": pd.Series("service_contact", index=range(n), dtype="str"),
        "contact_reason": pd.Series(rng.choice(REASONS, n), dtype="str"),
        "channel": pd.Series(rng.choice(["phone", "email"], n), dtype="str"),
        "resolved": resolved, "wait_seconds": rng.choice([30.0, 400.0, 1200.0], n),
        "direction": pd.Series("inbound", index=range(n), dtype="str")})


def reference_fcr(contacts: pd.DataFrame, repeat_days: float) -> pd.Series:
    """first_contact_resolution by its definition: the next contact of the same customer and
    reason in (timestamp, event id) order within repeat_days makes a resolved contact 'no'."""
    c = contacts.sort_values(["customer_id", "contact_reason", "timestamp", "event_id"]).copy()
    sec = seconds(c["timestamp"])
    nxt = sec.groupby([c["customer_id"], c["contact_reason"]]).shift(-1)
    followed = nxt.notna() & (nxt - sec <= repeat_days * DAY)
    fcr = np.where(c["resolved"].isna(), "unknown", np.where(c["resolved"].fillna(False) & ~followed, "yes", "no"))
    return pd.Series(fcr, index=c["event_id"].to_numpy()).sort_index()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("repeat_days", [0, 2, 7])
def test_first_contact_resolution_by_a_join_is_the_next_contact_rule(seed, repeat_days):
    contacts = random_contacts(seed)
    out = engine.to_pandas(moments.handled_contacts(contacts, REASONS, repeat_days=repeat_days))
    got = out.set_index("event_id")["first_contact_resolution"].sort_index()
    expected = reference_fcr(contacts, repeat_days)
    assert got.index.tolist() == expected.index.tolist()
    assert got.tolist() == expected.tolist()
    assert {"yes", "no", "unknown"} <= set(got)        # the random data reaches every level


def reference_exposures(handled: pd.DataFrame, feedback: pd.DataFrame, window_days: float) -> pd.DataFrame:
    """Per response and moment: contacts in the window up to the answer and the latest of them
    (latest second, then highest event id)."""
    h = handled.assign(_s=seconds(handled["timestamp"]))
    f = feedback.assign(_fs=seconds(feedback["timestamp"]))
    j = f.merge(h, on="customer_id", suffixes=("_f", ""))
    j = j.loc[(j["_s"] <= j["_fs"]) & (j["_s"] >= j["_fs"] - int(window_days * DAY))]
    j = j.sort_values(["response_id", "moment", "_s", "event_id"], ascending=[True, True, False, False])
    latest = j.groupby(["response_id", "moment"], as_index=False).first()
    counts = j.groupby(["response_id", "moment"]).size().rename("contacts").reset_index()
    return (latest.merge(counts, on=["response_id", "moment"])
            .rename(columns={"timestamp": "last_contact"})
            [["response_id", "moment", "contacts", "last_contact", *moments.HANDLING_DIMENSIONS]]
            .sort_values(["response_id", "moment"]).reset_index(drop=True))


@pytest.mark.parametrize("seed", [3, 4])
def test_the_latest_contact_before_an_answer_by_aggregates_is_the_last_in_order(seed):
    contacts = random_contacts(seed)
    rng = np.random.default_rng(seed)
    n = 40
    feedback = pd.DataFrame({
        "response_id": pd.Series([f"r{i}" for i in range(n)], dtype="str"),
        "customer_id": pd.Series(rng.choice(list("ABCDEFG"), n), dtype="str"),
        "timestamp": pd.Timestamp("2024-01-20", tz="UTC") + pd.to_timedelta(rng.integers(0, 70 * DAY, n), unit="s")})
    handled = engine.to_pandas(moments.handled_contacts(contacts, REASONS))
    got = moments.response_exposures(handled, feedback, window_days=10)
    expected = reference_exposures(handled, feedback, 10)
    assert len(got) > 10 and got["contacts"].max() > 1
    assert_frame_equal(got.astype({"contacts": "int64"}), expected.astype({"contacts": "int64"}), check_dtype=False)


def reference_islands(points: pd.DataFrame, window: int) -> pd.DataFrame:
    """Per customer and moment: contacts in time order, a new spell after a gap over `window`."""
    rows = []
    for (c, k), g in points.groupby(["_c", "_k"]):
        s = np.sort(g["_s"].unique())
        start = prev = s[0]
        for x in s[1:]:
            if x - prev > window:
                rows.append((c, k, start, prev + window))
                start = x
            prev = x
        rows.append((c, k, start, prev + window))
    return pd.DataFrame(rows, columns=["_c", "_k", "_lo", "_hi"])


@pytest.mark.parametrize("seed", [5, 6, 7])
@pytest.mark.parametrize("window_days", [1, 3, 8])
def test_exposed_spells_by_joins_merge_contacts_closer_than_the_window(seed, window_days):
    contacts = random_contacts(seed)
    points = pd.DataFrame({"_c": contacts["customer_id"], "_k": contacts["contact_reason"],
                           "_s": seconds(contacts["timestamp"])})
    window = window_days * DAY
    got = (engine.to_pandas(churn._islands(ibis.memtable(points), window))
           .sort_values(["_c", "_k", "_lo"]).reset_index(drop=True))
    expected = reference_islands(points, window)
    assert len(expected) > 12 and (expected["_hi"] - expected["_lo"] > window).any()    # some spells merged
    assert_frame_equal(got, expected, check_dtype=False)


def test_a_promise_without_since_counts_from_the_previous_due_day_of_the_customer():
    rng = np.random.default_rng(8)
    n = 60
    at = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 40, n) * DAY, unit="s")
    events = pd.DataFrame({
        "event_id": pd.Series([f"e{i:02d}" for i in rng.permutation(n)], dtype="str"),
        "customer_id": pd.Series(rng.choice(list("ABC"), n), dtype="str"), "timestamp": at,
        "touchpoint": pd.Series(rng.choice(["delivery_promised", "delivery", "order"], n, p=[0.4, 0.3, 0.3]), dtype="str"),
        "contact_reason": pd.Series(None, index=range(n), dtype="str")})
    rule = {"late": {"missed": {"due": "delivery_promised", "done": "delivery"}}}
    got = engine.to_pandas(moments.with_derived_moments(events, rules=rule))
    got = got.loc[got["contact_reason"].eq("late")].sort_values("event_id")
    due = events.loc[events["touchpoint"].eq("delivery_promised")].sort_values(["customer_id", "timestamp", "event_id"])
    start = due.groupby("customer_id")["timestamp"].shift(1)
    last = events.loc[events["touchpoint"].ne("delivery_promised"), "timestamp"].max()
    done = events.loc[events["touchpoint"].eq("delivery")]
    missed = [e for e, c, t, s in zip(due["event_id"], due["customer_id"], due["timestamp"], start)
              if t <= last and not ((done["customer_id"] == c) & (done["timestamp"] <= t)
                                    & (done["timestamp"] >= (s if pd.notna(s) else pd.Timestamp(0, tz="UTC")))).any()]
    assert 0 < len(missed) < len(due)
    assert sorted(got["event_id"].str.replace(r"^.*?(e\d+).*$", r"\1", regex=True)) == sorted(missed)


def test_no_query_of_the_preparation_or_the_churn_cells_uses_a_window(tax, monkeypatch):
    contacts = random_contacts(9)
    feedback = pd.DataFrame({"response_id": pd.Series(["r1", "r2"], dtype="str"),
                             "customer_id": pd.Series(["A", "B"], dtype="str"),
                             "timestamp": pd.to_datetime(["2024-02-01", "2024-03-01"], utc=True),
                             "nps": [3.0, 9.0]})
    customers = pd.DataFrame({"customer_id": pd.Series(list("ABCDEF"), dtype="str"),
                              "segment": pd.Series(["private", "business"] * 3, dtype="str"),
                              "signup_date": pd.Timestamp("2023-01-01", tz="UTC"),
                              "churn_date": pd.to_datetime([None, "2024-02-15", None, None, "2024-03-10", None], utc=True)})
    queries, to_pandas = [], engine.to_pandas
    monkeypatch.setattr(engine, "to_pandas", lambda expr, *a, **k: queries.append(expr) or to_pandas(expr, *a, **k))
    inputs = moments.prepare({"events": contacts, "feedback": feedback, "customers": customers}, tax)
    cells = churn.churn_cells(inputs.handled, customers, start=inputs.start, end=inputs.end)
    assert len(cells) and cells["days_exposed"].gt(0).any()
    sql = [str(ibis.to_sql(q, dialect="duckdb")) for q in queries if isinstance(q, ibis.Expr)]
    assert len(sql) >= 5
    assert not [s for s in sql if " OVER " in s.upper() or "OVER(" in s.upper()]


def test_churn_cells_in_parts_of_whole_customers_equal_one_pass(monkeypatch):
    contacts = random_contacts(10, n=300)
    handled = moments.handled_contacts(contacts, REASONS)
    customers = pd.DataFrame({"customer_id": pd.Series(list("ABCDEF"), dtype="str"),
                              "segment": pd.Series(["private", "business", "private"] * 2, dtype="str"),
                              "signup_date": pd.Timestamp("2023-06-01", tz="UTC"),
                              "churn_date": pd.to_datetime([None, "2024-02-15", None, "2024-03-02", "2024-03-10", None],
                                                           utc=True)})
    period = {"start": pd.Timestamp("2024-01-01", tz="UTC"), "end": pd.Timestamp("2024-03-31", tz="UTC")}
    whole = churn.churn_cells(handled, customers, churn_window_days=10, **period)
    assert whole["customers_exposed"].gt(0).all() and whole["churned_exposed"].sum() > 0
    counts, customer_parts = [], engine.customer_parts
    monkeypatch.setattr(engine, "customer_parts", lambda *a, **k: counts.append(customer_parts(*a, **k)) or counts[-1])
    monkeypatch.setattr(churn, "SPELL_ROWS_PER_GB", 1)                 # a few contacts per part
    parts = churn.churn_cells(handled, customers, churn_window_days=10, **period)
    assert counts[-1] > 3
    assert_frame_equal(parts, whole)
