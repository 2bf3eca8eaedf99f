"""`cx map draft`: sniffing, profiling, proposing a mapping, writing it, and measuring it."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from cxlib import cli, draft
from cxlib.config import load_taxonomy
from cxlib.sources import load_mapping, map_sources
from conftest import ROOT

SURVEY = pd.DataFrame({
    "Kundennummer": ["K1", "K2", "K3", "K4"],
    "Datum": ["01.02.2024", "02.02.2024", "03.02.2024", "04.02.2024"],
    "Empfehlung": ["0", "7", "10", "9"],
    "Bewertung": ["1", "5", "4", "k.A."],
    "Kommentar": ["Die Lieferung kam viel zu spät an", "Sehr freundliche Beratung im Laden", None,
                  "Preis ist zu hoch für diese Qualität"],
    "Betrag": ["12,50", "1.234,00", "7,00", "0,99"],
    "leer": [None, None, None, None],
})


# --- sniffing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("data, name, expected", [
    ("Nr;Datum;Betrag\n1;01.02.2024;12,50\n2;02.02.2024;3,00\n".encode("utf-8"), "a.csv",
     {"format": "csv", "encoding": "utf-8", "sep": ";"}),
    ("Nr;Straße\n1;Hauptstraße\n2;Bahnhofstraße\n".encode("latin-1"), "b.csv",
     {"format": "csv", "encoding": "cp1252", "sep": ";"}),
    ("Nr;Preis\n1;5 €\n2;7 €\n".encode("cp1252"), "c.csv", {"format": "csv", "encoding": "cp1252", "sep": ";"}),
    (b"id\tscore\n1\t5\n2\t4\n", "d.tsv", {"format": "csv", "encoding": "utf-8", "sep": "\t"}),
    ("id,name\n1,x\n".encode("utf-16"), "e.csv", {"format": "csv", "encoding": "utf-16", "sep": ","}),
    (b"PK\x03\x04", "f.xlsx", {"format": "excel"}),
    (b"PAR1", "g.parquet", {"format": "parquet"}),
])
def test_sniff(data, name, expected):
    assert draft.sniff(data, name) == expected


def test_read_sample_is_text_with_blanks_missing():
    data = "Nr;Wert\n001; 1,5 \n002;\n".encode("cp1252")
    frame = draft.read_sample(data, "a.csv", draft.sniff(data, "a.csv"))
    assert frame.to_dict("list") == {"Nr": ["001", "002"], "Wert": ["1,5", None]} or \
        frame.fillna("").to_dict("list") == {"Nr": ["001", "002"], "Wert": ["1,5", ""]}
    assert frame["Wert"].isna().tolist() == [False, True]


# --- headers and values ---------------------------------------------------------------------------
@pytest.mark.parametrize("header, words, first", [
    ("customerID", "customer id", "customer_ref"),
    ("Kunden-Nr.", "kunden nr", "customer_ref"),
    ("Kundennummer", "kundennummer", "customer_ref"),
    ("Datum", "datum", "timestamp"),
    ("Date received", "date received", "timestamp"),
    ("Bewertung", "bewertung", "csat"),
    ("Weiterempfehlung", "weiterempfehlung", "nps"),
    ("Kommentar", "kommentar", "comment"),
    ("Betrag", "betrag", "revenue"),
    ("case:concept:name", "case concept name", "customer_ref"),
    ("Submitted via", "submitted via", "channel"),
    ("Zufriedenheit (1-5)", "zufriedenheit 1 5", "csat"),
])
def test_header_roles(header, words, first):
    assert draft.header_words(header) == words
    assert draft.header_roles(header)[0] == first


def test_header_without_role():
    assert draft.header_roles("Anrede") == []


def test_profile_kinds_and_details():
    extra = pd.DataFrame({
        "epoch": ["1562135719091", "1538035078776", "1642090754318", "1600000000000"],
        "iso": ["2024-01-05 10:30:00+01:00", "2024-01-06 11:00:00+01:00", "2024-01-07 09:00:00+01:00",
                "2024-03-31 12:00:00+02:00"],
        "code": ["a", "b", "a", "a"],
        "flag": ["ja", "nein", "ja", "ja"],
    })
    got = draft.profile(pd.concat([SURVEY, extra], axis=1)).set_index("column")
    assert got["kind"].to_dict() == {
        "Kundennummer": "id", "Datum": "date", "Empfehlung": "score", "Bewertung": "score", "Kommentar": "text",
        "Betrag": "number", "leer": "empty", "epoch": "epoch", "iso": "date", "code": "code", "flag": "bool"}
    assert got.at["Datum", "detail"] == {"dates": "%d.%m.%Y", "date_only": True, "ambiguous": []}
    assert got.at["iso", "detail"] == {"dates": "iso", "date_only": False, "offset": True}
    assert got.at["epoch", "detail"] == {"dates": "epoch_ms"}
    assert got.at["Empfehlung", "detail"] == {"scale": (0, 10)}
    assert got.at["Bewertung", "detail"] == {"na": ["k.A."], "scale": (1, 5)}
    assert got.at["Betrag", "detail"] == {"decimal": ","}
    assert got.at["Kommentar", "detail"] == {"chars": 34}
    assert got["unique"].to_dict()["Kundennummer"] and not got["unique"].to_dict()["Bewertung"]
    assert got[["filled", "distinct"]].loc["Bewertung"].tolist() == [3, 3]


@pytest.mark.parametrize("values, scale", [
    (["1", "2", "5", "4"], (1, 5)), (["0", "3", "5"], (0, 5)), (["1", "10", "6"], (1, 10)),
    (["0", "10", "6"], (0, 10)), (["2", "7", "4"], (1, 7)),
])
def test_profile_scales(values, scale):
    assert draft.profile(pd.DataFrame({"x": values}))["detail"][0] == {"scale": scale}


def test_profile_epoch_seconds_and_ambiguous_dates():
    got = draft.profile(pd.DataFrame({"s": ["1562135719", "1538035078", "1642090754"],
                                      "d": ["01/02/2024", "03/04/2024", "05/06/2024"]})).set_index("column")
    assert got.at["s", "detail"] == {"dates": "epoch_s"}
    assert got.at["d", "detail"] == {"dates": "%d/%m/%Y", "date_only": True, "ambiguous": ["%m/%d/%Y"]}


def test_profile_of_an_empty_frame():
    assert draft.profile(pd.DataFrame()).empty


# --- proposing ------------------------------------------------------------------------------------
def test_propose_german_survey():
    got = draft.propose("umfrage.csv", draft.profile(SURVEY), {"format": "csv", "encoding": "cp1252", "sep": ";"})
    assert got["table"] == "feedback"
    assert got["columns"] == {"response_id": {"row_number": True}, "customer_ref": "Kundennummer",
                              "timestamp": {"from": "Datum", "dates": ["%d.%m.%Y"]}, "nps": "Empfehlung",
                              "csat": "Bewertung", "comment": "Kommentar"}
    assert got["reader"] == {"format": "csv", "encoding": "cp1252", "sep": ";", "decimal": ",", "thousands": ".",
                             "na_values": ["k.A."]}
    assert got["ignore"] == ["Betrag", "leer"] and got["constants"] == {}
    assert got["todo"] == ["response_id: no unique column found; the row number is used "
                           "(stable only if the file never changes)"]


def test_propose_scores_on_other_scales_and_recommend_on_1_to_10():
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"], "Sterne": ["0", "5", "3", "4"],
                          "recommend": ["1", "10", "6", "9"]})
    got = draft.propose("r.csv", draft.profile(frame))
    assert got["columns"] == {"response_id": "id", "csat": {"from": "Sterne", "scale": [0, 5]}}
    assert got["ignore"] == ["recommend"]
    assert got["todo"][0] == "nps: 'recommend' is on 1-10, not 0-10; mapped as csat on its scale instead"


def test_propose_complaint_log_as_events_with_placeholders():
    frame = pd.DataFrame({
        "Complaint ID": ["101", "102", "103", "104"],
        "Date received": ["2024-01-01", "2024-01-02", "2024-02-01", "2024-02-03"],
        "Issue": ["Late delivery", "Billing", "Late delivery", "Billing"],
        "Consumer complaint narrative": ["The parcel came two weeks late and nobody called", None,
                                         "I was charged twice for the same order", None],
    })
    got = draft.propose("complaints.csv", draft.profile(frame))
    assert got["table"] == "events"
    assert got["columns"] == {"event_id": "Complaint ID", "timestamp": "Date received", "contact_reason": "Issue",
                              "text": "Consumer complaint narrative"}
    assert got["constants"] == {"channel": "web", "touchpoint": "complaint"}
    assert [t.split(":")[0] for t in got["todo"]] == ["contact_reason", "channel", "touchpoint"]


def test_propose_ratings_table_leaves_the_ratings_to_the_user():
    frame = pd.DataFrame({"respondent_id": ["1", "2", "3", "4"], **{f"q{i}": ["1", "10", "5", "7"] for i in range(1, 5)}})
    got = draft.propose("ratings.csv", draft.profile(frame))
    assert (got["table"], got["columns"]) == ("feedback", {"response_id": "respondent_id"})
    assert got["ignore"] == ["q1", "q2", "q3", "q4"]
    assert got["todo"] == ["4 rating columns (q1, q2, q3, q4): a ratings table; map each rating as its own "
                           "feedback entry (csat on its scale)"]


def test_propose_orders_with_repeated_invoice_numbers():
    frame = pd.DataFrame({"InvoiceNo": ["5001", "5001", "5002", "5003", "5003", "5004"],
                          "CustomerID": ["17850", "17850", "13047", "17850", "17850", "12583"],
                          "InvoiceDate": ["2010-12-01 08:26:00"] * 6,
                          "Stückpreis": ["2,55", "3,39", "7,65", "4,25", "1,00", "2,10"],
                          "Menge": ["1", "2", "1", "3", "1", "1"]})
    got = draft.propose("lines.csv", draft.profile(frame), {"format": "csv", "encoding": "utf-8", "sep": ";"})
    assert got["table"] == "orders"
    assert got["columns"] == {"order_id": "InvoiceNo", "customer_ref": "CustomerID", "timestamp": "InvoiceDate",
                              "revenue": {"from": "Menge", "multiply": "Stückpreis"}}
    assert got["reader"]["decimal"] == "," and got["reader"]["thousands"] == "."
    assert got["todo"] == ["order_id: 'InvoiceNo' repeats (several rows per order): aggregate the rows on it, "
                           "or map another id"]


def test_propose_customers_with_a_churn_flag():
    frame = pd.DataFrame({"customerID": ["A-1", "B-2", "C-3", "D-4"], "Churn": ["No", "Yes", "No", "No"],
                          "Segment": ["Privat", "Gewerbe", "Privat", "Privat"]})
    got = draft.propose("crm.csv", draft.profile(frame))
    assert got["table"] == "customers"
    assert got["columns"] == {"customer_ref": "customerID", "segment": "Segment"}
    assert got["constants"] == {"contact_consent": False}
    assert got["todo"][0] == "churn_date: 'Churn' is a flag ('No'), not a date: map its values to dates " \
                             "(`values:`) or ignore it"


def test_propose_file_without_clues():
    got = draft.propose("x.csv", draft.profile(pd.DataFrame({"a": ["x", "y", "x", "x"]})))
    assert got["table"] == "events"
    assert got["todo"][0] == "table: nothing in the file points to a table; events is a guess"


# --- writing: the draft is a mapping the engine accepts -------------------------------------------
def test_to_yaml_loads_and_maps(tmp_path):
    data = "\n".join(["Kundennummer;Datum;Empfehlung;Bewertung;Kommentar;Betrag;leer"]
                     + [";".join("" if v is None or pd.isna(v) else v for v in row)
                        for row in SURVEY.itertuples(index=False)]) + "\n"
    (tmp_path / "umfrage.csv").write_bytes(data.encode("cp1252"))
    reader = draft.sniff(data.encode("cp1252"), "umfrage.csv")
    proposal = draft.propose("umfrage.csv", draft.profile(draft.read_sample(data.encode("cp1252"), "umfrage.csv", reader)),
                             reader)
    text = draft.to_yaml([proposal], name="umfrage")
    assert "# TODO: response_id: no unique column found" in text
    assert yaml.safe_load(text)["tables"]["feedback"][0]["reader"] == {
        "encoding": "cp1252", "sep": ";", "decimal": ",", "thousands": ".", "na_values": ["k.A."]}
    (tmp_path / "draft.yml").write_text(text, encoding="utf-8")
    assert load_mapping(tmp_path / "draft.yml")["name"] == "umfrage"
    feedback = map_sources(tmp_path / "draft.yml", tmp_path, load_taxonomy(ROOT / "config" / "taxonomy.yml")).tables["feedback"]
    assert feedback["nps"].tolist() == [0, 7, 10, 9]
    assert feedback["csat"].fillna(-1).tolist() == [1, 5, 4, -1]
    assert feedback["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2024-02-01", "2024-02-02", "2024-02-03",
                                                                      "2024-02-04"]


def test_to_yaml_quotes_odd_names_and_separators():
    proposal = {"file": "a b.csv", "table": "events", "reader": {"format": "csv", "sep": "\t"},
                "columns": {"event_id": "case:id", "timestamp": "time:timestamp"},
                "constants": {"channel": "web", "touchpoint": "complaint"}, "ignore": ["Timely response?"],
                "why": {}, "todo": []}
    entry = yaml.safe_load(draft.to_yaml([proposal]))["tables"]["events"][0]
    assert entry == {"file": "a b.csv", "reader": {"sep": "\t"}, "columns": {"event_id": "case:id",
                     "timestamp": "time:timestamp"}, "constants": {"channel": "web", "touchpoint": "complaint"},
                     "ignore": ["Timely response?"]}


# --- measuring ------------------------------------------------------------------------------------
def test_agreement_counts_columns_of_the_hand_written_mapping():
    proposal = draft.propose("umfrage.csv", draft.profile(SURVEY))
    mapping = {"tables": {"feedback": [{"file": "umfrage.csv", "columns": {
        "response_id": {"template": "{Kundennummer}-{Datum}"}, "customer_ref": "Kundennummer",
        "timestamp": {"from": "Datum", "dates": ["%d.%m.%Y"]}, "nps": "Empfehlung", "ces": "Bewertung",
        "comment": "Kommentar"}, "ignore": ["Betrag", "leer"]}]}}
    got = draft.agreement(proposal, mapping)
    # hand: Kundennummer->customer_ref, Datum->timestamp, Empfehlung, Bewertung->ces, Kommentar; draft misses ces
    assert got == {"file": "umfrage.csv", "table": "feedback", "table_right": True, "mapped": 5, "mapped_right": 4,
                   "columns": 7, "columns_right": 6}
    assert draft.agreement({**proposal, "table": "events"}, mapping)["mapped_right"] == 0


# --- the command ----------------------------------------------------------------------------------
def test_cx_map_draft_writes_and_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / "a.csv").write_text("Kundennummer;Bewertung\nK1;5\nK2;4\nK3;1\n", encoding="utf-8")
    out = tmp_path / "m.yml"
    assert cli.main(["map", "draft", str(tmp_path / "a.csv"), "--out", str(out)]) == 0
    assert "a.csv as feedback" in capsys.readouterr().out
    assert load_mapping(out)["tables"]["feedback"][0]["columns"]["csat"] == {"from": "Bewertung"}
    assert cli.main(["map", "draft", str(tmp_path / "a.csv"), "--out", str(out)]) == 2
    assert "exists; use --force" in capsys.readouterr().err
    assert cli.main(["map", "draft", str(tmp_path / "a.csv"), "--out", str(out), "--force", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main(["map", "draft", str(tmp_path / "nope.csv"), "--out", str(out), "--force"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cx_map_draft_reads_excel(tmp_path):
    pd.DataFrame({"Bestellnummer": ["B1", "B2", "B3"], "Kundennummer": ["K1", "K2", "K1"],
                  "Bestelldatum": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:00", "2024-01-03 12:00"]),
                  "Umsatz": [10.5, 20.0, 7.25]}).to_excel(tmp_path / "orders.xlsx", index=False)
    out = tmp_path / "m.yml"
    assert cli.main(["map", "draft", str(tmp_path / "orders.xlsx"), "--out", str(out), "-q"]) == 0
    entry = load_mapping(out)["tables"]["orders"][0]
    assert {c: s.get("from") for c, s in entry["columns"].items()} == {
        "order_id": "Bestellnummer", "customer_ref": "Kundennummer", "timestamp": "Bestelldatum", "revenue": "Umsatz"}
    assert entry["options"]["format"] == "excel"
