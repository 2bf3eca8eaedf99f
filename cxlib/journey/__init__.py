"""Customer journeys from the event log: stages, episodes, funnel, transitions, paths, timing,
conversion, repeat customers, campaign response, lost sales, cancellations, tenure and churn.

One module per job, all imported here so `from cxlib import journey` reaches every function:
`base` (codes, the error, the checks that raise `schema.Missing`, helpers over Ibis tables),
`stages` (customer attributes, stages, episodes, the log at a glance, customers per stage),
`sales_funnel` (customers reaching steps in order), `paths` (transitions, path variants, time between
steps), `conversion` (THE definitions of conversion rate, repeat-customer rate and campaign
response rate; time between orders; opportunities that convert or are lost), `retention`
(cancelled orders and their reasons, churn over tenure), `focus` (one business case),
`inputs` (what the report's sections start from) and `record` (the results.json shape).
Words are in `cxlib.journey_describe`, report tables in `cxlib.journey_tables`, figures in
`cxlib.journey_figures`.

Every computation over all events is an Ibis expression executed on the backend the input
tables live on (DuckDB by default, PySpark unchanged; see `cxlib.engine`); only aggregated
results come back as pandas DataFrames. Inputs are Ibis tables with the canonical columns of
`cxlib.schema` (a pandas DataFrame is accepted too and runs in memory on DuckDB).

A computation the data cannot support (no events, events without customer ids, no step of the
funnel, no orders, no leads, no churn dates, …) raises `schema.Missing` naming what is missing
and which canonical table or column would enable it. The checks look at the aggregated result,
or count on the engine when it is empty; events are never loaded into pandas for them.

    events = journey.with_stages(tables["events"], taxonomy)
    journey.funnel(events, ["web_visit", "quote", "order", "activation"], by="segment")
"""

from cxlib import engine  # noqa: F401  (the engine the journey computations run on)
from cxlib.journey.base import (  # noqa: F401
    CANCEL_STEP, CANCELLED, CUSTOMER_TYPES, DEFAULT_EXCLUDED_STATUSES, ELLIPSIS, EPISODE, NEEDS_CUSTOMER, NEEDS_EVENTS,
    NEEDS_ORDERS, NEW, PATH_SEP, PURCHASE_STAGE, REPEAT, SECONDS_PER_DAY, UNKNOWN, JourneyError, require_journeys,
    step_label,
)
from cxlib.journey.stages import (  # noqa: F401
    attach, episode_summary, overview, period, segments, stage_summary, with_episodes, with_stages,
)
from cxlib.journey.sales_funnel import funnel, reach  # noqa: F401
from cxlib.journey.paths import (  # noqa: F401
    path_variants, time_between_steps, transition_counts, transitions, transitions_by_node,
)
from cxlib.journey.conversion import (  # noqa: F401
    campaign_response, conversion_rate, lost_sales, opportunities, order_intervals, repeat_customer_rate,
    repeat_vs_new_conversion,
)
from cxlib.journey.retention import cancellation_reasons, cancelled_orders, tenure_churn  # noqa: F401
from cxlib.journey.focus import FOCUS_KEYS, apply_focus, parse_focus  # noqa: F401
from cxlib.journey.inputs import TABLES, Inputs, prepare  # noqa: F401
from cxlib.journey.record import RECORDS, estimate, results_record  # noqa: F401
