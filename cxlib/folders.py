"""The folders a run writes and the files it reads: confinement, staging, the run's input files.

- **Confinement.** cx writes a marker file (`MARKER`) into every folder it owns. A run replaces
  processed tables only in a folder that is new or empty, carries the marker, or is the
  project's own processed folder holding nothing but what cx writes there (Parquet tables,
  `restricted/`, dot files); anything else is a `UsageError` before the run starts (`check_processed_dir`).
  The reports folder must lie inside the project, carry the marker, or be new or empty.
- **Staging.** A run's stages read and write a staging copy of the processed folder (`stage`: hard
  links, so nothing is copied); only a run that succeeded swaps it into place (`promote`), a
  failed one drops it (`discard`). Entries of a marked folder that cx did not write are carried
  over, never deleted.
- **Inputs.** The run record hashes only the files the source mapping names (`mapped_files`),
  never a whole folder.

    check_processed_dir(target, default=project / "data/processed")
    staging = stage(target); before = snapshot(staging)
    ... run the stages with processed_dir=staging ...
    promote(staging, target, before)          # True when the tables changed
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from cxlib import catalog, config, sources
from cxlib.parameters import UsageError

MARKER = ".cx-insights"                 # written by cx into the folders it owns
STAGING = ".{name}.staging"             # the staging folder, a sibling of the processed folder
RESTRICTED = catalog.RESTRICTED_DIR     # processed tables readable by the owner only
_SHOWN = 5


# --- the marker -------------------------------------------------------------------------------
def mark(folder: Path, kind: str) -> Path:
    """Write the marker file into `folder` (created if needed): {"written_by": "cx-insights", "kind"}."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MARKER
    if not is_marked(folder):
        path.write_text(json.dumps({"written_by": "cx-insights", "kind": kind}) + "\n", encoding="utf-8")
    return path


def is_marked(folder: Path) -> bool:
    """Whether `folder` holds a marker file that cx wrote."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("written_by") == "cx-insights"


def _is_cx_entry(path: Path) -> bool:
    """An entry of a processed folder that cx writes: a Parquet table, restricted/ (tables only), a dot file."""
    if path.name.startswith(".") and path.is_file():
        return True
    if path.is_file() and not path.is_symlink():
        return path.suffix == ".parquet"
    if path.name == RESTRICTED and path.is_dir() and not path.is_symlink():
        return all(p.is_file() and p.suffix == ".parquet" for p in path.iterdir())
    return False


def foreign_entries(folder: Path) -> list[str]:
    """Names of the entries of `folder` that cx does not write into a processed folder, sorted."""
    return sorted(p.name for p in folder.iterdir() if not _is_cx_entry(p)) if folder.is_dir() else []


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_processed_dir(target: str | Path, *, default: str | Path) -> Path:
    """`target` (resolved) if a run may replace the processed tables in it, else UsageError.

    Allowed: a folder that does not exist yet or is empty; a folder with the marker file; the
    project's processed folder `default` holding only what cx writes there (before markers).
    """
    target, default = Path(target).resolve(), Path(default).resolve()
    if target.exists() and not target.is_dir():
        raise UsageError(f"processed_dir {target}: is a file, not a folder")
    if not target.exists() or not any(target.iterdir()) or is_marked(target):
        return target
    foreign = foreign_entries(target)
    if target == default and not foreign:
        return target
    shown = ", ".join(foreign[:_SHOWN]) + (f" and {len(foreign) - _SHOWN} more" if len(foreign) > _SHOWN else "")
    raise UsageError(
        f"processed_dir {target}: cx did not create this folder (it has no {MARKER} file) and it holds "
        f"{shown or 'files'}; a run replaces the processed tables as a whole, so it only writes into a new or "
        "empty folder, one cx created, or the project's processed folder. Nothing was run or changed.")


def check_reports_dir(reports_dir: str | Path, project_dir: str | Path) -> Path:
    """`reports_dir` (resolved) if runs may write their folders there: inside the project, marked
    by cx, or new or empty; else UsageError."""
    folder, project = Path(reports_dir).resolve(), Path(project_dir).resolve()
    if (_inside(folder, project) or not folder.exists()
            or (folder.is_dir() and (not any(folder.iterdir()) or is_marked(folder)))):
        return folder
    raise UsageError(f"reports folder {folder} (config/pipeline.yml folders.reports): outside the project and "
                     f"not created by cx (no {MARKER} file); use a new or empty folder. Nothing was run.")


# --- staging and promotion ----------------------------------------------------------------------
def staging_dir(target: Path) -> Path:
    """The staging folder of processed folder `target`: a hidden sibling (same file system)."""
    return target.parent / STAGING.format(name=target.name)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _link_tree(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dst))


def discard(staging: Path) -> None:
    """Delete a staging folder cx made (it carries the marker); anything else is left alone."""
    if staging.is_dir() and not staging.is_symlink() and is_marked(staging):
        shutil.rmtree(staging)


def stage(target: Path) -> Path:
    """A staging copy of processed folder `target` (hard links, copies across file systems),
    marked; a leftover staging folder of a run that died is replaced. Returns its path."""
    staging = staging_dir(target)
    if staging.exists() or staging.is_symlink():
        if not is_marked(staging):
            raise UsageError(f"{staging}: exists but cx did not create it (no {MARKER} file); move it away")
        discard(staging)
    if target.is_dir():
        staging.parent.mkdir(parents=True, exist_ok=True)
        _link_tree(target, staging)
    mark(staging, "processed")
    return staging


def snapshot(folder: Path) -> dict[str, tuple]:
    """What identifies a folder's files: {relative path: (device, inode, size, mtime_ns)}, marker left out."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.name != MARKER and p.is_file()
            for s in [p.stat()]}


def promote(staging: Path, target: Path, before: dict) -> bool:
    """Put `staging` in the place of `target` if its files differ from `before` (its `snapshot`
    when staged); else drop it. Entries of `target` that cx does not write and that staging lacks
    are carried over. The old folder is renamed away, the new one renamed in, the old deleted.
    Returns whether `target` changed."""
    if snapshot(staging) == before:
        discard(staging)
        return False
    if target.is_dir():
        for entry in target.iterdir():
            if not (staging / entry.name).exists() and not _is_cx_entry(entry):
                _link_tree(entry, staging / entry.name)
    mark(staging, "processed")
    catalog.swap_folder(staging, target, str(os.getpid()))
    return True


# --- the files a run reads ------------------------------------------------------------------------
def _file_patterns(node) -> Iterator[str]:
    """Every `file` a mapping entry names: its own, and those of joins (nested too), not column specs."""
    if isinstance(node, list):
        for item in node:
            yield from _file_patterns(item)
    elif isinstance(node, dict):
        if isinstance(node.get("file"), str):
            yield node["file"]
        for key, value in node.items():
            if key not in ("file", "columns", "specs", "constants", "map", "options"):
                yield from _file_patterns(value)


def mapped_files(source: str | Path, raw_dir: str | Path) -> list[Path]:
    """The files under `raw_dir` the source mapping names (globs expanded), sorted; [] when the
    mapping cannot be read (stage 01 then says why). Nothing else is listed or read."""
    from cxlib import sources

    raw_dir = Path(raw_dir)
    try:
        mapping = sources.load_mapping(source)
    except (config.ConfigError, sources.SourceError, OSError):
        return []
    found: set[Path] = set()
    for pattern in dict.fromkeys(_file_patterns(list(mapping["tables"].values()))):
        if re.search(r"[*?\[]", pattern):
            found.update(Path(p) for p in globlib.glob(str(raw_dir / pattern)))
        else:
            found.add(raw_dir / pattern)
    return sorted(p for p in found if p.is_file())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def input_files(paths: list[Path], raw_dir: str | Path) -> list[dict]:
    """[{file (relative to raw_dir), bytes, sha256}] of `paths`, sorted by file."""
    rows = [{"file": Path(os.path.relpath(p, raw_dir)).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in paths]
    return sorted(rows, key=lambda row: row["file"])


def fingerprint(files: list[dict]) -> str:
    """One hash over the inputs (file names and their sha256): equal fingerprint = same data."""
    text = "\n".join(f"{f['file']}\t{f['sha256']}" for f in sorted(files, key=lambda f: f["file"]))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
