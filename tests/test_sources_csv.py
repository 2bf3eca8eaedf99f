"""CSV exports are parsed by Arrow's multi-threaded reader where it reads them as pandas does, and
by pandas otherwise: the frames (values, names, dtypes, index, batch sizes) and the messages are
pandas' own either way, also when Arrow refuses a row in the middle of a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cxlib.sources import read
from cxlib.sources.mapping import SourceError

OPTIONS = {"header": True, "skiprows": 0, "sep": ";", "quotechar": None, "encoding": "utf-8"}


def frames(path: Path, rows: int, **options) -> list[pd.DataFrame]:
    return list(read._csv_frames(path, {**OPTIONS, **options}, "test", path.name, rows=rows))


def by_pandas(path: Path, rows: int, **options) -> list[pd.DataFrame]:
    return list(read._pandas_frames(path, {**OPTIONS, **options}, "test", path.name, rows=rows))


@pytest.fixture
def parsers(monkeypatch):
    """Which parser made each frame of `_csv_frames`: ["arrow", "pandas", ...]."""
    made, arrow, pandas_ = [], read._arrow_frames, read._pandas_frames

    def tagged(function, tag):
        def wrapper(*args, **kwargs):
            for frame in function(*args, **kwargs):
                made.append(tag)
                yield frame
        return wrapper

    monkeypatch.setattr(read, "_arrow_frames", tagged(arrow, "arrow"))
    monkeypatch.setattr(read, "_pandas_frames", tagged(pandas_, "pandas"))
    return made


def assert_same(got: list[pd.DataFrame], expected: list[pd.DataFrame]) -> None:
    assert [len(f) for f in got] == [len(f) for f in expected]
    for a, b in zip(got, expected):
        pd.testing.assert_frame_equal(a, b)


def test_arrow_reads_quotes_newlines_accents_and_empty_cells_as_pandas(tmp_path, parsers):
    rows = ['Kunde;Kommentar;Betrag;Notiz']
    rows += [f'K{i};"Zeile eins\nZeile zwei; mit ""Zitat""";{i},50;' if i % 7 == 0 else f'K{i};Größe ü {i};NA;  x  '
             for i in range(1, 58)]
    path = tmp_path / "export.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    got = frames(path, rows=10)
    assert parsers == ["arrow"] * 6
    assert_same(got, by_pandas(path, rows=10))
    assert list(got[0].columns) == ["Kunde", "Kommentar", "Betrag", "Notiz"]
    assert got[0].loc[6, "Kommentar"] == 'Zeile eins\nZeile zwei; mit "Zitat"' and got[0].loc[0, "Betrag"] == "NA"
    assert list(got[5].index) == list(range(50, 57))


def test_arrow_reads_latin_1(tmp_path, parsers):
    path = tmp_path / "crm.csv"
    path.write_bytes("Nummer;Name\n1;Jürgen Weiß\n2;Zoë\n".encode("latin-1"))
    got = frames(path, rows=5, encoding="latin-1")
    assert parsers == ["arrow"] and got[0]["Name"].tolist() == ["Jürgen Weiß", "Zoë"]
    assert_same(got, by_pandas(path, rows=5, encoding="latin-1"))


@pytest.mark.parametrize("body", [
    "a;a;b\n1;2;3\n",                  # repeated names: pandas calls the second a.1
    "a;;b\n1;2;3\n",                   # a blank name: pandas calls it Unnamed: 1
    "a\n1\n\n2\n",                     # one column: a blank line is a row for pandas
])
def test_headers_arrow_would_name_otherwise_are_read_by_pandas(tmp_path, parsers, body):
    path = tmp_path / "odd.csv"
    path.write_text(body, encoding="utf-8")
    got = frames(path, rows=10)
    assert set(parsers) == {"pandas"}
    assert_same(got, by_pandas(path, rows=10))


def test_a_row_arrow_refuses_mid_file_is_read_by_pandas_from_there(tmp_path, parsers, monkeypatch):
    lines = ["id;value;note"] + [f"{i};v{i};n{i}" for i in range(200)]
    lines[150] = "149;short"               # fewer cells: pandas fills the row, Arrow refuses it
    lines[170] = ""                        # a blank line: a row of empty cells for pandas
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(read, "ARROW_BLOCK", 512)       # Arrow hands out batches before the bad row
    got = frames(path, rows=40)
    assert parsers[0] == "arrow" and parsers[-1] == "pandas"
    expected = by_pandas(path, rows=40)
    pd.testing.assert_frame_equal(pd.concat(got), pd.concat(expected))
    filled = pd.concat(got).loc[149]
    assert filled["value"] == "short" and filled["note"] == ""             # pandas fills the short row


def test_a_row_with_too_many_cells_gives_pandas_message(tmp_path, monkeypatch):
    lines = ["id;value"] + [f"{i};v{i}" for i in range(100)]
    lines[80] = "79;v;extra"
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(read, "ARROW_BLOCK", 256)
    with pytest.raises(SourceError, match=r"cannot be parsed as CSV with sep ';'.*Expected 2 fields in line 81, saw 3"):
        frames(path, rows=30)


@pytest.mark.parametrize("body", ["", "id;value\n"])
def test_empty_and_header_only_files_are_as_pandas_reads_them(tmp_path, body):
    path = tmp_path / "empty.csv"
    path.write_text(body, encoding="utf-8")
    if not body:
        with pytest.raises(SourceError, match="the file is empty"):
            frames(path, rows=10)
    else:
        assert_same(frames(path, rows=10), by_pandas(path, rows=10))
