"""The source mapping language: `load_mapping` reads a mapping file and checks it.

A mapping (`config/sources/NAME.yml`, docs/source_mapping.md) names, per canonical table of
`cxlib.schema`, entries of files and how their columns become canonical columns. `load_mapping`
returns it normalised (see its docstring); every structural problem raises `MappingError`
naming the mapping file and the entry. The constants here are shared by the modules of
`cxlib.sources`: reader defaults, keywords, and the internal columns of the working frame.

    mapping = load_mapping("config/sources/demo.yml")
"""

from __future__ import annotations

import fnmatch
import sys
import zoneinfo
from datetime import date, datetime, time
from pathlib import Path

import numpy as np

from cxlib import reshape, schema
from cxlib.config import ConfigError, load_yaml

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
# whitespace as Python's `\s` matches it, spelled out: pandas runs a pattern with `\s` through
# Python's `re` row by row, one without it through Arrow's RE2 on the whole column (~10x faster)
SPACE = "[" + "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()) + "]"
TZ_SUFFIX = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?" + SPACE + r"*(?:Z|UTC|[+-]\d{2}:?\d{2})$"
UTC_SUFFIX = SPACE + "*UTC$"
N_EXAMPLES = 5

# internal columns of the working frame (a NUL prefix cannot clash with an export's header)
WORK_FILE, WORK_ROW, WORK_POS = "\0file", "\0row", "\0pos"
MELT_TS, MELT_COL, MELT_POS = "\0melt_ts", "\0melt_col", "\0melt_pos"
CANON = "\0canon:"   # bool flag column per source column: cell already canonical (typed Excel/Parquet cell)
JOINED = "\0join:"   # columns brought in by a join
SHOWN = "\0shown"    # spec key: how messages name the source of a column


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
    options = {**options, "na_values": [literal(v) for v in (na if isinstance(na, list) else [na])]}
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
            template_fields(spec["template"], lambda p: fail(where, f"column {column!r}: {p}", column))
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
    missing = [c for c in required_columns(table) if c not in provided]
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


def required_columns(table: str) -> list[str]:
    return [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[table].required]


def _check_dates(spec, fail) -> None:
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, list) or not spec or not all(
            isinstance(f, str) and ("%" in f or f in DATE_KEYWORDS) for f in spec):
        fail(f"dates must be 'iso', 'dayfirst', 'epoch_ms', 'epoch_s' or a list of strptime formats like "
             f"['%d.%m.%Y'] (keywords may be listed too), got {spec!r}")


def template_fields(template, fail) -> list[str]:
    """Column names in a template's braces (any character but braces; `_row`, `_file` are lineage)."""
    try:
        return reshape.template_fields(template)
    except ValueError as exc:
        fail(str(exc))
        return []


def literal(value) -> str | float:
    """A YAML literal as canonical text: True -> 'true', dates -> ISO, None -> missing."""
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value).strip()

