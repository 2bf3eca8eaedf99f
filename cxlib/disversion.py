"""Disversion rate: regular customers over all customers, per month and per campaign.

A regular customer has at least `min_orders` completed orders in the `window_days` up to a day.
Per month the rate comes with a Wilson interval; per campaign, recipients who were not yet
regular are compared with comparable non-recipients (same segment and tenure band) over the
`follow_days` after it.

    monthly = disversion_by_month(customers, orders, min_orders=2, window_days=365)
    by_campaign = campaign_disversion(sends, customers, orders, follow_days=180)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from cxlib import metrics
from cxlib.occasions import TIMEZONE, local_day
from cxlib.schema import CAMPAIGN_ID, CHURN_DATE, CUSTOMER_ID, SEGMENT, SIGNUP_DATE, STATUS, TIMESTAMP, Missing


def _purchases(orders: pd.DataFrame | None, timezone: str) -> pd.DataFrame:
    """Completed (or status-less) orders as customer_id, day (local)."""
    if orders is None or len(orders) == 0:
        return pd.DataFrame({CUSTOMER_ID: pd.Series(dtype="str"), "day": pd.Series(dtype="datetime64[us]")})
    done = orders.loc[orders[STATUS].fillna("completed").eq("completed")] if STATUS in orders.columns else orders
    return pd.DataFrame({CUSTOMER_ID: done[CUSTOMER_ID].astype("str").to_numpy(),
                         "day": local_day(done[TIMESTAMP], timezone).to_numpy()})


class _Counter:
    """Orders per customer in a day range, by binary search on (customer, day) keys."""

    def __init__(self, purchases: pd.DataFrame, ids: pd.Series):
        self.codes = {c: i for i, c in enumerate(pd.unique(ids.astype("str")))}
        code = purchases[CUSTOMER_ID].map(self.codes)
        keep = code.notna().to_numpy()
        days = purchases["day"].to_numpy().astype("datetime64[D]").astype("int64")[keep]
        self.keys = np.sort(code.to_numpy()[keep].astype("int64") * 10**6 + days)

    def between(self, ids: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> np.ndarray:
        """Orders of each customer with lo < day <= hi."""
        code = ids.astype("str").map(self.codes).to_numpy().astype("int64") * 10**6
        d = lambda t: int(np.datetime64(t.date(), "D").astype("int64"))      # noqa: E731
        return np.searchsorted(self.keys, code + d(hi), side="right") - np.searchsorted(self.keys, code + d(lo), side="right")


def _active_mask(customers: pd.DataFrame, day: pd.Timestamp, timezone: str) -> np.ndarray:
    signup = local_day(customers[SIGNUP_DATE], timezone) if SIGNUP_DATE in customers.columns else None
    churn = local_day(customers[CHURN_DATE], timezone) if CHURN_DATE in customers.columns else None
    ok = np.ones(len(customers), dtype=bool)
    if signup is not None:
        ok &= (signup <= day).fillna(False).to_numpy(dtype=bool)
    if churn is not None:
        ok &= ~(churn <= day).fillna(False).to_numpy(dtype=bool)
    return ok


def disversion_by_month(customers: pd.DataFrame, orders: pd.DataFrame | None, *, min_orders: int = 2,
                        window_days: int = 365, timezone: str = TIMEZONE, confidence: float = 0.95) -> pd.DataFrame:
    """Disversion rate per month: active customers at the month's end with at least `min_orders`
    completed orders in the `window_days` up to it (regular customers), over all active customers.
    Only months with a full look-back window inside the order history are shown.
    Out: month ('YYYY-MM'), customers, regular, rate, ci_low, ci_high. `schema.Missing` without
    dated orders or when the history is shorter than the window."""
    bought = _purchases(orders, timezone)
    if bought.empty:
        raise Missing("no completed orders", enable="orders (customer_id, timestamp, status)")
    first, last = bought["day"].min(), bought["day"].max()
    ends = pd.date_range(first + pd.Timedelta(days=window_days), last, freq="ME")
    if len(ends) == 0:
        raise Missing(f"the order history is shorter than the {window_days}-day window of a regular customer",
                      enable=f"orders over more than {window_days} days")
    counter = _Counter(bought, customers[CUSTOMER_ID])
    rows = []
    for end in ends:                                     # one vectorised pass per month
        active = customers.loc[_active_mask(customers, end, timezone), CUSTOMER_ID]
        regular = counter.between(active, end - pd.Timedelta(days=window_days), end) >= min_orders
        rows.append({"month": end.strftime("%Y-%m"), "customers": int(len(active)), "regular": int(regular.sum())})
    out = pd.DataFrame(rows)
    low, high = metrics.wilson_interval(out["regular"], out["customers"], confidence=confidence)
    return out.assign(rate=out["regular"] / out["customers"].where(out["customers"] > 0), ci_low=low, ci_high=high)


def disversion_trend(monthly: pd.DataFrame, *, confidence: float = 0.95) -> dict:
    """Change of the disversion rate from the first to the last month shown, in points, with
    Newcombe's interval (as if independent: conservative, the same customers are in both).
    Out: first_month, last_month, first_rate, last_rate, difference, ci_low, ci_high, p_value."""
    if len(monthly) < 2:
        raise Missing("fewer than two months with a full look-back window", enable="a longer order history")
    a, b = monthly.iloc[0], monthly.iloc[-1]
    d = metrics.proportion_difference(b["regular"], b["customers"], a["regular"], a["customers"], confidence=confidence).iloc[0]
    return {"first_month": a["month"], "last_month": b["month"], "first_rate": float(a["rate"]), "last_rate": float(b["rate"]),
            "difference": float(d["difference"]), "ci_low": float(d["ci_low"]), "ci_high": float(d["ci_high"]),
            "p_value": float(d["p_value"])}


def campaign_disversion(sends: pd.DataFrame, customers: pd.DataFrame, orders: pd.DataFrame | None, *, follow_days: int = 180,
                        window_days: int = 365, min_orders: int = 2, tenure_years: Sequence[float] = (1, 3, 5),
                        min_n: int = 30, alpha: float = 0.05, timezone: str = TIMEZONE,
                        confidence: float = 0.95) -> pd.DataFrame:
    """Did a campaign's recipients become regular customers more often than comparable
    non-recipients? Per campaign (day d = its median send day; campaigns whose d + follow_days
    lies after the last order are left out): among customers active and not regular at d, the
    share regular at d + follow_days, recipients against non-recipients standardised to the
    recipients' mix of segment x tenure band (years since signup, limits `tenure_years`).
    The last row pools all campaigns (strata by campaign too).
    Out: campaign_id, day, recipients, rate, matched_rate, difference (points), ci_low, ci_high,
    p_value, significant (Benjamini-Hochberg at alpha; fewer than min_n recipients: never)."""
    bought = _purchases(orders, timezone)
    if bought.empty:
        raise Missing("no completed orders", enable="orders (customer_id, timestamp, status)")
    last = bought["day"].max()
    counter = _Counter(bought, customers[CUSTOMER_ID])
    ids = customers[CUSTOMER_ID].astype("str")
    seg = customers[SEGMENT].fillna("unknown").astype("str") if SEGMENT in customers.columns else pd.Series("all", index=customers.index)
    signup = local_day(customers[SIGNUP_DATE], timezone) if SIGNUP_DATE in customers.columns else pd.Series(pd.NaT, index=customers.index)
    days = sends.groupby(CAMPAIGN_ID)["send_day"].median().dt.normalize()
    days = days.loc[days + pd.Timedelta(days=follow_days) <= last]
    if days.empty:
        raise Missing(f"no campaign with {follow_days} days of orders after it", enable="orders after the campaigns")
    strata = []
    for campaign, day in days.items():                   # one vectorised pass per campaign
        pop = _active_mask(customers, day, timezone)
        pop &= counter.between(ids, day - pd.Timedelta(days=window_days), day) < min_orders
        after = day + pd.Timedelta(days=follow_days)
        became = counter.between(ids, after - pd.Timedelta(days=window_days), after) >= min_orders
        tenure = np.searchsorted(np.asarray(tenure_years, float), ((day - signup).dt.days / 365.25).fillna(0).to_numpy(), side="right")
        got = ids.isin(sends.loc[sends[CAMPAIGN_ID] == campaign, CUSTOMER_ID])
        frame = pd.DataFrame({"_s": seg.to_numpy(), "_t": tenure, "_x": got.to_numpy(), "_y": became})[pop]
        agg = frame.groupby(["_s", "_t", "_x"])["_y"].agg(["sum", "size"]).unstack("_x", fill_value=0)
        if (("size", True) not in agg.columns) or (("size", False) not in agg.columns):
            continue
        strata.append(pd.DataFrame({CAMPAIGN_ID: campaign, "day": day, "k1": agg[("sum", True)], "n1": agg[("size", True)],
                                    "k0": agg[("sum", False)], "n0": agg[("size", False)]}).reset_index(drop=True))
    if not strata:
        raise Missing("no campaign had both recipients and comparable non-recipients", enable="campaigns to part of the customers")
    s = pd.concat(strata, ignore_index=True)
    rows = [_standardised(part, confidence) | {CAMPAIGN_ID: c, "day": part["day"].iloc[0]} for c, part in s.groupby(CAMPAIGN_ID, sort=False)]
    out = pd.DataFrame(rows)
    out = out.assign(**metrics.benjamini_hochberg(out["p_value"].where(out["recipients"] >= min_n), alpha=alpha)[["significant"]]
                     .fillna(False).astype(bool).set_index(out.index))
    pooled = _standardised(s, confidence) | {CAMPAIGN_ID: "all campaigns", "day": pd.NaT, "significant": False}
    pooled["significant"] = bool(pooled["p_value"] < alpha)
    out = pd.concat([out.sort_values("day", kind="stable"), pd.DataFrame([pooled])], ignore_index=True)
    return out.loc[:, [CAMPAIGN_ID, "day", "recipients", "rate", "matched_rate", "difference", "ci_low", "ci_high",
                       "p_value", "significant"]]


def _standardised(s: pd.DataFrame, confidence: float) -> dict:
    """Recipients' rate against non-recipients' rates weighted to the recipients' strata."""
    s = s.loc[(s["n1"] > 0) & (s["n0"] > 0)]
    n1 = s["n1"].sum()
    if n1 == 0:
        return {"recipients": 0, "rate": np.nan, "matched_rate": np.nan, "difference": np.nan, "ci_low": np.nan,
                "ci_high": np.nan, "p_value": np.nan}
    w = s["n1"] / n1
    p1, p0 = s["k1"] / s["n1"], s["k0"] / s["n0"]
    diff = float((w * (p1 - p0)).sum())
    se = float(np.sqrt((w**2 * (p1 * (1 - p1) / s["n1"] + p0 * (1 - p0) / s["n0"])).sum()))
    z = metrics.z_value(confidence)
    p = float(2 * st.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return {"recipients": int(n1), "rate": float(s["k1"].sum() / n1), "matched_rate": float((w * p0).sum()),
            "difference": 100 * diff, "ci_low": 100 * (diff - z * se), "ci_high": 100 * (diff + z * se), "p_value": p}


def disversion_record(monthly: pd.DataFrame, trend: dict, *, min_orders: int, window_days: int) -> dict:
    """The `disversion` entry of results.json: the definition, each month and the trend."""
    return {"definition": f"regular customer: at least {min_orders} completed orders in the {window_days} days up to the day",
            "monthly": monthly.to_dict(orient="records"), "trend": trend}


def campaign_record(by_campaign: pd.DataFrame, *, follow_days: int) -> dict:
    """The `disversion_by_campaign` entry of results.json (the last row pools all campaigns)."""
    rows = by_campaign.assign(day=by_campaign["day"].dt.strftime("%Y-%m-%d"))
    return {"follow_days": follow_days, "campaigns": rows.iloc[:-1].to_dict(orient="records"),
            "pooled": rows.iloc[-1].to_dict()}
