"""The event-log work runs unchanged on PySpark: the same cxlib calls give identical results on
DuckDB and on PySpark in local mode (`local[2]`), and engine=pyspark without pyspark or Java
fails with a message that says what to install.

Compared on two logs, each written to Parquet and read back by both engines:
- a hand-made log: rows out of order, events with the same timestamp (the event id decides),
  a customer with one event, a lead without events, an empty segment ('wholesale': a customer
  without events, also listed as a group), contacts with and without outcome and wait, and
  events without a customer id (a complaint with a long wait, a web visit: in no journey);
- the demo company at 3,000 customers (about 57,000 events), through the demo source mapping
  and the cleaning rules as 01_validate_clean does.

Every case runs one public journey / moments / value function on both engines; event-level outputs
are sorted by a total order before the comparison. The Spark cases need pyspark
(`pip install .[spark]`) and a Java runtime and are marked `spark`; without them they are
skipped, unless CX_REQUIRE_SPARK=1 (set by `make test-spark`), which makes that a failure.
Spark starts once for the module (about 10-20 s).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import ibis
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import catalog, clean, config, demo, engine, journey, moments, schema, sources, value

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("customers", "events", "orders", "campaigns", "feedback")
SEGMENT_GROUPS = ["private", "business", "wholesale"]       # wholesale: no events (an empty segment)
STEPS = ["web_visit", "quote|consultation", "order", "activation"]
PAIRS = [("quote|consultation", "order"), ("order", "activation"), ("order", "order")]
# derived moments beyond the taxonomy's: a `between` moment dated at its start and at its deadline, and
# quotes without an order within 1.5 days (a `missed` rule with and without `since`)
RULES = {
    "slow_from_order": {"between": ["order", "activation"], "min_days": 14, "dated_at": "first"},
    "slow_by_deadline": {"between": ["order", "activation"], "min_days": 14, "dated_at": "deadline"},
    "quote_unanswered": {"missed": {"due": "quote", "done": "order", "since": "web_visit"}, "grace_days": 1.5},
    "quote_again_unanswered": {"missed": {"due": "quote", "done": "order"}, "grace_days": 1.5},
}
COMPARABLE = {"slow_provisioning": {"touchpoint": ["order"]},
              "long_hotline_wait": {"contact_reason": ["invoice_unclear", "complaint_hotline"]}}


def utc(*text) -> list:
    return [None if t is None else pd.Timestamp(t, tz="UTC") for t in text]


def canonical(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every canonical column of table `name` (missing ones empty), typed and in order."""
    cols = schema.TABLES[name].columns
    full = frame.assign(**{c.name: pd.Series([None] * len(frame), dtype="object")
                           for c in cols if c.name not in frame.columns})
    return full.astype({c.name: schema.PANDAS_DTYPES[c.dtype] for c in cols}).loc[:, [c.name for c in cols]]


def hand_made() -> dict[str, pd.DataFrame]:
    """A small company: A, B, D buy (A and B again); C is a lead with one event; E (wholesale) has no
    events; n1, n2 carry no customer id."""
    ev = pd.DataFrame([
        # event_id, customer, timestamp, touchpoint, channel, contact_reason, resolved, wait, direction, text
        ("a3", "A", "2024-01-03 09:00", "order", "web", None, None, None, None, None),
        ("b2", "B", "2024-01-05 12:00", "quote", "web", None, None, None, None, None),
        ("a1", "A", "2024-01-01 10:00", "web_visit", "web", None, None, None, None, None),
        ("d3", "D", "2024-01-12 00:00", "order", "shop", None, None, None, None, None),
        ("a5", "A", "2024-03-01 09:00", "service_contact", "phone", "invoice_unclear", False, 400.0, "inbound", None),
        ("b1", "B", "2024-01-05 12:00", "web_visit", "web", None, None, None, None, None),          # tie with b2
        ("a2", "A", "2024-01-01 10:00", "quote", "web", None, None, None, None, None),              # tie with a1
        ("c1", "C", "2024-02-01 00:00", "web_visit", "web", None, None, None, None, None),          # one event
        ("b4", "B", "2024-01-26 12:00", "activation", "system", None, None, None, None, None),
        ("d1", "D", "2024-01-10 00:00", "quote", "web", None, None, None, None, None),
        ("a4", "A", "2024-01-20 09:00", "activation", "system", None, None, None, None, None),      # 17 days: slow
        ("b3", "B", "2024-01-06 12:00", "order", "web", None, None, None, None, None),
        ("d2", "D", "2024-01-11 00:00", "web_visit", "web", None, None, None, None, None),
        ("a6", "A", "2024-03-03 09:00", "service_contact", "phone", "invoice_unclear", True, 30.0, "inbound", None),
        ("a7", "A", "2024-03-05 09:00", "complaint", "phone", "complaint_hotline", True, 1000.0, "inbound", None),
        ("b5", "B", "2024-02-10 08:00", "complaint", "email", "complaint_billing", None, None, "inbound", None),
        ("b6", "B", "2024-02-10 08:00", "service_contact", "phone", "provisioning_question", True, 200.0, "inbound", None),
        ("d4", "D", "2024-01-15 10:00", "service_contact", "phone", "complaint_service_failure", False, 900.0, "inbound", None),
        ("d5", "D", "2024-01-16 10:00", "order_cancelled", "system", None, None, None, None, "zu teuer"),
        ("a8", "A", "2024-03-10 07:00", "outage_notification", "sms", "outage_notification", None, 600.0, "outbound", None),
        ("n1", None, "2024-02-15 08:00", "complaint", "phone", "complaint_billing", False, 700.0, "inbound", None),
        ("n2", None, "2024-01-05 12:00", "web_visit", "web", None, None, None, None, None),        # tie with b1, b2
    ], columns=["event_id", "customer_id", "timestamp", "touchpoint", "channel", "contact_reason", "resolved",
                "wait_seconds", "direction", "text"])
    ev = ev.assign(timestamp=utc(*ev["timestamp"]))
    customers = pd.DataFrame({
        "customer_id": ["A", "B", "C", "D", "E"],
        "segment": ["private", "business", "private", "private", "wholesale"],
        "lead_date": utc(None, None, "2024-01-20", "2023-12-01", None),
        "signup_date": utc("2023-06-01", "2024-01-06", None, "2024-01-12", "2023-01-01"),
        "churn_date": utc(None, "2024-03-15", None, "2024-02-10", None),
        "contact_consent": [True, True, False, True, False],
        "consent_channels": ["email", "phone", None, "phone, sms", None],
    })
    orders = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"], "customer_id": ["A", "A", "B", "D", "A", "B"],
        "timestamp": utc("2024-01-03 09:00", "2024-03-02", "2024-01-06 12:00", "2024-01-12", "2024-03-10",
                         "2024-02-20"),
        "product": ["Breitband 100", "Mobil S", "Breitband 100", "Mobil S", "Mobil S", "Mobil S"],
        "category": ["Breitband", "Mobilfunk", "Breitband", "Mobilfunk", "Mobilfunk", "Mobilfunk"],
        "revenue": [30.0, 10.0, 30.0, 10.0, 10.0, 10.0],
        "status": ["completed", "completed", "completed", "cancelled", "completed", "completed"],
    })
    campaigns = pd.DataFrame({
        "campaign_id": ["k1", "k1", "k2", "k2"], "customer_id": ["A", "B", "C", "D"],
        "sent_at": utc("2023-12-20", "2023-12-20", "2024-01-15", "2024-01-15"),
        "responded_at": utc("2023-12-22", None, "2024-01-19", None),
    })
    feedback = pd.DataFrame({
        "response_id": ["r1", "r2", "r3", "r4", "r5"], "customer_id": ["A", "B", "D", None, "A"],
        "timestamp": utc("2024-03-06", "2024-02-20", "2024-01-20", "2024-02-01", "2024-01-25"),
        "touchpoint": [None, None, None, None, "activation"],
        "nps": [3.0, 9.0, 0.0, 10.0, 8.0], "csat": [2.0, 5.0, None, None, 4.0], "ces": [2.0, 6.0, None, None, None],
    })
    frames = {"customers": customers, "events": ev, "orders": orders, "campaigns": campaigns, "feedback": feedback}
    return {name: canonical(name, frame) for name, frame in frames.items()}


# --- the cases: one public call each, on the tables of one engine ------------------------------

def _events(t, tax):
    return journey.attach(journey.with_stages(t["events"], tax), t["customers"])


def _period(t):
    first, last = moments.observation_period(t["events"])
    return first, last


def _total_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _recent(t, tax):
    return moments.recent_moments(_handled(t, tax), moments=moments.candidate_moments(t["events"], tax)["moment"].tolist(),
                                  as_of=_period(t)[1], recent_days=60)


def _handled(t, tax):
    events = moments.with_derived_moments(t["events"], tax)
    codes = moments.candidate_moments(events, tax)["moment"].tolist()
    return moments.handled_contacts(events, codes)


def _derived(t, rules):
    return _total_order(engine.to_pandas(moments.with_derived_moments(t["events"], rules=rules)
                                         .select("event_id", "customer_id", "timestamp", "contact_reason")))


def _tiered(t):
    """Value tiers by net revenue to date (pandas, as notebook 05 builds them from the orders)."""
    historic = value.historic_value(engine.to_pandas(t["orders"]))
    return value.value_tiers(historic.rename(columns={"revenue": "value"}), tiers={"high": 0.5, "low": 0.5})


CASES = {
    # journey
    "overview": lambda t, tax: journey.overview(t["events"]),
    "stage_summary": lambda t, tax: journey.stage_summary(_events(t, tax), tax, by="segment", groups=SEGMENT_GROUPS),
    "with_episodes": lambda t, tax: _total_order(engine.to_pandas(
        journey.with_episodes(t["events"], 10).select("event_id", "customer_id", "episode"))),
    "episode_summary": lambda t, tax: journey.episode_summary(_events(t, tax), 10, by="segment"),
    "funnel": lambda t, tax: journey.funnel(_events(t, tax), STEPS),
    "funnel_by_segment": lambda t, tax: journey.funnel(_events(t, tax), STEPS, by="segment", groups=SEGMENT_GROUPS),
    "transitions": lambda t, tax: journey.transitions(t["events"]),
    "transitions_stages_episodes": lambda t, tax: journey.transitions(_events(t, tax), col_node="stage", gap_days=10),
    "transitions_by_segment": lambda t, tax: journey.transitions(_events(t, tax), by="segment"),
    "paths": lambda t, tax: journey.path_variants(_events(t, tax), col_node="stage", top=20),
    "paths_touchpoints_episodes": lambda t, tax: journey.path_variants(
        _events(t, tax), col_node="touchpoint", max_steps=3, gap_days=10, collapse_repeats=False, by="segment", top=20),
    "time_between_steps": lambda t, tax: journey.time_between_steps(_events(t, tax), PAIRS, by="segment", over_days=14),
    "conversion_rate": lambda t, tax: journey.conversion_rate(t["customers"], t["orders"], by="segment",
                                                              groups=SEGMENT_GROUPS, since="2023-01-01"),
    "repeat_customer_rate": lambda t, tax: journey.repeat_customer_rate(journey.attach(t["orders"], t["customers"]),
                                                                        by="segment", groups=SEGMENT_GROUPS),
    "order_intervals": lambda t, tax: journey.order_intervals(journey.attach(t["orders"], t["customers"]),
                                                              by="segment"),
    "repeat_vs_new_conversion": lambda t, tax: journey.repeat_vs_new_conversion(
        _events(t, tax), t["orders"], customers=t["customers"], steps=["quote", "consultation"], window_days=30,
        as_of=_period(t)[1], by="segment"),
    "lost_sales": lambda t, tax: journey.lost_sales(t["events"], t["orders"], steps=["quote", "consultation", "cart"]),
    "cancelled_orders": lambda t, tax: journey.cancelled_orders(t["orders"]),
    "cancellation_reasons": lambda t, tax: journey.cancellation_reasons(t["events"]),
    "campaign_response": lambda t, tax: journey.campaign_response(t["campaigns"], by="campaign_id"),
    "tenure_churn": lambda t, tax: journey.tenure_churn(t["customers"], band_days=30, by="segment"),
    "focus": lambda t, tax: journey.transitions(
        journey.apply_focus({**t, "events": _events(t, tax)}, "segment:private; journey:purchase,onboarding",
                            taxonomy=tax)["events"]),
    # moments of truth
    "candidate_moments": lambda t, tax: moments.candidate_moments(moments.with_derived_moments(t["events"], tax), tax),
    "with_derived_moments": lambda t, tax: _total_order(engine.to_pandas(
        moments.with_derived_moments(t["events"], tax).select("event_id", "customer_id", "timestamp", "contact_reason"))),
    "derived_dated_and_missed": lambda t, tax: _derived(t, RULES),
    "comparable_responses": lambda t, tax: moments.comparable_responses(
        moments.with_derived_moments(t["events"], tax), t["feedback"], COMPARABLE, window_days=30),
    "handled_contacts": lambda t, tax: _total_order(engine.to_pandas(_handled(t, tax))),
    "response_exposures": lambda t, tax: moments.response_exposures(_handled(t, tax), t["feedback"], window_days=30),
    "churn_cells": lambda t, tax: moments.churn_cells(_handled(t, tax), t["customers"], start=_period(t)[0],
                                                      end=_period(t)[1], churn_window_days=30),
    "handling_churn": lambda t, tax: moments.handling_churn(_handled(t, tax), t["customers"], start=_period(t)[0],
                                                            end=_period(t)[1], churn_window_days=30, min_n=1),
    "complaints_after_waits": lambda t, tax: moments.complaints_after_waits(t["events"], followup_days=14),
    "complaint_rates": lambda t, tax: moments.complaint_rates(t["events"], t["customers"], tax),
    "recent_moments": _recent,
    "survey_responses": lambda t, tax: moments.survey_responses(t["feedback"], t["customers"]),
    "survey_responses_without_csat_max": lambda t, tax: moments.survey_responses(     # processed by an older version
        t["feedback"].drop(schema.CSAT_MAX, schema.TOUCHPOINT), t["customers"]),
    "rows_for_customers": lambda t, tax: _total_order(moments.rows_for_customers(t["orders"], _recent(t, tax))),
    # customer value: contacts per value tier counted on the engine
    "exposure_by_tier": lambda t, tax: value.exposure_by_tier(
        _tiered(t), t["events"], reasons=tax.complaint_category_of_reason, window_days=365),
    "at_risk": lambda t, tax: value.at_risk(
        _tiered(t), t["events"], engine.to_pandas(t["feedback"]), high_tiers=["high"],
        negative_reasons=value.negative_moment_reasons(tax), window_days=90),
}


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def taxonomy():
    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


@pytest.fixture(scope="module")
def spark_con(spark_local):
    """A PySpark connection in local mode (the session's, see conftest)."""
    return spark_local


@pytest.fixture(scope="module")
def duck_con():
    return engine.connect("duckdb", threads=1)


@pytest.fixture(scope="module")
def hand_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("spark_hand") / "processed"
    catalog.write(hand_made(), folder)
    return folder


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, taxonomy) -> Path:
    """The demo company (3,000 customers, seed 11) as processed Parquet tables."""
    tmp = tmp_path_factory.mktemp("spark_demo")
    demo.write_exports(demo.generate(customers=3000, seed=11), tmp / "raw")
    staged = sources.map_sources(ROOT / "config" / "sources" / "demo.yml", tmp / "raw", taxonomy)
    cleaned = clean.clean_tables(staged.tables, taxonomy, b"spark-test-key")
    catalog.write({name: cleaned.tables[name] for name in TABLES}, tmp / "processed")
    return tmp / "processed"


def _both(duck_con, spark_con, folder: Path) -> dict[str, dict]:
    tables = {name: engine.read_tables(con, folder, TABLES) for name, con in (("duckdb", duck_con), ("pyspark", spark_con))}
    assert ibis.get_backend(tables["pyspark"]["events"]).name == "pyspark"
    assert ibis.get_backend(tables["duckdb"]["events"]).name == "duckdb"
    return tables


@pytest.fixture(scope="module")
def hand_tables(duck_con, spark_con, hand_dir):
    return _both(duck_con, spark_con, hand_dir)


@pytest.fixture(scope="module")
def demo_tables(duck_con, spark_con, demo_dir):
    return _both(duck_con, spark_con, demo_dir)


def assert_same(tables: dict[str, dict], case: str, taxonomy) -> pd.DataFrame:
    """Run `case` on both engines; the results must be equal (floats to 1e-12 relative)."""
    on_duckdb = CASES[case](tables["duckdb"], taxonomy)
    on_spark = CASES[case](tables["pyspark"], taxonomy)
    assert_frame_equal(on_spark, on_duckdb, check_exact=False, rtol=1e-12, atol=1e-12)
    return on_duckdb


# --- identical results ---------------------------------------------------------------------------

@pytest.mark.spark
@pytest.mark.parametrize("case", list(CASES))
def test_hand_made_log_gives_identical_results_on_spark(hand_tables, taxonomy, case):
    assert_same(hand_tables, case, taxonomy)


@pytest.mark.spark
@pytest.mark.parametrize("case", list(CASES))
def test_demo_log_gives_identical_results_on_spark(demo_tables, taxonomy, case):
    out = assert_same(demo_tables, case, taxonomy)
    assert len(out) > 0


@pytest.mark.spark
def test_hand_made_results_are_the_expected_ones_on_spark(hand_tables, taxonomy):
    """Spot checks on Spark itself: ties by event id, the empty segment, the derived moments, events
    without a customer id (counted, in no journey), time between orders, the customers at risk."""
    spark = hand_tables["pyspark"]
    overview = CASES["overview"](spark, taxonomy)
    assert overview[["events", "events_with_customer", "customers"]].iloc[0].tolist() == [22, 20, 4]
    funnel = CASES["funnel_by_segment"](spark, taxonomy)
    assert funnel.loc[funnel["segment"] == "wholesale", "customers"].tolist() == [0, 0, 0, 0]
    # private: A reaches every step; D's quote came before its web visit; C only visited
    assert funnel.loc[funnel["segment"] == "private", "customers"].tolist() == [3, 1, 1, 1]
    derived = CASES["with_derived_moments"](spark, taxonomy)
    assert sorted(derived.loc[derived["event_id"].str.contains("#"), "event_id"]) == [
        "a4#slow_provisioning", "a5#long_hotline_wait", "a7#long_hotline_wait", "b4#slow_provisioning",
        "d4#long_hotline_wait", "n1#long_hotline_wait"]            # a8 waited long but was outbound
    # dated at the order (first) or 14 days after it (deadline); a quote missed when no order came within
    # 1.5 days (B ordered a day later), dated at the end of the grace
    rules = CASES["derived_dated_and_missed"](spark, taxonomy).loc[lambda d: d["event_id"].str.contains("#")]
    assert dict(zip(rules["event_id"], rules["timestamp"])) == dict(zip(
        ["a2#quote_again_unanswered", "a2#quote_unanswered", "a4#slow_by_deadline", "a4#slow_from_order",
         "b4#slow_by_deadline", "b4#slow_from_order", "d1#quote_again_unanswered", "d1#quote_unanswered"],
        utc("2024-01-02 22:00", "2024-01-02 22:00", "2024-01-17 09:00", "2024-01-03 09:00",
            "2024-01-20 12:00", "2024-01-06 12:00", "2024-01-11 12:00", "2024-01-11 12:00")))
    # A: 3 Jan 09:00 -> 2 Mar -> 10 Mar (58.625 and 8 days); B: 6 Jan 12:00 -> 20 Feb; D's order was cancelled
    intervals = CASES["order_intervals"](spark, taxonomy).set_index("segment")
    assert intervals.loc["private", ["intervals", "days_median", "days_p90"]].tolist() == [2, 33.3125, 53.5625]
    assert intervals.loc["business", ["intervals", "days_median"]].tolist() == [1, 44.5]
    risk = CASES["at_risk"](spark, taxonomy)
    assert risk[["customer_id", "negative_contacts", "latest_nps", "trigger"]].values.tolist() == [
        ["A", 3, 3.0, "moment+detractor"]]


@pytest.mark.spark
def test_events_without_customer_ids_form_no_journeys_on_spark(duck_con, spark_con, tmp_path, taxonomy):
    """A complaint log that names no customers: its events are counted, journeys and value exposure
    raise schema.Missing saying why, and complaints are still counted per month (c-chart), as on DuckDB."""
    events = hand_made()["events"]
    catalog.write({"events": events.assign(customer_id=pd.Series([None] * len(events), dtype="str"))},
                            tmp_path)
    logs = {name: engine.read_table(con, tmp_path / "events.parquet", table="events")
            for name, con in (("duckdb", duck_con), ("pyspark", spark_con))}
    spark = logs["pyspark"]
    assert journey.overview(spark)[["events", "events_with_customer", "customers"]].iloc[0].tolist() == [22, 0, 0]
    with pytest.raises(schema.Missing, match="the 22 events carry no customer id"):
        journey.transitions(spark)
    with pytest.raises(schema.Missing, match="the 22 events carry no customer id"):
        journey.funnel(spark, STEPS)
    with pytest.raises(schema.Missing, match="do not name customers"):
        value.require_contacts(spark, list(taxonomy.complaint_category_of_reason))
    counts = {name: moments.complaint_counts(log, taxonomy) for name, log in logs.items()}
    assert_frame_equal(counts["pyspark"], counts["duckdb"])
    monthly = counts["pyspark"].groupby("month")["complaints"].sum().to_dict()
    assert monthly == {"2024-01": 1, "2024-02": 2, "2024-03": 1}


@pytest.mark.spark
def test_an_existing_spark_session_is_used_not_a_new_one(spark_con):
    """On a cluster notebook a SparkSession is already running: connect uses it (given or active)
    and applies `config` as runtime options."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    before = active.conf.get("spark.sql.shuffle.partitions")
    try:
        engine.connect("pyspark", spark={"config": {"spark.sql.shuffle.partitions": 3}})
        assert active.conf.get("spark.sql.shuffle.partitions") == "3"
        con = engine.connect("pyspark", session=active, config={"spark.sql.shuffle.partitions": 5})
        assert active.conf.get("spark.sql.shuffle.partitions") == "5"
        assert SparkSession.getActiveSession() is active
        assert int(con.sql("SELECT 1 AS one").execute()["one"].iloc[0]) == 1
    finally:
        active.conf.set("spark.sql.shuffle.partitions", before)


# --- engine=pyspark without its dependencies ---------------------------------------------------

def test_unknown_spark_setting_raises_before_starting_anything():
    with pytest.raises(engine.EngineError, match=r"unknown setting\(s\) \['mastr'\]"):
        engine.connect("pyspark", spark={"mastr": "local[2]"})


def test_duckdb_ignores_spark_settings():
    con = engine.connect("duckdb", spark={"master": "spark://head:7077"})
    assert con.name == "duckdb"


def test_missing_pyspark_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)        # import pyspark -> ImportError
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(engine.EngineError, match=r"pyspark package is not installed.*pip install \.\[spark\]"):
        engine.connect("pyspark")


def _fake_pyspark(monkeypatch) -> None:
    """pyspark importable, no active session, and no builder: reaching Spark itself would fail."""
    sql = types.ModuleType("pyspark.sql")
    sql.SparkSession = types.SimpleNamespace(getActiveSession=lambda: None)
    monkeypatch.setitem(sys.modules, "pyspark", types.ModuleType("pyspark"))
    monkeypatch.setitem(sys.modules, "pyspark.sql", sql)


def test_missing_java_says_what_to_install(monkeypatch):
    _fake_pyspark(monkeypatch)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    with pytest.raises(engine.EngineError, match=r"no Java runtime found.*default-jre-headless.*JAVA_HOME"):
        engine.connect("pyspark")


def test_java_home_without_java_is_named(monkeypatch, tmp_path):
    _fake_pyspark(monkeypatch)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(engine.EngineError, match=rf"JAVA_HOME={tmp_path} has no bin/java.*default-jre-headless"):
        engine.connect("pyspark")


def test_read_tables_takes_a_storage_uri(tmp_path, duck_con):
    """A folder given as a URI keeps its '//' (pathlib would fold it): file:// is read locally."""
    catalog.write({"events": hand_made()["events"]}, tmp_path / "processed")
    tables = engine.read_tables(duck_con, f"file://{tmp_path}/processed/", ["events"])
    assert int(tables["events"].count().execute()) == 22


# --- the engine setting reaches the event-log notebooks ---------------------------------------

def test_engine_setting_from_pipeline_yml_parameter_file_and_p(tmp_path):
    """`engine` defaults to duckdb (config/pipeline.yml); `-p engine=pyspark` and a parameter
    file's `spark` mapping reach every notebook whose work runs over all events, stage 01 included."""
    from cxlib import pipeline

    event_log_notebooks = {"01_validate_clean", "02_feedback", "03_journey", "04_moments_of_truth", "05_customer_value", "07_occasions"}
    plan = pipeline.plan_run(ROOT)
    assert {name for name, params in plan.parameters.items() if "engine" in params} == event_log_notebooks
    assert {plan.parameters[name]["engine"] for name in event_log_notebooks} == {"duckdb"}
    params_file = tmp_path / "cluster.yml"
    params_file.write_text("engine: pyspark\nspark:\n  master: spark://head:7077\n  config: {spark.executor.memory: 8g}\n",
                           encoding="utf-8")
    plan = pipeline.plan_run(ROOT, params_file=params_file, overrides=["03_journey.engine=duckdb"])
    assert plan.parameters["04_moments_of_truth"]["engine"] == "pyspark"
    assert plan.parameters["03_journey"]["engine"] == "duckdb"
    assert plan.parameters["03_journey"]["spark"] == {"master": "spark://head:7077",
                                                      "config": {"spark.executor.memory": "8g"}}
    plan = pipeline.plan_run(ROOT, overrides=["engine=pyspark"])
    assert {plan.parameters[name]["engine"] for name in event_log_notebooks} == {"pyspark"}
