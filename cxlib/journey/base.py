"""What every journey computation shares: the codes and constants, the error, the checks that
raise `schema.Missing` for what the data lacks, and small helpers over Ibis tables (the events of
a journey, event order, whole seconds, groups, Wilson rate columns and valid orders).

Order of events within a customer: timestamp, then event_id (a deterministic tiebreak for
events with the same timestamp). Durations are whole seconds (timestamps truncated to the
second) reported in days. Rates carry Wilson score intervals. A journey is the events of one
customer: events without a customer id belong to no journey and are left out of journeys.

Windows over each customer's events (transitions, paths, episodes) run in parts of whole
customers when the events exceed what DuckDB's memory limit holds for them at once
(`WINDOW_ROWS_PER_GB`): its window operator does not spill. The parts' results add up to the
same tables; each part reads the events again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxlib import engine, locale
from cxlib.metrics import wilson_interval
from cxlib.schema import CUSTOMER_ID, ORDER_STATUSES, Missing

SECONDS_PER_DAY = 86_400
# Events per GB of DuckDB's memory limit that per-customer windows (event order within each
# customer) may take at once: its window operator keeps its partitions in memory, about 9 bytes
# per event (at 1M customers, 23M events, they need 100-200 MB). A quarter of that, so the rest
# of a query fits beside them; larger tables are computed in parts of whole customers.
WINDOW_ROWS_PER_GB = 25_000_000
UNKNOWN = "unknown"
EPISODE = "episode"
PATH_SEP = " > "
ELLIPSIS = "…"
_COMPLETED, CANCELLED, _PENDING = ORDER_STATUSES      # order status codes (schema)
DEFAULT_EXCLUDED_STATUSES = (CANCELLED,)
CANCEL_STEP = "order_cancelled"                       # touchpoint of an order cancellation (taxonomy)
PURCHASE_STAGE = "purchase"                           # the journey stage of a sale (taxonomy)
NEW, REPEAT = CUSTOMER_TYPES = ("new", "repeat")      # customer_type of a sales opportunity
# what would enable a section that lacks its input (the `enable` of schema.Missing)
NEEDS_EVENTS = "the events table: event_id, customer_id, timestamp, touchpoint"
NEEDS_CUSTOMER = "events.customer_id, the customer or case id of each event"
NEEDS_ORDERS = "the orders table: order_id, customer_id, timestamp"


class JourneyError(ValueError):
    """Input tables or parameters of a journey computation are unusable."""


def _tbl(data, name: str, columns: Iterable[str]) -> ir.Table:
    return engine.checked_table(data, columns, where=name, error=JourneyError)


def _journeys(t: ir.Table, col_customer: str) -> ir.Table:
    """The events that belong to a journey: those with a customer id."""
    return t.filter(t[col_customer].notnull())


def _count(t: ir.Table, **metrics) -> dict:
    """Scalar aggregates of `t` computed on the engine, as a dict of Python ints."""
    row = engine.to_pandas(t.agg(**metrics)).iloc[0]
    return {name: int(0 if pd.isna(value) else value) for name, value in row.items()}


def require_journeys(events, *, col_customer: str = CUSTOMER_ID) -> None:
    """Raise `schema.Missing` when `events` form no journey: no events, or none with a customer id.

    A count on the engine; functions call it when their result is empty, to say why.
    """
    t = _tbl(events, "events", [col_customer])
    n = _count(t, events=t.count(), with_customer=t[col_customer].count())
    if n["events"] == 0:
        raise Missing("no events", enable=NEEDS_EVENTS)
    if n["with_customer"] == 0:
        raise Missing(f"the {n['events']:,} events carry no customer id, so they form no journeys", enable=NEEDS_CUSTOMER)


def _optional(t: ir.Table, dtype: str, *columns: str) -> ir.Table:
    """`t` with each absent column of `columns` added as all-null `dtype` (an absent optional
    column, e.g. in processed data of an older version, reads like an empty one)."""
    absent = [c for c in columns if c and c not in t.columns]
    return t.mutate(**{c: ibis.null(dtype) for c in absent}) if absent else t


def _seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since the epoch (rounded down, so every backend agrees; cheaper than
    truncating the timestamp first)."""
    return ts.epoch_seconds().floor().cast("int64")


def _customer_parts(t: ir.Table, col_customer: str) -> list[ir.Table]:
    """`t` (rows with a customer id) split by a hash of the customer id into parts of at most
    `WINDOW_ROWS_PER_GB` rows per GB of the engine's memory limit, a customer's rows in one part;
    `[t]` when it fits or the engine has no limit (Spark)."""
    parts = engine.customer_parts(t, col_customer, rows_per_gb=WINDOW_ROWS_PER_GB)
    return [t] if parts == 1 else [t.filter(engine.in_part(t[col_customer], part, parts)) for part in range(parts)]


def _per_customer_parts(t: ir.Table, col_customer: str, compute) -> ir.Table:
    """`compute(part)` of each part of `t` by customer (`_customer_parts`) computed one after
    the other and stacked: for per-customer windows, which DuckDB holds in memory. `compute`
    must give rows that add up across customers (e.g. counts per path, one row per episode)."""
    return engine.stacked(compute(part) for part in _customer_parts(t, col_customer))


def _window(partition: Sequence[str], col_timestamp: str, col_event_id: str, *, cumulative: bool = False):
    """A window over each partition (column names) in event order: timestamp, then event_id."""
    make = ibis.cumulative_window if cumulative else ibis.window
    return make(group_by=list(partition), order_by=[col_timestamp, col_event_id])


def _keys(*cols: str | None) -> list[str]:
    return [c for c in cols if c]


def _rate_columns(frame: pd.DataFrame, successes: str, n: str, prefix: str = "",
                  confidence: float = 0.95) -> pd.DataFrame:
    """Add <prefix>rate, <prefix>ci_low, <prefix>ci_high (Wilson) for successes / n (NaN where n == 0).

    The bounds are clipped to enclose the rate (a Wilson bound of 0 of n can come out a hair
    above zero in floating point).
    """
    low, high = wilson_interval(frame[successes].to_numpy(), frame[n].to_numpy(), confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(frame[n] > 0, frame[successes] / frame[n].where(frame[n] > 0), np.nan)
    low, high = np.fmin(low, rate), np.fmax(high, rate)
    return frame.assign(**{f"{prefix}rate": rate.astype(float), f"{prefix}ci_low": low, f"{prefix}ci_high": high})


def _complete(frame: pd.DataFrame, by: str | None, groups: Iterable | None, inner: pd.DataFrame,
              fill: Mapping[str, object]) -> pd.DataFrame:
    """Every combination of group (present or listed in `groups`) and the rows of `inner`, with
    missing aggregates filled by `fill` (so an empty segment shows zeros instead of vanishing)."""
    if by is None:
        full = inner
    else:
        present = frame[by].dropna().unique().tolist() if len(frame) else []
        wanted = list(groups) if groups is not None else []
        values = wanted + sorted(v for v in present if v not in wanted)
        full = pd.DataFrame({by: pd.Series(values, dtype=frame[by].dtype if len(frame) else "str")}).merge(inner, how="cross")
    keys = list(full.columns)
    out = full.merge(frame, on=keys, how="left")
    return out.assign(**{col: out[col].astype(float) if isinstance(value, float)
                         else out[col].fillna(value).astype("int64") for col, value in fill.items()})


def _codes(step) -> list[str]:
    """A funnel step as its codes: 'web_visit|shop_visit' or ['web_visit', 'shop_visit'] → both."""
    codes = step.split("|") if isinstance(step, str) else list(step)
    codes = [str(c).strip() for c in codes if str(c).strip()]
    if not codes:
        raise JourneyError(f"empty step {step!r}: name at least one code")
    return codes


def _label(step) -> str:
    return "|".join(_codes(step))


def step_label(step, taxonomy, section: str = "touchpoints", lang: str = "en") -> str:
    """A readable label of a step from the taxonomy: 'web_visit|tariff_page' -> 'Web visit or Tariff page'
    ('Webseitenbesuch oder Tarifseite' in German)."""
    return locale.text("journey.or", lang).join(taxonomy.label(section, code, lang) for code in _codes(step))


def _agg(t: ir.Table, by: str | None, **metrics) -> ir.Table:
    """Aggregate `t` per group of `by`, or over all rows when `by` is None."""
    return t.group_by(by).agg(**metrics) if by else t.agg(**metrics)


def _by_values(t: ir.Table, by: str | None) -> ir.Table:
    """Null group values become 'unknown' so they are counted, not dropped."""
    return t if by is None else t.mutate(**{by: t[by].cast("string").fill_null(UNKNOWN)})


def _valid_orders(orders, exclude_statuses, col_customer, col_status, required=()) -> ir.Table:
    """Orders whose status is not in `exclude_statuses` (orders without a status count)."""
    o = _tbl(orders, "orders", [col_customer, *required])
    if col_status in o.columns and exclude_statuses:
        o = o.filter(o[col_status].isnull() | ~o[col_status].isin(list(exclude_statuses)))
    return o


def _require_orders(orders, exclude_statuses, col_customer: str, col_status: str) -> ir.Table:
    """The valid orders (see `_valid_orders`); raises `schema.Missing` when there are none."""
    o = _valid_orders(orders, exclude_statuses, col_customer, col_status)
    if _count(o, n=o.count())["n"] == 0:
        everything = _tbl(orders, "orders", [col_customer])
        total = _count(everything, n=everything.count())["n"]
        raise Missing("no orders" if total == 0 else f"all {total:,} orders are {' or '.join(exclude_statuses)}",
                      enable=NEEDS_ORDERS)
    return o


def _group_rate(t: ir.Table, keys: Sequence[str] | str | None, levels: Mapping[str, Iterable] | None,
                successes: ir.Value, n_name: str, k_name: str, confidence: float) -> pd.DataFrame:
    """Counts and a Wilson rate per group of `keys`; every combination of the values present
    (and of those listed per key in `levels`) gets a row, empty ones with zero counts."""
    keys = [keys] if isinstance(keys, str) else list(keys or [])
    metrics = {n_name: t.count(), k_name: successes.sum().cast("int64")}
    raw = engine.to_pandas(t.group_by(keys).agg(**metrics) if keys else t.agg(**metrics))
    raw = raw.assign(**{k_name: raw[k_name].fillna(0).astype("int64")})
    if keys:
        levels = dict(levels or {})
        full = pd.DataFrame(index=[0])
        for key in keys:
            listed = list(levels.get(key, []))
            values = listed + sorted(v for v in raw[key].dropna().unique() if v not in listed)
            full = full.merge(pd.DataFrame({key: pd.Series(values, dtype="str")}), how="cross")
        raw = full.merge(raw, on=keys, how="left").sort_values(keys, kind="stable")
        raw = raw.assign(**{c: raw[c].fillna(0).astype("int64") for c in (n_name, k_name)})
    return _rate_columns(raw, k_name, n_name, confidence=confidence).reset_index(drop=True)
