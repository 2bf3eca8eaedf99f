"""cxlib: the reusable logic of cx-insights (pure functions on DataFrames; I/O only in
`config`, `sources`, `report` and `pipeline`)."""

__version__ = "0.1.0"
