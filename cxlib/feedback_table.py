"""The feedback table made ready for the KPIs: customer attributes joined, the channel of the
contact a transactional answer is about, and the analyst's filters (`metrics.add_period` adds
the period of each answer).

    answers = feedback_table.with_customers(answers, customers, columns=["segment"])
    answers = feedback_table.filter_feedback(answers, {"segment": "business"}, start="2024-01-01")
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cxlib.metrics import MetricsError, _require
from cxlib.schema import CHANNEL, CUSTOMER_ID, TIMESTAMP, TOUCHPOINT


def with_customers(feedback: pd.DataFrame, customers: pd.DataFrame, *, columns: Sequence[str] | None = None,
                   col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """Feedback with customer attributes (segment, region, ...) joined by customer id (left join;
    responses without a known customer keep NA). `columns` = customer columns to add (default all);
    columns the feedback already has are not duplicated.
    """
    _require(feedback, [col_customer])
    _require(customers, [col_customer], "customers")
    wanted = [c for c in (columns if columns is not None else customers.columns)
              if c != col_customer and c not in feedback.columns]
    _require(customers, wanted, "customers")
    dupes = customers[col_customer].duplicated(keep=False)
    if dupes.any():
        raise MetricsError(f"customers.{col_customer}: ids not unique, first: {customers.loc[dupes, col_customer].head(3).tolist()}")
    return feedback.merge(customers[[col_customer, *wanted]], on=col_customer, how="left", validate="many_to_one")


def with_contact_channel(feedback: pd.DataFrame, events: pd.DataFrame, *, within_days: float = 30,
                         col_customer: str = CUSTOMER_ID, col_time: str = TIMESTAMP,
                         col_touchpoint: str = TOUCHPOINT, col_channel: str = CHANNEL) -> pd.DataFrame:
    """Feedback plus `channel`: for a transactional answer (touchpoint given), the channel of the
    customer's latest event at that touchpoint in the `within_days` before the answer; NA for
    relationship answers and when no such event exists. So KPIs can be cut by channel.

    In: feedback (customer_id, timestamp, touchpoint), events (customer_id, timestamp,
    touchpoint, channel). Out: feedback with `channel`, rows and order unchanged.
    """
    _require(feedback, [col_customer, col_time, col_touchpoint])
    _require(events, [col_customer, col_time, col_touchpoint, col_channel], "events")
    if within_days <= 0:
        raise MetricsError(f"within_days must be positive, got {within_days}")
    keys = [col_customer, col_touchpoint]
    answers = (feedback[[col_customer, col_time, col_touchpoint]]
               .assign(_pos=np.arange(len(feedback)), _t=lambda d: pd.to_datetime(d[col_time], utc=True))
               .dropna(subset=[col_customer, col_touchpoint, "_t"]))
    contacts = (events.loc[events[col_touchpoint].isin(answers[col_touchpoint].unique()), [*keys, col_time, col_channel]]
                .assign(_t=lambda d: pd.to_datetime(d[col_time], utc=True))
                .dropna(subset=[col_customer, "_t"])
                .drop(columns=col_time))
    matched = pd.merge_asof(answers.sort_values("_t", kind="stable"), contacts.sort_values("_t", kind="stable"),
                            on="_t", by=keys, direction="backward",
                            tolerance=pd.Timedelta(days=within_days), allow_exact_matches=True)
    channel = matched.set_index("_pos")[col_channel].reindex(np.arange(len(feedback))).astype("str")
    return feedback.assign(**{col_channel: channel.to_numpy()})


def filter_feedback(df: pd.DataFrame, filters: dict | None = None, *, start: str = "", end: str = "",
                    col_time: str = TIMESTAMP) -> pd.DataFrame:
    """Rows matching every filter: `filters` maps column -> value or list of values ('' / None / []
    = no filter); `start` / `end` are inclusive dates ('2024-01-01'; '' = open) on the UTC timestamp.

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
    return df.loc[mask.fillna(False).astype(bool)]
