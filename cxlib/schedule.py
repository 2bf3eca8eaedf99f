"""`cx run` under a scheduler: the lock against overlapping runs, runs that died, retention,
the project log.

- `run_lock(reports_dir)`: holds reports/.cx-run.lock (flock + {pid, started, host}) while a run
  works; raises `RunLocked` (exit code 3) when another run holds it; takes over a stale lock.
- `recover_dead_runs(reports_dir, by=run_id)`: under the lock, every run folder whose run.json
  still says "running" belongs to a run that died (kill -9, power loss): its status becomes
  "killed", its index.html is rewritten and reports/cx.log gets its line.
- `prune_runs(reports_dir, days)`: retention of run folders (only those cx wrote) and contact lists.
- `log_line(reports_dir, text)`: one line per run in reports/cx.log.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cxlib import index_page, report
from cxlib.parameters import UsageError

LATEST = "latest"
CONTACT_LISTS = ("contact_list*.csv", "occasion_list*.csv")   # lists of customers to contact, deleted by retention
LOCK_FILE = ".cx-run.lock"
PROJECT_LOG = "cx.log"
RUN_ID = re.compile(r"(?P<stamp>\d{8}T\d{6}Z)(-\d+)?")
EXIT_CODES = {"succeeded": "0", "failed": "1", "interrupted": "130"}     # killed: no exit code was seen


class RunLocked(RuntimeError):
    """Another `cx run` of this project is running (it holds reports/.cx-run.lock): exit 3."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        host = holder.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        super().__init__(
            f"another cx run is in progress (pid {holder.get('pid', '?')}{where}, started "
            f"{holder.get('started', '?')}; lock file {path}). This run was not started: try again when it "
            "has finished. If no cx run is running, delete the lock file."
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _process_start(pid: int) -> tuple[float, str] | None:
    """(start time as epoch seconds, state letter) of a process from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0]
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def lock_holder_alive(holder: dict) -> bool:
    """Whether the process named in a lock file still runs: its pid exists (on this host), is not
    a zombie, and did not start after the lock was taken (which would be a reused pid). A lock of
    another host counts as alive (it cannot be checked from here)."""
    if holder.get("host") not in (None, socket.gethostname()):
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # exists, owned by someone else
        pass
    info = _process_start(pid)
    if info is None:
        return True
    started_at, state = info
    try:
        locked_at = dt.datetime.fromisoformat(str(holder.get("started")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        locked_at = None
    reused = locked_at is not None and started_at > locked_at + 5
    return state not in ("Z", "X") and not reused


def _read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", errors="replace").strip()
    try:
        holder = json.loads(text) if text else {}
    except json.JSONDecodeError:
        holder = {"unreadable": text[:200]}
    return holder if isinstance(holder, dict) else {"unreadable": text[:200]}


@contextmanager
def run_lock(reports_dir: Path) -> Iterator[dict | None]:
    """Hold reports/.cx-run.lock for the duration of a run. The file names the holder
    ({pid, started, host}) and is locked with flock while the run lasts. Raises RunLocked when
    another run holds it: its flock is taken, or the file names a process that still runs.
    A stale lock (its process is gone) is taken over; the context yields the stale holder's
    record (to be logged), else None. The file is removed when the run ends."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / LOCK_FILE
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLocked(path, holder) from None
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(fd)                # the holder removed it between our open and flock: retry
    else:
        raise RunLocked(path, {})
    try:
        holder = _read_holder(fd)
        if holder.get("pid") is not None and lock_holder_alive(holder):
            raise RunLocked(path, holder)
        stale = holder or None
        mine = {"pid": os.getpid(), "started": _now(), "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(mine) + "\n").encode("utf-8"), 0)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield stale
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _run_id_of(folder: Path) -> str | None:
    """The run id in folder/run.json (the record cx writes), None without a readable one."""
    try:
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("run_id") if isinstance(record, dict) else None


def run_started_at(name: str) -> dt.datetime | None:
    """The start time (UTC) in a run folder's name '20261122T143012Z' or '…Z-2'; None for other names."""
    match = RUN_ID.fullmatch(name)
    return dt.datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC) if match else None


def prune_runs(reports_dir: Path, retention_days: int, *, keep: Iterable[Path] = (),
               now: dt.datetime | None = None) -> list[Path]:
    """Delete what is older than `retention_days` days under reports_dir: run folders (named by
    their run id, the run's start time, and holding the run.json cx wrote for that id; with
    their contact lists) and contact-list CSVs outside run folders (e.g. reports/interactive/, by
    modification time). Never the folders in `keep` (this run, what reports/latest points at),
    never reports/latest itself, never a folder cx did not write, never anything when
    retention_days is 0. Returns the paths deleted."""
    if not retention_days:
        return []
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=retention_days)
    kept = {Path(p).resolve() for p in keep}
    latest = reports_dir / LATEST
    if latest.is_symlink():
        kept.add(latest.resolve())
    deleted = []
    for folder in sorted(reports_dir.iterdir()):
        started = run_started_at(folder.name)
        if (started is None or started >= cutoff or folder.is_symlink() or not folder.is_dir()
                or folder.resolve() in kept or _run_id_of(folder) != folder.name):
            continue
        shutil.rmtree(folder)
        deleted.append(folder)
    lists = {csv for pattern in CONTACT_LISTS for csv in reports_dir.glob(f"*/{pattern}")}
    for csv in sorted(lists):
        parent = csv.parent
        if (parent.is_symlink() or run_started_at(parent.name) is not None or parent.resolve() in kept
                or dt.datetime.fromtimestamp(csv.stat().st_mtime, dt.UTC) >= cutoff):
            continue
        csv.unlink()
        deleted.append(csv)
    return deleted


def log_line(reports_dir: Path, text: str) -> Path:
    """Append one line '<UTC time> <text>' to reports/cx.log (one write, so lines of runs never mix)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / PROJECT_LOG
    line = f"{_now()} {' '.join(text.split())}\n".encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path



# --- run folders -------------------------------------------------------------------------------
def new_run_dir(reports_dir: Path, now: dt.datetime | None = None) -> Path:
    """Create reports/<run_id>/ with a unique id like 20261122T143012Z (suffix -2, -3 … if taken)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    reports_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = reports_dir / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UsageError(f"{reports_dir}: cannot create a unique run folder for {stamp}")


def point_latest(reports_dir: Path, run_dir: Path) -> Path:
    """Point reports/latest at run_dir: a relative symlink swapped atomically (os.replace)."""
    latest = reports_dir / LATEST
    if latest.exists() and not latest.is_symlink():
        raise UsageError(f"{latest} exists and is not a symlink; move it away so runs can point it at the newest run")
    tmp = reports_dir / f".{LATEST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(run_dir, reports_dir), tmp)
    os.replace(tmp, latest)
    return latest


def previous_run(reports_dir: Path) -> Path | None:
    """The previous successful run: the folder reports/latest points at (absolute), if it exists
    and holds a run.json; else None."""
    latest = reports_dir / LATEST
    if not latest.is_symlink():
        return None
    target = latest.resolve()
    return target if (target / "run.json").is_file() else None


def read_run(run_dir: Path | None) -> tuple[dict | None, dict | None]:
    """(run.json, results.json) of a run folder as dicts; (None, None) without a folder. A run
    without results.json gives the merged results/ files."""
    if run_dir is None:
        return None, None
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    results_file = run_dir / "results.json"
    results = (json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file()
               else report.read_results(run_dir))
    return record, results


# --- runs that died ------------------------------------------------------------------------------
def summary_line(record: dict, seconds: float | None, deleted: Iterable[Path] = ()) -> str:
    """A run's line in reports/cx.log: id, status, exit code, duration, stages, data, what changed."""
    ok = sum(1 for nb in record["notebooks"] if nb["status"] == "succeeded")
    comparison = record.get("comparison") or {}
    parts = [record["run_id"], record["status"], f"exit={EXIT_CODES.get(record['status'], '-')}",
             f"{seconds:.1f}s" if seconds is not None else "-", f"notebooks={ok}/{len(record['notebooks'])}",
             f"fingerprint={((record.get('inputs') or {}).get('fingerprint') or '')[:16]}",
             f"previous={comparison.get('previous_run') or '-'}",
             f"numbers_changed={len(comparison.get('numbers') or [])}"]
    if record["status"] == "succeeded":
        parts.append(f"retention_deleted={len(list(deleted))}")
    if record.get("stale_lock"):
        parts.append(f"stale_lock_taken_over_pid={record['stale_lock'].get('pid', '?')}")
    if record.get("found_by"):
        parts.append(f"found_by={record['found_by']}")
    failure = record.get("failure")
    if failure:
        parts.append(f"failed={failure['notebook']} {report.failure_where(failure)}: {failure.get('ename')}: "
                     f"{str(failure.get('evalue'))[:200]}")
    return " ".join(parts)


def recover_dead_runs(reports_dir: Path, *, by: str | None = None) -> list[Path]:
    """Close the records of runs that died: call it while holding the run lock, so that no run
    folder whose run.json says "running" belongs to a live run. Each such record gets status
    "killed", `ended` (the last change to its run.log), its running notebook "killed" and the
    pending ones "skipped", `found_by` (this run's id); its index.html is rewritten and
    reports/cx.log gets its line. Returns the run folders closed."""
    closed = []
    for folder in sorted(reports_dir.iterdir()) if reports_dir.is_dir() else []:
        if RUN_ID.fullmatch(folder.name) is None or folder.is_symlink() or not (folder / "run.json").is_file():
            continue
        try:
            record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("status") != "running" or record.get("run_id") != folder.name:
            continue
        last = max((p.stat().st_mtime for p in (folder / "run.log", folder / "run.json") if p.is_file()))
        for nb in record.get("notebooks") or []:
            nb["status"] = {"running": "killed", "pending": "skipped"}.get(nb.get("status"), nb.get("status"))
        record.update(status="killed", found_by=by,
                      ended=dt.datetime.fromtimestamp(last, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
        report.write_json(folder / "run.json", record)
        index_page.write_index(folder, record, report.read_results(folder))
        log_line(reports_dir, summary_line(record, None))
        closed.append(folder)
    return closed
