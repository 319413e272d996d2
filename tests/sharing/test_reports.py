"""The regency's reports: the monthly recap and the foreigners in an area, through the real HTTP API and the
command, over projections (and their history) built from real events on the real PostgreSQL; a past month
answers the same after later changes, within the agreement's fields and jurisdiction, and is logged."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from tests.sharing.shipped import own_member, terms, variant
from tests.support.clock import ManualClock
from tests.support.kafka import new_namespace
from tests.support.waiting import until
from timpora.common import regions, register
from timpora.common.db.engine import make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.disclosures import log_table
from timpora.common.events import CloudEvent, new_event
from timpora.common.events.payloads import (
    Contract,
    ForeignerSnapshot,
    ForeignerUpdated,
    Movement,
    Passport,
    Permit,
    PermitEndReason,
    PermitStatus,
    PermitType,
    PresenceStatus,
    Residence,
    Sex,
    Sponsor,
)
from timpora.common.kafka.admin import ensure_topics
from timpora.common.kafka.producer import EventProducer
from timpora.common.register.agreements import Agreement
from timpora.common.service import ServiceRuntime
from timpora.common.settings import DatabaseSettings, KafkaSettings, OverstaySettings, RelaySettings
from timpora.common.topics import TopicCatalog
from timpora.registry.bulk.generator import generate, write
from timpora.registry.bulk.importer import Importer
from timpora.registry.bulk.records import read
from timpora.registry.main import SERVICE as REGISTRY
from timpora.registry.models import foreigners as registry_foreigners
from timpora.registry.models import outbox as registry_outbox
from timpora.registry.models import permits as registry_permits
from timpora.registry.models import sponsors as registry_sponsors
from timpora.registry.settings import ExpirySettings, RegistrySettings
from timpora.sharing import access, projection, rebuild, reports
from timpora.sharing.main import SERVICE
from timpora.sharing.models import inbox as sharing_inbox
from timpora.sharing.models import projection_history
from timpora.sharing.settings import SharingSettings

WIB, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Jayapura")
LAJING, BALUNG, BANGKALAN_KOTA, SAMPANG, GURABESI = (
    "35.26.05.2003",  # Lajing, Kecamatan Arosbaya
    "35.26.05.2004",  # Balung, Kecamatan Arosbaya
    "35.26.01.1001",  # Kecamatan Bangkalan
    "35.27.01.2001",  # Kabupaten Sampang: outside the regency
    "91.71.01.1001",  # Kota Jayapura (WIT)
)
#: Noon in Bangkalan two days into December: November is over, December under way.
DECEMBER_2 = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
OFFLINE = TopicCatalog("test-offline")

#: A regency agreement with every field the recap counts on, arrivals and departures included.
REGENCY_FIELDS = [
    "full_name",
    "nationality",
    "occupation",
    "sponsor_name",
    "residence_village_code",
    "permit_number",
    "permit_type",
    "permit_expires_on",
    "permit_status",
    "presence",
    "arrived_on",
    "departed_on",
]
#: The village head: names, nationalities, occupations and the village; no sponsor, permit or movements.
VILLAGE_FIELDS = ["full_name", "nationality", "occupation", "residence_village_code", "presence"]
#: An agency that may count people but see neither nationality nor place.
BLIND_FIELDS = ["full_name", "presence"]


PURPOSE = "Testing the monthly recap of the regency's TIMPORA meeting."


def _member(agency_id: str, jurisdiction: list[str], fields: list[str], version: int = 1) -> dict[str, Any]:
    """A member of the test's own whose agreement covers its whole ``jurisdiction``."""
    return own_member(agency_id, jurisdiction, terms(fields, version=version, purpose=PURPOSE))


@dataclass(frozen=True)
class Agencies:
    """Agencies of this test's own (ids no other test uses), so reports count only this test's people."""

    regency: str
    village: str
    blind: str
    path: Path

    @classmethod
    def write(cls, directory: Path) -> Agencies:
        suffix = uuid.uuid4().hex[:10]
        found = cls(f"regency-{suffix}", f"village-{suffix}", f"blind-{suffix}", directory / "register.yaml")
        found.rewrite(regency_fields=REGENCY_FIELDS, version=1)
        return found

    def rewrite(self, *, regency_fields: list[str], version: int) -> None:
        """The shipped register with this test's three members added."""
        added = [
            _member(self.regency, ["35.26"], regency_fields, version),
            _member(self.village, [LAJING], VILLAGE_FIELDS),
            _member(self.blind, ["35.26"], BLIND_FIELDS),
        ]
        variant(self.path.parent, added=added, name=self.path.name)

    def load(self) -> dict[str, Agreement]:
        return register.load(self.path).agreements


@dataclass
class Person:
    """A foreigner whose snapshot the test changes event by event, as the registry would."""

    snapshot: ForeignerSnapshot
    village: str | None

    @classmethod
    def new(
        cls,
        nationality: str,
        village: str | None,
        *,
        sponsor: str | None = None,
        expires_on: date | None = None,
        permit_type: PermitType = PermitType.ITAS,
        arrived_on: date | None = None,
    ) -> Person:
        foreigner_id = uuid.uuid4()
        permit = None
        if expires_on is not None:
            permit = Permit(
                permit_id=uuid.uuid4(),
                number=f"P{uuid.uuid4().hex[:10].upper()}",
                type=permit_type,
                issued_on=expires_on - timedelta(days=180),
                expires_on=expires_on,
                status=PermitStatus.ACTIVE,
            )
        snapshot = ForeignerSnapshot(
            foreigner_id=foreigner_id,
            version=1,
            full_name=f"{nationality} {foreigner_id.hex[:6]}",
            sex=Sex.FEMALE,
            date_of_birth=date(1990, 1, 1),
            nationality=nationality,
            passport=Passport(
                number=f"X{foreigner_id.hex[:9].upper()}", issuing_country=nationality, expires_on=date(2031, 1, 1)
            ),
            occupation="teacher",
            sponsor=None if sponsor is None else Sponsor(sponsor_id=uuid.uuid4(), name=sponsor, kind="employer"),
            residence=None
            if village is None
            else Residence(address="Jl. Raya 1", village_code=village, since=date(2026, 1, 1)),
            permit=permit,
            presence=PresenceStatus.PRESENT,
            arrival=None if arrived_on is None else Movement(port="Juanda International Airport", on=arrived_on),
        )
        return cls(snapshot, village)

    @property
    def id(self) -> str:
        return str(self.snapshot.foreigner_id)

    def event(self, at: datetime) -> CloudEvent[Contract]:
        """The registry's event of the person as they are now, at ``at``."""
        data = ForeignerUpdated(foreigner=self.snapshot, jurisdiction=self.village, changed_fields=["residence"])
        return new_event(data, source="/timpora/registry", subject=self.id, time=at)

    def change(self, at: datetime, **updates: Any) -> CloudEvent[Contract]:
        self.snapshot = self.snapshot.model_copy(update={"version": self.snapshot.version + 1, **updates})
        return self.event(at)

    def moves(self, at: datetime, village: str) -> CloudEvent[Contract]:
        self.village = village
        return self.change(at, residence=Residence(address="Jl. Baru 2", village_code=village, since=at.date()))

    def departs(self, at: datetime, on: date) -> CloudEvent[Contract]:
        permit = self.snapshot.permit
        ended = None
        if permit is not None:
            ended = permit.model_copy(
                update={"status": PermitStatus.ENDED, "ended_on": on, "end_reason": PermitEndReason.EXIT}
            )
        return self.change(
            at,
            presence=PresenceStatus.DEPARTED,
            departure=Movement(port="Juanda International Airport", on=on),
            permit=ended,
        )


def _at(day: date) -> datetime:
    """Noon in Bangkalan on ``day``."""
    return datetime(day.year, day.month, day.day, 5, tzinfo=UTC)


@dataclass
class November:
    """The regency in November 2026, as the test's events made it."""

    a: Person  # CHN, Lajing, PT Garam Madura, arrived 5 Nov, permit ends 20 Dec (expiring)
    b: Person  # CHN, Balung (Arosbaya), PT Garam Madura, permit's last day 10 Nov (20 days overstayed)
    c: Person  # KOR, Kecamatan Bangkalan, no sponsor, visit permit's last day 1 Sep (90 days overstayed)
    d: Person  # MYS, Lajing, arrived in October, left on 20 Nov
    e: Person  # AUS, Sampang: never in the regency's view
    h: Person  # IND, Kecamatan Bangkalan, arrived 30 Nov, registered 23:30 WIB on 30 Nov: counted
    g: Person  # USA, Lajing, registered 01:00 WIB on 1 Dec: not in November

    def events(self) -> list[CloudEvent[Contract]]:
        return [
            self.c.event(_at(date(2026, 8, 1))),
            self.b.event(_at(date(2026, 10, 1))),
            self.d.event(_at(date(2026, 10, 1))),
            self.a.event(_at(date(2026, 11, 5))),
            self.e.event(_at(date(2026, 11, 6))),
            self.d.departs(_at(date(2026, 11, 20)), date(2026, 11, 20)),
            self.h.event(datetime(2026, 11, 30, 16, 30, tzinfo=UTC)),
            self.g.event(datetime(2026, 11, 30, 18, 0, tzinfo=UTC)),
        ]


def _november() -> November:
    return November(
        a=Person.new(
            "CHN", LAJING, sponsor="PT Garam Madura", expires_on=date(2026, 12, 20), arrived_on=date(2026, 11, 5)
        ),
        b=Person.new(
            "CHN", BALUNG, sponsor="PT Garam Madura", expires_on=date(2026, 11, 10), arrived_on=date(2026, 1, 10)
        ),
        c=Person.new(
            "KOR",
            BANGKALAN_KOTA,
            expires_on=date(2026, 9, 1),
            permit_type=PermitType.VISIT,
            arrived_on=date(2026, 8, 1),
        ),
        d=Person.new(
            "MYS", LAJING, expires_on=date(2026, 12, 30), permit_type=PermitType.VISIT, arrived_on=date(2026, 10, 1)
        ),
        e=Person.new("AUS", SAMPANG, expires_on=date(2027, 1, 1), arrived_on=date(2026, 11, 6)),
        h=Person.new(
            "IND",
            BANGKALAN_KOTA,
            sponsor="Universitas Trunojoyo",
            expires_on=date(2027, 6, 1),
            arrived_on=date(2026, 11, 30),
        ),
        g=Person.new("USA", LAJING, expires_on=date(2027, 6, 1), arrived_on=date(2026, 12, 1)),
    )


@dataclass
class Sharing:
    client: AsyncClient
    runtime: ServiceRuntime
    clock: ManualClock
    agencies: Agencies
    keys: dict[str, str]
    world: November

    async def get(self, agency: str, path: str, **params: Any) -> Response:
        return await self.client.get(path, params=params, headers={"Authorization": f"Bearer {self.keys[agency]}"})

    async def apply(self, events: Iterable[CloudEvent[Contract]]) -> None:
        in_force = list(self.agencies.load().values())
        async with self.runtime.sessions() as session, session.begin():
            for event in events:
                await projection.apply(session, event, in_force, self.clock.now(), OFFLINE)


@pytest.fixture
async def sharing(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> AsyncIterator[Sharing]:
    agencies = Agencies.write(tmp_path)
    clock = ManualClock(DECEMBER_2)
    settings_ = SharingSettings(
        kafka=kafka_settings, database=database_settings["sharing"], register_file=agencies.path
    )
    app = SERVICE.create_app(settings_, clock=clock)
    runtime: ServiceRuntime = app.state.runtime
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        async with runtime.sessions() as session, session.begin():
            keys = {
                agency: (await access.KEYS.issue(session, agency))[1]
                for agency in (agencies.regency, agencies.village, agencies.blind)
            }
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://sharing") as client:
            started = Sharing(client, runtime, clock, agencies, keys, _november())
            await started.apply(started.world.events())
            yield started


def _json(response: Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _districts(tally: dict[str, Any]) -> dict[str | None, tuple[str | None, int, dict[str, int] | None]]:
    return {entry["code"]: (entry["name"], entry["total"], entry["by_nationality"]) for entry in tally["by_district"]}


async def test_the_monthly_recap_counts_november_as_it_ended(sharing: Sharing) -> None:
    recap = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/monthly-recap", month="2026-11"))

    assert (recap["month"], recap["complete"], recap["presence"], recap["time_zone"]) == (
        "2026-11",
        True,
        "present",
        "Asia/Jakarta",
    )
    assert datetime.fromisoformat(recap["as_of"]) == datetime(2026, 12, 1, tzinfo=WIB) - timedelta(microseconds=1)
    people = recap["people"]
    assert people["total"] == 4, "a, b, c and h (d left, e lives in Sampang, g came after the month)"
    assert people["by_nationality"] == {"CHN": 2, "IND": 1, "KOR": 1}
    assert _districts(people) == {
        "35.26.01": ("Bangkalan", 2, {"IND": 1, "KOR": 1}),
        "35.26.05": ("Arosbaya", 2, {"CHN": 2}),
    }
    assert recap["arrivals"]["total"] == 2  # a on 5 Nov, h on 30 Nov
    assert recap["arrivals"]["by_nationality"] == {"CHN": 1, "IND": 1}
    assert recap["departures"]["total"] == 1
    assert _districts(recap["departures"]) == {"35.26.05": ("Arosbaya", 1, {"MYS": 1})}
    assert recap["expiring_within_30_days"]["total"] == 1  # a: 20 days left on 30 Nov
    assert recap["overstaying"]["up_to_60_days"]["by_nationality"] == {"CHN": 1}  # b: 20 days
    assert recap["overstaying"]["over_60_days"]["by_nationality"] == {"KOR": 1}  # c: 90 days
    assert recap["sponsors"] == [
        {"sponsor_name": "PT Garam Madura", "people": 2, "expiring_within_30_days": 1, "overstaying": 1},
        {"sponsor_name": "Universitas Trunojoyo", "people": 1, "expiring_within_30_days": 0, "overstaying": 0},
        {"sponsor_name": None, "people": 1, "expiring_within_30_days": 0, "overstaying": 1},
    ]
    assert recap["omitted"] == {}
    anyone = _json(
        await sharing.get(sharing.agencies.regency, "/v1/reports/monthly-recap", month="2026-11", presence="any")
    )
    assert anyone["people"]["by_nationality"] == {"CHN": 2, "IND": 1, "KOR": 1, "MYS": 1}  # d, who left, too
    assert anyone["overstaying"] == recap["overstaying"], "someone who left overstays nothing"


async def test_a_past_month_answers_the_same_after_later_changes(sharing: Sharing) -> None:
    world = sharing.world
    before = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/monthly-recap", month="2026-11"))
    area_before = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/area", month="2026-11"))

    late = Person.new("NLD", LAJING, expires_on=date(2027, 3, 1), arrived_on=date(2026, 11, 29))
    await sharing.apply(
        [
            world.a.departs(_at(date(2026, 12, 3)), date(2026, 12, 3)),
            world.b.moves(_at(date(2026, 12, 4)), SAMPANG),
            world.c.change(_at(date(2026, 12, 5)), nationality="JPN"),
            late.event(_at(date(2026, 12, 5))),  # arrived in November, registered in December
        ]
    )
    sharing.clock.current = datetime(2026, 12, 10, 5, 0, tzinfo=UTC)
    after = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/monthly-recap", month="2026-11"))
    area_after = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/area", month="2026-11"))
    december = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/monthly-recap"))

    assert after == before
    assert area_after == area_before
    assert {item["foreigner_id"] for item in area_after["items"]} == {world.a.id, world.b.id, world.c.id, world.h.id}
    assert (december["month"], december["complete"]) == ("2026-12", False)
    assert datetime.fromisoformat(december["as_of"]) == sharing.clock.current
    assert december["people"]["by_nationality"] == {"IND": 1, "JPN": 1, "NLD": 1, "USA": 1}
    assert december["departures"]["by_nationality"] == {"CHN": 1}
    assert december["arrivals"]["by_nationality"] == {"USA": 1}


async def test_the_area_list_names_the_regions_and_shows_the_agreements_fields(sharing: Sharing) -> None:
    world = sharing.world
    arosbaya = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/area", region="35.26.05"))
    departed = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/area", presence="departed"))
    village = _json(await sharing.get(sharing.agencies.village, "/v1/reports/area"))

    assert (arosbaya["region_name"], arosbaya["month"], arosbaya["total"]) == ("Arosbaya", None, 3)
    # By village code (Lajing 35.26.05.2003 before Balung 35.26.05.2004), then by name ("CHN …" before "USA …").
    assert [item["foreigner_id"] for item in arosbaya["items"]] == [world.a.id, world.g.id, world.b.id]
    first = arosbaya["items"][0]
    assert (first["residence_village_name"], first["residence_district_name"]) == ("Lajing", "Arosbaya")
    a = next(item for item in arosbaya["items"] if item["foreigner_id"] == world.a.id)
    assert (a["sponsor_name"], a["occupation"], a["permit_type"], a["days_to_expiry"]) == (
        "PT Garam Madura",
        "teacher",
        "itas",
        18,
    )
    assert [item["foreigner_id"] for item in departed["items"]] == [world.d.id]
    assert {item["foreigner_id"] for item in village["items"]} == {world.a.id, world.g.id}
    assert set(village["items"][0]) == {"foreigner_id", "version", *VILLAGE_FIELDS, *reports.REGION_NAMES}


async def test_the_agreement_limits_the_recap_to_its_fields_and_jurisdiction(sharing: Sharing) -> None:
    village = _json(await sharing.get(sharing.agencies.village, "/v1/reports/monthly-recap", month="2026-11"))
    blind = _json(await sharing.get(sharing.agencies.blind, "/v1/reports/monthly-recap", month="2026-11"))
    outside = await sharing.get(sharing.agencies.village, "/v1/reports/area", region="35.26.01")
    placeless = await sharing.get(sharing.agencies.blind, "/v1/reports/area", region="35.26")

    assert village["people"]["total"] == 1  # a: d left, g came in December, the rest live elsewhere
    assert _districts(village["people"]) == {"35.26.05": ("Arosbaya", 1, {"CHN": 1})}
    assert (village["arrivals"], village["expiring_within_30_days"], village["overstaying"], village["sponsors"]) == (
        None,
        None,
        None,
        None,
    )
    assert village["omitted"] == {
        "arrivals": "your agreement does not include arrived_on",
        "departures": "your agreement does not include departed_on",
        "expiring_within_30_days": "your agreement does not include permit_expires_on",
        "overstaying": "your agreement does not include permit_expires_on",
        "sponsors": "your agreement does not include sponsor_name",
    }
    assert blind["people"] == {"total": 4, "by_nationality": None, "by_district": None}
    assert set(blind["omitted"]) >= {"by_nationality", "by_district"}
    assert "CHN" not in json.dumps(blind)
    assert outside.status_code == placeless.status_code == 422
    assert outside.json()["detail"] == [
        {"loc": ["query", "region"], "msg": "outside your jurisdiction", "type": "forbidden_region"}
    ]
    assert placeless.json()["detail"][0]["msg"] == "your agreement does not include residence_village_code"


async def _last_disclosure(sharing: Sharing, agency: str) -> Any:
    async with sharing.runtime.sessions() as session:
        return (
            await session.execute(
                select(log_table).where(log_table.c.agency_id == agency).order_by(log_table.c.id.desc()).limit(1)
            )
        ).one()


async def test_every_report_is_in_the_disclosure_log_with_everyone_it_counts(sharing: Sharing) -> None:
    world = sharing.world
    await sharing.get(sharing.agencies.regency, "/v1/reports/monthly-recap", month="2026-11")
    recap = await _last_disclosure(sharing, sharing.agencies.regency)
    listed = _json(await sharing.get(sharing.agencies.regency, "/v1/reports/area", region="35.26.01"))
    area = await _last_disclosure(sharing, sharing.agencies.regency)

    assert (recap.channel, recap.reference) == ("api", "GET /v1/reports/monthly-recap")
    assert recap.query == {"month": "2026-11"}
    assert {str(record) for record in recap.record_ids} == {world.a.id, world.b.id, world.c.id, world.d.id, world.h.id}
    assert "monthly recap" in recap.purpose
    assert recap.fields == sorted(REGENCY_FIELDS)
    assert area.reference == "GET /v1/reports/area"
    assert (
        {str(record) for record in area.record_ids}
        == {item["foreigner_id"] for item in listed["items"]}
        == {world.c.id, world.h.id}
    )


async def test_the_reports_as_csv(sharing: Sharing) -> None:
    recap = await sharing.get(sharing.agencies.regency, "/v1/reports/monthly-recap.csv", month="2026-11")
    area = await sharing.get(sharing.agencies.regency, "/v1/reports/area.csv", month="2026-11")

    assert recap.status_code == area.status_code == 200
    assert recap.headers["content-type"].startswith("text/csv")
    assert f"timpora-recap-{sharing.agencies.regency}-2026-11.csv" in recap.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(recap.text)))
    assert tuple(rows[0]) == reports.RECAP_COLUMNS
    cells = {
        (row["section"], row["district_code"], row["nationality"], row["sponsor_name"]): int(row["count"])
        for row in rows
    }
    assert cells[("people", "", "", "")] == 4
    assert cells[("people", "35.26.05", "CHN", "")] == 2
    assert cells[("arrivals", "35.26.01", "IND", "")] == 1
    assert cells[("overstaying_over_60_days", "35.26.01", "KOR", "")] == 1
    assert cells[("sponsor_people", "", "", "PT Garam Madura")] == 2
    assert any(row["district_name"] == "Arosbaya" for row in rows)
    listed = list(csv.DictReader(io.StringIO(area.text)))
    agreement = sharing.agencies.load()[sharing.agencies.regency]
    assert list(listed[0]) == reports.area_columns(agreement)
    assert {row["foreigner_id"] for row in listed} == {
        sharing.world.a.id,
        sharing.world.b.id,
        sharing.world.c.id,
        sharing.world.h.id,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"month": "2026-13"}, "month"),
        ({"month": "Nov 2026"}, "month"),
        ({"month": "2027-01"}, "month"),  # not begun yet on 2 December 2026
        ({"presence": "abroad"}, "presence"),
        ({"region": "99.99"}, "region"),
        ({"surprise": "x9z"}, "surprise"),
    ],
)
async def test_bad_input_is_refused_field_by_field_without_echoing_it(
    sharing: Sharing, params: dict[str, str], field: str
) -> None:
    path = "/v1/reports/area" if "region" in params else "/v1/reports/monthly-recap"
    response = await sharing.get(sharing.agencies.regency, path, **params)

    assert response.status_code == 422
    assert [problem["loc"][-1] for problem in response.json()["detail"]] == [field]
    assert next(iter(params.values())) not in response.text


def _command(database: DatabaseSettings, agencies: Agencies, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {
        "TIMPORA_SHARING_DATABASE__URL": database.url.get_secret_value(),
        "TIMPORA_REGISTER_FILE": str(agencies.path),
    }
    return subprocess.run(  # noqa: S603 - the test's own command line
        [sys.executable, "-m", "timpora.sharing.main", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_the_recap_command_prints_what_the_api_answers_and_logs_it(
    sharing: Sharing, database_settings: dict[str, DatabaseSettings]
) -> None:
    database, agencies = database_settings["sharing"], sharing.agencies
    as_json = _command(database, agencies, "recap", agencies.regency, "--month", "2026-11")
    as_csv = _command(database, agencies, "recap", agencies.regency, "--month", "2026-11", "--format", "csv")
    area = _command(database, agencies, "area", agencies.regency, "--region", "35.26.05", "--month", "2026-11")
    future = _command(database, agencies, "recap", agencies.regency, "--month", "2999-01")
    unknown = _command(database, agencies, "recap", "no-such-agency")
    logged = await _last_disclosure(sharing, agencies.regency)
    api = _json(await sharing.get(agencies.regency, "/v1/reports/monthly-recap", month="2026-11"))
    api_csv = await sharing.get(agencies.regency, "/v1/reports/monthly-recap.csv", month="2026-11")

    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == api
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines() == api_csv.text.splitlines()
    assert area.returncode == 0, area.stderr
    assert {item["foreigner_id"] for item in json.loads(area.stdout)["items"]} == {
        sharing.world.a.id,
        sharing.world.b.id,
    }
    # Handed over by the command, under no key.
    assert (logged.channel, logged.reference, logged.key_id) == ("command", "timpora-sharing area", None)
    assert logged.query == {"month": "2026-11", "presence": "present", "format": "json", "region": "35.26.05"}
    assert {str(record) for record in logged.record_ids} == {sharing.world.a.id, sharing.world.b.id}
    assert future.returncode == 1
    assert "has not begun yet" in future.stderr
    assert unknown.returncode == 1
    assert "no agreement in force for agency no-such-agency" in unknown.stderr


# --- the history under rebuilds ----------------------------------------------------------------------------


@pytest.fixture
async def sessions(database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[Any]:
    engine = make_engine(database_settings["sharing"], application_name="test", schema="sharing")
    await upgrade(engine, "timpora.sharing", schema="sharing")
    yield make_session_factory(engine)
    await engine.dispose()


async def _history(sessions: Any, agency: str) -> list[tuple[Any, ...]]:
    history = projection_history.c
    async with sessions() as session:
        rows = await session.execute(
            select(
                history.foreigner_id,
                history.version,
                history.agreement_version,
                history.event_type,
                history.occurred_at,
                history.visible,
                history.record,
                history.time_zone,
            )
            .where(history.agency_id == agency)
            .order_by(history.foreigner_id, history.version)
        )
        return [tuple(row) for row in rows]


async def test_a_rebuild_rebuilds_the_history_too(kafka_settings: KafkaSettings, sessions: Any, tmp_path: Path) -> None:
    agencies = Agencies.write(tmp_path)
    regency_v1 = agencies.load()[agencies.regency]
    world = _november()
    events = world.events()
    topic = kafka_settings.catalog.registry_events.name
    await ensure_topics(kafka_settings, [kafka_settings.catalog.registry_events])
    producer = EventProducer(kafka_settings, client_id="test")
    await producer.start()
    try:
        for event in events:
            await producer.publish(topic, event)
    finally:
        await producer.stop()
    async with sessions() as session, session.begin():
        for event in events:
            await projection.apply(session, event, [regency_v1], DECEMBER_2, OFFLINE)
    live = await _history(sessions, agencies.regency)
    async with sessions() as session, session.begin():
        recap_v1, _ = await reports.monthly_recap(
            session,
            regency_v1,
            reports.period(regency_v1, date(2026, 11, 1), DECEMBER_2),
            "present",
            rule=OverstaySettings(),
        )

    # Built before the history was kept: the agency is rebuilt at the next start.
    async with sessions() as session, session.begin():
        await session.execute(delete(projection_history).where(projection_history.c.agency_id == agencies.regency))
    assert await rebuild.stale_agencies(sessions, [regency_v1]) == [regency_v1]
    await rebuild.rebuild(sessions, kafka_settings, topic, [regency_v1], DECEMBER_2)
    assert await _history(sessions, agencies.regency) == live
    assert await rebuild.stale_agencies(sessions, [regency_v1]) == []
    assert {row[0] for row in live} == {
        world.a.snapshot.foreigner_id,
        world.b.snapshot.foreigner_id,
        world.c.snapshot.foreigner_id,
        world.d.snapshot.foreigner_id,
        world.h.snapshot.foreigner_id,
        world.g.snapshot.foreigner_id,
    }

    # A changed agreement without the sponsor: every state rewritten under it, the sponsor gone from all of them.
    agencies.rewrite(regency_fields=[name for name in REGENCY_FIELDS if name != "sponsor_name"], version=2)
    regency_v2 = agencies.load()[agencies.regency]
    await rebuild.rebuild(sessions, kafka_settings, topic, [regency_v2], DECEMBER_2)
    rewritten = await _history(sessions, agencies.regency)
    async with sessions() as session, session.begin():
        recap_v2, _ = await reports.monthly_recap(
            session,
            regency_v2,
            reports.period(regency_v2, date(2026, 11, 1), DECEMBER_2),
            "present",
            rule=OverstaySettings(),
        )

    assert len(rewritten) == len(live)
    assert {row[2] for row in rewritten} == {2}
    assert not any(row[6] and "sponsor_name" in row[6] for row in rewritten)
    assert recap_v2.sponsors is None
    assert recap_v2.model_dump(exclude={"agreement_version", "sponsors", "omitted"}) == recap_v1.model_dump(
        exclude={"agreement_version", "sponsors", "omitted"}
    )


# --- the recap against an independent count ----------------------------------------------------------------


def _property_agreement() -> Agreement:
    # Bangkalan (WIB) and Jayapura (WIT): the agency counts by its own calendar, each person's days by theirs.
    agency_id = f"prop-{uuid.uuid4().hex[:12]}"
    return Agreement.model_validate(
        terms(REGENCY_FIELDS, purpose=PURPOSE, jurisdiction=["35.26", "91.71"])
        | {"agency_id": agency_id, "agency_name": f"Test agency {agency_id}"}
    )


PROPERTY_VILLAGES = [LAJING, BALUNG, BANGKALAN_KOTA, SAMPANG, GURABESI, None]
PROPERTY_NOW = datetime(2026, 12, 15, 5, 0, tzinfo=UTC)
# Days on the edges as often as anywhere else: a month's first and last day, and permits whose last day is
# the month's last (0 days left), 30 days after it, or 60 or 61 days before it (in WIB, and a day later in WIT).
EDGE_DAYS = [
    date(2026, 8, 31),
    date(2026, 9, 1),
    date(2026, 9, 2),
    date(2026, 9, 30),
    date(2026, 10, 1),
    date(2026, 10, 2),
    date(2026, 10, 31),
    date(2026, 11, 1),
    date(2026, 11, 30),
    date(2026, 12, 1),
    date(2026, 12, 30),
    date(2026, 12, 31),
]
autumn = st.sampled_from(EDGE_DAYS) | st.dates(min_value=date(2026, 8, 1), max_value=date(2027, 1, 31))
# And events registered a moment before or at midnight in Bangkalan as a month ends.
EDGE_MOMENTS = [
    datetime(2026, 10, 31, 16, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 10, 31, 17, 0, tzinfo=UTC),
    datetime(2026, 11, 30, 16, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 11, 30, 17, 0, tzinfo=UTC),
]
moments = st.sampled_from(EDGE_MOMENTS) | st.datetimes(
    min_value=datetime(2026, 9, 1),  # noqa: DTZ001 - Hypothesis takes naive bounds and adds the zone
    max_value=datetime(2026, 12, 14),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def states(draw: st.DrawFn) -> dict[str, Any]:
    """One state of a person: where they live, whether they are here, their permit, sponsor and movements."""
    expires = draw(st.none() | autumn)
    return {
        "village": draw(st.sampled_from(PROPERTY_VILLAGES)),
        "nationality": draw(st.sampled_from(["CHN", "KOR", "MYS"])),
        "presence": draw(st.sampled_from([PresenceStatus.PRESENT, PresenceStatus.PRESENT, PresenceStatus.DEPARTED])),
        "sponsor": draw(st.sampled_from([None, "PT Garam Madura", "PT PAL Indonesia"])),
        "permit": None
        if expires is None
        else (
            draw(
                st.sampled_from(
                    [PermitStatus.ACTIVE, PermitStatus.EXTENDED, PermitStatus.EXPIRED, PermitStatus.REVOKED]
                )
            ),
            expires,
        ),
        "arrived_on": draw(st.none() | autumn),
        "departed_on": draw(st.none() | autumn),
    }


@dataclass
class Step:
    at: datetime
    event: CloudEvent[Contract]
    state: dict[str, Any]


@dataclass
class Story:
    foreigner_id: uuid.UUID
    steps: list[Step] = field(default_factory=list)


def _stories(drawn: list[tuple[list[datetime], list[dict[str, Any]]]]) -> list[Story]:
    stories = []
    for moments_, states_ in drawn:
        person = Person.new("CHN", None)
        story = Story(person.snapshot.foreigner_id)
        for version, (at, state) in enumerate(zip(sorted(moments_), states_, strict=False), start=1):
            permit = None
            if state["permit"] is not None:
                status, expires = state["permit"]
                permit = Permit(
                    permit_id=uuid.uuid4(),
                    number="P1",
                    type=PermitType.ITAS,
                    issued_on=expires - timedelta(days=200),
                    expires_on=expires,
                    status=status,
                )
            person.village = state["village"]
            person.snapshot = person.snapshot.model_copy(
                update={
                    "version": version,
                    "nationality": state["nationality"],
                    "presence": state["presence"],
                    "sponsor": None
                    if state["sponsor"] is None
                    else Sponsor(sponsor_id=uuid.uuid4(), name=state["sponsor"], kind="employer"),
                    "residence": None
                    if state["village"] is None
                    else Residence(address="Jl. 1", village_code=state["village"], since=date(2026, 1, 1)),
                    "permit": permit,
                    "arrival": None if state["arrived_on"] is None else Movement(port="Juanda", on=state["arrived_on"]),
                    "departure": None
                    if state["departed_on"] is None
                    else Movement(port="Juanda", on=state["departed_on"]),
                }
            )
            story.steps.append(Step(at, person.event(at), state))
        stories.append(story)
    return stories


def _days_left(state: dict[str, Any], end: datetime) -> int | None:
    """Days to the permit's last day on the person's own date as the month ends (negative: overstayed), for a
    permit still theirs."""
    if state["permit"] is None:
        return None
    status, expires = state["permit"]
    if status not in {PermitStatus.ACTIVE, PermitStatus.EXTENDED, PermitStatus.EXPIRED}:
        return None
    zone = WIT if state["village"].startswith("91.") else WIB
    return int((expires - (end - timedelta(microseconds=1)).astimezone(zone).date()).days)


def _independent_count(stories: list[Story], month: date) -> dict[str, Any]:
    """The recap of ``month`` counted straight from the events, without the service's code."""
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    end = datetime(following.year, following.month, 1, tzinfo=WIB)  # the month ends at midnight in Bangkalan

    def seen(state: dict[str, Any]) -> bool:
        return state["village"] is not None and state["village"][:5] in {"35.26", "91.71"}

    people: list[dict[str, Any]] = []
    arrivals: set[tuple[uuid.UUID, date]] = set()
    departures: set[tuple[uuid.UUID, date]] = set()
    for story in stories:
        known = [step for step in story.steps if step.at < end]
        for step in known:
            if seen(step.state):
                for moved, on in ((arrivals, step.state["arrived_on"]), (departures, step.state["departed_on"])):
                    if on is not None and (on.year, on.month) == (month.year, month.month):
                        moved.add((story.foreigner_id, on))
        if known and seen(known[-1].state) and known[-1].state["presence"] is PresenceStatus.PRESENT:
            people.append(known[-1].state | {"days": _days_left(known[-1].state, end)})
    overstays = [person["days"] for person in people if person["days"] is not None and person["days"] < 0]
    per_sponsor: dict[str | None, list[int]] = {}
    for person in people:
        counts = per_sponsor.setdefault(person["sponsor"], [0, 0, 0])
        counts[0] += 1
        counts[1] += person["days"] is not None and 0 <= person["days"] <= 30
        counts[2] += person["days"] is not None and person["days"] < 0
    return {
        "people": len(people),
        "by_nationality": dict(sorted(Counter(person["nationality"] for person in people).items())),
        "by_district": dict(Counter(person["village"][:8] for person in people)),
        "arrivals": len(arrivals),
        "departures": len(departures),
        "expiring": sum(person["days"] is not None and 0 <= person["days"] <= 30 for person in people),
        "overstaying": (sum(-days <= 60 for days in overstays), sum(-days > 60 for days in overstays)),
        "sponsors": per_sponsor,
    }


def _on_the_edges() -> list[tuple[list[datetime], list[dict[str, Any]]]]:
    """People present on 30 November on each edge of the recap's bands: 60 and 61 days overstayed, 0, 30 and
    31 days left, in Bangkalan and in Jayapura (a day later there), arrived on the month's last day or after."""
    drawn = []
    for village, expires, arrived in (
        (LAJING, date(2026, 10, 1), date(2026, 11, 30)),
        (LAJING, date(2026, 9, 30), date(2026, 12, 1)),
        (BALUNG, date(2026, 11, 30), None),
        (BALUNG, date(2026, 12, 30), None),
        (BANGKALAN_KOTA, date(2026, 12, 31), None),
        (GURABESI, date(2026, 10, 2), None),
        (GURABESI, date(2026, 10, 1), None),
        (GURABESI, date(2026, 12, 1), None),
        (GURABESI, date(2026, 12, 31), None),
    ):
        state = {
            "village": village,
            "nationality": "CHN",
            "presence": PresenceStatus.PRESENT,
            "sponsor": None,
            "permit": (PermitStatus.ACTIVE, expires),
            "arrived_on": arrived,
            "departed_on": None,
        }
        drawn.append(([datetime(2026, 11, 30, 16, 59, 59, 999999, tzinfo=UTC)], [state]))
    return drawn


@example(drawn=_on_the_edges(), month=date(2026, 11, 1))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    drawn=st.lists(
        st.tuples(st.lists(moments, min_size=1, max_size=5), st.lists(states(), min_size=5, max_size=5)),
        min_size=1,
        max_size=6,
    ),
    month=st.sampled_from([date(2026, 10, 1), date(2026, 11, 1)]),
)
async def test_the_recap_matches_an_independent_count_of_random_histories(
    sessions: Any, drawn: list[tuple[list[datetime], list[dict[str, Any]]]], month: date
) -> None:
    agreement = _property_agreement()
    stories = _stories(drawn)
    async with sessions() as session, session.begin():
        for step in sorted((step for story in stories for step in story.steps), key=lambda step: step.at):
            await projection.apply(session, step.event, [agreement], PROPERTY_NOW, OFFLINE)
    async with sessions() as session, session.begin():
        recap, _ = await reports.monthly_recap(
            session, agreement, reports.period(agreement, month, PROPERTY_NOW), "present", rule=OverstaySettings()
        )

    expected = _independent_count(stories, month)
    assert recap.people.total == expected["people"]
    assert recap.people.by_nationality == expected["by_nationality"]
    assert {entry.code: entry.total for entry in recap.people.by_district or []} == expected["by_district"]
    assert recap.arrivals is not None
    assert recap.departures is not None
    assert (recap.arrivals.total, recap.departures.total) == (expected["arrivals"], expected["departures"])
    assert recap.expiring_within_30_days is not None
    assert recap.expiring_within_30_days.total == expected["expiring"]
    assert recap.overstaying is not None
    assert (recap.overstaying.up_to_60_days.total, recap.overstaying.over_60_days.total) == expected["overstaying"]
    assert {
        sponsor.sponsor_name: [sponsor.people, sponsor.expiring_within_30_days, sponsor.overstaying]
        for sponsor in recap.sponsors or []
    } == expected["sponsors"]


# --- the demo data, from the registry's records ------------------------------------------------------------

#: When the demo is loaded (its generator's "today"): 20 November 2026, noon in Bangkalan.
DEMO_LOADED = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
NOVEMBER_END = date(2026, 11, 30)


async def test_the_demo_recap_run_as_a_command_matches_a_count_from_the_registrys_records(
    kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> None:
    # The demo loader's data set (deploy/local/demo: 500 people, seed 2024) loaded on 20 November through the
    # registry's own import, relay and Kafka into the sharing service; passports and permit numbers are made
    # this test's own, so that the registry, whose test database other tests share, imports every one.
    agencies = Agencies.write(tmp_path)
    clock = ManualClock(DEMO_LOADED)
    registry_app = REGISTRY.create_app(
        RegistrySettings(
            kafka=kafka_settings,
            database=database_settings["registry"],
            relay=RelaySettings(poll_interval_s=0.2),
            expiry=ExpirySettings(enabled=False),
        ),
        clock=clock,
    )
    sharing_app = SERVICE.create_app(
        SharingSettings(kafka=kafka_settings, database=database_settings["sharing"], register_file=agencies.path),
        clock=clock,
    )
    registry_runtime: ServiceRuntime = registry_app.state.runtime
    sharing_runtime: ServiceRuntime = sharing_app.state.runtime
    mark = new_namespace()[-8:].upper()
    rows = [
        row
        | {"passport_number": f"{row['passport_number'][:1]}{mark}{index:05d}", "permit_number": f"D{mark}{index:07d}"}
        for index, row in enumerate(generate(500, seed=2024, today=DEMO_LOADED.date()))
    ]
    text = io.StringIO()
    write(Path("demo.csv"), iter(rows), text)
    async with (
        LifespanManager(registry_app, startup_timeout=60, shutdown_timeout=30),
        LifespanManager(sharing_app, startup_timeout=60, shutdown_timeout=30),
    ):
        importer = Importer(
            registry_runtime.engine, clock, import_id="demo", topic=kafka_settings.catalog.registry_events.name
        )
        rejected: dict[int, str] = {}
        summary = await importer.run(read(Path("demo.csv"), io.StringIO(text.getvalue())), rejected.__setitem__)
        # Every row the registry accepts (a registry that refuses some of the generator's rows still
        # counts the rest: the comparison is with what it holds).
        assert summary.imported + summary.rejected == 500
        assert summary.imported > 0
        async with registry_runtime.sessions() as session:
            ours = select(registry_outbox.c.event_id).where(
                registry_outbox.c.topic.startswith(f"{kafka_settings.namespace}.")
            )
            published = [str(event_id) for event_id in (await session.execute(ours)).scalars()]
        assert len(published) == summary.imported

        async def projected() -> bool:
            async with sharing_runtime.sessions() as session:
                done = await session.scalar(select(func.count()).where(sharing_inbox.c.event_id.in_(published)))
            return int(done or 0) == len(published)

        await until(projected, what="the sharing service applied every demo event")
        async with registry_runtime.sessions() as session:
            records = (
                await session.execute(
                    select(
                        registry_foreigners.c.nationality,
                        registry_foreigners.c.presence,
                        registry_foreigners.c.arrival_on,
                        registry_foreigners.c.departure_on,
                        registry_foreigners.c.jurisdiction,
                        registry_permits.c.status,
                        registry_permits.c.expires_on,
                        registry_sponsors.c.name.label("sponsor"),
                    )
                    .select_from(registry_foreigners)
                    .outerjoin(registry_permits, registry_permits.c.id == registry_foreigners.c.current_permit_id)
                    .outerjoin(registry_sponsors, registry_sponsors.c.id == registry_foreigners.c.sponsor_id)
                    .where(registry_foreigners.c.passport_number.in_([row["passport_number"] for row in rows]))
                )
            ).all()

    command = _command(database_settings["sharing"], agencies, "recap", agencies.regency, "--month", "2026-11")
    assert command.returncode == 0, command.stderr
    recap = json.loads(command.stdout)

    # The registry's own records, counted here: who lives in Kabupaten Bangkalan and is present, on 30 November.
    assert len(records) == summary.imported
    here = [record for record in records if record.jurisdiction.startswith("35.26.") and record.presence == "present"]
    days = {
        id(record): (record.expires_on - NOVEMBER_END).days
        for record in here
        if record.status in {"active", "extended", "expired"}
    }
    in_november = [record for record in records if record.jurisdiction.startswith("35.26.")]
    assert here, "the demo set has people in Bangkalan"
    assert recap["people"]["total"] == len(here)
    assert recap["people"]["by_nationality"] == dict(sorted(Counter(record.nationality for record in here).items()))
    assert {entry["code"]: (entry["name"], entry["by_nationality"]) for entry in recap["people"]["by_district"]} == {
        district: (
            regions.require(district).name,
            dict(sorted(Counter(r.nationality for r in here if r.jurisdiction.startswith(district + ".")).items())),
        )
        for district in {record.jurisdiction[:8] for record in here}
    }
    assert recap["arrivals"]["total"] == sum(
        record.arrival_on is not None and (record.arrival_on.year, record.arrival_on.month) == (2026, 11)
        for record in in_november
    )
    assert recap["arrivals"]["total"] > 0
    assert recap["departures"]["total"] == sum(
        record.departure_on is not None and (record.departure_on.year, record.departure_on.month) == (2026, 11)
        for record in in_november
    )
    assert recap["expiring_within_30_days"]["total"] == sum(0 <= left <= 30 for left in days.values())
    assert recap["overstaying"]["up_to_60_days"]["total"] == sum(-60 <= left < 0 for left in days.values())
    assert recap["overstaying"]["over_60_days"]["total"] == sum(left < -60 for left in days.values())
    assert recap["overstaying"]["up_to_60_days"]["total"] > 0, "the demo set has people overstaying"
    assert {sponsor["sponsor_name"]: sponsor["people"] for sponsor in recap["sponsors"]} == dict(
        Counter(record.sponsor for record in here)
    )


async def test_the_monthly_flows_are_each_months_recap_counts_and_follow_the_agreement(sharing: Sharing) -> None:
    regency = sharing.agencies.regency
    flows = _json(await sharing.get(regency, "/v1/reports/monthly-flows", until="2026-12", months=3))

    assert [month["month"] for month in flows["months"]] == ["2026-10", "2026-11", "2026-12"]
    assert [month["complete"] for month in flows["months"]] == [True, True, False]
    for month in flows["months"]:
        recap = _json(await sharing.get(regency, "/v1/reports/monthly-recap", month=month["month"]))
        assert (month["arrivals"], month["departures"]) == (
            recap["arrivals"]["total"],
            recap["departures"]["total"],
        ), month["month"]
    assert flows["months"][1]["arrivals"] == 2  # a on 5 Nov, h on 30 Nov
    # The default: the six months up to the month under way.
    assert [month["month"] for month in _json(await sharing.get(regency, "/v1/reports/monthly-flows"))["months"]] == [
        "2026-07",
        "2026-08",
        "2026-09",
        "2026-10",
        "2026-11",
        "2026-12",
    ]

    village = _json(await sharing.get(sharing.agencies.village, "/v1/reports/monthly-flows", months=2))
    assert [(month["arrivals"], month["departures"]) for month in village["months"]] == [(None, None), (None, None)]
    assert set(village["omitted"]) == {"arrivals", "departures"}

    future = await sharing.get(regency, "/v1/reports/monthly-flows", until="2027-01")
    assert future.status_code == 422
    assert [problem["loc"] for problem in future.json()["detail"]] == [["query", "until"]]
    too_many = await sharing.get(regency, "/v1/reports/monthly-flows", months=25)
    assert too_many.status_code == 422
