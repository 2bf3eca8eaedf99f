"""Steps of a source mapping that reshape or recode mapped rows (used by `cxlib.sources`).

Pure functions on DataFrames and Series, no I/O:

- `template_parts`: a template such as ``"{case:concept:name}-{_row}"`` split into literal text
  and column names; any character but braces may appear in a name.
- `aggregate`: one row per key (sum / min / max / first / last / count per column).
- `language_codes`: language names and tags (``German``, ``de-CH``, ``Französisch``) -> ISO 639-1.
- `scale_problem`: whether a score scale given in a mapping suits the canonical score.
- `date_only_format`, `date_only_text`: which date values carry no time of day (they keep their
  calendar date instead of being read as local midnight).
- `text_isin`: `Series.isin` for text columns against many values, computed by Arrow.

    reshape.aggregate(lines, ["order_id"], {"revenue": "sum", "timestamp": "min"})
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxlib import schema
from cxlib.config import fold

AGGREGATIONS = ("sum", "min", "max", "first", "last", "count")
NUMERIC_ONLY = ("sum",)
ROW_FIELD, FILE_FIELD = "_row", "_file"           # template fields naming a row's lineage
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_TIME_DIRECTIVE = re.compile(r"%[HIMSfpzZXcTRrs]")
_TIME_IN_TEXT = re.compile(r"\d:\d|\dT\d|\d[hH]\d")
_LANGUAGE_TAG = re.compile(r"([a-z]{2,3})(?:[-_][a-z0-9]{2,8})*")
_POS = "\0aggregate_pos"


# --- templates -----------------------------------------------------------------------------
def template_parts(template: str) -> list[tuple[str, str | None]]:
    """Literal text and field names of a template, in order: ``"{a:b}-x"`` ->
    ``[("", "a:b"), ("-x", None)]``. ``{{`` and ``}}`` are literal braces; a field is everything
    between single braces (spaces, dots, colons included), trimmed. Raises ValueError naming
    the problem (a lone brace, an empty field, no field at all)."""
    if not isinstance(template, str):
        raise ValueError("`template` must be a string with source columns in braces")
    parts: list[tuple[str, str | None]] = []
    literal, at = "", 0
    for match in _TEMPLATE_TOKEN.finditer(template):
        literal += template[at:match.start()]
        at = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
        elif token in ("{", "}"):
            raise ValueError(f"template {template!r}: unmatched {token!r} at position {match.start()} "
                             f"(write {token * 2} for a literal brace)")
        else:
            field = match.group(1).strip()
            if not field:
                raise ValueError(f"template {template!r}: empty braces; name a source column, "
                                 f"e.g. '{{Bestellnummer}}-storno'")
            parts.append((literal, field))
            literal = ""
    literal += template[at:]
    if literal:
        parts.append((literal, None))
    if not any(field for _, field in parts):
        raise ValueError(f"template {template!r}: name the source columns in braces, e.g. '{{Bestellnummer}}-storno'")
    return parts


def template_fields(template: str) -> list[str]:
    """The column names a template uses, in order (lineage fields `_row` and `_file` included)."""
    return [field for _, field in template_parts(template) if field is not None]


# --- aggregation ---------------------------------------------------------------------------
def aggregate(frame: pd.DataFrame, by: list[str], functions: dict[str, str], *,
              default: str = "first", overrides: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per value of the key columns `by`.

    `functions`: column -> one of AGGREGATIONS; every other column takes `default` (`first`:
    first non-blank value in row order), `overrides` (e.g. {"is_test": "max"}) win over it.
    `sum` of an all-blank group is blank; `count` counts non-blank values. Rows with a blank key
    are passed through unchanged. Row order: each group at the position of its first row.
    Column dtypes are those of `frame` (count becomes int64).

        aggregate(pd.DataFrame({"k": ["a", "a"], "x": [1.0, 2.0]}), ["k"], {"x": "sum"}) -> k=a, x=3.0
    """
    unknown = sorted(set(functions.values()) - set(AGGREGATIONS))
    if unknown:
        raise ValueError(f"aggregate: unknown function(s) {unknown}; allowed: {list(AGGREGATIONS)}")
    how = {c: default for c in frame.columns if c not in by} | (overrides or {}) | dict(functions)
    positioned = frame.assign(**{_POS: np.arange(len(frame))})
    keyed = positioned[by].notna().all(axis=1)
    groups = positioned.loc[keyed].groupby(by, sort=False, dropna=True)
    columns = {_POS: groups[_POS].min()}
    for name in (c for c in frame.columns if c not in by):
        grouped = groups[name]
        func = how[name]
        columns[name] = (grouped.sum(min_count=1) if func == "sum" else grouped.count() if func == "count"
                         else getattr(grouped, func)())
    combined = pd.DataFrame(columns).reset_index()
    counted = [c for c in frame.columns if how.get(c) == "count"]
    single = positioned.loc[~keyed].assign(**{c: positioned.loc[~keyed, c].notna().astype("int64") for c in counted})
    out = pd.concat([combined, single], ignore_index=True)
    dtypes = {c: ("int64" if c in counted else frame[c].dtype) for c in frame.columns}
    return (out.sort_values(_POS, kind="stable").drop(columns=_POS)
            .loc[:, list(frame.columns)].astype(dtypes).reset_index(drop=True))


# --- language codes ------------------------------------------------------------------------
def language_codes(values: pd.Series) -> pd.Series:
    """Language names and tags -> ISO 639-1 codes: 'German', 'Deutsch', 'de-CH', 'DE' -> 'de';
    other values are kept as their code, lower case and trimmed ('Swahili' -> 'swahili',
    'sw' -> 'sw'); missing stays missing. Names come from `schema.LANGUAGE_NAMES`."""
    names = {name: code for code, spellings in schema.LANGUAGE_NAMES.items() for name in (code, *spellings)}

    def code_of(value: str) -> str:
        folded = fold(value)
        if folded in names:
            return names[folded]
        tag = _LANGUAGE_TAG.fullmatch(folded)
        if tag:
            return names.get(tag.group(1), tag.group(1))
        return folded

    distinct = pd.unique(values.dropna())
    return values.map({v: code_of(v) for v in distinct}, na_action="ignore").astype(schema.PANDAS_DTYPES["string"])


# --- score scales --------------------------------------------------------------------------
FIXED_SCALES = {schema.NPS: (0, 10), schema.CES: (1, 7)}


def scale_problem(column: str, scale) -> str | None:
    """None when `scale` ([low, high], whole numbers) suits canonical score `column`, else why not.
    NPS is defined only on the 0-10 recommend question and CES on 1-7; CSAT takes any scale
    of at least three points starting at 0 or above (CSAT = share in its top two points)."""
    if column not in schema.SCORE_RANGES:
        return f"`scale` applies to the scores {sorted(schema.SCORE_RANGES)} only"
    if (not isinstance(scale, (list, tuple)) or len(scale) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in scale)):
        return f"`scale` must be two whole numbers [lowest, highest], got {scale!r}"
    low, high = scale
    if column in FIXED_SCALES and (low, high) != FIXED_SCALES[column]:
        fixed = FIXED_SCALES[column]
        if column == schema.NPS:
            return (f"NPS is defined only on the 0-10 recommend question, this one is [{low}, {high}]; map it as "
                    f"`csat: {{from: ..., scale: [{low}, {high}]}}` (CSAT = share in the top two points), as an "
                    f"attribute rating (a feedback row with touchpoint = attribute and that csat), or leave it unmapped")
        return f"{column} is defined on [{fixed[0]}, {fixed[1]}] only, got [{low}, {high}]; map another scale as csat"
    if low < 0 or high - low < 2:
        return f"a CSAT scale needs at least three points from 0 or above, got [{low}, {high}]"
    return None


# --- dates without a time of day -----------------------------------------------------------
def date_only_format(fmt: str) -> bool:
    """True when a strptime format has no time directive: '%d.%m.%Y' -> True, '%d.%m.%Y %H:%M' -> False."""
    return not _TIME_DIRECTIVE.search(fmt)


def date_only_text(values: pd.Series) -> pd.Series:
    """True per value that looks like a date without a time of day ('2016-01-01', '05.01.2024');
    False for '2016-01-01 00:00', '2016-01-01T10:00Z' and missing values."""
    text = values.astype(schema.PANDAS_DTYPES["string"])
    return (text.notna() & ~text.str.contains(_TIME_IN_TEXT, regex=True)).fillna(False).astype(bool)


def text_isin(values: pd.Series, candidates) -> pd.Series:
    """values.isin(candidates) for text (missing values match a missing candidate, as in pandas),
    computed by Arrow: pandas' isin on Arrow strings makes a Python object of every candidate,
    which dominated stage 01's cleaning with one bucket's customers as the candidates."""
    text = pa.array(values.astype("str"), from_pandas=True)
    wanted = pa.array(pd.Series(np.asarray(candidates, dtype=object), dtype="str"), from_pandas=True)
    found = pc.is_in(text, value_set=wanted.cast(text.type), skip_nulls=False)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)
