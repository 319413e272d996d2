"""Publishing CloudEvents in binary mode, durably: idempotent producer, acks=all.

This is a plain aiokafka producer rather than FastStream's publish path: FastStream wraps every
message in its middleware chain, which costs several times the send itself (bench/README.md).
FastStream still consumes, and documents the topics in AsyncAPI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from aiokafka import AIOKafkaProducer

from timpora.common.events import CloudEvent, KafkaRecord, encode
from timpora.common.events.payloads import Contract
from timpora.common.kafka.broker import client_options, durability
from timpora.common.settings import KafkaSettings


class EventProducer:
    def __init__(self, settings: KafkaSettings, *, client_id: str, linger_ms: int = 0) -> None:
        self._options = {
            "client_id": settings.client_id or client_id,
            "linger_ms": linger_ms,
            **client_options(settings),
            **durability(settings),
        }
        self._started: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds to the running event loop, and a service
        # builds its runtime before uvicorn starts the loop.
        self._started = AIOKafkaProducer(**self._options)
        await self._started.start()

    async def stop(self) -> None:
        if self._started is not None:
            await self._started.stop()
            self._started = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise RuntimeError("the producer is not started")
        return self._started

    async def send_record(self, topic: str, record: KafkaRecord) -> None:
        """Sends one record and waits until every in-sync replica has it."""
        await self._producer.send_and_wait(topic, record.value, key=record.key, headers=list(record.headers))

    async def send_records(self, topic: str, records: Sequence[KafkaRecord]) -> None:
        """Sends records pipelined, in order per partition, and waits until all are acknowledged.

        If one fails, the exception propagates after the rest settle; with the idempotent producer a
        retry of the whole batch writes each record at most once more, never out of order.
        """
        await (await self.enqueue(topic, records))

    async def enqueue(self, topic: str, records: Sequence[KafkaRecord]) -> Awaitable[None]:
        """Hands records to the producer in order and returns what waits for their acknowledgements,
        so the caller can prepare more while Kafka works."""
        send = self._producer.send
        futures = [await send(topic, record.value, key=record.key, headers=list(record.headers)) for record in records]

        async def acknowledged() -> None:
            results = await asyncio.gather(*futures, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

        # A task, not a bare coroutine: it runs (and its outcome is kept) even if the caller never waits.
        return asyncio.ensure_future(acknowledged())

    async def publish(self, topic: str, event: CloudEvent[Contract], *, key: str | None = None) -> None:
        await self.send_record(topic, encode(event, key=key))

    async def publish_many(self, topic: str, events: Sequence[CloudEvent[Contract]]) -> None:
        await self.send_records(topic, [encode(event) for event in events])
