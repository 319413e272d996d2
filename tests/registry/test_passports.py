"""Passport renewals (issue 9, defect 5): a new passport is the same person, and the old number stays findable."""

from __future__ import annotations

from typing import Any

from tests.registry.conftest import Registry, passport_number


def _passport(number: str, expires_on: str = "2036-01-01") -> dict[str, Any]:
    return {"number": number, "issuing_country": "AUS", "expires_on": expires_on}


async def _left(registry: Registry, old: str) -> str:
    first = await registry.new_foreigner(nationality="AUS", passport=_passport(old, "2027-03-01"))
    fid = str(first["foreigner_id"])
    departed = await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Juanda International Airport", "departed_on": "2026-11-10"}
    )
    assert departed.status_code == 200, departed.text
    return fid


async def test_a_renewal_recorded_here_keeps_the_person_and_the_next_arrival_on_it_matches(registry: Registry) -> None:
    old, new = passport_number(), passport_number()
    fid = await _left(registry, old)

    renewed = await registry.client.post(
        f"/v1/foreigners/{fid}/passport", json={"passport": _passport(new), "renewed_on": "2026-11-20"}
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["passport"]["number"] == new
    assert [p["number"] for p in renewed.json()["previous_passports"]] == [old]

    again = await registry.arrive(nationality="AUS", passport=_passport(new), arrived_on="2026-12-01")
    assert again.status_code == 200, again.text
    assert again.json()["foreigner_id"] == fid
    assert await registry.foreigner_count() >= 1
    # The old number still finds the person.
    found = await registry.client.get("/v1/foreigners", params={"passport_number": old.lower()})
    assert [item["foreigner_id"] for item in found.json()["items"]] == [fid]
    record = (await registry.client.get(f"/v1/foreigners/{fid}")).json()
    assert [entry["event_type"] for entry in record["history"]] == [
        "foreigner.arrived",
        "foreigner.departed",
        "foreigner.updated",
        "foreigner.arrived",
    ]


async def test_an_arrival_on_a_passport_renewed_abroad_names_the_old_one_and_stays_one_person(
    registry: Registry,
) -> None:
    old, new = passport_number(), passport_number()
    fid = await _left(registry, old)
    before = await registry.foreigner_count()

    again = await registry.arrive(
        nationality="AUS", passport=_passport(new), previous_passport_number=old, arrived_on="2026-12-01"
    )

    assert again.status_code == 200, again.text
    assert again.json()["foreigner_id"] == fid
    assert again.json()["passport"]["number"] == new
    assert [p["number"] for p in again.json()["previous_passports"]] == [old]
    assert again.json()["previous_passports"][0]["expires_on"] == "2027-03-01"
    assert await registry.foreigner_count() == before


async def test_an_arrival_on_a_replaced_passport_is_refused_rather_than_creating_a_second_person(
    registry: Registry,
) -> None:
    old, new = passport_number(), passport_number()
    fid = await _left(registry, old)
    await registry.client.post(
        f"/v1/foreigners/{fid}/passport", json={"passport": _passport(new), "renewed_on": "2026-11-20"}
    )
    before = await registry.foreigner_count()

    refused = await registry.arrive(nationality="AUS", passport=_passport(old, "2027-03-01"), arrived_on="2026-12-01")

    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "passport", "number"]
    assert old not in refused.text
    assert await registry.foreigner_count() == before


async def test_a_renewal_to_a_number_someone_holds_is_refused_and_writes_nothing(registry: Registry) -> None:
    mine, theirs = passport_number(), passport_number()
    fid = await _left(registry, mine)
    await registry.new_foreigner(nationality="AUS", passport=_passport(theirs))
    outbox_before = await registry.outbox_rows(fid)

    taken = await registry.client.post(
        f"/v1/foreigners/{fid}/passport", json={"passport": _passport(theirs), "renewed_on": "2026-11-20"}
    )
    same = await registry.client.post(
        f"/v1/foreigners/{fid}/passport", json={"passport": _passport(mine), "renewed_on": "2026-11-20"}
    )
    unknown_previous = await registry.arrive(
        nationality="AUS", passport=_passport(passport_number()), previous_passport_number=passport_number()
    )
    someone_else = await registry.arrive(
        nationality="AUS",
        passport=_passport(passport_number()),
        previous_passport_number=mine,
        date_of_birth="1971-01-01",
        arrived_on="2026-12-01",
    )

    assert taken.status_code == 409, taken.text
    assert same.status_code == 422, same.text
    assert unknown_previous.status_code == 422, unknown_previous.text
    assert unknown_previous.json()["detail"][0]["loc"] == ["body", "previous_passport_number"]
    assert someone_else.status_code == 422, someone_else.text
    assert someone_else.json()["detail"][0]["loc"] == ["body", "date_of_birth"]
    assert await registry.outbox_rows(fid) == outbox_before


async def test_an_arrival_naming_two_peoples_passports_is_refused_and_changes_neither(registry: Registry) -> None:
    mine, theirs = passport_number(), passport_number()
    fid = await _left(registry, mine)
    other = await registry.new_foreigner(nationality="AUS", passport=_passport(theirs), date_of_birth="1971-01-01")
    await registry.client.post(
        f"/v1/foreigners/{other['foreigner_id']}/departure",
        json={"port": "Juanda International Airport", "departed_on": "2026-11-10"},
    )
    before = (await registry.client.get(f"/v1/foreigners/{other['foreigner_id']}")).json()["foreigner"]

    mixed = await registry.arrive(
        nationality="AUS", passport=_passport(theirs), previous_passport_number=mine, arrived_on="2026-12-01"
    )

    assert mixed.status_code == 409, mixed.text
    assert mixed.json()["detail"][0]["loc"] == ["body", "previous_passport_number"]
    after = (await registry.client.get(f"/v1/foreigners/{other['foreigner_id']}")).json()["foreigner"]
    assert after == before
    assert fid
