"""Words of the journey report in English and German: figure titles that state the finding and
sentences with the numbers (texts from `cxlib/locales/journey.<lang>.yml`), the key findings the report opens with, and the picks a
figure highlights. The report's tables are in `cxlib.journey_tables`.

Every function takes the aggregated frames of `cxlib.journey` (pandas, a screen full) and
returns text or a small frame; none reads data or draws. Sentences hold only true statements
on thin data: no "nan%", no "0 years", no comparison of a group with nobody in it.

    stages = journey.stage_summary(events, taxonomy, lang="de")
    journey_describe.describe_stages(stages, journey.overview(events), lang="de")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cxlib import journey, locale
from cxlib.schema import Missing

DAYS_PER_MONTH = 30.44
MIN_BAND = 100          # tenure bands with fewer customers are not named as the riskiest



def _words(lang: str = "en") -> dict:
    """The journey texts of the locale files (`cxlib/locales/journey.<lang>.yml`)."""
    return locale.texts(locale.check_lang(lang))["journey"]


def _t(key: str, lang: str, **values) -> str:
    """A journey text of the locale files in `lang`, formatted with `values`."""
    return _words(lang)[key].format(**values)


# --- formatting -----------------------------------------------------------------------------

def _pct(value, digits: int = 0, lang: str = "en") -> str:
    """A share as percent in `lang`; a share above 0 or below 1 never reads '0%' or '100%' (one more
    decimal, then '<0.1%' / '>99.9%')."""
    if value is None or pd.isna(value):
        return "–"
    shown = round(value * 100, digits)
    if 0 < value < 1 and shown in (0, 100):
        digits = max(digits, 1)
        shown = round(value * 100, digits)
        if shown in (0, 100):
            edge = locale.format_percent(0.001 if value < 0.5 else 0.999, lang, decimals=1)
            return ("<" if value < 0.5 else ">") + edge
    return locale.format_percent(value, lang, decimals=digits)


def _int(value, lang: str = "en") -> str:
    return locale.format_number(int(value), lang)


def _many(count, noun: str, lang: str = "en") -> str:
    """'1 customer', '2,714 customers' ('2.714 Kunden' in German): a count and its noun (locale `journey.nouns`)."""
    one, many = _words(lang)["nouns"][noun]
    return f"{_int(count, lang)} {one if int(count) == 1 else many}"


def _num(value, lang: str = "en", decimals: int = 1) -> str:
    return "–" if value is None or pd.isna(value) else locale.format_number(value, lang, decimals=decimals)


def _g(value, lang: str = "en") -> str:
    """A parameter like 14.0 or 2.5 as written: '14', '2.5' ('2,5' in German)."""
    return locale.format_number(float(value), lang, decimals=0 if float(value) == int(value) else 1)


def _lower(text: str, lang: str) -> str:
    """A label inside an English sentence in lower case; German nouns keep their capital."""
    return text.lower() if lang == "en" else text


def _interval(row, lang: str = "en") -> str:
    return _t("interval", lang, low=_pct(row["ci_low"], 1, lang), high=_pct(row["ci_high"], 1, lang))


def step_labels(steps: Sequence, taxonomy, lang: str = "en") -> list[str]:
    """Readable labels of funnel steps or stage codes: ['web_visit|quote'] -> ['Web visit or Quote']."""
    return [journey.step_label(step, taxonomy, lang=lang) for step in steps]


def _step_key(step) -> str:
    """A step as `journey` names it in its tables: 'order | activation' -> 'order|activation'."""
    return "|".join(c.strip() for c in str(step).split("|") if c.strip())


def path_label(path: str, taxonomy=None, lang: str = "en", section: str = "stages") -> str:
    """A path of `journey.path_variants` in words: 'awareness > purchase > …' -> 'Awareness > Purchase > …'."""
    if taxonomy is None:
        return path
    return journey.PATH_SEP.join(taxonomy.label(section, node, lang) if node != journey.UNKNOWN else
                                 _words(lang)["unknown"] for node in str(path).split(journey.PATH_SEP))


# --- the log and its stages -----------------------------------------------------------------

def describe_overview(log: pd.DataFrame, lang: str = "en") -> str:
    """The event log in one or two sentences (from `journey.overview`)."""
    r = log.iloc[0]
    if r["events"] == 0:
        return _t("log_empty", lang)
    first, last = locale.format_date(r["first"], lang), locale.format_date(r["last"], lang)
    if r["customers"] == 0:
        return _t("log_anonymous", lang, events=_many(r["events"], "event", lang), first=first, last=last)
    text = _t("log", lang, events=_many(r["events"], "event", lang), customers=_many(r["customers"], "customer", lang),
              first=first, last=last)
    without = int(r["events"] - r["events_with_customer"])
    return text + (_t("log_without", lang, events=_many(without, "event", lang)) if without else "")


def stages_title(stages: pd.DataFrame, lang: str = "en") -> str:
    """The stage figure's title: the share reaching purchase, else the stage most customers reach."""
    reached = stages[stages["customers"] > 0]
    purchase = reached[reached["stage"] == journey.PURCHASE_STAGE]
    row = purchase.iloc[0] if len(purchase) else reached.sort_values("share", ascending=False, kind="stable").iloc[0]
    return _t("stages_title", lang, share=_pct(row["share"], lang=lang), stage=_lower(row["stage_label"], lang))


def describe_stages(stages: pd.DataFrame, log: pd.DataFrame, lang: str = "en") -> str:
    """Customers per stage in lifecycle order, in one sentence (from `journey.stage_summary` in `lang`)."""
    reached = stages[stages["customers"] > 0]
    first, *rest = reached.itertuples()
    text = _t("stages", lang, customers=_many(log["customers"].iloc[0], "customer", lang),
              first=_pct(first.share, lang=lang), stage=_lower(first.stage_label, lang),
              rest="".join(_t("stages_rest", lang, share=_pct(r.share, lang=lang), stage=_lower(r.stage_label, lang))
                           for r in rest))
    absent = [_lower(label, lang) for label in stages.loc[stages["customers"] == 0, "stage_label"]]
    return text + (_t("stages_absent", lang, stages=", ".join(absent)) if absent else "")


def episodes_per_customer(episodes: pd.DataFrame) -> float:
    """Episodes per customer over all groups of `journey.episode_summary`."""
    return float(episodes["episodes"].sum() / episodes["customers"].sum())


def describe_episodes(episodes: pd.DataFrame, gap_days: float, lang: str = "en") -> str:
    """Episodes per customer and their size (from `journey.episode_summary`)."""
    return _t("episodes", lang, gap=_g(gap_days, lang), per=_num(episodes_per_customer(episodes), lang),
              events=_g(episodes["events_median"].median(), lang), days=_num(episodes["days_median"].median(), lang))


# --- funnel ---------------------------------------------------------------------------------

def funnel_title(funnel: pd.DataFrame, labels: Sequence[str], lang: str = "en") -> str:
    """The funnel figure's title: the share of starters who reach the last step."""
    if len(funnel) == 1:
        return _t("funnel_title_one", lang, customers=_many(funnel["customers"].iloc[0], "customer", lang),
                  step=_lower(labels[0], lang))
    return _t("funnel_title", lang, share=_pct(funnel["conversion"].iloc[-1], 1, lang), step=_lower(labels[-1], lang))


def _largest_drop(funnel: pd.DataFrame, labels: Sequence[str]) -> pd.Series:
    """The step after which the funnel loses the largest share of the previous step (with its label)."""
    later = funnel.iloc[1:].assign(label=list(labels[1:]))
    return later.sort_values(["step_conversion", "step_index"], kind="stable").iloc[0]


def describe_funnel(funnel: pd.DataFrame, labels: Sequence[str], lang: str = "en") -> str:
    """The largest drop between steps and the time to the last step (from `journey.funnel`)."""
    start = _many(int(funnel["customers"].iloc[0]), "customer", lang)
    if len(funnel) == 1:
        return _t("funnel_one", lang, customers=start, step=_lower(labels[0], lang))
    worst, last = _largest_drop(funnel, labels), funnel.iloc[-1]
    days, p90 = _num(last["days_median"], lang, 0), _num(last["days_p90"], lang, 0)
    if worst["drop_off"] == 0:
        return _t("funnel_all", lang, customers=start, days=days, p90=p90)
    text = _t("funnel_drop", lang, customers=start, step=worst["label"], lost=_many(worst["drop_off"], "customer", lang),
              share=_pct(1 - worst["step_conversion"], lang=lang))
    return text + (_t("funnel_nobody", lang) if last["customers"] == 0 else _t("funnel_last", lang, days=days, p90=p90))


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
        return _t("flow_title_stay", lang)
    top = changes.iloc[0]
    return _t("flow_title", lang, a=_lower(taxonomy.label("stages", top["from_step"], lang), lang),
              b=_lower(taxonomy.label("stages", top["to_step"], lang), lang))


def describe_stage_flow(stage_flow: pd.DataFrame, taxonomy, lang: str = "en") -> str:
    """Transitions between stages and where a purchase leads (from `journey.transitions` on stages)."""
    text = _t("flow", lang, transitions=_many(stage_flow["transitions"].sum(), "transition", lang))
    after = stage_flow[stage_flow["from_step"] == journey.PURCHASE_STAGE]
    if len(after):
        top = after.iloc[0]
        text += _t("flow_after", lang, purchase=_lower(taxonomy.label("stages", journey.PURCHASE_STAGE, lang), lang),
                   stage=_lower(taxonomy.label("stages", top["to_step"], lang), lang),
                   share=_pct(top["probability"], lang=lang))
    return text


def describe_transitions(flow: pd.DataFrame, taxonomy, lang: str = "en", *, stage_flow: pd.DataFrame | None = None) -> str:
    """The most frequent touchpoint transition (from `journey.transitions`), after the sentences on
    the transitions between stages when `stage_flow` is given (`describe_stage_flow`)."""
    top = flow.iloc[0]
    text = _t("transitions", lang, n=_int(flow["transitions"].sum(), lang),
              a=journey.step_label(top["from_step"], taxonomy, lang=lang),
              b=journey.step_label(top["to_step"], taxonomy, lang=lang), k=_int(top["transitions"], lang),
              share=_pct(top["probability"], lang=lang))
    return text if stage_flow is None else f"{describe_stage_flow(stage_flow, taxonomy, lang)} {text}"


def describe_paths(paths: pd.DataFrame, taxonomy=None, lang: str = "en") -> str:
    """How much of the customer base the top paths cover (from `journey.path_variants` on stages)."""
    if len(paths) == 1 and paths["variants"].iloc[0] == 1:
        return _t("paths_one", lang, path=path_label(paths["path"].iloc[0], taxonomy, lang))
    return _t("paths", lang, k=len(paths), n=_int(paths["variants"].iloc[0], lang),
              share=_pct(paths["cumulative_coverage"].iloc[-1], lang=lang), top=_pct(paths["coverage"].iloc[0], lang=lang))


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


def timing_title(chart: pd.DataFrame, slow_days: float, lang: str = "en") -> str:
    """The timing figure's title: the share of the highlighted pair slower than `slow_days`."""
    key = chart[chart["highlight"]].iloc[0]
    return _t("timing_title", lang, share=_pct(key["share_over"], lang=lang), pair=_lower(key["label"], lang),
              days=_g(slow_days, lang))


def describe_timing(timing: pd.DataFrame, highlight_pair: Sequence[str], taxonomy, slow_days: float,
                    lang: str = "en") -> str:
    """Median, 90th percentile and slow share of the highlighted pair (from `journey.time_between_steps`)."""
    chart = timing_chart(timing, highlight_pair, taxonomy, lang)
    key = chart[chart["highlight"]].iloc[0]
    return _t("timing", lang, pair=key["label"], median=_num(key["days_median"], lang), p90=_num(key["days_p90"], lang),
              share=_pct(key["share_over"], lang=lang), pairs=_int(key["pairs"], lang), slow=_g(slow_days, lang))


# --- conversion, repeat customers, campaigns --------------------------------------------------

def describe_conversion(conversion: pd.DataFrame, lang: str = "en") -> str:
    """Leads who became customers (from `journey.conversion_rate`, one row)."""
    r = conversion.iloc[0]
    key = "conversion_none" if r["converted"] == 0 else "conversion"
    return _t(key, lang, rate=_pct(r["rate"], 1, lang), leads=_many(r["leads"], "lead", lang), interval=_interval(r, lang))


def describe_order_intervals(intervals: pd.DataFrame, lang: str = "en") -> str:
    """Time between two orders of a customer (from `journey.order_intervals`, one row); '' when
    nobody ordered twice."""
    r = intervals.iloc[0]
    if r["intervals"] == 0:
        return ""
    return _t("order_intervals", lang, median=_num(r["days_median"], lang), p90=_num(r["days_p90"], lang),
              intervals=_many(r["intervals"], "interval", lang), customers=_many(r["customers"], "customer", lang))


def describe_repeat(repeat: pd.DataFrame, intervals: pd.DataFrame | None = None, lang: str = "en") -> str:
    """Buyers who ordered more than once (from `journey.repeat_customer_rate`, one row) and, with
    `intervals` (`journey.order_intervals`), the time between their orders."""
    r = repeat.iloc[0]
    key = "repeat_none" if r["repeat_buyers"] == 0 else "repeat"
    text = _t(key, lang, rate=_pct(r["rate"], 1, lang), buyers=_many(r["buyers"], "buyer", lang),
              repeaters=_many(r["repeat_buyers"], "customer", lang), interval=_interval(r, lang))
    return " ".join(part for part in (text, describe_order_intervals(intervals, lang) if intervals is not None else "") if part)


def customer_type_label(kind: str, lang: str = "en") -> str:
    """'repeat' -> 'repeat customers' ('Bestandskunden')."""
    return _words(lang)["customer_type"].get(kind, kind)


def opportunities_title(rates: pd.DataFrame, lang: str = "en") -> str:
    """The opportunity figure's title (from `journey.repeat_vs_new_conversion`, no `by`)."""
    r = rates.set_index("customer_type")
    if r["converted"].sum() == 0:
        return _t("opportunities_title_none", lang, opportunities=_many(r["opportunities"].sum(), "opportunity", lang))
    if (r["opportunities"] > 0).all():
        return _t("opportunities_title", lang, repeat=_pct(r.loc[journey.REPEAT, "rate"], lang=lang),
                  new=_pct(r.loc[journey.NEW, "rate"], lang=lang))
    kind = r.index[r["opportunities"] > 0][0]
    label = customer_type_label(kind, lang)
    return _t("opportunities_title_one", lang, kind=label[:1].upper() + label[1:], rate=_pct(r.loc[kind, "rate"], lang=lang))


def error_bars(rates: pd.DataFrame) -> np.ndarray:
    """Lower and upper error bar lengths in percentage points (2 × rows, never negative, 0 where empty)."""
    low = (rates["rate"] - rates["ci_low"]).clip(lower=0).fillna(0) * 100
    high = (rates["ci_high"] - rates["rate"]).clip(lower=0).fillna(0) * 100
    return np.vstack([low.to_numpy(dtype=float), high.to_numpy(dtype=float)])


def describe_opportunities(rates: pd.DataFrame, lang: str = "en", *, lost: pd.DataFrame | None = None,
                           taxonomy=None) -> str:
    """Conversion of opportunities by customer type (from `journey.repeat_vs_new_conversion`), how
    they compare and, with `lost` (`journey.lost_sales`), the share lost per step."""
    r = rates.set_index("customer_type")
    parts = [_t("opportunities_part", lang, converted=_int(row.converted, lang), opportunities=_int(row.opportunities, lang),
                kind=customer_type_label(kind, lang), rate=_pct(row.rate, 1, lang))
             for kind, row in r.iterrows() if row.opportunities > 0]
    text = "; ".join(parts) + "."
    if (r["opportunities"] > 0).all() and r.loc[journey.NEW, "rate"] > 0:
        ratio = r.loc[journey.REPEAT, "rate"] / r.loc[journey.NEW, "rate"]
        text += _t("opportunities_ratio", lang, ratio=_num(ratio, lang))
    elif not (r["opportunities"] > 0).all():
        text += _t("opportunities_apart", lang)
    return text if lost is None else f"{text} {describe_lost_sales(lost, taxonomy, lang)}".rstrip()


def describe_campaigns(campaigns: pd.DataFrame, by_campaign: pd.DataFrame | None = None, lang: str = "en") -> str:
    """Campaign response overall and, with `by_campaign`, the best campaign (from `journey.campaign_response`)."""
    r = campaigns.iloc[0]
    sent = _many(r["sent"], "contact", lang) if lang == "en" else _int(r["sent"], lang)
    text = _t("campaigns", lang, rate=_pct(r["rate"], 1, lang), sent=sent, interval=_interval(r, lang))
    if by_campaign is not None and len(by_campaign) > 1:
        best = by_campaign.sort_values("rate", ascending=False, kind="stable").iloc[0]
        text += _t("campaigns_best", lang, k=len(by_campaign), name=best.iloc[0], rate=_pct(best["rate"], 1, lang))
    return text


def top_campaigns(by_campaign: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The `n` campaigns with the highest response rate (from `journey.campaign_response(by=...)`)."""
    return by_campaign.sort_values(["rate", "sent"], ascending=False, kind="stable").head(n).reset_index(drop=True)


# --- lost sales and cancellations -----------------------------------------------------------

def describe_lost_sales(lost: pd.DataFrame, taxonomy, lang: str = "en") -> str:
    """Lost opportunities per step (from `journey.lost_sales`)."""
    return " ".join(_t("lost_sales", lang, rate=_pct(r.rate, lang=lang), n=_int(r.opportunities, lang),
                       step=_lower(journey.step_label(r.step, taxonomy, lang=lang), lang))
                    for r in lost.itertuples() if r.opportunities > 0)


def top_cancelled(cancelled: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The `n` groups with the most cancelled orders (from `journey.cancelled_orders`)."""
    return cancelled.sort_values(["cancelled", "orders"], ascending=False, kind="stable").head(n).reset_index(drop=True)


def describe_cancellations(cancelled: pd.DataFrame, lang: str = "en") -> str:
    """Cancelled orders overall and where most are (from `journey.cancelled_orders` by a column)."""
    total, count = int(cancelled["orders"].sum()), int(cancelled["cancelled"].sum())
    text = _t("cancellations", lang, count=_int(count, lang), total=_int(total, lang), rate=_pct(count / total, 1, lang))
    if count and len(cancelled) > 1:
        top = top_cancelled(cancelled, 1).iloc[0]
        text += _t("cancellations_top", lang, top=top.iloc[0], k=_int(top["cancelled"], lang), rate=_pct(top["rate"], lang=lang))
    return text


def reason_label(reason: str, taxonomy=None, lang: str = "en") -> str:
    """A cancellation reason in words: a contact reason code as its taxonomy label, 'unknown' in `lang`,
    free text as given."""
    if reason == journey.UNKNOWN:
        return _words(lang)["unknown"]
    return taxonomy.label("contact_reasons", reason, lang) if taxonomy is not None else reason


def describe_reasons(reasons: pd.DataFrame, taxonomy=None, lang: str = "en") -> str:
    """The most common cancellation reason (from `journey.cancellation_reasons`)."""
    top = reasons.iloc[0]
    return _t("reasons", lang, reason=reason_label(top["reason"], taxonomy, lang), share=_pct(top["share"], lang=lang),
              n=_int(reasons["cancelled"].sum(), lang))


# --- tenure and churn -----------------------------------------------------------------------

def _tenure(days: float, lang: str = "en") -> str:
    if days >= 2 * 365:
        return _t("years", lang, n=_num(days / 365.25, lang))
    return _t("months", lang, n=_num(days / DAYS_PER_MONTH, lang, 0))


def tenure_title(life: pd.DataFrame, lang: str = "en") -> str:
    """The survival figure's title: churn within the first year, or within the tenure the data covers."""
    first_year = life[life["tenure_to_days"] <= 365]
    if len(first_year) and life["tenure_to_days"].max() >= 365:
        return _t("tenure_title_year", lang, share=_pct(1 - first_year["survival"].iloc[-1], lang=lang))
    return _t("tenure_title", lang, share=_pct(1 - life["survival"].iloc[-1], lang=lang),
              tenure=_tenure(life["tenure_to_days"].iloc[-1], lang))


def survival_curve(life: pd.DataFrame) -> pd.DataFrame:
    """Points of the survival step curve: months (tenure) and active (% still active), from 0."""
    return pd.DataFrame({"months": np.r_[0, life["tenure_to_days"]] / DAYS_PER_MONTH,
                         "active": np.r_[100, life["survival"] * 100]})


def describe_tenure(life: pd.DataFrame, lang: str = "en") -> str:
    """Churn over tenure and where tenure starts (from `journey.tenure_churn`)."""
    customers = life.attrs.get("customers", int(life["at_risk"].iloc[0]))
    churned = int(life["churned"].sum())
    text = _t("tenure", lang, customers=_int(customers, lang), churned=_int(churned, lang),
              tenure=_tenure(life["tenure_to_days"].iloc[-1], lang), share=_pct(1 - life["survival"].iloc[-1], 1, lang))
    big = life[life["at_risk"] >= MIN_BAND]
    if churned and len(big):
        top = big.sort_values("rate", ascending=False, kind="stable").iloc[0]
        text += _t("tenure_peak", lang, rate=_pct(top["rate"], 1, lang), a=_tenure(top["tenure_from_days"], lang),
                   b=_tenure(top["tenure_to_days"], lang), min_n=MIN_BAND)
    return text + (_t("tenure_from_event", lang) if life.attrs.get("start_from_first_event", 0) else "")


# --- findings -------------------------------------------------------------------------------

def describe_findings(found: Mapping[str, object], taxonomy, *, log: pd.DataFrame, highlight_pair: Sequence[str],
                      slow_days: float, lang: str = "en") -> str:
    """The report's key findings as Markdown: the event log in a sentence (`describe_overview` of
    `log`), then a list from the frames the sections found (results.json keys: funnel,
    conversion_rate, repeat_customer_rate, repeat_vs_new_conversion, time_between_steps); a
    section that did not run adds no line."""
    words = _words(lang)["findings"]
    lines = []
    funnel = found.get("funnel")
    if isinstance(funnel, pd.DataFrame) and len(funnel):
        labels = step_labels(funnel["step"], taxonomy, lang)
        lines.append((words["funnel"], funnel_title(funnel, labels, lang) + ". " + describe_funnel(funnel, labels, lang)))
    if isinstance(found.get("conversion_rate"), pd.DataFrame):
        lines.append((words["conversion"], describe_conversion(found["conversion_rate"], lang)))
    if isinstance(found.get("repeat_customer_rate"), pd.DataFrame):
        lines.append((words["repeat"], describe_repeat(found["repeat_customer_rate"], lang=lang)))
    if isinstance(found.get("repeat_vs_new_conversion"), pd.DataFrame):
        lines.append((words["opportunities"], describe_opportunities(found["repeat_vs_new_conversion"], lang)))
    timing = found.get("time_between_steps")
    if isinstance(timing, pd.DataFrame) and (timing["pairs"] > 0).any():
        chart = timing_chart(timing, highlight_pair, taxonomy, lang)
        lines.append((words["timing"], timing_title(chart, slow_days, lang) + "."))
    return "\n".join([describe_overview(log, lang), "", *(f"- **{head}:** {text.strip()}" for head, text in lines)]).strip()


def parameters(lang: str = "en", **values) -> dict:
    """The parameters the report names in its parameter table, labelled in `lang` (an empty focus
    reads 'all customers'): parameters("de", slow_days=14.0) -> {'langsamer Schritt (Tage)': 14.0}."""
    words = _words(lang)["parameters"]
    return {words.get(name, name): (words["all"] if name == "focus" and not value else value) for name, value in values.items()}


def method(lang: str = "en") -> str:
    """The definitions of the report ('How this was measured') as Markdown in `lang`."""
    return _words(lang)["method"]
