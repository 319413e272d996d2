"""Tables of the portal, all in its own ``portal`` schema: officers, their sessions, failed logins."""

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Identity, Index, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

# An officer of a member agency. The password is kept only as its argon2id hash; the TOTP secret as it must be
# to check codes (the database is the portal's alone).
officers = Table(
    "officers",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("agency_id", String(64), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=False),
    # Set by ``officers add`` and ``officers reset``: the one-time password must be replaced at the first login.
    Column("must_change_password", Boolean, nullable=False),
    Column("totp_secret", String(64)),
    # The last TOTP time step accepted: a code is good once (one seen over a shoulder cannot be replayed).
    Column("totp_last_step", BigInteger),
    Column("disabled_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("password_changed_at", DateTime(timezone=True)),
)

# A browser's session: only the SHA-256 of its cookie is kept. ``stage`` says how far its login has come: the
# password changed, the second factor given; only a ``ready`` session sees any page but those steps.
sessions = Table(
    "sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("officer_id", UUID(as_uuid=True), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index("sessions_officer", "officer_id"),
)

# Failed logins of the last day: the throttle counts those of the last minute per account and per address.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("login_failures_username_at", "username", "at"),
    Index("login_failures_address_at", "address", "at"),
)
