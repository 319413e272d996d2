"""Presence and the stay permit through the whole platform: registry API → outbox → Kafka → alerts and
sharing. A person who left is not overstaying, is not in the agencies' default views, and no agency is
alerted of an overstay on a permit that ended when they left (UU 6/2011: a visit permit ends on exit)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from tests.e2e.conftest import START, Platform
from tests.registry.conftest import arrival

LAJING = "35.26.05.2003"


async def _visitor(platform: Platform, *, arrived: date, permit_until: date) -> dict[str, Any]:
    person = await platform.write(
        "POST",
        "/v1/arrivals",
        arrival(arrived_on=arrived.isoformat(), occupation="tourist", sponsor=None, visa={"index": "B1"}),
    )
    fid = person["foreigner_id"]
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/residence",
        {"address": "Jl. Raya Lajing 1", "village_code": LAJING, "since": arrived.isoformat()},
    )
    await platform.write(
        "POST",
        f"/v1/foreigners/{fid}/permits",
        {"number": f"ITK{fid[:8].upper()}", "type": "visit", "issued_on": arrived.isoformat(),
         "expires_on": permit_until.isoformat()},
    )  # fmt: skip
    return person


async def test_a_visitor_who_left_on_time_is_neither_overstaying_nor_listed_as_present(platform: Platform) -> None:
    # The example: a visit permit valid to 1 Mar, its holder left on 20 Feb, the views read on 1 Jun.
    person = await _visitor(platform, arrived=date(2026, 2, 1), permit_until=date(2026, 3, 1))
    fid = person["foreigner_id"]
    await platform.write("POST", f"/v1/foreigners/{fid}/departure", {"port": "Juanda", "departed_on": "2026-02-20"})
    platform.clock.current = datetime(2026, 6, 1, 5, 0, tzinfo=START.tzinfo)
    await platform.scheduler.run_once()
    await platform.settled()

    for agency in ("pemkab-bangkalan", "polres-bangkalan"):
        present = (await platform.as_agency(agency, "/v1/foreigners", limit=500)).json()["items"]
        overstaying = (await platform.as_agency(agency, "/v1/foreigners", overstaying="true", presence="any")).json()
        record = (await platform.as_agency(agency, f"/v1/foreigners/{fid}")).json()
        statistics = (await platform.as_agency(agency, "/v1/statistics")).json()

        assert fid not in {item["foreigner_id"] for item in present}, agency
        assert fid not in {item["foreigner_id"] for item in overstaying["items"]}, agency
        assert (record["presence"], record["permit_status"], record["overstaying"]) == ("departed", "ended", False)
        assert record["days_to_expiry"] is None
        assert statistics["total"] == len(present), agency
    village = (await platform.as_agency("desa-lajing", "/v1/foreigners", presence="departed")).json()["items"]
    assert [(item["foreigner_id"], item["presence"]) for item in village] == [(fid, "departed")]
    assert [
        alert.event_type for alert in await platform.alerts_about(fid) if alert.event_type.startswith("permit.")
    ] == []


async def test_a_visitor_who_returns_after_months_is_not_announced_as_overstaying(platform: Platform) -> None:
    person = await _visitor(platform, arrived=date(2026, 2, 1), permit_until=date(2026, 3, 2))
    fid = person["foreigner_id"]
    await platform.write("POST", f"/v1/foreigners/{fid}/departure", {"port": "Juanda", "departed_on": "2026-02-20"})
    back_on = date(2026, 3, 2) + timedelta(days=185)
    await platform.write(
        "POST", "/v1/arrivals", arrival(passport=person["passport"], arrived_on=back_on.isoformat(), sponsor=None)
    )

    platform.clock.current = datetime(back_on.year, back_on.month, back_on.day, 5, 0, tzinfo=START.tzinfo)
    await platform.scheduler.run_once()  # the shared test database may hold others it owes events to
    await platform.settled()
    history = (await platform.registry.get(f"/v1/foreigners/{fid}")).json()["history"]

    assert not [entry for entry in history if entry["event_type"].startswith("permit.")][1:]  # only the issue
    assert [
        alert.event_type for alert in await platform.alerts_about(fid) if alert.event_type.startswith("permit.")
    ] == []
    record = (await platform.as_agency("pemkab-bangkalan", f"/v1/foreigners/{fid}")).json()
    assert (record["presence"], record["permit_status"], record["overstaying"], record["days_to_expiry"]) == (
        "present",
        None,
        False,
        None,
    )
