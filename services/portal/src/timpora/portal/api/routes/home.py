"""The officer's home page: the agency's figures at a glance (the month under way's recap, and the alerts waiting for
someone) and where to go next."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from timpora.common import register
from timpora.common.http.deps import Runtime
from timpora.common.settings import narrow
from timpora.portal.api.deps import AlertsService, ReadyOfficer, Sharing
from timpora.portal.settings import PortalSettings
from timpora.portal.upstream import ServiceApi, UpstreamUnavailableError
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(
    request: Request, runtime: Runtime, officer: ReadyOfficer, sharing: Sharing, alerts: AlertsService
) -> Response:
    settings = narrow(runtime.settings, PortalSettings)
    member = register.current(settings.register_file).members.get(officer.agency_id)
    shown = request.query_params
    notice = "password.changed" if "changed" in shown else "totp.enabled" if "totp" in shown else None
    # No figures (no agreement, a service away) is no reason to keep the officer from the rest of the portal.
    figures = await _figures(sharing, "/v1/reports/monthly-recap", officer)
    waiting = await _figures(alerts, "/v1/alerts/counts", officer)
    return render(
        request,
        "home.html",
        title="home.title",
        officer=officer,
        agency_name=member.name if member is not None else officer.agency_id,
        notice=notice,
        figures=figures,
        waiting=waiting,
        csrf=officer.csrf_token,
    )


async def _figures(service: ServiceApi, path: str, officer: ReadyOfficer) -> dict[str, Any] | None:
    try:
        answer = await service.get(path, officer)
    except UpstreamUnavailableError:
        return None
    found: dict[str, Any] | None = answer.json() if answer.status_code == status.HTTP_200_OK else None
    return found
