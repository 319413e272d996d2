"""An agency's own alerts: list, read, acknowledge, resolve. Another agency's alert is 404, exactly
like one that does not exist.

What is shown passes the agreement in force now, as every alerts channel does (see timpora.alerts.disclosing):
an agency without one is refused (403), alerts of events its agreement no longer lists are not shown, each
notice is filtered through its fields, and every answer is in the disclosure log before it is given."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy import Row, select, tuple_

from timpora.alerts import lifecycle
from timpora.alerts.api.deps import CurrentAgency
from timpora.alerts.api.models import Acknowledgement, AlertCounts, AlertPage, AlertQuery, AlertView, Resolution
from timpora.alerts.disclosing import Terms, terms_for
from timpora.alerts.domain import notices
from timpora.alerts.models import alerts
from timpora.alerts.settings import AlertsSettings
from timpora.common import register
from timpora.common.disclosures import Channel
from timpora.common.http import disclosing
from timpora.common.http.deps import Acting, Runtime
from timpora.common.http.errors import described
from timpora.common.http.query import QueryModel
from timpora.common.settings import narrow

router = APIRouter(
    prefix="/v1/alerts",
    tags=["alerts (agencies)"],
    responses={
        403: described("The agency has no data-sharing agreement in force"),
        503: described("The disclosure log cannot be written, so nothing is disclosed"),
    },
)
_NO_SUCH_ALERT: dict[int | str, dict[str, Any]] = {
    404: described("No such alert for your agency (another agency's is not told apart)")
}
_STATE: dict[int | str, dict[str, Any]] = {
    409: described("The alert's state does not allow it (already resolved, ...)")
}
_NOT_FOUND = "no such alert for your agency"


def view(row: Row[Any], terms: Terms) -> AlertView | None:
    """The alert as the agency may see it now; None if its agreement no longer admits it."""
    shown = AlertView.model_validate(row, from_attributes=True)
    notice = terms.notice(shown.notice)
    if notice is None:
        return None
    resolution = notices.resolution_told(shown.resolution, terms.agreement)
    return shown.model_copy(update={"notice": notice, "resolution": resolution})


def _cursor(row: AlertView | Row[Any]) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def _after(cursor: str) -> tuple[datetime, UUID]:
    try:
        created, alert_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), UUID(alert_id)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["query", "after"], "msg": "not a cursor this API returned", "type": "value_error"}],
        ) from None


async def caller_terms(runtime: Runtime, caller: CurrentAgency) -> Terms:
    settings = narrow(runtime.settings, AlertsSettings)
    member = register.current(settings.register_file).members.get(caller.agency_id)
    terms = None if member is None else terms_for(member, runtime.clock.now())
    if terms is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "no data-sharing agreement in force for this agency")
    return terms


CallerTerms = Annotated[Terms, Depends(caller_terms)]


async def _disclosed(
    runtime: Runtime,
    request: Request,
    caller: Acting,
    terms: Terms,
    shown: list[AlertView],
    *,
    officer: str | None = None,
) -> None:
    records = terms.disclosures(
        Channel.ALERTS_API,
        f"{request.method} {request.url.path}",
        [view.notice for view in shown],
        runtime.clock.now(),
        dict(request.query_params),
    )
    if not records:
        return
    # The portal's officer is who read; an agency's key names its officer only when it acts (``by``).
    who = caller.officer or officer
    await disclosing.record(runtime, [replace(record, key_id=caller.key.key_id, officer=who) for record in records])


def _admitted(terms: Terms) -> list[Any]:
    if terms.agreement is None:
        return []
    return [alerts.c.event_type.in_(sorted(terms.agreement.event_types))]


@router.get("", summary="Your agency's alerts, newest first")
async def list_alerts(
    runtime: Runtime,
    request: Request,
    caller: CurrentAgency,
    terms: CallerTerms,
    query: Annotated[AlertQuery, Depends(QueryModel(AlertQuery))],
) -> AlertPage:
    statement = select(alerts).where(alerts.c.agency_id == caller.agency_id, *_admitted(terms))
    if query.status is not None:
        statement = statement.where(alerts.c.status == query.status)
    if query.event_type is not None:
        statement = statement.where(alerts.c.event_type == query.event_type)
    if query.after is not None:
        statement = statement.where(tuple_(alerts.c.created_at, alerts.c.id) < tuple_(*_after(query.after)))
    statement = statement.order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(query.limit + 1)
    async with runtime.sessions() as session:
        found = (await session.execute(statement)).all()
    # Paged by what was read, not by what is shown: an alert the agreement no longer admits ends no page early.
    page = [shown for row in found[: query.limit] if (shown := view(row, terms)) is not None]
    await _disclosed(runtime, request, caller, terms, page)
    return AlertPage(alerts=page, next=_cursor(found[query.limit - 1]) if len(found) > query.limit else None)


@router.get("/counts", summary="How many of your agency's alerts are open, and taken in hand (counts only)")
async def count_alerts(runtime: Runtime, caller: CurrentAgency, terms: CallerTerms) -> AlertCounts:
    """For a dashboard: numbers, nobody's data (so nothing is disclosed, and nothing recorded). Counted as the list
    shows them: an alert the agreement no longer admits (its place, its people, its news) is not counted either."""
    statement = select(alerts).where(
        alerts.c.agency_id == caller.agency_id, alerts.c.status.in_(("open", "acknowledged")), *_admitted(terms)
    )
    async with runtime.sessions() as session:
        rows = (await session.execute(statement)).all()
    shown = [row.status for row in rows if view(row, terms) is not None]
    return AlertCounts(open=shown.count("open"), acknowledged=shown.count("acknowledged"))


@router.get("/{alert_id}", summary="One of your agency's alerts", responses=_NO_SUCH_ALERT)
async def get_alert(
    runtime: Runtime, request: Request, caller: CurrentAgency, terms: CallerTerms, alert_id: UUID
) -> AlertView:
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                select(alerts).where(alerts.c.id == alert_id, alerts.c.agency_id == caller.agency_id, *_admitted(terms))
            )
        ).first()
    shown = None if row is None else view(row, terms)
    if shown is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_FOUND)
    await _disclosed(runtime, request, caller, terms, [shown])
    return shown


@router.post(
    "/{alert_id}/acknowledge",
    summary="Say your agency has the alert in hand (stops its escalation)",
    responses=_NO_SUCH_ALERT | _STATE,
)
async def acknowledge(
    *,
    runtime: Runtime,
    request: Request,
    caller: CurrentAgency,
    terms: CallerTerms,
    alert_id: UUID,
    body: Acknowledgement,
) -> AlertView:
    change = lifecycle.Change(alert_id, caller.agency_id, _acting(caller, body), runtime.clock.now())
    shown = await _apply(runtime, change, terms, lambda session: lifecycle.acknowledge(session, change))
    await _disclosed(runtime, request, caller, terms, [shown], officer=body.by)
    return shown


@router.post("/{alert_id}/resolve", summary="Close the alert, saying what was done", responses=_NO_SUCH_ALERT | _STATE)
async def resolve(
    *, runtime: Runtime, request: Request, caller: CurrentAgency, terms: CallerTerms, alert_id: UUID, body: Resolution
) -> AlertView:
    change = lifecycle.Change(alert_id, caller.agency_id, _acting(caller, body), runtime.clock.now())
    shown = await _apply(runtime, change, terms, lambda session: lifecycle.resolve(session, change, body.resolution))
    await _disclosed(runtime, request, caller, terms, [shown], officer=body.by)
    return shown


def _acting(caller: Acting, body: Acknowledgement) -> str:
    """Who acted, as the alert records it: the portal's officer is the one logged in (whatever ``by`` says),
    named as such; an agency's key names the officer its ``by`` gives."""
    if caller.officer is not None:
        return f"{caller.officer} (portal, key {caller.key.key_id})"
    return f"{body.by} (key {caller.key.key_id})"


async def _apply(runtime: Runtime, change: lifecycle.Change, terms: Terms, action: lifecycle.Action) -> AlertView:
    async with runtime.sessions() as session, session.begin():
        # What the agreement no longer admits is not the agency's to act on: looked at (and locked) before the action,
        # in its transaction, so a refusal changes nothing.
        before = (
            await session.execute(
                select(alerts)
                .where(alerts.c.id == change.alert_id, alerts.c.agency_id == change.agency_id, *_admitted(terms))
                .with_for_update()
            )
        ).first()
        if before is None or view(before, terms) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_FOUND)
        try:
            found = await action(session)
        except lifecycle.AlertStateError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_FOUND)
        row = (await session.execute(select(alerts).where(alerts.c.id == change.alert_id))).one()
    shown = view(row, terms)
    if shown is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_FOUND)
    return shown
