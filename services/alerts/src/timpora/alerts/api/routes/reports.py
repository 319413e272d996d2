"""A village's reports to immigration (Desa Binaan Imigrasi): sent by the village's officer (through the portal, or an
agency key), kept, and opened as an alert for each immigration office controlling the village — which reads it in its
alerts, with the photo from here. Nobody else is told of a report, or may fetch its photo."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Response, status

from timpora.alerts import reporting
from timpora.alerts.api.deps import AlertingDep, CurrentAgency
from timpora.alerts.api.models import ReportIn, ReportReceipt
from timpora.alerts.domain import photos
from timpora.alerts.settings import AlertsSettings
from timpora.common import regions, register
from timpora.common.http.deps import Runtime
from timpora.common.http.errors import described
from timpora.common.register.members import Agency, AgencyKind
from timpora.common.settings import narrow

router = APIRouter(prefix="/v1/reports", tags=["village reports"])
PATH = "/v1/reports"
_NOT_FOUND = "no such photo for your agency"


def body_limit(settings: AlertsSettings) -> int:
    """The largest request a report may be: its photo, base64 (4 bytes for every 3), and its words."""
    return settings.report_photo_max_bytes * 4 // 3 + 64 * 1024


def _invalid(field: str, message: str) -> HTTPException:
    """A field-level refusal, as FastAPI's own validation gives one; nothing of what was sent is repeated."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": ["body", field], "msg": message, "type": "value_error"}]
    )


def _village_of(member: Agency, wanted: str | None) -> str:
    villages = [code for code in member.jurisdiction if regions.level_of(code) is regions.RegionLevel.VILLAGE]
    if wanted is not None:
        if regions.lookup(wanted) is None or not regions.is_within_any(wanted, member.jurisdiction):
            raise _invalid("village_code", "not a village of your agency's jurisdiction")
        return wanted
    if len(villages) != 1:
        raise _invalid("village_code", "say which of your agency's villages the report is about")
    return villages[0]


def _photo(encoded: str | None, max_bytes: int) -> photos.Photo | None:
    if encoded is None:
        return None
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("photo_base64", "not base64") from None
    try:
        return photos.checked(content, max_bytes=max_bytes)
    except photos.PhotoError as error:
        raise _invalid("photo_base64", str(error)) from None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Report a foreigner or a suspicious situation in your village to immigration",
    responses={
        403: described("Only a village (Desa Binaan) reports here"),
        409: described("No immigration office controls the village: call the office; nothing was kept"),
    },
)
async def report(runtime: Runtime, caller: CurrentAgency, alerting: AlertingDep, body: ReportIn) -> ReportReceipt:
    settings = narrow(runtime.settings, AlertsSettings)
    member = register.current(settings.register_file).members.get(caller.agency_id)
    if member is None or member.kind is not AgencyKind.VILLAGE:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a village (Desa Binaan) reports to immigration here")
    officer = caller.officer or body.by
    if officer is None:
        raise _invalid("by", "name the officer who reports")
    village = _village_of(member, body.village_code)
    # Off the event loop: decoding and walking a few megabytes must not hold up every other request.
    photo = await asyncio.to_thread(_photo, body.photo_base64, settings.report_photo_max_bytes)
    now = runtime.clock.now()
    kept = reporting.Report(
        agency_id=member.id,
        officer=f"{officer} (portal)" if caller.officer else officer,
        village_code=village,
        about=body.about,
        where=body.where,
        what=body.what,
        photo=photo,
        client_ref=body.client_ref,
    )
    async with runtime.sessions() as session, session.begin():
        try:
            report_id, offices = await reporting.submit(session, await alerting.directory(session), kept, now=now)
        except reporting.ReusedRefError:
            raise _invalid("client_ref", "already used for another report: send this one with a new ref") from None
        except reporting.NoOfficeError:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "no immigration office controls this village in the register: call the office; nothing was kept",
            ) from None
    return ReportReceipt(id=report_id, received_at=now, village_code=village, offices=offices)


_PHOTO: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The photo, its metadata removed"},
    404: described("No such report for your agency, or it came without a photo"),
}


@router.get(
    "/{report_id}/photo",
    summary="A report's photo (the offices it reached, the village that sent it)",
    responses=_PHOTO,
    response_class=Response,
)
async def photo(runtime: Runtime, caller: CurrentAgency, report_id: UUID) -> Response:
    async with runtime.sessions() as session:
        found = await reporting.photo_for(session, report_id, caller.agency_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_FOUND)
    return Response(
        found.content,
        media_type=found.content_type,
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": "inline",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
