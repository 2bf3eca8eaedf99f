"""What the sections of the customer-value report start from, and one entry point per section.

`prepare` values every customer once (historic value, predicted CLV or its fallback, value tiers);
each `*_section` function checks what its section needs (schema.Missing with what is missing and
what would enable it), computes, and returns what the section shows together with the notebook's
results dict extended by the section's numbers (a new dict; results.json `value`).

    stage = prepare(tables, taxonomy, tiers={"high": 0.2, "medium": 0.3, "low": 0.5}, lang="de")
    tier_table, results = tiers_section(stage, results)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from cxlib.value.base import analysis_day, date_text, require_purchases
from cxlib.value.customer import (
    CustomerValue, clv_record, customer_value, require_holdout, require_model, require_values,
)
from cxlib.value.describe import basis_label, parameter_labels
from cxlib.value.exposure import any_exposure, at_risk, exposure_by_tier, negative_moment_reasons, risk_summary
from cxlib.value.historic import historic_overview, historic_value, rfm_scores, rfm_segments, segment_table
from cxlib.value.tiers import kpi_by_tier, kpi_tier_record, tier_summary, value_tiers
from cxlib.schema import CATEGORY, CES, CSAT, CSAT_MAX, CUSTOMER_ID, NPS, REVENUE, STATUS, TIMESTAMP

# the columns of the pandas tables the sections read (catalog.read(..., columns=READ_COLUMNS)):
# order ids, products, comments and the rest stay on disk (at 5M customers 0.6 GB of 1.5 GB)
READ_COLUMNS = {"orders": [CUSTOMER_ID, TIMESTAMP, REVENUE, STATUS, CATEGORY],
                "feedback": [CUSTOMER_ID, TIMESTAMP, NPS, CSAT, CSAT_MAX, CES]}


@dataclass(frozen=True)
class Stage:
    """The inputs of the value sections and every customer's value (`prepare`)."""

    orders: pd.DataFrame           # canonical orders (pandas)
    feedback: pd.DataFrame         # canonical feedback (pandas)
    events: object                 # canonical events: an engine (Ibis) table, or pandas
    taxonomy: object
    end: pd.Timestamp | None       # the analysis day (None without any dated row)
    historic: pd.DataFrame         # historic_value
    value: CustomerValue           # customer_value
    tiered: pd.DataFrame           # value_tiers of value.customers
    lang: str = "en"

    @property
    def basis(self) -> str:
        """What a customer's value is, in words of the report's language."""
        return basis_label(self.value, self.lang)


def prepare(tables: Mapping, taxonomy, *, as_of: str = "", tiers: Mapping[str, float], horizon_months: int = 12,
            annual_discount_rate: float = 0.10, holdout_months: int = 6, method: str = "map", draws: int = 300,
            min_repeat_buyers: int = 50, seed: int = 0, categories: Sequence[str] = (), lang: str = "en") -> Stage:
    """Value every customer once: `tables` holds orders and feedback (pandas) and events (an engine
    table or pandas); the analysis day is `as_of` or the last day of any of them. The CLV model falls
    back to revenue to date when the data cannot support it (see customer_value)."""
    orders, feedback, events = tables["orders"], tables["feedback"], tables["events"]
    end = analysis_day(as_of, orders, feedback, events)
    historic = historic_value(orders, as_of=end)
    res = customer_value(orders, historic, as_of=end, horizon_months=horizon_months,
                         annual_discount_rate=annual_discount_rate, holdout_months=holdout_months, method=method,
                         draws=draws, min_repeat_buyers=min_repeat_buyers, seed=seed, categories=categories)
    return Stage(orders=orders, feedback=feedback, events=events, taxonomy=taxonomy, end=end, historic=historic,
                 value=res, tiered=value_tiers(res.customers, tiers=tiers), lang=lang)


def first_record(stage: Stage) -> dict:
    """The results every value record starts with: {as_of: 'YYYY-MM-DD' or None}."""
    return {"as_of": date_text(stage.end, missing=None)}


def parameters(stage: Stage, **values) -> dict:
    """The parameters table of the report in its language: the analysis day and the CLV settings
    of `stage`, then `values` (notebook parameters by name)."""
    details = stage.value.details
    return parameter_labels(stage.lang, as_of=date_text(stage.end), horizon_months=details.get("horizon_months"),
                            annual_discount_rate=details.get("annual_discount_rate"), **values)


def historic_section(stage: Stage, results: Mapping) -> tuple[dict, dict]:
    """The headline numbers of revenue to date (historic_overview) and the results with them."""
    overview = historic_overview(stage.historic, stage.orders)
    return overview, {**results, "historic": overview}


def rfm_section(stage: Stage, results: Mapping, *, bins: int = 5) -> tuple[pd.DataFrame, dict]:
    """RFM segments with their labels in the stage's language (segment_table) and the results with
    each segment's customers and shares."""
    require_purchases(stage.orders, stage.historic)
    scores = rfm_scores(stage.historic, bins=bins).pipe(rfm_segments, rules=stage.taxonomy.section("rfm_segments"),
                                                         bins=bins)
    segments = segment_table(scores, stage.taxonomy, lang=stage.lang)
    return segments, {**results, "rfm_segments": segments[["rfm_segment", "customers", "customer_share", "revenue_share"]]}


def value_section(stage: Stage, results: Mapping) -> dict:
    """The results with the value per customer (clv_record); schema.Missing when no customer is valued."""
    require_values(stage.value, stage.orders, stage.historic)
    details = stage.value.details
    return {**results, **clv_record(stage.value, horizon_months=details.get("horizon_months"),
                                    annual_discount_rate=details.get("annual_discount_rate"))}


def model_section(stage: Stage, results: Mapping, *, min_repeat_buyers: int = 50) -> tuple[tuple, dict]:
    """(the fitted model's parameters, the holdout table) and the results with the holdout total;
    schema.Missing when the model or its check is missing (the reason, see require_model)."""
    require_purchases(stage.orders, stage.historic)
    model = require_model(stage.value, min_repeat_buyers=min_repeat_buyers)
    check = require_holdout(stage.value, min_repeat_buyers=min_repeat_buyers)
    return (model, check), {**results, "holdout": check.iloc[-1][["customers", "predicted", "actual", "error_pct"]]}


def tiers_section(stage: Stage, results: Mapping) -> tuple[pd.DataFrame, dict]:
    """Customers and value per tier (tier_summary) and the results with them."""
    require_purchases(stage.orders, stage.historic)
    table = tier_summary(stage.tiered)
    return table, {**results, "tiers": table[["value_tier", "customers", "value_total", "value_share"]]}


def kpi_tier_section(stage: Stage, results: Mapping, *, min_n: int = 30) -> tuple[pd.DataFrame, dict]:
    """The CX KPI per value tier (kpi_by_tier, answers up to the analysis day) and the results with it."""
    require_purchases(stage.orders, stage.historic)
    by_tier = kpi_by_tier(stage.feedback, stage.tiered, as_of=stage.end, min_n=min_n)
    return by_tier, {**results, **kpi_tier_record(by_tier)}


def complaints_section(stage: Stage, results: Mapping, *, window_days: int) -> tuple[pd.DataFrame, dict]:
    """Share of each tier's customers with a complaint contact per complaint category (exposure_by_tier,
    on the engine) and the results with the share for any complaint."""
    require_purchases(stage.orders, stage.historic)
    exposure = exposure_by_tier(stage.tiered, stage.events, reasons=stage.taxonomy.complaint_category_of_reason,
                                as_of=stage.end, window_days=window_days)
    return exposure, {**results, "complaint_exposure": any_exposure(exposure)}


def moments_section(stage: Stage, results: Mapping, *, window_days: int) -> tuple[pd.DataFrame, dict]:
    """Share of each tier's customers with a moment-of-truth contact per moment (on the engine) and the
    results with it."""
    require_purchases(stage.orders, stage.historic)
    reasons = dict(zip(stage.taxonomy.moment_reasons, stage.taxonomy.moment_reasons))
    exposure = exposure_by_tier(stage.tiered, stage.events, reasons=reasons, as_of=stage.end, window_days=window_days)
    return exposure, {**results, "moment_exposure": exposure}


def risk_section(stage: Stage, results: Mapping, *, high_tiers: Sequence[str], window_days: int) -> tuple[tuple, dict]:
    """(the valuable customers at risk, their risk_summary) and the results with the count, value and
    triggers; contacts are counted on the engine."""
    require_purchases(stage.orders, stage.historic)
    risk = at_risk(stage.tiered, stage.events, stage.feedback, high_tiers=high_tiers,
                   negative_reasons=negative_moment_reasons(stage.taxonomy), as_of=stage.end, window_days=window_days)
    info = risk_summary(risk, stage.tiered, high_tiers=high_tiers)
    return (risk, info), {**results, "at_risk": info["at_risk"], "at_risk_value": info["value"],
                          "at_risk_triggers": info["triggers"], "at_risk_customers": info["customers"]}
