"""Voice of the customer (stage 02_feedback): the answers a report reads, the KPIs and cuts they
support, their tables and sentences in English or German (`lang`), and the findings a manager reads
first.

The statistics come from `metrics`; this module prepares the stage once (`prepare` -> `Inputs`,
reading the comments with `text`, `sentiment` and `themes`) and decides what the data can show. A
function a report section calls raises `schema.Missing` (what is missing, which canonical column
would enable it) when the data cannot support the section: nobody answered a KPI's question, no
dates or one period only, one segment only. The comments' sections are in `voice_comments`, the
figures in `voice_figures`.

    inputs = voice.prepare(tables, tax, (stopwords, lexicon), trend_period="month")
    voice.headline(inputs.feedback, "nps")                  # Missing("no NPS answers", enable="feedback.nps ...")
    voice.kpi_cuts(inputs.feedback, ["segment"], inputs.kpis)   # Missing("all answers come from one segment (private)")
"""

from __future__ import annotations

import math
from contextlib import suppress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from . import feedback_table, locale, metrics, sentiment, text, themes
from .config import Taxonomy
from .metrics import KPIS, LABELS, PERIOD
from .privacy import CUSTOMER_NUMBER, name_pattern
from .schema import (CES, CHANNEL, COMMENT, CSAT, CSAT_MAX, CSAT_MIN, CUSTOMER_ID, LANGUAGE, LANGUAGE_NAMES, NPS,
                     REGION, RESPONSE_ID, SEGMENT, SURVEY, TIMESTAMP, TOUCHPOINT, Missing, require)
from .voice_comments import (Comments, _n, comments_record, describe_sentiment, describe_sentiment_quality,
                             sentiment_quality_record, theme_model_record)

ENGINE_TABLES = ["customers", "events"]     # read by `prepare` as engine tables: they grow with the customer base
# the answers' columns the comment sections read (`prepare` keeps only these in `Inputs.comments`)
COMMENT_COLUMNS = [RESPONSE_ID, CUSTOMER_ID, NPS, CSAT, CSAT_MAX, CSAT_MIN, COMMENT, LANGUAGE]
# the canonical column that would let a KPI or a cut be shown
ENABLE = {
    NPS: "feedback.nps: answers 0-10 to the recommend question",
    CSAT: "feedback.csat: satisfaction answers, with feedback.csat_max when the scale is not 1-5",
    CES: "feedback.ces: effort answers on 1-7",
}
SOURCES = {
    SEGMENT: "customers.segment", REGION: "customers.region", SURVEY: "feedback.survey",
    TOUCHPOINT: "feedback.touchpoint", PERIOD: "feedback.timestamp",
    CHANNEL: "events.channel of a contact at the answer's touchpoint shortly before it",
}
NO_KPI = "no NPS, CSAT or CES answers"
NO_KPI_ENABLE = "feedback.nps, feedback.csat or feedback.ces"
LANGUAGE_ALIASES = {name: code for code, names in LANGUAGE_NAMES.items() for name in names}
OVERALL = "overall"     # touchpoint of the overall rating in a ratings table (the other rows rate aspects)



def _texts(lang: str) -> dict:
    """The stage's texts in `lang` (`cxlib/locales/feedback.<lang>.yml`): definitions and axis labels
    of the KPIs, period words and the words for a missing group or value."""
    return locale.texts(lang)["feedback"]

# --- inputs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs(Comments):
    """What every section of the stage reads, prepared once by `prepare`: the `Comments` (read by
    `voice_comments`) and the answers and KPIs."""

    answers: pd.DataFrame           # every answer of the selection (with customers, channel, period)
    feedback: pd.DataFrame          # the answers the KPIs are read from (`overall_answers`)
    kpis: list                      # the KPIs someone answered (`available_kpis`)
    kpi: str                        # the KPI the figures show (`main_kpi`)
    selection: dict = field(default_factory=dict)     # filters, start, end, trend_period


def prepare(tables: Mapping[str, pd.DataFrame | ir.Table | None], taxonomy: Taxonomy, word_lists: tuple[dict, dict], *,
            filters: Mapping | None = None, group_by: Sequence[str] | None = None,
            start: str = "", end: str = "", trend_period: str = "month", channel_window_days: float = 30,
            customer_number: str | None = CUSTOMER_NUMBER) -> Inputs:
    """The stage's `Inputs` from the processed `tables` (feedback; customers and events, the
    `ENGINE_TABLES`, as engine tables or DataFrames; reidentification with pii_name, labels or None):
    answers with their customers' attributes (only those `group_by` and `filters` name, when
    `group_by` is given; all without it), the channel of a contact at their touchpoint within
    `channel_window_days` before (both joined on the engine: one row per answer comes back),
    their `trend_period` ('month', 'quarter'), filtered by `filters`
    (column -> value or list; '' = all) and `start`/`end`; the comments' language, sentiment
    (`sentiment.learn`, from scores or labels) and themes (`themes.learn_themes`). The CRM names
    and `customer_number` are only used to mask personal data in quotes and terms (the names'
    pattern is built once, from the distinct names). The comments keep the `COMMENT_COLUMNS` only;
    the text models' memory is bounded (samples and batches: see `sentiment`, `themes`, `text`)."""
    stopwords, lexicon = word_lists
    labels, reidentification = tables.get("labels"), tables.get("reidentification")
    names = reidentification["pii_name"] if reidentification is not None and "pii_name" in reidentification else None
    common = text.common_words(stopwords, lexicon)       # kept by every scrub of quotes and terms
    pattern = None if names is None else name_pattern(names.drop_duplicates(), keep=common) or ""
    filters = dict(filters or {})
    joined = None if group_by is None else [c for c in tables["customers"].columns if c in {*_list(group_by), *filters}]
    answers = (feedback_table.with_customers(tables["feedback"], tables["customers"], columns=joined)
               .pipe(feedback_table.with_contact_channel, tables["events"], within_days=channel_window_days)
               .pipe(metrics.add_period, trend_period)
               .pipe(feedback_table.filter_feedback, filters, start=start, end=end))
    feedback = overall_answers(answers, touchpoint=filters.get(TOUCHPOINT) or "")
    found = comments(feedback[[c for c in COMMENT_COLUMNS if c in feedback.columns]])
    language = comment_languages(found, text.detect_language(found[COMMENT], stopwords, lexicon=lexicon))
    learned = {**sentiment.learn(found[COMMENT], language, sentiment.training_classes(found, labels, lexicon), lexicon),
               "source": sentiment.label_source(found, labels)}          # trained on hand labels or on scores
    model = themes.learn_themes(found[COMMENT], language, themes.theme_truth(found, labels, list(taxonomy.themes())),
                                text.tag_themes(found[COMMENT], taxonomy, languages=language))
    kpis = available_kpis(feedback)
    return Inputs(answers=answers, feedback=feedback, kpis=kpis, kpi=main_kpi(kpis), comments=found, language=language,
                  learned=learned, theme_model=model, taxonomy=taxonomy, stopwords=stopwords, lexicon=lexicon,
                  scrub={"names_pattern": pattern, "customer_number": customer_number},
                  selection={**filters, "start": start, "end": end, "trend_period": trend_period})


def setup_record(inputs: Inputs, *, group_by: Sequence[str]) -> dict:
    """The first entries of results.json `feedback`: kpis, their definitions, group_by, period
    (first and last answer), filters, and what `prepare` measured where the data has it: comments
    (`comments_record`), sentiment_quality and theme_model."""
    chosen = {k: v for k, v in inputs.selection.items() if k != "trend_period"}
    record = {"kpis": inputs.kpis, "definitions": {k: metrics.DEFINITIONS[k] for k in inputs.kpis},
              "group_by": list(group_by), "period": answered_period(inputs.feedback), "filters": chosen}
    for entry in (comments_record, sentiment_quality_record, theme_model_record):
        with suppress(Missing):
            record |= entry(inputs)
    return record


def setup_table(inputs: Inputs, *, group_by: Sequence[str], min_n: int, lang: str = "en") -> dict:
    """What was analysed, for `report.parameters_table`: answers, first and last day, KPIs
    answered, the selection, group_by, trend_period and min_answers."""
    span, de = answered_span(inputs.feedback), lang == "de"
    every = "alle" if de else "all"
    chosen = {k: (v or every) for k, v in inputs.selection.items() if k not in ("start", "end", "trend_period")}
    return {("Antworten" if de else "responses"): span["responses"], ("von" if de else "from"): span["from"],
            ("bis" if de else "to"): span["to"],
            ("beantwortete Kennzahlen" if de else "KPIs answered"): ", ".join(LABELS[k] for k in inputs.kpis) or "–",
            **chosen, "group_by": list(group_by), "trend_period": inputs.selection.get("trend_period"),
            "min_answers": min_n}


def describe_definitions(inputs: Inputs, *, lang: str = "en") -> str:
    """The definitions of the KPIs answered, one bullet each, for the closing 'How this was measured'."""
    if not inputs.kpis:
        return ""
    head = "**Definitionen.**" if lang == "de" else "**Definitions.**"
    return head + "\n\n" + "\n".join(f"- {_texts(lang)['definitions'][k]}" for k in inputs.kpis)


# --- what the data supports (never raise) ----------------------------------------------------
def available_kpis(feedback: pd.DataFrame) -> list[str]:
    """The KPIs at least one answer has, in the order NPS, CSAT, CES; an absent column counts as
    no answers.

        available_kpis(pd.DataFrame({"csat": [4.0, None], "nps": [None, None]})) -> ["csat"]
    """
    return [k for k in KPIS if k in feedback.columns and pd.to_numeric(feedback[k]).notna().any()]


def main_kpi(kpis: Sequence[str]) -> str:
    """The KPI figures show: the first of `kpis` (NPS, else CSAT, else CES); NPS when there is none
    (every KPI section is then skipped)."""
    return next(iter(kpis), NPS)


def comments(feedback: pd.DataFrame, *, col_comment: str = COMMENT) -> pd.DataFrame:
    """The answers with a non-empty comment (none, with an empty comment column, when the column is absent)."""
    if col_comment not in feedback.columns:
        return feedback.iloc[0:0].assign(**{col_comment: pd.Series(dtype="str")})
    return feedback.loc[feedback[col_comment].astype("str").str.strip().str.len().fillna(0).gt(0).to_numpy()]


def overall_answers(feedback: pd.DataFrame, *, touchpoint: str = "", col_touchpoint: str = TOUCHPOINT) -> pd.DataFrame:
    """The answers the KPIs are read from: in a ratings table (rows with touchpoint 'overall' beside
    rows rating aspects: price, quality, ...) only the overall ratings, since a KPI over every aspect
    rating mixes questions; all answers otherwise, or when `touchpoint` selects one on purpose.

        overall_answers(pd.DataFrame({"touchpoint": ["overall", "price_value"], "csat": [9, 3]})) -> the first row
    """
    if touchpoint or col_touchpoint not in feedback.columns:
        return feedback
    overall = feedback[col_touchpoint].astype("str").str.strip().str.lower().eq(OVERALL).to_numpy()
    return feedback.loc[overall] if overall.any() else feedback


def describe_overall(answers: pd.DataFrame, kept: pd.DataFrame, *, col_touchpoint: str = TOUCHPOINT,
                     lang: str = "en") -> str:
    """One sentence when `overall_answers` kept only the overall ratings of `answers`: how many, and
    how many aspect ratings stay out of the KPIs ('' when all answers are kept)."""
    if len(kept) == len(answers):
        return ""
    aspects = answers.loc[~answers.index.isin(kept.index), col_touchpoint].dropna().nunique()
    n_kept, n_out = _n(len(kept), lang), _n(len(answers) - len(kept), lang)
    if lang == "de":
        return (f"Die Daten bewerten {aspects} Aspekt(e) neben dem Gesamteindruck: die Kennzahlen unten stammen aus den "
                f"{n_kept} Gesamtbewertungen; die {n_out} Aspektbewertungen bleiben hier außen vor (die Momente der "
                "Wahrheit gewichten sie als Treiber der Gesamtbewertung).")
    return (f"The data rate {aspects} aspect(s) besides the overall experience: the KPIs below are read from the "
            f"{n_kept} overall ratings; the {n_out} aspect ratings are left out here "
            "(the moments-of-truth stage weighs the aspects as drivers of the overall rating).")


def answered_span(feedback: pd.DataFrame, *, col_time: str = TIMESTAMP) -> dict:
    """{responses, from, to}: the number of answers and the first and last date ('no dates' when
    none is dated) for the parameters table.

        answered_span(feedback) -> {"responses": 2494, "from": "2024-01-02", "to": "2024-12-30"}
    """
    times = (pd.to_datetime(feedback[col_time], utc=True) if col_time in feedback.columns
             else pd.Series([], dtype="datetime64[ns, UTC]")).dropna()
    first, last = (f"{t:%Y-%m-%d}" if len(times) else "no dates" for t in (times.min(), times.max()))
    return {"responses": len(feedback), "from": first, "to": last}


def answered_period(feedback: pd.DataFrame, *, col_time: str = TIMESTAMP) -> dict:
    """{from, to}: the first and last answer date ('YYYY-MM-DD'; None without dated answers), for
    results.json (`feedback.period`) and the summary's analysis day."""
    span = answered_span(feedback, col_time=col_time)
    return {k: (None if span[k] == "no dates" else span[k]) for k in ("from", "to")}


def comment_languages(comments: pd.DataFrame, detected: pd.Series, *, col_language: str = LANGUAGE,
                      known: Sequence[str] = ("de", "en"), other: str = "other") -> pd.Series:
    """Language per comment: the mapped `language` column where it holds a value ('de', 'en',
    'de-CH', 'German', ... see schema.LANGUAGE_NAMES; any other language becomes `other`, counted
    but not scored), else the detected one (`text.detect_language`). Index and name of `detected`.

        comment_languages(pd.DataFrame({"language": ["fr", None]}), pd.Series(["en", "de"])) -> ["other", "de"]
    """
    if col_language not in comments.columns:
        return detected
    code = (comments[col_language].astype("str").str.strip().str.lower()
            .str.replace(r"[-_ ].*$", "", regex=True).replace(LANGUAGE_ALIASES))
    mapped = code.where(code.isin(list(known)), other).where(code.notna() & code.ne(""))
    return pd.Series(mapped.to_numpy(), index=detected.index, dtype="str").fillna(detected).rename(detected.name)


# --- headline KPIs ------------------------------------------------------------------------------
def headline(feedback: pd.DataFrame, kpi: str, *, confidence: float = 0.95) -> dict:
    """{value, ci_low, ci_high, n} of `kpi` over the answers (CSAT on each answer's scale,
    `csat_max`); raises Missing when nobody answered the KPI's question.

        headline(feedback, "csat") -> {"value": 71.2, "ci_low": 68.0, "ci_high": 74.2, "n": 812}
    """
    require(kpi in available_kpis(feedback), f"no {LABELS[kpi]} answers", enable=ENABLE[kpi])
    scale = feedback[CSAT_MAX] if CSAT_MAX in feedback.columns else None
    return metrics.kpi_estimate(feedback[kpi], kpi, scale_max=scale, confidence=confidence)


def headline_table(results: Mapping, lang: str = "en") -> pd.DataFrame:
    """The KPIs among the keys of `results` (each {value, ci_low, ci_high, n}) as a report shows
    them: KPI, answers, value, interval from, interval to (at the KPI's precision; '–' without an
    interval). Raises Missing when none is there."""
    require(any(k in results for k in KPIS), NO_KPI, enable=NO_KPI_ENABLE)
    rows = pd.DataFrame([{"kpi": k, **{c: results[k].get(c) for c in ("n", "value", "ci_low", "ci_high")}}
                         for k in KPIS if k in results])
    return locale.display_table(rows, lang)


def describe_headline(results: Mapping, inputs: Inputs | None = None, *, min_n: int = 100, lang: str = "en") -> str:
    """Sentences on the KPIs among the keys of `results` (see `describe_estimate`), after the one on
    the overall ratings of a ratings table (`describe_overall`, with `inputs`)."""
    present = [k for k in KPIS if k in results]
    overall = describe_overall(inputs.answers, inputs.feedback, lang=lang) if inputs is not None else ""
    if not present:
        return ("Die Auswahl enthält keine NPS-, CSAT- oder CES-Antworten." if lang == "de"
                else f"The selection holds {NO_KPI}.")
    return " ".join([overall] * bool(overall) + [describe_estimate(results[k], k, min_n=min_n, lang=lang) for k in present])


def describe_estimate(est: Mapping, kpi: str = NPS, *, min_n: int = 100, lang: str = "en") -> str:
    """One sentence on a KPI estimate: value, interval, n, and a warning when n < min_n.

        describe_estimate({"value": -15, "ci_low": -31.0, "ci_high": 1.8, "n": 100}, "nps")
        -> 'NPS is -15.0 (95% interval -31.0 to +1.8, n = 100).'
    """
    label, de = LABELS[kpi], lang == "de"
    if not est.get("n"):
        return f"Keine {label}-Antworten in der Auswahl." if de else f"No {label} answers in the selection."
    value, n = _fmt(est["value"], kpi, lang), _n(est["n"], lang)
    if _missing(est.get("ci_low")) or _missing(est.get("ci_high")):
        sentence = (f"Der {label} beträgt {value} (n = {n}: zu wenige Antworten für ein Intervall)." if de else
                    f"{label} is {value} (n = {n}: too few answers for an interval).")
    else:
        low, high = _fmt(est["ci_low"], kpi, lang), _fmt(est["ci_high"], kpi, lang)
        sentence = (f"Der {label} beträgt {value} (95-%-Intervall {low} bis {high}, n = {n})." if de else
                    f"{label} is {value} (95% interval {low} to {high}, n = {n}).")
    if est["n"] < min_n:
        sentence += (f" Mit weniger als {min_n} Antworten ist das nur ein Hinweis." if de else
                     f" With fewer than {min_n} answers this is indicative only.")
    return sentence


# --- cuts by group -----------------------------------------------------------------------------
def _source(column: str) -> str:
    return SOURCES.get(column, f"feedback.{column} or customers.{column}")


def _scored(feedback: pd.DataFrame, kpis: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """The `columns` (those present) of the answers to any of `kpis`."""
    require(len(kpis), NO_KPI, enable=NO_KPI_ENABLE)
    return feedback.loc[feedback[list(kpis)].notna().any(axis=1).to_numpy(), _present(feedback, columns)]


def _present(feedback: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The `columns` the answers have, once each: a section hands only these on (no copy of every column)."""
    return [c for c in dict.fromkeys(columns) if c in feedback.columns]


def _list(by) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def check_cut(feedback: pd.DataFrame, by: Sequence[str], kpis: Sequence[str]) -> None:
    """Raise Missing unless the answers to `kpis` fall into two or more known groups of `by`
    (a column absent or empty, or one value only: one segment is no comparison)."""
    by = _list(by)
    require(by, "no column to cut by", enable="the parameter group_by")
    scored = _scored(feedback, kpis, by)
    for col in by:
        require(col in scored.columns and scored[col].notna().any(), f"no {col} is recorded for the answers",
                enable=_source(col))
    groups = scored[by].dropna().drop_duplicates()
    name = " / ".join(groups.iloc[0].astype("str")) if len(groups) else ""
    require(len(groups) >= 2, f"all answers come from one {' / '.join(by)} ({name})",
            enable=f"{' and '.join(_source(c) for c in by)} with two or more values")


def kpi_cuts(feedback: pd.DataFrame, by: Sequence[str], kpis: Sequence[str], *, min_n: int = 100,
             confidence: float = 0.95, alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """{kpi: metrics.kpi_by table} for each of `kpis` cut by `by`; raises Missing when the cut is
    not possible (`check_cut`)."""
    by = _list(by)
    check_cut(feedback, by, kpis)
    return {k: metrics.kpi_by(feedback, by, kpi=k, min_n=min_n, confidence=confidence, alpha=alpha) for k in kpis}


def cuts_record(cuts: Mapping[str, pd.DataFrame]) -> dict:
    """results.json entries of the cuts: `by_segment` (the main KPI's rows, the first of `cuts`, with
    a kpi column) and `by_group` ({kpi: rows}); p-values before correction left out."""
    kpi = next(iter(cuts))
    return {"by_segment": cuts[kpi].drop(columns=["p_value"]).assign(kpi=kpi),
            "by_group": {k: table.drop(columns=["p_value"]) for k, table in cuts.items()}}


def cut_table(cuts: Mapping[str, pd.DataFrame], by: Sequence[str], lang: str = "en") -> pd.DataFrame:
    """The `kpi_cuts` tables stacked as a report shows them: KPI, the group columns, answers, value,
    interval, difference to the rest, adjusted p-value, significant, rank, too few answers."""
    by = _list(by)
    cols = ["kpi", *by, "n", "value", "ci_low", "ci_high", "diff_vs_rest", "p_adjusted", "significant", "rank", "small"]
    parts = [t.assign(kpi=k) for k, t in cuts.items()]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    none = _texts(lang)["words"]["none"]
    table = table.assign(**{c: table[c].astype("object").where(table[c].notna(), none) for c in by})
    return locale.display_table(table, lang, columns=cols, kinds={"rank": "count"})


def group_names(table: pd.DataFrame, by: Sequence[str], lang: str = "en") -> pd.Series:
    """'north / private' per row of a grouped table; a missing value reads '(none)'."""
    none = _texts(lang)["words"]["none"]
    parts = [table[c].astype("object").where(table[c].notna(), none).astype("str") for c in _list(by)]
    return parts[0].str.cat(parts[1:], sep=" / ") if len(parts) > 1 else parts[0]


def describe_groups(cuts: Mapping[str, pd.DataFrame], by: Sequence[str], *, min_n: int = 100, lang: str = "en") -> str:
    """Markdown sentences on the main KPI's `kpi_by` table (the first of `cuts`, {kpi: table}): best
    and worst of the groups large enough, which differ significantly from the rest (after
    Benjamini-Hochberg), and which groups are too small."""
    kpi, table = next(iter(cuts.items()))
    label, de = LABELS[kpi], lang == "de"
    names = group_names(table, by, lang)
    large = table.loc[~table["small"] & table["rank"].notna()].sort_values("value", ascending=False)
    unknown = table.loc[~table["small"] & table["rank"].isna()]
    small = table.loc[table["small"]]
    fmt = lambda row: _fmt(row["value"], kpi, lang)  # noqa: E731
    parts = []
    if len(large) >= 2:
        top, low = large.iloc[0], large.iloc[-1]
        parts.append(f"Von {len(large)} Gruppen mit mindestens {min_n} Antworten hat **{names[top.name]}** den höchsten "
                     f"{label} ({fmt(top)}, n = {_n(top['n'], lang)}) und **{names[low.name]}** den niedrigsten "
                     f"({fmt(low)}, n = {_n(low['n'], lang)})." if de else
                     f"Of {len(large)} groups with at least {min_n} answers, **{names[top.name]}** has the highest "
                     f"{label} ({fmt(top)}, n = {_n(top['n'], lang)}) and **{names[low.name]}** the lowest "
                     f"({fmt(low)}, n = {_n(low['n'], lang)}).")
    elif len(large) == 1:
        only = large.iloc[0]
        parts.append(f"Nur **{names[only.name]}** hat mindestens {min_n} Antworten ({label} {fmt(only)}): keine Gruppe "
                     "erhält einen Rang." if de else
                     f"Only **{names[only.name]}** has at least {min_n} answers ({label} {fmt(only)}): no group is ranked.")
    else:
        parts.append(f"Keine Gruppe hat {min_n} oder mehr Antworten: keine wird verglichen oder gereiht." if de else
                     f"No group has {min_n} answers or more: no group is compared or ranked.")
    sig = table.loc[~table["small"] & table["significant"]]
    if len(sig):
        rest = "zum Rest" if de else "vs the rest"
        items = ", ".join(f"{names[i]} ({_fmt_diff(sig.loc[i, 'diff_vs_rest'], kpi, lang)} {rest})" for i in sig.index)
        parts.append(f"Signifikant anders als der Rest der Stichprobe (Benjamini-Hochberg, 5 % FDR): {items}." if de else
                     f"Significantly different from the rest of the sample (Benjamini-Hochberg, 5% FDR): {items}.")
    elif len(large) >= 2:
        parts.append("Nach Korrektur für die vielen Vergleiche unterscheidet sich keine Gruppe signifikant vom Rest."
                     if de else "No group differs significantly from the rest of the sample after correcting for "
                     "multiple comparisons.")
    if len(unknown):
        listed, n = ", ".join(names[unknown.index]), _n(unknown["n"].sum(), lang)
        parts.append(f"Antworten ohne erfassten Wert ({listed}, n = {n}) werden gezeigt, aber nicht gereiht." if de else
                     f"Answers without a recorded value ({listed}, n = {n}) are shown but not ranked.")
    if len(small):
        listed = ", ".join(names[small.index[:8]]) + (" ..." if len(small) > 8 else "")
        parts.append(f"{len(small)} Gruppe(n) haben weniger als {min_n} Antworten und sind grau, ohne Rang: {listed}."
                     if de else f"{len(small)} group(s) have fewer than {min_n} answers and are shown greyed, "
                     f"not ranked: {listed}.")
    return " ".join(parts)


# --- over time -------------------------------------------------------------------------------
def check_periods(feedback: pd.DataFrame, kpis: Sequence[str], *, period: str = "month") -> None:
    """Raise Missing unless the answers to `kpis` are dated and span two or more periods
    (`feedback` after `metrics.add_period`)."""
    scored = _scored(feedback, kpis, [PERIOD])
    periods = scored[PERIOD].dropna().unique() if PERIOD in scored.columns else []
    require(len(periods), "the answers have no dates", enable="feedback.timestamp")
    require(len(periods) >= 2, f"all dated answers fall in one {period} ({periods[0]})",
            enable=f"feedback.timestamp spanning two or more {period}s")


def kpi_trends(feedback: pd.DataFrame, kpis: Sequence[str], *, period: str = "month", min_n: int = 100,
               confidence: float = 0.95, alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """{kpi: metrics.kpi_trend table} per period for each of `kpis`; raises Missing without dates or
    with one period only (`check_periods`)."""
    check_periods(feedback, kpis, period=period)
    return {k: metrics.kpi_trend(feedback[_present(feedback, [k, CSAT_MAX, TIMESTAMP])], kpi=k, period=period,
                                 min_n=min_n, confidence=confidence, alpha=alpha) for k in kpis}


def trend_table(trends: Mapping[str, pd.DataFrame], lang: str = "en") -> pd.DataFrame:
    """The main KPI's trend (the first of `trends`; all are in results.json) as a report shows it:
    period, answers, value, interval, change to the previous period, adjusted p-value, significant,
    too few answers."""
    cols = [PERIOD, "n", "value", "ci_low", "ci_high", "change", "p_adjusted", "significant", "small"]
    return locale.display_table(trend_record(dict([next(iter(trends.items()))])), lang, columns=cols)


def trend_record(trends: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The `kpi_trends` tables stacked for results.json (`feedback.trend`): kpi, period, n, value,
    ci_low, ci_high, change, change_low, change_high, p_value, p_adjusted, significant, small."""
    cols = ["kpi", PERIOD, "n", "value", "ci_low", "ci_high", "change", "change_low", "change_high", "p_value",
            "p_adjusted", "significant", "small"]
    parts = [t.assign(kpi=k) for k, t in trends.items()]
    return pd.concat(parts, ignore_index=True).loc[:, cols] if parts else pd.DataFrame(columns=cols)


def describe_trend(trends: Mapping[str, pd.DataFrame], *, lang: str = "en") -> str:
    """Markdown sentences on the main KPI's `kpi_trend` table (the first of `trends`, {kpi: table}):
    first and last period with at least `min_n` answers (all periods when none has), and the
    changes that are significant (the others are called noise)."""
    kpi, trend = next(iter(trends.items()))
    label, de = LABELS[kpi], lang == "de"
    if trend.empty:
        return f"Keine datierten {label}-Antworten in der Auswahl." if de else f"No dated {label} answers in the selection."
    large = trend.loc[~trend["small"]] if (~trend["small"]).any() else trend
    first, last = large.iloc[0], large.iloc[-1]
    when = lambda row: locale.format_period(row[PERIOD], lang)  # noqa: E731
    at = lambda row: f"{_fmt(row['value'], kpi, lang)} {'im' if de else 'in'} {when(row)} (n = {_n(row['n'], lang)})"  # noqa: E731
    if len(large) == 1:
        sentence = f"Der {label} lag bei {at(first)}." if de else f"{label} was {at(first)}."
    else:
        sentence = (f"Der {label} ging von {at(first)} auf {at(last)}." if de else
                    f"{label} went from {at(first)} to {at(last)}.")
    sig = trend.loc[trend["significant"]]
    if len(sig):
        before = "zur Vorperiode" if de else "vs the period before"
        moves = ", ".join(f"{when(r)} ({_fmt_diff(r['change'], kpi, lang)} {before})" for _, r in sig.iterrows())
        sentence += (f" Signifikante Veränderungen zur Vorperiode: {moves}." if de else
                     f" Significant changes against the previous period: {moves}.")
    elif (~trend["small"]).sum() >= 2:
        sentence += (" Keine Veränderung zwischen aufeinanderfolgenden Perioden ist signifikant: das Auf und Ab liegt im "
                     "Rauschen der Stichprobe." if de else " No change between consecutive periods is significant: the "
                     "ups and downs are within sampling noise.")
    small = int(trend["small"].sum())
    if small:
        sentence += (f" {small} Periode(n) haben zu wenige Antworten für einen Vergleich." if de else
                     f" {small} period(s) have too few answers to be compared.")
    return sentence


def word_of_mouth(feedback: pd.DataFrame, *, period: str = "month", min_n: int = 100,
                  confidence: float = 0.95) -> pd.DataFrame:
    """Promoter and detractor shares per period (`metrics.word_of_mouth`); raises Missing without
    NPS answers, without dates or with one period only."""
    require(NPS in available_kpis(feedback), f"no {LABELS[NPS]} answers: promoters and detractors come from it",
            enable=ENABLE[NPS])
    check_periods(feedback, [NPS], period=period)
    return metrics.word_of_mouth(feedback[_present(feedback, [NPS, TIMESTAMP])], period=period, min_n=min_n,
                                 confidence=confidence)


# --- sample size -----------------------------------------------------------------------------
def sample_size_plan(feedback: pd.DataFrame, by: Sequence[str], kpi: str, *, margin: float = 5.0,
                     min_n: int = 100, confidence: float = 0.95) -> dict:
    """Answers needed per group for an interval of -/+ `margin` points of NPS (at the observed
    promoter and detractor shares) or CSAT (at the observed share), and the groups of `by` (known
    values) below `min_n`: {kpi, margin, needed, min_n, groups (count), small: DataFrame *by, n,
    missing}. Raises Missing when neither NPS nor CSAT was answered (a margin in points means
    nothing for CES)."""
    by = _list(by)
    require(kpi in (NPS, CSAT) and kpi in available_kpis(feedback),
            "no NPS or CSAT answers to plan a margin in points for", enable=f"{ENABLE[NPS]}; or {ENABLE[CSAT]}")
    if kpi == NPS:
        est = metrics.nps_estimate(feedback[NPS])
        needed = metrics.sample_size(margin, kpi=NPS, promoters=est["promoters"], detractors=est["detractors"],
                                     confidence=confidence)
    else:
        share = headline(feedback, CSAT, confidence=confidence)["value"]
        needed = metrics.sample_size(margin, kpi=CSAT, share=share, confidence=confidence)
    known = [c for c in by if c in feedback.columns]
    groups = (metrics.kpi_by(feedback, by, kpi=kpi, min_n=min_n).dropna(subset=by) if known and known == by
              else pd.DataFrame(columns=[*by, "n", "small"]))
    small = (groups.loc[groups["small"].astype(bool), [*by, "n"]]
             .assign(missing=lambda d: needed - d["n"]).reset_index(drop=True))
    return {"kpi": kpi, "margin": margin, "needed": needed, "min_n": min_n, "groups": len(groups), "small": small}


def sample_size_record(inputs: Inputs, by: Sequence[str], *, margin: float = 5.0, min_n: int = 100) -> dict:
    """results.json entry `sample_size`: the `sample_size_plan` of the main KPI."""
    return {"sample_size": sample_size_plan(inputs.feedback, by, inputs.kpi, margin=margin, min_n=min_n)}


def describe_sample_size(plan: Mapping, by: Sequence[str], *, lang: str = "en") -> str:
    """Sentences on a `sample_size_plan`: answers needed and which groups fall short by how many."""
    by, kpi, de = _list(by), plan["kpi"], lang == "de"
    margin, needed = locale.format_number(plan["margin"], lang), _n(plan["needed"], lang)
    unit = ("Punkte" if kpi == NPS else "Prozentpunkte") if de else ("points" if kpi == NPS else "percentage points")
    sentence = (f"Ein {LABELS[kpi]} auf ±{margin} {unit} genau braucht etwa **{needed} Antworten** je Gruppe." if de else
                f"{'An' if kpi == NPS else 'A'} {LABELS[kpi]} within ±{margin} {unit} needs about **{needed} answers** "
                "per group.")
    small = plan["small"]
    if not plan["groups"]:
        return sentence
    if small.empty:
        return sentence + (f" Jede Gruppe von {' / '.join(by)} hat mindestens `min_answers` = {plan['min_n']} Antworten."
                           if de else f" Every group of {' / '.join(by)} has at least `min_answers` = {plan['min_n']} "
                           "answers.")
    names = group_names(small, by, lang)
    more = "weitere nötig" if de else "more needed"
    items = ", ".join(f"{names[i]} (n = {_n(small.loc[i, 'n'], lang)}, {_n(small.loc[i, 'missing'], lang)} {more})"
                      for i in small.index[:8]) + (" ..." if len(small) > 8 else "")
    return sentence + (f" {len(small)} Gruppe(n) haben weniger als `min_answers` = {plan['min_n']} Antworten: {items}."
                       if de else f" {len(small)} group(s) have fewer than `min_answers` = {plan['min_n']} answers: "
                       f"{items}.")


# --- findings ------------------------------------------------------------------------------------
def describe_findings(results: Mapping, inputs: Inputs, *, group_by: Sequence[str], min_n: int = 100,
                      lang: str = "en") -> str:
    """The findings a manager reads first, as Markdown bullets from what the sections recorded in
    `results`: the main KPI with its interval, the groups that differ significantly, the trend,
    the theme detractors raise most, and the comments' sentiment with how well it was measured
    (only when the sentiment beats always answering the most frequent class)."""
    kpi, de = inputs.kpi, lang == "de"
    points = []
    if kpi in results:
        points.append(describe_estimate(results[kpi], kpi, min_n=min_n, lang=lang))
    cut = results.get("by_segment")
    if isinstance(cut, pd.DataFrame) and len(cut):
        names = group_names(cut, group_by, lang)
        sig = cut.loc[~cut["small"] & cut["significant"]].sort_values("diff_vs_rest", kind="mergesort")
        rest = "zum Rest" if de else "vs the rest"
        if len(sig):
            items = ", ".join(f"**{names[i]}** {_fmt(sig.loc[i, 'value'], kpi, lang)} "
                              f"({_fmt_diff(sig.loc[i, 'diff_vs_rest'], kpi, lang)} {rest})" for i in sig.index)
            points.append(f"Signifikant anders als der Rest: {items}." if de else
                          f"Significantly different from the rest: {items}.")
        else:
            points.append(f"Keine Gruppe nach {' / '.join(_list(group_by))} unterscheidet sich signifikant im {LABELS[kpi]}."
                          if de else f"No {' / '.join(_list(group_by))} differs significantly in {LABELS[kpi]}.")
    trend = results.get("trend")
    if isinstance(trend, pd.DataFrame) and trend["kpi"].eq(kpi).any():
        points.append(describe_trend({kpi: trend.loc[trend["kpi"].eq(kpi)].reset_index(drop=True)}, lang=lang))
    gap = results.get("themes")
    if isinstance(gap, pd.DataFrame) and len(gap):
        points.append(text.describe_themes(gap, top=2, lang=lang))
    if sentiment.trusted(inputs.learned):
        points.append(describe_sentiment(inputs, lang=lang) + " " + describe_sentiment_quality(inputs.learned, lang=lang))
    if not points:
        return "Die Daten tragen keine Befunde." if de else "The data support no finding."
    return "\n".join(f"- {p}" for p in points if p)


# --- formatting ----------------------------------------------------------------------------------
def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _fmt(value, kpi: str, lang: str = "en") -> str:
    """A KPI value: NPS signed with 1 decimal (+12.3), CSAT in % (71.2%), CES with 2 decimals (5.07)."""
    if _missing(value):
        return _texts(lang)["words"]["missing"]
    if kpi == CES:
        return locale.format_number(value, lang, decimals=2)
    if kpi == NPS:
        return locale.format_number(value, lang, decimals=1, sign=True)
    return locale.format_percent(value, lang, share=False)


def _fmt_diff(value, kpi: str, lang: str = "en") -> str:
    """A difference of a KPI: '+0.25' (CES) or '+3.1 points'."""
    if kpi == CES:
        return locale.format_number(value, lang, decimals=2, sign=True)
    return f"{locale.format_number(value, lang, decimals=1, sign=True)} {'Punkte' if lang == 'de' else 'points'}"
