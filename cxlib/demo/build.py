"""Write the demo company of any size in chunks of customers: each chunk is generated, appended
to the exports and counted for the ground truth, then dropped, so memory stays that of one chunk.

Chunk 0 draws from the seed's own streams, chunk c from (seed, c); all chunks share chunk 0's
outages and campaign send times and number their ids on from the chunks before. A run of one
chunk (customers <= chunk_customers) writes exactly what `write_exports(generate(...))` writes.
The contact files are Excel workbooks only then (250,000 customers give ~75,000 contacts a
quarter; 5 million ~1.5 million, more than a sheet's 1,048,576 rows): a run of several chunks
writes them as Parquet (kontakte_<year>_Q<n>.parquet, Zeitpunkt a timestamp); config/sources/demo.yml
maps either.

    write_demo("data/raw", customers=1_000_000, seed=7, progress=print)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from cxlib.demo.base import Chunk
from cxlib.demo.company import generate_chunk
from cxlib.demo.truth import ground_truth, merge_tallies
from cxlib.demo.writers import ExportFolder

CHUNK_CUSTOMERS = 250_000


def chunk_sizes(customers: int, chunk_customers: int = CHUNK_CUSTOMERS) -> list[int]:
    """Customers per chunk: full chunks, the rest in the last. chunk_sizes(600, 250) -> [250, 250, 100]."""
    if int(customers) < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if int(chunk_customers) < 1:
        raise ValueError(f"chunk_customers must be at least 1, got {chunk_customers}")
    full, rest = divmod(int(customers), int(chunk_customers))
    return [int(chunk_customers)] * full + ([rest] if rest else [])


def write_demo(out_dir: str | Path, customers: int = 20000, seed: int = 7, *, chunk_customers: int = CHUNK_CUSTOMERS,
               progress: Callable[[dict], None] | None = None) -> list[Path]:
    """Generate and write the demo company chunk by chunk into `out_dir` (ground truth in
    `_truth/`, atomically as `write_exports`). `progress` gets after each chunk
    {"chunk": i (1-based), "chunks": k, "customers": done so far, "of": customers}.
    Returns the written paths."""
    sizes = chunk_sizes(customers, chunk_customers)
    chunk = Chunk(count=len(sizes), excel=len(sizes) == 1)
    total: dict = {}
    with ExportFolder(out_dir) as folder:
        for i, size in enumerate(sizes):
            company, chunk = generate_chunk(size, seed, chunk, truth_tables=False)
            folder.add(company.files, company.comment_labels)
            total = merge_tallies(total, company.tally) if total else company.tally
            del company
            if progress is not None:
                progress({"chunk": i + 1, "chunks": len(sizes), "customers": sum(sizes[:i + 1]), "of": int(customers)})
        truth = ground_truth(total, customers=int(customers), seed=seed, outages=chunk.outages,
                             chunk_customers=int(chunk_customers) if len(sizes) > 1 else None)
        return folder.publish(truth)
