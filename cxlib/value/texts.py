"""The words of the customer-value report in English and German: sentence templates, figure titles,
axis labels, captions, column headers and coded values. Numbers are formatted by `cxlib.locale`
before they are put in; `text(key, lang, **values)` fills a template.

    text("risk.title", "de", at_risk="3", customers="10", share=" (30 %)") -> '3 von 10 wertvollen Kunden (30 %) sind gefährdet'
"""

from __future__ import annotations

from cxlib import locale
from cxlib.value.base import date_text

TEXTS = {
    "en": {
        "basis": {"predicted_clv": "predicted CLV", "revenue_plus_predicted_clv": "revenue to date + predicted CLV",
                  "historic_revenue": "net revenue to date"},
        "trigger": {"moment": "negative contact", "detractor": "detractor answer", "moment+detractor": "both"},
        "historic": {
            "sentence": ("{customers} customers bought up to {day}, with {revenue} € net revenue. The top 10% brought "
                         "{top10}, the top 20% {top20}, the top half {top50}.{credit}"),
            "credit": " {n} customers have only credits or zero-value rows.",
            "title": "The top 20% of customers brought {share} of net revenue to date",
            "xlabel": "customers ranked by net revenue to date, highest first (% of customers)",
            "ylabel": "cumulative share of net revenue (%)",
            "definition": "customers with a purchase up to {day}; net revenue = completed orders, credits subtracted",
        },
        "rfm": {
            "sentence": ("{customers} customers in {segments} segments. *{lead}* is the largest by revenue: "
                         "{lead_customers} customers ({lead_share}) with {lead_revenue} of net revenue to date.{lapsed}"),
            "lapsed": (" The segments that bought often but not lately ({names}) hold {customers} customers and "
                       "{share} of revenue."),
            "no_lapsed": " No customer falls in a segment that bought often but not lately.",
            "title": "{segment} ({customers} of customers) hold {revenue} of revenue to date",
            "customers": "customers", "revenue": "net revenue",
            "value_label": "share of all customers with a purchase (%)",
            "definition": ("RFM scores 1-{bins} by rank (ties share the lower score); segments from recency and "
                           "frequency scores (config/taxonomy.yml)"),
        },
        "clv": {
            "fallback": "Total net revenue to date (the fallback value): {total} € over {customers} customers. {message}",
            "interval": "90% interval {low}–{high} €",
            "map": "a MAP fit gives point estimates only; clv_method 'mcmc' gives intervals",
            "plus": ("Total value: {total} € over {customers} customers: net revenue to date {revenue} € plus predicted "
                     "CLV of repeat purchases {predicted} € ({interval})."),
            "total": "Total predicted CLV: {total} € over {customers} customers ({interval}).",
            "top": " The ten customers of highest value:",
            "title": "Median customer worth {median} €, top 10% over {p90} €",
            "xlabel": "{basis} per customer (€; top 1% drawn at the 99th percentile)",
            "ylabel": "customers",
            "definition_fallback": "value = net revenue to date (completed orders, credits subtracted); {message}",
            "definition": ("CLV = expected purchases in {horizon} months (BG/NBD) x expected spend (Gamma-Gamma), "
                           "discounted at {rate} a year"),
        },
        "holdout": {
            "sentence": ("Over all {customers} customers the model fitted on the calibration period predicted "
                         "{predicted} repeat purchases in the {days} held-out days; {actual} happened ({error})."),
            "no_actual": "no actual purchases",
            "none": "No holdout check: {message}",
            "params": " The fitted model's parameters:",
            "title": "Holdout: {predicted} repeat purchases predicted, {actual} happened",
            "predicted": "predicted", "actual": "actual",
            "xlabel": "decile of predicted repeat purchases (10 = highest)",
            "ylabel": "repeat purchases per customer in the holdout",
            "definition": "model fitted on the data up to {months} months before {day}; purchases counted per day",
        },
        "tiers": {
            "best": ("The {tier} tier's {customers} customers hold {share} of the {basis} ({total} €, at least "
                     "{minimum} € each)"),
            "last": "; the {tier} tier's {customers} customers hold {share}",
            "title": "The {tier} tier: {customers} of customers, {value} of the value",
            "xlabel": "value tier", "ylabel": "share (%)", "customers": "customers",
            "definition": "tiers by rank of {basis}: {tiers}",
        },
        "kpi": {
            "few": "The {tier} tier has {n} {label} answers, fewer than {min_n}: not compared with the other tiers.",
            "sentence": "{label} of the {tier} tier: {value} (95% interval {low} to {high}, n = {n}){comparison}.",
            "comparison": ", {diff} against the other tiers (adjusted p {p}: {verdict})",
            "significant": "a significant difference", "not_significant": "no significant difference",
            "units": {"nps": " points", "csat": " percentage points", "ces": ""},
            "title_one": "{label} {value} in the {tier} tier (95% interval)",
            "title": "{label} {first} in the {first_tier} tier, {last} in the {last_tier} tier (95% intervals)",
            "xlabel": "value tier", "tier": "tier", "few_answers": "few answers",
            "definition": "answers of tiered customers up to {day}; grey = fewer than {min_n} answers; 95% intervals; {kpi}",
        },
        "exposure": {
            "sentence": "Share of each tier's customers with a {what} contact in {span}: {tiers}.",
            "window": "the {days} days up to {day}", "all": "all data up to {day}",
            "tier": "{tier} {share} ({exposed} of {customers})",
            "what": {"complaint": "complaint", "moment": "moment-of-truth"},
            "lead": {"complaint": " By category:",
                     "moment": " Per moment (the moments-of-truth report measures their impact):"},
            "any": {"complaint_categories": "any complaint", "contact_reasons": "any moment of truth"},
            "heading": {"complaint_categories": "complaint category", "contact_reasons": "moment of truth"},
            "title": "Complaints reached {share} of the {tier} tier in {days} days",
            "xlabel": "value tier", "ylabel": "customers with a complaint contact (%)",
            "definition": ("share of the tier's customers with at least one contact whose reason is a complaint "
                           "category, {days} days up to {day}"),
        },
        "risk": {
            "title": "{at_risk} of {customers} high-value customers{share} are at risk",
            "none": "None of the {customers} high-value customers is at risk in the window.",
            "no_customers": "No customer falls in the high tiers.",
            "sentence": ("{at_risk} of {customers} high-value customers ({share}) are at risk. They hold {value} € of "
                         "{basis}{value_share}. The list below is pseudonymous; the moments-of-truth stage writes the "
                         "consent-gated contact list."),
            "value_share": " ({share} of the high tiers')",
            "xlabel": "customers at risk (count)",
            "definition": ("tiers {tiers}; within {days} days up to {day}: negative contact = a complaint or classic "
                           "moment-of-truth contact; detractor answer = a latest NPS answer of 0-6"),
        },
        "model": {
            "fallback_name": "historic revenue (fallback)",
            "unsupported": "Model not supported: {reason}.{note}",
            "absent": " None of the CLV categories ({categories}) occurs in the orders, so the model covers all orders.",
            "holdout_reason": "Holdout check not possible: {reason} in the data before the holdout months.",
        },
        "findings": {
            "none": "No finding on customer value: the data hold no purchase to value (see the notes below).",
            "concentration": "The top 20% of customers brought {top20} of the {revenue} € net revenue to date.",
            "tier": "The {tier} tier ({customers} of customers) holds {value} of the value ({basis}).",
            "kpi": "{label}: {first} in the {first_tier} tier, {last} in the {last_tier} tier.",
            "complaints": ("{share} of the {tier} tier's customers had a complaint contact in the last {days} days "
                           "(the {last_tier} tier: {last_share})."),
            "risk": ("{at_risk} of {customers} high-value customers are at risk (a negative contact or detractor answer "
                     "in the last {days} days); they hold {value} € of {basis}."),
            "no_risk": "None of the {customers} high-value customers is at risk in the last {days} days.",
        },
        "columns": {
            "segment": "segment", "customers": "customers", "customer_share": "share of customers",
            "revenue": "net revenue (€)", "revenue_share": "share of revenue", "mean_orders": "purchases (mean)",
            "mean_recency_days": "days since last purchase (mean)", "customer_id": "customer (pseudonym)",
            "orders": "purchases", "tenure_days": "days since first purchase", "recency_days": "days since last purchase",
            "expected_purchases": "expected purchases", "p_alive": "P(active)", "expected_spend": "expected spend (€)",
            "clv": "predicted CLV (€)", "clv_low": "CLV 90% from (€)", "clv_high": "CLV 90% to (€)",
            "value": "value (€)", "model": "model", "parameter": "parameter", "estimate": "estimate",
            "ci_low": "90% from", "ci_high": "90% to", "value_tier": "value tier", "value_total": "total value (€)",
            "value_share": "share of value", "value_mean": "mean value (€)", "value_min": "lowest value (€)",
            "value_max": "highest value (€)", "last_negative_contact": "last negative contact",
            "negative_contacts": "negative contacts", "latest_nps": "latest NPS answer", "detractor": "detractor",
            "trigger": "trigger", "decile": "decile", "predicted": "predicted", "actual": "actual",
            "predicted_mean": "predicted per customer", "actual_mean": "actual per customer", "error_pct": "error (%)",
            "holdout_days": "held-out days",
        },
        "parameters": {
            "as_of": "as of", "rfm_bins": "RFM levels", "tiers": "value tiers (share of customers)",
            "high_tiers": "high tiers", "horizon_months": "CLV horizon (months)",
            "annual_discount_rate": "discount rate per year", "holdout_months": "holdout (months)",
            "clv_method": "CLV fit", "min_repeat_buyers": "minimum repeat buyers",
            "clv_categories": "CLV order categories", "all_orders": "all orders", "engine": "engine",
            "exposure_days": "exposure window (days)", "at_risk_days": "at-risk window (days)",
            "min_tier_answers": "minimum answers per tier",
        },
    },
    "de": {
        "basis": {"predicted_clv": "vorhergesagter CLV",
                  "revenue_plus_predicted_clv": "Umsatz bis heute + vorhergesagter CLV",
                  "historic_revenue": "Nettoumsatz bis heute"},
        "trigger": {"moment": "negativer Kontakt", "detractor": "Kritiker-Antwort", "moment+detractor": "beides"},
        "historic": {
            "sentence": ("{customers} Kunden haben bis {day} gekauft, mit {revenue} € Nettoumsatz. Die besten 10\u00a0% "
                         "brachten {top10}, die besten 20\u00a0% {top20}, die bessere Hälfte {top50}.{credit}"),
            "credit": " {n} Kunden haben nur Gutschriften oder Zeilen ohne Betrag.",
            "title": "Die besten 20\u00a0% der Kunden brachten {share} des Nettoumsatzes bis heute",
            "xlabel": "Kunden nach Nettoumsatz bis heute, höchster zuerst (% der Kunden)",
            "ylabel": "kumulierter Anteil am Nettoumsatz (%)",
            "definition": "Kunden mit einem Kauf bis {day}; Nettoumsatz = abgeschlossene Bestellungen abzüglich Gutschriften",
        },
        "rfm": {
            "sentence": ("{customers} Kunden in {segments} Segmenten. *{lead}* ist nach Umsatz das größte: "
                         "{lead_customers} Kunden ({lead_share}) mit {lead_revenue} des Nettoumsatzes bis heute.{lapsed}"),
            "lapsed": (" Die Segmente, die oft, aber länger nicht gekauft haben ({names}), umfassen {customers} Kunden "
                       "und {share} des Umsatzes."),
            "no_lapsed": " Kein Kunde fällt in ein Segment, das oft, aber länger nicht gekauft hat.",
            "title": "{segment} ({customers} der Kunden) halten {revenue} des Umsatzes bis heute",
            "customers": "Kunden", "revenue": "Nettoumsatz",
            "value_label": "Anteil an allen Kunden mit Kauf (%)",
            "definition": ("RFM-Werte 1-{bins} nach Rang (Gleichstand teilt den niedrigeren Wert); Segmente aus "
                           "Aktualitäts- und Häufigkeitswert (config/taxonomy.yml)"),
        },
        "clv": {
            "fallback": "Nettoumsatz bis heute insgesamt (der Ersatzwert): {total} € über {customers} Kunden. {message}",
            "interval": "90-%-Intervall {low}–{high} €",
            "map": "eine MAP-Schätzung liefert nur Punktwerte; clv_method 'mcmc' liefert Intervalle",
            "plus": ("Wert insgesamt: {total} € über {customers} Kunden: Nettoumsatz bis heute {revenue} € plus "
                     "vorhergesagter CLV der Wiederholungskäufe {predicted} € ({interval})."),
            "total": "Vorhergesagter CLV insgesamt: {total} € über {customers} Kunden ({interval}).",
            "top": " Die zehn Kunden mit dem höchsten Wert:",
            "title": "Der mittlere Kunde ist {median} € wert, die besten 10\u00a0% über {p90} €",
            "xlabel": "{basis} je Kunde (€; oberstes 1 % beim 99. Perzentil gezeichnet)",
            "ylabel": "Kunden",
            "definition_fallback": ("Wert = Nettoumsatz bis heute (abgeschlossene Bestellungen abzüglich Gutschriften); "
                                    "{message}"),
            "definition": ("CLV = erwartete Käufe in {horizon} Monaten (BG/NBD) × erwarteter Betrag je Kauf "
                           "(Gamma-Gamma), abgezinst mit {rate} pro Jahr"),
        },
        "holdout": {
            "sentence": ("Über alle {customers} Kunden sagte das auf dem Kalibrierungszeitraum geschätzte Modell "
                         "{predicted} Wiederholungskäufe in den {days} zurückgehaltenen Tagen voraus; {actual} fanden "
                         "statt ({error})."),
            "no_actual": "keine tatsächlichen Käufe",
            "none": "Keine Holdout-Prüfung: {message}",
            "params": " Die Parameter des geschätzten Modells:",
            "title": "Holdout: {predicted} Wiederholungskäufe vorhergesagt, {actual} fanden statt",
            "predicted": "vorhergesagt", "actual": "tatsächlich",
            "xlabel": "Dezil der vorhergesagten Wiederholungskäufe (10 = höchstes)",
            "ylabel": "Wiederholungskäufe je Kunde im Holdout",
            "definition": "Modell geschätzt auf den Daten bis {months} Monate vor dem {day}; Käufe je Tag gezählt",
        },
        "tiers": {
            "best": ("Die {customers} Kunden der Stufe {tier} halten {share} des Werts ({basis}; {total} €, "
                     "jeweils mindestens {minimum} €)"),
            "last": "; die {customers} Kunden der Stufe {tier} halten {share}",
            "title": "Stufe {tier}: {customers} der Kunden, {value} des Werts",
            "xlabel": "Wertstufe", "ylabel": "Anteil (%)", "customers": "Kunden",
            "definition": "Stufen nach Rang von {basis}: {tiers}",
        },
        "kpi": {
            "few": ("Die Stufe {tier} hat {n} {label}-Antworten, weniger als {min_n}: nicht mit den anderen Stufen "
                    "verglichen."),
            "sentence": "{label} der Stufe {tier}: {value} (95-%-Intervall {low} bis {high}, n = {n}){comparison}.",
            "comparison": ", {diff} gegenüber den anderen Stufen (adjustiertes p {p}: {verdict})",
            "significant": "ein signifikanter Unterschied", "not_significant": "kein signifikanter Unterschied",
            "units": {"nps": " Punkte", "csat": " Prozentpunkte", "ces": ""},
            "title_one": "{label} {value} in der Stufe {tier} (95-%-Intervall)",
            "title": "{label} {first} in der Stufe {first_tier}, {last} in der Stufe {last_tier} (95-%-Intervalle)",
            "xlabel": "Wertstufe", "tier": "Stufe", "few_answers": "wenige Antworten",
            "axis": {"nps": "NPS (Punkte)", "csat": "CSAT (%)", "ces": "CES (auf 1-7)"},
            "kpi_definitions": {
                "nps": ("NPS = % Promotoren (9-10) - % Kritiker (0-6) auf 0-10, von -100 bis +100; 95-%-Intervall "
                        "nach adjustiertem Wald"),
                "csat": "CSAT = % der Antworten in den oberen zwei Punkten ihrer Skala; 95-%-Wilson-Intervall",
                "ces": "CES = mittlerer Aufwandswert auf 1-7 (höher = leichter); 95-%-t-Intervall",
            },
            "definition": ("Antworten von Kunden mit Wertstufe bis {day}; grau = weniger als {min_n} Antworten; "
                           "95-%-Intervalle; {kpi}"),
        },
        "exposure": {
            "sentence": "Anteil der Kunden je Stufe mit einem Kontakt ({what}) in {span}: {tiers}.",
            "window": "den {days} Tagen bis {day}", "all": "allen Daten bis {day}",
            "tier": "{tier} {share} ({exposed} von {customers})",
            "what": {"complaint": "Beschwerde", "moment": "Moment der Wahrheit"},
            "lead": {"complaint": " Nach Kategorie:",
                     "moment": " Je Moment (die Wirkung misst der Bericht zu den Momenten der Wahrheit):"},
            "any": {"complaint_categories": "jede Beschwerde", "contact_reasons": "jeder Moment der Wahrheit"},
            "heading": {"complaint_categories": "Beschwerdekategorie", "contact_reasons": "Moment der Wahrheit"},
            "title": "Beschwerden erreichten {share} der Stufe {tier} in {days} Tagen",
            "xlabel": "Wertstufe", "ylabel": "Kunden mit Beschwerdekontakt (%)",
            "definition": ("Anteil der Kunden der Stufe mit mindestens einem Kontakt, dessen Grund eine "
                           "Beschwerdekategorie ist, {days} Tage bis {day}"),
        },
        "risk": {
            "title": "{at_risk} von {customers} wertvollen Kunden{share} sind gefährdet",
            "none": "Keiner der {customers} wertvollen Kunden ist im Zeitfenster gefährdet.",
            "no_customers": "Kein Kunde fällt in die hohen Stufen.",
            "sentence": ("{at_risk} von {customers} wertvollen Kunden ({share}) sind gefährdet. Sie halten {value} € "
                         "({basis}){value_share}. Die Liste unten ist pseudonym; die Kontaktliste mit Einwilligung "
                         "schreibt der Bericht zu den Momenten der Wahrheit."),
            "value_share": ", {share} des Werts der hohen Stufen",
            "xlabel": "gefährdete Kunden (Anzahl)",
            "definition": ("Stufen {tiers}; innerhalb von {days} Tagen bis {day}: negativer Kontakt = Beschwerde oder "
                           "klassischer Moment der Wahrheit; Kritiker-Antwort = letzte NPS-Antwort 0-6"),
        },
        "model": {
            "fallback_name": "bisheriger Umsatz (Ersatz)",
            "unsupported": "Modell nicht gestützt: {reason}.{note}",
            "absent": (" Keine der CLV-Kategorien ({categories}) kommt in den Bestellungen vor; das Modell umfasst "
                       "alle Bestellungen."),
            "holdout_reason": "Holdout-Prüfung nicht möglich: {reason} in den Daten vor den Holdout-Monaten.",
            "fitted": ("Geschätzt auf {customers} Kunden{scope}, davon {repeat} Wiederholungskäufer; CLV über {horizon} "
                       "Monate, abgezinst mit {rate} pro Jahr"),
            "scope": " mit Käufen der Kategorie {categories}",
            "plus": "; Wert = Nettoumsatz bis heute + vorhergesagter CLV dieser Käufe.",
            "used": "; es gilt der bisherige Umsatz",
            "reasons": {
                "few_repeat_buyers": ("nur {repeat} von {customers} Kunden haben erneut gekauft (das Modell braucht "
                                      "mindestens {needed} Wiederholungskäufer)"),
                "no_third_purchase": ("kein Kunde hat an mehr als zwei Tagen gekauft ({repeat} von {customers} genau "
                                      "zweimal): die BG/NBD-Abwanderung würde als sicher geschätzt"),
                "degenerate": "die Modellschätzung ist entartet ({shown}): zu wenige oder zu gleichförmige Wiederholungskäufe",
                "spend_undefined": "Gamma-Gamma q = {q} ≤ 1: der mittlere Betrag je Kauf ist für diese Daten nicht definiert",
                "non_finite": "die Modellschätzung ergab nicht endliche Parameter",
            },
        },
        "findings": {
            "none": "Kein Ergebnis zum Kundenwert: die Daten enthalten keinen Kauf, der sich bewerten ließe (siehe Hinweise unten).",
            "concentration": "Die besten 20\u00a0% der Kunden brachten {top20} der {revenue} € Nettoumsatz bis heute.",
            "tier": "Die Stufe {tier} ({customers} der Kunden) hält {value} des Werts ({basis}).",
            "kpi": "{label}: {first} in der Stufe {first_tier}, {last} in der Stufe {last_tier}.",
            "complaints": ("{share} der Kunden der Stufe {tier} hatten in den letzten {days} Tagen einen "
                           "Beschwerdekontakt (Stufe {last_tier}: {last_share})."),
            "risk": ("{at_risk} von {customers} wertvollen Kunden sind gefährdet (negativer Kontakt oder Kritiker-Antwort "
                     "in den letzten {days} Tagen); sie halten {value} € ({basis})."),
            "no_risk": "Keiner der {customers} wertvollen Kunden ist in den letzten {days} Tagen gefährdet.",
        },
        "columns": {
            "segment": "Segment", "customers": "Kunden", "customer_share": "Anteil der Kunden",
            "revenue": "Nettoumsatz (€)", "revenue_share": "Anteil am Umsatz", "mean_orders": "Käufe (Mittel)",
            "mean_recency_days": "Tage seit letztem Kauf (Mittel)", "customer_id": "Kunde (Pseudonym)",
            "orders": "Käufe", "tenure_days": "Tage seit erstem Kauf", "recency_days": "Tage seit letztem Kauf",
            "expected_purchases": "erwartete Käufe", "p_alive": "P(aktiv)", "expected_spend": "erwarteter Betrag (€)",
            "clv": "vorhergesagter CLV (€)", "clv_low": "CLV 90 % von (€)", "clv_high": "CLV 90 % bis (€)",
            "value": "Wert (€)", "model": "Modell", "parameter": "Parameter", "estimate": "Schätzwert",
            "ci_low": "90 % von", "ci_high": "90 % bis", "value_tier": "Wertstufe", "value_total": "Wert gesamt (€)",
            "value_share": "Anteil am Wert", "value_mean": "mittlerer Wert (€)", "value_min": "niedrigster Wert (€)",
            "value_max": "höchster Wert (€)", "last_negative_contact": "letzter negativer Kontakt",
            "negative_contacts": "negative Kontakte", "latest_nps": "letzte NPS-Antwort", "detractor": "Kritiker",
            "trigger": "Auslöser", "decile": "Dezil", "predicted": "vorhergesagt", "actual": "tatsächlich",
            "predicted_mean": "vorhergesagt je Kunde", "actual_mean": "tatsächlich je Kunde", "error_pct": "Fehler (%)",
            "holdout_days": "zurückgehaltene Tage",
        },
        "parameters": {
            "as_of": "Stichtag", "rfm_bins": "RFM-Stufen", "tiers": "Wertstufen (Anteil der Kunden)",
            "high_tiers": "hohe Stufen", "horizon_months": "CLV-Horizont (Monate)",
            "annual_discount_rate": "Abzinsung pro Jahr", "holdout_months": "Holdout (Monate)",
            "clv_method": "CLV-Schätzung", "min_repeat_buyers": "mindestens Wiederholungskäufer",
            "clv_categories": "CLV-Bestellkategorien", "all_orders": "alle Bestellungen", "engine": "Engine",
            "exposure_days": "Zeitfenster Kontakte (Tage)", "at_risk_days": "Zeitfenster Gefährdung (Tage)",
            "min_tier_answers": "mindestens Antworten je Stufe",
        },
    },
}


def text(key: str, lang: str = "en", **values) -> str:
    """The template at dotted `key` in `lang`, filled with `values` (a dict of texts without values)."""
    node = TEXTS[locale.check_lang(lang)]
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


METHOD = {
    "en": """**Definitions.**
- *Purchase*: a completed order with revenue > 0. Completed rows with revenue ≤ 0 (returns, credits, free items)
  reduce *net revenue* but are not purchases. Cancelled and pending orders are ignored.
- *Tenure* / *recency*: whole days from the first / last purchase to the analysis date (`as_of`, inclusive).
- *RFM scores* 1–5 (quintiles): score = ⌊5 · (rank − 1) / n⌋ + 1 with the lowest rank among ties, so equal values
  share a score. R: fewer days since the last purchase is better; F: purchases; M: net revenue. Segments from R and
  F by the rules in `config/taxonomy.yml` (`rfm_segments`).
- *Predicted CLV*: expected purchases in the next `horizon_months` (BG/NBD model of repeat purchases) × expected
  spend per purchase (Gamma-Gamma model), discounted monthly; purchases counted per day. BG/NBD describes purchases
  that happen at any time, not contracts with a fixed term and monthly fee: with `clv_categories` the model covers
  only the repeat purchases of those order categories (add-ons) and a customer's *value* is net revenue to date plus
  the predicted CLV of those purchases; with `clv_categories = []` the model covers all orders and value is the
  predicted CLV. When the data cannot support the model (too few repeat buyers) value is net revenue to date.
- *Model*: BG/NBD and Gamma-Gamma of **pymc-marketing** (maintained by PyMC Labs), rather than `lifetimes`
  (archived since 2020) or an own fit. Cost: about 640 MB installed, ≈ 11 s to import, a MAP fit of a few thousand
  customers ≈ 20 s; imported only when the data can support the model. `clv_method = "mcmc"` gives intervals.
- *Holdout check*: the model is fitted again on the data up to `holdout_months` before the analysis date and
  predicts the repeat purchases of the held-out months, per decile of the prediction.
- *Value tiers*: customers ranked by value, best first, cut by the shares in `tiers`; ties go to the better tier.
- *CX by value tier*: the first KPI the feedback holds (NPS, else CSAT, else CES) per tier; tiers with fewer than
  `min_tier_answers` answers are flagged and not compared. Complaint and moment-of-truth exposure: share of a tier's
  customers with such a contact in the `exposure_days` up to `as_of`, counted on the engine over the event log.
- *At risk*: in a high tier and, within `at_risk_days` before `as_of`, a contact about a complaint or a classic
  moment of truth, or a latest NPS answer of 0–6 (detractor).""",
    "de": """**Definitionen.**
- *Kauf*: eine abgeschlossene Bestellung mit Umsatz > 0. Abgeschlossene Zeilen mit Umsatz ≤ 0 (Retouren,
  Gutschriften, Gratisartikel) mindern den *Nettoumsatz*, sind aber keine Käufe. Stornierte und offene Bestellungen
  zählen nicht.
- *Kundendauer* / *Aktualität*: ganze Tage vom ersten / letzten Kauf bis zum Stichtag (`as_of`, einschließlich).
- *RFM-Werte* 1–5 (Quintile): Wert = ⌊5 · (Rang − 1) / n⌋ + 1 mit dem niedrigsten Rang bei Gleichstand, gleiche
  Werte teilen also einen Wert. R: weniger Tage seit dem letzten Kauf ist besser; F: Käufe; M: Nettoumsatz. Segmente
  aus R und F nach den Regeln in `config/taxonomy.yml` (`rfm_segments`).
- *Vorhergesagter CLV*: erwartete Käufe in den nächsten `horizon_months` Monaten (BG/NBD-Modell der
  Wiederholungskäufe) × erwarteter Betrag je Kauf (Gamma-Gamma-Modell), monatlich abgezinst; Käufe je Tag gezählt.
  BG/NBD beschreibt Käufe, die jederzeit stattfinden, keine Verträge mit fester Laufzeit: mit `clv_categories`
  umfasst das Modell nur die Wiederholungskäufe dieser Bestellkategorien (Zusatzprodukte), und der *Wert* eines
  Kunden ist Nettoumsatz bis heute plus vorhergesagter CLV dieser Käufe; mit `clv_categories = []` umfasst es alle
  Bestellungen, und der Wert ist der vorhergesagte CLV. Tragen die Daten das Modell nicht (zu wenige
  Wiederholungskäufer), ist der Wert der Nettoumsatz bis heute.
- *Modell*: BG/NBD und Gamma-Gamma aus **pymc-marketing** (gepflegt von PyMC Labs), statt `lifetimes` (seit 2020
  archiviert) oder einer eigenen Schätzung. Aufwand: etwa 640 MB installiert, ≈ 11 s Import, eine MAP-Schätzung für
  einige tausend Kunden ≈ 20 s; nur geladen, wenn die Daten das Modell tragen. `clv_method = "mcmc"` liefert Intervalle.
- *Holdout-Prüfung*: das Modell wird auf den Daten bis `holdout_months` Monate vor dem Stichtag erneut geschätzt und
  sagt die Wiederholungskäufe der zurückgehaltenen Monate voraus, je Dezil der Vorhersage.
- *Wertstufen*: Kunden nach Wert geordnet, bester zuerst, geschnitten nach den Anteilen in `tiers`; Gleichstand geht
  an die bessere Stufe.
- *Kundenerlebnis je Wertstufe*: die erste Kennzahl, die das Feedback enthält (NPS, sonst CSAT, sonst CES), je Stufe;
  Stufen mit weniger als `min_tier_answers` Antworten werden markiert und nicht verglichen. Beschwerden und Momente
  der Wahrheit: Anteil der Kunden einer Stufe mit einem solchen Kontakt in den `exposure_days` Tagen bis `as_of`,
  auf der Engine über das Ereignisprotokoll gezählt.
- *Gefährdet*: in einer hohen Stufe und innerhalb von `at_risk_days` Tagen vor `as_of` ein Kontakt zu einer
  Beschwerde oder einem klassischen Moment der Wahrheit oder eine letzte NPS-Antwort von 0–6 (Kritiker).""",
}


def method(lang: str = "en") -> str:
    """The definitions of the report ('How this was measured') as Markdown in `lang`."""
    return METHOD[locale.check_lang(lang)]
