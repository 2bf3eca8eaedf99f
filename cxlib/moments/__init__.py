"""Moments of truth: which contacts make or break loyalty, how well they are handled, how
complaints develop, and whom to call back.

One module per job, all imported here so `from cxlib import moments` reaches every function:
`candidates` (derived moments dated when the customer experiences them, the candidates that
occur, handled contacts), `impact` (exposure of survey answers, raw and adjusted impact on
NPS / CSAT / CES, like-with-like comparison, handling quality), `churn` (churn after a moment
on customer time), `ranking` (reach x impact, magic moments), `complaints` (complaints after
long waits, monthly complaint rates or counts against control limits), `drivers` (relative
weights of attribute ratings), `contact` (the consent-gated call-back list), `inputs`
(the stage's settings, what every section starts from, and the section entry points that
raise `schema.Missing` for what the data lacks), `findings` (the sentences that open the
report) and `views` (what each section shows: sentences, figure, table, in the report's
language). Figures are in `cxlib.moments.figures`; texts in `cxlib/locales/moments.<lang>.yml`.

Every computation over all events is an Ibis expression run by the engine of the input
tables (`cxlib.engine`: DuckDB by default, PySpark unchanged); only aggregated results and the
survey-response level come back as pandas.

    inputs = moments.prepare(tables, taxonomy, exposure_window_days=60, min_exposed=50, lang="de")
    impacts = moments.impacts(inputs)
    display(*moments.impact_view(impacts, inputs))
"""

from cxlib.moments.base import (  # noqa: F401
    SECONDS_PER_DAY, UNKNOWN, MOMENT, DIMENSION, LEVEL, CATEGORY, MONTH, RESOLUTION, FCR, WAIT_BAND,
    HANDLING_DIMENSIONS, DEFAULT_WAIT_BANDS, NOT_RECORDED, MomentsError, conform, conform_frame, count_rows,
    moment_label, wait_band_labels, design_matrix, interval_text, signed, join_words, say, num, pct,
)
from cxlib.moments.candidates import (  # noqa: F401
    DATED_AT, with_derived_moments, comparable_rules, moment_catalogue, candidate_moments, candidates_table,
    describe_candidates, handled_contacts, observation_period,
)
from cxlib.moments.impact import (  # noqa: F401
    KPI_ORDER, kpi_scores, kpis_present, varying_covariates, comparable_responses, response_exposures, kpi_outcome,
    adjusted_difference, kpi_impact, handling_impact, survey_responses, handling_table, describe_impact,
    impact_table, kpis_table, describe_kpis, handling_overview,
)
from cxlib.moments.churn import (  # noqa: F401
    require_churn, churn_cells, rate_ratio, churn_table, churn_impact, handling_churn, churn_summary_table,
    churn_chart_rows, top_churn_moment, describe_churn, handling_churn_table, describe_handling_churn,
    resolution_contrast,
)
from cxlib.moments.ranking import (  # noqa: F401
    RANKING_COLUMNS, empty_ranking, rank_moments, ranking_record, ranking_table, describe_ranking,
    importance_performance, churn_without_stake,
)
from cxlib.moments.complaints import (  # noqa: F401
    PER_1000, COUNT, complaints_after_waits, u_chart, COMPLAINT_CHARTS, complaint_rates, complaint_counts,
    complaints_by_month, complaint_chart_columns, complaint_record, describe_complaints, waits_table,
    complaint_signals_table, top_breakout,
)
from cxlib.moments.drivers import (  # noqa: F401
    OVERALL, RELATIONSHIP, overall_rows, driver_outcome, relative_weights, touchpoint_ratings, driver_weights,
    rating_scale, drivers_table, describe_drivers, driver_analysis, touchpoint_labels, driver_name,
)
from cxlib.moments.contact import (  # noqa: F401
    DIRECT_CHANNELS, INCLUDED, NO_CONSENT, OTHER, STATUSES, CONSENT, negative_moments, recent_moments,
    rows_for_customers, parse_channels, consented_channels, contact_list, contact_list_counts, contact_list_export,
    describe_contact_list, contact_list_record, contact_list_examples,
)
from cxlib.moments.inputs import (  # noqa: F401
    Settings, Inputs, CallBacks, prepare, require_moments, require_answers, impacts, churn_after_moments,
    focus_moments, handling_quality, handling_churn_by_outcome, complaints_after_long_waits, complaints_over_time,
    survey_drivers, setup_record, setup_table,
    ranked_moments, overall_value, call_back_list, call_back_record,
)
from cxlib.moments.findings import describe_findings  # noqa: F401
from cxlib.moments.views import (  # noqa: F401
    Text, impact_view, churn_view, ranking_view, handling_view, handling_churn_view, waits_view, complaints_view,
    drivers_view, contact_view, candidates_view, findings_view,
)
