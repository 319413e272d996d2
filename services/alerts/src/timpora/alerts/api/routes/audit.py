"""The admin audit log, for operators: every operator action in this database (this service's, and the other
services' that share it), who took it, and what it changed, secrets masked. Read only: nothing can change it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from timpora.alerts.api.deps import OperatorKey
from timpora.common import audit
from timpora.common.audit import AuditEntry
from timpora.common.http.deps import Runtime

router = APIRouter(prefix="/v1/admin", tags=["operators"])


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    #: Pass as ``before`` for the next (older) page; absent on the last page.
    next: int | None = None


@router.get("/audit", summary="The admin audit log, newest first: who did what, with old and new values")
async def read_audit(
    runtime: Runtime,
    operator: OperatorKey,
    *,
    before: Annotated[int | None, Query(ge=1, description="the `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=300)] = None,
    service: Annotated[str | None, Query(max_length=20)] = None,
) -> AuditPage:
    async with runtime.sessions() as session:
        entries = await audit.read(
            session,
            before=before,
            limit=limit + 1,
            action=action,
            target=target,
            service=service,
            # An office's operator (with several offices): what concerns its area's agencies, and what its own
            # officers did (their looks at the disclosure record among it), nothing of another office's.
            targets=operator.reach,
            actor_suffix=f"(portal, {operator.office})" if operator.office else None,
        )
    more = len(entries) > limit
    entries = entries[:limit]
    return AuditPage(entries=entries, next=entries[-1].id if more else None)
