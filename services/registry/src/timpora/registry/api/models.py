"""Response bodies of the registry API (request bodies are the domain's commands)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from timpora.common.events.payloads import ForeignerSnapshot, Overstay


class HistoryEntry(BaseModel):
    version: int
    event_type: str
    event_id: UUID
    actor: str
    occurred_at: datetime


class Standing(BaseModel):
    """Where the person stands today, on their local date, with the permit that is theirs."""

    days_to_expiry: int | None
    overstay: Overstay | None = None


class ForeignerRecord(BaseModel):
    foreigner: ForeignerSnapshot
    standing: Standing
    history: list[HistoryEntry]


class ForeignerPage(BaseModel):
    items: list[ForeignerSnapshot]
    next_cursor: str | None


class StayRecorded(BaseModel):
    foreigner: ForeignerSnapshot
    stay_id: UUID


class WorkItem(BaseModel):
    foreigner: ForeignerSnapshot
    standing: Standing


class Worklist(BaseModel):
    """What the office must act on: who overstays (longest first: past 60 days deportation is due) and whose permit
    ends soonest."""

    overstaying: list[WorkItem]
    expiring: list[WorkItem]
    #: More than ``limit`` in a list: the rest are not shown (search them by name or region).
    truncated: bool
