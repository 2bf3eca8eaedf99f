"""Contacts per value tier, on the engine: the share of each tier's customers with a complaint or a
moment of truth, and the valuable customers at risk.

The events (a pandas or Ibis table) are filtered and counted per customer and reason by the engine
of the table (DuckDB, PySpark); only those per-customer counts come back as pandas.

- *At risk*: in a high tier and, within `window_days` up to `as_of`, a contact whose reason is a
  negative moment (`negative_moment_reasons`) or a latest NPS answer <= `detractor_max`.

    exposure_by_tier(tiered, events, reasons=taxonomy.complaint_category_of_reason, window_days=365)
    at_risk(tiered, events, feedback, high_tiers=["high"], negative_reasons=negative_moment_reasons(taxonomy))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import engine, metrics
from cxlib.schema import CONTACT_REASON, CUSTOMER_ID, NPS, TIMESTAMP, require
from cxlib.value.base import (
    ANY, DAY, TRIGGERS, VALUE, VALUE_TIER, ValueInputError, end_day, in_window, passes, require_columns, require_tiers,
)


def negative_moment_reasons(taxonomy) -> list[str]:
    """Contact reasons that count as a negative moment for the at-risk list: every complaint
    reason and the classic moments of truth (taxonomy `moments_of_truth`: unclear invoice,
    provisioning question, hotline and service-failure complaints). Reasons only flagged
    `moment` without being a complaint (e.g. a proactive outage notice) are not negative."""
    classic = list(taxonomy.data.get("moments_of_truth", []))
    return list(dict.fromkeys([*classic, *taxonomy.complaint_category_of_reason]))


def _contacts(events, reasons: Sequence[str], end: pd.Timestamp, window_days: int | None, *,
              col_customer: str, col_timestamp: str, col_reason: str) -> pd.DataFrame:
    """Per customer and contact reason in `reasons`: contacts and the last one, on days in
    (end - window_days, end] — computed on the engine; only the aggregate comes back."""
    t = engine.table(events)
    keep = (t[col_timestamp] < end + DAY) & t[col_reason].isin(list(reasons)) & t[col_customer].notnull()
    if window_days is not None:
        keep = keep & (t[col_timestamp] >= end - pd.Timedelta(days=window_days) + DAY)
    return engine.to_pandas(
        t.filter(keep)
        .group_by([col_customer, col_reason])
        .aggregate(contacts=lambda d: d.count(), last_contact=lambda d: d[col_timestamp].max())
    )


def require_contacts(events, reasons: Sequence[str], *, what: str = "contact", col_customer: str = CUSTOMER_ID,
                     col_reason: str = CONTACT_REASON) -> None:
    """schema.Missing when the events (pandas or Ibis) cannot show contacts of `reasons` per
    customer: no events, no customer ids, no contact reasons, or no such reason in the taxonomy."""
    t = engine.table(events)
    require(list(reasons), f"the taxonomy names no {what} reasons", enable=f"{what} reasons in the taxonomy")
    require(col_customer in t.columns and col_reason in t.columns, "the events lack customer ids or contact reasons",
            enable="events.customer_id and events.contact_reason")
    counts = engine.to_pandas(t.aggregate(n=t.count(), customers=t[col_customer].notnull().sum(),
                                          reasons=t[col_reason].notnull().sum())).iloc[0]
    require(counts["n"], "no events", enable="events (event_id, customer_id, timestamp, contact_reason)")
    require(counts["customers"] > 0, "the events do not name customers, so contacts cannot be linked to value",
            enable="events.customer_id")
    require(counts["reasons"] > 0, "the events carry no contact reason", enable="events.contact_reason")


def exposure_by_tier(
    tiered: pd.DataFrame,
    events,
    *,
    reasons: Mapping[str, str],
    as_of=None,
    window_days: int | None = None,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_reason: str = CONTACT_REASON,
) -> pd.DataFrame:
    """Share of each tier's customers with at least one contact whose reason is in `reasons`.

    `events`: a pandas or Ibis table (the filter and count per customer run on the engine).
    `reasons`: contact reason -> group (e.g. taxonomy.complaint_category_of_reason, or
    {reason: reason} for moments of truth). Contacts up to `as_of` (within `window_days` when
    given). Out: value_tier, group ("any" first, then groups in order of `reasons`), customers,
    exposed, share. schema.Missing without tiers, events, customer ids or contact reasons.
    """
    require_tiers(tiered, col_customer)
    require_contacts(events, list(reasons), col_customer=col_customer, col_reason=col_reason)
    end = end_day(as_of, engine.table(events), col_timestamp=col_timestamp)
    groups = [ANY, *dict.fromkeys(reasons.values())]
    hits = (_contacts(events, list(reasons), end, window_days, col_customer=col_customer,
                      col_timestamp=col_timestamp, col_reason=col_reason)
            .assign(group=lambda d: d[col_reason].map(reasons)))
    hits = pd.concat([hits, hits.assign(group=ANY)])[[col_customer, "group"]].drop_duplicates()
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


def any_exposure(exposure: pd.DataFrame) -> pd.DataFrame:
    """The rows of exposure_by_tier for a contact of any reason: value_tier, customers, exposed, share."""
    return exposure.loc[exposure["group"] == ANY, [VALUE_TIER, "customers", "exposed", "share"]].reset_index(drop=True)


def exposure_table(exposure: pd.DataFrame, taxonomy, section: str, *, lang: str = "en",
                   any_label: str = "any") -> pd.DataFrame:
    """Exposure shares in percent (1 decimal) as a table: one row per group (its label from the
    taxonomy `section` in `lang`, `any_label` for any reason), one column per tier in tier order."""
    tiers = list(dict.fromkeys(exposure[VALUE_TIER].astype(str)))
    groups = list(dict.fromkeys(exposure["group"]))
    names = dict(zip(groups, [any_label if g == ANY else taxonomy.label(section, g, lang) for g in groups]))
    return (exposure.assign(share_pct=lambda d: (100 * d["share"]).round(1), name=lambda d: d["group"].map(names),
                            **{VALUE_TIER: lambda d: d[VALUE_TIER].astype(str)})
            .pivot(index="name", columns=VALUE_TIER, values="share_pct")
            .reindex(index=list(names.values()), columns=tiers)
            .rename_axis(index="", columns=""))


def at_risk(
    tiered: pd.DataFrame,
    events,
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

    `events`: a pandas or Ibis table (filtered and counted per customer on the engine). Either
    trigger may be absent (no events, or no dated NPS answers from known customers): the other
    one still flags; schema.Missing when neither can. Out, sorted by value (highest first):
    customer_id, value_tier, value, negative_contacts, last_negative_contact, latest_nps,
    detractor, trigger ("moment", "detractor" or "moment+detractor").
    """
    require_tiers(tiered, col_customer)
    require_columns(tiered, [VALUE], "tiered customers")
    unknown = [t for t in high_tiers if t not in tiered[VALUE_TIER].cat.categories]
    if unknown:
        raise ValueInputError(f"at_risk: high_tiers {unknown} are not tiers {list(tiered[VALUE_TIER].cat.categories)}")
    contacts_ok = passes(require_contacts, events, list(negative_reasons), what="negative-moment",
                       col_customer=col_customer, col_reason=col_reason)
    scores_ok = (len(feedback) > 0 and {col_customer, col_timestamp, col_score} <= set(feedback.columns)
                 and (feedback[col_customer].notna() & feedback[col_timestamp].notna()
                      & feedback[col_score].notna()).any())
    require(contacts_ok or scores_ok, "neither negative-moment contacts nor dated NPS answers of known customers",
            enable="events.contact_reason with events.customer_id, or feedback.nps with customer_id and timestamp")
    end = end_day(as_of, *([engine.table(events)] if contacts_ok else []), *([feedback] if scores_ok else []),
               col_timestamp=col_timestamp)
    moments = (
        _contacts(events, list(negative_reasons), end, window_days, col_customer=col_customer,
                  col_timestamp=col_timestamp, col_reason=col_reason)
        .groupby(col_customer)
        .agg(negative_contacts=("contacts", "sum"), last_negative_contact=("last_contact", "max"))
        if contacts_ok else
        pd.DataFrame({"negative_contacts": pd.Series(dtype="int64"),
                      "last_negative_contact": pd.Series(dtype="datetime64[us, UTC]")},
                     index=pd.Index([], name=col_customer, dtype="str"))
    )
    latest = (
        in_window(feedback, col_timestamp, end, window_days)
        .loc[lambda d: d[col_score].notna() & d[col_customer].notna()]
        .sort_values([col_customer, col_timestamp], kind="mergesort")
        .drop_duplicates(col_customer, keep="last")
        .set_index(col_customer)[col_score].rename("latest_nps")
        if scores_ok else pd.Series(dtype="float64", name="latest_nps", index=pd.Index([], dtype="str"))
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
            [TRIGGERS[2], TRIGGERS[0]], default=TRIGGERS[1]))
        .astype({"trigger": "str"})
        .sort_values([VALUE, col_customer], ascending=[False, True], ignore_index=True)
    )


def risk_triggers(risk: pd.DataFrame) -> pd.Series:
    """Customers at risk per trigger, in the order of TRIGGERS (0 where none)."""
    return risk["trigger"].value_counts().reindex(list(TRIGGERS), fill_value=0).astype("int64")


def risk_summary(risk: pd.DataFrame, tiered: pd.DataFrame, *, high_tiers: Sequence[str]) -> dict:
    """{customers (in the high tiers), at_risk, share, value (of those at risk), value_share (of the
    high tiers' value), triggers {trigger: customers}}."""
    high = tiered.loc[tiered[VALUE_TIER].isin(list(high_tiers))]
    total = float(high[VALUE].sum())
    return {"customers": int(len(high)), "at_risk": int(len(risk)),
            "share": len(risk) / len(high) if len(high) else math.nan,
            "value": float(risk[VALUE].sum()), "value_share": float(risk[VALUE].sum()) / total if total > 0 else math.nan,
            "triggers": risk_triggers(risk).to_dict()}


def at_risk_table(risk: pd.DataFrame, k: int = 20) -> pd.DataFrame:
    """The first `k` customers at risk with the date of their last negative contact and value to 2 decimals."""
    return (risk.head(k)
            .assign(last_negative_contact=lambda d: d["last_negative_contact"].dt.date.astype("str")
                    .where(d["last_negative_contact"].notna(), ""))
            .round({VALUE: 2}))
