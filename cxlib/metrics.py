"""Feedback KPIs with honest statistics: NPS, CSAT, CES, their intervals, differences and cuts.

Units: NPS in points on -100...+100, CSAT in percent (share of answers in the top two points of
their scale: 4-5 on 1-5, 9-10 on 0-10; `csat_max` names each answer's top, missing = 5), CES as a
mean on 1-7.
Every estimate comes with its sample size `n` and a confidence interval; groups with fewer than
`min_n` responses are flagged `small` and are never ranked or called significant. Many
comparisons are corrected with Benjamini-Hochberg.

    metrics.nps_estimate(feedback["nps"])              -> {"value": 12.3, "ci_low": 9.1, ...}
    metrics.kpi_by(feedback, ["segment"], kpi="nps")   -> one row per segment

The grouped functions work on *additive* sufficient statistics per group (NPS: promoters,
passives, detractors; CSAT: top-2-box count; CES: sum and sum of squares), so "this group
against the rest of the sample" is the total minus the group, without another pass over rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from .schema import CES, CHANNEL, CSAT, CSAT_MAX, CUSTOMER_ID, NPS, SCORE_RANGES, TIMESTAMP, TOUCHPOINT, csat_scale

PROMOTER_MIN = 9        # NPS 9-10 = promoter
DETRACTOR_MAX = 6       # NPS 0-6 = detractor
CSAT_TOP2_MIN = 4       # CSAT 4-5 on 1-5 = satisfied
KPIS = (NPS, CSAT, CES)
PERIOD = "period"
PERIODS = {"month": "M", "quarter": "Q", "week": "W", "year": "Y"}

DEFINITIONS = {
    NPS: "NPS = % promoters (9-10) - % detractors (0-6) on 0-10, from -100 to +100; "
         "95% interval by adjusted Wald (+3/4 promoter, +3/4 detractor, +3/2 passive)",
    CSAT: "CSAT = % of answers in the top two points of their scale (4-5 on 1-5, 9-10 on 0-10; top-2-box); "
          "95% Wilson interval",
    CES: "CES = mean effort score on 1-7 (higher = easier); 95% t interval",
}
LABELS = {NPS: "NPS", CSAT: "CSAT", CES: "CES"}
UNITS = {NPS: "points", CSAT: "%", CES: "on 1-7"}
AXES = {NPS: "NPS (points, -100 to +100)", CSAT: "CSAT (% in the top two points)", CES: "CES (mean on 1-7, higher = easier)"}

# columns of the sufficient statistics per KPI (all additive over groups)
STAT_COLUMNS = {
    NPS: ["n", "promoters", "passives", "detractors"],
    CSAT: ["n", "top2"],
    CES: ["n", "total", "total_sq"],
}
RESULT_COLUMNS = ["n", "value", "ci_low", "ci_high", "small"]


class MetricsError(ValueError):
    """Input to a KPI function is unusable: a missing column, scores out of range, a bad parameter."""


# --- checks ----------------------------------------------------------------------------
def _require(df: pd.DataFrame, columns: Sequence[str], what: str = "feedback") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MetricsError(f"{what}: missing column(s) {missing}; present: {list(df.columns)}")


def _scores(scores: pd.Series, kpi: str) -> pd.Series:
    """Scores as float with NA dropped; raises when a value is outside the KPI's scale."""
    if kpi not in KPIS:
        raise MetricsError(f"unknown kpi {kpi!r}; expected one of {list(KPIS)}")
    values = pd.to_numeric(pd.Series(scores), errors="raise").astype("float64").dropna()
    low, high = SCORE_RANGES[kpi]
    bad = values[(values < low) | (values > high) | (values != values.round())]
    if len(bad):
        first = ", ".join(f"row {i}: {v:g}" for i, v in bad.head(5).items())
        raise MetricsError(f"{scores.name or kpi}: {len(bad)} score(s) not whole numbers in {low}-{high}; first: {first}")
    return values


def z_value(confidence: float) -> float:
    """The two-sided standard-normal quantile of a confidence level: z_value(0.95) -> 1.96."""
    if not 0 < confidence < 1:
        raise MetricsError(f"confidence must be between 0 and 1, got {confidence}")
    return float(st.norm.ppf(0.5 + confidence / 2))


# --- NPS -------------------------------------------------------------------------------
def nps_category(scores: pd.Series) -> pd.Series:
    """'promoter' (9-10), 'passive' (7-8) or 'detractor' (0-6) per score; NA stays NA.

        nps_category(pd.Series([10, 7, 3])) -> ['promoter', 'passive', 'detractor']
    """
    values = pd.to_numeric(pd.Series(scores), errors="raise").astype("float64")
    _scores(values.rename(scores.name), NPS)
    out = np.select([values >= PROMOTER_MIN, values > DETRACTOR_MAX, values >= 0],
                    ["promoter", "passive", "detractor"], default="")
    return pd.Series(out, index=values.index, name="nps_category", dtype="str").where(values.notna())


def nps(scores: pd.Series) -> float:
    """NPS = 100 * (promoters - detractors) / answered; NaN when nobody answered.

        nps(pd.Series([10] * 30 + [7] * 25 + [0] * 45)) -> -15.0
    """
    counts = _nps_counts(_scores(scores, NPS))
    return float(_nps_value(*counts)) if counts[0] else math.nan


def _nps_counts(values: pd.Series) -> tuple[int, int, int, int]:
    promoters = int((values >= PROMOTER_MIN).sum())
    detractors = int((values <= DETRACTOR_MAX).sum())
    return len(values), promoters, len(values) - promoters - detractors, detractors


def _nps_value(n, promoters, passives, detractors):
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * (np.asarray(promoters, float) - np.asarray(detractors, float)) / np.asarray(n, float)


def _nps_adjusted(promoters, passives, detractors):
    """Adjusted-Wald estimate and variance (as shares, not points): arrays (nps', var', n')."""
    p, pa, d = (np.asarray(x, dtype=float) for x in (promoters, passives, detractors))
    n_adj = p + pa + d + 3.0
    p_adj, d_adj = (p + 0.75) / n_adj, (d + 0.75) / n_adj
    est = p_adj - d_adj
    return est, (p_adj + d_adj - est**2) / n_adj, n_adj


def nps_interval(promoters, passives, detractors, *, confidence: float = 0.95):
    """Adjusted-Wald interval of NPS in points (Rocks 2016; as MeasuringU recommends).

    Add 3/4 of a response to promoters and to detractors and 3/2 to passives (3 in all):
        n' = n + 3,  p' = (P + 3/4) / n',  d' = (D + 3/4) / n',  NPS' = p' - d'
        Var' = (p' + d' - (p' - d')^2) / n'
        interval = 100 * (NPS' -/+ z * sqrt(Var')), clipped to [-100, 100]
    Works on scalars or arrays of counts; returns (ci_low, ci_high) as float arrays (NaN for n = 0).

        nps_interval(30, 25, 45) -> (-30.97..., 1.84...)
    """
    z = z_value(confidence)
    est, var, n_adj = _nps_adjusted(promoters, passives, detractors)
    half = z * np.sqrt(var)
    empty = n_adj <= 3
    low = np.where(empty, np.nan, np.clip(100 * (est - half), -100, 100))
    high = np.where(empty, np.nan, np.clip(100 * (est + half), -100, 100))
    return low, high


def nps_estimate(scores: pd.Series, *, confidence: float = 0.95) -> dict:
    """NPS of a column of 0-10 scores: {value, ci_low, ci_high, n, promoters, passives, detractors}
    (value and interval in points; n = answered; the three shares in percent).

        nps_estimate(feedback["nps"]) -> {"value": -15.0, "ci_low": -31.0, "ci_high": 1.8, "n": 100, ...}
    """
    n, p, pa, d = _nps_counts(_scores(scores, NPS))
    low, high = nps_interval(p, pa, d, confidence=confidence)
    share = (lambda k: 100.0 * k / n) if n else (lambda k: math.nan)
    return {"value": float(_nps_value(n, p, pa, d)) if n else math.nan,
            "ci_low": float(low), "ci_high": float(high), "n": n,
            "promoters": share(p), "passives": share(pa), "detractors": share(d)}


def nps_difference(a: pd.Series, b: pd.Series, *, confidence: float = 0.95) -> dict:
    """NPS(a) - NPS(b) in points with a z-test on the adjusted-Wald estimates:
        z = (NPS'_a - NPS'_b) / sqrt(Var'_a + Var'_b)   (see `nps_interval`)
    Returns {difference, ci_low, ci_high, z, p_value, n_a, n_b}; the difference is of the plain
    NPS values, the interval and test use the adjusted ones.
    """
    ca, cb = _nps_counts(_scores(a, NPS)), _nps_counts(_scores(b, NPS))
    out = _difference(pd.DataFrame([dict(zip(STAT_COLUMNS[NPS], ca))]),
                      pd.DataFrame([dict(zip(STAT_COLUMNS[NPS], cb))]), NPS, confidence).iloc[0]
    return {"difference": float(out["difference"]), "ci_low": float(out["diff_low"]),
            "ci_high": float(out["diff_high"]), "z": float(out["z"]), "p_value": float(out["p_value"]),
            "n_a": ca[0], "n_b": cb[0]}


# --- CSAT and CES ----------------------------------------------------------------------
def wilson_interval(successes, n, *, confidence: float = 0.95):
    """Wilson score interval of a proportion, as shares in [0, 1] (arrays or scalars; NaN for n = 0):
        centre = (p + z^2/2n) / (1 + z^2/n),  half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)

        wilson_interval(8, 10) -> (0.4902..., 0.9433...)
    """
    z = z_value(confidence)
    k, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def csat_top2(scores: pd.Series, scale_max=None) -> pd.Series:
    """Per answer: True when it lies in the top two points of its scale (csat >= csat_max - 1),
    False below, NA when unanswered. `scale_max` is the top of each answer's scale: a Series aligned
    with `scores` (e.g. feedback["csat_max"]), a number, or None; missing means 5 (a 1-5 scale).
    Raises when a score is not a whole number in 1-5 (scale missing) or 0-csat_max.

        csat_top2(pd.Series([5, 4, 3]))                       -> [True, True, False]
        csat_top2(pd.Series([9.0, 8.0]), pd.Series([10, 10])) -> [True, False]
    """
    values = pd.to_numeric(pd.Series(scores), errors="raise").astype("float64")
    given = _scale_tops(scale_max, values.index)
    bad_scale = given.notna() & ((given < 2) | (given != given.round()))
    if bad_scale.any():
        first = ", ".join(f"row {i}: {v:g}" for i, v in given[bad_scale].head(5).items())
        raise MetricsError(f"csat_max: {int(bad_scale.sum())} scale top(s) not whole numbers of at least 2; first: {first}")
    low, top = csat_scale(pd.DataFrame({CSAT_MAX: given}))
    bad = values.notna() & ((values < low) | (values > top) | (values != values.round()))
    if bad.any():
        first = ", ".join(f"row {i}: {v:g}" for i, v in values[bad].head(5).items())
        raise MetricsError(f"{scores.name or CSAT}: {int(bad.sum())} score(s) not whole numbers on their scale "
                           f"(1-5, or 0-csat_max); first: {first}")
    return (values >= top - 1).astype("boolean").where(values.notna()).rename(scores.name)


def _scale_tops(scale_max, index: pd.Index) -> pd.Series:
    """The top of each answer's CSAT scale as float on `index` (NaN = missing, read as 5)."""
    if scale_max is None or np.isscalar(scale_max):
        return pd.Series(np.nan if scale_max is None else float(scale_max), index=index, dtype="float64")
    return pd.Series(pd.to_numeric(pd.Series(scale_max), errors="raise").to_numpy(dtype="float64"), index=index)


def csat_estimate(scores: pd.Series, *, scale_max=None, confidence: float = 0.95) -> dict:
    """CSAT top-2-box: percent of answers in the top two points of their scale (4-5 on 1-5;
    `scale_max` as in `csat_top2`) with a Wilson interval: {value, ci_low, ci_high, n}.

        csat_estimate(pd.Series([5, 4, 4, 2, 1])) -> {"value": 60.0, "ci_low": 23.1, "ci_high": 88.2, "n": 5}
    """
    top2 = csat_top2(scores, scale_max).dropna()
    row = _estimate(pd.DataFrame({"n": [len(top2)], "top2": [int(top2.sum())]}), CSAT, confidence).iloc[0]
    return {k: (int(row[k]) if k == "n" else float(row[k])) for k in ("value", "ci_low", "ci_high", "n")}


def ces_estimate(scores: pd.Series, *, confidence: float = 0.95) -> dict:
    """CES mean on 1-7 with a t interval (mean -/+ t_{n-1} * s / sqrt(n)): {value, ci_low, ci_high, n}.
    One answer gives NaN bounds.
    """
    values = _scores(scores, CES)
    row = _estimate(pd.DataFrame({"n": [len(values)], "total": [values.sum()],
                                  "total_sq": [(values**2).sum()]}), CES, confidence).iloc[0]
    return {k: (int(row[k]) if k == "n" else float(row[k])) for k in ("value", "ci_low", "ci_high", "n")}


def kpi_estimate(scores: pd.Series, kpi: str = NPS, *, scale_max=None, confidence: float = 0.95) -> dict:
    """{value, ci_low, ci_high, n} of `kpi` ('nps', 'csat' or 'ces') for a column of scores
    (`scale_max`: CSAT only, the top of each answer's scale, see `csat_top2`)."""
    funcs = {NPS: nps_estimate, CSAT: csat_estimate, CES: ces_estimate}
    if kpi not in funcs:
        raise MetricsError(f"unknown kpi {kpi!r}; expected one of {list(KPIS)}")
    extra = {"scale_max": scale_max} if kpi == CSAT else {}
    out = funcs[kpi](scores, confidence=confidence, **extra)
    return {k: out[k] for k in ("value", "ci_low", "ci_high", "n")}


# --- sufficient statistics, estimates and differences on them ----------------------------
def kpi_stats(df: pd.DataFrame, by: Sequence[str] = (), *, kpi: str = NPS, col_score: str | None = None,
              col_scale: str = CSAT_MAX) -> pd.DataFrame:
    """Additive statistics of `kpi` per group of `by`: columns *by + STAT_COLUMNS[kpi]
    (nps: n, promoters, passives, detractors; csat: n, top2; ces: n, total, total_sq).
    Rows without a score are left out; groups with no scored row do not appear. CSAT counts the
    top two points of each answer's scale, `col_scale` (csat_max; an absent column means 1-5).
    """
    col = col_score or kpi
    by = list(by)
    _require(df, [col, *by])
    if kpi == CSAT:
        top2 = csat_top2(df[col], df[col_scale] if col_scale in df.columns else None).dropna()
        values = pd.to_numeric(df.loc[top2.index, col]).astype("float64")
    else:
        values = _scores(df[col], kpi)
    scored = df.loc[values.index, by].assign(_v=values)
    if kpi == NPS:
        scored = scored.assign(promoters=lambda d: (d["_v"] >= PROMOTER_MIN).astype("int64"),
                               detractors=lambda d: (d["_v"] <= DETRACTOR_MAX).astype("int64"),
                               passives=lambda d: 1 - d["promoters"] - d["detractors"])
    elif kpi == CSAT:
        scored = scored.assign(top2=top2.astype("int64").to_numpy())
    else:
        scored = scored.assign(total=lambda d: d["_v"], total_sq=lambda d: d["_v"] ** 2)
    scored = scored.assign(n=1)
    cols = STAT_COLUMNS[kpi]
    if not by:
        return scored[cols].sum().to_frame().T.astype({"n": "int64"})
    return (scored.groupby(by, observed=True, sort=True, dropna=False)[cols].sum()
            .reset_index().astype({"n": "int64"}))


def _estimate(stats: pd.DataFrame, kpi: str, confidence: float) -> pd.DataFrame:
    """value, ci_low, ci_high per row of sufficient statistics (vectorised)."""
    n = stats["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kpi == NPS:
            counts = stats[["promoters", "passives", "detractors"]].to_numpy(dtype=float).T
            value = np.where(n > 0, _nps_value(n, *counts), np.nan)
            low, high = nps_interval(*counts, confidence=confidence)
        elif kpi == CSAT:
            k = stats["top2"].to_numpy(dtype=float)
            value = np.where(n > 0, 100 * k / n, np.nan)
            low, high = (100 * b for b in wilson_interval(k, n, confidence=confidence))
        else:
            value = np.where(n > 0, stats["total"].to_numpy(float) / n, np.nan)
            sd = np.sqrt(_ces_var(stats))
            t = st.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
            half = np.where(n > 1, t * sd / np.sqrt(n), np.nan)
            low, high = value - half, value + half
    return pd.DataFrame({"value": value, "ci_low": low, "ci_high": high, "n": stats["n"].to_numpy()},
                        index=stats.index)


def _ces_var(stats: pd.DataFrame) -> np.ndarray:
    n = stats["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (stats["total_sq"].to_numpy(float) - stats["total"].to_numpy(float) ** 2 / n) / (n - 1)
    return np.where(n > 1, np.maximum(var, 0.0), np.nan)


def _difference(a: pd.DataFrame, b: pd.DataFrame, kpi: str, confidence: float) -> pd.DataFrame:
    """a - b per aligned row of sufficient statistics: difference, diff_low, diff_high, z, p_value.

    nps: z on the adjusted-Wald estimates; csat: two-proportion z-test with pooled variance
    (interval unpooled); ces: Welch t-test (Welch-Satterthwaite degrees of freedom).
    """
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    za = z_value(confidence)
    na, nb = a["n"].to_numpy(float), b["n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kpi == NPS:
            ea, va, _ = _nps_adjusted(a["promoters"], a["passives"], a["detractors"])
            eb, vb, _ = _nps_adjusted(b["promoters"], b["passives"], b["detractors"])
            diff = _nps_value(na, a["promoters"], a["passives"], a["detractors"]) - \
                _nps_value(nb, b["promoters"], b["passives"], b["detractors"])
            se = 100 * np.sqrt(va + vb)
            stat = 100 * (ea - eb) / se
            centre = 100 * (ea - eb)
            p = 2 * st.norm.sf(np.abs(stat))
            crit = za
        elif kpi == CSAT:
            pa, pb = a["top2"].to_numpy(float) / na, b["top2"].to_numpy(float) / nb
            pooled = (a["top2"].to_numpy(float) + b["top2"].to_numpy(float)) / (na + nb)
            se0 = np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
            diff = 100 * (pa - pb)
            stat = (pa - pb) / se0
            stat = np.where(se0 > 0, stat, np.where(pa == pb, 0.0, np.nan))
            se = 100 * np.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
            centre = diff
            p = 2 * st.norm.sf(np.abs(stat))
            crit = za
        else:
            ma, mb = a["total"].to_numpy(float) / na, b["total"].to_numpy(float) / nb
            sa, sb = _ces_var(a) / na, _ces_var(b) / nb
            diff = ma - mb
            se = np.sqrt(sa + sb)
            stat = diff / se
            dof = (sa + sb) ** 2 / (sa**2 / (na - 1) + sb**2 / (nb - 1))
            p = 2 * st.t.sf(np.abs(stat), dof)
            centre = diff
            crit = st.t.ppf(0.5 + confidence / 2, dof)
        valid = (na > 0) & (nb > 0)
        return pd.DataFrame({
            "difference": np.where(valid, diff, np.nan),
            "diff_low": np.where(valid, centre - crit * se, np.nan),
            "diff_high": np.where(valid, centre + crit * se, np.nan),
            "z": np.where(valid, stat, np.nan),
            "p_value": np.where(valid, p, np.nan),
        })


def kpi_difference(a: pd.Series, b: pd.Series, kpi: str = NPS, *, scale_a=None, scale_b=None,
                   confidence: float = 0.95) -> dict:
    """kpi(a) - kpi(b) with interval and test (see `_difference` for the test per KPI):
    {difference, ci_low, ci_high, z, p_value, n_a, n_b}. `scale_a`, `scale_b`: CSAT only, the top
    of each answer's scale (see `csat_top2`; None = 1-5)."""
    sa, sb = (kpi_stats(pd.DataFrame({kpi: pd.Series(s).to_numpy(), CSAT_MAX: _scale_tops(top, pd.RangeIndex(len(s)))}),
                        kpi=kpi) for s, top in ((a, scale_a), (b, scale_b)))
    row = _difference(sa, sb, kpi, confidence).iloc[0]
    return {"difference": float(row["difference"]), "ci_low": float(row["diff_low"]),
            "ci_high": float(row["diff_high"]), "z": float(row["z"]), "p_value": float(row["p_value"]),
            "n_a": int(sa["n"].iloc[0]), "n_b": int(sb["n"].iloc[0])}


def proportion_difference(k1, n1, k2, n2, *, confidence: float = 0.95) -> pd.DataFrame:
    """Difference of two proportions in percentage points, 100 * (k1/n1 - k2/n2), per element of
    the (array) inputs: columns difference, ci_low, ci_high (Newcombe's hybrid score interval from
    the two Wilson intervals), z and p_value (two-proportion z-test, pooled variance). NaN where
    a group is empty.

        proportion_difference(30, 100, 15, 100) -> difference 15.0, ci 3.41 to 26.15, p 0.011
    """
    k1, n1, k2, n2 = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (k1, n1, k2, n2))
    l1, u1 = wilson_interval(k1, n1, confidence=confidence)
    l2, u2 = wilson_interval(k2, n2, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
        diff = p1 - p2
        pooled = (k1 + k2) / (n1 + n2)
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.where(se0 > 0, diff / se0, np.where(diff == 0, 0.0, np.nan))
    valid = (n1 > 0) & (n2 > 0)
    return pd.DataFrame({
        "difference": np.where(valid, 100 * diff, np.nan),
        "ci_low": np.where(valid, 100 * (diff - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)), np.nan),
        "ci_high": np.where(valid, 100 * (diff + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)), np.nan),
        "z": np.where(valid, z, np.nan),
        "p_value": np.where(valid, 2 * st.norm.sf(np.abs(z)), np.nan),
    })


# --- Poisson rates (events per exposure, e.g. complaints per 1,000 customer-months) -------
def poisson_rate(count: float, exposure: float, *, per: float = 1000.0, confidence: float = 0.95) -> dict:
    """Rate = per * count / exposure with the exact (Garwood) interval:
    [chi2(a/2; 2k) / 2, chi2(1 - a/2; 2k + 2) / 2] * per / exposure. {value, ci_low, ci_high}; NaN without exposure.

        poisson_rate(42, 10945) -> {"value": 3.837..., "ci_low": 2.765..., "ci_high": 5.186...}
    """
    if not exposure > 0:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    alpha = 1 - confidence
    low = st.chi2.ppf(alpha / 2, 2 * count) / 2 if count > 0 else 0.0
    high = st.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return {"value": per * count / exposure, "ci_low": per * low / exposure, "ci_high": per * high / exposure}


def poisson_difference(count_a: float, exposure_a: float, count_b: float, exposure_b: float, *,
                       per: float = 1000.0, confidence: float = 0.95) -> dict:
    """Rate a - rate b (per `per` units of exposure): {difference, ci_low, ci_high, p_value}. Interval
    normal on the two Poisson variances; p exact and conditional: given k_a + k_b events, k_a is
    binomial with p0 = exposure_a / (exposure_a + exposure_b) when the rates are equal. NaN when
    a group has no exposure or there are no events.

        poisson_difference(9, 3000, 45, 3000) -> {"difference": -12.0, "ci_low": -16.8, "ci_high": -7.2, "p_value": 7.3e-07}
    """
    if not (exposure_a > 0 and exposure_b > 0):
        return {"difference": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    diff = per * (count_a / exposure_a - count_b / exposure_b)
    se = per * math.sqrt(count_a / exposure_a**2 + count_b / exposure_b**2)
    z = z_value(confidence)
    total = int(round(count_a + count_b))
    p = (st.binomtest(int(round(count_a)), total, exposure_a / (exposure_a + exposure_b)).pvalue
         if total > 0 else math.nan)
    return {"difference": diff, "ci_low": diff - z * se, "ci_high": diff + z * se, "p_value": float(p)}


# --- multiple comparisons ----------------------------------------------------------------
def benjamini_hochberg(p_values, *, alpha: float = 0.05) -> pd.DataFrame:
    """Benjamini-Hochberg step-up: adjusted p (q-values) and rejection at false-discovery rate `alpha`.
    NaN p-values are left out of the count and stay NaN / not significant. Index kept.

        benjamini_hochberg(pd.Series([0.01, 0.04, 0.03, 0.2]))["p_adjusted"] -> [0.04, 0.0533, 0.0533, 0.2]
    """
    p = pd.Series(p_values, dtype="float64")
    if ((p < 0) | (p > 1)).any():
        raise MetricsError(f"p-values must lie in [0, 1]; first bad: {p[(p < 0) | (p > 1)].head(3).to_dict()}")
    valid = p.dropna()
    m = len(valid)
    order = valid.sort_values(kind="mergesort")
    ranks = np.arange(1, m + 1)
    adjusted = np.minimum.accumulate((order.to_numpy() * m / ranks)[::-1])[::-1].clip(max=1.0)
    q = pd.Series(adjusted, index=order.index).reindex(p.index)
    return pd.DataFrame({"p_adjusted": q, "significant": (q <= alpha).fillna(False).astype(bool)}, index=p.index)


# --- periods -------------------------------------------------------------------------------------
def add_period(df: pd.DataFrame, period: str = "month", *, col_time: str = TIMESTAMP,
               col_period: str = PERIOD) -> pd.DataFrame:
    """Add `period` (month / quarter / week / year of the UTC timestamp) as a string like '2024-03',
    '2024Q1', '2024-03-04/2024-03-10' or '2024'; sorts chronologically as text for month/quarter/year.
    Answers without a timestamp get no period (NA)."""
    if period not in PERIODS:
        raise MetricsError(f"period must be one of {list(PERIODS)}, got {period!r}")
    _require(df, [col_time])
    times = pd.to_datetime(df[col_time], utc=True).dt.tz_convert("UTC").dt.tz_localize(None)
    return df.assign(**{col_period: times.dt.to_period(PERIODS[period]).astype("str").where(times.notna())})



# --- grouped KPIs, trends, word of mouth -------------------------------------------------------
def kpi_by(df: pd.DataFrame, by: Sequence[str], *, kpi: str = NPS, min_n: int = 100,
           confidence: float = 0.95, alpha: float = 0.05, col_score: str | None = None) -> pd.DataFrame:
    """KPI per group with interval, each group tested against the rest of the sample.

    Output, one row per group (sorted by the `by` columns): *by, n, value, ci_low, ci_high, small
    (n < min_n), diff_vs_rest, p_value, p_adjusted (Benjamini-Hochberg over the groups that are not
    small), significant, rank (1 = best value; NA for small groups, which are never ranked or
    called significant). `by` may name any column, e.g. 'period' after `add_period`, or customer
    attributes after `with_customers`; missing values form their own group, which is shown and
    tested against the rest but never ranked (it is no group a reader can act on).

        kpi_by(with_customers(fb, cust), ["segment"], kpi="nps", min_n=100)
    """
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise MetricsError("kpi_by: name at least one column to group by (e.g. ['segment'])")
    stats = kpi_stats(df, by, kpi=kpi, col_score=col_score)
    est = _estimate(stats, kpi, confidence)
    total = stats[STAT_COLUMNS[kpi]].sum()
    rest = stats[STAT_COLUMNS[kpi]].rsub(total).reset_index(drop=True)
    diff = _difference(stats[STAT_COLUMNS[kpi]], rest, kpi, confidence)
    small = stats["n"].to_numpy() < min_n
    p = pd.Series(np.where(small | (rest["n"].to_numpy() == 0), np.nan, diff["p_value"]))
    bh = benjamini_hochberg(p, alpha=alpha)
    out = stats[by].reset_index(drop=True).assign(
        n=stats["n"].to_numpy(), value=est["value"].to_numpy(), ci_low=est["ci_low"].to_numpy(),
        ci_high=est["ci_high"].to_numpy(), small=small, diff_vs_rest=diff["difference"],
        p_value=p, p_adjusted=bh["p_adjusted"], significant=bh["significant"])
    known = out[by].notna().all(axis=1).to_numpy()
    ranks = out["value"].where(~out["small"] & known).rank(ascending=False, method="min")
    return out.assign(rank=ranks.astype("Int64"))


def kpi_trend(df: pd.DataFrame, *, kpi: str = NPS, period: str = "month", by: Sequence[str] = (),
              min_n: int = 100, confidence: float = 0.95, alpha: float = 0.05,
              col_time: str = TIMESTAMP, col_score: str | None = None) -> pd.DataFrame:
    """KPI per period (and per group of `by`) with interval and the change against the previous
    period of the same group, flagged only if significant after Benjamini-Hochberg over all changes.

    Output: *by, period, n, value, ci_low, ci_high, small, change, change_low, change_high,
    p_value, p_adjusted, significant. A change is tested only when both periods have n >= min_n.
    Answers without a timestamp are left out.
    """
    by = [by] if isinstance(by, str) else list(by)
    dated = add_period(df, period, col_time=col_time).dropna(subset=[PERIOD])
    stats = kpi_stats(dated, [*by, PERIOD], kpi=kpi, col_score=col_score)
    stats = stats.sort_values([*by, PERIOD], kind="mergesort").reset_index(drop=True)
    cols = STAT_COLUMNS[kpi]
    prev = (stats.groupby(by, sort=False)[cols].shift(1) if by else stats[cols].shift(1))
    est = _estimate(stats, kpi, confidence)
    diff = _difference(stats[cols], prev.fillna(0), kpi, confidence)
    small = stats["n"].to_numpy() < min_n
    testable = ~small & prev["n"].notna().to_numpy() & (prev["n"].fillna(0).to_numpy() >= min_n)
    p = pd.Series(np.where(testable, diff["p_value"], np.nan))
    bh = benjamini_hochberg(p, alpha=alpha)
    has_prev = prev["n"].notna().to_numpy()
    return stats[[*by, PERIOD]].assign(
        n=stats["n"].to_numpy(), value=est["value"].to_numpy(), ci_low=est["ci_low"].to_numpy(),
        ci_high=est["ci_high"].to_numpy(), small=small,
        change=np.where(has_prev, diff["difference"], np.nan),
        change_low=np.where(has_prev, diff["diff_low"], np.nan),
        change_high=np.where(has_prev, diff["diff_high"], np.nan),
        p_value=p, p_adjusted=bh["p_adjusted"], significant=bh["significant"])


def word_of_mouth(df: pd.DataFrame, *, period: str = "month", min_n: int = 100, confidence: float = 0.95,
                  col_time: str = TIMESTAMP, col_score: str = NPS) -> pd.DataFrame:
    """Promoter and detractor shares (percent, Wilson intervals) per period: the customers who
    recommend and who warn others.

    Output: period, n, promoters, promoters_low, promoters_high, detractors, detractors_low,
    detractors_high, small.
    """
    stats = kpi_stats(add_period(df, period, col_time=col_time).dropna(subset=[PERIOD]), [PERIOD], kpi=NPS,
                      col_score=col_score)
    n = stats["n"].to_numpy(float)
    pl, ph = wilson_interval(stats["promoters"], n, confidence=confidence)
    dl, dh = wilson_interval(stats["detractors"], n, confidence=confidence)
    return stats[[PERIOD]].assign(
        n=stats["n"], promoters=100 * stats["promoters"] / n, promoters_low=100 * pl, promoters_high=100 * ph,
        detractors=100 * stats["detractors"] / n, detractors_low=100 * dl, detractors_high=100 * dh,
        small=stats["n"] < min_n)


# --- sample size -----------------------------------------------------------------------------
def sample_size(margin: float, *, kpi: str = NPS, promoters: float = 50.0, detractors: float = 50.0,
                share: float = 50.0, sd: float = 1.5, confidence: float = 0.95) -> int:
    """Responses needed so the interval is at most -/+ `margin` (in the KPI's unit), normal approximation:
        nps:  n = z^2 * (p + d - (p - d)^2) / (margin/100)^2   (p, d = expected promoter/detractor %)
        csat: n = z^2 * s (1 - s) / (margin/100)^2              (s = expected top-2-box %)
        ces:  n = z^2 * sd^2 / margin^2
    The defaults are the worst case for NPS and CSAT; pass observed shares for a realistic figure.

        sample_size(5, kpi="nps", promoters=40, detractors=20) -> 861
    """
    if not margin > 0:
        raise MetricsError(f"margin must be positive, got {margin}")
    z = z_value(confidence)
    if kpi == NPS:
        p, d = promoters / 100, detractors / 100
        if p < 0 or d < 0 or p + d > 1:
            raise MetricsError(f"promoter and detractor shares must be >= 0 and add up to <= 100, got {promoters}, {detractors}")
        var, m = p + d - (p - d) ** 2, margin / 100
    elif kpi == CSAT:
        s = share / 100
        var, m = s * (1 - s), margin / 100
    elif kpi == CES:
        var, m = sd**2, margin
    else:
        raise MetricsError(f"unknown kpi {kpi!r}; expected one of {list(KPIS)}")
    return max(1, math.ceil(round(z**2 * var / m**2, 9)))
