"""The sales KPIs, each defined once: conversion rate (leads who became customers / leads),
repeat-customer rate (customers with >= 2 orders / customers with >= 1), campaign response rate
(responded / sent), time between orders, and sales opportunities (quotes, carts) that convert
or are lost, for new and repeat customers.

    journey.conversion_rate(tables["customers"], tables["orders"], since=start)
    journey.repeat_customer_rate(tables["orders"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis import _

from cxlib import engine
from cxlib.schema import (
    CUSTOMER_ID, EVENT_ID, LEAD_DATE, ORDER_ID, RESPONDED_AT, SENT_AT, SIGNUP_DATE, STATUS, TIMESTAMP, TOUCHPOINT,
    Missing,
)
from cxlib.journey.base import (
    CUSTOMER_TYPES, DEFAULT_EXCLUDED_STATUSES, NEW, REPEAT, SECONDS_PER_DAY, _agg, _by_values, _codes, _count,
    _group_rate, _journeys, _keys, _optional, _require_orders, _seconds, _tbl, _valid_orders, _window,
    require_journeys,
)


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
    days_median, days_p90, days_mean; groups without a second order are left out. Nobody
    ordering twice is a result (without `by`: one row, intervals 0, times NaN); no order raises
    `schema.Missing`.

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
    out = out.astype({"intervals": "int64", "customers": "int64"})
    return ((out[out["intervals"] > 0] if by else out).sort_values(_keys(by) or ["intervals"], kind="stable")
            .loc[:, _keys(by, "intervals", "customers", "days_median", "days_p90", "days_mean")].reset_index(drop=True))


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
        customer_type=ibis.ifelse(flags._rep.fill_null(0) == 1, REPEAT, NEW),
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
    out = _group_rate(opp, _keys(by, "customer_type"), {"customer_type": list(CUSTOMER_TYPES)}, opp._conv,
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
