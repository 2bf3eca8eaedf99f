"""Predicted customer lifetime value: the BTYD summary, the BG/NBD + Gamma-Gamma fit, predictions
and the holdout check.

- Predicted CLV = sum over the next `horizon_months` months of expected purchases (BG/NBD)
  times expected spend per purchase (Gamma-Gamma), discounted per month at the monthly rate
  equivalent to `annual_discount_rate`. Repeat purchases are counted per purchase day
  (several orders on one day are one purchase occasion with their revenue summed), as the
  BTYD literature does. A month is 365.25 / 12 days. CLV is gross of future returns.
- Model library: pymc-marketing's BetaGeoModel and GammaGammaModel (0.19.x, the last line for
  Python 3.11), chosen over `lifetimes` (archived, last release 2020) and an own MLE (no
  maintained model code, no posterior for intervals). Cost, measured on the 2-core dev machine:
  ~640 MB installed with PyMC/PyTensor, import ~11 s, a MAP fit of ~4,300 customers ~20 s the
  first time (PyTensor compile; the holdout refit and prediction ~16 s more). It is imported
  inside `fit_clv` after the data checks, so a run that falls back never pays the import.
- Memory does not grow with the customers beyond their summary: the models are fitted on a
  seeded random sample of at most `MAX_FIT_CUSTOMERS` customers (seven parameters in all, which
  half a million customers pin down; the model holds a copy of its data, 0.5 GB per million),
  and the predictions run `CHUNK_CUSTOMERS` customers at a time (each customer's prediction
  depends only on the parameters and their own history).

    summary = clv_summary(orders, as_of="2024-06-30")
    fit = fit_clv(summary)                       # ModelUnsupported when the data cannot carry it
    predict_clv(fit, summary, horizon_months=12, annual_discount_rate=0.1)
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxlib.schema import CUSTOMER_ID, REVENUE, STATUS, TIMESTAMP
from cxlib.value.base import (
    CLV, CLV_HIGH, CLV_LOW, DAYS_PER_MONTH, EXPECTED_PURCHASES, EXPECTED_SPEND, FIT_METHODS, FREQUENCY, MODEL_NAME,
    MONETARY, P_ALIVE, PARAM_RANGE, RECENCY, T, ModelUnsupported, ValueInputError, as_of_day, purchases,
    require_columns, whole_days,
)

MAX_FIT_CUSTOMERS = 500_000     # customers the models are fitted on at most (a seeded random sample of more)
CHUNK_CUSTOMERS = 250_000       # customers predicted at a time


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
            RECENCY: lambda d: whole_days(d["_last"] - d["_first"]),
            T: lambda d: whole_days(end - d["_first"]),
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
    customers: int                 # customers of the summary (all, also when fitted on a sample)
    repeat_buyers: int
    fitted_customers: int = 0      # customers the models were fitted on (a random sample when fewer than `customers`)


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
                               "historic value is used", "non_finite")
    degenerate = params.loc[lambda d: (d["estimate"] < PARAM_RANGE[0]) | (d["estimate"] > PARAM_RANGE[1])]
    if len(degenerate):
        shown = ", ".join(f"{r.model} {r.parameter} = {r.estimate:.2g}" for r in degenerate.itertuples())
        raise ModelUnsupported(f"the model fit is degenerate ({shown}): the repeat purchases are too few or too "
                               "uniform to estimate it; historic value is used", "degenerate", shown=shown)
    q = params.loc[lambda d: d["parameter"] == "q", "estimate"]
    if len(q) and q.iloc[0] <= 1:
        raise ModelUnsupported(f"Gamma-Gamma q = {q.iloc[0]:.2f} <= 1: mean spend is undefined for these data; "
                               "historic value is used", "spend_undefined", q=float(q.iloc[0]))


def fit_clv(
    summary: pd.DataFrame,
    *,
    method: str = "map",
    min_repeat_buyers: int = 50,
    draws: int = 300,
    tune: int = 300,
    chains: int = 2,
    seed: int = 0,
    max_customers: int | None = None,
) -> ClvFit:
    """Fit BG/NBD to frequency/recency/T and Gamma-Gamma to the spend of repeat buyers (on a
    random sample of `max_customers` customers, seeded by `seed`, when there are more; default
    `MAX_FIT_CUSTOMERS`; the checks below look at all of them).

    In: clv_summary output. `method`: "map" (point estimates, seconds) or "mcmc" (NUTS,
    `chains` x `draws` posterior draws, gives 90% intervals). Raises ModelUnsupported when
    fewer than `min_repeat_buyers` customers bought again, when no customer bought on more than
    two days (dropout after a repeat purchase would be estimated as certain), or when the fit
    gives unusable parameters (see check_params).
    """
    require_columns(summary, [CUSTOMER_ID, FREQUENCY, RECENCY, T, MONETARY], "clv summary")
    max_customers = MAX_FIT_CUSTOMERS if max_customers is None else int(max_customers)
    if max_customers < 1:
        raise ValueInputError(f"max_customers must be at least 1, got {max_customers}")
    if method not in FIT_METHODS:
        raise ValueInputError(f"clv fit method must be one of {FIT_METHODS}, got {method!r}")
    n = len(summary)
    repeat = summary.loc[lambda d: (d[FREQUENCY] > 0) & (d[MONETARY] > 0)]
    if len(repeat) < max(min_repeat_buyers, 1):
        raise ModelUnsupported(
            f"only {len(repeat):,} of {n:,} customers bought again (the model needs at least "
            f"{min_repeat_buyers:,} repeat buyers): predicted CLV is not computed, historic value is used",
            "few_repeat_buyers", repeat=len(repeat), customers=n, needed=min_repeat_buyers)
    if repeat[FREQUENCY].max() < 2:
        raise ModelUnsupported(
            f"no customer bought on more than two days ({len(repeat):,} of {n:,} bought exactly twice): the "
            "BG/NBD dropout estimate would run to certainty (a degenerate fit); historic value is used",
            "no_third_purchase", repeat=len(repeat), customers=n)
    bad = summary.loc[lambda d: (d[RECENCY] > d[T]) | (d[RECENCY] < 0) | (d[FREQUENCY] < 0)]
    if len(bad):
        raise ValueInputError(f"clv summary: recency must lie in [0, T]; first rows: {bad.head(3).to_dict('records')}")

    with warnings.catch_warnings():  # import first: pymc sets its logger's level on import
        warnings.simplefilter("ignore")
        import pymc_marketing
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    fitted = summary
    if n > max_customers:               # a seeded random sample, in the summary's order
        fitted = summary.iloc[np.sort(np.random.default_rng(seed).choice(n, max_customers, replace=False))]
    fitted_repeat = fitted.loc[lambda d: (d[FREQUENCY] > 0) & (d[MONETARY] > 0)]
    with _quiet():
        data = fitted[[CUSTOMER_ID, FREQUENCY, RECENCY, T]].reset_index(drop=True)
        spend_data = fitted_repeat[[CUSTOMER_ID, FREQUENCY, MONETARY]].reset_index(drop=True)
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
        customers=n, repeat_buyers=len(repeat), fitted_customers=len(fitted),
    )


def _draws(x, ids: pd.Series) -> np.ndarray:
    """An xarray result as an array (samples, customers), customers in the order of `ids`."""
    x = x.sel(customer_id=ids.to_numpy()).transpose(..., "customer_id")
    return np.asarray(x).reshape(-1, len(ids))


def _chunks(data: pd.DataFrame, chunk: int):
    """`data` (0..n-1 index) `chunk` customers at a time."""
    if chunk < 1:
        raise ValueInputError(f"chunk must be at least 1, got {chunk}")
    return (data.iloc[i:i + chunk] for i in range(0, len(data), chunk))


def expected_purchases(fit: ClvFit, summary: pd.DataFrame, *, days: float, chunk: int | None = None) -> pd.DataFrame:
    """Expected repeat purchases per customer in the next `days` days (posterior mean), `chunk`
    customers at a time (default `CHUNK_CUSTOMERS`). Out: customer_id, expected_purchases."""
    data = summary[[CUSTOMER_ID, FREQUENCY, RECENCY, T]].reset_index(drop=True)
    means = [np.zeros(0)]
    with _quiet():
        for part in _chunks(data, CHUNK_CUSTOMERS if chunk is None else chunk):
            means.append(_draws(fit.purchase_model.expected_purchases(data=part, future_t=days), part[CUSTOMER_ID]).mean(axis=0))
    return data[[CUSTOMER_ID]].assign(**{EXPECTED_PURCHASES: np.concatenate(means)})


def clv_draws(fit: ClvFit, summary: pd.DataFrame, *, horizon_months: int, annual_discount_rate: float,
              chunk: int | None = None) -> dict:
    """Posterior draws (samples, customers) of horizon purchases, spend, P(alive) and CLV, discounted
    monthly: {ids, purchases, spend, p_alive, clv} (a MAP fit has one sample). Computed `chunk`
    customers at a time (default `CHUNK_CUSTOMERS`): the model's intermediate arrays stay that size."""
    require_columns(summary, [CUSTOMER_ID, FREQUENCY, RECENCY, T, MONETARY], "clv summary")
    if not isinstance(horizon_months, int) or horizon_months < 1:
        raise ValueInputError(f"horizon_months must be an integer >= 1, got {horizon_months!r}")
    if annual_discount_rate <= -1:
        raise ValueInputError(f"annual_discount_rate must be > -1, got {annual_discount_rate}")
    data = summary[[CUSTOMER_ID, FREQUENCY, RECENCY, T, MONETARY]].reset_index(drop=True)
    monthly = (1 + annual_discount_rate) ** (1 / 12) - 1
    discount = (1 + monthly) ** -np.arange(1, horizon_months + 1)
    parts = []
    with _quiet():
        for part in _chunks(data, CHUNK_CUSTOMERS if chunk is None else chunk):
            ids = part[CUSTOMER_ID]
            # a loop over months; each step is vectorised over customers and draws
            cumulative = np.stack([
                _draws(fit.purchase_model.expected_purchases(data=part, future_t=m * DAYS_PER_MONTH), ids)
                for m in range(horizon_months + 1)
            ])  # (months + 1, samples, customers)
            spend = _draws(fit.spend_model.expected_customer_spend(data=part), ids)
            p_alive = _draws(fit.purchase_model.expected_probability_alive(data=part), ids)
            clv = np.einsum("m,msc->sc", discount, np.diff(cumulative, axis=0)) * spend
            parts.append({"purchases": cumulative[-1], "spend": spend, "p_alive": p_alive, "clv": clv})
    joined = {k: np.concatenate([p[k] for p in parts], axis=1) if parts else np.zeros((1, 0))
              for k in ("purchases", "spend", "p_alive", "clv")}
    return {"ids": data[CUSTOMER_ID], **joined}


def _interval(draws: np.ndarray, interval: float, axis: int = 0) -> tuple:
    if draws.shape[axis] < 2:
        shape = np.delete(np.array(draws.shape), axis)
        return np.full(shape, np.nan), np.full(shape, np.nan)
    lo = (1 - interval) / 2
    return np.quantile(draws, lo, axis=axis), np.quantile(draws, 1 - lo, axis=axis)


def draws_table(d: dict, interval: float = 0.9) -> pd.DataFrame:
    """Per customer from `clv_draws`: customer_id, expected_purchases, p_alive, expected_spend, clv (means),
    clv_low, clv_high (central `interval` of the draws; NaN with one sample)."""
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


def draws_total(d: dict, interval: float = 0.9) -> dict:
    """Total CLV of all customers of `clv_draws`: {total, total_low, total_high} (NaN ends with one sample)."""
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
    return draws_table(clv_draws(fit, summary, horizon_months=horizon_months, annual_discount_rate=annual_discount_rate),
                       interval)


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
        expected_purchases(fit, calibration, days=whole_days(pd.Series([end - cal_end])).iloc[0])
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
        .assign(model=fit.name, holdout_days=whole_days(pd.Series([end - cal_end])).iloc[0])
    )


