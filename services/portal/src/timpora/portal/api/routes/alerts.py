"""An agency's alerts, read from the alerts service for the officer logged in, and acknowledged or resolved in the
officer's own name (the alerts service records the portal's officer as who acted, whatever a form says). Another
agency's alert is the same "not found" page as one that does not exist."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse

from timpora.common.register.fields import FIELD_NAMES
from timpora.portal.api.deps import AlertsService, ReadyOfficer, checked_form, found_id, refusal
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)
#: Longest resolution the alerts service takes (its ``Resolution.resolution``).
RESOLUTION_LIMIT = 1000


@router.get("/alerts")
async def alerts(request: Request, officer: ReadyOfficer, service: AlertsService) -> Response:
    params: dict[str, Any] = {"limit": 50}
    chosen = request.query_params.get("status", "")
    if chosen in {"open", "acknowledged", "resolved"}:
        params["status"] = chosen
    if request.query_params.get("after"):
        params["after"] = request.query_params["after"]
    answer = await service.get("/v1/alerts", officer, params)
    if answer.status_code != status.HTTP_200_OK:
        return refusal(request, answer, "alerts.title")
    page = answer.json()
    return render(
        request,
        "alerts.html",
        title="alerts.title",
        officer=officer,
        csrf=officer.csrf_token,
        alerts=page["alerts"],
        chosen=chosen,
        next_query={**({"status": chosen} if chosen else {}), "after": page["next"]} if page.get("next") else None,
    )


async def _one(request: Request, officer: ReadyOfficer, service: AlertsService, alert_id: UUID) -> dict[str, Any]:
    answer = await service.get(f"/v1/alerts/{alert_id}", officer)
    if answer.status_code == status.HTTP_404_NOT_FOUND:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    if answer.status_code != status.HTTP_200_OK:
        raise _Refused(refusal(request, answer, "alerts.title"))
    found: dict[str, Any] = answer.json()
    return found


class _Refused(Exception):  # noqa: N818 - carries the page that says why
    def __init__(self, page: Response) -> None:
        super().__init__("refused")
        self.page = page


def _alert_page(
    request: Request, officer: ReadyOfficer, alert: dict[str, Any], *, problem: str | None = None, code: int = 200
) -> Response:
    return render(
        request,
        "alert.html",
        status_code=code,
        title="alerts.title",
        officer=officer,
        csrf=officer.csrf_token,
        alert=alert,
        # The agreement's fields of the person, in the order every record lists them.
        person=[(name, person[name]) for name in FIELD_NAMES if name in (person := alert["notice"].get("person", {}))],
        acknowledged_by=who_acted(alert.get("acknowledged_by")),
        resolved_by=who_acted(alert.get("resolved_by")),
        problem=problem,
    )


def who_acted(recorded: str | None) -> str | None:
    """Who acted, as an officer reads it: the name, without the key the alerts service records beside it."""
    if recorded is None:
        return None
    # The alerts service appends how the action came, last: " (key ID)" for an agency's key, " (portal, key ID)"
    # for the portal. Read from the right: a name that itself holds "(portal, ..." stays the name it is.
    name, _, how = recorded.rpartition(" (")
    if not name:
        return recorded
    return f"{name} (portal)" if how.startswith("portal, key ") else name


@router.get("/alerts/{alert_id}")
async def alert(request: Request, officer: ReadyOfficer, service: AlertsService, alert_id: str) -> Response:
    try:
        found = await _one(request, officer, service, found_id(alert_id))
    except _Refused as refused:
        return refused.page
    return _alert_page(request, officer, found)


#: What the alerts service's refusal of an action means for the officer: the alert shown again, with why.
_SHOWN_AGAIN = {
    status.HTTP_409_CONFLICT: "alerts.already",
    status.HTTP_422_UNPROCESSABLE_CONTENT: "alerts.resolution_needed",
}


async def _again(
    request: Request, officer: ReadyOfficer, service: AlertsService, target: UUID, *, problem: str, code: int
) -> Response:
    try:
        found = await _one(request, officer, service, target)
    except _Refused as refused:
        return refused.page
    return _alert_page(request, officer, found, problem=problem, code=code)


@router.post("/alerts/{alert_id}/{action}")
async def act(request: Request, officer: ReadyOfficer, service: AlertsService, alert_id: str, action: str) -> Response:
    if action not in {"acknowledge", "resolve"}:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    form = await checked_form(request, officer)
    target = found_id(alert_id)
    body: dict[str, Any] = {"by": officer.username}
    if action == "resolve":
        resolution = form.get("resolution", "").strip()
        if not resolution or len(resolution) > RESOLUTION_LIMIT:
            return await _again(request, officer, service, target, problem="alerts.resolution_needed", code=422)
        body["resolution"] = resolution
    answer = await service.request("POST", f"/v1/alerts/{target}/{action}", officer, json=body)
    if answer.status_code == status.HTTP_404_NOT_FOUND:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    if (problem := _SHOWN_AGAIN.get(answer.status_code)) is not None:
        return await _again(request, officer, service, target, problem=problem, code=answer.status_code)
    if answer.status_code != status.HTTP_200_OK:
        return refusal(request, answer, "alerts.title")
    return RedirectResponse(f"/alerts/{target}?done={action}", status_code=status.HTTP_303_SEE_OTHER)
