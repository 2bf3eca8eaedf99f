"""Churn after a moment, on customer time (person-time).

The days within `churn_window_days` after a customer's contacts of the moment are *exposed*
time, all other active days *unexposed*. Churn rate = churns / customer-days; churn lift = rate
ratio exposed / unexposed with an exact conditional (binomial) interval and test; churn within
the window as a risk 1 - exp(-rate * window) for exposed and unexposed, difference with a
delta-method interval; adjusted rate ratio from a Poisson regression on the aggregated cells
(exposure x segment, log customer-days offset), which is what a logistic model is for fixed
follow-up. Cells are computed on the engine of the inputs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _
from scipy import stats as st

from cxlib import engine, locale, metrics
from cxlib.moments.base import (
    DIMENSION, HANDLING_DIMENSIONS, LEVEL, MOMENT, SECONDS_PER_DAY, UNKNOWN, MomentsError, _SEP, _bh, _epoch,
    _level_order, _require, _seconds, _tbl, design_matrix, interval_text, num, pct, say,
)
from cxlib.schema import CHURN_DATE, CUSTOMER_ID, LEAD_DATE, SEGMENT, SIGNUP_DATE, TIMESTAMP, Missing

# Contacts per GB of DuckDB's memory limit whose exposed spells are merged at once: the self-joins
# of `_islands` and the join with the customers hold about this many in memory near the limit (at
# 5M customers 4 million contacts of one handling dimension ran out of 1 and of 2 GB); more are
# worked through in parts of whole customers (`engine.customer_parts`), whose cells add up.
SPELL_ROWS_PER_GB = 1_500_000


def require_churn(cells: pd.DataFrame) -> None:
    """`schema.Missing` unless `churn_cells` hold a moment, active customers and a churn."""
    if cells.empty:
        raise Missing("no moment to follow churn after", enable="events.contact_reason")
    first = cells.loc[cells[MOMENT] == cells[MOMENT].iloc[0]]
    if int(first["customers"].sum()) == 0:
        raise Missing("no customer is active in the period", enable="customers (signup_date, churn_date)")
    if int((first["churned_exposed"] + first["churned_unexposed"]).sum()) == 0:
        raise Missing("no customer churned in the period", enable="customers.churn_date")


def churn_cells(contacts, customers, *, start, end, churn_window_days: float = 90, moments: Sequence[str] | None = None,
                covariates: Sequence[str] = (SEGMENT,), col_moment: str = MOMENT, col_customer: str = CUSTOMER_ID,
                col_timestamp: str = TIMESTAMP, col_signup: str = SIGNUP_DATE, col_churn: str = CHURN_DATE,
                col_lead: str = LEAD_DATE) -> pd.DataFrame:
    """Customer-days and churns per moment and covariate cell, exposed and unexposed.

    A customer is active from max(signup, start) (no signup and no lead date: from start;
    a lead that never signed up: never) to min(churn, end); a churn in (active start, end]
    counts. Exposed time = the days within `churn_window_days` after each contact of the moment
    (overlapping windows merged), clipped to the active time; a churn in exposed time is an
    exposed churn. Out: moment, *covariates, customers, customers_exposed, days_exposed,
    churned_exposed, days_unexposed, churned_unexposed. Runs on the engine of the inputs.
    """
    covariates = list(covariates)
    h = _tbl(contacts, "contacts", [col_customer, col_timestamp, col_moment])
    c = _tbl(customers, "customers", [col_customer, col_signup, col_churn, *covariates])
    lo_s, hi_s = _epoch(start), _epoch(end)
    if hi_s <= lo_s:
        raise Missing(f"the period {start} to {end} spans no time", enable="events.timestamp over more than one day")
    if churn_window_days <= 0:
        raise MomentsError(f"churn_window_days must be positive, got {churn_window_days}")
    window = int(round(churn_window_days * SECONDS_PER_DAY))
    signup, churn = _seconds(c[col_signup]), _seconds(c[col_churn])
    active_from = ibis.greatest(signup.fill_null(lo_s), ibis.literal(lo_s, "int64"))
    active_to = ibis.ifelse(churn.notnull() & (churn < hi_s), churn, ibis.literal(hi_s, "int64"))
    churned = churn.notnull() & (churn <= hi_s) & (churn > active_from)
    never = (c[col_signup].isnull() & c[col_lead].notnull()) if col_lead in c.columns else ibis.literal(False)
    cust = c.mutate(_a=active_from, _b=active_to, _ch=ibis.ifelse(churned, 1, 0), _chs=churn,
                    **{cov: c[cov].cast("string").fill_null(UNKNOWN) for cov in covariates})
    cust = cust.filter((cust._b > cust._a) & ~never).select(*covariates, "_a", "_b", "_ch", "_chs", _c=cust[col_customer])
    totals = engine.to_pandas(
        (cust.group_by(covariates) if covariates else cust)
        .agg(customers=_.count(), _days=(_._b - _._a).sum(), _churned=_._ch.sum())
    )
    totals = totals.sort_values(covariates, kind="stable").reset_index(drop=True) if covariates else totals
    e = h.filter(h[col_moment].notnull()).select(_c=h[col_customer], _k=h[col_moment].cast("string"),
                                                 _s=_seconds(h[col_timestamp]))
    if moments is not None:
        e = e.filter(e._k.isin([str(m) for m in moments]))
    e = e.filter((e._s >= lo_s) & (e._s <= hi_s))
    parts = engine.customer_parts(e, "_c", rows_per_gb=SPELL_ROWS_PER_GB)
    per = pd.concat([_exposed_cells(e.filter(engine.in_part(e._c, part, parts)),
                                    cust.filter(engine.in_part(cust._c, part, parts)), window, covariates)
                     for part in range(parts)], ignore_index=True)
    if parts > 1:                       # the parts hold different customers: their cells add up
        per = per.groupby(["_k", *covariates], as_index=False, dropna=False, sort=False).sum()
    per = per.rename(columns={"_k": col_moment})
    keys = [str(m) for m in moments] if moments is not None else sorted(per[col_moment].unique().tolist())
    grid = pd.DataFrame({col_moment: pd.Series(keys, dtype="str")}).merge(totals, how="cross")
    out = grid.merge(per, on=[col_moment, *covariates], how="left") if len(grid) else grid.assign(
        customers_exposed=pd.Series(dtype="int64"), _edays=pd.Series(dtype="float64"), _echurned=pd.Series(dtype="int64"))
    days = lambda s: s.fillna(0).astype("float64") / SECONDS_PER_DAY  # noqa: E731
    out = out.assign(
        customers=out["customers"].astype("int64"),
        customers_exposed=out["customers_exposed"].fillna(0).astype("int64"),
        days_exposed=days(out["_edays"]),
        churned_exposed=out["_echurned"].fillna(0).astype("int64"),
    )
    out = out.assign(days_unexposed=days(out["_days"]) - out["days_exposed"],
                     churned_unexposed=out["_churned"].fillna(0).astype("int64") - out["churned_exposed"])
    return (out.loc[:, [col_moment, *covariates, "customers", "customers_exposed", "days_exposed", "churned_exposed",
                        "days_unexposed", "churned_unexposed"]]
            .rename(columns={col_moment: MOMENT}).reset_index(drop=True))


def rate_ratio(events_a, days_a, events_b, days_b, *, confidence: float = 0.95) -> pd.DataFrame:
    """Rate ratio (events_a / days_a) / (events_b / days_b) per element, with the exact
    conditional interval and test: given the total events, events_a is binomial with
    p0 = days_a / (days_a + days_b) when the rates are equal; the Clopper-Pearson bounds of p
    become ratio bounds p / (1 - p) * days_b / days_a. Out: ratio, ratio_low, ratio_high, p_value
    (two-sided exact binomial test; NaN where a group has no time or there are no events)."""
    a, ta, b, tb = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (events_a, days_a, events_b, days_b))
    z_alpha = 1 - confidence
    n = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (a / ta) / (b / tb)
        low_p = np.where(a > 0, st.beta.ppf(z_alpha / 2, a, n - a + 1), 0.0)
        high_p = np.where(a < n, st.beta.ppf(1 - z_alpha / 2, a + 1, n - a), 1.0)
        scale = tb / ta
        low = low_p / (1 - low_p) * scale
        high = np.where(high_p < 1, high_p / (1 - high_p) * scale, np.inf)
    valid = (ta > 0) & (tb > 0) & (n > 0)
    p0 = np.where(valid, ta / np.where(valid, ta + tb, 1), 0.5)
    p = np.array([st.binomtest(int(k), int(m), float(q)).pvalue if ok else math.nan
                  for k, m, q, ok in zip(a, n, p0, valid)], dtype=float)
    return pd.DataFrame({
        "ratio": np.where(valid & (b > 0), ratio, np.nan),
        "ratio_low": np.where(valid, low, np.nan),
        "ratio_high": np.where(valid, np.where(np.isfinite(high), high, np.nan), np.nan),
        "p_value": p,
    })


def _adjusted_rate_ratio(cells: pd.DataFrame, covariates: Sequence[str], confidence: float) -> dict:
    """Poisson regression churned ~ exposed + covariates with offset log(days) on the cells of one
    moment: {estimate, ci_low, ci_high, p_value} of exp(coefficient of exposed); NaN when a group
    has no churn or the fit does not converge."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    nan = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    long = pd.concat([
        cells.assign(_x=1.0, _d=cells["churned_exposed"], _t=cells["days_exposed"]),
        cells.assign(_x=0.0, _d=cells["churned_unexposed"], _t=cells["days_unexposed"]),
    ], ignore_index=True).loc[lambda d: d["_t"] > 0]
    by_x = long.groupby("_x")["_d"].sum()
    if len(by_x) < 2 or (by_x == 0).any():
        return nan
    x = pd.concat([design_matrix(long, covariates), long[["_x"]]], axis=1)
    if np.linalg.matrix_rank(x.to_numpy()) < x.shape[1] or len(long) < x.shape[1]:
        return nan
    with warnings.catch_warnings(record=True) as caught:
        # a saturated model (one cell per exposure) fits exactly: statsmodels then warns of
        # "perfect prediction"; zero-churn groups were excluded above, so the estimate is identified
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("always", ConvergenceWarning)
        fit = sm.GLM(long["_d"].to_numpy(float), x.to_numpy(), family=sm.families.Poisson(),
                     offset=np.log(long["_t"].to_numpy(float))).fit()
    if any(issubclass(w.category, ConvergenceWarning) for w in caught) or not fit.converged \
            or not np.isfinite(fit.params).all():
        return nan
    k = x.shape[1] - 1
    low, high = fit.conf_int(alpha=1 - confidence)[k]
    return {"estimate": float(np.exp(fit.params[k])), "ci_low": float(np.exp(low)), "ci_high": float(np.exp(high)),
            "p_value": float(fit.pvalues[k])}


def _exposed_cells(points: ir.Table, cust: ir.Table, window: int, covariates: Sequence[str]) -> pd.DataFrame:
    """_k, *covariates, customers_exposed, _edays, _echurned: the exposed spells (`_islands`) of
    `points` clipped to the active time of the customers `cust`, summed per moment and cell."""
    islands = _islands(points, window)
    j = islands.join(cust, "_c")
    exposed = ibis.greatest(ibis.least(j._hi, j._b) - ibis.greatest(j._lo, j._a), 0)
    j = j.mutate(_exp=exposed, _in=ibis.ifelse((j._ch == 1) & (j._chs > j._lo) & (j._chs <= j._hi), 1, 0))
    per_customer = j.group_by(["_k", *covariates, "_c"]).agg(
        _seen=ibis.ifelse(j._exp.max() > 0, 1, 0), _edays=j._exp.sum(), _echurned=j._in.sum())
    return engine.to_pandas(
        per_customer.group_by(["_k", *covariates]).agg(customers_exposed=per_customer._seen.sum(),
                                                       _edays=per_customer._edays.sum(),
                                                       _echurned=per_customer._echurned.sum()))


def _islands(points: ir.Table, window: int) -> ir.Table:
    """The exposed spells of each customer and moment: `points` (_c, _k, _s: seconds of a contact)
    with the `window` seconds after each, overlapping spells merged. Out: _c, _k, _lo (first
    contact), _hi (last contact + window).

    Joins on customer and moment rather than windows in contact order, because DuckDB's joins
    spill to disk and its window operator does not: a spell starts at a contact with none in the
    `window` before it and ends at one with none in the `window` after it, and each start is
    paired with the first end at or after it.
    """
    p = points.select("_c", "_k", "_s").distinct()
    v = p.view()                        # the same points as another relation (a self-join)
    q = v.select(_qc=v._c, _qk=v._k, _qs=v._s)
    same = [p._c == q._qc, p._k == q._qk]
    starts = p.anti_join(q, [*same, q._qs < p._s, q._qs >= p._s - window])
    ends = p.anti_join(q, [*same, q._qs > p._s, q._qs <= p._s + window]).select(_ec=_._c, _ek=_._k, _es=_._s)
    spans = starts.join(ends, [starts._c == ends._ec, starts._k == ends._ek, ends._es >= starts._s])
    return spans.group_by(["_c", "_k", "_s"]).agg(_end=spans._es.min()).select("_c", "_k", _lo=_._s, _hi=_._end + window)


def churn_table(cells: pd.DataFrame, *, churn_window_days: float = 90, covariates: Sequence[str] = (SEGMENT,),
                min_n: int = 30, confidence: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """Churn after each moment from `churn_cells`: one row per moment (order kept).

    Out: moment, customers, customers_exposed, reach (customers_exposed / customers),
    days_exposed, churned_exposed, days_unexposed, churned_unexposed, churn_exposed and
    churn_unexposed (% churning within the window: 100 * (1 - exp(-rate * window))),
    churn_difference with difference_low/high (points; delta method), churn_lift (rate
    ratio) with lift_low/lift_high and p_value (exact, see `rate_ratio`), adjusted_lift with
    adjusted_lift_low/high and adjusted_p (Poisson regression on the cells), small
    (customers_exposed < min_n), q_value (Benjamini-Hochberg on adjusted_p, else p_value, over
    the moments that are not small), significant.
    """
    covariates = list(covariates)
    _require(cells, [MOMENT, *covariates, "customers", "customers_exposed", "days_exposed", "churned_exposed",
                     "days_unexposed", "churned_unexposed"], "churn cells")
    w = float(churn_window_days)
    sums = ["customers", "customers_exposed", "days_exposed", "churned_exposed", "days_unexposed", "churned_unexposed"]
    agg = cells.groupby(MOMENT, sort=False)[sums].sum().reset_index()
    ratio = rate_ratio(agg["churned_exposed"], agg["days_exposed"], agg["churned_unexposed"], agg["days_unexposed"],
                       confidence=confidence)
    de, te = agg["churned_exposed"].to_numpy(float), agg["days_exposed"].to_numpy(float)
    du, tu = agg["churned_unexposed"].to_numpy(float), agg["days_unexposed"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        le, lu = np.where(te > 0, de / te, np.nan), np.where(tu > 0, du / tu, np.nan)
        risk_e, risk_u = 1 - np.exp(-le * w), 1 - np.exp(-lu * w)
        se = np.sqrt((w * np.exp(-le * w)) ** 2 * de / te**2 + (w * np.exp(-lu * w)) ** 2 * du / tu**2)
    z = metrics.z_value(confidence)
    adjusted = pd.DataFrame([_adjusted_rate_ratio(cells.loc[cells[MOMENT] == m], covariates, confidence)
                             for m in agg[MOMENT]], columns=["estimate", "ci_low", "ci_high", "p_value"])
    out = agg.assign(
        customers=agg["customers"].astype("int64"), customers_exposed=agg["customers_exposed"].astype("int64"),
        churned_exposed=agg["churned_exposed"].astype("int64"), churned_unexposed=agg["churned_unexposed"].astype("int64"),
        reach=(agg["customers_exposed"] / agg["customers"].where(agg["customers"] > 0)).astype(float),
        churn_exposed=100 * risk_e, churn_unexposed=100 * risk_u,
        churn_difference=100 * (risk_e - risk_u),
        difference_low=100 * (risk_e - risk_u - z * se), difference_high=100 * (risk_e - risk_u + z * se),
        churn_lift=ratio["ratio"].to_numpy(), lift_low=ratio["ratio_low"].to_numpy(),
        lift_high=ratio["ratio_high"].to_numpy(), p_value=ratio["p_value"].to_numpy(),
        adjusted_lift=adjusted["estimate"].to_numpy(), adjusted_lift_low=adjusted["ci_low"].to_numpy(),
        adjusted_lift_high=adjusted["ci_high"].to_numpy(), adjusted_p=adjusted["p_value"].to_numpy(),
    )
    out = out.assign(small=out["customers_exposed"] < min_n)
    bh = _bh(out["adjusted_p"].fillna(out["p_value"]), out["small"], alpha)
    return out.assign(q_value=bh["p_adjusted"], significant=bh["significant"].astype(bool)).astype({MOMENT: "str"})


def churn_impact(contacts, customers, *, start, end, churn_window_days: float = 90,
                 moments: Sequence[str] | None = None, covariates: Sequence[str] = (SEGMENT,), min_n: int = 30,
                 confidence: float = 0.95, alpha: float = 0.05, **cols) -> pd.DataFrame:
    """Churn within `churn_window_days` after each moment against unexposed customer time
    (`churn_cells` then `churn_table`; see there for columns). `schema.Missing` when no moment
    is given, no customer is active in the period or none churned in it."""
    cells = churn_cells(contacts, customers, start=start, end=end, churn_window_days=churn_window_days,
                        moments=moments, covariates=covariates, **cols)
    require_churn(cells)
    return churn_table(cells, churn_window_days=churn_window_days, covariates=covariates, min_n=min_n,
                       confidence=confidence, alpha=alpha)


def handling_churn(contacts, customers, *, start, end, churn_window_days: float = 90,
                   moments: Sequence[str] | None = None, dimensions: Sequence[str] = HANDLING_DIMENSIONS,
                   min_n: int = 30, confidence: float = 0.95, alpha: float = 0.05,
                   col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP, **cols) -> pd.DataFrame:
    """Churn after each moment by how it was handled: each (moment, dimension, level) of
    `handled_contacts` is a moment of its own, compared with the customer time not after such a
    contact. Out: moment, dimension, level and the columns of `churn_table` (no covariates)."""
    h = _tbl(contacts, "contacts", [col_customer, col_timestamp, MOMENT, *dimensions])
    if moments is not None:
        h = h.filter(h[MOMENT].isin([str(m) for m in moments]))
    # one dimension at a time: each key's cells are its own, and the spells of all dimensions at
    # once took twice the engine memory (at 5M customers more than DuckDB's 2 GB)
    cells = pd.concat([
        churn_cells(h.select(col_customer, col_timestamp,
                             _key=h[MOMENT] + f"{_SEP}{dim}{_SEP}" + h[dim].cast("string").fill_null(UNKNOWN)),
                    customers, start=start, end=end, churn_window_days=churn_window_days, covariates=(),
                    col_moment="_key", col_customer=col_customer, col_timestamp=col_timestamp, **cols)
        for dim in dimensions
    ], ignore_index=True)
    require_churn(cells)
    table = churn_table(cells, churn_window_days=churn_window_days, covariates=(), min_n=min_n,
                        confidence=confidence, alpha=alpha)
    parts = table[MOMENT].str.split(_SEP, expand=True, regex=False) if len(table) else pd.DataFrame(columns=[0, 1, 2])
    order = {m: i for i, m in enumerate(moments)} if moments is not None else None
    out = table.drop(columns=[MOMENT]).assign(**{MOMENT: parts[0].astype("str"), DIMENSION: parts[1].astype("str"),
                                                LEVEL: parts[2].astype("str")})
    out = out.assign(_m=out[MOMENT].map(order) if order else out[MOMENT],
                     _d=out[DIMENSION].map({d: i for i, d in enumerate(dimensions)}),
                     _l=_level_order(out[DIMENSION], out[LEVEL]))
    return (out.sort_values(["_m", "_d", "_l", LEVEL], kind="stable")
            .loc[:, [MOMENT, DIMENSION, LEVEL, *[c for c in table.columns if c != MOMENT]]]
            .reset_index(drop=True))




# --- words and tables for the report ------------------------------------------------------------

def churn_summary_table(churn: pd.DataFrame, labels: Mapping, *, lang: str = "en") -> pd.DataFrame:
    """`churn_impact` for readers (`locale.display_table`): moment, exposed customers, reach,
    churned, churn % after / other, lift (95% CI), adjusted lift, significant (the difference in
    points stays in results.json)."""
    return locale.display_table(pd.DataFrame({
        "moment": churn[MOMENT].map(lambda m: labels.get(m, m)), "customers_exposed": churn["customers_exposed"],
        "reach": churn["reach"], "churned": churn["churned_exposed"], "churn_exposed": churn["churn_exposed"],
        "churn_unexposed": churn["churn_unexposed"],
        "lift_interval": interval_text(churn["churn_lift"], churn["lift_low"], churn["lift_high"], decimals=2,
                                       sign=False).to_numpy(),
        "adjusted_lift": churn["adjusted_lift"], "significant": churn["significant"]}), lang,
        kinds={"churned": "count"})


def churn_chart_rows(churn: pd.DataFrame, *, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """The moments a churn chart shows: lift estimated and positive, not in `exclude` (reasons
    that are part of leaving), smallest lift first."""
    return (churn.loc[~churn[MOMENT].isin(list(exclude)) & churn["churn_lift"].notna() & (churn["churn_lift"] > 0)]
            .sort_values("churn_lift", kind="stable"))


def top_churn_moment(churn: pd.DataFrame, *, exclude: Sequence[str] = ()) -> pd.Series | None:
    """The moment after which churn rises most: the significant one with the highest lift, else
    the highest lift; None when no lift can be estimated."""
    rows = churn_chart_rows(churn, exclude=exclude)
    if rows.empty:
        return None
    significant = rows.loc[rows["significant"]]
    return (significant if len(significant) else rows).iloc[-1]


def describe_churn(churn: pd.DataFrame, labels: Mapping, *, churn_window_days: float, exclude: Sequence[str] = (),
                   lang: str = "en") -> str:
    """The moment after which churn rises most, in words, with the caveat of association."""
    top = top_churn_moment(churn, exclude=exclude)
    if top is None:
        return say("churn.none", lang)
    adjusted = (say("churn.adjusted", lang, lift=num(top["adjusted_lift"], lang, decimals=2))
                if pd.notna(top["adjusted_lift"]) else "")
    text = say("churn.lead", lang, days=f"{churn_window_days:g}", label=labels.get(top[MOMENT], top[MOMENT]),
               exposed=pct(top["churn_exposed"], lang), unexposed=pct(top["churn_unexposed"], lang),
               lift=num(top["churn_lift"], lang, decimals=2), low=num(top["lift_low"], lang, decimals=2),
               high=num(top["lift_high"], lang, decimals=2), adjusted=adjusted,
               not_significant="" if top["significant"] else say("churn.not_significant", lang))
    if churn[MOMENT].isin(list(exclude)).any():
        text += say("churn.leaving", lang)
    return text + say("churn.caveat", lang)


def handling_churn_table(handling_churn: pd.DataFrame, labels: Mapping, *, churn_window_days: float,
                         dimension: str = "resolution", lang: str = "en") -> pd.DataFrame:
    """One dimension of `handling_churn` for readers (`locale.display_table`): moment, outcome,
    customers, churned after, churn % in the window, other time %, lift (95% CI), significant."""
    rows = handling_churn.loc[handling_churn[DIMENSION] == dimension]
    return locale.display_table(pd.DataFrame({
        "moment": rows[MOMENT].map(lambda m: labels.get(m, m)), "level": rows[LEVEL],
        "customers_exposed": rows["customers_exposed"], "churned": rows["churned_exposed"],
        "churn_exposed": rows["churn_exposed"], "churn_unexposed": rows["churn_unexposed"],
        "lift_interval": interval_text(rows["churn_lift"], rows["lift_low"], rows["lift_high"], decimals=2,
                                       sign=False).to_numpy(),
        "significant": rows["significant"]}), lang, kinds={"churned": "count"},
        labels={"churn_exposed": locale.text("tables.churn_within", lang, days=f"{churn_window_days:g}")})


def resolution_contrast(handling_churn: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    """(unresolved row, resolved row) of `handling_churn` for the moment whose unresolved contacts
    raise churn most against its resolved ones (groups large enough, both lifts estimated); None
    when no moment has both."""
    res = handling_churn.loc[(handling_churn[DIMENSION] == "resolution") & ~handling_churn["small"]]
    wide = (res.pivot(index=MOMENT, columns=LEVEL, values="churn_lift").reindex(columns=["resolved", "unresolved"])
            .dropna().loc[lambda d: d["resolved"] > 0])
    if wide.empty:
        return None
    moment = (wide["unresolved"] / wide["resolved"]).sort_values(kind="stable").index[-1]
    return (res.loc[(res[MOMENT] == moment) & (res[LEVEL] == "unresolved")].iloc[0],
            res.loc[(res[MOMENT] == moment) & (res[LEVEL] == "resolved")].iloc[0])


def describe_handling_churn(handling_churn: pd.DataFrame, labels: Mapping, *, churn_window_days: float,
                            lang: str = "en") -> str:
    """The moment whose unresolved contacts raise churn most against its resolved ones, in words."""
    pair = resolution_contrast(handling_churn)
    if pair is None:
        return say("handling_churn.none", lang)
    un, ok = pair
    return say("handling_churn.lead", lang, label=labels.get(un[MOMENT], un[MOMENT]),
               lift=num(un["churn_lift"], lang), low=num(un["lift_low"], lang), high=num(un["lift_high"], lang),
               churn=pct(un["churn_exposed"], lang), days=f"{churn_window_days:g}", resolved=num(ok["churn_lift"], lang))
