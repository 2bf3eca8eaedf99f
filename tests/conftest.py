"""Shared test set-up.

Session-wide environment so tests never touch the user's pseudonymisation key or data: a test
key in CX_PSEUDONYM_KEY, figures without a display, Great Expectations without analytics.
`demo_project` is a temporary copy of the project (config, notebooks, params) with small demo
exports, made once per session; fixture `cx` runs the console command and returns its result;
`baseline` is one full `cx run` in the demo project, shared by every test file that needs one, its
processes' socket events recorded in `baseline_audit` (tests/test_privacy.py: none leaves the machine).

Under xdist (`make test`: -n auto --dist loadgroup) a session or module fixture is made once per
worker that runs a test needing it, so the tests sharing an expensive one are sent to one worker as
one unit: the demo runs (`baseline` and the fixtures that build on it), the Spark tests (one JVM),
and per module the tests of a module-scoped fixture, except the factories that make one run per
argument (`PER_ARGUMENT`). The workers write each test's group to a file the scheduler of this
file reads (pytest 9.2 ignores the node-id suffix through which xdist's own loadgroup passes
`xdist_group` marks, pytest-xdist#1386).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_KEY = "cx-insights-test-key-not-for-real-data"
DEMO_CUSTOMERS = 3000
DEMO_SEED = 11

os.environ["CX_PSEUDONYM_KEY"] = TEST_KEY
os.environ["MPLBACKEND"] = "Agg"
os.environ["GX_ANALYTICS_ENABLED"] = "False"


# A test is `slow` when it, a fixture it uses or a helper of its module starts a kernel or a `cx`
# process, builds a demo, fits the CLV model, reads ../shared, runs on Spark or is a property test
# (nbval cells always are): `make test-fast` runs the rest.
_SLOW_CALLS = ("execute_notebook", "run_cx", "subprocess.run", "Popen", "cx", "generate", "write_exports", "fit_clv", "customer_value")
_SLOW_MARKERS = ("real_data", "spark")
DEMO_RUNS = ("baseline", "audited")             # the full demo run, and the runs of tests/test_privacy.py beside it
PER_ARGUMENT = ("real_run", "shape_run")        # module fixtures that make one run per data set on first use
AUDIT_ENV = "CX_TEST_AUDIT_DIR"
SPARK_FIXTURES = ("spark_local", "spark_con", "spark_session")    # the Spark tests: one worker, one JVM
# The tests' queries are many and short: the JVM's optimising JIT compiler and parallel garbage
# collector cost more CPU than they save there (machine CPU of tests/test_occasions_spark.py 72 -> 44 s).
SPARK_TEST_CONFIG = {"spark.driver.memory": "1g",
                     "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _calls(names) -> re.Pattern:
    return re.compile(r"(?<![\w.])(?:\w+\.)?(" + "|".join(re.escape(n) for n in names) + r")\(")


def _slow_helpers(module) -> set[str]:
    """Names of the module's own functions that (directly or through each other) start a process."""
    own = {name: _source(f) for name, f in vars(module).items()
           if inspect.isfunction(f) and f.__module__ == module.__name__}
    slow = set(_SLOW_CALLS)
    while True:
        found = {name for name, source in own.items() if name not in slow and _calls(slow).search(source)}
        if not found:
            return slow
        slow |= found


def _is_slow(item, helpers: dict) -> bool:
    if not isinstance(item, pytest.Function) or any(item.get_closest_marker(m) for m in _SLOW_MARKERS):
        return True
    if getattr(item.function, "is_hypothesis_test", False):
        return True
    module = item.module
    if module.__name__ not in helpers:
        helpers[module.__name__] = _calls(_slow_helpers(module))
    functions = [item.function, *(d.func for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs)]
    return any(helpers[module.__name__].search(_source(function)) for function in functions)


def _worker_group(item) -> str | None:
    """The group of a test: 'demo_runs' when it needs a demo run, 'spark' when it needs Spark, its
    module when it needs a module-scoped fixture (other than PER_ARGUMENT ones), else None (any
    worker)."""
    if not isinstance(item, pytest.Function):
        return None
    if set(item.fixturenames) & set(DEMO_RUNS):
        return "demo_runs"
    if set(item.fixturenames) & set(SPARK_FIXTURES):
        return "spark"
    defs = item._fixtureinfo.name2fixturedefs
    module = [name for name in item.fixturenames if name not in PER_ARGUMENT
              and any(d.scope == "module" for d in defs.get(name, ()))]
    return item.nodeid.split("::")[0] if module else None


def _groups_file(controller_pid: int) -> Path:
    """Where the xdist workers of the controller process `controller_pid` write the tests' groups."""
    return Path(tempfile.gettempdir()) / f"cx-insights-test-groups-{controller_pid}.json"


def pytest_collection_modifyitems(config, items):
    helpers: dict = {}
    for item in items:
        if _is_slow(item, helpers):
            item.add_marker(pytest.mark.slow)
    if os.environ.get("PYTEST_XDIST_WORKER") and config.getvalue("loadgroup"):
        groups = {item.nodeid: group for item in items if (group := _worker_group(item))}
        target = _groups_file(os.getppid())
        part = target.with_suffix(f".{os.getpid()}")
        part.write_text(json.dumps(groups), encoding="utf-8")
        part.replace(target)                       # every worker writes the same; the last one stays


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup: xdist's scope scheduling with the groups the workers wrote (largest first);
    a test without a group is a unit of its own."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        groups: dict | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                path = _groups_file(os.getpid())
                self.groups = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
                path.unlink(missing_ok=True)
            group = self.groups.get(nodeid)
            return f"group:{group}" if group else nodeid

    return SharedFixtureScheduling(config, log)


def run_cx(*args: str, cwd: Path | None = None, timeout: float = 600,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the `cx` console script of this environment (with `env` added to the environment);
    returns the completed process (text)."""
    exe = Path(sys.executable).with_name("cx")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cxlib.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def copy_project(target: Path) -> Path:
    """A fresh project skeleton at `target`: config/, notebooks/, params/ and empty data/report folders."""
    for folder in ("config", "notebooks", "params"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, target / folder,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for folder in ("data/raw", "data/processed", "reports"):
        (target / folder).mkdir(parents=True, exist_ok=True)
    return target


def write_processed_frames(folder: Path, frames: dict | None = None, restricted: dict | None = None) -> Path:
    """A processed folder as stage 01 writes it, from hand-made frames: every canonical table of
    schema.TABLES with all its columns in the canonical dtypes (a table or column not given is empty
    or all missing), plus restricted/reidentification (empty unless given). Returns `folder`."""
    import pandas as pd

    from cxlib import catalog, clean, schema

    def canonical(columns: list[tuple[str, str]], frame: pd.DataFrame | None) -> pd.DataFrame:
        frame = pd.DataFrame() if frame is None else frame
        rows = len(frame)
        return pd.DataFrame({name: (frame[name] if name in frame.columns else pd.Series([None] * rows, dtype="object"))
                             .astype(schema.PANDAS_DTYPES[dtype]) for name, dtype in columns}, index=range(rows))

    frames, restricted = frames or {}, restricted or {}
    tables = {name: canonical([(c.name, c.dtype) for c in table.columns], frames.get(name))
              for name, table in schema.TABLES.items()}
    reid = canonical([(c, "string") for c in clean.REIDENTIFICATION_COLUMNS], restricted.get(schema.REIDENTIFICATION))
    catalog.write(tables, folder, restricted={schema.REIDENTIFICATION: reid})
    return folder


@pytest.fixture(scope="session")
def spark_available() -> None:
    """Skip a Spark test when pyspark or Java is missing; fail instead under CX_REQUIRE_SPARK=1
    (`make test-spark`, CI), so a missing engine never passes silently."""
    import importlib.util

    from cxlib import engine

    missing = ("pyspark is not installed (pip install .[spark])" if importlib.util.find_spec("pyspark") is None
               else engine.java_problem())
    if missing:
        if os.environ.get("CX_REQUIRE_SPARK"):
            pytest.fail(f"CX_REQUIRE_SPARK is set but {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def spark_local(spark_available):
    """One local[2] Spark connection for all Spark tests of a worker (one JVM start instead of one
    per module), stopped at the end of the session."""
    from cxlib import engine

    con = engine.connect("pyspark", spark={"master": "local[2]", "app_name": "cx-insights-tests",
                                           "config": SPARK_TEST_CONFIG})
    yield con
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


@pytest.fixture(scope="session")
def tax():
    """The telecom taxonomy of config/taxonomy.yml (a test module may define its own `tax`)."""
    from cxlib import config

    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


@pytest.fixture(scope="session")
def stopwords():
    """config/stopwords.yml."""
    from cxlib import config

    return config.load_yaml(ROOT / "config" / "stopwords.yml")


@pytest.fixture(scope="session")
def lexicon():
    """config/sentiment.yml, the word lists of the fallback sentiment."""
    from cxlib import config

    return config.load_yaml(ROOT / "config" / "sentiment.yml")


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Path:
    """A temporary project with demo exports (3,000 customers, seed 11), shared by the session."""
    project = copy_project(tmp_path_factory.mktemp("demo_project"))
    done = run_cx("demo", "--customers", str(DEMO_CUSTOMERS), "--seed", str(DEMO_SEED),
              "--out", str(project / "data" / "raw"), cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return project


@pytest.fixture(scope="session")
def demo_world(demo_project) -> dict:
    """The session's demo exports mapped and cleaned once (what stage 01 writes, in memory):
    {"tables": canonical tables, "reidentification", "taxonomy", "truth": ground_truth.json,
    "labels": the comments' truth labels, "project": the demo project}. Tests must not change it."""
    import json

    import pandas as pd

    from cxlib import clean, config, sources

    tax = config.load_taxonomy(demo_project / "config" / "taxonomy.yml")
    staged = sources.map_sources(demo_project / "config" / "sources" / "demo.yml", demo_project / "data" / "raw", tax)
    cleaned = clean.clean_tables(staged.tables, tax, b"demo-world-test-key")
    truth_dir = demo_project / "data" / "raw" / "_truth"
    return {"tables": cleaned.tables, "reidentification": cleaned.reidentification, "taxonomy": tax,
            "truth": json.loads((truth_dir / "ground_truth.json").read_text(encoding="utf-8")),
            "labels": pd.read_csv(truth_dir / "comment_labels.csv", dtype="str", keep_default_na=False),
            "project": demo_project}


@pytest.fixture(scope="session")
def cx():
    """The `cx` command as a function: cx("run", "--project", dir) -> CompletedProcess."""
    return run_cx


@pytest.fixture(scope="session")
def baseline_audit(tmp_path_factory) -> Path:
    """The folder in which every process of the `baseline` run (cx and each kernel) records its
    socket events, one <pid>.jsonl each, through the sitecustomize.py hook AUDIT_HOOK."""
    folder = tmp_path_factory.mktemp("baseline_audit")
    (folder / "site").mkdir()
    (folder / "site" / "sitecustomize.py").write_text(AUDIT_HOOK, encoding="utf-8")
    (folder / "records").mkdir()
    return folder / "records"


def audited_env(records: Path) -> dict[str, str]:
    """The environment under which a process and its children record their socket events to `records`."""
    site = str(records.parent / "site")
    return {"PYTHONPATH": os.pathsep.join(p for p in (site, os.environ.get("PYTHONPATH", "")) if p),
            AUDIT_ENV: str(records)}


@pytest.fixture(scope="session")
def baseline(demo_project, baseline_audit):
    """One successful `cx run -f params/monthly.yml` of the whole pipeline in the demo project,
    shared by the session (end-to-end, report, rendering and privacy checks; the starting state of
    the bad-input and comparison cases), audited (`baseline_audit`): (completed process, resolved
    run folder or None)."""
    done = run_cx("run", "-f", "params/monthly.yml", "--project", str(demo_project), cwd=demo_project,
                  env=audited_env(baseline_audit))
    run_dir = demo_project / "reports" / "latest"
    return done, run_dir.resolve() if run_dir.exists() else None


AUDIT_HOOK = r'''
"""Test hook (tests/conftest.py): record socket events of this process to CX_TEST_AUDIT_DIR."""
import json
import os
import sys

_DIR = os.environ.get("CX_TEST_AUDIT_DIR")


def _plain(value):
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "<%s>" % type(value).__name__


def _write(record):
    with open(os.path.join(_DIR, "%d.jsonl" % os.getpid()), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _hook(event, args):
    if event.startswith("socket.") and event != "socket.__new__":
        try:
            _write({"event": event, "args": _plain(args)})
        except Exception as exc:        # never break the process under test, but say so
            _write({"event": "hook-error", "args": [event, repr(exc)]})


if _DIR:
    with open("/proc/self/cmdline", "rb") as handle:
        argv = handle.read().decode("utf-8", "replace").split("\0")
    _write({"event": "start", "args": argv})
    if "ipykernel_launcher" in argv and "-f" in argv:     # the kernel's ZMQ sockets: from its connection file
        with open(argv[argv.index("-f") + 1], encoding="utf-8") as handle:
            info = json.load(handle)
        _write({"event": "kernel.connection", "args": [info.get("transport"), info.get("ip")]})
    sys.addaudithook(_hook)
'''
