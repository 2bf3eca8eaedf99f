"""Executed notebook -> HTML report for readers: no code, no prompts, no stderr, no tracebacks;
the findings first and the method last; figures with alt text; numbers in tables in the report's
language; the house stylesheet; nothing loaded from outside the file.

A code cell tagged `findings` (cell metadata tags) moves to the top, right after the title and
purpose, under "Key findings"; cells tagged `method` (definitions, the parameters table, quality
tables) move to a closing part "How this was measured" ("So wurde gemessen" under lang de).
`cx run` loads this module as an IPython extension in every kernel (pipeline.KERNEL_EXTENSION) so
that figures carry their title and caption as alt text.

    export_html("02_feedback.ipynb", "02_feedback.html", title="Voice of the customer", back_link="index.html")
"""

from __future__ import annotations

import copy
import functools
import html
import logging
import re
from pathlib import Path

from cxlib import locale, style
from cxlib.report import write_text

FINDINGS_TAG = "findings"      # the cell whose outputs open the report
METHOD_TAG = "method"          # cells that close it under "How this was measured"
FINDINGS_ID = "cx-findings"
METHOD_ID = "cx-method"
_TOC_MARK = '<div id="cx-toc"></div>'


def _say(key: str, lang: str, **values) -> str:
    return locale.text(f"report.{key}", lang, **values)


TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE = "cx_html"
NBCONVERT_NO_ALT = "No description has been provided for this image"
_QUIET = logging.getLogger("cxlib.export.nbconvert")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
_NUMBER = re.compile(r"(?P<sign>[+\-−]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?P<pct>\s?%)?")
_MISSING_TEXT = frozenset({"nan", "NaN", "<NA>", "NaT", "None"})


def figure_alt_text(fig) -> str:
    """Alt text of a matplotlib figure: its title (suptitle, else the axes titles) and its caption
    (the other figure texts, e.g. plots.finish's 'n = … · definition'), on one line."""
    def clean(text: str) -> str:
        return " ".join(str(text).split())

    title = clean(fig.get_suptitle()) if hasattr(fig, "get_suptitle") else ""
    if not title:
        title = "; ".join(t for ax in fig.axes for loc in ("left", "center", "right") if (t := clean(ax.get_title(loc))))
    caption = " ".join(t for t in (clean(text.get_text()) for text in fig.texts) if t and t != title)
    if not title and not caption:
        labels = [clean(label) for ax in fig.axes for label in (ax.get_ylabel(), ax.get_xlabel()) if clean(label)]
        return "Figure" + (f": {', '.join(labels)}" if labels else "")
    return ". ".join(part for part in (title, caption) if part)


def load_ipython_extension(ipython) -> None:
    """IPython extension (`%load_ext cxlib.report`; `cx run` loads it in every kernel): matplotlib
    figures carry their title and caption as alt text in the output metadata, which the HTML
    export writes into <img alt=…>."""
    def alt_metadata(fig):
        return {}, {"image/png": {"alt": figure_alt_text(fig)}}

    ipython.display_formatter.mimebundle_formatter.for_type_by_name("matplotlib.figure", "Figure", alt_metadata)


def _last_heading(source: str) -> str | None:
    """The text of the last Markdown heading in `source`, without '#', numbering or emphasis."""
    found = re.findall(r"^\s{0,3}#{1,4}\s+(.+?)\s*#*\s*$", source or "", flags=re.M)
    return re.sub(r"[*_`]", "", found[-1]).strip() if found else None


def section_above(cells, index: int) -> str | None:
    """The last Markdown heading in the cells before `cells[index]` (a notebook's cells), or None."""
    found = (_last_heading(cell.get("source", "")) for cell in reversed(list(cells)[:index])
             if cell.get("cell_type") == "markdown")
    return next((heading for heading in found if heading), None)


def _reader_copy(nb, lang: str = "en"):
    """A copy of notebook `nb` for readers: stderr streams dropped, an error output replaced by a
    notice 'This stage stopped here: Name: message' (no traceback; the message names file, column
    and rows), images without alt text given 'Figure in section “…”' (the last heading above)."""
    import nbformat

    nb = copy.deepcopy(nb)
    section = None
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            section = _last_heading(cell.get("source", "")) or section
            continue
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream" and out.get("name") == "stderr":
                continue
            if kind == "error" or "traceback" in out:
                text = f"{_say('stopped', lang)}: {out.get('ename', 'Error')}: {out.get('evalue', '')}"
                out = nbformat.v4.new_output(
                    "display_data", metadata={},
                    data={"text/html": f'<div class="cx-stopped">{html.escape(text, quote=False)}</div>',
                          "text/plain": text})
            fallback = _say("figure_in", lang, section=section) if section else _say("figure", lang)
            for mime in (m for m in _IMAGE_TYPES if m in out.get("data", {})):
                meta = out.setdefault("metadata", {})
                per_mime = meta.setdefault(mime, {})
                per_mime["alt"] = per_mime.get("alt") or meta.get("alt") or fallback
            outputs.append(out)
        cell["outputs"] = outputs
    return nb


def format_table_cell(text: str, lang: str = "en", *, group: bool = True) -> tuple[str, bool]:
    """A table cell's text in the house format: (text, is_number). Numbers get thousands grouped
    (unless group=False, e.g. in a column of years) and the decimal mark of `lang`; missing values
    ('NaN', '<NA>') become '–'; True/False become yes/no (ja/nein); anything else is unchanged.

        format_table_cell("1234.5", "de") -> ('1.234,5', True); format_table_cell("12.3%", "de") -> ('12,3 %', True)
    """
    stripped = text.strip()
    if stripped in _MISSING_TEXT:
        return "–", False
    if stripped in ("True", "False"):
        return locale.texts(locale.check_lang(lang))["numbers"]["yes" if stripped == "True" else "no"], False
    match = _NUMBER.fullmatch(stripped)
    if not match:
        return text, False
    digits = match["int"].replace(",", "")
    if len(digits) > 1 and digits.startswith("0"):        # a code like 007, not a number
        return text, False
    grouped = f"{int(digits):,}" if ("," in match["int"] or group) else digits
    sign = "-" if match["sign"] in ("-", "−") else match["sign"]
    frac = f".{match['frac']}" if match["frac"] is not None else ""
    number = locale.separators(grouped + frac, lang)
    if match["pct"]:
        number = locale.texts(lang)["numbers"]["percent"].format(number=number)
    return sign + number, True


_YEAR_HEADER = re.compile(r"(?i)\b(year|jahr)")


def _in_year_column(cell) -> bool:
    """Whether a <td> sits in a column whose header names a year ('year', 'Jahr', 'signup_year')."""
    table, row = cell.find_parent("table"), cell.find_parent("tr")
    head = table.thead.find_all("tr")[-1] if table is not None and table.thead and table.thead.find_all("tr") else None
    if head is None or row is None:
        return False
    position = row.find_all(["th", "td"], recursive=False).index(cell)
    headers = head.find_all(["th", "td"], recursive=False)
    return position < len(headers) and bool(_YEAR_HEADER.search(headers[position].get_text(" ", strip=True).replace("_", " ")))


def _align_number_headers(table) -> None:
    """Mark the header of a column whose body cells are all numbers (or '–') as class 'num'."""
    head_rows = table.thead.find_all("tr") if table.thead else []
    body_rows = table.tbody.find_all("tr") if table.tbody else []
    if not head_rows or not body_rows:
        return
    headers = head_rows[-1].find_all(["th", "td"], recursive=False)
    rows = [row.find_all(["th", "td"], recursive=False) for row in body_rows]
    if any(cell.get("colspan") not in (None, "1") for cell in headers) or any(len(r) != len(headers) for r in rows):
        return
    for position, header in enumerate(headers):
        column = [row[position] for row in rows]
        numbers = ["num" in cell.get("class", []) for cell in column]
        if any(numbers) and all(n or cell.get_text(strip=True) in ("–", "") for n, cell in zip(numbers, column, strict=True)):
            header["class"] = [*header.get("class", []), "num"]


def _drop_integer_index(table) -> None:
    """Remove pandas' default row numbers (an unnamed index of integers) from a rendered table:
    every body row starts with one <th> holding an integer and every header row with an empty <th>."""
    head_rows = table.thead.find_all("tr") if table.thead else []
    body_rows = table.tbody.find_all("tr") if table.tbody else []
    if not head_rows or not body_rows:
        return
    firsts = [row.find(["th", "td"]) for row in body_rows]
    heads = [row.find(["th", "td"]) for row in head_rows]
    numbered = all(cell is not None and cell.name == "th" and not cell.get("rowspan")
                   and re.fullmatch(r"\d+", cell.get_text(strip=True)) for cell in firsts)
    unnamed = all(cell is not None and cell.name == "th" and not cell.get_text(strip=True)
                  and cell.get("colspan") in (None, "1") for cell in heads)
    if numbered and unnamed:
        for cell in (*firsts, *heads):
            cell.decompose()


def _reader_number(lang: str) -> re.Pattern:
    """A number as `cxlib.locale` writes it for readers of `lang`: '12.345,6', '-2,9', '+3', '12,3 %', '1,18×'."""
    numbers = locale.texts(lang)["numbers"]
    thousands, decimal = re.escape(numbers["thousands"]), re.escape(numbers["decimal"])
    percent = re.escape(numbers["percent"].format(number=""))
    times = re.escape(numbers["times"].format(number=""))
    return re.compile(rf"[+\-−]?(\d{{1,3}}(?:{thousands}\d{{3}})+|\d+)(?:{decimal}\d+)?(?:{percent}|{times})?")


def _preformatted(table, lang: str) -> bool:
    """Whether a rendered table holds numbers cxlib already wrote for readers (pandas writes raw
    numbers: '12345', '0.25'): a grouped number, a decimal comma, a '%' or '×' suffix, or a
    missing value shown as '–'. Only matters where the decimal mark is not pandas' '.'."""
    if locale.texts(lang)["numbers"]["decimal"] == ".":
        return False
    written = _reader_number(lang)
    texts = [str(cell.string).strip() for cell in table.find_all("td") if cell.string is not None]
    if any(t == locale.texts(lang)["numbers"]["missing"] or (written.fullmatch(t) and not _NUMBER.fullmatch(t))
           for t in texts):
        return True
    # pandas writes a column's floats with one number of decimals and integers without: a column
    # mixing '261' and '20.261' holds grouped whole numbers
    columns: dict[int, set] = {}
    for row in table.find_all("tr"):
        for position, cell in enumerate(row.find_all("td", recursive=False)):
            text = cell.get_text(strip=True)
            if re.fullmatch(r"[+\-−]?\d+(\.\d+)?", text):
                columns.setdefault(position, set()).add(len(text.partition(".")[2]))
    return any(0 in places and 3 in places for places in columns.values())


def _slug(text: str, taken: set) -> str:
    base = re.sub(r"[^\w-]+", "-", text, flags=re.U).strip("-") or "section"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def _polish(html_text: str, lang: str, *, back_link: str | None, log: logging.Logger) -> str:
    """The house touches on an exported stage report: <html lang>, a link back to the index, a
    table of contents of the h2 sections, numbers in tables in the format of `lang`, alt text on
    every image, and no reference to anything outside the file."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html_text, features="html.parser")
    if soup.html is not None:
        soup.html["lang"] = lang
    # nothing may load from outside the file (the template loads nothing; this is the safety net)
    for tag in soup.find_all(["script", "link", "iframe", "img", "source", "embed", "object"]):
        ref = tag.get("src") or tag.get("href") or tag.get("data")
        if ref and re.match(r"(?i)(https?:)?//", ref):
            log.warning("removed external reference %s from the report", ref)
            tag.decompose()
    for table in soup.find_all("table"):
        _drop_integer_index(table)
    # numbers in tables (years left ungrouped); a table cxlib already formatted for readers
    # (locale.display_table, a Styler) keeps its text: '20.261' in German is not 20.261
    for table in soup.find_all("table"):
        done = _preformatted(table, lang)
        for cell in table.find_all("td"):
            if cell.string is None:
                continue
            if done:
                is_number = bool(_reader_number(lang).fullmatch(str(cell.string).strip()))
            else:
                text, is_number = format_table_cell(str(cell.string), lang, group=not _in_year_column(cell))
                if text != str(cell.string):
                    cell.string.replace_with(text)
            if is_number:
                cell["class"] = [*cell.get("class", []), "num"]
    for table in soup.find_all("table"):
        _align_number_headers(table)
    # alt text on every image: the figure's own (metadata) or the section it sits in
    section = None
    for element in soup.find_all(["h1", "h2", "h3", "img"]):
        if element.name != "img":
            section = element.get_text(" ", strip=True).rstrip("¶").strip() or section
        elif not element.get("alt") or element["alt"] == NBCONVERT_NO_ALT:
            element["alt"] = _say("figure_in", lang, section=section) if section else _say("figure", lang)
    # table of contents of the h2 sections, after the title
    main = soup.find("main") or soup.body
    headings = main.find_all("h2") if main is not None else []
    taken = {tag["id"] for tag in soup.find_all(id=True)}
    if len(headings) >= 2:
        items = []
        for heading in headings:
            if not heading.get("id"):
                heading["id"] = _slug(heading.get_text(" ", strip=True), taken)
            text = heading.get_text(" ", strip=True).rstrip("¶").strip()
            items.append(f'<li><a href="#{html_escape(heading["id"])}">{html_escape(text)}</a></li>')
        nav = BeautifulSoup(f'<nav class="toc" aria-label="{html_escape(_say("contents", lang))}"><p class="toc-title">'
                            f'{html_escape(_say("contents", lang))}</p><ul>{"".join(items)}</ul></nav>', "html.parser")
        mark = main.find(id="cx-toc")
        title = main.find("h1")
        anchor = (mark.find_parent(class_="jp-Cell") or mark) if mark is not None else (
            title.find_parent(class_="jp-Cell") if title is not None else None)
        if anchor is not None:
            anchor.insert_after(nav)
        elif title is not None:
            title.insert_after(nav)
        else:
            main.insert(0, nav)
    if back_link and main is not None:
        back = BeautifulSoup(f'<p class="back"><a href="{html_escape(back_link)}">{html_escape(_say("back", lang))}</a></p>',
                             "html.parser")
        main.insert(0, back)
    return str(soup)


def html_escape(value) -> str:
    """HTML-escaped text of `value` ('' for None)."""
    return html.escape("" if value is None else str(value))


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags") or [])


def _heading_cell(element_id: str, text: str):
    import nbformat

    return nbformat.v4.new_markdown_cell(f'<h2 id="{element_id}">{html_escape(text)}</h2>')


def _shows_something(cell) -> bool:
    """Whether a cell shows anything in a report: a markdown cell with text, a code cell with output."""
    if cell.get("cell_type") == "markdown":
        return bool(str(cell.get("source", "")).strip())
    return bool(cell.get("outputs"))


def _only_heading(cell) -> bool:
    """A markdown cell that holds nothing but one heading (the notebook's own 'Findings' title)."""
    lines = [line for line in str(cell.get("source", "")).splitlines() if line.strip()]
    return cell.get("cell_type") == "markdown" and len(lines) == 1 and bool(re.match(r"\s{0,3}#{1,6}\s", lines[0]))


def reader_order(nb, lang: str = "en"):
    """A copy of notebook `nb` in the order a manager reads: the title and purpose (the markdown
    cells before the first code cell), then the cells tagged `findings` under the heading "Key
    findings", the contents, the sections, and last the cells tagged `method` under "How this was
    measured" ("So wurde gemessen"). A part whose cells show nothing (a stage that stopped before
    its findings) gets no heading and stays where it was; a notebook without tags keeps its order.
    A tagged markdown cell holding only a heading is replaced by the part's heading."""
    import nbformat

    nb = copy.deepcopy(nb)
    cells = list(nb.cells)
    findings = [c for c in cells if FINDINGS_TAG in _tags(c)]
    method = [c for c in cells if METHOD_TAG in _tags(c) and FINDINGS_TAG not in _tags(c)]
    if not any(_shows_something(c) for c in findings):
        findings = []
    if not any(_shows_something(c) for c in method if not _only_heading(c)):
        method = []
    moved = {id(c) for c in (*findings, *method)}
    rest = [c for c in cells if id(c) not in moved]
    top = next((i for i, c in enumerate(rest) if c.get("cell_type") != "markdown"), len(rest))
    opening = [_heading_cell(FINDINGS_ID, _say("findings", lang)), *(c for c in findings if not _only_heading(c))] \
        if findings else []
    closing = [_heading_cell(METHOD_ID, _say("method", lang)), *(c for c in method if not _only_heading(c))] \
        if method else []
    mark = [nbformat.v4.new_markdown_cell(_TOC_MARK)]
    nb.cells = [*rest[:top], *opening, *mark, *rest[top:], *closing]
    return nb


_LANG_LINE = re.compile(r"""^\s*lang\s*(?::\s*str\s*)?=\s*["']([a-z]{2})["']""", re.M)


def notebook_lang(nb, default: str = "en") -> str:
    """The report language a notebook ran with: papermill's recorded `lang` parameter, else the
    last `lang = "…"` of its parameters and injected-parameters cells, else `default`."""
    recorded = ((nb.get("metadata") or {}).get("papermill") or {}).get("parameters") or {}
    if recorded.get("lang") in locale.LANGS:
        return recorded["lang"]
    found = [m for c in nb.cells if _tags(c) & {"parameters", "injected-parameters"}
             for m in _LANG_LINE.findall(str(c.get("source", "")))]
    return found[-1] if found and found[-1] in locale.LANGS else default


@functools.lru_cache(maxsize=4)
def _exporter(log: logging.Logger):
    """nbconvert's HTML exporter with the house template, made once per log (a run exports its
    notebooks with one exporter, which keeps its loaded templates)."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES_DIR)], exclude_input=True,
                        exclude_input_prompt=True, exclude_output_prompt=True, log=log)


def export_html(
    ipynb_path: str | Path, html_path: str | Path, *, title: str | None = None, lang: str | None = None,
    back_link: str | None = None, log: logging.Logger | None = None,
) -> Path:
    """Export an executed notebook to a self-contained HTML file for readers: the findings first
    and the method last (`reader_order`), no code, no prompts, no stderr, no tracebacks (an error
    becomes one line 'stopped here: Name: message'), figures inline with alt text, the house
    stylesheet, a table of contents, numbers in tables in the format of `lang` ('en' 1,234.5 ·
    'de' 1.234,5; default: the notebook's own `lang` parameter), an optional link back to the
    index, and no reference to anything outside the file. nbconvert's notes go to `log` (default:
    discarded). Written atomically; returns `html_path`."""
    import nbformat

    log = log or _QUIET
    executed = nbformat.read(str(ipynb_path), as_version=4)
    lang = locale.check_lang(lang or notebook_lang(executed))
    nb = reader_order(_reader_copy(executed, lang), lang)
    exporter = _exporter(log)
    name = title or Path(ipynb_path).stem
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": name}, "language_code": lang, "cx_css": style.house_css(stage=True)})
    return write_text(html_path, _polish(body, lang, back_link=back_link, log=log))
