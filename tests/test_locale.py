"""cxlib.locale: one number/date formatter for both languages, column labels from the locale
files, and display tables at reader precision; cxlib.style: one colour source."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlib import locale, plots, style

ROOT = Path(__file__).resolve().parents[1]
NBSP = "\u00a0"


# --- numbers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value, kwargs, en, de", [
    (12345.6, {}, "12,346", "12.346"),
    (0.04567, {}, "0.0457", "0,0457"),
    (12.345, {}, "12.3", "12,3"),
    (3.0, {}, "3", "3"),
    (np.int64(1234567), {}, "1,234,567", "1.234.567"),
    (1234.5, {"decimals": 1}, "1,234.5", "1.234,5"),
    (-2.9154, {"decimals": 1}, "-2.9", "-2,9"),
    (-0.04, {"decimals": 1, "sign": True}, "+0.0", "+0,0"),
    (3, {"sign": True}, "+3", "+3"),
    (-0.0, {}, "0", "0"),
])
def test_format_number(value, kwargs, en, de):
    assert locale.format_number(value, "en", **kwargs) == en
    assert locale.format_number(value, "de", **kwargs) == de


@pytest.mark.parametrize("value", [None, float("nan"), math.inf, np.float64("nan"), pd.NA])
def test_missing_numbers_show_a_dash(value):
    assert locale.format_number(value) == "–"
    assert locale.format_percent(value, "de") == "–"
    assert locale.format_p(value) == "–"


def test_booleans_are_words():
    assert (locale.format_number(True), locale.format_number(np.bool_(False), "de")) == ("yes", "nein")


def test_format_percent():
    assert locale.format_percent(0.1234) == "12.3%"
    assert locale.format_percent(0.1234, "de") == f"12,3{NBSP}%"
    assert locale.format_percent(63.7, share=False) == "63.7%"
    assert locale.format_percent(0.05, decimals=0, sign=True) == "+5%"


@pytest.mark.parametrize("p, en, de", [
    (0.03907106642658213, "0.0391", "0,0391"),
    (0.4, "0.400", "0,400"),
    (1.0, "1.00", "1,00"),
    (0.001, "0.00100", "0,00100"),
    (1.22e-22, "< 0.001", "< 0,001"),
])
def test_format_p_three_significant_digits(p, en, de):
    assert (locale.format_p(p, "en"), locale.format_p(p, "de")) == (en, de)


def test_format_value_kinds():
    assert locale.format_value(1.1764937, "ratio") == "1.18×"
    assert locale.format_value(1.1764937, "ratio", "de") == f"1,18{NBSP}×"
    assert locale.format_value(5.0, "score") == "5.00"
    assert locale.format_value(988815.4478, "money", "de") == "988.815"
    assert locale.format_value(7.2111, "days") == "7.2"
    assert locale.format_value(np.True_, "flag", "de") == "ja"


# --- dates -------------------------------------------------------------------------------------
def test_format_date():
    assert locale.format_date("2025-03-31") == "31 Mar 2025"
    assert locale.format_date(pd.Timestamp("2025-03-01", tz="UTC"), "de") == "01.03.2025"
    assert locale.format_date(pd.NaT) == "–"


@pytest.mark.parametrize("period, en, de", [
    ("2024-03", "Mar 2024", "März 2024"),
    ("2024-12", "Dec 2024", "Dez. 2024"),
    ("2024Q1", "Q1 2024", "Q1 2024"),
    ("2024-01-15/2024-01-21", "week of 15 Jan 2024", "Woche ab 15.01.2024"),
    ("2024-01-15", "15 Jan 2024", "15.01.2024"),
    ("2024", "2024", "2024"),
])
def test_format_period(period, en, de):
    assert (locale.format_period(period, "en"), locale.format_period(period, "de")) == (en, de)


# --- words -------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, en, de", [
    ("diff_vs_rest", "difference to the rest", "Abstand zum Rest"),
    ("p_adjusted", "p-value (adjusted)", "p-Wert (korrigiert)"),
    ("rate_per_1000", "complaints per 1,000 active customers", "Beschwerden je 1.000 aktive Kunden"),
    ("out_of_control", "out of control", "außer Kontrolle"),
    ("ci_low", "interval from", "Intervall von"),
    ("ci_high", "interval to", "Intervall bis"),
])
def test_label(key, en, de):
    assert (locale.label(key, "en"), locale.label(key, "de")) == (en, de)


def test_unknown_key_is_shown_without_underscores():
    assert locale.label("brand_new_column", "de") == "brand new column"


def test_text_and_value_labels():
    assert locale.text("figure.small", "de", min_n=100) == "weniger als 100 Antworten"
    assert locale.value_label("signal", "above", "en") == "above the upper limit"
    assert locale.value_label("signal", "sideways", "en") == "sideways"


def test_unknown_language_is_refused():
    with pytest.raises(ValueError, match="lang must be one of en, de"):
        locale.format_number(1, "fr")


def _keys(node, prefix=""):
    if isinstance(node, dict):
        return set().union(*(_keys(v, f"{prefix}.{k}") for k, v in node.items())) | {prefix}
    return {f"{prefix}[{len(node)}]"} if isinstance(node, list) else {prefix}


def test_locale_files_hold_the_same_keys():
    assert _keys(locale.texts("en")) == _keys(locale.texts("de"))


def test_every_column_with_a_format_has_a_label():
    for lang in locale.LANGS:
        unlabelled = [k for k in locale.KINDS if k not in locale.texts(lang)["columns"]]
        assert unlabelled == [], lang


def test_locale_files_ship_with_the_package():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["cxlib"]
    files = sorted(p.relative_to(ROOT / "cxlib").as_posix() for p in (ROOT / "cxlib" / "locales").glob("*"))
    assert {"locales/de.yml", "locales/en.yml"} <= set(files)
    assert sorted(f.replace(".de.", ".en.") for f in files if f.endswith(".de.yml")) == sorted(f for f in files if f.endswith(".en.yml"))
    assert all(any(Path(f).match(p) for p in patterns) for f in files)


# --- display tables ------------------------------------------------------------------------------
@pytest.fixture
def by_segment() -> pd.DataFrame:
    return pd.DataFrame({"segment": ["business", "private"], "n": [343, 12001], "value": [-2.9154518950437316, 10.0],
                         "ci_low": [-11.161530644650929, 1.25], "diff_vs_rest": [-9.99092359315694, 9.99],
                         "p_adjusted": [0.03907106642658213, 1e-9], "significant": [True, False]})


def test_display_table_en(by_segment):
    shown = locale.display_table(by_segment, "en", kpi="nps")
    assert list(shown.columns) == ["segment", "answers", "value", "interval from", "difference to the rest",
                                   "p-value (adjusted)", "significant"]
    assert shown.to_dict(orient="list") == {
        "segment": ["business", "private"], "answers": ["343", "12,001"], "value": ["-2.9", "10.0"],
        "interval from": ["-11.2", "1.2"], "difference to the rest": ["-10.0", "+10.0"],
        "p-value (adjusted)": ["0.0391", "< 0.001"], "significant": ["yes", "no"]}


def test_display_table_de_follows_the_kpi_of_each_row(by_segment):
    rows = by_segment.assign(kpi=["csat", "ces"]).loc[:, ["segment", "kpi", "value", "diff_vs_rest"]]
    shown = locale.display_table(rows, "de")
    assert shown.to_dict(orient="list") == {
        "Segment": ["business", "private"], "Kennzahl": ["CSAT", "CES"], "Wert": [f"-2,9{NBSP}%", "10,00"],
        "Abstand zum Rest": [f"-10,0{NBSP}%", "+9,99"]}


def test_display_table_shares_codes_and_missing_values():
    table = pd.DataFrame({"moment": ["invoice_unclear", "hotline"], "reach": [0.26418, np.nan],
                          "churn_lift": [1.1765, 2.0], "signal": ["above", None], "month": ["2025-03", "2025-04"]})
    shown = locale.display_table(table, "en", codes={"moment": {"invoice_unclear": "Unclear invoice item"}},
                                 columns=["month", "moment", "reach", "churn_lift", "signal"])
    assert shown.to_dict(orient="list") == {
        "month": ["Mar 2025", "Apr 2025"], "moment of truth": ["Unclear invoice item", "hotline"],
        "reach (share of customers)": ["26.4%", "–"], "churn ratio": ["1.18×", "2.00×"],
        "signal": ["above the upper limit", "–"]}


def test_display_table_keeps_text_in_a_numeric_column():
    table = pd.DataFrame({"decile": [10, 9, "all"], "predicted": [2.5, 1.25, 1.875]})
    assert locale.display_table(table).to_dict(orient="list") == {"decile": ["10", "9", "all"],
                                                                  "predicted": ["2.5", "1.25", "1.88"]}


def test_display_table_overrides_and_leaves_the_input_alone(by_segment):
    before = by_segment.copy()
    shown = locale.display_table(by_segment, kinds={"value": "money"}, labels={"value": "NPS"}, columns=["value"])
    assert shown["NPS"].tolist() == ["-3", "10"]
    pd.testing.assert_frame_equal(by_segment, before)


def test_display_table_thin_cases(by_segment):
    empty = locale.display_table(by_segment.iloc[0:0], "de", kpi="nps")
    assert empty.empty and list(empty.columns)[:3] == ["Segment", "Antworten", "Wert"]
    one = locale.display_table(by_segment.iloc[[1]], kpi="nps")
    assert one.iloc[0].tolist() == ["private", "12,001", "10.0", "1.2", "+10.0", "< 0.001", "no"]
    unknown_kpi = locale.display_table(by_segment.iloc[[0]], columns=["value"])      # no KPI known: 3 digits
    assert unknown_kpi["value"].tolist() == ["-2.92"]
    with pytest.raises(ValueError, match="not in the table"):
        locale.display_table(by_segment, columns=["segment", "rate_per_1000"])


# --- one colour source ---------------------------------------------------------------------------
def test_style_feeds_figures_and_css():
    assert plots.PALETTE["negative"] == style.COLOURS["negative"] == "#c62828"
    css = style.css_variables()
    assert css.startswith(":root {") and css.endswith("}")
    for name, key in (("ink", "ink"), ("blue", "primary"), ("ok", "positive"), ("warn", "highlight"), ("bad", "negative")):
        assert f"--{name}:{style.COLOURS[key]};" in css
    assert f"--font:{style.FONT_STACK};" in css


def test_one_formatter_for_the_reports():
    """The HTML export and index.html format with cxlib.locale (report.py has no formatter of its own)."""
    from cxlib import report

    assert not hasattr(report, "format_number") and not hasattr(report, "format_percent")
    assert [locale.format_number(v) for v in (None, 12345.6, 12.345, 0.0213, 3.0, 1200, True)] == [
        "–", "12,346", "12.3", "0.0213", "3", "1,200", "yes"]
    assert [locale.format_number(v, "de") for v in (12345.6, 12.345, 1200, False)] == ["12.346", "12,3", "1.200", "nein"]
    assert locale.format_percent(65.678, "de", share=False) == "65,7\u00a0%"
