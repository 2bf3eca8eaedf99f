"""Executive summary, part 3: its figure — the moments of truth and magic moments with their
adjusted NPS impact and 95% intervals, drawn with `figures.interval_plot` (seaborn, house style).

    fig = summary_figures.moments_figure(results["moments_of_truth"], lang="de", labels=labels,
                                         window_days=60, covariates=["segment"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure

from cxlib import figures, locale, schema
from cxlib.summary import rows_frame, texts
from cxlib.summary_findings import truth_and_magic


def moments_chart(moments_of_truth, *, labels: Mapping | None = None, top: int = 5) -> pd.DataFrame:
    """The moments drawn: the `top` moments of truth by NPS points at stake, then the magic moments.
    In: the `moments_of_truth` rows of results.json. Out: name, nps_impact, ci_low, ci_high,
    n_exposed, magic, significant (True: each is drawn because its impact is significant)."""
    rows = rows_frame(moments_of_truth)
    schema.require(not rows.empty, "no moments of truth recorded", enable="stage 04 (moments_of_truth)")
    truth, magic = truth_and_magic(rows, labels, top)
    shown = pd.concat([truth.assign(magic=False), magic.assign(magic=True)], ignore_index=True)
    schema.require(not shown.empty, "no moment has a significant impact on NPS")
    n_exposed = shown["n_exposed"] if "n_exposed" in shown.columns else pd.Series(0, index=shown.index)
    return pd.DataFrame({"name": shown["name"].astype("str"), "nps_impact": shown["nps_impact"].astype(float),
                         "ci_low": shown["ci_low"].astype(float), "ci_high": shown["ci_high"].astype(float),
                         "n_exposed": n_exposed.fillna(0).astype("int64"), "magic": shown["magic"].astype(bool),
                         "significant": True})


def moments_title(chart: pd.DataFrame, lang: str = "en") -> str:
    """The figure's title, its finding: the moment that costs most (or the first magic moment)."""
    t = texts(lang)
    truth = chart.loc[~chart["magic"]]
    lead = truth.iloc[0] if len(truth) else chart.iloc[0]
    return t["figure_title" if len(truth) else "figure_title_magic"].format(
        label=lead["name"], impact=locale.format_number(lead["nps_impact"], lang, decimals=0, sign=True))


def moments_figure(moments_of_truth, *, lang: str = "en", labels: Mapping | None = None, top: int = 5,
                   window_days=None, covariates: Sequence[str] | None = None) -> Figure:
    """Forest plot of the moments of `moments_chart`: red = moment of truth, green = magic moment,
    95% intervals, caption with the exposed answers and the definition. Raises `schema.Missing`
    when no moment is significant."""
    t = texts(lang)
    chart = moments_chart(moments_of_truth, labels=labels, top=top)
    definition = t["figure_definition"].format(window=window_days if window_days is not None else "–",
                                               covariates=", ".join(covariates or []) or "–")
    return figures.interval_plot(chart, label="name", value="nps_impact", low="ci_low", high="ci_high",
                                 title=moments_title(chart, lang), xlabel=t["figure_xlabel"],
                                 n=t["figure_n"].format(n=locale.format_number(int(chart["n_exposed"].sum()), lang)),
                                 definition=definition, significant="significant", small=None, lang=lang)


def moments_alt(chart: pd.DataFrame, lang: str = "en") -> str:
    """Alt text of the figure: the moments and their impact in words."""
    items = "; ".join(f"{r['name']} {locale.format_number(r['nps_impact'], lang, decimals=1, sign=True)}"
                      for r in chart.to_dict(orient="records"))
    return texts(lang)["figure_alt"].format(k=len(chart), items=items)
