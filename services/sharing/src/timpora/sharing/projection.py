"""Applying one registry event to every agency's projection and topic, inside the consumer's transaction.

For each agreement in force: a person in the agency's jurisdiction gets their record redacted to
the agreement's fields; a person who leaves it (moved away) loses their row; a person never in it leaves
no row. Only an event newer than what the projection holds of the person changes it, so redelivered and
reordered events change nothing. If the agreement lists the event's type, the agency's topic gets the event as the
agency may see it — also once when the person leaves its view (``in_view`` false, no record) — by
way of the sharing service's outbox, in this same transaction. Each change of a person in the agency's
view (or leaving it) is also appended to the agency's projection history, in this same transaction, for
reports as of a past moment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NewType
from uuid import UUID

import asyncpg
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.db.engine import driver_connection
from timpora.common.events import CloudEvent, new_event
from timpora.common.events.envelope import CONTENT_TYPE_HEADER, attribute_headers
from timpora.common.events.payloads import Contract, ForeignerEvent, SharedRecord
from timpora.common.kafka.consumer import PermanentEventError
from timpora.common.register.agreements import Agreement, Agreements, Whereabouts
from timpora.common.register.fields import cut, shareable
from timpora.common.standing import zone_of
from timpora.common.topics import TopicCatalog

SOURCE = "/timpora/sharing"
#: The Kafka header naming the agreement version a record was written under.
AGREEMENT_VERSION_HEADER = "timpora_agreement_version"
#: A person's registry id as text, as a batch keys them: hashed and compared in C (a ``UUID``'s hash and equality are
#: Python code, run for every agency of every event), and written by COPY as it is.
PersonId = NewType("PersonId", str)
_Key = tuple[str, PersonId]


async def apply(
    session: AsyncSession,
    event: CloudEvent[Contract],
    agreements: Agreements | Sequence[Agreement],
    now: datetime,
    catalog: TopicCatalog,
) -> None:
    """Applies one event (see :func:`apply_many`)."""
    await apply_many(session, [event], agreements, now, catalog)


async def apply_many(
    session: AsyncSession,
    events: Sequence[CloudEvent[Contract]],
    agreements: Agreements | Sequence[Agreement],
    now: datetime,
    catalog: TopicCatalog,
) -> None:
    """Applies ``events``, in their order, to every agreement in force at ``now``: exactly as one after another,
    in three statements whatever their number (a batch of the live consumer, or one event). Each event is put
    before the agreements that may show its person and those whose agency sees them now, no others: the rest
    could only leave them out of a view they are not in."""
    # Each event read once, before anything is locked: what every agreement shares of it is worked out from this.
    seen: list[_Seen] = []
    for event in events:
        data = event.data
        if not isinstance(data, ForeignerEvent):
            raise PermanentEventError(f"{event.type} carries no foreigner snapshot")
        seen.append(_Seen(event, data))
    if not seen:
        return
    index = agreements if isinstance(agreements, Agreements) else Agreements(agreements)
    connection = await driver_connection(await session.connection())
    # Batches run side by side: members of the group on partitions of their own, so on people of their own, but for
    # the moment partitions move between members, when two batches may hold the same events; the consumer's inbox
    # claim, before this, makes the second wait for the first's commit and skip what it applied. A rebuild's merge
    # runs alone (``merging_alone``): a row
    # it inserts between this batch's lock and its write would be taken for the person's first, and the agency
    # never told that they left its view.
    await connection.execute(_BATCHES, REBUILD_LOCK)
    people = sorted({each.person for each in seen})
    # Every row the batch may change, the people's then the agencies', each locked in one order so that two writers
    # never wait on each other in a cycle. An agency without a row of the person is judged by the person's version.
    versions = {row["foreigner_id"]: row["version"] for row in await connection.fetch(_LOCK_PEOPLE, people)}
    held: dict[_Key, _Held] = {
        (row["agency_id"], row["foreigner_id"]): _Held(row["version"], row["visible"])
        for row in await connection.fetch(_LOCK, people)
    }
    batch = _Batch(held, versions)
    terms = _Terms(index, now, catalog)
    # Event by event, each agency's state is the one the events before it in the batch left: the batch ends as
    # the same events applied one transaction each would.
    for each in seen:
        person = each.person
        applied_before = batch.versions.get(person)
        for agreement in terms.concerned(index.may_show(each.where), batch.holding.get(person, ())):
            batch.take(each, agreement, terms.topic(agreement), applied_before)
        batch.applied(person, each.version)
    await _write(connection, batch)


async def _write(connection: asyncpg.Connection, batch: _Batch) -> None:
    """What the batch worked out, into the tables: a COPY and a statement for each."""
    await connection.execute(_STAGING)
    # Emptied at every commit, and here too: a second batch in the same transaction must not merge the first's
    # rows again (whatever happened to them in between).
    await connection.execute(_UNSTAGE)
    if batch.people:
        await connection.copy_records_to_table(
            "staged_people", records=list(batch.people.items()), columns=["foreigner_id", "version"]
        )
        await connection.execute(_PEOPLE_STAGED)
    if batch.rows:
        rows = list(batch.rows.values())
        await connection.copy_records_to_table("staged_projections", records=rows, columns=ROW_COLUMNS)
        await connection.execute(_UPSERT_STAGED)
        if any(not row[_VISIBLE] for row in rows):
            await connection.execute(_REMOVE_STAGED)
    if batch.history:
        await connection.copy_records_to_table("staged_history", records=batch.history, columns=HISTORY_COLUMNS)
        await connection.execute(_HISTORY_STAGED)
    if batch.outbox:
        await connection.copy_records_to_table("staged_outbox", records=batch.outbox, columns=_OUTBOX_COLUMNS)
        await connection.execute(_OUTBOX_STAGED)


class _Terms:
    """The agreements in force at the batch's moment and their agencies' topics, each worked out once a batch."""

    def __init__(self, index: Agreements, now: datetime, catalog: TopicCatalog) -> None:
        self._index = index
        self._now = now
        self._catalog = catalog
        self._in_force: dict[str, bool] = {}
        self._topics: dict[str, str] = {}

    def concerned(self, may_show: list[Agreement], holding: Iterable[str]) -> list[Agreement]:
        """Of the agreements that may show the person and those of the agencies holding a row of them (who see
        them, and must be told if they leave; or hold a rebuild's guard), the ones in force, each once, in a stable
        order."""
        chosen = [agreement for agreement in may_show if self._force(agreement)]
        named = {agreement.agency_id for agreement in may_show}
        for agency_id in sorted(set(holding) - named):
            agreement = self._index.by_agency.get(agency_id)
            if agreement is not None and self._force(agreement):
                chosen.append(agreement)
        return chosen

    def topic(self, agreement: Agreement) -> str:
        found = self._topics.get(agreement.agency_id)
        if found is None:
            found = self._topics[agreement.agency_id] = self._catalog.agency_events(agreement.agency_id).name
        return found

    def _force(self, agreement: Agreement) -> bool:
        found = self._in_force.get(agreement.agency_id)
        if found is None:
            found = self._in_force[agreement.agency_id] = agreement.in_force_at(self._now)
        return found


@dataclass(slots=True)
class _Held:
    version: int
    visible: bool


class _Batch:
    """What a batch writes, worked out event by event from the rows it locked."""

    def __init__(self, held: dict[_Key, _Held], versions: dict[PersonId, int]) -> None:
        self.held = held
        #: The agencies holding a row of each person, as the events so far leave it: those that see them, and those
        #: holding a guard (out of view, no record) a rebuild left ahead of the events applied so far.
        self.holding: dict[PersonId, set[str]] = {}
        for agency_id, person in held:
            self.holding.setdefault(person, set()).add(agency_id)
        #: The latest version applied of each person, as the events so far leave it.
        self.versions = versions
        #: What the batch changes of those (one write per person).
        self.people: dict[PersonId, int] = {}
        #: The projection row each (agency, person) ends with: one write per row, however many events changed it.
        self.rows: dict[_Key, tuple[object, ...]] = {}
        self.history: list[tuple[object, ...]] = []
        #: In the events' order: the relay publishes in the outbox's order.
        self.outbox: list[tuple[object, ...]] = []

    def applied(self, person: PersonId, version: int) -> None:
        if self.versions.get(person, 0) < version:
            self.versions[person] = self.people[person] = version

    def _stage(self, key: _Key, seen: _Seen, agreement: Agreement, record: str | None) -> None:
        """The row the agency ends with at the event's version: in view with ``record``, or (None) none at all."""
        visible = record is not None
        self.rows[key] = (agreement.agency_id, seen.person, seen.version, agreement.version, visible, record, seen.zone)
        holding = self.holding.setdefault(seen.person, set())
        if visible:
            self.held[key] = _Held(seen.version, visible=True)
            holding.add(agreement.agency_id)
        else:
            self.held.pop(key, None)
            holding.discard(agreement.agency_id)

    def _passed(self, key: _Key, seen: _Seen, agreement: Agreement) -> None:
        """The agency holds no row of the person from this event on: whatever it held up to the event's version,
        visible or a guard, goes."""
        self._stage(key, seen, agreement, None)

    def take(self, seen: _Seen, agreement: Agreement, topic: str, applied_before: int | None) -> None:
        """The event for one agency. ``applied_before``: the person's latest version applied before this event."""
        data = seen.data
        version = seen.version
        key = (agreement.agency_id, seen.person)
        state = self.held.get(key)
        # How far the projection got with the person: the version applied for every agency, or the agency's own
        # row where that is further (a rebuild may have taken one agency past the events applied so far).
        known = applied_before if state is None else max(state.version, applied_before or 0)
        newer = known is None or known < version
        was_visible = state is not None and state.visible
        if newer:
            visible = agreement.shows(data, seen.where)
            if not visible and not was_visible:
                if state is not None:
                    self._passed(key, seen, agreement)  # a rebuild's guard, now passed by the events applied
                return  # never in the agency's view: no row, no history, no copy
            as_json = seen.record(agreement) if visible else None
            # Left the view (no record): no row, the person's version guards it now.
            self._stage(key, seen, agreement, as_json)
            # Someone never in the agency's view leaves no trace in its history, as in its topic.
            if visible or was_visible:
                self.history.append(
                    (
                        agreement.agency_id,
                        seen.person,
                        version,
                        agreement.version,
                        seen.name,
                        seen.event.time,
                        visible,
                        as_json,
                        seen.zone,
                    )
                )
        elif known == version:
            # Same version, nothing changed (an expiry reminder): the agency may still be told.
            visible = was_visible
            if state is not None and not visible:
                self._passed(key, seen, agreement)  # the events applied reached a rebuild's guard: it goes
            as_json = seen.record(agreement) if visible else None
        else:
            return  # an older event overtaken by a newer one
        if seen.name in agreement.event_types and (visible or (newer and was_visible)):
            self.outbox.append((*seen.shared(agreement, topic, record=as_json), len(self.outbox)))


#: The statements, the same for every batch. Each batch's rows go to scratch tables of the connection's own with
#: COPY (one round trip, no statement per row), and from there into the tables in one statement each: a statement
#: per row cost a round trip and SQLAlchemy's compilation per agency per event. The scratch tables live as long as
#: the connection and are emptied at every commit.
#: The ids as text: what a batch keys people by (``PersonId``). Locked in the order of the uuids themselves (the
#: table's column, not the text the query gives back), as every other writer of these rows locks them.
_LOCK_PEOPLE = """
    SELECT foreigner_id::text, version FROM projected_people WHERE foreigner_id = ANY($1::uuid[])
    ORDER BY projected_people.foreigner_id
    FOR UPDATE
"""
#: Every agency's row of the people: those of agreements no longer in force are locked but left as they are.
_LOCK = """
    SELECT agency_id, foreigner_id::text, version, visible FROM projections
    WHERE foreigner_id = ANY($1::uuid[])
    ORDER BY agency_id, projections.foreigner_id
    FOR UPDATE
"""
#: The columns the live batches and a rebuild copy, in the order of their rows.
ROW_COLUMNS = ["agency_id", "foreigner_id", "version", "agreement_version", "visible", "record", "time_zone"]
HISTORY_COLUMNS = [*ROW_COLUMNS[:4], "event_type", "occurred_at", "visible", "record", "time_zone"]
#: ``position``: the outbox's ids, and so the order its relay publishes in, follow the events' order.
_OUTBOX_COLUMNS = ["event_id", "event_type", "topic", "partition_key", "headers", "payload", "position"]
_STAGING = """
    CREATE TEMP TABLE IF NOT EXISTS staged_people (foreigner_id uuid, version int) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS staged_projections (agency_id text, foreigner_id uuid, version int,
        agreement_version int, visible bool, record text, time_zone text) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS staged_history (agency_id text, foreigner_id uuid, version int,
        agreement_version int, event_type text, occurred_at timestamptz, visible bool, record text, time_zone text)
        ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS staged_outbox (event_id uuid, event_type text, topic text, partition_key text,
        headers text, payload text, position int) ON COMMIT DELETE ROWS;
"""
#: The advisory lock batches share and a rebuild's merge takes alone.
REBUILD_LOCK = "timpora.sharing.projection"
_BATCHES = "SELECT pg_advisory_xact_lock_shared(hashtext($1))"
_ALONE = "SELECT pg_advisory_xact_lock(hashtext($1))"
_UNSTAGE = (
    "DELETE FROM staged_people; DELETE FROM staged_projections; DELETE FROM staged_history; DELETE FROM staged_outbox"
)
_PEOPLE_STAGED = """
    INSERT INTO projected_people (foreigner_id, version) SELECT foreigner_id, version FROM staged_people
    ON CONFLICT (foreigner_id) DO UPDATE SET version = excluded.version
    WHERE projected_people.version < excluded.version
"""
_VISIBLE = ROW_COLUMNS.index("visible")
#: Who is in view, with their record.
_UPSERT_STAGED = """
    INSERT INTO projections (agency_id, foreigner_id, version, agreement_version, visible, record, time_zone)
    SELECT agency_id, foreigner_id, version, agreement_version, visible, record::jsonb, time_zone
    FROM staged_projections WHERE visible
    ON CONFLICT (agency_id, foreigner_id) DO UPDATE SET
        version = excluded.version, agreement_version = excluded.agreement_version, visible = excluded.visible,
        record = excluded.record, time_zone = excluded.time_zone, updated_at = now()
    WHERE projections.version < excluded.version
"""
#: Who left the view: no row (the agency is told once, and its history keeps that they left). The person's version
#: in ``projected_people``, written in this same transaction, keeps an older event from bringing them back. And a
#: rebuild's guard the events applied have reached (its version, out of view): that version guards it now.
_REMOVE_STAGED = """
    DELETE FROM projections USING staged_projections AS staged
    WHERE NOT staged.visible AND projections.agency_id = staged.agency_id
        AND projections.foreigner_id = staged.foreigner_id
        AND (projections.version < staged.version OR (projections.version = staged.version AND NOT projections.visible))
"""
_HISTORY_STAGED = """
    INSERT INTO projection_history (agency_id, foreigner_id, version, agreement_version, event_type, occurred_at,
        visible, record, time_zone)
    SELECT agency_id, foreigner_id, version, agreement_version, event_type, occurred_at, visible, record::jsonb,
        time_zone
    FROM staged_history
    ON CONFLICT DO NOTHING
"""
_OUTBOX_STAGED = """
    INSERT INTO outbox (event_id, event_type, topic, partition_key, headers, payload)
    SELECT event_id, event_type, topic, partition_key, headers::jsonb, payload FROM staged_outbox
    ORDER BY position
    ON CONFLICT (event_id) DO NOTHING
"""


def history_row(
    agreement: Agreement,
    event_type: str,
    occurred_at: datetime,
    data: ForeignerEvent,
    *,
    visible: bool,
    record: dict[str, Any] | None,
) -> dict[str, Any]:
    """The agency's history row for one event (the live consumer and a rebuild write the same)."""
    return {
        "agency_id": agreement.agency_id,
        "foreigner_id": data.foreigner.foreigner_id,
        "version": data.foreigner.version,
        "agreement_version": agreement.version,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "visible": visible,
        "record": record,
        "time_zone": zone_of(data.jurisdiction).key,
    }


#: What every shared record's envelope says the same: its type, schema, spec version and content type.
_SHARED = new_event(SharedRecord(event="foreigner.arrived", in_view=False, record=None), source=SOURCE, subject=None)


class Shown:
    """One snapshot as agreements see it: where it places the person, and each distinct record an agreement may see
    of them, as compact JSON, worked out once for all of them (the live batch's and a rebuild's most frequent work)."""

    def __init__(self, data: ForeignerEvent) -> None:
        self.data = data
        self.where = Whereabouts.of(data)
        #: Every field an agreement may share of the person (``fields.shareable``), once the first record needs them.
        self._values: dict[str, Any] | None = None
        #: Each distinct record, as compact JSON, by the fields it has (agreements often share their fields).
        self._records: dict[frozenset[str], str] = {}

    def record(self, agreement: Agreement) -> str:
        """The person as ``agreement`` may see them (``Agreement.record_of``), as compact JSON."""
        fields = agreement.record_fields(self.data, self.where)
        found = self._records.get(fields)
        if found is None:
            if self._values is None:
                self._values = shareable(self.data.foreigner.model_dump(mode="json"))
            record = cut(self._values, fields)
            # Compact, not ASCII-escaped: what ``SharedRecord.model_dump_json`` writes of it (the same serializer).
            found = self._records[fields] = to_json(record).decode()
        return found


class _Seen(Shown):
    """One registry event as every agreement reads it: what they share is worked out once, not per agency
    (this runs for every agreement of every event: it is most of a batch's time)."""

    def __init__(self, event: CloudEvent[Contract], data: ForeignerEvent) -> None:
        super().__init__(data)
        self.event = event
        self.name = event.spec.name
        self.zone = zone_of(data.jurisdiction).key
        self.person = PersonId(str(data.foreigner.foreigner_id))
        self.version = data.foreigner.version
        self._source: bytes | None = None
        headers = {
            "ce_specversion": _SHARED.specversion,
            "ce_source": SOURCE,
            "ce_type": _SHARED.type,
            # The registry event's time, as the shared event's (``new_event(time=event.time)``).
            "ce_time": attribute_headers(event)["ce_time"],
            "ce_dataschema": _SHARED.dataschema,
            CONTENT_TYPE_HEADER: _SHARED.datacontenttype,
        }
        if event.subject is not None:
            headers["ce_subject"] = event.subject
        # The headers every copy shares, as JSON without its closing brace: each copy adds its id and terms.
        self._headers = json.dumps(headers)[:-1]
        self._payload = '{"event":' + json.dumps(self.name) + ',"in_view":'

    def shared(self, agreement: Agreement, topic: str, *, record: str | None) -> tuple[object, ...]:
        """The outbox row of the agency's copy (``record`` None: the person left its view): exactly what
        ``new_event(SharedRecord(...))`` would be, its payload byte for byte, written without a model."""
        # Derived from the registry event's id and the agency: the same on every redelivery, so the agency can
        # deduplicate, and distinct across agencies, as the outbox requires.
        if self._source is None:
            try:
                self._source = UUID(self.event.id).bytes
            except ValueError:
                raise PermanentEventError("ce_id is not a UUID: no agency's copy can be derived from it") from None
        event_id = copy_id(self._source, agreement.agency_id)
        # Which terms it was written under: the relay's gate drops it if other terms are in force by the time it
        # leaves (who is in view may have changed, and the record cannot tell).
        headers = f'{self._headers}, "ce_id": "{event_id}", "{AGREEMENT_VERSION_HEADER}": "{agreement.version}"}}'
        shown = 'false,"record":null}' if record is None else 'true,"record":' + record + "}"
        payload = self._payload + shown
        return (event_id, _SHARED.type, topic, self.event.subject or "", headers, payload)


def copy_id(source: bytes, agency_id: str) -> str:
    """The id of an agency's copy of the registry event whose id is ``source`` (its 16 bytes): exactly
    ``str(uuid5(UUID(bytes=source), agency_id))``, worked out without building either ``UUID`` (this runs for every
    copy of every event). SHA-1 as RFC 4122 names it for version 5: a name-based id, not a secret."""
    digest = bytearray(hashlib.sha1(source + agency_id.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


async def merging_alone(connection: asyncpg.Connection) -> None:
    """Waits until no batch is being applied, and keeps new ones waiting until the caller's transaction ends."""
    await connection.execute(_ALONE, REBUILD_LOCK)
