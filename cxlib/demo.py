"""Telko Nord GmbH: a synthetic German telecom provider whose exports look like real ones.

`generate(customers, seed)` builds two years (2024-01-01 .. 2025-12-31) of a mobile and
broadband provider: a CRM of customers and leads, contact-centre workbooks, web analytics,
surveys with verbatims, orders with their milestones and campaign sends. It plants known
effects (moments of truth, a billing-complaint spike, repeat-customer conversion, ...) and
measures their realised size on its own truth data, so an analysis can be checked against
`ground_truth`. `write_exports` writes the files (and `_truth/` beside them, which the source
mapping never names); `has_exports` tells whether a raw folder already holds data files.

    company = generate(customers=2000, seed=7)
    company.files["crm_kunden.csv"].head()
    company.ground_truth["effects"]["invoice_unclear_nps"]["realised"]

`customers` counts the people in the CRM (customers and leads, ~40% leads who never ordered);
test accounts come on top. Everything is vectorised with one numpy Generator, so a seed gives
the same company every time. See docs/demo_company.md.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cxlib import schema

# --- period and time units (all internal times are naive local time, Europe/Berlin) -----
PERIOD_START = np.datetime64("2024-01-01T00:00:00", "s")
PERIOD_END = np.datetime64("2026-01-01T00:00:00", "s")          # exclusive
SECOND = np.timedelta64(1, "s")
MINUTE = 60 * SECOND
HOUR = 3600 * SECOND
DAY = 86400 * SECOND
NAT = np.datetime64("NaT", "s")
LOCAL_TZ = "Europe/Berlin"
DATA_SUFFIXES = (".csv", ".xlsx", ".xls", ".parquet")
TRUTH_DIR = schema.TRUTH_DIR

# --- planted parameters (written to ground_truth["planted"]) ----------------------------
PLANTED: dict = {
    "existing_share": 0.55,            # CRM people who were customers before 2024
    "business_share": 0.15,
    "annual_churn": 0.12,              # baseline churn hazard, per year
    "conversion": {"existing_customer": 0.65, "new_lead": 0.12, "window_days": 30},
    "invoice_unclear": {"window_days": 60, "nps_latent_shift": -0.9, "target_nps_diff": -30},
    "provisioning": {"threshold_days": 14, "long_share_broadband": 0.20, "nps_latent_shift": -1.0,
                     "window_after_activation_days": 180, "churn_hazard_ratio": 2.0},
    "hotline_wait": {"threshold_seconds": 300, "complaint_prob_long": 0.22, "complaint_prob_short": 0.02,
                     "followup_days": [1, 10], "ces_latent_shift": -1.5, "ces_window_days": 14},
    "unresolved_service_failure": {"churn_hazard_ratio": 3.0, "window_days": 90},
    "outage": {"count": 12, "affected_share": 0.6, "notified_share": 0.5, "window_days": 60,
               "nps_latent_shift_notified": 0.30, "nps_latent_shift_not_notified": -0.20,
               "target_nps_diff": 15},
    "billing_complaints": {"base_rate_per_1000_per_month": 4.0, "spike_month": "2025-03",
                           "spike_multiplier": 3.0, "jitter": 0.08},
    "invoice_theme": {"weight_detractor": 0.30, "weight_passive": 0.10, "weight_promoter": 0.03,
                      "boost_if_invoice_contact": 2.0},
    # add-on purchases (Zusatzkauf: devices, accessories, packs) of active customers, BG/NBD-like in days:
    # first add-on after Exp(first_purchase_mean_days) from activation (or 2024-01-01), independent of the
    # rate; then purchases at rate lambda ~ Gamma(r, rate alpha) a day, dropping out after each repeat with
    # probability p ~ Beta(a, b); spend per purchase ~ Gamma(p, rate nu) euros, nu ~ Gamma(q, rate v)
    # per customer (pymc-marketing's parameter names), rounded to cents and kept within spend_range_eur.
    # While a quote or consultation is open (1 day before to 31 days after it) nobody buys an add-on
    # separately, so that add-ons never pass for the conversion of a sales opportunity.
    "repeat_purchases": {"bg_nbd": {"r": 1.2, "alpha": 400.0, "a": 1.0, "b": 4.0},
                         "gamma_gamma": {"p": 4.0, "q": 5.0, "v": 60.0},
                         "first_purchase_mean_days": 120, "spend_range_eur": [5.0, 400.0],
                         "none_while_opportunity_open_days": [-1, 31]},
    # the occasion programme (Kundenbrief): a monthly rolling mailing to consented active customers, each on a
    # random day of the month, reaching a share that rises linearly from reach[0] (2024-01) to reach[1] (2025-12).
    # Response probability = base_response[segment] x occasion_response_ratio if the send day falls in the lead
    # time of one of the customer's occasions (as config/taxonomy.yml `occasions` defines them) x
    # fatigue_ratio_per_send ** (campaign sends of any campaign to the customer in the fatigue_window_days
    # before). A responder books an option (Auftragsart Zusatzoption) with probability purchase_after_response,
    # 1-30 days after responding (not while a quote or consultation is open). Drawn from a stream of its own.
    "occasion_program": {"campaign": "Kundenbrief", "reach": [0.25, 0.85],
                         "base_response": {"private": 0.05, "business": 0.03},
                         "occasion_response_ratio": 3.0, "fatigue_ratio_per_send": 0.75, "fatigue_window_days": 90,
                         "purchase_after_response": 0.5, "purchase_days": [1, 30],
                         "occasions": {"contract_anniversary": {"lead_days": 14},
                                       "renewal_window": {"term_months": 24, "lead_days": 60},
                                       "first_invoice": {"days_after": 7, "lead_days": 7},
                                       "activation_completed": {"days_after": 7, "lead_days": 7},
                                       "complaint_resolved": {"days_after": 14, "lead_days": 7},
                                       "name_day": {"lead_days": 3}}},
    "messiness": {"duplicate_share": 0.01, "test_account_share": 0.003, "nps_code_99_share": 0.025,
                  "nps_11_share": 0.004, "csat_out_of_range_share": 0.004, "ces_out_of_range_share": 0.002,
                  "consent_blank_share": 0.25, "contact_time_as_text_share": 0.05},
}

# --- vocabulary ---------------------------------------------------------------------------
REGIONS = np.array(["Nord", "West", "Süd", "Ost"])
REGION_P = [0.40, 0.25, 0.20, 0.15]
SEGMENTS = np.array(["Privatkunde", "Geschäftskunde"])
ORDER_TYPES = np.array(["Neuvertrag", "Verlängerung", "Zusatzoption", "Zusatzkauf"])
ADDON = 3                                        # ORDER_TYPES index of an add-on purchase (no contract)
CATEGORIES = np.array(["Mobilfunk", "Breitband", "Zusatzprodukte"])   # index: broadband, or 2 for add-ons
ORDER_STATUS = np.array(["abgeschlossen", "storniert", "offen"])
STORNO_REASONS = np.array(["Widerruf", "Bonität nicht ausreichend", "Technisch nicht möglich",
                           "Kunde hat sich umentschieden", "Doppelbestellung"])

# products: (name, category index 0 mobile / 1 broadband, business, monthly fee in cents, weight)
PRODUCTS = [
    ("Mobil S", 0, False, 1999, 0.25), ("Mobil M", 0, False, 2999, 0.40), ("Mobil L", 0, False, 3999, 0.25),
    ("Mobil XL", 0, False, 5499, 0.10),
    ("DSL 50", 1, False, 2999, 0.15), ("DSL 100", 1, False, 3999, 0.30), ("DSL 250", 1, False, 4499, 0.15),
    ("Glasfaser 300", 1, False, 4999, 0.15), ("Glasfaser 500", 1, False, 5999, 0.15),
    ("Glasfaser 1000", 1, False, 7999, 0.10),
    ("Business Mobil M", 0, True, 3499, 0.6), ("Business Mobil L", 0, True, 4999, 0.4),
    ("Business DSL 250", 1, True, 5999, 0.4), ("Business Glasfaser 500", 1, True, 8999, 0.35),
    ("Business Glasfaser 1000", 1, True, 12999, 0.25),
]
OPTIONS = [("Zusatzkarte", 0, 999, 0.5), ("Datenpaket 10 GB", 0, 799, 0.5),
           ("TV-Option", 1, 1299, 0.4), ("Sicherheitspaket", 1, 499, 0.3), ("Festnetz-Flat", 1, 599, 0.3)]
# add-on purchases (Zusatzkauf): product by price band, from (euros) .. the next band
ADDON_PRODUCTS = [("Zusatz-SIM", 0.0), ("Datenpaket", 12.0), ("Roaming-Paket", 25.0), ("Zubehör", 45.0),
                  ("Smartphone", 150.0)]

# contact-centre reasons: code -> Anliegen label as the export spells it
REASON_LABELS = {
    "invoice_unclear": "Rechnung unklar",
    "provisioning_question": "Frage zur Bereitstellung",
    "complaint_hotline": "Beschwerde Hotline",
    "complaint_service_failure": "Beschwerde Störung",
    "complaint_billing": "Beschwerde Rechnung",
    "complaint_provisioning": "Beschwerde Bereitstellung",
    "complaint_sales": "Beschwerde Vertrag",
    "outage_notification": "Störungsinfo",
    "technical_support": "Technische Hilfe",
    "tariff_change": "Tarifwechsel",
    "cancellation_request": "Kündigung",
    "address_change": "Adressänderung",
    "sales_consultation": "Beratung Neuvertrag",
    "contract_renewal": "Beratung Verlängerung",
    "general_inquiry": "Sonstiges",
}
BASE_REASONS = {"invoice_unclear": 0.20, "technical_support": 0.22, "tariff_change": 0.16,
                "address_change": 0.12, "general_inquiry": 0.22, "complaint_sales": 0.04,
                "complaint_service_failure": 0.04}
PHONE_SPELLINGS = ("Telefon", "Hotline", "phone")
INBOUND_CHANNELS = (["Telefon", "Hotline", "phone", "E-Mail", "Chat", "Brief"],
                    [0.30, 0.18, 0.12, 0.22, 0.13, 0.05])
NOTES = np.array([
    "Rückruf vereinbart", "Ticket angelegt", "an Technik weitergeleitet", "Gutschrift veranlasst",
    "Kunde verärgert", "Kd. ruft wieder an", "Vorgang abgeschlossen", "Unterlagen per Post",
    "Kunde informiert", "Eskalation 2nd Level", "Kunde bittet um Rückruf unter 0171 5550123",
    "neue Mail-Adresse: kunde.neu@web.de", "Termin Techniker angeboten", "Kulanz abgelehnt",
    "SEPA-Mandat erneuert", "Kd. möchte schriftliche Bestätigung",
])
CAMPAIGNS = [  # (name, send date, audience: "leads" | "customers" | "all")
    ("2024-02 Glasfaser Frühstart", "2024-02-06", "leads"), ("2024-03 Mobil Frühlingsangebot", "2024-03-19", "all"),
    ("2024-05 Treue-Bonus", "2024-05-07", "customers"), ("2024-06 Sommer-Datenpaket", "2024-06-18", "all"),
    ("2024-08 Glasfaser Ausbau Nord", "2024-08-27", "leads"), ("2024-09 Upgrade DSL auf Glasfaser", "2024-09-24", "customers"),
    ("2024-11 Black Week", "2024-11-26", "all"), ("2024-12 Weihnachts-Aktion", "2024-12-10", "leads"),
    ("2025-01 Neujahrs-Tarife", "2025-01-14", "all"), ("2025-03 Mobil Frühlingsangebot", "2025-03-18", "leads"),
    ("2025-04 Treue-Bonus", "2025-04-29", "customers"), ("2025-06 Sommer-Datenpaket", "2025-06-17", "all"),
    ("2025-08 Glasfaser Ausbau Süd", "2025-08-26", "leads"), ("2025-09 Upgrade DSL auf Glasfaser", "2025-09-23", "customers"),
    ("2025-11 Black Week", "2025-11-25", "all"), ("2025-12 Weihnachts-Aktion", "2025-12-09", "leads"),
]
PAGE_TYPES = np.array(["home", "tariffs", "devices", "coverage", "service", "invoice", "help", "login",
                       "cart", "checkout", "quote_request"])
PAGE_P_CUSTOMER = [0.20, 0.10, 0.08, 0.04, 0.20, 0.15, 0.10, 0.13, 0.0, 0.0, 0.0]
PAGE_P_LEAD = [0.30, 0.30, 0.15, 0.12, 0.0, 0.0, 0.08, 0.0, 0.05, 0.0, 0.0]
DEVICES = np.array(["desktop", "mobile", "tablet", "app"])

FIRST_M = ["Jürgen", "Günter", "Thomas", "Michael", "Andreas", "Stefan", "Peter", "Klaus", "Jörg", "Uwe",
           "Frank", "Markus", "Sven", "Lukas", "Jonas", "Leon", "Björn", "Mehmet", "Ali", "Tobias", "Dirk",
           "Jens", "Matthias", "Florian", "Maximilian", "Paul", "Felix", "Hans-Jürgen", "Karl-Heinz", "Ömer"]
FIRST_F = ["Sabine", "Petra", "Birgit", "Ursula", "Monika", "Anja", "Katrin", "Julia", "Lena", "Sophie",
           "Marie", "Hannah", "Jana", "Ayse", "Zeynep", "Elif", "Bärbel", "Jördis", "Käthe", "Renate",
           "Susanne", "Claudia", "Nicole", "Stefanie", "Laura", "Anna", "Lea", "Emma", "Agnieszka", "Chloé"]
# name days (MM-DD) of the demo's first names, as config/name_days_de.csv lists them (a test keeps them equal);
# names without a saint have none; 'Hans-Jürgen' and 'Karl-Heinz' celebrate Hans and Karl
NAME_DAYS = {"Jürgen": "04-23", "Günter": "10-09", "Thomas": "07-03", "Michael": "09-29", "Andreas": "11-30",
             "Stefan": "12-26", "Peter": "06-29", "Klaus": "12-06", "Jörg": "04-23", "Frank": "10-04", "Markus": "04-25",
             "Lukas": "10-18", "Jonas": "09-21", "Leon": "11-10", "Tobias": "09-13", "Jens": "06-24", "Matthias": "02-24",
             "Florian": "05-04", "Maximilian": "10-12", "Paul": "06-29", "Felix": "01-14", "Hans-Jürgen": "06-24",
             "Karl-Heinz": "11-04", "Sabine": "08-29", "Petra": "06-29", "Birgit": "07-23", "Ursula": "10-21",
             "Monika": "08-27", "Anja": "07-26", "Katrin": "04-29", "Julia": "05-22", "Lena": "08-18", "Sophie": "05-15",
             "Marie": "09-12", "Hannah": "07-26", "Bärbel": "12-04", "Käthe": "04-29", "Susanne": "08-11",
             "Nicole": "12-06", "Stefanie": "12-26", "Laura": "10-19", "Anna": "07-26", "Lea": "03-22"}
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
        "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz",
        "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz",
        "Krause", "Meier", "Lehmann", "Köhler", "Herrmann", "König", "Walter", "Huber", "Kaiser", "Fuchs",
        "Peters", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel", "Friedrich", "Keller",
        "Günther", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke", "Albrecht", "Böhm",
        "Winter", "Kraus", "Schumacher", "Krämer", "Vogt", "Jäger", "Otto", "Sommer", "Groß", "Seidel",
        "Brandt", "Haas", "Schreiber", "Graf", "Dietrich", "Ziegler", "Kühn", "Pohl", "Engel", "Horn",
        "Busch", "Bergmann", "Voigt", "Sauer", "Arnold", "Pfeiffer", "Yilmaz", "Kaya", "Demir", "Öztürk",
        "Nowak", "Kowalski", "Petersen", "Jansen", "Hansen", "Thomsen", "Ehlers", "Lüdemann", "Dähne"]
FIRM_PREFIX = ["Bäckerei", "Autohaus", "Steuerbüro", "Praxis", "Elektro", "Malerbetrieb", "Immobilien",
               "Gärtnerei", "Kanzlei", "Fahrschule", "Tischlerei", "Café"]
FIRM_SUFFIX = ["GmbH", "GmbH & Co. KG", "e.K.", "OHG", "UG (haftungsbeschränkt)", "KG"]
MAIL_DOMAINS = ["web.de", "gmx.de", "t-online.de", "gmail.com", "outlook.de", "posteo.de", "freenet.de", "icloud.com"]
MOBILE_PREFIX = ["151", "152", "157", "160", "162", "170", "171", "172", "173", "175", "176", "177", "178", "179"]
AREA_CODES = ["30", "40", "421", "511", "89", "221", "69", "711", "341", "351", "431", "381", "4101"]

# --- verbatim templates: [a|b] marks alternatives; every variant contains a keyword of its
# theme (config/taxonomy.yml) and none of another theme (tests/test_demo.py checks this). ---
SENTENCES: dict[tuple[str, str, str], list[str]] = {
    # sales staff
    ("sales_competence", "de", "positive"): ["[Im Shop|Am Telefon|Im Beratungsgespräch] wurde ich [sehr gut|wirklich gut|richtig gut] beraten.",
                                              "Die Beratung war [fachkundig|ausgezeichnet|top] und hat mir bei der Tarifwahl geholfen."],
    ("sales_competence", "de", "negative"): ["Ich wurde [im Shop|am Telefon] schlecht beraten[ und habe jetzt den falschen Tarif| und bereue den Vertrag|].",
                                              "Die Beratung war [oberflächlich|mangelhaft|dürftig]."],
    ("sales_competence", "de", "neutral"): ["Die Beratung war in Ordnung, [mehr nicht|nichts Besonderes]."],
    ("sales_competence", "en", "positive"): ["The [sales rep|salesperson] was very knowledgeable[ and explained everything| and helped me choose|].",
                                              "Great advice [in the store|on the phone] when choosing my plan."],
    ("sales_competence", "en", "negative"): ["The [sales rep|salesperson] gave me [wrong|misleading] advice about my plan.",
                                              "Poor advice [in the store|on the phone], I ended up with the wrong plan."],
    ("sales_competence", "en", "neutral"): ["The advice [in the store|on the phone] was okay."],
    ("sales_individuality", "de", "positive"): ["Man ist [wirklich|sehr] auf mich eingegangen[ und hat meine Wünsche ernst genommen|].",
                                                 "Sehr persönliche Betreuung beim Vertragsabschluss."],
    ("sales_individuality", "de", "negative"): ["Niemand ist auf mich eingegangen, alles nach Schema F.",
                                                 "Keine individuelle Lösung, nur [Schema F|Standard von der Stange]."],
    ("sales_individuality", "de", "neutral"): ["Die Betreuung war wenig individuell, aber okay."],
    ("sales_individuality", "en", "positive"): ["They took time for a [personal|tailored] solution that fits my needs.",
                                                 "The plan was tailored to what I need."],
    ("sales_individuality", "en", "negative"): ["Nothing individual about it, just a one-size-fits-all script.",
                                                 "No personal touch at all."],
    ("sales_individuality", "en", "neutral"): ["Not very personal, but fine."],
    ("sales_friendliness", "de", "positive"): ["[Die Mitarbeiterin|Der Mitarbeiter] im Shop war [super freundlich|sehr nett|ausgesprochen höflich].",
                                                "Alle waren [sehr freundlich|total nett]."],
    ("sales_friendliness", "de", "negative"): ["[Die Mitarbeiterin|Der Mitarbeiter] war [unfreundlich|patzig und unfreundlich|ausgesprochen unfreundlich]."],
    ("sales_friendliness", "de", "neutral"): ["Die Leute waren freundlich, sonst nichts Besonderes."],
    ("sales_friendliness", "en", "positive"): ["The staff were [very friendly|really kind|so polite]."],
    ("sales_friendliness", "en", "negative"): ["The [agent|staff member|person in the store] was [rude|unfriendly] to me."],
    ("sales_friendliness", "en", "neutral"): ["Staff were polite enough."],
    ("quote_speed", "de", "positive"): ["Das Angebot kam [noch am selben Tag|innerhalb einer Stunde|sofort per Mail]."],
    ("quote_speed", "de", "negative"): ["Auf das Angebot musste ich [zwei Wochen|ewig|über eine Woche] warten.",
                                        "Ein Angebot habe ich bis heute nicht bekommen."],
    ("quote_speed", "de", "neutral"): ["Das Angebot kam nach ein paar Tagen."],
    ("quote_speed", "en", "positive"): ["I got the quote [the same day|within an hour|right away]."],
    ("quote_speed", "en", "negative"): ["It took [forever|ages] to get a quote.", "Still no quote after my request."],
    ("quote_speed", "en", "neutral"): ["The quote arrived as expected."],
    # product
    ("product_function", "de", "positive"): ["Das Internet ist [super schnell|richtig schnell|immer schnell].",
                                              "Der Empfang ist [überall gut|auch auf dem Land top]."],
    ("product_function", "de", "negative"): ["Das Internet ist [abends|ständig|oft] [extrem langsam|viel zu langsam].",
                                              "Der Empfang [in meiner Wohnung|im Büro|im Keller] ist miserabel."],
    ("product_function", "de", "neutral"): ["Das Netz funktioniert meistens."],
    ("product_function", "en", "positive"): ["The speed is [great|excellent] and the signal is strong.",
                                              "Coverage is good everywhere I go."],
    ("product_function", "en", "negative"): ["The [connection|internet] is [really slow|painfully slow] in the evenings.",
                                              "Signal is [terrible|weak] at home."],
    ("product_function", "en", "neutral"): ["The network works most of the time."],
    ("product_lifetime", "de", "positive"): ["Das Handy aus dem Vertrag ist [robust und haltbar|sehr haltbar]."],
    ("product_lifetime", "de", "negative"): ["Das Gerät war nach [drei Monaten|kurzer Zeit|einem halben Jahr] kaputt.",
                                              "Das Handy ist schon wieder defekt."],
    ("product_lifetime", "de", "neutral"): ["Mal sehen, wie haltbar das Gerät ist."],
    ("product_lifetime", "en", "positive"): ["The phone from the contract is [durable|long-lasting]."],
    ("product_lifetime", "en", "negative"): ["The device broke after [three months|a few months].", "My handset is broken again."],
    ("product_lifetime", "en", "neutral"): ["We'll see how durable the device is."],
    ("product_quality", "de", "positive"): ["Die Verbindung ist [absolut zuverlässig|sehr stabil|stabil und zuverlässig].",
                                             "Tolle Qualität der Gespräche."],
    ("product_quality", "de", "negative"): ["Die Verbindung ist [alles andere als stabil|nicht zuverlässig].",
                                             "Die Qualität der Gespräche ist [schlecht|mies]."],
    ("product_quality", "de", "neutral"): ["Die Qualität ist okay."],
    ("product_quality", "en", "positive"): ["The connection is [very reliable|rock stable].", "Call quality is excellent."],
    ("product_quality", "en", "negative"): ["The connection is not [reliable|stable] at all.", "Call quality is poor."],
    ("product_quality", "en", "neutral"): ["Quality is acceptable."],
    # service staff
    ("service_reachability", "de", "positive"): ["Der Kundenservice war [jederzeit|gut|sofort] erreichbar."],
    ("service_reachability", "de", "negative"): ["Ich habe [tagsüber|drei Tage lang|mehrfach] niemanden erreicht.",
                                                  "Der Kundenservice ist [kaum|praktisch nie] erreichbar."],
    ("service_reachability", "de", "neutral"): ["Erreichbar war der Kundenservice, wenn auch nicht sofort."],
    ("service_reachability", "en", "positive"): ["Customer service was easy to reach."],
    ("service_reachability", "en", "negative"): ["I could not get through to anyone.", "Impossible to reach customer service."],
    ("service_reachability", "en", "neutral"): ["Customer service was reachable eventually."],
    ("service_competence", "de", "positive"): ["[Die Mitarbeiterin|Der Mitarbeiter] [am Telefon|im Chat] war sehr kompetent."],
    ("service_competence", "de", "negative"): ["[Dreimal|Mehrmals] weiterverbunden und am Ende war keiner zuständig.",
                                               "Die Leute im Kundenservice [wirkten|waren] völlig ahnungslos."],
    ("service_competence", "de", "neutral"): ["Der Mitarbeiter war kompetent, konnte aber nicht alles klären."],
    ("service_competence", "en", "positive"): ["The agent [in the chat|on the phone] was very competent."],
    ("service_competence", "en", "negative"): ["I was transferred [three times|again and again] and nobody could help.",
                                               "The staff seemed clueless."],
    ("service_competence", "en", "neutral"): ["The agent was competent but could not solve everything."],
    ("service_individuality", "de", "positive"): ["Man hat sich kulant gezeigt[ und mir eine Gutschrift gegeben|].", "Sehr kulante Lösung."],
    ("service_individuality", "de", "negative"): ["Auf meine Beschwerde kam nur eine Standardantwort.",
                                                  "Nur Textbausteine, keine echte Hilfe."],
    ("service_individuality", "de", "neutral"): ["Die Kulanz war okay."],
    ("service_individuality", "en", "positive"): ["They showed goodwill and gave me a credit."],
    ("service_individuality", "en", "negative"): ["I only got a canned [message|text].", "Just a template answer, no real help."],
    ("service_individuality", "en", "neutral"): ["A goodwill gesture would have been nice."],
    ("response_time", "de", "positive"): ["Die Antwort kam [zügig|am nächsten Tag|innerhalb weniger Stunden].",
                                          "Der Rückruf kam wie versprochen."],
    ("response_time", "de", "negative"): ["Auf eine Rückmeldung warte ich seit [Wochen|zehn Tagen|einem Monat].",
                                          "Der versprochene Rückruf kam nie."],
    ("response_time", "de", "neutral"): ["Die Antwort kam nach ein paar Tagen."],
    ("response_time", "en", "positive"): ["I got a reply [the next morning|within hours|very soon].", "The callback came as promised."],
    ("response_time", "en", "negative"): ["Still no response after [two weeks|ten days|a month].", "The promised callback never happened."],
    ("response_time", "en", "neutral"): ["The reply came after a few days."],
    # process
    ("invoice", "de", "positive"): ["Die Rechnung ist [übersichtlich|klar und verständlich|endlich verständlich]."],
    ("invoice", "de", "negative"): ["Auf meiner Rechnung stehen [Positionen, die ich nicht kenne|falsche Beträge|Posten, die ich nie bestellt habe].",
                                    "Es wurde [zu viel|doppelt|ohne Ankündigung] abgebucht.",
                                    "[Eine unerklärliche|Schon wieder eine] Gebühr auf der Abrechnung.",
                                    "Die Rechnung ist [nicht nachvollziehbar|schon wieder falsch|ein einziges Rätsel]."],
    ("invoice", "de", "neutral"): ["Die Rechnung kam pünktlich."],
    ("invoice", "en", "positive"): ["The invoice is [clear|easy to understand]."],
    ("invoice", "en", "negative"): ["I was charged [twice|for things I never ordered|an extra fee].",
                                    "My bill is [wrong again|full of items I don't understand]."],
    ("invoice", "en", "neutral"): ["The invoice arrived on time."],
    ("provisioning", "de", "positive"): ["Die Freischaltung lief [reibungslos|problemlos|ohne Probleme].",
                                         "Der Techniker war pünktlich und alles lief sofort."],
    ("provisioning", "de", "negative"): ["Die Bereitstellung hat [über einen Monat|fünf Wochen|ewig] gedauert.",
                                         "Der Techniker ist [zweimal|dreimal] nicht erschienen.",
                                         "Der Router kam [viel zu spät|nie an]."],
    ("provisioning", "de", "neutral"): ["Die Freischaltung hat etwas gedauert, lief dann aber."],
    ("provisioning", "en", "positive"): ["Activation was [smooth|quick and easy].", "The technician was on time and the setup was easy."],
    ("provisioning", "en", "negative"): ["Activation took [more than a month|far too long].",
                                         "The technician did not show up [twice|three times].", "The router arrived late."],
    ("provisioning", "en", "neutral"): ["Installation took a while but then it was fine."],
    ("hotline_waiting", "de", "positive"): ["Kaum Wartezeit an der Hotline.", "Diesmal war die Warteschleife kurz."],
    ("hotline_waiting", "de", "negative"): ["[Eine Stunde|45 Minuten|Ewig] in der Warteschleife.",
                                            "Die Wartezeit an der Hotline ist eine Zumutung."],
    ("hotline_waiting", "de", "neutral"): ["Die Wartezeit war normal."],
    ("hotline_waiting", "en", "positive"): ["Hardly any waiting on the hotline."],
    ("hotline_waiting", "en", "negative"): ["[An hour|45 minutes|Forever] on hold.", "The hotline queue is ridiculous."],
    ("hotline_waiting", "en", "neutral"): ["Wait times were average."],
    ("outage", "de", "positive"): ["Die Störung war [zügig|innerhalb von Stunden] behoben.",
                                   "Gut, dass ich über den Ausfall vorab informiert wurde."],
    ("outage", "de", "negative"): ["[Zwei Tage|Ein ganzes Wochenende|Drei Tage] kein Internet!",
                                   "Schon wieder eine Störung in unserer Gegend.",
                                   "Der Ausfall hat mich [einen Arbeitstag|viel Geld] gekostet."],
    ("outage", "de", "neutral"): ["Es gab eine Störung, die inzwischen behoben ist."],
    ("outage", "en", "positive"): ["The outage was fixed [promptly|within hours].", "Thanks for the heads-up about the outage."],
    ("outage", "en", "negative"): ["No internet for [a whole weekend|half a week]!", "Another outage in our area.",
                                   "The service was down again."],
    ("outage", "en", "neutral"): ["There was an outage, it is fixed now."],
    ("price", "de", "positive"): ["Der Preis ist [fair|völlig in Ordnung|unschlagbar].", "Im Vergleich [richtig|sehr] günstig."],
    ("price", "de", "negative"): ["Viel zu teuer für das, was man bekommt.", "Der Preis wurde [schon wieder|ohne Grund] erhöht."],
    ("price", "de", "neutral"): ["Der Preis ist okay."],
    ("price", "en", "positive"): ["The price is [fair|very reasonable].", "Cheap compared to others."],
    ("price", "en", "negative"): ["Far too expensive for what you get.", "They raised the price again."],
    ("price", "en", "neutral"): ["Price is okay."],
    # a few themes in other languages (French, Turkish, Spanish)
    ("invoice", "fr", "negative"): ["La facture est fausse, on m'a prélevé deux fois."],
    ("invoice", "fr", "positive"): ["Facture claire et simple."],
    ("invoice", "tr", "negative"): ["Fatura yanlış, iki kez ödeme alındı."],
    ("invoice", "tr", "positive"): ["Fatura çok açık ve anlaşılır."],
    ("invoice", "es", "negative"): ["La factura está mal, me cobraron dos veces."],
    ("invoice", "es", "positive"): ["La factura es clara."],
    ("outage", "fr", "negative"): ["Pas d'internet pendant deux jours."],
    ("outage", "fr", "positive"): ["Panne réparée rapidement, merci de l'information."],
    ("outage", "tr", "negative"): ["İki gündür internet yok."],
    ("outage", "tr", "positive"): ["Arıza hızlıca giderildi."],
    ("outage", "es", "negative"): ["Dos días sin internet."],
    ("outage", "es", "positive"): ["La avería se arregló rápido."],
    ("hotline_waiting", "fr", "negative"): ["Une heure d'attente au téléphone."],
    ("hotline_waiting", "tr", "negative"): ["Telefonda bir saat bekledim."],
    ("hotline_waiting", "es", "negative"): ["Una hora esperando al teléfono."],
    ("price", "fr", "negative"): ["Beaucoup trop cher."], ("price", "fr", "positive"): ["Bon rapport qualité-prix."],
    ("price", "tr", "negative"): ["Çok pahalı."], ("price", "tr", "positive"): ["Fiyatı uygun."],
    ("price", "es", "negative"): ["Demasiado caro."], ("price", "es", "positive"): ["Buen precio."],
    ("product_function", "fr", "negative"): ["Internet très lent le soir."], ("product_function", "fr", "positive"): ["Connexion très rapide."],
    ("product_function", "tr", "negative"): ["İnternet çok yavaş."], ("product_function", "tr", "positive"): ["İnternet çok hızlı."],
    ("product_function", "es", "negative"): ["Internet muy lento."], ("product_function", "es", "positive"): ["Internet muy rápido."],
    ("sales_friendliness", "fr", "positive"): ["Le vendeur était très aimable."], ("sales_friendliness", "fr", "negative"): ["Vendeur désagréable."],
    ("sales_friendliness", "tr", "positive"): ["Çalışanlar çok kibar."], ("sales_friendliness", "tr", "negative"): ["Çalışanlar kaba davrandı."],
    ("sales_friendliness", "es", "positive"): ["Los empleados fueron muy amables."], ("sales_friendliness", "es", "negative"): ["Los empleados fueron maleducados."],
}
OPENERS = {
    ("de", "negative"): ["Sehr enttäuschend.", "Ich bin unzufrieden.", "Ärgerlich!", "So geht das nicht.", "Leider keine gute Erfahrung."],
    ("de", "positive"): ["Alles super!", "Sehr zufrieden.", "Danke!", "Top!", "Rundum gelungen."],
    ("de", "neutral"): ["Na ja.", "Geht so.", "Insgesamt in Ordnung."],
    ("en", "negative"): ["Very disappointing.", "Not happy.", "Terrible experience.", "Frustrating."],
    ("en", "positive"): ["Great!", "Very happy.", "Thanks!", "Excellent experience."],
    ("en", "neutral"): ["It's okay.", "Mixed experience.", "Average."],
}
CLOSERS = {
    ("de", "negative"): ["Ich überlege zu kündigen.", "So nicht!", "Bitte ändern Sie das.", "Nie wieder."],
    ("de", "positive"): ["Weiter so!", "Gerne wieder.", "Ich empfehle Telko Nord gern weiter."],
    ("de", "neutral"): ["Mal sehen.", "Passt schon."],
    ("en", "negative"): ["Thinking about switching provider.", "Please fix this.", "Never again."],
    ("en", "positive"): ["Keep it up!", "Would recommend Telko Nord."],
    ("en", "neutral"): ["We'll see.", "Fine overall."],
}
THEMES = ["sales_competence", "sales_individuality", "sales_friendliness", "quote_speed", "product_function",
          "product_lifetime", "product_quality", "service_reachability", "service_competence",
          "service_individuality", "response_time", "invoice", "provisioning", "hotline_waiting", "outage", "price"]
OTHER_LANG_THEMES = ["invoice", "outage", "hotline_waiting", "price", "product_function", "sales_friendliness"]
# theme weights of the first theme of a comment by NPS group (detractor, passive, promoter)
THEME_WEIGHTS = {
    "sales_competence": (0.02, 0.05, 0.08), "sales_individuality": (0.01, 0.03, 0.04),
    "sales_friendliness": (0.02, 0.06, 0.12), "quote_speed": (0.01, 0.04, 0.04),
    "product_function": (0.08, 0.12, 0.15), "product_lifetime": (0.02, 0.03, 0.02),
    "product_quality": (0.03, 0.06, 0.10), "service_reachability": (0.05, 0.05, 0.06),
    "service_competence": (0.05, 0.06, 0.10), "service_individuality": (0.03, 0.04, 0.03),
    "response_time": (0.06, 0.06, 0.06), "invoice": (0.30, 0.10, 0.03), "provisioning": (0.07, 0.07, 0.06),
    "hotline_waiting": (0.10, 0.08, 0.02), "outage": (0.05, 0.05, 0.02), "price": (0.10, 0.10, 0.10),
}


@dataclass
class DemoCompany:
    """The demo exports (file name -> DataFrame as written), their ground truth, the truth
    labels of the survey comments, and the clean truth tables the effects were measured on."""

    files: dict[str, pd.DataFrame]
    ground_truth: dict
    comment_labels: pd.DataFrame
    truth: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)


# =========================================================================================
# small vectorised helpers
# =========================================================================================
def _days(x) -> np.ndarray:
    """Float days -> timedelta64[s]."""
    return (np.asarray(x, dtype=float) * 86400).astype("int64") * SECOND


def _floor_day(t: np.ndarray) -> np.ndarray:
    return t.astype("datetime64[D]").astype("datetime64[s]")


def _at_hours(rng: np.random.Generator, days: np.ndarray, lo: float = 8, hi: float = 20) -> np.ndarray:
    """A time of day between lo and hi o'clock on each (midnight) day."""
    return _floor_day(days) + (rng.uniform(lo, hi, len(days)) * 3600).astype("int64") * SECOND


def _uniform_days(rng: np.random.Generator, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A random midnight day in [start, end) (end > start, day resolution)."""
    span = np.maximum((end - start) // DAY, 1)
    return _floor_day(start) + (rng.random(len(start)) * span).astype("int64") * DAY


def _pick(rng: np.random.Generator, options, p, n: int) -> np.ndarray:
    return np.asarray(options)[rng.choice(len(options), size=n, p=np.asarray(p) / np.sum(p))]


def _digits(rng: np.random.Generator, n: int, k: int) -> pd.Series:
    """n random digit strings of length k (leading digit not 0)."""
    return pd.Series(rng.integers(10 ** (k - 1), 10 ** k, n)).astype(str)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    arr = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype="int64")), pa.string()), width, "0")
    return pd.Series(pc.binary_join_element_wise(prefix, arr, ""), dtype="str")


_PAD2 = pa.array([f"{i:02d}" for i in range(100)])
_YEARS = pa.array([str(y) for y in range(1900, 2101)])


def _take(values, index) -> pd.Series:
    """values[index] as a `str` Series, built in Arrow (no Python string per row)."""
    arr = values if isinstance(values, pa.Array) else pa.array(np.asarray(values, dtype=object), pa.string())
    return pd.Series(pc.take(arr, pa.array(np.asarray(index, dtype="int64"))), dtype="str")


def _strftime(t: np.ndarray, fmt: str) -> pd.Series:
    """datetime64 array -> strings for the codes %Y %m %d %H %M %S (NaT -> missing).
    Built from integer parts and lookup tables: several times faster than pyarrow's strftime."""
    t = np.asarray(t, dtype="datetime64[s]")
    nat = np.isnat(t)
    tt = np.where(nat, np.datetime64("2000-01-01", "s"), t)
    month, day = tt.astype("datetime64[M]"), tt.astype("datetime64[D]")
    secs = (tt - day).astype("int64")
    parts_of = {"Y": (_YEARS, month.astype("int64") // 12 + 70), "m": (_PAD2, month.astype("int64") % 12 + 1),
                "d": (_PAD2, (day - month.astype("datetime64[D]")).astype("int64") + 1),
                "H": (_PAD2, secs // 3600), "M": (_PAD2, secs // 60 % 60), "S": (_PAD2, secs % 60)}
    parts = []
    for literal, code in re.findall(r"([^%]*)(?:%(.))?", fmt):
        if literal:
            parts.append(pa.scalar(literal))
        if code:
            table, index = parts_of[code]
            parts.append(pc.take(table, pa.array(index, mask=nat)))
    return pd.Series(pc.binary_join_element_wise(*parts, ""), dtype="str")


def _euro(cents: np.ndarray) -> pd.Series:
    """Integer cents -> German money text: 3999 -> '39,99', 123456789 -> '1.234.567,89' (negative -> missing)."""
    cents = np.asarray(cents, dtype="int64")
    euros = np.abs(cents) // 100
    groups = [euros // 10 ** 6, euros // 1000 % 1000, euros % 1000]          # below 1,000 million euros

    def text(values, pad=0):
        out = pc.cast(pa.array(values), pa.string())
        return pc.utf8_lpad(out, pad, "0") if pad else out

    millions = pc.binary_join_element_wise(text(groups[0]), text(groups[1], 3), text(groups[2], 3), ".")
    thousands = pc.binary_join_element_wise(text(groups[1]), text(groups[2], 3), ".")
    whole = pc.if_else(pa.array(groups[0] > 0), millions, pc.if_else(pa.array(groups[1] > 0), thousands, text(groups[2])))
    out = pd.Series(pc.binary_join_element_wise(whole, text(np.abs(cents) % 100, 2), ","), dtype="str")
    return out.where(cents >= 0)


def _translit(names) -> np.ndarray:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                           "é": "e", "ł": "l", "Ł": "L"})
    return np.array([re.sub(r"[^a-z\-]", "", n.translate(table).lower()) for n in names])


def _expand(template: str) -> list[str]:
    """'A [x|y] B' -> ['A x B', 'A y B']."""
    parts = re.split(r"\[([^\]]*)\]", template)
    choices = [[s] if i % 2 == 0 else s.split("|") for i, s in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def sentence_variants() -> dict[tuple[str, str, str], list[str]]:
    """All verbatim sentences per (theme, language, sentiment), alternatives expanded."""
    return {key: [v for t in templates for v in _expand(t)] for key, templates in SENTENCES.items()}


def _first_in_window(left: pd.DataFrame, right: pd.DataFrame, *, by: str, on: str, right_on: str,
                     window: np.timedelta64, direction: str = "backward", keep: tuple = ()) -> pd.DataFrame:
    """For each row of `left`, the nearest row of `right` (same `by`) within `window`
    before (backward) or after (forward) `left[on]`; columns `keep` of right plus `_hit`."""
    lft = left[[by, on]].assign(_pos=np.arange(len(left))).sort_values(on, kind="stable")
    rgt = (right[[by, right_on, *keep]].rename(columns={right_on: "_rt"})
           .assign(_hit=True).sort_values("_rt", kind="stable"))
    merged = pd.merge_asof(lft, rgt, left_on=on, right_on="_rt", by=by, direction=direction,
                           tolerance=pd.Timedelta(window), allow_exact_matches=True)
    merged = merged.sort_values("_pos").reset_index(drop=True)
    return merged.assign(_hit=merged["_hit"].fillna(False).astype(bool))[["_hit", "_rt", *keep]]


def _nps(scores: pd.Series) -> float:
    s = pd.Series(scores).dropna()
    if len(s) == 0:
        return float("nan")
    return float(100 * ((s >= 9).mean() - (s <= 6).mean()))


# =========================================================================================
# people, sales and provisioning
# =========================================================================================
def _persons(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """One row per CRM person (customer or lead), sorted by lead date; pid = row number."""
    existing = rng.random(n) < PLANTED["existing_share"]
    business = rng.random(n) < PLANTED["business_share"]
    region = rng.choice(len(REGIONS), n, p=REGION_P)
    broadband = rng.random(n) < 0.5
    signup_ex = _uniform_days(rng, np.full(n, np.datetime64("2012-01-01", "s")), np.full(n, np.datetime64("2023-12-20", "s")))
    leadin_day = _uniform_days(rng, np.full(n, PERIOD_START + 7 * DAY), np.full(n, np.datetime64("2025-12-24", "s")))
    lead_ex = signup_ex - _days(np.floor(rng.uniform(0, 45, n)))
    lead_new = np.maximum(PERIOD_START, leadin_day - _days(np.floor(rng.exponential(45, n))))
    lines = np.where(business, np.minimum(1 + np.floor(rng.lognormal(1.0, 0.9, n)), 60), 1).astype("int64")
    consent = rng.choice(3, n, p=[0.50, 0.25, 0.25])      # 0 ja, 1 nein, 2 blank
    frame = pd.DataFrame({
        "existing": existing, "business": business, "region": region, "broadband": broadband,
        "signup": np.where(existing, signup_ex, NAT), "lead_date": np.where(existing, lead_ex, lead_new),
        "leadin_day": np.where(existing, NAT, leadin_day), "lines": lines, "consent": consent,
        "u": rng.normal(0.0, 1.2, n),
    })
    return frame.sort_values("lead_date", kind="stable").reset_index(drop=True)


def _products_for(rng: np.random.Generator, broadband: np.ndarray, business: np.ndarray, option: np.ndarray):
    """Product name and monthly fee (cents) per order, by category, segment and order type."""
    n = len(broadband)
    name = np.empty(n, dtype=object)
    fee = np.zeros(n, dtype="int64")
    for cat in (0, 1):
        for biz in (False, True):
            rows = np.flatnonzero((broadband == cat) & (business == biz) & ~option)
            cands = [prod for prod in PRODUCTS if prod[1] == cat and prod[2] == biz]
            pick = rng.choice(len(cands), len(rows), p=np.array([c[4] for c in cands]) / sum(c[4] for c in cands))
            name[rows] = np.array([c[0] for c in cands], dtype=object)[pick]
            fee[rows] = np.array([c[3] for c in cands])[pick]
        rows = np.flatnonzero((broadband == cat) & option)
        cands = [o for o in OPTIONS if o[1] == cat]
        pick = rng.choice(len(cands), len(rows), p=np.array([c[3] for c in cands]) / sum(c[3] for c in cands))
        name[rows] = np.array([c[0] for c in cands], dtype=object)[pick]
        fee[rows] = np.array([c[2] for c in cands])[pick]
    return name, fee


def _orders_for(rng: np.random.Generator, leadins: pd.DataFrame, persons: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decide which lead-ins convert and build their orders with provisioning milestones."""
    conv = PLANTED["conversion"]
    prov = PLANTED["provisioning"]
    n = len(leadins)
    rate = np.where(leadins["existing_at"], conv["existing_customer"], conv["new_lead"])
    delay = 1 + np.minimum(np.floor(rng.gamma(2.0, 2.5, n)), 24)
    order_day = _floor_day(leadins["time"].to_numpy()) + _days(delay)
    converted = (rng.random(n) < rate) & (order_day < PERIOD_END - DAY)
    leadins = leadins.assign(converted=converted)
    li = leadins[converted]
    m = len(li)
    pid = li["pid"].to_numpy()
    otype = li["planned_type"].to_numpy()
    bb = li["broadband"].to_numpy().astype(int)
    business = persons["business"].to_numpy()[pid]
    product, fee = _products_for(rng, bb, business, otype == 2)
    lines = persons["lines"].to_numpy()[pid]
    amount = np.where(otype == 2, 12, 24) * fee * np.where(otype == 2, np.maximum(lines // 5, 1), lines)
    kind = li["kind"].to_numpy()
    channel = np.where(kind == 0, _pick(rng, ["Web", "Shop"], [0.85, 0.15], m),
                       np.where(kind == 1, _pick(rng, ["Telefon", "Hotline", "Shop"], [0.6, 0.25, 0.15], m),
                                _pick(rng, ["Web", "Shop"], [0.9, 0.1], m)))
    day = order_day[converted]
    time = _at_hours(rng, day, 8, 20)
    storno_day = day + _days(rng.integers(1, 15, m))
    storno = (rng.random(m) < 0.06) & (storno_day < PERIOD_END)
    storno_day = np.where(storno, storno_day, NAT)
    storno_reason = np.where(storno, _pick(rng, STORNO_REASONS, [0.3, 0.15, 0.15, 0.3, 0.1], m), None)
    neu, zus = (otype == 0) & ~storno, (otype == 2) & ~storno
    long = neu & (bb == 1) & (rng.random(m) < prov["long_share_broadband"])
    duration = np.where(bb == 1, np.where(long, rng.integers(prov["threshold_days"] + 1, 46, m), rng.integers(3, prov["threshold_days"], m)),
                        rng.integers(1, 6, m))
    duration = np.where(zus, rng.integers(1, 4, m), duration)
    prov_start = np.where(neu, day + _days(rng.integers(1, 4, m)), NAT)
    activation = np.where(neu | zus, day + _days(duration), NAT)
    pending = (neu | zus) & (activation >= PERIOD_END)
    activation = np.where(pending, NAT, activation)
    prov_start = np.where(prov_start >= PERIOD_END, NAT, prov_start)
    first_invoice = np.where(neu & ~pending, activation + _days(rng.integers(10, 31, m)), NAT)
    first_invoice = np.where(first_invoice >= PERIOD_END, NAT, first_invoice)
    orders = pd.DataFrame({
        "pid": pid, "leadin": li.index.to_numpy(), "time": time, "type": otype, "broadband": bb.astype(bool),
        "product": product, "fee": fee, "amount": amount, "channel": channel,
        "status": np.where(storno, 1, np.where(pending, 2, 0)), "storno_day": storno_day, "storno_reason": storno_reason,
        "prov_start": prov_start, "activation": activation, "first_invoice": first_invoice,
        "long": long, "duration": np.where(neu, duration, -1), "new_customer": ~li["existing_at"].to_numpy(),
    })
    return leadins, orders


def _leadins(rng: np.random.Generator, pid: np.ndarray, time: np.ndarray, existing_at: np.ndarray,
             persons: pd.DataFrame) -> pd.DataFrame:
    """Quotes (web) and consultations (phone/chat) that may lead to an order."""
    n = len(pid)
    kind = np.where(existing_at, rng.choice(3, n, p=[0.40, 0.45, 0.15]), rng.choice(3, n, p=[0.45, 0.40, 0.15]))
    planned = np.where(existing_at, rng.choice(3, n, p=[0.35, 0.45, 0.20]), 0)
    own_bb = persons["broadband"].to_numpy()[pid]
    broadband = np.where(planned == 0, rng.random(n) < 0.55, own_bb)
    return pd.DataFrame({"pid": pid, "time": time, "existing_at": existing_at, "kind": kind,
                         "planned_type": planned, "broadband": broadband})


def _sales(rng: np.random.Generator, persons: pd.DataFrame):
    """Lead-ins and orders (two rounds: first contact, then repeat business of new customers);
    returns persons with signup/category of converted leads, lead-ins and orders."""
    n = len(persons)
    existing = persons["existing"].to_numpy()
    new_idx = np.flatnonzero(~existing)
    k = rng.binomial(2, 0.3, n) * existing
    ex_idx = np.repeat(np.arange(n), k)
    ex_days = _uniform_days(rng, np.full(len(ex_idx), PERIOD_START), np.full(len(ex_idx), PERIOD_END - 10 * DAY))
    pid = np.concatenate([new_idx, ex_idx])
    time = _at_hours(rng, np.concatenate([persons["leadin_day"].to_numpy()[new_idx], ex_days]), 8, 20)
    li1 = _leadins(rng, pid, time, np.concatenate([np.zeros(len(new_idx), bool), np.ones(len(ex_idx), bool)]), persons)
    li1, orders1 = _orders_for(rng, li1, persons)
    # converted leads become customers on the day of their first order that was not cancelled
    first = (orders1[orders1["new_customer"] & (orders1["status"] != 1)]
             .sort_values("time", kind="stable").drop_duplicates("pid"))
    signup = persons["signup"].to_numpy().copy()
    broadband = persons["broadband"].to_numpy().copy()
    signup[first["pid"].to_numpy()] = _floor_day(first["time"].to_numpy())
    broadband[first["pid"].to_numpy()] = first["broadband"].to_numpy()
    persons = persons.assign(signup=signup, broadband=broadband)
    # repeat business of new customers: a second quote/consultation, now as an existing customer
    start = first["time"].to_numpy() + 30 * DAY
    ok = (rng.random(len(first)) < 0.25) & (start < PERIOD_END - 11 * DAY)
    pid2 = first["pid"].to_numpy()[ok]
    time2 = _at_hours(rng, _uniform_days(rng, start[ok], np.full(ok.sum(), PERIOD_END - 10 * DAY)), 8, 20)
    li2 = _leadins(rng, pid2, time2, np.ones(len(pid2), bool), persons)
    li2.index = li2.index + len(li1)
    li2, orders2 = _orders_for(rng, li2, persons)
    leadins = pd.concat([li1, li2])
    orders = pd.concat([orders1, orders2], ignore_index=True)
    # monthly revenue for the CRM: main product of each customer
    prod_name, prod_fee = _products_for(rng, persons["broadband"].to_numpy().astype(int),
                                        persons["business"].to_numpy(), np.zeros(n, bool))
    fee = np.where(persons["signup"].notna(), prod_fee * persons["lines"].to_numpy(), -1)
    return persons.assign(fee=fee), leadins, orders


def _addons(rng: np.random.Generator, persons: pd.DataFrame, orders: pd.DataFrame, leadins: pd.DataFrame) -> pd.DataFrame:
    """Add-on purchases (Zusatzkauf: SIMs, packs, accessories, phones) of customers while active,
    from the first activation (existing customers: 2024-01-01) to churn or the end of the period,
    drawn from BG/NBD + Gamma-Gamma (PLANTED["repeat_purchases"]), less those that fall while one
    of the customer's quotes or consultations (`leadins`) is open. Delivered one-off purchases:
    no lead-in (leadin -1), no provisioning milestones. Returns rows in the columns of `orders`."""
    cfg = PLANTED["repeat_purchases"]
    bg, gg = cfg["bg_nbd"], cfg["gamma_gamma"]
    n = len(persons)
    first_act = (orders[orders["new_customer"] & orders["activation"].notna()]
                 .groupby("pid")["activation"].min())
    start = np.where(persons["existing"].to_numpy(), PERIOD_START, NAT)
    start[first_act.index.to_numpy()] = first_act.to_numpy()
    churn = persons["churn"].to_numpy()
    end = np.where(pd.isna(churn), PERIOD_END, churn)
    lam = rng.gamma(bg["r"], 1 / bg["alpha"], n)                  # purchases a day
    drop = rng.beta(bg["a"], bg["b"], n)                           # dropout after each repeat purchase
    nu = rng.gamma(gg["q"], 1 / gg["v"], n)                        # spend rate: mean spend p / nu euros
    first = start + _days(rng.exponential(cfg["first_purchase_mean_days"], n))
    buyer = np.flatnonzero(~np.isnat(first) & (first < end))
    span = (end[buyer] - first[buyer]) / DAY                       # days from the first add-on to the end
    # repeats: the Poisson arrivals in the span, up to the dropout after the Geometric(p)-th one
    n_arrivals = rng.poisson(lam[buyer] * span)
    kept = np.minimum(n_arrivals, rng.geometric(drop[buyer]))
    owner = np.repeat(np.arange(len(buyer)), n_arrivals)
    u = rng.random(len(owner))
    order = np.lexsort((u, owner))                                 # arrivals sorted within each customer
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(n_arrivals) - n_arrivals, n_arrivals)
    keep = rank < kept[owner]                                      # owner is sorted, so rank matches `order`
    owner, u = owner[order][keep], u[order][keep]
    who = np.concatenate([np.arange(len(buyer)), owner])
    at = np.concatenate([first[buyer], first[buyer][owner] + _days(u * span[owner])])
    pid = buyer[who]
    m = len(pid)
    lo, hi = cfg["spend_range_eur"]
    euros = np.clip(rng.gamma(gg["p"], 1 / nu[pid]), lo, hi)
    cents = np.round(euros * 100).astype("int64")
    names = np.array([name for name, _ in ADDON_PRODUCTS], dtype=object)
    product = names[np.searchsorted([floor for _, floor in ADDON_PRODUCTS], euros, side="right") - 1]
    addons = pd.DataFrame({
        "pid": pid, "leadin": -1, "time": _at_hours(rng, _floor_day(at), 8, 20), "type": ADDON, "broadband": False,
        "product": product, "fee": 0, "amount": cents,
        "channel": _pick(rng, ["Web", "Shop", "Telefon", "Hotline"], [0.50, 0.30, 0.15, 0.05], m),
        "status": 0, "storno_day": NAT, "storno_reason": None, "prov_start": NAT, "activation": NAT,
        "first_invoice": NAT, "long": False, "duration": -1, "new_customer": False,
    })
    # an open opportunity (lead-in at li): no add-on in [li - before, li + after]
    before, after = cfg["none_while_opportunity_open_days"]
    opened = leadins[["pid", "time"]].assign(time=lambda d: d["time"] + _days(before))
    open_at = _first_in_window(addons, opened, by="pid", on="time", right_on="time", window=(after - before) * DAY)
    return addons[~open_at["_hit"].to_numpy()].reset_index(drop=True)


def _category(orders: pd.DataFrame) -> np.ndarray:
    """CATEGORIES index per order: Breitband/Mobilfunk by the contract, Zusatzprodukte for add-ons."""
    return np.where(orders["type"].to_numpy() == ADDON, 2, orders["broadband"].to_numpy().astype(int))


def _outages(rng: np.random.Generator, persons: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regional broadband outages and the customers they hit (half of them told in advance)."""
    cfg = PLANTED["outage"]
    k = cfg["count"]
    start_day = np.sort(_uniform_days(rng, np.full(k, PERIOD_START + 20 * DAY), np.full(k, PERIOD_END - 20 * DAY)))
    start = _at_hours(rng, start_day, 6, 20)
    outages = pd.DataFrame({"outage": np.arange(k), "region": rng.choice(len(REGIONS), k, p=REGION_P),
                            "start": start, "end": start + (rng.uniform(3, 36, k) * 3600).astype("int64") * SECOND})
    signup = persons["signup"].to_numpy()
    hit = []
    for row in outages.itertuples():
        eligible = (persons["broadband"].to_numpy() & (persons["region"].to_numpy() == row.region)
                    & (signup <= row.start))
        pid = np.flatnonzero(eligible & (rng.random(len(persons)) < cfg["affected_share"]))
        hit.append(pd.DataFrame({"pid": pid, "outage": row.outage, "start": row.start, "end": row.end,
                                 "notified": rng.random(len(pid)) < cfg["notified_share"]}))
    return outages, pd.concat(hit, ignore_index=True)


# =========================================================================================
# contact centre
# =========================================================================================
def _contact_rows(pid, time, reason, *, direction=0, channel=None, origin="base") -> pd.DataFrame:
    n = len(pid)
    return pd.DataFrame({
        "pid": np.asarray(pid, dtype="int64"), "time": np.asarray(time, dtype="datetime64[s]"),
        "reason": np.broadcast_to(np.asarray(reason, dtype=object), (n,)).copy(),
        "direction": np.broadcast_to(np.asarray(direction), (n,)).astype("int8"),
        "channel": np.broadcast_to(np.asarray(channel, dtype=object), (n,)).copy(),
        "origin": origin,
    })


def _finish_contacts(rng: np.random.Generator, c: pd.DataFrame) -> pd.DataFrame:
    """Draw channel spellings, waits, handling times, resolution and notes."""
    n = len(c)
    inbound = c["direction"].to_numpy() == 0
    channel = c["channel"].to_numpy().copy()
    missing = pd.isna(channel)
    channel = np.where(missing & inbound, _pick(rng, *INBOUND_CHANNELS, n), channel)
    channel = np.where(missing & ~inbound, _pick(rng, ["Telefon", "E-Mail"], [0.7, 0.3], n), channel)
    phone = np.isin(channel, PHONE_SPELLINGS)
    wait = np.where(inbound & phone, np.minimum(np.rint(rng.lognormal(np.log(120), 1.0, n)), 3600), np.nan)
    reason = c["reason"].to_numpy()
    notice = reason == "outage_notification"
    written = np.isin(channel, ["E-Mail", "Brief"])
    handle = np.round(np.where(written, rng.lognormal(np.log(8), 0.5, n), rng.lognormal(np.log(6), 0.6, n)), 1)
    handle = np.where(notice, np.nan, handle)
    sf = reason == "complaint_service_failure"
    resolved = np.where(sf, rng.choice([1, 0, -1], n, p=[0.5, 0.4, 0.1]), rng.choice([1, 0, -1], n, p=[0.75, 0.15, 0.10]))
    resolved = np.where(notice, -1, resolved).astype("int8")
    note = np.where((rng.random(n) < 0.3) & ~notice, NOTES[rng.integers(0, len(NOTES), n)], None)
    return c.assign(channel=channel, wait=wait, handle=handle, resolved=resolved, note=note)


def _contacts_before_churn(rng: np.random.Generator, persons: pd.DataFrame, leadins: pd.DataFrame,
                           orders: pd.DataFrame, affected: pd.DataFrame) -> pd.DataFrame:
    """Everyday contacts, consultations, provisioning and first-invoice questions, outage
    notices and complaints (all that churn depends on, or that happens regardless of it)."""
    n = len(persons)
    signup = persons["signup"].to_numpy()
    customer = ~pd.isna(signup)
    start = np.where(customer, np.maximum(signup, PERIOD_START), PERIOD_END)
    years = np.where(customer, (PERIOD_END - start) / DAY / 365.25, 0.0)
    rate = np.where(persons["business"].to_numpy(), 1.2, 0.75)
    k = rng.poisson(rate * years)
    pid = np.repeat(np.arange(n), k)
    day = _uniform_days(rng, start[pid], np.full(len(pid), PERIOD_END))
    reasons = _pick(rng, list(BASE_REASONS), list(BASE_REASONS.values()), len(pid))
    parts = [_contact_rows(pid, _at_hours(rng, day, 8, 20), reasons,
                           direction=(rng.random(len(pid)) < 0.08).astype(int))]
    # consultations (lead-ins by phone or chat)
    li = leadins[leadins["kind"] > 0]
    m = len(li)
    chan = np.where(li["kind"].to_numpy() == 2, "Chat", _pick(rng, ["Telefon", "Hotline", "phone"], [0.5, 0.3, 0.2], m))
    direction = (rng.random(m) < 0.25).astype(int)
    chan = np.where((direction == 1) & (chan != "Chat"), "Telefon", chan)
    reason = np.where(li["planned_type"].to_numpy() == 1, "contract_renewal", "sales_consultation")
    parts.append(_contact_rows(li["pid"], li["time"], reason, direction=direction, channel=chan, origin="consultation"))
    # provisioning questions and complaints while waiting for activation
    o = orders[orders["prov_start"].notna()]
    end = np.where(o["activation"].isna(), PERIOD_END, o["activation"].to_numpy())
    long = o["long"].to_numpy()
    q = np.where(long, 1 + (rng.random(len(o)) < 0.5), (rng.random(len(o)) < 0.25)).astype(int)
    cpl = np.where(long, rng.random(len(o)) < 0.30, rng.random(len(o)) < 0.02).astype(int)
    for counts, reason in ((q, "provisioning_question"), (cpl, "complaint_provisioning")):
        idx = np.repeat(np.arange(len(o)), counts)
        day = _uniform_days(rng, o["prov_start"].to_numpy()[idx], end[idx])
        parts.append(_contact_rows(o["pid"].to_numpy()[idx], _at_hours(rng, day, 8, 20), reason, origin="provisioning"))
    # an unclear first invoice
    o = orders[orders["first_invoice"].notna()]
    o = o[rng.random(len(o)) < 0.15]
    day = o["first_invoice"].to_numpy() + _days(rng.integers(2, 21, len(o)))
    keep = day < PERIOD_END
    parts.append(_contact_rows(o["pid"].to_numpy()[keep], _at_hours(rng, day[keep], 8, 20), "invoice_unclear", origin="first_invoice"))
    # outages: proactive notices (outbound) and complaints / technical help
    a = affected
    notified = a["notified"].to_numpy()
    t = a["start"].to_numpy() + (rng.uniform(10, 120, len(a)) * 60).astype("int64") * SECOND
    parts.append(_contact_rows(a["pid"].to_numpy()[notified], t[notified], "outage_notification", direction=1,
                               channel=_pick(rng, ["E-Mail", "SMS"], [0.5, 0.5], int(notified.sum())), origin="outage"))
    for reason, p_no, p_yes in (("complaint_service_failure", 0.25, 0.08), ("technical_support", 0.20, 0.08)):
        hit = rng.random(len(a)) < np.where(notified, p_yes, p_no)
        st = a["start"].to_numpy()[hit]
        t = _at_hours(rng, _floor_day(st) + _days(rng.integers(0, 3, int(hit.sum()))), 8, 21)
        t = np.where(t <= st, st + (rng.uniform(30, 180, len(st)) * 60).astype("int64") * SECOND, t)
        parts.append(_contact_rows(a["pid"].to_numpy()[hit], t, reason, origin="outage"))
    contacts = pd.concat(parts, ignore_index=True)
    return _finish_contacts(rng, contacts[contacts["time"] < PERIOD_END])


def _contacts_after_churn(rng: np.random.Generator, persons: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """Cancellation requests, the monthly billing complaints (with the planted spike) and
    hotline complaints after long waits; all before churn."""
    cfg = PLANTED["billing_complaints"]
    hot = PLANTED["hotline_wait"]
    signup = persons["signup"].to_numpy()
    churn = persons["churn"].to_numpy()
    churn_or_end = np.where(pd.isna(churn), PERIOD_END, churn)
    active_from = np.where(pd.isna(signup), PERIOD_END, np.maximum(signup, PERIOD_START))
    parts = [contacts]
    # cancellation requests before churn
    churned = np.flatnonzero(~pd.isna(churn) & (rng.random(len(persons)) < 0.7))
    day = churn[churned] - _days(rng.integers(1, 31, len(churned)))
    day = np.maximum(day, _floor_day(active_from[churned]) + DAY)
    ok = day < churn[churned]
    parts.append(_finish_contacts(rng, _contact_rows(churned[ok], _at_hours(rng, day[ok], 8, 20), "cancellation_request",
                                                     channel=_pick(rng, ["Telefon", "Hotline", "Brief", "E-Mail"], [0.35, 0.2, 0.3, 0.15], int(ok.sum())),
                                                     origin="cancellation")))
    # billing complaints: a fixed rate per 1,000 active customers, tripled in the spike month
    months = np.arange(np.datetime64("2024-01", "M"), np.datetime64("2026-01", "M"))
    for month in months:
        m0 = month.astype("datetime64[D]").astype("datetime64[s]")
        m1 = (month + 1).astype("datetime64[D]").astype("datetime64[s]")
        active = np.flatnonzero((active_from < m1) & (churn_or_end > m0))
        mult = cfg["spike_multiplier"] if str(month) == cfg["spike_month"] else 1.0
        jitter = rng.uniform(1 - cfg["jitter"], 1 + cfg["jitter"])
        count = min(int(round(cfg["base_rate_per_1000_per_month"] / 1000 * len(active) * mult * jitter)), len(active))
        pid = rng.choice(active, count, replace=False)
        lo = np.maximum(m0, _floor_day(active_from[pid]))
        hi = np.minimum(m1, churn_or_end[pid])
        parts.append(_finish_contacts(rng, _contact_rows(pid, _at_hours(rng, _uniform_days(rng, lo, hi), 8, 20),
                                                         "complaint_billing", origin="billing")))
    contacts = pd.concat(parts, ignore_index=True)
    # hotline complaints after a long wait on the phone
    src = contacts[contacts["wait"].notna()]
    long = src["wait"].to_numpy() > hot["threshold_seconds"]
    follow = rng.random(len(src)) < np.where(long, hot["complaint_prob_long"], hot["complaint_prob_short"])
    s = src[follow]
    lo, hi = hot["followup_days"]
    t = _at_hours(rng, _floor_day(s["time"].to_numpy()) + _days(rng.integers(lo, hi + 1, len(s))), 8, 20)
    fu = _finish_contacts(rng, _contact_rows(s["pid"], t, "complaint_hotline",
                                             channel=_pick(rng, ["E-Mail", "Telefon", "Brief"], [0.5, 0.35, 0.15], len(s)),
                                             origin="hotline_followup"))
    fu = fu.assign(wait=np.where(fu["wait"].notna(), np.minimum(np.rint(rng.lognormal(np.log(60), 0.5, len(fu))), 280), np.nan))
    ok = (fu["time"].to_numpy() < churn_or_end[fu["pid"].to_numpy()]) & (fu["time"].to_numpy() < PERIOD_END)
    contacts = pd.concat([contacts, fu[ok]], ignore_index=True)
    return contacts.sort_values(["time", "pid"], kind="stable").reset_index(drop=True)


def _churn(rng: np.random.Generator, persons: pd.DataFrame, orders: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """Churn day per person from competing exponential clocks: the baseline hazard, an extra
    clock after a long provisioning (hazard x2), and one for 90 days after each unresolved
    service-failure complaint (hazard x3). Returns persons with `churn`."""
    lam = -np.log(1 - PLANTED["annual_churn"]) / 365.25
    n = len(persons)
    never = np.iinfo("int64").max
    first_act = (orders[orders["new_customer"] & orders["activation"].notna()]
                 .groupby("pid")["activation"].min())
    start = np.where(persons["existing"].to_numpy(), PERIOD_START, NAT)
    start[first_act.index.to_numpy()] = first_act.to_numpy()
    t_base = start + _days(rng.exponential(1 / lam, n))
    best = np.where(pd.isna(t_base), never, t_base.astype("int64"))
    lo = orders[orders["long"] & orders["activation"].notna()]
    hr = PLANTED["provisioning"]["churn_hazard_ratio"]
    t_long = lo["activation"].to_numpy() + _days(rng.exponential(1 / (lam * (hr - 1)), len(lo)))
    np.minimum.at(best, lo["pid"].to_numpy(), t_long.astype("int64"))
    cfg = PLANTED["unresolved_service_failure"]
    sf = contacts[(contacts["reason"] == "complaint_service_failure") & (contacts["resolved"] == 0)]
    e = rng.exponential(1 / (lam * (cfg["churn_hazard_ratio"] - 1)), len(sf))
    t_sf = np.where(e < cfg["window_days"], (sf["time"].to_numpy() + _days(e)).astype("int64"), never)
    np.minimum.at(best, sf["pid"].to_numpy(), t_sf)
    churn = np.where(best == never, NAT, best.astype("datetime64[s]"))
    churn = _floor_day(churn) + DAY
    churn = np.where(churn >= PERIOD_END, NAT, churn)
    return persons.assign(churn=churn)


def _before(frame: pd.DataFrame, persons: pd.DataFrame, col: str = "time") -> pd.DataFrame:
    """Rows that happen before their person's churn day."""
    churn = persons["churn"].to_numpy()[frame["pid"].to_numpy()]
    return frame[pd.isna(churn) | (frame[col].to_numpy() < churn)]


# =========================================================================================
# surveys and verbatims
# =========================================================================================
def _responses(rng: np.random.Generator, persons: pd.DataFrame, contacts: pd.DataFrame,
               orders: pd.DataFrame, affected: pd.DataFrame) -> pd.DataFrame:
    """Relationship (quarterly sample) and transactional (after contacts, activation, order)
    responses with NPS/CSAT/CES drawn from a latent score that carries the planted effects."""
    n = len(persons)
    signup = persons["signup"].to_numpy()
    churn = persons["churn"].to_numpy()
    churn_or_end = np.where(pd.isna(churn), PERIOD_END, churn)
    active_from = np.where(pd.isna(signup), PERIOD_END, np.maximum(signup, PERIOD_START))
    parts = []
    for q in range(8):
        qs = np.datetime64("2024-01-01", "M") + 3 * q
        q0, q1 = qs.astype("datetime64[D]").astype("datetime64[s]"), (qs + 3).astype("datetime64[D]").astype("datetime64[s]")
        lo, hi = np.maximum(active_from, q0), np.minimum(churn_or_end, q1)
        pid = np.flatnonzero((hi - lo >= DAY) & (rng.random(n) < 0.12))
        t = _at_hours(rng, _uniform_days(rng, lo[pid], hi[pid]), 7, 22)
        parts.append(pd.DataFrame({"pid": pid, "time": t, "survey": "Beziehung", "touchpoint": None}))
    c = contacts[(contacts["direction"] == 0) & (rng.random(len(contacts)) < 0.18)]
    reason = c["reason"].to_numpy()
    tp = np.where(pd.Series(reason).str.startswith("complaint").to_numpy(), "Beschwerde",
                  np.where(np.isin(reason, ["sales_consultation", "contract_renewal"]), "Beratung", "Servicekontakt"))
    t = _at_hours(rng, _floor_day(c["time"].to_numpy()) + _days(rng.integers(1, 8, len(c))), 7, 22)
    parts.append(pd.DataFrame({"pid": c["pid"].to_numpy(), "time": t, "survey": "Transaktion", "touchpoint": tp}))
    o = orders[orders["activation"].notna() & (orders["type"] == 0)]
    o = o[rng.random(len(o)) < 0.30]
    t = _at_hours(rng, o["activation"].to_numpy() + _days(rng.integers(3, 15, len(o))), 7, 22)
    parts.append(pd.DataFrame({"pid": o["pid"].to_numpy(), "time": t, "survey": "Transaktion", "touchpoint": "Aktivierung"}))
    o = orders[rng.random(len(orders)) < 0.08]
    t = _at_hours(rng, _floor_day(o["time"].to_numpy()) + _days(rng.integers(1, 6, len(o))), 7, 22)
    parts.append(pd.DataFrame({"pid": o["pid"].to_numpy(), "time": t, "survey": "Transaktion", "touchpoint": "Bestellung"}))
    r = pd.concat(parts, ignore_index=True)
    r = r[(r["time"].to_numpy() < PERIOD_END) & (r["time"].to_numpy() < churn_or_end[r["pid"].to_numpy()])]
    r = r.sort_values(["time", "pid"], kind="stable").reset_index(drop=True)
    return _scores(rng, r, persons, contacts, orders, affected)


def _exposures(r: pd.DataFrame, contacts: pd.DataFrame, orders: pd.DataFrame, affected: pd.DataFrame) -> pd.DataFrame:
    """Flags per response: invoice_unclear contact in the 60 days before, long provisioning
    (order .. activation + 180 days), outage hit in the 60 days before (and notified), a long
    hotline wait in the 14 days before."""
    inv_cfg, prov_cfg = PLANTED["invoice_unclear"], PLANTED["provisioning"]
    out_cfg, hot = PLANTED["outage"], PLANTED["hotline_wait"]
    inv = contacts[(contacts["reason"] == "invoice_unclear") & (contacts["direction"] == 0)]
    f_inv = _first_in_window(r, inv, by="pid", on="time", right_on="time", window=inv_cfg["window_days"] * DAY)
    lo = orders[orders["long"]].assign(_end=lambda d: d["activation"].fillna(PERIOD_END) + pd.Timedelta(days=prov_cfg["window_after_activation_days"]))
    f_prov = _first_in_window(r, lo, by="pid", on="time", right_on="time", window=400 * DAY, keep=("_end",))
    prov = f_prov["_hit"].to_numpy() & (r["time"].to_numpy() <= f_prov["_end"].to_numpy())
    f_out = _first_in_window(r, affected, by="pid", on="time", right_on="start", window=out_cfg["window_days"] * DAY,
                             keep=("notified",))
    waits = contacts[contacts["wait"] > hot["threshold_seconds"]]
    f_wait = _first_in_window(r, waits, by="pid", on="time", right_on="time", window=hot["ces_window_days"] * DAY)
    phone = contacts[contacts["wait"].notna()]
    f_phone = _first_in_window(r, phone, by="pid", on="time", right_on="time", window=hot["ces_window_days"] * DAY)
    outage = f_out["_hit"].to_numpy()
    notified = outage & f_out["notified"].fillna(False).to_numpy().astype(bool)
    return pd.DataFrame({"x_invoice": f_inv["_hit"].to_numpy(), "x_long_provisioning": prov,
                         "x_outage": outage, "x_outage_notified": notified,
                         "x_long_wait": f_wait["_hit"].to_numpy(), "x_phone": f_phone["_hit"].to_numpy()}, index=r.index)


def _scores(rng: np.random.Generator, r: pd.DataFrame, persons: pd.DataFrame, contacts: pd.DataFrame,
            orders: pd.DataFrame, affected: pd.DataFrame) -> pd.DataFrame:
    n = len(r)
    x = _exposures(r, contacts, orders, affected)
    pid = r["pid"].to_numpy()
    out = PLANTED["outage"]
    m = (7.8 - 0.3 * persons["business"].to_numpy()[pid] + persons["u"].to_numpy()[pid] + rng.normal(0, 1.6, n)
         + PLANTED["invoice_unclear"]["nps_latent_shift"] * x["x_invoice"].to_numpy()
         + PLANTED["provisioning"]["nps_latent_shift"] * x["x_long_provisioning"].to_numpy()
         + np.where(x["x_outage_notified"], out["nps_latent_shift_notified"],
                    np.where(x["x_outage"], out["nps_latent_shift_not_notified"], 0.0)))
    nps = np.clip(np.rint(m), 0, 10)
    csat = np.clip(np.rint(1 + 0.45 * (m - 1) + rng.normal(0, 0.6, n)), 1, 5)
    ces = np.clip(np.rint(5.3 + 0.3 * (m - 7.8) + rng.normal(0, 1.0, n)
                          + PLANTED["hotline_wait"]["ces_latent_shift"] * x["x_long_wait"].to_numpy()), 1, 7)
    trans = (r["survey"] == "Transaktion").to_numpy()
    asked_nps = ~trans | (rng.random(n) < 0.85)
    asked_csat = rng.random(n) < np.where(trans, 0.90, 0.60)
    asked_ces = trans & (rng.random(n) < 0.85)
    return pd.concat([r, x], axis=1).assign(
        latent=m, nps=np.where(asked_nps, nps, np.nan), csat=np.where(asked_csat, csat, np.nan),
        ces=np.where(asked_ces, ces, np.nan), nps_true=nps)


def _comments(rng: np.random.Generator, r: pd.DataFrame) -> pd.DataFrame:
    """Verbatims for part of the responses, with their truth labels: language (de/en/other),
    themes (taxonomy codes) and sentiment. Returns r with `comment`, `language`, `lang`,
    `themes`, `sentiment`, `has_pii`."""
    n = len(r)
    group = np.where(r["nps_true"] <= 6, 0, np.where(r["nps_true"] <= 8, 1, 2))   # detractor, passive, promoter
    has = rng.random(n) < np.array([0.50, 0.35, 0.40])[group]
    idx = np.flatnonzero(has)
    g = group[idx]
    k = len(idx)
    sentiment = np.where(g == 0, _pick(rng, ["negative", "neutral"], [0.85, 0.15], k),
                         np.where(g == 2, _pick(rng, ["positive", "neutral"], [0.85, 0.15], k),
                                  _pick(rng, ["neutral", "negative", "positive"], [0.5, 0.3, 0.2], k)))
    lang = _pick(rng, ["de", "en", "other"], [0.70, 0.25, 0.05], k)
    lang = np.where((lang == "other") & (sentiment == "neutral"), "de", lang)
    other = lang == "other"
    lang_code = np.where(other, _pick(rng, ["fr", "tr", "es"], [0.35, 0.45, 0.20], k), lang)
    weights = np.array([THEME_WEIGHTS[t] for t in THEMES]).T[g]              # k x themes
    boost = np.ones_like(weights)
    col = {t: i for i, t in enumerate(THEMES)}
    sub = r.iloc[idx]
    boost[:, col["invoice"]] = np.where(sub["x_invoice"], PLANTED["invoice_theme"]["boost_if_invoice_contact"], 1.0)
    boost[:, col["provisioning"]] = np.where(sub["x_long_provisioning"], 4.0, 1.0)
    boost[:, col["hotline_waiting"]] = np.where(sub["x_long_wait"], 4.0, 1.0)
    boost[:, col["outage"]] = np.where(sub["x_outage"], 4.0, 1.0)
    weights = weights * boost
    weights[other] = weights[other] * np.isin(THEMES, OTHER_LANG_THEMES)
    # hotline waiting has no positive sentence in other languages
    weights[other & (sentiment == "positive"), col["hotline_waiting"]] = 0.0

    def draw(w: np.ndarray) -> np.ndarray:
        cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
        return np.minimum((cum < rng.random((len(w), 1))).sum(axis=1), len(THEMES) - 1)

    t1 = draw(weights)
    w2 = weights.copy()
    w2[np.arange(k), t1] = 0.0
    t2 = np.where(~other & (rng.random(k) < 0.3), draw(w2), -1)
    variants = sentence_variants()
    s1 = np.empty(k, dtype=object)
    s2 = np.full(k, "", dtype=object)
    for (theme, lg, sent), options in variants.items():
        for target, th in ((s1, t1), (s2, t2)):
            rows = np.flatnonzero((th == col[theme]) & (lang_code == lg) & (sentiment == sent))
            target[rows] = np.asarray(options, dtype=object)[rng.integers(0, len(options), len(rows))]
    opener = np.full(k, "", dtype=object)
    closer = np.full(k, "", dtype=object)
    for (lg, sent), options in OPENERS.items():
        rows = np.flatnonzero((lang_code == lg) & (sentiment == sent) & (rng.random(k) < 0.4))
        opener[rows] = np.asarray(options, dtype=object)[rng.integers(0, len(options), len(rows))]
    for (lg, sent), options in CLOSERS.items():
        rows = np.flatnonzero((lang_code == lg) & (sentiment == sent) & (rng.random(k) < 0.3))
        closer[rows] = np.asarray(options, dtype=object)[rng.integers(0, len(options), len(rows))]
    pii = (rng.random(k) < 0.04) & ~other
    first = _translit(FIRST_M + FIRST_F)[rng.integers(0, len(FIRST_M) + len(FIRST_F), k)]
    last = _translit(LAST)[rng.integers(0, len(LAST), k)]
    mail = pd.Series(first) + "." + pd.Series(last) + "@" + pd.Series(_pick(rng, MAIL_DOMAINS, np.ones(len(MAIL_DOMAINS)), k))
    phone = "0" + pd.Series(_pick(rng, MOBILE_PREFIX, np.ones(len(MOBILE_PREFIX)), k)) + " " + _digits(rng, k, 7)
    use_mail = rng.random(k) < 0.5
    pii_text = np.where(lang_code == "de",
                        np.where(use_mail, "Meine E-Mail: " + mail, "Bitte melden Sie sich unter " + phone + "."),
                        np.where(use_mail, "Contact me at " + mail + ".", "My number is " + phone + "."))
    pii_text = np.where(pii, pii_text, "")
    pieces = [pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
              for arr in (pa.array(np.asarray(x, dtype=str), pa.string()) for x in (opener, s1, s2, closer, pii_text))]
    text = pc.binary_join_element_wise(*pieces, " ", null_handling="skip").to_numpy(zero_copy_only=False)
    themes = np.where(t2 >= 0, np.array(THEMES, dtype=object)[t1] + "|" + np.array(THEMES + [""], dtype=object)[t2],
                      np.array(THEMES, dtype=object)[t1])
    out = pd.DataFrame({"comment": None, "language": None, "lang": None, "themes": None, "sentiment": None,
                        "has_pii": False}, index=r.index)
    out.iloc[idx, out.columns.get_loc("comment")] = np.asarray(text, dtype=object)
    out.iloc[idx, out.columns.get_loc("language")] = lang
    out.iloc[idx, out.columns.get_loc("lang")] = lang_code
    out.iloc[idx, out.columns.get_loc("themes")] = themes
    out.iloc[idx, out.columns.get_loc("sentiment")] = sentiment
    out.iloc[idx, out.columns.get_loc("has_pii")] = pii
    return pd.concat([r, out], axis=1)


# =========================================================================================
# campaigns and web analytics
# =========================================================================================
def _campaigns(rng: np.random.Generator, persons: pd.DataFrame) -> pd.DataFrame:
    """Campaign sends to people with contact consent who are in the CRM at send time."""
    lead = persons["lead_date"].to_numpy()
    signup = persons["signup"].to_numpy()
    churn = persons["churn"].to_numpy()
    consent = persons["consent"].to_numpy() == 0
    parts = []
    for i, (name, date, audience) in enumerate(CAMPAIGNS):
        send = np.datetime64(date + "T09:00", "s") + int(rng.integers(0, 180)) * MINUTE
        is_customer = ~pd.isna(signup) & (signup <= send)
        target = {"leads": ~is_customer, "customers": is_customer, "all": np.ones(len(persons), bool)}[audience]
        pid = np.flatnonzero(consent & (lead <= send) & (pd.isna(churn) | (churn > send)) & target
                             & (rng.random(len(persons)) < 0.6))
        responded = rng.random(len(pid)) < np.where(is_customer[pid], 0.04, 0.06)
        delay = rng.exponential(1.5, len(pid))
        t = _at_hours(rng, _floor_day(send + _days(delay)), 7, 23)
        t = np.where(t <= send, send + (rng.uniform(10, 180, len(pid)) * 60).astype("int64") * SECOND, t)
        ok = responded & (delay < 14) & (t < PERIOD_END) & (pd.isna(churn[pid]) | (t < churn[pid]))
        parts.append(pd.DataFrame({"campaign": i, "pid": pid, "sent": send, "responded": np.where(ok, t, NAT)}))
    return pd.concat(parts, ignore_index=True)


def _web(rng: np.random.Generator, persons: pd.DataFrame, leadins: pd.DataFrame, orders: pd.DataFrame,
         campaigns: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Web sessions of known visitors (customers, leads) and anonymous ones.
    Returns (sessions: vis, time, page, device; visitors: vis, pid (-1 anonymous))."""
    n = len(persons)
    k_vis = 1 + (rng.random(n) < 0.25) + (rng.random(n) < 0.05)
    vis_start = np.concatenate([[0], np.cumsum(k_vis)[:-1]])
    signup, churn = persons["signup"].to_numpy(), persons["churn"].to_numpy()
    churn_or_end = np.where(pd.isna(churn), PERIOD_END, churn)
    web_user = rng.random(n) < 0.88
    parts = []
    # customers browse while they are customers, leads around their first contact
    c_start = np.where(pd.isna(signup), PERIOD_END, np.maximum(signup, PERIOD_START))
    years = np.maximum((churn_or_end - c_start) / DAY, 0) / 365.25
    pid = np.repeat(np.arange(n), rng.poisson(12.0 * years * web_user))
    t = _at_hours(rng, _uniform_days(rng, c_start[pid], churn_or_end[pid]), 6, 24)
    parts.append((pid, t, rng.choice(len(PAGE_TYPES), len(pid), p=PAGE_P_CUSTOMER)))
    new = ~persons["existing"].to_numpy()
    lead_day = persons["lead_date"].to_numpy()
    l_start = np.maximum(PERIOD_START, lead_day - 30 * DAY)
    l_end = np.minimum(persons["leadin_day"].to_numpy() + 60 * DAY, PERIOD_END)
    pid = np.repeat(np.arange(n), rng.poisson(5.0 * (web_user & new)))
    t = _at_hours(rng, _uniform_days(rng, l_start[pid], l_end[pid]), 6, 24)
    parts.append((pid, t, rng.choice(len(PAGE_TYPES), len(pid), p=PAGE_P_LEAD)))
    # pages that belong to a step of the journey
    page = {p: i for i, p in enumerate(PAGE_TYPES)}
    q = leadins[leadins["kind"] == 0]
    parts.append((q["pid"].to_numpy(), q["time"].to_numpy() - (rng.uniform(0, 10, len(q)) * 60).astype("int64") * SECOND,
                  np.full(len(q), page["quote_request"])))
    w = orders[orders["channel"] == "Web"]
    for name, lo, hi in (("cart", 10, 60), ("checkout", 0, 5)):
        parts.append((w["pid"].to_numpy(), w["time"].to_numpy() - (rng.uniform(lo, hi, len(w)) * 60).astype("int64") * SECOND,
                      np.full(len(w), page[name])))
    r = campaigns[campaigns["responded"].notna()]
    parts.append((r["pid"].to_numpy(), r["responded"].to_numpy(), np.full(len(r), page["tariffs"])))
    pid = np.concatenate([p[0] for p in parts])
    time = np.concatenate([p[1] for p in parts]).astype("datetime64[s]")
    pg = np.concatenate([p[2] for p in parts])
    keep = (time < np.minimum(churn_or_end[pid], PERIOD_END)) & (time >= PERIOD_START)
    pid, time, pg = pid[keep], time[keep], pg[keep]
    vis = vis_start[pid] + (rng.random(len(pid)) * k_vis[pid]).astype("int64")
    # anonymous visitors (not in web_logins; the mapping's join drops them)
    n_anon = int(round(0.15 * len(pid)))
    n_anon_vis = max(n_anon * 2 // 5, 1)
    a_vis = int(k_vis.sum()) + rng.integers(0, n_anon_vis, n_anon)
    a_time = _at_hours(rng, _uniform_days(rng, np.full(n_anon, PERIOD_START), np.full(n_anon, PERIOD_END)), 6, 24)
    sessions = pd.DataFrame({
        "vis": np.concatenate([vis, a_vis]), "time": np.concatenate([time, a_time]),
        "page": np.concatenate([pg, rng.choice(len(PAGE_TYPES), n_anon, p=PAGE_P_LEAD)]),
    })
    sessions = sessions.assign(device=rng.choice(len(DEVICES), len(sessions), p=[0.42, 0.45, 0.08, 0.05]))
    visitors = pd.DataFrame({"vis": np.arange(int(k_vis.sum()) + n_anon_vis),
                             "pid": np.concatenate([np.repeat(np.arange(n), k_vis), np.full(n_anon_vis, -1)])})
    return sessions.sort_values("time", kind="stable").reset_index(drop=True), visitors


# =========================================================================================
# the occasion programme (Kundenbrief): occasion-timed sends, contact fatigue, option purchases
# =========================================================================================
_KEY = 10**6                                     # day numbers (days since 1970) stay below this


def _shift_months(days: np.ndarray, months) -> np.ndarray:
    """Day numbers shifted by whole months, the day clipped to the month's end (02-29 -> 02-28)."""
    d = np.asarray(days, dtype="int64").astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day = (d - month.astype("datetime64[D]")).astype("int64")
    target = month + np.asarray(months, dtype="int64")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype("int64")
    return (target.astype("datetime64[D]") + np.minimum(day, length - 1)).astype("int64")


def _occasion_windows(persons: pd.DataFrame, orders: pd.DataFrame, contacts: pd.DataFrame, first_name: np.ndarray,
                      lo: int, hi: int) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Per occasion: (pid, first day of the window, window length in days) of every occasion date
    D in [lo, hi] (day numbers), as config/taxonomy.yml `occasions` derives them."""
    cfg = PLANTED["occasion_program"]["occasions"]
    signup = persons["signup"].to_numpy()
    has = ~np.isnat(signup)
    pid_s, day_s = np.flatnonzero(has), signup[has].astype("datetime64[D]").astype("int64")
    out = {}

    def recurring(pid, base, step, first_k, lead):
        parts_p, parts_d = [], []
        for k in range(first_k, 40 * 12 // step + 1):             # every term back to 1986 at most
            d = _shift_months(base, k * step)
            hit = (d >= lo) & (d <= hi)
            parts_p.append(pid[hit]), parts_d.append(d[hit])
        return np.concatenate(parts_p), np.concatenate(parts_d) - lead, lead

    out["contract_anniversary"] = recurring(pid_s, day_s, 12, 1, cfg["contract_anniversary"]["lead_days"])
    out["renewal_window"] = recurring(pid_s, day_s, cfg["renewal_window"]["term_months"], 1, cfg["renewal_window"]["lead_days"])
    for name, col in (("first_invoice", "first_invoice"), ("activation_completed", "activation")):
        t = orders[col].to_numpy()
        ok = ~np.isnat(t)
        d = t[ok].astype("datetime64[D]").astype("int64") + cfg[name]["days_after"]
        keep = (d >= lo) & (d <= hi)
        out[name] = (orders["pid"].to_numpy()[ok][keep], d[keep] - cfg[name]["lead_days"], cfg[name]["lead_days"])
    c = contacts[contacts["reason"].str.startswith("complaint_") & (contacts["resolved"] == 1)]
    d = c["time"].to_numpy().astype("datetime64[D]").astype("int64") + cfg["complaint_resolved"]["days_after"]
    keep = (d >= lo) & (d <= hi)
    out["complaint_resolved"] = (c["pid"].to_numpy()[keep], d[keep] - cfg["complaint_resolved"]["lead_days"],
                                 cfg["complaint_resolved"]["lead_days"])
    mmdd = pd.Series(first_name).map(NAME_DAYS)
    has = mmdd.notna().to_numpy()
    base = pd.to_datetime("2000-" + mmdd[has]).to_numpy().astype("datetime64[D]").astype("int64")
    out["name_day"] = recurring(np.flatnonzero(has), base, 12, 0, cfg["name_day"]["lead_days"])
    return out


def _timed_on(pid: np.ndarray, day: np.ndarray, windows: dict) -> np.ndarray:
    """The first occasion (in `windows` order) whose window holds each send day, '' for none."""
    result = np.full(len(pid), "", dtype=object)
    for name in reversed(list(windows)):
        w_pid, w_start, length = windows[name]
        if len(w_pid) == 0:
            continue
        keys = np.sort(w_pid.astype("int64") * _KEY + w_start)
        q = pid.astype("int64") * _KEY + day
        i = np.searchsorted(keys, q, side="right") - 1
        found = keys[np.maximum(i, 0)]
        hit = (i >= 0) & (found // _KEY == pid) & (day - found % _KEY <= length)
        result[hit] = name
    return result


def _prior_sends(pid: np.ndarray, t: np.ndarray, days: int) -> np.ndarray:
    """Sends of the same person in the `days` before each send (strictly before)."""
    secs = t.astype("datetime64[s]").astype("int64")
    span = int(secs.max() - secs.min()) + 2 * days * 86400 + 1 if len(secs) else 1
    key = pid.astype("int64") * span + (secs - (secs.min() if len(secs) else 0))
    order = np.sort(key)
    return np.searchsorted(order, key, side="left") - np.searchsorted(order, key - days * 86400, side="left")


def _occasion_program(rng: np.random.Generator, persons: pd.DataFrame, orders: pd.DataFrame, contacts: pd.DataFrame,
                      leadins: pd.DataFrame, campaigns: pd.DataFrame, first_name: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Kundenbrief sends (name, pid, sent, responded, occasion, prior) and the options their
    responders book (rows in the columns of `orders`); PLANTED["occasion_program"]."""
    cfg = PLANTED["occasion_program"]
    n = len(persons)
    signup, churn = persons["signup"].to_numpy(), persons["churn"].to_numpy()
    consent = persons["consent"].to_numpy() == 0
    months = np.arange(np.datetime64("2024-01", "M"), np.datetime64("2026-01", "M"))
    parts = []
    for i, month in enumerate(months):                            # 24 monthly mailings, vectorised over people
        first = month.astype("datetime64[D]").astype("datetime64[s]")
        length = int(((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype("int64"))
        reach = cfg["reach"][0] + (cfg["reach"][1] - cfg["reach"][0]) * i / (len(months) - 1)
        sent = _at_hours(rng, first + rng.integers(0, length, n) * DAY, 9, 17)
        ok = (consent & (rng.random(n) < reach) & ~np.isnat(signup) & (signup <= sent)
              & (np.isnat(churn) | (churn > sent)))
        parts.append(pd.DataFrame({"name": f"{str(month)} {cfg['campaign']}", "pid": np.flatnonzero(ok), "sent": sent[ok]}))
    sends = pd.concat(parts, ignore_index=True)
    # sends of every campaign in the 90 days before
    all_pid = np.concatenate([campaigns["pid"].to_numpy(), sends["pid"].to_numpy()])
    all_t = np.concatenate([campaigns["sent"].to_numpy(), sends["sent"].to_numpy()]).astype("datetime64[s]")
    prior = _prior_sends(all_pid, all_t, cfg["fatigue_window_days"])[len(campaigns):]
    lo = int(np.datetime64("2023-12-01", "D").astype("int64"))
    hi = int(np.datetime64("2026-03-31", "D").astype("int64"))
    windows = _occasion_windows(persons, orders, contacts, first_name, lo, hi)
    day = sends["sent"].to_numpy().astype("datetime64[D]").astype("int64")
    base = np.where(persons["business"].to_numpy()[sends["pid"].to_numpy()], cfg["base_response"]["business"],
                    cfg["base_response"]["private"])
    u, delay = rng.random(len(sends)), rng.exponential(1.5, len(sends))
    month_of = sends["sent"].to_numpy().astype("datetime64[M]")
    occasion = np.full(len(sends), "", dtype=object)
    responded = np.full(len(sends), NAT)
    bought = []
    for month in months:           # month by month: an option booked after a response is an occasion for later sends
        rows = np.flatnonzero(month_of == month)
        pid, t = sends["pid"].to_numpy()[rows], sends["sent"].to_numpy()[rows]
        occasion[rows] = _timed_on(pid, day[rows], windows)
        p = base[rows] * np.where(occasion[rows] != "", cfg["occasion_response_ratio"], 1.0) * cfg["fatigue_ratio_per_send"] ** prior[rows]
        r_t = _at_hours(rng, _floor_day(t + _days(delay[rows])), 7, 23)
        r_t = np.where(r_t <= t, t + (rng.uniform(10, 180, len(rows)) * 60).astype("int64") * SECOND, r_t)
        ok = (u[rows] < p) & (delay[rows] < 14) & (r_t < PERIOD_END) & (np.isnat(churn[pid]) | (r_t < churn[pid]))
        responded[rows] = np.where(ok, r_t, NAT)
        buy = rows[ok & (rng.random(len(rows)) < cfg["purchase_after_response"])]
        if len(buy) == 0:
            continue
        b_pid = sends["pid"].to_numpy()[buy]
        b_t = _at_hours(rng, _floor_day(responded[buy]) + rng.integers(cfg["purchase_days"][0], cfg["purchase_days"][1] + 1, len(buy)) * DAY, 8, 20)
        act = _floor_day(b_t) + rng.integers(1, 4, len(buy)) * DAY
        fine = (act < PERIOD_END - DAY) & (np.isnat(churn[b_pid]) | (act < churn[b_pid]))
        o = pd.DataFrame({"pid": b_pid[fine], "time": b_t[fine], "activation": act[fine]})
        opened = leadins[["pid", "time"]].assign(time=lambda d: d["time"] - DAY)
        o = o[~_first_in_window(o, opened, by="pid", on="time", right_on="time", window=32 * DAY)["_hit"].to_numpy()]
        bought.append(o)
        a_day = o["activation"].to_numpy().astype("datetime64[D]").astype("int64") + cfg["occasions"]["activation_completed"]["days_after"]
        w_pid, w_start, length = windows["activation_completed"]
        windows["activation_completed"] = (np.concatenate([w_pid, o["pid"].to_numpy()]),
                                           np.concatenate([w_start, a_day - length]), length)
    o = pd.concat(bought, ignore_index=True) if bought else pd.DataFrame({"pid": [], "time": [], "activation": []})
    o = o.astype({"pid": "int64", "time": "datetime64[s]", "activation": "datetime64[s]"}).sort_values(["time", "pid"], kind="stable")
    m = len(o)
    bb = persons["broadband"].to_numpy()[o["pid"].to_numpy()]
    product, fee = _products_for(rng, bb.astype(int), persons["business"].to_numpy()[o["pid"].to_numpy()], np.ones(m, bool))
    options = pd.DataFrame({
        "pid": o["pid"].to_numpy(), "leadin": -1, "time": o["time"].to_numpy(), "type": 2, "broadband": bb.astype(bool),
        "product": product, "fee": fee, "amount": 12 * fee * np.maximum(persons["lines"].to_numpy()[o["pid"].to_numpy()] // 5, 1),
        "channel": "Web", "status": 0, "storno_day": NAT, "storno_reason": None, "prov_start": NAT,
        "activation": o["activation"].to_numpy(), "first_invoice": NAT, "long": False, "duration": -1, "new_customer": False,
    })
    sends = sends.assign(responded=responded, occasion=occasion, prior=prior)
    blast_day = campaigns["sent"].to_numpy().astype("datetime64[D]").astype("int64")
    blasts = campaigns.assign(name=np.array([x[0] for x in CAMPAIGNS])[campaigns["campaign"].to_numpy()],
                              occasion=_timed_on(campaigns["pid"].to_numpy(), blast_day, windows),
                              prior=_prior_sends(all_pid, all_t, cfg["fatigue_window_days"])[:len(campaigns)])
    return sends, options, blasts


def _append_with_duplicates(rng: np.random.Generator, frame: pd.DataFrame, extra: pd.DataFrame, dups: int) -> tuple[pd.DataFrame, int]:
    """`frame` (holding `dups` duplicates) with `extra` appended, some of its rows repeated right
    after their original so that the file keeps ~1% duplicates in all."""
    k = int(round(PLANTED["messiness"]["duplicate_share"] * (len(frame) - dups + len(extra)))) - dups
    k = min(max(k, 0), len(extra))
    dup = np.sort(rng.choice(len(extra), k, replace=False))
    order = np.sort(np.concatenate([np.arange(len(extra)), dup]), kind="stable")
    return pd.concat([frame, extra.iloc[order]], ignore_index=True), dups + k


def _program_file(sends: pd.DataFrame, knr: pa.Array, first_id: int) -> pd.DataFrame:
    s = sends.sort_values(["sent", "pid"], kind="stable").reset_index(drop=True)
    return pd.DataFrame({
        "Versand-ID": _ids("V", np.arange(first_id, first_id + len(s)), 9), "Kampagne": s["name"].to_numpy(),
        "Kundennummer": _take(knr, s["pid"].to_numpy()), "Versand am": _strftime(s["sent"].to_numpy(), "%d.%m.%Y %H:%M"),
        "Reaktion am": _strftime(s["responded"].to_numpy(), "%d.%m.%Y %H:%M"),
    })


# =========================================================================================
# test accounts
# =========================================================================================
def _test_accounts(rng: np.random.Generator, n_persons: int, count: int) -> dict[str, pd.DataFrame]:
    """Test accounts (pid n_persons..): CRM rows and a few contacts, orders, surveys, sessions."""
    pid = n_persons + np.arange(count)
    since = _uniform_days(rng, np.full(count, np.datetime64("2023-06-01", "s")), np.full(count, np.datetime64("2025-06-01", "s")))
    persons = pd.DataFrame({"pid": pid, "since": since})
    c_pid = np.repeat(pid, 2)
    c_time = _at_hours(rng, _uniform_days(rng, np.maximum(np.repeat(since, 2), PERIOD_START), np.full(2 * count, PERIOD_END)), 9, 17)
    contacts = pd.DataFrame({"pid": c_pid, "time": c_time, "reason": _pick(rng, ["general_inquiry", "technical_support"], [0.5, 0.5], 2 * count),
                             "direction": np.int8(0), "channel": "Telefon", "origin": "test", "wait": 30.0, "handle": 2.0,
                             "resolved": np.int8(1), "note": "Testanruf"})
    day = _uniform_days(rng, np.maximum(since, PERIOD_START), np.full(count, PERIOD_END - 20 * DAY))
    orders = pd.DataFrame({"pid": pid, "time": _at_hours(rng, day, 9, 17), "type": 0, "broadband": False,
                           "product": "Mobil M", "fee": 2999, "amount": 24 * 2999, "channel": "Web", "status": 0,
                           "storno_day": NAT, "storno_reason": None, "prov_start": day + DAY, "activation": day + 2 * DAY,
                           "first_invoice": day + 12 * DAY, "long": False, "duration": 2, "new_customer": False})
    r_pid = pid[rng.random(count) < 0.5]
    responses = pd.DataFrame({"pid": r_pid, "time": _at_hours(rng, _uniform_days(rng, np.full(len(r_pid), PERIOD_START), np.full(len(r_pid), PERIOD_END)), 9, 17),
                              "survey": "Transaktion", "touchpoint": "Servicekontakt", "nps": 10.0, "csat": 5.0, "ces": 7.0,
                              "comment": None})
    return {"persons": persons, "contacts": contacts, "orders": orders, "responses": responses}


# =========================================================================================
# export files
# =========================================================================================
def _with_duplicates(rng: np.random.Generator, df: pd.DataFrame, eligible: np.ndarray | None = None) -> tuple[pd.DataFrame, int]:
    """Repeat ~1% of the (eligible) rows exactly, each right after its original."""
    share = PLANTED["messiness"]["duplicate_share"]
    pool = np.flatnonzero(np.ones(len(df), bool) if eligible is None else eligible)
    k = int(round(share * len(df)))
    dup = np.sort(rng.choice(pool, min(k, len(pool)), replace=False))
    order = np.sort(np.concatenate([np.arange(len(df)), dup]), kind="stable")
    return df.iloc[order].reset_index(drop=True), len(dup)


def _customer_numbers(rng: np.random.Generator, n: int, n_test: int) -> pa.Array:
    """Kundennummer per pid (persons 0..n-1 in lead-date order, then test accounts)."""
    total = n + n_test
    test_slots = np.sort(rng.choice(total, n_test, replace=False))
    rest = np.setdiff1d(np.arange(total), test_slots)
    numbers = np.concatenate([rest, test_slots]) + 1
    return pa.array(_ids("K", numbers, 7))


def _crm(rng: np.random.Generator, persons: pd.DataFrame, tests: pd.DataFrame, knr: pa.Array) -> pd.DataFrame:
    n, t = len(persons), len(tests)
    total = n + t
    female = rng.random(total) < 0.5
    first_m, first_f, last = np.array(FIRST_M, object), np.array(FIRST_F, object), np.array(LAST, object)
    i_m, i_f, i_l = rng.integers(0, len(first_m), total), rng.integers(0, len(first_f), total), rng.integers(0, len(last), total)
    vorname = np.where(female, first_f[i_f], first_m[i_m])
    nachname = last[i_l]
    tv = np.where(female, _translit(FIRST_F)[i_f], _translit(FIRST_M)[i_m])
    tl = _translit(LAST)[i_l]
    anrede = np.where(rng.random(total) < 0.03, None, np.where(female, "Frau", "Herr"))
    business = np.concatenate([persons["business"].to_numpy(), np.zeros(t, bool)])
    prefix = np.array(FIRM_PREFIX, object)[rng.integers(0, len(FIRM_PREFIX), total)]
    firma = pd.Series(prefix) + " " + pd.Series(nachname) + " " + pd.Series(_pick(rng, FIRM_SUFFIX, np.ones(len(FIRM_SUFFIX)), total))
    dom = pd.Series(_pick(rng, MAIL_DOMAINS, [0.25, 0.2, 0.15, 0.2, 0.08, 0.04, 0.04, 0.04], total))
    fmt = rng.choice(4, total, p=[0.45, 0.2, 0.2, 0.15])
    sv, sl = pd.Series(tv), pd.Series(tl)
    local = pd.Series(np.select([fmt == 0, fmt == 1, fmt == 2],
                                [sv + "." + sl, sv.str[0] + "." + sl, sl + _digits(rng, total, 2)], sv + "_" + sl))
    slug = sl + "-" + pd.Series(_translit(FIRM_PREFIX)[rng.integers(0, len(FIRM_PREFIX), total)]) + ".de"
    email = np.where(business, sv + "." + sl + "@" + slug, local + "@" + dom)
    email = np.where(rng.random(total) < 0.06, None, email)
    mp = pd.Series(_pick(rng, MOBILE_PREFIX, np.ones(len(MOBILE_PREFIX)), total))
    ac = pd.Series(_pick(rng, AREA_CODES, np.ones(len(AREA_CODES)), total))
    d7, d6 = _digits(rng, total, 7), _digits(rng, total, 6)
    pf = rng.choice(5, total, p=[0.35, 0.2, 0.2, 0.1, 0.15])
    phone = np.select([pf == 0, pf == 1, pf == 2, pf == 3], ["0" + mp + " " + d7, "+49 " + mp + " " + d7, "0" + ac + " " + d7,
                                                             "(0" + ac + ") " + d6], "0" + ac + "/" + d6)
    phone = np.where(rng.random(total) < 0.08, None, phone)
    # test accounts: surname 'Test' or an @example.test address
    ti = np.arange(n, total)
    by_name = np.arange(t) % 2 == 0
    vorname[ti] = np.where(by_name, "Max", _pick(rng, ["QA", "Erika", "Test"], [1, 1, 1], t))
    nachname[ti] = np.where(by_name, "Test", "Mustermann")
    email[ti] = np.where(by_name, pd.Series(np.arange(t)).astype(str).radd("test").add("@telko-nord.de"),
                         pd.Series(np.arange(t)).astype(str).radd("qa.team+").add("@example.test"))
    phone[ti] = "040 5550100"
    consent = np.concatenate([persons["consent"].to_numpy(), np.zeros(t, int)])
    channels = _pick(rng, ["E-Mail", "E-Mail, Telefon", "Telefon", "E-Mail, SMS", "Brief", "E-Mail, Telefon, SMS"],
                     [0.35, 0.25, 0.1, 0.15, 0.05, 0.1], total)
    signup = np.concatenate([persons["signup"].to_numpy(), tests["since"].to_numpy()])
    lead = np.concatenate([persons["lead_date"].to_numpy(), tests["since"].to_numpy()])
    churn = np.concatenate([persons["churn"].to_numpy(), np.full(t, NAT)])
    fee = np.concatenate([persons["fee"].to_numpy(), np.full(t, 2999)])
    frame = pd.DataFrame({
        "Kundennummer": pd.Series(knr, dtype="str"), "Anrede": anrede, "Vorname": vorname, "Nachname": nachname,
        "Firma": np.where(business, firma, None), "E-Mail": email, "Telefon": phone,
        "Kundentyp": np.where(business, "Geschäftskunde", "Privatkunde"),
        "Region": np.concatenate([REGIONS[persons["region"].to_numpy()], np.full(t, "Nord")]),
        "Erfasst am": _strftime(lead, "%d.%m.%Y"), "Kunde seit": _strftime(signup, "%d.%m.%Y"),
        "Kündigungsdatum": _strftime(churn, "%d.%m.%Y"),
        "Einwilligung Kontakt": np.array(["ja", "nein", None], object)[consent],
        "Einwilligungskanäle": np.where(consent == 0, channels, None),
        "Monatlicher Umsatz": _euro(fee),
    })
    return frame.sort_values("Kundennummer", kind="stable").reset_index(drop=True)


def _contact_files(rng: np.random.Generator, contacts: pd.DataFrame, knr: pa.Array, n: int) -> tuple[dict, int]:
    """One workbook per quarter (sheet 'Kontakte'); Zeitpunkt as Excel datetime, some as text."""
    c = contacts.sort_values(["time", "pid"], kind="stable").reset_index(drop=True)
    k = len(c)
    as_text = rng.random(k) < PLANTED["messiness"]["contact_time_as_text_share"]
    ts = pd.Series(c["time"].to_numpy().astype("datetime64[ns]")).astype(object)
    zeit = ts.where(~as_text, _strftime(c["time"].to_numpy(), "%d.%m.%Y %H:%M").astype(object))
    frame = pd.DataFrame({
        "Kontakt-ID": _ids("KT-", np.arange(1, k + 1), 8), "Kundennummer": _take(knr, c["pid"].to_numpy()),
        "Zeitpunkt": zeit, "Kanal": c["channel"].astype("str"),
        "Richtung": np.where(c["direction"].to_numpy() == 0, "eingehend", "ausgehend"),
        "Anliegen": c["reason"].map(REASON_LABELS).astype("str"), "Wartezeit (Sek.)": c["wait"].to_numpy(),
        "Bearbeitungszeit (Min.)": c["handle"].to_numpy(),
        "Gelöst": np.array(["nein", "ja", None], object)[c["resolved"].to_numpy().astype(int)],
        "Notiz": c["note"].astype("str"),
    })
    quarter = pd.PeriodIndex(c["time"], freq="Q")
    files, dups = {}, 0
    for q in sorted(quarter.unique()):
        name = f"kontakte_{q.year}_Q{q.quarter}.xlsx"
        rows = (quarter == q)
        part, d = _with_duplicates(rng, frame[rows].reset_index(drop=True), c["pid"].to_numpy()[rows] < n)
        files[name], dups = part, dups + d
    return files, dups


SIGNATURES = {"de": [("Gruß ", ", Kundennummer ", ""), ("Viele Grüße, ", " (Kd.-Nr. ", ")"), ("MfG ", ", Kundennr. ", "")],
              "en": [("Regards, ", " (", ")"), ("Sincerely, ", ", customer number ", ""), ("Cheers, ", " - ", "")]}


def _signed_comments(r: pd.DataFrame, crm: pd.DataFrame, knr: pa.Array, n: int) -> pd.DataFrame:
    """The comments with personal data (has_pii) of real customers end with the writer's own
    name and customer number from the CRM, as real verbatims sometimes do: 'Gruß Anna Lange,
    Kundennummer K0000123', 'Regards, Anna Lange (K0000123)'; three wordings per language
    (`SIGNATURES`, by person number: no random draws)."""
    pid = r["pid"].to_numpy()
    sign = r["has_pii"].fillna(False).astype(bool).to_numpy() & (pid < n) & r["lang"].isin(list(SIGNATURES)).to_numpy()
    ref = pd.Series(_take(knr, np.where(sign, pid, 0)).to_numpy(), index=r.index)
    who = crm.drop_duplicates("Kundennummer").set_index("Kundennummer").reindex(ref.to_numpy())
    name = pd.Series((who["Vorname"] + " " + who["Nachname"]).to_numpy(), index=r.index)
    parts = [np.select([r["lang"].eq(lang).to_numpy() & (pid % 3 == i) for lang in SIGNATURES for i in range(3)],
                       [SIGNATURES[lang][i][k] for lang in SIGNATURES for i in range(3)], "") for k in range(3)]
    signature = parts[0] + name + parts[1] + ref + parts[2]
    return r.assign(comment=r["comment"].where(~sign, r["comment"].astype(object) + " " + signature))


def _survey_file(rng: np.random.Generator, r: pd.DataFrame, knr: pa.Array, n: int) -> tuple[pd.DataFrame, dict]:
    """Survey answers with mixed date formats and out-of-range / code values."""
    mess = PLANTED["messiness"]
    k = len(r)
    nps = r["nps"].to_numpy().copy()
    u = rng.random(k)
    real = r["pid"].to_numpy() < n
    code99 = real & ~np.isnan(nps) & (u < mess["nps_code_99_share"])
    eleven = real & ~np.isnan(nps) & (u >= mess["nps_code_99_share"]) & (u < mess["nps_code_99_share"] + mess["nps_11_share"])
    nps = np.where(code99, 99, np.where(eleven, 11, nps))
    csat = r["csat"].to_numpy().copy()
    bad_csat = real & ~np.isnan(csat) & (rng.random(k) < mess["csat_out_of_range_share"])
    csat = np.where(bad_csat, _pick(rng, [0, 6], [0.5, 0.5], k), csat)
    ces = r["ces"].to_numpy().copy()
    bad_ces = real & ~np.isnan(ces) & (rng.random(k) < mess["ces_out_of_range_share"])
    ces = np.where(bad_ces, _pick(rng, [0, 8], [0.5, 0.5], k), ces)
    fmt = rng.choice(3, k, p=[0.5, 0.35, 0.15])
    t = r["time"].to_numpy()
    eingang = np.select([fmt == 0, fmt == 1], [_strftime(t, "%Y-%m-%d %H:%M"), _strftime(t, "%d.%m.%Y %H:%M")],
                        _strftime(t, "%d.%m.%Y"))
    anonymous = real & (rng.random(k) < 0.01)

    def as_text(x):
        return pd.Series(x).astype("Int64").astype("str").where(~np.isnan(x))

    frame = pd.DataFrame({
        "Antwort-ID": r["response_id"].to_numpy(), "Kundennummer": _take(knr, r["pid"].to_numpy()).where(~anonymous),
        "Eingang": eingang, "Umfrage": r["survey"].to_numpy(), "Kontaktpunkt": r["touchpoint"].to_numpy(),
        "Weiterempfehlung": as_text(nps), "Zufriedenheit": as_text(csat), "Aufwand": as_text(ces),
        "Kommentar": r["comment"].to_numpy(),
    })
    counts = {"nps_99_keine_angabe": int(code99.sum()), "nps_11": int(eleven.sum()),
              "csat_out_of_range": int(bad_csat.sum()), "ces_out_of_range": int(bad_ces.sum()),
              "anonymous_responses": int(anonymous.sum())}
    return frame, counts


def _order_file(o: pd.DataFrame, knr: pa.Array) -> pd.DataFrame:
    return pd.DataFrame({
        "Bestellnummer": o["order_id"].to_numpy(), "Kundennummer": _take(knr, o["pid"].to_numpy()),
        "Bestelldatum": _strftime(o["time"].to_numpy(), "%d.%m.%Y %H:%M"),
        "Auftragsart": _take(ORDER_TYPES, o["type"].to_numpy()), "Produkt": o["product"].astype("str"),
        "Produktkategorie": _take(CATEGORIES, _category(o)), "Vertriebskanal": o["channel"].astype("str"),
        "Betrag": _euro(o["amount"].to_numpy()), "Status": _take(ORDER_STATUS, o["status"].to_numpy()),
        "Stornogrund": o["storno_reason"].astype("str"), "Stornodatum": _strftime(o["storno_day"].to_numpy(), "%d.%m.%Y"),
        "Bereitstellung Start": _strftime(o["prov_start"].to_numpy(), "%d.%m.%Y"),
        "Aktivierung": _strftime(o["activation"].to_numpy(), "%d.%m.%Y"),
        "Erste Rechnung": _strftime(o["first_invoice"].to_numpy(), "%d.%m.%Y"),
    })


def _campaign_file(c: pd.DataFrame, knr: pa.Array) -> pd.DataFrame:
    c = c.sort_values(["sent", "pid"], kind="stable").reset_index(drop=True)
    return pd.DataFrame({
        "Versand-ID": _ids("V", np.arange(1, len(c) + 1), 9), "Kampagne": np.array([x[0] for x in CAMPAIGNS])[c["campaign"].to_numpy()],
        "Kundennummer": _take(knr, c["pid"].to_numpy()), "Versand am": _strftime(c["sent"].to_numpy(), "%d.%m.%Y %H:%M"),
        "Reaktion am": _strftime(c["responded"].to_numpy(), "%d.%m.%Y %H:%M"),
    })


def _web_files(rng: np.random.Generator, sessions: pd.DataFrame, visitors: pd.DataFrame, knr: pa.Array) -> tuple[pd.DataFrame, pd.DataFrame]:
    nv = len(visitors)
    step = max((9 * 10 ** 9 - 1) // max(nv, 1), 1)
    number = 10 ** 9 + rng.permutation(nv).astype("int64") * step + rng.integers(0, step, nv)
    first_seen = rng.integers(1672531200, 1767225600, nv)
    vid = pc.binary_join_element_wise(pc.cast(pa.array(number), pa.string()), pc.cast(pa.array(first_seen), pa.string()), ".")
    utc = (pd.Series(sessions["time"].to_numpy()).dt.tz_localize(LOCAL_TZ).dt.tz_convert("UTC")
           .dt.tz_localize(None).to_numpy().astype("datetime64[s]"))
    ns = len(sessions)
    sid = 10 ** 9 + rng.permutation(ns).astype("int64") * max((9 * 10 ** 9) // max(ns, 1), 1)
    web = pd.DataFrame({
        "session_id": pd.Series(pc.cast(pa.array(sid), pa.string()), dtype="str"), "visitor_id": _take(vid, sessions["vis"].to_numpy()),
        "started_at": _strftime(utc, "%Y-%m-%dT%H:%M:%SZ"), "page_type": _take(PAGE_TYPES, sessions["page"].to_numpy()),
        "device": _take(DEVICES, sessions["device"].to_numpy()),
    })
    used = np.zeros(nv, bool)
    used[sessions["vis"].to_numpy()] = True
    v = visitors[used & (visitors["pid"].to_numpy() >= 0)]
    logins = (pd.DataFrame({"visitor_id": _take(vid, v["vis"].to_numpy()), "crm_id": _take(knr, v["pid"].to_numpy())})
              .sort_values(["crm_id", "visitor_id"], kind="stable").reset_index(drop=True))
    return web, logins


# =========================================================================================
# ground truth: the realised size of every planted effect, measured on the truth data
# =========================================================================================
def _rate(mask: np.ndarray) -> float:
    mask = np.asarray(mask)
    return float(mask.mean()) if len(mask) else float("nan")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _realised(persons, leadins, orders, contacts, responses, affected, valid_nps, valid_ces) -> dict:
    """Measure each planted effect on the generated truth (real customers only, valid scores)."""
    end = PERIOD_END
    r = responses.assign(nps_ok=np.where(valid_nps, responses["nps"], np.nan), ces_ok=np.where(valid_ces, responses["ces"], np.nan))
    churn = persons["churn"].to_numpy()
    churn_or_end = np.where(pd.isna(churn), end, churn)
    signup = persons["signup"].to_numpy()
    active_from = np.where(pd.isna(signup), end, np.maximum(signup, PERIOD_START))
    out: dict = {}

    # 1. unclear invoice -> NPS
    x = r["x_invoice"].to_numpy()
    out["invoice_unclear_nps"] = {
        "description": "NPS of responses with an inbound invoice_unclear contact in the 60 days before vs all other responses",
        "planted": PLANTED["invoice_unclear"],
        "realised": {"nps_exposed": _nps(r["nps_ok"][x]), "nps_unexposed": _nps(r["nps_ok"][~x]),
                     "nps_diff": _nps(r["nps_ok"][x]) - _nps(r["nps_ok"][~x]),
                     "n_exposed": int(r["nps_ok"][x].notna().sum()), "n_unexposed": int(r["nps_ok"][~x].notna().sum())}}

    # 2. long provisioning -> detractors and churn
    thr = PLANTED["provisioning"]["threshold_days"]
    bb = orders[(orders["type"] == 0) & orders["broadband"] & orders["activation"].notna()]
    long = (bb["activation"] - _floor_day_series(bb["time"])).dt.days.to_numpy() > thr
    win = PLANTED["provisioning"]["window_after_activation_days"] * DAY
    short_orders = bb[~long].assign(_end=lambda d: d["activation"] + pd.Timedelta(win))
    f_short = _first_in_window(r, short_orders, by="pid", on="time", right_on="time", window=400 * DAY, keep=("_end",))
    x_short = f_short["_hit"].to_numpy() & (r["time"].to_numpy() <= f_short["_end"].to_numpy()) & ~r["x_long_provisioning"].to_numpy()
    x_long = r["x_long_provisioning"].to_numpy()
    act = bb["activation"].to_numpy()
    ch = churn[bb["pid"].to_numpy()]
    churned_any = ~pd.isna(ch)
    within = churned_any & (ch - act <= win)
    mature = act <= end - win
    det = r["nps_ok"] <= 6
    out["provisioning_delay"] = {
        "description": (f"broadband new contracts with order -> activation > {thr} days: NPS/detractors of responses from order "
                        "to 180 days after activation, and churn of the customer (long vs short provisioning)"),
        "planted": PLANTED["provisioning"],
        "realised": {"long_share_of_broadband_orders": _rate(long), "broadband_orders": int(len(bb)),
                     "nps_long": _nps(r["nps_ok"][x_long]), "nps_short": _nps(r["nps_ok"][x_short]),
                     "nps_diff": _nps(r["nps_ok"][x_long]) - _nps(r["nps_ok"][x_short]),
                     "detractor_share_long": float(det[x_long & r["nps_ok"].notna()].mean()),
                     "detractor_share_short": float(det[x_short & r["nps_ok"].notna()].mean()),
                     "n_responses_long": int(r["nps_ok"][x_long].notna().sum()), "n_responses_short": int(r["nps_ok"][x_short].notna().sum()),
                     "churn_180d_long": _rate(within[long & mature]), "churn_180d_short": _rate(within[~long & mature]),
                     "churn_180d_ratio": _ratio(_rate(within[long & mature]), _rate(within[~long & mature])),
                     "n_orders_mature_long": int((long & mature).sum()), "n_orders_mature_short": int((~long & mature).sum()),
                     "churn_by_end_long": _rate(churned_any[long]), "churn_by_end_short": _rate(churned_any[~long]),
                     "churn_by_end_ratio": _ratio(_rate(churned_any[long]), _rate(churned_any[~long]))}}

    # 3. long hotline waits -> hotline complaints, lower CES
    hot = PLANTED["hotline_wait"]
    phone = contacts[contacts["wait"].notna() & (contacts["origin"] != "hotline_followup")]
    comp = contacts[contacts["reason"] == "complaint_hotline"]
    f = _first_in_window(phone.rename(columns={"time": "t"}), comp, by="pid", on="t", right_on="time",
                         window=(hot["followup_days"][1] + 1) * DAY, direction="forward")
    lw = phone["wait"].to_numpy() > hot["threshold_seconds"]
    fhit = f["_hit"].to_numpy()
    ces_long = r["ces_ok"][r["x_long_wait"]]
    ces_short = r["ces_ok"][r["x_phone"] & ~r["x_long_wait"]]
    out["hotline_wait"] = {
        "description": ("inbound phone contacts waiting > 300 s: share followed by a complaint_hotline contact within 11 days; "
                        "mean CES of responses with such a wait in the 14 days before vs with only shorter waits"),
        "planted": hot,
        "realised": {"long_wait_share": _rate(lw), "phone_contacts": int(len(phone)),
                     "complaint_rate_long_wait": _rate(fhit[lw]), "complaint_rate_short_wait": _rate(fhit[~lw]),
                     "complaint_ratio": _ratio(_rate(fhit[lw]), _rate(fhit[~lw])),
                     "ces_long_wait": float(ces_long.mean()), "ces_short_wait": float(ces_short.mean()),
                     "ces_diff": float(ces_long.mean() - ces_short.mean()),
                     "n_ces_long": int(ces_long.notna().sum()), "n_ces_short": int(ces_short.notna().sum())}}

    # 4. unresolved service-failure complaint -> churn within 90 days
    cfg = PLANTED["unresolved_service_failure"]
    w = cfg["window_days"] * DAY
    sf = contacts[(contacts["reason"] == "complaint_service_failure") & (contacts["time"] <= end - w)]

    def churn90(frame):
        first = frame.sort_values("time", kind="stable").drop_duplicates("pid")
        c = churn[first["pid"].to_numpy()]
        return _rate(~pd.isna(c) & (c - first["time"].to_numpy() <= w)), int(len(first))

    unres, n_unres = churn90(sf[sf["resolved"] == 0])
    res, n_res = churn90(sf[sf["resolved"] == 1])
    grid = np.arange(np.datetime64("2024-01-01", "M"), np.datetime64("2025-10", "M")).astype("datetime64[D]").astype("datetime64[s]")
    act_n = churned_n = 0
    for d in grid:
        a = (active_from <= d) & (churn_or_end > d)
        act_n += int(a.sum())
        churned_n += int((a & ~pd.isna(churn) & (churn - d <= w)).sum())
    base = churned_n / act_n if act_n else float("nan")
    out["unresolved_service_failure_churn"] = {
        "description": ("customers whose service-failure complaint was not resolved (Gelöst = nein): churn within 90 days after "
                        "the first such complaint, vs resolved complaints and vs all active customers (monthly index dates)"),
        "planted": cfg,
        "realised": {"churn_90d_unresolved": unres, "n_unresolved": n_unres, "churn_90d_resolved": res, "n_resolved": n_res,
                     "churn_90d_all_customers": base, "ratio_vs_all_customers": _ratio(unres, base),
                     "ratio_vs_resolved": _ratio(unres, res)}}

    # 5. proactive outage notification
    xo, xn = r["x_outage"].to_numpy(), r["x_outage_notified"].to_numpy()
    out["outage_notification"] = {
        "description": ("responses within 60 days after a regional outage that hit the customer: NPS with a proactive notice "
                        "(Störungsinfo) vs without; and notified vs all responses without a notice"),
        "planted": PLANTED["outage"],
        "realised": {"nps_affected_notified": _nps(r["nps_ok"][xn]), "nps_affected_not_notified": _nps(r["nps_ok"][xo & ~xn]),
                     "nps_diff_vs_affected_without_notice": _nps(r["nps_ok"][xn]) - _nps(r["nps_ok"][xo & ~xn]),
                     "nps_not_notified_all": _nps(r["nps_ok"][~xn]),
                     "nps_diff_vs_all_not_notified": _nps(r["nps_ok"][xn]) - _nps(r["nps_ok"][~xn]),
                     "n_notified": int(r["nps_ok"][xn].notna().sum()), "n_affected_not_notified": int(r["nps_ok"][xo & ~xn].notna().sum()),
                     "customers_affected": int(affected["pid"].nunique()), "affected_instances": int(len(affected))}}

    # 6. billing complaint spike: u-chart of complaints per 1,000 active customers
    bc = contacts[contacts["reason"] == "complaint_billing"]
    months = np.arange(np.datetime64("2024-01", "M"), np.datetime64("2026-01", "M"))
    m_of = bc["time"].to_numpy().astype("datetime64[M]")
    rows = []
    for month in months:
        m0, m1 = month.astype("datetime64[D]").astype("datetime64[s]"), (month + 1).astype("datetime64[D]").astype("datetime64[s]")
        rows.append({"month": str(month), "complaints": int((m_of == month).sum()),
                     "active_customers": int(((active_from < m1) & (churn_or_end > m0)).sum())})
    u = pd.DataFrame(rows)
    ubar = u["complaints"].sum() / u["active_customers"].sum() * 1000
    sigma = 3 * np.sqrt(ubar / (u["active_customers"] / 1000))
    u = u.assign(rate_per_1000=u["complaints"] / u["active_customers"] * 1000, ucl=ubar + sigma, lcl=np.maximum(ubar - sigma, 0))
    u = u.assign(out_of_control=(u["rate_per_1000"] > u["ucl"]) | (u["rate_per_1000"] < u["lcl"]))
    out["billing_complaint_spike"] = {
        "description": ("complaint_billing contacts per 1,000 active customers per month (active = customer at some time in the "
                        "month); u-chart with 3-sigma limits around the overall rate"),
        "planted": PLANTED["billing_complaints"],
        "realised": {"center_rate_per_1000": float(ubar), "outlier_months": u.loc[u["out_of_control"], "month"].tolist(),
                     "spike_month_rate": float(u.loc[u["month"] == PLANTED["billing_complaints"]["spike_month"], "rate_per_1000"].iloc[0]),
                     "other_months_mean_rate": float(u.loc[u["month"] != PLANTED["billing_complaints"]["spike_month"], "rate_per_1000"].mean()),
                     "monthly": u.round(4).to_dict(orient="records")}}

    # 7. repeat customers convert far more often than new leads
    cw = PLANTED["conversion"]["window_days"] * DAY
    li = leadins[leadins["time"] <= end - cw]
    conv = np.isin(li.index.to_numpy(), orders["leadin"].to_numpy())
    ex = li["existing_at"].to_numpy()
    new_leads = ~persons["existing"].to_numpy()
    out["repeat_customer_conversion"] = {
        "description": ("quotes (web quote_request) and consultations (Beratung contacts): share followed by an order of the "
                        "same customer within 30 days, for existing customers vs new leads"),
        "planted": PLANTED["conversion"],
        "realised": {"conversion_existing_customers": _rate(conv[ex]), "conversion_new_leads": _rate(conv[~ex]),
                     "n_existing": int(ex.sum()), "n_new_leads": int((~ex).sum()),
                     "lead_conversion_rate": _rate(~pd.isna(signup[new_leads])), "new_leads": int(new_leads.sum())}}

    # 8. invoice theme in detractor comments
    cm = r[r["comment"].notna() & r["nps_ok"].notna()]
    has_inv = cm["themes"].astype("str").str.contains(r"(?:^|\|)invoice(?:\||$)", regex=True).to_numpy(dtype=bool)
    g = np.where(cm["nps_ok"] <= 6, "detractor", np.where(cm["nps_ok"] <= 8, "passive", "promoter"))
    out["invoice_theme_in_detractor_comments"] = {
        "description": "share of comments labelled with the invoice theme, by NPS group of the same response",
        "planted": PLANTED["invoice_theme"],
        "realised": {f"share_{grp}": _rate(has_inv[g == grp]) for grp in ("detractor", "passive", "promoter")}
        | {f"n_{grp}": int((g == grp).sum()) for grp in ("detractor", "passive", "promoter")}}

    # 9. add-on purchases: repeat buying that a BG/NBD + Gamma-Gamma model can be fitted to
    done = orders[orders["status"] == 0]
    add = done[done["type"] == ADDON]
    add_days = add.assign(_day=_floor_day_series(add["time"])).drop_duplicates(["pid", "_day"]).groupby("pid").size()
    all_days = done.assign(_day=_floor_day_series(done["time"])).drop_duplicates(["pid", "_day"]).groupby("pid").size()
    active = (active_from < churn_or_end) & ~pd.isna(signup)
    out["repeat_purchases"] = {
        "description": ("add-on purchases (Auftragsart Zusatzkauf, Produktkategorie Zusatzprodukte) of active customers, "
                        "drawn from BG/NBD (rates per day) + Gamma-Gamma (euros); purchase days are local dates of "
                        "completed orders"),
        "planted": PLANTED["repeat_purchases"],
        "realised": {"addon_orders": int(len(add)), "addon_revenue_eur": float(add["amount"].sum() / 100),
                     "mean_addon_spend_eur": float(add["amount"].mean() / 100) if len(add) else float("nan"),
                     "active_customers": int(active.sum()), "customers_with_addons": int(len(add_days)),
                     "addons_per_active_customer": _ratio(len(add), int(active.sum())),
                     "customers_with_2plus_addon_days": int((add_days >= 2).sum()),
                     "customers_with_2plus_purchase_days": int((all_days >= 2).sum()),
                     "customers_with_3plus_purchase_days": int((all_days >= 3).sum()),
                     "addon_orders_by_product": add["product"].value_counts().sort_index().to_dict()}}
    return out


def _program_realised(program: pd.DataFrame, blasts: pd.DataFrame, options: pd.DataFrame, orders: pd.DataFrame,
                      persons: pd.DataFrame) -> dict:
    """The occasion programme's effects measured on the truth: response of occasion-timed against
    other sends, by earlier sends in the fatigue window, the options booked, and the disversion rate
    per month on contract and option orders (add-on purchases left out: this effect never depends
    on them)."""
    cfg = PLANTED["occasion_program"]

    def timed_vs_other(frame):
        timed = (frame["occasion"] != "").to_numpy()
        r = frame["responded"].notna().to_numpy()
        a, b = _rate(r[timed]), _rate(r[~timed])
        return {"rate_occasion_timed": a, "rate_other": b, "ratio": _ratio(a, b),
                "n_occasion_timed": int(timed.sum()), "n_other": int((~timed).sum())}

    both = pd.concat([program[["occasion", "responded", "prior"]], blasts[["occasion", "responded", "prior"]]], ignore_index=True)
    r = program["responded"].notna()
    band = np.minimum(program["prior"].to_numpy(), 3)
    bands = {(str(b) if b < 3 else "3+"): {"sends": int((band == b).sum()), "rate": _rate(r.to_numpy()[band == b])}
             for b in range(4)}
    # disversion: regular = >= 2 completed contract or option orders in the 365 days up to the month's end
    done = pd.concat([orders.loc[orders["status"] == 0, ["pid", "time"]], options[["pid", "time"]]], ignore_index=True)
    day = done["time"].to_numpy().astype("datetime64[D]")
    signup, churn = persons["signup"].to_numpy(), persons["churn"].to_numpy()
    monthly = {}
    if len(done):
        first, last = day.min(), day.max()
        for end in pd.date_range(pd.Timestamp(first) + pd.Timedelta(days=365), pd.Timestamp(last), freq="ME"):
            e = np.datetime64(end.date(), "D")
            active = ~np.isnat(signup) & (signup.astype("datetime64[D]") <= e) & (np.isnat(churn) | (churn.astype("datetime64[D]") > e))
            inside = (day > e - 365) & (day <= e)
            count = np.bincount(done["pid"].to_numpy()[inside], minlength=len(persons))
            monthly[end.strftime("%Y-%m")] = {"customers": int(active.sum()), "regular": int((active & (count >= 2)).sum()),
                                              "rate": _rate((count >= 2)[active])}
    months = list(monthly)
    return {
        "occasion_timed_response": {
            "description": ("response rate of sends whose local day falls in the lead time of one of the customer's occasions "
                            "(config/taxonomy.yml occasions: anniversary 14 days, end of the 24-month term 60, a week after "
                            "the first invoice or an activation, 7-14 days after a resolved complaint, 3 days before the name "
                            "day) against other sends: the Kundenbrief sends, and all sends (the 16 campaigns respond "
                            "without regard to occasions)"),
            "planted": {k: cfg[k] for k in ("campaign", "reach", "base_response", "occasion_response_ratio", "occasions")},
            "realised": {"kundenbrief": timed_vs_other(program), "all_sends": timed_vs_other(both),
                         "kundenbrief_by_occasion": {occ: {"sends": int((program["occasion"] == occ).sum()),
                                                           "rate": _rate(r.to_numpy()[(program["occasion"] == occ).to_numpy()])}
                                                     for occ in cfg["occasions"]}}},
        "contact_fatigue": {
            "description": "response rate of the Kundenbrief sends by the sends of any campaign to the customer in the 90 days before",
            "planted": {k: cfg[k] for k in ("fatigue_ratio_per_send", "fatigue_window_days")},
            "realised": {"kundenbrief_by_prior_sends": bands}},
        "disversion": {
            "description": ("options (Zusatzoption) booked by Kundenbrief responders; disversion rate per month: active customers "
                            "with >= 2 completed contract or option orders (add-on purchases not counted) in the 365 days up to "
                            "the month's end, over all active customers"),
            "planted": {k: cfg[k] for k in ("purchase_after_response", "purchase_days")},
            "realised": {"options_booked": int(len(options)), "kundenbrief_responders": int(r.sum()),
                         "options_per_responder": _ratio(len(options), int(r.sum())), "monthly": monthly,
                         "first_month": months[0] if months else None, "last_month": months[-1] if months else None,
                         "change_points": (100 * (monthly[months[-1]]["rate"] - monthly[months[0]]["rate"])) if months else None}},
    }


def _floor_day_series(s: pd.Series) -> pd.Series:
    return s.dt.floor("D")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if np.isnan(obj) else round(float(obj), 6)
    return obj


# =========================================================================================
# public API
# =========================================================================================
FILE_FORMATS = {  # file name prefix -> (separator, encoding) of the CSV exports
    "crm_kunden": (";", "latin-1"), "bestellungen": (";", "utf-8"), "kampagnen_versand": (";", "utf-8"),
    "umfrage_antworten": (",", "utf-8"), "web_sessions": (",", "utf-8"), "web_logins": (",", "utf-8"),
}


def generate(customers: int = 20000, seed: int = 7) -> DemoCompany:
    """Generate the demo company: `customers` CRM people (customers and leads) plus ~0.3% test
    accounts, two years of history. Same seed, same company.

    Returns a DemoCompany with `files` (file name -> DataFrame as written), `ground_truth`,
    `comment_labels` (response_id, language, themes, sentiment, has_pii) and `truth` (clean
    tables the effects were measured on).
    """
    if int(customers) < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    n = int(customers)
    rng = np.random.default_rng(seed)
    persons = _persons(rng, n)
    persons, leadins, orders = _sales(rng, persons)
    outages, affected = _outages(rng, persons)
    contacts = _contacts_before_churn(rng, persons, leadins, orders, affected)
    persons = _churn(rng, persons, orders, contacts)
    contacts, orders = _before(contacts, persons), _before(orders, persons)
    leadins, affected = _before(leadins, persons), _before(affected, persons, "start")
    contacts = _contacts_after_churn(rng, persons, contacts)
    responses = _comments(rng, _responses(rng, persons, contacts, orders, affected))
    campaigns = _campaigns(rng, persons)
    sessions, visitors = _web(rng, persons, leadins, orders, campaigns)

    # test accounts with some activity of their own
    n_test = max(1, int(round(PLANTED["messiness"]["test_account_share"] * n)))
    tests = _test_accounts(rng, n, n_test)
    t_vis = len(visitors) + np.arange(n_test)
    visitors = pd.concat([visitors, pd.DataFrame({"vis": t_vis, "pid": tests["persons"]["pid"].to_numpy()})], ignore_index=True)
    t_days = _uniform_days(rng, np.full(2 * n_test, PERIOD_START), np.full(2 * n_test, PERIOD_END))
    sessions = (pd.concat([sessions, pd.DataFrame({"vis": np.repeat(t_vis, 2), "time": _at_hours(rng, t_days, 9, 17),
                                                   "page": np.tile([0, 7], n_test), "device": 0})], ignore_index=True)
                .sort_values("time", kind="stable").reset_index(drop=True))
    knr = _customer_numbers(rng, n, n_test)
    # add-on purchases from a stream of their own: every other draw (and file) stays as without them
    addon_rng = np.random.default_rng([seed, 1])
    addons = _addons(addon_rng, persons, orders, leadins)

    all_orders = (pd.concat([orders, addons, tests["orders"]], ignore_index=True).sort_values(["time", "pid"], kind="stable")
                  .reset_index(drop=True))
    all_orders = all_orders.assign(order_id=_ids("B", np.arange(1, len(all_orders) + 1) + 10 ** 7, 8).to_numpy())
    all_resp = (pd.concat([responses, tests["responses"]], ignore_index=True).sort_values(["time", "pid"], kind="stable")
                .reset_index(drop=True))
    all_resp = all_resp.assign(response_id=_ids("U", np.arange(1, len(all_resp) + 1), 8).to_numpy())
    all_contacts = pd.concat([contacts, tests["contacts"]], ignore_index=True)

    files: dict[str, pd.DataFrame] = {}
    dups: dict[str, int] = {}
    crm = _crm(rng, persons, tests["persons"], knr)
    files["crm_kunden.csv"], dups["crm_kunden.csv"] = _with_duplicates(rng, crm, ~crm["Kundennummer"].isin(knr.slice(n).to_pylist()).to_numpy())
    contact_files, dups["kontakte_*.xlsx"] = _contact_files(rng, all_contacts, knr, n)
    files.update(contact_files)
    real_web = visitors["pid"].to_numpy()[sessions["vis"].to_numpy()] < n     # test accounts' sessions not duplicated
    web, files["web_logins.csv"] = _web_files(rng, sessions, visitors, knr)
    del sessions                                                              # the largest frames: keep one copy
    files["web_sessions.csv"], dups["web_sessions.csv"] = _with_duplicates(rng, web, real_web)
    del web
    all_resp = _signed_comments(all_resp, crm, knr, n)
    survey, score_counts = _survey_file(rng, all_resp, knr, n)
    files["umfrage_antworten.csv"], dups["umfrage_antworten.csv"] = _with_duplicates(rng, survey, all_resp["pid"].to_numpy() < n)
    order_file = _order_file(all_orders, knr)
    files["bestellungen.csv"], dups["bestellungen.csv"] = _with_duplicates(addon_rng, order_file, all_orders["pid"].to_numpy() < n)
    camp = _campaign_file(campaigns, knr)
    files["kampagnen_versand.csv"], dups["kampagnen_versand.csv"] = _with_duplicates(rng, camp)
    # the occasion programme from a stream of its own: its sends and the options they sell are appended to
    # the campaign and order files; every other row, file and earlier effect stays as without it
    program_rng = np.random.default_rng([seed, 2])
    first_name = (crm.drop_duplicates("Kundennummer").set_index("Kundennummer")["Vorname"]
                  .reindex(_take(knr, np.arange(n)).to_numpy()).to_numpy())
    program, options, blasts = _occasion_program(program_rng, persons, orders, contacts, leadins, campaigns, first_name)
    files["kampagnen_versand.csv"], dups["kampagnen_versand.csv"] = _append_with_duplicates(
        program_rng, files["kampagnen_versand.csv"], _program_file(program, knr, len(camp) + 1), dups["kampagnen_versand.csv"])
    options = options.assign(order_id=_ids("B", np.arange(len(all_orders) + 1, len(all_orders) + 1 + len(options)) + 10 ** 7, 8).to_numpy())
    files["bestellungen.csv"], dups["bestellungen.csv"] = _append_with_duplicates(
        program_rng, files["bestellungen.csv"], _order_file(options, knr), dups["bestellungen.csv"])

    # truth (real people only) and the realised effects
    real_resp = all_resp["pid"].to_numpy() < n
    flags = ["x_invoice", "x_long_provisioning", "x_outage", "x_outage_notified", "x_long_wait", "x_phone", "has_pii"]
    resp_truth = all_resp[real_resp].reset_index(drop=True).astype({c: bool for c in flags})
    w_nps = pd.to_numeric(survey["Weiterempfehlung"], errors="coerce").to_numpy()[real_resp]
    w_ces = pd.to_numeric(survey["Aufwand"], errors="coerce").to_numpy()[real_resp]
    valid_nps = (w_nps >= 0) & (w_nps <= 10)
    valid_ces = (w_ces >= 1) & (w_ces <= 7)
    orders_truth = all_orders[all_orders["pid"].to_numpy() < n].reset_index(drop=True)
    effects = _realised(persons, leadins, orders_truth, contacts, resp_truth, affected, valid_nps, valid_ces)
    effects.update(_program_realised(program, blasts, options, orders, persons))
    labels = (resp_truth.loc[resp_truth["comment"].notna(), ["response_id", "language", "themes", "sentiment", "has_pii"]]
              .reset_index(drop=True))
    truth = _truth_tables(persons, contacts, pd.concat([orders_truth, options], ignore_index=True), resp_truth, campaigns, knr)
    truth["campaigns"] = pd.concat([truth["campaigns"], pd.DataFrame({
        schema.CAMPAIGN_ID: program["name"], schema.CUSTOMER_REF: _take(knr, program["pid"].to_numpy()),
        schema.SENT_AT: program["sent"], schema.RESPONDED_AT: program["responded"]})], ignore_index=True)
    ground_truth = _summary(n, seed, persons, files, dups, knr, n_test, tests, score_counts, effects, outages, contacts, resp_truth)
    return DemoCompany(files=files, ground_truth=_jsonable(ground_truth), comment_labels=labels, truth=truth)


def _truth_tables(persons, contacts, orders, responses, campaigns, knr) -> dict[str, pd.DataFrame]:
    """Clean canonical-like truth tables (customer_ref = Kundennummer; no duplicates, no test
    accounts, true scores) for checking analyses against."""
    cust = pd.DataFrame({schema.CUSTOMER_REF: _take(knr, np.arange(len(persons))), schema.SEGMENT: np.where(persons["business"], "business", "private"),
                         schema.REGION: REGIONS[persons["region"].to_numpy()], schema.LEAD_DATE: persons["lead_date"],
                         schema.SIGNUP_DATE: persons["signup"], schema.CHURN_DATE: persons["churn"],
                         schema.CONTACT_CONSENT: persons["consent"].to_numpy() == 0})
    con = pd.DataFrame({schema.CUSTOMER_REF: _take(knr, contacts["pid"].to_numpy()), schema.TIMESTAMP: contacts["time"],
                        schema.CONTACT_REASON: contacts["reason"], schema.DIRECTION: np.where(contacts["direction"] == 0, "inbound", "outbound"),
                        schema.WAIT_SECONDS: contacts["wait"], schema.RESOLVED: contacts["resolved"].map({1: True, 0: False}),
                        "origin": contacts["origin"]})
    ords = pd.DataFrame({schema.ORDER_ID: orders["order_id"], schema.CUSTOMER_REF: _take(knr, orders["pid"].to_numpy()),
                         schema.TIMESTAMP: orders["time"], "order_type": _take(ORDER_TYPES, orders["type"].to_numpy()),
                         schema.CATEGORY: _take(CATEGORIES, _category(orders)),
                         schema.STATUS: np.array(schema.ORDER_STATUSES)[orders["status"].to_numpy()],
                         "activation": orders["activation"], "long_provisioning": orders["long"]})
    fb = pd.DataFrame({schema.RESPONSE_ID: responses["response_id"], schema.CUSTOMER_REF: _take(knr, responses["pid"].to_numpy()),
                       schema.TIMESTAMP: responses["time"], schema.SURVEY: np.where(responses["survey"] == "Beziehung", "relationship", "transactional"),
                       schema.NPS: responses["nps"], schema.CSAT: responses["csat"], schema.CES: responses["ces"],
                       **{c: responses[c] for c in ("x_invoice", "x_long_provisioning", "x_outage", "x_outage_notified", "x_long_wait")}})
    camp = pd.DataFrame({schema.CAMPAIGN_ID: np.array([x[0] for x in CAMPAIGNS])[campaigns["campaign"].to_numpy()],
                         schema.CUSTOMER_REF: _take(knr, campaigns["pid"].to_numpy()), schema.SENT_AT: campaigns["sent"],
                         schema.RESPONDED_AT: campaigns["responded"]})
    return {"customers": cust, "contacts": con, "orders": ords, "feedback": fb, "campaigns": camp}


def _staged_rows(files: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Rows that config/sources/demo.yml stages from these files (duplicates included)."""
    crm, orders, camp = files["crm_kunden.csv"], files["bestellungen.csv"], files["kampagnen_versand.csv"]
    known = pc.is_in(pa.array(files["web_sessions.csv"]["visitor_id"]), value_set=pa.array(files["web_logins.csv"]["visitor_id"]))
    known = known.to_numpy(zero_copy_only=False)
    contacts = sum(len(df) for name, df in files.items() if name.startswith("kontakte_"))
    not_renewal = orders["Auftragsart"] != "Verlängerung"
    milestones = sum(int(orders.loc[not_renewal, col].notna().sum())
                     for col in ("Bestelldatum", "Bereitstellung Start", "Aktivierung", "Erste Rechnung"))
    events = (contacts + int(known.sum()) + milestones + int((orders["Status"] == "storniert").sum())
              + int((~not_renewal).sum()) + len(camp) + int(camp["Reaktion am"].notna().sum())
              + int(crm["Kündigungsdatum"].notna().sum()))
    return {"customers": len(crm), "events": events, "feedback": len(files["umfrage_antworten.csv"]),
            "orders": len(orders), "campaigns": len(camp)}


def _summary(n, seed, persons, files, dups, knr, n_test, tests, score_counts, effects, outages, contacts, responses) -> dict:
    crm = files["crm_kunden.csv"]
    test_refs = set(knr.slice(n).to_pylist())
    real_crm = crm[~crm["Kundennummer"].isin(test_refs)].drop_duplicates()
    signup = persons["signup"]
    contact_files = {k: v for k, v in files.items() if k.startswith("kontakte_")}
    return {
        "company": "Telko Nord GmbH (synthetic)",
        "generator": "cxlib.demo.generate",
        "seed": seed,
        "period": {"start": "2024-01-01", "end": "2025-12-31"},
        "customers_parameter": n,
        "people": {"crm_people": n, "customers": int(signup.notna().sum()), "leads": int(signup.isna().sum()),
                   "existing_customers_at_start": int(persons["existing"].sum()),
                   "new_customers": int((signup.notna() & ~persons["existing"]).sum()),
                   "churned": int(persons["churn"].notna().sum()),
                   "business": int(persons["business"].sum())},
        "rows": {name: int(len(df)) for name, df in files.items()},
        "rows_contacts_total": int(sum(len(df) for df in contact_files.values())),
        "duplicate_rows": dups,
        "duplicate_rows_total": int(sum(dups.values())),
        "test_accounts": {"crm_rows": n_test, "customer_refs": sorted(test_refs),
                          "contacts": int(len(tests["contacts"])), "orders": int(len(tests["orders"])),
                          "survey_responses": int(len(tests["responses"])), "web_sessions": 2 * n_test,
                          "rule": "Nachname == 'Test' or E-Mail ends with '@example.test'"},
        "scores_out_of_range": score_counts,
        "consent": {"ja": int((real_crm["Einwilligung Kontakt"] == "ja").sum()),
                    "nein": int((real_crm["Einwilligung Kontakt"] == "nein").sum()),
                    "missing": int(real_crm["Einwilligung Kontakt"].isna().sum())},
        "contacts_by_reason": contacts["reason"].value_counts().sort_index().to_dict(),
        "responses": {"total": int(len(responses)), "relationship": int((responses["survey"] == "Beziehung").sum()),
                      "transactional": int((responses["survey"] == "Transaktion").sum()),
                      "with_comment": int(responses["comment"].notna().sum())},
        "outages": [{"region": str(REGIONS[o.region]), "start": str(o.start), "end": str(o.end)} for o in outages.itertuples()],
        "staged_rows_demo_mapping": _staged_rows(files),
        "planted": PLANTED,
        "effects": effects,
    }


def has_exports(raw_dir: str | Path) -> bool:
    """True if `raw_dir` holds any data file (csv/xlsx/parquet), ignoring .gitkeep, hidden
    entries and the `_truth/` folder."""
    root = Path(raw_dir)
    if not root.is_dir():
        return False
    for path in root.rglob("*"):
        rel = path.relative_to(root).parts
        if rel[0] == TRUTH_DIR or any(part.startswith(".") for part in rel):
            continue
        if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
            return True
    return False


def write_exports(company: DemoCompany, out_dir: str | Path) -> list[Path]:
    """Write every export of `company` to `out_dir` and its truth to `out_dir/_truth/`
    (ground_truth.json, comment_labels.csv). Files are written into a temporary folder
    inside `out_dir` and renamed into place, so a failure leaves no half-written file.
    Returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-", dir=out))
    try:
        for name, frame in company.files.items():
            if name.endswith(".xlsx"):
                _write_xlsx(frame, tmp / name, sheet="Kontakte")
            else:
                sep, encoding = FILE_FORMATS[name.rsplit(".", 1)[0]]
                _write_csv(frame, tmp / name, sep=sep, encoding=encoding)
        (tmp / TRUTH_DIR).mkdir()
        (tmp / TRUTH_DIR / schema.GROUND_TRUTH_FILE).write_text(
            json.dumps(company.ground_truth, ensure_ascii=False, indent=2), encoding="utf-8")
        _write_csv(company.comment_labels, tmp / TRUTH_DIR / schema.COMMENT_LABELS_FILE, sep=",", encoding="utf-8")
        written = []
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            target = out / path.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_csv(frame: pd.DataFrame, path: Path, *, sep: str, encoding: str) -> None:
    if encoding.lower().replace("-", "").replace("_", "") in ("utf8",):
        table = pa.Table.from_pandas(frame.astype({c: "str" for c in frame.columns if frame[c].dtype != "str"}),
                                     preserve_index=False)
        pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(delimiter=sep, quoting_style="needed"))
    else:
        frame.to_csv(path, sep=sep, encoding=encoding, index=False)


_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
        '</Relationships>'),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<numFmts count="1"><numFmt numFmtId="164" formatCode="dd.mm.yyyy hh:mm"/></numFmts>'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '</styleSheet>'),
}


def _xml_text(values: pa.Array) -> pa.Array:
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        values = pc.replace_substring(values, char, entity)
    return values


def _write_xlsx(frame: pd.DataFrame, path: Path, *, sheet: str) -> None:
    """A one-sheet workbook (SpreadsheetML, inline strings, as xlsxwriter's constant-memory
    mode writes it), built column-wise with pyarrow string functions: Zeitpunkt as an Excel
    date-time number (text where the export has text), numbers as numbers, blanks empty.
    Cell-by-cell writers (xlsxwriter) take ~80 us a row, minutes at 1M customers."""
    import zipfile

    n = len(frame)
    letters = [chr(ord("A") + j) for j in range(len(frame.columns))]
    row_no = pc.cast(pa.array(np.arange(2, n + 2)), pa.string())
    cells = []
    for letter, name in zip(letters, frame.columns):
        col = frame[name]
        ref = pc.binary_join_element_wise(pa.scalar(f'<c r="{letter}'), row_no, "")
        if name == "Zeitpunkt":
            is_text = col.astype("str").str.match(r"\d\d\.\d\d\.").fillna(False).to_numpy(dtype=bool)
            stamps = pd.to_datetime(col.where(~is_text), errors="coerce")
            serial = ((stamps - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)).to_numpy(dtype=float)
            num = pc.binary_join_element_wise(ref, pa.scalar('" s="1"><v>'), pc.cast(pa.array(serial, from_pandas=True), pa.string()),
                                              pa.scalar("</v></c>"), "")
            txt = col.where(is_text).astype("str")
            txt = pc.binary_join_element_wise(ref, pa.scalar('" t="inlineStr"><is><t>'), _xml_text(pa.array(txt, pa.string(), from_pandas=True)),
                                              pa.scalar("</t></is></c>"), "")
            cells.append(pc.if_else(pa.array(is_text), txt, num))
        elif pd.api.types.is_numeric_dtype(col):
            cells.append(pc.binary_join_element_wise(ref, pa.scalar('"><v>'), pc.cast(pa.array(col.to_numpy(dtype=float), from_pandas=True), pa.string()),
                                                     pa.scalar("</v></c>"), ""))
        else:
            text = _xml_text(pa.array(col.astype("str"), pa.string(), from_pandas=True))
            cells.append(pc.binary_join_element_wise(ref, pa.scalar('" t="inlineStr"><is><t>'), text, pa.scalar("</t></is></c>"), ""))
    header = "".join(f'<c r="{letter}1" t="inlineStr"><is><t>{name}</t></is></c>' for letter, name in zip(letters, frame.columns))
    rows = pc.binary_join_element_wise(pa.scalar('<row r="'), row_no, pa.scalar('">'), *cells, pa.scalar("</row>"), "",
                                       null_handling="skip") if n else pa.array([], pa.string())
    body = "".join(rows.to_pylist()) if n else ""
    last = f"{letters[-1]}{n + 1}"
    sheet_xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                 f'<dimension ref="A1:{last}"/><sheetData><row r="1">{header}</row>{body}</sheetData></worksheet>')
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for part, xml in _XLSX_PARTS.items():
            zf.writestr(part, xml.replace("{sheet}", sheet))
        zf.writestr("xl/worksheets/sheet1.xml", sheet_xml)
