"""Parameters of a run: read from pipeline.yml, a parameter file and `-p`, merged per notebook,
and checked against what each notebook's `parameters` cell declares before anything runs.

    common, per_notebook = parse_overrides(["min_n=50", "02_feedback.lang=de"])
    merged = merge_parameters(["02_feedback"], declared, overrides=["min_n=50"])
    check_parameters(merged, types)          # UsageError: "02_feedback parameter min_n: must be …"

Types come from the annotations of the `parameters` cell (`min_n: int = 100`): bool, int,
float, str, list, dict. A bool must be a YAML boolean (`true`, `false`, not `nein` or a quoted
"false"); a float may be given as a whole number; a date written unquoted (`as_of=2026-01-31`)
is passed as text to a str parameter. Ranges are one table keyed by parameter name (a name means
the same thing in every notebook): `RULES` for exact names, `PATTERN_RULES` for families such as
`*_days`. Every problem is a `UsageError` (exit code 2 in `cx run`) naming the notebook, the
parameter, what it must be and the value given.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import yaml

from cxlib import config, locale

RUN_DIR_KEY = "run_dir"
PREVIOUS_RUN_KEY = "previous_run_dir"
SET_BY_RUNNER = (RUN_DIR_KEY, PREVIOUS_RUN_KEY)
# Parameters of the whole run: valid without a notebook declaring them (defaults here and in
# config/pipeline.yml). lang and audience also go to the notebooks that declare them.
RUN_DEFAULTS = {"lang": "en", "audience": "management", "retention_days": 0}
RUN_KEYS = frozenset(RUN_DEFAULTS)
RUN_TYPES = {"lang": "str", "audience": "str", "retention_days": "int"}
AUDIENCES = ("management", "service", "marketing", "sales")
ENGINES = ("duckdb", "pyspark")


class UsageError(config.ConfigError):
    """The run is misconfigured (unknown parameter or notebook, wrong type or range, bad
    pipeline.yml): exit code 2, nothing is run."""


# --- types and ranges -------------------------------------------------------------------------
def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# annotation in a parameters cell -> (test, what a value must be)
TYPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "bool": (lambda v: isinstance(v, bool), "true or false (a YAML boolean, unquoted)"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "float": (_is_number, "a number"),
    "str": (lambda v: isinstance(v, str), "text"),
    "list": (lambda v: isinstance(v, list), "a list, e.g. [a, b]"),
    "dict": (lambda v: isinstance(v, dict), "a mapping, e.g. {key: value}"),
}


@dataclass(frozen=True)
class Rule:
    """A declared range: `test(value)` must hold; `text` says what the value must be. With
    `numeric`, only for parameters annotated int or float (unannotated: numbers given)."""

    text: str
    test: Callable[[object], bool]
    numeric: bool = False


def _iso_day(value) -> bool:
    if value == "":
        return True
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def _one_of(choices: Iterable[str]) -> Rule:
    choices = tuple(choices)
    return Rule(f"one of {', '.join(choices)}", lambda v: v in choices)


def _shares(value) -> bool:
    values = list(value.values()) if isinstance(value, dict) else value
    return (isinstance(values, list) and len(values) > 0 and all(_is_number(v) and 0 < v <= 1 for v in values)
            and sum(values) <= 1 + 1e-9)


def _ascending(value) -> bool:
    return (isinstance(value, list) and len(value) > 0 and all(_is_number(v) and v > 0 for v in value)
            and all(a < b for a, b in zip(value, value[1:])))


def _words(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


_DAY = Rule('a day YYYY-MM-DD or "" (empty: from the data)', _iso_day)
_POSITIVE = Rule("a number > 0", lambda v: v > 0, numeric=True)
_COUNT = Rule("a whole number >= 1", lambda v: v >= 1, numeric=True)
_CHANNELS = Rule("a list of channel codes, e.g. [email, letter]", _words)
RULES: dict[str, Rule] = {
    "tolerance": Rule("a share of rows in [0, 1), e.g. 0.02", lambda v: 0 <= v < 1),
    "confidence": Rule("a level between 0 and 1 (exclusive), e.g. 0.95", lambda v: 0 < v < 1),
    "alpha": Rule("a rate between 0 and 1 (exclusive), e.g. 0.05", lambda v: 0 < v < 1),
    "lang": _one_of(locale.LANGS),
    "engine": _one_of(ENGINES),
    "retention_days": Rule("a whole number of days >= 0 (0: keep every run)", lambda v: v >= 0),
    "as_of": _DAY, "start": _DAY, "end": _DAY,
    "trend_period": _one_of(("month", "quarter")),
    "tile_period": _one_of(("month", "quarter", "year")),
    "clv_method": _one_of(("map", "mcmc")),
    "complaint_chart": _one_of(("laney", "u")),
    "complaint_sigma": _POSITIVE, "margin": _POSITIVE,
    "annual_discount_rate": Rule("a yearly rate in [0, 1), e.g. 0.10", lambda v: 0 <= v < 1, numeric=True),
    "rfm_bins": Rule("a whole number of score levels from 2 to 10", lambda v: 2 <= v <= 10, numeric=True),
    "clv_draws": Rule("a whole number of draws >= 10", lambda v: v >= 10, numeric=True),
    "path_max_steps": Rule("a whole number of steps >= 2", lambda v: v >= 2, numeric=True),
    "quotes_per_theme": Rule("a whole number >= 0", lambda v: v >= 0, numeric=True),
    "review_step": _COUNT, "horizon_months": _COUNT, "term_months": _COUNT, "holdout_months": _COUNT,
    "regular_min_orders": _COUNT,
    "batch_rows": Rule("a whole number of rows >= 1000, e.g. 500000", lambda v: v >= 1000, numeric=True),
    "bucket_rows": Rule("a whole number of rows >= 1000, e.g. 1000000", lambda v: v >= 1000, numeric=True),
    "workers": Rule("a whole number of processes from 1 to 64, e.g. 2", lambda v: 1 <= v <= 64, numeric=True),
    "tiers": Rule("label -> share of customers, shares > 0 adding up to at most 1, e.g. {high: 0.2, low: 0.8}", _shares),
    "value_tier_shares": Rule("shares of customers > 0 adding up to at most 1, e.g. [0.2, 0.3]", _shares),
    "wait_band_seconds": Rule("ascending limits in seconds > 0, e.g. [60, 300, 900]", _ascending),
    "callback_channels": _CHANNELS, "occasion_channels": _CHANNELS,
}
PATTERN_RULES: tuple[tuple[re.Pattern, Rule], ...] = (       # families of numeric parameters
    (re.compile(r"(.+_)?min_.+"), _COUNT),
    (re.compile(r"top_.+"), _COUNT),
    (re.compile(r".+_days"), Rule("a number of days >= 0", lambda v: v >= 0, numeric=True)),
)


def rule_for(key: str, audiences: Iterable[str] = AUDIENCES) -> Rule | None:
    """The declared range of parameter `key`: RULES, else the first matching PATTERN_RULES, else
    None. `audience` must name one of `audiences` (the views of config/pipeline.yml)."""
    if key == "audience":
        return Rule(f"one of {', '.join(audiences)} (config/pipeline.yml audiences)", lambda v: v in tuple(audiences))
    if key in RULES:
        return RULES[key]
    return next((rule for pattern, rule in PATTERN_RULES if pattern.fullmatch(key)), None)


def check_value(key: str, value, type_name: str | None, *, audiences: Iterable[str] = AUDIENCES,
                where: str = ""):
    """`value` checked against the declared type (`type_name`: bool, int, float, str, list,
    dict; None: not annotated) and the range of `key` (see `rule_for`); returns it, a date
    given to a str parameter as ISO text. Raises UsageError
    '<where><key>: must be <what>, got <value>'.

        check_value("min_answers", "abc", "int", where="02_feedback parameter ")   # UsageError
        check_value("as_of", dt.date(2026, 1, 31), "str") -> "2026-01-31"
    """
    if type_name == "str" and isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    rule = rule_for(key, audiences)
    if rule is not None and rule.numeric and not (type_name in ("int", "float")
                                                 or (type_name is None and _is_number(value))):
        rule = None          # e.g. `name_days: str`, a file of name days, not a number of days
    test, text = TYPES.get(type_name or "", (None, None))
    ok = test is None or test(value)
    if ok and rule is not None:
        try:
            ok = bool(rule.test(value))
        except (TypeError, ValueError):
            ok = False
    if not ok:
        expected = rule.text if rule is not None else text      # a rule's text names the type too
        raise UsageError(f"{where}{key}: must be {expected}, got {value!r}")
    return value


def check_parameters(parameters: Mapping[str, Mapping], types: Mapping[str, Mapping[str, str | None]], *,
                     audiences: Iterable[str] = AUDIENCES) -> dict[str, dict]:
    """Per-notebook parameters ({name: {key: value}}, see `merge_parameters`) checked against each
    notebook's declared types ({name: {key: type name}}) and the ranges of `rule_for`; returns
    them with dates as ISO text for str parameters. Raises UsageError naming the notebook."""
    audiences = list(audiences)
    return {name: {key: check_value(key, value, types.get(name, {}).get(key), audiences=audiences,
                                    where=f"{name} parameter ")
                   for key, value in params.items()}
            for name, params in parameters.items()}


# --- reading the levels -----------------------------------------------------------------------
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
        except (yaml.YAMLError, ValueError) as exc:     # ValueError: an impossible date such as 2026-13-01
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
    RUN_DEFAULTS < pipeline.yml `parameters` < the parameter file's top level < `-p key=value`,
    checked like a notebook's (`check_value`; retention_days empty or null means 0).

        run_parameters(overrides=["lang=de"]) -> {"lang": "de", "audience": "management", "retention_days": 0}
    """
    file_common, _ = split_parameter_file(file)
    cli_common, _ = parse_overrides(overrides)
    layers = (RUN_DEFAULTS, pipeline or {}, file_common, cli_common)
    values = {key: value for layer in layers for key, value in layer.items() if key in RUN_KEYS}
    if values["retention_days"] is None or values["retention_days"] == "":
        values["retention_days"] = 0
    audiences = list(audiences)
    return {key: check_value(key, value, RUN_TYPES[key], audiences=audiences) for key, value in values.items()}


def parameter_specs(paths: Mapping[str, str]) -> dict[str, dict[str, dict]]:
    """What each notebook's `parameters` cell declares: {name: {key: {"type": annotation or
    None, "default": source text}}} for notebooks {name: path}."""
    import papermill

    specs = {}
    for name, path in paths.items():
        found = papermill.inspect_notebook(str(path))
        specs[name] = {key: {"type": None if spec.get("inferred_type_name") in (None, "None")
                             else spec["inferred_type_name"], "default": spec["default"]}
                       for key, spec in found.items()}
    return specs
