"""Driving an HTTP server process the way the HTTP benchmarks do: keep-alive connections that cost the load generator
little CPU, the latencies and CPU time of each side's timed requests, and what its process holds in memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Result

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Measured:
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # the server process's CPU time per request
    client_cpu_ms: float  # this process's (the load generator's)


@dataclass
class Tally:
    """What one side's timed requests add up to, over the blocks it was driven."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0

    def measured(self) -> Measured:
        latencies = sorted(self.latencies)
        return Measured(
            rate=len(latencies) / self.seconds,
            p50_ms=latencies[len(latencies) // 2] * 1000,
            p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
            cpu_ms=self.cpu_seconds / len(latencies) * 1000,
            client_cpu_ms=self.client_cpu_seconds / len(latencies) * 1000,
        )


@dataclass(frozen=True)
class Target:
    port: int
    pid: int
    key: str


class HttpConnection:
    """One keep-alive HTTP/1.1 connection. httpx took about 1 ms of CPU a request, more than the raw server itself,
    and capped the raw baseline on these shared cores; this takes a tenth."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target) -> None:
        self.reader, self.writer = reader, writer
        self.host = f"Host: 127.0.0.1:{target.port}\r\nAuthorization: Bearer {target.key}\r\n".encode()

    @classmethod
    async def open(cls, target: Target) -> HttpConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        return cls(reader, writer, target)

    async def get(self, path: str) -> tuple[int, bytes]:
        """The status and body of ``GET path``."""
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.host + b"\r\n")
        return await self._answer()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """The status and body of ``POST path`` with a JSON ``body``."""
        self.writer.write(
            b"POST " + path.encode() + b" HTTP/1.1\r\n" + self.host + b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        return await self._answer()

    async def _answer(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = CONTENT_LENGTH.search(head)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head!r}")
        return int(head[9:12]), await self.reader.readexactly(int(length[1]))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


#: One request on a connection: its status and body.
Call = Callable[[HttpConnection], Awaitable[tuple[int, bytes]]]


async def drive(target: Target, calls: Iterable[Call], tally: Tally, *, concurrency: int, expected: int) -> None:
    """Makes each call, ``concurrency`` at a time on keep-alive connections of their own, and adds what they took to
    ``tally``: each one's latency, and the server's and this process's CPU time. Any other status than ``expected``
    stops it (what the answers hold is compared once, before the timing)."""
    queue = iter(calls)
    connections = [await HttpConnection.open(target) for _ in range(concurrency)]

    async def worker(connection: HttpConnection) -> None:
        for call in queue:
            started = time.perf_counter()
            status, body = await call(connection)
            tally.latencies.append(time.perf_counter() - started)
            if status != expected:
                raise RuntimeError(f"unexpected answer {status}: {body[:300]!r}")

    cpu, client_cpu, started = cpu_seconds(target.pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    tally.seconds += time.perf_counter() - started
    tally.cpu_seconds += cpu_seconds(target.pid) - cpu
    tally.client_cpu_seconds += time.process_time() - client_cpu
    for connection in connections:
        await connection.close()


def describe(measured: Measured) -> str:
    return (
        f"{measured.rate:,.0f} requests/s, p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms, "
        f"CPU a request: server {measured.cpu_ms:.2f} ms, client {measured.client_cpu_ms:.2f} ms"
    )


def cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` has used, user and system."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mb(pid: int, *, peak: bool = False) -> float:
    """Process ``pid``'s resident memory now (VmRSS), or the most it has held since it started (VmHWM), in MB."""
    wanted = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(wanted):
            return int(line.split()[1]) * 1024 / 1_000_000  # the kernel counts kB (KiB)
    raise RuntimeError(f"process {pid} reports no {wanted}")


#: The most resident memory a service may hold under its benchmark (issue 12).
MEMORY_CEILING_MB = 250.0


@dataclass(frozen=True)
class Served:
    """What one side of an HTTP benchmark measured: its requests, and its server's peak resident memory."""

    measured: Measured
    peak_mb: float


def side_by_side(name: str, ours: Served, raw: Served, *, service: str, baseline: str, note: str) -> list[Result]:
    """An HTTP benchmark's three figures: throughput (ours at least half of raw's), p99 latency (at most three times
    raw's), and the server's peak resident memory (at most ``MEMORY_CEILING_MB``)."""
    mine, theirs = ours.measured, raw.measured
    return [
        Result(
            name=name,
            unit="requests/s",
            ours=mine.rate,
            raw=theirs.rate,
            baseline=baseline,
            note=(
                f"p50 {mine.p50_ms:.1f} ms vs raw {theirs.p50_ms:.1f} ms; server CPU {mine.cpu_ms:.2f} vs "
                f"{theirs.cpu_ms:.2f} ms a request; {note}"
            ),
            target=0.5,
        ),
        Result(
            name=f"{name}: p99 latency",
            unit="ms",
            ours=mine.p99_ms,
            raw=theirs.p99_ms,
            baseline="the raw endpoint's p99, same requests, same run",
            target=3.0,
            lower_is_better=True,
        ),
        Result(
            name=f"{name}: the {service} service's peak resident memory",
            unit="MB",
            ours=ours.peak_mb,
            raw=raw.peak_mb,
            baseline="the raw endpoint's process, same requests, same run",
            lower_is_better=True,
            ceiling=MEMORY_CEILING_MB,
        ),
    ]
