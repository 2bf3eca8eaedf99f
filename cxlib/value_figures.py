"""The figures of the customer-value report: each turns the table a section computed into the tidy
frame and the texts of one `cxlib.figures` function (seaborn, house style). The title states the
finding, n and the definition go into the caption; every word comes in `lang` (`cxlib.value.texts`).

    value_figures.tiers_figure(value.tier_summary(tiered), basis="predicted CLV", tiers=tiers, lang="de")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from cxlib import figures, style, value
from cxlib.value.texts import day_text, number, percent, text

C = style.COLOURS
SHARES = {"customers": C["secondary"], "value": C["primary"]}


def _shares(table: pd.DataFrame, category: str, parts: Mapping[str, str]) -> pd.DataFrame:
    """Tidy rows for grouped bars: `category`, part (the name in `parts`), percent (share × 100)."""
    return pd.concat([pd.DataFrame({category: table[category], "part": name, "percent": 100 * table[column]})
                      for column, name in parts.items()], ignore_index=True)


def historic_figure(historic: pd.DataFrame, overview: Mapping, *, end, lang: str = "en"):
    """Concentration curve of net revenue to date (from `value.revenue_curve`) with the diagonal of equal shares."""
    curve = value.revenue_curve(historic)
    return figures.curve(
        curve.assign(customers=100 * curve["customer_share"], revenue=100 * curve["value_share"]), x="customers",
        y="revenue", diagonal=True, title=text("historic.title", lang, share=percent(overview["top20_share"], lang)),
        xlabel=text("historic.xlabel", lang), ylabel=text("historic.ylabel", lang), n=overview["customers"],
        definition=text("historic.definition", lang, day=day_text(end, lang)), lang=lang)


def rfm_figure(segments: pd.DataFrame, *, bins: int, lang: str = "en"):
    """Share of customers and of net revenue per RFM segment (from `value.segment_table`), largest first."""
    lead = segments.iloc[0]
    customers, revenue = text("rfm.customers", lang), text("rfm.revenue", lang)
    return figures.bars(
        _shares(segments, "segment", {"customer_share": customers, "revenue_share": revenue}),
        category="segment", value="percent", group="part",
        colours={customers: SHARES["customers"], revenue: SHARES["value"]},
        title=text("rfm.title", lang, segment=lead["segment"], customers=percent(lead["customer_share"], lang),
                   revenue=percent(lead["revenue_share"], lang)),
        value_label=text("rfm.value_label", lang), n=int(segments["customers"].sum()),
        definition=text("rfm.definition", lang, bins=bins), lang=lang)


def value_figure(clv, *, horizon_months: int | None = None, annual_discount_rate: float | None = None,
                 lang: str = "en"):
    """Distribution of the value per customer with its median and 90th percentile (`value.customer_value`;
    horizon and discount rate default to those it was computed with)."""
    dist, basis = value.clv_distribution(clv), value.basis_label(clv, lang)
    horizon = horizon_months if horizon_months is not None else clv.details.get("horizon_months")
    rate = annual_discount_rate if annual_discount_rate is not None else clv.details.get("annual_discount_rate")
    return figures.histogram(
        clv.customers, value="value",
        title=text("clv.title", lang, median=number(dist["median"], lang), p90=number(dist["p90"], lang)),
        xlabel=text("clv.xlabel", lang, basis=basis[0].upper() + basis[1:]), ylabel=text("clv.ylabel", lang),
        n=dist["customers"],
        definition=value.value_definition(clv, horizon_months=horizon, annual_discount_rate=rate, lang=lang), lang=lang)


def holdout_figure(check: pd.DataFrame, *, holdout_months: int, end, lang: str = "en"):
    """Predicted against actual repeat purchases per decile of the prediction (from `value.require_holdout`;
    its last row is the total)."""
    deciles, overall = check.iloc[:-1], check.iloc[-1]
    predicted, actual = text("holdout.predicted", lang), text("holdout.actual", lang)
    rows = pd.concat([pd.DataFrame({"decile": deciles["decile"].astype(str), "part": name,
                                    "mean": deciles[column]}) for column, name in
                      (("predicted_mean", predicted), ("actual_mean", actual))], ignore_index=True)
    return figures.bars(
        rows, category="decile", value="mean", group="part", orient="v",
        colours={predicted: SHARES["customers"], actual: SHARES["value"]},
        title=text("holdout.title", lang, predicted=number(overall["predicted"], lang),
                   actual=number(overall["actual"], lang)),
        category_label=text("holdout.xlabel", lang), value_label=text("holdout.ylabel", lang),
        n=int(overall["customers"]),
        definition=text("holdout.definition", lang, months=holdout_months, day=day_text(end, lang)), lang=lang)


def tiers_figure(tier_table: pd.DataFrame, *, basis: str, tiers: Mapping, lang: str = "en"):
    """Share of customers and of value per value tier (from `value.tier_summary`)."""
    rows = tier_table.assign(customer_share=tier_table["customers"] / tier_table["customers"].sum())
    customers = text("tiers.customers", lang)
    return figures.bars(
        _shares(rows, "value_tier", {"customer_share": customers, "value_share": basis}), category="value_tier",
        value="percent", group="part", orient="v", colours={customers: SHARES["customers"], basis: SHARES["value"]},
        title=value.tier_title(tier_table, lang=lang), category_label=text("tiers.xlabel", lang),
        value_label=text("tiers.ylabel", lang), n=int(tier_table["customers"].sum()),
        definition=text("tiers.definition", lang, basis=basis,
                        tiers=", ".join(f"{k} {percent(v, lang)}" for k, v in tiers.items())), lang=lang)


def kpi_tier_figure(by_tier: pd.DataFrame, *, end, min_n: int, lang: str = "en"):
    """The feedback KPI per value tier with 95% intervals; grey where fewer than `min_n` answers
    (from `value.kpi_by_tier`). schema.Missing when fewer than two tiers have answers (one bar is no
    comparison; see value.require_tier_comparison)."""
    value.require_tier_comparison(by_tier)
    kpi = by_tier["kpi"].iloc[0]
    tier, few = text("kpi.tier", lang), text("kpi.few_answers", lang)
    rows = by_tier.assign(tone=by_tier["small"].map({True: few, False: tier}))
    return figures.bars(
        rows, category="value_tier", value="value", low="ci_low", high="ci_high", orient="v", tone="tone",
        colours={tier: C["primary"], few: C["neutral"]}, title=value.kpi_tier_title(by_tier, lang=lang),
        category_label=text("kpi.xlabel", lang), value_label=value.kpi_axis(kpi, lang), n=int(by_tier["n"].sum()),
        definition=text("kpi.definition", lang, day=day_text(end, lang), min_n=min_n,
                        kpi=value.kpi_definition(kpi, lang)), lang=lang)


def complaints_tier_figure(complaints: pd.DataFrame, *, window_days: int, end, lang: str = "en"):
    """Share of each tier's customers with a complaint contact (from `value.exposure_by_tier`)."""
    anyc = value.any_exposure(complaints)
    first = anyc.iloc[0]
    return figures.bars(
        anyc.assign(percent=100 * anyc["share"]), category="value_tier", value="percent", orient="v",
        title=text("exposure.title", lang, share=percent(first["share"], lang, 1), tier=first["value_tier"],
                   days=window_days),
        category_label=text("exposure.xlabel", lang), value_label=text("exposure.ylabel", lang),
        n=int(anyc["customers"].sum()),
        definition=text("exposure.definition", lang, days=window_days, day=day_text(end, lang)), lang=lang)


def risk_figure(risk_info: Mapping, *, high_tiers: Sequence[str], window_days: int, end, lang: str = "en"):
    """Valuable customers at risk per trigger (from `value.risk_summary`)."""
    words = value.trigger_words(lang)
    rows = pd.DataFrame({"trigger": [words.get(t, t) for t in risk_info["triggers"]],
                         "customers": list(risk_info["triggers"].values())})
    return figures.bars(
        rows, category="trigger", value="customers", title=value.risk_title(risk_info, lang=lang),
        value_label=text("risk.xlabel", lang), n=risk_info["customers"],
        definition=text("risk.definition", lang, tiers=", ".join(high_tiers), days=window_days,
                        day=day_text(end, lang)), lang=lang)
