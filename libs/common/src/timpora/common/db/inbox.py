"""The inbox: one row per event a consumer has processed, written in the same transaction as its effects.

A redelivered event finds its row and is skipped, so processing is effectively once even though Kafka
delivers at least once. The row also records the Kafka position it came from, the way an
event-sourced projection records its position with the state it built.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, func
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common.db.engine import driver_connection


def _inbox_columns() -> list[Column[object]]:
    # Version 1 of the inbox, shared by the model and create_inbox_v1. Changing it means freezing a
    # copy of this list in create_inbox_v1 first, and writing the change as a new migration step.
    return [
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(200), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("topic", String(249), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def inbox_table(metadata: MetaData) -> Table:
    return Table("inbox", metadata, *_inbox_columns())


def create_inbox_v1() -> None:
    """The migration step that creates version 1 of the inbox, for every service that consumes.

    A later change to the inbox gets a ``*_v2`` step of its own; this one stays as it is.
    """
    op.create_table("inbox", *_inbox_columns())


async def claim(session: AsyncSession, inbox: Table, consumer: str, entries: list[dict[str, object]]) -> set[str]:
    """Records the events as processed, in one statement; returns the ids of those not processed before (the
    caller applies only these). Each entry holds ``event_id``, ``event_type``, ``topic``, ``partition``, ``offset``."""
    if not entries:
        return set()
    # In the ids' order: two batches holding the same events (a partition moving between members of the group, its
    # first owner's batch not yet committed) take the inbox's keys in one order, so one waits for the other instead
    # of the two deadlocking.
    ordered = sorted(entries, key=lambda entry: str(entry["event_id"]))
    connection = await driver_connection(await session.connection())
    # One statement of the same text whatever the batch's size, prepared once per connection, the rows as arrays:
    # SQLAlchemy's many-row VALUES was a statement text per batch size, each parsed and planned anew.
    claimed = await connection.fetch(
        _CLAIM.format(table=inbox.fullname),
        consumer,
        *([entry[column] for entry in ordered] for column in _CLAIMED),
    )
    return {row["event_id"] for row in claimed}


_CLAIMED = ("event_id", "event_type", "topic", "partition", "offset")
_CLAIM = """
    INSERT INTO {table} (consumer, event_id, event_type, topic, partition, "offset")
    SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[])
    ON CONFLICT (consumer, event_id) DO NOTHING
    RETURNING event_id
"""
