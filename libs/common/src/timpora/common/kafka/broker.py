"""The one way a service gets a Kafka broker: idempotent producer, acks=all, optional SASL/TLS."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from timpora.common.settings import KafkaSettings


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    # Hostname and chain are verified as for any TLS server; a private CA (the local stack's) is trusted only
    # when named.
    return ssl.create_default_context(cafile=settings.ca_file) if settings.use_tls else None


def durability(settings: KafkaSettings) -> dict[str, Any]:
    """The producer's durability options; the settings refuse anything weaker (see KafkaSettings)."""
    return {"acks": settings.producer_acks, "enable_idempotence": settings.producer_idempotence}


def security_for(settings: KafkaSettings) -> BaseSecurity | None:
    ssl_context = _ssl_context(settings)
    if settings.sasl_mechanism is None:
        return BaseSecurity(ssl_context=ssl_context) if ssl_context else None
    if settings.sasl_username is None or settings.sasl_password is None:
        raise ValueError("Kafka SASL needs both sasl_username and sasl_password")
    password = settings.sasl_password.get_secret_value()
    mechanisms: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    return mechanisms[settings.sasl_mechanism](settings.sasl_username, password, ssl_context=ssl_context)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options for a plain aiokafka client (admin, producer) matching :func:`make_broker`'s."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_list,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.use_tls:
        options |= {"security_protocol": "SSL", "ssl_context": _ssl_context(settings)}
    if settings.sasl_mechanism is not None:
        if settings.sasl_username is None or settings.sasl_password is None:
            raise ValueError("Kafka SASL needs both sasl_username and sasl_password")
        options |= {
            "security_protocol": "SASL_SSL" if settings.use_tls else "SASL_PLAINTEXT",
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password.get_secret_value(),
        }
    return options


def make_broker(
    settings: KafkaSettings, *, client_id: str, description: str | None = None, graceful_timeout_s: float = 2.0
) -> KafkaBroker:
    return KafkaBroker(
        settings.bootstrap_list,
        # How long stopping waits for a handler in flight before cancelling it (its transaction rolls back
        # and its offset stays uncommitted, so the records come again): see timpora.common.service.
        graceful_timeout=graceful_timeout_s,
        client_id=settings.client_id or client_id,
        request_timeout_ms=settings.request_timeout_ms,
        security=security_for(settings),
        # Topics come from the catalog; a consumer must never create one by subscribing to a typo.
        allow_auto_create_topics=False,
        description=description,
        log_level=logging.DEBUG,
        **durability(settings),
    )
