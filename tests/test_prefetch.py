"""Reading ahead (`prefetch.prefetched`) hands over every item in order, raises the reader's
error where it happened, and stops the reader when the consumer stops."""

from __future__ import annotations

import threading

import pytest

from cxlib.prefetch import prefetched


def test_items_come_in_order_and_the_readers_error_after_the_items_before_it():
    def chunks():
        yield from range(5)
        raise ValueError("the file has a header but no data rows")

    got = []
    with pytest.raises(ValueError, match="no data rows"):
        for item in prefetched(chunks()):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_the_next_item_is_made_in_another_thread_while_the_current_one_is_used():
    made_in = []

    def chunks():
        for item in range(3):
            made_in.append(threading.current_thread().name)
            yield item

    assert list(prefetched(chunks())) == [0, 1, 2]
    assert set(made_in) == {"cx-prefetch"}


def test_a_consumer_that_stops_early_stops_and_closes_the_reader():
    closed = threading.Event()
    made = []

    def chunks():
        try:
            for item in range(1000):
                made.append(item)
                yield item
        finally:
            closed.set()

    items = prefetched(chunks(), depth=2)
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert closed.wait(5) and len(made) <= 6
