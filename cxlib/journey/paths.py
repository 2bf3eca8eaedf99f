"""How customers move: transitions between consecutive events, the most frequent paths and the
time from one step to the next.

    journey.transitions(events, col_node="stage")
    journey.transitions_by_node(events, ["touchpoint", "stage"])       # both tables from one pass
    journey.time_between_steps(events, [("order", "activation")], over_days=14)
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _

from cxlib import engine
from cxlib.schema import CUSTOMER_ID, EVENT_ID, STAGE, TIMESTAMP, TOUCHPOINT, Missing
from cxlib.journey.base import (
    ELLIPSIS, EPISODE, JourneyError, PATH_SEP, SECONDS_PER_DAY, UNKNOWN, _agg, _by_values, _codes, _complete,
    _journeys, _keys, _label, _per_customer_parts, _seconds, _tbl, _window, require_journeys,
)
from cxlib.journey.stages import with_episodes


def _journey_events(events, col_node: str | Sequence[str], by: str | None, col_customer: str,
                    col_timestamp: str, col_event_id: str) -> ir.Table:
    """The events of journeys (with a customer id; `by` values filled) with the columns to order them."""
    nodes = [col_node] if isinstance(col_node, str) else list(col_node)
    t = _journeys(_tbl(events, "events", _keys(col_customer, col_timestamp, col_event_id, *nodes, by)), col_customer)
    return _by_values(t, by)


def _journey_units(t: ir.Table, gap_days: float | None, col_customer: str, col_timestamp: str,
                   col_event_id: str) -> tuple[ir.Table, list[str]]:
    """Journey events `t` and the columns of one journey: the customer, or customer and episode
    when `gap_days` splits journeys by inactivity."""
    if gap_days is None:
        return t, [col_customer]
    t = with_episodes(t, gap_days, col_customer=col_customer, col_timestamp=col_timestamp, col_event_id=col_event_id)
    return t, [col_customer, EPISODE]


def _node_pairs(events, nodes: Sequence[str], gap_days: float | None, by: str | None, col_customer: str,
                col_timestamp: str, col_event_id: str) -> ir.Table:
    """Consecutive events counted by the values of each of `nodes` at both ends: [by],
    _f0, _t0, _f1, _t1, …, transitions (one window pass for all nodes, by parts of the
    customers when the events exceed the engine's memory for windows)."""
    t = _journey_events(events, nodes, by, col_customer, col_timestamp, col_event_id)
    keys = [*(f"_{end}{i}" for i in range(len(nodes)) for end in "ft"), *_keys(by)]
    counts = _per_customer_parts(t, col_customer, lambda part: _part_pairs(
        part, nodes, gap_days, by, col_customer, col_timestamp, col_event_id))
    return counts.group_by(keys).agg(transitions=counts.transitions.sum().cast("int64"))


def _part_pairs(t: ir.Table, nodes: Sequence[str], gap_days: float | None, by: str | None, col_customer: str,
                col_timestamp: str, col_event_id: str) -> ir.Table:
    """`_node_pairs` of the journey events `t` of some customers."""
    t, partition = _journey_units(t, gap_days, col_customer, col_timestamp, col_event_id)
    w = _window(partition, col_timestamp, col_event_id)
    ends = {}
    for i, col in enumerate(nodes):
        node = t[col].fill_null(UNKNOWN)
        ends.update({f"_f{i}": node, f"_t{i}": node.lead().over(w)})
    pairs = t.select(*_keys(by), **ends)
    return pairs.filter(pairs._t0.notnull()).group_by([*ends, *_keys(by)]).agg(transitions=_.count())


def transition_counts(events, *, col_node: str = TOUCHPOINT, gap_days: float | None = None,
                      by: str | None = None, col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                      col_event_id: str = EVENT_ID) -> ir.Table:
    """Directly-follows counts as an Ibis expression: from_step, to_step, [by], transitions.

    A transition is a pair of consecutive events of one customer (within one episode when
    `gap_days` is given), ordered by timestamp then event_id. Empty nodes count as 'unknown';
    events without a customer id are left out.
    """
    counts = _node_pairs(events, [col_node], gap_days, by, col_customer, col_timestamp, col_event_id)
    return counts.rename(from_step="_f0", to_step="_t0")


def transitions(events, *, col_node: str = TOUCHPOINT, gap_days: float | None = None, by: str | None = None,
                col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                col_event_id: str = EVENT_ID) -> pd.DataFrame:
    """Transitions between consecutive steps with counts and probabilities.

    Out: [by], from_step, to_step, transitions, probability (share of the transitions leaving
    from_step that go to to_step), sorted by transitions (descending), from_step, to_step.
    Raises `schema.Missing` when there is none (no journeys, or one event per customer).
    """
    return transitions_by_node(events, [col_node], gap_days=gap_days, by=by, col_customer=col_customer,
                               col_timestamp=col_timestamp, col_event_id=col_event_id)[0]


def transitions_by_node(events, nodes: Sequence[str], *, gap_days: float | None = None, by: str | None = None,
                        col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                        col_event_id: str = EVENT_ID) -> list[pd.DataFrame]:
    """`transitions` between the values of each column of `nodes` (e.g. touchpoint and stage),
    from one pass over the events: the table `transitions` gives for each node, in their order.

        by_touchpoint, by_stage = transitions_by_node(events, ["touchpoint", "stage"])
    """
    counts = engine.to_pandas(_node_pairs(events, list(nodes), gap_days, by, col_customer, col_timestamp, col_event_id))
    if counts.empty:
        require_journeys(events, col_customer=col_customer)
        within = " within an episode" if gap_days is not None else ""
        raise Missing(f"no customer has two events{within}, so there are no transitions",
                      enable="events of the same customer at several touchpoints")
    keys = _keys(by, "from_step")
    out = []
    for i in range(len(nodes)):
        one = (counts.rename(columns={f"_f{i}": "from_step", f"_t{i}": "to_step"})
               .groupby([*_keys(by), "from_step", "to_step"], as_index=False)["transitions"].sum())
        out.append(
            one.assign(probability=lambda d: d["transitions"] / d.groupby(keys)["transitions"].transform("sum"))
            .sort_values([*_keys(by), "transitions", "from_step", "to_step"], ascending=[*([True] if by else []), False, True, True],
                         kind="stable")
            .loc[:, [*_keys(by), "from_step", "to_step", "transitions", "probability"]]
            .reset_index(drop=True)
        )
    return out


def path_variants(events, *, col_node: str = STAGE, max_steps: int = 8, collapse_repeats: bool = True,
                  gap_days: float | None = None, top: int = 10, by: str | None = None,
                  col_customer: str = CUSTOMER_ID, col_timestamp: str = TIMESTAMP,
                  col_event_id: str = EVENT_ID) -> pd.DataFrame:
    """The most frequent journeys as paths of `col_node` values ('awareness > consideration > …').

    One journey per customer (or per episode when `gap_days` is given); consecutive repeats
    are collapsed when `collapse_repeats`; paths longer than `max_steps` are cut and end in '…'.
    Out: [by], rank, path, steps, journeys, coverage (share of journeys), cumulative_coverage,
    variants (distinct paths in the group); the `top` paths per group. Raises `schema.Missing`
    without journeys.
    """
    if max_steps < 1 or top < 1:
        raise JourneyError(f"path_variants: max_steps and top must be ≥ 1, got {max_steps}, {top}")
    t = _journey_events(events, col_node, by, col_customer, col_timestamp, col_event_id)
    counts = _per_customer_parts(t, col_customer, lambda part: _part_variants(
        part, col_node, max_steps, collapse_repeats, gap_days, by, col_customer, col_timestamp, col_event_id))
    variants = counts.group_by([*_keys(by), "path", "steps"]).agg(journeys=counts.journeys.sum().cast("int64"))
    group = ibis.window(group_by=_keys(by))
    ranked = ibis.window(group_by=_keys(by), order_by=[ibis.desc("journeys"), "path"])
    variants = variants.mutate(
        rank=(ibis.row_number().over(ranked) + 1).cast("int64"),
        _total=variants.journeys.sum().over(group).cast("int64"),
        variants=variants.journeys.count().over(group).cast("int64"),
    )
    out = engine.to_pandas(variants.filter(variants["rank"] <= top))
    if out.empty:
        require_journeys(events, col_customer=col_customer)
    return (
        out.sort_values([*_keys(by), "rank"], kind="stable")
        .assign(coverage=lambda d: d["journeys"] / d["_total"],
                cumulative_coverage=lambda d: (d.groupby(by)["journeys"].cumsum() if by else d["journeys"].cumsum()) / d["_total"])
        .loc[:, [*_keys(by), "rank", "path", "steps", "journeys", "coverage", "cumulative_coverage", "variants"]]
        .reset_index(drop=True)
    )


def _part_variants(t: ir.Table, col_node: str, max_steps: int, collapse_repeats: bool, gap_days: float | None,
                   by: str | None, col_customer: str, col_timestamp: str, col_event_id: str) -> ir.Table:
    """Journeys per path of the journey events `t` of some customers: [by], path, steps, journeys
    (see `path_variants`)."""
    t, unit = _journey_units(t, gap_days, col_customer, col_timestamp, col_event_id)
    t = t.mutate(_node=t[col_node].fill_null(UNKNOWN))
    if collapse_repeats:
        w = _window(unit, col_timestamp, col_event_id)
        t = t.mutate(_prev=t._node.lag().over(w))
        t = t.filter(t._prev.isnull() | (t._prev != t._node))
    w = _window(unit, col_timestamp, col_event_id)
    t = t.mutate(_pos=ibis.row_number().over(w))
    nodes = {f"_p{k}": t._node.max(where=t._pos == k) for k in range(max_steps)}
    per = t.group_by([*unit, *_keys(by)]).agg(_n=_.count(), **nodes)
    path = per._p0
    for k in range(1, max_steps):
        path = path + ibis.ifelse(per[f"_p{k}"].isnull(), "", PATH_SEP + per[f"_p{k}"])
    path = path + ibis.ifelse(per._n > max_steps, PATH_SEP + ELLIPSIS, "")
    per = per.select(*_keys(by), path=path, steps=ibis.least(per._n, max_steps).cast("int64"))
    return per.group_by([*_keys(by), "path", "steps"]).agg(journeys=_.count())


def time_between_steps(events, pairs: Sequence[tuple], *, by: str | None = None, over_days: float | None = None,
                       col_step: str = TOUCHPOINT, col_customer: str = CUSTOMER_ID,
                       col_timestamp: str = TIMESTAMP, col_event_id: str = EVENT_ID) -> pd.DataFrame:
    """Time from one step to the next, e.g. order → activation.

    Each `from` event is paired with the first `to` event that follows it before the next
    `from` event of the same customer ('a|b' = either code). Out: [by], from_step, to_step,
    pairs, customers, days_median, days_p90, days_mean and, with `over_days`, share_over (share
    of pairs taking longer than `over_days`, e.g. 14 for slow provisioning). One row per pair
    and group; zero pairs give NaN times. Raises `schema.Missing` when no pair occurs at all.
    """
    pairs = [(_label(a), _label(b)) for a, b in pairs]
    if not pairs:
        raise JourneyError("time_between_steps: pairs is empty; give e.g. [('order', 'activation')]")
    t = _journeys(_tbl(events, "events", _keys(col_customer, col_timestamp, col_event_id, col_step, by)), col_customer)
    t = _by_values(t, by)
    parts = []
    for source, target in pairs:
        sub = t.filter(t[col_step].isin(sorted({*_codes(source), *_codes(target)})))
        w = _window([col_customer], col_timestamp, col_event_id)
        sub = sub.mutate(_sec=_seconds(sub[col_timestamp]), _next=sub[col_step].lead().over(w),
                         _next_sec=_seconds(sub[col_timestamp]).lead().over(w))
        hit = sub.filter(sub[col_step].isin(_codes(source)) & sub._next.isin(_codes(target)))
        days = (hit._next_sec - hit._sec) / SECONDS_PER_DAY
        metrics = dict(pairs=hit.count(), customers=hit[col_customer].nunique(),
                       days_median=days.quantile(0.5).cast("float64"), days_p90=days.quantile(0.9).cast("float64"),
                       days_mean=days.mean().cast("float64"),
                       share_over=(ibis.ifelse(days > over_days, 1, 0).cast("float64").mean() if over_days is not None
                                   else ibis.null("float64")).cast("float64"))
        parts.append(_agg(hit, by, **metrics).mutate(from_step=ibis.literal(source, "string"), to_step=ibis.literal(target, "string")))
    raw = engine.to_pandas(ibis.union(*parts))
    raw = raw[raw["pairs"] > 0]
    if raw.empty:
        require_journeys(events, col_customer=col_customer)
        named = "; ".join(f"{a} → {b}" for a, b in pairs)
        raise Missing(f"no customer has a step followed by the next of a timed pair ({named})",
                      enable=f"events.{col_step} of those steps, or the parameter step_pairs set to touchpoints the events hold")
    inner = pd.DataFrame({"from_step": pd.Series([s for s, _t in pairs], dtype="str"),
                          "to_step": pd.Series([e for _s, e in pairs], dtype="str")}).drop_duplicates()
    out = _complete(raw, by, None, inner, {"pairs": 0, "customers": 0, "days_median": np.nan,
                                           "days_p90": np.nan, "days_mean": np.nan, "share_over": np.nan})
    return out.loc[:, [*_keys(by), "from_step", "to_step", "pairs", "customers", "days_median", "days_p90",
                       "days_mean", *(["share_over"] if over_days is not None else [])]].reset_index(drop=True)
