"""Run the notebooks of config/pipeline.yml with papermill: parameters, run folders, records.

    result = pipeline.run(project_dir, params_file="params/monthly.yml", overrides=["min_n=50"])
    result.status      # "succeeded" | "failed"

Parameters, lowest to highest precedence: the folders of pipeline.yml (absolute `raw_dir`,
`processed_dir`; `run_dir` is always the run folder) < pipeline.yml `parameters` < the
parameter file (`-f`: top-level keys for every notebook, `notebooks: {NAME: {...}}` for one) <
`-p key=value` / `-p NAME.key=value`. A notebook receives only the keys its `parameters` cell
declares. A key that no notebook declares is a `UsageError` raised before anything runs
(`-p` keys must be declared by a notebook of this run; parameter-file keys by a notebook of the
pipeline, so one file serves `--only` runs too).

Run-wide parameters (`RUN_DEFAULTS`: `lang`, `audience`, `retention_days`) may be set at any
of those levels without a notebook declaring them: the runner uses them for index.html and
retention and passes `lang`/`audience` on to the notebooks that declare them. `previous_run_dir`
is set by the runner, like `run_dir`: the absolute path of the previous successful run (what
`reports/latest` pointed at before this run), or "" when there is none.

Each run writes `reports/<run_id>/`: executed notebooks, HTML without code, run.json (with the
comparison with the previous run), results.json, index.html, run.log; on success
`reports/latest` is pointed at it, run folders older than `retention_days` are deleted, and one
line per run is appended to `reports/cx.log`. A lock file `reports/.cx-run.lock` keeps two runs
of the same project from overlapping (`RunLocked`, exit code 3 in `cx run`).
"""

from __future__ import annotations

import ast
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from cxlib import config, report

NOTEBOOKS_DIR = "notebooks"
LATEST = "latest"
KERNEL = "python3"
RUN_DIR_KEY = "run_dir"
PREVIOUS_RUN_KEY = "previous_run_dir"
SET_BY_RUNNER = (RUN_DIR_KEY, PREVIOUS_RUN_KEY)
FOLDER_KEYS = {"raw": "raw_dir", "processed": "processed_dir"}
PATH_KEYS = frozenset({"source", "taxonomy", "raw_dir", "processed_dir", RUN_DIR_KEY, PREVIOUS_RUN_KEY})
# Parameters of the whole run: valid without a notebook declaring them (defaults here and in
# config/pipeline.yml). lang and audience also go to the notebooks that declare them.
RUN_DEFAULTS = {"lang": "en", "audience": "management", "retention_days": 0}
RUN_KEYS = frozenset(RUN_DEFAULTS)
AUDIENCES = ("management", "service", "marketing", "sales")
LOCK_FILE = ".cx-run.lock"
PROJECT_LOG = "cx.log"
RUN_ID = re.compile(r"(?P<stamp>\d{8}T\d{6}Z)(-\d+)?")
TRUTH_DIR = "_truth"
PACKAGES = (
    "cx-insights", "pandas", "numpy", "pyarrow", "great-expectations", "papermill", "nbconvert",
    "nbclient", "ipykernel", "duckdb", "ibis-framework", "scipy", "statsmodels", "matplotlib",
)
# Figures go inline even when the calling shell exports MPLBACKEND=Agg (the Makefile does).
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
KERNEL_EXTENSION = "cxlib.report"      # IPython extension loaded in every kernel: alt text for figures


class UsageError(config.ConfigError):
    """The run is misconfigured (unknown parameter or notebook, bad pipeline.yml): exit 2."""


class RunLocked(RuntimeError):
    """Another `cx run` of this project is running (it holds reports/.cx-run.lock): exit 3."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        host = holder.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        super().__init__(
            f"another cx run is in progress (pid {holder.get('pid', '?')}{where}, started "
            f"{holder.get('started', '?')}; lock file {path}). This run was not started: try again when it "
            "has finished. If no cx run is running, delete the lock file."
        )


@dataclass(frozen=True)
class Notebook:
    name: str
    title: str
    path: Path
    titles: dict = field(default_factory=dict, compare=False)   # title per report language: {"de": "…"}

    def title_in(self, lang: str) -> str:
        """The title in report language `lang` (pipeline.yml `title_de`, …), else `title`."""
        return self.titles.get(lang) or self.title


@dataclass
class RunResult:
    """What `run` did: status "succeeded" or "failed", the run folder, per-notebook records."""

    run_id: str
    run_dir: Path
    status: str
    notebooks: list[dict]
    failure: dict | None = None
    latest: Path | None = None
    record: dict = field(default_factory=dict)
    deleted: list[Path] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.run_dir / "index.html"


# --- configuration --------------------------------------------------------------------------
def load_pipeline(project_dir: str | Path) -> tuple[dict, list[Notebook]]:
    """Read config/pipeline.yml of `project_dir`: (the parsed file, notebooks in run order)."""
    project_dir = Path(project_dir)
    path = project_dir / config.PIPELINE_FILE
    data = config.load_yaml(path)
    entries = data.get("notebooks") or []
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: 'notebooks' must be a non-empty list of {{name: ..., title: ...}}")
    notebooks = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str) or not name:
            raise UsageError(f"{path}: notebook entry without a name: {entry!r}")
        nb_path = project_dir / NOTEBOOKS_DIR / f"{name}.ipynb"
        if not nb_path.is_file():
            raise UsageError(f"{path}: notebook '{name}' listed but {nb_path} does not exist")
        title = entry.get("title", name) if isinstance(entry, dict) else name
        titles = {key.removeprefix("title_"): str(value) for key, value in entry.items()
                  if key.startswith("title_")} if isinstance(entry, dict) else {}
        notebooks.append(Notebook(name, str(title), nb_path, titles))
    names = [nb.name for nb in notebooks]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: a notebook is listed twice: {names}")
    for key in ("parameters", "folders", "audiences"):
        if not isinstance(data.get(key) or {}, dict):
            raise UsageError(f"{path}: '{key}' must be a mapping")
    for audience, view in (data.get("audiences") or {}).items():
        if not isinstance(view, list) or not all(isinstance(name, str) for name in view):
            raise UsageError(f"{path}: audiences: '{audience}' must be a list of notebook names")
        unknown = [name for name in view if name not in names]
        if unknown:
            raise UsageError(f"{path}: audiences: '{audience}' names unknown notebook {', '.join(unknown)}; "
                             f"the pipeline has: {', '.join(names)}")
    return data, notebooks


def audience_views(pipe: dict, notebooks: list[Notebook]) -> dict[str, list[str]]:
    """The audience views of pipeline.yml: {audience: notebook names in reading order}. Without
    an `audiences` entry every audience of AUDIENCES sees all notebooks in pipeline order."""
    views = pipe.get("audiences") or {}
    return {name: list(view) for name, view in views.items()} if views else {
        name: [nb.name for nb in notebooks] for name in AUDIENCES}


def select_notebooks(notebooks: list[Notebook], only: Iterable[str] | None) -> list[Notebook]:
    """The notebooks of this run, in pipeline order: all, or those named in `only`."""
    only = list(only or [])
    names = [nb.name for nb in notebooks]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise UsageError(f"--only: unknown notebook {', '.join(unknown)}; the pipeline has: {', '.join(names)}")
    return [nb for nb in notebooks if not only or nb.name in only]


def declared_parameters(notebooks: Iterable[Notebook]) -> dict[str, dict[str, str]]:
    """Parameters each notebook's `parameters` cell declares: {name: {key: default source text}}."""
    import papermill

    declared = {}
    for nb in notebooks:
        found = papermill.inspect_notebook(str(nb.path))
        declared[nb.name] = {key: spec["default"] for key, spec in found.items()}
    return declared


def parse_overrides(items: Iterable[str]) -> tuple[dict, dict[str, dict]]:
    """`-p` items -> (global, per notebook). Values are parsed as YAML scalars.

        parse_overrides(["min_n=50", "02_feedback.lang=de"]) -> ({"min_n": 50}, {"02_feedback": {"lang": "de"}})
    """
    common: dict = {}
    per_notebook: dict[str, dict] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-p {item!r}: expected key=value or NOTEBOOK.key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise UsageError(f"-p {item!r}: value is not a valid YAML scalar: {exc}") from exc
        if isinstance(value, (dict, list)):
            raise UsageError(f"-p {item!r}: value must be a single value (number, text, true/false)")
        if "." in key:
            name, _, key = key.partition(".")
            per_notebook.setdefault(name, {})[key] = value
        else:
            common[key] = value
    return common, per_notebook


def split_parameter_file(data: dict | None) -> tuple[dict, dict[str, dict]]:
    """A parameter file's content -> (global keys, {notebook: keys})."""
    data = dict(data or {})
    per_notebook = data.pop("notebooks", None) or {}
    if not isinstance(per_notebook, dict) or not all(isinstance(v, dict) for v in per_notebook.values()):
        raise UsageError("parameter file: 'notebooks' must map notebook names to {key: value}")
    return data, per_notebook


def _check_keys(keys: Iterable[str], allowed: Iterable[str], where: str) -> None:
    allowed = sorted(set(allowed))
    unknown = [k for k in keys if k not in allowed]
    if unknown:
        raise UsageError(
            f"{where}: unknown parameter {', '.join(unknown)}; valid keys: {', '.join(allowed) or '(none)'}"
        )


def merge_parameters(
    run_names: list[str],
    declared: dict[str, Iterable[str]],
    *,
    pipeline: dict | None = None,
    file: dict | None = None,
    overrides: Iterable[str] = (),
    injected: dict | None = None,
    run_keys: Iterable[str] = RUN_KEYS,
) -> dict[str, dict]:
    """Parameters per notebook of the run: {name: {key: value}}, only keys the notebook declares.

    `declared` covers every notebook of the pipeline (name -> declared keys); `injected` are the
    values the pipeline sets (folders, run_dir, previous_run_dir); `run_keys` are valid at the
    global levels without a notebook declaring them (see `run_parameters`). Raises UsageError
    for an unknown key or notebook, or a user-set `run_dir` / `previous_run_dir`.
    """
    declared = {name: set(keys) for name, keys in declared.items()}
    run_keys = set(run_keys)
    in_pipeline = set().union(*declared.values(), run_keys) if declared else set(run_keys)
    in_run = set().union(*(declared[n] for n in run_names), run_keys) if run_names else set(run_keys)
    file_common, file_per_nb = split_parameter_file(file)
    cli_common, cli_per_nb = parse_overrides(overrides)

    _check_keys(pipeline or {}, in_pipeline, "config/pipeline.yml parameters")
    _check_keys(file_common, in_pipeline, "parameter file")
    _check_keys(cli_common, in_run, "-p")
    for source, per_nb, must_run in (("parameter file", file_per_nb, False), ("-p", cli_per_nb, True)):
        for name, values in per_nb.items():
            if name not in declared:
                raise UsageError(f"{source}: unknown notebook '{name}'; the pipeline has: {', '.join(declared)}")
            if must_run and name not in run_names:
                raise UsageError(f"{source}: notebook '{name}' is not part of this run ({', '.join(run_names)})")
            _check_keys(values, declared[name], f"{source} for {name}")
    user_set = [*(pipeline or {}), *file_common, *cli_common,
                *(k for v in (*file_per_nb.values(), *cli_per_nb.values()) for k in v)]
    for key in SET_BY_RUNNER:
        if key in user_set:
            raise UsageError(f"{key} is set by the pipeline (the run folder, the previous successful run); "
                             "do not pass it")

    merged = {}
    for name in run_names:
        layers = (injected or {}, pipeline or {}, file_common, file_per_nb.get(name, {}),
                  cli_common, cli_per_nb.get(name, {}))
        merged[name] = {k: v for layer in layers for k, v in layer.items() if k in declared[name]}
    return merged


def run_parameters(
    *, pipeline: dict | None = None, file: dict | None = None, overrides: Iterable[str] = (),
    audiences: Iterable[str] = AUDIENCES,
) -> dict:
    """The run-wide parameters (lang, audience, retention_days) from the global levels:
    RUN_DEFAULTS < pipeline.yml `parameters` < the parameter file's top level < `-p key=value`.
    Raises UsageError for a language other than en/de, an audience without a view, or a
    retention that is not a whole number of days >= 0.

        run_parameters(overrides=["lang=de"]) -> {"lang": "de", "audience": "management", "retention_days": 0}
    """
    file_common, _ = split_parameter_file(file)
    cli_common, _ = parse_overrides(overrides)
    layers = (RUN_DEFAULTS, pipeline or {}, file_common, cli_common)
    values = {key: value for layer in layers for key, value in layer.items() if key in RUN_KEYS}
    audiences = list(audiences)
    if values["lang"] not in report.LANGS:
        raise UsageError(f"lang: must be one of {', '.join(report.LANGS)}, got {values['lang']!r}")
    if values["audience"] not in audiences:
        raise UsageError(f"audience: must be one of {', '.join(audiences)} (config/pipeline.yml audiences), "
                         f"got {values['audience']!r}")
    days = values["retention_days"]
    days = 0 if days is None or days == "" else days
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise UsageError(f"retention_days: must be a whole number of days >= 0 (0: keep every run), got {days!r}")
    return {**values, "retention_days": days}


def bind_run(parameters: dict[str, dict], run_dir: str | Path, previous_run_dir: str | Path | None) -> dict[str, dict]:
    """Per-notebook parameters with the values only the runner knows, set where a notebook
    declares them: `run_dir` (this run's folder) and `previous_run_dir` (absolute path of the
    previous successful run, "" when there is none).

        bind_run({"06_summary": {"previous_run_dir": ""}}, "/r/2", "/r/1") -> {"06_summary": {"previous_run_dir": "/r/1"}}
    """
    values = {RUN_DIR_KEY: str(run_dir), PREVIOUS_RUN_KEY: str(previous_run_dir) if previous_run_dir else ""}
    return {name: {**p, **{k: v for k, v in values.items() if k in p}} for name, p in parameters.items()}


def resolve_paths(params: dict, project_dir: str | Path) -> dict:
    """Path-like values made absolute against `project_dir`: keys in PATH_KEYS and any relative
    string ending in .yml/.yaml. Other values unchanged.

        resolve_paths({"source": "config/sources/demo.yml"}, "/p") -> {"source": "/p/config/sources/demo.yml"}
    """
    def resolve(key, value):
        is_path = isinstance(value, str) and value and (
            key in PATH_KEYS or value.lower().endswith((".yml", ".yaml"))
        )
        if not is_path:
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (Path(project_dir) / path).resolve())

    return {k: resolve(k, v) for k, v in params.items()}


def effective_parameters(defaults: dict[str, str], given: dict) -> dict:
    """Declared defaults (source text, evaluated where literal) overlaid by the given values."""
    def literal(text: str):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    return {**{k: literal(v) for k, v in defaults.items()}, **given}


# --- run folder, inputs, versions -----------------------------------------------------------
def new_run_dir(reports_dir: Path, now: dt.datetime | None = None) -> Path:
    """Create reports/<run_id>/ with a unique id like 20261122T143012Z (suffix -2, -3 … if taken)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    reports_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = reports_dir / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UsageError(f"{reports_dir}: cannot create a unique run folder for {stamp}")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def input_files(raw_dir: str | Path) -> list[dict]:
    """Every file under raw_dir except _truth/ and hidden files: [{file, bytes, sha256}], sorted."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        return []
    files = sorted(
        p for p in raw_dir.rglob("*")
        if p.is_file()
        and TRUTH_DIR not in p.relative_to(raw_dir).parts
        and not any(part.startswith(".") for part in p.relative_to(raw_dir).parts)
    )
    return [{"file": p.relative_to(raw_dir).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in files]


def fingerprint(files: list[dict]) -> str:
    """One hash over the inputs (file names and their sha256): equal fingerprint = same data."""
    text = "\n".join(f"{f['file']}\t{f['sha256']}" for f in sorted(files, key=lambda f: f["file"]))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {name: version(name) for name in names}


def point_latest(reports_dir: Path, run_dir: Path) -> Path:
    """Point reports/latest at run_dir: a relative symlink swapped atomically (os.replace)."""
    latest = reports_dir / LATEST
    if latest.exists() and not latest.is_symlink():
        raise UsageError(f"{latest} exists and is not a symlink; move it away so runs can point it at the newest run")
    tmp = reports_dir / f".{LATEST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(run_dir, reports_dir), tmp)
    os.replace(tmp, latest)
    return latest


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def previous_run(reports_dir: Path) -> Path | None:
    """The previous successful run: the folder reports/latest points at (absolute), if it exists
    and holds a run.json; else None."""
    latest = reports_dir / LATEST
    if not latest.is_symlink():
        return None
    target = latest.resolve()
    return target if (target / "run.json").is_file() else None


def read_run(run_dir: Path | None) -> tuple[dict | None, dict | None]:
    """(run.json, results.json) of a run folder as dicts; (None, None) without a folder. A run
    without results.json gives the merged results/ files."""
    if run_dir is None:
        return None, None
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    results_file = run_dir / "results.json"
    results = (json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file()
               else report.read_results(run_dir))
    return record, results


# --- scheduling: lock, retention, project log ----------------------------------------------------
def _process_start(pid: int) -> tuple[float, str] | None:
    """(start time as epoch seconds, state letter) of a process from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0]
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def lock_holder_alive(holder: dict) -> bool:
    """Whether the process named in a lock file still runs: its pid exists (on this host), is not
    a zombie, and did not start after the lock was taken (which would be a reused pid). A lock of
    another host counts as alive (it cannot be checked from here)."""
    if holder.get("host") not in (None, socket.gethostname()):
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # exists, owned by someone else
        pass
    info = _process_start(pid)
    if info is None:
        return True
    started_at, state = info
    try:
        locked_at = dt.datetime.fromisoformat(str(holder.get("started")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        locked_at = None
    reused = locked_at is not None and started_at > locked_at + 5
    return state not in ("Z", "X") and not reused


def _read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", errors="replace").strip()
    try:
        holder = json.loads(text) if text else {}
    except json.JSONDecodeError:
        holder = {"unreadable": text[:200]}
    return holder if isinstance(holder, dict) else {"unreadable": text[:200]}


@contextmanager
def run_lock(reports_dir: Path) -> Iterator[dict | None]:
    """Hold reports/.cx-run.lock for the duration of a run. The file names the holder
    ({pid, started, host}) and is locked with flock while the run lasts. Raises RunLocked when
    another run holds it: its flock is taken, or the file names a process that still runs.
    A stale lock (its process is gone) is taken over; the context yields the stale holder's
    record (to be logged), else None. The file is removed when the run ends."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / LOCK_FILE
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLocked(path, holder) from None
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(fd)                # the holder removed it between our open and flock: retry
    else:
        raise RunLocked(path, {})
    try:
        holder = _read_holder(fd)
        if holder.get("pid") is not None and lock_holder_alive(holder):
            raise RunLocked(path, holder)
        stale = holder or None
        mine = {"pid": os.getpid(), "started": _now(), "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(mine) + "\n").encode("utf-8"), 0)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield stale
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def run_started_at(name: str) -> dt.datetime | None:
    """The start time (UTC) in a run folder's name '20261122T143012Z' or '…Z-2'; None for other names."""
    match = RUN_ID.fullmatch(name)
    return dt.datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC) if match else None


def prune_runs(reports_dir: Path, retention_days: int, *, keep: Iterable[Path] = (),
               now: dt.datetime | None = None) -> list[Path]:
    """Delete what is older than `retention_days` days under reports_dir: run folders (named by
    their run id, the run's start time; with their contact lists) and contact-list CSVs outside
    run folders (e.g. reports/interactive/, by modification time). Never the folders in `keep`
    (this run, what reports/latest points at), never reports/latest itself, never anything when
    retention_days is 0. Returns the paths deleted."""
    if not retention_days:
        return []
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=retention_days)
    kept = {Path(p).resolve() for p in keep}
    latest = reports_dir / LATEST
    if latest.is_symlink():
        kept.add(latest.resolve())
    deleted = []
    for folder in sorted(reports_dir.iterdir()):
        started = run_started_at(folder.name)
        if (started is None or started >= cutoff or folder.is_symlink() or not folder.is_dir()
                or folder.resolve() in kept):
            continue
        shutil.rmtree(folder)
        deleted.append(folder)
    for csv in sorted(reports_dir.glob("*/contact_list*.csv")):
        parent = csv.parent
        if (parent.is_symlink() or run_started_at(parent.name) is not None or parent.resolve() in kept
                or dt.datetime.fromtimestamp(csv.stat().st_mtime, dt.UTC) >= cutoff):
            continue
        csv.unlink()
        deleted.append(csv)
    return deleted


def log_line(reports_dir: Path, text: str) -> Path:
    """Append one line '<UTC time> <text>' to reports/cx.log (one write, so lines of runs never mix)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / PROJECT_LOG
    line = f"{_now()} {' '.join(text.split())}\n".encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def _inputs_record(files: list[dict], results: dict, raw_dir: Path) -> dict:
    """run.json `inputs`: files with bytes/sha256 (+ rows read, from 01's `inputs` record) and
    rows per table (from 01's `tables` record)."""
    recorded = results.get("inputs") or {}
    rows_by_file = {}
    for entry in recorded.get("files", []) if isinstance(recorded, dict) else []:
        if isinstance(entry, dict) and entry.get("file") is not None:
            # a file mapped into several tables is read once: its rows are the same for each
            rows_by_file[entry["file"]] = max(rows_by_file.get(entry["file"], 0), entry.get("rows") or 0)
    return {
        "raw_dir": str(raw_dir),
        "fingerprint": fingerprint(files),
        "files": [{**f, "rows": rows_by_file.get(f["file"])} for f in files],
        "rows": (recorded.get("rows") if isinstance(recorded, dict) else None) or {},
        "tables": results.get("tables") or {},
    }


# --- executing ------------------------------------------------------------------------------
def _kernel_manager_class(stderr, ipc_dir: Path):
    """An AsyncKernelManager whose kernels get KERNEL_ENV, load the report extension (figures
    carry their title as alt text), talk over local IPC sockets in `ipc_dir` (a short private
    folder: socket paths are limited to about 100 characters) instead of TCP ports, and write
    their stderr to `stderr` (the run log) instead of the terminal."""
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            kw.setdefault("transport", "ipc")
            kw.setdefault("ip", str(ipc_dir / "kernel"))
            super().__init__(**kw)

        async def start_kernel(self, **kw):
            kw.setdefault("env", {**os.environ, **KERNEL_ENV})
            kw.setdefault("stderr", stderr)
            kw["extra_arguments"] = [*(kw.get("extra_arguments") or []), f"--IPKernelApp.extensions={KERNEL_EXTENSION}"]
            return await super()._async_start_kernel(**kw)

    return RunKernelManager


def _failure(name: str, exc: BaseException) -> dict:
    """A failure record: notebook, cell (execution count) and the error."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return {"notebook": name, "cell": exc.exec_count, "cell_index": exc.cell_index,
                "ename": exc.ename, "evalue": exc.evalue}
    return {"notebook": name, "cell": None, "cell_index": None,
            "ename": type(exc).__name__, "evalue": str(exc)}


def _logger(run_dir: Path) -> tuple[logging.Logger, logging.Handler]:
    handler = logging.FileHandler(run_dir / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger(f"cxlib.pipeline.{run_dir.name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    pm_log = logging.getLogger("papermill")
    pm_log.addHandler(handler)
    pm_log.setLevel(logging.INFO)
    pm_log.propagate = False
    return log, handler


def _close_logger(log: logging.Logger, handler: logging.Handler) -> None:
    log.removeHandler(handler)
    logging.getLogger("papermill").removeHandler(handler)
    handler.close()


@dataclass(frozen=True)
class Plan:
    """A checked run: the notebooks to run, their parameters (project-relative, `run_dir` still
    a placeholder), what each declares, and the folders."""

    project_dir: Path
    notebooks: list[Notebook]
    declared: dict[str, dict[str, str]]
    parameters: dict[str, dict]
    raw_dir: Path
    reports_dir: Path
    params_file: str | None
    overrides: list[str]
    run_parameters: dict = field(default_factory=lambda: dict(RUN_DEFAULTS))
    view: list[str] = field(default_factory=list)


def plan_run(
    project_dir: str | Path,
    *,
    params_file: str | Path | None = None,
    overrides: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> Plan:
    """Read the pipeline and check every parameter without running or writing anything.
    Raises UsageError / config.ConfigError (exit code 2 in `cx run`)."""
    project_dir = Path(project_dir).resolve()
    pipe, notebooks = load_pipeline(project_dir)
    selected = select_notebooks(notebooks, only)
    file_data = config.load_yaml(Path(params_file).expanduser().resolve()) if params_file else None
    folders = {"raw": "data/raw", "processed": "data/processed", "reports": "reports", **(pipe.get("folders") or {})}
    declared = declared_parameters(notebooks)
    injected = {key: str((project_dir / folders[folder]).resolve()) for folder, key in FOLDER_KEYS.items()}
    overrides = list(overrides)
    merged = merge_parameters([nb.name for nb in selected], declared, pipeline=pipe.get("parameters") or {},
                              file=file_data, overrides=overrides,
                              injected={**injected, RUN_DIR_KEY: ".", PREVIOUS_RUN_KEY: ""})
    views = audience_views(pipe, notebooks)
    run_params = run_parameters(pipeline=pipe.get("parameters") or {}, file=file_data, overrides=overrides,
                                audiences=views)
    # the raw folder actually read (a -p raw_dir=… overrides the folders of pipeline.yml)
    raw_dir = next((p["raw_dir"] for p in merged.values() if "raw_dir" in p), injected["raw_dir"])
    return Plan(
        project_dir=project_dir,
        notebooks=selected,
        declared=declared,
        parameters=merged,
        raw_dir=Path(resolve_paths({"raw_dir": raw_dir}, project_dir)["raw_dir"]),
        reports_dir=(project_dir / folders["reports"]).resolve(),
        params_file=str(params_file) if params_file else None,
        overrides=overrides,
        run_parameters=run_params,
        view=views[run_params["audience"]],
    )


def _execute(nb: Notebook, params: dict, run_dir: Path, kernel_log, log: logging.Logger, lang: str = "en",
             ipc_dir: Path | None = None) -> dict:
    """Run one notebook into run_dir and export its HTML: {status, duration_s, html, ipynb, error}."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_ipynb = run_dir / f"{nb.name}.ipynb"
    start = time.perf_counter()
    log.info("start %s with %s", nb.name, params)
    outcome: dict = {"status": "succeeded", "error": None}
    try:
        papermill.execute_notebook(
            str(nb.path), str(out_ipynb), parameters=params, kernel_name=KERNEL, cwd=str(nb.path.parent),
            progress_bar=False, log_output=False, kernel_manager_class=_kernel_manager_class(kernel_log, ipc_dir or run_dir),
        )
    except Exception as exc:  # a failing notebook is a result, not a crash of the runner
        outcome = {"status": "failed", "error": _failure(nb.name, exc)}
        log.error("%s failed at cell %s: %s: %s", nb.name, outcome["error"]["cell"],
                  outcome["error"]["ename"], outcome["error"]["evalue"])
        if not isinstance(exc, PapermillExecutionError):
            log.exception("unexpected error")
    outcome["duration_s"] = round(time.perf_counter() - start, 2)
    if out_ipynb.is_file():
        outcome["ipynb"] = out_ipynb.name
        outcome["html"] = report.export_html(out_ipynb, run_dir / f"{nb.name}.html", title=nb.title_in(lang), lang=lang,
                                             back_link="index.html", log=log).name
    log.info("end %s: %s in %.1f s", nb.name, outcome["status"], outcome["duration_s"])
    return outcome


def run(
    project_dir: str | Path,
    *,
    params_file: str | Path | None = None,
    overrides: Iterable[str] = (),
    only: Iterable[str] | None = None,
    progress: Callable[[dict], None] | None = None,
) -> RunResult:
    """Run the pipeline's notebooks (or `only` those) in order and write the run folder.

    `progress` is called with {"event": "start"|"end", "index", "total", "name", "status",
    "duration_s", "failure"} per notebook. Raises UsageError / config.ConfigError before
    anything is written, RunLocked when another run of the project is in progress (nothing
    written but a line in reports/cx.log); a failing notebook gives status "failed", not an
    exception. Only a successful run moves reports/latest and applies `retention_days`.
    """
    plan = plan_run(project_dir, params_file=params_file, overrides=overrides, only=only)
    try:
        with run_lock(plan.reports_dir) as stale:
            return _run_locked(plan, stale, progress or (lambda event: None))
    except RunLocked as exc:
        log_line(plan.reports_dir, f"- locked exit=3 holder_pid={exc.holder.get('pid', '?')} "
                                   f"holder_started={exc.holder.get('started', '?')}: nothing run")
        raise


def _run_locked(plan: Plan, stale: dict | None, notify: Callable[[dict], None]) -> RunResult:
    """The body of `run`, under the lock."""
    started = time.perf_counter()
    previous_dir, unreadable = previous_run(plan.reports_dir), None
    try:
        previous_record, previous_results = read_run(previous_dir)
    except (OSError, ValueError) as exc:      # a damaged previous run: compare with nothing, say why
        previous_dir, previous_record, previous_results, unreadable = None, None, None, exc
    run_dir = new_run_dir(plan.reports_dir)
    params = {name: resolve_paths(p, plan.project_dir)
              for name, p in bind_run(plan.parameters, run_dir, previous_dir).items()}
    log, handler = _logger(run_dir)
    if unreadable is not None:
        log.warning("the previous run cannot be read, so this run is compared with none: %s", unreadable)
    if stale is not None:
        log.warning("took over the stale lock %s of pid %s (started %s): that process is gone",
                    plan.reports_dir / LOCK_FILE, stale.get("pid"), stale.get("started"))
    files = input_files(plan.raw_dir)
    record = {
        "run_id": run_dir.name,
        "status": "running",
        "started": _now(),
        "ended": None,
        "project_dir": str(plan.project_dir),
        "params_file": plan.params_file,
        "overrides": plan.overrides,
        "run_parameters": plan.run_parameters,
        "view": {"audience": plan.run_parameters["audience"], "reports": plan.view},
        "previous_run": {"run_id": previous_dir.name, "dir": str(previous_dir)} if previous_dir else None,
        "parameters": {name: effective_parameters(plan.declared[name], p) for name, p in params.items()},
        "inputs": _inputs_record(files, {}, plan.raw_dir),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "notebooks": [{"name": nb.name, "title": nb.title_in(plan.run_parameters["lang"]), "status": "pending", "duration_s": None,
                       "html": None, "ipynb": None} for nb in plan.notebooks],
        "validation": None,
        "failure": None,
        "comparison": None,
        "retention": None,
        "stale_lock": stale,
    }
    report.write_json(run_dir / "run.json", record)
    log.info("run %s in %s; notebooks %s; run parameters %s; previous run %s; parameters %s", run_dir.name,
             plan.project_dir, [nb.name for nb in plan.notebooks], plan.run_parameters,
             previous_dir or "none", params)
    failure = None
    deleted: list[Path] = []
    latest = None
    total = len(plan.notebooks)
    try:
        with (open(run_dir / "run.log", "ab") as kernel_log,      # the kernels' stderr
              tempfile.TemporaryDirectory(prefix="cx-") as ipc_dir):  # the kernels' sockets
            for index, (nb, entry) in enumerate(zip(plan.notebooks, record["notebooks"], strict=True), start=1):
                if failure is not None:
                    entry["status"] = "skipped"
                    continue
                notify({"event": "start", "index": index, "total": total, "name": nb.name})
                entry.update(_execute(nb, params[nb.name], run_dir, kernel_log, log, plan.run_parameters["lang"],
                                      Path(ipc_dir)))
                failure = entry["error"]
                notify({"event": "end", "index": index, "total": total, "name": nb.name,
                        "status": entry["status"], "duration_s": entry["duration_s"], "failure": failure})
    finally:
        results = report.read_results(run_dir)
        report.write_json(run_dir / "results.json", results)
        succeeded = failure is None and all(e["status"] == "succeeded" for e in record["notebooks"])
        record.update(
            status="succeeded" if succeeded else "failed",
            ended=_now(),
            inputs=_inputs_record(files, results, plan.raw_dir),
            validation=results.get("validation"),
            failure=failure,
        )
        record["comparison"] = report.compare_runs(previous_record, previous_results, record, results)
        report.write_json(run_dir / "run.json", record)
        report.write_index(run_dir, record, results)
        try:
            if succeeded:
                latest = point_latest(plan.reports_dir, run_dir)
                deleted = prune_runs(plan.reports_dir, plan.run_parameters["retention_days"], keep=[run_dir])
                record["retention"] = {"retention_days": plan.run_parameters["retention_days"],
                                       "deleted": [p.relative_to(plan.reports_dir).as_posix() for p in deleted]}
                for path in deleted:
                    log.info("retention: deleted %s (older than %s days)", path, plan.run_parameters["retention_days"])
                report.write_json(run_dir / "run.json", record)
            log.info("run %s %s", run_dir.name, record["status"])
        finally:
            _close_logger(log, handler)
            log_line(plan.reports_dir, _summary_line(record, time.perf_counter() - started, deleted))
    return RunResult(run_dir.name, run_dir, record["status"], record["notebooks"], failure, latest, record, deleted)


def _summary_line(record: dict, seconds: float, deleted: list[Path]) -> str:
    """The run's line in reports/cx.log: id, status, exit code, duration, stages, data, what changed."""
    ok = sum(1 for nb in record["notebooks"] if nb["status"] == "succeeded")
    comparison = record.get("comparison") or {}
    parts = [record["run_id"], record["status"], f"exit={0 if record['status'] == 'succeeded' else 1}",
             f"{seconds:.1f}s", f"notebooks={ok}/{len(record['notebooks'])}",
             f"fingerprint={(record.get('inputs') or {}).get('fingerprint', '')[:16]}",
             f"previous={comparison.get('previous_run') or '-'}",
             f"numbers_changed={len(comparison.get('numbers') or [])}"]
    if record["status"] == "succeeded":
        parts.append(f"retention_deleted={len(deleted)}")
    if record.get("stale_lock"):
        parts.append(f"stale_lock_taken_over_pid={record['stale_lock'].get('pid', '?')}")
    failure = record.get("failure")
    if failure:
        parts.append(f"failed={failure['notebook']} cell {failure.get('cell')}: {failure.get('ename')}: "
                     f"{str(failure.get('evalue'))[:200]}")
    return " ".join(parts)
