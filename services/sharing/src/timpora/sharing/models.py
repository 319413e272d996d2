"""Tables of the sharing service, all in its own ``sharing`` schema."""

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from timpora.common.access import api_keys_table
from timpora.common.db.inbox import inbox_table
from timpora.common.outbox.table import outbox_table

metadata = MetaData()

inbox = inbox_table(metadata)
# Events for the agencies' own topics, written with the projection they come from, deleted once published.
outbox = outbox_table(metadata)

# One row per agency and foreigner in its view: the record redacted to the agency's agreement. Someone who left its
# view loses the row (its history keeps that they left), and someone never in it has none (see ``projected_people``).
# The one row out of view (``visible`` false, no record) is a guard a rebuild leaves while it is ahead of the live
# consumer, which removes it when it gets there (rebuild._merge says why).
projections = Table(
    "projections",
    metadata,
    Column("agency_id", String(63), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("agreement_version", Integer, nullable=False),
    Column("visible", Boolean, nullable=False),
    Column("record", JSONB),
    # The person's zone (their province's WIB, WITA or WIT): days to expiry and overstays are counted on
    # their local date. Internal, never disclosed.
    Column("time_zone", String(40), nullable=False, server_default="Asia/Jakarta"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # An event locks and reads the rows of its person, whichever agencies hold them.
    Index("projections_by_person", "foreigner_id"),
)

# The latest registry version the projection applied of each person, once for every agency: an old event
# redelivered later changes nothing, in no agency's view, whether or not the agency holds a row of them.
projected_people = Table(
    "projected_people",
    metadata,
    Column("foreigner_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
)

# The agreement version each agency's projection was last built under (by a rebuild): an agency whose agreement in
# force is another, after an earlier one, is rebuilt, even when it holds no row at all (it sees nobody yet).
projection_builds = Table(
    "projection_builds",
    metadata,
    Column("agency_id", String(63), primary_key=True),
    Column("agreement_version", Integer, nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every state of every agency's projection, append-only: one row per agency, person and registry version
# that was in the agency's view or just left it (``visible`` false, no record), redacted like the projection
# and written in its transaction. ``occurred_at`` is the registry event's time, so a report "as of" a moment
# (the end of a past month) takes each person's latest row at that moment and answers the same every time.
# A rebuild rewrites the agency's rows under the new agreement; a person never in view has none.
projection_history = Table(
    "projection_history",
    metadata,
    Column("agency_id", String(63), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("agreement_version", Integer, nullable=False),
    Column("event_type", String(80), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("visible", Boolean, nullable=False),
    Column("record", JSONB),
    # As in ``projections``: the person's zone, internal, never disclosed.
    Column("time_zone", String(40), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("projection_history_by_time", "agency_id", "occurred_at"),
)

# API keys of agencies: only a hash is kept; rotation is issuing a new key and revoking the old one.
api_keys = api_keys_table(metadata)
# The portal's keys: it reads for the agency and officer each request names (timpora.common.http.deps.acting_for).
portal_keys = api_keys_table(metadata, name="portal_keys", holder="portal")

# Every version of every agreement that was ever in force here, as loaded: what an agency was allowed
# to see, and when that started, stays answerable after the file has moved on.
agreements = Table(
    "agreements",
    metadata,
    Column("agency_id", String(63), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("document", JSONB, nullable=False),
    Column("first_loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Where the last check of the disclosure log's hash chain ended (timpora.sharing.verification): a look at the
# disclosure record goes on from there, not from the log's first entry; one row, whichever instance checked.
disclosure_walk = Table(
    "disclosure_walk",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("last_checkpoint", BigInteger, nullable=False),
    Column("checked", BigInteger, nullable=False),
    Column("breaks", ARRAY(Text), nullable=False),
    # When the whole chain was last walked from its first entry (the rows walked before are read again then); null
    # while the first whole walk is under way, ``checked_at`` saying since when.
    Column("walked_at", DateTime(timezone=True)),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("id = 1", name="disclosure_walk_one_row"),
)
