"""Moments: derived ones, the catalogue, the candidates that occur, the contacts and how they were handled.

A *moment* is a contact reason (taxonomy `contact_reasons`, those flagged `moment` and the
classic four of `moments_of_truth` first, then every other reason seen) or a moment derived
from the log (taxonomy `derived_moments`, e.g. slow provisioning, a promised date passed
without delivery), dated when the customer experiences it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis import _

from cxlib import engine, locale
from cxlib.moments.base import (
    DEFAULT_WAIT_BANDS, FCR, MOMENT, NOT_RECORDED, RESOLUTION, SECONDS_PER_DAY, UNKNOWN, WAIT_BAND, MomentsError,
    _seconds, _tbl, join_words, moment_label, num, say, wait_band_labels,
)
from cxlib.schema import (
    CHANNEL, CONTACT_REASON, CUSTOMER_ID, DIRECTION, EVENT_ID, RESOLVED, TIMESTAMP, TOUCHPOINT, WAIT_SECONDS, Missing,
)

DATED_AT = ("then", "first", "deadline")     # `between` moments: dated at b (default), at a, or at a + min_days


def _between(e: ir.Table, code: str, rule: Mapping, c: dict) -> ir.Table:
    pair, days = rule["between"], rule.get("min_days")
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(pair) or days is None:
        raise MomentsError(f"derived_moments.{code}: 'between' needs two touchpoints and 'min_days', got {rule}")
    dated = rule.get("dated_at", "then")
    if dated not in DATED_AT:
        raise MomentsError(f"derived_moments.{code}: dated_at must be one of {list(DATED_AT)}, got {dated!r}")
    first, then = pair
    limit = int(round(float(days) * SECONDS_PER_DAY))
    later = e.filter(e[c["tp"]] == then)
    earlier = e.filter(e[c["tp"]] == first).select(_fc=e[c["cust"]], _fs=_seconds(e[c["ts"]]))
    pairs = later.join(earlier, [later[c["cust"]] == earlier._fc, earlier._fs <= _seconds(later[c["ts"]])])
    last = pairs.group_by(c["id"]).agg(_last=pairs._fs.max())
    hit = later.join(last, c["id"])
    hit = hit.mutate(_gap=_seconds(hit[c["ts"]]) - hit._last)
    hit = hit.filter(hit._gap > limit)
    back = {"then": None, "first": hit._gap, "deadline": hit._gap - limit}[dated]
    return hit if back is None else hit.mutate(**{c["ts"]: hit[c["ts"]] - back.as_interval("s")})


def _missed(e: ir.Table, code: str, rule: Mapping, c: dict) -> ir.Table:
    spec = rule["missed"] or {}
    due_tp, done_tp, since_tp = spec.get("due"), spec.get("done"), spec.get("since")
    if not isinstance(spec, Mapping) or not due_tp or not done_tp:
        raise MomentsError(f"derived_moments.{code}: 'missed' needs 'due' and 'done' touchpoints, got {rule}")
    grace = int(round(float(rule.get("grace_days", 0)) * SECONDS_PER_DAY))
    due = e.filter((e[c["tp"]] == due_tp) & e[c["cust"]].notnull())
    due = due.mutate(_ds=_seconds(due[c["ts"]]))
    if since_tp:
        starts = e.filter(e[c["tp"]] == since_tp).select(_sc=e[c["cust"]], _ss=_seconds(e[c["ts"]]))
        j = due.left_join(starts, [due[c["cust"]] == starts._sc, starts._ss <= due._ds])
        due = due.join(j.group_by(c["id"]).agg(_from=j._ss.max()), c["id"])
    else:                               # since the customer's previous due day (a join: it spills, a window does not)
        v = due.view()
        prev = v.select(_pc=v[c["cust"]], _ps=v._ds, _pi=v[c["id"]])
        j = due.left_join(prev, [due[c["cust"]] == prev._pc,
                                 (prev._ps < due._ds) | ((prev._ps == due._ds) & (prev._pi < due[c["id"]]))])
        due = due.join(j.group_by(c["id"]).agg(_from=j._ps.max()), c["id"])
    due = due.mutate(_from=due._from.fill_null(0))
    done = e.filter(e[c["tp"]] == done_tp).select(_dc=e[c["cust"]], _dn=_seconds(e[c["ts"]]))
    hit = due.anti_join(done, [due[c["cust"]] == done._dc, done._dn >= due._from, done._dn <= due._ds + grace])
    rest = e.filter(e[c["tp"]] != due_tp)                               # promised days may lie beyond the log
    hit = hit.filter(hit._ds + grace <= _seconds(rest[c["ts"]]).max())  # known only once the day is in the log
    return hit.mutate(**{c["ts"]: hit[c["ts"]] + ibis.interval(seconds=grace)}) if grace else hit


def _wait(e: ir.Table, code: str, rule: Mapping, c: dict) -> ir.Table:
    _tbl(e, "events", [c["wait"]])
    hit = e.filter(e[c["wait"]] > float(rule["wait_over_seconds"]))
    if c["dir"] in e.columns:
        hit = hit.filter(hit[c["dir"]].fill_null("inbound") != "outbound")
    if rule.get("except_reasons"):
        hit = hit.filter(~hit[c["reason"]].fill_null("").isin([str(r) for r in rule["except_reasons"]]))
    return hit


_RULES = {"between": _between, "missed": _missed, "wait_over_seconds": _wait}


def with_derived_moments(events, taxonomy=None, *, rules: Mapping | None = None,
                         col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                         col_event_id: str = EVENT_ID, col_touchpoint: str = TOUCHPOINT,
                         col_reason: str = CONTACT_REASON, col_wait: str = WAIT_SECONDS,
                         col_direction: str = DIRECTION) -> ir.Table:
    """The events plus one event per derived moment (taxonomy `derived_moments`, or `rules`),
    dated when the customer experiences the moment.

    `between: [a, b], min_days: d`: each touchpoint-b event whose latest earlier touchpoint-a
    event of the same customer lies more than d days before it (e.g. order -> activation over
    14 days); dated (`dated_at`) at b ("then", default), at a ("first") or at a + d days
    ("deadline": the day the wait became too long).
    `missed: {due: a, done: b, since: s}` (optional `grace_days: g`): each touchpoint-a event
    (e.g. the promised delivery date) with no touchpoint-b event of the same customer from its
    latest earlier touchpoint-s event (without `since`: from the customer's previous a event)
    up to a + g days; dated at a + g days, the day the promise is broken, and kept only once that
    day lies within the log. "Promised date passed without delivery" is
    `missed: {due: delivery_promised, done: delivery, since: order}`.
    `wait_over_seconds: s`: each contact (not outbound) that waited more than s seconds, except
    contacts whose reason is in the optional `except_reasons` (e.g. a cancellation call: the
    customer had decided to leave before the wait, so it would show as churn caused by waiting).
    Derived events keep every other column of the event they copy; event_id gets '#<code>'.
    """
    if rules is None:
        rules = (taxonomy.data.get("derived_moments") or {}) if taxonomy is not None else {}
    e = _tbl(events, "events", [col_customer, col_timestamp, col_event_id, col_touchpoint, col_reason])
    cols = {"cust": col_customer, "ts": col_timestamp, "id": col_event_id, "tp": col_touchpoint, "reason": col_reason,
            "wait": col_wait, "dir": col_direction}
    parts = [e]
    for code, rule in rules.items():
        rule = rule or {}
        kind = next((k for k in _RULES if k in rule), None)
        if kind is None:
            raise MomentsError(f"derived_moments.{code}: expected one of {list(_RULES)}, got {sorted(rule)}")
        hit = _RULES[kind](e, code, rule, cols)
        parts.append(hit.mutate(**{col_reason: ibis.literal(str(code), "string"),
                                   col_event_id: hit[col_event_id] + f"#{code}"}).select(*e.columns))
    return ibis.union(*parts) if len(parts) > 1 else e


def comparable_rules(taxonomy) -> dict[str, dict]:
    """`comparable_when` of each derived moment: {moment: {touchpoint: [...]} or {contact_reason: [...]}}.

    A moment with such a condition is compared only with answers of customers who met the
    condition in the same window (like with like: a broken delivery promise against orders
    whose promise fell due too, not against customers still waiting or never ordering)."""
    out = {}
    for code, rule in (taxonomy.data.get("derived_moments") or {}).items():
        when = (rule or {}).get("comparable_when")
        if not when:
            continue
        if not isinstance(when, Mapping) or not set(when) <= {TOUCHPOINT, CONTACT_REASON}:
            raise MomentsError(f"derived_moments.{code}.comparable_when: expected 'touchpoint' or 'contact_reason', "
                               f"got {when}")
        out[str(code)] = {k: [str(v) for v in (vals if isinstance(vals, (list, tuple)) else [vals])]
                          for k, vals in when.items()}
    return out


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


def candidate_moments(events, taxonomy, *, lang: str = "en", keep_absent: bool = False,
                      col_customer: str = CUSTOMER_ID, col_reason: str = CONTACT_REASON,
                      col_resolved: str = RESOLVED) -> pd.DataFrame:
    """Candidate moments: the taxonomy's moments (see `moment_catalogue`) that occur in the
    events (all of them with `keep_absent`), then every other contact reason seen, most
    frequent first. Moments the data never shows (e.g. the telecom classics in a shop's data)
    are left out.

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
    out = out.assign(contacts=out["contacts"].fillna(0).astype("int64"),
                     customers=out["customers"].fillna(0).astype("int64"),
                     resolved_rate=(out["_resolved"].fillna(0) / known.where(known > 0)).astype(float),
                     classic=out["classic"].astype(bool), derived=out["derived"].astype(bool),
                     flagged=out["flagged"].astype(bool))
    return (out.loc[(out["contacts"] > 0) | keep_absent,
                    [MOMENT, "label", "classic", "derived", "flagged", "complaint", "contacts", "customers", "resolved_rate"]]
            .reset_index(drop=True))


def candidates_table(candidates: pd.DataFrame, *, categories: Mapping[str, str] | None = None,
                     lang: str = "en") -> pd.DataFrame:
    """The candidate moments for readers (`locale.display_table`): moment, kind, complaint
    category (`categories`: code -> label), contacts, customers, resolved (%; '–' where no
    outcome is recorded)."""
    kind = ["classic" if c else "derived" if d else "named" if f else "reason"
            for c, d, f in zip(candidates["classic"], candidates["derived"], candidates["flagged"])]
    table = pd.DataFrame({"moment": candidates["label"], "moment_kind": kind, "category": candidates["complaint"],
                          "contacts": candidates["contacts"], "customers": candidates["customers"],
                          "resolved_share": candidates["resolved_rate"]})
    return locale.display_table(table, lang, kinds={"resolved_share": "share"}, codes={"category": dict(categories or {})})


def describe_candidates(candidates: pd.DataFrame, taxonomy, *, lang: str = "en") -> str:
    """How many candidate moments occur, of which kinds, and which moments named by the
    taxonomy the data does not show (left out of every table)."""
    catalogue = moment_catalogue(taxonomy, lang)
    absent = catalogue.loc[~catalogue[MOMENT].isin(candidates[MOMENT])]
    named = int(candidates["flagged"].sum())
    text = say("candidates.lead", lang, n=len(candidates), named=named, classic=int(candidates["classic"].sum()),
               derived=int(candidates["derived"].sum()), others=len(candidates) - named,
               contacts=num(int(candidates["contacts"].sum()), lang, decimals=0))
    if len(absent):
        text += say("candidates.absent", lang, n=len(absent), labels=join_words(absent["label"].tolist(), lang))
    return text


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
    repeat = int(round(repeat_days * SECONDS_PER_DAY))
    # contacts with a further one of the same customer and reason (later, or at the same time with
    # a higher event id) within repeat_days: a join, which spills to disk (DuckDB's window
    # operator, a lead in contact order, does not)
    v = e.view()                        # the same contacts as another relation (a self-join)
    n = v.select(_nc=v[col_customer], _nk=v[col_reason], _nt=v[col_timestamp], _ne=v[col_event_id],
                 _ns=_seconds(v[col_timestamp]))
    followed = e.semi_join(n, [e[col_customer] == n._nc, e[col_reason] == n._nk, n._ns - sec <= repeat,
                               (n._nt > e[col_timestamp]) | ((n._nt == e[col_timestamp]) & (n._ne > e[col_event_id]))])
    again = e[col_event_id].isin(followed[col_event_id])
    wait = e[col_wait]
    band = ibis.cases(*[(wait < float(b), lab) for b, lab in zip(wait_band_seconds, labels)], else_=labels[-1])
    return e.select(
        e[col_event_id], e[col_customer], e[col_timestamp], e[col_reason].name(MOMENT), e[col_channel],
        e[col_resolved], e[col_wait],
        ibis.cases((e[col_resolved].isnull(), UNKNOWN), (e[col_resolved], "resolved"), else_="unresolved").name(RESOLUTION),
        ibis.cases((e[col_resolved].isnull(), UNKNOWN),
                   (e[col_resolved] & ~again, "yes"), else_="no").name(FCR),
        ibis.ifelse(wait.isnull(), NOT_RECORDED, band).name(WAIT_BAND),
    )


def observation_period(events, *, col_timestamp: str = TIMESTAMP) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last timestamp (UTC) of a table, e.g. the event log; `schema.Missing` when it has none."""
    e = _tbl(events, "events", [col_timestamp])
    out = engine.to_pandas(e.agg(first=e[col_timestamp].min(), last=e[col_timestamp].max()))
    first, last = out["first"].iloc[0], out["last"].iloc[0]
    if pd.isna(first):
        raise Missing("no dated events, so no observation period", enable="events.timestamp")
    return pd.Timestamp(first).tz_convert("UTC"), pd.Timestamp(last).tz_convert("UTC")
