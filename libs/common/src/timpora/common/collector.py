"""Python's cycle collector, spared the objects a process keeps alive: what a service's start made, and what bulk
work holds to its end."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def start_spared() -> Iterator[None]:
    """Around a started service's life: everything alive once it has started (its modules, app, settings, register,
    pools) is moved out of the collector's reach (``gc.freeze``), and handed back when it stops.

    Why: each of the collector's full passes walks every object it tracks, and a started service tracks about
    160,000 that never become garbage. Under the list endpoint's load a full pass came about once a second and took
    60-100 ms, a pause that every request in flight waited out: it made the endpoint's p99 (measured in
    ``bench.sharing_list``: full passes of 54-104 ms, 1-2 ms with the start spared). An object out of the
    collector's reach is still freed by its reference count when let go; only a cycle among such objects (and what
    it holds) waits for the hand-back. What a start makes is kept to the stop; what is spared again at the end of
    bulk work (below) includes the few objects of requests in flight then, a one-time cost bounded by them."""
    _spared_starts.append(None)
    _spare_what_is_alive()
    try:
        yield
    finally:
        _spared_starts.pop()
        gc.unfreeze()
        if _spared_starts:  # another service started in this process is still running
            _spare_what_is_alive()


#: One entry for each spared start in force in this process (tests start several services in one). Looked at when
#: bulk work ends, not when it begins: a service's first rebuild may begin before its start is spared.
_spared_starts: list[None] = []


def _spare_what_is_alive() -> None:
    # The garbage first: what is frozen is what is still in use.
    gc.collect()
    gc.freeze()


@contextmanager
def collector_spared() -> Iterator[Callable[[], None]]:
    """For bulk work that keeps many objects alive to its end (an import's batches, a rebuild's events): yields
    ``keep``, to call after each batch, which moves every object alive so far out of the collector's reach
    (``gc.freeze``). Each of the collector's full passes walks every object it tracks, so over a growing heap of
    objects that make no cycles they cost more than the work (measured, the collector off: an import 55 -> 34 us a
    row, a rebuild 66 -> 34 us an event; kept every 1,000 events instead, a rebuild 74-87 -> 40-42 us, off 34-42).

    The collector itself stays on: a service's other tasks (its API, its consumers) go on making cycles while a
    rebuild runs inside it, and those are still collected, all but the few made since the last collection when
    ``keep`` is called, which wait for the block's end. There, everything kept is handed back to the collector
    (``gc.unfreeze``), whatever happened. Inside a service whose start is spared (:func:`start_spared`) that
    hands its start back too; so, the garbage collected, what is still alive is spared again: otherwise the first
    rebuild would bring back for good the full passes the start was spared. That collection is one full pass over
    what is alive: let go of the bulk work's own objects before the block ends (the rebuild returns from an inner
    function), or the pass walks all of them."""
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()
        if _spared_starts:
            _spare_what_is_alive()
