"""The tables other journey computations start from, and the lifecycle at a glance: customer
attributes joined to events or orders, segments, stages from the taxonomy, episodes split by an
inactivity gap, the event log's overview, customers per stage and episodes per customer.

    events = journey.attach(journey.with_stages(tables["events"], taxonomy), tables["customers"])
    journey.stage_summary(events, taxonomy)
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis import _

from cxlib import engine
from cxlib.schema import CUSTOMER_ID, EVENT_ID, SEGMENT, STAGE, TIMESTAMP, TOUCHPOINT, Missing
from cxlib.journey.base import (
    EPISODE, JourneyError, SECONDS_PER_DAY, _agg, _by_values, _complete, _journeys, _keys, _optional, _customer_parts,
    _seconds, _tbl, _window, require_journeys,
)


def attach(table, customers, columns: Sequence[str] = (SEGMENT,), *, col_customer: str = CUSTOMER_ID) -> ir.Table:
    """`table` with customer attributes `columns` (e.g. segment) joined on `col_customer` (left join).

    An attribute the customers table lacks (e.g. customers derived from the events) comes out empty.
    """
    t = _tbl(table, "table", [col_customer])
    c = _tbl(customers, "customers", [col_customer])
    c = c.select(col_customer, *[c[col] if col in c.columns else ibis.null("string").name(col) for col in columns])
    clash = [col for col in columns if col in t.columns]
    t = t.drop(*clash) if clash else t
    return t.left_join(c, col_customer).select(*t.columns, *columns)


def segments(customers, *, col_segment: str = SEGMENT) -> list[str]:
    """The segments present among `customers` (sorted); raises `schema.Missing` when fewer than
    two, since a breakdown by segment would only repeat the whole."""
    c = _optional(_tbl(customers, "customers", []), "string", col_segment)
    present = sorted(engine.to_pandas(c.filter(c[col_segment].notnull()).select(col_segment).distinct())[col_segment])
    if len(present) < 2:
        found = f"one segment only ({present[0]})" if present else "no customer segments"
        raise Missing(found, enable=f"customers.{col_segment} with two or more segments")
    return present


def with_stages(events, taxonomy, *, col_touchpoint: str = TOUCHPOINT, col_stage: str = STAGE) -> ir.Table:
    """Events with `stage` filled from the taxonomy's touchpoint → stage where it is empty.

    In: touchpoint (and stage if present). Out: the same columns with stage complete
    (touchpoints unknown to the taxonomy keep an empty stage).
    """
    t = _tbl(events, "events", [col_touchpoint])
    from_taxonomy = t[col_touchpoint].substitute(taxonomy.stage_of_touchpoint, else_=ibis.null("string"))
    stage = t[col_stage].fill_null(from_taxonomy) if col_stage in t.columns else from_taxonomy
    return t.mutate(**{col_stage: stage})


def with_episodes(events, gap_days: float, *, col_customer: str = CUSTOMER_ID,
                  col_timestamp: str = TIMESTAMP, col_event_id: str = EVENT_ID) -> ir.Table:
    """Events with `episode` (1, 2, … per customer): a new episode starts when more than
    `gap_days` passed since the customer's previous event.

    Example: events on 1 Jan, 3 Jan and 20 Mar with gap_days=30 → episodes 1, 1, 2.
    """
    if gap_days is None or gap_days <= 0:
        raise JourneyError(f"with_episodes: gap_days must be a positive number of days, got {gap_days!r}")
    t = _tbl(events, "events", [col_customer, col_timestamp, col_event_id])
    t = t.mutate(_t=_seconds(t[col_timestamp]))
    gap = t._t - t._t.lag().over(_window([col_customer], col_timestamp, col_event_id))
    t = t.mutate(_new=ibis.ifelse(gap.isnull() | (gap > int(round(gap_days * SECONDS_PER_DAY))), 1, 0))
    running = _window([col_customer], col_timestamp, col_event_id, cumulative=True)
    return t.mutate(**{EPISODE: t._new.sum().over(running).cast("int64")}).drop("_t", "_new")


def overview(events, *, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP) -> pd.DataFrame:
    """The event log at a glance; never raises on an empty log.

    Out: one row with events, events_with_customer (those that belong to a journey),
    customers, first, last (UTC; empty for an empty log).
    """
    t = _tbl(events, "events", [col_customer, col_timestamp])
    out = engine.to_pandas(t.agg(events=t.count(), events_with_customer=t[col_customer].count(),
                                 customers=t[col_customer].nunique(),
                                 first=t[col_timestamp].min(), last=t[col_timestamp].max()))
    return out.loc[:, ["events", "events_with_customer", "customers", "first", "last"]]


def period(log: pd.DataFrame) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """(first, last) timestamp of the event log from `overview`; None for an empty log."""
    first, last = (log[col].iloc[0] if len(log) else pd.NaT for col in ("first", "last"))
    return (None if pd.isna(first) else first), (None if pd.isna(last) else last)


def stage_summary(events, taxonomy, *, by: str | None = None, groups: Iterable | None = None, lang: str = "en",
                  col_customer: str = CUSTOMER_ID, col_stage: str = STAGE) -> pd.DataFrame:
    """Customers and events per journey stage, in lifecycle order (events with a customer id).

    In: events with stage (see `with_stages`). Out: [by], stage, stage_label (in `lang`),
    stage_order, events, customers, share (customers in the stage / customers with any event).
    Raises `schema.Missing` without journeys or when no event has a stage of the taxonomy.
    """
    t = _by_values(_journeys(_tbl(events, "events", _keys(col_customer, col_stage, by)), col_customer), by)
    stages = taxonomy.codes("stages")
    per_stage = engine.to_pandas(
        t.filter(t[col_stage].isin(stages)).group_by(_keys(by, col_stage))
        .agg(events=_.count(), customers=_[col_customer].nunique())
    )
    totals = engine.to_pandas(_agg(t, by, total=t[col_customer].nunique()))
    if totals["total"].sum() == 0:
        require_journeys(events, col_customer=col_customer)
    if per_stage["customers"].sum() == 0:
        raise Missing("no event's touchpoint belongs to a journey stage of the taxonomy",
                      enable="events.stage, or the touchpoints' stages in the taxonomy")
    inner = pd.DataFrame({col_stage: pd.Series(stages, dtype="str")})
    out = _complete(per_stage, by, groups, inner, {"events": 0, "customers": 0})
    labels = {code: taxonomy.label("stages", code, lang) for code in stages}
    order = {code: index for index, code in enumerate(stages, start=1)}
    out = out.merge(totals, on=by, how="left") if by else out.assign(total=int(totals["total"].iloc[0]))
    total = out["total"].fillna(0)
    return (
        out.assign(
            stage_label=lambda d: d[col_stage].map(labels).astype("str"),
            stage_order=lambda d: d[col_stage].map(order).astype("int64"),
            share=lambda d: (d["customers"] / total.where(total > 0)).astype(float),
        )
        .sort_values(_keys(by, "stage_order"), kind="stable")
        .loc[:, _keys(by, col_stage, "stage_label", "stage_order", "events", "customers", "share")]
        .reset_index(drop=True)
    )


def episode_summary(events, gap_days: float, *, by: str | None = None, col_customer: str = CUSTOMER_ID,
                    col_timestamp: str = TIMESTAMP, col_event_id: str = EVENT_ID) -> pd.DataFrame:
    """Episodes of activity split by an inactivity gap of `gap_days` (see `with_episodes`).

    `by` is a customer attribute (one value per customer, e.g. segment, see `attach`). Out: [by],
    customers, episodes, episodes_per_customer, events_median (events per episode), days_median,
    days_p90 (episode length from first to last event). Raises `schema.Missing` without
    journeys (see `require_journeys`).

    One pass in event order marks the first event of each episode and each customer's last
    event; among those, the next one ends an episode: the event before a next first event, or
    the last event itself.
    """
    if gap_days is None or gap_days <= 0:
        raise JourneyError(f"episode_summary: gap_days must be a positive number of days, got {gap_days!r}")
    t = _by_values(_journeys(_tbl(events, "events", _keys(col_customer, col_timestamp, col_event_id, by)), col_customer), by)
    parts = _customer_parts(t, col_customer)
    per = engine.stacked(_part_episodes(part, gap_days, by, col_customer, col_timestamp, col_event_id) for part in parts)
    metrics = dict(customers=per[col_customer].nunique(), episodes=per.count(),
                   events_median=per._n.quantile(0.5).cast("float64"), days_median=per._d.quantile(0.5).cast("float64"),
                   days_p90=per._d.quantile(0.9).cast("float64"))
    # In parts, the episodes are stored and each metric is its own query: DuckDB holds a
    # quantile's values in memory (8 bytes per episode), and three at once would not fit.
    queries = [metrics] if len(parts) == 1 else [{name: metric} for name, metric in metrics.items()]
    found = [engine.to_pandas(_agg(per, by, **query)) for query in queries]
    out = functools.reduce(lambda left, right: left.merge(right, on=by) if by else left.join(right), found)
    if out["customers"].sum() == 0:
        require_journeys(events, col_customer=col_customer)
    return (
        out.assign(episodes_per_customer=lambda d: d["episodes"] / d["customers"].where(d["customers"] > 0))
        .loc[:, _keys(by, "customers", "episodes", "episodes_per_customer", "events_median", "days_median", "days_p90")]
        .sort_values(_keys(by) or ["customers"], kind="stable")
        .reset_index(drop=True)
    )


def _part_episodes(t: ir.Table, gap_days: float, by: str | None, col_customer: str, col_timestamp: str,
                   col_event_id: str) -> ir.Table:
    """One row per episode of the journey events `t` of some customers: [by], customer,
    _n (events), _d (days from its first to its last event); see `episode_summary`."""
    t = t.mutate(_t=_seconds(t[col_timestamp]))
    w = _window([col_customer], col_timestamp, col_event_id)
    t = t.mutate(_prev=t._t.lag().over(w), _rn=ibis.row_number().over(w), _last=t._t.lead().over(w).isnull())
    t = t.mutate(_start=t._prev.isnull() | (t._t - t._prev > int(round(gap_days * SECONDS_PER_DAY))))
    marks = t.filter(t._start | t._last)
    following = ibis.window(group_by=col_customer, order_by="_rn")
    marks = marks.mutate(_n_rn=marks._rn.lead().over(following), _n_t=marks._t.lead().over(following),
                         _n_prev=marks._prev.lead().over(following), _n_start=marks._start.lead().over(following))
    per = marks.filter(marks._start)
    end_rn = ibis.cases((per._n_rn.isnull(), per._rn), (per._n_start, per._n_rn - 1), else_=per._n_rn)
    end_t = ibis.cases((per._n_rn.isnull(), per._t), (per._n_start, per._n_prev), else_=per._n_t)
    return per.select(*_keys(by), col_customer, _n=(end_rn - per._rn + 1).cast("int64"),
                      _d=((end_t - per._t) / SECONDS_PER_DAY).cast("float64"))
