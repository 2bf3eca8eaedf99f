"""Value tiers and customer experience by tier: customers ranked by value and cut into tiers by
share, each tier's value, and a CX KPI (NPS, else CSAT, else CES) per tier.

- Value tiers: customers ranked by value (predicted CLV, or historic net revenue when the model
  is not supported), best first; `tiers` maps label -> share of customers. Ties go to the
  better tier.

    tiered = value_tiers(res.customers, tiers={"high": 0.2, "medium": 0.3, "low": 0.5})
    kpi_by_tier(feedback, tiered, min_n=30)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import metrics
from cxlib.schema import CUSTOMER_ID, NPS, REVENUE, TIMESTAMP, require
from cxlib.value.base import (
    ENABLE_ORDERS, TIER_KPIS, VALUE, VALUE_TIER, ValueInputError, end_day, in_window, require_columns, require_tiers,
)


def value_tiers(values: pd.DataFrame, *, tiers: Mapping[str, float], col_value: str = VALUE) -> pd.DataFrame:
    """Assign each customer a value tier by rank of `col_value` (best first).

    `tiers`: label -> share of customers, best tier first, shares summing to 1, e.g.
    {"high": 0.2, "medium": 0.3, "low": 0.5}. Ties get the better tier (minimum rank).
    Adds `value_tier` (ordered categorical, categories in the order of `tiers`).
    """
    require_columns(values, [col_value], "customer values")
    shares = np.array(list(tiers.values()), dtype="float64")
    if len(shares) == 0 or (shares <= 0).any() or not math.isclose(shares.sum(), 1.0, abs_tol=1e-9):
        raise ValueInputError(f"value tiers: shares must be positive and sum to 1, got {dict(tiers)}")
    n = len(values)
    position = values[col_value].rank(method="min", ascending=False) - 1   # customers better than this one
    bounds = np.round(np.cumsum(shares) * n, 9)
    index = np.minimum(np.searchsorted(bounds, position.to_numpy(), side="right"), len(shares) - 1)
    labels = list(tiers)
    return values.assign(**{VALUE_TIER: pd.Categorical.from_codes(index, categories=labels, ordered=True)
                            if n else pd.Categorical([], categories=labels, ordered=True)})


def tier_summary(tiered: pd.DataFrame, *, col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """Per value tier: customers, value (sum, mean, min, max), share of value, revenue to date.
    Out columns: value_tier, customers, value_total, value_share, value_mean, value_min, value_max,
    revenue (when the input has it)."""
    require_columns(tiered, [col_customer, VALUE_TIER, VALUE], "tiered customers")
    require(len(tiered), "no customer with a value tier (no purchases to value)", enable=ENABLE_ORDERS)
    extra = {REVENUE: (REVENUE, "sum")} if REVENUE in tiered.columns else {}
    return (
        tiered.groupby(VALUE_TIER, observed=False, sort=True)
        .agg(customers=(col_customer, "size"), value_total=(VALUE, "sum"), value_mean=(VALUE, "mean"),
             value_min=(VALUE, "min"), value_max=(VALUE, "max"), **extra)
        .reset_index()
        .assign(value_share=lambda d: d["value_total"] / d["value_total"].sum(),
                **{VALUE_TIER: lambda d: d[VALUE_TIER].astype(str)})
    )


def tier_kpi(feedback: pd.DataFrame, *, kpis: Sequence[str] = TIER_KPIS, col_customer: str = CUSTOMER_ID) -> str:
    """The first KPI of `kpis` that some answer with a customer id holds (NPS, else CSAT, else
    CES); schema.Missing when none does."""
    require(len(feedback), "no feedback", enable="feedback (response_id, customer_id, nps / csat / ces)")
    require(col_customer in feedback.columns and feedback[col_customer].notna().any(),
            "the feedback does not name customers, so answers cannot be linked to value", enable="feedback.customer_id")
    linked = feedback.loc[feedback[col_customer].notna()]
    found = [k for k in kpis if k in linked.columns and linked[k].notna().any()]
    require(found, "no NPS, CSAT or CES answer from a known customer", enable="feedback.nps, feedback.csat or feedback.ces")
    return found[0]


def kpi_by_tier(
    feedback: pd.DataFrame,
    tiered: pd.DataFrame,
    *,
    kpi: str | None = None,
    as_of=None,
    window_days: int | None = None,
    min_n: int = 30,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
) -> pd.DataFrame:
    """A CX KPI per value tier (metrics.kpi_by): answers of tiered customers up to `as_of` (within
    `window_days` when given; undated answers count when window_days is None). `kpi` None: the
    first of NPS, CSAT, CES the feedback holds (tier_kpi). Out: kpi, value_tier, n, value, ci_low,
    ci_high, small, ... in tier order; tiers without answers have n = 0. schema.Missing without
    tiers, feedback, customer ids or answers.
    """
    require_tiers(tiered, col_customer)
    kpi = kpi or tier_kpi(feedback, col_customer=col_customer)
    require_columns(feedback, [col_customer, kpi], "feedback")
    end = end_day(as_of, feedback, col_timestamp=col_timestamp)
    answered = (
        in_window(feedback, col_timestamp, end, window_days)
        .loc[lambda d: d[kpi].notna()]
        .merge(tiered[[col_customer, VALUE_TIER]].assign(**{VALUE_TIER: lambda d: d[VALUE_TIER].astype(str)}),
               on=col_customer, how="inner")
    )
    labels = list(tiered[VALUE_TIER].cat.categories)
    table = metrics.kpi_by(answered, [VALUE_TIER], kpi=kpi, min_n=min_n, col_score=kpi) if len(answered) \
        else pd.DataFrame({VALUE_TIER: pd.Series([], dtype="str"), "n": pd.Series([], dtype="int64")})
    return (
        pd.DataFrame({VALUE_TIER: labels})
        .merge(table, on=VALUE_TIER, how="left")
        .assign(n=lambda d: d["n"].fillna(0).astype("int64"), kpi=kpi)
        .pipe(lambda d: d[["kpi", *[c for c in d.columns if c != "kpi"]]])
    )


def require_tier_comparison(by_tier: pd.DataFrame) -> None:
    """schema.Missing when fewer than two tiers of a `kpi_by_tier` table have answers: one bar is no
    comparison (the table's numbers stay valid and may be recorded first)."""
    answered = by_tier.loc[by_tier["n"] > 0, VALUE_TIER].astype(str).tolist()
    kpi = metrics.LABELS.get(by_tier["kpi"].iloc[0], "KPI") if "kpi" in by_tier.columns and len(by_tier) else "KPI"
    require(len(answered) >= 2,
            (f"only the {answered[0]} tier has {kpi} answers" if answered else f"no tier has {kpi} answers")
            + ", so the tiers cannot be compared",
            enable="feedback.customer_id of customers in two or more value tiers")


def nps_by_tier(feedback: pd.DataFrame, tiered: pd.DataFrame, *, as_of=None, window_days: int | None = None,
                min_n: int = 30, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP) -> pd.DataFrame:
    """NPS per value tier: kpi_by_tier with kpi='nps' (without the kpi column)."""
    require_columns(feedback, [col_customer, col_timestamp, NPS], "feedback")
    return kpi_by_tier(feedback, tiered, kpi=NPS, as_of=as_of, window_days=window_days, min_n=min_n,
                       col_customer=col_customer, col_timestamp=col_timestamp).drop(columns="kpi")


def kpi_tier_record(table: pd.DataFrame) -> dict:
    """results.json entries of kpi_by_tier: kpi_by_tier rows, and nps_by_tier when the KPI is NPS."""
    cols = [VALUE_TIER, "n", "value", "ci_low", "ci_high", "small"]
    out = {"kpi_by_tier": table[["kpi", *cols]]}
    return {**out, "nps_by_tier": table[cols]} if table["kpi"].iloc[0] == NPS else out


