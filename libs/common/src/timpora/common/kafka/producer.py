"""Publishing CloudEvents in binary mode, durably: idempotent producer, acks=all.

This is a plain aiokafka producer rather than FastStream's publish path: FastStream wraps every
message in its middleware chain, which costs several times the send itself (bench/README.md).
FastStream still consumes, and documents the topics in AsyncAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from timpora.common.events import CloudEvent, KafkaRecord, encode
from timpora.common.events.payloads import Contract
from timpora.common.kafka.broker import client_options, durability
from timpora.common.settings import KafkaSettings

log = logging.getLogger(__name__)


class ProducerReplacedError(KafkaError):
    """The producer was replaced since the caller's first batch: a batch sent now could overtake one of those that
    failed (sent again later), and a person's events would leave out of order. The caller starts over."""


class EventProducer:
    """One idempotent aiokafka producer, replaced by a fresh one after a send fails (see :meth:`_renew`)."""

    def __init__(self, settings: KafkaSettings, *, client_id: str, linger_ms: int = 0) -> None:
        self._options = {
            "client_id": settings.client_id or client_id,
            "linger_ms": linger_ms,
            **client_options(settings),
            **durability(settings),
        }
        #: The bound on aiokafka's waits, which can be unbounded: a replaced producer may take this long to deliver
        #: what it still holds before the rest is failed; starting a producer or handing it records may take twice
        #: this (room for a request that timed out and one more).
        self._bound_s = settings.request_timeout_ms / 1000
        self._started: AIOKafkaProducer | None = None
        self._stale = False
        self._stopping = False
        #: Which producer this is: one more at each renewal (see :meth:`enqueue`'s ``generation``).
        self._generation = 0
        self._renewing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds to the running event loop, and a service
        # builds its runtime before uvicorn starts the loop.
        self._started = await self._fresh()
        self._stale = self._stopping = False

    async def _fresh(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._options)
        try:
            # Bounded: aiokafka asks for a producer id until a broker gives one, however long that takes.
            async with asyncio.timeout(2 * self._bound_s):
                await producer.start()
        except BaseException as error:
            await producer.stop()  # its connections and tasks, which a failed start leaves open
            if isinstance(error, TimeoutError):
                raise KafkaTimeoutError("no Kafka producer could be started in time") from error
            raise
        return producer

    async def stop(self) -> None:
        self._stopping = True
        renewing = self._renewing
        if renewing is not None and not renewing.done():
            # Not while a renewal is installing a producer: it ends first (its failure is its waiters' to see).
            await asyncio.wait([renewing])
        if self._started is not None:
            await self._started.stop()
            self._started = None

    @property
    def generation(self) -> int:
        """Which producer sends now: one more after each renewal."""
        return self._generation

    async def ready(self) -> int:
        """Renews the producer if a send failed, and returns its generation (for :meth:`enqueue`)."""
        await self._producer()
        return self._generation

    async def _producer(self) -> AIOKafkaProducer:
        if self._stopping:
            raise RuntimeError("the producer is stopping")
        if self._stale:
            if self._renewing is None or self._renewing.done():
                self._renewing = asyncio.create_task(self._renewal())
                self._renewing.add_done_callback(_retrieved)
            # Shielded: a caller cancelled (its own timeout, a shutdown) does not cut the renewal short half-way,
            # with the old producer half closed; every caller waiting sees how it ended.
            await asyncio.shield(self._renewing)
        if self._started is None:
            raise RuntimeError("the producer is not started")
        return self._started

    async def _renewal(self) -> None:
        # The old one is done with before the new one sends anything: the two never write one partition side by
        # side, where a batch the old one still retried could land after a newer one of the same person. If Kafka
        # cannot be reached, starting the new one raises, and the callers' sends fail as they would have; the next
        # send tries again (the old one, closed already, is closed again at no cost).
        if self._started is not None:
            await _close_within(self._started, self._bound_s)
        self._started = await self._fresh()
        self._generation += 1
        self._stale = False
        log.info("the Kafka producer was replaced by a fresh one")

    def _renew(self, failed: AIOKafkaProducer, error: BaseException, topic: str) -> None:
        """Replaces ``failed`` by a fresh producer at the next send, once.

        Why: the idempotent producer numbers each partition's batches, and the broker accepts only the next number.
        aiokafka gives a batch its number when it leaves the queue, also when it then fails it unsent (no leader
        for its partition until the request timeout: the whole cluster restarting). Kafka's Java client starts a new
        epoch there; aiokafka does not, so every later batch to that partition is refused as out of order, for the
        producer's lifetime (a clean-clone run of the fault suite lost every event of two partitions so, while the
        relay sent the others again and again). A new producer has a new producer id, numbered from zero; what the
        old one had sent, the new one may send again, and consumers drop it by event id."""
        if self._started is failed and not self._stale:
            self._stale = True
            log.warning(
                "a send to Kafka failed; the producer will be replaced by a fresh one",
                extra={"reason": type(error).__name__, "topic": topic},
            )

    async def send_record(self, topic: str, record: KafkaRecord) -> None:
        """Sends one record and waits until every in-sync replica has it."""
        await (await self.enqueue(topic, [record]))

    async def send_records(self, topic: str, records: Sequence[KafkaRecord]) -> None:
        """Sends records pipelined, in order per partition, and waits until all are acknowledged.

        If one fails, the exception propagates after the rest settle, and the producer is replaced before the next
        send (:meth:`_renew`): a retry of the whole batch may write a record once more (consumers drop it by event
        id), after whatever the old producer delivered.
        """
        await (await self.enqueue(topic, records))

    async def enqueue(
        self, topic: str, records: Sequence[KafkaRecord], *, generation: int | None = None
    ) -> Awaitable[None]:
        """Hands records to the producer in order and returns what waits for their acknowledgements,
        so the caller can prepare more while Kafka works.

        ``generation`` (from :meth:`ready`): a caller with batches still unacknowledged (the outbox relay's
        pipeline) sends nothing through a producer other than theirs. Within one idempotent producer, a batch that
        fails takes every later one to its partition with it, so order holds; across two it would not: the old
        one's failed batch, sent again, would land after the new one's later batch. ProducerReplacedError then."""
        producer = await self._producer()
        if generation is not None and generation != self._generation:
            raise ProducerReplacedError("the Kafka producer was replaced since this caller's earlier batches")
        try:
            # Bounded: a send waiting for a topic's metadata on a producer closed meanwhile would wait for ever.
            async with asyncio.timeout(2 * self._bound_s):
                futures = [
                    await producer.send(topic, record.value, key=record.key, headers=list(record.headers))
                    for record in records
                ]
        except TimeoutError as error:
            self._renew(producer, error, topic)
            raise KafkaTimeoutError("records could not be handed to the Kafka producer in time") from error
        except Exception as error:
            self._renew(producer, error, topic)
            raise

        async def acknowledged() -> None:
            results = await asyncio.gather(*futures, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    self._renew(producer, result, topic)
                    raise result

        # A task, not a bare coroutine: it runs (and its outcome is kept) even if the caller never waits.
        return asyncio.ensure_future(acknowledged())

    async def publish(self, topic: str, event: CloudEvent[Contract], *, key: str | None = None) -> None:
        await self.send_record(topic, encode(event, key=key))

    async def publish_many(self, topic: str, events: Sequence[CloudEvent[Contract]]) -> None:
        await self.send_records(topic, [encode(event) for event in events])


async def _close_within(producer: AIOKafkaProducer, seconds: float) -> None:
    """Stops ``producer`` once what it holds is delivered, or, after ``seconds``, fails the rest unsent: either way,
    nothing of it is sent after this returns (short of a request already on the wire)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(producer.flush(), seconds)
    # Then, delivered or not: its sender stops, so that nothing it holds leaves from now on (what a caller still
    # handed it after the flush began included); every batch it still held fails, so that whoever waits on one is
    # told (aiokafka fails them itself only when its sender dies of an error, not when it is stopped: they would be
    # waited on for ever), and any record handed to it later is refused. Private parts of aiokafka 0.14, for want
    # of a public way.
    accumulator = producer._message_accumulator  # noqa: SLF001
    await producer._sender.close()  # noqa: SLF001
    held = [*(batch for queued in accumulator._batches.values() for batch in queued), *accumulator._pending_batches]  # noqa: SLF001
    accumulator.fail_all(KafkaTimeoutError("the producer was replaced before this was sent"))
    for batch in held:
        # Each record's waiter is told through its own future; the batch's own, nobody waits on.
        for future in (batch.future, batch._drain_waiter):  # noqa: SLF001
            if future.done() and not future.cancelled():
                future.exception()
    await producer.stop()  # its sender is done: this closes its connections without waiting on anything


def _retrieved(task: asyncio.Task[None]) -> None:
    """A renewal's failure is its waiters' to see; if none is left, it is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()
