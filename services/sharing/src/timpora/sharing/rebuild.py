"""Rebuilding one agency's projection from the registry's event history.

The registry topic keeps every event forever (see the topic catalog), and every event carries the
person's full snapshot, so the newest event per person is all a projection needs. A rebuild reads
the topic from the beginning up to where it ends when the rebuild starts, keeps the newest event per
person, and writes each person's record under the agreement now in force. It runs beside the live
consumer: a row the live consumer already wrote under the new agreement with a newer event is left
alone, and rows still under an older agreement afterwards are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from aiokafka import AIOKafkaConsumer
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.common.db.engine import driver_connection
from timpora.common.events import EventDecodeError, KafkaRecord, decode
from timpora.common.events.payloads import ForeignerEvent
from timpora.common.kafka.admin import topic_partitions
from timpora.common.kafka.broker import client_options
from timpora.common.settings import KafkaSettings
from timpora.common.standing import zone_of
from timpora.sharing.domain.agreements import Agreement
from timpora.sharing.domain.fields import redact
from timpora.sharing.models import projections

log = logging.getLogger(__name__)


async def newest_events(kafka: KafkaSettings, topic: str) -> dict[UUID, ForeignerEvent]:
    """The newest event per foreigner on ``topic``, from its beginning to its end as of now."""
    # No group and no committed offsets: a fresh assignment starts at the earliest record.
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, group_id=None, auto_offset_reset="earliest", **client_options(kafka)
    )
    await consumer.start()
    newest: dict[UUID, ForeignerEvent] = {}
    try:
        partitions = await topic_partitions(kafka, topic)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {partition for partition in partitions if ends[partition] > 0}
        while remaining:
            for partition, records in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                for record in records:
                    if record.offset < ends[partition]:
                        _keep_newest(newest, record.key, record.value, record.headers)
                if await consumer.position(partition) >= ends[partition]:
                    remaining.discard(partition)
    finally:
        await consumer.stop()
    return newest


def _keep_newest(
    newest: dict[UUID, ForeignerEvent], key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> None:
    try:
        event = decode(KafkaRecord(key=key, value=value or b"", headers=tuple(headers)))
    except EventDecodeError:
        return  # the live consumer dead-lettered it already
    data = event.data
    if not isinstance(data, ForeignerEvent):
        return
    held = newest.get(data.foreigner.foreigner_id)
    if held is None or held.foreigner.version <= data.foreigner.version:
        newest[data.foreigner.foreigner_id] = data


async def rebuild(
    sessions: async_sessionmaker[AsyncSession], kafka: KafkaSettings, topic: str, agreement: Agreement, now: datetime
) -> int:
    """Rebuilds ``agreement``'s agency from ``topic``; returns how many people it wrote."""
    newest = await newest_events(kafka, topic) if agreement.in_force_at(now) else {}
    rows = []
    for data in newest.values():
        visible = agreement.shows(data)
        record = json.dumps(redact(data.foreigner, agreement.allowed)) if visible else None
        rows.append(
            (
                agreement.agency_id,
                data.foreigner.foreigner_id,
                data.foreigner.version,
                agreement.version,
                visible,
                record,
                zone_of(data.jurisdiction).key,
            )
        )
    async with sessions() as session, session.begin():
        connection = await driver_connection(await session.connection())
        # One COPY into a scratch table and one merge, instead of a statement per person.
        await connection.execute("CREATE TEMP TABLE rebuilt (LIKE projections INCLUDING DEFAULTS) ON COMMIT DROP")
        await connection.copy_records_to_table(
            "rebuilt",
            records=rows,
            columns=["agency_id", "foreigner_id", "version", "agreement_version", "visible", "record", "time_zone"],
        )
        await connection.execute(
            """
            INSERT INTO projections (agency_id, foreigner_id, version, agreement_version, visible, record, time_zone)
            SELECT agency_id, foreigner_id, version, agreement_version, visible, record, time_zone FROM rebuilt
            ON CONFLICT (agency_id, foreigner_id) DO UPDATE SET
                version = excluded.version, agreement_version = excluded.agreement_version,
                visible = excluded.visible, record = excluded.record, time_zone = excluded.time_zone,
                updated_at = now()
            -- The live consumer may already hold a newer event under the new agreement.
            WHERE projections.agreement_version <> excluded.agreement_version OR projections.version < excluded.version
            """
        )
        await session.execute(
            delete(projections).where(
                projections.c.agency_id == agreement.agency_id, projections.c.agreement_version != agreement.version
            )
        )
    log.info("projection rebuilt", extra={"agency_id": agreement.agency_id, "count": len(newest)})
    return len(newest)


async def stale_agencies(sessions: async_sessionmaker[AsyncSession], agreements: list[Agreement]) -> list[Agreement]:
    """The agreements whose agency's projection was built under another version."""
    stale = []
    async with sessions() as session:
        for agreement in agreements:
            other = await session.scalar(
                select(projections.c.agency_id)
                .where(
                    projections.c.agency_id == agreement.agency_id, projections.c.agreement_version != agreement.version
                )
                .limit(1)
            )
            if other is not None:
                stale.append(agreement)
    return stale


async def fingerprint(sessions: async_sessionmaker[AsyncSession], agency_id: str) -> str:
    """A hash of the agency's projection (who is visible, with what), to compare two builds."""
    digest = hashlib.sha256()
    async with sessions() as session:
        rows = await session.execute(
            select(
                projections.c.foreigner_id,
                projections.c.version,
                projections.c.visible,
                projections.c.record,
                projections.c.time_zone,
            )
            .where(projections.c.agency_id == agency_id)
            .order_by(projections.c.foreigner_id)
        )
        for foreigner_id, version, visible, record, time_zone in rows:
            digest.update(json.dumps([str(foreigner_id), version, visible, record, time_zone], sort_keys=True).encode())
    return digest.hexdigest()
