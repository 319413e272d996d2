"""Dependencies every service's routes share: the runtime, and the holder of an API key."""

# No ``from __future__ import annotations``: FastAPI must see the annotations itself.
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import register
from timpora.common.access import ApiKey, KeyStore
from timpora.common.http.auth import BearerGate
from timpora.common.service import ServiceRuntime
from timpora.common.settings import ServiceSettings
from timpora.common.types import AGENCY_ID_PATTERN, OFFICER_USERNAME_PATTERN


# async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
async def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]


#: What a portal key's holder is called among the agencies' (``portal:NAME``): it holds no data of its own, and acts
#: only for the agency and officer each of its requests names (see :func:`acting_for`).
PORTAL_HOLDER = "portal:"
AGENCY_HEADER = "X-Timpora-Agency"
OFFICER_HEADER = "X-Timpora-Officer"
_AGENCY = re.compile(AGENCY_ID_PATTERN)
_OFFICER = re.compile(OFFICER_USERNAME_PATTERN)


def _lookup(store: KeyStore, portal: KeyStore | None) -> Callable[[AsyncSession, str], Awaitable[ApiKey | None]]:
    async def lookup(session: AsyncSession, key: str) -> ApiKey | None:
        if portal is not None and key.startswith(portal.prefix):
            found = await portal.authenticate(session, key)
            return None if found is None else ApiKey(key_id=found.key_id, holder=PORTAL_HOLDER + found.holder)
        return await store.authenticate(session, key)

    return lookup


def key_holder(
    store: KeyStore, *, scheme: str, description: str, portal: KeyStore | None = None
) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that yields the holder of the bearer key from ``store`` (or ``portal``'s, see
    :data:`PORTAL_HOLDER`), or answers 401 (429)."""
    gate = BearerGate(
        _lookup(store, portal),
        scheme=scheme,
        description=description,
        refusal=f"a valid key is required: {description}",
    )
    return gate.dependency()


def member_key_holder(
    store: KeyStore,
    *,
    scheme: str,
    description: str,
    register_file: Callable[[ServiceSettings], Path],
    portal: KeyStore | None = None,
) -> Callable[..., Awaitable[ApiKey]]:
    """:func:`key_holder` for agency keys: a key counts only while its agency is a member of the register in force
    (read again within a second of a change), so removing a member stops its keys at once (401, as an unknown key:
    a removed agency is told nothing about itself either). The portal's key (``portal``) is no member's: the agency
    each of its requests acts for is checked as a member's would be, by the route (:func:`acting_for`)."""
    holder = key_holder(store, scheme=scheme, description=description, portal=portal)

    async def member(runtime: Runtime, key: Annotated[ApiKey, Depends(holder)]) -> ApiKey:
        if is_portal(key):
            return key
        if key.holder not in register.current(register_file(runtime.settings)).members:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"a valid key is required: {description}",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return key

    return member


def is_portal(key: ApiKey) -> bool:
    return key.holder.startswith(PORTAL_HOLDER)


@dataclass(frozen=True, slots=True)
class Acting:
    """Who a request is from: an agency with its own key, or the portal for one of an agency's officers."""

    key: ApiKey
    #: The agency acted for: the key's own, or the one the portal names.
    agency_id: str
    #: The portal's officer (each read and each action is theirs); None for an agency's own key.
    officer: str | None


def acting_for(request: Request, key: ApiKey) -> Acting:
    """Who ``request`` acts for: an agency's key acts for its agency (no officer named); the portal's key for the
    agency and the officer its request names (``X-Timpora-Agency``, ``X-Timpora-Officer``), each read recorded under
    that officer's name. A portal request that does not name both is refused (403)."""
    if not is_portal(key):
        return Acting(key, key.holder, None)
    agency = request.headers.get(AGENCY_HEADER, "")
    officer = request.headers.get(OFFICER_HEADER, "")
    if not (_AGENCY.fullmatch(agency) and _OFFICER.fullmatch(officer)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the portal acts only for the agency and the officer it names ({AGENCY_HEADER}, {OFFICER_HEADER})",
        )
    return Acting(key, agency, officer)
