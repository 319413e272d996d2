"""Publishing CloudEvents through a FastStream broker, in binary mode."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from timpora.common.events import CloudEvent, encode
from timpora.common.events.payloads import Contract


async def publish_event(
    broker: KafkaBroker, topic: str, event: CloudEvent[Contract], *, key: str | None = None
) -> None:
    """Publishes ``event`` keyed by ``key`` (default: its subject) and waits for the broker's acknowledgement."""
    record = encode(event, key=key)
    await broker.publish(record.value, topic, key=record.key, headers=record.headers_dict())
