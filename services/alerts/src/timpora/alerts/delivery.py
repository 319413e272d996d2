"""The delivery worker: gathers notices into messages (:mod:`timpora.alerts.grouping`), claims due messages from
the queue, sends them, records every attempt.

Every notice passes the agreement in force when it is sent, not only the one it was written under: its person is
filtered through the agreement's fields again, a notice of an event the agreement no longer lists is not sent, and
an agency without an agreement in force is sent nothing about anyone (the controller, the immigration office,
always receives). Each attempt that carries a person is in the disclosure log before it is made.

Sending happens outside any database transaction (a slow receiver must not hold row locks); the
claim's lease covers the gap. Webhook endpoints that keep failing, or answer 410 Gone, are disabled
and their agency is told by e-mail; their pending webhook notices are held until an operator
re-enables the endpoint and replays them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from timpora.alerts import queue
from timpora.alerts.agencies import DirectoryCache
from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.alerts.channels.backoff import RetrySchedule
from timpora.alerts.channels.email import EmailSender
from timpora.alerts.channels.webhook import WebhookSender
from timpora.alerts.disclosing import terms_for
from timpora.alerts.domain import notices
from timpora.alerts.domain.routing import Directory
from timpora.alerts.grouping import Grouper
from timpora.alerts.models import agencies, deliveries
from timpora.alerts.settings import DeliverySettings
from timpora.common.clock import Clock
from timpora.common.db.notify import Wakeup
from timpora.common.disclosures import Channel as DisclosureChannel
from timpora.common.disclosures import Disclosure, DisclosureLog
from timpora.common.events import KafkaRecord
from timpora.common.kafka.producer import EventProducer
from timpora.common.register import destinations
from timpora.common.register.members import Agency, Channel
from timpora.common.topics import TopicCatalog

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "timpora_alert_deliveries_total",
    "Delivery attempts by channel and outcome (delivered, retry, gone, rejected).",
    ["channel", "outcome"],
)
QUEUE_DEPTH = Gauge("timpora_alert_queue_depth", "Deliveries waiting to be sent, by status.", ["status"])
OLDEST_PENDING = Gauge("timpora_alert_oldest_pending_seconds", "Age of the oldest delivery not yet delivered.")
WEBHOOK_DISABLED = "webhook endpoint disabled"
_DISABLED_NOTICES = uuid.UUID("0b6f1d7c-3c59-4f0e-8a3e-5d1c2f7a9b10")


#: What each alert channel is called in the disclosure log.
_DISCLOSED_ON = {
    Channel.WEBHOOK: DisclosureChannel.WEBHOOK,
    Channel.EMAIL: DisclosureChannel.EMAIL,
    Channel.KAFKA: DisclosureChannel.KAFKA,
}
NO_AGREEMENT = "no data-sharing agreement in force covers it: nothing sent"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A claimed delivery as it may be sent now: its payload within the agreement in force, and the disclosure
    that sending it makes; or why it may not be sent at all."""

    delivery: queue.Claimed
    refused: str | None = None
    disclosures: list[Disclosure] = field(default_factory=list)
    #: Its webhook's address is one webhooks may not reach: nothing will leave, so nothing is disclosed.
    destination_refused: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    result: AttemptResult
    at: datetime
    duration_ms: int


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes every machine channel carries (webhook body, Kafka value)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class DeliveryWorker:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        directory: DirectoryCache,
        webhook: WebhookSender,
        email: EmailSender,
        producer: EventProducer,
        catalog: TopicCatalog,
        settings: DeliverySettings,
        clock: Clock,
        disclosures: DisclosureLog,
        rng: random.Random | None = None,
    ) -> None:
        self._sessions = sessions
        self._disclosures = disclosures
        self._directory = directory
        self._webhook = webhook
        self._email = email
        self._producer = producer
        self._catalog = catalog
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._schedule = RetrySchedule(give_up_after=settings.give_up_after)
        self._wakeup = Wakeup(engine, queue.NOTIFY_CHANNEL, poll_interval_s=settings.poll_interval_s)
        self._grouper = Grouper(sessions, directory, clock)
        self._measured_at = 0.0

    async def run(self) -> None:
        """Delivers until cancelled: woken by NOTIFY when deliveries are queued, polling as a fallback."""
        gathered_at = 0.0
        async with self._wakeup.listening():
            while True:
                # Messages are looked for once a poll interval, not on every wake-up: a burst of queued notices
                # wakes the worker at every commit, and none of them is due before its wait is over anyway.
                gather = time.monotonic() - gathered_at >= self._settings.poll_interval_s
                if gather:
                    gathered_at = time.monotonic()
                handled = await self.run_once(gather=gather)
                if time.monotonic() - self._measured_at > 5.0:  # noqa: PLR2004 - metrics every few seconds
                    await self.measure()
                if handled < self._settings.batch_size:
                    await self._wakeup.wait()

    async def run_once(self, *, gather: bool = True) -> int:
        """Forms the messages that are due (``gather``), then claims one batch of due deliveries, attempts them all
        at once and records the outcomes. Returns how many notices and deliveries it moved on."""
        gathered = await self.gather() if gather else 0
        return gathered + await self._deliver_once()

    async def gather(self) -> int:
        """Forms the messages that are due (see :mod:`timpora.alerts.grouping`); returns how many notices moved."""
        return await self._grouper.run_once()

    async def _deliver_once(self) -> int:
        now = self._clock.now()
        lease = timedelta(seconds=self._settings.lease_s)
        async with self._sessions() as session, session.begin():
            claimed = await queue.claim(session, now=now, limit=self._settings.batch_size, lease=lease)
            claimed = await queue.without_cancelled(session, claimed)
            directory = await self._directory.get(session) if claimed else None
        if not claimed or directory is None:
            return 0
        prepared = [self._prepare(delivery, directory, now) for delivery in claimed]
        prepared = list(await asyncio.gather(*(self._screened(item, directory) for item in prepared)))
        # On the record before anything leaves; if the record cannot be written nothing is sent, and the lease
        # brings the deliveries back.
        await self._disclosures.record([record for item in prepared for record in item.disclosures])
        attempts = await asyncio.gather(*(self._attempt(item, directory) for item in prepared))
        # Settled as prepared: a message of several records the notices it actually gave, not those it was formed with.
        settled = [self._settled(item.delivery, attempt) for item, attempt in zip(prepared, attempts, strict=True)]
        async with self._sessions() as session, session.begin():
            await queue.record_attempts(session, settled)
            await self._track_endpoints(session, directory, settled)
        return len(claimed)

    async def _screened(self, item: Prepared, directory: Directory) -> Prepared:
        """The delivery as it may go, its webhook's destination checked first: a call to an address webhooks may
        not reach would be refused when sent (the sender checks again, on the address it dials), and must not be
        on the disclosure record as if something had left."""
        agency = directory.agencies.get(item.delivery.agency_id)
        webhook = None if agency is None else agency.channels.webhook
        if item.refused is not None or item.delivery.channel is not Channel.WEBHOOK or webhook is None:
            return item
        if await self._webhook.refuses(str(webhook.url)):
            return Prepared(item.delivery, destination_refused=True)
        return item

    async def measure(self) -> None:
        self._measured_at = time.monotonic()
        async with self._sessions() as session:
            counts = await session.execute(
                select(deliveries.c.status, func.count())
                .where(deliveries.c.status.in_(("gathering", "pending", "held")))
                .group_by(deliveries.c.status)
            )
            found: dict[str, int] = dict(counts.all())
            oldest = await session.scalar(
                select(func.min(deliveries.c.created_at)).where(deliveries.c.status == "pending")
            )
        for status in ("gathering", "pending", "held"):
            QUEUE_DEPTH.labels(status).set(found.get(status, 0))
        OLDEST_PENDING.set(0 if oldest is None else max(0.0, (self._clock.now() - oldest).total_seconds()))

    def _prepare(self, delivery: queue.Claimed, directory: Directory, now: datetime) -> Prepared:
        agency = directory.agencies.get(delivery.agency_id)
        if agency is None:
            return Prepared(delivery, refused="agency no longer in the register")
        if not notices.people(delivery.payload):
            return Prepared(delivery)  # about the agency's own endpoint: nobody's data
        terms = terms_for(agency, now)
        within = None if terms is None else terms.payload(delivery.payload)
        if terms is None or within is None:
            return Prepared(delivery, refused=NO_AGREEMENT)
        # A group shows, in full, as many notices as the agency's rate cap for the channel allows.
        payload = notices.as_sent(within, agency.grouping.on(delivery.channel).max_shown)
        if delivery.channel is Channel.WEBHOOK and agency.id in directory.disabled_webhooks:
            return Prepared(replace(delivery, payload=payload))  # held, not sent: nothing to record yet
        if delivery.recipients:
            # Escalation contacts were named when it was queued; one the register no longer names is not written to.
            current = {*agency.escalation_contacts, *agency.channels.emails}
            still = [address for address in delivery.recipients if address in current]
            if not still:
                return Prepared(delivery, refused="none of its recipients is in the register any more: nothing sent")
            delivery = replace(delivery, recipients=still)
        recipients = delivery.recipients or (agency.channels.emails if delivery.channel is Channel.EMAIL else [])
        several = delivery.message == queue.GROUP
        query: dict[str, Any] = {"message": delivery.message, "recipients": list(recipients)}
        if several:
            # The notices a message of several only named by id and type disclose nobody, and are on the record too.
            query["not_shown"] = [entry["message_id"] for entry in payload["not_shown"]]
        disclosures = terms.disclosures(
            _DISCLOSED_ON[delivery.channel],
            f"message {delivery.message_id}",
            notices.notices_in(payload),
            now,
            query,
            name_notices=several,
        )
        return Prepared(replace(delivery, payload=payload), disclosures=disclosures)

    async def _attempt(self, prepared: Prepared, directory: Directory) -> Attempt:
        delivery = prepared.delivery
        attempted_at = self._clock.now()
        started = time.perf_counter()
        agency = directory.agencies.get(delivery.agency_id)
        if prepared.destination_refused:
            # Dead with the fixed reason, no code, no time: the queue does not tell how the network answered.
            return Attempt(AttemptResult(AttemptOutcome.REFUSED, None, destinations.REFUSED), attempted_at, 0)
        if agency is None or prepared.refused is not None:
            result = AttemptResult(AttemptOutcome.REJECTED, None, prepared.refused or "agency not in the register")
        else:
            try:
                # Bounded well within the lease: a round outliving it (a Kafka producer waiting on a cluster that is
                # down) would see its deliveries claimed again by another worker meanwhile, sent twice, and each
                # claim counted an attempt, pushing the next retry minutes further than the failures called for.
                async with asyncio.timeout(self._settings.attempt_bound_s):
                    result = await self._send(delivery, agency, directory)
            except TimeoutError:
                result = AttemptResult(AttemptOutcome.RETRY, None, "timed out")
            except Exception as error:  # noqa: BLE001 - one bad attempt (a broken secret, URL) must not sink the round
                log.warning(
                    "delivery attempt failed", extra={"delivery_id": delivery.id, "reason": type(error).__name__}
                )
                result = AttemptResult(AttemptOutcome.RETRY, None, f"could not send: {type(error).__name__}")
        DELIVERIES.labels(delivery.channel.value, result.outcome.value).inc()
        if result.outcome is AttemptOutcome.REFUSED:
            # How long a refusal took (a DNS answer, an allowed network) is not for the queue to tell.
            return Attempt(result, attempted_at, 0)
        return Attempt(result, attempted_at, round((time.perf_counter() - started) * 1000))

    async def _send(self, delivery: queue.Claimed, agency: Agency, directory: Directory) -> AttemptResult:
        message_id = str(delivery.message_id)
        if delivery.channel is Channel.WEBHOOK:
            webhook = agency.channels.webhook
            if webhook is None:
                return AttemptResult(AttemptOutcome.REJECTED, None, "the agency has no webhook")
            if agency.id in directory.disabled_webhooks:
                return AttemptResult(AttemptOutcome.GONE, None, WEBHOOK_DISABLED)
            # The signature's timestamp is the real instant of sending, whatever clock schedules the work:
            # receivers compare it with their own clocks to refuse replayed requests.
            return await self._webhook.send(
                webhook.url,
                webhook.resolve_secret(),
                message_id=message_id,
                timestamp=datetime.now(UTC),
                body=body_of(delivery.payload),
            )
        if delivery.channel is Channel.EMAIL:
            recipients = delivery.recipients or agency.channels.emails
            if not recipients:
                return AttemptResult(AttemptOutcome.REJECTED, None, "no e-mail recipients")
            mail = notices.email(delivery.payload, agency.zone)
            return await self._email.send(
                recipients,
                mail.subject,
                mail.text,
                message_id=message_id,
                html=mail.html,
                attachments=mail.attachments,
            )
        return await self._publish(delivery)

    async def _publish(self, delivery: queue.Claimed) -> AttemptResult:
        key = str(delivery.alert_id or delivery.message_id).encode()
        record = KafkaRecord(
            key=key,
            value=body_of(delivery.payload),
            headers=(
                ("message_id", str(delivery.message_id).encode()),
                ("message", delivery.message.encode()),
                ("content-type", b"application/json"),
            ),
        )
        try:
            await self._producer.send_record(self._catalog.agency_alerts(delivery.agency_id).name, record)
        except Exception as error:  # noqa: BLE001 - any producer failure is retried later, never lost
            return AttemptResult(AttemptOutcome.RETRY, None, f"Kafka: {type(error).__name__}")
        return AttemptResult(AttemptOutcome.DELIVERED, None, "acknowledged by Kafka")

    def _settled(self, delivery: queue.Claimed, attempt: Attempt) -> queue.Settled:
        next_at = None
        if attempt.result.outcome is AttemptOutcome.RETRY:
            next_at = self._schedule.next_attempt_at(
                attempts_made=delivery.attempts,
                first_attempt_at=delivery.first_attempt_at,
                now=attempt.at,
                retry_after=attempt.result.retry_after,
                rng=self._rng,
            )
        settled = queue.Settled(delivery, attempt.result, attempt.at, attempt.duration_ms, next_at)
        if settled.status == "dead":
            log.warning(
                "delivery given up",
                extra={"delivery_id": delivery.id, "channel": delivery.channel.value, "reason": attempt.result.detail},
            )
        return settled

    async def _track_endpoints(self, session: AsyncSession, directory: Directory, settled: list[queue.Settled]) -> None:
        """Remembers since when each endpoint fails; disables one on 410 Gone or after failing for too long."""
        by_agency: dict[str, list[AttemptResult]] = {}
        for item in settled:
            if item.delivery.channel is Channel.WEBHOOK and item.result.detail != WEBHOOK_DISABLED:
                by_agency.setdefault(item.delivery.agency_id, []).append(item.result)
        for agency_id, results in by_agency.items():
            agency = directory.agencies.get(agency_id)
            if agency is not None:
                await self._track_endpoint(session, agency, results, settled[0].attempted_at)

    async def _track_endpoint(
        self, session: AsyncSession, agency: Agency, results: list[AttemptResult], now: datetime
    ) -> None:
        row = agencies.c
        if any(result.outcome is AttemptOutcome.DELIVERED for result in results):
            await session.execute(
                update(agencies)
                .where(row.id == agency.id, row.webhook_failing_since.is_not(None))
                .values(webhook_failing_since=None)
            )
            return
        failing_since = await session.scalar(
            update(agencies)
            .where(row.id == agency.id)
            .values(webhook_failing_since=func.coalesce(row.webhook_failing_since, now))
            .returning(row.webhook_failing_since)
        )
        gone = next((result for result in results if result.outcome is AttemptOutcome.GONE), None)
        too_long = failing_since is not None and now - failing_since >= self._settings.disable_endpoint_after
        if gone is not None or too_long:
            reason = gone.detail if gone is not None else f"failing since {failing_since}"
            await self.disable_endpoint(session, agency, reason=reason, now=now)

    async def disable_endpoint(self, session: AsyncSession, agency: Agency, *, reason: str, now: datetime) -> None:
        row = agencies.c
        disabled = await session.scalar(
            update(agencies)
            .where(row.id == agency.id, row.webhook_disabled_at.is_(None))
            .values(webhook_disabled_at=now, webhook_disabled_reason=reason)
            .returning(row.id)
        )
        if disabled is None:
            return  # already disabled by another attempt of the same batch
        await queue.hold_webhooks(session, agency.id)
        self._directory.invalidate()
        log.warning("webhook endpoint disabled", extra={"agency_id": agency.id, "reason": reason})
        await tell_endpoint_disabled(session, agency, reason=reason, now=now)


async def tell_endpoint_disabled(session: AsyncSession, agency: Agency, *, reason: str, now: datetime) -> None:
    """Tells the agency, on its other channels, that its webhook no longer receives alerts."""
    webhook = agency.channels.webhook
    message_id = uuid.uuid5(_DISABLED_NOTICES, f"{agency.id}:{now.isoformat()}")
    recipients = list(dict.fromkeys([*agency.channels.emails, *agency.escalation_contacts]))
    channels: Sequence[Channel] = [Channel.EMAIL] if recipients else []
    if agency.channels.kafka:
        channels = [*channels, Channel.KAFKA]
    if not channels:
        log.error("webhook disabled and the agency has no other channel to be told by", extra={"agency_id": agency.id})
    await queue.enqueue(
        session,
        queue.Message(
            message_id=message_id,
            kind="endpoint-disabled",
            agency_id=agency.id,
            channels=channels,
            payload=notices.endpoint_disabled_message(
                message_id=message_id, agency_id=agency.id, url=webhook.url if webhook else "", reason=reason
            ),
            now=now,
            recipients=recipients or None,
        ),
    )
