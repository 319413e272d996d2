"""The alerts' leaf senders against real receivers, and the retry schedule that drives them.

Webhooks go over HTTP to a uvicorn endpoint, e-mail over SMTP to an aiosmtpd server; each attempt
is judged as the delivery queue will record it: delivered, retry (and when), gone, or rejected.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from standardwebhooks import Webhook

from tests.support.processes import free_port
from tests.support.receivers import (
    RECEIVERS_NETWORK,
    SmtpReceiver,
    WebhookReceiver,
    smtp_receiver,
    webhook_receiver,
)
from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.alerts.channels.backoff import RetrySchedule
from timpora.alerts.channels.email import EmailSender, SmtpSettings
from timpora.alerts.channels.webhook import USER_AGENT, WebhookSender, new_secret, parse_retry_after
from timpora.common.register.destinations import parse_networks

BODY = json.dumps({"type": "permit.expiring", "data": {"permit": "Izin tinggal terbatas", "note": "prolongé"}}).encode()
BILINGUAL = (
    "Izin tinggal terbatas (ITAS) akan berakhir dalam 7 hari.\n"
    "Le permis de séjour expire dans 7 jours : prière de vérifier le dossier.\n"
)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with webhook_receiver() as started:
        yield started


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    async with WebhookSender(timeout_s=5.0, allowed=parse_networks(RECEIVERS_NETWORK)) as started:
        yield started


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpReceiver]:
    async with smtp_receiver() as started:
        yield started


def _mailer(smtp: SmtpReceiver) -> EmailSender:
    return EmailSender(SmtpSettings(host=smtp.host, port=smtp.port, sender="alerts@timpora.test", timeout_s=5.0))


async def _post(sender: WebhookSender, receiver: WebhookReceiver, secret: str, message_id: str) -> AttemptResult:
    return await sender.send(receiver.url, secret, message_id=message_id, timestamp=datetime.now(UTC), body=BODY)


# Webhooks


@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=7))], ids=["utc", "jakarta"])
async def test_a_webhook_is_signed_as_standard_webhooks_receivers_verify_it(
    receiver: WebhookReceiver, sender: WebhookSender, zone: timezone
) -> None:
    secret = new_secret()
    sent_at = datetime.now(zone)

    result = await sender.send(receiver.url, secret, message_id="msg_1", timestamp=sent_at, body=BODY)

    assert result == AttemptResult(AttemptOutcome.DELIVERED, 200, "HTTP 200")
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.body == BODY
    assert Webhook(secret).verify(request.body, request.headers) == json.loads(BODY)
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["webhook-timestamp"] == str(int(sent_at.timestamp()))
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT


async def test_every_attempt_of_a_message_carries_the_same_webhook_id(
    receiver: WebhookReceiver, sender: WebhookSender
) -> None:
    secret = new_secret()
    receiver.respond_with(500, body=b"internal error, details: agent@example.org")

    failed = await _post(sender, receiver, secret, "msg_retried")
    receiver.respond_with(204)
    delivered = await _post(sender, receiver, secret, "msg_retried")

    assert failed == AttemptResult(AttemptOutcome.RETRY, 500, "HTTP 500")
    assert delivered == AttemptResult(AttemptOutcome.DELIVERED, 204, "HTTP 204")
    assert [request.headers["webhook-id"] for request in receiver.requests] == ["msg_retried", "msg_retried"]
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)


@pytest.mark.parametrize("status", [429, 503])
async def test_a_throttling_receiver_is_given_the_time_it_asks_for(
    receiver: WebhookReceiver, sender: WebhookSender, status: int
) -> None:
    receiver.respond_with(status, headers={"Retry-After": "120"})

    result = await _post(sender, receiver, new_secret(), "msg_throttled")

    assert result == AttemptResult(AttemptOutcome.RETRY, status, f"HTTP {status}", timedelta(seconds=120))


async def test_a_retry_after_date_counts_from_the_attempts_timestamp(
    receiver: WebhookReceiver, sender: WebhookSender
) -> None:
    sent_at = datetime.now(UTC).replace(microsecond=0)
    receiver.respond_with(503, headers={"Retry-After": format_datetime(sent_at + timedelta(minutes=5), usegmt=True)})

    result = await sender.send(receiver.url, new_secret(), message_id="msg_date", timestamp=sent_at, body=BODY)

    assert result.retry_after == timedelta(minutes=5)


@pytest.mark.parametrize("status", [400, 401, 404, 408, 500, 502])
async def test_other_failures_are_retried_without_a_retry_after(
    receiver: WebhookReceiver, sender: WebhookSender, status: int
) -> None:
    receiver.respond_with(status, headers={"Retry-After": "60"})

    result = await _post(sender, receiver, new_secret(), "msg_failed")

    assert result == AttemptResult(AttemptOutcome.RETRY, status, f"HTTP {status}")


async def test_410_gone_tells_the_queue_to_disable_the_endpoint(
    receiver: WebhookReceiver, sender: WebhookSender
) -> None:
    receiver.respond_with(410)

    result = await _post(sender, receiver, new_secret(), "msg_gone")

    assert result == AttemptResult(AttemptOutcome.GONE, 410, "HTTP 410")


async def test_a_receiver_that_is_down_is_retried_and_reached_once_back(
    receiver: WebhookReceiver, sender: WebhookSender
) -> None:
    secret = new_secret()
    assert (await _post(sender, receiver, secret, "msg_warmup")).outcome is AttemptOutcome.DELIVERED
    port = receiver.port

    async with receiver.down():
        while_down = await _post(sender, receiver, secret, "msg_down")
    once_back = await _post(sender, receiver, secret, "msg_down")

    assert while_down == AttemptResult(AttemptOutcome.RETRY, None, "ConnectError")
    assert once_back == AttemptResult(AttemptOutcome.DELIVERED, 200, "HTTP 200")
    assert receiver.port == port
    assert [request.headers["webhook-id"] for request in receiver.requests] == ["msg_warmup", "msg_down"]


async def test_a_redirect_is_not_followed(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    receiver.respond_with(307, headers={"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})

    result = await _post(sender, receiver, new_secret(), "msg_redirected")

    assert result == AttemptResult(AttemptOutcome.RETRY, 307, "HTTP 307")
    assert [request.path for request in receiver.requests] == ["/webhook"]


async def test_a_slow_receiver_times_out_and_is_retried(receiver: WebhookReceiver) -> None:
    receiver.respond_with(200, delay_s=2.0)

    async with WebhookSender(timeout_s=0.3, allowed=parse_networks(RECEIVERS_NETWORK)) as slow:
        result = await _post(slow, receiver, new_secret(), "msg_slow")

    assert result == AttemptResult(AttemptOutcome.RETRY, None, "timed out after 0.3 s")


async def test_an_answer_in_time_counts_however_long_its_body_takes() -> None:
    """The status is the answer: a receiver that answered 200 within the bound and then trickles its body is
    delivered, not timed out (and its connection is not kept for another call)."""
    connections = 0

    async def trickling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            for _ in range(1000):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.1)
        writer.close()

    server = await asyncio.start_server(trickling, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, WebhookSender(timeout_s=0.5, allowed=parse_networks(RECEIVERS_NETWORK)) as sender:
        first = await sender.send(
            f"http://127.0.0.1:{port}/hook", new_secret(), message_id="m1", timestamp=datetime.now(UTC), body=BODY
        )
        second = await sender.send(
            f"http://127.0.0.1:{port}/hook", new_secret(), message_id="m2", timestamp=datetime.now(UTC), body=BODY
        )

    assert first == second == AttemptResult(AttemptOutcome.DELIVERED, 200, "HTTP 200")
    assert connections == 2  # the first, its body unread to the end, was not used again


async def test_a_receivers_cookie_goes_to_no_one(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    """A receiver's Set-Cookie is not kept: another agency's receiver on the same address would be sent it."""
    receiver.respond_with(200, headers={"set-cookie": "sid=agency-a; Path=/"})
    await _post(sender, receiver, new_secret(), "msg_1")
    receiver.respond_with(200)
    await _post(sender, receiver, new_secret(), "msg_2")

    assert [request.headers.get("cookie") for request in receiver.requests] == [None, None]


async def test_a_naive_timestamp_is_refused(receiver: WebhookReceiver, sender: WebhookSender) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await sender.send(receiver.url, new_secret(), message_id="m", timestamp=datetime.now(), body=BODY)  # noqa: DTZ005


def test_a_new_secret_is_32_random_bytes_in_the_standard_form() -> None:
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second
    Webhook(first)


NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", timedelta(0)),
        (" 30 ", timedelta(seconds=30)),
        ("999999999999999999999999", timedelta(hours=24)),
        ("Sun, 01 Mar 2026 08:02:00 GMT", timedelta(minutes=2)),
        ("Sun, 01 Mar 2026 07:00:00 GMT", timedelta(0)),
        ("Mon, 02 Mar 2026 09:00:00 GMT", timedelta(hours=24)),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@given(st.text())
def test_retry_after_never_fails_and_stays_within_a_day(value: str) -> None:
    wait = parse_retry_after(value, NOW)

    assert wait is None or timedelta(0) <= wait <= timedelta(hours=24)


# E-mail


async def test_a_bilingual_mail_arrives_intact_with_its_message_id(smtp: SmtpReceiver) -> None:
    message_id = str(uuid.uuid4())

    result = await _mailer(smtp).send(
        ["imigrasi@agency.test", "prefecture@agency.test"],
        "Izin tinggal : échéance dans 7 jours",
        BILINGUAL,
        message_id=message_id,
    )

    assert result == AttemptResult(AttemptOutcome.DELIVERED, 250, "SMTP 250")
    [mail] = smtp.messages
    assert mail.mail_from == "alerts@timpora.test"
    assert mail.rcpt_tos == ("imigrasi@agency.test", "prefecture@agency.test")
    assert mail.message["Subject"] == "Izin tinggal : échéance dans 7 jours"
    assert mail.message["Message-ID"] == f"<{message_id}@timpora>"
    assert mail.message["X-Timpora-Message-Id"] == message_id
    assert mail.message["From"] == "alerts@timpora.test"
    assert mail.message["Date"] is not None
    assert mail.message.get_content_type() == "text/plain"
    assert mail.message.get_content_charset() == "utf-8"
    # SMTP carries lines ending in CRLF; every other character arrives as sent.
    assert mail.text.replace("\r\n", "\n") == BILINGUAL


async def test_a_mail_refused_for_now_is_retried_with_the_same_message_id(smtp: SmtpReceiver) -> None:
    smtp.refuse_next("451 4.3.0 Try again later")
    mailer = _mailer(smtp)

    refused = await mailer.send(["imigrasi@agency.test"], "Izin tinggal", BILINGUAL, message_id="m-451")
    accepted = await mailer.send(["imigrasi@agency.test"], "Izin tinggal", BILINGUAL, message_id="m-451")

    assert refused == AttemptResult(AttemptOutcome.RETRY, 451, "SMTP 451")
    assert accepted.outcome is AttemptOutcome.DELIVERED
    [mail] = await smtp.wait_for_messages(1)
    assert mail.message["Message-ID"] == "<m-451@timpora>"


async def test_a_mail_refused_for_good_is_rejected(smtp: SmtpReceiver) -> None:
    smtp.refuse_next("554 5.6.0 Message refused")

    result = await _mailer(smtp).send(["imigrasi@agency.test"], "Izin tinggal", BILINGUAL, message_id="m-554")

    assert result == AttemptResult(AttemptOutcome.REJECTED, 554, "SMTP 554")
    assert smtp.messages == []


async def test_unknown_recipients_are_rejected_without_naming_them(smtp: SmtpReceiver) -> None:
    smtp.refuse_recipient("gone@agency.test", "550 5.1.1 No such user")
    smtp.refuse_recipient("left@agency.test", "550 5.1.1 No such user")

    result = await _mailer(smtp).send(
        ["gone@agency.test", "left@agency.test"], "Izin tinggal", BILINGUAL, message_id="m-550"
    )

    assert result == AttemptResult(AttemptOutcome.REJECTED, 550, "SMTP 550")
    assert smtp.messages == []


async def test_recipients_refused_for_now_are_retried(smtp: SmtpReceiver) -> None:
    smtp.refuse_recipient("busy@agency.test", "450 4.2.1 Mailbox busy")
    smtp.refuse_recipient("gone@agency.test", "550 5.1.1 No such user")

    result = await _mailer(smtp).send(
        ["gone@agency.test", "busy@agency.test"], "Izin tinggal", BILINGUAL, message_id="m-450"
    )

    assert result == AttemptResult(AttemptOutcome.RETRY, 450, "SMTP 450")


async def test_a_mail_accepted_for_some_recipients_is_delivered(smtp: SmtpReceiver) -> None:
    smtp.refuse_recipient("gone@agency.test")

    result = await _mailer(smtp).send(
        ["imigrasi@agency.test", "gone@agency.test"], "Izin tinggal", BILINGUAL, message_id="m-partial"
    )

    assert result == AttemptResult(AttemptOutcome.DELIVERED, 250, "1 of 2 recipients refused")
    assert "@" not in result.detail
    [mail] = smtp.messages
    assert mail.rcpt_tos == ("imigrasi@agency.test",)


async def test_an_smtp_server_that_is_down_is_retried() -> None:
    mailer = EmailSender(SmtpSettings(port=free_port(), timeout_s=2.0))

    result = await mailer.send(["imigrasi@agency.test"], "Izin tinggal", BILINGUAL, message_id="m-down")

    assert result == AttemptResult(AttemptOutcome.RETRY, None, "SMTPConnectError")


async def test_a_header_injection_is_rejected_before_anything_is_sent(smtp: SmtpReceiver) -> None:
    result = await _mailer(smtp).send(
        ["imigrasi@agency.test"], "Izin tinggal\r\nBcc: someone@elsewhere.test", BILINGUAL, message_id="m-crlf"
    )

    assert result == AttemptResult(AttemptOutcome.REJECTED, None, "invalid address or header")
    assert smtp.messages == []


def test_smtp_settings_keep_the_password_out_of_reprs_and_know_three_kinds_of_tls() -> None:
    settings = SmtpSettings(username="alerts", password=SecretStr("hunter2"))

    assert "hunter2" not in repr(settings)
    with pytest.raises(ValidationError, match="'when-offered', 'starttls' or 'implicit'"):
        SmtpSettings.model_validate({"tls": "none"})


# Retry schedule

FIRST = datetime(2026, 3, 1, tzinfo=UTC)
DEFAULT = RetrySchedule()
schedules = st.builds(
    RetrySchedule,
    first_delay=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(minutes=10)),
    factor=st.floats(min_value=1.0, max_value=10.0),
    max_delay=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=1)),
    give_up_after=st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=7)),
    jitter=st.floats(min_value=0.0, max_value=0.5),
)


def test_the_default_schedule_is_the_documented_one() -> None:
    delays = [DEFAULT.base_delay(attempts).total_seconds() for attempts in range(1, 11)]

    assert delays == [5, 20, 80, 320, 1280, 5120, 20480, 36000, 36000, 36000]


def test_the_schedule_is_asked_only_after_a_failure() -> None:
    with pytest.raises(ValueError, match="after a failed attempt"):
        DEFAULT.next_attempt_at(
            attempts_made=0, first_attempt_at=FIRST, now=FIRST, retry_after=None, rng=random.Random()
        )


def test_a_huge_attempt_count_waits_the_longest_delay() -> None:
    assert DEFAULT.base_delay(10**6) == DEFAULT.max_delay


@given(schedules, st.integers(min_value=1, max_value=100))
def test_the_delay_before_jitter_never_shrinks_and_stays_capped(schedule: RetrySchedule, attempts: int) -> None:
    assert schedule.base_delay(attempts) <= schedule.base_delay(attempts + 1) <= schedule.max_delay


@given(
    schedule=schedules,
    attempts=st.integers(min_value=1, max_value=40),
    elapsed=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=8)),
    retry_after=st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=24)),
    rng=st.randoms(use_true_random=False),
)
def test_the_next_attempt_is_jittered_honours_retry_after_and_never_passes_the_horizon(
    schedule: RetrySchedule, attempts: int, elapsed: timedelta, retry_after: timedelta | None, rng: random.Random
) -> None:
    now = FIRST + elapsed

    next_at = schedule.next_attempt_at(
        attempts_made=attempts, first_attempt_at=FIRST, now=now, retry_after=retry_after, rng=rng
    )

    if next_at is None:
        return
    delay, base = next_at - now, schedule.base_delay(attempts)
    assert next_at <= FIRST + schedule.give_up_after
    assert delay >= (retry_after or timedelta(0))
    assert delay <= max(schedule.max_delay * (1 + schedule.jitter), retry_after or timedelta(0))
    if retry_after is None or retry_after < base * (1 - schedule.jitter):
        assert base * (1 - schedule.jitter) - timedelta(microseconds=1) <= delay
        assert delay <= base * (1 + schedule.jitter) + timedelta(microseconds=1)


@given(st.randoms(use_true_random=False))
def test_the_default_schedule_gives_up_after_three_days_and_13_to_16_attempts(rng: random.Random) -> None:
    attempts, now = 1, FIRST
    while (
        next_at := DEFAULT.next_attempt_at(
            attempts_made=attempts, first_attempt_at=FIRST, now=now, retry_after=None, rng=rng
        )
    ) is not None:
        assert next_at > now
        attempts, now = attempts + 1, next_at

    assert 13 <= attempts <= 16
    assert now <= FIRST + timedelta(days=3)
    assert now >= FIRST + timedelta(days=3) - DEFAULT.max_delay * (1 + DEFAULT.jitter)
