"""Agency API keys and the append-only, hash-chained disclosure log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("agency_id", sa.String(63), nullable=False, index=True),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "disclosures",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("agency_id", sa.String(63), nullable=False),
        sa.Column("key_id", UUID(as_uuid=True), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("query", JSONB, nullable=False),
        sa.Column("record_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("agreement_version", sa.Integer, nullable=False),
        sa.Column("disclosed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("disclosures_by_agency", "disclosures", ["agency_id", "disclosed_at"])
    op.create_index("disclosures_by_record", "disclosures", ["record_ids"], postgresql_using="gin")
    # No API changes the log, and neither can a mistaken UPDATE or DELETE: only inserts pass.
    op.execute(
        """
        CREATE FUNCTION disclosures_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the disclosure log is append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER disclosures_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON disclosures "
        "FOR EACH STATEMENT EXECUTE FUNCTION disclosures_are_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER disclosures_append_only ON disclosures")
    op.execute("DROP FUNCTION disclosures_are_append_only()")
    op.drop_table("disclosures")
    op.drop_table("api_keys")
