"""Webhook delivery as the Standard Webhooks specification describes it (https://www.standardwebhooks.com/).

Each attempt is one signed POST. The receiver checks ``webhook-signature`` over id, timestamp and body,
and drops a ``webhook-id`` it has seen, so the queue can retry a message without duplicating the alert.

Before each POST the URL's host is resolved and every address checked (timpora.common.register.destinations); the
POST goes to a checked address, with the URL's own host in ``Host`` and in TLS's SNI (and the certificate checked
against it), so a name that resolves elsewhere a moment later cannot redirect it. A refused destination is not
contacted at all, and its attempt says only :data:`~timpora.common.register.destinations.REFUSED`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import math
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.common.register import destinations
from timpora.common.register.destinations import Destination, IPNetwork

USER_AGENT = "timpora-alerts/0.1"
MAX_RETRY_AFTER = timedelta(hours=24)
_RETRY_AFTER_STATUSES = frozenset({httpx.codes.TOO_MANY_REQUESTS, httpx.codes.SERVICE_UNAVAILABLE})
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
    def __init__(
        self, client: httpx.AsyncClient, *, timeout_s: float = 10.0, allowed: Sequence[IPNetwork] = ()
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        #: Networks the operator allows webhooks into besides the public internet (none by default).
        self._allowed = tuple(allowed)

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
        except (TimeoutError, httpx.TimeoutException):
            return AttemptResult(AttemptOutcome.RETRY, None, f"timed out after {self._timeout_s} s")
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            return AttemptResult(AttemptOutcome.RETRY, None, type(exc).__name__)
        try:
            await _discard_body(response)
        finally:
            await response.aclose()
        return _result_of(response, timestamp)

    async def _post(self, url: str, destination: Destination, headers: dict[str, str], body: bytes) -> httpx.Response:
        """POSTs to the checked addresses in turn until one takes the connection."""
        parts = urlsplit(url)
        # The Host the receiver expects: the URL's own, with its port when the URL names one.
        host_header = parts.netloc.rpartition("@")[2]
        last: httpx.ConnectError | None = None
        tls = parts.scheme == "https"
        if tls:
            # Pooled connections are keyed by the address dialled, not by the name TLS verified: one kept open for
            # another agency's host on the same address would carry this call without this host's certificate
            # ever being checked. Over TLS each call has a connection of its own.
            headers = {**headers, "connection": "close"}
        for address in destination.addresses:
            pinned = httpx.URL(url).copy_with(host=str(address), port=destination.port)
            request = self._client.build_request(
                "POST",
                pinned,
                headers={**headers, "host": host_header},
                content=body,
                timeout=self._timeout_s,
                # TLS names the URL's host (SNI) and checks the certificate against it, not against the address.
                extensions={"sni_hostname": destination.host} if tls else None,
            )
            try:
                return await self._client.send(request, stream=True, follow_redirects=False)
            except httpx.ConnectError as error:
                last = error
        raise last or httpx.ConnectError("no address to connect to")


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


async def _discard_body(response: httpx.Response) -> None:
    # The status alone decides the outcome: an answer that is large, slow or broken only costs the connection.
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(_DRAIN_TIMEOUT_S):
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > _DRAIN_LIMIT_BYTES:
                    return


def _result_of(response: httpx.Response, sent_at: datetime) -> AttemptResult:
    status = response.status_code
    detail = f"HTTP {status}"
    if response.is_success:
        return AttemptResult(AttemptOutcome.DELIVERED, status, detail)
    if status == httpx.codes.GONE:
        return AttemptResult(AttemptOutcome.GONE, status, detail)
    retry_after = None
    if status in _RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("retry-after"), sent_at)
    # Redirects count here too: following one would send the signed alert to an address nobody registered.
    return AttemptResult(AttemptOutcome.RETRY, status, detail, retry_after)
