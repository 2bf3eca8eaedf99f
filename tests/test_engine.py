"""Engine connections (cxlib.engine.connect): the settings every stage gets by default."""

from pathlib import Path

from cxlib import engine


def test_duckdb_gets_a_memory_limit_and_a_private_spill_folder_unless_told_otherwise(tmp_path):
    con = engine.connect("duckdb")
    limit = con.con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    spill = Path(con.con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0])
    assert limit == "953.6 MiB"                          # 1GB = 10^9 bytes
    flush = con.con.sql("SELECT current_setting('partitioned_write_flush_threshold')").fetchall()[0][0]
    assert flush == engine.DUCKDB_PARTITION_FLUSH_ROWS < 524_288   # DuckDB's default spills the bucket split
    assert spill.is_dir() and spill.name.startswith("cx-duckdb-")
    other = engine.connect("duckdb", memory_limit="512MB", temp_directory=str(tmp_path))
    assert Path(other.con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]) == tmp_path


def test_the_default_memory_limit_can_be_raised_for_every_stage(monkeypatch):
    """Some engine work does not spill (03's paths at 5M customers ran out of 1 GB): the
    environment variable CX_DUCKDB_MEMORY_LIMIT raises the default of every stage's connection."""
    monkeypatch.setenv(engine.MEMORY_LIMIT_ENV, "3GB")
    con = engine.connect("duckdb")
    assert con.con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] == "2.7 GiB"    # 3*10^9 bytes
    given = engine.connect("duckdb", memory_limit="512MB")                                          # an explicit one wins
    assert given.con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] == "488.2 MiB"
