"""cxlib.journey and cxlib.engine: exact results on hand-made event logs, and the DuckDB path
against a pandas reference implementation on a medium log."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import config, engine, journey, schema
from cxlib import journey_describe as describe
from cxlib import journey_tables as tables
from cxlib.metrics import wilson_interval

ROOT = Path(__file__).resolve().parents[1]
TS = "timestamp"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def taxonomy():
    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


def make_events(rows) -> pd.DataFrame:
    """rows: (event_id, customer_id, timestamp text, touchpoint)."""
    frame = pd.DataFrame(rows, columns=["event_id", "customer_id", TS, "touchpoint"])
    return frame.assign(**{TS: pd.to_datetime(frame[TS], utc=True, format="ISO8601"), "stage": pd.Series([None] * len(frame), dtype="str")})


# Rows out of order on purpose; a1/a2 and b1/b2 share a timestamp (event_id decides);
# c has one event; d meets the steps in the wrong order.
LOG = [
    ("a3", "A", "2024-01-03 09:00", "order"),
    ("b2", "B", "2024-01-05 12:00", "quote"),
    ("a1", "A", "2024-01-01 10:00", "web_visit"),
    ("d3", "D", "2024-01-12 00:00", "order"),
    ("a5", "A", "2024-03-01 09:00", "service_contact"),
    ("b1", "B", "2024-01-05 12:00", "web_visit"),
    ("a2", "A", "2024-01-01 10:00", "quote"),
    ("c1", "C", "2024-02-01 00:00", "web_visit"),
    ("b4", "B", "2024-01-26 12:00", "activation"),
    ("d1", "D", "2024-01-10 00:00", "quote"),
    ("a4", "A", "2024-01-13 09:00", "activation"),
    ("b3", "B", "2024-01-06 12:00", "order"),
    ("d2", "D", "2024-01-11 00:00", "web_visit"),
]
SEGMENTS = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "segment": ["private", "business", "private", "private"]})
STEPS = ["web_visit", "quote", "order", "activation"]


@pytest.fixture()
def events(taxonomy):
    return journey.with_stages(make_events(LOG), taxonomy)


@pytest.fixture()
def events_seg(events):
    return journey.attach(events, SEGMENTS)


def run(expr) -> pd.DataFrame:
    return engine.to_pandas(expr)


# --- edge cases first ---------------------------------------------------------------------

def test_missing_column_raises_naming_it():
    bad = make_events(LOG).drop(columns=["event_id"])
    with pytest.raises(journey.JourneyError, match=r"events: missing column\(s\) \['event_id'\]"):
        journey.transitions(bad)
    with pytest.raises(journey.JourneyError, match="segment"):
        journey.funnel(make_events(LOG), STEPS, by="segment")


def test_bad_parameters_raise():
    with pytest.raises(journey.JourneyError, match="steps is empty"):
        journey.funnel(make_events(LOG), [])
    with pytest.raises(journey.JourneyError, match="gap_days"):
        journey.with_episodes(make_events(LOG), 0)
    with pytest.raises(journey.JourneyError, match="pairs is empty"):
        journey.time_between_steps(make_events(LOG), [])


def test_empty_log_raises_missing_no_events(taxonomy):
    empty = make_events([])
    calls = [
        lambda: journey.transitions(empty),
        lambda: journey.funnel(empty, ["quote", "order"]),
        lambda: journey.path_variants(empty),
        lambda: journey.time_between_steps(empty, [("order", "activation")]),
        lambda: journey.episode_summary(empty, 30),
        lambda: journey.stage_summary(empty, taxonomy),
    ]
    for call in calls:
        with pytest.raises(schema.Missing, match="^no events") as caught:
            call()
        assert caught.value.enable == journey.NEEDS_EVENTS
    assert engine.to_pandas(journey.transition_counts(empty)).empty     # the engine expression itself stays total


def test_events_without_customer_ids_form_no_journeys(taxonomy):
    anonymous = make_events(LOG).assign(customer_id=pd.Series([None] * len(LOG), dtype="str"))
    for call in (lambda: journey.transitions(anonymous), lambda: journey.funnel(anonymous, STEPS),
                 lambda: journey.path_variants(anonymous), lambda: journey.stage_summary(anonymous, taxonomy)):
        with pytest.raises(schema.Missing, match="13 events carry no customer id") as caught:
            call()
        assert caught.value.enable == journey.NEEDS_CUSTOMER
    # events without a customer id next to others are left out of the journeys (not one null journey)
    mixed = pd.concat([make_events(LOG), make_events([("x1", None, "2024-01-02", "order"),
                                                      ("x2", None, "2024-01-03", "activation")])])
    assert_frame_equal(journey.transitions(mixed), journey.transitions(make_events(LOG)))
    assert journey.funnel(mixed, STEPS)["customers"].tolist() == [4, 2, 2, 2]
    assert journey.overview(mixed)[["events", "events_with_customer", "customers"]].iloc[0].tolist() == [15, 13, 4]


def test_one_event_customer():
    one = make_events([("x1", "X", "2024-01-01", "web_visit")])
    with pytest.raises(schema.Missing, match="no customer has two events, so there are no transitions"):
        journey.transitions(one)
    with pytest.raises(schema.Missing, match="within an episode"):
        journey.transitions(one, gap_days=30)
    assert journey.funnel(one, ["web_visit", "order"])["customers"].tolist() == [1, 0]
    p = journey.path_variants(one, col_node="touchpoint")
    assert p[["path", "steps", "journeys", "coverage"]].iloc[0].tolist() == ["web_visit", 1, 1, 1.0]
    assert run(journey.with_episodes(one, 30))["episode"].tolist() == [1]


def test_funnel_and_timing_without_their_steps_raise_missing(events):
    with pytest.raises(schema.Missing, match=r"no customer has an event of the funnel's first step \(cart or shop_visit\)") as caught:
        journey.funnel(events, ["cart|shop_visit", "order"])
    assert caught.value.enable == ("events.touchpoint cart or shop_visit, or the parameter funnel_steps set to "
                                   "touchpoints the events hold")
    with pytest.raises(schema.Missing, match="timed pair"):
        journey.time_between_steps(events, [("cart", "order"), ("order", "first_invoice")])
    # one pair that occurs is enough; the other shows zero pairs
    t = journey.time_between_steps(events, [("cart", "order"), ("order", "activation")])
    assert t["pairs"].tolist() == [0, 2]


# --- ordering, stages, episodes --------------------------------------------------------------

def test_events_are_ordered_by_timestamp_then_event_id(events):
    # a1/a2 and b1/b2 share a timestamp: event_id decides, so web_visit comes before quote
    ab = run(journey.transition_counts(events.filter(events.customer_id.isin(["A", "B"]))))
    got = dict(zip(zip(ab["from_step"], ab["to_step"]), ab["transitions"]))
    assert got == {("web_visit", "quote"): 2, ("quote", "order"): 2, ("order", "activation"): 2,
                   ("activation", "service_contact"): 1}


def test_with_stages_fills_from_taxonomy_and_keeps_given(taxonomy):
    raw = make_events(LOG[:2]).assign(stage=pd.Series(["usage", None], dtype="str"))
    out = run(journey.with_stages(raw, taxonomy).order_by("event_id"))
    assert out["stage"].tolist() == ["usage", "consideration"]


def test_with_episodes_splits_on_gaps_longer_than_the_parameter(events):
    out = run(journey.with_episodes(events, 30).order_by(["customer_id", TS, "event_id"]))
    assert out.loc[out["customer_id"] == "A", "episode"].tolist() == [1, 1, 1, 1, 2]
    assert out.loc[out["customer_id"] != "A", "episode"].tolist() == [1] * 8
    exact = make_events([("p1", "P", "2024-01-01", "usage"), ("p2", "P", "2024-01-31", "usage"),
                         ("p3", "P", "2024-03-01 00:00:01", "usage")])
    # 30 days exactly is the same episode; 30 days and a second later is a new one
    assert run(journey.with_episodes(exact, 30).order_by("event_id"))["episode"].tolist() == [1, 1, 2]


def test_episode_summary(events):
    out = journey.episode_summary(events, 30)
    # episodes: A1 (a1..a4: 4 events, 287 h), A2 (a5: 1, 0), B (4, 21 days), C (1, 0), D (3, 2 days)
    expected = pd.DataFrame({
        "customers": [4], "episodes": [5], "episodes_per_customer": [1.25], "events_median": [3.0],
        "days_median": [2.0], "days_p90": [287 / 24 + 0.6 * (21 - 287 / 24)],
    })
    assert_frame_equal(out, expected)


def test_stage_summary_in_lifecycle_order(events, taxonomy):
    out = journey.stage_summary(events, taxonomy)
    assert out["stage"].tolist() == taxonomy.codes("stages")
    got = out.set_index("stage")[["events", "customers", "share"]]
    assert got.loc["consideration"].tolist() == [7, 4, 1.0]
    assert got.loc["purchase"].tolist() == [3, 3, 0.75]
    assert got.loc["onboarding"].tolist() == [2, 2, 0.5]
    assert got.loc["service"].tolist() == [1, 1, 0.25]
    assert got.loc["exit"].tolist() == [0, 0, 0.0]
    assert out["stage_label"].iloc[0] == "Awareness"


# --- funnel -------------------------------------------------------------------------------

def expected_funnel(customers, days_median, days_p90, previous=None):
    customers = np.asarray(customers)
    start = np.full(len(customers), customers[0])
    previous = np.r_[customers[0], customers[:-1]] if previous is None else np.asarray(previous)
    low, high = wilson_interval(customers, start)
    slow, shigh = wilson_interval(customers, previous)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "step": pd.Series(STEPS, dtype="str"), "step_index": np.arange(1, 5),
            "customers": customers.astype("int64"),
            "conversion": np.where(start > 0, customers / start, np.nan), "ci_low": low, "ci_high": high,
            "step_conversion": np.where(previous > 0, customers / previous, np.nan),
            "step_ci_low": slow, "step_ci_high": shigh,
            "drop_off": (previous - customers).astype("int64"),
            "days_median": np.asarray(days_median, dtype=float), "days_p90": np.asarray(days_p90, dtype=float),
        })


def test_funnel_counts_customers_reaching_steps_in_order(events):
    out = journey.funnel(events, STEPS)
    # A: web 01-01 10:00, quote same second (a1 < a2), order +47 h, activation +287 h
    # B: web 01-05 12:00, quote same second (b1 < b2), order +1 d, activation +21 d
    # C: only a web visit; D: quote before web visit, so only step 1
    a_order, a_act = 47 / 24, 287 / 24
    expected = expected_funnel(
        [4, 2, 2, 2],
        [0.0, 0.0, (a_order + 1) / 2, (a_act + 21) / 2],
        [0.0, 0.0, 1 + 0.9 * (a_order - 1), a_act + 0.9 * (21 - a_act)],
    )
    assert_frame_equal(out, expected)
    assert out["conversion"].tolist() == [1.0, 0.5, 0.5, 0.5]
    assert out["step_conversion"].tolist() == [1.0, 0.5, 1.0, 1.0]
    assert out["drop_off"].tolist() == [0, 2, 0, 0]


def test_funnel_by_segment_shows_an_empty_segment(events_seg):
    out = journey.funnel(events_seg, STEPS, by="segment", groups=["private", "business", "enterprise"])
    assert out["segment"].tolist() == ["business"] * 4 + ["enterprise"] * 4 + ["private"] * 4
    got = out.set_index(["segment", "step"])
    assert got.xs("private")["customers"].tolist() == [3, 1, 1, 1]
    assert got.xs("business")["customers"].tolist() == [1, 1, 1, 1]
    assert got.xs("enterprise")["customers"].tolist() == [0, 0, 0, 0]
    assert got.xs("enterprise")[["conversion", "ci_low", "days_median"]].isna().all().all()
    assert got.xs("private")["conversion"].tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])
    assert got.xs("private")["days_median"].tolist() == pytest.approx([0.0, 0.0, 47 / 24, 287 / 24])


def test_funnel_on_stages(events):
    out = journey.funnel(events, ["consideration", "purchase", "onboarding"], col_step="stage")
    # D: consideration (quote) then purchase (order): reaches 2 steps
    assert out["customers"].tolist() == [4, 3, 2]


# --- transitions and paths ----------------------------------------------------------------

def test_transitions_counts_and_probabilities(events):
    out = journey.transitions(events)
    expected = pd.DataFrame({
        "from_step": ["order", "quote", "web_visit", "activation", "quote", "web_visit"],
        "to_step": ["activation", "order", "quote", "service_contact", "web_visit", "order"],
        "transitions": [2, 2, 2, 1, 1, 1],
        "probability": [1.0, 2 / 3, 2 / 3, 1.0, 1 / 3, 1 / 3],
    }).astype({"from_step": "str", "to_step": "str"})
    assert_frame_equal(out, expected)


def test_transitions_within_episodes_drop_the_long_gap(events):
    out = journey.transitions(events, gap_days=30)
    assert ("activation", "service_contact") not in set(zip(out["from_step"], out["to_step"]))
    assert out["transitions"].sum() == 8


def test_transitions_by_segment_and_on_stages(events_seg):
    out = journey.transitions(events_seg, col_node="stage", by="segment")
    business = out[out["segment"] == "business"]
    assert list(zip(business["from_step"], business["to_step"], business["transitions"])) == [
        ("consideration", "consideration", 1), ("consideration", "purchase", 1), ("purchase", "onboarding", 1)]


def test_path_variants_top_paths_with_coverage(events):
    out = journey.path_variants(events, col_node="touchpoint", max_steps=3)
    expected = pd.DataFrame({
        "rank": [1, 2, 3],
        "path": ["web_visit > quote > order > …", "quote > web_visit > order", "web_visit"],
        "steps": [3, 3, 1], "journeys": [2, 1, 1],
        "coverage": [0.5, 0.25, 0.25], "cumulative_coverage": [0.5, 0.75, 1.0], "variants": [3, 3, 3],
    }).astype({"path": "str"})
    assert_frame_equal(out, expected)


def test_path_variants_collapse_repeated_stages(events):
    out = journey.path_variants(events, col_node="stage", top=2)
    assert out["path"].tolist() == ["consideration", "consideration > purchase"]
    assert out["variants"].tolist() == [4, 4]
    full = journey.path_variants(events, col_node="stage", collapse_repeats=False, max_steps=2, top=10)
    assert "consideration > consideration > …" in full["path"].tolist()


def test_path_variants_per_episode(events):
    out = journey.path_variants(events, col_node="stage", gap_days=30)
    assert out["journeys"].sum() == 5
    assert "service" in out["path"].tolist()


def test_time_between_steps(events):
    out = journey.time_between_steps(events, [("order", "activation"), ("quote", "order"), ("invoice", "usage")])
    q = [47 / 24, 1.0, 2.0]
    expected = pd.DataFrame({
        "from_step": ["order", "quote", "invoice"], "to_step": ["activation", "order", "usage"],
        "pairs": [2, 3, 0], "customers": [2, 3, 0],
        "days_median": [15.0, 47 / 24, np.nan], "days_p90": [19.0, 47 / 24 + 0.8 * (2 - 47 / 24), np.nan],
        "days_mean": [15.0, sum(q) / 3, np.nan],
    }).astype({"from_step": "str", "to_step": "str"})
    assert_frame_equal(out, expected)


def test_time_between_steps_pairs_each_order_with_its_own_activation():
    log = make_events([("o1", "X", "2024-01-01", "order"), ("a1", "X", "2024-01-05", "activation"),
                       ("o2", "X", "2024-02-01", "order"), ("a2", "X", "2024-02-03", "activation"),
                       ("a3", "X", "2024-02-04", "activation")])
    out = journey.time_between_steps(log, [("order", "activation")])
    assert out[["pairs", "customers", "days_median"]].iloc[0].tolist() == [2, 1, 3.0]


# --- conversion, repeat customers, campaigns, lost sales, tenure ----------------------------

CUSTOMERS = pd.DataFrame({
    "customer_id": ["A", "B", "C", "D", "E"],
    "segment": ["private", "business", "private", "private", None],
    "lead_date": pd.to_datetime(["2023-12-01", "2023-12-01", None, "2023-12-01", "2023-11-01"], utc=True, format="ISO8601"),
    "signup_date": pd.to_datetime(["2024-01-02", None, "2023-01-01", None, None], utc=True, format="ISO8601"),
    "churn_date": pd.to_datetime([None, None, "2023-05-01", None, None], utc=True, format="ISO8601"),
})
ORDERS = pd.DataFrame({
    "order_id": ["o1", "o2", "o3", "o4", "o5"], "customer_id": ["A", "C", "C", "B", "E"],
    "timestamp": pd.to_datetime(["2024-01-03 09:00", "2023-01-01", "2024-01-01", "2024-01-07", "2024-01-01"], utc=True, format="ISO8601"),
    "product": ["mobile", "broadband", "mobile", "broadband", "mobile"],
    "status": ["completed", "completed", None, "cancelled", "pending"],
})


def test_conversion_rate_counts_signups_and_orders():
    out = journey.conversion_rate(CUSTOMERS, ORDERS)
    # leads A, B, D, E: A signed up, E ordered (pending), B only a cancelled order
    low, high = wilson_interval(2, 4)
    assert_frame_equal(out, pd.DataFrame({"leads": [4], "converted": [2], "rate": [0.5],
                                          "ci_low": [float(low)], "ci_high": [float(high)]}))
    assert journey.conversion_rate(CUSTOMERS)["converted"].tolist() == [1]
    by = journey.conversion_rate(CUSTOMERS, ORDERS, by="segment", groups=["private", "business", "enterprise"])
    assert by["segment"].tolist() == ["business", "enterprise", "private", "unknown"]
    assert by["leads"].tolist() == [1, 0, 2, 1]
    assert by["converted"].tolist() == [0, 0, 1, 1]
    assert np.isnan(by["rate"].iloc[1])


def test_repeat_customer_rate_ignores_cancelled_orders():
    out = journey.repeat_customer_rate(ORDERS)
    # buyers: A (1), C (2), E (1); B's only order was cancelled
    assert out[["buyers", "repeat_buyers"]].iloc[0].tolist() == [3, 1]
    assert out["rate"].iloc[0] == pytest.approx(1 / 3)
    with_seg = journey.repeat_customer_rate(journey.attach(ORDERS, CUSTOMERS), by="segment")
    assert with_seg.set_index("segment")["repeat_buyers"].to_dict() == {"private": 1, "unknown": 0}


def test_repeat_vs_new_conversion_and_lost_sales(events):
    conv = journey.repeat_vs_new_conversion(events, ORDERS, window_days=30)
    # quotes: A 01-01 (order 01-03: converted, new), B 01-05 (cancelled order only: lost, new),
    # D 01-10 (no order: lost, new). C has no quote.
    assert conv["customer_type"].tolist() == ["new", "repeat"]
    assert conv["opportunities"].tolist() == [3, 0]
    assert conv["converted"].tolist() == [1, 0]
    log = make_events([("q1", "C", "2023-12-20", "quote"), ("q2", "C", "2024-03-01", "quote")])
    conv_c = journey.repeat_vs_new_conversion(log, ORDERS, window_days=30)
    # C ordered on 2023-01-01 before both quotes (repeat); o3 on 2024-01-01 follows q1 within 12 days
    assert conv_c.set_index("customer_type").loc["repeat", ["opportunities", "converted"]].tolist() == [2, 1]
    short = journey.repeat_vs_new_conversion(log, ORDERS, window_days=5)
    assert short["converted"].tolist() == [0, 0]
    lost = journey.lost_sales(events, ORDERS, window_days=30)
    assert lost["step"].tolist() == ["cart", "quote"]
    assert lost["opportunities"].tolist() == [0, 3]
    assert lost["lost"].tolist() == [0, 2]
    assert lost["rate"].iloc[1] == pytest.approx(2 / 3)


def test_cancelled_orders_by_product():
    out = journey.cancelled_orders(ORDERS)
    assert out["product"].tolist() == ["broadband", "mobile"]
    assert out["orders"].tolist() == [2, 3]
    assert out["cancelled"].tolist() == [1, 0]
    assert out["rate"].tolist() == [0.5, 0.0]
    assert journey.cancelled_orders(ORDERS, by=None)[["orders", "cancelled"]].iloc[0].tolist() == [5, 1]


def test_cancellation_reasons_from_reason_or_text():
    log = make_events([("x1", "B", "2024-01-08", "order_cancelled"), ("x2", "C", "2024-01-09", "order_cancelled"),
                       ("x3", "A", "2024-01-10", "order_cancelled"), ("x4", "A", "2024-01-11", "order")])
    log = log.assign(contact_reason=pd.Series(["tariff_change", None, None, None], dtype="str"),
                     text=pd.Series(["ignored", "Widerruf", "", None], dtype="str"))
    out = journey.cancellation_reasons(log)
    assert out.to_dict("records") == [
        {"reason": "Widerruf", "cancelled": 1, "share": 1 / 3},
        {"reason": "tariff_change", "cancelled": 1, "share": 1 / 3},
        {"reason": "unknown", "cancelled": 1, "share": 1 / 3},
    ]
    with pytest.raises(schema.Missing, match="no order cancellation events"):
        journey.cancellation_reasons(make_events(LOG))


def test_campaign_response_rate():
    camp = pd.DataFrame({"campaign_id": ["k1", "k1", "k2"], "customer_id": ["A", "B", "A"],
                         "sent_at": pd.to_datetime(["2024-01-01"] * 3, utc=True, format="ISO8601"),
                         "responded_at": pd.to_datetime(["2024-01-02", None, None], utc=True, format="ISO8601")})
    out = journey.campaign_response(camp)
    assert out[["sent", "responded"]].iloc[0].tolist() == [3, 1]
    per = journey.campaign_response(camp, by="campaign_id")
    assert per["rate"].tolist() == [0.5, 0.0]


def test_tenure_churn_life_table():
    out = journey.tenure_churn(CUSTOMERS, as_of="2024-01-02", band_days=90)
    # A: signup 2024-01-02, tenure 0 (band 0, active); C: 2023-01-01 -> churn 2023-05-01 = 120 days (band 1)
    assert out["band"].tolist() == [0, 1]
    assert out["at_risk"].tolist() == [2, 1]
    assert out["churned"].tolist() == [0, 1]
    assert out["survival"].tolist() == [1.0, 0.0]
    assert out["tenure_to_days"].tolist() == [90, 180]


# --- focus --------------------------------------------------------------------------------

def test_parse_focus():
    assert journey.parse_focus("") == {}
    assert journey.parse_focus("product: mobile; segment:business") == {"product": "mobile", "segment": "business"}
    assert journey.parse_focus({"segment": "private", "product": ""}) == {"segment": "private"}
    with pytest.raises(journey.JourneyError, match="unknown key"):
        journey.parse_focus("region:north")
    with pytest.raises(journey.JourneyError, match="key:value"):
        journey.parse_focus("mobile")


def test_apply_focus_restricts_every_table(events, taxonomy):
    tables = {"customers": CUSTOMERS, "events": events, "orders": ORDERS}
    out = journey.apply_focus(tables, "product:mobile; segment:private", taxonomy=taxonomy)
    assert sorted(run(out["customers"])["customer_id"]) == ["A", "C"]
    assert sorted(run(out["orders"])["order_id"]) == ["o1", "o3"]
    assert sorted(run(out["events"])["event_id"]) == ["a1", "a2", "a3", "a4", "a5", "c1"]
    business = journey.apply_focus(tables, {"segment": "business"})
    assert sorted(run(business["events"])["event_id"]) == ["b1", "b2", "b3", "b4"]
    assert sorted(run(business["orders"])["order_id"]) == ["o4"]
    staged = journey.apply_focus(tables, "journey:purchase,onboarding", taxonomy=taxonomy)
    assert sorted(run(staged["events"])["event_id"]) == ["a3", "a4", "b3", "b4", "d3"]
    # the whole notebook follows the journey: customers (and their orders) with an event in it
    assert sorted(run(staged["customers"])["customer_id"]) == ["A", "B", "D"]
    assert sorted(run(staged["orders"])["order_id"]) == ["o1", "o4"]
    with pytest.raises(journey.JourneyError, match="unknown stage"):
        journey.apply_focus(tables, "journey:checkout", taxonomy=taxonomy)


# --- engine -------------------------------------------------------------------------------

def test_connect_unknown_engine_raises():
    with pytest.raises(engine.EngineError, match="unknown engine 'spark'"):
        engine.connect("spark")


def test_read_table_missing_file_and_missing_column(tmp_path):
    con = engine.connect()
    with pytest.raises(engine.EngineError, match="events.parquet: file not found"):
        engine.read_table(con, tmp_path / "events.parquet")
    make_events(LOG).drop(columns=["touchpoint"]).to_parquet(tmp_path / "events.parquet")
    with pytest.raises(engine.EngineError, match=r"missing column\(s\) \['touchpoint'"):
        engine.read_table(con, tmp_path / "events.parquet", columns=["event_id", "touchpoint"])


def test_to_pandas_dtypes_do_not_depend_on_the_backend():
    t = ibis.memtable(pd.DataFrame({"k": ["x", "y", None], "v": [1, 2, 3]}))
    out = engine.to_pandas(t.group_by("k").agg(n=t.count().cast("int32"), m=t.v.mean()).order_by("k"))
    assert out.dtypes.astype(str).tolist() == ["str", "int64", "float64"]


# --- DuckDB path against a pandas reference on a medium log ----------------------------------

TOUCHPOINTS = ["campaign_sent", "web_visit", "tariff_page", "quote", "cart", "order", "activation",
               "first_invoice", "service_contact", "complaint"]


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """About 12,000 events of 600 customers, on whole hours (many ties), rows shuffled;
    read back through the engine from Parquet."""
    rng = np.random.default_rng(7)
    n_customers, n = 600, 12_000
    customer = rng.integers(0, n_customers, n)
    hours = rng.integers(0, 24 * 400, n) // rng.choice([1, 24], n)   # some customers' events share days
    frame = pd.DataFrame({
        "event_id": pd.Series([f"e{i:05d}" for i in rng.permutation(n)], dtype="str"),
        "customer_id": pd.Series([f"C{c:04d}" for c in customer], dtype="str"),
        TS: pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(hours, unit="h"),
        "touchpoint": pd.Series(rng.choice(TOUCHPOINTS, n, p=[.1, .2, .1, .12, .08, .12, .1, .06, .08, .04]), dtype="str"),
    })
    frame = frame.assign(segment=np.where(frame["customer_id"].str[-1].isin(list("01234")), "private", "business"))
    path = tmp_path_factory.mktemp("medium") / "events.parquet"
    frame.to_parquet(path)
    con = engine.connect("duckdb", threads=1)
    return frame, engine.read_table(con, path, columns=["event_id", "customer_id", TS, "touchpoint"])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Events in journey order with position and whole seconds (the reference's starting point)."""
    out = frame.sort_values(["customer_id", TS, "event_id"], kind="stable").reset_index(drop=True)
    return out.assign(seq=out.groupby("customer_id").cumcount() + 1,
                      sec=out[TS].dt.floor("s").astype("int64") // 10**6)


def ref_transitions(frame, by=None):
    s = _sorted(frame)
    pairs = s.assign(to_step=s.groupby("customer_id")["touchpoint"].shift(-1)).dropna(subset=["to_step"])
    keys = [*([by] if by else []), "from_step", "to_step"]
    counts = (pairs.rename(columns={"touchpoint": "from_step"}).groupby(keys).size().rename("transitions")
              .reset_index())
    counts = counts.assign(probability=counts["transitions"]
                           / counts.groupby([*([by] if by else []), "from_step"])["transitions"].transform("sum"))
    return (counts.sort_values([*([by] if by else []), "transitions", "from_step", "to_step"],
                               ascending=[*([True] if by else []), False, True, True])
            .reset_index(drop=True).astype({"from_step": "str", "to_step": "str"}))


def ref_funnel_counts(frame, steps):
    s = _sorted(frame)
    first = s[s["touchpoint"] == steps[0]].groupby("customer_id").agg(s_=("seq", "min"), t_=("sec", "min"))
    levels = [first.assign(t0=first["t_"]).reset_index()]
    for step in steps[1:]:
        cand = s.loc[s["touchpoint"] == step, ["customer_id", "seq", "sec"]]
        j = levels[-1].merge(cand, on="customer_id").query("seq > s_")
        levels.append(j.groupby(["customer_id", "t0"]).agg(s_=("seq", "min"), t_=("sec", "min")).reset_index())
    days = [(lv["t_"] - lv["t0"]) / 86_400 for lv in levels]
    return pd.DataFrame({"customers": [len(lv) for lv in levels],
                         "days_median": [d.quantile(0.5) for d in days],
                         "days_p90": [d.quantile(0.9) for d in days]})


def ref_time_between(frame, source, target):
    s = _sorted(frame)
    s = s[s["touchpoint"].isin([source, target])]
    g = s.groupby("customer_id")
    s = s.assign(nxt=g["touchpoint"].shift(-1), nxt_sec=g["sec"].shift(-1))
    hit = s[(s["touchpoint"] == source) & (s["nxt"] == target)]
    days = (hit["nxt_sec"] - hit["sec"]) / 86_400
    return [len(hit), hit["customer_id"].nunique(), days.quantile(0.5), days.quantile(0.9), days.mean()]


def ref_paths(frame, max_steps):
    s = _sorted(frame)
    s = s[s["touchpoint"] != s.groupby("customer_id")["touchpoint"].shift(1)]
    pos = s.groupby("customer_id").cumcount()
    n = s.groupby("customer_id")["touchpoint"].transform("size")
    head = s[pos < max_steps]
    path = head.groupby("customer_id")["touchpoint"].agg(" > ".join)
    cut = (n.groupby(s["customer_id"]).first() > max_steps)
    path = path.where(~cut, path + " > …")
    counts = path.value_counts().rename_axis("path").rename("journeys").reset_index()
    return counts.sort_values(["journeys", "path"], ascending=[False, True]).reset_index(drop=True)


def ref_episodes(frame, gap_days):
    s = _sorted(frame)
    gap = s.groupby("customer_id")["sec"].diff()
    new = (gap.isna() | (gap > gap_days * 86_400)).astype("int64")
    return s.assign(episode=new.groupby(s["customer_id"]).cumsum()).loc[:, ["event_id", "episode"]]


def test_medium_transitions_match_pandas(medium):
    frame, table = medium
    assert_frame_equal(journey.transitions(table), ref_transitions(frame))
    by = journey.transitions(journey.attach(table, frame[["customer_id", "segment"]].drop_duplicates()), by="segment")
    assert_frame_equal(by, ref_transitions(frame, by="segment"))


def test_medium_funnel_matches_pandas(medium):
    frame, table = medium
    steps = ["web_visit", "quote", "order", "activation", "first_invoice"]
    out = journey.funnel(table, steps)
    assert_frame_equal(out[["customers", "days_median", "days_p90"]], ref_funnel_counts(frame, steps))
    assert out["customers"].is_monotonic_decreasing


def test_medium_time_between_steps_matches_pandas(medium):
    frame, table = medium
    pairs = [("order", "activation"), ("quote", "order"), ("complaint", "complaint")]
    out = journey.time_between_steps(table, pairs)
    for row, (source, target) in zip(out.itertuples(), pairs):
        expected = ref_time_between(frame, source, target)
        assert [row.pairs, row.customers] == expected[:2]
        assert [row.days_median, row.days_p90, row.days_mean] == pytest.approx(expected[2:], rel=1e-9)


def test_medium_path_variants_match_pandas(medium):
    frame, table = medium
    out = journey.path_variants(table, col_node="touchpoint", max_steps=4, top=25)
    ref = ref_paths(frame, 4)
    assert out["path"].tolist() == ref["path"].head(25).tolist()
    assert out["journeys"].tolist() == ref["journeys"].head(25).tolist()
    assert out["variants"].iloc[0] == len(ref)


def test_medium_episodes_match_pandas(medium):
    frame, table = medium
    out = run(journey.with_episodes(table, 14).select("event_id", "episode")).sort_values("event_id")
    ref = ref_episodes(frame, 14).sort_values("event_id")
    assert out["episode"].tolist() == ref["episode"].tolist()


def ref_episode_summary(frame, gap_days, by=None):
    """Episode sizes and lengths from `ref_episodes`, summarised with pandas' (linear) quantiles."""
    s = _sorted(frame).merge(ref_episodes(frame, gap_days), on="event_id")
    per = s.groupby([*([by] if by else []), "customer_id", "episode"]).agg(n=("sec", "size"), d=("sec", lambda x: (x.max() - x.min()) / 86_400))
    grouped = per.groupby(by) if by else per.groupby(lambda _: 0)
    out = grouped.agg(customers=("n", lambda x: x.index.get_level_values("customer_id").nunique()), episodes=("n", "size"),
                      events_median=("n", "median"), days_median=("d", "median"), days_p90=("d", lambda x: x.quantile(0.9)))
    return out.reset_index(drop=not by)


def test_medium_episode_summary_matches_pandas(medium):
    """One pass over the events marks where episodes start and end; the same sizes and lengths as
    splitting them with a running count (with_episodes), with and without a segment breakdown."""
    frame, table = medium
    for gap, by in ((14, None), (3, "segment"), (0.5, None)):
        events = journey.attach(table, frame[["customer_id", "segment"]].drop_duplicates()) if by else table
        out = journey.episode_summary(events, gap, by=by)
        ref = ref_episode_summary(frame, gap, by)
        assert out["episodes"].tolist() == ref["episodes"].tolist() and out["customers"].tolist() == ref["customers"].tolist()
        for col in ("events_median", "days_median", "days_p90"):
            assert out[col].tolist() == pytest.approx(ref[col].tolist(), rel=1e-12), (gap, by, col)
    with pytest.raises(journey.JourneyError, match="gap_days must be a positive"):
        journey.episode_summary(table, 0)


def test_episode_summary_edges():
    """A customer's last event that starts an episode alone, the exact gap (same episode), events at
    one instant (the event id orders them), and one-event customers."""
    log = make_events([("p1", "P", "2024-01-01", "usage"), ("p2", "P", "2024-01-31", "usage"), ("p3", "P", "2024-03-01 00:00:01", "usage"),
                       ("q2", "Q", "2024-01-05", "usage"), ("q1", "Q", "2024-01-05", "usage"), ("r1", "R", "2024-02-01", "usage")])
    out = journey.episode_summary(log, 30)
    # P: [p1, p2] 30 days, [p3] 0; Q: [q1, q2] 0 days; R: [r1] 0 days
    assert out[["customers", "episodes", "events_median", "days_median"]].values.tolist() == [[3, 4, 1.5, 0.0]]
    assert out["days_p90"].iloc[0] == pytest.approx(30 * 0.7)


def test_transitions_by_node_equal_one_call_per_node(medium):
    frame, table = medium
    staged = table.mutate(stage=table.touchpoint.substitute({"quote": "consideration", "order": "purchase"}, else_="other"))
    for kw in ({}, {"gap_days": 10}, {"by": "segment"}):
        t = journey.attach(staged, frame[["customer_id", "segment"]].drop_duplicates()) if "by" in kw else staged
        both = journey.transitions_by_node(t, ["touchpoint", "stage"], **kw)
        assert_frame_equal(both[0], journey.transitions(t, **kw))
        assert_frame_equal(both[1], journey.transitions(t, col_node="stage", **kw))
    assert_frame_equal(journey.transitions(table), ref_transitions(frame))
    with pytest.raises(schema.Missing, match="no customer has two events"):
        journey.transitions_by_node(make_events(LOG[:1]), ["touchpoint", "stage"])


def test_funnel_and_timing_steps_with_alternatives(events):
    out = journey.funnel(events, ["web_visit|quote", ["order"], "activation"])
    # D's first quote counts as step 1 now, and D's order follows it
    assert out["step"].tolist() == ["web_visit|quote", "order", "activation"]
    assert out["customers"].tolist() == [4, 3, 2]
    t = journey.time_between_steps(events, [("web_visit|quote", "order")])
    # A: a2 -> a3 (47 h), B: b2 -> b3 (1 d), D: d2 -> d3 (1 d); a1, b1, d1 are followed by another step-1 event
    assert t[["from_step", "pairs", "days_median"]].iloc[0].tolist() == ["web_visit|quote", 3, 1.0]
    with pytest.raises(journey.JourneyError, match="empty step"):
        journey.funnel(events, ["web_visit", " | "])


def test_overview(events):
    out = journey.overview(events)
    assert out[["events", "customers"]].iloc[0].tolist() == [13, 4]
    assert out["first"].iloc[0] == ts("2024-01-01 10:00")
    assert out["last"].iloc[0] == ts("2024-03-01 09:00")
    assert journey.overview(make_events([]))[["events", "customers"]].iloc[0].tolist() == [0, 0]


def test_estimate_shape_for_results():
    rates = journey.conversion_rate(CUSTOMERS, ORDERS)
    est = journey.estimate(rates, "leads")
    assert est["value"] == 0.5 and est["n"] == 4 and est["ci_low"] < 0.5 < est["ci_high"]
    assert journey.estimate(rates.iloc[0:0], "leads")["n"] == 0


def test_repeat_vs_new_counts_signed_up_customers_as_repeat(events):
    # D has no order but signed up before the quote of 2024-01-10: an existing customer
    signed = CUSTOMERS.assign(signup_date=CUSTOMERS["signup_date"].where(CUSTOMERS["customer_id"] != "D",
                                                                         ts("2023-06-01")))
    out = journey.repeat_vs_new_conversion(events, ORDERS, customers=signed, window_days=30)
    assert out.set_index("customer_type")["opportunities"].to_dict() == {"new": 2, "repeat": 1}
    assert out.set_index("customer_type")["converted"].to_dict() == {"new": 1, "repeat": 0}
    by = journey.repeat_vs_new_conversion(journey.attach(events, SEGMENTS), ORDERS, customers=signed, by="segment")
    assert by[["segment", "customer_type", "opportunities"]].values.tolist() == [
        ["business", "new", 1], ["business", "repeat", 0], ["private", "new", 1], ["private", "repeat", 1]]
    opp = run(journey.opportunities(events, ORDERS, customers=signed).order_by("event_id"))
    assert opp["event_id"].tolist() == ["a2", "b2", "d1"]
    assert opp["converted"].tolist() == [True, False, False]
    assert "stage" in opp.columns


def test_opportunities_as_of_keeps_only_those_whose_window_has_passed(events):
    # quotes on 01-01 (A), 01-05 (B), 01-10 (D); with as_of 2024-02-06 and 30 days only A and B count
    out = journey.lost_sales(events, ORDERS, window_days=30, as_of="2024-02-06")
    assert out.set_index("step").loc["quote", ["opportunities", "lost"]].tolist() == [2, 1]


def test_time_between_steps_share_over_a_threshold(events):
    out = journey.time_between_steps(events, [("order", "activation")], over_days=14)
    # A: 10 days, B: 20 days
    assert out["share_over"].tolist() == [0.5]
    assert "share_over" not in journey.time_between_steps(events, [("order", "activation")]).columns


def test_conversion_rate_since_a_date_counts_only_newer_leads():
    out = journey.conversion_rate(CUSTOMERS, ORDERS, since="2023-11-15")
    # leads from 2023-12-01: A (signed up), B (cancelled order only), D (nothing); E came in 2023-11-01
    assert out[["leads", "converted"]].iloc[0].tolist() == [3, 1]


def test_step_label(taxonomy):
    assert journey.step_label("web_visit|quote", taxonomy) == "Web visit or Quote"
    assert journey.step_label("onboarding", taxonomy, section="stages", lang="de") == "Bereitstellung"
    assert journey.step_label("not_a_code", taxonomy) == "not_a_code"


# --- thin data: each computation says what it lacks (schema.Missing), or gives a true result ------

def utc(*values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True, format="ISO8601"))


LEADS = pd.DataFrame({"customer_id": [f"L{i}" for i in range(40)], "lead_date": utc(*["2024-01-01"] * 40),
                      "signup_date": utc(*[None] * 40)})


def test_zero_conversions_are_a_result_with_an_interval_from_zero():
    out = journey.conversion_rate(LEADS, ORDERS)
    _, high = wilson_interval(0, 40)
    assert out[["leads", "converted"]].iloc[0].tolist() == [40, 0]
    assert (out["rate"].iloc[0], out["ci_low"].iloc[0], out["ci_high"].iloc[0]) == (0.0, 0.0, float(high))
    assert describe.describe_conversion(out) == "0 of 40 leads converted (95% interval 0.0%–8.8%)."


def test_interval_bounds_enclose_the_rate_so_error_bars_are_never_negative():
    quotes = make_events([("q1", "X1", "2024-02-01", "quote"), ("q2", "X2", "2024-02-02", "quote")])
    out = journey.repeat_vs_new_conversion(quotes, ORDERS, window_days=30)
    assert out[["customer_type", "opportunities", "converted"]].values.tolist() == [["new", 2, 0], ["repeat", 0, 0]]
    assert out["ci_low"].iloc[0] == 0.0 and np.isnan(out["rate"].iloc[1])
    assert (describe.error_bars(out) >= 0).all() and describe.error_bars(out)[:, 1].tolist() == [0.0, 0.0]
    assert describe.opportunities_title(out) == "0 of 2 sales opportunities became an order"
    assert describe.describe_opportunities(out) == ("0 of 2 opportunities of new customers became an order (0.0%). Repeat and "
                                                    "new customers cannot be compared: one of the groups has no opportunity.")


def test_conversion_without_leads_or_lead_dates_raises_missing():
    with pytest.raises(schema.Missing, match="^no leads: no customer has a lead date \\(") as caught:
        journey.conversion_rate(CUSTOMERS.drop(columns="lead_date"), ORDERS)     # an absent column reads as empty
    assert caught.value.enable == "customers.lead_date"
    with pytest.raises(schema.Missing, match="no lead dates on or after 2024-06-01"):
        journey.conversion_rate(CUSTOMERS, ORDERS, since="2024-06-01")


def test_orders_missing_or_all_cancelled_raise_missing(events):
    no_orders = ORDERS.iloc[0:0]
    for call in (lambda: journey.repeat_customer_rate(no_orders), lambda: journey.order_intervals(no_orders),
                 lambda: journey.cancelled_orders(no_orders), lambda: journey.lost_sales(events, no_orders),
                 lambda: journey.repeat_vs_new_conversion(events, no_orders)):
        with pytest.raises(schema.Missing, match="^no orders \\(") as caught:
            call()
        assert caught.value.enable == journey.NEEDS_ORDERS
    cancelled = ORDERS.iloc[:2].assign(status=journey.CANCELLED)
    with pytest.raises(schema.Missing, match="^all 2 orders are cancelled \\("):
        journey.repeat_customer_rate(cancelled)
    with pytest.raises(schema.Missing, match="the orders carry no status"):
        journey.cancelled_orders(ORDERS.assign(status=pd.Series([None] * 5, dtype="str")))
    assert journey.CANCELLED in schema.ORDER_STATUSES and journey.DEFAULT_EXCLUDED_STATUSES == (journey.CANCELLED,)


def test_opportunities_without_a_quote_raise_missing():
    visits = make_events([("v1", "A", "2024-01-01", "web_visit")])
    with pytest.raises(schema.Missing, match=r"^no sales opportunity \(quote, cart\) \("):
        journey.lost_sales(visits, ORDERS)
    with pytest.raises(schema.Missing, match=r"whose 30-day window ended by 2024-01-10"):
        journey.repeat_vs_new_conversion(make_events(LOG), ORDERS, window_days=30, as_of="2024-01-10")


def test_order_intervals_time_between_consecutive_orders():
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"], "customer_id": ["A", "A", "A", "B", "C", "C"],
        "timestamp": utc("2024-01-01", "2024-01-11", "2024-01-31", "2024-01-05", "2024-01-02", "2024-01-04"),
        "status": ["completed", "completed", None, "completed", "completed", "cancelled"],
    })
    out = journey.order_intervals(orders)
    # A: 10 and 20 days; B one order; C's second order was cancelled
    assert out.to_dict("records") == [{"intervals": 2, "customers": 1, "days_median": 15.0, "days_p90": 19.0, "days_mean": 15.0}]
    assert describe.describe_order_intervals(out) == ("Between two consecutive orders of a customer lie a median of 15.0 "
                                                      "days (90% within 19.0 days; 2 intervals of 1 customer).")
    # nobody ordering twice is a result: no interval, no sentence; the repeat sentence says it
    none = journey.order_intervals(orders.iloc[[0, 3, 4]])
    assert none[["intervals", "customers"]].iloc[0].tolist() == [0, 0] and none["days_median"].isna().all()
    assert describe.describe_order_intervals(none) == ""
    assert describe.describe_repeat(journey.repeat_customer_rate(orders), out, lang="de") == (
        "33,3\u00a0% von 3 Käufern bestellten mehr als einmal (1 Kunde; 95-%-Intervall 6,1\u00a0%–79,2\u00a0%). Zwischen "
        "zwei aufeinanderfolgenden Bestellungen eines Kunden liegen im Median 15,0 Tage (90\u00a0% binnen 19,0 Tagen; "
        "2 Abstände bei 1 Kunde).")


def test_campaigns_missing_or_without_response_column():
    camp = pd.DataFrame({"campaign_id": ["k1", "k1"], "customer_id": ["A", "B"], "sent_at": utc("2024-01-01", "2024-01-01")})
    assert journey.campaign_response(camp)[["sent", "responded", "rate"]].iloc[0].tolist() == [2, 0, 0.0]
    with pytest.raises(schema.Missing, match="no campaign contacts"):
        journey.campaign_response(camp.iloc[0:0])


def test_tenure_starts_at_the_first_event_when_no_customer_has_a_signup_date():
    derived = pd.DataFrame({"customer_id": ["A", "B", "C", "D"],
                            "churn_date": utc(None, "2024-02-15", None, None)})      # no signup_date column at all
    out = journey.tenure_churn(derived, make_events(LOG), as_of="2024-03-01", band_days=30)
    # first events: A 01-01 10:00 (59.6 days, active), B 01-05 12:00 (churned after 40.5), C 02-01 (29), D 01-10 (50)
    assert out["at_risk"].tolist() == [4, 3]
    assert out["churned"].tolist() == [0, 1]
    assert out["survival"].tolist() == pytest.approx([1.0, 2 / 3])
    assert out.attrs == {"customers": 4, "start_from_first_event": 4}
    assert describe.tenure_title(out) == "33% of customers churn within 2 months"
    text = describe.describe_tenure(out)
    assert text == ("Of 4 customers followed, 1 churned; by a tenure of 2 months the life table puts the share churned at "
                    "33.3%. The data has no signup dates: tenure starts at each customer's first event.")
    with pytest.raises(schema.Missing, match="no signup dates, and no customer with an event to start from"):
        journey.tenure_churn(derived, make_events([]))


def test_tenure_follows_only_signed_up_customers_when_there_are_signup_dates():
    # leads B, D and E have events but no signup: they are not customers and are not followed
    with_events = journey.tenure_churn(CUSTOMERS, make_events(LOG), as_of="2024-01-02", band_days=90)
    assert_frame_equal(with_events, journey.tenure_churn(CUSTOMERS, as_of="2024-01-02", band_days=90))
    assert with_events.attrs == {"customers": 2, "start_from_first_event": 0}


def test_tenure_without_churn_dates_raises_missing_but_nobody_churned_yet_is_a_result():
    with pytest.raises(schema.Missing, match="^no churn dates \\(") as caught:
        journey.tenure_churn(CUSTOMERS.drop(columns="churn_date"), band_days=90)
    assert caught.value.enable == "customers.churn_date"
    early = journey.tenure_churn(CUSTOMERS, as_of="2023-02-01", band_days=90)      # C churns only in May
    assert early[["at_risk", "churned", "survival"]].values.tolist() == [[1, 0, 1.0]]


def test_segments_need_two():
    assert journey.segments(CUSTOMERS) == ["business", "private"]
    with pytest.raises(schema.Missing, match=r"^one segment only \(private\) \("):
        journey.segments(CUSTOMERS.assign(segment="private"))
    with pytest.raises(schema.Missing, match="^no customer segments \\("):
        journey.segments(CUSTOMERS.drop(columns="segment"))
    attached = run(journey.attach(make_events(LOG), CUSTOMERS.drop(columns="segment")))
    assert attached["segment"].isna().all() and len(attached) == len(LOG)


def test_stages_unknown_to_the_taxonomy_raise_missing(taxonomy):
    odd = make_events([("x1", "X", "2024-01-01", "permit_filed"), ("x2", "X", "2024-01-02", "permit_granted")])
    with pytest.raises(schema.Missing, match="no event's touchpoint belongs to a journey stage"):
        journey.stage_summary(journey.with_stages(odd, taxonomy), taxonomy)
    flow = journey.transitions(journey.with_stages(odd, taxonomy), col_node="stage")
    with pytest.raises(schema.Missing, match="no consecutive events with a journey stage"):
        describe.stage_matrix(flow, taxonomy)


# --- words: true on thin data ------------------------------------------------------------------

def test_describe_overview():
    log = journey.overview(make_events(LOG))
    assert describe.describe_overview(log) == "13 events of 4 customers from 1 Jan 2024 to 1 Mar 2024."
    assert describe.describe_overview(log, "de") == "13 Ereignisse von 4 Kunden vom 01.01.2024 bis 01.03.2024."
    anonymous = journey.overview(make_events(LOG).assign(customer_id=pd.Series([None] * 13, dtype="str")))
    assert describe.describe_overview(anonymous) == ("13 events from 1 Jan 2024 to 1 Mar 2024; none carries a customer id, "
                                                     "so they form no journeys.")
    assert describe.describe_overview(journey.overview(make_events([]))).startswith("The event log is empty")
    assert journey.period(journey.overview(make_events([]))) == (None, None)


def test_describe_stages_and_funnel(events, taxonomy):
    stages = journey.stage_summary(events, taxonomy)
    assert describe.stages_title(stages) == "75% of people in the log reach the purchase stage"
    assert describe.describe_stages(stages, journey.overview(events)) == (
        "Of 4 customers in the log, 100% have an event in consideration, 75% in purchase, 50% in onboarding, "
        "25% in service. No event falls in awareness, usage, renewal, exit.")
    f = journey.funnel(events, STEPS)
    labels = describe.step_labels(f["step"], taxonomy)
    assert describe.funnel_title(f, labels) == "50.0% of those who start reach activation"
    assert describe.describe_funnel(f, labels).startswith("Of 4 customers who start, the largest drop is before **Quote**: "
                                                          "2 customers (50% of the previous step) do not go on.")
    one = journey.funnel(events, ["quote"])
    assert describe.funnel_title(one, ["Quote"]) == "3 customers reach quote"
    everyone = journey.funnel(events, ["quote", "order"])       # A, B and D all order after their quote
    assert describe.describe_funnel(everyone, ["Quote", "Order"]) == ("All 3 customers who start reach the last step, "
                                                                      "in a median of 2 days (90% within 2).")
    nobody = journey.funnel(events, ["web_visit", "renewal"])
    assert describe.describe_funnel(nobody, ["Web visit", "Renewal"]).endswith("Nobody reaches the last step.")


def test_timing_chart_highlights_the_pair_asked_for_or_the_most_frequent(events, taxonomy):
    timing = journey.time_between_steps(events, [("quote", "order"), ("order", "activation"), ("cart", "order")], over_days=14)
    chart = describe.timing_chart(timing, ["order", "activation"], taxonomy)
    assert chart["label"].tolist() == ["Quote → Order", "Order → Activation"]      # cart → order never occurs
    assert chart["highlight"].tolist() == [False, True]
    assert describe.timing_title(chart, 14) == "50% of order → activation take longer than 14 days"
    fallback = describe.timing_chart(timing, ["cart", "order"], taxonomy)
    assert fallback["highlight"].tolist() == [True, False]                          # quote → order: 3 pairs


def test_no_nan_or_none_in_sentences_on_thin_data(events, taxonomy):
    one = journey.with_stages(make_events([("x1", "X", "2024-01-01", "web_visit"), ("x2", "X", "2024-01-01", "web_visit")]),
                              taxonomy)
    texts = [
        describe.describe_episodes(journey.episode_summary(one, 30), 30),
        describe.describe_paths(journey.path_variants(one)),
        describe.describe_transitions(journey.transitions(one), taxonomy),
        describe.describe_stage_flow(journey.transitions(one, col_node="stage"), taxonomy),
        describe.stage_flow_title(journey.transitions(one, col_node="stage"), taxonomy),
        describe.describe_repeat(journey.repeat_customer_rate(ORDERS.iloc[[0]])),
        describe.describe_cancellations(journey.cancelled_orders(ORDERS.iloc[[0]])),
        describe.describe_lost_sales(journey.lost_sales(events, ORDERS), taxonomy),
    ]
    assert texts[1] == "Every customer follows the same path: consideration."
    assert texts[4] == "Customers stay in their stage from one event to the next"
    assert texts[5] == "0 of 1 buyer ordered more than once (95% interval 0.0%–79.3%)."
    assert texts[6] == "0 of 1 orders (0.0%) were cancelled."
    for text in texts:
        assert not {"nan", "None", "inf"} & set(text.replace(".", " ").replace(",", " ").split()), text


def test_shown_tables_use_words_percent_and_labels(taxonomy):
    funnel = pd.DataFrame({"step": ["web_visit|tariff_page", "order"], "customers": [1000, 4],
                           "conversion": [1.0, 0.4], "ci_low": [0.72246, 0.16818], "days_median": [np.nan, 2.345]})
    got = tables.shown(funnel, taxonomy=taxonomy)
    assert list(got.columns) == ["step", "customers", "conversion from step 1", "95% low", "days (median)"]
    assert got["step"].tolist() == [journey.step_label("web_visit|tariff_page", taxonomy), journey.step_label("order", taxonomy)]
    assert got["step"].iloc[0].count(" or ") == 1 and "_" not in got["step"].iloc[0]
    assert got["customers"].tolist() == ["1,000", "4"]
    assert got["conversion from step 1"].tolist() == ["100.0%", "40.0%"] and got["95% low"].tolist() == ["72.2%", "16.8%"]
    assert got["days (median)"].tolist() == ["–", "2.3"]          # a missing value is a dash, never nan
    stages = pd.DataFrame({"stage": ["purchase"], "stage_label": ["Purchase"], "share": [0.25]})
    assert tables.shown(stages).to_dict("list") == {"stage": ["Purchase"], "share": ["25.0%"]}   # no code column
    life = pd.DataFrame({"band": [0], "at_risk": [7043], "survival": [0.90351]})
    assert tables.shown(life).to_dict("list") == {"tenure band": ["0"], "customers at its start": ["7,043"],
                                                  "still active at its end": ["90.4%"]}
    assert tables.shown(pd.DataFrame({"rate": [0.5]}), lang="de").iloc[:, 0].tolist() == ["50,0\u00a0%"]
    assert tables.shown(funnel.iloc[0:0], taxonomy=taxonomy).empty
    # German: headers, step labels joined by 'oder', segments and customer types in words
    de = tables.shown(funnel.assign(segment="business"), taxonomy=taxonomy, lang="de")
    assert list(de.columns) == ["Schritt", "Kunden", "Konversion ab Schritt 1", "95 % von", "Tage (Median)", "Segment"]
    assert de["Schritt"].iloc[0] == "Webseitenbesuch oder Tarifseite" and de["Segment"].iloc[0] == "Geschäftskunden"
    rates = pd.DataFrame({"customer_type": ["new", "repeat"], "opportunities": [10, 20], "rate": [0.1, 0.5]})
    assert tables.shown(rates, lang="de")["Kundentyp"].tolist() == ["Neukunden", "Bestandskunden"]
    paths = pd.DataFrame({"rank": [1], "path": ["purchase > unknown > …"], "journeys": [3], "coverage": [1.0]})
    assert tables.shown(paths, taxonomy=taxonomy, lang="de")["Pfad"].tolist() == ["Kauf > unbekannt > …"]


def test_shares_never_round_to_all_or_nothing():
    paths = pd.DataFrame({"rank": [1, 2], "path": ["purchase > delivery", "purchase"], "journeys": [1318, 116],
                          "coverage": [0.859, 0.076], "cumulative_coverage": [0.859, 0.99996], "variants": [11, 11]})
    assert describe.describe_paths(paths) == ("The 2 most common of 11 path variants cover >99.9% of customers; "
                                              "the most common alone covers 86%.")
    paths = paths.assign(cumulative_coverage=[0.859, 0.999])
    assert "cover 99.9% of customers" in describe.describe_paths(paths)
    assert describe._pct(0.004) == "0.4%" and describe._pct(0.0) == "0%" and describe._pct(1.0) == "100%"


# --- German, findings, the results record -------------------------------------------------------

def test_sentences_in_german(events, taxonomy):
    stages = journey.stage_summary(events, taxonomy, lang="de")
    assert describe.stages_title(stages, "de") == "75\u00a0% der Personen im Protokoll erreichen die Phase Kauf"
    f = journey.funnel(events, STEPS)
    labels = describe.step_labels(f["step"], taxonomy, "de")
    assert describe.funnel_title(f, labels, "de") == "50,0\u00a0% derer, die beginnen, erreichen Aktivierung"
    assert describe.describe_funnel(f, labels, "de").startswith(
        "Von 4 Kunden, die beginnen, ist der größte Verlust vor **Angebot**: 2 Kunden (50\u00a0% des vorigen Schritts)")
    conversion = journey.conversion_rate(LEADS, ORDERS)
    assert "Leads wurden Kunden (95-%-Intervall " in describe.describe_conversion(conversion, "de")
    life = pd.DataFrame({"tenure_from_days": [0, 30], "tenure_to_days": [30, 60], "at_risk": [3, 2], "churned": [1, 0],
                         "rate": [1 / 3, 0.0], "survival": [2 / 3, 2 / 3]})
    assert describe.tenure_title(life, "de") == "33\u00a0% der Kunden kündigen binnen 2 Monaten"
    for text in (describe.describe_stages(stages, journey.overview(events), "de"), describe.describe_tenure(life, "de"),
                 describe.describe_transitions(journey.transitions(events), taxonomy, "de",
                                               stage_flow=journey.transitions(events, col_node="stage"))):
        assert not {" of ", " the ", " and ", " in the "} & {f" {w} " for w in text.split()}, text


def test_findings_open_with_the_log_and_list_what_the_sections_found(events, taxonomy):
    found = {"focus": "", "funnel": journey.funnel(events, STEPS),
             "time_between_steps": journey.time_between_steps(events, [("order", "activation")], over_days=14)}
    text = describe.describe_findings(found, taxonomy, log=journey.overview(events), highlight_pair=["order", "activation"],
                                      slow_days=14)
    lines = text.splitlines()
    assert lines[0] == "13 events of 4 customers from 1 Jan 2024 to 1 Mar 2024."
    assert lines[2].startswith("- **Funnel:** 50.0% of those who start reach activation. Of 4 customers who start")
    assert lines[3] == "- **Time between steps:** 50% of order → activation take longer than 14 days."
    assert len(lines) == 4                                   # no conversion, repeat or opportunity line without them
    de = describe.describe_findings(found, taxonomy, log=journey.overview(events), highlight_pair=["order", "activation"],
                                    slow_days=14, lang="de")
    assert "- **Trichter:** 50,0\u00a0% derer, die beginnen, erreichen Aktivierung." in de
    assert describe.describe_findings({"focus": ""}, taxonomy, log=journey.overview(events), highlight_pair=[],
                                      slow_days=14) == "13 events of 4 customers from 1 Jan 2024 to 1 Mar 2024."


def test_results_record_keeps_the_shape_of_results_json(events):
    funnel = journey.funnel(events, STEPS)
    repeat = journey.repeat_customer_rate(ORDERS)
    episodes = journey.episode_summary(journey.attach(events, SEGMENTS), 30, by="segment")
    record = journey.results_record({"focus": "segment:private", "funnel": funnel, "repeat_customer_rate": repeat,
                                     "top_transitions": journey.transitions(events), "episodes_per_customer": episodes})
    assert record["focus"] == "segment:private"
    assert list(record["funnel"].columns) == ["step", "customers", "conversion", "ci_low", "ci_high", "step_conversion",
                                              "days_median", "days_p90"]
    assert record["repeat_customer_rate"] == journey.estimate(repeat, "buyers")
    assert len(record["top_transitions"]) == min(10, len(journey.transitions(events)))
    assert record["episodes_per_customer"] == pytest.approx(5 / 4)     # A has two episodes, B, C, D one each
    with pytest.raises(schema.Missing, match="no section of the journey report"):
        journey.results_record({"focus": ""})


def test_prepare_focuses_stages_and_segments(taxonomy):
    tables_in = {"customers": SEGMENTS, "events": make_events(LOG), "orders": ORDERS.iloc[0:0], "campaigns": None}
    data = journey.prepare({k: v for k, v in tables_in.items() if v is not None}, taxonomy, focus="segment:private")
    events = engine.to_pandas(data.events_with_segment)
    assert set(events["customer_id"]) == {"A", "C", "D"} and events["stage"].notna().all()
    assert "segment" not in data.events.columns
    assert sorted(engine.to_pandas(data.events)["event_id"]) == sorted(events["event_id"])
    assert (events["segment"] == "private").all() and data.campaigns is None
    assert data.start == ts("2024-01-01 10:00") and data.as_of == ts("2024-03-01 09:00")
    assert describe.parameters("de", focus="", slow_days=14.0) == {"Fokus": "alle Kunden", "langsamer Schritt (Tage)": 14.0}
    assert describe.method("de").startswith("- *Ereignisse und Journeys*")
