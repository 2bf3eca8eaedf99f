"""Executive summary, part 1: the KPI tiles and the summary's record, built only from what the
stages recorded (results.json). Findings are written in `summary_findings`, the HTML in
`summary_html`; all texts live in `cxlib/locales/summary.<lang>.yml` (key `summary`).

Each tile names its period. NPS, CSAT and CES: the last period of the feedback stage's trend
(`feedback.trend`) against the one before, with the change and verdict stage 02 recorded, or all
answers (`feedback.<kpi>`) when no trend was recorded. Complaint rate: the monthly complaints and
active customers of stage 04 summed to the month, quarter or year holding `as_of`, against the one
before (exact conditional Poisson test, `metrics.poisson_difference`, Benjamini-Hochberg over the
tiles the summary tests itself). Conversion and repeat-customer rate: exactly the rates stage 03
recorded (`journey.conversion_rate`, `journey.repeat_customer_rate`: `journey.conversion_rate()`
and `journey.repeat_customer_rate()` over the whole period it analysed), shown in percent. The
change against the previous run is the difference to the previous run's tile and is not tested:
two runs share most of their data.

    results = summary.stage_results(report.read_results(run_dir))
    tiles = summary.kpi_tiles(results, as_of=summary.as_of_day("", results), period="month")
    tiles = summary.with_previous_run(tiles, report.read_results(previous_run_dir), run_id="20261101T060000Z")
    summary.kpi_text(tiles["value"].iloc[0], "nps", "de")  -> '+10,0'

Everything here is pure: results dicts and DataFrames in, DataFrames, dicts and text out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxlib import locale, metrics, schema
from cxlib.schema import CES, CSAT, NPS

COMPLAINT_RATE = "complaint_rate"
CONVERSION_RATE = "conversion_rate"
REPEAT_RATE = "repeat_customer_rate"
KPI_TILES = (NPS, CSAT, CES, COMPLAINT_RATE, CONVERSION_RATE, REPEAT_RATE)
TOPICS = ("moments", "complaints", "contact_list", "journey", "value", "occasions")
PERIOD_FREQ = {"month": "M", "quarter": "Q", "year": "Y"}

# Audience views: which topic sections, in which order, and which tiles. Findings follow the
# order of the sections, so each department reads its own topics first; "tiles" is the place of
# the headline KPI finding among them.
AUDIENCES = {
    "management": {"sections": ["tiles", "moments", "complaints", "contact_list", "journey", "value"],
                   "tiles": list(KPI_TILES)},
    "service": {"sections": ["moments", "complaints", "contact_list", "tiles"],
                "tiles": [COMPLAINT_RATE, NPS, CSAT, CES]},
    "marketing": {"sections": ["occasions", "journey", "tiles"],
                  "tiles": [CONVERSION_RATE, NPS, REPEAT_RATE, CSAT]},
    "sales": {"sections": ["value", "occasions", "journey", "tiles"],
              "tiles": [CONVERSION_RATE, REPEAT_RATE, NPS]},
}

# How each tile is shown: the locale kind of its value (points, percent = a value already in %,
# score), its decimals, a sign on the value, and which direction is good.
TILE_FORMAT = {
    NPS: {"kind": "points", "decimals": 1, "sign": True, "higher_is_better": True},
    CSAT: {"kind": "percent", "decimals": 1, "sign": False, "higher_is_better": True},
    CES: {"kind": "score", "decimals": 2, "sign": False, "higher_is_better": True},
    COMPLAINT_RATE: {"kind": "points", "decimals": 1, "sign": False, "higher_is_better": False},
    CONVERSION_RATE: {"kind": "percent", "decimals": 1, "sign": False, "higher_is_better": True},
    REPEAT_RATE: {"kind": "percent", "decimals": 1, "sign": False, "higher_is_better": True},
}

TILE_COLUMNS = [
    "kpi", "period", "period_kind", "previous_period", "value", "n", "ci_low", "ci_high", "previous_value", "previous_n",
    "change_previous_period", "change_low", "change_high", "p_value", "p_adjusted", "significant_previous_period",
    "tested", "small", "note", "source", "first_day", "last_day",
]
RUN_COLUMNS = ["previous_run", "previous_run_value", "previous_run_period", "change_previous_run"]

# results.json sections each topic section reads
SECTION_RESULTS = {"moments": ["moments_of_truth"], "complaints": ["complaints", "complaint_counts"],
                   "contact_list": ["contact_list"], "journey": ["journey"], "value": ["value"],
                   "occasions": ["campaign_relevance"]}


class SummaryError(ValueError):
    """Input to the summary is unusable: an unknown audience, language or period."""


# --- texts and numbers -------------------------------------------------------------------------
def texts(lang: str = "en") -> dict:
    """The summary's texts in `lang` (`summary` of cxlib/locales/summary.<lang>.yml)."""
    if lang not in locale.LANGS:
        raise SummaryError(f"lang must be one of {list(locale.LANGS)}, got {lang!r}")
    return locale.texts(lang)["summary"]


def period_freq(period: str) -> str:
    """The pandas frequency of a tile period: 'month' -> 'M', 'quarter' -> 'Q', 'year' -> 'Y'."""
    if period not in PERIOD_FREQ:
        raise SummaryError(f"period must be one of {list(PERIOD_FREQ)}, got {period!r}")
    return PERIOD_FREQ[period]


def is_missing(value) -> bool:
    """None, NA and non-finite floats are missing."""
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and not math.isfinite(value))


def _num(value) -> float:
    return math.nan if is_missing(value) else float(value)


def kpi_text(value, kpi: str, lang: str = "en", *, change: bool = False) -> str:
    """A tile's value as shown (`locale` formats): NPS signed ('+7.0'), CSAT / conversion / repeat in
    % ('68.0%', de '68,0 %'), CES with two decimals, complaint rate with one; `change` formats a
    difference (signed, in the KPI's decimals, no '%': the unit says 'pp')."""
    spec = TILE_FORMAT[kpi]
    if change:
        return locale.format_number(value, lang, decimals=spec["decimals"], sign=True)
    return locale.format_value(value, spec["kind"], lang, sign=spec["sign"])


def period_label(label: str, lang: str = "en") -> str:
    """A period label for readers: '2025-12' -> 'Dec 2025', '2025Q4' -> 'Q4 2025'; '' -> ''."""
    return locale.format_period(label, lang) if label else ""


def tile_period(row: Mapping, lang: str = "en") -> str:
    """The period a tile names, for readers: 'latest month, Dec 2025', 'latest quarter, Q4 2025', or
    'all time' for the whole analysed period ('all time, Jan 2024 – Dec 2025' when the stage recorded
    its first and last day)."""
    t = texts(lang)
    kind = row.get("period_kind") or _period_kind(row.get("period", ""))
    if kind == "whole":
        first, last = row.get("first_day"), row.get("last_day")
        if first and last:
            return t["whole_span"].format(start=locale.format_period(str(first)[:7], lang),
                                          end=locale.format_period(str(last)[:7], lang))
        return t["whole"]
    return t["latest"][kind].format(period=period_label(row["period"], lang))


# --- audiences -------------------------------------------------------------------------------
def audience_sections(audience: str = "management") -> list[str]:
    """Sections of an audience view in reading order: audience_sections('service') -> ['moments', ...]."""
    if audience not in AUDIENCES:
        raise SummaryError(f"audience must be one of {list(AUDIENCES)}, got {audience!r}")
    return list(AUDIENCES[audience]["sections"])


def audience_tiles(audience: str = "management") -> list[str]:
    """KPI tiles of an audience view in reading order: audience_tiles('sales') -> ['conversion_rate', ...]."""
    if audience not in AUDIENCES:
        raise SummaryError(f"audience must be one of {list(AUDIENCES)}, got {audience!r}")
    return list(AUDIENCES[audience]["tiles"])


def taxonomy_labels(taxonomy, lang: str = "en") -> dict[str, dict[str, str]]:
    """Labels in the report language: {'moments': code -> label (contact reasons and derived moments),
    'complaint_categories': ..., 'touchpoints': ...} from a `config.Taxonomy`."""
    texts(lang)
    derived = taxonomy.data.get("derived_moments") or {}
    return {
        "moments": {**{code: (entry or {}).get(lang) or (entry or {}).get("en") or code for code, entry in derived.items()},
                    **{code: taxonomy.label("contact_reasons", code, lang) for code in taxonomy.codes("contact_reasons")}},
        "complaint_categories": {code: taxonomy.label("complaint_categories", code, lang)
                                 for code in (taxonomy.data.get("complaint_categories") or {})},
        "touchpoints": {code: taxonomy.label("touchpoints", code, lang) for code in taxonomy.codes("touchpoints")},
    }


# --- the stages' results --------------------------------------------------------------------------
def stage_results(results: Mapping) -> dict:
    """The stages' results without an earlier `summary` (the summary reads only what the stages recorded)."""
    return {k: v for k, v in (results or {}).items() if k != "summary"}


def run_name(run_dir: str) -> str:
    """The run id of a run folder ('reports/20261101T060000Z' -> '20261101T060000Z'); '' for none."""
    return Path(run_dir).name if run_dir else ""


def rows_frame(value) -> pd.DataFrame:
    """A list of recorded rows as a DataFrame (empty for anything else)."""
    return pd.DataFrame(value) if isinstance(value, list) and value else pd.DataFrame()


def complaint_chart(results: Mapping) -> tuple[list, str]:
    """The complaint control-chart rows stage 04 recorded and their basis: `complaints` (rates per
    1,000 active customers; basis 'rate') or, without an active customer base, `complaint_counts`
    (complaints per month; basis 'count', its complaints / center / ucl / lcl given under the rate
    columns' names so one reader serves both). ([], 'rate') when neither was recorded.

        complaint_chart({"complaint_counts": [{"complaints": 9, "center": 3.0, ...}]}) -> ([{..., "rate_per_1000": 9}], "count")
    """
    if rows_frame(results.get("complaints")).size:
        return results["complaints"], "rate"
    counts = rows_frame(results.get("complaint_counts"))
    if not counts.size or not {"complaints", "center", "ucl"} <= set(counts.columns):
        return [], "rate"
    named = counts.assign(rate_per_1000=counts["complaints"], center_per_1000=counts["center"],
                          ucl_per_1000=counts["ucl"], lcl_per_1000=counts.get("lcl", np.nan))
    return named.to_dict(orient="records"), "count"


def missing_sections(results: Mapping, audience: str = "management") -> list[str]:
    """The audience's topic sections whose stage recorded nothing in `results`.

        missing_sections({}, "sales") -> ["value", "occasions", "journey"]
    """
    return [name for name in audience_sections(audience)
            if name in SECTION_RESULTS and not any(results.get(key) for key in SECTION_RESULTS[name])]


# --- periods ---------------------------------------------------------------------------------------
def _day(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).floor("D")


def _period_kind(label: str) -> str:
    """'2025-12' -> 'month', '2025Q4' -> 'quarter', '2025' -> 'year', '2025-12-01/2025-12-07' -> 'week',
    '' -> 'whole' (the whole analysed period)."""
    label = str(label or "")
    if not label:
        return "whole"
    return "quarter" if "Q" in label else "week" if "/" in label else "month" if "-" in label else "year"


def _period_end(label: str) -> pd.Timestamp | None:
    """The last day of a period label ('2025-12', '2025Q4', '2025') as midnight UTC (None if unreadable)."""
    freq = {"month": "M", "quarter": "Q", "year": "Y", "week": "W"}.get(_period_kind(str(label)))
    try:
        return _day(pd.Period(str(label), freq=freq).end_time.normalize()) if freq else None
    except ValueError:
        return None


def as_of_day(as_of, results: Mapping | None = None) -> pd.Timestamp | None:
    """The analysis day as midnight UTC: `as_of` ('YYYY-MM-DD') when given, otherwise the latest day
    the stages recorded in `results` (results.json): value.as_of, contact_list.as_of, the end of
    moments.period, journey.period and feedback.period, the end of the last complaint month (rates
    or counts) and of the last feedback trend period; None when no stage recorded a date.

        as_of_day("", {"value": {"as_of": "2025-12-31"}}) -> Timestamp('2025-12-31 00:00:00+0000', tz='UTC')
    """
    if as_of not in (None, ""):
        return _day(as_of)
    results = results or {}
    days = [(results.get("value") or {}).get("as_of"), (results.get("contact_list") or {}).get("as_of"),
            ((results.get("moments") or {}).get("period") or {}).get("to"),
            ((results.get("journey") or {}).get("period") or {}).get("to"),
            ((results.get("feedback") or {}).get("period") or {}).get("to")]
    months = [r.get("month") for r in complaint_chart(results)[0]]
    trend = [r.get("period") for kpi in KPI_TILES[:3] for r in _trend_rows(results.get("feedback"), kpi)]
    ends = [_period_end(label) for label in [*months, *trend] if label]
    found = [_day(d) for d in days if d] + [e for e in ends if e is not None]
    return max(found) if found else None


def periods(as_of, period: str = "quarter") -> dict:
    """The current period (the one holding `as_of`) and the one before, as text:
    {period, as_of, current: {label, start, end, complete}, previous: {label, start, end, complete}};
    the current period ends at as_of. Without an analysis day (None) both are empty.

        periods("2025-11-15", "quarter")["current"]
        -> {"label": "2025Q4", "start": "2025-10-01", "end": "2025-11-15", "complete": False}
    """
    freq = period_freq(period)
    if as_of is None:
        empty = {"label": "", "start": "", "end": "", "complete": False}
        return {"period": period, "as_of": "", "current": dict(empty), "previous": dict(empty)}
    day = _day(as_of).tz_localize(None)
    current = pd.Period(day, freq=freq)

    def describe(p: pd.Period) -> dict:
        last = p.end_time.normalize()
        return {"label": str(p), "start": p.start_time.date().isoformat(), "end": min(last, day).date().isoformat(),
                "complete": bool(day >= last)}

    return {"period": period, "as_of": day.date().isoformat(), "current": describe(current),
            "previous": describe(current - 1)}


# --- KPI tiles from the stages' results --------------------------------------------------------------
def _tile(kpi, cur, prev, value=math.nan, n=0, ci_low=math.nan, ci_high=math.nan, previous_value=math.nan,
          previous_n=0, difference=math.nan, diff_low=math.nan, diff_high=math.nan, p_value=math.nan,
          p_adjusted=math.nan, significant=False, tested=False, small=False, source="", span=None):
    return {"kpi": kpi, "period": cur, "period_kind": _period_kind(cur), "previous_period": prev,
            "value": _num(value), "n": 0 if is_missing(n) else int(_num(n)), "ci_low": _num(ci_low),
            "ci_high": _num(ci_high), "previous_value": _num(previous_value),
            "previous_n": 0 if is_missing(previous_n) else int(_num(previous_n)),
            "change_previous_period": _num(difference), "change_low": _num(diff_low), "change_high": _num(diff_high),
            "p_value": _num(p_value), "p_adjusted": _num(p_adjusted), "significant_previous_period": bool(significant),
            "tested": bool(tested), "small": bool(small), "note": "", "source": source,
            "first_day": str((span or {}).get("from") or "")[:10], "last_day": str((span or {}).get("to") or "")[:10]}


def _trend_rows(feedback: Mapping | None, kpi: str) -> list[dict]:
    """The feedback stage's trend rows of `kpi` (results `feedback.trend`: rows with a `kpi` key,
    rows without one are NPS, or {kpi: rows}), oldest first."""
    trend = (feedback or {}).get("trend") if isinstance(feedback, Mapping) else None
    if isinstance(trend, Mapping):
        rows = trend.get(kpi) or []
    else:
        rows = [r for r in (trend or []) if isinstance(r, Mapping) and r.get("kpi", NPS) == kpi]
    return [r for r in rows if r.get("period") and not is_missing(r.get("value"))]


def _feedback_tile(feedback: Mapping | None, kpi: str, min_n: int) -> dict | None:
    rows = _trend_rows(feedback, kpi)
    if rows:
        cur, prev = rows[-1], (rows[-2] if len(rows) > 1 else None)
        small = bool(cur.get("small")) or _num(cur.get("n")) < min_n       # the stage's min_n, and the summary's
        tested = (prev is not None and not small and not bool(prev.get("small")) and _num(prev.get("n")) >= min_n
                  and not is_missing(cur.get("change")))
        change = cur.get("change") if prev is not None else None
        return _tile(kpi, str(cur["period"]), str(prev["period"]) if prev else "", cur.get("value"), cur.get("n"),
                     cur.get("ci_low"), cur.get("ci_high"), prev.get("value") if prev else None,
                     prev.get("n") if prev else 0, change, cur.get("change_low"), cur.get("change_high"),
                     cur.get("p_value"), cur.get("p_adjusted"), tested and bool(cur.get("significant")), tested,
                     small, "feedback.trend")
    overall = (feedback or {}).get(kpi) if isinstance(feedback, Mapping) else None
    if isinstance(overall, Mapping) and not is_missing(overall.get("value")):
        return _tile(kpi, "", "", overall.get("value"), overall.get("n"), overall.get("ci_low"), overall.get("ci_high"),
                     small=_num(overall.get("n")) < min_n, source="feedback", span=feedback.get("period"))
    return None


def _journey_tile(journey: Mapping | None, kpi: str, min_n: int) -> dict | None:
    """The rate stage 03 recorded (a share, from `journey.conversion_rate` / `journey.repeat_customer_rate`)
    in percent, as the tile shows it; nothing is recomputed."""
    rate = (journey or {}).get(kpi) if isinstance(journey, Mapping) else None
    if not isinstance(rate, Mapping) or is_missing(rate.get("value")):
        return None
    pct = {k: 100 * _num(rate.get(k)) for k in ("value", "ci_low", "ci_high")}
    return _tile(kpi, "", "", pct["value"], rate.get("n"), pct["ci_low"], pct["ci_high"],
                 small=_num(rate.get("n")) < min_n, source="journey", span=journey.get("period"))


def complaint_counts(complaints, *, as_of, period: str = "quarter") -> pd.DataFrame:
    """Complaints and active customer-months per period from the monthly complaint rates of the
    moments-of-truth stage (rows category, month, complaints, active; `active` is the same for
    every category of a month): columns period, complaints, exposure. Months after as_of, and
    months without an active base, are left out."""
    rows = pd.DataFrame(complaints if complaints is not None else [])
    empty = pd.DataFrame({"period": pd.Series(dtype="str"), "complaints": pd.Series(dtype="int64"),
                          "exposure": pd.Series(dtype="float64")})
    if rows.empty or not {"month", "complaints", "active"} <= set(rows.columns) or rows["active"].isna().all():
        return empty
    monthly = (rows.loc[rows["active"].notna()]
               .groupby("month", sort=True).agg(complaints=("complaints", "sum"), active=("active", "first")))
    months = pd.PeriodIndex(monthly.index.astype("str"), freq="M")
    last = pd.Period(_day(as_of).tz_localize(None), freq="M")
    return (monthly.assign(period=months.asfreq(period_freq(period)).astype("str"))
            .loc[months <= last]
            .groupby("period", sort=True).agg(complaints=("complaints", "sum"), exposure=("active", "sum"))
            .reset_index().astype({"period": "str", "complaints": "int64", "exposure": "float64"}))


def _complaint_tile(complaints, *, as_of, period: str, min_n: int, confidence: float) -> dict | None:
    if as_of is None:
        return None
    counts = complaint_counts(complaints, as_of=as_of, period=period).set_index("period")
    span = periods(as_of, period)
    cur, prev = span["current"]["label"], span["previous"]["label"]
    if cur not in counts.index:
        return None
    got = counts.reindex([cur, prev]).fillna(0)
    (k1, k2), (t1, t2) = got["complaints"].to_numpy(), got["exposure"].to_numpy()
    est, old = (metrics.poisson_rate(k, t, confidence=confidence) for k, t in ((k1, t1), (k2, t2)))
    diff = metrics.poisson_difference(k1, t1, k2, t2, confidence=confidence)
    tested = t1 >= min_n and t2 >= min_n and not is_missing(diff["p_value"])
    return _tile(COMPLAINT_RATE, cur, prev, est["value"], t1, est["ci_low"], est["ci_high"], old["value"], t2,
                 diff["difference"], diff["ci_low"], diff["ci_high"], diff["p_value"] if tested else math.nan,
                 tested=tested, small=t1 < min_n, source="complaints")


def kpi_tiles(results: Mapping, *, as_of=None, period: str = "quarter", kpis: Sequence[str] = KPI_TILES,
              min_n: int = 100, alpha: float = 0.05, confidence: float = 0.95) -> pd.DataFrame:
    """The KPI tiles, from what the stages recorded (results.json), only for KPIs with a result.

    NPS, CSAT, CES: the last period of `feedback.trend` against the one before, with the change and
    verdict the feedback stage recorded (source 'feedback.trend'), else all answers
    (`feedback.<kpi>`, no comparison; source 'feedback'). Complaint rate: the `complaints` rows of
    stage 04 summed to the `period` holding `as_of` against the period before, exact Poisson interval
    and conditional test, Benjamini-Hochberg over the tiles the summary tests itself (source
    'complaints'; no tile without an active customer base). Conversion and repeat-customer rate:
    `journey.<kpi>` as stage 03 recorded it, over the whole period it analysed (no comparison; source
    'journey'). Out, one row per available KPI in `kpis` order: TILE_COLUMNS. `period` '' = the whole
    analysed period (period_kind 'whole'). Units: NPS points, CSAT / conversion / repeat in percent,
    CES on 1-7, complaint rate per 1,000 active customers per month (n = customer-months).
    """
    unknown = [k for k in kpis if k not in KPI_TILES]
    if not kpis or unknown:
        raise SummaryError(f"kpis: unknown KPI tile(s) {unknown} or none named; expected some of {list(KPI_TILES)}")
    period_freq(period)
    makers = {
        NPS: lambda: _feedback_tile(results.get("feedback"), NPS, min_n),
        CSAT: lambda: _feedback_tile(results.get("feedback"), CSAT, min_n),
        CES: lambda: _feedback_tile(results.get("feedback"), CES, min_n),
        COMPLAINT_RATE: lambda: _complaint_tile(results.get("complaints"), as_of=as_of, period=period, min_n=min_n,
                                                confidence=confidence),
        CONVERSION_RATE: lambda: _journey_tile(results.get("journey"), CONVERSION_RATE, min_n),
        REPEAT_RATE: lambda: _journey_tile(results.get("journey"), REPEAT_RATE, min_n),
    }
    rows = [tile for tile in (makers[k]() for k in kpis) if tile is not None]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TILE_COLUMNS})
    tiles = pd.DataFrame(rows)
    own = (tiles["source"] == "complaints") & tiles["p_value"].notna()
    bh = metrics.benjamini_hochberg(tiles["p_value"].where(own), alpha=alpha)
    return (tiles.assign(p_adjusted=tiles["p_adjusted"].where(~own, bh["p_adjusted"]),
                         significant_previous_period=tiles["significant_previous_period"].where(
                             ~own, bh["significant"].astype(bool)).astype(bool))
            .astype({"kpi": "str", "period": "str", "previous_period": "str", "note": "str", "first_day": "str",
                     "last_day": "str"})
            .loc[:, TILE_COLUMNS])


def with_previous_run(tiles: pd.DataFrame, previous: Mapping | None = None, *, run_id: str = "") -> pd.DataFrame:
    """Tiles plus the comparison with the previous run: previous_run (its id; '' = no previous run),
    previous_run_value and previous_run_period (the previous run's tile, from its results
    `summary.tiles`), change_previous_run = value - previous_run_value (not tested; NaN when the
    previous run's tile was of another kind of period, e.g. a month against a quarter).

    `previous`: the previous run's results (`report.read_results(previous_run_dir)`), or None when
    there is no previous run.
    """
    schema.require({"kpi", "value"} <= set(tiles.columns), f"tiles: columns kpi and value needed, got {list(tiles.columns)}")
    old = ((previous or {}).get("summary") or {}).get("tiles") or {}
    old = {k: v for k, v in old.items() if isinstance(v, Mapping)} if isinstance(old, Mapping) else {}
    values = pd.Series({k: v.get("value") for k, v in old.items()}, dtype="float64")
    labels = {k: str(v.get("period") or "") for k, v in old.items()}
    kinds = {k: str(v.get("period_kind") or _period_kind(labels[k])) for k, v in old.items()}
    before = tiles["kpi"].map(values).astype("float64")
    comparable = pd.Series([kinds.get(k) == kind for k, kind in zip(tiles["kpi"], tiles["period_kind"])],
                           index=tiles.index, dtype="bool")
    return tiles.assign(
        previous_run=(run_id or "previous run") if previous is not None else "",
        previous_run_value=before,
        previous_run_period=pd.Series([labels.get(k, "") for k in tiles["kpi"]], index=tiles.index, dtype="str"),
        change_previous_run=(tiles["value"] - before).where(comparable).astype("float64"),
    )


# --- the record ---------------------------------------------------------------------------------
def tiles_record(tiles: pd.DataFrame) -> dict:
    """The tiles as results.json keeps them: {kpi: {value, n, ci_low, ci_high, change_previous_period,
    significant_previous_period, change_previous_run, ...}} (numbers in the tile's unit)."""
    columns = [c for c in [*TILE_COLUMNS, *RUN_COLUMNS] if c in tiles.columns and c != "kpi"]
    return {str(k): row for k, row in tiles.set_index("kpi")[columns].to_dict(orient="index").items()}


def data_period(results: Mapping) -> pd.DataFrame:
    """Rows per processed table as stage 01 recorded them (results `tables`: {table: rows}):
    columns table, rows; empty when stage 01 recorded none."""
    counts = results.get("tables") if isinstance(results.get("tables"), Mapping) else {}
    return pd.DataFrame({"table": pd.Series(list(counts), dtype="str"),
                         "rows": pd.Series([0 if is_missing(v) else int(_num(v)) for v in counts.values()],
                                           dtype="int64")})


def summary_record(tiles: pd.DataFrame, findings_text: Sequence[str], *, span: Mapping, audience: str, lang: str,
                   sections: Sequence[str], previous_run: str = "", data: pd.DataFrame | None = None,
                   parameters: Mapping | None = None) -> dict:
    """The `summary` section of results.json: audience, lang, periods, previous run, tiles
    ({kpi: {value, n, ci_low, ci_high, change_previous_period, significant_previous_period,
    change_previous_run, ...}}), findings (the sentences shown), sections (order shown), data
    period and parameters."""
    return {"audience": audience, "lang": lang, "period": span.get("period"), "as_of": span.get("as_of"),
            "current_period": dict(span.get("current") or {}), "previous_period": dict(span.get("previous") or {}),
            "previous_run": previous_run or None, "tiles": tiles_record(tiles), "findings": list(findings_text),
            "sections": list(sections), "data_period": data if data is not None else [],
            "parameters": dict(parameters or {})}
