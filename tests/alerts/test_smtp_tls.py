"""Alert e-mails and TLS, against a real SMTP server (aiosmtpd) with a throwaway certificate: STARTTLS is
used whenever the relay offers it — without credentials opportunistically, a certificate nobody vouches for
included (RFC 7435) — mail goes in clear only to a relay that offers nothing (and never with a password), and
a relay that must be reached over TLS, or is given a password, gets nothing unless its certificate verifies."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from tests.support.receivers import SmtpReceiver, smtp_receiver
from timpora.alerts.channels import AttemptOutcome, AttemptResult
from timpora.alerts.channels.email import CA_FILE_SETTING, TLS_SETTING, EmailSender, SmtpSettings, SmtpTls

DELIVERED = AttemptResult(AttemptOutcome.DELIVERED, 250, "SMTP 250")


@dataclass(frozen=True, slots=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def _self_signed(folder: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made with openssl (it is its own CA)."""
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


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """The relay's certificate (it is also the CA the sender trusts when told to)."""
    return _self_signed(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture(scope="module")
def another_ca(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A CA that did not sign the relay's certificate."""
    return _self_signed(tmp_path_factory.mktemp("smtp-tls-other"))


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


async def test_by_default_without_credentials_a_relay_with_an_untrusted_certificate_gets_mail_encrypted(
    relay_with_starttls: SmtpReceiver,
) -> None:
    # No ca_file: the throwaway certificate is trusted by nobody, as a local Postfix's snakeoil one. Opportunistic
    # encryption (RFC 7435): encrypted unverified is better than the clear text this would otherwise be.
    result = await _send(_mailer(relay_with_starttls))

    assert result == DELIVERED
    assert [mail.tls for mail in relay_with_starttls.messages] == [True]


CREDENTIALS = {"username": "alerts", "password": SecretStr("a-real-relay-password")}


@pytest.mark.parametrize(
    ("settings", "advice"),
    [
        (
            CREDENTIALS,
            f"set {CA_FILE_SETTING} to the CA that signed it (a password goes only to a relay that verifies)",
        ),
        ({"tls": "starttls"}, f"{CA_FILE_SETTING} to the CA that signed it, or {TLS_SETTING}=when-offered"),
    ],
    ids=["when-offered-with-a-password", "starttls"],
)
async def test_a_relay_whose_certificate_does_not_verify_gets_nothing_where_it_must_and_the_detail_says_what_to_set(
    relay_with_starttls: SmtpReceiver, settings: dict[str, object], advice: str
) -> None:
    result = await _send(_mailer(relay_with_starttls, None, **settings))

    assert (result.outcome, result.status_code) == (AttemptOutcome.RETRY, None)
    assert result.detail.startswith("the relay's certificate does not verify (self-signed certificate): ")
    assert advice in result.detail
    assert "a-real-relay-password" not in result.detail
    assert relay_with_starttls.messages == []


async def test_a_ca_file_named_is_verified_against_even_without_credentials(
    relay_with_starttls: SmtpReceiver, another_ca: Certificate
) -> None:
    result = await _send(_mailer(relay_with_starttls, another_ca))

    assert result.outcome == AttemptOutcome.RETRY
    assert f"{CA_FILE_SETTING} is not the CA that signed it" in result.detail
    assert relay_with_starttls.messages == []


async def test_implicit_tls_to_a_relay_whose_certificate_does_not_verify_sends_nothing(
    certificate: Certificate,
) -> None:
    async with smtp_receiver(tls_context=certificate.server_context(), implicit=True) as relay:
        result = await _send(_mailer(relay, None, tls="implicit"))

        assert result.outcome == AttemptOutcome.RETRY
        assert result.detail.endswith(f"set {CA_FILE_SETTING} to the CA that signed it")
        assert relay.messages == []


@pytest.mark.parametrize(
    "settings",
    [{"tls": "starttls"}, CREDENTIALS],
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


# The relay's login, as docker-compose passes it (an optional variable not set is an empty string)


def test_an_empty_username_and_password_are_no_login() -> None:
    settings = SmtpSettings.model_validate({"username": "", "password": "", "sender": "", "ca_file": ""})

    assert (settings.username, settings.password, settings.ca_file) == (None, None, None)
    assert settings.sender == SmtpSettings().sender
    assert not settings.requires_starttls
    assert not settings.verifies_certificate


@pytest.mark.parametrize(
    ("login", "why"),
    [
        ({"username": "alerts", "password": ""}, "the password is empty"),
        ({"username": "alerts", "password": "change-me"}, "the password is a placeholder"),
        ({"username": "alerts"}, "the password is not set"),
        ({"username": "", "password": "a-real-relay-password"}, "the username is not set"),
    ],
)
def test_a_login_needs_both_and_a_real_password(login: dict[str, str], why: str) -> None:
    with pytest.raises(ValidationError, match=why) as refused:
        SmtpSettings.model_validate(login)

    assert "a-real-relay-password" not in str(refused.value)
