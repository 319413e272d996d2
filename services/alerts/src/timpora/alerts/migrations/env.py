"""Alembic environment of the alerts service: its own schema, its own version table."""

from timpora.alerts.models import metadata
from timpora.common.db.migrations import run_env

run_env(metadata, schema="alerts")
