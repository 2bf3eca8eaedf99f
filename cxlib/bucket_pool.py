"""Run one function over many customer buckets, in this process or in worker processes.

Stage 01 checks and cleans its buckets independently of each other; with `workers` > 1 they
run in that many worker processes (started fresh, not forked from a process that holds engine
threads), each holding one bucket at a time, so memory grows with `workers` x bucket size.
Results come back in the order of the tasks, and the first task that raised (in task order)
raises the same exception here, as running them one after the other would. A worker that dies
(killed, out of memory) stops the work with `WorkerDied`; the garbage cycles a task leaves are
collected before the next task starts (fully in a worker, the young generations in the caller's
process: `_collected`); a worker whose starting process has
gone (a killed `cx run` or kernel) ends itself within `ORPHAN_CHECK` seconds instead of
finishing its bucket for nobody. Worker processes import the
caller's main module, as `multiprocessing` does: a script that runs stage 01 keeps its work under
`if __name__ == "__main__":` (notebooks and `cx run` need nothing).

    results = bucket_pool.run(clean_one, tasks, workers=2, setup=functools.partial(make_state, ...))
    # clean_one(state, task) -> result; `setup()` makes `state` once per process (None: no state)

`setup` and the tasks are pickled to the workers: module-level functions, `functools.partial`
of them, and plain data.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

_STATE: dict = {}            # in a worker process: the state `setup` made for it
ORPHAN_CHECK = 1.0           # seconds between a worker's checks that the process that started it still runs
GC_GENERATION = 1            # garbage collected after a task in this process: the young generations (about 1 ms)


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its task (killed, or out of memory)."""


def run(function: Callable, tasks: Iterable, *, workers: int = 1, setup: Callable | None = None,
        close: Callable | None = None, sizes: Sequence[float] | None = None) -> Iterator:
    """`function(state, task)` for every task, in task order, where `state = setup()` (None without
    `setup`) is made once per process; `close(state)` after the last task in this process.
    One worker, or one task, runs here; more run in `workers` processes, which start on the tasks
    of the largest `sizes` first (so a large task does not start last), whatever order the
    results come back in."""
    tasks = list(tasks)
    if int(workers) <= 1 or len(tasks) <= 1:
        yield from _here(function, tasks, setup, close)
        return
    starts = sorted(range(len(tasks)), key=lambda i: -sizes[i]) if sizes is not None else range(len(tasks))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(int(workers), len(tasks)), mp_context=context,
                             initializer=_start, initargs=(setup,)) as pool:
        submitted = {i: pool.submit(_call, function, tasks[i]) for i in starts}
        futures = [submitted[i] for i in range(len(tasks))]
        try:
            for future in futures:
                yield future.result()
        except BrokenProcessPool as exc:
            raise WorkerDied("a worker process of stage 01 ended without finishing its bucket: killed, out of "
                             "memory (lower `workers` or `bucket_rows`), or started from a script that lacks "
                             "`if __name__ == \"__main__\":`") from exc
        finally:
            for future in futures:
                future.cancel()


def _here(function: Callable, tasks: list, setup: Callable | None, close: Callable | None) -> Iterator:
    state = setup() if setup is not None else None
    try:
        for task in tasks:
            yield _collected(function, state, task)
    finally:
        if close is not None:
            close(state)


def _start(setup: Callable | None) -> None:
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), name="cx-orphan-watch", daemon=True).start()
    _STATE["state"] = setup() if setup is not None else None


def _exit_when_orphaned(parent: int) -> None:
    """End this worker process once `parent`, which started it, has gone (it is then adopted)."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK)
    os._exit(1)


def _call(function: Callable, task):
    """A task in a worker process, then a full collection of the garbage cycles it left. After
    the first task everything still alive (the imports, the state, what the first task set up)
    is frozen out of later collections, which then take about a millisecond."""
    try:
        return function(_STATE.get("state"), task)
    finally:
        gc.collect()
        if not _STATE.get("frozen"):
            gc.freeze()
            _STATE["frozen"] = True


def _collected(function: Callable, state, task):
    """`function(state, task)` in this process, then the young garbage cycles it left collected.

    An exception caught inside a library (Great Expectations builds its results through
    pydantic, which catches one per value it tries to parse) keeps every frame of the call, the
    task's bucket among their locals, alive through its traceback until Python collects the
    cycle, which for a cycle that has grown old is its next full collection: at 5,000,000
    customers that held up to 0.8 GB more per worker. Here, in the caller's process, only the
    young generations are collected (about 1 ms; a full collection of a kernel's objects takes
    0.15 s); worker processes, which hold the large runs, collect fully (`_call`)."""
    try:
        return function(state, task)
    finally:
        gc.collect(GC_GENERATION)
