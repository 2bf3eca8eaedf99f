"""The feedback table made ready for the KPIs: customer attributes joined, the channel of the
contact a transactional answer is about, and the analyst's filters (`metrics.add_period` adds
the period of each answer).

The answers stay in pandas (one row per answer); the customers and the event log, which grow
with the customer base, may be lazy engine tables (`catalog.tables`): the joins run on the
engine and only one row per answer comes back.

    lazy = catalog.tables("data/processed", ["customers", "events"], engine="duckdb")
    answers = feedback_table.with_customers(answers, lazy["customers"], columns=["segment"])
    answers = feedback_table.with_contact_channel(answers, lazy["events"], within_days=30)
    answers = feedback_table.filter_feedback(answers, {"segment": "business"}, start="2024-01-01")
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxlib import engine
from cxlib.metrics import MetricsError, _require
from cxlib.schema import CHANNEL, CUSTOMER_ID, TIMESTAMP, TOUCHPOINT

POS = "_pos"            # an answer's row position, carried through the engine and back
SINCE = "_since"        # the first moment of an answer's channel window


def with_customers(feedback: pd.DataFrame, customers: pd.DataFrame | ir.Table, *, columns: Sequence[str] | None = None,
                   col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """Feedback with customer attributes (segment, region, ...) joined by customer id (left join;
    responses without a known customer keep NA). `columns` = customer columns to add (default all);
    columns the feedback already has are not duplicated. `customers` is a DataFrame or an engine
    table: the join runs on the engine and brings back the answering customers' attributes only.
    Rows and order of `feedback` kept, index reset (as a merge). Raises MetricsError for missing
    columns and for customer ids that are not unique.
    """
    _require(feedback, [col_customer])
    table = engine.checked_table(customers, [col_customer], where="customers", error=MetricsError)
    wanted = [c for c in (columns if columns is not None else table.columns)
              if c != col_customer and c not in feedback.columns]
    engine.require_columns(table, wanted, where="customers", error=MetricsError)
    counted = table.group_by(col_customer).agg(_n=table.count())
    dupes = engine.to_pandas(counted.filter(counted._n > 1).order_by(col_customer).limit(3).select(col_customer))
    if len(dupes):
        raise MetricsError(f"customers.{col_customer}: ids not unique, first: {dupes[col_customer].tolist()}")
    answered = feedback.reset_index(drop=True)
    if not wanted:
        return answered
    ids = engine.table(pd.DataFrame({POS: answered.index, col_customer: _text(answered[col_customer])}).dropna())
    known = table.select(table[col_customer].cast("string").name(col_customer), *wanted)
    found = engine.to_pandas(ids.join(known, col_customer).select(POS, *wanted))
    attributes = found.astype(_nullable(known.select(wanted).schema())).set_index(POS).reindex(answered.index)
    return answered.assign(**{c: attributes[c] for c in wanted})


def with_contact_channel(feedback: pd.DataFrame, events: pd.DataFrame | ir.Table, *, within_days: float = 30,
                         col_customer: str = CUSTOMER_ID, col_time: str = TIMESTAMP,
                         col_touchpoint: str = TOUCHPOINT, col_channel: str = CHANNEL) -> pd.DataFrame:
    """Feedback plus `channel`: for a transactional answer (touchpoint given), the channel of the
    customer's latest event at that touchpoint in the `within_days` before the answer (an event at
    the answer's moment or exactly `within_days` before counts); NA for relationship answers and
    when no such event exists. So KPIs can be cut by channel. Several events at that latest
    moment: the last channel code in alphabetical order (row order is not seen on the engine).

    In: feedback (customer_id, timestamp, touchpoint), events (customer_id, timestamp,
    touchpoint, channel) as a DataFrame or an engine table: the search runs on the engine
    (`latest_contacts`) and brings back one channel per answer. Out: feedback with `channel`,
    rows, order and index unchanged.
    """
    _require(feedback, [col_customer, col_time, col_touchpoint])
    columns = [col_customer, col_time, col_touchpoint, col_channel]
    if isinstance(events, pd.DataFrame):
        _require(events, columns, "events")
        events = events[columns].assign(**{col_time: pd.to_datetime(events[col_time], utc=True)})
    contacts = engine.checked_table(events, columns, where="events", error=MetricsError)
    if within_days <= 0:
        raise MetricsError(f"within_days must be positive, got {within_days}")
    rows = np.arange(len(feedback))
    answers = (pd.DataFrame({POS: rows, col_customer: _text(feedback[col_customer]),
                             col_touchpoint: _text(feedback[col_touchpoint]),
                             col_time: pd.to_datetime(feedback[col_time], utc=True).astype("datetime64[us, UTC]")
                             .reset_index(drop=True)})
               .dropna()
               .assign(**{SINCE: lambda d: d[col_time] - pd.Timedelta(days=within_days)}))
    channel = pd.Series(np.nan, index=rows, dtype="str")
    if len(answers):
        latest = latest_contacts(answers, contacts, col_customer=col_customer, col_time=col_time,
                                 col_touchpoint=col_touchpoint, col_channel=col_channel)
        channel = engine.to_pandas(latest).set_index(POS)[col_channel].reindex(rows)
    return feedback.assign(**{col_channel: channel.astype("str").to_numpy()})


def latest_contacts(answers: pd.DataFrame, events: ir.Table, *, col_customer: str = CUSTOMER_ID,
                    col_time: str = TIMESTAMP, col_touchpoint: str = TOUCHPOINT,
                    col_channel: str = CHANNEL) -> ir.Table:
    """The channel of each answer's latest contact in its window, as an engine expression: an
    as-of join written as a range join and a window, so it runs unchanged on DuckDB and Spark.

    In: answers (_pos, customer_id, touchpoint, timestamp, _since: the window's first moment;
    no missing values) and events (customer_id, timestamp, touchpoint, channel). Out: one row
    per answer that has an event of its customer at its touchpoint with _since <= event time <=
    answer time: _pos, channel (of the latest such event; ties: the greatest channel code).
    """
    a = engine.table(answers)
    e = events.filter(events[col_customer].notnull() & events[col_time].notnull()
                      & events[col_touchpoint].isin(sorted(answers[col_touchpoint].unique())))
    e = e.select(_c=e[col_customer].cast("string"), _tp=e[col_touchpoint].cast("string"), _et=e[col_time],
                 _ch=e[col_channel].cast("string"))
    pairs = a.join(e, [a[col_customer] == e._c, a[col_touchpoint] == e._tp, e._et <= a[col_time], e._et >= a[SINCE]])
    pairs = pairs.mutate(_last=pairs._et.max().over(group_by=POS))
    latest = pairs.filter(pairs._et == pairs._last)
    return latest.group_by(POS).agg(**{col_channel: latest._ch.max()})


def _nullable(schema) -> dict[str, str]:
    """The canonical pandas dtypes that keep a missing value for the boolean and integer columns of
    `schema` ('boolean', 'Int64'), as the processed tables are read; a left join leaves gaps."""
    return {c: "boolean" if t.is_boolean() else "Int64" for c, t in schema.items() if t.is_boolean() or t.is_integer()}


def _text(values: pd.Series) -> pd.Series:
    """`values` as text (missing stays missing) on a fresh 0..n-1 index, for a key column sent to the engine."""
    return values.astype("str").reset_index(drop=True)


def filter_feedback(df: pd.DataFrame, filters: dict | None = None, *, start: str = "", end: str = "",
                    col_time: str = TIMESTAMP) -> pd.DataFrame:
    """Rows matching every filter: `filters` maps column -> value or list of values ('' / None / []
    = no filter); `start` / `end` are inclusive dates ('2024-01-01'; '' = open) on the UTC timestamp.
    `df` itself when every row matches.

        filter_feedback(fb, {"segment": "business", "survey": ""}, start="2024-01-01")
    """
    filters = {k: v for k, v in (filters or {}).items() if v not in ("", None, [], ())}
    _require(df, list(filters))
    mask = pd.Series(True, index=df.index)
    for col, value in filters.items():
        mask &= df[col].isin(list(value) if isinstance(value, (list, tuple, set)) else [value])
    if start or end:
        _require(df, [col_time])
        times = pd.to_datetime(df[col_time], utc=True)
        if start:
            mask &= times >= pd.Timestamp(start, tz="UTC")
        if end:
            mask &= times < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    keep = mask.fillna(False).astype(bool)
    return df if keep.all() else df.loc[keep]      # no copy of every answer when nothing is filtered out
