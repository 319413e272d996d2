"""The outbox table, for every service that publishes events from its own transactions.

A change and the event that reports it commit in one transaction; the relay publishes unpublished
rows to Kafka afterwards. An event is therefore never published for a change that rolled back, and
never lost for one that committed.

What is still to be published is the row's id in ``outbox_pending`` (version 2). A trigger puts it
there in the transaction that writes the row, whatever writes it (an API change, an import's COPY);
the relay deletes it once Kafka has the row. Version 1 marked the row itself published instead: an
UPDATE that wrote a new copy of every row, payload and all, and a new entry in each of its indexes,
about three quarters of the database's work in draining the outbox. Deleting a narrow id writes
neither.

Version 3 keeps no published row: the relay deletes the row itself once Kafka has it, so every row in the
outbox is one still to be published, and there is no ``outbox_pending`` and no trigger writing to it. It suits an
outbox whose rows are never published again: the sharing service's, the agencies' copies of personal data, which
leave it once sent. A row costs one heap row and two index entries (its id, its unique ``event_id``)
where version 2 wrote two heap rows and three, and a statement trigger's pass over the rows written.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, DateTime, Identity, MetaData, String, Table, Text, func, text
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
    """The outbox as it is now (versions 2 and 3): version 1's columns but ``published_at``."""
    return Table("outbox", metadata, *(column for column in _outbox_columns() if column.name != "published_at"))


def outbox_pending_table(metadata: MetaData) -> Table:
    """The ids of the outbox rows not yet published (version 2)."""
    return Table("outbox_pending", metadata, Column("id", BigInteger, primary_key=True, autoincrement=False))


def create_outbox_v1(channel: str) -> None:
    """The migration step that creates the outbox, its index, and a trigger that NOTIFYs ``channel``."""
    op.create_table("outbox", *_outbox_columns())
    op.create_index("outbox_unpublished", "outbox", ["id"], postgresql_where=text("published_at IS NULL"))
    op.execute(
        "ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, "
        "autovacuum_vacuum_cost_delay = 0)"
    )
    _notify_on_insert(channel)


def _notify_on_insert(channel: str) -> None:
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


def pend_outbox_v2(channel: str) -> None:
    """The migration step from version 1 to 2: what is unpublished moves to ``outbox_pending``, ``published_at`` goes.

    A row published under version 1 is not pending, one not yet published is; from here on every row
    written is pending from the statement that writes it.
    """
    op.execute("SET LOCAL statement_timeout = 0")  # a backlog of millions is carried over, however long it takes
    op.execute("DROP TRIGGER outbox_inserted ON outbox")
    op.execute("DROP FUNCTION notify_outbox()")
    _create_pending(channel, "SELECT id FROM outbox WHERE published_at IS NULL")
    op.drop_index("outbox_unpublished", "outbox")
    op.drop_column("outbox", "published_at")


def _create_pending(channel: str, pending_now: str) -> None:
    """``outbox_pending`` holding the ids ``pending_now`` selects, and the trigger that adds every new row's."""
    bind = op.get_bind()
    schema = bind.exec_driver_sql("SELECT current_schema()").scalar_one()
    pending = f"{bind.dialect.identifier_preparer.quote_identifier(schema)}.outbox_pending"
    # No foreign key to the outbox: its check would lock every new outbox row (a WAL record each, about half as
    # much again on a bulk write) and run again for every row a purge deletes. What a foreign key would have
    # caught, an id left by a row deleted by hand, the relay skips and its purge removes.
    op.execute("CREATE TABLE outbox_pending (id bigint PRIMARY KEY)")
    # Written once and deleted once per row: vacuumed early and often, or the relay's read walks dead ids.
    op.execute(
        "ALTER TABLE outbox_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, "
        "autovacuum_vacuum_cost_delay = 0)"
    )
    op.execute(f"INSERT INTO outbox_pending (id) {pending_now}")
    # One trigger per statement, not per row: an import's COPY of 5,000 rows runs it once. The table is
    # named with its schema, so the trigger does not depend on the search path of whoever inserts.
    op.execute(
        f"""
        CREATE FUNCTION outbox_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {pending} (id) SELECT id FROM inserted;
            PERFORM pg_notify('{channel}', '');
            RETURN NULL;
        END $$
        """  # noqa: S608 - the schema's name, quoted, and the service's fixed channel
    )
    op.execute(
        "CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox REFERENCING NEW TABLE AS inserted "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_inserted()"
    )


def unpend_outbox_v2(channel: str) -> None:
    """Back to version 1: a row not pending is marked published when it was written.

    Written, not now: version 1 keeps a row the retention period after it was published, and a row's time of
    publishing is not known; now would keep every row the period again."""
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute("ALTER TABLE outbox ADD COLUMN published_at timestamptz")
    # NOT EXISTS, not NOT IN: NOT IN hashes the pending ids only while they fit in work_mem, and past that
    # looks through all of them for each row, with the outbox locked (a backlog of 400,000: hours).
    op.execute(
        "UPDATE outbox SET published_at = created_at "
        "WHERE NOT EXISTS (SELECT FROM outbox_pending AS pending WHERE pending.id = outbox.id)"
    )
    op.create_index("outbox_unpublished", "outbox", ["id"], postgresql_where=text("published_at IS NULL"))
    _drop_pending()
    _notify_on_insert(channel)


def delete_published_v3(channel: str) -> None:
    """The migration step from version 2 to 3: rows already published go now, the rest once they are published."""
    op.execute("SET LOCAL statement_timeout = 0")
    # Both locked before anything is read: a relay of version 2 still running (an instance not yet replaced) would
    # otherwise publish rows after the DELETE's snapshot, which would then stay and be sent again, and its read,
    # holding the pending ids, could deadlock with the DROP below.
    op.execute("LOCK TABLE outbox, outbox_pending IN ACCESS EXCLUSIVE MODE")
    op.execute(
        "DELETE FROM outbox WHERE NOT EXISTS (SELECT FROM outbox_pending AS pending WHERE pending.id = outbox.id)"
    )
    _drop_pending()
    _notify_on_insert(channel)


def undelete_published_v3(channel: str) -> None:
    """Back to version 2: every row left is one not yet published, so every one is pending."""
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute("DROP TRIGGER outbox_inserted ON outbox")
    op.execute("DROP FUNCTION notify_outbox()")
    _create_pending(channel, "SELECT id FROM outbox")


def _drop_pending() -> None:
    op.execute("DROP TRIGGER outbox_inserted ON outbox")
    op.execute("DROP FUNCTION outbox_inserted()")
    op.drop_table("outbox_pending")
