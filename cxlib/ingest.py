"""Stage 01 on bounded memory: exports -> staged parts -> customer buckets -> gates and cleaning
one bucket at a time -> processed Parquet, written in the order of the exports.

The source mapping streams its batches (`sources.SourceStream`, entry by entry) into Parquet
parts of a `parts.Workspace`; the engine (DuckDB by default, Spark with `engine="pyspark"`)
splits the tables with a customer column into buckets by a hash of the customer number, so every
row of one customer is in one bucket, and orders the results when they are written. Each bucket is checked
(Great Expectations, `validate.Gate`) and cleaned (`clean.clean_tables`) in pandas as the whole
would be: the decisions that need the whole table (are there customers at all, the feedback a
label refers to, the names to mask in free text, keys repeated across buckets) are taken on the
whole first and passed in. Gate results and cleaning logs of the buckets are combined into those
of the whole table. With `workers` > 1 the mapping's entries are mapped, and the buckets checked
and cleaned, in that many worker processes at once (`bucket_pool`), with the same results.
Memory grows with `workers` x `batch_rows` or `bucket_rows`, not with the data; small data is one
bucket, done in this process. Each step's parts are removed once the next step has consumed them
and the processed tables are written by merging the cleaned buckets (each in export order), so
the work folder holds about one copy of the data and nothing is sorted at the end.

    work = ingest.workspace(processed_dir)
    staged = ingest.stage(source, raw_dir, tax, work, workers=2)
    raw_gate = ingest.gate(staged, tax, "raw", tolerance, key=key, workers=2)
    cleaned = ingest.clean(staged, tax, key, keep=common_words, customer_number=pattern, workers=2)
    processed_gate = ingest.gate(cleaned, tax, "processed", tolerance, workers=2)
    ingest.publish(cleaned, processed_dir)          # only after both gates passed
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from ibis import _

from cxlib import bucket_pool, catalog, cleaning_log, privacy, schema, sources, validate
from cxlib import clean as cleaning
from cxlib.parts import ORDER, PartFiles, Workspace, as_frame

BATCH_ROWS = 500_000            # source rows mapped at a time
BUCKET_ROWS = 1_000_000         # rows of the largest table checked and cleaned at a time
PARALLEL_BYTES = 64 * 2 ** 20   # exports below this size are mapped in one process (starting workers costs seconds)
ENTRY_PARTS = 10 ** 6           # part numbers per mapping entry (staged batches of one entry)
ENTRY_ROWS = 2 ** 36            # `_order` span per entry of a table: rows of one entry stay below it
CUSTOMER_TABLES = tuple(t for t, spec in schema.TABLES.items() if spec.customer_column is not None)


@dataclass
class Parts:
    """Tables of one step kept as parts in `work`: `step` ("staged", "cleaned", "processed"),
    `rows` per table, `buckets` they are split into; `inputs` and `log` of the mapping (staged),
    `log` of cleaning and `scrubbed` (table -> (texts changed, texts)) when cleaned."""

    work: Workspace
    step: str
    rows: dict[str, int]
    buckets: int
    now: pd.Timestamp
    inputs: pd.DataFrame | None = None
    log: pd.DataFrame | None = None
    scrubbed: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def row_counts(self) -> pd.Series:
        """Rows per table (`ingest_describe` shows them)."""
        return pd.Series(self.rows, dtype="int64")

    def read_numbers(self, table: str) -> list[int | range | None]:
        """How the gates read `table`: a few buckets at a time, each read about as heavy as one
        bucket of the heaviest table (None: the whole table, when it is not split), for the work
        that needs no customer's rows together: a small table is read once, not once per bucket.
        Weight is the parts' uncompressed bytes, not rows: a customer's row weighs more than an event's."""
        if table not in CUSTOMER_TABLES or self.buckets == 1:
            return [None]
        weights = {t: self.work.data_bytes(self.step, t) for t in CUSTOMER_TABLES if t in self.rows}
        per_read = max(1, max(weights.values()) // max(1, weights[table]))
        reads = [range(first, min(first + per_read, self.buckets)) for first in range(0, self.buckets, per_read)]
        return [numbers[0] if len(numbers) == 1 else numbers for numbers in reads]

    def workers(self, workers: int) -> int:
        """The processes the bucket work uses: `workers` over several buckets, one (this process)
        over a single bucket, whose few tasks cost less than starting a worker (about 2 s)."""
        return workers if self.buckets > 1 else 1

    def files(self, workers: int = 1) -> PartFiles:
        """The parts for the bucket work: the workspace itself in this process, a copy without
        the engine for worker processes."""
        return self.work if workers <= 1 else self.work.part_files()


def workspace(processed_dir: str | Path, *, engine: str = "duckdb", spark: Mapping | None = None,
              memory_limit: str | None = None) -> Workspace:
    """The work folder of one stage-01 run, beside `processed_dir` (removed at the end); DuckDB
    gets `memory_limit` (None: `engine.connect`'s default, 2GB or CX_DUCKDB_MEMORY_LIMIT)."""
    return Workspace.open(processed_dir, engine=engine, spark=spark, memory_limit=memory_limit)


def stage(mapping_path: str | Path, raw_dir: str | Path, taxonomy, work: Workspace, *,
          batch_rows: int = BATCH_ROWS, bucket_rows: int = BUCKET_ROWS,
          now: pd.Timestamp | None = None, workers: int = 1) -> Parts:
    """Map the exports batch by batch into staged parts (the mapping's entries in `workers`
    processes; `_order` sorts the rows in table order) and split them into buckets of about
    `bucket_rows` rows of the largest customer table. Raises SourceError as `sources.map_sources`
    does (the first failing entry's, in mapping order); nothing leaves the work folder."""
    stream = sources.SourceStream(mapping_path, raw_dir, taxonomy, batch_rows=batch_rows)
    entries = stream.entries()
    sizes, total = _export_bytes(stream)
    workers = workers if total >= PARALLEL_BYTES else 1
    files = work if workers <= 1 else work.part_files()
    ranks = {t: [i for i, (table, _) in enumerate(entries) if table == t] for t, _ in entries}
    tasks = [(stream, files, index, table, entry, ranks[table].index(index)) for index, (table, entry) in enumerate(entries)]
    rows: dict[str, int] = {}
    logs, inputs = [], []
    for table, count, log, read in bucket_pool.run(_stage_entry, tasks, workers=workers, sizes=sizes):
        rows[table] = rows.get(table, 0) + count
        logs.append(log)
        inputs.append(read)
    stream.finish(logs, inputs)
    for table in (t for t in schema.TABLES if t not in rows and (t in stream.tables or not schema.TABLES[t].optional)):
        work.write("staged", table, sources.empty_table(table).assign(**{ORDER: pd.Series(dtype="int64")}), 0)
        rows[table] = 0                      # a table the mapping does not fill is there, empty, as in map_sources
    rows = {t: rows[t] for t in schema.TABLES if t in rows}
    largest = max([rows.get(t, 0) for t in CUSTOMER_TABLES] + [0])
    buckets = max(1, math.ceil(largest / max(1, int(bucket_rows))))
    work.split("staged", [t for t in rows if t in CUSTOMER_TABLES], buckets)
    return Parts(work, "staged", rows, buckets, _utc_now(now), inputs=stream.inputs, log=stream.log)


def gate(tables: Parts, taxonomy, stage: str, tolerance: float = 0.02, *, key: bytes | None = None,
         min_date: str | pd.Timestamp = schema.MIN_DATE, workers: int = 1) -> validate.GateResult:
    """The validation gate over all buckets (in `workers` processes), combined into the result
    for the whole tables. Raw: staged tables as `clean.pseudonymise_staged` shows them (needs `key`)."""
    if stage == "raw" and key is None:
        raise ValueError("ingest.gate: the raw gate needs the pseudonymisation key")
    settings, workers = {"min_date": min_date, "now": tables.now}, tables.workers(workers)
    files = tables.files(workers)
    with_ids = "labels" in tables.rows
    tasks = [(files, tables.step, table, numbers, stage, key, with_ids and table == "feedback")
             for table in tables.rows if table in CUSTOMER_TABLES for numbers in tables.read_numbers(table)]
    setup = functools.partial(validate.Gate, taxonomy, stage, tolerance, **settings)
    parts = list(bucket_pool.run(_gate_part, tasks, workers=workers, setup=setup, close=validate.Gate.close))
    results, ids = [result for result, _ in parts], [i for _, i in parts if i is not None]
    labels = None
    if with_ids:
        labels = tables.work.read(tables.step, "labels").drop(columns=[ORDER], errors="ignore")
        if stage == "raw":
            labels = cleaning.pseudonymise_staged({"labels": labels}, key)["labels"]
        responses = pd.concat(ids, ignore_index=True) if ids else pd.DataFrame(
            columns=[schema.RESPONSE_ID, "staged"], dtype="str")
        if stage == "raw":          # a label's response id as its feedback row's, as pseudonymise_staged does
            lookup = responses.dropna().drop_duplicates("staged").set_index("staged")[schema.RESPONSE_ID]
            labels = labels.assign(**{schema.RESPONSE_ID: labels[schema.RESPONSE_ID].map(lookup)
                                      .fillna(labels[schema.RESPONSE_ID]).astype("str")})
        with validate.Gate(taxonomy, stage, tolerance, **settings) as runner:
            results.append(runner.run({"labels": labels}, references=False))
    whole = validate.combine(results, taxonomy, stage, tolerance, **settings)
    if labels is not None and "feedback" in tables.rows:
        feedback = responses[[schema.RESPONSE_ID]]
        whole = validate.with_results(whole, validate.reference_results({"labels": labels, "feedback": feedback}, stage))
    return whole


def clean(staged: Parts, taxonomy, key: bytes, *, keep=(), customer_number: str | None = privacy.CUSTOMER_NUMBER,
          min_date: str | pd.Timestamp = schema.MIN_DATE, workers: int = 1) -> Parts:
    """Clean every bucket (`clean.clean_tables`, in `workers` processes), then mask personal data
    in free text with the names of all customers (`privacy.scrub_free_text`). Returns the
    processed parts with the combined cleaning log and `scrubbed` counts. The staged parts are
    consumed: removed once every bucket is cleaned (the gates run on them before). Raises
    CleanError as `clean.clean_tables` does, also for a key repeated across buckets."""
    work, settings, workers = staged.work, {"min_date": min_date, "now": staged.now}, staged.workers(workers)
    _refuse_keys_across_buckets(staged, key)
    derive = staged.rows.get("customers", 0) == 0
    known = not derive or any(staged.rows.get(t, 0) for t in CUSTOMER_TABLES)
    notes, responses, rows, tokens = _clean_buckets(staged, taxonomy, key, derive, known, settings, workers)
    if known and rows.get("customers", 0) == 0:       # every customer dropped: nothing links, as for the whole
        notes, responses, rows, tokens = _clean_buckets(staged, taxonomy, key, derive, False, settings, workers)
    if "labels" in staged.rows:
        labels = cleaning.clean_tables({"labels": work.read("staged", "labels")}, taxonomy, key, **settings,
                                    responses=pd.concat(responses) if responses else None)
        work.write("cleaned", "labels", labels.tables["labels"], 0)
        notes.append(labels.notes)
        rows["labels"] = len(labels.tables["labels"])
    work.remove("staged")
    scrubbed = _scrub(work, staged.buckets, tokens, keep=keep, customer_number=customer_number, workers=workers)
    rows = {t: rows.get(t, 0) for t in schema.TABLES if t in rows}
    return Parts(work, "processed", rows, staged.buckets, staged.now, log=cleaning_log.frame(*notes),
                 scrubbed=scrubbed)


def publish(processed: Parts, processed_dir: str | Path, *, workers: int = 1) -> list[Path]:
    """Write the processed tables (and the restricted re-identification table) in table order to
    `processed_dir`, atomically (`catalog.publish`), then remove the work folder. A table's parts
    are removed as soon as its file is written; `workers` threads merge its buckets."""
    work, threads = processed.work, processed.workers(workers)
    writers = {t: functools.partial(_write_out, work, "processed", t, threads=threads) for t in processed.rows}
    restricted = {schema.REIDENTIFICATION: functools.partial(_write_out, work, "reidentification", "customers",
                                                             threads=threads)}
    written = catalog.publish(writers, processed_dir, restricted)
    work.close()
    return written


def _write_out(work: Workspace, stage: str, table: str, where: Path, *, threads: int = 1) -> None:
    """Write `table` of `stage` in table order to `where` (`threads`: runs merged at once), then
    remove its parts."""
    work.write_ordered(stage, table, where, consume=True, threads=threads)
    work.remove_table(stage, table)


def describe_scrubbing(processed: Parts) -> str:
    """One sentence on the free text masked (`privacy.describe_scrubbing_counts`)."""
    return privacy.describe_scrubbing_counts(processed.scrubbed)


# --- the passes -------------------------------------------------------------------------------
def _export_bytes(stream: sources.SourceStream) -> tuple[list[int], int]:
    """The bytes of the exports each entry of `stream.entries()` reads, and of all of them (each
    file once). A file that cannot be found counts 0: mapping it raises the error in its turn."""
    files, per_entry, found = stream.files(), [], {}
    for table, entry in stream.entries():
        try:
            paths = files.resolve(entry["file"], entry["label"], entry["expect_files"])
        except sources.SourceError:
            paths = []
        sizes = {path: path.stat().st_size for path in paths}
        per_entry.append(sum(sizes.values()))
        found |= sizes
    return per_entry, sum(found.values())


def _stage_entry(_, task) -> tuple[str, int, sources.MappingLog, list[dict]]:
    """Map one mapping entry into staged parts: part numbers from the entry's place in the mapping
    (so the files sort in table order), `_order` = the entry's rank among its table's entries x
    ENTRY_ROWS + the row's place in the entry. Each batch is written while the next is mapped.
    Returns (table, rows, the entry's mapping log, the files it read)."""
    stream, files, index, table, entry, rank = task
    read, log = stream.files(), sources.MappingLog()
    rows, part = 0, index * ENTRY_PARTS
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cx-stage-writer") as writer:
        pending: list = []
        for batch in stream.entry_batches(table, entry, read, log):
            order = pd.RangeIndex(rank * ENTRY_ROWS + rows, rank * ENTRY_ROWS + rows + len(batch))
            pending.append(writer.submit(files.write, "staged", table, batch.assign(**{ORDER: order}), part))
            rows, part = rows + len(batch), part + 1
            if len(pending) > 1:
                pending.pop(0).result()
        for written in pending:
            written.result()
    return table, rows, log, read.inputs


def _gate_part(gate: validate.Gate, task) -> tuple[validate.GateResult, pd.DataFrame | None]:
    """One read of a table through `gate` (references left out); with the feedback's response
    ids (staged -> as shown) when labels need them."""
    files, step, table, numbers, stage, key, with_ids = task
    frame = files.read(step, table, numbers)
    shown = cleaning.pseudonymise_staged({table: frame}, key) if stage == "raw" else {table: frame}
    shown = {t: f.drop(columns=[ORDER], errors="ignore") for t, f in shown.items()}
    ids = (pd.DataFrame({schema.RESPONSE_ID: shown[table][schema.RESPONSE_ID].to_numpy(),
                         "staged": frame[schema.RESPONSE_ID].to_numpy()}) if with_ids else None)
    return gate.run(shown, references=False), ids


def _clean_buckets(staged: Parts, taxonomy, key: bytes, derive: bool, known: bool, settings: dict, workers: int):
    """Clean each bucket into the work folder's "cleaned" parts; returns the notes per bucket,
    the feedback response ids (staged -> processed; only for a labels table), rows per table and
    the name tokens of the CRM names (`privacy.name_tokens`: a vocabulary, not one name per customer)."""
    files = staged.files(workers)
    tables = [t for t in staged.rows if t != "labels"]
    with_labels = "labels" in staged.rows
    tasks = [(files, staged.step, tables, number, taxonomy, key, settings, derive, known, with_labels)
             for number in range(staged.buckets)]
    notes, responses, rows, tokens = [], [], {}, set()
    for bucket_notes, bucket_responses, bucket_rows, bucket_tokens in bucket_pool.run(_clean_bucket, tasks, workers=workers):
        notes.append(bucket_notes)
        if bucket_responses is not None:
            responses.append(bucket_responses)
        for table, count in bucket_rows.items():
            rows[table] = rows.get(table, 0) + count
        tokens |= bucket_tokens
    return notes, responses, rows, sorted(tokens)


def _clean_bucket(_, task):
    """Clean one bucket and write its cleaned and re-identification parts: (notes, responses
    when labels need them, rows per table, name tokens of the CRM names)."""
    files, step, tables, number, taxonomy, key, settings, derive, known, with_labels = task
    frames = {t: files.read(step, t, number) for t in tables if t in CUSTOMER_TABLES}
    cleaned = cleaning.clean_tables(frames, taxonomy, key, **settings, derive_customers=derive, customers_known=known)
    for table, frame in cleaned.tables.items():
        files.write("cleaned", table, frame, number)
    files.write("reidentification", "customers", cleaned.reidentification, number)
    tokens = set(privacy.name_tokens(cleaned.reidentification[schema.PII_NAME].dropna().unique()))
    return (cleaned.notes, cleaned.responses if with_labels else None, {t: len(f) for t, f in cleaned.tables.items()},
            tokens)


def _scrub(work: Workspace, buckets: int, name_tokens: list[str], *, keep, customer_number, workers: int = 1
           ) -> dict[str, tuple[int, int]]:
    """Mask personal data in the free text of every cleaned part -> "processed" parts (parts of
    tables without free text are moved as they are; the others removed once scrubbed) with the
    name tokens of the CRM names; returns table -> (texts changed, texts)."""
    pattern = privacy.name_pattern(pd.Series(name_tokens, dtype="str"), keep=keep)     # built once for all parts
    files = work if workers <= 1 else work.part_files()
    tasks = []
    for table in work.tables("cleaned"):
        for part in work.files("cleaned", table):
            target = work.table_dir("processed", table) / part.name
            if table in privacy.FREE_TEXT:
                tasks.append((files, table, part))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, target)
    setup = functools.partial(dict, names_pattern=pattern or "", keep=keep, customer_number=customer_number)
    counts: dict[str, tuple[int, int]] = {}
    for table, (changed, filled) in bucket_pool.run(_scrub_part, tasks, workers=workers, setup=setup):
        old = counts.get(table, (0, 0))
        counts[table] = (old[0] + changed, old[1] + filled)
    work.buckets["processed"] = buckets
    work.buckets["reidentification"] = buckets
    return counts


def _scrub_part(settings: dict, task) -> tuple[str, tuple[int, int]]:
    """Scrub one cleaned part of a free-text table into its processed part: (table, (texts
    changed, texts))."""
    files, table, part = task
    frame = pd.read_parquet(part)
    scrubbed = privacy.scrub_free_text({table: frame}, **settings)[table]
    files.write("processed", table, scrubbed, int(part.stem.split("-")[1]))
    part.unlink()
    return table, privacy.scrubbing_counts({table: frame}, {table: scrubbed}).get(table, (0, 0))


def _refuse_keys_across_buckets(staged: Parts, key: bytes) -> None:
    """A key shared by rows of two customers sits in two buckets, where a bucket's cleaning
    cannot see it. Before any bucket is cleaned, the engine finds the keys held by more than one
    row; their rows (few) go through cleaning's duplicate rules, which raise the CleanError that
    cleaning the whole table would raise, in the same table order."""
    if staged.buckets == 1:
        return
    work = staged.work
    with work.session() as con:                 # its memory goes back before the buckets are cleaned
        for table in (t for t in CUSTOMER_TABLES if staged.rows.get(t)):
            staged_key = [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[table].key]
            expr = con.read_parquet(work.rows_glob("staged", table))
            keyed = expr.filter([expr[c].notnull() for c in staged_key])
            repeated = keyed.group_by(staged_key).aggregate(rows=_.count()).filter(_.rows > 1).select(staged_key)
            rows = expr.semi_join(repeated, staged_key).order_by(ORDER).to_pyarrow()
            if rows.num_rows:
                cleaning.refuse_conflicting_keys(as_frame(rows, work.schema("staged", table)), table, key)


def _utc_now(now: pd.Timestamp | None) -> pd.Timestamp:
    stamp = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
