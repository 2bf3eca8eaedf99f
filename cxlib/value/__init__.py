"""Customer value: historic value, RFM, predicted CLV (BG/NBD + Gamma-Gamma), value tiers and
customer experience by value tier.

One module per job, all imported here so `from cxlib import value` reaches every function:
`base` (codes, output columns, the analysis day, which orders are purchases), `historic` (value
to date, its concentration, RFM scores and segments), `clv` (the BTYD summary, the model fit,
predictions and the holdout check), `customer` (value per customer with its fallback to revenue to
date), `tiers` (value tiers, the CX KPI per tier), `exposure` (complaint and moment-of-truth
contacts per tier and the valuable customers at risk, counted on the engine), `texts` and
`describe` (what the report says, in English or German) and `stage` (what the notebook's sections
start from: `prepare` and one entry point per section). Figures are in `cxlib.value_figures`.

    hist = value.historic_value(orders)
    rfm = value.rfm_scores(hist).pipe(value.rfm_segments, rules=taxonomy.section("rfm_segments"))
    res = value.customer_value(orders, hist, horizon_months=12, annual_discount_rate=0.1)
    stage = value.prepare(tables, taxonomy, tiers={"high": 0.2, "medium": 0.3, "low": 0.5})
"""

from cxlib.value.base import (  # noqa: F401
    COMPLETED, DAYS_PER_MONTH, DAY, LAPSED_SEGMENTS, BASIS_CLV, BASIS_PLUS, BASIS_REVENUE, ANY, TRIGGERS, TIER_KPIS,
    ENABLE_ORDERS, ORDERS, FIRST_ORDER, LAST_ORDER, TENURE_DAYS, RECENCY_DAYS, R_SCORE, F_SCORE, M_SCORE, RFM,
    RFM_SEGMENT, FREQUENCY, RECENCY, T, MONETARY, EXPECTED_PURCHASES, P_ALIVE, EXPECTED_SPEND, CLV, CLV_LOW, CLV_HIGH,
    VALUE, VALUE_BASIS, VALUE_TIER, MODEL_NAME, PARAM_RANGE, FIT_METHODS, ValueInputError, ModelUnsupported,
    as_of_day, analysis_day, utc_day, completed, purchases, require_purchases, date_text,
)
from cxlib.value.historic import (  # noqa: F401
    historic_value, concentration, historic_overview, revenue_curve, rfm_scores, rfm_segments, segment_summary,
    segment_table,
)
from cxlib.value.clv import (  # noqa: F401
    clv_summary, ClvFit, check_params, fit_clv, expected_purchases, clv_draws, draws_table, draws_total, predict_clv,
    holdout_check,
)
from cxlib.value.customer import (  # noqa: F401
    CustomerValue, customer_value, holdout_reason, clv_distribution, require_values, top_customers, clv_record,
    require_model, require_holdout,
)
from cxlib.value.tiers import (  # noqa: F401
    value_tiers, tier_summary, tier_kpi, kpi_by_tier, require_tier_comparison, nps_by_tier, kpi_tier_record,
)
from cxlib.value.exposure import (  # noqa: F401
    negative_moment_reasons, require_contacts, exposure_by_tier, any_exposure, exposure_table, at_risk, risk_triggers,
    risk_summary, at_risk_table,
)
from cxlib.value.texts import method  # noqa: F401
from cxlib.value.describe import (  # noqa: F401
    TRIGGER_WORDS, BASIS_LABELS, trigger_words, basis_label, describe_historic, describe_rfm, value_table,
    unsupported_reason, model_message, model_name, describe_value_model, describe_clv, describe_value,
    top_customers_display, value_definition, describe_holdout, describe_model_check, model_display, describe_tiers,
    tier_title, tiers_display, describe_kpi_by_tier, kpi_tier_title, kpi_axis, kpi_definition, exposure_display, describe_exposure,
    risk_title, describe_at_risk, at_risk_display, describe_findings, parameter_labels,
)
from cxlib.value.stage import (  # noqa: F401
    READ_COLUMNS, Stage, prepare, first_record, parameters, historic_section, rfm_section, value_section, model_section,
    tiers_section, kpi_tier_section, complaints_section, moments_section, risk_section,
)
