"""E-mail delivery over SMTP: one UTF-8 message per attempt (plain text, with HTML and attachments beside it).

Every attempt of a message carries the same ``Message-ID``, so a recipient's mail client can drop the
duplicate that a retry after a lost acknowledgement produces.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Self

import aiosmtplib
from pydantic import BaseModel, Field, SecretStr, model_validator

from timpora.alerts.channels import AttemptOutcome, AttemptResult

_SMTP_ACCEPTED = 250
_PERMANENT_CODES = range(500, 600)


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=25, gt=0, lt=65536)
    sender: str = "timpora-alerts@localhost"
    username: str | None = None
    password: SecretStr | None = None
    #: Upgrade the connection with STARTTLS (required when true); ``use_tls`` is TLS from the first byte.
    starttls: bool = False
    use_tls: bool = False
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _one_kind_of_tls(self) -> Self:
        if self.starttls and self.use_tls:
            raise ValueError("starttls and use_tls exclude each other: use_tls is TLS from the start")
        return self


class EmailSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(
        self,
        recipients: Sequence[str],
        subject: str,
        body: str,
        *,
        message_id: str,
        html: str | None = None,
        attachments: Sequence[tuple[str, str]] = (),
    ) -> AttemptResult:
        """Sends one message to all ``recipients`` in one SMTP transaction; ``timeout_s`` bounds the whole of it.
        With ``html``, the message has the plain text and the HTML as alternatives; ``attachments`` are CSV files
        (name, text) attached to it.

        An address or header the message cannot carry (a line break, say) is REJECTED: retrying cannot help.
        """
        if not recipients:
            raise ValueError("an e-mail needs at least one recipient")
        try:
            message = self._message(recipients, subject, body, message_id)
            if html is not None:
                message.add_alternative(html, subtype="html", charset="utf-8")
            for name, content in attachments:
                message.add_attachment(content, subtype="csv", charset="utf-8", filename=name)
            async with asyncio.timeout(self._settings.timeout_s):
                refused, _ = await self._send(message, recipients)
        except (ValueError, aiosmtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
            return self._failure(exc)
        if refused:
            detail = f"{len(refused)} of {len(recipients)} recipients refused"
            return AttemptResult(AttemptOutcome.DELIVERED, _SMTP_ACCEPTED, detail)
        return AttemptResult(AttemptOutcome.DELIVERED, _SMTP_ACCEPTED, f"SMTP {_SMTP_ACCEPTED}")

    def _failure(self, exc: Exception) -> AttemptResult:
        if isinstance(exc, ValueError):
            return AttemptResult(AttemptOutcome.REJECTED, None, "invalid address or header")
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            return _all_refused(exc)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            # Our credentials, not the message, are wrong: once an operator fixes them the message goes through.
            return AttemptResult(AttemptOutcome.RETRY, exc.code, f"SMTP {exc.code}")
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return _answered(exc.code)
        if isinstance(exc, TimeoutError):  # aiosmtplib's own timeouts included
            return AttemptResult(AttemptOutcome.RETRY, None, f"timed out after {self._settings.timeout_s} s")
        return AttemptResult(AttemptOutcome.RETRY, None, type(exc).__name__)

    def _message(self, recipients: Sequence[str], subject: str, body: str, message_id: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(usegmt=True)
        message["Message-ID"] = f"<{message_id}@timpora>"
        message["X-Timpora-Message-Id"] = message_id
        message.set_content(body, charset="utf-8")
        return message

    async def _send(
        self, message: EmailMessage, recipients: Sequence[str]
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        settings = self._settings
        return await aiosmtplib.send(
            message,
            sender=settings.sender,
            recipients=list(recipients),
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            use_tls=settings.use_tls,
            start_tls=settings.starttls,
            timeout=settings.timeout_s,
        )


def _answered(code: int) -> AttemptResult:
    outcome = AttemptOutcome.REJECTED if code in _PERMANENT_CODES else AttemptOutcome.RETRY
    return AttemptResult(outcome, code, f"SMTP {code}")


def _all_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> AttemptResult:
    # A recipient refused only for now (4xx) may accept a retry; the others are refused again, harmlessly.
    codes = [refusal.code for refusal in exc.recipients]
    transient = [code for code in codes if code not in _PERMANENT_CODES]
    return _answered(transient[0] if transient else codes[0])
