"""The journey's headline numbers in the shape results.json keeps them (section `journey`): the
frames the report's sections computed, each cut to the rows and columns a reader of results.json
uses; rates as {value, ci_low, ci_high, n}.

    record = journey.results_record({"focus": "", "funnel": funnel, "conversion_rate": conversion})
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from cxlib.schema import Missing

TOP_ROWS = 10                    # transitions kept in results.json
# key of results.json -> what of the section's frame is kept: columns (None: all) and rows (None: all),
# "estimate" with the column that counts n, or "mean" with the columns of a ratio of sums
RECORDS = {
    "funnel": (["step", "customers", "conversion", "ci_low", "ci_high", "step_conversion", "days_median", "days_p90"], None),
    "conversion_rate": ("estimate", "leads"),
    "repeat_customer_rate": ("estimate", "buyers"),
    "order_intervals": (None, 1),
    "repeat_vs_new_conversion": (None, None),
    "campaign_response_rate": ("estimate", "sent"),
    "time_between_steps": (None, None),
    "lost_sales": (None, None),
    "stages": (["stage", "customers", "share"], None),
    "top_transitions": (None, TOP_ROWS),
    "top_paths": (["rank", "path", "journeys", "coverage"], None),
    "episodes_per_customer": ("mean", ("episodes", "customers")),
}


def estimate(rates: pd.DataFrame, n: str, row: int = 0) -> dict:
    """One row of a rate table as {value, ci_low, ci_high, n} (the shape results.json uses)."""
    if rates.empty:
        return {"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    r = rates.iloc[row]
    return {"value": float(r["rate"]), "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]), "n": int(r[n])}


def _kept(key: str, value):
    if key not in RECORDS or not isinstance(value, pd.DataFrame):
        return value
    columns, rows = RECORDS[key]
    if columns == "estimate":
        return estimate(value, rows)
    if columns == "mean":
        return float(value[rows[0]].sum() / value[rows[1]].sum())
    frame = value.loc[:, columns] if columns else value
    if rows == 1:
        return frame.head(1).to_dict("records")[0] if len(frame) else {}
    return frame.head(rows) if rows else frame


def results_record(found: Mapping[str, object]) -> dict:
    """`found` (results.json key -> the section's frame, or a plain value such as `focus`) as
    results.json keeps it (`RECORDS`). Raises `schema.Missing` when no
    section found anything (only `focus`), so that nothing is recorded."""
    if not set(found) - {"focus"}:
        raise Missing("no section of the journey report could run on this data",
                      enable="events with customer ids, orders, leads or campaign contacts")
    return {key: _kept(key, value) for key, value in found.items()}
