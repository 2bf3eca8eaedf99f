"""The figures of the customer-value report: each turns the table a section computed into the tidy
frame and the texts of one `cxlib.figures` function (seaborn, house style). The title states the
finding, n and the definition go into the caption.

    value_figures.tiers_figure(value.tier_summary(tiered), basis="predicted CLV", tiers=tiers)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from cxlib import figures, locale, metrics, style, value

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
        y="revenue", diagonal=True,
        title=(f"The top 20% of customers brought {locale.format_percent(overview['top20_share'], lang, decimals=0)} "
               "of net revenue to date"),
        xlabel="customers ranked by net revenue to date, highest first (% of customers)",
        ylabel="cumulative share of net revenue (%)", n=overview["customers"],
        definition=(f"customers with a purchase up to {value.date_text(end)}; net revenue = completed orders, "
                    "credits subtracted"), lang=lang)


def rfm_figure(segments: pd.DataFrame, *, bins: int, lang: str = "en"):
    """Share of customers and of net revenue per RFM segment (from `value.segment_table`), largest first."""
    lead = segments.iloc[0]
    return figures.bars(
        _shares(segments, "segment", {"customer_share": "customers", "revenue_share": "net revenue"}),
        category="segment", value="percent", group="part",
        colours={"customers": SHARES["customers"], "net revenue": SHARES["value"]},
        title=(f"{lead['segment']} ({locale.format_percent(lead['customer_share'], lang, decimals=0)} of customers) "
               f"hold {locale.format_percent(lead['revenue_share'], lang, decimals=0)} of revenue to date"),
        value_label="share of all customers with a purchase (%)", n=int(segments["customers"].sum()),
        definition=(f"RFM scores 1-{bins} by rank (ties share the lower score); segments from recency and "
                    "frequency scores (config/taxonomy.yml)"), lang=lang)


def value_figure(clv, *, horizon_months: int, annual_discount_rate: float, lang: str = "en"):
    """Distribution of the value per customer with its median and 90th percentile."""
    dist, basis = value.clv_distribution(clv), value.basis_label(clv)
    return figures.histogram(
        clv.customers, value="value",
        title=(f"Median customer worth {locale.format_number(dist['median'], lang, decimals=0)} €, "
               f"top 10% over {locale.format_number(dist['p90'], lang, decimals=0)} €"),
        xlabel=f"{basis[0].upper() + basis[1:]} per customer (€; top 1% drawn at the 99th percentile)",
        ylabel="customers", n=dist["customers"],
        definition=value.value_definition(clv, horizon_months=horizon_months, annual_discount_rate=annual_discount_rate),
        lang=lang)


def holdout_figure(check: pd.DataFrame, *, holdout_months: int, end, lang: str = "en"):
    """Predicted against actual repeat purchases per decile of the prediction (from `value.require_holdout`;
    its last row is the total)."""
    deciles, overall = check.iloc[:-1], check.iloc[-1]
    rows = pd.concat([pd.DataFrame({"decile": deciles["decile"].astype(str), "part": name,
                                    "mean": deciles[column]}) for column, name in
                      (("predicted_mean", "predicted"), ("actual_mean", "actual"))], ignore_index=True)
    return figures.bars(
        rows, category="decile", value="mean", group="part", orient="v",
        colours={"predicted": SHARES["customers"], "actual": SHARES["value"]},
        title=(f"Holdout: {locale.format_number(overall['predicted'], lang, decimals=0)} repeat purchases predicted, "
               f"{locale.format_number(overall['actual'], lang, decimals=0)} happened"),
        category_label="decile of predicted repeat purchases (10 = highest)",
        value_label="repeat purchases per customer in the holdout", n=int(overall["customers"]),
        definition=(f"model fitted on the data up to {holdout_months} months before {value.date_text(end)}; "
                    "purchases counted per day"), lang=lang)


def tiers_figure(tier_table: pd.DataFrame, *, basis: str, tiers: Mapping, lang: str = "en"):
    """Share of customers and of value per value tier (from `value.tier_summary`)."""
    rows = tier_table.assign(customer_share=tier_table["customers"] / tier_table["customers"].sum())
    return figures.bars(
        _shares(rows, "value_tier", {"customer_share": "customers", "value_share": basis}), category="value_tier",
        value="percent", group="part", orient="v", colours={"customers": SHARES["customers"], basis: SHARES["value"]},
        title=value.tier_title(tier_table), category_label="value tier", value_label="share (%)",
        n=int(tier_table["customers"].sum()),
        definition=f"tiers by rank of {basis}: " + ", ".join(f"{k} {v:.0%}" for k, v in tiers.items()), lang=lang)


def kpi_tier_figure(by_tier: pd.DataFrame, *, end, min_n: int, lang: str = "en"):
    """The feedback KPI per value tier with 95% intervals; grey where fewer than `min_n` answers
    (from `value.kpi_by_tier`)."""
    kpi = by_tier["kpi"].iloc[0]
    rows = by_tier.assign(tone=by_tier["small"].map({True: "few answers", False: "tier"}))
    return figures.bars(
        rows, category="value_tier", value="value", low="ci_low", high="ci_high", orient="v", tone="tone",
        colours={"tier": C["primary"], "few answers": C["neutral"]}, title=value.kpi_tier_title(by_tier),
        category_label="value tier", value_label=f"{metrics.LABELS[kpi]} ({metrics.UNITS[kpi]})",
        n=int(by_tier["n"].sum()),
        definition=(f"answers of tiered customers up to {value.date_text(end)}; grey = fewer than {min_n} answers; "
                    f"95% intervals; {metrics.DEFINITIONS[kpi]}"), lang=lang)


def complaints_tier_figure(complaints: pd.DataFrame, *, window_days: int, end, lang: str = "en"):
    """Share of each tier's customers with a complaint contact (from `value.exposure_by_tier`)."""
    anyc = value.any_exposure(complaints)
    first = anyc.iloc[0]
    return figures.bars(
        anyc.assign(percent=100 * anyc["share"]), category="value_tier", value="percent", orient="v",
        title=(f"Complaints reached {locale.format_percent(first['share'], lang)} of the {first['value_tier']} tier "
               f"in {window_days} days"),
        category_label="value tier", value_label="customers with a complaint contact (%)",
        n=int(anyc["customers"].sum()),
        definition=(f"share of the tier's customers with at least one contact whose reason is a complaint category, "
                    f"{window_days} days up to {value.date_text(end)}"), lang=lang)


def risk_figure(risk_info: Mapping, *, high_tiers: Sequence[str], window_days: int, end, lang: str = "en"):
    """Valuable customers at risk per trigger (from `value.risk_summary`)."""
    rows = pd.DataFrame({"trigger": [value.TRIGGER_WORDS.get(t, t) for t in risk_info["triggers"]],
                         "customers": list(risk_info["triggers"].values())})
    return figures.bars(
        rows, category="trigger", value="customers", title=value.risk_title(risk_info),
        value_label="customers at risk (count)", n=risk_info["customers"],
        definition=(f"tiers {', '.join(high_tiers)}; within {window_days} days up to {value.date_text(end)}: negative "
                    "contact = a complaint or classic moment-of-truth contact; detractor answer = a latest NPS answer "
                    "of 0-6"), lang=lang)
