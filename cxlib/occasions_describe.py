"""Stage 07 for readers: the occasion counts, the occasion list, campaign relevance, contact fatigue,
the weakest campaigns and the disversion rate in sentences and tables, in English or German (texts
in `cxlib/locales/occasions.<lang>.yml`, numbers through `cxlib.locale`).

    display(Markdown(describe_counts(counts, available, horizon_days=30, lang="de")))
    display(interest_table(lowest, lang="de"))
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from cxlib import locale
from cxlib.occasions import SEGMENT, TIER_LABELS, VALUE_TIERS
from cxlib.schema import CAMPAIGN_ID


def _t(key: str, lang: str, **values) -> str:
    return locale.text(f"occasions.{key}", lang, **values)


def _n(value, lang: str) -> str:
    return locale.format_number(value, lang, decimals=0)


def _pct(value, lang: str, *, sign: bool = False, decimals: int = 1) -> str:
    return locale.format_percent(value, lang, decimals=decimals, sign=sign)


def _points(value, lang: str, *, sign: bool = True) -> str:
    return locale.format_number(value, lang, decimals=1, sign=sign)


def _ratio(value, lang: str) -> str:
    return locale.format_number(value, lang, decimals=2)


def _owner(code: str, lang: str) -> str:
    return locale.texts(lang)["occasions"]["owners"].get(code, code)


# --- occasions due -----------------------------------------------------------------------------
def _totals(counts: pd.DataFrame) -> pd.DataFrame:
    return counts.loc[counts["by"] == "all"].sort_values("customers", ascending=False, kind="stable")


def describe_counts(counts: pd.DataFrame, available: pd.DataFrame, *, horizon_days: int, lang: str = "en") -> str:
    """The counts in words: how many occasions fall due, the largest, which the data cannot supply.
    In: `occasions.occasion_counts` (occasion, label, owner, by, group, customers) and
    `available` (occasion, label, available, reason, enable)."""
    totals = _totals(counts)
    missing = available.loc[~available["available"]]
    gaps = "; ".join(_t("counts.gap", lang, label=lab, reason=why, enable=en)
                     for lab, why, en in missing[["label", "reason", "enable"]].values)
    tail = _t("counts.not_derived", lang, gaps=gaps) if gaps else ""
    if totals.empty or totals["customers"].sum() == 0:
        return _t("counts.none", lang, horizon_days=horizon_days) + tail
    top = totals.iloc[0]
    listed = ", ".join(f"{lab} {_n(n, lang)}" for lab, n in totals.loc[totals["customers"] > 0, ["label", "customers"]].values)
    return _t("counts.found", lang, horizon_days=horizon_days, total=_n(totals["customers"].sum(), lang), top=top["label"],
              top_n=_n(top["customers"], lang), owner=_owner(top["owner"], lang), listed=listed) + tail


def counts_table(counts: pd.DataFrame, available: pd.DataFrame, taxonomy, *, lang: str = "en") -> pd.DataFrame:
    """The counts as a reader's table: one row per derivable occasion with its owner, then the
    customers due among all customers, per segment (taxonomy label) and per value tier."""
    ok = available.loc[available["available"], "occasion"]
    shown = counts.loc[counts["occasion"].isin(ok)]
    segment_label = {code: taxonomy.label("segments", code, lang) for code in (taxonomy.data.get("segments") or {})}
    tier_label = TIER_LABELS.get(lang, TIER_LABELS["en"])
    everyone = _t("counts.all_customers", lang)
    column = shown["group"].where(shown["by"] != SEGMENT, shown["group"].map(lambda g: segment_label.get(g, g)))
    column = column.where(shown["by"] == SEGMENT, shown["group"].map(lambda g: tier_label.get(g, g)))
    column = column.where(shown["by"] != "all", everyone)
    wide = (shown.assign(column=column)
            .pivot_table(index=["occasion", "label", "owner"], columns="column", values="customers", aggfunc="sum",
                         fill_value=0, sort=False))
    columns = [everyone, *[c for c in segment_label.values() if c in wide.columns],
               *[tier_label[t] for t in VALUE_TIERS if tier_label[t] in wide.columns]]
    order = {c: i for i, c in enumerate(ok)}
    names = locale.texts(lang)["occasions"]["counts"]["columns"]
    wide = wide.reset_index().sort_values("occasion", key=lambda s: s.map(order), kind="stable")
    return (wide.loc[:, ["label", "owner", *columns]].assign(owner=lambda d: d["owner"].map(lambda o: _owner(o, lang)))
            .assign(**{c: lambda d, c=c: d[c].map(lambda v: _n(v, lang)) for c in columns})
            .rename(columns={"label": names["occasion"], "owner": names["owner"]}).reset_index(drop=True))


def describe_occasion_list(counts: Mapping, *, horizon_days: int, file: str, lang: str = "en") -> str:
    """The occasion list in words: included rows and customers, exclusions and the file.
    In: `occasions.occasion_list_counts`."""
    reasons = locale.texts(lang)["occasions"]["list"]["reasons"]
    why = "; ".join(f"{_n(n, lang)} {reasons.get(r, r)}" for r, n in (counts.get("exclusion_reasons") or {}).items())
    return _t("list.text", lang, candidates=_n(counts["candidates"], lang), horizon_days=horizon_days,
              included=_n(counts["included"], lang), customers=_n(counts["customers_included"], lang),
              no_consent=_n(counts["excluded_no_consent"], lang), other=_n(counts["excluded_other"], lang),
              why=why or _t("list.none", lang), file=file)


# --- campaign relevance ------------------------------------------------------------------------
def _verdict(low: float, high: float, lang: str) -> str:
    return _t("relevance.more" if low > 1 else "relevance.less" if high < 1 else "relevance.same", lang)


def describe_relevance(summary: Mapping, *, lang: str = "en") -> str:
    """Occasion-timed against other sends in words, with the adjusted ratio and the test.
    In: `relevance.occasion_response` (occasion_timed, other, adjusted, adjusted_for)."""
    a, b, adj = summary["occasion_timed"], summary["other"], summary["adjusted"]
    strata = locale.texts(lang)["occasions"]["relevance"]["strata"]
    by = _t("relevance.and", lang).join(strata.get(c, c) for c in summary["adjusted_for"]) or _t("relevance.nothing", lang)
    return _t("relevance.text", lang, rate=_pct(a["rate"], lang), sends=_n(a["sends"], lang), low=_pct(a["ci_low"], lang),
              high=_pct(a["ci_high"], lang), other_rate=_pct(b["rate"], lang), other_sends=_n(b["sends"], lang),
              other_low=_pct(b["ci_low"], lang), other_high=_pct(b["ci_high"], lang), by=by,
              ratio=_ratio(adj["ratio"], lang), ratio_low=_ratio(adj["ci_low"], lang), ratio_high=_ratio(adj["ci_high"], lang),
              p=locale.format_p(adj["p_value"], lang), verdict=_verdict(adj["ci_low"], adj["ci_high"], lang))


def _change(ratio: float, lang: str) -> str:
    return _pct(ratio - 1, lang, sign=True, decimals=0)


def _fatigue_significant(slope: Mapping) -> bool:
    return slope["ci_high"] < 1 or slope["ci_low"] > 1


def describe_fatigue(bands: pd.DataFrame, slope: Mapping, *, fatigue_days: float, lang: str = "en") -> str:
    """Fatigue in words: the rates of the first and the last band and the change per further send.
    In: `relevance.fatigue` (band, sends, rate, …) and `relevance.fatigue_slope`."""
    first, last = bands.iloc[0], bands.loc[bands["sends"] > 0].iloc[-1]
    return _t("fatigue.text", lang, days=locale.format_number(fatigue_days, lang), first=_pct(first["rate"], lang),
              band=last["band"], last=_pct(last["rate"], lang), change=_change(slope["rate_ratio_per_contact"], lang),
              low=_change(slope["ci_low"], lang), high=_change(slope["ci_high"], lang), p=locale.format_p(slope["p_value"], lang),
              not_sig="" if _fatigue_significant(slope) else _t("fatigue.not_significant", lang))


# --- the weakest campaigns ---------------------------------------------------------------------
def interest_table(lowest: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """The lowest campaigns for readers: campaign, first send, sends, response, recipients with
    recent interest, response with and without it. In: `relevance.campaign_table` rows."""
    names = locale.texts(lang)["occasions"]["interest"]["columns"]
    share = lambda column: lowest[column].map(lambda v: _pct(v, lang))      # noqa: E731
    return pd.DataFrame({names["campaign"]: lowest[CAMPAIGN_ID],
                         names["first_send"]: lowest["first_send"].map(lambda d: locale.format_date(d, lang)),
                         names["sends"]: lowest["sends"].map(lambda v: _n(v, lang)),
                         names["rate"]: share("rate"), names["interest_share"]: share("interest_share"),
                         names["rate_interested"]: share("rate_interested"),
                         names["rate_not_interested"]: share("rate_not_interested")})


def _pooled(campaigns: pd.DataFrame, rate: str, weight: pd.Series) -> float:
    total = weight.sum()
    return float((campaigns[rate] * weight).sum() / total) if total else float("nan")


def describe_interest(lowest: pd.DataFrame, all_campaigns: pd.DataFrame, *, interest_days: float, lang: str = "en") -> str:
    """Why the lowest campaigns responded little: their recipients' recent interest, in words."""
    if lowest.empty:
        return _t("interest.none", lang)
    worst = lowest.iloc[0]
    sends, share = all_campaigns["sends"], all_campaigns["interest_share"]
    with_interest = _pooled(all_campaigns.fillna({"rate_interested": 0}), "rate_interested", sends * share)
    without = _pooled(all_campaigns.fillna({"rate_not_interested": 0}), "rate_not_interested", sends * (1 - share))
    compare = (_t("interest.compare", lang, with_interest=_pct(with_interest, lang), without=_pct(without, lang))
               if pd.notna(with_interest) and pd.notna(without) else "")
    return _t("interest.text", lang, campaign=worst[CAMPAIGN_ID], rate=_pct(worst["rate"], lang), sends=_n(worst["sends"], lang),
              k=len(lowest), share_low=_pct(lowest["interest_share"].mean(), lang, decimals=0),
              days=locale.format_number(interest_days, lang),
              share_all=_pct((share * sends).sum() / sends.sum(), lang, decimals=0), compare=compare)


# --- disversion --------------------------------------------------------------------------------
def _trend_significant(trend: Mapping) -> bool:
    return trend["ci_low"] > 0 or trend["ci_high"] < 0


def describe_disversion(trend: Mapping, *, min_orders: int, window_days: int, lang: str = "en") -> str:
    """The disversion rate and its trend in words. In: `disversion.disversion_trend`."""
    return _t("disversion.text", lang, min_orders=min_orders, window_days=window_days, first=_pct(trend["first_rate"], lang),
              first_month=locale.format_period(trend["first_month"], lang), last=_pct(trend["last_rate"], lang),
              last_month=locale.format_period(trend["last_month"], lang),
              word=_t("disversion.rose" if trend["difference"] > 0 else "disversion.fell", lang),
              change=_points(abs(trend["difference"]), lang, sign=False), low=_points(trend["ci_low"], lang),
              high=_points(trend["ci_high"], lang),
              not_sig="" if _trend_significant(trend) else _t("disversion.not_significant", lang))


def campaign_table(by_campaign: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """Recipients against comparable non-recipients for readers (%, points, interval, yes/no).
    In: `disversion.campaign_disversion` (the last row pools all campaigns)."""
    names = locale.texts(lang)["occasions"]["campaigns"]["columns"]
    return pd.DataFrame({names["campaign"]: by_campaign[CAMPAIGN_ID],
                         names["recipients"]: by_campaign["recipients"].map(lambda v: _n(v, lang)),
                         names["rate"]: by_campaign["rate"].map(lambda v: _pct(v, lang)),
                         names["matched_rate"]: by_campaign["matched_rate"].map(lambda v: _pct(v, lang)),
                         names["difference"]: by_campaign["difference"].map(lambda v: _points(v, lang)),
                         names["interval"]: [f"{_points(lo, lang)} … {_points(hi, lang)}"
                                             for lo, hi in zip(by_campaign["ci_low"], by_campaign["ci_high"])],
                         names["significant"]: by_campaign["significant"].map(lambda v: locale.format_number(bool(v), lang))})


def describe_campaign_disversion(by_campaign: pd.DataFrame, *, follow_days: int, lang: str = "en") -> str:
    """Recipients against comparable non-recipients in words (pooled and the significant campaigns)."""
    pooled, each = by_campaign.iloc[-1], by_campaign.iloc[:-1]
    better = each.loc[each["significant"] & (each["difference"] > 0), CAMPAIGN_ID].tolist()
    named = (_t("campaigns.better", lang, names=", ".join(better[:5]), others=_t("campaigns.others", lang) if len(better) > 5 else "")
             if better else _t("campaigns.none_better", lang))
    return _t("campaigns.text", lang, days=follow_days, rate=_pct(pooled["rate"], lang), matched=_pct(pooled["matched_rate"], lang),
              difference=_points(pooled["difference"], lang), low=_points(pooled["ci_low"], lang),
              high=_points(pooled["ci_high"], lang), p=locale.format_p(pooled["p_value"], lang), named=named)


# --- set-up and findings -----------------------------------------------------------------------
def setup_table(inputs, *, lang: str = "en", **parameters) -> dict:
    """What the stage works from, for the parameters table: counts and the parameters given.
    In: `relevance.prepare`'s inputs."""
    available = inputs.available["available"]
    return {_t("setup.customers", lang): _n(inputs.customer_count, lang),
            _t("setup.sends", lang): _n(int(inputs.sends["sends"].sum()), lang),
            _t("setup.derivable", lang): _t("setup.of", lang, k=int(available.sum()), n=len(available)),
            _t("setup.as_of", lang): locale.format_date(inputs.as_of, lang), **parameters}


def _numbers(entry: Mapping | None, *keys: str) -> bool:
    """Whether `entry` records every one of `keys` as a finite number (JSON null for NaN is not)."""
    return bool(entry) and all(isinstance(entry.get(k), (int, float)) and entry[k] == entry[k] for k in keys)


def describe_findings(results: Mapping, *, lang: str = "en") -> str:
    """The stage's findings in a few sentences, from what its sections recorded (`results`: the
    stage's results.json entries; a section that did not run, or recorded no number, is left out)."""
    lines = []
    counts = results.get("occasions")
    if counts and counts.get("counts"):
        top = max(counts["counts"], key=lambda row: row["customers"])
        total = sum(row["customers"] for row in counts["counts"])
        if total:
            lines.append(_t("findings.counts", lang, total=_n(total, lang), horizon_days=counts["horizon_days"],
                            top=top["label"], top_n=_n(top["customers"], lang)))
    listed = results.get("occasion_list")
    if listed:
        lines.append(_t("findings.list", lang, included=_n(listed["included"], lang),
                        customers=_n(listed["customers_included"], lang)))
    relevance = (results.get("campaign_relevance") or {}).get("adjusted")
    if _numbers(relevance, "ratio", "ci_low", "ci_high"):
        lines.append(_t("findings.relevance", lang, ratio=_ratio(relevance["ratio"], lang),
                        verdict=_verdict(relevance["ci_low"], relevance["ci_high"], lang)))
    slope = results.get("campaign_fatigue")
    if _numbers(slope, "rate_ratio_per_contact", "ci_low", "ci_high"):
        fatigue = slope
        lines.append(_t("findings.fatigue", lang, days=locale.format_number(fatigue["fatigue_days"], lang),
                        change=_change(slope["rate_ratio_per_contact"], lang),
                        not_sig="" if _fatigue_significant(slope) else _t("fatigue.not_significant", lang)))
    trend = (results.get("disversion") or {}).get("trend")
    if _numbers(trend, "difference", "last_rate"):
        lines.append(_t("findings.disversion", lang, word=_t("disversion.rose" if trend["difference"] > 0 else "disversion.fell", lang),
                        last=_pct(trend["last_rate"], lang), last_month=locale.format_period(trend["last_month"], lang)))
    return "\n".join(f"- {line}" for line in lines)
