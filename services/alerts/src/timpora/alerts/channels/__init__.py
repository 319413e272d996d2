"""Leaf senders of the alerts service: webhook and SMTP e-mail, and the schedule of their retries.

A sender makes one attempt and reports it as an :class:`AttemptResult`; the delivery queue records
every attempt and decides, with :class:`~timpora.alerts.channels.backoff.RetrySchedule`, when to try again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class AttemptOutcome(StrEnum):
    DELIVERED = "delivered"  # 2xx / SMTP accepted
    RETRY = "retry"  # transient: network error, timeout, 5xx, 429, 408, other non-2xx, SMTP 4xx
    GONE = "gone"  # webhook answered 410 Gone: stop and disable the endpoint
    REJECTED = "rejected"  # permanent: SMTP 5xx (all recipients refused / message refused)
    #: Not attempted: the webhook's destination is not one webhooks may reach. Recorded without a code or a
    #: duration, so the queue never tells which addresses or ports answer.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: AttemptOutcome
    #: HTTP status or SMTP reply code; None when no answer came.
    status_code: int | None
    #: Short and stored with the attempt, so never personal data nor a response body: "HTTP 503", "SMTP 550".
    detail: str
    #: How long the receiver asked us to wait before the next attempt.
    retry_after: timedelta | None = None
