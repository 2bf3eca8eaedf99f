"""The pipeline's configuration: the notebooks of config/pipeline.yml in run order, the audience
views, and the parameters each notebook declares, bound to a run and resolved against the project.

    pipe, notebooks = load_pipeline(project_dir)
    declared = declared_parameters(select_notebooks(notebooks, only=["02_feedback"]))
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cxlib import config
from cxlib.parameters import AUDIENCES, PREVIOUS_RUN_KEY, RUN_DIR_KEY, UsageError, parameter_specs

NOTEBOOKS_DIR = "notebooks"
PATH_KEYS = frozenset({"source", "taxonomy", "raw_dir", "processed_dir", RUN_DIR_KEY, PREVIOUS_RUN_KEY})


@dataclass(frozen=True)
class Notebook:
    name: str
    title: str
    path: Path
    titles: dict = field(default_factory=dict, compare=False)   # title per report language: {"de": "…"}

    def title_in(self, lang: str) -> str:
        """The title in report language `lang` (pipeline.yml `title_de`, …), else `title`."""
        return self.titles.get(lang) or self.title



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
    specs = parameter_specs({nb.name: nb.path for nb in notebooks})
    return {name: {key: spec["default"] for key, spec in found.items()} for name, found in specs.items()}


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
