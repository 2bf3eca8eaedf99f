"""What every section of the moments-of-truth stage starts from, computed once and never
raising on thin data, and the section entry points that say what is missing.

    inputs = moments.prepare(tables, taxonomy, window_days=60)
    impacts = moments.impacts(inputs, min_n=50)          # schema.Missing without events or answers
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis.expr.types as ir
import pandas as pd

from cxlib import metrics
from cxlib.moments.base import (
    DEFAULT_WAIT_BANDS, HANDLING_DIMENSIONS, MOMENT, RESOLUTION, FCR, conform, count_rows,
)
from cxlib.moments.candidates import (
    candidate_moments, comparable_rules, handled_contacts, observation_period, with_derived_moments,
)
from cxlib.moments.churn import churn_impact, handling_churn
from cxlib.moments.contact import DIRECT_CHANNELS, contact_list, rows_for_customers
from cxlib.moments.impact import (
    comparable_responses, handling_impact, kpi_impact, kpi_scores, kpis_present, response_exposures, survey_responses,
    varying_covariates,
)
from cxlib.moments.ranking import rank_moments
from cxlib.schema import CUSTOMER_ID, RESPONSE_ID, SEGMENT, Missing

_EVENTS = "events (customer_id, timestamp, touchpoint, contact_reason)"


@dataclass(frozen=True)
class Inputs:
    """The stage's shared inputs (see `prepare`)."""

    log: ir.Table                     # the event log as stored (every canonical column)
    events: ir.Table                  # the log plus the derived moments
    feedback: ir.Table
    customers: ir.Table
    candidates: pd.DataFrame          # moments that occur (`candidate_moments`); empty without events
    handled: ir.Table | None          # contacts of the candidate moments; None when no moment occurs
    start: pd.Timestamp | None        # first event (UTC); None without dated events
    end: pd.Timestamp | None          # last day analysed (as_of, else the last event)
    responses: pd.DataFrame           # one row per survey answer with the covariates
    exposures: pd.DataFrame           # `response_exposures`
    comparable: pd.DataFrame          # `comparable_responses`
    kpis: list                        # KPIs with dated answers of known customers, nps / csat / ces order
    covariates: list                  # the covariates with two levels or more among the answers
    events_n: int
    customers_n: int
    window_days: float

    @property
    def codes(self) -> list[str]:
        return self.candidates[MOMENT].tolist()

    @property
    def labels(self) -> dict[str, str]:
        return dict(zip(self.candidates[MOMENT], self.candidates["label"]))

    @property
    def kpi(self) -> str | None:
        """The KPI the ranking uses: NPS when the data has it, else CSAT, else CES."""
        return self.kpis[0] if self.kpis else None


def prepare(tables: Mapping, taxonomy, *, as_of: str = "", window_days: float = 60,
            covariates: Sequence[str] = (SEGMENT,), wait_band_seconds: Sequence[float] = DEFAULT_WAIT_BANDS,
            repeat_days: float = 7, lang: str = "en") -> Inputs:
    """The shared inputs from the processed tables (`events`, `feedback`, `customers`; Ibis tables
    or DataFrames, absent optional columns read as missing). Works on empty tables: then the
    candidates are empty, `handled` is None and the period None."""
    log = conform(tables["events"], "events")
    feedback = conform(tables["feedback"], "feedback")
    customers = conform(tables["customers"], "customers")
    events = with_derived_moments(log, taxonomy)
    events_n = count_rows(log)
    candidates = candidate_moments(events, taxonomy, lang=lang)
    codes = candidates[MOMENT].tolist()
    handled = (handled_contacts(events, codes, wait_band_seconds=wait_band_seconds, repeat_days=repeat_days)
               if codes else None)
    start = end = None
    if events_n:
        try:
            start, last = observation_period(log)
            end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(seconds=1) if as_of else last
        except Missing:
            start = end = None
    responses = survey_responses(feedback, customers, covariates=covariates)
    exposures = (response_exposures(handled, feedback, window_days=window_days) if handled is not None
                 else pd.DataFrame({RESPONSE_ID: pd.Series(dtype="str"), MOMENT: pd.Series(dtype="str"),
                                    "contacts": pd.Series(dtype="int64"),
                                    **{d: pd.Series(dtype="str") for d in HANDLING_DIMENSIONS}}))
    rules = {m: r for m, r in comparable_rules(taxonomy).items() if m in codes}
    comparable = comparable_responses(events, feedback, rules, window_days=window_days)
    return Inputs(log=log, events=events, feedback=feedback, customers=customers, candidates=candidates, handled=handled,
                  start=start, end=end, responses=responses, exposures=exposures, comparable=comparable,
                  kpis=kpis_present(responses), covariates=varying_covariates(responses, covariates),
                  events_n=events_n, customers_n=count_rows(customers), window_days=window_days)


def require_moments(inputs: Inputs) -> None:
    """`schema.Missing` without events or without any moment in them."""
    if inputs.events_n == 0 or inputs.start is None:
        raise Missing("no events", enable=_EVENTS)
    if inputs.candidates.empty:
        raise Missing("no contact reason or derived moment occurs in the events", enable="events.contact_reason")


def require_answers(inputs: Inputs) -> None:
    """`schema.Missing` unless some dated KPI answer of a known customer followed a moment."""
    require_moments(inputs)
    if not inputs.kpis:
        raise Missing("no NPS, CSAT or CES answers of known customers with a date",
                      enable="feedback.nps, feedback.csat or feedback.ces with feedback.customer_id and feedback.timestamp")
    if inputs.exposures.empty:
        raise Missing(f"no survey answer follows a contact of a moment within {inputs.window_days:g} days",
                      enable="feedback.customer_id matching events.customer_id")


def impacts(inputs: Inputs, *, min_n: int = 100, confidence: float = 0.95, alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """`kpi_impact` of every KPI the data has ({kpi: table}, NPS first), compared like with like
    where the taxonomy says so. `schema.Missing` without events, moments or answers after them."""
    require_answers(inputs)
    return {kpi: kpi_impact(inputs.responses, inputs.exposures, moments=inputs.codes, kpi=kpi,
                            covariates=inputs.covariates, min_n=min_n, confidence=confidence, alpha=alpha,
                            comparable=inputs.comparable)
            for kpi in inputs.kpis}


def _require_customer_contacts(inputs: Inputs) -> None:
    require_moments(inputs)
    known = inputs.handled.filter(inputs.handled[CUSTOMER_ID].notnull())
    if count_rows(known) == 0:
        raise Missing("the contacts do not name their customers", enable="events.customer_id")


def churn_after_moments(inputs: Inputs, *, churn_window_days: float = 90, min_n: int = 30, confidence: float = 0.95,
          alpha: float = 0.05) -> pd.DataFrame:
    """`churn_impact` of every candidate moment over the observation period. `schema.Missing`
    without moments, without contacts of known customers or when nobody churned in the period."""
    _require_customer_contacts(inputs)
    return churn_impact(inputs.handled, inputs.customers, start=inputs.start, end=inputs.end,
                        churn_window_days=churn_window_days, moments=inputs.codes, covariates=inputs.covariates,
                        min_n=min_n, confidence=confidence, alpha=alpha)


def focus_moments(inputs: Inputs) -> list[str]:
    """The moments whose handling is examined: those the taxonomy names as contact reasons."""
    c = inputs.candidates
    return c.loc[c["flagged"] & ~c["derived"], MOMENT].tolist()


def handling_quality(inputs: Inputs, *, min_n: int = 30, confidence: float = 0.95) -> pd.DataFrame:
    """`handling_impact` of the focus moments on the ranked KPI. `schema.Missing` without answers
    after them or without a moment the taxonomy names."""
    require_answers(inputs)
    focus = focus_moments(inputs)
    if not focus:
        raise Missing("no contact reason the taxonomy names as a moment occurs", enable="events.contact_reason")
    out = handling_impact(inputs.responses, inputs.exposures, moments=focus, kpi=inputs.kpi, min_n=min_n,
                          confidence=confidence)
    out.attrs["kpi"] = inputs.kpi
    if out.empty:
        raise Missing(f"no survey answer follows a contact of a named moment within {inputs.window_days:g} days",
                      enable="feedback.customer_id matching events.customer_id")
    return out


def handling_churn_by_outcome(inputs: Inputs, *, churn_window_days: float = 90, min_n: int = 30,
                              confidence: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """`handling_churn` of the focus moments by resolution and first-contact resolution.
    `schema.Missing` as `churn_after_moments`, or without a moment the taxonomy names."""
    _require_customer_contacts(inputs)
    focus = focus_moments(inputs)
    if not focus:
        raise Missing("no contact reason the taxonomy names as a moment occurs", enable="events.contact_reason")
    return handling_churn(inputs.handled, inputs.customers, start=inputs.start, end=inputs.end,
                          churn_window_days=churn_window_days, moments=focus, dimensions=[RESOLUTION, FCR],
                          min_n=min_n, confidence=confidence, alpha=alpha)


def setup_record(inputs: Inputs, **parameters) -> dict:
    """The `moments` entry of results.json: the period and the parameters of the stage."""
    period = {"from": inputs.start, "to": inputs.end} if inputs.start is not None else None
    return {"period": period, "kpis": inputs.kpis, "covariates_used": inputs.covariates,
            "window_days": inputs.window_days, **parameters}


def setup_table(inputs: Inputs, **parameters) -> dict:
    """The parameters to show, with the period in words (or that there are no dated events)."""
    period = (f"{inputs.start:%Y-%m-%d} to {inputs.end:%Y-%m-%d}" if inputs.start is not None else "no dated events")
    return {"period": period, "KPIs with answers": ", ".join(k.upper() for k in inputs.kpis) or "none",
            "adjusted for": ", ".join(inputs.covariates) or "nothing (no covariate varies)", **parameters}


def ranked_moments(inputs: Inputs, impacts: Mapping[str, pd.DataFrame], churn: pd.DataFrame | None = None) -> pd.DataFrame:
    """`rank_moments` on the main KPI's impact (NPS where the data has it), with churn where it
    was measured. `schema.Missing` when no KPI impact was measured."""
    if inputs.kpi is None or inputs.kpi not in impacts:
        raise Missing("no KPI impact to rank the moments by",
                      enable="feedback.nps, feedback.csat or feedback.ces answers after contacts of the moments")
    return rank_moments(inputs.candidates, impacts[inputs.kpi], churn, customers=inputs.customers_n)


def overall_value(inputs: Inputs) -> float:
    """The main KPI over all dated answers of known customers (NaN without answers)."""
    if inputs.kpi is None:
        return math.nan
    r = inputs.responses
    answers = r.loc[r[CUSTOMER_ID].notna() & r[inputs.kpi].notna()]
    return float(metrics.kpi_estimate(kpi_scores(answers, inputs.kpi), inputs.kpi)["value"]) if len(answers) else math.nan


def call_back_list(recent: pd.DataFrame, inputs: Inputs, taxonomy, *, value: pd.DataFrame,
                   consent_log: pd.DataFrame | None = None, recent_days: float = 30,
                   channels: Sequence[str] = DIRECT_CHANNELS, lang: str = "en") -> pd.DataFrame:
    """`contact_list` for the customers of `recent` (`recent_moments`) up to the end of the
    period, with their historic `value` (customer_id, revenue: `value.historic_value`)."""
    return contact_list(recent, rows_for_customers(inputs.customers, recent), inputs.responses, taxonomy,
                        as_of=inputs.end, recent_days=recent_days, value=value.rename(columns={"revenue": "value"}),
                        consent_log=consent_log, channels=channels, lang=lang)
