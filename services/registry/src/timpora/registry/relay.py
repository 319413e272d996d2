"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One relay works at a time, chosen per batch by a transaction-scoped advisory lock, so any number of
registry instances can run it: a crashed relay's lock dies with its connection and another takes
over. Rows are chosen by ``published_at IS NULL``, never by a "last id seen" cursor, so a row from a
transaction that committed late (a smaller id, visible only now) is published on the next pass.
Order per foreigner holds because every change locks the foreigner's row before it takes an outbox
id: one person's ids follow their commit order, and the relay publishes in id order.

A crash after Kafka acknowledged a batch but before the rows were marked publishes them again: a
duplicate, never a loss. Consumers drop duplicates by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timpora.common.clock import Clock
from timpora.common.db.engine import driver_connection
from timpora.common.events import KafkaRecord
from timpora.common.kafka.producer import EventProducer
from timpora.registry.models import OUTBOX_CHANNEL
from timpora.registry.settings import RelaySettings

log = logging.getLogger(__name__)

RELAY_LOCK_KEY = "timpora-registry-outbox-relay"

PUBLISHED = Counter("timpora_outbox_published_total", "Outbox rows published to Kafka and marked published.")
UNPUBLISHED = Gauge("timpora_outbox_unpublished", "Committed outbox rows not yet published (the relay's lag).")
OLDEST_AGE = Gauge("timpora_outbox_oldest_unpublished_seconds", "Age of the oldest unpublished outbox row.")

_CLAIM = text(
    """
    SELECT id, topic, partition_key, headers::text AS headers, payload
    FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT :limit
    """
)
_MARK = text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")
# Counting every unpublished row on every batch would make draining a large backlog quadratic; the
# count is capped and taken at most every few seconds, the oldest row comes straight from the index.
_LAG_CAP = 100_000
_LAG = text(
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE published_at IS NULL LIMIT :cap) AS capped), "
    "coalesce((SELECT extract(epoch FROM now() - created_at) FROM outbox WHERE published_at IS NULL "
    "ORDER BY id LIMIT 1), 0)"
)
_LAG_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    record: KafkaRecord


def _row(row: Row[Any]) -> OutboxRow:
    headers: dict[str, str] = json.loads(row.headers)
    return OutboxRow(
        id=row.id,
        topic=row.topic,
        record=KafkaRecord(
            key=row.partition_key.encode(),
            value=row.payload.encode(),
            headers=tuple((name, value.encode()) for name, value in headers.items()),
        ),
    )


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, producer: EventProducer, settings: RelaySettings, clock: Clock) -> None:
        self._engine = engine
        self._producer = producer
        self._settings = settings
        self._clock = clock
        self._wake = asyncio.Event()
        self._lag_measured = 0.0

    async def run(self) -> None:
        """Publishes until cancelled: woken by NOTIFY on every committed insert, polling as a fallback."""
        async with self._engine.connect() as listener:
            await self._listen(listener)
            purged_at = self._clock.now()
            while True:
                published = await self.drain_once()
                if published >= self._settings.batch_size:
                    continue  # more is waiting
                if self._clock.now() - purged_at > timedelta(minutes=5):
                    await self.purge()
                    purged_at = self._clock.now()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._settings.poll_interval_s)

    async def _listen(self, connection: AsyncConnection) -> None:
        driver = await driver_connection(connection)
        await driver.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())

    async def drain_once(self) -> int:
        """Publishes one batch if this instance holds the relay lock; returns how many rows it published."""
        async with self._engine.begin() as connection:
            locked = await connection.scalar(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:key))"), {"key": RELAY_LOCK_KEY}
            )
            if not locked:
                return 0
            rows = [_row(row) for row in await connection.execute(_CLAIM, {"limit": self._settings.batch_size})]
            if rows:
                await self._publish(rows)
                # If the process dies here, Kafka has the batch and the rows are still unpublished:
                # the next relay sends them again. Duplicates, never losses.
                await connection.execute(_MARK, {"ids": [row.id for row in rows]})
        PUBLISHED.inc(len(rows))
        if len(rows) < self._settings.batch_size or time.monotonic() - self._lag_measured > _LAG_INTERVAL_S:
            await self._measure_lag()
        return len(rows)

    async def _measure_lag(self) -> None:
        async with self._engine.connect() as connection:
            count, oldest = (await connection.execute(_LAG, {"cap": _LAG_CAP})).one()
        UNPUBLISHED.set(int(count))
        OLDEST_AGE.set(float(oldest))
        self._lag_measured = time.monotonic()

    async def _publish(self, rows: Sequence[OutboxRow]) -> None:
        by_topic: dict[str, list[KafkaRecord]] = {}
        for row in rows:
            by_topic.setdefault(row.topic, []).append(row.record)
        await asyncio.gather(*(self._producer.send_records(topic, records) for topic, records in by_topic.items()))

    async def purge(self) -> int:
        """Deletes rows published longer ago than the retention period."""
        cutoff = self._clock.now() - timedelta(days=self._settings.retention_days)
        async with self._engine.begin() as connection:
            result = await connection.execute(
                text("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < :cutoff"), {"cutoff": cutoff}
            )
        deleted = int(result.rowcount)
        if deleted:
            log.info("purged published outbox rows", extra={"count": deleted})
        return deleted

    async def republish(self, *, since: datetime, until: datetime) -> int:
        """Marks rows created in [since, until) unpublished, so the relay sends them again."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                text(
                    "UPDATE outbox SET published_at = NULL "
                    "WHERE published_at IS NOT NULL AND created_at >= :since AND created_at < :until"
                ),
                {"since": since, "until": until},
            )
        self._wake.set()
        return int(result.rowcount)
