"""Telko Nord GmbH: a synthetic German telecom provider whose exports look like real ones.

`generate(customers, seed)` builds two years (2024-01-01 .. 2025-12-31) of a mobile and
broadband provider with planted effects and measures their realised size (`ground_truth`);
`write_exports` writes its files (and `_truth/` beside them, which the source mapping never
names); `write_demo` generates and writes any size in chunks of customers (what `cx demo` does);
`has_exports` tells whether a raw folder already holds data files. See docs/demo_company.md.

One module per job, imported here so `from cxlib import demo` reaches the public names:
`base` (time units, DemoCompany, Chunk, vectorised helpers), `vocabulary` (PLANTED and the
exports' vocabulary), `sentences` (comment texts), `world` (people, sales, add-ons, outages,
churn), `contacts`, `feedback` (surveys and comments), `campaigns` (campaigns and the occasion
programme), `web`, `exports` (the files as the systems write them), `truth` (ground truth),
`company` (generate), `writers` (CSV, Excel, Parquet), `build` (write_demo in chunks).

    company = generate(customers=2000, seed=7)
    write_exports(company, "data/raw")
    write_demo("data/raw", customers=1_000_000, seed=7)
"""

from cxlib.demo.base import Chunk, DemoCompany  # noqa: F401
from cxlib.demo.build import CHUNK_CUSTOMERS, chunk_sizes, write_demo  # noqa: F401
from cxlib.demo.company import generate, generate_chunk  # noqa: F401
from cxlib.demo.sentences import CLOSERS, OPENERS, SENTENCES, THEMES, sentence_variants  # noqa: F401
from cxlib.demo.vocabulary import (  # noqa: F401
    ADDON_PRODUCTS, CAMPAIGNS, FIRST_F, FIRST_M, NAME_DAYS, PLANTED, REASON_LABELS,
)
from cxlib.demo.writers import FILE_FORMATS, has_exports, write_exports  # noqa: F401
