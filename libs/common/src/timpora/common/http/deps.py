"""Dependencies every service's routes share."""

# No ``from __future__ import annotations``: FastAPI must see the closure's ``Depends(bearer)`` itself.
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from timpora.common.access import ApiKey, KeyStore
from timpora.common.service import ServiceRuntime


# async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
async def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]


def key_holder(store: KeyStore, *, description: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that yields the holder of the bearer key from ``store``, or answers 401."""
    bearer = HTTPBearer(auto_error=False, description=description)

    async def authenticated(
        runtime: Runtime, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiKey:
        key = None
        if credentials is not None:
            async with runtime.sessions() as session:
                key = await store.authenticate(session, credentials.credentials)
        if key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"a valid key is required: {description}",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return key

    return authenticated
