# cx-insights: the two commands a newcomer needs are `make report` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RAW ?= data/raw
# the extras .venv installs (.ci/run: dev,spark)
EXTRAS ?= dev
# Compile bytecode at install time (PYTHONDONTWRITEBYTECODE is set on some machines),
# keep the run offline and quiet.
export UV_COMPILE_BYTECODE := 1
export GX_ANALYTICS_ENABLED := False
export MPLBACKEND := Agg

.PHONY: help venv report test test-fast test-spark lab bench bench-pipeline clean

help:
	@echo "make report  - set up .venv, write demo exports if $(RAW) is empty, run the pipeline"
	@echo "make test    - set up .venv and run the full test suite (unit, notebooks, end to end)"
	@echo "make test-fast - unit tests only (no kernels, no cx runs, no demo builds; about a minute)"
	@echo "make test-spark - install the spark extra and run the DuckDB-vs-PySpark tests (needs Java)"
	@echo "make lab     - start JupyterLab on notebooks/ (127.0.0.1, token)"
	@echo "make bench   - scale benchmark (1M customers; takes minutes)"
	@echo "make bench-pipeline - cx demo + cx run at 200k and 1M customers: wall, CPU, peak memory per stage"
	@echo "make clean   - remove data/processed and reports (never data/raw)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5" 2>&1 | grep -v "is ignored" || true
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[$(EXTRAS)]"
	@PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q cxlib >/dev/null   # the editable package too: every kernel imports it
	@touch $(STAMP)

venv: $(STAMP)

report: $(STAMP)
	@$(BIN)/cx demo --if-empty --out $(RAW)
	@$(BIN)/cx run

# tests/ on every core; --dist loadgroup sends the tests sharing an expensive fixture (the demo run,
# Spark, a module's fixture) to one worker, so it is built once (tests/conftest.py sets the groups).
# The notebooks (nbval, in order, in one process) run beside them; their output follows the tests'.
test: $(STAMP)
	@$(BIN)/cx demo --if-empty --out $(RAW)
	@notebooks=$$(mktemp); trap 'kill $$nbval 2>/dev/null; rm -f "$$notebooks"' EXIT; \
	$(BIN)/python -m pytest -p no:cacheprovider notebooks >"$$notebooks" 2>&1 & nbval=$$!; \
	echo "$(BIN)/python -m pytest -p no:cacheprovider notebooks  (beside the tests; output below)"; \
	echo "$(BIN)/python -m pytest -n auto --dist loadgroup -p no:nbval -o addopts=\"-ra --strict-markers\" -m \"not spark_pipeline\" tests"; \
	$(BIN)/python -m pytest -n auto --dist loadgroup -p no:nbval -o addopts="-ra --strict-markers" -m "not spark_pipeline" tests; tests=$$?; \
	wait $$nbval; notebooks_status=$$?; \
	echo "--- pytest notebooks (nbval) ---"; cat "$$notebooks"; \
	if [ $$tests -ne 0 ]; then exit $$tests; fi; exit $$notebooks_status

# The fast tier while working: every test not marked slow (tests/conftest.py marks the tests that
# start a kernel or a cx process, build a demo, read ../shared or run on Spark).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -p no:nbval -o addopts="-ra --strict-markers" -m "not slow" -q -n auto --dist loadgroup

# The same computations on PySpark in local mode (needs Java 17+; .ci/run installs it), and
# `cx run` end to end on PySpark against DuckDB (tests/test_spark_pipeline.py; minutes: a JVM per notebook).
# CX_REQUIRE_SPARK turns a missing pyspark / Java into a failure instead of a skip.
test-spark: $(STAMP)
	@$(BIN)/python -c "import pyspark" 2>/dev/null || $(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev,spark]"
	CX_REQUIRE_SPARK=1 $(BIN)/python -m pytest -p no:nbval tests/test_spark.py tests/test_spark_ingest.py tests/test_occasions_spark.py tests/test_voice_engine.py tests/test_spark_pipeline.py

lab: $(STAMP)
	@$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev,lab]"
	$(BIN)/jupyter lab --no-browser --ip 127.0.0.1 --port 8888 --notebook-dir notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

bench: $(STAMP)
	@$(BIN)/python -c "import pm4py" >/dev/null 2>&1 || $(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev,bench]"
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# The whole pipeline at scale (BENCH_PIPELINE_ARGS="--customers 200000 1000000 5000000"); see benchmarks/README.md.
bench-pipeline: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py $(BENCH_PIPELINE_ARGS)

clean:
	find data/processed reports -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
