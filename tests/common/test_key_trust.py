"""The trust a gate keeps in a key that authenticated (``KEY_TRUST_S``), without a database: fake session factories,
one per database, and the gate's clock moved by hand."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
from typing import Any

import pytest

from timpora.common.http.auth import KEY_TRUST_S, BearerGate


class Sessions:
    """A session factory of one database: the keys valid in it, and a gate that can be held up mid-lookup."""

    def __init__(self, valid: dict[str, str]) -> None:
        self.valid = valid
        self.lookups = 0

    def __call__(self) -> Any:
        @contextlib.asynccontextmanager
        async def session() -> Any:
            yield self

        return session()


async def lookup(session: Sessions, key: str) -> str | None:
    session.lookups += 1
    await asyncio.sleep(0)
    return session.valid.get(key)


def _gate(monkeypatch: pytest.MonkeyPatch) -> tuple[BearerGate[str], list[float]]:
    now = [1000.0]
    monkeypatch.setattr(BearerGate, "clock", staticmethod(lambda: now[0]))
    return BearerGate(lookup, scheme="Test", description="test", refusal="no"), now  # type: ignore[arg-type]


async def test_a_database_never_gets_the_principal_another_database_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    gate, _ = _gate(monkeypatch)
    key = "tsk_shared"
    token = hashlib.sha256(key.encode()).digest()
    first = Sessions({key: "agency-of-database-a"})
    assert await gate._principal(first, token, key) == "agency-of-database-a"  # type: ignore[arg-type]
    taken = id(first)
    del first
    gc.collect()
    # A second app in the same process (tests, or a runtime started anew) whose database does not know the key.
    valid: dict[str, str] = {}
    kept = []
    for _ in range(200_000):
        other = Sessions(valid)
        if id(other) == taken:
            break
        kept.append(other)  # the last one made, if no id came back: a database of its own all the same
    found = await gate._principal(other, token, key)  # type: ignore[arg-type]
    assert found is None, f"database B got database A's principal {found!r} without a lookup ({other.lookups})"


async def test_a_request_does_not_join_a_lookup_older_than_the_trust_window(monkeypatch: pytest.MonkeyPatch) -> None:
    gate, now = _gate(monkeypatch)
    key = "tsk_slow"
    token = hashlib.sha256(key.encode()).digest()
    read = asyncio.Event()
    release = asyncio.Event()
    database = Sessions({key: "agency"})

    async def slow(session: Sessions, presented: str) -> str | None:
        found = session.valid.get(presented)  # read now ...
        read.set()
        await release.wait()  # ... answered later (a slow ROLLBACK / close on a loaded database)
        return found

    gate.lookup = slow  # type: ignore[assignment]
    first = asyncio.ensure_future(gate._principal(database, token, key))  # type: ignore[arg-type]
    await read.wait()
    database.valid.clear()  # revoked, after the read
    now[0] += KEY_TRUST_S + 1.0  # a request well past revocation + the window
    late = asyncio.ensure_future(gate._principal(database, token, key))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    release.set()
    assert await first == "agency"
    assert await late is None, "a request a second after the revocation joined a lookup that read before it"
