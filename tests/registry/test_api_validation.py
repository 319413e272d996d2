"""Every rule of the registry: a bad request is refused with a field-level message, and nothing is
written or published."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.registry.conftest import Registry, arrival, permit
from timpora.common import nationalities
from timpora.registry.domain.commands import ArrivalIn


async def _refused(
    registry: Registry, fid: str | None, call: Callable[[], Awaitable[Any]], status: int, loc: list[str]
) -> dict[str, Any]:
    before = (await registry.foreigner_count(), await registry.outbox_rows(fid) if fid else 0)
    response = await call()
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert any(problem["loc"][: len(loc)] == loc for problem in detail), detail
    after = (await registry.foreigner_count(), await registry.outbox_rows(fid) if fid else 0)
    assert after == before, "a refused request wrote something"
    if fid:
        record = (await registry.client.get(f"/v1/foreigners/{fid}")).json()
        assert len(record["history"]) == record["foreigner"]["version"]
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"nationality": "ZZZ"}, ["body", "nationality"]),
        ({"nationality": "CN"}, ["body", "nationality"]),
        ({"sex": "Q"}, ["body", "sex"]),
        ({"full_name": "   "}, ["body", "full_name"]),
        (
            {"passport": {"number": "12", "issuing_country": "CHN", "expires_on": "2031-01-01"}},
            ["body", "passport", "number"],
        ),
        (
            {"passport": {"number": "E1234567", "issuing_country": "XYZ", "expires_on": "2031-01-01"}},
            ["body", "passport"],
        ),
        (
            {"passport": {"number": "E1234567", "issuing_country": "CHN", "expires_on": "2026-10-31"}},
            ["body", "arrived_on"],
        ),
        ({"date_of_birth": "2026-11-02"}, ["body", "arrived_on"]),
        ({"arrived_on": "not a date"}, ["body", "arrived_on"]),
        ({"favourite_colour": "red"}, ["body", "favourite_colour"]),
    ],
)
async def test_a_bad_arrival_is_refused_and_nothing_is_written(
    registry: Registry, overrides: dict[str, Any], loc: list[str]
) -> None:
    await _refused(registry, None, lambda: registry.arrive(**overrides), 422, loc)


async def test_a_passport_expired_on_arrival_is_named(registry: Registry) -> None:
    body = await _refused(
        registry,
        None,
        lambda: registry.arrive(passport={"number": "E7654321", "issuing_country": "CHN", "expires_on": "2026-10-01"}),
        422,
        ["body", "arrived_on"],
    )
    assert "passport.expires_on is before arrived_on" in body["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("path", "payload", "status", "loc"),
    [
        (
            "residence",
            {"address": "Jl. Fiktif", "village_code": "35.26.05.9999", "since": "2026-11-03"},
            422,
            ["body", "village_code"],
        ),
        (
            "residence",
            {"address": "Jl. Fiktif", "village_code": "35.26", "since": "2026-11-03"},
            422,
            ["body", "village_code"],
        ),
        (
            "residence",
            {"address": "Desa Lajing", "village_code": "35.26.05.2003", "since": "2026-10-01"},
            422,
            ["body", "since"],
        ),
        (
            "stays",
            {"provider": "Hotel", "village_code": "35.26.01.1001", "check_in": "2026-10-01"},
            422,
            ["body", "check_in"],
        ),
        (
            "stays",
            {"provider": "Hotel", "village_code": "35.26.01.1001", "check_in": "2026-11-05", "check_out": "2026-11-04"},
            422,
            ["body", "check_out"],
        ),
        ("departure", {"port": "Juanda", "departed_on": "2026-10-30"}, 422, ["body", "departed_on"]),
        ("permits", permit(issued_on="2026-11-01", expires_on="2026-11-01"), 422, ["body", "expires_on"]),
        ("permits", permit(type="golden-visa"), 422, ["body", "type"]),
    ],
)
async def test_a_bad_change_to_a_person_is_refused_and_nothing_is_written(
    registry: Registry, path: str, payload: dict[str, Any], status: int, loc: list[str]
) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]

    await _refused(
        registry, fid, lambda: registry.client.post(f"/v1/foreigners/{fid}/{path}", json=payload), status, loc
    )


async def test_no_permit_residence_or_stay_for_a_departed_person(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    await registry.client.post(f"/v1/foreigners/{fid}/departure", json={"port": "Juanda", "departed_on": "2026-11-09"})

    attempts: list[tuple[str, dict[str, Any]]] = [
        ("permits", permit()),
        ("residence", {"address": "Desa Lajing", "village_code": "35.26.05.2003", "since": "2026-11-10"}),
        ("stays", {"provider": "Hotel", "village_code": "35.26.01.1001", "check_in": "2026-11-10"}),
    ]
    for path, payload in attempts:
        url = f"/v1/foreigners/{fid}/{path}"
        body = await _refused(
            registry, fid, functools.partial(registry.client.post, url, json=payload), 422, ["path", "foreigner_id"]
        )
        assert "departed on 2026-11-09" in body["detail"][0]["msg"]
    await _refused(
        registry,
        fid,
        lambda: registry.client.post(
            f"/v1/foreigners/{fid}/departure", json={"port": "Juanda", "departed_on": "2026-11-12"}
        ),
        409,
        ["path", "foreigner_id"],
    )


async def test_an_arrival_of_someone_still_present_or_before_their_departure_is_refused(registry: Registry) -> None:
    first = arrival()
    fid = (await registry.new_foreigner(**first))["foreigner_id"]

    await _refused(registry, fid, lambda: registry.arrive(**first), 409, ["body", "passport", "number"])
    await registry.client.post(f"/v1/foreigners/{fid}/departure", json={"port": "Juanda", "departed_on": "2026-11-20"})
    await _refused(
        registry, fid, lambda: registry.arrive(**(first | {"arrived_on": "2026-11-19"})), 422, ["body", "arrived_on"]
    )


async def test_permit_numbers_are_unique_and_extensions_must_move_expiry_later(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    taken = permit()
    issued = await registry.client.post(f"/v1/foreigners/{fid}/permits", json=taken)
    permit_id = issued.json()["permit"]["permit_id"]

    await _refused(
        registry,
        fid,
        lambda: registry.client.post(f"/v1/foreigners/{fid}/permits", json=taken),
        409,
        ["body", "number"],
    )
    await _refused(
        registry,
        fid,
        lambda: registry.client.post(
            f"/v1/foreigners/{fid}/permits/{permit_id}/extension", json={"expires_on": "2027-11-01"}
        ),
        422,
        ["body", "expires_on"],
    )


async def test_unknown_ids_are_404_with_the_path_field(registry: Registry) -> None:
    fid = (await registry.new_foreigner())["foreigner_id"]
    missing = "00000000-0000-4000-8000-000000000000"

    answers = [
        await _refused(
            registry, None, lambda: registry.client.get(f"/v1/foreigners/{missing}"), 404, ["path", "foreigner_id"]
        ),
        await _refused(
            registry,
            fid,
            lambda: registry.client.post(
                f"/v1/foreigners/{fid}/permits/{missing}/extension", json={"expires_on": "2030-01-01"}
            ),
            404,
            ["path", "permit_id"],
        ),
    ]
    # The answer names the field, never the ids it was given.
    for answer in answers:
        assert missing not in json.dumps(answer)
        assert fid not in json.dumps(answer)


@settings(max_examples=200)
@given(st.text(min_size=0, max_size=4))
def test_only_real_nationality_codes_pass(code: str) -> None:
    if nationalities.name_of(nationalities.normalize(code)) is not None:
        ArrivalIn.model_validate(arrival(nationality=code))
        return
    with pytest.raises(ValidationError) as raised:
        ArrivalIn.model_validate(arrival(nationality=code))
    assert any(problem["loc"] == ("nationality",) for problem in raised.value.errors())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(village=st.from_regex(r"\A35\.26\.0[1-9]\.[12]0[0-9]{2}\Z"))
async def test_village_codes_pass_exactly_when_the_official_list_has_them(registry: Registry, village: str) -> None:
    from timpora.common import regions  # noqa: PLC0415

    fid = (await registry.new_foreigner())["foreigner_id"]
    response = await registry.client.post(
        f"/v1/foreigners/{fid}/residence",
        json={"address": "Jl. Contoh", "village_code": village, "since": "2026-11-03"},
    )
    assert (response.status_code == 200) is (regions.lookup(village) is not None), response.text


#: Where a refused value may sit in an arrival, and what a value there looks like.
_ARRIVAL_FIELDS = (
    ("nationality",),
    ("sex",),
    ("full_name",),
    ("occupation",),
    ("arrived_on",),
    ("date_of_birth",),
    ("passport", "number"),
    ("passport", "issuing_country"),
    ("passport", "expires_on"),
    ("sponsor", "kind"),
    ("visa", "index"),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(_ARRIVAL_FIELDS),
    value=st.one_of(
        st.from_regex(r"[A-Z]{3}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9]{3,12}", fullmatch=True),
        st.text(min_size=3, max_size=300),
        st.integers(-(10**6), 10**6).map(lambda n: f"{n:+d}"),
    ),
)
async def test_a_refusal_never_quotes_the_value_refused(registry: Registry, path: tuple[str, ...], value: str) -> None:
    body = arrival()
    body["visa"] = {"index": "C1", "number": "V1"}
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value

    response = await registry.client.post("/v1/arrivals", json=body)

    if response.status_code != 422:
        return
    for problem in response.json()["detail"]:
        assert set(problem) == {"loc", "msg", "type"}  # no "input", no "ctx"
        if problem["msg"] == f"invalid value ({problem['type']})":
            continue  # the message that replaces one that quoted the value
        # Not the value, nor its trimmed or upper-cased form (what a validator may quote after normalising it).
        for form in {value, value.strip(), value.strip().upper()}:
            if len(form) >= 3:
                assert form.casefold() not in problem["msg"].casefold(), problem


async def test_a_value_for_no_column_is_refused_not_dropped(registry: Registry) -> None:
    # A field added to a command (and so accepted by the API) but not to its table must fail loudly: a plain INSERT
    # given it as a parameter would leave it out without a word, and the registry would lose what staff sent.
    from uuid import uuid4  # noqa: PLC0415

    from timpora.registry import repository  # noqa: PLC0415
    from timpora.registry.models import movements  # noqa: PLC0415

    row = {"id": uuid4(), "foreigner_id": uuid4(), "kind": "arrival", "port": "Juanda", "recorded_by": "x"}
    async with registry.sessions() as session, session.begin():
        with pytest.raises(ValueError, match=r"not columns of movements: \['arrived_by_boat'\]"):
            await repository.insert_row(session, movements, row | {"arrived_by_boat": True})


async def test_a_nul_character_in_text_is_refused_at_its_field_not_a_server_error(registry: Registry) -> None:
    # Found by schemathesis: PostgreSQL's text cannot hold U+0000, and it failed as a 500 after validation.
    person = await registry.new_foreigner()
    refused = await registry.client.post(
        f"/v1/foreigners/{person['foreigner_id']}/ban",
        json={"since": "2026-11-02", "until": "2027-11-02", "reference": "PEN\u0000-1"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "reference"]
    assert "PEN" not in refused.text  # nothing echoed back
    assert (await registry.arrive(full_name="Li\u0000Wei")).status_code == 422
