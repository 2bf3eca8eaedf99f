"""Value to date: historic value per customer, how concentrated it is, and RFM scores and segments.

- RFM scores 1..`bins` (default 5, quintiles): score = floor(bins * (rank - 1) / n) + 1 with
  `rank` the *minimum* rank among ties, so equal values always share a score and ties get the
  lowest score of their span (a score of 5 means better than at least 80% of customers).
  Recency: fewer days is better; frequency: purchases; monetary: net revenue.

    hist = historic_value(orders)
    rfm = rfm_scores(hist).pipe(rfm_segments, rules=taxonomy.section("rfm_segments"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib.schema import CUSTOMER_ID, REVENUE, STATUS, TIMESTAMP, require
from cxlib.value.base import (
    ENABLE_ORDERS, F_SCORE, FIRST_ORDER, LAST_ORDER, M_SCORE, ORDERS, R_SCORE, RECENCY_DAYS, RFM, RFM_SEGMENT,
    TENURE_DAYS, ValueInputError, as_of_day, purchases, require_columns, require_purchases, whole_days,
)


def historic_value(
    orders: pd.DataFrame,
    *,
    as_of=None,
    col_customer: str = CUSTOMER_ID,
    col_timestamp: str = TIMESTAMP,
    col_revenue: str = REVENUE,
    col_status: str = STATUS,
) -> pd.DataFrame:
    """Historic value per customer with at least one completed order up to `as_of`.

    In: orders (customer_id, timestamp, revenue, status). Out, one row per customer sorted by
    id: customer_id, orders (purchases), revenue (net of credits), first_order, last_order
    (timestamps of the first/last purchase; NaT without purchase), tenure_days, recency_days.
    """
    end = as_of_day(orders, as_of, col_timestamp=col_timestamp)
    rows = purchases(orders, as_of=end, col_customer=col_customer, col_timestamp=col_timestamp,
                     col_revenue=col_revenue, col_status=col_status)
    end = pd.NaT if end is None else end          # no dated orders: an empty table
    return (
        rows.assign(
            _ts=lambda d: d[col_timestamp].where(d["is_purchase"]),
            _day=lambda d: d["day"].where(d["is_purchase"]),
        )
        .groupby(col_customer, sort=True)
        .agg(**{
            ORDERS: ("is_purchase", "sum"),
            REVENUE: (col_revenue, "sum"),
            FIRST_ORDER: ("_ts", "min"),
            LAST_ORDER: ("_ts", "max"),
            "_first_day": ("_day", "min"),
            "_last_day": ("_day", "max"),
        })
        .reset_index()
        .assign(**{
            ORDERS: lambda d: d[ORDERS].astype("int64"),
            TENURE_DAYS: lambda d: whole_days(end - d["_first_day"]),
            RECENCY_DAYS: lambda d: whole_days(end - d["_last_day"]),
        })
        .drop(columns=["_first_day", "_last_day"])
    )


def concentration(values: pd.DataFrame, *, col_value: str = REVENUE, points: Sequence[float] | None = None) -> pd.DataFrame:
    """How concentrated value is: share of the total held by the top customers.

    Customers ranked by `col_value`, highest first. Out: customer_share (top x of customers),
    value_share (their share of the total), one row per customer, or one row per share in
    `points` (e.g. [0.1, 0.2]: the top 10% / 20%, rounded up to whole customers).
        concentration(hist, points=[0.2])  -> top 20% hold e.g. 61% of revenue
    """
    require_columns(values, [col_value], "customer values")
    ranked = values[col_value].sort_values(ascending=False, ignore_index=True).astype("float64")
    n = len(ranked)
    curve = pd.DataFrame({"customer_share": np.arange(1, n + 1) / n if n else np.array([], dtype="float64"),
                          "value_share": ranked.cumsum() / ranked.sum() if n else np.array([], dtype="float64")})
    if points is None:
        return curve
    k = np.clip(np.ceil(np.asarray(points, dtype="float64") * n - 1e-9).astype("int64"), 1, max(n, 1)) - 1
    return pd.DataFrame({"top_share": np.asarray(points, dtype="float64"),
                         "customers": k + 1,
                         "value_share": curve["value_share"].to_numpy()[k] if n else np.nan})


def historic_overview(historic: pd.DataFrame, orders: pd.DataFrame) -> dict:
    """Headline numbers of revenue to date: {customers (with a purchase), revenue, top10_share,
    top20_share, top50_share (share of net revenue of the top 10/20/50% of them), credit_only
    (customers with only credits or zero-value rows)}. Raises schema.Missing without purchases.
        historic_overview(hist, orders) -> {"customers": 3000, "revenue": 1.2e6, "top20_share": 0.61, ...}
    """
    require_purchases(orders, historic)
    buyers = historic.loc[lambda d: d[ORDERS] > 0]
    top = concentration(buyers, points=[0.1, 0.2, 0.5])["value_share"].to_numpy()
    return {"customers": int(len(buyers)), "revenue": float(buyers[REVENUE].sum()),
            "top10_share": float(top[0]), "top20_share": float(top[1]), "top50_share": float(top[2]),
            "credit_only": int((historic[ORDERS] == 0).sum())}




def revenue_curve(historic: pd.DataFrame) -> pd.DataFrame:
    """The concentration curve of net revenue over customers with a purchase (see concentration)."""
    return concentration(historic.loc[lambda d: d[ORDERS] > 0])



def _score(values: pd.Series, bins: int, *, higher_is_better: bool = True) -> pd.Series:
    """floor(bins * (min rank - 1) / n) + 1; ties share the lowest score of their span."""
    rank = values.rank(method="min", ascending=higher_is_better)
    return (np.floor(bins * (rank - 1) / len(values)) + 1).astype("int64")


def rfm_scores(historic: pd.DataFrame, *, bins: int = 5, col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """RFM scores for customers with at least one purchase.

    In: historic_value output (recency_days, orders, revenue). Out: customer_id, recency_days,
    orders, revenue, r_score, f_score, m_score (1..bins, higher = better), rfm ("545").
        rfm_scores(hist, bins=5)
    """
    require_columns(historic, [col_customer, RECENCY_DAYS, ORDERS, REVENUE], "historic value")
    if not isinstance(bins, int) or bins < 2:
        raise ValueInputError(f"rfm bins must be an integer >= 2, got {bins!r}")
    buyers = historic.loc[lambda d: d[ORDERS] > 0]
    require(len(buyers), "no customer with a purchase", enable=ENABLE_ORDERS)
    require(buyers[RECENCY_DAYS].nunique() > 1,
            "every purchase falls on the same day, so recency cannot rank customers",
            enable="orders over more than one day")
    return (
        historic.loc[lambda d: d[ORDERS] > 0, [col_customer, RECENCY_DAYS, ORDERS, REVENUE]]
        .reset_index(drop=True)
        .assign(**{
            R_SCORE: lambda d: _score(d[RECENCY_DAYS], bins, higher_is_better=False),
            F_SCORE: lambda d: _score(d[ORDERS], bins),
            M_SCORE: lambda d: _score(d[REVENUE], bins),
        })
        .assign(**{RFM: lambda d: d[R_SCORE].astype(str) + d[F_SCORE].astype(str) + d[M_SCORE].astype(str)})
    )


def rfm_segments(scores: pd.DataFrame, *, rules: Mapping, bins: int = 5) -> pd.DataFrame:
    """Name each customer's RFM segment from its R and F scores.

    `rules`: segment code -> {r: [low, high], f: [low, high], ...} on a 1..5 scale (the
    `rfm_segments` section of config/taxonomy.yml); the first matching rule wins. Scores of
    another `bins` are put on 1..5 first by ceil(score * 5 / bins). Adds `rfm_segment`;
    a customer no rule matches raises (rules must cover the 5 x 5 grid).
    """
    require_columns(scores, [R_SCORE, F_SCORE], "rfm scores")
    r5 = np.ceil(scores[R_SCORE] * 5 / bins).astype("int64")
    f5 = np.ceil(scores[F_SCORE] * 5 / bins).astype("int64")
    conditions = [
        r5.between(*rule["r"]) & f5.between(*rule["f"]) for rule in rules.values()
    ]
    segment = pd.Series(np.select(conditions, list(rules), default=""), index=scores.index, dtype="str")
    unmatched = scores.loc[segment == ""]
    if len(unmatched):
        raise ValueInputError(
            f"rfm_segments rules cover no segment for scores (r, f) "
            f"{sorted(set(zip(r5[unmatched.index], f5[unmatched.index])))[:5]}"
        )
    return scores.assign(**{RFM_SEGMENT: segment})


def segment_summary(scores: pd.DataFrame, *, col_customer: str = CUSTOMER_ID) -> pd.DataFrame:
    """Per RFM segment: customers, share, revenue, revenue share, mean orders and recency.
    Sorted by revenue, largest first."""
    require_columns(scores, [col_customer, RFM_SEGMENT, REVENUE, ORDERS, RECENCY_DAYS], "rfm segments")
    return (
        scores.groupby(RFM_SEGMENT, sort=False)
        .agg(customers=(col_customer, "size"), revenue=(REVENUE, "sum"),
             mean_orders=(ORDERS, "mean"), mean_recency_days=(RECENCY_DAYS, "mean"))
        .reset_index()
        .assign(customer_share=lambda d: d["customers"] / d["customers"].sum(),
                revenue_share=lambda d: d["revenue"] / d["revenue"].sum())
        .sort_values(["revenue", RFM_SEGMENT], ascending=[False, True], ignore_index=True)
        [[RFM_SEGMENT, "customers", "customer_share", "revenue", "revenue_share", "mean_orders", "mean_recency_days"]]
    )


def segment_table(scores: pd.DataFrame, taxonomy, *, lang: str = "en") -> pd.DataFrame:
    """segment_summary with the segment's label in `lang` as `segment` (first column)."""
    table = segment_summary(scores)
    return table.assign(segment=[taxonomy.label("rfm_segments", c, lang) for c in table[RFM_SEGMENT]])[
        ["segment", *table.columns]]


