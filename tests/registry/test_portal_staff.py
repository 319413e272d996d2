"""Immigration staff working through the portal: the portal's key acts as the officer and the office each request
names, and the registry records that officer as who made the change. A request that names no officer, or an agency
that is no immigration office, is refused."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.registry.conftest import Registry, arrival, permit
from timpora.registry.access import PORTAL_KEYS
from timpora.registry.models import foreigners

LAJING = "35.26.05.2003"


async def _portal_key(registry: Registry) -> str:
    async with registry.sessions() as session, session.begin():
        _, key = await PORTAL_KEYS.issue(session, "portal")
    return key


def _as(key: str, officer: str = "imigrasi.sari", agency: str = "kanim-pamekasan") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Timpora-Agency": agency, "X-Timpora-Officer": officer}


async def test_an_arrival_through_the_portal_is_recorded_as_its_officers_in_the_offices_area(
    registry: Registry,
) -> None:
    key = await _portal_key(registry)

    made = await registry.client.post("/v1/arrivals", json=arrival(), headers=_as(key))
    assert made.status_code == 201, made.text
    person = made.json()["foreigner_id"]
    lived = await registry.client.post(
        f"/v1/foreigners/{person}/residence",
        json={"address": "Jl. Raya Lajing 1", "village_code": LAJING, "since": "2026-11-01"},
        headers=_as(key),
    )
    assert lived.status_code == 200, lived.text

    record = (await registry.client.get(f"/v1/foreigners/{person}")).json()  # read by the test's operator
    assert [entry["actor"] for entry in record["history"]] == ["imigrasi.sari (portal)"] * 2


async def test_the_portal_acts_only_for_a_named_officer_of_an_immigration_office(registry: Registry) -> None:
    key = await _portal_key(registry)
    async with registry.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(foreigners))

    regency = await registry.client.post("/v1/arrivals", json=arrival(), headers=_as(key, agency="pemkab-bangkalan"))
    nobody = await registry.client.post(
        "/v1/arrivals",
        json=arrival(),
        headers={"Authorization": f"Bearer {key}", "X-Timpora-Agency": "kanim-pamekasan"},
    )
    forged = await registry.client.post("/v1/arrivals", json=arrival(), headers=_as("trp_" + "x" * 43))

    assert regency.status_code == 403, regency.text
    assert nobody.status_code == 403, nobody.text
    assert forged.status_code == 401
    async with registry.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(foreigners)) == before


async def test_each_portal_officers_idempotency_keys_are_their_own(registry: Registry) -> None:
    key = await _portal_key(registry)
    body = arrival()
    first = await registry.client.post(
        "/v1/arrivals", json=body, headers={**_as(key, "imigrasi.sari"), "Idempotency-Key": "same-key"}
    )
    again = await registry.client.post(
        "/v1/arrivals", json=body, headers={**_as(key, "imigrasi.sari"), "Idempotency-Key": "same-key"}
    )
    other = await registry.client.post(
        "/v1/arrivals", json=body, headers={**_as(key, "imigrasi.budi"), "Idempotency-Key": "same-key"}
    )

    assert (first.status_code, again.status_code) == (201, 201)  # the replay of the first answer
    assert again.json() == first.json()
    # Not the first officer's stored answer: the registry ran it, and found the person already present.
    assert other.status_code == 409, other.text
    assert "already recorded as present" in other.text


async def test_the_portals_key_reaches_what_the_desk_does_and_nothing_else(registry: Registry) -> None:
    key = await _portal_key(registry)
    person = await registry.new_foreigner()
    path = f"/v1/foreigners/{person['foreigner_id']}"
    elsewhere = [
        ("PATCH", path, {"occupation": "nelayan"}),
        ("POST", f"{path}/passport", {"number": "X1234567", "issuing_country": "CHN", "expires_on": "2033-01-01"}),
        ("POST", f"{path}/stays", {"provider": "Hotel Lajing", "village_code": LAJING, "check_in": "2026-11-02"}),
        ("GET", "/v1/stay-reports", None),
        ("GET", "/v1/accommodations", None),
    ]
    for method, target, body in elsewhere:
        answer = await registry.client.request(method, target, json=body, headers=_as(key))
        assert answer.status_code == 403, (method, target, answer.text)
    for target in ("/v1/worklist", f"/v1/foreigners?passport_number={person['passport']['number']}", path):
        assert (await registry.client.get(target, headers=_as(key))).status_code == 200, target


async def test_through_the_portal_a_person_is_looked_up_the_register_is_not_paged_through(registry: Registry) -> None:
    key = await _portal_key(registry)
    person = await registry.new_foreigner()
    found = await registry.client.get(
        "/v1/foreigners", params={"passport_number": person["passport"]["number"]}, headers=_as(key)
    )
    assert [item["foreigner_id"] for item in found.json()["items"]] == [person["foreigner_id"]]
    attempts: list[dict[str, str]] = [
        {},
        {"region": "35.26"},
        {"name": "Li"},
        {"name": "Lim", "limit": "51"},
        {"name": "Lim", "cursor": "AA"},
        {"name": "Lim", "region": "35.26"},
        {"passport_number": person["passport"]["number"], "nationality": "CHN"},
    ]
    for params in attempts:
        refused = await registry.client.get("/v1/foreigners", params=params, headers=_as(key))
        assert refused.status_code == 422, (params, refused.text)
    too_long = await registry.client.get("/v1/worklist", params={"limit": "201"}, headers=_as(key))
    assert too_long.status_code == 422
    # The registry's own operators still page through their office's register.
    assert (await registry.client.get("/v1/foreigners", params={"region": "35.26", "limit": 500})).status_code == 200


async def test_the_desks_daily_changes_through_the_portal_are_its_officers(registry: Registry) -> None:
    """A permit issued, extended and revoked, a new one converted, a departure: each through the portal's key,
    each recorded in the person's history under the officer's name."""
    key = await _portal_key(registry)
    person = (await registry.client.post("/v1/arrivals", json=arrival(), headers=_as(key))).json()
    path = f"/v1/foreigners/{person['foreigner_id']}"
    lived = await registry.client.post(
        f"{path}/residence",
        json={"address": "Jl. Raya Lajing 1", "village_code": LAJING, "since": "2026-11-01"},
        headers=_as(key),
    )
    assert lived.status_code == 200, lived.text
    issued = await registry.client.post(f"{path}/permits", json=permit(type="visit"), headers=_as(key))
    assert issued.status_code == 201, issued.text
    first = issued.json()["permit"]["permit_id"]
    steps = [
        (f"{path}/permits/{first}/extension", {"expires_on": "2028-01-01"}),
        (f"{path}/permits/{first}/conversion", permit()),
    ]
    for target, body in steps:
        answer = await registry.client.post(target, json=body, headers=_as(key))
        assert answer.status_code in {200, 201}, (target, answer.text)
    second = answer.json()["permit"]["permit_id"]
    for target, body in (
        (f"{path}/permits/{second}/revocation", {"reason": "Bekerja di luar izinnya"}),
        (f"{path}/departure", {"port": "Bandara Juanda", "departed_on": "2026-11-20"}),
    ):
        answer = await registry.client.post(target, json=body, headers=_as(key))
        assert answer.status_code == 200, (target, answer.text)

    record = await registry.client.get(path, headers=_as(key, officer="imigrasi.budi"))
    assert record.status_code == 200, record.text
    assert record.json()["foreigner"]["presence"] == "departed"
    actors = {entry["actor"] for entry in record.json()["history"]}
    assert actors == {"imigrasi.sari (portal)"}
