"""deploy/docker-compose.yml cannot run here (no Docker engine), so check what can be checked: it
parses, every service it names exists with a command that exists, and its variables are the ones
the services read."""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from timpora.alerts.channels.email import SmtpSettings
from timpora.alerts.settings import AlertsSettings
from timpora.common.db import bootstrap
from timpora.common.kafka.provision import principals_from
from timpora.common.settings import OperatorKafkaSettings, ServiceSettings
from timpora.common.topics import BROKER_SETTINGS
from timpora.portal.settings import PortalSettings
from timpora.registry.settings import RegistrySettings
from timpora.sharing.settings import SharingSettings

REPO = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "registry": RegistrySettings,
    "alerts": AlertsSettings,
    "sharing": SharingSettings,
    "portal": PortalSettings,
}
#: The services that talk through Kafka, each as a principal of its own. The portal does not use Kafka at all.
KAFKA_SERVICES = ("registry", "alerts", "sharing")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


def default_services(compose: dict[str, Any]) -> dict[str, Any]:
    """What `docker compose up` runs: every service but those of a profile (the `ha` profile's,
    tests/deploy/test_compose_ha.py)."""
    return {name: definition for name, definition in compose["services"].items() if not definition.get("profiles")}


def _console_scripts() -> dict[str, str]:
    scripts: dict[str, str] = {}
    for pyproject in [REPO / "libs/common/pyproject.toml", *REPO.glob("services/*/pyproject.toml")]:
        scripts |= tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"].get("scripts", {})
    return scripts


def test_it_runs_kafka_postgres_the_bootstrap_and_every_service(compose: dict[str, Any]) -> None:
    assert set(default_services(compose)) == {
        *("preflight", "kafka", "kafka-certs", "kafka-setup", "kafka-access", "postgres", "db-bootstrap", "mail"),
        *SETTINGS,
    }
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")


@pytest.mark.parametrize("service", list(SETTINGS))
def test_each_service_runs_its_own_console_script_after_its_dependencies_are_healthy(
    compose: dict[str, Any], service: str
) -> None:
    definition = compose["services"][service]
    command = definition["command"]

    assert command == [f"timpora-{service}", "serve"]
    assert command[0] in _console_scripts()
    assert (REPO / "deploy" / definition["build"]["context"]).resolve() == REPO
    assert (REPO / definition["build"]["dockerfile"]).is_file()
    if service in KAFKA_SERVICES:
        assert definition["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert definition["depends_on"]["kafka-setup"]["condition"] == "service_completed_successfully"
    else:
        # Without Kafka, it waits for its database's role and schema alone.
        assert set(definition["depends_on"]) == {"db-bootstrap"}
    assert definition["depends_on"]["db-bootstrap"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(definition["healthcheck"]["test"])


@pytest.mark.parametrize("service", list(SETTINGS))
def test_docker_waits_for_a_service_to_stop_longer_than_its_stop_may_take(
    compose: dict[str, Any], service: str
) -> None:
    limits = SETTINGS[service]().shutdown
    grace = compose["services"][service]["stop_grace_period"]

    assert grace.endswith("s")
    assert float(grace.removesuffix("s")) > limits.drain_s + limits.timeout_s


@pytest.mark.parametrize(
    ("one_shot", "module"),
    [
        ("preflight", "timpora.common.preflight"),
        ("db-bootstrap", "timpora.common.db.bootstrap"),
        ("kafka-setup", "timpora.common.kafka.provision"),
    ],
)
def test_the_one_shot_setups_run_modules_that_exist(compose: dict[str, Any], one_shot: str, module: str) -> None:
    command = compose["services"][one_shot]["command"]

    assert command == ["python", "-m", module]
    assert importlib.util.find_spec(command[2]) is not None


def _substitute(value: str, given: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} with its default, ${VAR} and ${VAR:?message} with a placeholder, as an
    operator's .env would fill them; a variable in ``given`` with its value there."""
    given = given or {}
    value = re.sub(r"\$\{([A-Z0-9_]+):-([^}]*)\}", lambda match: given.get(match[1], match[2]), value)
    return re.sub(r"\$\{([A-Z0-9_]+)(:\?[^}]*)?\}", lambda match: given.get(match[1], "placeholder"), value)


@pytest.mark.parametrize("service", list(SETTINGS))
def test_the_variables_it_sets_are_ones_the_service_reads(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment: dict[str, str] = compose["services"][service]["environment"]
    for name, value in environment.items():
        assert name.startswith(f"TIMPORA_{service.upper()}_") or name in SHARED_VARIABLES
        monkeypatch.setenv(name, _substitute(str(value)))

    settings = SETTINGS[service]()

    if service in KAFKA_SERVICES:
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert (settings.kafka.sasl_mechanism, settings.kafka.sasl_username) == (
            "SCRAM-SHA-512",
            f"timpora-{service}",
        )
        assert settings.kafka.sasl_password is not None
    else:
        # The portal has no Kafka login: nothing about Kafka is passed to it.
        assert not [name for name in environment if "KAFKA" in name]
    assert settings.http.host == "0.0.0.0"  # noqa: S104 - inside the container, on purpose
    assert settings.database.url.get_secret_value().endswith("@postgres:5432/timpora")
    if isinstance(settings, AlertsSettings):
        assert (settings.smtp.host, settings.smtp.port, settings.smtp.tls) == ("mail", 1025, "when-offered")
        # The relay's settings an operator did not set arrive empty: the settings' own defaults, no login.
        assert settings.smtp == SmtpSettings(host="mail", port=1025)
        assert settings.webhook_allowed_networks == ()


#: Variables of no one service: the register every reader of it shares, and the networks its webhooks may reach.
SHARED_VARIABLES = {"TIMPORA_REGISTER_FILE", "TIMPORA_WEBHOOK_ALLOWED_NETWORKS"}


@pytest.mark.parametrize("service", ["alerts", "sharing", "portal", "kafka-access"])
def test_every_reader_of_the_register_gets_the_networks_its_webhooks_may_reach(
    compose: dict[str, Any], service: str
) -> None:
    # Each validates the register's webhooks with them: without them a webhook one allows, another refuses.
    assert compose["services"][service]["environment"]["TIMPORA_WEBHOOK_ALLOWED_NETWORKS"] == (
        "${TIMPORA_WEBHOOK_ALLOWED_NETWORKS:-}"
    )
    example = (REPO / "deploy" / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^# TIMPORA_WEBHOOK_ALLOWED_NETWORKS=", example, re.MULTILINE)


def test_alerts_can_be_pointed_at_a_real_relay_with_a_login_and_a_ca_of_its_own(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    alerts = compose["services"]["alerts"]
    relay = {
        "TIMPORA_ALERTS_SMTP_HOST": "smtp.imigrasi.example",
        "TIMPORA_ALERTS_SMTP_PORT": "587",
        "TIMPORA_ALERTS_SMTP_TLS": "starttls",
        "TIMPORA_ALERTS_SMTP_SENDER": "timpora@imigrasi.example",
        "TIMPORA_ALERTS_SMTP_USERNAME": "timpora",
        "TIMPORA_ALERTS_SMTP_PASSWORD": "4e9b1c7a2f",
        "TIMPORA_ALERTS_SMTP_CA_FILE": "/etc/timpora/smtp-ca/relay-ca.crt",
        "TIMPORA_ALERTS_SMTP_CA_DIR": "/srv/timpora/smtp-ca",
    }
    for name, value in alerts["environment"].items():
        monkeypatch.setenv(name, _substitute(str(value), relay))

    smtp = AlertsSettings().smtp

    assert smtp.model_dump(exclude={"password", "timeout_s"}) == {
        "host": "smtp.imigrasi.example",
        "port": 587,
        "tls": "starttls",
        "sender": "timpora@imigrasi.example",
        "username": "timpora",
        "ca_file": "/etc/timpora/smtp-ca/relay-ca.crt",
    }
    assert smtp.password is not None
    assert smtp.password.get_secret_value() == "4e9b1c7a2f"
    # The CA file is in the directory mounted from the operator's, read-only; without one, an empty directory.
    [mount] = [volume for volume in alerts["volumes"] if "smtp-ca" in volume]
    source, target, mode = _substitute(mount, relay).split(":")
    assert (source, mode) == ("/srv/timpora/smtp-ca", "ro")
    assert Path(smtp.ca_file or "").parent == Path(target)
    default_source = _substitute(mount).split(":")[0]
    assert (REPO / "deploy" / default_source).is_dir()
    example = (REPO / "deploy" / ".env.example").read_text(encoding="utf-8")
    for variable in relay:
        assert re.search(rf"^# {variable}=", example, re.MULTILINE), variable


@pytest.mark.parametrize("service", ["alerts", "sharing", "portal", "kafka-access"])
def test_both_services_read_the_same_register_from_a_mounted_directory(compose: dict[str, Any], service: str) -> None:
    definition = compose["services"][service]
    in_container = Path(_substitute(definition["environment"]["TIMPORA_REGISTER_FILE"]))
    mount = definition["volumes"][0]
    source, target, mode = _substitute(mount).split(":")
    # A directory, read-only: a file replaced on the host (as editors do) is the one the container sees.
    assert (Path(target), mode) == (in_container.parent, "ro")
    assert (REPO / "deploy" / source / in_container.name).is_file()
    assert mount == compose["services"]["alerts"]["volumes"][0] == compose["services"]["sharing"]["volumes"][0]


def test_no_secret_is_written_into_the_file() -> None:
    text = (REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8")
    for password in re.findall(r"://[^:/\s]+:(\$\{[^}]*\}|[^@\s]+)@", text):
        assert password.startswith("${"), f"a literal password in docker-compose.yml: {password[:3]}..."
    assert len(re.findall(r"://[^:/\s]+:(\$\{[^}]*\}|[^@\s]+)@", text)) == 10


def _database_login(url: str) -> tuple[str, str]:
    """The role and the env file's password variable of a database URL in the compose file."""
    match = re.fullmatch(r"postgresql\+asyncpg://([a-z_]+):\$\{([A-Z_]+)(?::\?[^}]*)?\}@postgres:5432/timpora", url)
    assert match is not None, url
    return match[1], match[2]


def test_db_bootstrap_makes_the_role_each_service_logs_in_as(compose: dict[str, Any]) -> None:
    made = compose["services"]["db-bootstrap"]["environment"]

    # Every service the bootstrap knows, the portal too (it has a database though no Kafka login).
    assert set(SETTINGS) == set(bootstrap.SERVICES)
    assert {name for name in made if name.endswith("_DATABASE__URL")} == {
        f"TIMPORA_{service.upper()}_DATABASE__URL" for service in SETTINGS
    }
    for service in SETTINGS:
        variable = f"TIMPORA_{service.upper()}_DATABASE__URL"
        own = compose["services"][service]["environment"][variable]
        expected = (f"timpora_{service}", f"TIMPORA_{service.upper()}_DB_PASSWORD")
        assert _database_login(made[variable]) == _database_login(own) == expected


# Kafka locked down as the local stack's (deploy/local/stack)

COMPOSE_DIR = REPO / "deploy" / "compose"
#: What OperatorKafkaSettings reads (TIMPORA_KAFKA_BOOTSTRAP_SERVERS, ...).
_OPERATOR_VARIABLES = {f"TIMPORA_KAFKA_{field.upper()}" for field in OperatorKafkaSettings.model_fields}


def _properties(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def _script_lines(name: str) -> str:
    """What the script writes and runs, without its comments."""
    lines = (COMPOSE_DIR / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def test_the_broker_authenticates_every_client_and_denies_what_no_acl_allows() -> None:
    broker = _properties(COMPOSE_DIR / "kafka.properties")

    assert broker["listener.security.protocol.map"] == (
        "CONTROLLER:SASL_PLAINTEXT,SERVICES:SASL_PLAINTEXT,AGENCIES:SASL_SSL"
    )
    assert broker["listeners"] == "SERVICES://:9092,AGENCIES://:9094,CONTROLLER://127.0.0.1:9093"
    assert broker["controller.listener.names"] == "CONTROLLER"
    assert broker["inter.broker.listener.name"] == "SERVICES"
    assert broker["sasl.enabled.mechanisms"] == broker["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert broker["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert broker["allow.everyone.if.no.acl.found"] == "false"
    # The controller's listener takes admin requests too: only the broker's own PLAIN login (no anonymous super user).
    assert broker["sasl.mechanism.controller.protocol"] == broker["listener.name.controller.sasl.enabled.mechanisms"]
    assert broker["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert broker["super.users"] == "User:admin;User:controller"
    assert "ANONYMOUS" not in (COMPOSE_DIR / "kafka.properties").read_text(encoding="utf-8")
    assert "listener.name.controller.plain.sasl.jaas.config" in _script_lines("kafka-start")
    assert broker["auto.create.topics.enable"] == "false"
    assert broker["listener.name.agencies.ssl.keystore.type"] == "PKCS12"
    assert broker["listener.name.agencies.ssl.keystore.location"] == "/etc/kafka/secrets/broker.p12"


def test_both_brokers_are_set_up_for_a_countrys_topics(compose: dict[str, Any]) -> None:
    """The catalog's broker settings (a topic or two for each of about 10,000 agencies) are in the compose broker's
    properties and in the local stack's, and the compose broker may hold as many files open as they need."""
    script = (REPO / "deploy" / "local" / "stack").read_text(encoding="utf-8")
    # The properties the stack writes for its broker: the here-document of write_kafka_config.
    written = script.split("write_kafka_config() {", 1)[1].split("\nEOF\n", 1)[0].splitlines()
    local = dict(line.split("=", 1) for line in written if "=" in line and line.split("=", 1)[0] in BROKER_SETTINGS)
    broker = _properties(COMPOSE_DIR / "kafka.properties")

    assert {key: broker.get(key) for key in BROKER_SETTINGS} == BROKER_SETTINGS
    assert local == BROKER_SETTINGS
    assert compose["services"]["kafka"]["ulimits"]["nofile"] == {"soft": 262144, "hard": 262144}


def test_the_broker_starts_with_that_configuration_and_a_storage_holding_the_operators_credential(
    compose: dict[str, Any],
) -> None:
    kafka = compose["services"]["kafka"]
    start = _script_lines("kafka-start")

    assert kafka["entrypoint"] == ["bash", "/opt/timpora/kafka-start"]
    assert "./compose:/opt/timpora:ro" in kafka["volumes"]
    assert 'cat "$HERE/kafka.properties"' in start
    # A single node is its own quorum (--standalone); a node of the ha profile's cluster is told its voters.
    assert "quorum=(--standalone)" in start
    assert re.search(
        r'format "\$\{quorum\[@\]\}" .*\n.*--add-scram "SCRAM-SHA-512=\[name=admin,password=\$\{admin_password\}\]"',
        start,
    )
    assert 'if [[ -s "$DATA_DIR/meta.properties" ]]' in start
    assert start.rstrip().endswith('exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$RUN_DIR/server.properties"')
    assert "advertised.listeners=SERVICES://${host}:9092,AGENCIES://${agency_host}:${agency_port}" in start
    assert re.search(r"^  host=kafka$", start, re.MULTILINE)


def test_the_broker_is_healthy_only_when_the_operator_can_log_in(compose: dict[str, Any]) -> None:
    test = compose["services"]["kafka"]["healthcheck"]["test"]
    start, healthy = _script_lines("kafka-start"), _script_lines("kafka-healthy")

    assert test == ["CMD", "bash", "/opt/timpora/kafka-healthy"]
    # Where kafka-start writes the operator's client configuration is where the check reads it.
    run_dir = re.findall(r"^RUN_DIR=(\S+)$", f"{start}\n{healthy}", re.MULTILINE)
    assert run_dir == ['"${TIMPORA_KAFKA_RUN_DIR:-/tmp/timpora-kafka}"'] * 2
    assert 'cat >"$RUN_DIR/admin.properties"' in start
    assert "sasl.mechanism=SCRAM-SHA-512" in start
    assert (
        'check=("$KAFKA_HOME/bin/kafka-broker-api-versions.sh" --bootstrap-server localhost:9092 '
        '--command-config "$RUN_DIR/admin.properties")'
    ) in healthy
    # A single node: that login alone, the tool's own answer.
    assert 'exec "${check[@]}"' in healthy


#: What the broker's scripts read only when run outside the container (tests/deploy/test_kafka_certs.py,
#: tests/deploy/test_compose_ha.py): the directories they work in, never set by docker-compose.
OUTSIDE_THE_CONTAINER = {
    "TIMPORA_KAFKA_HOME",
    "TIMPORA_KAFKA_DATA_DIR",
    "TIMPORA_KAFKA_TLS_DIR",
    "TIMPORA_KAFKA_RUN_DIR",
}


@pytest.mark.parametrize(("service", "script"), [("kafka", "kafka-start"), ("kafka-certs", "kafka-certs")])
def test_the_broker_containers_variables_are_the_ones_their_scripts_read(
    compose: dict[str, Any], service: str, script: str
) -> None:
    reads = set(re.findall(r"\$\{(TIMPORA_[A-Z_]+):[?-]", _script_lines(script))) - OUTSIDE_THE_CONTAINER

    assert set(compose["services"][service]["environment"]) == reads
    # Those it cannot do without, compose requires too (or gives a default).
    for required in re.findall(r"\$\{(TIMPORA_[A-Z_]+):\?", _script_lines(script)):
        assert re.fullmatch(r"\$\{[A-Z_]+:[?-].*\}", compose["services"][service]["environment"][required])


def test_the_certificates_are_made_once_into_the_volume_the_broker_reads(compose: dict[str, Any]) -> None:
    certs, kafka = compose["services"]["kafka-certs"], compose["services"]["kafka"]

    assert certs["image"] == kafka["image"]  # the broker's own user owns what it writes
    assert certs["entrypoint"] == ["bash", "/opt/timpora/kafka-certs"]
    assert "kafka-tls:/etc/kafka/secrets" in certs["volumes"]
    assert "kafka-tls:/etc/kafka/secrets:ro" in kafka["volumes"]
    assert kafka["depends_on"]["kafka-certs"]["condition"] == "service_completed_successfully"
    script = _script_lines("kafka-certs")
    assert 'mv -f "$work/broker.p12" "$TLS_DIR/broker.p12"' in script
    assert 'TLS_DIR="${TIMPORA_KAFKA_TLS_DIR:-/etc/kafka/secrets}"' in script
    # Never set in the container: the volume's mount point it is (tests/deploy/test_kafka_certs.py runs it elsewhere).
    assert "TIMPORA_KAFKA_TLS_DIR" not in certs["environment"]


def test_each_service_logs_in_as_its_own_principal_which_kafka_setup_provisions(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = compose["services"]["kafka-setup"]
    environment = {name: _substitute(str(value)) for name, value in setup["environment"].items()}
    for name in [name for name in os.environ if name.startswith("TIMPORA_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    principals = principals_from(environment)
    operator = OperatorKafkaSettings()

    logins = {f"TIMPORA_{s.upper()}_KAFKA__SASL_{part}" for s in KAFKA_SERVICES for part in ("USERNAME", "PASSWORD")}
    assert set(environment) <= _OPERATOR_VARIABLES | logins

    assert setup["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (operator.bootstrap_servers, operator.sasl_mechanism, operator.username) == (
        "kafka:9092",
        "SCRAM-SHA-512",
        "admin",
    )
    # The three that talk through Kafka; the portal has no principal.
    assert set(principals) == set(KAFKA_SERVICES)
    for service, principal in principals.items():
        own = compose["services"][service]["environment"]
        prefix = f"TIMPORA_{service.upper()}_KAFKA__SASL_"
        assert principal.username == own[f"{prefix}USERNAME"] == f"timpora-{service}"
        # The same variable of the env file: the password kafka-setup sets is the one the service logs in with.
        assert _variable(setup["environment"][f"{prefix}PASSWORD"]) == _variable(own[f"{prefix}PASSWORD"])
    assert (
        len({_variable(setup["environment"][f"TIMPORA_{s.upper()}_KAFKA__SASL_PASSWORD"]) for s in KAFKA_SERVICES}) == 3
    )


def test_kafka_access_keeps_agencies_access_as_the_operator_and_names_the_ca_it_mounts(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    access = compose["services"]["kafka-access"]
    for name in [name for name in os.environ if name.startswith("TIMPORA_")]:
        monkeypatch.delenv(name)
    for name, value in access["environment"].items():
        monkeypatch.setenv(name, _substitute(str(value)))

    operator = OperatorKafkaSettings()

    assert set(access["environment"]) <= _OPERATOR_VARIABLES | SHARED_VARIABLES | {"TIMPORA_AUDIT_DATABASE_URL"}
    assert access["command"] == ["timpora-agencies", "kafka", "watch"]
    assert access["command"][0] in _console_scripts()
    assert (operator.bootstrap_servers, operator.username) == ("kafka:9092", "admin")
    assert operator.agency_bootstrap_servers == "localhost:9094"
    assert operator.ca_file is not None
    tls_mount = next(volume for volume in access["volumes"] if volume.startswith("kafka-tls:"))
    assert Path(operator.ca_file).parent == Path(tls_mount.split(":")[1])
    assert tls_mount.endswith(":ro")


def _host_bind(port: str) -> str:
    """The host address of a ``[host:]published:container`` port, with compose's defaults filled in."""
    parts = _substitute(port).split(":")
    assert len(parts) == 3, f"a port published on every address: {port}"
    return parts[0]


def test_every_port_is_published_on_loopback_or_the_agencies_deliberate_address(compose: dict[str, Any]) -> None:
    # The ha profile's services too: the agencies' listeners of its brokers as the first's, the rest on loopback.
    published = {
        name: definition.get("ports", []) for name, definition in compose["services"].items() if definition.get("ports")
    }

    assert {name for name in published if name in default_services(compose)} == {"kafka", "mail", *SETTINGS}
    for name, ports in published.items():
        for port in ports:
            assert _host_bind(port) == "127.0.0.1", (name, port)
    # The one an operator opens on purpose, by a variable whose default is loopback.
    assert published["kafka"] == ["${TIMPORA_KAFKA_AGENCY_BIND:-127.0.0.1}:${TIMPORA_KAFKA_AGENCY_PORT:-9094}:9094"]
    # Neither the services' listener nor the controller's.
    assert all(not port.endswith((":9092", ":9093")) for port in published["kafka"])


def _variable(value: str) -> str:
    match = re.fullmatch(r"\$\{([A-Z_]+)(:\?[^}]*|:-)?\}", value)
    assert match is not None, f"not a single variable: {value}"
    return match.group(1)


def test_every_secret_comes_from_the_env_file_and_compose_refuses_to_start_without_it(compose: dict[str, Any]) -> None:
    text = (REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8")
    environments = [definition.get("environment", {}) for definition in compose["services"].values()]
    passwords = [
        str(value) for environment in environments for name, value in environment.items() if "PASSWORD" in name
    ]
    in_urls = re.findall(r"://[^:/\s]+:(\$\{[^}]*\})@", text)
    by_default = [
        name
        for definition in default_services(compose).values()
        for name in definition.get("environment", {})
        if "PASSWORD" in name
    ]

    # Preflight's twelve, Postgres's, the broker's three, kafka-setup's four, kafka-access's one, kafka-certs' one,
    # the Kafka services' three, the mail relay's (the portal's is in its database URL only); the ha profile's
    # brokers and second instances have the same as the first's.
    assert len(by_default) == 26
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    for value in passwords + in_urls:
        if _variable(value) in OPTIONAL_PASSWORDS:
            assert value == f"${{{_variable(value)}:-}}"
            continue
        assert _variable(value) in required, f"${{{_variable(value)}}} is never required with :?"
    example = _properties(REPO / "deploy" / ".env.example")
    assert required <= set(example), required - set(example)


def test_no_secret_is_written_into_the_scripts() -> None:
    for name in ("kafka-start", "kafka-certs", "kafka.properties"):
        text = (COMPOSE_DIR / name).read_text(encoding="utf-8")
        # Every password=… takes a variable or a command's output (the CA's own, made at random), or is the "…" of
        # a message.
        assert not re.findall(r'password=(?!\\?"?\$[{(]|…)', text, re.IGNORECASE), name


# Placeholders refused before anything keeps them

#: A password that may be left unset: the mail relay's, with no username either (no login).
OPTIONAL_PASSWORDS = {"TIMPORA_ALERTS_SMTP_PASSWORD"}
#: What keeps a password once started with it: PostgreSQL's volume, the keystore, the broker's storage, and the
#: roles db-bootstrap creates.
KEEPERS = ("postgres", "kafka-certs", "kafka", "db-bootstrap")


def test_preflight_checks_every_password_compose_passes_before_anything_keeps_one(compose: dict[str, Any]) -> None:
    preflight = compose["services"]["preflight"]
    text = (REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8")
    passed = {name for name in re.findall(r"\$\{([A-Z_]+)", text) if name.endswith("PASSWORD")}
    example = (REPO / "deploy" / ".env.example").read_text(encoding="utf-8")
    in_example = set(re.findall(r"^(?:# )?(TIMPORA_[A-Z_]*PASSWORD)=", example, re.MULTILINE))

    # Under their own names, as the env file has them: preflight names the variable an operator must change.
    checked = {name for name, value in preflight["environment"].items() if name.endswith("PASSWORD")}
    assert checked == passed == in_example
    for name in checked:
        assert _variable(str(preflight["environment"][name])) == name
    assert len(checked) == 12
    # The relay's username beside its password: both empty is no login.
    assert preflight["environment"]["TIMPORA_ALERTS_SMTP_USERNAME"] == "${TIMPORA_ALERTS_SMTP_USERNAME:-}"
    # It comes first and keeps nothing itself.
    assert "depends_on" not in preflight
    assert "volumes" not in preflight
    assert "restart" not in preflight
    for keeper in KEEPERS:
        assert compose["services"][keeper]["depends_on"]["preflight"] == {
            "condition": "service_completed_successfully"
        }, keeper
