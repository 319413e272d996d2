"""Dependencies every service's routes share: the runtime, and the holder of an API key."""

# No ``from __future__ import annotations``: FastAPI must see the annotations itself.
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from timpora.common.access import ApiKey, KeyStore
from timpora.common.http.auth import BearerGate
from timpora.common.service import ServiceRuntime


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
