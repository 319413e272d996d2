"""The sharing service's relay against real Kafka and PostgreSQL: each agency's copy leaves the outbox as it is
published (timpora.common.outbox.table, version 3), so no copy of personal data stays in it once sent; a crash
between Kafka's acknowledgement and the delete sends a copy twice, never loses one."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, insert, select, update

from tests.sharing.test_api import Sharing, _started
from tests.support.kafka import everything_on
from timpora.common import register
from timpora.common.disclosures import DisclosureLog, log_table
from timpora.common.outbox.relay import OutboxRelay
from timpora.common.settings import DatabaseSettings, KafkaSettings, RelaySettings
from timpora.sharing.models import outbox
from timpora.sharing.outgoing import TopicGate


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": "sharing"})


class SimulatedCrashError(Exception):
    pass


@pytest.fixture
async def sharing(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> AsyncIterator[Sharing]:
    """The service with its own relay switched off: these tests drive one by hand."""
    database = database_settings["sharing"]
    off = RelaySettings(enabled=False)
    async for started in _started(kafka_settings, database, register.DEFAULT_REGISTER, relay=off):
        yield started


def _relay(sharing: Sharing, log: DisclosureLog, relay_class: type[OutboxRelay] = OutboxRelay) -> OutboxRelay:
    runtime = sharing.runtime
    catalog = runtime.settings.kafka.catalog
    return relay_class(
        runtime.engine,
        runtime.producer,
        RelaySettings(batch_size=2),  # several batches, so the pipeline deletes batch after batch
        runtime.clock,
        catalog=catalog,
        service="sharing",
        gate=TopicGate(register.DEFAULT_REGISTER, catalog, log, runtime.clock),
        deletes_published=True,
    )


async def _waiting(sharing: Sharing) -> list[str]:
    """The ids of the copies of this test's namespace still in the outbox, in the order they were written."""
    namespace = sharing.runtime.settings.kafka.namespace
    async with sharing.runtime.sessions() as session:
        found = await session.scalars(
            select(outbox.c.headers["ce_id"].astext)
            .where(outbox.c.topic.startswith(f"{namespace}."))
            .order_by(outbox.c.id)
        )
        return list(found)


async def _disclosed(sharing: Sharing) -> list[str]:
    """The copies of this test's namespace the disclosure log says were sent to an agency's topic."""
    namespace = sharing.runtime.settings.kafka.namespace
    async with sharing.runtime.sessions() as session:
        references = await session.scalars(
            select(log_table.c.reference).where(
                log_table.c.channel == "topic", log_table.c.reference.startswith(f"{namespace}.")
            )
        )
        return [reference.split(" ")[1] for reference in references]


async def _on_topics(sharing: Sharing) -> list[str]:
    kafka = sharing.runtime.settings.kafka
    ids: list[str] = []
    for agency in register.current(register.DEFAULT_REGISTER).members:
        for record in await everything_on(kafka, kafka.catalog.agency_events(agency).name):
            ids.extend(value.decode() for name, value in record.headers if name == "ce_id")
    return ids


async def test_each_copy_leaves_the_outbox_once_kafka_has_it_and_a_crash_before_that_sends_it_twice(
    sharing: Sharing,
) -> None:
    class CrashesAfterPublishing(OutboxRelay):
        async def _mark(self, _ids: list[int]) -> None:
            raise SimulatedCrashError  # the process dies: Kafka has the batch, the delete never commits

    written = await _waiting(sharing)
    assert len(written) > 2, "the people the fixture applied are in some agencies' views"
    log = DisclosureLog(sharing.runtime.engine)
    try:
        with pytest.raises(SimulatedCrashError):
            await _relay(sharing, log, CrashesAfterPublishing).drain()
        # Sent, not deleted: the copies are all still there.
        assert await _waiting(sharing) == written

        assert await _relay(sharing, log).drain() == len(written)
        relay = _relay(sharing, log)
        assert await relay.drain() == 0, "nothing left to publish"
        assert await relay.purge() == 0
        with pytest.raises(RuntimeError, match="keeps no published row"):
            await relay.republish(
                since=sharing.runtime.clock.now() - timedelta(days=1), until=sharing.runtime.clock.now()
            )
    finally:
        await log.close()

    assert await _waiting(sharing) == [], "no copy kept once sent"
    sent = await _on_topics(sharing)
    # Each copy on the record before it left, as often as it left.
    assert Counter(await _disclosed(sharing)) == Counter(sent)
    # What the crashed relay had sent twice (Kafka acknowledged it before the crash), every copy, none lost.
    assert set(sent) == set(written)
    twice = {copy for copy, times in Counter(sent).items() if times == 2}
    assert len(twice) >= 2, "at least the first batch"
    assert twice == set(written[: len(twice)]), "the first copies written, sent before the crash"
    assert max(Counter(sent).values()) == 2


async def test_the_lag_counts_every_copy_of_its_namespace_waiting_and_nothing_once_they_are_sent(
    sharing: Sharing,
) -> None:
    written = await _waiting(sharing)
    async with sharing.runtime.sessions() as session, session.begin():
        # A copy written under another namespace (a command run with the wrong settings): neither counted nor sent.
        foreign = await session.scalar(
            insert(outbox)
            .values(
                event_id=uuid.uuid4(),
                event_type="id.timpora.sharing.record.v1",
                topic="elsewhere.sharing.agency.desa-lajing.v1",
                partition_key=str(uuid.uuid4()),
                headers={},
                payload="{}",
            )
            .returning(outbox.c.id)
        )
        # The oldest copy waiting, as old as the test says.
        await session.execute(
            update(outbox)
            .where(outbox.c.topic.startswith(f"{sharing.runtime.settings.kafka.namespace}."))
            .values(created_at=func.now() - timedelta(minutes=30))
        )
    log = DisclosureLog(sharing.runtime.engine)
    try:
        relay = _relay(sharing, log)
        await relay._measure_lag()
        assert _gauge("timpora_outbox_unpublished") == len(written)
        assert 30 * 60 <= (_gauge("timpora_outbox_oldest_unpublished_seconds") or 0) < 31 * 60
        await relay.drain()
        assert _gauge("timpora_outbox_unpublished") == 0
        assert _gauge("timpora_outbox_oldest_unpublished_seconds") == 0
    finally:
        await log.close()
    async with sharing.runtime.sessions() as session, session.begin():
        assert await session.scalar(select(outbox.c.id).where(outbox.c.id == foreign)) == foreign, "left alone"
        await session.execute(delete(outbox).where(outbox.c.id == foreign))
