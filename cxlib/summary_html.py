"""Executive summary, part 4: the HTML and Markdown a reader sees — the findings with the KPI
tiles (the first screen), one section per topic in the audience's order, and the closing notes
(what was analysed, how the tiles were measured, what is not shown, what is recorded).

Self-contained HTML (inline CSS, colours and font from `cxlib.style`, no external resources);
texts from cxlib/locales/summary.<lang>.yml, numbers through `cxlib.locale`.

    HTML(summary_html.findings_html(found, tiles, lang="de", audience="management"))
    parts = summary_html.build_sections("management", tiles=tiles, results=results, lang="de")
    Markdown(summary_html.method_note(tiles, results, as_of="2025-12-31", lang="de"))
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib import pyplot as plt

from cxlib import locale, plots, schema, style, summary_figures
from cxlib.summary import (COMPLAINT_RATE, TILE_FORMAT, audience_sections, audience_tiles, complaint_chart,
                           is_missing, kpi_text, missing_sections, period_label, rows_frame, texts, tile_period)
from cxlib.summary_findings import (complaints_finding, contact_list_finding, journey_finding, moments_finding, names,
                                    occasions_finding, signal, step_label, truth_and_magic, value_basis, value_finding)

C = style.COLOURS
_FONT = style.FONT_STACK
_TABLE = f"border-collapse:collapse;font-family:{_FONT};font-size:13px;margin:4px 0 8px"
_TH = f"padding:4px 10px;border-bottom:2px solid {C['line']};background:{C['bg']}"
_TD = f"padding:4px 10px;border-bottom:1px solid {C['line']};vertical-align:top"
_LINE = f"font-size:12px;line-height:1.4;color:{C['muted']};margin-top:3px"
_ACRONYMS = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "clv": "CLV", "rfm": "RFM", "kpi": "KPI", "kpis": "KPIs",
             "fcr": "FCR"}


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def table_html(frame: pd.DataFrame, *, numeric: Sequence[str] = ()) -> str:
    """A DataFrame of display text as an HTML table with inline CSS (numeric columns right-aligned)."""
    align = {c: ";text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap" if c in numeric
             else ";text-align:left" for c in frame.columns}
    head = "".join(f'<th scope="col" style="{_TH}{align[c]}">{_esc(c)}</th>' for c in frame.columns)
    body = "".join("<tr>" + "".join(f'<td style="{_TD}{align[c]}">{_esc(v)}</td>' for c, v in row.items()) + "</tr>"
                   for row in frame.to_dict(orient="records"))
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure_html(fig, *, alt: str) -> str:
    """A matplotlib Figure embedded as a PNG <figure> with alt text (the figure is closed)."""
    buffer = io.BytesIO()
    with plots.house_style():
        fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<figure style="margin:6px 0 10px"><img src="data:image/png;base64,{data}" alt="{_esc(alt)}" '
            f'style="max-width:100%;height:auto"></figure>')


# --- tiles -------------------------------------------------------------------------------------
def _change_colour(row: Mapping) -> str:
    if not row["significant_previous_period"] or is_missing(row["change_previous_period"]):
        return C["muted"]
    better = (row["change_previous_period"] > 0) == TILE_FORMAT[row["kpi"]]["higher_is_better"]
    return C["positive"] if better else C["negative"]


def _arrow(change) -> str:
    return "" if is_missing(change) or change == 0 else "▲ " if change > 0 else "▼ "


def _period_line(row: Mapping, lang: str, min_n: int) -> str:
    t, kpi = texts(lang), row["kpi"]
    if row.get("period_kind") == "whole":
        return ""                          # the tile says 'all time': no period to compare with
    if row["previous_n"] == 0 or is_missing(row["previous_value"]):
        return t["no_previous_data"]
    moved = t["vs_period"].format(arrow=_arrow(row["change_previous_period"]),
                                  change=kpi_text(row["change_previous_period"], kpi, lang, change=True),
                                  unit=t["change_unit"][kpi], period=period_label(row["previous_period"], lang))
    if not row["tested"]:
        verdict = t["not_tested"].format(min_n=locale.format_number(min_n, lang), unit=t["n_unit"][kpi])
    elif is_missing(row["p_adjusted"]):     # tested by the stage, which recorded its verdict only
        verdict = t["stage_verdict_significant" if row["significant_previous_period"] else "stage_verdict_not_significant"]
    else:
        p_text = locale.format_p(row["p_adjusted"], lang)
        verdict = t["significant" if row["significant_previous_period"] else "not_significant"].format(
            p=p_text if p_text.startswith("<") else f"= {p_text}")
    return f"{moved}: {verdict}"


def _run_line(row: Mapping, lang: str) -> str:
    """The change since the previous run; '' without a previous run (the method part says so once)."""
    t, kpi = texts(lang), row["kpi"]
    if not row.get("previous_run"):
        return ""
    if is_missing(row.get("previous_run_value")):
        return t["run_missing"]
    then = {"value": kpi_text(row["previous_run_value"], kpi, lang),
            "period": period_label(row.get("previous_run_period"), lang) or t["whole"]}
    if is_missing(row.get("change_previous_run")):
        return t["run_other_period"].format(**then)
    return t["vs_run"].format(change=kpi_text(row["change_previous_run"], kpi, lang, change=True),
                              unit=t["change_unit"][kpi], **then)


def _tile_html(row: Mapping, lang: str, min_n: int, confidence: float) -> str:
    t, kpi = texts(lang), row["kpi"]
    grey = bool(row["small"]) or bool(row["note"])
    box = (f"border:1px {'dashed' if grey else 'solid'} {C['line']};border-radius:6px;padding:10px 14px;"
           f"background:{C['bg']};min-width:0")
    parts = [
        f'<div style="font-size:13px;font-weight:bold;color:{C["ink"]}">{_esc(t["label"][kpi])}</div>',
        f'<div style="font-size:12px;color:{C["ink"]}">{_esc(tile_period(row, lang))}</div>',
        f'<div style="font-size:26px;font-weight:bold;color:{C["neutral"] if grey else C["primary"]};margin:4px 0 2px">'
        f'{_esc(kpi_text(row["value"], kpi, lang))}</div>',
        f'<div style="font-size:11px;color:{C["muted"]}">{_esc(t["unit"][kpi])}</div>',
    ]
    if row["note"]:
        parts.append(f'<div style="{_LINE}">{_esc(t["note"][row["note"]])}</div>')
    else:
        interval = t["interval"].format(level=locale.format_number(100 * confidence, lang),
                                        low=kpi_text(row["ci_low"], kpi, lang), high=kpi_text(row["ci_high"], kpi, lang))
        n_text = t["n"].format(n=locale.format_number(row["n"], lang, decimals=0), unit=t["n_unit"][kpi])
        parts.append(f'<div style="{_LINE}">{_esc(interval)} · {_esc(n_text)}</div>')
        if row["small"]:
            note = t["small"].format(min_n=locale.format_number(min_n, lang), unit=t["n_unit"][kpi])
            parts.append(f'<div style="{_LINE}">{_esc(note)}</div>')
        moved = _period_line(row, lang, min_n)
        parts += [f'<div style="font-size:12px;line-height:1.4;margin-top:3px;color:{_change_colour(row)}'
                  f'{";font-weight:bold" if row["significant_previous_period"] else ""}">{_esc(moved)}</div>'] if moved else []
    run = _run_line(row, lang)
    parts += [f'<div style="{_LINE}">{_esc(run)}</div>'] if run else []
    value_attr = "" if is_missing(row["value"]) else f"{float(row['value']):.6g}"
    return (f'<div role="listitem" data-kpi="{_esc(kpi)}" data-value="{value_attr}" '
            f'aria-label="{_esc(t["label"][kpi])}" style="{box}">{"".join(parts)}</div>')


def tiles_html(tiles: pd.DataFrame, *, lang: str = "en", kpis: Sequence[str] | None = None, min_n: int = 100,
               confidence: float = 0.95, caption: str = "") -> str:
    """The tiles as one self-contained HTML grid: per KPI its label and period ('latest month, Dec
    2025', 'all time'), value, unit, interval and n, the change against the previous period with
    the verdict of the test, and the change against the previous run when there is one. `kpis`
    picks and orders the tiles (default: all rows).
    Each tile carries data-kpi and data-value for machines."""
    texts(lang)
    schema.require({"kpi", "value", "period", "note", "small"} <= set(tiles.columns), "tiles: columns of kpi_tiles needed")
    rows = tiles if kpis is None else tiles.set_index("kpi").reindex([k for k in kpis if k in set(tiles["kpi"])]).reset_index()
    body = "".join(_tile_html(row, lang, min_n, confidence) for row in rows.to_dict(orient="records"))
    head = f'<div style="font-size:12px;color:{C["muted"]};margin-bottom:6px">{_esc(caption)}</div>' if caption else ""
    return (f'<div style="font-family:{_FONT};color:{C["ink"]}">{head}'
            f'<div role="list" style="display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:10px">'
            f"{body}</div></div>")


def findings_html(found: Sequence[str], tiles: pd.DataFrame, *, lang: str = "en", audience: str = "management",
                  min_n: int = 100, confidence: float = 0.95) -> str:
    """The first screen: the findings as a numbered list, then the audience's KPI tiles, each
    naming its period."""
    t = texts(lang)
    kpis = [k for k in audience_tiles(audience) if k in set(tiles["kpi"])]
    items = (f'<ol style="font-family:{_FONT};font-size:15px;line-height:1.5;margin:4px 0 12px">'
             + "".join(f"<li>{_esc(s)}</li>" for s in found) + "</ol>") if found else \
        f'<p style="font-family:{_FONT};color:{C["muted"]}">{_esc(t["findings_none"])}</p>'
    grid = tiles_html(tiles, lang=lang, kpis=kpis, min_n=min_n, confidence=confidence) if kpis else ""
    return items + grid


# --- topic sections ---------------------------------------------------------------------------
def _missing_html(name: str, lang: str) -> tuple[str, str]:
    t = texts(lang)
    text = t["missing"].format(stage=t["stage"][name])
    return f'<p style="font-family:{_FONT};color:{C["muted"]}">{_esc(text)}</p>', text


def _moments_section(results: Mapping, lang: str, labels, top: int) -> tuple[str, str]:
    t = texts(lang)
    rows = rows_frame(results.get("moments_of_truth"))
    if rows.empty:
        return _missing_html("moments", lang)
    truth, magic = truth_and_magic(rows, labels, top)
    shown = pd.concat([truth.assign(kind="truth"), magic.assign(kind="magic", rank=float("nan"))])
    table = locale.display_table(
        shown.assign(label=shown["name"], interval=[t["range"].format(
            low=locale.format_number(lo, lang, decimals=1, sign=True), high=locale.format_number(hi, lang, decimals=1, sign=True))
            for lo, hi in zip(shown["ci_low"], shown["ci_high"])]),
        lang, columns=[c for c in ("rank", "label", "kind", "reach", "nps_impact", "interval", "churn_lift", "priority")
                       if c in shown.columns or c in ("label", "interval")],
        kinds={"rank": "count", "priority": "score"}, labels=t["moments_columns"],
        codes={"kind": {"truth": t["kind_truth"], "magic": t["kind_magic"]}})
    info = results.get("moments") or {}
    figure = ""
    if len(shown):
        chart = summary_figures.moments_chart(rows.to_dict(orient="records"), labels=labels, top=top)
        fig = summary_figures.moments_figure(rows.to_dict(orient="records"), lang=lang, labels=labels, top=top,
                                             window_days=info.get("window_days"), covariates=info.get("covariates"))
        figure = figure_html(fig, alt=summary_figures.moments_alt(chart, lang))
    numeric = [t["moments_columns"][c] for c in ("rank", "reach", "nps_impact", "interval", "churn_lift", "priority")]
    body = figure + (table_html(table, numeric=numeric) if len(table) else "")
    text = " ".join(s for s in (moments_finding(results.get("moments_of_truth"), lang=lang, labels=labels),
                                t["moments_text"]) if s)
    return body, text


def _complaints_section(results: Mapping, lang: str, labels, current: str, period: str,
                        max_rows: int = 12) -> tuple[str, str]:
    t = texts(lang)
    chart, basis = complaint_chart(results)
    rows = rows_frame(chart)
    if rows.empty:
        return _missing_html("complaints", lang)
    text = " ".join([complaints_finding(chart, lang=lang, labels=labels, current_period=current, period=period,
                                        basis=basis),
                     t["complaints_text_count" if basis == "count" else "complaints_text"].format(rows=max_rows)])
    flagged = rows.loc[rows["out_of_control"].fillna(False).astype(bool)]
    if flagged.empty:
        return "", text
    flagged = (flagged.assign(signal=signal(flagged), category=names(flagged, labels, "complaint_categories", "category"))
               .sort_values(["month", "category"], ascending=[False, True], kind="stable").head(max_rows))
    flagged = flagged.assign(limit=flagged["ucl_per_1000"].where(flagged["signal"] == "above",
                                                                 flagged.get("lcl_per_1000", flagged["ucl_per_1000"])),
                             complaints=flagged.get("complaints", pd.Series(float("nan"), index=flagged.index)))
    columns = ["category", "month", "complaints", *([] if basis == "count" else ["rate_per_1000"]),
               "center_per_1000", "limit", "signal"]
    table = locale.display_table(flagged, lang, columns=columns, kinds={"limit": "points", "complaints": "count"},
                                 labels=t["complaints_columns"], codes={"signal": {"above": t["above"], "below": t["below"]}})
    numeric = [t["complaints_columns"][c] for c in columns[2:-1]]
    return table_html(table, numeric=numeric), text


def _contact_section(results: Mapping, lang: str) -> tuple[str, str]:
    t = texts(lang)
    counts = results.get("contact_list")
    if not counts or "included" not in counts:
        return _missing_html("contact_list", lang)
    keys = ["candidates", "included", "excluded_no_consent", "excluded_other"]
    table = locale.display_table(pd.DataFrame({"item": [t["contact_rows"][k] for k in keys],
                                               "customers": [counts.get(k) for k in keys]}),
                                 lang, kinds={"customers": "count"}, labels=t["contact_columns"])
    text = " ".join([contact_list_finding(counts, lang=lang),
                     t["contact_text"].format(file=counts.get("file") or "contact_list.csv",
                                              basis=counts.get("consent_basis") or "–")])
    return table_html(table, numeric=[t["contact_columns"]["customers"]]), text


def _occasions_section(results: Mapping, lang: str, confidence: float) -> tuple[str, str]:
    text = occasions_finding(results.get("campaign_relevance"), results.get("occasion_list"), lang=lang,
                             confidence=confidence)
    return _missing_html("occasions", lang) if text is None else ("", text)


def _journey_section(results: Mapping, lang: str, labels) -> tuple[str, str]:
    t = texts(lang)
    journey = results.get("journey") or {}
    keys = [k for k in ("conversion_rate", "repeat_customer_rate", "campaign_response_rate")
            if isinstance(journey.get(k), Mapping)]
    if not keys:
        return _missing_html("journey", lang)
    rates = pd.DataFrame({"rate": [t["journey_rates"][k] for k in keys],
                          "value": [journey[k].get("value") for k in keys],
                          "interval": [t["range"].format(low=locale.format_percent(journey[k].get("ci_low"), lang),
                                                         high=locale.format_percent(journey[k].get("ci_high"), lang))
                                       for k in keys],
                          "n": [journey[k].get("n") for k in keys]})
    c = t["journey_columns"]
    body = table_html(locale.display_table(rates, lang, kinds={"rate": "text", "value": "share"}, labels=c),
                      numeric=[c["value"], c["interval"], c["n"]])
    funnel = rows_frame(journey.get("funnel"))
    if len(funnel) and {"step", "customers", "conversion", "step_conversion"} <= set(funnel.columns):
        f = t["funnel_columns"]
        shown = funnel.assign(step=[step_label(s, labels) for s in funnel["step"]])
        body += table_html(locale.display_table(shown, lang, columns=["step", "customers", "conversion", "step_conversion"],
                                                kinds={"step": "text"}, labels=f),
                           numeric=[f["customers"], f["conversion"], f["step_conversion"]])
    text = " ".join(s for s in (journey_finding(journey, lang=lang, labels=labels), t["journey_text"]) if s)
    return body, text


def _value_section(results: Mapping, lang: str) -> tuple[str, str]:
    t = texts(lang)
    value = results.get("value") or {}
    clv = value.get("clv") or {}
    r = t["value_rows"]
    money = {"customers": clv.get("customers"), "median": clv.get("median"), "p90": clv.get("p90"),
             "total": clv.get("total"), "at_risk": value.get("at_risk"), "at_risk_value": value.get("at_risk_value")}
    shown = {r["basis"]: value_basis(value, lang)} if clv else {}
    shown |= {r[k]: locale.format_number(v, lang, decimals=0) for k, v in money.items() if not is_missing(v)}
    top20 = (value.get("historic") or {}).get("top20_share")
    if not is_missing(top20):
        shown[r["top20_share"]] = locale.format_percent(top20, lang, decimals=0)
    c = t["value_columns"]
    table = pd.DataFrame({c["item"]: list(shown), c["value"]: list(shown.values())})
    message = value.get("message") or value.get("model")
    text = " ".join(s for s in (value_finding(value, lang=lang),
                                t["value_text"].format(message=message) if message else "") if s)
    return table_html(table, numeric=[c["value"]]) if len(table) else "", text


def build_sections(audience: str, *, tiles: pd.DataFrame, results: Mapping, lang: str = "en",
                   labels: Mapping | None = None, period: str = "quarter", top_moments: int = 5,
                   confidence: float = 0.95) -> list[dict]:
    """The audience's topic sections in reading order that have something to show, each {name,
    title, html, text}: `html` a self-contained block (tables, an embedded figure), `text` Markdown
    interpreting it. The tiles and findings lead the report (`findings_html`); a section whose
    results are absent is left out (`skipped_note` lists it)."""
    t = texts(lang)
    current = next(iter(tiles.loc[tiles["kpi"] == COMPLAINT_RATE, "period"]), "")
    builders = {
        "moments": lambda: _moments_section(results, lang, labels, top_moments),
        "complaints": lambda: _complaints_section(results, lang, labels, current, period),
        "contact_list": lambda: _contact_section(results, lang),
        "journey": lambda: _journey_section(results, lang, labels),
        "value": lambda: _value_section(results, lang),
        "occasions": lambda: _occasions_section(results, lang, confidence),
    }
    absent = set(missing_sections(results, audience))
    return [{"name": name, "title": t["sections"][name], **dict(zip(("html", "text"), builders[name]()))}
            for name in audience_sections(audience) if name in builders and name not in absent]


# --- closing notes: how this was measured ---------------------------------------------------------
def tiles_text(tiles: pd.DataFrame, *, lang: str = "en", min_n: int = 100, confidence: float = 0.95,
               period: str = "quarter") -> str:
    """Markdown: how the tiles were measured (periods, tests, greying), then the definition of each
    KPI shown as a list."""
    t = texts(lang)
    shown = [k for k in t["definition"] if k in set(tiles["kpi"])]
    text = t["tiles_text"].format(level=locale.format_number(100 * confidence, lang), period=t["period_names"][period],
                                  complaint_test=t["test"][COMPLAINT_RATE], min_n=locale.format_number(min_n, lang))
    items = "\n".join(f"- {t['definition'][k]}" for k in shown)
    return f"{text}\n\n{t['definitions_title']}\n\n{items}" if shown else text


def analysis_note(as_of, data: pd.DataFrame, *, audience: str = "management", lang: str = "en",
                  previous_run: str = "", missing: Sequence[str] = ()) -> str:
    """Markdown: audience and language, the analysis day, the data analysed (rows per table, from
    `summary.data_period`), the previous run or that there is none, and the sections whose stage
    recorded nothing."""
    t = texts(lang)
    tables = ", ".join(t["table_rows"].format(table=t["table_names"].get(name, name),
                                              rows=locale.format_number(rows, lang, decimals=0))
                       for name, rows in data.loc[:, ["table", "rows"]].itertuples(index=False))
    day = locale.format_date(as_of, lang) if as_of else "–"
    text = t["analysed"].format(audience=t["audience"][audience], as_of=day, tables=tables or "–")
    text += t["run_compared"].format(run=previous_run) if previous_run else t["run_absent"]
    if missing:
        text += t["stages_missing"].format(sections=", ".join(t["sections"][m] for m in missing))
    return text


def method_note(tiles: pd.DataFrame, results: Mapping, *, as_of, data: pd.DataFrame, audience: str = "management",
                lang: str = "en", previous_run: str = "", min_n: int = 100, confidence: float = 0.95,
                period: str = "quarter") -> str:
    """Markdown of the closing part: what was analysed, and how the tiles were measured."""
    t = texts(lang)
    return "\n\n".join([f"### {t['analysed_title']}",
                        analysis_note(as_of, data, audience=audience, lang=lang, previous_run=previous_run,
                                      missing=missing_sections(results, audience)),
                        f"### {t['tiles_title']}",
                        tiles_text(tiles, lang=lang, min_n=min_n, confidence=confidence, period=period)])


def data_table(data: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """The rows per table of `summary.data_period` as the report shows them (names and numbers in `lang`)."""
    t = texts(lang)
    return locale.display_table(data, lang, kinds={"rows": "count"}, labels=t["data_columns"],
                                codes={"table": t["table_names"]})


def skipped_note(results: Mapping, *, audience: str = "management", lang: str = "en") -> str:
    """Markdown list of what this run does not show: the audience's sections whose stage recorded
    nothing, and the stages' sections the data could not support (results `skipped`:
    [{section, reason, enable}]); '' when nothing was left out.

        skipped_note({"skipped": [{"section": "value.rfm", "reason": "no orders", "enable": "orders"}]})
        -> "- Customer value · RFM: no orders (needs orders)."
    """
    t = texts(lang)
    lines = [t["skipped_stage"].format(section=t["sections"][name], stage=t["stage"][name])
             for name in missing_sections(results, audience)]
    groups: dict[tuple, list[str]] = {}            # one line per stage and reason: "no events" hides nine sections
    for item in results.get("skipped") or []:
        if not isinstance(item, Mapping) or not item.get("section"):
            continue
        stage, _, part = str(item["section"]).partition(".")
        key = (stage, str(item.get("reason") or "").rstrip("."), item.get("enable") or "")
        groups.setdefault(key, []).append(" ".join(_ACRONYMS.get(w, w) for w in part.replace("_", " ").split()))
    for (stage, reason, enable), parts in groups.items():
        name = t["stage_names"].get(stage) or stage.replace("_", " ").capitalize()     # a stage added later: words
        lines.append(t["skipped_item"].format(stage=name, section=", ".join(parts), reason=reason,
                                              enable=t["skipped_enable"].format(enable=enable) if enable else ""))
    return "\n".join(f"- {line}" for line in lines)


def skipped_part(results: Mapping, *, audience: str = "management", lang: str = "en") -> str:
    """The part 'Not shown for this data' (a heading and `skipped_note`), '' when nothing was left out."""
    items = skipped_note(results, audience=audience, lang=lang)
    return f"## {texts(lang)['skipped_title']}\n\n{items}" if items else ""


def recorded_note(tiles: pd.DataFrame, found: Sequence[str], *, lang: str = "en") -> str:
    """Markdown: what the notebook records in results.json."""
    t = texts(lang)
    return f"### {t['recorded_title']}\n\n" + t["recorded"].format(
        kpis=", ".join(t["label"][k] for k in tiles["kpi"]) or "–", k=len(found))
