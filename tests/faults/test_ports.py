"""The ports the fault platform's servers are given: a port handed to a server still starting probes free, so a second
server given it could not start; none is given twice, and none of a stack's brokers' (free while a node is stopped)."""

from __future__ import annotations

from tests.support.processes import free_port, listening_ports, reserve


def test_a_port_is_never_given_twice_nor_one_set_aside() -> None:
    ports = listening_ports()
    aside = list(range(ports.start, ports.start + 200))
    reserve(aside)
    given = [free_port() for _ in range(300)]  # each still free: nothing binds them here
    assert len(set(given)) == len(given)
    assert not set(given) & set(aside)
    assert all(port in ports for port in given)
