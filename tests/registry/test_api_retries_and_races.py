"""Retried requests make one change; racing requests with a stale version are refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, update

from tests.registry.conftest import Registry, arrival, permit
from timpora.registry.housekeeping import purge_idempotency_keys
from timpora.registry.models import idempotency_keys


async def test_a_retried_post_with_the_same_idempotency_key_makes_one_record_and_one_event(registry: Registry) -> None:
    body = arrival()
    headers = {"Idempotency-Key": "arrival-retry-1-" + body["passport"]["number"]}

    first = await registry.client.post("/v1/arrivals", json=body, headers=headers)
    count = await registry.foreigner_count()
    second = await registry.client.post("/v1/arrivals", json=body, headers=headers)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await registry.foreigner_count() == count
    assert await registry.outbox_rows(first.json()["foreigner_id"]) == 1


async def test_concurrent_retries_with_one_key_make_one_change(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    headers = {"Idempotency-Key": f"permit-{fid}"}
    body = permit()

    responses = await asyncio.gather(
        *(registry.client.post(f"/v1/foreigners/{fid}/permits", json=body, headers=headers) for _ in range(5))
    )

    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["version"] for response in responses}) == 1
    assert await registry.outbox_rows(fid) == 2


async def test_a_key_reused_for_a_different_request_is_refused(registry: Registry) -> None:
    headers = {"Idempotency-Key": "reused-key-" + arrival()["passport"]["number"]}
    await registry.client.post("/v1/arrivals", json=arrival(), headers=headers)
    count = await registry.foreigner_count()

    other = await registry.client.post("/v1/arrivals", json=arrival(), headers=headers)

    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await registry.foreigner_count() == count


async def test_a_change_with_a_stale_version_is_refused_and_writes_nothing(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    await registry.client.patch(f"/v1/foreigners/{fid}", json={"occupation": "chef"}, headers={"If-Match": '"1"'})

    stale = await registry.client.patch(
        f"/v1/foreigners/{fid}", json={"occupation": "diver"}, headers={"If-Match": '"1"'}
    )

    assert stale.status_code == 412
    assert stale.json()["detail"][0]["loc"] == ["header", "If-Match"]
    record = (await registry.client.get(f"/v1/foreigners/{fid}")).json()
    assert record["foreigner"]["occupation"] == "chef"
    assert await registry.outbox_rows(fid) == 2


async def test_of_two_concurrent_updates_from_the_same_version_exactly_one_wins(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]

    responses = await asyncio.gather(
        *(
            registry.client.patch(f"/v1/foreigners/{fid}", json={"occupation": job}, headers={"If-Match": '"1"'})
            for job in ("chef", "diver", "teacher", "pilot")
        )
    )

    assert sorted(response.status_code for response in responses) == [200, 412, 412, 412]
    assert await registry.outbox_rows(fid) == 2


async def test_a_malformed_if_match_is_refused(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]

    response = await registry.client.patch(
        f"/v1/foreigners/{fid}", json={"occupation": "x"}, headers={"If-Match": "yes"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "If-Match"]


async def test_stored_answers_are_forgotten_after_the_retention_period(registry: Registry) -> None:
    body = arrival()
    key = "purge-" + body["passport"]["number"]
    first = await registry.client.post("/v1/arrivals", json=body, headers={"Idempotency-Key": key})
    async with registry.sessions() as session, session.begin():
        await session.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(created_at=func.now() - timedelta(days=8))
        )

    assert await purge_idempotency_keys(registry.runtime.engine, retention_days=7) >= 1
    again = await registry.client.post("/v1/arrivals", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    assert again.status_code == 409, "the key is forgotten: the retry is a new request, refused as a duplicate"
