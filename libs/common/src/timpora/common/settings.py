"""Settings every service shares. Each service subclasses :class:`ServiceSettings` with its own env prefix.

A service reads, for example, ``TIMPORA_REGISTRY_KAFKA__BOOTSTRAP_SERVERS`` and
``TIMPORA_REGISTRY_DATABASE__URL``: one prefix per service, ``__`` between a section and its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from timpora.common.topics import DEFAULT_NAMESPACE, NAMESPACE_PATTERN, TopicCatalog

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str | None = None
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    use_tls: bool = False
    request_timeout_ms: int = Field(default=30_000, gt=0)
    #: Prefix of every topic and consumer group (see timpora.common.topics): two systems sharing a broker
    #: (a developer's running stack and the tests) stay apart when their namespaces differ.
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=NAMESPACE_PATTERN)

    @property
    def catalog(self) -> TopicCatalog:
        return TopicCatalog(self.namespace)


class DatabaseSettings(BaseModel):
    # No default password: the local stack and docker-compose hand the real URL in from the environment.
    url: SecretStr = SecretStr("postgresql+asyncpg://localhost/timpora")
    pool_size: int = Field(default=10, gt=0)
    max_overflow: int = Field(default=5, ge=0)
    statement_timeout_ms: int = Field(default=30_000, gt=0)


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    #: The largest request body accepted, authenticated or not; a larger one is refused (413) before it is read.
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    #: Requests to an operation that needs a key and come without a valid one, per client address per minute;
    #: beyond it, 429 with Retry-After, before any key is looked up (a key guesser cannot keep the database busy).
    unauthenticated_per_minute: int = Field(default=60, gt=0)


class RelaySettings(BaseModel):
    enabled: bool = True
    batch_size: int = Field(default=2000, gt=0, le=10_000)
    #: Polling happens anyway in case a notification is lost (LISTEN is best-effort by design).
    poll_interval_s: float = Field(default=2.0, gt=0)
    #: Published rows are kept this long so events can be re-published.
    retention_days: int = Field(default=7, ge=0)


class ShutdownSettings(BaseModel):
    """How long a stopping service waits for work in flight. Every wait is bounded: on SIGTERM a service
    lets requests in flight finish for ``drain_s``, then stops within ``timeout_s`` whatever state Kafka
    and PostgreSQL are in (an orchestrator's grace period must exceed the two together). Cutting work
    short loses nothing: a request not answered was not committed, and an event whose transaction did
    not commit has no committed offset either, so Kafka delivers it again."""

    #: Requests in flight, and then a batch of events in flight, may finish within this long.
    drain_s: float = Field(default=2.0, gt=0, le=30)
    #: The longest any one closing step may take (leaving the consumer group, workers, producer flush, pool).
    step_s: float = Field(default=1.0, gt=0, le=30)
    #: The whole stop, after the requests' drain.
    timeout_s: float = Field(default=7.0, gt=0, le=60)


class OverstaySettings(BaseModel):
    """How an overstay is counted (UU 6/2011 art. 78): a fee per day up to ``fee_limit_days``; past them the
    fee no longer settles it and deportation and a re-entry ban are due. The amount is set by government
    regulation on non-tax state revenue, so it is configurable with its basis."""

    fee_per_day_idr: int = Field(default=1_000_000, gt=0)
    fee_limit_days: int = Field(default=60, gt=0)
    legal_basis: str = Field(default="UU 6/2011 art. 78; PP 28/2019 (Rp1.000.000 per hari)", min_length=1)


class ServiceSettings(BaseSettings):
    """Base of every service's settings; subclasses set ``env_prefix`` and their own defaults."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    service_name: str = "timpora"
    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    http: HttpSettings = HttpSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    overstay: OverstaySettings = OverstaySettings()
    log_level: LogLevel = "INFO"
    log_json: bool = True


#: Settings a service once read and reads no more, with what replaced each: one still set is refused at start,
#: so that nobody believes, say, that the agreements file they point at is in force.
RETIRED = {
    "TIMPORA_ALERTS_AGENCIES_FILE": "TIMPORA_REGISTER_FILE (the register holds every member and its agreement)",
    "TIMPORA_SHARING_AGREEMENTS_FILE": "TIMPORA_REGISTER_FILE (the register holds every member and its agreement)",
    "TIMPORA_SHARING_CONSUMER_GROUP": "nothing: consumer groups follow TIMPORA_*_KAFKA__NAMESPACE",
    "TIMPORA_SHARING_REGISTRY_TOPIC": "nothing: topics follow TIMPORA_*_KAFKA__NAMESPACE",
    "TIMPORA_ALERTS_CONSUMER_GROUP": "nothing: consumer groups follow TIMPORA_*_KAFKA__NAMESPACE",
    # Never read: one register for every service, so two services cannot read two registers.
    "TIMPORA_ALERTS_REGISTER_FILE": "TIMPORA_REGISTER_FILE (one register for every service)",
    "TIMPORA_SHARING_REGISTER_FILE": "TIMPORA_REGISTER_FILE (one register for every service)",
}


def retired_in(environ: Mapping[str, str]) -> list[str]:
    """One line per retired (or never read) setting still set in ``environ``, naming what to use instead."""
    return [f"{name} is no longer read; use {instead}" for name, instead in RETIRED.items() if name in environ]


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def narrow(settings: ServiceSettings, kind: type[SettingsT]) -> SettingsT:
    """``settings`` as the service's own settings class (a runtime holds them as the base class)."""
    if not isinstance(settings, kind):
        raise TypeError(f"{kind.__name__} is needed, not {type(settings).__name__}")
    return settings
