"""Fault injection (issue 14): the platform, two instances of each service as real processes, under a steady load of
registry writes through the API, with a fault injected at a random instant; then the checker (tests/faults/platform)
proves from the registry's committed history that nothing was lost and no effect doubled.

`make test` runs each scenario once with a short load; `make faults` runs them longer and writes the table to
bench/faults.md (TIMPORA_FAULTS=full)."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.faults.platform import (
    INSTANCES,
    Load,
    Platform,
    Proxied,
    connected,
    overstay_alerts,
    platform,
    row,
    settled,
    write_table,
)
from tests.support.cluster import NODES, Cluster
from tests.support.stack import REPO
from tests.support.waiting import until
from timpora.alerts.lifecycle import ESCALATED
from timpora.alerts.models import alerts
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.events import KafkaRecord, decode
from timpora.common.events.payloads import ForeignerEvent
from timpora.common.kafka.admin import records_to_end
from timpora.common.kafka.producer import EventProducer
from timpora.registry.models import foreigners, history, permits
from timpora.sharing.models import projections

pytestmark = [pytest.mark.realstack, pytest.mark.timeout(600)]

FULL = os.environ.get("TIMPORA_FAULTS") == "full"
#: How long the load runs before and after the fault.
LOAD_S = 30.0 if FULL else 6.0
#: Every scenario's row, for bench/faults.md.
TABLE: list[dict[str, Any]] = []


async def _kill_and_restart(running: Platform, service: str) -> int:
    instance = random.randrange(INSTANCES)
    running.kill(service, instance)
    await asyncio.sleep(random.uniform(0.5, 2.0))  # down for a moment, as after a crash
    await running.restart(service, instance)
    return 1


async def _mail_refused(running: Platform) -> int:
    """The mail server answers the next messages "try later" (each is retried after its backoff)."""
    refusals = 5
    running.smtp.refuse_next("451 4.3.0 Try again later", count=refusals)
    return refusals


async def _webhook_failing(running: Platform) -> int:
    """The police's webhook endpoint answers 503 for a few seconds, then hangs past the sender's timeout for a few
    more, then takes everything again (each failed message is tried again after its backoff)."""
    receiver = running.webhook
    before = len(receiver.requests)
    receiver.respond_with(503)
    await asyncio.sleep(random.uniform(2.0, 4.0))
    receiver.respond_with(200, delay_s=5.0)  # the sender gives up after 2 s (platform.py)
    await asyncio.sleep(random.uniform(2.0, 4.0))
    receiver.respond_with(200)
    # The attempts that failed: answered with an error, or (still) not answered in time.
    return sum(1 for request in receiver.requests[before:] if request.status >= 300 or request not in receiver.answered)


async def _connections_disturbed(running: Platform) -> int:
    """Between the services and what they reach through the platform's proxies (PostgreSQL, or every Kafka broker):
    200 ms of latency each way for a few seconds, then every connection cut (a reset to both ends), then nothing
    moving at all for a few seconds (a black hole), then all well again."""
    proxies = running.proxies
    assert proxies
    for proxy in proxies:
        proxy.delay_s = 0.2
    await asyncio.sleep(random.uniform(2.0, 4.0))
    for proxy in proxies:
        proxy.delay_s = 0.0
        proxy.reset()
    await asyncio.sleep(random.uniform(0.5, 1.5))
    for proxy in proxies:
        proxy.black_hole()
    await asyncio.sleep(random.uniform(2.0, 4.0))
    for proxy in proxies:
        proxy.restore()
    # The connections cut (the latency and the black hole came to every one).
    return sum(proxy.cut for proxy in proxies)


async def _broker_killed(running: Platform) -> int:
    """One Kafka node of three killed with SIGKILL (leaders move to the other two), then started again."""
    await running.cluster.kill(random.randrange(1, NODES + 1))
    await asyncio.sleep(random.uniform(0.5, 2.0))
    await asyncio.to_thread(running.cluster.stack, "up")
    return 1


async def _kafka_down(running: Platform) -> int:
    """Every Kafka node stopped: nothing can be published or consumed until they are started again."""
    await asyncio.to_thread(running.cluster.stack, "kafka-down")
    await asyncio.sleep(random.uniform(3.0, 8.0))  # past the registry's request timeout (platform.py), often
    await asyncio.to_thread(running.cluster.stack, "up")
    return NODES


async def _postgres_restarted(running: Platform) -> int:
    """PostgreSQL stopped (fast: every connection cut, transactions in flight rolled back) and started again."""
    await asyncio.to_thread(running.cluster.stack, "postgres-restart")
    return 1


async def _clock_jumps_a_day(running: Platform) -> int:
    """Every service's wall clock (as a host's, set right by NTP) jumps a day forward: the reminders whose threshold
    the day crosses, the permits it takes past their last day, and the escalations of the overstay alerts nobody
    acknowledged (24 h) all fall due at once. Waits for an overstay alert (the imports bring some) to be open
    first, so there is one to escalate; what the fault reached is the alerts escalated."""
    clock = running.clock
    assert clock is not None
    await until(partial(_any_overstay_alert, running), what="an overstay alert open before the jump", every_s=0.5)
    clock.jump(timedelta(days=1))
    await until(partial(_any_overstay_alert, running, escalated=True), what="an overstay alert escalated", every_s=0.5)
    return await _overstay_alerts(running, escalated=True)


async def _any_overstay_alert(running: Platform, *, escalated: bool = False, at_least: int = 1) -> bool:
    return await _overstay_alerts(running, escalated=escalated) >= at_least


async def _overstay_alerts(running: Platform, *, escalated: bool = False) -> int:
    async with connected(running, "alerts") as connection:
        return int(await connection.scalar(overstay_alerts(escalated=escalated)) or 0)


SCENARIOS: dict[str, Callable[[Platform], Awaitable[int]]] = {
    "kill -9 of a registry instance (API mid-request, relay) and restart": partial(
        _kill_and_restart, service="registry"
    ),
    "kill -9 of an alerts instance (consumer, delivery worker) and restart": partial(
        _kill_and_restart, service="alerts"
    ),
    "kill -9 of a sharing instance (projection consumer) and restart": partial(_kill_and_restart, service="sharing"),
    "the mail server refusing five messages, then taking them": _mail_refused,
    "the police's webhook failing, then hanging past the timeout, then back": _webhook_failing,
    "kill -9 of one Kafka broker of three, and restart": _broker_killed,
    "every Kafka broker stopped, then started again": _kafka_down,
    "PostgreSQL restarted (fast shutdown) mid-stream": _postgres_restarted,
    "the services' PostgreSQL connections slowed, cut, then black-holed": _connections_disturbed,
    "the services' Kafka connections slowed, cut, then black-holed": _connections_disturbed,
    "every service's clock jumping a day forward": _clock_jumps_a_day,
}
#: The scenarios whose services reach PostgreSQL, or Kafka, through TCP proxies.
PROXIED: dict[str, Proxied] = {
    "the services' PostgreSQL connections slowed, cut, then black-holed": "postgresql",
    "the services' Kafka connections slowed, cut, then black-holed": "kafka",
}
#: The scenarios whose services run on a clock the scenario moves.
CLOCKED = {"every service's clock jumping a day forward"}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_a_fault_loses_nothing_committed_and_doubles_no_effect(
    scenario: str, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with platform(
        cluster, tmp_path, monkeypatch, proxied=PROXIED.get(scenario), clock=scenario in CLOCKED
    ) as running:
        load = Load(running)
        writing = asyncio.create_task(load.run())
        try:
            await asyncio.sleep(random.uniform(LOAD_S / 3, LOAD_S))
            faults = await SCENARIOS[scenario](running)
            await asyncio.sleep(LOAD_S / 2)
        finally:
            load.stop()
            await writing
        verdict, recovered = await settled(running)
    TABLE.append(row(scenario, load, faults, verdict, recovered))
    assert faults > 0, "the fault reached nothing"
    assert verdict.committed > 0
    assert verdict.settled, verdict


async def test_the_checker_sees_what_was_lost_doubled_or_reordered(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker itself: a committed change that never reached the topic, an agency's row that went missing, a
    reminder owed and never sent and an escalation owed and never made are each counted as lost, not waited for in
    silence; an alert escalated twice is counted as doubled."""
    async with platform(cluster, tmp_path, monkeypatch) as running:
        load = Load(running)
        writing = asyncio.create_task(load.run())
        await until(lambda: _people(load, 3), what="three people written")
        await until(
            partial(_any_overstay_alert, running, at_least=2), what="two overstay alerts (from an import)", every_s=0.5
        )
        load.stop()
        await writing
        verdict, _ = await settled(running)
        assert verdict.lost == 0
        assert verdict.projection_rows >= 3
        async with _session(running, "sharing") as session, session.begin():
            await session.execute(delete(projections).where(projections.c.foreigner_id == select(
                projections.c.foreigner_id).limit(1).scalar_subquery()))  # fmt: skip
        async with _session(running, "registry") as session, session.begin():
            person = (await session.execute(select(history).limit(1))).one()
            await session.execute(
                insert(history).values(
                    foreigner_id=person.foreigner_id, version=person.version + 100, event_id=uuid.uuid4(),
                    event_type=person.event_type, actor="faults", occurred_at=person.occurred_at, data=person.data,
                )
            )  # fmt: skip
        await _older_event_after_newer(running)
        planted = await _reminder_and_escalation_missed(running)
        verdict, _ = await settled(running, timeout_s=2)
    assert verdict.lost_on_topic == 1
    assert verdict.projection_lost >= 1
    assert verdict.versions_backwards == 1
    # Others may be owed too: a midnight somewhere (15:00-17:00 UTC) while the registries are stopped makes some due.
    assert planted in verdict.permits_owed
    assert (verdict.escalations_owed, verdict.escalations_early) == (1, 1)
    assert not verdict.settled


async def _reminder_and_escalation_missed(running: Platform) -> uuid.UUID:
    """With the registries and the alerts services stopped (their schedulers would mend it at once): a present
    person's permit renewed to end in three days (a new version, owed the 7-day reminder, never sent), an overstay
    alert opened two days ago and never escalated, and another escalated a minute after it opened. Returns the
    permit."""
    for service in ("registry", "alerts"):
        for instance in range(INSTANCES):
            running.kill(service, instance)
    async with _session(running, "registry") as session, session.begin():
        permit = (
            await session.execute(
                select(permits.c.id)
                .select_from(foreigners.join(permits, permits.c.id == foreigners.c.current_permit_id))
                .where(foreigners.c.presence == "present", permits.c.status.in_(["active", "extended"]))
                .limit(1)
            )
        ).scalar_one()
        assert isinstance(permit, uuid.UUID)
        soon = running.now().date() + timedelta(days=3)
        await session.execute(
            update(permits).where(permits.c.id == permit).values(expires_on=soon, version=permits.c.version + 1)
        )
    async with _session(running, "alerts") as session, session.begin():
        late, hasty = (
            await session.execute(
                select(alerts.c.id).where(alerts.c.event_type.in_(ESCALATED), alerts.c.escalation_level == 0).limit(2)
            )
        ).scalars()  # the imports' overstays: eight to a file
        await session.execute(
            update(alerts).where(alerts.c.id == late).values(created_at=alerts.c.created_at - timedelta(days=2))
        )
        await session.execute(
            update(alerts)
            .where(alerts.c.id == hasty)
            .values(escalation_level=1, escalated_at=alerts.c.created_at + timedelta(minutes=1))
        )
    return permit


async def _older_event_after_newer(running: Platform) -> None:
    """An earlier version of a person sent again under a new event id, after a later one: an event that reaches the
    topic after a newer one of its person (a relay publishing out of order would do that)."""
    topic = running.kafka.catalog.registry_events.name
    versions: dict[object, list[tuple[int, ConsumerRecord[bytes, bytes]]]] = {}
    async for record in records_to_end(running.kafka, topic):
        event = decode(KafkaRecord(key=record.key, value=record.value or b"", headers=tuple(record.headers)))
        if isinstance(event.data, ForeignerEvent):
            versions.setdefault(event.data.foreigner.foreigner_id, []).append((event.data.foreigner.version, record))
    chosen = next(
        record for seen in versions.values() for version, record in seen if version < max(number for number, _ in seen)
    )
    headers = tuple((name, str(uuid.uuid4()).encode() if name == "ce_id" else value) for name, value in chosen.headers)
    again = KafkaRecord(key=chosen.key or b"", value=chosen.value or b"", headers=headers)
    producer = EventProducer(running.kafka, client_id="test-faults")
    await producer.start()
    try:
        await producer.send_record(topic, again)
    finally:
        await producer.stop()


async def _people(load: Load, count: int) -> bool:
    return load.sent - load.failed >= 2 * count


@asynccontextmanager
async def _session(running: Platform, service: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(running.databases[service], application_name="timpora-faults", schema=service)
    try:
        async with make_session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    """`make faults` (TIMPORA_FAULTS=full) writes the scenarios' table to bench/faults.md."""
    yield
    if FULL and TABLE:
        write_table(TABLE, REPO / "bench" / "faults.md")
