"""Moments of truth: which contacts make or break loyalty, how well they are handled, how
complaints develop, and whom to call back.

A *moment* is a contact reason (taxonomy `contact_reasons`, those flagged `moment` and the
classic four of `moments_of_truth` first, then every other reason seen) or a moment derived
from the log (taxonomy `derived_moments`, e.g. slow provisioning). Definitions:

- **Exposure** of a survey response: the customer had a contact of the moment in the
  `window_days` up to the response (0 <= response - contact <= window). Impact = KPI of the
  exposed responses minus that of the unexposed (intervals from `cxlib.metrics`), and the same
  difference adjusted for segment (and other covariates) by OLS on the KPI's per-answer score
  (NPS: promoter +100, passive 0, detractor -100; CSAT: 100 for 4-5; CES: the score), so the
  coefficient is in the KPI's own unit. Benjamini-Hochberg over the moments.
- **Churn** after a moment, on customer time (person-time): the days within
  `churn_window_days` after a customer's contacts of the moment are *exposed* time, all other
  active days *unexposed*. Churn rate = churns / customer-days; churn lift = rate ratio exposed /
  unexposed with an exact conditional (binomial) interval and test; churn within the window
  as a risk 1 - exp(-rate * window) for exposed and unexposed, difference with a delta-method
  interval; adjusted rate ratio from a Poisson regression on the aggregated cells (exposure x
  segment, log customer-days offset), which is what a logistic model is for fixed follow-up.
- **Priority** = NPS points at stake = share of responses exposed x (- adjusted NPS impact):
  the points the overall NPS loses through the moment. Moments with a significant positive
  impact are *magic moments*.
- **Complaint rate** = complaint contacts per 1,000 active customers per category and month;
  u-chart limits centre +/- 3 sqrt(centre / n) with n = active customers / 1,000, revised once
  out-of-control months are left out of the centre (Phase I practice).

Every computation over all events is an Ibis expression run by the engine of the input
tables (`cxlib.engine`: DuckDB by default, PySpark unchanged); only aggregated results and the
survey-response level come back as pandas.

    events = moments.with_derived_moments(tables["events"], taxonomy)
    handled = moments.handled_contacts(events, codes)
    exposures = moments.response_exposures(handled, tables["feedback"], window_days=60)
    moments.kpi_impact(responses, exposures, moments=codes, kpi="nps")
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _
from scipy import stats as st

from cxlib import engine, metrics
from cxlib.config import fold
from cxlib.schema import (
    CES, CHANNEL, CHURN_DATE, CONSENT_CHANNELS, CONTACT_CONSENT, CONTACT_REASON, CSAT, CUSTOMER_ID, CUSTOMER_REF,
    DIRECTION, EVENT_ID, LEAD_DATE, NPS, RESOLVED, RESPONSE_ID, SEGMENT, SIGNUP_DATE, TIMESTAMP,
    TOUCHPOINT, WAIT_SECONDS,
)

SECONDS_PER_DAY = 86_400
UNKNOWN = "unknown"
MOMENT = "moment"
DIMENSION = "dimension"
LEVEL = "level"
CATEGORY = "category"
MONTH = "month"
RESOLUTION = "resolution"
FCR = "first_contact_resolution"
WAIT_BAND = "wait_band"
HANDLING_DIMENSIONS = (RESOLUTION, FCR, WAIT_BAND, CHANNEL)
DEFAULT_WAIT_BANDS = (60, 300, 900)          # seconds: < 1 min, 1-5, 5-15, >= 15 min
NOT_RECORDED = "not recorded"
DIRECT_CHANNELS = ("phone", "email", "sms", "letter")   # channels a call-back can use, in preference order
INCLUDED, NO_CONSENT, OTHER = "included", "excluded_no_consent", "excluded_other"
STATUSES = (INCLUDED, NO_CONSENT, OTHER)
CONSENT = "consent"                           # consent log: True = opt-in, False = opt-out
_SEP = "\x1f"


class MomentsError(ValueError):
    """Input to a moments-of-truth computation is unusable (missing column, bad parameter)."""


# --- helpers ------------------------------------------------------------------------------

def _tbl(data, name: str, columns: Iterable[str]) -> ir.Table:
    expr = engine.table(data)
    missing = [c for c in columns if c not in expr.columns]
    if missing:
        raise MomentsError(f"{name}: missing column(s) {missing}; present: {list(expr.columns)}")
    return expr


def _require(df: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MomentsError(f"{name}: missing column(s) {missing}; present: {list(df.columns)}")


def _seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since the epoch (truncated, so every backend agrees)."""
    return ts.truncate("s").epoch_seconds().cast("int64")


def _epoch(value) -> int:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.floor("s").timestamp())


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise MomentsError(f"confidence must be between 0 and 1, got {confidence}")
    return float(st.norm.ppf(0.5 + confidence / 2))


def _bh(p: pd.Series, small: pd.Series, alpha: float) -> pd.DataFrame:
    """Benjamini-Hochberg over the rows that are not small (small rows: NaN, not significant)."""
    return metrics.benjamini_hochberg(p.where(~small.astype(bool)), alpha=alpha)


def moment_label(taxonomy, code: str, lang: str = "en") -> str:
    """Label of a moment: a contact reason's or a derived moment's label, else the code."""
    if code in taxonomy.section("contact_reasons"):
        return taxonomy.label("contact_reasons", code, lang)
    entry = (taxonomy.data.get("derived_moments") or {}).get(code) or {}
    return entry.get(lang) or entry.get("en") or str(code)


def wait_band_labels(bands: Sequence[float] = DEFAULT_WAIT_BANDS) -> list[str]:
    """Labels of the wait bands, shortest first: (60, 300, 900) -> ['< 1 min', '1-5 min', '5-15 min', '>= 15 min']."""
    bands = list(bands)
    if not bands or any(b <= 0 for b in bands) or bands != sorted(set(bands)):
        raise MomentsError(f"wait_band_seconds must be increasing positive seconds, got {bands}")
    mins = [f"{b / 60:g}" for b in bands]
    inner = [f"{lo}–{hi} min" for lo, hi in zip(mins, mins[1:])]
    return [f"< {mins[0]} min", *inner, f"≥ {mins[-1]} min"]


_LEVEL_ORDER = {RESOLUTION: ("resolved", "unresolved"), FCR: ("yes", "no")}


def _level_order(dimension: pd.Series, level: pd.Series) -> pd.Series:
    """Sort key of handling levels: resolved before unresolved, yes before no, wait bands from
    short to long, 'unknown' / 'not recorded' last, channels alphabetically."""
    def key(dim: str, lev: str) -> float:
        if lev in (UNKNOWN, NOT_RECORDED):
            return math.inf
        if dim in _LEVEL_ORDER:
            return float(_LEVEL_ORDER[dim].index(lev)) if lev in _LEVEL_ORDER[dim] else 50.0
        if dim == WAIT_BAND:
            number = re.search(r"\d+(?:\.\d+)?", lev)
            return (float(number.group()) if number else 50.0) - (0.5 if lev.startswith("<") else 0.0)
        return 0.0
    return pd.Series([key(d, lv) for d, lv in zip(dimension, level)], index=level.index, dtype="float64")


# --- moments: derived ones, the catalogue, candidates ------------------------------------------

def with_derived_moments(events, taxonomy=None, *, rules: Mapping | None = None,
                         col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                         col_event_id: str = EVENT_ID, col_touchpoint: str = TOUCHPOINT,
                         col_reason: str = CONTACT_REASON, col_wait: str = WAIT_SECONDS,
                         col_direction: str = DIRECTION) -> ir.Table:
    """The events plus one event per derived moment (taxonomy `derived_moments`, or `rules`).

    `between: [a, b], min_days: d`: each touchpoint-b event whose latest earlier touchpoint-a
    event of the same customer lies more than d days before it (e.g. order -> activation over
    14 days) is repeated with contact_reason = the rule's code, dated at b.
    `wait_over_seconds: s`: each contact (not outbound) that waited more than s seconds, except
    contacts whose reason is in the optional `except_reasons` (e.g. a cancellation call: the
    customer had decided to leave before the wait, so it would show as churn caused by waiting).
    Derived events keep every column of the event they copy; event_id gets '#<code>'.
    """
    if rules is None:
        rules = (taxonomy.data.get("derived_moments") or {}) if taxonomy is not None else {}
    e = _tbl(events, "events", [col_customer, col_timestamp, col_event_id, col_touchpoint, col_reason])
    parts = [e]
    for code, rule in rules.items():
        rule = rule or {}
        if "between" in rule:
            pair, days = rule["between"], rule.get("min_days")
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(pair) or days is None:
                raise MomentsError(f"derived_moments.{code}: 'between' needs two touchpoints and 'min_days', got {rule}")
            first, then = pair
            later = e.filter(e[col_touchpoint] == then)
            earlier = e.filter(e[col_touchpoint] == first).select(_fc=e[col_customer], _fs=_seconds(e[col_timestamp]))
            pairs = later.join(earlier, [later[col_customer] == earlier._fc, earlier._fs <= _seconds(later[col_timestamp])])
            last = pairs.group_by(col_event_id).agg(_last=pairs._fs.max())
            hit = later.join(last, col_event_id)
            hit = hit.filter(_seconds(hit[col_timestamp]) - hit._last > int(round(float(days) * SECONDS_PER_DAY)))
        elif "wait_over_seconds" in rule:
            _tbl(e, "events", [col_wait])
            hit = e.filter(e[col_wait] > float(rule["wait_over_seconds"]))
            if col_direction in e.columns:
                hit = hit.filter(hit[col_direction].fill_null("inbound") != "outbound")
            if rule.get("except_reasons"):
                hit = hit.filter(~hit[col_reason].fill_null("").isin([str(r) for r in rule["except_reasons"]]))
        else:
            raise MomentsError(f"derived_moments.{code}: expected 'between' or 'wait_over_seconds', got {sorted(rule)}")
        parts.append(hit.mutate(**{col_reason: ibis.literal(str(code), "string"),
                                   col_event_id: hit[col_event_id] + f"#{code}"}).select(*e.columns))
    return ibis.union(*parts) if len(parts) > 1 else e


def moment_catalogue(taxonomy, lang: str = "en") -> pd.DataFrame:
    """Moments named by the taxonomy, in report order: the classic four (`moments_of_truth`),
    other contact reasons flagged `moment`, then derived moments.

    Out: moment, label, classic, derived, complaint (complaint category or '').
    """
    derived = list(taxonomy.data.get("derived_moments") or {})
    codes = [*taxonomy.moment_reasons, *[d for d in derived if d not in taxonomy.moment_reasons]]
    classic = set(taxonomy.data.get("moments_of_truth") or [])
    complaint = taxonomy.complaint_category_of_reason
    return pd.DataFrame({
        MOMENT: pd.Series(codes, dtype="str"),
        "label": pd.Series([moment_label(taxonomy, c, lang) for c in codes], dtype="str"),
        "classic": pd.Series([c in classic for c in codes], dtype=bool),
        "derived": pd.Series([c in derived for c in codes], dtype=bool),
        "complaint": pd.Series([complaint.get(c, "") for c in codes], dtype="str"),
    })


def candidate_moments(events, taxonomy, *, lang: str = "en", col_customer: str = CUSTOMER_ID,
                      col_reason: str = CONTACT_REASON, col_resolved: str = RESOLVED) -> pd.DataFrame:
    """Candidate moments: the taxonomy's moments (see `moment_catalogue`, shown even without
    contacts) and then every other contact reason seen, most frequent first.

    In: events (with derived moments, see `with_derived_moments`). Out: moment, label,
    classic, derived, flagged (named by the taxonomy as a moment), complaint, contacts,
    customers, resolved_rate (resolved / contacts with a known outcome).
    """
    e = _tbl(events, "events", [col_customer, col_reason, col_resolved])
    counts = engine.to_pandas(
        e.filter(e[col_reason].notnull()).group_by(col_reason)
        .agg(contacts=_.count(), customers=_[col_customer].nunique(),
             _resolved=ibis.ifelse(_[col_resolved], 1, 0).sum(),
             _known=ibis.ifelse(_[col_resolved].notnull(), 1, 0).sum())
    ).rename(columns={col_reason: MOMENT})
    catalogue = moment_catalogue(taxonomy, lang).assign(flagged=True)
    others = (counts.loc[lambda d: ~d[MOMENT].isin(catalogue[MOMENT])]
              .sort_values(["contacts", MOMENT], ascending=[False, True], kind="stable"))
    complaint = taxonomy.complaint_category_of_reason
    extra = pd.DataFrame({
        MOMENT: pd.Series(others[MOMENT].tolist(), dtype="str"),
        "label": pd.Series([moment_label(taxonomy, c, lang) for c in others[MOMENT]], dtype="str"),
        "classic": False, "derived": False, "flagged": False,
        "complaint": pd.Series([complaint.get(c, "") for c in others[MOMENT]], dtype="str"),
    })
    out = pd.concat([catalogue, extra], ignore_index=True).merge(counts, on=MOMENT, how="left")
    known = out["_known"].fillna(0)
    return (
        out.assign(contacts=out["contacts"].fillna(0).astype("int64"),
                   customers=out["customers"].fillna(0).astype("int64"),
                   resolved_rate=(out["_resolved"].fillna(0) / known.where(known > 0)).astype(float),
                   classic=out["classic"].astype(bool), derived=out["derived"].astype(bool),
                   flagged=out["flagged"].astype(bool))
        .loc[:, [MOMENT, "label", "classic", "derived", "flagged", "complaint", "contacts", "customers", "resolved_rate"]]
    )


def handled_contacts(events, moments: Sequence[str], *, wait_band_seconds: Sequence[float] = DEFAULT_WAIT_BANDS,
                     repeat_days: float = 7, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                     col_event_id: str = EVENT_ID, col_reason: str = CONTACT_REASON, col_channel: str = CHANNEL,
                     col_resolved: str = RESOLVED, col_wait: str = WAIT_SECONDS) -> ir.Table:
    """The contacts of `moments` with how they were handled (an Ibis table).

    Out: event_id, customer_id, timestamp, moment, channel, resolved, wait_seconds and the
    handling levels: resolution ('resolved' / 'unresolved' / 'unknown'),
    first_contact_resolution ('yes' = resolved and no further contact of the same customer and
    reason within `repeat_days`; 'no'; 'unknown' when the outcome is not recorded), wait_band
    (see `wait_band_labels`; 'not recorded' without a wait).
    """
    labels = wait_band_labels(wait_band_seconds)
    if not list(moments):
        raise MomentsError("handled_contacts: no moments given")
    e = _tbl(events, "events", [col_customer, col_timestamp, col_event_id, col_reason, col_channel, col_resolved, col_wait])
    e = e.filter(e[col_reason].isin([str(m) for m in moments]))
    sec = _seconds(e[col_timestamp])
    nxt = sec.lead().over(ibis.window(group_by=[col_customer, col_reason], order_by=[col_timestamp, col_event_id]))
    repeat = int(round(repeat_days * SECONDS_PER_DAY))
    wait = e[col_wait]
    band = ibis.cases(*[(wait < float(b), lab) for b, lab in zip(wait_band_seconds, labels)], else_=labels[-1])
    return e.select(
        e[col_event_id], e[col_customer], e[col_timestamp], e[col_reason].name(MOMENT), e[col_channel],
        e[col_resolved], e[col_wait],
        ibis.cases((e[col_resolved].isnull(), UNKNOWN), (e[col_resolved], "resolved"), else_="unresolved").name(RESOLUTION),
        ibis.cases((e[col_resolved].isnull(), UNKNOWN),
                   (e[col_resolved] & (nxt.isnull() | (nxt - sec > repeat)), "yes"), else_="no").name(FCR),
        ibis.ifelse(wait.isnull(), NOT_RECORDED, band).name(WAIT_BAND),
    )


def observation_period(events, *, col_timestamp: str = TIMESTAMP) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last timestamp (UTC) of a table, e.g. the event log."""
    e = _tbl(events, "events", [col_timestamp])
    out = engine.to_pandas(e.agg(first=e[col_timestamp].min(), last=e[col_timestamp].max()))
    first, last = out["first"].iloc[0], out["last"].iloc[0]
    if pd.isna(first):
        raise MomentsError("events: no timestamps, so no observation period")
    return pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")


# --- impact on survey KPIs -------------------------------------------------------------------

def response_exposures(handled, feedback, *, window_days: float = 60, col_response: str = RESPONSE_ID,
                       col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP) -> pd.DataFrame:
    """Which survey responses were exposed to which moment.

    In: contacts from `handled_contacts`, feedback (response_id, customer_id, timestamp). A
    response is exposed to a moment when its customer had a contact of it in the `window_days`
    up to the response (0 <= response - contact <= window). Out, one row per exposed response
    and moment: response_id, moment, contacts (in the window), last_contact, and the handling
    of the latest of them: resolution, first_contact_resolution, wait_band, channel.
    """
    h = _tbl(handled, "contacts", [col_customer, col_timestamp, EVENT_ID, MOMENT, *HANDLING_DIMENSIONS])
    f = _tbl(feedback, "feedback", [col_response, col_customer, col_timestamp])
    h = h.select(_c=h[col_customer], _s=_seconds(h[col_timestamp]), _e=h[EVENT_ID], _m=h[MOMENT],
                 last_contact=h[col_timestamp], **{d: h[d] for d in HANDLING_DIMENSIONS})
    f = f.filter(f[col_customer].notnull()).select(_r=f[col_response], _fc=f[col_customer], _fs=_seconds(f[col_timestamp]))
    window = int(round(window_days * SECONDS_PER_DAY))
    j = f.join(h, [f._fc == h._c, h._s <= f._fs, h._s >= f._fs - window])
    j = j.mutate(_rn=ibis.row_number().over(ibis.window(group_by=["_r", "_m"], order_by=[ibis.desc("_s"), ibis.desc("_e")])))
    counts = j.group_by(["_r", "_m"]).agg(contacts=_.count())
    latest = j.filter(j._rn == 0).select("_r", "_m", "last_contact", *HANDLING_DIMENSIONS)
    out = engine.to_pandas(latest.join(counts, ["_r", "_m"]))
    return (
        out.rename(columns={"_r": col_response, "_m": MOMENT})
        .loc[:, [col_response, MOMENT, "contacts", "last_contact", *HANDLING_DIMENSIONS]]
        .sort_values([col_response, MOMENT], kind="stable")
        .reset_index(drop=True)
    )


def kpi_outcome(scores: pd.Series, kpi: str = NPS) -> pd.Series:
    """Per-answer score whose mean is the KPI: NPS +100 promoter / 0 passive / -100 detractor;
    CSAT 100 for 4-5, else 0; CES the score itself. NA stays NA."""
    values = pd.to_numeric(pd.Series(scores), errors="raise").astype("float64")
    if kpi == NPS:
        out = np.select([values >= metrics.PROMOTER_MIN, values <= metrics.DETRACTOR_MAX], [100.0, -100.0], 0.0)
    elif kpi == CSAT:
        out = np.where(values >= metrics.CSAT_TOP2_MIN, 100.0, 0.0)
    elif kpi == CES:
        out = values.to_numpy()
    else:
        raise MomentsError(f"unknown kpi {kpi!r}; expected one of {list(metrics.KPIS)}")
    return pd.Series(out, index=values.index, dtype="float64").where(values.notna())


def _design(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Intercept plus covariates: numeric ones as they are, others as dummies (first level
    dropped; missing values form the level 'unknown')."""
    parts = [pd.DataFrame({"const": np.ones(len(frame))}, index=frame.index)]
    for col in covariates:
        values = frame[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            parts.append(values.astype("float64").to_frame(col))
        else:
            levels = values.astype("str").where(values.notna(), UNKNOWN)
            parts.append(pd.get_dummies(levels, prefix=col, drop_first=True, dtype=float))
    return pd.concat(parts, axis=1)


def adjusted_difference(y: pd.Series, exposed: pd.Series, design: pd.DataFrame, *,
                        confidence: float = 0.95) -> dict:
    """OLS coefficient of `exposed` in y ~ exposed + design (design holds the intercept and
    covariates): {estimate, ci_low, ci_high, p_value}; NaN when a group is empty, the
    exposure is collinear with the covariates or the fit has no residual degrees of freedom."""
    import statsmodels.api as sm

    nan = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    x = design.assign(_exposed=exposed.astype(float).to_numpy())
    keep = x.notna().all(axis=1) & y.notna()
    x, yy = x.loc[keep], y.loc[keep]
    n_exp = int(x["_exposed"].sum())
    if n_exp == 0 or n_exp == len(x) or len(x) <= x.shape[1]:
        return nan
    if np.linalg.matrix_rank(x.to_numpy()) < x.shape[1]:
        return nan
    fit = sm.OLS(yy.to_numpy(), x.to_numpy()).fit()
    k = x.shape[1] - 1
    low, high = fit.conf_int(alpha=1 - confidence)[k]
    return {"estimate": float(fit.params[k]), "ci_low": float(low), "ci_high": float(high), "p_value": float(fit.pvalues[k])}


def _exposure_matrix(ids: pd.Series, exposures: pd.DataFrame, moments: Sequence[str],
                     col_response: str, col_moment: str) -> pd.DataFrame:
    """Boolean frame: one row per id (same index), one column per moment."""
    pairs = exposures.loc[exposures[col_moment].isin(list(moments)), [col_response, col_moment]].drop_duplicates()
    flags = pd.crosstab(pairs[col_response], pairs[col_moment]).gt(0) if len(pairs) else pd.DataFrame()
    flags = flags.reindex(columns=list(moments), fill_value=False)
    return (flags.reindex(ids.to_numpy(), fill_value=False).astype(bool).set_axis(ids.index, axis=0)
            if len(flags) else pd.DataFrame(False, index=ids.index, columns=list(moments)))


def kpi_impact(responses: pd.DataFrame, exposures: pd.DataFrame, *, moments: Sequence[str], kpi: str = NPS,
               covariates: Sequence[str] = (SEGMENT,), min_n: int = 100, confidence: float = 0.95,
               alpha: float = 0.05, col_response: str = RESPONSE_ID, col_customer: str = CUSTOMER_ID,
               col_score: str | None = None, col_moment: str = MOMENT) -> pd.DataFrame:
    """Impact of each moment on a survey KPI: exposed minus unexposed responses, raw and adjusted.

    In: responses (response_id, customer_id, the KPI score, covariates; responses without a
    customer or a score are left out), exposures from `response_exposures`. Out, one row per
    moment in the given order: moment, kpi, n_exposed, n_unexposed, exposed_share, exposed_value,
    unexposed_value, difference, ci_low, ci_high, p_value (raw, `metrics.kpi_difference`),
    adjusted, adjusted_low, adjusted_high, adjusted_p (OLS, see `adjusted_difference`), small
    (n_exposed < min_n), q_value (Benjamini-Hochberg on adjusted_p over the moments that are not
    small) and significant (q_value <= alpha).

        kpi_impact(responses, exposures, moments=["invoice_unclear"], kpi="nps")
    """
    col = col_score or kpi
    covariates = list(covariates)
    _require(responses, [col_response, col_customer, col, *covariates], "responses")
    _require(exposures, [col_response, col_moment], "exposures")
    moments = [str(m) for m in moments]
    scored = responses.loc[lambda d: d[col].notna() & d[col_customer].notna()].reset_index(drop=True)
    flags = _exposure_matrix(scored[col_response], exposures, moments, col_response, col_moment)
    y = kpi_outcome(scored[col], kpi)
    design = _design(scored, covariates)
    scores = scored[col].astype("float64")
    rows = []
    for m in moments:
        mask = flags[m].to_numpy()
        raw = metrics.kpi_difference(scores[mask], scores[~mask], kpi, confidence=confidence)
        adj = adjusted_difference(y, flags[m], design, confidence=confidence)
        rows.append({
            MOMENT: m, "kpi": kpi, "n_exposed": raw["n_a"], "n_unexposed": raw["n_b"],
            "exposed_value": metrics.kpi_estimate(scores[mask], kpi)["value"],
            "unexposed_value": metrics.kpi_estimate(scores[~mask], kpi)["value"],
            "difference": raw["difference"], "ci_low": raw["ci_low"], "ci_high": raw["ci_high"], "p_value": raw["p_value"],
            "adjusted": adj["estimate"], "adjusted_low": adj["ci_low"], "adjusted_high": adj["ci_high"],
            "adjusted_p": adj["p_value"],
        })
    columns = [MOMENT, "kpi", "n_exposed", "n_unexposed", "exposed_value", "unexposed_value", "difference", "ci_low",
               "ci_high", "p_value", "adjusted", "adjusted_low", "adjusted_high", "adjusted_p"]
    out = pd.DataFrame(rows, columns=columns).astype({MOMENT: "str", "kpi": "str", "n_exposed": "int64", "n_unexposed": "int64"})
    total = out["n_exposed"] + out["n_unexposed"]
    out = out.assign(exposed_share=(out["n_exposed"] / total.where(total > 0)).astype(float),
                     small=out["n_exposed"] < min_n)
    bh = _bh(out["adjusted_p"], out["small"], alpha)
    return (out.assign(q_value=bh["p_adjusted"], significant=bh["significant"].astype(bool))
            .loc[:, [*columns[:4], "exposed_share", *columns[4:], "small", "q_value", "significant"]])


def handling_impact(responses: pd.DataFrame, exposures: pd.DataFrame, *, moments: Sequence[str] | None = None,
                    kpi: str = NPS, dimensions: Sequence[str] = HANDLING_DIMENSIONS, min_n: int = 30,
                    confidence: float = 0.95, col_response: str = RESPONSE_ID, col_customer: str = CUSTOMER_ID,
                    col_score: str | None = None, col_moment: str = MOMENT) -> pd.DataFrame:
    """A survey KPI within each moment by how it was handled (level of the latest contact in the
    window): resolved or not, first-contact resolution, wait band, channel.

    Out: moment, dimension, level, n, value, ci_low, ci_high, small (n < min_n), and against the
    responses not exposed to the moment: difference, diff_low, diff_high, p_value.
    """
    col = col_score or kpi
    _require(responses, [col_response, col_customer, col], "responses")
    _require(exposures, [col_response, col_moment, *dimensions], "exposures")
    scored = responses.loc[lambda d: d[col].notna() & d[col_customer].notna(), [col_response, col]]
    moments = [str(m) for m in (moments if moments is not None else exposures[col_moment].drop_duplicates())]
    long = (exposures.loc[exposures[col_moment].isin(moments)]
            .melt(id_vars=[col_response, col_moment], value_vars=list(dimensions), var_name=DIMENSION, value_name=LEVEL)
            .assign(**{LEVEL: lambda d: d[LEVEL].astype("str").where(d[LEVEL].notna(), UNKNOWN)})
            .merge(scored, on=col_response, how="inner"))
    columns = [MOMENT, DIMENSION, LEVEL, "n", "value", "ci_low", "ci_high", "small", "difference", "diff_low",
               "diff_high", "p_value"]
    if long.empty:
        return pd.DataFrame({c: pd.Series(dtype="str" if c in (MOMENT, DIMENSION, LEVEL) else "bool" if c == "small"
                                          else "int64" if c == "n" else "float64") for c in columns})
    est = metrics.kpi_by(long.rename(columns={col_moment: MOMENT}), [MOMENT, DIMENSION, LEVEL], kpi=kpi, min_n=min_n,
                         confidence=confidence, col_score=col)
    exposed_ids = exposures.groupby(col_moment)[col_response].agg(frozenset)
    unexposed = {m: scored.loc[~scored[col_response].isin(exposed_ids.get(m, frozenset())), col] for m in moments}
    groups = long.groupby([col_moment, DIMENSION, LEVEL], sort=False)[col]
    diffs = pd.DataFrame(
        [{MOMENT: m, DIMENSION: d, LEVEL: lv,
          **{k: v for k, v in metrics.kpi_difference(vals, unexposed[m], kpi, confidence=confidence).items()
             if k in ("difference", "ci_low", "ci_high", "p_value")}}
         for (m, d, lv), vals in groups],
    ).rename(columns={"ci_low": "diff_low", "ci_high": "diff_high"})
    order = {m: i for i, m in enumerate(moments)}
    dim_order = {d: i for i, d in enumerate(dimensions)}
    return (
        est.loc[:, [MOMENT, DIMENSION, LEVEL, "n", "value", "ci_low", "ci_high", "small"]]
        .merge(diffs, on=[MOMENT, DIMENSION, LEVEL], how="left")
        .assign(_m=lambda d: d[MOMENT].map(order), _d=lambda d: d[DIMENSION].map(dim_order),
                _l=lambda d: _level_order(d[DIMENSION], d[LEVEL]))
        .sort_values(["_m", "_d", "_l", LEVEL], kind="stable")
        .loc[:, columns]
        .astype({MOMENT: "str", DIMENSION: "str", LEVEL: "str"})
        .reset_index(drop=True)
    )


# --- churn after a moment (person-time) ----------------------------------------------------------

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
        raise MomentsError(f"churn: end {end} must be after start {start}")
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
    prev = e._s.lag().over(ibis.window(group_by=["_c", "_k"], order_by=["_s"]))
    e = e.mutate(_new=ibis.ifelse(prev.isnull() | (e._s - prev > window), 1, 0))
    e = e.mutate(_isl=e._new.sum().over(ibis.cumulative_window(group_by=["_c", "_k"], order_by=["_s"])))
    islands = e.group_by(["_c", "_k", "_isl"]).agg(_lo=e._s.min(), _hi=e._s.max() + window)
    j = islands.join(cust, "_c")
    exposed = ibis.greatest(ibis.least(j._hi, j._b) - ibis.greatest(j._lo, j._a), 0)
    j = j.mutate(_exp=exposed, _in=ibis.ifelse((j._ch == 1) & (j._chs > j._lo) & (j._chs <= j._hi), 1, 0))
    per = engine.to_pandas(
        j.group_by(["_k", *covariates]).agg(customers_exposed=j._c.nunique(where=j._exp > 0),
                                            _edays=j._exp.sum(), _echurned=j._in.sum())
    ).rename(columns={"_k": col_moment})
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
    x = pd.concat([_design(long, covariates), long[["_x"]]], axis=1)
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
    z = _z(confidence)
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
    (`churn_cells` then `churn_table`; see there for columns)."""
    cells = churn_cells(contacts, customers, start=start, end=end, churn_window_days=churn_window_days,
                        moments=moments, covariates=covariates, **cols)
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
    keyed = ibis.union(*[
        h.select(col_customer, col_timestamp,
                 _key=h[MOMENT] + f"{_SEP}{dim}{_SEP}" + h[dim].cast("string").fill_null(UNKNOWN))
        for dim in dimensions
    ])
    cells = churn_cells(keyed, customers, start=start, end=end, churn_window_days=churn_window_days,
                        covariates=(), col_moment="_key", col_customer=col_customer, col_timestamp=col_timestamp, **cols)
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


def complaints_after_waits(events, *, followup_reason: str = "complaint_hotline", followup_days: float = 14,
                           wait_band_seconds: Sequence[float] = DEFAULT_WAIT_BANDS, confidence: float = 0.95,
                           col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                           col_event_id: str = EVENT_ID, col_reason: str = CONTACT_REASON,
                           col_wait: str = WAIT_SECONDS) -> pd.DataFrame:
    """Share of contacts with a recorded wait that are followed by a `followup_reason` contact of
    the same customer within `followup_days`, by wait band (the follow-up contacts themselves
    are not counted as sources). Out: wait_band, contacts, followed, rate, ci_low, ci_high (Wilson)."""
    labels = wait_band_labels(wait_band_seconds)
    e = _tbl(events, "events", [col_customer, col_timestamp, col_event_id, col_reason, col_wait])
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


# --- ranking -----------------------------------------------------------------------------------

def rank_moments(candidates: pd.DataFrame, nps: pd.DataFrame, churn: pd.DataFrame | None = None) -> pd.DataFrame:
    """Reach x impact: one row per candidate moment, ranked by priority.

    In: `candidate_moments`, `kpi_impact` for NPS, `churn_impact` (optional).
    points_at_stake = exposed_share x (- adjusted NPS impact): the NPS points the overall score
    loses through the moment (negative: points it gains). priority = points_at_stake when the
    impact is significant, else 0 (an impact we cannot tell from chance puts nothing at stake);
    NaN for small moments, which are never ranked. magic = a significant positive impact.
    Out: moment, label, classic, reach (share of active customers exposed), exposed_share,
    n_exposed, nps_impact (adjusted, points), ci_low, ci_high, nps_impact_raw, raw_ci_low,
    raw_ci_high, significant, small, churn_lift, churn_lift_low, churn_lift_high,
    churn_difference, churn_significant, points_at_stake, priority, rank (1 = highest), magic;
    sorted by priority, then points_at_stake (highest first, small moments last).
    """
    _require(candidates, [MOMENT, "label", "classic"], "candidates")
    _require(nps, [MOMENT, "n_exposed", "exposed_share", "difference", "ci_low", "ci_high", "adjusted",
                   "adjusted_low", "adjusted_high", "small", "significant"], "nps impact")
    out = candidates.loc[:, [MOMENT, "label", "classic"]].merge(
        nps.loc[:, [MOMENT, "n_exposed", "exposed_share", "difference", "ci_low", "ci_high", "adjusted",
                    "adjusted_low", "adjusted_high", "small", "significant"]]
        .rename(columns={"difference": "nps_impact_raw", "ci_low": "raw_ci_low", "ci_high": "raw_ci_high",
                         "adjusted": "nps_impact", "adjusted_low": "ci_low", "adjusted_high": "ci_high"}),
        on=MOMENT, how="inner")
    if churn is not None:
        _require(churn, [MOMENT, "reach", "churn_lift", "lift_low", "lift_high", "churn_difference", "significant"],
                 "churn impact")
        out = out.merge(churn.loc[:, [MOMENT, "reach", "churn_lift", "lift_low", "lift_high", "churn_difference", "significant"]]
                        .rename(columns={"lift_low": "churn_lift_low", "lift_high": "churn_lift_high",
                                         "significant": "churn_significant"}), on=MOMENT, how="left")
    else:
        out = out.assign(reach=np.nan, churn_lift=np.nan, churn_lift_low=np.nan, churn_lift_high=np.nan,
                         churn_difference=np.nan, churn_significant=False)
    small = out["small"].astype(bool)
    significant = out["significant"].astype(bool)
    stake = (out["exposed_share"] * -out["nps_impact"]).where(~small).astype(float)
    out = out.assign(points_at_stake=stake, priority=stake.where(significant | stake.isna(), 0.0),
                     magic=(significant & (out["nps_impact"] > 0)).astype(bool),
                     churn_significant=out["churn_significant"].fillna(False).astype(bool))
    out = out.sort_values(["priority", "points_at_stake", "label"], ascending=[False, False, True], na_position="last",
                          kind="stable")
    rank = pd.Series(np.arange(1, len(out) + 1), index=out.index).where(out["priority"].notna())
    return (out.assign(rank=rank.astype("Int64"))
            .loc[:, [MOMENT, "label", "classic", "reach", "exposed_share", "n_exposed", "nps_impact", "ci_low", "ci_high",
                     "nps_impact_raw", "raw_ci_low", "raw_ci_high", "significant", "small", "churn_lift", "churn_lift_low",
                     "churn_lift_high", "churn_difference", "churn_significant", "points_at_stake", "priority", "rank", "magic"]]
            .reset_index(drop=True))


# --- complaints over time: u-chart ----------------------------------------------------------------

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
                    revise: bool = True, chart: str = "u", col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                    col_reason: str = CONTACT_REASON, col_signup: str = SIGNUP_DATE, col_churn: str = CHURN_DATE,
                    col_lead: str = LEAD_DATE) -> pd.DataFrame:
    """Complaints per 1,000 active customers per complaint category and month (UTC), with u-chart
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
    if not categories or not by_reason:
        raise MomentsError("taxonomy: no complaint_categories / contact reasons with a complaint category")
    e = _tbl(events, "events", [col_customer, col_timestamp, col_reason])
    c = _tbl(customers, "customers", [col_customer, col_signup, col_churn])
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
    label = {k: taxonomy.label("complaint_categories", k) for k in categories}
    return (limits.assign(category_label=lambda d: d[CATEGORY].map(label).astype("str"),
                          rate_per_1000=limits["rate"], center_per_1000=limits["center"], ucl_per_1000=limits["ucl"],
                          lcl_per_1000=limits["lcl"])
            .loc[:, [CATEGORY, "category_label", MONTH, "complaints", "active", "rate_per_1000", "center_per_1000",
                     "ucl_per_1000", "lcl_per_1000", "out_of_control", "signal",
                     *(["dispersion"] if chart == "laney" else [])]]
            .reset_index(drop=True))


# --- driver analysis ---------------------------------------------------------------------------

def relative_weights(data: pd.DataFrame, outcome: str, drivers: Sequence[str]) -> pd.DataFrame:
    """Johnson's relative weights: how much of the explained variance (R²) of `outcome` each
    driver carries, with correlated drivers handled by an orthogonal approximation.

    R = corr(drivers) = V diag(e) V'; L = V diag(sqrt e) V'; beta = L^-1 corr(drivers, outcome);
    weight_j = sum_k L_jk² beta_k²; the weights sum to R². Rows with a missing value are left
    out. Out, one row per driver (given order): driver, weight, share (% of R²), mean (mean
    rating, the performance), r2, n.
    """
    drivers = list(drivers)
    _require(data, [outcome, *drivers], "driver data")
    if len(drivers) < 1:
        raise MomentsError("relative_weights: name at least one driver")
    rows = data.loc[:, [outcome, *drivers]].astype("float64").dropna()
    if len(rows) < len(drivers) + 2:
        raise MomentsError(f"relative_weights: {len(rows)} complete rows are too few for {len(drivers)} drivers")
    constant = [c for c in [outcome, *drivers] if rows[c].std() == 0]
    if constant:
        raise MomentsError(f"relative_weights: column(s) {constant} do not vary; first rows: {rows.head(3).to_dict('records')}")
    corr = rows.corr().to_numpy()
    rxx, rxy = corr[1:, 1:], corr[1:, 0]
    evals, evecs = np.linalg.eigh(rxx)
    if evals.min() <= 1e-10:
        raise MomentsError(f"relative_weights: drivers {drivers} are perfectly collinear")
    lam = evecs @ np.diag(np.sqrt(evals)) @ evecs.T
    beta = np.linalg.solve(lam, rxy)
    weights = (lam**2) @ (beta**2)
    r2 = float(weights.sum())
    return pd.DataFrame({
        "driver": pd.Series(drivers, dtype="str"), "weight": weights,
        "share": 100 * weights / r2 if r2 > 0 else np.full(len(drivers), np.nan),
        "mean": rows[drivers].mean().to_numpy(), "r2": r2, "n": len(rows),
    })


def touchpoint_ratings(feedback: pd.DataFrame, *, outcome: str = NPS, rating: str = CSAT, min_n: int = 30,
                       col_customer: str = CUSTOMER_ID, col_touchpoint: str = TOUCHPOINT) -> pd.DataFrame:
    """Per-touchpoint ratings beside the overall score, one row per customer, for driver analysis.

    Outcome = the customer's mean `outcome` over responses without a touchpoint (relationship
    survey); each driver = the customer's mean `rating` at one touchpoint. Only customers who
    rated every kept touchpoint remain; while fewer than `min_n` do, the touchpoint with the
    fewest raters is dropped (at least two are needed). Out: customer_id, <outcome>, one column
    per kept touchpoint; no rows when no two touchpoints have `min_n` customers in common.
    """
    _require(feedback, [col_customer, col_touchpoint, outcome, rating], "feedback")
    known = feedback.loc[feedback[col_customer].notna()]
    overall = (known.loc[known[col_touchpoint].isna() & known[outcome].notna()]
               .groupby(col_customer)[outcome].mean())
    rated = (known.loc[known[col_touchpoint].notna() & known[rating].notna() & known[col_customer].isin(overall.index)]
             .pivot_table(index=col_customer, columns=col_touchpoint, values=rating, aggfunc="mean"))
    keep = sorted((tp for tp in rated.columns if rated[tp].notna().sum() >= min_n),
                  key=lambda tp: (-int(rated[tp].notna().sum()), str(tp)))
    while len(keep) > 2 and len(rated.loc[:, keep].dropna()) < min_n:
        keep = keep[:-1]
    wide = rated.loc[:, sorted(keep)].dropna()
    wide = wide if len(keep) >= 2 and len(wide) >= min_n else rated.iloc[0:0].loc[:, sorted(keep)]
    out = overall.rename(outcome).to_frame().join(wide, how="inner").reset_index()
    return out.rename(columns={"index": col_customer}).rename_axis(columns=None)


# --- contact list (closing the loop) -------------------------------------------------------------

def recent_moments(contacts, *, moments: Sequence[str], as_of, recent_days: float = 30,
                   col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP) -> pd.DataFrame:
    """Contacts of `moments` in the `recent_days` up to `as_of` (as_of - recent_days < t <= as_of).

    In: `handled_contacts`. Out: event_id, customer_id, timestamp, moment, channel, resolved.
    """
    h = _tbl(contacts, "contacts", [EVENT_ID, col_customer, col_timestamp, MOMENT, CHANNEL, RESOLVED])
    hi = _epoch(as_of)
    lo = hi - int(round(recent_days * SECONDS_PER_DAY))
    s = _seconds(h[col_timestamp])
    recent = h.filter(h[MOMENT].isin([str(m) for m in moments]) & (s > lo) & (s <= hi))
    out = engine.to_pandas(recent.select(EVENT_ID, col_customer, col_timestamp, MOMENT, CHANNEL, RESOLVED))
    return out.assign(**{RESOLVED: out[RESOLVED].astype("boolean")}).sort_values(
        [col_customer, col_timestamp, EVENT_ID], kind="stable").reset_index(drop=True)


def survey_responses(feedback, customers, *, covariates: Sequence[str] = (SEGMENT,), col_customer: str = CUSTOMER_ID,
                     col_response: str = RESPONSE_ID) -> pd.DataFrame:
    """The survey responses with the customer attributes `covariates` (e.g. segment), joined on
    the engine (left join: responses without a known customer keep NA), sorted by response_id.

    In: feedback and customers (Ibis tables or DataFrames). Out: the feedback columns plus the
    covariates not already in it; one row per response (the level the KPI models need).
    """
    covariates = list(covariates)
    f = _tbl(feedback, "feedback", [col_response, col_customer])
    c = _tbl(customers, "customers", [col_customer, *covariates])
    wanted = [col for col in covariates if col not in f.columns]
    joined = f.left_join(c.select(col_customer, *wanted), col_customer).select(*f.columns, *wanted)
    return engine.to_pandas(joined.order_by(col_response)).reset_index(drop=True)


def rows_for_customers(table, contacts: pd.DataFrame, *, col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """The rows of `table` (e.g. customers or orders, on the engine) of the customers in
    `contacts` (e.g. `recent_moments`): what the contact list needs, not the whole table.

    Out: the columns of `table`, rows ordered by customer_id.
    """
    _require(contacts, [col_customer], "contacts")
    t = _tbl(table, "table", [col_customer])
    ids = contacts.loc[contacts[col_customer].notna(), [col_customer]].drop_duplicates().astype("str")
    keep = ibis.memtable(ids.rename(columns={col_customer: "_c"}))
    out = engine.to_pandas(t.semi_join(keep, t[col_customer] == keep._c).order_by(col_customer))
    return out.reset_index(drop=True)


def parse_channels(text: pd.Series, taxonomy) -> pd.DataFrame:
    """Consent channel lists ('E-Mail, Telefon'; separators , ; | /) as rows of canonical channel
    codes (taxonomy aliases). Out: index (position in `text`), channel; unknown spellings dropped."""
    aliases = taxonomy.aliases("channels")
    parts = (pd.Series(text, dtype="str").str.split(r"\s*[,;|/]\s*", regex=True).explode()
             .dropna().map(lambda s: aliases.get(fold(s))))
    return pd.DataFrame({"_pos": parts.index.to_numpy(), CHANNEL: parts.to_numpy()}).dropna().drop_duplicates()


def consented_channels(customers: pd.DataFrame, taxonomy, *, consent_log: pd.DataFrame | None = None,
                       channels: Sequence[str] = DIRECT_CHANNELS, col_customer: str = CUSTOMER_ID,
                       col_consent: str = CONTACT_CONSENT, col_channels: str = CONSENT_CHANNELS,
                       col_timestamp: str = TIMESTAMP) -> pd.DataFrame:
    """The channels each customer explicitly agreed to be contacted on.

    Basis: the CRM opt-in (contact_consent true AND the channel listed in consent_channels; a
    missing flag is no consent). A consent log (customer_id, timestamp, channel, consent: True =
    opt-in, False = opt-out; channel empty = every channel) overrides it per channel: the latest
    entry wins and an opt-out wins a tie; an undated opt-in never overrides a dated entry, an
    undated opt-out always wins; an opt-in without a channel opts in to nothing.
    Out: customer_id, channel, basis ('crm' / 'consent log'), only `channels`.
    """
    _require(customers, [col_customer, col_consent, col_channels], "customers")
    channels = list(channels)
    opted = customers.loc[customers[col_consent].fillna(False).astype(bool), [col_customer, col_channels]].reset_index(drop=True)
    parsed = parse_channels(opted[col_channels], taxonomy)
    crm = pd.DataFrame({col_customer: pd.Series(opted[col_customer].to_numpy()[parsed["_pos"].to_numpy()], dtype="str"),
                        CHANNEL: pd.Series(parsed[CHANNEL].to_numpy(), dtype="str"), "basis": "crm"})
    crm = crm.loc[crm[CHANNEL].isin(channels)].drop_duplicates([col_customer, CHANNEL])
    if consent_log is None or len(consent_log) == 0:
        return crm.astype({col_customer: "str", CHANNEL: "str", "basis": "str"}).reset_index(drop=True)
    _require(consent_log, [col_customer, col_timestamp, CHANNEL, CONSENT], "consent log")
    aliases = taxonomy.aliases("channels")
    log = consent_log.loc[consent_log[col_customer].notna() & consent_log[CONSENT].notna(),
                          [col_customer, col_timestamp, CHANNEL, CONSENT]]
    log = log.assign(**{col_customer: log[col_customer].astype("str")},
                     _ch=log[CHANNEL].map(lambda s: None if pd.isna(s) or str(s).strip() == "" else aliases.get(fold(s), "?"))
                     .astype("str"),
                     _ok=log[CONSENT].astype(bool))
    every = log.loc[log["_ch"].isna() & ~log["_ok"]].drop(columns=["_ch"]).merge(
        pd.DataFrame({"_ch": channels}), how="cross")
    log = pd.concat([log.loc[log["_ch"].notna()], every], ignore_index=True)
    # Undated entries: an opt-in ranks below every dated entry, an opt-out above them (withdrawn
    # consent of unknown date is never overridden).
    undated = log[col_timestamp].isna()
    log = log.assign(_rank=np.select([undated & log["_ok"], undated & ~log["_ok"]], [0, 2], default=1))
    latest = (log.sort_values([col_customer, "_ch", "_rank", col_timestamp, "_ok"],
                              ascending=[True, True, True, True, False], kind="stable")
              .drop_duplicates([col_customer, "_ch"], keep="last"))
    decided = latest.loc[latest["_ch"].isin(channels), [col_customer, "_ch", "_ok"]].rename(columns={"_ch": CHANNEL})
    keep_crm = crm.merge(decided[[col_customer, CHANNEL]], on=[col_customer, CHANNEL], how="left", indicator=True)
    keep_crm = keep_crm.loc[keep_crm["_merge"] == "left_only", [col_customer, CHANNEL, "basis"]]
    from_log = decided.loc[decided["_ok"], [col_customer, CHANNEL]].assign(basis="consent log")
    return (pd.concat([keep_crm, from_log], ignore_index=True)
            .astype({col_customer: "str", CHANNEL: "str", "basis": "str"})
            .sort_values([col_customer, CHANNEL], kind="stable").reset_index(drop=True))


def contact_list(recent: pd.DataFrame, customers: pd.DataFrame, feedback: pd.DataFrame, taxonomy, *, as_of,
                 recent_days: float = 30, value: pd.DataFrame | None = None, consent_log: pd.DataFrame | None = None,
                 channels: Sequence[str] = DIRECT_CHANNELS, detractor_max: int = metrics.DETRACTOR_MAX,
                 lang: str = "en", col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                 col_churn: str = CHURN_DATE, col_score: str = NPS, col_value: str = "value") -> pd.DataFrame:
    """Customers to call back after a recent negative moment, consent-gated.

    Candidates: customers with a contact in `recent` (see `recent_moments`) that was unresolved,
    or who are detractors (latest NPS answer in the `recent_days` up to `as_of` <= detractor_max).
    The moment shown is the latest unresolved one, else the latest. Excluded other: customers not
    in `customers` or churned by `as_of`. Excluded no consent: no explicit consent for any of
    `channels` (see `consented_channels`). The channel is the one of the moment's contact if
    consented, else the first consented of `channels`. Ordered: included first, by value
    (historic value, `value` with customer_id and `col_value`; none = 0) then latest moment.

    Out: customer_id, status ('included' / 'excluded_no_consent' / 'excluded_other'),
    exclusion_reason, value, moment, moment_label, moment_at, resolved, latest_nps, detractor,
    channel, consent_basis, topic.
    """
    _require(recent, [col_customer, col_timestamp, MOMENT, CHANNEL, RESOLVED], "recent moments")
    _require(customers, [col_customer, col_churn, CONTACT_CONSENT, CONSENT_CHANNELS], "customers")
    _require(feedback, [col_customer, col_timestamp, col_score], "feedback")
    as_str = lambda d: d.assign(**{col_customer: d[col_customer].astype("str")})  # noqa: E731  (ids compare as text)
    recent, customers, feedback = as_str(recent), as_str(customers), as_str(feedback)
    value = as_str(value) if value is not None else None
    cutoff = pd.Timestamp(as_of)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    since = cutoff - pd.Timedelta(days=recent_days)
    moments_ = (recent.loc[recent[col_customer].notna()]
                .assign(_unresolved=lambda d: d[RESOLVED].eq(False).fillna(False).astype(bool))
                .sort_values([col_customer, "_unresolved", col_timestamp], kind="stable")
                .groupby(col_customer, sort=True)
                .agg(moment=(MOMENT, "last"), moment_at=(col_timestamp, "last"), resolved=(RESOLVED, "last"),
                     _channel=(CHANNEL, "last"), _any_unresolved=("_unresolved", "max"))
                .reset_index())
    answers = feedback.loc[feedback[col_customer].notna() & feedback[col_score].notna()
                           & (feedback[col_timestamp] > since) & (feedback[col_timestamp] <= cutoff)]
    latest = (answers.sort_values([col_customer, col_timestamp], kind="stable")
              .groupby(col_customer).agg(latest_nps=(col_score, "last")).reset_index())
    cand = moments_.merge(latest, on=col_customer, how="left")
    cand = cand.assign(detractor=(cand["latest_nps"] <= detractor_max).fillna(False).astype(bool),
                       _any_unresolved=cand["_any_unresolved"].astype(bool))
    cand = cand.loc[cand["_any_unresolved"] | cand["detractor"]]
    known = customers.loc[:, [col_customer, col_churn]].drop_duplicates(col_customer)
    cand = cand.merge(known.assign(_known=True), on=col_customer, how="left")
    churned = (cand[col_churn].notna() & (cand[col_churn] <= cutoff)).fillna(False).astype(bool)
    unknown = cand["_known"].isna()
    consent = consented_channels(customers.loc[customers[col_customer].isin(cand[col_customer])], taxonomy,
                                 consent_log=consent_log, channels=channels, col_customer=col_customer)
    pref = {ch: i + 1 for i, ch in enumerate(channels)}
    choice = (consent.merge(cand[[col_customer, "_channel"]], on=col_customer)
              .assign(_rank=lambda d: np.where(d[CHANNEL] == d["_channel"], 0, d[CHANNEL].map(pref)))
              .sort_values([col_customer, "_rank"], kind="stable").drop_duplicates(col_customer)
              .loc[:, [col_customer, CHANNEL, "basis"]].rename(columns={"basis": "consent_basis"}))
    cand = cand.merge(choice, on=col_customer, how="left")
    status = np.select([unknown, churned, cand[CHANNEL].isna()], [OTHER, OTHER, NO_CONSENT], INCLUDED)
    reason = np.select([unknown, churned, cand[CHANNEL].isna()],
                       ["unknown customer", "churned", "no explicit consent for a direct channel"], "")
    values = (value.loc[:, [col_customer, col_value]].drop_duplicates(col_customer) if value is not None
              else pd.DataFrame({col_customer: pd.Series(dtype="str"), col_value: pd.Series(dtype="float64")}))
    cand = cand.merge(values.rename(columns={col_value: "value"}), on=col_customer, how="left")
    topics = taxonomy.data.get("callback_topics") or {}
    labels = cand["moment"].map(lambda m: moment_label(taxonomy, m, lang))
    topic = [((topics.get(m) or {}).get(lang) or (topics.get(m) or {}).get("en") or f"Follow up: {lab}")
             for m, lab in zip(cand["moment"], labels)]
    out = cand.assign(
        status=pd.Series(status, index=cand.index, dtype="str"),
        exclusion_reason=pd.Series(reason, index=cand.index, dtype="str"),
        value=cand["value"].fillna(0.0).astype("float64"),
        moment_label=labels.astype("str"),
        topic=pd.Series(topic, index=cand.index, dtype="str"),
        _order=pd.Series(status, index=cand.index).map({s: i for i, s in enumerate(STATUSES)}),
    )
    out = out.assign(channel=out[CHANNEL].where(out["status"] == INCLUDED),
                     consent_basis=out["consent_basis"].where(out["status"] == INCLUDED))
    return (out.sort_values(["_order", "value", "moment_at", col_customer], ascending=[True, False, False, True], kind="stable")
            .loc[:, [col_customer, "status", "exclusion_reason", "value", "moment", "moment_label", "moment_at", RESOLVED,
                     "latest_nps", "detractor", CHANNEL, "consent_basis", "topic"]]
            .astype({col_customer: "str", "moment": "str", CHANNEL: "str", "consent_basis": "str"})
            .reset_index(drop=True))


def contact_list_counts(contacts: pd.DataFrame) -> dict:
    """{included, excluded_no_consent, excluded_other, candidates, exclusion_reasons: {reason: n}}."""
    _require(contacts, ["status", "exclusion_reason"], "contact list")
    counts = contacts["status"].value_counts()
    reasons = contacts.loc[contacts["status"] != INCLUDED, "exclusion_reason"].value_counts()
    return {**{s: int(counts.get(s, 0)) for s in STATUSES}, "candidates": int(len(contacts)),
            "exclusion_reasons": {str(k): int(v) for k, v in reasons.items()}}


def contact_list_export(contacts: pd.DataFrame, reidentification: pd.DataFrame, *,
                        col_customer: str = CUSTOMER_ID, col_ref: str = CUSTOMER_REF) -> pd.DataFrame:
    """The included customers with their CRM number for the service team (the CSV): customer_ref,
    customer_id, channel, moment_label, topic, moment_at, resolved, latest_nps, value. Names and
    contact details are never copied: the team looks them up in the CRM by the number."""
    _require(contacts, [col_customer, "status", CHANNEL, "moment_label", "topic", "moment_at", RESOLVED, "latest_nps", "value"],
             "contact list")
    _require(reidentification, [col_customer, col_ref], "re-identification table")
    refs = reidentification.loc[:, [col_customer, col_ref]].drop_duplicates(col_customer)
    out = contacts.loc[contacts["status"] == INCLUDED].merge(refs, on=col_customer, how="left", validate="many_to_one")
    missing = out.loc[out[col_ref].isna(), col_customer]
    if len(missing):
        raise MomentsError(f"re-identification table: no {col_ref} for {len(missing)} customer(s) of the contact list; "
                           f"first: {missing.head(3).tolist()}")
    columns = [col_ref, col_customer, CHANNEL, "moment_label", "topic", "moment_at", RESOLVED, "latest_nps", "value"]
    return out.loc[:, columns].reset_index(drop=True)


# --- words for the report -------------------------------------------------------------------------

def interval_text(estimate, low, high, *, decimals: int = 1, sign: bool = True, sep: str = " to ") -> pd.Series:
    """One readable cell per row: estimate with its interval, e.g. '-28.4 (-33.7 to -23.2)' (minus
    sign U+2212); '–' where the estimate is missing, the estimate alone where the interval is.

        interval_text(nps["adjusted"], nps["adjusted_low"], nps["adjusted_high"])
    """
    est = pd.Series(estimate, dtype="float64").reset_index(drop=True)
    lo = pd.Series(low, dtype="float64").reset_index(drop=True)
    hi = pd.Series(high, dtype="float64").reset_index(drop=True)
    spec = f"{'+' if sign else ''}.{int(decimals)}f"
    fmt = lambda v: format(v, spec).replace("-", "\u2212")  # noqa: E731
    text = [("–" if pd.isna(e) else fmt(e) if pd.isna(a) or pd.isna(b) else f"{fmt(e)} ({fmt(a)}{sep}{fmt(b)})")
            for e, a, b in zip(est, lo, hi)]
    index = estimate.index if isinstance(estimate, pd.Series) else None
    return pd.Series(text, index=index, dtype="str")


def handling_table(handling: pd.DataFrame, dimension: str, *, labels: Mapping | None = None, decimals: int = 0) -> pd.DataFrame:
    """One handling dimension of `handling_impact` as a compact table: one row per moment (its
    label), one column per level in the usual order, each cell 'value (n = …)', small groups
    marked '*'; '' where the moment has no answers at that level.

    Out: moment (label), then the levels.
    """
    _require(handling, [MOMENT, DIMENSION, LEVEL, "n", "value", "small"], "handling impact")
    rows = handling.loc[handling[DIMENSION] == dimension]
    order = list(dict.fromkeys(rows[MOMENT]))
    levels = (rows.assign(_l=_level_order(rows[DIMENSION], rows[LEVEL])).sort_values(["_l", LEVEL], kind="stable")[LEVEL]
              .drop_duplicates().tolist())
    spec = f"+.{int(decimals)}f"
    cell = [("–" if pd.isna(v) else format(v, spec).replace("-", "\u2212")) + f" (n = {int(n):,})" + ("*" if s else "")
            for v, n, s in zip(rows["value"], rows["n"], rows["small"])]
    wide = (rows.assign(_cell=pd.Series(cell, index=rows.index, dtype="str"))
            .pivot(index=MOMENT, columns=LEVEL, values="_cell").reindex(index=order, columns=levels).fillna(""))
    names = [str(labels.get(m, m)) if labels is not None else str(m) for m in wide.index]   # dict or Series
    return (wide.reset_index(drop=True).rename_axis(columns=None)
            .astype("str").assign(**{MOMENT: pd.Series(names, dtype="str")}).loc[:, [MOMENT, *levels]])


def ranking_table(ranking: pd.DataFrame, *, churn_exclude: Sequence[str] = ()) -> pd.DataFrame:
    """The ranking (`rank_moments`) for readers: estimates with their intervals in one cell,
    reach in %, a "*" on a significant churn lift; moments in `churn_exclude` (part of leaving,
    e.g. cancellation requests: their churn lift is circular) show "part of leaving" instead.
    Out: rank, moment, classic, reach (%), NPS impact adjusted (95% CI), raw, churn lift (95% CI),
    points at stake, priority, magic, too few."""
    leaving = ranking["moment"].isin(list(churn_exclude))
    lift = (interval_text(ranking["churn_lift"], ranking["churn_lift_low"], ranking["churn_lift_high"], decimals=2, sign=False)
            + np.where(ranking["churn_significant"].fillna(False).astype(bool), " *", ""))
    return pd.DataFrame({
        "rank": ranking["rank"], "moment": ranking["label"], "classic": ranking["classic"],
        "reach (%)": (100 * ranking["reach"]).round(1),
        "NPS impact, adjusted (95% CI)": interval_text(ranking["nps_impact"], ranking["ci_low"], ranking["ci_high"]),
        "raw": ranking["nps_impact_raw"].round(1),
        "churn lift (95% CI)": lift.where(~leaving, "part of leaving"),
        "points at stake": ranking["points_at_stake"].round(2), "priority": ranking["priority"].round(2),
        "magic": ranking["magic"], "too few": ranking["small"]})


def describe_ranking(ranking: pd.DataFrame, *, churn_exclude: Sequence[str] = ()) -> str:
    """Two or three sentences on the moments with NPS at stake (by priority), the magic moments
    and the moments without NPS at stake after which churn rises significantly (except
    `churn_exclude`, reasons that are part of leaving such as cancellation requests)."""
    ranked = ranking.loc[ranking["priority"].notna() & (ranking["priority"] > 0)]
    if ranked.empty:
        text = "No moment has a significant negative impact on NPS with enough exposed answers."
    else:
        parts = [f"**{r.label}** (NPS {r.nps_impact:+.0f} points for exposed customers, "
                 f"{r.priority:.1f} points of the overall NPS at stake"
                 + (f", churn ×{r.churn_lift:.1f}" if pd.notna(r.churn_lift) else "") + ")"
                 for r in ranked.head(3).itertuples()]
        text = "The moments that cost most loyalty: " + "; ".join(parts) + "."
    magic = ranking.loc[ranking["magic"]]
    if len(magic):
        text += " Magic moments (a significant gain): " + ", ".join(
            f"**{r.label}** ({r.nps_impact:+.0f} points)" for r in magic.itertuples()) + "."
    else:
        text += " No moment raises NPS significantly."
    churned = ranking.loc[ranking["churn_significant"].fillna(False).astype(bool) & (ranking["churn_lift"] > 1)
                          & ~(ranking["priority"] > 0) & ~ranking["moment"].isin(list(churn_exclude))]
    if len(churned):
        text += (" Without NPS at stake, churn still rises significantly after "
                 + ", ".join(f"**{r.label}** (×{r.churn_lift:.1f})"
                             for r in churned.sort_values("churn_lift", ascending=False, kind="stable").itertuples())
                 + ": a churn risk the NPS does not show.")
    return text


def describe_complaints(rates: pd.DataFrame, *, max_months: int = 4) -> str:
    """Names the out-of-control months per complaint category (`complaint_rates`); a category
    with more than `max_months` of them is called unstable, with its highest months named."""
    flagged = rates.loc[rates["out_of_control"]]
    if flagged.empty:
        return "All complaint rates stay within their control limits: no month stands out."
    parts = []
    for cat, g in flagged.groupby("category_label", sort=False):
        if len(g) > max_months:
            top = g.sort_values("rate_per_1000", ascending=False).head(3)
            parts.append(f"**{cat}** is not a stable process: {len(g)} of {int((rates['category_label'] == cat).sum())} "
                         f"months lie outside the limits, the highest "
                         + ", ".join(f"{r.month} ({r.rate_per_1000:.1f} per 1,000)" for r in top.itertuples())
                         + f" against a centre of {g['center_per_1000'].iloc[0]:.1f}")
        else:
            parts.append(f"**{cat}** in " + ", ".join(
                f"{r.month} ({r.rate_per_1000:.1f} per 1,000 against a centre of {r.center_per_1000:.1f}, "
                f"{r.signal} the limits)" for r in g.itertuples()))
    return "Out of control: " + "; ".join(parts) + "."


def describe_contact_list(counts: Mapping, *, recent_days: float, consent_log: bool) -> str:
    """The contact list in words: how many, the consent basis and the exclusions."""
    basis = ("explicit opt-in per channel in the CRM, overridden by the consent log (the latest entry wins, an "
             "opt-out wins a tie)" if consent_log else "explicit opt-in per channel in the CRM (no consent log "
             "with later withdrawals was supplied)")
    reasons = counts.get("exclusion_reasons") or {}
    why = "; ".join(f"{n:,} {r}" for r, n in reasons.items()) or "none"
    return (f"{counts['candidates']:,} customers had a negative moment in the last {recent_days:g} days that is "
            f"unresolved or left them a detractor. **{counts['included']:,}** are on the contact list; "
            f"{counts['excluded_no_consent']:,} were left out for lack of consent and {counts['excluded_other']:,} "
            f"for other reasons ({why}). Consent basis: {basis}.")
