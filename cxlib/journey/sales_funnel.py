"""The sales funnel: customers reaching each step in order, conversion from the first and from
the previous step with Wilson intervals, drop-off and days since the first step.

    journey.funnel(events, ["web_visit|tariff_page", "quote", "order", "activation"], by="segment")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _

from cxlib import engine
from cxlib.schema import CUSTOMER_ID, EVENT_ID, TIMESTAMP, TOUCHPOINT, Missing
from cxlib.journey.base import (
    JourneyError, SECONDS_PER_DAY, _agg, _by_values, _codes, _complete, _journeys, _keys, _label, _rate_columns,
    _seconds, _tbl, _window, require_journeys,
)


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
