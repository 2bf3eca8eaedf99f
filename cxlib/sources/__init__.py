"""Read exports through a source mapping into staged tables (`cxlib.catalog` writes and reads the
processed Parquet).

A source mapping (`config/sources/NAME.yml`, described in docs/source_mapping.md) says how the
files in the raw folder become the canonical tables of `cxlib.schema`. `map_sources` reads
every file as text (codes and leading zeros survive), maps and types the columns and returns
`Staged(tables, log, inputs)`:

- `tables`: table name -> staged DataFrame for every canonical table (tables the mapping does
  not fill are present with zero rows; an optional table such as `labels` only when mapped):
  the columns of `schema.staged_columns(table)` typed by their canonical dtype (string ->
  pandas `str`, float -> float64, int -> Int64, bool -> `boolean`, datetime ->
  datetime64[us, UTC], date -> naive datetime64[us] at midnight), then customers' `is_test`,
  `pii_name`, `pii_email`, `pii_phone`, feedback's `csat_min` (bottom of the mapped CSAT
  scale, for the gate and cleaning), then lineage `_file`, `_row` (file name in the raw
  folder; 1-based row as a spreadsheet shows it, header = row 1).
- `log`: columns `table, step, rule, rows, detail`, one row per rule that touched rows.
- `inputs`: columns `file, table, sha256, rows, bytes`, one row per file and table.

    staged = map_sources("config/sources/demo.yml", "data/raw", load_taxonomy("config/taxonomy.yml"))

`SourceStream` gives the same tables batch by batch, in memory bounded by `batch_rows` (what
`map_sources` concatenates). Every problem raises `SourceError` naming the mapping, the data
file, the column and the first offending rows.

Modules: `mapping` (the mapping language, `load_mapping`), `read` (files as text, chunk by
chunk), `columns` (one canonical column), `entry` (one mapping entry, batch by batch),
`stream` (`SourceStream`), `labels` (hand labels beside the exports).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxlib import schema
from cxlib.config import Taxonomy
from cxlib.sources.entry import empty_table, out_columns, staged_dtypes
from cxlib.sources.labels import read_comment_labels, read_labelled_reviews
from cxlib.sources.mapping import (
    CUSTOMER_EXTRAS, DEFAULTS, FEEDBACK_EXTRAS, FORMATS, INPUT_COLUMNS, LINEAGE, LOG_COLUMNS, N_EXAMPLES,
    SUFFIX_FORMATS, MappingError, SourceError, load_mapping,
)
from cxlib.sources.read import file_fingerprint
from cxlib.sources.stream import BATCH_ROWS, MappingLog, SourceStream

__all__ = [
    "BATCH_ROWS", "CUSTOMER_EXTRAS", "DEFAULTS", "FEEDBACK_EXTRAS", "FORMATS", "INPUT_COLUMNS", "LINEAGE",
    "LOG_COLUMNS", "N_EXAMPLES", "SUFFIX_FORMATS", "MappingError", "MappingLog", "SourceError", "SourceStream", "Staged",
    "empty_table", "file_fingerprint", "load_mapping", "map_sources", "out_columns", "read_comment_labels",
    "read_labelled_reviews", "staged_dtypes",
]


@dataclass(frozen=True)
class Staged:
    """What `map_sources` returns: staged tables, the mapping log, the input files."""

    tables: dict[str, pd.DataFrame]
    log: pd.DataFrame
    inputs: pd.DataFrame


def map_sources(mapping_path: str | Path, raw_dir: str | Path, taxonomy: Taxonomy | str | Path, *,
                batch_rows: int = BATCH_ROWS) -> Staged:
    """Map the exports in `raw_dir` through the mapping at `mapping_path` into staged tables.

    Returns Staged(tables, log, inputs) (see the module docstring): the batches of
    `SourceStream(..., batch_rows=batch_rows)` concatenated per table. Raises SourceError (with
    file, column, rows) on any problem; nothing is written.
    """
    stream = SourceStream(mapping_path, raw_dir, taxonomy, batch_rows=batch_rows)
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in schema.TABLES}
    for table, batch in stream.batches():
        parts[table].append(batch)
    tables = {t: (pd.concat(p, ignore_index=True) if p else empty_table(t)) for t, p in parts.items()
              if t in stream.tables or not schema.TABLES[t].optional}      # an optional table (labels) only when mapped
    return Staged(tables=tables, log=stream.log, inputs=stream.inputs)
