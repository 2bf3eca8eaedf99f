"""The ground every value module stands on: codes, output column names, errors, the analysis
day and which orders are purchases.

- A *purchase* is a completed order with revenue > 0. Completed rows with revenue <= 0 are
  returns, credits or free items: they reduce (or leave) *net revenue* but are not purchases.
  Missing revenue counts as 0. Cancelled and pending orders are ignored.
- Time is counted in whole days (UTC). `as_of` is a date, inclusive: orders on that day count;
  by default it is the day of the latest order (`as_of_day`) or of any table (`analysis_day`).

    purchases(orders, as_of="2024-06-30")  -> completed orders with day, is_purchase, revenue
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cxlib import engine
from cxlib.schema import (
    CES,
    CSAT,
    CUSTOMER_ID,
    NPS,
    ORDER_STATUSES,
    REVENUE,
    STATUS,
    TIMESTAMP,
    Missing,
    require,
)

COMPLETED = ORDER_STATUSES[0]
DAYS_PER_MONTH = 365.25 / 12
DAY = pd.Timedelta(days=1)

# --- codes --------------------------------------------------------------------------------
LAPSED_SEGMENTS = ("at_risk", "cannot_lose")    # RFM segments (taxonomy rfm_segments) that bought often, not lately
BASIS_CLV = "predicted_clv"
BASIS_PLUS = "revenue_plus_predicted_clv"
BASIS_REVENUE = "historic_revenue"
ANY = "any"                                       # exposure group: a contact of any of the reasons
TRIGGERS = ("moment", "detractor", "moment+detractor")
TIER_KPIS = (NPS, CSAT, CES)                      # CX by value tier: the first of these the feedback holds
ENABLE_ORDERS = "the orders table: order_id, customer_id, timestamp, revenue"

# --- output columns ---------------------------------------------------------------------
ORDERS = "orders"                 # purchases (completed, revenue > 0)
FIRST_ORDER = "first_order"
LAST_ORDER = "last_order"
TENURE_DAYS = "tenure_days"
RECENCY_DAYS = "recency_days"
R_SCORE, F_SCORE, M_SCORE = "r_score", "f_score", "m_score"
RFM = "rfm"
RFM_SEGMENT = "rfm_segment"
# BTYD summary (names as pymc-marketing expects them)
FREQUENCY = "frequency"           # repeat purchase days
RECENCY = "recency"               # days between first and last purchase day
T = "T"                           # days between first purchase day and as_of
MONETARY = "monetary_value"       # mean revenue per repeat purchase day (0 without repeats)
# predictions
EXPECTED_PURCHASES = "expected_purchases"
P_ALIVE = "p_alive"
EXPECTED_SPEND = "expected_spend"
CLV = "clv"
CLV_LOW, CLV_HIGH = "clv_low", "clv_high"
VALUE = "value"
VALUE_BASIS = "value_basis"       # "predicted_clv" | "historic_revenue"
VALUE_TIER = "value_tier"

MODEL_NAME = "BG/NBD + Gamma-Gamma"
PARAM_RANGE = (1e-4, 1e6)         # a fitted parameter outside this range marks a degenerate fit
FIT_METHODS = ("map", "mcmc")


class ValueInputError(ValueError):
    """An input table lacks a column or has values the value analysis cannot use."""


class ModelUnsupported(ValueError):
    """The data cannot support the CLV model (e.g. too few repeat buyers); use historic value.
    `code` and `values` name the reason so the report can say it in either language."""

    def __init__(self, message: str, code: str = "", **values):
        super().__init__(message)
        self.code, self.values = code, values


# --- helpers ----------------------------------------------------------------------------
def require_columns(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    """ValueInputError naming `table` and the columns it lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueInputError(f"{table}: missing column(s) {missing}; columns present: {list(df.columns)}")


def utc_day(value) -> pd.Timestamp:
    """A date-like value as midnight UTC of its day."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("D")


def latest_timestamp(table, col_timestamp: str = TIMESTAMP):
    """The latest timestamp of a pandas or Ibis table (None without any)."""
    if isinstance(table, pd.DataFrame):
        if col_timestamp not in table.columns or not table[col_timestamp].notna().any():
            return None
        return table[col_timestamp].max()
    if col_timestamp not in table.columns:
        return None
    latest = engine.to_pandas(table[col_timestamp].max().name("latest"))["latest"].iloc[0]
    return None if pd.isna(latest) else latest


def as_of_day(orders: pd.DataFrame, as_of=None, *, col_timestamp: str = TIMESTAMP) -> pd.Timestamp | None:
    """`as_of` as midnight UTC of its day; None -> the day of the latest order (None without orders)."""
    if as_of is not None and not (isinstance(as_of, str) and as_of == ""):
        return utc_day(as_of)
    latest = latest_timestamp(orders, col_timestamp)
    return None if latest is None else utc_day(latest)


def analysis_day(as_of, *tables, col_timestamp: str = TIMESTAMP) -> pd.Timestamp | None:
    """The analysis date as midnight UTC: `as_of` when given (not None or ""), otherwise the
    latest day in any of `tables` (pandas or Ibis, e.g. orders, feedback, events: the end of the
    data); None when no table holds a timestamp.
        analysis_day("", orders, events, feedback) -> Timestamp('2025-12-31 00:00:00+0000', tz='UTC')
    """
    if as_of is not None and as_of != "":
        return utc_day(as_of)
    latest = [t for t in (latest_timestamp(table, col_timestamp) for table in tables) if t is not None]
    return utc_day(max(latest)) if latest else None


def whole_days(delta: pd.Series) -> pd.Series:
    """Time deltas in days (float64)."""
    return (delta / DAY).astype("float64")


def completed(orders: pd.DataFrame, *, col_status: str = STATUS) -> pd.Series:
    """Which orders count as completed: status 'completed'; every order when the status column is
    absent or holds no value at all (an export without statuses); a missing status otherwise is not."""
    if col_status not in orders.columns or not orders[col_status].notna().any():
        return pd.Series(True, index=orders.index)
    return orders[col_status].eq(COMPLETED).fillna(False).astype(bool)


def purchases(
    orders: pd.DataFrame,
    *,
    as_of=None,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_revenue: str = REVENUE,
    col_status: str = STATUS,
) -> pd.DataFrame:
    """Completed orders (see `completed`) up to and including the `as_of` day, with `is_purchase`
    (revenue > 0), `day` (UTC day) and `revenue` filled with 0 where missing. Input columns are kept."""
    require_columns(orders, [col_customer, col_timestamp, col_revenue], "orders")
    end = as_of_day(orders, as_of, col_timestamp=col_timestamp)
    until = (orders[col_timestamp] < end + DAY).fillna(False).astype(bool) if end is not None else False
    return (
        orders.loc[completed(orders, col_status=col_status) & until]
        .assign(
            day=lambda d: d[col_timestamp].dt.tz_convert("UTC").dt.floor("D"),
            is_purchase=lambda d: d[col_revenue].fillna(0.0) > 0,
            **{col_revenue: lambda d: d[col_revenue].fillna(0.0).astype("float64")},
        )
    )


def require_purchases(orders: pd.DataFrame, historic: pd.DataFrame, *, col_revenue: str = REVENUE) -> None:
    """Raise schema.Missing when the orders hold no purchase to value: no orders, no revenue at all,
    or no completed order with revenue > 0 (`historic`: historic_value output)."""
    require(len(orders), "no orders", enable=ENABLE_ORDERS)
    require(col_revenue in orders.columns and orders[col_revenue].notna().any(),
            "the orders carry no revenue, so there is no value to measure", enable="orders.revenue")
    require(len(historic) and (historic[ORDERS] > 0).any(),
            "no completed order with revenue above 0", enable="orders.revenue and orders.status (completed)")


def date_text(day, missing: str | None = "no dated rows") -> str | None:
    """A day as 'YYYY-MM-DD', or `missing` for None."""
    return missing if day is None or pd.isna(day) else utc_day(day).date().isoformat()


def in_window(df: pd.DataFrame, col_time: str, as_of: pd.Timestamp, window_days: int | None) -> pd.DataFrame:
    """Rows on days in (as_of - window_days, as_of] (all rows up to as_of when window_days is None).
    Rows without a timestamp are kept when window_days is None (they cannot be placed in a window)."""
    if col_time not in df.columns:
        return df if window_days is None else df.iloc[0:0]
    day = df[col_time].dt.tz_convert("UTC").dt.floor("D")
    start = as_of - pd.Timedelta(days=window_days) if window_days is not None else None
    mask = (day <= as_of) & ((day > start) if start is not None else True)
    undated = day.isna() if window_days is None else False
    return df.loc[(mask.fillna(False).astype(bool)) | undated]


def end_day(as_of, *tables, col_timestamp: str = TIMESTAMP) -> pd.Timestamp:
    """`analysis_day`, or today (UTC) when no table holds a timestamp."""
    end = analysis_day(as_of, *tables, col_timestamp=col_timestamp)
    return end if end is not None else pd.Timestamp.now(tz="UTC").floor("D")


def require_tiers(tiered: pd.DataFrame, col_customer: str = CUSTOMER_ID) -> None:
    """schema.Missing without tiered customers; ValueInputError without the tier column."""
    require_columns(tiered, [col_customer, VALUE_TIER], "tiered customers")
    require(len(tiered), "no customer with a value tier (no purchases to value)", enable=ENABLE_ORDERS)


def passes(check, *args, **kwargs) -> bool:
    """True when `check(*args, **kwargs)` passes, False when it raises schema.Missing."""
    try:
        check(*args, **kwargs)
    except Missing:
        return False
    return True

