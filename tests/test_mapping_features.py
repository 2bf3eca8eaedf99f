"""Mapping features real exports need, each on tiny hand-made files: files without a header row,
row-number ids, joins over several hops, aggregation on a key, column names with any
characters, per-survey score scales and "not applicable" codes, date-only and epoch dates, a
mapped language column, customers derived when no customers table is mapped, word lists
for a taxonomy anywhere, and comments labelled by hand (`labels`: mapping, gate, cleaning)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal, assert_series_equal

from cxlib import clean, config, reshape, schema, sentiment, validate
from cxlib.config import Taxonomy
from cxlib.sources import SourceError, load_mapping, map_sources

TAX = Taxonomy({
    "stages": {"purchase": {"en": "Purchase"}, "service": {"en": "Service"}},
    "channels": {"phone": {"en": "Phone"}, "web": {"en": "Web", "aliases": ["Internet"]},
                 "letter": {"en": "Letter", "aliases": ["Post"]}},
    "touchpoints": {"order": {"stage": "purchase"}, "complaint": {"stage": "service"}},
    "contact_reasons": {},
    "themes": {},
    "surveys": {"relationship": {"en": "Relationship"}},
})
KEY = b"mapping-features-test-key"


def raw_file(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(textwrap.dedent(text).lstrip("\n").encode(encoding))
    return path


def run(tmp_path: Path, mapping: str):
    path = tmp_path / "map.yml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return map_sources(path, tmp_path / "raw", TAX)


def fails(tmp_path: Path, mapping: str, match: str) -> SourceError:
    with pytest.raises(SourceError, match=match) as info:
        run(tmp_path, mapping)
    return info.value


def utc(*values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True, format="ISO8601")).dt.as_unit("us")


def strs(*values) -> pd.Series:
    return pd.Series(list(values), dtype="str")


def floats(*values) -> pd.Series:
    return pd.Series(list(values), dtype="float64")


def cols(frame: pd.DataFrame, **expected: pd.Series) -> None:
    assert_frame_equal(frame[list(expected)].reset_index(drop=True), pd.DataFrame(expected))


FEEDBACK = """
tables:
  feedback:
    - file: {file}
      {extra}
      columns:
        response_id: {id}
        csat: {csat}
"""


def feedback_map(file="r.csv", extra="", id="id", csat="s") -> str:
    return FEEDBACK.format(file=file, extra=extra, id=id, csat=csat)


# --- 1. files without a header row ---------------------------------------------------------
def test_csv_without_header_takes_names_from_the_mapping_and_counts_rows_from_one(tmp_path):
    raw_file(tmp_path, "r.csv", "R1;4\nR2;5\n")
    out = run(tmp_path, feedback_map(extra="reader: {sep: ';', header: false, names: [id, s]}")).tables["feedback"]
    cols(out, response_id=strs("R1", "R2"), csat=floats(4, 5), _row=pd.Series([1, 2], dtype="int64"))


def test_names_must_match_the_columns_of_a_file_without_header(tmp_path):
    raw_file(tmp_path, "r.csv", "R1;4;x\n")
    error = fails(tmp_path, feedback_map(extra="reader: {sep: ';', header: false, names: [id, s]}"),
                  r"`names` gives 2 column names but the file has 3 columns \(sep ';'\) in row 1$")
    assert (error.file, error.rows) == ("r.csv", [1])


@pytest.mark.parametrize("reader, expected", [
    ("{header: false}", "`header: false` needs `names`"),
    ("{names: [id, s]}", "`names` is for files without a header row: add `header: false`"),
    ("{header: false, names: [id, id]}", r"`names` repeats \['id'\]"),
    ("{header: nein, names: [id, s]}", "header must be true or false"),
])
def test_header_options_are_checked(tmp_path, reader, expected):
    path = tmp_path / "map.yml"
    path.write_text(feedback_map(extra=f"reader: {reader}"), encoding="utf-8")
    with pytest.raises(SourceError, match=expected):
        load_mapping(path)


def test_excel_without_header_uses_the_names_and_sheet_rows(tmp_path):
    (tmp_path / "raw").mkdir()
    pd.DataFrame([["R1", 4], ["R2", 2]]).to_excel(tmp_path / "raw" / "r.xlsx", index=False, header=False)
    out = run(tmp_path, feedback_map(file="r.xlsx", extra="reader: {header: false, names: [id, s]}")).tables["feedback"]
    cols(out, response_id=strs("R1", "R2"), csat=floats(4, 2), _row=pd.Series([1, 2], dtype="int64"))


def test_parquet_refuses_header_false(tmp_path):
    (tmp_path / "raw").mkdir()
    pd.DataFrame({"id": ["R1"], "s": [4]}).to_parquet(tmp_path / "raw" / "r.parquet")
    fails(tmp_path, feedback_map(file="r.parquet", extra="reader: {header: false, names: [id, s]}"),
          "`header: false` is for CSV and Excel files")


# --- 2. row-number ids -----------------------------------------------------------------------
def test_row_number_and_lineage_templates_make_ids_for_files_without_ids(tmp_path):
    raw_file(tmp_path, "r.csv", "s\n4\n\n5\n")
    out = run(tmp_path, feedback_map(id="{row_number: true}")).tables["feedback"]
    cols(out, response_id=strs("2", "4"), csat=floats(4, 5))        # the rows a spreadsheet shows (blank row 3)
    out = run(tmp_path, feedback_map(id="{template: 'r-{_file}-{_row}'}")).tables["feedback"]
    cols(out, response_id=strs("r-r.csv-2", "r-r.csv-4"))


def test_row_number_over_several_files_asks_for_the_file_in_the_id(tmp_path):
    raw_file(tmp_path, "r1.csv", "s\n4\n")
    raw_file(tmp_path, "r2.csv", "s\n5\n")
    fails(tmp_path, feedback_map(file="r*.csv", id="{row_number: true}"),
          r"`row_number` repeats across the 2 files matched \(r1.csv, r2.csv\); use a template naming the file "
          r"too, e.g. '\{_file\}-\{_row\}'")
    out = run(tmp_path, feedback_map(file="r*.csv", id="{template: '{_file}-{_row}'}")).tables["feedback"]
    cols(out, response_id=strs("r1.csv-2", "r2.csv-2"))


# --- 3. joins over several hops --------------------------------------------------------------
REVIEWS = """
review id,order id,score
V1,O1,5
V2,O2,1
V3,O3,3
V4,O9,2
"""
ORDERS = """
order id,customer id,status
O1,C1,delivered
O2,C2,delivered
O3,C9,delivered
"""
CUSTOMERS = """
customer id,customer unique id
C1,U1
C2,U1
"""


def test_nested_join_finds_the_customer_of_a_review_through_its_order(tmp_path):
    for name, text in {"reviews.csv": REVIEWS, "orders.csv": ORDERS, "customers.csv": CUSTOMERS}.items():
        raw_file(tmp_path, name, text)
    staged = run(tmp_path, """
        tables:
          feedback:
            - file: reviews.csv
              columns: {response_id: review id, csat: score}
              join:
                file: orders.csv
                on: {order id: order id}
                unmatched: keep
                join:
                  file: customers.csv
                  on: {customer id: customer id}
                  columns: {customer_ref: customer unique id}
                  unmatched: drop
    """)
    cols(staged.tables["feedback"], response_id=strs("V1", "V2", "V3", "V4"), customer_ref=strs("U1", "U1", None, None))
    joins = staged.log.query("step == 'join'")[["rule", "rows", "detail"]].values.tolist()
    assert joins == [["rows dropped: no match in the joined file", 1, "customers.csv on customer id = customer id"],
                     ["rows kept without a match in the joined file (joined columns blank)", 2,
                      "orders.csv on order id = order id"]]


def test_a_list_of_joins_each_join_this_file(tmp_path):
    raw_file(tmp_path, "reviews.csv", REVIEWS)
    raw_file(tmp_path, "orders.csv", ORDERS)
    raw_file(tmp_path, "dates.csv", "order id,written\nO1,2024-03-01 10:00\nO2,2024-03-02 10:00\nO3,2024-03-03 10:00\n")
    out = run(tmp_path, """
        defaults: {timezone: UTC}
        tables:
          feedback:
            - file: reviews.csv
              columns: {response_id: review id, csat: score}
              join:
                - {file: orders.csv, on: {order id: order id}, columns: {customer_ref: customer id}}
                - {file: dates.csv, on: {order id: order id}, columns: {timestamp: written}}
    """).tables["feedback"]
    cols(out, response_id=strs("V1", "V2", "V3"), customer_ref=strs("C1", "C2", "C9"),
         timestamp=utc("2024-03-01 10:00", "2024-03-02 10:00", "2024-03-03 10:00"))


def test_join_errors_name_the_hop(tmp_path):
    for name, text in {"reviews.csv": REVIEWS, "orders.csv": ORDERS, "customers.csv": CUSTOMERS}.items():
        raw_file(tmp_path, name, text)
    nested = """
        tables:
          feedback:
            - file: reviews.csv
              columns: {response_id: review id, csat: score}
              join:
                file: orders.csv
                on: {order id: order id}
                join: {file: customers.csv, on: {client: customer id}, columns: {customer_ref: customer unique id}}
    """
    error = fails(tmp_path, nested, r"join 1.1 on customers.csv: key column\(s\) \['client'\] not in the file joined "
                                    r"from; columns present: \['customer id', 'order id', 'status'\]")
    assert error.column == "client"
    twice = nested.replace("on: {client: customer id}", "on: {customer id: customer id}").replace(
        "join:\n                file: orders.csv", "join:\n                file: orders.csv\n                columns: {customer_ref: customer id}")
    path = tmp_path / "twice.yml"
    path.write_text(textwrap.dedent(twice), encoding="utf-8")
    with pytest.raises(SourceError, match=r"join.join: column\(s\) \['customer_ref'\] mapped twice"):
        load_mapping(path)


# --- 4. aggregation on a key -----------------------------------------------------------------
def test_aggregate_sums_payments_per_order_and_keeps_first_and_last(tmp_path):
    raw_file(tmp_path, "payments.csv", """
        order;customer;paid;at;kind
        O1;C1;10,50;2024-03-02 10:00;card
        O2;C2;5;2024-03-01 09:00;voucher
        O1;C1;4,50;2024-03-01 08:00;voucher
        O1;C1;;2024-03-03 08:00;
        ;C3;7;2024-03-04 08:00;card
    """)
    staged = run(tmp_path, """
        defaults: {timezone: UTC, sep: ";", decimal: ","}
        tables:
          orders:
            - file: payments.csv
              columns: {order_id: order, customer_ref: customer, revenue: paid, timestamp: at, product: kind}
              aggregate:
                by: order_id
                columns: {revenue: sum, timestamp: min}
    """)
    out = staged.tables["orders"]
    cols(out, order_id=strs("O1", "O2", None), customer_ref=strs("C1", "C2", "C3"), revenue=floats(15.0, 5.0, 7.0),
         timestamp=utc("2024-03-01 08:00", "2024-03-01 09:00", "2024-03-04 08:00"),
         product=strs("card", "voucher", "card"), _row=pd.Series([2, 3, 6], dtype="int64"))
    logged = staged.log.query("step == 'aggregate'")[["rule", "rows", "detail"]].values.tolist()
    assert logged == [["rows combined into one row per key", 2,
                       "5 rows -> 3 by order_id (revenue: sum, timestamp: min; other columns: first non-blank)"]]


def test_aggregate_functions_on_a_small_frame():
    frame = pd.DataFrame({"k": strs("a", "b", "a", "a"), "x": floats(1, np.nan, 3, np.nan),
                          "t": utc("2024-01-02", "2024-01-01", "2024-01-03", "2024-01-01"),
                          "s": strs(None, "q", "p", "r")})
    out = reshape.aggregate(frame, ["k"], {"x": "count", "t": "max", "s": "last"})
    assert_frame_equal(out, pd.DataFrame({"k": strs("a", "b"), "x": pd.Series([2, 0], dtype="int64"),
                                          "t": utc("2024-01-03", "2024-01-01"), "s": strs("r", "q")}))
    out = reshape.aggregate(frame, ["k"], {"x": "sum", "t": "min"}, default="last")
    assert_frame_equal(out, pd.DataFrame({"k": strs("a", "b"), "x": floats(4, np.nan),          # blank sum stays blank
                                          "t": utc("2024-01-01", "2024-01-01"), "s": strs("r", "q")}))
    empty = reshape.aggregate(frame.iloc[:0], ["k"], {"x": "sum"})
    assert empty.empty and list(empty.columns) == ["k", "x", "t", "s"]
    one = reshape.aggregate(frame.iloc[:1], ["k"], {"x": "sum"})
    assert_frame_equal(one, frame.iloc[:1])


@pytest.mark.parametrize("aggregate, expected", [
    ("{by: order_id, columns: {revenue: median}}", "function 'median' is not one of"),
    ("{by: order_id, columns: {product: sum}}", "'product': sum needs a number column, product is string"),
    ("{by: order_id, columns: {category: first}}", "column 'category' is not mapped in this entry"),
    ("{by: order_id, columns: {order_id: first}}", "column 'order_id' is a key in `by`"),
    ("{columns: {revenue: sum}}", r"expected \{by: \[canonical column"),
])
def test_aggregate_is_checked(tmp_path, aggregate, expected):
    path = tmp_path / "map.yml"
    path.write_text("tables: {orders: [{file: p.csv, columns: {order_id: o, customer_ref: c, timestamp: t, "
                    f"revenue: r, product: k}}, aggregate: {aggregate}}}]}}", encoding="utf-8")
    with pytest.raises(SourceError, match=expected):
        load_mapping(path)


# --- 5. column names with any characters -----------------------------------------------------
def test_column_names_with_colons_dots_spaces_and_marks_work_everywhere(tmp_path):
    raw_file(tmp_path, "log.csv", """
        case:concept:name,case:channel,concept:name,time:timestamp,emp.var.rate,Consent provided?
        c1,Internet,Create,2011-10-11 13:45:40+02:00,1.1,yes
        c1,Internet,Send,2011-10-12 09:00:00+02:00,1.1,yes
        c2,Post,Create,2011-10-13 10:00:00+02:00,-0.1,no
    """)
    raw_file(tmp_path, "cases.csv", "case id,case:group\nc1,Group 1\nc2,Group 2\n")
    out = run(tmp_path, """
        tables:
          events:
            - file: log.csv
              where: "`concept:name` == 'Create' and `Consent provided?` == 'yes'"
              columns:
                event_id: {template: "{case:concept:name}-{concept:name}-{emp.var.rate}"}
                customer_ref: case:concept:name
                timestamp: time:timestamp
                channel: case:channel
                text: {from: emp.var.rate}
              join: {file: cases.csv, on: {"case:concept:name": case id}, columns: {contact_reason: "case:group"}}
              constants: {touchpoint: order}
    """).tables["events"]
    cols(out, event_id=strs("c1-Create-1.1"), customer_ref=strs("C1"), timestamp=utc("2011-10-11 11:45:40"),
         channel=strs("web"), contact_reason=strs("Group 1"), text=strs("1.1"))


def test_template_parts_allow_any_name_and_escape_braces():
    assert reshape.template_parts("{case:concept:name}-{{x}}") == [("", "case:concept:name"), ("-{x}", None)]
    assert reshape.template_fields("{ Kunde seit }/{a.b}") == ["Kunde seit", "a.b"]
    for bad, problem in (("{}", "empty braces"), ("a}", "unmatched '}'"), ("plain", "name the source columns")):
        with pytest.raises(ValueError, match=problem):
            reshape.template_parts(bad)


def test_melt_with_names_holding_colons(tmp_path):
    raw_file(tmp_path, "cases.csv", "case:id,case:start,case:end\nc1,2024-03-01 10:00,2024-03-02 11:00\nc2,2024-03-05 09:00,\n")
    out = run(tmp_path, """
        defaults: {timezone: UTC}
        tables:
          events:
            - file: cases.csv
              columns: {customer_ref: "case:id"}
              constants: {channel: web}
              melt: {id: "case:id", timestamps: {"case:start": {touchpoint: order}, "case:end": {touchpoint: complaint}}}
    """).tables["events"]
    cols(out, event_id=strs("c1-order", "c1-complaint", "c2-order"),
         timestamp=utc("2024-03-01 10:00", "2024-03-02 11:00", "2024-03-05 09:00"))


# --- 6. score scales and "not applicable" codes -----------------------------------------------
def test_csat_scale_sets_csat_max_and_missing_codes_become_blank(tmp_path):
    raw_file(tmp_path, "r.csv", "id,s,rec\nR1,0,10\nR2,10,99\nR3,k.A.,k.A.\nR4,7,n/a\n")
    staged = run(tmp_path, """
        tables:
          feedback:
            - file: r.csv
              columns:
                response_id: id
                csat: {from: s, scale: [0, 10], missing: ["k.A."]}
                nps: {from: rec, scale: [0, 10], missing: [99, "k.A.", "n/a"]}
    """)
    cols(staged.tables["feedback"], csat=floats(0, 10, np.nan, 7), csat_max=floats(10, 10, 10, 10),
         csat_min=floats(0, 0, 0, 0), nps=floats(10, np.nan, np.nan, np.nan))
    assert staged.log.query("step == 'na_values'")[["rows", "detail"]].values.tolist() == [
        [3, "nps (['99', 'k.A.', 'n/a'])"], [1, "csat (['k.A.'])"]]


def test_without_a_scale_csat_max_and_csat_min_stay_blank(tmp_path):
    raw_file(tmp_path, "r.csv", "id,s\nR1,4\n")
    cols(run(tmp_path, feedback_map()).tables["feedback"], csat_max=floats(np.nan), csat_min=floats(np.nan))


@pytest.mark.parametrize("spec, expected", [
    ("nps: {from: s, scale: [1, 10]}", "NPS is defined only on the 0-10 recommend question, this one is \\[1, 10\\]; "
                                       "map it as `csat: \\{from: ..., scale: \\[1, 10\\]\\}`"),
    ("ces: {from: s, scale: [1, 5]}", "ces is defined on \\[1, 7\\] only"),
    ("csat: {from: s, scale: [1, 2]}", "at least three points"),
    ("csat: {from: s, scale: [1, 5.5]}", "two whole numbers"),
    ("comment: {from: s, scale: [1, 5]}", "`scale` applies to the scores"),
    ("csat: {from: s, scale: [1, 10]}\n        csat_max: {constant: 10}", "`csat_max` comes from the csat `scale`"),
])
def test_scales_that_do_not_fit_the_score_are_refused(tmp_path, spec, expected):
    path = tmp_path / "map.yml"
    path.write_text(f"tables:\n  feedback:\n    - file: r.csv\n      columns:\n        response_id: id\n        {spec}\n",
                    encoding="utf-8")
    with pytest.raises(SourceError, match=expected):
        load_mapping(path)


def test_the_raw_gate_checks_csat_against_each_answers_scale(tmp_path):
    raw_file(tmp_path, "r.csv", "id,s\nR1,10\nR2,0\nR3,11\n")
    raw_file(tmp_path, "old.csv", "id,s\nS1,5\nS2,6\n")
    staged = run(tmp_path, """
        tables:
          feedback:
            - file: r.csv
              columns: {response_id: id, csat: {from: s, scale: [1, 10]}}
            - file: old.csv
              columns: {response_id: id, csat: s}
    """)
    gate = validate.run_gate({"feedback": staged.tables["feedback"]}, TAX, "raw", tolerance=0.0)
    csat = gate.results.loc[lambda d: d["column"].fillna("").str.contains("csat") & d["expectation"].ne("expect_column_type_to_be"),
                            ["expectation", "column", "unexpected_count"]]
    assert csat.values.tolist() == [
        ["expect_column_values_to_be_between", "csat", 1],                  # S2 = 6 on the default 1-5 scale
        ["expect_column_pair_values_a_to_be_greater_than_b", "csat_max, csat", 1],    # R3 = 11 > 10
        ["expect_column_pair_values_a_to_be_greater_than_b", "csat, csat_min", 1],    # R2 = 0 < 1
        ["expect_column_values_to_be_between", "csat", 0],
    ]
    cleaned = clean.clean_tables({"feedback": staged.tables["feedback"]}, TAX, KEY)
    assert cleaned.tables["feedback"]["csat"].tolist() == pytest.approx([10, np.nan, np.nan, 5, np.nan], nan_ok=True)
    processed = validate.run_gate(cleaned.tables, TAX, "processed")
    assert processed.failed == []


# --- 7. dates ----------------------------------------------------------------------------------
def test_date_only_values_keep_their_calendar_date_and_times_are_local(tmp_path):
    raw_file(tmp_path, "c.csv", "K,E,D,F\n1,ja,2016-01-01,01.02.2016\n2,ja,2016-01-01 00:30,01.02.2016 00:30\n")
    out = run(tmp_path, """
        defaults: {timezone: Europe/Berlin}
        tables:
          customers:
            - file: c.csv
              columns:
                customer_ref: K
                contact_consent: E
                signup_date: D
                churn_date: {from: F, dates: ["%d.%m.%Y %H:%M", "%d.%m.%Y"]}
              constants: {lead_date: 2015-12-31}
    """).tables["customers"]
    cols(out, signup_date=utc("2016-01-01 00:00", "2015-12-31 23:30"),
         churn_date=utc("2016-02-01 00:00", "2016-01-31 23:30"), lead_date=utc("2015-12-31", "2015-12-31"))


def test_epoch_dates_in_milliseconds_and_seconds(tmp_path):
    raw_file(tmp_path, "r.csv", "id,ms,s\nR1,1562135719091,1562135719\nR2,1538035078776.0,\n")
    out = run(tmp_path, """
        tables:
          feedback:
            - file: r.csv
              columns: {response_id: id, timestamp: {from: ms, dates: epoch_ms}}
              ignore: [s]
            - file: r.csv
              columns: {response_id: {template: "{id}-s"}, timestamp: {from: s, dates: [epoch_s]}}
              ignore: [ms]
    """).tables["feedback"]
    cols(out, timestamp=utc("2019-07-03 06:35:19.091", "2018-09-27 07:57:58.776", "2019-07-03 06:35:19", None))


def test_parquet_date_cells_keep_their_calendar_date(tmp_path):
    (tmp_path / "raw").mkdir()
    pd.DataFrame({"id": ["R1"], "d": [pd.Timestamp("2024-03-01").date()]}).to_parquet(tmp_path / "raw" / "r.parquet")
    out = run(tmp_path, """
        defaults: {timezone: America/New_York}
        tables:
          feedback:
            - {file: r.parquet, columns: {response_id: id, timestamp: d}}
    """).tables["feedback"]
    cols(out, timestamp=utc("2024-03-01"))


def test_date_only_helpers():
    assert reshape.date_only_format("%d.%m.%Y") and not reshape.date_only_format("%d.%m.%Y %H:%M")
    assert reshape.date_only_text(strs("2016-01-01", "05.01.2024", "2016-01-01 00:00", "2016-01-01T10Z", None)) \
        .tolist() == [True, True, False, False, False]


# --- 8. no customers table ------------------------------------------------------------------------
def test_a_complaint_log_without_customers_maps_and_cleans(tmp_path):
    raw_file(tmp_path, "complaints.csv", "Complaint ID,Date received,Submitted via,client\n1,2024-03-01,Web,\n"
                                         "2,2024-03-02,Post,A7\n3,2024-03-03,Web,A7\n")
    staged = run(tmp_path, """
        tables:
          events:
            - file: complaints.csv
              columns: {event_id: Complaint ID, customer_ref: client, timestamp: Date received, channel: Submitted via}
              constants: {touchpoint: complaint}
    """)
    cleaned = clean.clean_tables(staged.tables, TAX, KEY)
    assert cleaned.tables["events"]["event_id"].tolist() == ["1", "2", "3"]
    assert cleaned.tables["events"]["customer_id"].isna().tolist() == [True, False, False]
    assert len(cleaned.tables["customers"]) == 1
    assert cleaned.log.iloc[0][["rule", "rows"]].tolist() == [clean.DERIVED_RULE, 1]


# --- 9. language ---------------------------------------------------------------------------------
def test_mapped_language_names_become_iso_codes_and_others_are_kept(tmp_path):
    raw_file(tmp_path, "r.csv", "id,lang\nR1,de\nR2,German\nR3,Deutsch\nR4,fr-CH\nR5,Französisch\nR6,Italian\n"
                                "R7,sw\nR8,Klingon\nR9,\nR10,EN\n")
    staged = run(tmp_path, "tables: {feedback: [{file: r.csv, columns: {response_id: id, language: lang}}]}")
    cols(staged.tables["feedback"],
         language=strs("de", "de", "de", "fr", "fr", "it", "sw", "klingon", None, "en"))
    logged = staged.log.query("step == 'codes'")[["rule", "rows", "detail"]].values.tolist()
    assert logged == [["language names normalised to ISO 639-1 codes", 7,
                       "language: 'German' -> 'de', 'Deutsch' -> 'de', 'fr-CH' -> 'fr'"]]


# --- 10. word lists for a taxonomy anywhere -------------------------------------------------------
def test_word_lists_beside_the_taxonomy_win_else_the_shipped_ones(tmp_path):
    taxonomy = tmp_path / "acme" / "taxonomy.yml"
    taxonomy.parent.mkdir()
    (taxonomy.parent / "stopwords.yml").write_text("de: [und]\n", encoding="utf-8")
    assert config.word_list_path(taxonomy, "stopwords.yml") == taxonomy.parent / "stopwords.yml"
    assert config.word_list_path(taxonomy, "sentiment.yml") == config.SHIPPED_CONFIG_DIR / "sentiment.yml"
    stopwords, lexicon = config.load_word_lists(taxonomy)
    assert stopwords == {"de": ["und"]}
    assert lexicon == config.load_yaml(config.find_project_dir(__file__) / "config" / "sentiment.yml")
    with pytest.raises(config.ConfigError, match="unknown word list"):
        config.word_list_path(taxonomy, "taxonomy.yml")


def test_multiply_gives_line_revenue_that_aggregation_sums_per_invoice(tmp_path):
    raw_file(tmp_path, "lines.csv", """
        InvoiceNo,Quantity,UnitPrice,InvoiceDate,CustomerID
        536365,6,"2,55",2010-12-01 08:26:00,17850
        536365,-2,"3,39",2010-12-01 08:26:00,17850
        C536379,-1,"27,50",2010-12-01 09:41:00,14527
    """)
    staged = run(tmp_path, """
        defaults: {timezone: Europe/London, decimal: ","}
        tables:
          orders:
            - file: lines.csv
              columns:
                order_id: InvoiceNo
                customer_ref: CustomerID
                timestamp: InvoiceDate
                revenue: {from: Quantity, multiply: UnitPrice}
              aggregate: {by: order_id, columns: {revenue: sum}}
    """)
    cols(staged.tables["orders"], order_id=strs("536365", "C536379"), revenue=floats(6 * 2.55 - 2 * 3.39, -27.5))
    assert staged.log.query("step == 'multiply'")["rows"].tolist() == [3]
    path = tmp_path / "bad.yml"
    path.write_text("tables: {orders: [{file: l.csv, columns: {order_id: o, customer_ref: c, timestamp: t, "
                    "product: {from: p, multiply: q}}}]}", encoding="utf-8")
    with pytest.raises(SourceError, match="`multiply` names a source number column"):
        load_mapping(path)


# --- 11. comments labelled by hand ------------------------------------------------------------------
LABEL_TAX = Taxonomy({**TAX.data, "themes": {
    "invoice": {"en": "Invoice", "de": "Rechnung"},
    "delivery": {"en": "Delivery", "de": "Lieferung", "aliases": ["Versand"]},
    "price": {"en": "Price"},
}})
LABELLED = """
    tables:
      feedback:
        - file: fb.csv
          columns: {response_id: id, customer_ref: kunde, nps: score, comment: text}
      labels:
        - file: lab.csv
          columns:
            response_id: Antwort
            sentiment: {from: Stimmung, values: {"-1": negative, "0": neutral, "1": positive}}
            themes: {from: Themen, values: {Preis: price}}
          ignore: [Bearbeiter]
"""


def labelled_files(tmp_path: Path) -> None:
    raw_file(tmp_path, "fb.csv", """
        id,kunde,score,text
        K0000001-1,K0000001,3,Rechnung falsch und Versand langsam
        R2,,2,ganz gut
        R3,,7,zu teuer
        R4,,8,kam spät
    """)
    raw_file(tmp_path, "lab.csv", """
        Antwort,Stimmung,Themen,Bearbeiter
        K0000001-1,-1,Rechnung; Versand|invoice,A
        R2,Positive,,A
        R3,neu,Preis,B
        R4,1,"delivery,foo",B
        R9,NEG,price,B
    """)


def run_labels(tmp_path: Path, mapping: str = LABELLED):
    path = tmp_path / "labels.yml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return map_sources(path, tmp_path / "raw", LABEL_TAX)


def test_labels_entry_maps_sentiment_codes_and_theme_lists(tmp_path):
    labelled_files(tmp_path)
    staged = run_labels(tmp_path)
    cols(staged.tables["labels"],
         response_id=strs("K0000001-1", "R2", "R3", "R4", "R9"),
         sentiment=strs("negative", "positive", "neutral", "positive", "negative"),   # value map, case, aliases
         themes=strs("invoice;delivery", "", "price", "delivery;foo", "price"))       # per code; blank = no theme
    assert list(staged.tables["labels"].columns) == ["response_id", "sentiment", "themes", "_file", "_row"]
    logged = staged.log.query("table == 'labels'").set_index("rule")["rows"].to_dict()
    assert logged["values mapped by the value map"] == 2 and logged["codes mapped by the value map"] == 1
    assert logged["blank cells read as an empty list (no code applies)"] == 1
    assert logged["values not in taxonomy section themes (left for the validation gate)"] == 1


def test_raw_gate_counts_unknown_codes_and_labels_of_other_responses_masked(tmp_path):
    labelled_files(tmp_path)
    staged = run_labels(tmp_path)
    gate = validate.run_gate(clean.pseudonymise_staged(staged.tables, KEY), LABEL_TAX, "raw", tolerance=0.0)
    rows = gate.results.loc[lambda d: d["table"].eq("labels") & d["expectation"].str.contains("in_set|regex"),
                            ["expectation", "column", "severity", "outcome", "unexpected_count", "checked", "examples"]]
    assert rows.values.tolist() == [
        ["expect_column_values_to_be_in_set", "sentiment", "critical", "passed", 0, 5, ""],
        ["expect_column_values_to_match_regex", "themes", "critical", "failed", 1, 5, "themes='delivery;foo' (lab.csv row 5)"],
        ["expect_column_values_to_be_in_set", "response_id", "warning", "warned", 1, 5, "response_id=[masked] (lab.csv row 6)"],
    ]
    assert gate.failed == ["labels.themes: expect_column_values_to_match_regex"]
    assert "labels.response_id: expect_column_values_to_be_in_set" in gate.warnings


def test_cleaning_keeps_labels_of_known_responses_under_their_processed_ids(tmp_path):
    labelled_files(tmp_path)
    cleaned = clean.clean_tables(run_labels(tmp_path).tables, LABEL_TAX, KEY)
    response = cleaned.tables["feedback"]["response_id"].iloc[0]
    assert response.startswith("C") and response.endswith("-1") and "K0000001" not in response   # CRM number pseudonymised
    assert_frame_equal(cleaned.tables["labels"], pd.DataFrame({
        "response_id": strs(response, "R2", "R3", "R4"),
        "sentiment": strs("negative", "positive", "neutral", "positive"),
        "themes": strs("invoice;delivery", "", "price", None)}))          # a list with an unknown code: not labelled
    logged = cleaned.log.query("table == 'labels'").set_index("rule")["rows"].to_dict()
    assert logged["unknown code set to missing"] == 1 and logged["labels without sentiment or themes dropped"] == 0
    assert logged["labels of responses not in feedback dropped"] == 1
    assert "customer ids pseudonymised" not in logged
    assert validate.run_gate(cleaned.tables, LABEL_TAX, "processed").failed == []
    classes = sentiment.training_classes(cleaned.tables["feedback"], cleaned.tables["labels"])
    assert classes.tolist() == ["negative", "positive", "neutral", "positive"]     # R2 scored 2, labelled positive


def test_labels_is_optional_and_a_sentiment_only_file_leaves_themes_unlabelled(tmp_path):
    labelled_files(tmp_path)
    without = run_labels(tmp_path, "tables: {feedback: [{file: fb.csv, columns: {response_id: id, nps: score}, "
                                   "ignore: [kunde, text]}]}")
    assert "labels" not in without.tables and "labels" not in clean.clean_tables(without.tables, LABEL_TAX, KEY).tables
    only = run_labels(tmp_path, LABELLED.replace("themes: {from: Themen, values: {Preis: price}}", "")
                      .replace("ignore: [Bearbeiter]", "ignore: [Bearbeiter, Themen]"))
    assert only.tables["labels"]["themes"].isna().all()
    unlabelled = run_labels(tmp_path, LABELLED.replace("values: {Preis: price}}", "values: {Preis: price}, default: null}"))
    assert unlabelled.tables["labels"]["themes"].isna().tolist() == [False, True, False, False, False]


def test_labels_entry_needs_a_response_id_and_one_label_per_response(tmp_path):
    labelled_files(tmp_path)
    with pytest.raises(SourceError, match=r"required column\(s\) \['response_id'\] of table labels"):
        run_labels(tmp_path, "tables: {labels: [{file: lab.csv, columns: {sentiment: Stimmung}, ignore: '*'}]}")
    raw_file(tmp_path, "lab.csv", "Antwort,Stimmung\nR2,positive\nR2,negative\n")
    twice = run_labels(tmp_path, "tables: {labels: [{file: lab.csv, columns: {response_id: Antwort, sentiment: Stimmung}}]}")
    with pytest.raises(clean.CleanError, match="duplicate key in table 'labels'"):
        clean.clean_tables(twice.tables, LABEL_TAX, KEY)


@given(values=st.lists(st.one_of(st.none(), st.sampled_from(["K0000001", "k0000001", "ß", "", "x y"])), max_size=12),
       candidates=st.lists(st.one_of(st.none(), st.sampled_from(["K0000001", "ß", "", "z"])), max_size=6))
def test_text_isin_agrees_with_pandas_isin(values, candidates):
    series = pd.Series(values, dtype="str", index=range(100, 100 + len(values)))
    for given_as in (list(candidates), pd.Index(candidates, dtype="str"), pd.Series(candidates, dtype="str").unique()):
        assert_series_equal(reshape.text_isin(series, given_as), series.isin(given_as))


@settings(deadline=None)                  # DuckDB matches the keys: its start-up varies with the load
@given(left=st.lists(st.one_of(st.none(), st.sampled_from(["V1", "V2", "V3", "v1", "", "ß"])), max_size=12),
       right=st.lists(st.sampled_from(["V1", "V2", "ß", "W9", ""]), unique=True, max_size=5),
       numbers=st.booleans())
def test_a_join_by_the_lookup_index_agrees_with_a_left_merge(left, right, numbers):
    """Each batch of a `join` finds its rows of the lookup side by a hash join on DuckDB for a text
    key (by the lookup's index otherwise; a merge would hash the whole lookup again per batch).
    Same rows, columns, blanks and matches as a left merge."""
    from cxlib.sources.entry import _left_join
    src = pd.DataFrame({"visitor": pd.array(left, dtype="str"), "n": np.arange(len(left))},
                       index=range(50, 50 + len(left)))
    lookup = pd.DataFrame({"J:visitor": pd.Series(right, dtype="str"),
                           "J:crm": (pd.Series(np.arange(len(right)) * 1.5) if numbers
                                     else pd.Series([f"C{i}" for i in range(len(right))], dtype="str"))})
    indexed = lookup.set_axis(pd.Index(lookup["J:visitor"]))
    joined, matched = _left_join(src, indexed, ["visitor"], ["J:visitor"])
    merged = src.reset_index(drop=True).merge(lookup, how="left", left_on=["visitor"], right_on=["J:visitor"], indicator="m")
    assert_frame_equal(joined, merged.drop(columns="m"))
    assert matched.tolist() == merged["m"].eq("both").tolist()
    by_two, matched_two = _left_join(src.assign(k=1), lookup.assign(k=1), ["visitor", "k"], ["J:visitor", "k"])
    assert matched_two.tolist() == matched.tolist()             # several keys: a merge
    assert_series_equal(by_two["J:crm"], joined["J:crm"])


@settings(deadline=None)                  # DuckDB counts the keys: its start-up varies with the load
@given(keys=st.lists(st.one_of(st.none(), st.sampled_from(["V1", "V2", "v1", "", "ß", "ß "])), max_size=15),
       text=st.booleans())
def test_the_repeated_keys_of_a_lookup_file_are_pandas_duplicated(keys, text):
    """The lookup side's repeated keys (the join's 'key is not unique' error) are counted on
    DuckDB for a text key, as `duplicated(keep=False)` finds them."""
    from cxlib.sources.lookup import repeated as _repeated
    frame = pd.DataFrame({"k": pd.Series(keys, dtype="str" if text else "object"), "n": np.arange(len(keys))},
                         index=range(7, 7 + len(keys)))
    assert_series_equal(_repeated(frame, ["k"]), frame.duplicated(["k"], keep=False), check_names=False)
    assert_series_equal(_repeated(frame, ["k", "n"]), frame.duplicated(["k", "n"], keep=False), check_names=False)
