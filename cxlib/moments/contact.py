"""Closing the loop: the consent-gated list of customers to call back after a negative moment.

Candidates are customers with a recent contact of a negative moment that was unresolved, or
who are detractors; only customers with an explicit opt-in for a direct channel are listed
(a later opt-out in a consent log wins). Reports show counts and pseudonymous examples; the
CSV with the CRM number goes to the service team only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import numpy as np
import pandas as pd

from cxlib import engine, locale, metrics
from cxlib.config import fold
from cxlib.moments.base import (
    MOMENT, SECONDS_PER_DAY, MomentsError, _epoch, _require, _seconds, _tbl, moment_label, num, say,
)
from cxlib.schema import (
    CHANNEL, CHURN_DATE, CONSENT_CHANNELS, CONTACT_CONSENT, CUSTOMER_ID, CUSTOMER_REF, EVENT_ID, NPS, RESOLVED,
    TIMESTAMP, Missing,
)

DIRECT_CHANNELS = ("phone", "email", "sms", "letter")   # channels a call-back can use, in preference order
INCLUDED, NO_CONSENT, OTHER = "included", "excluded_no_consent", "excluded_other"
STATUSES = (INCLUDED, NO_CONSENT, OTHER)
CONSENT = "consent"                           # consent log: True = opt-in, False = opt-out
_EXCLUSIONS = ("unknown customer", "churned", "no explicit consent for a direct channel")   # exclusion_reason values


def negative_moments(taxonomy, ranking: pd.DataFrame | None = None) -> list[str]:
    """Moments that call for a call-back: the classic moments of truth, every complaint reason
    and the ranked moments with a significant negative impact (`rank_moments`; optional)."""
    classic = list(taxonomy.data.get("moments_of_truth") or [])
    ranked = ([] if ranking is None or ranking.empty else
              ranking.loc[ranking["significant"].astype(bool) & (ranking["impact"] < 0), MOMENT].tolist())
    return list(dict.fromkeys([*classic, *taxonomy.complaint_category_of_reason, *ranked]))


def recent_moments(contacts, *, moments: Sequence[str], as_of, recent_days: float = 30,
                   col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP) -> pd.DataFrame:
    """Contacts of `moments` in the `recent_days` up to `as_of` (as_of - recent_days < t <= as_of).

    In: `handled_contacts` (None: no contacts of any moment). Out: event_id, customer_id,
    timestamp, moment, channel, resolved; only contacts of known customers. `schema.Missing`
    without contacts or when no contact names its customer.
    """
    if contacts is None:
        raise Missing("no contacts of a moment", enable="events.contact_reason")
    h = _tbl(contacts, "contacts", [EVENT_ID, col_customer, col_timestamp, MOMENT, CHANNEL, RESOLVED])
    if engine.to_pandas(h.agg(n=h[col_customer].count()))["n"].iloc[0] == 0:
        raise Missing("the contacts do not name their customers", enable="events.customer_id")
    h = h.filter(h[col_customer].notnull())
    hi = _epoch(as_of)
    lo = hi - int(round(recent_days * SECONDS_PER_DAY))
    s = _seconds(h[col_timestamp])
    recent = h.filter(h[MOMENT].isin([str(m) for m in moments]) & (s > lo) & (s <= hi))
    out = engine.to_pandas(recent.select(EVENT_ID, col_customer, col_timestamp, MOMENT, CHANNEL, RESOLVED))
    return out.assign(**{RESOLVED: out[RESOLVED].astype("boolean")}).sort_values(
        [col_customer, col_timestamp, EVENT_ID], kind="stable").reset_index(drop=True)


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
    reason = np.select([unknown, churned, cand[CHANNEL].isna()], list(_EXCLUSIONS), "")
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


def describe_contact_list(counts: Mapping, *, recent_days: float, consent_log: bool, file: str | None = None,
                          lang: str = "en") -> str:
    """The contact list in words: how many, the consent basis, the exclusions and, given its
    `file` name, where the list with CRM numbers is."""
    reasons = counts.get("exclusion_reasons") or {}
    why = "; ".join(f"{num(n, lang, decimals=0)} {say(f'exclusion.{r}', lang) if r in _EXCLUSIONS else r}"
                    for r, n in reasons.items()) or say("words.none", lang)
    text = say("contact.lead", lang, candidates=num(counts["candidates"], lang, decimals=0), days=f"{recent_days:g}",
               included=num(counts["included"], lang, decimals=0),
               no_consent=num(counts["excluded_no_consent"], lang, decimals=0),
               other=num(counts["excluded_other"], lang, decimals=0), why=why,
               basis=say("contact.basis_log" if consent_log else "contact.basis_crm", lang))
    return text + (say("contact.file", lang, file=file) if file else "")


def contact_list_record(counts: Mapping, *, recent_days: float, as_of, channels: Sequence[str], file: str,
                        consent_log: bool) -> dict:
    """The `contact_list` entry of results.json: the counts, the window, the channels, the file
    and the consent basis in words."""
    return {**{k: counts[k] for k in ("included", "excluded_no_consent", "excluded_other", "candidates", "exclusion_reasons")},
            "recent_days": recent_days, "as_of": as_of, "channels": list(channels), "file": file,
            "consent_basis": "explicit opt-in per channel (CRM contact_consent and consent_channels)"
                             + ("; consent log, latest entry wins, opt-out wins a tie" if consent_log else "")}


def contact_list_examples(contacts: pd.DataFrame, *, n: int = 5, lang: str = "en") -> pd.DataFrame:
    """The first `n` included customers for readers, pseudonymous (`locale.display_table`):
    customer, moment, when, resolved, latest NPS, channel, topic, value."""
    shown = contacts.loc[contacts["status"] == INCLUDED].head(n)
    return locale.display_table(pd.DataFrame({
        "customer": shown[CUSTOMER_ID], "moment": shown["moment_label"], "moment_at": shown["moment_at"],
        "resolved": shown[RESOLVED].astype("boolean"), "latest_nps": shown["latest_nps"], "channel": shown[CHANNEL],
        "topic": shown["topic"], "revenue": shown["value"]}), lang,
        kinds={"resolved": "flag", "latest_nps": "count", "moment_at": "date"})
