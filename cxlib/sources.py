"""Read exports through a source mapping into staged tables (`cxlib.catalog` writes and reads the
processed Parquet).

A source mapping (`config/sources/NAME.yml`, described in docs/source_mapping.md) says how the
files in the raw folder become the canonical tables of `cxlib.schema`. `map_sources` reads
every file as text (codes and leading zeros survive), maps and types the columns and returns
`Staged(tables, log, inputs)`:

- `tables`: table name -> staged DataFrame for every canonical table (tables the mapping does
  not fill are present with zero rows; an optional table such as `labels` only when mapped): the columns of `schema.staged_columns(table)` typed by
  their canonical dtype (string -> pandas `str`, float -> float64, int -> Int64, bool ->
  `boolean`, datetime -> datetime64[us, UTC], date -> naive datetime64[us] at midnight), then
  customers' `is_test`, `pii_name`, `pii_email`, `pii_phone`, feedback's `csat_min` (bottom of
  the mapped CSAT scale, for the gate and cleaning), then lineage `_file`, `_row`
  (file name in the raw folder; 1-based row as a spreadsheet shows it, header = row 1).
- `log`: columns `table, step, rule, rows, detail`, one row per rule that touched rows.
- `inputs`: columns `file, table, sha256, rows, bytes`, one row per file and table.

    staged = map_sources("config/sources/demo.yml", "data/raw", load_taxonomy("config/taxonomy.yml"))

Every problem raises `SourceError` naming the mapping, the data file, the column and the first
offending rows.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import hashlib
import io
import os
import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd

from cxlib import privacy, reshape, schema
from cxlib.config import ConfigError, Taxonomy, fold, load_taxonomy, load_yaml

# --- the mapping language -----------------------------------------------------------------
TOP_KEYS = {"name", "description", "defaults", "tables"}
ENTRY_KEYS = {"file", "reader", "columns", "constants", "where", "melt", "join", "pii",
              "test_accounts", "ignore", "aggregate", "expect_files"}
SPEC_KEYS = {"from", "constant", "template", "row_number", "values", "default", "dates", "na_values",
             "missing", "unit", "scale", "multiply"}
SOURCE_KEYS = ("from", "constant", "template", "row_number")
READ_KEYS = {"format", "sep", "encoding", "quotechar", "na_values", "skiprows", "sheet", "header", "names"}
PARSE_KEYS = {"decimal", "thousands", "timezone", "max_unparseable_share", "ids_case_sensitive"}
READER_KEYS = READ_KEYS | PARSE_KEYS
MELT_KEYS = {"id", "timestamps", "dates"}
JOIN_KEYS = {"file", "reader", "on", "columns", "unmatched", "join"}
AGGREGATE_KEYS = {"by", "columns"}
DATE_KEYWORDS = ("iso", "dayfirst", "epoch_ms", "epoch_s")
EPOCH_UNITS = {"epoch_ms": "ms", "epoch_s": "s"}
PII_KEYS = {"name": schema.PII_NAME, "email": schema.PII_EMAIL, "phone": schema.PII_PHONE}
FORMATS = {"csv", "excel", "parquet"}
SUFFIX_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "excel", ".xlsm": "excel",
                  ".xls": "excel", ".xlsb": "excel", ".ods": "excel", ".parquet": "parquet",
                  ".pq": "parquet"}
UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "milliseconds": 0.001}
DEFAULTS = {"encoding": "utf-8", "timezone": "Europe/Berlin", "max_unparseable_share": 0.01,
            "decimal": ".", "thousands": None, "quotechar": '"', "na_values": [], "skiprows": 0,
            "sheet": 0, "header": True, "names": None, "ids_case_sensitive": False}

LINEAGE = [schema.SOURCE_FILE, schema.SOURCE_ROW]
CUSTOMER_EXTRAS = [schema.IS_TEST, *schema.PII_COLUMNS]
FEEDBACK_EXTRAS = [schema.CSAT_MIN]      # bottom of the mapped CSAT scale, for the gate and cleaning
LOG_COLUMNS = ["table", "step", "rule", "rows", "detail"]
INPUT_COLUMNS = ["file", "table", "sha256", "rows", "bytes"]
TRUE_WORDS = ("true", "1", "1.0", "ja", "j", "yes", "y", "wahr", "t", "on")
FALSE_WORDS = ("false", "0", "0.0", "nein", "n", "no", "falsch", "f", "off")
# YAML 1.1 reads unquoted yes/no/on/off keys as booleans; a value map key True stands for these.
YAML_BOOL_SPELLINGS = {True: ("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"),
                       False: ("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")}
SINGLE_BYTE = {"latin-1", "latin1", "iso-8859-1", "iso8859-1", "l1", "cp1252", "windows-1252", "iso-8859-15"}
TZ_SUFFIX = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|UTC|[+-]\d{2}:?\d{2})$"
N_EXAMPLES = 5

# internal columns of the working frame (a NUL prefix cannot clash with an export's header)
_FILE, _ROW, _POS = "\0file", "\0row", "\0pos"
_MELT_TS, _MELT_COL, _MELT_POS = "\0melt_ts", "\0melt_col", "\0melt_pos"
_CANON = "\0canon:"   # bool flag column per source column: cell already canonical (typed Excel/Parquet cell)
_JOINED = "\0join:"   # columns brought in by a join
_SHOWN = "\0shown"    # spec key: how messages name the source of a column


class SourceError(ValueError):
    """An export cannot be mapped: the message names mapping, data file, column and rows.

    Attributes: `file` (data file or mapping file), `column` (source or canonical column or
    None), `rows` (1-based row numbers as a spreadsheet shows them, header = row 1).
    """

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 rows: list[int] | None = None):
        super().__init__(message)
        self.file = file
        self.column = column
        self.rows = list(rows or [])


class MappingError(SourceError, ConfigError):
    """The mapping file itself is malformed (caught as SourceError or as ConfigError)."""


@dataclass(frozen=True)
class Staged:
    """What `map_sources` returns: staged tables, the mapping log, the input files."""

    tables: dict[str, pd.DataFrame]
    log: pd.DataFrame
    inputs: pd.DataFrame


# --- files --------------------------------------------------------------------------------
def file_fingerprint(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- loading and checking a mapping -------------------------------------------------------
def load_mapping(path: str | Path) -> dict:
    """Read and check a source mapping; returns it normalised.

    Output: `{"name", "description", "path", "defaults", "tables": {table: [entry, ...]}}`;
    each entry's `columns` holds canonical column -> spec dict (strings become `{"from": ...}`,
    `constants` are merged in as `{"constant": ...}`), and `options` holds the defaults
    overridden by the entry's `reader`. Structural problems raise MappingError naming the file
    and the entry.
    """
    path = Path(path)
    try:
        raw = load_yaml(path)
    except ConfigError as exc:
        raise MappingError(str(exc), file=str(path)) from exc

    def fail(where: str, problem: str, column: str | None = None):
        raise MappingError(f"{path}: {where}: {problem}", file=str(path), column=column)

    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        fail("top level", f"unknown key(s) {unknown}; allowed: {sorted(TOP_KEYS)}")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        fail("defaults", "expected a mapping of reader options")
    options = _check_options({**DEFAULTS, **defaults}, "defaults", fail)
    tables = raw.get("tables")
    if not isinstance(tables, dict) or not tables:
        fail("tables", f"missing or empty; expected canonical table -> list of entries ({sorted(schema.TABLES)})")
    out_tables: dict[str, list[dict]] = {}
    for table, entries in tables.items():
        if table not in schema.TABLES:
            fail(f"tables.{table}", f"unknown canonical table; known: {sorted(schema.TABLES)}")
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list) or not entries:
            fail(f"tables.{table}", "expected a list of entries (each with a `file`)")
        out_tables[table] = [
            _check_entry(entry, table, number, options, fail)
            for number, entry in enumerate(entries, start=1)
        ]
    return {"name": str(raw.get("name") or path.stem), "description": str(raw.get("description") or ""),
            "path": str(path), "defaults": options, "tables": out_tables}


def _check_options(options: dict, where: str, fail) -> dict:
    unknown = sorted(set(options) - READER_KEYS)
    if unknown:
        fail(where, f"unknown reader option(s) {unknown}; allowed: {sorted(READER_KEYS)}")
    if options.get("format") is not None and options["format"] not in FORMATS:
        fail(where, f"format {options['format']!r} is not one of {sorted(FORMATS)}")
    try:
        zoneinfo.ZoneInfo(str(options["timezone"]))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        fail(where, f"timezone {options['timezone']!r} is not an IANA time zone (e.g. Europe/Berlin)")
    share = options["max_unparseable_share"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        fail(where, f"max_unparseable_share must be a number between 0 and 1, got {share!r}")
    if not isinstance(options["skiprows"], int) or isinstance(options["skiprows"], bool) or options["skiprows"] < 0:
        fail(where, f"skiprows must be a whole number >= 0, got {options['skiprows']!r}")
    na = options["na_values"]
    options = {**options, "na_values": [_literal(v) for v in (na if isinstance(na, list) else [na])]}
    for key in ("sep", "decimal", "thousands", "quotechar"):
        if options.get(key) is not None and not isinstance(options[key], str):
            fail(where, f"{key} must be a string, got {options[key]!r}")
    _check_header(options, where, fail)
    if not isinstance(options.get("ids_case_sensitive", False), bool):
        fail(where, f"ids_case_sensitive must be true or false, got {options['ids_case_sensitive']!r}")
    return options


def _check_header(options: dict, where: str, fail) -> None:
    """`header: false` needs `names` (the column names, in file order), and `names` needs it."""
    header, names = options.get("header", True), options.get("names")
    if not isinstance(header, bool):
        fail(where, f"header must be true or false, got {header!r}")
    if header and names is not None:
        fail(where, "`names` is for files without a header row: add `header: false`")
    if not header:
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            fail(where, "`header: false` needs `names`: the column names in file order, e.g. [id, date, score]")
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            fail(where, f"`names` repeats {doubled}")


def _check_entry(entry, table: str, number: int, defaults: dict, fail) -> dict:
    label = f"tables.{table}[{number}]"
    if not isinstance(entry, dict):
        fail(label, "expected a mapping with at least `file`")
    label = f"{label} (file {entry.get('file')!r})"
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        fail(label, f"unknown key(s) {unknown}; allowed: {sorted(ENTRY_KEYS)}")
    if not isinstance(entry.get("file"), str) or not entry["file"].strip():
        fail(label, "missing `file` (file name or glob relative to the raw folder)")
    expect_files = entry.get("expect_files") or []
    if not isinstance(expect_files, list) or not all(isinstance(f, str) and f.strip() for f in expect_files):
        fail(label, "`expect_files` must be a list of the file names the `file` glob must find")
    stray = [f for f in expect_files if not fnmatch.fnmatchcase(f.strip(), entry["file"].strip())]
    if stray:
        fail(label, f"expect_files {stray} do not match `file` {entry['file']!r}")
    reader = entry.get("reader") or {}
    if not isinstance(reader, dict):
        fail(label, "`reader` must be a mapping of reader options")
    options = _check_options({**defaults, **reader}, f"{label} reader", fail)
    staged = schema.staged_columns(table)
    dtypes = {schema.CUSTOMER_REF if c.name == schema.CUSTOMER_ID else c.name: c.dtype
              for c in schema.TABLES[table].columns}

    def check_spec(column: str, spec, where: str) -> dict:
        if column not in staged:
            hint = " (staged tables use customer_ref, the CRM number)" if column == schema.CUSTOMER_ID else ""
            fail(where, f"unknown column {column!r} for table {table}{hint}; known: {staged}", column)
        spec = {"from": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict):
            fail(where, f"column {column!r}: expected a source column name or a spec mapping", column)
        unknown_keys = sorted(set(spec) - SPEC_KEYS)
        if unknown_keys:
            fail(where, f"column {column!r}: unknown key(s) {unknown_keys}; allowed: {sorted(SPEC_KEYS)}", column)
        sources = [k for k in SOURCE_KEYS if k in spec]
        if len(sources) != 1:
            fail(where, f"column {column!r}: give exactly one of `from`, `constant`, `template`, `row_number` "
                        f"(got {sources})", column)
        if "from" in spec and not isinstance(spec["from"], str):
            fail(where, f"column {column!r}: `from` must be a column name", column)
        if "template" in spec:
            _template_fields(spec["template"], lambda p: fail(where, f"column {column!r}: {p}", column))
        if "row_number" in spec and spec["row_number"] is not True:
            fail(where, f"column {column!r}: write `row_number: true` (the row number as a spreadsheet shows it)", column)
        if "values" in spec and not isinstance(spec["values"], dict):
            fail(where, f"column {column!r}: `values` must map source value -> canonical value", column)
        if "na_values" in spec or "missing" in spec:     # `missing` and `na_values` are the same: codes -> missing
            codes = [spec.get(k) for k in ("na_values", "missing") if k in spec]
            spec = {**{k: v for k, v in spec.items() if k != "missing"},
                    "na_values": [v for c in codes for v in (c if isinstance(c, list) else [c])]}
        if "scale" in spec:
            problem = reshape.scale_problem(column, spec["scale"])
            if problem:
                fail(where, f"column {column!r}: {problem}", column)
        if "dates" in spec:
            if dtypes[column] not in ("datetime", "date"):
                fail(where, f"column {column!r}: `dates` given but the column is {dtypes[column]}, not a date", column)
            _check_dates(spec["dates"], lambda p: fail(where, f"column {column!r}: {p}", column))
        if "unit" in spec:
            if spec["unit"] not in UNITS:
                fail(where, f"column {column!r}: unit {spec['unit']!r} is not one of {sorted(UNITS)}", column)
            if not column.endswith("_seconds"):
                fail(where, f"column {column!r}: `unit` converts to seconds and applies to *_seconds columns only", column)
        if "multiply" in spec:
            if dtypes[column] != "float" or not isinstance(spec["multiply"], str):
                fail(where, f"column {column!r}: `multiply` names a source number column and applies to number "
                            f"columns only (e.g. revenue: {{from: Quantity, multiply: UnitPrice}})", column)
        return spec

    columns = entry.get("columns") or {}
    constants = entry.get("constants") or {}
    if not isinstance(columns, dict) or not isinstance(constants, dict):
        fail(label, "`columns` and `constants` must be mappings canonical column -> ...")
    both = sorted(set(columns) & set(constants))
    if both:
        fail(label, f"column(s) {both} given in both `columns` and `constants`")
    specs = {c: check_spec(c, s, label) for c, s in columns.items()}
    specs |= {c: check_spec(c, {"constant": v}, label) for c, v in constants.items()}

    join_specs: dict[str, dict] = {}

    def check_join(join, where: str) -> dict:
        """One join, with the joins of its own file (nested `join`) checked the same way."""
        if not isinstance(join, dict):
            fail(where, "`join` must be a mapping with file, on, columns (or a list of such mappings)")
        join = {("on" if key is True else key): value for key, value in join.items()}   # YAML 1.1: on -> True
        unknown = sorted(set(join) - JOIN_KEYS)
        if unknown:
            fail(where, f"unknown key(s) {unknown}; allowed: {sorted(JOIN_KEYS)}")
        if not isinstance(join.get("file"), str):
            fail(where, "missing `file`")
        if not isinstance(join.get("on"), dict) or not join["on"]:
            fail(where, "`on` must map this file's column -> the joined file's column")
        if not isinstance(join.get("columns") or {}, dict):
            fail(where, "`columns` must map canonical column -> joined file's column")
        if join.get("unmatched", "drop") not in ("drop", "keep"):
            fail(where, f"unmatched must be drop or keep, got {join.get('unmatched')!r}")
        specs = {c: check_spec(c, s, where) for c, s in (join.get("columns") or {}).items()}
        bad = sorted(c for c, s in specs.items() if {"template", "row_number", "multiply"} & set(s))
        if bad:
            fail(where, f"column(s) {bad}: templates, row numbers and multiply are not supported in a join; use `from`")
        both = sorted(set(specs) & (set(specs_of_entry) | set(join_specs)))
        if both:
            fail(where, f"column(s) {both} mapped twice (in `columns` and a join, or in two joins)")
        join_specs.update(specs)
        inner = join.get("join")
        inner = [] if inner is None else inner if isinstance(inner, list) else [inner]
        nested = [check_join(j, f"{where}.join" + (f"[{k}]" if len(inner) > 1 else ""))
                  for k, j in enumerate(inner, start=1)]
        if not specs and not nested:
            fail(where, "`columns` must map canonical column -> joined file's column (here or in a nested `join`)")
        return {**join, "unmatched": join.get("unmatched", "drop"), "specs": specs, "join": nested,
                "options": _check_options({**defaults, **(join.get("reader") or {})}, f"{where} reader", fail)}

    specs_of_entry = specs
    joins = entry.get("join")
    if joins is not None:
        listed = joins if isinstance(joins, list) else [joins]
        if not listed:
            fail(label, "`join` is an empty list")
        joins = [check_join(j, f"{label} join" + (f"[{k}]" if isinstance(joins, list) else ""))
                 for k, j in enumerate(listed, start=1)]

    melt = entry.get("melt")
    if melt is not None:
        if not isinstance(melt, dict):
            fail(label, "`melt` must be a mapping with id and timestamps")
        unknown = sorted(set(melt) - MELT_KEYS)
        if unknown:
            fail(f"{label} melt", f"unknown key(s) {unknown}; allowed: {sorted(MELT_KEYS)}")
        if schema.TIMESTAMP not in staged:
            fail(f"{label} melt", f"table {table} has no `{schema.TIMESTAMP}` column to melt into")
        if schema.TIMESTAMP in specs or schema.TIMESTAMP in join_specs:
            fail(f"{label} melt", f"`{schema.TIMESTAMP}` comes from the melted columns; do not map it too")
        if not isinstance(melt.get("id"), str):
            fail(f"{label} melt", "`id` must name the source column identifying the wide row")
        stamps = melt.get("timestamps")
        if not isinstance(stamps, dict) or not stamps:
            fail(f"{label} melt", "`timestamps` must map source timestamp column -> {canonical column: value}")
        stamps = {c: (v or {}) for c, v in stamps.items()}
        for column, consts in stamps.items():
            if not isinstance(consts, dict):
                fail(f"{label} melt", f"timestamps.{column}: expected {{canonical column: value}}")
            for target in consts:
                check_spec(target, {"constant": consts[target]}, f"{label} melt timestamps.{column}")
        if "dates" in melt:
            _check_dates(melt["dates"], lambda p: fail(f"{label} melt", p))
        melt = {**melt, "timestamps": stamps}

    pii = entry.get("pii")
    if pii is not None:
        if table != "customers":
            fail(label, "`pii` is for customers only")
        if not isinstance(pii, dict) or set(pii) - set(PII_KEYS):
            fail(label, f"`pii` must map some of {sorted(PII_KEYS)} -> source column(s)")
        pii = {k: ([v] if isinstance(v, str) else list(v)) for k, v in pii.items()}
    for key in ("where", "test_accounts"):
        if key in entry and not isinstance(entry[key], str):
            fail(label, f"`{key}` must be a pandas query string")
    if "test_accounts" in entry and table != "customers":
        fail(label, "`test_accounts` is for customers only (cleaning drops their rows in other tables)")
    ignore = entry.get("ignore") or []
    if ignore != "*" and not (isinstance(ignore, list) and all(isinstance(c, str) for c in ignore)):
        fail(label, "`ignore` must be a list of source column names or \"*\"")

    provided = set(specs) | set(join_specs)
    if melt is not None:
        provided |= {schema.TIMESTAMP} | {c for consts in melt["timestamps"].values() for c in consts}
        key = schema.TABLES[table].key
        if len(key) == 1:
            provided.add(key[0])
    missing = [c for c in _required(table) if c not in provided]
    if missing:
        fail(label, f"required column(s) {missing} of table {table} not mapped "
                    f"(map them under `columns`, `constants`, `join` or `melt`)", missing[0])
    if "scale" in {**specs, **join_specs}.get(schema.CSAT, {}) and schema.CSAT_MAX in provided:
        fail(label, f"`{schema.CSAT_MAX}` comes from the csat `scale`; do not map it too", schema.CSAT_MAX)
    aggregate = _check_aggregate(entry.get("aggregate"), provided, dtypes, f"{label} aggregate", fail)
    return {"table": table, "number": number, "label": label, "file": entry["file"].strip(),
            "options": options, "columns": specs, "join": joins, "melt": melt, "pii": pii,
            "where": entry.get("where"), "test_accounts": entry.get("test_accounts"), "ignore": ignore,
            "aggregate": aggregate, "expect_files": [f.strip() for f in expect_files]}


def _check_aggregate(aggregate, provided: set[str], dtypes: dict[str, str], where: str, fail) -> dict | None:
    """`aggregate: {by: [canonical columns], columns: {canonical column: sum|min|max|first|last|count}}`."""
    if aggregate is None:
        return None
    if not isinstance(aggregate, dict) or set(aggregate) - AGGREGATE_KEYS or "by" not in aggregate:
        fail(where, "expected {by: [canonical column, ...], columns: {canonical column: function}}")
    by = [aggregate["by"]] if isinstance(aggregate["by"], str) else aggregate["by"]
    if not isinstance(by, list) or not by or not all(isinstance(c, str) for c in by):
        fail(where, f"`by` must name canonical column(s), got {aggregate['by']!r}")
    functions = aggregate.get("columns") or {}
    if not isinstance(functions, dict):
        fail(where, "`columns` must map canonical column -> function")
    for column in [*by, *functions]:
        if column not in provided:
            fail(where, f"column {column!r} is not mapped in this entry; aggregate names canonical columns "
                        f"(mapped here: {sorted(provided)})", column)
    for column, function in functions.items():
        if column in by:
            fail(where, f"column {column!r} is a key in `by`; it cannot be aggregated too", column)
        if function not in reshape.AGGREGATIONS:
            fail(where, f"column {column!r}: function {function!r} is not one of {list(reshape.AGGREGATIONS)}", column)
        if function in ("sum", "count") and dtypes[column] not in ("float", "int"):
            fail(where, f"column {column!r}: {function} needs a number column, {column} is {dtypes[column]}", column)
    return {"by": by, "columns": dict(functions)}


def _required(table: str) -> list[str]:
    return [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[table].required]


def _check_dates(spec, fail) -> None:
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, list) or not spec or not all(
            isinstance(f, str) and ("%" in f or f in DATE_KEYWORDS) for f in spec):
        fail(f"dates must be 'iso', 'dayfirst', 'epoch_ms', 'epoch_s' or a list of strptime formats like "
             f"['%d.%m.%Y'] (keywords may be listed too), got {spec!r}")


def _template_fields(template, fail) -> list[str]:
    """Column names in a template's braces (any character but braces; `_row`, `_file` are lineage)."""
    try:
        return reshape.template_fields(template)
    except ValueError as exc:
        fail(str(exc))
        return []


def _literal(value) -> str | float:
    """A YAML literal as canonical text: True -> 'true', dates -> ISO, None -> missing."""
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value).strip()


# --- reading files ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Raw:
    """One file read as text: `frame` (source columns as `str`, blank = missing, plus canon
    flag columns and _FILE/_ROW), `columns` (the source column names), bytes and sha256."""

    name: str
    frame: pd.DataFrame
    columns: tuple[str, ...]
    sha256: str
    size: int


class _Files:
    """Reads files once per map_sources call and remembers the inputs."""

    def __init__(self, raw_dir: Path, mapping: str, personal: frozenset[str] = frozenset()):
        self.raw_dir = raw_dir
        self.mapping = mapping
        self.personal = personal          # source columns whose values messages mask
        self.cache: dict[tuple, _Raw] = {}
        self.inputs: list[dict] = []

    def resolve(self, pattern: str, where: str, expected: list[str] | tuple = ()) -> list[Path]:
        """The files matching `pattern` (a name or glob); every name in `expected` must be among them."""
        if not self.raw_dir.is_dir():
            raise SourceError(f"{self.mapping}: {where}: raw folder {self.raw_dir} does not exist",
                              file=str(self.raw_dir))
        if any(ch in pattern for ch in "*?["):
            paths = sorted(Path(p) for p in globlib.glob(str(self.raw_dir / pattern)) if Path(p).is_file())
        else:
            paths = [self.raw_dir / pattern] if (self.raw_dir / pattern).is_file() else []
        if not paths:
            present = sorted(p.name for p in self.raw_dir.iterdir() if not p.name.startswith("."))
            shown = ", ".join(present[:30]) + (" …" if len(present) > 30 else "")
            raise SourceError(
                f"{self.mapping}: {where}: no file matches {pattern!r} in {self.raw_dir}; "
                f"present: {shown or '(nothing)'}", file=pattern)
        found = [Path(os.path.relpath(p, self.raw_dir)).as_posix() for p in paths]
        missing = [f for f in expected if f not in found]
        if missing:
            raise SourceError(
                f"{self.mapping}: {where}: {len(missing)} of the {len(expected)} files listed under expect_files "
                f"not found in {self.raw_dir}: {', '.join(missing)}; {pattern!r} matched: {', '.join(found)}",
                file=missing[0])
        return paths

    def read(self, path: Path, options: dict, table: str, where: str) -> _Raw:
        fmt = options.get("format") or SUFFIX_FORMATS.get(path.suffix.lower(), "csv")
        read_opts = tuple((k, repr(options.get(k))) for k in sorted(READ_KEYS))
        key = (str(path.resolve()), fmt, read_opts)
        if key not in self.cache:
            data = path.read_bytes()
            name = Path(os.path.relpath(path, self.raw_dir)).as_posix()
            prefix = f"{self.mapping}: {where}: {name}"
            if not data:
                raise SourceError(f"{prefix}: the file is empty (0 bytes)", file=name)
            reader = {"csv": _read_csv, "excel": _read_excel, "parquet": _read_parquet}[fmt]
            frame = _drop_blank(reader(data, options, prefix, name))
            columns = tuple(c for c in frame.columns if not c.startswith("\0"))
            if frame.empty:
                raise SourceError(f"{prefix}: the file has a header but no data rows", file=name)
            self.cache[key] = _Raw(name, frame.assign(**{_FILE: name}), columns,
                                   hashlib.sha256(data).hexdigest(), len(data))
        raw = self.cache[key]
        self.inputs.append({"file": raw.name, "table": table, "sha256": raw.sha256,
                            "rows": len(raw.frame), "bytes": raw.size})
        return raw


def _read_csv(data: bytes, options: dict, prefix: str, name: str) -> pd.DataFrame:
    encoding = str(options["encoding"])
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    wide = _wide_encoding(data)
    if wide and not encoding.lower().replace("_", "-").startswith(("utf-16", "utf16", "utf-32", "utf32")):
        raise SourceError(
            f"{prefix}: the file is {wide.upper()} text (a byte-order mark or NUL bytes between the letters, "
            f"as Excel's 'Unicode text' export writes it), not {encoding}; set `encoding: {wide}` in the "
            f"entry's reader", file=name, rows=[1])
    try:
        text = data.decode(codec)
    except LookupError as exc:
        raise SourceError(f"{prefix}: unknown encoding {encoding!r}", file=name) from exc
    except UnicodeDecodeError as exc:
        line, column = _csv_position(data, exc.start, options, name)
        raise SourceError(
            f"{prefix}: not readable as {encoding}: byte 0x{data[exc.start]:02x} in row {line}, column {column!r}; "
            f"set `encoding: latin-1` (or cp1252) in the entry's reader if the export comes from Excel "
            f"or an older system", file=name, column=column, rows=[line]) from exc
    if codec.lower().replace("_", "-") in SINGLE_BYTE and re.search(rb"[\x80-\xff]", data):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass   # not UTF-8: the single-byte encoding is plausible
        else:
            at = re.search(rb"[\x80-\xff]", data).start()
            line, column = _csv_position(data, at, options, name)
            raise SourceError(
                f"{prefix}: the file is UTF-8 but the mapping reads it as {encoding}, which would garble "
                f"accented letters (first in row {line}, column {column!r}); set `encoding: utf-8`",
                file=name, column=column, rows=[line])
    sep = options.get("sep") or ("\t" if name.lower().endswith(".tsv") else ",")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                            skip_blank_lines=False, skiprows=options["skiprows"],
                            quotechar=options.get("quotechar") or '"', header=0 if options["header"] else None)
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{prefix}: the file is empty (no header row)", file=name) from exc
    except pd.errors.ParserError as exc:
        raise SourceError(f"{prefix}: cannot be parsed as CSV with sep {sep!r}: {exc}", file=name) from exc
    first = 2 if options["header"] else 1                  # spreadsheet row of the first data row
    rows = np.arange(len(frame)) + first + options["skiprows"]
    names = [str(c).strip() for c in frame.columns] if options["header"] else _given_names(frame, options, prefix, name)
    return _clean_text(frame.set_axis(names, axis=1), options).assign(**{_ROW: rows})


def _given_names(frame: pd.DataFrame, options: dict, prefix: str, name: str) -> list[str]:
    """The mapping's `names` for a file without a header row; their number must match the columns."""
    names = [n.strip() for n in options["names"]]
    if len(names) != frame.shape[1]:
        raise SourceError(f"{prefix}: `names` gives {len(names)} column names but the file has {frame.shape[1]} "
                          f"columns (sep {options.get('sep') or ','!r}) in row {1 + options['skiprows']}",
                          file=name, rows=[1 + options["skiprows"]])
    return names


def _wide_encoding(data: bytes) -> str | None:
    """'utf-16' / 'utf-32' for a byte-order mark, 'utf-16-le' / 'utf-16-be' for NUL bytes between
    the letters of the first 4 KB; None for a byte-oriented file."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    head = data[:4096]
    if b"\x00" not in head:
        return None
    return "utf-16-le" if head[1::2].count(0) >= head[0::2].count(0) else "utf-16-be"


def _csv_position(data: bytes, at: int, options: dict, name: str) -> tuple[int, str]:
    """Row (as a spreadsheet shows it) and column name of byte `at` of a CSV file: the separators
    before it on its line index the header (quotes are not considered). The cell itself is never
    quoted: it may hold personal data."""
    line = data[:at].count(b"\n") + 1
    sep = options.get("sep") or ("\t" if name.lower().endswith(".tsv") else ",")
    start = data.rfind(b"\n", 0, at) + 1
    field = data[start:at].count(sep.encode("utf-8"))
    if options.get("header", True):
        lines = data.split(b"\n", options["skiprows"] + 1)
        header = lines[options["skiprows"]] if len(lines) > options["skiprows"] else b""
        try:
            header_text = header.decode("utf-8")
        except UnicodeDecodeError:
            header_text = header.decode("latin-1")
        names = [c.strip().strip('"') for c in header_text.lstrip("\ufeff").split(sep)]
    else:
        names = [str(c) for c in options.get("names") or []]
    column = names[field] if field < len(names) and names[field] else f"column {field + 1}"
    return line, column


def _read_excel(data: bytes, options: dict, prefix: str, name: str) -> pd.DataFrame:
    sheet = options.get("sheet", 0)
    try:
        book = pd.ExcelFile(io.BytesIO(data), engine="calamine")
    except Exception as exc:  # calamine raises its own error types for damaged files
        raise SourceError(f"{prefix}: cannot be read as an Excel workbook: {exc}", file=name) from exc
    if (isinstance(sheet, int) and not 0 <= sheet < len(book.sheet_names)) or \
            (not isinstance(sheet, int) and str(sheet) not in book.sheet_names):
        raise SourceError(f"{prefix}: no sheet {sheet!r}; sheets: {book.sheet_names}", file=name)
    cells = pd.read_excel(book, sheet_name=sheet, header=None, dtype=object)   # index = sheet row - 1
    cells = cells.iloc[options["skiprows"]:]
    filled = cells.notna().any(axis=1)
    if not filled.any():
        raise SourceError(f"{prefix}: sheet {sheet!r} is empty", file=name)
    header_at = filled.idxmax()
    if options["header"]:
        header = [str(_literal(v)) if pd.notna(v) else "" for v in cells.loc[header_at]]
        body = cells.loc[header_at + 1:]
        names = _unique_names(header)
    else:                                           # no header row: the first filled row is data
        width = len(options["names"])
        body = cells.loc[header_at:].reindex(columns=range(max(cells.shape[1], width)))
        body = body.loc[:, [c for c in body.columns if c < width or body[c].notna().any()]]
        names = _given_names(body, options, prefix, name)
    text, canon = _cells_to_text(body.set_axis(names, axis=1))
    frame = _clean_text(text, options)
    flags = {_CANON + c: canon[c] & frame[c].notna() for c in frame.columns if canon[c].any()}
    return frame.assign(**flags, **{_ROW: (body.index + 1).to_numpy()}).reset_index(drop=True)


def _read_parquet(data: bytes, options: dict, prefix: str, name: str) -> pd.DataFrame:
    if not options["header"]:
        raise SourceError(f"{prefix}: `header: false` is for CSV and Excel files; Parquet names its columns",
                          file=name)
    try:
        typed = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises ArrowInvalid and others for damaged files
        raise SourceError(f"{prefix}: cannot be read as Parquet: {exc}", file=name) from exc
    text, canon = _cells_to_text(typed.reset_index(drop=True).set_axis([str(c) for c in typed.columns], axis=1))
    frame = _clean_text(text, options)
    flags = {_CANON + c: canon[c] & frame[c].notna() for c in frame.columns if canon[c].any()}
    return frame.assign(**flags, **{_ROW: np.arange(len(frame)) + 1})


def _unique_names(names: list[str]) -> list[str]:
    out: list[str] = []
    for i, n in enumerate(names):
        n = n.strip() or f"Unnamed: {i}"
        base, k = n, 1
        while n in out:
            n, k = f"{base}.{k}", k + 1
        out.append(n)
    return out


def _cells_to_text(cells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed cells (Excel/Parquet) -> (text, canon): numbers, dates and booleans become canonical
    text ('12', '0.5', '2024-01-05 10:30:00', 'true') flagged canonical; strings stay source text."""
    text, canon = {}, {}
    for column in cells.columns:
        values = cells[column]
        kinds = values.map(type, na_action="ignore") if values.dtype == object else None
        is_bool = kinds.isin([bool, np.bool_]) if kinds is not None else pd.Series(pd.api.types.is_bool_dtype(values), index=values.index)
        is_time = kinds.isin([datetime, pd.Timestamp, date]) if kinds is not None else pd.Series(
            pd.api.types.is_datetime64_any_dtype(values), index=values.index)
        is_num = (kinds.isin([int, float, np.int64, np.float64]) if kinds is not None
                  else pd.Series(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values),
                                 index=values.index))
        is_num = is_num & values.notna()
        other = ~(is_bool | is_time | is_num) & values.notna()        # strings (and the rest) stay text
        out = pd.Series(np.nan, index=values.index, dtype="str")
        if other.any():
            out = out.mask(other, values.where(other).astype(object).astype("str"))
        if is_bool.any():
            out = out.mask(is_bool, values.where(is_bool).map({True: "true", False: "false"}, na_action="ignore"))
        if is_time.any():
            stamps = pd.to_datetime(values.where(is_time), errors="coerce")
            out = out.mask(is_time & stamps.notna(), stamps.astype("str"))
        if is_num.any():
            numbers = pd.to_numeric(values.where(is_num), errors="coerce")
            whole = numbers.notna() & numbers.eq(numbers.round()) & numbers.abs().lt(2 ** 53)
            out = out.mask(whole, numbers.where(whole).astype("Int64").astype("str"))
            out = out.mask(is_num & ~whole, numbers.astype("str"))
        text[column] = out.astype("str")
        canon[column] = (is_bool | is_time | is_num) & values.notna()
    return pd.DataFrame(text, index=cells.index), pd.DataFrame(canon, index=cells.index, dtype=bool)


def _clean_text(frame: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Trim every cell; blank and the reader's na_values become missing; drop unnamed empty columns."""
    na = [v for v in options.get("na_values", []) if isinstance(v, str)]
    cleaned = {c: frame[c].astype("str").str.strip().pipe(lambda s: s.mask(s.eq("") | s.isin(na)))
               for c in frame.columns}
    out = pd.DataFrame(cleaned, index=frame.index)
    empty_unnamed = [c for c in out.columns if c.startswith("Unnamed: ") and out[c].isna().all()]
    return out.drop(columns=empty_unnamed)


def _drop_blank(frame: pd.DataFrame) -> pd.DataFrame:
    source = [c for c in frame.columns if not c.startswith("\0")]
    return frame.loc[frame[source].notna().any(axis=1)].reset_index(drop=True)


# --- mapping one entry --------------------------------------------------------------------
@dataclass(frozen=True)
class _Ctx:
    mapping: str
    table: str
    label: str
    options: dict
    personal: frozenset[str] = frozenset()    # source columns whose values messages mask

    def fail(self, problem: str, *, file: str | None = None, column: str | None = None,
             rows: list[int] | None = None):
        raise SourceError(f"{self.mapping}: {self.label}: {problem}", file=file, column=column, rows=rows)


def map_sources(mapping_path: str | Path, raw_dir: str | Path, taxonomy: Taxonomy | str | Path) -> Staged:
    """Map the exports in `raw_dir` through the mapping at `mapping_path` into staged tables.

    Returns Staged(tables, log, inputs) (see the module docstring). Raises SourceError (with
    file, column, rows) on any problem; nothing is written.
    """
    mapping = load_mapping(mapping_path)
    taxonomy = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
    files = _Files(Path(raw_dir), str(mapping_path), _personal_columns(mapping))
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in schema.TABLES}
    logs: list[dict] = []
    for table, entries in mapping["tables"].items():
        for entry in entries:
            frame, log = _map_entry(entry, files, taxonomy, str(mapping_path))
            parts[table].append(frame)
            logs.extend(log)
    tables = {t: (pd.concat(p, ignore_index=True) if p else _empty(t)) for t, p in parts.items()
              if p or not schema.TABLES[t].optional}      # an optional table (labels) only when mapped
    inputs = pd.DataFrame(files.inputs, columns=INPUT_COLUMNS).drop_duplicates(["file", "table"]) \
        .reset_index(drop=True).astype({"rows": "int64", "bytes": "int64"})
    log = pd.DataFrame(logs, columns=LOG_COLUMNS).astype({"rows": "int64"})
    return Staged(tables=tables, log=log, inputs=inputs)


def _out_columns(table: str) -> list[str]:
    extras = {"customers": CUSTOMER_EXTRAS, "feedback": FEEDBACK_EXTRAS}.get(table, [])
    return schema.staged_columns(table) + extras + LINEAGE


def _dtypes(table: str) -> dict[str, str]:
    canon = {schema.CUSTOMER_REF if c.name == schema.CUSTOMER_ID else c.name: schema.PANDAS_DTYPES[c.dtype]
             for c in schema.TABLES[table].columns}
    extras = {schema.IS_TEST: "bool", **{c: "str" for c in schema.PII_COLUMNS}} if table == "customers" else {}
    extras |= {schema.CSAT_MIN: "float64"} if table == "feedback" else {}
    return canon | extras | {schema.SOURCE_FILE: "str", schema.SOURCE_ROW: "int64"}


def _empty(table: str) -> pd.DataFrame:
    """A staged table with every column and zero rows."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in _dtypes(table).items()})[_out_columns(table)]


def _map_entry(entry: dict, files: _Files, taxonomy: Taxonomy, mapping: str) -> tuple[pd.DataFrame, list[dict]]:
    table, options = entry["table"], entry["options"]
    ctx = _Ctx(mapping, table, entry["label"], options, files.personal)
    log: list[dict] = []

    def note(step: str, rule: str, rows: int, detail: str = "") -> None:
        if rows or step == "read":
            log.append({"table": table, "step": step, "rule": rule, "rows": int(rows), "detail": detail})

    raws = [files.read(p, options, table, entry["label"])
            for p in files.resolve(entry["file"], entry["label"], entry["expect_files"])]
    for raw in raws:
        _check_columns(raw, entry, ctx)
        note("read", "rows read", len(raw.frame), raw.name + _sheet_note(raw.name, options))
    src = pd.concat([r.frame for r in raws], ignore_index=True)
    source_columns = list(dict.fromkeys(c for r in raws for c in r.columns))

    if entry["where"]:
        keep = _query(src, source_columns, entry["where"], ctx, "where")
        note("where", "rows left out by where", int((~keep).sum()), entry["where"])
        src = src.loc[keep].reset_index(drop=True)
    specs = dict(entry["columns"])
    if any("row_number" in spec for spec in specs.values()) and len(raws) > 1:
        ctx.fail(f"`row_number` repeats across the {len(raws)} files matched ({', '.join(r.name for r in raws)}); "
                 f"use a template naming the file too, e.g. '{{_file}}-{{_row}}'", file=raws[1].name)
    for number, join in enumerate(entry["join"] or [], start=1):
        src, join_specs = _join(src, join, files, ctx, note, str(number))
        specs |= join_specs
    overrides: dict[str, pd.Series] = {}
    if entry["melt"]:
        src, overrides = _melt(src, entry["melt"], set(specs), ctx, note)
        specs[schema.TIMESTAMP] = {"from": _MELT_TS, _SHOWN: ", ".join(entry["melt"]["timestamps"]),
                                   **({"dates": entry["melt"]["dates"]} if "dates" in entry["melt"] else {})}

    columns = {}
    for column in schema.TABLES[table].columns:
        name = schema.CUSTOMER_REF if column.name == schema.CUSTOMER_ID else column.name
        columns[name] = _column(src, name, column, specs.get(name), overrides.get(name), ctx, taxonomy, note)
    if schema.CUSTOMER_REF in columns:
        columns[schema.CUSTOMER_REF] = _normalise_ids(columns[schema.CUSTOMER_REF], src, ctx, note)
    out = pd.DataFrame(columns, index=src.index)
    if table == "customers":
        out = out.assign(**_customer_extras(src, source_columns, entry, ctx, note))
    if table == "feedback":
        out = out.assign(**_scale_columns(specs.get(schema.CSAT), out))
    out = out.assign(**{schema.SOURCE_FILE: src[_FILE].astype("str"), schema.SOURCE_ROW: src[_ROW].astype("int64")})
    out = out[_out_columns(table)].astype(_dtypes(table))
    if entry["aggregate"]:
        out = _aggregate(out, entry["aggregate"], note).astype(_dtypes(table))
    return out.reset_index(drop=True), log


def _personal_columns(mapping: dict) -> frozenset[str]:
    """Source columns whose values identify a person: the `pii` columns, those mapped (also in
    joins, also inside templates) onto a personal canonical column (`privacy.PERSONAL_COLUMNS`:
    customer_ref, comment, text), and join keys matched to one of them. Messages mask their values."""
    personal: set[str] = set()
    entries = [e for es in mapping["tables"].values() for e in es]
    joins, todo = [], [j for e in entries for j in (e["join"] or [])]
    while todo:
        joins.append(todo.pop())
        todo.extend(joins[-1].get("join") or [])
    for specs in [e["columns"] for e in entries] + [j["specs"] for j in joins]:
        for column, spec in specs.items():
            if column in privacy.PERSONAL_COLUMNS:
                personal |= {spec["from"]} if "from" in spec else set()
                personal |= set(_template_fields(spec["template"], lambda p: None)) if "template" in spec else set()
    personal |= {c for e in entries for names in (e["pii"] or {}).values() for c in names}
    personal |= {c for j in joins for pair in j["on"].items() if set(pair) & personal for c in pair}
    return frozenset(personal)


def _normalise_ids(refs: pd.Series, src: pd.DataFrame, ctx: _Ctx, note) -> pd.Series:
    """Customer numbers in one spelling: Unicode NFKC (no-break and full-width characters), blanks
    and zero-width characters at either end removed, and upper case unless the reader option
    `ids_case_sensitive` is true (k0000002 and K0000002 are one customer: CRM and ERP numbers
    are case-insensitive almost everywhere, and a split customer would silently lose or gain
    consent, while a wrong merge shows as a conflicting duplicate key in cleaning). The log counts
    the values changed and names their rows, never the numbers."""
    out = refs.astype("str")
    wide = out.notna() & ~out.str.isascii().fillna(True).astype(bool)     # NFKC is slow: only where it can matter
    if wide.any():
        out = out.mask(wide, out.loc[wide].str.normalize("NFKC"))
    out = out.str.strip(" \t\r\n\u00a0\u200b\u200c\u200d\u2060\ufeff")
    if not ctx.options.get("ids_case_sensitive", False):
        out = out.str.upper()
    out = out.mask(out.eq(""))
    changed = refs.astype("str").ne(out) & refs.notna()
    if changed.any():
        how = "blanks" if ctx.options.get("ids_case_sensitive", False) else "blanks, case"
        note("ids", f"customer numbers normalised ({how})", int(changed.sum()),
             _examples(src.loc[changed], refs.loc[changed], schema.CUSTOMER_REF, personal=True, n=3))
    return out


def _scale_columns(spec: dict | None, out: pd.DataFrame) -> dict[str, pd.Series]:
    """csat_max (staged) and csat_min (staged only) from the csat `scale`; without one, csat_max
    stays as mapped (missing means 1-5) and csat_min is missing."""
    if not spec or "scale" not in spec:
        return {schema.CSAT_MIN: pd.Series(np.nan, index=out.index, dtype="float64")}
    low, high = spec["scale"]
    return {schema.CSAT_MIN: pd.Series(float(low), index=out.index), schema.CSAT_MAX: pd.Series(float(high), index=out.index)}


def _aggregate(out: pd.DataFrame, aggregate: dict, note) -> pd.DataFrame:
    """One staged row per key of `aggregate.by`; lineage (_file, _row) of the group's first row,
    is_test when any row is a test account."""
    combined = reshape.aggregate(out, aggregate["by"], aggregate["columns"],
                                 overrides={schema.SOURCE_ROW: "first", schema.SOURCE_FILE: "first", schema.IS_TEST: "max"})
    how = ", ".join(f"{c}: {f}" for c, f in aggregate["columns"].items()) or "first value of every column"
    note("aggregate", "rows combined into one row per key", len(out) - len(combined),
         f"{len(out):,} rows -> {len(combined):,} by {', '.join(aggregate['by'])} ({how}; other columns: first non-blank)")
    return combined


def _sheet_note(name: str, options: dict) -> str:
    fmt = options.get("format") or SUFFIX_FORMATS.get(Path(name).suffix.lower(), "csv")
    return f" (sheet {options.get('sheet', 0)!r})" if fmt == "excel" else ""


def _query_names(expression: str, columns: list[str]) -> set[str]:
    """Source columns an expression refers to (backticked names and bare identifiers)."""
    tokens = set(re.findall(r"`([^`]+)`", expression)) | set(re.findall(r"\w+", expression))
    return tokens & set(columns)


def _named_columns(entry: dict) -> set[str]:
    """Source columns an entry names explicitly (from, template, pii, melt, join keys)."""
    used = set()
    for spec in entry["columns"].values():
        if "from" in spec:
            used.add(spec["from"])
        if "multiply" in spec:
            used.add(spec["multiply"])
        if "template" in spec:
            used |= set(_template_fields(spec["template"], lambda p: None)) - {reshape.ROW_FIELD, reshape.FILE_FIELD}
    for names in (entry["pii"] or {}).values():
        used |= set(names)
    if entry["melt"]:
        used |= {entry["melt"]["id"], *entry["melt"]["timestamps"]}
    for join in entry["join"] or []:
        used |= set(join["on"])
    return used


def _check_columns(raw: _Raw, entry: dict, ctx: _Ctx) -> None:
    """Mapped columns must exist in the file; unmapped ones must be ignored."""
    columns = list(raw.columns)
    named = _named_columns(entry)
    missing = sorted(named - set(columns))
    if missing:
        # no mapped column at all in the first row: it may be data (no header row, wrong sep), never quoted
        blind = not named & set(columns)
        present = f"the first row has {len(columns)} field(s), not shown" if blind else f"columns present: {columns}"
        seps = [repr(ch) for ch in (";", "\t", "|", ",") if len(columns) == 1 and ch in columns[0]]
        hint = (f"; the first row was read as one column containing {', '.join(seps)}: is `sep` right?" if seps
                else "; if the file has no header row, set `header: false` with `names: [...]`" if blind else "")
        ctx.fail(f"{raw.name}: mapped column(s) {missing} not in the file; {present}{hint}",
                 file=raw.name, column=missing[0], rows=[1])
    if entry["ignore"] == "*":
        return
    queried = _query_names(" ".join(filter(None, [entry["where"], entry["test_accounts"]])), columns)
    unmapped = [c for c in columns if c not in named | queried | set(entry["ignore"])]
    if unmapped:
        ctx.fail(f"{raw.name}: column(s) {unmapped} are neither mapped nor listed under `ignore` "
                 f"(add them to `ignore` if they are not needed, or use ignore: \"*\")",
                 file=raw.name, column=unmapped[0], rows=[1])


def _query(src: pd.DataFrame, columns: list[str], expression: str, ctx: _Ctx, key: str) -> pd.Series:
    """Evaluate a pandas query on the source columns -> boolean mask (missing counts as False)."""
    try:
        result = src[columns].eval(expression, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression; re-raised with context
        ctx.fail(f"`{key}: {expression}` cannot be evaluated on the source columns ({type(exc).__name__}: {exc}); "
                 f"source values are text, e.g. Status == 'storniert'", file=_files_of(src), column=None)
    if not isinstance(result, pd.Series) or not (pd.api.types.is_bool_dtype(result) or result.isna().all()):
        ctx.fail(f"`{key}: {expression}` does not give true/false per row", file=_files_of(src))
    return result.astype("boolean").fillna(False).astype(bool)


def _canon(src: pd.DataFrame, column: str) -> pd.Series:
    """The canonical-cell flags of a source column (all False for plain text files)."""
    flags = src.get(_CANON + column)
    return pd.Series(False, index=src.index) if flags is None else flags.fillna(False).astype(bool)


def _files_of(src: pd.DataFrame) -> str:
    return ", ".join(pd.unique(src[_FILE]))


def _join(src: pd.DataFrame, join: dict, files: _Files, ctx: _Ctx, note, tag: str = "1") -> tuple[pd.DataFrame, dict]:
    """Left-join the rows of `src` to a lookup file on `join.on`; returns the frame and the
    join's column specs pointing at the joined columns. A nested `join` is applied to the lookup
    file first (review -> order -> customer); `tag` ("1", "1.1", ...) keeps each hop's columns apart."""
    where = f"{ctx.label} join" + ("" if tag == "1" else f" {tag}")
    prefix = f"{_JOINED}{tag}:"
    paths = files.resolve(join["file"], where)
    others = [files.read(p, join["options"], ctx.table, where) for p in paths]
    other = pd.concat([o.frame for o in others], ignore_index=True)
    name = ", ".join(o.name for o in others)
    left_keys, right_keys = list(join["on"]), list(join["on"].values())
    absent = [c for c in left_keys if c not in src.columns]
    if absent:
        ctx.fail(f"join {tag} on {name}: key column(s) {absent} not in the file joined from; columns present: "
                 f"{sorted(c for c in src.columns if not c.startswith(chr(0)))}", file=_files_of(src), column=absent[0])
    needed = list(dict.fromkeys(right_keys + [s["from"] for s in join["specs"].values() if "from" in s]))
    present = set().union(*(o.columns for o in others))
    missing = [c for c in needed if c not in present]
    if missing:
        ctx.fail(f"join file {name}: column(s) {missing} not in the file; columns present: {sorted(present)}",
                 file=name, column=missing[0], rows=[1])
    inner_specs: dict[str, dict] = {}
    for number, inner in enumerate(join["join"], start=1):
        other, specs = _join(other, inner, files, ctx, note, f"{tag}.{number}")
        inner_specs |= specs
    other = other.loc[other[right_keys].notna().all(axis=1)]
    dup = other.duplicated(right_keys, keep=False)
    if dup.any():
        bad = other.loc[dup]
        keys = bad[right_keys].astype("str").agg(" | ".join, axis=1)
        shown = _examples(bad, keys, " | ".join(right_keys), personal=bool(set(right_keys) & ctx.personal))
        ctx.fail(f"join file {name}: key {right_keys} is not unique ({int(dup.sum())} rows share a key); "
                 f"first rows: {shown}",
                 file=str(bad[_FILE].iloc[0]), column=right_keys[0], rows=bad[_ROW].tolist())
    carried = needed + [s["from"] for s in inner_specs.values() if "from" in s]
    renamed = {c: prefix + c for c in carried} | {_CANON + c: _CANON + prefix + c for c in carried}
    right = other[[c for c in renamed if c in other.columns]].rename(columns=renamed)
    merged = src.merge(right, how="left", left_on=left_keys, right_on=[prefix + c for c in right_keys],
                       indicator="\0merge", validate="many_to_one")
    matched = merged["\0merge"].eq("both")
    detail = f"{name} on {', '.join(f'{a} = {b}' for a, b in join['on'].items())}"
    if join["unmatched"] == "drop":
        note("join", "rows dropped: no match in the joined file", int((~matched).sum()), detail)
        merged = merged.loc[matched]
    else:
        note("join", "rows kept without a match in the joined file (joined columns blank)", int((~matched).sum()), detail)
    merged = merged.drop(columns="\0merge").reset_index(drop=True)
    specs = {col: ({**spec, "from": prefix + spec["from"], _SHOWN: spec.get(_SHOWN, spec["from"])} if "from" in spec else spec)
             for col, spec in (join["specs"] | inner_specs).items()}
    return merged, specs


def _melt(src: pd.DataFrame, melt: dict, mapped: set[str], ctx: _Ctx, note) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """One wide row -> one row per non-blank timestamp column; returns the long frame and the
    per-row constants of each timestamp column (canonical column -> text series). An unmapped
    single key column (event_id) becomes '<id>-<touchpoint>' (or '<id>-<timestamp column>')."""
    stamps = melt["timestamps"]
    ordered = src.assign(**{_POS: np.arange(len(src))})
    pieces = [
        ordered.loc[ordered[column].notna()].assign(**{
            _MELT_TS: ordered[column], _MELT_COL: column, _MELT_POS: number,
            _CANON + _MELT_TS: _canon(ordered, column)})
        for number, column in enumerate(stamps)
    ]
    long = pd.concat(pieces).sort_values([_POS, _MELT_POS], kind="stable").reset_index(drop=True)
    note("melt", "rows made from wide timestamp columns", len(long), ", ".join(stamps))
    targets = sorted({t for consts in stamps.values() for t in consts})
    overrides = {t: long[_MELT_COL].map({c: _literal(consts[t]) for c, consts in stamps.items() if t in consts})
                 for t in targets}
    key = schema.TABLES[ctx.table].key
    if len(key) == 1 and key[0] not in mapped and key[0] not in overrides:
        label = long[_MELT_COL].map({c: str(consts.get(schema.TOUCHPOINT, c)) for c, consts in stamps.items()})
        overrides[key[0]] = long[melt["id"]] + "-" + label
    return long, overrides


def _customer_extras(src: pd.DataFrame, columns: list[str], entry: dict, ctx: _Ctx, note) -> dict:
    """is_test from `test_accounts`; pii_name / pii_email / pii_phone from `pii`."""
    extras = {schema.IS_TEST: pd.Series(False, index=src.index)}
    if entry["test_accounts"]:
        flagged = _query(src, columns, entry["test_accounts"], ctx, "test_accounts")
        note("test_accounts", "rows flagged as test accounts", int(flagged.sum()), entry["test_accounts"])
        extras[schema.IS_TEST] = flagged
    for key, target in PII_KEYS.items():
        names = (entry["pii"] or {}).get(key)
        if not names:
            extras[target] = pd.Series(np.nan, index=src.index, dtype="str")
            continue
        joined = src[names[0]].fillna("")
        for name in names[1:]:
            joined = joined.str.cat(src[name].fillna(""), sep=" ")
        joined = joined.str.replace(r"\s+", " ", regex=True).str.strip()
        extras[target] = joined.mask(joined.eq(""))
    return extras


# --- one column: source text -> typed canonical values -------------------------------------
def _column(src: pd.DataFrame, name: str, column: schema.Column, spec: dict | None, override: pd.Series | None,
            ctx: _Ctx, taxonomy: Taxonomy, note) -> pd.Series:
    """The typed values of canonical column `name` for every row of `src`."""
    index = src.index
    if spec is None:
        text, canon = pd.Series(np.nan, index=index, dtype="str"), pd.Series(True, index=index)
    elif "constant" in spec:
        text, canon = pd.Series(_literal(spec["constant"]), index=index, dtype="str"), pd.Series(True, index=index)
    elif "template" in spec:
        lineage = {reshape.ROW_FIELD: src[_ROW].astype("int64").astype("str"), reshape.FILE_FIELD: src[_FILE].astype("str")}
        text = pd.Series("", index=index, dtype="str")
        for literal, field in reshape.template_parts(spec["template"]):
            text = text + literal + ("" if field is None else lineage[field] if field in lineage else src[field])
        canon = pd.Series(False, index=index)
    elif "row_number" in spec:
        text, canon = src[_ROW].astype("int64").astype("str"), pd.Series(True, index=index)
    else:
        text, canon = src[spec["from"]].astype("str"), _canon(src, spec["from"])
    spec = spec or {}
    blank = text.isna()
    shown = (spec.get(_SHOWN) or spec.get("from", "").replace(_JOINED, "") or spec.get("template")
             or ("row number" if "row_number" in spec else f"constant {spec.get('constant')!r}"))
    if spec.get("na_values"):
        na = [_literal(v) for v in spec["na_values"]]
        hit = text.isin(na)
        note("na_values", "values set to missing by na_values", int(hit.sum()), f"{name} ({na})")
        text = text.mask(hit)
    if spec.get("values") and not column.separator:      # a list column maps each of its codes
        vmap = _value_map(spec["values"])
        hit = text.isin(list(vmap))
        note("values", "values mapped by the value map", int(hit.sum()), name)
        text, canon = text.mask(hit, text.map(vmap)).astype("str"), canon | hit
    if "default" in spec:
        missing = text.isna()
        note("default", "blanks filled with the default", int(missing.sum()), f"{name} = {spec['default']!r}")
        text, canon = text.fillna(_literal(spec["default"])).astype("str"), canon | missing
    elif column.separator and set(spec) & {"from", "template"}:
        empty = blank & text.isna()          # a blank cell of a mapped list column: the empty list (no code applies)
        note("default", "blank cells read as an empty list (no code applies)", int(empty.sum()), name)
        text = text.mask(empty, "").astype("str")
    if override is not None:
        hit = override.notna()
        text, canon = text.mask(hit, override).astype("str"), canon | hit
    if column.separator:
        text = _code_list(text, spec.get("values"), column, taxonomy, name, note)
    elif column.codes:
        text = _normalise_codes(text, column.codes, taxonomy, name, note)
    if name == schema.LANGUAGE:
        codes = reshape.language_codes(text)
        changed = codes.ne(text) & text.notna()
        pairs = pd.DataFrame({"a": text[changed], "b": codes[changed]}).drop_duplicates().head(3)
        shown_changes = ", ".join(f"{a!r} -> {b!r}" for a, b in pairs.itertuples(index=False))
        note("codes", "language names normalised to ISO 639-1 codes", int(changed.sum()), f"{name}: {shown_changes}")
        text = codes
    typed = _typed(text, canon, column.dtype, name, shown, src, spec, ctx, note)
    if "unit" in spec and UNITS[spec["unit"]] != 1.0:
        note("unit", f"{spec['unit']} converted to seconds", int(typed.notna().sum()), name)
        typed = typed * UNITS[spec["unit"]]
    if "multiply" in spec:
        factor = _typed(src[spec["multiply"]].astype("str"), _canon(src, spec["multiply"]), "float", name,
                        spec["multiply"], src, {}, ctx, note)
        note("multiply", f"values multiplied by {spec['multiply']!r}", int(typed.notna().sum()), name)
        typed = typed * factor
    return typed


def _value_map(values: dict) -> dict[str, str | float]:
    """Value map keys as trimmed text (YAML booleans expanded to their spellings)."""
    out: dict[str, str | float] = {}
    for key, value in values.items():
        keys = YAML_BOOL_SPELLINGS[key] if isinstance(key, bool) else (_literal(key),)
        out |= {k: _literal(value) for k in keys}
    return out


def _code_list(text: pd.Series, values: dict | None, column: schema.Column, taxonomy: Taxonomy, name: str,
               note) -> pd.Series:
    """A list column's cells ('Lieferung; billing|price') -> canonical codes joined by
    `column.separator` ('delivery;billing;price'): split at ; | or comma, each code through the
    value map and the taxonomy aliases, repeats dropped; '' stays the empty list, missing stays
    missing; unknown codes are left for the validation gate."""
    parts = text.dropna().str.split(r"[;|,]", regex=True).explode().str.strip().astype("str")
    parts = parts.loc[parts.ne("")]
    if values:
        vmap = _value_map(values)
        hit = parts.isin(list(vmap))
        note("values", "codes mapped by the value map", int(hit.sum()), name)
        parts = parts.mask(hit, parts.map(vmap)).astype("str").loc[lambda d: d.notna() & d.ne("")]
    if column.codes:
        parts = _normalise_codes(parts, column.codes, taxonomy, name, note)
    joined = (parts.rename("code").rename_axis("row").reset_index().drop_duplicates()
              .groupby("row", sort=False)["code"].agg(column.separator.join))
    return text.mask(text.notna(), joined.reindex(text.index).fillna("")).astype("str")


def _normalise_codes(text: pd.Series, section: str, taxonomy: Taxonomy, name: str, note) -> pd.Series:
    """Spellings -> canonical codes through the taxonomy aliases (case, blanks, umlauts ignored;
    a code set of `schema.CODE_SETS` also takes the spellings of `schema.CODE_ALIASES`);
    unknown values are left as they are for the validation gate."""
    if section in taxonomy.data:
        aliases = taxonomy.aliases(section)
    elif section in schema.CODE_SETS:
        aliases = {**{fold(k): v for k, v in schema.CODE_ALIASES.get(section, {}).items()},
                   **{fold(c): c for c in schema.CODE_SETS[section]}}
    else:
        return text
    distinct = pd.unique(text.dropna())
    lookup = {v: aliases.get(fold(v), v) for v in distinct}   # once per distinct value, not per row
    out = text.map(lookup, na_action="ignore").astype("str")
    changed = out.ne(text) & text.notna()
    examples = ", ".join(f"{privacy.shown_value(a)} -> {privacy.shown_value(b)}"
                         for a, b in list({k: v for k, v in lookup.items() if k != v}.items())[:3])
    note("codes", "values normalised by taxonomy alias", int(changed.sum()), f"{name}: {examples}")
    known = set(aliases.values())
    unknown = out.notna() & ~out.isin(known)
    shown = ", ".join(privacy.shown_value(v) for v in pd.unique(out[unknown])[:N_EXAMPLES])
    note("codes", f"values not in taxonomy section {section} (left for the validation gate)", int(unknown.sum()),
         f"{name}: {shown}")
    return out


def _typed(text: pd.Series, canon: pd.Series, dtype: str, name: str, shown: str, src: pd.DataFrame,
           spec: dict, ctx: _Ctx, note) -> pd.Series:
    options = ctx.options
    if dtype == "string":
        return text.astype("str")
    if dtype in ("float", "int"):
        values = _to_number(text, canon, options.get("decimal") or ".", options.get("thousands"))
        if dtype == "int":
            values = values.where(values.eq(values.round()))
        bad = text.notna() & values.isna()
        _check_bad(bad, text, src, name, shown, "numbers", ctx, note)
        return values.astype("Int64") if dtype == "int" else values.astype("float64")
    if dtype == "bool":
        words = {**{w: True for w in TRUE_WORDS}, **{w: False for w in FALSE_WORDS}}
        values = text.str.lower().map(words, na_action="ignore").astype("boolean")
        _check_bad(text.notna() & values.isna(), text, src, name, shown, "booleans", ctx, note)
        return values
    if dtype in ("datetime", "date"):
        tz = str(options["timezone"])
        formats = spec.get("dates", "iso")
        values = _to_datetime(text.where(~canon), formats, tz)
        epochs = [f for f in ([formats] if isinstance(formats, str) else formats) if f in EPOCH_UNITS]
        values = values.mask(canon & text.notna(), _to_datetime(text.where(canon), ["iso", *epochs], tz))
        _check_bad(text.notna() & values.isna(), text, src, name, shown, "dates", ctx, note, formats)
        if dtype == "date":
            return values.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize().astype("datetime64[us]")
        return values
    raise ValueError(f"unknown canonical dtype {dtype!r} of column {name}")


def _to_number(text: pd.Series, canon: pd.Series, decimal: str, thousands: str | None) -> pd.Series:
    """Text -> float64; source text uses the reader's decimal and thousands signs, canonical text a dot."""
    source = text.where(~canon)
    if thousands:
        source = source.str.replace(thousands, "", regex=False)
    if decimal != ".":
        source = source.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(source.where(~canon, text), errors="coerce").astype("float64")


def _to_datetime(text: pd.Series, formats, tz: str) -> pd.Series:
    """Text -> datetime64[us, UTC]. Formats are tried in order, each on the values still
    unparsed. Values with an offset are converted; naive date-times are local time of `tz`;
    dates without a time of day stay on their calendar date (midnight UTC); epoch_ms / epoch_s
    count (milli)seconds since 1970-01-01 UTC."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if formats in ("iso", "dayfirst"):
        steps = ["iso", formats] if formats == "dayfirst" else ["iso"]
    else:
        steps = [formats] if isinstance(formats, str) else list(formats)
    for step in steps:
        todo = text.notna() & result.isna()
        if not todo.any():
            break
        values = text.loc[todo]
        if step in EPOCH_UNITS:
            parsed = pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit=EPOCH_UNITS[step], utc=True,
                                    errors="coerce")
        elif step in ("iso", "dayfirst"):
            aware = values.str.contains(TZ_SUFFIX, regex=True)
            dated = ~aware & reshape.date_only_text(values)
            naive = ~aware & ~dated
            kwargs = {"format": "ISO8601"} if step == "iso" else {"format": "mixed", "dayfirst": True}
            parsed = pd.concat([
                pd.to_datetime(values.loc[aware].str.replace(r"\s*UTC$", "Z", regex=True), utc=True,
                               errors="coerce", **kwargs),
                _localise(pd.to_datetime(values.loc[dated], errors="coerce", **kwargs), "UTC"),
                _localise(pd.to_datetime(values.loc[naive], errors="coerce", **kwargs), tz),
            ])
        elif "%z" in step or "%Z" in step:
            parsed = pd.to_datetime(values, format=step, utc=True, errors="coerce")
        else:
            zone = "UTC" if reshape.date_only_format(step) else tz
            parsed = _localise(pd.to_datetime(values, format=step, errors="coerce"), zone)
        result = result.mask(todo, parsed.reindex(text.index).dt.as_unit("us"))
    return result


def _localise(naive: pd.Series, tz: str) -> pd.Series:
    """Naive local times -> UTC (an ambiguous autumn hour counts as standard time; a skipped
    spring hour is moved forward)."""
    naive = pd.to_datetime(naive, errors="coerce")
    if naive.dt.tz is not None:
        return naive.dt.tz_convert("UTC")
    return naive.dt.tz_localize(tz, ambiguous=np.zeros(len(naive), dtype=bool),
                                nonexistent="shift_forward").dt.tz_convert("UTC")


def _check_bad(bad: pd.Series, text: pd.Series, src: pd.DataFrame, name: str, shown: str, kind: str,
               ctx: _Ctx, note, formats=None) -> None:
    """Too many unparseable values stop the run; a few become missing and are logged."""
    n_bad = int(bad.sum())
    if not n_bad:
        return
    n = int(text.notna().sum())
    share, limit = n_bad / n, float(ctx.options["max_unparseable_share"])
    rows = src.loc[bad]
    examples = _examples(rows, text.loc[bad], shown, personal=name in privacy.PERSONAL_COLUMNS or shown in ctx.personal)
    how = f" (dates: {formats!r}, timezone {ctx.options['timezone']})" if kind == "dates" else (
        f" (decimal {ctx.options.get('decimal') or '.'!r}, thousands {ctx.options.get('thousands')!r})"
        if kind == "numbers" else "")
    if share > limit:
        ctx.fail(f"{_files_of(rows)}: column {shown!r} (-> {name}): {n_bad} of {n} values are not valid "
                 f"{kind}{how}, more than max_unparseable_share {limit:g}; first rows: {examples}",
                 file=str(rows[_FILE].iloc[0]), column=shown, rows=rows[_ROW].astype(int).tolist())
    note(kind, f"unparseable {kind} set to missing", n_bad, f"{name} from {shown!r}: {examples}")


def _examples(rows: pd.DataFrame, values: pd.Series, column: str = "value", *, personal: bool = False,
              n: int = N_EXAMPLES) -> str:
    """"Datum='31.02.2024' (crm.csv row 3); Datum='gestern' (crm.csv row 7)" for the first n rows
    (`privacy.example_rows`: a personal column's values are masked, others scrubbed and shortened)."""
    frame = pd.DataFrame({column: values.astype(object), _FILE: rows[_FILE], _ROW: rows[_ROW]}, index=rows.index)
    return privacy.example_rows(frame, [column], personal={column} if personal else (), file_column=_FILE,
                                row_column=_ROW, n=n)


def read_labelled_reviews(reviews_file: str | Path, labels_file: str | Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A real review export with hand-made theme labels, to measure the text analysis on, or None
    when either file is absent (the reviews live outside the repository, in ../shared).

    Reviews (CSV, first column the row id, `Title`, `Review Text`, `Rating`) -> reviews with a
    `comment` (title. text) and `Rating`, rows without text left out; labels (CSV: row_id, themes,
    set) -> indexed by row_id. A labelled row id missing from the reviews is an error.
    """
    reviews_file, labels_file = Path(reviews_file), Path(labels_file)
    if not (reviews_file.is_file() and labels_file.is_file()):
        return None
    reviews = pd.read_csv(reviews_file, index_col=0)
    missing = [c for c in ("Title", "Review Text", "Rating") if c not in reviews.columns]
    if missing:
        raise SourceError(f"{reviews_file}: reviews lack column(s) {missing}; found {list(reviews.columns)}",
                          file=str(reviews_file), column=missing[0])
    reviews = (reviews.loc[lambda d: d["Review Text"].notna()]
               .assign(comment=lambda d: (d["Title"].fillna("") + ". " + d["Review Text"]).str.strip(". ")))
    labels = pd.read_csv(labels_file, index_col="row_id", keep_default_na=False)
    unknown = labels.index.difference(reviews.index)
    if len(unknown):
        raise SourceError(f"{labels_file}: {len(unknown)} labelled row ids are not reviews with text in {reviews_file}; "
                          f"first: {list(unknown[:5])}", file=str(labels_file), column="row_id")
    return reviews, labels


def read_comment_labels(raw_dir: str | Path) -> pd.DataFrame | None:
    """Hand or demo labels of comments beside the exports (`<raw_dir>/_truth/comment_labels.csv`:
    response_id, language, themes, sentiment, ...; all text, blanks kept as ""), or None when
    the folder has none (real exports usually don't)."""
    path = Path(raw_dir) / schema.TRUTH_DIR / schema.COMMENT_LABELS_FILE
    if not path.is_file():
        return None
    labels = pd.read_csv(path, dtype="str", keep_default_na=False)
    missing = [c for c in (schema.RESPONSE_ID, "language", "themes", "sentiment") if c not in labels.columns]
    if missing:
        raise SourceError(f"{path}: comment labels lack column(s) {missing}; found {list(labels.columns)}",
                          file=str(path), column=missing[0])
    return labels
