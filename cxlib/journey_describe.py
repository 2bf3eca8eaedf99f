"""Words and small tables of the journey report: figure titles that state the finding,
sentences with the numbers, the picks a figure highlights and the tables a section shows.

Every function takes the aggregated frames of `cxlib.journey` (pandas, a screen full) and
returns text or a small frame; none reads data or draws. Sentences hold only true statements
on thin data: no "nan%", no "0 years", no comparison of a group with nobody in it.

    stages = journey.stage_summary(events, taxonomy)
    journey_describe.describe_stages(stages, journey.overview(events))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cxlib import journey, locale
from cxlib.schema import Missing

DAYS_PER_MONTH = 30.44
MIN_BAND = 100          # tenure bands with fewer customers are not named as the riskiest


# --- formatting -----------------------------------------------------------------------------

def _pct(value, digits: int = 0) -> str:
    """A share as percent; a share above 0 or below 1 never reads '0%' or '100%' (one more
    decimal, then '<0.1%' / '>99.9%')."""
    if value is None or pd.isna(value):
        return "–"
    text = f"{value:.{digits}%}"
    if 0 < value < 1 and float(text.rstrip("%")) in (0, 100):
        text = f"{value:.{max(digits, 1)}%}"
        if float(text.rstrip("%")) in (0, 100):
            text = "<0.1%" if value < 0.5 else ">99.9%"
    return text


def _int(value) -> str:
    return f"{int(value):,}"


def _many(count, word: str, plural: str | None = None) -> str:
    """'1 customer', '2,714 customers' (`plural` where it is not word + s)."""
    return f"{_int(count)} {word if int(count) == 1 else plural or word + 's'}"


def _days(value) -> str:
    return "–" if pd.isna(value) else f"{value:.1f}"


# the journey tables' columns in words; shares (0-1) are shown in percent
COLUMN_LABELS = {
    "stage_label": "stage", "share": "share (%)", "episodes_per_customer": "episodes per customer",
    "events_median": "events per episode (median)", "step_index": "step number",
    "conversion": "conversion from step 1 (%)", "ci_low": "95% low (%)", "ci_high": "95% high (%)",
    "step_conversion": "from the previous step (%)", "step_ci_low": "previous step 95% low (%)",
    "step_ci_high": "previous step 95% high (%)", "drop_off": "drop-off (%)", "days_median": "days (median)",
    "days_p90": "days (90th percentile)", "days_mean": "days (mean)", "from_step": "from", "to_step": "to",
    "probability": "probability (%)", "coverage": "coverage (%)", "cumulative_coverage": "cumulative coverage (%)",
    "rate": "rate (%)", "repeat_buyers": "repeat buyers", "customer_type": "customer type",
    "band": "tenure band", "tenure_from_days": "tenure from (days)", "tenure_to_days": "tenure to (days)",
    "at_risk": "customers at its start", "survival": "still active at its end (%)", "share_over": "share slower (%)",
    "campaign_id": "campaign",
}
SHARE_COLUMNS = frozenset(c for c, label in COLUMN_LABELS.items() if label.endswith("(%)"))


STEP_COLUMNS = ("step", "from_step", "to_step")    # touchpoint codes ('a|b' = either), shown as taxonomy labels


def shown(frame: pd.DataFrame, *, other: int = 3, taxonomy=None, lang: str = "en") -> pd.DataFrame:
    """`frame` as the report shows it (`locale.display_table`): every value as text, shares (the
    `(%)` columns of COLUMN_LABELS) in percent with one decimal, columns named *days* to one
    decimal, other floats rounded to `other` decimals; columns in words (a code column is left
    out where its `_label` column is there); with `taxonomy`, the touchpoint codes of step,
    from_step and to_step as their labels.

        shown(pd.DataFrame({"step": ["order"], "conversion": [0.4567]})) -> step, "conversion from step 1" '45.7%'
    """
    out = frame.drop(columns=[c for c in frame.columns if f"{c}_label" in frame.columns])
    if taxonomy is not None:
        out = out.assign(**{c: [journey.step_label(v, taxonomy, lang=lang) if isinstance(v, str) and v else v
                                for v in out[c]] for c in STEP_COLUMNS if c in out.columns})
    floats = [c for c in out.columns if pd.api.types.is_float_dtype(out[c])]
    out = out.assign(**{c: out[c].round(other) for c in floats if c not in SHARE_COLUMNS and "days" not in c})
    kinds = {c: ("share" if c in SHARE_COLUMNS else "days" if "days" in c else "number") for c in floats}
    kinds.update({c: "count" for c in out.columns if pd.api.types.is_integer_dtype(out[c])})
    labels = {c: COLUMN_LABELS[c].removesuffix(" (%)") for c in out.columns if c in COLUMN_LABELS} if lang == "en" else {}
    return locale.display_table(out, lang, kinds=kinds, labels=labels)


FUNNEL_COLUMNS = ("segment", "step", "customers", "conversion", "step_conversion", "days_median", "days_p90")


def funnel_table(funnel: pd.DataFrame, taxonomy, lang: str = "en") -> pd.DataFrame:
    """The funnel as a report table (`shown`): [segment], step, customers, conversion from step 1
    and from the previous step, days (median, 90th percentile)."""
    return shown(funnel.loc[:, [c for c in FUNNEL_COLUMNS if c in funnel.columns]], taxonomy=taxonomy, lang=lang)


def paths_table(paths: pd.DataFrame, lang: str = "en"):
    """The top paths as a report table (`shown`, as a Styler so that long paths are not cut)."""
    return shown(paths.drop(columns=["variants"], errors="ignore"), lang=lang).style.hide(axis="index")


def _step_key(step) -> str:
    """A step as `journey` names it in its tables: 'order | activation' -> 'order|activation'."""
    return "|".join(c.strip() for c in str(step).split("|") if c.strip())


def step_labels(steps: Sequence, taxonomy, lang: str = "en") -> list[str]:
    """Readable labels of funnel steps or stage codes: ['web_visit|quote'] -> ['Web visit or Quote']."""
    return [journey.step_label(step, taxonomy, lang=lang) for step in steps]


# --- the log and its stages -----------------------------------------------------------------

def describe_overview(log: pd.DataFrame) -> str:
    """The event log in one or two sentences (from `journey.overview`)."""
    r = log.iloc[0]
    if r["events"] == 0:
        return "The event log is empty, so the sections on journeys are not shown."
    if r["customers"] == 0:
        return (f"{_many(r['events'], 'event')} from {r['first']:%Y-%m-%d} to {r['last']:%Y-%m-%d}; none carries "
                "a customer id, so they form no journeys.")
    text = (f"{_many(r['events'], 'event')} of {_many(r['customers'], 'customer')} from "
            f"{r['first']:%Y-%m-%d} to {r['last']:%Y-%m-%d}.")
    without = int(r["events"] - r["events_with_customer"])
    if without:
        text += f" {_many(without, 'event')} without a customer id belong to no journey."
    return text


def stages_title(stages: pd.DataFrame) -> str:
    """The stage figure's title: the share reaching purchase, else the stage most customers reach."""
    reached = stages[stages["customers"] > 0]
    purchase = reached[reached["stage"] == "purchase"]
    row = purchase.iloc[0] if len(purchase) else reached.sort_values("share", ascending=False, kind="stable").iloc[0]
    return f"{_pct(row['share'])} of people in the log reach the {row['stage_label'].lower()} stage"


def describe_stages(stages: pd.DataFrame, log: pd.DataFrame) -> str:
    """Customers per stage in lifecycle order, in one sentence (from `journey.stage_summary`)."""
    reached = stages[stages["customers"] > 0]
    first, *rest = reached.itertuples()
    text = (f"Of {_many(log['customers'].iloc[0], 'customer')} in the log, {_pct(first.share)} have an event in "
            f"{first.stage_label.lower()}" + "".join(f", {_pct(r.share)} in {r.stage_label.lower()}" for r in rest) + ".")
    absent = stages.loc[stages["customers"] == 0, "stage_label"].str.lower().tolist()
    if absent:
        text += f" No event falls in {', '.join(absent)}."
    return text


def episodes_per_customer(episodes: pd.DataFrame) -> float:
    """Episodes per customer over all groups of `journey.episode_summary`."""
    return float(episodes["episodes"].sum() / episodes["customers"].sum())


def describe_episodes(episodes: pd.DataFrame, gap_days: float) -> str:
    """Episodes per customer and their size (from `journey.episode_summary`)."""
    return (f"With a gap of {gap_days:g} days, a customer has on average {episodes_per_customer(episodes):.1f} "
            f"episodes; the median episode has {episodes['events_median'].median():g} events and lasts "
            f"{_days(episodes['days_median'].median())} days.")


# --- funnel ---------------------------------------------------------------------------------

def funnel_title(funnel: pd.DataFrame, labels: Sequence[str]) -> str:
    """The funnel figure's title: the share of starters who reach the last step."""
    if len(funnel) == 1:
        return f"{_many(funnel['customers'].iloc[0], 'customer')} reach {labels[0].lower()}"
    return f"{_pct(funnel['conversion'].iloc[-1], 1)} of those who start reach {labels[-1].lower()}"


def describe_funnel(funnel: pd.DataFrame, labels: Sequence[str]) -> str:
    """The largest drop between steps and the time to the last step (from `journey.funnel`)."""
    start = int(funnel["customers"].iloc[0])
    if len(funnel) == 1:
        return f"{_many(start, 'customer')} reach {labels[0].lower()}; the funnel has no further step."
    later = funnel.iloc[1:].assign(label=list(labels[1:]))
    worst = later.sort_values(["step_conversion", "step_index"], kind="stable").iloc[0]
    last = funnel.iloc[-1]
    if worst["drop_off"] == 0:
        return (f"All {_many(start, 'customer')} who start reach the last step, in a median of "
                f"{last['days_median']:.0f} days (90% within {last['days_p90']:.0f}).")
    text = (f"Of {_many(start, 'customer')} who start, the largest drop is before **{worst['label']}**: "
            f"{_many(worst['drop_off'], 'customer')} ({_pct(1 - worst['step_conversion'])} of the previous step) do not go on. ")
    if last["customers"] == 0:
        return text + "Nobody reaches the last step."
    return text + (f"Reaching the last step takes a median of {last['days_median']:.0f} days "
                   f"(90% within {last['days_p90']:.0f}).")


# --- transitions and paths ------------------------------------------------------------------

def stage_matrix(stage_flow: pd.DataFrame, taxonomy, lang: str = "en") -> tuple[pd.DataFrame, pd.Series]:
    """Transition probabilities between stages as a percent matrix (rows: stage of the event,
    columns: stage of the next event, both labelled, lifecycle order) and the transitions
    leaving each row's stage. Raises `schema.Missing` when no transition is between stages.

    In: `journey.transitions(events, col_node="stage")`.
    """
    codes = taxonomy.codes("stages")
    flow = stage_flow[stage_flow["from_step"].isin(codes) & stage_flow["to_step"].isin(codes)]
    if flow.empty:
        raise Missing("no consecutive events with a journey stage",
                      enable="events.stage, or the touchpoints' stages in the taxonomy")
    order = [s for s in codes if s in set(flow["from_step"]) | set(flow["to_step"])]
    labels = {s: taxonomy.label("stages", s, lang) for s in order}
    matrix = (flow.pivot_table(index="from_step", columns="to_step", values="probability", aggfunc="sum", fill_value=0)
              .reindex(index=order, columns=order, fill_value=0) * 100)
    leaving = flow.groupby("from_step")["transitions"].sum().reindex(order, fill_value=0)
    return matrix.rename(index=labels, columns=labels), leaving.rename(index=labels)


def stage_flow_title(stage_flow: pd.DataFrame, taxonomy, lang: str = "en") -> str:
    """The heatmap's title: the most frequent change of stage."""
    changes = stage_flow.query("from_step != to_step")
    if changes.empty:
        return "Customers stay in their stage from one event to the next"
    top = changes.iloc[0]
    return (f"Most stage changes go {taxonomy.label('stages', top['from_step'], lang).lower()} → "
            f"{taxonomy.label('stages', top['to_step'], lang).lower()}")


def describe_stage_flow(stage_flow: pd.DataFrame, taxonomy, lang: str = "en") -> str:
    """Transitions between stages and where a purchase leads (from `journey.transitions` on stages)."""
    text = f"{_many(stage_flow['transitions'].sum(), 'transition')} between consecutive events."
    after = stage_flow[stage_flow["from_step"] == "purchase"]
    if len(after):
        top = after.iloc[0]
        text += (f" After a purchase event the next event is most often in "
                 f"**{taxonomy.label('stages', top['to_step'], lang).lower()}** ({_pct(top['probability'])}).")
    return text


def describe_transitions(flow: pd.DataFrame, taxonomy, lang: str = "en") -> str:
    """The most frequent touchpoint transition (from `journey.transitions`)."""
    top = flow.iloc[0]
    return (f"The most frequent of {_int(flow['transitions'].sum())} touchpoint transitions is "
            f"{journey.step_label(top['from_step'], taxonomy, lang=lang)} → {journey.step_label(top['to_step'], taxonomy, lang=lang)} "
            f"({_int(top['transitions'])} times, {_pct(top['probability'])} of the transitions leaving it).")


def describe_paths(paths: pd.DataFrame) -> str:
    """How much of the customer base the top paths cover (from `journey.path_variants`)."""
    if len(paths) == 1 and paths["variants"].iloc[0] == 1:
        return f"Every customer follows the same path: {paths['path'].iloc[0]}."
    return (f"The {len(paths)} most common of {_int(paths['variants'].iloc[0])} path variants cover "
            f"{_pct(paths['cumulative_coverage'].iloc[-1])} of customers; the most common alone covers "
            f"{_pct(paths['coverage'].iloc[0])}.")


# --- time between steps ---------------------------------------------------------------------

def timing_chart(timing: pd.DataFrame, highlight_pair: Sequence[str], taxonomy, lang: str = "en") -> pd.DataFrame:
    """The pairs to draw: label ('Order → Activation'), days_median, days_p90, pairs, share_over
    and `highlight` (True for the pair the figure talks about: `highlight_pair` when it occurs,
    else the most frequent pair). Pairs that never occur are left out.

    In: `journey.time_between_steps(..., over_days=...)` (one row per pair, no `by`).
    """
    wanted = [_step_key(step) for step in highlight_pair] if len(highlight_pair) == 2 else ["", ""]
    chart = timing[timing["pairs"] > 0].assign(
        label=lambda d: [f"{journey.step_label(a, taxonomy, lang=lang)} → {journey.step_label(b, taxonomy, lang=lang)}"
                         for a, b in zip(d["from_step"], d["to_step"])],
        highlight=lambda d: (d["from_step"] == wanted[0]) & (d["to_step"] == wanted[1]),
    )
    if not chart["highlight"].any():
        chart = chart.assign(highlight=chart.index == chart["pairs"].idxmax())
    return chart.loc[:, ["label", "from_step", "to_step", "pairs", "days_median", "days_p90",
                         *(["share_over"] if "share_over" in chart.columns else []), "highlight"]].reset_index(drop=True)


def timing_title(chart: pd.DataFrame, slow_days: float) -> str:
    """The timing figure's title: the share of the highlighted pair slower than `slow_days`."""
    key = chart[chart["highlight"]].iloc[0]
    return f"{_pct(key['share_over'])} of {key['label'].lower()} take longer than {slow_days:g} days"


def describe_timing(chart: pd.DataFrame, slow_days: float) -> str:
    """Median, 90th percentile and slow share of the highlighted pair (from `timing_chart`)."""
    key = chart[chart["highlight"]].iloc[0]
    return (f"{key['label']} takes a median of {_days(key['days_median'])} days; 90% are done within "
            f"{_days(key['days_p90'])} days and {_pct(key['share_over'])} of {_int(key['pairs'])} take longer than "
            f"{slow_days:g} days. Set `focus` to one product (e.g. `product:Breitband`) to see its times alone.")


# --- conversion, repeat customers, campaigns --------------------------------------------------

def _interval(row) -> str:
    return f"95% interval {_pct(row['ci_low'], 1)}–{_pct(row['ci_high'], 1)}"


def describe_conversion(conversion: pd.DataFrame) -> str:
    """Leads who became customers (from `journey.conversion_rate`, one row)."""
    r = conversion.iloc[0]
    if r["converted"] == 0:
        return f"0 of {_many(r['leads'], 'lead')} converted ({_interval(r)})."
    return f"{_pct(r['rate'], 1)} of {_many(r['leads'], 'lead')} became customers ({_interval(r)})."


def describe_repeat(repeat: pd.DataFrame) -> str:
    """Buyers who ordered more than once (from `journey.repeat_customer_rate`, one row)."""
    r = repeat.iloc[0]
    if r["repeat_buyers"] == 0:
        return f"0 of {_many(r['buyers'], 'buyer')} ordered more than once ({_interval(r)})."
    return (f"{_pct(r['rate'], 1)} of {_many(r['buyers'], 'buyer')} ordered more than once "
            f"({_many(r['repeat_buyers'], 'customer')}; {_interval(r)}).")


def describe_order_intervals(intervals: pd.DataFrame) -> str:
    """Time between two orders of a customer (from `journey.order_intervals`, one row)."""
    r = intervals.iloc[0]
    return (f"Between two consecutive orders of a customer lie a median of {_days(r['days_median'])} days "
            f"(90% within {_days(r['days_p90'])} days; {_many(r['intervals'], 'interval')} of {_many(r['customers'], 'customer')}).")


def opportunities_title(rates: pd.DataFrame) -> str:
    """The opportunity figure's title (from `journey.repeat_vs_new_conversion`, no `by`)."""
    r = rates.set_index("customer_type")
    if r["converted"].sum() == 0:
        return f"0 of {_many(r['opportunities'].sum(), 'sales opportunity', 'sales opportunities')} became an order"
    if (r["opportunities"] > 0).all():
        return (f"Repeat customers convert {_pct(r.loc['repeat', 'rate'])} of opportunities, "
                f"new ones {_pct(r.loc['new', 'rate'])}")
    kind = r.index[r["opportunities"] > 0][0]
    return f"{kind.capitalize()} customers convert {_pct(r.loc[kind, 'rate'])} of opportunities"


def error_bars(rates: pd.DataFrame) -> np.ndarray:
    """Lower and upper error bar lengths in percentage points (2 × rows, never negative, 0 where empty)."""
    low = (rates["rate"] - rates["ci_low"]).clip(lower=0).fillna(0) * 100
    high = (rates["ci_high"] - rates["rate"]).clip(lower=0).fillna(0) * 100
    return np.vstack([low.to_numpy(dtype=float), high.to_numpy(dtype=float)])


def describe_opportunities(rates: pd.DataFrame) -> str:
    """Conversion of opportunities by customer type, and how they compare."""
    r = rates.set_index("customer_type")
    parts = [f"{_int(row.converted)} of {_int(row.opportunities)} opportunities of {kind} customers "
             f"became an order ({_pct(row.rate, 1)})" for kind, row in r.iterrows() if row.opportunities > 0]
    text = "; ".join(parts) + "."
    if (r["opportunities"] > 0).all() and r.loc["new", "rate"] > 0:
        text += (f" Existing customers convert an opportunity {r.loc['repeat', 'rate'] / r.loc['new', 'rate']:.1f} "
                 "times as often as new ones.")
    elif not (r["opportunities"] > 0).all():
        text += " Repeat and new customers cannot be compared: one of the groups has no opportunity."
    return text


def describe_campaigns(campaigns: pd.DataFrame, by_campaign: pd.DataFrame) -> str:
    """Campaign response overall and the range over campaigns (from `journey.campaign_response`)."""
    r = campaigns.iloc[0]
    text = f"{_pct(r['rate'], 1)} of {_many(r['sent'], 'contact')} sent responded ({_interval(r)})."
    if len(by_campaign) > 1:
        best = by_campaign.sort_values("rate", ascending=False, kind="stable").iloc[0]
        text += f" The best of {len(by_campaign)} campaigns, {best.iloc[0]}, reached {_pct(best['rate'], 1)}."
    return text


def top_campaigns(by_campaign: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The `n` campaigns with the highest response rate (from `journey.campaign_response(by=...)`)."""
    return by_campaign.sort_values(["rate", "sent"], ascending=False, kind="stable").head(n).reset_index(drop=True)


# --- lost sales and cancellations -----------------------------------------------------------

def describe_lost_sales(lost: pd.DataFrame, taxonomy, lang: str = "en") -> str:
    """Lost opportunities per step (from `journey.lost_sales`)."""
    return " ".join(f"{_pct(r.rate)} of {_int(r.opportunities)} {journey.step_label(r.step, taxonomy, lang=lang).lower()} "
                    "opportunities were lost." for r in lost.itertuples() if r.opportunities > 0)


def top_cancelled(cancelled: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The `n` groups with the most cancelled orders (from `journey.cancelled_orders`)."""
    return cancelled.sort_values(["cancelled", "orders"], ascending=False, kind="stable").head(n).reset_index(drop=True)


def describe_cancellations(cancelled: pd.DataFrame) -> str:
    """Cancelled orders overall and where most are (from `journey.cancelled_orders` by a column)."""
    total, count = int(cancelled["orders"].sum()), int(cancelled["cancelled"].sum())
    text = f"{_int(count)} of {_int(total)} orders ({_pct(count / total, 1)}) were cancelled."
    if count and len(cancelled) > 1:
        top = top_cancelled(cancelled, 1).iloc[0]
        text += f" Most cancellations are of {top.iloc[0]} ({_int(top['cancelled'])}, {_pct(top['rate'])} of its orders)."
    return text


def describe_reasons(reasons: pd.DataFrame) -> str:
    """The most common cancellation reason (from `journey.cancellation_reasons`)."""
    top = reasons.iloc[0]
    return (f"The most common cancellation reason is **{top['reason']}** ({_pct(top['share'])} of "
            f"{_int(reasons['cancelled'].sum())} cancellations).")


# --- tenure and churn -----------------------------------------------------------------------

def _tenure(days: float) -> str:
    return f"{days / 365.25:.1f} years" if days >= 2 * 365 else f"{days / DAYS_PER_MONTH:.0f} months"


def tenure_title(life: pd.DataFrame) -> str:
    """The survival figure's title: churn within the first year, or within the tenure the data covers."""
    first_year = life[life["tenure_to_days"] <= 365]
    if len(first_year) and life["tenure_to_days"].max() >= 365:
        return f"{_pct(1 - first_year['survival'].iloc[-1])} of customers churn within their first year"
    return f"{_pct(1 - life['survival'].iloc[-1])} of customers churn within {_tenure(life['tenure_to_days'].iloc[-1])}"


def survival_curve(life: pd.DataFrame) -> pd.DataFrame:
    """Points of the survival step curve: months (tenure) and active (% still active), from 0."""
    return pd.DataFrame({"months": np.r_[0, life["tenure_to_days"]] / DAYS_PER_MONTH,
                         "active": np.r_[100, life["survival"] * 100]})


def describe_tenure(life: pd.DataFrame) -> str:
    """Churn over tenure and where tenure starts (from `journey.tenure_churn`)."""
    customers = life.attrs.get("customers", int(life["at_risk"].iloc[0]))
    from_event = life.attrs.get("start_from_first_event", 0)
    churned = int(life["churned"].sum())
    text = (f"Of {_int(customers)} customers followed, {_int(churned)} churned; by a tenure of "
            f"{_tenure(life['tenure_to_days'].iloc[-1])} the life table puts the share churned at "
            f"{_pct(1 - life['survival'].iloc[-1], 1)}.")
    big = life[life["at_risk"] >= MIN_BAND]
    if churned and len(big):
        top = big.sort_values("rate", ascending=False, kind="stable").iloc[0]
        text += (f" The churn rate is highest at {_pct(top['rate'], 1)} between {_tenure(top['tenure_from_days'])} and "
                 f"{_tenure(top['tenure_to_days'])} of tenure (bands with at least {MIN_BAND} customers).")
    if from_event:
        text += " The data has no signup dates: tenure starts at each customer's first event."
    return text
