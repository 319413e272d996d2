"""Stay permits: issue, extend, revoke."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from timpora.common.events.payloads import ForeignerSnapshot
from timpora.registry.api.deps import Writer
from timpora.registry.api.routes.foreigners import WRITE_RESPONSES
from timpora.registry.domain import changes
from timpora.registry.domain.commands import ExtensionIn, PermitIn, RevocationIn

router = APIRouter(prefix="/v1/foreigners/{foreigner_id}/permits", tags=["permits"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Issue a stay permit",
)
async def issue_permit(foreigner_id: UUID, command: PermitIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.issue_permit(session, context, foreigner_id, command),
        status_code=status.HTTP_201_CREATED,
    )


@router.post(
    "/{permit_id}/extension",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Extend a stay permit (re-arms its expiry reminders)",
)
async def extend_permit(foreigner_id: UUID, permit_id: UUID, command: ExtensionIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.extend_permit(session, context, foreigner_id, permit_id, command)
    )


@router.post(
    "/{permit_id}/revocation",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Revoke a stay permit",
)
async def revoke_permit(foreigner_id: UUID, permit_id: UUID, command: RevocationIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.revoke_permit(session, context, foreigner_id, permit_id, command)
    )
