"""Reading ahead: the next item of a slow iterator (a file's chunks, an engine's batches) made in
a background thread while the caller works on the current one.

    for chunk in prefetched(source.chunks()): ...
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator


def prefetched(items: Iterable, depth: int = 1) -> Iterator:
    """The items of `items`, the next `depth` of them made in a background thread while the
    caller works on the current one (parsing a file overlaps mapping its previous chunk: the
    readers release the GIL for much of their work). The producer's exceptions come through in
    order; a consumer that stops early stops the producer."""
    handoff: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop, done = threading.Event(), object()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                handoff.put((True, item))
            else:
                handoff.put((True, done))
        except BaseException as exc:               # handed to the consumer, raised there
            handoff.put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close is not None:
                close()

    thread = threading.Thread(target=produce, name="cx-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = handoff.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():                   # unblock a producer waiting to hand over
            try:
                handoff.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()
