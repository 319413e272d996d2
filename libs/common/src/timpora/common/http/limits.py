"""The request body limit: every service refuses a body larger than ``HttpSettings.max_body_bytes`` (413)
before its application reads it, authenticated or not, whether the client declared its length or sent it in
chunks, and one that takes longer than ``HttpSettings.body_timeout_s`` to arrive (408). A pure ASGI middleware,
so that nothing of the service (authentication, validation, a route's own ``request.body()``) ever holds more
than the limit of one request in memory, or holds it for longer than the timeout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = 413
TOO_SLOW = 408
BUSY = 503


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        timeout_s: float = 30.0,
        larger: Mapping[str, int] | None = None,
        larger_timeout_s: float = 120.0,
        larger_at_once: int = 4,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        #: The few paths that take more (a photo from a village's phone): their own limit, by exact path, and the
        #: longer time a slow mobile link needs to send it.
        self.larger = dict(larger or {})
        self.larger_timeout_s = max(larger_timeout_s, timeout_s)
        # How many such bodies are read at once: whatever headers a client sends (a cookie is easy to make up), the
        # service never holds more than this many large bodies, for this long, in memory.
        self._larger_reads = asyncio.Semaphore(larger_at_once)

    def _allowance(self, scope: Scope) -> tuple[int, float]:
        larger = self.larger.get(scope["path"])
        # Only for a request that carries credentials (a key, a session cookie): an anonymous client is held to the
        # common limit, so that it cannot make the service hold several megabytes per connection for minutes.
        if larger is None or not any(name in {b"authorization", b"cookie"} for name, _ in scope["headers"]):
            return self.max_bytes, self.timeout_s
        return larger, self.larger_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, timeout_s = self._allowance(scope)
        if max_bytes == self.max_bytes:
            await self._read(scope, receive, send, max_bytes, timeout_s)
            return
        if self._larger_reads.locked():
            await _refuse(send, BUSY, "too many large uploads at once: send it again in a moment", retry_after=5)
            return
        async with self._larger_reads:
            await self._read(scope, receive, send, max_bytes, timeout_s)

    async def _read(self, scope: Scope, receive: Receive, send: Send, max_bytes: int, timeout_s: float) -> None:
        too_large = f"the request body is larger than the {max_bytes} bytes allowed"
        declared = _content_length(scope)
        if declared is not None and declared > max_bytes:
            # Refused on the header alone: nothing of the body is read (and no 100 Continue invites it).
            await _refuse(send, TOO_LARGE, too_large)
            return
        # Read here, up to the limit, and handed on whole: a chunked body has no length to check beforehand.
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away before it had sent its request
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > max_bytes:
                        await _refuse(send, TOO_LARGE, too_large)
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            # What arrived is dropped, and the connection is closed once this answer is sent: a client this slow
            # could otherwise keep it open for ever by sending a byte now and then (each one puts off the server's
            # keep-alive timeout), and with enough such connections every request would be refused 503.
            await _refuse(send, TOO_SLOW, f"the request body did not arrive within {timeout_s:g} s", close=True)
            return
        await self.app(scope, _replay(b"".join(chunks), receive), send)


async def _refuse(send: Send, status: int, detail: str, *, close: bool = False, retry_after: int | None = None) -> None:
    # Unless ``close``, the rest of the body, if the client goes on sending it, is discarded by the server: a
    # keep-alive connection stays usable, and the client reads this answer instead of a reset.
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself; the read below bounds it anyway
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then whatever the connection says next (a disconnect)."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
