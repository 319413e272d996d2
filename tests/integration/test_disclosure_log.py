"""The disclosure log against real PostgreSQL: what a service's own role can and cannot do to it, and what
``verify`` catches when someone who can (the owner, a superuser) tampers with it. Each case gets a database of
its own: tampering with the shared test database's log would break every other test's chain."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support import stack as stacks
from tests.support.clock import ManualClock
from tests.support.waiting import until
from timpora.common import disclosures
from timpora.common.db.bootstrap import ServiceDatabase, bootstrap, fresh_database
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
    database = f"timpora_log_{uuid.uuid4().hex[:8]}"
    urls = await fresh_database(stack.pg_admin_url, database, role_prefix="timpora_logtest")
    engine = create_async_engine(urls["sharing"], connect_args={"server_settings": {"search_path": "sharing"}})
    admin_url = make_url(stack.pg_admin_url).set(drivername="postgresql", database=database)
    admin = await asyncpg.connect(admin_url.render_as_string(hide_password=False))
    try:
        yield Scratch(engine, admin)
    finally:
        await admin.close()
        await engine.dispose()
        server = await asyncpg.connect(
            make_url(stack.pg_admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        try:
            await server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await server.close()


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


async def _migrated(scratch: Scratch) -> None:
    await upgrade(scratch.service, "timpora.sharing", schema="sharing")


async def test_a_look_at_the_record_goes_on_from_the_last_check_whichever_instance_made_it(scratch: Scratch) -> None:
    await _migrated(scratch)
    clock = ManualClock(START)
    await disclosures.write(scratch.service, [_row(index) for index in range(5)])
    first = await verification.current(scratch.service, clock)
    assert (first.verified.checked, first.verified.broken, first.walked_at) == (5, None, START)

    # An entry walked before and edited since is not read again by a look...
    await scratch.as_owner("UPDATE disclosure.log SET purpose = 'edited' WHERE id = 2")
    await disclosures.write(scratch.service, [_row(5)])
    clock.advance(minutes=5)
    another_instance = create_async_engine(
        scratch.service.url, connect_args={"server_settings": {"search_path": "sharing"}}
    )
    try:
        looked = await verification.current(another_instance, clock)
    finally:
        await another_instance.dispose()
    assert (looked.verified.checked, looked.verified.broken, looked.walked_at) == (6, None, START)

    # ...the whole walk reads it, and from then on every look says so.
    clock.advance(hours=1)
    walked = await verification.walk_whole(scratch.service, clock)
    assert (walked.verified.broken, walked.walked_at) == ("the chain breaks at disclosure 2", clock.now())
    await disclosures.write(scratch.service, [_row(6)])
    after = await verification.current(scratch.service, clock)
    assert (after.verified.checked, after.verified.broken) == (7, "the chain breaks at disclosure 2")


async def test_the_whole_chain_is_walked_again_when_the_last_whole_walk_is_an_interval_old(scratch: Scratch) -> None:
    await _migrated(scratch)
    clock = ManualClock(START)
    await disclosures.write(scratch.service, [_row(index) for index in range(3)])
    # Every second by the test's clock, which stands still until moved.
    worker = asyncio.create_task(verification.walk_every(scratch.service, clock, interval_s=1))
    try:
        # None was ever made: at once.
        await until(lambda: _walked_at(scratch, START), what="the first whole walk")
        await scratch.as_owner("UPDATE disclosure.log SET purpose = 'edited' WHERE id = 2")
        clock.advance(hours=2)
        await until(lambda: _walked_at(scratch, START + timedelta(hours=2)), what="the whole walk an interval later")
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    assert (await verification.current(scratch.service, clock)).verified.broken == "the chain breaks at disclosure 2"


async def _walked_at(scratch: Scratch, moment: datetime) -> bool:
    async with scratch.service.connect() as connection:
        return bool(await connection.scalar(text("SELECT walked_at FROM sharing.disclosure_walk")) == moment)
