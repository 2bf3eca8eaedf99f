"""Impact of the moments on survey KPIs: exposure of answers, raw and adjusted differences,
handling quality, and the words for the report.

**Exposure** of a survey response: the customer had a contact of the moment in the
`window_days` up to the response (0 <= response - contact <= window). Impact = KPI of the
exposed responses minus that of the unexposed (intervals from `cxlib.metrics`), and the same
difference adjusted for segment (and other covariates) by OLS on the KPI's per-answer score
(NPS: promoter +100, passive 0, detractor -100; CSAT: 100 in the top two points of the
answer's scale; CES: the score), so the coefficient is in the KPI's own unit.
Benjamini-Hochberg over the moments. A derived moment with `comparable_when` is compared like
with like: only with answers of customers in the same situation (see `comparable_responses`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import ibis
import numpy as np
import pandas as pd
from ibis import _

from cxlib import engine, locale, metrics
from cxlib.moments.base import (
    DIMENSION, HANDLING_DIMENSIONS, LEVEL, MOMENT, SECONDS_PER_DAY, UNKNOWN, MomentsError, _bh, _level_order,
    _require, _seconds, _tbl, conform, design_matrix, interval_text, join_words, num, pct, say,
)
from cxlib.schema import (
    CES, CONTACT_REASON, CSAT, CSAT_MAX, CUSTOMER_ID, EVENT_ID, NPS, RESPONSE_ID, SEGMENT, TIMESTAMP, TOUCHPOINT, Missing,
)

KPI_ORDER = (NPS, CSAT, CES)
_DECIMALS = {NPS: 1, CSAT: 1, CES: 2}


def kpi_scores(frame: pd.DataFrame, kpi: str, *, col_score: str | None = None) -> pd.Series:
    """The KPI's answers, comparable on any scale: CSAT answers become 5 when in the top two
    points of their own scale (csat >= csat_max - 1; csat_max missing or absent: 5), else 1,
    so every CSAT is the top-box share; NPS and CES answers as they are. NA stays NA."""
    col = col_score or kpi
    values = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    if kpi != CSAT:
        return values
    top = frame[CSAT_MAX].astype("float64").fillna(5.0) if CSAT_MAX in frame.columns else 5.0
    return pd.Series(np.where(values >= top - 1, 5.0, 1.0), index=frame.index, dtype="float64").where(values.notna())


def kpis_present(responses: pd.DataFrame, *, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP) -> list[str]:
    """The KPIs (nps, csat, ces, in that order) with at least one dated answer of a known customer."""
    if not {col_customer, col_timestamp} <= set(responses.columns):
        return []
    known = responses.loc[responses[col_customer].notna() & responses[col_timestamp].notna()]
    return [k for k in KPI_ORDER if k in known.columns and known[k].notna().any()]


def varying_covariates(responses: pd.DataFrame, covariates: Sequence[str]) -> list[str]:
    """The covariates with at least two levels among the responses (a single segment adjusts for nothing)."""
    return [c for c in covariates if c in responses.columns and responses[c].nunique(dropna=True) >= 2]


def comparable_responses(events, feedback, rules: Mapping[str, Mapping], *, window_days: float = 60,
                         col_response: str = RESPONSE_ID, col_customer: str = CUSTOMER_ID,
                         col_timestamp: str = TIMESTAMP) -> pd.DataFrame:
    """Which answers are comparable for the moments with a `comparable_when` condition
    (`candidates.comparable_rules`): the customer had an event matching it (touchpoint or
    contact reason) in the `window_days` up to the answer.

    Out, one row per dated answer of a known customer and ruled moment: response_id, moment,
    comparable (bool). Empty without rules.
    """
    columns = {col_response: pd.Series(dtype="str"), MOMENT: pd.Series(dtype="str"), "comparable": pd.Series(dtype=bool)}
    if not rules:
        return pd.DataFrame(columns)
    e = _tbl(events, "events", [col_customer, col_timestamp, TOUCHPOINT, CONTACT_REASON])
    f = _tbl(feedback, "feedback", [col_response, col_customer, col_timestamp])
    f = f.filter(f[col_customer].notnull() & f[col_timestamp].notnull())
    answers = f.select(_r=f[col_response], _fc=f[col_customer], _fs=_seconds(f[col_timestamp]))
    window = int(round(window_days * SECONDS_PER_DAY))
    parts = []
    for moment, when in rules.items():
        cond = ibis.literal(False)
        for col, values in when.items():
            cond = cond | e[col].isin(list(values))
        hits = e.filter(cond).select(_c=e[col_customer], _s=_seconds(e[col_timestamp]))
        ok = answers.semi_join(hits, [answers._fc == hits._c, hits._s <= answers._fs, hits._s >= answers._fs - window])
        parts.append(answers.select("_r").mutate(_m=ibis.literal(str(moment)), _ok=answers._r.isin(ok._r)))
    out = engine.to_pandas(ibis.union(*parts))
    return (pd.DataFrame({col_response: out["_r"].astype("str"), MOMENT: out["_m"].astype("str"),
                          "comparable": out["_ok"].astype(bool)})
            .sort_values([MOMENT, col_response], kind="stable").reset_index(drop=True))


def _comparable_sets(comparable: pd.DataFrame | None, col_response: str, col_moment: str) -> dict[str, set]:
    if comparable is None or comparable.empty:
        return {}
    _require(comparable, [col_response, col_moment, "comparable"], "comparable responses")
    ok = comparable.loc[comparable["comparable"].astype(bool)]
    return {str(m): set(ok.loc[ok[col_moment] == m, col_response]) for m in comparable[col_moment].unique()}


def response_exposures(handled, feedback, *, window_days: float = 60, col_response: str = RESPONSE_ID,
                       col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP) -> pd.DataFrame:
    """Which survey responses were exposed to which moment.

    In: contacts from `handled_contacts`, feedback (response_id, customer_id, timestamp). A
    response is exposed to a moment when its customer had a contact of it in the `window_days`
    up to the response (0 <= response - contact <= window). Out, one row per exposed response
    and moment: response_id, moment, contacts (in the window), last_contact, and the handling
    of the latest of them: resolution, first_contact_resolution, wait_band, channel.
    """
    h = _tbl(handled, "contacts", [col_customer, col_timestamp, EVENT_ID, MOMENT, *HANDLING_DIMENSIONS])
    f = _tbl(feedback, "feedback", [col_response, col_customer, col_timestamp])
    h = h.select(_c=h[col_customer], _s=_seconds(h[col_timestamp]), _e=h[EVENT_ID], _m=h[MOMENT],
                 last_contact=h[col_timestamp], **{d: h[d] for d in HANDLING_DIMENSIONS})
    f = f.filter(f[col_customer].notnull()).select(_r=f[col_response], _fc=f[col_customer], _fs=_seconds(f[col_timestamp]))
    window = int(round(window_days * SECONDS_PER_DAY))
    j = f.join(h, [f._fc == h._c, h._s <= f._fs, h._s >= f._fs - window])
    # the latest contact per response and moment (latest second, then highest event id) by
    # aggregates and joins, which spill to disk; DuckDB's window operator does not
    counts = j.group_by(["_r", "_m"]).agg(contacts=_.count(), _ls=j._s.max())
    at = j.join(counts, ["_r", "_m", j._s == counts._ls])
    last = at.group_by(["_r", "_m"]).agg(_le=at._e.max())
    latest = at.join(last, ["_r", "_m", at._e == last._le])
    out = engine.to_pandas(latest.select("_r", "_m", "contacts", "last_contact", *HANDLING_DIMENSIONS))
    return (
        out.rename(columns={"_r": col_response, "_m": MOMENT})
        .loc[:, [col_response, MOMENT, "contacts", "last_contact", *HANDLING_DIMENSIONS]]
        .sort_values([col_response, MOMENT], kind="stable")
        .reset_index(drop=True)
    )


def kpi_outcome(scores: pd.Series, kpi: str = NPS) -> pd.Series:
    """Per-answer score whose mean is the KPI: NPS +100 promoter / 0 passive / -100 detractor;
    CSAT 100 for 4-5 (see `kpi_scores` for other scales), else 0; CES the score itself. NA stays NA."""
    values = pd.to_numeric(pd.Series(scores), errors="raise").astype("float64")
    if kpi == NPS:
        out = np.select([values >= metrics.PROMOTER_MIN, values <= metrics.DETRACTOR_MAX], [100.0, -100.0], 0.0)
    elif kpi == CSAT:
        out = np.where(values >= metrics.CSAT_TOP2_MIN, 100.0, 0.0)
    elif kpi == CES:
        out = values.to_numpy()
    else:
        raise MomentsError(f"unknown kpi {kpi!r}; expected one of {list(metrics.KPIS)}")
    return pd.Series(out, index=values.index, dtype="float64").where(values.notna())


def adjusted_difference(y: pd.Series, exposed: pd.Series, design: pd.DataFrame, *,
                        confidence: float = 0.95) -> dict:
    """OLS coefficient of `exposed` in y ~ exposed + design (design holds the intercept and
    covariates): {estimate, ci_low, ci_high, p_value}; NaN when a group is empty, the
    exposure is collinear with the covariates or the fit has no residual degrees of freedom."""
    import statsmodels.api as sm

    nan = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    x = design.assign(_exposed=exposed.astype(float).to_numpy())
    keep = x.notna().all(axis=1) & y.notna()
    x, yy = x.loc[keep], y.loc[keep]
    n_exp = int(x["_exposed"].sum())
    if n_exp == 0 or n_exp == len(x) or len(x) <= x.shape[1]:
        return nan
    if np.linalg.matrix_rank(x.to_numpy()) < x.shape[1]:
        return nan
    fit = sm.OLS(yy.to_numpy(), x.to_numpy()).fit()
    k = x.shape[1] - 1
    low, high = fit.conf_int(alpha=1 - confidence)[k]
    return {"estimate": float(fit.params[k]), "ci_low": float(low), "ci_high": float(high), "p_value": float(fit.pvalues[k])}


def _exposure_matrix(ids: pd.Series, exposures: pd.DataFrame, moments: Sequence[str],
                     col_response: str, col_moment: str) -> pd.DataFrame:
    """Boolean frame: one row per id (same index), one column per moment."""
    pairs = exposures.loc[exposures[col_moment].isin(list(moments)) & exposures[col_response].notna(),
                          [col_response, col_moment]]
    return pd.DataFrame({m: ids.isin(pairs.loc[pairs[col_moment].eq(m).to_numpy(), col_response]).to_numpy()
                         for m in moments}, index=ids.index, columns=list(moments)).astype(bool)


def kpi_impact(responses: pd.DataFrame, exposures: pd.DataFrame, *, moments: Sequence[str], kpi: str = NPS,
               covariates: Sequence[str] = (SEGMENT,), min_n: int = 100, confidence: float = 0.95,
               alpha: float = 0.05, comparable: pd.DataFrame | None = None, col_response: str = RESPONSE_ID,
               col_customer: str = CUSTOMER_ID, col_score: str | None = None, col_moment: str = MOMENT) -> pd.DataFrame:
    """Impact of each moment on a survey KPI: exposed minus unexposed responses, raw and adjusted.

    In: responses (response_id, customer_id, the KPI score, covariates; responses without a
    customer or a score are left out), exposures from `response_exposures`. Out, one row per
    moment in the given order: moment, kpi, n_exposed, n_unexposed, exposed_share, exposed_value,
    unexposed_value, difference, ci_low, ci_high, p_value (raw, `metrics.kpi_difference`),
    adjusted, adjusted_low, adjusted_high, adjusted_p (OLS, see `adjusted_difference`), small
    (n_exposed < min_n), q_value (Benjamini-Hochberg on adjusted_p over the moments that are not
    small), significant (q_value <= alpha) and like_with_like (True where `comparable` restricts
    the moment's comparison). CSAT answers count as top-box on their own scale (`csat_max`).

    `comparable` (from `comparable_responses`: response_id, moment, comparable) restricts a
    moment it names to its exposed answers and the comparable unexposed ones.

        kpi_impact(responses, exposures, moments=["invoice_unclear"], kpi="nps")
    """
    col = col_score or kpi
    covariates = list(covariates)
    _require(responses, [col_response, col_customer, col, *covariates], "responses")
    _require(exposures, [col_response, col_moment], "exposures")
    moments = [str(m) for m in moments]
    scored = responses.loc[lambda d: d[col].notna() & d[col_customer].notna()].reset_index(drop=True)
    flags = _exposure_matrix(scored[col_response], exposures, moments, col_response, col_moment)
    scores = kpi_scores(scored, kpi, col_score=col)
    y = kpi_outcome(scores, kpi)
    design = design_matrix(scored, covariates)
    ruled = _comparable_sets(comparable, col_response, col_moment)
    rows = []
    for m in moments:
        keep = (scored[col_response].isin(ruled[m]) | flags[m]).to_numpy() if m in ruled else np.ones(len(scored), bool)
        mask = flags[m].to_numpy() & keep
        raw = metrics.kpi_difference(scores[mask], scores[~mask & keep], kpi, confidence=confidence)
        adj = adjusted_difference(y[keep], flags[m][keep], design.loc[keep], confidence=confidence)
        rows.append({
            MOMENT: m, "kpi": kpi, "n_exposed": raw["n_a"], "n_unexposed": raw["n_b"],
            "exposed_value": metrics.kpi_estimate(scores[mask], kpi)["value"],
            "unexposed_value": metrics.kpi_estimate(scores[~mask & keep], kpi)["value"],
            "difference": raw["difference"], "ci_low": raw["ci_low"], "ci_high": raw["ci_high"], "p_value": raw["p_value"],
            "adjusted": adj["estimate"], "adjusted_low": adj["ci_low"], "adjusted_high": adj["ci_high"],
            "adjusted_p": adj["p_value"], "like_with_like": m in ruled,
        })
    columns = [MOMENT, "kpi", "n_exposed", "n_unexposed", "exposed_value", "unexposed_value", "difference", "ci_low",
               "ci_high", "p_value", "adjusted", "adjusted_low", "adjusted_high", "adjusted_p"]
    out = (pd.DataFrame(rows, columns=[*columns, "like_with_like"])
           .astype({MOMENT: "str", "kpi": "str", "n_exposed": "int64", "n_unexposed": "int64", "like_with_like": bool}))
    total = out["n_exposed"] + out["n_unexposed"]
    out = out.assign(exposed_share=(out["n_exposed"] / total.where(total > 0)).astype(float),
                     small=out["n_exposed"] < min_n)
    bh = _bh(out["adjusted_p"], out["small"], alpha)
    return (out.assign(q_value=bh["p_adjusted"], significant=bh["significant"].astype(bool))
            .loc[:, [*columns[:4], "exposed_share", *columns[4:], "small", "q_value", "significant", "like_with_like"]])


def handling_impact(responses: pd.DataFrame, exposures: pd.DataFrame, *, moments: Sequence[str] | None = None,
                    kpi: str = NPS, dimensions: Sequence[str] = HANDLING_DIMENSIONS, min_n: int = 30,
                    confidence: float = 0.95, col_response: str = RESPONSE_ID, col_customer: str = CUSTOMER_ID,
                    col_score: str | None = None, col_moment: str = MOMENT) -> pd.DataFrame:
    """A survey KPI within each moment by how it was handled (level of the latest contact in the
    window): resolved or not, first-contact resolution, wait band, channel.

    Out: moment, dimension, level, n, value, ci_low, ci_high, small (n < min_n), and against the
    responses not exposed to the moment: difference, diff_low, diff_high, p_value.
    """
    col = col_score or kpi
    _require(responses, [col_response, col_customer, col], "responses")
    _require(exposures, [col_response, col_moment, *dimensions], "exposures")
    scored = responses.loc[lambda d: d[col].notna() & d[col_customer].notna()]
    scored = scored.assign(**{col: kpi_scores(scored, kpi, col_score=col)}).loc[:, [col_response, col]]
    moments = [str(m) for m in (moments if moments is not None else exposures[col_moment].drop_duplicates())]
    long = (exposures.loc[exposures[col_moment].isin(moments)]
            .melt(id_vars=[col_response, col_moment], value_vars=list(dimensions), var_name=DIMENSION, value_name=LEVEL)
            .assign(**{LEVEL: lambda d: d[LEVEL].astype("str").where(d[LEVEL].notna(), UNKNOWN)})
            .merge(scored, on=col_response, how="inner"))
    columns = [MOMENT, DIMENSION, LEVEL, "n", "value", "ci_low", "ci_high", "small", "difference", "diff_low",
               "diff_high", "p_value"]
    if long.empty:
        return pd.DataFrame({c: pd.Series(dtype="str" if c in (MOMENT, DIMENSION, LEVEL) else "bool" if c == "small"
                                          else "int64" if c == "n" else "float64") for c in columns})
    est = metrics.kpi_by(long.rename(columns={col_moment: MOMENT}), [MOMENT, DIMENSION, LEVEL], kpi=kpi, min_n=min_n,
                         confidence=confidence, col_score=col)
    exposed_ids = exposures.groupby(col_moment)[col_response].agg(frozenset)
    unexposed = {m: scored.loc[~scored[col_response].isin(exposed_ids.get(m, frozenset())), col] for m in moments}
    groups = long.groupby([col_moment, DIMENSION, LEVEL], sort=False)[col]
    diffs = pd.DataFrame(
        [{MOMENT: m, DIMENSION: d, LEVEL: lv,
          **{k: v for k, v in metrics.kpi_difference(vals, unexposed[m], kpi, confidence=confidence).items()
             if k in ("difference", "ci_low", "ci_high", "p_value")}}
         for (m, d, lv), vals in groups],
    ).rename(columns={"ci_low": "diff_low", "ci_high": "diff_high"})
    order = {m: i for i, m in enumerate(moments)}
    dim_order = {d: i for i, d in enumerate(dimensions)}
    return (
        est.loc[:, [MOMENT, DIMENSION, LEVEL, "n", "value", "ci_low", "ci_high", "small"]]
        .merge(diffs, on=[MOMENT, DIMENSION, LEVEL], how="left")
        .assign(_m=lambda d: d[MOMENT].map(order), _d=lambda d: d[DIMENSION].map(dim_order),
                _l=lambda d: _level_order(d[DIMENSION], d[LEVEL]))
        .sort_values(["_m", "_d", "_l", LEVEL], kind="stable")
        .loc[:, columns]
        .astype({MOMENT: "str", DIMENSION: "str", LEVEL: "str"})
        .reset_index(drop=True)
    )


def survey_responses(feedback, customers, *, covariates: Sequence[str] = (SEGMENT,), col_customer: str = CUSTOMER_ID,
                     col_response: str = RESPONSE_ID) -> pd.DataFrame:
    """The survey responses with the customer attributes `covariates` (e.g. segment), joined on
    the engine (left join: responses without a known customer keep NA), sorted by response_id.

    In: feedback and customers (Ibis tables or DataFrames). Out: the feedback columns plus the
    covariates not already in it; one row per response (the level the KPI models need).
    """
    covariates = list(covariates)
    f = _tbl(conform(feedback, "feedback"), "feedback", [col_response, col_customer])
    c = _tbl(customers, "customers", [col_customer, *covariates])
    wanted = [col for col in covariates if col not in f.columns]
    joined = f.left_join(c.select(col_customer, *wanted), col_customer).select(*f.columns, *wanted)
    return engine.to_pandas(joined.order_by(col_response)).reset_index(drop=True)


def handling_table(handling: pd.DataFrame, dimension: str, *, labels: Mapping | None = None, decimals: int = 0) -> pd.DataFrame:
    """One handling dimension of `handling_impact` as a compact table: one row per moment (its
    label), one column per level in the usual order, each cell 'value (n = …)', small groups
    marked '*'; '' where the moment has no answers at that level.

    Out: moment (label), then the levels.
    """
    _require(handling, [MOMENT, DIMENSION, LEVEL, "n", "value", "small"], "handling impact")
    rows = handling.loc[handling[DIMENSION] == dimension]
    order = list(dict.fromkeys(rows[MOMENT]))
    levels = (rows.assign(_l=_level_order(rows[DIMENSION], rows[LEVEL])).sort_values(["_l", LEVEL], kind="stable")[LEVEL]
              .drop_duplicates().tolist())
    spec = f"+.{int(decimals)}f"
    cell = [("–" if pd.isna(v) else format(v, spec).replace("-", "\u2212")) + f" (n = {int(n):,})" + ("*" if s else "")
            for v, n, s in zip(rows["value"], rows["n"], rows["small"])]
    wide = (rows.assign(_cell=pd.Series(cell, index=rows.index, dtype="str"))
            .pivot(index=MOMENT, columns=LEVEL, values="_cell").reindex(index=order, columns=levels).fillna(""))
    names = [str(labels.get(m, m)) if labels is not None else str(m) for m in wide.index]   # dict or Series
    return (wide.reset_index(drop=True).rename_axis(columns=None)
            .astype("str").assign(**{MOMENT: pd.Series(names, dtype="str")}).loc[:, [MOMENT, *levels]])




# --- words and tables for the report ------------------------------------------------------------

def _disagreement(raw: float, adjusted: float) -> str:
    """'' when raw and adjusted agree; else 'opposite' (signs) or 'third' (by more than a third)."""
    if pd.isna(raw) or pd.isna(adjusted):
        return ""
    if raw * adjusted < 0:
        return "opposite"
    return "third" if abs(adjusted - raw) > abs(raw) / 3 else ""


def describe_impact(impact: pd.DataFrame, labels: Mapping, *, window_days: float, covariates: Sequence[str],
                    min_n: int, lang: str = "en") -> str:
    """Sentences on a KPI's `kpi_impact`: the moment that costs most with its raw and adjusted
    estimate; whether raw and adjusted estimates of the findings (moments whose raw or adjusted
    difference is significant) agree (same sign, within a third of the raw one) or, naming the
    moments, where they differ in sign or by more than a third; how many
    moments differ significantly; which moments are compared like with like."""
    kpi = str(impact["kpi"].iloc[0]) if len(impact) else NPS
    name, unit, d = metrics.LABELS.get(kpi, kpi.upper()), say(f"words.unit.{kpi}", lang), _DECIMALS.get(kpi, 1)
    tested = impact.loc[~impact["small"].astype(bool) & impact["adjusted"].notna()]
    if tested.empty:
        return say("impact.too_few", lang, min_n=num(min_n, lang, decimals=0), name=name)
    worst = tested.sort_values("adjusted", kind="stable").iloc[0]

    def level(value) -> str:
        return (num(value, lang, decimals=2) if kpi == CES else pct(value, lang, decimals=0) if kpi == CSAT
                else num(value, lang, decimals=0, sign=True))

    def diff(value) -> str:
        return num(value, lang, decimals=d, sign=True)

    text = say("impact.lead", lang, label=labels.get(worst[MOMENT], worst[MOMENT]), days=f"{window_days:g}",
               article=say(f"words.kpi_article.{kpi}", lang), exposed=level(worst["exposed_value"]),
               unexposed=level(worst["unexposed_value"]),
               others=say("words.others_comparable" if worst["like_with_like"] else "words.others_all", lang),
               raw=diff(worst["difference"]), unit=unit, raw_low=diff(worst["ci_low"]), raw_high=diff(worst["ci_high"]),
               adjusted=diff(worst["adjusted"]), adjusted_low=diff(worst["adjusted_low"]),
               adjusted_high=diff(worst["adjusted_high"]))
    covariates = list(covariates)
    if not covariates:
        text += say("impact.no_covariates", lang)
    else:
        findings = tested.loc[tested["significant"] | (tested["ci_low"] > 0) | (tested["ci_high"] < 0)]
        differ = [say("impact.differ_item", lang, label=labels.get(r[MOMENT], r[MOMENT]), raw=diff(r["difference"]),
                      adjusted=diff(r["adjusted"]), why=say(f"words.{why}", lang))
                  for _i, r in findings.iterrows() if (why := _disagreement(r["difference"], r["adjusted"]))]
        mix = ", ".join(locale.label(c, lang) for c in covariates)
        text += (say("impact.differ", lang, items=join_words(differ, lang), mix=mix) if differ
                 else say("impact.agree", lang, mix=mix))
    text += say("impact.significant", lang, significant=int(tested["significant"].sum()), tested=len(tested),
                min_n=num(min_n, lang, decimals=0))
    ruled = impact.loc[impact["like_with_like"].astype(bool), MOMENT]
    if len(ruled):
        text += say("impact.like_with_like", lang, moments=join_words([f"**{labels.get(m, m)}**" for m in ruled], lang))
    return text


def impact_table(impact: pd.DataFrame, labels: Mapping, *, lang: str = "en") -> pd.DataFrame:
    """A KPI's `kpi_impact` for readers (`locale.display_table`): moment, exposed answers, KPI
    exposed / compared, raw and adjusted difference with 95% intervals, q (BH), significant, too few."""
    kpi = str(impact["kpi"].iloc[0]) if len(impact) else NPS
    d = _DECIMALS.get(kpi, 1)
    table = pd.DataFrame({
        "moment": impact[MOMENT].map(lambda m: labels.get(m, m)), "n_exposed": impact["n_exposed"],
        "exposed_value": impact["exposed_value"], "unexposed_value": impact["unexposed_value"],
        "raw_interval": interval_text(impact["difference"], impact["ci_low"], impact["ci_high"], decimals=d).to_numpy(),
        "adjusted_interval": interval_text(impact["adjusted"], impact["adjusted_low"], impact["adjusted_high"],
                                           decimals=d).to_numpy(),
        "q_value": impact["q_value"], "significant": impact["significant"], "small": impact["small"]})
    return locale.display_table(table, lang, kpi=kpi)


def kpis_table(impacts: Mapping[str, pd.DataFrame], labels: Mapping, *, skip: str | None = None,
               lang: str = "en") -> pd.DataFrame:
    """The adjusted impact on every KPI but `skip`, one column per KPI ('*' significant) and its
    answers. `schema.Missing` when the data has no other KPI."""
    shown = {k: t for k, t in impacts.items() if k != skip}
    if not shown:
        raise Missing("no second KPI to compare the moments on" if impacts else "no KPI impact",
                      enable="feedback.csat or feedback.ces beside the main KPI")
    moments = next(iter(shown.values()))[MOMENT]
    out, names = {"moment": moments.map(lambda m: labels.get(m, m)).to_numpy()}, {}
    for kpi, t in shown.items():
        name = metrics.LABELS.get(kpi, kpi.upper())
        cell = interval_text(t["adjusted"], t["adjusted_low"], t["adjusted_high"], decimals=_DECIMALS.get(kpi, 1))
        out[f"{kpi}_adjusted"] = (cell + np.where(t["significant"], " *", "")).to_numpy()
        out[f"{kpi}_n"] = t["n_exposed"].to_numpy()
        names |= {f"{kpi}_adjusted": f"{name}: {locale.label('adjusted_interval', lang)}",
                  f"{kpi}_n": f"{name}: {locale.label('n_exposed', lang)}"}
    return locale.display_table(pd.DataFrame(out), lang, labels=names, kinds=dict.fromkeys(names, "text"))


def describe_kpis(impacts: Mapping[str, pd.DataFrame], labels: Mapping, *, skip: str | None = None,
                  lang: str = "en") -> str:
    """One sentence per KPI but `skip`: where it suffers most significantly, or that no moment
    moves it significantly; '' without another KPI."""
    parts = []
    for kpi, t in impacts.items():
        if kpi == skip:
            continue
        name, d = metrics.LABELS.get(kpi, kpi.upper()), _DECIMALS.get(kpi, 1)
        worst = t.loc[t["significant"] & (t["adjusted"] < 0)].sort_values("adjusted", kind="stable")
        if worst.empty:
            parts.append(say("kpis.none", lang, name=name))
            continue
        r = worst.iloc[0]
        parts.append(say("kpis.worst", lang, name=name, label=labels.get(r[MOMENT], r[MOMENT]),
                         adjusted=num(r["adjusted"], lang, decimals=d, sign=True), unit=say(f"words.unit.{kpi}", lang),
                         low=num(r["adjusted_low"], lang, decimals=d, sign=True),
                         high=num(r["adjusted_high"], lang, decimals=d, sign=True)))
    return " ".join([say("kpis.definitions", lang), *parts]) if parts else ""


def handling_overview(handling: pd.DataFrame, labels: Mapping, *, lang: str = "en") -> pd.DataFrame:
    """All handling dimensions of `handling_impact` in one table for readers: one row per
    dimension and level (resolution, first-contact resolution, wait, channel), one column per
    moment, each cell 'value (n = …)', '*' on a group too small to judge; '' where the moment
    has no answers at that level."""
    _require(handling, [MOMENT, DIMENSION, LEVEL, "n", "value", "small"], "handling impact")
    rows = (handling.assign(_d=handling[DIMENSION].map({d: i for i, d in enumerate(HANDLING_DIMENSIONS)}),
                            _l=_level_order(handling[DIMENSION], handling[LEVEL]))
            .sort_values(["_d", "_l", LEVEL], kind="stable"))
    rows = rows.assign(
        _cell=[f"{locale.format_number(v, lang, decimals=0, sign=True)} "
               f"({locale.text('figure.caption_n', lang, n=locale.format_number(n, lang))}){'*' if s else ''}"
               for v, n, s in zip(rows["value"], rows["n"], rows["small"])],
        _dim=[locale.value_label("dimension", d, lang) for d in rows[DIMENSION]],
        _level=[locale.value_label("level", lv, lang) for lv in rows[LEVEL]])
    order = pd.MultiIndex.from_frame(rows[["_dim", "_level"]].drop_duplicates())
    wide = (rows.pivot(index=["_dim", "_level"], columns=MOMENT, values="_cell")
            .reindex(index=order, columns=list(dict.fromkeys(rows[MOMENT]))).fillna(""))
    wide.columns = [str(labels.get(m, m)) for m in wide.columns]
    return wide.rename_axis(index=[locale.label("dimension", lang), locale.label("level", lang)])
