"""The figures of the moments-of-truth report: each turns the table a section computed into the
tidy frame and the texts of one `cxlib.figures` function (seaborn, house style). The title
states the finding, n and the definition go into the caption. A figure without anything to draw
is not made (None).

    moment_figures.impact_figure(impact["nps"], inputs, min_n=50, lang="de")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import figures, locale, metrics, style
from cxlib.moments.base import DIMENSION, LEVEL, MOMENT, signed
from cxlib.moments.churn import churn_chart_rows, top_churn_moment
from cxlib.moments.complaints import complaint_chart_columns

_AXIS = {"nps": "NPS", "csat": "CSAT (% top two points)", "ces": "CES (1–7)"}
C = style.COLOURS


def _day(when) -> str:
    return f"{pd.Timestamp(when):%Y-%m-%d}"


def impact_figure(impact: pd.DataFrame, inputs, *, min_n: int, lang: str = "en"):
    """Adjusted impact of each moment on one KPI with 95% intervals (`figures.interval_plot`: red
    significantly negative, green positive, grey too few exposed answers); `inputs` gives the
    moment labels, window and covariates. None when nothing could be estimated."""
    labels = inputs.labels
    shown = (impact.dropna(subset=["adjusted"]).assign(label=lambda d: d[MOMENT].map(lambda m: labels.get(m, m)))
             .sort_values("adjusted", ascending=False, kind="stable"))
    if shown.empty:
        return None
    kpi = str(shown["kpi"].iloc[0])
    name = metrics.LABELS.get(kpi, kpi.upper())
    tested = shown.loc[~shown["small"]]
    worst = (tested if len(tested) else shown).sort_values("adjusted", kind="stable").iloc[0]
    title = (f"{worst['label']} costs {signed(-worst['adjusted'], '.0f' if kpi != 'ces' else '.2f')} {name} points"
             if worst["adjusted"] < 0 else f"No moment lowers {name}")
    n = int(impact["n_exposed"].iloc[0] + impact["n_unexposed"].iloc[0])
    return figures.interval_plot(
        shown, label="label", value="adjusted", low="adjusted_low", high="adjusted_high", title=title,
        xlabel=(f"{_AXIS.get(kpi, name)} of exposed minus compared answers, adjusted for "
                f"{', '.join(inputs.covariates) or 'nothing'} (points)"),
        n=n, definition=(f"{name} answers of known customers; exposed = a contact of the moment in the "
                         f"{inputs.window_days:g} days before; OLS on the per-answer score with 95% intervals, "
                         f"Benjamini–Hochberg; grey: fewer than {min_n} exposed answers"), lang=lang)


def churn_figure(churn: pd.DataFrame, inputs, *, churn_window_days: float, exclude: Sequence[str] = (),
                 lang: str = "en"):
    """Churn lift after each moment (log scale, exact 95% intervals; red: significantly higher);
    None when no lift exists."""
    labels = inputs.labels
    rows = (churn_chart_rows(churn, exclude=exclude).sort_values("churn_lift", ascending=False, kind="stable")
            .assign(label=lambda d: d[MOMENT].map(lambda m: labels.get(m, m))))
    top = top_churn_moment(churn, exclude=exclude)
    if rows.empty or top is None:
        return None
    return figures.interval_plot(
        rows, label="label", value="churn_lift", low="lift_low", high="lift_high",
        title=(f"After {labels.get(top[MOMENT], top[MOMENT])}, customers churn "
               f"{locale.format_number(top['churn_lift'], lang, decimals=1)}× as often"),
        xlabel=(f"churn rate in the {churn_window_days:g} days after the moment / in other customer time "
                "(ratio, log scale)"),
        n=int(churn["customers"].iloc[0]), reference=1.0, worse="higher", log=True,
        definition=(f"active customers {_day(inputs.start)} to {_day(inputs.end)}; churns per customer-day, exact 95% "
                    "intervals; red: significantly higher after Benjamini–Hochberg"), lang=lang)


def ipa_figure(ipa: pd.DataFrame, *, min_n: int, lang: str = "en"):
    """Importance (KPI points lost per exposed answer) against performance (CSAT or the KPI of
    the exposed answers), bubbles by reach (`figures.importance_performance`); the title names
    the moment to fix first."""
    if ipa.empty:
        return None
    kpi, perf = str(ipa["kpi"].iloc[0]), str(ipa["performance_kpi"].iloc[0])
    fix = ipa.loc[ipa["fix_first"]].iloc[0]
    kinds = {"magic": "magic moment (significant gain)", "worse": "significant loss", "other": "not significant"}
    rows = ipa.assign(
        reach_pct=100 * ipa["reach"].fillna(0.0),
        kind=np.where(ipa["magic"], kinds["magic"], np.where(ipa["significant"], kinds["worse"], kinds["other"])),
        named=ipa["significant"] | (ipa["points_at_stake"].abs() >= ipa["points_at_stake"].abs().nlargest(5).min()))
    return figures.importance_performance(
        rows, label="label", performance="performance", importance="importance", size="reach_pct", tone="kind",
        colours={kinds["magic"]: C["positive"], kinds["worse"]: C["negative"], kinds["other"]: C["secondary"]},
        named="named", title=f"Fix first: {fix['label']} hurts most where contacts satisfy least",
        xlabel=f"performance: {_AXIS.get(perf, perf)} of answers exposed to the moment",
        ylabel=f"importance: {metrics.LABELS.get(kpi, kpi)} points lost per exposed answer", n=len(ipa),
        definition=(f"moments with at least {min_n} exposed answers (labelled: significant or the five with most "
                    "points at stake); bubble area = share of customers reached; dashed lines: medians"), lang=lang)


def resolution_figure(handling: pd.DataFrame, inputs, *, unexposed: float, min_n: int, lang: str = "en"):
    """The KPI of exposed answers after resolved and unresolved contacts per moment (moments with
    at least `min_n` answers in both groups), against all answers (dashed); None without such moments."""
    labels = inputs.labels
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
        reference=unexposed if pd.notna(unexposed) else None, reference_label="all answers",
        title=(f"After an unresolved {labels.get(top, top).lower()}, the score is "
               f"{signed(wide.loc[top, 'unresolved'], '+.0f')} ({signed(wide.loc[top, 'resolved'], '+.0f')} when resolved)"),
        value_label="score of exposed answers (points, 95% intervals)", n=int(rows["n"].sum()),
        definition=(f"answers within {inputs.window_days:g} days after a contact of the moment, by the latest "
                    f"contact's outcome; moments with at least {min_n} answers in both groups"), lang=lang)


def waits_figure(waits: pd.DataFrame, *, followup_days: float, lang: str = "en"):
    """Share of contacts followed by a hotline complaint, by wait band (95% Wilson intervals)."""
    measured = waits.loc[waits["contacts"] > 0]
    if measured.empty:
        return None
    first, last = measured["rate"].iloc[0], measured["rate"].iloc[-1]
    ratio = (f" ({locale.format_number(last / first, lang, decimals=0)}× the shortest waits)"
             if len(measured) > 1 and first > 0 else "")
    return figures.bars(
        measured.assign(pct=100 * measured["rate"], low=100 * measured["ci_low"], high=100 * measured["ci_high"]),
        category="wait_band", value="pct", low="low", high="high", orient="v",
        title=f"After the longest waits, {locale.format_percent(last, lang, decimals=0)} of callers complain about the hotline{ratio}",
        category_label="wait before the contact was answered", value_label="followed by a hotline complaint (%)",
        n=int(measured["contacts"].sum()), definition=(
            f"contacts with a recorded wait; share followed by a hotline complaint of the same customer within "
            f"{followup_days:g} days; 95% Wilson intervals"), lang=lang)


def complaints_figure(table: pd.DataFrame, *, chart: str, sigma: float, lang: str = "en"):
    """One panel per complaint category (`figures.control_chart`): the monthly rate per 1,000 (or
    count) with its control limits, out-of-control months in red; the title names the largest
    breakout, or says that no month left its limits."""
    cols = complaint_chart_columns(table)
    rate = cols["unit"] == "per 1,000"
    above = (table.loc[table["signal"] == "above"].assign(excess=lambda d: d[cols["value"]] / d[cols["ucl"]])
             .sort_values("excess", ascending=False, kind="stable"))
    if len(above):
        top = above.iloc[0]
        title = (f"{top['category_label']} complaints broke out in {locale.format_period(top['month'], lang)}: "
                 f"{locale.format_number(top[cols['value']], lang, decimals=1)} "
                 f"{'per 1,000' if rate else 'complaints'} against {locale.format_number(top[cols['center']], lang, decimals=1)}")
    elif table["out_of_control"].any():
        title = "Complaint " + ("rates" if rate else "counts") + " fell below their control limits in some months"
    else:
        title = "Complaint " + ("rates" if rate else "counts") + " stay within their control limits"
    n = int(table.groupby("month")["active"].first().max()) if rate else int(table["complaints"].sum())
    kind = ("Laney u′-chart" if chart == "laney" else "u-chart") if rate else (
        "c-chart with Laney's widening" if chart == "laney" else "c-chart")
    what = "complaint contacts per 1,000 active customers" if rate else "complaint contacts per month (no active base)"
    return figures.control_chart(
        table, panel="category_label", x="month", value=cols["value"], center=cols["center"], ucl=cols["ucl"],
        lcl=cols["lcl"], title=title, ylabel=cols["unit"], xlabel="month (UTC)",
        n=n if rate else f"{locale.format_number(n, lang)} complaints", definition=(
            f"{what}; {kind}, centre ± {sigma:g} SE{' × σz' if chart == 'laney' else ''} (dashed), centre revised "
            "without out-of-control months; red: out of control"), lang=lang)


def drivers_figure(weights: pd.DataFrame, labels: Mapping, *, scale: float, lang: str = "en"):
    """Importance (share of explained variance) against performance (mean rating) per attribute
    (`driver_analysis`), quadrants at the medians."""
    outcome = str(weights["outcome"].iloc[0]) if "outcome" in weights.columns else "nps"
    lead = weights.sort_values("weight", ascending=False, kind="stable").iloc[0]
    name = metrics.LABELS.get(outcome, outcome) if outcome == "nps" else "overall rating"
    return figures.importance_performance(
        weights.assign(label=weights["driver"].map(lambda d: labels.get(d, d))), label="label", performance="mean",
        importance="share", title=(f"{labels.get(lead['driver'], lead['driver'])} carries "
                                   f"{locale.format_number(lead['share'], lang, decimals=0)}% of the explained {name} "
                                   f"variance (R² = {locale.format_number(lead['r2'], lang, decimals=2)})"),
        xlabel=f"performance: mean rating (1–{scale:g})", ylabel="importance: share of R² (%)", n=int(lead["n"]),
        xlim=(1, scale), ylim=(0, max(100.0, float(weights["share"].max()) * 1.1)), definition=(
            f"Johnson's relative weights of the attribute ratings for the {name}; respondents who rated every "
            "attribute shown; dashed lines: medians"), lang=lang)


def contact_figure(counts: Mapping, *, recent_days: float, end, lang: str = "en"):
    """Customers on the call-back list and left out, by reason."""
    bars = pd.DataFrame({"status": ["on the list", "no consent", "other reasons"],
                         "customers": [counts["included"], counts["excluded_no_consent"], counts["excluded_other"]]})
    bars = bars.assign(shown=bars["customers"].map(lambda v: locale.format_number(v, lang)))
    return figures.bars(
        bars, category="status", value="customers", orient="v", tone="status", bar_labels="shown",
        colours={"on the list": C["positive"], "no consent": C["neutral"], "other reasons": C["secondary"]},
        title=(f"{locale.format_number(counts['included'], lang)} customers to call back; "
               f"{locale.format_number(counts['excluded_no_consent'], lang)} left out for lack of consent"),
        value_label="customers", n=int(counts["candidates"]), definition=(
            f"customers with an unresolved negative moment or a detractor answer in the {recent_days:g} days up to "
            f"{_day(end)}"), lang=lang) if counts["candidates"] else None
