"""Run the notebooks of config/pipeline.yml with papermill: parameters, run folders, records.

    result = pipeline.run(project_dir, params_file="params/monthly.yml", overrides=["min_n=50"])
    result.status      # "succeeded" | "failed" | "interrupted"

Parameters, lowest to highest precedence: the folders of pipeline.yml (absolute `raw_dir`,
`processed_dir`; `run_dir` is always the run folder) < pipeline.yml `parameters` < the
parameter file (`-f`: top-level keys for every notebook, `notebooks: {NAME: {...}}` for one) <
`-p key=value` / `-p NAME.key=value`. A notebook receives only the keys its `parameters` cell
declares. Before anything runs (`plan_run`, UsageError, exit code 2 in `cx run`): every key is
declared by a notebook (`-p` keys by a notebook of this run; parameter-file keys by a notebook
of the pipeline, so one file serves `--only` runs too), every value has the type its
`parameters` cell annotates and lies in its declared range (`cxlib.parameters`), the processed
folder is one cx may write (`cxlib.folders.check_processed_dir`).

Run-wide parameters (`RUN_DEFAULTS`: `lang`, `audience`, `retention_days`) may be set at any
of those levels without a notebook declaring them: the runner uses them for index.html and
retention and passes `lang`/`audience` on to the notebooks that declare them. `previous_run_dir`
is set by the runner, like `run_dir`: the absolute path of the previous successful run (what
`reports/latest` pointed at before this run) if it read the same source mapping, else "".

Each run writes `reports/<run_id>/`: executed notebooks, HTML without code, run.json (with the
comparison with the previous run), results.json, index.html, run.log. The stages read and
write a staging copy of the processed folder; only when every stage succeeded is it swapped
into place, `reports/latest` pointed at the run and run folders older than `retention_days`
deleted. One line per run goes to `reports/cx.log`. A lock file `reports/.cx-run.lock` keeps
two runs of the same project from overlapping (`RunLocked`, exit code 3 in `cx run`); a run
that died (kill -9) is marked "killed" by the next one (`cxlib.schedule`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from cxlib import compare, config, export, folders, index_page, report, schedule
# re-exported: the parameter and scheduling functions callers and tests know from here
from cxlib.folders import fingerprint, sha256_file  # noqa: F401
from cxlib.parameters import (  # noqa: F401
    AUDIENCES, PREVIOUS_RUN_KEY, RUN_DEFAULTS, RUN_DIR_KEY, RUN_KEYS, SET_BY_RUNNER, UsageError,
    check_parameters, merge_parameters, parameter_specs, parse_overrides, run_parameters, split_parameter_file,
)
from cxlib.pipeline_config import (
    Notebook, audience_views, bind_run, effective_parameters, load_pipeline, resolve_paths, select_notebooks,
)
from cxlib.schedule import (  # noqa: F401
    LATEST, LOCK_FILE, PROJECT_LOG, RUN_ID, RunLocked, _now, lock_holder_alive, log_line, new_run_dir, point_latest,
    previous_run, prune_runs, read_run, recover_dead_runs, run_lock, run_started_at,
)

KERNEL = "python3"
FOLDER_KEYS = {"raw": "raw_dir", "processed": "processed_dir"}
PACKAGES = (
    "cx-insights", "pandas", "numpy", "pyarrow", "great-expectations", "papermill", "nbconvert",
    "nbclient", "ipykernel", "duckdb", "ibis-framework", "scipy", "statsmodels", "matplotlib",
)
# Figures go inline even when the calling shell exports MPLBACKEND=Agg (the Makefile does).
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
KERNEL_EXTENSION = "cxlib.export"      # IPython extension loaded in every kernel: alt text for figures


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


# --- run folder, inputs, versions -----------------------------------------------------------
def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {name: version(name) for name in names}


def _inputs_record(files: list[dict], results: dict, raw_dir: Path, source: str | None = None) -> dict:
    """run.json `inputs`: the source mapping (project-relative where inside the project), the
    files it names with bytes/sha256 (+ rows read, from 01's `inputs` record) and rows per table
    (from 01's `tables` record)."""
    recorded = results.get("inputs") or {}
    rows_by_file = {}
    for entry in recorded.get("files", []) if isinstance(recorded, dict) else []:
        if isinstance(entry, dict) and entry.get("file") is not None:
            # a file mapped into several tables is read once: its rows are the same for each
            rows_by_file[entry["file"]] = max(rows_by_file.get(entry["file"], 0), entry.get("rows") or 0)
    return {
        "source": source,
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

def failure_location(executed: Path, cell_index: int | None) -> dict:
    """Where a notebook stopped, as a reader of the source notebook sees it: {cell: position
    (1-based, papermill's injected cell not counted), cells: how many, section: the last
    Markdown heading above it or None}. Empty when the executed notebook cannot be read."""
    import nbformat

    if cell_index is None or not executed.is_file():
        return {}
    try:
        cells = nbformat.read(executed, as_version=4).cells
    except (OSError, ValueError):
        return {}
    # papermill counts without the error markers it adds afterwards, with its injected cell
    cells = [cell for cell in cells if "papermill-error-cell-tag" not in cell.get("metadata", {}).get("tags", [])]
    injected = [i for i, cell in enumerate(cells) if "injected-parameters" in cell.get("metadata", {}).get("tags", [])]
    return {"cell": cell_index + 1 - sum(1 for i in injected if i < cell_index), "cells": len(cells) - len(injected),
            "section": export.section_above(cells, cell_index)}


def _failure(name: str, exc: BaseException, executed: Path | None = None) -> dict:
    """A failure record: notebook, where it stopped (`failure_location`: section, cell position
    of how many; the kernel's execution count as `execution_count`) and the error."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        where = failure_location(executed, exc.cell_index) if executed is not None else {}
        return {"notebook": name, "cell": where.get("cell"), "cells": where.get("cells"),
                "section": where.get("section"), "cell_index": exc.cell_index, "execution_count": exc.exec_count,
                "ename": exc.ename, "evalue": exc.evalue}
    return {"notebook": name, "cell": None, "cells": None, "section": None, "cell_index": None,
            "execution_count": None, "ename": type(exc).__name__, "evalue": str(exc)}


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
    a placeholder), what each declares, and the folders: raw (read), processed (checked that cx
    may write it; None when no notebook of the run declares `processed_dir`), reports."""

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
    processed_dir: Path | None = None
    source: Path | None = None


def _project_relative(path: Path | None, project_dir: Path) -> str | None:
    if path is None:
        return None
    return path.relative_to(project_dir).as_posix() if project_dir in path.parents else str(path)


def plan_run(
    project_dir: str | Path,
    *,
    params_file: str | Path | None = None,
    overrides: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> Plan:
    """Read the pipeline and check every parameter and folder without running or writing
    anything. Raises UsageError / config.ConfigError (exit code 2 in `cx run`)."""
    project_dir = Path(project_dir).resolve()
    pipe, notebooks = load_pipeline(project_dir)
    selected = select_notebooks(notebooks, only)
    try:
        file_data = config.load_yaml(Path(params_file).expanduser().resolve()) if params_file else None
    except config.ConfigError:
        raise
    except ValueError as exc:      # YAML that parses to an impossible value, e.g. a date 2026-13-01
        raise UsageError(f"{params_file}: not a valid parameter file: {exc}") from exc
    places = {"raw": "data/raw", "processed": "data/processed", "reports": "reports", **(pipe.get("folders") or {})}
    specs = parameter_specs({nb.name: nb.path for nb in notebooks})
    declared = {name: {key: spec["default"] for key, spec in found.items()} for name, found in specs.items()}
    types = {name: {key: spec["type"] for key, spec in found.items()} for name, found in specs.items()}
    injected = {key: str((project_dir / places[folder]).resolve()) for folder, key in FOLDER_KEYS.items()}
    overrides = list(overrides)
    layers = {"pipeline": pipe.get("parameters") or {}, "file": file_data, "overrides": overrides,
              "injected": {**injected, RUN_DIR_KEY: ".", PREVIOUS_RUN_KEY: ""}}
    merged = merge_parameters([nb.name for nb in selected], declared, **layers)
    views = audience_views(pipe, notebooks)
    run_params = run_parameters(pipeline=pipe.get("parameters") or {}, file=file_data, overrides=overrides,
                                audiences=views)
    merged = check_parameters(merged, types, audiences=views)
    # raw folder and source mapping of the run: a notebook of this run that declares them, else
    # what the pipeline's notebook that does would get (an --only run of a later stage)
    everyone = merge_parameters([nb.name for nb in notebooks], declared, **layers)

    def run_value(key):
        found = [p[key] for p in (*merged.values(), *everyone.values()) if key in p]
        return resolve_paths({key: found[0]}, project_dir)[key] if found else None

    raw_dir, source = run_value("raw_dir") or injected["raw_dir"], run_value("source")
    processed = sorted({resolve_paths(p, project_dir)["processed_dir"] for p in merged.values() if "processed_dir" in p})
    if len(processed) > 1:
        raise UsageError(f"processed_dir: the notebooks of one run share one processed folder, got {', '.join(processed)}")
    processed_dir = (folders.check_processed_dir(processed[0], default=injected["processed_dir"])
                     if processed else None)
    return Plan(
        project_dir=project_dir,
        notebooks=selected,
        declared=declared,
        parameters=merged,
        raw_dir=Path(raw_dir),
        reports_dir=folders.check_reports_dir(project_dir / places["reports"], project_dir),
        params_file=str(params_file) if params_file else None,
        overrides=overrides,
        run_parameters=run_params,
        view=views[run_params["audience"]],
        processed_dir=processed_dir,
        source=Path(source) if source else None,
    )


@contextlib.contextmanager
def _socket_dir(attempts: int = 50):
    """A private folder for the kernels' sockets, removed afterwards. A kernel stopped while it
    starts (Ctrl-C, SIGTERM) may still write its socket files while the folder goes, so removal
    is retried for up to `attempts` tenths of a second instead of failing the run's cleanup."""
    path = Path(tempfile.mkdtemp(prefix="cx-"))
    try:
        yield path
    finally:
        for _ in range(attempts):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                break
            time.sleep(0.1)


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
            request_save_on_cell_execute=False,   # written when done and every 30 s of a long cell, not twice per cell
        )
    except Exception as exc:  # a failing notebook is a result, not a crash of the runner
        outcome = {"status": "failed", "error": _failure(nb.name, exc, out_ipynb)}
        log.error("%s failed at %s: %s: %s", nb.name, report.failure_where(outcome["error"]),
                  outcome["error"]["ename"], outcome["error"]["evalue"])
        if not isinstance(exc, PapermillExecutionError):
            log.exception("unexpected error")
    outcome["duration_s"] = round(time.perf_counter() - start, 2)
    if out_ipynb.is_file():
        outcome["ipynb"] = out_ipynb.name
        outcome["html"] = export.export_html(out_ipynb, run_dir / f"{nb.name}.html", title=nb.title_in(lang), lang=lang,
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
    exception. Only a successful run replaces the processed tables, moves reports/latest and
    applies `retention_days`.
    """
    plan = plan_run(project_dir, params_file=params_file, overrides=overrides, only=only)
    try:
        with run_lock(plan.reports_dir) as stale:
            return _run_locked(plan, stale, progress or (lambda event: None))
    except RunLocked as exc:
        log_line(plan.reports_dir, f"- locked exit=3 holder_pid={exc.holder.get('pid', '?')} "
                                   f"holder_started={exc.holder.get('started', '?')}: nothing run")
        raise


def _same_source(previous_record: dict | None, source: str | None) -> bool:
    """Whether the previous run read the same source mapping (a record without one: assumed so)."""
    previous = ((previous_record or {}).get("inputs") or {}).get("source")
    return previous is None or source is None or previous == source


def _run_locked(plan: Plan, stale: dict | None, notify: Callable[[dict], None]) -> RunResult:
    """The body of `run`, under the lock."""
    started = time.perf_counter()
    previous_dir, unreadable = previous_run(plan.reports_dir), None
    try:
        previous_record, previous_results = read_run(previous_dir)
    except (OSError, ValueError) as exc:      # a damaged previous run: compare with nothing, say why
        previous_dir, previous_record, previous_results, unreadable = None, None, None, exc
    source = _project_relative(plan.source, plan.project_dir)
    comparable = previous_dir if _same_source(previous_record, source) else None
    folders.mark(plan.reports_dir, "reports")
    run_dir = new_run_dir(plan.reports_dir)
    dead = recover_dead_runs(plan.reports_dir, by=run_dir.name)
    params = {name: resolve_paths(p, plan.project_dir)
              for name, p in bind_run(plan.parameters, run_dir, comparable).items()}
    log, handler = _logger(run_dir)
    if unreadable is not None:
        log.warning("the previous run cannot be read, so this run is compared with none: %s", unreadable)
    if stale is not None:
        log.warning("took over the stale lock %s of pid %s (started %s): that process is gone",
                    plan.reports_dir / LOCK_FILE, stale.get("pid"), stale.get("started"))
    for folder in dead:
        log.warning("run %s died without finishing (its run.json said running): marked killed", folder.name)
    files = folders.input_files(folders.mapped_files(plan.source, plan.raw_dir), plan.raw_dir) if plan.source else []
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
        "inputs": _inputs_record(files, {}, plan.raw_dir, source),
        "processed": {"dir": str(plan.processed_dir) if plan.processed_dir else None, "updated": False},
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
        "recovered": [folder.name for folder in dead],
    }
    report.write_json(run_dir / "run.json", record)
    log.info("run %s in %s; notebooks %s; run parameters %s; previous run %s; parameters %s", run_dir.name,
             plan.project_dir, [nb.name for nb in plan.notebooks], plan.run_parameters,
             previous_dir or "none", params)
    failure, stopped = None, None
    deleted: list[Path] = []
    latest = None
    total = len(plan.notebooks)
    staging = None
    try:
        if plan.processed_dir is not None:       # the stages read and write a staging copy
            staging = folders.stage(plan.processed_dir)
            before = folders.snapshot(staging)
            params = {name: {**p, **({"processed_dir": str(staging)} if "processed_dir" in p else {})}
                      for name, p in params.items()}
            log.info("processed tables staged in %s", staging)
        with (open(run_dir / "run.log", "ab") as kernel_log,      # the kernels' stderr
              _socket_dir() as ipc_dir):  # the kernels' sockets
            for index, (nb, entry) in enumerate(zip(plan.notebooks, record["notebooks"], strict=True), start=1):
                if failure is not None:
                    entry["status"] = "skipped"
                    continue
                entry["status"] = "running"
                report.write_json(run_dir / "run.json", record)
                notify({"event": "start", "index": index, "total": total, "name": nb.name})
                entry.update(_execute(nb, params[nb.name], run_dir, kernel_log, log, plan.run_parameters["lang"],
                                      Path(ipc_dir)))
                failure = entry["error"]
                notify({"event": "end", "index": index, "total": total, "name": nb.name,
                        "status": entry["status"], "duration_s": entry["duration_s"], "failure": failure})
        if staging is not None and failure is None:
            record["processed"]["updated"] = folders.promote(staging, plan.processed_dir, before)
            staging = None
            if record["processed"]["updated"]:
                log.info("processed tables moved into %s", plan.processed_dir)
    except BaseException as exc:
        stopped = exc
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            failure = failure or {"notebook": "cx run", "cell": None, "cells": None, "section": None,
                                  "ename": type(exc).__name__, "evalue": str(exc)}
        raise
    finally:
        if staging is not None:
            folders.discard(staging)
        results = report.read_results(run_dir)
        report.write_json(run_dir / "results.json", results)
        succeeded = stopped is None and failure is None and all(e["status"] == "succeeded" for e in record["notebooks"])
        interrupted = isinstance(stopped, (KeyboardInterrupt, SystemExit))
        for entry in record["notebooks"]:
            entry["status"] = {"running": "interrupted" if interrupted else "failed",
                               "pending": "skipped"}.get(entry["status"], entry["status"])
        record.update(
            status="succeeded" if succeeded else "interrupted" if interrupted else "failed",
            ended=_now(),
            inputs=_inputs_record(files, results, plan.raw_dir, source),
            validation=results.get("validation"),
            failure=failure,
        )
        record["comparison"] = compare.compare_runs(previous_record, previous_results, record, results)
        report.write_json(run_dir / "run.json", record)
        index_page.write_index(run_dir, record, results)
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
            log_line(plan.reports_dir, schedule.summary_line(record, time.perf_counter() - started, deleted))
    return RunResult(run_dir.name, run_dir, record["status"], record["notebooks"], failure, latest, record, deleted)
