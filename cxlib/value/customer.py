"""Value per customer: predicted CLV with its holdout check, or net revenue to date when the data
cannot support the model, and what the report shows of it.

    res = customer_value(orders, hist, horizon_months=12, annual_discount_rate=0.1, categories=["add-ons"])
    res.customers   # customer_id, orders, revenue, ..., clv, clv_low, clv_high, value, value_basis
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxlib.schema import CATEGORY, CUSTOMER_ID, REVENUE, Missing, require
from cxlib.value.base import (
    BASIS_CLV, BASIS_PLUS, BASIS_REVENUE, CLV, CLV_HIGH, CLV_LOW, ENABLE_ORDERS, EXPECTED_PURCHASES, EXPECTED_SPEND,
    ORDERS, P_ALIVE, RECENCY_DAYS, TENURE_DAYS, VALUE, VALUE_BASIS, ModelUnsupported, as_of_day, require_purchases,
)
from cxlib.value.clv import clv_draws, clv_summary, draws_table, draws_total, fit_clv, holdout_check


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
    details: dict = field(default_factory=dict)  # what the messages say, for the report in either language:
    # {unsupported, holdout_unsupported (ModelUnsupported or None), categories, absent_categories,
    #  customers, repeat_buyers, horizon_months, annual_discount_rate}


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
    note, absent = "", []
    if categories and not set(categories) & seen:
        absent = categories
        note = (f" None of the CLV categories ({', '.join(categories)}) occurs in the orders, so the model covers all "
                "orders.")
        categories = []
    details = {"absent_categories": tuple(absent), "categories": tuple(categories), "horizon_months": horizon_months,
               "annual_discount_rate": annual_discount_rate, "unsupported": None, "holdout_unsupported": None}
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
            message=f"Model not supported: {exc}.{note}", details={**details, "unsupported": exc},
        )
    draws = clv_draws(fit, summary, horizon_months=horizon_months, annual_discount_rate=annual_discount_rate)
    predicted, total = draws_table(draws, interval), draws_total(draws, interval)
    fitted = {"name": fit.name, "params": fit.params, "customers": fit.customers, "repeat_buyers": fit.repeat_buyers,
              "fitted_customers": fit.fitted_customers}
    del fit, draws                      # the models hold a copy of their data: let them go before the holdout fit
    holdout, holdout_message, holdout_unsupported = None, "", None
    if holdout_months:
        try:
            holdout = holdout_check(orders, holdout_months=holdout_months, as_of=end, method="map",
                                    min_repeat_buyers=min_repeat_buyers, seed=seed)
        except ModelUnsupported as exc:       # the model of all data stands; only its check is missing
            holdout_message, holdout_unsupported = holdout_reason(exc), exc
    merged = base.merge(predicted, on=CUSTOMER_ID, how="left", validate="one_to_one")
    scope = f" of {', '.join(categories)} purchases" if categories else ""
    return CustomerValue(
        customers=(merged.assign(**{VALUE: merged[REVENUE] + merged[CLV].fillna(0.0),
                                    VALUE_BASIS: BASIS_PLUS}) if categories
                   else merged.assign(**{VALUE: merged[CLV], VALUE_BASIS: BASIS_CLV})),
        status="fitted", model=fitted["name"],
        message=(f"Fitted on {fitted['customers']:,} customers{scope}, {fitted['repeat_buyers']:,} of them repeat "
                 f"buyers; CLV over {horizon_months} months at {annual_discount_rate:.0%} a year discount"
                 + ("; value = net revenue to date + predicted CLV of these purchases." if categories else ".")
                 + (f" The model was fitted on a random sample of {fitted['fitted_customers']:,} of them."
                    if fitted["fitted_customers"] < fitted["customers"] else "")
                 + note),
        params=fitted["params"], total=total, holdout=holdout, holdout_message=holdout_message,
        details={**details, "holdout_unsupported": holdout_unsupported, "customers": fitted["customers"],
                 "repeat_buyers": fitted["repeat_buyers"], "fitted_customers": fitted["fitted_customers"]},
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


def require_values(res: CustomerValue, orders: pd.DataFrame, historic: pd.DataFrame) -> None:
    """Raise schema.Missing when no customer could be valued (see require_purchases)."""
    require_purchases(orders, historic)
    require(len(res.customers), "no customer with a purchase to value", enable=ENABLE_ORDERS)


def top_customers(res: CustomerValue, k: int = 10) -> pd.DataFrame:
    """The `k` customers of highest value: customer_id, orders, revenue and the prediction columns
    (fitted model) or tenure and recency (fallback), rounded to 2 decimals."""
    extra = ([EXPECTED_PURCHASES, P_ALIVE, EXPECTED_SPEND, CLV, CLV_LOW, CLV_HIGH] if res.status == "fitted"
             else [TENURE_DAYS, RECENCY_DAYS])
    if res.status == "fitted" and res.customers[CLV_LOW].isna().all():
        extra = [c for c in extra if c not in (CLV_LOW, CLV_HIGH)]   # a MAP fit has no intervals
    return (res.customers.sort_values([VALUE, CUSTOMER_ID], ascending=[False, True])
            .head(k)[[CUSTOMER_ID, ORDERS, REVENUE, *extra, VALUE]].round(2).reset_index(drop=True))


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

