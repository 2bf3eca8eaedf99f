"""Disversion rate: regular customers over all customers, per month and per campaign.

A regular customer has at least `min_orders` completed orders in the `window_days` up to a day.
Per month the rate comes with a Wilson interval; per campaign, recipients who were not yet
regular are compared with comparable non-recipients (same segment and tenure band) over the
`follow_days` after it.

Computed on the engine from each customer's *regular spells*: counting orders in time order,
a customer is regular on the days D with day(k-th order + min_orders - 1) <= D < day(k-th
order) + window_days for some k. The spells are joined with the days asked about (month ends,
campaign days); only counts per month or per campaign and stratum come back.

    monthly = disversion_by_month(customers, orders, min_orders=2, window_days=365)
    by_campaign = campaign_disversion(campaigns, customers, orders, follow_days=180)
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats as st

from cxlib import engine, metrics
from cxlib.occasions import TIMEZONE
from cxlib.occasions_days import as_dates, as_day_numbers, with_local_days
from cxlib.schema import CAMPAIGN_ID, CHURN_DATE, CUSTOMER_ID, SEGMENT, SENT_AT, SIGNUP_DATE, STATUS, TIMESTAMP, Missing

NO_ORDERS = "orders (customer_id, timestamp, status)"


def _purchases(orders, timezone: str) -> tuple[ir.Table, int, int]:
    """Completed (or status-less) dated orders as customer_id, day (local day number), and the
    first and last day. Raises `schema.Missing` when there are none."""
    if orders is not None:
        o = engine.table(orders)
        done = o[STATUS].fill_null("completed") == "completed" if STATUS in o.columns else ibis.literal(True)
        bought = o.filter(done & o[TIMESTAMP].notnull()).select(**{CUSTOMER_ID: o[CUSTOMER_ID].cast("string")}, _ts=o[TIMESTAMP])
        bought = with_local_days(bought, timezone, day="_ts").drop("_ts")
        span = engine.to_pandas(bought.agg(first=bought.day.min(), last=bought.day.max())).iloc[0]
        if not pd.isna(span["first"]):
            return bought, int(span["first"]), int(span["last"])
    raise Missing("no completed orders", enable=NO_ORDERS)


def _spells(bought: ir.Table, *, min_orders: int, window_days: int) -> ir.Table:
    """customer_id, _from, _to: the customer has at least `min_orders` orders in the
    `window_days` up to each day D with _from <= D < _to."""
    if min_orders < 1:
        raise ValueError(f"min_orders must be at least 1, got {min_orders}")
    b = bought.filter(bought[CUSTOMER_ID].notnull())
    later = b.day.lead(min_orders - 1).over(ibis.window(group_by=CUSTOMER_ID, order_by="day")) if min_orders > 1 else b.day
    spells = b.select(CUSTOMER_ID, _from=later, _to=b.day + window_days)
    return spells.filter(spells._from.notnull() & (spells._from < spells._to))


def _regular_on(spells: ir.Table, days: ir.Table, at: str, keys: Sequence[str]) -> ir.Table:
    """`keys`, customer_id of the customers regular on the day in column `at` of each row of
    `days` (a customer once per spell that holds the day: possibly more than once)."""
    hit = days.join(spells, [spells._from <= days[at], spells._to > days[at]])
    return hit.select(*keys, CUSTOMER_ID)


def _customer_days(customers, timezone: str) -> tuple[ir.Table, bool, bool]:
    """customer_id, _segment, _signup, _churn (local day numbers) per customers row, and whether
    the table has a signup and a churn column at all."""
    c = engine.table(customers)
    has_signup, has_churn = SIGNUP_DATE in c.columns, CHURN_DATE in c.columns
    segment = c[SEGMENT].cast("string").fill_null("unknown") if SEGMENT in c.columns else ibis.literal("all", "string")
    out = c.select(**{CUSTOMER_ID: c[CUSTOMER_ID].cast("string")}, _segment=segment,
                   _signup_ts=c[SIGNUP_DATE] if has_signup else ibis.null("timestamp"),
                   _churn_ts=c[CHURN_DATE] if has_churn else ibis.null("timestamp"))
    out = with_local_days(out, timezone, _signup="_signup_ts", _churn="_churn_ts").drop("_signup_ts", "_churn_ts")
    return out, has_signup, has_churn


def _active(t: ir.Table, has_signup: bool, has_churn: bool) -> ir.BooleanValue:
    """Signed up by the day `_on` and not churned by it (a missing column does not restrict)."""
    keep = ibis.literal(True)
    if has_signup:
        keep = keep & (t._signup <= t._on).fill_null(False)
    if has_churn:
        keep = keep & ~(t._churn <= t._on).fill_null(False)
    return keep


def _tenure(t: ir.Table, limits: Sequence[float]) -> ir.IntegerValue:
    """The tenure band at the day `_on`: how many of `limits` (years) the time since signup reached
    (no signup: 0 years)."""
    years = ((t._on - t._signup).cast("float64") / 365.25).fill_null(0.0)
    return sum((ibis.ifelse(years >= float(limit), 1, 0) for limit in limits), ibis.literal(0)).cast("int64")


def disversion_by_month(customers, orders, *, min_orders: int = 2, window_days: int = 365,
                        timezone: str = TIMEZONE, confidence: float = 0.95) -> pd.DataFrame:
    """Disversion rate per month: active customers at the month's end with at least `min_orders`
    completed orders in the `window_days` up to it (regular customers), over all active customers.
    Only months with a full look-back window inside the order history are shown. In: customers,
    orders as engine tables or DataFrames. Out: month ('YYYY-MM'), customers, regular, rate,
    ci_low, ci_high. `schema.Missing` without dated orders or when the history is shorter than the window."""
    bought, first, last = _purchases(orders, timezone)
    first_day, last_day = as_dates(pd.Series([first, last]))
    ends = pd.date_range(first_day + pd.Timedelta(days=window_days), last_day, freq="ME")
    if len(ends) == 0:
        raise Missing(f"the order history is shorter than the {window_days}-day window of a regular customer",
                      enable=f"orders over more than {window_days} days")
    months = ibis.memtable(pd.DataFrame({"month": pd.Series(ends.strftime("%Y-%m"), dtype="str"),
                                         "_on": as_day_numbers(pd.Series(ends)).astype("int64")}))
    c, has_signup, has_churn = _customer_days(customers, timezone)
    counted = c.cross_join(months)
    counted = counted.filter(_active(counted, has_signup, has_churn)).group_by("month").agg(customers=ibis._.count())
    regular = _regular_on(_spells(bought, min_orders=min_orders, window_days=window_days), months, "_on", ["month", "_on"])
    regular = regular.distinct().join(c, CUSTOMER_ID)
    regular = regular.filter(_active(regular, has_signup, has_churn)).group_by("month").agg(regular=ibis._.count())
    out = pd.DataFrame({"month": pd.Series(ends.strftime("%Y-%m"), dtype="str")})
    for part in (counted, regular):
        out = out.merge(engine.to_pandas(part), on="month", how="left")
    out = out.assign(customers=out["customers"].fillna(0).astype("int64"), regular=out["regular"].fillna(0).astype("int64"))
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


def _campaign_days(sends: ir.Table) -> pd.Series:
    """The median local send day of each campaign (a day number; the lower day when the median
    falls between two), by campaign_id."""
    per = engine.to_pandas(sends.group_by([CAMPAIGN_ID, "day"]).agg(_n=ibis._.count()))
    days = {}
    for campaign, part in per.sort_values([CAMPAIGN_ID, "day"]).groupby(CAMPAIGN_ID, sort=True):   # one row per campaign
        upto = part["_n"].cumsum().to_numpy()
        n = int(upto[-1])
        pick = part["day"].to_numpy()[np.searchsorted(upto, [(n - 1) // 2 + 1, n // 2 + 1])]
        days[campaign] = int(pick.sum()) // 2
    return pd.Series(days, dtype="int64")


def _strata(flags: ir.Table, active: ir.Table) -> pd.DataFrame:
    """k1, n1, k0, n0 per campaign_id, _segment, _tenure of the customers active and not yet
    regular at the campaign: recipients (x) and others; k counts those regular after it.
    In: `flags` (x, b: regular before, a: regular after; for the customers with any flag) and
    `active` (all active customers) counted per stratum."""
    keys = [CAMPAIGN_ID, "_segment", "_tenure"]
    f = engine.to_pandas(flags.group_by([*keys, "_x", "_b", "_a"]).agg(_n=ibis._.count()))
    f = f.assign(n1=f["_n"] * ((f["_b"] == 0) & (f["_x"] == 1)), k1=f["_n"] * ((f["_b"] == 0) & (f["_x"] == 1) & (f["_a"] == 1)),
                 k0=f["_n"] * ((f["_b"] == 0) & (f["_x"] == 0) & (f["_a"] == 1)), _before=f["_n"] * (f["_b"] == 1))
    s = engine.to_pandas(active.group_by(keys).agg(_all=ibis._.count())).merge(
        f.groupby(keys, as_index=False)[["n1", "k1", "k0", "_before"]].sum(), on=keys, how="left")
    s = s.assign(**{col: s[col].fillna(0).astype("int64") for col in ("n1", "k1", "k0", "_before")})
    s = s.assign(n0=s["_all"] - s["_before"] - s["n1"])
    return (s.loc[s["n0"] + s["n1"] > 0].sort_values(keys, kind="stable")
            .loc[:, [*keys, "k1", "n1", "k0", "n0"]].reset_index(drop=True))


def campaign_disversion(campaigns, customers, orders, *, follow_days: int = 180,
                        window_days: int = 365, min_orders: int = 2, tenure_years: Sequence[float] = (1, 3, 5),
                        min_n: int = 30, alpha: float = 0.05, timezone: str = TIMEZONE,
                        confidence: float = 0.95) -> pd.DataFrame:
    """Did a campaign's recipients become regular customers more often than comparable
    non-recipients? Per campaign (day d = its median local send day; campaigns whose d +
    follow_days lies after the last order are left out): among customers active and not regular
    at d, the share regular at d + follow_days, recipients against non-recipients standardised
    to the recipients' mix of segment x tenure band (years since signup, limits `tenure_years`).
    The last row pools all campaigns (strata by campaign too). In: campaign sends (campaign_id,
    customer_id, sent_at), customers, orders as engine tables or DataFrames.
    Out: campaign_id, day, recipients, rate, matched_rate, difference (points), ci_low, ci_high,
    p_value, significant (Benjamini-Hochberg at alpha; fewer than min_n recipients: never)."""
    bought, _first, last = _purchases(orders, timezone)
    c = engine.checked_table(campaigns, [CAMPAIGN_ID, CUSTOMER_ID, SENT_AT], where="campaigns")
    sends = c.filter(c[CUSTOMER_ID].notnull()).select(
        **{CAMPAIGN_ID: c[CAMPAIGN_ID].cast("string"), CUSTOMER_ID: c[CUSTOMER_ID].cast("string")}, _ts=c[SENT_AT])
    sends = with_local_days(sends, timezone, day="_ts").drop("_ts")
    days = _campaign_days(sends)
    days = days.loc[days + follow_days <= last]
    if days.empty:
        raise Missing(f"no campaign with {follow_days} days of orders after it", enable="orders after the campaigns")
    marks = ibis.memtable(pd.DataFrame({CAMPAIGN_ID: pd.Series(days.index, dtype="str"), "_on": days.to_numpy(),
                                        "_after": days.to_numpy() + follow_days}))
    spells = _spells(bought, min_orders=min_orders, window_days=window_days)
    flagged = [sends.select(CAMPAIGN_ID, CUSTOMER_ID).mutate(_x=1, _b=0, _a=0),
               _regular_on(spells, marks, "_on", [CAMPAIGN_ID]).mutate(_x=0, _b=1, _a=0),
               _regular_on(spells, marks, "_after", [CAMPAIGN_ID]).mutate(_x=0, _b=0, _a=1)]
    flags = ibis.union(*flagged).group_by([CAMPAIGN_ID, CUSTOMER_ID]).agg(_x=ibis._._x.max(), _b=ibis._._b.max(),
                                                                            _a=ibis._._a.max())
    people, has_signup, has_churn = _customer_days(customers, timezone)
    everyone = people.cross_join(marks)
    everyone = everyone.filter(_active(everyone, has_signup, has_churn))
    flagged = flags.join(marks, CAMPAIGN_ID).join(people, CUSTOMER_ID)
    flagged = flagged.filter(_active(flagged, has_signup, has_churn))
    s = _strata(flagged.mutate(_tenure=_tenure(flagged, tenure_years)), everyone.mutate(_tenure=_tenure(everyone, tenure_years)))
    counted = s.groupby(CAMPAIGN_ID)[["n1", "n0"]].sum()
    s = s.loc[s[CAMPAIGN_ID].isin(counted.index[(counted["n1"] > 0) & (counted["n0"] > 0)])]
    if s.empty:
        raise Missing("no campaign had both recipients and comparable non-recipients", enable="campaigns to part of the customers")
    on = as_dates(days)
    rows = [_standardised(part, confidence) | {CAMPAIGN_ID: campaign, "day": on[campaign]}
            for campaign, part in s.groupby(CAMPAIGN_ID, sort=True)]
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
