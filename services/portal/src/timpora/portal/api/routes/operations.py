"""The operator's pages (an immigration office's operator): how each agency's notices are getting through (its
webhook's state, when a notice last reached it, what waits and what was given up on), the deliveries with every
attempt, the records the alerts service could not process, the admin audit log, and a replay of an agency's notices.
Read from the alerts service's operator API through the portal's key, which reaches those operations and no others;
a replay is audited there under the officer's name. Nothing here is personal data: deliveries name alerts by id."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse

from timpora.common.types import AGENCY_ID_PATTERN
from timpora.portal.api.deps import AlertsService, OperatorOfficer, checked_form, refusal
from timpora.portal.upstream import UpstreamUnavailableError
from timpora.portal.web import render

router = APIRouter(include_in_schema=False)

_AGENCY = re.compile(AGENCY_ID_PATTERN)
_STATUSES = ("gathering", "grouped", "pending", "delivered", "dead", "held", "cancelled")
_COUNT = re.compile(r"[0-9]{1,9}")
_CHANNELS = ("webhook", "email", "kafka")
#: The office's clock: what the operator types and reads is WIB (the portal's offices are; see web.render).
_ZONE = ZoneInfo("Asia/Jakarta")
DELIVERIES_SHOWN = 100
AUDIT_PAGE = 50


def _channels(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """The agency's channels as an operator recognises them, each with the name its deliveries go by: the webhook's
    host (never its path or secret), the e-mail addresses, the Kafka topic."""
    channels = definition.get("channels") or {}
    shown = []
    if webhook := channels.get("webhook"):
        shown.append(("webhook", f"webhook {urlsplit(str(webhook.get('url', ''))).hostname or ''}"))
    if emails := channels.get("emails"):
        shown.append(("email", "e-mail " + ", ".join(emails)))
    if channels.get("kafka"):
        shown.append(("kafka", "Kafka"))
    return shown


@router.get("/operations")
async def operations(request: Request, officer: OperatorOfficer, alerts: AlertsService) -> Response:
    rows = await _rows(alerts, officer)
    if isinstance(rows, httpx.Response):
        return refusal(request, rows, "ops.title")
    replayed = request.query_params.get("replayed", "")
    return _page(
        request,
        officer,
        rows=rows,
        letters=await _letters(alerts, officer),
        replayed=int(replayed) if _COUNT.fullmatch(replayed) else None,
    )


async def _letters(alerts: AlertsService, officer: OperatorOfficer) -> list[dict[str, Any]] | None:
    """The latest dead letters, newest first; None when they cannot be read now (Kafka away, slow): the rest of the
    page, from the database, is what the operator needs most then."""
    try:
        answer = await alerts.get("/v1/admin/dead-letters", officer, {"limit": 20})
    except UpstreamUnavailableError:
        return None
    if answer.status_code != status.HTTP_200_OK:
        return None
    letters: list[dict[str, Any]] = answer.json()
    return sorted(letters, key=lambda letter: str(letter.get("failed_at") or ""), reverse=True)


def _page(
    request: Request,
    officer: OperatorOfficer,
    *,
    rows: list[dict[str, Any]],
    letters: list[dict[str, Any]] | None,
    replayed: int | None = None,
    values: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    code: int = 200,
) -> Response:
    return render(
        request,
        "operations.html",
        status_code=code,
        title="ops.title",
        officer=officer,
        csrf=officer.csrf_token,
        rows=rows,
        letters=letters,
        replayed=replayed,
        values=values or {},
        problems=problems or {},
        channels=_CHANNELS,
    )


@router.get("/operations/deliveries")
async def deliveries(request: Request, officer: OperatorOfficer, alerts: AlertsService) -> Response:
    agency = request.query_params.get("agency", "").strip()
    wanted = request.query_params.get("status", "").strip()
    if (agency and not _AGENCY.fullmatch(agency)) or (wanted and wanted not in _STATUSES):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    params: dict[str, Any] = {"limit": DELIVERIES_SHOWN} | ({"agency_id": agency} if agency else {})
    answer = await alerts.get("/v1/admin/deliveries", officer, params | ({"status": wanted} if wanted else {}))
    if answer.status_code != status.HTTP_200_OK:
        return refusal(request, answer, "ops.deliveries")
    return render(
        request,
        "operations_deliveries.html",
        title="ops.deliveries",
        officer=officer,
        csrf=officer.csrf_token,
        agency=agency,
        wanted=wanted,
        statuses=_STATUSES,
        items=answer.json(),
        latest=DELIVERIES_SHOWN,
    )


@router.get("/operations/audit")
async def audit(request: Request, officer: OperatorOfficer, alerts: AlertsService) -> Response:
    before = request.query_params.get("before", "")
    params: dict[str, Any] = {"limit": AUDIT_PAGE} | ({"before": before} if _COUNT.fullmatch(before) else {})
    answer = await alerts.get("/v1/admin/audit", officer, params)
    if answer.status_code != status.HTTP_200_OK:
        return refusal(request, answer, "ops.audit")
    page = answer.json()
    return render(
        request,
        "operations_audit.html",
        title="ops.audit",
        officer=officer,
        csrf=officer.csrf_token,
        entries=page["entries"],
        next=page.get("next"),
        paged=bool(_COUNT.fullmatch(before)),
    )


def _instant(value: str) -> datetime | None:
    """A moment typed in the office's clock (``2026-12-05T08:00`` from a datetime-local field), or None."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=_ZONE) if moment.tzinfo is None else None


async def _rows(alerts: AlertsService, officer: OperatorOfficer) -> list[dict[str, Any]] | httpx.Response:
    """The register's members as the alerts service has them, with their channels shown; its answer if it did not
    give them."""
    answer = await alerts.get("/v1/admin/agencies", officer)
    if answer.status_code != status.HTTP_200_OK:
        return answer
    return [
        item | {"channels": _channels(item["agency"])}
        for item in answer.json()
        if item["removed_at"] is None  # a removed member is no one's to watch
    ]


@router.post("/operations/replay")
async def replay(request: Request, officer: OperatorOfficer, alerts: AlertsService) -> Response:
    """An agency's notices of a time range sent again, with the same ids (its receiver drops what it already has)."""
    form = await checked_form(request, officer)
    values = {name: form.get(name, "").strip() for name in ("agency", "since", "until", "channel")}
    rows = await _rows(alerts, officer)
    if isinstance(rows, httpx.Response):
        return refusal(request, rows, "ops.title")
    since, until = _instant(values["since"]), _instant(values["until"])
    problems: dict[str, str] = {}
    if values["agency"] not in {row["agency"]["id"] for row in rows}:
        problems["agency"] = "ops.problem.agency"
    if since is None:
        problems["since"] = "ops.problem.moment"
    if until is None:
        problems["until"] = "ops.problem.moment"
    elif since is not None and until <= since:
        problems["until"] = "ops.problem.until"
    elif since is not None and until - since > timedelta(days=31):
        problems["until"] = "ops.problem.range"
    if values["channel"] and values["channel"] not in _CHANNELS:
        problems["channel"] = "ops.problem.channel"
    if problems or since is None or until is None:
        letters = await _letters(alerts, officer)
        return _page(request, officer, rows=rows, letters=letters, values=values, problems=problems, code=422)
    body = {"since": since.isoformat(), "until": until.isoformat()} | (
        {"channel": values["channel"]} if values["channel"] else {}
    )
    answer = await alerts.request("POST", f"/v1/admin/agencies/{values['agency']}/replay", officer, json=body)
    if answer.status_code != status.HTTP_200_OK:
        return refusal(request, answer, "ops.title")
    return RedirectResponse(
        f"/operations?replayed={int(answer.json()['requeued'])}", status_code=status.HTTP_303_SEE_OTHER
    )
