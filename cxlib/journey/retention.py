"""What is lost after the sale: cancelled orders and their reasons, and churn over tenure (a
life table by tenure band).

    journey.cancelled_orders(tables["orders"])
    journey.tenure_churn(tables["customers"], events, band_days=180)
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import numpy as np
import pandas as pd
from ibis import _

from cxlib import engine
from cxlib.schema import (
    CHURN_DATE, CONTACT_REASON, CUSTOMER_ID, PRODUCT, SIGNUP_DATE, STATUS, TEXT, TIMESTAMP, TOUCHPOINT, Missing,
)
from cxlib.journey.base import (
    CANCELLED, CANCEL_STEP, JourneyError, NEEDS_ORDERS, SECONDS_PER_DAY, UNKNOWN, _by_values, _complete, _count,
    _group_rate, _journeys, _keys, _optional, _rate_columns, _seconds, _tbl,
)


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
