"""The processed tables: where they live, how they are written and the one way to read them.

`data/processed/<name>.parquet` holds the canonical tables of `cxlib.schema` after the gate and
cleaning; `data/processed/restricted/` the tables only the owner may read (the
re-identification key). Every reader goes through here, so a missing table gives the same
message whoever asks:

    catalog.write({"customers": customers, ...}, "data/processed", restricted={"reidentification": key})
    feedback = catalog.read("data/processed", "feedback")["feedback"]          # pandas: fits a screen
    consent_log = catalog.read_optional("data/processed", "consent_log")        # None when the data has none
    events = catalog.tables("data/processed", ["events"], engine="duckdb")["events"]   # lazy engine table
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import ibis.expr.types as ir
import pandas as pd
import pyarrow.parquet as pq

from cxlib import engine as engines
from cxlib.sources import SourceError

RESTRICTED_DIR = "restricted"
HINT = "run the notebook 01_validate_clean (or `cx run`) first to build the processed tables"


class CatalogError(SourceError):
    """A processed table is missing or cannot be written; `file` names the Parquet path."""


def path(processed_dir: str | Path, name: str) -> Path | None:
    """The Parquet file of table `name` (restricted/ when only there), or None when absent."""
    folder = Path(processed_dir)
    return next((p for p in (folder / f"{name}.parquet", folder / RESTRICTED_DIR / f"{name}.parquet")
                 if p.is_file()), None)


def _missing(processed_dir: str | Path, name: str) -> CatalogError:
    where = Path(processed_dir) / f"{name}.parquet"
    return CatalogError(f"{where}: processed table {name!r} not found; {HINT}", file=str(where))


def read(processed_dir: str | Path, names: Iterable[str] | str | None = None,
         columns: Sequence[str] | Mapping[str, Sequence[str]] | None = None) -> dict[str, pd.DataFrame]:
    """Processed tables as pandas DataFrames, name -> frame (default: every table in the folder).
    For tables that fit a screen; `columns`: read only these columns of every table named, or
    name -> columns for some of them (the others whole); a column a table lacks is left out, so
    a stage reads what it uses and never requires what it does not.

        read("data/processed", ["orders", "feedback"], columns={"feedback": ["customer_id", "nps"]})
    """
    folder = Path(processed_dir)
    if names is None:
        names = sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []
        if not names:
            raise CatalogError(f"{folder}: no processed tables found; {HINT}", file=str(folder))
    names = [names] if isinstance(names, str) else list(names)
    found = {name: path(folder, name) for name in names}
    for name, where in found.items():
        if where is None:
            raise _missing(folder, name)
    wanted = {name: (columns.get(name) if isinstance(columns, Mapping) else columns) for name in found}
    return {name: pd.read_parquet(where, columns=None if wanted[name] is None else
                                  [c for c in wanted[name] if c in pq.read_schema(where).names])
            for name, where in found.items()}


def read_optional(processed_dir: str | Path, name: str) -> pd.DataFrame | None:
    """A processed table a source set may not have (e.g. 'consent_log', 'labels'), or None."""
    return read(processed_dir, name)[name] if path(processed_dir, name) is not None else None


def tables(processed_dir: str | Path, names: Iterable[str], *, engine: str = "duckdb",
           spark: Mapping | None = None, con=None) -> dict[str, ir.Table]:
    """Processed tables as lazy engine tables, name -> Ibis table: for work over all events.

    `processed_dir` is a local folder or a storage URI the engine reads ("s3a://bucket/processed").
    `con`: an open connection; default: `engine.connect(engine, spark=spark)`.
    """
    names = list(names)
    if "://" not in str(processed_dir):
        for name in names:
            if not (Path(processed_dir) / f"{name}.parquet").is_file():
                raise _missing(processed_dir, name)
    con = con if con is not None else engines.connect(engine, spark=spark)
    return engines.read_tables(con, processed_dir, names)


def write(frames: Mapping[str, pd.DataFrame], processed_dir: str | Path,
          restricted: Mapping[str, pd.DataFrame] | None = None) -> list[Path]:
    """Write `frames` as `<processed_dir>/<name>.parquet` (and `restricted` under
    `<processed_dir>/restricted/`, readable by the owner only: folder 0700, files 0600)
    atomically: everything goes into a sibling temp folder that then replaces `processed_dir` by
    renames. On any error `processed_dir` is unchanged.
    The folder is replaced as a whole (one consistent state); top-level dot files such as
    .gitkeep are carried over. Returns the written paths.
    """
    return publish({name: _frame_writer(frame) for name, frame in frames.items()}, processed_dir,
                   {name: _frame_writer(frame) for name, frame in (restricted or {}).items()})


def publish(writers: Mapping[str, Callable[[Path], None]], processed_dir: str | Path,
            restricted: Mapping[str, Callable[[Path], None]] | None = None) -> list[Path]:
    """`write` for tables too large for memory: each writer writes its table's Parquet file to the
    path it is given (e.g. streaming record batches from the engine); the folder is replaced
    atomically as in `write`.

        catalog.publish({"events": lambda path: write_batches(path)}, "data/processed")
    """
    target = Path(processed_dir)
    if not writers:
        raise CatalogError(f"{target}: no tables to write (refusing to replace the folder with an empty one)",
                           file=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staging = target.parent / f".{target.name}.tmp-{token}"
    staging.mkdir()
    try:
        written: list[Path] = []
        for folder, group in ((staging, writers), (staging / RESTRICTED_DIR, restricted or {})):
            private = folder != staging                  # restricted/: owner only (0700 folder, 0600 files)
            if group:
                folder.mkdir(exist_ok=True)
                if private:
                    os.chmod(folder, 0o700)
            for name, writer in group.items():
                if not re.fullmatch(r"[A-Za-z0-9_\-]+", str(name)):
                    raise CatalogError(f"{target}: table name {name!r} is not a plain file name", file=str(name))
                writer(folder / f"{name}.parquet")
                if private:
                    os.chmod(folder / f"{name}.parquet", 0o600)
                written.append(target / folder.relative_to(staging) / f"{name}.parquet")
        if target.is_dir():
            for keep in target.iterdir():
                if keep.name.startswith(".") and keep.is_file():
                    shutil.copy2(keep, staging / keep.name)
        swap_folder(staging, target, token)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [Path(os.path.normpath(p)) for p in written]


def _frame_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda where: frame.to_parquet(where, index=False)


def swap_folder(staging: Path, target: Path, token: str) -> None:
    """Put `staging` in the place of `target` with renames (`token` names the old folder while it
    is moved aside); on a failed rename `target` is restored; the old folder is removed last."""
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
