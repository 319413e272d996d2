"""Consumer lag as a metric: how far a service's consumer group is behind the topic it reads."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from timpora.common.kafka.admin import consumer_lag
from timpora.common.metrics import CONSUMER_LAG
from timpora.common.settings import KafkaSettings

log = logging.getLogger(__name__)


async def monitor(settings: KafkaSettings, *, service: str, group_id: str, topic: str, every_s: float = 15.0) -> None:
    """Updates ``timpora_consumer_lag_records`` every ``every_s`` until cancelled."""
    gauge = CONSUMER_LAG.labels(service, group_id, topic)
    while True:
        try:
            gauge.set(await consumer_lag(settings, group_id, topic))
        except Exception as error:  # noqa: BLE001 - a missed reading must not stop the readings
            log.warning("consumer lag not measured", extra={"reason": type(error).__name__})
        await asyncio.sleep(every_s)


def monitor_worker(
    settings: KafkaSettings, *, service: str, group_id: str, topic: str
) -> Callable[[], Awaitable[None]]:
    """:func:`monitor` as a service's worker (``runtime.workers``): one way for every consumer group."""
    return functools.partial(monitor, settings, service=service, group_id=group_id, topic=topic)
