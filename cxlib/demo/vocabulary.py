"""What the demo company is made of: the planted effects' parameters (PLANTED, written to
ground_truth["planted"]) and the vocabulary of its exports (regions, products, reasons,
campaigns, pages, names and name days, firms, mail domains, phone prefixes)."""

from __future__ import annotations

import numpy as np

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
