"""The overstay procedure (UU 6/2011 art. 78; PP 28/2019): the running count and fee, the day-61 event,
the fee paid, enforcement, deportation and the re-entry ban, through the registry API and its scheduler."""

from __future__ import annotations

from datetime import date, timedelta

from tests.registry.conftest import START, Registry, noon_wib, permit, published, scheduler

FEE = 1_000_000


async def _overstayer(registry: Registry, expires: date) -> tuple[str, str]:
    sponsor = {"name": "PT Garam Madura", "kind": "employer"}
    fid = (await registry.new_foreigner(sponsor=sponsor))["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{fid}/residence",
        json={"address": "Jl. Raya Lajing 2", "village_code": "35.26.05.2003", "since": "2026-11-02"},
    )
    issued = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(issued_on="2026-11-01", expires_on=expires.isoformat())
    )
    assert issued.status_code == 201, issued.text
    return fid, issued.json()["permit"]["permit_id"]


async def test_the_overstay_counts_its_fee_and_at_day_61_becomes_a_matter_for_deportation(registry: Registry) -> None:
    expires = START.date() + timedelta(days=5)
    fid, _ = await _overstayer(registry, expires)
    expiry = scheduler(registry)

    registry.clock.current = noon_wib(expires + timedelta(days=1))
    await expiry.run_once()
    registry.clock.current = noon_wib(expires + timedelta(days=12))
    record = (await registry.client.get(f"/v1/foreigners/{fid}")).json()
    assert record["standing"]["overstay"]["days_overstayed"] == 12
    assert record["standing"]["overstay"]["fee_due_idr"] == 12 * FEE
    assert record["standing"]["overstay"]["deportation_due"] is False
    for day in (60, 61, 62, 90):
        registry.clock.current = noon_wib(expires + timedelta(days=day))
        await expiry.run_once()

    overstays = [(name, data) for name, data in await published(registry, fid) if "overstay" in data]
    assert [name for name, _ in overstays] == ["permit.expired", "permit.overstay-exceeded"]
    expired, exceeded = overstays[0][1], overstays[1][1]
    assert expired["overstay"]["fee_due_idr"] == FEE
    assert exceeded["overstay"] == {
        "days_overstayed": 61,
        "fee_per_day_idr": FEE,
        "fee_due_idr": None,
        "fee_limit_days": 60,
        "deportation_due": True,
        "legal_basis": registry.runtime.settings.overstay.legal_basis,
    }
    assert exceeded["foreigner"]["sponsor"]["name"] == "PT Garam Madura"
    record = (await registry.client.get(f"/v1/foreigners/{fid}")).json()
    assert record["standing"]["overstay"]["deportation_due"] is True


async def test_an_overstay_first_seen_past_day_60_is_announced_as_an_overstay_and_then_as_past_the_limit(
    registry: Registry,
) -> None:
    # Every member that hears of overstays hears of this one; those who act past the limit hear of that too.
    expires = START.date() + timedelta(days=2)
    fid, _ = await _overstayer(registry, expires)

    registry.clock.current = noon_wib(expires + timedelta(days=100))
    await scheduler(registry).run_once()
    await scheduler(registry).run_once()

    names = [name for name, data in await published(registry, fid) if "overstay" in data]
    assert names == ["permit.expired", "permit.overstay-exceeded"]


async def test_an_overstayed_permit_is_extended_only_once_its_fee_is_paid(registry: Registry) -> None:
    expires = START.date() + timedelta(days=2)
    fid, pid = await _overstayer(registry, expires)
    registry.clock.current = noon_wib(expires + timedelta(days=10))
    extension = {"expires_on": (expires + timedelta(days=60)).isoformat()}
    paid_on = (expires + timedelta(days=10)).isoformat()

    unpaid = await registry.client.post(f"/v1/foreigners/{fid}/permits/{pid}/extension", json=extension)
    short = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/overstay-fee",
        json={"amount_idr": 9 * FEE, "receipt_number": "PNBP-1", "paid_on": paid_on},
    )
    paid = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/overstay-fee",
        json={"amount_idr": 10 * FEE, "receipt_number": "PNBP-2", "paid_on": paid_on},
    )
    registry.clock.current = noon_wib(expires + timedelta(days=11))
    a_day_later = await registry.client.post(f"/v1/foreigners/{fid}/permits/{pid}/extension", json=extension)
    topped_up = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/overstay-fee",
        json={"amount_idr": FEE, "receipt_number": "PNBP-3", "paid_on": (expires + timedelta(days=11)).isoformat()},
    )
    extended = await registry.client.post(f"/v1/foreigners/{fid}/permits/{pid}/extension", json=extension)

    assert unpaid.status_code == 409, unpaid.text
    assert "Rp10.000.000" in unpaid.json()["detail"][0]["msg"]
    assert short.status_code == 422, short.text
    assert short.json()["detail"][0]["loc"] == ["body", "amount_idr"]
    assert paid.status_code == 200, paid.text
    assert paid.json()["permit"]["overstay_fee"] == {
        "amount_idr": 10 * FEE,
        "receipt_number": "PNBP-2",
        "paid_on": paid_on,
        "days_covered": 10,
    }
    assert a_day_later.status_code == 409, a_day_later.text  # the eleventh day is not paid for
    assert topped_up.status_code == 200, topped_up.text
    assert topped_up.json()["permit"]["overstay_fee"]["amount_idr"] == 11 * FEE
    assert extended.status_code == 200, extended.text
    record = (await registry.client.get(f"/v1/foreigners/{fid}")).json()
    assert record["standing"]["overstay"] is None
    names = [name for name, _ in await published(registry, fid)]
    assert names.count("permit.overstay-fee-paid") == 2
    assert names[-1] == "permit.extended"


async def test_past_day_60_no_fee_settles_it_and_no_extension_is_possible(registry: Registry) -> None:
    expires = START.date() + timedelta(days=2)
    fid, pid = await _overstayer(registry, expires)
    registry.clock.current = noon_wib(expires + timedelta(days=61))

    fee = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/overstay-fee",
        json={
            "amount_idr": 61 * FEE,
            "receipt_number": "PNBP-9",
            "paid_on": (expires + timedelta(days=61)).isoformat(),
        },
    )
    extension = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/extension", json={"expires_on": (expires + timedelta(days=90)).isoformat()}
    )
    not_overstayed = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/overstay-fee",
        json={"amount_idr": FEE, "receipt_number": "PNBP-0", "paid_on": expires.isoformat()},
    )

    assert fee.status_code == 409, fee.text
    assert "deportation" in fee.json()["detail"][0]["msg"]
    assert extension.status_code == 409, extension.text
    assert "deportation" in extension.json()["detail"][0]["msg"]
    assert not_overstayed.status_code == 422, not_overstayed.text
    assert not any(name == "permit.overstay-fee-paid" for name, _ in await published(registry, fid))


async def test_enforcement_deportation_and_a_ban_are_recorded_and_the_ban_refuses_a_return(
    registry: Registry,
) -> None:
    expires = START.date() + timedelta(days=2)
    fid, _ = await _overstayer(registry, expires)
    passport = (await registry.client.get(f"/v1/foreigners/{fid}")).json()["foreigner"]["passport"]
    day = expires + timedelta(days=70)
    registry.clock.current = noon_wib(day)

    order = await registry.client.post(
        f"/v1/foreigners/{fid}/enforcement",
        json={"action": "deportation-order", "on": day.isoformat(), "reference": "W15.IMI.4-GR.02-123"},
    )
    detained = await registry.client.post(
        f"/v1/foreigners/{fid}/enforcement", json={"action": "detention", "on": day.isoformat(), "reference": "D-7"}
    )
    deported = await registry.client.post(
        f"/v1/foreigners/{fid}/deportation",
        json={"port": "Juanda International Airport", "deported_on": day.isoformat(), "reference": "W15.IMI.4-123"},
    )
    banned = await registry.client.post(
        f"/v1/foreigners/{fid}/ban",
        json={"since": day.isoformat(), "until": (day + timedelta(days=365)).isoformat(), "reference": "IMI-PNK-1"},
    )
    during = await registry.arrive(passport=passport, arrived_on=(day + timedelta(days=100)).isoformat())
    after = await registry.arrive(passport=passport, arrived_on=(day + timedelta(days=366)).isoformat())

    assert order.status_code == 200, order.text
    assert detained.status_code == 200, detained.text
    assert deported.status_code == 200, deported.text
    assert deported.json()["presence"] == "deported"
    assert deported.json()["permit"]["status"] == "expired"  # the overstay stays on record
    assert banned.status_code == 200, banned.text
    assert banned.json()["reentry_ban"]["until"] == (day + timedelta(days=365)).isoformat()
    assert during.status_code == 409, during.text
    assert during.json()["detail"][0]["loc"] == ["body", "arrived_on"]
    assert after.status_code == 200, after.text
    names = [name for name, _ in await published(registry, fid)]
    assert names[-5:] == [
        "foreigner.enforcement-recorded",
        "foreigner.enforcement-recorded",
        "foreigner.deported",
        "foreigner.banned",
        "foreigner.arrived",
    ]
    again = await registry.client.post(
        f"/v1/foreigners/{fid}/deportation",
        json={"port": "Juanda International Airport", "deported_on": day.isoformat(), "reference": "X"},
    )
    assert again.status_code == 422, again.text  # before the return's arrival


async def test_bad_enforcement_input_is_refused_by_field_and_writes_nothing(registry: Registry) -> None:
    fid, _ = await _overstayer(registry, START.date() + timedelta(days=2))
    before = await registry.outbox_rows(fid)

    unknown_action = await registry.client.post(
        f"/v1/foreigners/{fid}/enforcement", json={"action": "flogging", "on": "2026-12-01", "reference": "R"}
    )
    backwards_ban = await registry.client.post(
        f"/v1/foreigners/{fid}/ban", json={"since": "2027-01-01", "until": "2026-01-01", "reference": "R"}
    )

    assert unknown_action.status_code == 422
    assert unknown_action.json()["detail"][0]["loc"] == ["body", "action"]
    assert "flogging" not in unknown_action.text
    assert backwards_ban.status_code == 422
    assert backwards_ban.json()["detail"][0]["loc"] == ["body", "until"]
    assert await registry.outbox_rows(fid) == before


async def test_a_fee_paid_for_one_overstay_settles_no_later_one(registry: Registry) -> None:
    expires = START.date() + timedelta(days=2)
    fid, pid = await _overstayer(registry, expires)
    registry.clock.current = noon_wib(expires + timedelta(days=30))
    paid = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/overstay-fee",
        json={
            "amount_idr": 30 * FEE,
            "receipt_number": "PNBP-30",
            "paid_on": registry.clock.current.date().isoformat(),
        },
    )
    new_expiry = expires + timedelta(days=60)
    extended = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/extension", json={"expires_on": new_expiry.isoformat()}
    )
    registry.clock.current = noon_wib(new_expiry + timedelta(days=10))

    again = await registry.client.post(
        f"/v1/foreigners/{fid}/permits/{pid}/extension",
        json={"expires_on": (new_expiry + timedelta(days=90)).isoformat()},
    )
    record = (await registry.client.get(f"/v1/foreigners/{fid}")).json()

    assert paid.status_code == 200, paid.text
    assert extended.status_code == 200, extended.text
    assert extended.json()["permit"]["overstay_fee"] is None
    assert again.status_code == 409, again.text
    assert "Rp10.000.000" in again.json()["detail"][0]["msg"]
    assert record["standing"]["overstay"]["fee_due_idr"] == 10 * FEE


async def test_a_new_permit_does_not_wipe_out_an_overstay(registry: Registry) -> None:
    expires = START.date() + timedelta(days=2)
    fid, _ = await _overstayer(registry, expires)
    before = await registry.outbox_rows(fid)

    registry.clock.current = noon_wib(expires + timedelta(days=10))
    unpaid = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(issued_on="2026-11-20", expires_on="2027-11-20")
    )
    registry.clock.current = noon_wib(expires + timedelta(days=75))
    beyond = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(issued_on="2026-11-20", expires_on="2027-11-20")
    )

    assert unpaid.status_code == 409, unpaid.text
    assert "fee" in unpaid.json()["detail"][0]["msg"]
    assert beyond.status_code == 409, beyond.text
    assert "deportation" in beyond.json()["detail"][0]["msg"]
    assert await registry.outbox_rows(fid) == before


async def test_revoking_an_overstayed_permit_first_does_not_open_the_way_to_a_new_one(registry: Registry) -> None:
    expires = START.date() + timedelta(days=2)
    fid, pid = await _overstayer(registry, expires)
    registry.clock.current = noon_wib(expires + timedelta(days=70))
    revoked = await registry.client.post(f"/v1/foreigners/{fid}/permits/{pid}/revocation", json={"reason": "overstay"})

    fresh = await registry.client.post(
        f"/v1/foreigners/{fid}/permits", json=permit(issued_on="2027-01-10", expires_on="2028-01-10")
    )

    assert revoked.status_code == 200, revoked.text
    assert fresh.status_code == 409, fresh.text
    assert fresh.json()["detail"][0]["loc"] == ["path", "foreigner_id"]
    assert "deportation" in fresh.json()["detail"][0]["msg"]
