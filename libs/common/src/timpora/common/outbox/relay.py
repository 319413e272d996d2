"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One relay works at a time, chosen by a session advisory lock held while it drains, so any number of
registry instances can run it: a crashed relay's lock dies with its connection and another takes
over. Rows are chosen by their id in ``outbox_pending`` (timpora.common.outbox.table, version 2), never by a "last
id seen" cursor, so a row from a transaction that committed late (a smaller id, visible only now) is published
on the next pass. Publishing a row deletes its pending id; the row itself is never written again. An outbox of
version 3 (``deletes_published``: the sharing service's) keeps no published row: every row in it is still to be
published, publishing it deletes it, nothing is purged and nothing can be published again.
Order per foreigner holds because every change locks the foreigner's row before it takes an outbox
id: one person's ids follow their commit order, and the relay publishes in id order.

A crash after Kafka acknowledged a batch but before the rows were marked publishes them again: a
duplicate, never a loss. Consumers drop duplicates by event id.

A relay may be given a gate (:class:`OutboxGate`): every batch passes through it just before it is sent, and
only what it returns is sent (the rest is marked published all the same). The sharing service's gate filters
each agency's records through the agreement in force at that moment and records each disclosure.

A relay publishes only rows addressed to its own namespace's topics (see timpora.common.topics). A row
names its topic when it is written; one written under another namespace (a command run with the wrong
settings, a test) would otherwise be sent into that namespace's topics, or, if they do not exist, stop
every row behind it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
from prometheus_client import Counter, Gauge
from sqlalchemy import TextClause, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timpora.common.clock import Clock
from timpora.common.db.engine import driver_connection
from timpora.common.db.notify import Wakeup
from timpora.common.events import KafkaRecord
from timpora.common.kafka.producer import EventProducer
from timpora.common.settings import RelaySettings
from timpora.common.topics import TopicCatalog

log = logging.getLogger(__name__)

PUBLISHED = Counter(
    "timpora_outbox_published_total", "Outbox rows published to Kafka and marked published (or deleted).", ["service"]
)
UNPUBLISHED = Gauge(
    "timpora_outbox_unpublished", "Committed outbox rows not yet published (the relay's lag).", ["service"]
)
OLDEST_AGE = Gauge(
    "timpora_outbox_oldest_unpublished_seconds", "Age of the oldest unpublished outbox row.", ["service"]
)

# Plain asyncpg (prepared once per connection), not SQLAlchemy rows: this query moves most of the bytes.
# Every read starts from the pending ids and looks each row up by its id. Left to join the two tables as it
# likes, the planner may walk the outbox's ids from the first and look each up in outbox_pending: every row
# published in the retention period, on every read. OFFSET 0 keeps the lookup a subquery of its own.
CLAIM = """
    SELECT row.id, row.topic, row.partition_key, row.headers, row.payload
    FROM outbox_pending AS pending CROSS JOIN LATERAL (
        SELECT id, topic, partition_key, headers::text AS headers, payload
        FROM outbox WHERE outbox.id = pending.id AND topic LIKE $3 OFFSET 0
    ) AS row
    WHERE pending.id NOT IN (SELECT unnest($1::bigint[]))  -- a hashed set
    ORDER BY pending.id LIMIT $2
"""
#: Batches handed to Kafka but not yet acknowledged and marked, at most.
_PIPELINE_DEPTH = 3
_MARK = "DELETE FROM outbox_pending WHERE id = ANY($1::bigint[])"
# Counting every unpublished row on every batch would make draining a large backlog quadratic; the
# count is capped and taken at most every few seconds, the oldest row comes straight from the index.
_LAG_CAP = 100_000
_LAG = text(
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox_pending AS pending CROSS JOIN LATERAL (SELECT FROM outbox "
    "WHERE outbox.id = pending.id AND topic LIKE :topics OFFSET 0) AS row LIMIT :cap) AS capped), "
    "coalesce((SELECT row.age FROM outbox_pending AS pending CROSS JOIN LATERAL (SELECT extract(epoch FROM "
    "now() - created_at) AS age FROM outbox WHERE outbox.id = pending.id AND topic LIKE :topics OFFSET 0) AS row "
    "ORDER BY pending.id LIMIT 1), 0)"
)
_FOREIGN = text(
    "SELECT count(*) FROM outbox_pending AS pending CROSS JOIN LATERAL (SELECT FROM outbox "
    "WHERE outbox.id = pending.id AND topic NOT LIKE :topics OFFSET 0) AS row"
)
_LAG_INTERVAL_S = 5.0
# Version 3: the outbox's own rows, in id order, are what is still to be published. The count and the oldest go by
# the id's index (ORDER BY id), never a scan of the table: after a backlog is published, its pages stay until vacuum.
CLAIM_DELETING = """
    SELECT id, topic, partition_key, headers::text AS headers, payload FROM outbox
    WHERE topic LIKE $3 AND id NOT IN (SELECT unnest($1::bigint[]))  -- a hashed set
    ORDER BY id LIMIT $2
"""
LAG_DELETING = text(
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE topic LIKE :topics ORDER BY id LIMIT :cap) AS capped), "
    "coalesce((SELECT extract(epoch FROM now() - created_at) FROM outbox WHERE topic LIKE :topics "
    "ORDER BY id LIMIT 1), 0)"
)


@dataclass(frozen=True, slots=True)
class _Version:
    """What reads and marks an outbox of one version (timpora.common.outbox.table)."""

    claim: str
    mark: str
    lag: TextClause
    foreign: TextClause
    #: Published rows stay (for the retention period, to be published again if need be).
    keeps_published: bool


_PENDING = _Version(CLAIM, _MARK, _LAG, _FOREIGN, keeps_published=True)
_DELETING = _Version(
    CLAIM_DELETING,
    "DELETE FROM outbox WHERE id = ANY($1::bigint[])",
    LAG_DELETING,
    text("SELECT count(*) FROM outbox WHERE topic NOT LIKE :topics"),
    keeps_published=False,
)
_PURGE_BATCH = 50_000
_PURGE = text(
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < :cutoff "
    "AND NOT EXISTS (SELECT FROM outbox_pending AS pending WHERE pending.id = outbox.id) ORDER BY id LIMIT :batch)"
)
_ORPHANS = text(
    "DELETE FROM outbox_pending AS pending WHERE NOT EXISTS (SELECT FROM outbox WHERE outbox.id = pending.id)"
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    record: KafkaRecord


class OutboxGate(Protocol):
    """What a batch passes through before it is sent: returns the rows to send, changed as need be."""

    async def __call__(self, rows: Sequence[OutboxRow]) -> Sequence[OutboxRow]: ...


def _row(record: asyncpg.Record) -> OutboxRow:
    headers: dict[str, str] = json.loads(record["headers"])
    return OutboxRow(
        id=record["id"],
        topic=record["topic"],
        record=KafkaRecord(
            key=record["partition_key"].encode(),
            value=record["payload"].encode(),
            # zip and map, not a generator: every header of every row passes here.
            headers=tuple(zip(headers, map(str.encode, headers.values()), strict=True)),
        ),
    )


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: EventProducer,
        settings: RelaySettings,
        clock: Clock,
        *,
        catalog: TopicCatalog,
        service: str = "registry",
        gate: OutboxGate | None = None,
        deletes_published: bool = False,
    ) -> None:
        self._engine = engine
        # Which version of the outbox it drains (timpora.common.outbox.table): 2, pending ids apart from the rows,
        # published rows kept for the retention period; or 3, each row deleted as it is published.
        self._version = _DELETING if deletes_published else _PENDING
        self._gate = gate
        self._service = service
        # LIKE pattern of the namespace's topics; a namespace holds no LIKE wildcard (see NAMESPACE_PATTERN).
        self._topics = f"{catalog.namespace}.%"
        # The channel the outbox's trigger notifies, and the advisory lock relays of this service share.
        self._channel = f"timpora_{service}_outbox"
        self._lock_key = f"timpora-{service}-outbox-relay"
        self._producer = producer
        self._settings = settings
        self._clock = clock
        self._wakeup = Wakeup(engine, self._channel, poll_interval_s=settings.poll_interval_s)
        self._lag_measured = 0.0

    async def run(self) -> None:
        """Publishes until cancelled: woken by NOTIFY on every committed insert, polling as a fallback."""
        async with self._wakeup.listening():
            await self._report_foreign_rows()
            purged_at = self._clock.now()
            while True:
                await self.drain()
                if self._clock.now() - purged_at > timedelta(minutes=5):
                    try:
                        await self.purge()
                    except SQLAlchemyError as error:
                        # Publishing goes on; the purge is tried again at the next turn.
                        log.warning("the outbox purge failed", extra={"reason": type(error).__name__})
                    purged_at = self._clock.now()
                await self._wakeup.wait()

    async def drain(self) -> int:
        """Publishes every committed unpublished row if this instance holds the relay lock; returns how many."""
        async with self._engine.connect() as holder:
            key = {"key": self._lock_key}
            locked = await holder.scalar(text("SELECT pg_try_advisory_lock(hashtext(:key))"), key)
            # The lock is the session's and outlives this transaction; ending it matters: an open
            # transaction for the whole drain would stop vacuum (and index scans) from dropping the
            # rows the drain marks, and every read would walk all of them again.
            await holder.commit()
            if not locked:
                return 0
            try:
                published = await self._drain_locked(holder)
            finally:
                # A failure may have left the holder's transaction aborted; clear it so the unlock runs
                # and the original error, not this one, is the one reported.
                await holder.rollback()
                await holder.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), key)
                await holder.commit()
        await self._measure_lag()
        return published

    async def _drain_locked(self, holder: AsyncConnection) -> int:
        # Pipelined: while Kafka acknowledges earlier batches and their rows are being marked, the next
        # batch is read and handed to the producer. Sends stay in id order (the producer keeps order
        # per partition); a row is marked only once Kafka has it. Rows not yet marked are excluded from
        # the next read by id, not skipped by a cursor, so a smaller id that commits late is read on
        # the very next read.
        published = 0
        pending: deque[tuple[list[int], asyncio.Future[int]]] = deque()
        # Every batch of this drain through one producer: if a send fails, the producer is replaced, and a batch
        # sent through the new one while an earlier one is still unacknowledged could overtake it (EventProducer.
        # enqueue). The drain then ends; the next one starts again from the first row not marked.
        generation = await self._producer.ready()
        reading = asyncio.ensure_future(self._fetch([]))
        try:
            while True:
                rows = await reading
                if not rows:
                    break
                ids = [row.id for row in rows]
                # The next batch is read while this one is filtered and sent: the database works on the read while
                # the relay works on the send. It leaves out this batch and every one not yet marked.
                unmarked = [*(row_id for batch, _ in pending for row_id in batch), *ids]
                reading = asyncio.ensure_future(self._fetch(unmarked))
                # The lock lives with the holder's connection: if that connection is gone, so is the
                # lock, and another relay may be draining; stop rather than publish alongside it.
                await holder.execute(text("SELECT 1"))
                await holder.commit()
                sending = rows if self._gate is None else await self._gate(rows)
                # Each batch is marked only after the one before it: if a batch fails, none after it
                # is marked, and the next drain starts again from the failed one.
                previous = pending[-1][1] if pending else None
                marking = asyncio.ensure_future(self._settle(ids, await self._send(sending, generation), previous))
                pending.append((ids, marking))
                while pending and (len(pending) >= _PIPELINE_DEPTH or pending[0][1].done()):
                    published += await pending.popleft()[1]
                if time.monotonic() - self._lag_measured > _LAG_INTERVAL_S:
                    await self._measure_lag()
            while pending:
                published += await pending.popleft()[1]
        finally:
            # All of it cancelled before anything is waited for (a frozen database must not keep the marks going),
            # and the read waited for even when it is done: a read that failed beside another failure would
            # otherwise be reported as an exception nobody retrieved.
            reading.cancel()
            for _, settling in pending:
                settling.cancel()
            await asyncio.gather(reading, *(settling for _, settling in pending), return_exceptions=True)
        return published

    async def _report_foreign_rows(self) -> None:
        async with self._engine.connect() as connection:
            foreign = int(await connection.scalar(self._version.foreign, {"topics": self._topics}) or 0)
        if foreign:
            log.warning("unpublished outbox rows of another namespace are left alone", extra={"count": foreign})

    async def _fetch(self, exclude: list[int]) -> list[OutboxRow]:
        async with self._engine.connect() as connection:
            driver = await driver_connection(connection)
            records = await driver.fetch(self._version.claim, exclude, self._settings.batch_size, self._topics)
        return [_row(record) for record in records]

    async def _settle(self, ids: list[int], acknowledged: Awaitable[None], previous: Awaitable[int] | None) -> int:
        await acknowledged
        if previous is not None:
            await previous
        # If the process dies here, Kafka has the batch and the rows are still unpublished: the next
        # relay sends them again. Duplicates, never losses.
        await self._mark(ids)
        PUBLISHED.labels(self._service).inc(len(ids))
        return len(ids)

    async def _mark(self, ids: list[int]) -> None:
        async with self._engine.connect() as connection:
            # One statement, committed on its own (asyncpg's autocommit): no BEGIN and COMMIT around it.
            await (await driver_connection(connection)).execute(self._version.mark, ids)

    async def _measure_lag(self) -> None:
        async with self._engine.connect() as connection:
            measured = await connection.execute(self._version.lag, {"cap": _LAG_CAP, "topics": self._topics})
            count, oldest = measured.one()
        UNPUBLISHED.labels(self._service).set(int(count))
        OLDEST_AGE.labels(self._service).set(float(oldest))
        self._lag_measured = time.monotonic()

    async def _send(self, rows: Sequence[OutboxRow], generation: int) -> Awaitable[None]:
        by_topic: dict[str, list[KafkaRecord]] = {}
        for row in rows:
            by_topic.setdefault(row.topic, []).append(row.record)
        waits = [
            await self._producer.enqueue(topic, records, generation=generation) for topic, records in by_topic.items()
        ]

        async def all_acknowledged() -> None:
            await asyncio.gather(*waits)

        return asyncio.ensure_future(all_acknowledged())

    async def purge(self, *, batch: int = _PURGE_BATCH) -> int:
        """Deletes published rows written longer ago than the retention period; a row not yet published stays.

        In batches, each its own transaction, oldest first: a week of rows after an outage is more than one
        statement does within the statement timeout. Then drops the pending ids of rows deleted by hand (there
        is no foreign key, see timpora.common.outbox.table), which the relay's read would otherwise look up for
        ever. An outbox that deletes what it publishes has nothing to purge."""
        if not self._version.keeps_published:
            return 0
        cutoff = self._clock.now() - timedelta(days=self._settings.retention_days)
        deleted = 0
        while True:
            async with self._engine.begin() as connection:
                result = await connection.execute(_PURGE, {"cutoff": cutoff, "batch": batch})
            deleted += int(result.rowcount)
            if result.rowcount < batch:
                break
        async with self._engine.begin() as connection:
            orphans = int((await connection.execute(_ORPHANS)).rowcount)
        if deleted or orphans:
            log.info("purged published outbox rows", extra={"count": deleted, "orphaned_ids": orphans})
        return deleted

    async def republish(self, *, since: datetime, until: datetime) -> int:
        """Marks the published rows created in [since, until) unpublished, so the relay sends them again."""
        if not self._version.keeps_published:
            raise RuntimeError("this outbox keeps no published row to publish again")
        async with self._engine.begin() as connection:
            result = await connection.execute(
                text(
                    "INSERT INTO outbox_pending (id) SELECT id FROM outbox "
                    "WHERE created_at >= :since AND created_at < :until ON CONFLICT (id) DO NOTHING"
                ),
                {"since": since, "until": until},
            )
        self._wakeup.nudge()
        return int(result.rowcount)
