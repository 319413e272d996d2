"""A webhook receiver for the alerts benchmarks, run in a process of its own so that it does not share
an event loop with what it measures:

    python -m uvicorn bench.receiver:app --port PORT

``POST /hook`` answers 204 at once and notes when it arrived and how long after the alerted event
happened (the body's ``event.time``); ``GET /stats`` returns the count and those delays, ``GET /count`` the count
alone (what a benchmark polls while it waits: the delays of thousands of deliveries are a large answer to build,
send and parse fifty times a second beside what is measured), ``POST /reset`` forgets them.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_delays_ms: list[float] = []


async def hook(request: Request) -> Response:
    body = await request.body()
    arrived = time.time()
    event = json.loads(body).get("event") or {}
    if "time" in event:
        _delays_ms.append((arrived - datetime.fromisoformat(event["time"]).timestamp()) * 1000)
    else:
        _delays_ms.append(-1.0)
    return Response(status_code=204)


async def stats(_: Request) -> Response:
    return JSONResponse({"count": len(_delays_ms), "delays_ms": _delays_ms})


async def count(_: Request) -> Response:
    return JSONResponse({"count": len(_delays_ms)})


async def reset(_: Request) -> Response:
    _delays_ms.clear()
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/hook", hook, methods=["POST"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/count", count, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
    ]
)
