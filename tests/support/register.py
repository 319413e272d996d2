"""Variants of the shipped register for tests: load it as a document, change members, write it where a service
under test reads it (a service re-reads the file when it changes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from timpora.common.register import DEFAULT_REGISTER


def shipped() -> dict[str, Any]:
    """The shipped register as a YAML document, to change."""
    document: dict[str, Any] = yaml.safe_load(DEFAULT_REGISTER.read_text(encoding="utf-8"))
    return document


def member(document: dict[str, Any], agency_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(entry for entry in document["members"] if entry["id"] == agency_id)
    return found


def write(path: Path, document: dict[str, Any]) -> Path:
    """Writes ``document`` to ``path`` atomically, with a modification time no earlier reading could share."""
    staged = path.with_suffix(".staged")
    staged.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    staged.replace(path)
    return path
