"""Tables of the alerts service, all in its own ``alerts`` schema."""

from __future__ import annotations

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
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from timpora.common.access import api_keys_table
from timpora.common.db.inbox import inbox_table

metadata = MetaData()

inbox = inbox_table(metadata)
agency_keys = api_keys_table(metadata, name="agency_keys", holder="agency_id")
operator_keys = api_keys_table(metadata, name="operator_keys", holder="operator")
# The officers' portal: it acts for the agency and officer each request names (timpora.common.http.deps.acting_for).
portal_keys = api_keys_table(metadata, name="portal_keys", holder="portal")

#: Open alerts are the ones still waiting for someone: superseding, resolving and escalating look at these.
OPEN = ("open", "acknowledged")

# The directory routing reads. ``definition`` is the agency as declared (file or admin API) without
# its webhook secret, which sits in its own column and is never returned by any API.
agencies = Table(
    "agencies",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("definition", JSONB, nullable=False),
    Column("webhook_secret", Text),
    Column("source", String(10), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("removed_at", DateTime(timezone=True)),
    # Since when every webhook attempt has failed (cleared by a success); too long, and it is disabled.
    Column("webhook_failing_since", DateTime(timezone=True)),
    Column("webhook_disabled_at", DateTime(timezone=True)),
    Column("webhook_disabled_reason", Text),
)

# Every event routed, with the decisions and their reasons: the operator's "who was told, and why".
routed_events = Table(
    "routed_events",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("foreigner_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("routed_at", DateTime(timezone=True), nullable=False),
    # The event's data, kept so an alert can follow a person who moves, and escalate, without Kafka.
    Column("data", JSONB, nullable=False),
    Column("decisions", JSONB, nullable=False),
)

# What a village (Desa Binaan) reported to immigration: a foreigner or a suspicious situation, in its officer's
# words, with an optional photo (its metadata stripped: see timpora.alerts.domain.photos). Each immigration office
# controlling the village gets it as an alert (alerts.report_id); kept as long as one of those alerts is.
village_reports = Table(
    "village_reports",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("agency_id", String(63), nullable=False),
    Column("officer", String(200), nullable=False),
    Column("village_code", String(13), nullable=False),
    Column("about", Text),
    Column("place", Text, nullable=False),
    Column("what", Text, nullable=False),
    Column("photo", LargeBinary),
    Column("photo_type", String(20)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: The sender's own id for the report (the portal's form's): sent twice (a double tap, a retry after a timeout),
    #: it is one report.
    Column("client_ref", UUID(as_uuid=True)),
    #: What was sent under ``client_ref`` (a SHA-256 of its words and photo): the same ref with other content is
    #: refused, never taken for the first report.
    Column("client_digest", String(64)),
    Index("village_reports_by_agency", "agency_id", "created_at"),
    Index(
        "village_reports_once", "agency_id", "client_ref", unique=True, postgresql_where=text("client_ref IS NOT NULL")
    ),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # An alert is opened by a registry event (about a person) or by a village's report (about what it saw).
    Column("event_id", UUID(as_uuid=True), ForeignKey("routed_events.event_id")),
    Column("report_id", UUID(as_uuid=True), ForeignKey("village_reports.id")),
    Column("agency_id", String(63), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("foreigner_id", UUID(as_uuid=True)),
    Column("permit_id", UUID(as_uuid=True)),
    #: The village the alert is about (for a move: the one routing matched).
    Column("place", String(13)),
    Column("status", String(12), nullable=False, server_default="open"),
    Column("rule_ids", ARRAY(String(63)), nullable=False),
    Column("reasons", ARRAY(Text), nullable=False),
    Column("channels", ARRAY(String(10)), nullable=False),
    Column("digest", Boolean, nullable=False, server_default=text("false")),
    Column("digested_at", DateTime(timezone=True)),
    # The notice as the agency may see it: only the fields its role needs.
    Column("notice", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", String(200)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(200)),
    Column("resolution", Text),
    Column("superseded_by", UUID(as_uuid=True)),
    Column("moved_from", UUID(as_uuid=True)),
    Column("escalation_level", Integer, nullable=False, server_default="0"),
    Column("escalated_at", DateTime(timezone=True)),
    Index("alerts_by_agency", "agency_id", "created_at", "id"),
    Index("alerts_open_by_permit", "permit_id", postgresql_where=text("status IN ('open', 'acknowledged')")),
    Index("alerts_open_by_person", "foreigner_id", postgresql_where=text("status IN ('open', 'acknowledged')")),
    Index("alerts_awaiting_digest", "agency_id", postgresql_where=text("digest AND digested_at IS NULL")),
    Index("alerts_unacknowledged", "created_at", postgresql_where=text("status = 'open'")),
    Index("alerts_by_report", "report_id", postgresql_where=text("report_id IS NOT NULL")),
    CheckConstraint(
        "(event_id IS NOT NULL AND foreigner_id IS NOT NULL AND report_id IS NULL)"
        " OR (report_id IS NOT NULL AND event_id IS NULL AND foreigner_id IS NULL)",
        name="alerts_of_an_event_or_a_report",
    ),
)

# The delivery queue. Handlers only insert here; workers claim due rows with FOR UPDATE SKIP LOCKED.
# ``message_id`` is one notice's id on every channel (webhook-id, e-mail Message-ID, Kafka key): an
# agency that receives a notice twice, or on two channels, can drop the duplicate.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("message_id", UUID(as_uuid=True), nullable=False),
    Column("message", String(20), nullable=False),
    Column("alert_id", UUID(as_uuid=True)),
    Column("agency_id", String(63), nullable=False),
    Column("channel", String(10), nullable=False),
    #: E-mail recipients, when not the agency's own addresses (escalation contacts).
    Column("recipients", ARRAY(Text)),
    Column("payload", JSONB, nullable=False),
    # gathering → grouped (sent inside the message ``group_id``); a message, or a notice sent alone:
    # pending → delivered | dead | held (webhook disabled) | cancelled
    Column("status", String(10), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_detail", Text),
    #: The message (a delivery of kind ``group``) this notice went out in.
    Column("group_id", UUID(as_uuid=True)),
    UniqueConstraint("message_id", "agency_id", "channel", name="deliveries_one_per_channel"),
    Index("deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("deliveries_gathering", "agency_id", "channel", postgresql_where=text("status = 'gathering'")),
    Index("deliveries_by_group", "group_id", postgresql_where=text("group_id IS NOT NULL")),
    Index("deliveries_by_agency", "agency_id", "created_at"),
    Index("deliveries_by_alert", "alert_id"),
)

# When each agency's channel (and, for escalations, set of recipients: "" for the agency's own) last had a
# message formed: the next one of a burst waits for the agency's grouping interval after it. Its row is the lock
# that lets one worker at a time form that channel's message.
gatherings = Table(
    "gatherings",
    metadata,
    Column("agency_id", String(63), primary_key=True),
    Column("channel", String(10), primary_key=True),
    Column("recipients", Text, primary_key=True),
    Column("last_formed_at", DateTime(timezone=True)),
    #: When its last message carrying something critical formed: the first critical notice of a burst does not
    #: wait for the interval, only for the wait.
    Column("last_critical_at", DateTime(timezone=True)),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("delivery_id", BigInteger, ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("status_code", Integer),
    Column("detail", Text, nullable=False),
    Column("duration_ms", Integer, nullable=False),
)

digests = Table(
    "digests",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("agency_id", String(63), nullable=False),
    Column("local_date", Date, nullable=False),
    Column("alert_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agency_id", "local_date", name="digests_one_a_day"),
)
