"""Keeping every agreement version that was loaded, and refusing a changed agreement without a new version."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import audit
from timpora.common.register.agreements import Agreement
from timpora.sharing.models import agreements as agreement_rows


class AgreementChangedWithoutNewVersionError(ValueError):
    """The file changed an agreement's terms but kept its version number."""


async def record(session: AsyncSession, loaded: Sequence[Agreement], *, source: Path | None = None) -> list[Agreement]:
    """Stores the versions not seen before; returns them. Raises if a known version's terms differ. Each new version
    read from the register file ``source`` is in the admin audit log, with the version before it, in the same
    transaction."""
    new = []
    for agreement in loaded:
        document = agreement.model_dump(mode="json")
        stored = await session.scalar(
            select(agreement_rows.c.document).where(
                agreement_rows.c.agency_id == agreement.agency_id, agreement_rows.c.version == agreement.version
            )
        )
        if stored is None:
            previous = await session.scalar(
                select(agreement_rows.c.document)
                .where(agreement_rows.c.agency_id == agreement.agency_id)
                .order_by(agreement_rows.c.version.desc())
                .limit(1)
            )
            inserted = await session.scalar(
                insert(agreement_rows)
                .values(agency_id=agreement.agency_id, version=agreement.version, document=document)
                .on_conflict_do_nothing()
                .returning(agreement_rows.c.version)
            )
            if source is not None and inserted is not None:
                await audit.record(
                    session,
                    service="sharing",
                    actor=audit.Actor.register(source),
                    action="register.agreement.add" if previous is None else "register.agreement.change",
                    target=agreement.agency_id,
                    old=previous,
                    new=document,
                )
            new.append(agreement)
        elif stored != document:
            raise AgreementChangedWithoutNewVersionError(
                f"the agreement of {agreement.agency_id} changed but is still version {agreement.version}: "
                "raise its version so the change is recorded and its projection rebuilt"
            )
    return new
