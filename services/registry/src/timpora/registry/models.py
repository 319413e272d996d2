"""Tables of the registry service, all in its own ``registry`` schema."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from timpora.common.access import api_keys_table
from timpora.common.outbox.table import outbox_pending_table, outbox_table

metadata = MetaData()
# The officers' portal: immigration staff record the office's work through it, each change under their own name
# (timpora.registry.api.deps.get_operator).
portal_keys = api_keys_table(metadata, name="portal_keys", holder="portal")


operators = Table(
    "operators",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    # Only a hash of the bearer token is stored; the token is shown once, when the operator is added.
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The immigration office (its register id) whose area the operator acts in; NULL: every office's.
    Column("office", String(100)),
)

sponsors = Table(
    "sponsors",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("name_key", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("kind", "name_key", name="sponsors_kind_name_key"),
)

foreigners = Table(
    "foreigners",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("sex", String(1), nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("nationality", String(3), nullable=False),
    Column("passport_number", String(20), nullable=False),
    Column("passport_country", String(3), nullable=False),
    Column("passport_expires_on", Date, nullable=False),
    Column("occupation", String(200)),
    Column("sponsor_id", UUID(as_uuid=True), ForeignKey("sponsors.id")),
    Column("presence", String(10), nullable=False),
    Column("arrival_port", String(100)),
    Column("arrival_on", Date),
    # The visa (or exemption) of the latest entry.
    Column("visa_index", String(4)),
    Column("visa_number", String(40)),
    Column("departure_port", String(100)),
    Column("departure_on", Date),
    Column("residence_address", String(500)),
    Column("residence_village_code", String(13)),
    Column("residence_since", Date),
    Column("stay_id", UUID(as_uuid=True)),
    Column("current_permit_id", UUID(as_uuid=True)),
    # The latest re-entry ban (penangkalan): an arrival while it is in force is refused.
    Column("ban_since", Date),
    Column("ban_until", Date),
    Column("ban_reference", String(100)),
    # The village the person belongs to now: the residence's, else the open stay's.
    Column("jurisdiction", String(13)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(100), nullable=False),
    Column("updated_by", String(100), nullable=False),
    UniqueConstraint("nationality", "passport_number", name="foreigners_passport_key"),
    CheckConstraint("version >= 1", name="foreigners_version_positive"),
    Index("foreigners_name_order", func.lower(Column("full_name")), "id"),
    Index("foreigners_jurisdiction", "jurisdiction", postgresql_ops={"jurisdiction": "text_pattern_ops"}),
)

movements = Table(
    "movements",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), ForeignKey("foreigners.id"), nullable=False, index=True),
    Column("kind", String(10), nullable=False),
    Column("port", String(100), nullable=False),
    Column("on", Date, nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

permits = Table(
    "permits",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), ForeignKey("foreigners.id"), nullable=False, index=True),
    Column("number", String(40), nullable=False, unique=True),
    Column("type", String(20), nullable=False),
    Column("purpose", String(20)),
    Column("issued_on", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("status", String(10), nullable=False),
    Column("sponsor_id", UUID(as_uuid=True), ForeignKey("sponsors.id")),
    # Increases when the permit's expiry changes: expiry reminders are armed once per version.
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("revoked_reason", String(500)),
    # Status 'ended': when and why (the holder left, or it lapsed while they were abroad).
    Column("ended_on", Date),
    Column("end_reason", String(20)),
    # The overstay fee paid (UU 6/2011 art. 78): everything paid, the latest receipt, and the days it settles.
    Column("fee_paid_idr", BigInteger),
    Column("fee_receipt_number", String(60)),
    Column("fee_paid_on", Date),
    Column("fee_days_covered", Integer),
    # Re-entry permit (ERP): the holder may leave and come back on this permit while it is valid.
    Column("erp_number", String(40)),
    Column("erp_issued_on", Date),
    Column("erp_expires_on", Date),
    # Exit permit only (EPO): the holder must leave by this day; the permit ends when they do.
    Column("epo_number", String(40)),
    Column("epo_issued_on", Date),
    Column("epo_leave_by", Date),
    # What this permit was converted from (ITK to ITAS, ITAS to ITAP).
    Column("converted_from", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("expires_on > issued_on", name="permits_expiry_after_issue"),
    Index("permits_open_by_expiry", "expires_on", postgresql_where=text("status IN ('active', 'extended')")),
)

residences = Table(
    "residences",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), ForeignKey("foreigners.id"), nullable=False, index=True),
    Column("address", String(500), nullable=False),
    Column("village_code", String(13), nullable=False),
    Column("since", Date, nullable=False),
    Column("reported_by", String(100), nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The register of accommodation providers (hotels, guest houses, boarding houses) that report foreign
# guests (APOA, UU 6/2011 art. 72).
accommodations = Table(
    "accommodations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("name_key", String(200), nullable=False),
    Column("address", String(500), nullable=False),
    Column("village_code", String(13), nullable=False),
    Column("registered_by", String(100), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("village_code", "name_key", name="accommodations_village_name_key"),
)

stays = Table(
    "stays",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), ForeignKey("foreigners.id"), nullable=False, index=True),
    Column("provider", String(200), nullable=False),
    Column("village_code", String(13), nullable=False),
    Column("check_in", Date, nullable=False),
    Column("check_out", Date),
    Column("accommodation_id", UUID(as_uuid=True), ForeignKey("accommodations.id")),
    Column("planned_check_out", Date),
    # Set, with the event's id, when the stay was reported overdue: once per stay.
    Column("overdue_event_id", UUID(as_uuid=True)),
    Column("reported_by", String(100), nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("stays_open", "check_in", postgresql_where=text("check_out IS NULL AND overdue_event_id IS NULL")),
)

# Stay reports of guests the registry does not know (yet): kept until immigration links them to a person.
unmatched_stays = Table(
    "unmatched_stays",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("accommodation_id", UUID(as_uuid=True), ForeignKey("accommodations.id"), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("nationality", String(3), nullable=False),
    Column("passport_number", String(20), nullable=False),
    Column("check_in", Date, nullable=False),
    Column("check_out", Date),
    Column("planned_check_out", Date),
    Column("reported_by", String(100), nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # When linked: to whom, and the stay it became.
    Column("foreigner_id", UUID(as_uuid=True), ForeignKey("foreigners.id")),
    Column("stay_id", UUID(as_uuid=True)),
    Column("linked_by", String(100)),
    Column("linked_at", DateTime(timezone=True)),
)

# Passports a person held before their current one (a renewal keeps the person and their record): an
# arrival on a new passport is matched through them, and an old number stays findable.
previous_passports = Table(
    "previous_passports",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), ForeignKey("foreigners.id"), nullable=False, index=True),
    Column("nationality", String(3), nullable=False),
    Column("number", String(20), nullable=False),
    Column("issuing_country", String(3), nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("replaced_on", Date, nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("nationality", "number", name="previous_passports_number_key"),
)

# What immigration did about a person: deportation orders, detention (the event carries the same).
enforcement_actions = Table(
    "enforcement_actions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), ForeignKey("foreigners.id"), nullable=False, index=True),
    Column("action", String(30), nullable=False),
    Column("on", Date, nullable=False),
    Column("reference", String(100), nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

history = Table(
    "history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("foreigner_id", UUID(as_uuid=True), ForeignKey("foreigners.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("event_type", String(60), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", JSONB, nullable=False),
    Index("history_by_foreigner", "foreigner_id", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("operator_id", UUID(as_uuid=True), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

expiry_notices = Table(
    "expiry_notices",
    metadata,
    Column("permit_id", UUID(as_uuid=True), ForeignKey("permits.id"), primary_key=True),
    Column("permit_version", Integer, primary_key=True),
    Column("kind", String(10), primary_key=True),
    Column("threshold_days", Integer, primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("emitted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
outbox_pending = outbox_pending_table(metadata)
