"""The office's worklist: who overstays, longest first (past 60 days deportation is due), and whose permit ends
soonest — each with the standing the person's own record gives, counted on their local date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from tests.registry.conftest import Registry, permit
from timpora.registry.models import permits

#: A kecamatan of Bangkalan the other tests rarely use (their generated people may live anywhere): the worklist of the
#: whole registry holds every test's people, so each check here is about this test's own, or holds for everyone.
GALIS = "35.26.18"


async def _living_in_galis(registry: Registry, village: str, expires_on: str | None, name: str = "Li Wei") -> str:
    person = await registry.new_foreigner(full_name=name)
    foreigner_id = person["foreigner_id"]
    lived = await registry.client.post(
        f"/v1/foreigners/{foreigner_id}/residence",
        json={"address": "Desa Galis", "village_code": village, "since": "2026-11-01"},
    )
    assert lived.status_code == 200, lived.text
    if expires_on is not None:
        issued = await registry.client.post(
            f"/v1/foreigners/{foreigner_id}/permits", json=permit(issued_on="2026-01-05", expires_on=expires_on)
        )
        assert issued.status_code == 201, issued.text
    return str(foreigner_id)


async def _worklist(registry: Registry, **params: Any) -> dict[str, Any]:
    answer = await registry.client.get("/v1/worklist", params={"region": GALIS, **params})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_the_worklist_lists_overstays_longest_first_and_permits_ending_soonest(registry: Registry) -> None:
    today = registry.clock.now().date()  # noon in Bangkalan: the same date there
    # Named so that by name the least urgent would come first.
    long_over = await _living_in_galis(registry, "35.26.18.2001", str(today - timedelta(days=75)), "Zhou Yu")
    short_over = await _living_in_galis(registry, "35.26.18.2002", str(today - timedelta(days=3)), "Ahmad Ali")
    soon = await _living_in_galis(registry, "35.26.18.2003", str(today + timedelta(days=4)), "Zhou Yu")
    later = await _living_in_galis(registry, "35.26.18.2001", str(today + timedelta(days=20)), "Ahmad Ali")
    far = await _living_in_galis(registry, "35.26.18.2002", str(today + timedelta(days=200)))
    without = await _living_in_galis(registry, "35.26.18.2003", None)
    left = await _living_in_galis(registry, "35.26.18.2001", str(today - timedelta(days=10)))
    departed = await registry.client.post(
        f"/v1/foreigners/{left}/departure", json={"port": "Bandara Juanda", "departed_on": str(today)}
    )
    assert departed.status_code == 200, departed.text

    listed = await _worklist(registry)

    # Other tests' generated people may live in Galis too: this test's own are in the lists, in this order.
    mine = {long_over, short_over, soon, later, far, without, left}
    overstaying = [item["foreigner"]["foreigner_id"] for item in listed["overstaying"]]
    expiring = [item["foreigner"]["foreigner_id"] for item in listed["expiring"]]
    assert [person for person in overstaying if person in mine] == [long_over, short_over]
    assert [person for person in expiring if person in mine] == [soon, later]
    # Everyone's: the longest overstay first, the soonest expiry first.
    days = [(item["standing"]["overstay"] or {}).get("days_overstayed", 0) for item in listed["overstaying"]]
    assert days == sorted(days, reverse=True)
    left_days = [item["standing"]["days_to_expiry"] for item in listed["expiring"]]
    assert left_days == sorted(left_days)
    # Each as the person's own record stands.
    for item in [*listed["overstaying"], *listed["expiring"]]:
        record = (await registry.client.get(f"/v1/foreigners/{item['foreigner']['foreigner_id']}")).json()
        assert item["standing"] == record["standing"]
    due = {
        item["foreigner"]["foreigner_id"]: item["standing"]["overstay"]["deportation_due"]
        for item in listed["overstaying"]
    }
    assert (due[long_over], due[short_over]) == (True, False)
    assert {far, without, left}.isdisjoint([*overstaying, *expiring])
    # A shorter horizon; and a list cut short keeps the most urgent, and says so.
    shorter = await _worklist(registry, expiring_within_days=7)
    assert soon in [item["foreigner"]["foreigner_id"] for item in shorter["expiring"]]
    assert later not in [item["foreigner"]["foreigner_id"] for item in shorter["expiring"]]
    cut = await _worklist(registry, limit=1)
    assert cut["truncated"] is True
    assert cut["overstaying"] == listed["overstaying"][:1]
    assert cut["expiring"] == listed["expiring"][:1]


async def test_a_permit_marked_expired_is_no_overstay_on_a_day_before_its_last(registry: Registry) -> None:
    # The scheduler marked it expired on a later day (a clock that has since gone back, another office's day): the
    # worklist counts from the permit's last day and the person's date, as their record does, not from the mark.
    today = registry.clock.now().date()
    marked = await _living_in_galis(registry, "35.26.18.2002", str(today + timedelta(days=5)), "Marked Early")
    async with registry.sessions() as session, session.begin():
        await session.execute(update(permits).where(permits.c.foreigner_id == marked).values(status="expired"))

    listed = await _worklist(registry)
    record = (await registry.client.get(f"/v1/foreigners/{marked}")).json()

    assert record["standing"]["overstay"] is None
    assert marked not in [item["foreigner"]["foreigner_id"] for item in listed["overstaying"]]
