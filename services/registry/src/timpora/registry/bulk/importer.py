"""Writes validated import records in batches with COPY, one transaction per batch.

Per batch: people already in the registry (same nationality + passport) are left as they are, which
makes re-running a file a no-op; the rest are written to every table the API would write, with one
``foreigner.imported`` event each in the outbox, so the relay publishes them like any other change.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self
from uuid import UUID, uuid4

import asyncpg
from asyncpg.exceptions import PostgresError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from timpora.common.clock import Clock
from timpora.common.collector import collector_spared
from timpora.common.db.engine import driver_connection
from timpora.common.events import new_event
from timpora.common.events.envelope import attribute_headers
from timpora.common.events.payloads import (
    ForeignerImported,
    Permit,
    PermitStatus,
    PresenceStatus,
    Residence,
    Sponsor,
)
from timpora.registry.bulk.records import ImportRecord, Line
from timpora.registry.domain.areas import Area
from timpora.registry.domain.changes import new_person

SCHEMA = "registry"


@dataclass
class Summary:
    lines: int = 0
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass
class _Pending:
    line: int
    record: ImportRecord


Rejects = Callable[[int, str], None]
#: Records read or built between two turns of the event loop. The batches in flight are copied on the same loop
#: (asyncpg streams each COPY in chunks): a whole batch built without a turn stalled them until it was done, so the
#: import took Python's time plus PostgreSQL's instead of the longer of the two (measured: each COPY lasted exactly
#: as long as the build beside it).
_YIELD_EVERY = 200
Progress = Callable[[Summary], None]


@dataclass
class Importer:
    engine: AsyncEngine
    clock: Clock
    import_id: str
    #: The registry topic the records' events are published on.
    topic: str
    actor: str = "bulk-import"
    source: str = "/timpora/registry"
    batch_size: int = 5000
    #: The area of the office importing (None: every office's): a record of someone living elsewhere is refused.
    area: Area | None = None
    #: Each sponsor as recorded (the name as first typed, by whoever first recorded it), by kind and name key.
    _sponsors: dict[tuple[str, str], Sponsor] = field(default_factory=dict)
    _passports_in_file: dict[tuple[str, str], int] = field(default_factory=dict)
    _permits_in_file: dict[str, int] = field(default_factory=dict)

    async def run(self, lines: Iterable[Line], rejects: Rejects, progress: Progress | None = None) -> Summary:
        summary = Summary()
        batch: list[_Pending] = []
        with collector_spared() as keep:
            async with _Writer(self.engine, summary) as writer:
                for line in lines:
                    summary.lines += 1
                    if summary.lines % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # reading and validating is Python's work too: let the copies run
                    reason = (
                        line.reason
                        if line.record is None
                        else self._elsewhere(line.record) or self._duplicate_in_file(line.number, line.record)
                    )
                    if reason is not None:
                        rejects(line.number, reason)
                        summary.rejected += 1
                    elif line.record is not None:
                        batch.append(_Pending(line.number, line.record))
                    if len(batch) >= self.batch_size:
                        await writer.submit(await self._prepare(batch, summary, rejects))
                        batch = []
                        keep()
                        if progress:
                            progress(summary)
                if batch:
                    await writer.submit(await self._prepare(batch, summary, rejects))
        if progress:
            progress(summary)
        return summary

    def _elsewhere(self, record: ImportRecord) -> str | None:
        if self.area is None or record.residence is None or self.area.holds(record.residence.village_code):
            return None
        return "residence_village_code is in another immigration office's area: that office imports it"

    def _duplicate_in_file(self, number: int, record: ImportRecord) -> str | None:
        passport = (record.arrival.nationality, record.arrival.passport.number)
        if passport in self._passports_in_file:
            return f"the same passport as line {self._passports_in_file[passport]}"
        if record.permit is not None and record.permit.number in self._permits_in_file:
            return f"the same permit number as line {self._permits_in_file[record.permit.number]}"
        self._passports_in_file[passport] = number
        if record.permit is not None:
            self._permits_in_file[record.permit.number] = number
        return None

    async def _prepare(self, batch: list[_Pending], summary: Summary, rejects: Rejects) -> _Rows:
        """The rows to write for ``batch``: people not in the registry yet, with permit numbers still free."""
        async with self.engine.connect() as connection:
            db = await driver_connection(connection)
            # Someone holds the passport now, or held it before renewing: either way the person is here already.
            existing = {
                (row["nationality"], row["passport_number"])
                for row in await db.fetch(
                    "SELECT nationality, passport_number FROM foreigners "
                    "WHERE (nationality, passport_number) IN (SELECT * FROM unnest($1::text[], $2::text[])) "
                    "UNION ALL SELECT nationality, number FROM previous_passports "
                    "WHERE (nationality, number) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                    [p.record.arrival.nationality for p in batch],
                    [p.record.arrival.passport.number for p in batch],
                )
            }
            fresh = [
                p for p in batch if (p.record.arrival.nationality, p.record.arrival.passport.number) not in existing
            ]
            summary.unchanged += len(batch) - len(fresh)
            taken = {
                row["number"]
                for row in await db.fetch(
                    "SELECT number FROM permits WHERE number = ANY($1::text[])",
                    [p.record.permit.number for p in fresh if p.record.permit is not None],
                )
            }
            writable = []
            for pending in fresh:
                if pending.record.permit is not None and pending.record.permit.number in taken:
                    # Which number is the file's to say, not the report's: it names the field only.
                    rejects(pending.line, "permit_number: already registered")
                    summary.rejected += 1
                else:
                    writable.append(pending)
            # Sponsors commit on their own: they are shared, and an import that fails later keeps them.
            await self._ensure_sponsors(db, writable)
        rows = _Rows()
        for index, pending in enumerate(writable):
            if index % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the batches being copied stream meanwhile (see _YIELD_EVERY)
            self._add(rows, pending.record)
        return rows

    async def _ensure_sponsors(self, db: asyncpg.Connection, batch: list[_Pending]) -> None:
        wanted = {
            (sponsor.kind.lower(), sponsor.name.casefold()): sponsor.name
            for p in batch
            if (sponsor := p.record.arrival.sponsor) is not None
            or (p.record.permit and (sponsor := p.record.permit.sponsor))
        }
        missing = [key for key in wanted if key not in self._sponsors]
        if not missing:
            return
        await db.execute(
            "INSERT INTO sponsors (id, name, kind, name_key) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
            [uuid4() for _ in missing],
            [wanted[key] for key in missing],
            [kind for kind, _ in missing],
            [name_key for _, name_key in missing],
        )
        for row in await db.fetch(
            "SELECT id, name, kind, name_key FROM sponsors "
            "WHERE (kind, name_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            [kind for kind, _ in missing],
            [name_key for _, name_key in missing],
        ):
            self._sponsors[(row["kind"], row["name_key"])] = Sponsor.model_construct(
                sponsor_id=row["id"], name=row["name"], kind=row["kind"]
            )

    def _add(self, rows: _Rows, record: ImportRecord) -> None:
        # The record was validated when it was read; building the event's models again with
        # model_construct skips a second validation, which would cost as much as the rest together.
        arrival, now, foreigner_id = record.arrival, self.clock.now(), uuid4()
        sponsor = self._sponsor(arrival.sponsor.name, arrival.sponsor.kind) if arrival.sponsor else None
        permit = self._permit(record, sponsor)
        residence = (
            Residence.model_construct(
                address=record.residence.address,
                village_code=record.residence.village_code,
                since=record.residence.since,
            )
            if record.residence
            else None
        )
        snapshot = new_person(foreigner_id, arrival, sponsor, residence=residence, permit=permit)
        jurisdiction = residence.village_code if residence else None
        data = ForeignerImported.model_construct(
            foreigner=snapshot, jurisdiction=jurisdiction, import_id=self.import_id
        )
        event = new_event(data, source=self.source, subject=str(foreigner_id), time=now)
        payload = data.model_dump_json()
        rows.foreigners.append(
            (
                foreigner_id, 1, arrival.full_name, arrival.sex.value, arrival.date_of_birth, arrival.nationality,
                arrival.passport.number, arrival.passport.issuing_country, arrival.passport.expires_on,
                arrival.occupation, sponsor.sponsor_id if sponsor else None, PresenceStatus.PRESENT.value,
                arrival.port, arrival.arrived_on,
                arrival.visa.index if arrival.visa else None, arrival.visa.number if arrival.visa else None,
                residence.address if residence else None, jurisdiction, residence.since if residence else None,
                permit.permit_id if permit else None, jurisdiction, now, now, self.actor, self.actor,
            )
        )  # fmt: skip
        rows.movements.append((uuid4(), foreigner_id, "arrival", arrival.port, arrival.arrived_on, self.actor, now))
        if permit is not None:
            rows.permits.append(
                (
                    permit.permit_id, foreigner_id, permit.number, permit.type.value,
                    permit.purpose.value if permit.purpose else None, permit.issued_on,
                    permit.expires_on, permit.status.value, permit.sponsor_id, 1, now, now,
                )
            )  # fmt: skip
        if residence is not None:
            rows.residences.append(
                (uuid4(), foreigner_id, residence.address, residence.village_code, residence.since, self.actor, now)
            )
        event_id = UUID(event.id)
        rows.history.append((foreigner_id, 1, event_id, event.spec.name, self.actor, now, payload))
        rows.outbox.append(
            (
                event_id,
                event.type,
                self.topic,
                str(foreigner_id),
                json.dumps(attribute_headers(event)),
                payload,
            )
        )

    def _permit(self, record: ImportRecord, holder_sponsor: Sponsor | None) -> Permit | None:
        if record.permit is None:
            return None
        given = record.permit.sponsor
        sponsor = self._sponsor(given.name, given.kind) if given else holder_sponsor
        return Permit.model_construct(
            permit_id=uuid4(),
            number=record.permit.number,
            type=record.permit.type,
            purpose=record.permit.purpose,
            issued_on=record.permit.issued_on,
            expires_on=record.permit.expires_on,
            status=PermitStatus.ACTIVE,
            sponsor_id=sponsor.sponsor_id if sponsor else None,
        )

    def _sponsor(self, name: str, kind: str) -> Sponsor:
        # As recorded, not as typed in this file: the registry answers with the recorded name, and so must the
        # event every consumer projects.
        return self._sponsors[(kind.lower(), name.casefold())]


class ImportBatchError(RuntimeError):
    """The database refused a batch. The message names the constraint, never the row's values."""


class _Writer:
    """Copies batches on their own connections while the next batch is built, at most ``depth`` at once:
    PostgreSQL's share of the work (indexes, foreign keys) is the larger one, and it runs on the other
    core meanwhile. Each batch is one transaction, counted as imported only once it has committed."""

    def __init__(self, engine: AsyncEngine, summary: Summary, depth: int = 2) -> None:
        self._engine = engine
        self._summary = summary
        self._depth = depth
        self._in_flight: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                while self._in_flight:
                    await self._wait_oldest()
        finally:
            # On any failure, no batch is left running unawaited: each either commits or rolls back here.
            for task in self._in_flight:
                task.cancel()
            for task in self._in_flight:
                with contextlib.suppress(asyncio.CancelledError, ImportBatchError):
                    await task
            self._in_flight.clear()

    async def submit(self, rows: _Rows) -> None:
        while len(self._in_flight) >= self._depth:
            await self._wait_oldest()
        self._in_flight.append(asyncio.create_task(self._copy(rows)))

    async def _wait_oldest(self) -> None:
        await self._in_flight.pop(0)
        gc.collect(1)

    async def _copy(self, rows: _Rows) -> None:
        try:
            async with self._engine.begin() as connection:
                await rows.copy(await driver_connection(connection))
        except (PostgresError, DBAPIError) as error:
            # asyncpg's message and detail quote the conflicting key (a passport number): keep them out.
            cause = error.orig if isinstance(error, DBAPIError) else error
            constraint = getattr(cause, "constraint_name", None) or getattr(cause, "sqlstate", "unknown")
            raise ImportBatchError(
                f"the database refused a batch ({constraint}), probably a record registered meanwhile; "
                "re-run the file: what is already in the registry is skipped"
            ) from None
        self._summary.imported += len(rows.foreigners)


@dataclass
class _Rows:
    foreigners: list[tuple[Any, ...]] = field(default_factory=list)
    movements: list[tuple[Any, ...]] = field(default_factory=list)
    permits: list[tuple[Any, ...]] = field(default_factory=list)
    residences: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)

    async def copy(self, db: asyncpg.Connection) -> None:
        # Order matters for the foreign keys: people first, then what refers to them.
        for table, columns, records in (
            ("foreigners", _FOREIGNER_COLUMNS, self.foreigners),
            ("movements", ("id", "foreigner_id", "kind", "port", "on", "recorded_by", "recorded_at"), self.movements),
            ("permits", _PERMIT_COLUMNS, self.permits),
            (
                "residences",
                ("id", "foreigner_id", "address", "village_code", "since", "reported_by", "reported_at"),
                self.residences,
            ),
            (
                "history",
                ("foreigner_id", "version", "event_id", "event_type", "actor", "occurred_at", "data"),
                self.history,
            ),
            ("outbox", ("event_id", "event_type", "topic", "partition_key", "headers", "payload"), self.outbox),
        ):
            if records:
                await db.copy_records_to_table(table, records=records, columns=columns, schema_name=SCHEMA)


_FOREIGNER_COLUMNS = (
    "id", "version", "full_name", "sex", "date_of_birth", "nationality", "passport_number", "passport_country",
    "passport_expires_on", "occupation", "sponsor_id", "presence", "arrival_port", "arrival_on", "visa_index",
    "visa_number",
    "residence_address", "residence_village_code", "residence_since", "current_permit_id", "jurisdiction",
    "created_at", "updated_at", "created_by", "updated_by",
)  # fmt: skip
_PERMIT_COLUMNS = (
    "id", "foreigner_id", "number", "type", "purpose", "issued_on", "expires_on", "status", "sponsor_id", "version",
    "created_at", "updated_at",
)  # fmt: skip
