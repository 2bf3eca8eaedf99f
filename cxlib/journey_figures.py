"""The figures of the journey report: each turns the table a section computed into the tidy frame
and the texts of one `cxlib.figures` function (seaborn, house style). The title states the
finding (`journey_describe`), n and the definition go into the caption; every word is in the
report's language (`journey.figure` in the locale files).

    journey_figures.funnel_figure(funnel, taxonomy, lang="de")
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cxlib import figures, locale, style
from cxlib import journey_describe as describe

C = style.COLOURS


def _w(key: str, lang: str, **values) -> str:
    """A figure text of the locale files (`journey.figure` in `cxlib/locales/journey.<lang>.yml`)."""
    return locale.text(f"journey.figure.{key}", lang, **values)


def stages_figure(stages: pd.DataFrame, log: pd.DataFrame, *, lang: str = "en"):
    """Share of customers with an event in each stage (from `journey.stage_summary` in `lang`), in lifecycle order."""
    return figures.bars(
        stages.assign(percent=stages["share"] * 100), category="stage_label", value="percent",
        title=describe.stages_title(stages, lang), value_label=_w("stages_axis", lang),
        n=int(log["customers"].iloc[0]), definition=_w("stages_definition", lang), lang=lang)


def funnel_figure(funnel: pd.DataFrame, taxonomy, *, lang: str = "en"):
    """Customers reaching each funnel step in order, labelled 'count (conversion from step 1)'."""
    labels = describe.step_labels(funnel["step"], taxonomy, lang=lang)
    rows = funnel.assign(label=labels, text=[f"{locale.format_number(c, lang)} ({describe._pct(r, lang=lang)})"
                                             for c, r in zip(funnel["customers"], funnel["conversion"])])
    return figures.bars(
        rows, category="label", value="customers", bar_labels="text", title=describe.funnel_title(funnel, labels, lang),
        value_label=_w("funnel_axis", lang), n=int(funnel["customers"].iloc[0]),
        definition=_w("funnel_definition", lang), lang=lang)


def stage_flow_figure(stage_flow: pd.DataFrame, taxonomy, *, lang: str = "en"):
    """Heatmap of the next event's stage per stage (% of the transitions leaving the row's stage)."""
    matrix, leaving = describe.stage_matrix(stage_flow, taxonomy, lang=lang)
    tidy = (matrix.rename_axis(index="from", columns="to").stack().rename("percent").reset_index())
    return figures.heatmap(
        tidy, row="from", column="to", value="percent", title=describe.stage_flow_title(stage_flow, taxonomy, lang),
        xlabel=_w("flow_x", lang), ylabel=_w("flow_y", lang), n=int(leaving.sum()),
        colorbar_label=_w("flow_colour", lang), vmin=0, vmax=100, hide_below=0.5,
        row_n={k: int(v) for k, v in leaving.items()}, definition=_w("flow_definition", lang), lang=lang)


def timing_figure(timing: pd.DataFrame, highlight_pair: Sequence[str], taxonomy, *, slow_days: float,
                  lang: str = "en"):
    """Median days per step pair (bar, the highlighted pair in the highlight colour) with the 90th
    percentile as a tick (from `journey.time_between_steps`)."""
    chart = describe.timing_chart(timing, highlight_pair, taxonomy, lang=lang)
    rows = chart.assign(tone=chart["highlight"].map({True: "highlighted", False: "other"}))
    return figures.bars(
        rows, category="label", value="days_median", marks="days_p90", marks_label=_w("timing_p90", lang),
        tone="tone", colours={"highlighted": C["highlight"], "other": C["primary"]}, bar_name=_w("timing_median", lang),
        title=describe.timing_title(chart, slow_days, lang), value_label=_w("timing_axis", lang),
        n=int(chart["pairs"].sum()), definition=_w("timing_definition", lang), lang=lang)


def opportunities_figure(rates: pd.DataFrame, taxonomy=None, *, steps: Sequence[str], window_days: float,
                         lang: str = "en"):
    """Opportunities converted into an order for repeat and new customers with 95% Wilson intervals
    (from `journey.repeat_vs_new_conversion`); with `taxonomy`, the steps in the caption as labels."""
    rows = rates.assign(percent=rates["rate"].fillna(0) * 100, low=rates["ci_low"] * 100, high=rates["ci_high"] * 100,
                        kind=[describe.customer_type_label(kind, lang) for kind in rates["customer_type"]])
    named = describe.step_labels(steps, taxonomy, lang) if taxonomy is not None else list(steps)
    return figures.bars(
        rows, category="kind", value="percent", low="low", high="high", orient="v",
        title=describe.opportunities_title(rates, lang), value_label=_w("opportunities_axis", lang),
        category_label=_w("opportunities_category", lang), n=int(rates["opportunities"].sum()),
        definition=_w("opportunities_definition", lang, steps=", ".join(named), days=describe._g(window_days, lang)),
        lang=lang)


def tenure_figure(life: pd.DataFrame, *, band_days: int, lang: str = "en"):
    """The survival step curve of the life table (from `journey.tenure_churn`)."""
    return figures.curve(
        describe.survival_curve(life), x="months", y="active", step=True, ylim=(0, 100),
        title=describe.tenure_title(life, lang), xlabel=_w("tenure_x", lang), ylabel=_w("tenure_y", lang),
        n=life.attrs["customers"], definition=_w("tenure_definition", lang, days=band_days), lang=lang)
