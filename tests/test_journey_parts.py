"""Per-customer windows in parts: journeys over more events than the engine's memory allows for
windows at once are computed by parts of whole customers, with the same results as in one pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from cxlib import config, engine, journey
from cxlib.journey import base

ROOT = Path(__file__).resolve().parents[1]
ROWS_PER_PART = 150


@pytest.fixture(scope="module")
def taxonomy():
    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


@pytest.fixture(scope="module")
def con():
    return engine.connect("duckdb", memory_limit="200MB", threads=2)


@pytest.fixture(scope="module")
def events(con, taxonomy):
    """700 events of 80 customers (some without an id), with ties in time, gaps of months and
    segments: a table on a DuckDB with a known memory limit."""
    rng = np.random.default_rng(11)
    n = 700
    touchpoints = ["web_visit", "quote", "order", "activation", "invoice", "service_contact", "complaint"]
    customers = np.array([f"K{i:03d}" for i in range(80)], dtype=object)
    frame = pd.DataFrame({
        "event_id": [f"e{i:04d}" for i in range(n)],
        "customer_id": pd.Series(rng.choice(customers, n), dtype="str").where(rng.random(n) > 0.03),
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 400, n) * 86_400 // 3, unit="s"),
        "touchpoint": rng.choice(touchpoints, n),
        "stage": pd.Series([None] * n, dtype="str"),
    })
    segments = pd.DataFrame({"customer_id": customers, "segment": rng.choice(["private", "business"], len(customers))})
    logged = journey.with_stages(engine.table(frame, con), taxonomy)
    return journey.attach(logged, engine.table(segments, con))


def journey_events(events) -> int:
    return int(engine.to_pandas(events.filter(events.customer_id.notnull()).count()).iloc[0, 0])


def _probe(con):
    return engine.table(pd.DataFrame({"x": [1]}), con)


def limit_window_rows(con, monkeypatch, rows: int) -> None:
    """Per-customer windows of at most `rows` events at a time on `con` (whatever its memory limit)."""
    monkeypatch.setattr(base, "WINDOW_ROWS_PER_GB", rows * 2**30 / engine.memory_limit(_probe(con)))


@pytest.fixture()
def parts_seen(monkeypatch):
    """The number of parts of each stacked computation."""
    seen = []
    stacked = engine.stacked

    def spy(exprs):
        exprs = list(exprs)
        seen.append(len(exprs))
        return stacked(exprs)

    monkeypatch.setattr(engine, "stacked", spy)
    return seen


COMPUTATIONS = {
    "paths": lambda ev: journey.path_variants(ev, col_node="stage", max_steps=4, top=50),
    "paths_by_episode_and_segment": lambda ev: journey.path_variants(ev, col_node="touchpoint", gap_days=20,
                                                                     by="segment", top=50, collapse_repeats=False),
    "transitions": lambda ev: pd.concat(journey.transitions_by_node(ev, ["touchpoint", "stage"], gap_days=30),
                                        keys=["touchpoint", "stage"]),
    "transitions_by_segment": lambda ev: journey.transitions(ev, by="segment"),
    "transition_counts": lambda ev: engine.to_pandas(journey.transition_counts(ev)).sort_values(
        ["from_step", "to_step"]).reset_index(drop=True),
    "episodes": lambda ev: journey.episode_summary(ev, 30, by="segment"),
    "episodes_overall": lambda ev: journey.episode_summary(ev, 12),
}


@pytest.mark.parametrize("name", COMPUTATIONS)
def test_journeys_in_parts_equal_one_pass(events, con, parts_seen, name, monkeypatch):
    limit_window_rows(con, monkeypatch, 10_000)
    whole = COMPUTATIONS[name](events)
    assert parts_seen == [1], "one part while the events fit"
    limit_window_rows(con, monkeypatch, ROWS_PER_PART)
    parts_seen.clear()
    split = COMPUTATIONS[name](events)
    assert parts_seen == [-(-journey_events(events) // ROWS_PER_PART)], parts_seen
    assert not whole.empty
    assert_frame_equal(split, whole)


def test_parts_hold_whole_customers_and_every_event_once(events, con, monkeypatch):
    limit_window_rows(con, monkeypatch, ROWS_PER_PART)
    journeys = events.filter(events.customer_id.notnull())
    parts = [engine.to_pandas(part.select("event_id", "customer_id")) for part in base._customer_parts(journeys, "customer_id")]
    assert len(parts) == -(-journey_events(events) // ROWS_PER_PART) == 5
    assert sorted(pd.concat(parts)["event_id"]) == sorted(engine.to_pandas(journeys.select("event_id"))["event_id"])
    owners = pd.concat([p.assign(part=i) for i, p in enumerate(parts)]).groupby("customer_id")["part"].nunique()
    assert owners.max() == 1
    assert all(len(p) > 0 for p in parts)


def test_no_parts_on_an_engine_without_a_memory_limit(events, monkeypatch):
    monkeypatch.setattr(engine, "memory_limit", lambda expr: None)       # e.g. Spark, which spills its windows
    monkeypatch.setattr(base, "WINDOW_ROWS_PER_GB", 1)
    assert base._customer_parts(events, "customer_id") == [events]
