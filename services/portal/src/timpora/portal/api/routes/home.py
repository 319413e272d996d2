"""The officer's home page."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from timpora.common import register
from timpora.common.http.deps import Runtime
from timpora.common.settings import narrow
from timpora.portal.api.deps import ReadyOfficer
from timpora.portal.settings import PortalSettings
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, runtime: Runtime, officer: ReadyOfficer, changed: int = 0, totp: int = 0) -> Response:
    settings = narrow(runtime.settings, PortalSettings)
    member = register.current(settings.register_file).members.get(officer.agency_id)
    notice = "password.changed" if changed else "totp.enabled" if totp else None
    return render(
        request,
        "home.html",
        title="home.title",
        officer=officer,
        agency_name=member.name if member is not None else officer.agency_id,
        notice=notice,
        csrf=officer.csrf_token,
    )
