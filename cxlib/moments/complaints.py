"""Complaints: how often they follow long waits, and how they develop month by month against
control limits.

**Complaint rate** = complaint contacts per 1,000 active customers per category and month;
u-chart limits centre +/- 3 sqrt(centre / n) with n = active customers / 1,000, revised once
out-of-control months are left out of the centre (Phase I practice); Laney's u'-chart widens
them by the variation beyond Poisson. Without an active base (no signup dates) complaints are
counted per month instead, with c-chart limits centre +/- 3 sqrt(centre).
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _

from cxlib import engine, locale, metrics
from cxlib.moments.base import (
    CATEGORY, DEFAULT_WAIT_BANDS, MONTH, SECONDS_PER_DAY, WAIT_BAND, MomentsError, _require, _seconds, _tbl,
    interval_text, num, say, wait_band_labels,
)
from cxlib.moments.candidates import observation_period
from cxlib.schema import (
    CHURN_DATE, CONTACT_REASON, CUSTOMER_ID, EVENT_ID, LEAD_DATE, SIGNUP_DATE, TIMESTAMP, WAIT_SECONDS, Missing,
)

PER_1000, COUNT = "per_1000", "count"            # basis of the monthly complaint chart


def _categories(taxonomy) -> tuple[list[str], dict[str, str]]:
    categories = list(taxonomy.data.get("complaint_categories") or {})
    by_reason = taxonomy.complaint_category_of_reason
    if not categories or not by_reason:
        raise Missing("the taxonomy names no complaint categories",
                      enable="taxonomy complaint_categories and contact reasons with a complaint category")
    return categories, by_reason


def _monthly_counts(e: ir.Table, by_reason: dict, start, end, *, col_timestamp: str, col_reason: str):
    """(months from start to end, complaints per category and month index) on the engine."""
    if start is None or end is None:
        first, last = observation_period(e, col_timestamp=col_timestamp)
        start, end = start if start is not None else first, end if end is not None else last
    p0 = pd.Timestamp(start).tz_convert("UTC") if pd.Timestamp(start).tzinfo else pd.Timestamp(start, tz="UTC")
    p1 = pd.Timestamp(end).tz_convert("UTC") if pd.Timestamp(end).tzinfo else pd.Timestamp(end, tz="UTC")
    months = pd.period_range(p0.tz_localize(None).to_period("M"), p1.tz_localize(None).to_period("M"), freq="M")
    y0, m0, n_months = int(months[0].year), int(months[0].month), len(months)
    comp = e.filter(e[col_reason].isin(list(by_reason)))
    comp = comp.mutate(_cat=comp[col_reason].substitute(by_reason), _mi=_month_index(comp[col_timestamp], y0, m0))
    counts = engine.to_pandas(comp.filter((comp._mi >= 0) & (comp._mi < n_months))
                              .group_by(["_cat", "_mi"]).agg(complaints=_.count()))
    return months, counts


def complaints_after_waits(events, *, followup_reason: str = "complaint_hotline", followup_days: float = 14,
                           wait_band_seconds: Sequence[float] = DEFAULT_WAIT_BANDS, confidence: float = 0.95,
                           col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                           col_event_id: str = EVENT_ID, col_reason: str = CONTACT_REASON,
                           col_wait: str = WAIT_SECONDS) -> pd.DataFrame:
    """Share of contacts with a recorded wait that are followed by a `followup_reason` contact of
    the same customer within `followup_days`, by wait band (the follow-up contacts themselves
    are not counted as sources). Out: wait_band, contacts, followed, rate, ci_low, ci_high (Wilson).
    `schema.Missing` without recorded waits or without any follow-up contact of a known customer."""
    labels = wait_band_labels(wait_band_seconds)
    e = _tbl(events, "events", [col_customer, col_timestamp, col_event_id, col_reason, col_wait])
    e = e.filter(e[col_customer].notnull())
    found = engine.to_pandas(e.agg(_w=e[col_wait].count(), _f=(e[col_reason] == followup_reason).sum()))
    if int(found["_w"].iloc[0]) == 0:
        raise Missing("no contact with a recorded wait", enable="events.wait_seconds")
    if int(found["_f"].fillna(0).iloc[0]) == 0:
        raise Missing(f"no {followup_reason} contacts of known customers to follow waits",
                      enable=f"events.contact_reason = {followup_reason} with events.customer_id")
    src = e.filter(e[col_wait].notnull() & (e[col_reason].fill_null("") != followup_reason))
    wait = src[col_wait]
    src = src.select(_id=src[col_event_id], _c=src[col_customer], _s=_seconds(src[col_timestamp]),
                     _band=ibis.cases(*[(wait < float(b), lab) for b, lab in zip(wait_band_seconds, labels)], else_=labels[-1]))
    fu = e.filter(e[col_reason] == followup_reason).select(_fc=e[col_customer], _fs=_seconds(e[col_timestamp]))
    days = int(round(followup_days * SECONDS_PER_DAY))
    j = src.left_join(fu, [src._c == fu._fc, fu._fs > src._s, fu._fs <= src._s + days])
    per = j.group_by(["_id", "_band"]).agg(_f=ibis.ifelse(j._fs.notnull(), 1, 0).max())
    raw = engine.to_pandas(per.group_by("_band").agg(contacts=_.count(), followed=_._f.sum()))
    out = (pd.DataFrame({WAIT_BAND: pd.Series(labels, dtype="str")})
           .merge(raw.rename(columns={"_band": WAIT_BAND}), on=WAIT_BAND, how="left"))
    out = out.assign(contacts=out["contacts"].fillna(0).astype("int64"), followed=out["followed"].fillna(0).astype("int64"))
    low, high = metrics.wilson_interval(out["followed"].to_numpy(), out["contacts"].to_numpy(), confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(out["contacts"] > 0, out["followed"] / out["contacts"].where(out["contacts"] > 0), np.nan)
    return out.assign(rate=rate.astype(float), ci_low=low, ci_high=high)


def u_chart(frame: pd.DataFrame, *, by: Sequence[str] = (CATEGORY,), col_count: str = "complaints",
            col_units: str = "units", sigma: float = 3.0, revise: bool = True,
            overdispersion: bool = False) -> pd.DataFrame:
    """u-chart limits per group of `by`: rate u = count / units; centre = sum(count) / sum(units);
    limits centre +/- sigma * sqrt(centre / units), the lower one floored at 0. With `revise`,
    points outside the limits are left out of the centre and the limits recomputed until no
    point changes side (Phase I). Rows with no units get NaN and are never flagged.

    `overdispersion` (Laney's u'-chart): with large denominators (thousands of customers) real
    month-to-month variation beyond Poisson makes plain limits flag ordinary months. The
    limits are widened by sigma_z = mean moving range of z = (u - centre) / sqrt(centre /
    units) over consecutive rows of a group (in frame order, included rows only) / 1.128,
    never narrowed (factor = max(1, sigma_z)); the output then has a column `dispersion`.

    Out: the input plus rate, center, ucl, lcl, out_of_control, signal ('above' / 'below' / '').
    """
    by = list(by)
    _require(frame, [*by, col_count, col_units], "u-chart input")
    count = frame[col_count].astype("float64")
    units = frame[col_units].astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (count / units.where(units > 0)).astype("float64")
    keys = [frame[c] for c in by] if by else [pd.Series(0, index=frame.index)]
    group = pd.Series(pd.factorize(pd.MultiIndex.from_arrays(keys))[0], index=frame.index)
    included = units > 0
    factor = pd.Series(1.0, index=frame.index)
    for _round in range(len(frame) + 1):
        num = count.where(included, 0.0).groupby(keys).transform("sum")
        den = units.where(included, 0.0).groupby(keys).transform("sum")
        with np.errstate(invalid="ignore", divide="ignore"):
            center = (num / den.where(den > 0)).astype("float64")
            se = np.sqrt(center / units.where(units > 0))
            if overdispersion:
                z = ((rate - center) / se.where(se > 0))[included]
                moving_range = z.groupby(group[included]).diff().abs()
                sigma_z = moving_range.groupby(group[included]).mean() / 1.128
                factor = group.map(sigma_z).fillna(1.0).clip(lower=1.0)
            half = sigma * factor * se
        ucl, lcl = center + half, (center - half).clip(lower=0)
        above, below = (rate > ucl).fillna(False), ((rate < lcl) & (lcl > 0)).fillna(False)
        nxt = (units > 0) & ~(above | below) if revise else included
        if (nxt == included).all():
            break
        included = nxt
    out = frame.assign(rate=rate, center=center, ucl=ucl, lcl=lcl, out_of_control=(above | below).astype(bool),
                       signal=np.where(above, "above", np.where(below, "below", "")).astype(str))
    return out.assign(dispersion=factor) if overdispersion else out


def _month_index(ts: ir.TimestampValue, y0: int, m0: int) -> ir.IntegerValue:
    return ((ts.year() - y0) * 12 + ts.month() - m0).cast("int64")


COMPLAINT_CHARTS = ("u", "laney")


def complaint_rates(events, customers, taxonomy, *, start=None, end=None, sigma: float = 3.0,
                    revise: bool = True, chart: str = "u", lang: str = "en", col_customer: str = CUSTOMER_ID,
                    col_timestamp: str = TIMESTAMP,
                    col_reason: str = CONTACT_REASON, col_signup: str = SIGNUP_DATE, col_churn: str = CHURN_DATE,
                    col_lead: str = LEAD_DATE) -> pd.DataFrame:
    """Complaints per 1,000 active customers per complaint category and month (of the stored UTC
    timestamps; date-only values are stored as midnight UTC, so they stay in their month), with u-chart
    limits (see `u_chart`; units = active customers / 1,000). `chart`: "u" (plain u-chart) or
    "laney" (Laney's u'-chart: limits widened by the variation beyond Poisson; adds `dispersion`).

    A complaint is a contact whose reason has a taxonomy complaint category. Active in a month =
    signed up before the month ends and not churned by its start (a lead without signup never
    counts; no signup date: active from the start). Months from `start` to `end` (default: the
    event log's first and last month); categories from the taxonomy, months without complaints
    count as 0. Out: category, category_label, month ('YYYY-MM'), complaints, active,
    rate_per_1000, center_per_1000, ucl_per_1000, lcl_per_1000, out_of_control, signal.
    """
    if chart not in COMPLAINT_CHARTS:
        raise MomentsError(f"complaint chart must be one of {list(COMPLAINT_CHARTS)}, got {chart!r}")
    categories = list(taxonomy.data.get("complaint_categories") or {})
    by_reason = taxonomy.complaint_category_of_reason
    categories, by_reason = _categories(taxonomy)
    e = _tbl(events, "events", [col_customer, col_timestamp, col_reason])
    c = _tbl(customers, "customers", [col_customer, col_signup, col_churn])
    months, counts = _monthly_counts(e, by_reason, start, end, col_timestamp=col_timestamp, col_reason=col_reason)
    y0, m0, n_months = int(months[0].year), int(months[0].month), len(months)
    never = (c[col_signup].isnull() & c[col_lead].notnull()) if col_lead in c.columns else ibis.literal(False)
    c = c.filter(~never)
    first_m = ibis.greatest(_month_index(c[col_signup], y0, m0).fill_null(0), ibis.literal(0, "int64"))
    last_m = _month_index(c[col_churn] - ibis.interval(seconds=1), y0, m0).fill_null(n_months)
    c = c.mutate(_f=first_m, _l=last_m)
    starts = engine.to_pandas(c.group_by("_f").agg(n=_.count()))
    stops = engine.to_pandas(c.group_by("_l").agg(n=_.count()))
    idx = np.arange(n_months)
    # active in month i: first month <= i and last month >= i (not: last month < i, i.e. last + 1 <= i)
    started = starts.groupby("_f")["n"].sum().reindex(idx, fill_value=0).cumsum().to_numpy()
    stopped = (stops.assign(_j=stops["_l"].clip(lower=-1) + 1).groupby("_j")["n"].sum()
               .reindex(idx, fill_value=0).cumsum().to_numpy())
    active = pd.DataFrame({"_mi": idx, "active": (started - stopped).astype("int64")})
    grid = (pd.DataFrame({CATEGORY: pd.Series(categories, dtype="str")})
            .merge(pd.DataFrame({"_mi": idx, MONTH: pd.Series([str(m) for m in months], dtype="str")}), how="cross")
            .merge(active, on="_mi")
            .merge(counts.rename(columns={"_cat": CATEGORY}), on=[CATEGORY, "_mi"], how="left"))
    grid = grid.assign(complaints=grid["complaints"].fillna(0).astype("int64"), units=grid["active"] / 1000)
    limits = u_chart(grid, by=[CATEGORY], col_count="complaints", col_units="units", sigma=sigma, revise=revise,
                     overdispersion=chart == "laney")
    label = {k: taxonomy.label("complaint_categories", k, lang) for k in categories}
    return (limits.assign(category_label=lambda d: d[CATEGORY].map(label).astype("str"),
                          rate_per_1000=limits["rate"], center_per_1000=limits["center"], ucl_per_1000=limits["ucl"],
                          lcl_per_1000=limits["lcl"])
            .loc[:, [CATEGORY, "category_label", MONTH, "complaints", "active", "rate_per_1000", "center_per_1000",
                     "ucl_per_1000", "lcl_per_1000", "out_of_control", "signal",
                     *(["dispersion"] if chart == "laney" else [])]]
            .reset_index(drop=True))


def complaint_counts(events, taxonomy, *, start=None, end=None, sigma: float = 3.0, revise: bool = True,
                     chart: str = "u", lang: str = "en", col_timestamp: str = TIMESTAMP,
                     col_reason: str = CONTACT_REASON) -> pd.DataFrame:
    """Complaints per category and month with c-chart limits (`u_chart` with one unit per month:
    centre +/- sigma sqrt(centre); "laney" widens them like the u'-chart): for data without an
    active customer base. Out: category, category_label, month, complaints, center, ucl, lcl,
    out_of_control, signal (and dispersion for "laney")."""
    if chart not in COMPLAINT_CHARTS:
        raise MomentsError(f"complaint chart must be one of {list(COMPLAINT_CHARTS)}, got {chart!r}")
    categories, by_reason = _categories(taxonomy)
    e = _tbl(events, "events", [col_timestamp, col_reason])
    months, counts = _monthly_counts(e, by_reason, start, end, col_timestamp=col_timestamp, col_reason=col_reason)
    grid = (pd.DataFrame({CATEGORY: pd.Series(categories, dtype="str")})
            .merge(pd.DataFrame({"_mi": np.arange(len(months)), MONTH: pd.Series([str(m) for m in months], dtype="str")}),
                   how="cross")
            .merge(counts.rename(columns={"_cat": CATEGORY}), on=[CATEGORY, "_mi"], how="left"))
    grid = grid.assign(complaints=grid["complaints"].fillna(0).astype("int64"), units=1.0)
    limits = u_chart(grid, by=[CATEGORY], col_count="complaints", col_units="units", sigma=sigma, revise=revise,
                     overdispersion=chart == "laney")
    label = {k: taxonomy.label("complaint_categories", k, lang) for k in categories}
    return (limits.assign(category_label=lambda d: d[CATEGORY].map(label).astype("str"))
            .loc[:, [CATEGORY, "category_label", MONTH, "complaints", "center", "ucl", "lcl", "out_of_control", "signal",
                     *(["dispersion"] if chart == "laney" else [])]]
            .reset_index(drop=True))


def complaints_by_month(events, customers, taxonomy, *, start=None, end=None, sigma: float = 3.0, revise: bool = True,
                        chart: str = "u", lang: str = "en", col_timestamp: str = TIMESTAMP,
                        col_reason: str = CONTACT_REASON, col_signup: str = SIGNUP_DATE) -> pd.DataFrame:
    """The monthly complaint chart the data supports, with its `basis`: per 1,000 active
    customers (`complaint_rates`, basis 'per_1000') when customers carry signup dates, else
    counts per month (`complaint_counts`, basis 'count'). `schema.Missing` without complaints."""
    _categories(taxonomy)
    e = _tbl(events, "events", [col_timestamp, col_reason])
    by_reason = taxonomy.complaint_category_of_reason
    if engine.to_pandas(e.filter(e[col_reason].isin(list(by_reason))).count().name("n").as_table())["n"].iloc[0] == 0:
        raise Missing("no complaints in the events",
                      enable="events.contact_reason (a reason with a complaint category in the taxonomy)")
    c = _tbl(customers, "customers", [col_signup])
    based = engine.to_pandas(c.agg(n=c[col_signup].count()))["n"].iloc[0] > 0
    if based:
        out = complaint_rates(events, customers, taxonomy, start=start, end=end, sigma=sigma, revise=revise, chart=chart,
                              lang=lang, col_timestamp=col_timestamp, col_reason=col_reason, col_signup=col_signup)
    else:
        out = complaint_counts(events, taxonomy, start=start, end=end, sigma=sigma, revise=revise, chart=chart, lang=lang,
                               col_timestamp=col_timestamp, col_reason=col_reason)
    return out.assign(basis=PER_1000 if based else COUNT)


def _basis(table: pd.DataFrame) -> str:
    return str(table["basis"].iloc[0]) if "basis" in table.columns and len(table) else (
        PER_1000 if "rate_per_1000" in table.columns else COUNT)


def complaint_chart_columns(table: pd.DataFrame) -> dict[str, str]:
    """The value, centre and limit columns of a monthly complaint chart and its unit, per basis:
    {value, center, ucl, lcl, unit}."""
    if _basis(table) == PER_1000:
        return {"value": "rate_per_1000", "center": "center_per_1000", "ucl": "ucl_per_1000", "lcl": "lcl_per_1000",
                "unit": "per 1,000"}
    return {"value": "complaints", "center": "center", "ucl": "ucl", "lcl": "lcl", "unit": "complaints"}


def complaint_record(table: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(results key, rows) to record: 'complaints' rows {category, month, rate_per_1000,
    out_of_control, complaints, active, center/ucl/lcl_per_1000} for rates, 'complaint_counts'
    rows {category, month, complaints, out_of_control, center, ucl, lcl} for counts."""
    if _basis(table) == PER_1000:
        return "complaints", table.loc[:, [CATEGORY, MONTH, "rate_per_1000", "out_of_control", "complaints", "active",
                                          "center_per_1000", "ucl_per_1000", "lcl_per_1000"]]
    return "complaint_counts", table.loc[:, [CATEGORY, MONTH, "complaints", "out_of_control", "center", "ucl", "lcl"]]


def describe_complaints(table: pd.DataFrame, *, max_months: int = 4, lang: str = "en") -> str:
    """Names the out-of-control months per complaint category (`complaints_by_month`, or
    `complaint_rates`); a category with more than `max_months` of them is called unstable, with
    its highest months named. Counts say that they are counts and why."""
    cols = complaint_chart_columns(table)
    rate = _basis(table) == PER_1000
    unit = say("words.per_1000" if rate else "words.complaints", lang)
    decimals = 1 if rate else 0
    note = "" if rate else say("complaints.counts_note", lang)
    flagged = table.loc[table["out_of_control"]]
    if flagged.empty:
        return note + say("complaints.calm", lang, kind=say("words.rates" if rate else "words.counts", lang))

    def month(value) -> str:
        return locale.format_period(value, lang)

    parts = []
    for cat, g in flagged.groupby("category_label", sort=False):
        if len(g) > max_months:
            top = g.sort_values(cols["value"], ascending=False).head(3)
            parts.append(say("complaints.unstable", lang, category=cat, flagged=len(g),
                             months=int((table["category_label"] == cat).sum()),
                             top=", ".join(say("complaints.top_item", lang, month=month(r[MONTH]), unit=unit,
                                               value=num(r[cols["value"]], lang, decimals=decimals))
                                           for _i, r in top.iterrows()),
                             centre=num(g[cols["center"]].iloc[0], lang)))
        else:
            parts.append(say("complaints.months", lang, category=cat, items=", ".join(
                say("complaints.month_item", lang, month=month(r[MONTH]), unit=unit,
                    value=num(r[cols["value"]], lang, decimals=decimals), centre=num(r[cols["center"]], lang),
                    side=say(f"words.{r['signal']}", lang))
                for _i, r in g.iterrows())))
    return note + say("complaints.lead", lang, parts="; ".join(parts))


def top_breakout(table: pd.DataFrame) -> pd.Series | None:
    """The month of `complaints_by_month` furthest above its upper limit (value / limit), or None."""
    cols = complaint_chart_columns(table)
    above = (table.loc[table["signal"] == "above"].assign(_excess=lambda d: d[cols["value"]] / d[cols["ucl"]])
             .sort_values("_excess", ascending=False, kind="stable"))
    return above.iloc[0] if len(above) else None


def waits_table(waits: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """`complaints_after_waits` for readers: wait band, contacts, followed by a complaint, share (%, 95% CI)."""
    share = interval_text(100 * waits["rate"], 100 * waits["ci_low"], 100 * waits["ci_high"], sign=False)
    return locale.display_table(pd.DataFrame({"wait_band": waits[WAIT_BAND], "contacts": waits["contacts"],
                                              "followed": waits["followed"], "share_interval": share.to_numpy()}), lang)


def complaint_signals_table(table: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """The out-of-control months of `complaints_by_month` for readers (`locale.display_table`):
    category, month, complaints, active customers and rate per 1,000 (or the count), centre, the
    limit crossed, side; plus the limit widening σz where Laney's chart was used."""
    cols = complaint_chart_columns(table)
    flagged = table.loc[table["out_of_control"]]
    limit = np.where(flagged["signal"] == "above", flagged[cols["ucl"]], flagged[cols["lcl"]]).astype(float)
    out = pd.DataFrame({"category": flagged["category_label"], "month": flagged[MONTH], "complaints": flagged["complaints"]})
    if cols["unit"] == "per 1,000":
        out = out.assign(active=flagged["active"], rate_per_1000=flagged[cols["value"]])
    out = out.assign(centre=flagged[cols["center"]], limit=limit, signal=flagged["signal"])
    if "dispersion" in table.columns:
        out = out.assign(dispersion=flagged["dispersion"])
    return locale.display_table(out.reset_index(drop=True), lang, labels={"centre": say("words.centre", lang)},
                                kinds={"centre": "points", "limit": "points", "dispersion": "score"})
