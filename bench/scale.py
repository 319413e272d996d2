"""All of Indonesia (issue 15): what an event costs the live projection and the alerts' routing with a register of
10, 1,000 and 10,000 agencies shaped like the country's (``tests.support.national``: national members, every
province's, regency's and district's government, village heads where people live), over the same people.

The projection side applies one arrival per person in batches of 500, one transaction each, as the live consumer
does (``projection.apply_many``; Kafka's fetch is left out: it does not grow with the register). The routing side
runs the alerts' ``route`` (a pure function) over the same events with rules that pick the nearest village, local
government and police. Each figure is a ratio to the same measure with the 10-agency register, in the same run. A
person is covered by more agencies in the large register (about 13 against 10), and each covering agency costs an
event a row, a history row and a copy for the agency: the events' ratio is below 1 by up to that much even when
nothing grows with the register. So the projection is measured once more with a register as large whose other
members cover nobody (village heads of villages where none of the people live): the same ten agencies cover each
person as in the small register, and the ratio is what the register's size alone costs. The rows check
counts every (agency, person) row against the agencies whose jurisdiction holds each person, and a sample of
people is checked against every member of the register, one by one.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import yaml

from bench.common import Result
from tests.support import national
from tests.support.clock import ManualClock
from timpora.alerts.agencies import DirectoryCache
from timpora.alerts.alerting import Alerting
from timpora.alerts.domain.routing import Directory, Subject, route
from timpora.alerts.domain.rules import Rule, RuleBook, Target
from timpora.common import regions
from timpora.common.db.bootstrap import fresh_database
from timpora.common.db.engine import driver_connection, make_engine, make_session_factory
from timpora.common.db.migrations import upgrade
from timpora.common.events import CloudEvent
from timpora.common.events.payloads import Contract, ForeignerEvent
from timpora.common.register.agreements import Agreements, Whereabouts
from timpora.common.register.members import Agency, AgencyKind, Channel
from timpora.common.settings import DatabaseSettings
from timpora.common.topics import TopicCatalog
from timpora.sharing import projection

BATCH = 500
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
#: People whose rows are checked against every member of the register.
SAMPLE = 200
#: Events routed at each size (routing is in memory: a sample of the people is enough for its rate).
ROUTED = 100_000
RULES = (
    Rule(
        id="arrivals",
        event_types=["foreigner.arrived"],
        to=[
            Target(nearest=[AgencyKind.VILLAGE]),
            Target(nearest=[AgencyKind.LOCAL_GOVERNMENT]),
            Target(nearest=[AgencyKind.POLICE]),
        ],
        channels=[Channel.KAFKA],
    ),
)


#: Arrivals whose alerts are written, at the largest register, to measure the alert tables (each event goes through
#: the alerts service's own write path; its rate is the alerts benchmark's business, not this one's).
ALERTED = 20_000
#: The alert service's tables an event writes to, measured on disk.
ALERT_TABLES = ("routed_events", "alerts", "deliveries")


@dataclass(frozen=True, slots=True)
class Size:
    agencies: int
    projected: float
    routed: float
    covering: float
    decisions: float
    rows: int
    expected_rows: int
    megabytes: dict[str, float]
    #: Events a second with a register as large whose members beyond the national ones cover nobody (the largest
    #: size only; None for the others).
    beside: float | None = None


def _data(event: CloudEvent[Contract]) -> ForeignerEvent:
    data = event.data
    if not isinstance(data, ForeignerEvent):  # pragma: no cover - the generator makes arrivals only
        raise TypeError(event.type)
    return data


async def _project(
    admin_url: str, members: Sequence[Agency], villages: list[str], seed: int, catalog: TopicCatalog
) -> tuple[float, float, int, int, dict[str, float]]:
    """Applies every person's arrival; returns events a second, agencies covering a person on average, the rows
    written, the rows expected and the tables' sizes on disk."""
    urls = await fresh_database(admin_url, "timpora_bench_scale", role_prefix="timpora_bench_scale")
    engine = make_engine(DatabaseSettings(url=urls["sharing"], pool_size=2), application_name="bench", schema="sharing")
    try:
        await upgrade(engine, "timpora.sharing", schema="sharing")
        sessions = make_session_factory(engine)
        index = Agreements(member.agreement for member in members if member.agreement is not None)
        spent = 0.0
        covering = 0
        batch: list[CloudEvent[Contract]] = []

        async def flush() -> float:
            started = time.perf_counter()
            async with sessions() as session, session.begin():
                await projection.apply_many(session, batch, index, NOW, catalog)
            return time.perf_counter() - started

        sample = set(random.Random(seed).sample(range(len(villages)), min(SAMPLE, len(villages))))
        people: dict[UUID, str] = {}
        for number, event in enumerate(national.arrivals(villages, seed)):
            if number in sample:
                people[UUID(event.subject or "")] = villages[number]
            batch.append(event)
            # Counted by the index, outside the timing; the sample below checks the index against every member.
            covering += len(index.may_show(Whereabouts.of(_data(event))))
            if len(batch) == BATCH:
                spent += await flush()
                batch = []
        if batch:
            spent += await flush()
        async with engine.connect() as connection:
            driver = await driver_connection(connection)
            rows = await driver.fetchval("SELECT count(*) FROM projections")
            sizes = {
                table: await driver.fetchval("SELECT pg_total_relation_size($1::regclass)", table) / 1e6
                for table in ("projections", "projection_history", "outbox")
            }
            await _same_people(driver, members, people)
    finally:
        await engine.dispose()
    return len(villages) / spent, covering / len(villages), rows, covering, sizes


async def _same_people(driver: asyncpg.Connection, members: Sequence[Agency], people: dict[UUID, str]) -> None:
    """A sample of people: the agencies holding their rows are exactly the members whose jurisdiction holds where
    they live, found by going through every member (not the index)."""
    held: dict[UUID, set[str]] = {}
    for row in await driver.fetch(
        "SELECT agency_id, foreigner_id FROM projections WHERE foreigner_id = ANY($1::uuid[])", list(people)
    ):
        held.setdefault(row["foreigner_id"], set()).add(row["agency_id"])
    for person, village in people.items():
        expected = {member.id for member in members if regions.is_within_any(village, member.jurisdiction)}
        found = held.get(person, set())
        if found != expected:
            raise AssertionError(f"scale: the person in {village} is held by {sorted(found)}, not {sorted(expected)}")


def _route(members: Sequence[Agency], events: Iterable[CloudEvent[Contract]]) -> tuple[float, float]:
    """Routes ``events``; returns events a second and agencies chosen per event. Checked: the local government
    chosen is the nearest one of every member (found by going through them all)."""
    directory = Directory({member.id: member for member in members})
    subjects = [Subject.of("foreigner.arrived", _data(event)) for event in events]
    started = time.perf_counter()
    decided = [route(subject, RULES, directory, NOW) for subject in subjects]
    seconds = time.perf_counter() - started
    governments = [member for member in members if member.kind is AgencyKind.LOCAL_GOVERNMENT]
    for subject, decisions in zip(subjects[:SAMPLE], decided[:SAMPLE], strict=True):
        place = subject.places[0]
        deepest = max((member.depth_for(place) for member in governments), default=0)
        nearest = {member.id for member in governments if deepest and member.depth_for(place) == deepest}
        chosen = {decision.agency_id for decision in decisions}
        if not nearest <= chosen:
            raise AssertionError(
                f"scale: routing for {place} chose {sorted(chosen)}, the nearest are {sorted(nearest)}"
            )
    return len(subjects) / seconds, statistics.mean(len(decisions) for decisions in decided)


async def _alert(
    admin_url: str, members: Sequence[Agency], events: Sequence[CloudEvent[Contract]], directory: Path
) -> tuple[int, dict[str, float]]:
    """Writes the alerts of ``events`` as the alerts service does (its directory synced from a register file of
    ``members``, the same rules as routing, 500 events a transaction); returns the alerts opened and the alert
    tables' sizes on disk."""
    urls = await fresh_database(admin_url, "timpora_bench_scale_alerts", role_prefix="timpora_bench_scale_alerts")
    engine = make_engine(DatabaseSettings(url=urls["alerts"], pool_size=2), application_name="bench", schema="alerts")
    register_file, rules_file = directory / "register.yaml", directory / "rules.yaml"
    register_file.write_text(
        yaml.safe_dump({"members": [member.model_dump(mode="json", exclude_defaults=True) for member in members]}),
        encoding="utf-8",
    )
    rules_file.write_text(
        yaml.safe_dump({"rules": [rule.model_dump(mode="json", exclude_defaults=True) for rule in RULES]}),
        encoding="utf-8",
    )
    try:
        await upgrade(engine, "timpora.alerts", schema="alerts")
        sessions = make_session_factory(engine)
        clock = ManualClock(NOW)
        alerting = Alerting(RuleBook(rules_file), clock, DirectoryCache(register_file, sessions, clock))
        for start in range(0, len(events), BATCH):
            async with sessions() as session, session.begin():
                for event in events[start : start + BATCH]:
                    await alerting.handle(event, session)
                await alerting.flush(session)
        async with engine.connect() as connection:
            driver = await driver_connection(connection)
            opened = await driver.fetchval("SELECT count(*) FROM alerts")
            sizes = {
                table: await driver.fetchval("SELECT pg_total_relation_size($1::regclass)", table) / 1e6
                for table in ALERT_TABLES
            }
    finally:
        await engine.dispose()
    return opened, sizes


async def run_all(admin_url: str, catalog: TopicCatalog, *, people: int, sizes: Sequence[int]) -> list[Result]:
    seed = 15
    villages = national.home_villages(people, seed)
    routed = list(national.arrivals(villages[:ROUTED], seed))
    measured: list[Size] = []
    for agencies in sizes:
        members = national.register(agencies, villages)
        projected, covering, rows, expected, megabytes = await _project(admin_url, members, villages, seed, catalog)
        rate, decisions = _route(members, routed)
        beside = None
        if agencies == sizes[-1] and agencies > sizes[0]:
            control = national.register_beside(agencies, villages)
            beside, control_covering, *_ = await _project(admin_url, control, villages, seed, catalog)
            if control_covering != len(national.NATIONAL_KINDS):
                raise AssertionError(f"scale: {control_covering} cover each person beside the national members")
        measured.append(Size(agencies, projected, rate, covering, decisions, rows, expected, megabytes, beside))
    alerted = routed[: min(ALERTED, len(routed))]
    written = []
    for agencies in (sizes[0], sizes[-1]):
        with tempfile.TemporaryDirectory() as directory:
            members = national.register(agencies, villages)
            written.append(await _alert(admin_url, members, alerted, Path(directory)))
    return [*_results(measured, people), _alert_result(len(alerted), written[0], written[-1], people, sizes)]


def _alert_result(
    events: int,
    base: tuple[int, dict[str, float]],
    largest: tuple[int, dict[str, float]],
    people: int,
    sizes: Sequence[int],
) -> Result:
    def per_alert(written: tuple[int, dict[str, float]]) -> float:
        return sum(written[1].values()) * 1e6 / written[0]

    opened, tables = largest
    total = sum(tables.values())
    listed = ", ".join(f"{table} {megabytes:,.1f} MB" for table, megabytes in tables.items())
    return Result(
        name=f"alert tables on disk per alert, register of {sizes[-1]:,} agencies ({events:,} arrivals routed and "
        f"written, {opened / events:.1f} alerts each)",
        unit="bytes/alert",
        ours=per_alert(largest),
        raw=per_alert(base),
        baseline=f"the same arrivals' alerts with {sizes[0]:,} national agencies ({base[0] / events:.1f} each)",
        note=f"{listed} ({total:,.1f} MB; {total / events * people:,.0f} MB at this rate for {people:,} "
        "arrivals); written by the alerts service's own path (Alerting.handle, the directory synced from the "
        "register); target: an alert costs what it costs whatever the register's size (ratio <= 1.2)",
        target=1.2,
        lower_is_better=True,
    )


def _results(measured: list[Size], people: int) -> list[Result]:
    base, largest = measured[0], measured[-1]
    results: list[Result] = []
    for size in measured[1:]:
        results.append(
            Result(
                name=f"live projection, register of {size.agencies:,} agencies shaped like Indonesia ({people:,} "
                f"people; {size.covering:.1f} agencies cover each)",
                unit="events/s",
                ours=size.projected,
                raw=base.projected,
                baseline=f"the same events with {base.agencies:,} national agencies ({base.covering:.1f} cover each)",
                note="batches of 500 in one transaction each (projection.apply_many), rows, history and agency-topic "
                "outbox written; target: within 80 % of the small register's rate. An event writes a set of rows per "
                f"agency covering its person, and more cover each here ({size.covering:.1f} against "
                f"{base.covering:.1f}), which alone can take the ratio down to {base.covering / size.covering:.2f}",
                target=0.8,
            )
        )
        if size.beside is not None:
            results.append(
                Result(
                    name=f"live projection, register of {size.agencies:,} agencies of which all but the "
                    f"{base.agencies:,} national ones cover nobody ({people:,} people; {base.covering:.1f} cover each)",
                    unit="events/s",
                    ours=size.beside,
                    raw=base.projected,
                    baseline=f"the same events with the {base.agencies:,} national agencies alone",
                    note="the same agencies covering each person on both sides: what the register's size alone "
                    "costs an event; target: within 80 %",
                    target=0.8,
                )
            )
        results.append(
            Result(
                name=f"alerts routing, register of {size.agencies:,} agencies ({size.decisions:.1f} chosen per event)",
                unit="events/s",
                ours=size.routed,
                raw=base.routed,
                baseline=f"the same events routed with {base.agencies:,} national agencies",
                note="routing.route over the nearest village, local government and police; target: within 80 %",
                target=0.8,
            )
        )
    sizes = ", ".join(f"{table} {megabytes:,.0f} MB" for table, megabytes in largest.megabytes.items())
    results.append(
        Result(
            name=f"projection rows, register of {largest.agencies:,} agencies ({people:,} people)",
            unit="rows",
            ours=largest.rows,
            raw=largest.expected_rows,
            baseline="the sum over people of the agencies whose jurisdiction holds them",
            note=f"on disk: {sizes}",
            target=1.2,
            lower_is_better=True,
        )
    )
    return results
