"""Reading export files as text, batch by batch, in memory bounded by the batch.

`Files(raw_dir, mapping, batch_rows)` finds the files of an entry (`resolve`) and opens them
(`open` -> `SourceFile`): opening checks the file (empty, encoding, header) in one streaming
pass that also computes its sha256, and learns its columns from the header.
`SourceFile.chunks()` then yields the file in frames of at most `batch_rows` rows: the source
columns as text (`str`, trimmed, blank and the reader's na_values missing), a canon flag column
`CANON + column` where a typed Excel/Parquet cell was already canonical, `WORK_ROW` (the row
as a spreadsheet shows it, header = row 1) and `WORK_FILE` (the name in the raw folder); blank
rows are left out. CSV is read in chunks from a stream (by Arrow's multi-threaded reader where
it reads the file as pandas would, else by pandas), Parquet by record batches; an Excel sheet is
read whole (only small systems export Excel) and sliced. `Files.inputs` lists every
file opened with its table, sha256, rows and bytes.

    files = Files(Path("data/raw"), "config/sources/demo.yml", batch_rows=500_000)
    crm = files.open(files.resolve("crm_kunden.csv", "customers")[0], options, "customers", "customers")
    for frame in crm.chunks(): ...
"""

from __future__ import annotations

import codecs
import glob as globlib
import itertools
import os
import re
from collections.abc import Iterator
from datetime import date, datetime
from hashlib import sha256
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import csv as pacsv

from cxlib.sources.mapping import CANON, SINGLE_BYTE, SUFFIX_FORMATS, WORK_FILE, WORK_ROW, SourceError, literal

BLOCK = 1 << 20          # bytes per read of the streaming passes
UNNAMED = "Unnamed: "    # pandas' name of a column with a blank header cell


def file_fingerprint(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_format(name: str, options: dict) -> str:
    """csv, excel or parquet: the reader's `format`, else by the file's suffix."""
    return options.get("format") or SUFFIX_FORMATS.get(Path(name).suffix.lower(), "csv")


class Files:
    """The files of one mapping run: found by name or glob, opened, and listed in `inputs`
    (one dict per file opened: file, table, sha256, rows, bytes). A file's sha256 is computed
    once per run, however many entries read it."""

    def __init__(self, raw_dir: Path, mapping: str, batch_rows: int, personal: frozenset[str] = frozenset()):
        self.raw_dir = raw_dir
        self.mapping = mapping
        self.batch_rows = batch_rows
        self.personal = personal          # source columns whose values messages mask
        self.inputs: list[dict] = []
        self.hashes: dict[tuple, str] = {}

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

    def open(self, path: Path, options: dict, table: str, where: str) -> SourceFile:
        """Check the file and read its header; the file is listed in `inputs` (its rows are
        counted as its chunks are read)."""
        name = Path(os.path.relpath(path, self.raw_dir)).as_posix()
        stat = path.stat()
        prefix = f"{self.mapping}: {where}: {name}"
        if not stat.st_size:
            raise SourceError(f"{prefix}: the file is empty (0 bytes)", file=name)
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        digest = None if key in self.hashes else sha256()
        fmt = file_format(name, options)
        if fmt == "csv":
            _scan_text(path, options, prefix, name, digest)
        elif digest is not None:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(BLOCK), b""):
                    digest.update(block)
        if digest is not None:
            self.hashes[key] = digest.hexdigest()
        counted = {"file": name, "table": table, "sha256": self.hashes[key], "rows": 0, "bytes": stat.st_size}
        self.inputs.append(counted)
        return SourceFile(path, name, fmt, options, prefix, self.batch_rows, counted)


class SourceFile:
    """One opened export: `name`, `columns` (its source columns), `chunks()` (see the module
    docstring). `counted["rows"]` grows by the rows of every chunk read."""

    def __init__(self, path: Path, name: str, fmt: str, options: dict, prefix: str, batch_rows: int,
                 counted: dict):
        self.path, self.name, self.fmt, self.options, self.prefix = path, name, fmt, options, prefix
        self.batch_rows, self.counted = batch_rows, counted
        self.sheet = _read_excel(path, options, prefix, name) if fmt == "excel" else None
        names = self._names()
        unnamed = [c for c in names if c.startswith(UNNAMED)]
        filled = set() if not unnamed else {c for text, _, _ in self._raw_chunks() for c in unnamed
                                            if _cleaned_text(text[c], options).notna().any()}
        self.dropped = {c for c in unnamed if c not in filled}   # blank header and no value: not a column
        self.columns = tuple(c for c in names if c not in self.dropped)

    def chunks(self) -> Iterator[pd.DataFrame]:
        """The file's rows as text frames of at most `batch_rows` rows, blank rows left out; a
        file without any data row raises SourceError after its last chunk."""
        rows = 0
        for text, canon, numbers in self._raw_chunks():
            frame = _clean_text(text, self.options, self.dropped)
            flags = {} if canon is None else {CANON + c: canon[c] & frame[c].notna() for c in frame.columns
                                              if canon[c].any()}
            frame = _drop_blank(frame.assign(**flags, **{WORK_ROW: numbers})).assign(**{WORK_FILE: self.name})
            rows += len(frame)
            self.counted["rows"] += len(frame)
            if len(frame):
                yield frame
        if self.fmt == "excel":
            self.sheet = None          # read whole once; the rows have been handed out
        if not rows:
            raise SourceError(f"{self.prefix}: the file has a header but no data rows", file=self.name)

    def _names(self) -> list[str]:
        if self.fmt == "excel":
            return list(self.sheet[0].columns)
        if self.fmt == "parquet":
            return list(_parquet_columns(self.path, self.options, self.prefix, self.name))
        frames = _csv_frames(self.path, self.options, self.prefix, self.name, rows=1, first_only=True)
        try:
            return list(next(frames).columns)
        finally:
            frames.close()

    def _raw_chunks(self) -> Iterator[tuple[pd.DataFrame, pd.DataFrame | None, np.ndarray]]:
        """(text cells, canon flags or None, spreadsheet rows) per chunk, before cleaning."""
        if self.fmt == "excel":
            text, canon, numbers = self.sheet
            for start in range(0, len(text), self.batch_rows):
                stop = start + self.batch_rows
                yield text.iloc[start:stop], canon.iloc[start:stop], numbers[start:stop]
        elif self.fmt == "parquet":
            yield from _parquet_chunks(self.path, self.options, self.prefix, self.name, self.batch_rows)
        else:
            first = (2 if self.options["header"] else 1) + self.options["skiprows"]
            seen = 0
            for frame in _csv_frames(self.path, self.options, self.prefix, self.name, rows=self.batch_rows):
                yield frame, None, np.arange(len(frame)) + first + seen
                seen += len(frame)


# --- CSV ------------------------------------------------------------------------------------------
def _codec(options: dict) -> str:
    encoding = str(options["encoding"])
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _scan_text(path: Path, options: dict, prefix: str, name: str, digest) -> None:
    """One streaming pass over a CSV file's bytes: feeds `digest` (unless None) and stops the run
    when the file is UTF-16/32 but read otherwise, cannot be decoded with the reader's encoding
    (naming row and column of the first bad byte), or is UTF-8 read as a single-byte encoding."""
    encoding, codec = str(options["encoding"]), _codec(options)
    with open(path, "rb") as handle:
        head = handle.read(4096)
    wide = _wide_encoding(head)
    if wide and not encoding.lower().replace("_", "-").startswith(("utf-16", "utf16", "utf-32", "utf32")):
        raise SourceError(
            f"{prefix}: the file is {wide.upper()} text (a byte-order mark or NUL bytes between the letters, "
            f"as Excel's 'Unicode text' export writes it), not {encoding}; set `encoding: {wide}` in the "
            f"entry's reader", file=name, rows=[1])
    try:
        decoder = codecs.getincrementaldecoder(codec)()
    except LookupError as exc:
        raise SourceError(f"{prefix}: unknown encoding {encoding!r}", file=name) from exc
    single = codec.lower().replace("_", "-") in SINGLE_BYTE
    utf8 = codecs.getincrementaldecoder("utf-8")() if single else None
    high, fed = None, 0                     # first byte >= 0x80 (single-byte codecs), bytes read so far
    with open(path, "rb") as handle:
        for block in itertools.chain(iter(lambda: handle.read(BLOCK), b""), [b""]):   # b"": the end
            fed += len(block)
            if digest is not None:
                digest.update(block)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:   # exc.object ends at the last byte read
                at = fed - len(exc.object) + exc.start
                line, column = _csv_position(path, at, options, name)
                raise SourceError(
                    f"{prefix}: not readable as {encoding}: byte 0x{exc.object[exc.start]:02x} in row {line}, "
                    f"column {column!r}; set `encoding: latin-1` (or cp1252) in the entry's reader if the export "
                    f"comes from Excel or an older system", file=name, column=column, rows=[line]) from exc
            if utf8 is not None:
                found = re.search(rb"[\x80-\xff]", block) if high is None else None
                high = fed - len(block) + found.start() if found else high
                try:
                    utf8.decode(block, final=not block)
                except UnicodeDecodeError:
                    utf8 = None                 # not UTF-8: the single-byte encoding is plausible
    if utf8 is not None and high is not None:
        line, column = _csv_position(path, high, options, name)
        raise SourceError(
            f"{prefix}: the file is UTF-8 but the mapping reads it as {encoding}, which would garble "
            f"accented letters (first in row {line}, column {column!r}); set `encoding: utf-8`",
            file=name, column=column, rows=[line])


def _csv_frames(path: Path, options: dict, prefix: str, name: str, *, rows: int,
                first_only: bool = False) -> Iterator[pd.DataFrame]:
    """The CSV file parsed as text in frames of `rows` rows, named by the header or `names`
    (only the first `rows` rows when `first_only`). Arrow's multi-threaded reader parses the
    files it reads as pandas does (`_arrow_frames`); pandas parses the others, and the rest of
    a file from the first row Arrow refuses, so frames and messages are pandas' own."""
    seen = 0
    if not first_only:
        try:
            for frame in _arrow_frames(path, options, name, rows):
                yield frame
                seen += len(frame)
            return
        except (pa.ArrowException, _NotForArrow):
            pass
    frames = _pandas_frames(path, options, prefix, name, rows=rows, first_only=first_only)
    for frame in frames:                # the rows Arrow handed out already are left out
        if seen and seen >= len(frame):
            seen -= len(frame)
            continue
        yield frame.iloc[seen:]
        seen = 0


class _NotForArrow(Exception):
    """A CSV file (or its options) that Arrow's reader would not parse as pandas does."""


ARROW_BLOCK = 2 ** 20          # bytes Arrow's CSV reader parses at a time (larger blocks: no faster, more memory read ahead)
_STR = pd.StringDtype("pyarrow", na_value=np.nan)     # pandas' `str`, as read_csv(dtype=str) gives


def _arrow_frames(path: Path, options: dict, name: str, rows: int) -> Iterator[pd.DataFrame]:
    """The file in frames of `rows` rows as `_pandas_frames` gives them, parsed by Arrow: only
    for a header row without skipped lines, one-character separator and quote, UTF-8 or a
    single-byte encoding, and a header of two or more names that pandas reads the same (no
    blank or repeated names). A row Arrow cannot parse raises pa.ArrowInvalid (a row of
    another width, an open quote, a blank line): pandas then reads from there."""
    settings = _pandas_settings(options, name)
    sep, quote = settings["sep"], settings["quotechar"]
    codec = _codec(options).lower().replace("_", "-")
    utf8 = codec in ("utf-8-sig", "utf-8", "utf8")
    if (not options["header"] or options["skiprows"] or len(sep) != 1 or len(quote) != 1
            or not (utf8 or codec in SINGLE_BYTE)):
        raise _NotForArrow(name)
    try:
        with open(path, encoding=_codec(options), newline="") as handle:
            header = [str(c) for c in pd.read_csv(handle, nrows=0, **settings).columns]
    except Exception as exc:            # pandas' own message comes from `_pandas_frames`
        raise _NotForArrow(name) from exc
    if len(header) < 2 or any(c.startswith(UNNAMED) for c in header):
        raise _NotForArrow(name)
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=ARROW_BLOCK, encoding="utf8" if utf8 else codec),
        parse_options=pacsv.ParseOptions(delimiter=sep, quote_char=quote, newlines_in_values=True,
                                         ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False))
    if (reader.schema.names != header
            or any(field.type != pa.string() for field in reader.schema)):
        reader.close()
        raise _NotForArrow(name)
    names, pending, held, seen = [c.strip() for c in header], [], 0, 0
    for batch in itertools.chain(reader, [None]):
        if batch is not None:
            pending.append(batch)
            held += batch.num_rows
        while held >= rows or (batch is None and held):
            table = pa.Table.from_batches(pending, schema=reader.schema)
            frame = table.slice(0, rows).to_pandas(types_mapper={pa.string(): _STR}.get)
            pending, held = table.slice(rows).to_batches(), held - len(frame)
            yield frame.set_axis(names, axis=1).set_axis(pd.RangeIndex(seen, seen + len(frame)), axis=0)
            seen += len(frame)
    if not seen:                        # a header alone: one empty frame, as pandas gives
        yield reader.schema.empty_table().to_pandas(types_mapper={pa.string(): _STR}.get).set_axis(names, axis=1)


def _pandas_frames(path: Path, options: dict, prefix: str, name: str, *, rows: int,
                   first_only: bool = False) -> Iterator[pd.DataFrame]:
    """`_csv_frames` by pandas' C parser."""
    settings = _pandas_settings(options, name)
    sep = settings["sep"]
    with open(path, encoding=_codec(options), newline="") as handle:
        try:
            frames = iter([pd.read_csv(handle, nrows=rows, **settings)] if first_only
                          else pd.read_csv(handle, chunksize=rows, **settings))
            frame = next(frames, None)
            while frame is not None:
                names = ([str(c).strip() for c in frame.columns] if options["header"]
                         else _given_names(frame, options, prefix, name))
                yield frame.set_axis(names, axis=1)
                frame = next(frames, None)
        except pd.errors.EmptyDataError as exc:
            raise SourceError(f"{prefix}: the file is empty (no header row)", file=name) from exc
        except pd.errors.ParserError as exc:
            raise SourceError(f"{prefix}: cannot be parsed as CSV with sep {sep!r}: {exc}", file=name) from exc


def _pandas_settings(options: dict, name: str) -> dict:
    """pandas.read_csv's arguments for the reader's `options`: every cell as text, nothing missing yet."""
    return dict(sep=_sep(options, name), dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                skiprows=options["skiprows"], quotechar=options.get("quotechar") or '"',
                header=0 if options["header"] else None)


def _sep(options: dict, name: str) -> str:
    return options.get("sep") or ("\t" if name.lower().endswith(".tsv") else ",")


def _given_names(frame: pd.DataFrame, options: dict, prefix: str, name: str) -> list[str]:
    """The mapping's `names` for a file without a header row; their number must match the columns."""
    names = [n.strip() for n in options["names"]]
    if len(names) != frame.shape[1]:
        raise SourceError(f"{prefix}: `names` gives {len(names)} column names but the file has {frame.shape[1]} "
                          f"columns (sep {options.get('sep') or ','!r}) in row {1 + options['skiprows']}",
                          file=name, rows=[1 + options["skiprows"]])
    return names


def _wide_encoding(head: bytes) -> str | None:
    """'utf-16' / 'utf-32' for a byte-order mark, 'utf-16-le' / 'utf-16-be' for NUL bytes between
    the letters of the first 4 KB; None for a byte-oriented file."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    head = head[:4096]
    if b"\x00" not in head:
        return None
    return "utf-16-le" if head[1::2].count(0) >= head[0::2].count(0) else "utf-16-be"


def _csv_position(path: Path, at: int, options: dict, name: str) -> tuple[int, str]:
    """Row (as a spreadsheet shows it) and column name of byte `at` of a CSV file: the separators
    before it on its line index the header (quotes are not considered). The cell itself is never
    quoted: it may hold personal data. Streams the file up to `at` (an error path)."""
    sep = _sep(options, name)
    line, start, done = 1, 0, 0
    with open(path, "rb") as handle:
        while done < at:
            block = handle.read(min(BLOCK, at - done))
            if not block:
                break
            line += block.count(b"\n")
            if b"\n" in block:
                start = done + block.rindex(b"\n") + 1
            done += len(block)
        handle.seek(start)
        field = handle.read(at - start).count(sep.encode("utf-8"))
        handle.seek(0)
        header = b""
        for _ in range(options["skiprows"] + 1):
            header = handle.readline()
        header = header.removesuffix(b"\n")
    if options.get("header", True):
        try:
            header_text = header.decode("utf-8")
        except UnicodeDecodeError:
            header_text = header.decode("latin-1")
        names = [c.strip().strip('"') for c in header_text.lstrip("\ufeff").split(sep)]
    else:
        names = [str(c) for c in options.get("names") or []]
    column = names[field] if field < len(names) and names[field] else f"column {field + 1}"
    return line, column


# --- Excel and Parquet ----------------------------------------------------------------------------
def _read_excel(path: Path, options: dict, prefix: str, name: str) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The sheet's cells below the header as (text, canon flags, sheet rows)."""
    sheet = options.get("sheet", 0)
    try:
        book = pd.ExcelFile(path, engine="calamine")
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
        header = [str(literal(v)) if pd.notna(v) else "" for v in cells.loc[header_at]]
        body = cells.loc[header_at + 1:]
        names = _unique_names(header)
    else:                                           # no header row: the first filled row is data
        width = len(options["names"])
        body = cells.loc[header_at:].reindex(columns=range(max(cells.shape[1], width)))
        body = body.loc[:, [c for c in body.columns if c < width or body[c].notna().any()]]
        names = _given_names(body, options, prefix, name)
    text, canon = _cells_to_text(body.set_axis(names, axis=1))
    return text.reset_index(drop=True), canon.reset_index(drop=True), (body.index + 1).to_numpy()


def _parquet_file(path: Path, options: dict, prefix: str, name: str) -> pq.ParquetFile:
    if not options["header"]:
        raise SourceError(f"{prefix}: `header: false` is for CSV and Excel files; Parquet names its columns",
                          file=name)
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid and others for damaged files
        raise SourceError(f"{prefix}: cannot be read as Parquet: {exc}", file=name) from exc


def _parquet_columns(path: Path, options: dict, prefix: str, name: str) -> list[str]:
    schema = _parquet_file(path, options, prefix, name).schema_arrow
    return [str(c) for c in schema.empty_table().to_pandas().columns]


def _parquet_chunks(path: Path, options: dict, prefix: str, name: str,
                    rows: int) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, np.ndarray]]:
    """The file's record batches as typed cells -> (text, canon flags, rows). An integer column
    with blanks anywhere in the file is read as float64 in every batch, as a whole read would."""
    parquet = _parquet_file(path, options, prefix, name)
    floats = _integers_with_blanks(parquet)
    seen = 0
    try:
        for batch in parquet.iter_batches(batch_size=rows):
            typed = pa.Table.from_batches([batch], schema=parquet.schema_arrow).to_pandas().reset_index(drop=True)
            typed = typed.astype({c: "float64" for c in typed.columns if c in floats})
            text, canon = _cells_to_text(typed.set_axis([str(c) for c in typed.columns], axis=1))
            yield text, canon, np.arange(len(text)) + 1 + seen
            seen += len(text)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{prefix}: cannot be read as Parquet: {exc}", file=name) from exc


def _integers_with_blanks(parquet: pq.ParquetFile) -> set[str]:
    """Integer columns whose statistics count blanks (or that have no statistics)."""
    meta, schema = parquet.metadata, parquet.schema_arrow
    integers = {f.name for f in schema if pa.types.is_integer(f.type)}
    found = set()
    for group in range(meta.num_row_groups):
        for k in range(meta.num_columns):
            column = meta.row_group(group).column(k)
            stats = column.statistics
            if column.path_in_schema in integers and (stats is None or not stats.has_null_count or stats.null_count):
                found.add(column.path_in_schema)
    return found


def _unique_names(names: list[str]) -> list[str]:
    out: list[str] = []
    for i, n in enumerate(names):
        n = n.strip() or f"{UNNAMED}{i}"
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


# --- cleaning ------------------------------------------------------------------------------------
def _cleaned_text(values: pd.Series, options: dict) -> pd.Series:
    """Cells trimmed; blank and the reader's na_values missing."""
    na = [v for v in options.get("na_values", []) if isinstance(v, str)]
    return values.astype("str").str.strip().pipe(lambda s: s.mask(s.eq("") | s.isin(na)))


def _clean_text(frame: pd.DataFrame, options: dict, dropped: set[str]) -> pd.DataFrame:
    """Every cell cleaned (`_cleaned_text`); the `dropped` columns (blank header, no value in the file) left out."""
    return pd.DataFrame({c: _cleaned_text(frame[c], options) for c in frame.columns if c not in dropped},
                        index=frame.index)


def _drop_blank(frame: pd.DataFrame) -> pd.DataFrame:
    source = [c for c in frame.columns if not c.startswith("\0")]
    return frame.loc[frame[source].notna().any(axis=1)].reset_index(drop=True)


def sheet_note(name: str, options: dict) -> str:
    """' (sheet 'Kontakte')' for an Excel file, '' otherwise."""
    return f" (sheet {options.get('sheet', 0)!r})" if file_format(name, options) == "excel" else ""

