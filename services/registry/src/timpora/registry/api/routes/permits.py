"""Stay permits: issue, extend, convert, revoke; re-entry and exit permits; the overstay fee."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from timpora.common.events.payloads import ForeignerSnapshot
from timpora.registry.api.deps import Writer
from timpora.registry.api.routes.foreigners import WRITE_RESPONSES
from timpora.registry.domain import changes
from timpora.registry.domain.commands import (
    ConversionIn,
    ExitPermitIn,
    ExtensionIn,
    OverstayFeeIn,
    PermitIn,
    ReEntryPermitIn,
    RevocationIn,
)

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
    summary="Extend a stay permit (re-arms its expiry reminders; an overstayed one only once its fee is paid)",
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


@router.post(
    "/{permit_id}/overstay-fee",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Record the overstay fee paid (up to 60 days overstayed; UU 6/2011 art. 78)",
)
async def pay_overstay_fee(foreigner_id: UUID, permit_id: UUID, command: OverstayFeeIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.pay_overstay_fee(session, context, foreigner_id, permit_id, command)
    )


@router.post(
    "/{permit_id}/conversion",
    status_code=status.HTTP_201_CREATED,
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Convert a stay permit (ITK to ITAS, ITAS to ITAP): the old one ends, the new one begins",
)
async def convert_permit(foreigner_id: UUID, permit_id: UUID, command: ConversionIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.convert_permit(session, context, foreigner_id, permit_id, command),
        status_code=status.HTTP_201_CREATED,
    )


@router.post(
    "/{permit_id}/reentry-permit",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Grant a re-entry permit (ERP) on an ITAS or ITAP: its holder may leave and come back on it",
)
async def grant_reentry_permit(
    foreigner_id: UUID, permit_id: UUID, command: ReEntryPermitIn, write: Writer
) -> Response:
    return await write.snapshot(
        lambda session, context: changes.grant_reentry_permit(session, context, foreigner_id, permit_id, command)
    )


@router.post(
    "/{permit_id}/exit-permit",
    response_model=ForeignerSnapshot,
    responses=WRITE_RESPONSES,
    summary="Issue an exit permit only (EPO): the holder must leave by its date; the permit ends when they do",
)
async def issue_exit_permit(foreigner_id: UUID, permit_id: UUID, command: ExitPermitIn, write: Writer) -> Response:
    return await write.snapshot(
        lambda session, context: changes.issue_exit_permit(session, context, foreigner_id, permit_id, command)
    )
