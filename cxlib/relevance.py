"""Does relevant contact pay? Campaign sends against the customers' occasions, contact fatigue,
the recipients' recent interest, and the disversion rate (regular customers over all customers).

A send is *occasion-timed* when its local day falls in the lead time of one of the customer's
occasions ([D - lead_days, D], see `cxlib.occasions`). Response rates come with Wilson
intervals; occasion-timed against other sends is a risk ratio, raw (Katz interval) and
stratified by campaign and segment (Mantel-Haenszel, Greenland-Robins interval, CMH test).

    sends = label_sends(campaigns, windows, customers)
    summary = occasion_response(sends)
    bands = fatigue(sends)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as st

from cxlib import engine, metrics
from cxlib import occasions as occ
from cxlib.occasions import DATE, OCCASION, TIMEZONE, WINDOW_START, local_day
from cxlib.schema import (
    CAMPAIGN_ID, CUSTOMER_ID, DIRECTION, RESPONDED_AT, SEGMENT, SENT_AT, TIMESTAMP,
    TOUCHPOINT, Missing,
)

SEND_COLUMNS = [CAMPAIGN_ID, CUSTOMER_ID, SENT_AT, "send_day", "responded", SEGMENT, "occasion_timed", OCCASION,
                "prior_contacts"]
INTEREST_TOUCHPOINTS = ("web_visit", "tariff_page", "quote", "cart", "consultation", "service_contact", "complaint")


def require_campaigns(campaigns: pd.DataFrame | None) -> None:
    """`schema.Missing` when there are no campaign sends to customers."""
    if campaigns is None or len(campaigns) == 0:
        raise Missing("no campaign contacts", enable="the campaigns table (campaign_id, customer_id, sent_at, responded_at)")


@dataclass(frozen=True)
class Inputs:
    """What every section of the occasions stage starts from (see `prepare`)."""

    taxonomy: object              # the loaded taxonomy
    types: pd.DataFrame           # occasion types of the taxonomy (empty without an `occasions` section)
    available: pd.DataFrame       # which of them the data supports, and why not
    customers: pd.DataFrame
    orders: pd.DataFrame
    events: object                # the event log on the engine (None without events)
    names: pd.DataFrame           # customer_id, first_name (folded; never shown)
    calendar: pd.DataFrame        # the name-day calendar
    as_of: pd.Timestamp           # last day analysed (local)
    due: pd.DataFrame             # occasions in the horizon of active customers
    sends: pd.DataFrame           # `label_sends` (empty without campaigns)

    @property
    def usable(self) -> pd.DataFrame:
        """The occasion types the data supports."""
        return self.types.loc[self.available["available"].to_numpy(dtype=bool)].reset_index(drop=True)


def _frame(tables: Mapping, name: str) -> pd.DataFrame:
    return engine.to_pandas(engine.table(tables[name])) if tables.get(name) is not None else pd.DataFrame()


def prepare(tables: Mapping, reidentification: pd.DataFrame | None, taxonomy, *, name_days: str = "", as_of: str = "",
            horizon_days: int = 30, term_months: int | None = None, fatigue_days: float = 90,
            timezone: str = TIMEZONE, lang: str = "en") -> Inputs:
    """The stage's shared inputs, never raising on thin data: the occasion types and what the
    data supports, the occasions due in the `horizon_days` after `as_of` (empty: the day of the
    last event, order or send), and every campaign send labelled (`label_sends`).
    `tables`: engine tables (or DataFrames) customers, orders, events, campaigns (any may be None)."""
    try:
        types = occ.occasion_types(taxonomy, term_months=term_months, lang=lang)
    except Missing:
        types = pd.DataFrame(columns=occ.TYPE_COLUMNS)
    customers, orders, campaigns = (_frame(tables, n) for n in ("customers", "orders", "campaigns"))
    events = tables.get("events")
    names = occ.first_names(reidentification)
    calendar = occ.read_name_days(name_days)
    available = occ.availability(types, customers, events=events, names=names, name_days=calendar)
    last = [s.max() for s in (orders.get(TIMESTAMP), campaigns.get(SENT_AT)) if s is not None and s.notna().any()]
    if events is not None:
        e = engine.table(events)
        last.append(engine.to_pandas(e.agg(last=e[TIMESTAMP].max()))["last"].iloc[0])
    last = [t for t in last if pd.notna(t)]
    day = occ.calendar_day(as_of) if as_of else (local_day(pd.Series([max(last)]), timezone).iloc[0] if last
                                         else pd.Timestamp.now().normalize())
    horizon = occ.occasion_dates(types, customers, start=day + pd.Timedelta(days=1),
                                 end=day + pd.Timedelta(days=horizon_days), events=events, names=names,
                                 name_days=calendar, timezone=timezone) if len(customers) else pd.DataFrame(
        columns=[CUSTOMER_ID, OCCASION, DATE, WINDOW_START])
    due = occ.due_occasions(horizon, customers, as_of=day, horizon_days=horizon_days, timezone=timezone) if len(customers) else horizon
    sends = pd.DataFrame(columns=SEND_COLUMNS)
    if len(campaigns) and len(customers):
        sent = local_day(campaigns[SENT_AT], timezone)
        lead = int(types["lead_days"].max()) if len(types) else 0
        windows = occ.occasion_dates(types, customers, start=sent.min(), end=sent.max() + pd.Timedelta(days=lead),
                                     events=events, names=names, name_days=calendar, timezone=timezone)
        sends = label_sends(campaigns, windows, customers, fatigue_days=fatigue_days, types=types, timezone=timezone)
    return Inputs(taxonomy, types, available, customers, orders, events, names, calendar, day, due, sends)


# --- sends -----------------------------------------------------------------------------------------
def prior_counts(customer: pd.Series, at: pd.Series, *, days: float) -> np.ndarray:
    """For each row, how many rows of the same customer fall in the `days` before `at` (strictly
    before it; rows at the same instant do not count each other).

        customers A A A at days 0, 10, 200 (days=90) -> 0, 1, 0
    """
    codes = pd.factorize(customer.astype("str"))[0].astype("int64")
    t = _epoch_seconds(at)
    width = int(days * 86_400)
    span = int(t.max() - t.min()) + 2 * width + 1 if len(t) else 1
    key = codes * span + (t - (t.min() if len(t) else 0))
    order = np.sort(key)
    return (np.searchsorted(order, key, side="left") - np.searchsorted(order, key - width, side="left")).astype("int64")


def _epoch_seconds(stamps: pd.Series) -> np.ndarray:
    """Whole seconds since the epoch of timestamps (naive values taken as UTC)."""
    ts = pd.to_datetime(pd.Series(stamps))
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    return ((ts - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype="int64")


def label_sends(campaigns: pd.DataFrame, windows: pd.DataFrame, customers: pd.DataFrame, *, fatigue_days: float = 90,
                types: pd.DataFrame | None = None, timezone: str = TIMEZONE) -> pd.DataFrame:
    """Every campaign send with its response, the customer's segment, whether it fell in an
    occasion's lead time and how many sends the customer had in the `fatigue_days` before.

    In: campaigns (campaign_id, customer_id, sent_at, responded_at), `occasions.occasion_dates`
    covering the send days (customer_id, occasion, date, window_start), customers (customer_id,
    segment). `types` orders the occasions when a send hits several (first wins).
    Out: campaign_id, customer_id, sent_at, send_day, responded, segment, occasion_timed,
    occasion (missing when not timed), prior_contacts.
    """
    require_campaigns(campaigns)
    sends = campaigns.loc[campaigns[CUSTOMER_ID].notna()].reset_index(drop=True)
    responded = (sends[RESPONDED_AT].notna() if RESPONDED_AT in sends.columns else pd.Series(False, index=sends.index))
    seg = (customers.loc[:, [CUSTOMER_ID, SEGMENT]].astype({CUSTOMER_ID: "str"}).drop_duplicates(CUSTOMER_ID)
           if SEGMENT in customers.columns else pd.DataFrame({CUSTOMER_ID: pd.Series(dtype="str"), SEGMENT: pd.Series(dtype="str")}))
    out = pd.DataFrame({CAMPAIGN_ID: sends[CAMPAIGN_ID].astype("str"), CUSTOMER_ID: sends[CUSTOMER_ID].astype("str"),
                        SENT_AT: sends[SENT_AT], "send_day": local_day(sends[SENT_AT], timezone),
                        "responded": responded.astype(bool).to_numpy()})
    out = out.merge(seg, on=CUSTOMER_ID, how="left", validate="many_to_one")
    out = out.assign(**{SEGMENT: out[SEGMENT].fillna("unknown").astype("str")})
    hit = _occasion_of(out, windows, types)
    return out.assign(occasion_timed=hit.notna().to_numpy(), **{OCCASION: hit.to_numpy()},
                      prior_contacts=prior_counts(out[CUSTOMER_ID], out[SENT_AT], days=fatigue_days))[SEND_COLUMNS]


def _occasion_of(sends: pd.DataFrame, windows: pd.DataFrame, types: pd.DataFrame | None) -> pd.Series:
    """Per send the first occasion (in `types` order) whose window holds its day; else missing.
    Windows of one type have one length, so the latest window start before the day decides."""
    result = pd.Series(pd.NA, index=sends.index, dtype="str")
    order = list(types["occasion"]) if types is not None else sorted(windows[OCCASION].unique())
    left = sends.loc[:, [CUSTOMER_ID, "send_day"]].assign(_pos=np.arange(len(sends))).sort_values("send_day", kind="stable")
    for code in reversed(order):                     # first in order written last: it wins
        w = windows.loc[windows[OCCASION] == code, [CUSTOMER_ID, WINDOW_START, DATE]].sort_values(WINDOW_START, kind="stable")
        if w.empty:
            continue
        m = pd.merge_asof(left, w, left_on="send_day", right_on=WINDOW_START, by=CUSTOMER_ID, direction="backward")
        inside = (m[DATE] >= m["send_day"]).fillna(False).to_numpy(dtype=bool)
        result.iloc[m["_pos"].to_numpy()[inside]] = code
    return result


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
    g = sends.assign(_x=exposed.astype(bool).to_numpy(), _r=sends["responded"].astype(int))
    agg = g.groupby([*by, "_x"]).agg(k=("_r", "sum"), n=("_r", "size")).unstack("_x", fill_value=0)
    get = lambda col, x: agg[(col, x)] if (col, x) in agg.columns else 0          # noqa: E731
    return pd.DataFrame({"k1": get("k", True), "n1": get("n", True), "k0": get("k", False), "n0": get("n", False)})


def occasion_response(sends: pd.DataFrame, *, adjust_for: Sequence[str] = (CAMPAIGN_ID, SEGMENT),
                      confidence: float = 0.95) -> dict:
    """Response of occasion-timed against other sends.

    Out: {occasion_timed: {sends, responses, rate, ci_low, ci_high}, other: {...}, ratio (raw,
    Katz interval), adjusted (Mantel-Haenszel over `adjust_for` strata, CMH test), adjusted_for}.
    `schema.Missing` without sends on both sides.
    """
    require_campaigns(sends)
    x = sends["occasion_timed"].astype(bool)
    if not x.any() or x.all():
        raise Missing("no campaign send coincided with an occasion" if not x.any() else "every send coincided with an occasion",
                      enable="occasions derivable for the recipients (customers.signup_date, events) and campaign sends to them")
    r = sends["responded"].astype(bool)
    k1, n1, k0, n0 = int(r[x].sum()), int(x.sum()), int(r[~x].sum()), int((~x).sum())
    return {"occasion_timed": _rates(k1, n1, confidence), "other": _rates(k0, n0, confidence),
            "ratio": risk_ratio(k1, n1, k0, n0, confidence=confidence),
            "adjusted": mantel_haenszel(_strata(sends, x, list(adjust_for)), confidence=confidence),
            "adjusted_for": list(adjust_for), "confidence": confidence}


def response_by_occasion(sends: pd.DataFrame, types: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Response rate of the sends timed on each occasion and of the other sends, with the ratio to
    the other sends. Out: occasion, label, sends, responses, rate, ci_low, ci_high, ratio,
    ratio_low, ratio_high (the last row is 'other')."""
    r = sends["responded"].astype(bool)
    other = ~sends["occasion_timed"].astype(bool)
    k0, n0 = int(r[other].sum()), int(other.sum())
    rows = []
    for code, label in types[["occasion", "label"]].itertuples(index=False):     # a handful of occasion types
        hit = sends[OCCASION].eq(code).fillna(False).astype(bool)
        if hit.any():
            rr = risk_ratio(int(r[hit].sum()), int(hit.sum()), k0, n0, confidence=confidence)
            rows.append({"occasion": code, "label": label, **_rates(int(r[hit].sum()), int(hit.sum()), confidence),
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
    """Response rate by the number of sends the customer had in the fatigue window before.

    Out: band ('0', '1', ..., '3+'), prior_min, sends, responses, rate, ci_low, ci_high.
    """
    require_campaigns(sends)
    edges = sorted(int(b) for b in bands)
    band = np.searchsorted(edges, sends["prior_contacts"].to_numpy(), side="right") - 1
    labels = [str(b) for b in edges[:-1]] + [f"{edges[-1]}+"]
    g = pd.DataFrame({"_b": band, "_r": sends["responded"].astype(int).to_numpy()}).groupby("_b")["_r"].agg(["sum", "size"])
    rows = [{"band": labels[i], "prior_min": edges[i],
             **_rates(int(g["sum"].get(i, 0)), int(g["size"].get(i, 0)), confidence)} for i in range(len(edges))]
    return pd.DataFrame(rows)


def fatigue_slope(sends: pd.DataFrame, *, adjust_for: Sequence[str] = (SEGMENT,), cap: int = 10,
                  confidence: float = 0.95) -> dict:
    """Change of the response rate per further send in the fatigue window: the rate ratio of a
    Poisson regression of responses on prior_contacts (capped at `cap`) with `adjust_for`
    dummies and log(sends) as offset, fitted on the aggregated counts.
    Out: {rate_ratio_per_contact, ci_low, ci_high, p_value, sends}."""
    g = (sends.assign(_p=sends["prior_contacts"].clip(upper=cap), _r=sends["responded"].astype(int))
         .groupby(["_p", *adjust_for]).agg(k=("_r", "sum"), n=("_r", "size")).reset_index())
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
def recent_interest(sends: pd.DataFrame, events, *, interest_days: float = 30,
                    touchpoints: Sequence[str] = INTEREST_TOUCHPOINTS) -> pd.Series:
    """Per send: did the recipient show interest in the `interest_days` before it (an event of
    `touchpoints`, or any inbound contact)? Computed on the engine. Out: bool Series on sends' index."""
    if events is None:
        raise Missing("no events to see the recipients' interest", enable="events (web visits, contacts)")
    e = engine.table(events)
    keys = pd.DataFrame({"_k": np.arange(len(sends)), "_c": sends[CUSTOMER_ID].astype("str").to_numpy(),
                         "_hi": _epoch_seconds(sends[SENT_AT])})
    keys = keys.assign(_lo=keys["_hi"] - int(interest_days * 86_400))
    s = ibis.memtable(keys)
    cond = e[TOUCHPOINT].isin(list(touchpoints))
    if DIRECTION in e.columns:
        cond = cond | (e[DIRECTION] == "inbound")
    sec = e[TIMESTAMP].truncate("s").epoch_seconds().cast("int64")
    picked = e.filter(cond & e[CUSTOMER_ID].notnull()).select(_c=e[CUSTOMER_ID].cast("string"), _t=sec)
    j = s.join(picked, [s._c == picked._c, picked._t < s._hi, picked._t >= s._lo]).select(s._k).distinct()
    hit = engine.to_pandas(j)["_k"].to_numpy()
    flags = np.zeros(len(sends), dtype=bool)
    flags[hit] = True
    return pd.Series(flags, index=sends.index)


def campaign_table(sends: pd.DataFrame, events, *, interest_days: float = 30, min_sends: int = 100,
                   confidence: float = 0.95) -> pd.DataFrame:
    """Per campaign: sends, response rate with interval, the share of recipients with recent
    interest (`recent_interest`) and the response with and without it; lowest response first.
    Campaigns with fewer than `min_sends` sends are left out. Out: campaign_id, first_send, sends,
    responses, rate, ci_low, ci_high, interest_share, rate_interested, rate_not_interested."""
    require_campaigns(sends)
    interest = recent_interest(sends, events, interest_days=interest_days)
    g = sends.assign(_i=interest.to_numpy(), _r=sends["responded"].astype(int))
    agg = g.groupby(CAMPAIGN_ID).agg(first_send=("send_day", "min"), sends=("_r", "size"), responses=("_r", "sum"),
                                     interest_share=("_i", "mean"))
    inter = g.loc[g["_i"]].groupby(CAMPAIGN_ID)["_r"].mean().rename("rate_interested")
    other = g.loc[~g["_i"]].groupby(CAMPAIGN_ID)["_r"].mean().rename("rate_not_interested")
    agg = agg.join(inter).join(other).loc[lambda d: d["sends"] >= min_sends]
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
