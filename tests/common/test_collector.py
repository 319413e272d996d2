"""The cycle collector spared what a service's start made, and what bulk work keeps (timpora.common.collector)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from timpora.common import collector
from timpora.common.collector import collector_spared, start_spared


class _Node:
    """An object the collector tracks, which can be in a cycle and be watched by a weak reference."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _tracked(thing: object) -> bool:
    """Whether the collector's full passes walk ``thing`` (a frozen object is in none of its generations)."""
    return any(candidate is thing for candidate in gc.get_objects())


@pytest.fixture(autouse=True)
def _nothing_frozen() -> Iterator[None]:
    # These tests freeze the test process itself: each starts and ends with nothing frozen and no start spared,
    # whatever it did (a start left spared would make every later rebuild or import in the process freeze for good).
    gc.unfreeze()
    yield
    collector._spared_starts.clear()  # the module's own record, reset between tests
    gc.unfreeze()


def test_what_was_alive_when_the_service_started_is_out_of_the_full_passes_until_it_stops() -> None:
    made_at_start = _Node()

    with start_spared():
        spared = not _tracked(made_at_start)
        made_later = _Node()
        later_walked = _tracked(made_later)

    assert spared
    assert later_walked
    assert _tracked(made_at_start)  # handed back at the stop
    assert gc.get_freeze_count() == 0


def test_bulk_work_inside_a_started_service_leaves_its_start_spared_and_its_own_garbage_collected() -> None:
    made_at_start = _Node()
    with start_spared():
        with collector_spared() as keep:
            first, second = _Node(), _Node()
            first.other, second.other = second, first  # a cycle: only the collector frees it
            gone = weakref.ref(first)
            keep()
            del first, second
        collected = gone() is None
        start_still_spared = not _tracked(made_at_start)

    assert collected  # not frozen for good by the sparing again
    assert start_still_spared  # without it, a service's first rebuild brings back its full passes for good


def test_bulk_work_that_began_before_the_start_was_spared_still_leaves_it_spared() -> None:
    # The sharing service's first rebuild starts with the service, before its start is spared; it ends later.
    bulk = collector_spared()
    bulk.__enter__()
    start = start_spared()
    start.__enter__()
    made_while_started = _Node()
    bulk.__exit__(None, None, None)
    spared_after_the_bulk_work = not _tracked(made_while_started)
    start.__exit__(None, None, None)

    assert spared_after_the_bulk_work
    assert gc.get_freeze_count() == 0


def test_bulk_work_outside_any_service_hands_everything_back() -> None:
    kept = _Node()
    with collector_spared() as keep:
        keep()
        kept_then = not _tracked(kept)

    assert kept_then
    assert _tracked(kept)
    assert gc.get_freeze_count() == 0


def test_two_services_started_in_one_process_the_first_stopped_leaves_the_other_spared() -> None:
    with start_spared():
        second = start_spared()
        second.__enter__()
        made_before_the_first_stopped = _Node()
    # The first (outer) stopped, the second runs on: what is alive is spared again for it.
    spared = not _tracked(made_before_the_first_stopped)
    second.__exit__(None, None, None)

    assert spared
    assert gc.get_freeze_count() == 0
