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
from cxlib.voice import AXES, DEFINITIONS, PERIOD_WORDS, _fmt, _list, group_names
from cxlib.voice_comments import WORDS, _n, method_note

C = style.COLOURS
TONES = ("significant", "ranked", "small")      # a group's bar: differs from the rest, compared, too few answers
TONE_COLOURS = {"significant": C["highlight"], "ranked": C["primary"], "small": C["neutral"]}
TEXTS = {
    "en": {"tones": {"significant": "significantly different from the rest", "ranked": "not significantly different",
                     "small": "fewer than {min_n} answers"},
           "overall": "all answers", "share": "share of answers (%)", "comments": "share of comments (%)",
           "mentions": "comments mentioning the theme (%)", "ringed": "significant difference",
           "cut_few": "{kpi} by {by}: fewer than two groups are large enough to compare",
           "cut": "{kpi} by {by}: {sig} of {ranked} groups differ significantly from the rest, from {low} ({low_name}) "
                  "to {high} ({high_name})",
           "cut_def": "{definition}; orange = significantly different from the rest (Benjamini–Hochberg, 5%), "
                      "grey = fewer than {min_n} answers",
           "trend_sig": "{kpi} per {period}: {changes} significant change(s) between consecutive {period}s",
           "trend_flat": "{kpi} per {period} moves within sampling noise: no significant change",
           "trend_def": "{definition}; change against the previous {period}, Benjamini–Hochberg 5%",
           "wom": "Promoters {p0} → {p1}, detractors {d0} → {d1} ({first} to {last})",
           "wom_def": "promoters = 9–10, detractors = 0–6 on the 0–10 NPS question; 95% Wilson intervals; "
                      "grey = {period}s with fewer than {min_n} answers",
           "sent_neg": "{share} of detractors' comments are negative", "sent_pos": "{share} of promoters' positive",
           "sent_none": "Sentiment of the comments by NPS group",
           "sent_def": "German and English comments with an NPS answer; sentiment {method}",
           "theme": "Detractors mention {theme} in {det} of their comments, promoters in {pro}",
           "theme_none": "No theme is mentioned in the comments",
           "theme_n": "{det} detractors, {pro} promoters with a German or English comment",
           "theme_def": "theme = keyword of config/taxonomy.yml (word prefix, umlauts folded) or the trained theme "
                        "model; ring: difference significant (z-test, Benjamini–Hochberg 5%)"},
    "de": {"tones": {"significant": "signifikant anders als der Rest", "ranked": "nicht signifikant anders",
                     "small": "weniger als {min_n} Antworten"},
           "overall": "alle Antworten", "share": "Anteil der Antworten (%)", "comments": "Anteil der Kommentare (%)",
           "mentions": "Kommentare, die das Thema nennen (%)", "ringed": "signifikanter Unterschied",
           "cut_few": "{kpi} nach {by}: weniger als zwei Gruppen sind groß genug für einen Vergleich",
           "cut": "{kpi} nach {by}: {sig} von {ranked} Gruppen weichen signifikant vom Rest ab, von {low} ({low_name}) "
                  "bis {high} ({high_name})",
           "cut_def": "{definition}; orange = signifikant anders als der Rest (Benjamini–Hochberg, 5 %), "
                      "grau = weniger als {min_n} Antworten",
           "trend_sig": "{kpi} je {period}: {changes} signifikante Veränderung(en) zwischen aufeinanderfolgenden Perioden",
           "trend_flat": "{kpi} je {period} bewegt sich im Rauschen der Stichprobe: keine signifikante Veränderung",
           "trend_def": "{definition}; Veränderung zur Vorperiode, Benjamini–Hochberg 5 %",
           "wom": "Promotoren {p0} → {p1}, Kritiker {d0} → {d1} ({first} bis {last})",
           "wom_def": "Promotoren = 9–10, Kritiker = 0–6 auf der NPS-Frage (0–10); 95-%-Wilson-Intervalle; "
                      "grau = Perioden mit weniger als {min_n} Antworten",
           "sent_neg": "{share} der Kommentare von Kritikern sind negativ", "sent_pos": "{share} der Promotoren positiv",
           "sent_none": "Stimmung der Kommentare nach NPS-Gruppe",
           "sent_def": "deutsche und englische Kommentare mit NPS-Antwort; Stimmung {method}",
           "theme": "Kritiker nennen {theme} in {det} ihrer Kommentare, Promotoren in {pro}",
           "theme_none": "Die Kommentare nennen kein Thema",
           "theme_n": "{det} Kritiker, {pro} Promotoren mit deutschem oder englischem Kommentar",
           "theme_def": "Thema = Stichwort aus config/taxonomy.yml (Wortanfang, Umlaute gefaltet) oder das trainierte "
                        "Themenmodell; Ring: Unterschied signifikant (z-Test, Benjamini–Hochberg 5 %)"},
}


def _pct(value, lang: str) -> str:
    return locale.format_percent(value, lang, decimals=0, share=False)


# --- KPIs by group -------------------------------------------------------------------------------
def cut_title(table: pd.DataFrame, by: Sequence[str], kpi: str, *, lang: str = "en") -> str:
    """Title of the cut chart that states the finding: how many groups differ and the range."""
    t, names = TEXTS[lang], group_names(table, by, lang)
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
    words = {k: v.format(min_n=min_n) for k, v in TEXTS[lang]["tones"].items()}
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
    t = TEXTS[lang]
    words = {k: v.format(min_n=min_n) for k, v in t["tones"].items()}
    return figures.bars(
        group_bars(table, by, min_n=min_n, lang=lang), category="group", value="value", low="ci_low", high="ci_high",
        tone="tone", colours={words[k]: TONE_COLOURS[k] for k in TONES},
        reference=((overall or {}).get(kpi) or {}).get("value"), reference_label=t["overall"], title=cut_title(table, by, kpi, lang=lang),
        value_label=AXES[lang][kpi], n=int(table["n"].sum()),
        definition=t["cut_def"].format(definition=DEFINITIONS[lang][kpi], min_n=min_n), lang=lang)


# --- over time -----------------------------------------------------------------------------------
def trend_title(trend: pd.DataFrame, kpi: str, period: str = "month", *, lang: str = "en") -> str:
    """Title of the trend chart that states the finding: significant changes, or none."""
    t, word = TEXTS[lang], PERIOD_WORDS[lang].get(period, period)
    changes = int(trend["significant"].sum())
    return (t["trend_sig"] if changes else t["trend_flat"]).format(kpi=LABELS[kpi], period=word, changes=changes)


def trend_figure(trends: Mapping[str, pd.DataFrame], *, period: str = "month", min_n: int, lang: str = "en"):
    """The main KPI per period (the first `kpi_trend` table of `trends`, {kpi: table}) with its 95%
    interval band, rings on significant changes and grey points where fewer than `min_n` answers."""
    kpi, trend = next(iter(trends.items()))
    word = PERIOD_WORDS[lang].get(period, period)
    return figures.trend(
        trend, x=PERIOD, value="value", low="ci_low", high="ci_high", significant="significant", small="small",
        min_n=min_n, title=trend_title(trend, kpi, period, lang=lang), xlabel=word, ylabel=AXES[lang][kpi],
        n=int(trend["n"].sum()), definition=TEXTS[lang]["trend_def"].format(definition=DEFINITIONS[lang][kpi],
                                                                            period=word), lang=lang)


def word_of_mouth_title(wom: pd.DataFrame, *, lang: str = "en") -> str:
    """Promoter and detractor shares of the first and last period with enough answers (all periods
    when none has)."""
    ends = wom.loc[~wom["small"]] if (~wom["small"]).any() else wom
    first, last = ends.iloc[0], ends.iloc[-1]
    return TEXTS[lang]["wom"].format(p0=_pct(first["promoters"], lang), p1=_pct(last["promoters"], lang),
                                     d0=_pct(first["detractors"], lang), d1=_pct(last["detractors"], lang),
                                     first=locale.format_period(first[PERIOD], lang),
                                     last=locale.format_period(last[PERIOD], lang))


def word_of_mouth_rows(wom: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """Tidy rows of a `word_of_mouth` table: period, group (promoters / detractors in words), share,
    low, high, small."""
    names = WORDS[lang]["nps_group"]
    return pd.concat([pd.DataFrame({PERIOD: wom[PERIOD], "group": names[key[:-1]], "share": wom[key],
                                    "low": wom[f"{key}_low"], "high": wom[f"{key}_high"], "small": wom["small"]})
                      for key in ("promoters", "detractors")], ignore_index=True)


def word_of_mouth_figure(wom: pd.DataFrame, *, period: str = "month", min_n: int, lang: str = "en"):
    """Promoter and detractor shares per period with their 95% Wilson intervals (grey points:
    fewer than `min_n` answers)."""
    names, word = WORDS[lang]["nps_group"], PERIOD_WORDS[lang].get(period, period)
    return figures.trend(
        word_of_mouth_rows(wom, lang=lang), x=PERIOD, value="share", low="low", high="high", series="group",
        colours={names["promoter"]: C["positive"], names["detractor"]: C["negative"]}, small="small", min_n=min_n,
        title=word_of_mouth_title(wom, lang=lang), xlabel=word, ylabel=TEXTS[lang]["share"], n=int(wom["n"].sum()),
        definition=TEXTS[lang]["wom_def"].format(period=word, min_n=min_n), lang=lang)


# --- comments ------------------------------------------------------------------------------------
def sentiment_title(shares: pd.DataFrame, *, lang: str = "en") -> str:
    """The negative share of detractors' comments and the positive share of promoters'."""
    t = TEXTS[lang]
    parts = ([t["sent_neg"].format(share=_pct(shares.loc["detractor", "negative"], lang))] if "detractor" in shares.index
             else []) + ([t["sent_pos"].format(share=_pct(shares.loc["promoter", "positive"], lang))]
                         if "promoter" in shares.index else [])
    return ", ".join(parts) or t["sent_none"]


def sentiment_figure(shares: pd.DataFrame, learned: Mapping, *, lang: str = "en"):
    """Negative / neutral / positive shares of the comments per NPS group (`voice_comments.sentiment_shares`)."""
    words = WORDS[lang]
    rows = (shares.drop(columns="n").rename_axis(index="group").reset_index()
            .melt(id_vars="group", var_name="sentiment", value_name="share")
            .assign(group=lambda d: d["group"].map(words["nps_group"]),
                    sentiment=lambda d: d["sentiment"].map(words["sentiment"])))
    return figures.stacked_shares(
        rows, category="group", part="sentiment", value="share",
        colours=dict(zip((words["sentiment"][s] for s in ("negative", "neutral", "positive")),
                         (C["negative"], C["neutral"], C["positive"]))),
        title=sentiment_title(shares, lang=lang), value_label=TEXTS[lang]["comments"], n=int(shares["n"].sum()),
        definition=TEXTS[lang]["sent_def"].format(method=method_note(learned, lang)), lang=lang)


def themes_title(gap: pd.DataFrame, *, lang: str = "en") -> str:
    """The theme detractors mention most more often than promoters, with both shares."""
    t = TEXTS[lang]
    if gap.empty or gap["mentions"].sum() == 0:
        return t["theme_none"]
    top = gap.iloc[0]
    return t["theme"].format(theme=top["label"], det=_pct(top["detractor_share"], lang), pro=_pct(top["promoter_share"], lang))


def themes_figure(gap: pd.DataFrame, *, lang: str = "en"):
    """Share of detractors' and promoters' comments mentioning each theme (a `text.theme_gap` table),
    largest difference on top, rings where the difference is significant."""
    t, names = TEXTS[lang], WORDS[lang]["nps_group"]
    first = gap.iloc[0] if len(gap) else None
    n = t["theme_n"].format(det=_n(first["detractors"], lang), pro=_n(first["promoters"], lang)) if first is not None else 0
    return figures.dumbbell(
        gap.loc[gap["mentions"] > 0], label="label", left="promoter_share", right="detractor_share",
        left_label=names["promoter"], right_label=names["detractor"], highlight="significant",
        highlight_label=t["ringed"], title=themes_title(gap, lang=lang), xlabel=t["mentions"], n=n,
        definition=t["theme_def"], lang=lang)

