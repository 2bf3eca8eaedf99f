"""The contact centre of the demo company: everyday contacts, consultations, provisioning and
first-invoice questions, outage notices and complaints (before churn is drawn), then
cancellation requests, monthly billing complaints with the planted spike and hotline
complaints after long waits. Rows: pid, time, reason, direction, channel, origin, wait,
handle, resolved, note.

    contacts = _contacts_before_churn(rng, persons, leadins, orders, affected)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlib.demo.base import DAY, PERIOD_END, PERIOD_START, SECOND, _at_hours, _days, _floor_day, _pick, _uniform_days
from cxlib.demo.vocabulary import BASE_REASONS, INBOUND_CHANNELS, NOTES, PHONE_SPELLINGS, PLANTED


def _contact_rows(pid, time, reason, *, direction=0, channel=None, origin="base") -> pd.DataFrame:
    n = len(pid)
    return pd.DataFrame({
        "pid": np.asarray(pid, dtype="int64"), "time": np.asarray(time, dtype="datetime64[s]"),
        "reason": np.broadcast_to(np.asarray(reason, dtype=object), (n,)).copy(),
        "direction": np.broadcast_to(np.asarray(direction), (n,)).astype("int8"),
        "channel": np.broadcast_to(np.asarray(channel, dtype=object), (n,)).copy(),
        "origin": origin,
    })


def _finish_contacts(rng: np.random.Generator, c: pd.DataFrame) -> pd.DataFrame:
    """Draw channel spellings, waits, handling times, resolution and notes."""
    n = len(c)
    inbound = c["direction"].to_numpy() == 0
    channel = c["channel"].to_numpy().copy()
    missing = pd.isna(channel)
    channel = np.where(missing & inbound, _pick(rng, *INBOUND_CHANNELS, n), channel)
    channel = np.where(missing & ~inbound, _pick(rng, ["Telefon", "E-Mail"], [0.7, 0.3], n), channel)
    phone = np.isin(channel, PHONE_SPELLINGS)
    wait = np.where(inbound & phone, np.minimum(np.rint(rng.lognormal(np.log(120), 1.0, n)), 3600), np.nan)
    reason = c["reason"].to_numpy()
    notice = reason == "outage_notification"
    written = np.isin(channel, ["E-Mail", "Brief"])
    handle = np.round(np.where(written, rng.lognormal(np.log(8), 0.5, n), rng.lognormal(np.log(6), 0.6, n)), 1)
    handle = np.where(notice, np.nan, handle)
    sf = reason == "complaint_service_failure"
    resolved = np.where(sf, rng.choice([1, 0, -1], n, p=[0.5, 0.4, 0.1]), rng.choice([1, 0, -1], n, p=[0.75, 0.15, 0.10]))
    resolved = np.where(notice, -1, resolved).astype("int8")
    note = np.where((rng.random(n) < 0.3) & ~notice, NOTES[rng.integers(0, len(NOTES), n)], None)
    return c.assign(channel=channel, wait=wait, handle=handle, resolved=resolved, note=note)


def _contacts_before_churn(rng: np.random.Generator, persons: pd.DataFrame, leadins: pd.DataFrame,
                           orders: pd.DataFrame, affected: pd.DataFrame) -> pd.DataFrame:
    """Everyday contacts, consultations, provisioning and first-invoice questions, outage
    notices and complaints (all that churn depends on, or that happens regardless of it)."""
    n = len(persons)
    signup = persons["signup"].to_numpy()
    customer = ~pd.isna(signup)
    start = np.where(customer, np.maximum(signup, PERIOD_START), PERIOD_END)
    years = np.where(customer, (PERIOD_END - start) / DAY / 365.25, 0.0)
    rate = np.where(persons["business"].to_numpy(), 1.2, 0.75)
    k = rng.poisson(rate * years)
    pid = np.repeat(np.arange(n), k)
    day = _uniform_days(rng, start[pid], np.full(len(pid), PERIOD_END))
    reasons = _pick(rng, list(BASE_REASONS), list(BASE_REASONS.values()), len(pid))
    parts = [_contact_rows(pid, _at_hours(rng, day, 8, 20), reasons,
                           direction=(rng.random(len(pid)) < 0.08).astype(int))]
    # consultations (lead-ins by phone or chat)
    li = leadins[leadins["kind"] > 0]
    m = len(li)
    chan = np.where(li["kind"].to_numpy() == 2, "Chat", _pick(rng, ["Telefon", "Hotline", "phone"], [0.5, 0.3, 0.2], m))
    direction = (rng.random(m) < 0.25).astype(int)
    chan = np.where((direction == 1) & (chan != "Chat"), "Telefon", chan)
    reason = np.where(li["planned_type"].to_numpy() == 1, "contract_renewal", "sales_consultation")
    parts.append(_contact_rows(li["pid"], li["time"], reason, direction=direction, channel=chan, origin="consultation"))
    # provisioning questions and complaints while waiting for activation
    o = orders[orders["prov_start"].notna()]
    end = np.where(o["activation"].isna(), PERIOD_END, o["activation"].to_numpy())
    long = o["long"].to_numpy()
    q = np.where(long, 1 + (rng.random(len(o)) < 0.5), (rng.random(len(o)) < 0.25)).astype(int)
    cpl = np.where(long, rng.random(len(o)) < 0.30, rng.random(len(o)) < 0.02).astype(int)
    for counts, reason in ((q, "provisioning_question"), (cpl, "complaint_provisioning")):
        idx = np.repeat(np.arange(len(o)), counts)
        day = _uniform_days(rng, o["prov_start"].to_numpy()[idx], end[idx])
        parts.append(_contact_rows(o["pid"].to_numpy()[idx], _at_hours(rng, day, 8, 20), reason, origin="provisioning"))
    # an unclear first invoice
    o = orders[orders["first_invoice"].notna()]
    o = o[rng.random(len(o)) < 0.15]
    day = o["first_invoice"].to_numpy() + _days(rng.integers(2, 21, len(o)))
    keep = day < PERIOD_END
    parts.append(_contact_rows(o["pid"].to_numpy()[keep], _at_hours(rng, day[keep], 8, 20), "invoice_unclear", origin="first_invoice"))
    # outages: proactive notices (outbound) and complaints / technical help
    a = affected
    notified = a["notified"].to_numpy()
    t = a["start"].to_numpy() + (rng.uniform(10, 120, len(a)) * 60).astype("int64") * SECOND
    parts.append(_contact_rows(a["pid"].to_numpy()[notified], t[notified], "outage_notification", direction=1,
                               channel=_pick(rng, ["E-Mail", "SMS"], [0.5, 0.5], int(notified.sum())), origin="outage"))
    for reason, p_no, p_yes in (("complaint_service_failure", 0.25, 0.08), ("technical_support", 0.20, 0.08)):
        hit = rng.random(len(a)) < np.where(notified, p_yes, p_no)
        st = a["start"].to_numpy()[hit]
        t = _at_hours(rng, _floor_day(st) + _days(rng.integers(0, 3, int(hit.sum()))), 8, 21)
        t = np.where(t <= st, st + (rng.uniform(30, 180, len(st)) * 60).astype("int64") * SECOND, t)
        parts.append(_contact_rows(a["pid"].to_numpy()[hit], t, reason, origin="outage"))
    contacts = pd.concat(parts, ignore_index=True)
    return _finish_contacts(rng, contacts[contacts["time"] < PERIOD_END])


def _contacts_after_churn(rng: np.random.Generator, persons: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """Cancellation requests, the monthly billing complaints (with the planted spike) and
    hotline complaints after long waits; all before churn."""
    cfg = PLANTED["billing_complaints"]
    hot = PLANTED["hotline_wait"]
    signup = persons["signup"].to_numpy()
    churn = persons["churn"].to_numpy()
    churn_or_end = np.where(pd.isna(churn), PERIOD_END, churn)
    active_from = np.where(pd.isna(signup), PERIOD_END, np.maximum(signup, PERIOD_START))
    parts = [contacts]
    # cancellation requests before churn
    churned = np.flatnonzero(~pd.isna(churn) & (rng.random(len(persons)) < 0.7))
    day = churn[churned] - _days(rng.integers(1, 31, len(churned)))
    day = np.maximum(day, _floor_day(active_from[churned]) + DAY)
    ok = day < churn[churned]
    parts.append(_finish_contacts(rng, _contact_rows(churned[ok], _at_hours(rng, day[ok], 8, 20), "cancellation_request",
                                                     channel=_pick(rng, ["Telefon", "Hotline", "Brief", "E-Mail"], [0.35, 0.2, 0.3, 0.15], int(ok.sum())),
                                                     origin="cancellation")))
    # billing complaints: a fixed rate per 1,000 active customers, tripled in the spike month
    months = np.arange(np.datetime64("2024-01", "M"), np.datetime64("2026-01", "M"))
    for month in months:
        m0 = month.astype("datetime64[D]").astype("datetime64[s]")
        m1 = (month + 1).astype("datetime64[D]").astype("datetime64[s]")
        active = np.flatnonzero((active_from < m1) & (churn_or_end > m0))
        mult = cfg["spike_multiplier"] if str(month) == cfg["spike_month"] else 1.0
        jitter = rng.uniform(1 - cfg["jitter"], 1 + cfg["jitter"])
        count = min(int(round(cfg["base_rate_per_1000_per_month"] / 1000 * len(active) * mult * jitter)), len(active))
        pid = rng.choice(active, count, replace=False)
        lo = np.maximum(m0, _floor_day(active_from[pid]))
        hi = np.minimum(m1, churn_or_end[pid])
        parts.append(_finish_contacts(rng, _contact_rows(pid, _at_hours(rng, _uniform_days(rng, lo, hi), 8, 20),
                                                         "complaint_billing", origin="billing")))
    contacts = pd.concat(parts, ignore_index=True)
    # hotline complaints after a long wait on the phone
    src = contacts[contacts["wait"].notna()]
    long = src["wait"].to_numpy() > hot["threshold_seconds"]
    follow = rng.random(len(src)) < np.where(long, hot["complaint_prob_long"], hot["complaint_prob_short"])
    s = src[follow]
    lo, hi = hot["followup_days"]
    t = _at_hours(rng, _floor_day(s["time"].to_numpy()) + _days(rng.integers(lo, hi + 1, len(s))), 8, 20)
    fu = _finish_contacts(rng, _contact_rows(s["pid"], t, "complaint_hotline",
                                             channel=_pick(rng, ["E-Mail", "Telefon", "Brief"], [0.5, 0.35, 0.15], len(s)),
                                             origin="hotline_followup"))
    fu = fu.assign(wait=np.where(fu["wait"].notna(), np.minimum(np.rint(rng.lognormal(np.log(60), 0.5, len(fu))), 280), np.nan))
    ok = (fu["time"].to_numpy() < churn_or_end[fu["pid"].to_numpy()]) & (fu["time"].to_numpy() < PERIOD_END)
    contacts = pd.concat([contacts, fu[ok]], ignore_index=True)
    return contacts.sort_values(["time", "pid"], kind="stable").reset_index(drop=True)
