"""The set-up stays honest: environment.yml agrees with pyproject.toml, notebooks are clean
(stripped, one literal parameters cell, no functions), the Makefile and CI entry point exist."""

from __future__ import annotations

import ast
import io
import re
import tokenize
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


# --- environment.yml vs pyproject.toml -------------------------------------------------------
@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def conda_entries(environment: dict) -> tuple[list[str], list[str]]:
    """(conda package specs, pip lines) of environment.yml."""
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    pip = [line for d in environment["dependencies"] if isinstance(d, dict) for line in d.get("pip", [])]
    return conda, pip


def test_environment_python_matches_requires_python(pyproject, environment):
    conda, _ = conda_entries(environment)
    python = [c for c in conda if re.fullmatch(r"python\s*[=<>!~]*.*", c)]
    assert len(python) == 1, conda
    version = re.sub(r"^python\s*=*\s*", "", python[0])
    assert re.fullmatch(r"3\.\d+", version), python[0]
    minor = int(version.split(".")[1])
    requires = pyproject["project"]["requires-python"]
    assert f">=3.{minor}" in requires.replace(" ", ""), requires
    assert f"<3.{minor + 1}" in requires.replace(" ", ""), requires


def test_environment_lists_nothing_pyproject_does_not(pyproject, environment):
    conda, pip = conda_entries(environment)
    assert sorted(re.split(r"[=<>\s]", c)[0] for c in conda) == ["pip", "python"]
    assert len(pip) == 1, pip
    match = re.fullmatch(r"-e\s+\.\[([\w,\s-]+)\]", pip[0].strip())
    assert match, pip[0]
    extras = {e.strip() for e in match.group(1).split(",")}
    assert "dev" in extras
    assert extras <= set(pyproject["project"]["optional-dependencies"]), extras


def test_pyproject_has_console_script_and_templates(pyproject):
    assert pyproject["project"]["scripts"]["cx"] == "cxlib.cli:main"
    patterns = pyproject["tool"]["setuptools"]["package-data"]["cxlib"]
    template_files = [p.relative_to(ROOT / "cxlib").as_posix() for p in (ROOT / "cxlib" / "templates").rglob("*") if p.is_file()]
    assert template_files
    assert all(any(Path(f).match(p) for p in patterns) for f in template_files), (template_files, patterns)


# --- notebooks ---------------------------------------------------------------------------------
def code_without_magics(source: str) -> str:
    """Cell source with IPython magics / shell lines replaced by `pass`, so `ast` can parse it."""
    return "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


NBVAL_CHECK = "nbval-check-output"     # the findings cells whose stored output nbval compares (the demo's numbers)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped(path):
    """Outputs are stripped, except the text of the cells nbval checks: the findings on the demo
    (nbval compares only cells that were run, so these keep an execution count)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            checked = NBVAL_CHECK in cell.metadata.get("tags", [])
            assert checked or cell.outputs == [], f"{path.name}: outputs not stripped"
            assert checked or cell.execution_count is None, f"{path.name}: execution count not stripped"
            assert not any(key.startswith("image/") for out in cell.outputs for key in out.get("data", {})), path.name
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_nbval_checks_the_findings_of_the_demo():
    """The findings cells of the stages with stable numbers keep the demo's findings (text), so
    nbval fails when a number of the demo changes; the summary (06) depends on stage order and
    the customer value (05) on a model fit, so they are executed but not compared."""
    checked = {path.stem: [c for c in nbformat.read(path, as_version=4).cells if NBVAL_CHECK in c.metadata.get("tags", [])]
               for path in NOTEBOOKS}
    assert {name for name, cells in checked.items() if cells} == {
        "01_validate_clean", "02_feedback", "03_journey", "04_moments_of_truth", "07_occasions"}
    for name, cells in checked.items():
        for cell in cells:
            assert "findings" in cell.metadata["tags"] and cell.outputs, name
            text = "".join(out.get("data", {}).get("text/markdown", "") for out in cell.outputs)
            assert any(ch.isdigit() for ch in text), name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_parameters_cell_is_literal_and_commented(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    cell = tagged[0]
    assert cell.cell_type == "code"
    tree = ast.parse(cell.source)
    assert tree.body, f"{path.name}: empty parameters cell"
    comment_lines = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(cell.source).readline)
                     if tok.type == tokenize.COMMENT}
    for stmt in tree.body:
        assert isinstance(stmt, (ast.Assign, ast.AnnAssign)), f"{path.name}: not an assignment: {ast.unparse(stmt)}"
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        assert len(targets) == 1 and isinstance(targets[0], ast.Name), ast.unparse(stmt)
        ast.literal_eval(stmt.value)  # raises for anything but a literal
        assert set(range(stmt.lineno, stmt.end_lineno + 1)) & comment_lines, (
            f"{path.name}: parameter '{targets[0].id}' has no comment"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter_with_its_type_and_help(path):
    """papermill --help-notebook (and each run's log) parse the cell line by line: a second '='
    on a line (e.g. in its comment) makes papermill skip that parameter with a warning."""
    from papermill.translators import PythonTranslator

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    declared = [stmt.target.id if isinstance(stmt, ast.AnnAssign) else stmt.targets[0].id
                for stmt in ast.parse(cell.source).body]
    inspected = PythonTranslator.inspect(cell)
    assert [p.name for p in inspected] == declared
    assert all(p.help for p in inspected), [p.name for p in inspected if not p.help]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_defines_no_functions_or_classes(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(code_without_magics(cell.source))
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defs, f"{path.name}: move functions/classes to cxlib: {[getattr(d, 'name', 'lambda') for d in defs]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_listed_in_pipeline(path):
    pipeline = yaml.safe_load((ROOT / "config" / "pipeline.yml").read_text(encoding="utf-8"))
    assert path.stem in [entry["name"] for entry in pipeline["notebooks"]]


# --- Makefile, CI -----------------------------------------------------------------------------
def test_makefile_targets():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, flags=re.M))
    assert {"report", "test", "lab", "bench", "clean"} <= targets, targets


def test_ci_runs_make_test():
    path = ROOT / ".ci" / "run"
    text = path.read_text(encoding="utf-8")
    commands = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert "make test" in commands
    assert "set -euo pipefail" in commands or "set -e" in commands
    assert path.stat().st_mode & 0o111, ".ci/run is not executable"
