"""Where a webhook may point: every address class webhooks may not reach is refused, in every form it can be
written, unless an operator allows its network; the register refuses such a webhook when it is loaded."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import register as register_variants
from timpora.common import register
from timpora.common.config_files import ConfigFileError
from timpora.common.register import destinations
from timpora.common.register.destinations import (
    ALLOWED_NETWORKS_VARIABLE,
    RefusedDestinationError,
    category,
    check_url,
    parse_networks,
    refusal,
)

REFUSED_ADDRESSES = [
    "127.0.0.1",  # loopback
    "127.1.2.3",
    "::1",
    "10.1.2.3",  # RFC 1918
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "fc00::1",  # unique-local
    "fd12:3456::1",
    "169.254.0.1",  # link-local
    "fe80::1",
    "169.254.169.254",  # metadata: AWS, GCP, Azure, Oracle
    "fd00:ec2::254",  # AWS over IPv6
    "169.254.170.2",  # ECS task metadata
    "100.100.100.200",  # Alibaba Cloud
    "100.64.0.1",  # shared address space (carrier NAT)
    "0.0.0.0",  # unspecified  # noqa: S104 - an address under test, not a bind
    "::",
    "224.0.0.1",  # multicast
    "ff02::1",
    "ff0e::1",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped forms
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of the metadata address
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "fec0::1",  # site-local
]
PUBLIC_ADDRESSES = ["8.8.8.8", "1.1.1.1", "203.0.114.1", "2001:4860:4860::8888", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_every_non_public_address_is_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), ()) is not None


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_a_public_address_is_not(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), ()) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://127.1/hook",  # short form: getaddrinfo reads it as 127.0.0.1
        "http://2130706433/hook",  # decimal
        "http://0x7f000001/hook",  # hexadecimal
        "http://017700000001/hook",  # octal
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:a9fe:a9fe]/latest/meta-data",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/",
        "http://metadata/computeMetadata/v1/",
        "http://instance-data/latest/",
        "http://localhost:5432/",
        "http://anything.localhost/",
        "https://user:pw@10.0.0.5/hook",
        "http://[fe80::1%25eth0]/hook",
    ],
)
def test_a_url_naming_a_refused_destination_is_refused_without_asking_dns(url: str) -> None:
    with pytest.raises(RefusedDestinationError):
        check_url(url, ())


def test_a_url_naming_a_public_host_or_a_name_passes_until_resolved() -> None:
    check_url("https://polres-bangkalan.example/timpora", ())
    check_url("https://8.8.8.8/hook", ())


def test_an_allowed_network_lifts_the_refusal_but_a_metadata_address_needs_its_own() -> None:
    loopback = parse_networks("127.0.0.0/8")
    assert refusal(ipaddress.ip_address("127.0.0.1"), loopback) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), loopback) is None  # the same host
    assert refusal(ipaddress.ip_address("10.0.0.1"), loopback) is not None
    link_local = parse_networks("169.254.0.0/16")
    assert refusal(ipaddress.ip_address("169.254.1.1"), link_local) is None
    assert refusal(ipaddress.ip_address("169.254.169.254"), link_local) is not None
    assert refusal(ipaddress.ip_address("169.254.169.254"), parse_networks("169.254.169.254/32")) is None


def test_networks_are_read_from_the_one_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOWED_NETWORKS_VARIABLE, "127.0.0.1/32, fd00::/8")
    assert destinations.allowed_networks() == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("fd00::/8"),
    )
    monkeypatch.setenv(ALLOWED_NETWORKS_VARIABLE, "not-a-network")
    with pytest.raises(ValueError, match="not-a-network"):
        destinations.allowed_networks()


_PRIVATE_V4 = st.sampled_from(
    [ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8")]
    + [ipaddress.ip_network(net) for net in ("169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4")]
).flatmap(lambda network: st.ip_addresses(network=network))


@given(_PRIVATE_V4)
def test_any_address_of_a_refused_ipv4_network_is_refused_in_every_form(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80))
    assert refusal(address, ()) is not None
    assert refusal(mapped, ()) is not None
    assert refusal(sixtofour, ()) is not None
    with pytest.raises(RefusedDestinationError):
        check_url(f"http://{address}:8080/hook", ())
    with pytest.raises(RefusedDestinationError):
        check_url(f"http://{int(address)}/hook", ())  # the same address as one number
    with pytest.raises(RefusedDestinationError):
        check_url(f"http://[{mapped}]/hook", ())


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_and_its_mapped_ipv6_form_are_judged_alike(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert (refusal(address, ()) is None) == (refusal(mapped, ()) is None)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Addresses that carry no IPv4 address inside (those are judged as the IPv4 host they reach).


def _carries_no_ipv4(found: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return isinstance(found, ipaddress.IPv6Address) and (
        found.ipv4_mapped is None and found.sixtofour is None and found not in _NAT64
    )


_PLAIN = st.ip_addresses(v=4) | st.ip_addresses(v=6).filter(_carries_no_ipv4)


@given(_PLAIN)
def test_only_globally_reachable_unicast_addresses_are_accepted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    if category(address) is None:
        assert address.is_global
        assert not address.is_multicast
        assert not address.is_loopback
        assert not address.is_link_local


@given(
    st.sampled_from(["127.0.0.0/8", "10.0.0.0/8", "fd00::/8", "192.168.0.0/16"]).flatmap(
        lambda network: st.tuples(st.just(network), st.ip_addresses(network=ipaddress.ip_network(network)))
    )
)
def test_an_address_inside_an_allowed_network_is_accepted(
    case: tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    network, address = case
    assert refusal(address, parse_networks(network)) is None


def _register_with_webhook(tmp_path: Path, url: str) -> Path:
    document = register_variants.shipped()
    register_variants.member(document, "polres-bangkalan")["channels"]["webhook"] = {
        "url": url,
        "secret_env": "TIMPORA_TEST_UNUSED_SECRET",
    }
    return register_variants.write(tmp_path / "register.yaml", document)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.1.2.3]/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_the_register_refuses_a_webhook_into_a_network_nobody_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.delenv(ALLOWED_NETWORKS_VARIABLE, raising=False)
    with pytest.raises(ConfigFileError, match=r"members\.polres-bangkalan\.channels\.webhook\.url") as refused:
        register.load(_register_with_webhook(tmp_path, url))
    # The operator learns which setting lifts the refusal.
    assert f"; to allow it, add its network to {ALLOWED_NETWORKS_VARIABLE}" in str(refused.value)


async def test_a_name_resolving_to_a_refused_address_is_refused_at_send_time_naming_the_setting() -> None:
    name = socket.gethostname()
    resolved = {str(info[4][0]) for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    if not all(category(ipaddress.ip_address(address.split("%", 1)[0])) for address in resolved):
        pytest.skip(f"this test needs the machine's host name to resolve to non-public addresses, not {resolved}")

    with pytest.raises(RefusedDestinationError) as refused:
        await destinations.resolve(f"http://{name}:8080/hook", ())

    message = str(refused.value)
    assert message.endswith(f"; to allow it, add its network to {ALLOWED_NETWORKS_VARIABLE}")
    assert name.lower().rstrip(".") in message  # what the operator wrote, and nothing it resolved to
    assert not any(address in message for address in resolved)


def test_the_register_takes_a_webhook_into_a_network_the_operator_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOWED_NETWORKS_VARIABLE, "127.0.0.1/32")
    loaded = register.load(_register_with_webhook(tmp_path, "http://127.0.0.1:8080/hook"))
    webhook = loaded.members["polres-bangkalan"].channels.webhook
    assert webhook is not None
    assert webhook.url == "http://127.0.0.1:8080/hook"
    # A metadata address stays refused inside a wider allowed network.
    monkeypatch.setenv(ALLOWED_NETWORKS_VARIABLE, "169.254.0.0/16")
    with pytest.raises(ConfigFileError, match="metadata"):
        register.load(_register_with_webhook(tmp_path, "http://169.254.169.254/"))
