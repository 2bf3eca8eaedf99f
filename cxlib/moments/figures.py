"""The figures of the moments-of-truth report: each turns the table a section computed into the
tidy frame and the texts of one `cxlib.figures` function (seaborn, house style), in the language
of the stage's settings (`inputs.settings.lang`; texts in `cxlib/locales/moments.<lang>.yml`).
The title states the finding, n and the definition go into the caption. A figure without
anything to draw is not made (None).

    moment_figures.impact_figure(impacts, inputs)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cxlib import figures, locale, metrics, style
from cxlib.moments.base import DIMENSION, LEVEL, MOMENT, num, say
from cxlib.moments.churn import churn_chart_rows, top_churn_moment
from cxlib.moments.complaints import complaint_chart_columns, top_breakout
from cxlib.moments.drivers import driver_name
from cxlib.moments.ranking import importance_performance

C = style.COLOURS


def _axis(kpi: str, lang: str) -> str:
    return say(f"figures.axis.{kpi}", lang) if kpi in ("nps", "csat", "ces") else metrics.LABELS.get(kpi, kpi)


def impact_figure(impacts: Mapping[str, pd.DataFrame], inputs):
    """Adjusted impact of each moment on the ranked KPI with 95% intervals (`figures.interval_plot`:
    red significantly negative, green positive, grey too few exposed answers); None when
    nothing could be estimated."""
    impact, st, lang = impacts.get(inputs.kpi), inputs.settings, inputs.lang
    if impact is None:
        return None
    labels = inputs.labels
    shown = (impact.dropna(subset=["adjusted"]).assign(label=lambda d: d[MOMENT].map(lambda m: labels.get(m, m)))
             .sort_values("adjusted", ascending=False, kind="stable"))
    if shown.empty:
        return None
    kpi = str(shown["kpi"].iloc[0])
    name = metrics.LABELS.get(kpi, kpi.upper())
    tested = shown.loc[~shown["small"]]
    worst = (tested if len(tested) else shown).sort_values("adjusted", kind="stable").iloc[0]
    title = (say("figures.impact_title", lang, label=worst["label"], name=name,
                 points=num(-worst["adjusted"], lang, decimals=0 if kpi != "ces" else 2))
             if worst["adjusted"] < 0 else say("figures.impact_none", lang, name=name))
    covariates = ", ".join(locale.label(c, lang) for c in inputs.covariates) or say("words.nothing", lang)
    return figures.interval_plot(
        shown, label="label", value="adjusted", low="adjusted_low", high="adjusted_high", title=title,
        xlabel=say("figures.impact_x", lang, axis=_axis(kpi, lang), covariates=covariates),
        n=int(impact["n_exposed"].iloc[0] + impact["n_unexposed"].iloc[0]),
        definition=say("figures.impact_caption", lang, name=name, days=f"{inputs.window_days:g}",
                       min_n=st.min_exposed), lang=lang)


def churn_figure(churn: pd.DataFrame, inputs):
    """Churn lift after each moment (log scale, exact 95% intervals; red: significantly higher),
    without the reasons that are part of leaving; None when no lift exists."""
    labels, st, lang = inputs.labels, inputs.settings, inputs.lang
    rows = (churn_chart_rows(churn, exclude=st.churn_chart_exclude).sort_values("churn_lift", ascending=False, kind="stable")
            .assign(label=lambda d: d[MOMENT].map(lambda m: labels.get(m, m))))
    top = top_churn_moment(churn, exclude=st.churn_chart_exclude)
    if rows.empty or top is None:
        return None
    return figures.interval_plot(
        rows, label="label", value="churn_lift", low="lift_low", high="lift_high",
        title=say("figures.churn_title", lang, label=labels.get(top[MOMENT], top[MOMENT]), lift=num(top["churn_lift"], lang)),
        xlabel=say("figures.churn_x", lang, days=f"{st.churn_window_days:g}"),
        n=int(churn["customers"].iloc[0]), reference=1.0, worse="higher", log=True,
        definition=say("figures.churn_caption", lang, start=locale.format_date(inputs.start, lang),
                       end=locale.format_date(inputs.end, lang)), lang=lang)


def ipa_figure(ranking: pd.DataFrame, impacts: Mapping[str, pd.DataFrame], inputs):
    """Importance (KPI points lost per exposed answer) against performance (CSAT or the KPI of
    the exposed answers) of the moments (`importance_performance`), bubbles by reach
    (`figures.importance_performance`); the title names the moment to fix first."""
    ipa, lang = importance_performance(ranking, impacts), inputs.lang
    if ipa.empty:
        return None
    kpi, perf = str(ipa["kpi"].iloc[0]), str(ipa["performance_kpi"].iloc[0])
    fix = ipa.loc[ipa["fix_first"]].iloc[0]
    kinds = {k: say(f"figures.ipa_kinds.{k}", lang) for k in ("magic", "worse", "other")}
    rows = ipa.assign(
        reach_pct=100 * ipa["reach"].fillna(0.0),
        kind=np.where(ipa["magic"], kinds["magic"], np.where(ipa["significant"], kinds["worse"], kinds["other"])),
        named=ipa["significant"] | (ipa["points_at_stake"].abs() >= ipa["points_at_stake"].abs().nlargest(5).min()))
    return figures.importance_performance(
        rows, label="label", performance="performance", importance="importance", size="reach_pct", tone="kind",
        colours={kinds["magic"]: C["positive"], kinds["worse"]: C["negative"], kinds["other"]: C["secondary"]},
        named="named", title=say("figures.ipa_title", lang, label=fix["label"]),
        xlabel=say("figures.ipa_x", lang, axis=_axis(perf, lang)),
        ylabel=say("figures.ipa_y", lang, name=metrics.LABELS.get(kpi, kpi)), n=len(ipa),
        definition=say("figures.ipa_caption", lang, min_n=inputs.settings.min_exposed), lang=lang)


def resolution_figure(handling: pd.DataFrame, inputs, *, unexposed: float):
    """The KPI of exposed answers after resolved and unresolved contacts per moment (moments with
    at least `handling_min_n` answers in both groups), against all answers (dashed); None
    without such moments."""
    labels, lang = inputs.labels, inputs.lang
    rows = handling.loc[(handling[DIMENSION] == "resolution") & handling[LEVEL].isin(["resolved", "unresolved"])
                        & ~handling["small"] & handling["value"].notna()]
    both = rows.groupby(MOMENT)[LEVEL].nunique().loc[lambda s: s == 2].index
    rows = rows.loc[rows[MOMENT].isin(both)].sort_values([MOMENT, LEVEL], kind="stable")
    if rows.empty:
        return None
    wide = rows.pivot(index=MOMENT, columns=LEVEL, values="value")
    top = wide["unresolved"].idxmin()
    words = {lv: locale.value_label("level", lv, lang) for lv in ("resolved", "unresolved")}
    return figures.bars(
        rows.assign(label=rows[MOMENT].map(lambda m: labels.get(m, m)), outcome=rows[LEVEL].map(words)),
        category="label", value="value", low="ci_low", high="ci_high", group="outcome",
        colours={words["resolved"]: C["primary"], words["unresolved"]: C["negative"]},
        reference=unexposed if pd.notna(unexposed) else None,
        reference_label=say("figures.resolution_reference", lang),
        title=say("figures.resolution_title", lang, label=labels.get(top, top) if lang == "de" else labels.get(top, top).lower(),
                  unresolved=num(wide.loc[top, "unresolved"], lang, decimals=0, sign=True),
                  resolved=num(wide.loc[top, "resolved"], lang, decimals=0, sign=True)),
        value_label=say("figures.resolution_value", lang), n=int(rows["n"].sum()),
        definition=say("figures.resolution_caption", lang, days=f"{inputs.window_days:g}",
                       min_n=inputs.settings.handling_min_n), lang=lang)


def waits_figure(waits: pd.DataFrame, inputs):
    """Share of contacts followed by a hotline complaint, by wait band (95% Wilson intervals)."""
    lang = inputs.lang
    measured = waits.loc[waits["contacts"] > 0]
    if measured.empty:
        return None
    first, last = measured["rate"].iloc[0], measured["rate"].iloc[-1]
    ratio = (say("figures.waits_ratio", lang, ratio=num(last / first, lang, decimals=0))
             if len(measured) > 1 and first > 0 else "")
    return figures.bars(
        measured.assign(pct=100 * measured["rate"], low=100 * measured["ci_low"], high=100 * measured["ci_high"]),
        category="wait_band", value="pct", low="low", high="high", orient="v",
        title=say("figures.waits_title", lang, share=locale.format_percent(last, lang, decimals=0), ratio=ratio),
        category_label=say("figures.waits_category", lang), value_label=say("figures.waits_value", lang),
        n=int(measured["contacts"].sum()),
        definition=say("figures.waits_caption", lang, days=f"{inputs.settings.hotline_followup_days:g}"), lang=lang)


def complaints_figure(table: pd.DataFrame, inputs):
    """One panel per complaint category (`figures.control_chart`): the monthly rate per 1,000 (or
    count) with its control limits, out-of-control months in red; the title names the largest
    breakout, or says that no month left its limits."""
    st, lang = inputs.settings, inputs.lang
    cols = complaint_chart_columns(table)
    rate = cols["unit"] == "per 1,000"
    unit = say("words.per_1000" if rate else "words.complaints", lang)
    kind = say("words.rates" if rate else "words.counts", lang)
    top = top_breakout(table)
    if top is not None:
        title = say("figures.complaints_title", lang, category=top["category_label"],
                    month=locale.format_period(top["month"], lang), value=num(top[cols["value"]], lang), unit=unit,
                    centre=num(top[cols["center"]], lang))
    elif table["out_of_control"].any():
        title = say("figures.complaints_below", lang, kind=kind)
    else:
        title = say("figures.complaints_calm", lang, kind=kind)
    n = int(table.groupby("month")["active"].first().max()) if rate else int(table["complaints"].sum())
    laney = st.complaint_chart == "laney"
    chart = say("figures.chart_" + ("laney" if laney else "u") if rate else "figures.chart_c" + ("_laney" if laney else ""),
                lang)
    return figures.control_chart(
        table, panel="category_label", x="month", value=cols["value"], center=cols["center"], ucl=cols["ucl"],
        lcl=cols["lcl"], title=title, ylabel=unit, xlabel=say("figures.complaints_x", lang),
        n=n if rate else say("figures.complaints_n", lang, n=locale.format_number(n, lang)),
        definition=say("figures.complaints_caption", lang,
                       what=say("figures.complaints_what_" + ("rate" if rate else "count"), lang), kind=chart,
                       sigma=f"{st.complaint_sigma:g}", laney=" × σz" if laney else ""), lang=lang)


def drivers_figure(weights: pd.DataFrame, labels: Mapping, *, scale: float, lang: str = "en"):
    """Importance (share of explained variance) against performance (mean rating) per attribute
    (`driver_analysis`), quadrants at the medians."""
    name = driver_name(weights, lang)
    lead = weights.sort_values("weight", ascending=False, kind="stable").iloc[0]
    return figures.importance_performance(
        weights.assign(label=weights["driver"].map(lambda d: labels.get(d, d))), label="label", performance="mean",
        importance="share", title=say("figures.drivers_title", lang, label=labels.get(lead["driver"], lead["driver"]),
                                      share=num(lead["share"], lang, decimals=0), name=name,
                                      r2=num(lead["r2"], lang, decimals=2)),
        xlabel=say("figures.drivers_x", lang, scale=f"{scale:g}"), ylabel=say("figures.drivers_y", lang),
        n=int(lead["n"]), xlim=(1, scale), ylim=(0, max(100.0, float(weights["share"].max()) * 1.1)),
        definition=say("figures.drivers_caption", lang, name=name), lang=lang)


def contact_figure(counts: Mapping, inputs):
    """Customers on the call-back list and left out, by reason; None without candidates."""
    if not counts["candidates"]:
        return None
    lang = inputs.lang
    status = {k: say(f"figures.contact_status.{k}", lang) for k in ("included", "no_consent", "other")}
    bars = pd.DataFrame({"status": list(status.values()),
                         "customers": [counts["included"], counts["excluded_no_consent"], counts["excluded_other"]]})
    bars = bars.assign(shown=bars["customers"].map(lambda v: locale.format_number(v, lang)))
    return figures.bars(
        bars, category="status", value="customers", orient="v", tone="status", bar_labels="shown",
        colours={status["included"]: C["positive"], status["no_consent"]: C["neutral"], status["other"]: C["secondary"]},
        title=say("figures.contact_title", lang, included=locale.format_number(counts["included"], lang),
                  no_consent=locale.format_number(counts["excluded_no_consent"], lang)),
        value_label=say("figures.contact_value", lang), n=int(counts["candidates"]),
        definition=say("figures.contact_caption", lang, days=f"{inputs.settings.recent_days:g}",
                       end=locale.format_date(inputs.end, lang)), lang=lang)
