"""docker-compose's `kafka-certs` (deploy/compose/kafka-certs), run for real with the JRE's keytool into a
directory of the test's instead of the kafka-tls volume: the CA agencies trust is made once and kept; only
the broker's certificate is issued again, when the agencies' host name or the store password changes."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "compose" / "kafka-certs"
#: Store passwords, made for these tests only.
PASSWORD = "9c2e7a41f0b3d5"  # noqa: S105
ROTATED = "5d1f8b2e6a0c47"

pytestmark = pytest.mark.skipif(
    shutil.which("keytool") is None or shutil.which("openssl") is None,
    reason="keytool (a JRE) and openssl make and read the certificates",
)


@dataclass(frozen=True, slots=True)
class Run:
    returncode: int
    output: str


def _run(tls_dir: Path, host: str = "localhost", password: str = PASSWORD) -> Run:
    done = subprocess.run(  # noqa: S603 - our script
        ["bash", str(SCRIPT)],  # noqa: S607 - bash from PATH, as the container's
        env={
            "PATH": os.environ["PATH"],
            "TIMPORA_KAFKA_TLS_DIR": str(tls_dir),
            "TIMPORA_KAFKA_AGENCY_HOST": host,
            "TIMPORA_KAFKA_TLS_STORE_PASSWORD": password,
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return Run(done.returncode, done.stdout + done.stderr)


def _broker_certificate(tls_dir: Path, password: str = PASSWORD) -> str:
    """The broker's certificate (PEM) from its keystore: fails when the password does not open it."""
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [
            *["keytool", "-exportcert", "-rfc", "-alias", "broker", "-keystore", str(tls_dir / "broker.p12")],
            *["-storetype", "PKCS12", "-storepass", password],
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _verifies(tls_dir: Path, certificate: str) -> str:
    """What openssl says of ``certificate`` against the agencies' ca.crt, and the names it holds."""
    cert = tls_dir / "checked.crt"
    cert.write_text(certificate, encoding="utf-8")
    verify = subprocess.run(  # noqa: S603 - fixed arguments
        ["openssl", "verify", "-CAfile", str(tls_dir / "ca.crt"), str(cert)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    names = subprocess.run(  # noqa: S603 - fixed arguments
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(cert)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    cert.unlink()
    return verify.stdout.strip() + " " + " ".join(names.stdout.split())


@pytest.fixture(scope="module")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kafka-tls volume after the first start, for localhost."""
    tls_dir = tmp_path_factory.mktemp("kafka-tls")
    first = _run(tls_dir)
    assert first.returncode == 0, first.output
    assert "making a CA" in first.output
    return tls_dir


@pytest.fixture
def volume(first_start: Path, tmp_path: Path) -> Path:
    """A copy of that volume for one test to change."""
    return Path(shutil.copytree(first_start, tmp_path / "kafka-tls"))


def test_the_first_start_makes_a_ca_and_a_broker_certificate_it_signed(volume: Path) -> None:
    assert sorted(path.name for path in volume.iterdir()) == ["broker.p12", "ca.crt", "ca.p12", "ca.pass", "host"]
    assert "OK" in _verifies(volume, _broker_certificate(volume))
    # The CA's key and its password are the broker user's only; agencies get ca.crt.
    assert {path.name: path.stat().st_mode & 0o777 for path in volume.iterdir()} == {
        "broker.p12": 0o600,
        "ca.crt": 0o644,
        "ca.p12": 0o600,
        "ca.pass": 0o600,
        "host": 0o600,
    }


def test_starting_again_changes_nothing(volume: Path) -> None:
    before = {path.name: path.read_bytes() for path in volume.iterdir()}

    again = _run(volume)

    assert again.returncode == 0, again.output
    assert "is there already" in again.output
    assert {path.name: path.read_bytes() for path in volume.iterdir()} == before


def test_a_new_agency_host_keeps_the_ca_and_reissues_only_the_brokers_certificate(volume: Path) -> None:
    ca = (volume / "ca.crt").read_bytes()

    moved = _run(volume, host="kafka.imigrasi.example")

    assert moved.returncode == 0, moved.output
    # Every agency's CA file still verifies the broker.
    assert (volume / "ca.crt").read_bytes() == ca
    checked = _verifies(volume, _broker_certificate(volume))
    assert checked.startswith(f"{volume / 'checked.crt'}: OK")
    assert "DNS:kafka.imigrasi.example" in checked
    assert "NEW CA" not in moved.output
    assert "the one there is for localhost" in moved.output


def test_a_new_store_password_reissues_the_keystore_under_it_and_keeps_the_ca(volume: Path) -> None:
    ca = (volume / "ca.crt").read_bytes()

    rotated = _run(volume, password=ROTATED)

    assert rotated.returncode == 0, rotated.output
    assert "TIMPORA_KAFKA_TLS_STORE_PASSWORD does not open the one there" in rotated.output
    # The broker opens its keystore with the password it is given.
    assert "OK" in _verifies(volume, _broker_certificate(volume, password=ROTATED))
    assert (volume / "ca.crt").read_bytes() == ca
    assert ROTATED not in rotated.output


def test_a_ca_made_under_the_store_password_is_kept_and_given_a_password_of_its_own(volume: Path) -> None:
    # A volume made before ca.pass: the CA's key under the store password, as the first kafka-certs made it.
    ca_password = (volume / "ca.pass").read_text(encoding="utf-8")
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            *["keytool", "-importkeystore", "-noprompt", "-srckeystore", str(volume / "ca.p12")],
            *["-srcstoretype", "PKCS12", "-srcstorepass", ca_password, "-destkeystore", str(volume / "old.p12")],
            *["-deststoretype", "PKCS12", "-deststorepass", PASSWORD],
        ],
        capture_output=True,
        check=True,
    )
    (volume / "old.p12").replace(volume / "ca.p12")
    (volume / "ca.pass").unlink()
    ca = (volume / "ca.crt").read_bytes()

    upgraded = _run(volume, host="kafka.imigrasi.example")

    assert upgraded.returncode == 0, upgraded.output
    assert "kept, its key now under a password of its own" in upgraded.output
    assert (volume / "ca.crt").read_bytes() == ca
    # From now on the store password can change without touching the CA.
    assert (volume / "ca.pass").stat().st_mode & 0o777 == 0o600
    assert "OK" in _verifies(volume, _broker_certificate(volume))


def test_when_the_cas_key_is_lost_a_new_ca_is_made_and_the_output_says_so(volume: Path) -> None:
    ca = (volume / "ca.crt").read_bytes()
    (volume / "ca.p12").unlink()

    remade = _run(volume)

    assert remade.returncode == 0, remade.output
    assert "making a NEW CA" in remade.output
    assert "give each agency the new ca.crt" in remade.output
    assert (volume / "ca.crt").read_bytes() != ca
    assert "OK" in _verifies(volume, _broker_certificate(volume))


def test_the_brokers_certificate_names_every_node_of_the_ha_cluster(volume: Path) -> None:
    """The ha profile's nodes reach each other's controllers over TLS by their compose names (kafka-start): one
    certificate serves the single node and the cluster's three."""
    checked = _verifies(volume, _broker_certificate(volume))
    assert checked.startswith(f"{volume / 'checked.crt'}: OK")
    assert all(f"DNS:{node}," in checked or checked.endswith(f"DNS:{node}") for node in ("kafka", "kafka-2", "kafka-3"))


def test_a_certificate_without_the_nodes_names_is_issued_again_under_the_same_ca(volume: Path) -> None:
    """A volume made before the cluster's nodes were named in the certificate (as every one before the ha profile's
    controllers spoke TLS): the broker's certificate is issued again, the CA kept."""
    ca = (volume / "ca.crt").read_bytes()
    ca_password = (volume / "ca.pass").read_text(encoding="utf-8")
    store = ["-storetype", "PKCS12", "-storepass", PASSWORD]
    old = volume / "old.p12"
    for command in (
        ["-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=localhost",
         "-keystore", str(old), *store],
        ["-certreq", "-alias", "broker", "-keystore", str(old), *store, "-file", str(volume / "old.csr")],
        ["-gencert", "-rfc", "-alias", "ca", "-keystore", str(volume / "ca.p12"), "-storetype", "PKCS12",
         "-storepass", ca_password, "-infile", str(volume / "old.csr"), "-outfile", str(volume / "old.crt"),
         "-ext", "san=dns:localhost,ip:127.0.0.1"],
        ["-importcert", "-noprompt", "-alias", "ca", "-keystore", str(old), *store, "-file", str(volume / "ca.crt")],
        ["-importcert", "-alias", "broker", "-keystore", str(old), *store, "-file", str(volume / "old.crt")],
    ):  # fmt: skip
        subprocess.run(["keytool", *command], capture_output=True, check=True)  # noqa: S603, S607 - fixed arguments
    old.replace(volume / "broker.p12")
    for leftover in ("old.csr", "old.crt"):
        (volume / leftover).unlink()
    assert "DNS:kafka-2" not in _verifies(volume, _broker_certificate(volume))

    upgraded = _run(volume)

    assert upgraded.returncode == 0, upgraded.output
    assert "does not name the cluster's nodes" in upgraded.output
    assert (volume / "ca.crt").read_bytes() == ca
    checked = _verifies(volume, _broker_certificate(volume))
    assert checked.startswith(f"{volume / 'checked.crt'}: OK")
    assert "DNS:kafka-2" in checked
    assert "DNS:kafka-3" in checked
