"""Every read of people's records in the registry is in the disclosure log before it is answered: one person's
record, a search, the worklist; by the registry's own operators and by the portal's immigration officers alike. The
office is the data's controller, so each is recorded as its processing (basis ``controller``), not as a disclosure to
another agency — recorded all the same, so that a person's request to know who saw their data is answered whole."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select

from tests.registry.conftest import Registry
from timpora.common.disclosures import CONTROLLER_PURPOSE, log_table
from timpora.registry.access import PORTAL_KEYS

LAJING = "35.26.05.2003"


async def _logged(registry: Registry, foreigner_id: str) -> list[Any]:
    async with registry.runtime.engine.connect() as connection:
        statement = select(log_table).where(log_table.c.record_ids.contains([UUID(foreigner_id)]))
        return list((await connection.execute(statement.order_by(log_table.c.id))).all())


async def test_each_read_of_a_persons_record_is_in_the_log_as_the_controllers_processing(registry: Registry) -> None:
    person = await registry.new_foreigner()
    foreigner_id = person["foreigner_id"]
    await registry.client.post(
        f"/v1/foreigners/{foreigner_id}/residence",
        json={"address": "Jl. Raya Lajing 3", "village_code": LAJING, "since": "2026-11-01"},
    )
    assert await _logged(registry, foreigner_id) == []  # changes are not reads

    read = await registry.client.get(f"/v1/foreigners/{foreigner_id}")
    found = await registry.client.get("/v1/foreigners", params={"passport_number": person["passport"]["number"]})
    assert (read.status_code, found.status_code) == (200, 200)
    async with registry.sessions() as session, session.begin():
        portal_key_id, key = await PORTAL_KEYS.issue(session, "portal")
    portal = {
        "Authorization": f"Bearer {key}",
        "X-Timpora-Agency": "kanim-pamekasan",
        "X-Timpora-Officer": "imigrasi.sari",
    }
    assert (await registry.client.get(f"/v1/foreigners/{foreigner_id}", headers=portal)).status_code == 200

    rows = await _logged(registry, foreigner_id)
    assert [row.reference for row in rows] == [
        f"GET /v1/foreigners/{foreigner_id}",
        "GET /v1/foreigners",
        f"GET /v1/foreigners/{foreigner_id}",
    ]
    assert {(row.channel, row.basis, row.purpose, row.agency_id) for row in rows} == {
        ("registry", "controller", CONTROLLER_PURPOSE, "kanim-pamekasan")
    }
    operator = rows[0].officer
    assert operator is not None
    assert operator != "imigrasi.sari"
    assert [row.officer for row in rows] == [operator, operator, "imigrasi.sari"]  # the portal's officer, by name
    # And by the key each read with: the operator's own, the portal's.
    assert rows[0].key_id == rows[1].key_id
    assert rows[2].key_id == portal_key_id
    assert rows[0].key_id != portal_key_id
    assert "passport_number" in rows[0].fields
    assert "full_name" in rows[0].fields


async def test_the_worklist_read_is_in_the_log_with_everyone_it_listed(registry: Registry) -> None:
    person = await registry.new_foreigner()
    await registry.client.post(
        f"/v1/foreigners/{person['foreigner_id']}/residence",
        json={"address": "Jl. Raya Lajing 4", "village_code": LAJING, "since": "2026-11-01"},
    )
    issued = await registry.client.post(
        f"/v1/foreigners/{person['foreigner_id']}/permits",
        json={"number": "K" + person["foreigner_id"][:8], "type": "visit", "issued_on": "2026-11-01",
              "expires_on": str(registry.clock.now().date())},
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    listed = await registry.client.get("/v1/worklist", params={"region": "35.26.05.2003"})
    assert listed.status_code == 200
    ids = {item["foreigner"]["foreigner_id"] for part in ("overstaying", "expiring") for item in listed.json()[part]}
    assert person["foreigner_id"] in ids
    (row,) = [row for row in await _logged(registry, person["foreigner_id"]) if row.reference == "GET /v1/worklist"]
    assert {str(record_id) for record_id in row.record_ids} == ids
