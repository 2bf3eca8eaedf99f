"""Stage 01 on bounded memory: exports -> staged parts -> customer buckets -> gates and cleaning
one bucket at a time -> processed Parquet, written in the order of the exports.

The source mapping streams its batches (`sources.SourceStream`) into Parquet parts of a
`parts.Workspace`; the engine (DuckDB by default, Spark with `engine="pyspark"`) splits the
tables with a customer column into buckets by a hash of the customer number, so every row of one
customer is in one bucket, and orders the results when they are written. Each bucket is checked
(Great Expectations, `validate.Gate`) and cleaned (`clean.clean_tables`) in pandas as the whole
would be: the decisions that need the whole table (are there customers at all, the feedback a
label refers to, the names to mask in free text, keys repeated across buckets) are taken on the
whole first and passed in. Gate results and cleaning logs of the buckets are combined into those
of the whole table. Memory grows with `bucket_rows`, not with the data; small data is one bucket.

    work = ingest.workspace(processed_dir)
    staged = ingest.stage(source, raw_dir, tax, work)
    raw_gate = ingest.gate(staged, tax, "raw", tolerance, key=key)
    cleaned = ingest.clean(staged, tax, key, keep=common_words, customer_number=pattern)
    processed_gate = ingest.gate(cleaned, tax, "processed", tolerance)
    ingest.publish(cleaned, processed_dir)          # only after both gates passed
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from ibis import _

from cxlib import catalog, cleaning_log, privacy, schema, sources, validate
from cxlib import clean as cleaning
from cxlib.parts import ORDER, Workspace, as_frame

BATCH_ROWS = 500_000            # source rows mapped at a time
BUCKET_ROWS = 1_000_000         # rows of the largest table checked and cleaned at a time
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

    def reads(self, table: str) -> Iterator[pd.DataFrame]:
        """The rows of `table` a few buckets at a time, each read about as large as one bucket of
        the largest table (the whole table when it is not split), for the work that needs no
        customer's rows together: a small table is read once, not once per bucket."""
        if table not in CUSTOMER_TABLES or self.buckets == 1:
            yield self.work.read(self.step, table)
            return
        largest = max(self.rows.get(t, 0) for t in CUSTOMER_TABLES)
        per_read = max(1, largest // max(1, self.rows[table]))
        for first in range(0, self.buckets, per_read):
            numbers = range(first, min(first + per_read, self.buckets))
            yield self.work.read(self.step, table, numbers[0] if len(numbers) == 1 else numbers)

    def bucket(self, number: int | None) -> dict[str, pd.DataFrame]:
        """The tables of one bucket (None: the whole tables) as pandas frames in table order;
        tables without a customer column only with the whole."""
        names = [t for t in self.rows if number is None or t in CUSTOMER_TABLES]
        return {t: self.work.read(self.step, t, None if t not in CUSTOMER_TABLES else number) for t in names}


def workspace(processed_dir: str | Path, *, engine: str = "duckdb", spark: Mapping | None = None,
              memory_limit: str | None = None) -> Workspace:
    """The work folder of one stage-01 run, beside `processed_dir` (removed at the end); DuckDB
    gets `memory_limit` (None: `engine.connect`'s default, 2GB or CX_DUCKDB_MEMORY_LIMIT)."""
    return Workspace.open(processed_dir, engine=engine, spark=spark, memory_limit=memory_limit)


def stage(mapping_path: str | Path, raw_dir: str | Path, taxonomy, work: Workspace, *,
          batch_rows: int = BATCH_ROWS, bucket_rows: int = BUCKET_ROWS,
          now: pd.Timestamp | None = None) -> Parts:
    """Map the exports batch by batch into staged parts (`_order` = place in the table) and split
    them into buckets of about `bucket_rows` rows of the largest customer table. Raises
    SourceError as `sources.map_sources` does; nothing leaves the work folder."""
    stream = sources.SourceStream(mapping_path, raw_dir, taxonomy, batch_rows=batch_rows)
    rows: dict[str, int] = {}
    parts: dict[str, int] = {}
    for table, batch in stream.batches():
        start = rows.get(table, 0)
        work.write("staged", table, batch.assign(**{ORDER: pd.RangeIndex(start, start + len(batch))}),
                   parts.get(table, 0))
        rows[table], parts[table] = start + len(batch), parts.get(table, 0) + 1
    for table in (t for t in schema.TABLES if t not in rows and (t in stream.tables or not schema.TABLES[t].optional)):
        work.write("staged", table, sources.empty_table(table).assign(**{ORDER: pd.Series(dtype="int64")}), 0)
        rows[table] = 0                      # a table the mapping does not fill is there, empty, as in map_sources
    rows = {t: rows[t] for t in schema.TABLES if t in rows}
    largest = max([rows.get(t, 0) for t in CUSTOMER_TABLES] + [0])
    buckets = max(1, math.ceil(largest / max(1, int(bucket_rows))))
    work.split("staged", [t for t in rows if t in CUSTOMER_TABLES], buckets)
    return Parts(work, "staged", rows, buckets, _utc_now(now), inputs=stream.inputs, log=stream.log)


def gate(tables: Parts, taxonomy, stage: str, tolerance: float = 0.02, *, key: bytes | None = None,
         min_date: str | pd.Timestamp = schema.MIN_DATE) -> validate.GateResult:
    """The validation gate over all buckets, combined into the result for the whole tables.
    Raw: staged tables as `clean.pseudonymise_staged` shows them (needs `key`)."""
    if stage == "raw" and key is None:
        raise ValueError("ingest.gate: the raw gate needs the pseudonymisation key")
    settings = {"min_date": min_date, "now": tables.now}
    results, ids = [], []
    with validate.Gate(taxonomy, stage, tolerance, **settings) as runner:
        for table, frame in ((t, f) for t in tables.rows if t in CUSTOMER_TABLES for f in tables.reads(t)):
            shown = cleaning.pseudonymise_staged({table: frame}, key) if stage == "raw" else {table: frame}
            shown = {t: f.drop(columns=[ORDER], errors="ignore") for t, f in shown.items()}
            results.append(runner.run(shown, references=False))
            if "labels" in tables.rows and table == "feedback":
                ids.append(pd.DataFrame({schema.RESPONSE_ID: shown["feedback"][schema.RESPONSE_ID].to_numpy(),
                                         "staged": frame[schema.RESPONSE_ID].to_numpy()}))
        labels = None
        if "labels" in tables.rows:
            labels = tables.work.read(tables.step, "labels").drop(columns=[ORDER], errors="ignore")
            if stage == "raw":
                labels = cleaning.pseudonymise_staged({"labels": labels}, key)["labels"]
            responses = pd.concat(ids, ignore_index=True) if ids else pd.DataFrame(
                columns=[schema.RESPONSE_ID, "staged"], dtype="str")
            if stage == "raw":          # a label's response id as its feedback row's, as pseudonymise_staged does
                lookup = responses.dropna().drop_duplicates("staged").set_index("staged")[schema.RESPONSE_ID]
                labels = labels.assign(**{schema.RESPONSE_ID: labels[schema.RESPONSE_ID].map(lookup)
                                          .fillna(labels[schema.RESPONSE_ID]).astype("str")})
            results.append(runner.run({"labels": labels}, references=False))
    whole = validate.combine(results, taxonomy, stage, tolerance, **settings)
    if labels is not None and "feedback" in tables.rows:
        feedback = responses[[schema.RESPONSE_ID]]
        whole = validate.with_results(whole, validate.reference_results({"labels": labels, "feedback": feedback}, stage))
    return whole


def clean(staged: Parts, taxonomy, key: bytes, *, keep=(), customer_number: str | None = privacy.CUSTOMER_NUMBER,
          min_date: str | pd.Timestamp = schema.MIN_DATE) -> Parts:
    """Clean every bucket (`clean.clean_tables`), then mask personal data in free text with the
    names of all customers (`privacy.scrub_free_text`). Returns the processed parts with the
    combined cleaning log and `scrubbed` counts. Raises CleanError as `clean.clean_tables` does,
    also for a key repeated across buckets."""
    work, settings = staged.work, {"min_date": min_date, "now": staged.now}
    _refuse_keys_across_buckets(staged, key)
    derive = staged.rows.get("customers", 0) == 0
    known = not derive or any(staged.rows.get(t, 0) for t in CUSTOMER_TABLES)
    notes, responses, rows, names = _clean_buckets(staged, taxonomy, key, derive, known, settings)
    if known and rows.get("customers", 0) == 0:       # every customer dropped: nothing links, as for the whole
        notes, responses, rows, names = _clean_buckets(staged, taxonomy, key, derive, False, settings)
    if "labels" in staged.rows:
        labels = cleaning.clean_tables({"labels": work.read("staged", "labels")}, taxonomy, key, **settings,
                                    responses=pd.concat(responses) if responses else None)
        work.write("cleaned", "labels", labels.tables["labels"], 0)
        notes.append(labels.notes)
        rows["labels"] = len(labels.tables["labels"])
    scrubbed = _scrub(work, staged.buckets, names, keep=keep, customer_number=customer_number)
    rows = {t: rows.get(t, 0) for t in schema.TABLES if t in rows}
    return Parts(work, "processed", rows, staged.buckets, staged.now, log=cleaning_log.frame(*notes),
                 scrubbed=scrubbed)


def publish(processed: Parts, processed_dir: str | Path) -> list[Path]:
    """Write the processed tables (and the restricted re-identification table) in table order to
    `processed_dir`, atomically (`catalog.publish`), then remove the work folder."""
    work = processed.work
    writers = {t: (lambda where, t=t: work.write_ordered("processed", t, where)) for t in processed.rows}
    restricted = {schema.REIDENTIFICATION: lambda where: work.write_ordered("reidentification", "customers", where)}
    written = catalog.publish(writers, processed_dir, restricted)
    work.close()
    return written


def describe_scrubbing(processed: Parts) -> str:
    """One sentence on the free text masked (`privacy.describe_scrubbing_counts`)."""
    return privacy.describe_scrubbing_counts(processed.scrubbed)


# --- the passes -------------------------------------------------------------------------------
def _clean_buckets(staged: Parts, taxonomy, key: bytes, derive: bool, known: bool, settings: dict):
    """Clean each bucket into the work folder's "cleaned" parts; returns the notes per bucket,
    the feedback response ids (staged -> processed), rows per table and the CRM names."""
    work = staged.work
    notes, responses, rows, names = [], [], {}, set()
    for number in range(staged.buckets):
        frames = staged.bucket(number)
        frames.pop("labels", None)
        cleaned = cleaning.clean_tables(frames, taxonomy, key, **settings, derive_customers=derive,
                                     customers_known=known)
        for table, frame in cleaned.tables.items():
            work.write("cleaned", table, frame, number)
            rows[table] = rows.get(table, 0) + len(frame)
        work.write("reidentification", "customers", cleaned.reidentification, number)
        notes.append(cleaned.notes)
        if cleaned.responses is not None:
            responses.append(cleaned.responses)
        names |= set(cleaned.reidentification[schema.PII_NAME].dropna().unique())
    return notes, responses, rows, sorted(names)


def _scrub(work: Workspace, buckets: int, names: list[str], *, keep, customer_number) -> dict[str, tuple[int, int]]:
    """Mask personal data in the free text of every cleaned part -> "processed" parts; returns
    table -> (texts changed, texts)."""
    pattern = privacy.name_pattern(pd.Series(names, dtype="str"), keep=keep)     # built once for all parts
    counts: dict[str, tuple[int, int]] = {}
    for table in work.tables("cleaned"):
        for part in work.files("cleaned", table):
            frame = pd.read_parquet(part)
            scrubbed = privacy.scrub_free_text({table: frame}, names_pattern=pattern or "", keep=keep,
                                               customer_number=customer_number)[table]
            number = int(part.stem.split("-")[1])
            work.write("processed", table, scrubbed, number)
            changed, filled = privacy.scrubbing_counts({table: frame}, {table: scrubbed}).get(table, (0, 0))
            if table in privacy.FREE_TEXT:
                old = counts.get(table, (0, 0))
                counts[table] = (old[0] + changed, old[1] + filled)
    work.buckets["processed"] = buckets
    work.buckets["reidentification"] = buckets
    return counts


def _refuse_keys_across_buckets(staged: Parts, key: bytes) -> None:
    """A key shared by rows of two customers sits in two buckets, where a bucket's cleaning
    cannot see it. Before any bucket is cleaned, the engine finds the keys held by more than one
    row; their rows (few) go through cleaning's duplicate rules, which raise the CleanError that
    cleaning the whole table would raise, in the same table order."""
    if staged.buckets == 1:
        return
    work = staged.work
    for table in (t for t in CUSTOMER_TABLES if staged.rows.get(t)):
        staged_key = [schema.CUSTOMER_REF if c == schema.CUSTOMER_ID else c for c in schema.TABLES[table].key]
        expr = work.con.read_parquet(str(work.table_dir("staged", table) / "part-*.parquet"))
        keyed = expr.filter([expr[c].notnull() for c in staged_key])
        repeated = keyed.group_by(staged_key).aggregate(rows=_.count()).filter(_.rows > 1).select(staged_key)
        rows = expr.semi_join(repeated, staged_key).order_by(ORDER).to_pyarrow()
        if rows.num_rows:
            cleaning.refuse_conflicting_keys(as_frame(rows, work.schema("staged", table)), table, key)


def _utc_now(now: pd.Timestamp | None) -> pd.Timestamp:
    stamp = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
