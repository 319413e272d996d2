"""Benchmarks, each reported as a ratio to a raw baseline measured in the same run.

    make bench            (starts the local stack if needed)

Results are printed and written to bench/results/latest.json; bench/README.md keeps the latest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from tests.support.factories import sample_event

from timpora.common.events import KafkaRecord, encode
from timpora.common.kafka.admin import ensure_topics
from timpora.common.kafka.producer import EventProducer
from timpora.common.settings import KafkaSettings
from timpora.common.topics import TopicSpec

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Result:
    name: str
    unit: str
    ours: float
    raw: float
    baseline: str

    @property
    def ratio(self) -> float:
        return self.ours / self.raw


async def _timed(count: int, body: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await body()
    return count / (time.perf_counter() - started)


async def bench_publish(kafka: KafkaSettings, count: int, window: int, repeats: int) -> Result:
    """CloudEvents through timpora's producer (encode + send) vs raw aiokafka sending pre-encoded records.

    Both idempotent with acks=all and the same number in flight; the two alternate ``repeats`` times
    and the median of each is reported, so a noisy moment hurts neither side alone.
    """
    topic = f"bench.publish.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [TopicSpec(topic, "foreigner id", 6, "benchmark")])
    events = [sample_event() for _ in range(count)]
    records: list[KafkaRecord] = [encode(event) for event in events]
    producer = EventProducer(kafka, client_id="bench")
    raw_producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all", enable_idempotence=True)
    await producer.start()
    await raw_producer.start()

    async def ours() -> None:
        for start in range(0, count, window):
            await producer.publish_many(topic, events[start : start + window])

    async def raw() -> None:
        for start in range(0, count, window):
            futures = [
                await raw_producer.send(topic, record.value, key=record.key, headers=list(record.headers))
                for record in records[start : start + window]
            ]
            await asyncio.gather(*futures)

    ours_rates, raw_rates = [], []
    try:
        for _ in range(repeats):
            ours_rates.append(await _timed(count, ours))
            raw_rates.append(await _timed(count, raw))
    finally:
        await producer.stop()
        await raw_producer.stop()
    return Result(
        name=f"publish {count} CloudEvents (encode + send, acks=all, {window} in flight, median of {repeats})",
        unit="events/s",
        ours=statistics.median(ours_rates),
        raw=statistics.median(raw_rates),
        baseline="raw aiokafka producer sending the same records, pre-encoded",
    )


def _report(results: list[Result]) -> None:
    for result in results:
        print(
            f"{result.name}: {result.ours:,.0f} {result.unit} vs raw {result.raw:,.0f} "
            f"-> ratio {result.ratio:.2f} (baseline: {result.baseline})"
        )
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": [asdict(result) | {"ratio": result.ratio} for result in results],
    }
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    kafka = KafkaSettings(bootstrap_servers=os.environ.get("TIMPORA_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
    # Warm up connections and the JIT-less paths once, so neither side pays for first contact.
    await bench_publish(kafka, 500, 100, 1)
    _report([await bench_publish(kafka, args.events, args.window, args.repeats)])


if __name__ == "__main__":
    asyncio.run(main())
