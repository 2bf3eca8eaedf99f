"""What each section of the moments-of-truth report shows, in the language of the stage's
settings: the sentences (`describe_*`), the figure (`cxlib.moments.figures`) and the table
(`locale.display_table`) of one section's results, in reading order, for `display(*...)`.

    display(*moments.impact_view(impacts, inputs))     # sentences, figure, table, other KPIs

Figures are returned (and closed in pyplot, so a notebook shows them once, in this order);
sentences are `Text` (shown as Markdown). The findings that open the report come from
`findings_view` (see `cxlib.moments.findings`).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd

from cxlib.moments import figures as moment_figures
from cxlib.moments.candidates import candidates_table, describe_candidates
from cxlib.moments.churn import churn_summary_table, describe_churn, describe_handling_churn, handling_churn_table
from cxlib.moments.complaints import complaint_signals_table, describe_complaints, waits_table
from cxlib.moments.contact import contact_list_examples, describe_contact_list
from cxlib.moments.drivers import describe_drivers, drivers_table, rating_scale, touchpoint_labels
from cxlib.moments.findings import describe_findings
from cxlib.moments.impact import describe_impact, describe_kpis, handling_overview, impact_table, kpis_table
from cxlib.moments.inputs import CallBacks, Inputs, overall_value
from cxlib.moments.ranking import describe_ranking, ranking_table


class Text(str):
    """Sentences a notebook shows as Markdown (`display(Text("**bold**"))`)."""

    def _repr_markdown_(self) -> str:
        return str(self)


def _shown(*parts) -> list:
    """The parts worth showing, figures closed in pyplot (shown once, where they stand)."""
    for part in parts:
        if isinstance(part, plt.Figure):
            plt.close(part)
    return [p for p in parts if p is not None and not (isinstance(p, str) and not p)]


def impact_view(impacts: Mapping[str, pd.DataFrame], inputs: Inputs) -> list:
    """The ranked KPI's impact (sentences, interval figure, table), then the other KPIs' impact."""
    st, lang, impact = inputs.settings, inputs.lang, impacts[inputs.kpi]
    others = len(impacts) > 1
    return _shown(
        Text(describe_impact(impact, inputs.labels, window_days=inputs.window_days, covariates=inputs.covariates,
                             min_n=st.min_exposed, lang=lang)),
        moment_figures.impact_figure(impacts, inputs), impact_table(impact, inputs.labels, lang=lang),
        Text(describe_kpis(impacts, inputs.labels, skip=inputs.kpi, lang=lang)) if others else None,
        kpis_table(impacts, inputs.labels, skip=inputs.kpi, lang=lang) if others else None)


def churn_view(churn: pd.DataFrame, inputs: Inputs) -> list:
    """Churn after the moments: sentences, lift figure, table."""
    st, lang = inputs.settings, inputs.lang
    return _shown(Text(describe_churn(churn, inputs.labels, churn_window_days=st.churn_window_days,
                                      exclude=st.churn_chart_exclude, lang=lang)),
                  moment_figures.churn_figure(churn, inputs), churn_summary_table(churn, inputs.labels, lang=lang))


def ranking_view(ranking: pd.DataFrame, impacts: Mapping[str, pd.DataFrame], inputs: Inputs) -> list:
    """Reach x impact: sentences, importance-performance figure, ranking table."""
    st, lang = inputs.settings, inputs.lang
    return _shown(Text(describe_ranking(ranking, churn_exclude=st.churn_chart_exclude, lang=lang)),
                  moment_figures.ipa_figure(ranking, impacts, inputs),
                  ranking_table(ranking, churn_exclude=st.churn_chart_exclude, lang=lang))


def handling_view(handling: pd.DataFrame, inputs: Inputs) -> list:
    """Handling quality: resolved against unresolved figure, the table of every split."""
    return _shown(moment_figures.resolution_figure(handling, inputs, unexposed=overall_value(inputs)),
                  handling_overview(handling, inputs.labels, lang=inputs.lang))


def handling_churn_view(by_outcome: pd.DataFrame, inputs: Inputs) -> list:
    """Churn by how the contacts were handled: sentences and table."""
    days, lang = inputs.settings.churn_window_days, inputs.lang
    return _shown(Text(describe_handling_churn(by_outcome, inputs.labels, churn_window_days=days, lang=lang)),
                  handling_churn_table(by_outcome, inputs.labels, churn_window_days=days, lang=lang))


def waits_view(waits: pd.DataFrame, inputs: Inputs) -> list:
    """Complaints after long waits: figure and table."""
    return _shown(moment_figures.waits_figure(waits, inputs), waits_table(waits, lang=inputs.lang))


def complaints_view(monthly: pd.DataFrame, inputs: Inputs) -> list:
    """Complaints over time: sentences, control charts, the out-of-control months."""
    return _shown(Text(describe_complaints(monthly, lang=inputs.lang)), moment_figures.complaints_figure(monthly, inputs),
                  complaint_signals_table(monthly, lang=inputs.lang))


def drivers_view(weights: pd.DataFrame, inputs: Inputs) -> list:
    """Drivers of the overall score: sentences, importance-performance figure, weights."""
    lang = inputs.lang
    attributes, scale = touchpoint_labels(inputs.taxonomy, lang), rating_scale(inputs.responses)
    return _shown(Text(describe_drivers(weights, attributes, scale=scale, lang=lang)),
                  moment_figures.drivers_figure(weights, attributes, scale=scale, lang=lang),
                  drivers_table(weights, attributes, lang=lang))


def contact_view(call_backs: CallBacks, inputs: Inputs, *, file: str) -> list:
    """The call-back list: sentences (with the CSV's name), counts figure, pseudonymous examples."""
    lang = inputs.lang
    return _shown(Text(describe_contact_list(call_backs.counts, recent_days=inputs.settings.recent_days,
                                             consent_log=call_backs.consent_log, file=file, lang=lang)),
                  moment_figures.contact_figure(call_backs.counts, inputs),
                  contact_list_examples(call_backs.table, lang=lang))


def candidates_view(inputs: Inputs) -> list:
    """The candidate moments: sentences and table (complaint categories in words)."""
    lang, tax = inputs.lang, inputs.taxonomy
    categories = {c: tax.label("complaint_categories", c, lang) for c in (tax.data.get("complaint_categories") or {})}
    return _shown(Text(describe_candidates(inputs.candidates, tax, lang=lang)),
                  candidates_table(inputs.candidates, categories=categories, lang=lang))


def findings_view(inputs: Inputs, **results) -> list:
    """The findings that open the report (`describe_findings` of the sections' `results`) and the
    figure most of them rest on: reach x impact (or the impact figure)."""
    impacts, ranking = results.get("impacts") or {}, results.get("ranking")
    figure = (moment_figures.ipa_figure(ranking, impacts, inputs) if ranking is not None and len(ranking)
              else moment_figures.impact_figure(impacts, inputs) if impacts else None)
    return _shown(Text(describe_findings(inputs, **results)), figure)
