"""Reasons to talk: occasions derived from data the company already holds.

An occasion is a dated reason to contact one customer: the contract anniversary, the end of the
minimum term, the week after the first invoice or after an activation, the follow-up after a
resolved complaint, the birthday, the name day. Its types live in `config/taxonomy.yml`
(`occasions`: how the date D is derived, `lead_days`, the owning department). A contact on a
day in [D - lead_days, D] coincides with the occasion. Dates are local calendar days in
`timezone`. Reports show counts; the consent-gated occasion list with CRM numbers goes to the
departments as CSV (`report.write_contact_list`).

    types = occasion_types(taxonomy)
    dates = occasion_dates(types, customers, start="2026-01-01", end="2026-01-31", events=events)
    due = due_occasions(dates, customers, as_of="2025-12-31", horizon_days=30)

Customers, orders and events are engine tables (or DataFrames, run in memory on DuckDB): the
dates of every customer are derived on the engine (`occasion_days`), and only the occasions of a
period, counts and the rows of customers with an occasion come back as pandas DataFrames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxlib import engine
from cxlib.config import fold
from cxlib.moments.contact import DIRECT_CHANNELS, INCLUDED, NO_CONSENT, OTHER, STATUSES, consented_channels
from cxlib.occasions_days import as_dates, as_day_number, as_day_numbers, recurring_days, with_local_days
from cxlib.schema import (
    CHANNEL, CHURN_DATE, CUSTOMER_ID, CUSTOMER_REF, PII_NAME, RESOLVED, SEGMENT, SIGNUP_DATE, STATUS, TIMESTAMP,
    TOUCHPOINT, Missing,
)

OCCASION, DATE, WINDOW_START = "occasion", "date", "window_start"
FIRST_NAME = "first_name"
REIDENTIFICATION_COLUMNS = [CUSTOMER_ID, CUSTOMER_REF, PII_NAME]   # what the stage reads of the restricted table
BIRTH_DATE = "birth_date"            # not a canonical column yet: used when a customers table carries it
DERIVATIONS = ("anniversary", "term_end", "after_event", "name_day")
TYPE_COLUMNS = ["occasion", "label", "derive", "column", "touchpoint", "resolved", "days_after", "term_months",
                "lead_days", "owner"]
VALUE_TIERS = ("high", "medium", "low")
TIER_LABELS = {"en": {"high": "High value", "medium": "Medium value", "low": "Low value"},
               "de": {"high": "Hoher Wert", "medium": "Mittlerer Wert", "low": "Niedriger Wert"}}
TIMEZONE = "Europe/Berlin"


class OccasionError(ValueError):
    """The occasion definitions or inputs are unusable (unknown derivation, bad calendar file)."""


# --- definitions ---------------------------------------------------------------------------------
def occasion_types(taxonomy, *, term_months: int | None = None, lang: str = "en") -> pd.DataFrame:
    """The occasion types of the taxonomy, in file order.

    Out: occasion, label (in `lang`), derive, column (table.column), touchpoint, resolved,
    days_after, term_months (`term_months` overrides the taxonomy), lead_days, owner.
    `schema.Missing` when the taxonomy defines no occasions.
    """
    section = taxonomy.data.get("occasions") or {}
    if not section:
        raise Missing("the taxonomy defines no occasions", enable="an `occasions` section in the taxonomy")
    rows = []
    for code, entry in section.items():
        entry = entry or {}
        if entry.get("derive") not in DERIVATIONS:
            raise OccasionError(f"taxonomy occasions.{code}: derive must be one of {DERIVATIONS}, got {entry.get('derive')!r}")
        rows.append({"occasion": str(code), "label": str(entry.get(lang) or entry.get("en") or code),
                     "derive": entry["derive"], "column": str(entry.get("column") or ""),
                     "touchpoint": str(entry.get("touchpoint") or ""), "resolved": bool(entry.get("resolved", False)),
                     "days_after": int(entry.get("days_after", 0)),
                     "term_months": int(term_months or entry.get("term_months") or 12),
                     "lead_days": int(entry.get("lead_days", 0)), "owner": str(entry.get("owner") or "")})
    return pd.DataFrame(rows, columns=TYPE_COLUMNS)


def read_name_days(path: str | Path | None) -> pd.DataFrame:
    """A name-day calendar file (CSV: name, day as MM-DD; lines starting with # are comments) as
    name (folded: lower case, umlauts as ae/oe/ue), month, day. Empty path: an empty calendar.

        read_name_days("config/name_days_de.csv").head(1) -> gregor, 1, 2
    """
    empty = pd.DataFrame({"name": pd.Series(dtype="str"), "month": pd.Series(dtype="int64"),
                          "day": pd.Series(dtype="int64")})
    if not path:
        return empty
    raw = pd.read_csv(path, comment="#", dtype=str, skip_blank_lines=True)
    if not {"name", "day"} <= set(raw.columns):
        raise OccasionError(f"{path}: a name-day calendar needs the columns name, day (MM-DD); got {list(raw.columns)}")
    parsed = pd.to_datetime("2000-" + raw["day"].str.strip(), format="%Y-%m-%d", errors="coerce")
    bad = raw.loc[parsed.isna() | raw["name"].isna()]
    if len(bad):
        raise OccasionError(f"{path}: rows {[int(i) + 2 for i in bad.index[:3]]} need a name and a day MM-DD "
                            f"(first: {bad.iloc[0].tolist()})")
    out = pd.DataFrame({"name": raw["name"].map(fold).astype("str"), "month": parsed.dt.month.astype("int64"),
                        "day": parsed.dt.day.astype("int64")})
    return out.drop_duplicates("name").reset_index(drop=True) if len(out) else empty


def first_names(reidentification: pd.DataFrame, *, col_name: str = PII_NAME,
                col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """The first word of each customer's name (restricted table) folded for calendar look-ups:
    customer_id, first_name. Only this is kept; reports never show it.

        'Hans-Jürgen Müller' -> 'hans-juergen'
    """
    if reidentification is None or col_name not in reidentification.columns:
        return pd.DataFrame({col_customer: pd.Series(dtype="str"), FIRST_NAME: pd.Series(dtype="str")})
    names = reidentification.loc[reidentification[col_name].notna(), [col_customer, col_name]]
    first = names[col_name].astype("str").str.strip().str.split(r"\s+", n=1, regex=True).str[0]
    folded = pd.Series(pd.unique(first.to_numpy()))                  # fold each distinct name once
    first = first.map(dict(zip(folded, folded.map(fold))))
    return (pd.DataFrame({col_customer: names[col_customer].astype("str"), FIRST_NAME: first.astype("str")})
            .loc[lambda d: d[FIRST_NAME].str.len() > 0].drop_duplicates(col_customer).reset_index(drop=True))


def name_day_of(names: pd.DataFrame, calendar: pd.DataFrame, *, col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """Each customer's name day: the first name as a whole, else its first part before a hyphen
    ('hans-juergen' -> 'hans'). Out: customer_id, month, day (customers without one left out)."""
    cal = calendar.set_index("name")
    whole = pd.Series(pd.unique(names[FIRST_NAME].to_numpy()), dtype="str")       # each distinct name once
    part = whole.str.split("-", n=1).str[0]
    key = whole.where(whole.isin(cal.index), part.where(part.isin(cal.index)))
    found = pd.DataFrame({FIRST_NAME: whole, "_key": key}).dropna(subset=["_key"]).merge(cal, left_on="_key", right_index=True)
    return names.merge(found, on=FIRST_NAME).loc[:, [col_customer, "month", "day"]].reset_index(drop=True)


# --- availability --------------------------------------------------------------------------------
def availability(types: pd.DataFrame, customers, *, events=None, names: pd.DataFrame | None = None,
                 name_days: pd.DataFrame | None = None) -> pd.DataFrame:
    """Which occasion types the data supports. Out: occasion, label, available, reason, enable
    (what is missing and which canonical table.column would enable it). `customers` and `events`:
    engine tables or DataFrames (None: absent); their columns are counted on the engine."""
    seen = _touchpoints_seen(events)
    dated = _dated_columns(customers, {t.column.split(".", 1)[-1] for t in types.itertuples(index=False)
                                       if t.derive in ("anniversary", "term_end")})
    rows = []
    for t in types.itertuples(index=False):          # a handful of occasion types, not rows of data
        column = t.column.split(".", 1)[-1]
        reason, enable = "", ""
        if t.derive in ("anniversary", "term_end"):
            if column not in dated:
                reason, enable = f"no {column.replace('_', ' ')}s", t.column + (
                    ", not a canonical column yet: add it to the schema and the source mapping" if column == BIRTH_DATE else "")
        elif t.derive == "after_event" and t.touchpoint not in seen:
            reason, enable = f"no {t.touchpoint.replace('_', ' ')} events", f"events.touchpoint = {t.touchpoint}"
        elif t.derive == "name_day" and (names is None or len(names) == 0):
            reason, enable = "no first names", "the re-identification table's pii_name"
        elif t.derive == "name_day" and (name_days is None or len(name_days) == 0):
            reason, enable = "no name-day calendar", "a calendar file (parameter name_days)"
        rows.append({"occasion": t.occasion, "label": t.label, "available": not reason, "reason": reason,
                     "enable": enable})
    return pd.DataFrame(rows, columns=["occasion", "label", "available", "reason", "enable"])


def require_any(available: pd.DataFrame) -> None:
    """`schema.Missing` when no occasion type is defined or none can be derived from the data."""
    if available.empty:
        raise Missing("the taxonomy defines no occasions", enable="an `occasions` section in the taxonomy")
    if not available["available"].any():
        raise Missing("no occasion can be derived: " + "; ".join(f"{lab}: {why}" for lab, why in available[["label", "reason"]].values),
                      enable="customers.signup_date or events of the occasions' touchpoints")


def require_occasion(available: pd.DataFrame, occasion: str) -> None:
    """`schema.Missing` naming what is missing when `occasion` cannot be derived (or is not defined)."""
    row = available.loc[available["occasion"] == occasion]
    if row.empty:
        raise Missing(f"the taxonomy defines no {occasion.replace('_', ' ')} occasion", enable=f"occasions.{occasion}")
    if not bool(row["available"].iloc[0]):
        raise Missing(f"{row['label'].iloc[0]}: {row['reason'].iloc[0]}", enable=str(row["enable"].iloc[0]))


def _dated_columns(customers, columns: set[str]) -> set[str]:
    """The `columns` of `customers` that hold at least one value (one count on the engine)."""
    if customers is None:
        return set()
    c = engine.table(customers)
    present = sorted(col for col in columns if col in c.columns)
    if not present:
        return set()
    counts = engine.to_pandas(c.agg(**{col: c[col].count() for col in present})).iloc[0]
    return {col for col in present if counts[col] > 0}


def _touchpoints_seen(events) -> set[str]:
    if events is None:
        return set()
    e = engine.table(events)
    if TOUCHPOINT not in e.columns or CUSTOMER_ID not in e.columns:
        return set()
    seen = engine.to_pandas(e.filter(e[CUSTOMER_ID].notnull()).select(TOUCHPOINT).distinct())
    return set(seen[TOUCHPOINT].dropna().astype(str))


# --- dates ---------------------------------------------------------------------------------------
def local_day(stamps: pd.Series, timezone: str = TIMEZONE) -> pd.Series:
    """UTC timestamps -> local calendar days (naive midnight) in `timezone`; naive input is taken as UTC."""
    ts = pd.to_datetime(stamps)
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts
    return ts.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize().astype("datetime64[us]")


def calendar_day(value) -> pd.Timestamp:
    """A date given as text or timestamp -> naive midnight (a tz-aware value keeps its own calendar day)."""
    ts = pd.Timestamp(value)
    return (ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize()


def _event_dates(events, t, timezone: str) -> ir.Table:
    """customer_id, date: the local day of each event of the type's touchpoint (resolved ones
    only when the type asks) plus its days_after (engine filter)."""
    e = engine.table(events)
    keep = (e[TOUCHPOINT] == t.touchpoint) & e[CUSTOMER_ID].notnull()
    if t.resolved:
        keep = keep & (e[RESOLVED] == True).fill_null(False) if RESOLVED in e.columns else ibis.literal(False)  # noqa: E712
    days = with_local_days(e.filter(keep).select(**{CUSTOMER_ID: e[CUSTOMER_ID].cast("string")}, _ts=e[TIMESTAMP]),
                           timezone, _day="_ts")
    return days.select(CUSTOMER_ID, date=days._day + t.days_after)


def _name_day_bases(names: pd.DataFrame, name_days: pd.DataFrame) -> ir.Table:
    """customer_id, _base: each customer's name day in the year 2000 as a day number."""
    days = name_day_of(names, name_days)
    dates = days.loc[:, ["month", "day"]].drop_duplicates()
    dates = dates.assign(_base=as_day_numbers(pd.to_datetime(dates.assign(year=2000)[["year", "month", "day"]])).astype("int64"))
    days = days.merge(dates, on=["month", "day"])
    return ibis.memtable(pd.DataFrame({CUSTOMER_ID: days[CUSTOMER_ID].astype("str"), "_base": days["_base"].to_numpy()}))


def occasion_days(types: pd.DataFrame, customers, *, start, end, events=None, names: pd.DataFrame | None = None,
                  name_days: pd.DataFrame | None = None, timezone: str = TIMEZONE,
                  available: pd.DataFrame | None = None) -> ir.Table:
    """Every occasion date D in [start, end] (local days) of the types the data supports, as an
    engine table with day numbers (`cxlib.occasions_days`): customer_id, occasion, date,
    window_start (= date - lead_days).

    In: `occasion_types`, customers (customer_id and the date columns the types name) and events
    (customer_id, timestamp, touchpoint, resolved) as engine tables or DataFrames, `first_names`
    and a `read_name_days` calendar; `available`: `availability` when already known.
    Anniversaries count from the first year on (k >= 1), name days from the year 2000.
    """
    if available is None:
        available = availability(types, customers, events=events, names=names, name_days=name_days)
    usable = types.loc[available["available"].to_numpy(dtype=bool)]
    lo, hi = as_day_number(start), as_day_number(end)
    parts = []
    for t in usable.itertuples(index=False):          # one engine derivation per occasion type
        if t.derive in ("anniversary", "term_end"):
            c = engine.table(customers)
            column = t.column.split(".", 1)[-1]
            base = c.filter(c[column].notnull()).select(**{CUSTOMER_ID: c[CUSTOMER_ID].cast("string")}, _ts=c[column])
            base = with_local_days(base, timezone, _base="_ts").drop("_ts")
            got = recurring_days(base, step_months=12 if t.derive == "anniversary" else t.term_months, start=lo, end=hi)
        elif t.derive == "after_event":
            got = _event_dates(events, t, timezone)
            got = got.filter((got.date >= lo) & (got.date <= hi))
        else:
            got = recurring_days(_name_day_bases(names, name_days), step_months=12, start=lo, end=hi, first_k=0)
        parts.append(got.select(CUSTOMER_ID, **{OCCASION: ibis.literal(t.occasion, "string"), DATE: got.date,
                                                WINDOW_START: got.date - t.lead_days}))
    if not parts:
        return ibis.memtable(pd.DataFrame({CUSTOMER_ID: pd.Series(dtype="str"), OCCASION: pd.Series(dtype="str"),
                                           DATE: pd.Series(dtype="int64"), WINDOW_START: pd.Series(dtype="int64")}))
    return ibis.union(*parts)


def occasion_dates(types: pd.DataFrame, customers, *, start, end, events=None, names: pd.DataFrame | None = None,
                   name_days: pd.DataFrame | None = None, timezone: str = TIMEZONE,
                   available: pd.DataFrame | None = None) -> pd.DataFrame:
    """The occasion dates of `occasion_days` as a DataFrame: customer_id, occasion, date,
    window_start (naive local dates), sorted by customer, date and occasion. For a short
    period (the coming days); the dates of all customers over years stay on the engine."""
    got = engine.to_pandas(occasion_days(types, customers, start=start, end=end, events=events, names=names,
                                         name_days=name_days, timezone=timezone, available=available))
    return (got.assign(**{DATE: as_dates(got[DATE]), WINDOW_START: as_dates(got[WINDOW_START])})
            .loc[:, [CUSTOMER_ID, OCCASION, DATE, WINDOW_START]].drop_duplicates()
            .astype({CUSTOMER_ID: "str", OCCASION: "str", DATE: "datetime64[us]", WINDOW_START: "datetime64[us]"})
            .sort_values([CUSTOMER_ID, DATE, OCCASION], kind="stable").reset_index(drop=True))


def active_customers(customers, *, on, timezone: str = TIMEZONE) -> ir.Table:
    """Customers who had signed up by the local day `on` and had not churned by it (no signup
    column: every row), as an engine table of the rows of `customers`."""
    c = engine.table(customers)
    day = as_day_number(on)
    dated = {name: column for name, column in (("_signup_day", SIGNUP_DATE), ("_churn_day", CHURN_DATE)) if column in c.columns}
    t = with_local_days(c, timezone, **dated)
    keep = ibis.literal(True)
    if "_signup_day" in dated:
        keep = keep & (t._signup_day <= day).fill_null(False)
    if "_churn_day" in dated:
        keep = keep & ~(t._churn_day <= day).fill_null(False)
    return t.filter(keep).drop(*dated)


def customer_rows(customers, ids: pd.Series, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of `customers` (engine table or DataFrame) whose customer_id is in `ids`, as a
    DataFrame (`columns` of them, default all): the customers of a list or a count, not all."""
    c = engine.table(customers)
    wanted = ibis.memtable(pd.DataFrame({"_id": pd.Series(pd.unique(pd.Series(ids, dtype="str").dropna()), dtype="str")}))
    rows = c.semi_join(wanted, c[CUSTOMER_ID].cast("string") == wanted._id)
    return engine.to_pandas(rows.select(*(columns or c.columns)))


def due_occasions(dates: pd.DataFrame, customers, *, as_of, horizon_days: int = 30,
                  timezone: str = TIMEZONE) -> pd.DataFrame:
    """Occasions of active customers whose date falls in the `horizon_days` after `as_of`
    (as_of < date <= as_of + horizon_days). In: `occasion_dates`, customers (engine table or
    DataFrame). Out: the columns of `dates`."""
    lo = calendar_day(as_of)
    hi = lo + pd.Timedelta(days=horizon_days)
    near = dates.loc[(dates[DATE] > lo) & (dates[DATE] <= hi)]
    active = customer_rows(active_customers(customers, on=lo, timezone=timezone), near[CUSTOMER_ID], [CUSTOMER_ID])
    return near.loc[near[CUSTOMER_ID].isin(active[CUSTOMER_ID])].reset_index(drop=True)


# --- counts by segment and value tier --------------------------------------------------------------
def value_tiers(customers, orders, *, as_of, shares: Sequence[float] = (0.2, 0.3),
                col_revenue: str = "revenue") -> pd.DataFrame:
    """Customers ranked by net revenue of completed orders up to `as_of`: the top `shares[0]`
    are 'high', the next `shares[1]` 'medium', the rest 'low' (ties share the higher tier; no
    orders: 0). Ranked on the engine. Out: customer_id, value, value_tier (by customer_id)."""
    c = engine.table(customers)
    ids = c.select(**{CUSTOMER_ID: c[CUSTOMER_ID].cast("string")}).distinct()
    value = ibis.literal(0.0, "float64")
    if orders is not None:
        o = engine.table(orders)
        if col_revenue in o.columns:
            done = o[STATUS].fill_null("completed") == "completed" if STATUS in o.columns else ibis.literal(True)
            o = o.filter(done & (o[TIMESTAMP] <= pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)))
            sums = o.group_by(_id=o[CUSTOMER_ID].cast("string")).agg(_value=o[col_revenue].sum())
            ids = ids.left_join(sums, ids[CUSTOMER_ID] == sums._id).drop("_id")
            value = ids._value.fill_null(0.0).cast("float64")
    ranked = ids.select(CUSTOMER_ID, value=value)
    share = ((ibis.rank().over(order_by=ibis.desc(ranked.value)) + 1).cast("float64")
             / ranked.value.count().over(ibis.window()).cast("float64"))
    tier = ibis.cases((share <= shares[0], "high"), (share <= shares[0] + shares[1], "medium"), else_="low")
    out = engine.to_pandas(ranked.mutate(value_tier=tier))
    return out.sort_values(CUSTOMER_ID, kind="stable").loc[:, [CUSTOMER_ID, "value", "value_tier"]].reset_index(drop=True)


def occasion_counts(due: pd.DataFrame, customers, tiers: pd.DataFrame, types: pd.DataFrame,
                    *, lang: str = "en") -> pd.DataFrame:
    """Customers with each due occasion, in total and by segment and value tier (long format).

    In: `due_occasions`, customers (engine table or DataFrame), `value_tiers`, the usable types.
    Out: occasion, label, owner, by ('all' / 'segment' / 'value_tier'), group, customers.
    Types the data cannot derive are left out; derivable types without a due date count 0.
    """
    has_segment = SEGMENT in engine.table(customers).columns
    attrs = customer_rows(customers, due[CUSTOMER_ID], [CUSTOMER_ID, *([SEGMENT] if has_segment else [])])
    attrs = attrs if has_segment else attrs.assign(**{SEGMENT: pd.NA})
    base = (due.loc[:, [CUSTOMER_ID, OCCASION]].drop_duplicates()
            .merge(attrs.astype({CUSTOMER_ID: "str"}).drop_duplicates(CUSTOMER_ID), on=CUSTOMER_ID, how="left")
            .merge(tiers.loc[:, [CUSTOMER_ID, "value_tier"]], on=CUSTOMER_ID, how="left"))
    parts = [base.groupby(OCCASION).size().rename("customers").reset_index().assign(by="all", group="all")]
    for by in (SEGMENT, "value_tier"):
        grouped = base.dropna(subset=[by]).groupby([OCCASION, by]).size().rename("customers").reset_index()
        parts.append(grouped.rename(columns={by: "group"}).assign(by=by))
    counts = pd.concat(parts, ignore_index=True)
    everything = types.loc[:, ["occasion", "label", "owner"]].merge(
        pd.DataFrame({"by": ["all"], "group": ["all"]}), how="cross")
    out = everything.merge(counts, on=["occasion", "by", "group"], how="outer")
    out = out.loc[out["occasion"].isin(due[OCCASION].unique()) | (out["by"] == "all")]
    order = {c: i for i, c in enumerate(types["occasion"])}
    labels = types.set_index("occasion")
    return (out.assign(label=out["occasion"].map(labels["label"]), owner=out["occasion"].map(labels["owner"]),
                       customers=out["customers"].fillna(0).astype("int64"), _o=out["occasion"].map(order),
                       _b=out["by"].map({"all": 0, SEGMENT: 1, "value_tier": 2}))
            .sort_values(["_o", "_b", "group"], kind="stable")
            .loc[:, ["occasion", "label", "owner", "by", "group", "customers"]].reset_index(drop=True))


def due_counts(inputs, *, shares: Sequence[float] = (0.2, 0.3)) -> pd.DataFrame:
    """The counts of the occasions due, in one call: `schema.Missing` when no occasion type is
    derivable, value tiers by revenue (`value_tiers` with `shares`), then `occasion_counts`.
    In: `relevance.prepare`'s inputs (available, customers, orders, as_of, due, usable)."""
    require_any(inputs.available)
    tiers = value_tiers(inputs.customers, inputs.orders, as_of=inputs.as_of, shares=shares)
    return occasion_counts(inputs.due, inputs.customers, tiers, inputs.usable)


def counts_record(counts: pd.DataFrame, available: pd.DataFrame, *, as_of, horizon_days: int) -> dict:
    """The `occasions` entry of results.json: per occasion the customers due in the horizon, by
    segment and value tier, and the types the data could not derive with the reason."""
    rows = []
    for occasion, part in counts.groupby("occasion", sort=False):
        total = part.loc[part["by"] == "all", "customers"]
        rows.append({"occasion": occasion, "label": part["label"].iloc[0], "owner": part["owner"].iloc[0],
                     "customers": int(total.iloc[0]) if len(total) else 0,
                     "by_segment": {g: int(n) for g, n in part.loc[part["by"] == SEGMENT, ["group", "customers"]].values},
                     "by_value_tier": {g: int(n) for g, n in part.loc[part["by"] == "value_tier", ["group", "customers"]].values}})
    missing = available.loc[~available["available"]]
    return {"as_of": str(calendar_day(as_of).date()), "horizon_days": int(horizon_days), "counts": rows,
            "not_derived": [{"occasion": o, "reason": r, "enable": e}
                            for o, r, e in missing[["occasion", "reason", "enable"]].values]}


# --- the consent-gated occasion list ---------------------------------------------------------------
def occasion_list(due: pd.DataFrame, customers, types: pd.DataFrame, taxonomy, *,
                  consent_log: pd.DataFrame | None = None, channels: Sequence[str] = DIRECT_CHANNELS) -> pd.DataFrame:
    """One row per due occasion of a customer, consent-gated like the call-back list.

    Included: an explicit opt-in for one of `channels` (`moments.consented_channels`: CRM opt-in
    per channel, a consent log overrides it); the channel is the first consented in `channels`.
    Excluded other: customers not in `customers` (engine table or DataFrame; only the rows of
    the customers in `due` are read). Out: customer_id, occasion, label, owner, date,
    contact_from (date - lead_days), status, exclusion_reason, channel, consent_basis.
    """
    labels = types.set_index("occasion")
    customers = customer_rows(customers, due[CUSTOMER_ID])
    known = customers[CUSTOMER_ID].astype("str")
    consent = consented_channels(customers.loc[known.isin(due[CUSTOMER_ID])], taxonomy, consent_log=consent_log,
                                 channels=channels)
    pref = {ch: i for i, ch in enumerate(channels)}
    choice = (consent.assign(_r=consent[CHANNEL].map(pref)).sort_values([CUSTOMER_ID, "_r"], kind="stable")
              .drop_duplicates(CUSTOMER_ID).loc[:, [CUSTOMER_ID, CHANNEL, "basis"]])
    out = due.merge(choice, on=CUSTOMER_ID, how="left")
    unknown = ~out[CUSTOMER_ID].isin(known)
    status = np.select([unknown, out[CHANNEL].isna()], [OTHER, NO_CONSENT], INCLUDED)
    reason = np.select([unknown, out[CHANNEL].isna()], ["unknown customer", "no explicit consent for a direct channel"], "")
    out = out.assign(label=out[OCCASION].map(labels["label"]).astype("str"), owner=out[OCCASION].map(labels["owner"]).astype("str"),
                     contact_from=out[WINDOW_START], status=pd.Series(status, index=out.index, dtype="str"),
                     exclusion_reason=pd.Series(reason, index=out.index, dtype="str"),
                     _o=pd.Series(status, index=out.index).map({s: i for i, s in enumerate(STATUSES)}))
    out = out.assign(**{CHANNEL: out[CHANNEL].where(out["status"] == INCLUDED),
                        "consent_basis": out["basis"].where(out["status"] == INCLUDED)})
    return (out.sort_values(["_o", "contact_from", DATE, CUSTOMER_ID, OCCASION], kind="stable")
            .loc[:, [CUSTOMER_ID, OCCASION, "label", "owner", DATE, "contact_from", "status", "exclusion_reason",
                     CHANNEL, "consent_basis"]].reset_index(drop=True))


def occasion_list_counts(listed: pd.DataFrame) -> dict:
    """{included, excluded_no_consent, excluded_other, candidates, customers_included, exclusion_reasons}."""
    counts = listed["status"].value_counts()
    reasons = listed.loc[listed["status"] != INCLUDED, "exclusion_reason"].value_counts()
    return {**{s: int(counts.get(s, 0)) for s in STATUSES}, "candidates": int(len(listed)),
            "customers_included": int(listed.loc[listed["status"] == INCLUDED, CUSTOMER_ID].nunique()),
            "exclusion_reasons": {str(k): int(v) for k, v in reasons.items()}}


def occasion_list_export(listed: pd.DataFrame, reidentification: pd.DataFrame) -> pd.DataFrame:
    """The included rows with the CRM number for the departments (the CSV): customer_ref,
    customer_id, channel, occasion (label), owner, date, contact_from. Names and contact details
    are never copied. A customer without a CRM number is an error."""
    refs = reidentification.loc[:, [CUSTOMER_ID, CUSTOMER_REF]].astype({CUSTOMER_ID: "str"}).drop_duplicates(CUSTOMER_ID)
    out = listed.loc[listed["status"] == INCLUDED].merge(refs, on=CUSTOMER_ID, how="left", validate="many_to_one")
    missing = out.loc[out[CUSTOMER_REF].isna(), CUSTOMER_ID]
    if len(missing):
        raise OccasionError(f"re-identification table: no {CUSTOMER_REF} for {len(missing)} customer(s) of the occasion "
                            f"list; first: {missing.head(3).tolist()}")
    return (out.assign(occasion=out["label"], date=out[DATE].dt.strftime("%Y-%m-%d"),
                       contact_from=out["contact_from"].dt.strftime("%Y-%m-%d"))
            .loc[:, [CUSTOMER_REF, CUSTOMER_ID, CHANNEL, "occasion", "owner", DATE, "contact_from"]].reset_index(drop=True))


def occasion_list_record(counts: Mapping, *, as_of, horizon_days: int, channels: Sequence[str], file: str,
                         consent_log: bool = False) -> dict:
    """The `occasion_list` entry of results.json: counts, horizon, channels, file, consent basis."""
    return {**{k: counts[k] for k in (*STATUSES, "candidates", "customers_included", "exclusion_reasons")},
            "as_of": str(calendar_day(as_of).date()), "horizon_days": int(horizon_days), "channels": list(channels), "file": file,
            "consent_basis": "explicit opt-in per channel (CRM contact_consent and consent_channels)"
                             + ("; consent log, latest entry wins, opt-out wins a tie" if consent_log else "")}
