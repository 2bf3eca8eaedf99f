"""Customer journeys from the event log: stages, episodes, funnel, transitions, paths, timing,
conversion, repeat customers, campaign response, lost sales, tenure and churn.

Every computation over all events is an Ibis expression executed on the backend the input
tables live on (DuckDB by default, PySpark unchanged; see `cxlib.engine`); only aggregated
results come back as pandas DataFrames. Inputs are Ibis tables with the canonical columns of
`cxlib.schema` (a pandas DataFrame is accepted too and runs in memory on DuckDB).

Order of events within a customer: timestamp, then event_id (a deterministic tiebreak for
events with the same timestamp). Durations are whole seconds (timestamps truncated to the
second) reported in days. Rates carry Wilson score intervals. A journey is the events of one
customer: events without a customer id belong to no journey and are left out of journeys.

A computation the data cannot support (no events, events without customer ids, no step of the
funnel, no orders, no leads, no churn dates, …) raises `schema.Missing` naming what is missing
and which canonical table or column would enable it. The checks look at the aggregated result,
or count on the engine when it is empty; events are never loaded into pandas for them.

    events = journey.with_stages(tables["events"], taxonomy)
    journey.funnel(events, ["web_visit", "quote", "order", "activation"], by="segment")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _

from cxlib import engine
from cxlib.metrics import wilson_interval
from cxlib.schema import (
    CATEGORY, CHURN_DATE, CONTACT_REASON, CUSTOMER_ID, EVENT_ID, LEAD_DATE, ORDER_ID, ORDER_STATUSES, PRODUCT,
    RESPONDED_AT, SEGMENT, SENT_AT, SIGNUP_DATE, STAGE, STATUS, TEXT, TIMESTAMP, TOUCHPOINT, Missing,
)

SECONDS_PER_DAY = 86_400
UNKNOWN = "unknown"
EPISODE = "episode"
SEQ = "seq"
PATH_SEP = " > "
ELLIPSIS = "…"
_COMPLETED, CANCELLED, _PENDING = ORDER_STATUSES      # order status codes (schema)
DEFAULT_EXCLUDED_STATUSES = (CANCELLED,)
CANCEL_STEP = "order_cancelled"                           # touchpoint of an order cancellation (taxonomy)
# what would enable a section that lacks its input (the `enable` of schema.Missing)
NEEDS_EVENTS = "the events table: event_id, customer_id, timestamp, touchpoint"
NEEDS_CUSTOMER = "events.customer_id, the customer or case id of each event"
NEEDS_ORDERS = "the orders table: order_id, customer_id, timestamp"
FOCUS_KEYS = ("product", "segment", "journey")


class JourneyError(ValueError):
    """Input tables or parameters of a journey computation are unusable."""


# --- helpers ------------------------------------------------------------------------------

def _tbl(data, name: str, columns: Iterable[str]) -> ir.Table:
    expr = engine.table(data)
    missing = [c for c in columns if c not in expr.columns]
    if missing:
        raise JourneyError(f"{name}: missing column(s) {missing}; present: {list(expr.columns)}")
    return expr


def _journeys(t: ir.Table, col_customer: str) -> ir.Table:
    """The events that belong to a journey: those with a customer id."""
    return t.filter(t[col_customer].notnull())


def _count(t: ir.Table, **metrics) -> dict:
    """Scalar aggregates of `t` computed on the engine, as a dict of Python ints."""
    row = engine.to_pandas(t.agg(**metrics)).iloc[0]
    return {name: int(0 if pd.isna(value) else value) for name, value in row.items()}


def require_journeys(events, *, col_customer: str = CUSTOMER_ID) -> None:
    """Raise `schema.Missing` when `events` form no journey: no events, or none with a customer id.

    A count on the engine; functions call it when their result is empty, to say why.
    """
    t = _tbl(events, "events", [col_customer])
    n = _count(t, events=t.count(), with_customer=t[col_customer].count())
    if n["events"] == 0:
        raise Missing("no events", enable=NEEDS_EVENTS)
    if n["with_customer"] == 0:
        raise Missing(f"the {n['events']:,} events carry no customer id, so they form no journeys", enable=NEEDS_CUSTOMER)


def _require_orders(orders, exclude_statuses, col_customer: str, col_status: str) -> ir.Table:
    """The valid orders (see `_valid_orders`); raises `schema.Missing` when there are none."""
    o = _valid_orders(orders, exclude_statuses, col_customer, col_status)
    if _count(o, n=o.count())["n"] == 0:
        everything = _tbl(orders, "orders", [col_customer])
        total = _count(everything, n=everything.count())["n"]
        raise Missing("no orders" if total == 0 else f"all {total:,} orders are {' or '.join(exclude_statuses)}",
                      enable=NEEDS_ORDERS)
    return o


def _optional(t: ir.Table, dtype: str, *columns: str) -> ir.Table:
    """`t` with each absent column of `columns` added as all-null `dtype` (an absent optional
    column, e.g. in processed data of an older version, reads like an empty one)."""
    absent = [c for c in columns if c and c not in t.columns]
    return t.mutate(**{c: ibis.null(dtype) for c in absent}) if absent else t


def _seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since the epoch (truncated, so every backend agrees)."""
    return ts.truncate("s").epoch_seconds().cast("int64")


def _window(partition: Sequence[str], col_timestamp: str, col_event_id: str, *, cumulative: bool = False):
    """A window over each partition (column names) in event order: timestamp, then event_id."""
    make = ibis.cumulative_window if cumulative else ibis.window
    return make(group_by=list(partition), order_by=[col_timestamp, col_event_id])


def _keys(*cols: str | None) -> list[str]:
    return [c for c in cols if c]


def _rate_columns(frame: pd.DataFrame, successes: str, n: str, prefix: str = "",
                  confidence: float = 0.95) -> pd.DataFrame:
    """Add <prefix>rate, <prefix>ci_low, <prefix>ci_high (Wilson) for successes / n (NaN where n == 0).

    The bounds are clipped to enclose the rate (a Wilson bound of 0 of n can come out a hair
    above zero in floating point).
    """
    low, high = wilson_interval(frame[successes].to_numpy(), frame[n].to_numpy(), confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(frame[n] > 0, frame[successes] / frame[n].where(frame[n] > 0), np.nan)
    low, high = np.fmin(low, rate), np.fmax(high, rate)
    return frame.assign(**{f"{prefix}rate": rate.astype(float), f"{prefix}ci_low": low, f"{prefix}ci_high": high})


def _complete(frame: pd.DataFrame, by: str | None, groups: Iterable | None, inner: pd.DataFrame,
              fill: Mapping[str, object]) -> pd.DataFrame:
    """Every combination of group (present or listed in `groups`) and the rows of `inner`, with
    missing aggregates filled by `fill` (so an empty segment shows zeros instead of vanishing)."""
    if by is None:
        full = inner
    else:
        present = frame[by].dropna().unique().tolist() if len(frame) else []
        wanted = list(groups) if groups is not None else []
        values = wanted + sorted(v for v in present if v not in wanted)
        full = pd.DataFrame({by: pd.Series(values, dtype=frame[by].dtype if len(frame) else "str")}).merge(inner, how="cross")
    keys = list(full.columns)
    out = full.merge(frame, on=keys, how="left")
    return out.assign(**{col: out[col].astype(float) if isinstance(value, float)
                         else out[col].fillna(value).astype("int64") for col, value in fill.items()})


def _codes(step) -> list[str]:
    """A funnel step as its codes: 'web_visit|shop_visit' or ['web_visit', 'shop_visit'] → both."""
    codes = step.split("|") if isinstance(step, str) else list(step)
    codes = [str(c).strip() for c in codes if str(c).strip()]
    if not codes:
        raise JourneyError(f"empty step {step!r}: name at least one code")
    return codes


def _label(step) -> str:
    return "|".join(_codes(step))


def step_label(step, taxonomy, section: str = "touchpoints", lang: str = "en") -> str:
    """A readable label of a step from the taxonomy: 'web_visit|tariff_page' -> 'Web visit or Tariff page'."""
    return " or ".join(taxonomy.label(section, code, lang) for code in _codes(step))


def _agg(t: ir.Table, by: str | None, **metrics) -> ir.Table:
    """Aggregate `t` per group of `by`, or over all rows when `by` is None."""
    return t.group_by(by).agg(**metrics) if by else t.agg(**metrics)


def _by_values(t: ir.Table, by: str | None) -> ir.Table:
    """Null group values become 'unknown' so they are counted, not dropped."""
    return t if by is None else t.mutate(**{by: t[by].cast("string").fill_null(UNKNOWN)})


# --- tables that other computations start from -----------------------------------------------

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


def sequence(events, *, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
             col_event_id: str = EVENT_ID) -> ir.Table:
    """Events with `seq`, the 1-based position of each event in its customer's history
    (ordered by timestamp, then event_id)."""
    t = _tbl(events, "events", [col_customer, col_timestamp, col_event_id])
    w = _window([col_customer], col_timestamp, col_event_id)
    return t.mutate(**{SEQ: (ibis.row_number().over(w) + 1).cast("int64")})


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


# --- stages and episodes ------------------------------------------------------------------

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
    """Episodes of activity split by an inactivity gap of `gap_days`.

    Out: [by], customers, episodes, episodes_per_customer, events_median (events per episode),
    days_median, days_p90 (episode length from first to last event). Raises `schema.Missing`
    without journeys (see `require_journeys`).
    """
    t = _journeys(_tbl(events, "events", _keys(col_customer, col_timestamp, col_event_id, by)), col_customer)
    t = with_episodes(_by_values(t, by), gap_days, col_customer=col_customer, col_timestamp=col_timestamp,
                      col_event_id=col_event_id)
    t = t.mutate(_t=_seconds(t[col_timestamp]))
    per = t.group_by(_keys(by, col_customer, EPISODE)).agg(_n=_.count(), _d=(_._t.max() - _._t.min()) / SECONDS_PER_DAY)
    out = engine.to_pandas(_agg(
        per, by, customers=per[col_customer].nunique(), episodes=per.count(),
        events_median=per._n.quantile(0.5).cast("float64"), days_median=per._d.quantile(0.5).cast("float64"),
        days_p90=per._d.quantile(0.9).cast("float64"),
    ))
    if out["customers"].sum() == 0:
        require_journeys(events, col_customer=col_customer)
    return (
        out.assign(episodes_per_customer=lambda d: d["episodes"] / d["customers"].where(d["customers"] > 0))
        .loc[:, _keys(by, "customers", "episodes", "episodes_per_customer", "events_median", "days_median", "days_p90")]
        .sort_values(_keys(by) or ["customers"], kind="stable")
        .reset_index(drop=True)
    )


# --- funnel -------------------------------------------------------------------------------

def reach(events, steps: Sequence, *, by: str | None = None, col_step: str = TOUCHPOINT,
          col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
          col_event_id: str = EVENT_ID) -> list[ir.Table]:
    """Per funnel step, the customers who reached it in order (an Ibis table per step).

    A customer reaches step k at their first step-k event after the event at which they
    reached step k-1 (order: timestamp, then event_id). A step is a code or alternatives
    ('web_visit|shop_visit', or a list of codes). Each table has customer, [by],
    `_t0` (seconds at step 1), `_s` (position of the reaching event) and `_t` (its seconds).
    """
    steps = [_codes(step) for step in steps]
    if not steps:
        raise JourneyError("funnel: steps is empty; give at least one step, e.g. ['quote', 'order']")
    t = _journeys(_tbl(events, "events", _keys(col_customer, col_timestamp, col_event_id, col_step, by)), col_customer)
    t = _by_values(t, by)
    t = t.filter(t[col_step].isin(sorted({code for codes in steps for code in codes})))
    w = _window([col_customer], col_timestamp, col_event_id)
    t = t.mutate(_seq=ibis.row_number().over(w), _sec=_seconds(t[col_timestamp]))
    keys = _keys(col_customer, by)
    first = t.filter(t[col_step].isin(steps[0])).group_by(keys).agg(_s=_._seq.min(), _t=_._sec.min())
    levels = [first.mutate(_t0=first._t)]
    for step in steps[1:]:
        prev = levels[-1]
        cand = t.filter(t[col_step].isin(step)).select(_c=t[col_customer], _seq=t._seq, _sec=t._sec)
        joined = prev.join(cand, prev[col_customer] == cand._c).filter(lambda j: j._seq > j._s)
        levels.append(joined.group_by([*keys, "_t0"]).agg(_s=_._seq.min(), _t=_._sec.min()))
    return levels


def funnel(events, steps: Sequence, *, by: str | None = None, groups: Iterable | None = None,
           col_step: str = TOUCHPOINT, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
           col_event_id: str = EVENT_ID, confidence: float = 0.95) -> pd.DataFrame:
    """Funnel over `steps` (codes of `col_step` in order; 'a|b' = either), per group of `by`.

    Out: [by], step, step_index, customers (reached the step in order), conversion (from step 1)
    with ci_low/ci_high, step_conversion (from the previous step) with step_ci_low/step_ci_high,
    drop_off (customers lost since the previous step), days_median and days_p90 (time from
    step 1 to this step). `by` must be constant per customer (e.g. segment, see `attach`);
    `groups` lists group values to show even when empty. Raises `schema.Missing` when nobody
    reaches the first step (no journeys, or no event of its codes).
    """
    levels = reach(events, steps, by=by, col_step=col_step, col_customer=col_customer,
                   col_timestamp=col_timestamp, col_event_id=col_event_id)
    parts = []
    for index, level in enumerate(levels, start=1):
        days = (level._t - level._t0) / SECONDS_PER_DAY
        metrics = dict(customers=level.count(), days_median=days.quantile(0.5).cast("float64"),
                       days_p90=days.quantile(0.9).cast("float64"))
        parts.append(_agg(level, by, **metrics).mutate(step_index=ibis.literal(index, "int64")))
    raw = engine.to_pandas(ibis.union(*parts)) if parts else pd.DataFrame()
    inner = pd.DataFrame({"step": pd.Series([_label(s) for s in steps], dtype="str"),
                          "step_index": np.arange(1, len(steps) + 1)})
    raw = raw[raw["customers"] > 0] if len(raw) else raw
    if raw.empty or not (raw["step_index"] == 1).any():
        require_journeys(events, col_customer=col_customer)
        first = " or ".join(_codes(steps[0]))
        raise Missing(f"no customer has an event of the funnel's first step ({first})",
                      enable=f"events.{col_step} {first}, or the parameter funnel_steps set to touchpoints the events hold")
    out = _complete(raw, by, groups, inner.loc[:, ["step_index"]], {"customers": 0, "days_median": np.nan, "days_p90": np.nan})
    out = out.merge(inner, on="step_index").sort_values(_keys(by, "step_index"), kind="stable").reset_index(drop=True)
    grouped = out.groupby(by, sort=False)["customers"] if by else out["customers"]
    start = grouped.transform("first") if by else pd.Series(out["customers"].iloc[0], index=out.index)
    previous = (grouped.shift(1) if by else out["customers"].shift(1)).fillna(out["customers"]).astype("int64")
    out = out.assign(_start=start.astype("int64"), _previous=previous)
    out = _rate_columns(out, "customers", "_start", confidence=confidence).rename(columns={"rate": "conversion"})
    out = _rate_columns(out, "customers", "_previous", prefix="step_", confidence=confidence).rename(columns={"step_rate": "step_conversion"})
    return (
        out.assign(drop_off=lambda d: (d["_previous"] - d["customers"]).astype("int64"))
        .loc[:, _keys(by, "step", "step_index", "customers", "conversion", "ci_low", "ci_high", "step_conversion",
                      "step_ci_low", "step_ci_high", "drop_off", "days_median", "days_p90")]
    )


# --- transitions and paths ----------------------------------------------------------------

def transition_counts(events, *, col_node: str = TOUCHPOINT, gap_days: float | None = None,
                      by: str | None = None, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                      col_event_id: str = EVENT_ID) -> ir.Table:
    """Directly-follows counts as an Ibis expression: from_step, to_step, [by], transitions.

    A transition is a pair of consecutive events of one customer (within one episode when
    `gap_days` is given), ordered by timestamp then event_id. Empty nodes count as 'unknown';
    events without a customer id are left out.
    """
    t = _journeys(_tbl(events, "events", _keys(col_customer, col_timestamp, col_event_id, col_node, by)), col_customer)
    t = _by_values(t, by)
    partition = [col_customer]
    if gap_days is not None:
        t = with_episodes(t, gap_days, col_customer=col_customer, col_timestamp=col_timestamp, col_event_id=col_event_id)
        partition = [col_customer, EPISODE]
    node = t[col_node].fill_null(UNKNOWN)
    w = _window(partition, col_timestamp, col_event_id)
    pairs = t.select(*_keys(by), from_step=node, to_step=node.lead().over(w))
    return pairs.filter(pairs.to_step.notnull()).group_by(["from_step", "to_step", *_keys(by)]).agg(transitions=_.count())


def transitions(events, *, col_node: str = TOUCHPOINT, gap_days: float | None = None, by: str | None = None,
                col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                col_event_id: str = EVENT_ID) -> pd.DataFrame:
    """Transitions between consecutive steps with counts and probabilities.

    Out: [by], from_step, to_step, transitions, probability (share of the transitions leaving
    from_step that go to to_step), sorted by transitions (descending), from_step, to_step.
    Raises `schema.Missing` when there is none (no journeys, or one event per customer).
    """
    counts = engine.to_pandas(transition_counts(events, col_node=col_node, gap_days=gap_days, by=by,
                                                col_customer=col_customer, col_timestamp=col_timestamp,
                                                col_event_id=col_event_id))
    if counts.empty:
        require_journeys(events, col_customer=col_customer)
        within = " within an episode" if gap_days is not None else ""
        raise Missing(f"no customer has two events{within}, so there are no transitions",
                      enable="events of the same customer at several touchpoints")
    keys = _keys(by, "from_step")
    return (
        counts.assign(probability=lambda d: d["transitions"] / d.groupby(keys)["transitions"].transform("sum"))
        .sort_values([*_keys(by), "transitions", "from_step", "to_step"], ascending=[*([True] if by else []), False, True, True],
                     kind="stable")
        .loc[:, [*_keys(by), "from_step", "to_step", "transitions", "probability"]]
        .reset_index(drop=True)
    )


def path_variants(events, *, col_node: str = STAGE, max_steps: int = 8, collapse_repeats: bool = True,
                  gap_days: float | None = None, top: int = 10, by: str | None = None,
                  col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                  col_event_id: str = EVENT_ID) -> pd.DataFrame:
    """The most frequent journeys as paths of `col_node` values ('awareness > consideration > …').

    One journey per customer (or per episode when `gap_days` is given); consecutive repeats
    are collapsed when `collapse_repeats`; paths longer than `max_steps` are cut and end in '…'.
    Out: [by], rank, path, steps, journeys, coverage (share of journeys), cumulative_coverage,
    variants (distinct paths in the group); the `top` paths per group. Raises `schema.Missing`
    without journeys.
    """
    if max_steps < 1 or top < 1:
        raise JourneyError(f"path_variants: max_steps and top must be ≥ 1, got {max_steps}, {top}")
    t = _journeys(_tbl(events, "events", _keys(col_customer, col_timestamp, col_event_id, col_node, by)), col_customer)
    t = _by_values(t, by)
    unit = [col_customer]
    if gap_days is not None:
        t = with_episodes(t, gap_days, col_customer=col_customer, col_timestamp=col_timestamp, col_event_id=col_event_id)
        unit = [col_customer, EPISODE]
    t = t.mutate(_node=t[col_node].fill_null(UNKNOWN))
    if collapse_repeats:
        w = _window(unit, col_timestamp, col_event_id)
        t = t.mutate(_prev=t._node.lag().over(w))
        t = t.filter(t._prev.isnull() | (t._prev != t._node))
    w = _window(unit, col_timestamp, col_event_id)
    t = t.mutate(_pos=ibis.row_number().over(w))
    nodes = {f"_p{k}": t._node.max(where=t._pos == k) for k in range(max_steps)}
    per = t.group_by([*unit, *_keys(by)]).agg(_n=_.count(), **nodes)
    path = per._p0
    for k in range(1, max_steps):
        path = path + ibis.ifelse(per[f"_p{k}"].isnull(), "", PATH_SEP + per[f"_p{k}"])
    path = path + ibis.ifelse(per._n > max_steps, PATH_SEP + ELLIPSIS, "")
    per = per.select(*_keys(by), path=path, steps=ibis.least(per._n, max_steps).cast("int64"))
    variants = per.group_by([*_keys(by), "path", "steps"]).agg(journeys=_.count())
    group = ibis.window(group_by=_keys(by))
    ranked = ibis.window(group_by=_keys(by), order_by=[ibis.desc("journeys"), "path"])
    variants = variants.mutate(
        rank=(ibis.row_number().over(ranked) + 1).cast("int64"),
        _total=variants.journeys.sum().over(group).cast("int64"),
        variants=variants.journeys.count().over(group).cast("int64"),
    )
    out = engine.to_pandas(variants.filter(variants["rank"] <= top))
    if out.empty:
        require_journeys(events, col_customer=col_customer)
    return (
        out.sort_values([*_keys(by), "rank"], kind="stable")
        .assign(coverage=lambda d: d["journeys"] / d["_total"],
                cumulative_coverage=lambda d: (d.groupby(by)["journeys"].cumsum() if by else d["journeys"].cumsum()) / d["_total"])
        .loc[:, [*_keys(by), "rank", "path", "steps", "journeys", "coverage", "cumulative_coverage", "variants"]]
        .reset_index(drop=True)
    )


def time_between_steps(events, pairs: Sequence[tuple], *, by: str | None = None, over_days: float | None = None,
                       col_step: str = TOUCHPOINT, col_customer: str = CUSTOMER_ID,
                       col_timestamp: str = TIMESTAMP, col_event_id: str = EVENT_ID) -> pd.DataFrame:
    """Time from one step to the next, e.g. order → activation.

    Each `from` event is paired with the first `to` event that follows it before the next
    `from` event of the same customer ('a|b' = either code). Out: [by], from_step, to_step,
    pairs, customers, days_median, days_p90, days_mean and, with `over_days`, share_over (share
    of pairs taking longer than `over_days`, e.g. 14 for slow provisioning). One row per pair
    and group; zero pairs give NaN times. Raises `schema.Missing` when no pair occurs at all.
    """
    pairs = [(_label(a), _label(b)) for a, b in pairs]
    if not pairs:
        raise JourneyError("time_between_steps: pairs is empty; give e.g. [('order', 'activation')]")
    t = _journeys(_tbl(events, "events", _keys(col_customer, col_timestamp, col_event_id, col_step, by)), col_customer)
    t = _by_values(t, by)
    parts = []
    for source, target in pairs:
        sub = t.filter(t[col_step].isin(sorted({*_codes(source), *_codes(target)})))
        w = _window([col_customer], col_timestamp, col_event_id)
        sub = sub.mutate(_sec=_seconds(sub[col_timestamp]), _next=sub[col_step].lead().over(w),
                         _next_sec=_seconds(sub[col_timestamp]).lead().over(w))
        hit = sub.filter(sub[col_step].isin(_codes(source)) & sub._next.isin(_codes(target)))
        days = (hit._next_sec - hit._sec) / SECONDS_PER_DAY
        metrics = dict(pairs=hit.count(), customers=hit[col_customer].nunique(),
                       days_median=days.quantile(0.5).cast("float64"), days_p90=days.quantile(0.9).cast("float64"),
                       days_mean=days.mean().cast("float64"),
                       share_over=(ibis.ifelse(days > over_days, 1, 0).cast("float64").mean() if over_days is not None
                                   else ibis.null("float64")).cast("float64"))
        parts.append(_agg(hit, by, **metrics).mutate(from_step=ibis.literal(source, "string"), to_step=ibis.literal(target, "string")))
    raw = engine.to_pandas(ibis.union(*parts))
    raw = raw[raw["pairs"] > 0]
    if raw.empty:
        require_journeys(events, col_customer=col_customer)
        named = "; ".join(f"{a} → {b}" for a, b in pairs)
        raise Missing(f"no customer has a step followed by the next of a timed pair ({named})",
                      enable=f"events.{col_step} of those steps, or the parameter step_pairs set to touchpoints the events hold")
    inner = pd.DataFrame({"from_step": pd.Series([s for s, _t in pairs], dtype="str"),
                          "to_step": pd.Series([e for _s, e in pairs], dtype="str")}).drop_duplicates()
    out = _complete(raw, by, None, inner, {"pairs": 0, "customers": 0, "days_median": np.nan,
                                           "days_p90": np.nan, "days_mean": np.nan, "share_over": np.nan})
    return out.loc[:, [*_keys(by), "from_step", "to_step", "pairs", "customers", "days_median", "days_p90",
                       "days_mean", *(["share_over"] if over_days is not None else [])]].reset_index(drop=True)


# --- conversion, repeat customers, campaigns, lost sales ------------------------------------

def _valid_orders(orders, exclude_statuses, col_customer, col_status, required=()) -> ir.Table:
    """Orders whose status is not in `exclude_statuses` (orders without a status count)."""
    o = _tbl(orders, "orders", [col_customer, *required])
    if col_status in o.columns and exclude_statuses:
        o = o.filter(o[col_status].isnull() | ~o[col_status].isin(list(exclude_statuses)))
    return o


def _group_rate(t: ir.Table, keys: Sequence[str] | str | None, levels: Mapping[str, Iterable] | None,
                successes: ir.Value, n_name: str, k_name: str, confidence: float) -> pd.DataFrame:
    """Counts and a Wilson rate per group of `keys`; every combination of the values present
    (and of those listed per key in `levels`) gets a row, empty ones with zero counts."""
    keys = [keys] if isinstance(keys, str) else list(keys or [])
    metrics = {n_name: t.count(), k_name: successes.sum().cast("int64")}
    raw = engine.to_pandas(t.group_by(keys).agg(**metrics) if keys else t.agg(**metrics))
    raw = raw.assign(**{k_name: raw[k_name].fillna(0).astype("int64")})
    if keys:
        levels = dict(levels or {})
        full = pd.DataFrame(index=[0])
        for key in keys:
            listed = list(levels.get(key, []))
            values = listed + sorted(v for v in raw[key].dropna().unique() if v not in listed)
            full = full.merge(pd.DataFrame({key: pd.Series(values, dtype="str")}), how="cross")
        raw = full.merge(raw, on=keys, how="left").sort_values(keys, kind="stable")
        raw = raw.assign(**{c: raw[c].fillna(0).astype("int64") for c in (n_name, k_name)})
    return _rate_columns(raw, k_name, n_name, confidence=confidence).reset_index(drop=True)


def conversion_rate(customers, orders=None, *, by: str | None = None, groups: Iterable | None = None,
                    since=None, exclude_statuses: Sequence[str] = DEFAULT_EXCLUDED_STATUSES, col_customer: str = CUSTOMER_ID,
                    col_lead_date: str = LEAD_DATE, col_signup_date: str = SIGNUP_DATE,
                    col_status: str = STATUS, confidence: float = 0.95) -> pd.DataFrame:
    """Leads who became customers / leads.

    A lead is a customers row with a lead_date; it converted if it has a signup_date or an
    order (whose status is not in `exclude_statuses`). With `since`, only leads whose lead_date
    is on or after it (e.g. the start of the data, so that customers won long ago do not count).
    Out: [by], leads, converted, rate, ci_low, ci_high. No conversion is a result (rate 0);
    no lead raises `schema.Missing`.
    """
    c = _optional(_tbl(customers, "customers", _keys(col_customer, by)), "timestamp", col_lead_date, col_signup_date)
    c = _by_values(c, by)
    leads = c.filter(c[col_lead_date].notnull())
    if _count(leads, n=leads.count())["n"] == 0:
        raise Missing("no leads: no customer has a lead date", enable=f"customers.{col_lead_date}")
    if since is not None:
        leads = leads.filter(_seconds(leads[col_lead_date]) >= int(pd.Timestamp(since).timestamp()))
        if _count(leads, n=leads.count())["n"] == 0:
            raise Missing(f"no lead dates on or after {pd.Timestamp(since):%Y-%m-%d}, the start of the event log",
                          enable=f"customers.{col_lead_date} within the period of the events")
    if orders is not None:
        o = _valid_orders(orders, exclude_statuses, col_customer, col_status)
        buyers = o.select(_c=o[col_customer]).distinct().mutate(_ordered=ibis.literal(1))
        leads = leads.left_join(buyers, leads[col_customer] == buyers._c)
        converted = leads[col_signup_date].notnull() | leads._ordered.notnull()
    else:
        converted = leads[col_signup_date].notnull()
    leads = leads.mutate(_conv=ibis.ifelse(converted, 1, 0))
    return _group_rate(leads, by, {by: groups or []}, leads._conv, "leads", "converted", confidence)


def repeat_customer_rate(orders, *, by: str | None = None, groups: Iterable | None = None,
                         exclude_statuses: Sequence[str] = DEFAULT_EXCLUDED_STATUSES,
                         col_customer: str = CUSTOMER_ID, col_status: str = STATUS,
                         confidence: float = 0.95) -> pd.DataFrame:
    """Customers with ≥ 2 orders / customers with ≥ 1 order (orders not in `exclude_statuses`).

    Out: [by], buyers, repeat_buyers, rate, ci_low, ci_high. Raises `schema.Missing` without orders.
    """
    o = _valid_orders(orders, exclude_statuses, col_customer, col_status)
    o = _by_values(_tbl(o, "orders", _keys(col_customer, by)), by)
    per = o.group_by(_keys(col_customer, by)).agg(_n=_.count())
    per = per.mutate(_rep=ibis.ifelse(per._n >= 2, 1, 0))
    out = _group_rate(per, by, {by: groups or []}, per._rep, "buyers", "repeat_buyers", confidence)
    if out["buyers"].sum() == 0:
        _require_orders(orders, exclude_statuses, col_customer, col_status)
    return out


def order_intervals(orders, *, by: str | None = None, exclude_statuses: Sequence[str] = DEFAULT_EXCLUDED_STATUSES,
                    col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP, col_order_id: str = ORDER_ID,
                    col_status: str = STATUS) -> pd.DataFrame:
    """Time between consecutive orders of a customer (orders not in `exclude_statuses`).

    Out: [by], intervals (pairs of consecutive orders), customers (with ≥ 2 orders),
    days_median, days_p90, days_mean. Raises `schema.Missing` without orders, or when no
    customer ordered twice.

        orders of A on 1 Jan, 11 Jan, 31 Jan -> intervals 2, days_median 15
    """
    o = _by_values(_tbl(_valid_orders(orders, exclude_statuses, col_customer, col_status, [col_timestamp, col_order_id]),
                        "orders", _keys(col_customer, by)), by)
    w = _window([col_customer], col_timestamp, col_order_id)
    o = o.mutate(_sec=_seconds(o[col_timestamp]))
    o = o.mutate(_gap=(o._sec - o._sec.lag().over(w)) / SECONDS_PER_DAY)
    gaps = o.filter(o._gap.notnull())
    out = engine.to_pandas(_agg(gaps, by, intervals=gaps.count(), customers=gaps[col_customer].nunique(),
                                days_median=gaps._gap.quantile(0.5).cast("float64"),
                                days_p90=gaps._gap.quantile(0.9).cast("float64"),
                                days_mean=gaps._gap.mean().cast("float64")))
    if out["intervals"].sum() == 0:
        _require_orders(orders, exclude_statuses, col_customer, col_status)
        raise Missing("no customer ordered more than once", enable="orders of the same customer on several dates")
    return (out[out["intervals"] > 0].sort_values(_keys(by) or ["intervals"], kind="stable")
            .loc[:, _keys(by, "intervals", "customers", "days_median", "days_p90", "days_mean")].reset_index(drop=True))


def opportunities(events, orders, *, customers=None, steps: Sequence[str] = ("quote", "cart"),
                  window_days: float = 30, as_of=None, exclude_statuses: Sequence[str] = DEFAULT_EXCLUDED_STATUSES,
                  col_step: str = TOUCHPOINT, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                  col_event_id: str = EVENT_ID, col_status: str = STATUS,
                  col_signup_date: str = SIGNUP_DATE) -> ir.Table:
    """Sales opportunities (events whose step is in `steps`, e.g. quotes and carts) as an Ibis
    table: the events' columns plus `converted` (an order, not in `exclude_statuses`, within
    `window_days` at or after it) and `customer_type`: 'repeat' when the person was already a
    customer (an earlier order, or a signup_date before it when `customers` is given), else 'new'.
    With `as_of` (the end of the data), only opportunities whose window has passed by then count.
    Events without a customer id are no opportunity (nobody to convert).
    """
    e = _journeys(_tbl(events, "events", [col_customer, col_timestamp, col_event_id, col_step]), col_customer)
    window = int(round(window_days * SECONDS_PER_DAY))
    opp = e.filter(e[col_step].isin([c for s in steps for c in _codes(s)]))
    if as_of is not None:
        opp = opp.filter(_seconds(opp[col_timestamp]) <= int(pd.Timestamp(as_of).timestamp()) - window)
    o = _valid_orders(orders, exclude_statuses, col_customer, col_status, [col_timestamp])
    o = o.select(_c=o[col_customer], _osec=_seconds(o[col_timestamp]))
    keys = opp.select(_e=opp[col_event_id], _k=opp[col_customer], _sec=_seconds(opp[col_timestamp]))
    j = keys.left_join(o, keys._k == o._c)
    flags = j.group_by(["_e", "_k", "_sec"]).agg(
        _conv=ibis.ifelse((j._osec >= j._sec) & (j._osec <= j._sec + window), 1, 0).max(),
        _rep=ibis.ifelse(j._osec < j._sec, 1, 0).max(),
    )
    if customers is not None:
        c = _optional(_tbl(customers, "customers", [col_customer]), "timestamp", col_signup_date)
        c = c.select(_c2=c[col_customer], _signup=_seconds(c[col_signup_date]))
        flags = flags.left_join(c, flags._k == c._c2)
        flags = flags.mutate(_rep=ibis.ifelse((flags._rep == 1) | (flags._signup <= flags._sec).fill_null(False), 1, 0))
    flags = flags.select(
        "_e", converted=flags._conv.fill_null(0) == 1,
        customer_type=ibis.ifelse(flags._rep.fill_null(0) == 1, "repeat", "new"),
    )
    return opp.join(flags, opp[col_event_id] == flags._e).drop("_e")


def repeat_vs_new_conversion(events, orders, *, customers=None, steps: Sequence[str] = ("quote", "cart"),
                             window_days: float = 30, as_of=None, exclude_statuses: Sequence[str] = DEFAULT_EXCLUDED_STATUSES,
                             by: str | None = None, col_step: str = TOUCHPOINT, confidence: float = 0.95,
                             **cols) -> pd.DataFrame:
    """Conversion of opportunities (quotes, carts) into an order within `window_days`, for
    existing customers ('repeat': ordered or signed up before) and 'new' ones (see `opportunities`).

    Out: [by], customer_type, opportunities, converted, rate, ci_low, ci_high. No conversion is
    a result (rate 0); no opportunity or no order raises `schema.Missing`.
    """
    opp = opportunities(events, orders, customers=customers, steps=steps, window_days=window_days, as_of=as_of,
                        exclude_statuses=exclude_statuses, col_step=col_step, **cols)
    opp = _by_values(opp, by)
    opp = opp.mutate(_conv=ibis.ifelse(opp.converted, 1, 0))
    out = _group_rate(opp, _keys(by, "customer_type"), {"customer_type": ["new", "repeat"]}, opp._conv,
                      "opportunities", "converted", confidence)
    _require_opportunities(out, events, orders, steps, window_days, as_of, exclude_statuses, col_step, **cols)
    return out


def _require_opportunities(out: pd.DataFrame, events, orders, steps, window_days, as_of, exclude_statuses,
                           col_step: str, col_customer: str = CUSTOMER_ID, col_status: str = STATUS, **_cols) -> None:
    """Raise `schema.Missing` when `out` (a rate table of opportunities) counts none, or there is no order."""
    if out["opportunities"].sum() == 0:
        require_journeys(events, col_customer=col_customer)
        codes = ", ".join(c for s in steps for c in _codes(s))
        ended = f" whose {window_days:g}-day window ended by {pd.Timestamp(as_of):%Y-%m-%d}" if as_of is not None else ""
        raise Missing(f"no sales opportunity ({codes}){ended}",
                      enable=f"events.{col_step} {codes}, or the parameter opportunity_steps set to touchpoints the events hold")
    _require_orders(orders, exclude_statuses, col_customer, col_status)


def lost_sales(events, orders, *, steps: Sequence[str] = ("quote", "cart"), window_days: float = 30,
               as_of=None, exclude_statuses: Sequence[str] = DEFAULT_EXCLUDED_STATUSES, col_step: str = TOUCHPOINT,
               confidence: float = 0.95, **cols) -> pd.DataFrame:
    """Quotes or carts without an order within `window_days`.

    Out: step (one row per step in `steps`), opportunities, lost, rate (lost share), ci_low, ci_high.
    No opportunity or no order raises `schema.Missing`.
    """
    opp = opportunities(events, orders, steps=steps, window_days=window_days, as_of=as_of,
                        exclude_statuses=exclude_statuses, col_step=col_step, **cols)
    opp = opp.mutate(step=opp[col_step], _lost=ibis.ifelse(opp.converted, 0, 1))
    out = _group_rate(opp, "step", {"step": [c for s in steps for c in _codes(s)]}, opp._lost, "opportunities", "lost",
                      confidence)
    _require_opportunities(out, events, orders, steps, window_days, as_of, exclude_statuses, col_step, **cols)
    return out


def cancelled_orders(orders, *, by: str | None = PRODUCT, cancelled_status: str = CANCELLED,
                     col_status: str = STATUS, confidence: float = 0.95) -> pd.DataFrame:
    """Cancelled orders per `by` (product; None for all orders).

    Out: [by], orders, cancelled, rate (cancelled share) with ci_low/ci_high, sorted by `by`.
    Raises `schema.Missing` without orders or when no order has a status.
    """
    o = _by_values(_optional(_tbl(orders, "orders", []), "string", col_status, by), by)
    o = o.mutate(_cancel=ibis.ifelse(o[col_status] == cancelled_status, 1, 0).fill_null(0))
    out = _group_rate(o, by, None, o._cancel, "orders", "cancelled", confidence)
    if out["orders"].sum() == 0:
        raise Missing("no orders", enable=NEEDS_ORDERS)
    if _count(o, n=o[col_status].count())["n"] == 0:
        raise Missing("the orders carry no status, so cancellations are unknown", enable=f"orders.{col_status}")
    return out


def cancellation_reasons(events, *, cancel_step: str = CANCEL_STEP,
                         reason_columns: Sequence[str] = (CONTACT_REASON, TEXT),
                         col_step: str = TOUCHPOINT) -> pd.DataFrame:
    """Order cancellations (events of `cancel_step`) by reason where known: the first
    non-empty of `reason_columns` present in the events ('unknown' otherwise).

    Out: reason, cancelled, share; most frequent first. Raises `schema.Missing` when there is
    no cancellation event.
    """
    e = _tbl(events, "events", [col_step])
    e = e.filter(e[col_step] == cancel_step)
    present = [c for c in reason_columns if c in e.columns]
    reason = ibis.coalesce(*[e[c].cast("string").nullif("") for c in present], ibis.literal(UNKNOWN)) if present \
        else ibis.literal(UNKNOWN)
    out = engine.to_pandas(e.mutate(reason=reason).group_by("reason").agg(cancelled=_.count()))
    if out.empty:
        raise Missing("no order cancellation events", enable=f"events.{col_step} {cancel_step}")
    return (
        out.assign(share=out["cancelled"] / out["cancelled"].sum())
        .sort_values(["cancelled", "reason"], ascending=[False, True], kind="stable")
        .loc[:, ["reason", "cancelled", "share"]]
        .reset_index(drop=True)
    )


def campaign_response(campaigns, *, by: str | None = None, col_sent: str = SENT_AT,
                      col_responded: str = RESPONDED_AT, confidence: float = 0.95) -> pd.DataFrame:
    """Campaign response rate = contacts with a response / contacts sent (per `by`, e.g. campaign_id).

    Out: [by], sent, responded, rate, ci_low, ci_high. Raises `schema.Missing` without campaign contacts.
    """
    c = _by_values(_optional(_tbl(campaigns, "campaigns", _keys(col_sent, by)), "timestamp", col_responded), by)
    c = c.mutate(_resp=ibis.ifelse(c[col_responded].notnull(), 1, 0))
    out = _group_rate(c, by, None, c._resp, "sent", "responded", confidence)
    if out["sent"].sum() == 0:
        raise Missing("no campaign contacts", enable="the campaigns table: campaign_id, customer_id, sent_at, responded_at")
    return out


def tenure_churn(customers, events=None, *, as_of=None, band_days: int = 90, by: str | None = None,
                 col_customer: str = CUSTOMER_ID, col_signup_date: str = SIGNUP_DATE,
                 col_churn_date: str = CHURN_DATE, col_timestamp: str = TIMESTAMP,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Churn over the lifecycle: a life table by tenure band of `band_days`.

    A customer's tenure starts at the signup_date (a row without one is a lead, not followed).
    When no customer has a signup date and `events` are given, it starts at the customer's
    first event instead. Customers who started on or before `as_of` (default: the latest
    start or churn date) are followed until churn or `as_of`. Out: [by], band,
    tenure_from_days, tenure_to_days, at_risk (customers who reached the band), churned
    (churned in the band), rate (churn rate in the band) with ci_low/ci_high, survival (share
    still active at its end); `attrs["customers"]` and `attrs["start_from_first_event"]` count
    the customers followed and those whose start is their first event (all or none). Raises `schema.Missing`
    when no customer has a start, or no customer has a churn date.
    """
    if band_days < 1:
        raise JourneyError(f"tenure_churn: band_days must be ≥ 1, got {band_days}")
    c = _optional(_tbl(customers, "customers", _keys(col_customer, by)), "timestamp", col_signup_date, col_churn_date)
    c = _by_values(c, by).mutate(_first=ibis.null("timestamp"))
    if events is not None and _count(c, n=c[col_signup_date].count())["n"] == 0:
        e = _journeys(_tbl(events, "events", [col_customer, col_timestamp]), col_customer)
        first = e.group_by(_k=e[col_customer]).agg(_f=e[col_timestamp].min())
        c = c.left_join(first, c[col_customer] == first._k).mutate(_first=lambda j: j._f).drop("_k", "_f")
    c = c.mutate(_start=_seconds(c[col_signup_date].fill_null(c._first)),
                 _from_event=ibis.ifelse(c[col_signup_date].isnull() & c._first.notnull(), 1, 0),
                 _churn=_seconds(c[col_churn_date]))
    c = c.filter(c._start.notnull())
    if as_of is None:
        as_of_sec = ibis.greatest(c._start.max(), c._churn.max().fill_null(0))
    else:
        as_of_sec = ibis.literal(int(pd.Timestamp(as_of).timestamp()), "int64")
    c = c.mutate(_asof=as_of_sec)
    c = c.filter(c._start <= c._asof)
    churned = c._churn.notnull() & (c._churn <= c._asof)
    end = ibis.ifelse(churned, c._churn, c._asof)
    c = c.mutate(_band=((end - c._start) / (band_days * SECONDS_PER_DAY)).floor().cast("int64"),
                 _churned=ibis.ifelse(churned, 1, 0))
    raw = engine.to_pandas(c.group_by(_keys(by, "_band")).agg(_ended=_.count(), churned=_._churned.sum().cast("int64"),
                                                                _from_event=_._from_event.sum().cast("int64")))
    if raw.empty:
        first_event = ", and no customer with an event to start from" if events is not None else ""
        raise Missing(f"no signup dates{first_event}", enable=f"customers.{col_signup_date}")
    if raw["churned"].sum() == 0:
        dated = _tbl(customers, "customers", [])
        if col_churn_date not in dated.columns or _count(dated, n=dated[col_churn_date].count())["n"] == 0:
            raise Missing("no churn dates", enable=f"customers.{col_churn_date}")
    bands = pd.DataFrame({"_band": np.arange(0, int(raw["_band"].max()) + 1)})
    full = _complete(raw, by, None, bands, {"_ended": 0, "churned": 0})
    full = full.sort_values(_keys(by, "_band"), ascending=[*([True] if by else []), False], kind="stable")
    at_risk = full.groupby(by)["_ended"].cumsum() if by else full["_ended"].cumsum()
    full = full.assign(at_risk=at_risk.astype("int64")).sort_values(_keys(by, "_band"), kind="stable")
    full = _rate_columns(full, "churned", "at_risk", confidence=confidence)
    keep = (1 - full["rate"].fillna(0))
    survival = keep.groupby(full[by]).cumprod() if by else keep.cumprod()
    out = (
        full.assign(band=full["_band"], tenure_from_days=full["_band"] * band_days,
                    tenure_to_days=(full["_band"] + 1) * band_days, survival=survival)
        .loc[:, [*_keys(by), "band", "tenure_from_days", "tenure_to_days", "at_risk", "churned", "rate",
                 "ci_low", "ci_high", "survival"]]
        .reset_index(drop=True)
    )
    out.attrs = {"customers": int(raw["_ended"].sum()), "start_from_first_event": int(raw["_from_event"].sum())}
    return out


def estimate(rates: pd.DataFrame, n: str, row: int = 0) -> dict:
    """One row of a rate table as {value, ci_low, ci_high, n} (the shape results.json uses)."""
    if rates.empty:
        return {"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    r = rates.iloc[row]
    return {"value": float(r["rate"]), "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]), "n": int(r[n])}


# --- focus: one business case ---------------------------------------------------------------

def parse_focus(focus: str | Mapping | None) -> dict[str, str]:
    """'product:broadband; segment:business' (or a dict) → {'product': 'broadband', 'segment': 'business'}.

    Keys: product (product or category of an order), segment, journey (a stage code or
    several separated by ','). '' or None → no focus.
    """
    if not focus:
        return {}
    if isinstance(focus, Mapping):
        items = {str(k).strip(): str(v).strip() for k, v in focus.items() if v not in (None, "")}
    else:
        parts = [p.strip() for p in str(focus).split(";") if p.strip()]
        bad = [p for p in parts if ":" not in p]
        if bad:
            raise JourneyError(f"focus: expected 'key:value' parts separated by ';', got {bad}")
        items = {k.strip(): v.strip() for k, v in (p.split(":", 1) for p in parts)}
    unknown = sorted(set(items) - set(FOCUS_KEYS))
    if unknown:
        raise JourneyError(f"focus: unknown key(s) {unknown}; use {', '.join(FOCUS_KEYS)}")
    return items


def apply_focus(tables: Mapping[str, object], focus: str | Mapping | None, *, taxonomy=None,
                col_customer: str = CUSTOMER_ID) -> dict[str, ir.Table]:
    """Restrict the tables (customers, events, orders, campaigns, …) to one business case.

    segment: customers of that segment. product: customers with an order of that product (or
    category), and only those orders. journey: only events of those stages (events need
    stage; with `taxonomy` the stage codes are checked), and only customers with such events.
    Every table with a customer column keeps only the focused customers. Returns a new dict
    of Ibis tables.
    """
    spec = parse_focus(focus)
    out = {name: engine.table(t) for name, t in tables.items()}
    if not spec:
        return out
    keep = None
    if "segment" in spec:
        c = _tbl(out.get("customers"), "customers", [col_customer, SEGMENT]) if "customers" in out else None
        if c is None:
            raise JourneyError("focus segment: needs the customers table")
        keep = c.filter(c[SEGMENT] == spec["segment"]).select(col_customer)
    if "product" in spec:
        if "orders" not in out:
            raise JourneyError("focus product: needs the orders table")
        o = _tbl(out["orders"], "orders", [col_customer, PRODUCT])
        match = o[PRODUCT] == spec["product"]
        if CATEGORY in o.columns:
            match = match | (o[CATEGORY] == spec["product"])
        out["orders"] = o.filter(match.fill_null(False))
        buyers = out["orders"].select(col_customer).distinct()
        keep = buyers if keep is None else keep.semi_join(buyers, col_customer)
    if keep is not None:
        out = {name: (t.semi_join(keep, col_customer) if col_customer in t.columns else t)
               for name, t in out.items()}
    if "journey" in spec:
        stages = [s.strip() for s in spec["journey"].split(",") if s.strip()]
        if taxonomy is not None:
            unknown = [s for s in stages if s not in taxonomy.codes("stages")]
            if unknown:
                raise JourneyError(f"focus journey: unknown stage(s) {unknown}; use {taxonomy.codes('stages')}")
        if "events" in out:
            e = _tbl(out["events"], "events", [STAGE, col_customer])
            out["events"] = e.filter(e[STAGE].isin(stages))
            travellers = out["events"].select(col_customer).distinct()
            out = {name: (t.semi_join(travellers, col_customer) if name != "events" and col_customer in t.columns else t)
                   for name, t in out.items()}
    return out
