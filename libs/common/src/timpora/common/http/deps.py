"""Dependencies every service's routes share: the runtime, and the holder of an API key."""

# No ``from __future__ import annotations``: FastAPI must see the annotations itself.
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from timpora.common import register
from timpora.common.access import ApiKey, KeyStore
from timpora.common.http.auth import BearerGate
from timpora.common.service import ServiceRuntime
from timpora.common.settings import ServiceSettings


# async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
async def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]


def key_holder(store: KeyStore, *, scheme: str, description: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that yields the holder of the bearer key from ``store``, or answers 401 (429)."""
    gate = BearerGate(
        store.authenticate, scheme=scheme, description=description, refusal=f"a valid key is required: {description}"
    )
    return gate.dependency()


def member_key_holder(
    store: KeyStore, *, scheme: str, description: str, register_file: Callable[[ServiceSettings], Path]
) -> Callable[..., Awaitable[ApiKey]]:
    """:func:`key_holder` for agency keys: a key counts only while its agency is a member of the register in force
    (read again within a second of a change), so removing a member stops its keys at once (401, as an unknown key:
    a removed agency is told nothing about itself either)."""
    holder = key_holder(store, scheme=scheme, description=description)

    async def member(runtime: Runtime, key: Annotated[ApiKey, Depends(holder)]) -> ApiKey:
        if key.holder not in register.current(register_file(runtime.settings)).members:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"a valid key is required: {description}",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return key

    return member
