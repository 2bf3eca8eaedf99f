"""Read exports through a source mapping into staged tables; read and write processed Parquet.

A source mapping (`config/sources/NAME.yml`, described in docs/source_mapping.md) says how the
files in the raw folder become the canonical tables of `cxlib.schema`. `map_sources` reads
every file as text (codes and leading zeros survive), maps and types the columns and returns
`Staged(tables, log, inputs)`:

- `tables`: table name -> staged DataFrame for every canonical table (tables the mapping does
  not fill are present with zero rows): the columns of `schema.staged_columns(table)` typed by
  their canonical dtype (string -> pandas `str`, float -> float64, int -> Int64, bool ->
  `boolean`, datetime -> datetime64[us, UTC], date -> naive datetime64[us] at midnight), then
  customers' `is_test`, `pii_name`, `pii_email`, `pii_phone`, then lineage `_file`, `_row`
  (file name in the raw folder; 1-based row as a spreadsheet shows it, header = row 1).
- `log`: columns `table, step, rule, rows, detail`, one row per rule that touched rows.
- `inputs`: columns `file, table, sha256, rows, bytes`, one row per file and table.

    staged = map_sources("config/sources/demo.yml", "data/raw", load_taxonomy("config/taxonomy.yml"))

Every problem raises `SourceError` naming the mapping, the data file, the column and the first
offending rows. `write_processed` replaces `data/processed` atomically (temp folder + rename);
`read_processed` reads it back.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import io
import os
import re
import shutil
import string
import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd

from cxlib import schema
from cxlib.config import ConfigError, Taxonomy, fold, load_taxonomy, load_yaml

# --- the mapping language -----------------------------------------------------------------
TOP_KEYS = {"name", "description", "defaults", "tables"}
ENTRY_KEYS = {"file", "reader", "columns", "constants", "where", "melt", "join", "pii",
              "test_accounts", "ignore"}
SPEC_KEYS = {"from", "constant", "template", "values", "default", "dates", "na_values", "unit"}
SOURCE_KEYS = ("from", "constant", "template")
READ_KEYS = {"format", "sep", "encoding", "quotechar", "na_values", "skiprows", "sheet"}
PARSE_KEYS = {"decimal", "thousands", "timezone", "max_unparseable_share"}
READER_KEYS = READ_KEYS | PARSE_KEYS
MELT_KEYS = {"id", "timestamps", "dates"}
JOIN_KEYS = {"file", "reader", "on", "columns", "unmatched"}
PII_KEYS = {"name": schema.PII_NAME, "email": schema.PII_EMAIL, "phone": schema.PII_PHONE}
FORMATS = {"csv", "excel", "parquet"}
SUFFIX_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "excel", ".xlsm": "excel",
                  ".xls": "excel", ".xlsb": "excel", ".ods": "excel", ".parquet": "parquet",
                  ".pq": "parquet"}
UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "milliseconds": 0.001}
DEFAULTS = {"encoding": "utf-8", "timezone": "Europe/Berlin", "max_unparseable_share": 0.01,
            "decimal": ".", "thousands": None, "quotechar": '"', "na_values": [], "skiprows": 0,
            "sheet": 0}

LINEAGE = [schema.SOURCE_FILE, schema.SOURCE_ROW]
CUSTOMER_EXTRAS = [schema.IS_TEST, *schema.PII_COLUMNS]
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
    return options


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
            fail(where, f"column {column!r}: give exactly one of `from`, `constant`, `template` (got {sources})", column)
        if "from" in spec and not isinstance(spec["from"], str):
            fail(where, f"column {column!r}: `from` must be a column name", column)
        if "template" in spec:
            _template_fields(spec["template"], lambda p: fail(where, f"column {column!r}: {p}", column))
        if "values" in spec and not isinstance(spec["values"], dict):
            fail(where, f"column {column!r}: `values` must map source value -> canonical value", column)
        if "na_values" in spec and not isinstance(spec["na_values"], list):
            spec = {**spec, "na_values": [spec["na_values"]]}
        if "dates" in spec:
            if dtypes[column] not in ("datetime", "date"):
                fail(where, f"column {column!r}: `dates` given but the column is {dtypes[column]}, not a date", column)
            _check_dates(spec["dates"], lambda p: fail(where, f"column {column!r}: {p}", column))
        if "unit" in spec:
            if spec["unit"] not in UNITS:
                fail(where, f"column {column!r}: unit {spec['unit']!r} is not one of {sorted(UNITS)}", column)
            if not column.endswith("_seconds"):
                fail(where, f"column {column!r}: `unit` converts to seconds and applies to *_seconds columns only", column)
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

    join = entry.get("join")
    join_specs: dict[str, dict] = {}
    if join is not None:
        if not isinstance(join, dict):
            fail(label, "`join` must be a mapping with file, on, columns")
        join = {("on" if key is True else key): value for key, value in join.items()}   # YAML 1.1: on -> True
        unknown = sorted(set(join) - JOIN_KEYS)
        if unknown:
            fail(f"{label} join", f"unknown key(s) {unknown}; allowed: {sorted(JOIN_KEYS)}")
        if not isinstance(join.get("file"), str):
            fail(f"{label} join", "missing `file`")
        if not isinstance(join.get("on"), dict) or not join["on"]:
            fail(f"{label} join", "`on` must map this file's column -> the joined file's column")
        if not isinstance(join.get("columns"), dict) or not join["columns"]:
            fail(f"{label} join", "`columns` must map canonical column -> joined file's column")
        if join.get("unmatched", "drop") not in ("drop", "keep"):
            fail(f"{label} join", f"unmatched must be drop or keep, got {join.get('unmatched')!r}")
        join_specs = {c: check_spec(c, s, f"{label} join") for c, s in join["columns"].items()}
        bad = sorted(c for c, s in join_specs.items() if "template" in s)
        if bad:
            fail(f"{label} join", f"column(s) {bad}: templates are not supported in a join; use `from`")
        both = sorted(set(join_specs) & set(specs))
        if both:
            fail(label, f"column(s) {both} mapped both in `columns` and in `join.columns`")
        join = {**join, "unmatched": join.get("unmatched", "drop"),
                "options": _check_options({**defaults, **(join.get("reader") or {})}, f"{label} join reader", fail),
                "specs": join_specs}

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
    return {"table": table, "number": number, "label": label, "file": entry["file"].strip(),
            "options": options, "columns": specs, "join": join, "melt": melt, "pii": pii,
            "where": entry.get("where"), "test_accounts": entry.get("test_accounts"), "ignore": ignore}


def _required(table: str) -> list[str]:
    return [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[table].required]


def _check_dates(spec, fail) -> None:
    if spec in ("iso", "dayfirst"):
        return
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, list) or not spec or not all(isinstance(f, str) and "%" in f for f in spec):
        fail(f"dates must be 'iso', 'dayfirst' or a list of strptime formats like ['%d.%m.%Y'], got {spec!r}")


def _template_fields(template, fail) -> list[str]:
    if not isinstance(template, str):
        fail("`template` must be a string with source columns in braces")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        fail(f"template {template!r}: {exc}")
    if any(spec or conv for _, field, spec, conv in parts if field is not None):
        fail(f"template {template!r}: only plain {{column}} fields are supported")
    fields = [field for _, field, _, _ in parts if field is not None]
    if not fields or "" in fields:
        fail(f"template {template!r}: name the source columns in braces, e.g. '{{Bestellnummer}}-storno'")
    return fields


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

    def __init__(self, raw_dir: Path, mapping: str):
        self.raw_dir = raw_dir
        self.mapping = mapping
        self.cache: dict[tuple, _Raw] = {}
        self.inputs: list[dict] = []

    def resolve(self, pattern: str, where: str) -> list[Path]:
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
    try:
        text = data.decode(codec)
    except LookupError as exc:
        raise SourceError(f"{prefix}: unknown encoding {encoding!r}", file=name) from exc
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            f"{prefix}: not readable as {encoding}: byte {data[exc.start:exc.start + 1]!r} in row {line}; "
            f"set `encoding: latin-1` (or cp1252) in the entry's reader if the export comes from Excel "
            f"or an older system", file=name, rows=[line]) from exc
    if codec.lower().replace("_", "-") in SINGLE_BYTE and re.search(rb"[\x80-\xff]", data):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass   # not UTF-8: the single-byte encoding is plausible
        else:
            line = data[: re.search(rb"[\x80-\xff]", data).start()].count(b"\n") + 1
            raise SourceError(
                f"{prefix}: the file is UTF-8 but the mapping reads it as {encoding}, which would garble "
                f"accented letters (row {line}: {text.splitlines()[line - 1][:60]!r}); set `encoding: utf-8`",
                file=name, rows=[line])
    sep = options.get("sep") or ("\t" if name.lower().endswith(".tsv") else ",")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                            skip_blank_lines=False, skiprows=options["skiprows"],
                            quotechar=options.get("quotechar") or '"')
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{prefix}: the file is empty (no header row)", file=name) from exc
    except pd.errors.ParserError as exc:
        raise SourceError(f"{prefix}: cannot be parsed as CSV with sep {sep!r}: {exc}", file=name) from exc
    rows = np.arange(len(frame)) + 2 + options["skiprows"]
    return _clean_text(frame.set_axis([str(c).strip() for c in frame.columns], axis=1), options) \
        .assign(**{_ROW: rows})


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
    header = [str(_literal(v)) if pd.notna(v) else "" for v in cells.loc[header_at]]
    body = cells.loc[header_at + 1:]
    text, canon = _cells_to_text(body.set_axis(_unique_names(header), axis=1))
    frame = _clean_text(text, options)
    flags = {_CANON + c: canon[c] & frame[c].notna() for c in frame.columns if canon[c].any()}
    return frame.assign(**flags, **{_ROW: (body.index + 1).to_numpy()}).reset_index(drop=True)


def _read_parquet(data: bytes, options: dict, prefix: str, name: str) -> pd.DataFrame:
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
    files = _Files(Path(raw_dir), str(mapping_path))
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in schema.TABLES}
    logs: list[dict] = []
    for table, entries in mapping["tables"].items():
        for entry in entries:
            frame, log = _map_entry(entry, files, taxonomy, str(mapping_path))
            parts[table].append(frame)
            logs.extend(log)
    tables = {t: (pd.concat(p, ignore_index=True) if p else _empty(t)) for t, p in parts.items()}
    inputs = pd.DataFrame(files.inputs, columns=INPUT_COLUMNS).drop_duplicates(["file", "table"]) \
        .reset_index(drop=True).astype({"rows": "int64", "bytes": "int64"})
    log = pd.DataFrame(logs, columns=LOG_COLUMNS).astype({"rows": "int64"})
    return Staged(tables=tables, log=log, inputs=inputs)


def _out_columns(table: str) -> list[str]:
    return schema.staged_columns(table) + (CUSTOMER_EXTRAS if table == "customers" else []) + LINEAGE


def _dtypes(table: str) -> dict[str, str]:
    canon = {schema.CUSTOMER_REF if c.name == schema.CUSTOMER_ID else c.name: schema.PANDAS_DTYPES[c.dtype]
             for c in schema.TABLES[table].columns}
    extras = {schema.IS_TEST: "bool", **{c: "str" for c in schema.PII_COLUMNS}} if table == "customers" else {}
    return canon | extras | {schema.SOURCE_FILE: "str", schema.SOURCE_ROW: "int64"}


def _empty(table: str) -> pd.DataFrame:
    """A staged table with every column and zero rows."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in _dtypes(table).items()})[_out_columns(table)]


def _map_entry(entry: dict, files: _Files, taxonomy: Taxonomy, mapping: str) -> tuple[pd.DataFrame, list[dict]]:
    table, options = entry["table"], entry["options"]
    ctx = _Ctx(mapping, table, entry["label"], options)
    log: list[dict] = []

    def note(step: str, rule: str, rows: int, detail: str = "") -> None:
        if rows or step == "read":
            log.append({"table": table, "step": step, "rule": rule, "rows": int(rows), "detail": detail})

    raws = [files.read(p, options, table, entry["label"]) for p in files.resolve(entry["file"], entry["label"])]
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
    if entry["join"]:
        src, join_specs = _join(src, entry["join"], files, ctx, note)
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
    out = pd.DataFrame(columns, index=src.index)
    if table == "customers":
        out = out.assign(**_customer_extras(src, source_columns, entry, ctx, note))
    out = out.assign(**{schema.SOURCE_FILE: src[_FILE].astype("str"), schema.SOURCE_ROW: src[_ROW].astype("int64")})
    return out[_out_columns(table)].astype(_dtypes(table)).reset_index(drop=True), log


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
        if "template" in spec:
            used |= set(_template_fields(spec["template"], lambda p: None))
    for names in (entry["pii"] or {}).values():
        used |= set(names)
    if entry["melt"]:
        used |= {entry["melt"]["id"], *entry["melt"]["timestamps"]}
    if entry["join"]:
        used |= set(entry["join"]["on"])
    return used


def _check_columns(raw: _Raw, entry: dict, ctx: _Ctx) -> None:
    """Mapped columns must exist in the file; unmapped ones must be ignored."""
    columns = list(raw.columns)
    named = _named_columns(entry)
    missing = sorted(named - set(columns))
    if missing:
        hint = ""
        if len(columns) == 1 and any(ch in columns[0] for ch in ";\t|,"):
            hint = f"; the header was read as one column {columns[0]!r}: is `sep` right?"
        ctx.fail(f"{raw.name}: mapped column(s) {missing} not in the file; columns present: {columns}{hint}",
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


def _join(src: pd.DataFrame, join: dict, files: _Files, ctx: _Ctx, note) -> tuple[pd.DataFrame, dict]:
    """Left-join the rows of `src` to a lookup file on `join.on`; returns the frame and the
    join's column specs pointing at the joined columns."""
    where = f"{ctx.label} join"
    paths = files.resolve(join["file"], where)
    others = [files.read(p, join["options"], ctx.table, where) for p in paths]
    other = pd.concat([o.frame for o in others], ignore_index=True)
    name = ", ".join(o.name for o in others)
    right_keys = list(join["on"].values())
    needed = list(dict.fromkeys(right_keys + [s["from"] for s in join["specs"].values() if "from" in s]))
    present = set().union(*(o.columns for o in others))
    missing = [c for c in needed if c not in present]
    if missing:
        ctx.fail(f"join file {name}: column(s) {missing} not in the file; columns present: {sorted(present)}",
                 file=name, column=missing[0], rows=[1])
    other = other.loc[other[right_keys].notna().all(axis=1)]
    dup = other.duplicated(right_keys, keep=False)
    if dup.any():
        bad = other.loc[dup]
        ctx.fail(f"join file {name}: key {right_keys} is not unique ({int(dup.sum())} rows share a key); "
                 f"first rows: {_examples(bad, bad[right_keys].astype('str').agg(' | '.join, axis=1))}",
                 file=str(bad[_FILE].iloc[0]), column=right_keys[0], rows=bad[_ROW].tolist())
    renamed = {c: _JOINED + c for c in needed} | {_CANON + c: _CANON + _JOINED + c for c in needed}
    right = other[[c for c in renamed if c in other.columns]].rename(columns=renamed)
    left_keys = list(join["on"])
    merged = src.merge(right, how="left", left_on=left_keys, right_on=[_JOINED + c for c in right_keys],
                       indicator="\0merge", validate="many_to_one")
    matched = merged["\0merge"].eq("both")
    detail = f"{name} on {', '.join(f'{a} = {b}' for a, b in join['on'].items())}"
    if join["unmatched"] == "drop":
        note("join", "rows dropped: no match in the joined file", int((~matched).sum()), detail)
        merged = merged.loc[matched]
    else:
        note("join", "rows kept without a match in the joined file (joined columns blank)", int((~matched).sum()), detail)
    merged = merged.drop(columns="\0merge").reset_index(drop=True)
    specs = {col: ({**spec, "from": _JOINED + spec["from"]} if "from" in spec else spec)
             for col, spec in join["specs"].items()}
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
        text = pd.Series("", index=index, dtype="str")
        for literal, field, _, _ in string.Formatter().parse(spec["template"]):
            text = text + literal + (src[field] if field is not None else "")
        canon = pd.Series(False, index=index)
    else:
        text, canon = src[spec["from"]].astype("str"), _canon(src, spec["from"])
    spec = spec or {}
    shown = (spec.get(_SHOWN) or spec.get("from", "").replace(_JOINED, "") or spec.get("template")
             or f"constant {spec.get('constant')!r}")
    if spec.get("na_values"):
        na = [_literal(v) for v in spec["na_values"]]
        hit = text.isin(na)
        note("na_values", "values set to missing by na_values", int(hit.sum()), f"{name} ({na})")
        text = text.mask(hit)
    if spec.get("values"):
        vmap = _value_map(spec["values"])
        hit = text.isin(list(vmap))
        note("values", "values mapped by the value map", int(hit.sum()), name)
        text, canon = text.mask(hit, text.map(vmap)).astype("str"), canon | hit
    if "default" in spec:
        blank = text.isna()
        note("default", "blanks filled with the default", int(blank.sum()), f"{name} = {spec['default']!r}")
        text, canon = text.fillna(_literal(spec["default"])).astype("str"), canon | blank
    if override is not None:
        hit = override.notna()
        text, canon = text.mask(hit, override).astype("str"), canon | hit
    if column.codes:
        text = _normalise_codes(text, column.codes, taxonomy, name, note)
    typed = _typed(text, canon, column.dtype, name, shown, src, spec, ctx, note)
    if "unit" in spec and UNITS[spec["unit"]] != 1.0:
        note("unit", f"{spec['unit']} converted to seconds", int(typed.notna().sum()), name)
        typed = typed * UNITS[spec["unit"]]
    return typed


def _value_map(values: dict) -> dict[str, str | float]:
    """Value map keys as trimmed text (YAML booleans expanded to their spellings)."""
    out: dict[str, str | float] = {}
    for key, value in values.items():
        keys = YAML_BOOL_SPELLINGS[key] if isinstance(key, bool) else (_literal(key),)
        out |= {k: _literal(value) for k in keys}
    return out


def _normalise_codes(text: pd.Series, section: str, taxonomy: Taxonomy, name: str, note) -> pd.Series:
    """Spellings -> canonical codes through the taxonomy aliases (case, blanks, umlauts ignored);
    unknown values are left as they are for the validation gate."""
    if section in taxonomy.data:
        aliases = taxonomy.aliases(section)
    elif section in schema.CODE_SETS:
        aliases = {fold(c): c for c in schema.CODE_SETS[section]}
    else:
        return text
    distinct = pd.unique(text.dropna())
    lookup = {v: aliases.get(fold(v), v) for v in distinct}   # once per distinct value, not per row
    out = text.map(lookup, na_action="ignore").astype("str")
    changed = out.ne(text) & text.notna()
    examples = ", ".join(f"{a!r} -> {b!r}" for a, b in list({k: v for k, v in lookup.items() if k != v}.items())[:3])
    note("codes", "values normalised by taxonomy alias", int(changed.sum()), f"{name}: {examples}")
    known = set(aliases.values())
    unknown = out.notna() & ~out.isin(known)
    shown = ", ".join(repr(v) for v in pd.unique(out[unknown])[:N_EXAMPLES])
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
        values = values.mask(canon & text.notna(), _to_datetime(text.where(canon), "iso", tz))
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
    unparsed. Values with an offset are converted; naive ones are local time of `tz`."""
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
        if step in ("iso", "dayfirst"):
            aware = values.str.contains(TZ_SUFFIX, regex=True)
            kwargs = {"format": "ISO8601"} if step == "iso" else {"format": "mixed", "dayfirst": True}
            parsed = pd.concat([
                pd.to_datetime(values.loc[aware].str.replace(r"\s*UTC$", "Z", regex=True), utc=True,
                               errors="coerce", **kwargs),
                _localise(pd.to_datetime(values.loc[~aware], errors="coerce", **kwargs), tz),
            ])
        elif "%z" in step or "%Z" in step:
            parsed = pd.to_datetime(values, format=step, utc=True, errors="coerce")
        else:
            parsed = _localise(pd.to_datetime(values, format=step, errors="coerce"), tz)
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
    examples = _examples(rows, text.loc[bad])
    how = f" (dates: {formats!r}, timezone {ctx.options['timezone']})" if kind == "dates" else (
        f" (decimal {ctx.options.get('decimal') or '.'!r}, thousands {ctx.options.get('thousands')!r})"
        if kind == "numbers" else "")
    if share > limit:
        ctx.fail(f"{_files_of(rows)}: column {shown!r} (-> {name}): {n_bad} of {n} values are not valid "
                 f"{kind}{how}, more than max_unparseable_share {limit:g}; first rows: {examples}",
                 file=str(rows[_FILE].iloc[0]), column=shown, rows=rows[_ROW].astype(int).tolist())
    note(kind, f"unparseable {kind} set to missing", n_bad, f"{name} from {shown!r}: {examples}")


def _examples(rows: pd.DataFrame, values: pd.Series, n: int = N_EXAMPLES) -> str:
    """'crm.csv row 3: '31.02.2024'; row 7: 'gestern'' for the first n rows."""
    head = pd.DataFrame({"file": rows[_FILE].astype("str"), "row": rows[_ROW].astype("int64").astype("str"),
                         "value": values.astype(object).map(repr)}).head(n)
    label = (head["file"] + " row ").where(head["file"].ne(head["file"].shift()), "row ")
    return "; ".join((label + head["row"] + ": " + head["value"]).tolist())


# --- processed tables ---------------------------------------------------------------------
RESTRICTED_DIR = "restricted"


def write_processed(tables: dict[str, pd.DataFrame], processed_dir: str | Path,
                    restricted: dict[str, pd.DataFrame] | None = None) -> list[Path]:
    """Write `tables` as `<processed_dir>/<name>.parquet` (and `restricted` under
    `<processed_dir>/restricted/`, readable by the owner only: folder 0700, files 0600)
    atomically: everything goes into a sibling temp folder that then replaces `processed_dir` by
    renames. On any error `processed_dir` is unchanged.
    The folder is replaced as a whole (one consistent state); top-level dot files such as
    .gitkeep are carried over. Returns the written paths.
    """
    target = Path(processed_dir)
    if not tables:
        raise SourceError(f"{target}: no tables to write (refusing to replace the folder with an empty one)",
                          file=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staging = target.parent / f".{target.name}.tmp-{token}"
    staging.mkdir()
    try:
        written: list[Path] = []
        for folder, group in ((staging, tables), (staging / RESTRICTED_DIR, restricted or {})):
            private = folder != staging                  # restricted/: owner only (0700 folder, 0600 files)
            if group:
                folder.mkdir(exist_ok=True)
                if private:
                    os.chmod(folder, 0o700)
            for name, frame in group.items():
                if not re.fullmatch(r"[A-Za-z0-9_\-]+", str(name)):
                    raise SourceError(f"{target}: table name {name!r} is not a plain file name", file=str(name))
                frame.to_parquet(folder / f"{name}.parquet", index=False)
                if private:
                    os.chmod(folder / f"{name}.parquet", 0o600)
                written.append(target / folder.relative_to(staging) / f"{name}.parquet")
        if target.is_dir():
            for keep in target.iterdir():
                if keep.name.startswith(".") and keep.is_file():
                    shutil.copy2(keep, staging / keep.name)
        _swap(staging, target, token)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [Path(os.path.normpath(p)) for p in written]


def _swap(staging: Path, target: Path, token: str) -> None:
    """Put `staging` in the place of `target` with renames; the old folder is removed last."""
    if not target.exists():
        os.rename(staging, target)
        return
    old = target.parent / f".{target.name}.old-{token}"
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def read_processed(processed_dir: str | Path, tables: list[str] | str | None = None,
                   columns: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Read processed Parquet tables: name -> DataFrame (default: every table in the folder;
    a name found only under restricted/, e.g. 'reidentification', is read from there).
    `columns`: read only these columns of every table named (large event logs)."""
    folder = Path(processed_dir)
    hint = "run the notebook 01_validate_clean (or `cx run`) first to build the processed tables"
    if tables is None:
        names = sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []
        if not names:
            raise SourceError(f"{folder}: no processed tables found; {hint}", file=str(folder))
    else:
        names = [tables] if isinstance(tables, str) else list(tables)
    out = {}
    for name in names:
        path = next((p for p in (folder / f"{name}.parquet", folder / RESTRICTED_DIR / f"{name}.parquet")
                     if p.is_file()), None)
        if path is None:
            raise SourceError(f"{folder / f'{name}.parquet'}: processed table {name!r} not found; {hint}",
                              file=str(folder / f"{name}.parquet"))
        out[name] = pd.read_parquet(path, columns=columns)
    return out


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
