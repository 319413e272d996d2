"""The registry: operators, sponsors, foreigners, movements, permits, residences, stays, history,
idempotency keys, expiry notices, and the outbox notification trigger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=NOW)


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        _when("created_at"),
    )
    op.create_table(
        "sponsors",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        _when("created_at"),
        sa.UniqueConstraint("kind", "name_key", name="sponsors_kind_name_key"),
    )
    op.create_table(
        "foreigners",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=False),
        sa.Column("nationality", sa.String(3), nullable=False),
        sa.Column("passport_number", sa.String(20), nullable=False),
        sa.Column("passport_country", sa.String(3), nullable=False),
        sa.Column("passport_expires_on", sa.Date, nullable=False),
        sa.Column("occupation", sa.String(200)),
        sa.Column("sponsor_id", UUID(as_uuid=True), sa.ForeignKey("sponsors.id")),
        sa.Column("presence", sa.String(10), nullable=False),
        sa.Column("arrival_port", sa.String(100)),
        sa.Column("arrival_on", sa.Date),
        sa.Column("departure_port", sa.String(100)),
        sa.Column("departure_on", sa.Date),
        sa.Column("residence_address", sa.String(500)),
        sa.Column("residence_village_code", sa.String(13)),
        sa.Column("residence_since", sa.Date),
        sa.Column("stay_id", UUID(as_uuid=True)),
        sa.Column("current_permit_id", UUID(as_uuid=True)),
        sa.Column("jurisdiction", sa.String(13)),
        _when("created_at"),
        _when("updated_at"),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("nationality", "passport_number", name="foreigners_passport_key"),
        sa.CheckConstraint("version >= 1", name="foreigners_version_positive"),
    )
    op.create_index("foreigners_name_order", "foreigners", [sa.text("lower(full_name)"), "id"])
    op.create_index(
        "foreigners_jurisdiction", "foreigners", ["jurisdiction"], postgresql_ops={"jurisdiction": "text_pattern_ops"}
    )
    op.create_table(
        "movements",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("foreigner_id", UUID(as_uuid=True), sa.ForeignKey("foreigners.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("port", sa.String(100), nullable=False),
        sa.Column("on", sa.Date, nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        _when("recorded_at"),
    )
    op.create_table(
        "permits",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("foreigner_id", UUID(as_uuid=True), sa.ForeignKey("foreigners.id"), nullable=False, index=True),
        sa.Column("number", sa.String(40), nullable=False, unique=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("issued_on", sa.Date, nullable=False),
        sa.Column("expires_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("sponsor_id", UUID(as_uuid=True), sa.ForeignKey("sponsors.id")),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("revoked_reason", sa.String(500)),
        _when("created_at"),
        _when("updated_at"),
        sa.CheckConstraint("expires_on > issued_on", name="permits_expiry_after_issue"),
    )
    op.create_index(
        "permits_open_by_expiry",
        "permits",
        ["expires_on"],
        postgresql_where=sa.text("status IN ('active', 'extended')"),
    )
    op.create_table(
        "residences",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("foreigner_id", UUID(as_uuid=True), sa.ForeignKey("foreigners.id"), nullable=False, index=True),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("village_code", sa.String(13), nullable=False),
        sa.Column("since", sa.Date, nullable=False),
        sa.Column("reported_by", sa.String(100), nullable=False),
        _when("reported_at"),
    )
    op.create_table(
        "stays",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("foreigner_id", UUID(as_uuid=True), sa.ForeignKey("foreigners.id"), nullable=False, index=True),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("village_code", sa.String(13), nullable=False),
        sa.Column("check_in", sa.Date, nullable=False),
        sa.Column("check_out", sa.Date),
        sa.Column("reported_by", sa.String(100), nullable=False),
        _when("reported_at"),
    )
    op.create_table(
        "history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("foreigner_id", UUID(as_uuid=True), sa.ForeignKey("foreigners.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("event_type", sa.String(60), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSONB, nullable=False),
    )
    op.create_index("history_by_foreigner", "history", ["foreigner_id", "id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("operator_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", JSONB, nullable=False),
        _when("created_at"),
    )
    op.create_table(
        "expiry_notices",
        sa.Column("permit_id", UUID(as_uuid=True), sa.ForeignKey("permits.id"), primary_key=True),
        sa.Column("permit_version", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(10), primary_key=True),
        sa.Column("threshold_days", sa.Integer, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        _when("emitted_at"),
    )
    # NOTIFY is transactional: the relay hears of new rows when, and only when, they commit.
    op.execute(
        """
        CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('timpora_registry_outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_inserted ON outbox")
    op.execute("DROP FUNCTION notify_outbox()")
    for table in (
        "expiry_notices",
        "idempotency_keys",
        "history",
        "stays",
        "residences",
        "permits",
        "movements",
        "foreigners",
        "sponsors",
        "operators",
    ):
        op.drop_table(table)
