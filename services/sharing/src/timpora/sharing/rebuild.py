"""Rebuilding one agency's projection from the registry's event history.

The registry topic keeps every event forever (see the topic catalog), and every event carries the
person's full snapshot, so the newest event per person is all a projection needs. A rebuild reads
the topic from the beginning up to where it ends when the rebuild starts, keeps each person's events
that changed their record (every newer version once, in order, as the live consumer applies them),
and writes each person's newest record under the agreement now in force — and the agency's projection
history, every one of those events as the live consumer would have appended it under that agreement.
It runs beside the live consumer: a row the live consumer already wrote under the new agreement with a
newer event is left alone, and rows still under an older agreement afterwards are removed, as are the rows of
people the new terms leave out of view (only people in view have a row).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.common.collector import collector_spared
from timpora.common.db.engine import driver_connection
from timpora.common.events import EventDecodeError, KafkaRecord, decode
from timpora.common.events.payloads import ForeignerEvent
from timpora.common.kafka.admin import records_to_end
from timpora.common.register.agreements import Agreement, Agreements
from timpora.common.settings import KafkaSettings
from timpora.common.standing import zone_of
from timpora.sharing.models import agreements as agreement_rows
from timpora.sharing.models import projection_builds, projection_history, projections
from timpora.sharing.projection import HISTORY_COLUMNS, ROW_COLUMNS, Shown, history_row, merging_alone

log = logging.getLogger(__name__)

#: Records read between two calls of ``keep``: few enough that the collector's passes stay short, many enough that
#: the cycles other tasks made in between (kept to the end with the records) stay few.
_KEEP_EVERY = 1_000


@dataclass(frozen=True, slots=True)
class Recorded:
    """One event that changed a person's record: what the projection history keeps of it."""

    event_type: str
    occurred_at: datetime
    data: ForeignerEvent


async def person_histories(
    kafka: KafkaSettings, topic: str, keep: Callable[[], None] = lambda: None
) -> dict[UUID, list[Recorded]]:
    """Per foreigner on ``topic``, from its beginning to its end as of now, the events that changed their
    record, oldest first: each version once (a reminder repeating a version changes nothing), and an older
    version after a newer one dropped, exactly as the live consumer applies them. ``keep`` is called every
    ``_KEEP_EVERY`` records (see ``collector_spared``)."""
    histories: dict[UUID, list[Recorded]] = {}
    read = 0
    async for record in records_to_end(kafka, topic):
        _keep_newer(histories, record.key, record.value, record.headers)
        read += 1
        if read % _KEEP_EVERY == 0:
            keep()
    return histories


def _keep_newer(
    histories: dict[UUID, list[Recorded]],
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> None:
    try:
        event = decode(KafkaRecord(key=key, value=value or b"", headers=tuple(headers)))
    except EventDecodeError:
        return  # the live consumer dead-lettered it already
    data = event.data
    if not isinstance(data, ForeignerEvent):
        return
    held = histories.setdefault(data.foreigner.foreigner_id, [])
    if not held or held[-1].data.foreigner.version < data.foreigner.version:
        held.append(Recorded(event.spec.name, event.time, data))


async def rebuild(
    sessions: async_sessionmaker[AsyncSession],
    kafka: KafkaSettings,
    topic: str,
    agreements: Sequence[Agreement],
    now: datetime,
) -> dict[str, int]:
    """Rebuilds the projection and history of each of ``agreements``' agencies from ``topic``, read once for all of
    them; returns how many people each has in view. Each agency is merged in a transaction of its own."""
    # Every event read stays alive to the end: the collector's passes over them were half the rebuild's CPU.
    with collector_spared() as keep:
        # What was read is let go when _rebuilt returns, before the block ends: inside a running service its end
        # collects what is left, which must not be every event read (timpora.common.collector).
        return await _rebuilt(sessions, kafka, topic, agreements, now, keep)


async def _rebuilt(  # noqa: PLR0917 - rebuild's own arguments, and keep
    sessions: async_sessionmaker[AsyncSession],
    kafka: KafkaSettings,
    topic: str,
    agreements: Sequence[Agreement],
    now: datetime,
    keep: Callable[[], None],
) -> dict[str, int]:
    in_force = [agreement for agreement in agreements if agreement.in_force_at(now)]
    counts = {}
    histories = await person_histories(kafka, topic, keep) if in_force else {}
    built = _built(Agreements(in_force), histories)
    keep()
    for agreement in agreements:
        rows, history, out = built.get(agreement.agency_id, ([], [], []))
        await _merge(sessions, agreement, (rows, out, history), histories)
        counts[agreement.agency_id] = len(rows)
        log.info("projection rebuilt", extra={"agency_id": agreement.agency_id, "count": len(rows)})
    return counts


_Rows = list[tuple[object, ...]]


def _row(agreement: Agreement, data: ForeignerEvent, record: str | None) -> tuple[object, ...]:
    """The agency's projection row of the person as ``data`` leaves them: in view with ``record``, or (None) out of
    view at that version (see ``_merge``)."""
    person = data.foreigner
    zone = zone_of(data.jurisdiction).key
    return (
        agreement.agency_id,
        person.foreigner_id,
        person.version,
        agreement.version,
        record is not None,
        record,
        zone,
    )


def _built(index: Agreements, histories: dict[UUID, list[Recorded]]) -> dict[str, tuple[_Rows, _Rows, _Rows]]:
    """Per agency, the rows of the people in its view at the end; its history as the live consumer appends it (each
    person's events while in view, and the one that took them out of it); and the people its jurisdiction held at
    some step but not at the end (out of view, at the version read: see ``_merge``). A person is put only before
    the agreements whose jurisdiction held them at some step (found through the index, not every agreement)."""
    built: dict[str, tuple[_Rows, _Rows, _Rows]] = {agreement.agency_id: ([], [], []) for agreement in index.all}
    for recorded in histories.values():
        # Each step's whereabouts and records worked out once, for every agreement concerned and for its last row.
        shown = [Shown(step.data) for step in recorded]
        concerned = {agreement.agency_id: agreement for seen in shown for agreement in index.may_show(seen.where)}
        last = shown[-1]
        for agreement in concerned.values():
            rows, history, out = built[agreement.agency_id]
            visible = False
            for step, seen in zip(recorded, shown, strict=True):
                was_visible, visible = visible, agreement.shows(step.data, seen.where)
                if visible or was_visible:
                    row = history_row(
                        agreement, step.event_type, step.occurred_at, step.data, visible=visible, record=None
                    )
                    row["record"] = seen.record(agreement) if visible else None
                    history.append(tuple(row[column] for column in HISTORY_COLUMNS))
            if visible:
                rows.append(_row(agreement, last.data, last.record(agreement)))
            else:
                out.append(_row(agreement, last.data, None))
    return built


async def _merge(
    sessions: async_sessionmaker[AsyncSession],
    agreement: Agreement,
    rebuilt: tuple[_Rows, _Rows, _Rows],
    histories: dict[UUID, list[Recorded]],
) -> None:
    """Merges one agency's ``rebuilt`` rows, people out of view and history (see ``_built``) into its projection
    and history, in a transaction of its own, while no live batch is being applied."""
    rows, out, history = rebuilt
    async with sessions() as session, session.begin():
        connection = await driver_connection(await session.connection())
        await merging_alone(connection)
        # Out of view at the version read: the people the new terms held at some step but not at the end, and anyone
        # else the agency holds a row of now (the terms narrowed around them).
        named = {row[1] for row in rows} | {row[1] for row in out}
        held = await connection.fetch("SELECT foreigner_id FROM projections WHERE agency_id = $1", agreement.agency_id)
        narrowed = [person for (person,) in held if person not in named and person in histories]
        out = [*out, *(_row(agreement, histories[person][-1].data, None) for person in narrowed)]
        # One COPY into a scratch table and one merge, instead of a statement per person.
        await connection.execute("CREATE TEMP TABLE rebuilt (LIKE projections INCLUDING DEFAULTS) ON COMMIT DROP")
        await connection.copy_records_to_table("rebuilt", records=[*rows, *out], columns=ROW_COLUMNS)
        await connection.execute(
            """
            INSERT INTO projections (agency_id, foreigner_id, version, agreement_version, visible, record, time_zone)
            SELECT agency_id, foreigner_id, version, agreement_version, visible, record, time_zone FROM rebuilt
            -- The live consumer applied a newer event of the person since the topic was read: what it wrote for the
            -- agency under these terms stands, and so does what it did not write (someone out of view has no row).
            WHERE rebuilt.visible AND NOT EXISTS (
                SELECT FROM projected_people AS applied
                WHERE applied.foreigner_id = rebuilt.foreigner_id AND applied.version > rebuilt.version
            )
            ON CONFLICT (agency_id, foreigner_id) DO UPDATE SET
                version = excluded.version, agreement_version = excluded.agreement_version,
                visible = excluded.visible, record = excluded.record, time_zone = excluded.time_zone,
                updated_at = now()
            -- The live consumer may already hold a newer event under the new agreement.
            WHERE projections.agreement_version <> excluded.agreement_version OR projections.version < excluded.version
            """
        )
        # Out of view, and the live consumer has applied the person this far: no row (the person's version guards
        # it). A row written since, at a newer version, stands.
        await connection.execute(
            """
            DELETE FROM projections USING rebuilt
            WHERE NOT rebuilt.visible AND projections.agency_id = rebuilt.agency_id
                AND projections.foreigner_id = rebuilt.foreigner_id AND projections.version <= rebuilt.version
                AND EXISTS (
                    SELECT FROM projected_people AS applied
                    WHERE applied.foreigner_id = rebuilt.foreigner_id AND applied.version >= rebuilt.version
                )
            """
        )
        # Out of view, and the live consumer has not got this far: a guard at the version read, out of view with no
        # record, so that the events it has yet to apply (the person in view on the way, under these terms) are
        # taken for older and change nothing here. The live consumer removes it once it reaches that version.
        await connection.execute(
            """
            INSERT INTO projections (agency_id, foreigner_id, version, agreement_version, visible, record, time_zone)
            SELECT agency_id, foreigner_id, version, agreement_version, false, NULL, time_zone FROM rebuilt
            WHERE NOT rebuilt.visible AND NOT EXISTS (
                SELECT FROM projected_people AS applied
                WHERE applied.foreigner_id = rebuilt.foreigner_id AND applied.version >= rebuilt.version
            )
            ON CONFLICT (agency_id, foreigner_id) DO UPDATE SET
                version = excluded.version, agreement_version = excluded.agreement_version, visible = false,
                record = NULL, time_zone = excluded.time_zone, updated_at = now()
            WHERE projections.version <= excluded.version
            """
        )
        await session.execute(
            delete(projections).where(
                projections.c.agency_id == agreement.agency_id, projections.c.agreement_version != agreement.version
            )
        )
        # The history likewise: every state rewritten under the new agreement, so no field it no longer
        # includes stays behind in an old row.
        await connection.execute(
            "CREATE TEMP TABLE rebuilt_history (LIKE projection_history INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        await connection.copy_records_to_table("rebuilt_history", records=history, columns=HISTORY_COLUMNS)
        await connection.execute(
            """
            INSERT INTO projection_history (agency_id, foreigner_id, version, agreement_version, event_type,
                occurred_at, visible, record, time_zone)
            SELECT agency_id, foreigner_id, version, agreement_version, event_type, occurred_at, visible, record,
                time_zone
            FROM rebuilt_history
            ON CONFLICT (agency_id, foreigner_id, version) DO UPDATE SET
                agreement_version = excluded.agreement_version, event_type = excluded.event_type,
                occurred_at = excluded.occurred_at, visible = excluded.visible, record = excluded.record,
                time_zone = excluded.time_zone, recorded_at = now()
            -- A row the live consumer already appended under the new agreement is that same row.
            WHERE projection_history.agreement_version <> excluded.agreement_version
            """
        )
        await session.execute(
            delete(projection_history).where(
                projection_history.c.agency_id == agreement.agency_id,
                projection_history.c.agreement_version != agreement.version,
            )
        )
        built = insert(projection_builds).values(agency_id=agreement.agency_id, agreement_version=agreement.version)
        await session.execute(
            built.on_conflict_do_update(
                index_elements=[projection_builds.c.agency_id],
                set_={"agreement_version": agreement.version, "built_at": func.now()},
            )
        )


async def stale_agencies(sessions: async_sessionmaker[AsyncSession], agreements: list[Agreement]) -> list[Agreement]:
    """The agreements whose agency's projection was built under another version, or has no history yet
    (built before the history was kept: a rebuild fills it from the topic)."""
    stale = []
    async with sessions() as session:
        for agreement in agreements:
            built = await session.scalar(
                select(projection_builds.c.agreement_version).where(
                    projection_builds.c.agency_id == agreement.agency_id
                )
            )
            # The agreement changed (an earlier version was in force here) and no rebuild followed: an agency that
            # sees nobody yet holds no row to tell, and the people its new terms show would wait for their next event.
            changed = built != agreement.version and await session.scalar(
                select(
                    exists().where(
                        agreement_rows.c.agency_id == agreement.agency_id, agreement_rows.c.version < agreement.version
                    )
                )
            )
            mine = projections.c.agency_id == agreement.agency_id
            other = await session.scalar(
                select(projections.c.agency_id)
                .where(mine, projections.c.agreement_version != agreement.version)
                .limit(1)
            )
            unrecorded = await session.scalar(
                select(
                    exists().where(mine, projections.c.visible.is_(True))
                    & ~exists().where(projection_history.c.agency_id == agreement.agency_id)
                )
            )
            if other is not None or unrecorded or changed:
                stale.append(agreement)
    return stale


async def fingerprint(sessions: async_sessionmaker[AsyncSession], agency_id: str) -> str:
    """A hash of the agency's projection (who is visible, with what), to compare two builds (a row an older build
    left out of view, from before migration 0010, is no one in view)."""
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
            .where(projections.c.agency_id == agency_id, projections.c.visible.is_(True))
            .order_by(projections.c.foreigner_id)
        )
        for foreigner_id, version, visible, record, time_zone in rows:
            digest.update(json.dumps([str(foreigner_id), version, visible, record, time_zone], sort_keys=True).encode())
    return digest.hexdigest()
