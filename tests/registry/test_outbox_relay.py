"""The outbox relay against the real Kafka broker: everything committed arrives, in order per
foreigner, exactly as written; crashes cause duplicates, never losses."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import OperationalError

from tests.registry.conftest import Registry, arrival, permit
from tests.support.factories import sample_event
from tests.support.kafka import tail
from tests.support.processes import service_environment
from tests.support.waiting import until
from timpora.common.events import KafkaRecord, decode, encode
from timpora.common.outbox.relay import OutboxRelay
from timpora.common.settings import DatabaseSettings, KafkaSettings, RelaySettings
from timpora.registry import repository as repo
from timpora.registry.domain import changes
from timpora.registry.domain.changes import ChangeContext
from timpora.registry.domain.commands import ArrivalIn
from timpora.registry.models import outbox, outbox_pending


class SimulatedCrashError(Exception):
    pass


def _relay(registry: Registry, **settings: object) -> OutboxRelay:
    options = RelaySettings(**settings)
    kafka = registry.runtime.settings.kafka
    return OutboxRelay(
        registry.runtime.engine, registry.runtime.producer, options, registry.clock, catalog=kafka.catalog
    )


async def _drain(relay: OutboxRelay) -> None:
    await relay.drain()


async def test_changes_reach_kafka_with_their_envelope_in_version_order(live_registry: Registry) -> None:
    async with tail(
        live_registry.runtime.settings.kafka, live_registry.runtime.settings.kafka.catalog.registry_events.name
    ) as events:
        fid = (await live_registry.new_foreigner())["foreigner_id"]
        issued = await live_registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit())
        permit_id = issued.json()["permit"]["permit_id"]
        await live_registry.client.post(
            f"/v1/foreigners/{fid}/permits/{permit_id}/extension", json={"expires_on": "2029-01-01"}
        )
        await live_registry.client.patch(f"/v1/foreigners/{fid}", json={"occupation": "chef"})

        records = await events.collect(lambda _: len(events.with_key(fid)) >= 4)

    mine = [record for record in records if record.key == fid.encode()]
    decoded = [decode(KafkaRecord(key=r.key, value=r.value or b"", headers=tuple(r.headers))) for r in mine]
    assert [event.spec.name for event in decoded] == [
        "foreigner.arrived",
        "permit.issued",
        "permit.extended",
        "foreigner.updated",
    ]
    assert [event.data.foreigner.version for event in decoded] == [1, 2, 3, 4]  # type: ignore[attr-defined]
    assert {record.partition for record in mine} == {mine[0].partition}
    assert all(event.subject == fid for event in decoded)
    # Kafka has them; the relay marks them published right after, in its own transaction.
    await until(_fewer_unpublished_than(live_registry, 1, fid), what="rows published", timeout_s=10)


async def test_a_crash_between_kafkas_ack_and_marking_gives_a_duplicate_never_a_loss(registry: Registry) -> None:
    class CrashesAfterPublishing(OutboxRelay):
        async def _mark(self, _ids: list[int]) -> None:
            raise SimulatedCrashError  # the process dies: Kafka has the batch, the mark never commits

    fid = (await registry.new_foreigner())["foreigner_id"]
    async with tail(
        registry.runtime.settings.kafka, registry.runtime.settings.kafka.catalog.registry_events.name
    ) as events:
        crashing = CrashesAfterPublishing(
            registry.runtime.engine,
            registry.runtime.producer,
            RelaySettings(batch_size=10_000),
            registry.clock,
            catalog=registry.runtime.settings.kafka.catalog,
        )
        with pytest.raises(SimulatedCrashError):
            await crashing.drain()
        assert await _unpublished(registry, fid) == 1
        await _drain(_relay(registry))

        await events.collect(lambda _: len(events.with_key(fid)) >= 2)

    copies = events.with_key(fid)
    assert len(copies) == 2
    assert dict(copies[0].headers)["ce_id"] == dict(copies[1].headers)["ce_id"]
    assert await _unpublished(registry, fid) == 0


async def _unpublished(registry: Registry, fid: str) -> int:
    async with registry.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(outbox.join(outbox_pending, outbox_pending.c.id == outbox.c.id))
            .where(outbox.c.partition_key == fid)
        )
    return int(count or 0)


async def test_a_transaction_that_commits_late_with_a_smaller_id_is_still_published(registry: Registry) -> None:
    context = ChangeContext(
        actor="test",
        clock=registry.clock,
        source="/timpora/registry",
        topic=registry.runtime.settings.kafka.catalog.registry_events.name,
    )
    relay = _relay(registry)
    await _drain(relay)
    async with tail(
        registry.runtime.settings.kafka, registry.runtime.settings.kafka.catalog.registry_events.name
    ) as events:
        async with registry.sessions() as slow:
            await slow.begin()
            slow_snapshot, _ = await changes.record_arrival(slow, context, ArrivalIn.model_validate(arrival()))
            async with registry.sessions() as fast, fast.begin():
                fast_snapshot, _ = await changes.record_arrival(fast, context, ArrivalIn.model_validate(arrival()))
            await _drain(relay)
            await slow.commit()
        await _drain(relay)

        slow_id, fast_id = str(slow_snapshot.foreigner_id), str(fast_snapshot.foreigner_id)
        await events.collect(lambda _: events.with_key(slow_id) != [] and events.with_key(fast_id) != [])

    async with registry.sessions() as session:
        ids = dict(
            (
                await session.execute(
                    select(outbox.c.partition_key, outbox.c.id).where(outbox.c.partition_key.in_([slow_id, fast_id]))
                )
            ).all()
        )
    assert ids[slow_id] < ids[fast_id], "the slow transaction took its outbox id first"
    assert len(events.with_key(slow_id)) == len(events.with_key(fast_id)) == 1


async def test_published_rows_are_kept_for_the_retention_period_and_can_be_republished(registry: Registry) -> None:
    # created_at is the database's clock, not the test's hand-moved one; rows of earlier tests are older.
    began = datetime.now(UTC)
    fid = (await registry.new_foreigner())["foreigner_id"]
    relay = _relay(registry, retention_days=7)
    await _drain(relay)
    async with tail(
        registry.runtime.settings.kafka, registry.runtime.settings.kafka.catalog.registry_events.name
    ) as events:
        republished = await relay.republish(since=began, until=datetime.now(UTC) + timedelta(seconds=1))
        assert republished >= 1
        await _drain(relay)
        await events.collect(lambda _: len(events.with_key(fid)) >= 1)

    async with registry.sessions() as session, session.begin():
        await session.execute(
            update(outbox)
            .where(outbox.c.partition_key == fid)
            .values(created_at=registry.clock.now() - timedelta(days=8))
        )
    registry.clock.advance(minutes=1)
    assert await relay.purge() >= 1
    assert await registry.outbox_rows(fid) == 0


async def test_a_row_not_yet_published_outlives_the_retention_period_and_is_not_republished_twice(
    registry: Registry,
) -> None:
    began = datetime.now(UTC)
    (waiting,) = await _insert_outbox(registry, 1)
    async with registry.sessions() as session, session.begin():
        await session.execute(
            update(outbox)
            .where(outbox.c.event_id == UUID(waiting))
            .values(created_at=registry.clock.now() - timedelta(days=30))
        )
    relay = _relay(registry, retention_days=7)

    await relay.purge()
    assert await _rows_of_event(registry, waiting) == 1, "a row not yet published is never purged"
    fid = (await registry.new_foreigner())["foreigner_id"]
    assert await relay.republish(since=began, until=datetime.now(UTC) + timedelta(seconds=1)) == 0, (
        "the rows of that time are all still pending"
    )
    assert await _unpublished(registry, fid) == 1


async def test_publishing_a_row_does_not_write_it_again(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    where = outbox.c.partition_key == fid
    async with registry.sessions() as session:
        # The row's version: a new one (an UPDATE, even of one column) has another xmin and place.
        written = (
            await session.execute(select(text("xmin::text"), text("ctid::text")).select_from(outbox).where(where))
        ).one()

    await _drain(_relay(registry))

    async with registry.sessions() as session:
        after = (
            await session.execute(select(text("xmin::text"), text("ctid::text")).select_from(outbox).where(where))
        ).one()
    assert await _unpublished(registry, fid) == 0
    assert after == written


async def _rows_of_event(registry: Registry, event_id: str) -> int:
    async with registry.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.event_id == UUID(event_id))
        )
    return int(count or 0)


async def _insert_outbox(registry: Registry, count: int) -> set[str]:
    """Outbox rows as the registry writes them (events about people who need not exist here)."""
    events = [sample_event() for _ in range(count)]
    rows = []
    for event in events:
        record = encode(event)
        rows.append(
            {
                "event_id": UUID(event.id),
                "event_type": event.type,
                "topic": registry.runtime.settings.kafka.catalog.registry_events.name,
                "partition_key": str(event.subject),
                "headers": record.headers_dict(),
                "payload": record.value.decode(),
            }
        )
    async with registry.sessions() as session, session.begin():
        await session.execute(outbox.insert(), rows)
    return {event.id for event in events}


@pytest.mark.timeout(180)
async def test_a_relay_process_killed_9_at_random_moments_loses_nothing(
    registry: Registry, kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> None:
    await _drain(_relay(registry))
    environment = service_environment(
        "registry",
        kafka=kafka_settings,
        database=database_settings["registry"],
        extra={"TIMPORA_REGISTRY_RELAY__BATCH_SIZE": "40", "TIMPORA_REGISTRY_LOG_LEVEL": "WARNING"},
    )
    command = [sys.executable, "-m", "timpora.registry.main", "relay"]
    async with tail(kafka_settings, kafka_settings.catalog.registry_events.name) as events:
        expected = await _insert_outbox(registry, 2000)
        kills = 0
        while await _unpublished_total(registry) > 0 and kills < 4:
            process = subprocess.Popen(command, env=environment)  # noqa: S603, ASYNC220 - our own module
            await until(
                _fewer_unpublished_than(registry, await _unpublished_total(registry)),
                what="rows published",
                timeout_s=60,
            )
            await asyncio.sleep(0.05 * (kills + 1))
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        finisher = subprocess.Popen(command, env=environment)  # noqa: S603, ASYNC220
        try:
            await until(_fewer_unpublished_than(registry, 1), what="rows published", timeout_s=90)
        finally:
            finisher.send_signal(signal.SIGTERM)
            finisher.wait(timeout=30)

        received = await events.collect(
            lambda records: expected <= {dict(r.headers)["ce_id"].decode() for r in records}, 60
        )

    got = [dict(record.headers)["ce_id"].decode() for record in received]
    assert expected <= set(got), f"{len(expected - set(got))} events lost"
    assert kills >= 1


async def _unpublished_total(registry: Registry) -> int:
    """Unpublished rows of this test's namespace (the test database keeps other tests' rows)."""
    namespace = registry.runtime.settings.kafka.namespace
    async with registry.sessions() as session:
        statement = (
            select(func.count())
            .select_from(outbox.join(outbox_pending, outbox_pending.c.id == outbox.c.id))
            .where(outbox.c.topic.startswith(f"{namespace}."))
        )
        return int(await session.scalar(statement) or 0)


def _fewer_unpublished_than(registry: Registry, start: int, key: str | None = None) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return (await _unpublished(registry, key) if key else await _unpublished_total(registry)) < start

    return condition


__all__ = ["repo"]


async def test_rows_addressed_to_another_namespace_are_left_alone_and_block_nothing(registry: Registry) -> None:
    # A row names its topic when it is written; one of another namespace (a command run with the wrong
    # settings) would be sent into that namespace's topics, or, where they do not exist, stop every row
    # behind it for good.
    stray = sample_event()
    record = encode(stray)
    async with registry.sessions() as session, session.begin():
        await session.execute(
            outbox.insert().values(
                event_id=UUID(stray.id),
                event_type=stray.type,
                topic="elsewhere.registry.events.v1",
                partition_key=str(stray.subject),
                headers=record.headers_dict(),
                payload=record.value.decode(),
            )
        )
    fid = (await registry.new_foreigner())["foreigner_id"]

    published = await _relay(registry).drain()

    assert published >= 1
    assert await _unpublished(registry, fid) == 0
    assert await _unpublished(registry, str(stray.subject)) == 1


async def _age(registry: Registry, event_ids: set[str], days: int) -> None:
    async with registry.sessions() as session, session.begin():
        await session.execute(
            update(outbox)
            .where(outbox.c.event_id.in_([UUID(event) for event in event_ids]))
            .values(created_at=registry.clock.now() - timedelta(days=days))
        )


async def test_the_purge_goes_in_batches_keeps_what_is_pending_and_drops_ids_left_by_rows_deleted_by_hand(
    registry: Registry,
) -> None:
    relay = _relay(registry, retention_days=7)
    published = await _insert_outbox(registry, 5)
    await _drain(relay)
    waiting = await _insert_outbox(registry, 1)
    await _age(registry, published | waiting, days=8)
    (gone,) = await _insert_outbox(registry, 1)
    async with registry.sessions() as session, session.begin():
        gone_id = await session.scalar(delete(outbox).where(outbox.c.event_id == UUID(gone)).returning(outbox.c.id))

    assert await relay.purge(batch=2) >= 5

    assert [await _rows_of_event(registry, event) for event in sorted(published)] == [0] * 5
    assert [await _rows_of_event(registry, event) for event in waiting] == [1]
    async with registry.sessions() as session:
        left = await session.scalar(select(func.count()).where(outbox_pending.c.id == gone_id))
    assert left == 0, "the pending id of a row deleted by hand"


async def test_a_failing_purge_does_not_stop_the_relay(registry: Registry) -> None:
    attempts: list[int] = []

    class PurgeFails(OutboxRelay):
        async def purge(self, *, batch: int = 50_000) -> int:
            attempts.append(batch)
            raise OperationalError("DELETE FROM outbox", {}, TimeoutError("canceling statement due to timeout"))

    kafka = registry.runtime.settings.kafka
    relay = PurgeFails(
        registry.runtime.engine, registry.runtime.producer, RelaySettings(), registry.clock, catalog=kafka.catalog
    )
    running = asyncio.create_task(relay.run())
    try:
        (first,) = await _insert_outbox(registry, 1)
        await until(lambda: _published(registry, first), what="the relay running", timeout_s=30)
        registry.clock.advance(minutes=6)  # a purge is due at the relay's next turn
        await _insert_outbox(registry, 1)  # which this row's notification starts

        async def tried() -> bool:
            return bool(attempts)

        await until(tried, what="the purge tried", timeout_s=30)
        (later,) = await _insert_outbox(registry, 1)

        await until(lambda: _published(registry, later), what="a row written after it published", timeout_s=30)
        assert not running.done()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def _published(registry: Registry, event_id: str) -> bool:
    async with registry.sessions() as session:
        waiting = await session.scalar(
            select(func.count())
            .select_from(outbox.join(outbox_pending, outbox_pending.c.id == outbox.c.id))
            .where(outbox.c.event_id == UUID(event_id))
        )
    return waiting == 0
