"""Publishing CloudEvents in binary mode, durably: idempotent producer, acks=all.

This is a plain aiokafka producer rather than FastStream's publish path: FastStream wraps every
message in its middleware chain, which costs several times the send itself (bench/README.md).
FastStream still consumes, and documents the topics in AsyncAPI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from timpora.common.events import CloudEvent, KafkaRecord, encode
from timpora.common.events.payloads import Contract
from timpora.common.kafka.broker import client_options, durability
from timpora.common.settings import KafkaSettings

log = logging.getLogger(__name__)


class EventProducer:
    """One idempotent aiokafka producer, replaced by a fresh one after any send fails (see :meth:`_renew`)."""

    def __init__(self, settings: KafkaSettings, *, client_id: str, linger_ms: int = 0) -> None:
        self._options = {
            "client_id": settings.client_id or client_id,
            "linger_ms": linger_ms,
            **client_options(settings),
            **durability(settings),
        }
        #: How long a replaced producer may take to settle what it still holds before it is closed regardless.
        self._retire_s = 2 * settings.request_timeout_ms / 1000
        self._started: AIOKafkaProducer | None = None
        self._stale = False
        self._starting = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds to the running event loop, and a service
        # builds its runtime before uvicorn starts the loop.
        producer = AIOKafkaProducer(**self._options)
        await producer.start()
        self._started, self._stale = producer, False

    async def stop(self) -> None:
        if self._started is not None:
            await self._started.stop()
            self._started = None
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise RuntimeError("the producer is not started")
        if self._stale:
            async with self._starting:
                if self._stale:  # not renewed by a concurrent caller meanwhile
                    # If Kafka cannot be reached yet this raises, and the caller's send fails as it would
                    # have; the next one tries again.
                    old = self._started
                    await self.start()
                    self._retire(old)
        return self._started

    def _renew(self, failed: AIOKafkaProducer) -> None:
        """Replaces ``failed`` by a fresh producer at the next send, once.

        Why: the idempotent producer numbers each partition's batches, and the broker accepts only the next number.
        aiokafka gives a batch its number when it leaves the queue, also when it then fails it unsent (no leader
        for its partition until the request timeout: the whole cluster restarting). Kafka's Java client starts a new
        epoch there; aiokafka does not, so every later batch to that partition is refused as out of order, for the
        producer's lifetime (a clean-clone run of the fault suite lost every event of two partitions so, while the
        relay sent the others again and again). A new producer has a new producer id, numbered from zero."""
        if self._started is failed and not self._stale:
            self._stale = True
            log.warning("a send failed; the Kafka producer is replaced by a fresh one")

    def _retire(self, old: AIOKafkaProducer) -> None:
        async def retired() -> None:
            try:
                await asyncio.wait_for(old.stop(), self._retire_s)
            except (TimeoutError, KafkaError):
                log.warning("a replaced Kafka producer did not close in time")

        task = asyncio.create_task(retired())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def send_record(self, topic: str, record: KafkaRecord) -> None:
        """Sends one record and waits until every in-sync replica has it."""
        await (await self.enqueue(topic, [record]))

    async def send_records(self, topic: str, records: Sequence[KafkaRecord]) -> None:
        """Sends records pipelined, in order per partition, and waits until all are acknowledged.

        If one fails, the exception propagates after the rest settle; with the idempotent producer a
        retry of the whole batch writes each record at most once more, never out of order.
        """
        await (await self.enqueue(topic, records))

    async def enqueue(self, topic: str, records: Sequence[KafkaRecord]) -> Awaitable[None]:
        """Hands records to the producer in order and returns what waits for their acknowledgements,
        so the caller can prepare more while Kafka works."""
        producer = await self._producer()
        try:
            futures = [
                await producer.send(topic, record.value, key=record.key, headers=list(record.headers))
                for record in records
            ]
        except Exception:
            self._renew(producer)
            raise

        async def acknowledged() -> None:
            results = await asyncio.gather(*futures, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    self._renew(producer)
                    raise result

        # A task, not a bare coroutine: it runs (and its outcome is kept) even if the caller never waits.
        return asyncio.ensure_future(acknowledged())

    async def publish(self, topic: str, event: CloudEvent[Contract], *, key: str | None = None) -> None:
        await self.send_record(topic, encode(event, key=key))

    async def publish_many(self, topic: str, events: Sequence[CloudEvent[Contract]]) -> None:
        await self.send_records(topic, [encode(event) for event in events])
