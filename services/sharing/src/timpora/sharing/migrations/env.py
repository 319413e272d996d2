"""Alembic environment of the sharing service: its own schema, its own version table."""

from timpora.common.db.migrations import run_env
from timpora.sharing.models import metadata

run_env(metadata, schema="sharing")
