"""What every benchmark shares: the result record, timing, and the report."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

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


def report(results: list[Result]) -> None:
    for result in results:
        print(
            f"{result.name}: {result.ours:,.1f} {result.unit} vs raw {result.raw:,.1f} "
            f"-> ratio {result.ratio:.2f} (baseline: {result.baseline}){' ' + result.note if result.note else ''}"
        )
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": [asdict(result) | {"ratio": result.ratio} for result in results],
    }
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
