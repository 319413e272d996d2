"""docker-compose's `ha` profile, statically (no Docker engine here): three Kafka nodes of one KRaft quorum and two
instances of each service, every Kafka client pointed at all three brokers and every topic kept on three. A profile
can add services but not change those that always run, so the profile comes with its settings
(deploy/compose/ha.env, given after deploy/.env) that make `kafka` the first node of the three; without them
`docker compose up` runs what it ran before: one broker, one instance of each service.

kafka-start and kafka-healthy run here for real, outside the container, with stand-ins for Kafka's own tools."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose import (
    COMPOSE_DIR,
    KAFKA_SERVICES,
    REPO,
    SETTINGS,
    _properties,
    _substitute,
    default_services,
)
from timpora.common.settings import OperatorKafkaSettings
from timpora.common.topics import TopicCatalog

PROFILE = "ha"
HA_ENV = COMPOSE_DIR / "ha.env"
#: What the profile adds to what always runs.
ADDED = {"kafka-2", "kafka-3", *(f"{service}-2" for service in SETTINGS)}
#: The operator's connections to Kafka: provisioning, and the keeper of the agencies' access (their topics too).
OPERATOR_CLIENTS = ("kafka-setup", "kafka-access")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def ha_env() -> dict[str, str]:
    return _properties(HA_ENV)


def _under_profile(compose: dict[str, Any]) -> dict[str, Any]:
    """What `docker compose --profile ha up` runs."""
    return {
        name: definition
        for name, definition in compose["services"].items()
        if not definition.get("profiles") or PROFILE in definition["profiles"]
    }


def _environment(definition: dict[str, Any], given: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as compose hands it over, with ``given`` (the profile's settings) or without."""
    return {name: _substitute(str(value), given) for name, value in definition.get("environment", {}).items()}


def _brokers(services: dict[str, Any]) -> dict[str, Any]:
    return {name: d for name, d in services.items() if d.get("entrypoint") == ["bash", "/opt/timpora/kafka-start"]}


def _instances(services: dict[str, Any], service: str) -> list[str]:
    return sorted(name for name, d in services.items() if d.get("command") == [f"timpora-{service}", "serve"])


def _host_port(port: str) -> int:
    return int(_substitute(port).split(":")[1])


def _voters(value: str) -> dict[int, str]:
    """``1@kafka:9093,...`` as {node id: host}, every one on the controllers' port."""
    voters: dict[int, str] = {}
    for voter in value.split(","):
        match = re.fullmatch(r"(\d+)@([a-z0-9-]+):9093", voter)
        assert match is not None, voter
        voters[int(match[1])] = match[2]
    return voters


# What the profile runs


def test_the_profile_adds_two_kafka_nodes_and_a_second_instance_of_each_service(compose: dict[str, Any]) -> None:
    profiled = {name: d["profiles"] for name, d in compose["services"].items() if d.get("profiles")}

    assert profiled == {name: [PROFILE] for name in ADDED}
    assert set(_under_profile(compose)) == set(default_services(compose)) | ADDED


def test_the_profiles_settings_are_given_with_it_as_its_documentation_says() -> None:
    command = (
        "docker compose -f deploy/docker-compose.yml --env-file deploy/.env --env-file deploy/compose/ha.env "
        "--profile ha up --build"
    )
    header = (REPO / "deploy" / "docker-compose.yml").read_text(encoding="utf-8")
    operators = (REPO / "docs" / "operators.md").read_text(encoding="utf-8")

    assert command in HA_ENV.read_text(encoding="utf-8")
    assert command in header
    assert command in operators
    # Nothing secret in a file of the repository.
    assert not [name for name in _properties(HA_ENV) if "PASSWORD" in name]


def test_three_brokers_with_distinct_node_ids_the_same_voters_and_a_volume_each(
    compose: dict[str, Any], ha_env: dict[str, str]
) -> None:
    brokers = _brokers(_under_profile(compose))
    environments = {name: _environment(definition, ha_env) for name, definition in brokers.items()}
    node_ids = {name: int(environment["TIMPORA_KAFKA_NODE_ID"]) for name, environment in environments.items()}
    voters = {environment["TIMPORA_KAFKA_QUORUM_VOTERS"] for environment in environments.values()}
    data = {
        name: next(volume.split(":")[0] for volume in d["volumes"] if volume.endswith(":/var/lib/kafka/data"))
        for name, d in brokers.items()
    }

    assert set(brokers) == {"kafka", "kafka-2", "kafka-3"}
    assert node_ids == {"kafka": 1, "kafka-2": 2, "kafka-3": 3}
    # One quorum, named alike on every node, each node under its own name on the compose network.
    [quorum] = voters
    assert _voters(quorum) == {node_id: name for name, node_id in node_ids.items()}
    # Formatted alike: one cluster id, the operator's one credential.
    assert len({environment["TIMPORA_KAFKA_CLUSTER_ID"] for environment in environments.values()}) == 1
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", environments["kafka"]["TIMPORA_KAFKA_CLUSTER_ID"])
    for name, definition in brokers.items():
        first = compose["services"]["kafka"]
        assert (
            definition["environment"]["TIMPORA_KAFKA_ADMIN_PASSWORD"]
            == first["environment"]["TIMPORA_KAFKA_ADMIN_PASSWORD"]
        )
        for same in ("image", "entrypoint", "healthcheck", "ulimits", "depends_on"):
            assert definition[same] == first[same], (name, same)
        assert "./compose:/opt/timpora:ro" in definition["volumes"]
        assert "kafka-tls:/etc/kafka/secrets:ro" in definition["volumes"]
        assert environments[name]["TIMPORA_KAFKA_REPLICAS"] == "3"
    assert len(set(data.values())) == 3
    assert set(data.values()) <= set(compose["volumes"])
    # Each publishes its agencies' listener, on a port of its own, and advertises that port.
    ports = {name: [_host_port(port) for port in d["ports"]] for name, d in brokers.items()}
    assert ports == {name: [int(environments[name]["TIMPORA_KAFKA_AGENCY_PORT"])] for name in brokers}
    assert len({port for published in ports.values() for port in published}) == 3


def test_each_service_runs_twice_under_the_profile_on_distinct_host_ports(compose: dict[str, Any]) -> None:
    services = _under_profile(compose)
    for service in SETTINGS:
        instances = _instances(services, service)
        first, second = (services[name] for name in instances)

        assert instances == [service, f"{service}-2"]
        ports = [_host_port(port) for name in instances for port in services[name]["ports"]]
        assert len(ports) == len(set(ports)) == 2
        # The same service in all but its port (and the profile): its settings, waits, volumes, health and stop.
        differing = {key for key in first.keys() | second.keys() if first.get(key) != second.get(key)}
        assert differing <= {"ports", "profiles", "networks"}, (service, differing)
        if "networks" in second:
            # The second answers to the first's name too: the portals' http://registry:8000 reaches either.
            assert second["networks"] == {"default": {"aliases": [service]}}
    ports = [_host_port(port) for definition in services.values() for port in definition.get("ports", [])]
    assert len(ports) == len(set(ports))


def test_every_kafka_client_names_all_three_brokers_and_three_copies_under_the_profile(
    compose: dict[str, Any], ha_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = _under_profile(compose)
    brokers = {f"{host}:9092" for host in _voters(ha_env["TIMPORA_KAFKA_QUORUM_VOTERS"]).values()}
    assert len(brokers) == 3

    for service in KAFKA_SERVICES:
        for name in _instances(services, service):
            environment = _environment(services[name], ha_env)
            for variable in [variable for variable in os.environ if variable.startswith("TIMPORA_")]:
                monkeypatch.delenv(variable)
            for variable, value in environment.items():
                monkeypatch.setenv(variable, value)

            kafka = SETTINGS[service]().kafka

            assert set(kafka.bootstrap_servers.split(",")) == brokers, name
            assert environment[f"TIMPORA_{service.upper()}_KAFKA__REPLICAS"] == "3"
            assert kafka.replicas == 3
    for name in OPERATOR_CLIENTS:
        environment = _environment(services[name], ha_env)
        for variable in [variable for variable in os.environ if variable.startswith("TIMPORA_")]:
            monkeypatch.delenv(variable)
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)

        operator = OperatorKafkaSettings()

        assert set(operator.bootstrap_servers.split(",")) == brokers, name
        assert environment["TIMPORA_KAFKA_REPLICAS"] == "3"
        assert operator.replicas == 3
    # The portal has no Kafka: its two instances have nothing of it either.
    assert not [
        variable
        for name in _instances(services, "portal")
        for variable in services[name]["environment"]
        if "KAFKA" in variable
    ]


def test_without_the_profile_it_is_one_broker_one_instance_each_and_one_copy(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = default_services(compose)
    kafka = _environment(services["kafka"])

    assert list(_brokers(services)) == ["kafka"]
    assert (kafka["TIMPORA_KAFKA_NODE_ID"], kafka["TIMPORA_KAFKA_QUORUM_VOTERS"], kafka["TIMPORA_KAFKA_REPLICAS"]) == (
        "1",
        "",
        "1",
    )
    assert services["kafka"]["ports"] == [
        "${TIMPORA_KAFKA_AGENCY_BIND:-127.0.0.1}:${TIMPORA_KAFKA_AGENCY_PORT:-9094}:9094"
    ]
    for service in SETTINGS:
        assert _instances(services, service) == [service]
        assert [_host_port(port) for port in services[service]["ports"]] == [8001 + list(SETTINGS).index(service)]
    for name in [*KAFKA_SERVICES, *OPERATOR_CLIENTS]:
        environment = _environment(services[name])
        # The services' listener (not the agencies', which kafka-access hands out).
        bootstrap = [
            value
            for variable, value in environment.items()
            if variable.endswith("BOOTSTRAP_SERVERS") and "AGENCY" not in variable
        ]
        replicas = [value for variable, value in environment.items() if variable.endswith("REPLICAS")]
        assert (bootstrap, replicas) == (["kafka:9092"], ["1"]), name
    for variable in [variable for variable in os.environ if variable.startswith("TIMPORA_")]:
        monkeypatch.delenv(variable)
    for variable, value in _environment(services["registry"]).items():
        monkeypatch.setenv(variable, value)
    assert SETTINGS["registry"]().kafka.replicas == 1


# The nodes, started by kafka-start with stand-ins for Kafka's tools

_STORAGE_TOOL = """#!/usr/bin/env bash
# A stand-in for kafka-storage.sh: a fixed id, and a format that records its arguments and writes meta.properties.
case "$1" in
  random-uuid) echo RandomRandomRandom0123 ;;
  format)
    printf '%s\\n' "$@" >"$TIMPORA_KAFKA_DATA_DIR/format.args"
    while (($#)); do
      if [[ "$1" == -t ]]; then echo "cluster.id=$2" >"$TIMPORA_KAFKA_DATA_DIR/meta.properties"; fi
      shift
    done
    ;;
esac
"""
_SERVER = """#!/usr/bin/env bash
echo "serving $1"
"""


def _start(tmp_path: Path, environment: dict[str, str], node: str = "node") -> subprocess.CompletedProcess[str]:
    home, tls, data, run = (tmp_path / part for part in ("home", "tls", f"{node}-data", f"{node}-run"))
    (home / "bin").mkdir(parents=True, exist_ok=True)
    (home / "bin" / "kafka-storage.sh").write_text(_STORAGE_TOOL, encoding="utf-8")
    (home / "bin" / "kafka-server-start.sh").write_text(_SERVER, encoding="utf-8")
    for tool in (home / "bin").iterdir():
        tool.chmod(0o755)
    tls.mkdir(exist_ok=True)
    (tls / "broker.p12").write_bytes(b"made by kafka-certs")
    data.mkdir(exist_ok=True)
    return subprocess.run(  # noqa: S603 - our script
        ["bash", str(COMPOSE_DIR / "kafka-start")],  # noqa: S607 - bash from PATH, as the container's
        env={
            "PATH": os.environ["PATH"],
            **environment,
            "TIMPORA_KAFKA_HOME": str(home),
            "TIMPORA_KAFKA_TLS_DIR": str(tls),
            "TIMPORA_KAFKA_DATA_DIR": str(data),
            "TIMPORA_KAFKA_RUN_DIR": str(run),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _server_properties(tmp_path: Path, node: str = "node") -> list[str]:
    return (tmp_path / f"{node}-run" / "server.properties").read_text(encoding="utf-8").splitlines()


def _settings(lines: list[str]) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), "a key set twice"
    return dict(pairs)


def test_the_single_node_is_configured_and_formatted_as_it_was(compose: dict[str, Any], tmp_path: Path) -> None:
    done = _start(tmp_path, _environment(compose["services"]["kafka"]))

    assert done.returncode == 0, done.stderr
    lines = _server_properties(tmp_path)
    properties = (COMPOSE_DIR / "kafka.properties").read_text(encoding="utf-8").splitlines()
    # kafka.properties as it is, then where agencies connect and the secrets.
    assert lines[: len(properties)] == properties
    assert lines[len(properties)] == "advertised.listeners=SERVICES://kafka:9092,AGENCIES://localhost:9094"
    assert [line.split("=", 1)[0] for line in lines[len(properties) + 1 :]] == [
        "listener.name.services.scram-sha-512.sasl.jaas.config",
        "listener.name.agencies.ssl.keystore.password",
        "listener.name.controller.plain.sasl.jaas.config",
    ]
    formatted = (tmp_path / "node-data" / "format.args").read_text(encoding="utf-8").split()
    assert formatted[:4] == ["format", "--standalone", "-t", "RandomRandomRandom0123"]
    # No quorum stamp: a volume of the single node looks as it did.
    assert sorted(path.name for path in (tmp_path / "node-data").iterdir()) == [
        "format.args",
        "meta.properties",
        "timpora-admin.sha256",
    ]


@pytest.mark.parametrize("broker", ["kafka", "kafka-2", "kafka-3"])
def test_a_node_of_the_cluster_is_configured_and_formatted_for_the_quorum(
    compose: dict[str, Any], ha_env: dict[str, str], tmp_path: Path, broker: str
) -> None:
    environment = _environment(compose["services"][broker], ha_env)

    done = _start(tmp_path, environment)

    assert done.returncode == 0, done.stderr
    settings = _settings(_server_properties(tmp_path))
    replicas = TopicCatalog(replicas=3)
    assert settings["node.id"] == environment["TIMPORA_KAFKA_NODE_ID"]
    assert settings["controller.quorum.voters"] == ha_env["TIMPORA_KAFKA_QUORUM_VOTERS"]
    assert "controller.quorum.bootstrap.servers" not in settings
    # The other controllers reach this one: not on loopback.
    assert settings["listeners"] == "SERVICES://:9092,AGENCIES://:9094,CONTROLLER://:9093"
    assert settings["advertised.listeners"] == (
        f"SERVICES://{broker}:9092,AGENCIES://localhost:{environment['TIMPORA_KAFKA_AGENCY_PORT']}"
    )
    # Every topic on three brokers, a write acknowledged once two have it: as the topic catalog asks.
    assert {key: settings[key] for key in settings if "replication.factor" in key} == {
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "share.coordinator.state.topic.replication.factor": "3",
        "default.replication.factor": "3",
    }
    assert {key: settings[key] for key in settings if key.endswith(("min.isr", "min.insync.replicas"))} == {
        "transaction.state.log.min.isr": "2",
        "share.coordinator.state.topic.min.isr": "2",
        "min.insync.replicas": "2",
    }
    assert replicas.min_insync_replicas == 2
    # The rest as the single node's: the lock-down is the same.
    single = _properties(COMPOSE_DIR / "kafka.properties")
    for key in ("authorizer.class.name", "allow.everyone.if.no.acl.found", "super.users"):
        assert settings[key] == single[key]
    # But the controllers: the nodes log in to each other's with the broker's super user login, over TLS, checking
    # the others' certificate (which names every node: kafka-certs) against the CA; the single node's stays on its
    # own loopback.
    assert settings["listener.security.protocol.map"] == (
        single["listener.security.protocol.map"].replace("CONTROLLER:SASL_PLAINTEXT", "CONTROLLER:SASL_SSL")
    )
    assert "CONTROLLER:SASL_SSL" in settings["listener.security.protocol.map"]
    tls = tmp_path / "tls"
    assert {key: value for key, value in settings.items() if key.startswith("listener.name.controller.ssl.")} == {
        "listener.name.controller.ssl.keystore.type": "PKCS12",
        "listener.name.controller.ssl.keystore.location": f"{tls}/broker.p12",
        "listener.name.controller.ssl.keystore.password": environment["TIMPORA_KAFKA_TLS_STORE_PASSWORD"],
        "listener.name.controller.ssl.truststore.type": "PEM",
        "listener.name.controller.ssl.truststore.location": f"{tls}/ca.crt",
    }
    assert "ssl.endpoint.identification.algorithm" not in settings  # Kafka's default: the host name is checked
    formatted = (tmp_path / "node-data" / "format.args").read_text(encoding="utf-8").split()
    assert "--standalone" not in formatted
    assert formatted[formatted.index("-t") + 1] == ha_env["TIMPORA_KAFKA_CLUSTER_ID"]
    assert formatted[formatted.index("--add-scram") + 1] == "SCRAM-SHA-512=[name=admin,password=placeholder]"


def test_a_node_of_the_cluster_refuses_to_start_without_the_profiles_settings(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    done = _start(tmp_path, _environment(compose["services"]["kafka-2"]))

    assert done.returncode == 1
    assert "node 2 is a node of the ha profile's cluster" in done.stderr
    assert "deploy/compose/ha.env" in done.stderr
    assert not (tmp_path / "node-data" / "meta.properties").exists()


def test_a_volume_is_started_only_as_what_it_was_formatted_for(
    compose: dict[str, Any], ha_env: dict[str, str], tmp_path: Path
) -> None:
    single, clustered = _environment(compose["services"]["kafka"]), _environment(compose["services"]["kafka"], ha_env)
    assert _start(tmp_path, single).returncode == 0

    refused = _start(tmp_path, clustered)

    assert refused.returncode == 1
    assert "formatted for a single node" in refused.stderr
    assert "remove the kafka-data volume" in refused.stderr

    assert _start(tmp_path, clustered, node="other").returncode == 0
    assert _start(tmp_path, single, node="other").returncode == 1
    moved = _start(tmp_path, {**clustered, "TIMPORA_KAFKA_CLUSTER_ID": "AnotherClusterId012345"}, node="other")
    assert moved.returncode == 1
    assert "belongs to cluster" in moved.stderr


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"TIMPORA_KAFKA_REPLICAS": "4"}, "the cluster has 3"),
        ({"TIMPORA_KAFKA_NODE_ID": "4"}, "node 4 is not one of the voters"),
        ({"TIMPORA_KAFKA_CLUSTER_ID": ""}, "TIMPORA_KAFKA_CLUSTER_ID must be"),
        ({"TIMPORA_KAFKA_QUORUM_VOTERS": "1@kafka,2@kafka-2:9093"}, "each voter is ID@HOST:PORT"),
    ],
)
def test_a_cluster_misnamed_is_refused_before_anything_is_formatted(
    compose: dict[str, Any], ha_env: dict[str, str], tmp_path: Path, changes: dict[str, str], refusal: str
) -> None:
    done = _start(tmp_path, {**_environment(compose["services"]["kafka"], ha_env), **changes})

    assert done.returncode == 1
    assert refusal in done.stderr
    assert not (tmp_path / "node-data" / "meta.properties").exists()


# Healthy once the operator logs in, and in the cluster once a write can be acknowledged

_API_VERSIONS = """#!/usr/bin/env bash
# A stand-in for kafka-broker-api-versions.sh: the brokers of $BROKERS_ANSWERING, one line each as the tool's.
for id in $(seq 1 "$BROKERS_ANSWERING"); do
  printf 'kafka-%s:9092 (id: %s rack: null isFenced: false) -> (\\n' "$id" "$id"
  printf '\\tProduce(0): 3 to 12 [usable: 12],\\n)\\n'
done
printf 'kafka-9:9092 (id: 9 rack: null isFenced: false) -> ERROR: org.apache.kafka.common.errors.DisconnectException\\n'
exit "$TOOL_EXIT"
"""


@pytest.mark.parametrize(
    ("replicas", "answering", "tool_exit", "healthy"),
    [
        # A single node: the tool's own answer (it fails when the operator cannot log in).
        ("1", 1, 0, True),
        ("1", 1, 1, False),
        # The cluster: that, and brokers enough for a write to be acknowledged (two of three): one node down
        # leaves the others healthy.
        ("3", 1, 0, False),
        ("3", 2, 0, True),
        ("3", 3, 0, True),
        ("3", 3, 1, False),
        ("5", 2, 0, False),
        ("5", 3, 0, True),
    ],
)
def test_a_node_is_healthy_once_brokers_enough_for_a_write_answer(
    tmp_path: Path,
    replicas: str,
    answering: int,
    tool_exit: int,
    healthy: bool,  # noqa: FBT001 - a parameter of the case
) -> None:
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "kafka-broker-api-versions.sh"
    tool.write_text(_API_VERSIONS, encoding="utf-8")
    tool.chmod(0o755)

    done = subprocess.run(  # noqa: S603 - our script
        ["bash", str(COMPOSE_DIR / "kafka-healthy")],  # noqa: S607 - bash from PATH, as the container's
        env={
            "PATH": os.environ["PATH"],
            "TIMPORA_KAFKA_HOME": str(tmp_path),
            "TIMPORA_KAFKA_REPLICAS": replicas,
            "BROKERS_ANSWERING": str(answering),
            "TOOL_EXIT": str(tool_exit),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert (done.returncode == 0) is healthy, done.stderr
