"""The sharing service's projection rebuild against a raw loop: fetch the same events from Kafka and
upsert the same final rows with asyncpg; and the live projection catching up on a backlog (a bulk import's
events) against the rebuild's rate for one agency."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import Result, timed
from tests.support.factories import sample_event
from tests.support.kafka import delete_namespace
from tests.support.processes import ServiceProcess, start_service
from timpora.common import register
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import driver_connection, make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.kafka.admin import consumer_lag, ensure_topics, started_consumer
from timpora.common.kafka.producer import EventProducer
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.common.topics import TopicSpec
from timpora.sharing import rebuild
from timpora.sharing.settings import SharingSettings

TODAY = date(2026, 11, 29)
VILLAGES = ("35.26.05.2003", "35.26.05.2004", "35.27.01.2001")


async def sharing_engine(admin_url: str) -> AsyncEngine:
    urls = await fresh_database(admin_url, "timpora_bench_sharing", role_prefix="timpora_bench")
    engine = make_engine(DatabaseSettings(url=urls["sharing"], pool_size=4), application_name="bench", schema="sharing")
    await upgrade(engine, "timpora.sharing", schema="sharing")
    return engine


async def _publish(kafka: KafkaSettings, topic: str, count: int) -> None:
    producer = EventProducer(kafka, client_id="bench-sharing")
    await producer.start()
    try:
        for start in range(0, count, 2000):
            batch = [sample_event(jurisdiction=VILLAGES[i % 3]) for i in range(start, min(count, start + 2000))]
            await producer.publish_many(topic, batch)
    finally:
        await producer.stop()


#: Ours (the agency's projection) against the raw loop's rows, person by person: the same people at the same
#: versions and, where ours shows the person, the same values of the fields the raw loop picks by hand, wherever ours
#: keeps them too (a guest's record has no home address). No more: the raw loop applies only the jurisdiction of the
#: agreement's terms (it keeps everyone living there, with the agreement's other fields empty).
_SAME_ROWS = """
    SELECT count(*) FILTER (WHERE raw.foreigner_id IS NULL) AS only_ours,
        count(*) FILTER (WHERE ours.foreigner_id IS NULL) AS only_raw,
        count(*) FILTER (WHERE ours.version <> raw.version) AS other_version,
        count(*) FILTER (WHERE ours.visible) AS compared,
        count(*) FILTER (WHERE ours.visible AND EXISTS (
            SELECT FROM unnest($3::text[]) AS picked (name)
            WHERE ours.record ? name AND ours.record -> name IS DISTINCT FROM raw.record -> name
        )) AS other_values
    FROM (SELECT foreigner_id, version, visible, record FROM projections WHERE agency_id = $1) AS ours
    FULL JOIN (SELECT foreigner_id, version, record FROM projections WHERE agency_id = $2) AS raw
        ON raw.foreigner_id = ours.foreigner_id
"""
#: What the raw loop takes from each snapshot.
_PICKED = ("full_name", "nationality", "residence_village_code")


async def _same_rows(engine: AsyncEngine, agency_id: str, count: int) -> None:
    async with engine.connect() as connection:
        found = await (await driver_connection(connection)).fetchrow(_SAME_ROWS, agency_id, "raw-agency", list(_PICKED))
    if found["only_ours"] or found["only_raw"] or found["other_version"] or found["other_values"]:
        raise AssertionError(f"projection rebuild: the raw loop's rows differ from ours: {dict(found)}")
    # Nobody in view would compare nothing (the events' villages are the agency's but for a third).
    if count and not found["compared"]:
        raise AssertionError("projection rebuild: ours shows nobody, so no record was compared")


async def bench_rebuild(engine: AsyncEngine, kafka: KafkaSettings, count: int) -> Result:
    topic = f"bench.history.{uuid.uuid4().hex[:6]}"
    await ensure_topics(kafka, [TopicSpec(topic, "foreigner id", 6, "bench")])
    await _publish(kafka, topic, count)
    agreement = register.current(register.DEFAULT_REGISTER).agreements["pemkab-bangkalan"]
    sessions = make_session_factory(engine)

    async def ours() -> None:
        await rebuild.rebuild(sessions, kafka, topic, [agreement], datetime(2026, 11, 29, 5, 0, tzinfo=UTC))

    ours_rate = await timed(count, ours)
    allowed = list(agreement.fields)
    within = tuple(f"{code}." for code in agreement.jurisdiction)

    async def raw() -> None:
        rows: dict[str, tuple[object, ...]] = {}
        taken = 0
        async with started_consumer(kafka, topic, group_id=None, auto_offset_reset="earliest") as consumer:
            while taken < count:
                for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    taken += len(records)
                    for record in records:
                        data = json.loads(record.value or b"{}")
                        person = data["foreigner"]
                        residence = person.get("residence") or {}
                        # Only the people living in the jurisdiction have a row, as in ours (no residence
                        # reported: where the event places them).
                        home = residence.get("village_code") or data.get("jurisdiction")
                        if not f"{home}.".startswith(within):
                            rows.pop(person["foreigner_id"], None)
                            continue
                        flat = {"full_name": person["full_name"], "nationality": person["nationality"]}
                        flat |= {"residence_village_code": residence.get("village_code")}
                        kept = {name: flat.get(name) for name in allowed}
                        rows[person["foreigner_id"]] = (
                            "raw-agency",
                            uuid.UUID(person["foreigner_id"]),
                            person["version"],
                            1,
                            True,
                            json.dumps(kept),
                        )
        async with engine.begin() as connection:
            driver = await driver_connection(connection)
            await driver.execute("CREATE TEMP TABLE raw_rows (LIKE projections INCLUDING DEFAULTS) ON COMMIT DROP")
            await driver.copy_records_to_table(
                "raw_rows",
                records=list(rows.values()),
                columns=["agency_id", "foreigner_id", "version", "agreement_version", "visible", "record"],
            )
            await driver.execute(
                "INSERT INTO projections (agency_id, foreigner_id, version, agreement_version, visible, record) "
                "SELECT agency_id, foreigner_id, version, agreement_version, visible, record FROM raw_rows "
                "ON CONFLICT (agency_id, foreigner_id) DO UPDATE SET record = excluded.record"
            )

    raw_rate = await timed(count, raw)
    await _same_rows(engine, agreement.agency_id, count)
    return Result(
        name=f"projection rebuild of {count:,} events (one agency, full snapshots, read from the start of the topic)",
        unit="events/s",
        ours=ours_rate,
        raw=raw_rate,
        baseline="raw aiokafka fetch + json.loads + hand-picked fields + one asyncpg COPY and merge of the same rows",
        note="ours decodes and validates every CloudEvent (pydantic) before redacting it; target >= 0.6 and 30,000/s",
        target=0.6,
    )


async def bench_live(
    admin_url: str, kafka: KafkaSettings, count: int, rebuild_rate: float, *, instances: int = 1
) -> Result:
    """The sharing service as ``make run`` starts it (``instances`` processes of it, as ``make run INSTANCES=2``
    does: the topic's partitions split between them), started on a backlog of ``count`` registry events, until its
    consumer group has committed them all: every shipped agreement's projection, history and topic outbox written."""
    urls = await fresh_database(admin_url, f"timpora_bench_live_{instances}", role_prefix="timpora_bench_live")
    kafka = kafka.model_copy(update={"namespace": f"bench-live-{uuid.uuid4().hex[:6]}"})
    topic = kafka.catalog.registry_events.name
    await ensure_topics(kafka, [kafka.catalog.registry_events])
    await _publish(kafka, topic, count)
    database = DatabaseSettings(url=urls["sharing"])
    group = SharingSettings(kafka=kafka, database=database).consumer_group
    extra = {
        "TIMPORA_REGISTER_FILE": str(register.DEFAULT_REGISTER),
        "TIMPORA_SHARING_DATABASE__POOL_SIZE": "4",
        # The projection alone: the relay publishing the agencies' topics is measured by the relay's benchmark.
        "TIMPORA_SHARING_RELAY__ENABLED": "false",
    }
    agreements = len(register.current(register.DEFAULT_REGISTER).agreements)
    processes: list[ServiceProcess] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-live-") as directory:
            started = time.perf_counter()
            try:
                processes.extend(
                    start_service(
                        "sharing",
                        kafka=kafka,
                        database=database,
                        log=Path(directory) / f"sharing-{instance + 1}.log",
                        extra=extra,
                    )
                    for instance in range(instances)
                )
                deadline = started + 1800
                while await consumer_lag(kafka, group, topic) > 0:
                    for process in processes:
                        if process.process.poll() is not None:
                            raise AssertionError(f"a sharing instance exited:\n{process.tail()}")
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"the projection did not catch up on {count:,} events in 30 minutes")
                    await asyncio.sleep(0.2)
                seconds = time.perf_counter() - started
            finally:
                for process in processes:
                    await process.stop()
    finally:
        await delete_namespace(kafka)
    shape = "one instance" if instances == 1 else f"{instances} instances, the topic's partitions split between them"
    return Result(
        name=f"live projection catching up on {count:,} registry events ({agreements} shipped agreements, {shape}, "
        f"{seconds:.1f} s from the service's start to none left)",
        unit="events/s",
        ours=count / seconds,
        raw=rebuild_rate,
        baseline="the projection rebuild for one agency, measured above in the same run",
        note="ours: the service as make run starts it, batches of 500 in one transaction each, every agreement's "
        "row, history and outbox written, offsets committed after; includes the service's start; target >= 0.5 and "
        "100,000 events within 60 s",
        target=0.5,
    )


async def run_all(admin_url: str, kafka: KafkaSettings, *, events: int, live_events: int) -> list[Result]:
    engine = await sharing_engine(admin_url)
    try:
        rebuilt = await bench_rebuild(engine, kafka, events)
    finally:
        await engine.dispose()
    # One instance, then two (``make run INSTANCES=2``): the second core is the next step the figures point to.
    return [rebuilt, *[await bench_live(admin_url, kafka, live_events, rebuilt.ours, instances=n) for n in (1, 2)]]
