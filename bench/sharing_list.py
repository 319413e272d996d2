"""The sharing service's list endpoint (``GET /v1/foreigners``) over 100,000 foreigners, against a raw
Starlette + asyncpg endpoint that runs the same SELECT.

One agency's projection is seeded with COPY (each record is ``redact`` of a full snapshot, as the
consumer stores it). Each side is served the same way: its own uvicorn process (one worker, uvicorn's
defaults as ``timpora-sharing serve`` uses them, no access log, 16 database connections), started by
this benchmark. Both are driven by the same client loop, 16 keep-alive connections at once, over the
same random keyset cursors (a page of 50 each), in alternating blocks so that whatever else the
machine does weighs on both alike. Both answer the same body; that is checked before the timing.

The raw endpoint skips what the service does besides the query: the API-key lookup, the agreement
and rate-limit checks, query validation with pydantic, filtering each record through the agreement
in force, response serialisation through the response model, and the hash-chained disclosure-log
insert (gathered with those of concurrent reads into one transaction after the read, and durable
before the answer).

    .venv/bin/python -m bench.sharing_list ours|raw PORT     (the server process the benchmark starts)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench import http
from bench.common import Result, maintain
from bench.http import HttpConnection, Measured, Served, Tally, Target, describe, resident_mb, side_by_side
from tests.support.processes import free_port
from timpora.common import nationalities, regions, register
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import driver_connection, make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.events.payloads import (
    ForeignerSnapshot,
    Passport,
    Permit,
    PermitStatus,
    PermitType,
    PresenceStatus,
    Residence,
    Sex,
    Sponsor,
)
from timpora.common.kafka.admin import ensure_topics
from timpora.common.register.agreements import Agreement
from timpora.common.register.fields import redact
from timpora.common.service import EVENT_LOOP
from timpora.common.settings import DatabaseSettings, HttpSettings, KafkaSettings, OverstaySettings, RelaySettings
from timpora.sharing import access
from timpora.sharing.main import create_app
from timpora.sharing.settings import SharingSettings

AGENCY = "pemkab-bangkalan"
DATABASE = "timpora_bench_sharing_list"
# The ours server's namespace: an empty registry topic and a consumer group of its own, never the real service's.
NAMESPACE = "bench-sharing-list"
CONCURRENCY = 16
PAGE = 50
POOL = 16
WARM_UP = 300
BLOCK = 500  # requests to one side before the other's turn
ENV_URL, ENV_KAFKA = "BENCH_SHARING_LIST_URL", "BENCH_SHARING_LIST_KAFKA"
# What SQLAlchemy sends for the service's query (compiled by its asyncpg dialect), cursor and all: the rows of
# the agency stored under the version of its agreement in force, of people present (the default filter).
RAW_SQL = (
    "SELECT projections.foreigner_id, projections.record, projections.time_zone FROM projections "
    "WHERE projections.agency_id = $1::VARCHAR AND projections.visible IS true "
    "AND projections.agreement_version = $2::INTEGER AND (projections.record ->> $3::TEXT) = $4::VARCHAR "
    "AND projections.foreigner_id > $5::UUID ORDER BY projections.foreigner_id LIMIT $6::INTEGER"
)
NAMES = ("Li Wei", "Nguyen Van An", "Maria Santos", "John Smith", "Ahmed Hassan", "Kim Min-jun", "Aiko Tanaka")
OCCUPATIONS = (None, "teacher", "engineer", "fisherman", "missionary", "chef", "student")
REPO = Path(__file__).resolve().parent.parent


# --- seeding -----------------------------------------------------------------------------------


def _agreement() -> Agreement:
    """The agency's agreement in the shipped register (both servers serve the rows stored under it)."""
    return register.current(register.DEFAULT_REGISTER).agreements[AGENCY]


def _snapshot(rng: random.Random, today: date, villages: list[str], countries: list[str]) -> ForeignerSnapshot:
    issued = today - timedelta(days=rng.randint(90, 700))
    permit = Permit(
        permit_id=uuid.uuid4(),
        number=f"ITAS{rng.randrange(10**8):08d}",
        type=rng.choice(list(PermitType)),
        issued_on=issued,
        expires_on=today + timedelta(days=rng.randint(-60, 700)),
        status=rng.choice([PermitStatus.ACTIVE, PermitStatus.EXTENDED]),
    )
    country = rng.choice(countries)
    return ForeignerSnapshot(
        foreigner_id=uuid.uuid4(),
        version=rng.randint(1, 5),
        full_name=f"{rng.choice(NAMES)} {rng.randrange(10_000)}",
        sex=rng.choice(list(Sex)),
        date_of_birth=date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)),
        nationality=country,
        passport=Passport(number=f"E{rng.randrange(10**8):08d}", issuing_country=country, expires_on=date(2031, 1, 1)),
        occupation=rng.choice(OCCUPATIONS),
        sponsor=Sponsor(sponsor_id=uuid.uuid4(), name="PT Madura Sejahtera", kind="employer"),
        residence=Residence(address="Jl. Raya Arosbaya 12", village_code=rng.choice(villages), since=issued),
        permit=permit,
        presence=PresenceStatus.PRESENT,
    )


def projection_rows(count: int, agreement: Agreement, today: date) -> list[tuple[object, ...]]:
    """``count`` visible projection rows, each exactly as the consumer stores it (``redact`` of a snapshot)."""
    rng = random.Random(5)
    villages, countries = regions.villages_within("35.26"), nationalities.all_codes()
    rows: list[tuple[object, ...]] = []
    for _ in range(count):
        snapshot = _snapshot(rng, today, villages, countries)
        record = json.dumps(redact(snapshot, agreement.allowed))
        rows.append((AGENCY, snapshot.foreigner_id, snapshot.version, agreement.version, True, record))
    return rows


@dataclass(frozen=True)
class Seeded:
    url: str
    key: str
    ids: list[uuid.UUID]


async def seed(admin_url: str, count: int) -> Seeded:
    """A fresh database holding ``count`` foreigners in the agency's projection, and an API key for it."""
    urls = await fresh_database(admin_url, DATABASE, role_prefix="timpora_bench_list")
    engine = make_engine(DatabaseSettings(url=urls["sharing"]), application_name="bench", schema="sharing")
    try:
        await upgrade(engine, "timpora.sharing", schema="sharing")
        agreement = _agreement()
        rows = projection_rows(count, agreement, datetime.now(regions.JAKARTA).date())
        async with engine.begin() as connection:
            driver = await driver_connection(connection)
            columns = ["agency_id", "foreigner_id", "version", "agreement_version", "visible", "record"]
            await driver.copy_records_to_table("projections", records=rows, columns=columns)
        await maintain(engine, "ANALYZE projections")
        async with make_session_factory(engine)() as session, session.begin():
            _, key = await access.KEYS.issue(session, AGENCY)
    finally:
        await engine.dispose()
    return Seeded(url=urls["sharing"], key=key, ids=sorted(cast("uuid.UUID", row[1]) for row in rows))


# --- the two servers (run in their own process) ---------------------------------------------------


def ours_app() -> FastAPI:
    """The service's own app, as ``timpora-sharing serve`` builds it; no relay, no practical rate limit."""
    settings = SharingSettings(
        kafka=KafkaSettings.model_validate_json(os.environ[ENV_KAFKA]),
        database=DatabaseSettings(url=os.environ[ENV_URL], pool_size=POOL, max_overflow=0),
        http=HttpSettings(),
        register_file=register.DEFAULT_REGISTER,
        relay=RelaySettings(enabled=False),
        rate_limit_per_minute=10**9,
        log_level="WARNING",
    )
    return create_app(settings)


def _with_status(record: dict[str, Any], today: date) -> dict[str, Any]:
    """The fields the service derives, computed here by hand: the raw side returns the same body without
    calling the service's code. Every seeded person is present on an open permit (see ``_snapshot``)."""
    if "permit_expires_on" not in record:
        return record
    days = (date.fromisoformat(record["permit_expires_on"]) - today).days
    overstayed = -days if days < 0 else None
    rule = OverstaySettings()
    beyond = overstayed is not None and overstayed > rule.fee_limit_days
    derived: dict[str, Any] = {"days_to_expiry": days, "overstaying": days < 0, "days_overstayed": overstayed}
    if "permit_fee_paid_days" in record:
        paid = record["permit_fee_paid_days"] or 0
        owed = None if overstayed is None or beyond else max(0, overstayed - paid) * rule.fee_per_day_idr
        derived["overstay_fee_due_idr"] = owed
    return record | derived | {"deportation_due": beyond}


async def _raw_list(request: Request) -> JSONResponse:
    limit = int(request.query_params.get("limit", PAGE))
    cursor = uuid.UUID(request.query_params.get("cursor", "00000000-0000-0000-0000-000000000000"))
    version = request.app.state.agreement_version
    rows = await request.app.state.pool.fetch(RAW_SQL, AGENCY, version, "presence", "present", cursor, limit)
    items = [_with_status(json.loads(row["record"]), datetime.now(ZoneInfo(row["time_zone"])).date()) for row in rows]
    next_cursor = str(rows[-1]["foreigner_id"]) if len(rows) == limit else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


def raw_app() -> Starlette:
    """One route: the same SELECT on an asyncpg pool, the same derived fields, the same JSON shape."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = os.environ[ENV_URL].replace("postgresql+asyncpg://", "postgresql://", 1)
        settings = {"application_name": "bench-raw", "search_path": "sharing"}
        app.state.pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL, server_settings=settings)
        app.state.agreement_version = _agreement().version
        try:
            yield
        finally:
            await app.state.pool.close()

    return Starlette(routes=[Route("/v1/foreigners", _raw_list)], lifespan=lifespan)


def serve(kind: str, port: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    app = ours_app() if kind == "ours" else raw_app()
    # The services' event loop on both sides (timpora.common.service.server_config).
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop=EVENT_LOOP)


# --- driving them ---------------------------------------------------------------------------------


@asynccontextmanager
async def server(kind: str, seeded: Seeded, kafka: KafkaSettings) -> AsyncIterator[Target]:
    """Starts the ``kind`` server process and waits until it answers."""
    target = Target(port=free_port(), pid=0, key=seeded.key)
    # The whole connection, password included, to the child only (its environment, never its arguments).
    plain = kafka.model_dump(mode="json") | {
        "namespace": NAMESPACE,
        "sasl_password": kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
    }
    env = os.environ | {ENV_URL: seeded.url, ENV_KAFKA: json.dumps(plain)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.sharing_list", kind, str(target.port), cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    try:
        await _wait_ready(target, process)
        yield replace(target, pid=process.pid)
    finally:
        process.terminate()
        await process.wait()


async def _wait_ready(target: Target, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            connection = await HttpConnection.open(target)
            try:
                if (await connection.get(_path(limit=1)))[0] == 200:
                    return
            finally:
                await connection.close()
        await asyncio.sleep(0.2)
    raise TimeoutError("the server did not answer within 90 s")


def _path(cursor: str | None = None, limit: int = PAGE) -> str:
    return f"/v1/foreigners?limit={limit}" + (f"&cursor={cursor}" if cursor else "")


def cursors(ids: list[uuid.UUID], count: int, *, seed: int) -> list[str]:
    """``count`` cursors anywhere in the projection but its last page."""
    rng = random.Random(seed)
    return [str(rng.choice(ids[: -PAGE - 1])) for _ in range(count)]


async def drive(target: Target, pages: list[str], tally: Tally) -> None:
    """Requests one page per cursor, ``CONCURRENCY`` at a time, and adds what it took to ``tally``."""
    calls = [functools.partial(HttpConnection.get, path=_path(cursor)) for cursor in pages]
    await http.drive(target, calls, tally, concurrency=CONCURRENCY, expected=200)


async def _page(target: Target, cursor: str) -> Any:  # noqa: ANN401 - JSON
    connection = await HttpConnection.open(target)
    try:
        status, body = await connection.get(_path(cursor))
    finally:
        await connection.close()
    if status != 200:
        raise RuntimeError(f"unexpected answer {status}: {body[:200]!r}")
    return json.loads(body)


async def compare(ours: Target, raw: Target, pages: list[str]) -> tuple[Measured, Measured]:
    """Checks both answer the same, warms both up, then times them in alternating blocks of ``BLOCK``
    requests over the same cursors, so that whatever else the machine does weighs on both alike."""
    if await _page(ours, pages[0]) != await _page(raw, pages[0]):
        raise AssertionError("the raw endpoint does not answer what the service answers")
    for target in (ours, raw):
        await drive(target, pages[:WARM_UP], Tally())
    tallies = Tally(), Tally()
    for start in range(0, len(pages), BLOCK):
        for target, tally in zip((ours, raw), tallies, strict=True):
            await drive(target, pages[start : start + BLOCK], tally)
    return tallies[0].measured(), tallies[1].measured()


async def bench_list(admin_url: str, kafka: KafkaSettings, *, foreigners: int, requests: int) -> list[Result]:
    seeded = await seed(admin_url, foreigners)
    await ensure_topics(kafka, [kafka.model_copy(update={"namespace": NAMESPACE}).catalog.registry_events])
    pages = cursors(seeded.ids, requests, seed=99)
    async with server("ours", seeded, kafka) as ours_server, server("raw", seeded, kafka) as raw_server:
        ours, raw = await compare(ours_server, raw_server, pages)
        ours_mb, raw_mb = resident_mb(ours_server.pid, peak=True), resident_mb(raw_server.pid, peak=True)
    print(f"  sharing list, ours: {describe(ours)}\n  sharing list, raw:  {describe(raw)}")
    return side_by_side(
        f"list endpoint over {foreigners:,} foreigners ({requests:,} pages of {PAGE} at random keyset "
        f"cursors, {CONCURRENCY} concurrent, one uvicorn worker each)",
        Served(ours, ours_mb),
        Served(raw, raw_mb),
        service="sharing",
        baseline="raw Starlette + asyncpg endpoint: the same SELECT, the same derived fields and JSON body",
        note="ours also authenticates the key, filters each record through the agreement and writes the "
        "disclosure log (group commit) before it answers",
    )


async def run_all(admin_url: str, kafka: KafkaSettings, *, foreigners: int, requests: int) -> list[Result]:
    return await bench_list(admin_url, kafka, foreigners=foreigners, requests=requests)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
