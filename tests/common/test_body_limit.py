"""The larger body limit of a few paths (a village's photo): only for requests with credentials, and never more than
a few such bodies read at once, whatever headers clients make up — the service's memory stays bounded."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from timpora.common.http.limits import BodyLimit

LIMIT, LARGER = 1_000, 100_000


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def _scope(path: str, *, cookie: bool) -> dict[str, Any]:
    headers = [(b"cookie", b"timpora_session=x")] if cookie else []
    return {"type": "http", "path": path, "headers": headers, "method": "POST"}


class _Client:
    """One request whose body arrives when the test says so."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.go = asyncio.Event()
        self.reading = asyncio.Event()
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.reading.set()
        await self.go.wait()
        return {"type": "http.request", "body": b"x" * self.size, "more_body": False}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])


async def test_a_larger_body_is_taken_on_its_path_with_credentials_only() -> None:
    limit = BodyLimit(_app, max_bytes=LIMIT, larger={"/reports": LARGER})
    outcomes = {}
    for path, cookie in (("/reports", True), ("/reports", False), ("/login", True)):
        client = _Client(LIMIT * 5)
        client.go.set()
        await limit(_scope(path, cookie=cookie), client.receive, client.send)
        outcomes[path, cookie] = client.status
    assert outcomes == {("/reports", True): 200, ("/reports", False): 413, ("/login", True): 413}


async def test_only_a_few_larger_bodies_are_read_at_once_and_the_next_is_told_to_come_back() -> None:
    limit = BodyLimit(_app, max_bytes=LIMIT, larger={"/reports": LARGER}, larger_at_once=2)
    slow = [_Client(LIMIT * 5) for _ in range(2)]
    reading = [asyncio.create_task(limit(_scope("/reports", cookie=True), c.receive, c.send)) for c in slow]
    await asyncio.gather(*(client.reading.wait() for client in slow))  # both read, waiting for their bodies
    busy = _Client(LIMIT * 5)
    busy.go.set()
    await limit(_scope("/reports", cookie=True), busy.receive, busy.send)
    small = _Client(10)
    small.go.set()
    await limit(_scope("/login", cookie=False), small.receive, small.send)

    assert busy.status == 503
    assert (b"retry-after", b"5") in busy.sent[0]["headers"]
    assert small.status == 200  # the common limit is not held up by large uploads
    for client in slow:
        client.go.set()
    await asyncio.gather(*reading)
    assert [client.status for client in slow] == [200, 200]
    again = _Client(LIMIT * 5)
    again.go.set()
    await limit(_scope("/reports", cookie=True), again.receive, again.send)
    assert again.status == 200
