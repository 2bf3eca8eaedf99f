"""Local calendar days on the engine: timestamps as day numbers of a time zone's calendar, day
numbers as engine dates, and dates that recur every k months.

A day number counts days since 1970-01-01 (the local calendar day, so 2025-03-30 in Berlin is
20177 whether the timestamp is 00:30 or 23:30 local time): integers that DuckDB and Spark
compare and join alike. The time zone's UTC offsets come from pandas (its transitions of
1900-2100) as a small table of UTC days that the rows are joined with.

    events = with_local_days(events, "Europe/Berlin", day="timestamp")   # an integer column `day`
    anniversaries = recurring_days(bases, step_months=12, start=20089, end=20453)
    as_dates(engine.to_pandas(table)["date"])                            # back to pandas dates
"""

from __future__ import annotations

import functools

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400
EPOCH = pd.Timestamp("1970-01-01")
_SHIFT = 719_468                     # days from 0000-03-01 to 1970-01-01 (proleptic Gregorian)
_SPAN = ("1900-01-01", "2101-01-01")  # the UTC offsets are exact in this span, constant outside


# --- time zone offsets ---------------------------------------------------------------------------
def _offsets(instants: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """UTC offset in seconds of `timezone` at each UTC instant."""
    local = instants.tz_convert(timezone).tz_localize(None)
    return ((local - instants.tz_localize(None)) // pd.Timedelta(seconds=1)).to_numpy().astype("int64")


def _first_second(lo: int, hi: int, offset: int, timezone: str) -> int:
    """The first second in (lo, hi] at which `timezone` has `offset` (it has it at hi, not at lo)."""
    minutes = pd.date_range(pd.Timestamp(lo, unit="s", tz="UTC"), pd.Timestamp(hi, unit="s", tz="UTC"), freq="min")
    at = int(np.argmax(_offsets(minutes, timezone) == offset))
    seconds = pd.date_range(minutes[max(at - 1, 0)], minutes[at], freq="s")
    return int(seconds[int(np.argmax(_offsets(seconds, timezone) == offset))].timestamp())


@functools.lru_cache(maxsize=16)
def utc_offsets(timezone: str) -> tuple[tuple[int | None, int], ...]:
    """The UTC offsets of `timezone` as (from second since the epoch, offset in seconds), in time
    order; the first entry holds from the start of time (from = None).

        utc_offsets("UTC") -> ((None, 0),)
    """
    days = pd.date_range(*_SPAN, freq="D", tz="UTC")
    offset = _offsets(days, timezone)
    points = [(None, int(offset[0]))]
    for i in np.flatnonzero(np.diff(offset)) + 1:
        points.append((_first_second(int(days[i - 1].timestamp()), int(days[i].timestamp()), int(offset[i]), timezone),
                       int(offset[i])))
    return tuple(points)


@functools.lru_cache(maxsize=16)
def _zone_days(timezone: str) -> ir.Table:
    """Per UTC day of 1900-2100 (_utc_day): the offset at its start (_offset), the second a new
    offset starts within it (_switch; the next midnight when none) and that offset (_next)."""
    points = utc_offsets(timezone)
    first, last = (int(pd.Timestamp(day).timestamp()) // SECONDS_PER_DAY for day in _SPAN)
    days = np.arange(first, last, dtype="int64")
    starts = np.array([p[0] for p in points[1:]], dtype="int64")
    values = np.array([p[1] for p in points], dtype="int64")
    at_start = values[np.searchsorted(starts, days * SECONDS_PER_DAY, side="right")]
    at_end = values[np.searchsorted(starts, (days + 1) * SECONDS_PER_DAY - 1, side="right")]
    switch = np.full(len(days), SECONDS_PER_DAY, dtype="int64") + days * SECONDS_PER_DAY
    within = starts[(starts > days[0] * SECONDS_PER_DAY) & (starts < (days[-1] + 1) * SECONDS_PER_DAY)]
    switch[within // SECONDS_PER_DAY - first] = within
    return ibis.memtable(pd.DataFrame({"_utc_day": days, "_offset": at_start, "_switch": switch, "_next": at_end}))


def with_local_days(table: ir.Table, timezone: str, **columns: str) -> ir.Table:
    """`table` with, for each `name=column`, the local calendar day in `timezone` of the UTC
    timestamps in `column` as a day number in `name` (null stays null; outside 1900-2100 the
    offset of the nearest end of that span). One join per column with a table of UTC days.

        with_local_days(sends, "Europe/Berlin", send_day="sent_at")
    """
    zone = _zone_days(timezone)
    first_day = int(pd.Timestamp(_SPAN[0]).timestamp()) // SECONDS_PER_DAY
    first_offset, last_offset = utc_offsets(timezone)[0][1], utc_offsets(timezone)[-1][1]
    out = table
    for name, column in columns.items():
        seconds = whole_seconds(out[column])
        keyed = out.mutate(_s=seconds, _u=_floor_div(seconds, SECONDS_PER_DAY))
        joined = keyed.left_join(zone, keyed._u == zone._utc_day)
        edge = ibis.ifelse(joined._u < first_day, first_offset, last_offset)
        offset = ibis.ifelse(joined._s >= joined._switch, joined._next, joined._offset).fill_null(edge)
        out = joined.mutate(**{name: _floor_div(joined._s + offset, SECONDS_PER_DAY)}).drop(
            "_s", "_u", "_utc_day", "_offset", "_switch", "_next")
    return out


# --- dates ---------------------------------------------------------------------------------------
def whole_seconds(stamps: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since the epoch (rounded down, as every backend does; cheaper than
    truncating the timestamp first)."""
    return stamps.epoch_seconds().floor().cast("int64")


def _floor_div(a: ir.IntegerValue, b: int) -> ir.IntegerValue:
    return (a / b).floor().cast("int64")


def as_date(days: ir.IntegerValue) -> ir.DateValue:
    """Day numbers as engine dates (for year, month and adding months)."""
    return ibis.date(1970, 1, 1) + days.as_interval("D")


def recurring_days(base: ir.Table, *, step_months: int, start: int, end: int, first_k: int = 1,
                   col_base: str = "_base") -> ir.Table:
    """Every date base + k * step_months (k >= first_k; the day clipped to the month's end, so
    02-29 recurs on 02-28) within the day numbers [start, end], for each row of `base`.
    In: `base` with `col_base` (a day number, not null). Out: its other columns and `date`.

        base 2020-02-29, step 12, start..end = 2025 -> 2025-02-28
    """
    first, last = as_dates(pd.Series([start, end]))
    origin = as_date(base[col_base])
    lag = (first.year - origin.year()) * 12 + (first.month - origin.month())
    months = (last.year - first.year) * 12 + (last.month - first.month)
    steps = ibis.memtable({"_j": np.arange(months // step_months + 3, dtype="int64")})
    t = base.mutate(_k=ibis.greatest(_floor_div(lag, step_months) - 1, first_k)).cross_join(steps)
    t = t.mutate(date=(as_date(t[col_base]) + ((t._k + t._j) * step_months).as_interval("M")).epoch_days().cast("int64"))
    return t.filter((t.date >= start) & (t.date <= end)).drop("_k", "_j", col_base)


# --- pandas <-> day numbers ----------------------------------------------------------------------
def as_dates(days: pd.Series) -> pd.Series:
    """Day numbers as naive midnight dates (datetime64[us]); missing stays missing."""
    numbers = pd.to_numeric(pd.Series(days), errors="coerce")
    return (EPOCH + pd.to_timedelta(numbers, unit="D")).astype("datetime64[us]")


def as_day_numbers(dates: pd.Series) -> pd.Series:
    """Naive dates (midnight) as day numbers (Int64; missing stays missing)."""
    stamps = pd.to_datetime(pd.Series(dates))
    return ((stamps - EPOCH) // pd.Timedelta(days=1)).astype("Int64")


def as_day_number(value) -> int:
    """One date (text or timestamp; a tz-aware one keeps its own calendar day) as a day number."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(None) if stamp.tzinfo is not None else stamp
    return int((stamp.normalize() - EPOCH) // pd.Timedelta(days=1))
