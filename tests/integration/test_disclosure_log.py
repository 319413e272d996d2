"""The disclosure log against real PostgreSQL: what a service's own role can and cannot do to it, and what
``verify`` catches when someone who can (the owner, a superuser) tampers with it. Each case gets a database of
its own: tampering with the shared test database's log would break every other test's chain."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tests.support import stack as stacks
from tests.support.scratch import scratch_database
from tests.support.waiting import until
from timpora.common import disclosures
from timpora.common.db.bootstrap import ServiceDatabase, bootstrap
from timpora.common.db.migrations import upgrade
from timpora.common.disclosures import Basis, Channel, Disclosure, DisclosureLog
from timpora.sharing import verification

PERSON = uuid.UUID("7d4f3c9e-0c55-4a57-9d0f-3a54b1f7e001")
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _row(index: int, agency: str = "desa-lajing") -> Disclosure:
    return Disclosure(
        agency_id=agency,
        channel=Channel.API,
        reference="GET /v1/foreigners",
        record_ids=[PERSON],
        fields=["full_name", "presence"],
        basis=Basis.AGREEMENT,
        purpose="Knowing which foreigners live in the village",
        agreement_version=4,
        disclosed_at=START + timedelta(seconds=index),
        key_id=uuid.uuid4(),
        query={"page": str(index)},
    )


class Scratch:
    def __init__(self, service: AsyncEngine, admin: asyncpg.Connection) -> None:
        self.service = service
        self.admin = admin

    async def verify(self) -> disclosures.Verified:
        async with self.service.connect() as connection:
            return await disclosures.verify(connection)

    async def as_admin(self, *statements: str) -> None:
        for statement in statements:
            await self.admin.execute(statement)

    async def as_owner(self, *statements: str) -> None:
        """Runs ``statements`` as someone who owns the log (the trigger disabled around them)."""
        async with self.admin.transaction():
            await self.admin.execute("ALTER TABLE disclosure.log DISABLE TRIGGER log_append_only")
            for statement in statements:
                await self.admin.execute(statement)
            await self.admin.execute("ALTER TABLE disclosure.log ENABLE TRIGGER log_append_only")


@pytest.fixture
async def scratch(stack: stacks.Stack) -> AsyncIterator[Scratch]:
    async with scratch_database(stack.pg_admin_url, role_prefix="timpora_logtest") as database:
        engine = database.engine("sharing")
        try:
            yield Scratch(engine, database.admin)
        finally:
            await engine.dispose()


async def _five_checkpointed(scratch: Scratch) -> None:
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])
    await disclosures.checkpoint(scratch.service)


async def test_an_untouched_log_verifies_and_a_persons_disclosures_are_found(scratch: Scratch) -> None:
    await _five_checkpointed(scratch)
    await disclosures.write(scratch.service, [_row(5, agency="polres-bangkalan")])
    verified = await scratch.verify()
    assert (verified.checked, verified.broken) == (6, None)
    async with scratch.service.connect() as connection:
        found = await disclosures.export(connection, foreigner_id=PERSON)
        by_agency = await disclosures.export(connection, agency_id="polres-bangkalan")
    assert len(found) == 6
    assert [row["agency_id"] for row in by_agency] == ["polres-bangkalan"]
    assert found[0]["fields"] == ["full_name", "presence"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE disclosure.log SET purpose = 'edited'",
        "DELETE FROM disclosure.log",
        "TRUNCATE disclosure.log",
        "ALTER TABLE disclosure.log DISABLE TRIGGER log_append_only",
        "DROP TABLE disclosure.log",
        "DELETE FROM disclosure.checkpoints",
        "INSERT INTO disclosure.checkpoints (last_id, last_hash) VALUES (1, 'forged')",
    ],
)
async def test_the_services_own_role_can_only_append_and_read(scratch: Scratch, statement: str) -> None:
    await _five_checkpointed(scratch)
    async with scratch.service.connect() as connection:
        with pytest.raises(DBAPIError, match=r"permission denied|must be owner|append-only"):
            await connection.execute(text(statement))
    assert (await scratch.verify()).broken is None


async def test_an_edited_row_breaks_the_chain(scratch: Scratch) -> None:
    await _five_checkpointed(scratch)
    await scratch.as_owner("UPDATE disclosure.log SET agency_id = 'someone-else' WHERE id = 2")
    assert (await scratch.verify()).broken == "the chain breaks at disclosure 2"


async def test_deleting_the_newest_rows_is_caught_by_the_checkpoint(scratch: Scratch) -> None:
    await _five_checkpointed(scratch)
    await scratch.as_owner("DELETE FROM disclosure.log WHERE id >= 4")
    verified = await scratch.verify()
    # The three rows left chain perfectly; only the anchor knows there were five.
    assert verified.checked == 3
    assert verified.broken == "disclosure 5, anchored by a checkpoint, is missing"


async def test_deleting_a_middle_row_and_recomputing_every_later_hash_is_caught_by_the_checkpoint(
    scratch: Scratch,
) -> None:
    await _five_checkpointed(scratch)
    # A careful forger: removes row 3 and rewrites rows 4 and 5 so that the chain is whole again.
    await _remove_row_3_and_rechain(scratch)
    verified = await scratch.verify()
    # The chain is whole (row 4 links to row 2), but row 5 is not what the checkpoint saw.
    assert verified.broken == "disclosure 5 differs from the checkpoint that anchored it"


async def _remove_row_3_and_rechain(scratch: Scratch) -> str:
    """Removes row 3 of five and rewrites rows 4 and 5 so that the chain is whole again; returns the new head."""
    async with scratch.service.connect() as connection:
        kept = (await connection.execute(select(disclosures.log_table).order_by("id"))).all()
    statements = ["DELETE FROM disclosure.log WHERE id = 3"]
    previous = kept[1].hash
    for row in kept[3:]:
        forged = disclosures.chain_hash(previous, disclosures.from_row(row))
        statements.append(
            f"UPDATE disclosure.log SET previous_hash = '{previous}', hash = '{forged}' WHERE id = {row.id}"  # noqa: S608
        )
        previous = forged
    await scratch.as_owner(*statements)
    return str(previous)


async def test_two_appends_cannot_fork_the_chain(scratch: Scratch) -> None:
    await disclosures.write(scratch.service, [_row(0)])
    async with scratch.service.connect() as connection:
        head = (await connection.execute(select(disclosures.log_table))).one()
    # A second row claiming the same predecessor, as a racing append without the lock would write: the owner's
    # trigger refuses it (it must link to the head), and the unique constraint would if the trigger were gone.
    async with scratch.service.begin() as connection:
        with pytest.raises(DBAPIError, match="links to the head of the log"):
            await connection.execute(
                disclosures.log_table.insert().values(
                    disclosed_at=START,
                    agency_id="x1",
                    channel="api",
                    reference="r",
                    query={},
                    record_ids=[],
                    fields=[],
                    basis="agreement",
                    purpose="p",
                    agreement_version=1,
                    previous_hash=head.previous_hash,
                    hash="f" * 64,
                )
            )
    await scratch.as_admin(
        "ALTER TABLE disclosure.log DISABLE TRIGGER log_linked",
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        await scratch.admin.execute(
            "INSERT INTO disclosure.log (disclosed_at, agency_id, channel, reference, query, record_ids, fields, basis,"
            " purpose, agreement_version, previous_hash, hash) VALUES (now(), 'x1', 'api', 'r', '{}', '{}', '{}',"
            " 'agreement', 'p', 1, $1, $2)",
            head.previous_hash,
            "f" * 64,
        )


async def test_an_append_outside_read_committed_is_refused(scratch: Scratch) -> None:
    async with scratch.service.connect() as plain:
        connection = await plain.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            with pytest.raises(RuntimeError, match=r"READ COMMITTED, not repeatable read"):
                await disclosures.append(connection, [_row(0)])


async def test_concurrent_records_share_commits_and_each_waits_for_its_own(scratch: Scratch) -> None:
    log = DisclosureLog(scratch.service)
    try:
        await asyncio.gather(*(log.record([_row(index)]) for index in range(40)))
    finally:
        await log.close()
    async with scratch.service.connect() as connection:
        transactions = (
            await connection.execute(text("SELECT count(DISTINCT xmin::text) FROM disclosure.log"))
        ).scalar()
        count = (await connection.execute(text("SELECT count(*) FROM disclosure.log"))).scalar()
    assert count == 40
    # Forty callers at once, far fewer commits: they were gathered.
    assert transactions is not None
    assert transactions < 40
    assert (await scratch.verify()).broken is None


async def test_a_batch_that_cannot_be_written_fails_every_caller_in_it(scratch: Scratch) -> None:
    log = DisclosureLog(scratch.service)
    too_long = _row(1, agency="x" * 100)  # the column holds 63: the whole batch's transaction fails
    try:
        results = await asyncio.gather(log.record([_row(0)]), log.record([too_long]), return_exceptions=True)
        assert all(isinstance(result, DBAPIError) for result in results), results
        await log.record([_row(2)])  # the next batch is written
    finally:
        await log.close()
    verified = await scratch.verify()
    assert (verified.checked, verified.broken) == (1, None)


async def test_callers_whose_batch_is_being_written_when_the_log_closes_are_told_it_failed(scratch: Scratch) -> None:
    log = DisclosureLog(scratch.service)
    # Hold the chain's lock so that the batch's write waits in the database while the log is closed.
    async with scratch.admin.transaction():
        await scratch.admin.execute("SELECT pg_advisory_xact_lock(hashtext($1))", disclosures.CHAIN_LOCK)
        waiting = asyncio.ensure_future(log.record([_row(0)]))
        await asyncio.sleep(0)  # the writer takes the batch

        async def blocked() -> bool:
            query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            return bool(await scratch.admin.fetchval(query))

        await until(blocked, what="the batch's write waiting for the chain's lock", timeout_s=10)
        await log.close()
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.wait_for(waiting, timeout=10)


async def test_a_row_with_an_id_of_its_own_choosing_is_refused_and_the_log_goes_on(scratch: Scratch) -> None:
    # OVERRIDING SYSTEM VALUE would let the service's role put a row ahead of every later one and jam the chain.
    await disclosures.write(scratch.service, [_row(0)])
    async with scratch.service.connect() as connection:
        head = (await connection.execute(select(disclosures.log_table.c.hash))).scalar_one()
    async with scratch.service.begin() as connection:
        with pytest.raises(DBAPIError, match="takes its id from the log"):
            await connection.execute(
                text(
                    "INSERT INTO disclosure.log (id, disclosed_at, agency_id, channel, reference, query, record_ids,"
                    " fields, basis, purpose, agreement_version, previous_hash, hash) OVERRIDING SYSTEM VALUE VALUES"
                    " (9000000000000000000, now(), 'x1', 'api', 'r', '{}', '{}', '{}', 'agreement', 'p', 1,"
                    " :head, :forged)"
                ),
                {"head": head, "forged": "f" * 64},
            )
    await disclosures.write(scratch.service, [_row(1)])
    verified = await scratch.verify()
    assert (verified.checked, verified.broken, verified.last_id) == (2, None, 2)


async def test_verify_reports_every_break_not_only_the_first(scratch: Scratch) -> None:
    await _five_checkpointed(scratch)
    await scratch.as_owner(
        "UPDATE disclosure.log SET purpose = 'edited' WHERE id = 2",
        "UPDATE disclosure.log SET purpose = 'edited' WHERE id = 4",
    )
    verified = await scratch.verify()
    assert verified.breaks == ("the chain breaks at disclosure 2", "the chain breaks at disclosure 4")


async def test_a_forger_who_rewrites_the_checkpoints_too_is_caught_by_their_copies_outside_the_database(
    scratch: Scratch,
) -> None:
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])
    anchor = await disclosures.checkpoint(scratch.service)
    assert anchor is not None
    copies = [disclosures.Anchor.from_json(anchor.to_json())]  # what the service sent to Kafka
    previous = await _remove_row_3_and_rechain(scratch)
    await scratch.admin.execute("ALTER TABLE disclosure.checkpoints DISABLE TRIGGER checkpoints_append_only")
    await scratch.admin.execute("UPDATE disclosure.checkpoints SET last_hash = $1 WHERE last_id = 5", previous)
    await scratch.admin.execute("ALTER TABLE disclosure.checkpoints ENABLE TRIGGER checkpoints_append_only")

    assert (await scratch.verify()).broken is None  # the database alone now tells a consistent lie
    async with scratch.service.connect() as connection:
        verified = await disclosures.verify(connection, copies)
    assert verified.broken == "checkpoint of disclosure 5 differs from its copy outside the database"
    assert "disclosure 5 differs from the checkpoint that anchored it" in verified.breaks


def _old_rows(count: int) -> list[dict[str, object]]:
    """Rows of the sharing service's own log as it wrote them before revision 0008, chained its way."""
    rows, previous = [], "0" * 64
    for index in range(count):
        row = {
            "agency_id": "desa-lajing",
            "key_id": uuid.uuid4(),
            "endpoint": "GET /v1/foreigners",
            "query": {"page": str(index)},
            "record_ids": [PERSON],
            "purpose": "Knowing which foreigners live in the village",
            "agreement_version": 4,
            "disclosed_at": START + timedelta(seconds=index),
        }
        content = json.dumps(
            {
                **{name: row[name] for name in ("agency_id", "endpoint", "query", "purpose", "agreement_version")},
                "key_id": str(row["key_id"]),
                "record_ids": [str(PERSON)],
                "disclosed_at": (START + timedelta(seconds=index)).isoformat(),
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        digest = hashlib.sha256((previous + content).encode()).hexdigest()
        rows.append({**row, "previous_hash": previous, "hash": digest})
        previous = digest
    return rows


async def _at_0007_with(scratch: Scratch, rows: list[dict[str, object]]) -> None:
    await upgrade(scratch.service, "timpora.sharing", schema="sharing", revision="0007")
    async with scratch.service.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO sharing.agreements (agency_id, version, document) "
                'VALUES (\'desa-lajing\', 4, \'{"fields": ["full_name", "presence"]}\')'
            )
        )
        for row in rows:
            await connection.execute(
                text(
                    "INSERT INTO sharing.disclosures (agency_id, key_id, endpoint, query, record_ids, purpose, "
                    "agreement_version, disclosed_at, previous_hash, hash) VALUES (:agency_id, :key_id, :endpoint, "
                    "CAST(:query AS jsonb), :record_ids, :purpose, :agreement_version, :disclosed_at, :previous_hash, "
                    ":hash)"
                ),
                {**row, "query": json.dumps(row["query"])},
            )


async def test_the_old_log_moves_into_the_new_one_with_its_fields(scratch: Scratch) -> None:
    await _at_0007_with(scratch, _old_rows(3))

    await upgrade(scratch.service, "timpora.sharing", schema="sharing")

    verified = await scratch.verify()
    assert (verified.checked, verified.broken) == (3, None)
    async with scratch.service.connect() as connection:
        moved = await disclosures.export(connection, foreigner_id=PERSON)
    assert [(row["channel"], row["fields"], row["agreement_version"]) for row in moved] == [
        ("api", ["full_name", "presence"], 4)
    ] * 3


async def test_an_old_log_that_was_tampered_with_is_not_moved(scratch: Scratch) -> None:
    rows = _old_rows(3)
    rows[1]["purpose"] = "edited while the service's role owned the table"
    await _at_0007_with(scratch, rows)

    with pytest.raises(RuntimeError, match="breaks at row 2"):
        await upgrade(scratch.service, "timpora.sharing", schema="sharing")

    assert (await scratch.verify()).checked == 0


async def test_alerts_and_sharing_in_two_databases_are_refused(stack: stacks.Stack) -> None:
    # Two databases would mean two logs, and a data subject's request answered by halves.
    services = [
        ServiceDatabase(schema="alerts", role="a", password="p", database="one"),  # noqa: S106 - never used: refused first
        ServiceDatabase(schema="sharing", role="s", password="p", database="two"),  # noqa: S106 - never used: refused first
    ]
    with pytest.raises(ValueError, match="must share one database"):
        await bootstrap(stack.pg_admin_url, services)


# Going on from an earlier walk (a look at the record reads only what was added since the last check).


async def _verify_after(scratch: Scratch, after: disclosures.Verified) -> disclosures.Verified:
    async with scratch.service.connect() as connection:
        return await disclosures.verify(connection, after=after)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=1, max_size=5))
async def test_walks_that_go_on_from_each_other_end_where_a_whole_walk_does(
    scratch: Scratch, chunks: list[tuple[int, bool]]
) -> None:
    walked = await scratch.verify()
    for rows, anchored in chunks:
        if rows:
            await disclosures.write(scratch.service, [_row(index) for index in range(rows)])
        if anchored:
            await disclosures.checkpoint(scratch.service)
        walked = await _verify_after(scratch, walked)
        assert walked == await scratch.verify()
        assert walked.broken is None


async def test_the_newest_rows_walked_removed_since_are_caught_by_the_next_walk_going_on(scratch: Scratch) -> None:
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])  # no checkpoint names them
    walked = await scratch.verify()
    await scratch.as_owner("DELETE FROM disclosure.log WHERE id >= 4")

    # A whole walk sees three rows that chain perfectly; only the earlier walk knew there were five.
    assert (await scratch.verify()).broken is None
    went_on = await _verify_after(scratch, walked)
    assert went_on.broken == "disclosure 5 was removed or changed after it was verified"
    # ...and says so first on every later look, rows appended or not.
    await disclosures.write(scratch.service, [_row(9)])
    assert (await _verify_after(scratch, went_on)).broken == went_on.broken


async def test_rows_walked_and_rechained_since_are_caught_by_the_next_walk_going_on(scratch: Scratch) -> None:
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])
    walked = await scratch.verify()
    await _remove_row_3_and_rechain(scratch)

    assert (await _verify_after(scratch, walked)).broken == "disclosure 5 was removed or changed after it was verified"


async def test_a_checkpoint_taken_since_is_compared_with_the_row_walked_before_it_names(scratch: Scratch) -> None:
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])
    walked = await scratch.verify()
    # The owner edits row 5's hash after the walk and before the checkpoint, then puts it back.
    async with scratch.service.connect() as connection:
        head = await connection.scalar(select(disclosures.log_table.c.hash).where(disclosures.log_table.c.id == 5))
    await scratch.as_owner("UPDATE disclosure.log SET hash = repeat('e', 64) WHERE id = 5")
    await disclosures.checkpoint(scratch.service)
    await scratch.as_owner(f"UPDATE disclosure.log SET hash = '{head}' WHERE id = 5")  # noqa: S608 - a hash read above

    assert (await _verify_after(scratch, walked)).broken == "disclosure 5 differs from the checkpoint that anchored it"


async def test_a_row_that_no_longer_reads_as_a_disclosure_is_a_break_and_the_walk_goes_on(scratch: Scratch) -> None:
    await _five_checkpointed(scratch)
    await scratch.as_owner(
        "UPDATE disclosure.log SET channel = 'carrier-pigeon' WHERE id = 2",
        "UPDATE disclosure.log SET purpose = 'edited' WHERE id = 4",
    )

    assert (await scratch.verify()).breaks == ("the chain breaks at disclosure 2", "the chain breaks at disclosure 4")


# The check the disclosure record's page goes on from, kept by the sharing service (timpora.sharing.verification).

HOUR_S = 3600.0


async def _migrated(scratch: Scratch) -> None:
    await upgrade(scratch.service, "timpora.sharing", schema="sharing")


async def _kept(scratch: Scratch) -> tuple[datetime | None, list[str]]:
    async with scratch.service.connect() as connection:
        row = (await connection.execute(text("SELECT walked_at, breaks FROM sharing.disclosure_walk"))).first()
    return (None, []) if row is None else (row.walked_at, list(row.breaks))


async def test_a_look_at_the_record_goes_on_from_the_last_check_whichever_instance_made_it(scratch: Scratch) -> None:
    await _migrated(scratch)
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])
    # Before the first whole walk (the worker makes it at start) a look walks nothing: it would walk every entry.
    pending = await verification.current(scratch.service, HOUR_S)
    assert (pending.result.checked, pending.walked_at) == (0, None)
    first = await verification.walk_whole(scratch.service)
    assert first is not None
    assert (first.result.checked, first.result.broken) == (5, None)

    # An entry walked before and edited since is not read again by a look...
    await scratch.as_owner("UPDATE disclosure.log SET purpose = 'edited' WHERE id = 2")
    await disclosures.write(scratch.service, [_row(5)])
    another_instance = create_async_engine(
        scratch.service.url, connect_args={"server_settings": {"search_path": "sharing"}}
    )
    try:
        looked = await verification.current(another_instance, HOUR_S)
    finally:
        await another_instance.dispose()
    assert (looked.result.checked, looked.result.broken, looked.walked_at, looked.overdue) == (
        6,
        None,
        first.walked_at,
        False,
    )

    # ...the whole walk reads it, and from then on every look says so.
    walked = await verification.walk_whole(scratch.service)
    assert walked is not None
    assert walked.result.broken == "the chain breaks at disclosure 2"
    await disclosures.write(scratch.service, [_row(6)])
    after = await verification.current(scratch.service, HOUR_S)
    assert (after.result.checked, after.result.broken) == (7, "the chain breaks at disclosure 2")


async def test_a_whole_walk_keeps_what_a_look_found_and_only_a_recheck_starts_afresh(scratch: Scratch) -> None:
    await _migrated(scratch)
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])  # no checkpoint names them
    await verification.walk_whole(scratch.service)
    await scratch.as_owner("DELETE FROM disclosure.log WHERE id >= 4")
    removed = "disclosure 5 was removed or changed after it was verified"
    assert (await verification.current(scratch.service, HOUR_S)).result.broken == removed

    # A whole walk sees three rows that chain perfectly: what the look found stays found.
    walked = await verification.walk_whole(scratch.service)
    assert walked is not None
    assert walked.result.broken == removed
    assert (await verification.current(scratch.service, HOUR_S)).result.broken == removed

    afresh = await verification.walk_whole(scratch.service, afresh=True)
    assert afresh is not None
    assert (afresh.result.checked, afresh.result.broken) == (3, None)


async def test_one_instance_walks_the_whole_chain_at_a_time(scratch: Scratch) -> None:
    await _migrated(scratch)
    await disclosures.write(scratch.service, [_row(0)])
    async with scratch.service.connect() as other, other.begin():
        # Another instance's walk under way.
        await other.execute(text("SELECT pg_advisory_xact_lock(hashtext('timpora-disclosure-whole-walk'))"))
        assert await verification.walk_whole(scratch.service) is None
        assert await _kept(scratch) == (None, [])
    assert await verification.walk_whole(scratch.service) is not None
    # ...and one made a moment ago by another instance is not made again.
    assert await verification.walk_whole(scratch.service, unless_within_s=HOUR_S) is None


async def test_the_whole_chain_is_walked_again_every_interval(scratch: Scratch) -> None:
    await _migrated(scratch)
    await disclosures.write(scratch.service, [_row(index) for index in range(3)])
    worker = asyncio.create_task(verification.walk_every(scratch.service, interval_s=0.2))
    try:
        # None was ever made: at once.
        first = await _eventually_kept(scratch, lambda walked_at, _: walked_at is not None)
        await scratch.as_owner("UPDATE disclosure.log SET purpose = 'edited' WHERE id = 2")
        later = await _eventually_kept(scratch, lambda _, breaks: breaks == ["the chain breaks at disclosure 2"])
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    assert first is not None
    assert later is not None
    assert later > first


async def test_a_last_walk_dated_in_the_future_is_no_reason_not_to_walk_and_the_page_warns(scratch: Scratch) -> None:
    await _migrated(scratch)
    await disclosures.write(scratch.service, [_row(index) for index in range(3)])
    await verification.walk_whole(scratch.service)
    await scratch.as_owner("UPDATE disclosure.log SET purpose = 'edited' WHERE id = 2")
    # The service's own role can write the kept check: it tries to put the next whole walk off for a year.
    async with scratch.service.begin() as connection:
        await connection.execute(text("UPDATE sharing.disclosure_walk SET walked_at = now() + interval '1 year'"))
    forged = await verification.current(scratch.service, HOUR_S)
    assert (forged.result.broken, forged.overdue) == (None, True)

    worker = asyncio.create_task(verification.walk_every(scratch.service, interval_s=HOUR_S))
    try:
        await _eventually_kept(scratch, lambda _, breaks: breaks == ["the chain breaks at disclosure 2"])
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    walked = await verification.current(scratch.service, HOUR_S)
    assert (walked.result.broken, walked.overdue) == ("the chain breaks at disclosure 2", False)


async def test_the_first_whole_walk_is_marked_begun_and_overdue_if_it_never_ends(scratch: Scratch) -> None:
    await _migrated(scratch)
    await disclosures.write(scratch.service, [_row(0)])
    async with scratch.service.connect() as other, other.begin():
        # Another instance's walk under way, as long as this block lasts.
        await other.execute(text("SELECT pg_advisory_xact_lock(hashtext('timpora-disclosure-whole-walk'))"))
        worker = asyncio.create_task(verification.walk_every(scratch.service, interval_s=HOUR_S))
        try:
            await until(lambda: _pending_marked(scratch), what="the first whole walk marked begun")
            pending = await verification.current(scratch.service, HOUR_S)
            assert (pending.walked_at, pending.overdue, pending.result.checked) == (None, False, 0)
            async with scratch.service.begin() as connection:
                await connection.execute(text("UPDATE sharing.disclosure_walk SET checked_at = now() - interval '3h'"))
            assert (await verification.current(scratch.service, HOUR_S)).overdue
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker


async def _pending_marked(scratch: Scratch) -> bool:
    async with scratch.service.connect() as connection:
        count = await connection.scalar(text("SELECT count(*) FROM sharing.disclosure_walk WHERE walked_at IS NULL"))
    return bool(count)


async def test_a_recheck_is_recorded_in_the_transaction_that_keeps_it_with_what_it_replaced(scratch: Scratch) -> None:
    await _migrated(scratch)
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])
    await verification.walk_whole(scratch.service)
    await scratch.as_owner("DELETE FROM disclosure.log WHERE id >= 4")
    await verification.current(scratch.service, HOUR_S)
    recorded: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    async def on_kept(connection: AsyncConnection, before: disclosures.Verified, after: disclosures.Verified) -> None:
        assert connection.in_transaction()
        recorded.append((before.breaks, after.breaks))

    await verification.walk_whole(scratch.service, afresh=True, on_kept=on_kept)

    assert recorded == [(("disclosure 5 was removed or changed after it was verified",), ())]


async def test_a_whole_walk_two_intervals_old_is_overdue(scratch: Scratch) -> None:
    await _migrated(scratch)
    await disclosures.write(scratch.service, [_row(0)])
    await verification.walk_whole(scratch.service)
    async with scratch.service.begin() as connection:
        await connection.execute(text("UPDATE sharing.disclosure_walk SET walked_at = now() - interval '3 hours'"))

    assert (await verification.current(scratch.service, HOUR_S)).overdue
    assert not (await verification.current(scratch.service, 2 * HOUR_S)).overdue


async def _eventually_kept(scratch: Scratch, holds: Callable[[datetime | None, list[str]], bool]) -> datetime | None:
    seen: list[tuple[datetime | None, list[str]]] = []

    async def kept_holds() -> bool:
        seen.append(await _kept(scratch))
        return holds(*seen[-1])

    await until(kept_holds, what="the kept check as expected")
    return seen[-1][0]
