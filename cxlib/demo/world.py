"""The demo company's world: CRM people (customers and leads), quotes and consultations, orders
with their provisioning milestones, add-on purchases, regional outages and churn. All internal
times are naive local time (Europe/Berlin); pid = row number of the person.

    persons = _persons(rng, n); persons, leadins, orders = _sales(rng, persons)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlib.demo.base import (DAY, NAT, PERIOD_END, PERIOD_START, SECOND, _at_hours, _days, _first_in_window,
                             _floor_day, _pick, _uniform_days)
from cxlib.demo.vocabulary import (ADDON, ADDON_PRODUCTS, OPTIONS, PLANTED, PRODUCTS, REGION_P, REGIONS,
                                   STORNO_REASONS)


def _persons(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """One row per CRM person (customer or lead), sorted by lead date; pid = row number."""
    existing = rng.random(n) < PLANTED["existing_share"]
    business = rng.random(n) < PLANTED["business_share"]
    region = rng.choice(len(REGIONS), n, p=REGION_P)
    broadband = rng.random(n) < 0.5
    signup_ex = _uniform_days(rng, np.full(n, np.datetime64("2012-01-01", "s")), np.full(n, np.datetime64("2023-12-20", "s")))
    leadin_day = _uniform_days(rng, np.full(n, PERIOD_START + 7 * DAY), np.full(n, np.datetime64("2025-12-24", "s")))
    lead_ex = signup_ex - _days(np.floor(rng.uniform(0, 45, n)))
    lead_new = np.maximum(PERIOD_START, leadin_day - _days(np.floor(rng.exponential(45, n))))
    lines = np.where(business, np.minimum(1 + np.floor(rng.lognormal(1.0, 0.9, n)), 60), 1).astype("int64")
    consent = rng.choice(3, n, p=[0.50, 0.25, 0.25])      # 0 ja, 1 nein, 2 blank
    frame = pd.DataFrame({
        "existing": existing, "business": business, "region": region, "broadband": broadband,
        "signup": np.where(existing, signup_ex, NAT), "lead_date": np.where(existing, lead_ex, lead_new),
        "leadin_day": np.where(existing, NAT, leadin_day), "lines": lines, "consent": consent,
        "u": rng.normal(0.0, 1.2, n),
    })
    return frame.sort_values("lead_date", kind="stable").reset_index(drop=True)


def _products_for(rng: np.random.Generator, broadband: np.ndarray, business: np.ndarray, option: np.ndarray):
    """Product name and monthly fee (cents) per order, by category, segment and order type."""
    n = len(broadband)
    name = np.empty(n, dtype=object)
    fee = np.zeros(n, dtype="int64")
    for cat in (0, 1):
        for biz in (False, True):
            rows = np.flatnonzero((broadband == cat) & (business == biz) & ~option)
            cands = [prod for prod in PRODUCTS if prod[1] == cat and prod[2] == biz]
            pick = rng.choice(len(cands), len(rows), p=np.array([c[4] for c in cands]) / sum(c[4] for c in cands))
            name[rows] = np.array([c[0] for c in cands], dtype=object)[pick]
            fee[rows] = np.array([c[3] for c in cands])[pick]
        rows = np.flatnonzero((broadband == cat) & option)
        cands = [o for o in OPTIONS if o[1] == cat]
        pick = rng.choice(len(cands), len(rows), p=np.array([c[3] for c in cands]) / sum(c[3] for c in cands))
        name[rows] = np.array([c[0] for c in cands], dtype=object)[pick]
        fee[rows] = np.array([c[2] for c in cands])[pick]
    return name, fee


def _orders_for(rng: np.random.Generator, leadins: pd.DataFrame, persons: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decide which lead-ins convert and build their orders with provisioning milestones."""
    conv = PLANTED["conversion"]
    prov = PLANTED["provisioning"]
    n = len(leadins)
    rate = np.where(leadins["existing_at"], conv["existing_customer"], conv["new_lead"])
    delay = 1 + np.minimum(np.floor(rng.gamma(2.0, 2.5, n)), 24)
    order_day = _floor_day(leadins["time"].to_numpy()) + _days(delay)
    converted = (rng.random(n) < rate) & (order_day < PERIOD_END - DAY)
    leadins = leadins.assign(converted=converted)
    li = leadins[converted]
    m = len(li)
    pid = li["pid"].to_numpy()
    otype = li["planned_type"].to_numpy()
    bb = li["broadband"].to_numpy().astype(int)
    business = persons["business"].to_numpy()[pid]
    product, fee = _products_for(rng, bb, business, otype == 2)
    lines = persons["lines"].to_numpy()[pid]
    amount = np.where(otype == 2, 12, 24) * fee * np.where(otype == 2, np.maximum(lines // 5, 1), lines)
    kind = li["kind"].to_numpy()
    channel = np.where(kind == 0, _pick(rng, ["Web", "Shop"], [0.85, 0.15], m),
                       np.where(kind == 1, _pick(rng, ["Telefon", "Hotline", "Shop"], [0.6, 0.25, 0.15], m),
                                _pick(rng, ["Web", "Shop"], [0.9, 0.1], m)))
    day = order_day[converted]
    time = _at_hours(rng, day, 8, 20)
    storno_day = day + _days(rng.integers(1, 15, m))
    storno = (rng.random(m) < 0.06) & (storno_day < PERIOD_END)
    storno_day = np.where(storno, storno_day, NAT)
    storno_reason = np.where(storno, _pick(rng, STORNO_REASONS, [0.3, 0.15, 0.15, 0.3, 0.1], m), None)
    neu, zus = (otype == 0) & ~storno, (otype == 2) & ~storno
    long = neu & (bb == 1) & (rng.random(m) < prov["long_share_broadband"])
    duration = np.where(bb == 1, np.where(long, rng.integers(prov["threshold_days"] + 1, 46, m), rng.integers(3, prov["threshold_days"], m)),
                        rng.integers(1, 6, m))
    duration = np.where(zus, rng.integers(1, 4, m), duration)
    prov_start = np.where(neu, day + _days(rng.integers(1, 4, m)), NAT)
    activation = np.where(neu | zus, day + _days(duration), NAT)
    pending = (neu | zus) & (activation >= PERIOD_END)
    activation = np.where(pending, NAT, activation)
    prov_start = np.where(prov_start >= PERIOD_END, NAT, prov_start)
    first_invoice = np.where(neu & ~pending, activation + _days(rng.integers(10, 31, m)), NAT)
    first_invoice = np.where(first_invoice >= PERIOD_END, NAT, first_invoice)
    orders = pd.DataFrame({
        "pid": pid, "leadin": li.index.to_numpy(), "time": time, "type": otype, "broadband": bb.astype(bool),
        "product": product, "fee": fee, "amount": amount, "channel": channel,
        "status": np.where(storno, 1, np.where(pending, 2, 0)), "storno_day": storno_day, "storno_reason": storno_reason,
        "prov_start": prov_start, "activation": activation, "first_invoice": first_invoice,
        "long": long, "duration": np.where(neu, duration, -1), "new_customer": ~li["existing_at"].to_numpy(),
    })
    return leadins, orders


def _leadins(rng: np.random.Generator, pid: np.ndarray, time: np.ndarray, existing_at: np.ndarray,
             persons: pd.DataFrame) -> pd.DataFrame:
    """Quotes (web) and consultations (phone/chat) that may lead to an order."""
    n = len(pid)
    kind = np.where(existing_at, rng.choice(3, n, p=[0.40, 0.45, 0.15]), rng.choice(3, n, p=[0.45, 0.40, 0.15]))
    planned = np.where(existing_at, rng.choice(3, n, p=[0.35, 0.45, 0.20]), 0)
    own_bb = persons["broadband"].to_numpy()[pid]
    broadband = np.where(planned == 0, rng.random(n) < 0.55, own_bb)
    return pd.DataFrame({"pid": pid, "time": time, "existing_at": existing_at, "kind": kind,
                         "planned_type": planned, "broadband": broadband})


def _sales(rng: np.random.Generator, persons: pd.DataFrame):
    """Lead-ins and orders (two rounds: first contact, then repeat business of new customers);
    returns persons with signup/category of converted leads, lead-ins and orders."""
    n = len(persons)
    existing = persons["existing"].to_numpy()
    new_idx = np.flatnonzero(~existing)
    k = rng.binomial(2, 0.3, n) * existing
    ex_idx = np.repeat(np.arange(n), k)
    ex_days = _uniform_days(rng, np.full(len(ex_idx), PERIOD_START), np.full(len(ex_idx), PERIOD_END - 10 * DAY))
    pid = np.concatenate([new_idx, ex_idx])
    time = _at_hours(rng, np.concatenate([persons["leadin_day"].to_numpy()[new_idx], ex_days]), 8, 20)
    li1 = _leadins(rng, pid, time, np.concatenate([np.zeros(len(new_idx), bool), np.ones(len(ex_idx), bool)]), persons)
    li1, orders1 = _orders_for(rng, li1, persons)
    # converted leads become customers on the day of their first order that was not cancelled
    first = (orders1[orders1["new_customer"] & (orders1["status"] != 1)]
             .sort_values("time", kind="stable").drop_duplicates("pid"))
    signup = persons["signup"].to_numpy().copy()
    broadband = persons["broadband"].to_numpy().copy()
    signup[first["pid"].to_numpy()] = _floor_day(first["time"].to_numpy())
    broadband[first["pid"].to_numpy()] = first["broadband"].to_numpy()
    persons = persons.assign(signup=signup, broadband=broadband)
    # repeat business of new customers: a second quote/consultation, now as an existing customer
    start = first["time"].to_numpy() + 30 * DAY
    ok = (rng.random(len(first)) < 0.25) & (start < PERIOD_END - 11 * DAY)
    pid2 = first["pid"].to_numpy()[ok]
    time2 = _at_hours(rng, _uniform_days(rng, start[ok], np.full(ok.sum(), PERIOD_END - 10 * DAY)), 8, 20)
    li2 = _leadins(rng, pid2, time2, np.ones(len(pid2), bool), persons)
    li2.index = li2.index + len(li1)
    li2, orders2 = _orders_for(rng, li2, persons)
    leadins = pd.concat([li1, li2])
    orders = pd.concat([orders1, orders2], ignore_index=True)
    # monthly revenue for the CRM: main product of each customer
    prod_name, prod_fee = _products_for(rng, persons["broadband"].to_numpy().astype(int),
                                        persons["business"].to_numpy(), np.zeros(n, bool))
    fee = np.where(persons["signup"].notna(), prod_fee * persons["lines"].to_numpy(), -1)
    return persons.assign(fee=fee), leadins, orders


def _addons(rng: np.random.Generator, persons: pd.DataFrame, orders: pd.DataFrame, leadins: pd.DataFrame) -> pd.DataFrame:
    """Add-on purchases (Zusatzkauf: SIMs, packs, accessories, phones) of customers while active,
    from the first activation (existing customers: 2024-01-01) to churn or the end of the period,
    drawn from BG/NBD + Gamma-Gamma (PLANTED["repeat_purchases"]), less those that fall while one
    of the customer's quotes or consultations (`leadins`) is open. Delivered one-off purchases:
    no lead-in (leadin -1), no provisioning milestones. Returns rows in the columns of `orders`."""
    cfg = PLANTED["repeat_purchases"]
    bg, gg = cfg["bg_nbd"], cfg["gamma_gamma"]
    n = len(persons)
    first_act = (orders[orders["new_customer"] & orders["activation"].notna()]
                 .groupby("pid")["activation"].min())
    start = np.where(persons["existing"].to_numpy(), PERIOD_START, NAT)
    start[first_act.index.to_numpy()] = first_act.to_numpy()
    churn = persons["churn"].to_numpy()
    end = np.where(pd.isna(churn), PERIOD_END, churn)
    lam = rng.gamma(bg["r"], 1 / bg["alpha"], n)                  # purchases a day
    drop = rng.beta(bg["a"], bg["b"], n)                           # dropout after each repeat purchase
    nu = rng.gamma(gg["q"], 1 / gg["v"], n)                        # spend rate: mean spend p / nu euros
    first = start + _days(rng.exponential(cfg["first_purchase_mean_days"], n))
    buyer = np.flatnonzero(~np.isnat(first) & (first < end))
    span = (end[buyer] - first[buyer]) / DAY                       # days from the first add-on to the end
    # repeats: the Poisson arrivals in the span, up to the dropout after the Geometric(p)-th one
    n_arrivals = rng.poisson(lam[buyer] * span)
    kept = np.minimum(n_arrivals, rng.geometric(drop[buyer]))
    owner = np.repeat(np.arange(len(buyer)), n_arrivals)
    u = rng.random(len(owner))
    order = np.lexsort((u, owner))                                 # arrivals sorted within each customer
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(n_arrivals) - n_arrivals, n_arrivals)
    keep = rank < kept[owner]                                      # owner is sorted, so rank matches `order`
    owner, u = owner[order][keep], u[order][keep]
    who = np.concatenate([np.arange(len(buyer)), owner])
    at = np.concatenate([first[buyer], first[buyer][owner] + _days(u * span[owner])])
    pid = buyer[who]
    m = len(pid)
    lo, hi = cfg["spend_range_eur"]
    euros = np.clip(rng.gamma(gg["p"], 1 / nu[pid]), lo, hi)
    cents = np.round(euros * 100).astype("int64")
    names = np.array([name for name, _ in ADDON_PRODUCTS], dtype=object)
    product = names[np.searchsorted([floor for _, floor in ADDON_PRODUCTS], euros, side="right") - 1]
    addons = pd.DataFrame({
        "pid": pid, "leadin": -1, "time": _at_hours(rng, _floor_day(at), 8, 20), "type": ADDON, "broadband": False,
        "product": product, "fee": 0, "amount": cents,
        "channel": _pick(rng, ["Web", "Shop", "Telefon", "Hotline"], [0.50, 0.30, 0.15, 0.05], m),
        "status": 0, "storno_day": NAT, "storno_reason": None, "prov_start": NAT, "activation": NAT,
        "first_invoice": NAT, "long": False, "duration": -1, "new_customer": False,
    })
    # an open opportunity (lead-in at li): no add-on in [li - before, li + after]
    before, after = cfg["none_while_opportunity_open_days"]
    opened = leadins[["pid", "time"]].assign(time=lambda d: d["time"] + _days(before))
    open_at = _first_in_window(addons, opened, by="pid", on="time", right_on="time", window=(after - before) * DAY)
    return addons[~open_at["_hit"].to_numpy()].reset_index(drop=True)


def _category(orders: pd.DataFrame) -> np.ndarray:
    """CATEGORIES index per order: Breitband/Mobilfunk by the contract, Zusatzprodukte for add-ons."""
    return np.where(orders["type"].to_numpy() == ADDON, 2, orders["broadband"].to_numpy().astype(int))


def _outages(rng: np.random.Generator, persons: pd.DataFrame,
             outages: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regional broadband outages (drawn unless given: the chunks of a run share chunk 0's) and
    the customers they hit (half of them told in advance)."""
    cfg = PLANTED["outage"]
    if outages is None:
        k = cfg["count"]
        start_day = np.sort(_uniform_days(rng, np.full(k, PERIOD_START + 20 * DAY), np.full(k, PERIOD_END - 20 * DAY)))
        start = _at_hours(rng, start_day, 6, 20)
        outages = pd.DataFrame({"outage": np.arange(k), "region": rng.choice(len(REGIONS), k, p=REGION_P),
                                "start": start, "end": start + (rng.uniform(3, 36, k) * 3600).astype("int64") * SECOND})
    signup = persons["signup"].to_numpy()
    hit = []
    for row in outages.itertuples():
        eligible = (persons["broadband"].to_numpy() & (persons["region"].to_numpy() == row.region)
                    & (signup <= row.start))
        pid = np.flatnonzero(eligible & (rng.random(len(persons)) < cfg["affected_share"]))
        hit.append(pd.DataFrame({"pid": pid, "outage": row.outage, "start": row.start, "end": row.end,
                                 "notified": rng.random(len(pid)) < cfg["notified_share"]}))
    return outages, pd.concat(hit, ignore_index=True)


def _churn(rng: np.random.Generator, persons: pd.DataFrame, orders: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """Churn day per person from competing exponential clocks: the baseline hazard, an extra
    clock after a long provisioning (hazard x2), and one for 90 days after each unresolved
    service-failure complaint (hazard x3). Returns persons with `churn`."""
    lam = -np.log(1 - PLANTED["annual_churn"]) / 365.25
    n = len(persons)
    never = np.iinfo("int64").max
    first_act = (orders[orders["new_customer"] & orders["activation"].notna()]
                 .groupby("pid")["activation"].min())
    start = np.where(persons["existing"].to_numpy(), PERIOD_START, NAT)
    start[first_act.index.to_numpy()] = first_act.to_numpy()
    t_base = start + _days(rng.exponential(1 / lam, n))
    best = np.where(pd.isna(t_base), never, t_base.astype("int64"))
    lo = orders[orders["long"] & orders["activation"].notna()]
    hr = PLANTED["provisioning"]["churn_hazard_ratio"]
    t_long = lo["activation"].to_numpy() + _days(rng.exponential(1 / (lam * (hr - 1)), len(lo)))
    np.minimum.at(best, lo["pid"].to_numpy(), t_long.astype("int64"))
    cfg = PLANTED["unresolved_service_failure"]
    sf = contacts[(contacts["reason"] == "complaint_service_failure") & (contacts["resolved"] == 0)]
    e = rng.exponential(1 / (lam * (cfg["churn_hazard_ratio"] - 1)), len(sf))
    t_sf = np.where(e < cfg["window_days"], (sf["time"].to_numpy() + _days(e)).astype("int64"), never)
    np.minimum.at(best, sf["pid"].to_numpy(), t_sf)
    churn = np.where(best == never, NAT, best.astype("datetime64[s]"))
    churn = _floor_day(churn) + DAY
    churn = np.where(churn >= PERIOD_END, NAT, churn)
    return persons.assign(churn=churn)


def _before(frame: pd.DataFrame, persons: pd.DataFrame, col: str = "time") -> pd.DataFrame:
    """Rows that happen before their person's churn day."""
    churn = persons["churn"].to_numpy()[frame["pid"].to_numpy()]
    return frame[pd.isna(churn) | (frame[col].to_numpy() < churn)]
