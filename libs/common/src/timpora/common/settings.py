"""Settings every service shares. Each service subclasses :class:`ServiceSettings` with its own env prefix.

A service reads, for example, ``TIMPORA_REGISTRY_KAFKA__BOOTSTRAP_SERVERS`` and
``TIMPORA_REGISTRY_DATABASE__URL``: one prefix per service, ``__`` between a section and its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from timpora.common.topics import DEFAULT_NAMESPACE, NAMESPACE_PATTERN, TopicCatalog

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

#: Passwords that examples, guides and default installs ship with: one left in place is known to anyone who
#: read them. Compared in lower case; anything starting with one of ``_PLACEHOLDER_STARTS`` counts too.
_PLACEHOLDERS = frozenset({"changeme", "change_me", "password", "secret"})
_PLACEHOLDER_STARTS = ("change-me", "changeme")


def refuse_placeholder(password: str) -> None:
    """Raises ``ValueError`` when ``password`` is empty or a known placeholder (``change-me``, ``password``, ...),
    so that a deployment started from an example file stops at once instead of running with a guessable
    password. The message never contains the password."""
    word = password.strip().lower()
    if not word:
        raise ValueError("the password is empty: set one of your own")
    if word in _PLACEHOLDERS or word.startswith(_PLACEHOLDER_STARTS):
        raise ValueError(
            "the password is a placeholder from an example, known to anyone who read it: set one of your own"
        )


def _real_password(value: SecretStr) -> SecretStr:
    refuse_placeholder(value.get_secret_value())
    return value


#: A password setting: never shown (``SecretStr``), and refused when empty or a placeholder.
Password = Annotated[SecretStr, AfterValidator(_real_password)]


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str | None = None
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: Password | None = None
    use_tls: bool = False
    #: The CA that signed the broker's certificate, for TLS to a broker with a private CA (the local stack's).
    ca_file: str | None = None
    request_timeout_ms: int = Field(default=30_000, gt=0)
    #: Prefix of every topic and consumer group (see timpora.common.topics): two systems sharing a broker
    #: (a developer's running stack and the tests) stay apart when their namespaces differ.
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=NAMESPACE_PATTERN)
    #: On how many brokers the topics this service creates keep a copy (TopicCatalog.replicas): 3 on a cluster of
    #: three, which then acknowledges a write once two have it.
    replicas: int = Field(default=1, ge=1)

    # Durability is not negotiable, and it is explicit: these exist so that someone who sets them weaker (as a
    # tuning guide might advise) is told at start why the service will not run so, instead of losing events.
    #: Every in-sync replica has a record before the broker acknowledges it.
    producer_acks: str = "all"
    #: Producer retries write each record once per partition (sequence numbers).
    producer_idempotence: bool = True
    #: Consumers commit an offset only after their transaction has committed, never on a timer.
    consumer_auto_commit: bool = False

    @field_validator("producer_acks")
    @classmethod
    def _acks_all(cls, value: str) -> str:
        if value not in {"all", "-1"}:
            raise ValueError(
                "must be 'all': with fewer acknowledgements a record the broker confirmed is lost when the "
                "leader fails before its replicas have it"
            )
        return "all"

    @field_validator("producer_idempotence")
    @classmethod
    def _idempotent(cls, value: bool) -> bool:  # noqa: FBT001 - pydantic's validator signature
        if not value:
            raise ValueError("must be true: without it a retried send can write an event twice or out of order")
        return value

    @field_validator("consumer_auto_commit")
    @classmethod
    def _no_auto_commit(cls, value: bool) -> bool:  # noqa: FBT001 - pydantic's validator signature
        if value:
            raise ValueError(
                "must be false: a timer's commit can mark an event done before its transaction committed, and a "
                "crash then loses it"
            )
        return value

    @property
    def catalog(self) -> TopicCatalog:
        return TopicCatalog(self.namespace, replicas=self.replicas)

    @property
    def bootstrap_list(self) -> list[str]:
        """``bootstrap_servers`` one address each: FastStream takes a string as one address, so a cluster's
        "a:9092,b:9092,c:9092" would be one host name that resolves nowhere."""
        return [address.strip() for address in self.bootstrap_servers.split(",") if address.strip()]


class OperatorKafkaSettings(BaseSettings):
    """The operators' connection to Kafka (a super user), read from ``TIMPORA_KAFKA_*``: what the local stack's
    ``env`` prints, the agencies tool (``timpora-agencies kafka``) and the tests use. The services never do:
    each has its own principal (``TIMPORA_<SERVICE>_KAFKA__SASL_USERNAME``)."""

    # Its callers may let a ValidationError's text reach a terminal: it must not carry the password.
    model_config = SettingsConfigDict(env_prefix="TIMPORA_KAFKA_", extra="ignore", hide_input_in_errors=True)

    bootstrap_servers: str = "127.0.0.1:19092"
    sasl_mechanism: SaslMechanism | None = None
    username: str | None = None
    password: Password | None = None
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=NAMESPACE_PATTERN)
    #: As KafkaSettings.replicas: the copies of the topics the operator creates (provisioning, agencies' topics).
    replicas: int = Field(default=1, ge=1)
    #: Where agencies connect (the TLS listener), as they must write it, e.g. ``kafka.imigrasi.example:9094``.
    agency_bootstrap_servers: str | None = None
    #: The CA file agencies need to trust the broker's TLS certificate.
    ca_file: str | None = None

    def admin(self, **changes: object) -> KafkaSettings:
        """Client settings for the operator's own connection (on the services' listener)."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.username,
            sasl_password=self.password,
            namespace=self.namespace,
            replicas=self.replicas,
        ).model_copy(update=changes)


class DatabaseSettings(BaseModel):
    # No default password: the local stack and docker-compose hand the real URL in from the environment.
    url: SecretStr = SecretStr("postgresql+asyncpg://localhost/timpora")
    pool_size: int = Field(default=10, gt=0)
    max_overflow: int = Field(default=5, ge=0)
    statement_timeout_ms: int = Field(default=30_000, gt=0)

    @field_validator("url")
    @classmethod
    def _real_url_password(cls, value: SecretStr) -> SecretStr:
        # A URL without a password (peer or trust authentication) has nothing to check.
        password = urlsplit(value.get_secret_value()).password
        if password is not None:
            refuse_placeholder(unquote(password))
        return value


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    #: The largest request body accepted, authenticated or not; a larger one is refused (413) before it is read.
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    #: Requests to an operation that needs a key and come without a valid one, per client address per minute;
    #: beyond it, 429 with Retry-After, before any key is looked up (a key guesser cannot keep the database busy).
    unauthenticated_per_minute: int = Field(default=60, gt=0)
    #: How long a request's body may take to arrive, from its first byte to its last; a body still arriving
    #: then is refused (408), so a client trickling its body cannot hold a connection and its buffer for ever.
    body_timeout_s: float = Field(default=30.0, gt=0)
    #: Connections open at once; beyond it a request is answered 503 at once (uvicorn's limit_concurrency),
    #: so a flood of connections costs a refusal each, not the service's memory.
    max_connections: int = Field(default=1000, gt=1)
    #: The reverse proxies (addresses, comma-separated, or ``*``) whose X-Forwarded-For names the client: what the
    #: per-address limits count by. Behind a proxy not listed, every client is the proxy's address.
    forwarded_allow_ips: str = "127.0.0.1"


class RelaySettings(BaseModel):
    enabled: bool = True
    batch_size: int = Field(default=2000, gt=0, le=10_000)
    #: Polling happens anyway in case a notification is lost (LISTEN is best-effort by design).
    poll_interval_s: float = Field(default=2.0, gt=0)
    #: Published rows are kept this long after they were written, so events can be re-published. The sharing
    #: service's outbox keeps none, whatever this says: each agency's copy is deleted once sent.
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

    # A ValidationError's text must not carry a password, wherever it ends up.
    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True)

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
    "TIMPORA_ALERTS_SMTP__STARTTLS": "TIMPORA_ALERTS_SMTP__TLS=starttls (STARTTLS is used when offered by default)",
    "TIMPORA_ALERTS_SMTP__USE_TLS": "TIMPORA_ALERTS_SMTP__TLS=implicit",
}


def settings_refused(error: ValidationError) -> list[str]:
    """What is wrong with the settings, one line each: the setting's path and why, never its value."""
    return [
        f"setting {'.'.join(str(part) for part in detail['loc'])} refused: "
        f"{detail['msg'].removeprefix('Value error, ')}"
        for detail in error.errors(include_input=False, include_url=False)
    ]


def retired_in(environ: Mapping[str, str]) -> list[str]:
    """One line per retired (or never read) setting still set in ``environ``, naming what to use instead."""
    return [f"{name} is no longer read; use {instead}" for name, instead in RETIRED.items() if name in environ]


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def narrow(settings: ServiceSettings, kind: type[SettingsT]) -> SettingsT:
    """``settings`` as the service's own settings class (a runtime holds them as the base class)."""
    if not isinstance(settings, kind):
        raise TypeError(f"{kind.__name__} is needed, not {type(settings).__name__}")
    return settings
