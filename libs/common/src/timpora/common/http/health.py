"""``/healthz`` (the process answers), ``/readyz`` (its dependencies answer) and ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from timpora.common.metrics import READY

ReadinessCheck = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 3.0


class Health(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    status: str
    service: str
    checks: dict[str, str]


async def _run(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"timed out after {CHECK_TIMEOUT_S:g}s"
    except Exception as error:  # noqa: BLE001 - a readiness probe reports any failure, it does not raise
        return f"failing: {type(error).__name__}"
    return "ok"


def health_router(service: str, checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> Health:
        return Health(status="ok", service=service)

    @router.get(
        "/readyz",
        summary="Readiness: what the service depends on answers (PostgreSQL; Kafka where it uses it)",
        responses={503: {"model": Readiness, "description": "A dependency is not answering"}},
    )
    async def readyz(response: Response) -> Readiness:
        names = list(checks)
        results = dict(zip(names, await asyncio.gather(*(_run(checks[name]) for name in names)), strict=True))
        ready = all(result == "ok" for result in results.values())
        READY.labels(service).set(1 if ready else 0)
        response.status_code = 200 if ready else 503
        return Readiness(status="ok" if ready else "unavailable", service=service, checks=results)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
