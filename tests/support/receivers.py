"""Real receivers for the alerts channels: a webhook endpoint over HTTP and an SMTP server.

Both listen on 127.0.0.1, record everything that reaches them, and answer as the test tells them to
while they run. Nothing is mocked: the senders under test open real connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import ssl
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.processes import free_port

LOCALHOST = "127.0.0.1"
#: The network the receivers listen in. Webhooks reach it only because the tests allow it explicitly, as an
#: operator would (``TIMPORA_WEBHOOK_ALLOWED_NETWORKS``): without that, loopback is refused.
RECEIVERS_NETWORK = f"{LOCALHOST}/32"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    path: str
    #: Lower-case names, as HTTP/1.1 treats them.
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    #: The status it is answered with (after the reply's delay: see ``WebhookReceiver.answered``).
    status: int = 200


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_s: float = 0.0


class _ForegroundServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # pytest owns SIGINT and SIGTERM; the receiver must not take them over.
        yield


class WebhookReceiver:
    """An HTTP endpoint served by uvicorn in the running event loop; it answers 200 until told otherwise."""

    def __init__(self, *, path: str = "/webhook") -> None:
        self.path = path
        self.requests: list[ReceivedRequest] = []
        #: Those whose reply reached a sender still waiting for it (one that gave up before never saw it).
        self.answered: list[ReceivedRequest] = []
        self._reply = _Reply(200)
        self._arrived = asyncio.Condition()
        self._port = 0
        self._server: _ForegroundServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self._app = Starlette(routes=[Route("/{path:path}", self._receive, methods=_METHODS)])

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the webhook receiver has not started yet")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}{self.path}"

    def respond_with(
        self, status: int, *, headers: Mapping[str, str] | None = None, body: bytes = b"", delay_s: float = 0.0
    ) -> None:
        """How every following request is answered, and after how long."""
        self._reply = _Reply(status, dict(headers or {}), body, delay_s)

    async def start(self) -> None:
        """Listens on a free port the first time, and on that same port after a :meth:`stop`."""
        if self._serving is not None:
            raise RuntimeError("the webhook receiver is already running")
        # A socket of our own: a port uvicorn failed to bind would end in sys.exit inside the event loop.
        listener = _listen(self._port)
        self._port = listener.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        server = _ForegroundServer(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("the webhook receiver stopped while starting")
            await asyncio.sleep(0.01)
        self._server, self._serving = server, serving

    async def stop(self) -> None:
        """Closes the port, so that connections are refused, and every open connection."""
        if self._server is None or self._serving is None:
            return
        self._server.should_exit = True
        await self._serving
        self._server = self._serving = None

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        """Refuses connections inside the block; listens again, on the same port, after it."""
        await self.stop()
        try:
            yield
        finally:
            await self.start()

    async def wait_for_requests(self, count: int, *, timeout_s: float = 10.0) -> list[ReceivedRequest]:
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    async def _receive(self, request: Request) -> Response:
        reply = self._reply
        received = ReceivedRequest(
            method=request.method,
            path=request.url.path,
            headers=dict(request.headers),
            body=await request.body(),
            received_at=datetime.now(UTC),
            status=reply.status,
        )
        async with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        await asyncio.sleep(reply.delay_s)
        if not await request.is_disconnected():
            self.answered.append(received)
        return Response(reply.body, status_code=reply.status, headers=reply.headers)


@contextlib.asynccontextmanager
async def webhook_receiver(*, path: str = "/webhook") -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(path=path)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Listening again on the same port must work while closed connections linger in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOCALHOST, port))
    return listener


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    received_at: datetime
    #: Whether it came over TLS (upgraded with STARTTLS, or from the first byte).
    tls: bool = False

    @property
    def text(self) -> str:
        """The plain-text part (the whole body of a plain message)."""
        part = self.message.get_body(("plain",))
        assert part is not None, "the message has no plain-text part"
        return str(part.get_content())

    @property
    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return None if part is None else str(part.get_content())

    @property
    def attachments(self) -> dict[str, str]:
        """Each attached file's text, by its name."""
        return {part.get_filename() or "": str(part.get_content()) for part in self.message.iter_attachments()}


class _RecordingHandler:
    """aiosmtpd's hooks. They run in the controller's thread, hence the lock around what tests read and set."""

    def __init__(self, on_message: Callable[[], None]) -> None:
        self.on_message = on_message
        self.lock = threading.Lock()
        self.messages: list[ReceivedMail] = []
        self.data_refusals: deque[str] = deque()
        self.refused_recipients: dict[str, str] = {}

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd looks for
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str, _rcpt_options: list[str]
    ) -> str:
        with self.lock:
            refusal = self.refused_recipients.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        with self.lock:
            if self.data_refusals:
                return self.data_refusals.popleft()
            self.messages.append(_received(envelope, tls=tls))
        self.on_message()
        return "250 Message accepted for delivery"


def _received(envelope: Envelope, *, tls: bool) -> ReceivedMail:
    if not isinstance(envelope.content, bytes) or envelope.mail_from is None:
        raise TypeError("aiosmtpd handed over an envelope without sender or raw content")
    return ReceivedMail(
        mail_from=envelope.mail_from,
        rcpt_tos=tuple(envelope.rcpt_tos),
        message=email.message_from_bytes(envelope.content, policy=email.policy.default),
        received_at=datetime.now(UTC),
        tls=tls,
    )


class SmtpReceiver:
    """An aiosmtpd server in its own thread that accepts every message until told to refuse. With
    ``tls_context`` it offers STARTTLS (and accepts mail without it too, as most relays do), or, ``implicit``,
    speaks TLS from the first byte (SMTPS)."""

    def __init__(self, *, tls_context: ssl.SSLContext | None = None, implicit: bool = False) -> None:
        self.host = LOCALHOST
        # The controller checks it is up by connecting to its port, so it needs the number before binding.
        self.port = free_port()
        self._handler = _RecordingHandler(self._message_arrived)
        self._controller = Controller(
            self._handler,
            hostname=self.host,
            port=self.port,
            ssl_context=tls_context if implicit else None,
            tls_context=None if implicit else tls_context,
        )
        self._arrived = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._handler.lock:
            return list(self._handler.messages)

    def refuse_next(self, reply: str, count: int = 1) -> None:
        """Answers the next ``count`` messages' DATA with ``reply``, such as "451 4.3.0 Try later"."""
        with self._handler.lock:
            self._handler.data_refusals.extend([reply] * count)

    def refuse_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        """Answers RCPT TO for ``address`` with ``reply`` from now on."""
        with self._handler.lock:
            self._handler.refused_recipients[address] = reply

    async def wait_for_messages(self, count: int, *, timeout_s: float = 10.0) -> list[ReceivedMail]:
        async with asyncio.timeout(timeout_s):
            while True:
                self._arrived.clear()
                if len(messages := self.messages) >= count:
                    return messages
                await self._arrived.wait()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._controller.stop)

    def _message_arrived(self) -> None:
        # Called in the controller's thread; the event belongs to the tests' loop.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._arrived.set)


@contextlib.asynccontextmanager
async def smtp_receiver(
    *, tls_context: ssl.SSLContext | None = None, implicit: bool = False
) -> AsyncIterator[SmtpReceiver]:
    receiver = SmtpReceiver(tls_context=tls_context, implicit=implicit)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
