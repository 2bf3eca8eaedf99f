"""Tests of cxlib.sources: one per mapping feature, every bad input, atomic processed writes,
and (marked real_data) the two public example datasets."""

from __future__ import annotations

import datetime as dt
import hashlib
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from cxlib import catalog, schema, sources
from cxlib.config import ConfigError, Taxonomy, load_taxonomy
from cxlib.catalog import read as read_processed, write as write_processed
from cxlib.sources import SourceError, load_mapping, map_sources
from cxlib.sources import read as source_read

ROOT = Path(__file__).parents[1]
REAL = Path(__file__).parents[2] / "shared" / "data" / "real"

TAX = Taxonomy({
    "stages": {"purchase": {"en": "Purchase"}, "onboarding": {"en": "Onboarding"}},
    "channels": {"phone": {"en": "Phone", "de": "Telefon", "aliases": ["Hotline"]},
                 "system": {"en": "System", "aliases": ["automatisch"]},
                 "web": {"en": "Web"}},
    "touchpoints": {"order": {"stage": "purchase", "aliases": ["Bestellung"]},
                    "activation": {"stage": "onboarding", "aliases": ["Freischaltung"]},
                    "order_cancelled": {"stage": "purchase"}},
    "contact_reasons": {"invoice_unclear": {"en": "Unclear invoice"}},
    "themes": {},
    "segments": {"private": {"en": "Private", "aliases": ["Privatkunde"]},
                 "business": {"en": "Business", "aliases": ["Geschäftskunde"]}},
    "surveys": {"relationship": {"en": "Relationship"}},
})


# --- helpers ------------------------------------------------------------------------------
def raw_file(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(textwrap.dedent(text).lstrip("\n").encode(encoding))
    return path


def mapping_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run(tmp_path: Path, mapping: str, taxonomy: Taxonomy = TAX) -> sources.Staged:
    return map_sources(mapping_file(tmp_path, mapping), tmp_path / "raw", taxonomy)


def strs(*values) -> pd.Series:
    return pd.Series(list(values), dtype="str")


def utc(*values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True)).dt.as_unit("us")


def bools(*values) -> pd.Series:
    return pd.Series(list(values), dtype="boolean")


def cols(frame: pd.DataFrame, **expected: pd.Series) -> None:
    """Assert the named columns of `frame` equal `expected` exactly (values and dtypes)."""
    assert_frame_equal(frame[list(expected)], pd.DataFrame(expected))


CUSTOMERS_CSV = """
Kundennummer;Segment;Kunde seit;Einwilligung
00123;Privatkunde;05.01.2024;ja
00456;Geschäftskunde;31.12.2023;nein
"""
CUSTOMERS_MAP = """
tables:
  customers:
    - file: crm.csv
      reader: {sep: ";"}
      columns:
        customer_ref: Kundennummer
        segment: Segment
        signup_date: {from: Kunde seit, dates: ["%d.%m.%Y"]}
        contact_consent: {from: Einwilligung, values: {ja: true, nein: false}}
"""


# --- edge cases first: empty, one row, structure errors -------------------------------------
def test_unmapped_tables_are_present_with_zero_rows_and_every_column(tmp_path):
    raw_file(tmp_path, "crm.csv", CUSTOMERS_CSV)
    staged = run(tmp_path, CUSTOMERS_MAP)
    assert sorted(staged.tables) == sorted(t for t, table in schema.TABLES.items() if not table.optional)
    assert "labels" not in staged.tables                  # optional: present only when the mapping fills it
    events = staged.tables["events"]
    assert len(events) == 0
    assert list(events.columns) == schema.staged_columns("events") + ["_file", "_row"]
    assert str(events["timestamp"].dtype) == "datetime64[us, UTC]"
    assert str(events["resolved"].dtype) == "boolean"


def test_one_row_file_gives_one_fully_typed_row(tmp_path):
    raw_file(tmp_path, "crm.csv", "Kundennummer;Segment;Kunde seit;Einwilligung\n007;Privatkunde;05.01.2024;ja\n")
    out = run(tmp_path, CUSTOMERS_MAP).tables["customers"]
    expected = pd.DataFrame({
        "customer_ref": strs("007"), "segment": strs("private"), "region": strs(None),
        "lead_date": utc(None), "signup_date": utc("2024-01-05"), "churn_date": utc(None),
        "contact_consent": bools(True), "consent_channels": strs(None), "is_test": [False],
        "pii_name": strs(None), "pii_email": strs(None), "pii_phone": strs(None),
        "_file": strs("crm.csv"), "_row": pd.Series([2], dtype="int64"),
    })
    assert_frame_equal(out, expected)


@pytest.mark.parametrize("body, expected", [
    ("tables: {customers: [{file: a.csv, colums: {}}]}", "unknown key(s) ['colums']"),
    ("tables: {kunden: [{file: a.csv}]}", "unknown canonical table"),
    ("tables: {customers: [{columns: {customer_ref: x}}]}", "missing `file`"),
    ("tables: {customers: [{file: a.csv, columns: {customer_id: K, contact_consent: E}}]}",
     "unknown column 'customer_id' for table customers (staged tables use customer_ref"),
    ("tables: {customers: [{file: a.csv, columns: {customer_ref: K, contact_consent: E, kundenwert: W}}]}",
     "unknown column 'kundenwert'"),
    ("tables: {customers: [{file: a.csv, columns: {customer_ref: K, contact_consent: E,"
     " signup_date: {from: S, dates: ['dd.mm.yyyy']}}}]}", "dates must be 'iso', 'dayfirst', 'epoch_ms', 'epoch_s' or a list of strptime"),
    ("tables: {customers: [{file: a.csv, columns: {customer_ref: K, contact_consent: E,"
     " region: {from: R, dates: iso}}}]}", "`dates` given but the column is string"),
    ("tables: {customers: [{file: a.csv, columns: {customer_ref: K}}]}",
     "required column(s) ['contact_consent'] of table customers not mapped"),
    ("tables: {customers: [{file: a.csv, columns: {customer_ref: {from: K, constant: x}, contact_consent: E}}]}",
     "give exactly one of `from`, `constant`, `template`"),
    ("defaults: {timezone: Mars/Olympus}\ntables: {customers: [{file: a.csv}]}", "not an IANA time zone"),
    ("tables: {feedback: [{file: a.csv, columns: {response_id: R, timestamp: T}, pii: {name: N}}]}",
     "`pii` is for customers only"),
    ("tables: {events: [{file: a.csv, columns: {event_id: E, customer_ref: C, timestamp: T, channel: K,"
     " touchpoint: P, wait_seconds: {from: W, unit: days}}}]}", "unit 'days' is not one of"),
    ("tables: {customers: [{file: a.csv, join: {file: b.csv, on: {a: b}, columns: {customer_ref: c},"
     " unmatched: maybe}, columns: {contact_consent: E}}]}", "unmatched must be drop or keep"),
    ("sources: []\ntables: {customers: [{file: a.csv}]}", "unknown key(s) ['sources']"),
])
def test_load_mapping_rejects_bad_structure_naming_file_and_entry(tmp_path, body, expected):
    path = mapping_file(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert isinstance(info.value, SourceError)


def test_load_mapping_names_the_entry(tmp_path):
    path = mapping_file(tmp_path, "tables: {customers: [{file: crm.csv, columns: {customer_ref: K}}]}")
    with pytest.raises(SourceError, match=r"tables\.customers\[1\] \(file 'crm\.csv'\)") as info:
        load_mapping(path)
    assert info.value.column == "contact_consent"


def test_load_mapping_normalises_columns_and_constants(tmp_path):
    path = mapping_file(tmp_path, """
        defaults: {encoding: latin-1}
        tables:
          customers:
            - file: crm.csv
              reader: {sep: ";"}
              columns: {customer_ref: K}
              constants: {contact_consent: false}
    """)
    entry = load_mapping(path)["tables"]["customers"][0]
    assert entry["columns"] == {"customer_ref": {"from": "K"}, "contact_consent": {"constant": False}}
    assert (entry["options"]["encoding"], entry["options"]["sep"], entry["options"]["timezone"]) == \
        ("latin-1", ";", "Europe/Berlin")


# --- mapping features ---------------------------------------------------------------------
def test_renames_constants_and_value_maps(tmp_path):
    raw_file(tmp_path, "crm.csv", CUSTOMERS_CSV)
    out = run(tmp_path, CUSTOMERS_MAP.replace("      columns:", "      constants: {region: Nord}\n      columns:")) \
        .tables["customers"]
    cols(out, customer_ref=strs("00123", "00456"), segment=strs("private", "business"),
         region=strs("Nord", "Nord"), contact_consent=bools(True, False),
         signup_date=utc("2024-01-05", "2023-12-31"))      # dates without a time keep their calendar date


def test_template_builds_ids_from_source_columns(tmp_path):
    raw_file(tmp_path, "orders.csv", """
        Nr,Kunde,Datum
        A1,K1,2024-02-01
        A2,,2024-02-02
    """)
    out = run(tmp_path, """
        tables:
          orders:
            - file: orders.csv
              columns:
                order_id: {template: "{Nr}-{Kunde}-storno"}
                customer_ref: Kunde
                timestamp: Datum
    """).tables["orders"]
    cols(out, order_id=strs("A1-K1-storno", None), customer_ref=strs("K1", None))


def test_value_map_default_and_yaml_booleans(tmp_path):
    raw_file(tmp_path, "crm.csv", """
        K,Consent,Kanal
        1,Yes,
        2,No,Mail
        3,, SMS
    """)
    staged = run(tmp_path, """
        tables:
          customers:
            - file: crm.csv
              columns:
                customer_ref: K
                contact_consent: {from: Consent, values: {Yes: true, No: false}, default: false}
                consent_channels: {from: Kanal, values: {Mail: email}, default: none}
    """)
    cols(staged.tables["customers"], contact_consent=bools(True, False, False),
         consent_channels=strs("none", "email", "SMS"))
    log = staged.log.set_index(["step", "detail"])["rows"]
    assert log[("values", "contact_consent")] == 2
    assert log[("default", "contact_consent = False")] == 1
    assert log[("default", "consent_channels = 'none'")] == 1


def test_na_values_of_column_and_reader(tmp_path):
    raw_file(tmp_path, "survey.csv", """
        id,when,nps,comment
        r1,2024-03-01,99,NA
        r2,2024-03-01,7,gut
        r3,2024-03-01,NA,n/a
    """)
    staged = run(tmp_path, """
        defaults: {na_values: [NA, n/a]}
        tables:
          feedback:
            - file: survey.csv
              columns:
                response_id: id
                timestamp: when
                nps: {from: nps, na_values: [99]}
                comment: comment
    """)
    cols(staged.tables["feedback"], nps=pd.Series([np.nan, 7.0, np.nan]), comment=strs(None, "gut", None))
    assert staged.log.query("step == 'na_values'")["rows"].tolist() == [1]


def test_unit_minutes_become_seconds(tmp_path):
    raw_file(tmp_path, "calls.csv", """
        id,k,t,wait,handle
        c1,K1,2024-01-01 10:00,1.5,2
        c2,K1,2024-01-01 11:00,,0
    """)
    out = run(tmp_path, """
        tables:
          events:
            - file: calls.csv
              columns:
                event_id: id
                customer_ref: k
                timestamp: t
                wait_seconds: {from: wait, unit: minutes}
                handle_seconds: {from: handle, unit: seconds}
              constants: {channel: phone, touchpoint: order}
    """).tables["events"]
    cols(out, wait_seconds=pd.Series([90.0, np.nan]), handle_seconds=pd.Series([2.0, 0.0]))


def test_decimal_comma_and_thousands_dot(tmp_path):
    raw_file(tmp_path, "orders.csv", """
        Nr;K;Datum;Betrag
        A1;K1;01.02.2024;1.234,50
        A2;K1;02.02.2024;-0,5
        A3;K1;03.02.2024;
    """)
    out = run(tmp_path, """
        tables:
          orders:
            - file: orders.csv
              reader: {sep: ";", decimal: ",", thousands: "."}
              columns: {order_id: Nr, customer_ref: K, timestamp: {from: Datum, dates: ["%d.%m.%Y"]}, revenue: Betrag}
    """).tables["orders"]
    cols(out, revenue=pd.Series([1234.5, -0.5, np.nan]))


def test_latin1_file_read_with_its_encoding(tmp_path):
    raw_file(tmp_path, "crm.csv", "K;Segment;Ort\n1;Geschäftskunde;Köln\n", encoding="latin-1")
    out = run(tmp_path, """
        tables:
          customers:
            - file: crm.csv
              reader: {sep: ";", encoding: latin-1}
              columns: {customer_ref: K, segment: Segment, region: Ort}
              constants: {contact_consent: false}
    """).tables["customers"]
    cols(out, segment=strs("business"), region=strs("Köln"))


def test_excel_sheet_typed_cells_and_sheet_rows(tmp_path):
    import xlsxwriter
    path = tmp_path / "raw" / "kontakte.xlsx"
    path.parent.mkdir(parents=True)
    book = xlsxwriter.Workbook(path)
    book.add_worksheet("Notizen").write(0, 0, "nicht diese")
    sheet = book.add_worksheet("Kontakte")
    stamp = book.add_format({"num_format": "dd.mm.yyyy hh:mm"})
    sheet.write_row(1, 0, ["Nr", "Kunde", "Zeit", "Wartezeit", "Gelöst"])        # header in sheet row 2
    sheet.write_row(2, 0, ["E1", "00123"])
    sheet.write_datetime(2, 2, dt.datetime(2024, 7, 1, 9, 30), stamp)            # a real Excel date
    sheet.write_number(2, 3, 2.5)
    sheet.write_boolean(2, 4, True)
    sheet.write_row(4, 0, ["E2", "00456", "02.07.2024 10:00", "3,5", "nein"])   # row 4 blank; text cells
    book.close()
    staged = run(tmp_path, """
        tables:
          events:
            - file: kontakte.xlsx
              reader: {sheet: Kontakte, decimal: ","}
              columns:
                event_id: Nr
                customer_ref: Kunde
                timestamp: {from: Zeit, dates: ["%d.%m.%Y %H:%M"]}
                wait_seconds: {from: Wartezeit, unit: minutes}
                resolved: Gelöst
              constants: {channel: Telefon, touchpoint: Bestellung}
    """)
    cols(staged.tables["events"], event_id=strs("E1", "E2"), customer_ref=strs("00123", "00456"),
         timestamp=utc("2024-07-01 07:30", "2024-07-02 08:00"), wait_seconds=pd.Series([150.0, 210.0]),
         resolved=bools(True, False), channel=strs("phone", "phone"), touchpoint=strs("order", "order"),
         _row=pd.Series([3, 5], dtype="int64"))
    assert staged.log.query("step == 'read'")["detail"].tolist() == ["kontakte.xlsx (sheet 'Kontakte')"]


def test_excel_missing_sheet_lists_sheets(tmp_path):
    import xlsxwriter
    path = tmp_path / "raw" / "k.xlsx"
    path.parent.mkdir(parents=True)
    book = xlsxwriter.Workbook(path)
    book.add_worksheet("Daten").write_row(0, 0, ["K", "E"])
    book.close()
    with pytest.raises(SourceError, match=r"k\.xlsx: no sheet 'Kunden'; sheets: \['Daten'\]"):
        run(tmp_path, """
            tables:
              customers:
                - file: k.xlsx
                  reader: {sheet: Kunden}
                  columns: {customer_ref: K, contact_consent: E}
        """)


def test_parquet_typed_columns(tmp_path):
    (tmp_path / "raw").mkdir()
    pd.DataFrame({
        "id": ["f1", "f2"], "at": pd.to_datetime(["2024-05-01 12:00", "2024-05-02 00:00"]).tz_localize("UTC"),
        "score": [10, 3], "ok": [True, False],
    }).to_parquet(tmp_path / "raw" / "fb.parquet")
    out = run(tmp_path, """
        defaults: {decimal: ","}
        tables:
          feedback:
            - file: fb.parquet
              columns: {response_id: id, timestamp: at, nps: score}
              ignore: [ok]
    """).tables["feedback"]
    cols(out, response_id=strs("f1", "f2"), timestamp=utc("2024-05-01 12:00", "2024-05-02 00:00"),
         nps=pd.Series([10.0, 3.0]), _row=pd.Series([1, 2], dtype="int64"))


def test_glob_stacks_files_in_sorted_order_with_file_and_row(tmp_path):
    raw_file(tmp_path, "kontakte_2024-02.csv", "K,E\nb1,ja\n")
    raw_file(tmp_path, "kontakte_2024-01.csv", "K,E\na1,ja\na2,nein\n")
    staged = run(tmp_path, """
        tables:
          customers:
            - file: kontakte_*.csv
              columns: {customer_ref: K, contact_consent: E}
    """)
    cols(staged.tables["customers"], customer_ref=strs("A1", "A2", "B1"),          # ids upper-cased by default
         _file=strs("kontakte_2024-01.csv", "kontakte_2024-01.csv", "kontakte_2024-02.csv"),
         _row=pd.Series([2, 3, 2], dtype="int64"))
    assert staged.inputs["file"].tolist() == ["kontakte_2024-01.csv", "kontakte_2024-02.csv"]
    assert staged.inputs["rows"].tolist() == [2, 1]


def test_where_derives_events_from_a_condition(tmp_path):
    raw_file(tmp_path, "orders.csv", """
        Nr,K,Datum,Status
        A1,K1,2024-01-01,geliefert
        A2,K2,2024-01-02,storniert
        A3,K3,2024-01-03,
    """)
    staged = run(tmp_path, """
        tables:
          events:
            - file: orders.csv
              where: "Status == 'storniert'"
              columns: {event_id: {template: "{Nr}-storno"}, customer_ref: K, timestamp: Datum}
              constants: {channel: web, touchpoint: order_cancelled}
    """)
    cols(staged.tables["events"], event_id=strs("A2-storno"), _row=pd.Series([3], dtype="int64"))
    assert staged.log.query("step == 'where'")["rows"].tolist() == [2]


def test_melt_wide_row_into_events_blank_timestamps_make_no_row(tmp_path):
    raw_file(tmp_path, "auftraege.csv", """
        Nr,K,Kanal,Bestelldatum,Aktivierung
        A1,K1,Web,2024-01-01 10:00,2024-01-05 08:00
        A2,K2,Hotline,2024-01-02 11:00,
    """)
    staged = run(tmp_path, """
        tables:
          events:
            - file: auftraege.csv
              columns: {customer_ref: K, channel: Kanal}
              melt:
                id: Nr
                timestamps:
                  Bestelldatum: {touchpoint: order}
                  Aktivierung: {touchpoint: activation, channel: system}
    """)
    cols(staged.tables["events"],
         event_id=strs("A1-order", "A1-activation", "A2-order"),
         customer_ref=strs("K1", "K1", "K2"),
         timestamp=utc("2024-01-01 09:00", "2024-01-05 07:00", "2024-01-02 10:00"),
         channel=strs("web", "system", "phone"), touchpoint=strs("order", "activation", "order"),
         _row=pd.Series([2, 2, 3], dtype="int64"))
    assert staged.log.query("step == 'melt'")["rows"].tolist() == [3]


JOIN_MAP = """
tables:
  events:
    - file: web.csv
      columns: {event_id: id, timestamp: t, touchpoint: page}
      constants: {channel: web}
      join: {file: logins.csv, on: {visitor: visitor_id}, columns: {customer_ref: crm_id}, unmatched: UNMATCHED}
"""
WEB_CSV = """
id,visitor,t,page
w1,v1,2024-01-01,Bestellung
w2,v9,2024-01-02,Bestellung
w3,v2,2024-01-03,Bestellung
w4,,2024-01-04,Bestellung
"""


def test_join_finds_the_customer_and_drops_unmatched(tmp_path):
    raw_file(tmp_path, "web.csv", WEB_CSV)
    raw_file(tmp_path, "logins.csv", "visitor_id,crm_id,device\nv1,K1,ios\nv2,K2,\n")
    staged = run(tmp_path, JOIN_MAP.replace("UNMATCHED", "drop"))
    cols(staged.tables["events"], event_id=strs("w1", "w3"), customer_ref=strs("K1", "K2"),
         _row=pd.Series([2, 4], dtype="int64"))
    assert staged.log.query("step == 'join'")["rows"].tolist() == [2]
    assert staged.inputs["file"].tolist() == ["web.csv", "logins.csv"]


def test_join_keeps_unmatched_rows_blank(tmp_path):
    raw_file(tmp_path, "web.csv", WEB_CSV)
    raw_file(tmp_path, "logins.csv", "visitor_id,crm_id\nv1,K1\nv2,K2\n")
    staged = run(tmp_path, JOIN_MAP.replace("UNMATCHED", "keep"))
    cols(staged.tables["events"], event_id=strs("w1", "w2", "w3", "w4"), customer_ref=strs("K1", None, "K2", None))


def test_join_key_not_unique_names_file_column_rows(tmp_path):
    raw_file(tmp_path, "web.csv", WEB_CSV)
    raw_file(tmp_path, "logins.csv", "visitor_id,crm_id\nv1,K1\nv2,K2\nv1,K7\n")
    with pytest.raises(SourceError) as info:
        run(tmp_path, JOIN_MAP.replace("UNMATCHED", "drop"))
    message = str(info.value)
    assert "map.yml" in message and "logins.csv" in message and "['visitor_id'] is not unique" in message
    assert "visitor_id='v1' (logins.csv row 2); visitor_id='v1' (logins.csv row 4)" in message
    assert (info.value.file, info.value.column, info.value.rows) == ("logins.csv", "visitor_id", [2, 4])


def test_test_accounts_flag_and_pii_columns(tmp_path):
    raw_file(tmp_path, "crm.csv", """
        K;Vorname;Nachname;E-Mail;Telefon;Anrede
        1;Anna;Muster;anna@example.de;0301234;Frau
        2;;Test;qa@example.test;;
        3;Bo;;bo@example.test;;Herr
    """)
    staged = run(tmp_path, """
        tables:
          customers:
            - file: crm.csv
              reader: {sep: ";"}
              columns: {customer_ref: K}
              constants: {contact_consent: true}
              pii: {name: [Vorname, Nachname], email: E-Mail, phone: Telefon}
              test_accounts: "Nachname == 'Test' or `E-Mail`.str.endswith('@example.test')"
              ignore: [Anrede]
    """)
    cols(staged.tables["customers"], is_test=pd.Series([False, True, True]),
         pii_name=strs("Anna Muster", "Test", "Bo"),
         pii_email=strs("anna@example.de", "qa@example.test", "bo@example.test"),
         pii_phone=strs("0301234", None, None))
    assert staged.log.query("step == 'test_accounts'")["rows"].tolist() == [2]


def test_ignore_star_accepts_extra_columns(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E,Neu,Noch neuer\n1,ja,x,y\n")
    out = run(tmp_path, """
        tables:
          customers:
            - file: crm.csv
              columns: {customer_ref: K, contact_consent: E}
              ignore: "*"
    """).tables["customers"]
    cols(out, customer_ref=strs("1"))


def test_unmapped_column_not_ignored_is_an_error(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E,Anrede,Neu\n1,ja,Frau,x\n")
    with pytest.raises(SourceError) as info:
        run(tmp_path, """
            tables:
              customers:
                - file: crm.csv
                  columns: {customer_ref: K, contact_consent: E}
                  ignore: [Anrede]
        """)
    assert "map.yml" in str(info.value) and "crm.csv: column(s) ['Neu'] are neither mapped nor listed under `ignore`" \
        in str(info.value)
    assert (info.value.file, info.value.column, info.value.rows) == ("crm.csv", "Neu", [1])


def test_taxonomy_aliases_normalise_case_blanks_umlauts_and_leave_unknown_codes(tmp_path):
    raw_file(tmp_path, "calls.csv", """
        id,k,t,Kanal,Anlass
        c1,K1,2024-01-01,TELEFON,Bestellung
        c2,K1,2024-01-01,  hotline ,FREISCHALTUNG
        c3,K2,2024-01-01,Brieftaube,Bestellung
        c4,K2,2024-01-01,phone,order
    """)
    staged = run(tmp_path, """
        tables:
          events:
            - file: calls.csv
              columns: {event_id: id, customer_ref: k, timestamp: t, channel: Kanal, touchpoint: Anlass}
    """)
    cols(staged.tables["events"], channel=strs("phone", "phone", "Brieftaube", "phone"),
         touchpoint=strs("order", "activation", "order", "order"))
    codes = staged.log.query("step == 'codes'").set_index("rule")
    normalised = codes.loc["values normalised by taxonomy alias"]
    assert normalised["rows"].tolist() == [2, 3]            # channel, touchpoint
    unknown = codes.loc["values not in taxonomy section channels (left for the validation gate)"]
    assert (unknown["rows"], unknown["detail"]) == (1, "channel: 'Brieftaube'")


def test_umlaut_and_fold_via_project_taxonomy(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,Segment\n1,GESCHÄFTSKUNDE\n2,geschaeftskunde\n3,Privatkunde \n")
    out = run(tmp_path, """
        tables:
          customers:
            - file: crm.csv
              columns: {customer_ref: K, segment: Segment}
              constants: {contact_consent: false}
    """, load_taxonomy(ROOT / "config" / "taxonomy.yml")).tables["customers"]
    cols(out, segment=strs("business", "business", "private"))


def test_direction_and_status_normalised_against_schema_codes(tmp_path):
    raw_file(tmp_path, "orders.csv", "Nr,K,D,S\nA1,K1,2024-01-01,COMPLETED\nA2,K1,2024-01-01,offen\n")
    out = run(tmp_path, """
        tables:
          orders:
            - file: orders.csv
              columns: {order_id: Nr, customer_ref: K, timestamp: D, status: {from: S, values: {offen: pending}}}
    """).tables["orders"]
    cols(out, status=strs("completed", "pending"))


def test_mixed_date_formats_tried_in_order_and_timezone_to_utc(tmp_path):
    raw_file(tmp_path, "calls.csv", """
        id,k,t
        c1,K1,01.07.2024 10:00
        c2,K1,2024-07-01T10:00:00
        c3,K1,15.01.2024 10:00
        c4,K1,2024-07-01T10:00:00+00:00
        c5,K1,27.10.2024 02:30
        c6,K1,31.03.2024 02:30
    """)
    out = run(tmp_path, """
        tables:
          events:
            - file: calls.csv
              columns: {event_id: id, customer_ref: k, timestamp: {from: t, dates: ["%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]}}
              constants: {channel: phone, touchpoint: order}
    """).tables["events"]
    # summer +02:00, winter +01:00, offset kept, ambiguous autumn hour = standard time,
    # skipped spring hour moved forward to 03:00 CEST
    cols(out, timestamp=utc("2024-07-01 08:00", "2024-07-01 08:00", "2024-01-15 09:00", "2024-07-01 10:00",
                            "2024-10-27 01:30", "2024-03-31 01:00"))


def test_dayfirst_and_iso_and_mapping_timezone(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E,S\n1,ja,05.01.2024\n2,ja,2024-01-05\n3,ja,5/1/2024 13:00\n")
    out = run(tmp_path, """
        defaults: {timezone: America/New_York}
        tables:
          customers:
            - file: crm.csv
              columns: {customer_ref: K, contact_consent: E, signup_date: {from: S, dates: dayfirst}}
    """).tables["customers"]
    cols(out, signup_date=utc("2024-01-05 00:00", "2024-01-05 00:00", "2024-01-05 18:00"))   # only times are local


def test_few_unparseable_dates_become_missing_and_are_logged(tmp_path):
    rows = "".join(f"{i},ja,2024-01-{i:02d}\n" for i in range(1, 21))
    raw_file(tmp_path, "crm.csv", "K,E,S\n" + rows + "21,ja,gestern\n")
    staged = run(tmp_path, """
        defaults: {max_unparseable_share: 0.05}
        tables:
          customers:
            - file: crm.csv
              columns: {customer_ref: K, contact_consent: E, signup_date: S}
    """)
    assert staged.tables["customers"]["signup_date"].isna().tolist() == [False] * 20 + [True]
    logged = staged.log.query("step == 'dates'")
    assert logged["rows"].tolist() == [1]
    assert logged["detail"].iloc[0] == "signup_date from 'S': S='gestern' (crm.csv row 22)"


def test_a_file_of_two_entries_is_listed_per_table_and_hashed_once(tmp_path, monkeypatch):
    raw_file(tmp_path, "orders.csv", "Nr,K,D,Status\nA1,K1,2024-01-01,storniert\nA2,K2,2024-01-02,neu\n")
    hashed = []
    original = source_read.sha256
    monkeypatch.setattr(source_read, "sha256", lambda *a: hashed.append(a) or original(*a))
    staged = run(tmp_path, """
        tables:
          orders:
            - file: orders.csv
              columns: {order_id: Nr, customer_ref: K, timestamp: D}
              ignore: [Status]
          events:
            - file: orders.csv
              where: "Status == 'storniert'"
              columns: {event_id: Nr, customer_ref: K, timestamp: D}
              constants: {channel: web, touchpoint: order_cancelled}
    """)
    assert len(hashed) == 1
    assert staged.inputs[["file", "table", "rows"]].values.tolist() == [["orders.csv", "orders", 2], ["orders.csv", "events", 2]]
    assert staged.inputs["sha256"].tolist() == [hashlib.sha256((tmp_path / "raw" / "orders.csv").read_bytes()).hexdigest()] * 2
    assert len(staged.tables["orders"]) == 2 and len(staged.tables["events"]) == 1


def test_file_fingerprint_is_sha256(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert sources.file_fingerprint(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_reader_format_skiprows_and_quotechar(tmp_path):
    raw_file(tmp_path, "export.txt", """
        Kontaktbericht Hotline
        erstellt am 02.01.2024
        Nr|Kunde|Zeit|Notiz
        c1|K1|2024-01-01 10:00|'Rückruf | morgen'
        c2|K2|2024-01-01 11:00|kurz
    """)
    out = run(tmp_path, """
        tables:
          events:
            - file: export.txt
              reader: {format: csv, sep: "|", skiprows: 2, quotechar: "'"}
              columns: {event_id: Nr, customer_ref: Kunde, timestamp: Zeit, text: Notiz}
              constants: {channel: phone, touchpoint: order}
    """).tables["events"]
    cols(out, event_id=strs("c1", "c2"), customer_ref=strs("K1", "K2"),
         timestamp=utc("2024-01-01 09:00", "2024-01-01 10:00"), text=strs("Rückruf | morgen", "kurz"),
         _row=pd.Series([4, 5], dtype="int64"))


def test_several_entries_stack_into_one_table_in_mapping_order(tmp_path):
    raw_file(tmp_path, "anrufe.csv", "Nr;Kunde;Zeit\nc1;K1;01.03.2024 10:00\nc2;K2;02.03.2024 11:30\n")
    pd.DataFrame({"chat": ["h1"], "visitor": ["K3"],
                  "start": pd.to_datetime(["2024-03-05 08:00"]).tz_localize("UTC")}) \
        .to_parquet(tmp_path / "raw" / "chats.parquet")
    staged = run(tmp_path, """
        tables:
          events:
            - file: anrufe.csv
              reader: {sep: ";"}
              columns: {event_id: Nr, customer_ref: Kunde, timestamp: {from: Zeit, dates: ["%d.%m.%Y %H:%M"]}}
              constants: {channel: Hotline, touchpoint: order}
            - file: chats.parquet
              columns: {event_id: chat, customer_ref: visitor, timestamp: start}
              constants: {channel: web, touchpoint: activation}
    """)
    cols(staged.tables["events"], event_id=strs("c1", "c2", "h1"), customer_ref=strs("K1", "K2", "K3"),
         timestamp=utc("2024-03-01 09:00", "2024-03-02 10:30", "2024-03-05 08:00"),
         channel=strs("phone", "phone", "web"), touchpoint=strs("order", "order", "activation"),
         _file=strs("anrufe.csv", "anrufe.csv", "chats.parquet"), _row=pd.Series([2, 3, 1], dtype="int64"))
    assert staged.inputs[["file", "table", "rows"]].values.tolist() == \
        [["anrufe.csv", "events", 2], ["chats.parquet", "events", 1]]


# --- bad input: every message names mapping, data file, column and rows ---------------------
def test_missing_file_lists_the_raw_folder(tmp_path):
    raw_file(tmp_path, "kunden.csv", "K,E\n1,ja\n")
    with pytest.raises(SourceError) as info:
        run(tmp_path, CUSTOMERS_MAP)
    message = str(info.value)
    assert "map.yml" in message and "no file matches 'crm.csv'" in message and "present: kunden.csv" in message


def test_glob_without_match_is_an_error(tmp_path):
    raw_file(tmp_path, "kunden.csv", "K,E\n1,ja\n")
    with pytest.raises(SourceError, match=r"no file matches 'kontakte_\*\.xlsx' .* present: kunden\.csv"):
        run(tmp_path, """
            tables:
              customers:
                - file: kontakte_*.xlsx
                  columns: {customer_ref: K, contact_consent: E}
        """)


@pytest.mark.parametrize("content, expected", [
    ("", "crm.csv: the file is empty (0 bytes)"),
    ("Kundennummer;Segment;Kunde seit;Einwilligung\n", "crm.csv: the file has a header but no data rows"),
    ("Kundennummer;Segment;Kunde seit;Einwilligung\n;;;\n", "crm.csv: the file has a header but no data rows"),
])
def test_empty_files_are_errors(tmp_path, content, expected):
    raw_file(tmp_path, "crm.csv", content)
    with pytest.raises(SourceError) as info:
        run(tmp_path, CUSTOMERS_MAP)
    assert "map.yml" in str(info.value) and expected in str(info.value)
    assert info.value.file == "crm.csv"


def test_latin1_file_read_as_utf8_suggests_encoding(tmp_path):
    raw_file(tmp_path, "crm.csv", "Kundennummer;Segment;Kunde seit;Einwilligung\n1;Privatkunde;05.01.2024;ja\n"
                                  "2;Geschäftskunde;05.01.2024;nein\n", encoding="latin-1")
    with pytest.raises(SourceError) as info:
        run(tmp_path, CUSTOMERS_MAP)
    message = str(info.value)
    assert "map.yml" in message and "crm.csv: not readable as utf-8" in message
    assert "in row 3" in message and "encoding: latin-1" in message
    assert info.value.rows == [3]


def test_utf8_file_read_as_latin1_is_stopped_before_garbling(tmp_path):
    raw_file(tmp_path, "crm.csv", "K;Segment;Ort\n1;Privatkunde;Berlin\n2;Geschäftskunde;Köln\n")
    with pytest.raises(SourceError) as info:
        run(tmp_path, """
            tables:
              customers:
                - file: crm.csv
                  reader: {sep: ";", encoding: latin-1}
                  columns: {customer_ref: K, segment: Segment, region: Ort}
                  constants: {contact_consent: false}
        """)
    message = str(info.value)
    assert "map.yml" in message and "crm.csv: the file is UTF-8 but the mapping reads it as latin-1" in message
    assert "(first in row 3, column 'Segment'); set `encoding: utf-8`" in message
    assert "Köln" not in message and "KÃ¶ln" not in message                   # the raw line is never quoted
    assert (info.value.rows, info.value.column) == ([3], "Segment")


def test_mapped_column_missing_from_file_hints_at_separator(tmp_path):
    raw_file(tmp_path, "crm.csv", CUSTOMERS_CSV)
    with pytest.raises(SourceError) as info:
        run(tmp_path, CUSTOMERS_MAP.replace('      reader: {sep: ";"}\n', ""))
    message = str(info.value)
    assert "crm.csv: mapped column(s) ['Einwilligung', 'Kunde seit', 'Kundennummer', 'Segment'] not in the file" in message
    assert "is `sep` right?" in message


def test_required_column_unmapped_is_an_error(tmp_path):
    raw_file(tmp_path, "calls.csv", "id,k,t\nc1,K1,2024-01-01\n")
    with pytest.raises(SourceError) as info:
        run(tmp_path, """
            tables:
              events:
                - file: calls.csv
                  columns: {event_id: id, customer_ref: k, timestamp: t}
                  constants: {channel: phone}
        """)
    assert "map.yml" in str(info.value) and "file 'calls.csv'" in str(info.value)
    assert "required column(s) ['touchpoint'] of table events not mapped" in str(info.value)
    assert info.value.column == "touchpoint"


def test_too_many_unparseable_dates_stop_with_rows_and_values(tmp_path):
    raw_file(tmp_path, "crm.csv", """
        Kundennummer;Segment;Kunde seit;Einwilligung
        1;Privatkunde;05.01.2024;ja
        2;Privatkunde;31.02.2024;ja
        3;Privatkunde;2024-01-07;ja
        4;Privatkunde;;ja
    """)
    with pytest.raises(SourceError) as info:
        run(tmp_path, CUSTOMERS_MAP)
    message = str(info.value)
    assert "map.yml" in message and "crm.csv: column 'Kunde seit' (-> signup_date): 2 of 3 values are not valid dates" in message
    assert "Kunde seit='31.02.2024' (crm.csv row 3); Kunde seit='2024-01-07' (crm.csv row 4)" in message
    assert (info.value.file, info.value.column, info.value.rows) == ("crm.csv", "Kunde seit", [3, 4])


def test_unparseable_numbers_stop_and_show_at_most_five_rows(tmp_path):
    body = "".join(f"r{i},2024-01-01,{'x' + str(i) if i > 1 else '7'}\n" for i in range(1, 9))
    raw_file(tmp_path, "s.csv", "id,t,nps\n" + body)
    with pytest.raises(SourceError) as info:
        run(tmp_path, """
            tables:
              feedback:
                - file: s.csv
                  columns: {response_id: id, timestamp: t, nps: nps}
        """)
    message = str(info.value)
    assert "column 'nps' (-> nps): 7 of 8 values are not valid numbers (decimal '.', thousands None)" in message
    assert message.endswith("first rows: nps='x2' (s.csv row 3); nps='x3' (s.csv row 4); nps='x4' (s.csv row 5); "
                            "nps='x5' (s.csv row 6); nps='x6' (s.csv row 7)")
    assert info.value.rows == [3, 4, 5, 6, 7, 8, 9]


def test_unparseable_booleans_stop(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E\n1,ja\n2,vielleicht\n")
    with pytest.raises(SourceError, match=r"column 'E' \(-> contact_consent\): 1 of 2 values are not valid booleans.*"
                                          r"E='vielleicht' \(crm\.csv row 3\)"):
        run(tmp_path, "tables: {customers: [{file: crm.csv, columns: {customer_ref: K, contact_consent: E}}]}")


def test_bad_where_expression_names_mapping_and_entry(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E\n1,ja\n")
    with pytest.raises(SourceError, match=r"map\.yml: tables\.customers\[1\] .*`where: Status == 'x'` cannot be evaluated"):
        run(tmp_path, "tables: {customers: [{file: crm.csv, where: \"Status == 'x'\", "
                      "columns: {customer_ref: K, contact_consent: E}}]}")


# --- processed tables ---------------------------------------------------------------------
def frames() -> dict[str, pd.DataFrame]:
    return {
        "customers": pd.DataFrame({"customer_id": strs("a", None), "contact_consent": bools(True, None),
                                   "signup_date": utc("2024-01-01 10:00", None)}),
        "feedback": pd.DataFrame({"response_id": strs("r1"), "nps": [9.0]}),
    }


def test_write_then_read_processed_round_trip(tmp_path):
    target = tmp_path / "processed"
    target.mkdir()
    (target / ".gitkeep").write_text("")
    (target / "stale.parquet").write_bytes(b"old")
    restricted = {"reidentification": pd.DataFrame({"customer_id": strs("a"), "customer_ref": strs("00123")})}
    paths = write_processed(frames(), target, restricted=restricted)
    assert paths == [target / "customers.parquet", target / "feedback.parquet",
                     target / "restricted" / "reidentification.parquet"]
    assert sorted(p.name for p in target.iterdir()) == [".gitkeep", "customers.parquet", "feedback.parquet", "restricted"]
    back = read_processed(target)
    assert sorted(back) == ["customers", "feedback"]
    for name, frame in frames().items():
        assert_frame_equal(back[name], frame)
    assert_frame_equal(read_processed(target, ["reidentification"])["reidentification"], restricted["reidentification"])
    assert [p.name for p in tmp_path.iterdir()] == ["processed"]            # no temp folders left


def test_write_processed_failure_mid_write_leaves_folder_unchanged(tmp_path):
    target = tmp_path / "processed"
    write_processed(frames(), target)
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    broken = {"customers": frames()["customers"].assign(nps=[1.0, 2.0]),
              "events": pd.DataFrame({"x": pd.Series([1, "a"], dtype=object)})}   # pyarrow cannot write this
    with pytest.raises(Exception):
        write_processed(broken, target)
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["processed"]


def test_read_processed_missing_table_tells_to_run_the_pipeline(tmp_path):
    write_processed(frames(), tmp_path / "processed")
    with pytest.raises(SourceError, match=r"processed table 'events' not found; run the notebook 01_validate_clean "
                                          r"\(or `cx run`\)"):
        read_processed(tmp_path / "processed", ["customers", "events"])
    with pytest.raises(SourceError, match="no processed tables found"):
        read_processed(tmp_path / "nothing")


def test_staged_tables_survive_write_and_read(tmp_path):
    raw_file(tmp_path, "crm.csv", CUSTOMERS_CSV)
    staged = run(tmp_path, CUSTOMERS_MAP)
    write_processed(staged.tables, tmp_path / "processed")
    back = read_processed(tmp_path / "processed")
    for name, frame in staged.tables.items():
        assert_frame_equal(back[name], frame)


# --- real public data (skipped when ../shared/data/real is absent) --------------------------
@pytest.mark.real_data
def test_real_garden_centre_nps(tmp_path):
    folder = REAL / "nps_garden_retail_fr"
    if not (folder / "nps.csv").is_file():
        pytest.skip(f"{folder} not present")
    staged = map_sources(ROOT / "config" / "sources" / "nps_garden_retail_fr.yml", folder,
                         load_taxonomy(ROOT / "config" / "taxonomy.yml"))
    feedback = staged.tables["feedback"]
    scores = feedback["nps"].dropna()
    nps = round(100 * (scores.ge(9).mean() - scores.le(6).mean()), 1)
    assert (len(feedback), len(scores), nps) == (13954, 13612, 53.4)
    assert feedback["response_id"].is_unique
    assert feedback["timestamp"].unique().tolist() == [pd.Timestamp("2021-10-19 10:00", tz="UTC")]
    assert feedback["comment"].notna().sum() == 3839
    assert feedback["comment"].str.contains("é").any()             # Latin-1 decoded


@pytest.mark.real_data
def test_real_telco_churn(tmp_path):
    folder = REAL / "telco_churn_ibm"
    if not (folder / "Telco-Customer-Churn.csv").is_file():
        pytest.skip(f"{folder} not present")
    staged = map_sources(ROOT / "config" / "sources" / "telco_churn_ibm.yml", folder,
                         load_taxonomy(ROOT / "config" / "taxonomy.yml"))
    customers = staged.tables["customers"]
    assert (len(customers), int(customers["churn_date"].notna().sum())) == (7043, 1869)
    assert customers["customer_ref"].is_unique and customers["signup_date"].notna().all()
    assert customers["segment"].unique().tolist() == ["private"]
    assert customers["signup_date"].min() == pd.Timestamp("2012-01-01", tz="UTC")
    assert_series_equal(customers["churn_date"].dropna().drop_duplicates().reset_index(drop=True),
                        utc("2018-01-31"), check_names=False)


def test_read_comment_labels(tmp_path):
    assert sources.read_comment_labels(tmp_path) is None
    (tmp_path / "_truth").mkdir()
    (tmp_path / "_truth" / "comment_labels.csv").write_text(
        "response_id,language,themes,sentiment\nU1,de,invoice|price,negative\nU2,en,,\n", encoding="utf-8")
    labels = sources.read_comment_labels(tmp_path)
    assert labels.to_dict("records") == [
        {"response_id": "U1", "language": "de", "themes": "invoice|price", "sentiment": "negative"},
        {"response_id": "U2", "language": "en", "themes": "", "sentiment": ""}]
    (tmp_path / "_truth" / "comment_labels.csv").write_text("id,lang\nU1,de\n", encoding="utf-8")
    with pytest.raises(sources.SourceError, match=r"comment_labels.csv: comment labels lack column\(s\) \['response_id'"):
        sources.read_comment_labels(tmp_path)


def test_read_optional_table_is_none_when_absent(tmp_path):
    assert catalog.read_optional(tmp_path, "consent_log") is None
    frame = pd.DataFrame({"customer_id": ["C1"], "consent": [True]})
    frame.to_parquet(tmp_path / "consent_log.parquet", index=False)
    pd.testing.assert_frame_equal(catalog.read_optional(tmp_path, "consent_log"), frame)
