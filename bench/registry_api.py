"""The registry API's most common write, recording an arrival (``POST /v1/arrivals``), against a raw Starlette +
asyncpg endpoint that writes the same rows: the person, the arrival's movement, the history row and the outbox row,
in one transaction.

Ours is the service itself, started as ``make run`` starts it (``python -m timpora.registry.main serve``, one
uvicorn worker, its logs, its background passes), with 16 database connections and its relay off: publishing the
outbox is the relay's benchmark. The raw endpoint runs in its own uvicorn process, 16 asyncpg connections. Both write
into one fresh database, and both are driven by the same client loop, 16 keep-alive connections, each request a new
person, in alternating blocks. Before the timing, one arrival each: both must answer the same body and store the same
rows (but for the person's id, passport number, event id and times).

The raw endpoint skips what the service does besides the four inserts: the operator-token lookup, validating the
command with pydantic (and every rule of an arrival: a passport that expired, a ban in force, a returning person
matched by passport), locking and reading back the person, building the CloudEvent through its pydantic model.

    .venv/bin/python -m bench.registry_api raw PORT      (the raw server process the benchmark starts)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import Result
from bench.http import Call, HttpConnection, Served, Tally, Target, describe, drive, resident_mb, side_by_side
from tests.support.processes import free_port, start_service
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.events.catalog import spec_named
from timpora.common.service import EVENT_LOOP
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.registry.operators import add_operator
from timpora.registry.settings import RegistrySettings

DATABASE = "timpora_bench_api"
OPERATOR = "bench-officer"
CONCURRENCY = 16
POOL = 16
WARM_UP = 200
BLOCK = 500  # requests to one side before the other's turn
ENV_URL, ENV_TOPIC = "BENCH_API_URL", "BENCH_API_TOPIC"
REPO = Path(__file__).resolve().parent.parent
ARRIVED = spec_named("foreigner.arrived")


def arrival(index: int, side: str) -> dict[str, Any]:
    """The ``index``-th arrival sent to ``side``: a new person each time (a passport number of its own)."""
    return {
        "full_name": f"Li Wei {index}",
        "sex": "M" if index % 2 else "F",
        "date_of_birth": f"{1960 + index % 40}-0{1 + index % 9}-1{index % 10}",
        "nationality": "CHN",
        "passport": {"number": f"{side}{index:09d}", "issuing_country": "CHN", "expires_on": "2031-01-01"},
        "occupation": "engineer",
        "port": "Juanda International Airport",
        "arrived_on": "2026-11-20",
        "visa": {"index": "C3", "number": f"V{index:08d}"},
    }


# --- the raw endpoint (its own process) ------------------------------------------------------------

INSERT_FOREIGNER = (
    "INSERT INTO foreigners (id, version, full_name, sex, date_of_birth, nationality, passport_number, "
    "passport_country, passport_expires_on, occupation, presence, arrival_port, arrival_on, visa_index, visa_number, "
    "created_by, updated_by) VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, 'present', $10, $11, $12, $13, $14, $14)"
)
INSERT_MOVEMENT = (
    "INSERT INTO movements (id, foreigner_id, kind, port, \"on\", recorded_by) VALUES ($1, $2, 'arrival', $3, $4, $5)"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, event_type, topic, partition_key, headers, payload) "
    "VALUES ($1, $2, $3, $4, $5::jsonb, $6)"
)
INSERT_HISTORY = (
    "INSERT INTO history (foreigner_id, version, event_id, event_type, actor, occurred_at, data) "
    "VALUES ($1, 1, $2, $3, $4, $5, $6::jsonb)"
)


async def _raw_arrival(request: Request) -> Response:
    """The same four rows as the service writes for a new person, the same body back; nothing checked."""
    command = json.loads(await request.body())
    passport, visa = command["passport"], command["visa"]
    person, event_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    snapshot = {
        "foreigner_id": str(person),
        "version": 1,
        "full_name": command["full_name"],
        "sex": command["sex"],
        "date_of_birth": command["date_of_birth"],
        "nationality": command["nationality"],
        "passport": passport,
        "previous_passports": [],
        "occupation": command["occupation"],
        "sponsor": None,
        "residence": None,
        "stay": None,
        "permit": None,
        "presence": "present",
        "arrival": {"port": command["port"], "on": command["arrived_on"]},
        "visa": visa,
        "departure": None,
        "reentry_ban": None,
    }
    data = json.dumps({"foreigner": snapshot, "jurisdiction": None, "arrival": snapshot["arrival"]})
    headers = json.dumps(
        {
            "ce_specversion": "1.0",
            "ce_id": str(event_id),
            "ce_source": request.app.state.source,
            "ce_type": ARRIVED.ce_type,
            "ce_time": now.isoformat().replace("+00:00", "Z"),
            "ce_dataschema": ARRIVED.dataschema,
            "content-type": "application/json",
            "ce_subject": str(person),
        }
    )
    actor, topic = OPERATOR, request.app.state.topic
    async with request.app.state.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            INSERT_FOREIGNER, person, command["full_name"], command["sex"],
            date.fromisoformat(command["date_of_birth"]), command["nationality"],
            passport["number"], passport["issuing_country"], date.fromisoformat(passport["expires_on"]),
            command["occupation"], command["port"], date.fromisoformat(command["arrived_on"]),
            visa["index"], visa["number"], actor,
        )  # fmt: skip
        await connection.execute(
            INSERT_MOVEMENT, uuid.uuid4(), person, command["port"], date.fromisoformat(command["arrived_on"]), actor
        )
        await connection.execute(INSERT_OUTBOX, event_id, ARRIVED.ce_type, topic, str(person), headers, data)
        await connection.execute(INSERT_HISTORY, person, event_id, ARRIVED.name, actor, now, data)
    return Response(json.dumps(snapshot), status_code=201, media_type="application/json", headers={"ETag": '"1"'})


def raw_app() -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = os.environ[ENV_URL].replace("postgresql+asyncpg://", "postgresql://", 1)
        settings = {"application_name": "bench-raw", "search_path": "registry"}
        app.state.pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL, server_settings=settings)
        app.state.topic, app.state.source = os.environ[ENV_TOPIC], RegistrySettings().event_source
        try:
            yield
        finally:
            await app.state.pool.close()

    return Starlette(routes=[Route("/v1/arrivals", _raw_arrival, methods=["POST"])], lifespan=lifespan)


def serve_raw(port: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    # The services' event loop, as the registry's own server has (timpora.common.service.server_config).
    uvicorn.run(raw_app(), host="127.0.0.1", port=port, log_config=None, access_log=False, loop=EVENT_LOOP)


# --- seeding, starting, driving -------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    url: str
    token: str


async def seed(admin_url: str) -> Seeded:
    """A fresh, migrated registry database and an operator's token."""
    urls = await fresh_database(admin_url, DATABASE, role_prefix="timpora_bench_api")
    return Seeded(url=urls["registry"], token=await operator_token(urls["registry"]))


async def operator_token(url: str) -> str:
    """The registry database at ``url`` migrated, and the token of a new operator of it."""
    engine = make_engine(DatabaseSettings(url=url), application_name="bench", schema="registry")
    try:
        await upgrade(engine, "timpora.registry", schema="registry")
        async with make_session_factory(engine)() as session, session.begin():
            return await add_operator(session, OPERATOR)
    finally:
        await engine.dispose()


@asynccontextmanager
async def ours_server(seeded: Seeded, kafka: KafkaSettings, logs: Path) -> AsyncIterator[Target]:
    """The registry service as ``make run`` starts it, with 16 database connections and no relay."""
    database = DatabaseSettings(url=seeded.url)  # its URL; the pool is set in the process's environment below
    extra = {
        "TIMPORA_REGISTRY_RELAY__ENABLED": "false",
        "TIMPORA_REGISTRY_DATABASE__POOL_SIZE": str(POOL),
        "TIMPORA_REGISTRY_DATABASE__MAX_OVERFLOW": "0",
        "TIMPORA_REGISTRY_LOG_LEVEL": "WARNING",
    }
    process = start_service("registry", kafka=kafka, database=database, log=logs / "registry.log", extra=extra)
    try:
        await process.ready()
        yield Target(port=process.port, pid=process.process.pid, key=seeded.token)
    finally:
        await process.stop()


@asynccontextmanager
async def raw_server(seeded: Seeded, topic: str) -> AsyncIterator[Target]:
    port = free_port()
    env = os.environ | {ENV_URL: seeded.url, ENV_TOPIC: topic}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.registry_api", "raw", str(port), cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    target = Target(port=port, pid=process.pid, key=seeded.token)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"the raw server exited with {process.returncode}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the raw server did not listen within 60 s")
            await asyncio.sleep(0.2)
        yield target
    finally:
        process.terminate()
        await process.wait()


def _arrivals(side: str, start: int, count: int) -> list[Call]:
    """Posting ``count`` new people to ``side``, numbered from ``start``."""
    bodies = (json.dumps(arrival(index, side)).encode() for index in range(start, start + count))
    return [functools.partial(HttpConnection.post, path="/v1/arrivals", body=body) for body in bodies]


def _neutral(value: Any, person: str, passport: str) -> Any:  # noqa: ANN401 - JSON
    """``value`` with what differs by design between two arrivals replaced: the person's id and passport number."""
    text = json.dumps(value, default=str).replace(person, "PERSON").replace(passport, "PASSPORT")
    return json.loads(text)


async def stored(url: str, passport: str) -> dict[str, Any]:
    """The rows an arrival left, keyed by table, without what is unique to each write (ids, event ids, times)."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await connection.execute("SET search_path = registry")
        person = await connection.fetchrow("SELECT * FROM foreigners WHERE passport_number = $1", passport)
        if person is None:
            raise AssertionError(f"no person with passport {passport} was written")
        movement = await connection.fetch(
            'SELECT kind, port, "on", recorded_by FROM movements WHERE foreigner_id = $1', person["id"]
        )
        history = await connection.fetch(
            "SELECT version, event_type, actor, data FROM history WHERE foreigner_id = $1", person["id"]
        )
        outbox = await connection.fetch(
            "SELECT event_type, topic, partition_key, headers, payload FROM outbox WHERE partition_key = $1",
            str(person["id"]),
        )
    finally:
        await connection.close()
    unique = {"id", "created_at", "updated_at"}
    headers_unique = {"ce_id", "ce_time"}
    rows = {
        "foreigners": {name: value for name, value in person.items() if name not in unique},
        "movements": [dict(row) for row in movement],
        "history": [dict(row) | {"data": json.loads(row["data"])} for row in history],
        "outbox": [
            dict(row)
            | {
                "headers": {k: v for k, v in json.loads(row["headers"]).items() if k not in headers_unique},
                "payload": json.loads(row["payload"]),
            }
            for row in outbox
        ],
    }
    neutral: dict[str, Any] = _neutral(rows, str(person["id"]), passport)
    return neutral


async def same_results(ours: Target, raw: Target, url: str) -> None:
    """One arrival each, alike but for the passport number: the same answer, the same rows."""
    answers = []
    for target, side in ((ours, "O"), (raw, "R")):
        body = arrival(0, side)
        connection = await HttpConnection.open(target)
        try:
            status, answer = await connection.post("/v1/arrivals", json.dumps(body).encode())
        finally:
            await connection.close()
        if status != 201:
            raise RuntimeError(f"unexpected answer {status}: {answer[:300]!r}")
        decoded = json.loads(answer)
        number = body["passport"]["number"]
        answers.append((_neutral(decoded, decoded["foreigner_id"], number), await stored(url, number)))
    if answers[0][0] != answers[1][0]:
        raise AssertionError(f"the raw endpoint answers otherwise than the service: {answers}")
    if answers[0][1] != answers[1][1]:
        raise AssertionError(f"the raw endpoint stores otherwise than the service: {answers}")


async def bench_writes(admin_url: str, kafka: KafkaSettings, *, requests: int) -> list[Result]:
    seeded = await seed(admin_url)
    kafka = kafka.model_copy(update={"namespace": f"bench-api-{uuid.uuid4().hex[:6]}"})
    with tempfile.TemporaryDirectory(prefix="bench-api-") as logs:
        async with (
            ours_server(seeded, kafka, Path(logs)) as ours,
            raw_server(seeded, kafka.catalog.registry_events.name) as raw,
        ):
            await same_results(ours, raw, seeded.url)
            # Warm-up, then alternating blocks of new people, so that whatever else the machine does weighs on both.
            for target, side in ((ours, "O"), (raw, "R")):
                await drive(target, _arrivals(side, 1, WARM_UP), Tally(), concurrency=CONCURRENCY, expected=201)
            tallies = Tally(), Tally()
            for start in range(WARM_UP + 1, WARM_UP + 1 + requests, BLOCK):
                count = min(BLOCK, WARM_UP + 1 + requests - start)
                for target, side, tally in zip((ours, raw), "OR", tallies, strict=True):
                    await drive(target, _arrivals(side, start, count), tally, concurrency=CONCURRENCY, expected=201)
            peaks = resident_mb(ours.pid, peak=True), resident_mb(raw.pid, peak=True)
    mine, theirs = tallies[0].measured(), tallies[1].measured()
    print(f"  registry writes, ours: {describe(mine)}\n  registry writes, raw:  {describe(theirs)}")
    return side_by_side(
        f"registry API writes: {requests:,} arrivals of new people (POST /v1/arrivals, {CONCURRENCY} concurrent, "
        "one uvicorn worker each)",
        Served(mine, peaks[0]),
        Served(theirs, peaks[1]),
        service="registry",
        baseline="raw Starlette + asyncpg endpoint: the same four rows (person, movement, history, outbox) in one "
        "transaction, the same body back",
        note="ours also authenticates the operator, validates the command and every rule of an arrival, locks and "
        "reads the person back and builds the event through its model",
    )


if __name__ == "__main__":
    serve_raw(int(sys.argv[2]))
