"""The lookup side of a `join` on disk: the rows of the joined file, written chunk by chunk to
Parquet parts in a private temporary folder, their repeated keys counted and each batch's matches
found by DuckDB (one thread, `LOOKUP_MEMORY`, spilling beyond). Mapping an entry with a join
then holds one chunk of the lookup file at a time, however long the file.

    rows = LookupRows.collect(chunks, ["\\0file", "\\0row", "visitor_id", "crm_id"])
    if isinstance(rows, LookupRows):               # one schema of text, numbers and flags throughout
        shared = rows.repeated("visitor_id")      # the rows sharing a key, in file order
        found, at = rows.matches(batch["visitor_id"], "visitor_id", ["crm_id"])   # matched rows, where
    else:                                          # a DataFrame: columns varying between chunks
        ...

`repeated` and `positions` do the same for a lookup held in pandas.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cxlib import engine

LOOKUP_MEMORY = "512MB"     # DuckDB's memory for a join's keys (it spills beyond)
_ORDER = "n"                # the row's place in the lookup file, in the parts


def is_text(values: pd.Series) -> bool:
    """Whether `values` are text held by Arrow (what DuckDB reads without a copy)."""
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def _connection() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection of its own for a join's keys: one thread, a small memory limit, no
    progress bar (long lookups would draw one into the run's log)."""
    return engine.no_progress_bar(duckdb.connect(config={
        "threads": 1, "memory_limit": LOOKUP_MEMORY,
        "temp_directory": os.path.join(tempfile.gettempdir(), f"cx-lookup-{os.getpid()}")}))


def positions(keys: pd.Series, found: pd.Series) -> np.ndarray:
    """The position in `found` (distinct text keys) of each of the text `keys`, -1 for none
    (as `pd.Index(found).get_indexer(keys)`), from a hash join on DuckDB."""
    with _connection() as con:
        con.register("batch", pa.table({"k": pa.array(keys.array), "i": np.arange(len(keys), dtype=np.int64)}))
        con.register("found", pa.table({"k": pa.array(found.array), "p": np.arange(len(found), dtype=np.int64)}))
        hits = con.sql("SELECT batch.i, found.p FROM batch JOIN found ON batch.k = found.k").fetchnumpy()
    position = np.full(len(keys), -1, dtype=np.int64)
    position[hits["i"]] = hits["p"]
    return position


def repeated(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """`frame.duplicated(keys, keep=False)`: the rows whose key another row shares; DuckDB counts
    a single text key."""
    if len(keys) != 1 or frame.empty or not is_text(frame[keys[0]]):
        return frame.duplicated(keys, keep=False)
    values = pa.array(frame[keys[0]].array)
    with _connection() as con:
        con.register("found", pa.table({"k": values}))
        shared = con.sql("SELECT k FROM found GROUP BY k HAVING count(*) > 1").to_arrow_table().column("k")
    if not len(shared):
        return pd.Series(False, index=frame.index)
    hit = pc.is_in(values, value_set=shared.combine_chunks(), skip_nulls=False)   # blanks repeat blanks, as in pandas
    return pd.Series(np.asarray(hit, dtype=bool), index=frame.index)


class LookupRows:
    """Frames of one schema (text, whole numbers and flags) in Parquet parts under a private
    temporary folder, removed by `close` or when the object goes. Columns are stored as c0, c1, …
    (the frames' names start with NUL); `columns` and `dtypes` give them back as they were."""

    def __init__(self, columns: Sequence[str], dtypes: pd.Series):
        self.columns, self.dtypes = list(columns), dtypes
        self.folder = Path(tempfile.mkdtemp(prefix="cx-lookup-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.folder, True)
        self.rows = 0
        self.first: pd.DataFrame | None = None            # one row: what a batch without any match takes
        self.renamed: dict[str, str] = {}                 # stored column -> its name in the joined frame

    @classmethod
    def collect(cls, chunks: Iterable[pd.DataFrame], keep: Sequence[str]) -> LookupRows | pd.DataFrame:
        """The `keep` columns (those present) of every chunk, in order: on disk while every chunk
        has the same columns and dtypes (text, int64, bool), else concatenated in pandas."""
        rows: LookupRows | None = None
        held: list[pd.DataFrame] = []
        for chunk in chunks:
            part = chunk[[c for c in keep if c in chunk.columns]]
            if not held and _storable(part) and (rows is None or rows._fits(part)):
                rows = rows if rows is not None else cls(part.columns, part.dtypes)
                rows._write(part)
                continue
            if rows is not None:                             # columns differ between chunks: back to pandas
                held = rows.frames()
                rows = rows.close()
            held.append(part)
        return rows if rows is not None else pd.concat(held, ignore_index=True)

    def _fits(self, part: pd.DataFrame) -> bool:
        return list(part.columns) == self.columns and part.dtypes.equals(self.dtypes)

    def _write(self, part: pd.DataFrame) -> None:
        if not len(part):
            return
        table = pa.Table.from_pandas(part.set_axis([f"c{i}" for i in range(len(self.columns))], axis=1),
                                     preserve_index=False)
        table = table.append_column(_ORDER, pa.array(np.arange(self.rows, self.rows + len(part), dtype=np.int64)))
        pq.write_table(table, self.folder / f"part-{self.rows:012d}.parquet", compression="none", use_dictionary=False)
        self.first = self.first if self.first is not None else part.iloc[:1].reset_index(drop=True)
        self.rows += len(part)

    def _frame(self, table: pa.Table, columns: Sequence[str]) -> pd.DataFrame:
        """Stored columns (c0, …) of `table` back under their names, with their dtypes."""
        names = {f"c{i}": c for i, c in enumerate(self.columns)}
        frame = table.select([f"c{self.columns.index(c)}" for c in columns]).to_pandas()
        return frame.rename(columns=names).astype(self.dtypes[list(columns)].to_dict())

    def _glob(self) -> str:
        return str(self.folder / "part-*.parquet")

    def _col(self, column: str) -> str:
        return f"c{self.columns.index(column)}"

    def frames(self) -> list[pd.DataFrame]:
        """The stored rows, part by part (for a lookup that goes back to pandas)."""
        return [self._frame(pq.read_table(p), self.columns) for p in sorted(self.folder.glob("part-*.parquet"))]

    def repeated(self, key: str) -> pd.DataFrame:
        """The rows whose non-blank `key` another row shares, in file order (empty: none)."""
        k = self._col(key)
        with _connection() as con:
            table = con.sql(f"SELECT * FROM read_parquet('{self._glob()}') WHERE {k} IN "
                            f"(SELECT {k} FROM read_parquet('{self._glob()}') WHERE {k} IS NOT NULL "
                            f"GROUP BY {k} HAVING count(*) > 1) ORDER BY {_ORDER}").to_arrow_table()
        return self._frame(table, self.columns)

    def count(self, key: str) -> int:
        """The rows with a (non-blank) `key`."""
        with _connection() as con:
            return int(con.sql(f"SELECT count({self._col(key)}) FROM read_parquet('{self._glob()}')").fetchall()[0][0])

    def matches(self, keys: pd.Series, key: str, columns: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
        """The `columns` of the row whose `key` equals each of the text `keys` (a key is in one
        row at most), as a frame of one row per key that has a match (in the order of `keys`),
        and where they are (positions in `keys`)."""
        with _connection() as con:
            con.register("batch", pa.table({"k": pa.array(keys.array), "i": np.arange(len(keys), dtype=np.int64)}))
            chosen = ", ".join(f"r.{self._col(c)}" for c in columns)
            table = con.sql(f"SELECT batch.i, {chosen} FROM batch JOIN read_parquet('{self._glob()}') r "
                            f"ON batch.k = r.{self._col(key)} ORDER BY batch.i").to_arrow_table()
        return self._frame(table, columns), table.column("i").to_numpy()

    def close(self) -> None:
        self._finalizer()


def _storable(part: pd.DataFrame) -> bool:
    return all(is_text(part[c]) or part[c].dtype in (np.dtype("int64"), np.dtype("bool")) for c in part.columns)
