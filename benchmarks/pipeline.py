"""Whole-pipeline benchmark: `cx demo` and `cx run` at given sizes, wall and CPU per stage and the
peak memory of every process (the cx process and each notebook's kernel).

    .venv/bin/python benchmarks/pipeline.py --customers 200000 1000000
    make bench-pipeline BENCH_PIPELINE_ARGS="--customers 50000"

Each size gets a fresh project under `--out` (config, notebooks and params copied from this
repository; data/raw written by `cx demo`). A monitor samples the process tree of the command
every `--interval` seconds: the CPU time each process used since the previous sample goes to the
stage `cx run` is working on (it prints `[k/n] <notebook>` when a stage starts), the resident
memory of the tree and of its largest process give the peaks. Short-lived processes between two
samples are missed, so CPU and peaks are lower bounds within one interval. A second sampler adds
up, every `--disk-interval` seconds, the bytes on disk of the project's data folder (stage 01's
work folder included; the exports and processed tables linked in with `--raw` / `--processed`
not) and of the engine's spill folders the run created in the temporary folder: the peak disk
each stage needs beside the exports. Prints a Markdown table and writes
`pipeline_<customers>.json` beside the project.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import tempfile

import psutil

ROOT = Path(__file__).resolve().parents[1]
CX = Path(sys.executable).with_name("cx")
STAGE = re.compile(r"\[(\d+)/(\d+)\] (\S+)")
MB = 1024 * 1024


@dataclass
class StageUse:
    """What one stage used: wall seconds, CPU seconds of all processes, peak RSS (MB) of the
    process tree and of its largest process, peak disk (MB, `disk_bytes`), and how many
    processes were seen."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_tree_mb: float = 0.0
    peak_process_mb: float = 0.0
    peak_disk_mb: float = 0.0
    processes: set = field(default_factory=set)

    def as_dict(self) -> dict:
        return {"wall_s": round(self.wall_s, 1), "cpu_s": round(self.cpu_s, 1), "peak_tree_mb": round(self.peak_tree_mb),
                "peak_process_mb": round(self.peak_process_mb), "peak_disk_mb": round(self.peak_disk_mb),
                "processes": len(self.processes)}


def disk_bytes(data: Path, spill_before: set[str]) -> int:
    """Bytes of the files under `data` (links not followed: linked exports and tables are inputs)
    and under the engine spill folders (`cx-duckdb-*` in the temporary folder) not in
    `spill_before`. Files removed while they are counted count 0."""
    roots = [data, *(p for p in Path(tempfile.gettempdir()).glob("cx-duckdb-*") if p.name not in spill_before)]
    total = 0
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    continue
    return total


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def monitor(command: list[str], *, cwd: Path, interval: float, log: Path,
            env: dict | None = None, disk_interval: float = 1.0) -> tuple[int, dict[str, StageUse]]:
    """Run `command`, sampling its process tree and its disk use (`disk_bytes` of cwd/data);
    returns (exit code, {stage: StageUse}). Stdout goes to `log`; `[k/n] name` in it switches
    the current stage (before the first: 'setup')."""
    uses: dict[str, StageUse] = {}
    current = {"stage": "setup", "since": time.perf_counter()}
    seen_cpu: dict[int, float] = {}
    spill_before = {p.name for p in Path(tempfile.gettempdir()).glob("cx-duckdb-*")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        root = psutil.Process(proc.pid)

        def read() -> None:
            text = ""
            while chunk := os.read(proc.stdout.fileno(), 4096):
                out.write(chunk)
                out.flush()
                text = (text + chunk.decode("utf-8", "replace"))[-4000:]
                found = STAGE.findall(text)
                if found and found[-1][2] != current["stage"]:
                    now = time.perf_counter()
                    uses.setdefault(current["stage"], StageUse()).wall_s += now - current["since"]
                    current.update(stage=found[-1][2], since=now)

        def disk() -> None:
            while proc.poll() is None:
                use = uses.setdefault(current["stage"], StageUse())
                use.peak_disk_mb = max(use.peak_disk_mb, disk_bytes(cwd / "data", spill_before) / MB)
                time.sleep(disk_interval)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        sampler = threading.Thread(target=disk, daemon=True)
        sampler.start()
        while proc.poll() is None:
            use = uses.setdefault(current["stage"], StageUse())
            tree_rss, largest = 0, 0
            for p in _tree(root):
                try:
                    cpu = p.cpu_times()
                    rss = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                total = cpu.user + cpu.system          # own time only: a reaped child is counted once, itself
                use.cpu_s += max(0.0, total - seen_cpu.get(p.pid, 0.0))
                seen_cpu[p.pid] = total
                use.processes.add(p.pid)
                tree_rss += rss
                largest = max(largest, rss)
            use.peak_tree_mb = max(use.peak_tree_mb, tree_rss / MB)
            use.peak_process_mb = max(use.peak_process_mb, largest / MB)
            time.sleep(interval)
        reader.join(timeout=5)
        sampler.join(timeout=5 + disk_interval)
        uses.setdefault(current["stage"], StageUse()).wall_s += time.perf_counter() - current["since"]
    return proc.returncode, uses


def project(folder: Path, code: Path = ROOT, raw: Path | None = None, processed: Path | None = None) -> Path:
    """A fresh project at `folder`: config, notebooks, params of the checkout `code`, empty data
    (data/raw a link to `raw` when given: exports written once, read by several runs; likewise
    data/processed a link to `processed`, tables written before, for runs of the later stages)."""
    shutil.rmtree(folder, ignore_errors=True)
    for name in ("config", "notebooks", "params"):
        shutil.copytree(code / name, folder / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (folder / "reports").mkdir(parents=True)
    (folder / "data").mkdir()
    if processed is not None:
        (folder / "data/processed").symlink_to(processed.resolve(), target_is_directory=True)
    else:
        (folder / "data/processed").mkdir()
    if raw is not None:
        (folder / "data/raw").symlink_to(raw.resolve(), target_is_directory=True)
    else:
        (folder / "data/raw").mkdir(parents=True)
    return folder


def bench(customers: int, *, seed: int, out: Path, interval: float, run_args: list[str],
          code_dir: Path = ROOT, raw: Path | None = None, processed: Path | None = None, label: str = "",
          disk_interval: float = 1.0) -> dict:
    """`cx demo` (unless `raw` holds the exports already) then `cx run` at `customers` with the
    code of checkout `code_dir`; the measurements as a dict (also written as JSON)."""
    folder = project(out / f"pipeline_{customers}{label}", code_dir, raw, processed)
    cx = [sys.executable, "-m", "cxlib.cli"]
    env = {**os.environ, "PYTHONPATH": str(code_dir)} if code_dir != ROOT else None
    started = time.perf_counter()
    demo = {}
    if raw is None and processed is None:
        code, demo = monitor([*cx, "demo", "--customers", str(customers), "--seed", str(seed), "--out", "data/raw"],
                             cwd=folder, interval=interval, log=folder / "demo.log", env=env,
                             disk_interval=disk_interval)
        if code != 0:
            raise SystemExit(f"cx demo failed (exit {code}); see {folder / 'demo.log'}")
    code, run = monitor([*cx, "run", "--project", str(folder), *run_args], cwd=folder, interval=interval,
                        log=folder / "run.log", env=env, disk_interval=disk_interval)
    record = {"customers": customers, "seed": seed, "exit_code": code, "total_wall_s": round(time.perf_counter() - started, 1),
              "raw_mb": round(sum(p.stat().st_size for p in (folder / "data/raw").resolve().rglob("*") if p.is_file()) / MB),
              "processed_mb": round(sum(p.stat().st_size for p in (folder / "data/processed").resolve().rglob("*.parquet")) / MB),
              "cpus": os.cpu_count(), "demo": demo["setup"].as_dict() if demo else {},
              "stages": {name: use.as_dict() for name, use in run.items()}}
    record["code"] = str(code_dir)
    (out / f"pipeline_{customers}{label}.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


def table(records: list[dict]) -> str:
    """The measurements as a Markdown table: one row per size and step."""
    lines = ["| customers | step | wall s | cpu s | peak MB (all processes) | peak MB (largest process) | peak disk MB |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in records:
        rows = [*([("cx demo", r["demo"])] if r["demo"] else []), *r["stages"].items()]
        for name, use in rows:
            lines.append(f"| {r['customers']:,} | {name} | {use['wall_s']:,.1f} | {use['cpu_s']:,.1f} | "
                         f"{use['peak_tree_mb']:,} | {use['peak_process_mb']:,} | {use.get('peak_disk_mb', 0):,} |")
        total = sum(use["wall_s"] for _, use in rows)
        lines.append(f"| {r['customers']:,} | **total** (exit {r['exit_code']}) | {total:,.1f} | "
                     f"{sum(use['cpu_s'] for _, use in rows):,.1f} | {max(u['peak_tree_mb'] for _, u in rows):,} | "
                     f"{max(u['peak_process_mb'] for _, u in rows):,} | {max(u.get('peak_disk_mb', 0) for _, u in rows):,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between samples of the process tree")
    parser.add_argument("--disk-interval", type=float, default=1.0, help="seconds between samples of the disk use")
    parser.add_argument("--run-arg", action="append", default=[], help="passed to `cx run` (repeatable), e.g. --run-arg=--only")
    parser.add_argument("--raw", type=Path, help="exports written before (e.g. by `cx demo`): skip `cx demo`, one size only")
    parser.add_argument("--processed", type=Path, help="processed tables written before (with --run-arg=--only for the "
                        "stages after 01): skip `cx demo`, one size only")
    parser.add_argument("--code", type=Path, default=ROOT, help="another checkout whose code and notebooks run (before/after)")
    parser.add_argument("--label", default="", help="suffix of the run's folder and JSON, e.g. _before")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for customers in args.customers:
        print(f"{customers:,} customers …", file=sys.stderr, flush=True)
        records.append(bench(customers, seed=args.seed, out=args.out, interval=args.interval, run_args=args.run_arg,
                             code_dir=args.code.resolve(), raw=args.raw, processed=args.processed,
                             label=args.label, disk_interval=args.disk_interval))
        print(table(records[-1:]), flush=True)
    print(table(records))
    return 0 if all(r["exit_code"] == 0 for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
