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


#: A member's grouping when it takes one message per notice on every channel.
ONE_PER_NOTICE: dict[str, Any] = {channel: {"grouped": False} for channel in ("email", "webhook", "kafka")}


def ungrouped(document: dict[str, Any]) -> dict[str, Any]:
    """Every member takes one message per notice, sent as soon as it is due: for tests about something else than
    grouping, which read one notice per message (``tests/alerts/test_grouping.py`` turns grouping back on)."""
    for entry in document["members"]:
        entry["grouping"] = ONE_PER_NOTICE
    return document


def grouped(document: dict[str, Any], *, wait_s: int = 30, interval_s: int = 300) -> dict[str, Any]:
    """Every member's notices grouped (the register's defaults, or the waits given)."""
    for entry in document["members"]:
        entry["grouping"] = {"wait_s": wait_s, "interval_s": interval_s}
    return document


def write(path: Path, document: dict[str, Any]) -> Path:
    """Writes ``document`` to ``path`` atomically, with a modification time no earlier reading could share."""
    staged = path.with_suffix(".staged")
    staged.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    staged.replace(path)
    return path
