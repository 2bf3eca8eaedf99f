"""Does relevant contact pay? Campaign sends against the customers' occasions, contact fatigue,
the recipients' recent interest, and the disversion rate (regular customers over all customers).

A send is *occasion-timed* when its local day falls in the lead time of one of the customer's
occasions ([D - lead_days, D], see `cxlib.occasions`). Every send is labelled on the engine
(`label_sends`: response, segment, occasion, earlier sends, recent interest) and counted by its
labels (`send_counts`: a few thousand rows however many sends); the sections work from the
counts. Response rates come with Wilson intervals; occasion-timed against other sends is a risk
ratio, raw (Katz interval) and stratified by campaign and segment (Mantel-Haenszel,
Greenland-Robins interval, CMH test).

    sends = send_counts(label_sends(campaigns, customers, occasions.occasion_days(...), events=events))
    summary = occasion_response(sends)
    bands = fatigue(sends)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as st

from cxlib import engine, metrics
from cxlib import occasions as occ
from cxlib.occasions import DATE, OCCASION, TIMEZONE, WINDOW_START, local_day
from cxlib.occasions_days import as_dates, whole_seconds, with_local_days
from cxlib.schema import (
    CAMPAIGN_ID, CUSTOMER_ID, DIRECTION, RESPONDED_AT, SEGMENT, SENT_AT, TIMESTAMP,
    TOUCHPOINT, Missing,
)

SEND_COLUMNS = [CAMPAIGN_ID, CUSTOMER_ID, SENT_AT, "send_day", "responded", SEGMENT, OCCASION, "prior_contacts",
                "interest"]
COUNT_KEYS = [CAMPAIGN_ID, SEGMENT, "send_day", OCCASION, "prior_contacts", "interest"]
COUNT_COLUMNS = [CAMPAIGN_ID, SEGMENT, "send_day", OCCASION, "occasion_timed", "prior_contacts", "interest",
                 "sends", "responses"]
INTEREST_TOUCHPOINTS = ("web_visit", "tariff_page", "quote", "cart", "consultation", "service_contact", "complaint")


def require_campaigns(sends: pd.DataFrame | None) -> None:
    """`schema.Missing` when there are no campaign sends to customers (`send_counts` is empty)."""
    if sends is None or len(sends) == 0:
        raise Missing("no campaign contacts", enable="the campaigns table (campaign_id, customer_id, sent_at, responded_at)")


@dataclass(frozen=True)
class Inputs:
    """What every section of the occasions stage starts from (see `prepare`)."""

    taxonomy: object              # the loaded taxonomy
    types: pd.DataFrame           # occasion types of the taxonomy (empty without an `occasions` section)
    available: pd.DataFrame       # which of them the data supports, and why not
    customers: object             # the engine tables (None where the data has none)
    orders: object
    events: object
    campaigns: object
    names: pd.DataFrame           # customer_id, first_name (folded; never shown)
    calendar: pd.DataFrame        # the name-day calendar
    as_of: pd.Timestamp           # last day analysed (local)
    due: pd.DataFrame             # occasions in the horizon of active customers
    sends: pd.DataFrame           # `send_counts` (empty without campaigns)
    customer_count: int           # rows of the customers table

    @property
    def usable(self) -> pd.DataFrame:
        """The occasion types the data supports."""
        return self.types.loc[self.available["available"].to_numpy(dtype=bool)].reset_index(drop=True)


def _latest(table, column: str):
    """The latest value of `column` (a timestamp) in an engine table, or None."""
    if table is None or column not in table.columns:
        return None
    value = engine.to_pandas(table.agg(last=table[column].max()))["last"].iloc[0]
    return None if pd.isna(value) else value


def _send_span(campaigns, timezone: str) -> tuple[int, int] | None:
    """First and last local send day (day numbers) of the campaign sends, None without any."""
    days = with_local_days(campaigns.select(_ts=campaigns[SENT_AT]), timezone, _day="_ts")
    span = engine.to_pandas(days.agg(first=days._day.min(), last=days._day.max())).iloc[0]
    return None if pd.isna(span["first"]) else (int(span["first"]), int(span["last"]))


def prepare(tables: Mapping, reidentification: pd.DataFrame | None, taxonomy, *, name_days: str = "", as_of: str = "",
            horizon_days: int = 30, term_months: int | None = None, fatigue_days: float = 90, interest_days: float = 30,
            timezone: str = TIMEZONE, lang: str = "en") -> Inputs:
    """The stage's shared inputs, never raising on thin data: the occasion types and what the
    data supports, the occasions due in the `horizon_days` after `as_of` (empty: the day of the
    last event, order or send), and the campaign sends labelled and counted (`send_counts`).
    `tables`: engine tables (or DataFrames) customers, orders, events, campaigns (any may be None);
    `reidentification`: customer_id and pii_name of the restricted table (first names)."""
    try:
        types = occ.occasion_types(taxonomy, term_months=term_months, lang=lang)
    except Missing:
        types = pd.DataFrame(columns=occ.TYPE_COLUMNS)
    customers, orders, events, campaigns = (engine.table(tables[n]) if tables.get(n) is not None else None
                                            for n in ("customers", "orders", "events", "campaigns"))
    names = occ.first_names(reidentification)
    calendar = occ.read_name_days(name_days)
    available = occ.availability(types, customers, events=events, names=names, name_days=calendar)
    last = [t for t in (_latest(orders, TIMESTAMP), _latest(campaigns, SENT_AT), _latest(events, TIMESTAMP)) if t is not None]
    day = occ.calendar_day(as_of) if as_of else (local_day(pd.Series([max(last)]), timezone).iloc[0] if last
                                         else pd.Timestamp.now().normalize())
    count = int(engine.to_pandas(customers.agg(n=customers.count()))["n"].iloc[0]) if customers is not None else 0
    due = pd.DataFrame({CUSTOMER_ID: pd.Series(dtype="str"), OCCASION: pd.Series(dtype="str"),
                        DATE: pd.Series(dtype="datetime64[us]"), WINDOW_START: pd.Series(dtype="datetime64[us]")})
    sends = _no_sends()
    if count:
        horizon = occ.occasion_dates(types, customers, start=day + pd.Timedelta(days=1), end=day + pd.Timedelta(days=horizon_days),
                                     events=events, names=names, name_days=calendar, timezone=timezone, available=available)
        due = occ.due_occasions(horizon, customers, as_of=day, horizon_days=horizon_days, timezone=timezone)
        span = _send_span(campaigns, timezone) if campaigns is not None else None
        if span is not None:
            lead = int(types["lead_days"].max()) if len(types) else 0
            windows = occ.occasion_days(types, customers, start=as_dates(pd.Series([span[0]])).iloc[0],
                                        end=as_dates(pd.Series([span[1] + lead])).iloc[0], events=events, names=names,
                                        name_days=calendar, timezone=timezone, available=available)
            sends = send_counts(label_sends(campaigns, customers, windows, events=events, types=types, fatigue_days=fatigue_days,
                                            interest_days=interest_days, timezone=timezone))
    return Inputs(taxonomy, types, available, customers, orders, events, campaigns, names, calendar, day, due, sends, count)


# --- sends -----------------------------------------------------------------------------------------
def label_sends(campaigns, customers, windows, *, events=None, types: pd.DataFrame | None = None,
                fatigue_days: float = 90, interest_days: float = 30, timezone: str = TIMEZONE) -> ir.Table:
    """Every campaign send to a customer with its response, the sends to the customer in the
    `fatigue_days` before, whether the customer showed interest in the `interest_days` before (an
    event of `INTEREST_TOUCHPOINTS` or any inbound contact; null without events), its local day,
    the customer's segment and the occasion whose lead time the day fell in. An engine table.

    In (engine tables or DataFrames): campaigns (campaign_id, customer_id, sent_at,
    responded_at), customers (customer_id, segment), `occasions.occasion_days` covering the send
    days (customer_id, occasion, date, window_start), events. `types` orders the occasions when
    a send hits several (first wins). Before means in [t - days, t) in whole seconds: sends at the
    same instant do not count each other. Out: campaign_id, customer_id, sent_at, send_day (day
    number), responded, segment, occasion (null when not timed), prior_contacts, interest.
    """
    c = engine.checked_table(campaigns, [CAMPAIGN_ID, CUSTOMER_ID, SENT_AT], where="campaigns")
    responded = c[RESPONDED_AT].notnull() if RESPONDED_AT in c.columns else ibis.literal(False)
    sends = c.filter(c[CUSTOMER_ID].notnull()).select(
        **{CAMPAIGN_ID: c[CAMPAIGN_ID].cast("string"), CUSTOMER_ID: c[CUSTOMER_ID].cast("string"), SENT_AT: c[SENT_AT]},
        responded=responded, _sec=whole_seconds(c[SENT_AT]))
    sends = _with_history(sends, events, fatigue_days=fatigue_days, interest_days=interest_days)
    sends = _with_segment(with_local_days(sends, timezone, send_day=SENT_AT), customers)
    first = _first_occasions(c, windows, types, timezone)
    joined = sends.left_join(first, [sends[CUSTOMER_ID] == first._c, sends.send_day == first._d])
    return joined.select(*SEND_COLUMNS[:-3], **{OCCASION: joined._hit}, prior_contacts=joined.prior_contacts,
                         interest=joined.interest)


def _with_history(sends: ir.Table, events, *, fatigue_days: float, interest_days: float) -> ir.Table:
    """`prior_contacts` (a window over each customer's sends in time order) and `interest` (a join
    of the sends' instants with the customer's interest events), over whole seconds [t - days, t)."""
    earlier = ibis.window(group_by=CUSTOMER_ID, order_by="_sec", range=(-int(fatigue_days * 86_400), -1))
    sends = sends.mutate(prior_contacts=sends._sec.count().over(earlier).fill_null(0).cast("int64"))
    if events is None:
        return sends.mutate(interest=ibis.null("boolean")).drop("_sec")
    e = engine.table(events)
    shown = e[TOUCHPOINT].isin(list(INTEREST_TOUCHPOINTS))
    if DIRECTION in e.columns:
        shown = shown | (e[DIRECTION] == "inbound")
    e = e.filter(shown & e[CUSTOMER_ID].notnull()).select(_c=e[CUSTOMER_ID].cast("string"), _e=whole_seconds(e[TIMESTAMP]))
    instants = sends.select(_c=sends[CUSTOMER_ID], _t=sends._sec)
    width = int(interest_days * 86_400)
    seen = instants.join(e, [instants._c == e._c, e._e < instants._t, e._e >= instants._t - width]).select(
        _c=instants._c, _t=instants._t).distinct()
    joined = sends.left_join(seen.mutate(_hit=ibis.literal(True)), [sends[CUSTOMER_ID] == seen._c, sends._sec == seen._t])
    return joined.mutate(interest=joined._hit.fill_null(False)).drop("_c", "_t", "_hit", "_sec")


def _with_segment(sends: ir.Table, customers) -> ir.Table:
    c = engine.table(customers)
    if SEGMENT not in c.columns:
        return sends.mutate(**{SEGMENT: ibis.literal("unknown", "string")})
    seg = c.group_by(_id=c[CUSTOMER_ID].cast("string")).agg(_segment=c[SEGMENT].cast("string").max())
    joined = sends.left_join(seg, sends[CUSTOMER_ID] == seg._id)
    return joined.mutate(**{SEGMENT: joined._segment.fill_null("unknown")}).drop("_id", "_segment")


def _first_occasions(campaigns: ir.Table, windows, types: pd.DataFrame | None, timezone: str) -> ir.Table:
    """_c, _d, _hit: per customer and local send day, the first occasion (in `types` order) whose
    window [window_start, date] holds the day."""
    w = engine.table(windows)
    order = list(types["occasion"]) if types is not None else sorted(engine.to_pandas(w.select(OCCASION).distinct())[OCCASION])
    ranks = ibis.memtable(pd.DataFrame({"_occasion": pd.Series(order, dtype="str"),
                                        "_rank": pd.Series(range(len(order)), dtype="int64")}))
    w = w.join(ranks, w[OCCASION] == ranks._occasion)
    days = campaigns.filter(campaigns[CUSTOMER_ID].notnull()).select(_c=campaigns[CUSTOMER_ID].cast("string"),
                                                                    _ts=campaigns[SENT_AT])
    days = with_local_days(days, timezone, _d="_ts").select("_c", "_d")
    hits = days.join(w, [days._c == w[CUSTOMER_ID], w[WINDOW_START] <= days._d, w[DATE] >= days._d])
    first = hits.group_by(["_c", "_d"]).agg(_rank=hits._rank.min())
    return first.join(ranks, "_rank").select("_c", "_d", _hit=ranks._occasion)


def _no_sends() -> pd.DataFrame:
    return pd.DataFrame({CAMPAIGN_ID: pd.Series(dtype="str"), SEGMENT: pd.Series(dtype="str"),
                         "send_day": pd.Series(dtype="datetime64[us]"), OCCASION: pd.Series(dtype="str"),
                         "occasion_timed": pd.Series(dtype="bool"), "prior_contacts": pd.Series(dtype="int64"),
                         "interest": pd.Series(dtype="boolean"), "sends": pd.Series(dtype="int64"),
                         "responses": pd.Series(dtype="int64")})


def send_counts(sends) -> pd.DataFrame:
    """Labelled sends (`label_sends`, or a DataFrame of them) counted by campaign, segment, send
    day, occasion, earlier sends and interest. Out: campaign_id, segment, send_day (date),
    occasion, occasion_timed, prior_contacts, interest (NA without events), sends, responses;
    sorted by the labels."""
    t = engine.table(sends)
    if "interest" not in t.columns:
        t = t.mutate(interest=ibis.null("boolean"))
    counted = t.group_by(COUNT_KEYS).agg(sends=t.count().cast("int64"), responses=t.responded.cast("int64").sum().cast("int64"))
    out = engine.to_pandas(counted)
    out = out.assign(send_day=as_dates(out["send_day"]), occasion_timed=out[OCCASION].notna().to_numpy(),
                     interest=out["interest"].astype("boolean"), responses=out["responses"].fillna(0).astype("int64"))
    return out.sort_values(COUNT_KEYS, kind="stable").loc[:, COUNT_COLUMNS].reset_index(drop=True)


# --- occasion-timed against other sends --------------------------------------------------------------
def _rates(k, n, confidence: float) -> dict:
    low, high = metrics.wilson_interval(k, n, confidence=confidence)
    return {"sends": int(n), "responses": int(k), "rate": float(k / n) if n else float("nan"),
            "ci_low": float(low), "ci_high": float(high)}


def risk_ratio(k1, n1, k0, n0, *, confidence: float = 0.95) -> dict:
    """Ratio of two response rates (k1/n1) / (k0/n0) with the Katz log interval.

        risk_ratio(30, 100, 10, 100) -> ratio 3.0, ci 1.55 to 5.80
    """
    if min(k1, k0) == 0 or min(n1, n0) == 0:
        return {"ratio": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    ratio = (k1 / n1) / (k0 / n0)
    se = np.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0)
    z = metrics.z_value(confidence)
    return {"ratio": float(ratio), "ci_low": float(ratio * np.exp(-z * se)), "ci_high": float(ratio * np.exp(z * se))}


def mantel_haenszel(strata: pd.DataFrame, *, confidence: float = 0.95) -> dict:
    """Mantel-Haenszel risk ratio over strata with the Greenland-Robins interval and the CMH test.

    In: one row per stratum with k1, n1 (exposed: responses, sends) and k0, n0 (unexposed).
    Strata lacking either group add nothing. Out: ratio, ci_low, ci_high, chi2, p_value, strata.
    """
    s = strata.loc[(strata["n1"] > 0) & (strata["n0"] > 0)].astype(float)
    n = s["n1"] + s["n0"]
    r = (s["k1"] * s["n0"] / n).sum()
    q = (s["k0"] * s["n1"] / n).sum()
    nan = {"ratio": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "chi2": float("nan"),
           "p_value": float("nan"), "strata": int(len(s))}
    if r == 0 or q == 0:
        return nan
    ratio = r / q
    var = ((s["n1"] * s["n0"] * (s["k1"] + s["k0"]) - s["k1"] * s["k0"] * n) / n**2).sum() / (r * q)
    z = metrics.z_value(confidence)
    m1 = s["k1"] + s["k0"]
    expected = s["n1"] * m1 / n
    variance = (s["n1"] * s["n0"] * m1 * (n - m1) / (n**2 * (n - 1))).where(n > 1, 0.0)
    chi2 = float((s["k1"].sum() - expected.sum()) ** 2 / variance.sum()) if variance.sum() > 0 else float("nan")
    return {"ratio": float(ratio), "ci_low": float(ratio * np.exp(-z * np.sqrt(var))),
            "ci_high": float(ratio * np.exp(z * np.sqrt(var))), "chi2": chi2,
            "p_value": float(st.chi2.sf(chi2, 1)) if chi2 == chi2 else float("nan"), "strata": int(len(s))}


def _strata(sends: pd.DataFrame, exposed: pd.Series, by: Sequence[str]) -> pd.DataFrame:
    g = sends.assign(_x=exposed.astype(bool).to_numpy())
    agg = g.groupby([*by, "_x"]).agg(k=("responses", "sum"), n=("sends", "sum")).unstack("_x", fill_value=0)
    get = lambda col, x: agg[(col, x)] if (col, x) in agg.columns else 0          # noqa: E731
    return pd.DataFrame({"k1": get("k", True), "n1": get("n", True), "k0": get("k", False), "n0": get("n", False)})


def occasion_response(sends: pd.DataFrame, *, adjust_for: Sequence[str] = (CAMPAIGN_ID, SEGMENT),
                      confidence: float = 0.95) -> dict:
    """Response of occasion-timed against other sends (in: `send_counts`).

    Out: {occasion_timed: {sends, responses, rate, ci_low, ci_high}, other: {...}, ratio (raw,
    Katz interval), adjusted (Mantel-Haenszel over `adjust_for` strata, CMH test), adjusted_for}.
    `schema.Missing` without sends on both sides.
    """
    require_campaigns(sends)
    x = sends["occasion_timed"].astype(bool)
    if not x.any() or x.all():
        raise Missing("no campaign send coincided with an occasion" if not x.any() else "every send coincided with an occasion",
                      enable="occasions derivable for the recipients (customers.signup_date, events) and campaign sends to them")
    k, n = sends["responses"], sends["sends"]
    k1, n1, k0, n0 = int(k[x].sum()), int(n[x].sum()), int(k[~x].sum()), int(n[~x].sum())
    return {"occasion_timed": _rates(k1, n1, confidence), "other": _rates(k0, n0, confidence),
            "ratio": risk_ratio(k1, n1, k0, n0, confidence=confidence),
            "adjusted": mantel_haenszel(_strata(sends, x, list(adjust_for)), confidence=confidence),
            "adjusted_for": list(adjust_for), "confidence": confidence}


def response_by_occasion(sends: pd.DataFrame, types: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Response rate of the sends timed on each occasion and of the other sends, with the ratio to
    the other sends (in: `send_counts`). Out: occasion, label, sends, responses, rate, ci_low,
    ci_high, ratio, ratio_low, ratio_high (the last row is 'other')."""
    k, n = sends["responses"], sends["sends"]
    other = ~sends["occasion_timed"].astype(bool)
    k0, n0 = int(k[other].sum()), int(n[other].sum())
    rows = []
    for code, label in types[["occasion", "label"]].itertuples(index=False):     # a handful of occasion types
        hit = sends[OCCASION].eq(code).fillna(False).astype(bool)
        if hit.any():
            rr = risk_ratio(int(k[hit].sum()), int(n[hit].sum()), k0, n0, confidence=confidence)
            rows.append({"occasion": code, "label": label, **_rates(int(k[hit].sum()), int(n[hit].sum()), confidence),
                         "ratio": rr["ratio"], "ratio_low": rr["ci_low"], "ratio_high": rr["ci_high"]})
    rows.append({"occasion": "other", "label": "no occasion", **_rates(k0, n0, confidence),
                 "ratio": 1.0, "ratio_low": float("nan"), "ratio_high": float("nan")})
    return pd.DataFrame(rows)


def relevance_record(summary: dict, by_occasion: pd.DataFrame) -> dict:
    """The `campaign_relevance` entry of results.json: occasion-timed against other sends, by occasion."""
    return {**summary, "by_occasion": by_occasion.to_dict(orient="records")}


def fatigue_record(bands: pd.DataFrame, slope: dict, *, fatigue_days: float) -> dict:
    """The `campaign_fatigue` entry of results.json: response by earlier sends and the slope."""
    return {"fatigue_days": fatigue_days, "bands": bands.to_dict(orient="records"), **slope}


def interest_record(table: pd.DataFrame, lowest: pd.DataFrame, *, interest_days: float) -> dict:
    """The `campaign_interest` entry of results.json: every campaign's response and interest, the lowest."""
    rows = lambda t: t.assign(first_send=t["first_send"].dt.strftime("%Y-%m-%d")).to_dict(orient="records")  # noqa: E731
    return {"interest_days": interest_days, "campaigns": rows(table), "lowest": lowest[CAMPAIGN_ID].tolist()}


# --- contact fatigue -------------------------------------------------------------------------------
def fatigue(sends: pd.DataFrame, *, bands: Sequence[int] = (0, 1, 2, 3), confidence: float = 0.95) -> pd.DataFrame:
    """Response rate by the number of sends the customer had in the fatigue window before (in:
    `send_counts`). Out: band ('0', '1', ..., '3+'), prior_min, sends, responses, rate, ci_low, ci_high.
    """
    require_campaigns(sends)
    edges = sorted(int(b) for b in bands)
    band = np.searchsorted(edges, sends["prior_contacts"].to_numpy(), side="right") - 1
    labels = [str(b) for b in edges[:-1]] + [f"{edges[-1]}+"]
    g = pd.DataFrame({"_b": band, "k": sends["responses"].to_numpy(), "n": sends["sends"].to_numpy()}).groupby("_b").sum()
    rows = [{"band": labels[i], "prior_min": edges[i],
             **_rates(int(g["k"].get(i, 0)), int(g["n"].get(i, 0)), confidence)} for i in range(len(edges))]
    return pd.DataFrame(rows)


def fatigue_slope(sends: pd.DataFrame, *, adjust_for: Sequence[str] = (SEGMENT,), cap: int = 10,
                  confidence: float = 0.95) -> dict:
    """Change of the response rate per further send in the fatigue window: the rate ratio of a
    Poisson regression of responses on prior_contacts (capped at `cap`) with `adjust_for`
    dummies and log(sends) as offset, fitted on the aggregated counts (in: `send_counts`).
    Out: {rate_ratio_per_contact, ci_low, ci_high, p_value, sends}."""
    g = (sends.assign(_p=sends["prior_contacts"].clip(upper=cap))
         .groupby(["_p", *adjust_for]).agg(k=("responses", "sum"), n=("sends", "sum")).reset_index())
    if g["_p"].nunique() < 2 or g["k"].sum() == 0:
        raise Missing("too few distinct contact counts or no responses to fit a fatigue slope",
                      enable="campaigns.responded_at and repeated sends to the same customers")
    X = pd.get_dummies(g[["_p", *adjust_for]], columns=list(adjust_for), drop_first=True, dtype=float)
    fit = sm.GLM(g["k"].astype(float), sm.add_constant(X, has_constant="add"), family=sm.families.Poisson(),
                 offset=np.log(g["n"].astype(float))).fit()
    b, se = float(fit.params["_p"]), float(fit.bse["_p"])
    z = metrics.z_value(confidence)
    return {"rate_ratio_per_contact": float(np.exp(b)), "ci_low": float(np.exp(b - z * se)),
            "ci_high": float(np.exp(b + z * se)), "p_value": float(fit.pvalues["_p"]), "sends": int(g["n"].sum())}


# --- lowest campaigns and recent interest ------------------------------------------------------------
def campaign_table(sends: pd.DataFrame, *, min_sends: int = 100, confidence: float = 0.95) -> pd.DataFrame:
    """Per campaign: sends, response rate with interval, the share of recipients with recent
    interest (see `label_sends`) and the response with and without it; lowest response first.
    In: `send_counts`. Campaigns with fewer than `min_sends` sends are left out. Out: campaign_id,
    first_send, sends, responses, rate, ci_low, ci_high, interest_share, rate_interested,
    rate_not_interested."""
    require_campaigns(sends)
    if sends["interest"].isna().all():
        raise Missing("no events to see the recipients' interest", enable="events (web visits, contacts)")
    shown = sends["interest"].fillna(False).astype(bool)
    g = sends.assign(_n=sends["sends"].where(shown, 0), _k=sends["responses"].where(shown, 0))
    agg = g.groupby(CAMPAIGN_ID).agg(first_send=("send_day", "min"), sends=("sends", "sum"), responses=("responses", "sum"),
                                     _n=("_n", "sum"), _k=("_k", "sum"))
    rest = agg["sends"] - agg["_n"]
    agg = agg.assign(interest_share=agg["_n"] / agg["sends"], rate_interested=agg["_k"] / agg["_n"].where(agg["_n"] > 0),
                     rate_not_interested=(agg["responses"] - agg["_k"]) / rest.where(rest > 0))
    agg = agg.loc[agg["sends"] >= min_sends]
    if agg.empty:
        raise Missing(f"no campaign with at least {min_sends} sends", enable="more campaign sends (campaigns table)")
    low, high = metrics.wilson_interval(agg["responses"], agg["sends"], confidence=confidence)
    return (agg.assign(rate=agg["responses"] / agg["sends"], ci_low=low, ci_high=high).reset_index()
            .sort_values(["rate", CAMPAIGN_ID], kind="stable")
            .loc[:, [CAMPAIGN_ID, "first_send", "sends", "responses", "rate", "ci_low", "ci_high", "interest_share",
                     "rate_interested", "rate_not_interested"]].reset_index(drop=True))


def lowest_campaigns(table: pd.DataFrame, *, n: int = 5) -> pd.DataFrame:
    """The `n` campaigns with the lowest response rate (the table is sorted lowest first)."""
    return table.head(n).reset_index(drop=True)
