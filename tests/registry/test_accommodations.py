"""Accommodation reports (issue 9, defect 6): a register of providers, stays against them, guests the registry
does not know kept until linked, and an overdue stay reported once."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import update

from tests.registry.conftest import START, Registry, noon_wib, passport_number, published, scheduler
from timpora.common.events.payloads import StayReported
from timpora.registry.housekeeping import purge_stay_reports
from timpora.registry.models import unmatched_stays

BANGKALAN_HOTEL_VILLAGE = "35.26.01.1001"  # Kecamatan Kamal
SURABAYA = "35.78.01.1001"


async def _hotel(registry: Registry, name: str = "Hotel Ningrat") -> str:
    created = await registry.client.post(
        "/v1/accommodations",
        json={
            "name": f"{name} {passport_number()}",
            "address": "Jl. Raya Kamal 1",
            "village_code": BANGKALAN_HOTEL_VILLAGE,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["village_name"]
    return str(created.json()["accommodation_id"])


async def test_a_surabaya_resident_in_a_bangkalan_hotel_belongs_to_both_places(registry: Registry) -> None:
    hotel = await _hotel(registry)
    person = await registry.new_foreigner()
    fid = person["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/residence",
        json={"address": "Jl. Tunjungan 5", "village_code": SURABAYA, "since": "2026-11-02"},
    )

    stay = await registry.client.post(
        f"/v1/foreigners/{fid}/stays",
        json={"accommodation_id": hotel, "check_in": "2026-11-05", "planned_check_out": "2026-11-08"},
    )

    assert stay.status_code == 201, stay.text
    reported = stay.json()["foreigner"]["stay"]
    assert reported["accommodation_id"] == hotel
    assert reported["village_code"] == BANGKALAN_HOTEL_VILLAGE
    assert reported["provider"].startswith("Hotel Ningrat")
    name, payload = (await published(registry, fid))[-1]
    assert name == "foreigner.stay-reported"
    event = StayReported.model_validate(payload)
    assert event.jurisdiction == SURABAYA  # where they live
    assert event.places == (SURABAYA, BANGKALAN_HOTEL_VILLAGE)  # and where they are


async def test_a_guest_the_registry_does_not_know_is_kept_until_immigration_links_them(registry: Registry) -> None:
    hotel = await _hotel(registry)
    number = passport_number()
    report = {
        "accommodation_id": hotel,
        "guest": {"full_name": "Kim Min-jun", "nationality": "KOR", "passport_number": number},
        "check_in": "2026-11-05",
    }

    kept = await registry.client.post("/v1/stay-reports", json=report)
    assert kept.status_code == 202, kept.text
    assert kept.json()["matched"] is False
    report_id = kept.json()["report_id"]
    waiting = (await registry.client.get("/v1/stay-reports")).json()
    assert report_id in [item["report_id"] for item in waiting]

    person = await registry.new_foreigner(
        nationality="KOR",
        passport={"number": passport_number(), "issuing_country": "KOR", "expires_on": "2031-01-01"},
    )
    linked = await registry.client.post(
        f"/v1/stay-reports/{report_id}/link", json={"foreigner_id": person["foreigner_id"]}
    )
    again = await registry.client.post(
        f"/v1/stay-reports/{report_id}/link", json={"foreigner_id": person["foreigner_id"]}
    )

    assert linked.status_code == 200, linked.text
    assert linked.json()["foreigner"]["stay"]["accommodation_id"] == hotel
    assert again.status_code == 409
    assert report_id not in [item["report_id"] for item in (await registry.client.get("/v1/stay-reports")).json()]
    assert [name for name, _ in await published(registry, person["foreigner_id"])][-1] == "foreigner.stay-reported"


async def test_a_guest_the_registry_knows_is_matched_by_any_of_their_passports(registry: Registry) -> None:
    hotel = await _hotel(registry)
    old = passport_number()
    person = await registry.new_foreigner(
        nationality="AUS", passport={"number": old, "issuing_country": "AUS", "expires_on": "2031-01-01"}
    )
    fid = person["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/passport",
        json={
            "passport": {"number": passport_number(), "issuing_country": "AUS", "expires_on": "2036-01-01"},
            "renewed_on": "2026-11-03",
        },
    )

    matched = await registry.client.post(
        "/v1/stay-reports",
        json={
            "accommodation_id": hotel,
            "guest": {"full_name": "Jack Smith", "nationality": "AUS", "passport_number": old.lower()},
            "check_in": "2026-11-05",
        },
    )

    assert matched.status_code == 201, matched.text
    assert matched.json()["matched"] is True
    assert matched.json()["foreigner_id"] == fid
    assert "foreigner" not in matched.json()  # ids only: a report is no passport lookup


async def test_an_overdue_stay_is_reported_once(registry: Registry) -> None:
    hotel = await _hotel(registry)
    planned, open_ended = await registry.new_foreigner(), await registry.new_foreigner()
    check_in = START.date()
    await registry.client.post(
        f"/v1/foreigners/{planned['foreigner_id']}/stays",
        json={
            "accommodation_id": hotel,
            "check_in": check_in.isoformat(),
            "planned_check_out": (check_in + timedelta(days=3)).isoformat(),
        },
    )
    await registry.client.post(
        f"/v1/foreigners/{open_ended['foreigner_id']}/stays",
        json={"accommodation_id": hotel, "check_in": check_in.isoformat()},
    )
    expiry = scheduler(registry)

    def overdue(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
        return [payload["overdue_since"] for name, payload in events if name == "foreigner.stay-overdue"]

    for day in (3, 4, 5, 30, 31, 32):
        registry.clock.current = noon_wib(check_in + timedelta(days=day))
        await expiry.run_once()

    assert overdue(await published(registry, planned["foreigner_id"])) == [(check_in + timedelta(days=4)).isoformat()]
    assert overdue(await published(registry, open_ended["foreigner_id"])) == [
        (check_in + timedelta(days=31)).isoformat()
    ]


async def test_a_bad_stay_report_is_refused_by_field_and_writes_nothing(registry: Registry) -> None:
    hotel = await _hotel(registry)
    person = await registry.new_foreigner()
    fid = person["foreigner_id"]
    before = await registry.outbox_rows(fid)

    both = await registry.client.post(
        f"/v1/foreigners/{fid}/stays",
        json={
            "accommodation_id": hotel,
            "provider": "X",
            "village_code": BANGKALAN_HOTEL_VILLAGE,
            "check_in": "2026-11-05",
        },
    )
    unknown = await registry.client.post(
        f"/v1/foreigners/{fid}/stays",
        json={"accommodation_id": "00000000-0000-0000-0000-000000000001", "check_in": "2026-11-05"},
    )
    duplicate = await registry.client.post(
        "/v1/accommodations", json={"name": "Dup", "address": "A", "village_code": BANGKALAN_HOTEL_VILLAGE}
    )
    duplicate_again = await registry.client.post(
        "/v1/accommodations", json={"name": "DUP", "address": "B", "village_code": BANGKALAN_HOTEL_VILLAGE}
    )
    bad_village = await registry.client.post(
        "/v1/accommodations", json={"name": "Nowhere Inn", "address": "A", "village_code": "99.99.99.9999"}
    )

    assert both.status_code == 422
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "accommodation_id"]
    assert duplicate.status_code in {201, 409}
    assert duplicate_again.status_code == 409
    assert bad_village.status_code == 422
    assert "99.99.99.9999" not in bad_village.text
    assert await registry.outbox_rows(fid) == before


async def test_a_departure_ends_the_hotel_stay_and_a_return_brings_no_stay_back(registry: Registry) -> None:
    hotel = await _hotel(registry)
    person = await registry.new_foreigner()
    fid = person["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/residence",
        json={"address": "Jl. Tunjungan 5", "village_code": SURABAYA, "since": "2026-11-02"},
    )
    await registry.client.post(
        f"/v1/foreigners/{fid}/stays",
        json={"accommodation_id": hotel, "check_in": "2026-11-05", "planned_check_out": "2026-11-08"},
    )

    left = await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": "Juanda", "departed_on": "2026-11-07"}
    )
    back = await registry.arrive(passport=person["passport"], arrived_on="2027-01-10")
    registry.clock.current = noon_wib(date(2027, 1, 20))
    await scheduler(registry).run_once()

    assert left.json()["stay"]["check_out"] == "2026-11-07"
    assert back.json()["stay"]["check_out"] == "2026-11-07"
    payload = StayReported.model_validate((await published(registry, fid))[2][1])
    assert payload.places == (SURABAYA, BANGKALAN_HOTEL_VILLAGE)
    names = [name for name, _ in await published(registry, fid)]
    assert "foreigner.stay-overdue" not in names


async def test_stays_not_yet_due_in_their_zone_do_not_hold_the_overdue_pass(registry: Registry) -> None:
    hotel = await _hotel(registry)
    today = date(2026, 11, 20)
    for _ in range(3):
        fid = (await registry.new_foreigner())["foreigner_id"]
        await registry.client.post(
            f"/v1/foreigners/{fid}/stays",
            json={"accommodation_id": hotel, "check_in": "2026-11-05", "planned_check_out": today.isoformat()},
        )
    # 10:00 WIB on the planned last day: due tomorrow, yet candidates by the widest zone's date.
    registry.clock.current = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    expiry = scheduler(registry, batch_size=2)

    await asyncio.wait_for(expiry.run_once(), timeout=60)


async def test_old_stay_reports_are_deleted(registry: Registry) -> None:
    hotel = await _hotel(registry)
    kept = await registry.client.post(
        "/v1/stay-reports",
        json={
            "accommodation_id": hotel,
            "guest": {"full_name": "Nobody Known", "nationality": "KOR", "passport_number": passport_number()},
            "check_in": "2026-11-05",
        },
    )
    report_id = kept.json()["report_id"]
    async with registry.sessions() as session, session.begin():
        await session.execute(
            update(unmatched_stays)
            .where(unmatched_stays.c.id == report_id)
            .values(reported_at=datetime(2026, 1, 1, tzinfo=UTC))
        )

    assert await purge_stay_reports(registry.runtime.engine, retention_days=90) >= 1
    assert report_id not in [item["report_id"] for item in (await registry.client.get("/v1/stay-reports")).json()]
