"""`cx run` under a scheduler: the lock against overlapping runs (exit code 3, stale locks taken
over), runs that died (kill -9: marked killed by the next run) or were stopped (SIGTERM:
interrupted), retention of old run folders and contact lists, reports/cx.log, processed tables
replaced only by a run that succeeded, and the previous-run contract (`previous_run_dir`, the
comparison in run.json) on a tiny two-notebook project whose runs take a few seconds."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cxlib import pipeline

NOW = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)


# --- a tiny project: two notebooks that record their parameters ------------------------------
PIPELINE_YML = """\
parameters:
  lang: en
  audience: management
audiences:
  management: [02_b, 01_a]
  service: [01_a]
notebooks:
  - name: 01_a
    title: Probe A
    title_de: Sonde A
  - name: 02_b
    title: Probe B
"""


def notebook(parameters: str, body: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(textwrap.dedent(parameters))
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Probe\n\n## 1. Values"), cell,
                nbformat.v4.new_code_cell(textwrap.dedent(body)), nbformat.v4.new_markdown_cell("## 2. End")]
    return nb


def tiny_project(root: Path) -> Path:
    """A project with config/pipeline.yml and notebooks 01_a (records run_dir, previous_run_dir,
    lang, audience and 1.5 × factor; writes the processed table `probe` with that value) and 02_b
    (reads `probe` and records it; sleeps `pause` seconds; fails when fail=True)."""
    (root / "config").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "reports").mkdir()
    (root / "config" / "pipeline.yml").write_text(PIPELINE_YML, encoding="utf-8")
    nbformat.write(notebook(
        """\
        run_dir = "."                 # run folder
        previous_run_dir = ""         # previous successful run
        lang = "en"                   # report language
        audience = "management"       # view
        factor = 1.0                  # scales the recorded value
        processed_dir = "."           # processed tables
        """,
        """\
        import pandas as pd
        from cxlib import catalog, report
        report.record_results(run_dir, "probe", {"previous_run_dir": previous_run_dir, "lang": lang,
                                                 "audience": audience, "value": 1.5 * factor})
        catalog.write({"probe": pd.DataFrame({"value": [1.5 * factor]})}, processed_dir)
        """), root / "notebooks" / "01_a.ipynb")
    nbformat.write(notebook(
        """\
        run_dir = "."                 # run folder
        processed_dir = "."           # processed tables
        pause = 0.0                   # seconds to wait
        fail = False                  # fail on purpose
        """,
        """\
        import time
        from cxlib import catalog, report
        report.record_results(run_dir, "read", {"value": float(catalog.read(processed_dir, "probe")["probe"]["value"].iloc[0])})
        time.sleep(pause)
        if fail:
            raise ValueError("planned failure in 02_b")
        """), root / "notebooks" / "02_b.ipynb")
    return root


def fake_run(reports: Path, run_id: str, *, contact_list: bool = True) -> Path:
    folder = reports / run_id
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"run_id": run_id, "status": "succeeded"}), encoding="utf-8")
    if contact_list:
        (folder / "contact_list.csv").write_text("customer_ref,channel\nK0000001,phone\n", encoding="utf-8")
    return folder


def dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def write_lock(reports: Path, pid: int, started: str | None = None, host: str | None = None) -> Path:
    path = reports / pipeline.LOCK_FILE
    path.write_text(json.dumps({"pid": pid, "started": started or pipeline._now(),
                                "host": host or socket.gethostname()}) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def sleeper():
    """A live process (pid) for the duration of a test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


# --- run_lock ----------------------------------------------------------------------------------
def test_run_lock_free_writes_holder_and_removes_file(tmp_path):
    with pipeline.run_lock(tmp_path) as stale:
        holder = json.loads((tmp_path / pipeline.LOCK_FILE).read_text(encoding="utf-8"))
        assert stale is None
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert not (tmp_path / pipeline.LOCK_FILE).exists()


def test_run_lock_held_by_live_pid_raises(tmp_path, sleeper):
    started = pipeline._now()                                    # after the sleeper started
    path = write_lock(tmp_path, sleeper, started)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(pipeline.RunLocked, match=rf"another cx run is in progress \(pid {sleeper}, started "
                                                 rf"{started}; lock file .*\.cx-run\.lock\)"):
        with pipeline.run_lock(tmp_path):
            pass
    assert path.read_text(encoding="utf-8") == before          # someone else's lock is left alone


def test_run_lock_takes_over_stale_lock_of_dead_pid(tmp_path):
    pid = dead_pid()
    write_lock(tmp_path, pid, "2026-11-22T11:00:00Z")
    with pipeline.run_lock(tmp_path) as stale:
        assert stale["pid"] == pid and stale["started"] == "2026-11-22T11:00:00Z"
        assert json.loads((tmp_path / pipeline.LOCK_FILE).read_text(encoding="utf-8"))["pid"] == os.getpid()
    assert not (tmp_path / pipeline.LOCK_FILE).exists()


def test_run_lock_unreadable_file_is_taken_over(tmp_path):
    (tmp_path / pipeline.LOCK_FILE).write_text("garbage", encoding="utf-8")
    with pipeline.run_lock(tmp_path) as stale:
        assert stale == {"unreadable": "garbage"}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see when a process started")
def test_run_lock_pid_reused_by_a_newer_process_is_stale(tmp_path, sleeper):
    write_lock(tmp_path, sleeper, "2001-01-01T00:00:00Z")      # the sleeper started long after this lock
    with pipeline.run_lock(tmp_path) as stale:
        assert stale["pid"] == sleeper


def test_run_lock_of_another_host_counts_as_held(tmp_path):
    write_lock(tmp_path, dead_pid(), host="some-other-host")
    with pytest.raises(pipeline.RunLocked, match="on some-other-host"):
        with pipeline.run_lock(tmp_path):
            pass


def test_run_lock_flock_held_by_another_process(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, pathlib; from cxlib import pipeline\n"
         f"with pipeline.run_lock(pathlib.Path({str(tmp_path)!r})):\n"
         "    print('locked', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(pipeline.RunLocked, match=f"pid {holder.pid},"):
            with pipeline.run_lock(tmp_path):
                pass
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    with pipeline.run_lock(tmp_path) as stale:                   # released: free again
        assert stale is None


# --- retention ---------------------------------------------------------------------------------
def test_run_started_at():
    assert pipeline.run_started_at("20261122T143012Z") == dt.datetime(2026, 11, 22, 14, 30, 12, tzinfo=dt.UTC)
    assert pipeline.run_started_at("20261122T143012Z-2") == dt.datetime(2026, 11, 22, 14, 30, 12, tzinfo=dt.UTC)
    assert pipeline.run_started_at("interactive") is None
    assert pipeline.run_started_at("latest") is None


def test_prune_runs_zero_keeps_everything(tmp_path):
    fake_run(tmp_path, "20000101T000000Z")
    assert pipeline.prune_runs(tmp_path, 0, now=NOW) == []
    assert (tmp_path / "20000101T000000Z" / "contact_list.csv").exists()


def test_prune_runs_deletes_old_runs_and_contact_lists_never_latest_or_current(tmp_path):
    old = fake_run(tmp_path, "20260101T060000Z")
    old_2 = fake_run(tmp_path, "20260101T060000Z-2", contact_list=False)
    latest_target = fake_run(tmp_path, "20260201T060000Z")           # old, but reports/latest points here
    current = fake_run(tmp_path, "20260301T060000Z")                 # old by its id, but the run just made
    recent = fake_run(tmp_path, "20261101T060000Z")                  # 21 days old: within 30 days
    (tmp_path / "latest").symlink_to(latest_target.name)
    archive = tmp_path / "archive"                                   # not a run folder: never touched
    archive.mkdir()
    interactive = tmp_path / "interactive"
    interactive.mkdir()
    old_csv, new_csv = interactive / "contact_list.csv", interactive / "contact_list_2.csv"
    old_occasions = interactive / "occasion_list.csv"
    for csv in (old_csv, new_csv, old_occasions, archive / "notes.csv"):
        csv.write_text("x\n", encoding="utf-8")
    for csv in (old_csv, old_occasions):
        os.utime(csv, ((NOW - dt.timedelta(days=40)).timestamp(),) * 2)
    os.utime(archive / "notes.csv", ((NOW - dt.timedelta(days=400)).timestamp(),) * 2)

    deleted = pipeline.prune_runs(tmp_path, 30, keep=[current], now=NOW)

    assert deleted == [old, old_2, old_csv, old_occasions]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20260201T060000Z", "20260301T060000Z", "20261101T060000Z", "archive", "interactive", "latest"]
    assert (latest_target / "contact_list.csv").exists() and (current / "contact_list.csv").exists()
    assert (recent / "contact_list.csv").exists() and new_csv.exists() and (archive / "notes.csv").exists()
    assert os.readlink(tmp_path / "latest") == latest_target.name


def test_prune_runs_never_follows_symlinked_run_folders(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x", encoding="utf-8")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "20000101T000000Z").symlink_to(outside)
    assert pipeline.prune_runs(reports, 1, now=NOW) == []
    assert (outside / "keep.txt").exists()


def test_prune_runs_never_deletes_a_folder_cx_did_not_write(tmp_path):
    foreign = tmp_path / "20000101T000000Z"                          # named like a run, but not one
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("x", encoding="utf-8")
    other = fake_run(tmp_path, "20000102T000000Z")
    (other / "run.json").write_text(json.dumps({"run_id": "20990101T000000Z"}), encoding="utf-8")   # another run's record
    broken = tmp_path / "20000103T000000Z"
    broken.mkdir()
    (broken / "run.json").write_text("not json", encoding="utf-8")
    old = fake_run(tmp_path, "20000104T000000Z")
    assert pipeline.prune_runs(tmp_path, 1, now=NOW) == [old]
    assert (foreign / "thesis.txt").exists() and other.exists() and broken.exists()


# --- runs that died ------------------------------------------------------------------------------
def dead_run(reports: Path, run_id: str, statuses: list[str], status: str = "running") -> Path:
    """A run folder as a run leaves it when killed while its notebook `statuses` were as given."""
    folder = reports / run_id
    folder.mkdir()
    record = {"run_id": run_id, "status": status, "started": "2026-11-22T06:00:00Z", "ended": None,
              "run_parameters": {"lang": "en", "audience": "management", "retention_days": 0},
              "notebooks": [{"name": f"0{i}_x", "status": st, "duration_s": None, "html": None}
                            for i, st in enumerate(statuses, start=1)],
              "inputs": {"fingerprint": "ab" * 32}, "failure": None, "comparison": None}
    (folder / "run.json").write_text(json.dumps(record), encoding="utf-8")
    (folder / "run.log").write_text("started\n", encoding="utf-8")
    os.utime(folder / "run.log", (NOW.timestamp(), NOW.timestamp()))
    os.utime(folder / "run.json", (NOW.timestamp() - 60, NOW.timestamp() - 60))
    return folder


def test_recover_dead_runs_marks_running_records_killed_and_logs_them(tmp_path):
    killed = dead_run(tmp_path, "20261122T060000Z", ["succeeded", "running", "pending"])
    done = dead_run(tmp_path, "20261122T070000Z", ["succeeded"], status="succeeded")
    assert pipeline.recover_dead_runs(tmp_path, by="20261122T080000Z") == [killed]
    record = json.loads((killed / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "killed" and record["found_by"] == "20261122T080000Z"
    assert record["ended"] == "2026-11-22T12:00:00Z"                   # the last line of its run.log
    assert [nb["status"] for nb in record["notebooks"]] == ["succeeded", "killed", "skipped"]
    assert json.loads((done / "run.json").read_text(encoding="utf-8"))["status"] == "succeeded"
    line = (tmp_path / pipeline.PROJECT_LOG).read_text(encoding="utf-8")
    assert line.count("\n") == 1
    assert " 20261122T060000Z killed exit=- - notebooks=1/3 fingerprint=abababababababab " in line
    assert line.rstrip().endswith("found_by=20261122T080000Z")
    html = (killed / "index.html").read_text(encoding="utf-8")
    assert "badge killed" in html
    assert pipeline.recover_dead_runs(tmp_path, by="x") == []            # once only


def test_log_line_appends_one_line_per_call(tmp_path):
    pipeline.log_line(tmp_path, "run A succeeded")
    pipeline.log_line(tmp_path, "run B\nfailed   with\ttabs")
    lines = (tmp_path / pipeline.PROJECT_LOG).read_text(encoding="utf-8").splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["run A succeeded", "run B failed with tabs"]
    assert all(dt.datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")) for line in lines)


# --- runs of the tiny project --------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, cx):
    """Three runs of the tiny project: (1) over a stale lock, two fake old run folders present,
    no retention; (2) -p factor=2 lang=de audience=service retention_days=30; (3) 02_b fails, a
    fresh fake old folder present, retention_days=30 (not applied: the run failed)."""
    project = tiny_project(tmp_path_factory.mktemp("tiny"))
    reports = project / "reports"
    olds = [fake_run(reports, "20200101T000000Z"), fake_run(reports, "20200102T000000Z-2")]
    stale_pid = dead_pid()
    write_lock(reports, stale_pid, "2020-01-01T00:00:00Z")
    first = pipeline.run(project)
    second = pipeline.run(project, overrides=["factor=2", "lang=de", "audience=service", "retention_days=30"])
    survivor = fake_run(reports, "20200103T000000Z")
    third = cx("run", "--project", str(project), "-p", "02_b.fail=true", "-p", "retention_days=30")
    return {"project": project, "olds": olds, "stale_pid": stale_pid, "first": first, "second": second,
            "survivor": survivor, "third": third}


def probe(result) -> dict:
    return json.loads((result.run_dir / "results.json").read_text(encoding="utf-8"))["probe"]


def test_processed_tables_are_replaced_only_by_a_run_that_succeeded(tiny_runs):
    first, second, third = tiny_runs["first"], tiny_runs["second"], tiny_runs["third"]
    processed = tiny_runs["project"] / "data" / "processed"

    def value(run_dir):
        return json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["read"]["value"]

    assert value(first.run_dir) == 1.5 and value(second.run_dir) == 3.0       # 02_b reads what 01_a staged
    assert first.record["processed"] == {"dir": str(processed), "updated": True}
    assert pd.read_parquet(processed / "probe.parquet")["value"].tolist() == [3.0]    # the second run's table
    failed = sorted((tiny_runs["project"] / "reports").glob("2*"))[-1]
    record = json.loads((failed / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "failed" and value(failed) == 1.5              # the third run staged 1.5 …
    assert record["processed"]["updated"] is False                             # … but it never reached data/processed
    assert pipeline.folders.is_marked(processed)
    assert sorted(p.name for p in processed.parent.iterdir()) == ["processed"]  # no staging folder left


def test_previous_run_dir_is_empty_without_a_previous_run(tiny_runs):
    first = tiny_runs["first"]
    assert first.status == "succeeded"
    assert probe(first)["previous_run_dir"] == ""
    assert first.record["previous_run"] is None
    assert first.record["comparison"]["previous_run"] is None
    assert first.record["parameters"]["01_a"]["previous_run_dir"] == ""
    assert "previous_run_dir" not in first.record["parameters"]["02_b"]      # only where declared


def test_previous_run_dir_is_the_run_latest_pointed_at(tiny_runs):
    first, second = tiny_runs["first"], tiny_runs["second"]
    assert second.status == "succeeded"
    assert probe(second)["previous_run_dir"] == str(first.run_dir)
    assert Path(probe(second)["previous_run_dir"]).is_absolute()
    assert second.record["previous_run"] == {"run_id": first.run_id, "dir": str(first.run_dir)}
    assert probe(second)["lang"] == "de" and probe(second)["audience"] == "service"


def test_comparison_with_the_previous_run(tiny_runs):
    first, second = tiny_runs["first"], tiny_runs["second"]
    comparison = second.record["comparison"]
    assert comparison["previous_run"] == first.run_id
    assert comparison["fingerprint_changed"] is False and comparison["inputs"]["changed"] == []
    assert {(p["notebook"], p["parameter"], p["previous"], p["current"]) for p in comparison["parameters"]} == {
        ("", "lang", "en", "de"), ("", "audience", "management", "service"), ("", "retention_days", 0, 30),
        ("01_a", "factor", 1.0, 2.0), ("01_a", "lang", "en", "de"), ("01_a", "audience", "management", "service"),
    }
    assert comparison["numbers"] == [{"path": "probe.value", "previous": 1.5, "current": 3.0, "change": 1.5},
                                     {"path": "read.value", "previous": 1.5, "current": 3.0, "change": 1.5}]
    on_disk = json.loads((second.run_dir / "run.json").read_text(encoding="utf-8"))
    assert on_disk["comparison"] == comparison


def test_index_follows_language_and_audience_view(tiny_runs):
    first, second = tiny_runs["first"], tiny_runs["second"]
    html_en = (first.run_dir / "index.html").read_text(encoding="utf-8")
    html_de = (second.run_dir / "index.html").read_text(encoding="utf-8")
    # management: 02_b then 01_a, nothing under "other reports"
    assert html_en.index('href="02_b.html"') < html_en.index('href="01_a.html"') and "Other reports" not in html_en
    assert '<html lang="en">' in html_en and "Reports for management" in html_en
    # service: 01_a in the view, 02_b under "Weitere Berichte"; German labels and titles
    assert '<html lang="de">' in html_de and "Berichte für den Kundenservice" in html_de
    assert html_de.index('href="01_a.html"') < html_de.index("Weitere Berichte") < html_de.index('href="02_b.html"')
    assert ">Sonde A</a>" in html_de and "Was sich seit dem letzten Lauf geändert hat" in html_de
    assert '<td>Probe · Wert</td><td class="num">1,5</td><td class="num">3</td><td class="num">+1,5</td>' in html_de
    stage = (second.run_dir / "01_a.html").read_text(encoding="utf-8")
    assert '<html lang="de">' in stage and "<title>Sonde A</title>" in stage and ">Inhalt</p>" in stage


def test_stale_lock_is_taken_over_and_logged(tiny_runs):
    first = tiny_runs["first"]
    log = (first.run_dir / "run.log").read_text(encoding="utf-8")
    assert f"took over the stale lock {first.run_dir.parent / pipeline.LOCK_FILE} of pid {tiny_runs['stale_pid']}" in log
    assert first.record["stale_lock"]["pid"] == tiny_runs["stale_pid"]
    assert not (first.run_dir.parent / pipeline.LOCK_FILE).exists()


def test_retention_after_a_successful_run(tiny_runs):
    first, second = tiny_runs["first"], tiny_runs["second"]
    assert first.deleted == []                                   # retention_days 0 keeps everything
    assert second.deleted == tiny_runs["olds"]
    assert not any(old.exists() for old in tiny_runs["olds"])
    assert first.run_dir.exists() and second.run_dir.exists()
    record = json.loads((second.run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["retention"] == {"retention_days": 30, "deleted": ["20200101T000000Z", "20200102T000000Z-2"]}
    log = (second.run_dir / "run.log").read_text(encoding="utf-8")
    assert "retention: deleted" in log and "20200102T000000Z-2 (older than 30 days)" in log


def test_failed_run_exit_1_keeps_latest_and_old_runs(tiny_runs):
    third, second = tiny_runs["third"], tiny_runs["second"]
    assert third.returncode == 1, third.stdout + third.stderr
    assert "FAILED 02_b, section “1. Values”, cell 3 of 4: ValueError: planned failure in 02_b" in third.stderr
    reports = tiny_runs["project"] / "reports"
    assert (reports / "latest").resolve() == second.run_dir
    assert tiny_runs["survivor"].exists()                        # no retention after a failed run


def test_project_log_has_one_line_per_run(tiny_runs):
    first, second = tiny_runs["first"], tiny_runs["second"]
    lines = (tiny_runs["project"] / "reports" / pipeline.PROJECT_LOG).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert f" {first.run_id} succeeded exit=0 " in lines[0] and "notebooks=2/2" in lines[0]
    assert "previous=- " in lines[0] and f"stale_lock_taken_over_pid={tiny_runs['stale_pid']}" in lines[0]
    assert f" {second.run_id} succeeded exit=0 " in lines[1] and f"previous={first.run_id} " in lines[1]
    assert "numbers_changed=2 " in lines[1] and "retention_deleted=2" in lines[1]
    assert " failed exit=1 " in lines[2] and "notebooks=1/2" in lines[2]
    assert lines[2].endswith("failed=02_b section “1. Values”, cell 3 of 4: ValueError: planned failure in 02_b")


def test_cx_run_exits_3_while_another_run_holds_the_lock(tmp_path, sleeper, cx):
    project = tiny_project(tmp_path / "project")
    started = pipeline._now()
    lock = write_lock(project / "reports", sleeper, started)
    done = cx("run", "--project", str(project))
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"cx run: another cx run is in progress (pid {sleeper}, started {started}" in done.stderr
    assert "[1/" not in done.stdout
    assert sorted(p.name for p in (project / "reports").iterdir()) == [pipeline.LOCK_FILE, pipeline.PROJECT_LOG]
    assert json.loads(lock.read_text(encoding="utf-8"))["pid"] == sleeper
    line = (project / "reports" / pipeline.PROJECT_LOG).read_text(encoding="utf-8")
    assert f"- locked exit=3 holder_pid={sleeper} holder_started={started}: nothing run" in line


def test_cx_help_documents_exit_code_3(cx):
    done = cx("run", "--help")
    text = " ".join(done.stdout.split())
    assert "3 another cx run of this project is in progress" in text and "retention_days" in text


# --- a run killed with -9, a run stopped with SIGTERM ------------------------------------------------
def start_slow_run(project: Path) -> tuple[subprocess.Popen, Path]:
    """`cx run` of the tiny project with 02_b pausing; returns once 02_b runs: (process, run folder)."""
    exe = Path(sys.executable).with_name("cx")
    proc = subprocess.Popen([str(exe), "run", "--project", str(project), "-p", "02_b.pause=120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        records = sorted((project / "reports").glob("2*/run.json"))
        if records:
            try:
                notebooks = json.loads(records[-1].read_text(encoding="utf-8"))["notebooks"]
            except ValueError:
                notebooks = []
            if any(nb["name"] == "02_b" and nb["status"] == "running" for nb in notebooks):
                return proc, records[-1].parent
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("02_b did not start: " + proc.communicate()[1])


def test_a_run_killed_with_9_is_marked_killed_by_the_next_run(tmp_path):
    project = tiny_project(tmp_path / "project")
    proc, killed_dir = start_slow_run(project)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert (project / "data" / ".processed.staging").is_dir()                  # left behind by the killed run

    after = pipeline.run(project)

    assert after.status == "succeeded" and after.record["recovered"] == [killed_dir.name]
    record = json.loads((killed_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "killed" and record["found_by"] == after.run_id
    assert [nb["status"] for nb in record["notebooks"]] == ["succeeded", "killed"]
    lines = (project / "reports" / pipeline.PROJECT_LOG).read_text(encoding="utf-8").splitlines()
    assert f" {killed_dir.name} killed exit=- " in lines[0] and f"found_by={after.run_id}" in lines[0]
    assert f" {after.run_id} succeeded exit=0 " in lines[1] and f"stale_lock_taken_over_pid={proc.pid}" in lines[1]
    assert f"run {killed_dir.name} died without finishing" in (after.run_dir / "run.log").read_text(encoding="utf-8")
    assert not (project / "data" / ".processed.staging").exists()


def test_a_run_stopped_with_sigterm_is_recorded_interrupted_and_changes_nothing(tmp_path):
    project = tiny_project(tmp_path / "project")
    proc, run_dir = start_slow_run(project)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cx: interrupted" in err
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "interrupted"
    assert [nb["status"] for nb in record["notebooks"]] == ["succeeded", "interrupted"]
    reports = project / "reports"
    assert not (reports / "latest").exists() and not (reports / pipeline.LOCK_FILE).exists()
    assert sorted(p.name for p in (project / "data").iterdir()) == []          # nothing promoted, staging gone
    line = (reports / pipeline.PROJECT_LOG).read_text(encoding="utf-8")
    assert f" {run_dir.name} interrupted exit=130 " in line


def test_socket_folder_goes_even_while_a_starting_kernel_still_writes_into_it(monkeypatch):
    """SIGTERM while a kernel starts: the kernel writes socket files while the run cleans up, so
    a removal can find the folder not empty (errno 39; it turned exit 130 into exit 1). The
    folder must still go and the cleanup must not raise."""
    import shutil

    real_rmtree = shutil.rmtree
    calls = []

    def rmtree_racing_a_kernel(path, ignore_errors=False, **kw):
        calls.append(path)
        real_rmtree(path, ignore_errors=ignore_errors, **kw)
        if len(calls) <= 3:                            # the kernel writes one more file each time
            Path(path).mkdir(exist_ok=True)
            (Path(path) / f"kernel-{len(calls)}.ipc").write_bytes(b"")
            if not ignore_errors:
                raise OSError(39, "Directory not empty", str(path))

    monkeypatch.setattr(shutil, "rmtree", rmtree_racing_a_kernel)
    with pipeline._socket_dir() as folder:
        (folder / "kernel.ipc").write_bytes(b"")
    assert not folder.exists() and len(calls) == 4
