"""Stage 01 in customer buckets gives the tables, logs and gate counts of stage 01 on the whole
tables: on the demo (3,000 customers) in one bucket and in four, and on hand-made exports for the
cases a bucket cannot see by itself (a key repeated across buckets, customers derived when no
customers table is mapped, every customer dropped, labels of feedback in other buckets). The
work folder is gone after publishing, and no bucket holds all rows."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from cxlib import clean, config, ingest, parts, privacy, schema, sources, text, validate
from cxlib.config import Taxonomy

KEY = b"ingest-test-key-0123"
NOW = pd.Timestamp("2026-12-01", tz="UTC")
GATE_COLUMNS = ["table", "expectation", "column", "severity", "success", "outcome", "unexpected_count",
                "checked", "unexpected_percent"]


def whole_tables(mapping: Path, raw: Path, tax, keep=()) -> dict:
    """Stage 01 on the whole tables in memory: mapping, both gates, cleaning, scrubbing."""
    staged = sources.map_sources(mapping, raw, tax)
    raw_gate = validate.run_gate(clean.pseudonymise_staged(staged.tables, KEY), tax, "raw", now=NOW)
    cleaned = clean.clean_tables(staged.tables, tax, KEY, now=NOW)
    processed = privacy.scrub_free_text(cleaned.tables, names=cleaned.reidentification[schema.PII_NAME], keep=keep)
    return {"tables": processed, "reidentification": cleaned.reidentification, "log": cleaned.log,
            "mapping_log": staged.log, "raw_gate": raw_gate,
            "processed_gate": validate.run_gate(processed, tax, "processed", now=NOW),
            "scrubbing": privacy.describe_scrubbing(cleaned.tables, processed)}


def in_buckets(mapping: Path, raw: Path, tax, out: Path, bucket_rows: int, keep=(), engine: str = "duckdb",
               workers: int = 1) -> dict:
    """Stage 01 through `ingest` with buckets of `bucket_rows` (checked and cleaned in `workers`
    processes); reads back what it published."""
    work = ingest.workspace(out, engine=engine)
    staged = ingest.stage(mapping, raw, tax, work, batch_rows=1000, bucket_rows=bucket_rows, now=NOW, workers=workers)
    raw_gate = ingest.gate(staged, tax, "raw", key=KEY, workers=workers)
    processed = ingest.clean(staged, tax, KEY, keep=keep, workers=workers)
    processed_gate = ingest.gate(processed, tax, "processed", workers=workers)
    folder = work.folder
    ingest.publish(processed, out)
    return {"tables": {t: pd.read_parquet(out / f"{t}.parquet") for t in processed.rows},
            "reidentification": pd.read_parquet(out / "restricted" / f"{schema.REIDENTIFICATION}.parquet"),
            "log": processed.log, "mapping_log": staged.log, "raw_gate": raw_gate, "processed_gate": processed_gate,
            "scrubbing": ingest.describe_scrubbing(processed), "buckets": staged.buckets, "work": folder,
            "rows": staged.rows}


def assert_same(got: dict, want: dict, *, examples: bool = False) -> None:
    assert set(got["tables"]) == set(want["tables"])
    for name, frame in want["tables"].items():
        assert_frame_equal(got["tables"][name], frame.reset_index(drop=True), obj=name)
    assert_frame_equal(got["reidentification"], want["reidentification"])
    assert_frame_equal(got["log"], want["log"])
    assert_frame_equal(got["mapping_log"], want["mapping_log"])
    assert got["scrubbing"] == want["scrubbing"]
    for gate in ("raw_gate", "processed_gate"):
        assert got[gate].status == want[gate].status and got[gate].failed == want[gate].failed
        columns = GATE_COLUMNS + (["examples"] if examples else [])
        assert_frame_equal(got[gate].results[columns], want[gate].results[columns], obj=gate)


# --- the demo -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_whole(demo_project):
    tax = config.load_taxonomy(demo_project / "config" / "taxonomy.yml")
    keep = text.common_words(*config.load_word_lists(demo_project / "config" / "taxonomy.yml"))
    mapping, raw = demo_project / "config" / "sources" / "demo.yml", demo_project / "data" / "raw"
    return mapping, raw, tax, keep, whole_tables(mapping, raw, tax, keep)


@pytest.mark.slow
def test_demo_in_one_bucket_is_stage_01_on_the_whole_tables(demo_whole, tmp_path):
    mapping, raw, tax, keep, whole = demo_whole
    got = in_buckets(mapping, raw, tax, tmp_path / "processed", 10**9, keep)
    assert got["buckets"] == 1
    assert_same(got, whole, examples=True)
    assert not got["work"].exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]    # no work or temp folder left


@pytest.mark.slow
def test_demo_in_five_buckets_by_one_and_by_two_workers_is_stage_01_on_the_whole_tables(demo_whole, tmp_path, monkeypatch):
    """Mapped by two workers; both gates run by one worker (in this process, reads watched) and by
    two, with the same results, examples included; cleaned by two; published: the whole's tables."""
    mapping, raw, tax, keep, whole = demo_whole
    largest = max(len(whole["tables"][t]) for t in ingest.CUSTOMER_TABLES if t in whole["tables"])
    monkeypatch.setattr(ingest, "PARALLEL_BYTES", 0)        # the demo's exports are small: map them in workers too
    read_rows = []
    original = parts.Workspace.read

    def spy(self, stage, table, bucket=None):
        frame = original(self, stage, table, bucket)
        read_rows.append((stage, table, bucket, len(frame)))
        return frame

    monkeypatch.setattr(parts.Workspace, "read", spy)
    out = tmp_path / "processed"
    work = ingest.workspace(out)
    staged = ingest.stage(mapping, raw, tax, work, batch_rows=1000, bucket_rows=largest // 4 + 1, now=NOW, workers=2)
    assert staged.buckets == 5
    assert_frame_equal(staged.inputs.drop(columns="sha256"), sources.map_sources(mapping, raw, tax).inputs.drop(columns="sha256"))
    gates = {w: ingest.gate(staged, tax, "raw", key=KEY, workers=w) for w in (1, 2)}
    processed = ingest.clean(staged, tax, KEY, keep=keep, workers=2)
    gates |= {("processed", w): ingest.gate(processed, tax, "processed", workers=w) for w in (1, 2)}
    for one, two in ((gates[1], gates[2]), (gates["processed", 1], gates["processed", 2])):
        assert (one.status, one.failed) == (two.status, two.failed)
        assert_frame_equal(two.results, one.results)        # examples too: results come back in bucket order
    assert gates[2].results["unexpected_count"].fillna(0).sum() > 0
    ingest.publish(processed, out)
    assert_same({"tables": {t: pd.read_parquet(out / f"{t}.parquet") for t in processed.rows},
                 "reidentification": pd.read_parquet(out / "restricted" / f"{schema.REIDENTIFICATION}.parquet"),
                 "log": processed.log, "mapping_log": staged.log, "raw_gate": gates[2],
                 "processed_gate": gates["processed", 2], "scrubbing": ingest.describe_scrubbing(processed)}, whole)
    assert not work.folder.exists()
    # the gates in this process read bucket by bucket (no read holds the whole events table) and a
    # small table a few buckets at a time: customers (1/20 of the events) once per gate
    events = [n for stage, table, bucket, n in read_rows if table == "events" and bucket is not None]
    assert events and max(events) < 0.4 * staged.rows["events"]
    assert {b for _, t, b, _ in read_rows if t == "events"} >= set(range(5))
    customers = [b for stage, t, b, _ in read_rows if t == "customers" and isinstance(b, range)]
    assert customers == [range(0, 5), range(0, 5)]


# --- hand-made exports --------------------------------------------------------------------------
TAX = Taxonomy({
    "stages": {"purchase": {"en": "Purchase"}, "service": {"en": "Service"}},
    "channels": {"phone": {"en": "Phone"}, "web": {"en": "Web"}},
    "touchpoints": {"order": {"stage": "purchase"}, "complaint": {"stage": "service"}},
    "contact_reasons": {},
    "themes": {"billing": {"en": "Billing"}, "delivery": {"en": "Delivery"}},
    "surveys": {"relationship": {"en": "Relationship"}},
})
EVENTS = """
tables:
  events:
    - file: events.csv
      columns:
        event_id: id
        customer_ref: kunde
        timestamp: zeit
        channel: kanal
        touchpoint: punkt
{more}
"""
CUSTOMERS = """
  customers:
    - file: customers.csv
      columns:
        customer_ref: kunde
        contact_consent: ok
      test_accounts: test == 'ja'
      ignore: [test]
"""
FEEDBACK = """
  feedback:
    - file: feedback.csv
      columns:
        response_id: id
        customer_ref: kunde
        timestamp: zeit
        nps: nps
        comment: text
  labels:
    - file: labels.csv
      columns:
        response_id: id
        sentiment: stimmung
        themes: themen
"""


def project(tmp_path: Path, mapping: str, **files: str) -> tuple[Path, Path]:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (raw / f"{name}.csv").write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    path = tmp_path / "map.yml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return path, raw


def events_csv(n: int, customers: int, extra: str = "") -> str:
    rows = "\n".join(f"E{i},K{i % customers},2025-0{1 + i % 9}-1{i % 10} 10:00,{'phone' if i % 3 else 'web'},"
                     f"{'order' if i % 2 else 'complaint'}" for i in range(n))
    return f"id,kunde,zeit,kanal,punkt\n{rows}\n{extra}"


def both(tmp_path: Path, mapping: Path, raw: Path, bucket_rows: int = 30) -> tuple[dict, dict]:
    whole = whole_tables(mapping, raw, TAX)
    got = in_buckets(mapping, raw, TAX, tmp_path / "processed", bucket_rows)
    assert got["buckets"] > 1
    return got, whole


def test_customers_derived_without_a_customers_table_are_the_same_in_buckets(tmp_path):
    mapping, raw = project(tmp_path, EVENTS.format(more=""), events=events_csv(60, 13))
    got, whole = both(tmp_path, mapping, raw, bucket_rows=25)
    assert_same(got, whole, examples=True)
    assert len(got["tables"]["customers"]) == 13
    derived = got["log"].loc[got["log"]["rule"] == clean.DERIVED_RULE]
    assert derived[["rows", "detail"]].values.tolist() == [[13, "no customers table: one row per customer_ref seen in "
                                                                "events 13; contact_consent False, signup_date empty"]]


def test_unknown_and_test_customers_are_dropped_across_buckets(tmp_path):
    customers = "kunde,ok,test\n" + "\n".join(f"K{i},{'ja' if i % 2 else 'nein'},{'ja' if i == 3 else 'nein'}"
                                             for i in range(10)) + "\n"
    mapping, raw = project(tmp_path, EVENTS.format(more=CUSTOMERS), events=events_csv(80, 14), customers=customers)
    got, whole = both(tmp_path, mapping, raw)
    assert_same(got, whole)
    log = got["log"].set_index(["table", "rule"])["rows"]
    assert log[("events", "rows of unknown customers dropped")] == sum(1 for i in range(80) if i % 14 >= 10)
    assert log[("events", "test accounts dropped")] == sum(1 for i in range(80) if i % 14 == 3)


def test_every_customer_a_test_account_links_nothing_as_on_the_whole(tmp_path):
    customers = "kunde,ok,test\n" + "\n".join(f"K{i},ja,ja" for i in range(10)) + "\n"
    mapping, raw = project(tmp_path, EVENTS.format(more=CUSTOMERS), events=events_csv(40, 20), customers=customers)
    got, whole = both(tmp_path, mapping, raw, bucket_rows=15)
    assert_same(got, whole)
    note = got["log"].set_index(["table", "rule"]).loc[("events", "rows of unknown customers dropped")]
    assert note["detail"] == "not applied: no customers table (or an empty one)"


def test_labels_find_their_feedback_in_other_buckets(tmp_path):
    feedback = "id,kunde,zeit,nps,text\n" + "\n".join(
        f"R{i},K{i % 11},2025-03-0{1 + i % 9},{i % 11},Rechnung unklar Nummer {i}" for i in range(40)) + "\n"
    labels = "id,stimmung,themen\n" + "\n".join(
        f"R{i},{'negative' if i % 2 else 'positive'},{'billing' if i % 3 else ''}" for i in range(0, 44, 2)) + "\n"
    mapping, raw = project(tmp_path, EVENTS.format(more=FEEDBACK), events=events_csv(30, 11), feedback=feedback,
                           labels=labels)
    got, whole = both(tmp_path, mapping, raw, bucket_rows=15)
    assert_same(got, whole)
    assert len(got["tables"]["labels"]) == 20           # R40, R42 have no feedback
    dropped = got["log"].set_index(["table", "rule"]).loc[("labels", "labels of responses not in feedback dropped")]
    assert dropped["rows"] == 2
    reference = got["raw_gate"].results.loc[lambda d: (d["table"] == "labels") & d["description"].str.contains("feedback")]
    assert reference["unexpected_count"].tolist() == [2]


def rows_on_disk(folder: Path) -> int:
    """Rows in the Parquet files under `folder` (0 when it is gone)."""
    return sum(pq.read_metadata(f).num_rows for f in folder.rglob("*.parquet")) if folder.exists() else 0


def test_the_work_folder_holds_one_steps_rows_at_a_time(tmp_path, monkeypatch):
    """The split moves a table's rows into buckets (its parts keep the schema, no rows), cleaning
    consumes the staged buckets, scrubbing the cleaned parts, and publishing a table its processed
    parts; the staged tables read whole from the buckets are the mapping's, and a gate on the
    consumed staged tables says what happened instead of reading nothing."""
    feedback = "id,kunde,zeit,nps,text\n" + "\n".join(
        f"R{i},K{i % 11},2025-03-0{1 + i % 9},{i % 11},Rechnung unklar Nummer {i}" for i in range(40)) + "\n"
    labels = "id,stimmung,themen\nR1,negative,billing\nR2,positive,\n"
    mapping, raw = project(tmp_path, EVENTS.format(more=FEEDBACK), events=events_csv(90, 11), feedback=feedback,
                           labels=labels)
    work = ingest.workspace(tmp_path / "processed")
    staged = ingest.stage(mapping, raw, TAX, work, batch_rows=20, bucket_rows=25, now=NOW)
    assert staged.buckets > 1
    folder = work.folder
    for table in ("events", "feedback"):
        assert rows_on_disk(folder / "staged" / table) == 0
        assert rows_on_disk(folder / "staged.buckets" / table) == staged.rows[table] > 0
    assert rows_on_disk(folder / "staged" / "labels") == 2                  # not split: its parts stay
    whole = sources.map_sources(mapping, raw, TAX).tables
    assert_frame_equal(work.read("staged", "events").drop(columns=ingest.ORDER), whole["events"])
    ingest.gate(staged, TAX, "raw", key=KEY)
    processed = ingest.clean(staged, TAX, KEY)
    assert not (folder / "staged").exists() and not (folder / "staged.buckets").exists()
    assert rows_on_disk(folder / "cleaned") == 0
    assert rows_on_disk(folder / "processed") == sum(processed.rows.values())
    with pytest.raises(FileNotFoundError, match="no staged parts of table '\\w+'.*removed once the next step"):
        ingest.gate(staged, TAX, "raw", key=KEY)
    left = []
    original = parts.Workspace.write_ordered

    def spy(self, stage, table, where, **kw):
        left.append((table, {t for t in processed.rows if rows_on_disk(folder / "processed" / t)}))
        return original(self, stage, table, where, **kw)

    monkeypatch.setattr(parts.Workspace, "write_ordered", spy)
    ingest.publish(processed, tmp_path / "processed")
    tables = [t for t in schema.TABLES if t in processed.rows]
    assert [table for table, _ in left[:len(tables)]] == tables
    for number, (table, holding) in enumerate(left[:len(tables)]):
        assert holding == {t for t in tables[number:] if processed.rows[t]}     # the tables written before: gone
    assert not folder.exists()


def test_a_key_repeated_across_buckets_stops_cleaning_with_the_whole_tables_message(tmp_path):
    extra = "E5,K7,2025-02-02 10:00,phone,order\nE5,K7,2025-02-02 10:00,phone,order\n"   # E5 is K5's too
    mapping, raw = project(tmp_path, EVENTS.format(more=""), events=events_csv(60, 13, extra))
    staged = sources.map_sources(mapping, raw, TAX)
    with pytest.raises(clean.CleanError) as whole:
        clean.clean_tables(staged.tables, TAX, KEY, now=NOW)
    work = ingest.workspace(tmp_path / "processed")
    parts_ = ingest.stage(mapping, raw, TAX, work, bucket_rows=25, now=NOW)
    assert parts_.buckets > 1
    with pytest.raises(clean.CleanError) as got:
        ingest.clean(parts_, TAX, KEY)
    assert str(got.value) == str(whole.value)
    assert "3 rows share a key" in str(got.value) or "2 rows share a key" in str(got.value)
    work.close()
    assert not work.folder.exists()
    assert not (tmp_path / "processed").exists()


def test_gate_counts_add_up_over_buckets_and_decide_on_the_total(tmp_path):
    rows = "\n".join(f"R{i},K{i % 17},2025-03-0{1 + i % 9},{12 if i % 40 == 0 else i % 11},ok" for i in range(400))
    mapping, raw = project(tmp_path, EVENTS.format(more=FEEDBACK.split("  labels:")[0]), events=events_csv(30, 17),
                           feedback="id,kunde,zeit,nps,text\n" + rows + "\n")
    got, whole = both(tmp_path, mapping, raw, bucket_rows=150)
    assert_same(got, whole)
    nps = got["raw_gate"].results.loc[lambda d: (d["table"] == "feedback") & (d["column"] == "nps")
                                      & (d["expectation"] == "expect_column_values_to_be_between")]
    assert nps[["unexpected_count", "checked"]].values.tolist() == [[10, 400]]


def test_a_work_folder_left_by_a_killed_run_is_removed_by_the_next_one(tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "processed"
    code = ("import sys, time; from cxlib import parts; w = parts.Workspace.open(sys.argv[1]); "
            "print(w.folder, flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    left = Path(child.stdout.readline().strip())
    live = parts.Workspace.open(out)                 # the other run is alive: its folder stays
    assert left.is_dir() and live.folder.is_dir()
    child.send_signal(signal.SIGKILL)                # no finalizer runs
    child.wait()
    assert left.is_dir()
    foreign = tmp_path / ".processed.work-elsewhere"
    foreign.mkdir()
    (foreign / parts.OWNER).write_text("another-host 1\n")
    assert parts.remove_abandoned(out) == [left]
    assert not left.exists() and live.folder.is_dir() and foreign.is_dir()   # live and other hosts' kept
    live.close()
    assert not live.folder.exists()


EVENTS_ENTRY = """
    - file: {name}.csv
      columns:
        event_id: id
        customer_ref: kunde
        timestamp: zeit
        channel: {channel}
        touchpoint: punkt
"""


def test_entries_mapped_by_two_workers_stop_with_the_first_failing_entrys_error(tmp_path, monkeypatch):
    """Three entries of the events table, the first and the third with an unknown column: the
    error is the first entry's, as mapping them one after the other gives it."""
    monkeypatch.setattr(ingest, "PARALLEL_BYTES", 0)
    entries = "".join(EVENTS_ENTRY.format(name=n, channel=c) for n, c in (("a", "kanal_fehlt"), ("b", "kanal"), ("c", "auch_nicht")))
    mapping, raw = project(tmp_path, "tables:\n  events:" + textwrap.indent(textwrap.dedent(entries), "  "),
                           a=events_csv(40, 10), b=events_csv(40, 10), c=events_csv(40, 10))
    messages = []
    for workers in (1, 2):
        work = ingest.workspace(tmp_path / f"processed{workers}")
        with pytest.raises(sources.SourceError) as raised:
            ingest.stage(mapping, raw, TAX, work, batch_rows=10, now=NOW, workers=workers)
        messages.append((str(raised.value), raised.value.file, raised.value.column))
        work.close()
    assert messages[0] == messages[1]
    assert "a.csv" in messages[0][0] and "kanal_fehlt" in messages[0][0]


def test_entries_mapped_by_two_workers_keep_the_table_order(tmp_path, monkeypatch):
    """Three entries of one table mapped at once, several batches each: the staged table (its
    parts read in file order) and the mapping log are those of mapping them one after the other."""
    monkeypatch.setattr(ingest, "PARALLEL_BYTES", 0)
    entries = "".join(EVENTS_ENTRY.format(name=n, channel="kanal") for n in ("a", "b", "c"))
    mapping, raw = project(tmp_path, "tables:\n  events:" + textwrap.indent(textwrap.dedent(entries), "  "),
                           a=events_csv(90, 30).replace("E", "A"), b=events_csv(70, 30).replace("E", "B"),
                           c=events_csv(50, 30).replace("E", "C"))
    work = ingest.workspace(tmp_path / "processed")
    split_parts, split = [], parts.Workspace.split
    monkeypatch.setattr(parts.Workspace, "split", lambda self, stage, tables, buckets: (
        split_parts.append(len(self.files(stage, "events"))), split(self, stage, tables, buckets))[1])
    staged = ingest.stage(mapping, raw, TAX, work, batch_rows=20, bucket_rows=60, now=NOW, workers=2)
    whole = sources.map_sources(mapping, raw, TAX)
    assert staged.buckets > 1 and split_parts == [5 + 4 + 3]
    assert_frame_equal(staged.log, whole.log)
    assert_frame_equal(staged.inputs.drop(columns="sha256"), whole.inputs.drop(columns="sha256"))
    events = work.read("staged", "events")
    assert_frame_equal(events.drop(columns=ingest.ORDER), whole.tables["events"])
    assert events[ingest.ORDER].is_monotonic_increasing
    assert events["event_id"].str[0].tolist() == ["A"] * 90 + ["B"] * 70 + ["C"] * 50
    work.close()


def test_small_exports_are_mapped_and_one_bucket_checked_and_cleaned_in_this_process(tmp_path, monkeypatch):
    mapping, raw = project(tmp_path, EVENTS.format(more=""), events=events_csv(40, 10))
    stream = sources.SourceStream(mapping, raw, TAX)
    size = (raw / "events.csv").stat().st_size
    assert ingest._export_bytes(stream) == ([size], size)
    run, started = ingest.bucket_pool.run, []

    def recorded(function, tasks, **kw):
        tasks = list(tasks)
        started.append((function.__name__, kw["workers"], len(tasks)))
        return run(function, tasks, **{**kw, "workers": 1})

    monkeypatch.setattr(ingest.bucket_pool, "run", recorded)
    staged = ingest.stage(mapping, raw, TAX, ingest.workspace(tmp_path / "processed"), workers=2, now=NOW)
    ingest.gate(staged, TAX, "raw", key=KEY, workers=2)
    ingest.clean(staged, TAX, KEY, workers=2)
    assert staged.buckets == 1
    assert [(name, workers) for name, workers, _ in started] == [
        ("_stage_entry", 1), ("_gate_part", 1), ("_clean_bucket", 1), ("_scrub_part", 1)]
    assert started[1][2] > 1               # one task per customer table: several, still in this process
    monkeypatch.setattr(ingest, "PARALLEL_BYTES", 100)
    ingest.stage(mapping, raw, TAX, ingest.workspace(tmp_path / "again"), workers=2, now=NOW)
    assert started[-1][:2] == ("_stage_entry", 2)
    split = ingest.stage(mapping, raw, TAX, ingest.workspace(tmp_path / "split"), bucket_rows=15, now=NOW)
    ingest.gate(split, TAX, "raw", key=KEY, workers=2)
    assert split.buckets > 1 and started[-1][:2] == ("_gate_part", 2)


def test_a_session_is_a_new_duckdb_connection_with_the_workspaces_settings_closed_afterwards(tmp_path):
    work = parts.Workspace.open(tmp_path / "processed", memory_limit="512MB")

    def setting(con, name):
        return con.raw_sql(f"select current_setting('{name}')").fetchone()[0]

    with work.session() as con:
        assert con is not work.con
        assert setting(con, "memory_limit") == setting(work.con, "memory_limit")
        assert setting(con, "temp_directory") == str(work.folder / "spill")
    with pytest.raises(Exception):
        con.raw_sql("select 1")
    assert setting(work.con, "memory_limit")          # the workspace's own connection stays open
    work.close()


def test_a_bucket_is_read_in_table_order_whether_its_parts_are_shuffled_or_in_order(tmp_path, monkeypatch):
    work = parts.Workspace.open(tmp_path / "processed")
    frame = pd.DataFrame({"customer_ref": [f"K{i % 7}" for i in range(60)], "value": pd.Series(range(60), dtype="int64"),
                          parts.ORDER: pd.Series(range(60), dtype="int64")})
    for number, rows in enumerate([frame.iloc[40:], frame.iloc[:40].sample(frac=1, random_state=3)]):
        work.write("staged", "events", rows, number)               # the rows out of order across and within parts
    work.split("staged", ["events"], 3)
    ordered = []
    original = parts._ordered
    monkeypatch.setattr(parts, "_ordered", lambda order: ordered.append(original(order)) or ordered[-1])
    buckets = [work.read("staged", "events", number) for number in range(3)]
    for got in buckets:
        assert got[parts.ORDER].is_monotonic_increasing and len(got)
    assert_frame_equal(pd.concat(buckets).sort_values(parts.ORDER).reset_index(drop=True), frame)
    assert False in ordered                                          # shuffled rows were sorted
    ordered.clear()
    work.write("cleaned", "events", frame, 0)                        # a bucket's part written in order: read as it is
    work.buckets["cleaned"] = 3
    assert_frame_equal(work.read("cleaned", "events", 0), frame)
    assert ordered == [True]
    work.close()


@pytest.mark.parametrize("shuffled", [False, True], ids=["buckets merged", "engine sorts"])
def test_a_table_written_in_order_from_bucket_parts_has_every_row_once_in_table_order(tmp_path, monkeypatch, shuffled):
    """Bucket parts each in table order (as cleaning writes them) are merged, a few rows of each
    at a time; a part out of order goes to the engine's sort. Both give every row once, in order."""
    monkeypatch.setattr(parts, "BATCH_ROWS", 400)                   # several batches from the engine's sort
    monkeypatch.setattr(parts, "MERGE_ROWS", 50)                    # several rounds of the merge
    merged, merge = [], parts.merged_batches
    monkeypatch.setattr(parts, "merged_batches", lambda *a, **kw: merged.append(1) or merge(*a, **kw))
    work = parts.Workspace.open(tmp_path / "processed")
    frame = pd.DataFrame({"customer_ref": [f"K{i % 11}" for i in range(3_000)],
                          "value": pd.Series(range(3_000), dtype="int64"),
                          parts.ORDER: pd.Series(range(3_000), dtype="int64")})
    for number, rows in enumerate([frame.iloc[2_000:], frame.iloc[:2_000].sample(frac=1, random_state=5)]):
        work.write("staged", "events", rows, number)
    work.split("staged", ["events"], 4)
    for bucket in range(4):
        rows = work.read("staged", "events", bucket)
        work.write("cleaned", "events", rows.sample(frac=1, random_state=bucket) if shuffled and bucket == 2 else rows,
                   bucket)
    work.buckets["cleaned"] = 4
    assert len(list(work.ordered_batches("cleaned", "events"))) >= 8
    assert merged == ([] if shuffled else [1])
    work.write_ordered("cleaned", "events", tmp_path / "events.parquet")
    assert_frame_equal(pd.read_parquet(tmp_path / "events.parquet"), frame.drop(columns=parts.ORDER))
    work.close()


def test_merged_batches_interleave_parts_of_any_lengths_in_order(tmp_path):
    """Parts of very different lengths whose `_order` values interleave unevenly (one part ends
    early, one holds a long run the others lack, one is empty): one stream in order."""
    rng = np.random.default_rng(3)
    order = rng.permutation(5_000)
    owner = np.where(order < 2_000, rng.integers(0, 3, 5_000), np.where(order < 2_600, 3, 1))
    files = []
    for number in range(5):
        mine = np.sort(order[owner == number])
        files.append(tmp_path / f"part-{number}.parquet")
        pq.write_table(pa.table({parts.ORDER: pa.array(mine, pa.int64()), "value": pa.array(mine * 10)}), files[-1])
    batches = list(parts.merged_batches(files, [parts.ORDER, "value"], rows=64))
    got = pa.Table.from_batches(batches)
    assert got.column(parts.ORDER).to_pylist() == list(range(5_000))
    assert got.column("value").to_pylist() == [10 * i for i in range(5_000)]
    assert max(b.num_rows for b in batches) <= 5 * 64


@pytest.mark.parametrize(("buckets", "widths", "carried"), [(11, [3, 3, 3, 2, 3, 2], 0), (10, [3, 3, 3, 3, 2], 1)])
@pytest.mark.parametrize("consume", [False, True])
def test_many_parts_are_merged_in_runs_of_a_few_files_at_a_time(tmp_path, monkeypatch, consume, buckets, widths,
                                                                 carried):
    """Eleven (ten) parts, three merged at a time: runs of runs until three are left, a lone file
    carried to the next round as it is, each merge over three files or fewer; the stream is the
    table in order; the runs are gone afterwards, and when the caller consumes the parts, those
    merged into runs (a part carried to the last merge stays for the caller to remove)."""
    monkeypatch.setattr(parts, "MERGE_PARTS", 3)
    seen, merge = [], parts.merged_batches
    monkeypatch.setattr(parts, "merged_batches", lambda files, *a, **kw: seen.append(len(files)) or merge(files, *a, **kw))
    work = parts.Workspace.open(tmp_path / "processed")
    frame = pd.DataFrame({"customer_ref": [f"K{i % 23}" for i in range(2_300)],
                          "value": pd.Series(range(2_300), dtype="int64"), parts.ORDER: pd.Series(range(2_300), dtype="int64")})
    for bucket in range(buckets):
        work.write("cleaned", "events", frame.iloc[bucket::buckets], bucket)
    work.buckets["cleaned"] = buckets
    work.write_ordered("cleaned", "events", tmp_path / "events.parquet", consume=consume)
    assert_frame_equal(pd.read_parquet(tmp_path / "events.parquet"), frame.drop(columns=parts.ORDER))
    assert seen == widths       # 11 -> 4 runs -> 2 (one merged, one carried) -> the stream; 10 -> 3 runs and a part
    assert not (work.folder / "runs" / "cleaned" / "events").exists()
    assert len(work.files("cleaned", "events")) == (carried if consume else buckets)
    work.close()


def test_runs_are_merged_on_several_threads_at_once_into_the_same_table(tmp_path, monkeypatch):
    """Four parts, two merged at a time, on two threads: both runs of the first round are merged at
    the same moment (each waits for the other at a barrier, which a one-thread merge never passes),
    and the table comes out in order, every row once, as from one thread."""
    monkeypatch.setattr(parts, "MERGE_PARTS", 2)
    both, merge, where = threading.Barrier(2, timeout=10), parts.merged_batches, []

    def merged_together(files, *args, **kwargs):
        if threading.current_thread().name.startswith("cx-merge"):     # a run (the last merge streams)
            where.append(threading.current_thread().name)
            both.wait()
        return merge(files, *args, **kwargs)

    monkeypatch.setattr(parts, "merged_batches", merged_together)
    work = parts.Workspace.open(tmp_path / "processed")
    frame = pd.DataFrame({"customer_ref": [f"K{i % 17}" for i in range(1_700)],
                          "value": pd.Series(range(1_700), dtype="int64"), parts.ORDER: pd.Series(range(1_700), dtype="int64")})
    for bucket in range(4):
        work.write("cleaned", "events", frame.iloc[bucket::4], bucket)
    work.buckets["cleaned"] = 4
    work.write_ordered("cleaned", "events", tmp_path / "events.parquet", consume=True, threads=2)
    assert_frame_equal(pd.read_parquet(tmp_path / "events.parquet"), frame.drop(columns=parts.ORDER))
    assert len(where) == 2
    assert work.files("cleaned", "events") == []
    work.close()


def test_a_merge_holds_one_row_group_of_each_part_it_reads(tmp_path):
    """Parts are written in row groups of MERGE_ROWS rows, and the merge reads them one row group at
    a time: what an open part holds is about the rows handed on (Arrow's batch reader held twice
    that and more), and a part written otherwise is still read `rows` at a time."""
    files = parts.PartFiles(tmp_path)
    n = 60_000
    for number in range(4):
        frame = pd.DataFrame({"event_id": [f"E{number}-{i:09d}" for i in range(n)],
                              "customer_ref": [f"K{i % 997:07d}" for i in range(n)],
                              parts.ORDER: pd.Series(range(number, 4 * n, 4), dtype="int64")})
        files.write("processed", "events", frame, number)
    written = files.files("processed", "events")
    groups = [pq.ParquetFile(f).metadata.num_row_groups for f in written]
    assert groups == [-(-n // parts.MERGE_ROWS)] * 4
    columns = ["event_id", "customer_ref", parts.ORDER]
    readers = [parts._row_batches(f, columns, parts.MERGE_ROWS) for f in written]
    before = pa.total_allocated_bytes()
    held = [next(reader) for reader in readers]
    assert [b.num_rows for b in held] == [parts.MERGE_ROWS] * 4
    assert pa.total_allocated_bytes() - before <= 1.5 * sum(b.nbytes for b in held)
    whole = tmp_path / "whole.parquet"           # one row group of 60,000 rows
    pq.write_table(pq.read_table(written[0]), whole, row_group_size=n)
    assert {b.num_rows for b in parts._row_batches(whole, columns, 1_000)} == {1_000}


def test_the_gates_read_a_table_of_long_comments_in_more_reads_than_one_of_as_many_short_events(tmp_path):
    work = parts.Workspace.open(tmp_path / "processed")
    n = 4_000
    refs = [f"K{i % 400}" for i in range(n)]
    events = pd.DataFrame({"customer_ref": refs, parts.ORDER: pd.Series(range(n), dtype="int64")})
    feedback = events.assign(comment=[f"{i} " + "the invoice was unclear and nobody called back " * 8 for i in range(n)])
    customers = events.iloc[:400]
    for table, frame in (("events", events), ("feedback", feedback), ("customers", customers)):
        work.write("staged", table, frame, 0)
    work.split("staged", ["events", "feedback", "customers"], 8)
    staged = ingest.Parts(work, "staged", {"events": n, "feedback": n, "customers": 400}, 8, NOW)
    weights = {t: work.data_bytes("staged", t) for t in ("events", "feedback", "customers")}
    assert weights["feedback"] > 10 * weights["events"] > 10 * weights["customers"]
    assert staged.read_numbers("feedback") == list(range(8))          # the heaviest: bucket by bucket
    assert staged.read_numbers("events") == [range(0, 8)]              # as many rows, a tenth of the weight: once
    assert staged.read_numbers("customers") == [range(0, 8)]
    work.close()
