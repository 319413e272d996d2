"""Consuming registry events durably: decode, dedupe through the inbox, apply, commit, then ack.

The order is what makes it safe. The handler's effects and the inbox row commit in one database
transaction; only after that commit does FastStream commit the Kafka offset. A crash before the
database commit redelivers the event; a crash between the two commits redelivers it too, and the
inbox row turns the second delivery into a no-op.

Failures are retried a bounded number of times, then sorted: a record that cannot be decoded, a
handler's ``PermanentEventError``, or any other error that outlasts the retries goes to a
dead-letter topic with its reason, and the consumer moves on instead of blocking its partition
(the dead letters can be replayed). A database or network that is unavailable is not the event's
fault: that error is raised to FastStream, which hands the record back to Kafka for redelivery,
so an outage delays events and never drops them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import asyncpg.exceptions
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.common.db.inbox import claim
from timpora.common.events import CloudEvent, EventDecodeError, KafkaRecord, decode
from timpora.common.events.payloads import Contract
from timpora.common.kafka.producer import EventProducer
from timpora.common.metrics import EVENT_PROCESSING_SECONDS, EVENT_RETRIES, EVENTS_CONSUMED

log = logging.getLogger(__name__)

EventHandler = Callable[[CloudEvent[Contract], AsyncSession], Awaitable[None]]


def is_infrastructure_failure(error: BaseException) -> bool:
    """Whether ``error`` says the database or the network is unavailable, rather than this event being bad."""
    if isinstance(error, OSError | TimeoutError | ConnectionError):
        return True
    # Straight on asyncpg (COPY, batches), a lost connection is asyncpg's own error, not SQLAlchemy's.
    if isinstance(error, asyncpg.exceptions.PostgresConnectionError | asyncpg.exceptions.InterfaceError):
        return True
    if isinstance(error, DBAPIError) and (error.connection_invalidated or isinstance(error, OperationalError)):
        return True
    return isinstance(getattr(error, "orig", None), OSError | ConnectionError) or isinstance(
        error.__cause__, OSError | ConnectionError
    )


class PermanentEventError(Exception):
    """Raised by a handler for an event that will never succeed; ``str(error)`` must hold no personal data."""


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    record: KafkaRecord

    @classmethod
    def from_message(cls, message: ConsumerRecord[bytes, bytes]) -> ConsumedRecord:
        """From aiokafka's ``ConsumerRecord`` (FastStream's ``message.raw_message``)."""
        return cls(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            record=KafkaRecord(
                key=message.key,
                value=message.value if message.value is not None else b"",
                headers=tuple((name, value or b"") for name, value in message.headers),
            ),
        )


class DeadLetterSink(Protocol):
    async def send(self, consumed: ConsumedRecord, *, consumer: str, reason: str) -> None: ...


class KafkaDeadLetterSink:
    """Publishes the original key, value and headers to a dead-letter topic, with ``dlq_*`` headers added."""

    def __init__(self, producer: EventProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, consumed: ConsumedRecord, *, consumer: str, reason: str) -> None:
        added = {
            "dlq_reason": reason,
            "dlq_consumer": consumer,
            "dlq_source_topic": consumed.topic,
            "dlq_source_partition": str(consumed.partition),
            "dlq_source_offset": str(consumed.offset),
            "dlq_failed_at": datetime.now(UTC).isoformat(),
        }
        record = replace(
            consumed.record,
            headers=(*consumed.record.headers, *((name, value.encode()) for name, value in added.items())),
        )
        await self._producer.send_record(self._topic, record)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    first_delay_s: float = 0.2
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        return self.first_delay_s * self.multiplier ** (attempt - 1)


class InboxConsumer:
    def __init__(
        self,
        *,
        name: str,
        service: str,
        session_factory: async_sessionmaker[AsyncSession],
        inbox: Table,
        handler: EventHandler,
        dead_letters: DeadLetterSink,
        retry: RetryPolicy | None = None,
        before_commit: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        """``before_commit`` runs last in each transaction: a handler that buffers its writes sends them there."""
        self.name = name
        self._service = service
        self._sessions = session_factory
        self._inbox = inbox
        self._handler = handler
        self._dead_letters = dead_letters
        self._retry = retry or RetryPolicy()
        self._before_commit = before_commit

    async def consume(self, consumed: ConsumedRecord) -> Outcome:
        started = time.perf_counter()
        try:
            event = decode(consumed.record)
        except EventDecodeError as error:
            outcome = await self._dead_letter(consumed, error.reason)
        else:
            outcome = await self._apply_with_retries(consumed, event)
        EVENTS_CONSUMED.labels(self._service, self.name, outcome.value).inc()
        EVENT_PROCESSING_SECONDS.labels(self._service, self.name).observe(time.perf_counter() - started)
        return outcome

    async def consume_batch(self, batch: Sequence[ConsumedRecord]) -> list[Outcome]:
        """Applies a batch in one transaction (one commit for many events); if anything in it fails, applies
        each record on its own with :meth:`consume`, so one bad event is retried or dead-lettered alone."""
        started = time.perf_counter()
        decoded: list[tuple[ConsumedRecord, CloudEvent[Contract]]] = []
        outcomes: list[Outcome] = []
        for consumed in batch:
            try:
                decoded.append((consumed, decode(consumed.record)))
            except EventDecodeError as error:
                outcomes.append(await self._dead_letter(consumed, error.reason))
                EVENTS_CONSUMED.labels(self._service, self.name, Outcome.DEAD_LETTERED.value).inc()
        try:
            applied = await self._apply_all(decoded)
        except Exception:  # noqa: BLE001 - sorted out record by record below, where retries and dead letters live
            EVENT_RETRIES.labels(self._service, self.name).inc()
            return outcomes + [await self.consume(consumed) for consumed, _ in decoded]
        for outcome in applied:
            EVENTS_CONSUMED.labels(self._service, self.name, outcome.value).inc()
        if decoded:
            EVENT_PROCESSING_SECONDS.labels(self._service, self.name).observe(
                (time.perf_counter() - started) / len(decoded)
            )
        return outcomes + applied

    async def _apply_all(self, decoded: Sequence[tuple[ConsumedRecord, CloudEvent[Contract]]]) -> list[Outcome]:
        """Claims the events in the inbox, applies the new ones and commits: one transaction, any number of events."""
        if not decoded:
            return []
        async with self._sessions() as session, session.begin():
            fresh = await claim(
                session,
                self._inbox,
                self.name,
                [
                    {
                        "event_id": event.id,
                        "event_type": event.type,
                        "topic": consumed.topic,
                        "partition": consumed.partition,
                        "offset": consumed.offset,
                    }
                    for consumed, event in decoded
                ],
            )
            outcomes = []
            for _, event in decoded:
                if event.id in fresh:
                    fresh.discard(event.id)  # the same event twice in one batch is applied once
                    await self._handler(event, session)
                    outcomes.append(Outcome.PROCESSED)
                else:
                    outcomes.append(Outcome.DUPLICATE)
            if self._before_commit is not None:
                await self._before_commit(session)
        return outcomes

    async def _apply_with_retries(self, consumed: ConsumedRecord, event: CloudEvent[Contract]) -> Outcome:
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                return await self._apply(consumed, event)
            except PermanentEventError as error:
                return await self._dead_letter(consumed, str(error), event_id=event.id)
            except Exception as error:  # anything else may pass: a lost connection, a deadlock, a bug
                if attempt == self._retry.max_attempts:
                    if is_infrastructure_failure(error):
                        # The database (or the network) is down, not this event: give it back to Kafka,
                        # which redelivers it. Dead-lettering here would drop every event of an outage.
                        raise
                    reason = f"failed {attempt} times; last error {type(error).__name__}"
                    return await self._dead_letter(consumed, reason, event_id=event.id)
                EVENT_RETRIES.labels(self._service, self.name).inc()
                log.warning(
                    "event processing failed; retrying",
                    extra={"event_id": event.id, "attempt": attempt, "reason": type(error).__name__},
                )
                await asyncio.sleep(self._retry.delay(attempt))
        raise AssertionError("unreachable: the loop returns on its last attempt")

    async def _apply(self, consumed: ConsumedRecord, event: CloudEvent[Contract]) -> Outcome:
        (outcome,) = await self._apply_all([(consumed, event)])
        return outcome

    async def _dead_letter(self, consumed: ConsumedRecord, reason: str, *, event_id: str | None = None) -> Outcome:
        log.warning(
            "event dead-lettered",
            extra={
                "consumer": self.name,
                "event_id": event_id,
                "topic": consumed.topic,
                "partition": consumed.partition,
                "offset": consumed.offset,
                "reason": reason,
            },
        )
        # If this publish fails the exception propagates, FastStream nacks, and Kafka redelivers the
        # record: a dead letter is never lost, at worst written twice.
        await self._dead_letters.send(consumed, consumer=self.name, reason=reason)
        return Outcome.DEAD_LETTERED


def subscribe(
    broker: KafkaBroker,
    consumer: InboxConsumer,
    *,
    topic: str,
    group_id: str,
    batch_size: int | None = None,
    streams: int = 1,
) -> None:
    """Registers ``consumer`` on ``topic``: offsets committed only after ``consume`` returns. With
    ``batch_size``, up to that many records are applied in one transaction (see ``consume_batch``). With ``streams``
    above one, as many members of the group in this process, each with partitions of its own: while one waits on
    the database for its batch, the next batch is worked out on the other's partitions (a record's partition, and so
    its person's order, still belongs to one member at a time)."""

    # No body parameter: FastStream would decode and validate the value itself (and log the input on
    # failure). The record goes to ``consume`` untouched; decoding there dead-letters what is bad.
    async def handle(message: KafkaMessage) -> None:
        raw = message.raw_message
        if isinstance(raw, tuple):
            await consumer.consume_batch([ConsumedRecord.from_message(record) for record in raw])
        else:
            await consumer.consume(ConsumedRecord.from_message(raw))

    if streams < 1:
        raise ValueError(f"streams must be at least 1, not {streams}")
    # The record's value is left alone (``_undecoded``): FastStream would otherwise parse every value whose
    # content-type says JSON before the handler runs, for nothing (``decode`` parses and validates it), and fail on one
    # that is not JSON every time it is delivered, leaving its partition stuck behind it instead of dead-lettering it.
    # Its headers likewise (``_parsed``).
    batching: dict[str, Any] = {"batch": True, "max_records": batch_size, "batch_timeout_ms": 100} if batch_size else {}
    for stream in range(1, streams + 1):
        broker.subscriber(
            topic,
            group_id=group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            parser=_parsed,
            decoder=_undecoded,
            # Never answer a record's ``reply_to`` header: FastStream would publish the handler's result to the topic
            # it names after the transaction, past every gate, and retry the record for good when that fails.
            no_reply=True,
            title=f"{consumer.name}:{topic}" if stream == 1 else f"{consumer.name}:{topic}#{stream}",
            **batching,
        )(handle)


async def _undecoded(_message: object) -> None:
    """FastStream's decoder for the subscribers of :func:`subscribe`: nothing (see there)."""
    return


async def _parsed(
    raw: ConsumerRecord[bytes, bytes] | tuple[ConsumerRecord[bytes, bytes], ...],
    original: Callable[[object], Awaitable[StreamMessage[object]]],
) -> StreamMessage[object]:
    """FastStream's parser for the subscribers of :func:`subscribe`. FastStream reads every header as UTF-8 text
    before the handler runs: a record with a header that is not (or one with no value) would fail there at every
    delivery, its partition stuck behind it. Such a batch is parsed without headers and handed on as it came, for
    ``decode`` to dead-letter the record with its reason."""
    try:
        return await original(raw)
    except (UnicodeDecodeError, AttributeError):
        records = raw if isinstance(raw, tuple) else (raw,)
        headerless = tuple(replace(record, headers=[]) for record in records)
        message = await original(headerless if isinstance(raw, tuple) else headerless[0])
        message.raw_message = raw
        return message
