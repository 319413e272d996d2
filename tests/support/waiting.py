"""Tests wait on conditions, never on sleeps sized for a fast machine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(
    condition: Callable[[], Awaitable[bool]], *, what: str, timeout_s: float = 120.0, every_s: float = 0.02
) -> None:
    """Returns once ``condition()`` holds, asked every ``every_s``; fails naming ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(every_s)
