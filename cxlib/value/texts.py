"""The words of the customer-value report in English and German (`cxlib/locales/value.<lang>.yml`):
sentence templates, figure titles, axis labels, captions, column headers and coded values. Numbers
are formatted by `cxlib.locale` before they are put in; `text(key, lang, **values)` fills a template.

    text("risk.title", "de", at_risk="3", customers="10", share=" (30 %)") -> '3 von 10 wertvollen Kunden (30 %) sind gefährdet'
"""

from __future__ import annotations

from cxlib import locale
from cxlib.value.base import date_text

def text(key: str, lang: str = "en", **values) -> str:
    """The template at dotted `key` in `lang`, filled with `values` (a dict of texts without values)."""
    node = locale.texts(locale.check_lang(lang))["value"]
    for part in key.split("."):
        node = node[part]
    return node.format(**values) if values else node


def number(value, lang: str = "en", decimals: int = 0, sign: bool = False) -> str:
    """A number with thousands grouped in the separators of `lang`: 1234.5 -> '1,235' / '1.235'."""
    return locale.format_number(value, lang, decimals=decimals, sign=sign)


def percent(share, lang: str = "en", decimals: int = 0) -> str:
    """A share 0-1 in percent: 0.6 -> '60%' / '60 %'."""
    return locale.format_percent(share, lang, decimals=decimals)


def day_text(day, lang: str = "en") -> str:
    """A day as 'YYYY-MM-DD' (en) or '30.06.2024' (de)."""
    return date_text(day) if lang == "en" else locale.format_date(day, lang)


def method(lang: str = "en") -> str:
    """The definitions of the report ('How this was measured') as Markdown in `lang`."""
    return locale.texts(locale.check_lang(lang))["value"]["method"]
