"""Webhooks reach only the public internet unless the operator allows a network: checked again at every call after
DNS resolution, and a refused call is recorded without a status code, a duration or any detail of the network.

Real senders, real receivers on 127.0.0.1, a real alerts service: loopback is exactly what is refused unless allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.alerts.conftest import AlertsUnderTest
from tests.alerts.people import LAJING, Person
from tests.support.receivers import RECEIVERS_NETWORK, webhook_receiver
from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.alerts.channels.webhook import CERTIFICATE_FAILED, WebhookSender, new_secret
from timpora.alerts.models import agencies
from timpora.common.disclosures import log_table
from timpora.common.register.destinations import REFUSED, category, parse_networks


async def _send(sender: WebhookSender, url: str) -> AttemptResult:
    return await sender.send(url, new_secret(), message_id="msg_1", timestamp=datetime.now(UTC), body=b"{}")


async def test_without_an_allowed_network_the_local_receiver_is_refused_and_never_contacted() -> None:
    async with (
        webhook_receiver() as receiver,
        WebhookSender() as refusing,
        WebhookSender(allowed=parse_networks(RECEIVERS_NETWORK)) as allowing,
    ):
        refused = await _send(refusing, receiver.url)
        allowed = await _send(allowing, receiver.url)

    assert refused == AttemptResult(AttemptOutcome.REFUSED, None, REFUSED)
    assert allowed.outcome is AttemptOutcome.DELIVERED
    assert len(receiver.requests) == 1  # only the allowed call arrived


async def test_a_refused_address_answers_the_same_whether_a_port_is_open_or_closed() -> None:
    async with webhook_receiver() as receiver, WebhookSender() as sender:
        port = receiver.port
        open_port = await _send(sender, f"http://127.0.0.1:{port}/webhook")
        await receiver.stop()
        closed_port = await _send(sender, f"http://127.0.0.1:{port}/webhook")
        other_form = await _send(sender, f"http://[::ffff:127.0.0.1]:{port}/webhook")

    assert open_port == closed_port == other_form == AttemptResult(AttemptOutcome.REFUSED, None, REFUSED)


async def test_a_name_is_resolved_every_address_checked_and_the_call_sent_with_its_own_host() -> None:
    async with (
        webhook_receiver() as receiver,
        WebhookSender(allowed=parse_networks("127.0.0.1/32")) as one,
        WebhookSender(allowed=parse_networks("127.0.0.1/32,::1/128")) as two,
    ):
        url = f"http://localhost:{receiver.port}/webhook"
        # localhost means ::1 as well as 127.0.0.1: allowing only one of them does not do.
        half = await _send(one, url)
        both = await _send(two, url)

    assert half == AttemptResult(AttemptOutcome.REFUSED, None, REFUSED)
    assert both.outcome is AttemptOutcome.DELIVERED
    (request,) = receiver.requests
    assert request.headers["host"] == f"localhost:{receiver.port}"  # the URL's host, not the address dialled


async def test_a_name_resolving_to_a_refused_address_is_refused_when_sent() -> None:
    name = socket.gethostname()
    async with webhook_receiver() as receiver, WebhookSender() as sender:
        result = await _send(sender, f"http://{name}:{receiver.port}/webhook")
    assert result == AttemptResult(AttemptOutcome.REFUSED, None, REFUSED)
    assert receiver.requests == []


class TestThroughTheQueue:
    """The police's webhook names this machine by its host name: a name, so the register takes it, but it resolves
    to a non-public address and no network is allowed, so every call is refused when it is made."""

    @pytest.fixture
    def webhook_networks(self) -> str:
        return ""

    @pytest.fixture
    def webhook_host(self) -> str:
        name = socket.gethostname()
        resolved = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
        assert all(category(ipaddress.ip_address(address)) for address in resolved), (
            f"this test needs the machine's host name to resolve to non-public addresses, not {resolved}"
        )
        return name

    async def test_a_refused_call_is_dead_with_a_fixed_reason_no_code_and_no_duration(
        self, service: AlertsUnderTest
    ) -> None:
        person = Person(village=LAJING)
        await service.send(person.arrived())
        await service.deliver()

        response = await service.as_operator(
            "GET", "/v1/admin/deliveries", params={"agency_id": "polres-bangkalan", "limit": 50}
        )
        assert response.status_code == 200, response.text
        (webhook,) = [item for item in response.json() if item["channel"] == "webhook"]
        assert webhook["status"] == "dead"
        assert webhook["last_status_code"] is None
        assert webhook["last_detail"] == REFUSED
        assert [
            (attempt["outcome"], attempt["status_code"], attempt["detail"], attempt["duration_ms"])
            for attempt in webhook["history"]
        ] == [("refused", None, REFUSED, 0)]
        assert service.webhook.requests == []  # nothing was contacted
        # Nothing left, so nothing is on the disclosure record as sent by webhook (the e-mail went, and is).
        async with service.runtime.engine.connect() as connection:
            statement = select(log_table.c.channel).where(log_table.c.record_ids.contains([person.foreigner_id]))
            channels = set((await connection.execute(statement)).scalars())
        assert "webhook" not in channels

    async def test_enabling_a_webhook_that_resolves_to_a_refused_address_is_refused(
        self, service: AlertsUnderTest
    ) -> None:
        async with service.runtime.sessions() as session, session.begin():
            await session.execute(
                update(agencies)
                .where(agencies.c.id == "polres-bangkalan")
                .values(webhook_disabled_at=service.clock.now(), webhook_disabled_reason="HTTP 410")
            )
        response = await service.as_operator("POST", "/v1/admin/agencies/polres-bangkalan/webhook/enable")
        listed = await service.as_operator("GET", "/v1/admin/agencies")

        assert response.status_code == 422, response.text
        assert "resolves to a loopback address" in response.json()["detail"]
        assert response.json()["detail"].endswith("; to allow it, add its network to TIMPORA_WEBHOOK_ALLOWED_NETWORKS")
        (police,) = [item for item in listed.json() if item["agency"]["id"] == "polres-bangkalan"]
        assert police["webhook_disabled_at"] is not None  # still disabled


async def test_an_allowed_receiver_is_reached_through_the_queue(service: AlertsUnderTest) -> None:
    """The counterpart: the same service with the receivers' network allowed delivers (the conftest allows it)."""
    await service.send(Person(village=LAJING).arrived())
    await service.deliver()
    assert len(await service.webhook.wait_for_requests(1)) == 1


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``localhost`` only (no IP address in it)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # noqa: S603 - fixed arguments
        [  # noqa: S607 - openssl from the PATH, as the local stack uses it
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class _TlsReceiver:
    port: int
    #: Each request's head and body, as received.
    requests: list[bytes] = field(default_factory=list)
    #: The name each TLS handshake asked for (SNI): one a connection.
    names: list[str | None] = field(default_factory=list)


@contextlib.asynccontextmanager
async def _tls_receiver(cert: Path, key: Path) -> AsyncIterator[_TlsReceiver]:
    """A TLS server on 127.0.0.1 with ``cert`` that answers every request 204 and keeps the connection open, as a
    real server does, until the client closes it."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []

    def named(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(name)

    server_context.sni_callback = named
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            fields = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
            requests.append(head + await reader.readexactly(int(fields[b"content-length"])))
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()

    async def answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            await answer(reader, writer)
        writer.close()

    server = await asyncio.start_server(answering, "127.0.0.1", 0, ssl=server_context)
    async with server:
        yield _TlsReceiver(server.sockets[0].getsockname()[1], requests, names)


async def test_over_tls_the_call_names_the_host_in_sni_and_checks_the_certificate_against_it(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    allowed = parse_networks("127.0.0.1/32,::1/128")
    trusted = ssl.create_default_context(cafile=str(cert))
    async with _tls_receiver(cert, key) as receiver, WebhookSender(allowed=allowed, tls=trusted) as sender:
        port = receiver.port
        by_name = await _send(sender, f"https://localhost:{port}/hook")
        # The same server by its address: the certificate does not name it, so the call fails — also when a
        # connection to that address, verified for another name, is kept open for it.
        by_address = await _send(sender, f"https://127.0.0.1:{port}/hook")
        again = await _send(sender, f"https://localhost:{port}/hook")

    assert by_name == again == AttemptResult(AttemptOutcome.DELIVERED, 204, "HTTP 204")
    # Said as such, for the operator: the agency's certificate is what needs mending, not its network.
    assert by_address == AttemptResult(AttemptOutcome.RETRY, None, CERTIFICATE_FAILED)
    assert len(receiver.requests) == 2  # nothing went to the address the certificate does not name
    heads = [request.lower().split(b"\r\n\r\n", 1)[0].split(b"\r\n") for request in receiver.requests]
    assert all(head.count(f"host: localhost:{port}".encode()) == 1 for head in heads)
    # The second call to the name went over the connection kept from the first, checked once for that name.
    assert receiver.names.count("localhost") == 1


async def test_a_certificate_bundle_named_by_the_environment_is_not_trusted(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which authorities make a receiver verified is the deployment's (certifi's bundle), not whatever
    SSL_CERT_FILE or SSL_CERT_DIR name in the service's environment."""
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("SSL_CERT_DIR", str(cert.parent))
    async with (
        _tls_receiver(cert, key) as receiver,
        WebhookSender(allowed=parse_networks("127.0.0.1/32,::1/128")) as sender,
    ):
        result = await _send(sender, f"https://localhost:{receiver.port}/hook")

    assert result == AttemptResult(AttemptOutcome.RETRY, None, CERTIFICATE_FAILED)
    assert receiver.requests == []
