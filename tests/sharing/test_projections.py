"""Per-agency projections from registry events, on the real Kafka broker and PostgreSQL: only what
each agreement allows, only inside its jurisdiction, idempotent and order-safe."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.sharing.shipped import AGREEMENTS, COVERING_LAJING, NARROWED, SHIPPED, VILLAGE_RECORD, variant
from tests.support.clock import ManualClock
from tests.support.factories import sample_event, snapshots
from tests.support.kafka import tail
from tests.support.waiting import until
from timpora.common import register
from timpora.common.db.engine import driver_connection, make_session_factory
from timpora.common.disclosures import DisclosureLog, log_table
from timpora.common.events import CloudEvent, KafkaRecord, decode, new_event
from timpora.common.events.envelope import attribute_headers
from timpora.common.events.payloads import (
    AccommodationStay,
    Contract,
    ForeignerDeparted,
    ForeignerSnapshot,
    ForeignerUpdated,
    Movement,
    Permit,
    PermitStatus,
    PermitType,
    PresenceStatus,
    Residence,
    SharedRecord,
    StayPurpose,
    StayReported,
)
from timpora.common.kafka.admin import ensure_topics
from timpora.common.kafka.consumer import PermanentEventError
from timpora.common.kafka.producer import EventProducer
from timpora.common.outbox.relay import OutboxRow
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.common.topics import TopicCatalog
from timpora.sharing import projection
from timpora.sharing.domain import registry as agreement_registry
from timpora.sharing.main import SERVICE
from timpora.sharing.models import projected_people, projection_builds, projections
from timpora.sharing.outgoing import TopicGate
from timpora.sharing.settings import SharingSettings

#: Noon in Bangkalan on a day the shipped agreements are in force.
IN_FORCE = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
SURABAYA, KAMAL = "35.78.01.1001", "35.26.01.1001"
LAJING, OTHER_AROSBAYA, SAMPANG = "35.26.05.2003", "35.26.05.2004", "35.27.01.2001"
#: The migration that keeps the version applied once per person.
MIGRATION_0009 = Path(projection.__file__).parent / "migrations" / "versions" / "0009_projected_people.py"
MIGRATION_0010 = MIGRATION_0009.with_name("0010_rows_only_in_view.py")
#: Where projections applied straight to the database (no Kafka in these tests) address their agency records.
OFFLINE = TopicCatalog("test-offline")


def _moved(event: CloudEvent[Contract], village: str | None, version: int) -> CloudEvent[Contract]:
    snapshot: ForeignerSnapshot = event.data.foreigner  # type: ignore[attr-defined]
    # As the registry keeps them: the residence is where the event places the person (none without a village).
    residence = snapshot.residence
    if residence is not None:
        residence = None if village is None else residence.model_copy(update={"village_code": village})
    moved = snapshot.model_copy(update={"version": version, "residence": residence})
    data = ForeignerUpdated(foreigner=moved, jurisdiction=village, changed_fields=["residence"])
    return new_event(data, source="/timpora/registry", subject=event.subject)


def _someone(snapshot: ForeignerSnapshot, village: str | None) -> CloudEvent[ForeignerUpdated]:
    """A new person (a fresh id) at version 1, living in ``village``."""
    return new_event(
        ForeignerUpdated(
            foreigner=snapshot.model_copy(update={"foreigner_id": uuid.uuid4(), "version": 1}),
            jurisdiction=village,
            changed_fields=["residence"],
        ),
        source="/timpora/registry",
        subject=None,
    )


async def _rows(sessions: Any, foreigner_id: str) -> dict[str, Any]:
    async with sessions() as session:
        result = await session.execute(select(projections).where(projections.c.foreigner_id == uuid.UUID(foreigner_id)))
        return {row.agency_id: row for row in result}


@pytest.fixture
def sessions(sharing_engine: AsyncEngine) -> Any:
    return make_session_factory(sharing_engine)


async def _apply(sessions: Any, event: CloudEvent[Contract], when: datetime = IN_FORCE) -> None:
    async with sessions() as session, session.begin():
        await projection.apply(session, event, AGREEMENTS, when, OFFLINE)


async def test_each_agency_gets_only_its_fields_and_only_in_its_jurisdiction(sessions: Any) -> None:
    event = sample_event(jurisdiction=LAJING)
    await _apply(sessions, event)
    rows = await _rows(sessions, str(event.subject))

    # Everyone whose agreement shows the person: those narrowed to some permit types do not see someone without one,
    # and hold no row of someone never in their view (nor does anyone whose jurisdiction is elsewhere).
    assert set(rows) == COVERING_LAJING - NARROWED
    assert all(row.visible for row in rows.values())
    assert set(rows["desa-lajing"].record) == VILLAGE_RECORD
    assert rows["polres-bangkalan"].record["passport_number"] == "E12345678"
    assert "passport_number" not in rows["pemkab-bangkalan"].record

    # Out of an agency's view, out of its projection: no row, not even an empty one.
    await _apply(sessions, _moved(event, OTHER_AROSBAYA, 2))
    rows = await _rows(sessions, str(event.subject))
    assert "desa-lajing" not in rows
    assert rows["pemkab-bangkalan"].visible is True

    await _apply(sessions, _moved(event, SAMPANG, 3))
    assert await _rows(sessions, str(event.subject)) == {}


async def test_an_old_event_redelivered_after_a_move_does_not_bring_the_person_back(sessions: Any) -> None:
    event = sample_event(jurisdiction=LAJING)
    await _apply(sessions, event)
    await _apply(sessions, _moved(event, SAMPANG, 2))

    await _apply(sessions, event)

    assert await _rows(sessions, str(event.subject)) == {}


async def test_an_agreement_outside_its_validity_window_shares_nothing(sessions: Any) -> None:
    event = sample_event(jurisdiction=LAJING)

    await _apply(sessions, event, when=datetime(2028, 1, 1, 5, 0, tzinfo=UTC))

    assert await _rows(sessions, str(event.subject)) == {}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    snapshot=snapshots(),
    villages=st.lists(st.sampled_from([LAJING, OTHER_AROSBAYA, SAMPANG, None]), min_size=1, max_size=6),
    seed=st.integers(0, 1000),
)
async def test_any_delivery_order_with_duplicates_ends_as_the_newest_event_says(
    sessions: Any, snapshot: ForeignerSnapshot, villages: list[str | None], seed: int
) -> None:
    base = _someone(snapshot, villages[0])
    subject = str(base.data.foreigner.foreigner_id)
    history = [_moved(base, village, version) for version, village in enumerate(villages, start=1)]
    deliveries = history + random.Random(seed).choices(history, k=len(history))
    random.Random(seed).shuffle(deliveries)

    for event in deliveries:
        await _apply(sessions, event)

    rows = await _rows(sessions, subject)
    for agreement in AGREEMENTS:
        # In view where the person lives, or stays in an accommodation (the snapshot may hold an open stay).
        if not any(agreement.covers(place) for event in history for place in event.data.places):  # type: ignore[attr-defined]
            assert agreement.agency_id not in rows
            continue
        if agreement.shows(history[-1].data):  # type: ignore[arg-type]
            row = rows[agreement.agency_id]
            assert row.visible
            assert row.version == len(villages)
            assert row.record == agreement.record_of(history[-1].data)  # type: ignore[arg-type]
        else:
            # Out of view: no row, whether or not the agency saw the person on the way.
            assert agreement.agency_id not in rows
    await _forget(sessions, [uuid.UUID(subject)])


async def _state_of(sessions: Any, people: list[uuid.UUID]) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the projection wrote about ``people``: rows, history and the agencies' outbox, in order."""
    from timpora.sharing.models import outbox, projection_history  # noqa: PLC0415

    subjects = [str(person) for person in people]
    async with sessions() as session:
        rows = await session.execute(
            select(projections)
            .where(projections.c.foreigner_id.in_(people))
            .order_by(projections.c.agency_id, projections.c.foreigner_id)
        )
        history = await session.execute(
            select(projection_history)
            .where(projection_history.c.foreigner_id.in_(people))
            .order_by(projection_history.c.agency_id, projection_history.c.foreigner_id, projection_history.c.version)
        )
        sent = await session.execute(
            select(outbox.c.topic, outbox.c.event_id, outbox.c.headers, outbox.c.payload)
            .where(outbox.c.partition_key.in_(subjects))
            .order_by(outbox.c.id)
        )
        return {
            "rows": [tuple(row)[:-1] for row in rows],  # without updated_at
            "history": [tuple(row)[:-1] for row in history],  # without recorded_at
            "outbox": [tuple(row) for row in sent],
        }


async def _forget(sessions: Any, people: list[uuid.UUID]) -> None:
    from timpora.sharing.models import outbox, projection_history  # noqa: PLC0415

    async with sessions() as session, session.begin():
        await session.execute(delete(projections).where(projections.c.foreigner_id.in_(people)))
        await session.execute(delete(projected_people).where(projected_people.c.foreigner_id.in_(people)))
        await session.execute(delete(projection_history).where(projection_history.c.foreigner_id.in_(people)))
        await session.execute(delete(outbox).where(outbox.c.partition_key.in_([str(p) for p in people])))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    people=st.lists(
        st.tuples(
            snapshots(),
            st.lists(st.sampled_from([LAJING, OTHER_AROSBAYA, SAMPANG, KAMAL, None]), min_size=1, max_size=5),
        ),
        min_size=1,
        max_size=3,
    ),
    seed=st.integers(0, 1000),
)
async def test_events_applied_in_batches_end_exactly_as_applied_one_by_one(
    sessions: Any, people: list[tuple[ForeignerSnapshot, list[str | None]]], seed: int
) -> None:
    rng = random.Random(seed)
    events: list[CloudEvent[Contract]] = []
    lasts: list[CloudEvent[Contract]] = []
    ids = []
    for snapshot, villages in people:
        base = _someone(snapshot, villages[0])
        ids.append(base.data.foreigner.foreigner_id)
        events += [_moved(base, village, version) for version, village in enumerate(villages, start=1)]
        lasts.append(events[-1])
    # Redeliveries (a same-version event again is a reminder the agency may be told of) and any interleaving.
    deliveries = events + rng.choices(events, k=len(events) // 2)
    rng.shuffle(deliveries)

    for event in deliveries:
        await _apply(sessions, event)
    one_by_one = await _state_of(sessions, ids)
    await _forget(sessions, ids)
    cuts = sorted(rng.sample(range(1, len(deliveries)), k=min(len(deliveries) - 1, rng.randint(0, 3))))
    for start, end in zip([0, *cuts], [*cuts, len(deliveries)], strict=True):
        async with sessions() as session, session.begin():
            await projection.apply_many(session, deliveries[start:end], AGREEMENTS, IN_FORCE, OFFLINE)
    in_batches = await _state_of(sessions, ids)
    await _forget(sessions, ids)

    # Not vacuous: each person's latest event is always applied, so someone it shows has a row.
    if any(agreement.shows(last.data) for last in lasts for agreement in AGREEMENTS):  # type: ignore[arg-type]
        assert one_by_one["rows"]
    assert in_batches == one_by_one


async def test_a_second_batch_in_one_transaction_does_not_bring_back_the_first(sessions: Any) -> None:
    from timpora.sharing.models import outbox  # noqa: PLC0415

    first, second = sample_event(jurisdiction=LAJING), sample_event(jurisdiction=LAJING)
    people = [first.data.foreigner.foreigner_id, second.data.foreigner.foreigner_id]  # type: ignore[attr-defined]
    async with sessions() as session, session.begin():
        await projection.apply(session, first, AGREEMENTS, IN_FORCE, OFFLINE)
        await session.execute(delete(projections).where(projections.c.foreigner_id == people[0]))
        await session.execute(delete(outbox).where(outbox.c.partition_key == str(people[0])))
        await projection.apply(session, second, AGREEMENTS, IN_FORCE, OFFLINE)
    state = await _state_of(sessions, people)
    await _forget(sessions, people)

    assert {row[1] for row in state["rows"]} == {people[1]}
    assert {json.loads(row[3])["record"]["foreigner_id"] for row in state["outbox"]} == {str(people[1])}


async def test_a_rebuild_merges_only_while_no_batch_is_being_applied(
    sessions: Any, sharing_engine: AsyncEngine
) -> None:
    event = sample_event(jurisdiction=LAJING)
    try_alone = "SELECT pg_try_advisory_xact_lock(hashtext($1))"
    async with sharing_engine.connect() as watcher:
        watching = await driver_connection(watcher)
        # A batch in progress keeps a rebuild's merge out until its transaction ends...
        async with sessions() as session, session.begin():
            await projection.apply(session, event, AGREEMENTS, IN_FORCE, OFFLINE)
            assert await watching.fetchval(try_alone, projection.REBUILD_LOCK) is False
        assert await watching.fetchval(try_alone, projection.REBUILD_LOCK) is True

        # ... and a merge in progress keeps the next batch waiting until it ends.
        async with sharing_engine.begin() as rebuilding:
            await projection.merging_alone(await driver_connection(rebuilding))
            applying = asyncio.create_task(_apply(sessions, _moved(event, OTHER_AROSBAYA, 2)))

            async def batch_waits() -> bool:
                waiting: int = await watching.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                return waiting > 0

            await until(batch_waits, what="the batch waiting for the merge")
            assert not applying.done()
        await asyncio.wait_for(applying, timeout=60)
    rows = await _rows(sessions, str(event.subject))
    await _forget(sessions, [event.data.foreigner.foreigner_id])  # type: ignore[attr-defined]
    assert {row.version for row in rows.values()} == {2}


async def test_an_event_whose_id_is_no_uuid_still_updates_the_views_it_shares_nothing_with(sessions: Any) -> None:
    # Nobody is told of a person living outside every jurisdiction, so no copy's id needs deriving from it.
    event = dataclasses.replace(sample_event(jurisdiction=SURABAYA), id="not-a-uuid")
    await _apply(sessions, event)
    rows = await _rows(sessions, str(event.subject))
    assert rows == {} or not any(row.visible for row in rows.values())

    # Someone an agency is told of: the event is refused as the event's own fault, with a reason.
    told = dataclasses.replace(sample_event(jurisdiction=LAJING), id="not-a-uuid")
    with pytest.raises(PermanentEventError, match="ce_id is not a UUID"):
        await _apply(sessions, told)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(snapshot=snapshots())
async def test_an_agencys_copy_is_exactly_the_shared_record_event_of_the_contract(
    sessions: Any, snapshot: ForeignerSnapshot
) -> None:
    from timpora.sharing.models import outbox  # noqa: PLC0415

    person = snapshot.model_copy(update={"foreigner_id": uuid.uuid4(), "version": 1})
    event = new_event(
        ForeignerUpdated(foreigner=person, jurisdiction=LAJING, changed_fields=["residence"]),
        source="/timpora/registry",
        subject=str(person.foreigner_id),
    )
    await _apply(sessions, event)
    async with sessions() as session:
        rows = list(await session.execute(select(outbox).where(outbox.c.partition_key == event.subject)))
    await _forget(sessions, [person.foreigner_id])

    assert rows or not any(a.shows(event.data) for a in AGREEMENTS)
    for row in rows:
        agreement = next(a for a in AGREEMENTS if row.topic == OFFLINE.agency_events(a.agency_id).name)
        # What new_event would make of it: the relay publishes these headers and these bytes as they are.
        expected = new_event(
            SharedRecord(event="foreigner.updated", in_view=True, record=agreement.record_of(event.data)),
            source=projection.SOURCE,
            subject=event.subject,
            event_id=str(uuid.uuid5(uuid.UUID(event.id), agreement.agency_id)),
            time=event.time,
        )
        assert (row.event_id, row.event_type) == (uuid.UUID(expected.id), expected.type)
        assert row.headers == attribute_headers(expected) | {
            projection.AGREEMENT_VERSION_HEADER: str(agreement.version)
        }
        assert row.payload == expected.data.model_dump_json()


@given(st.uuids(), st.text(min_size=1, max_size=64))
def test_a_copys_id_is_the_uuid5_of_the_registry_events_id_and_the_agency(source: uuid.UUID, agency_id: str) -> None:
    assert projection.copy_id(source.bytes, agency_id) == str(uuid.uuid5(source, agency_id))


async def test_the_service_projects_events_it_consumes_from_kafka(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], sessions: Any
) -> None:
    topic = kafka_settings.catalog.registry_events.name
    settings_ = SharingSettings(
        kafka=kafka_settings, database=database_settings["sharing"], register_file=register.DEFAULT_REGISTER
    )
    app = SERVICE.create_app(settings_)
    producer = EventProducer(kafka_settings, client_id="test")
    await producer.start()
    event = sample_event(jurisdiction=LAJING)
    try:
        async with (
            LifespanManager(app, startup_timeout=60, shutdown_timeout=30),
            tail(kafka_settings, kafka_settings.catalog.agency_events("desa-lajing").name) as village_topic,
        ):
            await producer.publish(topic, event)
            await producer.publish(topic, event)  # a duplicate delivery
            rows: dict[str, Any] = {}
            showing = {agreement.agency_id for agreement in AGREEMENTS if agreement.shows(event.data)}  # type: ignore[arg-type]

            async def projected() -> bool:
                nonlocal rows
                rows = await _rows(sessions, str(event.subject))
                return set(rows) == showing

            await until(projected, what="the event projected for every agreement")
            received = await village_topic.collect(lambda _: village_topic.with_key(str(event.subject)) != [])
            # How far the projections are behind the registry is measured, as for the alerts service.
            labels = {"service": "sharing", "group": settings_.consumer_group, "topic": topic}

            async def measured() -> bool:
                return REGISTRY.get_sample_value("timpora_consumer_lag_records", labels) is not None

            await until(measured, what="the projections' lag measured")
            lag = REGISTRY.get_sample_value("timpora_consumer_lag_records", labels)
    finally:
        await producer.stop()

    assert lag is not None

    assert set(rows) == showing
    assert rows["desa-lajing"].record["full_name"] == "Li Wei"
    (shared,) = [record for record in received if record.key == str(event.subject).encode()]
    decoded = decode(KafkaRecord(key=shared.key, value=shared.value or b"", headers=tuple(shared.headers)))
    assert decoded.type == "id.timpora.sharing.record.v1"
    assert set(decoded.data.record) == VILLAGE_RECORD  # type: ignore[attr-defined]
    # What reached the topic is in the disclosure log, recorded before it was sent (the duplicate, dropped by
    # the inbox, was never sent).
    (logged,) = await _topic_disclosures(sessions, "desa-lajing", event.subject)
    village_topic_name = kafka_settings.catalog.agency_events("desa-lajing").name
    assert (logged.reference, logged.basis) == (f"{village_topic_name} {decoded.id}", "agreement")
    assert logged.fields == sorted(VILLAGE_RECORD - {"foreigner_id", "version"})
    assert logged.query == {"event": "foreigner.arrived", "in_view": True}
    assert logged.agreement_version == SHIPPED["desa-lajing"].version


async def _topic_disclosures(sessions: Any, agency: str | None, subject: object) -> list[Any]:
    """What the disclosure log holds of records about ``subject`` sent to ``agency``'s topic (anyone's: None)."""
    conditions = [log_table.c.channel == "topic", log_table.c.record_ids.contains([uuid.UUID(str(subject))])]
    if agency is not None:
        conditions.append(log_table.c.agency_id == agency)
    async with sessions() as session:
        found = await session.execute(select(log_table).where(*conditions).order_by(log_table.c.id))
        return list(found)


async def _agency_events(sessions: Any, subject: str) -> dict[str, list[dict[str, Any]]]:
    from timpora.sharing.models import outbox  # noqa: PLC0415

    async with sessions() as session:
        rows = await session.execute(
            select(outbox.c.topic, outbox.c.event_type, outbox.c.payload)
            .where(outbox.c.partition_key == subject)
            .order_by(outbox.c.id)
        )
    found: dict[str, list[dict[str, Any]]] = {}
    for topic, event_type, payload in rows:
        assert event_type == "id.timpora.sharing.record.v1"
        found.setdefault(topic.split(".")[3], []).append(json.loads(payload))
    return found


async def test_each_agency_topic_gets_the_event_as_that_agency_may_see_it(sessions: Any) -> None:
    event = sample_event(jurisdiction=LAJING)
    subject = str(event.subject)

    await _apply(sessions, event)
    await _apply(sessions, _moved(event, SAMPANG, 2))

    published = await _agency_events(sessions, subject)
    assert set(published) == {
        agency
        for agency in COVERING_LAJING
        if "foreigner.arrived" in SHIPPED[agency].event_types and SHIPPED[agency].shows(event.data)  # type: ignore[arg-type]
    }
    village = published["desa-lajing"]
    assert [entry["event"] for entry in village] == ["foreigner.arrived"]
    assert set(village[0]["record"]) == VILLAGE_RECORD
    regency = published["pemkab-bangkalan"]
    assert [(entry["event"], entry["in_view"]) for entry in regency] == [
        ("foreigner.arrived", True),
        ("foreigner.updated", False),
    ]
    assert regency[1]["record"] is None
    assert "passport_number" in published["polres-bangkalan"][0]["record"]


async def _outbox_rows(sessions: Any, subject: str) -> list[OutboxRow]:
    """The outbox rows about ``subject`` as the relay reads them."""
    from timpora.sharing.models import outbox  # noqa: PLC0415

    async with sessions() as session:
        found = await session.execute(select(outbox).where(outbox.c.partition_key == subject).order_by(outbox.c.id))
        return [
            OutboxRow(
                id=row.id,
                topic=row.topic,
                record=KafkaRecord(
                    key=row.partition_key.encode(),
                    value=row.payload.encode(),
                    headers=tuple((name, value.encode()) for name, value in row.headers.items()),
                ),
            )
            for row in found
        ]


async def test_a_record_leaves_for_an_agencys_topic_only_as_the_agreement_in_force_when_it_leaves_allows(
    sharing_engine: AsyncEngine, sessions: Any, tmp_path: Any
) -> None:
    # Written to the outbox under the shipped agreements; the register changes before the relay sends them.
    event = sample_event(jurisdiction=LAJING)
    await _apply(sessions, event)
    written = await _outbox_rows(sessions, str(event.subject))
    agency_of = {OFFLINE.agency_events(agency).name: agency for agency in SHIPPED}
    assert {"desa-lajing", "polres-bangkalan", "pemkab-bangkalan"} <= {agency_of[row.topic] for row in written}
    narrowed = variant(tmp_path, "desa-lajing", name="narrowed.yaml", version=20, fields=["full_name", "presence"])
    withdrawn = variant(tmp_path, "polres-bangkalan", name="withdrawn.yaml", version=20, valid_to="2026-06-30")
    regency = SHIPPED["pemkab-bangkalan"]
    unlisted = variant(
        tmp_path,
        "pemkab-bangkalan",
        name="unlisted.yaml",
        version=20,
        event_types=[name for name in regency.event_types if name != "foreigner.arrived"],
    )
    disclosure_log = DisclosureLog(sharing_engine)
    sent: dict[str, dict[str, dict[str, Any]]] = {}
    logged: dict[str, list[Any]] = {}
    try:
        for label, path in (("narrowed", narrowed), ("withdrawn", withdrawn), ("unlisted", unlisted)):
            before = len(await _topic_disclosures(sessions, None, event.subject))
            gate = TopicGate(path, OFFLINE, disclosure_log, ManualClock(IN_FORCE))
            sent[label] = {agency_of[row.topic]: json.loads(row.record.value) for row in await gate(written)}
            logged[label] = (await _topic_disclosures(sessions, None, event.subject))[before:]
    finally:
        await disclosure_log.close()

    everyone = {agency_of[row.topic] for row in written}
    # The agreement in force when the record leaves, not the one it was written under, decides: a record written
    # under another version stays back (whether the person is in view under the new terms cannot be told from it;
    # the rebuild that follows brings the view up to date), the others leave as written.
    assert set(sent["narrowed"]) == everyone - {"desa-lajing"}
    assert "passport_number" in sent["narrowed"]["polres-bangkalan"]["record"]
    # An agreement no longer in force, or no longer listing the event, lets nothing more out.
    assert set(sent["withdrawn"]) == everyone - {"polres-bangkalan"}
    assert set(sent["unlisted"]) == everyone - {"pemkab-bangkalan"}
    # Each record sent is in the disclosure log with the fields it showed; nothing held back is.
    for label, records in sent.items():
        assert {row.agency_id: row.fields for row in logged[label]} == {
            agency: sorted(set(shared["record"]) - {"foreigner_id", "version"}) for agency, shared in records.items()
        }, label
    assert "desa-lajing" not in {row.agency_id for row in logged["narrowed"]}


async def test_someone_never_in_an_agencys_view_never_reaches_its_topic(sessions: Any) -> None:
    event = sample_event(jurisdiction=SAMPANG)

    await _apply(sessions, event)

    assert await _agency_events(sessions, str(event.subject)) == {}


async def test_a_changed_agreement_rebuilds_the_projection_like_a_fresh_replay(
    kafka_settings: KafkaSettings, sessions: Any, tmp_path: Any
) -> None:
    from timpora.sharing import rebuild  # noqa: PLC0415

    topic = kafka_settings.catalog.registry_events.name
    await ensure_topics(kafka_settings, [kafka_settings.catalog.registry_events])
    lajing, arosbaya, sampang = (sample_event(jurisdiction=v) for v in (LAJING, OTHER_AROSBAYA, SAMPANG))
    history = [lajing, arosbaya, sampang, _moved(sampang, LAJING, 2), _moved(lajing, OTHER_AROSBAYA, 2)]
    producer = EventProducer(kafka_settings, client_id="test")
    await producer.start()
    for event in history:
        await producer.publish(topic, event)
    await producer.stop()
    village_v1 = next(a for a in AGREEMENTS if a.agency_id == "desa-lajing")
    for event in history:
        await _apply(sessions, event)
    built = await _rows(sessions, str(sampang.subject))
    assert {agency: row.agreement_version for agency, row in built.items()} == {
        agency: SHIPPED[agency].version for agency in built
    }

    # The village head's agreement stretched to the whole district (the member with it), under a new version.
    path = variant(
        tmp_path,
        "desa-lajing",
        member={"jurisdiction": ["35.26.05"]},
        version=village_v1.version + 1,
        jurisdiction=["35.26.05"],
        fields=["full_name", "nationality", "sex", "presence"],
    )
    village_v2 = register.load(path).agreements["desa-lajing"]
    assert village_v2.version == village_v1.version + 1
    assert await rebuild.stale_agencies(sessions, [village_v2]) == [village_v2]

    await rebuild.rebuild(sessions, kafka_settings, topic, [village_v2], IN_FORCE)
    rebuilt = await rebuild.fingerprint(sessions, "desa-lajing")
    async with sessions() as session, session.begin():
        await session.execute(delete(projections).where(projections.c.agency_id == "desa-lajing"))
    await rebuild.rebuild(sessions, kafka_settings, topic, [village_v2], IN_FORCE)

    assert await rebuild.fingerprint(sessions, "desa-lajing") == rebuilt
    assert await rebuild.stale_agencies(sessions, [village_v2]) == []
    now_lajing = (await _rows(sessions, str(sampang.subject)))["desa-lajing"]
    moved_away = (await _rows(sessions, str(lajing.subject)))["desa-lajing"]
    assert now_lajing.visible
    assert set(now_lajing.record) == {"foreigner_id", "version", "full_name", "nationality", "sex", "presence"}
    assert moved_away.visible, "35.26.05 now covers the rest of Arosbaya too"
    assert (await _rows(sessions, str(arosbaya.subject)))["desa-lajing"].visible


def test_the_rebuild_command_refuses_an_unknown_agency(database_settings: dict[str, DatabaseSettings]) -> None:
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    environment = os.environ | {"TIMPORA_SHARING_DATABASE__URL": database_settings["sharing"].url.get_secret_value()}
    result = subprocess.run(
        [sys.executable, "-m", "timpora.sharing.main", "rebuild", "no-such-agency", "--operator", "tester"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "no agreement for agency no-such-agency" in result.stderr


async def test_the_manpower_office_sees_holders_of_limited_stay_permits_only(sessions: Any) -> None:
    # Its agreement is about foreign workers: a tourist in the regency is none of its business.
    worker = sample_event(jurisdiction=LAJING)
    worker_snapshot: ForeignerSnapshot = worker.data.foreigner  # type: ignore[attr-defined]
    visitor = sample_event(jurisdiction=LAJING)
    visitor_snapshot: ForeignerSnapshot = visitor.data.foreigner  # type: ignore[attr-defined]
    for event, snapshot, permit_type in (
        (worker, worker_snapshot, PermitType.ITAS),
        (visitor, visitor_snapshot, PermitType.VISIT),
    ):
        permit = Permit(
            permit_id=uuid.uuid4(),
            number=f"P{uuid.uuid4().hex[:10].upper()}",
            type=permit_type,
            issued_on=date(2026, 11, 1),
            expires_on=date(2027, 11, 1),
            status=PermitStatus.ACTIVE,
        )
        moved = snapshot.model_copy(update={"version": 2, "permit": permit})
        data = ForeignerUpdated(foreigner=moved, jurisdiction=LAJING, changed_fields=["permit"])
        await _apply(sessions, new_event(data, source="/timpora/registry", subject=event.subject))

    assert (await _rows(sessions, str(worker.subject)))["disnaker-bangkalan"].visible
    assert "disnaker-bangkalan" not in await _rows(sessions, str(visitor.subject))  # never in its view: no row
    assert (await _rows(sessions, str(visitor.subject)))["pemkab-bangkalan"].visible


async def test_a_guest_in_a_hotel_of_the_regency_is_in_its_view_while_staying_without_their_home_address(
    sessions: Any,
) -> None:
    # Issue 9, defect 6: a Surabaya resident staying in a Bangkalan hotel is supervised where they are.
    arrived = sample_event(jurisdiction=SURABAYA)
    person = arrived.data.foreigner  # type: ignore[attr-defined]
    residence = Residence(address="Jl. Tunjungan 5", village_code=SURABAYA, since=date(2026, 11, 1))
    hotel = AccommodationStay(provider="Hotel Ningrat", village_code=KAMAL, check_in=date(2026, 11, 5))

    def stay_event(stay: AccommodationStay, version: int) -> CloudEvent[Contract]:
        snapshot = person.model_copy(update={"version": version, "residence": residence, "stay": stay})
        return new_event(
            StayReported(foreigner=snapshot, jurisdiction=SURABAYA, stay=stay),
            source="/timpora/registry",
            subject=str(person.foreigner_id),
        )

    await _apply(sessions, stay_event(hotel, 2))
    staying = await _rows(sessions, str(person.foreigner_id))
    await _apply(sessions, stay_event(hotel.model_copy(update={"check_out": date(2026, 11, 8)}), 3))
    left = await _rows(sessions, str(person.foreigner_id))

    police = staying["polres-bangkalan"]
    assert police.visible
    assert police.record["stay_provider"] == "Hotel Ningrat"
    assert police.record["stay_village_code"] == KAMAL
    assert "residence_address" not in police.record  # their home is another regency's business
    assert "desa-lajing" not in staying
    assert "polres-bangkalan" not in left  # checked out: out of view


async def test_an_agreement_without_guests_or_of_other_purposes_does_not_see_them(sessions: Any) -> None:
    # A hotel guest from elsewhere is the police's and the regency's to supervise, not every member's; religious
    # affairs sees students and religious workers, not every ITAS holder.
    arrived = sample_event(jurisdiction=SURABAYA)
    person = arrived.data.foreigner  # type: ignore[attr-defined]
    hotel = AccommodationStay(provider="Pondok Lajing", village_code="35.26.05.2003", check_in=date(2026, 11, 5))
    worker = Permit(
        permit_id=uuid.uuid4(),
        number="ITAS-W",
        type=PermitType.ITAS,
        purpose=StayPurpose.WORK,
        issued_on=date(2026, 1, 1),
        expires_on=date(2027, 1, 1),
        status=PermitStatus.ACTIVE,
    )
    residence = Residence(address="Jl. Tunjungan 5", village_code=SURABAYA, since=date(2026, 11, 1))
    snapshot = person.model_copy(update={"version": 2, "residence": residence, "stay": hotel, "permit": worker})
    guest = new_event(
        StayReported(foreigner=snapshot, jurisdiction=SURABAYA, stay=hotel),
        source="/timpora/registry",
        subject=str(person.foreigner_id),
    )
    local = sample_event(jurisdiction=LAJING)
    local_worker = local.data.foreigner.model_copy(update={"permit": worker})  # type: ignore[attr-defined]
    resident = new_event(
        ForeignerUpdated(foreigner=local_worker, jurisdiction=LAJING, changed_fields=["permit"]),
        source="/timpora/registry",
        subject=str(local_worker.foreigner_id),
    )

    await _apply(sessions, guest)
    await _apply(sessions, resident)
    seen_guest = {a for a, row in (await _rows(sessions, str(person.foreigner_id))).items() if row.visible}
    seen_resident = {a for a, row in (await _rows(sessions, str(local_worker.foreigner_id))).items() if row.visible}

    assert seen_guest == {"pemkab-bangkalan", "polres-bangkalan"}
    assert "kemenag-bangkalan" not in seen_resident
    assert {"disnaker-bangkalan", "dukcapil-bangkalan", "desa-lajing"} <= seen_resident


async def test_a_tourist_known_only_by_their_hotel_is_seen_by_those_who_supervise_guests_even_as_they_leave(
    sessions: Any,
) -> None:
    arrived = sample_event(jurisdiction=None)
    person = arrived.data.foreigner  # type: ignore[attr-defined]
    hotel = AccommodationStay(provider="Hotel Suramadu Kamal", village_code=KAMAL, check_in=date(2026, 11, 5))
    staying = person.model_copy(update={"version": 2, "stay": hotel})
    closed = hotel.model_copy(update={"check_out": date(2026, 11, 9)})
    exit_ = Movement(port="Juanda", on=date(2026, 11, 9))
    leaving = person.model_copy(
        update={
            "version": 3,
            "stay": closed,
            "presence": PresenceStatus.DEPARTED,
            "departure": exit_,
        }
    )
    reported = new_event(
        StayReported(foreigner=staying, jurisdiction=KAMAL, stay=hotel),
        source="/timpora/registry",
        subject=str(person.foreigner_id),
    )
    # The registry publishes the departure where the person was (the hotel), though leaving ended the stay.
    departed = new_event(
        ForeignerDeparted(foreigner=leaving, jurisdiction=KAMAL, departure=exit_),
        source="/timpora/registry",
        subject=str(person.foreigner_id),
    )

    await _apply(sessions, reported)
    seen = {a for a, row in (await _rows(sessions, str(person.foreigner_id))).items() if row.visible}
    await _apply(sessions, departed)
    after = await _rows(sessions, str(person.foreigner_id))

    assert seen == {"pemkab-bangkalan", "polres-bangkalan"}
    assert after["polres-bangkalan"].visible
    assert after["polres-bangkalan"].record["presence"] == "departed"


async def test_a_rebuild_racing_a_live_event_does_not_bring_back_someone_who_left(
    sessions: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The village head's agreement is widened to the whole district (v2). The rebuild reads the topic while
    the live consumer, already under v2, applies the person's move out of the district: the rebuild's merge must not
    put the person back in view, and a redelivery of the move must send the village head nothing."""
    from timpora.sharing import rebuild  # noqa: PLC0415

    village_v1 = SHIPPED["desa-lajing"]
    path = variant(
        tmp_path,
        "desa-lajing",
        member={"jurisdiction": ["35.26.05"]},
        version=village_v1.version + 1,
        jurisdiction=["35.26.05"],
        event_types=[*village_v1.event_types, "foreigner.updated"],
    )
    village_v2 = register.load(path).agreements["desa-lajing"]
    widened = [village_v2 if agreement.agency_id == "desa-lajing" else agreement for agreement in AGREEMENTS]
    first = sample_event(jurisdiction=OTHER_AROSBAYA)  # outside the village's v1 view, inside v2's
    await _apply(sessions, first)
    # The rebuild under v2 has read the topic up to its end: ``first``. Meanwhile the live consumer, under v2 already,
    # applies the person's move to Sampang (out of view under v2 too).
    moved = _moved(first, SAMPANG, 2)
    async with sessions() as session, session.begin():
        await projection.apply(session, moved, widened, IN_FORCE, OFFLINE)
    data = first.data
    read = {data.foreigner.foreigner_id: [rebuild.Recorded(first.spec.name, first.time, data)]}  # type: ignore[attr-defined, arg-type]

    async def histories(_kafka: Any, _topic: str, _keep: Any) -> Any:
        return read

    monkeypatch.setattr(rebuild, "person_histories", histories)
    await rebuild.rebuild(sessions, None, "unused", [village_v2], IN_FORCE)  # type: ignore[arg-type]

    row = (await _rows(sessions, str(first.subject))).get("desa-lajing")
    shown = None if row is None else (row.visible, row.version, row.record)
    # A redelivery of the move (or a reminder at its version) reaches the village head's topic only if in view.
    async with sessions() as session, session.begin():
        await projection.apply(session, moved, widened, IN_FORCE, OFFLINE)
    sent = (await _agency_events(sessions, str(first.subject))).get("desa-lajing", [])
    await _forget(sessions, [data.foreigner.foreigner_id])  # type: ignore[attr-defined]
    assert (row, sent) == (None, []), f"in view after the rebuild: {shown}; sent: {sent}"


async def test_the_migration_seeds_the_version_the_live_consumer_applied_not_a_rebuilds(sessions: Any) -> None:
    """Before 0009 every agency held a row of every person; a rebuild run while the live consumer lagged left
    one agency's row ahead of the rest. 0009 seeds projected_people from the lowest version (with the highest, the live
    consumer catching up would skip the events in between for every other agency)."""
    from sqlalchemy import text, update  # noqa: PLC0415

    event = sample_event(jurisdiction=LAJING)
    person = event.data.foreigner.foreigner_id  # type: ignore[attr-defined]
    await _apply(sessions, event)  # every agency that sees the person holds version 1
    # The village head's projection was rebuilt from the topic while the live consumer lagged: it is at version 3.
    async with sessions() as session, session.begin():
        await session.execute(
            update(projections)
            .where(projections.c.foreigner_id == person, projections.c.agency_id == "desa-lajing")
            .values(version=3, visible=False, record=None)
        )
        await session.execute(delete(projected_people).where(projected_people.c.foreigner_id == person))
        # What 0009 runs on an existing database (for this one person).
        seeding = MIGRATION_0009.read_text(encoding="utf-8")
        assert "SELECT foreigner_id, min(version) FROM projections GROUP BY foreigner_id" in seeding
        await session.execute(
            text(
                "INSERT INTO projected_people (foreigner_id, version) "
                "SELECT foreigner_id, min(version) FROM projections WHERE foreigner_id = :p GROUP BY foreigner_id"
            ),
            {"p": person},
        )
    await _apply(sessions, _moved(event, SAMPANG, 2))
    await _apply(sessions, _moved(event, OTHER_AROSBAYA, 3))

    rows = await _rows(sessions, str(event.subject))
    await _forget(sessions, [person])
    polres = rows["polres-bangkalan"]
    assert polres.version == 3, f"the police still hold version {polres.version}: {polres.record}"


async def test_the_migration_removes_the_tombstones_but_one_a_rebuild_took_ahead(sessions: Any) -> None:
    """Before 0010 someone who left an agency's view kept a row there (``visible`` false). 0010 removes those rows,
    except one a rebuild left ahead of the live consumer: until it catches up, that row keeps an older event from
    putting the person back in the agency's view."""
    import importlib.util  # noqa: PLC0415

    from sqlalchemy import text, update  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("migration_0010", MIGRATION_0010)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    event = sample_event(jurisdiction=LAJING)
    person = event.data.foreigner.foreigner_id  # type: ignore[attr-defined]
    await _apply(sessions, event)  # version 1 in every view that takes the person
    async with sessions() as session, session.begin():
        # Tombstones as they were written before: the police's caught up with (version 1), the village head's ahead.
        for agency, version in (("polres-bangkalan", 1), ("desa-lajing", 2)):
            await session.execute(
                update(projections)
                .where(projections.c.foreigner_id == person, projections.c.agency_id == agency)
                .values(version=version, visible=False, record=None)
            )
        # The migration's statement, for this person's rows only (the test database is shared).
        await session.execute(text(f"{migration.REMOVE_TOMBSTONES} AND projections.foreigner_id = :p"), {"p": person})
    rows = await _rows(sessions, str(event.subject))
    # The live consumer reaches version 2: the village head's guard has done its work and goes.
    await _apply(sessions, _moved(event, OTHER_AROSBAYA, 2))
    caught_up = await _rows(sessions, str(event.subject))
    await _forget(sessions, [person])
    assert "polres-bangkalan" not in rows
    assert rows["desa-lajing"].version == 2
    assert all(row.visible for agency, row in rows.items() if agency != "desa-lajing")
    assert "desa-lajing" not in caught_up
    assert caught_up["polres-bangkalan"].version == 2


async def test_a_widened_agreement_of_an_agency_that_sees_nobody_yet_is_rebuilt(sessions: Any, tmp_path: Any) -> None:
    """An agency that sees nobody holds no row any more; widened under a new version, it must still be found
    stale (rebuilt), or the people already in its new view stay out of it until their next event."""
    from tests.sharing.shipped import own_member, terms  # noqa: PLC0415
    from timpora.sharing import rebuild  # noqa: PLC0415

    agency = f"desa-{uuid.uuid4().hex[:6]}"
    fields = ["full_name", "nationality", "presence"]
    first = register.load(
        variant(tmp_path, added=[own_member(agency, [LAJING], terms(fields, version=1))], name="v1.yaml")
    ).agreements[agency]
    person = sample_event(jurisdiction=OTHER_AROSBAYA)  # outside the agency's village
    async with sessions() as session, session.begin():
        # As the service keeps every agreement version it loads (``agreements``), then applies events under it.
        await agreement_registry.record(session, [first], source=tmp_path / "v1.yaml")
        await projection.apply(session, person, [*AGREEMENTS, first], IN_FORCE, OFFLINE)
    widened = register.load(
        variant(
            tmp_path,
            added=[own_member(agency, ["35.26.05"], terms(fields, version=2, jurisdiction=["35.26.05"]))],
            name="v2.yaml",
        )
    ).agreements[agency]

    stale = await rebuild.stale_agencies(sessions, [widened])
    # Rebuilt (here at a moment the agreement is not in force: nothing to read, the build recorded all the same).
    await rebuild.rebuild(sessions, None, "unused", [widened], datetime(2028, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]
    rebuilt = await rebuild.stale_agencies(sessions, [widened])
    await _forget(sessions, [person.data.foreigner.foreigner_id])  # type: ignore[attr-defined]
    assert stale == [widened], "the widened agreement is never rebuilt: the person in Arosbaya stays out of view"
    assert rebuilt == [], "rebuilt under the version in force: not stale any more"


async def test_a_countrys_agencies_each_hold_exactly_the_people_of_their_jurisdiction(sessions: Any) -> None:
    """A small national register (national members, every province's and regency's government, districts, village
    heads): each agency holds a row of exactly the people living in its jurisdiction and nothing of anyone else;
    someone who moves to another province leaves the old agencies' projections (each told once) for the new ones'."""
    from tests.support import national  # noqa: PLC0415
    from timpora.common import regions  # noqa: PLC0415
    from timpora.common.register.agreements import Agreements  # noqa: PLC0415

    villages = national.home_villages(150, seed=7)
    members = national.register(800, villages)
    index = Agreements(member.agreement for member in members if member.agreement is not None)
    arrived = list(national.arrivals(villages, seed=7))
    people = {uuid.UUID(str(event.subject)): village for event, village in zip(arrived, villages, strict=True)}

    def covering(where: dict[uuid.UUID, str]) -> set[tuple[str, uuid.UUID]]:
        return {
            (member.id, person)
            for person, village in where.items()
            for member in members
            if regions.is_within_any(village, member.jurisdiction)
        }

    async def held() -> set[tuple[str, uuid.UUID]]:
        async with sessions() as session:
            found = await session.execute(
                select(projections.c.agency_id, projections.c.foreigner_id).where(
                    projections.c.foreigner_id.in_(list(people))
                )
            )
            return {(agency, person) for agency, person in found}

    async with sessions() as session, session.begin():
        await projection.apply_many(session, arrived, index, IN_FORCE, OFFLINE)
    first = await held()
    # Twenty people move to a village of another province.
    moves = {}
    for event, village in zip(arrived[:20], villages[:20], strict=True):
        elsewhere = next(other for other in villages if other[:2] != village[:2])
        moves[uuid.UUID(str(event.subject))] = (village, elsewhere, _moved(event, elsewhere, 2))
    async with sessions() as session, session.begin():
        await projection.apply_many(session, [move for _, _, move in moves.values()], index, IN_FORCE, OFFLINE)
    moved = {**people, **{person: elsewhere for person, (_, elsewhere, _) in moves.items()}}
    second = await held()
    told = {person: await _agency_events(sessions, str(person)) for person in moves}
    await _forget(sessions, list(people))

    assert first == covering(people)
    assert second == covering(moved)
    for person, (village, elsewhere, _) in moves.items():
        left = {member.id for member in members if member.covers(village) and not member.covers(elsewhere)}
        gone = {agency: [copy for copy in copies if not copy["in_view"]] for agency, copies in told[person].items()}
        assert {agency: len(copies) for agency, copies in gone.items() if copies} == dict.fromkeys(left, 1)


async def test_agencies_rebuilt_together_read_the_topic_once_and_each_ends_under_its_new_terms(
    sessions: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A register change narrows the village head's agreement to another village and adds a member for Sampang:
    both are rebuilt from one reading of the topic; the person who lives in Lajing leaves the village head's
    projection (no row left), the person in Arosbaya enters it, and the new member holds exactly the person in
    Sampang."""
    from tests.sharing.shipped import own_member, terms  # noqa: PLC0415
    from timpora.sharing import rebuild  # noqa: PLC0415

    lajing, arosbaya, sampang = (sample_event(jurisdiction=v) for v in (LAJING, OTHER_AROSBAYA, SAMPANG))
    for event in (lajing, arosbaya, sampang):
        await _apply(sessions, event)
    village_v1 = SHIPPED["desa-lajing"]
    path = variant(
        tmp_path,
        "desa-lajing",
        member={"jurisdiction": ["35.26.05"]},
        version=village_v1.version + 1,
        jurisdiction=[OTHER_AROSBAYA],
        added=[own_member("kab-sampang-test", ["35.27"], terms(["full_name", "presence"]))],
    )
    changed = register.load(path).agreements
    read = {
        event.data.foreigner.foreigner_id: [rebuild.Recorded(event.spec.name, event.time, event.data)]  # type: ignore[attr-defined, arg-type]
        for event in (lajing, arosbaya, sampang)
    }
    reads = []

    async def histories(_kafka: Any, topic: str, _keep: Any) -> Any:
        reads.append(topic)
        return read

    monkeypatch.setattr(rebuild, "person_histories", histories)
    together = [changed["desa-lajing"], changed["kab-sampang-test"]]
    counts = await rebuild.rebuild(sessions, None, "unused", together, IN_FORCE)  # type: ignore[arg-type]
    held = {
        name: set(await _rows(sessions, str(event.subject)))
        for name, event in (("lajing", lajing), ("arosbaya", arosbaya), ("sampang", sampang))
    }
    await _forget(sessions, [event.data.foreigner.foreigner_id for event in (lajing, arosbaya, sampang)])  # type: ignore[attr-defined]
    async with sessions() as session, session.begin():
        await session.execute(delete(projections).where(projections.c.agency_id == "kab-sampang-test"))

    assert reads == ["unused"]
    assert counts == {"desa-lajing": 1, "kab-sampang-test": 1}
    assert "desa-lajing" not in held["lajing"]
    assert "desa-lajing" in held["arosbaya"]
    assert "kab-sampang-test" in held["sampang"]
    assert "kab-sampang-test" not in held["lajing"] | held["arosbaya"]


async def test_a_rebuild_keeps_what_it_read_from_the_collector_and_hands_it_back_even_when_the_read_fails(
    sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every event a rebuild reads stays alive to its end, and the collector's passes over them were half its CPU:
    what it read is frozen out of the collector's reach, while the collector stays on for the service's other work
    (a rebuild runs inside the service), and everything is handed back afterwards, whatever happened."""
    import gc  # noqa: PLC0415

    from timpora.sharing import rebuild  # noqa: PLC0415

    during: list[tuple[bool, bool]] = []

    def read(keep: Callable[[], None]) -> None:
        before = gc.get_freeze_count()
        keep()
        during.append((gc.isenabled(), gc.get_freeze_count() > before))

    async def histories(_kafka: Any, _topic: str, keep: Callable[[], None]) -> Any:
        read(keep)
        return {}

    async def broken(_kafka: Any, _topic: str, keep: Callable[[], None]) -> Any:
        read(keep)
        raise ConnectionError("the broker went away mid-read")

    # An agency of this test's own: the rebuild of nobody leaves no other test's rows changed.
    village = SHIPPED["desa-lajing"].model_copy(update={"agency_id": f"gc-test-{uuid.uuid4().hex[:8]}"})
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(rebuild, "person_histories", histories)
    await rebuild.rebuild(sessions, None, "unused", [village], IN_FORCE)  # type: ignore[arg-type]
    frozen_after = gc.get_freeze_count()
    monkeypatch.setattr(rebuild, "person_histories", broken)
    with pytest.raises(ConnectionError):
        await rebuild.rebuild(sessions, None, "unused", [village], IN_FORCE)  # type: ignore[arg-type]
    frozen_after_failure = gc.get_freeze_count()
    async with sessions() as session, session.begin():
        await session.execute(delete(projection_builds).where(projection_builds.c.agency_id == village.agency_id))

    assert (frozen_after, frozen_after_failure) == (0, 0)
    assert gc.isenabled()
    assert during == [(True, True), (True, True)]


async def test_what_a_rebuild_read_is_let_go_before_its_sparing_ends(
    sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a running service, the end of a rebuild's sparing runs one full pass of the collector over what is
    alive (timpora.common.collector): what the rebuild read must be gone by then, or the pass walks every event read,
    a pause that grows with the topic."""
    import contextlib  # noqa: PLC0415
    import weakref  # noqa: PLC0415
    from collections.abc import Iterator  # noqa: PLC0415

    from timpora.sharing import rebuild  # noqa: PLC0415

    class Histories(dict[Any, Any]):
        """What the rebuild reads, watched."""

    read: list[weakref.ref[Histories]] = []
    alive_at_the_end: list[bool] = []

    async def histories(_kafka: Any, _topic: str, _keep: Any) -> Any:
        held = Histories()
        read.append(weakref.ref(held))
        return held

    @contextlib.contextmanager
    def watched() -> Iterator[Callable[[], None]]:
        yield lambda: None
        alive_at_the_end.append(read[0]() is not None)

    village = SHIPPED["desa-lajing"].model_copy(update={"agency_id": f"gc-end-{uuid.uuid4().hex[:8]}"})
    monkeypatch.setattr(rebuild, "person_histories", histories)
    monkeypatch.setattr(rebuild, "collector_spared", watched)
    await rebuild.rebuild(sessions, None, "unused", [village], IN_FORCE)  # type: ignore[arg-type]
    async with sessions() as session, session.begin():
        await session.execute(delete(projection_builds).where(projection_builds.c.agency_id == village.agency_id))

    assert alive_at_the_end == [False]


async def test_a_rebuild_ahead_of_the_live_consumer_keeps_the_events_on_the_way_from_showing_the_person(
    sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live consumer has applied a person living in Sampang (v1). The topic already holds their move to Lajing
    (v2, in the village head's view) and back to Sampang (v3). A rebuild of the village head reads up to v3: out of
    view. When the live consumer then applies v2 and v3, the village head must neither see the person nor be sent
    their record: the rebuild leaves a guard at v3, which the live consumer removes once it reaches v3."""
    from timpora.sharing import rebuild  # noqa: PLC0415

    first = sample_event(jurisdiction=SAMPANG)
    there, back = _moved(first, LAJING, 2), _moved(first, SAMPANG, 3)
    await _apply(sessions, first)
    person = first.data.foreigner.foreigner_id  # type: ignore[attr-defined]
    steps = [rebuild.Recorded(e.spec.name, e.time, e.data) for e in (first, there, back)]  # type: ignore[arg-type]
    read = {person: steps}

    async def histories(_kafka: Any, _topic: str, _keep: Any) -> Any:
        return read

    monkeypatch.setattr(rebuild, "person_histories", histories)
    await rebuild.rebuild(sessions, None, "unused", [SHIPPED["desa-lajing"]], IN_FORCE)  # type: ignore[arg-type]
    await _apply(sessions, there)
    on_the_way = (await _rows(sessions, str(first.subject))).get("desa-lajing")
    await _apply(sessions, back)
    after = (await _rows(sessions, str(first.subject))).get("desa-lajing")
    sent = (await _agency_events(sessions, str(first.subject))).get("desa-lajing", [])
    await _forget(sessions, [first.data.foreigner.foreigner_id])  # type: ignore[attr-defined]

    assert on_the_way is not None, "no guard: v2 put the person in the village head's view"
    assert (on_the_way.visible, on_the_way.record) == (False, None)
    assert after is None, "the guard stays once the live consumer has reached it"
    assert sent == []
