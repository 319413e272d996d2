"""Per-agency request limits: a fixed one-minute window per API key, in the process's memory.

With several sharing instances each enforces its own window, so an agency gets at most the limit
times the number of instances; the limit protects the service from one agency's runaway script.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from uuid import UUID

WINDOW_S = 60.0


@dataclass
class RateLimiter:
    per_minute: int
    _windows: dict[UUID, tuple[float, int]] = field(default_factory=dict)

    def check(self, key_id: UUID, now: float | None = None) -> float | None:
        """None if the request may go ahead, else the seconds to wait before trying again."""
        now = time.monotonic() if now is None else now
        started, used = self._windows.get(key_id, (now, 0))
        if now - started >= WINDOW_S:
            started, used = now, 0
        if used >= self.per_minute:
            return max(1.0, math.ceil(started + WINDOW_S - now))
        self._windows[key_id] = (started, used + 1)
        return None
