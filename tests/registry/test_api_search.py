"""Searching the registry: every filter, and keyset pages that neither skip nor repeat."""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.registry.conftest import Registry, permit


async def _search(registry: Registry, **params: Any) -> list[dict[str, Any]]:
    response = await registry.client.get("/v1/foreigners", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_filters_by_name_nationality_passport_region_status_and_expiry(registry: Registry) -> None:
    tag = uuid.uuid4().hex[:8]
    lajing = await registry.new_foreigner(full_name=f"Anna {tag} Schmidt", nationality="DEU")
    other = await registry.new_foreigner(full_name=f"Bob {tag} Smith", nationality="AUS")
    await registry.client.post(
        f"/v1/foreigners/{lajing['foreigner_id']}/residence",
        json={"address": "Desa Lajing", "village_code": "35.26.05.2003", "since": "2026-11-03"},
    )
    await registry.client.post(
        f"/v1/foreigners/{other['foreigner_id']}/residence",
        json={"address": "Kota", "village_code": "35.26.01.1001", "since": "2026-11-03"},
    )
    await registry.client.post(f"/v1/foreigners/{lajing['foreigner_id']}/permits", json=permit(expires_on="2026-11-20"))

    assert [f["full_name"] for f in await _search(registry, name=tag)] == [f"Anna {tag} Schmidt", f"Bob {tag} Smith"]
    assert [f["foreigner_id"] for f in await _search(registry, name=tag, nationality="deu")] == [lajing["foreigner_id"]]
    number = other["passport"]["number"]
    assert [f["foreigner_id"] for f in await _search(registry, passport_number=number.lower())] == [
        other["foreigner_id"]
    ]
    in_arosbaya = await _search(registry, name=tag, region="35.26.05")
    assert [f["foreigner_id"] for f in in_arosbaya] == [lajing["foreigner_id"]]
    assert len(await _search(registry, name=tag, region="35.26")) == 2
    assert [f["foreigner_id"] for f in await _search(registry, name=tag, permit_status="active")] == [
        lajing["foreigner_id"]
    ]
    assert [f["foreigner_id"] for f in await _search(registry, name=tag, expiring_within_days=30)] == [
        lajing["foreigner_id"]
    ]
    assert await _search(registry, name=tag, expiring_within_days=5) == []


async def test_a_bad_filter_is_refused_with_its_name(registry: Registry) -> None:
    cases: list[tuple[dict[str, str | int], str]] = [
        ({"region": "35.99"}, "region"),
        ({"nationality": "ZZZ"}, "nationality"),
        ({"limit": 0}, "limit"),
    ]
    for params, field in cases:
        response = await registry.client.get("/v1/foreigners", params=params)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == field
    bad_cursor = await registry.client.get("/v1/foreigners", params={"cursor": "bm9wZQ"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"][0]["loc"] == ["query", "cursor"]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(st.sampled_from(["Ana", "ana", "Bo", "Chen", "Dewi", "Émile"]), min_size=1, max_size=12),
    page=st.integers(1, 5),
)
async def test_keyset_pages_cover_every_match_once_in_name_order(
    registry: Registry, names: list[str], page: int
) -> None:
    tag = uuid.uuid4().hex[:8]
    for name in names:
        await registry.new_foreigner(full_name=f"{tag} {name}")

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"name": tag, "limit": page} | ({"cursor": cursor} if cursor else {})
        body = (await registry.client.get("/v1/foreigners", params=params)).json()
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # The cursor is the last row's id and nothing else (a search for a short name like "Bo" would find it by
        # chance in any base64 text: the cursor's content is checked, not searched).
        assert _decoded(cursor) == uuid.UUID(body["items"][-1]["foreigner_id"]).bytes

    assert len(seen) == len(names)
    assert len({f["foreigner_id"] for f in seen}) == len(names)
    keys = [(f["full_name"].lower(), f["foreigner_id"]) for f in seen]
    assert keys == sorted(keys)


def _decoded(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _names_in(cursor: str, names: list[str]) -> list[str]:
    """The names ``cursor`` carries, as it is or decoded the ways a curious reader would try."""
    readings = [cursor.casefold()]
    with contextlib.suppress(ValueError, binascii.Error):
        readings.append(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8", "replace").casefold()
        )
    return [name for name in names if any(name.casefold() in reading for reading in readings)]


async def test_a_page_cursor_is_opaque_and_holds_no_name(registry: Registry) -> None:
    tag = uuid.uuid4().hex[:8]
    first = await registry.new_foreigner(full_name=f"Zhang Wei {tag}")
    await registry.new_foreigner(full_name=f"Zhang Wei {tag} Junior")

    body = (await registry.client.get("/v1/foreigners", params={"name": tag, "limit": 1})).json()

    assert [item["foreigner_id"] for item in body["items"]] == [first["foreigner_id"]]
    assert _names_in(body["next_cursor"], ["Zhang Wei", tag]) == []
    following = (
        await registry.client.get("/v1/foreigners", params={"name": tag, "limit": 1, "cursor": body["next_cursor"]})
    ).json()
    assert [item["full_name"] for item in following["items"]] == [f"Zhang Wei {tag} Junior"]
