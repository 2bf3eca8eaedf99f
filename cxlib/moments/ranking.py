"""Reach x impact: which moments to fix first, the magic moments, and the words for the report.

**Priority** = KPI points at stake = share of responses exposed x (- adjusted impact): the
points the overall KPI (NPS when the data has it, else CSAT or CES) loses through the moment.
Moments with a significant positive impact are *magic moments*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import locale, metrics
from cxlib.moments.base import MOMENT, _require, interval_text, num, say
from cxlib.schema import CSAT, NPS

RANKING_COLUMNS = [MOMENT, "label", "classic", "kpi", "reach", "exposed_share", "n_exposed", "impact", "ci_low", "ci_high",
                   "impact_raw", "raw_ci_low", "raw_ci_high", "significant", "small", "churn_lift", "churn_lift_low",
                   "churn_lift_high", "churn_difference", "churn_significant", "points_at_stake", "priority", "rank",
                   "magic"]


def empty_ranking() -> pd.DataFrame:
    """A ranking without rows (the columns of `rank_moments`), for when no KPI impact exists."""
    return pd.DataFrame({c: pd.Series(dtype="str" if c in (MOMENT, "label", "kpi") else "bool"
                                      if c in ("classic", "significant", "small", "churn_significant", "magic")
                                      else "Int64" if c == "rank" else "float64") for c in RANKING_COLUMNS})


def rank_moments(candidates: pd.DataFrame, impact: pd.DataFrame, churn: pd.DataFrame | None = None, *,
                 customers: int | None = None) -> pd.DataFrame:
    """Reach x impact: one row per candidate moment, ranked by priority.

    In: `candidate_moments`, `kpi_impact` of one KPI (NPS where the data has it), `churn_impact`
    (optional). points_at_stake = exposed_share x (- adjusted impact): the KPI points the overall
    score loses through the moment (negative: points it gains). priority = points_at_stake when
    the impact is significant, else 0 (an impact we cannot tell from chance puts nothing at
    stake); NaN for small moments, which are never ranked. magic = a significant positive impact.
    reach = share of active customers exposed (from `churn`; without it, the moment's customers
    of `candidates` over `customers`, when given).
    Out: moment, label, classic, kpi, reach, exposed_share, n_exposed, impact (adjusted, in the
    KPI's unit), ci_low, ci_high, impact_raw, raw_ci_low, raw_ci_high, significant, small,
    churn_lift, churn_lift_low, churn_lift_high, churn_difference, churn_significant,
    points_at_stake, priority, rank (1 = highest), magic; sorted by priority, then
    points_at_stake (highest first, small moments last).
    """
    _require(candidates, [MOMENT, "label", "classic"], "candidates")
    _require(impact, [MOMENT, "kpi", "n_exposed", "exposed_share", "difference", "ci_low", "ci_high", "adjusted",
                      "adjusted_low", "adjusted_high", "small", "significant"], "impact")
    out = candidates.loc[:, [MOMENT, "label", "classic", *(["customers"] if "customers" in candidates else [])]].merge(
        impact.loc[:, [MOMENT, "kpi", "n_exposed", "exposed_share", "difference", "ci_low", "ci_high", "adjusted",
                       "adjusted_low", "adjusted_high", "small", "significant"]]
        .rename(columns={"difference": "impact_raw", "ci_low": "raw_ci_low", "ci_high": "raw_ci_high",
                         "adjusted": "impact", "adjusted_low": "ci_low", "adjusted_high": "ci_high"}),
        on=MOMENT, how="inner")
    if churn is not None:
        _require(churn, [MOMENT, "reach", "churn_lift", "lift_low", "lift_high", "churn_difference", "significant"],
                 "churn impact")
        out = out.merge(churn.loc[:, [MOMENT, "reach", "churn_lift", "lift_low", "lift_high", "churn_difference", "significant"]]
                        .rename(columns={"lift_low": "churn_lift_low", "lift_high": "churn_lift_high",
                                         "significant": "churn_significant"}), on=MOMENT, how="left")
    else:
        reach = (out["customers"] / customers if customers and "customers" in out else pd.Series(np.nan, index=out.index))
        out = out.assign(reach=reach.astype(float), churn_lift=np.nan, churn_lift_low=np.nan, churn_lift_high=np.nan,
                         churn_difference=np.nan, churn_significant=False)
    small = out["small"].astype(bool)
    significant = out["significant"].astype(bool)
    stake = (out["exposed_share"] * -out["impact"]).where(~small).astype(float)
    out = out.assign(points_at_stake=stake, priority=stake.where(significant | stake.isna(), 0.0),
                     magic=(significant & (out["impact"] > 0)).astype(bool),
                     churn_significant=out["churn_significant"].fillna(False).astype(bool))
    out = out.sort_values(["priority", "points_at_stake", "label"], ascending=[False, False, True], na_position="last",
                          kind="stable")
    rank = pd.Series(np.arange(1, len(out) + 1), index=out.index).where(out["priority"].notna())
    return out.assign(rank=rank.astype("Int64")).loc[:, RANKING_COLUMNS].reset_index(drop=True)


def ranking_record(ranking: pd.DataFrame) -> pd.DataFrame:
    """The `moments_of_truth` rows of results.json, ranked by priority: moment, label, kpi, reach,
    impact, ci_low, ci_high, churn_lift, priority, rank, magic, significant, small, n_exposed,
    points_at_stake, impact_raw, raw_ci_low, raw_ci_high, and nps_impact / nps_impact_raw
    (the same numbers) when the KPI is NPS."""
    rows = ranking.loc[:, [MOMENT, "label", "kpi", "reach", "impact", "ci_low", "ci_high", "churn_lift", "priority", "rank",
                           "magic", "significant", "small", "n_exposed", "points_at_stake", "impact_raw", "raw_ci_low",
                           "raw_ci_high"]]
    nps = rows["kpi"].eq(NPS)
    return rows.assign(nps_impact=rows["impact"].where(nps), nps_impact_raw=rows["impact_raw"].where(nps))


def _kpi(ranking: pd.DataFrame) -> str:
    return str(ranking["kpi"].iloc[0]) if len(ranking) else NPS


def ranking_table(ranking: pd.DataFrame, *, churn_exclude: Sequence[str] = (), lang: str = "en") -> pd.DataFrame:
    """The ranking (`rank_moments`) for readers (`locale.display_table`): estimates with their
    intervals in one cell, reach in %, a "*" on a significant churn lift; moments in
    `churn_exclude` (part of leaving, e.g. cancellation requests: their churn lift is circular)
    show "part of leaving" instead. Columns: rank, moment, classic, reach, impact adjusted (95% CI),
    raw, churn lift (95% CI), points at stake, priority, magic, too few."""
    kpi = _kpi(ranking)
    leaving = ranking[MOMENT].isin(list(churn_exclude)).to_numpy()
    lift = (interval_text(ranking["churn_lift"], ranking["churn_lift_low"], ranking["churn_lift_high"], decimals=2,
                          sign=False)
            + np.where(ranking["churn_significant"].fillna(False).astype(bool), " *", ""))
    table = pd.DataFrame({
        "rank": ranking["rank"], "moment": ranking["label"], "classic": ranking["classic"].astype(bool),
        "reach": ranking["reach"], "impact_interval": interval_text(ranking["impact"], ranking["ci_low"],
                                                                    ranking["ci_high"]).to_numpy(),
        "nps_impact_raw": ranking["impact_raw"],
        "lift_interval": np.where(leaving, locale.text("tables.part_of_leaving", lang), lift.to_numpy()),
        "points_at_stake": ranking["points_at_stake"], "priority": ranking["priority"],
        "magic": ranking["magic"], "small": ranking["small"]})
    name = metrics.LABELS.get(kpi, "KPI")
    return locale.display_table(table, lang, kinds={"points_at_stake": "score", "priority": "score"}, labels={
        "classic": say("words.classic", lang),
        "impact_interval": f"{name}: {locale.label('adjusted_interval', lang)}",
        "nps_impact_raw": f"{name}: {locale.label('raw', lang)}",
        "points_at_stake": locale.text("tables.points_at_stake", lang, kpi=name),
        "priority": locale.text("tables.priority", lang, kpi=name)})


def describe_ranking(ranking: pd.DataFrame, *, churn_exclude: Sequence[str] = (), lang: str = "en") -> str:
    """Two or three sentences on the moments with KPI points at stake (by priority), the magic
    moments and the moments without points at stake after which churn rises significantly
    (except `churn_exclude`, reasons that are part of leaving such as cancellation requests)."""
    name = metrics.LABELS.get(_kpi(ranking), "KPI")
    ranked = ranking.loc[ranking["priority"].notna() & (ranking["priority"] > 0)]
    if ranked.empty:
        text = say("ranking.none", lang, name=name)
    else:
        text = say("ranking.lead", lang, items="; ".join(
            say("ranking.item", lang, label=r["label"], name=name, impact=num(r["impact"], lang, decimals=0, sign=True),
                priority=num(r["priority"], lang),
                churn=say("ranking.item_churn", lang, lift=num(r["churn_lift"], lang)) if pd.notna(r["churn_lift"]) else "")
            for _i, r in ranked.head(3).iterrows()))
    magic = ranking.loc[ranking["magic"].astype(bool)]
    if len(magic):
        text += say("ranking.magic", lang, items=", ".join(
            say("ranking.magic_item", lang, label=r["label"], impact=num(r["impact"], lang, decimals=0, sign=True))
            for _i, r in magic.iterrows()))
    else:
        text += say("ranking.no_magic", lang, name=name)
    churned = churn_without_stake(ranking, churn_exclude=churn_exclude)
    if len(churned):
        text += say("ranking.churned", lang, name=name, items=", ".join(
            say("ranking.churned_item", lang, label=r["label"], lift=num(r["churn_lift"], lang))
            for _i, r in churned.iterrows()))
    return text


def churn_without_stake(ranking: pd.DataFrame, *, churn_exclude: Sequence[str] = ()) -> pd.DataFrame:
    """The moments without KPI points at stake after which churn still rises significantly (not
    in `churn_exclude`), highest churn lift first."""
    return (ranking.loc[ranking["churn_significant"].fillna(False).astype(bool) & (ranking["churn_lift"] > 1)
                        & ~(ranking["priority"] > 0) & ~ranking[MOMENT].isin(list(churn_exclude))]
            .sort_values("churn_lift", ascending=False, kind="stable"))


def importance_performance(ranking: pd.DataFrame, impacts: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The moments with enough exposed answers, placed by importance (- adjusted impact) and
    performance (CSAT of the exposed answers where the data has CSAT, else the ranked KPI of
    the exposed answers), with `fix_first` marking the moment with the highest priority among
    those at or below both medians' worse side (else the highest priority overall).

    Out: the ranking columns plus performance, performance_kpi, importance, fix_first."""
    perf_kpi = CSAT if CSAT in impacts else _kpi(ranking)
    perf = impacts.get(perf_kpi)
    if perf is None or ranking.empty:
        return ranking.iloc[0:0].assign(performance=pd.Series(dtype=float), performance_kpi=pd.Series(dtype=str),
                                        importance=pd.Series(dtype=float), fix_first=pd.Series(dtype=bool))
    ipa = (ranking.loc[~ranking["small"].astype(bool) & ranking["impact"].notna()]
           .merge(perf[[MOMENT, "exposed_value"]].rename(columns={"exposed_value": "performance"}), on=MOMENT)
           .assign(performance_kpi=perf_kpi, importance=lambda d: -d["impact"]))
    if ipa.empty:
        return ipa.assign(fix_first=pd.Series(dtype=bool))
    worse = ipa.loc[(ipa["impact"] <= ipa["impact"].median()) & (ipa["performance"] <= ipa["performance"].median())]
    pool = worse if len(worse) else ipa
    pick = pool.sort_values("priority", ascending=False, kind="stable").index[0]
    return ipa.assign(fix_first=ipa.index == pick).reset_index(drop=True)
