"""Tables of the sharing service, all in its own ``sharing`` schema."""

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from timpora.common.db.inbox import inbox_table

metadata = MetaData()

inbox = inbox_table(metadata)

# One row per agency and foreigner: the record redacted to the agency's agreement, or a tombstone
# (``visible`` false, no record) once the person left the agency's jurisdiction. The tombstone keeps
# the version, so an old event redelivered later cannot bring the person back.
projections = Table(
    "projections",
    metadata,
    Column("agency_id", String(63), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("agreement_version", Integer, nullable=False),
    Column("visible", Boolean, nullable=False),
    Column("record", JSONB),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
