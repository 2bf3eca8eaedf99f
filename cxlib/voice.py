"""Voice of the customer (stage 02_feedback): which KPIs and cuts the feedback supports, in words.

The statistics come from `metrics`; this module decides what the data can show and says it.
A function a report section calls raises `schema.Missing` (what is missing, which canonical
column would enable it) when the data cannot support that section: nobody answered a KPI's
question, no dates or only one period, one segment only, no comments. Shared inputs come from
functions that never raise (`available_kpis`, `main_kpi`, `comments`, `answered_span`).

    kpis = voice.available_kpis(feedback)                   # ["csat"] for a ratings table
    voice.headline(feedback, "nps")                         # Missing("no NPS answers", enable="feedback.nps ...")
    voice.kpi_cuts(feedback, ["segment"], kpis)             # Missing("all answers come from one segment (private)")
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import metrics
from .metrics import DEFINITIONS, KPIS, LABELS, PERIOD
from .schema import (CES, CHANNEL, COMMENT, CSAT, CSAT_MAX, LANGUAGE, LANGUAGE_NAMES, NPS, REGION, SEGMENT, SURVEY,
                     TIMESTAMP, TOUCHPOINT, require)

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
STATUS = ("significant", "ranked", "not ranked", "small")   # a group's bar in the cut chart


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


OVERALL = "overall"     # touchpoint of the overall rating in a ratings table (the other rows rate aspects)


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


def describe_overall(answers: pd.DataFrame, kept: pd.DataFrame, *, col_touchpoint: str = TOUCHPOINT) -> str:
    """One sentence when `overall_answers` kept only the overall ratings of `answers`: how many, and
    how many aspect ratings stay out of the KPIs ('' when all answers are kept)."""
    if len(kept) == len(answers):
        return ""
    aspects = answers.loc[~answers.index.isin(kept.index), col_touchpoint].dropna().nunique()
    return (f"The data rate {aspects} aspect(s) besides the overall experience: the KPIs below are read from the "
            f"{len(kept):,} overall ratings; the {len(answers) - len(kept):,} aspect ratings are left out here "
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


def headline_table(results: dict) -> pd.DataFrame:
    """The KPIs among the keys of `results` (each {value, ci_low, ci_high, n}) as a table a reader
    reads: KPI, answers, value, 95% interval, definition; numbers as text at the KPI's precision.
    Raises Missing when none is there."""
    require(any(k in results for k in KPIS), NO_KPI, enable=NO_KPI_ENABLE)
    rows = [{"KPI": LABELS[k], "answers": f"{results[k]['n']:,}", "value": _fmt(results[k]["value"], k),
             "95% interval": _interval(results[k], k), "definition": DEFINITIONS[k]}
            for k in KPIS if k in results]
    return pd.DataFrame(rows, columns=["KPI", "answers", "value", "95% interval", "definition"])


def describe_headline(results: dict, *, min_n: int = 100) -> str:
    """Sentences on the KPIs among the keys of `results` (see `describe_estimate`)."""
    present = [k for k in KPIS if k in results]
    if not present:
        return f"The selection holds {NO_KPI}."
    return " ".join(describe_estimate(results[k], k, min_n=min_n) for k in present)


# --- cuts by group -----------------------------------------------------------------------------
def _source(column: str) -> str:
    return SOURCES.get(column, f"feedback.{column} or customers.{column}")


def _scored(feedback: pd.DataFrame, kpis: Sequence[str]) -> pd.DataFrame:
    require(len(kpis), NO_KPI, enable=NO_KPI_ENABLE)
    return feedback.loc[feedback[list(kpis)].notna().any(axis=1).to_numpy()]


def check_cut(feedback: pd.DataFrame, by: Sequence[str], kpis: Sequence[str]) -> None:
    """Raise Missing unless the answers to `kpis` fall into two or more known groups of `by`
    (a column absent or empty, or one value only: one segment is no comparison)."""
    by = [by] if isinstance(by, str) else list(by)
    require(by, "no column to cut by", enable="the parameter group_by")
    scored = _scored(feedback, kpis)
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
    by = [by] if isinstance(by, str) else list(by)
    check_cut(feedback, by, kpis)
    return {k: metrics.kpi_by(feedback, by, kpi=k, min_n=min_n, confidence=confidence, alpha=alpha) for k in kpis}


def cut_chart(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Bars of a `kpi_by` table, lowest value first: group (label), n, value, err_low, err_high
    (distances to the interval bounds, never negative; 0 without an interval) and status:
    'significant' (differs from the rest), 'ranked', 'not ranked' (no recorded value) or 'small'
    (fewer than min_n answers: greyed)."""
    by = [by] if isinstance(by, str) else list(by)
    status = np.select([table["small"], table["significant"], table["rank"].notna()],
                       ["small", "significant", "ranked"], default="not ranked")
    return (table.assign(group=_group_names(table, by), status=status,
                         err_low=(table["value"] - table["ci_low"]).clip(lower=0).fillna(0),
                         err_high=(table["ci_high"] - table["value"]).clip(lower=0).fillna(0))
            .sort_values("value", kind="mergesort")
            .loc[:, ["group", "n", "value", "err_low", "err_high", "status"]].reset_index(drop=True))


def cut_title(table: pd.DataFrame, by: Sequence[str], kpi: str) -> str:
    """Title of the cut chart that states the finding."""
    by = [by] if isinstance(by, str) else list(by)
    label, names = LABELS[kpi], _group_names(table, by)
    ranked = table.loc[table["rank"].notna()].sort_values("value", kind="mergesort")
    if len(ranked) < 2:
        return f"{label} by {' / '.join(by)}: fewer than two groups are large enough to compare"
    low, high = ranked.index[0], ranked.index[-1]
    return (f"{label} by {' / '.join(by)}: {int(table['significant'].sum())} of {len(ranked)} groups differ "
            f"significantly from the rest\nfrom {_fmt(table.loc[low, 'value'], kpi)} ({names[low]}) to "
            f"{_fmt(table.loc[high, 'value'], kpi)} ({names[high]})")


def cut_table(cuts: dict[str, pd.DataFrame], by: Sequence[str]) -> pd.DataFrame:
    """The `kpi_cuts` tables stacked for reading: KPI, the group columns, answers, value, 95% low,
    95% high, vs rest, p adjusted, significant, rank, small; rounded to the KPI's precision."""
    by = [by] if isinstance(by, str) else list(by)
    names = {"n": "answers", "ci_low": "95% low", "ci_high": "95% high", "diff_vs_rest": "vs rest",
             "p_adjusted": "p adjusted"}
    parts = [t.drop(columns=["p_value"]).round({"value": _digits(k), "ci_low": _digits(k), "ci_high": _digits(k),
                                                 "diff_vs_rest": _digits(k), "p_adjusted": 3})
             .assign(KPI=LABELS[k]) for k, t in cuts.items()]
    cols = ["KPI", *by, "answers", "value", "95% low", "95% high", "vs rest", "p adjusted", "significant", "rank", "small"]
    if not parts:
        return pd.DataFrame(columns=cols)
    table = pd.concat(parts, ignore_index=True).rename(columns=names)
    return _readable(table.assign(**{c: table[c].astype("str").fillna("(none)") for c in by}).loc[:, cols])


# --- over time -------------------------------------------------------------------------------
def check_periods(feedback: pd.DataFrame, kpis: Sequence[str], *, period: str = "month") -> None:
    """Raise Missing unless the answers to `kpis` are dated and span two or more periods
    (`feedback` after `metrics.add_period`)."""
    scored = _scored(feedback, kpis)
    periods = scored[PERIOD].dropna().unique() if PERIOD in scored.columns else []
    require(len(periods), "the answers have no dates", enable="feedback.timestamp")
    require(len(periods) >= 2, f"all dated answers fall in one {period} ({periods[0]})",
            enable=f"feedback.timestamp spanning two or more {period}s")


def kpi_trends(feedback: pd.DataFrame, kpis: Sequence[str], *, period: str = "month", min_n: int = 100,
               confidence: float = 0.95, alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """{kpi: metrics.kpi_trend table} per period for each of `kpis`; raises Missing without dates or
    with one period only (`check_periods`)."""
    check_periods(feedback, kpis, period=period)
    return {k: metrics.kpi_trend(feedback, kpi=k, period=period, min_n=min_n, confidence=confidence, alpha=alpha)
            for k in kpis}


def trend_title(trend: pd.DataFrame, kpi: str, period: str = "month") -> str:
    """Title of the trend chart that states the finding."""
    changes = int(trend["significant"].sum())
    if changes:
        return f"{LABELS[kpi]} per {period}: {changes} significant change(s) between consecutive {period}s"
    return f"{LABELS[kpi]} per {period} moves within sampling noise: no significant change"


def trend_table(trends: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The `kpi_trends` tables stacked for reading: KPI, period, answers, value, 95% low, 95% high,
    change, p adjusted, significant, small; rounded to the KPI's precision."""
    cols = ["KPI", PERIOD, "answers", "value", "95% low", "95% high", "change", "p adjusted", "significant", "small"]
    parts = [t.round({"value": _digits(k), "ci_low": _digits(k), "ci_high": _digits(k), "change": _digits(k),
                      "p_adjusted": 3}).assign(KPI=LABELS[k]) for k, t in trends.items()]
    if not parts:
        return pd.DataFrame(columns=cols)
    return _readable(pd.concat(parts, ignore_index=True)
                     .rename(columns={"n": "answers", "ci_low": "95% low", "ci_high": "95% high", "p_adjusted": "p adjusted"})
                     .loc[:, cols])


def trend_record(trends: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The `kpi_trends` tables stacked for results.json (`feedback.trend`): kpi, period, n, value,
    ci_low, ci_high, change, change_low, change_high, p_value, p_adjusted, significant, small."""
    cols = ["kpi", PERIOD, "n", "value", "ci_low", "ci_high", "change", "change_low", "change_high", "p_value",
            "p_adjusted", "significant", "small"]
    parts = [t.assign(kpi=k) for k, t in trends.items()]
    return pd.concat(parts, ignore_index=True).loc[:, cols] if parts else pd.DataFrame(columns=cols)


def word_of_mouth(feedback: pd.DataFrame, *, period: str = "month", min_n: int = 100,
                  confidence: float = 0.95) -> pd.DataFrame:
    """Promoter and detractor shares per period (`metrics.word_of_mouth`); raises Missing without
    NPS answers, without dates or with one period only."""
    require(NPS in available_kpis(feedback), f"no {LABELS[NPS]} answers: promoters and detractors come from it",
            enable=ENABLE[NPS])
    check_periods(feedback, [NPS], period=period)
    return metrics.word_of_mouth(feedback, period=period, min_n=min_n, confidence=confidence)


def word_of_mouth_title(wom: pd.DataFrame) -> str:
    """Title of the word-of-mouth chart: promoter and detractor shares of the first and last period
    with at least min_n answers (all periods when none has)."""
    ends = wom.loc[~wom["small"]] if (~wom["small"]).any() else wom
    first, last = ends.iloc[0], ends.iloc[-1]
    return (f"Promoters {first['promoters']:.0f}% → {last['promoters']:.0f}%, detractors {first['detractors']:.0f}% → "
            f"{last['detractors']:.0f}% ({first[PERIOD]} to {last[PERIOD]})")


# --- sample size -----------------------------------------------------------------------------
def sample_size_plan(feedback: pd.DataFrame, by: Sequence[str], kpi: str, *, margin: float = 5.0,
                     min_n: int = 100, confidence: float = 0.95) -> dict:
    """Answers needed per group for an interval of -/+ `margin` points of NPS (at the observed
    promoter and detractor shares) or CSAT (at the observed share), and the groups of `by` (known
    values) below `min_n`: {kpi, margin, needed, min_n, groups (count), small: DataFrame *by, n,
    missing}. Raises Missing when neither NPS nor CSAT was answered (a margin in points means
    nothing for CES)."""
    by = [by] if isinstance(by, str) else list(by)
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


def describe_sample_size(plan: dict, by: Sequence[str]) -> str:
    """Sentences on a `sample_size_plan`: answers needed and which groups fall short by how many."""
    by = [by] if isinstance(by, str) else list(by)
    kpi = plan["kpi"]
    subject = f"An {LABELS[kpi]} within ±{plan['margin']:g} points" if kpi == NPS else \
        f"A {LABELS[kpi]} within ±{plan['margin']:g} percentage points"
    text = f"{subject} needs about **{plan['needed']:,} answers** per group."
    small = plan["small"]
    if not plan["groups"]:
        return text
    if small.empty:
        return text + f" Every group of {' / '.join(by)} has at least `min_n` = {plan['min_n']} answers."
    names = _group_names(small, by)
    items = ", ".join(f"{names[i]} (n = {int(small.loc[i, 'n']):,}, {int(small.loc[i, 'missing']):,} more needed)"
                      for i in small.index[:8])
    return text + (f" {len(small)} group(s) have fewer than `min_n` = {plan['min_n']} answers: {items}"
                   f"{' ...' if len(small) > 8 else ''}.")


# --- guards of the comment sections --------------------------------------------------------------
NO_KNOWN_LANGUAGE = "no German or English comments"
NO_KNOWN_LANGUAGE_ENABLE = "feedback.comment in German or English"
LANGUAGE_LABELS = {"de": "German", "en": "English"}
NPS_GROUPS = ("detractor", "passive", "promoter")


def language_table(comments: pd.DataFrame, languages: pd.Series, *, col_language: str = LANGUAGE) -> pd.DataFrame:
    """Comments per language for readers: language (German, English, or 'other' with the mapped
    codes, e.g. 'other (fr)'), comments, read ('themes and sentiment' or 'counted only'); most first.
    `languages` from `comment_languages`, aligned with `comments`.

        language_table(comments, pd.Series(["other", "en"])) -> [("English", 1, ...), ("other (fr)", 1, ...)]
    """
    if col_language in comments.columns:
        mapped = comments[col_language].astype("str").str.strip().str.lower().replace("", None)
        codes = ", ".join(sorted(mapped.loc[languages.eq("other").to_numpy()].dropna().unique()))
    else:
        codes = ""
    other = f"other ({codes})" if codes else "other"
    label = languages.map(LANGUAGE_LABELS).fillna(other)
    return (pd.DataFrame({"language": label.to_numpy(), "read": np.where(languages.isin(list(LANGUAGE_LABELS)),
                                                                        "themes and sentiment", "counted only")})
            .value_counts(["language", "read"]).rename("comments").reset_index()
            .sort_values(["comments", "language"], ascending=[False, True], kind="mergesort")
            .loc[:, ["language", "comments", "read"]].reset_index(drop=True))


def sentiment_table(categories: pd.Series, sentiments: pd.Series) -> pd.DataFrame:
    """Comments by NPS group (rows: detractor, passive, promoter, no NPS answer) and sentiment
    (columns: negative, neutral, positive, not scored = other language) with totals, labelled for
    readers; rows and columns without comments are left out (the total row only below two or more rows)."""
    group = pd.Series(categories.to_numpy(), dtype="object").fillna("no NPS answer")
    mood = pd.Series(sentiments.to_numpy(), dtype="object").fillna("not scored")
    rows = [g for g in (*NPS_GROUPS, "no NPS answer") if group.eq(g).any()]
    cols = [m for m in (*("negative", "neutral", "positive"), "not scored") if mood.eq(m).any()]
    table = pd.crosstab(group, mood).reindex(index=rows, columns=cols, fill_value=0)
    table = table.assign(all=table.sum(axis=1))
    if len(table) > 1:
        table = pd.concat([table, table.sum().to_frame("all").T])
    return table.rename_axis(index="NPS group", columns=None).reset_index()


def describe_sentiment(sentiments: pd.Series, *, method: str = "lexicon sentiment") -> str:
    """One sentence on the sentiment of the German and English comments (`text.sentiment`'s or
    `sentiment.learn`'s sentiment column; missing = other language, not scored); `method` names
    how it was read (e.g. `sentiment.method_note(learned)`)."""
    scored = sentiments.dropna()
    if scored.empty:
        return "No comment is in German or English, so none is scored."
    shares = scored.value_counts(normalize=True).mul(100)
    parts = ", ".join(f"{shares.get(m, 0.0):.0f}% {m}" for m in ("positive", "neutral", "negative"))
    return f"Of {len(scored):,} German and English comments, {parts} ({method})."


def describe_languages(languages: pd.Series) -> str:
    """One sentence: how many comments the text analysis reads (German, English) and how many it
    only counts (other languages)."""
    read = int(languages.isin(list(LANGUAGE_LABELS)).sum())
    other = len(languages) - read
    if not other:
        return f"All {len(languages):,} comments are in German or English: themes and sentiment are read in all of them."
    if not read:
        return (f"None of the {len(languages):,} comments is in German or English: they are counted, but themes and "
                "sentiment are read only in these two languages.")
    return (f"{read:,} of {len(languages):,} comments are in German or English and are read for themes and sentiment; "
            f"{other:,} in other languages are counted only.")


def require_comments(comments: pd.DataFrame) -> None:
    """Raise Missing when there is no comment to analyse."""
    require(len(comments), "no comments in the selection", enable="feedback.comment")


def require_known_language(languages: pd.Series, known: Sequence[str] = ("de", "en")) -> None:
    """Raise Missing unless some comment is in a language the text analysis reads (`known`)."""
    require(languages.isin(list(known)).any(), NO_KNOWN_LANGUAGE, enable=NO_KNOWN_LANGUAGE_ENABLE)


def require_scored_comments(categories: pd.Series, sentiments: pd.Series,
                            needed: Sequence[str] = ("detractor", "passive", "promoter")) -> None:
    """Raise Missing unless German or English comments (a sentiment) come from each NPS category
    in `needed` (`categories` from `metrics.nps_category`, aligned with `sentiments`)."""
    require(sentiments.notna().any(), NO_KNOWN_LANGUAGE, enable=NO_KNOWN_LANGUAGE_ENABLE)
    scored = categories.loc[sentiments.notna().to_numpy()]
    require(scored.notna().any(), "no German or English comment comes with an NPS answer",
            enable="feedback.nps with feedback.comment")
    absent = [c for c in needed if not scored.eq(c).any()]
    require(not absent, f"no comment from {' or '.join(a + 's' for a in absent)} to compare",
            enable="feedback.nps with feedback.comment")


# --- words for the report ------------------------------------------------------------------------
def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _readable(table: pd.DataFrame, blank: str = "–") -> pd.DataFrame:
    """A table for readers: a missing number (no interval, not tested, no rank) shows `blank`, not nan."""
    return table.astype("object").where(table.notna(), blank)


def _digits(kpi: str) -> int:
    return 2 if kpi == CES else 1


def _fmt(value: float, kpi: str) -> str:
    if _missing(value):
        return "n/a"
    if kpi == CES:
        return f"{value:.2f}"
    return f"{value:+.1f}" if kpi == NPS else f"{value:.1f}%"


def _interval(est: dict, kpi: str) -> str:
    if _missing(est.get("ci_low")) or _missing(est.get("ci_high")):
        return "too few answers"
    return f"{_fmt(est['ci_low'], kpi)} to {_fmt(est['ci_high'], kpi)}"


def _fmt_diff(value: float, kpi: str) -> str:
    return f"{value:+.2f}" if kpi == CES else f"{value:+.1f} points"


def _group_names(table: pd.DataFrame, by: list[str]) -> pd.Series:
    """'north / private' per row of a grouped table; missing values read '(none)'."""
    parts = [table[c].astype("str").fillna("(none)") for c in by]
    return parts[0].str.cat(parts[1:], sep=" / ") if len(parts) > 1 else parts[0]


def describe_estimate(est: dict, kpi: str = NPS, *, min_n: int = 100) -> str:
    """One sentence on a KPI estimate: value, interval, n, and a warning when n < min_n.

        describe_estimate({"value": -15, "ci_low": -31.0, "ci_high": 1.8, "n": 100}, "nps")
    """
    label = LABELS[kpi]
    if not est.get("n"):
        return f"No {label} answers in the selection."
    if _missing(est.get("ci_low")) or _missing(est.get("ci_high")):
        text = f"{label} is {_fmt(est['value'], kpi)} (n = {est['n']:,}: too few answers for an interval)."
    else:
        text = (f"{label} is {_fmt(est['value'], kpi)} (95% interval {_fmt(est['ci_low'], kpi)} to "
                f"{_fmt(est['ci_high'], kpi)}, n = {est['n']:,}).")
    if est["n"] < min_n:
        text += f" With fewer than {min_n} answers this is indicative only."
    return text


def describe_groups(table: pd.DataFrame, by: Sequence[str], kpi: str = NPS, *, min_n: int = 100) -> str:
    """Markdown sentences on a `kpi_by` table: best and worst of the groups large enough, which
    differ significantly from the rest (after Benjamini-Hochberg), and which groups are too small."""
    label = LABELS[kpi]
    by = [by] if isinstance(by, str) else list(by)
    names = _group_names(table, by)
    name = lambda row: names[row.name]  # noqa: E731
    large = table.loc[~table["small"] & table["rank"].notna()].sort_values("value", ascending=False)
    unknown = table.loc[~table["small"] & table["rank"].isna()]
    small = table.loc[table["small"]]
    parts = []
    if len(large) >= 2:
        top, low = large.iloc[0], large.iloc[-1]
        parts.append(f"Of {len(large)} groups with at least {min_n} answers, **{name(top)}** has the highest "
                     f"{label} ({_fmt(top['value'], kpi)}, n = {top['n']:,}) and **{name(low)}** the lowest "
                     f"({_fmt(low['value'], kpi)}, n = {low['n']:,}).")
    elif len(large) == 1:
        only = large.iloc[0]
        parts.append(f"Only **{name(only)}** has at least {min_n} answers ({label} {_fmt(only['value'], kpi)}): "
                     "no group is ranked.")
    else:
        parts.append(f"No group has {min_n} answers or more: no group is compared or ranked.")
    sig = table.loc[~table["small"] & table["significant"]]
    if len(sig):
        items = (names[sig.index] + " (" + sig["diff_vs_rest"].map(lambda v: _fmt_diff(v, kpi)) + " vs the rest)").str.cat(sep=", ")
        parts.append(f"Significantly different from the rest of the sample (Benjamini-Hochberg, 5% FDR): {items}.")
    elif len(large) >= 2:
        parts.append("No group differs significantly from the rest of the sample after correcting for "
                     "multiple comparisons.")
    if len(unknown):
        parts.append(f"Answers without a recorded value ({names[unknown.index].str.cat(sep=', ')}, "
                     f"n = {int(unknown['n'].sum()):,}) are shown but not ranked.")
    if len(small):
        parts.append(f"{len(small)} group(s) have fewer than {min_n} answers and are shown greyed, "
                     f"not ranked: {names[small.index[:8]].str.cat(sep=', ')}"
                     f"{' ...' if len(small) > 8 else ''}.")
    return " ".join(parts)


def describe_trend(trend: pd.DataFrame, kpi: str = NPS) -> str:
    """Markdown sentences on a `kpi_trend` table without groups: first and last period with at
    least `min_n` answers (all periods when none has), and the changes that are significant (the
    others are called noise)."""
    label = LABELS[kpi]
    if trend.empty:
        return f"No dated {label} answers in the selection."
    large = trend.loc[~trend["small"]] if (~trend["small"]).any() else trend
    first, last = large.iloc[0], large.iloc[-1]
    if len(large) == 1:
        text = f"{label} was {_fmt(first['value'], kpi)} in {first[PERIOD]} (n = {first['n']:,})."
    else:
        text = (f"{label} went from {_fmt(first['value'], kpi)} in {first[PERIOD]} (n = {first['n']:,}) to "
                f"{_fmt(last['value'], kpi)} in {last[PERIOD]} (n = {last['n']:,}).")
    sig = trend.loc[trend["significant"]]
    if len(sig):
        moves = (sig[PERIOD].astype("str") + " (" + sig["change"].map(lambda v: _fmt_diff(v, kpi))
                 + " vs the period before)").str.cat(sep=", ")
        text += f" Significant changes against the previous period: {moves}."
    elif (~trend["small"]).sum() >= 2:
        text += " No change between consecutive periods is significant: the ups and downs are within sampling noise."
    small = int(trend["small"].sum())
    if small:
        text += f" {small} period(s) have too few answers to be compared."
    return text
