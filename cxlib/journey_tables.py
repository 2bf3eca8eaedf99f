"""The tables of the journey report as a reader sees them (`locale.display_table`): columns in
words in English or German, shares in percent, days to one decimal, counts grouped, touchpoint,
stage, segment and customer-type codes as their labels.

    journey_tables.shown(journey.lost_sales(events, orders), taxonomy=taxonomy, lang="de")
"""

from __future__ import annotations

import pandas as pd

from cxlib import journey, locale
from cxlib import journey_describe as describe

SHARE_COLUMNS = frozenset({"share", "conversion", "ci_low", "ci_high", "step_conversion", "step_ci_low", "step_ci_high",
                           "probability", "coverage", "cumulative_coverage", "rate", "share_over", "survival"})
STEP_COLUMNS = ("step", "from_step", "to_step")    # touchpoint codes ('a|b' = either), shown as taxonomy labels
TOP_ROWS = 15                                      # rows of the long tables (transitions)


def _codes(frame: pd.DataFrame, taxonomy, lang: str) -> dict[str, dict]:
    """Coded values of `frame` in words: segments and stages from the taxonomy, customer types,
    cancellation reasons."""
    codes = {"customer_type": {kind: describe.customer_type_label(kind, lang) for kind in journey.CUSTOMER_TYPES}}
    if "reason" in frame.columns:
        codes["reason"] = {r: describe.reason_label(r, taxonomy, lang) for r in frame["reason"].dropna().unique()}
    if taxonomy is not None:
        codes["segment"] = {s: taxonomy.label("segments", s, lang) for s in taxonomy.codes("segments")}
        codes["stage"] = {s: taxonomy.label("stages", s, lang) for s in taxonomy.codes("stages")}
    return codes


def shown(frame: pd.DataFrame, *, other: int = 3, taxonomy=None, lang: str = "en") -> pd.DataFrame:
    """`frame` as the report shows it (`locale.display_table`): every value as text, shares
    (`SHARE_COLUMNS`) in percent with one decimal, columns named *days* to one
    decimal, other floats rounded to `other` decimals; columns in words of `lang` (`journey.columns` in the locale files) (a code column
    is left out where its `_label` column is there); with `taxonomy`, the touchpoint codes of step,
    from_step and to_step, stage paths, segments and stages as their labels.

        shown(pd.DataFrame({"step": ["order"], "conversion": [0.4567]})) -> step, "conversion from step 1" '45.7%'
    """
    out = frame.drop(columns=[c for c in frame.columns if f"{c}_label" in frame.columns])
    if taxonomy is not None:
        out = out.assign(**{c: [journey.step_label(v, taxonomy, lang=lang) if isinstance(v, str) and v else v
                                for v in out[c]] for c in STEP_COLUMNS if c in out.columns})
        if "path" in out.columns:
            out = out.assign(path=[describe.path_label(p, taxonomy, lang) for p in out["path"]])
    floats = [c for c in out.columns if pd.api.types.is_float_dtype(out[c])]
    out = out.assign(**{c: out[c].round(other) for c in floats if c not in SHARE_COLUMNS and "days" not in c})
    kinds = {c: ("share" if c in SHARE_COLUMNS else "days" if "days" in c else "number") for c in floats}
    kinds.update({c: "count" for c in out.columns if pd.api.types.is_integer_dtype(out[c])})
    words = locale.texts(locale.check_lang(lang))["journey"]["columns"]
    labels = {c: words[c].removesuffix(" (%)") for c in out.columns if c in words}
    return locale.display_table(out, lang, kinds=kinds, labels=labels, codes=_codes(out, taxonomy, lang))


FUNNEL_COLUMNS = ("segment", "step", "customers", "conversion", "step_conversion", "days_median", "days_p90")


def funnel_table(funnel: pd.DataFrame, taxonomy, lang: str = "en") -> pd.DataFrame:
    """The funnel as a report table (`shown`): [segment], step, customers, conversion from step 1
    and from the previous step, days (median, 90th percentile)."""
    return shown(funnel.loc[:, [c for c in FUNNEL_COLUMNS if c in funnel.columns]], taxonomy=taxonomy, lang=lang)


def paths_table(paths: pd.DataFrame, taxonomy=None, lang: str = "en"):
    """The top paths as a report table (`shown`, as a Styler so that long paths are not cut)."""
    return shown(paths.drop(columns=["variants"], errors="ignore"), taxonomy=taxonomy, lang=lang).style.hide(axis="index")


def transitions_table(flow: pd.DataFrame, taxonomy, lang: str = "en", rows: int = TOP_ROWS) -> pd.DataFrame:
    """The `rows` most frequent transitions (from `journey.transitions`) as a report table."""
    return shown(flow.head(rows), taxonomy=taxonomy, lang=lang)


def campaigns_table(by_campaign: pd.DataFrame, lang: str = "en", rows: int = 10) -> pd.DataFrame:
    """The campaigns with the highest response (from `journey.campaign_response(by="campaign_id")`)."""
    return shown(describe.top_campaigns(by_campaign, rows), lang=lang)


def cancellations_table(cancelled: pd.DataFrame, lang: str = "en", rows: int = 10) -> pd.DataFrame:
    """The groups with the most cancelled orders (from `journey.cancelled_orders`)."""
    return shown(describe.top_cancelled(cancelled, rows), lang=lang)
