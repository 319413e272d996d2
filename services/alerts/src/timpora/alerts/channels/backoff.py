"""When a failed delivery is tried again, and when the queue gives up on it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Exponential backoff with jitter, bounded by a give-up horizon.

    The defaults retry for about three days: after 5 s, 20 s, 80 s, ~5 min, ~21 min, ~85 min and ~5.7 h,
    then every 10 h until three days after the first attempt; with the +-20 % jitter that is 13 to 16
    attempts in all. The jitter spreads the retries of many alerts that failed together (one receiver down)
    so that they do not all return at the same moment.
    """

    first_delay: timedelta = timedelta(seconds=5)
    factor: float = 4.0
    max_delay: timedelta = timedelta(hours=10)
    give_up_after: timedelta = timedelta(days=3)
    jitter: float = 0.2  # +-20 %

    def __post_init__(self) -> None:
        if self.first_delay <= timedelta(0) or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("a retry schedule needs first_delay > 0, factor >= 1 and 0 <= jitter < 1")

    def next_attempt_at(
        self,
        *,
        attempts_made: int,
        first_attempt_at: datetime,
        now: datetime,
        retry_after: timedelta | None,
        rng: random.Random,
    ) -> datetime | None:
        """When to try again after `attempts_made` failed attempts, or None to give up (the next attempt would
        fall after first_attempt_at + give_up_after). The delay is first_delay*factor**(attempts_made-1) capped
        at max_delay, with +-jitter; a retry_after from the receiver is honoured when longer (never shorter
        than it)."""
        if attempts_made < 1:
            raise ValueError("the schedule is asked only after a failed attempt")
        delay = self.base_delay(attempts_made) * (1 + rng.uniform(-self.jitter, self.jitter))
        if retry_after is not None:
            delay = max(delay, retry_after)
        next_at = now + delay
        if next_at > first_attempt_at + self.give_up_after:
            return None
        return next_at

    def base_delay(self, attempts_made: int) -> timedelta:
        """The delay after `attempts_made` failed attempts, before jitter."""
        try:
            seconds = self.first_delay.total_seconds() * self.factor ** max(attempts_made - 1, 0)
        except OverflowError:  # attempts far past the cap
            return self.max_delay
        return timedelta(seconds=min(seconds, self.max_delay.total_seconds()))
