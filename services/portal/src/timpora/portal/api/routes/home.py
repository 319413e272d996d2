"""The officer's home page: the agency's figures at a glance (the month under way's recap) and where to go next."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from timpora.common import register
from timpora.common.http.deps import Runtime
from timpora.common.settings import narrow
from timpora.portal.api.deps import ReadyOfficer, Sharing
from timpora.portal.settings import PortalSettings
from timpora.portal.upstream import UpstreamUnavailableError
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, runtime: Runtime, officer: ReadyOfficer, sharing: Sharing) -> Response:
    settings = narrow(runtime.settings, PortalSettings)
    member = register.current(settings.register_file).members.get(officer.agency_id)
    shown = request.query_params
    notice = "password.changed" if "changed" in shown else "totp.enabled" if "totp" in shown else None
    figures: dict[str, Any] | None = None
    try:
        answer = await sharing.get("/v1/reports/monthly-recap", officer)
    except UpstreamUnavailableError:
        answer = None
    # No figures (no agreement, the service away) is no reason to keep the officer from the rest of the portal.
    if answer is not None and answer.status_code == status.HTTP_200_OK:
        figures = answer.json()
    return render(
        request,
        "home.html",
        title="home.title",
        officer=officer,
        agency_name=member.name if member is not None else officer.agency_id,
        notice=notice,
        figures=figures,
        csrf=officer.csrf_token,
    )
