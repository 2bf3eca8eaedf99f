"""The figures of stage 07, drawn with `cxlib.figures` (seaborn, house style), in English or German:
occasions due, response by occasion of the send, contact fatigue and the disversion rate per month.
Each takes the stage's tidy table and returns the Figure; the title states the finding, the caption
n and the definition.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from cxlib import figures, locale
from cxlib.occasions import calendar_day


def _t(key: str, lang: str, **values) -> str:
    return locale.text(f"occasions.{key}", lang, **values)


def counts_figure(counts: pd.DataFrame, *, horizon_days: int, as_of, lang: str = "en") -> Figure:
    """Bars: customers with each occasion due in the horizon (all customers), largest first.
    In: `occasions.occasion_counts` (occasion, label, by, customers)."""
    totals = counts.loc[counts["by"] == "all"].sort_values("customers", ascending=False, kind="stable")
    top = totals.iloc[0]
    shown = totals.assign(_n=totals["customers"].map(lambda v: locale.format_number(v, lang)))
    return figures.bars(shown, category="label", value="customers", bar_labels="_n", lang=lang,
                        title=_t("counts.figure_title", lang, horizon_days=horizon_days, top=top["label"],
                                 top_n=locale.format_number(top["customers"], lang)),
                        value_label=_t("counts.figure_axis", lang), n=int(totals["customers"].sum()),
                        definition=_t("counts.figure_definition", lang, horizon_days=horizon_days,
                                      as_of=locale.format_date(calendar_day(as_of), lang)))


def relevance_figure(by_occasion: pd.DataFrame, *, confidence: float = 0.95, lang: str = "en") -> Figure:
    """Response rate (%) per occasion of the send with its interval; the other sends as the
    reference line. In: `relevance.response_by_occasion` (occasion, label, sends, rate, ci_low, ci_high)."""
    other = by_occasion.loc[by_occasion["occasion"] == "other"].iloc[0]
    shown = by_occasion.loc[by_occasion["occasion"] != "other"]
    rows = shown.assign(_label=[f"{label} (n = {locale.format_number(n, lang)})" for label, n in zip(shown["label"], shown["sends"])],
                        _rate=100 * shown["rate"], _low=100 * shown["ci_low"], _high=100 * shown["ci_high"])
    other_rate = locale.format_percent(other["rate"], lang)
    return figures.interval_plot(rows, label="_label", value="_rate", low="_low", high="_high", significant=None, small=None,
                                 reference=100 * float(other["rate"]), lang=lang,
                                 title=_t("relevance.figure_title", lang, other_rate=other_rate),
                                 xlabel=_t("relevance.figure_axis", lang), n=int(by_occasion["sends"].sum()),
                                 definition=_t("relevance.figure_definition", lang, level=locale.format_number(100 * confidence, lang)))


def fatigue_figure(bands: pd.DataFrame, *, fatigue_days: float, slope: Mapping, confidence: float = 0.95,
                   lang: str = "en") -> Figure:
    """Bars: response rate (%) by the number of earlier sends in the fatigue window, with intervals.
    In: `relevance.fatigue` (band, sends, rate, ci_low, ci_high) and `relevance.fatigue_slope`."""
    shown = bands.loc[bands["sends"] > 0]
    rows = shown.assign(_rate=100 * shown["rate"], _low=100 * shown["ci_low"], _high=100 * shown["ci_high"])
    days = locale.format_number(fatigue_days, lang)
    change = locale.format_percent(slope["rate_ratio_per_contact"] - 1, lang, decimals=0, sign=True)
    return figures.bars(rows, category="band", value="_rate", low="_low", high="_high", orient="v", lang=lang,
                        title=_t("fatigue.figure_title", lang, days=days, change=change),
                        value_label=_t("fatigue.figure_axis", lang), category_label=_t("fatigue.figure_category", lang, days=days),
                        n=int(shown["sends"].sum()),
                        definition=_t("fatigue.figure_definition", lang, level=locale.format_number(100 * confidence, lang)))


def disversion_figure(monthly: pd.DataFrame, trend: Mapping, *, min_orders: int, window_days: int,
                      confidence: float = 0.95, lang: str = "en") -> Figure:
    """The disversion rate (%) per month with its interval band. In: `disversion.disversion_by_month`
    (month, customers, rate, ci_low, ci_high) and `disversion.disversion_trend`."""
    rows = monthly.assign(_month=monthly["month"].astype("str"), _rate=100 * monthly["rate"],
                          _low=100 * monthly["ci_low"], _high=100 * monthly["ci_high"])
    word = _t("disversion.rose" if trend["difference"] > 0 else "disversion.fell", lang)
    return figures.trend(rows, x="_month", value="_rate", low="_low", high="_high", lang=lang,
                         title=_t("disversion.figure_title", lang, word=word, first=locale.format_percent(trend["first_rate"], lang),
                                  last=locale.format_percent(trend["last_rate"], lang)),
                         xlabel=_t("disversion.figure_x", lang), ylabel=_t("disversion.figure_axis", lang),
                         n=int(monthly["customers"].iloc[-1]),
                         definition=_t("disversion.figure_definition", lang, min_orders=min_orders, window_days=window_days,
                                       level=locale.format_number(100 * confidence, lang)))
