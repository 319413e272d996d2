"""Authentication by bearer key, checked before anything else about a request.

An operation that needs a key says so with a gate's dependency (``BearerGate.dependency``); FastAPI resolves it
before it validates any other parameter, and :func:`authentication_refusal` covers the one check FastAPI makes
before its dependencies (parsing the body): an unauthenticated caller is told 401 (or 429), never 400 or 422.
"""

# No ``from __future__ import annotations``: FastAPI must see the closure's ``Depends(self.bearer)`` itself.
import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timpora.common.http.ratelimit import RateLimiter

PrincipalT = TypeVar("PrincipalT")
#: How long a key that authenticated counts as known, and how many such keys a gate remembers.
_RECENT_S = 600.0
_RECENT_KEYS = 10_000
#: How long a key that authenticated is trusted before it is looked up again. A revoked key (or a disabled operator's
#: token) stops working within this; meanwhile a busy client's requests cost no database lookup each.
KEY_TRUST_S = 0.5
#: Where a request keeps who it was authenticated as (per gate): a second look does not query again.
_AUTHENTICATED = "timpora.authenticated"
#: The attribute naming a dependency's gate, so that a route's gate can be found from its dependencies.
_GATE = "__timpora_gate__"


def unauthenticated_limiter(request: Request) -> RateLimiter[str]:
    limiter: RateLimiter[str] = request.app.state.unauthenticated_limiter
    return limiter


class BearerGate(Generic[PrincipalT]):
    """One kind of bearer key (an agency's, an operator's): who holds the key a request presents, or a refusal.

    A request without a valid key counts against its client address (``HttpSettings.unauthenticated_per_minute``);
    one with a valid key never does, however many arrive at once. An address that has used up its minute is
    answered 429 before its key is looked up, whatever key it sends, until the minute is over: a key guesser
    neither learns more nor keeps the database busy. The lookup holds a database connection only while it runs.
    A key that authenticated is trusted for ``KEY_TRUST_S`` before it is looked up again.
    """

    #: The gate's time, in seconds (monotonic); tests move it by hand.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        lookup: Callable[[AsyncSession, str], Awaitable[PrincipalT | None]],
        *,
        scheme: str,
        description: str,
        refusal: str,
    ) -> None:
        self.lookup = lookup
        self.description = description
        self.refusal = refusal
        # The keys (their hashes) that authenticated lately, and when. An address over its limit still has these
        # looked up: a flood of bad keys from an address agencies share (an office's NAT, a proxy) must not lock
        # out the agencies behind it. An unknown key from that address is refused unseen, as before.
        self._recent: OrderedDict[bytes, float] = OrderedDict()
        # Who each key (its hash) authenticated as, and since when, per database: keyed by its session factory itself
        # (weakly), never by its id(), which a later factory may be given once this one is gone.
        self._trusted: WeakKeyDictionary[object, OrderedDict[bytes, tuple[float, PrincipalT]]] = WeakKeyDictionary()
        # The lookups under way, with when each began: a key's concurrent requests share one (sixteen at once would
        # otherwise each look it up when its trust runs out).
        self._lookups: WeakKeyDictionary[object, dict[bytes, tuple[float, asyncio.Future[PrincipalT | None]]]] = (
            WeakKeyDictionary()
        )
        # ``scheme`` names the kind of key in the OpenAPI document (a service with two kinds shows both).
        self.bearer = HTTPBearer(auto_error=False, scheme_name=scheme, description=description)

    async def authenticate(self, request: Request) -> PrincipalT:
        known: dict[int, Any] = request.scope.setdefault(_AUTHENTICATED, {})
        if id(self) in known:
            principal: PrincipalT = known[id(self)]
            return principal
        limiter = unauthenticated_limiter(request)
        address = request.client.host if request.client else ""
        credentials = await self.bearer(request)
        token = None if credentials is None else hashlib.sha256(credentials.credentials.encode()).digest()
        if (wait := limiter.waiting(address)) is not None and not self._recently_valid(token):
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many requests without a valid key from this address",
                headers={"Retry-After": f"{wait:.0f}"},
            )
        found = None
        if credentials is not None and token is not None:
            sessions: async_sessionmaker[AsyncSession] = request.app.state.runtime.sessions
            found = await self._principal(sessions, token, credentials.credentials)
        if found is None:
            if token is not None:
                self._recent.pop(token, None)  # revoked since: it is looked up no more past the limit
            limiter.check(address)  # counted; this answer is 401 whatever the count
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, self.refusal, headers={"WWW-Authenticate": "Bearer"})
        if token is not None:
            self._remember(token)
        known[id(self)] = found
        return found

    async def _principal(self, sessions: async_sessionmaker[AsyncSession], token: bytes, key: str) -> PrincipalT | None:
        """Who ``key`` belongs to: as looked up less than ``KEY_TRUST_S`` ago, else looked up now."""
        now = self.clock()
        trusted = self._trusted.setdefault(sessions, OrderedDict())
        known = trusted.get(token)
        if known is not None and now - known[0] < KEY_TRUST_S:
            return known[1]
        lookups = self._lookups.setdefault(sessions, {})
        under_way = lookups.get(token)
        # Joined only while young: a lookup begun KEY_TRUST_S ago may have read the key before it was revoked.
        if (
            under_way is None
            or now - under_way[0] >= KEY_TRUST_S
            or under_way[1].get_loop() is not asyncio.get_running_loop()
        ):
            lookup = asyncio.ensure_future(self._look_up(sessions, key))
            under_way = lookups[token] = (now, lookup)
            lookup.add_done_callback(lambda done: _looked_up(lookups, token, done))
        started, joined = under_way
        # Shielded: a request that goes away (its client disconnected) does not cancel the others' lookup.
        found = await asyncio.shield(joined)
        if found is None:
            trusted.pop(token, None)
            return None
        # Trusted from when the lookup began, not from when this request joined it (nor replacing a later one's).
        latest = trusted.get(token)
        if latest is None or latest[0] < started:
            _keep(trusted, token, (started, found))
        return found

    async def _look_up(self, sessions: async_sessionmaker[AsyncSession], key: str) -> PrincipalT | None:
        async with sessions() as session:
            return await self.lookup(session, key)

    def _recently_valid(self, token: bytes | None) -> bool:
        seen = None if token is None else self._recent.get(token)
        return seen is not None and self.clock() - seen < _RECENT_S

    def _remember(self, token: bytes) -> None:
        _keep(self._recent, token, self.clock())

    def dependency(self) -> Callable[..., Awaitable[PrincipalT]]:
        """The gate as a FastAPI dependency (its bearer scheme shows in the OpenAPI document)."""

        async def authenticated(
            request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(self.bearer)]
        ) -> PrincipalT:
            return await self.authenticate(request)

        setattr(authenticated, _GATE, self)
        return authenticated


def _keep(kept: OrderedDict[bytes, Any], token: bytes, value: object) -> None:
    """Keeps ``value`` for ``token`` as the latest, forgetting the oldest past ``_RECENT_KEYS`` tokens."""
    kept[token] = value
    kept.move_to_end(token)
    while len(kept) > _RECENT_KEYS:
        kept.popitem(last=False)


def _looked_up(
    lookups: dict[bytes, tuple[float, asyncio.Future[Any]]], token: bytes, done: asyncio.Future[Any]
) -> None:
    under_way = lookups.get(token)
    if under_way is not None and under_way[1] is done:
        del lookups[token]
    if not done.cancelled():
        done.exception()  # retrieved: a failure every waiter gave up on is not logged as never retrieved


def gate_of(route: object) -> BearerGate[Any] | None:
    """The authentication an operation needs (None for a public one)."""
    if not isinstance(route, APIRoute):
        return None
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop(0)
        gate = getattr(dependant.call, _GATE, None)
        if isinstance(gate, BearerGate):
            return gate
        pending.extend(dependant.dependencies)
    return None


async def authentication_refusal(request: Request) -> JSONResponse | None:
    """The answer to a request refused before its dependencies ran (a body that does not parse) if the operation
    needs a key the request lacks: an unauthenticated caller learns nothing else about its request (401 or 429,
    never 400 or 422). None if the operation is public or the caller authenticated."""
    gate = gate_of(request.scope.get("route"))
    if gate is None:
        return None
    try:
        await gate.authenticate(request)
    except HTTPException as refusal:
        return JSONResponse({"detail": refusal.detail}, status_code=refusal.status_code, headers=refusal.headers)
    return None
