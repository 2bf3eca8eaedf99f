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

from cxlib import metrics
from cxlib.schema import (
    CATEGORY,
    CONTACT_REASON,
    CUSTOMER_ID,
    NPS,
    ORDER_STATUSES,
    REVENUE,
    STATUS,
    TIMESTAMP,
)

COMPLETED = ORDER_STATUSES[0]
DAYS_PER_MONTH = 365.25 / 12
DAY = pd.Timedelta(days=1)

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


def as_of_day(orders: pd.DataFrame, as_of=None, *, col_timestamp: str = TIMESTAMP) -> pd.Timestamp:
    """`as_of` as midnight UTC of its day; None -> the day of the latest order."""
    if as_of is not None and not (isinstance(as_of, str) and as_of == ""):
        return _day(as_of)
    if orders.empty or orders[col_timestamp].isna().all():
        raise ValueInputError("orders: no timestamps to derive as_of from; pass as_of explicitly")
    return _day(orders[col_timestamp].max())


def analysis_day(as_of, *tables: pd.DataFrame, col_timestamp: str = TIMESTAMP) -> pd.Timestamp:
    """The analysis date as midnight UTC: `as_of` when given (not None or ""), otherwise the
    latest day in any of `tables` (e.g. orders, events, feedback: the end of the data).
        analysis_day("", orders, events, feedback) -> Timestamp('2025-12-31 00:00:00+0000', tz='UTC')
    """
    if as_of is not None and as_of != "":
        return _day(as_of)
    latest = [t[col_timestamp].max() for t in tables if len(t) and t[col_timestamp].notna().any()]
    if not latest:
        raise ValueInputError("no timestamps to derive the analysis date from; pass as_of explicitly")
    return _day(max(latest))


def _days(delta: pd.Series) -> pd.Series:
    return (delta / DAY).astype("float64")


def purchases(
    orders: pd.DataFrame,
    *,
    as_of=None,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_revenue: str = REVENUE,
    col_status: str = STATUS,
) -> pd.DataFrame:
    """Completed orders up to and including the `as_of` day, with `is_purchase` (revenue > 0),
    `day` (UTC day) and `revenue` filled with 0 where missing. Input columns are kept."""
    _require(orders, [col_customer, col_timestamp, col_revenue, col_status], "orders")
    end = as_of_day(orders, as_of, col_timestamp=col_timestamp)
    return (
        orders.loc[lambda d: d[col_status].eq(COMPLETED).fillna(False).astype(bool)
                   & (d[col_timestamp] < end + DAY).fillna(False).astype(bool)]
        .assign(
            day=lambda d: d[col_timestamp].dt.tz_convert("UTC").dt.floor("D"),
            is_purchase=lambda d: d[col_revenue].fillna(0.0) > 0,
            **{col_revenue: lambda d: d[col_revenue].fillna(0.0).astype("float64")},
        )
    )


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
    extra = {REVENUE: (REVENUE, "sum")} if REVENUE in tiered.columns else {}
    return (
        tiered.groupby(VALUE_TIER, observed=False, sort=True)
        .agg(customers=(col_customer, "size"), value_total=(VALUE, "sum"), value_mean=(VALUE, "mean"),
             value_min=(VALUE, "min"), value_max=(VALUE, "max"), **extra)
        .reset_index()
        .assign(value_share=lambda d: d["value_total"] / d["value_total"].sum(),
                **{VALUE_TIER: lambda d: d[VALUE_TIER].astype(str)})
    )


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
    if categories:
        _require(orders, [col_category], "orders")
        unknown = sorted(set(categories) - set(orders[col_category].dropna().astype(str)))
        if len(unknown) == len(categories):
            raise ValueInputError(f"orders: column {col_category!r} has none of the CLV categories {categories}; "
                                  f"values seen: {sorted(orders[col_category].dropna().astype(str).unique())[:10]} "
                                  "(name the repeat-purchase categories of your orders, or none to model all orders)")
        orders = orders.loc[orders[col_category].isin(categories)]
    summary = clv_summary(orders, as_of=end)
    try:
        fit = fit_clv(summary, method=method, min_repeat_buyers=min_repeat_buyers, draws=draws, tune=draws,
                      seed=seed)
    except ModelUnsupported as exc:
        empty = {c: np.nan for c in (EXPECTED_PURCHASES, P_ALIVE, EXPECTED_SPEND, CLV, CLV_LOW, CLV_HIGH)}
        return CustomerValue(
            customers=base.assign(**empty, **{VALUE: base[REVENUE], VALUE_BASIS: "historic_revenue"}),
            status="unsupported", model="historic revenue (fallback)",
            message=f"Model not supported: {exc}.",
        )
    draws = _clv_draws(fit, summary, horizon_months, annual_discount_rate)
    predicted = _predictions(draws, interval)
    holdout, holdout_message = None, ""
    if holdout_months:
        try:
            holdout = holdout_check(orders, holdout_months=holdout_months, as_of=end, method="map",
                                    min_repeat_buyers=min_repeat_buyers, seed=seed)
        except ModelUnsupported as exc:
            holdout_message = f"Holdout check not possible: {exc}."
    merged = base.merge(predicted, on=CUSTOMER_ID, how="left", validate="one_to_one")
    scope = f" of {', '.join(categories)} purchases" if categories else ""
    return CustomerValue(
        customers=(merged.assign(**{VALUE: merged[REVENUE] + merged[CLV].fillna(0.0),
                                    VALUE_BASIS: "revenue_plus_predicted_clv"}) if categories
                   else merged.assign(**{VALUE: merged[CLV], VALUE_BASIS: "predicted_clv"})),
        status="fitted", model=fit.name,
        message=(f"Fitted on {fit.customers:,} customers{scope}, {fit.repeat_buyers:,} of them repeat "
                 f"buyers; CLV over {horizon_months} months at {annual_discount_rate:.0%} a year discount"
                 + ("; value = net revenue to date + predicted CLV of these purchases." if categories else ".")),
        params=fit.params, total=_total(draws, interval), holdout=holdout, holdout_message=holdout_message,
    )


def clv_distribution(value: CustomerValue) -> dict:
    """Headline numbers of the value per customer: {basis, model, status, customers, mean,
    median, p90, total, total_low, total_high}."""
    v = value.customers[VALUE]
    plus = len(v) and value.customers[VALUE_BASIS].iloc[0] == "revenue_plus_predicted_clv"
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
    if d["basis"] == "revenue_plus_predicted_clv":
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


# --- customer experience by value tier ------------------------------------------------------
def _window(df: pd.DataFrame, col_time: str, as_of: pd.Timestamp, window_days: int | None) -> pd.DataFrame:
    """Rows on days in (as_of - window_days, as_of] (all rows up to as_of when window_days is None)."""
    day = df[col_time].dt.tz_convert("UTC").dt.floor("D")
    start = as_of - pd.Timedelta(days=window_days) if window_days is not None else None
    mask = (day <= as_of) & ((day > start) if start is not None else True)
    return df.loc[mask]


def nps_by_tier(
    feedback: pd.DataFrame,
    tiered: pd.DataFrame,
    *,
    as_of=None,
    window_days: int | None = None,
    min_n: int = 30,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_score: str = NPS,
) -> pd.DataFrame:
    """NPS per value tier (metrics.kpi_by): responses of tiered customers up to `as_of`
    (within `window_days` when given). Out: value_tier, n, value, ci_low, ci_high, small, ...
    in tier order; tiers without responses have n = 0."""
    _require(feedback, [col_customer, col_timestamp, col_score], "feedback")
    _require(tiered, [col_customer, VALUE_TIER], "tiered customers")
    end = _day(as_of) if as_of is not None else _day(feedback[col_timestamp].max())
    answered = (
        _window(feedback, col_timestamp, end, window_days)
        .loc[lambda d: d[col_score].notna()]
        .merge(tiered[[col_customer, VALUE_TIER]].assign(**{VALUE_TIER: lambda d: d[VALUE_TIER].astype(str)}),
               on=col_customer, how="inner")
    )
    labels = list(tiered[VALUE_TIER].cat.categories)
    table = metrics.kpi_by(answered, [VALUE_TIER], kpi=NPS, min_n=min_n, col_score=col_score) if len(answered) \
        else pd.DataFrame({VALUE_TIER: pd.Series([], dtype="str"), "n": pd.Series([], dtype="int64")})
    return (
        pd.DataFrame({VALUE_TIER: labels})
        .merge(table, on=VALUE_TIER, how="left")
        .assign(n=lambda d: d["n"].fillna(0).astype("int64"))
    )


def exposure_by_tier(
    tiered: pd.DataFrame,
    events: pd.DataFrame,
    *,
    reasons: Mapping[str, str],
    as_of=None,
    window_days: int | None = None,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_reason: str = CONTACT_REASON,
) -> pd.DataFrame:
    """Share of each tier's customers with at least one contact whose reason is in `reasons`.

    `reasons`: contact reason -> group (e.g. taxonomy.complaint_category_of_reason, or
    {reason: reason} for moments of truth). Contacts up to `as_of` (within `window_days` when
    given). Out: value_tier, group ("any" first, then groups in order of `reasons`), customers,
    exposed, share.
    """
    _require(events, [col_customer, col_timestamp, col_reason], "events")
    _require(tiered, [col_customer, VALUE_TIER], "tiered customers")
    end = _day(as_of) if as_of is not None else _day(events[col_timestamp].max())
    groups = ["any", *dict.fromkeys(reasons.values())]
    hits = (
        _window(events, col_timestamp, end, window_days)
        .loc[lambda d: d[col_reason].isin(list(reasons)), [col_customer, col_reason]]
        .assign(group=lambda d: d[col_reason].map(reasons))
    )
    hits = pd.concat([hits, hits.assign(group="any")])[[col_customer, "group"]].drop_duplicates()
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


def at_risk(
    tiered: pd.DataFrame,
    events: pd.DataFrame,
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

    Out, sorted by value (highest first): customer_id, value_tier, value, negative_contacts,
    last_negative_contact, latest_nps, detractor, trigger ("moment", "detractor" or
    "moment+detractor").
    """
    _require(tiered, [col_customer, VALUE_TIER, VALUE], "tiered customers")
    _require(events, [col_customer, col_timestamp, col_reason], "events")
    _require(feedback, [col_customer, col_timestamp, col_score], "feedback")
    unknown = [t for t in high_tiers if t not in tiered[VALUE_TIER].cat.categories]
    if unknown:
        raise ValueInputError(f"at_risk: high_tiers {unknown} are not tiers {list(tiered[VALUE_TIER].cat.categories)}")
    end = _day(as_of) if as_of is not None else _day(max(events[col_timestamp].max(), feedback[col_timestamp].max()))
    moments = (
        _window(events, col_timestamp, end, window_days)
        .loc[lambda d: d[col_reason].isin(list(negative_reasons))]
        .groupby(col_customer)
        .agg(negative_contacts=(col_timestamp, "size"), last_negative_contact=(col_timestamp, "max"))
    )
    latest = (
        _window(feedback, col_timestamp, end, window_days)
        .loc[lambda d: d[col_score].notna()]
        .sort_values([col_customer, col_timestamp], kind="mergesort")
        .drop_duplicates(col_customer, keep="last")
        .set_index(col_customer)[col_score].rename("latest_nps")
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
            ["moment+detractor", "moment"], default="detractor"))
        .astype({"trigger": "str"})
        .sort_values([VALUE, col_customer], ascending=[False, True], ignore_index=True)
    )
