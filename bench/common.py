"""What every benchmark shares: the result record, timing, and the report."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from timpora.common.db.engine import driver_connection
from timpora.common.kafka.admin import records_to_end
from timpora.common.settings import KafkaSettings

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Result:
    name: str
    unit: str
    ours: float
    raw: float
    baseline: str
    note: str = ""
    #: The ratio the issues ask for (ours ÷ raw at least this, or at most it where lower is better); None: none.
    target: float | None = None
    lower_is_better: bool = False
    #: The most ``ours`` may be, in its own unit (resident memory: 250 MB), whatever the ratio; None: no ceiling.
    ceiling: float | None = None

    @property
    def ratio(self) -> float:
        return self.ours / self.raw

    @property
    def met(self) -> bool | None:
        checks: list[bool] = []
        if self.target is not None:
            checks.append(self.ratio <= self.target if self.lower_is_better else self.ratio >= self.target)
        if self.ceiling is not None:
            checks.append(self.ours <= self.ceiling)
        return all(checks) if checks else None

    @property
    def target_text(self) -> str:
        parts: list[str] = []
        if self.target is not None:
            parts.append(f"ratio {'≤' if self.lower_is_better else '≥'} {self.target:g}")
        if self.ceiling is not None:
            parts.append(f"ours ≤ {self.ceiling:g} {self.unit}")
        return ", ".join(parts) or "—"


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


#: A Kafka record as both sides of a benchmark write it: key, value, headers.
Record = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes]]]


@dataclass(frozen=True)
class Digest:
    """How many records, and the sum of their hashes mod 2**64: the same for the same records as a multiset, in
    whatever order and partitions they were written (a lost, doubled or altered record changes it), without
    keeping a million of them to compare. Python salts its hashes per process: compare digests of one run only."""

    count: int
    total: int

    @classmethod
    def of(cls, records: Iterable[Record]) -> Digest:
        count = total = 0
        for record in records:
            count += 1
            total += cls.hash(record)
        return cls(count, total % 2**64)

    @staticmethod
    def hash(record: Record) -> int:
        key, value, headers = record
        return hash((key, value, tuple(headers)))

    def __add__(self, other: Digest) -> Digest:
        return Digest(self.count + other.count, (self.total + other.total) % 2**64)

    def __mul__(self, times: int) -> Digest:
        return Digest(self.count * times, self.total * times % 2**64)


async def topic_digest(kafka: KafkaSettings, topic: str) -> Digest:
    """The digest of every record ``topic`` holds, read once from its start to its end as of now."""
    count = total = 0
    async for record in records_to_end(kafka, topic):
        count += 1
        total += Digest.hash((record.key, record.value, record.headers))
    return Digest(count, total % 2**64)


def same_records(what: str, expected: Digest, **sides: Digest) -> None:
    """Raises AssertionError unless each side holds the ``expected`` records, as a multiset."""
    for side, held in sides.items():
        if held != expected:
            other = ", not the same ones" if held.count == expected.count else ""
            raise AssertionError(f"{what}: {side} holds {held.count:,} records, {expected.count:,} expected{other}")


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


#: Where ``make bench`` writes its table in bench/README.md, between these two lines.
TABLE_START = "<!-- make bench: the latest run's table, rewritten by every full run -->"
TABLE_END = "<!-- end of the table -->"


def table(results: list[Result], command: str, when: datetime) -> str:
    """The results as a Markdown table, with when, where and how they were measured."""
    load = os.getloadavg()[0]
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        TABLE_START,
        "",
        f"{when:%Y-%m-%d %H:%M} UTC, {machine}, load average {load:.1f} at the end; `{command}`",
        "",
        "| benchmark | ours | raw | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        met = {None: "—", True: "yes", False: "**no**"}[result.met]
        lines.append(
            f"| {result.name} | {result.ours:,.1f} {result.unit} | {result.raw:,.1f} {result.unit}: {result.baseline} "
            f"| {result.ratio:.2f} | {result.target_text} | {met} |"
        )
    lines += ["", TABLE_END]
    return "\n".join(lines)


def rewrite_table(readme: Path, results: list[Result], command: str, when: datetime) -> None:
    """Puts the table in ``readme`` in place of the previous run's (after the title, the first time)."""
    text = readme.read_text(encoding="utf-8")
    new = table(results, command, when)
    if TABLE_START in text and TABLE_END in text:
        before, _, rest = text.partition(TABLE_START)
        _, _, after = rest.partition(TABLE_END)
        text = before + new + after
    else:
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{new}\n{rest}"
    readme.write_text(text, encoding="utf-8")
