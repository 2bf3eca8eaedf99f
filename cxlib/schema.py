"""Canonical tables: the contract between sources and analysis.

Every column name used by cxlib comes from here. `TABLES` describes each canonical table
(columns, dtype, required, key); the constants below are the names modules import. An
*optional* table (`labels`: comments labelled by hand) exists only when the source mapping
fills it; readers get it through `catalog.read_optional`.

Between mapping and cleaning the tables are *staged*: tables with customers carry
`customer_ref` (the CRM customer number) instead of the pseudonym `customer_id`, and every
table carries the lineage columns `_file` and `_row` (file name and 1-based row number in that
file, header = row 1) so that every message can name the offending rows. Cleaning swaps
`customer_ref` for `customer_id` and drops the lineage columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# --- column names -----------------------------------------------------------------------
CUSTOMER_ID = "customer_id"          # keyed pseudonym (processed data, reports)
CUSTOMER_REF = "customer_ref"        # CRM customer number (staged data, re-identification only)
SEGMENT = "segment"
REGION = "region"
LEAD_DATE = "lead_date"
SIGNUP_DATE = "signup_date"
CHURN_DATE = "churn_date"
CONTACT_CONSENT = "contact_consent"
CONSENT_CHANNELS = "consent_channels"

EVENT_ID = "event_id"
TIMESTAMP = "timestamp"
CHANNEL = "channel"
TOUCHPOINT = "touchpoint"
STAGE = "stage"
CONTACT_REASON = "contact_reason"
DIRECTION = "direction"
WAIT_SECONDS = "wait_seconds"
HANDLE_SECONDS = "handle_seconds"
RESOLVED = "resolved"
TEXT = "text"

RESPONSE_ID = "response_id"
SURVEY = "survey"
NPS = "nps"
CSAT = "csat"
CES = "ces"
CSAT_MAX = "csat_max"                # top of the answer's CSAT scale (missing: 5); CSAT = share in the top two points
CSAT_MIN = "csat_min"                # staged feedback only: bottom of the CSAT scale (see csat_scale)
COMMENT = "comment"
LANGUAGE = "language"

SENTIMENT = "sentiment"              # labels: a comment's hand label, negative / neutral / positive
THEMES = "themes"                    # labels: theme codes, ";"-separated ("" = labelled with no theme)

ORDER_ID = "order_id"
PRODUCT = "product"
CATEGORY = "category"
REVENUE = "revenue"
STATUS = "status"

CAMPAIGN_ID = "campaign_id"
SENT_AT = "sent_at"
RESPONDED_AT = "responded_at"

# lineage and flags of staged tables
SOURCE_FILE = "_file"
SOURCE_ROW = "_row"
STAGED_ORDER = "_order"     # sorts staged rows in table order when the ingest works in parts (ingest.ENTRY_ROWS)
IS_TEST = "is_test"

# personal data (staged customers only; split off into the re-identification table)
PII_NAME = "pii_name"
PII_EMAIL = "pii_email"
PII_PHONE = "pii_phone"
PII_COLUMNS = (PII_NAME, PII_EMAIL, PII_PHONE)

# --- codes that are not taxonomy entries ------------------------------------------------
DIRECTIONS = ("inbound", "outbound")
ORDER_STATUSES = ("completed", "cancelled", "pending")
SENTIMENTS = ("negative", "neutral", "positive")
SCORE_RANGES = {NPS: (0, 10), CSAT: (1, 5), CES: (1, 7)}
# ISO 639-1 code -> names a `language` column may hold instead (folded: lower case, umlauts as ae/oe/ue)
LANGUAGE_NAMES = {
    "de": ("german", "deutsch", "allemand", "tedesco", "aleman", "ger", "deu"),
    "en": ("english", "englisch", "anglais", "inglese", "ingles", "eng"),
    "fr": ("french", "franzoesisch", "francais", "français", "francese", "frances", "fre", "fra"),
    "it": ("italian", "italienisch", "italien", "italiano", "ita"),
    "es": ("spanish", "spanisch", "espagnol", "spagnolo", "espanol", "español", "spa"),
    "nl": ("dutch", "niederlaendisch", "neerlandais", "nederlands", "nld", "dut"),
    "pt": ("portuguese", "portugiesisch", "portugais", "portugues", "português", "por"),
    "pl": ("polish", "polnisch", "polonais", "polski", "pol"),
    "tr": ("turkish", "tuerkisch", "turc", "tuerkce", "türkçe", "tur"),
}
# code sets named by Column.codes that are not taxonomy sections
CODE_SETS = {"directions": DIRECTIONS, "order_statuses": ORDER_STATUSES, "sentiments": SENTIMENTS}
# further spellings (folded) of the codes of CODE_SETS, beside the codes themselves
CODE_ALIASES = {"sentiments": {"neg": "negative", "negativ": "negative", "neu": "neutral", "pos": "positive",
                               "positiv": "positive"}}
LIST_SEPARATOR = ";"                 # between the codes of a list column (Column.separator) in canonical data
# earliest plausible timestamp (validation gate and cleaning); the latest is "now + 1 day"
MIN_DATE = "2000-01-01"
# Labelled samples beside raw exports (the demo writes its truth there; never read as a source)
TRUTH_DIR = "_truth"
COMMENT_LABELS_FILE = "comment_labels.csv"      # response_id, language, themes, sentiment, has_pii
GROUND_TRUTH_FILE = "ground_truth.json"

# pandas dtype of each Column.dtype: staged and processed tables carry exactly these
PANDAS_DTYPES = {
    "string": "str",              # pandas 3 default text dtype (missing = NaN); round-trips through Parquet
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
    "datetime": "datetime64[us, UTC]",
    "date": "datetime64[us]",
}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str              # "string" | "float" | "int" | "bool" | "datetime" | "date"
    required: bool = False  # must be present and non-null
    codes: str | None = None  # taxonomy section (or a CODE_SETS name) the values come from
    separator: str | None = None  # a list of codes in one cell, joined by this ("" = an empty list)


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]    # columns that identify a row
    columns: tuple[Column, ...]
    description: str = ""
    customer_column: str | None = CUSTOMER_ID
    optional: bool = False  # present in staged and processed data only when the source mapping fills it

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


TABLES: dict[str, Table] = {
    "customers": Table(
        "customers", (CUSTOMER_ID,),
        (
            Column(CUSTOMER_ID, "string", True),
            Column(SEGMENT, "string", codes="segments"),
            Column(REGION, "string"),
            Column(LEAD_DATE, "datetime"),
            Column(SIGNUP_DATE, "datetime"),
            Column(CHURN_DATE, "datetime"),
            Column(CONTACT_CONSENT, "bool", True),
            Column(CONSENT_CHANNELS, "string"),
        ),
        "one row per customer or lead (signup_date empty = lead that never became a customer)",
    ),
    "events": Table(
        "events", (EVENT_ID,),
        (
            Column(EVENT_ID, "string", True),
            Column(CUSTOMER_ID, "string"),             # a complaint log may not name its customers
            Column(TIMESTAMP, "datetime", True),
            Column(CHANNEL, "string", True, codes="channels"),
            Column(TOUCHPOINT, "string", True, codes="touchpoints"),
            Column(STAGE, "string", codes="stages"),
            Column(CONTACT_REASON, "string", codes="contact_reasons"),
            Column(DIRECTION, "string", codes="directions"),
            Column(WAIT_SECONDS, "float"),
            Column(HANDLE_SECONDS, "float"),
            Column(RESOLVED, "bool"),
            Column(TEXT, "string"),
        ),
        "one row per touchpoint or interaction",
    ),
    "feedback": Table(
        "feedback", (RESPONSE_ID,),
        (
            Column(RESPONSE_ID, "string", True),
            Column(CUSTOMER_ID, "string"),
            Column(TIMESTAMP, "datetime"),             # a ratings table may have no dates
            Column(SURVEY, "string", codes="surveys"),
            Column(TOUCHPOINT, "string", codes="touchpoints"),
            Column(NPS, "float"),
            Column(CSAT, "float"),
            Column(CSAT_MAX, "float"),
            Column(CES, "float"),
            Column(COMMENT, "string"),
            Column(LANGUAGE, "string"),
        ),
        "one row per survey response or verbatim",
    ),
    "orders": Table(
        "orders", (ORDER_ID,),
        (
            Column(ORDER_ID, "string", True),
            Column(CUSTOMER_ID, "string", True),
            Column(TIMESTAMP, "datetime", True),
            Column(PRODUCT, "string"),
            Column(CATEGORY, "string"),
            Column(REVENUE, "float"),
            Column(STATUS, "string", codes="order_statuses"),
        ),
        "one row per order or transaction",
    ),
    "campaigns": Table(
        "campaigns", (CAMPAIGN_ID, CUSTOMER_ID),
        (
            Column(CAMPAIGN_ID, "string", True),
            Column(CUSTOMER_ID, "string", True),
            Column(SENT_AT, "datetime", True),
            Column(RESPONDED_AT, "datetime"),
        ),
        "one row per contact sent in a campaign",
    ),
    "labels": Table(
        "labels", (RESPONSE_ID,),
        (
            Column(RESPONSE_ID, "string", True),       # the labelled feedback row (feedback.response_id)
            Column(SENTIMENT, "string", codes="sentiments"),
            Column(THEMES, "string", codes="themes", separator=LIST_SEPARATOR),
        ),
        "one row per comment labelled by hand: its sentiment and/or its themes (missing = not labelled for it)",
        customer_column=None, optional=True,
    ),
}

REIDENTIFICATION = "reidentification"   # restricted table: customer_id, customer_ref, pii_*


def staged_columns(table: str) -> list[str]:
    """Column names of a staged table: canonical names with customer_ref for customer_id."""
    return [CUSTOMER_REF if c == CUSTOMER_ID else c for c in TABLES[table].names]


def csat_scale(feedback: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Row-wise (low, high) of each answer's CSAT scale as two float Series.

    high = `csat_max` (missing or column absent: 5); low = staged `csat_min` where given, else 1
    when csat_max is missing (the 1-5 default) and 0 otherwise (processed tables keep only the top).

        csat_scale(pd.DataFrame({"csat_max": [None, 10.0]})) -> ([1.0, 0.0], [5.0, 10.0])
    """
    index = feedback.index
    top = feedback.get(CSAT_MAX, pd.Series(float("nan"), index=index)).astype("float64")
    bottom = feedback.get(CSAT_MIN, pd.Series(float("nan"), index=index)).astype("float64")
    default_low, default_high = SCORE_RANGES[CSAT]
    return (bottom.fillna(top.isna().map({True: float(default_low), False: 0.0}).astype("float64")),
            top.fillna(float(default_high)))


# --- what an analysis section needs ------------------------------------------------------
class Missing(ValueError):
    """An analysis section lacks an input: a table, a column or an outcome the data does not hold.

    Raised by analysis functions (never for bad data: that is a SourceError or a gate failure).
    `reason` says what is missing, `enable` which canonical table or column would let the section
    run. A notebook section wrapped in `sections.section(...)` shows it as a one-line note and
    records it under `skipped` in results.json; elsewhere it raises like any error.

        raise Missing("no NPS answers", enable="feedback.nps (0-10 recommend question)")
    """

    def __init__(self, reason: str, *, enable: str = ""):
        self.reason = str(reason)
        self.enable = str(enable)
        super().__init__(f"{self.reason}" + (f" (needs {self.enable})" if self.enable else ""))


def require(condition, reason: str, *, enable: str = "") -> None:
    """Raise `Missing(reason, enable=enable)` unless `condition` is true.

        require(feedback["nps"].notna().any(), "no NPS answers", enable="feedback.nps")
    """
    if not bool(condition):
        raise Missing(reason, enable=enable)
