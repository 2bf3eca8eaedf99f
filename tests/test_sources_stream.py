"""The source mapping in batches (`sources.SourceStream`, `map_sources(batch_rows=...)`): the
staged tables, inputs and log are those of one batch whatever the batch size (demo, the five
shapes, the real example exports), no batch is built from more than `batch_rows` source rows,
every error has the same message, file, column and rows in tiny batches, totals over the entry
decide about unparseable values, and mapping a large CSV needs memory of the batch, not the file.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import test_bad_input_data
import test_mapping_features
import test_sources
from cxlib import demo, schema, sources
from cxlib.sources import SourceError, SourceStream, map_sources

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
SHAPES = ROOT / "tests" / "data" / "shapes"
WHOLE = 10 ** 9                       # one batch per entry
TAX = test_sources.TAX


def raw_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def mapping_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def assert_same_staged(staged: sources.Staged, whole: sources.Staged, *, details: bool) -> None:
    """Tables and inputs equal; the log equal in (table, step, rule, rows), and in detail when asked."""
    assert list(staged.tables) == list(whole.tables)
    for table in whole.tables:
        assert_frame_equal(staged.tables[table], whole.tables[table], obj=table)
    assert_frame_equal(staged.inputs, whole.inputs)
    columns = sources.LOG_COLUMNS if details else ["table", "step", "rule", "rows"]
    assert_frame_equal(staged.log[columns], whole.log[columns])


def assert_same_in_batches(mapping: Path, raw_dir: Path, taxonomy, sizes: tuple[int, ...]) -> sources.Staged:
    whole = map_sources(mapping, raw_dir, taxonomy, batch_rows=WHOLE)
    for size in sizes:
        staged = map_sources(mapping, raw_dir, taxonomy, batch_rows=size)
        assert_same_staged(staged, whole, details=False)
        detailed = ~whole.log["step"].isin(["codes", "ids"])      # examples of these come from the first batch
        assert staged.log.loc[detailed, "detail"].tolist() == whole.log.loc[detailed, "detail"].tolist()
    return whole


# --- the same staged tables in any batch size ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_demos(tmp_path_factory) -> dict[str, Path]:
    """Demo exports of 30 customers: contacts as Excel workbooks (one chunk) or Parquet files (two)."""
    folder = tmp_path_factory.mktemp("tiny_demo")
    demo.write_demo(folder / "excel", customers=30, seed=3)
    demo.write_demo(folder / "parquet", customers=30, seed=3, chunk_customers=15)
    return {"excel": folder / "excel", "parquet": folder / "parquet"}


@pytest.mark.slow                     # builds two demos
@pytest.mark.parametrize("kind", ["excel", "parquet"])
def test_the_demo_maps_the_same_in_batches_of_7_and_101(tiny_demos, kind):
    raw = tiny_demos[kind]
    assert sorted(p.suffix for p in raw.glob("kontakte_*")) == [f".{'xlsx' if kind == 'excel' else 'parquet'}"] * 8
    whole = assert_same_in_batches(ROOT / "config" / "sources" / "demo.yml", raw, ROOT / "config" / "taxonomy.yml",
                                   (7, 101))
    assert len(whole.tables["events"]) > 500 and whole.inputs["rows"].sum() > 600


@pytest.mark.parametrize("shape", ["survey", "tickets", "orders_reviews", "ratings", "complaints"])
def test_the_five_shapes_map_the_same_in_batches_of_7_and_31(shape):
    taxonomy = ROOT / "config" / ("taxonomy.yml" if shape == "survey" else "taxonomy_generic.yml")
    whole = assert_same_in_batches(SHAPES / f"{shape}.yml", SHAPES / shape, taxonomy, (7, 31))
    assert sum(len(t) for t in whole.tables.values()) > 7


@pytest.mark.real_data
@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "config" / "sources").glob("*.yml") if p.stem != "demo"))
def test_the_real_example_exports_map_the_same_in_batches_of_997_and_4999(name):
    if not (REAL / name).is_dir():
        pytest.skip(f"{REAL / name} not present")
    whole = assert_same_in_batches(ROOT / "config" / "sources" / f"{name}.yml", REAL / name,
                                   ROOT / "config" / "taxonomy_generic.yml", (997, 4999))
    assert whole.inputs["rows"].sum() > 0


# --- batches are bounded --------------------------------------------------------------------------------
BOUNDED_MAP = """
    tables:
      feedback:
        - file: survey.csv
          columns: {response_id: Nr, timestamp: Datum, nps: NPS}
        - file: survey.parquet
          columns: {response_id: Nr, timestamp: Datum, nps: NPS, comment: Ref}
        - file: survey.xlsx
          columns: {response_id: Nr, timestamp: Datum, nps: NPS}
      events:
        - file: visits.csv
          columns: {customer_ref: Kunde, channel: {constant: web}}
          melt: {id: Nr, timestamps: {Start: {touchpoint: order}, Ende: {touchpoint: activation}}}
"""


def bounded_files(tmp_path: Path, rows: int = 50) -> None:
    frame = pd.DataFrame({"Nr": [f"R{i}" for i in range(rows)],
                          "Datum": [f"2024-02-{1 + i % 28:02d} 10:00" for i in range(rows)],
                          "NPS": [i % 11 for i in range(rows)]})
    (tmp_path / "raw").mkdir(parents=True)
    frame.to_csv(tmp_path / "raw" / "survey.csv", index=False)
    refs = pd.array([2 ** 60 + i if i != rows - 3 else None for i in range(rows)], dtype="Int64")   # a blank late
    frame.assign(Ref=refs).to_parquet(tmp_path / "raw" / "survey.parquet", row_group_size=16)
    frame.to_excel(tmp_path / "raw" / "survey.xlsx", index=False)
    pd.DataFrame({"Nr": [f"V{i}" for i in range(rows)], "Kunde": [f"K{i}" for i in range(rows)],
                  "Start": ["2024-01-01 09:00"] * rows,
                  "Ende": ["2024-01-02 09:00" if i % 2 else "" for i in range(rows)]}
                 ).to_csv(tmp_path / "raw" / "visits.csv", index=False)


def test_no_batch_is_built_from_more_than_batch_rows_source_rows(tmp_path):
    bounded_files(tmp_path)
    mapping = mapping_file(tmp_path, BOUNDED_MAP)
    stream = SourceStream(mapping, tmp_path / "raw", TAX, batch_rows=8)
    batches = list(stream.batches())
    sizes = {f: [b[schema.SOURCE_ROW].nunique() for t, b in batches if b[schema.SOURCE_FILE].iloc[0] == f]
             for f in ("survey.csv", "survey.parquet", "survey.xlsx", "visits.csv")}
    assert sizes == {f: [8] * 6 + [2] for f in sizes}                       # 50 source rows each: 6 x 8 + 2
    spans = [b[schema.SOURCE_ROW].max() - b[schema.SOURCE_ROW].min() + 1 for _, b in batches]
    assert max(spans) == 8
    assert [len(b) for t, b in batches if t == "events"] == [12] * 6 + [3]  # a melt makes more rows from them
    whole = map_sources(mapping, tmp_path / "raw", TAX, batch_rows=WHOLE)
    for table in ("feedback", "events"):
        stacked = pd.concat([b for t, b in batches if t == table], ignore_index=True)
        assert_frame_equal(stacked, whole.tables[table])
    assert_frame_equal(stream.inputs, whole.inputs)
    assert_frame_equal(stream.log, whole.log)
    comments = whole.tables["feedback"].query("_file == 'survey.parquet'")["comment"]
    assert comments.iloc[0] == str(float(2 ** 60)) and comments.isna().sum() == 1   # as a whole read types it


def test_a_glob_stacks_its_files_into_batches_of_batch_rows(tmp_path):
    for k in range(3):
        raw_file(tmp_path, f"crm_{k}.csv", "K,E\n" + "".join(f"K{k}{i},ja\n" for i in range(5)))
    mapping = mapping_file(tmp_path, "tables: {customers: [{file: crm_*.csv, columns: {customer_ref: K, "
                                     "contact_consent: {from: E, values: {ja: true}}}}]}")
    stream = SourceStream(mapping, tmp_path / "raw", TAX, batch_rows=4)
    batches = [b for _, b in stream.batches()]
    assert [len(b) for b in batches] == [4, 4, 4, 3]
    assert batches[1][schema.SOURCE_FILE].tolist() == ["crm_0.csv", "crm_1.csv", "crm_1.csv", "crm_1.csv"]
    assert stream.log.query("step == 'read'")[["rows", "detail"]].values.tolist() == [
        [5, "crm_0.csv"], [5, "crm_1.csv"], [5, "crm_2.csv"]]
    assert stream.log.query("step == 'values'")["rows"].tolist() == [15]


def test_log_and_inputs_come_after_the_last_batch_and_tables_name_the_mapped_ones(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E\nK1,ja\n")
    stream = SourceStream(mapping_file(tmp_path, "tables: {customers: [{file: crm.csv, columns: {customer_ref: K, "
                                                 "contact_consent: {from: E, values: {ja: true}}}}]}"),
                          tmp_path / "raw", TAX, batch_rows=1)
    assert stream.tables == ["customers"]
    with pytest.raises(RuntimeError, match="exhausted"):
        stream.log
    batches = stream.batches()
    next(batches)
    with pytest.raises(RuntimeError, match="exhausted"):
        stream.inputs
    assert list(batches) == []
    assert stream.inputs["rows"].tolist() == [1] and stream.log["step"].tolist() == ["read", "values"]
    with pytest.raises(ValueError, match="batch_rows"):
        SourceStream(tmp_path / "map.yml", tmp_path / "raw", TAX, batch_rows=0)


def test_notes_are_merged_over_batches_in_the_order_of_one_batch(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E,S\nK1,ja,a\nK2,ja,a\nK3,ja,x\nK4,ja,a\nK5,Ja,a\nk6,ja,a\n")
    mapping = mapping_file(tmp_path, """
        tables:
          customers:
            - file: crm.csv
              where: "S == 'a'"
              columns: {customer_ref: K, contact_consent: {from: E, values: {Ja: true, ja: true}}}
    """)
    whole = map_sources(mapping, tmp_path / "raw", TAX, batch_rows=WHOLE)
    staged = map_sources(mapping, tmp_path / "raw", TAX, batch_rows=2)     # where in batch 2, ids in batch 3 only
    assert whole.log[["step", "rows"]].values.tolist() == [["read", 6], ["where", 1], ["values", 5], ["ids", 1]]
    assert_frame_equal(staged.log, whole.log)


# --- errors are the same in tiny batches ----------------------------------------------------------------
def outcome(mapping_path, raw_dir, taxonomy, batch_rows: int):
    try:
        return map_sources(mapping_path, raw_dir, taxonomy, batch_rows=batch_rows)
    except SourceError as error:
        return error


class BatchSizes:
    """`map_sources` for the test modules: maps with one batch and with batches of 2 and of 3,
    asserts they agree (staged tables, inputs, log; or the error's message, file, column, rows)
    and returns (or raises) the result of one batch."""

    def __init__(self):
        self.calls = 0

    def __call__(self, mapping_path, raw_dir, taxonomy, **_):
        self.calls += 1
        whole = outcome(mapping_path, raw_dir, taxonomy, WHOLE)
        for size in (2, 3):
            small = outcome(mapping_path, raw_dir, taxonomy, size)
            if isinstance(whole, SourceError):
                assert isinstance(small, SourceError), f"batch_rows={size}: no error, one batch: {whole}"
                assert (str(small), small.file, small.column, small.rows) == \
                    (str(whole), whole.file, whole.column, whole.rows), f"batch_rows={size}"
            else:
                assert not isinstance(small, SourceError), f"batch_rows={size}: {small}"
                assert_same_staged(small, whole, details=False)
        if isinstance(whole, SourceError):
            raise whole
        return whole


def cases(module, names: list[str]) -> list:
    """pytest params (module, test name, keyword arguments), one per parametrised case."""
    out = []
    for name in names:
        marks = [m for m in getattr(getattr(module, name), "pytestmark", []) if m.name == "parametrize"]
        if not marks:
            out.append(pytest.param(module, name, {}, id=name))
            continue
        argnames = [a.strip() for a in marks[0].args[0].split(",")]
        for k, values in enumerate(marks[0].args[1]):
            values = values if len(argnames) > 1 else (values,)
            out.append(pytest.param(module, name, dict(zip(argnames, values)), id=f"{name}[{k}]"))
    return out


ERROR_CASES = [
    *cases(test_sources, [
        "test_empty_files_are_errors", "test_latin1_file_read_as_utf8_suggests_encoding",
        "test_utf8_file_read_as_latin1_is_stopped_before_garbling", "test_mapped_column_missing_from_file_hints_at_separator",
        "test_unmapped_column_not_ignored_is_an_error", "test_too_many_unparseable_dates_stop_with_rows_and_values",
        "test_unparseable_numbers_stop_and_show_at_most_five_rows", "test_unparseable_booleans_stop",
        "test_few_unparseable_dates_become_missing_and_are_logged", "test_bad_where_expression_names_mapping_and_entry",
        "test_join_key_not_unique_names_file_column_rows", "test_missing_file_lists_the_raw_folder",
        "test_excel_missing_sheet_lists_sheets", "test_glob_stacks_files_in_sorted_order_with_file_and_row",
        "test_melt_wide_row_into_events_blank_timestamps_make_no_row", "test_join_finds_the_customer_and_drops_unmatched",
        "test_test_accounts_flag_and_pii_columns", "test_reader_format_skiprows_and_quotechar",
        "test_glob_without_match_is_an_error", "test_required_column_unmapped_is_an_error",
        "test_excel_sheet_typed_cells_and_sheet_rows", "test_parquet_typed_columns",
        "test_where_derives_events_from_a_condition", "test_value_map_default_and_yaml_booleans",
        "test_taxonomy_aliases_normalise_case_blanks_umlauts_and_leave_unknown_codes",
        "test_mixed_date_formats_tried_in_order_and_timezone_to_utc"]),
    *cases(test_mapping_features, [
        "test_names_must_match_the_columns_of_a_file_without_header", "test_parquet_refuses_header_false",
        "test_row_number_over_several_files_asks_for_the_file_in_the_id", "test_join_errors_name_the_hop",
        "test_nested_join_finds_the_customer_of_a_review_through_its_order",
        "test_aggregate_sums_payments_per_order_and_keeps_first_and_last",
        "test_multiply_gives_line_revenue_that_aggregation_sums_per_invoice",
        "test_labels_entry_needs_a_response_id_and_one_label_per_response",
        "test_csv_without_header_takes_names_from_the_mapping_and_counts_rows_from_one",
        "test_excel_without_header_uses_the_names_and_sheet_rows",
        "test_row_number_and_lineage_templates_make_ids_for_files_without_ids", "test_a_list_of_joins_each_join_this_file",
        "test_column_names_with_colons_dots_spaces_and_marks_work_everywhere", "test_melt_with_names_holding_colons",
        "test_epoch_dates_in_milliseconds_and_seconds", "test_parquet_date_cells_keep_their_calendar_date",
        "test_mapped_language_names_become_iso_codes_and_others_are_kept",
        "test_labels_entry_maps_sentiment_codes_and_theme_lists"]),
    *cases(test_bad_input_data, [
        "test_utf8_crm_read_as_latin1_names_row_and_column_and_never_quotes_the_line",
        "test_latin1_crm_read_as_utf8_names_byte_row_and_column", "test_a_utf16_file_gets_the_utf16_advice_not_latin1",
        "test_a_crm_without_header_row_or_with_the_wrong_sep_is_named_without_quoting_its_first_row",
        "test_an_unparseable_value_is_shown_scrubbed_with_column_file_and_row",
        "test_a_duplicate_join_key_that_is_a_crm_number_is_masked",
        "test_case_and_blank_variants_of_a_customer_number_are_one_customer_and_counted",
        "test_a_missing_member_of_a_glob_with_expected_files_stops_the_run",
        "test_a_missing_export_names_the_file_the_raw_folder_and_the_files_present",
        "test_an_empty_export_is_named_with_its_size",
        "test_a_mapped_column_missing_from_the_export_is_named_with_the_columns_present",
        "test_a_latin1_survey_read_as_utf8_names_byte_row_and_column_of_a_comment_without_quoting_it",
        "test_conflicting_duplicate_customers_show_pseudonyms_and_the_differing_column",
        "test_record_ids_built_from_a_crm_number_in_any_case_are_shown_with_the_pseudonym",
        "test_case_variants_with_opposite_consent_stop_cleaning_and_case_sensitive_ids_keep_them_apart",
        "test_infinite_and_absurd_revenue_stops_the_gate_refunds_pass",
        "test_a_glob_that_matches_nothing_and_an_expected_file_outside_the_glob_are_errors",
        "test_the_small_survey_export_passes_mapping_gate_and_cleaning",
        "test_a_mapping_naming_a_column_the_export_lacks_names_mapping_entry_and_column",
        "test_scores_out_of_range_stop_the_gate_with_count_base_and_rows",
        "test_unknown_codes_stop_the_gate_with_the_value_scrubbed_and_the_rows"]),
]


@pytest.mark.parametrize("module, name, kwargs", ERROR_CASES)
def test_the_mapping_tests_give_the_same_results_and_errors_in_batches_of_2_and_3(tmp_path, monkeypatch, module,
                                                                                  name, kwargs):
    both = BatchSizes()
    monkeypatch.setattr(module, "map_sources", both)
    test = getattr(module, name)
    assert set(inspect.signature(test).parameters) == {"tmp_path", *kwargs}
    test(tmp_path, **kwargs)
    assert both.calls >= 1


def test_an_error_found_at_the_end_of_an_entry_comes_after_its_batches(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E,S\n" + "".join(f"K{i},ja,{'x' if i > 4 else '2024-01-01'}\n" for i in range(8)))
    stream = SourceStream(mapping_file(tmp_path, "tables: {customers: [{file: crm.csv, columns: {customer_ref: K, "
                                                 "contact_consent: {from: E, values: {ja: true}}, signup_date: S}}]}"),
                          tmp_path / "raw", TAX, batch_rows=3)
    batches = stream.batches()
    assert [len(next(batches)[1]) for _ in range(3)] == [3, 3, 2]
    with pytest.raises(SourceError, match=r"3 of 8 values are not valid dates") as info:
        next(batches)
    assert info.value.rows == [7, 8, 9]


def test_a_decoding_error_after_a_byte_order_mark_names_the_right_byte_and_row(tmp_path):
    path = tmp_path / "raw" / "crm.csv"
    path.parent.mkdir()
    path.write_bytes(b"\xef\xbb\xbfK,E\nK1,ja\nK2,j\xe4\n")
    mapping = mapping_file(tmp_path, "tables: {customers: [{file: crm.csv, columns: {customer_ref: K, contact_consent: E}}]}")
    with pytest.raises(SourceError, match=r"byte 0xe4 in row 3, column 'E'") as info:
        map_sources(mapping, tmp_path / "raw", TAX, batch_rows=1)
    assert (info.value.column, info.value.rows) == ("E", [3])


@pytest.mark.parametrize("late, expected", [("", None), ("x", r"column\(s\) \['Unnamed: 2'\] are neither mapped")])
def test_a_blank_header_cell_is_a_column_when_any_row_of_the_file_fills_it(tmp_path, late, expected):
    raw_file(tmp_path, "crm.csv", "K;E;\n" + "K1;ja;\n" * 5 + f"K9;ja;{late}\n")
    mapping = mapping_file(tmp_path, "tables: {customers: [{file: crm.csv, reader: {sep: ';'}, "
                                     "columns: {customer_ref: K, contact_consent: {from: E, values: {ja: true}}}}]}")
    if expected is None:
        assert len(map_sources(mapping, tmp_path / "raw", TAX, batch_rows=2).tables["customers"]) == 6
    else:
        with pytest.raises(SourceError, match=expected):
            map_sources(mapping, tmp_path / "raw", TAX, batch_rows=2)


# --- totals decide --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, stops", [(2, False), (6, True)])
def test_the_share_of_bad_values_over_the_whole_entry_decides_not_one_batch(tmp_path, bad, stops):
    """400 dates, the bad ones all in the first batch of 50: 2 are 4% of that batch but 0.5% of the
    file (below max_unparseable_share 1%: they become missing), 6 are 1.5% (the run stops)."""
    dates = ["gestern" if i < bad else f"2024-01-{1 + i % 28:02d}" for i in range(400)]
    raw_file(tmp_path, "crm.csv", "K,E,S\n" + "".join(f"K{i},ja,{d}\n" for i, d in enumerate(dates)))
    mapping = mapping_file(tmp_path, "tables: {customers: [{file: crm.csv, columns: {customer_ref: K, "
                                     "contact_consent: {from: E, values: {ja: true}}, signup_date: S}}]}")
    results = [outcome(mapping, tmp_path / "raw", TAX, size) for size in (50, WHOLE)]
    if stops:
        assert all(isinstance(r, SourceError) for r in results)
        assert str(results[0]) == str(results[1])
        assert f"{bad} of 400 values are not valid dates" in str(results[0])
        assert results[0].rows == list(range(2, 2 + bad))
        assert str(results[0]).endswith("first rows: S='gestern' (crm.csv row 2); S='gestern' (crm.csv row 3); "
                                        "S='gestern' (crm.csv row 4); S='gestern' (crm.csv row 5); "
                                        "S='gestern' (crm.csv row 6)")
    else:
        staged, whole = results
        assert_same_staged(staged, whole, details=True)
        assert staged.tables["customers"]["signup_date"].isna().sum() == 2
        assert staged.log.query("step == 'dates'")[["rows", "detail"]].values.tolist() == [
            [2, "signup_date from 'S': S='gestern' (crm.csv row 2); S='gestern' (crm.csv row 3)"]]


# --- memory of the batch, not of the file ---------------------------------------------------------------
@pytest.mark.slow                     # 300,000 rows twice under tracemalloc
def test_mapping_a_large_csv_needs_memory_of_the_batch_not_of_the_file(tmp_path):
    rows = 100_000
    numbers = np.arange(rows)
    raw = tmp_path / "raw"
    raw.mkdir()
    pd.DataFrame({"Nr": np.char.add("R", numbers.astype(str)), "Kunde": np.char.add("K", (numbers % 5000).astype(str)),
                  "Datum": "2024-03-05 10:00", "NPS": numbers % 11, "Kanal": "Hotline"}).to_csv(raw / "survey.csv",
                                                                                                  index=False)
    mapping = mapping_file(tmp_path, """
        tables:
          feedback:
            - file: survey.csv
              columns: {response_id: Nr, customer_ref: Kunde, timestamp: Datum, nps: NPS}
              ignore: [Kanal]
    """)

    def peak(batch_rows: int) -> tuple[int, int]:
        stream = SourceStream(mapping, raw, TAX, batch_rows=batch_rows)
        tracemalloc.start()
        try:
            mapped = sum(len(batch) for _, batch in stream.batches())
            return tracemalloc.get_traced_memory()[1], mapped
        finally:
            tracemalloc.stop()

    (one, mapped_one), (batched, mapped_batched) = peak(WHOLE), peak(5_000)
    assert mapped_one == mapped_batched == rows
    assert batched < 0.4 * one, (batched, one)


def test_the_fingerprint_is_the_sha256_of_the_file_read_in_blocks(tmp_path):
    raw_file(tmp_path, "crm.csv", "K,E\n" + "K1,ja\n" * 300_000)
    staged = map_sources(mapping_file(tmp_path, "tables: {customers: [{file: crm.csv, columns: {customer_ref: K, "
                                                "contact_consent: {from: E, values: {ja: true}}}}]}"),
                         tmp_path / "raw", TAX, batch_rows=100_000)
    data = (tmp_path / "raw" / "crm.csv").read_bytes()
    assert len(data) > 1 << 20
    assert staged.inputs[["sha256", "rows", "bytes"]].values.tolist() == [
        [hashlib.sha256(data).hexdigest(), 300_000, len(data)]]
