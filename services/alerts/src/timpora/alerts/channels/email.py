"""E-mail delivery over SMTP: one UTF-8 message per attempt (plain text, with HTML and attachments beside it).

Every attempt of a message carries the same ``Message-ID``, so a recipient's mail client can drop the
duplicate that a retry after a lost acknowledgement produces.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Literal

import aiosmtplib
from pydantic import BaseModel, Field

from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.common.settings import Password

_SMTP_ACCEPTED = 250
_PERMANENT_CODES = range(500, 600)


#: How the connection to the relay is encrypted:
#: ``when-offered`` upgrades with STARTTLS whenever the relay offers it, and sends in clear only to a relay that
#: does not (a local catcher, an old internal relay) — never a password, though: with one STARTTLS is
#: required; ``starttls`` requires the upgrade and sends nothing to a relay that does not offer it (what a
#: relay across a network should get: a man in the middle can hide the offer); ``implicit`` is TLS from the
#: first byte (SMTPS, port 465).
SmtpTls = Literal["when-offered", "starttls", "implicit"]


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=25, gt=0, lt=65536)
    sender: str = "timpora-alerts@localhost"
    username: str | None = None
    password: Password | None = None
    tls: SmtpTls = "when-offered"
    #: The CA that signed the relay's certificate, when it is not one the system trusts (a private CA's). A
    #: certificate that does not verify stops the sending: it never falls back to clear text.
    ca_file: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)

    @property
    def requires_starttls(self) -> bool:
        """STARTTLS must succeed before anything is sent: asked for, or a password would otherwise cross in clear."""
        return self.tls == "starttls" or (self.tls == "when-offered" and self.password is not None)


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
        # A certificate that does not verify is a ValueError too, but the relay's TLS is at fault, not the message:
        # it is retried (below), as is a relay that does not offer STARTTLS where it is required.
        if isinstance(exc, ValueError) and not isinstance(exc, ssl.SSLError):
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
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.tls == "implicit",
            # The upgrade is decided below, where the policy is ours to read, not on connect.
            start_tls=False,
            cert_bundle=settings.ca_file,
            timeout=settings.timeout_s,
        )
        async with client:
            if settings.tls != "implicit":
                await client.ehlo()
                if client.supports_extension("starttls"):
                    # A certificate that does not verify raises here: no falling back to clear text.
                    await client.starttls()
                elif settings.requires_starttls:
                    raise StartTlsNotOfferedError
            if settings.username is not None and settings.password is not None:
                await client.login(settings.username, settings.password.get_secret_value())
            return await client.send_message(message, sender=settings.sender, recipients=list(recipients))


class StartTlsNotOfferedError(aiosmtplib.SMTPException):
    """The relay did not offer STARTTLS where it is required: nothing was sent."""

    def __init__(self) -> None:
        super().__init__("STARTTLS not offered by the relay")


def _answered(code: int) -> AttemptResult:
    outcome = AttemptOutcome.REJECTED if code in _PERMANENT_CODES else AttemptOutcome.RETRY
    return AttemptResult(outcome, code, f"SMTP {code}")


def _all_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> AttemptResult:
    # A recipient refused only for now (4xx) may accept a retry; the others are refused again, harmlessly.
    codes = [refusal.code for refusal in exc.recipients]
    transient = [code for code in codes if code not in _PERMANENT_CODES]
    return _answered(transient[0] if transient else codes[0])
