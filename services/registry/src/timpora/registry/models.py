"""Tables of the registry service, all in its own ``registry`` schema."""

from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, MetaData, String, Table, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

# The transactional outbox: a change and the event that reports it commit in one transaction; a relay
# publishes unpublished rows to Kafka afterwards. An event is therefore never published for a change
# that rolled back, and never lost for one that committed.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("partition_key", String(200), nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Index("outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
)
