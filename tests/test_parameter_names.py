"""Parameter names mean one thing across notebooks, and every notebook refuses invalid values
before the run (the ranges of cxlib.parameters)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from cxlib import parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FREE_NUMBERS = {"seed"}          # any whole number is a valid random seed


@pytest.fixture(scope="module")
def specs() -> dict[str, dict[str, dict]]:
    return parameters.parameter_specs({path.stem: path for path in NOTEBOOKS})


def test_every_notebook_is_inspected(specs):
    assert len(specs) == len(NOTEBOOKS) >= 7
    assert all(specs[name] for name in specs)


def test_a_name_has_one_type_and_one_default_in_every_notebook(specs):
    seen = defaultdict(dict)
    for notebook, declared in specs.items():
        for key, spec in declared.items():
            seen[key][notebook] = (spec["type"], spec["default"])
    collisions = {key: by_notebook for key, by_notebook in seen.items() if len(set(by_notebook.values())) > 1}
    assert collisions == {}, "a parameter name means different things: " + "; ".join(
        f"{key}: " + ", ".join(f"{nb} {t} = {d}" for nb, (t, d) in by.items()) for key, by in collisions.items())


def test_every_parameter_is_annotated_and_its_default_passes_its_own_rule(specs):
    for notebook, declared in specs.items():
        for key, spec in declared.items():
            assert spec["type"] in parameters.TYPES, f"{notebook} {key}: annotate the type"
            default = ast.literal_eval(spec["default"])
            parameters.check_value(key, default, spec["type"], where=f"{notebook} parameter ")


def test_every_number_has_a_range(specs):
    unruled = sorted({key for declared in specs.values() for key, spec in declared.items()
                      if spec["type"] in ("int", "float") and key not in FREE_NUMBERS
                      and parameters.rule_for(key) is None})
    assert unruled == []


@pytest.mark.parametrize("key, value, type_name, message", [
    ("trend_period", "week", "str", "one of month, quarter"),
    ("tile_period", "decade", "str", "one of month, quarter, year"),
    ("min_answers", 0, "int", "a whole number >= 1"),
    ("handling_min_n", -3, "int", "a whole number >= 1"),
    ("top_moments", 0, "int", "a whole number >= 1"),
    ("tiers", {"high": 0.6, "low": 0.6}, "dict", "adding up to at most 1"),
    ("value_tier_shares", [0.2, -0.1], "list", "shares of customers > 0"),
    ("wait_band_seconds", [300, 60], "list", "ascending limits"),
    ("clv_method", "nuts", "str", "one of map, mcmc"),
    ("rfm_bins", 1, "int", "from 2 to 10"),
    ("annual_discount_rate", 1.5, "float", "a yearly rate in [0, 1)"),
    ("callback_channels", ["phone", ""], "list", "a list of channel codes"),
    ("exposure_window_days", -1, "int", "a number of days >= 0"),
])
def test_invalid_values_are_refused_with_what_they_must_be(key, value, type_name, message):
    with pytest.raises(parameters.UsageError, match="must be") as error:
        parameters.check_parameters({"nb": {key: value}}, {"nb": {key: type_name}})
    assert message in str(error.value) and str(error.value).startswith(f"nb parameter {key}:")
