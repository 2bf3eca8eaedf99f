"""The figures of the moments-of-truth report, in the house style (`cxlib.plots`): each takes
the table a section computed and states its finding in the title, n and definition in the
caption. A figure without anything to draw is not made (None)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import metrics, plots
from cxlib.moments.base import DIMENSION, LEVEL, MOMENT, signed
from cxlib.moments.churn import churn_chart_rows, top_churn_moment
from cxlib.moments.complaints import complaint_chart_columns

_AXIS = {"nps": "NPS", "csat": "CSAT (% top two points)", "ces": "CES (1–7)"}


def _tone(significant: pd.Series, small: pd.Series, bad: pd.Series) -> np.ndarray:
    return np.where(small, plots.PALETTE["neutral"], np.where(significant & bad, plots.PALETTE["negative"],
                    np.where(significant, plots.PALETTE["positive"], plots.PALETTE["secondary"])))


def impact_figure(impact: pd.DataFrame, labels: Mapping, *, window_days: float, covariates: Sequence[str], min_n: int):
    """Adjusted impact of each moment on one KPI with 95% intervals (red: significantly negative,
    green: positive, grey: too few exposed answers); None when nothing could be estimated."""
    shown = impact.dropna(subset=["adjusted"]).assign(label=lambda d: d[MOMENT].map(lambda m: labels.get(m, m)))
    if shown.empty:
        return None
    kpi = str(shown["kpi"].iloc[0])
    name = metrics.LABELS.get(kpi, kpi.upper())
    shown = shown.sort_values("adjusted", ascending=False, kind="stable")
    tested = shown.loc[~shown["small"]]
    worst = (tested if len(tested) else shown).sort_values("adjusted", kind="stable").iloc[0]
    title = (f"{worst['label']} costs {signed(-worst['adjusted'], '.0f' if kpi != 'ces' else '.2f')} {name} points"
             if worst["adjusted"] < 0 else f"No moment lowers {name}")
    fig, ax = plots.new_figure(title, size=(8.0, 0.35 * len(shown) + 1.5))
    ax.errorbar(shown["adjusted"], shown["label"], fmt="none", ecolor="#777777", capsize=3,
                xerr=[shown["adjusted"] - shown["adjusted_low"].fillna(shown["adjusted"]),
                      shown["adjusted_high"].fillna(shown["adjusted"]) - shown["adjusted"]])
    ax.scatter(shown["adjusted"], shown["label"], zorder=3,
               color=_tone(shown["significant"], shown["small"], shown["adjusted"] < 0))
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_xlabel(f"{_AXIS.get(kpi, name)} of exposed minus compared answers, adjusted for "
                  f"{', '.join(covariates) or 'nothing'} (points)")
    n = int(impact["n_exposed"].iloc[0] + impact["n_unexposed"].iloc[0]) if len(impact) else 0
    return plots.finish(fig, n=n, definition=(
        f"{name} answers of known customers; exposed = a contact of the moment in the {window_days:g} days before; "
        f"OLS on the per-answer score with 95% intervals; grey: fewer than {min_n} exposed answers"))


def churn_figure(churn: pd.DataFrame, labels: Mapping, *, churn_window_days: float, start, end,
                 exclude: Sequence[str] = ()):
    """Churn lift after each moment (log scale, exact 95% intervals); None when no lift exists."""
    rows = churn_chart_rows(churn, exclude=exclude).assign(label=lambda d: d[MOMENT].map(lambda m: labels.get(m, m)))
    top = top_churn_moment(churn, exclude=exclude)
    if rows.empty or top is None:
        return None
    fig, ax = plots.new_figure(f"After {labels.get(top[MOMENT], top[MOMENT])}, customers churn {top['churn_lift']:.1f}× as often",
                               size=(8.0, 0.35 * len(rows) + 1.5))
    high = rows["lift_high"].fillna(rows["churn_lift"])
    ax.errorbar(rows["churn_lift"], rows["label"], fmt="none", ecolor="#777777", capsize=3,
                xerr=[rows["churn_lift"] - rows["lift_low"].fillna(rows["churn_lift"]), high - rows["churn_lift"]])
    ax.scatter(rows["churn_lift"], rows["label"], zorder=3,
               color=_tone(rows["significant"], rows["small"], rows["churn_lift"] > 1))
    ax.axvline(1, color="#333333", linewidth=0.8)
    ax.set_xscale("log")
    ax.minorticks_off()
    low = rows["lift_low"].where(rows["lift_low"] > 0).min()
    low = low if pd.notna(low) else rows["churn_lift"].min()
    ticks = [t for t in (0.25, 0.5, 1, 2, 4, 8, 16) if low / 1.5 <= t <= high.max() * 1.5]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel(f"churn rate in the {churn_window_days:g} days after the moment / in other customer time (ratio, log scale)")
    return plots.finish(fig, n=int(churn["customers"].iloc[0]), definition=(
        f"active customers {pd.Timestamp(start):%Y-%m-%d} to {pd.Timestamp(end):%Y-%m-%d}; churns per customer-day, "
        "exact 95% intervals; red: significantly higher after Benjamini-Hochberg"))


def ipa_figure(ipa: pd.DataFrame, *, min_n: int):
    """Importance (KPI points lost per exposed answer) against performance (CSAT or the KPI of
    the exposed answers), bubbles by reach; the title names the moment to fix first."""
    if ipa.empty:
        return None
    kpi, perf = str(ipa["kpi"].iloc[0]), str(ipa["performance_kpi"].iloc[0])
    fix = ipa.loc[ipa["fix_first"]].iloc[0]
    fig, ax = plots.new_figure(f"Fix first: {fix['label']} hurts most where contacts satisfy least", size=(8.0, 5.5))
    ax.scatter(ipa["performance"], ipa["importance"], s=2000 * ipa["reach"].fillna(0.02) + 20, alpha=0.6,
               edgecolor="#333333", color=np.where(ipa["magic"], plots.PALETTE["positive"],
                                                   np.where(ipa["significant"], plots.PALETTE["negative"],
                                                            plots.PALETTE["secondary"])))
    named = ipa["significant"] | (ipa["points_at_stake"].abs() >= ipa["points_at_stake"].abs().nlargest(5).min())
    for _i, row in ipa.loc[named].iterrows():
        ax.annotate(textwrap.fill(row["label"], 28), (row["performance"], row["importance"]), fontsize=7.5,
                    xytext=(5, 3), textcoords="offset points", va="top")
    ax.axvline(ipa["performance"].median(), color="#999999", linestyle="--", linewidth=0.8)
    ax.axhline(ipa["importance"].median(), color="#999999", linestyle="--", linewidth=0.8)
    ax.set_xlabel(f"performance: {_AXIS.get(perf, perf)} of answers exposed to the moment")
    ax.set_ylabel(f"importance: {metrics.LABELS.get(kpi, kpi)} points lost per exposed answer")
    return plots.finish(fig, n=len(ipa), definition=(
        f"moments with at least {min_n} exposed answers (labelled: significant or the five with most points at stake); "
        "bubble area = share of customers reached; dashed lines: medians"))


def resolution_figure(handling: pd.DataFrame, labels: Mapping, *, unexposed: float, window_days: float, min_n: int):
    """The KPI of exposed answers after resolved and unresolved contacts per moment (moments with
    at least `min_n` answers in both groups), against the unexposed answers; None without such moments."""
    rows = handling.loc[(handling[DIMENSION] == "resolution") & handling[LEVEL].isin(["resolved", "unresolved"])
                        & ~handling["small"]]
    wide = rows.pivot(index=MOMENT, columns=LEVEL, values=["value", "ci_low", "ci_high", "n"]).dropna()
    if wide.empty or not {"resolved", "unresolved"} <= set(wide.columns.get_level_values(LEVEL)):
        return None
    top = wide["value"]["unresolved"].idxmin()
    fig, ax = plots.new_figure(f"After an unresolved {labels.get(top, top).lower()}, the score is "
                               f"{signed(wide.loc[top, ('value', 'unresolved')], '+.0f')} "
                               f"({signed(wide.loc[top, ('value', 'resolved')], '+.0f')} when resolved)", size=(8.0, 4.6))
    ypos = np.arange(len(wide))
    for offset, level, color in ((0.2, "resolved", plots.PALETTE["primary"]), (-0.2, "unresolved", plots.PALETTE["negative"])):
        v = wide["value"][level]
        ax.barh(ypos + offset, v, height=0.4, color=color, label=level)
        ax.errorbar(v, ypos + offset, xerr=[v - wide["ci_low"][level], wide["ci_high"][level] - v], fmt="none",
                    ecolor="#555555", capsize=2)
    if pd.notna(unexposed):
        ax.axvline(unexposed, color=plots.PALETTE["neutral"], linestyle="--", label="not exposed")
    ax.set_yticks(ypos, [labels.get(m, m) for m in wide.index])
    ax.set_xlabel("score of exposed answers (points, 95% intervals)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return plots.finish(fig, n=int(wide["n"].to_numpy().sum()), definition=(
        f"answers within {window_days:g} days after a contact of the moment, by the latest contact's outcome; "
        f"moments with at least {min_n} answers in both groups"))


def waits_figure(waits: pd.DataFrame, *, followup_days: float):
    """Share of contacts followed by a hotline complaint, by wait band (95% Wilson intervals)."""
    measured = waits.loc[waits["contacts"] > 0]
    if measured.empty:
        return None
    first, last = measured["rate"].iloc[0], measured["rate"].iloc[-1]
    ratio = f" ({last / first:.0f}× the shortest waits)" if len(measured) > 1 and first > 0 else ""
    fig, ax = plots.new_figure(f"After the longest waits, {last:.0%} of callers complain about the hotline{ratio}")
    ax.bar(measured["wait_band"], 100 * measured["rate"], color=plots.PALETTE["primary"], capsize=4,
           yerr=[100 * (measured["rate"] - measured["ci_low"]), 100 * (measured["ci_high"] - measured["rate"])])
    ax.set_xlabel("wait before the contact was answered")
    ax.set_ylabel("followed by a hotline complaint (%)")
    return plots.finish(fig, n=int(measured["contacts"].sum()), definition=(
        f"contacts with a recorded wait; share followed by a hotline complaint of the same customer within "
        f"{followup_days:g} days; 95% Wilson intervals"))


def complaints_figure(table: pd.DataFrame, *, chart: str, sigma: float):
    """One panel per complaint category: the monthly rate per 1,000 (or count) with its control
    limits, out-of-control months in red; the title names the largest breakout."""
    cols = complaint_chart_columns(table)
    rate = cols["unit"] == "per 1,000"
    above = (table.loc[table["signal"] == "above"].assign(excess=lambda d: d[cols["value"]] / d[cols["ucl"]])
             .sort_values("excess", ascending=False, kind="stable"))
    if len(above):
        top = above.iloc[0]
        title = (f"{top['category_label']} complaints broke out in {top['month']}: {top[cols['value']]:.1f} "
                 f"{'per 1,000' if rate else 'complaints'} against {top[cols['center']]:.1f}")
    else:
        title = "Complaint " + ("rates" if rate else "counts") + " stay within their control limits"
    cats = table["category"].drop_duplicates().tolist()
    fig, axes = plots.new_figure(title, nrows=len(cats), size=(8.0, 1.7 * len(cats) + 0.8))
    for ax, (_cat, g) in zip(np.atleast_1d(axes), table.groupby("category", sort=False)):
        x = np.arange(len(g))
        ax.plot(x, g[cols["value"]], color=plots.PALETTE["primary"], marker="o", markersize=3)
        for limit in ("ucl", "lcl"):
            ax.step(x, g[cols[limit]], where="mid", color=plots.PALETTE["neutral"], linestyle="--", linewidth=0.8)
        ax.axhline(g[cols["center"]].iloc[0], color=plots.PALETTE["neutral"], linewidth=0.8)
        ax.scatter(x[g["out_of_control"].to_numpy()], g.loc[g["out_of_control"], cols["value"]],
                   color=plots.PALETTE["negative"], zorder=3)
        ax.set_ylabel(cols["unit"], fontsize=8)
        ax.set_title(g["category_label"].iloc[0], fontsize=9, loc="left")
        step = max(1, len(g) // 8)
        ax.set_xticks(x[::step], g["month"].iloc[::step], fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("month (UTC)")
    n = int(table.groupby("month")["active"].first().max()) if rate else int(table["complaints"].sum())
    kind = ("Laney u′-chart" if chart == "laney" else "u-chart") if rate else (
        "c-chart with Laney's widening" if chart == "laney" else "c-chart")
    what = "complaint contacts per 1,000 active customers" if rate else "complaint contacts per month (no active base)"
    return plots.finish(fig, n=n if rate else f"{n:,} complaints", definition=(
        f"{what}; {kind}, centre ± {sigma:g} SE{' × σz' if chart == 'laney' else ''} (dashed), centre revised without "
        "out-of-control months; red: out of control"))


def drivers_figure(weights: pd.DataFrame, labels: Mapping, *, scale: float):
    """Importance (share of explained variance) against performance (mean rating) per attribute
    (`driver_analysis`)."""
    outcome = str(weights["outcome"].iloc[0]) if "outcome" in weights.columns else "nps"
    lead = weights.sort_values("weight", ascending=False, kind="stable").iloc[0]
    name = metrics.LABELS.get(outcome, outcome) if outcome == "nps" else "overall rating"
    fig, ax = plots.new_figure(f"{labels.get(lead['driver'], lead['driver'])} carries {lead['share']:.0f}% of the explained "
                               f"{name} variance (R² = {lead['r2']:.2f})")
    ax.scatter(weights["mean"], weights["share"], s=120, color=plots.PALETTE["primary"])
    for _i, row in weights.iterrows():
        ax.annotate(textwrap.fill(str(labels.get(row["driver"], row["driver"])), 24), (row["mean"], row["share"]),
                    xytext=(5, 3), textcoords="offset points", fontsize=8)
    ax.set_xlim(1, scale)
    ax.set_ylim(0, max(100.0, float(weights["share"].max()) * 1.1))
    ax.set_xlabel(f"performance: mean rating (1–{scale:g})")
    ax.set_ylabel("importance: share of R² (%)")
    return plots.finish(fig, n=int(lead["n"]), definition=(
        f"Johnson's relative weights of the attribute ratings for the {name}; respondents who rated every attribute shown"))


def contact_figure(counts: Mapping, *, recent_days: float, end):
    """Customers on the call-back list and left out, by reason."""
    fig, ax = plots.new_figure(f"{counts['included']:,} customers to call back; {counts['excluded_no_consent']:,} left out "
                               "for lack of consent")
    bars = pd.Series({"on the list": counts["included"], "no consent": counts["excluded_no_consent"],
                      "other reasons": counts["excluded_other"]})
    ax.bar(bars.index, bars.to_numpy(), color=[plots.PALETTE["positive"], plots.PALETTE["neutral"], plots.PALETTE["secondary"]])
    ax.set_ylabel("customers")
    return plots.finish(fig, n=counts["candidates"], definition=(
        f"customers with an unresolved negative moment or a detractor answer in the {recent_days:g} days up to "
        f"{pd.Timestamp(end):%Y-%m-%d}"))
