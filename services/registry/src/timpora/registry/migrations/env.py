"""Alembic environment of the registry service: its own schema, its own version table."""

from timpora.common.db.migrations import run_env
from timpora.registry.models import metadata

run_env(metadata, schema="registry")
