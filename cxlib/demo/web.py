"""Web analytics of the demo company: sessions of known visitors (customers while they are
customers, leads around their first contact, journey pages before quotes, orders and campaign
responses) and of anonymous ones. Returns sessions (vis, time, page, device) and visitors
(vis, pid; -1 anonymous).

    sessions, visitors = _web(rng, persons, leadins, orders, campaigns)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlib.demo.base import DAY, PERIOD_END, PERIOD_START, SECOND, _at_hours, _uniform_days
from cxlib.demo.vocabulary import DEVICES, PAGE_P_CUSTOMER, PAGE_P_LEAD, PAGE_TYPES


def _web(rng: np.random.Generator, persons: pd.DataFrame, leadins: pd.DataFrame, orders: pd.DataFrame,
         campaigns: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Web sessions of known visitors (customers, leads) and anonymous ones.
    Returns (sessions: vis, time, page, device; visitors: vis, pid (-1 anonymous))."""
    n = len(persons)
    k_vis = 1 + (rng.random(n) < 0.25) + (rng.random(n) < 0.05)
    vis_start = np.concatenate([[0], np.cumsum(k_vis)[:-1]])
    signup, churn = persons["signup"].to_numpy(), persons["churn"].to_numpy()
    churn_or_end = np.where(pd.isna(churn), PERIOD_END, churn)
    web_user = rng.random(n) < 0.88
    parts = []
    # customers browse while they are customers, leads around their first contact
    c_start = np.where(pd.isna(signup), PERIOD_END, np.maximum(signup, PERIOD_START))
    years = np.maximum((churn_or_end - c_start) / DAY, 0) / 365.25
    pid = np.repeat(np.arange(n), rng.poisson(12.0 * years * web_user))
    t = _at_hours(rng, _uniform_days(rng, c_start[pid], churn_or_end[pid]), 6, 24)
    parts.append((pid, t, rng.choice(len(PAGE_TYPES), len(pid), p=PAGE_P_CUSTOMER)))
    new = ~persons["existing"].to_numpy()
    lead_day = persons["lead_date"].to_numpy()
    l_start = np.maximum(PERIOD_START, lead_day - 30 * DAY)
    l_end = np.minimum(persons["leadin_day"].to_numpy() + 60 * DAY, PERIOD_END)
    pid = np.repeat(np.arange(n), rng.poisson(5.0 * (web_user & new)))
    t = _at_hours(rng, _uniform_days(rng, l_start[pid], l_end[pid]), 6, 24)
    parts.append((pid, t, rng.choice(len(PAGE_TYPES), len(pid), p=PAGE_P_LEAD)))
    # pages that belong to a step of the journey
    page = {p: i for i, p in enumerate(PAGE_TYPES)}
    q = leadins[leadins["kind"] == 0]
    parts.append((q["pid"].to_numpy(), q["time"].to_numpy() - (rng.uniform(0, 10, len(q)) * 60).astype("int64") * SECOND,
                  np.full(len(q), page["quote_request"])))
    w = orders[orders["channel"] == "Web"]
    for name, lo, hi in (("cart", 10, 60), ("checkout", 0, 5)):
        parts.append((w["pid"].to_numpy(), w["time"].to_numpy() - (rng.uniform(lo, hi, len(w)) * 60).astype("int64") * SECOND,
                      np.full(len(w), page[name])))
    r = campaigns[campaigns["responded"].notna()]
    parts.append((r["pid"].to_numpy(), r["responded"].to_numpy(), np.full(len(r), page["tariffs"])))
    pid = np.concatenate([p[0] for p in parts])
    time = np.concatenate([p[1] for p in parts]).astype("datetime64[s]")
    pg = np.concatenate([p[2] for p in parts])
    keep = (time < np.minimum(churn_or_end[pid], PERIOD_END)) & (time >= PERIOD_START)
    pid, time, pg = pid[keep], time[keep], pg[keep]
    vis = vis_start[pid] + (rng.random(len(pid)) * k_vis[pid]).astype("int64")
    # anonymous visitors (not in web_logins; the mapping's join drops them)
    n_anon = int(round(0.15 * len(pid)))
    n_anon_vis = max(n_anon * 2 // 5, 1)
    a_vis = int(k_vis.sum()) + rng.integers(0, n_anon_vis, n_anon)
    a_time = _at_hours(rng, _uniform_days(rng, np.full(n_anon, PERIOD_START), np.full(n_anon, PERIOD_END)), 6, 24)
    sessions = pd.DataFrame({
        "vis": np.concatenate([vis, a_vis]), "time": np.concatenate([time, a_time]),
        "page": np.concatenate([pg, rng.choice(len(PAGE_TYPES), n_anon, p=PAGE_P_LEAD)]),
    })
    sessions = sessions.assign(device=rng.choice(len(DEVICES), len(sessions), p=[0.42, 0.45, 0.08, 0.05]))
    visitors = pd.DataFrame({"vis": np.arange(int(k_vis.sum()) + n_anon_vis),
                             "pid": np.concatenate([np.repeat(np.arange(n), k_vis), np.full(n_anon_vis, -1)])})
    return sessions.sort_values("time", kind="stable").reset_index(drop=True), visitors
