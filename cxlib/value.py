"""Customer value: historic value, RFM, predicted CLV (BG/NBD + Gamma-Gamma), value tiers and
customer experience by value tier.

Definitions (the notebook states them too)
- A *purchase* is a completed order with revenue > 0. Completed rows with revenue <= 0 are
  returns, credits or free items: they reduce (or leave) *net revenue* but are not purchases,
  so they count in no order count, recency or frequency. Missing revenue counts as 0.
  Cancelled and pending orders are ignored.
- Time is counted in whole days (UTC). `as_of` is a date, inclusive: orders on that day count;
  by default it is the day of the latest order. Tenure = days from the first purchase to
  `as_of`, recency = days from the last purchase to `as_of`.
- RFM scores 1..`bins` (default 5, quintiles): score = floor(bins * (rank - 1) / n) + 1 with
  `rank` the *minimum* rank among ties, so equal values always share a score and ties get
  the lowest score of their span (a score of 5 means better than at least 80% of customers).
  Recency: fewer days is better; frequency: purchases; monetary: net revenue.
- Predicted CLV = sum over the next `horizon_months` months of expected purchases (BG/NBD)
  times expected spend per purchase (Gamma-Gamma), discounted per month at the monthly rate
  equivalent to `annual_discount_rate`. Repeat purchases are counted per purchase day
  (several orders on one day are one purchase occasion with their revenue summed), as the
  BTYD literature does. A month is 365.25 / 12 days. CLV is gross of future returns.
- Model library: pymc-marketing's BetaGeoModel and GammaGammaModel (0.19.x, the last line for
  Python 3.11), chosen over `lifetimes` (archived, last release 2020) and an own MLE (no
  maintained model code, no posterior for intervals). Cost, measured on the 2-core dev machine:
  ~640 MB installed with PyMC/PyTensor, import ~11 s, a MAP fit of ~4,300 customers ~20 s the
  first time (PyTensor compile; the holdout refit and prediction ~16 s more), against ~3 s for
  the whole notebook when the model falls back. It is imported inside `fit_clv` after the
  data checks, so a fallback run never pays the import.
- Value tiers: customers ranked by value (predicted CLV, or historic net revenue when the
  model is not supported), best first; `tiers` maps label -> share of customers. Ties go to
  the better tier.

    hist = historic_value(orders)
    rfm = rfm_scores(hist).pipe(rfm_segments, rules=taxonomy.section("rfm_segments"))
    res = customer_value(orders, hist, horizon_months=12, annual_discount_rate=0.1)
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxlib import engine, locale, metrics
from cxlib.schema import (
    CATEGORY,
    CES,
    CONTACT_REASON,
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
BASIS_LABELS = {BASIS_CLV: "predicted CLV", BASIS_PLUS: "revenue to date + predicted CLV",
                BASIS_REVENUE: "net revenue to date"}
ANY = "any"                                       # exposure group: a contact of any of the reasons
TRIGGERS = ("moment", "detractor", "moment+detractor")
TRIGGER_WORDS = {"moment": "negative contact", "detractor": "detractor answer",
                 "moment+detractor": "both"}
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
    """The data cannot support the CLV model (e.g. too few repeat buyers); use historic value."""


# --- helpers ----------------------------------------------------------------------------
def _require(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueInputError(f"{table}: missing column(s) {missing}; columns present: {list(df.columns)}")


def _day(value) -> pd.Timestamp:
    """A date-like value as midnight UTC of its day."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("D")


def _latest(table, col_timestamp: str = TIMESTAMP):
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
        return _day(as_of)
    latest = _latest(orders, col_timestamp)
    return None if latest is None else _day(latest)


def analysis_day(as_of, *tables, col_timestamp: str = TIMESTAMP) -> pd.Timestamp | None:
    """The analysis date as midnight UTC: `as_of` when given (not None or ""), otherwise the
    latest day in any of `tables` (pandas or Ibis, e.g. orders, feedback, events: the end of the
    data); None when no table holds a timestamp.
        analysis_day("", orders, events, feedback) -> Timestamp('2025-12-31 00:00:00+0000', tz='UTC')
    """
    if as_of is not None and as_of != "":
        return _day(as_of)
    latest = [t for t in (_latest(table, col_timestamp) for table in tables) if t is not None]
    return _day(max(latest)) if latest else None


def _days(delta: pd.Series) -> pd.Series:
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
    _require(orders, [col_customer, col_timestamp, col_revenue], "orders")
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


# --- historic value and RFM -------------------------------------------------------------
def historic_value(
    orders: pd.DataFrame,
    *,
    as_of=None,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_revenue: str = REVENUE,
    col_status: str = STATUS,
) -> pd.DataFrame:
    """Historic value per customer with at least one completed order up to `as_of`.

    In: orders (customer_id, timestamp, revenue, status). Out, one row per customer sorted by
    id: customer_id, orders (purchases), revenue (net of credits), first_order, last_order
    (timestamps of the first/last purchase; NaT without purchase), tenure_days, recency_days.
    """
    end = as_of_day(orders, as_of, col_timestamp=col_timestamp)
    rows = purchases(orders, as_of=end, col_customer=col_customer, col_timestamp=col_timestamp,
                     col_revenue=col_revenue, col_status=col_status)
    end = pd.NaT if end is None else end          # no dated orders: an empty table
    return (
        rows.assign(
            _ts=lambda d: d[col_timestamp].where(d["is_purchase"]),
            _day=lambda d: d["day"].where(d["is_purchase"]),
        )
        .groupby(col_customer, sort=True)
        .agg(**{
            ORDERS: ("is_purchase", "sum"),
            REVENUE: (col_revenue, "sum"),
            FIRST_ORDER: ("_ts", "min"),
            LAST_ORDER: ("_ts", "max"),
            "_first_day": ("_day", "min"),
            "_last_day": ("_day", "max"),
        })
        .reset_index()
        .assign(**{
            ORDERS: lambda d: d[ORDERS].astype("int64"),
            TENURE_DAYS: lambda d: _days(end - d["_first_day"]),
            RECENCY_DAYS: lambda d: _days(end - d["_last_day"]),
        })
        .drop(columns=["_first_day", "_last_day"])
    )


def concentration(values: pd.DataFrame, *, col_value: str = REVENUE, points: Sequence[float] | None = None) -> pd.DataFrame:
    """How concentrated value is: share of the total held by the top customers.

    Customers ranked by `col_value`, highest first. Out: customer_share (top x of customers),
    value_share (their share of the total), one row per customer, or one row per share in
    `points` (e.g. [0.1, 0.2]: the top 10% / 20%, rounded up to whole customers).
        concentration(hist, points=[0.2])  -> top 20% hold e.g. 61% of revenue
    """
    _require(values, [col_value], "customer values")
    ranked = values[col_value].sort_values(ascending=False, ignore_index=True).astype("float64")
    n = len(ranked)
    curve = pd.DataFrame({"customer_share": np.arange(1, n + 1) / n if n else np.array([], dtype="float64"),
                          "value_share": ranked.cumsum() / ranked.sum() if n else np.array([], dtype="float64")})
    if points is None:
        return curve
    k = np.clip(np.ceil(np.asarray(points, dtype="float64") * n - 1e-9).astype("int64"), 1, max(n, 1)) - 1
    return pd.DataFrame({"top_share": np.asarray(points, dtype="float64"),
                         "customers": k + 1,
                         "value_share": curve["value_share"].to_numpy()[k] if n else np.nan})


def historic_overview(historic: pd.DataFrame, orders: pd.DataFrame) -> dict:
    """Headline numbers of revenue to date: {customers (with a purchase), revenue, top10_share,
    top20_share, top50_share (share of net revenue of the top 10/20/50% of them), credit_only
    (customers with only credits or zero-value rows)}. Raises schema.Missing without purchases.
        historic_overview(hist, orders) -> {"customers": 3000, "revenue": 1.2e6, "top20_share": 0.61, ...}
    """
    require_purchases(orders, historic)
    buyers = historic.loc[lambda d: d[ORDERS] > 0]
    top = concentration(buyers, points=[0.1, 0.2, 0.5])["value_share"].to_numpy()
    return {"customers": int(len(buyers)), "revenue": float(buyers[REVENUE].sum()),
            "top10_share": float(top[0]), "top20_share": float(top[1]), "top50_share": float(top[2]),
            "credit_only": int((historic[ORDERS] == 0).sum())}


def describe_historic(overview: Mapping, as_of) -> str:
    """The historic value in two sentences with the numbers of `historic_overview`."""
    credit = (f" {overview['credit_only']:,} customers have only credits or zero-value rows."
              if overview["credit_only"] else "")
    return (f"{overview['customers']:,} customers bought up to {_day(as_of).date()}, with "
            f"{overview['revenue']:,.0f} € net revenue. The top 10% brought {overview['top10_share']:.0%}, "
            f"the top 20% {overview['top20_share']:.0%}, the top half {overview['top50_share']:.0%}.{credit}")


def revenue_curve(historic: pd.DataFrame) -> pd.DataFrame:
    """The concentration curve of net revenue over customers with a purchase (see concentration)."""
    return concentration(historic.loc[lambda d: d[ORDERS] > 0])


def date_text(day, missing: str | None = "no dated rows") -> str | None:
    """A day as 'YYYY-MM-DD', or `missing` for None."""
    return missing if day is None or pd.isna(day) else _day(day).date().isoformat()


def negative_moment_reasons(taxonomy) -> list[str]:
    """Contact reasons that count as a negative moment for the at-risk list: every complaint
    reason and the classic moments of truth (taxonomy `moments_of_truth`: unclear invoice,
    provisioning question, hotline and service-failure complaints). Reasons only flagged
    `moment` without being a complaint (e.g. a proactive outage notice) are not negative."""
    classic = list(taxonomy.data.get("moments_of_truth", []))
    return list(dict.fromkeys([*classic, *taxonomy.complaint_category_of_reason]))


def _score(values: pd.Series, bins: int, *, higher_is_better: bool = True) -> pd.Series:
    """floor(bins * (min rank - 1) / n) + 1; ties share the lowest score of their span."""
    rank = values.rank(method="min", ascending=higher_is_better)
    return (np.floor(bins * (rank - 1) / len(values)) + 1).astype("int64")


def rfm_scores(historic: pd.DataFrame, *, bins: int = 5, col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """RFM scores for customers with at least one purchase.

    In: historic_value output (recency_days, orders, revenue). Out: customer_id, recency_days,
    orders, revenue, r_score, f_score, m_score (1..bins, higher = better), rfm ("545").
        rfm_scores(hist, bins=5)
    """
    _require(historic, [col_customer, RECENCY_DAYS, ORDERS, REVENUE], "historic value")
    if not isinstance(bins, int) or bins < 2:
        raise ValueInputError(f"rfm bins must be an integer >= 2, got {bins!r}")
    buyers = historic.loc[lambda d: d[ORDERS] > 0]
    require(len(buyers), "no customer with a purchase", enable=ENABLE_ORDERS)
    require(buyers[RECENCY_DAYS].nunique() > 1,
            "every purchase falls on the same day, so recency cannot rank customers",
            enable="orders over more than one day")
    return (
        historic.loc[lambda d: d[ORDERS] > 0, [col_customer, RECENCY_DAYS, ORDERS, REVENUE]]
        .reset_index(drop=True)
        .assign(**{
            R_SCORE: lambda d: _score(d[RECENCY_DAYS], bins, higher_is_better=False),
            F_SCORE: lambda d: _score(d[ORDERS], bins),
            M_SCORE: lambda d: _score(d[REVENUE], bins),
        })
        .assign(**{RFM: lambda d: d[R_SCORE].astype(str) + d[F_SCORE].astype(str) + d[M_SCORE].astype(str)})
    )


def rfm_segments(scores: pd.DataFrame, *, rules: Mapping, bins: int = 5) -> pd.DataFrame:
    """Name each customer's RFM segment from its R and F scores.

    `rules`: segment code -> {r: [low, high], f: [low, high], ...} on a 1..5 scale (the
    `rfm_segments` section of config/taxonomy.yml); the first matching rule wins. Scores of
    another `bins` are put on 1..5 first by ceil(score * 5 / bins). Adds `rfm_segment`;
    a customer no rule matches raises (rules must cover the 5 x 5 grid).
    """
    _require(scores, [R_SCORE, F_SCORE], "rfm scores")
    r5 = np.ceil(scores[R_SCORE] * 5 / bins).astype("int64")
    f5 = np.ceil(scores[F_SCORE] * 5 / bins).astype("int64")
    conditions = [
        r5.between(*rule["r"]) & f5.between(*rule["f"]) for rule in rules.values()
    ]
    segment = pd.Series(np.select(conditions, list(rules), default=""), index=scores.index, dtype="str")
    unmatched = scores.loc[segment == ""]
    if len(unmatched):
        raise ValueInputError(
            f"rfm_segments rules cover no segment for scores (r, f) "
            f"{sorted(set(zip(r5[unmatched.index], f5[unmatched.index])))[:5]}"
        )
    return scores.assign(**{RFM_SEGMENT: segment})


def segment_summary(scores: pd.DataFrame, *, col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """Per RFM segment: customers, share, revenue, revenue share, mean orders and recency.
    Sorted by revenue, largest first."""
    _require(scores, [col_customer, RFM_SEGMENT, REVENUE, ORDERS, RECENCY_DAYS], "rfm segments")
    return (
        scores.groupby(RFM_SEGMENT, sort=False)
        .agg(customers=(col_customer, "size"), revenue=(REVENUE, "sum"),
             mean_orders=(ORDERS, "mean"), mean_recency_days=(RECENCY_DAYS, "mean"))
        .reset_index()
        .assign(customer_share=lambda d: d["customers"] / d["customers"].sum(),
                revenue_share=lambda d: d["revenue"] / d["revenue"].sum())
        .sort_values(["revenue", RFM_SEGMENT], ascending=[False, True], ignore_index=True)
        [[RFM_SEGMENT, "customers", "customer_share", "revenue", "revenue_share", "mean_orders", "mean_recency_days"]]
    )


def segment_table(scores: pd.DataFrame, taxonomy, *, lang: str = "en") -> pd.DataFrame:
    """segment_summary with the segment's label in `lang` as `segment` (first column)."""
    table = segment_summary(scores)
    return table.assign(segment=[taxonomy.label("rfm_segments", c, lang) for c in table[RFM_SEGMENT]])[
        ["segment", *table.columns]]


def describe_rfm(segments: pd.DataFrame, *, lapsed: Sequence[str] = LAPSED_SEGMENTS) -> str:
    """The largest segment by revenue and the lapsed segments (bought often, not lately) in
    sentences; `segments`: segment_table output."""
    lead = segments.iloc[0]
    gone = segments.loc[lambda d: d[RFM_SEGMENT].isin(list(lapsed))]
    names = ", ".join(f"*{x}*" for x in gone["segment"])
    lapsed_text = (f" The segments that bought often but not lately ({names}) hold {gone['customers'].sum():,} "
                   f"customers and {gone['revenue_share'].sum():.0%} of revenue." if len(gone)
                   else " No customer falls in a segment that bought often but not lately.")
    return (f"{int(segments['customers'].sum()):,} customers in {len(segments)} segments. *{lead['segment']}* is the "
            f"largest by revenue: {lead['customers']:,} customers ({lead['customer_share']:.0%}) with "
            f"{lead['revenue_share']:.0%} of net revenue to date.{lapsed_text}")


# --- BTYD summary -----------------------------------------------------------------------
def clv_summary(
    orders: pd.DataFrame,
    *,
    as_of=None,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_revenue: str = REVENUE,
    col_status: str = STATUS,
) -> pd.DataFrame:
    """Recency-frequency-monetary summary in days for BG/NBD and Gamma-Gamma.

    Out, one row per customer with a purchase by `as_of`: customer_id, frequency (repeat
    purchase days), recency (first to last purchase day), T (first purchase day to as_of),
    monetary_value (mean revenue of the repeat purchase days; 0 without repeats).
    """
    end = as_of_day(orders, as_of, col_timestamp=col_timestamp)
    end = pd.NaT if end is None else end
    return (
        purchases(orders, as_of=end, col_customer=col_customer, col_timestamp=col_timestamp,
                  col_revenue=col_revenue, col_status=col_status)
        .loc[lambda d: d["is_purchase"]]
        .groupby([col_customer, "day"], sort=True)
        .agg(_revenue=(col_revenue, "sum"))
        .reset_index()
        .assign(_first=lambda d: d.groupby(col_customer)["day"].transform("min"))
        .assign(_repeat=lambda d: d["day"] > d["_first"],
                _repeat_revenue=lambda d: d["_revenue"].where(d["day"] > d["_first"], 0.0))
        .groupby(col_customer, sort=True)
        .agg(**{FREQUENCY: ("_repeat", "sum"), "_first": ("day", "min"), "_last": ("day", "max"),
                "_repeat_revenue": ("_repeat_revenue", "sum")})
        .reset_index()
        .rename(columns={col_customer: CUSTOMER_ID})
        .assign(**{
            FREQUENCY: lambda d: d[FREQUENCY].astype("int64"),
            RECENCY: lambda d: _days(d["_last"] - d["_first"]),
            T: lambda d: _days(end - d["_first"]),
            MONETARY: lambda d: (d["_repeat_revenue"] / d[FREQUENCY].where(d[FREQUENCY] > 0)).fillna(0.0),
        })
        [[CUSTOMER_ID, FREQUENCY, RECENCY, T, MONETARY]]
    )


# --- the model --------------------------------------------------------------------------
@dataclass(frozen=True)
class ClvFit:
    """A fitted BG/NBD (purchases) and Gamma-Gamma (spend) pair."""

    name: str                      # e.g. "BG/NBD + Gamma-Gamma (pymc-marketing 0.19.2, MAP)"
    method: str                    # "map" | "mcmc"
    purchase_model: object         # pymc_marketing.clv.BetaGeoModel
    spend_model: object            # pymc_marketing.clv.GammaGammaModel
    params: pd.DataFrame           # model, parameter, estimate, ci_low, ci_high (90%; NaN for MAP)
    customers: int
    repeat_buyers: int


@contextlib.contextmanager
def _quiet():
    """Silence pymc/pytensor log lines and warnings for the duration of a fit (restored after)."""
    loggers = [logging.getLogger(name) for name in ("pymc", "pytensor", "pymc_marketing")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _posterior_params(model, names: Sequence[str], label: str) -> pd.DataFrame:
    post = model.fit_result
    rows = [
        {"model": label, "parameter": n, "estimate": float(post[n].mean()),
         "ci_low": float(post[n].quantile(0.05)) if post[n].size > 1 else math.nan,
         "ci_high": float(post[n].quantile(0.95)) if post[n].size > 1 else math.nan}
        for n in names
    ]
    return pd.DataFrame(rows)


def check_params(params: pd.DataFrame) -> None:
    """Raise ModelUnsupported for unusable fitted parameters (model, parameter, estimate):
    non-finite, degenerate (outside PARAM_RANGE) or Gamma-Gamma q <= 1 (mean spend undefined)."""
    if not np.isfinite(params["estimate"]).all():
        raise ModelUnsupported(f"the model fit gave non-finite parameters ({params.to_dict('records')}): "
                               "historic value is used")
    degenerate = params.loc[lambda d: (d["estimate"] < PARAM_RANGE[0]) | (d["estimate"] > PARAM_RANGE[1])]
    if len(degenerate):
        shown = ", ".join(f"{r.model} {r.parameter} = {r.estimate:.2g}" for r in degenerate.itertuples())
        raise ModelUnsupported(f"the model fit is degenerate ({shown}): the repeat purchases are too few or too "
                               "uniform to estimate it; historic value is used")
    q = params.loc[lambda d: d["parameter"] == "q", "estimate"]
    if len(q) and q.iloc[0] <= 1:
        raise ModelUnsupported(f"Gamma-Gamma q = {q.iloc[0]:.2f} <= 1: mean spend is undefined for these data; "
                               "historic value is used")


def fit_clv(
    summary: pd.DataFrame,
    *,
    method: str = "map",
    min_repeat_buyers: int = 50,
    draws: int = 300,
    tune: int = 300,
    chains: int = 2,
    seed: int = 0,
) -> ClvFit:
    """Fit BG/NBD to frequency/recency/T and Gamma-Gamma to the spend of repeat buyers.

    In: clv_summary output. `method`: "map" (point estimates, seconds) or "mcmc" (NUTS,
    `chains` x `draws` posterior draws, gives 90% intervals). Raises ModelUnsupported when
    fewer than `min_repeat_buyers` customers bought again, when no customer bought on more than
    two days (dropout after a repeat purchase would be estimated as certain), or when the fit
    gives unusable parameters (see check_params).
    """
    _require(summary, [CUSTOMER_ID, FREQUENCY, RECENCY, T, MONETARY], "clv summary")
    if method not in FIT_METHODS:
        raise ValueInputError(f"clv fit method must be one of {FIT_METHODS}, got {method!r}")
    n = len(summary)
    repeat = summary.loc[lambda d: (d[FREQUENCY] > 0) & (d[MONETARY] > 0)]
    if len(repeat) < max(min_repeat_buyers, 1):
        raise ModelUnsupported(
            f"only {len(repeat):,} of {n:,} customers bought again (the model needs at least "
            f"{min_repeat_buyers:,} repeat buyers): predicted CLV is not computed, historic value is used"
        )
    if repeat[FREQUENCY].max() < 2:
        raise ModelUnsupported(
            f"no customer bought on more than two days ({len(repeat):,} of {n:,} bought exactly twice): the "
            "BG/NBD dropout estimate would run to certainty (a degenerate fit); historic value is used"
        )
    bad = summary.loc[lambda d: (d[RECENCY] > d[T]) | (d[RECENCY] < 0) | (d[FREQUENCY] < 0)]
    if len(bad):
        raise ValueInputError(f"clv summary: recency must lie in [0, T]; first rows: {bad.head(3).to_dict('records')}")

    with warnings.catch_warnings():  # import first: pymc sets its logger's level on import
        warnings.simplefilter("ignore")
        import pymc_marketing
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    with _quiet():
        data = summary[[CUSTOMER_ID, FREQUENCY, RECENCY, T]].reset_index(drop=True)
        spend_data = repeat[[CUSTOMER_ID, FREQUENCY, MONETARY]].reset_index(drop=True)
        kwargs = ({"progressbar": False} if method == "map"
                  else {"progressbar": False, "draws": draws, "tune": tune, "chains": chains,
                        "cores": 1, "random_seed": seed, "compute_convergence_checks": False})
        purchase_model = BetaGeoModel()
        purchase_model.fit(data=data, method=method, **kwargs)
        spend_model = GammaGammaModel()
        spend_model.fit(data=spend_data, method=method, **kwargs)
        params = pd.concat([
            _posterior_params(purchase_model, ["r", "alpha", "a", "b"], "BG/NBD"),
            _posterior_params(spend_model, ["p", "q", "v"], "Gamma-Gamma"),
        ], ignore_index=True)

    check_params(params)
    label = "MAP" if method == "map" else f"MCMC {chains}x{draws}"
    return ClvFit(
        name=f"{MODEL_NAME} (pymc-marketing {pymc_marketing.__version__}, {label})",
        method=method, purchase_model=purchase_model, spend_model=spend_model, params=params,
        customers=n, repeat_buyers=len(repeat),
    )


def _draws(x, ids: pd.Series) -> np.ndarray:
    """An xarray result as an array (samples, customers), customers in the order of `ids`."""
    x = x.sel(customer_id=ids.to_numpy()).transpose(..., "customer_id")
    return np.asarray(x).reshape(-1, len(ids))


def expected_purchases(fit: ClvFit, summary: pd.DataFrame, *, days: float) -> pd.DataFrame:
    """Expected repeat purchases per customer in the next `days` days (posterior mean).
    Out: customer_id, expected_purchases."""
    data = summary[[CUSTOMER_ID, FREQUENCY, RECENCY, T]].reset_index(drop=True)
    with _quiet():
        draws = _draws(fit.purchase_model.expected_purchases(data=data, future_t=days), data[CUSTOMER_ID])
    return data[[CUSTOMER_ID]].assign(**{EXPECTED_PURCHASES: draws.mean(axis=0)})


def _clv_draws(fit: ClvFit, summary: pd.DataFrame, horizon_months: int, annual_discount_rate: float) -> dict:
    """Posterior draws (samples, customers) of horizon purchases, spend, P(alive) and CLV."""
    _require(summary, [CUSTOMER_ID, FREQUENCY, RECENCY, T, MONETARY], "clv summary")
    if not isinstance(horizon_months, int) or horizon_months < 1:
        raise ValueInputError(f"horizon_months must be an integer >= 1, got {horizon_months!r}")
    if annual_discount_rate <= -1:
        raise ValueInputError(f"annual_discount_rate must be > -1, got {annual_discount_rate}")
    data = summary[[CUSTOMER_ID, FREQUENCY, RECENCY, T, MONETARY]].reset_index(drop=True)
    ids = data[CUSTOMER_ID]
    monthly = (1 + annual_discount_rate) ** (1 / 12) - 1
    with _quiet():
        # a loop over months; each step is vectorised over customers and draws
        cumulative = np.stack([
            _draws(fit.purchase_model.expected_purchases(data=data, future_t=m * DAYS_PER_MONTH), ids)
            for m in range(horizon_months + 1)
        ])  # (months + 1, samples, customers)
        spend = _draws(fit.spend_model.expected_customer_spend(data=data), ids)
        p_alive = _draws(fit.purchase_model.expected_probability_alive(data=data), ids)
    discount = (1 + monthly) ** -np.arange(1, horizon_months + 1)
    clv = np.einsum("m,msc->sc", discount, np.diff(cumulative, axis=0)) * spend
    return {"ids": ids, "purchases": cumulative[-1], "spend": spend,
            "p_alive": p_alive, "clv": clv}


def _interval(draws: np.ndarray, interval: float, axis: int = 0) -> tuple:
    if draws.shape[axis] < 2:
        shape = np.delete(np.array(draws.shape), axis)
        return np.full(shape, np.nan), np.full(shape, np.nan)
    lo = (1 - interval) / 2
    return np.quantile(draws, lo, axis=axis), np.quantile(draws, 1 - lo, axis=axis)


def _predictions(d: dict, interval: float) -> pd.DataFrame:
    low, high = _interval(d["clv"], interval)
    return pd.DataFrame({
        CUSTOMER_ID: d["ids"].to_numpy(),
        EXPECTED_PURCHASES: d["purchases"].mean(axis=0),
        P_ALIVE: d["p_alive"].mean(axis=0),
        EXPECTED_SPEND: d["spend"].mean(axis=0),
        CLV: d["clv"].mean(axis=0),
        CLV_LOW: low,
        CLV_HIGH: high,
    })


def _total(d: dict, interval: float) -> dict:
    totals = d["clv"].sum(axis=1)
    low, high = _interval(totals[:, None], interval)
    return {"total": float(totals.mean()), "total_low": float(low[0]), "total_high": float(high[0])}


def predict_clv(
    fit: ClvFit,
    summary: pd.DataFrame,
    *,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    interval: float = 0.9,
) -> pd.DataFrame:
    """Predicted CLV per customer over `horizon_months`, discounted monthly.

    In: a ClvFit and clv_summary output. Out: customer_id, expected_purchases (in the
    horizon), p_alive, expected_spend (per purchase), clv (posterior mean), clv_low, clv_high
    (central `interval` of the posterior draws; NaN for a MAP fit, which has no parameter
    uncertainty).
        predict_clv(fit, summary, horizon_months=12, annual_discount_rate=0.1)
    """
    return _predictions(_clv_draws(fit, summary, horizon_months, annual_discount_rate), interval)


def clv_total(
    fit: ClvFit,
    summary: pd.DataFrame,
    *,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    interval: float = 0.9,
) -> dict:
    """Total predicted CLV of all customers in `summary`: {total, total_low, total_high}
    (interval from the posterior draws of the total; NaN for MAP)."""
    return _total(_clv_draws(fit, summary, horizon_months, annual_discount_rate), interval)


# --- holdout check ----------------------------------------------------------------------
def holdout_check(
    orders: pd.DataFrame,
    *,
    holdout_months: int = 6,
    as_of=None,
    method: str = "map",
    min_repeat_buyers: int = 50,
    seed: int = 0,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_revenue: str = REVENUE,
    col_status: str = STATUS,
) -> pd.DataFrame:
    """Fit on the calibration period, predict repeat purchases in the last `holdout_months`.

    Calibration ends `holdout_months` before `as_of`; customers with a purchase by then are
    scored. Out: one row per decile of predicted purchases ("1" lowest .. "10" highest;
    customers ranked by prediction, ties by id) and a row "all": decile, customers,
    predicted, actual (repeat purchase days in the holdout, summed), predicted_mean,
    actual_mean, error_pct (100 * (predicted - actual) / actual). Raises ModelUnsupported
    when the calibration data cannot support the model.
    """
    if not isinstance(holdout_months, int) or holdout_months < 1:
        raise ValueInputError(f"holdout_months must be an integer >= 1, got {holdout_months!r}")
    end = as_of_day(orders, as_of, col_timestamp=col_timestamp)
    cal_end = end - pd.DateOffset(months=holdout_months)
    cols = {"col_customer": col_customer, "col_timestamp": col_timestamp,
            "col_revenue": col_revenue, "col_status": col_status}
    calibration = clv_summary(orders, as_of=cal_end, **cols)
    fit = fit_clv(calibration, method=method, min_repeat_buyers=min_repeat_buyers, seed=seed)
    actual = (
        purchases(orders, as_of=end, **cols)
        .loc[lambda d: d["is_purchase"] & (d["day"] > cal_end)]
        .drop_duplicates([col_customer, "day"])
        .groupby(col_customer).size().rename("actual")
    )
    scored = (
        expected_purchases(fit, calibration, days=_days(pd.Series([end - cal_end])).iloc[0])
        .rename(columns={EXPECTED_PURCHASES: "predicted"})
        .assign(actual=lambda d: d[CUSTOMER_ID].map(actual).fillna(0).astype("float64"))
        .sort_values(["predicted", CUSTOMER_ID], ignore_index=True)
        .assign(decile=lambda d: (np.floor(10 * np.arange(len(d)) / len(d)) + 1).astype("int64").astype(str))
    )
    table = pd.concat([scored, scored.assign(decile="all")], ignore_index=True)
    return (
        table.groupby("decile", sort=False)
        .agg(customers=(CUSTOMER_ID, "size"), predicted=("predicted", "sum"), actual=("actual", "sum"))
        .reset_index()
        .assign(predicted_mean=lambda d: d["predicted"] / d["customers"],
                actual_mean=lambda d: d["actual"] / d["customers"],
                error_pct=lambda d: 100 * (d["predicted"] - d["actual"]) / d["actual"].where(d["actual"] > 0))
        .assign(model=fit.name, holdout_days=_days(pd.Series([end - cal_end])).iloc[0])
    )


# --- value tiers ------------------------------------------------------------------------
def value_tiers(values: pd.DataFrame, *, tiers: Mapping[str, float], col_value: str = VALUE) -> pd.DataFrame:
    """Assign each customer a value tier by rank of `col_value` (best first).

    `tiers`: label -> share of customers, best tier first, shares summing to 1, e.g.
    {"high": 0.2, "medium": 0.3, "low": 0.5}. Ties get the better tier (minimum rank).
    Adds `value_tier` (ordered categorical, categories in the order of `tiers`).
    """
    _require(values, [col_value], "customer values")
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
    _require(tiered, [col_customer, VALUE_TIER, VALUE], "tiered customers")
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


def describe_tiers(table: pd.DataFrame, *, basis: str) -> str:
    """The best and the last tier's customers and share of the value (`table`: tier_summary)."""
    best, last = table.iloc[0], table.iloc[-1]
    text = (f"The {best['value_tier']} tier's {best['customers']:,} customers hold {best['value_share']:.0%} of the "
            f"{basis} ({best['value_total']:,.0f} €, at least {best['value_min']:,.0f} € each)")
    if len(table) > 1:
        text += f"; the {last['value_tier']} tier's {last['customers']:,} customers hold {last['value_share']:.0%}"
    return text + "."


def tier_title(table: pd.DataFrame) -> str:
    """A figure title: the best tier's share of customers and of the value."""
    best = table.iloc[0]
    return (f"The {best['value_tier']} tier: {best['customers'] / table['customers'].sum():.0%} of customers, "
            f"{best['value_share']:.0%} of the value")


# --- predicted value with fallback --------------------------------------------------------
@dataclass(frozen=True)
class CustomerValue:
    """Value per customer and how it was obtained (`customer_value`)."""

    customers: pd.DataFrame        # customer_id, orders, revenue, ..., clv, clv_low, clv_high, value, value_basis
    status: str                    # "fitted" | "unsupported"
    model: str                     # model name, or "historic revenue (fallback)"
    message: str                   # one sentence for the report
    params: pd.DataFrame = field(default_factory=pd.DataFrame)
    total: dict = field(default_factory=dict)   # {total, total_low, total_high} of predicted CLV
    holdout: pd.DataFrame | None = None
    holdout_message: str = ""


def customer_value(
    orders: pd.DataFrame,
    historic: pd.DataFrame,
    *,
    as_of=None,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    holdout_months: int = 6,
    method: str = "map",
    draws: int = 300,
    min_repeat_buyers: int = 50,
    interval: float = 0.9,
    seed: int = 0,
    categories: Sequence[str] = (),
    col_category: str = CATEGORY,
) -> CustomerValue:
    """Predicted CLV per customer with the holdout check, or historic revenue when the data
    cannot support the model (ModelUnsupported: the reason goes to `message`, not a crash).

    In: canonical orders and historic_value output. `customers` has the historic columns for
    customers with a purchase, plus the prediction columns (NaN in the fallback), `value`
    and `value_basis`. `categories` empty: the model covers all orders and value = clv
    ("predicted_clv"). `categories` given (repeat purchases such as add-ons, when the other
    orders are contracts that BG/NBD does not describe): the model is fitted and predicts on
    orders of those categories only, and value = net revenue to date + clv of those purchases
    (0 for customers without one; "revenue_plus_predicted_clv"). Fallback: value = net revenue
    to date ("historic_revenue").
    `method`/`draws`: see fit_clv (the holdout check always uses MAP). `holdout_months=0` skips
    the holdout check.
    """
    end = as_of_day(orders, as_of)
    base = historic.loc[lambda d: d[ORDERS] > 0].reset_index(drop=True)
    categories = list(categories or ())
    seen = set(orders[col_category].dropna().astype(str)) if col_category in orders.columns else set()
    note = ""
    if categories and not set(categories) & seen:
        note = (f" None of the CLV categories ({', '.join(categories)}) occurs in the orders, so the model covers all "
                "orders.")
        categories = []
    if categories:
        orders = orders.loc[orders[col_category].isin(categories)]
    summary = clv_summary(orders, as_of=end)
    try:
        fit = fit_clv(summary, method=method, min_repeat_buyers=min_repeat_buyers, draws=draws, tune=draws,
                      seed=seed)
    except ModelUnsupported as exc:
        empty = {c: np.nan for c in (EXPECTED_PURCHASES, P_ALIVE, EXPECTED_SPEND, CLV, CLV_LOW, CLV_HIGH)}
        return CustomerValue(
            customers=base.assign(**empty, **{VALUE: base[REVENUE], VALUE_BASIS: BASIS_REVENUE}),
            status="unsupported", model="historic revenue (fallback)",
            message=f"Model not supported: {exc}.{note}",
        )
    draws = _clv_draws(fit, summary, horizon_months, annual_discount_rate)
    predicted = _predictions(draws, interval)
    holdout, holdout_message = None, ""
    if holdout_months:
        try:
            holdout = holdout_check(orders, holdout_months=holdout_months, as_of=end, method="map",
                                    min_repeat_buyers=min_repeat_buyers, seed=seed)
        except ModelUnsupported as exc:       # the model of all data stands; only its check is missing
            holdout_message = holdout_reason(exc)
    merged = base.merge(predicted, on=CUSTOMER_ID, how="left", validate="one_to_one")
    scope = f" of {', '.join(categories)} purchases" if categories else ""
    return CustomerValue(
        customers=(merged.assign(**{VALUE: merged[REVENUE] + merged[CLV].fillna(0.0),
                                    VALUE_BASIS: BASIS_PLUS}) if categories
                   else merged.assign(**{VALUE: merged[CLV], VALUE_BASIS: BASIS_CLV})),
        status="fitted", model=fit.name,
        message=(f"Fitted on {fit.customers:,} customers{scope}, {fit.repeat_buyers:,} of them repeat "
                 f"buyers; CLV over {horizon_months} months at {annual_discount_rate:.0%} a year discount"
                 + ("; value = net revenue to date + predicted CLV of these purchases." if categories else ".")
                 + note),
        params=fit.params, total=_total(draws, interval), holdout=holdout, holdout_message=holdout_message,
    )


def holdout_reason(exc: Exception) -> str:
    """Why the holdout check could not run, from the ModelUnsupported of its refit, without the
    fallback clause ('historic value is used'): the model of all data stands, only its check is missing.

        holdout_reason(ModelUnsupported("only 9 of 80 customers bought again (...): predicted CLV is not computed, "
                                        "historic value is used"))
        -> "Holdout check not possible: only 9 of 80 customers bought again (...) in the data before the holdout months."
    """
    reason = str(exc).removesuffix("historic value is used").rstrip(":;, ").removesuffix("predicted CLV is not computed")
    return f"Holdout check not possible: {reason.rstrip(':;, ')} in the data before the holdout months."


def clv_distribution(value: CustomerValue) -> dict:
    """Headline numbers of the value per customer: {basis, model, status, customers, mean,
    median, p90, total, total_low, total_high}."""
    v = value.customers[VALUE]
    plus = len(v) and value.customers[VALUE_BASIS].iloc[0] == BASIS_PLUS
    offset = float(value.customers[REVENUE].sum()) if plus else 0.0
    return {
        "basis": value.customers[VALUE_BASIS].iloc[0] if len(v) else "",
        "model": value.model, "status": value.status, "customers": int(len(v)),
        "mean": float(v.mean()) if len(v) else math.nan,
        "median": float(v.median()) if len(v) else math.nan,
        "p90": float(v.quantile(0.9)) if len(v) else math.nan,
        "total": float(v.sum()),
        "total_low": offset + value.total.get("total_low", math.nan),
        "total_high": offset + value.total.get("total_high", math.nan),
        "predicted": value.total.get("total", math.nan),
    }


def describe_clv(res: CustomerValue) -> str:
    """One or two sentences for the report: the total value, its interval or why there is none.
        describe_clv(res) -> "Total predicted CLV: 104,886 € over 3,000 customers (90% interval ...)."
    """
    d = clv_distribution(res)
    if res.status != "fitted":
        return (f"Total net revenue to date (the fallback value): {d['total']:,.0f} € over {d['customers']:,} "
                f"customers. {res.message}")
    interval = (f"90% interval {d['total_low']:,.0f}–{d['total_high']:,.0f} €" if np.isfinite(d["total_low"])
                else "a MAP fit gives point estimates only; clv_method 'mcmc' gives intervals")
    if d["basis"] == BASIS_PLUS:
        return (f"Total value: {d['total']:,.0f} € over {d['customers']:,} customers: net revenue to date "
                f"{d['total'] - d['predicted']:,.0f} € plus predicted CLV of repeat purchases {d['predicted']:,.0f} € "
                f"({interval}).")
    return f"Total predicted CLV: {d['total']:,.0f} € over {d['customers']:,} customers ({interval})."


def describe_holdout(res: CustomerValue) -> str:
    """The holdout check in one sentence (or why it was not possible)."""
    if res.holdout is None:
        return res.holdout_message or f"No holdout check: {res.message}"
    row = res.holdout.iloc[-1]
    error = f"{row['error_pct']:+.0f}%" if np.isfinite(row["error_pct"]) else "no actual purchases"
    return (f"Over all {int(row['customers']):,} customers the model fitted on the calibration period predicted "
            f"{row['predicted']:,.0f} repeat purchases in the {row['holdout_days']:.0f} held-out days; "
            f"{row['actual']:,.0f} happened ({error}).")


def require_values(res: CustomerValue, orders: pd.DataFrame, historic: pd.DataFrame) -> None:
    """Raise schema.Missing when no customer could be valued (see require_purchases)."""
    require_purchases(orders, historic)
    require(len(res.customers), "no customer with a purchase to value", enable=ENABLE_ORDERS)


def basis_label(res: CustomerValue) -> str:
    """What a customer's value is, in words: 'predicted CLV', 'revenue to date + predicted CLV'
    or 'net revenue to date' (the fallback)."""
    basis = res.customers[VALUE_BASIS].iloc[0] if len(res.customers) else BASIS_REVENUE
    return BASIS_LABELS[basis]


def describe_value_model(res: CustomerValue) -> str:
    """The model and what it did; in the fallback only its name (`describe_clv` says why and what is
    used instead, so the report says it once)."""
    return f"**{res.model}.**" + (f" {res.message}" if res.status == "fitted" else "")


def top_customers(res: CustomerValue, k: int = 10) -> pd.DataFrame:
    """The `k` customers of highest value: customer_id, orders, revenue and the prediction columns
    (fitted model) or tenure and recency (fallback), rounded to 2 decimals."""
    extra = ([EXPECTED_PURCHASES, P_ALIVE, EXPECTED_SPEND, CLV, CLV_LOW, CLV_HIGH] if res.status == "fitted"
             else [TENURE_DAYS, RECENCY_DAYS])
    if res.status == "fitted" and res.customers[CLV_LOW].isna().all():
        extra = [c for c in extra if c not in (CLV_LOW, CLV_HIGH)]   # a MAP fit has no intervals
    return (res.customers.sort_values([VALUE, CUSTOMER_ID], ascending=[False, True])
            .head(k)[[CUSTOMER_ID, ORDERS, REVENUE, *extra, VALUE]].round(2).reset_index(drop=True))


def value_definition(res: CustomerValue, *, horizon_months: int, annual_discount_rate: float) -> str:
    """The figure caption's definition of a customer's value."""
    if res.status != "fitted":
        return "value = net revenue to date (completed orders, credits subtracted); " + res.message
    return (f"CLV = expected purchases in {horizon_months} months (BG/NBD) x expected spend (Gamma-Gamma), "
            f"discounted at {annual_discount_rate:.0%} a year")


def clv_record(res: CustomerValue, *, horizon_months: int, annual_discount_rate: float) -> dict:
    """The CLV part of results.json `value`: model, status, message, clv (clv_distribution),
    horizon_months, annual_discount_rate."""
    return {"model": res.model, "status": res.status, "message": res.message, "clv": clv_distribution(res),
            "horizon_months": horizon_months, "annual_discount_rate": annual_discount_rate}


def require_model(res: CustomerValue, *, min_repeat_buyers: int = 50) -> pd.DataFrame:
    """The fitted model's parameters (model, parameter, estimate, ci_low, ci_high; rounded to 3; the
    interval columns left out when a MAP fit has none); schema.Missing with the reason when the
    model could not be fitted."""
    require(len(res.customers), "no customer with a purchase to value", enable=ENABLE_ORDERS)
    if res.status != "fitted":
        raise Missing(res.message.removeprefix("Model not supported: ").rstrip("."),
                      enable=f"repeat purchases of at least {min_repeat_buyers:,} customers")
    return res.params.round(3).dropna(axis=1, how="all")


def require_holdout(res: CustomerValue, *, min_repeat_buyers: int = 50) -> pd.DataFrame:
    """The holdout table of a fitted model (see holdout_check); schema.Missing when there is none."""
    if res.holdout is not None:
        return res.holdout
    enable = f"repeat purchases of at least {min_repeat_buyers:,} customers before the holdout months"
    if res.status != "fitted":
        raise Missing("the CLV model was not fitted (historic value is used), so there is no prediction to check",
                      enable=enable)
    if res.holdout_message:
        raise Missing(res.holdout_message.removeprefix("Holdout check not possible: ").rstrip("."), enable=enable)
    raise Missing("the holdout check is switched off", enable="holdout_months > 0")


# --- customer experience by value tier ------------------------------------------------------
def _window(df: pd.DataFrame, col_time: str, as_of: pd.Timestamp, window_days: int | None) -> pd.DataFrame:
    """Rows on days in (as_of - window_days, as_of] (all rows up to as_of when window_days is None).
    Rows without a timestamp are kept when window_days is None (they cannot be placed in a window)."""
    if col_time not in df.columns:
        return df if window_days is None else df.iloc[0:0]
    day = df[col_time].dt.tz_convert("UTC").dt.floor("D")
    start = as_of - pd.Timedelta(days=window_days) if window_days is not None else None
    mask = (day <= as_of) & ((day > start) if start is not None else True)
    undated = day.isna() if window_days is None else False
    return df.loc[(mask.fillna(False).astype(bool)) | undated]


def _end(as_of, *tables, col_timestamp: str = TIMESTAMP) -> pd.Timestamp:
    end = analysis_day(as_of, *tables, col_timestamp=col_timestamp)
    return end if end is not None else pd.Timestamp.now(tz="UTC").floor("D")


def _require_tiers(tiered: pd.DataFrame, col_customer: str = CUSTOMER_ID) -> None:
    _require(tiered, [col_customer, VALUE_TIER], "tiered customers")
    require(len(tiered), "no customer with a value tier (no purchases to value)", enable=ENABLE_ORDERS)


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
    _require_tiers(tiered, col_customer)
    kpi = kpi or tier_kpi(feedback, col_customer=col_customer)
    _require(feedback, [col_customer, kpi], "feedback")
    end = _end(as_of, feedback, col_timestamp=col_timestamp)
    answered = (
        _window(feedback, col_timestamp, end, window_days)
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
    _require(feedback, [col_customer, col_timestamp, NPS], "feedback")
    return kpi_by_tier(feedback, tiered, kpi=NPS, as_of=as_of, window_days=window_days, min_n=min_n,
                       col_customer=col_customer, col_timestamp=col_timestamp).drop(columns="kpi")


_VALUE_FORMAT = {NPS: "{:+.1f}", CSAT: "{:.1f}%", CES: "{:.2f}"}
_DIFF_FORMAT = {NPS: "{:+.1f} points", CSAT: "{:+.1f} percentage points", CES: "{:+.2f}"}


def describe_kpi_by_tier(table: pd.DataFrame, *, min_n: int = 30) -> str:
    """The best tier's KPI with interval and n, and its difference to the other tiers (or why it
    is not compared); `table`: kpi_by_tier output (computed with the same `min_n`)."""
    kpi = table["kpi"].iloc[0]
    label, fmt = metrics.LABELS[kpi], _VALUE_FORMAT[kpi]
    top = table.iloc[0]
    if top["n"] == 0 or bool(top["small"]):
        return (f"The {top[VALUE_TIER]} tier has {top['n']:,} {label} answers, fewer than {min_n}: not compared "
                "with the other tiers.")
    comparison = ""
    if "diff_vs_rest" in table.columns and pd.notna(top.get("diff_vs_rest")) and pd.notna(top.get("p_adjusted")):
        verdict = "a significant" if top["significant"] else "no significant"
        p = "< 0.001" if top["p_adjusted"] < 0.001 else f"= {top['p_adjusted']:.3f}"
        comparison = (f", {_DIFF_FORMAT[kpi].format(top['diff_vs_rest'])} against the other tiers (adjusted p {p}: "
                      f"{verdict} difference)")
    return (f"{label} of the {top[VALUE_TIER]} tier: {fmt.format(top['value'])} (95% interval "
            f"{fmt.format(top['ci_low'])} to {fmt.format(top['ci_high'])}, n = {top['n']:,}){comparison}.")


def kpi_tier_record(table: pd.DataFrame) -> dict:
    """results.json entries of kpi_by_tier: kpi_by_tier rows, and nps_by_tier when the KPI is NPS."""
    cols = [VALUE_TIER, "n", "value", "ci_low", "ci_high", "small"]
    out = {"kpi_by_tier": table[["kpi", *cols]]}
    return {**out, "nps_by_tier": table[cols]} if table["kpi"].iloc[0] == NPS else out


def kpi_tier_title(table: pd.DataFrame) -> str:
    """A figure title naming the KPI of the first and last tier with answers."""
    shown = table.loc[table["n"] > 0]
    kpi, first, last = shown["kpi"].iloc[0], shown.iloc[0], shown.iloc[-1]
    fmt = "{:+.0f}" if kpi == NPS else "{:.0f}%" if kpi == CSAT else "{:.2f}"
    if len(shown) == 1:
        return f"{metrics.LABELS[kpi]} {fmt.format(first['value'])} in the {first[VALUE_TIER]} tier (95% interval)"
    return (f"{metrics.LABELS[kpi]} {fmt.format(first['value'])} in the {first[VALUE_TIER]} tier, "
            f"{fmt.format(last['value'])} in the {last[VALUE_TIER]} tier (95% intervals)")


def _contacts(events, reasons: Sequence[str], end: pd.Timestamp, window_days: int | None, *,
              col_customer: str, col_timestamp: str, col_reason: str) -> pd.DataFrame:
    """Per customer and contact reason in `reasons`: contacts and the last one, on days in
    (end - window_days, end] — computed on the engine; only the aggregate comes back."""
    t = engine.table(events)
    keep = (t[col_timestamp] < end + DAY) & t[col_reason].isin(list(reasons)) & t[col_customer].notnull()
    if window_days is not None:
        keep = keep & (t[col_timestamp] >= end - pd.Timedelta(days=window_days) + DAY)
    return engine.to_pandas(
        t.filter(keep)
        .group_by([col_customer, col_reason])
        .aggregate(contacts=lambda d: d.count(), last_contact=lambda d: d[col_timestamp].max())
    )


def require_contacts(events, reasons: Sequence[str], *, what: str = "contact", col_customer: str = CUSTOMER_ID,
                     col_reason: str = CONTACT_REASON) -> None:
    """schema.Missing when the events (pandas or Ibis) cannot show contacts of `reasons` per
    customer: no events, no customer ids, no contact reasons, or no such reason in the taxonomy."""
    t = engine.table(events)
    require(list(reasons), f"the taxonomy names no {what} reasons", enable=f"{what} reasons in the taxonomy")
    require(col_customer in t.columns and col_reason in t.columns, "the events lack customer ids or contact reasons",
            enable="events.customer_id and events.contact_reason")
    counts = engine.to_pandas(t.aggregate(n=t.count(), customers=t[col_customer].notnull().sum(),
                                          reasons=t[col_reason].notnull().sum())).iloc[0]
    require(counts["n"], "no events", enable="events (event_id, customer_id, timestamp, contact_reason)")
    require(counts["customers"] > 0, "the events do not name customers, so contacts cannot be linked to value",
            enable="events.customer_id")
    require(counts["reasons"] > 0, "the events carry no contact reason", enable="events.contact_reason")


def exposure_by_tier(
    tiered: pd.DataFrame,
    events,
    *,
    reasons: Mapping[str, str],
    as_of=None,
    window_days: int | None = None,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_reason: str = CONTACT_REASON,
) -> pd.DataFrame:
    """Share of each tier's customers with at least one contact whose reason is in `reasons`.

    `events`: a pandas or Ibis table (the filter and count per customer run on the engine).
    `reasons`: contact reason -> group (e.g. taxonomy.complaint_category_of_reason, or
    {reason: reason} for moments of truth). Contacts up to `as_of` (within `window_days` when
    given). Out: value_tier, group ("any" first, then groups in order of `reasons`), customers,
    exposed, share. schema.Missing without tiers, events, customer ids or contact reasons.
    """
    _require_tiers(tiered, col_customer)
    require_contacts(events, list(reasons), col_customer=col_customer, col_reason=col_reason)
    end = _end(as_of, engine.table(events), col_timestamp=col_timestamp)
    groups = [ANY, *dict.fromkeys(reasons.values())]
    hits = (_contacts(events, list(reasons), end, window_days, col_customer=col_customer,
                      col_timestamp=col_timestamp, col_reason=col_reason)
            .assign(group=lambda d: d[col_reason].map(reasons)))
    hits = pd.concat([hits, hits.assign(group=ANY)])[[col_customer, "group"]].drop_duplicates()
    tiers = tiered[[col_customer, VALUE_TIER]]
    exposed = (
        hits.merge(tiers, on=col_customer, how="inner")
        .groupby([VALUE_TIER, "group"], observed=False).size()
    )
    sizes = tiers.groupby(VALUE_TIER, observed=False).size()
    grid = pd.MultiIndex.from_product([list(tiered[VALUE_TIER].cat.categories), groups], names=[VALUE_TIER, "group"])
    return (
        pd.DataFrame(index=grid).reset_index()
        .assign(customers=lambda d: d[VALUE_TIER].map(sizes).astype("int64"),
                exposed=lambda d: pd.Series(
                    exposed.reindex(pd.MultiIndex.from_frame(d[[VALUE_TIER, "group"]])).fillna(0).to_numpy(),
                    index=d.index).astype("int64"))
        .assign(share=lambda d: d["exposed"] / d["customers"].where(d["customers"] > 0))
    )


def any_exposure(exposure: pd.DataFrame) -> pd.DataFrame:
    """The rows of exposure_by_tier for a contact of any reason: value_tier, customers, exposed, share."""
    return exposure.loc[exposure["group"] == ANY, [VALUE_TIER, "customers", "exposed", "share"]].reset_index(drop=True)


def exposure_table(exposure: pd.DataFrame, taxonomy, section: str, *, lang: str = "en",
                   any_label: str = "any") -> pd.DataFrame:
    """Exposure shares in percent (1 decimal) as a table: one row per group (its label from the
    taxonomy `section` in `lang`, `any_label` for any reason), one column per tier in tier order."""
    tiers = list(dict.fromkeys(exposure[VALUE_TIER].astype(str)))
    groups = list(dict.fromkeys(exposure["group"]))
    names = dict(zip(groups, [any_label if g == ANY else taxonomy.label(section, g, lang) for g in groups]))
    return (exposure.assign(share_pct=lambda d: (100 * d["share"]).round(1), name=lambda d: d["group"].map(names),
                            **{VALUE_TIER: lambda d: d[VALUE_TIER].astype(str)})
            .pivot(index="name", columns=VALUE_TIER, values="share_pct")
            .reindex(index=list(names.values()), columns=tiers)
            .rename_axis(index="", columns=""))


def exposure_display(exposure: pd.DataFrame, taxonomy, section: str, *, lang: str = "en", any_label: str = "any",
                     heading: str = "reason") -> pd.DataFrame:
    """`exposure_table` as the report shows it: the group in words under `heading`, one column per
    tier, shares as text in percent ('12.3%')."""
    table = exposure_table(exposure, taxonomy, section, lang=lang, any_label=any_label)
    return locale.display_table(table.reset_index(names="group_name"), lang, labels={"group_name": heading},
                                kinds={"group_name": "text", **dict.fromkeys(table.columns, "percent")})


def describe_exposure(exposure: pd.DataFrame, *, what: str, window_days: int | None, as_of) -> str:
    """One sentence: per tier the share (and count) of customers with a contact of any reason."""
    rows = any_exposure(exposure)
    span = f"the {window_days} days up to {_day(as_of).date()}" if window_days is not None else \
        f"all data up to {_day(as_of).date()}"
    return (f"Share of each tier's customers with a {what} contact in {span}: "
            + ", ".join(f"{r.value_tier} {r.share:.1%} ({r.exposed:,} of {r.customers:,})"
                        for r in rows.itertuples() if r.customers > 0) + ".")


def at_risk(
    tiered: pd.DataFrame,
    events,
    feedback: pd.DataFrame,
    *,
    high_tiers: Sequence[str],
    negative_reasons: Sequence[str],
    as_of=None,
    window_days: int = 90,
    detractor_max: int = metrics.DETRACTOR_MAX,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_reason: str = CONTACT_REASON,
    col_score: str = NPS,
) -> pd.DataFrame:
    """Valuable customers at risk: in one of `high_tiers` AND, within the `window_days` up to
    `as_of`, a contact with a reason in `negative_reasons` or a latest NPS answer <= `detractor_max`.

    `events`: a pandas or Ibis table (filtered and counted per customer on the engine). Either
    trigger may be absent (no events, or no dated NPS answers from known customers): the other
    one still flags; schema.Missing when neither can. Out, sorted by value (highest first):
    customer_id, value_tier, value, negative_contacts, last_negative_contact, latest_nps,
    detractor, trigger ("moment", "detractor" or "moment+detractor").
    """
    _require_tiers(tiered, col_customer)
    _require(tiered, [VALUE], "tiered customers")
    unknown = [t for t in high_tiers if t not in tiered[VALUE_TIER].cat.categories]
    if unknown:
        raise ValueInputError(f"at_risk: high_tiers {unknown} are not tiers {list(tiered[VALUE_TIER].cat.categories)}")
    contacts_ok = _can(require_contacts, events, list(negative_reasons), what="negative-moment",
                       col_customer=col_customer, col_reason=col_reason)
    scores_ok = (len(feedback) > 0 and {col_customer, col_timestamp, col_score} <= set(feedback.columns)
                 and (feedback[col_customer].notna() & feedback[col_timestamp].notna()
                      & feedback[col_score].notna()).any())
    require(contacts_ok or scores_ok, "neither negative-moment contacts nor dated NPS answers of known customers",
            enable="events.contact_reason with events.customer_id, or feedback.nps with customer_id and timestamp")
    end = _end(as_of, *([engine.table(events)] if contacts_ok else []), *([feedback] if scores_ok else []),
               col_timestamp=col_timestamp)
    moments = (
        _contacts(events, list(negative_reasons), end, window_days, col_customer=col_customer,
                  col_timestamp=col_timestamp, col_reason=col_reason)
        .groupby(col_customer)
        .agg(negative_contacts=("contacts", "sum"), last_negative_contact=("last_contact", "max"))
        if contacts_ok else
        pd.DataFrame({"negative_contacts": pd.Series(dtype="int64"),
                      "last_negative_contact": pd.Series(dtype="datetime64[us, UTC]")},
                     index=pd.Index([], name=col_customer, dtype="str"))
    )
    latest = (
        _window(feedback, col_timestamp, end, window_days)
        .loc[lambda d: d[col_score].notna() & d[col_customer].notna()]
        .sort_values([col_customer, col_timestamp], kind="mergesort")
        .drop_duplicates(col_customer, keep="last")
        .set_index(col_customer)[col_score].rename("latest_nps")
        if scores_ok else pd.Series(dtype="float64", name="latest_nps", index=pd.Index([], dtype="str"))
    )
    return (
        tiered.loc[lambda d: d[VALUE_TIER].isin(list(high_tiers)), [col_customer, VALUE_TIER, VALUE]]
        .merge(moments, left_on=col_customer, right_index=True, how="left")
        .merge(latest, left_on=col_customer, right_index=True, how="left")
        .assign(negative_contacts=lambda d: d["negative_contacts"].fillna(0).astype("int64"),
                detractor=lambda d: (d["latest_nps"] <= detractor_max).fillna(False).astype(bool))
        .loc[lambda d: (d["negative_contacts"] > 0) | d["detractor"]]
        .assign(trigger=lambda d: np.select(
            [(d["negative_contacts"] > 0) & d["detractor"], d["negative_contacts"] > 0],
            [TRIGGERS[2], TRIGGERS[0]], default=TRIGGERS[1]))
        .astype({"trigger": "str"})
        .sort_values([VALUE, col_customer], ascending=[False, True], ignore_index=True)
    )


def _can(check, *args, **kwargs) -> bool:
    """True when `check(*args, **kwargs)` passes, False when it raises schema.Missing."""
    try:
        check(*args, **kwargs)
    except Missing:
        return False
    return True


def risk_triggers(risk: pd.DataFrame) -> pd.Series:
    """Customers at risk per trigger, in the order of TRIGGERS (0 where none)."""
    return risk["trigger"].value_counts().reindex(list(TRIGGERS), fill_value=0).astype("int64")


def risk_summary(risk: pd.DataFrame, tiered: pd.DataFrame, *, high_tiers: Sequence[str]) -> dict:
    """{customers (in the high tiers), at_risk, share, value (of those at risk), value_share (of the
    high tiers' value), triggers {trigger: customers}}."""
    high = tiered.loc[tiered[VALUE_TIER].isin(list(high_tiers))]
    total = float(high[VALUE].sum())
    return {"customers": int(len(high)), "at_risk": int(len(risk)),
            "share": len(risk) / len(high) if len(high) else math.nan,
            "value": float(risk[VALUE].sum()), "value_share": float(risk[VALUE].sum()) / total if total > 0 else math.nan,
            "triggers": risk_triggers(risk).to_dict()}


def risk_title(summary: Mapping) -> str:
    """A figure title: how many of the high-value customers are at risk."""
    share = f" ({summary['share']:.0%})" if np.isfinite(summary["share"]) else ""
    return f"{summary['at_risk']:,} of {summary['customers']:,} high-value customers{share} are at risk"


def describe_at_risk(summary: Mapping, *, basis: str) -> str:
    """Who is at risk and the value they hold, in one or two sentences (`summary`: risk_summary)."""
    if not summary["at_risk"]:
        return f"None of the {summary['customers']:,} high-value customers is at risk in the window."
    if not summary["customers"]:
        return "No customer falls in the high tiers."
    share = f" ({summary['value_share']:.0%} of the high tiers')" if np.isfinite(summary["value_share"]) else ""
    return (f"{summary['at_risk']:,} of {summary['customers']:,} high-value customers ({summary['share']:.0%}) are at "
            f"risk. They hold {summary['value']:,.0f} € of {basis}{share}. The list below is pseudonymous; the "
            "moments-of-truth stage writes the consent-gated contact list.")


def at_risk_table(risk: pd.DataFrame, k: int = 20) -> pd.DataFrame:
    """The first `k` customers at risk with the date of their last negative contact and value to 2 decimals."""
    return (risk.head(k)
            .assign(last_negative_contact=lambda d: d["last_negative_contact"].dt.date.astype("str")
                    .where(d["last_negative_contact"].notna(), ""))
            .round({VALUE: 2}))
