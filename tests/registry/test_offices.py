"""Several immigration offices share one registry: each office's staff change and read only its own area, as the
register says which office controls which regencies. Someone of another office's area is not found, exactly as a
missing person, and nothing is written."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.registry.conftest import START, arrival, permit, registry_settings
from tests.registry.test_bulk_import import _csv, _rows
from tests.support import register as register_variants
from tests.support.clock import ManualClock
from tests.support.waiting import until
from timpora.common.events.payloads import ForeignerSnapshot
from timpora.common.service import ServiceRuntime
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.registry.bulk.importer import Importer
from timpora.registry.bulk.records import read
from timpora.registry.domain.areas import Area, known_place
from timpora.registry.main import SERVICE
from timpora.registry.models import foreigners, outbox, stays
from timpora.registry.operators import add_operator
from timpora.registry.repository import known_place_sql

#: Kanim Pamekasan's area (the shipped register): Bangkalan, Sampang, Pamekasan, Sumenep.
BANGKALAN = "35.26.05.2003"
#: A second office, for Kota Surabaya.
SURABAYA = "35.78.01.1001"
SURABAYA_OFFICE = {
    "id": "kanim-surabaya",
    "name": "Kantor Imigrasi Kelas I Khusus TPI Surabaya",
    "kind": "immigration",
    "controller": True,
    "jurisdiction": ["35.78"],
}


def two_offices(path: Path) -> Path:
    document = register_variants.shipped()
    document["members"].append(dict(SURABAYA_OFFICE))
    return register_variants.write(path, document)


@dataclass
class Offices:
    runtime: ServiceRuntime
    register_file: Path
    #: A client per operator: Pamekasan's staff, Surabaya's, and an operator of every office's area.
    pamekasan: AsyncClient
    surabaya: AsyncClient
    everywhere: AsyncClient

    async def outbox_count(self) -> int:
        async with self.runtime.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)

    async def living_in(self, client: AsyncClient, village: str) -> dict[str, Any]:
        arrived = await client.post("/v1/arrivals", json=arrival())
        assert arrived.status_code == 201, arrived.text
        person: dict[str, Any] = arrived.json()
        reported = await client.post(
            f"/v1/foreigners/{person['foreigner_id']}/residence",
            json={"address": "Jl. Raya 1", "village_code": village, "since": "2026-11-01"},
        )
        assert reported.status_code == 200, reported.text
        body: dict[str, Any] = reported.json()
        return body


@pytest.fixture
async def offices(
    tmp_path: Path, kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> AsyncIterator[Offices]:
    register_file = two_offices(tmp_path / "register.yaml")
    settings = registry_settings(kafka_settings, database_settings["registry"]).model_copy(
        update={"register_file": register_file}
    )
    app = SERVICE.create_app(settings, clock=ManualClock(START))
    runtime: ServiceRuntime = app.state.runtime
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        tokens = {}
        async with runtime.sessions() as session, session.begin():
            for office in ("kanim-pamekasan", "kanim-surabaya", None):
                tokens[office] = await add_operator(session, f"officer-{uuid.uuid4().hex[:8]}", office)
        transport = ASGITransport(app=app)

        def client(office: str | None) -> AsyncClient:
            headers = {"Authorization": f"Bearer {tokens[office]}"}
            return AsyncClient(transport=transport, base_url="http://registry", headers=headers)

        async with client("kanim-pamekasan") as pamekasan, client("kanim-surabaya") as surabaya, client(None) as any_:
            yield Offices(runtime, register_file, pamekasan, surabaya, any_)


async def test_each_office_reads_only_the_people_of_its_area(offices: Offices) -> None:
    ours = await offices.living_in(offices.pamekasan, BANGKALAN)
    theirs = await offices.living_in(offices.surabaya, SURABAYA)
    person = f"/v1/foreigners/{ours['foreigner_id']}"

    missing = await offices.surabaya.get(f"/v1/foreigners/{uuid.uuid4()}")
    refused = await offices.surabaya.get(person)
    # Another office's person is answered exactly as a missing one: nothing says they exist.
    assert (refused.status_code, refused.json()) == (missing.status_code, missing.json()) == (404, missing.json())
    assert (await offices.pamekasan.get(person)).status_code == 200

    async def found(client: AsyncClient, **query: str) -> set[str]:
        # Every page: other tests' people share the database, and the first 200 need not hold this test's.
        ids: set[str] = set()
        cursor: dict[str, str] = {}
        while True:
            page = await client.get("/v1/foreigners", params={"limit": "200", **query, **cursor})
            assert page.status_code == 200, page.text
            ids |= {item["foreigner_id"] for item in page.json()["items"]}
            if page.json()["next_cursor"] is None:
                return ids
            cursor = {"cursor": page.json()["next_cursor"]}

    both = {ours["foreigner_id"], theirs["foreigner_id"]}
    assert found_only(await found(offices.pamekasan), both) == {ours["foreigner_id"]}
    assert found_only(await found(offices.surabaya), both) == {theirs["foreigner_id"]}
    # Asking for the other area by name, or by passport, finds nobody either.
    assert await found(offices.surabaya, region="35.26") == set()
    passport = ours["passport"]["number"]
    assert await found(offices.surabaya, passport_number=passport) == set()
    assert await found(offices.pamekasan, passport_number=passport) == {ours["foreigner_id"]}


def found_only(found: set[str], among: set[str]) -> set[str]:
    """Of the people this test made, those found (other tests' people share the database)."""
    return found & among


@pytest.mark.parametrize(
    "change",
    [
        lambda client, who: client.patch(f"/v1/foreigners/{who}", json={"occupation": "trader"}),
        lambda client, who: client.post(f"/v1/foreigners/{who}/permits", json=permit()),
        lambda client, who: client.post(
            f"/v1/foreigners/{who}/departure", json={"port": "Juanda", "departed_on": "2026-11-02"}
        ),
        # Stale or not, the answer is the same: a version check would tell that the person exists.
        lambda client, who: client.patch(
            f"/v1/foreigners/{who}", json={"occupation": "trader"}, headers={"If-Match": '"99"'}
        ),
    ],
    ids=["details", "permit", "departure", "stale-version"],
)
async def test_another_offices_person_cannot_be_changed_and_nothing_is_written(
    offices: Offices, change: Callable[[AsyncClient, str], Awaitable[Response]]
) -> None:
    ours = await offices.living_in(offices.pamekasan, BANGKALAN)
    before = await offices.outbox_count()

    refused = await change(offices.surabaya, ours["foreigner_id"])

    assert refused.status_code == 404, refused.text
    assert refused.json()["detail"][0]["msg"] == "no such foreigner"
    assert await offices.outbox_count() == before
    again = await offices.pamekasan.get(f"/v1/foreigners/{ours['foreigner_id']}")
    assert again.json()["foreigner"]["version"] == ours["version"]
    # Their own office may make the same change.
    assert (await change(offices.pamekasan, ours["foreigner_id"])).status_code in {200, 201, 412}


async def test_a_move_is_recorded_by_the_office_moved_to_and_the_person_changes_office(offices: Offices) -> None:
    ours = await offices.living_in(offices.pamekasan, BANGKALAN)
    person = f"/v1/foreigners/{ours['foreigner_id']}"

    moved = await offices.surabaya.post(
        f"{person}/residence", json={"address": "Jl. Darmo 5", "village_code": SURABAYA, "since": "2026-11-02"}
    )

    assert moved.status_code == 200, moved.text
    assert (await offices.surabaya.get(person)).status_code == 200
    assert (await offices.pamekasan.get(person)).status_code == 404
    # Moving them back is not Pamekasan's to record on its own any more than any other change: it is Surabaya's
    # person now, unless the move brings them into Pamekasan's area.
    back = await offices.pamekasan.post(
        f"{person}/residence", json={"address": "Jl. Raya 1", "village_code": BANGKALAN, "since": "2026-11-03"}
    )
    assert back.status_code == 200
    # A move between two places of another office is never this office's.
    elsewhere = await offices.surabaya.post(
        f"{person}/residence", json={"address": "Jl. Raya 2", "village_code": "35.26.01.1001", "since": "2026-11-04"}
    )
    assert elsewhere.status_code == 404


async def test_a_hotels_office_records_its_guests_from_elsewhere_and_learns_nothing_more(offices: Offices) -> None:
    ours = await offices.living_in(offices.pamekasan, BANGKALAN)
    hotel = await offices.surabaya.post(
        "/v1/accommodations",
        json={"name": f"Hotel {uuid.uuid4().hex[:6]}", "address": "Jl. Tunjungan 1", "village_code": SURABAYA},
    )
    assert hotel.status_code == 201, hotel.text
    guest = {
        "full_name": ours["full_name"],
        "nationality": ours["nationality"],
        "passport_number": ours["passport"]["number"],
    }
    report = {"accommodation_id": hotel.json()["accommodation_id"], "guest": guest}

    recorded = await offices.surabaya.post("/v1/stay-reports", json={**report, "check_in": "2026-11-02"})
    # Recorded as reported, not checked against the guest's record: a refusal would tell when they arrived.
    early = await offices.surabaya.post("/v1/stay-reports", json={**report, "check_in": "2026-10-01"})

    assert recorded.status_code == 201, recorded.text
    assert set(recorded.json()) <= {"matched", "foreigner_id", "stay_id", "report_id"}  # ids, not the record
    assert recorded.headers["ETag"] == '"1"'  # not the person's version
    assert early.status_code == 201, early.text
    # The office's own endpoints, which answer with the whole record, are not a way round: the guest lives in
    # Bangkalan, and is Pamekasan's.
    direct = await offices.surabaya.post(
        f"/v1/foreigners/{ours['foreigner_id']}/stays",
        json={"provider": "Hotel Majapahit", "village_code": SURABAYA, "check_in": "2026-11-03"},
    )
    assert direct.status_code == 404
    assert (await offices.surabaya.get(f"/v1/foreigners/{ours['foreigner_id']}")).status_code == 404


async def test_a_visitor_who_checked_out_stays_the_office_of_the_hotel(offices: Offices) -> None:
    arrived = await offices.pamekasan.post("/v1/arrivals", json=arrival())
    assert arrived.status_code == 201
    person = f"/v1/foreigners/{arrived.json()['foreigner_id']}"
    stayed = await offices.pamekasan.post(
        f"{person}/stays", json={"provider": "Hotel Ningrat", "village_code": BANGKALAN, "check_in": "2026-11-01"}
    )
    assert stayed.status_code == 201, stayed.text
    out = await offices.pamekasan.post(
        f"{person}/stays/{stayed.json()['stay_id']}/check-out", json={"check_out": "2026-11-02"}
    )
    assert out.status_code == 200, out.text

    # No residence and no open stay: no place now, but they were Pamekasan's and stay so.
    assert (await offices.surabaya.get(person)).status_code == 404
    assert (await offices.surabaya.patch(person, json={"occupation": "trader"})).status_code == 404
    page = await offices.surabaya.get(
        "/v1/foreigners", params={"passport_number": arrived.json()["passport"]["number"]}
    )
    assert page.json()["items"] == []
    assert (await offices.pamekasan.get(person)).status_code == 200


async def test_a_returning_person_of_another_office_is_refused_by_passport_and_not_duplicated(
    offices: Offices,
) -> None:
    ours = await offices.living_in(offices.pamekasan, BANGKALAN)
    left = await offices.pamekasan.post(
        f"/v1/foreigners/{ours['foreigner_id']}/departure", json={"port": "Juanda", "departed_on": "2026-11-02"}
    )
    assert left.status_code == 200, left.text
    before = await offices.outbox_count()

    back = await offices.surabaya.post(
        "/v1/arrivals", json=arrival(passport=ours["passport"], arrived_on="2026-11-05", full_name=ours["full_name"])
    )

    assert back.status_code == 409, back.text
    assert back.json()["detail"][0]["loc"] == ["body", "passport", "number"]
    # Naming their passport as the previous one of a new passport tells nothing either: not whether the date of
    # birth given is theirs.
    for born in (ours["date_of_birth"], "1970-01-01"):
        renewed = await offices.surabaya.post(
            "/v1/arrivals",
            json=arrival(
                date_of_birth=born, nationality=ours["nationality"], previous_passport_number=ours["passport"]["number"]
            ),
        )
        assert renewed.status_code == 409, renewed.text
        assert "another immigration office's area" in renewed.json()["detail"][0]["msg"]
    assert await offices.outbox_count() == before
    # A new person with no place yet is every office's: the one that records where they live takes them.
    new = await offices.surabaya.post("/v1/arrivals", json=arrival())
    assert new.status_code == 201
    assert (await offices.pamekasan.get(f"/v1/foreigners/{new.json()['foreigner_id']}")).status_code == 200


async def test_an_operator_of_no_office_is_refused_where_the_register_has_several(offices: Offices) -> None:
    refused = await offices.everywhere.get("/v1/foreigners")
    assert refused.status_code == 403
    assert "--office" in refused.text
    assert (await offices.everywhere.post("/v1/arrivals", json=arrival())).status_code == 403


async def test_an_office_no_longer_in_the_register_gives_its_staff_nothing(offices: Offices) -> None:
    theirs = await offices.living_in(offices.surabaya, SURABAYA)
    register_variants.write(offices.register_file, register_variants.shipped())  # Surabaya taken out

    async def refused() -> bool:
        return (await offices.surabaya.get(f"/v1/foreigners/{theirs['foreigner_id']}")).status_code == 403

    await until(refused, what="the register's change taken", timeout_s=10)
    assert (await offices.surabaya.get("/v1/foreigners")).status_code == 403
    assert (await offices.surabaya.post("/v1/arrivals", json=arrival())).status_code == 403


async def test_an_office_imports_only_the_records_of_its_area(offices: Offices) -> None:
    rows = [
        row | {"residence_village_code": village}
        for row, village in zip(_rows(3), (SURABAYA, BANGKALAN, SURABAYA), strict=True)
    ]
    rejected: dict[int, str] = {}
    importer = Importer(
        offices.runtime.engine,
        ManualClock(START),
        import_id=f"offices-{uuid.uuid4().hex[:6]}",
        topic=offices.runtime.settings.kafka.catalog.registry_events.name,
        area=Area("kanim-surabaya", frozenset({"35.78"})),
    )

    summary = await importer.run(read(Path("records.csv"), io.StringIO(_csv(rows))), rejected.__setitem__)

    assert (summary.imported, summary.rejected) == (2, 1), rejected
    assert list(rejected) == [3]  # the file's third line (after the header): the Bangkalan record
    assert "another immigration office's area" in rejected[3]
    assert "35.26" not in rejected[3]  # the reason quotes no value
    imported = {row["passport_number"] for row in rows} - {rows[1]["passport_number"]}
    async with offices.runtime.sessions() as session:
        held = await session.scalars(
            select(foreigners.c.passport_number).where(
                foreigners.c.passport_number.in_([row["passport_number"] for row in rows])
            )
        )
        assert set(held) == imported


def test_operators_of_a_register_with_several_offices_are_added_to_one_of_them(
    tmp_path: Path, database_settings: dict[str, DatabaseSettings]
) -> None:
    register_file = two_offices(tmp_path / "register.yaml")
    environment = os.environ | {
        "TIMPORA_REGISTRY_DATABASE__URL": database_settings["registry"].url.get_secret_value(),
        "TIMPORA_REGISTER_FILE": str(register_file),
    }

    def add(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "timpora.registry.main", "operators", "add", *arguments],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )

    name = f"officer-{uuid.uuid4().hex[:8]}"
    unplaced = add(name, "--operator", "kasi")
    unknown = add(name, "--office", "pemkab-bangkalan", "--operator", "kasi")
    added = add(name, "--office", "kanim-surabaya", "--operator", "kasi")

    assert unplaced.returncode == 2
    assert "several immigration offices (kanim-pamekasan, kanim-surabaya)" in unplaced.stderr
    assert unknown.returncode == 2
    assert "pemkab-bangkalan is not an immigration office" in unknown.stderr
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().startswith("tmp_")


async def test_a_hotel_stay_elsewhere_does_not_make_a_visitor_another_offices(offices: Offices) -> None:
    # A visitor with no residence, placed by their stay at a hotel in Bangkalan: Pamekasan's. A hotel in Surabaya
    # reporting them records the stay, but does not make it where they are (that would hand them to Surabaya).
    arrived = await offices.pamekasan.post("/v1/arrivals", json=arrival())
    person = arrived.json()
    at_home = await offices.pamekasan.post(
        f"/v1/foreigners/{person['foreigner_id']}/stays",
        json={"provider": "Hotel Ningrat", "village_code": BANGKALAN, "check_in": "2026-11-01"},
    )
    assert at_home.status_code == 201, at_home.text
    hotel = await offices.surabaya.post(
        "/v1/accommodations",
        json={"name": f"Hotel {uuid.uuid4().hex[:6]}", "address": "Jl. Pemuda 3", "village_code": SURABAYA},
    )
    guest = {
        "full_name": person["full_name"],
        "nationality": person["nationality"],
        "passport_number": person["passport"]["number"],
    }

    reported = await offices.surabaya.post(
        "/v1/stay-reports",
        json={"accommodation_id": hotel.json()["accommodation_id"], "guest": guest, "check_in": "2026-11-03"},
    )

    assert reported.status_code == 201, reported.text
    assert (await offices.surabaya.get(f"/v1/foreigners/{person['foreigner_id']}")).status_code == 404
    record = await offices.pamekasan.get(f"/v1/foreigners/{person['foreigner_id']}")
    assert record.json()["foreigner"]["stay"]["village_code"] == BANGKALAN


async def test_a_move_in_refused_says_nothing_of_the_other_offices_record(offices: Offices) -> None:
    ours = await offices.living_in(offices.pamekasan, BANGKALAN)
    move = {"address": "Jl. Darmo 5", "village_code": SURABAYA}
    residence = f"/v1/foreigners/{ours['foreigner_id']}/residence"

    early = await offices.surabaya.post(residence, json={**move, "since": "2026-10-01"})
    stale = await offices.surabaya.post(residence, json={**move, "since": "2026-11-02"}, headers={"If-Match": '"99"'})

    assert (early.status_code, stale.status_code) == (422, 412)
    for refused in (early, stale):
        assert "another immigration office's area" in refused.json()["detail"][0]["msg"]
        assert "2026-11-01" not in refused.text
        assert str(ours["version"]) not in refused.json()["detail"][0]["msg"]


#: A step of a person's life across the two offices' areas: a residence reported, a hotel stay begun, the stay ended.
_STEP = st.one_of(
    st.tuples(st.just("residence"), st.sampled_from([BANGKALAN, SURABAYA])),
    st.tuples(st.just("stay"), st.sampled_from([BANGKALAN, SURABAYA])),
    st.tuples(st.just("check-out"), st.none()),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_STEP, max_size=5), departs=st.booleans())
async def test_an_offices_reads_search_changes_and_sql_agree_on_whose_person_it_is(
    offices: Offices, steps: list[tuple[str, str | None]], *, departs: bool
) -> None:
    # One rule, written four times: the snapshot's place (``known_place``, for a read), the row's (``in_area``, for
    # a change), the search's (``known_place_sql``) and this test's own reading of the rule — where they live, else
    # the village of their last stay, else nowhere (every office's). Each step is made by the office the rule gives.
    clients = {"kanim-pamekasan": offices.pamekasan, "kanim-surabaya": offices.surabaya}
    areas = {
        "kanim-pamekasan": Area("kanim-pamekasan", frozenset({"35.26"})),
        "kanim-surabaya": Area("x", frozenset({"35.78"})),
    }
    office_of = {BANGKALAN: "kanim-pamekasan", SURABAYA: "kanim-surabaya"}
    arrived = await offices.pamekasan.post("/v1/arrivals", json=arrival())
    assert arrived.status_code == 201, arrived.text
    who, passport = arrived.json()["foreigner_id"], arrived.json()["passport"]["number"]
    residence: str | None = None
    stay: tuple[str, str] | None = None  # the last stay: its id and village
    open_stay = False
    day = 2

    for kind, village in [*steps, *([("departure", None)] if departs else [])]:
        place = residence or (stay[1] if stay else None)
        on = f"2026-11-{day:02d}"
        day += 1
        if kind == "residence":
            assert village is not None
            by = office_of[village] if place is None or office_of[village] != office_of[place] else office_of[place]
            done = await clients[by].post(
                f"/v1/foreigners/{who}/residence", json={"address": "Jl. Raya 1", "village_code": village, "since": on}
            )
            residence = village
        elif kind == "stay":
            assert village is not None
            by = office_of[place or village]
            done = await clients[by].post(
                f"/v1/foreigners/{who}/stays",
                json={"provider": "Hotel Ningrat", "village_code": village, "check_in": on},
            )
            if done.status_code == 201:
                stay, open_stay = (done.json()["stay_id"], village), True
        elif kind == "check-out":
            if not open_stay or stay is None or place is None:
                continue
            done = await clients[office_of[place]].post(
                f"/v1/foreigners/{who}/stays/{stay[0]}/check-out", json={"check_out": on}
            )
            open_stay = False
        else:
            by = office_of[place] if place is not None else "kanim-pamekasan"
            done = await clients[by].post(f"/v1/foreigners/{who}/departure", json={"port": "Juanda", "departed_on": on})
        assert done.status_code in {200, 201}, (kind, done.text)

        place = residence or (stay[1] if stay else None)
        async with offices.runtime.sessions() as session:
            in_sql = await session.scalar(
                select(known_place_sql())
                .select_from(foreigners.outerjoin(stays, stays.c.id == foreigners.c.stay_id))
                .where(foreigners.c.id == uuid.UUID(who))
            )
        assert in_sql == place
        for office, client in clients.items():
            theirs = areas[office].holds(place)
            read = await client.get(f"/v1/foreigners/{who}")
            assert read.status_code == (200 if theirs else 404), (office, place)
            if theirs:
                assert known_place(ForeignerSnapshot.model_validate(read.json()["foreigner"])) == place
            listed = await client.get("/v1/foreigners", params={"passport_number": passport})
            assert (who in {item["foreigner_id"] for item in listed.json()["items"]}) == theirs, (office, place)
            # A change (here, of occupation) by the office whose person it is, and by it alone.
            changed = await client.patch(f"/v1/foreigners/{who}", json={"occupation": f"trader {office}"})
            assert changed.status_code == (200 if theirs else 404), (office, place, changed.text)
