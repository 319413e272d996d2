"""One agency's 100,000-row CSV export against another agency's reads, in the same sharing service.

Two agencies' projections are seeded with COPY: the exporting one (the regency government, 100,000 people) and
the reading one (the police, a few thousand). The service runs as ``timpora-sharing serve`` runs it, in its own
uvicorn process (one worker, 16 database connections; the process of :mod:`bench.sharing_list`). The police read
pages of 50 of their list at random keyset cursors, ``READERS`` at a time, first alone (the baseline), then while
the regency downloads its whole export as fast as it can read it; alone and under the export alternate for
``rounds`` rounds, so that whatever else the machine does weighs on both alike.

The figure is the police's reads under the export as a ratio to the same reads alone, in the same run (requests
a second, and the median and p99 latency beside it): the issue asks that the export slow them by at most 2x,
i.e. a ratio of at least 0.5. The export's own rate, and that its disclosures were written a page at a time,
are reported beside it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from bench.common import Result, maintain
from bench.http import HttpConnection, Measured, Tally, Target
from bench.sharing_list import (
    AGENCY,
    PAGE,
    Seeded,
    _path,
    _snapshot,
    server,
)
from timpora.common import nationalities, regions, register
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import driver_connection, make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.register.fields import redact
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.sharing import access

READER = "polres-bangkalan"
DATABASE = "timpora_bench_sharing_list"  # the server process of bench.sharing_list reads this database
READERS = 4
READER_ROWS = 5_000


async def _seed(admin_url: str, exported: int) -> tuple[Seeded, str, list[uuid.UUID]]:
    """The exporting agency's ``exported`` people, the reader's own, and a key for each."""
    urls = await fresh_database(admin_url, DATABASE, role_prefix="timpora_bench_list")
    engine = make_engine(DatabaseSettings(url=urls["sharing"]), application_name="bench", schema="sharing")
    agreements = register.current(register.DEFAULT_REGISTER).agreements
    rng, today = random.Random(11), datetime.now(regions.JAKARTA).date()
    villages, countries = regions.villages_within("35.26"), nationalities.all_codes()
    try:
        await upgrade(engine, "timpora.sharing", schema="sharing")
        ids: dict[str, list[uuid.UUID]] = {}
        for agency, count in ((AGENCY, exported), (READER, READER_ROWS)):
            agreement, rows = agreements[agency], []
            for _ in range(count):
                snapshot = _snapshot(rng, today, villages, countries)
                record = json.dumps(redact(snapshot, agreement.allowed))
                rows.append((agency, snapshot.foreigner_id, snapshot.version, agreement.version, True, record))
            async with engine.begin() as connection:
                columns = ["agency_id", "foreigner_id", "version", "agreement_version", "visible", "record"]
                await (await driver_connection(connection)).copy_records_to_table(
                    "projections", records=rows, columns=columns
                )
            ids[agency] = sorted(row[1] for row in rows)
        await maintain(engine, "ANALYZE projections")
        async with make_session_factory(engine)() as session, session.begin():
            _, exporter_key = await access.KEYS.issue(session, AGENCY)
            _, reader_key = await access.KEYS.issue(session, READER)
    finally:
        await engine.dispose()
    return Seeded(url=urls["sharing"], key=exporter_key, ids=ids[AGENCY]), reader_key, ids[READER]


def _describe(measured: Measured, tally: Tally) -> str:
    return (
        f"{measured.rate:,.0f} requests/s, p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms, "
        f"max {_max_ms(tally):.0f} ms"
    )


def _max_ms(tally: Tally) -> float:
    """The longest read: where the export holds the event loop in one block (a whole answer read or disclosed
    at once), a few reads wait that long, too few to show in the p99."""
    return max(tally.latencies) * 1000


@dataclass(frozen=True)
class Exported:
    rows: int
    seconds: float


async def export(target: Target) -> Exported:
    """Downloads the whole CSV export as fast as it comes, and counts its rows."""
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    started = time.perf_counter()
    writer.write(
        f"GET /v1/foreigners.csv HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
        f"Authorization: Bearer {target.key}\r\nConnection: close\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the export was refused: {head[:200]!r}")
    lines = 0
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):  # chunked transfer, chunk by chunk
        lines += (await reader.readexactly(size)).count(b"\n")
        await reader.readexactly(2)
    writer.close()
    # The seeded records hold no line break, so every line is a row; the first is the header.
    return Exported(rows=lines - 1, seconds=time.perf_counter() - started)


async def read_until(target: Target, cursors: list[str], tally: Tally, done: asyncio.Event | None) -> None:
    """``READERS`` connections reading pages at ``cursors`` in turn, until ``done`` (or once through them)."""
    connections = [await HttpConnection.open(target) for _ in range(READERS)]
    position = 0

    async def worker(connection: HttpConnection) -> None:
        nonlocal position
        while (done is None and position < len(cursors)) or (done is not None and not done.is_set()):
            cursor = cursors[position % len(cursors)]
            position += 1
            started = time.perf_counter()
            status, body = await connection.get(_path(cursor))
            tally.latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"unexpected answer {status}: {body[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    tally.seconds += time.perf_counter() - started
    for connection in connections:
        await connection.close()


async def bench_export(admin_url: str, kafka: KafkaSettings, *, exported: int, rounds: int) -> Result:
    seeded, reader_key, reader_ids = await _seed(admin_url, exported)
    rng = random.Random(7)
    cursors = [str(rng.choice(reader_ids[: -PAGE - 1])) for _ in range(2_000)]
    alone, during = Tally(), Tally()
    exports: list[Exported] = []
    async with server("ours", seeded, kafka) as exporter:
        reader = replace(exporter, key=reader_key)
        await read_until(reader, cursors[:200], Tally(), None)  # warm-up
        for _ in range(rounds):
            # Alone: as many requests as the last round under the export took, or a first block of 1,000.
            await read_until(reader, cursors[: max(len(during.latencies) // max(len(exports), 1), 1_000)], alone, None)
            finished = asyncio.Event()
            reads = asyncio.create_task(read_until(reader, cursors, during, finished))
            try:
                exports.append(await export(exporter))
            finally:
                finished.set()
                await reads
    if any(done.rows != exported for done in exports):
        raise AssertionError(f"an export did not hold the {exported:,} rows seeded: {[e.rows for e in exports]}")
    quiet, busy = alone.measured(), during.measured()
    export_rate = sum(done.rows for done in exports) / sum(done.seconds for done in exports)
    print(
        f"  another agency's reads alone:        {_describe(quiet, alone)}\n"
        f"  another agency's reads under export: {_describe(busy, during)}\n"
        f"  the export: {export_rate:,.0f} rows/s ({', '.join(f'{done.seconds:.1f}' for done in exports)} s)"
    )
    return Result(
        name=f"another agency's list reads while one agency exports {exported:,} rows as CSV ({READERS} readers, "
        f"pages of {PAGE}, one uvicorn worker; {rounds} rounds alone / under the export)",
        unit="requests/s",
        ours=busy.rate,
        raw=quiet.rate,
        baseline="the same reads by the same agency, alone, in the same run",
        note=(
            f"p50 {busy.p50_ms:.1f} ms vs {quiet.p50_ms:.1f} alone, p99 {busy.p99_ms:.1f} vs {quiet.p99_ms:.1f} ms, "
            f"max {_max_ms(during):.0f} vs {_max_ms(alone):.0f} ms; "
            f"the export ran at {export_rate:,.0f} rows/s; target: slowed at most 2x (ratio >= 0.5)"
        ),
        target=0.5,
    )


async def run_all(admin_url: str, kafka: KafkaSettings, *, exported: int, rounds: int) -> list[Result]:
    return [await bench_export(admin_url, kafka, exported=exported, rounds=rounds)]
