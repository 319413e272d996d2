"""Resident memory of the three services under a steady load: the whole system as ``make run`` starts it, each
service its own process, driven through the registry API at a steady rate of events for ten minutes.

Half the events are arrivals of new people, half their residence reports in a village; the registry's relay
publishes them, the sharing service projects them for every shipped agreement and publishes the agencies' copies,
and the alerts service routes each residence report to a village reached by webhook (a local receiver). Every
service's resident memory (VmRSS) is sampled every few seconds. Memory that grows with time under a constant load is a
leak, or a queue that is not kept up with: what is compared is each process at the end of the load with itself once
it warmed up (after the first minute), beside the 250 MB ceiling. At the end the benchmark checks that the system
kept up: every event projected and every alert delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.alerts import SECRET_VARIABLE, VILLAGE, files, receiver
from bench.common import Result
from bench.http import MEMORY_CEILING_MB, HttpConnection, Target, resident_mb
from bench.registry_api import arrival, operator_token
from tests.support.processes import ServiceProcess, start_service
from timpora.alerts.channels.webhook import new_secret
from timpora.common.db.bootstrap import fresh_database
from timpora.common.kafka.admin import consumer_lag
from timpora.common.register.destinations import ALLOWED_NETWORKS_VARIABLE
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.sharing.settings import SharingSettings

SERVICES = ("registry", "alerts", "sharing")
CONNECTIONS = 16
SAMPLE_EVERY_S = 5.0


@dataclass
class Samples:
    """Each service's resident memory, in MB, with the seconds into the load it was read at."""

    taken: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {name: [] for name in SERVICES})

    def read(self, processes: dict[str, ServiceProcess], at: float) -> None:
        for name, process in processes.items():
            self.taken[name].append((at, resident_mb(process.process.pid)))

    def first_after(self, name: str, seconds: float) -> float:
        return next(mb for at, mb in self.taken[name] if at >= seconds)


async def _person(connection: HttpConnection, index: int) -> None:
    """An arrival, then the person's residence in the benchmark's village: two events."""
    status, answer = await connection.post("/v1/arrivals", json.dumps(arrival(index, "S")).encode())
    if status != 201:
        raise RuntimeError(f"arrival refused: {status} {answer[:300]!r}")
    person = json.loads(answer)["foreigner_id"]
    residence = {"address": "Jl. Raya Arosbaya 12", "village_code": VILLAGE, "since": "2026-11-21"}
    status, answer = await connection.post(f"/v1/foreigners/{person}/residence", json.dumps(residence).encode())
    if status != 200:
        raise RuntimeError(f"residence refused: {status} {answer[:300]!r}")


async def load(
    target: Target, rate: int, seconds: float, samples: Samples, processes: dict[str, ServiceProcess]
) -> tuple[int, float]:
    """``rate`` events a second (``rate / 2`` people) for ``seconds``, on a fixed schedule; the people sent, and the
    seconds until the last was answered."""
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(await HttpConnection.open(target))
    failures: list[BaseException] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int) -> None:
        connection = await pool.get()
        try:
            await _person(connection, index)
        except Exception as error:  # noqa: BLE001 - reported after the load, with the first failure's cause
            failures.append(error)
        finally:
            pool.put_nowait(connection)

    people = int(rate / 2 * seconds)
    interval = 2 / rate
    started = time.perf_counter()
    next_sample = 0.0
    for index in range(people):
        due = started + index * interval
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(one(index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if (elapsed := time.perf_counter() - started) >= next_sample:
            samples.read(processes, elapsed)
            next_sample += SAMPLE_EVERY_S
        if failures:
            break
    await asyncio.gather(*tasks)
    took = time.perf_counter() - started
    samples.read(processes, took)
    while not pool.empty():
        await pool.get_nowait().close()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed under the steady load") from failures[0]
    return people, took


async def _caught_up(kafka: KafkaSettings, receiver_url: str, people: int, timeout_s: float = 600) -> float:
    """Waits until the sharing service has projected every event and the village was sent every alert; the seconds
    that took after the load's end."""
    sharing = SharingSettings(kafka=kafka)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            lag = await consumer_lag(kafka, sharing.consumer_group, kafka.catalog.registry_events.name)
            delivered = (await client.get(f"{receiver_url}/count")).json()["count"]
            if lag == 0 and delivered >= people:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"after {timeout_s} s: sharing {lag} events behind, {delivered} of {people} alerts")
            await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def _system(
    urls: dict[str, str], kafka: KafkaSettings, hook: str, directory: Path
) -> AsyncIterator[dict[str, ServiceProcess]]:
    agencies, rules = files(directory, hook, event_types=("foreigner.residence-reported",))
    extra = {
        "alerts": {
            "TIMPORA_REGISTER_FILE": str(agencies),
            "TIMPORA_ALERTS_RULES_FILE": str(rules),
            SECRET_VARIABLE: new_secret(),
            # The receiver listens on loopback, which webhooks reach only where the operator allows it.
            ALLOWED_NETWORKS_VARIABLE: "127.0.0.1/32",
        }
    }
    processes: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            database = DatabaseSettings(url=urls[name])
            processes[name] = start_service(
                name, kafka=kafka, database=database, log=directory / f"{name}.log", extra=extra.get(name)
            )
        for process in processes.values():
            await process.ready()
        yield processes
    finally:
        for process in processes.values():
            await process.stop()


async def bench_steady(admin_url: str, kafka: KafkaSettings, *, rate: int, seconds: float) -> list[Result]:
    urls = await fresh_database(admin_url, "timpora_bench_steady", role_prefix="timpora_bench_steady")
    token = await operator_token(urls["registry"])
    kafka = kafka.model_copy(update={"namespace": f"bench-steady-{uuid.uuid4().hex[:6]}"})
    samples = Samples()
    warm_s = min(60.0, seconds / 5)
    with receiver() as base, tempfile.TemporaryDirectory(prefix="bench-steady-") as directory:
        async with _system(urls, kafka, f"{base}/hook", Path(directory)) as processes:
            registry = processes["registry"]
            target = Target(port=registry.port, pid=registry.process.pid, key=token)
            people, took = await load(target, rate, seconds, samples, processes)
            drained = await _caught_up(kafka, base, people)
            peaks = {name: resident_mb(process.process.pid, peak=True) for name, process in processes.items()}
    kept = f"{people * 2:,} events in {took:.1f} s ({people * 2 / took:,.0f} a second)"
    print(f"  steady load: {kept}; all projected and alerted {drained:.1f} s after")
    results = []
    for name in SERVICES:
        warm, end = samples.first_after(name, warm_s), samples.taken[name][-1][1]
        results.append(
            Result(
                name=f"resident memory of the {name} service after {seconds:.0f} s at {rate} events/s through the "
                f"registry API (at the end, against itself after the first {warm_s:.0f} s)",
                unit="MB",
                ours=end,
                raw=warm,
                baseline=f"the same process after the first {warm_s:.0f} s of the same load",
                note=f"peak {peaks[name]:.0f} MB; {kept}, all projected and alerted {drained:.1f} s after the load "
                "ended; target: growth <= 10 %, at most 250 MB",
                target=1.1,
                lower_is_better=True,
                ceiling=MEMORY_CEILING_MB,
            )
        )
    return results
