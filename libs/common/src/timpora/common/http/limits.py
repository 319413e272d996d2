"""The request body limit: every service refuses a body larger than ``HttpSettings.max_body_bytes`` (413)
before its application reads it, authenticated or not, whether the client declared its length or sent it in
chunks. A pure ASGI middleware, so that nothing of the service (authentication, validation, a route's own
``request.body()``) ever holds more than the limit of one request in memory."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = 413


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Refused on the header alone: nothing of the body is read (and no 100 Continue invites it).
            await self._refuse(send)
            return
        # Read here, up to the limit, and handed on whole: a chunked body has no length to check beforehand.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before it had sent its request
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send) -> None:
        # The rest of the body, if the client goes on sending it, is discarded by the server: a keep-alive
        # connection stays usable, and the client reads this answer instead of a reset.
        body = json.dumps({"detail": f"the request body is larger than the {self.max_bytes} bytes allowed"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": TOO_LARGE,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
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
