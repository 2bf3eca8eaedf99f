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

Each run writes `reports/<run_id>/`: executed notebooks, HTML without code, run.json,
results.json, index.html, run.log; on success `reports/latest` is pointed at it.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from cxlib import config, report

NOTEBOOKS_DIR = "notebooks"
LATEST = "latest"
KERNEL = "python3"
RUN_DIR_KEY = "run_dir"
FOLDER_KEYS = {"raw": "raw_dir", "processed": "processed_dir"}
PATH_KEYS = frozenset({"source", "taxonomy", "raw_dir", "processed_dir", RUN_DIR_KEY})
TRUTH_DIR = "_truth"
PACKAGES = (
    "cx-insights", "pandas", "numpy", "pyarrow", "great-expectations", "papermill", "nbconvert",
    "nbclient", "ipykernel", "duckdb", "ibis-framework", "scipy", "statsmodels", "matplotlib",
)
# Figures go inline even when the calling shell exports MPLBACKEND=Agg (the Makefile does).
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


class UsageError(config.ConfigError):
    """The run is misconfigured (unknown parameter or notebook, bad pipeline.yml): exit 2."""


@dataclass(frozen=True)
class Notebook:
    name: str
    title: str
    path: Path


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
        notebooks.append(Notebook(name, str(title), nb_path))
    names = [nb.name for nb in notebooks]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: a notebook is listed twice: {names}")
    for key in ("parameters", "folders"):
        if not isinstance(data.get(key) or {}, dict):
            raise UsageError(f"{path}: '{key}' must be a mapping")
    return data, notebooks


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
) -> dict[str, dict]:
    """Parameters per notebook of the run: {name: {key: value}}, only keys the notebook declares.

    `declared` covers every notebook of the pipeline (name -> declared keys); `injected` are the
    values the pipeline sets (folders, run_dir). Raises UsageError for an unknown key or notebook,
    or a user-set `run_dir`.
    """
    declared = {name: set(keys) for name, keys in declared.items()}
    in_pipeline = set().union(*declared.values()) if declared else set()
    in_run = set().union(*(declared[n] for n in run_names)) if run_names else set()
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
    if RUN_DIR_KEY in user_set:
        raise UsageError(f"{RUN_DIR_KEY} is set by the pipeline (the run folder); do not pass it")

    merged = {}
    for name in run_names:
        layers = (injected or {}, pipeline or {}, file_common, file_per_nb.get(name, {}),
                  cli_common, cli_per_nb.get(name, {}))
        merged[name] = {k: v for layer in layers for k, v in layer.items() if k in declared[name]}
    return merged


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
def _kernel_manager_class(stderr):
    """An AsyncKernelManager whose kernels get KERNEL_ENV and write their stderr to `stderr`
    (the run log) instead of the terminal."""
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw.setdefault("env", {**os.environ, **KERNEL_ENV})
            kw.setdefault("stderr", stderr)
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
                              file=file_data, overrides=overrides, injected={**injected, RUN_DIR_KEY: "."})
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
    )


def _execute(nb: Notebook, params: dict, run_dir: Path, kernel_log, log: logging.Logger) -> dict:
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
            progress_bar=False, log_output=False, kernel_manager_class=_kernel_manager_class(kernel_log),
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
        outcome["html"] = report.export_html(out_ipynb, run_dir / f"{nb.name}.html", title=nb.title, log=log).name
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
    anything is written; a failing notebook gives status "failed", not an exception. Only a
    successful run moves reports/latest.
    """
    plan = plan_run(project_dir, params_file=params_file, overrides=overrides, only=only)
    run_dir = new_run_dir(plan.reports_dir)
    params = {
        name: resolve_paths({**p, **({RUN_DIR_KEY: str(run_dir)} if RUN_DIR_KEY in p else {})}, plan.project_dir)
        for name, p in plan.parameters.items()
    }
    log, handler = _logger(run_dir)
    notify = progress or (lambda event: None)
    files = input_files(plan.raw_dir)
    record = {
        "run_id": run_dir.name,
        "status": "running",
        "started": _now(),
        "ended": None,
        "project_dir": str(plan.project_dir),
        "params_file": plan.params_file,
        "overrides": plan.overrides,
        "parameters": {name: effective_parameters(plan.declared[name], p) for name, p in params.items()},
        "inputs": _inputs_record(files, {}, plan.raw_dir),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "notebooks": [{"name": nb.name, "title": nb.title, "status": "pending", "duration_s": None,
                       "html": None, "ipynb": None} for nb in plan.notebooks],
        "validation": None,
        "failure": None,
    }
    report.write_json(run_dir / "run.json", record)
    log.info("run %s in %s; notebooks %s; parameters %s", run_dir.name, plan.project_dir,
             [nb.name for nb in plan.notebooks], params)
    failure = None
    total = len(plan.notebooks)
    try:
        with open(run_dir / "run.log", "ab") as kernel_log:   # the kernels' stderr
            for index, (nb, entry) in enumerate(zip(plan.notebooks, record["notebooks"], strict=True), start=1):
                if failure is not None:
                    entry["status"] = "skipped"
                    continue
                notify({"event": "start", "index": index, "total": total, "name": nb.name})
                entry.update(_execute(nb, params[nb.name], run_dir, kernel_log, log))
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
        report.write_json(run_dir / "run.json", record)
        report.write_index(run_dir, record, results)
        latest = point_latest(plan.reports_dir, run_dir) if succeeded else None
        log.info("run %s %s", run_dir.name, record["status"])
        _close_logger(log, handler)
    return RunResult(run_dir.name, run_dir, record["status"], record["notebooks"], failure, latest, record)
