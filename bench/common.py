"""What every benchmark shares: the result record, timing, and the report."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from timpora.common.db.engine import driver_connection

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Result:
    name: str
    unit: str
    ours: float
    raw: float
    baseline: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.raw


async def timed(count: int, body: Callable[[], Awaitable[None]]) -> float:
    """``count`` divided by the seconds ``body`` took."""
    started = time.perf_counter()
    await body()
    return count / (time.perf_counter() - started)


async def maintain(engine: AsyncEngine, statement: str, *arguments: object) -> None:
    """Runs a statement that prepares a benchmark (a bulk UPDATE, VACUUM, ANALYZE) with no statement timeout, on its
    own (VACUUM takes no transaction): it is not what is measured, and on a machine half as fast it outlasts the
    services' 30 s limit, which once stopped ``make bench`` before half its benchmarks had run."""
    async with engine.connect() as connection:
        driver = await driver_connection(connection)
        await driver.execute("SET statement_timeout = 0")
        try:
            await driver.execute(statement, *arguments)
        finally:
            # Back to the connection's own limit before the pool hands it to what is measured.
            await driver.execute("RESET statement_timeout")


def report(results: list[Result], written_to: Path = RESULTS / "latest.json") -> None:
    for result in results:
        print(
            f"{result.name}: {result.ours:,.1f} {result.unit} vs raw {result.raw:,.1f} "
            f"-> ratio {result.ratio:.2f} (baseline: {result.baseline}){' ' + result.note if result.note else ''}"
        )
    written_to.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": [asdict(result) | {"ratio": result.ratio} for result in results],
    }
    written_to.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
