"""The findings that open the moments-of-truth report: the numbers that matter, in sentences, from
the results of the sections that could run (a section the data could not support adds none).

    describe_findings(inputs, impacts=impacts, ranking=ranking, churn=churn, complaints=monthly)
    -> '- **Unclear invoice item** costs the most loyalty: ...\n- Fix first: ...'
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from cxlib import locale, metrics
from cxlib.moments.base import MOMENT, num, say
from cxlib.moments.churn import resolution_contrast, top_churn_moment
from cxlib.moments.complaints import complaint_chart_columns, top_breakout
from cxlib.moments.ranking import importance_performance


def _impact(ranking: pd.DataFrame | None, impacts: Mapping[str, pd.DataFrame], lang: str) -> list[str]:
    """The moment with most KPI points at stake, the one to fix first (when another) and the magic moments."""
    if ranking is None or ranking.empty:
        return []
    name = metrics.LABELS.get(str(ranking["kpi"].iloc[0]), "KPI")
    ranked = ranking.loc[ranking["priority"].notna() & (ranking["priority"] > 0)]
    if ranked.empty:
        lines = [say("findings.cost_none", lang, name=name)]
    else:
        top = ranked.iloc[0]
        lines = [say("findings.cost", lang, label=top["label"], name=name,
                     impact=num(top["impact"], lang, decimals=0, sign=True), low=num(top["ci_low"], lang, decimals=0,
                                                                                    sign=True),
                     high=num(top["ci_high"], lang, decimals=0, sign=True), priority=num(top["priority"], lang))]
        ipa = importance_performance(ranking, impacts)
        fix = ipa.loc[ipa["fix_first"].astype(bool)] if len(ipa) else ipa
        if len(fix) and fix.iloc[0][MOMENT] != top[MOMENT] and fix.iloc[0]["priority"] > 0:
            lines.append(say("findings.fix_first", lang, label=fix.iloc[0]["label"]))
    lines += [say("findings.magic", lang, label=r["label"], name=name, impact=num(r["impact"], lang, decimals=0, sign=True))
              for _i, r in ranking.loc[ranking["magic"].astype(bool)].iterrows()]
    return lines


def _churn(churn: pd.DataFrame | None, by_outcome: pd.DataFrame | None, labels: Mapping, exclude, lang: str) -> list[str]:
    """The moment after which churn rises significantly most, and unresolved against resolved contacts."""
    lines = []
    top = top_churn_moment(churn, exclude=exclude) if churn is not None else None
    if top is not None and bool(top["significant"]) and top["churn_lift"] > 1:
        lines.append(say("findings.churn", lang, label=labels.get(top[MOMENT], top[MOMENT]),
                         lift=num(top["churn_lift"], lang), low=num(top["lift_low"], lang),
                         high=num(top["lift_high"], lang)))
    pair = resolution_contrast(by_outcome) if by_outcome is not None else None
    if pair is not None and bool(pair[0]["significant"]) and pair[0]["churn_lift"] > pair[1]["churn_lift"]:
        lines.append(say("findings.handling", lang, label=labels.get(pair[0][MOMENT], pair[0][MOMENT]),
                         lift=num(pair[0]["churn_lift"], lang), resolved=num(pair[1]["churn_lift"], lang)))
    return lines


def _complaints(monthly: pd.DataFrame | None, lang: str) -> list[str]:
    """The largest complaint breakout, or that complaints stay within their limits."""
    if monthly is None or monthly.empty:
        return []
    top = top_breakout(monthly)
    if top is None:
        return [say("findings.complaints_calm", lang)] if not monthly["out_of_control"].any() else []
    cols = complaint_chart_columns(monthly)
    rate = cols["unit"] == "per 1,000"
    return [say("findings.complaints", lang, category=top["category_label"], month=locale.format_period(top["month"], lang),
                value=num(top[cols["value"]], lang, decimals=1 if rate else 0),
                unit=say("words.per_1000" if rate else "words.complaints", lang), centre=num(top[cols["center"]], lang))]


def describe_findings(inputs, *, impacts: Mapping[str, pd.DataFrame] | None = None, churn: pd.DataFrame | None = None,
                      ranking: pd.DataFrame | None = None, handling_churn: pd.DataFrame | None = None,
                      complaints: pd.DataFrame | None = None, call_backs=None) -> str:
    """The findings of the stage as a Markdown list, in the language of `inputs.settings`: the
    moment that costs most loyalty (adjusted impact, interval, points at stake), the moment to
    fix first, the magic moments, the moment after which churn rises most (significant only),
    unresolved against resolved contacts, the largest complaint breakout and the call-back list.
    Results of sections that did not run are None (or empty) and add nothing."""
    lang, st = inputs.lang, inputs.settings
    lines = [*_impact(ranking, impacts or {}, lang),
             *_churn(churn, handling_churn, inputs.labels, st.churn_chart_exclude, lang),
             *_complaints(complaints, lang)]
    if call_backs is not None and call_backs.counts["candidates"]:
        counts = call_backs.counts
        lines.append(say("findings.contact", lang, included=num(counts["included"], lang, decimals=0),
                         days=f"{st.recent_days:g}", no_consent=num(counts["excluded_no_consent"], lang, decimals=0)))
    return "\n".join(f"- {line}" for line in lines) if lines else say("findings.none", lang)

