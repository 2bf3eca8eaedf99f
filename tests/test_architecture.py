"""The package's layers: every cxlib module belongs to one layer and imports only from its own
layer or the ones below; there are no import cycles; modules stay small enough to have one job.

    foundation   schema, config, locale, style, metrics            (no cxlib imports but these)
    data         sources, catalog, engine, validate, clean, …      (reading, checking, writing data)
    analysis     voice, journey, moments, value, occasions, …      (DataFrames/engine tables in, tables out)
    reporting    figures, *_figures, *_describe, export, index_page (figures, sentences, HTML)
    run          pipeline, schedule, folders, cli                   (running the notebooks)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cxlib"
LAYERS = ("foundation", "data", "analysis", "reporting", "run")
MAX_LINES = 650

# module (or package) name -> layer; a module of a package takes the package's layer unless named
LAYER_OF = {
    **dict.fromkeys(["schema", "config", "locale", "style", "metrics", "prefetch"], "foundation"),
    **dict.fromkeys(["privacy", "reshape", "sources", "catalog", "engine", "gx_suites", "validate", "clean", "cleaning_log", "parts", "bucket_pool", "ingest", "draft", "demo",
                     "parameters", "report", "sections"], "data"),
    **dict.fromkeys(["feedback_table", "text", "sentiment", "themes", "voice", "voice_comments", "journey", "moments", "value",
                     "occasions", "occasions_days", "relevance", "disversion", "summary"], "analysis"),
    **dict.fromkeys(["plots", "figures", "voice_figures", "journey_figures", "journey_describe", "journey_tables",
                     "moments.figures", "moments.findings", "moments.views", "value.describe", "value.texts",
                     "value.stage", "value_figures", "occasions_describe", "occasions_figures", "summary_findings",
                     "summary_figures", "summary_html", "ingest_describe", "compare", "export", "index_page"],
                    "reporting"),
    **dict.fromkeys(["folders", "pipeline_config", "schedule", "pipeline", "cli"], "run"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The cxlib modules `path` imports (absolute or relative), as names relative to cxlib."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = ".".join(p for p in (base, node.module or "") if p)
            elif node.module and node.module.startswith("cxlib"):
                module = node.module.removeprefix("cxlib").lstrip(".")
            else:
                continue
            found |= {f"{module}.{a.name}".strip(".") for a in node.names} | ({module} if module else set())
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("cxlib.") for a in node.names if a.name.startswith("cxlib.")}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts and module_name(p)}
    return {name: {m for m in imports(path) if m in modules and m != name and not m.startswith(name + ".")}
            for name, path in modules.items()}


def layer(name: str) -> str:
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in LAYER_OF:
            return LAYER_OF[".".join(parts[:k])]
    raise AssertionError(f"cxlib.{name} has no layer: add it to LAYER_OF in tests/test_architecture.py")


def test_every_module_has_a_layer(graph):
    assert all(layer(name) in LAYERS for name in graph)


def test_imports_go_down_only(graph):
    upward = sorted(f"{name} ({layer(name)}) imports {dep} ({layer(dep)})" for name, deps in graph.items()
                    for dep in deps if LAYERS.index(layer(dep)) > LAYERS.index(layer(name)))
    assert upward == []


def test_no_import_cycles(graph):
    state, stack, cycles = {}, [], []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []


def test_modules_are_small_enough_for_one_job():
    sizes = {f"cxlib.{module_name(p)}": len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_a_hand_made_upward_import_is_found(tmp_path):
    module = tmp_path / "cxlib" / "schema.py"
    module.parent.mkdir()
    module.write_text("from cxlib import pipeline\nfrom . import locale\n", encoding="utf-8")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "cxlib"
    try:
        assert imports(module) == {"pipeline", "locale"}
    finally:
        PACKAGE = saved
