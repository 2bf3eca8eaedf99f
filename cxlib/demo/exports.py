"""The export files of the demo company as its systems write them: CRM (Latin-1), quarterly
contact files, survey answers with mixed date formats and out-of-range codes, orders, campaign
sends, web sessions and logins; test accounts, ~1% exact duplicate rows, signed comments.
Each function returns the file as a DataFrame of text cells (plus its duplicate count).

    files["crm_kunden.csv"], dups = _with_duplicates(rng, _crm(rng, persons, tests["persons"], knr), eligible)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxlib.demo.base import (DAY, NAT, PERIOD_END, PERIOD_START, LOCAL_TZ, _at_hours, _digits, _euro, _ids,
                             _pick, _strftime, _take, _translit, _uniform_days)
from cxlib.demo.sentences import SIGNATURES
from cxlib.demo.vocabulary import (AREA_CODES, CAMPAIGNS, CATEGORIES, FIRM_PREFIX, FIRM_SUFFIX, FIRST_F, FIRST_M,
                                   LAST, MAIL_DOMAINS, MOBILE_PREFIX, ORDER_STATUS, ORDER_TYPES, PAGE_TYPES,
                                   DEVICES, PLANTED, REASON_LABELS, REGIONS)
from cxlib.demo.world import _category


def _append_with_duplicates(rng: np.random.Generator, frame: pd.DataFrame, extra: pd.DataFrame, dups: int) -> tuple[pd.DataFrame, int]:
    """`frame` (holding `dups` duplicates) with `extra` appended, some of its rows repeated right
    after their original so that the file keeps ~1% duplicates in all."""
    k = int(round(PLANTED["messiness"]["duplicate_share"] * (len(frame) - dups + len(extra)))) - dups
    k = min(max(k, 0), len(extra))
    dup = np.sort(rng.choice(len(extra), k, replace=False))
    order = np.sort(np.concatenate([np.arange(len(extra)), dup]), kind="stable")
    return pd.concat([frame, extra.iloc[order]], ignore_index=True), dups + k


def _program_file(sends: pd.DataFrame, knr: pa.Array, first_id: int) -> pd.DataFrame:
    s = sends.sort_values(["sent", "pid"], kind="stable").reset_index(drop=True)
    return pd.DataFrame({
        "Versand-ID": _ids("V", np.arange(first_id, first_id + len(s)), 9), "Kampagne": s["name"].to_numpy(),
        "Kundennummer": _take(knr, s["pid"].to_numpy()), "Versand am": _strftime(s["sent"].to_numpy(), "%d.%m.%Y %H:%M"),
        "Reaktion am": _strftime(s["responded"].to_numpy(), "%d.%m.%Y %H:%M"),
    })


def _test_accounts(rng: np.random.Generator, n_persons: int, count: int) -> dict[str, pd.DataFrame]:
    """Test accounts (pid n_persons..): CRM persons (pid, since) and a few contacts, orders, surveys."""
    pid = n_persons + np.arange(count)
    since = _uniform_days(rng, np.full(count, np.datetime64("2023-06-01", "s")), np.full(count, np.datetime64("2025-06-01", "s")))
    persons = pd.DataFrame({"pid": pid, "since": since})
    c_pid = np.repeat(pid, 2)
    c_time = _at_hours(rng, _uniform_days(rng, np.maximum(np.repeat(since, 2), PERIOD_START), np.full(2 * count, PERIOD_END)), 9, 17)
    contacts = pd.DataFrame({"pid": c_pid, "time": c_time, "reason": _pick(rng, ["general_inquiry", "technical_support"], [0.5, 0.5], 2 * count),
                             "direction": np.int8(0), "channel": "Telefon", "origin": "test", "wait": 30.0, "handle": 2.0,
                             "resolved": np.int8(1), "note": "Testanruf"})
    day = _uniform_days(rng, np.maximum(since, PERIOD_START), np.full(count, PERIOD_END - 20 * DAY))
    orders = pd.DataFrame({"pid": pid, "time": _at_hours(rng, day, 9, 17), "type": 0, "broadband": False,
                           "product": "Mobil M", "fee": 2999, "amount": 24 * 2999, "channel": "Web", "status": 0,
                           "storno_day": NAT, "storno_reason": None, "prov_start": day + DAY, "activation": day + 2 * DAY,
                           "first_invoice": day + 12 * DAY, "long": False, "duration": 2, "new_customer": False})
    r_pid = pid[rng.random(count) < 0.5]
    responses = pd.DataFrame({"pid": r_pid, "time": _at_hours(rng, _uniform_days(rng, np.full(len(r_pid), PERIOD_START), np.full(len(r_pid), PERIOD_END)), 9, 17),
                              "survey": "Transaktion", "touchpoint": "Servicekontakt", "nps": 10.0, "csat": 5.0, "ces": 7.0,
                              "comment": None})
    return {"persons": persons, "contacts": contacts, "orders": orders, "responses": responses}


def _with_duplicates(rng: np.random.Generator, df: pd.DataFrame, eligible: np.ndarray | None = None) -> tuple[pd.DataFrame, int]:
    """Repeat ~1% of the (eligible) rows exactly, each right after its original."""
    share = PLANTED["messiness"]["duplicate_share"]
    pool = np.flatnonzero(np.ones(len(df), bool) if eligible is None else eligible)
    k = int(round(share * len(df)))
    dup = np.sort(rng.choice(pool, min(k, len(pool)), replace=False))
    order = np.sort(np.concatenate([np.arange(len(df)), dup]), kind="stable")
    return df.iloc[order].reset_index(drop=True), len(dup)


def _customer_numbers(rng: np.random.Generator, n: int, n_test: int, before: int = 0) -> pa.Array:
    """Kundennummer per pid (persons 0..n-1 in lead-date order, then test accounts), numbered on
    from the `before` numbers of earlier chunks."""
    total = n + n_test
    test_slots = np.sort(rng.choice(total, n_test, replace=False))
    rest = np.setdiff1d(np.arange(total), test_slots)
    numbers = np.concatenate([rest, test_slots]) + 1 + before
    return pa.array(_ids("K", numbers, 7))


def _crm(rng: np.random.Generator, persons: pd.DataFrame, tests: pd.DataFrame, knr: pa.Array,
         tests_before: int = 0) -> pd.DataFrame:
    """The CRM export: one row per person and test account (test accounts numbered on from
    `tests_before`), sorted by Kundennummer."""
    n, t = len(persons), len(tests)
    total = n + t
    female = rng.random(total) < 0.5
    first_m, first_f, last = np.array(FIRST_M, object), np.array(FIRST_F, object), np.array(LAST, object)
    i_m, i_f, i_l = rng.integers(0, len(first_m), total), rng.integers(0, len(first_f), total), rng.integers(0, len(last), total)
    vorname = np.where(female, first_f[i_f], first_m[i_m])
    nachname = last[i_l]
    tv = np.where(female, _translit(FIRST_F)[i_f], _translit(FIRST_M)[i_m])
    tl = _translit(LAST)[i_l]
    anrede = np.where(rng.random(total) < 0.03, None, np.where(female, "Frau", "Herr"))
    business = np.concatenate([persons["business"].to_numpy(), np.zeros(t, bool)])
    prefix = np.array(FIRM_PREFIX, object)[rng.integers(0, len(FIRM_PREFIX), total)]
    firma = pd.Series(prefix) + " " + pd.Series(nachname) + " " + pd.Series(_pick(rng, FIRM_SUFFIX, np.ones(len(FIRM_SUFFIX)), total))
    dom = pd.Series(_pick(rng, MAIL_DOMAINS, [0.25, 0.2, 0.15, 0.2, 0.08, 0.04, 0.04, 0.04], total))
    fmt = rng.choice(4, total, p=[0.45, 0.2, 0.2, 0.15])
    sv, sl = pd.Series(tv), pd.Series(tl)
    local = pd.Series(np.select([fmt == 0, fmt == 1, fmt == 2],
                                [sv + "." + sl, sv.str[0] + "." + sl, sl + _digits(rng, total, 2)], sv + "_" + sl))
    slug = sl + "-" + pd.Series(_translit(FIRM_PREFIX)[rng.integers(0, len(FIRM_PREFIX), total)]) + ".de"
    email = np.where(business, sv + "." + sl + "@" + slug, local + "@" + dom)
    email = np.where(rng.random(total) < 0.06, None, email)
    mp = pd.Series(_pick(rng, MOBILE_PREFIX, np.ones(len(MOBILE_PREFIX)), total))
    ac = pd.Series(_pick(rng, AREA_CODES, np.ones(len(AREA_CODES)), total))
    d7, d6 = _digits(rng, total, 7), _digits(rng, total, 6)
    pf = rng.choice(5, total, p=[0.35, 0.2, 0.2, 0.1, 0.15])
    phone = np.select([pf == 0, pf == 1, pf == 2, pf == 3], ["0" + mp + " " + d7, "+49 " + mp + " " + d7, "0" + ac + " " + d7,
                                                             "(0" + ac + ") " + d6], "0" + ac + "/" + d6)
    phone = np.where(rng.random(total) < 0.08, None, phone)
    # test accounts: surname 'Test' or an @example.test address
    ti = np.arange(n, total)
    number = tests_before + np.arange(t)
    by_name = number % 2 == 0
    vorname[ti] = np.where(by_name, "Max", _pick(rng, ["QA", "Erika", "Test"], [1, 1, 1], t))
    nachname[ti] = np.where(by_name, "Test", "Mustermann")
    email[ti] = np.where(by_name, pd.Series(number).astype(str).radd("test").add("@telko-nord.de"),
                         pd.Series(number).astype(str).radd("qa.team+").add("@example.test"))
    phone[ti] = "040 5550100"
    consent = np.concatenate([persons["consent"].to_numpy(), np.zeros(t, int)])
    channels = _pick(rng, ["E-Mail", "E-Mail, Telefon", "Telefon", "E-Mail, SMS", "Brief", "E-Mail, Telefon, SMS"],
                     [0.35, 0.25, 0.1, 0.15, 0.05, 0.1], total)
    signup = np.concatenate([persons["signup"].to_numpy(), tests["since"].to_numpy()])
    lead = np.concatenate([persons["lead_date"].to_numpy(), tests["since"].to_numpy()])
    churn = np.concatenate([persons["churn"].to_numpy(), np.full(t, NAT)])
    fee = np.concatenate([persons["fee"].to_numpy(), np.full(t, 2999)])
    frame = pd.DataFrame({
        "Kundennummer": pd.Series(knr, dtype="str"), "Anrede": anrede, "Vorname": vorname, "Nachname": nachname,
        "Firma": np.where(business, firma, None), "E-Mail": email, "Telefon": phone,
        "Kundentyp": np.where(business, "Geschäftskunde", "Privatkunde"),
        "Region": np.concatenate([REGIONS[persons["region"].to_numpy()], np.full(t, "Nord")]),
        "Erfasst am": _strftime(lead, "%d.%m.%Y"), "Kunde seit": _strftime(signup, "%d.%m.%Y"),
        "Kündigungsdatum": _strftime(churn, "%d.%m.%Y"),
        "Einwilligung Kontakt": np.array(["ja", "nein", None], object)[consent],
        "Einwilligungskanäle": np.where(consent == 0, channels, None),
        "Monatlicher Umsatz": _euro(fee),
    })
    return frame.sort_values("Kundennummer", kind="stable").reset_index(drop=True)


def _contact_files(rng: np.random.Generator, contacts: pd.DataFrame, knr: pa.Array, n: int, *, before: int = 0,
                   excel: bool = True) -> tuple[dict, int]:
    """One file per quarter, Kontakt-ID numbered on from `before`: an Excel workbook (sheet
    'Kontakte') with Zeitpunkt as Excel date-time, some as text; or (excel False) a Parquet file
    with Zeitpunkt a timestamp column (a database export has no dates as text)."""
    c = contacts.sort_values(["time", "pid"], kind="stable").reset_index(drop=True)
    k = len(c)
    as_text = rng.random(k) < PLANTED["messiness"]["contact_time_as_text_share"]
    if excel:
        ts = pd.Series(c["time"].to_numpy().astype("datetime64[ns]")).astype(object)
        zeit = ts.where(~as_text, _strftime(c["time"].to_numpy(), "%d.%m.%Y %H:%M").astype(object))
    else:
        zeit = c["time"].to_numpy().astype("datetime64[s]")
    frame = pd.DataFrame({
        "Kontakt-ID": _ids("KT-", np.arange(1, k + 1) + before, 8), "Kundennummer": _take(knr, c["pid"].to_numpy()),
        "Zeitpunkt": zeit, "Kanal": c["channel"].astype("str"),
        "Richtung": np.where(c["direction"].to_numpy() == 0, "eingehend", "ausgehend"),
        "Anliegen": c["reason"].map(REASON_LABELS).astype("str"), "Wartezeit (Sek.)": c["wait"].to_numpy(),
        "Bearbeitungszeit (Min.)": c["handle"].to_numpy(),
        "Gelöst": np.array(["nein", "ja", None], object)[c["resolved"].to_numpy().astype(int)],
        "Notiz": c["note"].astype("str"),
    })
    quarter = pd.PeriodIndex(c["time"], freq="Q")
    files, dups = {}, 0
    for q in sorted(quarter.unique()):
        name = f"kontakte_{q.year}_Q{q.quarter}.{'xlsx' if excel else 'parquet'}"
        rows = (quarter == q)
        part, d = _with_duplicates(rng, frame[rows].reset_index(drop=True), c["pid"].to_numpy()[rows] < n)
        files[name], dups = part, dups + d
    return files, dups


def _signed_comments(r: pd.DataFrame, crm: pd.DataFrame, knr: pa.Array, n: int) -> pd.DataFrame:
    """The comments with personal data (has_pii) of real customers end with the writer's own
    name and customer number from the CRM, as real verbatims sometimes do: 'Gruß Anna Lange,
    Kundennummer K0000123', 'Regards, Anna Lange (K0000123)'; three wordings per language
    (`SIGNATURES`, by person number: no random draws)."""
    pid = r["pid"].to_numpy()
    sign = r["has_pii"].fillna(False).astype(bool).to_numpy() & (pid < n) & r["lang"].isin(list(SIGNATURES)).to_numpy()
    ref = pd.Series(_take(knr, np.where(sign, pid, 0)).to_numpy(), index=r.index)
    who = crm.drop_duplicates("Kundennummer").set_index("Kundennummer").reindex(ref.to_numpy())
    name = pd.Series((who["Vorname"] + " " + who["Nachname"]).to_numpy(), index=r.index)
    parts = [np.select([r["lang"].eq(lang).to_numpy() & (pid % 3 == i) for lang in SIGNATURES for i in range(3)],
                       [SIGNATURES[lang][i][k] for lang in SIGNATURES for i in range(3)], "") for k in range(3)]
    signature = parts[0] + name + parts[1] + ref + parts[2]
    return r.assign(comment=r["comment"].where(~sign, r["comment"].astype(object) + " " + signature))


def _survey_file(rng: np.random.Generator, r: pd.DataFrame, knr: pa.Array, n: int) -> tuple[pd.DataFrame, dict]:
    """Survey answers with mixed date formats and out-of-range / code values."""
    mess = PLANTED["messiness"]
    k = len(r)
    nps = r["nps"].to_numpy().copy()
    u = rng.random(k)
    real = r["pid"].to_numpy() < n
    code99 = real & ~np.isnan(nps) & (u < mess["nps_code_99_share"])
    eleven = real & ~np.isnan(nps) & (u >= mess["nps_code_99_share"]) & (u < mess["nps_code_99_share"] + mess["nps_11_share"])
    nps = np.where(code99, 99, np.where(eleven, 11, nps))
    csat = r["csat"].to_numpy().copy()
    bad_csat = real & ~np.isnan(csat) & (rng.random(k) < mess["csat_out_of_range_share"])
    csat = np.where(bad_csat, _pick(rng, [0, 6], [0.5, 0.5], k), csat)
    ces = r["ces"].to_numpy().copy()
    bad_ces = real & ~np.isnan(ces) & (rng.random(k) < mess["ces_out_of_range_share"])
    ces = np.where(bad_ces, _pick(rng, [0, 8], [0.5, 0.5], k), ces)
    fmt = rng.choice(3, k, p=[0.5, 0.35, 0.15])
    t = r["time"].to_numpy()
    eingang = np.select([fmt == 0, fmt == 1], [_strftime(t, "%Y-%m-%d %H:%M"), _strftime(t, "%d.%m.%Y %H:%M")],
                        _strftime(t, "%d.%m.%Y"))
    anonymous = real & (rng.random(k) < 0.01)

    def as_text(x):
        return pd.Series(x).astype("Int64").astype("str").where(~np.isnan(x))

    frame = pd.DataFrame({
        "Antwort-ID": r["response_id"].to_numpy(), "Kundennummer": _take(knr, r["pid"].to_numpy()).where(~anonymous),
        "Eingang": eingang, "Umfrage": r["survey"].to_numpy(), "Kontaktpunkt": r["touchpoint"].to_numpy(),
        "Weiterempfehlung": as_text(nps), "Zufriedenheit": as_text(csat), "Aufwand": as_text(ces),
        "Kommentar": r["comment"].to_numpy(),
    })
    counts = {"nps_99_keine_angabe": int(code99.sum()), "nps_11": int(eleven.sum()),
              "csat_out_of_range": int(bad_csat.sum()), "ces_out_of_range": int(bad_ces.sum()),
              "anonymous_responses": int(anonymous.sum())}
    return frame, counts


def _order_file(o: pd.DataFrame, knr: pa.Array) -> pd.DataFrame:
    return pd.DataFrame({
        "Bestellnummer": o["order_id"].to_numpy(), "Kundennummer": _take(knr, o["pid"].to_numpy()),
        "Bestelldatum": _strftime(o["time"].to_numpy(), "%d.%m.%Y %H:%M"),
        "Auftragsart": _take(ORDER_TYPES, o["type"].to_numpy()), "Produkt": o["product"].astype("str"),
        "Produktkategorie": _take(CATEGORIES, _category(o)), "Vertriebskanal": o["channel"].astype("str"),
        "Betrag": _euro(o["amount"].to_numpy()), "Status": _take(ORDER_STATUS, o["status"].to_numpy()),
        "Stornogrund": o["storno_reason"].astype("str"), "Stornodatum": _strftime(o["storno_day"].to_numpy(), "%d.%m.%Y"),
        "Bereitstellung Start": _strftime(o["prov_start"].to_numpy(), "%d.%m.%Y"),
        "Aktivierung": _strftime(o["activation"].to_numpy(), "%d.%m.%Y"),
        "Erste Rechnung": _strftime(o["first_invoice"].to_numpy(), "%d.%m.%Y"),
    })


def _campaign_file(c: pd.DataFrame, knr: pa.Array, first_id: int = 1) -> pd.DataFrame:
    c = c.sort_values(["sent", "pid"], kind="stable").reset_index(drop=True)
    return pd.DataFrame({
        "Versand-ID": _ids("V", np.arange(first_id, first_id + len(c)), 9), "Kampagne": np.array([x[0] for x in CAMPAIGNS])[c["campaign"].to_numpy()],
        "Kundennummer": _take(knr, c["pid"].to_numpy()), "Versand am": _strftime(c["sent"].to_numpy(), "%d.%m.%Y %H:%M"),
        "Reaktion am": _strftime(c["responded"].to_numpy(), "%d.%m.%Y %H:%M"),
    })


def _web_files(rng: np.random.Generator, sessions: pd.DataFrame, visitors: pd.DataFrame, knr: pa.Array,
               chunk: int = 0, chunks: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """web_sessions and web_logins. The 10-digit visitor and session numbers of chunk `chunk` of
    `chunks` are that chunk's remainder modulo `chunks` above 10**9, so that no two chunks share one."""
    nv = len(visitors)
    step = max((9 * 10 ** 9 - 1) // max(nv * chunks, 1), 1)
    number = 10 ** 9 + (rng.permutation(nv).astype("int64") * step + rng.integers(0, step, nv)) * chunks + chunk
    first_seen = rng.integers(1672531200, 1767225600, nv)
    vid = pc.binary_join_element_wise(pc.cast(pa.array(number), pa.string()), pc.cast(pa.array(first_seen), pa.string()), ".")
    utc = (pd.Series(sessions["time"].to_numpy()).dt.tz_localize(LOCAL_TZ).dt.tz_convert("UTC")
           .dt.tz_localize(None).to_numpy().astype("datetime64[s]"))
    ns = len(sessions)
    sid = 10 ** 9 + rng.permutation(ns).astype("int64") * max((9 * 10 ** 9) // max(ns * chunks, 1), 1) * chunks + chunk
    web = pd.DataFrame({
        "session_id": pd.Series(pc.cast(pa.array(sid), pa.string()), dtype="str"), "visitor_id": _take(vid, sessions["vis"].to_numpy()),
        "started_at": _strftime(utc, "%Y-%m-%dT%H:%M:%SZ"), "page_type": _take(PAGE_TYPES, sessions["page"].to_numpy()),
        "device": _take(DEVICES, sessions["device"].to_numpy()),
    })
    used = np.zeros(nv, bool)
    used[sessions["vis"].to_numpy()] = True
    v = visitors[used & (visitors["pid"].to_numpy() >= 0)]
    logins = (pd.DataFrame({"visitor_id": _take(vid, v["vis"].to_numpy()), "crm_id": _take(knr, v["pid"].to_numpy())})
              .sort_values(["crm_id", "visitor_id"], kind="stable").reset_index(drop=True))
    return web, logins
