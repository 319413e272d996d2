"""Bulk import: valid rows land with their events, bad rows are reported by line and reason, and a
second run of the same file changes nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from tests.registry.conftest import Registry
from tests.support.processes import service_environment
from timpora.common.events import KafkaRecord, decode
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.registry.bulk.generator import generate, write
from timpora.registry.bulk.importer import Importer, Summary
from timpora.registry.bulk.records import COLUMNS, read
from timpora.registry.bulk.rejects import rejects_file
from timpora.registry.models import foreigners, history, movements, outbox, permits, residences

TODAY = date(2026, 11, 29)


def _rows(count: int) -> list[dict[str, str]]:
    seed = uuid.uuid4().int % 1_000_000
    return [
        row | {"passport_number": f"Q{seed:06d}{i:05d}", "permit_number": f"P{seed:06d}{i:05d}"}
        for i, row in enumerate(generate(count, seed=seed, today=TODAY))
    ]


def _csv(rows: list[dict[str, str]]) -> str:
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return handle.getvalue()


async def _import(registry: Registry, text: str, suffix: str = ".csv") -> tuple[Summary, dict[int, str]]:
    rejected: dict[int, str] = {}
    importer = Importer(
        registry.runtime.engine,
        registry.clock,
        import_id="test-import",
        topic=registry.runtime.settings.kafka.catalog.registry_events.name,
        batch_size=7,
    )
    summary = await importer.run(read(Path("file" + suffix), io.StringIO(text)), rejected.__setitem__)
    return summary, rejected


async def _table_counts(registry: Registry) -> dict[str, int]:
    async with registry.sessions() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (foreigners, permits, residences, movements, history, outbox)
        }


async def test_valid_rows_land_with_one_imported_event_each_and_a_second_run_changes_nothing(
    registry: Registry,
) -> None:
    rows = _rows(30)
    before = await _table_counts(registry)

    first, rejected = await _import(registry, _csv(rows))
    after_first = await _table_counts(registry)
    second, _ = await _import(registry, _csv(rows))

    assert rejected == {}
    assert (first.imported, first.unchanged, first.rejected) == (30, 0, 0)
    assert (second.imported, second.unchanged, second.rejected) == (0, 30, 0)
    assert {name: after_first[name] - before[name] for name in before} == {
        "foreigners": 30, "permits": 30, "residences": 30, "movements": 30, "history": 30, "outbox": 30,
    }  # fmt: skip
    assert await _table_counts(registry) == after_first


async def test_an_imported_record_reads_and_publishes_like_a_registered_one(registry: Registry) -> None:
    row = _rows(1)[0]
    await _import(registry, _csv([row]))

    found = (await registry.client.get("/v1/foreigners", params={"passport_number": row["passport_number"]})).json()[
        "items"
    ]
    assert len(found) == 1
    person = found[0]
    assert person["version"] == 1
    assert person["permit"]["number"] == row["permit_number"]
    assert person["residence"]["village_code"] == row["residence_village_code"]
    async with registry.sessions() as session:
        headers, payload = (
            await session.execute(
                select(outbox.c.headers, outbox.c.payload).where(outbox.c.partition_key == person["foreigner_id"])
            )
        ).one()
    event = decode(
        KafkaRecord(key=None, value=payload.encode(), headers=tuple((k, v.encode()) for k, v in headers.items()))
    )
    assert event.spec.name == "foreigner.imported"
    assert event.data.foreigner.model_dump(mode="json") == person  # type: ignore[attr-defined]
    assert event.data.jurisdiction == row["residence_village_code"]  # type: ignore[attr-defined]


async def test_an_imported_record_publishes_its_sponsor_as_the_registry_recorded_it(registry: Registry) -> None:
    # The sponsor first recorded through the API; the file types it otherwise. The registry answers with the name
    # it recorded, and the event every consumer projects must say the same.
    name = f"PT Garam Madura {uuid.uuid4().hex[:6]}"
    await registry.new_foreigner(sponsor={"name": name, "kind": "employer"})
    row = _rows(1)[0] | {"sponsor_name": name.swapcase(), "sponsor_kind": "EMPLOYER"}
    await _import(registry, _csv([row]))

    found = (await registry.client.get("/v1/foreigners", params={"passport_number": row["passport_number"]})).json()
    person = found["items"][0]
    async with registry.sessions() as session:
        payload = (
            await session.execute(select(outbox.c.payload).where(outbox.c.partition_key == person["foreigner_id"]))
        ).scalar_one()
    assert person["sponsor"]["name"] == name
    assert json.loads(payload)["foreigner"] == person


async def test_bad_rows_are_reported_by_line_and_reason_while_good_rows_land(registry: Registry) -> None:
    good, *bad = _rows(7)
    bad[0]["nationality"] = "ZZZ"
    bad[1]["residence_village_code"] = "35.26.05.9999"
    bad[2]["permit_expires_on"] = bad[2]["permit_issued_on"]
    bad[3]["passport_number"] = good["passport_number"]
    bad[3]["nationality"] = good["nationality"]
    bad[4]["arrived_on"] = "yesterday"
    bad[5]["residence_since"] = "2000-01-01"

    summary, rejected = await _import(registry, _csv([good, *bad]))

    assert (summary.imported, summary.rejected) == (1, 6)
    assert sorted(rejected) == [3, 4, 5, 6, 7, 8]
    assert "arrival.nationality" in rejected[3]
    assert "residence.village_code" in rejected[4]
    assert "expires_on must be after issued_on" in rejected[5]
    assert rejected[6] == "the same passport as line 2"
    assert "arrival.arrived_on" in rejected[7]
    assert "residence_since is before arrived_on" in rejected[8]
    assert all(good["full_name"] not in reason for reason in rejected.values())


async def test_json_lines_are_read_too_and_broken_lines_are_reported(registry: Registry) -> None:
    rows = _rows(2)
    text = json.dumps(rows[0]) + "\n{broken\n" + json.dumps(rows[1] | {"shoe_size": "43"}) + "\n[1, 2]\n"

    summary, rejected = await _import(registry, text, suffix=".jsonl")

    assert summary.imported == 1
    assert rejected[2].startswith("not JSON")
    assert rejected[3] == "unknown column(s): shoe_size"
    assert rejected[4] == "not a JSON object"


async def test_a_permit_number_already_in_the_registry_rejects_the_row(registry: Registry) -> None:
    first, second = _rows(2)
    await _import(registry, _csv([first]))
    second["permit_number"] = first["permit_number"]

    summary, rejected = await _import(registry, _csv([second]))

    assert summary.rejected == 1
    assert rejected == {2: "permit_number: already registered"}  # the field, never the number itself


async def test_a_row_with_more_cells_than_the_header_is_one_bad_row_and_the_import_goes_on(
    registry: Registry,
) -> None:
    before, extra, after = _rows(3)
    lines = _csv([before, extra, after]).splitlines()
    lines[2] += ",Jl. Rahasia 7,A9999999"  # two cells more than the header, on the file's line 3

    summary, rejected = await _import(registry, "\r\n".join(lines) + "\r\n")

    assert (summary.imported, summary.rejected) == (2, 1)
    assert rejected == {3: f"{len(COLUMNS) + 2} cells where the header has {len(COLUMNS)}"}


async def test_a_file_without_its_header_row_has_no_value_quoted_in_its_reasons(registry: Registry) -> None:
    headless = "\r\n".join(_csv(_rows(2)).splitlines()[1:]) + "\r\n"

    _, rejected = await _import(registry, headless)

    assert rejected == {2: "no header: none of the first line's cells names a column of the format"}


def test_the_rejects_file_is_created_for_its_owner_only_and_quotes_no_value(tmp_path: Path) -> None:
    path = tmp_path / "records.csv.rejects.csv"
    path.write_text("an older report, readable by all\n")
    path.chmod(0o644)
    previous = os.umask(0)  # the mode is the file's own, not left to the umask
    try:
        with rejects_file(path) as rejects:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            rejects(7, "-arrival.full_name: an odd reason")
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(csv.reader(path.open())) == [["line", "reason"], ["7", "'-arrival.full_name: an odd reason"]]


def test_the_command_imports_a_generated_file_and_writes_the_rejects_report(
    tmp_path: Path, kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> None:
    rows = _rows(12)
    rows[4]["sex"] = "unknown"
    data = tmp_path / "records.csv"
    with data.open("w", newline="") as handle:
        write(data, iter(rows), handle)
    environment = service_environment("registry", kafka=kafka_settings, database=database_settings["registry"])

    result = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "timpora.registry.main", "import", str(data)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "11 imported, 0 already in the registry, 1 rejected" in result.stderr
    assert stat.S_IMODE((tmp_path / "records.csv.rejects.csv").stat().st_mode) == 0o600
    report = list(csv.reader((tmp_path / "records.csv.rejects.csv").open()))
    assert report[0] == ["line", "reason"]
    assert report[1][0] == "6"
    assert "arrival.sex" in report[1][1]


def test_the_generator_writes_every_column_with_real_village_codes() -> None:
    from timpora.common import regions  # noqa: PLC0415

    rows = list(generate(200, seed=3, today=TODAY))

    assert set(rows[0]) == set(COLUMNS)
    assert all(regions.lookup(row["residence_village_code"]) for row in rows)
    assert len({row["passport_number"] for row in rows}) == 200
    soon = [row for row in rows if (date.fromisoformat(row["permit_expires_on"]) - TODAY).days <= 45]
    assert 20 <= len(soon) <= 90
    assert list(generate(5, seed=3, today=TODAY)) == rows[:5]


async def test_a_batch_that_collides_with_a_concurrent_registration_fails_without_quoting_the_passport(
    registry: Registry,
) -> None:
    from timpora.registry.bulk.importer import ImportBatchError, _Pending, _Writer  # noqa: PLC0415
    from timpora.registry.bulk.records import parse  # noqa: PLC0415

    row = _rows(1)[0]
    line = parse(2, row)
    assert line.record is not None
    importer = Importer(
        registry.runtime.engine,
        registry.clock,
        import_id="race",
        topic=registry.runtime.settings.kafka.catalog.registry_events.name,
    )
    summary = Summary()
    prepared = await importer._prepare([_Pending(2, line.record)], summary, lambda *_: None)
    # Between the check and the copy, staff register the same passport through the API.
    registered = await registry.arrive(
        nationality=row["nationality"],
        passport={"number": row["passport_number"], "issuing_country": row["nationality"], "expires_on": "2031-01-01"},
    )
    assert registered.status_code == 201

    try:
        async with _Writer(registry.runtime.engine, summary) as writer:
            await writer.submit(prepared)
    except ImportBatchError as error:
        message = str(error)
    else:
        raise AssertionError("the colliding batch was written")

    assert "foreigners_passport_key" in message
    assert row["passport_number"] not in message
    assert summary.imported == 0


async def test_a_batch_is_written_whole_or_not_at_all(registry: Registry) -> None:
    from timpora.registry.bulk.importer import ImportBatchError, _Pending, _Writer  # noqa: PLC0415
    from timpora.registry.bulk.records import parse  # noqa: PLC0415

    rows = _rows(3)
    lines = [parse(index + 2, row) for index, row in enumerate(rows)]
    importer = Importer(
        registry.runtime.engine,
        registry.clock,
        import_id="atomic",
        topic=registry.runtime.settings.kafka.catalog.registry_events.name,
    )
    summary = Summary()
    prepared = await importer._prepare(
        [_Pending(line.number, line.record) for line in lines if line.record], summary, lambda *_: None
    )
    # The last table copied (the outbox) refuses the batch: an event id that is already taken.
    taken = (await registry.new_foreigner())["foreigner_id"]
    async with registry.sessions() as session:
        taken_event = await session.scalar(select(outbox.c.event_id).where(outbox.c.partition_key == taken))
    prepared.outbox[-1] = (taken_event, *prepared.outbox[-1][1:])

    try:
        async with _Writer(registry.runtime.engine, summary) as writer:
            await writer.submit(prepared)
    except ImportBatchError:
        pass
    else:
        raise AssertionError("the batch with a taken event id was written")

    for row in rows:
        found = await registry.client.get("/v1/foreigners", params={"passport_number": row["passport_number"]})
        assert found.json()["items"] == [], "a table copied before the failure kept its rows"
    assert summary.imported == 0


async def test_a_second_import_knows_a_person_by_a_passport_renewed_since(registry: Registry) -> None:
    rows = _rows(3)
    first, _ = await _import(registry, _csv(rows))
    assert first.imported == 3
    async with registry.sessions() as session:
        fid = await session.scalar(
            select(foreigners.c.id).where(foreigners.c.passport_number == rows[0]["passport_number"])
        )
    renewed = await registry.client.post(
        f"/v1/foreigners/{fid}/passport",
        json={
            "passport": {
                "number": f"N{uuid.uuid4().hex[:10].upper()}",
                "issuing_country": rows[0]["passport_country"],
                "expires_on": "2036-01-01",
            },
            "renewed_on": "2026-11-20",
        },
    )
    assert renewed.status_code == 200, renewed.text

    again, rejected = await _import(registry, _csv(rows))

    assert (again.imported, again.unchanged, again.rejected) == (0, 3, 0)
    assert rejected == {}


def test_every_model_the_importer_constructs_is_given_its_factory_defaulted_fields() -> None:
    # model_construct (which skips validation, for speed) calls a field's default_factory when the field is left out,
    # and pydantic then inspects the factory's signature each time: a field added to the contract with a factory
    # halved the import's rate until the importer named it too.
    import ast  # noqa: PLC0415
    import inspect  # noqa: PLC0415

    from timpora.common.events import payloads  # noqa: PLC0415
    from timpora.registry.bulk import importer  # noqa: PLC0415

    tree = ast.parse(inspect.getsource(importer))
    checked = 0
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "model_construct"
            and isinstance(node.func.value, ast.Name)
        ):
            continue
        model = getattr(payloads, node.func.value.id)
        factory_fields = {name for name, info in model.model_fields.items() if info.default_factory is not None}
        given = {keyword.arg for keyword in node.keywords}
        assert factory_fields <= given, f"{model.__name__}.model_construct leaves out {factory_fields - given}"
        checked += 1
    assert checked >= 4  # the snapshot, its passport, residence and arrival at least
