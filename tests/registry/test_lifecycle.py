"""The permit lifecycle beyond issue, extend and revoke (issue 9): conversions, re-entry permits (ERP) and exit
permits only (EPO), and what the expiry scheduler does with each."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from tests.registry.conftest import START, Registry, noon_wib, permit, published, scheduler
from timpora.registry.models import permits

JUANDA = "Juanda International Airport"


async def _holder(registry: Registry, **overrides: Any) -> tuple[str, str]:
    fid = str((await registry.new_foreigner())["foreigner_id"])
    issued = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=permit(**overrides))
    assert issued.status_code == 201, issued.text
    return fid, str(issued.json()["permit"]["permit_id"])


async def test_a_conversion_ends_the_old_permit_and_begins_the_new_in_one_event(registry: Registry) -> None:
    expires = START.date() + timedelta(days=20)
    fid, visit = await _holder(registry, type="visit", issued_on="2026-11-01", expires_on=expires.isoformat())
    expiry = scheduler(registry)
    registry.clock.current = noon_wib(expires - timedelta(days=14))
    await expiry.run_once()  # the visit permit's 14-day reminder

    converted = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{visit}/conversion",
        json=permit(issued_on=registry.clock.current.date().isoformat(), expires_on="2027-12-01", purpose="family"),
    )
    for days in (13, 7, 1, 0, -1, -5):
        registry.clock.current = noon_wib(expires - timedelta(days=days))
        await expiry.run_once()

    assert converted.status_code == 201, converted.text
    new = converted.json()["permit"]
    assert (new["type"], new["purpose"], new["status"]) == ("itas", "family", "active")
    names = [name for name, _ in await published(registry, fid)]
    assert names.count("permit.converted") == 1
    _, event = next(e for e in await published(registry, fid) if e[0] == "permit.converted")
    assert event["previous_permit"]["permit_id"] == visit
    assert (event["previous_permit"]["status"], event["previous_permit"]["end_reason"]) == ("ended", "converted")
    # Reminders of the old permit stop; the new one, valid a year, owes none yet.
    assert [name for name in names if name.startswith("permit.expir")] == ["permit.expiring"]


async def test_only_a_visit_permit_becomes_an_itas_and_only_an_itas_an_itap(registry: Registry) -> None:
    _, itap_holder = await _holder(registry, type="itap", purpose="family", expires_on="2031-11-01")
    fid, itas = await _holder(registry)
    before = await registry.outbox_rows(fid)

    itas_to_itas = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{itas}/conversion", json=permit(issued_on="2026-11-02", expires_on="2028-01-01")
    )
    to_visit = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{itas}/conversion",
        json=permit(type="visit", issued_on="2026-11-02", expires_on="2026-12-20"),
    )
    itas_to_itap = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{itas}/conversion",
        json=permit(type="itap", purpose="work", issued_on="2026-11-02", expires_on="2031-11-20"),
    )

    assert itas_to_itas.status_code == 409, itas_to_itas.text
    assert itas_to_itas.json()["detail"][0]["loc"] == ["body", "type"]
    assert to_visit.status_code == 422, to_visit.text
    assert itas_to_itap.status_code == 201, itas_to_itap.text
    assert await registry.outbox_rows(fid) == before + 1
    assert itap_holder


async def test_an_itas_without_a_re_entry_permit_ends_on_exit_and_with_one_comes_back(registry: Registry) -> None:
    without, _ = await _holder(registry)
    with_erp, permit_id = await _holder(registry)
    erp = await registry.client.post(
        f"/v1/foreigners/{with_erp}/permits/{permit_id}/reentry-permit",
        json={"number": "erp-9", "issued_on": "2026-11-02", "expires_on": "2027-06-01"},
    )
    too_long = await registry.client.post(
        f"/v1/foreigners/{with_erp}/permits/{permit_id}/reentry-permit",
        json={"number": "erp-10", "issued_on": "2026-11-02", "expires_on": "2028-06-01"},
    )

    gone = await registry.client.post(
        f"/v1/foreigners/{without}/departure", json={"port": JUANDA, "departed_on": "2026-12-01"}
    )
    away = await registry.client.post(
        f"/v1/foreigners/{with_erp}/departure", json={"port": JUANDA, "departed_on": "2026-12-01"}
    )

    assert erp.status_code == 200, erp.text
    assert erp.json()["permit"]["reentry_permit"] == {
        "number": "ERP-9",
        "issued_on": "2026-11-02",
        "expires_on": "2027-06-01",
    }
    assert too_long.status_code == 422, too_long.text
    assert (gone.json()["permit"]["status"], gone.json()["permit"]["end_reason"]) == ("ended", "exit")
    assert away.json()["permit"]["status"] == "active"
    assert "permit.reentry-granted" in [name for name, _ in await published(registry, with_erp)]


async def test_a_re_entry_permit_that_ran_out_abroad_ends_the_permit_on_return(registry: Registry) -> None:
    fid, permit_id = await _holder(registry, expires_on="2027-11-01")
    passport = (await registry.client.get(f"/v1/foreigners/{fid}")).json()["foreigner"]["passport"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/reentry-permit",
        json={"number": "ERP-3", "issued_on": "2026-11-02", "expires_on": "2027-01-01"},
    )
    await registry.client.post(f"/v1/foreigners/{fid}/departure", json={"port": JUANDA, "departed_on": "2026-12-01"})

    back = await registry.arrive(passport=passport, arrived_on="2027-03-01")

    assert back.status_code == 200, back.text
    assert back.json()["permit"] is None
    async with registry.sessions() as session:
        old = (await session.execute(select(permits).where(permits.c.id == permit_id))).one()
    assert (old.status, old.end_reason, old.ended_on) == ("ended", "lapsed-abroad", date(2027, 1, 1))


async def test_an_exit_permit_only_brings_the_last_day_forward_and_ends_the_permit_on_exit(registry: Registry) -> None:
    fid, permit_id = await _holder(registry, expires_on="2027-11-01")
    await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/reentry-permit",
        json={"number": "ERP-4", "issued_on": "2026-11-02", "expires_on": "2027-11-01"},
    )
    leave_by = START.date() + timedelta(days=10)

    epo = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{permit_id}/exit-permit",
        json={"number": "EPO-1", "issued_on": START.date().isoformat(), "leave_by": leave_by.isoformat()},
    )
    registry.clock.current = noon_wib(leave_by - timedelta(days=7))
    await scheduler(registry).run_once()
    registry.clock.current = noon_wib(leave_by + timedelta(days=2))
    await scheduler(registry).run_once()

    assert epo.status_code == 200, epo.text
    assert epo.json()["permit"]["expires_on"] == leave_by.isoformat()
    assert epo.json()["permit"]["exit_permit"]["leave_by"] == leave_by.isoformat()
    names = [name for name, _ in await published(registry, fid)]
    assert "permit.exit-permit-issued" in names
    assert names[-2:] == ["permit.expiring", "permit.expired"]  # not gone by the day: an overstay

    fid2, permit2 = await _holder(registry, expires_on="2027-11-01")
    await registry.client.post(
        f"/v1/foreigners/{fid2}/permits/{permit2}/reentry-permit",
        json={"number": "ERP-5", "issued_on": "2026-11-02", "expires_on": "2027-11-01"},
    )
    await registry.client.post(
        f"/v1/foreigners/{fid2}/permits/{permit2}/exit-permit",
        json={"number": "EPO-2", "issued_on": "2026-11-02", "leave_by": "2026-12-31"},
    )
    left = await registry.client.post(
        f"/v1/foreigners/{fid2}/departure", json={"port": JUANDA, "departed_on": "2026-12-20"}
    )
    assert (left.json()["permit"]["status"], left.json()["permit"]["end_reason"]) == ("ended", "exit")


async def test_no_conversion_may_leave_a_gap_that_hides_an_overstay(registry: Registry) -> None:
    fid, visit = await _holder(registry, type="visit", issued_on="2026-11-01", expires_on="2026-11-20")
    before = await registry.outbox_rows(fid)

    later = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{visit}/conversion", json=permit(issued_on="2026-12-10", expires_on="2027-12-10")
    )
    lapsed = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{visit}/conversion", json=permit(issued_on="2026-11-02", expires_on="2026-11-01")
    )

    assert later.status_code == 422, later.text
    assert later.json()["detail"][0]["loc"] == ["body", "issued_on"]
    assert lapsed.status_code == 422, lapsed.text
    assert await registry.outbox_rows(fid) == before


async def test_an_exit_permit_only_is_checked_and_stops_extension_and_conversion(registry: Registry) -> None:
    fid, itas = await _holder(registry, issued_on="2026-11-01", expires_on="2027-11-01")

    on_issue_day = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{itas}/exit-permit",
        json={"number": "EPO-0", "issued_on": "2026-11-01", "leave_by": "2026-11-01"},
    )
    epo = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{itas}/exit-permit",
        json={"number": "EPO-3", "issued_on": "2026-11-02", "leave_by": "2026-11-30"},
    )
    extension = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{itas}/extension", json={"expires_on": "2028-01-01"}
    )
    conversion = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{itas}/conversion",
        json=permit(type="itap", purpose="work", issued_on="2026-11-02", expires_on="2031-11-02"),
    )

    assert on_issue_day.status_code == 422, on_issue_day.text  # not a 500 from the database's own check
    assert on_issue_day.json()["detail"][0]["loc"] == ["body", "leave_by"]
    assert epo.status_code == 200, epo.text
    assert extension.status_code == 409, extension.text
    assert conversion.status_code == 409, conversion.text


async def test_a_re_entry_permit_goes_on_the_current_permit_and_one_entered_after_the_exit_counts(
    registry: Registry,
) -> None:
    fid, first = await _holder(registry, issued_on="2026-11-01", expires_on="2027-11-01")
    second = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(issued_on="2026-11-02", expires_on="2027-12-01")
    )
    current = second.json()["permit"]["permit_id"]
    passport = second.json()["passport"]
    erp = {"number": "ERP-7", "issued_on": "2026-11-02", "expires_on": "2027-06-01"}

    on_old = await registry.client.post(f"/v1/foreigners/{fid}/permits/{first}/reentry-permit", json=erp)
    left = await registry.client.post(
        f"/v1/foreigners/{fid}/departure", json={"port": JUANDA, "departed_on": "2026-11-02"}
    )
    late = await registry.client.post(f"/v1/foreigners/{fid}/permits/{current}/reentry-permit", json=erp)
    back = await registry.arrive(passport=passport, arrived_on="2027-01-10")

    assert on_old.status_code == 409, on_old.text
    assert left.json()["permit"]["status"] == "ended"  # nothing on record yet: it ended with the exit
    assert late.status_code == 200, late.text
    assert late.json()["permit"]["status"] == "active"
    assert back.status_code == 200, back.text
    assert back.json()["permit"]["permit_id"] == current


async def test_a_visit_on_a_visa_on_arrival_is_extended_once_even_after_it_ran_out(registry: Registry) -> None:
    fid = str((await registry.new_foreigner(visa={"index": "B1"}))["foreigner_id"])
    issued = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(type="visit", issued_on="2026-11-01", expires_on="2026-11-30")
    )
    pid = issued.json()["permit"]["permit_id"]
    once = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/extension", json={"expires_on": "2026-12-30"}
    )
    lapsed_on = date(2026, 12, 30)
    registry.clock.current = noon_wib(lapsed_on + timedelta(days=2))
    await scheduler(registry).run_once()  # marks it expired: the status no longer says "extended"
    paid = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/overstay-fee",
        json={"amount_idr": 2_000_000, "receipt_number": "PNBP-B1", "paid_on": "2027-01-01"},
    )
    twice = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/extension", json={"expires_on": "2027-01-30"}
    )

    assert once.status_code == 200, once.text
    assert paid.status_code == 200, paid.text
    assert twice.status_code == 409, twice.text
    assert "once" in twice.json()["detail"][0]["msg"]
