"""Writing the demo exports: CSV (pyarrow for UTF-8, pandas for Latin-1), Excel workbooks
(a hand-written SpreadsheetML writer, column-wise with pyarrow) and Parquet, into a temporary
folder renamed into place when all is written. `ExportFolder` takes the files of one chunk after
another (CSV and Parquet files grow by each chunk's rows; a workbook is written once).

    with ExportFolder("data/raw") as folder:
        folder.add(company.files, company.comment_labels)
        written = folder.publish(company.ground_truth)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cxlib import schema
from cxlib.demo.base import DemoCompany

DATA_SUFFIXES = (".csv", ".xlsx", ".xls", ".parquet")
TRUTH_DIR = schema.TRUTH_DIR
FILE_FORMATS = {  # file name prefix -> (separator, encoding) of the CSV exports
    "crm_kunden": (";", "latin-1"), "bestellungen": (";", "utf-8"), "kampagnen_versand": (";", "utf-8"),
    "umfrage_antworten": (",", "utf-8"), "web_sessions": (",", "utf-8"), "web_logins": (",", "utf-8"),
}
SHEET = "Kontakte"                   # the sheet of the contact workbooks


def has_exports(raw_dir: str | Path) -> bool:
    """True if `raw_dir` holds any data file (csv/xlsx/parquet), ignoring .gitkeep, hidden
    entries and the `_truth/` folder."""
    root = Path(raw_dir)
    if not root.is_dir():
        return False
    for path in root.rglob("*"):
        rel = path.relative_to(root).parts
        if rel[0] == TRUTH_DIR or any(part.startswith(".") for part in rel):
            continue
        if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
            return True
    return False


def write_exports(company: DemoCompany, out_dir: str | Path) -> list[Path]:
    """Write every export of `company` to `out_dir` and its truth to `out_dir/_truth/`
    (ground_truth.json, comment_labels.csv). Files are written into a temporary folder
    inside `out_dir` and renamed into place, so a failure leaves no half-written file.
    Returns the written paths."""
    with ExportFolder(out_dir) as folder:
        folder.add(company.files, company.comment_labels)
        return folder.publish(company.ground_truth)


class ExportFolder:
    """A temporary folder `.demo-*` inside `out_dir` that takes exports chunk by chunk (`add`) and
    renames them into place with the ground truth (`publish`); leaving the `with` block removes
    whatever was not published."""

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=".demo-", dir=self.out))
        (self.tmp / TRUTH_DIR).mkdir()
        self.started: set[str] = set()
        self.parquet: dict[str, pq.ParquetWriter] = {}

    def __enter__(self) -> ExportFolder:
        return self

    def __exit__(self, *exc) -> None:
        self._close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def add(self, files: dict[str, pd.DataFrame], comment_labels: pd.DataFrame) -> None:
        """Write (first chunk) or append (later chunks) each file and the comment labels."""
        for name, frame in files.items():
            path, append = self.tmp / name, name in self.started
            if name.endswith(".xlsx"):
                if append:
                    raise ValueError(f"{name}: an Excel workbook is written once, not appended to")
                _write_xlsx(frame, path, sheet=SHEET)
            elif name.endswith(".parquet"):
                table = _arrow_table(frame)
                if name not in self.parquet:
                    self.parquet[name] = pq.ParquetWriter(path, table.schema)
                self.parquet[name].write_table(table)
            else:
                sep, encoding = FILE_FORMATS[name.rsplit(".", 1)[0]]
                _write_csv(frame, path, sep=sep, encoding=encoding, append=append)
            self.started.add(name)
        labels = f"{TRUTH_DIR}/{schema.COMMENT_LABELS_FILE}"
        _write_csv(comment_labels, self.tmp / labels, sep=",", encoding="utf-8", append=labels in self.started)
        self.started.add(labels)

    def publish(self, ground_truth: dict) -> list[Path]:
        """Write ground_truth.json and rename every file into `out_dir`; returns their paths."""
        self._close()
        (self.tmp / TRUTH_DIR / schema.GROUND_TRUTH_FILE).write_text(
            json.dumps(ground_truth, ensure_ascii=False, indent=2), encoding="utf-8")
        written = []
        for path in sorted(p for p in self.tmp.rglob("*") if p.is_file()):
            target = self.out / path.relative_to(self.tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            written.append(target)
        return written

    def _close(self) -> None:
        for writer in self.parquet.values():
            writer.close()
        self.parquet = {}


def _write_csv(frame: pd.DataFrame, path: Path, *, sep: str, encoding: str, append: bool = False) -> None:
    """Write `frame` as CSV (header and rows), or with `append` add its rows to the file."""
    if encoding.lower().replace("-", "").replace("_", "") in ("utf8",):
        table = pa.Table.from_pandas(frame.astype({c: "str" for c in frame.columns if frame[c].dtype != "str"}),
                                     preserve_index=False)
        with open(path, "ab" if append else "wb") as sink:
            pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(delimiter=sep, quoting_style="needed",
                                                                          include_header=not append))
    else:
        frame.to_csv(path, sep=sep, encoding=encoding, index=False, mode="a" if append else "w", header=not append)


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """A frame as an Arrow table of fixed types whatever a chunk holds: date-times as
    timestamp[s], numbers as float64, everything else as string."""
    def column(values: pd.Series) -> pa.Array:
        if pd.api.types.is_datetime64_any_dtype(values):
            return pa.array(values.to_numpy().astype("datetime64[s]"), pa.timestamp("s"))
        if pd.api.types.is_numeric_dtype(values):
            return pa.array(values.to_numpy(dtype=float), pa.float64(), from_pandas=True)
        return pa.array(values.astype("str"), pa.string(), from_pandas=True)

    return pa.table({name: column(frame[name]) for name in frame.columns})


_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
        '</Relationships>'),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<numFmts count="1"><numFmt numFmtId="164" formatCode="dd.mm.yyyy hh:mm"/></numFmts>'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '</styleSheet>'),
}


def _xml_text(values: pa.Array) -> pa.Array:
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        values = pc.replace_substring(values, char, entity)
    return values


def _write_xlsx(frame: pd.DataFrame, path: Path, *, sheet: str) -> None:
    """A one-sheet workbook (SpreadsheetML, inline strings, as xlsxwriter's constant-memory
    mode writes it), built column-wise with pyarrow string functions: Zeitpunkt as an Excel
    date-time number (text where the export has text), numbers as numbers, blanks empty.
    Cell-by-cell writers (xlsxwriter) take ~80 us a row, minutes at 1M customers."""
    n = len(frame)
    letters = [chr(ord("A") + j) for j in range(len(frame.columns))]
    row_no = pc.cast(pa.array(np.arange(2, n + 2)), pa.string())
    cells = []
    for letter, name in zip(letters, frame.columns):
        col = frame[name]
        ref = pc.binary_join_element_wise(pa.scalar(f'<c r="{letter}'), row_no, "")
        if name == "Zeitpunkt":
            is_text = col.astype("str").str.match(r"\d\d\.\d\d\.").fillna(False).to_numpy(dtype=bool)
            stamps = pd.to_datetime(col.where(~is_text), errors="coerce")
            serial = ((stamps - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)).to_numpy(dtype=float)
            num = pc.binary_join_element_wise(ref, pa.scalar('" s="1"><v>'), pc.cast(pa.array(serial, from_pandas=True), pa.string()),
                                              pa.scalar("</v></c>"), "")
            txt = col.where(is_text).astype("str")
            txt = pc.binary_join_element_wise(ref, pa.scalar('" t="inlineStr"><is><t>'), _xml_text(pa.array(txt, pa.string(), from_pandas=True)),
                                              pa.scalar("</t></is></c>"), "")
            cells.append(pc.if_else(pa.array(is_text), txt, num))
        elif pd.api.types.is_numeric_dtype(col):
            cells.append(pc.binary_join_element_wise(ref, pa.scalar('"><v>'), pc.cast(pa.array(col.to_numpy(dtype=float), from_pandas=True), pa.string()),
                                                     pa.scalar("</v></c>"), ""))
        else:
            text = _xml_text(pa.array(col.astype("str"), pa.string(), from_pandas=True))
            cells.append(pc.binary_join_element_wise(ref, pa.scalar('" t="inlineStr"><is><t>'), text, pa.scalar("</t></is></c>"), ""))
    header = "".join(f'<c r="{letter}1" t="inlineStr"><is><t>{name}</t></is></c>' for letter, name in zip(letters, frame.columns))
    rows = pc.binary_join_element_wise(pa.scalar('<row r="'), row_no, pa.scalar('">'), *cells, pa.scalar("</row>"), "",
                                       null_handling="skip") if n else pa.array([], pa.string())
    body = "".join(rows.to_pylist()) if n else ""
    last = f"{letters[-1]}{n + 1}"
    sheet_xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                 f'<dimension ref="A1:{last}"/><sheetData><row r="1">{header}</row>{body}</sheetData></worksheet>')
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for part, xml in _XLSX_PARTS.items():
            zf.writestr(part, xml.replace("{sheet}", sheet))
        zf.writestr("xl/worksheets/sheet1.xml", sheet_xml)
