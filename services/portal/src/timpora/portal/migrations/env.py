"""Alembic environment of the portal: its own schema, its own version table."""

from timpora.common.db.migrations import run_env
from timpora.portal.models import metadata

run_env(metadata, schema="portal")
