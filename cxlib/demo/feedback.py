"""Survey responses and their verbatims: relationship (quarterly sample) and transactional
(after contacts, activations, orders) answers with NPS/CSAT/CES drawn from a latent score that
carries the planted effects, the exposure flags (x_*) the effects are measured with, and the
comments with their truth labels (language, themes, sentiment, has_pii).

    responses = _comments(rng, _responses(rng, persons, contacts, orders, affected))
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxlib.demo.base import (DAY, PERIOD_END, PERIOD_START, _at_hours, _days, _digits, _first_in_window, _floor_day,
                             _pick, _translit, _uniform_days)
from cxlib.demo.sentences import CLOSERS, OPENERS, OTHER_LANG_THEMES, THEME_WEIGHTS, THEMES, sentence_variants
from cxlib.demo.vocabulary import FIRST_F, FIRST_M, LAST, MAIL_DOMAINS, MOBILE_PREFIX, PLANTED


def _responses(rng: np.random.Generator, persons: pd.DataFrame, contacts: pd.DataFrame,
               orders: pd.DataFrame, affected: pd.DataFrame) -> pd.DataFrame:
    """Relationship (quarterly sample) and transactional (after contacts, activation, order)
    responses with NPS/CSAT/CES drawn from a latent score that carries the planted effects."""
    n = len(persons)
    signup = persons["signup"].to_numpy()
    churn = persons["churn"].to_numpy()
    churn_or_end = np.where(pd.isna(churn), PERIOD_END, churn)
    active_from = np.where(pd.isna(signup), PERIOD_END, np.maximum(signup, PERIOD_START))
    parts = []
    for q in range(8):
        qs = np.datetime64("2024-01-01", "M") + 3 * q
        q0, q1 = qs.astype("datetime64[D]").astype("datetime64[s]"), (qs + 3).astype("datetime64[D]").astype("datetime64[s]")
        lo, hi = np.maximum(active_from, q0), np.minimum(churn_or_end, q1)
        pid = np.flatnonzero((hi - lo >= DAY) & (rng.random(n) < 0.12))
        t = _at_hours(rng, _uniform_days(rng, lo[pid], hi[pid]), 7, 22)
        parts.append(pd.DataFrame({"pid": pid, "time": t, "survey": "Beziehung", "touchpoint": None}))
    c = contacts[(contacts["direction"] == 0) & (rng.random(len(contacts)) < 0.18)]
    reason = c["reason"].to_numpy()
    tp = np.where(pd.Series(reason).str.startswith("complaint").to_numpy(), "Beschwerde",
                  np.where(np.isin(reason, ["sales_consultation", "contract_renewal"]), "Beratung", "Servicekontakt"))
    t = _at_hours(rng, _floor_day(c["time"].to_numpy()) + _days(rng.integers(1, 8, len(c))), 7, 22)
    parts.append(pd.DataFrame({"pid": c["pid"].to_numpy(), "time": t, "survey": "Transaktion", "touchpoint": tp}))
    o = orders[orders["activation"].notna() & (orders["type"] == 0)]
    o = o[rng.random(len(o)) < 0.30]
    t = _at_hours(rng, o["activation"].to_numpy() + _days(rng.integers(3, 15, len(o))), 7, 22)
    parts.append(pd.DataFrame({"pid": o["pid"].to_numpy(), "time": t, "survey": "Transaktion", "touchpoint": "Aktivierung"}))
    o = orders[rng.random(len(orders)) < 0.08]
    t = _at_hours(rng, _floor_day(o["time"].to_numpy()) + _days(rng.integers(1, 6, len(o))), 7, 22)
    parts.append(pd.DataFrame({"pid": o["pid"].to_numpy(), "time": t, "survey": "Transaktion", "touchpoint": "Bestellung"}))
    r = pd.concat(parts, ignore_index=True)
    r = r[(r["time"].to_numpy() < PERIOD_END) & (r["time"].to_numpy() < churn_or_end[r["pid"].to_numpy()])]
    r = r.sort_values(["time", "pid"], kind="stable").reset_index(drop=True)
    return _scores(rng, r, persons, contacts, orders, affected)


def _exposures(r: pd.DataFrame, contacts: pd.DataFrame, orders: pd.DataFrame, affected: pd.DataFrame) -> pd.DataFrame:
    """Flags per response: invoice_unclear contact in the 60 days before, long provisioning
    (order .. activation + 180 days), outage hit in the 60 days before (and notified), a long
    hotline wait in the 14 days before."""
    inv_cfg, prov_cfg = PLANTED["invoice_unclear"], PLANTED["provisioning"]
    out_cfg, hot = PLANTED["outage"], PLANTED["hotline_wait"]
    inv = contacts[(contacts["reason"] == "invoice_unclear") & (contacts["direction"] == 0)]
    f_inv = _first_in_window(r, inv, by="pid", on="time", right_on="time", window=inv_cfg["window_days"] * DAY)
    lo = orders[orders["long"]].assign(_end=lambda d: d["activation"].fillna(PERIOD_END) + pd.Timedelta(days=prov_cfg["window_after_activation_days"]))
    f_prov = _first_in_window(r, lo, by="pid", on="time", right_on="time", window=400 * DAY, keep=("_end",))
    prov = f_prov["_hit"].to_numpy() & (r["time"].to_numpy() <= f_prov["_end"].to_numpy())
    f_out = _first_in_window(r, affected, by="pid", on="time", right_on="start", window=out_cfg["window_days"] * DAY,
                             keep=("notified",))
    waits = contacts[contacts["wait"] > hot["threshold_seconds"]]
    f_wait = _first_in_window(r, waits, by="pid", on="time", right_on="time", window=hot["ces_window_days"] * DAY)
    phone = contacts[contacts["wait"].notna()]
    f_phone = _first_in_window(r, phone, by="pid", on="time", right_on="time", window=hot["ces_window_days"] * DAY)
    outage = f_out["_hit"].to_numpy()
    notified = outage & f_out["notified"].fillna(False).to_numpy().astype(bool)
    return pd.DataFrame({"x_invoice": f_inv["_hit"].to_numpy(), "x_long_provisioning": prov,
                         "x_outage": outage, "x_outage_notified": notified,
                         "x_long_wait": f_wait["_hit"].to_numpy(), "x_phone": f_phone["_hit"].to_numpy()}, index=r.index)


def _scores(rng: np.random.Generator, r: pd.DataFrame, persons: pd.DataFrame, contacts: pd.DataFrame,
            orders: pd.DataFrame, affected: pd.DataFrame) -> pd.DataFrame:
    n = len(r)
    x = _exposures(r, contacts, orders, affected)
    pid = r["pid"].to_numpy()
    out = PLANTED["outage"]
    m = (7.8 - 0.3 * persons["business"].to_numpy()[pid] + persons["u"].to_numpy()[pid] + rng.normal(0, 1.6, n)
         + PLANTED["invoice_unclear"]["nps_latent_shift"] * x["x_invoice"].to_numpy()
         + PLANTED["provisioning"]["nps_latent_shift"] * x["x_long_provisioning"].to_numpy()
         + np.where(x["x_outage_notified"], out["nps_latent_shift_notified"],
                    np.where(x["x_outage"], out["nps_latent_shift_not_notified"], 0.0)))
    nps = np.clip(np.rint(m), 0, 10)
    csat = np.clip(np.rint(1 + 0.45 * (m - 1) + rng.normal(0, 0.6, n)), 1, 5)
    ces = np.clip(np.rint(5.3 + 0.3 * (m - 7.8) + rng.normal(0, 1.0, n)
                          + PLANTED["hotline_wait"]["ces_latent_shift"] * x["x_long_wait"].to_numpy()), 1, 7)
    trans = (r["survey"] == "Transaktion").to_numpy()
    asked_nps = ~trans | (rng.random(n) < 0.85)
    asked_csat = rng.random(n) < np.where(trans, 0.90, 0.60)
    asked_ces = trans & (rng.random(n) < 0.85)
    return pd.concat([r, x], axis=1).assign(
        latent=m, nps=np.where(asked_nps, nps, np.nan), csat=np.where(asked_csat, csat, np.nan),
        ces=np.where(asked_ces, ces, np.nan), nps_true=nps)


def _comments(rng: np.random.Generator, r: pd.DataFrame) -> pd.DataFrame:
    """Verbatims for part of the responses, with their truth labels: language (de/en/other),
    themes (taxonomy codes) and sentiment. Returns r with `comment`, `language`, `lang`,
    `themes`, `sentiment`, `has_pii`."""
    n = len(r)
    group = np.where(r["nps_true"] <= 6, 0, np.where(r["nps_true"] <= 8, 1, 2))   # detractor, passive, promoter
    has = rng.random(n) < np.array([0.50, 0.35, 0.40])[group]
    idx = np.flatnonzero(has)
    g = group[idx]
    k = len(idx)
    sentiment = np.where(g == 0, _pick(rng, ["negative", "neutral"], [0.85, 0.15], k),
                         np.where(g == 2, _pick(rng, ["positive", "neutral"], [0.85, 0.15], k),
                                  _pick(rng, ["neutral", "negative", "positive"], [0.5, 0.3, 0.2], k)))
    lang = _pick(rng, ["de", "en", "other"], [0.70, 0.25, 0.05], k)
    lang = np.where((lang == "other") & (sentiment == "neutral"), "de", lang)
    other = lang == "other"
    lang_code = np.where(other, _pick(rng, ["fr", "tr", "es"], [0.35, 0.45, 0.20], k), lang)
    weights = np.array([THEME_WEIGHTS[t] for t in THEMES]).T[g]              # k x themes
    boost = np.ones_like(weights)
    col = {t: i for i, t in enumerate(THEMES)}
    sub = r.iloc[idx]
    boost[:, col["invoice"]] = np.where(sub["x_invoice"], PLANTED["invoice_theme"]["boost_if_invoice_contact"], 1.0)
    boost[:, col["provisioning"]] = np.where(sub["x_long_provisioning"], 4.0, 1.0)
    boost[:, col["hotline_waiting"]] = np.where(sub["x_long_wait"], 4.0, 1.0)
    boost[:, col["outage"]] = np.where(sub["x_outage"], 4.0, 1.0)
    weights = weights * boost
    weights[other] = weights[other] * np.isin(THEMES, OTHER_LANG_THEMES)
    # hotline waiting has no positive sentence in other languages
    weights[other & (sentiment == "positive"), col["hotline_waiting"]] = 0.0

    def draw(w: np.ndarray) -> np.ndarray:
        cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
        return np.minimum((cum < rng.random((len(w), 1))).sum(axis=1), len(THEMES) - 1)

    t1 = draw(weights)
    w2 = weights.copy()
    w2[np.arange(k), t1] = 0.0
    t2 = np.where(~other & (rng.random(k) < 0.3), draw(w2), -1)
    variants = sentence_variants()
    s1 = np.empty(k, dtype=object)
    s2 = np.full(k, "", dtype=object)
    for (theme, lg, sent), options in variants.items():
        for target, th in ((s1, t1), (s2, t2)):
            rows = np.flatnonzero((th == col[theme]) & (lang_code == lg) & (sentiment == sent))
            target[rows] = np.asarray(options, dtype=object)[rng.integers(0, len(options), len(rows))]
    opener = np.full(k, "", dtype=object)
    closer = np.full(k, "", dtype=object)
    for (lg, sent), options in OPENERS.items():
        rows = np.flatnonzero((lang_code == lg) & (sentiment == sent) & (rng.random(k) < 0.4))
        opener[rows] = np.asarray(options, dtype=object)[rng.integers(0, len(options), len(rows))]
    for (lg, sent), options in CLOSERS.items():
        rows = np.flatnonzero((lang_code == lg) & (sentiment == sent) & (rng.random(k) < 0.3))
        closer[rows] = np.asarray(options, dtype=object)[rng.integers(0, len(options), len(rows))]
    pii = (rng.random(k) < 0.04) & ~other
    first = _translit(FIRST_M + FIRST_F)[rng.integers(0, len(FIRST_M) + len(FIRST_F), k)]
    last = _translit(LAST)[rng.integers(0, len(LAST), k)]
    mail = pd.Series(first) + "." + pd.Series(last) + "@" + pd.Series(_pick(rng, MAIL_DOMAINS, np.ones(len(MAIL_DOMAINS)), k))
    phone = "0" + pd.Series(_pick(rng, MOBILE_PREFIX, np.ones(len(MOBILE_PREFIX)), k)) + " " + _digits(rng, k, 7)
    use_mail = rng.random(k) < 0.5
    pii_text = np.where(lang_code == "de",
                        np.where(use_mail, "Meine E-Mail: " + mail, "Bitte melden Sie sich unter " + phone + "."),
                        np.where(use_mail, "Contact me at " + mail + ".", "My number is " + phone + "."))
    pii_text = np.where(pii, pii_text, "")
    pieces = [pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
              for arr in (pa.array(np.asarray(x, dtype=str), pa.string()) for x in (opener, s1, s2, closer, pii_text))]
    text = pc.binary_join_element_wise(*pieces, " ", null_handling="skip").to_numpy(zero_copy_only=False)
    themes = np.where(t2 >= 0, np.array(THEMES, dtype=object)[t1] + "|" + np.array(THEMES + [""], dtype=object)[t2],
                      np.array(THEMES, dtype=object)[t1])
    out = pd.DataFrame({"comment": None, "language": None, "lang": None, "themes": None, "sentiment": None,
                        "has_pii": False}, index=r.index)
    out.iloc[idx, out.columns.get_loc("comment")] = np.asarray(text, dtype=object)
    out.iloc[idx, out.columns.get_loc("language")] = lang
    out.iloc[idx, out.columns.get_loc("lang")] = lang_code
    out.iloc[idx, out.columns.get_loc("themes")] = themes
    out.iloc[idx, out.columns.get_loc("sentiment")] = sentiment
    out.iloc[idx, out.columns.get_loc("has_pii")] = pii
    return pd.concat([r, out], axis=1)
