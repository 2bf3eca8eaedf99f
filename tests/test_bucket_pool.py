"""bucket_pool runs a function over tasks here or in worker processes with the same results, in
task order, the same first error, and a clear error when a worker dies."""

from __future__ import annotations

import functools
import gc
import os
import weakref

import pytest

from cxlib import bucket_pool


def shifted(state, task):
    """task + the state's offset, and the process that computed it."""
    return task + state["offset"], os.getpid()


def failing(state, task):
    if task in (3, 5):
        raise ValueError(f"bucket {task} cannot be cleaned")
    return task


def dying(state, task):
    if task == 2:
        os._exit(3)
    return task


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_in_task_order_with_the_state_made_once_per_process(workers):
    setup = functools.partial(dict, offset=100)
    got = list(bucket_pool.run(shifted, range(7), workers=workers, setup=setup))
    assert [value for value, _ in got] == [100, 101, 102, 103, 104, 105, 106]
    pids = {pid for _, pid in got}
    if workers == 1:
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_the_first_failing_task_raises_as_one_after_the_other_would():
    messages = []
    for workers in (1, 2):
        with pytest.raises(ValueError) as raised:
            list(bucket_pool.run(failing, range(8), workers=workers))
        messages.append(str(raised.value))
    assert messages == ["bucket 3 cannot be cleaned"] * 2


def test_one_task_or_one_worker_runs_here_and_closes_its_state():
    closed = []
    got = list(bucket_pool.run(shifted, [5], workers=4, setup=functools.partial(dict, offset=1), close=closed.append))
    assert got == [(6, os.getpid())] and closed == [{"offset": 1}]


def test_a_worker_that_dies_stops_the_work_with_a_clear_error():
    with pytest.raises(bucket_pool.WorkerDied, match="lower `workers` or `bucket_rows`"):
        list(bucket_pool.run(dying, range(4), workers=2))


def test_the_largest_tasks_start_first_and_results_still_come_in_task_order():
    got = list(bucket_pool.run(started, range(6), workers=2, sizes=[1, 1, 1, 1, 1, 9]))
    assert [task for task, _ in got] == list(range(6))
    by_start = [task for task, _ in sorted(got, key=lambda result: result[1])]
    assert 5 in by_start[:2]                       # handed out first (in task order it would start last)


def started(state, task):
    """task and when it started (monotonic clock: one machine)."""
    import time
    moment = time.monotonic()
    time.sleep(0.2)
    return task, moment


ORPHANED = """
import sys, time
from pathlib import Path
from cxlib import bucket_pool

def waiting(state, task):
    import os
    Path(sys.argv[1], str(os.getpid())).write_text("started")
    time.sleep(120)

if __name__ == "__main__":
    list(bucket_pool.run(waiting, range(2), workers=2))
"""


def test_workers_end_themselves_when_the_process_that_started_them_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script, pids = tmp_path / "orphans.py", tmp_path / "pids"
    script.write_text(ORPHANED, encoding="utf-8")
    pids.mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(pids)])
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.name) for p in pids.iterdir()]
        assert len(workers) == 2 and all(running(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 3 * bucket_pool.ORPHAN_CHECK + 10
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(pid) for pid in workers)          # not after their 120 s task


def running(pid: int) -> bool:
    """The process exists and is not a zombie (Linux /proc)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Bucket:
    """Stands for a task's data (weak references can follow it)."""


def leaves_a_cycle(seen: list, task, *, old: bool = False):
    """Holds a `Bucket` in a local while an exception is raised and caught into a cycle (as a
    library that tries to parse a value does), and reports whether the previous task's bucket
    (in this process) was still alive when this one started. `old`: the cycle is moved to the
    oldest generation before the task ends, as a long task's cycles are."""
    previous_alive = bool(seen) and seen[-1]() is not None
    bucket = Bucket()
    seen.append(weakref.ref(bucket))
    try:
        raise ValueError("not a float")
    except ValueError as exc:
        errors = [exc]                      # exc -> traceback -> this frame -> errors -> exc
    if old:
        gc.collect()                        # still reachable: survivors go to the oldest generation
    return previous_alive, len(errors), os.getpid()


def no_collections() -> list:
    """A worker's state: a list of weak references, and no automatic collection in the worker."""
    gc.disable()
    return []


def test_what_a_task_left_in_garbage_cycles_is_freed_before_the_next_task():
    seen: list = []
    enabled = gc.isenabled()
    gc.disable()                            # only bucket_pool collects, so the test is deterministic
    try:
        got = list(bucket_pool.run(leaves_a_cycle, range(3), workers=1, setup=lambda: seen))
    finally:
        if enabled:
            gc.enable()
    assert [(alive, errors) for alive, errors, _ in got] == [(False, 1)] * 3
    assert seen[-1]() is None               # the last task's bucket too, once the work is done


def test_a_worker_frees_what_a_task_left_in_old_garbage_cycles_before_the_next_task():
    got = list(bucket_pool.run(functools.partial(leaves_a_cycle, old=True), range(6), workers=2, setup=no_collections))
    assert [alive for alive, _, _ in got] == [False] * 6    # 6 tasks in at most 2 processes: some followed another
    assert os.getpid() not in {pid for _, _, pid in got}
