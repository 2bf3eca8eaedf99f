"""What changed since the previous run: input files (by sha256), parameters, and every number
recorded in results.json, compared leaf by leaf. Pure: takes the run.json and results.json dicts
of two runs; the pipeline stores the answer in run.json `comparison` and index.html shows it.

    compare_runs(previous_record, previous_results, record, results)["numbers"][0]
    -> {"path": "feedback.nps.value", "previous": 12.1, "current": 13.4, "change": 1.3}
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from cxlib.report import to_jsonable

IGNORED_PARAMETERS = frozenset({"run_dir", "previous_run_dir"})   # differ in every run by design
_COMPARED_SECTIONS_SKIP = frozenset({"inputs", "comparison"})    # inputs are compared file by file
_KEY_TEXT_MAX = 80


def is_number(value) -> bool:
    """Whether `value` is a finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _row_names(rows: list) -> list[str] | None:
    """Names for the rows of a results table: the fewest leading text fields (codes before labels)
    that tell every row apart, e.g. 'category=billing, month=2025-01'; None when none do."""
    if not rows or not all(isinstance(row, Mapping) for row in rows):
        return None
    fields = [key for key in rows[0]
              if all(isinstance(row.get(key), str) and len(row[key]) <= _KEY_TEXT_MAX for row in rows)]
    for size in range(1, len(fields) + 1):
        names = [", ".join(f"{key}={row[key]}" for key in fields[:size]) for row in rows]
        if len(set(names)) == len(names):
            return names
    return None


def numeric_leaves(data, path: str = "") -> dict[str, float]:
    """Every number in a results dict, by path: {'feedback.nps.value': 12.3, 'complaints[category=billing,
    month=2025-01].rate_per_1000': 4.1}. Rows of a list are named by their leading text fields (so a
    re-ranked table still matches row by row), by position where those do not tell rows apart."""
    leaves: dict[str, float] = {}
    if is_number(data):
        leaves[path] = data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            leaves.update(numeric_leaves(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(data, list):
        names = _row_names(data) or [str(position) for position in range(len(data))]
        for name, value in zip(names, data, strict=True):
            leaves.update(numeric_leaves(value, f"{path}[{name}]"))
    return leaves


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _flat_parameters(record: Mapping | None) -> dict[tuple[str, str], object]:
    record = record or {}
    flat = {("", key): value for key, value in (record.get("run_parameters") or {}).items()}
    for notebook, params in (record.get("parameters") or {}).items():
        flat.update({(notebook, key): value for key, value in (params or {}).items() if key not in IGNORED_PARAMETERS})
    return flat


def compare_runs(previous_record: Mapping | None, previous_results: Mapping | None,
                 record: Mapping, results: Mapping) -> dict:
    """What changed since the previous run: input files (by sha256), parameters and every number
    recorded in results.json. Pure: takes the two run.json and results.json dicts. Runs of
    different source mappings (run.json `inputs.source`) hold different datasets: then only
    `different_dataset` {previous, current} is filled and nothing is compared.

    Returns {previous_run, different_dataset, fingerprint_changed, inputs: {added, removed, changed, unchanged},
    notebooks: {added, removed}, parameters: [{notebook, parameter, previous, current}] (notebook ''
    for run-wide keys; run_dir/previous_run_dir left out), numbers: [{path, previous, current,
    change}] (numbers in both runs that differ, shallow paths first), numbers_compared,
    numbers_added, numbers_removed}. Without a previous run: previous_run None, everything empty.

        compare_runs(None, None, record, results)["previous_run"] -> None
    """
    record = to_jsonable(record or {})
    results = to_jsonable(results or {})
    nothing = {"previous_run": None, "different_dataset": None, "fingerprint_changed": None,
               "inputs": {"added": [], "removed": [], "changed": [], "unchanged": 0},
               "notebooks": {"added": [], "removed": []}, "parameters": [], "numbers": [],
               "numbers_compared": 0, "numbers_added": 0, "numbers_removed": 0}
    if not previous_record:
        return nothing
    previous_record = to_jsonable(previous_record)
    sources = [(rec.get("inputs") or {}).get("source") for rec in (previous_record, record)]
    if all(sources) and sources[0] != sources[1]:
        return {**nothing, "previous_run": previous_record.get("run_id"),
                "different_dataset": {"previous": sources[0], "current": sources[1]}}
    previous_results = to_jsonable(previous_results or {})

    def files(rec):
        return {f["file"]: f for f in ((rec.get("inputs") or {}).get("files") or []) if isinstance(f, dict) and "file" in f}

    old_files, new_files = files(previous_record), files(record)
    changed = [
        {"file": name, "previous_sha256": old_files[name].get("sha256"), "sha256": new_files[name].get("sha256"),
         "previous_bytes": old_files[name].get("bytes"), "bytes": new_files[name].get("bytes")}
        for name in new_files if name in old_files and old_files[name].get("sha256") != new_files[name].get("sha256")
    ]
    old_fp = (previous_record.get("inputs") or {}).get("fingerprint")
    new_fp = (record.get("inputs") or {}).get("fingerprint")

    old_nbs = [nb.get("name") for nb in previous_record.get("notebooks") or []]
    new_nbs = [nb.get("name") for nb in record.get("notebooks") or []]
    old_params, new_params = _flat_parameters(previous_record), _flat_parameters(record)
    both_run = set(old_nbs) & set(new_nbs) | {""}
    parameters = [
        {"notebook": nb, "parameter": key, "previous": old_params.get((nb, key)), "current": new_params.get((nb, key))}
        for nb, key in dict.fromkeys([*new_params, *old_params])
        if nb in both_run and ((nb, key) not in old_params or (nb, key) not in new_params
                               or old_params[(nb, key)] != new_params[(nb, key)])
    ]

    def leaves(res):
        return numeric_leaves({k: v for k, v in res.items() if k not in _COMPARED_SECTIONS_SKIP})

    old_leaves, new_leaves = leaves(previous_results), leaves(results)
    common = [path for path in new_leaves if path in old_leaves]
    numbers = sorted(
        ({"path": path, "previous": old_leaves[path], "current": new_leaves[path],
          "change": new_leaves[path] - old_leaves[path]}
         for path in common if not _same(old_leaves[path], new_leaves[path])),
        key=lambda row: (row["path"].count("["), row["path"].count(".")),
    )
    return {
        "previous_run": previous_record.get("run_id"),
        "different_dataset": None,
        "fingerprint_changed": None if old_fp is None or new_fp is None else old_fp != new_fp,
        "inputs": {"added": [n for n in new_files if n not in old_files],
                   "removed": [n for n in old_files if n not in new_files],
                   "changed": changed,
                   "unchanged": sum(1 for n in new_files if n in old_files) - len(changed)},
        "notebooks": {"added": [n for n in new_nbs if n not in old_nbs],
                      "removed": [n for n in old_nbs if n not in new_nbs]},
        "parameters": parameters,
        "numbers": numbers,
        "numbers_compared": len(common),
        "numbers_added": sum(1 for p in new_leaves if p not in old_leaves),
        "numbers_removed": sum(1 for p in old_leaves if p not in new_leaves),
    }
