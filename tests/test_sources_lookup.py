"""The lookup side of a `join` on disk (cxlib.sources.lookup): chunks of one schema go to Parquet
parts and come back as they were; chunks whose columns differ stay in pandas; repeated keys and
each batch's matches come from DuckDB as pandas would find them; the folder goes when done."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from cxlib.sources import entry, lookup

FILE, ROW, FLAG = "\0file", "\0row", "\0canon:crm"


def chunk(keys, crms, start=2, flags=None) -> pd.DataFrame:
    frame = pd.DataFrame({FILE: pd.Series("logins.csv", index=range(len(keys)), dtype="str"),
                          ROW: np.arange(start, start + len(keys), dtype=np.int64),
                          "visitor": pd.Series(keys, dtype="str"), "crm": pd.Series(crms, dtype="str"),
                          "other": pd.Series("x", index=range(len(keys)), dtype="str")})
    return frame if flags is None else frame.assign(**{FLAG: flags})


KEEP = [FILE, ROW, "visitor", "crm", FLAG]


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_chunks_of_one_schema_are_kept_on_disk_and_read_back_as_they_were(private_tmp):
    parts = [chunk(["V1", "V2"], ["K1", None]), chunk(["V3", None, "V2"], ["K3", "K4", "K5"], start=4)]
    rows = lookup.LookupRows.collect(iter(parts), KEEP)
    assert isinstance(rows, lookup.LookupRows) and rows.rows == 5 and rows.columns == [FILE, ROW, "visitor", "crm"]
    assert len(list(private_tmp.glob("cx-lookup-*/part-*.parquet"))) == 2
    want = pd.concat(parts, ignore_index=True)[[FILE, ROW, "visitor", "crm"]]
    assert_frame_equal(pd.concat(rows.frames(), ignore_index=True), want)
    assert rows.count("visitor") == 4
    assert_frame_equal(rows.repeated("visitor"), want.iloc[[1, 4]].reset_index(drop=True))   # V2 twice, in file order
    found, at = rows.matches(pd.Series(["V3", "none", None, "V1"], dtype="str"), "visitor", ["crm", ROW])
    assert at.tolist() == [0, 3] and found["crm"].tolist() == ["K3", "K1"] and found[ROW].tolist() == [4, 2]
    assert found.dtypes.to_dict() == {"crm": want["crm"].dtype, ROW: np.dtype("int64")}
    rows.close()
    assert not list(private_tmp.glob("cx-lookup-*"))


def test_chunks_whose_columns_differ_stay_in_pandas_as_their_concatenation(private_tmp):
    parts = [chunk(["V1"], ["K1"]), chunk(["V2"], ["K2"], flags=[True]), chunk(["V3"], ["K3"])]
    rows = lookup.LookupRows.collect(iter(parts), KEEP)
    assert isinstance(rows, pd.DataFrame)                  # a flag column in one chunk only
    assert_frame_equal(rows, pd.concat([p[[c for c in KEEP if c in p.columns]] for p in parts], ignore_index=True))
    assert not list(private_tmp.glob("cx-lookup-*"))       # the parts written before went with the switch


@settings(max_examples=60, deadline=None)
@given(left=st.lists(st.one_of(st.none(), st.sampled_from(["V1", "V2", "V3", "v1", "", "ß"])), max_size=12),
       right=st.lists(st.sampled_from(["V1", "V2", "ß", "W9", ""]), unique=True, min_size=1, max_size=5),
       cut=st.integers(0, 5))
def test_a_batch_joined_to_a_lookup_on_disk_is_a_left_merge(left, right, cut):
    src = pd.DataFrame({"visitor": pd.array(left, dtype="str"), "n": np.arange(len(left))},
                       index=range(50, 50 + len(left)))
    table = chunk(right, [f"C{i}" for i in range(len(right))])
    pieces = [p for p in (table.iloc[:cut], table.iloc[cut:]) if len(p)]
    rows = lookup.LookupRows.collect(iter(pieces), KEEP)
    rows.renamed = {"visitor": "J:visitor", "crm": "J:crm"}
    joined, matched = entry._left_join(src, rows, ["visitor"], ["J:visitor"])
    merged = src.reset_index(drop=True).merge(table[["visitor", "crm"]].set_axis(["J:visitor", "J:crm"], axis=1),
                                              how="left", left_on=["visitor"], right_on=["J:visitor"], indicator="m")
    assert_frame_equal(joined, merged.drop(columns="m"))
    assert matched.tolist() == merged["m"].eq("both").tolist()
    rows.close()


def test_mapping_an_entry_with_a_join_leaves_no_lookup_folder(private_tmp):
    from cxlib.config import Taxonomy
    from cxlib.sources import map_sources
    raw = private_tmp / "raw"
    raw.mkdir()
    (raw / "sessions.csv").write_text("session,visitor,started\nS1,V1,2024-01-02\nS2,V9,2024-01-03\nS3,V2,2024-01-04\n")
    (raw / "logins.csv").write_text("visitor,crm\nV1,K1\nV2,K2\n")
    mapping = private_tmp / "m.yml"
    mapping.write_text("tables:\n  events:\n    - file: sessions.csv\n      columns: {event_id: session, timestamp: started,"
                       " touchpoint: {constant: web_visit}, channel: {constant: web}}\n      join: {file: logins.csv, on: {visitor: visitor},"
                       " columns: {customer_ref: crm}, unmatched: drop}\n")
    tax = Taxonomy({"stages": {"s": {"en": "S"}}, "channels": {"web": {"en": "Web"}},
                    "touchpoints": {"web_visit": {"stage": "s"}}})
    events = map_sources(mapping, raw, tax).tables["events"]
    assert events["customer_ref"].tolist() == ["K1", "K2"]
    assert not list(Path(private_tmp).glob("cx-lookup-*"))


def test_the_lookup_connection_draws_no_progress_bar_and_keeps_to_its_limits():
    """A long match at 5M customers drew DuckDB's progress bar into the run's log."""
    with lookup._connection() as con:
        setting = lambda name: con.sql(f"SELECT current_setting('{name}')").fetchall()[0][0]  # noqa: E731
        assert setting("enable_progress_bar") is False and setting("threads") == 1      # outside Jupyter
        assert setting("memory_limit") == "488.2 MiB"                      # LOOKUP_MEMORY, 512 MB
