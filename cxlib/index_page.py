"""index.html: the run's overview page, self-contained, in the run's language and audience view.

Status at a glance with the headline tiles (each naming the period it is for), the stage reports
of the view, the parts the data could not support, what changed since the previous run
(`cxlib.compare`), then the appendix: validation, data, every recorded number and the parameters.
Every label is a human one from the locale files (`report.*`, `columns`), every number formatted
by `cxlib.locale`; machine keys stay in run.json and results.json.

    write_index(run_dir, record, results)      # -> run_dir/index.html
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path

from cxlib import locale, report, style
from cxlib.compare import is_number

# Headline tiles: results.json path, how to show the value, the summary tile of the same KPI.
# unit: "points" (NPS), "percent" (value already in %), "share" (0-1, shown in %), "score" (two
# decimals: 5.00 to 5.07, not 5 to 5.07), "count".
HEADLINES = (
    ("feedback.nps", "points", "nps"),
    ("feedback.csat", "percent", "csat"),
    ("feedback.ces", "score", "ces"),
    ("journey.conversion_rate", "share", None),
    ("journey.repeat_customer_rate", "share", None),
    ("journey.campaign_response_rate", "share", None),
    ("contact_list.included", "count", None),
)
_SKIP_SECTIONS = ("validation", "inputs", "tables", "comparison", "skipped")
_MAX_ROWS = 15
_OPEN_ROWS = 10            # short top-level tables are shown open, the rest folded (<details>)
_MAX_CHANGES = 15          # changed numbers listed open on the index; the rest folded
_MAX_CHANGES_ALL = 200     # changed numbers listed at all (all of them are in run.json)
_ACRONYMS = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "clv": "CLV", "rfm": "RFM", "fcr": "FCR", "kpi": "KPI",
             "kpis": "KPIs", "ci": "CI", "id": "ID", "sha256": "SHA-256"}
_KPIS = ("nps", "csat", "ces")
_CODES = re.compile(r"[a-z][a-z0-9_]*(?:\s*\|\s*[a-z][a-z0-9_]*)*")   # invoice_unclear, a|b: shown in words
_WHEN = re.compile(r"\d{4}-\d{2}(-\d{2}(T[\d:.]+([+-]\d{2}:\d{2}|Z)?)?)?")           # a period, date or timestamp


def _say(key: str, lang: str, **values) -> str:
    return locale.text(f"report.{key}", lang, **values)


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def status_word(status, lang: str) -> str:
    """A run or gate status in words: status_word('warned', 'de') -> 'mit Warnungen'."""
    return locale.texts(lang)["report"]["status"].get(status, status)


def audience_name(audience: str, lang: str = "en") -> str:
    """The reader-facing name of an audience view: audience_name('service', 'de') -> 'den Kundenservice'."""
    return locale.texts(locale.check_lang(lang))["report"]["audiences"].get(audience, audience)


def section_name(key: str, lang: str) -> str:
    """The name of a results.json section: section_name('complaints_after_waits') -> 'Complaints after waits'."""
    return locale.texts(lang)["report"]["sections"].get(key) or key_label(key, lang).capitalize()


def key_label(key, lang: str) -> str:
    """A results key in words: the locale's column label, else the key with spaces and acronyms
    ('fatigue_days' -> 'fatigue days', 'nps_trend' -> 'NPS trend')."""
    key = str(key)
    columns = locale.texts(lang)["columns"]
    if key in columns:
        return columns[key]
    return " ".join(_ACRONYMS.get(word.lower(), word) for word in key.replace(".", " ").replace("_", " ").split())


# --- values -------------------------------------------------------------------------------------
def _kpi_of(path: str) -> str | None:
    """The KPI a results path is about ('feedback.nps' -> 'nps'), if it names one."""
    return next((k for k in re.split(r"[._\[\], =]+", path.lower()) if k in _KPIS), None)


def value_text(value, key: str, lang: str, *, path: str = "", sign: bool = False) -> str:
    """One recorded value for readers, shown as the kind of its key (`locale.KINDS`; a KPI column
    by the KPI its path names), a number of no known kind to 3 significant digits, a text as is."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)[:200]
    if isinstance(value, str):
        word = str(locale.value_label(key, value, lang))
        if _CODES.fullmatch(word):                              # web_visit|tariff_page -> web visit → tariff page
            return re.sub(r"\s*\|\s*", " → ", word).replace("_", " ")
        if _WHEN.fullmatch(word):
            return locale.format_period(word[:10], lang)
        return word
    kind = locale.KINDS.get(key)
    if kind == "kpi":
        kind = locale.KPI_KINDS.get(_kpi_of(path) or "", "number")
    if kind in ("share",) and is_number(value) and not 0 <= value <= 1:
        kind = "number"
    if isinstance(value, bool):
        kind = "flag"
    return locale.format_value(value, kind or "number", lang, sign=sign)


def _cell(value, key: str, lang: str, *, path: str = "", kind: str | None = None) -> str:
    css = ' class="num"' if is_number(value) else ""
    text = (locale.format_value(value, kind, lang) if kind and is_number(value)
            else value_text(value, key, lang, path=path))
    return f"<td{css}>{_esc(text)}</td>"


def _interval_kinds(rows: list[dict], columns: list[str]) -> dict[str, str]:
    """ci_low / ci_high beside a share rate (conversion, rate) whose values all lie in 0-1: shown as shares."""
    def fraction(column):
        values = [row.get(column) for row in rows]
        return any(is_number(v) for v in values) and all(v is None or (is_number(v) and 0 <= v <= 1) for v in values)

    if any(c in columns and fraction(c) for c in ("conversion", "rate")):
        return {c: "share" for c in ("ci_low", "ci_high") if c in columns and fraction(c)}
    return {}


def _rows_table(rows: list[dict], lang: str, *, limit: int = _MAX_ROWS, path: str = "", keys: bool = True) -> str:
    """A results table (list of row dicts) with human headers (`keys`: the columns are results keys
    to translate; False: they are words already) and every value formatted."""
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def kpi_path(row) -> str:
        return f"{path}.{row.get('kpi')}" if isinstance(row.get("kpi"), str) else path

    head = "".join(f"<th>{_esc(key_label(c, lang) if keys else c)}</th>" for c in columns)
    kinds = _interval_kinds(rows, columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c), c, lang, path=kpi_path(row), kind=kinds.get(c)) for c in columns)
                   + "</tr>"
                   for row in rows[:limit])
    more = (f'<p class="muted">{_esc(_say("more_rows", lang, n=locale.format_number(len(rows) - limit, lang)))}</p>'
            if len(rows) > limit else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _show(number, unit: str, lang: str, *, sign: bool = False) -> str:
    """A tile's number: NPS points always signed (+6.9), as the summary shows them."""
    return locale.format_value(number, {"share": "share", "percent": "percent", "score": "score", "points": "points"}
                               .get(unit, "count"), lang, sign=sign or unit == "points")


def _tile(label: str, value: Mapping, lang: str, *, unit: str = "", key: str = "", delta: str = "",
          period: str = "", latest: str = "") -> str:
    interval = ""
    if value.get("ci_low") is not None and value.get("ci_high") is not None:
        interval = _say("interval", lang, low=_show(value["ci_low"], unit, lang), high=_show(value["ci_high"], unit, lang))
    n = f"n = {locale.format_number(value['n'], lang)}" if value.get("n") is not None else ""
    detail = " · ".join(p for p in (interval, n) if p)
    raw = value.get("value")
    data = f' data-key="{_esc(key)}" data-value="{_esc(json.dumps(raw))}"' if key else ""
    lines = [("period", period), ("detail", detail), ("latest", latest), ("delta", delta)]
    return (f'<div class="tile"{data}><div class="label">{_esc(label)}</div>'
            f'<div class="value">{_esc(_show(raw, unit, lang))}</div>'
            + "".join(f'<div class="{css}">{_esc(text)}</div>' for css, text in lines if text) + "</div>")


def _lookup(data, path: str):
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _period_of(path: str, results: Mapping, lang: str) -> str:
    """Which period a headline number is for: 'all time, 1 Jan 2024 to 31 Dec 2025' (the feedback
    analysed), 'all time' for the journey rates; '' for counts (the list as of the run)."""
    section = path.split(".")[0]
    if section == "contact_list":
        return ""
    span = _lookup(results, f"{section}.period")
    if isinstance(span, Mapping) and span.get("from") and span.get("to"):
        return _say("all_time_range", lang, start=locale.format_date(span["from"], lang),
                    end=locale.format_date(span["to"], lang))
    return _say("all_time", lang)


def _latest_of(kpi: str | None, unit: str, results: Mapping, lang: str) -> str:
    """The summary's tile of the same KPI when it is for the last period: 'Dec 2025 (last month): 10.0 · n = 552'."""
    tile = _lookup(results, f"summary.tiles.{kpi}") if kpi else None
    if not isinstance(tile, Mapping) or not tile.get("period") or not is_number(tile.get("value")):
        return ""
    kind = locale.texts(lang)["report"]["period_kinds"].get(tile.get("period_kind"), "")
    period = locale.format_period(tile["period"], lang) + (f" ({kind})" if kind else "")
    shown = _show(tile["value"], unit, lang)
    n = f" · n = {locale.format_number(tile['n'], lang)}" if tile.get("n") is not None else ""
    return _say("latest", lang, period=period, value=shown) + n


def _headline_tiles(results: Mapping, comparison: Mapping, lang: str) -> str:
    changes = {row["path"]: row for row in comparison.get("numbers") or []}
    names = locale.texts(lang)["report"]["headlines"]
    tiles = []
    for path, unit, kpi in HEADLINES:
        value = _lookup(results, path)
        if is_number(value):
            value = {"value": value}
        if not isinstance(value, Mapping) or not is_number(value.get("value")):
            continue
        delta = ""
        change = changes.get(f"{path}.value") or changes.get(path)
        if change is not None:
            amount = change["change"]
            if unit in ("share", "percent"):
                shown = locale.format_number(amount * (100 if unit == "share" else 1), lang, decimals=1, sign=True)
                shown += " " + _say("points", lang)
            else:
                shown = (locale.format_number(amount, lang, decimals=1, sign=True) if unit in ("points", "score")
                         else locale.format_number(amount, lang, sign=True))
            delta = "Δ " + _say("vs_previous", lang, change=shown)
        tiles.append(_tile(names.get(path, key_label(path, lang)), value, lang, unit=unit, key=path, delta=delta,
                           period=_period_of(path, results, lang), latest=_latest_of(kpi, unit, results, lang)))
    return '<div class="tiles">' + "".join(tiles) + "</div>" if tiles else ""


# --- results sections ---------------------------------------------------------------------------
def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def render_section(data, depth: int = 0, lang: str = "en", *, path: str = "") -> str:
    """HTML for one results section (`path` its key in results.json, 'journey'): {value, ci_low,
    ci_high, n} dicts as tiles (a headline's label and unit: a share as 11.4%, not 0.114), scalars
    as a two-column table, lists of rows as tables (first 15), nested entries folded (<details>;
    short top-level tables open). Every key in words, every number formatted for `lang`."""
    if _is_scalar(data):
        return f"<p>{_esc(value_text(data, path.rsplit('.', 1)[-1], lang, path=path))}</p>"
    if isinstance(data, list):
        if data and all(isinstance(r, Mapping) for r in data):
            return _rows_table(data, lang, path=path)
        return (f"<p>{_esc(', '.join(value_text(v, path.rsplit('.', 1)[-1], lang, path=path) for v in data))}</p>"
                if data else f"<p>{_esc(locale.texts(lang)['numbers']['missing'])}</p>")
    tiles = {k: v for k, v in data.items()
             if isinstance(v, Mapping) and "value" in v and all(_is_scalar(x) for x in v.values())}
    scalars = {k: v for k, v in data.items() if k not in tiles and _is_scalar(v)}
    nested = {k: v for k, v in data.items() if k not in tiles and k not in scalars}
    units = {p: unit for p, unit, _ in HEADLINES}
    names = locale.texts(lang)["report"]["headlines"]
    parts = []
    if tiles:
        shown = []
        for key, value in tiles.items():
            full = f"{path}.{key}" if path else str(key)
            unit = units.get(full) or {"points": "points", "percent": "percent", "share": "share", "score": "score"}.get(
                locale.KPI_KINDS.get(_kpi_of(full) or ""), "")
            if unit == "share" and not all(0 <= v <= 1 for v in (value.get("value"), value.get("ci_low"), value.get("ci_high"))
                                           if is_number(v)):
                unit = ""
            shown.append(_tile(names.get(full) or key_label(key, lang), value, lang, unit=unit))
        parts.append('<div class="tiles">' + "".join(shown) + "</div>")
    if scalars:
        rows = "".join(f"<tr><th>{_esc(key_label(k, lang))}</th>{_cell(v, k, lang, path=f'{path}.{k}')}</tr>"
                       for k, v in scalars.items())
        parts.append(f"<table><tbody>{rows}</tbody></table>")
    for key, value in nested.items():
        full = f"{path}.{key}" if path else str(key)
        inner = (render_section(value, depth + 1, lang, path=full) if depth < 3
                 else f"<p>{_esc(value_text(value, str(key), lang))}</p>")
        short = isinstance(value, list) and len(value) <= _OPEN_ROWS
        opened = " open" if depth == 0 and short else ""
        parts.append(f"<details{opened}><summary>{_esc(key_label(key, lang))}</summary>{inner}</details>")
    return "".join(parts)


# --- what changed -------------------------------------------------------------------------------
_PATH_PART = re.compile(r"([^.\[\]]+)(?:\[([^\]]*)\])?")


def path_label(path: str, lang: str) -> str:
    """A results path of `compare.numeric_leaves` in words:
    'complaints[category=billing, month=2025-01].rate_per_1000' -> 'Complaints · billing, Jan 2025 ·
    complaints per 1,000 active customers'; 'feedback.nps.value' -> 'Customer feedback · NPS'."""
    parts = _PATH_PART.findall(path)
    if not parts:
        return path
    words = []
    for position, (key, rows) in enumerate(parts):
        if position == 0:
            words.append(section_name(key, lang))
        elif not (key == "value" and position == len(parts) - 1 and len(parts) > 2):
            words.append(key_label(key, lang))
        if rows:
            pairs = [pair.partition("=") for pair in rows.split(", ")]
            words.append(", ".join(locale.format_period(v, lang) if k in ("month", "period")
                                   else str(locale.value_label(k, v, lang)) if sep else k for k, sep, v in pairs))
    return " · ".join(words)


def _last_key(path: str) -> str:
    return (_PATH_PART.findall(path) or [("", "")])[-1][0]


def _param_text(value) -> str:
    if value is None:
        return "–"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _words_table(rows: list[dict], lang: str, numeric: frozenset = frozenset()) -> str:
    """A table whose headers and cells are words already (`numeric`: columns aligned right)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f'<td{" class=" + chr(34) + "num" + chr(34) if c in numeric else ""}>'
                                    f"{_esc(row.get(c, ''))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _comparison_html(comparison: Mapping, lang: str) -> str:
    if not comparison or not comparison.get("previous_run"):
        return f"<p>{_esc(_say('no_previous', lang))}</p>"
    previous = comparison["previous_run"]
    link = f'<a href="../{_esc(previous)}/index.html"><code>{_esc(previous)}</code></a>'
    parts = [f"<p>{_say('compared_with', lang, run=link)}</p>"]
    other = comparison.get("different_dataset")
    if other:
        parts.append(f"<p>{_esc(_say('other_dataset', lang, previous=other.get('previous'), current=other.get('current')))}</p>")
        return "".join(parts)
    inputs = comparison.get("inputs") or {}
    number = locale.format_number
    if comparison.get("fingerprint_changed") is False:
        parts.append(f"<p>{_esc(_say('same_data', lang))}</p>")
    else:
        parts.append("<p>" + _esc(_say("data_changed", lang, changed=len(inputs.get("changed") or []),
                                       added=len(inputs.get("added") or []), removed=len(inputs.get("removed") or []),
                                       unchanged=inputs.get("unchanged", 0))) + "</p>")

        def state(size, sha):
            return f"{number(size, lang)} {_say('bytes', lang)} · {(sha or '')[:12]}"

        say = {k: _say(k, lang) for k in ("file", "change", "previous", "current", "changed", "added", "removed")}
        rows = ([{say["file"]: f["file"], say["change"]: say["changed"],
                  say["previous"]: state(f.get("previous_bytes"), f.get("previous_sha256")),
                  say["current"]: state(f.get("bytes"), f.get("sha256"))} for f in inputs.get("changed") or []]
                + [{say["file"]: name, say["change"]: say[kind]}
                   for kind in ("added", "removed") for name in inputs.get(kind) or []])
        if rows:
            parts.append(_words_table(rows[:_MAX_CHANGES_ALL], lang))
    notebooks = comparison.get("notebooks") or {}
    for key in ("added", "removed"):
        if notebooks.get(key):
            parts.append(f"<p>{_esc(_say('notebooks_' + key, lang, names=', '.join(notebooks[key])))}</p>")
    params = comparison.get("parameters") or []
    if params:
        parts.append(f"<h3>{_esc(_say('param_changes', lang))}</h3>")
        rows = [{_say("scope", lang): p["notebook"] or _say("run_scope", lang), _say("parameter", lang): p["parameter"],
                 _say("previous", lang): _param_text(p["previous"]), _say("current", lang): _param_text(p["current"])}
                for p in params]
        parts.append(_words_table(rows[:_MAX_CHANGES_ALL], lang))
    else:
        parts.append(f"<p>{_esc(_say('no_param_changes', lang))}</p>")
    numbers = comparison.get("numbers") or []
    compared = number(comparison.get("numbers_compared", 0), lang)
    parts.append(f"<h3>{_esc(_say('numbers_changed', lang))}</h3>")
    if not numbers:
        parts.append(f"<p>{_esc(_say('no_number_changes', lang, compared=compared))}</p>")
        return "".join(parts)
    added, removed = comparison.get("numbers_added", 0), comparison.get("numbers_removed", 0)
    extra = (_say("numbers_extra", lang, added=number(added, lang), removed=number(removed, lang))
             if added or removed else "")
    parts.append(f"<p>{_esc(_say('numbers_summary', lang, changed=number(len(numbers), lang), compared=compared, extra=extra))}</p>")
    heads = [_say(k, lang) for k in ("number", "previous", "current", "change")]

    def table(rows):
        return _words_table([dict(zip(heads, (
            path_label(r["path"], lang), value_text(r["previous"], _last_key(r["path"]), lang, path=r["path"]),
            value_text(r["current"], _last_key(r["path"]), lang, path=r["path"]),
            value_text(r["change"], _last_key(r["path"]), lang, path=r["path"], sign=True)), strict=True))
            for r in rows], lang, numeric=frozenset(heads[1:]))

    parts.append(table(numbers[:_MAX_CHANGES]))
    if len(numbers) > _MAX_CHANGES:
        shown = numbers[:_MAX_CHANGES_ALL]
        rest = number(len(numbers) - len(shown), lang)
        more = f'<p class="muted">{_esc(_say("more_in_json", lang, n=rest))}</p>' if len(numbers) > len(shown) else ""
        title = _say("more_changes", lang, n=number(len(numbers), lang))
        parts.append(f"<details><summary>{_esc(title)}</summary>{table(shown)}{more}</details>")
    return "".join(parts)


# --- the page -----------------------------------------------------------------------------------
def _section_label(key: str, lang: str, titles: Mapping[str, str] | None = None) -> str:
    """'feedback.nps_trend' -> 'Voice of the customer: NPS trend': the title of the stage whose
    notebook name holds the key's first part (`titles`: {notebook name: title in `lang`}), else
    its section name; then the rest of the key in words."""
    stage, _, rest = str(key).partition(".")
    name = next((title for nb, title in (titles or {}).items() if stage in nb.split("_", 1)[-1]), None)
    name = name or section_name(stage, lang)
    words = key_label(rest, lang) if rest else ""
    return f"{name}{' · ' if ':' in name else ': '}{words[:1].upper() + words[1:]}" if words else name


def _skipped_html(skipped, lang: str, titles: Mapping[str, str] | None = None) -> str:
    """The sections the stages skipped (results.json `skipped`: [{section, reason, enable}]) as a
    short list: what is not shown, why, and the canonical column or table that would enable it."""
    rows = [row for row in skipped or [] if isinstance(row, Mapping) and row.get("section")]
    if not rows:
        return ""
    items = "".join(
        f"<li><strong>{_esc(_section_label(row['section'], lang, titles))}</strong>: {_esc(row.get('reason') or '')}"
        + (f" ({_esc(_say('needs', lang))} <code>{_esc(row['enable'])}</code>)" if row.get("enable") else "") + "</li>"
        for row in rows)
    return f"<p>{_esc(_say('not_shown_intro', lang))}</p><ul>{items}</ul>"


def _report_item(nb: Mapping, lang: str) -> str:
    name = nb.get("title") or nb["name"]
    link = f'<a href="{_esc(nb["html"])}">{_esc(name)}</a>' if nb.get("html") else _esc(name)
    duration = (_say("seconds", lang, number=locale.format_number(nb["duration_s"], lang, decimals=1))
                if nb.get("duration_s") is not None else "–")
    status = nb.get("status") or "unknown"
    return (f'<li>{link} <span class="badge {_esc(status)}">{_esc(status_word(status, lang))}</span> '
            f'<span class="muted">{_esc(nb["name"])} · {_esc(_say("duration", lang))} {_esc(duration)}</span></li>')


def _parameters_html(params: Mapping) -> str:
    rows = "".join(f"<tr><th><code>{_esc(k)}</code></th><td><code>{_esc(v)}</code></td></tr>"
                   for k, v in report.parameters_table(params).itertuples(index=False))
    return f"<table><tbody>{rows}</tbody></table>"


def index_html(record: dict, results: dict) -> str:
    """The run's overview page (self-contained HTML) in the run's language and audience view
    (record['run_parameters'] lang / audience, record['view'] the stage reports in reading order):
    status at a glance with the headline tiles, the stage reports of the view then the others,
    the sections the stages skipped ("Not shown for this data", results['skipped']), what changed
    since the previous run (record['comparison'], see `compare.compare_runs`); then the appendix:
    validation, data fingerprint and files, every recorded number (folded), parameters."""
    record, results = report.to_jsonable(record), report.to_jsonable(results)
    run_params = record.get("run_parameters") or {}
    lang = locale.check_lang(run_params.get("lang") or "en")
    audience = run_params.get("audience") or "management"
    status = record.get("status", "unknown")
    inputs = record.get("inputs") or {}
    validation = results.get("validation") or {}
    comparison = record.get("comparison") or {}
    notebooks = record.get("notebooks") or []
    titles = {nb["name"]: nb.get("title") or nb["name"] for nb in notebooks}
    sections: list[tuple[str, str, str]] = []     # (id, title, html)

    ok = sum(1 for nb in notebooks if nb.get("status") == "succeeded")
    v_status = validation.get("status", "not run")
    fp = inputs.get("fingerprint", "")
    glance = [
        f'<p>{_esc(_say("run", lang))} <span class="badge {_esc(status)}">{_esc(status_word(status, lang))}</span> · '
        f'{_esc(_say("stages_ok", lang, ok=ok, total=len(notebooks)))} · {_esc(_say("validation", lang))} '
        f'<span class="badge {_esc(v_status)}">{_esc(status_word(v_status, lang))}</span> · {_esc(_say("fingerprint", lang))} '
        f'<code title="{_esc(fp)}">{_esc(fp[:16])}</code> · {_esc(_say("previous_run", lang))}: '
        f'<code>{_esc(comparison.get("previous_run") or _say("none", lang))}</code></p>',
    ]
    failure = record.get("failure")
    if failure:
        glance.append('<div class="box">' + _esc(_say(
            "failed_at", lang, notebook=failure.get("notebook"), where=report.failure_where(failure, lang),
            error=f"{failure.get('ename')}: {failure.get('evalue')}")) + "</div>")
    glance.append(_headline_tiles(results, comparison, lang))
    sections.append(("glance", _say("glance", lang), "".join(glance)))

    view = (record.get("view") or {}).get("reports")
    by_name = {nb["name"]: nb for nb in notebooks}
    chosen = [by_name[name] for name in (view if view is not None else list(by_name)) if name in by_name]
    others = [nb for nb in notebooks if nb not in chosen]
    reports = f'<ol class="reports">{"".join(_report_item(nb, lang) for nb in chosen)}</ol>' if chosen else "<p>–</p>"
    if others:
        reports += (f"<h3>{_esc(_say('other_reports', lang))}</h3>"
                    f'<ol class="reports">{"".join(_report_item(nb, lang) for nb in others)}</ol>')
    sections.append(("reports", _say("reports", lang, audience=audience_name(audience, lang)), reports))

    skipped = _skipped_html(results.get("skipped"), lang, titles)
    if skipped:
        sections.append(("not-shown", _say("not_shown", lang), skipped))
    sections.append(("changes", _say("changes", lang), _comparison_html(comparison, lang)))

    # the appendix: validation, data, every recorded number, parameters
    counts = {_say(k, lang): (len(validation[k]) if isinstance(validation[k], list) else validation[k])
              for k in ("checked", "warnings") if k in validation}
    failed = validation.get("failed") or []
    counts[_say("critical", lang)] = len(failed)
    part = [f'<p><span class="badge {_esc(v_status)}">{_esc(status_word(v_status, lang))}</span> '
            + _esc(", ".join(f"{k}: {locale.format_number(v, lang)}" for k, v in counts.items())) + "</p>"]
    if failed:
        part.append(render_section(failed if isinstance(failed, list) else [failed], lang=lang, path="validation.failed"))
    sections.append(("validation", _say("validation", lang), "".join(part)))

    part = [f'<p>{_esc(_say("fingerprint", lang))} <code title="{_esc(fp)}">{_esc(fp[:16])}</code> '
            f'<span class="muted">{_esc(_say("fingerprint_note", lang))}</span></p>']
    files = inputs.get("files") or []
    if files:
        part.append(_words_table([{_say("file", lang): f.get("file"), _say("bytes", lang): locale.format_number(f.get("bytes"), lang),
                                   _say("rows", lang): locale.format_number(f.get("rows"), lang),
                                   _say("sha256", lang): (f.get("sha256") or "")[:16]} for f in files], lang,
                                 numeric=frozenset({_say("bytes", lang), _say("rows", lang)})))
    tables = inputs.get("tables") or {}
    if tables:
        part.append(f"<h3>{_esc(_say('rows_per_table', lang))}</h3>" + _words_table(
            [{_say("table", lang): name, _say("rows", lang): locale.format_number(rows, lang)} for name, rows in tables.items()],
            lang, numeric=frozenset({_say("rows", lang)})))
    sections.append(("data", _say("data", lang), "".join(part)))

    folded = "".join(f'<details id="results-{_esc(key)}"><summary>{_esc(section_name(key, lang))}</summary>'
                     f"{render_section(data, lang=lang, path=key)}</details>"
                     for key, data in results.items() if key not in _SKIP_SECTIONS)
    if folded:
        sections.append(("appendix", _say("appendix", lang),
                         f'<p class="muted">{_esc(_say("appendix_intro", lang))}</p>{folded}'))

    part = [f"<h3>{_esc(_say('run_scope', lang))}</h3>{_parameters_html(run_params)}"] if run_params else []
    part += [f"<h3>{_esc(titles.get(name, name))}</h3>{_parameters_html(params)}"
             for name, params in (record.get("parameters") or {}).items()]
    sections.append(("parameters", _say("parameters", lang), "".join(part)))

    title = _say("title", lang, run_id=record.get("run_id"))
    toc = "".join(f'<li><a href="#{_esc(sid)}">{_esc(name)}</a></li>' for sid, name, _ in sections)
    head = (f"<h1>{_esc(title)}</h1>"
            f'<p class="meta">{_esc(_say("started", lang))} {_esc(record.get("started"))} · {_esc(_say("ended", lang))} '
            f'{_esc(record.get("ended"))} ({_esc(_say("utc", lang))}) · {_esc(_say("view", lang, audience=audience_name(audience, lang)))}'
            f' · {_esc(_say("project", lang))} <code>{_esc(record.get("project_dir"))}</code></p>'
            f'<nav class="toc" aria-label="{_esc(_say("contents", lang))}"><p class="toc-title">{_esc(_say("contents", lang))}</p>'
            f"<ol>{toc}</ol></nav>")
    body = "".join(f'<section id="{_esc(sid)}"><h2>{_esc(name)}</h2>{content}</section>' for sid, name, content in sections)
    versions = ", ".join(f"{k} {v}" for k, v in (record.get("packages") or {}).items() if v)
    footer = f"<footer>Python {_esc(record.get('python'))} · {_esc(versions)} · {_esc(_say('footer', lang))}</footer>"
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{style.house_css()}</style></head>"
            f"<body><main>{head}{body}{footer}</main></body></html>\n")


def write_index(run_dir: str | Path, record: dict, results: dict) -> Path:
    """Write run_dir/index.html from the run record and results (atomically)."""
    return report.write_text(Path(run_dir) / "index.html", index_html(record, results))
