"""Executive summary, part 2: the findings — sentences written from the numbers the stages
recorded (results.json) and from the KPI tiles of `summary.kpi_tiles`, in English or German
(texts in cxlib/locales/summary.<lang>.yml, numbers and periods through `cxlib.locale`).

    found = summary_findings.findings(tiles, results, lang="de", audience="service")  -> ["...", "...", "..."]
    summary_findings.moments_finding(results["moments_of_truth"], lang="en")  -> "The moment of truth ..."

Each finding names the figure it rests on; a finding whose results are absent is None and left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import locale, schema
from cxlib.summary import (COMPLAINT_RATE, CONVERSION_RATE, REPEAT_RATE, audience_sections, audience_tiles,
                           complaint_chart, is_missing, kpi_text, period_freq, period_label, rows_frame, texts,
                           tile_period)

MOMENT_COLUMNS = ["moment", "nps_impact", "ci_low", "ci_high", "priority", "magic"]
COMPLAINT_COLUMNS = ["category", "month", "rate_per_1000", "out_of_control", "center_per_1000", "ucl_per_1000"]


def _n(value, lang: str) -> str:
    return locale.format_number(value, lang, decimals=0)


def _one(value, lang: str, *, sign: bool = False) -> str:
    return locale.format_number(value, lang, decimals=1, sign=sign)


def _interval(low: str, high: str, lang: str, confidence: float = 0.95) -> str:
    return texts(lang)["interval"].format(level=_n(100 * confidence, lang), low=low, high=high)


def listing(items: Sequence[str], lang: str = "en") -> str:
    """['a', 'b', 'c'] -> 'a, b and c' (de 'a, b und c')."""
    items = list(items)
    return ", ".join(items[:-1]) + texts(lang)["and"] + items[-1] if len(items) > 1 else "".join(items)


def names(rows: pd.DataFrame, labels: Mapping | None, section: str = "moments", col: str = "moment") -> pd.Series:
    """Labels of the codes in `col` in the report language; else the row's own `label`; else the code."""
    own = rows["label"].astype("str") if "label" in rows.columns else rows[col].astype("str")
    mapping = dict((labels or {}).get(section) or {})
    mapped = rows[col].astype("str").map(lambda code: mapping.get(code, "")).astype("str")
    return mapped.where(mapped != "", own)


def truth_and_magic(rows: pd.DataFrame, labels: Mapping | None, top: int | None = None) -> tuple:
    """Moments with NPS points at stake (priority > 0), highest first (the first `top`), and the
    magic moments, each with `name` in the report language."""
    rows = rows.assign(name=names(rows, labels))
    truth = (rows.loc[rows["priority"].fillna(0).astype(float) > 0]
             .sort_values("priority", ascending=False, kind="stable"))
    magic = rows.loc[rows["magic"].fillna(False).astype(bool)]
    return (truth if top is None else truth.head(top)), magic


def signal(rows: pd.DataFrame) -> pd.Series:
    """'above' where a month's rate lies above its upper limit, else 'below'."""
    return pd.Series(np.where(rows["rate_per_1000"] > rows["ucl_per_1000"], "above", "below"), index=rows.index,
                     dtype="str")


def step_label(step, labels: Mapping | None) -> str:
    """'quote|consultation' -> 'Quote / Consultation' with the touchpoint labels."""
    mapping = (labels or {}).get("touchpoints") or {}
    return " / ".join(mapping.get(code) or code for code in str(step).split("|"))


def value_basis(value: Mapping, lang: str = "en") -> str:
    """What the value of results.json `value` is: predicted CLV, revenue to date plus the
    predicted CLV of repeat purchases, or (fallback) revenue to date."""
    t = texts(lang)
    if value.get("status") != "fitted":
        return t["basis_revenue"]
    return t["basis_plus"] if (value.get("clv") or {}).get("basis") == "revenue_plus_predicted_clv" else t["basis_clv"]


# --- one finding per topic ----------------------------------------------------------------------
def headline_finding(tiles: pd.DataFrame, kpi: str, *, lang: str = "en", min_n: int = 100,
                     confidence: float = 0.95) -> str | None:
    """One sentence on one tile: value, interval and n in its period, the change against the
    previous period with its verdict, and the change since the previous run (None if no such tile)."""
    t = texts(lang)
    found = tiles.loc[tiles["kpi"] == kpi]
    if found.empty or found["note"].iloc[0]:
        return None
    row = found.iloc[0].to_dict()
    change = kpi_text(row["change_previous_period"], kpi, lang, change=True) + t["change_unit"][kpi]
    whole = row.get("period_kind") == "whole"
    if whole:
        moved = t["no_comparison_whole"]
    elif row["previous_n"] == 0 or is_missing(row["previous_value"]):
        moved = t["no_comparison"]
    elif not row["tested"]:
        moved = t["untested"].format(min_n=_n(min_n, lang), unit=t["n_unit"][kpi])
    elif row["significant_previous_period"]:
        moved = t["rose" if row["change_previous_period"] > 0 else "fell"].format(change=change.lstrip("+-−"))
    else:
        moved = t["noise"].format(change=change)
    text = t["headline_whole" if whole else "headline"].format(
        label=t["label"][kpi], period=tile_period(row, lang) if whole else period_label(row["period"], lang),
        value=kpi_text(row["value"], kpi, lang) + t["value_unit"][kpi],
        interval=_interval(kpi_text(row["ci_low"], kpi, lang), kpi_text(row["ci_high"], kpi, lang), lang, confidence),
        n=_n(row["n"], lang), unit=t["n_unit"][kpi], previous=period_label(row["previous_period"], lang), moved=moved)
    if row.get("previous_run") and not is_missing(row.get("previous_run_value")):
        if is_missing(row.get("change_previous_run")):
            text += t["run_not_comparable"].format(period=period_label(row.get("previous_run_period"), lang) or "–")
        else:
            text += t["run_change"].format(change=kpi_text(row["change_previous_run"], kpi, lang, change=True)
                                           + t["change_unit"][kpi])
    return text


def movers_finding(tiles: pd.DataFrame, kpis: Sequence[str], *, lang: str = "en") -> str | None:
    """One sentence on the tiles of `kpis` whose change against the previous period is significant,
    or that none is (None when `kpis` has no available tile with a period comparison)."""
    t = texts(lang)
    shown = tiles.set_index("kpi").reindex([k for k in kpis if k in set(tiles["kpi"])]).reset_index()
    shown = shown.loc[(shown["note"] == "") & (shown["period_kind"] != "whole")]
    if shown.empty:
        return None
    moved = shown.loc[shown["significant_previous_period"].astype(bool)]
    if moved.empty:
        return t["no_movers" if len(shown) > 1 else "no_movers_one"].format(
            labels=listing([t["label"][k] for k in shown["kpi"]], lang))
    items = "; ".join(t["mover"].format(label=t["label"][r["kpi"]],
                                        change=kpi_text(r["change_previous_period"], r["kpi"], lang, change=True)
                                        + t["change_unit"][r["kpi"]], previous=period_label(r["previous_period"], lang),
                                        value=kpi_text(r["value"], r["kpi"], lang) + t["value_unit"][r["kpi"]])
                      for r in moved.to_dict(orient="records"))
    return t["movers"].format(items=items)


def moments_finding(moments_of_truth, *, lang: str = "en", labels: Mapping | None = None, top: int = 3) -> str | None:
    """The moment of truth with most NPS points at stake (and the next ones), and the magic
    moments, from the `moments_of_truth` rows of results.json (None when absent)."""
    t = texts(lang)
    rows = rows_frame(moments_of_truth)
    if rows.empty:
        return None
    schema.require(set(MOMENT_COLUMNS) <= set(rows.columns), f"moments_of_truth: columns {MOMENT_COLUMNS} needed")
    ranked, magic = truth_and_magic(rows, labels)
    if ranked.empty:
        text = t["no_moment"]
    else:
        first = ranked.iloc[0]
        others = ranked["name"].iloc[1:top]
        text = t["moment"].format(
            label=first["name"], impact=_one(abs(first["nps_impact"]), lang),
            interval=_interval(_one(first["ci_low"], lang, sign=True), _one(first["ci_high"], lang, sign=True), lang),
            stake=_one(first["priority"], lang),
            others=t["moment_others"].format(labels=", ".join(f"«{x}»" for x in others)) if len(others) else "")
    if len(magic):
        items = ", ".join(f"«{r['name']}» ({_one(r['nps_impact'], lang, sign=True)})" for r in magic.to_dict(orient="records"))
        text += t["magic" if len(magic) == 1 else "magics"].format(items=items)
    else:
        text += t["no_magic"]
    return text


def complaints_finding(complaints, *, lang: str = "en", labels: Mapping | None = None, current_period: str = "",
                       period: str = "quarter", max_listed: int = 3, basis: str = "rate") -> str | None:
    """Months out of control (rows of results.json `complaints` with out_of_control): how many,
    above and below the limits, the breakouts (latest first, at most `max_listed` named), and
    those in `current_period`. `basis` 'count': rows of `complaint_chart` from monthly counts."""
    t = texts(lang)
    count = basis == "count"
    rows = rows_frame(complaints)
    if rows.empty:
        return None
    schema.require(set(COMPLAINT_COLUMNS) <= set(rows.columns), f"complaints: columns {COMPLAINT_COLUMNS} needed")
    flagged = rows.loc[rows["out_of_control"].fillna(False).astype(bool)]
    if flagged.empty:
        return t["complaints_none_count" if count else "complaints_none"]
    flagged = flagged.assign(side=signal(flagged), name=names(flagged, labels, "complaint_categories", "category"))
    above = flagged.loc[flagged["side"] == "above"].sort_values("month", kind="stable")
    text = t["complaints"].format(n=_n(len(flagged), lang), above=_n(len(above), lang),
                                  below=_n(len(flagged) - len(above), lang))
    if len(above):
        latest = above.iloc[::-1]
        items = "; ".join(t["complaints_item_count" if count else "complaints_item"].format(
                              category=r["name"], month=period_label(r["month"], lang),
                              rate=locale.format_number(r["rate_per_1000"], lang, decimals=0 if count else 1),
                              centre=_one(r["center_per_1000"], lang))
                          for r in latest.head(max_listed).to_dict(orient="records"))
        more = t["complaints_more"].format(n=_n(len(latest) - max_listed, lang)) if len(latest) > max_listed else ""
        text += t["complaints_latest"].format(items=items + more)
    if current_period:
        months = pd.PeriodIndex(flagged["month"].astype("str"), freq="M").asfreq(period_freq(period)).astype("str")
        now = flagged.loc[np.asarray(months == current_period)]
        if len(now):
            text += t["complaints_current"].format(period=period_label(current_period, lang), items=", ".join(
                f"{r['name']} {period_label(r['month'], lang)} ({t[r['side']]})"
                for r in now.sort_values("month").to_dict(orient="records")))
    return text


def contact_list_finding(contact_list: Mapping | None, *, lang: str = "en") -> str | None:
    """The call-back list in one sentence (results.json `contact_list`; None when absent)."""
    if not contact_list or "included" not in contact_list:
        return None
    c = contact_list
    return texts(lang)["contact"].format(included=_n(c.get("included"), lang), days=_n(c.get("recent_days"), lang),
                                         no_consent=_n(c.get("excluded_no_consent"), lang),
                                         other=_n(c.get("excluded_other"), lang))


def occasions_finding(relevance: Mapping | None, occasion_list: Mapping | None = None, *, lang: str = "en",
                      confidence: float = 0.95) -> str | None:
    """Occasion-timed against other sends in one sentence (results `campaign_relevance.adjusted`:
    ratio, ci_low, ci_high), plus the occasions due and listed (`occasion_list`) when recorded;
    None without a finite adjusted ratio."""
    adjusted = (relevance or {}).get("adjusted") if isinstance(relevance, Mapping) else None
    if not isinstance(adjusted, Mapping) or any(is_missing(adjusted.get(k)) for k in ("ratio", "ci_low", "ci_high")):
        return None
    t = texts(lang)
    verdict = "more" if adjusted["ci_low"] > 1 else "less" if adjusted["ci_high"] < 1 else "same"
    text = t["occasions"].format(ratio=_one(adjusted["ratio"], lang), level=_n(100 * confidence, lang),
                                 low=_one(adjusted["ci_low"], lang), high=_one(adjusted["ci_high"], lang),
                                 verdict=t["occasions_verdict"][verdict])
    listed = occasion_list or {}
    if "candidates" in listed and "horizon_days" in listed:
        text += t["occasions_due"].format(due=_n(listed["candidates"], lang), days=_n(listed["horizon_days"], lang),
                                          listed=_n(listed.get("customers_included"), lang))
    return text


def journey_finding(journey: Mapping | None, *, lang: str = "en", labels: Mapping | None = None,
                    stated: Sequence[str] = ()) -> str | None:
    """Conversion and repeat customers as stage 03 recorded them and the funnel's largest loss
    (results.json `journey`; None when absent, or when it would only repeat the rates in `stated`,
    the KPIs another finding states)."""
    t = texts(lang)
    conv, rep = (journey or {}).get(CONVERSION_RATE), (journey or {}).get(REPEAT_RATE)
    conv = conv if isinstance(conv, Mapping) and not is_missing(conv.get("value")) else None
    rep = rep if isinstance(rep, Mapping) and not is_missing(rep.get("value")) else None
    if conv is None and rep is None:
        return None
    drop = ""
    funnel = rows_frame((journey or {}).get("funnel"))
    if len(funnel) >= 2 and {"step", "step_conversion"} <= set(funnel.columns):
        steps = funnel.iloc[1:]["step_conversion"].astype(float).dropna()
        if len(steps):
            worst = steps.idxmin()
            drop = t["journey_drop"].format(a=step_label(funnel.loc[worst - 1, "step"], labels),
                                            b=step_label(funnel.loc[worst, "step"], labels),
                                            rate=locale.format_percent(funnel.loc[worst, "step_conversion"], lang,
                                                                       decimals=0))
    share = {k: locale.format_percent((conv or {}).get(k), lang) for k in ("value", "ci_low", "ci_high")}
    parts = {"conversion": share["value"], "leads": _n((conv or {}).get("n"), lang),
             "interval": _interval(share["ci_low"], share["ci_high"], lang),
             "repeat": locale.format_percent((rep or {}).get("value"), lang), "buyers": _n((rep or {}).get("n"), lang),
             "drop": drop}
    said = {k for k, rate in ((CONVERSION_RATE, conv), (REPEAT_RATE, rep)) if rate is not None}
    if not drop and said <= set(stated):
        return None
    key = "journey" if conv and rep else "journey_conversion" if conv else "journey_repeat"
    return t[key].format(**parts)


def value_finding(value: Mapping | None, *, lang: str = "en") -> str | None:
    """High-value customers at risk and their value, and the revenue concentration (results.json
    `value`; None when absent)."""
    t = texts(lang)
    clv = (value or {}).get("clv") or {}
    if not value or ("at_risk" not in value and is_missing(clv.get("total"))):
        return None
    top20 = (value.get("historic") or {}).get("top20_share")
    basis = value_basis(value, lang)
    top = "" if is_missing(top20) else t["value_top"].format(share=locale.format_percent(top20, lang, decimals=0))
    if "at_risk" not in value:
        return t["value_total"].format(customers=_n(clv.get("customers"), lang), amount=_n(clv.get("total"), lang),
                                       basis=basis, top=top)
    return t["value"].format(at_risk=_n(value.get("at_risk"), lang), amount=_n(value.get("at_risk_value"), lang),
                             basis=basis, top=top)


# --- the findings of an audience ------------------------------------------------------------------
def findings(tiles: pd.DataFrame, results: Mapping, *, lang: str = "en", audience: str = "management",
             labels: Mapping | None = None, min_n: int = 100, confidence: float = 0.95, period: str = "quarter",
             max_findings: int = 5) -> list[str]:
    """Three to five sentences written from the numbers, in the order of the audience's sections:
    tiles (the audience's first tile, then the significant movers among its other tiles), moments
    of truth, complaint months out of control, the contact list, journey, value, occasions.
    Sections without results are skipped, so fewer sentences come back when stages are missing."""
    kpis = [k for k in audience_tiles(audience) if k in set(tiles["kpi"])]
    available = [k for k in kpis if not tiles.set_index("kpi").loc[k, "note"]]
    current = next(iter(tiles.loc[tiles["kpi"] == COMPLAINT_RATE, "period"]), "")
    chart, basis = complaint_chart(results)
    makers = {
        "tiles": lambda: [headline_finding(tiles, available[0], lang=lang, min_n=min_n, confidence=confidence)
                          if available else None,
                          movers_finding(tiles, available[1:], lang=lang) if len(available) > 1 else None],
        "moments": lambda: [moments_finding(results.get("moments_of_truth"), lang=lang, labels=labels)],
        "complaints": lambda: [complaints_finding(chart, lang=lang, labels=labels, current_period=current,
                                                  period=period, basis=basis)],
        "contact_list": lambda: [contact_list_finding(results.get("contact_list"), lang=lang)],
        "journey": lambda: [journey_finding(results.get("journey"), lang=lang, labels=labels, stated=available[:1])],
        "value": lambda: [value_finding(results.get("value"), lang=lang)],
        "occasions": lambda: [occasions_finding(results.get("campaign_relevance"), results.get("occasion_list"),
                                                lang=lang, confidence=confidence)],
    }
    sentences = [s for name in audience_sections(audience) if name in makers for s in makers[name]() if s]
    return sentences[:max_findings]
