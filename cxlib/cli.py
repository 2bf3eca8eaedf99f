"""The `cx` command: `cx demo` writes demo exports, `cx run` runs the notebook pipeline.

Exit codes: 0 success; 1 the run failed (bad data or a failing notebook); 2 usage or
configuration error (nothing was run); 3 another `cx run` of the project is in progress (nothing
was run). Heavy modules are imported only inside commands so that `cx --help` is fast.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
EXIT_CODES = ("Exit codes: 0 ok; 1 run failed (bad data or a failing notebook; reports/latest and data/processed "
              "unchanged); 2 usage or configuration error (unknown parameter, wrong type or range, a folder cx may "
              "not write; nothing run); 3 another cx run of this project is in progress "
              "(lock file reports/.cx-run.lock; nothing run); 130 interrupted (Ctrl-C or SIGTERM; nothing changed).")


def _print(*args, quiet: bool = False, **kw) -> None:
    if not quiet:
        print(*args, **kw, flush=True)


def _project(path: str | None) -> Path:
    from cxlib import config

    return config.find_project_dir(path)


def cmd_demo(args: argparse.Namespace) -> int:
    """Write the demo company's exports to --out (default: the project's raw folder), in chunks of
    --chunk-customers customers (one progress line per chunk on stderr when there are several)."""
    import time

    from cxlib import demo

    out = Path(args.out)
    if args.customers < 1 or args.chunk_customers < 1:
        print("cx demo: --customers and --chunk-customers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.if_empty and demo.has_exports(out):
        _print(f"{out} already holds exports; left them unchanged (remove them to write new demo data)", quiet=args.quiet)
        return EXIT_OK
    chunks = len(demo.chunk_sizes(args.customers, args.chunk_customers))
    _print(f"writing demo exports: {args.customers:,} customers, seed {args.seed} -> {out}"
           + (f" in {chunks} chunks of {args.chunk_customers:,}; contacts as Parquet (kontakte_*.parquet, Excel only "
              f"for one chunk; config/sources/demo.yml reads either)" if chunks > 1 else ""), quiet=args.quiet)
    started = time.monotonic()

    def progress(event: dict) -> None:
        _print(f"chunk {event['chunk']}/{event['chunks']}: {event['customers']:,} of {event['of']:,} customers written "
               f"({time.monotonic() - started:.0f} s)", quiet=args.quiet or chunks == 1, file=sys.stderr)

    written = demo.write_demo(out, args.customers, args.seed, chunk_customers=args.chunk_customers, progress=progress)
    _print(f"wrote {len(written)} files to {out}", quiet=args.quiet)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the notebooks of config/pipeline.yml and write reports/<run_id>/."""
    from cxlib import pipeline

    project_dir = _project(args.project)

    def progress(event: dict) -> None:
        prefix = f"[{event['index']}/{event['total']}] {event['name']} …"
        if event["event"] == "start":
            _print(prefix, end=" ", quiet=args.quiet)
        else:
            word = "ok" if event["status"] == "succeeded" else event["status"].upper()
            _print(f"{word} ({event['duration_s']:.1f} s)", quiet=args.quiet)

    def terminate(signum, frame):     # a scheduler's stop (SIGTERM) ends the run like Ctrl-C: recorded "interrupted"
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        result = pipeline.run(
            project_dir, params_file=args.file, overrides=args.param or [], only=args.only, progress=progress,
        )
    except pipeline.RunLocked as exc:
        print(f"cx run: {exc}", file=sys.stderr, flush=True)
        return EXIT_LOCKED
    if result.failure:
        from cxlib import report

        f = result.failure
        print(f"FAILED {f['notebook']}, {report.failure_where(f)}: {f['ename']}: {f['evalue']}", file=sys.stderr, flush=True)
        print(f"run record: {result.run_dir / 'run.json'} (reports/{pipeline.LATEST} unchanged)", file=sys.stderr, flush=True)
        return EXIT_FAILED
    _print(f"report: {result.latest / 'index.html' if result.latest else result.index}", quiet=args.quiet)
    return EXIT_OK


def cmd_map_draft(args: argparse.Namespace) -> int:
    """Draft a source mapping from export files (cxlib.draft) and write it to --out."""
    from cxlib import draft

    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"cx map draft: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out) if args.out else _draft_out()
    if out.exists() and not args.force:
        print(f"cx map draft: {out} exists; use --force to replace it, or --out for another file", file=sys.stderr)
        return EXIT_USAGE
    proposals = []
    for path in files:
        data = path.read_bytes()[: draft.SAMPLE_BYTES]
        reader = draft.sniff(data, path.name)
        proposals.append(draft.propose(path.name, draft.profile(draft.read_sample(data, path.name, reader)), reader))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(draft.to_yaml(proposals, name=out.stem), encoding="utf-8")
    todo = sum(len(p["todo"]) for p in proposals)
    _print(f"wrote {out}: {len(proposals)} file(s) -> " + ", ".join(f"{p['file']} as {p['table']}" for p in proposals)
           + f"; {todo} TODO(s) to check", quiet=args.quiet)
    return EXIT_OK


def _draft_out() -> Path:
    from cxlib import config

    try:
        return config.find_project_dir() / "config" / "sources" / "draft.yml"
    except config.ConfigError:
        return Path("draft.yml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cx",
        description="cx-insights: customer-experience analytics from exports to HTML reports.",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="write synthetic exports of a demo telecom company",
                          description="Write the demo company's exports (and ground truth in _truth/).")
    demo.add_argument("--customers", type=int, default=20000, help="number of customers (default 20000)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7); same seed, same data")
    demo.add_argument("--out", default="data/raw", help="folder for the exports (default data/raw)")
    demo.add_argument("--chunk-customers", type=int, default=250000,
                      help="customers generated and written at a time (default 250000); more customers than one "
                           "chunk write the contacts as Parquet instead of Excel workbooks")
    demo.add_argument("--if-empty", action="store_true", help="do nothing if the folder already holds exports")
    demo.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser(
        "run", help="run the notebook pipeline and write reports/<run_id>/",
        description="Run the notebooks of config/pipeline.yml in order with papermill, export HTML "
                    "reports without code, write run.json, results.json and index.html, and point "
                    "reports/latest at the run when it succeeds. Safe under cron: a lock keeps runs "
                    "from overlapping, -p retention_days=N deletes run folders older than N days after "
                    "a successful run, each run logs to reports/<run_id>/run.log and one line to "
                    "reports/cx.log. Run-wide parameters: lang (en, de), audience (management, service, "
                    "marketing, sales), retention_days (0 keeps everything).",
        epilog=EXIT_CODES,
    )
    run.add_argument("-f", "--file", metavar="PARAMS.yml",
                     help="parameter file: top-level keys for every notebook, 'notebooks: {NAME: {...}}' for one")
    run.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                     help="set a parameter (YAML scalar); NOTEBOOK.key=value for one notebook; repeatable")
    run.add_argument("--only", action="append", metavar="NOTEBOOK",
                     help="run only this notebook (repeatable), e.g. --only 01_validate_clean")
    run.add_argument("--project", metavar="DIR", help="project folder (default: the one containing the cwd)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    run.set_defaults(func=cmd_run)

    mapping = sub.add_parser("map", help="work with source mappings (cx map draft FILE…)",
                             description="Source mappings: describe how your exports become the canonical tables.")
    map_sub = mapping.add_subparsers(dest="map_command", required=True, metavar="SUBCOMMAND")
    drafting = map_sub.add_parser(
        "draft", help="draft a source mapping from export files",
        description="Read the first rows of each file, guess separator and encoding, the canonical table and "
                    "each column's role (from German and English header names and from the values), and write a "
                    "source mapping with `# TODO` where it could not decide. Check it, then run "
                    "`cx run --only 01_validate_clean -p source=FILE`.",
        epilog=EXIT_CODES)
    drafting.add_argument("files", nargs="+", metavar="FILE", help="export files (CSV, Excel, Parquet)")
    drafting.add_argument("--out", metavar="FILE.yml",
                          help="where to write the mapping (default: config/sources/draft.yml of the project)")
    drafting.add_argument("--force", action="store_true", help="replace --out if it exists")
    drafting.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    drafting.set_defaults(func=cmd_map_draft)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and args.customers < 1:
        parser.error("--customers must be at least 1")
    from cxlib.config import ConfigError

    try:
        return args.func(args)
    except ConfigError as exc:  # includes pipeline.UsageError
        print(f"cx {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
