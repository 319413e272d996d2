"""What immigration does about a person: administrative actions, deportation and re-entry bans."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from timpora.common.events.payloads import ForeignerSnapshot
from timpora.registry.api.deps import Writer
from timpora.registry.api.routes.foreigners import WRITE_RESPONSES
from timpora.registry.domain import changes
from timpora.registry.domain.commands import BanIn, DeportationIn, EnforcementIn

router = APIRouter(prefix="/v1/foreigners/{foreigner_id}", tags=["enforcement"])


@router.post(
    "/enforcement",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Record an administrative action (deportation order, detention, end of detention)",
)
async def record_enforcement(foreigner_id: UUID, command: EnforcementIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.record_enforcement(session, context, foreigner_id, command)
    )


@router.post(
    "/deportation",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Record a deportation carried out (the person is no longer here)",
)
async def record_deportation(foreigner_id: UUID, command: DeportationIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.record_deportation(session, context, foreigner_id, command)
    )


@router.post(
    "/ban",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Record a re-entry ban (penangkalan): an arrival while it is in force is refused",
)
async def impose_ban(foreigner_id: UUID, command: BanIn, write: Writer) -> Response:
    return await write.snapshot(lambda session, context: changes.impose_ban(session, context, foreigner_id, command))
