"""Names, errors and small helpers shared by the moments-of-truth modules."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxlib import engine, locale, metrics, schema
from cxlib.schema import CHANNEL

SECONDS_PER_DAY = 86_400
UNKNOWN = "unknown"
MOMENT = "moment"
DIMENSION = "dimension"
LEVEL = "level"
CATEGORY = "category"
MONTH = "month"
RESOLUTION = "resolution"
FCR = "first_contact_resolution"
WAIT_BAND = "wait_band"
HANDLING_DIMENSIONS = (RESOLUTION, FCR, WAIT_BAND, CHANNEL)
DEFAULT_WAIT_BANDS = (60, 300, 900)          # seconds: < 1 min, 1-5, 5-15, >= 15 min
NOT_RECORDED = "not recorded"
_SEP = "\x1f"
_IBIS_TYPES = {"string": "string", "float": "float64", "int": "int64", "bool": "boolean",
               "datetime": "timestamp('UTC')", "date": "date"}


class MomentsError(ValueError):
    """Input to a moments-of-truth computation is unusable (missing column, bad parameter)."""


def _tbl(data, name: str, columns: Iterable[str]) -> ir.Table:
    return engine.checked_table(data, columns, where=name, error=MomentsError)


def _require(df: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MomentsError(f"{name}: missing column(s) {missing}; present: {list(df.columns)}")


def conform(data, table: str) -> ir.Table:
    """A canonical table (Ibis table or DataFrame) with every column of `schema.TABLES[table]`:
    an absent optional column (e.g. csat_max of older processed data) is added as all-missing.

        conform(feedback_without_csat_max, "feedback").csat_max   # null float64
    """
    expr = engine.table(data)
    absent = {c.name: ibis.null().cast(_IBIS_TYPES[c.dtype]) for c in schema.TABLES[table].columns
              if c.name not in expr.columns}
    return expr.mutate(**absent) if absent else expr


def conform_frame(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """`conform` for a pandas DataFrame (stays pandas): absent canonical columns added as missing."""
    absent = {c.name: pd.Series(pd.NA, index=frame.index, dtype=schema.PANDAS_DTYPES[c.dtype])
              for c in schema.TABLES[table].columns if c.name not in frame.columns}
    return frame.assign(**absent) if absent else frame


def count_rows(expr: ir.Table) -> int:
    """Number of rows of an Ibis table (one cheap engine count)."""
    return int(engine.to_pandas(expr.count().name("n").as_table())["n"].iloc[0])


def _seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since the epoch (truncated, so every backend agrees)."""
    return ts.truncate("s").epoch_seconds().cast("int64")


def _epoch(value) -> int:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.floor("s").timestamp())


def _bh(p: pd.Series, small: pd.Series, alpha: float) -> pd.DataFrame:
    """Benjamini-Hochberg over the rows that are not small (small rows: NaN, not significant)."""
    return metrics.benjamini_hochberg(p.where(~small.astype(bool)), alpha=alpha)


def moment_label(taxonomy, code: str, lang: str = "en") -> str:
    """Label of a moment: a contact reason's or a derived moment's label, else the code."""
    if code in taxonomy.section("contact_reasons"):
        return taxonomy.label("contact_reasons", code, lang)
    entry = (taxonomy.data.get("derived_moments") or {}).get(code) or {}
    return entry.get(lang) or entry.get("en") or str(code)


def wait_band_labels(bands: Sequence[float] = DEFAULT_WAIT_BANDS) -> list[str]:
    """Labels of the wait bands, shortest first: (60, 300, 900) -> ['< 1 min', '1-5 min', '5-15 min', '>= 15 min']."""
    bands = list(bands)
    if not bands or any(b <= 0 for b in bands) or bands != sorted(set(bands)):
        raise MomentsError(f"wait_band_seconds must be increasing positive seconds, got {bands}")
    mins = [f"{b / 60:g}" for b in bands]
    inner = [f"{lo}–{hi} min" for lo, hi in zip(mins, mins[1:])]
    return [f"< {mins[0]} min", *inner, f"≥ {mins[-1]} min"]


_LEVEL_ORDER = {RESOLUTION: ("resolved", "unresolved"), FCR: ("yes", "no")}


def _level_order(dimension: pd.Series, level: pd.Series) -> pd.Series:
    """Sort key of handling levels: resolved before unresolved, yes before no, wait bands from
    short to long, 'unknown' / 'not recorded' last, channels alphabetically."""
    def key(dim: str, lev: str) -> float:
        if lev in (UNKNOWN, NOT_RECORDED):
            return math.inf
        if dim in _LEVEL_ORDER:
            return float(_LEVEL_ORDER[dim].index(lev)) if lev in _LEVEL_ORDER[dim] else 50.0
        if dim == WAIT_BAND:
            number = re.search(r"\d+(?:\.\d+)?", lev)
            return (float(number.group()) if number else 50.0) - (0.5 if lev.startswith("<") else 0.0)
        return 0.0
    return pd.Series([key(d, lv) for d, lv in zip(dimension, level)], index=level.index, dtype="float64")


def design_matrix(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Intercept plus covariates: numeric ones as they are, others as dummies (first level
    dropped; missing values form the level 'unknown')."""
    parts = [pd.DataFrame({"const": np.ones(len(frame))}, index=frame.index)]
    for col in covariates:
        values = frame[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            parts.append(values.astype("float64").to_frame(col))
        else:
            levels = values.astype("str").where(values.notna(), UNKNOWN)
            parts.append(pd.get_dummies(levels, prefix=col, drop_first=True, dtype=float))
    return pd.concat(parts, axis=1)


def interval_text(estimate, low, high, *, decimals: int = 1, sign: bool = True, sep: str = " to ") -> pd.Series:
    """One readable cell per row: estimate with its interval, e.g. '-28.4 (-33.7 to -23.2)' (minus
    sign U+2212); '–' where the estimate is missing, the estimate alone where the interval is.

        interval_text(nps["adjusted"], nps["adjusted_low"], nps["adjusted_high"])
    """
    est = pd.Series(estimate, dtype="float64").reset_index(drop=True)
    lo = pd.Series(low, dtype="float64").reset_index(drop=True)
    hi = pd.Series(high, dtype="float64").reset_index(drop=True)
    spec = f"{'+' if sign else ''}.{int(decimals)}f"
    text = [("–" if pd.isna(e) else signed(e, spec) if pd.isna(a) or pd.isna(b)
             else f"{signed(e, spec)} ({signed(a, spec)}{sep}{signed(b, spec)})")
            for e, a, b in zip(est, lo, hi)]
    index = estimate.index if isinstance(estimate, pd.Series) else None
    return pd.Series(text, index=index, dtype="str")


def signed(value: float, spec: str = "+.1f") -> str:
    """`format(value, spec)` with a typographic minus; '–' for a missing or infinite value."""
    if value is None or pd.isna(value) or not math.isfinite(float(value)):
        return "–"
    return format(float(value), spec).replace("-", "\u2212")


def join_words(items: Sequence[str], lang: str = "en") -> str:
    """'a', 'a and b', 'a, b and c' (de: 'a, b und c')."""
    items = [str(i) for i in items]
    last = f" {say('words.and', lang)} "
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + last + items[-1] if items else ""


def say(key: str, lang: str = "en", **values) -> str:
    """A text of the stage in `lang` (locale files `moments.<lang>.yml`, key below `moments.`),
    filled with `values`: say("churn.adjusted", "de", lift="1,20") -> '; bereinigt 1,20'."""
    return locale.text(f"moments.{key}", lang, **values)


def num(value, lang: str = "en", *, decimals: int = 1, sign: bool = False) -> str:
    """A number for a sentence in `lang` with a typographic minus; '–' when missing:
    num(-28.44, "de") -> '−28,4', num(3, sign=True, decimals=0) -> '+3'."""
    return locale.format_number(value, lang, decimals=decimals, sign=sign).replace("-", "\u2212")


def pct(value, lang: str = "en", *, decimals: int = 1) -> str:
    """A value already in % for a sentence: pct(12.34) -> '12.3%', pct(12.34, "de") -> '12,3 %'."""
    return locale.format_percent(value, lang, decimals=decimals, share=False)
