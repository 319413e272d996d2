"""The registry API end to end through PostgreSQL: every kind of change, its version, its history and
the event it leaves in the outbox."""

from __future__ import annotations

import json
from datetime import date
from uuid import UUID, uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.registry.conftest import Registry, arrival, passport_number, permit
from timpora.common.events import KafkaRecord, decode
from timpora.common.events.payloads import ForeignerSnapshot, Sponsor
from timpora.registry import repository as repo
from timpora.registry.domain import changes
from timpora.registry.domain.commands import ArrivalIn
from timpora.registry.models import history, outbox, permits


async def _events(registry: Registry, foreigner_id: str) -> list[str]:
    async with registry.sessions() as session:
        rows = await session.execute(
            select(outbox.c.headers, outbox.c.payload, outbox.c.partition_key)
            .where(outbox.c.partition_key == foreigner_id)
            .order_by(outbox.c.id)
        )
    names = []
    for headers, payload, key in rows:
        event = decode(
            KafkaRecord(
                key=key.encode(), value=payload.encode(), headers=tuple((k, v.encode()) for k, v in headers.items())
            )
        )
        assert event.subject == foreigner_id
        names.append(event.spec.name)
    return names


async def test_a_life_in_the_registry_versions_every_change_and_reports_each_as_an_event(registry: Registry) -> None:
    created = await registry.new_foreigner()
    fid = created["foreigner_id"]
    assert created["version"] == 1
    assert created["presence"] == "present"
    assert created["sponsor"]["name"] == "PT Garam Madura"

    issued = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit(expires_on="2027-05-01"))
    assert issued.status_code == 201, issued.text
    permit_id = issued.json()["permit"]["permit_id"]
    residence = await registry.client.post(
        f"/v1/foreigners/{fid}/residence",
        json={"address": "Jl. Raya Arosbaya 1", "village_code": "35.26.05.2003", "since": "2026-11-03"},
    )
    assert residence.json()["residence"]["village_code"] == "35.26.05.2003"
    stay = await registry.client.post(
        f"/v1/foreigners/{fid}/stays",
        json={"provider": "Hotel Ningrat", "village_code": "35.26.01.1001", "check_in": "2026-11-05"},
    )
    assert stay.status_code == 201, stay.text
    checked_out = await registry.client.post(
        f"/v1/foreigners/{fid}/stays/{stay.json()['stay_id']}/check-out", json={"check_out": "2026-11-07"}
    )
    assert checked_out.json()["stay"]["check_out"] == "2026-11-07"
    extended = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/extension", json={"expires_on": "2028-05-01"}
    )
    assert extended.json()["permit"]["status"] == "extended"
    updated = await registry.client.patch(f"/v1/foreigners/{fid}", json={"occupation": "chef"})
    assert updated.json()["occupation"] == "chef"
    departed = await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Juanda International Airport", "departed_on": "2026-12-24"}
    )
    assert departed.status_code == 200, departed.text
    assert departed.headers["ETag"] == '"8"'

    record = await registry.client.get(f"/v1/foreigners/{fid}")
    body = record.json()
    assert body["foreigner"]["version"] == 8
    assert body["foreigner"]["presence"] == "departed"
    assert body["foreigner"]["residence"]["village_code"] == "35.26.05.2003"
    assert [entry["version"] for entry in body["history"]] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert {entry["actor"] for entry in body["history"]} == {body["history"][0]["actor"]}
    assert await _events(registry, fid) == [
        "foreigner.arrived",
        "permit.issued",
        "foreigner.residence-reported",
        "foreigner.stay-reported",
        "foreigner.stay-reported",
        "permit.extended",
        "foreigner.updated",
        "foreigner.departed",
    ]


_SPONSORS = [None, {"name": "PT Garam Madura", "kind": "employer"}, {"name": "pt garam MADURA", "kind": "Employer"},
             {"name": "Keluarga Wijaya", "kind": "family"}]  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(st.characters(categories=["L", "M", "Zs", "Pd"]), min_size=1, max_size=30).filter(str.strip),
    sex=st.sampled_from(["M", "F", "X"]),
    born=st.dates(min_value=date(1930, 1, 1), max_value=date(2010, 12, 31)),
    nationality=st.sampled_from(["CHN", "deu", "AUS", "MYS"]),
    issued_by=st.sampled_from(["CHN", "GBR", "aus"]),  # a passport of another country than the nationality, too
    occupation=st.none() | st.sampled_from(["engineer", "Teacher", "guru bahasa"]),
    sponsor=st.sampled_from(_SPONSORS),
    visa=st.none() | st.sampled_from([{"index": "c3", "number": "V123"}, {"index": "E23", "number": "W9"}]),
)
async def test_a_new_persons_arrival_answers_and_publishes_the_person_exactly_as_recorded(  # noqa: PLR0917 - hypothesis fills each
    registry: Registry,
    name: str,
    sex: str,
    born: date,
    nationality: str,
    issued_by: str,
    occupation: str | None,
    sponsor: dict[str, str] | None,
    visa: dict[str, str] | None,
) -> None:
    """A new person's snapshot is built from the arrival, not read back (timpora.registry.domain.changes): what the
    arrival answers and publishes is what the registry then reads of them, for arrivals of every kind; a sponsor
    typed otherwise than first recorded is the one recorded."""
    body = arrival(full_name=name, sex=sex, date_of_birth=born.isoformat(), nationality=nationality,
                   occupation=occupation, sponsor=sponsor, visa=visa)  # fmt: skip
    body["passport"]["issuing_country"] = issued_by
    answer = await registry.arrive(**body)
    assert answer.status_code == 201, answer.text
    answered = answer.json()

    async with registry.sessions() as session:
        recorded = await repo.load_snapshot(session, UUID(answered["foreigner_id"]))
        payload = (
            await session.execute(select(outbox.c.payload).where(outbox.c.partition_key == answered["foreigner_id"]))
        ).scalar_one()

        data = (
            await session.execute(select(history.c.data).where(history.c.foreigner_id == recorded.foreigner_id))
        ).scalar_one()

    assert answered == recorded.model_dump(mode="json")
    assert json.loads(payload)["foreigner"] == recorded.model_dump(mode="json")
    assert json.loads(payload)["jurisdiction"] is None  # no residence or stay yet
    assert data == json.loads(payload)  # the history keeps what was published


def test_a_new_person_built_from_an_arrival_is_given_every_field_of_the_snapshot() -> None:
    # Not left to a default: a field added to the snapshot must be given to a new person too (changes.new_person).
    command = ArrivalIn.model_validate(arrival(visa={"index": "C3", "number": "V1"}))
    sponsor = Sponsor(sponsor_id=uuid4(), name="PT Garam Madura", kind="employer")

    built = changes.new_person(uuid4(), command, sponsor)

    assert built.model_fields_set == set(ForeignerSnapshot.model_fields)


async def test_an_arrival_names_its_sponsor_as_first_recorded_however_it_is_typed(registry: Registry) -> None:
    name = f"PT Garam Madura {uuid4().hex[:6]}"
    first = await registry.new_foreigner(sponsor={"name": name, "kind": "employer"})
    second = await registry.new_foreigner(sponsor={"name": name.swapcase(), "kind": "EMPLOYER"})

    async with registry.sessions() as session:
        payload = (
            await session.execute(select(outbox.c.payload).where(outbox.c.partition_key == second["foreigner_id"]))
        ).scalar_one()
    assert second["sponsor"] == first["sponsor"] == {**first["sponsor"], "name": name, "kind": "employer"}
    assert json.loads(payload)["foreigner"]["sponsor"] == first["sponsor"]


async def test_an_arrival_with_a_known_passport_matches_the_person_who_left(registry: Registry) -> None:
    number = passport_number()
    first = await registry.new_foreigner(
        passport={"number": number, "issuing_country": "AUS", "expires_on": "2031-01-01"}, nationality="AUS"
    )
    fid = first["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Tanjung Perak", "departed_on": "2026-11-10"}
    )

    again = await registry.arrive(
        nationality="aus",
        passport={"number": number.lower(), "issuing_country": "AUS", "expires_on": "2031-01-01"},
        arrived_on="2026-12-01",
    )

    assert again.status_code == 200, again.text
    assert again.json()["foreigner_id"] == fid
    assert again.json()["version"] == 3
    assert again.json()["presence"] == "present"
    assert await _events(registry, fid) == ["foreigner.arrived", "foreigner.departed", "foreigner.arrived"]


async def test_the_event_carries_the_snapshot_and_the_jurisdiction_consumers_need(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/residence",
        json={"address": "Desa Lajing", "village_code": "35.26.05.2003", "since": "2026-11-02"},
    )
    async with registry.sessions() as session:
        headers, payload = (
            await session.execute(
                select(outbox.c.headers, outbox.c.payload)
                .where(outbox.c.partition_key == fid)
                .order_by(outbox.c.id.desc())
            )
        ).first()  # type: ignore[misc]

    data = json.loads(payload)
    assert headers["ce_type"] == "id.timpora.foreigner.residence-reported.v1"
    assert headers["ce_subject"] == fid
    assert headers["ce_source"] == "/timpora/registry"
    assert data["jurisdiction"] == "35.26.05.2003"
    assert data["foreigner"]["version"] == 2
    assert data["foreigner"]["passport"]["issuing_country"] == "CHN"
    assert data["previous_village_code"] is None


async def test_a_patch_that_changes_nothing_writes_nothing(registry: Registry) -> None:
    fid = (await registry.new_foreigner(occupation="teacher"))["foreigner_id"]

    same = await registry.client.patch(f"/v1/foreigners/{fid}", json={"occupation": "teacher"})

    assert same.status_code == 200
    assert same.json()["version"] == 1
    assert await registry.outbox_rows(fid) == 1


async def test_a_revoked_permit_is_reported_and_cannot_be_extended(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    issued = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit())
    permit_id = issued.json()["permit"]["permit_id"]

    revoked = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/revocation", json={"reason": "sponsor withdrew"}
    )
    extension = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/extension", json={"expires_on": "2029-01-01"}
    )

    assert revoked.json()["permit"]["status"] == "revoked"
    assert extension.status_code == 409
    assert extension.json()["detail"][0]["loc"] == ["path", "permit_id"]
    assert await _events(registry, fid) == ["foreigner.arrived", "permit.issued", "permit.revoked"]


async def test_staff_must_authenticate(registry: Registry) -> None:
    anonymous = await registry.client.post("/v1/arrivals", json=arrival(), headers={"Authorization": ""})
    forged = await registry.client.get("/v1/foreigners", headers={"Authorization": "Bearer tmp_not-a-token"})

    assert anonymous.status_code == 401
    assert forged.status_code == 401
    assert forged.headers["WWW-Authenticate"] == "Bearer"


async def test_a_report_of_a_past_stay_does_not_move_someone_out_of_their_current_hotel(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    here = await registry.client.post(
        f"/v1/foreigners/{fid}/stays",
        json={"provider": "Hotel Ningrat", "village_code": "35.26.05.2003", "check_in": "2026-11-05"},
    )
    past = await registry.client.post(
        f"/v1/foreigners/{fid}/stays",
        json={
            "provider": "Losmen Lama",
            "village_code": "35.27.01.2001",
            "check_in": "2026-11-01",
            "check_out": "2026-11-03",
        },
    )

    assert here.json()["foreigner"]["stay"]["provider"] == "Hotel Ningrat"
    assert past.status_code == 201
    assert past.json()["foreigner"]["stay"]["provider"] == "Hotel Ningrat"
    found = await registry.client.get(
        "/v1/foreigners",
        params={"region": "35.26.05.2003", "passport_number": past.json()["foreigner"]["passport"]["number"]},
    )
    assert [f["foreigner_id"] for f in found.json()["items"]] == [fid]


async def test_a_departure_ends_a_visit_permit_in_the_same_change(registry: Registry) -> None:
    fid = (await registry.new_foreigner(occupation="tourist", sponsor=None))["foreigner_id"]
    issued = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(type="visit", issued_on="2026-11-01", expires_on="2026-12-01")
    )
    assert issued.status_code == 201, issued.text

    departed = await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Juanda International Airport", "departed_on": "2026-11-20"}
    )

    assert departed.status_code == 200, departed.text
    ended = departed.json()["permit"]
    assert (ended["status"], ended["end_reason"], ended["ended_on"]) == ("ended", "exit", "2026-11-20")
    assert await _events(registry, fid) == ["foreigner.arrived", "permit.issued", "foreigner.departed"]


async def test_an_itas_leaves_with_its_holder_and_stays_theirs_when_they_return_in_time(registry: Registry) -> None:
    # An ITAS or ITAP with a re-entry permit comes back with its holder; only a return settles it.
    fid = (await registry.new_foreigner())["foreigner_id"]
    passport = (await registry.client.get(f"/v1/foreigners/{fid}")).json()["foreigner"]["passport"]
    issued = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit(expires_on="2027-11-01"))
    erp = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{issued.json()['permit']['permit_id']}/reentry-permit",
        json={"number": "ERP-1", "issued_on": "2026-11-02", "expires_on": "2027-11-01"},
    )
    assert erp.status_code == 200, erp.text
    departed = await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Juanda International Airport", "departed_on": "2026-12-01"}
    )
    assert departed.json()["permit"]["status"] == "active"

    back = await registry.arrive(passport=passport, arrived_on="2027-01-10")

    assert back.status_code == 200, back.text
    assert back.json()["permit"]["permit_id"] == issued.json()["permit"]["permit_id"]
    assert back.json()["permit"]["status"] == "active"


async def test_a_permit_that_expired_abroad_is_not_the_returning_persons(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    passport = (await registry.client.get(f"/v1/foreigners/{fid}")).json()["foreigner"]["passport"]
    issued = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit(expires_on="2027-01-01"))
    await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{issued.json()['permit']['permit_id']}/reentry-permit",
        json={"number": "ERP-2", "issued_on": "2026-11-02", "expires_on": "2027-01-01"},
    )
    await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Juanda International Airport", "departed_on": "2026-12-01"}
    )

    back = await registry.arrive(passport=passport, arrived_on="2027-06-01")

    assert back.status_code == 200, back.text
    assert back.json()["permit"] is None
    async with registry.sessions() as session:
        old = (await session.execute(select(permits).where(permits.c.id == issued.json()["permit"]["permit_id"]))).one()
    assert (old.status, old.end_reason, old.ended_on.isoformat()) == ("ended", "lapsed-abroad", "2027-01-01")


async def test_a_departure_after_the_permit_expired_keeps_the_overstay_on_record(registry: Registry) -> None:
    # Nobody ran the scheduler between the expiry and the departure: the overstay happened all the same,
    # and leaving must not turn it into a permit that simply "ended with the exit".
    fid = (await registry.new_foreigner(sponsor=None))["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(type="visit", issued_on="2026-11-01", expires_on="2026-12-01")
    )

    departed = await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Juanda International Airport", "departed_on": "2026-12-10"}
    )

    assert departed.status_code == 200, departed.text
    assert (departed.json()["permit"]["status"], departed.json()["permit"]["end_reason"]) == ("expired", None)


async def test_a_permit_that_ended_cannot_be_extended_or_revoked(registry: Registry) -> None:
    fid = (await registry.new_foreigner(sponsor=None))["foreigner_id"]
    issued = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(type="visit", issued_on="2026-11-01", expires_on="2026-12-01")
    )
    permit_id = issued.json()["permit"]["permit_id"]
    passport = (await registry.client.get(f"/v1/foreigners/{fid}")).json()["foreigner"]["passport"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Juanda International Airport", "departed_on": "2026-11-20"}
    )
    await registry.arrive(passport=passport, arrived_on="2026-11-25", sponsor=None)

    extended = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/extension", json={"expires_on": "2027-01-01"}
    )
    revoked = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/revocation", json={"reason": "fraud"}
    )

    assert extended.status_code == 409, extended.text
    assert revoked.status_code == 409, revoked.text
    assert extended.json()["detail"][0]["loc"] == ["path", "permit_id"]
