"""The outbox table, for every service that publishes events from its own transactions.

A change and the event that reports it commit in one transaction; the relay publishes unpublished
rows to Kafka afterwards. An event is therefore never published for a change that rolled back, and
never lost for one that committed.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, MetaData, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID


def _outbox_columns() -> list[Column[object]]:
    # Version 1 of the outbox; the registry's own migrations created the same table before this helper.
    return [
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("event_type", String(200), nullable=False),
        Column("topic", String(249), nullable=False),
        Column("partition_key", String(200), nullable=False),
        Column("headers", JSONB, nullable=False),
        # The exact JSON bytes to publish, as text: the relay sends them without parsing them again.
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
    ]


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        *_outbox_columns(),
        Index("outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )


def create_outbox_v1(channel: str) -> None:
    """The migration step that creates the outbox, its index, and a trigger that NOTIFYs ``channel``."""
    op.create_table("outbox", *_outbox_columns())
    op.create_index("outbox_unpublished", "outbox", ["id"], postgresql_where=text("published_at IS NULL"))
    op.execute(
        "ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, "
        "autovacuum_vacuum_cost_delay = 0)"
    )
    # NOTIFY is transactional: the relay hears of new rows when, and only when, they commit.
    op.execute(
        f"""
        CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{channel}', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()"
    )
