"""One source for the house colours and fonts, read by the figures (`cxlib.plots`) and the HTML
(`css_variables()` for a stylesheet's `:root`, `COLOURS` for inline styles).

    style.COLOURS["negative"]        -> '#c62828'
    style.css_variables()            -> ':root { --ink:#1d2733; ... }'
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
}
# Order of colours for series without a meaning of their own.
SERIES = ["#1f4e79", "#ef6c00", "#2e7d32", "#6c9bc9", "#c62828", "#8e24aa", "#9e9e9e", "#00838f"]
# Sequential colour map of heatmaps (light = low).
SEQUENTIAL = "Blues"

FONT_FAMILY = "DejaVu Sans"
FONT_STACK = "'DejaVu Sans', 'Segoe UI', Helvetica, Arial, sans-serif"

# CSS custom properties: name -> colour key (the stylesheets use --ink, --muted, --line, --bg,
# --blue, --ok, --warn, --bad).
CSS_VARIABLES = {
    "ink": "ink", "muted": "muted", "line": "line", "bg": "bg", "blue": "primary",
    "ok": "positive", "warn": "highlight", "bad": "negative", "secondary": "secondary", "neutral": "neutral",
}


def css_variables() -> str:
    """The house colours and font stack (`--font`) as a CSS `:root` rule for a stylesheet."""
    pairs = [f"--{name}:{COLOURS[key]};" for name, key in CSS_VARIABLES.items()]
    return ":root { " + " ".join([*pairs, f"--font:{FONT_STACK};"]) + " }"
