"""What every section of the moments-of-truth stage starts from, computed once and never
raising on thin data, the stage's settings (the notebook's parameters), and the section entry
points that say what is missing.

    inputs = moments.prepare(tables, taxonomy, exposure_window_days=60, min_exposed=50)
    impacts = moments.impacts(inputs)          # schema.Missing without events or answers
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import ibis.expr.types as ir
import pandas as pd

from cxlib import engine, locale, metrics
from cxlib import value as customer_value
from cxlib.moments.base import (
    DEFAULT_WAIT_BANDS, HANDLING_DIMENSIONS, MOMENT, RESOLUTION, FCR, conform, count_rows, say,
)
from cxlib.moments.candidates import (
    candidate_moments, comparable_rules, handled_contacts, observation_period, with_derived_moments,
)
from cxlib.moments.churn import churn_impact, handling_churn
from cxlib.moments.complaints import complaints_after_waits, complaints_by_month
from cxlib.moments.contact import (
    DIRECT_CHANNELS, contact_list, contact_list_counts, contact_list_record, negative_moments, recent_moments,
    rows_for_customers,
)
from cxlib.moments.drivers import driver_analysis
from cxlib.moments.impact import (
    comparable_responses, handling_impact, kpi_impact, kpi_scores, kpis_present, response_exposures, survey_responses,
    varying_covariates,
)
from cxlib.moments.ranking import rank_moments
from cxlib.schema import CUSTOMER_ID, RESPONSE_ID, SEGMENT, Missing

_EVENTS = "events (customer_id, timestamp, touchpoint, contact_reason)"


@dataclass(frozen=True)
class Settings:
    """The parameters of the stage (the notebook's parameters cell), read by every section."""

    as_of: str = ""                              # last day analysed; empty: the last event
    exposure_window_days: float = 60             # an answer is exposed to a moment met this many days before it
    churn_window_days: float = 90                # churn counted this many days after a moment
    covariates: tuple = (SEGMENT,)               # customer attributes the adjusted impact is controlled for
    min_exposed: int = 50                        # fewer exposed answers (customers for churn): greyed, never ranked
    handling_min_n: int = 30                     # fewer answers in a handling group: greyed
    confidence: float = 0.95
    alpha: float = 0.05                          # false-discovery rate (Benjamini-Hochberg)
    wait_band_seconds: tuple = DEFAULT_WAIT_BANDS
    repeat_days: float = 7                       # repeat contact within: not first-contact resolution
    hotline_followup_days: float = 14            # a hotline complaint within this many days follows a wait
    churn_chart_exclude: tuple = ()              # reasons that are part of leaving: not in the churn chart
    complaint_sigma: float = 3.0
    complaint_chart: str = "laney"               # "laney" (u'-chart) or "u"
    recent_days: float = 30                      # contact list: negative moments in this many days up to the end
    callback_channels: tuple = DIRECT_CHANNELS   # call-back channels, in order of preference
    lang: str = "en"


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
    taxonomy: object                  # `config.Taxonomy`
    settings: Settings

    @property
    def window_days(self) -> float:
        return self.settings.exposure_window_days

    @property
    def lang(self) -> str:
        return self.settings.lang

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


def prepare(tables: Mapping, taxonomy, **settings) -> Inputs:
    """The shared inputs from the processed tables (`events`, `feedback`, `customers`; Ibis tables
    or DataFrames, absent optional columns read as missing), with the stage's `settings` (the
    fields of `Settings`, e.g. exposure_window_days=60, min_exposed=50, lang="de"). Works on
    empty tables: then the candidates are empty, `handled` is None and the period None."""
    unknown = sorted(set(settings) - set(Settings.__dataclass_fields__))
    if unknown:
        raise TypeError(f"prepare: unknown setting(s) {unknown}; known: {sorted(Settings.__dataclass_fields__)}")
    listed = {k: tuple(v) for k, v in settings.items() if isinstance(v, list)}
    setup = Settings(**{**settings, **listed})
    locale.check_lang(setup.lang)
    log = conform(tables["events"], "events")
    feedback = conform(tables["feedback"], "feedback")
    customers = conform(tables["customers"], "customers")
    events = with_derived_moments(log, taxonomy)
    events_n = count_rows(log)
    candidates = candidate_moments(events, taxonomy, lang=setup.lang)
    codes = candidates[MOMENT].tolist()
    handled = (engine.computed_once(handled_contacts(events, codes, wait_band_seconds=setup.wait_band_seconds,
                                                     repeat_days=setup.repeat_days)) if codes else None)
    start = end = None
    if events_n:
        try:
            start, last = observation_period(log)
            end = (pd.Timestamp(setup.as_of, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
                   if setup.as_of else last)
        except Missing:
            start = end = None
    window = setup.exposure_window_days
    responses = survey_responses(feedback, customers, covariates=setup.covariates)
    exposures = (response_exposures(handled, feedback, window_days=window) if handled is not None
                 else pd.DataFrame({RESPONSE_ID: pd.Series(dtype="str"), MOMENT: pd.Series(dtype="str"),
                                    "contacts": pd.Series(dtype="int64"),
                                    **{d: pd.Series(dtype="str") for d in HANDLING_DIMENSIONS}}))
    rules = {m: r for m, r in comparable_rules(taxonomy).items() if m in codes}
    comparable = comparable_responses(events, feedback, rules, window_days=window)
    return Inputs(log=log, events=events, feedback=feedback, customers=customers, candidates=candidates, handled=handled,
                  start=start, end=end, responses=responses, exposures=exposures, comparable=comparable,
                  kpis=kpis_present(responses), covariates=varying_covariates(responses, setup.covariates),
                  events_n=events_n, customers_n=count_rows(customers), taxonomy=taxonomy, settings=setup)


def require_moments(inputs: Inputs) -> pd.DataFrame:
    """The candidate moments; `schema.Missing` without events or without any moment in them."""
    if inputs.events_n == 0 or inputs.start is None:
        raise Missing("no events", enable=_EVENTS)
    if inputs.candidates.empty:
        raise Missing("no contact reason or derived moment occurs in the events", enable="events.contact_reason")
    return inputs.candidates


def require_answers(inputs: Inputs) -> None:
    """`schema.Missing` unless some dated KPI answer of a known customer followed a moment."""
    require_moments(inputs)
    if not inputs.kpis:
        raise Missing("no NPS, CSAT or CES answers of known customers with a date",
                      enable="feedback.nps, feedback.csat or feedback.ces with feedback.customer_id and feedback.timestamp")
    if inputs.exposures.empty:
        raise Missing(f"no survey answer follows a contact of a moment within {inputs.window_days:g} days",
                      enable="feedback.customer_id matching events.customer_id")


def impacts(inputs: Inputs) -> dict[str, pd.DataFrame]:
    """`kpi_impact` of every KPI the data has ({kpi: table}, NPS first), compared like with like
    where the taxonomy says so. `schema.Missing` without events, moments or answers after them."""
    require_answers(inputs)
    st = inputs.settings
    return {kpi: kpi_impact(inputs.responses, inputs.exposures, moments=inputs.codes, kpi=kpi,
                            covariates=inputs.covariates, min_n=st.min_exposed, confidence=st.confidence, alpha=st.alpha,
                            comparable=inputs.comparable)
            for kpi in inputs.kpis}


def _require_customer_contacts(inputs: Inputs) -> None:
    require_moments(inputs)
    known = inputs.handled.filter(inputs.handled[CUSTOMER_ID].notnull())
    if count_rows(known) == 0:
        raise Missing("the contacts do not name their customers", enable="events.customer_id")


def churn_after_moments(inputs: Inputs) -> pd.DataFrame:
    """`churn_impact` of every candidate moment over the observation period. `schema.Missing`
    without moments, without contacts of known customers or when nobody churned in the period."""
    _require_customer_contacts(inputs)
    st = inputs.settings
    return churn_impact(inputs.handled, inputs.customers, start=inputs.start, end=inputs.end,
                        churn_window_days=st.churn_window_days, moments=inputs.codes, covariates=inputs.covariates,
                        min_n=st.min_exposed, confidence=st.confidence, alpha=st.alpha)


def focus_moments(inputs: Inputs) -> list[str]:
    """The moments whose handling is examined: those the taxonomy names as contact reasons."""
    c = inputs.candidates
    return c.loc[c["flagged"] & ~c["derived"], MOMENT].tolist()


def _require_focus(inputs: Inputs) -> list[str]:
    focus = focus_moments(inputs)
    if not focus:
        raise Missing("no contact reason the taxonomy names as a moment occurs", enable="events.contact_reason")
    return focus


def handling_quality(inputs: Inputs) -> pd.DataFrame:
    """`handling_impact` of the focus moments on the ranked KPI. `schema.Missing` without answers
    after them or without a moment the taxonomy names."""
    require_answers(inputs)
    focus = _require_focus(inputs)
    st = inputs.settings
    out = handling_impact(inputs.responses, inputs.exposures, moments=focus, kpi=inputs.kpi, min_n=st.handling_min_n,
                          confidence=st.confidence)
    out.attrs["kpi"] = inputs.kpi
    if out.empty:
        raise Missing(f"no survey answer follows a contact of a named moment within {inputs.window_days:g} days",
                      enable="feedback.customer_id matching events.customer_id")
    return out


def handling_churn_by_outcome(inputs: Inputs) -> pd.DataFrame:
    """`handling_churn` of the focus moments by resolution and first-contact resolution.
    `schema.Missing` as `churn_after_moments`, or without a moment the taxonomy names."""
    _require_customer_contacts(inputs)
    focus = _require_focus(inputs)
    st = inputs.settings
    return handling_churn(inputs.handled, inputs.customers, start=inputs.start, end=inputs.end,
                          churn_window_days=st.churn_window_days, moments=focus, dimensions=[RESOLUTION, FCR],
                          min_n=st.handling_min_n, confidence=st.confidence, alpha=st.alpha)


def complaints_after_long_waits(inputs: Inputs) -> pd.DataFrame:
    """`complaints_after_waits` on the event log with the stage's wait bands and follow-up days."""
    st = inputs.settings
    return complaints_after_waits(inputs.log, followup_days=st.hotline_followup_days,
                                  wait_band_seconds=st.wait_band_seconds, confidence=st.confidence)


def complaints_over_time(inputs: Inputs) -> pd.DataFrame:
    """`complaints_by_month` over the observation period with the stage's control chart."""
    st = inputs.settings
    return complaints_by_month(inputs.log, inputs.customers, inputs.taxonomy, start=inputs.start, end=inputs.end,
                               sigma=st.complaint_sigma, chart=st.complaint_chart, lang=st.lang)


def survey_drivers(inputs: Inputs) -> pd.DataFrame:
    """`driver_analysis` of the survey answers (at least `min_exposed` respondents)."""
    return driver_analysis(inputs.responses, min_n=inputs.settings.min_exposed)


def setup_record(inputs: Inputs) -> dict:
    """The `moments` entry of results.json: the period, the KPIs and covariates used and the
    parameters of the stage (`window_days` and `min_n`, the keys read before the parameters were
    renamed, stay beside `exposure_window_days` and `min_exposed`)."""
    st = inputs.settings
    period = {"from": inputs.start, "to": inputs.end} if inputs.start is not None else None
    return {"period": period, "kpis": inputs.kpis, "covariates_used": inputs.covariates,
            "window_days": st.exposure_window_days, "exposure_window_days": st.exposure_window_days,
            "churn_window_days": st.churn_window_days, "covariates": list(st.covariates), "min_n": st.min_exposed,
            "min_exposed": st.min_exposed, "complaint_chart": st.complaint_chart}


def setup_table(inputs: Inputs, *, engine: str = "duckdb") -> dict:
    """The parameters to show, labelled in the report's language, with the period in words (or
    that there are no dated events): {label: value}."""
    st, lang = inputs.settings, inputs.lang
    period = (say("words.period", lang, start=locale.format_date(inputs.start, lang), end=locale.format_date(inputs.end, lang))
              if inputs.start is not None else say("words.no_dated_events", lang))
    shown = {"exposure_window_days": st.exposure_window_days, "churn_window_days": st.churn_window_days,
             "min_exposed": st.min_exposed, "handling_min_n": st.handling_min_n, "confidence": st.confidence,
             "alpha": st.alpha, "complaint_chart": st.complaint_chart, "recent_days": st.recent_days,
             "callback_channels": [inputs.taxonomy.label("channels", c, lang) for c in st.callback_channels]}
    return {say("setup.period", lang): period,
            say("setup.kpis", lang): ", ".join(k.upper() for k in inputs.kpis) or say("setup.none", lang),
            say("setup.adjusted_for", lang): (", ".join(locale.label(c, lang) for c in inputs.covariates)
                                              or say("setup.nothing_varies", lang)),
            say("setup.engine", lang): engine, **{say(f"setup.{k}", lang): v for k, v in shown.items()}}


def ranked_moments(inputs: Inputs, impacts: Mapping[str, pd.DataFrame] | None,
                   churn: pd.DataFrame | None = None) -> pd.DataFrame:
    """`rank_moments` on the main KPI's impact (NPS where the data has it), with churn where it
    was measured (None: not measured). `schema.Missing` when no KPI impact was measured (None)."""
    if inputs.kpi is None or not impacts or inputs.kpi not in impacts:
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


@dataclass(frozen=True)
class CallBacks:
    """The call-back list of a run: `table` (`contact_list`), its `counts`
    (`contact_list_counts`) and whether a consent log overrode the CRM opt-ins."""

    table: pd.DataFrame
    counts: dict
    consent_log: bool


def call_back_list(inputs: Inputs, orders, ranking: pd.DataFrame | None = None, *,
                   consent_log: pd.DataFrame | None = None) -> CallBacks:
    """`contact_list` of the customers with a contact of a negative moment (`negative_moments`:
    the classic ones, complaints and the significantly negative ones of `ranking`) in the
    `recent_days` up to the end of the period, ordered by historic value (`value.historic_value`
    of their `orders`). `schema.Missing` without contacts of moments or of known customers."""
    st = inputs.settings
    recent = recent_moments(inputs.handled, moments=negative_moments(inputs.taxonomy, ranking), as_of=inputs.end,
                            recent_days=st.recent_days)
    worth = customer_value.historic_value(rows_for_customers(orders, recent), as_of=inputs.end)
    table = contact_list(recent, rows_for_customers(inputs.customers, recent), inputs.responses, inputs.taxonomy,
                         as_of=inputs.end, recent_days=st.recent_days, value=worth.rename(columns={"revenue": "value"}),
                         consent_log=consent_log, channels=st.callback_channels, lang=st.lang)
    return CallBacks(table=table, counts=contact_list_counts(table), consent_log=consent_log is not None)


def call_back_record(call_backs: CallBacks, inputs: Inputs, *, file: str) -> dict:
    """The `contact_list` entry of results.json (`contact_list_record`) of a run's call-back list."""
    st = inputs.settings
    return contact_list_record(call_backs.counts, recent_days=st.recent_days, as_of=inputs.end,
                               channels=st.callback_channels, file=file, consent_log=call_backs.consent_log)
