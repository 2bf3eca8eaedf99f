"""The figures of the journey report: each turns the table a section computed into the tidy frame
and the texts of one `cxlib.figures` function (seaborn, house style). The title states the
finding (`journey_describe`), n and the definition go into the caption.

    journey_figures.funnel_figure(funnel, taxonomy)
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cxlib import figures, style
from cxlib import journey_describe as describe

C = style.COLOURS


def stages_figure(stages: pd.DataFrame, log: pd.DataFrame, *, lang: str = "en"):
    """Share of customers with an event in each stage (from `journey.stage_summary`), in lifecycle order."""
    return figures.bars(
        stages.assign(percent=stages["share"] * 100), category="stage_label", value="percent",
        title=describe.stages_title(stages), value_label="customers with an event in the stage (%)",
        n=int(log["customers"].iloc[0]),
        definition="share of customers with ≥ 1 event in the stage; stages from the taxonomy", lang=lang)


def funnel_figure(funnel: pd.DataFrame, taxonomy, *, lang: str = "en"):
    """Customers reaching each funnel step in order, labelled 'count (conversion from step 1)'."""
    labels = describe.step_labels(funnel["step"], taxonomy, lang=lang)
    rows = funnel.assign(label=labels, text=[f"{c:,} ({describe._pct(r)})"
                                             for c, r in zip(funnel["customers"], funnel["conversion"])])
    return figures.bars(
        rows, category="label", value="customers", bar_labels="text", title=describe.funnel_title(funnel, labels),
        value_label="customers reaching the step (count)", n=int(funnel["customers"].iloc[0]),
        definition="customers reaching each step in order; in brackets: conversion from the first step", lang=lang)


def stage_flow_figure(stage_flow: pd.DataFrame, taxonomy, *, lang: str = "en"):
    """Heatmap of the next event's stage per stage (% of the transitions leaving the row's stage)."""
    matrix, leaving = describe.stage_matrix(stage_flow, taxonomy, lang=lang)
    tidy = (matrix.rename_axis(index="from", columns="to").stack().rename("percent").reset_index())
    return figures.heatmap(
        tidy, row="from", column="to", value="percent", title=describe.stage_flow_title(stage_flow, taxonomy, lang),
        xlabel="stage of the next event", ylabel="stage of the event (n = transitions leaving it)",
        n=int(leaving.sum()), colorbar_label="probability of the next event's stage (%)", vmin=0, vmax=100,
        hide_below=0.5, row_n={k: int(v) for k, v in leaving.items()},
        definition=("consecutive events of one customer; cells: % of the transitions leaving the row's stage "
                    "(rows sum to 100%; blank < 0.5%)"), lang=lang)


def timing_figure(timing: pd.DataFrame, highlight_pair: Sequence[str], taxonomy, *, slow_days: float,
                  lang: str = "en"):
    """Median days per step pair (bar, the highlighted pair in the highlight colour) with the 90th
    percentile as a tick (from `journey.time_between_steps`)."""
    chart = describe.timing_chart(timing, highlight_pair, taxonomy, lang=lang)
    rows = chart.assign(tone=chart["highlight"].map({True: "highlighted", False: "other"}))
    return figures.bars(
        rows, category="label", value="days_median", marks="days_p90", marks_label="90th percentile",
        tone="tone", colours={"highlighted": C["highlight"], "other": C["primary"]}, bar_name="median",
        title=describe.timing_title(chart, slow_days), value_label="days", n=int(chart["pairs"].sum()),
        definition=("days from each 'from' event to the next 'to' event of the customer; bar = median "
                    "(orange: the pair the title names), mark = 90th percentile"), lang=lang)


def opportunities_figure(rates: pd.DataFrame, *, steps: Sequence[str], window_days: float, lang: str = "en"):
    """Opportunities converted into an order for repeat and new customers with 95% Wilson intervals
    (from `journey.repeat_vs_new_conversion`)."""
    rows = rates.assign(percent=rates["rate"].fillna(0) * 100, low=rates["ci_low"] * 100, high=rates["ci_high"] * 100,
                        kind=rates["customer_type"].map({"repeat": "repeat customers", "new": "new customers"})
                        .fillna(rates["customer_type"]))
    return figures.bars(
        rows, category="kind", value="percent", low="low", high="high", orient="v",
        title=describe.opportunities_title(rates), value_label="opportunities converted into an order (%)",
        category_label="customer type at the time of the opportunity", n=int(rates["opportunities"].sum()),
        definition=(f"opportunities ({', '.join(steps)}) followed by an order within {window_days:g} days; "
                    "repeat = customer signed up or ordered before; 95% Wilson intervals"), lang=lang)


def tenure_figure(life: pd.DataFrame, *, band_days: int, lang: str = "en"):
    """The survival step curve of the life table (from `journey.tenure_churn`)."""
    return figures.curve(
        describe.survival_curve(life), x="months", y="active", step=True, ylim=(0, 100),
        title=describe.tenure_title(life), xlabel="tenure (months)", ylabel="customers still active (%)",
        n=life.attrs["customers"], definition=f"life table in bands of {band_days} days", lang=lang)
