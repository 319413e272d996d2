"""What every agency route needs: the agency behind the API key, and its agreement in force."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID, uuid5

from fastapi import Depends, HTTPException, Request, status

from timpora.common import register
from timpora.common.access import ApiKey
from timpora.common.http.deps import Runtime, acting_for, member_key_holder
from timpora.common.http.errors import described
from timpora.common.http.ratelimit import RateLimiter
from timpora.common.register.agreements import Agreement
from timpora.common.settings import narrow
from timpora.sharing.access import KEYS, PORTAL_KEYS
from timpora.sharing.settings import SharingSettings

AgencyKey = Annotated[
    ApiKey,
    Depends(
        member_key_holder(
            KEYS,
            scheme="AgencyKey",
            description="the agency's API key (timpora-sharing keys issue AGENCY)",
            register_file=lambda settings: narrow(settings, SharingSettings).register_file,
            portal=PORTAL_KEYS,
        )
    ),
]


@dataclass(frozen=True, slots=True)
class Caller:
    key: ApiKey
    agreement: Agreement
    #: The agency read for: the key's, or the one the portal names.
    agency_id: str
    #: The officer the portal reads for (recorded with each disclosure); None for an agency's own key.
    officer: str | None = None


def agreement_in_force(runtime: Runtime, agency_id: str) -> Agreement | None:
    """The agency's agreement in force now, as the register on disk says; None without one (or not a member)."""
    settings = narrow(runtime.settings, SharingSettings)
    member = register.current(settings.register_file).members.get(agency_id)
    return None if member is None else member.agreement_at(runtime.clock.now())


async def get_caller(runtime: Runtime, request: Request, key: AgencyKey) -> Caller:
    acting = acting_for(request, key)
    agency_id, officer = acting.agency_id, acting.officer
    limiter: RateLimiter[UUID] = request.app.state.rate_limiter
    # The portal's one key serves every officer: each of them has the minute an agency's key has.
    wait = limiter.check(key.key_id if officer is None else uuid5(key.key_id, f"{agency_id}/{officer}"))
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many requests for this key", headers={"Retry-After": f"{wait:.0f}"}
        )
    agreement = agreement_in_force(runtime, agency_id)
    if agreement is None:
        # No agreement in force, nothing shared: not even whether the agency once had one.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "no data-sharing agreement in force for this agency")
    return Caller(key=key, agreement=agreement, agency_id=agency_id, officer=officer)


CurrentCaller = Annotated[Caller, Depends(get_caller)]
#: What every agency operation may answer beside 401, 413 and 429 (timpora.common.http.errors).
AGENCY_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: described("The agency has no data-sharing agreement in force"),
    503: described("The disclosure log cannot be written, so nothing is disclosed"),
}
