"""The occasion stage's engine computations, pinned to the numbers of the pandas implementation
they replaced: local calendar days across daylight saving, dates that recur every k months, the
labels of each campaign send (earlier sends, recent interest, occasion), value tiers, and the
disversion rate per month and per campaign; on hand-made frames with their edge cases and on a
small seeded company (`company`, also used by the Spark comparison)."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import disversion, engine, occasions, relevance, schema
from cxlib import occasions_days as days
from cxlib.config import load_taxonomy

ROOT = Path(__file__).resolve().parents[1]


def utc(*stamps) -> pd.Series:
    """Berlin wall-clock times as UTC timestamps."""
    return (pd.Series(pd.to_datetime(list(stamps), format="mixed"), dtype="datetime64[us]")
            .dt.tz_localize("Europe/Berlin").dt.tz_convert("UTC"))


def raw_utc(*stamps) -> pd.Series:
    return pd.Series(pd.to_datetime(list(stamps), format="mixed"), dtype="datetime64[us]").dt.tz_localize("UTC")


def company(seed: int = 7, n: int = 240) -> dict[str, pd.DataFrame]:
    """A small seeded company over 2024-2025: customers of three segments who signed up over six
    years (5% without signup, a quarter churned), orders of which some are cancelled or carry no
    status, three campaigns each sent over two or three days (one at 23:30 UTC, the next local
    day in Berlin), and events with and without direction and resolution."""
    rng = np.random.default_rng(seed)
    ids = [f"C{i:03d}" for i in range(n)]
    signup = (pd.Timestamp("2019-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")
              + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"))
    churn = pd.Series(signup + pd.to_timedelta(rng.integers(200, 2500, n), unit="D"))
    churn = churn.where((rng.random(n) < 0.25) & (churn < pd.Timestamp("2026-01-01", tz="UTC")))
    customers = pd.DataFrame({"customer_id": ids, "segment": rng.choice(["private", "business", "wholesale"], n, p=[0.6, 0.3, 0.1]),
                              "signup_date": pd.Series(signup).where(rng.random(n) > 0.05).astype("datetime64[us, UTC]"),
                              "churn_date": churn.astype("datetime64[us, UTC]")})
    k = 3 * n
    orders = pd.DataFrame({"order_id": [f"o{i}" for i in range(k)], "customer_id": rng.choice(ids, k),
                           "timestamp": (pd.Timestamp("2024-01-01", tz="UTC")
                                         + pd.to_timedelta(rng.integers(0, 730 * 86_400, k), unit="s")).astype("datetime64[us, UTC]"),
                           "revenue": rng.choice([9.99, 19.99, 29.99, 49.99], k),
                           "status": rng.choice(["completed", "completed", "completed", "cancelled", None], k)})
    rows = []
    for campaign, start, spread in (("k1", "2024-03-04 08:00", 2), ("k2", "2024-09-02 09:30", 3), ("k3", "2025-02-03 23:30", 2)):
        for j, cid in enumerate(rng.choice(ids, n // 2, replace=False)):
            sent = pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=int(j % spread)) + pd.Timedelta(seconds=int(rng.integers(0, 3600)))
            responded = sent + pd.Timedelta(hours=int(rng.integers(1, 200))) if rng.random() < 0.2 else pd.NaT
            rows.append((campaign, cid, sent, responded))
    campaigns = pd.DataFrame(rows, columns=["campaign_id", "customer_id", "sent_at", "responded_at"]).astype(
        {"sent_at": "datetime64[us, UTC]", "responded_at": "datetime64[us, UTC]"})
    m = 6 * n
    events = pd.DataFrame({"event_id": [f"e{i}" for i in range(m)], "customer_id": rng.choice(ids, m),
                           "timestamp": (pd.Timestamp("2024-01-01", tz="UTC")
                                         + pd.to_timedelta(rng.integers(0, 730 * 86_400, m), unit="s")).astype("datetime64[us, UTC]"),
                           "touchpoint": rng.choice(["web_visit", "invoice", "complaint", "activation", "first_invoice", "quote"], m),
                           "direction": rng.choice(["inbound", "outbound", None], m),
                           "resolved": pd.array(rng.choice([True, False, None], m), dtype="boolean")})
    return {"customers": customers, "orders": orders, "campaigns": campaigns, "events": events}


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy(ROOT / "config" / "taxonomy.yml")


# --- local days and recurring dates ------------------------------------------------------------------
def local_days(stamps: pd.Series, timezone: str) -> list:
    t = ibis.memtable(pd.DataFrame({"ts": stamps, "_i": np.arange(len(stamps))}))
    out = engine.to_pandas(days.with_local_days(t, timezone, day="ts").order_by("_i"))["day"]
    return [None if pd.isna(d) else str(days.as_dates(pd.Series([d])).iloc[0].date()) for d in out]


def test_local_days_follow_daylight_saving_and_keep_nulls():
    stamps = raw_utc("2025-03-30 00:59:59", "2025-03-30 01:00:00", "2025-03-30 21:59:59", "2025-03-30 22:00:00",
                     "2025-10-25 21:59:59", "2025-10-25 22:00:00", "2025-10-26 22:59:59", "2025-10-26 23:00:00", None)
    assert local_days(stamps, "Europe/Berlin") == [       # as occasions.local_day (pandas) gives them
        "2025-03-30", "2025-03-30", "2025-03-30", "2025-03-31", "2025-10-25", "2025-10-26", "2025-10-26", "2025-10-27", None]
    assert local_days(stamps, "UTC") == ["2025-03-30"] * 4 + ["2025-10-25"] * 2 + ["2025-10-26"] * 2 + [None]
    assert local_days(raw_utc("1969-12-31 23:30:00.5", "2099-07-01 22:30"), "Europe/Berlin") == ["1970-01-01", "2099-07-02"]
    assert days.utc_offsets("UTC") == ((None, 0),)


def recurring(bases: dict, **kw) -> list:
    base = pd.DataFrame({"customer_id": list(bases), "_base": [days.as_day_number(d) for d in bases.values()]})
    out = engine.to_pandas(days.recurring_days(ibis.memtable(base), **kw)).sort_values(["customer_id", "date"])
    return [[c, str(days.as_dates(pd.Series([d])).iloc[0].date())] for c, d in out[["customer_id", "date"]].values]


def test_recurring_days_clip_month_ends_and_count_from_first_k():
    span = {"start": days.as_day_number("2025-01-01"), "end": days.as_day_number("2025-12-31")}
    assert recurring({"A": "2020-02-29", "B": "2023-06-15", "C": "2025-06-15"}, step_months=12, **span) == [
        ["A", "2025-02-28"], ["B", "2025-06-15"]]                       # C: the signup year itself is no anniversary
    assert recurring({"C": "2025-06-15"}, step_months=12, first_k=0, **span) == [["C", "2025-06-15"]]
    assert recurring({"D": "2024-01-31"}, step_months=1, start=days.as_day_number("2025-01-15"),
                     end=days.as_day_number("2025-04-30")) == [["D", "2025-01-31"], ["D", "2025-02-28"], ["D", "2025-03-31"],
                                                                ["D", "2025-04-30"]]
    assert recurring({"B": "2023-06-15"}, step_months=24, start=days.as_day_number("2024-01-01"),
                     end=days.as_day_number("2027-12-31")) == [["B", "2025-06-15"], ["B", "2027-06-15"]]


# --- the labels of a send --------------------------------------------------------------------------------
def test_earlier_sends_count_the_window_before_each_send_not_the_same_instant():
    campaigns = pd.DataFrame({"campaign_id": ["k1", "k2", "k3", "k4", "k5", "k6"], "customer_id": ["A", "A", "A", "A", "A", "B"],
                              "sent_at": raw_utc("2025-01-01 10:00", "2025-01-11 10:00", "2025-01-11 10:00", "2025-04-01 10:00",
                                                 "2025-04-01 10:00:01", "2025-01-05 00:00")})
    windows = pd.DataFrame({"customer_id": pd.Series(dtype="str"), "occasion": pd.Series(dtype="str"),
                            "date": pd.Series(dtype="int64"), "window_start": pd.Series(dtype="int64")})
    sends = engine.to_pandas(relevance.label_sends(campaigns, pd.DataFrame({"customer_id": ["A", "B"]}), windows,
                                                   fatigue_days=90)).sort_values("campaign_id")
    # 01-01 10:00 is exactly 90 days before 04-01 10:00: counted; the two sends of 01-11 do not count each other
    assert sends["prior_contacts"].tolist() == [0, 1, 1, 3, 3, 0]
    assert sends["segment"].tolist() == ["unknown"] * 6 and sends["interest"].isna().all()    # no segment column, no events


def test_interest_and_occasion_of_each_send():
    campaigns = pd.DataFrame({"campaign_id": ["k1", "k1", "k1", "k2", "k2"], "customer_id": ["A", "B", "C", "A", None],
                              "sent_at": utc("2025-12-28 09:00", "2025-12-10 09:00", "2025-12-10 09:00", "2026-01-04 09:00",
                                             "2026-01-04 09:00"),
                              "responded_at": utc("2025-12-29 10:00", None, None, None, None)})
    events = pd.DataFrame({"customer_id": ["A", "B", "B", "C", "C", "A"],
                           "timestamp": utc("2025-12-20 10:00", "2025-11-10 09:00", "2025-12-05 09:00", "2025-12-10 09:00",
                                            "2025-11-10 08:59:59", "2025-12-29 10:00"),
                           "touchpoint": ["web_visit", "invoice", "campaign_sent", "complaint", "quote", "renewal"],
                           "direction": [None, "inbound", "outbound", "inbound", None, "inbound"]})
    customers = pd.DataFrame({"customer_id": ["A", "B", "C"], "segment": ["private", "business", None]})
    d = days.as_day_number
    windows = pd.DataFrame({"customer_id": ["A", "A", "A", "C"],
                            "occasion": ["name_day", "contract_anniversary", "name_day", "first_invoice"],
                            "date": [d("2026-01-03"), d("2026-01-02"), d("2026-01-04"), d("2025-12-17")],
                            "window_start": [d("2025-12-28"), d("2025-12-19"), d("2026-01-01"), d("2025-12-10")]})
    types = pd.DataFrame({"occasion": ["contract_anniversary", "first_invoice", "name_day"]})
    sends = engine.to_pandas(relevance.label_sends(campaigns, customers, windows, events=events, types=types,
                                                   interest_days=30)).sort_values(["campaign_id", "customer_id"])
    assert sends["customer_id"].tolist() == ["A", "B", "C", "A"]                  # the send without a customer is no send
    # B: an inbound invoice exactly 30 days before counts, an outbound contact does not; C: the complaint
    # at the instant of the send and the quote one second too early do not
    assert sends["interest"].tolist() == [True, True, False, True]
    # A on 12-28: in the windows of the anniversary (first in order) and of a name day, which opens that day;
    # on 01-04: the last day of the second name-day window; C: the first invoice's window opens on the day
    assert sends["occasion"].astype(object).where(sends["occasion"].notna(), None).tolist() == [
        "contract_anniversary", None, "first_invoice", "name_day"]
    assert sends["prior_contacts"].tolist() == [0, 0, 0, 1]
    assert sends["segment"].tolist() == ["private", "business", "unknown", "private"]
    assert sends["responded"].tolist() == [True, False, False, False]
    counts = relevance.send_counts(sends)
    assert counts[["campaign_id", "segment", "occasion_timed", "sends", "responses"]].values.tolist() == [
        ["k1", "business", False, 1, 0], ["k1", "private", True, 1, 1], ["k1", "unknown", True, 1, 0], ["k2", "private", True, 1, 0]]
    assert counts["send_day"].tolist() == [pd.Timestamp("2025-12-10"), pd.Timestamp("2025-12-28"),
                                           pd.Timestamp("2025-12-10"), pd.Timestamp("2026-01-04")]


def test_campaign_table_from_the_counts():
    sends = pd.DataFrame({"campaign_id": ["a"] * 4 + ["b"] * 3, "segment": "private",
                          "send_day": [days.as_day_number("2025-01-02")] * 2 + [days.as_day_number("2025-01-01")] * 5,
                          "occasion": None, "prior_contacts": 0, "responded": [True, False, True, False, False, False, True],
                          "interest": [True, True, False, False, True, True, True]})
    table = relevance.campaign_table(relevance.send_counts(sends), min_sends=3)
    assert table[["campaign_id", "sends", "responses", "interest_share", "rate_interested"]].values.tolist() == [
        ["b", 3, 1, 1.0, 1 / 3], ["a", 4, 2, 0.5, 0.5]]
    assert table["rate_not_interested"].tolist()[1] == 0.5 and np.isnan(table["rate_not_interested"].tolist()[0])
    assert table["first_send"].tolist() == [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-01")]
    with pytest.raises(schema.Missing, match="no events to see"):
        relevance.campaign_table(relevance.send_counts(sends.drop(columns="interest")))


def test_value_tiers_share_ties_and_count_the_last_day():
    customers = pd.DataFrame({"customer_id": ["A", "B", "C", "D", "E"]})
    orders = pd.DataFrame({"customer_id": ["A", "B", "C", "C", "D", "E", "Z"],
                           "timestamp": utc("2025-01-01", "2025-01-01", "2025-01-01", "2025-12-31 23:30", "2025-01-01", "2025-01-01",
                                            "2025-01-01"),
                           "revenue": [30.0, 30.0, 10.0, 20.0, 5.0, np.nan, 99.0],
                           "status": ["completed", "completed", "completed", "completed", None, "completed", "completed"]})
    tiers = occasions.value_tiers(customers, orders, as_of="2025-12-31", shares=(0.2, 0.4))
    assert tiers.values.tolist() == [["A", 30.0, "high"], ["B", 30.0, "high"], ["C", 30.0, "high"], ["D", 5.0, "low"],
                                     ["E", 0.0, "low"]]


# --- disversion --------------------------------------------------------------------------------------------
def people() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    customers = pd.DataFrame({"customer_id": ["R1", "R2", "R3", "N1", "N2", "N3", "N4", "X1"],
                              "segment": ["private", "private", "business", "private", "private", "business", "business", None],
                              "signup_date": utc("2020-01-01", "2024-03-01", "2022-06-01", "2020-01-01", "2024-06-01", "2022-01-01",
                                                 "2023-05-01", "2025-03-01"),
                              "churn_date": utc(None, None, None, None, None, None, "2025-02-01", None)})
    orders = pd.DataFrame({"customer_id": ["R1", "R1", "R2", "R2", "R3", "N1", "N1", "N2", "N3", "N3", "X1", "R3", "N4", "ZZ", "N2"],
                           "timestamp": utc("2024-05-01", "2024-11-01", "2025-02-01", "2025-03-15", "2025-04-01", "2025-02-20",
                                            "2025-05-01", "2025-01-30", "2024-01-10", "2025-01-09 23:30", "2025-04-01", "2025-06-01",
                                            "2025-01-20", "2025-03-01", "2025-12-31"),
                           "status": "completed"})
    campaigns = pd.DataFrame({"campaign_id": ["k1", "k1", "k1", "k1", "k2", "k2", "k2"],
                              "customer_id": ["R1", "R2", "R3", "ZZ", "N1", "N2", "R2"],
                              "sent_at": utc("2025-01-10 09:00", "2025-01-10 09:00", "2025-01-12 09:00", "2025-01-12 09:00",
                                             "2025-03-01 10:00", "2025-03-01 10:00", "2025-03-03 10:00")})
    return customers, orders, campaigns


def test_disversion_by_month_windows_and_thresholds():
    customers, orders, _ = people()
    monthly = disversion.disversion_by_month(customers, orders, min_orders=2, window_days=365)
    assert monthly[["month", "customers", "regular"]].values.tolist() == [
        ["2025-01", 7, 1], ["2025-02", 6, 1], ["2025-03", 7, 2], ["2025-04", 7, 2], ["2025-05", 7, 2], ["2025-06", 7, 3],
        ["2025-07", 7, 3], ["2025-08", 7, 3], ["2025-09", 7, 3], ["2025-10", 7, 3], ["2025-11", 7, 3], ["2025-12", 7, 4]]
    one = disversion.disversion_by_month(customers, orders, min_orders=1, window_days=30)
    assert one["regular"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 3, 1, 2, 0, 1, 0, 0, 0, 0, 0, 1]
    assert one["month"].iloc[0] == "2024-02"
    three = disversion.disversion_by_month(customers, orders, min_orders=3, window_days=400)
    assert three["month"].iloc[0] == "2025-02" and three["regular"].sum() == 0
    with pytest.raises(ValueError, match="min_orders must be at least 1"):
        disversion.disversion_by_month(customers, orders, min_orders=0)


def test_campaign_disversion_median_day_population_and_strata():
    customers, orders, campaigns = people()
    out = disversion.campaign_disversion(campaigns, customers, orders, min_n=1)
    # k1 sent on 10 and 12 Jan (four sends): median day 11 Jan; R1 was already regular, ZZ is no customer
    assert out[["campaign_id", "day", "recipients", "rate", "matched_rate", "difference"]].astype(object).where(
        out.notna(), None).values.tolist() == [
        ["k1", pd.Timestamp("2025-01-11"), 2, 1.0, 0.0, 100.0], ["k2", pd.Timestamp("2025-03-01"), 0, None, None, None],
        ["all campaigns", None, 2, 1.0, 0.0, 100.0]]
    shorter = disversion.campaign_disversion(campaigns, customers, orders, min_n=1, min_orders=1, window_days=200, follow_days=120)
    assert shorter[["campaign_id", "recipients", "rate", "matched_rate"]].values.tolist() == [["k1", 2, 1.0, 1.0],
                                                                                            ["all campaigns", 2, 1.0, 1.0]]
    banded = disversion.campaign_disversion(campaigns, customers, orders, min_n=1, min_orders=3, tenure_years=(2,))
    assert banded[["campaign_id", "recipients", "rate"]].values.tolist() == [["k1", 3, 0.0], ["k2", 1, 0.0], ["all campaigns", 4, 0.0]]


# --- a seeded company --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(tax):
    tables = company()
    return tables, relevance.prepare(tables, None, tax, fatigue_days=200, interest_days=30)


def test_seeded_company_gives_the_numbers_of_the_pandas_implementation(seeded):
    tables, inputs = seeded
    assert inputs.as_of == pd.Timestamp("2025-12-30") and inputs.customer_count == 240
    assert inputs.due["occasion"].value_counts().to_dict() == {"contract_anniversary": 15, "renewal_window": 6,
                                                               "complaint_resolved": 2, "activation_completed": 1, "first_invoice": 1}
    sends = inputs.sends
    assert int(sends["sends"].sum()) == 360 and int(sends.loc[sends["occasion_timed"], "sends"].sum()) == 36
    summary = relevance.occasion_response(sends)
    assert (summary["occasion_timed"]["responses"], summary["other"]["sends"], summary["other"]["responses"]) == (6, 324, 63)
    assert summary["adjusted"]["ratio"] == pytest.approx(0.9214954549674491, rel=1e-12) and summary["adjusted"]["strata"] == 7
    assert relevance.response_by_occasion(sends, inputs.types)[["occasion", "sends", "responses"]].values.tolist() == [
        ["contract_anniversary", 13, 1], ["renewal_window", 15, 2], ["first_invoice", 4, 1], ["activation_completed", 4, 2],
        ["other", 324, 63]]
    assert relevance.fatigue(sends)[["band", "sends", "responses"]].values.tolist() == [
        ["0", 239, 44], ["1", 121, 25], ["2", 0, 0], ["3+", 0, 0]]
    table = relevance.campaign_table(sends, min_sends=10)
    assert table[["campaign_id", "sends", "responses"]].values.tolist() == [["k3", 120, 20], ["k2", 120, 24], ["k1", 120, 25]]
    assert table[["interest_share", "rate_interested", "rate_not_interested"]].to_numpy().ravel().tolist() == pytest.approx(
        [0.10833333333333334, 0.07692307692307693, 0.17757009345794392, 0.16666666666666666, 0.35, 0.17,
         0.18333333333333332, 0.13636363636363635, 0.22448979591836735], rel=1e-12)
    tiers = occasions.value_tiers(tables["customers"], tables["orders"], as_of=inputs.as_of)
    assert tiers["value_tier"].value_counts().to_dict() == {"low": 120, "medium": 70, "high": 50}


def test_seeded_company_disversion(seeded):
    tables, _ = seeded
    monthly = disversion.disversion_by_month(tables["customers"], tables["orders"])
    assert monthly[["month", "customers", "regular"]].values.tolist() == [
        ["2024-12", 209, 72], ["2025-01", 209, 71], ["2025-02", 208, 63], ["2025-03", 205, 66], ["2025-04", 205, 70],
        ["2025-05", 204, 72], ["2025-06", 203, 74], ["2025-07", 202, 75], ["2025-08", 200, 66], ["2025-09", 198, 70],
        ["2025-10", 198, 72], ["2025-11", 197, 65]]
    out = disversion.campaign_disversion(tables["campaigns"], tables["customers"], tables["orders"], follow_days=120, min_n=10)
    assert out[["campaign_id", "day", "recipients"]].values.tolist() == [
        ["k1", pd.Timestamp("2024-03-04"), 86], ["k2", pd.Timestamp("2024-09-03"), 70], ["k3", pd.Timestamp("2025-02-04"), 66],
        ["all campaigns", pd.NaT, 222]]
    assert out[["rate", "matched_rate", "difference"]].round(6).values.tolist() == [
        [0.116279, 0.128441, -1.21617], [0.085714, 0.236818, -15.110395], [0.181818, 0.137161, 4.46571],
        [0.126126, 0.165206, -3.908025]]


def test_an_engine_table_and_its_frame_give_the_same_occasions(seeded, tax, tmp_path):
    """prepare on Parquet tables read by the engine equals prepare on the same frames."""
    tables, inputs = seeded
    for name, frame in tables.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    con = engine.connect("duckdb", threads=1)
    read = {name: engine.read_table(con, tmp_path / f"{name}.parquet") for name in tables}
    again = relevance.prepare(read, None, tax, fatigue_days=200, interest_days=30)
    assert_frame_equal(again.sends, inputs.sends)
    assert_frame_equal(again.due, inputs.due)
