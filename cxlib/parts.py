"""Tables kept as Parquet parts in a work folder while stage 01 works through them one customer
bucket at a time, so its memory does not grow with the data.

A `Workspace` is a folder beside the processed folder (`.processed.work-<token>`, removed when
closed or when the process ends; one left by a killed process is removed by the next `open`) and an engine connection (DuckDB by default, Spark with
`engine="pyspark"`). Tables are written to it as numbered parts, each with `_order` (a row's
place in its table); `split` hashes a table's `customer_ref` into buckets on the engine, so every
row of one customer lands in the same bucket (rows without one in a single bucket); `read` gives
one bucket as a pandas frame in table order; `ordered_batches` streams a whole table back in
table order for writing. A step's parts are removed once the next step has consumed them (the
split removes the parts it split, `remove` a whole stage), so the folder holds about one
step's copy of the data, not one per step.

    work = parts.Workspace.open("data/processed")
    work.write("staged", "events", frame, part=0)
    work.split("staged", ["events", "feedback"], buckets=4)
    work.read("staged", "events", bucket=2)
    for batch in work.ordered_batches("cleaned", "events"): ...
    work.remove("staged")                   # once every bucket is cleaned
    work.close()
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import uuid
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cxlib import engine as engines
from cxlib import schema
from cxlib.prefetch import prefetched

ORDER = schema.STAGED_ORDER
BUCKET = "_bucket"
BATCH_ROWS = 250_000            # rows per record batch streamed back from the engine
MERGE_ROWS = 16_384             # rows per row group of a part: what a merge holds of each part at a time
MERGE_BUFFER = 2 ** 18          # bytes read ahead per column of each part while merging
MERGE_PARTS = 32                # parts merged at once (more are merged in runs of this many first)
PART_FORMAT = {"compression": "zstd", "use_dictionary": False}   # parts and runs: measured against Snappy with
                                # dictionaries on 2M events, 19% faster to write, 28% to read, 41% smaller
OWNER = "owner"                 # file in a work folder: "<host> <pid>" of the process using it


class PartFiles:
    """The Parquet parts of a work folder, without an engine: write, list and read them. It
    pickles, so worker processes (`cxlib.bucket_pool`) read and write the parts of one bucket."""

    def __init__(self, folder: Path, buckets: dict[str, int] | None = None, split_stages: set[str] | None = None):
        self.folder = folder
        self.buckets: dict[str, int] = dict(buckets or {})      # stage -> number of buckets
        self.split_stages: set[str] = set(split_stages or ())   # stages split by `split` (else part number = bucket)

    def table_dir(self, stage: str, table: str) -> Path:
        return self.folder / stage / table

    def write(self, stage: str, table: str, frame: pd.DataFrame, part: int) -> Path:
        """Write `frame` as part number `part` of `table` in `stage` (a frame with zero rows keeps
        the table's columns and dtypes)."""
        folder = self.table_dir(stage, table)
        folder.mkdir(parents=True, exist_ok=True)
        where = folder / part_name(part)
        frame.to_parquet(where, index=False, row_group_size=MERGE_ROWS, **PART_FORMAT)   # merged a row group at a time
        return where

    def files(self, stage: str, table: str) -> list[Path]:
        return sorted(self.table_dir(stage, table).glob("part-*.parquet"))

    def rows_glob(self, stage: str, table: str) -> str:
        """A glob of the Parquet files holding the rows of `table` in `stage` (its buckets when split)."""
        buckets = self._split_dir(stage, table)
        return str(buckets / "*" / "*.parquet") if buckets else str(self.table_dir(stage, table) / "part-*.parquet")

    def row_files(self, stage: str, table: str) -> list[Path]:
        """The files `rows_glob` matches, in part (or bucket) order."""
        buckets = self._split_dir(stage, table)
        if buckets is None:
            return self.files(stage, table)
        return sorted(buckets.glob("*/*.parquet"), key=lambda f: (_bucket_number(f.parent), f.name))

    def _split_dir(self, stage: str, table: str) -> Path | None:
        """The folder of the table's buckets when `split` split it, else None."""
        folder = self.folder / f"{stage}.buckets" / table
        return folder if stage in self.split_stages and folder.is_dir() else None

    def tables(self, stage: str) -> list[str]:
        """The tables written to `stage`, in canonical order."""
        present = {p.name for p in (self.folder / stage).iterdir()} if (self.folder / stage).is_dir() else set()
        return [t for t in schema.TABLES if t in present]

    def data_bytes(self, stage: str, table: str) -> int:
        """The uncompressed bytes of `table`'s rows in `stage` (its bucket files in a `split`
        stage), from the Parquet footers: about what reading them weighs."""
        footers = (pq.read_metadata(path) for path in self.row_files(stage, table))
        return sum(footer.row_group(i).total_byte_size for footer in footers for i in range(footer.num_row_groups))

    def schema(self, stage: str, table: str) -> pa.Schema:
        """The Arrow schema of the table's parts (pandas dtypes in its metadata)."""
        files = self.files(stage, table)
        if not files:
            raise FileNotFoundError(f"{self.folder}: no {stage} parts of table '{table}': never written, or removed "
                                    f"once the next step had consumed them")
        return pq.read_schema(files[0])

    def read(self, stage: str, table: str, bucket: int | Iterable[int] | None = None) -> pd.DataFrame:
        """One bucket of a table, or several (the whole table when `stage` has one bucket or
        `bucket` is None) as a pandas frame with the dtypes it was written with, in table order.
        A bucket is a `split` bucket or, in stages written one part per bucket, part number `bucket`."""
        target = self.schema(stage, table)
        if self.buckets.get(stage, 1) == 1 or (bucket is None and self._split_dir(stage, table) is None):
            return as_frame(pq.read_table(self.files(stage, table), schema=target), target)
        numbers = range(self.buckets[stage]) if bucket is None else [bucket] if isinstance(bucket, int) else list(bucket)
        if stage in self.split_stages:
            files = [f for n in numbers
                     for f in sorted((self.folder / f"{stage}.buckets" / table / f"{BUCKET}={n}").glob("*.parquet"))]
        else:                                         # written one part per bucket
            files = [p for p in (self.table_dir(stage, table) / part_name(n) for n in numbers) if p.is_file()]
        if not files:
            return as_frame(target.empty_table(), target)
        data = pq.read_table(files, columns=target.names)
        return as_frame(data if _ordered(data.column(ORDER)) else data.sort_by(ORDER), target)


class Workspace(PartFiles):
    """A work folder with Parquet parts per stage and table, and the engine that splits and
    orders them. Use `Workspace.open`; `close` removes the folder."""

    def __init__(self, folder: Path, con, engine: str, settings: dict | None = None):
        super().__init__(folder)
        self.con = con
        self.engine = engine
        self.settings = dict(settings or {})      # DuckDB settings of `con`, for `session`
        self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)

    @classmethod
    def open(cls, beside: str | Path, *, engine: str = "duckdb", spark=None,
             memory_limit: str | None = None, threads: int | None = None) -> Workspace:
        """A new work folder next to `beside` (the processed folder) and an engine connection:
        DuckDB with `memory_limit` (None: `engine.connect`'s default) and its spill folder inside
        the work folder, or Spark."""
        target = Path(beside)
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned(target)
        folder = target.parent / f".{target.name}.work-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        (folder / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        settings = {}
        if str(engine).strip().lower() == "duckdb":
            settings = {"temp_directory": str(folder / "spill"), **({"memory_limit": memory_limit} if memory_limit else {}),
                        **({"threads": threads} if threads else {})}
        try:
            con = engines.connect(engine, spark=spark, **settings)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(folder, con, str(engine).strip().lower(), settings)

    @contextlib.contextmanager
    def session(self):
        """An engine connection for one large query: on DuckDB a new one, closed afterwards, so
        the memory the query took goes back to the system (DuckDB keeps it while its database
        is open); on Spark the workspace's own."""
        if self.engine != "duckdb":
            yield self.con
            return
        con = engines.connect("duckdb", **self.settings)
        try:
            yield con
        finally:
            con.disconnect()

    def close(self) -> None:
        """Remove the work folder (parts included)."""
        self._finalizer()

    # --- parts ----------------------------------------------------------------------------
    def part_files(self) -> PartFiles:
        """The parts as they are now, without the engine (for worker processes)."""
        return PartFiles(self.folder, self.buckets, self.split_stages)

    # --- buckets --------------------------------------------------------------------------
    def split(self, stage: str, tables: Iterable[str], buckets: int) -> None:
        """Split `tables` of `stage` into `buckets` by a hash of customer_ref on the engine (one
        bucket: nothing to do). Tables without customer_ref are not split. A split table's parts
        are replaced by one part without rows (it keeps the schema): its rows are in the buckets."""
        self.buckets[stage] = max(1, int(buckets))
        if self.buckets[stage] == 1:
            return
        self.split_stages.add(stage)
        with self.session() as con:
            for table in tables:
                expr = con.read_parquet(str(self.table_dir(stage, table) / "part-*.parquet"))
                expr = expr.mutate(**{BUCKET: _bucket_of(expr, self.buckets[stage])})
                target = self.folder / f"{stage}.buckets" / table
                target.parent.mkdir(parents=True, exist_ok=True)
                if self.engine == "duckdb":
                    con.to_parquet(expr, target, partition_by=BUCKET)
                else:
                    for bucket in range(self.buckets[stage]):
                        part = expr.filter(expr[BUCKET] == bucket).drop(BUCKET).to_pyarrow()
                        folder = target / f"{BUCKET}={bucket}"
                        folder.mkdir(parents=True, exist_ok=True)
                        pq.write_table(part, folder / "part-0.parquet")
                self._empty_parts(stage, table)

    def remove(self, stage: str) -> None:
        """Remove every part of `stage` (its buckets too): the next step has consumed them."""
        for folder in (self.folder / stage, self.folder / f"{stage}.buckets"):
            shutil.rmtree(folder, ignore_errors=True)
        self.buckets.pop(stage, None)
        self.split_stages.discard(stage)

    def remove_table(self, stage: str, table: str) -> None:
        """Remove the parts of one table of `stage` (e.g. once it is written out)."""
        for folder in (self.table_dir(stage, table), self.folder / f"{stage}.buckets" / table):
            shutil.rmtree(folder, ignore_errors=True)

    def _empty_parts(self, stage: str, table: str) -> None:
        """Replace the parts of `table` in `stage` by one without rows, of the same schema."""
        files = self.files(stage, table)
        target = pq.read_schema(files[0])
        for part in files:
            part.unlink()
        pq.write_table(target.empty_table(), self.table_dir(stage, table) / part_name(0))

    def ordered_batches(self, stage: str, table: str, *, drop: Iterable[str] = (ORDER,),
                        consume: bool = False, threads: int = 1) -> Iterator[pa.RecordBatch]:
        """All parts of `table` in `stage` in table order (`_order`), as Arrow record batches of
        the table's schema without `drop`: parts written in order one after the other are streamed
        as they are, parts each in order (every cleaned bucket) merged (`merged_runs`, then
        `merged_batches`: a few thousand rows of at most MERGE_PARTS files held at a time),
        others sorted by the engine (which spills beyond its memory). `consume`: parts may be
        removed as soon as they are merged into a run (the caller removes the table afterwards);
        `threads`: runs merged at once."""
        target = self.schema(stage, table)
        keep = [f for f in target if f.name not in set(drop)]
        out = pa.schema(keep, metadata=_without(target.metadata, drop))
        files = self.row_files(stage, table)
        if ORDER not in target.names or _in_order(files):
            for part in files:
                for batch in pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS, columns=out.names):
                    yield from pa.Table.from_batches([batch]).cast(out).to_batches()
            return
        if all(_each_in_order(part) for part in files):
            columns, runs = [*out.names, *([ORDER] if ORDER not in out.names else [])], self.folder / "runs" / stage / table
            try:
                for batch in merged_batches(merged_runs(files, columns, runs, consume=consume, parts=MERGE_PARTS,
                                                        threads=threads),
                                            columns, rows=MERGE_ROWS):
                    yield from pa.Table.from_batches([batch]).select(out.names).cast(out).to_batches()
            finally:
                shutil.rmtree(runs, ignore_errors=True)
            return
        expr = self.con.read_parquet(self.rows_glob(stage, table)).order_by(ORDER)
        for batch in self._batches(expr.select(out.names)):
            yield from pa.Table.from_batches([batch]).cast(out).to_batches()

    def _batches(self, expr) -> Iterator[pa.RecordBatch]:
        """The rows of `expr` as Arrow record batches, streamed from the engine."""
        if self.engine == "duckdb":       # DuckDB's own reader (Ibis 12's batch reader fails on DuckDB 2)
            yield from self.con.con.sql(str(self.con.compile(expr))).to_arrow_reader(BATCH_ROWS)
        else:
            yield from expr.to_pyarrow_batches(chunk_size=BATCH_ROWS)

    def write_ordered(self, stage: str, table: str, where: Path, *, drop: Iterable[str] = (ORDER,),
                      consume: bool = False, threads: int = 1) -> None:
        """Write all parts of `table` in table order to one Parquet file at `where` (`consume`,
        `threads`: see `ordered_batches`)."""
        target = self.schema(stage, table)
        out = pa.schema([f for f in target if f.name not in set(drop)], metadata=_without(target.metadata, drop))
        with pq.ParquetWriter(where, out) as writer:
            batches = self.ordered_batches(stage, table, drop=drop, consume=consume, threads=threads)
            for batch in prefetched(batches):       # read while writing
                if batch.num_rows:
                    writer.write_batch(batch)


def part_name(number: int) -> str:
    """The file name of part `number`; names sort as the numbers do (up to 10**12 parts)."""
    return f"part-{int(number):012d}.parquet"


def remove_abandoned(beside: str | Path) -> list[Path]:
    """Remove the work folders next to `beside` whose run ended without removing them (its process
    was killed: no finalizer ran), as far as this machine can tell: folders whose owner process on
    this host is gone. Folders of live runs and of other hosts stay. Returns the removed folders."""
    target = Path(beside)
    removed = []
    for folder in target.parent.glob(f".{target.name}.work-*"):
        try:
            host, pid = (folder / OWNER).read_text().split()
        except (OSError, ValueError):
            continue                                  # not ours to judge (being created, or unknown)
        if host == socket.gethostname() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bucket_of(expr, buckets: int):
    """A row's bucket, 0..buckets-1, from a hash of customer_ref (rows without one: the hash of
    the empty string, so they share a bucket)."""
    digest = expr[schema.CUSTOMER_REF].fill_null("").hash()
    return ((digest % buckets) + buckets) % buckets


def merged_runs(files: list[Path], columns: list[str], folder: Path, *, consume: bool = False,
                parts: int = MERGE_PARTS, threads: int = 1) -> list[Path]:
    """Files in `_order` order, at most `parts` of them, holding the rows (`columns`) of `files`
    (each in `_order` order): while there are more, groups of `parts` are merged into runs, Parquet
    files in `folder`, `threads` groups at once (the reading, sorting and writing run in Arrow,
    outside the GIL). An open file holds a row group (`_row_batches`: about 5 MB for 16,384
    events), so a merge of every bucket at once would grow with the buckets. Runs of an earlier
    round are removed once merged, and so are `files` when `consume`."""
    level = 0
    while len(files) > parts:
        folder.mkdir(parents=True, exist_ok=True)
        groups = [files[first:first + parts] for first in range(0, len(files), parts)]
        targets = [group[0] if len(group) == 1 else folder / f"run-{level}-{number:06d}.parquet"   # a lone file is
                   for number, group in enumerate(groups)]                                        # carried as it is
        work = [(group, target) for group, target in zip(groups, targets) if len(group) > 1]
        with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="cx-merge") as pool:
            list(pool.map(lambda job: _merge_run(*job, columns, consume=consume, folder=folder), work))  # raises a run's error
        files, level = targets, level + 1
    return files


def _merge_run(group: list[Path], target: Path, columns: list[str], *, consume: bool, folder: Path) -> None:
    """Merge the files of `group` into the run `target`, then remove those that are runs of
    `folder` (and the others when `consume`)."""
    run_schema = pa.schema([pq.read_schema(group[0]).field(c) for c in columns])
    with pq.ParquetWriter(target, run_schema, **PART_FORMAT) as writer:
        for batch in merged_batches(group, columns):
            writer.write_table(pa.Table.from_batches([batch]).cast(run_schema), row_group_size=MERGE_ROWS)
    for part in group:
        if consume or part.parent == folder:     # a run, or a part the caller gives up
            part.unlink()


def merged_batches(files: list[Path], columns: list[str], *, rows: int = MERGE_ROWS) -> Iterator[pa.RecordBatch]:
    """The rows of Parquet `files`, each in `_order` order, as one stream in `_order` order
    (`columns`, `_order` among them): `rows` of each file are held at a time (read through a small
    buffer, no read-ahead), and the rows every file has passed are sorted and handed on (a k-way
    merge; `merged_runs` keeps the number of files small)."""
    readers = [_row_batches(part, columns, rows) for part in files]
    held = {i: batch for i, batch in ((i, _next_rows(reader)) for i, reader in enumerate(readers)) if batch is not None}
    while held:
        bound = min(batch.column(ORDER)[-1].as_py() for batch in held.values())     # every file is past it
        ready = []
        for i, batch in list(held.items()):
            n = int(np.searchsorted(batch.column(ORDER).to_numpy(), bound, side="right"))
            ready.append(batch.slice(0, n))
            rest = batch.slice(n) if n < batch.num_rows else _next_rows(readers[i])
            if rest is None:
                del held[i]
            else:
                held[i] = rest
        merged = pa.Table.from_batches(ready)
        yield from merged.take(pc.sort_indices(merged.column(ORDER))).to_batches()


def _row_batches(part: Path, columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of `part`, one row group at a time when its row groups hold at most `rows` rows
    (parts and runs are written so: one open part then holds one row group), else `rows` at a time
    through a small buffer (Arrow's batch reader holds more of the file: about 18 MB for a
    part of 200,000 events, against 3 MB for a row group of 16,384)."""
    file = pq.ParquetFile(part, buffer_size=MERGE_BUFFER, pre_buffer=False)
    groups = file.metadata.num_row_groups
    if all(file.metadata.row_group(i).num_rows <= rows for i in range(groups)):
        for i in range(groups):
            yield from file.read_row_group(i, columns=columns, use_threads=False).combine_chunks().to_batches()
    else:
        yield from file.iter_batches(batch_size=rows, columns=columns, use_threads=False)


def _next_rows(reader: Iterator[pa.RecordBatch]) -> pa.RecordBatch | None:
    """The next batch with rows of `reader`; None at its end."""
    return next((batch for batch in reader if batch.num_rows), None)


def _each_in_order(part: Path) -> bool:
    """True when the `_order` values of one Parquet file never decrease."""
    return _ordered(pq.read_table(part, columns=[ORDER]).column(ORDER))


def _bucket_number(folder: Path) -> int:
    """The number of a bucket folder (`_bucket=7` -> 7)."""
    return int(folder.name.partition("=")[2] or -1)


def _ordered(order: pa.ChunkedArray) -> bool:
    """True when the `_order` values read never decrease: the rows need no sort."""
    values = order.to_numpy()
    return bool((values[1:] >= values[:-1]).all())


def _in_order(files: list[Path]) -> bool:
    """True when the parts, read one after the other, are in `_order` order (written by one writer)."""
    last = None
    for part in files:
        meta = pq.ParquetFile(part).metadata
        if meta.num_rows == 0:
            continue
        column = meta.schema.names.index(ORDER) if ORDER in meta.schema.names else None
        if column is None:
            return False
        stats = [meta.row_group(i).column(column).statistics for i in range(meta.num_row_groups)]
        if any(s is None or not s.has_min_max for s in stats):
            return False
        lo, hi = min(s.min for s in stats), max(s.max for s in stats)
        if last is not None and lo <= last:
            return False
        last = hi
    return True


def as_frame(data: pa.Table, target: pa.Schema) -> pd.DataFrame:
    """Arrow data -> the pandas frame it was written from (dtypes from the schema's metadata)."""
    return data.select(target.names).cast(target).to_pandas().reset_index(drop=True)


def _without(metadata: dict | None, drop: Iterable[str]) -> dict | None:
    """The schema metadata with the pandas column entries of `drop` removed."""
    if not metadata or b"pandas" not in metadata:
        return metadata
    pandas_meta = json.loads(metadata[b"pandas"])
    dropped = set(drop)
    pandas_meta["columns"] = [c for c in pandas_meta.get("columns", []) if c.get("name") not in dropped]
    return {**metadata, b"pandas": json.dumps(pandas_meta).encode()}
