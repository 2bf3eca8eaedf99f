"""The figures of the voice-of-the-customer report (stage 02): each turns the table a section
computed into the tidy frame and the texts of one `cxlib.figures` function (seaborn, house style),
in English or German (`lang`). The title states the finding, n and the definition go into the
caption.

    voice_figures.groups_figure(cuts["nps"], ["segment"], "nps", overall=results["nps"], min_n=100, lang="de")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import figures, locale, style
from cxlib.metrics import LABELS, PERIOD
from cxlib.voice import _fmt, _list, group_names
from cxlib.voice_comments import _n, method_note

C = style.COLOURS
TONES = ("significant", "ranked", "small")      # a group's bar: differs from the rest, compared, too few answers
TONE_COLOURS = {"significant": C["highlight"], "ranked": C["primary"], "small": C["neutral"]}


def _texts(lang: str) -> dict:
    """The stage's texts in `lang` (`cxlib/locales/feedback.<lang>.yml`)."""
    return locale.texts(lang)["feedback"]


def _figure_texts(lang: str) -> dict:
    """Titles, captions and legend words of the stage's figures in `lang`."""
    return _texts(lang)["figures"]


def _period_word(period: str, lang: str) -> str:
    return _texts(lang)["period_words"].get(period, period)


def _pct(value, lang: str) -> str:
    return locale.format_percent(value, lang, decimals=0, share=False)


# --- KPIs by group -------------------------------------------------------------------------------
def cut_title(table: pd.DataFrame, by: Sequence[str], kpi: str, *, lang: str = "en") -> str:
    """Title of the cut chart that states the finding: how many groups differ and the range."""
    t, names = _figure_texts(lang), group_names(table, by, lang)
    by_text = " / ".join(_list(by))
    ranked = table.loc[table["rank"].notna()].sort_values("value", kind="mergesort")
    if len(ranked) < 2:
        return t["cut_few"].format(kpi=LABELS[kpi], by=by_text)
    low, high = ranked.index[0], ranked.index[-1]
    return t["cut"].format(kpi=LABELS[kpi], by=by_text, sig=int(table["significant"].sum()), ranked=len(ranked),
                           low=_fmt(table.loc[low, "value"], kpi, lang), low_name=names[low],
                           high=_fmt(table.loc[high, "value"], kpi, lang), high_name=names[high])


def group_bars(table: pd.DataFrame, by: Sequence[str], *, min_n: int, lang: str = "en") -> pd.DataFrame:
    """Bars of a `kpi_by` table, highest value first: group (label), n, value, ci_low, ci_high and
    tone (significantly different from the rest / not / fewer than `min_n` answers, in words)."""
    words = {k: v.format(min_n=min_n) for k, v in _figure_texts(lang)["tones"].items()}
    tone = np.select([table["small"].astype(bool), table["significant"].fillna(False).astype(bool)],
                     ["small", "significant"], default="ranked")
    return (table.assign(group=group_names(table, by, lang), tone=pd.Series(tone, index=table.index).map(words))
            .sort_values("value", ascending=False, kind="mergesort")
            .loc[:, ["group", "n", "value", "ci_low", "ci_high", "tone"]].reset_index(drop=True))


def groups_figure(cuts: Mapping[str, pd.DataFrame], by: Sequence[str], *, overall: Mapping | None = None, min_n: int,
                  lang: str = "en"):
    """The main KPI per group with 95% intervals (the first `kpi_by` table of `cuts`, {kpi: table}):
    orange where it differs significantly from the rest, grey with fewer than `min_n` answers; a
    dashed line at all answers (`overall`: {kpi: {value, ...}}, e.g. the results)."""
    kpi, table = next(iter(cuts.items()))
    t = _figure_texts(lang)
    words = {k: v.format(min_n=min_n) for k, v in t["tones"].items()}
    return figures.bars(
        group_bars(table, by, min_n=min_n, lang=lang), category="group", value="value", low="ci_low", high="ci_high",
        tone="tone", colours={words[k]: TONE_COLOURS[k] for k in TONES},
        reference=((overall or {}).get(kpi) or {}).get("value"), reference_label=t["overall"], title=cut_title(table, by, kpi, lang=lang),
        value_label=_texts(lang)["axes"][kpi], n=int(table["n"].sum()),
        definition=t["cut_def"].format(definition=_texts(lang)["definitions"][kpi], min_n=min_n), lang=lang)


# --- over time -----------------------------------------------------------------------------------
def trend_title(trend: pd.DataFrame, kpi: str, period: str = "month", *, lang: str = "en") -> str:
    """Title of the trend chart that states the finding: significant changes, or none."""
    t, word = _figure_texts(lang), _period_word(period, lang)
    changes = int(trend["significant"].sum())
    return (t["trend_sig"] if changes else t["trend_flat"]).format(kpi=LABELS[kpi], period=word, changes=changes)


def trend_figure(trends: Mapping[str, pd.DataFrame], *, period: str = "month", min_n: int, lang: str = "en"):
    """The main KPI per period (the first `kpi_trend` table of `trends`, {kpi: table}) with its 95%
    interval band, rings on significant changes and grey points where fewer than `min_n` answers."""
    kpi, trend = next(iter(trends.items()))
    texts, word = _texts(lang), _period_word(period, lang)
    return figures.trend(
        trend, x=PERIOD, value="value", low="ci_low", high="ci_high", significant="significant", small="small",
        min_n=min_n, title=trend_title(trend, kpi, period, lang=lang), xlabel=word, ylabel=texts["axes"][kpi],
        n=int(trend["n"].sum()),
        definition=texts["figures"]["trend_def"].format(definition=texts["definitions"][kpi], period=word), lang=lang)


def word_of_mouth_title(wom: pd.DataFrame, *, lang: str = "en") -> str:
    """Promoter and detractor shares of the first and last period with enough answers (all periods
    when none has)."""
    ends = wom.loc[~wom["small"]] if (~wom["small"]).any() else wom
    first, last = ends.iloc[0], ends.iloc[-1]
    return _figure_texts(lang)["wom"].format(p0=_pct(first["promoters"], lang), p1=_pct(last["promoters"], lang),
                                     d0=_pct(first["detractors"], lang), d1=_pct(last["detractors"], lang),
                                     first=locale.format_period(first[PERIOD], lang),
                                     last=locale.format_period(last[PERIOD], lang))


def word_of_mouth_rows(wom: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """Tidy rows of a `word_of_mouth` table: period, group (promoters / detractors in words), share,
    low, high, small."""
    names = _texts(lang)["comments"]["words"]["nps_group"]
    return pd.concat([pd.DataFrame({PERIOD: wom[PERIOD], "group": names[key[:-1]], "share": wom[key],
                                    "low": wom[f"{key}_low"], "high": wom[f"{key}_high"], "small": wom["small"]})
                      for key in ("promoters", "detractors")], ignore_index=True)


def word_of_mouth_figure(wom: pd.DataFrame, *, period: str = "month", min_n: int, lang: str = "en"):
    """Promoter and detractor shares per period with their 95% Wilson intervals (grey points:
    fewer than `min_n` answers)."""
    names, word = _texts(lang)["comments"]["words"]["nps_group"], _period_word(period, lang)
    return figures.trend(
        word_of_mouth_rows(wom, lang=lang), x=PERIOD, value="share", low="low", high="high", series="group",
        colours={names["promoter"]: C["positive"], names["detractor"]: C["negative"]}, small="small", min_n=min_n,
        title=word_of_mouth_title(wom, lang=lang), xlabel=word, ylabel=_figure_texts(lang)["share"],
        n=int(wom["n"].sum()),
        definition=_figure_texts(lang)["wom_def"].format(period=word, min_n=min_n), lang=lang)


# --- comments ------------------------------------------------------------------------------------
def sentiment_title(shares: pd.DataFrame, *, lang: str = "en") -> str:
    """The negative share of detractors' comments and the positive share of promoters'."""
    t = _figure_texts(lang)
    parts = ([t["sent_neg"].format(share=_pct(shares.loc["detractor", "negative"], lang))] if "detractor" in shares.index
             else []) + ([t["sent_pos"].format(share=_pct(shares.loc["promoter", "positive"], lang))]
                         if "promoter" in shares.index else [])
    return ", ".join(parts) or t["sent_none"]


def sentiment_figure(shares: pd.DataFrame, learned: Mapping, *, lang: str = "en"):
    """Negative / neutral / positive shares of the comments per NPS group (`voice_comments.sentiment_shares`)."""
    words = _texts(lang)["comments"]["words"]
    rows = (shares.drop(columns="n").rename_axis(index="group").reset_index()
            .melt(id_vars="group", var_name="sentiment", value_name="share")
            .assign(group=lambda d: d["group"].map(words["nps_group"]),
                    sentiment=lambda d: d["sentiment"].map(words["sentiment"])))
    return figures.stacked_shares(
        rows, category="group", part="sentiment", value="share",
        colours=dict(zip((words["sentiment"][s] for s in ("negative", "neutral", "positive")),
                         (C["negative"], C["neutral"], C["positive"]))),
        title=sentiment_title(shares, lang=lang), value_label=_figure_texts(lang)["comments"], n=int(shares["n"].sum()),
        definition=_figure_texts(lang)["sent_def"].format(method=method_note(learned, lang)), lang=lang)


def themes_title(gap: pd.DataFrame, *, lang: str = "en") -> str:
    """The theme detractors mention most more often than promoters, with both shares."""
    t = _figure_texts(lang)
    if gap.empty or gap["mentions"].sum() == 0:
        return t["theme_none"]
    top = gap.iloc[0]
    return t["theme"].format(theme=top["label"], det=_pct(top["detractor_share"], lang), pro=_pct(top["promoter_share"], lang))


def themes_figure(gap: pd.DataFrame, *, lang: str = "en"):
    """Share of detractors' and promoters' comments mentioning each theme (a `text.theme_gap` table),
    largest difference on top, rings where the difference is significant."""
    t, names = _figure_texts(lang), _texts(lang)["comments"]["words"]["nps_group"]
    first = gap.iloc[0] if len(gap) else None
    n = t["theme_n"].format(det=_n(first["detractors"], lang), pro=_n(first["promoters"], lang)) if first is not None else 0
    return figures.dumbbell(
        gap.loc[gap["mentions"] > 0], label="label", left="promoter_share", right="detractor_share",
        left_label=names["promoter"], right_label=names["detractor"], highlight="significant",
        highlight_label=t["ringed"], title=themes_title(gap, lang=lang), xlabel=t["mentions"], n=n,
        definition=t["theme_def"], lang=lang)

