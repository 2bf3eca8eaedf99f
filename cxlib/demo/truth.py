"""Ground truth of the demo company: the realised size of every planted effect and the counts of
what the exports hold, measured on the generated truth (real customers only, valid scores).

Measuring is split in two so that a run in chunks has the same ground truth as one world:
`tally(...)` counts one chunk (whole numbers only: people, rows, exposed and unexposed
responses, promoters and detractors, ...), `merge_tallies` adds the counts of chunks, and
`ground_truth(tally, ...)` turns the counts into rates, NPS and means. A rate of k in n is
k / n, exactly what the mean of the n flags gives, so one chunk gives today's numbers.

    gt = ground_truth(merge_tallies(t0, t1), customers=600, seed=7, outages=outages)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxlib import schema
from cxlib.demo.base import DAY, PERIOD_END, PERIOD_START, _first_in_window, _take
from cxlib.demo.vocabulary import ADDON, CAMPAIGNS, CATEGORIES, ORDER_TYPES, PLANTED, REGIONS
from cxlib.demo.world import _category

NPS_GROUPS = ("detractor", "passive", "promoter")
MONTHS = np.arange(np.datetime64("2024-01", "M"), np.datetime64("2026-01", "M"))
# month ends a disversion rate can have: 365 days after the first order day at the earliest
MONTH_ENDS = pd.date_range(pd.Timestamp(PERIOD_START) + pd.Timedelta(days=365), pd.Timestamp(PERIOD_END - DAY), freq="ME")


def _share(k: int, n: int) -> float:
    """k of n as a rate (NaN for none): the mean of n flags of which k are set."""
    return k / n if n else float("nan")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _nps_counts(scores: pd.Series) -> dict:
    s = pd.Series(scores).dropna()
    return {"n": int(len(s)), "promoters": int((s >= 9).sum()), "detractors": int((s <= 6).sum())}


def _nps(c: dict) -> float:
    return float("nan") if c["n"] == 0 else float(100 * (c["promoters"] / c["n"] - c["detractors"] / c["n"]))


def _mean_counts(values: pd.Series) -> dict:
    """Sum and count of whole-number values (CES scores), NaN left out."""
    s = pd.Series(values).dropna()
    return {"n": int(len(s)), "sum": int(s.sum())}


def _floor_day_series(s: pd.Series) -> pd.Series:
    return s.dt.floor("D")


def merge_tallies(a: dict, b: dict) -> dict:
    """The tally of two chunks: numbers add up, lists are joined, dicts merge key by key."""
    if isinstance(a, dict):
        return {k: merge_tallies(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in [*a, *(k for k in b if k not in a)]}
    return a + b


# =========================================================================================
# counting one chunk
# =========================================================================================
def _effect_counts(persons, leadins, orders, contacts, responses, affected, valid_nps, valid_ces) -> dict:
    """Counts of each planted effect on one chunk's truth (real customers only, valid scores)."""
    end = PERIOD_END
    r = responses.assign(nps_ok=np.where(valid_nps, responses["nps"], np.nan), ces_ok=np.where(valid_ces, responses["ces"], np.nan))
    churn = persons["churn"].to_numpy()
    churn_or_end = np.where(pd.isna(churn), end, churn)
    signup = persons["signup"].to_numpy()
    active_from = np.where(pd.isna(signup), end, np.maximum(signup, PERIOD_START))
    out: dict = {}

    # 1. unclear invoice -> NPS
    x = r["x_invoice"].to_numpy()
    out["invoice"] = {"exposed": _nps_counts(r["nps_ok"][x]), "unexposed": _nps_counts(r["nps_ok"][~x])}

    # 2. long provisioning -> detractors and churn
    thr = PLANTED["provisioning"]["threshold_days"]
    bb = orders[(orders["type"] == 0) & orders["broadband"] & orders["activation"].notna()]
    long = (bb["activation"] - _floor_day_series(bb["time"])).dt.days.to_numpy() > thr
    win = PLANTED["provisioning"]["window_after_activation_days"] * DAY
    short_orders = bb[~long].assign(_end=lambda d: d["activation"] + pd.Timedelta(win))
    f_short = _first_in_window(r, short_orders, by="pid", on="time", right_on="time", window=400 * DAY, keep=("_end",))
    x_short = f_short["_hit"].to_numpy() & (r["time"].to_numpy() <= f_short["_end"].to_numpy()) & ~r["x_long_provisioning"].to_numpy()
    x_long = r["x_long_provisioning"].to_numpy()
    act = bb["activation"].to_numpy()
    ch = churn[bb["pid"].to_numpy()]
    churned_any = ~pd.isna(ch)
    within = churned_any & (ch - act <= win)
    mature = act <= end - win
    out["provisioning"] = {
        "orders": int(len(bb)), "long": int(long.sum()),
        "nps_long": _nps_counts(r["nps_ok"][x_long]), "nps_short": _nps_counts(r["nps_ok"][x_short]),
        "mature_long": int((long & mature).sum()), "mature_short": int((~long & mature).sum()),
        "churned_180d_mature_long": int((within & long & mature).sum()),
        "churned_180d_mature_short": int((within & ~long & mature).sum()),
        "churned_long": int((churned_any & long).sum()), "churned_short": int((churned_any & ~long).sum())}

    # 3. long hotline waits -> hotline complaints, lower CES
    hot = PLANTED["hotline_wait"]
    phone = contacts[contacts["wait"].notna() & (contacts["origin"] != "hotline_followup")]
    comp = contacts[contacts["reason"] == "complaint_hotline"]
    f = _first_in_window(phone.rename(columns={"time": "t"}), comp, by="pid", on="t", right_on="time",
                         window=(hot["followup_days"][1] + 1) * DAY, direction="forward")
    lw = phone["wait"].to_numpy() > hot["threshold_seconds"]
    fhit = f["_hit"].to_numpy()
    out["hotline"] = {"phone": int(len(phone)), "long": int(lw.sum()),
                      "complaints_long": int((fhit & lw).sum()), "complaints_short": int((fhit & ~lw).sum()),
                      "ces_long": _mean_counts(r["ces_ok"][r["x_long_wait"]]),
                      "ces_short": _mean_counts(r["ces_ok"][r["x_phone"] & ~r["x_long_wait"]])}

    # 4. unresolved service-failure complaint -> churn within 90 days
    w = PLANTED["unresolved_service_failure"]["window_days"] * DAY
    sf = contacts[(contacts["reason"] == "complaint_service_failure") & (contacts["time"] <= end - w)]

    def churn90(frame):
        first = frame.sort_values("time", kind="stable").drop_duplicates("pid")
        c = churn[first["pid"].to_numpy()]
        return {"n": int(len(first)), "churned": int((~pd.isna(c) & (c - first["time"].to_numpy() <= w)).sum())}

    grid = np.arange(np.datetime64("2024-01-01", "M"), np.datetime64("2025-10", "M")).astype("datetime64[D]").astype("datetime64[s]")
    act_n = churned_n = 0
    for d in grid:
        a = (active_from <= d) & (churn_or_end > d)
        act_n += int(a.sum())
        churned_n += int((a & ~pd.isna(churn) & (churn - d <= w)).sum())
    out["service_failure"] = {"unresolved": churn90(sf[sf["resolved"] == 0]), "resolved": churn90(sf[sf["resolved"] == 1]),
                              "active_index_dates": act_n, "churned_index_dates": churned_n}

    # 5. proactive outage notification
    xo, xn = r["x_outage"].to_numpy(), r["x_outage_notified"].to_numpy()
    out["outage"] = {"notified": _nps_counts(r["nps_ok"][xn]), "affected_not_notified": _nps_counts(r["nps_ok"][xo & ~xn]),
                     "not_notified": _nps_counts(r["nps_ok"][~xn]),
                     "customers_affected": int(affected["pid"].nunique()), "affected_instances": int(len(affected))}

    # 6. billing complaints per month and the customers active in it
    m_of = contacts.loc[contacts["reason"] == "complaint_billing", "time"].to_numpy().astype("datetime64[M]")
    complaints, active_customers = {}, {}
    for month in MONTHS:
        m0, m1 = month.astype("datetime64[D]").astype("datetime64[s]"), (month + 1).astype("datetime64[D]").astype("datetime64[s]")
        complaints[str(month)] = int((m_of == month).sum())
        active_customers[str(month)] = int(((active_from < m1) & (churn_or_end > m0)).sum())
    out["billing"] = {"complaints": complaints, "active_customers": active_customers}

    # 7. repeat customers convert far more often than new leads
    cw = PLANTED["conversion"]["window_days"] * DAY
    li = leadins[leadins["time"] <= end - cw]
    conv = np.isin(li.index.to_numpy(), orders["leadin"].to_numpy())
    ex = li["existing_at"].to_numpy()
    new_leads = ~persons["existing"].to_numpy()
    out["conversion"] = {"existing": int(ex.sum()), "converted_existing": int((conv & ex).sum()),
                         "new": int((~ex).sum()), "converted_new": int((conv & ~ex).sum()),
                         "new_leads": int(new_leads.sum()), "new_leads_customers": int((~pd.isna(signup[new_leads])).sum())}

    # 8. invoice theme in the comments by NPS group
    cm = r[r["comment"].notna() & r["nps_ok"].notna()]
    has_inv = cm["themes"].astype("str").str.contains(r"(?:^|\|)invoice(?:\||$)", regex=True).to_numpy(dtype=bool)
    g = np.where(cm["nps_ok"] <= 6, "detractor", np.where(cm["nps_ok"] <= 8, "passive", "promoter"))
    out["invoice_theme"] = {grp: {"n": int((g == grp).sum()), "invoice": int(has_inv[g == grp].sum())} for grp in NPS_GROUPS}

    # 9. add-on purchases
    done = orders[orders["status"] == 0]
    add = done[done["type"] == ADDON]
    add_days = add.assign(_day=_floor_day_series(add["time"])).drop_duplicates(["pid", "_day"]).groupby("pid").size()
    all_days = done.assign(_day=_floor_day_series(done["time"])).drop_duplicates(["pid", "_day"]).groupby("pid").size()
    active = (active_from < churn_or_end) & ~pd.isna(signup)
    out["addons"] = {"orders": int(len(add)), "cents": int(add["amount"].sum()), "active_customers": int(active.sum()),
                     "customers": int(len(add_days)), "customers_2plus_addon_days": int((add_days >= 2).sum()),
                     "customers_2plus_purchase_days": int((all_days >= 2).sum()),
                     "customers_3plus_purchase_days": int((all_days >= 3).sum()),
                     "by_product": {str(k): int(v) for k, v in add["product"].value_counts().items()}}
    return out


def _program_counts(program: pd.DataFrame, blasts: pd.DataFrame, options: pd.DataFrame, orders: pd.DataFrame,
                    persons: pd.DataFrame) -> dict:
    """Counts of the occasion programme on one chunk: sends and responses by occasion timing, by
    earlier sends and by occasion; options; per candidate month end the active and the regular
    customers (>= 2 completed contract or option orders in the 365 days up to it; add-on purchases
    left out), and the first and last order day (which month ends count)."""
    def timed_vs_other(frame):
        timed = (frame["occasion"] != "").to_numpy()
        r = frame["responded"].notna().to_numpy()
        return {"timed": int(timed.sum()), "timed_responded": int((r & timed).sum()),
                "other": int((~timed).sum()), "other_responded": int((r & ~timed).sum())}

    r = program["responded"].notna().to_numpy()
    band = np.minimum(program["prior"].to_numpy(), 3)
    occasion = program["occasion"].to_numpy()
    done = pd.concat([orders.loc[orders["status"] == 0, ["pid", "time"]], options[["pid", "time"]]], ignore_index=True)
    day = done["time"].to_numpy().astype("datetime64[D]")
    signup, churn = persons["signup"].to_numpy(), persons["churn"].to_numpy()
    monthly = {}
    for end in MONTH_ENDS:
        e = np.datetime64(end.date(), "D")
        active = ~np.isnat(signup) & (signup.astype("datetime64[D]") <= e) & (np.isnat(churn) | (churn.astype("datetime64[D]") > e))
        inside = (day > e - 365) & (day <= e)
        count = np.bincount(done["pid"].to_numpy()[inside], minlength=len(persons))
        monthly[end.strftime("%Y-%m")] = {"customers": int(active.sum()), "regular": int((active & (count >= 2)).sum())}
    return {
        "kundenbrief": timed_vs_other(program), "blasts": timed_vs_other(blasts),
        "by_prior_sends": {(str(b) if b < 3 else "3+"): {"sends": int((band == b).sum()), "responded": int(r[band == b].sum())}
                           for b in range(4)},
        "by_occasion": {occ: {"sends": int((occasion == occ).sum()), "responded": int(r[occasion == occ].sum())}
                        for occ in PLANTED["occasion_program"]["occasions"]},
        "options": int(len(options)), "responders": int(r.sum()), "monthly": monthly,
        "order_days": [[int(day.min().astype("int64")), int(day.max().astype("int64"))]] if len(done) else [],
    }


def _summary_counts(persons, files, dups, knr, n_test, tests, score_counts, contacts, responses) -> dict:
    """What one chunk's exports hold: people, rows and duplicates per file, test accounts,
    out-of-range scores, consent, contacts by reason, responses, rows the demo mapping stages."""
    n = len(persons)
    crm = files["crm_kunden.csv"]
    test_refs = set(knr.slice(n).to_pylist())
    real_crm = crm[~crm["Kundennummer"].isin(test_refs)].drop_duplicates()
    signup = persons["signup"]
    return {
        "people": {"crm_people": n, "customers": int(signup.notna().sum()), "leads": int(signup.isna().sum()),
                   "existing_customers_at_start": int(persons["existing"].sum()),
                   "new_customers": int((signup.notna() & ~persons["existing"]).sum()),
                   "churned": int(persons["churn"].notna().sum()),
                   "business": int(persons["business"].sum())},
        "rows": {name: int(len(df)) for name, df in files.items()},
        "duplicate_rows": {name: int(k) for name, k in dups.items()},
        "test_accounts": {"crm_rows": n_test, "customer_refs": sorted(test_refs),
                          "contacts": int(len(tests["contacts"])), "orders": int(len(tests["orders"])),
                          "survey_responses": int(len(tests["responses"])), "web_sessions": 2 * n_test},
        "scores_out_of_range": {name: int(k) for name, k in score_counts.items()},
        "consent": {"ja": int((real_crm["Einwilligung Kontakt"] == "ja").sum()),
                    "nein": int((real_crm["Einwilligung Kontakt"] == "nein").sum()),
                    "missing": int(real_crm["Einwilligung Kontakt"].isna().sum())},
        "contacts_by_reason": {str(k): int(v) for k, v in contacts["reason"].value_counts().items()},
        "responses": {"total": int(len(responses)), "relationship": int((responses["survey"] == "Beziehung").sum()),
                      "transactional": int((responses["survey"] == "Transaktion").sum()),
                      "with_comment": int(responses["comment"].notna().sum())},
        "staged_rows_demo_mapping": _staged_rows(files),
    }


# =========================================================================================
# from counts to the ground truth
# =========================================================================================
def _effects(t: dict) -> dict:
    """The realised planted effects from the merged effect counts."""
    out: dict = {}
    inv = t["invoice"]
    out["invoice_unclear_nps"] = {
        "description": "NPS of responses with an inbound invoice_unclear contact in the 60 days before vs all other responses",
        "planted": PLANTED["invoice_unclear"],
        "realised": {"nps_exposed": _nps(inv["exposed"]), "nps_unexposed": _nps(inv["unexposed"]),
                     "nps_diff": _nps(inv["exposed"]) - _nps(inv["unexposed"]),
                     "n_exposed": inv["exposed"]["n"], "n_unexposed": inv["unexposed"]["n"]}}

    p = t["provisioning"]
    thr = PLANTED["provisioning"]["threshold_days"]
    nps_long, nps_short = p["nps_long"], p["nps_short"]
    churn_long, churn_short = _share(p["churned_180d_mature_long"], p["mature_long"]), _share(p["churned_180d_mature_short"], p["mature_short"])
    by_end_long, by_end_short = _share(p["churned_long"], p["long"]), _share(p["churned_short"], p["orders"] - p["long"])
    out["provisioning_delay"] = {
        "description": (f"broadband new contracts with order -> activation > {thr} days: NPS/detractors of responses from order "
                        "to 180 days after activation, and churn of the customer (long vs short provisioning)"),
        "planted": PLANTED["provisioning"],
        "realised": {"long_share_of_broadband_orders": _share(p["long"], p["orders"]), "broadband_orders": p["orders"],
                     "nps_long": _nps(nps_long), "nps_short": _nps(nps_short),
                     "nps_diff": _nps(nps_long) - _nps(nps_short),
                     "detractor_share_long": _share(nps_long["detractors"], nps_long["n"]),
                     "detractor_share_short": _share(nps_short["detractors"], nps_short["n"]),
                     "n_responses_long": nps_long["n"], "n_responses_short": nps_short["n"],
                     "churn_180d_long": churn_long, "churn_180d_short": churn_short,
                     "churn_180d_ratio": _ratio(churn_long, churn_short),
                     "n_orders_mature_long": p["mature_long"], "n_orders_mature_short": p["mature_short"],
                     "churn_by_end_long": by_end_long, "churn_by_end_short": by_end_short,
                     "churn_by_end_ratio": _ratio(by_end_long, by_end_short)}}

    h = t["hotline"]
    rate_long, rate_short = _share(h["complaints_long"], h["long"]), _share(h["complaints_short"], h["phone"] - h["long"])
    ces_long, ces_short = _share(h["ces_long"]["sum"], h["ces_long"]["n"]), _share(h["ces_short"]["sum"], h["ces_short"]["n"])
    out["hotline_wait"] = {
        "description": ("inbound phone contacts waiting > 300 s: share followed by a complaint_hotline contact within 11 days; "
                        "mean CES of responses with such a wait in the 14 days before vs with only shorter waits"),
        "planted": PLANTED["hotline_wait"],
        "realised": {"long_wait_share": _share(h["long"], h["phone"]), "phone_contacts": h["phone"],
                     "complaint_rate_long_wait": rate_long, "complaint_rate_short_wait": rate_short,
                     "complaint_ratio": _ratio(rate_long, rate_short),
                     "ces_long_wait": ces_long, "ces_short_wait": ces_short, "ces_diff": ces_long - ces_short,
                     "n_ces_long": h["ces_long"]["n"], "n_ces_short": h["ces_short"]["n"]}}

    sf = t["service_failure"]
    unres = _share(sf["unresolved"]["churned"], sf["unresolved"]["n"])
    res = _share(sf["resolved"]["churned"], sf["resolved"]["n"])
    base = _share(sf["churned_index_dates"], sf["active_index_dates"])
    out["unresolved_service_failure_churn"] = {
        "description": ("customers whose service-failure complaint was not resolved (Gelöst = nein): churn within 90 days after "
                        "the first such complaint, vs resolved complaints and vs all active customers (monthly index dates)"),
        "planted": PLANTED["unresolved_service_failure"],
        "realised": {"churn_90d_unresolved": unres, "n_unresolved": sf["unresolved"]["n"], "churn_90d_resolved": res,
                     "n_resolved": sf["resolved"]["n"], "churn_90d_all_customers": base,
                     "ratio_vs_all_customers": _ratio(unres, base), "ratio_vs_resolved": _ratio(unres, res)}}

    o = t["outage"]
    out["outage_notification"] = {
        "description": ("responses within 60 days after a regional outage that hit the customer: NPS with a proactive notice "
                        "(Störungsinfo) vs without; and notified vs all responses without a notice"),
        "planted": PLANTED["outage"],
        "realised": {"nps_affected_notified": _nps(o["notified"]), "nps_affected_not_notified": _nps(o["affected_not_notified"]),
                     "nps_diff_vs_affected_without_notice": _nps(o["notified"]) - _nps(o["affected_not_notified"]),
                     "nps_not_notified_all": _nps(o["not_notified"]),
                     "nps_diff_vs_all_not_notified": _nps(o["notified"]) - _nps(o["not_notified"]),
                     "n_notified": o["notified"]["n"], "n_affected_not_notified": o["affected_not_notified"]["n"],
                     "customers_affected": o["customers_affected"], "affected_instances": o["affected_instances"]}}

    b = t["billing"]
    u = pd.DataFrame([{"month": m, "complaints": b["complaints"][m], "active_customers": b["active_customers"][m]}
                      for m in b["complaints"]])
    ubar = u["complaints"].sum() / u["active_customers"].sum() * 1000
    sigma = 3 * np.sqrt(ubar / (u["active_customers"] / 1000))
    u = u.assign(rate_per_1000=u["complaints"] / u["active_customers"] * 1000, ucl=ubar + sigma, lcl=np.maximum(ubar - sigma, 0))
    u = u.assign(out_of_control=(u["rate_per_1000"] > u["ucl"]) | (u["rate_per_1000"] < u["lcl"]))
    spike = PLANTED["billing_complaints"]["spike_month"]
    out["billing_complaint_spike"] = {
        "description": ("complaint_billing contacts per 1,000 active customers per month (active = customer at some time in the "
                        "month); u-chart with 3-sigma limits around the overall rate"),
        "planted": PLANTED["billing_complaints"],
        "realised": {"center_rate_per_1000": float(ubar), "outlier_months": u.loc[u["out_of_control"], "month"].tolist(),
                     "spike_month_rate": float(u.loc[u["month"] == spike, "rate_per_1000"].iloc[0]),
                     "other_months_mean_rate": float(u.loc[u["month"] != spike, "rate_per_1000"].mean()),
                     "monthly": u.round(4).to_dict(orient="records")}}

    c = t["conversion"]
    out["repeat_customer_conversion"] = {
        "description": ("quotes (web quote_request) and consultations (Beratung contacts): share followed by an order of the "
                        "same customer within 30 days, for existing customers vs new leads"),
        "planted": PLANTED["conversion"],
        "realised": {"conversion_existing_customers": _share(c["converted_existing"], c["existing"]),
                     "conversion_new_leads": _share(c["converted_new"], c["new"]),
                     "n_existing": c["existing"], "n_new_leads": c["new"],
                     "lead_conversion_rate": _share(c["new_leads_customers"], c["new_leads"]), "new_leads": c["new_leads"]}}

    th = t["invoice_theme"]
    out["invoice_theme_in_detractor_comments"] = {
        "description": "share of comments labelled with the invoice theme, by NPS group of the same response",
        "planted": PLANTED["invoice_theme"],
        "realised": {f"share_{grp}": _share(th[grp]["invoice"], th[grp]["n"]) for grp in NPS_GROUPS}
        | {f"n_{grp}": th[grp]["n"] for grp in NPS_GROUPS}}

    a = t["addons"]
    out["repeat_purchases"] = {
        "description": ("add-on purchases (Auftragsart Zusatzkauf, Produktkategorie Zusatzprodukte) of active customers, "
                        "drawn from BG/NBD (rates per day) + Gamma-Gamma (euros); purchase days are local dates of "
                        "completed orders"),
        "planted": PLANTED["repeat_purchases"],
        "realised": {"addon_orders": a["orders"], "addon_revenue_eur": a["cents"] / 100,
                     "mean_addon_spend_eur": a["cents"] / a["orders"] / 100 if a["orders"] else float("nan"),
                     "active_customers": a["active_customers"], "customers_with_addons": a["customers"],
                     "addons_per_active_customer": _ratio(a["orders"], a["active_customers"]),
                     "customers_with_2plus_addon_days": a["customers_2plus_addon_days"],
                     "customers_with_2plus_purchase_days": a["customers_2plus_purchase_days"],
                     "customers_with_3plus_purchase_days": a["customers_3plus_purchase_days"],
                     "addon_orders_by_product": dict(sorted(a["by_product"].items()))}}
    return out


def _program_effects(t: dict) -> dict:
    """The occasion programme's effects from the merged programme counts: response of
    occasion-timed against other sends, by earlier sends in the fatigue window, the options booked,
    and the disversion rate per month on contract and option orders."""
    cfg = PLANTED["occasion_program"]

    def timed_vs_other(c):
        a, b = _share(c["timed_responded"], c["timed"]), _share(c["other_responded"], c["other"])
        return {"rate_occasion_timed": a, "rate_other": b, "ratio": _ratio(a, b), "n_occasion_timed": c["timed"], "n_other": c["other"]}

    bands = {band: {"sends": c["sends"], "rate": _share(c["responded"], c["sends"])} for band, c in t["by_prior_sends"].items()}
    monthly = {}
    if t["order_days"]:
        first = np.datetime64(min(d[0] for d in t["order_days"]), "D")
        last = np.datetime64(max(d[1] for d in t["order_days"]), "D")
        for end in MONTH_ENDS[(MONTH_ENDS >= pd.Timestamp(first) + pd.Timedelta(days=365)) & (MONTH_ENDS <= pd.Timestamp(last))]:
            m = t["monthly"][end.strftime("%Y-%m")]
            monthly[end.strftime("%Y-%m")] = {**m, "rate": _share(m["regular"], m["customers"])}
    months = list(monthly)
    return {
        "occasion_timed_response": {
            "description": ("response rate of sends whose local day falls in the lead time of one of the customer's occasions "
                            "(config/taxonomy.yml occasions: anniversary 14 days, end of the 24-month term 60, a week after "
                            "the first invoice or an activation, 7-14 days after a resolved complaint, 3 days before the name "
                            "day) against other sends: the Kundenbrief sends, and all sends (the 16 campaigns respond "
                            "without regard to occasions)"),
            "planted": {k: cfg[k] for k in ("campaign", "reach", "base_response", "occasion_response_ratio", "occasions")},
            "realised": {"kundenbrief": timed_vs_other(t["kundenbrief"]),
                         "all_sends": timed_vs_other(merge_tallies(t["kundenbrief"], t["blasts"])),
                         "kundenbrief_by_occasion": {occ: {"sends": c["sends"], "rate": _share(c["responded"], c["sends"])}
                                                     for occ, c in t["by_occasion"].items()}}},
        "contact_fatigue": {
            "description": "response rate of the Kundenbrief sends by the sends of any campaign to the customer in the 90 days before",
            "planted": {k: cfg[k] for k in ("fatigue_ratio_per_send", "fatigue_window_days")},
            "realised": {"kundenbrief_by_prior_sends": bands}},
        "disversion": {
            "description": ("options (Zusatzoption) booked by Kundenbrief responders; disversion rate per month: active customers "
                            "with >= 2 completed contract or option orders (add-on purchases not counted) in the 365 days up to "
                            "the month's end, over all active customers"),
            "planted": {k: cfg[k] for k in ("purchase_after_response", "purchase_days")},
            "realised": {"options_booked": t["options"], "kundenbrief_responders": t["responders"],
                         "options_per_responder": _ratio(t["options"], t["responders"]), "monthly": monthly,
                         "first_month": months[0] if months else None, "last_month": months[-1] if months else None,
                         "change_points": (100 * (monthly[months[-1]]["rate"] - monthly[months[0]]["rate"])) if months else None}},
    }


def ground_truth(t: dict, *, customers: int, seed: int, outages: pd.DataFrame, chunk_customers: int | None = None) -> dict:
    """The ground truth (JSON-ready) of a run from its merged tally: what the exports hold and the
    realised planted effects. `chunk_customers` (a run in several chunks) adds "chunks"."""
    s = t["summary"]
    chunks = {"chunks": {"count": -(-customers // chunk_customers), "customers_per_chunk": chunk_customers}} if chunk_customers else {}
    test = s["test_accounts"]
    return _jsonable({
        "company": "Telko Nord GmbH (synthetic)",
        "generator": "cxlib.demo.generate",
        "seed": seed,
        "period": {"start": "2024-01-01", "end": "2025-12-31"},
        "customers_parameter": customers,
        **chunks,
        "people": s["people"],
        "rows": s["rows"],
        "rows_contacts_total": sum(k for name, k in s["rows"].items() if name.startswith("kontakte_")),
        "duplicate_rows": s["duplicate_rows"],
        "duplicate_rows_total": sum(s["duplicate_rows"].values()),
        "test_accounts": {**test, "customer_refs": sorted(test["customer_refs"]),
                          "rule": "Nachname == 'Test' or E-Mail ends with '@example.test'"},
        "scores_out_of_range": s["scores_out_of_range"],
        "consent": s["consent"],
        "contacts_by_reason": dict(sorted(s["contacts_by_reason"].items())),
        "responses": s["responses"],
        "outages": [{"region": str(REGIONS[o.region]), "start": str(o.start), "end": str(o.end)} for o in outages.itertuples()],
        "staged_rows_demo_mapping": s["staged_rows_demo_mapping"],
        "planted": PLANTED,
        "effects": _effects(t["effects"]) | _program_effects(t["program"]),
    })


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if np.isnan(obj) else round(float(obj), 6)
    return obj


def _truth_tables(persons, contacts, orders, responses, campaigns, knr) -> dict[str, pd.DataFrame]:
    """Clean canonical-like truth tables (customer_ref = Kundennummer; no duplicates, no test
    accounts, true scores) for checking analyses against."""
    cust = pd.DataFrame({schema.CUSTOMER_REF: _take(knr, np.arange(len(persons))), schema.SEGMENT: np.where(persons["business"], "business", "private"),
                         schema.REGION: REGIONS[persons["region"].to_numpy()], schema.LEAD_DATE: persons["lead_date"],
                         schema.SIGNUP_DATE: persons["signup"], schema.CHURN_DATE: persons["churn"],
                         schema.CONTACT_CONSENT: persons["consent"].to_numpy() == 0})
    con = pd.DataFrame({schema.CUSTOMER_REF: _take(knr, contacts["pid"].to_numpy()), schema.TIMESTAMP: contacts["time"],
                        schema.CONTACT_REASON: contacts["reason"], schema.DIRECTION: np.where(contacts["direction"] == 0, "inbound", "outbound"),
                        schema.WAIT_SECONDS: contacts["wait"], schema.RESOLVED: contacts["resolved"].map({1: True, 0: False}),
                        "origin": contacts["origin"]})
    ords = pd.DataFrame({schema.ORDER_ID: orders["order_id"], schema.CUSTOMER_REF: _take(knr, orders["pid"].to_numpy()),
                         schema.TIMESTAMP: orders["time"], "order_type": _take(ORDER_TYPES, orders["type"].to_numpy()),
                         schema.CATEGORY: _take(CATEGORIES, _category(orders)),
                         schema.STATUS: np.array(schema.ORDER_STATUSES)[orders["status"].to_numpy()],
                         "activation": orders["activation"], "long_provisioning": orders["long"]})
    fb = pd.DataFrame({schema.RESPONSE_ID: responses["response_id"], schema.CUSTOMER_REF: _take(knr, responses["pid"].to_numpy()),
                       schema.TIMESTAMP: responses["time"], schema.SURVEY: np.where(responses["survey"] == "Beziehung", "relationship", "transactional"),
                       schema.NPS: responses["nps"], schema.CSAT: responses["csat"], schema.CES: responses["ces"],
                       **{c: responses[c] for c in ("x_invoice", "x_long_provisioning", "x_outage", "x_outage_notified", "x_long_wait")}})
    camp = pd.DataFrame({schema.CAMPAIGN_ID: np.array([x[0] for x in CAMPAIGNS])[campaigns["campaign"].to_numpy()],
                         schema.CUSTOMER_REF: _take(knr, campaigns["pid"].to_numpy()), schema.SENT_AT: campaigns["sent"],
                         schema.RESPONDED_AT: campaigns["responded"]})
    return {"customers": cust, "contacts": con, "orders": ords, "feedback": fb, "campaigns": camp}


def _staged_rows(files: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Rows that config/sources/demo.yml stages from these files (duplicates included)."""
    crm, orders, camp = files["crm_kunden.csv"], files["bestellungen.csv"], files["kampagnen_versand.csv"]
    known = pc.is_in(pa.array(files["web_sessions.csv"]["visitor_id"]), value_set=pa.array(files["web_logins.csv"]["visitor_id"]))
    known = known.to_numpy(zero_copy_only=False)
    contacts = sum(len(df) for name, df in files.items() if name.startswith("kontakte_"))
    not_renewal = orders["Auftragsart"] != "Verlängerung"
    milestones = sum(int(orders.loc[not_renewal, col].notna().sum())
                     for col in ("Bestelldatum", "Bereitstellung Start", "Aktivierung", "Erste Rechnung"))
    events = (contacts + int(known.sum()) + milestones + int((orders["Status"] == "storniert").sum())
              + int((~not_renewal).sum()) + len(camp) + int(camp["Reaktion am"].notna().sum())
              + int(crm["Kündigungsdatum"].notna().sum()))
    return {"customers": len(crm), "events": events, "feedback": len(files["umfrage_antworten.csv"]),
            "orders": len(orders), "campaigns": len(camp)}
