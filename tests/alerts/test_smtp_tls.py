"""Alert e-mails and TLS, against a real SMTP server (aiosmtpd) with a throwaway certificate: STARTTLS is
used whenever the relay offers it, mail goes in clear only to a relay that offers nothing (and never with
a password), and a relay that must be reached over TLS gets nothing in clear."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.support.receivers import SmtpReceiver, smtp_receiver
from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.alerts.channels.email import EmailSender, SmtpSettings, SmtpTls

DELIVERED = AttemptResult(AttemptOutcome.DELIVERED, 250, "SMTP 250")


@dataclass(frozen=True, slots=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made with openssl (it is also the CA the sender trusts)."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "relay.crt", folder / "relay.key"
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            *["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "1"],
            *["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
            *["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE"],
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


@pytest.fixture
async def relay_with_starttls(certificate: Certificate) -> AsyncIterator[SmtpReceiver]:
    async with smtp_receiver(tls_context=certificate.server_context()) as started:
        yield started


@pytest.fixture
async def relay_in_clear() -> AsyncIterator[SmtpReceiver]:
    async with smtp_receiver() as started:
        yield started


def _mailer(relay: SmtpReceiver, certificate: Certificate | None = None, **settings: object) -> EmailSender:
    """A sender to ``relay``, trusting ``certificate`` (nothing but the system's CAs without it)."""
    return EmailSender(
        SmtpSettings.model_validate(
            {
                "host": relay.host,
                "port": relay.port,
                "sender": "alerts@timpora.test",
                "timeout_s": 5.0,
                "ca_file": str(certificate.cert) if certificate else None,
                **settings,
            }
        )
    )


async def _send(mailer: EmailSender) -> AttemptResult:
    return await mailer.send(["imigrasi@agency.test"], "Izin tinggal", "Isi pesan.", message_id="m-tls")


def test_the_default_is_starttls_when_the_relay_offers_it() -> None:
    assert SmtpSettings().tls == "when-offered"


async def test_by_default_the_connection_is_upgraded_when_the_relay_offers_starttls(
    relay_with_starttls: SmtpReceiver, certificate: Certificate
) -> None:
    result = await _send(_mailer(relay_with_starttls, certificate))

    assert result == DELIVERED
    [mail] = relay_with_starttls.messages
    assert mail.tls


async def test_by_default_mail_goes_in_clear_to_a_relay_that_offers_no_starttls(relay_in_clear: SmtpReceiver) -> None:
    result = await _send(_mailer(relay_in_clear))

    assert result == DELIVERED
    [mail] = relay_in_clear.messages
    assert not mail.tls


async def test_a_relay_whose_certificate_does_not_verify_gets_nothing_not_even_in_clear(
    relay_with_starttls: SmtpReceiver,
) -> None:
    # No ca_file: the throwaway certificate is trusted by nobody.
    result = await _send(_mailer(relay_with_starttls))

    assert result.outcome == AttemptOutcome.RETRY
    assert relay_with_starttls.messages == []


@pytest.mark.parametrize(
    "settings",
    [{"tls": "starttls"}, {"username": "alerts", "password": SecretStr("a-real-relay-password")}],
    ids=["starttls-required", "with-a-password"],
)
async def test_nothing_is_sent_in_clear_when_starttls_is_required_and_not_offered(
    relay_in_clear: SmtpReceiver, settings: dict[str, object]
) -> None:
    result = await _send(_mailer(relay_in_clear, None, **settings))

    assert result == AttemptResult(AttemptOutcome.RETRY, None, "StartTlsNotOfferedError")
    assert relay_in_clear.messages == []


async def test_starttls_required_goes_through_a_relay_that_offers_it(
    relay_with_starttls: SmtpReceiver, certificate: Certificate
) -> None:
    result = await _send(_mailer(relay_with_starttls, certificate, tls="starttls"))

    assert result == DELIVERED
    assert [mail.tls for mail in relay_with_starttls.messages] == [True]


async def test_implicit_tls_speaks_tls_from_the_first_byte(certificate: Certificate) -> None:
    tls: SmtpTls = "implicit"
    async with smtp_receiver(tls_context=certificate.server_context(), implicit=True) as relay:
        result = await _send(_mailer(relay, certificate, tls=tls))

        assert result == DELIVERED
        assert [mail.tls for mail in relay.messages] == [True]
