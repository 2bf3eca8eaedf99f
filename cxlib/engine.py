"""The engine for work over all events: a backend connection and Ibis tables on it.

Work whose cost grows with the event log (journeys, transitions, exposures, rates over all
events) is written once as Ibis expressions. `connect` opens a backend by name: DuckDB
embedded (default, no server, out-of-core) or an existing Spark (`pyspark`). `read_table`
reads a processed Parquet path (local or on the cluster's storage) as an Ibis table;
`to_pandas` brings an expression's (aggregated) result back as a pandas DataFrame with the
same dtypes whatever the backend.

    con = engine.connect("duckdb", memory_limit="2GB")
    con = engine.connect("pyspark", spark={"master": "spark://head:7077", "config": {"spark.executor.memory": "8g"}})
    events = engine.read_table(con, "data/processed/events.parquet")     # or "s3a://bucket/processed/events.parquet"
    engine.to_pandas(events.group_by("touchpoint").agg(n=events.count()))

Reading is lazy: the Parquet file is scanned when an expression is executed (Spark reads the
file footers for the schema when the table is registered).
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from cxlib import schema

# DuckDB's memory for a stage's engine work (default of `connect`); it spills beyond. Not every
# operator spills well near its limit: with 2 threads, grouping 116M events by 5M customer ids
# (03's overview at 5M customers) needs 1.2 GB and fails at 1 GB; at 1M customers the stages use
# far less than the limit, which is a ceiling, not an allocation.
DUCKDB_MEMORY_LIMIT = "2GB"
MEMORY_LIMIT_ENV = "CX_DUCKDB_MEMORY_LIMIT"   # environment variable that replaces that default (e.g. "3GB")
# Rows a thread buffers per partition of a partitioned write before writing them out (DuckDB's
# default, 524,288, buffers up to that many rows for each of stage 01's ~100 buckets and spills: at
# 20M rows in 100 buckets 1.9 GB of spill and 28 CPU-s; with 8,192 none and 15 CPU-s).
DUCKDB_PARTITION_FLUSH_ROWS = 8192

ENGINES = ("duckdb", "pyspark")
SPARK_SETTINGS = ("session", "master", "app_name", "config")
SPARK_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.log.level": "ERROR",           # no WARN lines in the notebook (Spark 4; errors still raise)
}
SPARK_LOCAL_DEFAULTS = {                  # local[n] only: few shuffle partitions for one machine
    "spark.sql.shuffle.partitions": "8",
}
INSTALL_SPARK = "`pip install .[spark]` (or `make test-spark`, which installs it into .venv)"
INSTALL_JAVA = ("a Java 17+ runtime (Debian/Ubuntu: `apt-get install default-jre-headless`) and `java` on PATH "
                "or JAVA_HOME set to it")


class EngineError(ValueError):
    """An engine cannot be opened, or a table it reads is missing or lacks columns."""


def connect(engine: str = "duckdb", *, spark: Mapping | None = None, **settings):
    """An Ibis backend connection for `engine` ('duckdb' or 'pyspark').

    duckdb settings are DuckDB options: `database` (default in memory), `threads`,
    `memory_limit` (default: the environment variable CX_DUCKDB_MEMORY_LIMIT, else
    `DUCKDB_MEMORY_LIMIT`, 2GB; DuckDB's own default is 80% of the machine), `partitioned_write_flush_threshold` (default `DUCKDB_PARTITION_FLUSH_ROWS`),
    `temp_directory` (where it spills beyond the limit; default a private temporary folder
    removed when the process exits). pyspark settings: `session` (an existing
    SparkSession; default: the active one, if any) or `master` (default "local[2]"; a cluster:
    "spark://host:7077", "yarn", "k8s://…"), `app_name` and `config` (dict of Spark options;
    UTC session time zone, no UI and, for local masters, 8 shuffle partitions unless set).
    `spark` holds the pyspark settings as one mapping (e.g. a notebook parameter); it is
    ignored for duckdb, so a parameter file can keep it while the engine is switched.

        connect("pyspark", spark={"master": "local[4]", "config": {"spark.driver.memory": "6g"}})

    Raises EngineError for an unknown engine or setting, and with what to install when
    engine='pyspark' lacks the pyspark package or a Java runtime.
    """
    name = str(engine).strip().lower()
    if name == "duckdb":
        database = settings.pop("database", ":memory:")
        settings.setdefault("memory_limit", os.environ.get(MEMORY_LIMIT_ENV) or DUCKDB_MEMORY_LIMIT)
        settings.setdefault("partitioned_write_flush_threshold", DUCKDB_PARTITION_FLUSH_ROWS)
        if "temp_directory" not in settings:              # spill into a private folder, removed at exit
            settings["temp_directory"] = tempfile.mkdtemp(prefix="cx-duckdb-")
            atexit.register(shutil.rmtree, settings["temp_directory"], True)
        backend = ibis.duckdb.connect(database, **settings)
        no_progress_bar(backend.con)
        return backend
    if name == "pyspark":
        options = {**dict(spark or {}), **settings}
        unknown = sorted(set(options) - set(SPARK_SETTINGS))
        if unknown:
            raise EngineError(f"engine=pyspark: unknown setting(s) {unknown}; use {', '.join(SPARK_SETTINGS)}")
        return _connect_spark(**options)
    raise EngineError(f"engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def no_progress_bar(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`con` without DuckDB's progress bar, which a process outside Jupyter (a worker of stage
    01, a script) draws into the run's log for every query over two seconds. In a Jupyter
    kernel without ipywidgets DuckDB draws none and refuses the setting.

        with engine.no_progress_bar(duckdb.connect()) as con: ...
    """
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass
    return con


def _connect_spark(session=None, master: str | None = None, app_name: str | None = None,
                   config: Mapping | None = None):
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineError(
            f"engine=pyspark: the pyspark package is not installed; install the spark extra with {INSTALL_SPARK}, "
            "or choose engine=duckdb"
        ) from exc
    if session is None:
        session = SparkSession.getActiveSession()
    if session is not None:   # an existing session (Ibis sets its time zone to UTC); `config` as runtime options
        return ibis.pyspark.connect(session, **{str(k): str(v) for k, v in dict(config or {}).items()})
    java_error = java_problem()
    if java_error:
        raise EngineError(f"engine=pyspark: {java_error}; install {INSTALL_JAVA}, or choose engine=duckdb")
    master = master or "local[2]"
    options = {**SPARK_DEFAULTS, **(SPARK_LOCAL_DEFAULTS if master.startswith("local") else {}),
               **{str(k): str(v) for k, v in dict(config or {}).items()}}
    builder = SparkSession.builder.master(master).appName(app_name or "cx-insights")
    for key, value in options.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:   # the JVM did not start: say where and why, keep the cause
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EngineError(f"engine=pyspark: Spark did not start (master {master!r}): {first}; "
                          f"check {INSTALL_JAVA}") from exc
    return ibis.pyspark.connect(session)


def java_problem() -> str | None:
    """Why no Java runtime can be started (None when JAVA_HOME or `java` on PATH looks usable)."""
    home = os.environ.get("JAVA_HOME")
    if home:
        return None if (Path(home) / "bin" / "java").exists() else f"JAVA_HOME={home} has no bin/java"
    return None if shutil.which("java") else "no Java runtime found (JAVA_HOME unset and no `java` on PATH)"


def read_table(con, path: str | Path, *, columns: Iterable[str] | None = None,
               table: str | None = None) -> ir.Table:
    """The Parquet file (or folder / glob) at `path` as a lazy Ibis table on `con`.

    `columns`: names that must be present (default: the canonical columns of `table`, e.g.
    "events", when given). A local path that does not exist or lacks columns raises
    EngineError naming the path and the columns.
    """
    text = str(path)
    if not _is_uri(text) and not any(ch in text for ch in "*?[") and not Path(text).exists():
        raise EngineError(f"{text}: file not found (run notebook 01_validate_clean first)")
    expr = con.read_parquet(text)
    required = list(columns) if columns is not None else (schema.TABLES[table].names if table else [])
    require_columns(expr, required, where=text)
    return expr


def read_tables(con, folder: str | Path, names: Iterable[str]) -> dict[str, ir.Table]:
    """Canonical processed tables `folder/<name>.parquet` as lazy Ibis tables, by name.

    `folder` is a local path or a storage URI the engine reads ("s3a://bucket/processed",
    "abfss://…", "hdfs://…"; for Spark on a cluster every executor must reach it).
    """
    return {name: read_table(con, _join(folder, f"{name}.parquet"), table=name) for name in names}


def _is_uri(text: str) -> bool:
    return "://" in text


def _join(folder: str | Path, name: str) -> str | Path:
    """folder/name for a local path or a URI (pathlib would fold the '//' of 's3a://')."""
    text = str(folder)
    return f"{text.rstrip('/')}/{name}" if _is_uri(text) else Path(folder) / name


def table(data, con=None) -> ir.Table:
    """An Ibis table from an Ibis table (returned as is) or a pandas DataFrame (in memory).

    A DataFrame becomes an in-memory table on `con` (or on the default DuckDB backend when
    `con` is None): for small inputs such as tests and lookup tables.
    """
    if isinstance(data, ir.Table):
        return data
    if isinstance(data, pd.DataFrame):
        memtable = ibis.memtable(data)
        return memtable if con is None else con.create_table(_fresh_name(), memtable, temp=True)
    raise EngineError(f"expected an Ibis table or a pandas DataFrame, got {type(data).__name__}")


def _fresh_name() -> str:
    return "cx_" + ibis.util.gen_name("tbl")


def memory_limit(expr: ir.Expr) -> int | None:
    """The bytes DuckDB may use to compute `expr` (its memory_limit setting); None on another
    engine (Spark spills what it partitions and sorts)."""
    backend = expr._find_backend(use_default=True)
    if backend.name != "duckdb":
        return None
    return _bytes(backend.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0])


_UNITS = {"": 1, "B": 1, "BYTE": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _bytes(text: str) -> int:
    """Bytes of a DuckDB size setting such as '953.6 MiB' or '3GB'."""
    found = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", str(text))
    if not found or found.group(2).upper() not in _UNITS:
        raise EngineError(f"unreadable memory size {text!r}")
    return int(float(found.group(1)) * _UNITS[found.group(2).upper()])


def customer_parts(t: ir.Table, col_customer: str, *, rows_per_gb: int) -> int:
    """How many parts of whole customers `t` is worked through in, for work DuckDB holds in memory
    (windows over each customer, self-joins per customer): its rows over `rows_per_gb` per GB of
    the memory limit, at least 1; 1 on an engine without a limit (Spark spills what it
    partitions). Select a part's rows with `in_part`."""
    limit = memory_limit(t)
    if limit is None:
        return 1
    rows = int(to_pandas(t.agg(_rows=t.count()))["_rows"].iloc[0])
    return max(1, math.ceil(rows / max(1, int(rows_per_gb * limit / 2**30))))


def in_part(customer: ir.Value, part: int, parts: int) -> ir.BooleanValue:
    """Whether a row belongs to part `part` of `parts` by a hash of its customer id (every row of
    one customer in the same part; the same split on every table with that id)."""
    return (customer.hash() % parts + parts) % parts == part


def computed_once(expr: ir.Table) -> ir.Table:
    """`expr` computed now into a Parquet file in DuckDB's spill folder and read from there: for a
    table several queries use (each would compute it again: joins, windows). The file costs disk,
    not memory, and is removed when the process ends. Unchanged on Spark, which plans each query
    itself."""
    backend = expr._find_backend(use_default=True)
    if backend.name != "duckdb":
        return expr
    folder = Path(backend.raw_sql("SELECT current_setting('temp_directory')").fetchall()[0][0])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_fresh_name()}.parquet"
    atexit.register(functools.partial(path.unlink, missing_ok=True))
    backend.to_parquet(expr, path)
    return backend.read_parquet(path).cast(expr.schema())      # types Parquet lacks (HUGEINT sums) as they were


def stacked(exprs: Iterable[ir.Table]) -> ir.Table:
    """The rows of `exprs` (tables of one schema on one backend) in a temporary table, computed
    one after the other: for work that fits the engine's memory only a part at a time (DuckDB
    runs the branches of a UNION ALL at once)."""
    exprs = list(exprs)
    if len(exprs) == 1:
        return exprs[0]
    backend = exprs[0]._find_backend(use_default=True)
    name = _fresh_name()
    backend.create_table(name, exprs[0], temp=True)
    for expr in exprs[1:]:
        backend.insert(name, expr)
    return backend.table(name)


def require_columns(expr: ir.Table, columns: Iterable[str], *, where: str, error: type[Exception] | None = None) -> None:
    """Raise `error` (default EngineError) naming `where` and the missing columns if `expr` lacks
    any of `columns`."""
    missing = [c for c in columns if c not in expr.columns]
    if missing:
        raise (error or EngineError)(f"{where}: missing column(s) {missing}; present: {list(expr.columns)}")


def checked_table(data, columns: Iterable[str], *, where: str, error: type[Exception] | None = None) -> ir.Table:
    """`table(data)` with `columns` required (`require_columns`): the first line of every
    engine computation that takes a DataFrame or an Ibis table."""
    expr = table(data)
    require_columns(expr, columns, where=where, error=error)
    return expr


def to_pandas(expr: ir.Expr) -> pd.DataFrame:
    """Execute `expr` on its backend and return a pandas DataFrame with backend-independent dtypes.

    Integer columns come back as int64 (nullable Int64 when they hold nulls), floats as float64,
    strings as `str`, timestamps as datetime64[us, UTC] (naive values are taken as UTC, the
    session time zone set for Spark). Use it for aggregated results only.
    """
    if isinstance(expr, ir.Scalar):
        expr = expr.as_table()
    elif isinstance(expr, ir.Column):
        expr = expr.as_table()
    frame = expr.to_pandas()
    return frame.assign(**{
        name: _normalise(frame[name], dtype) for name, dtype in expr.schema().items()
    })


def _normalise(values: pd.Series, dtype) -> pd.Series:
    if dtype.is_integer():
        return values.astype("Int64") if values.isna().any() else values.astype("int64")
    if dtype.is_floating() or dtype.is_decimal():
        return values.astype("float64")
    if dtype.is_string():
        return values.astype("str")
    if dtype.is_boolean():
        return values.astype("boolean") if values.isna().any() else values.astype("bool")
    if dtype.is_timestamp():   # Spark returns naive session-time (UTC) values, DuckDB tz-aware ones
        stamps = pd.to_datetime(values)
        stamps = stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
        return stamps.astype("datetime64[us, UTC]")
    return values
