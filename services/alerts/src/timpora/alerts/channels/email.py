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
from typing import Literal, Self

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.common.settings import Password

_SMTP_ACCEPTED = 250
_PERMANENT_CODES = range(500, 600)


#: How the connection to the relay is encrypted:
#: ``when-offered`` upgrades with STARTTLS whenever the relay offers it, and sends in clear only to a relay that
#: does not (a local catcher, an old internal relay). Without credentials it is opportunistic (RFC 7435): the
#: relay's certificate is not verified, so that a local relay with a self-signed one (Debian's Postfix and its
#: snakeoil certificate) still gets mail encrypted — a relay that offers STARTTLS never gets it in clear. With
#: credentials, or a CA file named, the certificate must verify, and STARTTLS is required: a password never
#: crosses in clear or to a relay nobody vouched for.
#: ``starttls`` requires the upgrade and a certificate that verifies, and sends nothing to a relay that does not
#: offer it (what a relay across a network should get: a man in the middle can hide the offer); ``implicit`` is
#: TLS from the first byte (SMTPS, port 465), verified as well.
SmtpTls = Literal["when-offered", "starttls", "implicit"]

#: The settings an operator changes when the relay's certificate does not verify (the alerts service's names).
CA_FILE_SETTING = "TIMPORA_ALERTS_SMTP__CA_FILE"
TLS_SETTING = "TIMPORA_ALERTS_SMTP__TLS"
#: Optional settings that an empty value leaves unset: docker-compose passes an optional variable an operator did
#: not set as an empty string (``${TIMPORA_ALERTS_SMTP_USERNAME:-}``).
_EMPTY_IS_UNSET = ("sender", "username", "ca_file")


def _empty(value: object) -> bool:
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return isinstance(text, str) and not text.strip()


class SmtpSettings(BaseModel):
    # A ValidationError's text must not carry the password, however the settings are built.
    model_config = ConfigDict(hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(default=25, gt=0, lt=65536)
    sender: str = "timpora-alerts@localhost"
    #: The relay's login: both or neither. An empty password is "no password" only with no username either
    #: (so that docker-compose can pass both empty); beside a username it is refused, as a placeholder is.
    username: str | None = None
    password: Password | None = None
    tls: SmtpTls = "when-offered"
    #: The CA that signed the relay's certificate, when it is not one the system trusts (a private CA's). A
    #: certificate that does not verify stops the sending: it never falls back to clear text.
    ca_file: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        given = {name: value for name, value in data.items() if not (name in _EMPTY_IS_UNSET and _empty(value))}
        if "password" in given and _empty(given["password"]) and given.get("username") is None:
            del given["password"]
        return given

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> Self:
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            raise ValueError(f"a relay login needs a username and a password: the {missing} is not set")
        return self

    @property
    def sends_credentials(self) -> bool:
        return self.username is not None and self.password is not None

    @property
    def requires_starttls(self) -> bool:
        """STARTTLS must succeed before anything is sent: asked for, or a password would otherwise cross in clear."""
        return self.tls == "starttls" or (self.tls == "when-offered" and self.sends_credentials)

    @property
    def verifies_certificate(self) -> bool:
        """Whether the relay's certificate must verify. Only ``when-offered`` without credentials and without a CA
        file of its own encrypts without verifying (opportunistic, RFC 7435): better than the clear text it
        would otherwise be, and nothing secret of ours crosses."""
        return self.tls != "when-offered" or self.sends_credentials or self.ca_file is not None


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
            return self._unverified(exc) or self._failure(exc)
        if refused:
            detail = f"{len(refused)} of {len(recipients)} recipients refused"
            return AttemptResult(AttemptOutcome.DELIVERED, _SMTP_ACCEPTED, detail)
        return AttemptResult(AttemptOutcome.DELIVERED, _SMTP_ACCEPTED, f"SMTP {_SMTP_ACCEPTED}")

    def _failure(self, exc: Exception) -> AttemptResult:
        # A TLS error is a ValueError too (one of verification is said in full by _unverified), but the relay's TLS
        # is at fault, not the message: it is retried (below), as is a relay that does not offer STARTTLS where it
        # is required.
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

    def _unverified(self, exc: Exception) -> AttemptResult | None:
        """A relay certificate that did not verify, with what an operator reads on the attempt: why it was refused
        and what to set. Retried: once the operator has set it the message goes through."""
        error = _certificate_error(exc)
        if error is None:
            return None
        why = error.verify_message or error.reason or "not verified"
        settings = self._settings
        if settings.sends_credentials:
            fix = f"set {CA_FILE_SETTING} to the CA that signed it (a password goes only to a relay that verifies)"
        elif settings.tls == "when-offered":  # verified only because a CA file is named
            fix = f"{CA_FILE_SETTING} is not the CA that signed it: name that one, or none to encrypt unverified"
        elif settings.tls == "starttls":
            fix = (
                f"set {CA_FILE_SETTING} to the CA that signed it, or {TLS_SETTING}=when-offered to encrypt without "
                "verifying (a relay on this machine)"
            )
        else:
            fix = f"set {CA_FILE_SETTING} to the CA that signed it"
        return AttemptResult(AttemptOutcome.RETRY, None, f"the relay's certificate does not verify ({why}): {fix}")

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
            validate_certs=settings.verifies_certificate,
            cert_bundle=settings.ca_file,
            timeout=settings.timeout_s,
        )
        async with client:
            if settings.tls != "implicit":
                await client.ehlo()
                if client.supports_extension("starttls"):
                    # A certificate that does not verify (where it must) raises here: no falling back to clear text.
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


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc`` (aiosmtplib wraps an implicit TLS one), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _answered(code: int) -> AttemptResult:
    outcome = AttemptOutcome.REJECTED if code in _PERMANENT_CODES else AttemptOutcome.RETRY
    return AttemptResult(outcome, code, f"SMTP {code}")


def _all_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> AttemptResult:
    # A recipient refused only for now (4xx) may accept a retry; the others are refused again, harmlessly.
    codes = [refusal.code for refusal in exc.recipients]
    transient = [code for code in codes if code not in _PERMANENT_CODES]
    return _answered(transient[0] if transient else codes[0])
