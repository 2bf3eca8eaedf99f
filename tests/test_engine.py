"""Engine connections (cxlib.engine.connect): the settings every stage gets by default."""

import subprocess
import sys
from pathlib import Path

import ibis
import duckdb
import pandas as pd
import pytest

from cxlib import engine


def test_duckdb_gets_a_memory_limit_and_a_private_spill_folder_unless_told_otherwise(tmp_path):
    con = engine.connect("duckdb")
    limit = con.con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    spill = Path(con.con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0])
    assert limit == "1.8 GiB"                            # 2GB = 2 * 10^9 bytes
    flush = con.con.sql("SELECT current_setting('partitioned_write_flush_threshold')").fetchall()[0][0]
    assert flush == engine.DUCKDB_PARTITION_FLUSH_ROWS < 524_288   # DuckDB's default spills the bucket split
    assert spill.is_dir() and spill.name.startswith("cx-duckdb-")
    other = engine.connect("duckdb", memory_limit="512MB", temp_directory=str(tmp_path))
    assert Path(other.con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]) == tmp_path


def test_the_default_memory_limit_can_be_raised_for_every_stage(monkeypatch):
    """Some engine work does not spill well (at 5M customers 03 ran out of 1 GB): the
    environment variable CX_DUCKDB_MEMORY_LIMIT raises the default of every stage's connection."""
    monkeypatch.setenv(engine.MEMORY_LIMIT_ENV, "3GB")
    con = engine.connect("duckdb")
    assert con.con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] == "2.7 GiB"    # 3*10^9 bytes
    given = engine.connect("duckdb", memory_limit="512MB")                                          # an explicit one wins
    assert given.con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] == "488.2 MiB"


def test_memory_limit_reads_the_connection_setting_in_bytes():
    con = engine.connect("duckdb", memory_limit="512MB")
    probe = engine.table(pd.DataFrame({"x": [1, 2]}), con)
    assert abs(engine.memory_limit(probe) - 512 * 10**6) < 10**5          # DuckDB shows '488.2 MiB'
    assert engine._bytes("953.6 MiB") == int(953.6 * 2**20)
    assert engine._bytes("3GB") == 3 * 10**9
    assert engine._bytes("0 bytes") == 0
    with pytest.raises(engine.EngineError, match="unreadable memory size"):
        engine._bytes("lots")


def test_stacked_computes_parts_one_after_the_other_into_one_table():
    con = engine.connect("duckdb")
    t = engine.table(pd.DataFrame({"k": ["a", "b", "c", "d"], "v": [1, 2, 3, 4]}), con)
    parts = [t.filter(t.v <= 2).group_by("k").agg(n=t.v.sum()), t.filter(t.v > 2).group_by("k").agg(n=t.v.sum())]
    together = engine.stacked(parts)
    assert type(together.op()).__name__ == "DatabaseTable"                 # materialised: the parts ran one by one
    assert engine.to_pandas(together.order_by("k"))["n"].tolist() == [1, 2, 3, 4]
    assert engine.stacked(parts[:1]) is parts[0]                           # one part: nothing to stack


def test_computed_once_is_read_from_a_parquet_file_in_the_spill_folder_with_the_same_rows(tmp_path):
    con = engine.connect("duckdb", temp_directory=str(tmp_path / "spill"))
    source = engine.table(pd.DataFrame({"c": ["a", "b", "a", "c"], "x": [1, 2, 3, 4]}), con)
    expr = source.group_by("c").agg(total=source.x.sum()).order_by("c")
    once = engine.computed_once(expr)
    files = list((tmp_path / "spill").glob("*.parquet"))
    assert len(files) == 1                                           # computed now, into the spill folder
    assert con.raw_sql(f"SELECT count(*) FROM '{files[0]}'").fetchall()[0][0] == 3
    pd.testing.assert_frame_equal(engine.to_pandas(once.order_by("c")), engine.to_pandas(expr))
    sql = str(ibis.to_sql(once))
    assert "read_parquet" in sql and "GROUP BY" not in sql.upper()            # the query reads the file


def test_a_table_computed_once_leaves_no_file_behind_when_the_process_ends(tmp_path):
    code = ("import sys, pandas as pd; from cxlib import engine; "
            "con = engine.connect('duckdb', temp_directory=sys.argv[1]); "
            "t = engine.computed_once(engine.table(pd.DataFrame({'x': [1, 2]}), con)); "
            "print(len(list(__import__('pathlib').Path(sys.argv[1]).glob('*.parquet'))))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1" and not list(tmp_path.glob("*.parquet"))     # there while running, gone after


def test_duckdb_connections_draw_no_progress_bar_into_the_runs_log():
    def setting(con):
        return con.execute("select current_setting('enable_progress_bar')").fetchone()[0]

    plain = duckdb.connect()
    assert engine.no_progress_bar(plain) is plain and setting(plain) is False
    assert setting(engine.connect("duckdb").con) is False
