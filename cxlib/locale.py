"""Numbers, dates and words for readers in English or German, from the locale files
`cxlib/locales/<lang>.yml` and `<part>.<lang>.yml`: one formatter for both languages, human labels of the column keys of
results tables, and `display_table`, which turns a results table into the table a report shows.

    format_number(12345.6, "de")           -> '12.346'
    format_percent(0.1234, "de")           -> '12,3 %'
    label("diff_vs_rest", "de")            -> 'Abstand zum Rest'
    display_table(by_segment, "en", kpi="nps")   # headers in words, NPS to 1 decimal, p to 3 digits
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cxlib.config import SAFE_LOADER

LANGS = ("en", "de")
LOCALES_DIR = Path(__file__).parent / "locales"

# How the columns of results tables are shown (language-independent):
#   count    whole number, thousands grouped          12,345 (a mean: 3 significant digits)
#   points   1 decimal (NPS, points of a score)        -2.9
#   percent  a value already in %, 1 decimal           63.7%
#   share    a share 0-1 shown in %, 1 decimal         26.4%
#   score    2 decimals (CES, mean ratings, R²)        5.07
#   ratio    2 decimals with ×                         1.18×
#   days     1 decimal                                 7.2
#   money    thousands grouped, no decimals            988,815
#   p        p-value, 3 significant digits             0.0391, < 0.001
#   kpi      by the row's KPI (`kpi` column or argument): nps -> points, csat -> percent, ces -> score
#   flag     yes / no
#   period   '2024-01' -> 'Jan 2024'
#   text     as is, coded values in words (values: in the locale file)
KINDS = {
    **dict.fromkeys(["n", "n_exposed", "answers", "customers", "customers_exposed", "active", "complaints", "contacts",
                     "followed", "opportunities", "converted", "lost", "pairs", "journeys", "mentions", "exposed",
                     "comments", "rows", "support", "predicted", "tp", "fp", "fn", "rank", "decile"], "count"),
    **dict.fromkeys(["value", "ci_low", "ci_high", "diff_vs_rest", "difference", "change", "change_low", "change_high",
                     "exposed_value", "unexposed_value", "adjusted", "adjusted_low", "adjusted_high"], "kpi"),
    **dict.fromkeys(["nps_impact", "nps_impact_raw", "raw_ci_low", "raw_ci_high", "points_at_stake", "priority",
                     "rate_per_1000", "center_per_1000", "ucl_per_1000", "lcl_per_1000", "churn_difference"], "points"),
    **dict.fromkeys(["share", "detractor_share", "promoter_share", "negative", "promoters", "promoters_low",
                     "promoters_high", "detractors", "detractors_low", "detractors_high", "churn_exposed",
                     "churn_unexposed", "error_pct"], "percent"),
    **dict.fromkeys(["reach", "conversion", "step_conversion", "rate", "coverage", "share_over", "customer_share",
                     "revenue_share", "value_share", "accuracy", "precision", "recall", "f1", "recall_negative",
                     "recall_neutral", "recall_positive"], "share"),
    **dict.fromkeys(["mean", "r2", "weight"], "score"),
    **dict.fromkeys(["churn_lift", "lift_low", "lift_high", "adjusted_lift"], "ratio"),
    **dict.fromkeys(["days_median", "days_p90", "days_mean"], "days"),
    **dict.fromkeys(["value_total", "revenue"], "money"),
    **dict.fromkeys(["p_value", "p_adjusted", "q_value"], "p"),
    **dict.fromkeys(["small", "significant", "out_of_control", "magic"], "flag"),
    **dict.fromkeys(["period", "month"], "period"),
}
KPI_KINDS = {"nps": "points", "csat": "percent", "ces": "score"}
# Point estimates of a difference carry their sign (+3.1); their interval ends do not.
SIGNED = frozenset({"diff_vs_rest", "difference", "change", "adjusted", "nps_impact", "nps_impact_raw",
                    "churn_difference"})
_DECIMALS = {"count": 0, "points": 1, "percent": 1, "share": 1, "score": 2, "ratio": 2, "days": 1, "money": 0}


def check_lang(lang: str) -> str:
    """`lang` if it is a report language ('en', 'de'), else ValueError."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def locale_files(lang: str) -> list[Path]:
    """The locale files of `lang`: `<lang>.yml` (shared texts) and `<part>.<lang>.yml` (texts of one
    report part, e.g. `summary.de.yml`), in this order."""
    return [LOCALES_DIR / f"{check_lang(lang)}.yml", *sorted(LOCALES_DIR.glob(f"*.{lang}.yml"))]


@lru_cache(maxsize=len(LANGS))
def texts(lang: str = "en") -> dict:
    """The locale files of `lang` as one dict (read once); a top-level key in two files is an error."""
    merged: dict = {}
    for path in locale_files(lang):
        part = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}
        twice = sorted(set(part) & set(merged))
        if twice:
            raise ValueError(f"{path}: top-level keys {twice} are already defined in another locale file of {lang!r}")
        merged.update(part)
    return merged


def text(key: str, lang: str = "en", **values) -> str:
    """A text of the locale file by dotted key, formatted with `values`:
    text("figure.small", "de", min_n=100) -> 'weniger als 100 Antworten'."""
    node = texts(lang)
    for part in key.split("."):
        node = node[part]
    return str(node).format(**values) if values else str(node)


def label(key: str, lang: str = "en") -> str:
    """The human label of a column key: label('rate_per_1000') -> 'complaints per 1,000 active customers';
    a key the locale file lacks is shown with spaces ('new_column' -> 'new column')."""
    return texts(lang)["columns"].get(key, str(key).replace("_", " "))


def value_label(column: str, value, lang: str = "en") -> str:
    """A coded value in words: value_label('signal', 'above', 'de') -> 'über der oberen Grenze'."""
    return texts(lang)["values"].get(column, {}).get(value, value)


# --- numbers ---------------------------------------------------------------------------------
def _missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and not math.isfinite(value)


def separators(text_en: str, lang: str) -> str:
    """Python's en formatting ('12,345.6') in the separators of `lang`: separators('12,345.6', 'de') -> '12.345,6'."""
    numbers = texts(lang)["numbers"]
    return text_en.translate(str.maketrans({",": numbers["thousands"], ".": numbers["decimal"]}))


def format_number(value, lang: str = "en", *, decimals: int | None = None, sign: bool = False) -> str:
    """A number for readers: thousands grouped; `decimals` places, or without them whole numbers
    as such and 3 significant digits below 1,000; '+' on positive values with `sign`;
    None/NaN/inf -> '–', booleans -> yes/no.

        format_number(12345.6) -> '12,346'    format_number(0.04567) -> '0.0457'
        format_number(1234.5, "de", decimals=1) -> '1.234,5'    format_number(3, sign=True) -> '+3'
    """
    numbers = texts(check_lang(lang))["numbers"]
    if _missing(value):
        return numbers["missing"]
    if isinstance(value, (bool, np.bool_)):
        return numbers["yes" if value else "no"]
    value = float(value) + 0.0                                # + 0.0 turns -0.0 into 0.0
    plus = "+" if sign else ""
    if decimals is not None:
        spec = f"{plus},.{decimals}f"
        value = round(value, decimals) + 0.0
    elif value == int(value) or abs(value) >= 1000:
        spec = f"{plus},.0f"
    else:
        spec = f"{plus}.3g"
    return separators(format(value, spec), lang)


def format_percent(value, lang: str = "en", *, decimals: int = 1, share: bool = True, sign: bool = False) -> str:
    """A share (0-1; a value already in % with share=False) in percent: '12.3%' (en), '12,3 %' (de)."""
    if _missing(value):
        return texts(check_lang(lang))["numbers"]["missing"]
    number = format_number(float(value) * (100 if share else 1), lang, decimals=decimals, sign=sign)
    return texts(lang)["numbers"]["percent"].format(number=number)


def format_p(p, lang: str = "en") -> str:
    """A p-value to 3 significant digits: 0.03907 -> '0.0391', 0.4 -> '0.400'; below 0.001 '< 0.001'."""
    if _missing(p):
        return texts(check_lang(lang))["numbers"]["missing"]
    if p < 0.001:
        return "< " + format_number(0.001, lang, decimals=3)
    return separators(format(float(p), "#.3g"), lang)


def format_value(value, kind: str, lang: str = "en", *, sign: bool = False) -> str:
    """`value` shown as one of the `KINDS` ('count', 'points', 'percent', 'share', 'p', ...)."""
    numbers = texts(check_lang(lang))["numbers"]
    if kind == "text":
        return numbers["missing"] if _missing(value) else str(value)
    if _missing(value):
        return numbers["missing"]
    if isinstance(value, str) and kind not in ("period", "date"):
        return value                                          # a total row's 'all' in a numeric column
    if kind == "flag":
        return numbers["yes" if bool(value) else "no"]
    if kind == "p":
        return format_p(value, lang)
    if kind == "period":
        return format_period(value, lang)
    if kind in ("percent", "share"):
        return format_percent(value, lang, decimals=_DECIMALS[kind], share=kind == "share", sign=sign)
    if kind == "ratio":
        return numbers["times"].format(number=format_number(value, lang, decimals=2))
    if kind == "count" and float(value) != round(float(value)):
        return format_number(value, lang, sign=sign)          # a mean in a count column: 3 significant digits
    if kind in _DECIMALS:
        return format_number(value, lang, decimals=_DECIMALS[kind], sign=sign)
    return format_number(value, lang, sign=sign)


# --- dates -----------------------------------------------------------------------------------
def format_date(value, lang: str = "en") -> str:
    """A date for readers: '15 Jan 2024' (en), '15.01.2024' (de); missing -> '–'."""
    dates = texts(check_lang(lang))["dates"]
    if _missing(value) or (not isinstance(value, str) and pd.isna(value)):
        return texts(lang)["numbers"]["missing"]
    when = pd.Timestamp(value)
    return dates["date"].format(day=when.day, month=dates["months"][when.month - 1], month_number=when.month,
                                year=when.year)


_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-?Q([1-4])")
_WEEK = re.compile(r"(\d{4}-\d{2}-\d{2})/\d{4}-\d{2}-\d{2}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def format_period(value, lang: str = "en") -> str:
    """A period label of `metrics.kpi_trend` for readers: '2024-01' -> 'Jan 2024' (de 'Jan. 2024'),
    '2024Q1' -> 'Q1 2024', a week '2024-01-15/2024-01-21' -> 'week of 15 Jan 2024', a date as
    `format_date`; anything else as is."""
    dates = texts(check_lang(lang))["dates"]
    if isinstance(value, (pd.Timestamp, dt.date)):
        return format_date(value, lang)
    if _missing(value):
        return texts(lang)["numbers"]["missing"]
    text_value = str(value)
    if match := _MONTH.fullmatch(text_value):
        return dates["month"].format(month=dates["months"][int(match[2]) - 1], year=match[1])
    if match := _QUARTER.fullmatch(text_value):
        return dates["quarter"].format(quarter=match[2], year=match[1])
    if match := _WEEK.fullmatch(text_value):
        return dates["week"].format(date=format_date(match[1], lang))
    if _DAY.fullmatch(text_value):
        return format_date(text_value, lang)
    return text_value


# --- tables ----------------------------------------------------------------------------------
def column_kind(column: str, series: pd.Series) -> str:
    """The kind a column is shown as: `KINDS`, else by dtype (bool -> flag, whole numbers -> count,
    other numbers -> number, dates -> date, anything else -> text)."""
    if column in KINDS:
        return KINDS[column]
    if pd.api.types.is_bool_dtype(series):
        return "flag"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    if pd.api.types.is_integer_dtype(series):
        return "count"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    return "text"


def display_table(table: pd.DataFrame, lang: str = "en", *, kpi: str | None = None, kinds: Mapping | None = None,
                  columns: Iterable[str] | None = None, codes: Mapping[str, Mapping] | None = None,
                  labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A results table as a report shows it: the `columns` chosen (default all), every value as
    text at its precision (`KINDS`, overridden by `kinds`), coded values in words (`codes`:
    {column: {code: label}}, else the locale file's `values`), headers in `lang` (`labels`
    overrides). KPI columns follow the row's `kpi` column, else the `kpi` argument.

        display_table(pd.DataFrame({"segment": ["business"], "value": [-2.9154], "p_adjusted": [0.03907]}), kpi="nps")
        ->  segment   value   p-value (adjusted)
            business  -2.9    0.0391
    """
    check_lang(lang)
    chosen = list(columns) if columns is not None else list(table.columns)
    unknown = [c for c in chosen if c not in table.columns]
    if unknown:
        raise ValueError(f"display_table: column(s) {unknown} not in the table; columns present: {list(table.columns)}")
    row_kpi = table["kpi"] if "kpi" in table.columns else pd.Series(kpi, index=table.index, dtype="object")
    kinds = {**KINDS, **(kinds or {})}
    codes = codes or {}

    def shown(column: str) -> pd.Series:
        series = table[column]
        kind = kinds.get(column) or column_kind(column, series)
        if kind == "kpi":
            row_kinds = row_kpi.map(lambda k: KPI_KINDS.get(k, "number"))
            return pd.Series([format_value(v, k, lang, sign=column in SIGNED) for v, k in zip(series, row_kinds)],
                             index=table.index, dtype="object")
        if kind == "date":
            return series.map(lambda v: format_date(v, lang)).astype("object")
        if kind == "text":
            words = codes.get(column) or texts(lang)["values"].get(column, {})
            return series.map(lambda v: format_value(words.get(v, v) if not _missing(v) else v, "text", lang))
        return series.map(lambda v: format_value(v, kind, lang, sign=column in SIGNED)).astype("object")

    names = {c: (labels or {}).get(c) or label(c, lang) for c in chosen}
    return pd.DataFrame({names[c]: shown(c) for c in chosen}, index=table.index)
