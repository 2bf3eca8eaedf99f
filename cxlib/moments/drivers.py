"""Driver analysis: which attributes (touchpoints) move the overall score.

Runs on any feedback where one respondent gives an overall answer and rates several
attributes: a relationship NPS beside transactional CSAT per touchpoint (the demo), or a
ratings table melted into one feedback row per attribute (touchpoint = the attribute, csat =
the rating on its scale) with the overall rating marked as touchpoint 'overall' or survey
'relationship'. Respondents are grouped by customer_id (a ratings table maps its respondent
key there). Johnson's relative weights split the explained variance of the overall score among
the attributes, correlated ratings included; the mean rating is the performance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import locale, metrics
from cxlib.moments.base import MomentsError, _require, join_words, num, pct, say
from cxlib.schema import CSAT, CSAT_MAX, CUSTOMER_ID, NPS, SURVEY, TOUCHPOINT, Missing

OVERALL = "overall"                    # touchpoint code of an overall rating in a ratings table
RELATIONSHIP = "relationship"          # survey code of the overall (relationship) survey
_ENABLE = ("feedback rows per respondent (customer_id): an overall answer (touchpoint 'overall' or survey "
           "'relationship') and per-attribute ratings (touchpoint = attribute, csat = rating)")


def overall_rows(feedback: pd.DataFrame, *, col_touchpoint: str = TOUCHPOINT, col_survey: str = SURVEY) -> pd.Series:
    """True for the overall answers: no touchpoint, touchpoint 'overall' or survey 'relationship'."""
    tp = feedback[col_touchpoint] if col_touchpoint in feedback.columns else pd.Series(pd.NA, index=feedback.index)
    survey = feedback[col_survey] if col_survey in feedback.columns else pd.Series(pd.NA, index=feedback.index)
    return (tp.isna() | tp.eq(OVERALL) | survey.eq(RELATIONSHIP)).fillna(False).astype(bool)


def driver_outcome(feedback: pd.DataFrame) -> str | None:
    """The overall score to explain: NPS when overall answers carry it, else their CSAT rating, else None."""
    overall = feedback.loc[overall_rows(feedback)]
    return next((k for k in (NPS, CSAT) if k in overall.columns and overall[k].notna().any()), None)


def relative_weights(data: pd.DataFrame, outcome: str, drivers: Sequence[str]) -> pd.DataFrame:
    """Johnson's relative weights: how much of the explained variance (R²) of `outcome` each
    driver carries, with correlated drivers handled by an orthogonal approximation.

    R = corr(drivers) = V diag(e) V'; L = V diag(sqrt e) V'; beta = L^-1 corr(drivers, outcome);
    weight_j = sum_k L_jk² beta_k²; the weights sum to R². Rows with a missing value are left
    out. Out, one row per driver (given order): driver, weight, share (% of R²), mean (mean
    rating, the performance), r2, n.
    """
    drivers = list(drivers)
    _require(data, [outcome, *drivers], "driver data")
    if len(drivers) < 1:
        raise MomentsError("relative_weights: name at least one driver")
    rows = data.loc[:, [outcome, *drivers]].astype("float64").dropna()
    if len(rows) < len(drivers) + 2:
        raise MomentsError(f"relative_weights: {len(rows)} complete rows are too few for {len(drivers)} drivers")
    constant = [c for c in [outcome, *drivers] if rows[c].std() == 0]
    if constant:
        raise MomentsError(f"relative_weights: column(s) {constant} do not vary; first rows: {rows.head(3).to_dict('records')}")
    corr = rows.corr().to_numpy()
    rxx, rxy = corr[1:, 1:], corr[1:, 0]
    evals, evecs = np.linalg.eigh(rxx)
    if evals.min() <= 1e-10:
        raise MomentsError(f"relative_weights: drivers {drivers} are perfectly collinear")
    lam = evecs @ np.diag(np.sqrt(evals)) @ evecs.T
    beta = np.linalg.solve(lam, rxy)
    weights = (lam**2) @ (beta**2)
    r2 = float(weights.sum())
    return pd.DataFrame({
        "driver": pd.Series(drivers, dtype="str"), "weight": weights,
        "share": 100 * weights / r2 if r2 > 0 else np.full(len(drivers), np.nan),
        "mean": rows[drivers].mean().to_numpy(), "r2": r2, "n": len(rows),
    })


def touchpoint_ratings(feedback: pd.DataFrame, *, outcome: str | None = None, rating: str = CSAT, min_n: int = 30,
                       col_customer: str = CUSTOMER_ID, col_touchpoint: str = TOUCHPOINT) -> pd.DataFrame:
    """Per-attribute ratings beside the overall score, one row per respondent, for driver analysis.

    Outcome = the respondent's mean `outcome` (default: `driver_outcome`) over the overall
    answers (`overall_rows`); each driver = the respondent's mean `rating` at one touchpoint
    (attribute). Only respondents who rated every kept touchpoint remain; while fewer than
    `min_n` do, the touchpoint with the fewest raters is dropped (at least two are needed).
    Out: customer_id, <outcome>, one column per kept touchpoint; no rows when no two touchpoints
    have `min_n` respondents in common. `schema.Missing` without an overall answer.
    """
    outcome = outcome or driver_outcome(feedback)
    if outcome is None:
        raise Missing("no overall answer (NPS or rating) to explain", enable=_ENABLE)
    _require(feedback, [col_customer, col_touchpoint, outcome, rating], "feedback")
    known = feedback.loc[feedback[col_customer].notna()]
    if known.empty:
        raise Missing("the answers cannot be grouped by respondent", enable="feedback.customer_id (a respondent key)")
    is_overall = overall_rows(known, col_touchpoint=col_touchpoint)
    overall = known.loc[is_overall & known[outcome].notna()].groupby(col_customer)[outcome].mean()
    rated = (known.loc[~is_overall & known[rating].notna() & known[col_customer].isin(overall.index)]
             .pivot_table(index=col_customer, columns=col_touchpoint, values=rating, aggfunc="mean"))
    keep = sorted((tp for tp in rated.columns if rated[tp].notna().sum() >= min_n),
                  key=lambda tp: (-int(rated[tp].notna().sum()), str(tp)))
    while len(keep) > 2 and len(rated.loc[:, keep].dropna()) < min_n:
        keep = keep[:-1]
    wide = rated.loc[:, sorted(keep)].dropna()
    wide = wide if len(keep) >= 2 and len(wide) >= min_n else rated.iloc[0:0].loc[:, sorted(keep)]
    out = overall.rename(outcome).to_frame().join(wide, how="inner").reset_index()
    return out.rename(columns={"index": col_customer}).rename_axis(columns=None)


def driver_weights(ratings: pd.DataFrame, outcome: str, *, min_n: int = 30, col_respondent: str = CUSTOMER_ID) -> pd.DataFrame:
    """Relative weights of the attributes of `touchpoint_ratings` for `outcome`, sorted by weight
    (highest first); attributes whose rating does not vary are left out. `schema.Missing` when
    fewer than `min_n` respondents or fewer than two attributes remain. Out: as `relative_weights`.
    """
    drivers = [c for c in ratings.columns if c not in (col_respondent, outcome)]
    if len(ratings) < max(min_n, 1) or len(drivers) < 2:
        raise Missing(f"fewer than {min_n} respondents gave an overall answer and rated at least two attributes",
                      enable=_ENABLE)
    varying = [d for d in drivers if ratings[d].nunique(dropna=True) >= 2]
    if len(varying) < 2 or ratings[outcome].nunique(dropna=True) < 2:
        raise Missing("the overall answer or the attribute ratings do not vary", enable=_ENABLE)
    try:
        weights = relative_weights(ratings, outcome, varying)
    except MomentsError as error:
        raise Missing(f"no driver analysis: {error}", enable=_ENABLE) from error
    return weights.sort_values(["weight", "driver"], ascending=[False, True], kind="stable").reset_index(drop=True)


def rating_scale(feedback: pd.DataFrame, rating: str = CSAT) -> float:
    """Top of the attribute rating scale: the most common csat_max (missing or absent: 5) for CSAT."""
    if rating != CSAT or CSAT_MAX not in feedback.columns or feedback[CSAT_MAX].notna().sum() == 0:
        return 5.0 if rating == CSAT else 7.0 if rating == "ces" else 10.0
    return float(feedback[CSAT_MAX].dropna().mode().iloc[0])


def drivers_table(weights: pd.DataFrame, labels: Mapping, *, lang: str = "en") -> pd.DataFrame:
    """The weights for readers, highest first (`locale.display_table`): attribute, share of
    explained variance (%), weight, mean rating."""
    shown = weights.sort_values("weight", ascending=False, kind="stable")
    return locale.display_table(pd.DataFrame({
        "driver": shown["driver"].map(lambda d: labels.get(d, d)).to_numpy(), "share_r2": shown["share"].to_numpy(),
        "weight": shown["weight"].to_numpy(), "mean": shown["mean"].to_numpy()}), lang,
        kinds={"share_r2": "percent"})


def driver_name(weights: pd.DataFrame, lang: str = "en") -> str:
    """What the drivers explain: 'NPS', or the overall rating in `lang`."""
    outcome = str(weights["outcome"].iloc[0]) if "outcome" in weights.columns and len(weights) else NPS
    return metrics.LABELS.get(NPS, "NPS") if outcome == NPS else say("words.overall_rating", lang)


def describe_drivers(weights: pd.DataFrame, labels: Mapping, *, scale: float, lang: str = "en") -> str:
    """The attributes that carry most of the explained variance of the overall score
    (`driver_analysis`), and the one to improve first (above-median weight, lowest mean rating)."""
    shown = weights.sort_values("weight", ascending=False, kind="stable")
    lead = shown.iloc[0]
    rest = [f"{labels.get(r['driver'], r['driver'])} {pct(r['share'], lang, decimals=0)}"
            for _i, r in shown.iloc[1:3].iterrows()]
    text = say("drivers.lead", lang, label=labels.get(lead["driver"], lead["driver"]),
               share=num(lead["share"], lang, decimals=0), name=driver_name(weights, lang),
               r2=num(lead["r2"], lang, decimals=2), n=num(int(lead["n"]), lang, decimals=0),
               rest=say("drivers.rest", lang, items=join_words(rest, lang)) if rest else "")
    important = shown.loc[shown["weight"] >= shown["weight"].median()]
    fix = important.sort_values("mean", kind="stable").iloc[0]
    return text + say("drivers.fix", lang, label=labels.get(fix["driver"], fix["driver"]),
                      mean=num(fix["mean"], lang, decimals=2), scale=f"{scale:g}")


def driver_analysis(feedback: pd.DataFrame, *, min_n: int = 30, col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """`touchpoint_ratings` then `driver_weights` for the overall score the data has
    (`driver_outcome`): the weights, highest first, with the column `outcome` (nps / csat).
    `schema.Missing` when the feedback holds no ratings to weigh."""
    ratings = touchpoint_ratings(feedback, min_n=min_n, col_customer=col_customer)
    outcome = driver_outcome(feedback)
    return driver_weights(ratings, outcome, min_n=min_n, col_respondent=col_customer).assign(outcome=outcome)


def touchpoint_labels(taxonomy, lang: str = "en") -> dict[str, str]:
    """Touchpoint code -> label in `lang`, for naming the attributes."""
    return {code: taxonomy.label("touchpoints", code, lang) for code in taxonomy.codes("touchpoints")}
