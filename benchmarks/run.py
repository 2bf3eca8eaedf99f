"""Scale benchmark: the journey computations on the demo company at 1,000,000 customers.

    python benchmarks/run.py                       # 1M customers (~18.6M events), minutes
    python benchmarks/run.py --customers 50000     # a quick run

Every step runs in its own child process; the parent reports the step's wall time (measured
in the child around the work itself, imports excluded), its CPU time (all threads) and the
child's peak resident memory (ru_maxrss from os.wait4; for Spark plus the JVM's VmHWM).
Transition counts are computed on the same event log by Ibis on DuckDB (cxlib.journey), one
hand-written DuckDB SQL query, plain pandas, pm4py's DFG discovery and the same Ibis
expression on PySpark in local mode (the cost of the distribution layer on one machine), and
checked to agree; the repeats of these steps run interleaved (round-robin) so that load from
other processes hits them alike. See benchmarks/README.md for the route to the data.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# the defaults of notebooks/03_journey.ipynb
FUNNEL_STEPS = ["web_visit|tariff_page", "quote|consultation|cart", "order", "activation", "first_invoice"]
STEP_PAIRS = [("quote|consultation", "order"), ("order", "provisioning_start"), ("order", "activation"),
              ("activation", "first_invoice")]
GAP_DAYS = 30
OPPORTUNITY_STEPS = ["quote", "consultation"]

# name -> (group, description); run in this order
STEPS = {
    "stages": ("journey", "stage summary (taxonomy stages, customers and events per stage)"),
    "episodes": ("journey", f"episodes split by a {GAP_DAYS}-day inactivity gap"),
    "funnel": ("journey", f"funnel {' > '.join(FUNNEL_STEPS)}"),
    "funnel_by_segment": ("journey", "funnel per segment"),
    "transitions": ("journey", "transition counts and probabilities (touchpoints)"),
    "paths": ("journey", "top path variants (stages, max 8 steps)"),
    "time_between": ("journey", f"time between steps ({len(STEP_PAIRS)} pairs)"),
    "conversion": ("journey", "conversion, repeat-customer rate, repeat vs new, lost sales"),
    "tc_ibis": ("transition counts", "Ibis on DuckDB: journey.transition_counts"),
    "tc_sql": ("transition counts", "DuckDB, one hand-written SQL query"),
    "tc_pandas": ("transition counts", "pandas: sort + shift + value_counts"),
    "tc_pm4py": ("transition counts", "pm4py.discover_dfg"),
    "tc_pyspark": ("transition counts", "PySpark local[2]: the same journey.transition_counts (start of Spark not included)"),
    "tc_ibis_sorted": ("what-if", "tc_ibis on a copy of events.parquet sorted by customer, timestamp, event_id"),
    "tc_sql_sorted": ("what-if", "tc_sql on the same sorted copy"),
}
TRANSITION_STEPS = ["tc_ibis", "tc_sql", "tc_pandas", "tc_pm4py", "tc_pyspark", "tc_ibis_sorted", "tc_sql_sorted"]
SORTED_STEPS = ["tc_ibis_sorted", "tc_sql_sorted"]
DEFAULT_SKIP = SORTED_STEPS            # the what-if runs only when named in --steps
SPARK_MASTER = "local[2]"


# --- the data: the demo company through the pipeline's own path -----------------------------

def build_generate(data: Path, customers: int, seed: int) -> dict:
    """demo.generate + demo.write_exports into data/raw (what `cx demo` does)."""
    from cxlib import demo

    start = time.perf_counter()
    company = demo.generate(customers=customers, seed=seed)
    written = demo.write_exports(company, data / "raw")
    return {"seconds": time.perf_counter() - start, "rows": sum(len(f) for f in company.files.values()),
            "files": len(written)}


def build_map_clean(data: Path) -> dict:
    """cxlib.ingest (config/sources/demo.yml): mapping in batches, cleaning in customer buckets,
    processed tables written in order to data/processed (what notebook 01_validate_clean does,
    without the gates and the report)."""
    import duckdb

    from cxlib import config, ingest

    start = time.perf_counter()
    taxonomy = config.load_taxonomy(ROOT / "config" / "taxonomy.yml")
    work = ingest.workspace(data / "processed")
    staged = ingest.stage(ROOT / "config" / "sources" / "demo.yml", data / "raw", taxonomy, work)
    processed = ingest.clean(staged, taxonomy, b"cx-insights-benchmark-key")
    ingest.publish(processed, data / "processed")
    events = str(data / "processed" / "events.parquet")
    info = {**{t: processed.rows.get(t, 0) for t in ("events", "customers", "orders", "campaigns", "feedback")},
            "customers_with_events": duckdb.sql(f"select count(distinct customer_id) from '{events}'").fetchall()[0][0]}
    seconds = time.perf_counter() - start
    (data / "meta.json").write_text(json.dumps(info, indent=2))
    return {"seconds": seconds, "rows": info["events"]}


# --- the steps (run in a child process) -------------------------------------------------------

def _duckdb_settings(args) -> dict:
    return {"threads": args.threads, "memory_limit": args.memory_limit,
            "temp_directory": str(Path(args.data) / "duckdb_tmp")}


def step_journey(name: str, args) -> dict:
    from cxlib import config, engine, journey

    con = engine.connect("duckdb", **_duckdb_settings(args))
    tables = engine.read_tables(con, Path(args.data) / "processed", ["customers", "events", "orders"])
    taxonomy = config.load_taxonomy(ROOT / "config" / "taxonomy.yml")
    events = journey.with_stages(tables["events"], taxonomy)
    start = time.perf_counter()
    if name == "stages":
        out = journey.stage_summary(events, taxonomy)
    elif name == "episodes":
        out = journey.episode_summary(events, GAP_DAYS)
    elif name == "funnel":
        out = journey.funnel(events, FUNNEL_STEPS)
    elif name == "funnel_by_segment":
        out = journey.funnel(journey.attach(events, tables["customers"]), FUNNEL_STEPS, by="segment")
    elif name == "transitions":
        out = journey.transitions(events)
    elif name == "paths":
        out = journey.path_variants(events, col_node="stage", max_steps=8)
    elif name == "time_between":
        out = journey.time_between_steps(events, STEP_PAIRS)
    elif name == "conversion":
        out = [journey.conversion_rate(tables["customers"], tables["orders"], since="2024-01-01"),
               journey.repeat_customer_rate(tables["orders"]),
               journey.repeat_vs_new_conversion(events, tables["orders"], customers=tables["customers"],
                                                steps=OPPORTUNITY_STEPS),
               journey.lost_sales(events, tables["orders"], steps=OPPORTUNITY_STEPS)]
    else:
        raise ValueError(name)
    seconds = time.perf_counter() - start
    rows = sum(len(o) for o in out) if isinstance(out, list) else len(out)
    return {"seconds": seconds, "rows": rows}


def build_sort_events(data: Path, args) -> dict:
    """A copy of processed/events.parquet sorted by customer_id, timestamp, event_id (the what-if
    of writing the processed events in journey order), written by DuckDB."""
    import duckdb

    start = time.perf_counter()
    target = data / "sorted" / "events.parquet"
    target.parent.mkdir(exist_ok=True)
    con = duckdb.connect(config=_duckdb_settings(args))
    con.sql(f"""COPY (SELECT * FROM read_parquet('{data / "processed" / "events.parquet"}')
                      ORDER BY customer_id, "timestamp", event_id)
                TO '{target}' (FORMAT parquet, COMPRESSION snappy)""")
    return {"seconds": time.perf_counter() - start, "rows": int(con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchall()[0][0])}


def _jvm_usage(pid: int) -> tuple[float, float]:
    """CPU seconds and peak resident MB (VmHWM) of the Spark JVM so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM"))
    return cpu, int(hwm.split()[1]) / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def step_transitions(name: str, args) -> dict:
    import duckdb
    import pandas as pd

    from cxlib import engine, journey

    if name == "tc_pm4py":
        with contextlib.redirect_stdout(io.StringIO()):   # pm4py prints a banner on import
            import pm4py
    folder = "sorted" if name in SORTED_STEPS else "processed"
    events_path = str(Path(args.data) / folder / "events.parquet")
    extra = {}
    if name == "tc_pyspark":          # start Spark first: the JVM start is reported, not timed with the work
        started = time.perf_counter()
        from pyspark.sql import SparkSession

        con = engine.connect("pyspark", spark={"master": SPARK_MASTER, "config": {"spark.driver.memory": args.spark_memory}})
        session = SparkSession.getActiveSession()
        jvm = int(session._jvm.java.lang.ProcessHandle.current().pid())
        jvm_cpu0, _ = _jvm_usage(jvm)
        extra["spark_start_seconds"] = time.perf_counter() - started
    cpu0 = _cpu()
    start = time.perf_counter()      # imports excluded; connecting and reading the Parquet file included
    if name in ("tc_ibis", "tc_ibis_sorted"):
        con = engine.connect("duckdb", **_duckdb_settings(args))
        events = engine.read_table(con, events_path, table="events")
        counts = engine.to_pandas(journey.transition_counts(events))
    elif name == "tc_pyspark":
        events = engine.read_table(con, events_path, table="events")
        counts = engine.to_pandas(journey.transition_counts(events))
    elif name in ("tc_sql", "tc_sql_sorted"):
        con = duckdb.connect(config=_duckdb_settings(args))
        counts = con.sql(f"""
            SELECT touchpoint AS from_step, next_step AS to_step, count(*) AS transitions
            FROM (
                SELECT touchpoint,
                       lead(touchpoint) OVER (PARTITION BY customer_id ORDER BY "timestamp", event_id) AS next_step
                FROM read_parquet('{events_path}')
            )
            WHERE next_step IS NOT NULL
            GROUP BY ALL
        """).df()
    elif name == "tc_pandas":
        events = pd.read_parquet(events_path, columns=["event_id", "customer_id", "timestamp", "touchpoint"])
        events = events.sort_values(["customer_id", "timestamp", "event_id"], ignore_index=True)
        same = events["customer_id"].eq(events["customer_id"].shift(-1))
        counts = (pd.DataFrame({"from_step": events["touchpoint"], "to_step": events["touchpoint"].shift(-1)})[same]
                  .value_counts().rename("transitions").reset_index())
    elif name == "tc_pm4py":
        events = pd.read_parquet(events_path, columns=["event_id", "customer_id", "timestamp", "touchpoint"])
        # the same tiebreak as the others: pm4py sorts by case and timestamp (stable), so
        # pre-sorting by event_id settles events with the same timestamp identically
        events = events.sort_values(["customer_id", "timestamp", "event_id"], ignore_index=True)
        dfg, _start, _end = pm4py.discover_dfg(events, case_id_key="customer_id", activity_key="touchpoint",
                                               timestamp_key="timestamp")
        counts = pd.DataFrame([(a, b, n) for (a, b), n in dfg.items()],
                              columns=["from_step", "to_step", "transitions"])
    else:
        raise ValueError(name)
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu0
    if name == "tc_pyspark":
        jvm_cpu1, jvm_peak = _jvm_usage(jvm)
        cpu += jvm_cpu1 - jvm_cpu0
        extra["jvm_peak_mb"] = jvm_peak
        extra["python_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        session.stop()
    counts = (counts.astype({"from_step": "str", "to_step": "str", "transitions": "int64"})
              .sort_values(["from_step", "to_step"], ignore_index=True))
    counts.to_parquet(Path(args.data) / f"{name}.parquet")
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": len(counts), "transitions": int(counts["transitions"].sum()),
            **extra}


def child(args) -> None:
    if args.child == "generate":
        result = build_generate(Path(args.data), args.customers, args.seed)
    elif args.child == "map_clean":
        result = build_map_clean(Path(args.data))
    elif args.child == "sort_events":
        result = build_sort_events(Path(args.data), args)
    elif args.child in TRANSITION_STEPS:
        result = step_transitions(args.child, args)
    else:
        result = step_journey(args.child, args)
    print("RESULT " + json.dumps(result))


# --- the parent ---------------------------------------------------------------------------

def run_child(step: str, args, data: Path) -> dict:
    """Run one step in a child process: its result, wall time and the child's own peak RSS."""
    cmd = [sys.executable, __file__, "--child", step, "--data", str(data), "--customers", str(args.customers),
           "--seed", str(args.seed), "--threads", str(args.threads), "--memory-limit", args.memory_limit,
           "--spark-memory", args.spark_memory]
    log = data / f"{step}.log"
    started = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)   # reap it ourselves: rusage of this child only
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    text = log.read_text()
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"step {step} failed (exit {proc.returncode}), see {log}:\n{text[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    peak = usage.ru_maxrss / 1024
    if "jvm_peak_mb" in result:       # Spark: Python's peak plus the JVM's (an upper bound of the two together)
        peak = result["python_peak_mb"] + result["jvm_peak_mb"]
    return {**result, "process_seconds": elapsed, "peak_mb": peak}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers of the demo company (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=str(HERE / "out"), help="folder for the generated data and results")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit (default 1GB; it spills beyond)")
    parser.add_argument("--spark-memory", default="2g", help="spark.driver.memory of the local Spark (default 2g)")
    parser.add_argument("--steps", default="",
                        help="comma-separated subset of steps to run (default: all but the what-if steps "
                             f"{', '.join(DEFAULT_SKIP)}, which need naming)")
    parser.add_argument("--skip", default="", help="comma-separated steps to skip (e.g. tc_pm4py,tc_pyspark)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data even if it exists")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each transition-count step; the fastest is reported (default 2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    return parent(args)


BUILD_STEPS = {
    "generate": ("data", "demo.generate + write_exports (CSV, Excel) = cx demo"),
    "map_clean": ("data", "ingest: map in batches (demo.yml), clean in customer buckets, write in order"),
    "sort_events": ("data", "what-if: events.parquet sorted by customer, timestamp, event_id (DuckDB COPY)"),
}


def _print_row(step: str, result: dict) -> None:
    group, what = {**BUILD_STEPS, **STEPS}[step]
    cpu = f"{result['cpu_seconds']:>6.1f}" if "cpu_seconds" in result else " " * 6
    runs = ", ".join(f"{s:.1f}" for s in result.get("runs_seconds", [])) if len(result.get("runs_seconds", [])) > 1 else ""
    note = "; ".join(n for n in (f"runs {runs} s" if runs else "",
                                 f"Spark start {result['spark_start_seconds']:.1f} s" if "spark_start_seconds" in result else "")
                     if n)
    print(f"| {group:<17} | {step:<17} | {result['seconds']:>8.1f} | {cpu} | {result['peak_mb']:>8.0f} | "
          f"{result.get('rows', ''):>7} | {what}{' (' + note + ')' if note else ''} |", flush=True)


def parent(args) -> int:
    data = Path(args.out) / f"demo_{args.customers}_seed{args.seed}"
    data.mkdir(parents=True, exist_ok=True)
    selected = [s.strip() for s in args.steps.split(",") if s.strip()] or [s for s in STEPS if s not in DEFAULT_SKIP]
    skipped = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = sorted((set(selected) | skipped) - set(STEPS))
    if unknown:
        raise SystemExit(f"unknown step(s) {unknown}; steps: {', '.join(STEPS)}")
    print(f"cx-insights benchmark: {args.customers:,} customers, seed {args.seed}, DuckDB threads "
          f"{args.threads}, memory_limit {args.memory_limit}; data in {data}", flush=True)
    print("| group             | step              |   wall s |  cpu s |  peak MB |    rows | what |")
    print("|---|---|---:|---:|---:|---:|---|", flush=True)
    results: dict[str, dict] = {}
    meta = data / "meta.json"
    if args.rebuild or not meta.is_file():
        for step in ("generate", "map_clean"):
            results[step] = run_child(step, args, data)
            _print_row(step, results[step])
    info = json.loads(meta.read_text())
    todo = [s for s in selected if s not in skipped]
    if "tc_pyspark" in todo:
        import importlib.util

        from cxlib import engine
        missing = ("pyspark is not installed (pip install .[spark])" if importlib.util.find_spec("pyspark") is None
                   else engine.java_problem())
        if missing:
            print(f"tc_pyspark skipped: {missing}", flush=True)
            todo.remove("tc_pyspark")
    if any(s in SORTED_STEPS for s in todo) and (args.rebuild or not (data / "sorted" / "events.parquet").is_file()):
        results["sort_events"] = run_child("sort_events", args, data)
        _print_row("sort_events", results["sort_events"])
    for step in [s for s in todo if s not in TRANSITION_STEPS]:
        results[step] = _best([run_child(step, args, data)])
        _print_row(step, results[step])
    # transition counts: round-robin repeats (tc_ibis, tc_sql, …, tc_ibis, tc_sql, …), fastest run shown
    timed = [s for s in todo if s in TRANSITION_STEPS]
    runs: dict[str, list] = {s: [] for s in timed}
    for _round in range(args.repeat):
        for step in timed:
            runs[step].append(run_child(step, args, data))
    for step in timed:
        results[step] = _best(runs[step])
        _print_row(step, results[step])
    print(f"\nevent log: {info['events']:,} events of {info['customers_with_events']:,} customers "
          f"({info['customers']:,} customers and leads), {info['orders']:,} orders", flush=True)
    ok = _check(results, data)
    (data / "results.json").write_text(json.dumps({"args": vars(args), "data": info, "results": results}, indent=2))
    return 0 if ok else 1


def _best(runs: list[dict]) -> dict:
    """The fastest run, with every run's wall time and the highest peak memory of them all."""
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "runs_seconds": [r["seconds"] for r in runs], "peak_mb": max(r["peak_mb"] for r in runs)}


def _check(results: dict, data: Path) -> bool:
    """Agreement of the transition counts, ratios and the memory target."""
    import pandas as pd

    done = [s for s in TRANSITION_STEPS if s in results]
    ok = True
    if len(done) > 1:
        frames = {s: pd.read_parquet(data / f"{s}.parquet") for s in done}
        reference = frames[done[0]]
        for step in done[1:]:
            same = frames[step].equals(reference)
            ok &= same
            print(f"transition counts {step} == {done[0]}: {'yes' if same else 'NO'} "
                  f"({len(frames[step])} pairs, {int(frames[step]['transitions'].sum()):,} transitions)")
    seconds = {s: results[s]["seconds"] for s in done}
    if "tc_ibis" in seconds:
        if "tc_pm4py" in seconds:
            ratio = seconds["tc_pm4py"] / seconds["tc_ibis"]
            print(f"pm4py / Ibis-DuckDB: {ratio:.1f}x (target >= 6x): {'met' if ratio >= 6 else 'NOT met'}")
        if "tc_pandas" in seconds:
            print(f"pandas / Ibis-DuckDB: {seconds['tc_pandas'] / seconds['tc_ibis']:.1f}x")
        if "tc_sql" in seconds:
            ratio = seconds["tc_ibis"] / seconds["tc_sql"]
            cpu = results["tc_ibis"]["cpu_seconds"] / results["tc_sql"]["cpu_seconds"]
            print(f"Ibis-DuckDB / hand-written DuckDB SQL: {ratio:.2f}x wall, {cpu:.2f}x CPU (target <= 1.3x): "
                  f"{'met' if ratio <= 1.3 else 'NOT met'}")
        if "tc_pyspark" in seconds:
            print(f"PySpark local / Ibis-DuckDB: {seconds['tc_pyspark'] / seconds['tc_ibis']:.1f}x wall "
                  f"(+{results['tc_pyspark']['spark_start_seconds']:.0f} s to start Spark)")
    for plain, what_if in (("tc_ibis", "tc_ibis_sorted"), ("tc_sql", "tc_sql_sorted")):
        if plain in results and what_if in results:
            print(f"{what_if} / {plain}: {seconds[what_if] / seconds[plain]:.2f}x wall, "
                  f"{results[what_if]['cpu_seconds'] / results[plain]['cpu_seconds']:.2f}x CPU")
    ours = {s: r["peak_mb"] for s, r in results.items() if STEPS.get(s, ("",))[0] == "journey" or s == "tc_ibis"}
    if ours:
        worst = max(ours, key=ours.get)
        print(f"peak memory of the Ibis/DuckDB steps: max {ours[worst]:.0f} MB ({worst}) (target < 2048 MB): "
              f"{'met' if ours[worst] < 2048 else 'NOT met'}")
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
