"""The overstay procedure and hotel reports end to end (issue 9): registry API -> outbox -> Kafka -> alerts and
the agencies' views, on one clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from tests.e2e.conftest import START, Platform
from tests.registry.conftest import arrival, passport_number

LAJING, SURABAYA, KAMAL = "35.26.05.2003", "35.78.01.1001", "35.26.01.1001"


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 5, 0, tzinfo=START.tzinfo)


async def _worker(platform: Platform, *, expires: date) -> str:
    person = await platform.write(
        "POST",
        "/v1/arrivals",
        arrival(
            arrived_on="2026-01-10", sponsor={"name": "PT Garam Madura", "kind": "employer"}, visa={"index": "E23"}
        ),
    )
    fid = str(person["foreigner_id"])
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/residence",
        {"address": "Jl. Raya Lajing 1", "village_code": LAJING, "since": "2026-01-11"},
    )
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/permits",
        {"number": f"ITAS{fid[:8].upper()}", "type": "itas", "purpose": "work", "issued_on": "2026-01-10",
         "expires_on": expires.isoformat()},
    )  # fmt: skip
    return fid


def _by_agency(alerts: list[Any], event_type: str) -> dict[str, Any]:
    return {alert.agency_id: alert for alert in alerts if alert.event_type == event_type}


async def test_an_overstay_runs_its_course_from_fee_to_deportation_on_every_channel(platform: Platform) -> None:
    expires = date(2026, 2, 10)
    fid = await _worker(platform, expires=expires)

    platform.clock.current = _noon(expires + timedelta(days=5))
    await platform.scheduler.run_once()
    await platform.settled()
    expired = _by_agency(await platform.alerts_about(fid), "permit.expired")
    police = (await platform.as_agency("polres-bangkalan", f"/v1/foreigners/{fid}")).json()

    assert {"kanim-pamekasan", "pemkab-bangkalan", "polres-bangkalan", "desa-lajing"} <= set(expired)
    for alert in expired.values():
        assert alert.notice["person"]["sponsor_name"] == "PT Garam Madura", alert.agency_id
    # Announced on the fifth day (the scheduler ran then): five days' fee, with the sponsor who answers for it.
    assert expired["kanim-pamekasan"].notice["details"] == {"days_overstayed": 5, "fee_due_idr": 5_000_000}
    assert (police["overstaying"], police["days_overstayed"], police["overstay_fee_due_idr"]) == (True, 5, 5_000_000)
    assert police["deportation_due"] is False

    platform.clock.current = _noon(expires + timedelta(days=61))
    await platform.scheduler.run_once()
    await platform.settled()
    exceeded = _by_agency(await platform.alerts_about(fid), "permit.overstay-exceeded")
    police = (await platform.as_agency("polres-bangkalan", f"/v1/foreigners/{fid}")).json()

    assert set(exceeded) == {"kanim-pamekasan", "polres-bangkalan", "kejari-bangkalan"}
    assert {alert.severity for alert in exceeded.values()} == {"critical"}
    assert all(alert.notice["person"]["sponsor_name"] == "PT Garam Madura" for alert in exceeded.values())
    assert (police["deportation_due"], police["overstay_fee_due_idr"]) == (True, None)

    day = (expires + timedelta(days=63)).isoformat()
    await platform.write(
        "POST", f"/v1/foreigners/{fid}/enforcement", {"action": "deportation-order", "on": day, "reference": "DEP-1"}
    )
    await platform.write(
        "POST", f"/v1/foreigners/{fid}/deportation", {"port": "Juanda", "deported_on": day, "reference": "DEP-1"}
    )
    await platform.settled()
    regency = (await platform.as_agency("pemkab-bangkalan", f"/v1/foreigners/{fid}")).json()
    present = (await platform.as_agency("pemkab-bangkalan", "/v1/foreigners", limit=500)).json()["items"]

    assert (regency["presence"], regency["overstaying"]) == ("deported", False)
    assert fid not in {item["foreigner_id"] for item in present}
    assert "pemkab-bangkalan" in _by_agency(await platform.alerts_about(fid), "foreigner.deported")
    # The person is gone: nothing about them is left open to act on (or to be escalated).
    still_open = {
        (alert.agency_id, alert.event_type)
        for alert in await platform.alerts_about(fid)
        if alert.status != "resolved" and alert.event_type != "foreigner.deported"
    }
    assert still_open == set()


async def test_a_guest_from_surabaya_in_a_bangkalan_hotel_is_seen_there_until_checking_out(platform: Platform) -> None:
    number = passport_number()
    person = await platform.write(
        "POST",
        "/v1/arrivals",
        arrival(
            arrived_on="2026-01-10", passport={"number": number, "issuing_country": "CHN", "expires_on": "2031-01-01"}
        ),
    )
    fid = str(person["foreigner_id"])
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/residence",
        {"address": "Jl. Tunjungan 5", "village_code": SURABAYA, "since": "2026-01-11"},
    )
    hotel = await platform.write(
        "POST",
        "/v1/accommodations",
        {"name": f"Hotel Ningrat {number}", "address": "Jl. Raya Kamal 1", "village_code": KAMAL},
    )
    reported = await platform.write(
        "POST",
        "/v1/stay-reports",
        {
            "accommodation_id": hotel["accommodation_id"],
            "guest": {"full_name": "Li Wei", "nationality": "CHN", "passport_number": number},
            "check_in": "2026-01-20",
            "planned_check_out": "2026-01-25",
        },
    )
    await platform.settled()
    police = await platform.as_agency("polres-bangkalan", f"/v1/foreigners/{fid}")
    alerted = _by_agency(await platform.alerts_about(fid), "foreigner.stay-reported")

    assert reported["matched"] is True
    assert police.status_code == 200, police.text
    assert police.json()["stay_provider"] == f"Hotel Ningrat {number}"
    assert "residence_address" not in police.json()
    assert set(alerted) == {"polres-bangkalan"}
    assert alerted["polres-bangkalan"].notice["person"]["stay_provider"] == f"Hotel Ningrat {number}"
    assert "residence_address" not in alerted["polres-bangkalan"].notice["person"]  # a guest: not where they live

    await platform.write(
        "POST", f"/v1/foreigners/{fid}/stays/{reported['stay_id']}/check-out", {"check_out": "2026-01-24"}
    )
    await platform.settled()

    assert (await platform.as_agency("polres-bangkalan", f"/v1/foreigners/{fid}")).status_code == 404


async def test_a_conversion_ends_the_old_permits_reminders_and_the_views_follow_the_new_one(platform: Platform) -> None:
    expires = date(2026, 2, 20)
    fid = await _worker(platform, expires=expires)
    record = (await platform.registry.get(f"/v1/foreigners/{fid}")).json()["foreigner"]
    old_permit = record["permit"]["permit_id"]
    platform.clock.current = _noon(expires - timedelta(days=7))
    await platform.scheduler.run_once()
    await platform.settled()
    reminded = _by_agency(await platform.alerts_about(fid), "permit.expiring")
    assert "pemkab-bangkalan" in reminded

    converted = await platform.registry.post(
        f"/v1/foreigners/{fid}/permits/{old_permit}/conversion",
        json={"number": f"ITAP{fid[:8].upper()}", "type": "itap", "purpose": "work",
              "issued_on": (expires - timedelta(days=7)).isoformat(), "expires_on": "2031-02-13"},
    )  # fmt: skip
    assert converted.status_code == 201, converted.text
    for days in (1, 0, -1, -3):
        platform.clock.current = _noon(expires - timedelta(days=days))
        await platform.scheduler.run_once()
    await platform.settled()
    alerts = await platform.alerts_about(fid)
    regency = (await platform.as_agency("pemkab-bangkalan", f"/v1/foreigners/{fid}")).json()

    assert {alert.status for alert in alerts if alert.event_type == "permit.expiring"} == {"resolved"}
    assert not [alert for alert in alerts if alert.event_type == "permit.expired"]
    assert (regency["permit_type"], regency["permit_expires_on"], regency["overstaying"]) == (
        "itap",
        "2031-02-13",
        False,
    )
