"""Great Expectations suites run on pandas frames, for the validation gate (`validate`).

A `SuiteRunner` holds one ephemeral GX context of one gate stage (analytics off, progress bars
off, no Data Docs sites). The first time a table is run with a list of checks it adds that
table's suite, a dataframe asset and a validation definition; every later frame of the table
re-runs the same definition with the new frame (``batch_parameters={"dataframe": df}``), so a
gate over many parts makes them once. Each run still pays GX's own fixed work per check (about
a second for the ~65 checks of all tables, whatever the rows): fewer, larger parts run faster.
GX would keep the last frame of each table in its execution engine's batch cache; the runner
empties that cache after every run, so a gate over parts holds one part at a time. The runner returns the facts of each check as a dict; what they mean (severity,
outcome, combining parts) is `validate`'s business.

    runner = SuiteRunner("raw")
    runner.run("feedback", frame, checks)[0]
    -> {"success": True, "error": None, "unexpected_count": None, "checked": None,
        "unexpected_percent": None, "examples": ()}

Great Expectations is imported lazily (it costs seconds), the first time a runner runs; GX's
deprecation warnings and chatty loggers are silenced within each run only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Sequence

import pandas as pd

from cxlib import privacy


class SuiteRunner:
    """One GX context; one suite and validation definition per (table, checks), made once.

    `checks` are `validate.Check`s (table, expectation, column, kwargs, severity, description,
    columns); `n_examples` bounds the example rows kept per check.
    """

    def __init__(self, stage: str, n_examples: int = 5):
        self.stage = stage
        self.n_examples = n_examples
        self._context = None
        self._source = None
        self._definitions: dict[tuple, object] = {}      # (table, checks) -> ValidationDefinition

    def close(self) -> None:
        """Delete the data source and drop the context; a later `run` starts a new one."""
        if self._context is not None:
            with quiet_gx():
                self._context.data_sources.delete(self._source.name)
        self._context, self._source, self._definitions = None, None, {}

    def run(self, table: str, df: pd.DataFrame, checks: Sequence) -> list[dict]:
        """Run `checks` of `table` on `df`: one dict per check with success (GX's verdict, False
        when GX raised), error (message or None), unexpected_count, checked (the base of
        unexpected_percent: non-missing values, or rows for required values), unexpected_percent
        (None for table-level checks) and examples (a tuple of strings, one per example row, or
        the note of a table-level check, e.g. ("dtype is object",))."""
        checks = tuple(checks)
        with quiet_gx() as gx:
            definition = self._definition(gx, table, checks)
            with _no_fingerprint():
                outcome = definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
            self._release()
        by_check = {r.expectation_config.meta["check"]: r for r in outcome.results}
        return [self._facts(c, by_check[i], df) for i, c in enumerate(checks)]

    def _release(self) -> None:
        """Drop the frame GX cached for the run just made (its batch and batch data)."""
        batches = self._source.get_execution_engine().batch_manager
        batches.reset_batch_cache()
        batches.batch_data_cache.clear()

    def _definition(self, gx, table: str, checks: tuple):
        key = (table, checks)
        if key not in self._definitions:
            if self._context is None:
                self._context, self._source = _new_context(gx, self.stage)
            same_table = sum(t == table for t, _ in self._definitions)
            name = f"{self.stage}.{table}" + (f".{same_table}" if same_table else "")
            suite = self._context.suites.add(gx.ExpectationSuite(
                name=name, expectations=[_expectation(gx, c, i) for i, c in enumerate(checks)]))
            batch = self._source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole table")
            self._definitions[key] = self._context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=suite))
        return self._definitions[key]

    def _facts(self, check, result, df: pd.DataFrame) -> dict:
        res = dict(result.result or {})
        message = _exception_message(result.exception_info)
        count = res.get("unexpected_count")
        if message is not None:
            examples = (f"error: {message}",)
        elif "unexpected_count" in res:
            index = list(res.get("partial_unexpected_index_list") or [])[: self.n_examples]
            examples = tuple(privacy.example_rows(df.loc[[i]], check.columns) for i in index)
        else:
            examples = _table_notes(check, res, df)
        missing = res.get("missing_count")
        return {
            "success": bool(result.success) and message is None,
            "error": message,
            "unexpected_count": count,
            "checked": None if count is None else int(res.get("element_count") or 0) - int(missing or 0),
            "unexpected_percent": res.get("unexpected_percent"),
            "examples": examples,
        }


def _expectation(gx, check, index: int):
    cls = getattr(gx.expectations, "".join(p.capitalize() for p in check.expectation.split("_")))
    return cls(**check.kwargs, severity=check.severity, description=check.description,
               meta={"check": index, "severity": check.severity})


def _exception_message(info) -> str | None:
    """The message of an exception GX caught while running a check (flat or per metric)."""
    info = dict(info or {})
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "exception while validating")
    nested = [v.get("exception_message") for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    return str(nested[0]) if nested else None


def _table_notes(check, res: dict, df: pd.DataFrame) -> tuple[str, ...]:
    """What a table-level check saw: ("dtype is object",), ("missing: a, b", "unexpected: c")."""
    if check.expectation == "expect_column_type_to_be":
        return (f"dtype is {res.get('observed_value')}",)
    expected = list(check.kwargs.get("column_set") or check.kwargs.get("column_list") or [])
    missing = [c for c in expected if c not in df.columns]
    notes = [f"missing: {', '.join(missing)}"] if missing else []
    if check.expectation == "expect_table_columns_to_match_ordered_list":
        extra = [c for c in df.columns if c not in expected]
        notes += [f"unexpected: {', '.join(map(str, extra))}"] if extra else []
        if not notes and list(df.columns) != expected:
            notes.append(f"order differs: {', '.join(map(str, df.columns))}")
    return tuple(notes)


# --- Great Expectations plumbing ---------------------------------------------------------------
def _new_context(gx, stage: str):
    """An ephemeral context (analytics and progress bars off, no Data Docs sites) and its pandas
    data source."""
    context = gx.get_context(mode="ephemeral")
    context.enable_analytics(False)
    context.variables.progress_bars = {"globally": False}
    _drop_data_docs_sites(context)
    return context, context.data_sources.add_pandas(f"cx_{stage}")


def _import_gx():
    """Import great_expectations (seconds), analytics off (no telemetry, whatever the
    environment says; the runner also switches it off on the context)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    import great_expectations as gx
    return gx


@contextlib.contextmanager
def quiet_gx():
    """Import Great Expectations and yield it with, within the block only, Deprecation and
    Future warnings ignored and GX's loggers at ERROR (some set themselves to INFO); filters
    and levels are restored afterwards."""
    with warnings.catch_warnings():
        # GX imports the deprecated sre_* modules and uses pandas APIs that pandas 3 deprecates
        # (warnings attributed to pandas, e.g. Series.values on tz-aware columns); only GX runs here
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"great_expectations(\.|$)")
        root = logging.getLogger("great_expectations")
        root_level = root.level
        root.setLevel(logging.ERROR)                 # quiet import-time messages too
        loggers, levels = [], []
        try:
            gx = _import_gx()
            loggers = [obj for name, obj in logging.root.manager.loggerDict.items()
                       if name.startswith("great_expectations.") and isinstance(obj, logging.Logger)]
            levels = [lg.level for lg in loggers]
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            yield gx
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
            root.setLevel(root_level)


@contextlib.contextmanager
def _no_fingerprint():
    """Within the block, GX's pandas engine does not fingerprint a batch (it hashes every row of
    every frame below 1 GB for a batch marker the gate never reads: about 0.3 CPU-s per million
    rows, 5% of a gate); restored afterwards."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    threshold = engine.HASH_THRESHOLD
    engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = threshold


def _drop_data_docs_sites(context) -> None:
    """Drop the ephemeral context's default Data Docs sites (temp folders): the gate builds no
    Data Docs (they would render raw values as HTML and load scripts from CDNs)."""
    for name in list(context.list_data_docs_sites()):
        context.delete_data_docs_site(name)
