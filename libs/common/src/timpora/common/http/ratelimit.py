"""Request limits: a fixed one-minute window per key (an API key, a client address), in the process's memory.

With several instances each enforces its own window, so a caller gets at most the limit times the number of
instances; the limits protect a service from a runaway script or a key guesser, they are not a quota.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

WINDOW_S = 60.0
#: Windows kept at most: past it, windows that ended are dropped, and if none has, a new key is refused for now.
#: One window per client address is a few hundred bytes: a flood of spoofed addresses cannot grow it without end.
CAPACITY = 100_000

KeyT = TypeVar("KeyT", bound=Hashable)


@dataclass
class RateLimiter(Generic[KeyT]):
    per_minute: int
    capacity: int = CAPACITY
    _windows: dict[KeyT, tuple[float, int]] = field(default_factory=dict)

    def check(self, key: KeyT, now: float | None = None) -> float | None:
        """Counts a request of ``key``: None if it may go ahead, else the seconds to wait before trying again."""
        now = time.monotonic() if now is None else now
        started, used = self._windows.get(key, (now, 0))
        if now - started >= WINDOW_S:
            started, used = now, 0
        if used >= self.per_minute:
            return max(1.0, math.ceil(started + WINDOW_S - now))
        if key not in self._windows and len(self._windows) >= self.capacity and not self._prune(now):
            return WINDOW_S
        self._windows[key] = (started, used + 1)
        return None

    def waiting(self, key: KeyT, now: float | None = None) -> float | None:
        """Whether ``key`` has used up its window, without counting a request: None, or the seconds to wait."""
        now = time.monotonic() if now is None else now
        started, used = self._windows.get(key, (now, 0))
        if now - started >= WINDOW_S or used < self.per_minute:
            return None
        return max(1.0, math.ceil(started + WINDOW_S - now))

    def _prune(self, now: float) -> bool:
        ended = [key for key, (started, _) in self._windows.items() if now - started >= WINDOW_S]
        for key in ended:
            del self._windows[key]
        return len(self._windows) < self.capacity
