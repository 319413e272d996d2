"""Where a webhook may point: only at the public internet, unless an operator allows a network.

A webhook URL is written by whoever edits the register, and the alerts service POSTs to it from inside the
operator's network. Pointed at loopback, a private or link-local network or a cloud metadata service, it would
make the service reach what an agency never should (a database, an admin port, the instance's credentials), and
the delivery queue's record of each attempt would tell which ports answer. So such destinations are refused when
the register is loaded (a literal address, or a name that always means one) and again when each call is made,
after DNS resolution: every address a name resolves to is checked, and the call goes to the checked address, so a
name that resolves differently a moment later (DNS rebinding) cannot swap it.

An operator allows a network explicitly, in ``TIMPORA_WEBHOOK_ALLOWED_NETWORKS`` (CIDRs, comma-separated): one
variable for every service that reads the register, as ``TIMPORA_REGISTER_FILE`` is, so that they all take or
refuse the same register. A cloud metadata address is allowed only by a network of that one address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_NETWORKS_VARIABLE = "TIMPORA_WEBHOOK_ALLOWED_NETWORKS"
#: What every refusal ends with: the one setting that lifts it.
TO_ALLOW = f"to allow it, add its network to {ALLOWED_NETWORKS_VARIABLE}"
#: What a refused call records: the same words whatever the address was, so the queue tells nothing about it.
REFUSED = f"destination refused: not a public address; {TO_ALLOW}"

#: Cloud instance metadata services (AWS, GCP, Azure, Oracle: 169.254.169.254; AWS IPv6; ECS task metadata;
#: Alibaba Cloud). Refused even inside an allowed network, unless that network is the one address.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
#: Names that always mean one of those addresses, or this machine, whatever a resolver says.
_NAMED: dict[str, tuple[IPAddress, ...]] = {
    "localhost": (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")),
    "localhost.localdomain": (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")),
    "metadata": (ipaddress.ip_address("169.254.169.254"),),
    "metadata.google.internal": (ipaddress.ip_address("169.254.169.254"),),
    "metadata.goog": (ipaddress.ip_address("169.254.169.254"),),
    "instance-data": (ipaddress.ip_address("169.254.169.254"),),
    "instance-data.ec2.internal": (ipaddress.ip_address("169.254.169.254"),),
}
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, but still routed inside some networks
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedDestinationError(ValueError):
    """A destination outside what webhooks may reach. Its message says why (the kind of address, never an address
    a name resolved to) and which setting would allow it; it is for the operator who wrote the URL, never stored
    with an attempt (:data:`REFUSED` is)."""


def parse_networks(value: str | Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Networks from CIDRs (comma-separated text, or a list); raises ``ValueError`` naming a bad one."""
    items = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for item in items:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        text = item.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{ALLOWED_NETWORKS_VARIABLE}: '{text}' is not a network (CIDR)") from None
    return tuple(networks)


def allowed_networks() -> tuple[IPNetwork, ...]:
    """The networks the operator allows webhooks into (``TIMPORA_WEBHOOK_ALLOWED_NETWORKS``); none by default."""
    return parse_networks(os.environ.get(ALLOWED_NETWORKS_VARIABLE, ""))


def _embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, NAT64, IPv4-compatible), else itself: each
    reaches that IPv4 host, so it is judged as that host."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def category(address: IPAddress) -> str | None:
    """What makes ``address`` unfit for a webhook (``loopback``, ``private``, ...), None for a public address. An
    IPv6 address carrying an IPv4 one is judged as the IPv4 host it reaches."""
    reached = _embedded(address)
    if reached in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        ("an unspecified address", reached.is_unspecified),
        ("a loopback address", reached.is_loopback),
        ("a link-local address", reached.is_link_local),
        ("a multicast address", reached.is_multicast),
        ("a private address", reached.is_private),
        ("a reserved address", reached.is_reserved),
        ("a site-local address", isinstance(reached, ipaddress.IPv6Address) and reached in _SITE_LOCAL),
        # Shared address space (100.64.0.0/10, carrier NAT) and everything else not globally reachable.
        ("an address not globally reachable", not reached.is_global),
    )
    return next((name for name, applies in checks if applies), None)


def refusal(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """Why a webhook may not be sent to ``address``, or None. A network the operator allows lifts the refusal,
    but a cloud metadata address is lifted only by a network of that one address."""
    found = category(address)
    if found is None:
        return None
    candidates = {address, _embedded(address)}
    metadata = any(candidate in METADATA_ADDRESSES for candidate in candidates)
    for network in allowed:
        inside = any(candidate.version == network.version and candidate in network for candidate in candidates)
        if inside and (not metadata or network.num_addresses == 1):
            return None
    return found


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names literally, in any form a resolver takes (``127.1``, ``0x7f000001``,
    ``2130706433`` are 127.0.0.1 to ``getaddrinfo``), or None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def _normal(host: str) -> str:
    return host.rstrip(".").lower()


def check_url(url: str, allowed: Sequence[IPNetwork]) -> None:
    """Refuses (:class:`RefusedDestinationError`) a URL whose host is, without asking DNS, an address or a name a
    webhook may not reach. A name is checked again, resolved, when each call is made (:func:`resolve`)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        raise RefusedDestinationError("not a URL") from None
    if not host:
        raise RefusedDestinationError("the URL names no host")
    name = _normal(host)
    address = literal_address(name)
    if address is not None:
        addresses: tuple[IPAddress, ...] = (address,)
    elif name.endswith(".localhost"):
        addresses = _NAMED["localhost"]
    else:
        addresses = _NAMED.get(name, ())
    for candidate in addresses:
        reason = refusal(candidate, allowed)
        if reason is not None:
            raise RefusedDestinationError(f"the webhook points at {reason}; {TO_ALLOW}")


@dataclass(frozen=True, slots=True)
class Destination:
    """A webhook's host, resolved and checked: the call goes to ``addresses`` (in order), never to a fresh answer."""

    host: str
    port: int
    addresses: tuple[IPAddress, ...]


async def resolve(url: str, allowed: Sequence[IPNetwork]) -> Destination:
    """Resolves the URL's host and checks every address it has; raises :class:`RefusedDestinationError` if any is
    refused (a name with one private address among public ones could be steered to it), ``OSError`` if the
    name does not resolve."""
    check_url(url, allowed)
    parts = urlsplit(url)
    host = _normal(parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = literal_address(host)
    if literal is not None:
        found: list[IPAddress] = [literal]
    else:
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(ipaddress.ip_address(str(answer[4][0]).split("%", 1)[0]) for answer in answers))
    if not found:
        raise OSError("the name has no address")
    for address in found:
        reason = refusal(address, allowed)
        if reason is not None:
            # The kind of address only: which address a name resolves to is not the operator's to learn here.
            raise RefusedDestinationError(f"the webhook's host {host} resolves to {reason}; {TO_ALLOW}")
    return Destination(host=host, port=port, addresses=tuple(found))
