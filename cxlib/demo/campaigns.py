"""Campaign sends and the occasion programme: the 16 e-mail campaigns to consented people in
the CRM, and the monthly Kundenbrief whose response rises when a send falls in the lead time of
one of the customer's occasions and falls with earlier sends (contact fatigue); responders book
options. Sends: pid, sent, responded (NaT: none), occasion, prior.

    campaigns = _campaigns(rng, persons)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlib.demo.base import DAY, MINUTE, NAT, PERIOD_END, SECOND, _at_hours, _days, _first_in_window, _floor_day
from cxlib.demo.vocabulary import CAMPAIGNS, NAME_DAYS, PLANTED
from cxlib.demo.world import _products_for


def _campaigns(rng: np.random.Generator, persons: pd.DataFrame,
               send_at: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Campaign sends to people with contact consent who are in the CRM at send time, and the send
    time of each campaign (drawn; `send_at` given: the chunks of a run share chunk 0's)."""
    lead = persons["lead_date"].to_numpy()
    signup = persons["signup"].to_numpy()
    churn = persons["churn"].to_numpy()
    consent = persons["consent"].to_numpy() == 0
    parts, sends = [], []
    for i, (name, date, audience) in enumerate(CAMPAIGNS):
        send = np.datetime64(date + "T09:00", "s") + int(rng.integers(0, 180)) * MINUTE
        send = send if send_at is None else send_at[i]
        sends.append(send)
        is_customer = ~pd.isna(signup) & (signup <= send)
        target = {"leads": ~is_customer, "customers": is_customer, "all": np.ones(len(persons), bool)}[audience]
        pid = np.flatnonzero(consent & (lead <= send) & (pd.isna(churn) | (churn > send)) & target
                             & (rng.random(len(persons)) < 0.6))
        responded = rng.random(len(pid)) < np.where(is_customer[pid], 0.04, 0.06)
        delay = rng.exponential(1.5, len(pid))
        t = _at_hours(rng, _floor_day(send + _days(delay)), 7, 23)
        t = np.where(t <= send, send + (rng.uniform(10, 180, len(pid)) * 60).astype("int64") * SECOND, t)
        ok = responded & (delay < 14) & (t < PERIOD_END) & (pd.isna(churn[pid]) | (t < churn[pid]))
        parts.append(pd.DataFrame({"campaign": i, "pid": pid, "sent": send, "responded": np.where(ok, t, NAT)}))
    return pd.concat(parts, ignore_index=True), np.array(sends, dtype="datetime64[s]")


_KEY = 10**6                                     # day numbers (days since 1970) stay below this


def _shift_months(days: np.ndarray, months) -> np.ndarray:
    """Day numbers shifted by whole months, the day clipped to the month's end (02-29 -> 02-28)."""
    d = np.asarray(days, dtype="int64").astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day = (d - month.astype("datetime64[D]")).astype("int64")
    target = month + np.asarray(months, dtype="int64")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype("int64")
    return (target.astype("datetime64[D]") + np.minimum(day, length - 1)).astype("int64")


def _occasion_windows(persons: pd.DataFrame, orders: pd.DataFrame, contacts: pd.DataFrame, first_name: np.ndarray,
                      lo: int, hi: int) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Per occasion: (pid, first day of the window, window length in days) of every occasion date
    D in [lo, hi] (day numbers), as config/taxonomy.yml `occasions` derives them."""
    cfg = PLANTED["occasion_program"]["occasions"]
    signup = persons["signup"].to_numpy()
    has = ~np.isnat(signup)
    pid_s, day_s = np.flatnonzero(has), signup[has].astype("datetime64[D]").astype("int64")
    out = {}

    def recurring(pid, base, step, first_k, lead):
        parts_p, parts_d = [], []
        for k in range(first_k, 40 * 12 // step + 1):             # every term back to 1986 at most
            d = _shift_months(base, k * step)
            hit = (d >= lo) & (d <= hi)
            parts_p.append(pid[hit]), parts_d.append(d[hit])
        return np.concatenate(parts_p), np.concatenate(parts_d) - lead, lead

    out["contract_anniversary"] = recurring(pid_s, day_s, 12, 1, cfg["contract_anniversary"]["lead_days"])
    out["renewal_window"] = recurring(pid_s, day_s, cfg["renewal_window"]["term_months"], 1, cfg["renewal_window"]["lead_days"])
    for name, col in (("first_invoice", "first_invoice"), ("activation_completed", "activation")):
        t = orders[col].to_numpy()
        ok = ~np.isnat(t)
        d = t[ok].astype("datetime64[D]").astype("int64") + cfg[name]["days_after"]
        keep = (d >= lo) & (d <= hi)
        out[name] = (orders["pid"].to_numpy()[ok][keep], d[keep] - cfg[name]["lead_days"], cfg[name]["lead_days"])
    c = contacts[contacts["reason"].str.startswith("complaint_") & (contacts["resolved"] == 1)]
    d = c["time"].to_numpy().astype("datetime64[D]").astype("int64") + cfg["complaint_resolved"]["days_after"]
    keep = (d >= lo) & (d <= hi)
    out["complaint_resolved"] = (c["pid"].to_numpy()[keep], d[keep] - cfg["complaint_resolved"]["lead_days"],
                                 cfg["complaint_resolved"]["lead_days"])
    mmdd = pd.Series(first_name).map(NAME_DAYS)
    has = mmdd.notna().to_numpy()
    base = pd.to_datetime("2000-" + mmdd[has]).to_numpy().astype("datetime64[D]").astype("int64")
    out["name_day"] = recurring(np.flatnonzero(has), base, 12, 0, cfg["name_day"]["lead_days"])
    return out


def _timed_on(pid: np.ndarray, day: np.ndarray, windows: dict) -> np.ndarray:
    """The first occasion (in `windows` order) whose window holds each send day, '' for none."""
    result = np.full(len(pid), "", dtype=object)
    for name in reversed(list(windows)):
        w_pid, w_start, length = windows[name]
        if len(w_pid) == 0:
            continue
        keys = np.sort(w_pid.astype("int64") * _KEY + w_start)
        q = pid.astype("int64") * _KEY + day
        i = np.searchsorted(keys, q, side="right") - 1
        found = keys[np.maximum(i, 0)]
        hit = (i >= 0) & (found // _KEY == pid) & (day - found % _KEY <= length)
        result[hit] = name
    return result


def _prior_sends(pid: np.ndarray, t: np.ndarray, days: int) -> np.ndarray:
    """Sends of the same person in the `days` before each send (strictly before)."""
    secs = t.astype("datetime64[s]").astype("int64")
    span = int(secs.max() - secs.min()) + 2 * days * 86400 + 1 if len(secs) else 1
    key = pid.astype("int64") * span + (secs - (secs.min() if len(secs) else 0))
    order = np.sort(key)
    return np.searchsorted(order, key, side="left") - np.searchsorted(order, key - days * 86400, side="left")


def _occasion_program(rng: np.random.Generator, persons: pd.DataFrame, orders: pd.DataFrame, contacts: pd.DataFrame,
                      leadins: pd.DataFrame, campaigns: pd.DataFrame, first_name: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Kundenbrief sends (name, pid, sent, responded, occasion, prior) and the options their
    responders book (rows in the columns of `orders`); PLANTED["occasion_program"]."""
    cfg = PLANTED["occasion_program"]
    n = len(persons)
    signup, churn = persons["signup"].to_numpy(), persons["churn"].to_numpy()
    consent = persons["consent"].to_numpy() == 0
    months = np.arange(np.datetime64("2024-01", "M"), np.datetime64("2026-01", "M"))
    parts = []
    for i, month in enumerate(months):                            # 24 monthly mailings, vectorised over people
        first = month.astype("datetime64[D]").astype("datetime64[s]")
        length = int(((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype("int64"))
        reach = cfg["reach"][0] + (cfg["reach"][1] - cfg["reach"][0]) * i / (len(months) - 1)
        sent = _at_hours(rng, first + rng.integers(0, length, n) * DAY, 9, 17)
        ok = (consent & (rng.random(n) < reach) & ~np.isnat(signup) & (signup <= sent)
              & (np.isnat(churn) | (churn > sent)))
        parts.append(pd.DataFrame({"name": f"{str(month)} {cfg['campaign']}", "pid": np.flatnonzero(ok), "sent": sent[ok]}))
    sends = pd.concat(parts, ignore_index=True)
    # sends of every campaign in the 90 days before
    all_pid = np.concatenate([campaigns["pid"].to_numpy(), sends["pid"].to_numpy()])
    all_t = np.concatenate([campaigns["sent"].to_numpy(), sends["sent"].to_numpy()]).astype("datetime64[s]")
    prior = _prior_sends(all_pid, all_t, cfg["fatigue_window_days"])[len(campaigns):]
    lo = int(np.datetime64("2023-12-01", "D").astype("int64"))
    hi = int(np.datetime64("2026-03-31", "D").astype("int64"))
    windows = _occasion_windows(persons, orders, contacts, first_name, lo, hi)
    day = sends["sent"].to_numpy().astype("datetime64[D]").astype("int64")
    base = np.where(persons["business"].to_numpy()[sends["pid"].to_numpy()], cfg["base_response"]["business"],
                    cfg["base_response"]["private"])
    u, delay = rng.random(len(sends)), rng.exponential(1.5, len(sends))
    month_of = sends["sent"].to_numpy().astype("datetime64[M]")
    occasion = np.full(len(sends), "", dtype=object)
    responded = np.full(len(sends), NAT)
    bought = []
    for month in months:           # month by month: an option booked after a response is an occasion for later sends
        rows = np.flatnonzero(month_of == month)
        pid, t = sends["pid"].to_numpy()[rows], sends["sent"].to_numpy()[rows]
        occasion[rows] = _timed_on(pid, day[rows], windows)
        p = base[rows] * np.where(occasion[rows] != "", cfg["occasion_response_ratio"], 1.0) * cfg["fatigue_ratio_per_send"] ** prior[rows]
        r_t = _at_hours(rng, _floor_day(t + _days(delay[rows])), 7, 23)
        r_t = np.where(r_t <= t, t + (rng.uniform(10, 180, len(rows)) * 60).astype("int64") * SECOND, r_t)
        ok = (u[rows] < p) & (delay[rows] < 14) & (r_t < PERIOD_END) & (np.isnat(churn[pid]) | (r_t < churn[pid]))
        responded[rows] = np.where(ok, r_t, NAT)
        buy = rows[ok & (rng.random(len(rows)) < cfg["purchase_after_response"])]
        if len(buy) == 0:
            continue
        b_pid = sends["pid"].to_numpy()[buy]
        b_t = _at_hours(rng, _floor_day(responded[buy]) + rng.integers(cfg["purchase_days"][0], cfg["purchase_days"][1] + 1, len(buy)) * DAY, 8, 20)
        act = _floor_day(b_t) + rng.integers(1, 4, len(buy)) * DAY
        fine = (act < PERIOD_END - DAY) & (np.isnat(churn[b_pid]) | (act < churn[b_pid]))
        o = pd.DataFrame({"pid": b_pid[fine], "time": b_t[fine], "activation": act[fine]})
        opened = leadins[["pid", "time"]].assign(time=lambda d: d["time"] - DAY)
        o = o[~_first_in_window(o, opened, by="pid", on="time", right_on="time", window=32 * DAY)["_hit"].to_numpy()]
        bought.append(o)
        a_day = o["activation"].to_numpy().astype("datetime64[D]").astype("int64") + cfg["occasions"]["activation_completed"]["days_after"]
        w_pid, w_start, length = windows["activation_completed"]
        windows["activation_completed"] = (np.concatenate([w_pid, o["pid"].to_numpy()]),
                                           np.concatenate([w_start, a_day - length]), length)
    o = pd.concat(bought, ignore_index=True) if bought else pd.DataFrame({"pid": [], "time": [], "activation": []})
    o = o.astype({"pid": "int64", "time": "datetime64[s]", "activation": "datetime64[s]"}).sort_values(["time", "pid"], kind="stable")
    m = len(o)
    bb = persons["broadband"].to_numpy()[o["pid"].to_numpy()]
    product, fee = _products_for(rng, bb.astype(int), persons["business"].to_numpy()[o["pid"].to_numpy()], np.ones(m, bool))
    options = pd.DataFrame({
        "pid": o["pid"].to_numpy(), "leadin": -1, "time": o["time"].to_numpy(), "type": 2, "broadband": bb.astype(bool),
        "product": product, "fee": fee, "amount": 12 * fee * np.maximum(persons["lines"].to_numpy()[o["pid"].to_numpy()] // 5, 1),
        "channel": "Web", "status": 0, "storno_day": NAT, "storno_reason": None, "prov_start": NAT,
        "activation": o["activation"].to_numpy(), "first_invoice": NAT, "long": False, "duration": -1, "new_customer": False,
    })
    sends = sends.assign(responded=responded, occasion=occasion, prior=prior)
    blast_day = campaigns["sent"].to_numpy().astype("datetime64[D]").astype("int64")
    blasts = campaigns.assign(name=np.array([x[0] for x in CAMPAIGNS])[campaigns["campaign"].to_numpy()],
                              occasion=_timed_on(campaigns["pid"].to_numpy(), blast_day, windows),
                              prior=_prior_sends(all_pid, all_t, cfg["fatigue_window_days"])[:len(campaigns)])
    return sends, options, blasts
