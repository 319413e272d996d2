"""A village's report to immigration (Desa Binaan Imigrasi): kept, and opened as an alert for each immigration office
controlling the village, with its first notice queued on the office's channels — all in one transaction, so a report
is either kept and told, or not kept at all.

Only the controller's offices are told: what a village reports about foreigners is immigration's to act on, and no
agreement lists a report, so no other agency sees one on any channel."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.alerts import queue
from timpora.alerts.alerting import alert_id_for, message_id_for
from timpora.alerts.domain import notices
from timpora.alerts.domain.photos import Photo
from timpora.alerts.domain.routing import Directory
from timpora.alerts.models import alerts, village_reports
from timpora.common.register.members import Agency, Channel


@dataclass(frozen=True, slots=True)
class Report:
    agency_id: str
    officer: str
    village_code: str
    about: str | None
    where: str
    what: str
    photo: Photo | None
    #: The sender's own id for it: the same report sent again is the one kept (see :func:`submit`).
    client_ref: UUID | None = None

    def digest(self) -> str:
        """What the report says and shows, as one hash: the same ref must come with the same report."""
        content = hashlib.sha256()
        for part in (self.village_code, self.about or "", self.where, self.what):
            content.update(part.encode() + b"\x00")
        content.update(self.photo.content if self.photo else b"")
        return content.hexdigest()


class ReusedRefError(ValueError):
    """A ``client_ref`` already used for a report with other content: neither is taken for the other."""


class NoOfficeError(LookupError):
    """No immigration office controls the village: a report would reach nobody, so it is not taken."""


def offices_for(village_code: str, directory: Directory) -> list[Agency]:
    """The immigration offices controlling ``village_code``, by id."""
    return sorted(
        (agency for agency in directory.coverage.covering(village_code) if agency.controller),
        key=lambda agency: agency.id,
    )


async def submit(
    session: AsyncSession, directory: Directory, report: Report, *, now: datetime
) -> tuple[UUID, list[str]]:
    """Keeps ``report`` and opens its alerts: its id and the offices it reached (raises :class:`NoOfficeError`). A
    report its sender already sent (the same ``client_ref``) is not kept again: the first one's id and offices."""
    if report.client_ref is not None:
        sent = await _sent_before(session, report)
        if sent is not None:
            return sent
    offices = offices_for(report.village_code, directory)
    if not offices:
        raise NoOfficeError(report.village_code)
    report_id = uuid.uuid4()
    row: dict[str, Any] = {
        "id": report_id,
        "agency_id": report.agency_id,
        "officer": report.officer,
        "village_code": report.village_code,
        "about": report.about,
        "place": report.where,
        "what": report.what,
        "photo": report.photo.content if report.photo else None,
        "photo_type": report.photo.content_type if report.photo else None,
        "created_at": now,
        "client_ref": report.client_ref,
        "client_digest": report.digest() if report.client_ref else None,
    }
    kept = await session.execute(
        pg_insert(village_reports).values(row).on_conflict_do_nothing().returning(village_reports.c.id)
    )
    if kept.first() is None:
        # The same report, sent at the same moment from another tab or a retry: the one that got in first counts.
        sent = await _sent_before(session, report)
        if sent is None:
            raise RuntimeError("a report conflicted with one that is not there")
        return sent
    for office in offices:
        alert_id = alert_id_for(report_id, office.id)
        notice = notices.report_notice(
            alert_id=alert_id, agency_id=office.id, report={**row, "photo": report.photo is not None}, reported_at=now
        )
        channels = directory.configured(office, Channel)
        await session.execute(
            insert(alerts).values(
                id=alert_id,
                report_id=report_id,
                agency_id=office.id,
                event_type=notices.VILLAGE_REPORT,
                severity=notice["severity"],
                place=report.village_code,
                rule_ids=[],
                reasons=[f"reported by {report.agency_id}; {office.id} controls {report.village_code}"],
                channels=sorted(channel.value for channel in channels),
                notice=notice,
                created_at=now,
            )
        )
        await queue.enqueue(
            session,
            queue.Message(
                message_id=message_id_for(alert_id, "alert"),
                kind="alert",
                alert_id=alert_id,
                agency_id=office.id,
                channels=channels,
                held=directory.held(office),
                gathered=office.grouped_channels(),
                payload=notices.message(notice, message_id=alert_id, kind="alert"),
                now=now,
            ),
        )
    return report_id, [office.id for office in offices]


async def _sent_before(session: AsyncSession, report: Report) -> tuple[UUID, list[str]] | None:
    row = (
        await session.execute(
            select(village_reports.c.id, village_reports.c.client_digest).where(
                village_reports.c.agency_id == report.agency_id, village_reports.c.client_ref == report.client_ref
            )
        )
    ).first()
    if row is None:
        return None
    if row.client_digest != report.digest():
        raise ReusedRefError(str(report.client_ref))
    found = row.id
    offices = await session.execute(
        select(alerts.c.agency_id).where(alerts.c.report_id == found).order_by(alerts.c.agency_id)
    )
    return found, list(offices.scalars())


async def photo_for(session: AsyncSession, report_id: UUID, agency_id: str) -> Photo | None:
    """The report's photo, for an agency that may see it: an office the report reached (while its alert is kept),
    or the village that sent it; None otherwise, or when it came without one."""
    reached = select(alerts.c.id).where(alerts.c.report_id == report_id, alerts.c.agency_id == agency_id).exists()
    found = (
        await session.execute(
            select(village_reports.c.photo, village_reports.c.photo_type).where(
                village_reports.c.id == report_id,
                village_reports.c.photo.is_not(None),
                (village_reports.c.agency_id == agency_id) | reached,
            )
        )
    ).first()
    return None if found is None else Photo(found.photo, found.photo_type)
