"""Bad input data: every message names file, column and row, and quotes no personal value.

Unit cases run `sources.map_sources`, `validate.run_gate` and `clean.clean_tables` on tiny files
written in tmp_path (each asserting what the message names and that no name, CRM number, e-mail
address or phone number of the file appears in it); the data cases of the bad-input catalogue
(tests/test_bad_input.py) run here with the demo's own mapping on a small survey export in the
demo's format, as stage 01 calls them. Three cases run stage 01 of a 300-customer
demo project (`cx run --only 01_validate_clean`) and assert exit 1, data/processed and
reports/latest unchanged, and no personal value in any output of the failed run.
"""

from __future__ import annotations

import hashlib
import io
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cxlib import clean, config, privacy, schema, sources, validate
from cxlib.sources import MappingError, SourceError, map_sources

ROOT = Path(__file__).resolve().parents[1]
TAX = config.load_taxonomy(ROOT / "config" / "taxonomy.yml")
NOW = pd.Timestamp("2025-06-01", tz="UTC")
KEY = b"bad-input-test-key-0123456789"

# the personal data of the tiny CRM below: none of it may appear in any message
PERSONAL = ["K0000001", "K0000002", "Lüdemann", "Luedemann", "Anna", "anna.luedemann@web.de", "0421 827411"]
CRM = """\
Kundennummer;Vorname;Nachname;E-Mail;Telefon;Kundentyp;Einwilligung
K0000001;Anna;Lüdemann;anna.luedemann@web.de;0421 827411;Privatkunde;ja
K0000002;Jörg;Öztürk;;;Geschäftskunde;nein
"""
CRM_MAP = """
tables:
  customers:
    - file: crm.csv
      reader: {sep: ";", encoding: ENCODING}
      columns:
        customer_ref: Kundennummer
        segment: Kundentyp
        contact_consent: {from: Einwilligung, values: {ja: true, nein: false}}
      pii: {name: [Vorname, Nachname], email: E-Mail, phone: Telefon}
"""


# --- helpers ------------------------------------------------------------------------------------------
def raw_file(tmp_path: Path, name: str, text: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / "raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else textwrap.dedent(text).encode(encoding))
    return path


def run(tmp_path: Path, mapping: str, taxonomy=TAX) -> sources.Staged:
    path = tmp_path / "map.yml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return map_sources(path, tmp_path / "raw", taxonomy)


def leaked(text: str, values=PERSONAL) -> list[str]:
    """The personal values (any case, any Unicode form) found in `text`."""
    folded = config.fold(text)
    return [v for v in values if config.fold(v) in folded]


def assert_names(message: str, *parts: str) -> None:
    missing = [p for p in parts if p not in message]
    assert not missing, f"{missing} not in: {message}"
    assert leaked(message) == [], message


# --- decoding --------------------------------------------------------------------------------------------
def test_utf8_crm_read_as_latin1_names_row_and_column_and_never_quotes_the_line(tmp_path):
    raw_file(tmp_path, "crm.csv", CRM)                                   # UTF-8
    with pytest.raises(SourceError) as info:
        run(tmp_path, CRM_MAP.replace("ENCODING", "latin-1"))
    assert_names(str(info.value), "crm.csv", "the file is UTF-8 but the mapping reads it as latin-1",
                 "row 2, column 'Nachname'", "`encoding: utf-8`")
    assert (info.value.file, info.value.column, info.value.rows) == ("crm.csv", "Nachname", [2])


def test_latin1_crm_read_as_utf8_names_byte_row_and_column(tmp_path):
    raw_file(tmp_path, "crm.csv", CRM, encoding="latin-1")
    with pytest.raises(SourceError) as info:
        run(tmp_path, CRM_MAP.replace("ENCODING", "utf-8"))
    assert_names(str(info.value), "crm.csv: not readable as utf-8: byte 0xfc in row 2, column 'Nachname'",
                 "`encoding: latin-1`")
    assert (info.value.column, info.value.rows) == ("Nachname", [2])


@pytest.mark.parametrize("codec, advice", [("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"),
                                           ("utf-16-be", "utf-16-be"), ("utf-32", "utf-32")])
def test_a_utf16_file_gets_the_utf16_advice_not_latin1(tmp_path, codec, advice):
    raw_file(tmp_path, "crm.csv", CRM.encode(codec))          # "utf-16"/"utf-32" write a byte-order mark
    for encoding in ("utf-8", "latin-1"):
        with pytest.raises(SourceError) as info:
            run(tmp_path, CRM_MAP.replace("ENCODING", encoding))
        assert_names(str(info.value), "crm.csv: the file is", f"not {encoding}; set `encoding: {advice}`")
        assert "latin-1` (or cp1252)" not in str(info.value)
    staged = run(tmp_path, CRM_MAP.replace("ENCODING", advice))     # the advice works
    assert staged.tables["customers"]["customer_ref"].tolist() == ["K0000001", "K0000002"]


def test_a_crm_without_header_row_or_with_the_wrong_sep_is_named_without_quoting_its_first_row(tmp_path):
    raw_file(tmp_path, "crm.csv", CRM.split("\n", 1)[1])                     # the header row is missing
    with pytest.raises(SourceError) as info:
        run(tmp_path, CRM_MAP.replace("ENCODING", "utf-8"))
    assert_names(str(info.value), "crm.csv: mapped column(s)", "not in the file; the first row has 7 field(s), "
                 "not shown; if the file has no header row, set `header: false` with `names: [...]`")
    raw_file(tmp_path, "crm.csv", CRM)
    with pytest.raises(SourceError) as info:
        run(tmp_path, CRM_MAP.replace("ENCODING", "utf-8").replace('sep: ";"', 'sep: ","'))
    assert_names(str(info.value), "the first row was read as one column containing ';': is `sep` right?")


# --- values in messages --------------------------------------------------------------------------------------
def test_an_unparseable_value_is_shown_scrubbed_with_column_file_and_row(tmp_path):
    raw_file(tmp_path, "orders.csv", """\
        Nr;Kunde;Datum;Betrag
        B1;K0000001;01.03.2024;49,99
        B2;K0000002;02.03.2024;anna.luedemann@web.de
    """)
    with pytest.raises(SourceError) as info:
        run(tmp_path, """
            tables:
              orders:
                - file: orders.csv
                  reader: {sep: ";", decimal: ",", thousands: "."}
                  columns: {order_id: Nr, customer_ref: Kunde, timestamp: {from: Datum, dates: ["%d.%m.%Y"]},
                            revenue: Betrag}
        """)
    assert_names(str(info.value), "orders.csv", "column 'Betrag' (-> revenue)", "Betrag='[email]' (orders.csv row 3)")


def test_a_duplicate_join_key_that_is_a_crm_number_is_masked(tmp_path):
    raw_file(tmp_path, "survey.csv", "Antwort,Kunde,NPS\nU1,K0000001,9\n")
    raw_file(tmp_path, "crm.csv", "Kundennummer,Nr\nK0000001,1\nK0000001,2\n")
    with pytest.raises(SourceError) as info:
        run(tmp_path, """
            tables:
              feedback:
                - file: survey.csv
                  columns: {response_id: Antwort, nps: NPS}
                  ignore: [Kunde]
                  join: {file: crm.csv, on: {Kunde: Kundennummer}, columns: {customer_ref: Kundennummer}}
        """)
    assert_names(str(info.value), "join file crm.csv", "['Kundennummer'] is not unique",
                 "Kundennummer=[masked] (crm.csv row 2); Kundennummer=[masked] (crm.csv row 3)")


def test_conflicting_duplicate_customers_show_pseudonyms_and_the_differing_column(tmp_path):
    raw_file(tmp_path, "crm.csv", CRM + "K0000001;Anna;Lüdemann;;;Privatkunde;nein\n")
    staged = run(tmp_path, CRM_MAP.replace("ENCODING", "utf-8"))
    with pytest.raises(clean.CleanError) as info:
        clean.clean_tables(staged.tables, TAX, KEY, now=NOW)
    pseudonym = clean.pseudonymise(pd.Series(["K0000001"]), KEY).iloc[0]
    assert_names(str(info.value), "crm.csv: duplicate key in table 'customers', column(s) ['customer_ref']",
                 "(the first pair in: contact_consent)",
                 f"customer_id='{pseudonym}' (crm.csv row 2); customer_id='{pseudonym}' (crm.csv row 4)")


def test_record_ids_built_from_a_crm_number_in_any_case_are_shown_with_the_pseudonym(tmp_path):
    raw_file(tmp_path, "crm.csv", "Kundennummer,Datum\nk0000001,01.03.2024\nk0000001,02.03.2024\n")
    staged = run(tmp_path, """
        tables:
          events:
            - file: crm.csv
              columns: {customer_ref: Kundennummer}
              constants: {channel: letter}
              melt: {id: Kundennummer, dates: ["%d.%m.%Y"], timestamps: {Datum: {touchpoint: cancellation}}}
    """)
    events = staged.tables["events"]
    assert events["event_id"].tolist() == ["k0000001-cancellation"] * 2 and set(events["customer_ref"]) == {"K0000001"}
    with pytest.raises(clean.CleanError) as info:
        clean.clean_tables({"events": events}, TAX, KEY, now=NOW)
    pseudonym = clean.pseudonymise(pd.Series(["K0000001"]), KEY).iloc[0]
    assert_names(str(info.value), "crm.csv", "column(s) ['event_id']", f"event_id='{pseudonym}-cancellation' (crm.csv row 2)")
    cleaned = clean.clean_tables({"events": events.iloc[:1]}, TAX, KEY, now=NOW)   # processed ids hold no CRM number
    assert cleaned.tables["events"]["event_id"].tolist() == [f"{pseudonym}-cancellation"]


def test_gate_examples_mask_personal_columns_and_state_their_base(tmp_path):
    staged = {"campaigns": pd.DataFrame({
        "campaign_id": ["A", "A", "B", None], "customer_ref": ["K0000001", "K0000001", "K0000002", "K0000002"],
        "sent_at": pd.to_datetime(["2024-06-01"] * 4, utc=True).as_unit("us"),
        "responded_at": pd.Series(pd.NaT, index=range(4), dtype="datetime64[us, UTC]"),
        "_file": "mail.csv", "_row": [2, 3, 4, 5]})}
    gate = validate.run_gate(staged, TAX, "raw", tolerance=0.3, now=NOW)
    key = gate.results.loc[lambda d: d["expectation"] == "expect_compound_columns_to_be_unique"].iloc[0]
    assert key["examples"] == ("campaign_id='A', customer_ref=[masked] (mail.csv row 2); "
                               "campaign_id='A', customer_ref=[masked] (mail.csv row 3)")
    required = gate.results.loc[lambda d: (d["expectation"] == "expect_column_values_to_not_be_null")
                                & (d["column"] == "campaign_id")].iloc[0]
    assert (required["unexpected_count"], required["checked"], required["examples"]) == (
        1, 4, "campaign_id=missing (mail.csv row 5)")
    assert leaked(gate.results.to_string()) == []


def test_example_row_masks_personal_columns_and_scrubs_the_rest():
    assert privacy.example_row({"Nachname": "Lüdemann"}, file="crm.csv", row=3, personal={"Nachname"}) == (
        "Nachname=[masked] (crm.csv row 3)")
    assert privacy.example_row({"pii_email": "a@b.de", "comment": "Anna", "text": None}, row=4) == (
        "pii_email=[masked], comment=[masked], text=missing (row 4)")
    assert privacy.example_row({"Datum": "Ruf an: 0421 827411, k0000001"}, file="a.csv", row=2) == (
        "Datum='Ruf an: [phone], [customer-no]' (a.csv row 2)")
    assert privacy.example_row({"Notiz": "x" * 60}) == "Notiz='" + "x" * 39 + "…'"
    assert privacy.example_row({"nps": 11.0, "t": pd.Timestamp("2024-01-01", tz="UTC")}, file="s.csv", row=9) == (
        "nps=11.0, t=2024-01-01T00:00:00+00:00 (s.csv row 9)")
    assert privacy.example_rows(pd.DataFrame({"nps": []}), ["nps"]) == ""


# --- customer numbers in several spellings ----------------------------------------------------------------
VARIANTS_MAP = """
defaults: {ids_case_sensitive: CASE}
tables:
  customers:
    - file: crm.csv
      columns: {customer_ref: Kundennummer, contact_consent: {from: Einwilligung, values: {ja: true, nein: false}}}
  feedback:
    - file: survey.csv
      columns: {response_id: Antwort, customer_ref: Kunde, nps: NPS}
"""


def test_case_and_blank_variants_of_a_customer_number_are_one_customer_and_counted(tmp_path):
    raw_file(tmp_path, "crm.csv", "Kundennummer,Einwilligung\nK0000002,nein\n\u200bk0000002,nein\nK0000003,ja\n")
    raw_file(tmp_path, "survey.csv", "Antwort,Kunde,NPS\nU1,k0000002,3\nU2,\u00a0K0000003\u00a0,9\n")
    staged = run(tmp_path, VARIANTS_MAP.replace("CASE", "false"))
    assert staged.tables["customers"]["customer_ref"].tolist() == ["K0000002", "K0000002", "K0000003"]
    assert staged.tables["feedback"]["customer_ref"].tolist() == ["K0000002", "K0000003"]
    ids = staged.log.loc[lambda d: d["step"] == "ids"]
    assert ids[["table", "rule", "rows"]].values.tolist() == [
        ["customers", "customer numbers normalised (blanks, case)", 1],
        ["feedback", "customer numbers normalised (blanks, case)", 1]]
    assert ids["detail"].tolist() == ["customer_ref=[masked] (crm.csv row 3)", "customer_ref=[masked] (survey.csv row 2)"]
    cleaned = clean.clean_tables(staged.tables, TAX, KEY, now=NOW)          # one customer: the exact duplicate goes
    assert len(cleaned.tables["customers"]) == 2
    assert cleaned.log.loc[lambda d: d["rule"] == "feedback of unknown customers kept", "rows"].tolist() == [0]


def test_case_variants_with_opposite_consent_stop_cleaning_and_case_sensitive_ids_keep_them_apart(tmp_path):
    raw_file(tmp_path, "crm.csv", "Kundennummer,Einwilligung\nK0000002,nein\nk0000002,ja\n")
    raw_file(tmp_path, "survey.csv", "Antwort,Kunde,NPS\nU1,k0000002,3\n")
    with pytest.raises(clean.CleanError) as info:
        clean.clean_tables(run(tmp_path, VARIANTS_MAP.replace("CASE", "false")).tables, TAX, KEY, now=NOW)
    assert_names(str(info.value), "crm.csv", "['customer_ref']", "(crm.csv row 2)", "(crm.csv row 3)", "contact_consent")
    staged = run(tmp_path, VARIANTS_MAP.replace("CASE", "true"))
    assert staged.tables["customers"]["customer_ref"].tolist() == ["K0000002", "k0000002"]
    assert staged.log.loc[lambda d: d["step"] == "ids"].empty
    assert len(clean.clean_tables(staged.tables, TAX, KEY, now=NOW).tables["customers"]) == 2
    with pytest.raises(MappingError, match="ids_case_sensitive must be true or false"):
        run(tmp_path, VARIANTS_MAP.replace("CASE", "nein"))


# --- revenue -----------------------------------------------------------------------------------------------
ORDERS = """\
Nr;Kunde;Datum;Betrag
B1;K0000001;01.03.2024;49,99
B2;K0000001;02.03.2024;-49,99
B3;K0000002;03.03.2024;Infinity
B4;K0000002;04.03.2024;1e12
B5;K0000002;05.03.2024;-50.000,00
B6;K0000002;06.03.2024;
"""
ORDERS_MAP = """
tables:
  orders:
    - file: orders.csv
      reader: {sep: ";", decimal: ",", thousands: "."}
      columns: {order_id: Nr, customer_ref: Kunde, timestamp: {from: Datum, dates: ["%d.%m.%Y"]}, revenue: Betrag}
"""


def test_infinite_and_absurd_revenue_stops_the_gate_refunds_pass(tmp_path):
    raw_file(tmp_path, "orders.csv", ORDERS)
    staged = run(tmp_path, ORDERS_MAP)
    assert staged.tables["orders"]["revenue"].tolist()[:5] == [49.99, -49.99, float("inf"), 1e12, -50_000.0]
    gate = validate.run_gate(clean.pseudonymise_staged(staged.tables, KEY), TAX, "raw", now=NOW)
    assert gate.failed == ["orders.revenue: expect_column_values_to_be_between"]
    with pytest.raises(validate.ValidationFailed) as info:
        gate.raise_if_failed()
    # the telecom taxonomy bounds a refund at -10,000: the -50.000,00 is caught with Infinity and 1e12
    assert_names(str(info.value), "orders.revenue", "3 of 5 non-missing values (60.0%)",
                 "revenue=inf (orders.csv row 4); revenue=1000000000000.0 (orders.csv row 5); revenue=-50000.0 (orders.csv row 6)")
    # without a revenue_bounds entry the default bounds let a large refund pass; the -49,99 passes everywhere
    loose = config.Taxonomy({k: v for k, v in TAX.data.items() if k != "revenue_bounds"})
    gate = validate.run_gate(clean.pseudonymise_staged(staged.tables, KEY), loose, "raw", now=NOW)
    row = gate.results.loc[lambda d: (d["column"] == "revenue")
                           & (d["expectation"] == "expect_column_values_to_be_between")].iloc[0]
    assert (row["unexpected_count"], row["checked"]) == (2, 5)
    assert "row 6)" not in row["examples"]
    assert "row 3)" not in row["examples"]


# --- files a glob must find ---------------------------------------------------------------------------------
GLOB_MAP = """
tables:
  customers:
    - file: kontakte_*.csv
      expect_files: [kontakte_2024_Q1.csv, kontakte_2024_Q2.csv, kontakte_2024_Q3.csv]
      columns: {customer_ref: K, contact_consent: E}
"""


def test_a_missing_member_of_a_glob_with_expected_files_stops_the_run(tmp_path):
    raw_file(tmp_path, "kontakte_2024_Q1.csv", "K,E\nK1,ja\n")
    raw_file(tmp_path, "kontakte_2024_Q3.csv", "K,E\nK3,ja\n")
    with pytest.raises(SourceError) as info:
        run(tmp_path, GLOB_MAP)
    assert_names(str(info.value), "1 of the 3 files listed under expect_files not found",
                 "kontakte_2024_Q2.csv", "'kontakte_*.csv' matched: kontakte_2024_Q1.csv, kontakte_2024_Q3.csv")
    assert info.value.file == "kontakte_2024_Q2.csv"
    raw_file(tmp_path, "kontakte_2024_Q2.csv", "K,E\nK2,ja\n")
    raw_file(tmp_path, "kontakte_2024_Q4.csv", "K,E\nK4,ja\n")                 # a new quarter is simply read
    assert run(tmp_path, GLOB_MAP).tables["customers"]["customer_ref"].tolist() == ["K1", "K2", "K3", "K4"]


def test_a_glob_that_matches_nothing_and_an_expected_file_outside_the_glob_are_errors(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E\nK1,ja\n")
    with pytest.raises(SourceError, match=r"no file matches 'kontakte_\*\.csv' in .*present: crm\.csv"):
        run(tmp_path, GLOB_MAP)
    with pytest.raises(MappingError, match=r"expect_files \['crm.csv'\] do not match `file` 'kontakte_\*.csv'"):
        run(tmp_path, GLOB_MAP.replace("kontakte_2024_Q3.csv]", "crm.csv]"))


# --- the catalogue's data cases, directly: the demo mapping on a small export in the demo's format ------------------
# (tests/test_bad_input.py runs one case of each kind through `cx run`: unparseable dates, duplicate keys)
SURVEY = "umfrage_antworten.csv"                  # response U0000000n is in file row n + 1
SURVEY_EXPORT = """\
"Antwort-ID","Kundennummer","Eingang","Umfrage","Kontaktpunkt","Weiterempfehlung","Zufriedenheit","Aufwand","Kommentar"
"U00000001","K0000001","2024-01-03 10:58","Transaktion","Servicekontakt","10","5","7",
"U00000002","K0000002","2024-01-06 15:47","Beziehung",,"8","4",,
"U00000003","K0000001","19.01.2024 13:44","Transaktion","Beratung","9","5","4","Gut beraten. Grüße, Anna Lüdemann (K0000001)"
"U00000004","K0000002","19.01.2024","Beziehung",,"6",,,
"U00000005","K0000001","2024-02-01 09:00","Beziehung",,"99",,,"keine Angabe"
"U00000006","K0000002","2024-02-03 12:30","Transaktion","Beschwerde","3","2","2","Rückruf bitte: 0421 827411"
"U00000007","K0000001","05.03.2024 08:15","Transaktion","Aktivierung","7","4","5",
"U00000008","K0000002","2024-03-09 18:02","Beziehung",,"9","5",,"anna.luedemann@web.de"
"U00000009","K0000001","12.04.2024","Beziehung",,"10",,,
"U00000010","K0000002","2024-05-20 11:11","Transaktion","Bestellung","8","4","6",
"""


def demo_mapping(tmp_path: Path, *tables: str, nps_from: str = "Weiterempfehlung") -> Path:
    """The demo's source mapping with the entries of `tables` only, as tmp_path/demo.yml; `nps_from`
    is the survey column its feedback entry maps to nps."""
    mapping = config.load_yaml(ROOT / "config" / "sources" / "demo.yml")
    mapping["tables"] = {table: mapping["tables"][table] for table in tables}
    if "feedback" in tables:
        mapping["tables"]["feedback"][0]["columns"]["nps"]["from"] = nps_from
    path = tmp_path / "demo.yml"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def survey_export(tmp_path: Path, changes: dict | None = None, drop: tuple = (), encoding: str = "utf-8") -> None:
    """SURVEY_EXPORT in tmp_path/raw with `changes` ({(response id, column): value}) made and the
    columns in `drop` removed."""
    frame = pd.read_csv(io.StringIO(SURVEY_EXPORT), dtype="str", keep_default_na=False)
    for (response, column), value in (changes or {}).items():
        assert (frame["Antwort-ID"] == response).sum() == 1
        frame.loc[frame["Antwort-ID"] == response, column] = value
    raw_file(tmp_path, SURVEY, frame.drop(columns=list(drop)).to_csv(index=False), encoding)


def survey_gate(tmp_path: Path, changes: dict) -> validate.GateResult:
    """The raw gate of stage 01 on the survey export with `changes`."""
    survey_export(tmp_path, changes)
    staged = map_sources(demo_mapping(tmp_path, "feedback"), tmp_path / "raw", TAX)
    return validate.run_gate(clean.pseudonymise_staged(staged.tables, KEY), TAX, "raw", now=NOW)


def test_the_small_survey_export_passes_mapping_gate_and_cleaning(tmp_path):
    """The starting point of the cases below: every failure there comes from its one change."""
    survey_export(tmp_path)
    staged = map_sources(demo_mapping(tmp_path, "feedback"), tmp_path / "raw", TAX)
    feedback = staged.tables["feedback"]
    assert feedback["nps"].fillna(-99).tolist() == [10, 8, 9, 6, -99, 3, 7, 9, 10, 8]        # 99: keine Angabe
    assert feedback["survey"].str[0].str.cat() == "trtrrttrrt"                  # transactional / relationship
    assert feedback["_row"].tolist() == list(range(2, 12))
    gate = validate.run_gate(clean.pseudonymise_staged(staged.tables, KEY), TAX, "raw", now=NOW)
    assert gate.failed == [] and leaked(gate.results.to_string()) == []
    cleaned = clean.clean_tables(staged.tables, TAX, KEY, now=NOW)
    assert len(cleaned.tables["feedback"]) == 10
    changed = cleaned.log.loc[lambda d: (d["table"] == "feedback") & (d["rows"] > 0), "rule"]
    assert changed.tolist() == ["customer ids pseudonymised"]


def test_a_missing_export_names_the_file_the_raw_folder_and_the_files_present(tmp_path):
    raw_file(tmp_path, "crm_kunden.csv", CRM)
    with pytest.raises(SourceError) as info:
        map_sources(demo_mapping(tmp_path, "feedback"), tmp_path / "raw", TAX)
    assert_names(str(info.value), "demo.yml: tables.feedback[1] (file 'umfrage_antworten.csv')",
                 f"no file matches 'umfrage_antworten.csv' in {tmp_path / 'raw'}; present: crm_kunden.csv")
    assert (type(info.value), info.value.file) == (SourceError, SURVEY)


def test_an_empty_export_is_named_with_its_size(tmp_path):
    raw_file(tmp_path, "bestellungen.csv", b"")
    with pytest.raises(SourceError) as info:
        map_sources(demo_mapping(tmp_path, "orders"), tmp_path / "raw", TAX)
    assert_names(str(info.value), "demo.yml: tables.orders[1] (file 'bestellungen.csv'): "
                                  "bestellungen.csv: the file is empty (0 bytes)")
    assert (type(info.value), info.value.file) == (SourceError, "bestellungen.csv")


def test_a_mapped_column_missing_from_the_export_is_named_with_the_columns_present(tmp_path):
    survey_export(tmp_path, drop=("Eingang",))
    with pytest.raises(SourceError) as info:
        map_sources(demo_mapping(tmp_path, "feedback"), tmp_path / "raw", TAX)
    assert_names(str(info.value), "demo.yml: tables.feedback[1] (file 'umfrage_antworten.csv')",
                 "umfrage_antworten.csv: mapped column(s) ['Eingang'] not in the file; columns present: ['Antwort-ID', "
                 "'Kundennummer', 'Umfrage', 'Kontaktpunkt', 'Weiterempfehlung', 'Zufriedenheit', 'Aufwand', 'Kommentar']")
    assert (type(info.value), info.value.file, info.value.column, info.value.rows) == (SourceError, SURVEY, "Eingang", [1])


def test_a_mapping_naming_a_column_the_export_lacks_names_mapping_entry_and_column(tmp_path):
    survey_export(tmp_path)
    with pytest.raises(SourceError) as info:
        map_sources(demo_mapping(tmp_path, "feedback", nps_from="Weiterempfehlungsbereitschaft"), tmp_path / "raw", TAX)
    assert_names(str(info.value), f"{tmp_path / 'demo.yml'}: tables.feedback[1] (file 'umfrage_antworten.csv')",
                 "mapped column(s) ['Weiterempfehlungsbereitschaft'] not in the file", "'Weiterempfehlung'")
    assert (info.value.file, info.value.column, info.value.rows) == (SURVEY, "Weiterempfehlungsbereitschaft", [1])


def test_a_latin1_survey_read_as_utf8_names_byte_row_and_column_of_a_comment_without_quoting_it(tmp_path):
    survey_export(tmp_path, encoding="latin-1")
    with pytest.raises(SourceError) as info:
        map_sources(demo_mapping(tmp_path, "feedback"), tmp_path / "raw", TAX)
    assert_names(str(info.value), "umfrage_antworten.csv: not readable as utf-8: byte 0xfc in row 4, column 'Kommentar'",
                 "set `encoding: latin-1`")
    assert "Gut beraten" not in str(info.value)
    assert (info.value.file, info.value.column, info.value.rows) == (SURVEY, "Kommentar", [4])


def test_scores_out_of_range_stop_the_gate_with_count_base_and_rows(tmp_path):
    gate = survey_gate(tmp_path, {("U00000003", "Weiterempfehlung"): "15", ("U00000008", "Weiterempfehlung"): "-1"})
    assert gate.failed == ["feedback.nps: expect_column_values_to_be_between"]
    with pytest.raises(validate.ValidationFailed) as info:
        gate.raise_if_failed()
    # 99 is the export's "keine Angabe" (na_values): missing, so the base is 9 values, not 10
    assert_names(str(info.value), "validation gate (raw) failed: 1 critical expectation(s) not met",
                 "feedback.nps: expect_column_values_to_be_between (score within 0-10 in at least 98% of non-missing "
                 "values): 2 of 9 non-missing values (22.2%); "
                 "e.g. nps=15.0 (umfrage_antworten.csv row 4); nps=-1.0 (umfrage_antworten.csv row 9)")
    assert leaked(gate.results.to_string()) == []


def test_unknown_codes_stop_the_gate_with_the_value_scrubbed_and_the_rows(tmp_path):
    gate = survey_gate(tmp_path, {("U00000004", "Umfrage"): "Kundenbarometer",
                                  ("U00000009", "Umfrage"): "Rückruf anna.luedemann@web.de"})
    assert gate.failed == ["feedback.survey: expect_column_values_to_be_in_set"]
    with pytest.raises(validate.ValidationFailed) as info:
        gate.raise_if_failed()
    assert_names(str(info.value), "feedback.survey: expect_column_values_to_be_in_set (codes of 'surveys' in at least 98% "
                 "of non-missing values): 2 of 10 non-missing values (20.0%); e.g. survey='Kundenbarometer' "
                 "(umfrage_antworten.csv row 5); survey='Rückruf [email]' (umfrage_antworten.csv row 10)")
    assert leaked(gate.results.to_string()) == []


# --- stage 01 of a demo project ---------------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `folder` (links followed)."""
    folder = folder.resolve()
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 300-customer demo project after one successful stage-01 run; yields (project, crm numbers,
    e-mail addresses, names) of its CRM export."""
    from conftest import copy_project, run_cx

    project = copy_project(tmp_path_factory.mktemp("bad_input_data"))
    done = run_cx("demo", "--customers", "300", "--seed", "11", "--out", str(project / "data" / "raw"), cwd=project)
    assert done.returncode == 0, done.stderr
    done = run_cx("run", "--project", str(project), "--only", "01_validate_clean", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    crm = pd.read_csv(project / "data" / "raw" / "crm_kunden.csv", sep=";", encoding="latin-1", dtype="str",
                      keep_default_na=False)
    named = crm.loc[lambda d: (d["Vorname"] != "") & (d["Nachname"] != "")]
    return project, {"numbers": set(crm["Kundennummer"]), "emails": set(crm["E-Mail"]) - {""},
                     "names": set(named["Vorname"] + " " + named["Nachname"])}


def failed_stage_01(demo, file: str, change) -> tuple[str, list[Path]]:
    """Change one raw export, run stage 01, restore the export. Asserts exit 1 and that
    data/processed and reports/latest are unchanged; returns stdout + stderr and the new output files."""
    from conftest import run_cx

    project = demo[0]
    path = project / "data" / "raw" / file
    original = path.read_bytes()
    processed, latest = snapshot(project / "data" / "processed"), snapshot(project / "reports" / "latest")
    before = set(p for p in (project / "reports").rglob("*") if p.is_file())
    try:
        path.write_bytes(change(original))
        done = run_cx("run", "--project", str(project), "--only", "01_validate_clean", cwd=project)
    finally:
        path.write_bytes(original)
    assert done.returncode == 1, done.stdout + done.stderr
    assert snapshot(project / "data" / "processed") == processed
    assert snapshot(project / "reports" / "latest") == latest
    after = set(p for p in (project / "reports").rglob("*") if p.is_file())
    return done.stdout + done.stderr, sorted(after - before) + [project / "reports" / "cx.log"]


def personal_in(texts: list[str], demo) -> list[str]:
    people = demo[1]
    found = set()
    for text in texts:
        found |= {n for n in re.findall(r"(?i)\bK\d{7}\b", text)}
        found |= {e for e in people["emails"] if e in text} | {n for n in people["names"] if n in text}
    return sorted(found)


def outputs(files: list[Path]) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace") for p in files if p.is_file() and p.suffix != ".parquet"]


def test_stage_01_stops_on_a_crm_saved_as_utf8_without_quoting_it(demo):
    """The CRM re-saved as UTF-8, its header spelled without umlauts: the first accented letter is
    in a customer's row, which the message must name without quoting it."""
    def to_utf8(data: bytes) -> bytes:
        head, body = data.decode("latin-1").split("\n", 1)
        return (head.replace("ü", "ue").replace("ä", "ae") + "\n" + body).encode("utf-8")

    lines = to_utf8((demo[0] / "data" / "raw" / "crm_kunden.csv").read_bytes()).decode("utf-8").split("\n")
    row = next(number for number, line in enumerate(lines, start=1) if not line.isascii())
    said, files = failed_stage_01(demo, "crm_kunden.csv", to_utf8)
    assert row > 1 and "crm_kunden.csv: the file is UTF-8 but the mapping reads it as latin-1" in said
    assert re.search(rf"\(first in row {row}, column '[\w -]+'\); set `encoding: utf-8`", said), said
    assert personal_in([said, *outputs(files)], demo) == []


def test_stage_01_stops_on_infinite_revenue(demo):
    def infinite(data: bytes) -> bytes:
        head, first, *rest = data.split(b"\n")
        cells = first.split(b";")
        cells[7] = b'"Infinity"'
        return b"\n".join([head, b";".join(cells), *rest])

    said, files = failed_stage_01(demo, "bestellungen.csv", infinite)
    assert "orders.revenue: expect_column_values_to_be_between" in said
    assert "revenue=inf (bestellungen.csv row 2)" in said
    assert personal_in([said, *outputs(files)], demo) == []


def test_stage_01_stops_on_a_lower_case_duplicate_customer_with_other_consent(demo):
    def duplicate(data: bytes) -> bytes:
        lines = data.split(b"\n")
        copy = lines[2].replace(b";ja;", b";nein;") if b";ja;" in lines[2] else lines[2].replace(b";nein;", b";ja;")
        return b"\n".join([*lines[:3], copy.replace(b"K", b"k", 1), *lines[3:]])

    said, files = failed_stage_01(demo, "crm_kunden.csv", duplicate)
    assert "crm_kunden.csv: duplicate key in table 'customers', column(s) ['customer_ref']" in said
    assert "(crm_kunden.csv row 3); customer_id='C" in said and "(crm_kunden.csv row 4)" in said
    assert personal_in([said, *outputs(files)], demo) == []
