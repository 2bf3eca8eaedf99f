"""The source mapping as a stream of staged batches, in memory bounded by the batch.

    stream = SourceStream("config/sources/demo.yml", "data/raw", taxonomy, batch_rows=500_000)
    for table, batch in stream.batches():
        ...                       # batch: staged rows of `table` (columns and dtypes of map_sources)
    stream.log, stream.inputs     # after the last batch

Batches come entry by entry in mapping order (`tables` items, then their entries), file by
file, rows in file order: the batches of a table, concatenated, are `map_sources(...).tables[table]`.
A batch holds the mapped rows of at most `batch_rows` source rows (a melt makes more rows from
them). A `join`'s lookup file is read whole, and an entry with `aggregate` is aggregated whole
at its end (see `cxlib.sources.entry`). Errors are those of `map_sources`, whatever `batch_rows`
is: checks that count over an entry (unparseable values) decide on its totals after its last batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cxlib.config import Taxonomy, load_taxonomy
from cxlib.sources.entry import entry_batches, personal_columns
from cxlib.sources.mapping import INPUT_COLUMNS, LOG_COLUMNS, load_mapping
from cxlib.sources.read import Files

BATCH_ROWS = 500_000


class MappingLog:
    """The mapping log: one note per entry, step, rule and subject (a canonical column, a file,
    a join), its rows summed over the batches, its detail from the first batch in which it had
    rows, in order of first appearance; notes without rows are left out (but for `read`)."""

    def __init__(self):
        self.notes: dict[tuple, dict] = {}

    def entry(self, table: str, number: int) -> EntryNotes:
        return EntryNotes(self, table, number)

    def frame(self) -> pd.DataFrame:
        """Columns LOG_COLUMNS: table, step, rule, rows, detail."""
        rows = [n for n in self.notes.values() if n["rows"] or n["step"] == "read"]
        return pd.DataFrame(rows, columns=LOG_COLUMNS).astype({"rows": "int64"})


class EntryNotes:
    """`note(step, rule, rows, detail="", subject=None)` for the notes of one entry."""

    def __init__(self, log: MappingLog, table: str, number: int):
        self.log, self.table, self.number = log, table, number

    def __call__(self, step: str, rule: str, rows: int, detail: str = "", *, subject: str | None = None) -> None:
        key = (self.table, self.number, step, rule, subject)
        note = self.log.notes.get(key)
        if note is None:
            self.log.notes[key] = {"table": self.table, "step": step, "rule": rule, "rows": int(rows), "detail": detail}
            return
        if rows and not note["rows"]:
            note["detail"] = detail
        note["rows"] += int(rows)

    def describe(self, step: str, rule: str, detail: str, *, subject: str | None = None) -> None:
        """Replace the detail of a note made before (a detail known only at the end of the entry)."""
        self.log.notes[(self.table, self.number, step, rule, subject)]["detail"] = detail


class SourceStream:
    """Map the exports in `raw_dir` through the mapping at `mapping_path`, batch by batch.

    `tables`: the tables the mapping fills, in mapping order. `batches()` yields
    (table, staged DataFrame); `log` (LOG_COLUMNS) and `inputs` (INPUT_COLUMNS: one row per
    file and table) are there once `batches()` is exhausted. The mapping is loaded and checked
    here (MappingError); problems with the data raise SourceError from `batches()`.
    """

    def __init__(self, mapping_path: str | Path, raw_dir: str | Path, taxonomy: Taxonomy | str | Path, *,
                 batch_rows: int = BATCH_ROWS):
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValueError(f"SourceStream: batch_rows must be a whole number >= 1, got {batch_rows!r}")
        self.mapping_path = str(mapping_path)
        self.mapping = load_mapping(mapping_path)
        self.raw_dir = Path(raw_dir)
        self.taxonomy = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
        self.batch_rows = batch_rows
        self.tables = list(self.mapping["tables"])
        self._log: pd.DataFrame | None = None
        self._inputs: pd.DataFrame | None = None

    def batches(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """(table, staged batch) in mapping order; each call maps the exports anew."""
        self._log = self._inputs = None
        files, log = self.files(), MappingLog()
        for table, entry in self.entries():
            for batch in self.entry_batches(table, entry, files, log):
                yield table, batch
        self.finish([log], [files.inputs])

    # --- one entry at a time (stage 01 maps entries in worker processes) -------------------
    def entries(self) -> list[tuple[str, dict]]:
        """(table, entry) of every mapping entry, in mapping order."""
        return [(table, entry) for table, entries in self.mapping["tables"].items() for entry in entries]

    def files(self) -> Files:
        """A new `Files` for the raw folder (one per process that reads exports)."""
        return Files(self.raw_dir, self.mapping_path, self.batch_rows, personal_columns(self.mapping))

    def entry_batches(self, table: str, entry: dict, files: Files, log: MappingLog) -> Iterator[pd.DataFrame]:
        """The staged batches of one entry of `entries()`, its notes in `log`, its files in `files.inputs`."""
        return entry_batches(entry, files, self.taxonomy, self.mapping_path, log.entry(table, entry["number"]),
                             self.batch_rows)

    def finish(self, logs: list[MappingLog], inputs: list[list[dict]]) -> None:
        """Set `log` and `inputs` from the logs and `Files.inputs` of the entries, in mapping
        order (what `batches()` gives when it maps them one after the other)."""
        merged = MappingLog()
        for log in logs:
            merged.notes.update(log.notes)
        self._log = merged.frame()
        self._inputs = (pd.DataFrame([row for rows in inputs for row in rows], columns=INPUT_COLUMNS)
                        .drop_duplicates(["file", "table"]).reset_index(drop=True)
                        .astype({"rows": "int64", "bytes": "int64"}))

    @property
    def log(self) -> pd.DataFrame:
        """The mapping log (LOG_COLUMNS), once `batches()` is exhausted."""
        if self._log is None:
            raise RuntimeError("SourceStream.log is known once batches() is exhausted")
        return self._log

    @property
    def inputs(self) -> pd.DataFrame:
        """The files read (INPUT_COLUMNS), once `batches()` is exhausted."""
        if self._inputs is None:
            raise RuntimeError("SourceStream.inputs is known once batches() is exhausted")
        return self._inputs
