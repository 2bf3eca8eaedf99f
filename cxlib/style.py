"""One source for the house colours, fonts and stylesheets, read by the figures (`cxlib.plots`) and
the HTML (`house_css()` for index.html and the stage reports, `COLOURS` for inline styles).

    style.COLOURS["negative"]        -> '#c62828'
    style.css_variables()            -> ':root { --ink:#1d2733; ... }'
    style.house_css(stage=True)      # the stylesheet of a stage report
"""

from __future__ import annotations

# Colours by meaning; the figures and the HTML use the same names.
COLOURS = {
    "primary": "#1f4e79",     # dark blue: the main series, headings, values
    "secondary": "#6c9bc9",   # light blue: comparison series, not significant
    "positive": "#2e7d32",    # green: good / promoters / magic moments
    "negative": "#c62828",    # red: bad / detractors / out of control
    "neutral": "#9e9e9e",     # grey: passives, small samples (n < min_n)
    "highlight": "#ef6c00",   # orange: the finding the title talks about, warnings
    "ink": "#1d2733",         # text
    "muted": "#5b6670",       # secondary text, captions
    "line": "#dde3e9",        # table rules, borders
    "bg": "#f6f8fa",          # table heads, tiles
    "grid": "#e0e0e0",        # figure grid
    "reference": "#333333",   # reference lines (zero, ratio 1, overall value) and interval whiskers
    "paper": "#ffffff",       # page background
    "stripe": "#fbfcfd",      # every other table row
    "hover": "#eef3f8",       # a table row under the pointer
    "negative_tint": "#fde0e0",   # background of a failed row
    "highlight_tint": "#fff0d9",  # background of a warned row
    "stopped_tint": "#fff5f5",    # background of a failure notice
}
# Order of colours for series without a meaning of their own.
SERIES = ["#1f4e79", "#ef6c00", "#2e7d32", "#6c9bc9", "#c62828", "#8e24aa", "#9e9e9e", "#00838f"]
# Sequential colour map of heatmaps (light = low).
SEQUENTIAL = "Blues"

FONT_FAMILY = "DejaVu Sans"
FONT_STACK = "'DejaVu Sans', 'Segoe UI', Helvetica, Arial, sans-serif"

# CSS custom properties: name -> colour key (the stylesheets use these names).
CSS_VARIABLES = {
    "ink": "ink", "muted": "muted", "line": "line", "bg": "bg", "blue": "primary",
    "ok": "positive", "warn": "highlight", "bad": "negative", "secondary": "secondary", "neutral": "neutral",
    "paper": "paper", "stripe": "stripe", "hover": "hover", "bad-bg": "stopped_tint",
}


def css_variables() -> str:
    """The house colours and font stack (`--font`) as a CSS `:root` rule for a stylesheet."""
    pairs = [f"--{name}:{COLOURS[key]};" for name, key in CSS_VARIABLES.items()]
    return ":root { " + " ".join([*pairs, f"--font:{FONT_STACK};"]) + " }"


# --- stylesheets: one for index.html and every stage report --------------------------------------
_INDEX_CSS = """
* { box-sizing: border-box; }
body { font-family: var(--font); color: var(--ink);
       margin: 0; background: var(--paper); line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; color: var(--blue); }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
p.meta, .muted { color: var(--muted); font-size: .9rem; }
.badge { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; font-weight: bold;
         font-size: .85rem; color: var(--paper); background: var(--muted); vertical-align: middle; }
.badge.succeeded, .badge.passed { background: var(--ok); }
.badge.warned { background: var(--warn); }
.badge.failed { background: var(--bad); }
.box { border: 1px solid var(--line); border-left: 4px solid var(--bad); background: var(--bad-bg);
       padding: .75rem 1rem; margin: 1rem 0; white-space: pre-wrap; font-family: monospace; font-size: .9rem; }
.tiles { display: flex; flex-wrap: wrap; gap: .75rem; margin: .5rem 0 1rem; }
.tile { border: 1px solid var(--line); border-radius: .4rem; padding: .6rem .9rem; min-width: 11rem; background: var(--bg); }
.tile .label { color: var(--muted); font-size: .8rem; }
.tile .value { font-size: 1.35rem; font-weight: bold; color: var(--blue); }
.tile .detail, .tile .period { color: var(--muted); font-size: .8rem; }
.tile .latest { font-size: .8rem; color: var(--ink); }
.tile .delta { font-size: .8rem; font-weight: bold; color: var(--ink); }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .88rem; display: block; max-width: 100%;
        overflow-x: auto; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .7rem; text-align: left; vertical-align: top; }
th { background: var(--bg); }
tbody tr:nth-child(even) td { background: var(--stripe); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-size: .85rem; word-break: break-all; }
a { color: var(--blue); }
footer { margin-top: 3rem; color: var(--muted); font-size: .8rem; }
details { margin: .3rem 0 .6rem; }
details > summary { cursor: pointer; font-weight: bold; color: var(--blue); margin-bottom: .3rem; }
details details { margin-left: 1rem; }
nav.toc { background: var(--bg); border: 1px solid var(--line); border-radius: .4rem; padding: .6rem 1.2rem;
          margin: 1rem 0 1.5rem; font-size: .9rem; }
nav.toc .toc-title { font-weight: bold; color: var(--muted); margin: 0 0 .3rem; }
nav.toc ol { margin: 0; padding-left: 1.2rem; columns: 2; column-gap: 2rem; }
nav.toc li { margin: .1rem 0; break-inside: avoid; }
ol.reports { padding-left: 1.4rem; }
ol.reports li { margin: .35rem 0; }
.back { font-size: .85rem; margin: 0 0 1rem; }
@media print { nav.toc, .back { display: none; } details { display: block; } }
"""

# Overrides for the JupyterLab look of the stage reports (nbconvert lab template): same fonts,
# colours, tables and width as the index.
_STAGE_CSS = """
body.jp-Notebook { --jp-content-font-family: var(--font);
                   --jp-ui-font-family: var(--jp-content-font-family); padding: 0; }
.jp-Notebook main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
.jp-Notebook .jp-Cell { padding: 0; }
.jp-Notebook .jp-MarkdownOutput { padding-left: 0; }
.jp-Notebook .jp-RenderedHTMLCommon { font-family: var(--jp-content-font-family); color: var(--ink);
                                      font-size: .95rem; line-height: 1.5; padding-right: 0; }
.jp-Notebook .jp-RenderedHTMLCommon h1 { font-size: 1.6rem; color: var(--blue); margin: 0 0 .5rem; }
.jp-Notebook .jp-RenderedHTMLCommon h2 { font-size: 1.2rem; color: var(--ink); margin: 2rem 0 .6rem;
                                         padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
.jp-Notebook .jp-RenderedHTMLCommon h3 { font-size: 1.02rem; margin: 1.2rem 0 .4rem; }
.jp-Notebook .jp-RenderedHTMLCommon table { border-collapse: collapse; border: none; margin: .4rem 0 1rem;
                                            font-size: .85rem; table-layout: auto; }
.jp-Notebook .jp-RenderedHTMLCommon th, .jp-Notebook .jp-RenderedHTMLCommon td,
.jp-Notebook .jp-RenderedHTMLCommon tr { border: none; text-align: left; vertical-align: top; }
.jp-Notebook .jp-RenderedHTMLCommon th, .jp-Notebook .jp-RenderedHTMLCommon td {
    border-bottom: 1px solid var(--line); padding: .3rem .65rem; max-width: 28rem; }
.jp-Notebook .jp-RenderedHTMLCommon table thead tr th { background: var(--bg); border-bottom: 2px solid var(--line);
                                                        text-align: left; }
.jp-Notebook .jp-RenderedHTMLCommon table thead tr th.num { text-align: right; }
.jp-Notebook .jp-RenderedHTMLCommon tbody tr:nth-child(odd) { background: var(--paper); }
.jp-Notebook .jp-RenderedHTMLCommon tbody tr:nth-child(even) { background: var(--stripe); }
.jp-Notebook .jp-RenderedHTMLCommon tbody tr:hover { background: var(--hover); }
.jp-Notebook .jp-RenderedHTMLCommon td.num, .jp-Notebook .jp-RenderedHTMLCommon th.num {
    text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.jp-Notebook .jp-OutputArea-output { overflow-x: auto; }
.jp-Notebook .jp-RenderedImage img { max-width: 100%; height: auto; }
.jp-Notebook .jp-OutputArea-output pre { white-space: pre-wrap; }
.jp-Notebook nav.toc ul { list-style: none; padding-left: 0; columns: 2; column-gap: 2rem; margin: 0; }
.jp-Notebook nav.toc li { margin: .1rem 0; break-inside: avoid; }
.cx-stopped { border: 1px solid var(--line); border-left: 4px solid var(--bad); background: var(--bad-bg);
              padding: .75rem 1rem; margin: 1rem 0; font-family: monospace; font-size: .9rem; white-space: pre-wrap; }
"""

# The parts the HTML export adds to a stage report: the findings first, the method last.
_PARTS_CSS = """
h2#cx-findings { color: var(--blue); border-bottom: 2px solid var(--blue); }
h2#cx-method { margin-top: 3rem; color: var(--muted); }
"""


def house_css(*, stage: bool = False) -> str:
    """The stylesheet of every HTML file: index.html, and (stage=True) with the overrides for the
    nbconvert lab template of the stage reports and the findings / method parts of the export."""
    return css_variables() + "\n" + _INDEX_CSS + (_STAGE_CSS + _PARTS_CSS if stage else "")
