"""Webhook delivery as the Standard Webhooks specification describes it (https://www.standardwebhooks.com/).

Each attempt is one signed POST. The receiver checks ``webhook-signature`` over id, timestamp and body,
and drops a ``webhook-id`` it has seen, so the queue can retry a message without duplicating the alert.

Before each POST the URL's host is resolved and every address checked (timpora.common.register.destinations); the
POST goes to a checked address, with the URL's own host in ``Host`` and in TLS's SNI (and the certificate checked
against it), so a name that resolves elsewhere a moment later cannot redirect it. A refused destination is not
contacted at all, and its attempt says only :data:`~timpora.common.register.destinations.REFUSED`.

The POSTs go through aiohttp, not httpx: with a round's 64 POSTs in flight, httpx's connection pool looked at every
connection it held for every request (a ``getpeername`` and a ``poll`` each), and a POST cost several times aiohttp's
CPU; the delivery worker's round is the alerts service's busiest path.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import math
import secrets
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import aiohttp
import certifi
from standardwebhooks import Webhook
from yarl import URL

from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.common.register import destinations
from timpora.common.register.destinations import Destination, IPNetwork

USER_AGENT = "timpora-alerts/0.1"
MAX_RETRY_AFTER = timedelta(hours=24)
_RETRY_AFTER_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})
#: What an attempt that reached no address says (the word the queue has always recorded for it).
CONNECT_FAILED = "ConnectError"
#: What an attempt says when the receiver's certificate was not valid for its host (at every address tried).
CERTIFICATE_FAILED = "CertificateError"
#: Seconds a connection is kept idle for the next call: below the 5 s after which common servers (uvicorn, Node)
#: close an idle one, so a call seldom goes out on a connection the receiver is closing.
_KEEPALIVE_S = 4.0
# The answer's body is never stored: it is read only so the connection can be reused, and only if small and quick.
_DRAIN_LIMIT_BYTES = 64 * 1024
_DRAIN_TIMEOUT_S = 1.0


def new_secret() -> str:
    """A fresh signing secret for an endpoint: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """The wait a ``Retry-After`` header asks for, in delta-seconds or as an HTTP-date counted from ``now``
    (timezone-aware): never negative, at most 24 h, None when absent or unparseable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        try:
            seconds = int(value)
        except ValueError:  # more digits than int() converts
            return None
        return timedelta(seconds=min(seconds, MAX_RETRY_AFTER.total_seconds()))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (ValueError, OverflowError):
        return None
    if when.tzinfo is None:  # a "-0000" zone: UTC, origin unknown
        when = when.replace(tzinfo=UTC)
    return min(max(when - now, timedelta(0)), MAX_RETRY_AFTER)


class WebhookSender:
    """Signs and POSTs webhooks through one pool of connections, opened at the first call (an aiohttp session needs a
    running event loop) and closed by :meth:`close` (or leaving ``async with``); no call is made after that.

    ``connections``: how many calls may be in flight at once (the worker's round sends up to its batch at once);
    a connection is kept idle :data:`_KEEPALIVE_S` for the next call to the same host. ``tls``: the certificate
    authorities trusted (None: certifi's bundle, as httpx trusted before; never a bundle the environment names)."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        allowed: Sequence[IPNetwork] = (),
        connections: int = 100,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        #: Networks the operator allows webhooks into besides the public internet (none by default).
        self._allowed = tuple(allowed)
        self._connections = connections
        # cafile given, the context loads no default locations: SSL_CERT_FILE and SSL_CERT_DIR are not read.
        self._tls = tls or ssl.create_default_context(cafile=certifi.where())
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is None:
            return
        if session.connector is not None:
            # Aborted, not closed politely: a receiver that never answers TLS's close would hold the stop.
            await session.connector.close(abort_ssl=True)
        await session.close()

    def _opened(self) -> aiohttp.ClientSession:
        if self._closed:
            raise aiohttp.ClientConnectionError("the webhook sender is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._connections, ssl=self._tls, keepalive_timeout=_KEEPALIVE_S, enable_cleanup_closed=True
                ),
                # No proxy or .netrc from the environment carries personal data elsewhere (nor a certificate bundle:
                # see the TLS context above).
                trust_env=False,
                # The answer's body is never read but to be thrown away: nothing to decompress, nothing to ask for.
                auto_decompress=False,
                skip_auto_headers=("accept-encoding",),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def refuses(self, url: str) -> bool:
        """Whether ``url`` resolves only to addresses webhooks may not reach (a name that does not resolve now is
        not refused here: its send is retried as any unreachable receiver's)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await destinations.resolve(url, self._allowed)
        except destinations.RefusedDestinationError:
            return True
        except (TimeoutError, OSError, ValueError):
            return False
        return False

    async def send(self, url: str, secret: str, *, message_id: str, timestamp: datetime, body: bytes) -> AttemptResult:
        """POSTs ``body`` (UTF-8 JSON) once, signed with ``secret``.

        Every attempt of one message passes the same ``message_id`` and its own ``timestamp`` (timezone-aware,
        normally now: receivers refuse old timestamps). ``timeout_s`` bounds the whole wait for the answer.
        """
        headers = _signed_headers(secret, message_id, timestamp, body)
        try:
            async with asyncio.timeout(self._timeout_s):
                destination = await destinations.resolve(url, self._allowed)
                response = await self._post(url, destination, headers, body)
        except destinations.RefusedDestinationError:
            # Nothing was contacted; what was refused, and why, would tell the queue's readers about the network.
            return AttemptResult(AttemptOutcome.REFUSED, None, destinations.REFUSED)
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
            return AttemptResult(AttemptOutcome.RETRY, None, f"timed out after {self._timeout_s} s")
        except aiohttp.ClientConnectorCertificateError:
            return AttemptResult(AttemptOutcome.RETRY, None, CERTIFICATE_FAILED)
        except aiohttp.ClientConnectorError:
            return AttemptResult(AttemptOutcome.RETRY, None, CONNECT_FAILED)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return AttemptResult(AttemptOutcome.RETRY, None, type(exc).__name__)
        # The answer is in once its status is: the body is drained after the bound, under its own short one, so a
        # receiver that answered in time is never recorded as timed out for a slow or endless body.
        try:
            if not await _discard_body(response):
                response.close()  # not read to its end: closed, never kept for another call
        finally:
            response.release()
        return _result_of(response.status, response.headers.get("retry-after"), timestamp)

    async def _post(
        self, url: str, destination: Destination, headers: dict[str, str], body: bytes
    ) -> aiohttp.ClientResponse:
        """POSTs to the checked addresses in turn until one takes the connection; the response, its body unread.
        A certificate not valid for the host at one address is reported as such if no other address answers."""
        parts = urlsplit(url)
        # The Host the receiver expects: the URL's own, with its port when the URL names one.
        host_header = parts.netloc.rpartition("@")[2]
        failures: list[aiohttp.ClientConnectorError] = []
        tls = parts.scheme == "https"
        # Encoded as a URL must be (what is not ASCII, percent-encoded), as httpx sent it.
        registered = URL(url)
        for address in destination.addresses:
            pinned = registered.with_host(str(address)).with_port(destination.port)
            try:
                return await self._opened().post(
                    pinned,
                    data=body,
                    headers={**headers, "host": host_header},
                    allow_redirects=False,
                    # TLS names the URL's host (SNI) and checks the certificate against it, not against the address.
                    # The pool keys a kept connection by this name as well as by the address dialled, so one kept
                    # open for another agency's host on the same address never carries this call (with httpx, keyed
                    # by the address alone, each call over TLS had to have a connection of its own).
                    server_hostname=destination.host if tls else None,
                )
            except aiohttp.ClientConnectorError as error:
                failures.append(error)
        if not failures:
            raise ValueError("no address to connect to")
        certificates = [error for error in failures if isinstance(error, aiohttp.ClientConnectorCertificateError)]
        raise (certificates or failures)[-1]


def _signed_headers(secret: str, message_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    if timestamp.tzinfo is None:
        raise ValueError("the webhook timestamp must be timezone-aware")
    # Webhook.sign() replaces the zone with UTC rather than converting, so it must be handed UTC.
    utc = timestamp.astimezone(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(utc.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, utc, body.decode()),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


async def _discard_body(response: aiohttp.ClientResponse) -> bool:
    """Reads the answer's body to throw it away; whether it was read to its end. The status alone decides the
    outcome: an answer that is large, slow or broken only costs the connection."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with asyncio.timeout(_DRAIN_TIMEOUT_S):
            read = 0
            while chunk := await response.content.readany():
                read += len(chunk)
                if read > _DRAIN_LIMIT_BYTES:
                    return False
            return True
    return False


def _result_of(status: int, retry_after_header: str | None, sent_at: datetime) -> AttemptResult:
    """The outcome of an answer, from its status and, for a throttled call, its Retry-After."""
    detail = f"HTTP {status}"
    if HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
        return AttemptResult(AttemptOutcome.DELIVERED, status, detail)
    if status == HTTPStatus.GONE:
        return AttemptResult(AttemptOutcome.GONE, status, detail)
    retry_after = None
    if status in _RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(retry_after_header, sent_at)
    # Redirects count here too: following one would send the signed alert to an address nobody registered.
    return AttemptResult(AttemptOutcome.RETRY, status, detail, retry_after)
