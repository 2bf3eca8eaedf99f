"""What the customer-value report says, in English or German: sentences with the numbers, figure
titles, the tables as a reader sees them and the findings that open the report.

Every function takes the frames the computing modules return (a screen full) and `lang`; none
reads data or draws. English sentences keep the exact wording the results and tests rely on.

    describe_tiers(tier_summary(tiered), basis=basis_label(res, "de"), lang="de")
    describe_findings(results, exposure_days=365, at_risk_days=90, lang="de")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import locale, metrics
from cxlib.schema import CES, CSAT, NPS
from cxlib.value.base import ANY, BASIS_PLUS, BASIS_REVENUE, LAPSED_SEGMENTS, RFM_SEGMENT, VALUE_BASIS, VALUE_TIER
from cxlib.value.customer import CustomerValue, clv_distribution, top_customers
from cxlib.value.exposure import any_exposure, at_risk_table, exposure_table
from cxlib.value.texts import day_text, number, percent, text

TRIGGER_WORDS = locale.texts("en")["value"]["trigger"]            # trigger code -> words (English; trigger_words(lang) for others
BASIS_LABELS = locale.texts("en")["value"]["basis"]               # value basis code -> words (English)
_KPI_KINDS = {NPS: "points", CSAT: "percent", CES: "score"}
_MONEY = ["revenue", "value", "value_total", "value_mean", "value_min", "value_max", "clv", "clv_low", "clv_high",
          "expected_spend"]


def trigger_words(lang: str = "en") -> dict:
    """At-risk trigger code -> words in `lang`."""
    return text("trigger", lang)


def basis_label(res: CustomerValue, lang: str = "en") -> str:
    """What a customer's value is, in words: 'predicted CLV', 'revenue to date + predicted CLV'
    or 'net revenue to date' (the fallback)."""
    basis = res.customers[VALUE_BASIS].iloc[0] if len(res.customers) else BASIS_REVENUE
    return text(f"basis.{basis}", lang)


def _kpi_value(value, kpi: str, lang: str, decimals: int | None = None, sign: bool = False) -> str:
    kind = _KPI_KINDS[kpi]
    if decimals is None:
        return locale.format_value(value, kind, lang, sign=sign)
    if kind == "percent":
        return locale.format_percent(value, lang, decimals=decimals, share=False, sign=sign)
    return number(value, lang, decimals=decimals, sign=sign)


# --- value to date ------------------------------------------------------------------------------------
def describe_historic(overview: Mapping, as_of, *, lang: str = "en") -> str:
    """The historic value in two sentences with the numbers of `historic_overview`."""
    credit = text("historic.credit", lang, n=number(overview["credit_only"], lang)) if overview["credit_only"] else ""
    return text("historic.sentence", lang, customers=number(overview["customers"], lang), day=day_text(as_of, lang),
                revenue=number(overview["revenue"], lang), top10=percent(overview["top10_share"], lang),
                top20=percent(overview["top20_share"], lang), top50=percent(overview["top50_share"], lang),
                credit=credit)


def describe_rfm(segments: pd.DataFrame, *, lapsed: Sequence[str] = LAPSED_SEGMENTS, lang: str = "en") -> str:
    """The largest segment by revenue and the lapsed segments (bought often, not lately) in
    sentences; `segments`: segment_table output."""
    lead = segments.iloc[0]
    gone = segments.loc[lambda d: d[RFM_SEGMENT].isin(list(lapsed))]
    lapsed_text = (text("rfm.lapsed", lang, names=", ".join(f"*{x}*" for x in gone["segment"]),
                        customers=number(gone["customers"].sum(), lang), share=percent(gone["revenue_share"].sum(), lang))
                   if len(gone) else text("rfm.no_lapsed", lang))
    return text("rfm.sentence", lang, customers=number(segments["customers"].sum(), lang), segments=len(segments),
                lead=lead["segment"], lead_customers=number(lead["customers"], lang),
                lead_share=percent(lead["customer_share"], lang), lead_revenue=percent(lead["revenue_share"], lang),
                lapsed=lapsed_text)


def value_table(table: pd.DataFrame, lang: str = "en", *, drop: Sequence[str] = (), **kwargs) -> pd.DataFrame:
    """A value table as the report shows it (`locale.display_table`): headers in `lang`, money without
    decimals, at-risk triggers in words; `drop`: columns left out."""
    shown = table.drop(columns=list(drop))
    kinds = {**dict.fromkeys([c for c in _MONEY if c in shown.columns], "money"),
             "expected_purchases": "score", "mean_orders": "score", "mean_recency_days": "days",
             "tenure_days": "count", "recency_days": "count", "p_alive": "share", "estimate": "number",
             "ci_low": "number", "ci_high": "number", "latest_nps": "count", **kwargs.pop("kinds", {})}
    return locale.display_table(shown, lang, kinds={k: v for k, v in kinds.items() if k in shown.columns},
                                labels={k: v for k, v in text("columns", lang).items() if k in shown.columns},
                                codes={"trigger": trigger_words(lang)}, **kwargs)


# --- value per customer -------------------------------------------------------------------------------
def unsupported_reason(exc: Exception, lang: str = "en", *, fallback: bool = True) -> str:
    """Why the model cannot be fitted, in `lang`: the ModelUnsupported text (en), or its German words
    from its code; `fallback`: with the clause that historic value is used."""
    if lang == "en" or not getattr(exc, "code", ""):
        return str(exc)
    values = {k: (number(v, lang) if isinstance(v, int) else number(v, lang, decimals=2) if isinstance(v, float)
                  else v) for k, v in exc.values.items()}
    return text(f"model.reasons.{exc.code}", lang, **values) + (text("model.used", lang) if fallback else "")


def model_message(res: CustomerValue, lang: str = "en") -> str:
    """`res.message` in `lang`: how the model was fitted, or why it could not be."""
    if lang == "en":
        return res.message
    d = res.details
    note = text("model.absent", lang, categories=", ".join(d["absent_categories"])) if d.get("absent_categories") else ""
    if res.status != "fitted":
        return text("model.unsupported", lang, reason=unsupported_reason(d["unsupported"], lang), note=note)
    scope = text("model.scope", lang, categories=", ".join(d["categories"])) if d.get("categories") else ""
    return (text("model.fitted", lang, customers=number(d["customers"], lang), scope=scope,
                 repeat=number(d["repeat_buyers"], lang), horizon=d["horizon_months"],
                 rate=percent(d["annual_discount_rate"], lang))
            + (text("model.plus", lang) if d.get("categories") else ".") + _sampled(d, lang) + note)


def _sampled(details, lang: str) -> str:
    """' The model was fitted on a random sample of n of them.' when it was; '' otherwise."""
    fitted = details.get("fitted_customers")
    return text("model.sampled", lang, fitted=number(fitted, lang)) if fitted and fitted < details["customers"] else ""


def model_name(res: CustomerValue, lang: str = "en") -> str:
    """The fitted model's name, or 'historic revenue (fallback)' in `lang`."""
    return res.model if res.status == "fitted" else text("model.fallback_name", lang)


def describe_value_model(res: CustomerValue, *, lang: str = "en") -> str:
    """The model and what it did; in the fallback only its name (`describe_clv` says why and what is
    used instead, so the report says it once)."""
    return f"**{model_name(res, lang)}.**" + (f" {model_message(res, lang)}" if res.status == "fitted" else "")


def describe_clv(res: CustomerValue, *, lang: str = "en") -> str:
    """One or two sentences for the report: the total value, its interval or why there is none.
        describe_clv(res) -> "Total predicted CLV: 104,886 € over 3,000 customers (90% interval ...)."
    """
    d = clv_distribution(res)
    total, customers = number(d["total"], lang), number(d["customers"], lang)
    if res.status != "fitted":
        return text("clv.fallback", lang, total=total, customers=customers, message=model_message(res, lang))
    interval = (text("clv.interval", lang, low=number(d["total_low"], lang), high=number(d["total_high"], lang))
                if np.isfinite(d["total_low"]) else text("clv.map", lang))
    if d["basis"] == BASIS_PLUS:
        return text("clv.plus", lang, total=total, customers=customers, revenue=number(d["total"] - d["predicted"], lang),
                    predicted=number(d["predicted"], lang), interval=interval)
    return text("clv.total", lang, total=total, customers=customers, interval=interval)


def describe_value(res: CustomerValue, *, lang: str = "en") -> str:
    """The model, the total value and the lead-in to the table of the customers of highest value."""
    return describe_value_model(res, lang=lang) + " " + describe_clv(res, lang=lang) + text("clv.top", lang)


def top_customers_display(res: CustomerValue, k: int = 10, *, lang: str = "en") -> pd.DataFrame:
    """`top_customers` as the report shows it."""
    return value_table(top_customers(res, k), lang)


def value_definition(res: CustomerValue, *, horizon_months: int, annual_discount_rate: float, lang: str = "en") -> str:
    """The figure caption's definition of a customer's value."""
    if res.status != "fitted":
        return text("clv.definition_fallback", lang, message=model_message(res, lang))
    return text("clv.definition", lang, horizon=horizon_months, rate=percent(annual_discount_rate, lang))


def describe_holdout(res: CustomerValue, *, lang: str = "en") -> str:
    """The holdout check in one sentence (or why it was not possible)."""
    if res.holdout is None:
        if res.holdout_message:
            exc = res.details.get("holdout_unsupported")
            return (res.holdout_message if lang == "en" or exc is None else
                    text("model.holdout_reason", lang, reason=unsupported_reason(exc, lang, fallback=False)))
        return text("holdout.none", lang, message=model_message(res, lang))
    row = res.holdout.iloc[-1]
    error = (locale.format_percent(row["error_pct"], lang, decimals=0, share=False, sign=True)
             if np.isfinite(row["error_pct"]) else text("holdout.no_actual", lang))
    return text("holdout.sentence", lang, customers=number(row["customers"], lang),
                predicted=number(row["predicted"], lang), days=number(row["holdout_days"], lang, decimals=0),
                actual=number(row["actual"], lang), error=error)


def describe_model_check(res: CustomerValue, *, lang: str = "en") -> str:
    """The holdout check and the lead-in to the table of the fitted model's parameters."""
    return describe_holdout(res, lang=lang) + text("holdout.params", lang)


def model_display(params: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """The fitted model's parameters (`require_model`) as the report shows them."""
    return value_table(params, lang)


# --- tiers and CX by tier ------------------------------------------------------------------------------
def describe_tiers(table: pd.DataFrame, *, basis: str, lang: str = "en") -> str:
    """The best and the last tier's customers and share of the value (`table`: tier_summary)."""
    best, last = table.iloc[0], table.iloc[-1]
    sentence = text("tiers.best", lang, tier=best["value_tier"], customers=number(best["customers"], lang),
                    share=percent(best["value_share"], lang), basis=basis, total=number(best["value_total"], lang),
                    minimum=number(best["value_min"], lang))
    if len(table) > 1:
        sentence += text("tiers.last", lang, tier=last["value_tier"], customers=number(last["customers"], lang),
                         share=percent(last["value_share"], lang))
    return sentence + "."


def tier_title(table: pd.DataFrame, *, lang: str = "en") -> str:
    """A figure title: the best tier's share of customers and of the value."""
    best = table.iloc[0]
    customers = percent(best["customers"] / table["customers"].sum(), lang)
    return text("tiers.title", lang, tier=best["value_tier"], customers=customers, value=percent(best["value_share"], lang))


def tiers_display(table: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """`tier_summary` as the report shows it: customers and share of the value first, then the amounts."""
    first = [VALUE_TIER, "customers", "value_share", "value_total"]
    return value_table(table[[*first, *[c for c in table.columns if c not in first]]], lang)


def describe_kpi_by_tier(table: pd.DataFrame, *, min_n: int = 30, lang: str = "en") -> str:
    """The best tier's KPI with interval and n, and its difference to the other tiers (or why it
    is not compared); `table`: kpi_by_tier output (computed with the same `min_n`)."""
    kpi = table["kpi"].iloc[0]
    label, top = metrics.LABELS[kpi], table.iloc[0]
    if top["n"] == 0 or bool(top["small"]):
        return text("kpi.few", lang, tier=top[VALUE_TIER], n=number(top["n"], lang), label=label, min_n=min_n)
    comparison = ""
    if "diff_vs_rest" in table.columns and pd.notna(top.get("diff_vs_rest")) and pd.notna(top.get("p_adjusted")):
        p = "< " + number(0.001, lang, decimals=3) if top["p_adjusted"] < 0.001 else \
            "= " + number(top["p_adjusted"], lang, decimals=3)
        diff = number(top["diff_vs_rest"], lang, decimals=2 if kpi == CES else 1, sign=True)
        comparison = text("kpi.comparison", lang, diff=diff + text(f"kpi.units.{kpi}", lang), p=p,
                          verdict=text("kpi.significant" if top["significant"] else "kpi.not_significant", lang))
    value, low, high = (_kpi_value(top[c], kpi, lang, sign=kpi == NPS) for c in ("value", "ci_low", "ci_high"))
    return text("kpi.sentence", lang, label=label, tier=top[VALUE_TIER], value=value, low=low, high=high,
                n=number(top["n"], lang), comparison=comparison)


def _kpi_short(value, kpi: str, lang: str) -> str:
    """A KPI value as a title shows it: NPS '+20', CSAT '50%', CES '5.07'."""
    return _kpi_value(value, kpi, lang, decimals=2 if kpi == CES else 0, sign=kpi == NPS)


def kpi_tier_title(table: pd.DataFrame, *, lang: str = "en") -> str:
    """A figure title naming the KPI of the first and last tier with answers."""
    shown = table.loc[table["n"] > 0]
    kpi, first, last = shown["kpi"].iloc[0], shown.iloc[0], shown.iloc[-1]
    if len(shown) == 1:
        return text("kpi.title_one", lang, label=metrics.LABELS[kpi], value=_kpi_short(first["value"], kpi, lang),
                    tier=first[VALUE_TIER])
    return text("kpi.title", lang, label=metrics.LABELS[kpi], first=_kpi_short(first["value"], kpi, lang),
                first_tier=first[VALUE_TIER], last=_kpi_short(last["value"], kpi, lang), last_tier=last[VALUE_TIER])


def kpi_axis(kpi: str, lang: str = "en") -> str:
    """The KPI axis label: 'NPS (points)'."""
    return text(f"kpi.axis.{kpi}", lang)


def kpi_definition(kpi: str, lang: str = "en") -> str:
    """How the KPI is computed, in `lang`."""
    return text(f"kpi.kpi_definitions.{kpi}", lang)


# --- contacts per tier and at risk ---------------------------------------------------------------------
def exposure_display(exposure: pd.DataFrame, taxonomy, section: str, *, lang: str = "en", any_label: str | None = None,
                     heading: str | None = None) -> pd.DataFrame:
    """`exposure_table` as the report shows it: the group in words under `heading`, one column per
    tier, shares as text in percent ('12.3%'). `any_label` and `heading` default to the words for the
    taxonomy `section` ('complaint_categories' or 'contact_reasons') in `lang`."""
    any_label = any_label or text("exposure.any", lang).get(section, ANY)
    heading = heading or text("exposure.heading", lang).get(section, section)
    table = exposure_table(exposure, taxonomy, section, lang=lang, any_label=any_label)
    return locale.display_table(table.reset_index(names="group_name"), lang, labels={"group_name": heading},
                                kinds={"group_name": "text", **dict.fromkeys(table.columns, "percent")})


def describe_exposure(exposure: pd.DataFrame, *, what: str, window_days: int | None, as_of, lang: str = "en",
                      lead: bool = False) -> str:
    """One sentence: per tier the share (and count) of customers with a contact of any reason; `what`:
    'complaint' or 'moment' (of truth); `lead`: with the lead-in to the table by group."""
    what = "moment" if what.startswith("moment") else what
    rows = any_exposure(exposure)
    span = (text("exposure.window", lang, days=window_days, day=day_text(as_of, lang)) if window_days is not None
            else text("exposure.all", lang, day=day_text(as_of, lang)))
    tiers = ", ".join(text("exposure.tier", lang, tier=r.value_tier, share=percent(r.share, lang, 1),
                           exposed=number(r.exposed, lang), customers=number(r.customers, lang))
                      for r in rows.itertuples() if r.customers > 0)
    return (text("exposure.sentence", lang, what=text("exposure.what", lang)[what], span=span, tiers=tiers)
            + (text("exposure.lead", lang)[what] if lead else ""))


def risk_title(summary: Mapping, *, lang: str = "en") -> str:
    """A figure title: how many of the high-value customers are at risk."""
    share = f" ({percent(summary['share'], lang)})" if np.isfinite(summary["share"]) else ""
    return text("risk.title", lang, at_risk=number(summary["at_risk"], lang), customers=number(summary["customers"], lang),
                share=share)


def describe_at_risk(summary: Mapping, *, basis: str, lang: str = "en") -> str:
    """Who is at risk and the value they hold, in one or two sentences (`summary`: risk_summary)."""
    if not summary["at_risk"]:
        return text("risk.none", lang, customers=number(summary["customers"], lang))
    if not summary["customers"]:
        return text("risk.no_customers", lang)
    share = (text("risk.value_share", lang, share=percent(summary["value_share"], lang))
             if np.isfinite(summary["value_share"]) else "")
    return text("risk.sentence", lang, at_risk=number(summary["at_risk"], lang),
                customers=number(summary["customers"], lang), share=percent(summary["share"], lang),
                value=number(summary["value"], lang), basis=basis, value_share=share)


def at_risk_display(risk: pd.DataFrame, k: int = 20, *, lang: str = "en") -> pd.DataFrame:
    """The first `k` customers at risk as the report shows them."""
    return value_table(at_risk_table(risk, k), lang)


# --- findings and method ------------------------------------------------------------------------------
def _rows(table) -> list[dict]:
    """Recorded rows: a DataFrame or a list of dicts as a list of dicts."""
    if table is None:
        return []
    return table.to_dict("records") if isinstance(table, pd.DataFrame) else list(table)


def describe_findings(results: Mapping, *, exposure_days: int, at_risk_days: int, lang: str = "en") -> str:
    """The findings that open the report, one sentence each, from what the sections recorded in
    `results` (the notebook's results dict): how concentrated revenue is, the best tier's share of
    the value, the CX KPI of the best against the last tier, complaint exposure and the valuable
    customers at risk. A finding whose section was skipped is left out."""
    historic = results.get("historic")
    if not historic:
        return text("findings.none", lang)
    said = [text("findings.concentration", lang, top20=percent(historic["top20_share"], lang),
                 revenue=number(historic["revenue"], lang))]
    basis = text(f"basis.{(results.get('clv') or {}).get('basis') or BASIS_REVENUE}", lang)
    tiers = _rows(results.get("tiers"))
    if tiers:
        customers = sum(r["customers"] for r in tiers)
        said.append(text("findings.tier", lang, tier=tiers[0]["value_tier"], basis=basis,
                         customers=percent(tiers[0]["customers"] / customers if customers else np.nan, lang),
                         value=percent(tiers[0]["value_share"], lang)))
    answered = [r for r in _rows(results.get("kpi_by_tier")) if r["n"] > 0 and not r["small"]]
    if len(answered) >= 2:
        kpi, first, last = answered[0]["kpi"], answered[0], answered[-1]
        shown = [_kpi_value(r["value"], kpi, lang, sign=kpi == NPS) for r in (first, last)]
        said.append(text("findings.kpi", lang, label=metrics.LABELS[kpi], first=shown[0], first_tier=first[VALUE_TIER],
                         last=shown[1], last_tier=last[VALUE_TIER]))
    exposed = [r for r in _rows(results.get("complaint_exposure")) if r["customers"] > 0]
    if len(exposed) >= 2:
        said.append(text("findings.complaints", lang, share=percent(exposed[0]["share"], lang, 1),
                         tier=exposed[0][VALUE_TIER], days=exposure_days, last_tier=exposed[-1][VALUE_TIER],
                         last_share=percent(exposed[-1]["share"], lang, 1)))
    if "at_risk" in results:
        key = "findings.risk" if results["at_risk"] else "findings.no_risk"
        said.append(text(key, lang, at_risk=number(results["at_risk"], lang),
                         customers=number(results.get("at_risk_customers", 0), lang), days=at_risk_days,
                         value=number(results.get("at_risk_value", 0), lang), basis=basis))
    return " ".join(said)


def parameter_labels(lang: str = "en", **values) -> dict:
    """The parameters table of the report: {label in `lang`: value} for the notebook parameters given
    by name (an empty `clv_categories` reads 'all orders')."""
    labels = text("parameters", lang)
    if "clv_categories" in values and not values["clv_categories"]:
        values = {**values, "clv_categories": labels["all_orders"]}
    return {labels.get(name, name): value for name, value in values.items()}
