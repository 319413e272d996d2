"""The synthetic data: rows an officer would believe (occupations, sponsors and visas that fit the permit,
names that fit nationality and sex, homes in the four Madura regencies), the deliberate inconsistencies
where the generator says they are, overstays in both bands; and the demo's lifecycle stories played on the
imported people through the registry, once."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.registry.conftest import Registry, today
from tests.support.processes import service_environment
from timpora.common import regions
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.registry.bulk import generator
from timpora.registry.bulk.generator import CAST, cast, flagged, generate, overstay_band, write
from timpora.registry.bulk.importer import Importer
from timpora.registry.bulk.records import COLUMNS, parse, read
from timpora.registry.bulk.stories import ALREADY, PLAYED, SKIPPED, STORIES, play
from timpora.registry.domain.changes import ChangeContext
from timpora.registry.models import outbox
from timpora.registry.settings import RegistrySettings

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
DAYS = st.dates(min_value=date(2024, 1, 1), max_value=date(2032, 12, 31))
MADURA = {"35.26", "35.27", "35.28", "35.29"}
ASEAN = {"MYS", "THA", "PHL"}

# What fits which permit, written out here rather than read from the generator.
VISITS = {
    "tourist", "visiting family", "business visitor", "tobacco buyer", "salt trader", "journalist", "researcher",
    "documentary filmmaker",
}  # fmt: skip
WORK = {
    "engineer", "technician", "shipyard supervisor", "welding inspector", "offshore drilling engineer",
    "salt farm technician", "tobacco grader", "chef", "English teacher",
}  # fmt: skip
ITAS_VISAS = {"work": "E23", "investment": "E28A", "study": "E30", "family": "E31", "retirement": "E33"}


def _day(row: dict[str, str], column: str) -> date:
    return date.fromisoformat(row[column])


def _age(row: dict[str, str]) -> int:
    return (_day(row, "arrived_on") - _day(row, "date_of_birth")).days // 365


def _visit_problems(row: dict[str, str]) -> list[str]:
    days = (_day(row, "permit_expires_on") - _day(row, "permit_issued_on")).days
    problems = []
    if row["visa_index"] not in {"A1", "B1", "C1", "C2"}:
        problems.append("a visit permit on a limited-stay visa")
    if days != (30 if row["visa_index"] in {"A1", "B1"} else 60):
        problems.append(f"a visit permit of {days} days on {row['visa_index']}")
    if row["visa_index"] == "A1" and row["nationality"] not in ASEAN:
        problems.append("visa-exempt but not an ASEAN national")
    if row["occupation"] not in VISITS:
        problems.append(f"{row['occupation']} on a visit permit")
    if row["sponsor_kind"] not in {"", "hotel", "family"}:
        problems.append(f"a visitor sponsored by an {row['sponsor_kind']}")
    if row["arrived_on"] != row["permit_issued_on"]:
        problems.append("a visit permit not given on arrival")
    return problems


def _family_problems(row: dict[str, str]) -> list[str]:
    if row["occupation"] == "spouse":
        # Married to an Indonesian: no sponsor needed.
        return [] if row["sponsor_kind"] in {"", "family"} and _age(row) >= 18 else ["an odd spouse"]
    if row["occupation"] == "child":
        return [] if row["sponsor_kind"] == "family" and _age(row) < 18 else ["an odd child"]
    return [f"{row['occupation']} on a family permit"]


def _limited_problems(row: dict[str, str]) -> list[str]:
    purpose, occupation, kind = row["permit_purpose"], row["occupation"], row["sponsor_kind"]
    if row["permit_type"] == "itas" and row["visa_index"] != ITAS_VISAS.get(purpose):
        return [f"an ITAS for {purpose} on {row['visa_index']}"]
    if row["permit_type"] == "itap" and (row["visa_index"] or purpose not in {"family", "work"}):
        return ["an ITAP with a visa of its own, or for neither family nor work"]
    match purpose:
        case "work":
            ok = occupation in WORK and kind == "employer"
        case "investment":
            ok = occupation in {"director", "investor", "commissioner"} and kind == "company"
        case "study":
            ok = occupation == "student" and kind == "institution" and 15 <= _age(row) <= 35
        case "family":
            return _family_problems(row)
        case "retirement":
            ok = occupation == "retiree" and kind == "" and _age(row) >= 55
        case _:
            ok = False
    return [] if ok else [f"{occupation} sponsored by {kind or 'nobody'} on a {purpose} permit"]


def problems(row: dict[str, str]) -> list[str]:
    """Why an officer would not believe ``row`` as it is."""
    if row["permit_type"] == "visit":
        return _visit_problems(row)
    if row["permit_type"] in {"itas", "itap"}:
        return _limited_problems(row)
    return [f"a {row['permit_type']} permit in Madura"]


def _name_fits(row: dict[str, str]) -> bool:
    nation = generator.NATIONS[row["nationality"]]
    given_names = nation.male if row["sex"] == "M" else nation.female
    name = row["full_name"]
    if nation.style == "patronymic":
        return name.split(" bin " if row["sex"] == "M" else " binti ")[0] in given_names
    if nation.style == "family-given":
        return name.split(" ", 1)[1] in given_names
    return any(name.startswith(given + " ") for given in given_names)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, on=DAYS)
def test_every_generated_row_imports_cleanly_through_the_parser(seed: int, on: date) -> None:
    rows = list(generate(150, seed=seed, today=on))
    text = io.StringIO()
    write(Path("demo.csv"), iter(rows), text)

    lines = list(read(Path("demo.csv"), io.StringIO(text.getvalue())))

    assert [(line.number, line.reason) for line in lines if line.reason is not None] == []
    assert len(lines) == len(rows)
    assert all(parse(index, row).reason is None for index, row in enumerate(rows))


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, on=DAYS)
def test_rows_are_believable_except_the_flagged_ones(seed: int, on: date) -> None:
    rows = list(generate(150, seed=seed, today=on))

    doubtful = {index: problems(row) for index, row in enumerate(rows) if problems(row)}

    assert set(doubtful) == {index for index in range(len(rows)) if flagged(index)}
    assert set(doubtful) == {41, 91, 141}
    for index in doubtful:
        row = rows[index]
        assert (row["permit_type"], row["visa_index"], row["sponsor_kind"]) == ("visit", "B1", "employer")
        assert row["occupation"] in WORK
    assert all(_name_fits(row) for row in rows), [row["full_name"] for row in rows if not _name_fits(row)]


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, on=DAYS)
def test_people_live_in_real_madura_villages_and_dates_are_in_order(seed: int, on: date) -> None:
    rows = list(generate(150, seed=seed, today=on))

    for row in rows:
        assert row["residence_village_code"][:5] in MADURA
        assert regions.lookup(row["residence_village_code"]) is not None
        assert _day(row, "date_of_birth") < _day(row, "arrived_on") <= on
        assert _day(row, "arrived_on") <= _day(row, "residence_since") <= on
        assert _day(row, "permit_issued_on") <= on
        assert _day(row, "passport_expires_on") > on
    visitors = [row for row in rows if row["permit_type"] == "visit" and row["sponsor_kind"] != "employer"]
    assert visitors
    assert all(row["visa_index"] != "B1" or (_day(row, "permit_expires_on") - on).days < 30 for row in visitors)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, on=DAYS)
def test_a_file_has_overstays_in_both_bands_where_the_generator_says(seed: int, on: date) -> None:
    rows = list(generate(200, seed=seed, today=on))

    overstayed = {index: (on - _day(row, "permit_expires_on")).days for index, row in enumerate(rows)}
    bands = {index: overstay_band(index) for index in range(len(rows))}

    assert all(1 <= overstayed[index] <= 60 for index, band in bands.items() if band == "fee")
    assert all(overstayed[index] > 60 for index, band in bands.items() if band == "beyond")
    assert all(days <= 0 for index, days in overstayed.items() if bands[index] is None and index not in _cast_rows())
    assert sum(band == "fee" for band in bands.values()) == 8
    assert sum(band == "beyond" for band in bands.values()) == 4


def _cast_rows() -> set[int]:
    return {index for index, _ in CAST.values()}


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, on=DAYS, later=st.integers(min_value=1, max_value=400))
def test_the_same_seed_gives_the_same_file_and_another_day_the_same_people(seed: int, on: date, later: int) -> None:
    rows = list(generate(120, seed=seed, today=on))

    assert list(generate(120, seed=seed, today=on)) == rows
    assert list(generate(30, seed=seed, today=on)) == rows[:30]
    moved = list(generate(120, seed=seed, today=on + timedelta(days=later)))
    identity = ("full_name", "sex", "nationality", "passport_number", "permit_number", "occupation", "sponsor_name")
    assert [[row[key] for key in identity] for row in moved] == [[row[key] for key in identity] for row in rows]
    assert {
        name: (rows[index]["nationality"], rows[index]["passport_number"]) for name, (index, _) in CAST.items()
    } == (cast(seed))
    assert set(rows[0]) == set(COLUMNS)


# --- the demo's lifecycle stories, on a real registry ---------------------------------------------------------

#: This test's file: its passports (a letter, "31", the row) are no other test's.
SEED = 1931


async def _import(registry: Registry, rows: list[dict[str, str]]) -> None:
    rejected: dict[int, str] = {}
    importer = Importer(
        registry.runtime.engine,
        registry.clock,
        import_id="demo",
        topic=registry.runtime.settings.kafka.catalog.registry_events.name,
    )
    text = io.StringIO()
    write(Path("demo.csv"), iter(rows), text)
    summary = await importer.run(read(Path("demo.csv"), io.StringIO(text.getvalue())), rejected.__setitem__)
    assert rejected == {}
    assert summary.imported == len(rows)


def _context(registry: Registry) -> ChangeContext:
    settings = registry.runtime.settings
    assert isinstance(settings, RegistrySettings)
    return ChangeContext(
        actor="demo-stories",
        clock=registry.clock,
        source=settings.event_source,
        topic=settings.kafka.catalog.registry_events.name,
        overstay=settings.overstay,
    )


async def _outbox_rows(registry: Registry) -> int:
    async with registry.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)


async def _found(registry: Registry, nationality: str, passport: str) -> list[dict[str, Any]]:
    response = await registry.client.get(
        "/v1/foreigners", params={"nationality": nationality, "passport_number": passport}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _record(registry: Registry, foreigner_id: str) -> dict[str, Any]:
    response = await registry.client.get(f"/v1/foreigners/{foreigner_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


async def test_the_stories_play_on_the_demo_people_once(registry: Registry) -> None:  # noqa: PLR0915
    on = today()
    rows = list(generate(30, seed=SEED, today=on))
    await _import(registry, rows)
    people = cast(SEED)
    row_of = {name: rows[index] for name, (index, _) in CAST.items()}

    first = await play(registry.sessions, _context(registry), seed=SEED)
    after_first = await _outbox_rows(registry)
    second = await play(registry.sessions, _context(registry), seed=SEED)

    assert {outcome.story: outcome.result for outcome in first} == dict.fromkeys(CAST, PLAYED), first
    assert {outcome.story: outcome.result for outcome in second} == dict.fromkeys(CAST, ALREADY), second
    assert await _outbox_rows(registry) == after_first, "the second run wrote events"

    async def person(name: str) -> dict[str, Any]:
        found = await _found(registry, *people[name])
        assert len(found) == 1, f"{name}: {len(found)} people for one passport"
        return (await _record(registry, found[0]["foreigner_id"]))["foreigner"]  # type: ignore[no-any-return]

    for name, days_ago in (("departure-1", 2), ("departure-2", 4), ("departure-3", 6)):
        left = await person(name)
        assert left["presence"] == "departed"
        assert left["departure"]["on"] == (on - timedelta(days=days_ago)).isoformat()
        assert (left["permit"]["status"], left["permit"]["end_reason"]) == ("ended", "exit")

    back = await person("departure-and-return")
    assert (back["presence"], back["departure"]["on"], back["arrival"]["on"]) == (
        "present", (on - timedelta(days=16)).isoformat(), (on - timedelta(days=3)).isoformat(),
    )  # fmt: skip
    assert back["visa"]["index"] == "B1"
    assert back["permit"]["number"] != row_of["departure-and-return"]["permit_number"]
    assert (back["permit"]["type"], back["permit"]["status"]) == ("visit", "active")
    assert back["permit"]["issued_on"] == (on - timedelta(days=3)).isoformat()
    assert back["permit"]["expires_on"] == (on + timedelta(days=27)).isoformat()

    nationality, old = people["passport-renewal"]
    renewed = await person("passport-renewal")
    assert renewed["passport"]["number"] != old
    assert [passport["number"] for passport in renewed["previous_passports"]] == [old]
    assert await _found(registry, nationality, renewed["passport"]["number"]) == await _found(
        registry, nationality, old
    )

    nationality, old = people["renewed-abroad"]
    returned = await person("renewed-abroad")
    assert returned["presence"] == "present"
    assert returned["arrival"]["on"] == (on - timedelta(days=8)).isoformat()
    assert [passport["number"] for passport in returned["previous_passports"]] == [old]
    assert (returned["permit"]["type"], returned["permit"]["status"]) == ("itap", "active"), "the ITAP came back"
    assert len(await _found(registry, nationality, returned["passport"]["number"])) == 1

    extended = await person("voa-extension")
    voa = row_of["voa-extension"]
    assert (extended["visa"]["index"], extended["permit"]["status"]) == ("B1", "extended")
    assert extended["permit"]["expires_on"] == (_day(voa, "permit_expires_on") + timedelta(days=30)).isoformat()

    settled = await person("overstay-fee-paid")
    lapsed = _day(row_of["overstay-fee-paid"], "permit_expires_on")
    days = (on - lapsed).days
    assert 1 <= days <= 60
    # The payment is on record (its event); the extension then starts a new count on the permit.
    assert settled["permit"]["overstay_fee"] is None
    assert settled["permit"]["status"] == "extended"
    assert settled["permit"]["expires_on"] == (lapsed + timedelta(days=365)).isoformat()
    settled_record = await _record(registry, settled["foreigner_id"])
    assert settled_record["standing"]["overstay"] is None
    assert [entry["event_type"] for entry in settled_record["history"]][-2:] == [
        "permit.overstay-fee-paid",
        "permit.extended",
    ]

    deported = await person("overstay-deported")
    record = await _record(registry, deported["foreigner_id"])
    assert (on - _day(row_of["overstay-deported"], "permit_expires_on")).days > 60
    assert deported["presence"] == "deported"
    assert deported["departure"]["on"] == (on - timedelta(days=1)).isoformat()
    assert deported["reentry_ban"]["since"] == deported["departure"]["on"]
    assert date.fromisoformat(deported["reentry_ban"]["until"]) > on
    assert [entry["event_type"] for entry in record["history"]] == [
        "foreigner.imported",
        "foreigner.enforcement-recorded",
        "foreigner.enforcement-recorded",
        "foreigner.deported",
        "foreigner.banned",
    ]
    assert {entry["actor"] for entry in record["history"][1:]} == {"demo-stories"}

    guest = await person("hotel-guest")
    assert (guest["stay"]["provider"], guest["stay"]["village_code"]) == ("Hotel Suramadu Kamal", "35.26.01.1001")
    assert guest["stay"]["check_out"] is None
    assert date.fromisoformat(guest["stay"]["planned_check_out"]) < on  # the expiry pass will find it overdue
    waiting = (await registry.client.get("/v1/stay-reports")).json()
    assert "Unknown Guest" in {report["full_name"] for report in waiting}

    converted = await person("conversion")
    assert (converted["permit"]["type"], converted["permit"]["purpose"]) == ("itas", "family")
    assert (await _record(registry, converted["foreigner_id"]))["history"][-1]["event_type"] == "permit.converted"


async def test_without_the_demo_people_every_story_is_skipped_and_nothing_is_written(registry: Registry) -> None:
    before = await _outbox_rows(registry)

    outcomes = await play(registry.sessions, _context(registry), seed=4242)

    assert [outcome.result for outcome in outcomes] == [SKIPPED] * len(STORIES)
    assert all("seed 4242" in outcome.detail for outcome in outcomes)
    assert await _outbox_rows(registry) == before


def test_the_command_plays_the_stories_on_an_imported_demo_file_once(
    tmp_path: Path, kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> None:
    environment = service_environment("registry", kafka=kafka_settings, database=database_settings["registry"])
    data = tmp_path / "demo.csv"

    def run(*argv: str) -> str:
        result = subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "timpora.registry.main", *argv],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stderr

    run("generate", "--count", "30", "--seed", "1977", "--out", str(data))
    assert "30 imported" in run("import", str(data))
    first = run("demo-stories", "--seed", "1977")
    second = run("demo-stories", "--seed", "1977")

    assert re.findall(r"^([\w-]+): (played|already played|skipped)", first, re.MULTILINE) == [
        (name, PLAYED) for name in CAST
    ], first
    assert re.findall(r"^([\w-]+): (played|already played|skipped)", second, re.MULTILINE) == [
        (name, ALREADY) for name in CAST
    ], second
