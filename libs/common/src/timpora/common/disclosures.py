"""The disclosure log: one record of every disclosure of personal data to a member agency, on every channel
(its API reads and the reports handed to it, its Kafka topic, its alerts by webhook, e-mail and Kafka, their
escalations and replays), and of what the controller (the immigration office) receives, recorded as processing.

Each row says who (the agency, and the officer or key where known), what (the person ids and the fields), why
(the agreement's purpose and version, or the controller's processing), when, and by which channel. It answers a
data subject's request (UU 27/2022 art. 32) in one query, whichever service disclosed.

Tamper evidence, and why each part is there:

* The log lives in its own schema, ``disclosure``, created and owned by a role no service logs in as
  (:func:`ddl`, run by the database bootstrap); services may only INSERT and SELECT, and a trigger the owner
  holds refuses UPDATE, DELETE and TRUNCATE even to it by mistake.
* Rows are hash-chained: each row's hash is SHA-256 over the previous row's hash and its own content. An
  edited row, or a removed one, breaks the chain.
* A unique constraint on ``previous_hash`` makes a fork impossible: two appends that read the same head cannot
  both commit. Appends also take a transaction-scoped advisory lock and run at READ COMMITTED, set explicitly,
  so each one, once it holds the lock, reads the head the previous one committed (at REPEATABLE READ its
  snapshot could predate that commit and the constraint would refuse every other append).
* Checkpoints anchor the head: :func:`checkpoint` (a function owned by the owner, so a service can trigger a
  checkpoint but cannot write one of its choosing) stores the newest row's id and hash. Deleting the newest
  rows, or a middle row with every later hash recomputed, no longer matches an anchor taken after them, and
  :func:`verify` says so. Only rows newer than the last checkpoint are unanchored; services checkpoint every
  minute.

Writing the record does not serialise the reads behind one lock for their whole transaction:
:class:`DisclosureLog` gathers the records of concurrent requests into one short transaction (a group commit),
and each request waits for its own records to be durable before it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timpora.common.events import KafkaRecord

log = logging.getLogger(__name__)

SCHEMA = "disclosure"
GENESIS = "0" * 64
CHAIN_LOCK = "timpora-disclosure-log"
#: What the controller receives is its own processing, not a disclosure (UU 27/2022); recorded all the same.
CONTROLLER_PURPOSE = (
    "Processing by the controller (the immigration office) of the data it holds: not a disclosure to another agency"
)

metadata = MetaData(schema=SCHEMA)

# The table as services read and append to it; it is created by :func:`ddl`, not by a service's migrations.
log_table = Table(
    "log",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("disclosed_at", DateTime(timezone=True), nullable=False),
    Column("agency_id", String(63), nullable=False),
    Column("channel", String(20), nullable=False),
    #: Where: the endpoint, the topic, the message id.
    Column("reference", String(300), nullable=False),
    Column("officer", String(200)),
    Column("key_id", PG_UUID(as_uuid=True)),
    Column("query", JSONB, nullable=False),
    Column("record_ids", ARRAY(PG_UUID(as_uuid=True)), nullable=False),
    Column("fields", ARRAY(Text), nullable=False),
    Column("basis", String(20), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("agreement_version", Integer, nullable=False),
    Column("previous_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False),
    Index("log_by_agency", "agency_id", "disclosed_at"),
    Index("log_by_record", "record_ids", postgresql_using="gin"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
)


class Channel(StrEnum):
    API = "api"  # the sharing API (lists, one record, CSV, statistics, reports)
    COMMAND = "command"  # a report an operator ran as a command and handed over
    TOPIC = "topic"  # the agency's own events topic
    WEBHOOK = "webhook"  # an alert, escalation or digest by webhook
    EMAIL = "email"  # ... by e-mail
    KAFKA = "kafka"  # ... on the agency's alert topic
    ALERTS_API = "alerts-api"  # the agency reading its alerts through the alerts API
    REGISTRY = "registry"  # the controller's own staff reading its records in the registry (processing)


class Basis(StrEnum):
    AGREEMENT = "agreement"
    CONTROLLER = "controller"


@dataclass(frozen=True, slots=True)
class Disclosure:
    agency_id: str
    channel: Channel
    reference: str
    record_ids: Sequence[UUID]
    fields: Sequence[str]
    basis: Basis
    purpose: str
    agreement_version: int
    disclosed_at: datetime
    officer: str | None = None
    key_id: UUID | None = None
    query: Mapping[str, Any] = field(default_factory=dict)

    def content(self) -> str:
        """The row's content in canonical JSON: what its hash covers."""
        return json.dumps(
            {
                "disclosed_at": self.disclosed_at.astimezone(UTC).isoformat(),
                "agency_id": self.agency_id,
                "channel": str(self.channel),
                "reference": self.reference,
                "officer": self.officer,
                "key_id": None if self.key_id is None else str(self.key_id),
                "query": dict(self.query),
                "record_ids": [str(record) for record in self.record_ids],
                "fields": sorted(self.fields),
                "basis": str(self.basis),
                "purpose": self.purpose,
                "agreement_version": self.agreement_version,
            },
            sort_keys=True,
            separators=(",", ":"),
        )


def chain_hash(previous_hash: str, row: Disclosure) -> str:
    return hashlib.sha256((previous_hash + row.content()).encode()).hexdigest()


_INSERT = insert(log_table)  # built once: every batch appends with it


_TAKE_CHECKPOINT = text("SELECT * FROM disclosure.checkpoint()")
_ISOLATION = text("SELECT current_setting('transaction_isolation')")
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
_HEAD = select(log_table.c.hash).order_by(log_table.c.id.desc()).limit(1)


def _checked(isolation: object) -> None:
    if isolation != "read committed":
        raise RuntimeError(f"the disclosure log is appended at READ COMMITTED, not {isolation}")


async def append(connection: AsyncConnection, rows: Sequence[Disclosure]) -> None:
    """Appends ``rows`` in ``connection``'s transaction, which must run at READ COMMITTED (see the module)."""
    if not rows:
        return
    _checked(await connection.scalar(_ISOLATION))
    await connection.execute(_LOCK, {"key": CHAIN_LOCK})
    await connection.execute(_INSERT, _chained(await connection.scalar(_HEAD) or GENESIS, rows))


def append_sync(connection: Connection, rows: Sequence[Disclosure]) -> None:
    """:func:`append` on a synchronous connection (a migration's)."""
    if not rows:
        return
    _checked(connection.scalar(_ISOLATION))
    connection.execute(_LOCK, {"key": CHAIN_LOCK})
    connection.execute(_INSERT, _chained(connection.scalar(_HEAD) or GENESIS, rows))


def _chained(previous: str, rows: Sequence[Disclosure]) -> list[dict[str, Any]]:
    values = []
    for row in rows:
        digest = chain_hash(previous, row)
        values.append(
            {
                "disclosed_at": row.disclosed_at,
                "agency_id": row.agency_id,
                "channel": str(row.channel),
                "reference": row.reference,
                "officer": row.officer,
                "key_id": row.key_id,
                "query": dict(row.query),
                "record_ids": list(row.record_ids),
                "fields": sorted(row.fields),
                "basis": str(row.basis),
                "purpose": row.purpose,
                "agreement_version": row.agreement_version,
                "previous_hash": previous,
                "hash": digest,
            }
        )
        previous = digest
    return values


async def write(engine: AsyncEngine, rows: Sequence[Disclosure]) -> None:
    """Appends ``rows`` in a transaction of its own, committed when this returns."""
    async with engine.connect() as plain:
        connection = await plain.execution_options(isolation_level="READ COMMITTED")
        async with connection.begin():
            await append(connection, rows)


class DisclosureLog:
    """Group commit: the records of concurrent callers go to the database together, in one transaction; each
    caller's :meth:`record` returns once its own records are durable, and raises if they could not be written
    (the caller then discloses nothing)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pending: list[tuple[Sequence[Disclosure], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def record(self, rows: Sequence[Disclosure]) -> None:
        if not rows:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="disclosure-log")
        self._wake.set()
        await asyncio.shield(done)  # a caller that gives up does not cancel the others' commit

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await write(self._engine, [row for rows, _ in batch for row in rows])
            except BaseException as error:
                # Every waiter is told, whatever went wrong, even a stop mid-write: none may wait for ever, and
                # none may answer as if its record were written.
                failure = error if isinstance(error, Exception) else RuntimeError("the disclosure log is closed")
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failure)
                if not isinstance(error, Exception):
                    raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, done in self._pending:
            if not done.done():
                done.set_exception(RuntimeError("the disclosure log is closed"))
        self._pending = []


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint: the id and hash of the newest row at ``taken_at``."""

    last_id: int
    last_hash: str
    taken_at: datetime

    def record(self) -> KafkaRecord:
        """The anchor as its copy outside the database, on the anchors topic, keyed by the anchored row's id."""
        return KafkaRecord(key=str(self.last_id).encode(), value=self.to_json(), headers=())

    def to_json(self) -> bytes:
        return json.dumps(
            {"last_id": self.last_id, "last_hash": self.last_hash, "taken_at": self.taken_at.isoformat()}
        ).encode()

    @classmethod
    def from_json(cls, value: bytes) -> Anchor:
        document = json.loads(value)
        return cls(int(document["last_id"]), str(document["last_hash"]), datetime.fromisoformat(document["taken_at"]))


async def checkpoint(engine: AsyncEngine) -> Anchor | None:
    """Anchors the head of the chain (see the module); None for an empty log."""
    async with engine.begin() as connection:
        row = (await connection.execute(_TAKE_CHECKPOINT)).first()
    return None if row is None else Anchor(int(row.last_id), str(row.last_hash), row.taken_at)


async def checkpoints_every(
    engine: AsyncEngine, interval_s: float, copy: Callable[[Anchor], Awaitable[None]] | None = None
) -> None:
    """Takes a checkpoint every ``interval_s`` until cancelled, and hands each to ``copy`` (to keep outside the
    database); a failed one is retried at the next interval."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            anchor = await checkpoint(engine)
            if anchor is not None and copy is not None:
                await copy(anchor)
        except Exception:
            # The next interval tries again; the log says why.
            log.warning("disclosure log checkpoint failed", exc_info=True)


def from_row(row: Any) -> Disclosure:  # noqa: ANN401 - a row of log_table
    """A stored row as the disclosure it records (what its hash covers)."""
    return Disclosure(
        agency_id=row.agency_id,
        channel=Channel(row.channel),
        reference=row.reference,
        record_ids=row.record_ids,
        fields=row.fields,
        basis=Basis(row.basis),
        purpose=row.purpose,
        agreement_version=row.agreement_version,
        disclosed_at=row.disclosed_at,
        officer=row.officer,
        key_id=row.key_id,
        query=row.query,
    )


@dataclass(frozen=True, slots=True)
class Verified:
    checked: int
    #: Why the log cannot be trusted (the first reason), None if it can.
    broken: str | None = None
    #: Every reason found.
    breaks: tuple[str, ...] = ()
    #: Where the walk ended, for a later one to go on from (:func:`verify`'s ``after``): the newest row read (0 and
    #: the genesis hash for an empty log) and the newest checkpoint compared.
    last_id: int = 0
    last_hash: str = GENESIS
    last_checkpoint: int = 0


async def verify(connection: AsyncConnection, copies: Sequence[Anchor] = (), after: Verified | None = None) -> Verified:
    """Walks the whole chain and compares it with every checkpoint, and with ``copies`` of them kept outside the
    database (a checkpoint rewritten in the database no longer matches its copy). Every break is reported.

    Given ``after``, an earlier walk's result, it goes on from where that one ended: it reads only the rows and
    checkpoints added since, checks that the newest row walked is still there as it was (the newest rows removed,
    or the chain recomputed over them, shows there), and compares the checkpoints taken since that name older rows
    with those rows' hashes. A row walked before and edited since, its successors' links left as they were, is
    seen only by a whole walk: whoever goes on from an earlier walk walks the whole chain again every so often."""
    start = after or Verified(0)
    breaks = list(start.breaks)
    anchors, last_checkpoint = await _anchors(connection, start, copies, breaks)
    matched = await _walked_before(connection, start, anchors, breaks)
    previous, checked, last_id = start.last_hash, start.checked, start.last_id
    result = await connection.stream(select(log_table).where(log_table.c.id > start.last_id).order_by(log_table.c.id))
    async for row in result:
        if row.previous_hash != previous or row.hash != _rehashed(previous, row):
            _note(breaks, f"the chain breaks at disclosure {row.id}")
        anchored = anchors.get(row.id)
        if anchored is not None:
            if anchored != row.hash:
                _note(breaks, f"disclosure {row.id} differs from the checkpoint that anchored it")
            matched.add(row.id)
        # On from the row as it is: a second tampering further on is reported too.
        previous, checked, last_id = row.hash, checked + 1, row.id
    # A row gone from the middle breaks its successor's link above; the newest rows gone leave no successor,
    # only the anchors that named them.
    for missing in sorted(set(anchors) - matched):
        _note(breaks, f"disclosure {missing}, anchored by a checkpoint, is missing")
    return Verified(checked, breaks[0] if breaks else None, tuple(breaks), last_id, previous, last_checkpoint)


async def _anchors(
    connection: AsyncConnection, start: Verified, copies: Sequence[Anchor], breaks: list[str]
) -> tuple[dict[int, str], int]:
    """The checkpoints taken since ``start`` (row id to hash), with ``copies`` of them, and the newest one's id."""
    anchors: dict[int, str] = {}
    last_checkpoint = start.last_checkpoint
    taken = select(checkpoints).where(checkpoints.c.id > start.last_checkpoint).order_by(checkpoints.c.id)
    for row in await connection.execute(taken):
        anchors[row.last_id] = row.last_hash
        last_checkpoint = row.id
    for copy in copies:
        held = anchors.setdefault(copy.last_id, copy.last_hash)
        if held != copy.last_hash:
            _note(breaks, f"checkpoint of disclosure {copy.last_id} differs from its copy outside the database")
            anchors[copy.last_id] = copy.last_hash  # the copy is the one nobody here could rewrite
    return anchors, last_checkpoint


async def _walked_before(
    connection: AsyncConnection, start: Verified, anchors: Mapping[int, str], breaks: list[str]
) -> set[int]:
    """Of the rows an earlier walk read (not read again), the newest must be as it was, and those the new
    ``anchors`` name as they say; returns the anchored ids found."""
    if not start.last_id:
        return set()
    earlier = sorted({start.last_id} | {anchored for anchored in anchors if anchored <= start.last_id})
    found = await connection.execute(select(log_table.c.id, log_table.c.hash).where(log_table.c.id.in_(earlier)))
    hashes: dict[int, str] = {row.id: row.hash for row in found}
    if hashes.get(start.last_id) != start.last_hash:
        _note(breaks, f"disclosure {start.last_id} was removed or changed after it was verified")
    matched = set()
    for anchored in earlier:
        if anchored in anchors and anchored in hashes:
            if anchors[anchored] != hashes[anchored]:
                _note(breaks, f"disclosure {anchored} differs from the checkpoint that anchored it")
            matched.add(anchored)
    return matched


def _rehashed(previous: str, row: Any) -> str | None:  # noqa: ANN401 - a row of log_table
    """The row's hash recomputed; None for a row that no longer reads as a disclosure (a channel or basis edited to
    one that does not exist): that too is a break, not a reason to stop walking."""
    try:
        return chain_hash(previous, from_row(row))
    except Exception:  # noqa: BLE001 - whatever an edit made of the row, the walk reports it and goes on
        return None


def _note(breaks: list[str], reason: str) -> None:
    # A walk that goes on from another keeps its reasons: the same one found again is said once.
    if reason not in breaks:
        breaks.append(reason)


EXPORT_COLUMNS = (
    "id",
    "disclosed_at",
    "agency_id",
    "channel",
    "reference",
    "officer",
    "key_id",
    "basis",
    "purpose",
    "agreement_version",
    "fields",
    "query",
    "record_ids",
)


async def export(  # noqa: C901 - one condition per filter, each as plain as the next
    connection: AsyncConnection,
    *,
    foreigner_id: UUID | None = None,
    agency_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    officer: str | None = None,
    limit: int | None = None,
    agency_ids: Collection[str] | None = None,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """Disclosures of one person (any agency, any channel), to one agency, or read by one of its officers, optionally
    within [since, until), to the ``agency_ids`` given if any, older than the entry ``before`` if given (the next
    page back, by the log's own order: many entries share a moment): oldest first, or the newest ``limit`` (still
    oldest first) when limited."""
    conditions: list[ColumnElement[bool]] = []
    if foreigner_id is not None:
        conditions.append(log_table.c.record_ids.contains([foreigner_id]))
    if agency_id is not None:
        conditions.append(log_table.c.agency_id == agency_id)
    if officer is not None:
        conditions.append(log_table.c.officer == officer)
    if agency_ids is not None:  # only what these agencies received (an office's area)
        conditions.append(log_table.c.agency_id.in_(sorted(agency_ids)))
    if since is not None:
        conditions.append(log_table.c.disclosed_at >= since)
    if until is not None:
        conditions.append(log_table.c.disclosed_at < until)
    if before is not None:
        conditions.append(log_table.c.id < before)
    statement = select(log_table).where(*conditions)
    if limit is not None:
        newest = statement.order_by(log_table.c.id.desc()).limit(limit).subquery()
        statement = select(newest).order_by(newest.c.id)
    else:
        statement = statement.order_by(log_table.c.id)
    rows = await connection.execute(statement)
    exported = []
    for row in rows:
        entry = {column: getattr(row, column) for column in EXPORT_COLUMNS}
        if foreigner_id is not None:
            # A person's own report lists that the agency received them, not who else was in the same answer.
            entry["record_ids"] = [foreigner_id]
        exported.append(entry)
    return exported


def ddl(owner: str, readers: Sequence[str]) -> list[str]:
    """The statements that create the log (idempotently) owned by ``owner``, a role no service logs in as, and
    let ``readers`` (the services that disclose) INSERT and SELECT, and checkpoint, nothing more."""
    schema, quoted_owner = SCHEMA, _quote(owner)
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {quoted_owner}",
        f"""CREATE TABLE IF NOT EXISTS {schema}.log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            disclosed_at timestamptz NOT NULL,
            agency_id varchar(63) NOT NULL,
            channel varchar(20) NOT NULL,
            reference varchar(300) NOT NULL,
            officer varchar(200),
            key_id uuid,
            query jsonb NOT NULL,
            record_ids uuid[] NOT NULL,
            fields text[] NOT NULL,
            basis varchar(20) NOT NULL,
            purpose text NOT NULL,
            agreement_version integer NOT NULL,
            previous_hash varchar(64) NOT NULL UNIQUE,
            hash varchar(64) NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS log_by_agency ON {schema}.log (agency_id, disclosed_at)",
        f"CREATE INDEX IF NOT EXISTS log_by_record ON {schema}.log USING gin (record_ids)",
        f"""CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            last_id bigint NOT NULL,
            last_hash varchar(64) NOT NULL,
            taken_at timestamptz NOT NULL DEFAULT now()
        )""",
        f"""CREATE OR REPLACE FUNCTION {schema}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the disclosure log is append-only';
        END $$""",
        f"DROP TRIGGER IF EXISTS log_append_only ON {schema}.log",
        (
            f"CREATE TRIGGER log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.log "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.append_only()"
        ),
        _LINK_FUNCTION.format(schema=schema, genesis=GENESIS),
        f"DROP TRIGGER IF EXISTS log_linked ON {schema}.log",
        f"CREATE TRIGGER log_linked BEFORE INSERT ON {schema}.log FOR EACH ROW EXECUTE FUNCTION {schema}.linked()",
        f"DROP TRIGGER IF EXISTS checkpoints_append_only ON {schema}.checkpoints",
        (
            f"CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.checkpoints "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.append_only()"
        ),
        # The anchor is what the log says its head is, taken by the owner's function: a service can ask for a
        # checkpoint but cannot write one of its own making.
        # CREATE OR REPLACE cannot change a function's result type: an older checkpoint() returned nothing.
        f"DROP FUNCTION IF EXISTS {schema}.checkpoint()",
        _CHECKPOINT_FUNCTION.format(schema=schema),
        f"ALTER TABLE {schema}.log OWNER TO {quoted_owner}",
        f"ALTER TABLE {schema}.checkpoints OWNER TO {quoted_owner}",
        f"ALTER FUNCTION {schema}.append_only() OWNER TO {quoted_owner}",
        f"ALTER FUNCTION {schema}.checkpoint() OWNER TO {quoted_owner}",
        f"ALTER FUNCTION {schema}.linked() OWNER TO {quoted_owner}",
        f"REVOKE ALL ON FUNCTION {schema}.checkpoint() FROM PUBLIC",
    ]
    for reader in readers:
        role = _quote(reader)
        statements += [
            f"GRANT USAGE ON SCHEMA {schema} TO {role}",
            f"GRANT SELECT, INSERT ON {schema}.log TO {role}",
            f"GRANT SELECT ON {schema}.checkpoints TO {role}",
            f"GRANT EXECUTE ON FUNCTION {schema}.checkpoint() TO {role}",
        ]
    return statements


# The schema is this module's constant, never input.
_CHECKPOINT_FUNCTION = """CREATE OR REPLACE FUNCTION {schema}.checkpoint()
    RETURNS TABLE (last_id bigint, last_hash varchar, taken_at timestamptz) LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, {schema} AS $$
    INSERT INTO {schema}.checkpoints AS c (last_id, last_hash)
    SELECT id, hash FROM {schema}.log ORDER BY id DESC LIMIT 1
    RETURNING c.last_id, c.last_hash, c.taken_at
$$"""
# Every row must take its id from the sequence (an id chosen by the inserter, OVERRIDING SYSTEM VALUE, could put a
# row ahead of every later one and jam the chain) and link to the head as it is: checked by the owner's trigger.
_LINK_FUNCTION = """CREATE OR REPLACE FUNCTION {schema}.linked() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, {schema} AS $$
    DECLARE
        head varchar;
    BEGIN
        IF NEW.id IS DISTINCT FROM currval(pg_get_serial_sequence('{schema}.log', 'id')) THEN
            RAISE EXCEPTION 'a disclosure takes its id from the log';
        END IF;
        SELECT hash INTO head FROM {schema}.log WHERE id < NEW.id ORDER BY id DESC LIMIT 1;
        IF NEW.previous_hash IS DISTINCT FROM coalesce(head, '{genesis}') THEN
            RAISE EXCEPTION 'a disclosure links to the head of the log';
        END IF;
        RETURN NEW;
    END $$"""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
