"""The catalog of processed tables: one reader for pandas and engine tables, one error."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import write_processed_frames

from cxlib import catalog


def _folder(tmp_path):
    frames = {"events": pd.DataFrame({"event_id": ["e1", "e2"], "customer_id": ["c1", "c1"],
                                      "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
                                      "touchpoint": ["order", "activation"], "channel": ["web", "web"]})}
    folder = write_processed_frames(tmp_path / "processed", frames,
                                    restricted={"reidentification": pd.DataFrame({"customer_id": ["c1"], "pii_name": ["x"]})})
    (folder / "orders.parquet").unlink()
    return folder


def test_pandas_and_engine_readers_give_the_same_rows(tmp_path):
    folder = _folder(tmp_path)
    frame = catalog.read(folder, "events")["events"]
    lazy = catalog.tables(folder, ["events"], engine="duckdb")["events"]
    assert len(frame) == 2
    assert lazy.count().execute() == 2
    assert sorted(lazy.event_id.execute()) == ["e1", "e2"]


def test_a_missing_table_gives_one_message_whichever_reader(tmp_path):
    folder = _folder(tmp_path)
    messages = []
    for read in (lambda: catalog.read(folder, "orders"), lambda: catalog.tables(folder, ["orders"])):
        with pytest.raises(catalog.CatalogError) as error:
            read()
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert "processed table 'orders' not found" in messages[0] and "01_validate_clean" in messages[0]


def test_restricted_tables_are_found_and_optional_tables_may_be_absent(tmp_path):
    folder = _folder(tmp_path)
    assert catalog.path(folder, "reidentification") == folder / catalog.RESTRICTED_DIR / "reidentification.parquet"
    assert list(catalog.read(folder, "reidentification")["reidentification"]["pii_name"]) == ["x"]
    assert catalog.read_optional(folder, "no_such_table") is None
    assert len(catalog.read_optional(folder, "events")) == 2


def test_a_stage_reads_only_the_columns_it_uses_and_those_a_table_lacks_are_left_out(tmp_path):
    folder = _folder(tmp_path)
    whole = catalog.read(folder, "events")["events"]
    some = catalog.read(folder, ["events"], columns={"events": ["customer_id", "timestamp", "no_such_column"]})
    assert some["events"].columns.tolist() == ["customer_id", "timestamp"]
    pd.testing.assert_frame_equal(some["events"], whole[["customer_id", "timestamp"]])
    assert catalog.read(folder, "events", columns=["channel", "not_there"])["events"].columns.tolist() == ["channel"]
    other = catalog.read(folder, "events", columns={"orders": ["order_id"]})["events"]     # a table not named: whole
    assert other.columns.tolist() == whole.columns.tolist()
