"""Executive summary: KPI tiles with honest changes, findings written from the numbers, and
audience views, in English and German — built only from what the stages recorded (results.json).

Each tile names its period. NPS, CSAT and CES: the last period of the feedback stage's trend
(`feedback.trend`) against the one before, with the change and verdict stage 02 recorded, or all
answers (`feedback.<kpi>`) when no trend was recorded. Complaint rate: the monthly complaints and
active customers of stage 04 summed to the month, quarter or year holding `as_of`, against the one
before (exact conditional Poisson test, Benjamini-Hochberg over the tiles the summary tests
itself). Conversion and repeat-customer rate: the journey stage's own rates over the whole period
it analysed. A tile or finding exists only when its result does; sections whose stage recorded
nothing and the sections the stages skipped are listed in one closing part (`skipped_part`).
The change against the previous run is the difference to the previous run's tile and is not
tested: two runs share most of their data.

    results = report.read_results(run_dir)
    tiles = summary.kpi_tiles(results, as_of=summary.as_of_day("", results), period="month")
    tiles = summary.with_previous_run(tiles, report.read_results(previous_run_dir), run_id="20261101T060000Z")
    HTML(summary.tiles_html(tiles, lang="de"))
    summary.findings(tiles, results, lang="de", audience="service")  -> ["...", "...", "..."]

Everything here is pure: results dicts and DataFrames in, DataFrames, dicts and text out.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from scipy import stats as st

from cxlib import metrics, plots
from cxlib.schema import CES, CSAT, NPS

COMPLAINT_RATE = "complaint_rate"
CONVERSION_RATE = "conversion_rate"
REPEAT_RATE = "repeat_customer_rate"
KPI_TILES = (NPS, CSAT, CES, COMPLAINT_RATE, CONVERSION_RATE, REPEAT_RATE)
SECTIONS = ("tiles", "findings", "moments", "complaints", "contact_list", "journey", "value", "occasions")
LANGS = ("en", "de")
PERIOD_FREQ = {"month": "M", "quarter": "Q", "year": "Y"}

# Audience views: which sections, in which order, and which tiles. Findings follow the order of
# the sections, so each department reads its own topics first.
AUDIENCES = {
    "management": {"sections": ["tiles", "findings", "moments", "complaints", "contact_list", "journey", "value"],
                   "tiles": list(KPI_TILES)},
    "service": {"sections": ["moments", "complaints", "contact_list", "tiles", "findings"],
                "tiles": [COMPLAINT_RATE, NPS, CSAT, CES]},
    "marketing": {"sections": ["occasions", "journey", "tiles", "findings"],
                  "tiles": [CONVERSION_RATE, NPS, REPEAT_RATE, CSAT]},
    "sales": {"sections": ["value", "occasions", "journey", "tiles", "findings"],
              "tiles": [CONVERSION_RATE, REPEAT_RATE, NPS]},
}

# How each tile is shown: decimals, a sign on the value, percent, and which direction is good.
TILE_FORMAT = {
    NPS: {"decimals": 1, "sign": True, "percent": False, "higher_is_better": True},
    CSAT: {"decimals": 1, "sign": False, "percent": True, "higher_is_better": True},
    CES: {"decimals": 2, "sign": False, "percent": False, "higher_is_better": True},
    COMPLAINT_RATE: {"decimals": 1, "sign": False, "percent": False, "higher_is_better": False},
    CONVERSION_RATE: {"decimals": 1, "sign": False, "percent": True, "higher_is_better": True},
    REPEAT_RATE: {"decimals": 1, "sign": False, "percent": True, "higher_is_better": True},
}

TILE_COLUMNS = [
    "kpi", "period", "period_kind", "previous_period", "value", "n", "ci_low", "ci_high", "previous_value", "previous_n",
    "change_previous_period", "change_low", "change_high", "p_value", "p_adjusted", "significant_previous_period",
    "tested", "small", "note", "source",
]
RUN_COLUMNS = ["previous_run", "previous_run_value", "previous_run_period", "change_previous_run"]

_COLOURS = {"good": plots.PALETTE["positive"], "bad": plots.PALETTE["negative"], "muted": "#5b6670",
            "ink": "#1d2733", "line": "#dde3e9", "bg": "#f6f8fa", "value": plots.PALETTE["primary"],
            "small": plots.PALETTE["neutral"]}
_FONT = "'DejaVu Sans', 'Segoe UI', Helvetica, Arial, sans-serif"

TEXT = {
    "en": {
        "label": {NPS: "NPS", CSAT: "CSAT (satisfied)", CES: "CES (ease)", COMPLAINT_RATE: "Complaint rate",
                  CONVERSION_RATE: "Conversion rate", REPEAT_RATE: "Repeat-customer rate"},
        "unit": {NPS: "points, -100 to +100", CSAT: "% of answers in the top two points of their scale", CES: "mean on 1-7, higher = easier",
                 COMPLAINT_RATE: "complaints per 1,000 active customers per month", CONVERSION_RATE: "% of leads",
                 REPEAT_RATE: "% of buyers"},
        "change_unit": {NPS: " points", CSAT: " pp", CES: "", COMPLAINT_RATE: " per 1,000", CONVERSION_RATE: " pp",
                        REPEAT_RATE: " pp"},
        "n_unit": {NPS: "answers", CSAT: "answers", CES: "answers", COMPLAINT_RATE: "customer-months",
                   CONVERSION_RATE: "leads", REPEAT_RATE: "buyers"},
        "definition": {
            NPS: "NPS = % promoters (9-10) - % detractors (0-6) of the period's answers; adjusted-Wald interval",
            CSAT: "CSAT = % of answers in the top two points of their scale (4-5 on 1-5; top-2-box); Wilson interval",
            CES: "CES = mean effort score on 1-7 (higher = easier); t interval",
            COMPLAINT_RATE: "complaint contacts per 1,000 active customers per month (all complaint categories); "
                            "exact Poisson interval",
            CONVERSION_RATE: "leads who became customers, over the whole period the journey stage (03) analysed; "
                             "Wilson interval",
            REPEAT_RATE: "customers with two or more orders among those with one, over the whole period the journey "
                         "stage (03) analysed; Wilson interval",
        },
        "test": {NPS: "z-test on the adjusted-Wald estimates", CSAT: "two-proportion z-test", CES: "Welch t-test",
                 COMPLAINT_RATE: "exact conditional Poisson test", CONVERSION_RATE: "two-proportion z-test",
                 REPEAT_RATE: "two-proportion z-test"},
        "value_unit": {NPS: "", CSAT: "", CES: " on 1-7", COMPLAINT_RATE: " per 1,000 customers a month",
                       CONVERSION_RATE: "", REPEAT_RATE: ""},
        "interval": "{level}% interval {low} to {high}",
        "range": "{low} to {high}",
        "n": "n = {n} {unit}",
        "vs_period": "{arrow}{change}{unit} vs {period}",
        "significant": "significant (adj. p {p})",
        "not_significant": "not significant (adj. p {p})",
        "not_tested": "not tested: fewer than {min_n} {unit} in a period",
        "no_previous_data": "no data for the period before",
        "whole_period": "all analysed data",
        "no_period_comparison": "the whole analysed period: no comparison between periods",
        "stage_verdict_significant": "significant (as tested by stage 02)",
        "stage_verdict_not_significant": "not significant (as tested by stage 02)",
        "vs_run": "vs previous run: {change}{unit} (then {value} for {period})",
        "no_run": "no previous run to compare with",
        "run_missing": "the previous run has no value for this KPI",
        "run_other_period": "previous run not comparable: it reported {value} for {period}",
        "small": "fewer than {min_n} {unit}: indicative only",
        "note": {"no_complaints": "not available: the moments-of-truth stage (04) recorded no complaint rates",
                 "no_data": "not available: no data in {period}"},
        "tiles_caption": "Each tile names its period: {items}",
        "tiles_caption_item": "{period}: {labels}",
        "period_names": {"month": "month", "quarter": "quarter", "year": "year"},
        "sections": {"tiles": "KPIs at a glance", "findings": "Findings", "moments": "Moments of truth",
                     "complaints": "Complaint months out of control", "contact_list": "Customers to call back",
                     "journey": "Journey and conversion", "value": "Customer value at risk",
                     "occasions": "Occasions to talk"},
        "missing": "Not available: {stage} recorded no results in this run.",
        "stage": {"moments": "the moments-of-truth stage (04)", "complaints": "the moments-of-truth stage (04)",
                  "contact_list": "the moments-of-truth stage (04)", "journey": "the journey stage (03)",
                  "value": "the customer-value stage (05)", "occasions": "the occasions stage (07)"},
        "occasions": ("Sends timed on an occasion (anniversary, renewal window, first invoice, …) were answered "
                      "{ratio}× as often as other sends, compared within the same campaign and segment ({level}% "
                      "interval {low} to {high}; {verdict})."),
        "occasions_due": " {due} occasions fall in the next {days} days; {listed} customers with one may be contacted.",
        "occasions_verdict": {"more": "significantly more often", "less": "significantly less often",
                              "same": "not significantly different"},
        "tiles_text": ("Each tile shows a KPI in the period it names, with its {level}% interval and n. NPS, CSAT and CES: "
                       "the latest period of the feedback stage's trend (02) against the period before, as tested there "
                       "(Benjamini-Hochberg over the trend's changes), or all answers when no trend was recorded; "
                       "complaint rate: the latest {period} against the one before, {complaint_test}; conversion and "
                       "repeat customers: the whole period the journey stage (03) analysed. A period with fewer than "
                       "{min_n} cases is greyed and not tested. Green and red mark significant changes for the better "
                       "and the worse. The change against the previous run is not tested: two runs share most of their "
                       "data. Definitions: {definitions}."),
        "findings_text": "Written from the numbers of this run; each names the figure it rests on.",
        "findings_none": "No findings: the stages of this run recorded too little to write any.",
        # findings
        "headline": "{label} in {period} is {value} ({interval}, n = {n} {unit}); against {previous}: {moved}.",
        "headline_whole": "{label} over {period} is {value} ({interval}, n = {n} {unit}); {moved}.",
        "rose": "a significant rise by {change}",
        "fell": "a significant fall by {change}",
        "noise": "a change by {change}, within sampling noise",
        "untested": "no test, fewer than {min_n} {unit} in a period",
        "no_comparison": "no comparison, no data for the period before",
        "no_comparison_whole": "no comparison between periods (the stage recorded the whole period only)",
        "run_change": " Since the previous run: {change}.",
        "run_none": " There is no previous run to compare with.",
        "run_no_value": " The previous run recorded no value for it.",
        "run_not_comparable": " The previous run reported it for {period}, another kind of period: not compared.",
        "movers": "Also significant against the period before: {items}.",
        "mover": "{label} {change} against {previous} (now {value})",
        "no_movers": ("No other KPI shown ({labels}) changed significantly against the period before: the differences are "
                      "within sampling noise or the periods have too few cases."),
        "moment": ("The moment of truth that costs most loyalty is «{label}»: exposed customers give an NPS {impact} "
                   "points lower ({interval}); {stake} points of the overall NPS are at stake{others}."),
        "moment_others": "; next: {labels}",
        "magic": " Magic moment, a significant gain: {items}.",
        "magics": " Magic moments, each a significant gain: {items}.",
        "no_magic": " No moment raises NPS significantly.",
        "no_moment": "No moment of truth has a significant negative impact on NPS with enough exposed answers.",
        "complaints": "{n} category-months lie outside their control limits ({above} above, {below} below).",
        "complaints_latest": " Above the limits, latest first: {items}.",
        "complaints_item": "{category} in {month} ({rate} per 1,000 against a centre of {centre})",
        "complaints_more": " and {n} more",
        "complaints_current": " In {period}: {items}.",
        "complaints_none": "All complaint rates stay within their control limits: no month stands out.",
        "complaints_item_count": "{category} in {month} ({rate} complaints against a centre of {centre})",
        "complaints_none_count": "All monthly complaint counts stay within their control limits: no month stands out.",
        "above": "above", "below": "below",
        "contact": ("{included} customers with an unresolved negative moment or a detractor answer in the last {days} "
                    "days are on the call-back list; {no_consent} were left out for lack of consent and {other} for "
                    "other reasons."),
        "journey": "{conversion} of {leads} leads became customers ({interval}) and {repeat} of {buyers} buyers ordered more than once{drop}.",
        "journey_drop": "; the funnel loses most from «{a}» to «{b}», where {rate} go on",
        "journey_conversion": "{conversion} of {leads} leads became customers ({interval}){drop}.",
        "journey_repeat": "{repeat} of {buyers} buyers ordered more than once.",
        "value": "{at_risk} high-value customers are at risk, holding {amount} € of {basis}{top}.",
        "value_total": "{customers} customers hold {amount} € of {basis} in total{top}.",
        "value_top": "; the top 20% of customers brought {share} of net revenue to date",
        "basis_clv": "predicted CLV", "basis_revenue": "net revenue to date",
        "basis_plus": "net revenue to date plus predicted CLV",
        # section bodies
        "moments_text": ("Moments ranked by NPS points at stake (share of answers exposed x adjusted NPS impact), "
                         "significant negative impacts only; magic moments have a significant positive impact."),
        "moments_columns": {"rank": "Rank", "label": "Moment", "reach": "Reach (% customers)",
                            "nps_impact": "NPS impact (points)", "interval": "95% interval",
                            "churn_lift": "Churn lift (x)", "priority": "NPS points at stake", "kind": "Kind"},
        "kind_truth": "moment of truth", "kind_magic": "magic moment",
        "figure_title": "«{label}» costs most: NPS {impact} points for exposed customers",
        "figure_title_magic": "Magic moment «{label}»: NPS {impact} points for exposed customers",
        "figure_xlabel": "NPS impact for exposed customers (points, adjusted)",
        "figure_definition": ("NPS impact = NPS of answers with a contact of the moment in the {window} days before, "
                              "minus that of the others, adjusted for {covariates}; bars: 95% intervals; "
                              "red = moment of truth, green = magic moment"),
        "figure_n": "{n} exposed answers",
        "figure_alt": "Bar chart of the NPS impact of {k} moments with 95% intervals: {items}.",
        "complaints_columns": {"category": "Category", "month": "Month", "rate": "Rate per 1,000",
                               "centre": "Centre", "limit": "Limit", "signal": "Side", "complaints": "Complaints"},
        "complaints_text": ("Complaint contacts per 1,000 active customers per category and month against the control "
                            "limits of stage 04 (u-chart, widened by Laney's σz where complaints vary beyond chance); *above* is a breakout, *below* an unusually quiet month. Latest first, "
                            "at most {rows} shown."),
        "complaints_text_count": ("Complaint contacts per category and month, counted: the data hold no active customer "
                                  "base to divide by, so there is no rate per 1,000. Limits of stage 04 (c-chart); *above* "
                                  "is a breakout, *below* an unusually quiet month. Latest first, at most {rows} shown."),
        "contact_columns": {"item": "", "customers": "Customers"},
        "contact_rows": {"candidates": "Candidates (negative moment or detractor)", "included": "On the call-back list",
                         "excluded_no_consent": "Left out: no consent", "excluded_other": "Left out: other reasons"},
        "contact_text": ("The list itself (with CRM numbers, no names or contact details) is `{file}` in the run folder, "
                         "for the service team only; consent basis: {basis}."),
        "journey_columns": {"rate": "Rate", "value": "Value", "interval": "95% interval", "n": "n"},
        "journey_rates": {"conversion_rate": "Conversion (leads → customers)", "repeat_customer_rate": "Repeat customers (≥ 2 orders)",
                          "campaign_response_rate": "Campaign response"},
        "funnel_columns": {"step": "Funnel step", "customers": "Customers", "conversion": "Of the first step",
                           "step_conversion": "Of the step before"},
        "journey_text": "Rates over the whole period the journey stage (03) analysed.",
        "value_columns": {"item": "", "value": "Value"},
        "value_rows": {"basis": "Value basis", "customers": "Customers valued", "median": "Median value per customer (€)",
                       "p90": "90th percentile (€)", "total": "Total value (€)", "at_risk": "High-value customers at risk",
                       "at_risk_value": "Their value (€)", "top20_share": "Revenue share of the top 20% of customers"},
        "value_text": "From the customer-value stage (05): {message}",
        "audience": {"management": "Management", "service": "Customer service", "marketing": "Marketing", "sales": "Sales"},
        "analysed_title": "What was analysed",
        "analysed": ("**{audience}** view in English; analysis day {as_of}. Data analysed: {tables}."),
        "partial": ", incomplete: it ends at the analysis day",
        "table_rows": "{table} {rows} rows",
        "table_span": "{table} {rows} rows ({first} to {last})",
        "run_compared": " Changes against the previous run `{run}` are shown, not tested.",
        "run_absent": " There is no previous run to compare with.",
        "stages_missing": " Not recorded in this run: {sections} (see *Not shown for this data*).",
        "skipped_title": "Not shown for this data",
        "skipped_stage": "{section}: {stage} recorded no results in this run.",
        "skipped_item": "{stage} · {section}: {reason}{enable}.",
        "skipped_enable": " (needs {enable})",
        "stage_names": {"validation": "Validation", "feedback": "Voice of the customer", "journey": "Customer journeys",
                        "moments": "Moments of truth", "value": "Customer value", "summary": "Summary",
                        "occasions": "Occasions", "campaign_relevance": "Campaign relevance",
                        "disversion": "Regular customers from campaigns"},
        "sections_note": ("Below, the sections of this audience's view in its order, all from what stages 01–05 recorded "
                          "in this run's `results.json`; each tile names its period. Sections and tiles the data could "
                          "not support are listed at the end."),
        "parameter_columns": {"parameter": "parameter", "value": "value"},
        "data_columns": {"table": "table", "rows": "rows", "first": "first", "last": "last"},
        "recorded_title": "Recorded for machines",
        "recorded": ("The tiles ({kpis}) with value, n, interval and both changes, and the {k} findings, are in "
                     "`results.json` under `summary`."),
    },
    "de": {
        "label": {NPS: "NPS", CSAT: "CSAT (zufrieden)", CES: "CES (Aufwand)", COMPLAINT_RATE: "Beschwerdequote",
                  CONVERSION_RATE: "Konversionsrate", REPEAT_RATE: "Wiederkaufrate"},
        "unit": {NPS: "Punkte, -100 bis +100", CSAT: "% der Antworten in den obersten zwei Punkten ihrer Skala", CES: "Mittelwert auf 1-7, höher = leichter",
                 COMPLAINT_RATE: "Beschwerden je 1.000 aktive Kunden und Monat", CONVERSION_RATE: "% der Leads",
                 REPEAT_RATE: "% der Käufer"},
        "change_unit": {NPS: " Punkte", CSAT: " Pp.", CES: "", COMPLAINT_RATE: " je 1.000", CONVERSION_RATE: " Pp.",
                        REPEAT_RATE: " Pp."},
        "n_unit": {NPS: "Antworten", CSAT: "Antworten", CES: "Antworten", COMPLAINT_RATE: "Kundenmonate",
                   CONVERSION_RATE: "Leads", REPEAT_RATE: "Käufer"},
        "definition": {
            NPS: "NPS = % Promotoren (9-10) - % Kritiker (0-6) der Antworten des Zeitraums; adjustiertes Wald-Intervall",
            CSAT: "CSAT = % der Antworten in den obersten zwei Punkten ihrer Skala (4-5 auf 1-5; Top-2-Box); Wilson-Intervall",
            CES: "CES = mittlerer Aufwand auf 1-7 (höher = leichter); t-Intervall",
            COMPLAINT_RATE: "Beschwerdekontakte je 1.000 aktive Kunden und Monat (alle Beschwerdekategorien); "
                            "exaktes Poisson-Intervall",
            CONVERSION_RATE: "Leads, die Kunden wurden, über den ganzen von der Journey-Stufe (03) analysierten "
                             "Zeitraum; Wilson-Intervall",
            REPEAT_RATE: "Kunden mit zwei oder mehr Bestellungen unter denen mit einer, über den ganzen von der "
                         "Journey-Stufe (03) analysierten Zeitraum; Wilson-Intervall",
        },
        "test": {NPS: "z-Test auf den adjustierten Wald-Schätzern", CSAT: "Zwei-Anteile-z-Test", CES: "Welch-t-Test",
                 COMPLAINT_RATE: "exakter bedingter Poisson-Test", CONVERSION_RATE: "Zwei-Anteile-z-Test",
                 REPEAT_RATE: "Zwei-Anteile-z-Test"},
        "value_unit": {NPS: "", CSAT: "", CES: " auf 1-7", COMPLAINT_RATE: " je 1.000 Kunden und Monat",
                       CONVERSION_RATE: "", REPEAT_RATE: ""},
        "interval": "{level}%-Intervall {low} bis {high}",
        "range": "{low} bis {high}",
        "n": "n = {n} {unit}",
        "vs_period": "{arrow}{change}{unit} ggü. {period}",
        "significant": "signifikant (adj. p {p})",
        "not_significant": "nicht signifikant (adj. p {p})",
        "not_tested": "nicht getestet: weniger als {min_n} {unit} in einem Zeitraum",
        "no_previous_data": "keine Daten für den Zeitraum davor",
        "whole_period": "alle analysierten Daten",
        "no_period_comparison": "der ganze analysierte Zeitraum: kein Vergleich zwischen Zeiträumen",
        "stage_verdict_significant": "signifikant (wie in Stufe 02 getestet)",
        "stage_verdict_not_significant": "nicht signifikant (wie in Stufe 02 getestet)",
        "vs_run": "ggü. letztem Lauf: {change}{unit} (damals {value} für {period})",
        "no_run": "kein vorheriger Lauf zum Vergleich",
        "run_missing": "der vorherige Lauf hat keinen Wert für diese Kennzahl",
        "run_other_period": "vorheriger Lauf nicht vergleichbar: er meldete {value} für {period}",
        "small": "weniger als {min_n} {unit}: nur ein Anhaltspunkt",
        "note": {"no_complaints": "nicht verfügbar: die Stufe Momente der Wahrheit (04) hat keine Beschwerdequoten erfasst",
                 "no_data": "nicht verfügbar: keine Daten in {period}"},
        "tiles_caption": "Jede Kachel nennt ihren Zeitraum: {items}",
        "tiles_caption_item": "{period}: {labels}",
        "period_names": {"month": "Monat", "quarter": "Quartal", "year": "Jahr"},
        "sections": {"tiles": "Kennzahlen auf einen Blick", "findings": "Erkenntnisse", "moments": "Momente der Wahrheit",
                     "complaints": "Beschwerdemonate außer Kontrolle", "contact_list": "Kunden für einen Rückruf",
                     "journey": "Customer Journey und Konversion", "value": "Gefährdeter Kundenwert",
                     "occasions": "Anlässe für ein Gespräch"},
        "missing": "Nicht verfügbar: {stage} hat in diesem Lauf keine Ergebnisse erfasst.",
        "stage": {"moments": "die Stufe Momente der Wahrheit (04)", "complaints": "die Stufe Momente der Wahrheit (04)",
                  "contact_list": "die Stufe Momente der Wahrheit (04)", "journey": "die Stufe Customer Journey (03)",
                  "value": "die Stufe Kundenwert (05)", "occasions": "die Stufe Anlässe (07)"},
        "occasions": ("Sendungen zu einem Anlass (Vertragsjubiläum, Verlängerungsfenster, erste Rechnung, …) wurden "
                      "{ratio}-mal so oft beantwortet wie andere Sendungen, verglichen innerhalb derselben Kampagne und "
                      "desselben Segments ({level}%-Intervall {low} bis {high}; {verdict})."),
        "occasions_due": " In den nächsten {days} Tagen fallen {due} Anlässe an; {listed} Kunden mit einem Anlass dürfen kontaktiert werden.",
        "occasions_verdict": {"more": "signifikant häufiger", "less": "signifikant seltener",
                              "same": "kein signifikanter Unterschied"},
        "tiles_text": ("Jede Kachel zeigt eine Kennzahl in dem Zeitraum, den sie nennt, mit {level}%-Intervall und n. NPS, "
                       "CSAT und CES: der letzte Zeitraum des Trends der Feedback-Stufe (02) gegenüber dem davor, wie dort "
                       "getestet (Benjamini-Hochberg über die Veränderungen des Trends), oder alle Antworten, wenn kein "
                       "Trend erfasst ist; Beschwerdequote: der letzte Zeitraum ({period}) gegenüber dem davor, "
                       "{complaint_test}; Konversion und Wiederkäufer: der ganze von der Journey-Stufe (03) analysierte "
                       "Zeitraum. Ein Zeitraum mit weniger als {min_n} Fällen ist grau und wird nicht getestet. Grün und "
                       "rot markieren signifikante Verbesserungen und Verschlechterungen. Die Veränderung gegenüber dem "
                       "letzten Lauf wird nicht getestet: zwei Läufe teilen den größten Teil ihrer Daten. Definitionen: "
                       "{definitions}."),
        "findings_text": "Aus den Zahlen dieses Laufs geschrieben; jede Erkenntnis nennt die Zahl, auf der sie beruht.",
        "findings_none": "Keine Erkenntnisse: die Stufen dieses Laufs haben zu wenig erfasst.",
        "headline": "{label} liegt im Zeitraum {period} bei {value} ({interval}, n = {n} {unit}); gegenüber {previous}: {moved}.",
        "headline_whole": "{label} liegt über {period} bei {value} ({interval}, n = {n} {unit}); {moved}.",
        "rose": "ein signifikanter Anstieg um {change}",
        "fell": "ein signifikanter Rückgang um {change}",
        "noise": "eine Veränderung um {change}, im Rahmen des Zufalls",
        "untested": "kein Test, weniger als {min_n} {unit} in einem Zeitraum",
        "no_comparison": "kein Vergleich, keine Daten für den Zeitraum davor",
        "no_comparison_whole": "kein Vergleich zwischen Zeiträumen (die Stufe hat nur den ganzen Zeitraum erfasst)",
        "run_change": " Seit dem letzten Lauf: {change}.",
        "run_none": " Es gibt keinen vorherigen Lauf zum Vergleich.",
        "run_no_value": " Der vorherige Lauf enthält keinen Wert dafür.",
        "run_not_comparable": " Der vorherige Lauf meldete sie für {period}, eine andere Art Zeitraum: kein Vergleich.",
        "movers": "Ebenfalls signifikant gegenüber dem Zeitraum davor: {items}.",
        "mover": "{label} {change} gegenüber {previous} (jetzt {value})",
        "no_movers": ("Keine weitere gezeigte Kennzahl ({labels}) hat sich gegenüber dem Zeitraum davor signifikant verändert: "
                      "die Unterschiede liegen im Rahmen des Zufalls oder die Fallzahlen sind zu klein."),
        "moment": ("Der Moment der Wahrheit, der am meisten Loyalität kostet, ist «{label}»: betroffene Kunden vergeben "
                   "einen um {impact} Punkte niedrigeren NPS ({interval}); {stake} Punkte des Gesamt-NPS stehen auf "
                   "dem Spiel{others}."),
        "moment_others": "; danach: {labels}",
        "magic": " Magischer Moment, ein signifikanter Gewinn: {items}.",
        "magics": " Magische Momente, jeweils ein signifikanter Gewinn: {items}.",
        "no_magic": " Kein Moment hebt den NPS signifikant.",
        "no_moment": "Kein Moment der Wahrheit senkt den NPS signifikant bei genügend betroffenen Antworten.",
        "complaints": "{n} Kategorie-Monate liegen außerhalb ihrer Eingriffsgrenzen ({above} darüber, {below} darunter).",
        "complaints_latest": " Darüber, neueste zuerst: {items}.",
        "complaints_item": "{category} im Monat {month} ({rate} je 1.000 bei einer Mittellinie von {centre})",
        "complaints_more": " und {n} weitere",
        "complaints_current": " Im Zeitraum {period}: {items}.",
        "complaints_none": "Alle Beschwerdequoten bleiben innerhalb ihrer Eingriffsgrenzen: kein Monat fällt auf.",
        "complaints_item_count": "{category} im Monat {month} ({rate} Beschwerden bei einer Mittellinie von {centre})",
        "complaints_none_count": "Alle monatlichen Beschwerdezahlen bleiben innerhalb ihrer Eingriffsgrenzen: kein Monat fällt auf.",
        "above": "darüber", "below": "darunter",
        "contact": ("{included} Kunden mit einem ungelösten negativen Moment oder einer Kritiker-Bewertung in den letzten "
                    "{days} Tagen stehen auf der Rückrufliste; {no_consent} fehlen mangels Einwilligung und {other} aus "
                    "anderen Gründen."),
        "journey": "{conversion} von {leads} Leads wurden Kunden ({interval}) und {repeat} von {buyers} Käufern bestellten mehrfach{drop}.",
        "journey_drop": "; der Trichter verliert am meisten von «{a}» zu «{b}», wo {rate} weitergehen",
        "journey_conversion": "{conversion} von {leads} Leads wurden Kunden ({interval}){drop}.",
        "journey_repeat": "{repeat} von {buyers} Käufern bestellten mehrfach.",
        "value": "{at_risk} wertvolle Kunden sind gefährdet, mit {amount} € {basis}{top}.",
        "value_total": "{customers} Kunden halten zusammen {amount} € {basis}{top}.",
        "value_top": "; die besten 20\u00a0% der Kunden brachten {share} des Nettoumsatzes",
        "basis_clv": "vorhergesagtem CLV", "basis_revenue": "Nettoumsatz bisher",
        "basis_plus": "Nettoumsatz bisher plus vorhergesagtem CLV",
        "moments_text": ("Momente nach NPS-Punkten auf dem Spiel (Anteil betroffener Antworten x adjustierte NPS-Wirkung), "
                         "nur signifikant negative Wirkungen; magische Momente haben eine signifikant positive Wirkung."),
        "moments_columns": {"rank": "Rang", "label": "Moment", "reach": "Reichweite (% Kunden)",
                            "nps_impact": "NPS-Wirkung (Punkte)", "interval": "95%-Intervall",
                            "churn_lift": "Kündigungsfaktor (x)", "priority": "NPS-Punkte auf dem Spiel", "kind": "Art"},
        "kind_truth": "Moment der Wahrheit", "kind_magic": "magischer Moment",
        "figure_title": "«{label}» kostet am meisten: NPS {impact} Punkte bei betroffenen Kunden",
        "figure_title_magic": "Magischer Moment «{label}»: NPS {impact} Punkte bei betroffenen Kunden",
        "figure_xlabel": "NPS-Wirkung bei betroffenen Kunden (Punkte, adjustiert)",
        "figure_definition": ("NPS-Wirkung = NPS der Antworten mit einem Kontakt des Moments in den {window} Tagen davor "
                              "minus NPS der übrigen, adjustiert für {covariates}; Balken: 95%-Intervalle; "
                              "rot = Moment der Wahrheit, grün = magischer Moment"),
        "figure_n": "{n} betroffene Antworten",
        "figure_alt": "Balkendiagramm der NPS-Wirkung von {k} Momenten mit 95%-Intervallen: {items}.",
        "complaints_columns": {"category": "Kategorie", "month": "Monat", "rate": "Quote je 1.000",
                               "centre": "Mittellinie", "limit": "Grenze", "signal": "Seite", "complaints": "Beschwerden"},
        "complaints_text": ("Beschwerdekontakte je 1.000 aktive Kunden pro Kategorie und Monat gegen die Kontrollgrenzen "
                            "aus Stufe 04 (u-Karte, nach Laney um σz erweitert, wo die Beschwerden mehr als zufällig schwanken); *darüber* ist ein Ausbruch, *darunter* ein ungewöhnlich ruhiger Monat. "
                            "Neueste zuerst, höchstens {rows} gezeigt."),
        "complaints_text_count": ("Beschwerdekontakte pro Kategorie und Monat, gezählt: die Daten enthalten keinen Bestand "
                                  "aktiver Kunden, daher keine Quote je 1.000. Grenzen aus Stufe 04 (c-Karte); *darüber* "
                                  "ist ein Ausbruch, *darunter* ein ungewöhnlich ruhiger Monat. Neueste zuerst, höchstens "
                                  "{rows} gezeigt."),
        "contact_columns": {"item": "", "customers": "Kunden"},
        "contact_rows": {"candidates": "Kandidaten (negativer Moment oder Kritiker)", "included": "Auf der Rückrufliste",
                         "excluded_no_consent": "Ausgelassen: keine Einwilligung", "excluded_other": "Ausgelassen: andere Gründe"},
        "contact_text": ("Die Liste selbst (mit CRM-Nummern, ohne Namen und Kontaktdaten) ist `{file}` im Laufordner, nur für "
                         "das Service-Team; Einwilligungsgrundlage: {basis}."),
        "journey_columns": {"rate": "Quote", "value": "Wert", "interval": "95%-Intervall", "n": "n"},
        "journey_rates": {"conversion_rate": "Konversion (Leads → Kunden)", "repeat_customer_rate": "Wiederkäufer (≥ 2 Bestellungen)",
                          "campaign_response_rate": "Kampagnenreaktion"},
        "funnel_columns": {"step": "Trichterstufe", "customers": "Kunden", "conversion": "Von der ersten Stufe",
                           "step_conversion": "Von der Stufe davor"},
        "journey_text": "Quoten über den ganzen von der Journey-Stufe (03) analysierten Zeitraum.",
        "value_columns": {"item": "", "value": "Wert"},
        "value_rows": {"basis": "Wertgrundlage", "customers": "Bewertete Kunden", "median": "Median-Wert je Kunde (€)",
                       "p90": "90. Perzentil (€)", "total": "Gesamtwert (€)", "at_risk": "Gefährdete wertvolle Kunden",
                       "at_risk_value": "Ihr Wert (€)", "top20_share": "Umsatzanteil der besten 20\u00a0% der Kunden"},
        "value_text": "Aus der Stufe Kundenwert (05): {message}",
        "audience": {"management": "Geschäftsleitung", "service": "Kundenservice", "marketing": "Marketing", "sales": "Vertrieb"},
        "analysed_title": "Was analysiert wurde",
        "analysed": ("Sicht **{audience}** auf Deutsch; Analysetag {as_of}. Analysierte Daten: {tables}."),
        "partial": ", unvollständig: endet am Analysetag",
        "table_rows": "{table} {rows} Zeilen",
        "table_span": "{table} {rows} Zeilen ({first} bis {last})",
        "run_compared": " Veränderungen gegenüber dem vorherigen Lauf `{run}` werden gezeigt, nicht getestet.",
        "run_absent": " Es gibt keinen vorherigen Lauf zum Vergleich.",
        "stages_missing": " In diesem Lauf nicht erfasst: {sections} (siehe *Für diese Daten nicht gezeigt*).",
        "skipped_title": "Für diese Daten nicht gezeigt",
        "skipped_stage": "{section}: {stage} hat in diesem Lauf keine Ergebnisse erfasst.",
        "skipped_item": "{stage} · {section}: {reason}{enable}.",
        "skipped_enable": " (benötigt {enable})",
        "stage_names": {"validation": "Validierung", "feedback": "Stimme der Kunden", "journey": "Customer Journeys",
                        "moments": "Momente der Wahrheit", "value": "Kundenwert", "summary": "Zusammenfassung",
                        "occasions": "Anlässe", "campaign_relevance": "Relevanz der Kampagnen",
                        "disversion": "Stammkunden aus Kampagnen"},
        "sections_note": ("Darunter die Abschnitte der Sicht dieser Zielgruppe in ihrer Reihenfolge, alle aus dem, was die "
                          "Stufen 01–05 in `results.json` dieses Laufs erfasst haben; jede Kachel nennt ihren Zeitraum. "
                          "Abschnitte und Kacheln, die die Daten nicht tragen, stehen am Ende."),
        "parameter_columns": {"parameter": "Parameter", "value": "Wert"},
        "data_columns": {"table": "Tabelle", "rows": "Zeilen", "first": "erster Tag", "last": "letzter Tag"},
        "recorded_title": "Für Maschinen erfasst",
        "recorded": ("Die Kacheln ({kpis}) mit Wert, n, Intervall und beiden Veränderungen sowie die {k} Erkenntnisse "
                     "stehen in `results.json` unter `summary`."),
    },
}


class SummaryError(ValueError):
    """Input to the summary is unusable: an unknown audience, language or period, a missing column."""


# --- checks and formats ------------------------------------------------------------------------------
def _lang(lang: str) -> dict:
    if lang not in TEXT:
        raise SummaryError(f"lang must be one of {list(LANGS)}, got {lang!r}")
    return TEXT[lang]


def _freq(period: str) -> str:
    if period not in PERIOD_FREQ:
        raise SummaryError(f"period must be one of {list(PERIOD_FREQ)}, got {period!r}")
    return PERIOD_FREQ[period]


def _require(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SummaryError(f"{table}: missing column(s) {missing}; columns present: {list(df.columns)}")


def _missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and not math.isfinite(value)) or value is pd.NA


def format_number(value, decimals: int = 1, lang: str = "en", *, sign: bool = False) -> str:
    """A number for readers: thousands separator and `decimals` places, German separators for
    lang 'de', '+' on positive values with `sign`; None/NaN -> '–'.

        format_number(12345.678, 1, "de") -> '12.345,7';  format_number(-0.04, 1, sign=True) -> '+0.0'
    """
    if _missing(value):
        return "–"
    value = round(float(value), decimals) + 0.0          # + 0.0 turns -0.0 into 0.0
    text = f"{value:{'+' if sign else ''},.{decimals}f}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "de" else text


def format_value(value, kpi: str, lang: str = "en", *, change: bool = False) -> str:
    """A tile's value as shown: NPS with sign ('+7.0'), percent KPIs with '%' ('68.0%', de '68,0 %'),
    CES with two decimals; `change` formats a difference (always signed, no '%')."""
    spec = TILE_FORMAT[kpi]
    text = format_number(value, spec["decimals"], lang, sign=spec["sign"] or change)
    if spec["percent"] and not change and text != "–":
        text += "\u00a0%" if lang == "de" else "%"
    return text


def format_p(p, lang: str = "en") -> str:
    """A p-value: '< 0.001' or three decimals ('0.041'; de '0,041'); NaN -> '–'."""
    if _missing(p):
        return "–"
    if p < 0.001:
        return "< " + format_number(0.001, 3, lang)
    return format_number(p, 3, lang)


def _share(value, lang: str, decimals: int = 1) -> str:
    """A share in [0, 1] as percent text: 0.1145 -> '11.5%' (de '11,5 %')."""
    if _missing(value):
        return "–"
    return format_number(100 * float(value), decimals, lang) + ("\u00a0%" if lang == "de" else "%")


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


# --- audiences -------------------------------------------------------------------------------------
def audience_sections(audience: str = "management") -> list[str]:
    """Sections of an audience view in reading order: audience_sections('service') -> ['moments', ...]."""
    if audience not in AUDIENCES:
        raise SummaryError(f"audience must be one of {list(AUDIENCES)}, got {audience!r}")
    return list(AUDIENCES[audience]["sections"])


def audience_tiles(audience: str = "management") -> list[str]:
    """KPI tiles of an audience view in reading order: audience_tiles('sales') -> ['conversion_rate', ...]."""
    if audience not in AUDIENCES:
        raise SummaryError(f"audience must be one of {list(AUDIENCES)}, got {audience!r}")
    return list(AUDIENCES[audience]["tiles"])


def taxonomy_labels(taxonomy, lang: str = "en") -> dict[str, dict[str, str]]:
    """Labels in the report language: {'moments': code -> label (contact reasons and derived moments),
    'complaint_categories': ..., 'touchpoints': ...} from a `config.Taxonomy`."""
    _lang(lang)
    derived = taxonomy.data.get("derived_moments") or {}
    return {
        "moments": {**{code: (entry or {}).get(lang) or (entry or {}).get("en") or code for code, entry in derived.items()},
                    **{code: taxonomy.label("contact_reasons", code, lang) for code in taxonomy.codes("contact_reasons")}},
        "complaint_categories": {code: taxonomy.label("complaint_categories", code, lang)
                                 for code in (taxonomy.data.get("complaint_categories") or {})},
        "touchpoints": {code: taxonomy.label("touchpoints", code, lang) for code in taxonomy.codes("touchpoints")},
    }


# --- periods ---------------------------------------------------------------------------------------
def _day(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).floor("D")


def as_of_day(as_of, results: Mapping | None = None) -> pd.Timestamp | None:
    """The analysis day as midnight UTC: `as_of` ('YYYY-MM-DD') when given, otherwise the latest day
    the stages recorded in `results` (results.json): value.as_of, contact_list.as_of, the end of
    moments.period, journey.period and feedback.period, the end of the last complaint month (rates
    or counts) and of the last feedback trend period; None when no stage recorded a date.

        as_of_day("", {"value": {"as_of": "2025-12-31"}}) -> Timestamp('2025-12-31 00:00:00+0000', tz='UTC')
    """
    if as_of not in (None, ""):
        return _day(as_of)
    results = results or {}
    days = [(results.get("value") or {}).get("as_of"), (results.get("contact_list") or {}).get("as_of"),
            ((results.get("moments") or {}).get("period") or {}).get("to"),
            ((results.get("journey") or {}).get("period") or {}).get("to"),
            ((results.get("feedback") or {}).get("period") or {}).get("to")]
    months = [r.get("month") for r in complaint_chart(results)[0]]
    trend = [r.get("period") for kpi in KPI_TILES[:3] for r in _trend_rows(results.get("feedback"), kpi)]
    ends = [_period_end(label) for label in [*months, *trend] if label]
    found = [_day(d) for d in days if d] + [e for e in ends if e is not None]
    return max(found) if found else None


def _period_end(label: str) -> pd.Timestamp | None:
    """The last day of a period label ('2025-12', '2025Q4', '2025') as midnight UTC (None if unreadable)."""
    freq = {"month": "M", "quarter": "Q", "year": "Y", "week": "W"}.get(_period_kind(str(label)))
    try:
        return _day(pd.Period(str(label), freq=freq).end_time.normalize()) if freq else None
    except ValueError:
        return None


def periods(as_of, period: str = "quarter") -> dict:
    """The current period (the one holding `as_of`) and the one before, as text:
    {period, as_of, current: {label, start, end, complete}, previous: {label, start, end, complete}};
    the current period ends at as_of. Without an analysis day (None) both are empty.

        periods("2025-11-15", "quarter")["current"]
        -> {"label": "2025Q4", "start": "2025-10-01", "end": "2025-11-15", "complete": False}
    """
    freq = _freq(period)
    if as_of is None:
        empty = {"label": "", "start": "", "end": "", "complete": False}
        return {"period": period, "as_of": "", "current": dict(empty), "previous": dict(empty)}
    day = _day(as_of)
    current = pd.Period(day.tz_localize(None), freq=freq)
    previous = current - 1

    def describe(p: pd.Period, end: pd.Timestamp) -> dict:
        last = p.end_time.normalize()
        return {"label": str(p), "start": p.start_time.date().isoformat(), "end": min(last, end).date().isoformat(),
                "complete": bool(end >= last)}

    naive = day.tz_localize(None)
    return {"period": period, "as_of": naive.date().isoformat(),
            "current": describe(current, naive), "previous": describe(previous, naive)}


# --- statistics not in metrics: Poisson rates ------------------------------------------------------------
def poisson_rate(count: float, exposure: float, *, per: float = 1000.0, confidence: float = 0.95) -> dict:
    """Rate = per * count / exposure with the exact (Garwood) interval:
    [chi2(a/2; 2k) / 2, chi2(1 - a/2; 2k + 2) / 2] * per / exposure. {value, ci_low, ci_high}; NaN without exposure.

        poisson_rate(42, 10945) -> {"value": 3.837..., "ci_low": 2.765..., "ci_high": 5.186...}
    """
    if not exposure > 0:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    alpha = 1 - confidence
    low = st.chi2.ppf(alpha / 2, 2 * count) / 2 if count > 0 else 0.0
    high = st.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return {"value": per * count / exposure, "ci_low": per * low / exposure, "ci_high": per * high / exposure}


def poisson_difference(count_a: float, exposure_a: float, count_b: float, exposure_b: float, *,
                       per: float = 1000.0, confidence: float = 0.95) -> dict:
    """Rate a - rate b (per `per` units of exposure): {difference, ci_low, ci_high, p_value}. Interval
    normal on the two Poisson variances; p exact and conditional: given k_a + k_b events, k_a is
    binomial with p0 = exposure_a / (exposure_a + exposure_b) when the rates are equal. NaN when
    a group has no exposure or there are no events."""
    if not (exposure_a > 0 and exposure_b > 0):
        return {"difference": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    diff = per * (count_a / exposure_a - count_b / exposure_b)
    se = per * math.sqrt(count_a / exposure_a**2 + count_b / exposure_b**2)
    z = float(st.norm.ppf(0.5 + confidence / 2))
    total = int(round(count_a + count_b))
    p = (st.binomtest(int(round(count_a)), total, exposure_a / (exposure_a + exposure_b)).pvalue
         if total > 0 else math.nan)
    return {"difference": diff, "ci_low": diff - z * se, "ci_high": diff + z * se, "p_value": float(p)}


# --- KPI tiles from the stages' results --------------------------------------------------------------
def _num(value) -> float:
    return math.nan if _missing(value) else float(value)


def _tile(kpi, cur, prev, value=math.nan, n=0, ci_low=math.nan, ci_high=math.nan, previous_value=math.nan,
          previous_n=0, difference=math.nan, diff_low=math.nan, diff_high=math.nan, p_value=math.nan,
          p_adjusted=math.nan, significant=False, tested=False, small=False, source=""):
    return {"kpi": kpi, "period": cur, "period_kind": _period_kind(cur), "previous_period": prev,
            "value": _num(value), "n": int(_num(n)) if not _missing(n) else 0, "ci_low": _num(ci_low),
            "ci_high": _num(ci_high), "previous_value": _num(previous_value),
            "previous_n": int(_num(previous_n)) if not _missing(previous_n) else 0,
            "change_previous_period": _num(difference), "change_low": _num(diff_low), "change_high": _num(diff_high),
            "p_value": _num(p_value), "p_adjusted": _num(p_adjusted), "significant_previous_period": bool(significant),
            "tested": bool(tested), "small": bool(small), "note": "", "source": source}


def _trend_rows(feedback: Mapping | None, kpi: str) -> list[dict]:
    """The feedback stage's trend rows of `kpi` (results `feedback.trend`: rows with a `kpi` key,
    rows without one are NPS, or {kpi: rows}), oldest first."""
    trend = (feedback or {}).get("trend") if isinstance(feedback, Mapping) else None
    if isinstance(trend, Mapping):
        rows = trend.get(kpi) or []
    else:
        rows = [r for r in (trend or []) if isinstance(r, Mapping) and r.get("kpi", NPS) == kpi]
    return [r for r in rows if r.get("period") and not _missing(r.get("value"))]


def _feedback_tile(feedback: Mapping | None, kpi: str, min_n: int) -> dict | None:
    rows = _trend_rows(feedback, kpi)
    if rows:
        cur, prev = rows[-1], (rows[-2] if len(rows) > 1 else None)
        small = bool(cur.get("small")) or _num(cur.get("n")) < min_n       # the stage's min_n, and the summary's
        tested = (prev is not None and not small and not bool(prev.get("small")) and _num(prev.get("n")) >= min_n
                  and not _missing(cur.get("change")))
        change = cur.get("change") if prev is not None else None
        return _tile(kpi, str(cur["period"]), str(prev["period"]) if prev else "", cur.get("value"), cur.get("n"),
                     cur.get("ci_low"), cur.get("ci_high"), prev.get("value") if prev else None,
                     prev.get("n") if prev else 0, change, cur.get("change_low"), cur.get("change_high"),
                     cur.get("p_value"), cur.get("p_adjusted"), tested and bool(cur.get("significant")), tested,
                     small, "feedback.trend")
    overall = (feedback or {}).get(kpi) if isinstance(feedback, Mapping) else None
    if isinstance(overall, Mapping) and not _missing(overall.get("value")):
        return _tile(kpi, "", "", overall.get("value"), overall.get("n"), overall.get("ci_low"), overall.get("ci_high"),
                     small=_num(overall.get("n")) < min_n, source="feedback")
    return None


def _journey_tile(journey: Mapping | None, kpi: str, min_n: int) -> dict | None:
    rate = (journey or {}).get(kpi) if isinstance(journey, Mapping) else None
    if not isinstance(rate, Mapping) or _missing(rate.get("value")):
        return None
    pct = {k: 100 * _num(rate.get(k)) for k in ("value", "ci_low", "ci_high")}
    return _tile(kpi, "", "", pct["value"], rate.get("n"), pct["ci_low"], pct["ci_high"],
                 small=_num(rate.get("n")) < min_n, source="journey")


def complaint_counts(complaints, *, as_of, period: str = "quarter") -> pd.DataFrame:
    """Complaints and active customer-months per period from the monthly complaint rates of the
    moments-of-truth stage (rows category, month, complaints, active; `active` is the same for
    every category of a month): columns period, complaints, exposure. Months after as_of, and
    months without an active base, are left out."""
    rows = pd.DataFrame(complaints if complaints is not None else [])
    empty = pd.DataFrame({"period": pd.Series(dtype="str"), "complaints": pd.Series(dtype="int64"),
                          "exposure": pd.Series(dtype="float64")})
    if rows.empty or not {"month", "complaints", "active"} <= set(rows.columns) or rows["active"].isna().all():
        return empty
    monthly = (rows.loc[rows["active"].notna()]
               .groupby("month", sort=True).agg(complaints=("complaints", "sum"), active=("active", "first")))
    months = pd.PeriodIndex(monthly.index.astype("str"), freq="M")
    last = pd.Period(_day(as_of).tz_localize(None), freq="M")
    return (monthly.assign(period=months.asfreq(_freq(period)).astype("str"))
            .loc[months <= last]
            .groupby("period", sort=True).agg(complaints=("complaints", "sum"), exposure=("active", "sum"))
            .reset_index().astype({"period": "str", "complaints": "int64", "exposure": "float64"}))


def _complaint_tile(complaints, *, as_of, period: str, min_n: int, confidence: float) -> dict | None:
    if as_of is None:
        return None
    counts = complaint_counts(complaints, as_of=as_of, period=period).set_index("period")
    span = periods(as_of, period)
    cur, prev = span["current"]["label"], span["previous"]["label"]
    if cur not in counts.index:
        return None
    got = counts.reindex([cur, prev]).fillna(0)
    (k1, k2), (t1, t2) = got["complaints"].to_numpy(), got["exposure"].to_numpy()
    est, old = poisson_rate(k1, t1, confidence=confidence), poisson_rate(k2, t2, confidence=confidence)
    diff = poisson_difference(k1, t1, k2, t2, confidence=confidence)
    tested = t1 >= min_n and t2 >= min_n and not _missing(diff["p_value"])
    return _tile(COMPLAINT_RATE, cur, prev, est["value"], t1, est["ci_low"], est["ci_high"], old["value"], t2,
                 diff["difference"], diff["ci_low"], diff["ci_high"], diff["p_value"] if tested else math.nan,
                 tested=tested, small=t1 < min_n, source="complaints")


def kpi_tiles(results: Mapping, *, as_of=None, period: str = "quarter", kpis: Sequence[str] = KPI_TILES,
              min_n: int = 100, alpha: float = 0.05, confidence: float = 0.95) -> pd.DataFrame:
    """The KPI tiles, from what the stages recorded (results.json), only for KPIs with a result.

    NPS, CSAT, CES: the last period of `feedback.trend` against the one before, with the change and
    verdict the feedback stage recorded (source 'feedback.trend'), else all answers
    (`feedback.<kpi>`, no comparison; source 'feedback'). Complaint rate: the `complaints` rows of
    stage 04 summed to the `period` holding `as_of` against the period before, exact Poisson interval
    and conditional test, Benjamini-Hochberg over the tiles the summary tests itself (source
    'complaints'; no tile without an active customer base). Conversion and repeat-customer rate:
    `journey.<kpi>` over the whole period stage 03 analysed (no comparison; source 'journey').
    Out, one row per available KPI in `kpis` order: TILE_COLUMNS. `period` '' = the whole analysed
    period (period_kind 'whole'). Units: NPS points, CSAT / conversion / repeat in percent, CES on
    1-7, complaint rate per 1,000 active customers per month (n = customer-months).
    """
    unknown = [k for k in kpis if k not in KPI_TILES]
    if not kpis or unknown:
        raise SummaryError(f"kpis: unknown KPI tile(s) {unknown} or none named; expected some of {list(KPI_TILES)}")
    _freq(period)
    makers = {
        NPS: lambda: _feedback_tile(results.get("feedback"), NPS, min_n),
        CSAT: lambda: _feedback_tile(results.get("feedback"), CSAT, min_n),
        CES: lambda: _feedback_tile(results.get("feedback"), CES, min_n),
        COMPLAINT_RATE: lambda: _complaint_tile(results.get("complaints"), as_of=as_of, period=period, min_n=min_n,
                                                confidence=confidence),
        CONVERSION_RATE: lambda: _journey_tile(results.get("journey"), CONVERSION_RATE, min_n),
        REPEAT_RATE: lambda: _journey_tile(results.get("journey"), REPEAT_RATE, min_n),
    }
    rows = [tile for tile in (makers[k]() for k in kpis) if tile is not None]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TILE_COLUMNS})
    tiles = pd.DataFrame(rows)
    own = (tiles["source"] == "complaints") & tiles["p_value"].notna()
    bh = metrics.benjamini_hochberg(tiles["p_value"].where(own), alpha=alpha)
    return (tiles.assign(p_adjusted=tiles["p_adjusted"].where(~own, bh["p_adjusted"]),
                         significant_previous_period=tiles["significant_previous_period"].where(
                             ~own, bh["significant"].astype(bool)).astype(bool))
            .astype({"kpi": "str", "period": "str", "previous_period": "str", "note": "str"})
            .loc[:, TILE_COLUMNS])




def with_previous_run(tiles: pd.DataFrame, previous: Mapping | None = None, *, run_id: str = "") -> pd.DataFrame:
    """Tiles plus the comparison with the previous run: previous_run (its id; '' = no previous run),
    previous_run_value and previous_run_period (the previous run's tile, from its results
    `summary.tiles`), change_previous_run = value - previous_run_value (not tested; NaN when the
    previous run's tile was of another kind of period, e.g. a month against a quarter).

    `previous`: the previous run's results (`report.read_results(previous_run_dir)`), or None when
    there is no previous run.
    """
    _require(tiles, ["kpi", "value"], "tiles")
    old = ((previous or {}).get("summary") or {}).get("tiles") or {}
    old = old if isinstance(old, Mapping) else {}
    values = pd.Series({k: v.get("value") for k, v in old.items() if isinstance(v, Mapping)}, dtype="float64")
    labels = {k: str(v.get("period") or "") for k, v in old.items() if isinstance(v, Mapping)}
    kinds = {k: str(v.get("period_kind") or _period_kind(labels[k])) for k, v in old.items() if isinstance(v, Mapping)}
    before = tiles["kpi"].map(values).astype("float64")
    then = pd.Series([labels.get(k, "") for k in tiles["kpi"]], index=tiles.index, dtype="str")
    comparable = pd.Series([kinds.get(k) == kind for k, kind in zip(tiles["kpi"], tiles["period_kind"])],
                           index=tiles.index, dtype="bool")
    return tiles.assign(
        previous_run=(run_id or "previous run") if previous is not None else "",
        previous_run_value=before,
        previous_run_period=then,
        change_previous_run=(tiles["value"] - before).where(comparable).astype("float64"),
    )


def _period_kind(label: str) -> str:
    """'2025-12' -> 'month', '2025Q4' -> 'quarter', '2025' -> 'year', '2025-12-01/2025-12-07' -> 'week',
    '' -> 'whole' (the whole analysed period)."""
    label = str(label or "")
    if not label:
        return "whole"
    return "quarter" if "Q" in label else "week" if "/" in label else "month" if "-" in label else "year"


def _period_text(row: Mapping, t: Mapping) -> str:
    """The period a tile names: its label, or 'all analysed data' for the whole period."""
    return row["period"] or t["whole_period"]


def tiles_record(tiles: pd.DataFrame) -> dict:
    """The tiles as results.json keeps them: {kpi: {value, n, ci_low, ci_high, change_previous_period,
    significant_previous_period, change_previous_run, ...}} (numbers in the tile's unit)."""
    columns = [c for c in [*TILE_COLUMNS, *RUN_COLUMNS] if c in tiles.columns and c != "kpi"]
    return {str(k): row for k, row in tiles.set_index("kpi")[columns].to_dict(orient="index").items()}


# --- tiles as HTML ---------------------------------------------------------------------------------
def _change_colour(row: Mapping) -> str:
    if not row["significant_previous_period"] or _missing(row["change_previous_period"]):
        return _COLOURS["muted"]
    better = (row["change_previous_period"] > 0) == TILE_FORMAT[row["kpi"]]["higher_is_better"]
    return _COLOURS["good"] if better else _COLOURS["bad"]


def _arrow(change) -> str:
    if _missing(change) or change == 0:
        return ""
    return "▲ " if change > 0 else "▼ "


def _period_line(row: Mapping, t: dict, lang: str, min_n: int) -> str:
    kpi = row["kpi"]
    if row.get("period_kind") == "whole":
        return t["no_period_comparison"]
    if row["previous_n"] == 0 or _missing(row["previous_value"]):
        return t["no_previous_data"]
    moved = t["vs_period"].format(arrow=_arrow(row["change_previous_period"]),
                                  change=format_value(row["change_previous_period"], kpi, lang, change=True),
                                  unit=t["change_unit"][kpi], period=row["previous_period"])
    if not row["tested"]:
        verdict = t["not_tested"].format(min_n=format_number(min_n, 0, lang), unit=t["n_unit"][kpi])
    elif _missing(row["p_adjusted"]):     # tested by the stage, which recorded its verdict only
        verdict = t["stage_verdict_significant" if row["significant_previous_period"] else "stage_verdict_not_significant"]
    else:
        key = "significant" if row["significant_previous_period"] else "not_significant"
        p_text = format_p(row["p_adjusted"], lang)
        verdict = t[key].format(p=p_text if p_text.startswith("<") else f"= {p_text}")
    return f"{moved}: {verdict}"


def _run_line(row: Mapping, t: dict, lang: str) -> str:
    if not row.get("previous_run"):
        return t["no_run"]
    if _missing(row.get("previous_run_value")):
        return t["run_missing"]
    kpi = row["kpi"]
    if _missing(row.get("change_previous_run")):
        return t["run_other_period"].format(value=format_value(row["previous_run_value"], kpi, lang),
                                            period=row.get("previous_run_period") or "–")
    return t["vs_run"].format(change=format_value(row["change_previous_run"], kpi, lang, change=True),
                              unit=t["change_unit"][kpi], value=format_value(row["previous_run_value"], kpi, lang),
                              period=row.get("previous_run_period") or "–")


def _tile_html(row: Mapping, t: dict, lang: str, min_n: int, confidence: float) -> str:
    kpi = row["kpi"]
    small = bool(row["small"]) and not row["note"]
    box = (f"border:1px solid {_COLOURS['line']};border-radius:6px;padding:10px 14px;"
           f"background:{'#eeeeee' if small or row['note'] else _COLOURS['bg']};min-width:0")
    value_colour = _COLOURS["small"] if small or row["note"] else _COLOURS["value"]
    line = f"font-size:12px;line-height:1.4;color:{_COLOURS['muted']};margin-top:3px"
    parts = [
        f'<div style="font-size:13px;font-weight:bold;color:{_COLOURS["ink"]}">'
        f'{_esc(t["label"][kpi])} · {_esc(_period_text(row, t))}</div>',
        f'<div style="font-size:11px;color:{_COLOURS["muted"]}">{_esc(t["unit"][kpi])}</div>',
        f'<div style="font-size:26px;font-weight:bold;color:{value_colour};margin:4px 0 2px">'
        f'{_esc(format_value(row["value"], kpi, lang))}</div>',
    ]
    if row["note"]:
        parts.append(f'<div style="{line}">{_esc(t["note"][row["note"]].format(period=_period_text(row, t)))}</div>')
    else:
        interval = t["interval"].format(level=format_number(100 * confidence, 0, lang),
                                        low=format_value(row["ci_low"], kpi, lang),
                                        high=format_value(row["ci_high"], kpi, lang))
        n_text = t["n"].format(n=format_number(row["n"], 0, lang), unit=t["n_unit"][kpi])
        parts.append(f'<div style="{line}">{_esc(interval)} · {_esc(n_text)}</div>')
        if small:
            note = t["small"].format(min_n=format_number(min_n, 0, lang), unit=t["n_unit"][kpi])
            parts.append(f'<div style="{line}">{_esc(note)}</div>')
        parts.append(f'<div style="font-size:12px;line-height:1.4;margin-top:3px;color:{_change_colour(row)}'
                     f'{";font-weight:bold" if row["significant_previous_period"] else ""}">'
                     f'{_esc(_period_line(row, t, lang, min_n))}</div>')
    parts.append(f'<div style="{line}">{_esc(_run_line(row, t, lang))}</div>')
    value_attr = "" if _missing(row["value"]) else f"{float(row['value']):.6g}"
    return (f'<div role="listitem" data-kpi="{_esc(kpi)}" data-value="{value_attr}" '
            f'aria-label="{_esc(t["label"][kpi])}" style="{box}">{"".join(parts)}</div>')


def tiles_html(tiles: pd.DataFrame, *, lang: str = "en", kpis: Sequence[str] | None = None, min_n: int = 100,
               confidence: float = 0.95, caption: str = "") -> str:
    """The tiles as one self-contained HTML grid (inline CSS only, no external resources): per KPI
    its label and period, unit, value, interval and n, the change against the previous period with
    the verdict of the test, and the change against the previous run. `kpis` picks and orders the
    tiles (default: all rows); each tile carries data-kpi and data-value for machines."""
    t = _lang(lang)
    _require(tiles, TILE_COLUMNS, "tiles")
    rows = tiles.assign(**{c: tiles[c] if c in tiles.columns else "" for c in RUN_COLUMNS[:1]})
    if kpis is not None:
        rows = rows.set_index("kpi").reindex([k for k in kpis if k in set(tiles["kpi"])]).reset_index()
    body = "".join(_tile_html(row, t, lang, min_n, confidence) for row in rows.to_dict(orient="records"))
    head = (f'<div style="font-size:12px;color:{_COLOURS["muted"]};margin-bottom:6px">{_esc(caption)}</div>'
            if caption else "")
    return (f'<div style="font-family:{_FONT};color:{_COLOURS["ink"]}">{head}'
            f'<div role="list" style="display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px">'
            f"{body}</div></div>")


def tiles_caption(tiles: pd.DataFrame, lang: str = "en") -> str:
    """'Each tile names its period: 2025-12: NPS, CSAT · all analysed data: Conversion rate' (the
    tiles grouped by the period they show)."""
    t = _lang(lang)
    if tiles.empty:
        return ""
    groups: dict[str, list[str]] = {}
    for row in tiles.to_dict(orient="records"):
        groups.setdefault(_period_text(row, t), []).append(t["label"][row["kpi"]])
    return t["tiles_caption"].format(items=" · ".join(
        t["tiles_caption_item"].format(period=period, labels=", ".join(labels)) for period, labels in groups.items()))


# --- findings --------------------------------------------------------------------------------------
def _rows(value) -> pd.DataFrame:
    return pd.DataFrame(value) if isinstance(value, list) and value else pd.DataFrame()


def complaint_chart(results: Mapping) -> tuple[list, str]:
    """The complaint control-chart rows stage 04 recorded and their basis: `complaints` (rates per
    1,000 active customers; basis 'rate') or, without an active customer base, `complaint_counts`
    (complaints per month; basis 'count', its complaints / center / ucl / lcl given under the rate
    columns' names so one reader serves both). ([], 'rate') when neither was recorded.

        complaint_chart({"complaint_counts": [{"complaints": 9, "center": 3.0, ...}]}) -> ([{..., "rate_per_1000": 9}], "count")
    """
    if _rows(results.get("complaints")).size:
        return results["complaints"], "rate"
    counts = _rows(results.get("complaint_counts"))
    if not counts.size or not {"complaints", "center", "ucl"} <= set(counts.columns):
        return [], "rate"
    named = counts.assign(rate_per_1000=counts["complaints"], center_per_1000=counts["center"],
                          ucl_per_1000=counts["ucl"], lcl_per_1000=counts.get("lcl", np.nan))
    return named.to_dict(orient="records"), "count"


def _names(rows: pd.DataFrame, labels: Mapping | None, section: str = "moments", col: str = "moment") -> pd.Series:
    """Labels of the codes in `col` in the report language; else the row's own `label`; else the code."""
    own = rows["label"].astype("str") if "label" in rows.columns else rows[col].astype("str")
    mapping = dict((labels or {}).get(section) or {})
    mapped = rows[col].astype("str").map(lambda code: mapping.get(code, "")).astype("str")
    return mapped.where(mapped != "", own)


def _truth_and_magic(rows: pd.DataFrame, labels: Mapping | None, top: int | None = None) -> tuple:
    """Moments with NPS points at stake (priority > 0), highest first (the first `top`), and the
    magic moments, each with `name` in the report language."""
    rows = rows.assign(name=_names(rows, labels))
    truth = (rows.loc[rows["priority"].fillna(0).astype(float) > 0]
             .sort_values("priority", ascending=False, kind="stable"))
    magic = rows.loc[rows["magic"].fillna(False).astype(bool)]
    return (truth if top is None else truth.head(top)), magic


def _label(labels: Mapping | None, section: str, code, fallback=None) -> str:
    return ((labels or {}).get(section) or {}).get(code) or fallback or str(code)


def headline_finding(tiles: pd.DataFrame, kpi: str, *, lang: str = "en", min_n: int = 100,
                     confidence: float = 0.95) -> str | None:
    """One sentence on one tile: value, interval and n in its period, the change against the
    previous period with its verdict, and the change since the previous run (None if no such tile)."""
    t = _lang(lang)
    found = tiles.loc[tiles["kpi"] == kpi]
    if found.empty or found["note"].iloc[0]:
        return None
    row = found.iloc[0].to_dict()
    change = format_value(row["change_previous_period"], kpi, lang, change=True) + t["change_unit"][kpi]
    whole = row.get("period_kind") == "whole"
    if whole:
        moved = t["no_comparison_whole"]
    elif row["previous_n"] == 0 or _missing(row["previous_value"]):
        moved = t["no_comparison"]
    elif not row["tested"]:
        moved = t["untested"].format(min_n=format_number(min_n, 0, lang), unit=t["n_unit"][kpi])
    elif row["significant_previous_period"]:
        moved = t["rose" if row["change_previous_period"] > 0 else "fell"].format(change=change.lstrip("+-−"))  # 'a fall by 24.0', not 'by -24.0'
    else:
        moved = t["noise"].format(change=change)
    text = t["headline_whole" if whole else "headline"].format(
        label=t["label"][kpi], period=_period_text(row, t), value=format_value(row["value"], kpi, lang) + t["value_unit"][kpi],
        interval=t["interval"].format(level=format_number(100 * confidence, 0, lang),
                                      low=format_value(row["ci_low"], kpi, lang), high=format_value(row["ci_high"], kpi, lang)),
        n=format_number(row["n"], 0, lang), unit=t["n_unit"][kpi], previous=row["previous_period"], moved=moved)
    if "previous_run" in row:
        if not row["previous_run"]:
            text += t["run_none"]
        elif _missing(row.get("previous_run_value")):
            text += t["run_no_value"]
        elif _missing(row.get("change_previous_run")):
            text += t["run_not_comparable"].format(period=row.get("previous_run_period"))
        else:
            text += t["run_change"].format(change=format_value(row["change_previous_run"], kpi, lang, change=True)
                                           + t["change_unit"][kpi])
    return text


def movers_finding(tiles: pd.DataFrame, kpis: Sequence[str], *, lang: str = "en") -> str | None:
    """One sentence on the tiles of `kpis` whose change against the previous period is significant,
    or that none is (None when `kpis` has no available tile)."""
    t = _lang(lang)
    shown = tiles.set_index("kpi").reindex([k for k in kpis if k in set(tiles["kpi"])]).reset_index()
    shown = shown.loc[(shown["note"] == "") & (shown["period_kind"] != "whole")]
    if shown.empty:
        return None
    moved = shown.loc[shown["significant_previous_period"].astype(bool)]
    if moved.empty:
        return t["no_movers"].format(labels=", ".join(t["label"][k] for k in shown["kpi"]))
    items = "; ".join(t["mover"].format(label=t["label"][r["kpi"]],
                                        change=format_value(r["change_previous_period"], r["kpi"], lang, change=True)
                                        + t["change_unit"][r["kpi"]], previous=r["previous_period"],
                                        value=format_value(r["value"], r["kpi"], lang) + t["value_unit"][r["kpi"]])
                      for r in moved.to_dict(orient="records"))
    return t["movers"].format(items=items)


def moments_finding(moments_of_truth, *, lang: str = "en", labels: Mapping | None = None, top: int = 3) -> str | None:
    """The moment of truth with most NPS points at stake (and the next ones), and the magic
    moments, from the `moments_of_truth` rows of results.json (None when absent)."""
    t = _lang(lang)
    rows = _rows(moments_of_truth)
    if rows.empty:
        return None
    _require(rows, ["moment", "nps_impact", "ci_low", "ci_high", "priority", "magic"], "moments_of_truth")
    ranked, magic = _truth_and_magic(rows, labels)
    if ranked.empty:
        text = t["no_moment"]
    else:
        first = ranked.iloc[0]
        others = ranked["name"].iloc[1:top]
        text = t["moment"].format(
            label=first["name"], impact=format_number(abs(first["nps_impact"]), 1, lang),
            interval=t["interval"].format(level="95", low=format_number(first["ci_low"], 1, lang, sign=True),
                                          high=format_number(first["ci_high"], 1, lang, sign=True)),
            stake=format_number(first["priority"], 1, lang),
            others=t["moment_others"].format(labels=", ".join(f"«{x}»" for x in others)) if len(others) else "")
    if len(magic):
        items = ", ".join(f"«{r['name']}» ({format_number(r['nps_impact'], 1, lang, sign=True)})"
                          for r in magic.to_dict(orient="records"))
        text += t["magic" if len(magic) == 1 else "magics"].format(items=items)
    else:
        text += t["no_magic"]
    return text


def _signal(rows: pd.DataFrame) -> pd.Series:
    return pd.Series(np.where(rows["rate_per_1000"] > rows["ucl_per_1000"], "above", "below"), index=rows.index, dtype="str")


def complaints_finding(complaints, *, lang: str = "en", labels: Mapping | None = None, current_period: str = "",
                       period: str = "quarter", max_listed: int = 3, basis: str = "rate") -> str | None:
    """Months out of control (rows of results.json `complaints` with out_of_control): how many,
    above and below the limits, the breakouts (latest first, at most `max_listed` named), and
    those in `current_period`. `basis` 'count': rows of `complaint_chart` from monthly counts."""
    t = _lang(lang)
    count = basis == "count"
    rows = _rows(complaints)
    if rows.empty:
        return None
    _require(rows, ["category", "month", "rate_per_1000", "out_of_control", "center_per_1000", "ucl_per_1000"], "complaints")
    flagged = rows.loc[rows["out_of_control"].fillna(False).astype(bool)]
    if flagged.empty:
        return t["complaints_none_count" if count else "complaints_none"]
    flagged = flagged.assign(side=_signal(flagged), name=_names(flagged, labels, "complaint_categories", "category"))
    above = flagged.loc[flagged["side"] == "above"].sort_values("month", kind="stable")
    text = t["complaints"].format(n=format_number(len(flagged), 0, lang), above=format_number(len(above), 0, lang),
                                  below=format_number(len(flagged) - len(above), 0, lang))
    if len(above):
        latest = above.iloc[::-1]
        items = "; ".join(t["complaints_item_count" if count else "complaints_item"].format(
                              category=r["name"], month=r["month"],
                              rate=format_number(r["rate_per_1000"], 0 if count else 1, lang),
                                                      centre=format_number(r["center_per_1000"], 1, lang))
                          for r in latest.head(max_listed).to_dict(orient="records"))
        more = t["complaints_more"].format(n=format_number(len(latest) - max_listed, 0, lang)) if len(latest) > max_listed else ""
        text += t["complaints_latest"].format(items=items + more)
    if current_period:
        months = pd.PeriodIndex(flagged["month"].astype("str"), freq="M").asfreq(_freq(period)).astype("str")
        now = flagged.loc[np.asarray(months == current_period)]
        if len(now):
            text += t["complaints_current"].format(period=current_period, items=", ".join(
                f"{r['name']} {r['month']} ({t[r['side']]})" for r in now.sort_values("month").to_dict(orient="records")))
    return text


def contact_list_finding(contact_list: Mapping | None, *, lang: str = "en") -> str | None:
    """The call-back list in one sentence (results.json `contact_list`; None when absent)."""
    t = _lang(lang)
    if not contact_list or "included" not in contact_list:
        return None
    c = contact_list
    return t["contact"].format(included=format_number(c.get("included"), 0, lang),
                               days=format_number(c.get("recent_days"), 0, lang),
                               no_consent=format_number(c.get("excluded_no_consent"), 0, lang),
                               other=format_number(c.get("excluded_other"), 0, lang))


def occasions_finding(relevance: Mapping | None, occasion_list: Mapping | None = None, *, lang: str = "en",
                      confidence: float = 0.95) -> str | None:
    """Occasion-timed against other sends in one sentence (results `campaign_relevance.adjusted`:
    ratio, ci_low, ci_high), plus the occasions due and listed (`occasion_list`) when recorded;
    None without a finite adjusted ratio."""
    adjusted = (relevance or {}).get("adjusted") if isinstance(relevance, Mapping) else None
    if not isinstance(adjusted, Mapping) or any(_missing(adjusted.get(k)) for k in ("ratio", "ci_low", "ci_high")):
        return None
    t = _lang(lang)
    verdict = "more" if adjusted["ci_low"] > 1 else "less" if adjusted["ci_high"] < 1 else "same"
    text = t["occasions"].format(ratio=format_number(adjusted["ratio"], 1, lang), level=round(100 * confidence),
                                 low=format_number(adjusted["ci_low"], 1, lang), high=format_number(adjusted["ci_high"], 1, lang),
                                 verdict=t["occasions_verdict"][verdict])
    listed = occasion_list or {}
    if "candidates" in listed and "horizon_days" in listed:
        text += t["occasions_due"].format(due=format_number(listed["candidates"], 0, lang),
                                          days=format_number(listed["horizon_days"], 0, lang),
                                          listed=format_number(listed.get("customers_included"), 0, lang))
    return text


def journey_finding(journey: Mapping | None, *, lang: str = "en", labels: Mapping | None = None,
                    stated: Sequence[str] = ()) -> str | None:
    """Conversion and repeat customers over the analysed period and the funnel's largest loss
    (results.json `journey`; None when absent, or when it would only repeat the rates in `stated`,
    the KPIs another finding states)."""
    t = _lang(lang)
    conv, rep = (journey or {}).get("conversion_rate"), (journey or {}).get("repeat_customer_rate")
    conv = conv if isinstance(conv, Mapping) and not _missing(conv.get("value")) else None
    rep = rep if isinstance(rep, Mapping) and not _missing(rep.get("value")) else None
    if conv is None and rep is None:
        return None
    drop = ""
    funnel = _rows((journey or {}).get("funnel"))
    if len(funnel) >= 2 and {"step", "step_conversion"} <= set(funnel.columns):
        steps = funnel.iloc[1:]["step_conversion"].astype(float).dropna()
        if len(steps):
            worst = steps.idxmin()
            drop = t["journey_drop"].format(a=_step_label(funnel.loc[worst - 1, "step"], labels),
                                            b=_step_label(funnel.loc[worst, "step"], labels),
                                            rate=_share(funnel.loc[worst, "step_conversion"], lang, 0))
    parts = {"conversion": _share((conv or {}).get("value"), lang), "leads": format_number((conv or {}).get("n"), 0, lang),
             "interval": t["interval"].format(level="95", low=_share((conv or {}).get("ci_low"), lang),
                                              high=_share((conv or {}).get("ci_high"), lang)),
             "repeat": _share((rep or {}).get("value"), lang), "buyers": format_number((rep or {}).get("n"), 0, lang),
             "drop": drop}
    said = {k for k, rate in ((CONVERSION_RATE, conv), (REPEAT_RATE, rep)) if rate is not None}
    if not drop and said <= set(stated):
        return None
    key = "journey" if conv and rep else "journey_conversion" if conv else "journey_repeat"
    return t[key].format(**parts)


def _step_label(step, labels: Mapping | None) -> str:
    """'quote|consultation' -> 'Quote / Consultation' with the touchpoint labels."""
    return " / ".join(_label(labels, "touchpoints", code) for code in str(step).split("|"))


def _value_basis(value: Mapping, t: Mapping) -> str:
    """What the value of results.json `value` is: predicted CLV, revenue to date plus the
    predicted CLV of repeat purchases, or (fallback) revenue to date."""
    if value.get("status") != "fitted":
        return t["basis_revenue"]
    return t["basis_plus"] if (value.get("clv") or {}).get("basis") == "revenue_plus_predicted_clv" else t["basis_clv"]


def value_finding(value: Mapping | None, *, lang: str = "en") -> str | None:
    """High-value customers at risk and their value, and the revenue concentration (results.json
    `value`; None when absent)."""
    t = _lang(lang)
    clv = (value or {}).get("clv") or {}
    if not value or ("at_risk" not in value and _missing(clv.get("total"))):
        return None
    top20 = (value.get("historic") or {}).get("top20_share")
    basis = _value_basis(value, t)
    top = t["value_top"].format(share=_share(top20, lang, 0)) if not _missing(top20) else ""
    if "at_risk" not in value:
        return t["value_total"].format(customers=format_number(clv.get("customers"), 0, lang),
                                       amount=format_number(clv.get("total"), 0, lang), basis=basis, top=top)
    return t["value"].format(at_risk=format_number(value.get("at_risk"), 0, lang),
                             amount=format_number(value.get("at_risk_value"), 0, lang), basis=basis, top=top)


def findings(tiles: pd.DataFrame, results: Mapping, *, lang: str = "en", audience: str = "management",
             labels: Mapping | None = None, min_n: int = 100, confidence: float = 0.95, period: str = "quarter",
             max_findings: int = 5) -> list[str]:
    """Three to five sentences written from the numbers, in the order of the audience's sections:
    tiles (the audience's first tile, then the significant movers among its other tiles), moments
    of truth, complaint months out of control, the contact list, journey, value. Sections without
    results are skipped, so fewer sentences come back when stages are missing."""
    kpis = [k for k in audience_tiles(audience) if k in set(tiles["kpi"])]
    available = [k for k in kpis if not tiles.set_index("kpi").loc[k, "note"]]
    current = next(iter(tiles.loc[tiles["kpi"] == COMPLAINT_RATE, "period"]), "")
    chart, basis = complaint_chart(results)
    makers = {
        "tiles": lambda: [headline_finding(tiles, available[0], lang=lang, min_n=min_n, confidence=confidence)
                          if available else None,
                          movers_finding(tiles, available[1:], lang=lang) if len(available) > 1 else None],
        "moments": lambda: [moments_finding(results.get("moments_of_truth"), lang=lang, labels=labels)],
        "complaints": lambda: [complaints_finding(chart, lang=lang, labels=labels, current_period=current,
                                                  period=period, basis=basis)],
        "contact_list": lambda: [contact_list_finding(results.get("contact_list"), lang=lang)],
        "journey": lambda: [journey_finding(results.get("journey"), lang=lang, labels=labels, stated=available[:1])],
        "value": lambda: [value_finding(results.get("value"), lang=lang)],
        "occasions": lambda: [occasions_finding(results.get("campaign_relevance"), results.get("occasion_list"),
                                                lang=lang, confidence=confidence)],
    }
    sentences = [s for name in audience_sections(audience) if name in makers for s in makers[name]() if s]
    return sentences[:max_findings]


# --- sections --------------------------------------------------------------------------------------
_TABLE = f"border-collapse:collapse;font-family:{_FONT};font-size:13px;margin:4px 0 8px"
_TH = f"padding:4px 10px;border-bottom:2px solid {_COLOURS['line']};background:{_COLOURS['bg']}"
_TD = f"padding:4px 10px;border-bottom:1px solid {_COLOURS['line']};vertical-align:top"


def table_html(frame: pd.DataFrame, *, numeric: Sequence[str] = ()) -> str:
    """A DataFrame of display text as an HTML table with inline CSS (numeric columns right-aligned)."""
    align = {c: ";text-align:right;font-variant-numeric:tabular-nums" if c in numeric else ";text-align:left"
             for c in frame.columns}
    head = "".join(f'<th scope="col" style="{_TH}{align[c]}">{_esc(c)}</th>' for c in frame.columns)
    align = {c: a + (";white-space:nowrap" if c in numeric else "") for c, a in align.items()}
    body = "".join("<tr>" + "".join(f'<td style="{_TD}{align[c]}">{_esc(v)}</td>' for c, v in row.items()) + "</tr>"
                   for row in frame.to_dict(orient="records"))
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _missing_html(name: str, t: dict) -> tuple[str, str]:
    text = t["missing"].format(stage=t["stage"][name])
    return f'<p style="font-family:{_FONT};color:{_COLOURS["muted"]}">{_esc(text)}</p>', text


def moments_figure_html(moments_of_truth, *, lang: str = "en", labels: Mapping | None = None, top: int = 5,
                        window_days=None, covariates=None) -> str:
    """The top moments of truth and the magic moments as a bar chart of their adjusted NPS impact
    with 95% intervals (house style, caption with n and definition), embedded as a PNG <figure>
    with alt text and caption; '' when no moment is significant."""
    t = _lang(lang)
    rows = _rows(moments_of_truth)
    if rows.empty:
        return ""
    truth, magic = _truth_and_magic(rows, labels, top)
    shown = pd.concat([truth.assign(_magic=False), magic.assign(_magic=True)]).iloc[::-1]
    if shown.empty:
        return ""
    lead = truth.iloc[0] if len(truth) else magic.iloc[0]
    title = t["figure_title" if len(truth) else "figure_title_magic"].format(
        label=lead["name"], impact=format_number(lead["nps_impact"], 0, lang, sign=True))
    definition = t["figure_definition"].format(window=window_days if window_days is not None else "–",
                                               covariates=", ".join(covariates or []) or "–")
    n = int(shown["n_exposed"].sum()) if "n_exposed" in shown.columns else 0
    fig, ax = plots.new_figure(title, size=(8.0, 0.45 * len(shown) + 1.8))
    colours = np.where(shown["_magic"], plots.PALETTE["positive"], plots.PALETTE["negative"])
    ax.barh(shown["name"], shown["nps_impact"], color=colours)
    ax.errorbar(shown["nps_impact"], shown["name"], fmt="none", ecolor="#333333", capsize=3, linewidth=1,
                xerr=[shown["nps_impact"] - shown["ci_low"], shown["ci_high"] - shown["nps_impact"]])
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_xlabel(t["figure_xlabel"])
    caption_n = t["figure_n"].format(n=format_number(n, 0, lang))
    plots.finish(fig, n=caption_n, definition=definition)
    buffer = io.BytesIO()
    with plots.house_style():
        fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    alt = t["figure_alt"].format(k=len(shown), items="; ".join(
        f"{r['name']} {format_number(r['nps_impact'], 1, lang, sign=True)}" for r in shown.iloc[::-1].to_dict(orient="records")))
    return (f'<figure style="margin:6px 0 10px"><img src="data:image/png;base64,{data}" alt="{_esc(alt)}" '
            f'style="max-width:100%;height:auto"><figcaption style="font-family:{_FONT};font-size:12px;'
            f'color:{_COLOURS["muted"]}">{_esc(title)}</figcaption></figure>')


def _moments_section(results: Mapping, t: dict, lang: str, labels, top: int) -> tuple[str, str]:
    rows = _rows(results.get("moments_of_truth"))
    if rows.empty:
        return _missing_html("moments", t)
    truth, magic = _truth_and_magic(rows, labels, top)
    shown = pd.concat([truth.assign(_kind=t["kind_truth"]), magic.assign(_kind=t["kind_magic"], rank=np.nan)])
    c = t["moments_columns"]
    table = pd.DataFrame({
        c["rank"]: [format_number(r, 0, lang) for r in shown.get("rank", pd.Series(np.nan, index=shown.index))],
        c["label"]: shown["name"].astype("str"),
        c["kind"]: shown["_kind"],
        c["reach"]: [format_number(100 * r, 1, lang) for r in shown.get("reach", pd.Series(np.nan, index=shown.index))],
        c["nps_impact"]: [format_number(v, 1, lang, sign=True) for v in shown["nps_impact"]],
        c["interval"]: [t["range"].format(low=format_number(lo, 1, lang, sign=True),
                                          high=format_number(hi, 1, lang, sign=True))
                        for lo, hi in zip(shown["ci_low"], shown["ci_high"])],
        c["churn_lift"]: [format_number(v, 2, lang) for v in shown.get("churn_lift", pd.Series(np.nan, index=shown.index))],
        c["priority"]: [format_number(v, 2, lang) for v in shown["priority"]],
    })
    info = results.get("moments") or {}
    figure = moments_figure_html(rows.to_dict(orient="records"), lang=lang, labels=labels, top=top,
                                 window_days=info.get("window_days"), covariates=info.get("covariates"))
    body = figure + (table_html(table, numeric=[c["rank"], c["reach"], c["nps_impact"], c["interval"], c["churn_lift"],
                                                 c["priority"]])
                     if len(table) else "")
    text = " ".join(s for s in (moments_finding(results.get("moments_of_truth"), lang=lang, labels=labels),
                                t["moments_text"]) if s)
    return body, text


def _complaints_section(results: Mapping, t: dict, lang: str, labels, current: str, period: str,
                        max_rows: int = 12) -> tuple[str, str]:
    chart, basis = complaint_chart(results)
    rows = _rows(chart)
    if rows.empty:
        return _missing_html("complaints", t)
    flagged = rows.loc[rows["out_of_control"].fillna(False).astype(bool)]
    text = " ".join([complaints_finding(rows.to_dict(orient="records"), lang=lang, labels=labels,
                                        current_period=current, period=period, basis=basis),
                     t["complaints_text_count" if basis == "count" else "complaints_text"].format(rows=max_rows)])
    if flagged.empty:
        return "", text
    flagged = flagged.assign(side=_signal(flagged)).sort_values(["month", "category"], ascending=[False, True],
                                                                kind="stable").head(max_rows)
    c = t["complaints_columns"]
    table = pd.DataFrame({
        c["category"]: _names(flagged, labels, "complaint_categories", "category").to_numpy(),
        c["month"]: flagged["month"].astype("str"),
        c["complaints"]: [format_number(v, 0, lang) for v in flagged.get("complaints", pd.Series(np.nan, index=flagged.index))],
        c["rate"]: [format_number(v, 1, lang) for v in flagged["rate_per_1000"]],
        c["centre"]: [format_number(v, 1, lang) for v in flagged["center_per_1000"]],
        c["limit"]: [format_number(u if s == "above" else lo, 1, lang) for u, lo, s in
                     zip(flagged["ucl_per_1000"], flagged.get("lcl_per_1000", flagged["ucl_per_1000"]), flagged["side"])],
        c["signal"]: [t[s] for s in flagged["side"]],
    })
    if basis == "count":                           # the count is the charted value: no rate column
        table = table.drop(columns=c["rate"])
    return table_html(table, numeric=[col for col in (c["complaints"], c["rate"], c["centre"], c["limit"])
                                      if col in table.columns]), text


def _contact_section(results: Mapping, t: dict, lang: str) -> tuple[str, str]:
    counts = results.get("contact_list")
    if not counts or "included" not in counts:
        return _missing_html("contact_list", t)
    c = t["contact_columns"]
    keys = ["candidates", "included", "excluded_no_consent", "excluded_other"]
    table = pd.DataFrame({c["item"]: [t["contact_rows"][k] for k in keys],
                          c["customers"]: [format_number(counts.get(k), 0, lang) for k in keys]})
    text = " ".join([contact_list_finding(counts, lang=lang),
                     t["contact_text"].format(file=counts.get("file") or "contact_list.csv",
                                              basis=counts.get("consent_basis") or "–")])
    return table_html(table, numeric=[c["customers"]]), text


def _occasions_section(results: Mapping, t: dict, lang: str, confidence: float) -> tuple[str, str]:
    text = occasions_finding(results.get("campaign_relevance"), results.get("occasion_list"), lang=lang,
                             confidence=confidence)
    return (_missing_html("occasions", t) if text is None
            else (f'<p style="font-family:{_FONT};font-size:14px">{_esc(text)}</p>', text))


def _journey_section(results: Mapping, t: dict, lang: str, labels) -> tuple[str, str]:
    journey = results.get("journey") or {}
    names = [k for k in ("conversion_rate", "repeat_customer_rate", "campaign_response_rate")
             if isinstance(journey.get(k), Mapping)]
    if not names:
        return _missing_html("journey", t)
    c = t["journey_columns"]
    rates = pd.DataFrame({
        c["rate"]: [t["journey_rates"][k] for k in names],
        c["value"]: [_share(journey[k].get("value"), lang) for k in names],
        c["interval"]: [t["range"].format(low=_share(journey[k].get("ci_low"), lang),
                                          high=_share(journey[k].get("ci_high"), lang)) for k in names],
        c["n"]: [format_number(journey[k].get("n"), 0, lang) for k in names],
    })
    body = table_html(rates, numeric=[c["value"], c["n"]])
    funnel = _rows(journey.get("funnel"))
    if len(funnel) and {"step", "customers", "conversion", "step_conversion"} <= set(funnel.columns):
        f = t["funnel_columns"]
        body += table_html(pd.DataFrame({
            f["step"]: [_step_label(s, labels) for s in funnel["step"]],
            f["customers"]: [format_number(v, 0, lang) for v in funnel["customers"]],
            f["conversion"]: [_share(v, lang) for v in funnel["conversion"]],
            f["step_conversion"]: [_share(v, lang) for v in funnel["step_conversion"]],
        }), numeric=[f["customers"], f["conversion"], f["step_conversion"]])
    text = " ".join(s for s in (journey_finding(journey, lang=lang, labels=labels), t["journey_text"]) if s)
    return body, text


def _value_section(results: Mapping, t: dict, lang: str) -> tuple[str, str]:
    value = results.get("value") or {}
    clv = value.get("clv") or {}
    r = t["value_rows"]
    items = {
        r["basis"]: _value_basis(value, t) if clv else None,
        r["customers"]: clv.get("customers"), r["median"]: clv.get("median"), r["p90"]: clv.get("p90"),
        r["total"]: clv.get("total"), r["at_risk"]: value.get("at_risk"), r["at_risk_value"]: value.get("at_risk_value"),
    }
    shown = {k: (v if isinstance(v, str) else format_number(v, 0, lang)) for k, v in items.items() if not _missing(v)}
    top20 = (value.get("historic") or {}).get("top20_share")
    if not _missing(top20):
        shown[r["top20_share"]] = _share(top20, lang, 0)
    c = t["value_columns"]
    table = pd.DataFrame({c["item"]: list(shown), c["value"]: list(shown.values())})
    message = value.get("message") or value.get("model")
    text = " ".join(s for s in (value_finding(value, lang=lang),
                                t["value_text"].format(message=message) if message else "") if s)
    return table_html(table, numeric=[c["value"]]) if len(table) else "", text


def _tiles_text(tiles: pd.DataFrame, kpis: Sequence[str], t: dict, lang: str, min_n: int, alpha: float,
                confidence: float, period: str) -> str:
    shown = [k for k in kpis if k in set(tiles["kpi"])]
    definitions = "; ".join(t["definition"][k] for k in shown)
    return t["tiles_text"].format(level=format_number(100 * confidence, 0, lang), period=t["period_names"][period],
                                  complaint_test=t["test"][COMPLAINT_RATE], min_n=format_number(min_n, 0, lang),
                                  definitions=definitions)


def build_sections(audience: str, *, tiles: pd.DataFrame, results: Mapping, findings_text: Sequence[str],
                   lang: str = "en", labels: Mapping | None = None, period: str = "quarter", top_moments: int = 5,
                   min_n: int = 100, alpha: float = 0.05, confidence: float = 0.95, caption: str = "") -> list[dict]:
    """The audience's sections in reading order that have something to show, each {name, title, html,
    text}: `html` a self-contained block (tiles grid, tables, an embedded figure), `text` Markdown
    interpreting it. A section whose results are absent is left out (`skipped_note` lists it)."""
    t = _lang(lang)
    kpis = [k for k in audience_tiles(audience) if k in set(tiles["kpi"])]
    current = next(iter(tiles.loc[tiles["kpi"] == COMPLAINT_RATE, "period"]), "")
    findings_html = (f'<ol style="font-family:{_FONT};font-size:14px;line-height:1.5">'
                     + "".join(f"<li>{_esc(s)}</li>" for s in findings_text) + "</ol>")
    builders = {
        "tiles": lambda: (tiles_html(tiles, lang=lang, kpis=kpis, min_n=min_n, confidence=confidence, caption=caption),
                          _tiles_text(tiles, kpis, t, lang, min_n, alpha, confidence, period)),
        "findings": lambda: (findings_html, t["findings_text"]),
        "moments": lambda: _moments_section(results, t, lang, labels, top_moments),
        "complaints": lambda: _complaints_section(results, t, lang, labels, current, period),
        "contact_list": lambda: _contact_section(results, t, lang),
        "journey": lambda: _journey_section(results, t, lang, labels),
        "value": lambda: _value_section(results, t, lang),
        "occasions": lambda: _occasions_section(results, t, lang, confidence),
    }
    absent = set(missing_sections(results, audience)) | ({"tiles"} if not kpis else set()) \
        | ({"findings"} if not findings_text else set())
    return [{"name": name, "title": t["sections"][name], **dict(zip(("html", "text"), builders[name]()))}
            for name in audience_sections(audience) if name not in absent]


def data_period(results: Mapping) -> pd.DataFrame:
    """Rows per processed table as stage 01 recorded them (results `tables`: {table: rows}):
    columns table, rows; empty when stage 01 recorded none."""
    counts = results.get("tables") if isinstance(results.get("tables"), Mapping) else {}
    return pd.DataFrame({"table": pd.Series(list(counts), dtype="str"),
                         "rows": pd.Series([int(_num(v)) if not _missing(v) else 0 for v in counts.values()],
                                           dtype="int64")})


def summary_record(tiles: pd.DataFrame, findings_text: Sequence[str], *, span: Mapping, audience: str, lang: str,
                   sections: Sequence[str], previous_run: str = "", data: pd.DataFrame | None = None,
                   parameters: Mapping | None = None) -> dict:
    """The `summary` section of results.json: audience, lang, periods, previous run, tiles
    ({kpi: {value, n, ci_low, ci_high, change_previous_period, significant_previous_period,
    change_previous_run, ...}}), findings (the sentences shown), sections (order shown), data
    period and parameters."""
    return {"audience": audience, "lang": lang, "period": span.get("period"), "as_of": span.get("as_of"),
            "current_period": dict(span.get("current") or {}), "previous_period": dict(span.get("previous") or {}),
            "previous_run": previous_run or None, "tiles": tiles_record(tiles), "findings": list(findings_text),
            "sections": list(sections), "data_period": data if data is not None else [],
            "parameters": dict(parameters or {})}


# results.json sections each summary section reads
SECTION_RESULTS = {"moments": ["moments_of_truth"], "complaints": ["complaints", "complaint_counts"],
                   "contact_list": ["contact_list"],
                   "journey": ["journey"], "value": ["value"], "occasions": ["campaign_relevance"]}


def missing_sections(results: Mapping, audience: str = "management") -> list[str]:
    """The audience's sections whose stage recorded nothing in `results`.

        missing_sections({}, "sales") -> ["value", "journey"]
    """
    return [name for name in audience_sections(audience)
            if name in SECTION_RESULTS and not any(results.get(key) for key in SECTION_RESULTS[name])]


def analysis_note(as_of, data: pd.DataFrame, *, audience: str = "management", lang: str = "en",
                  previous_run: str = "", missing: Sequence[str] = ()) -> str:
    """Markdown: audience and language, the analysis day, the data analysed (rows per table, from
    `data_period`), the previous run or that there is none, the sections whose stage recorded
    nothing, and a paragraph on where the sections below come from."""
    t = _lang(lang)
    tables = ", ".join(t["table_rows"].format(table=name, rows=format_number(rows, 0, lang))
                       for name, rows in data.loc[:, ["table", "rows"]].itertuples(index=False))
    text = t["analysed"].format(audience=t["audience"][audience], as_of=as_of or "–", tables=tables or "–")
    text += t["run_compared"].format(run=previous_run) if previous_run else t["run_absent"]
    if missing:
        text += t["stages_missing"].format(sections=", ".join(t["sections"][m] for m in missing))
    return text + "\n\n" + t["sections_note"]


def skipped_note(results: Mapping, *, audience: str = "management", lang: str = "en") -> str:
    """Markdown list of what this run does not show: the audience's sections whose stage recorded
    nothing, and the stages' sections the data could not support (results `skipped`:
    [{section, reason, enable}]); '' when nothing was left out.

        skipped_note({"skipped": [{"section": "value.rfm", "reason": "no orders", "enable": "orders"}]})
        -> "- Customer value · rfm: no orders (needs orders)."
    """
    t = _lang(lang)
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
        lines.append(t["skipped_item"].format(stage=name, section=", ".join(parts),
                                              reason=reason,
                                              enable=t["skipped_enable"].format(enable=enable) if enable else ""))
    return "\n".join(f"- {line}" for line in lines)


_ACRONYMS = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "clv": "CLV", "rfm": "RFM", "kpi": "KPI", "kpis": "KPIs",
             "fcr": "FCR"}


def skipped_part(results: Mapping, *, audience: str = "management", lang: str = "en") -> str:
    """The closing part 'Not shown for this data' (a heading and `skipped_note`), '' when nothing was left out."""
    items = skipped_note(results, audience=audience, lang=lang)
    return f"## {_lang(lang)['skipped_title']}\n\n{items}" if items else ""


def recorded_note(tiles: pd.DataFrame, findings_text: Sequence[str], *, lang: str = "en") -> str:
    """Markdown: what the notebook records in results.json."""
    t = _lang(lang)
    return f"## {t['recorded_title']}\n\n" + t["recorded"].format(kpis=", ".join(t["label"][k] for k in tiles["kpi"]) or "–",
                                                                   k=len(findings_text))
